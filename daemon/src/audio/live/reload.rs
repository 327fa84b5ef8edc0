//! What a configuration reload changes, decided by a pure function of the
//! old and new configurations: hot parameters (applied through the control
//! block, no glitch), an engine rebuild (off the audio path; only the
//! processing thread restarts), reopened devices, or a restart (the control
//! socket).

use hush_engine::settings::{AdaptConfig, AdaptMode, EngineConfig};

use super::config::LiveConfig;
use crate::config::Config;

/// The changes a reload implies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReloadPlan {
    /// New attenuation limit, dB (hot).
    pub attenuation_limit_db: Option<f64>,
    /// The rank controller's mode or budgets changed (hot).
    pub adapt_params: bool,
    /// New deadline-guard switch (hot).
    pub deadline_guard: Option<bool>,
    /// New bypass switch (hot).
    pub bypass: Option<bool>,
    /// An `[engine]` key other than the hot ones (estimator, model,
    /// processing, pitch filter, …), classical, upper band, plugins or the
    /// controller's structure changed: the engines are rebuilt.
    pub rebuild_engine: bool,
    /// Devices, rates, buffers or rings changed: the session is reopened.
    pub reopen_devices: bool,
    /// `[control]` changed: takes effect at the next start only.
    pub restart_needed: bool,
}

/// `[live]` without the keys read live (deadline guard, timeouts, reconnect
/// delays): a difference here needs the devices reopened.
fn device_keys(l: &LiveConfig) -> LiveConfig {
    let d = LiveConfig::default();
    LiveConfig {
        deadline_guard: d.deadline_guard,
        stall_timeout_ms: d.stall_timeout_ms,
        start_timeout_ms: d.start_timeout_ms,
        reconnect_min_ms: d.reconnect_min_ms,
        reconnect_max_ms: d.reconnect_max_ms,
        ..l.clone()
    }
}

/// `[engine]` without its hot keys (a difference here needs an engine
/// rebuild; a key added later is covered without a change here).
fn engine_structure(e: &EngineConfig) -> EngineConfig {
    EngineConfig {
        attenuation_limit_db: 0.0,
        bypass: false,
        ..e.clone()
    }
}

/// `[adapt]` without its live parameters (a difference here needs an
/// engine rebuild).
fn adapt_structure(a: &AdaptConfig) -> AdaptConfig {
    AdaptConfig {
        mode: AdaptMode::ErrorBudget,
        error_budget: 0.0,
        compute_budget: 0.0,
        ..a.clone()
    }
}

/// The plan for going from `old` to `new`.
pub fn plan(old: &Config, new: &Config) -> ReloadPlan {
    let changed = |a: f64, b: f64| (a != b).then_some(b);
    ReloadPlan {
        attenuation_limit_db: changed(
            old.engine.attenuation_limit_db,
            new.engine.attenuation_limit_db,
        ),
        adapt_params: old.adapt.mode != new.adapt.mode
            || old.adapt.error_budget != new.adapt.error_budget
            || old.adapt.compute_budget != new.adapt.compute_budget,
        deadline_guard: (old.live.deadline_guard != new.live.deadline_guard)
            .then_some(new.live.deadline_guard),
        bypass: (old.engine.bypass != new.engine.bypass).then_some(new.engine.bypass),
        rebuild_engine: engine_structure(&old.engine) != engine_structure(&new.engine)
            || old.classical != new.classical
            || old.upper_band != new.upper_band
            || old.plugins != new.plugins
            || adapt_structure(&old.adapt) != adapt_structure(&new.adapt),
        reopen_devices: device_keys(&old.live) != device_keys(&new.live),
        restart_needed: old.control != new.control,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_engine::settings::EstimatorChoice;

    #[test]
    fn the_same_configuration_changes_nothing() {
        let c = Config::default();
        assert_eq!(plan(&c, &c), ReloadPlan::default());
    }

    #[test]
    fn live_parameters_are_hot_and_touch_nothing_else() {
        let old = Config::default();
        let mut new = old.clone();
        new.engine.attenuation_limit_db = 12.0;
        new.engine.bypass = true;
        new.adapt.error_budget = 0.03;
        new.adapt.mode = AdaptMode::Full;
        new.live.deadline_guard = false;
        new.live.stall_timeout_ms += 100;
        let p = plan(&old, &new);
        assert_eq!(
            p,
            ReloadPlan {
                attenuation_limit_db: Some(12.0),
                adapt_params: true,
                deadline_guard: Some(false),
                bypass: Some(true),
                ..ReloadPlan::default()
            }
        );
    }

    #[test]
    fn structure_rebuilds_the_engine_and_devices_reopen() {
        let old = Config::default();
        let rebuild_only = ReloadPlan {
            rebuild_engine: true,
            ..ReloadPlan::default()
        };
        let mut new = old.clone();
        new.engine.estimator = EstimatorChoice::Classical;
        assert_eq!(plan(&old, &new), rebuild_only);
        let mut new = old.clone();
        new.engine.pitch_filter = !old.engine.pitch_filter;
        assert_eq!(plan(&old, &new), rebuild_only);
        let mut new = old.clone();
        new.adapt.probe_window = 256;
        assert!(plan(&old, &new).rebuild_engine);
        let mut new = old.clone();
        new.live.sample_rate = 44_100;
        let p = plan(&old, &new);
        assert!(p.reopen_devices && !p.rebuild_engine);
        let mut new = old.clone();
        new.control.enabled = !old.control.enabled;
        assert_eq!(
            plan(&old, &new),
            ReloadPlan {
                restart_needed: true,
                ..ReloadPlan::default()
            }
        );
    }
}
