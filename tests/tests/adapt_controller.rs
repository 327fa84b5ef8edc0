//! The rank controller inside the real engine (shipped model, cells through
//! the plugin host): hysteresis keeps a stationary input's ranks still, the
//! deadline guard drops the ranks when frames run long and the normal
//! controller restores them, and mode/budget changes from the control path
//! take effect at once.

use hush_tests::fixtures::white_noise;
use hushd::adapt::AdaptTelemetry;
use hushd::adapt::controller::Mode;
use hushd::config::Config;
use hushd::estimator::EstimatorSource;
use hushd::stream::StreamProcessor;

const RATE: u32 = 16_000;

/// A 16 kHz network processor with adaptation configured by `adapt`.
fn adaptive(adapt: impl FnOnce(&mut hushd::adapt::AdaptConfig)) -> StreamProcessor {
    let mut cfg = Config::default();
    adapt(&mut cfg.adapt);
    let mut source = EstimatorSource::from_config(&cfg).expect("estimator");
    let spec = source.spec();
    let mut p = StreamProcessor::new(
        &spec,
        RATE,
        false,
        &cfg.engine_settings(),
        source.create().expect("estimator"),
    )
    .expect("processor");
    p.set_deadline_guard(false);
    p
}

/// Runs `x` through `p` in 10 ms blocks; the adapt telemetry after each frame.
fn run(p: &mut StreamProcessor, x: &[f32]) -> Vec<AdaptTelemetry> {
    let mut out = vec![0.0; 160];
    let mut trace = Vec::new();
    for block in x.chunks(160) {
        p.process_with(block, &mut out[..block.len()], &mut |engine, _| {
            trace.push(engine.adapt_telemetry().expect("network adapts"));
        });
    }
    trace
}

fn ranks(t: &AdaptTelemetry) -> Vec<u16> {
    t.ranks[..t.matrices].to_vec()
}

/// Steady noise with a steady hum: a stationary input.
fn stationary(seconds: f64, seed: u64) -> Vec<f32> {
    let n = (seconds * RATE as f64) as usize;
    white_noise(n, 0.02, seed)
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v + 0.02 * (2.0 * std::f32::consts::PI * 120.0 * i as f32 / RATE as f32).sin()
        })
        .collect()
}

#[test]
fn hysteresis_keeps_ranks_still_on_a_stationary_input() {
    // Probes every 4 s: each re-measures the error curves with fresh noise,
    // which without hysteresis would move the choice back and forth.
    let mut p = adaptive(|a| {
        a.probe_every_s = 4.0;
        a.error_budget = 0.02;
    });
    let trace = run(&mut p, &stationary(40.0, 3));
    let first = trace
        .iter()
        .position(|t| t.rank_changes > 0)
        .expect("the controller lowered the ranks at least once");
    let dense = trace[0].dense_recurrent_macs;
    let last = trace.last().unwrap();
    assert!(
        last.recurrent_macs < dense,
        "stayed dense on steady noise: {:?}",
        ranks(last)
    );
    // After the first decision, at most one adjustment in 35+ seconds and 8 probes.
    let later_changes = last.rank_changes - trace[first].rank_changes;
    let log: Vec<String> = trace
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1].rank_changes != w[0].rank_changes)
        .map(|(f, w)| format!("{:.2} s → {:?}", (f + 1) as f64 / 100.0, ranks(&w[1])))
        .collect();
    assert!(
        later_changes <= 1,
        "{later_changes} rank changes on a stationary input after the first: flapping: {log:?}"
    );
    assert!(last.deadline_events == 0);
}

#[test]
fn deadline_guard_drops_ranks_on_long_frames_and_the_controller_restores_them() {
    let mut p = adaptive(|a| {
        a.error_budget = 0.03;
        // Well above normal frame times even on a loaded test machine.
        a.deadline_fraction = 0.9;
        a.min_dwell_s = 1.0;
    });
    p.set_deadline_guard(true);
    let x = stationary(14.0, 5);
    let settle = 6 * RATE as usize;
    let before = run(&mut p, &x[..settle]);
    let steady = *before.last().unwrap();
    assert!(steady.rank_changes > 0, "controller never chose ranks");
    let floor = 4u16;
    // The test hook: every frame now takes twice the hop period.
    p.set_frame_pad_ns(20_000_000);
    let slow = run(&mut p, &x[settle..settle + 20 * 160]);
    let hit = *slow.last().unwrap();
    assert!(
        hit.deadline_events > steady.deadline_events,
        "guard did not fire"
    );
    assert!(
        ranks(&hit).iter().all(|&r| r == floor),
        "guard did not drop to the floor rank: {:?}",
        ranks(&hit)
    );
    // Normal frame times again: the controller takes over after the dwell.
    p.set_frame_pad_ns(0);
    let after = run(&mut p, &x[settle + 20 * 160..]);
    assert!(
        after.iter().any(|t| ranks(t) == ranks(&steady)),
        "ranks did not recover to {:?}; ended at {:?}",
        ranks(&steady),
        ranks(after.last().unwrap())
    );
}

#[test]
fn control_changes_of_mode_and_budget_apply_at_once() {
    let mut p = adaptive(|a| a.error_budget = 0.03);
    let x = stationary(16.0, 7);
    let s = RATE as usize;
    let t = run(&mut p, &x[..6 * s]);
    let adaptive_macs = t.last().unwrap().recurrent_macs;
    let dense = t.last().unwrap().dense_recurrent_macs;
    assert!(adaptive_macs < dense);

    // Full: dense at the next frame.
    p.engine_mut()
        .estimator_mut()
        .set_adapt_params(Mode::Full, 0.03, f64::INFINITY);
    let t = run(&mut p, &x[6 * s..7 * s]);
    assert_eq!(t[0].recurrent_macs, dense, "full mode not applied at once");

    // A tighter error budget never uses fewer MACs than a looser one.
    p.engine_mut()
        .estimator_mut()
        .set_adapt_params(Mode::ErrorBudget, 0.005, f64::INFINITY);
    let tight = run(&mut p, &x[7 * s..10 * s])
        .last()
        .unwrap()
        .recurrent_macs;
    p.engine_mut()
        .estimator_mut()
        .set_adapt_params(Mode::ErrorBudget, 0.2, f64::INFINITY);
    let loose = run(&mut p, &x[10 * s..13 * s])
        .last()
        .unwrap()
        .recurrent_macs;
    assert!(
        tight >= loose && loose < dense,
        "budget 0.005 → {tight} MACs, 0.2 → {loose} MACs (dense {dense})"
    );

    // A compute budget caps the MACs per second.
    let cap = 0.3 * dense as f64 * 100.0;
    p.engine_mut()
        .estimator_mut()
        .set_adapt_params(Mode::ComputeBudget, 0.03, cap);
    let capped = run(&mut p, &x[13 * s..16 * s])
        .last()
        .unwrap()
        .recurrent_macs;
    assert!(
        capped as f64 * 100.0 <= cap,
        "compute budget {cap} MACs/s exceeded: {} MACs/s",
        capped * 100
    );
}
