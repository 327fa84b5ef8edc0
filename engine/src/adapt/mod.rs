//! On-the-fly rank: the coherence monitor, the probe statistics, the
//! perturbation model and the rank controller (DESIGN.md §1).
//!
//! An [`Adapter`] lives inside the network estimator and runs on the
//! processing thread after every frame, doing a bounded amount of work: it
//! records probe windows, reduces them in steps, refreshes the model's tail
//! sums in steps, measures one error curve per step, and every
//! `decide_every` frames lets the controller choose ranks. Nothing allocates
//! after construction.

pub mod coherence;
pub mod controller;
pub mod perturbation;
pub mod readout;
pub mod stats;

use hush_cell_host::{Cell, ErrorForm, ProbeBuffers};
use serde::Serialize;

use coherence::CoherenceMonitor;
use controller::{Slot, allocate, over_budget, raise_to_budget, should_switch};
use perturbation::{CellModel, RetentionKind, candidate_ranks, matrix_macs};
use readout::Readout;
use stats::CellStats;

use crate::settings::{AdaptConfig, AdaptMode as Mode};

/// Up to this many compressed matrices are reported in telemetry.
pub const MAX_REPORTED_MATRICES: usize = 8;

/// What the adapter reports (copied out by telemetry, no allocation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct AdaptTelemetry {
    /// Compressed matrices reported in `ranks`.
    pub matrices: usize,
    /// Current rank per matrix (n for dense), in layer order.
    pub ranks: [u16; MAX_REPORTED_MATRICES],
    /// Lag-1 coherence of the input band features.
    pub input_coherence: f32,
    /// Coherence time of the input features, frames.
    pub coherence_time_frames: f32,
    /// Mean lag-1 autocorrelation of the injection at the current ranks.
    pub injection_coherence: f32,
    /// Mean retention γ over units and cells.
    pub retention: f32,
    /// Predicted RMS gain error at the current ranks.
    pub predicted_error: f32,
    /// Recurrent MACs per frame at the current ranks.
    pub recurrent_macs: u64,
    /// Recurrent MACs per frame at dense ranks.
    pub dense_recurrent_macs: u64,
    /// True while a probe window is being recorded or reduced.
    pub probing: bool,
    /// Rank changes so far.
    pub rank_changes: u64,
    /// Probe windows started so far.
    pub probes: u64,
    /// Deadline-guard interventions so far.
    pub deadline_events: u64,
    /// Probe and controller work so far, in multiply-accumulate equivalents.
    pub overhead_macs: u64,
    /// Time spent adapting so far (probe, statistics, tail sums,
    /// predictions, decisions), nanoseconds of the monotonic clock.
    pub adapt_ns: u64,
    /// Time spent in the network itself so far (dense layers and cells),
    /// nanoseconds; `adapt_ns / network_ns` is the controller's cost.
    pub network_ns: u64,
    /// Frames seen so far.
    pub frames: u64,
    /// The network's own MACs per frame at full rank.
    pub network_macs: u64,
    /// Current scale of the readout sensitivity from the output slope
    /// (`sqrt(S_now / S_calibration)`, see [`readout`]); 1 without calibration.
    pub output_slope_factor: f32,
}

struct CellAdapt {
    /// Index of the cell in the network's cell list (cells without the
    /// low-rank extension have no `CellAdapt`).
    cell: usize,
    n: usize,
    probe: ProbeBuffers,
    stats: CellStats,
    model: CellModel,
    slots_start: usize,
    /// Readout sensitivity per (matrix, candidate), `[m · candidates + k]`.
    sensitivity: Vec<f64>,
    per_unit: bool,
}

enum Work {
    Idle,
    /// Next (slot, first candidate) of the error curves to evaluate; 0
    /// prepares the slot's per-unit series first.
    Curves(usize, usize),
}

/// Candidates of one error curve (every unit) evaluated per frame while
/// measuring curves: bounds the frame time a probe adds.
const CURVE_CANDIDATES_PER_STEP: usize = 4;

/// The adapter of one network.
pub struct Adapter {
    cfg: AdaptConfig,
    cells: Vec<CellAdapt>,
    slots: Vec<Slot>,
    plan: Vec<usize>,
    cands: Vec<usize>,
    /// Per-candidate sums of the curve being measured.
    curve_acc: Vec<f64>,
    /// Per-unit series of the curve being measured (see
    /// [`perturbation::CellModel::curve_prepare`]).
    curve_scratch: Vec<f32>,
    monitor: CoherenceMonitor,
    frames: u64,
    /// Frames in the settling second before the first probe and before the
    /// output slope is tracked (the features' running normalisation settles).
    settle_frames: u64,
    frames_since_probe: usize,
    frames_since_decision: usize,
    frames_since_change: usize,
    /// The configured probe interval, frames.
    probe_every: usize,
    /// The current periodic interval, frames: `probe_every` after a regime
    /// change, doubling after each periodic probe on steady input up to
    /// `probe_every · probe_backoff_max`.
    probe_interval: usize,
    dwell: usize,
    hop_ns: u64,
    work: Work,
    curves_ready: bool,
    /// The slope factor of the last decision that found nothing to change;
    /// cleared by anything that could change the outcome (new curves, a
    /// rank change, new parameters). While it holds, decisions are skipped.
    settled_at: Option<f64>,
    deadline_hold: usize,
    network_macs: u64,
    slope_cal: Option<f64>,
    slope_fast: f64,
    alpha_fast: f64,
    /// Maxima of the fast slope factor per block of `slope_block` frames,
    /// the last [`SLOPE_HOLD_BLOCKS`] blocks (a ring).
    slope_peaks: [f64; SLOPE_HOLD_BLOCKS],
    slope_block: usize,
    slope_factor_used: f64,
    factor_at_decision: f64,
    /// The rank target (`usize::MAX`: dense) that full or fixed mode last
    /// applied; `None` after anything that could move the ranks, so the
    /// per-frame check is one comparison while nothing changes.
    fixed_target: Option<usize>,
    /// Scratch of [`allocate`]: each slot's best move.
    best_moves: Vec<Option<(usize, f64)>>,
    telemetry: AdaptTelemetry,
}

/// Time constant of the running mean of the output slope, seconds.
const SLOPE_FAST_S: f64 = 0.2;
/// The readout scale in use is the peak of the slope's scale over the last
/// `SLOPE_HOLD_BLOCKS` blocks of `SLOPE_BLOCK_S`: it rises at once (a speech
/// onset raises ranks without delay) and falls only when a whole hold time
/// has passed below it (silence), so a steady input's scatter within the
/// hold does not move the budget back and forth.
const SLOPE_HOLD_BLOCKS: usize = 4;
const SLOPE_BLOCK_S: f64 = 1.0;
/// A settled decision (nothing to change) stands while the output-slope
/// scale stays within this relative distance of the one it was made at: a
/// smaller move shifts the budget by less than the allocation's own
/// tolerance ([`controller::OVER_BUDGET_TOLERANCE`]), so re-deciding would
/// cost a greedy search and change nothing.
const SETTLED_SLOPE_TOLERANCE: f64 = 0.02;
/// Seconds before the first probe and before the output slope is tracked.
const SETTLE_S: f64 = 1.0;

impl Adapter {
    /// An adapter for `cells` (in layer order) with the readout calibration
    /// `readout` (gain error per unit state error), for `bands` band
    /// features at `hop_s` seconds per frame, and `network_macs` MACs per
    /// frame of the network at full rank. Cells without the low-rank
    /// extension are left dense. Main thread; allocates.
    pub fn new(
        cfg: AdaptConfig,
        cells: &mut [Cell],
        readout: &Readout,
        bands: usize,
        hop_s: f64,
        network_macs: u64,
    ) -> Self {
        let mut out = Vec::new();
        let mut slots = Vec::new();
        for (ci, cell) in cells.iter_mut().enumerate() {
            let n = cell.sizes().state;
            let per_unit = cell.error_form() != Some(ErrorForm::MeanJacobian);
            let probe = ProbeBuffers::new(cell);
            let Some(mut lr) = cell.low_rank() else {
                continue;
            };
            let count = lr.matrices().len();
            let vias: Vec<Option<usize>> = lr.matrices().iter().map(|m| m.via).collect();
            let mut factors = Vec::with_capacity(count);
            let mut dense = Vec::with_capacity(count);
            for m in 0..count {
                // The dense matrix only where another matrix's via path needs it.
                let target = vias.contains(&Some(m));
                let (mut p, mut qt) = (vec![0.0; n * n], vec![0.0; if target { n * n } else { 0 }]);
                let qt_arg = if target {
                    Some(qt.as_mut_slice())
                } else {
                    None
                };
                if lr.factors(m, Some(&mut p), qt_arg).is_err() {
                    p.fill(0.0);
                    qt.fill(0.0);
                }
                dense.push(if target {
                    perturbation::dense_from_factors(n, &p, &qt)
                } else {
                    Vec::new()
                });
                factors.push(p);
            }
            let ranks = candidate_ranks(n, cfg.floor_rank);
            let sensitivity = (0..count)
                .flat_map(|m| ranks.iter().map(move |&r| readout.at(ci, m, r)))
                .collect();
            let macs: Vec<usize> = ranks.iter().map(|&r| matrix_macs(n, r)).collect();
            let slots_start = slots.len();
            for _ in 0..count {
                slots.push(Slot::new(ranks.clone(), macs.clone()));
            }
            let mut stats = CellStats::new(n, count, cfg.probe_window.max(16));
            for (m, via) in vias.iter().enumerate() {
                stats.set_input_derivatives_needed(m, via.is_some());
            }
            let mut model = CellModel::new(n, &factors, ranks, stats.max_lag);
            for (m, via) in vias.iter().enumerate() {
                if let Some(t) = via.filter(|&t| t < count) {
                    model = model.with_via(m, t, &dense[t]);
                }
            }
            out.push(CellAdapt {
                cell: ci,
                n,
                probe,
                stats,
                model,
                slots_start,
                sensitivity,
                per_unit,
            });
        }
        let dense: usize = slots.iter().map(|s| s.macs[0]).sum();
        let max_n = out.iter().map(|c| c.n).max().unwrap_or(1);
        let plan = vec![0; slots.len()];
        let mut telemetry = AdaptTelemetry {
            dense_recurrent_macs: dense as u64,
            recurrent_macs: dense as u64,
            network_macs,
            output_slope_factor: 1.0,
            ..Default::default()
        };
        telemetry.matrices = slots.len().min(MAX_REPORTED_MATRICES);
        for (k, s) in slots.iter().take(MAX_REPORTED_MATRICES).enumerate() {
            telemetry.ranks[k] = s.ranks[0] as u16;
        }
        let slope_cal = readout.slope_sq.filter(|_| cfg.output_slope);
        let probe_every = (cfg.probe_every_s / hop_s).round().max(1.0) as usize;
        Self {
            probe_every,
            probe_interval: probe_every,
            dwell: (cfg.min_dwell_s / hop_s).round() as usize,
            hop_ns: (hop_s * 1e9) as u64,
            cands: vec![0; max_n.max(8)],
            curve_acc: vec![0.0; slots.iter().map(|s| s.ranks.len()).max().unwrap_or(1)],
            curve_scratch: vec![
                0.0;
                out.iter()
                    .map(|c| c.model.curve_scratch_len())
                    .max()
                    .unwrap_or(1)
            ],
            monitor: CoherenceMonitor::new(bands, hop_s, 1.0),
            cfg,
            cells: out,
            best_moves: vec![None; slots.len()],
            slots,
            plan,
            frames: 0,
            settle_frames: (SETTLE_S / hop_s).round().max(1.0) as u64,
            // Probe soon after start: the first window begins after 1 s.
            frames_since_probe: 0,
            frames_since_decision: 0,
            frames_since_change: usize::MAX / 2,
            work: Work::Idle,
            curves_ready: false,
            settled_at: None,
            deadline_hold: 0,
            network_macs,
            slope_cal,
            slope_fast: readout.slope_sq.unwrap_or(0.0),
            alpha_fast: 1.0 - (-hop_s / SLOPE_FAST_S).exp(),
            // Empty hold: the scale starts from the input, not the calibration.
            slope_peaks: [0.0; SLOPE_HOLD_BLOCKS],
            slope_block: (SLOPE_BLOCK_S / hop_s).round().max(1.0) as usize,
            slope_factor_used: 1.0,
            fixed_target: None,
            factor_at_decision: 1.0,
            telemetry,
        }
    }

    /// The readout scale in use (see [`SLOPE_HOLD_BLOCKS`]).
    fn slope_factor(&self) -> f64 {
        self.slope_factor_used
    }

    /// Updates the output-slope mean, the per-block peaks and the readout
    /// scale from one frame's band gains. No allocation.
    fn track_slope(&mut self, gains: &[f32]) {
        // The first second (features' running normalisation settling, the
        // same wait as before the first probe) says nothing about the input.
        if self.frames < self.settle_frames || self.slope_cal.is_none() {
            return;
        }
        let s = readout::output_slope_sq(gains);
        self.slope_fast += self.alpha_fast * (s - self.slope_fast);
        let fast = readout::slope_factor(self.slope_fast, self.slope_cal);
        // Frames since tracking began (the settling second is skipped above).
        let frame = (self.frames - self.settle_frames) as usize;
        let block = (frame / self.slope_block) % SLOPE_HOLD_BLOCKS;
        if frame.is_multiple_of(self.slope_block) {
            self.slope_peaks[block] = fast;
        } else {
            self.slope_peaks[block] = self.slope_peaks[block].max(fast);
        }
        self.slope_factor_used = self.slope_peaks.iter().copied().fold(0.0, f64::max);
    }

    /// The current settings.
    pub fn config(&self) -> &AdaptConfig {
        &self.cfg
    }

    /// Changes mode and budgets (from the control socket). Audio thread; no allocation.
    pub fn set_params(&mut self, mode: Mode, error_budget: f64, compute_budget: f64) {
        self.cfg.mode = mode;
        self.cfg.error_budget = error_budget;
        self.cfg.compute_budget = compute_budget;
        self.frames_since_decision = self.cfg.decide_every;
        self.settled_at = None;
        self.fixed_target = None;
    }

    /// Adds one frame's measured times: the network's own and the
    /// adapter's, nanoseconds. Audio thread; no allocation.
    pub fn add_times(&mut self, network_ns: u64, adapt_ns: u64) {
        self.telemetry.network_ns += network_ns;
        self.telemetry.adapt_ns += adapt_ns;
    }

    /// Telemetry of the last frame.
    pub fn telemetry(&self) -> AdaptTelemetry {
        // The monitor's figures are derived here, when asked for, rather
        // than per frame (a logarithm the controller never reads).
        AdaptTelemetry {
            input_coherence: self.monitor.lag1() as f32,
            coherence_time_frames: self.monitor.coherence_time_frames() as f32,
            ..self.telemetry
        }
    }

    /// Reports the last frame's processing time; the deadline guard drops
    /// every matrix to its floor rank when it exceeds the configured fraction
    /// of the hop. Audio thread; no allocation.
    pub fn frame_time(&mut self, cells: &mut [Cell], frame_ns: u64) {
        if self.cfg.mode == Mode::Full || self.cfg.mode == Mode::Fixed {
            return;
        }
        if frame_ns as f64 > self.cfg.deadline_fraction * self.hop_ns as f64 {
            for (si, p) in self.plan.iter_mut().enumerate() {
                *p = self.slots[si].ranks.len() - 1;
            }
            self.apply(cells);
            self.refresh_prediction();
            self.telemetry.deadline_events += 1;
            self.deadline_hold = self.dwell.max(1);
            self.frames_since_change = 0;
            // The ranks moved under the controller: its memo of a settled
            // decision no longer describes them.
            self.settled_at = None;
        }
    }

    /// After-frame work: coherence, output slope of the frame's band `gains`,
    /// probe recording and reduction, model refresh, curves, decisions.
    /// Bounded; audio thread; no allocation.
    pub fn after_frame(&mut self, cells: &mut [Cell], log_energy: &[f32], gains: &[f32]) {
        self.track_slope(gains);
        self.telemetry.output_slope_factor = self.slope_factor() as f32;
        self.frames += 1;
        self.telemetry.frames = self.frames;
        self.frames_since_probe += 1;
        self.frames_since_decision += 1;
        self.frames_since_change = self.frames_since_change.saturating_add(1);
        self.deadline_hold = self.deadline_hold.saturating_sub(1);
        let changed = self.monitor.push(log_energy);
        if matches!(self.cfg.mode, Mode::Full | Mode::Fixed) {
            self.fixed_plan(cells);
            return;
        }
        let idle = self
            .cells
            .iter()
            .all(|c| c.stats.phase() == stats::StatsPhase::Idle && !c.model.refreshing())
            && matches!(self.work, Work::Idle);
        let first = self.frames == self.settle_frames;
        if changed {
            self.probe_interval = self.probe_every;
        }
        let periodic = self.frames_since_probe >= self.probe_interval;
        if idle
            && (first || periodic || (changed && self.frames_since_probe > self.probe_every / 2))
        {
            if periodic && !first && !changed {
                // Nothing changed since the last probe: look again later.
                let cap = self.probe_every * self.cfg.probe_backoff_max.max(1);
                self.probe_interval = (2 * self.probe_interval).min(cap);
            }
            self.frames_since_probe = 0;
            self.telemetry.probes += 1;
            for c in &mut self.cells {
                c.stats.start();
            }
        }
        let mut probing = false;
        let mut refreshed = false;
        for ca in self.cells.iter_mut() {
            let Some(cell) = cells.get_mut(ca.cell) else {
                continue;
            };
            if ca.stats.recording() {
                probing = true;
                if let Some(mut lr) = cell.low_rank()
                    && lr.probe(&mut ca.probe).is_ok()
                {
                    ca.stats.record_probe(&ca.probe);
                    self.telemetry.overhead_macs += (ca.model.matrices() * ca.n * ca.n) as u64;
                }
            } else if matches!(ca.stats.phase(), stats::StatsPhase::Analysing(_)) {
                probing = true;
                let w = ca.stats.window as u64;
                if ca.stats.analyse_step() {
                    ca.model.begin_refresh();
                }
                self.telemetry.overhead_macs += stats::LAGS_PER_STEP as u64 * w * ca.n as u64;
            } else if ca.model.refreshing() {
                probing = true;
                let before = ca.model.work;
                refreshed |= ca.model.refresh_step(&ca.stats);
                self.telemetry.overhead_macs += ca.model.work - before;
            }
        }
        if refreshed
            && self
                .cells
                .iter()
                .all(|c| c.model.ready && !c.model.refreshing())
        {
            self.work = Work::Curves(0, 0);
        }
        if let Work::Curves(s, k) = self.work {
            self.curve_step(s, k);
            probing = true;
        }
        self.telemetry.probing = probing;
        // Gains leaving saturation (speech after silence) make truncation
        // errors audible again: decide at once instead of at the next tick.
        let slope_jump = self.slope_factor() > 2.0 * self.factor_at_decision;
        if self.curves_ready
            && (self.frames_since_decision >= self.cfg.decide_every || slope_jump)
            && self.deadline_hold == 0
        {
            self.frames_since_decision = 0;
            self.decide(cells);
        }
    }

    /// Up to [`CURVE_CANDIDATES_PER_STEP`] candidates of one slot's error
    /// curve per frame (every unit at once; the first step of a slot also
    /// prepares its per-unit series); the slot's curve is final when its
    /// last candidate is in.
    fn curve_step(&mut self, slot: usize, start: usize) {
        let Some((ci, m)) = self.slot_owner(slot) else {
            self.work = Work::Idle;
            self.curves_ready = true;
            self.settled_at = None;
            self.refresh_prediction();
            return;
        };
        let ca = &self.cells[ci];
        let len = self.slots[slot].ranks.len();
        if start == 0 {
            self.curve_acc[..len].fill(0.0);
            if ca.per_unit {
                ca.model
                    .curve_prepare(&ca.stats, m, RetentionKind::Mean, &mut self.curve_scratch);
            }
            self.telemetry.overhead_macs += (2 * ca.n * (ca.stats.lags + 1)) as u64;
            self.work = Work::Curves(slot, 1);
            return;
        }
        let end = (start + CURVE_CANDIDATES_PER_STEP).min(len);
        if ca.per_unit {
            ca.model.curve_candidates(
                m,
                start..end,
                &mut self.curve_scratch,
                &mut self.curve_acc[..len],
            );
        }
        self.telemetry.overhead_macs += ((end - start) * ca.n * 2 * (ca.stats.lags + 1)) as u64;
        if end < len {
            self.work = Work::Curves(slot, end);
            return;
        }
        for k in 0..len {
            let e = if k == 0 {
                0.0
            } else if ca.per_unit {
                self.curve_acc[k].sqrt()
            } else {
                // Mean-Jacobian cells (§1c) need an O(n³) model the audio
                // thread cannot afford; `hush-lab memory` runs it offline.
                // The live controller keeps them dense.
                f64::INFINITY
            };
            self.slots[slot].err2[k] = if e.is_finite() {
                (ca.sensitivity[m * len + k] * e).powi(2)
            } else {
                f64::INFINITY
            };
        }
        self.slots[slot].update_moves();
        self.work = Work::Curves(slot + 1, 0);
    }

    fn slot_owner(&self, slot: usize) -> Option<(usize, usize)> {
        self.cells.iter().enumerate().find_map(|(ci, c)| {
            (slot >= c.slots_start && slot < c.slots_start + c.model.matrices())
                .then(|| (ci, slot - c.slots_start))
        })
    }

    fn decide(&mut self, cells: &mut [Cell]) {
        let fps = 1e9 / self.hop_ns.max(1) as f64;
        let cap = match self.cfg.mode {
            Mode::ComputeBudget => Some((self.cfg.compute_budget / fps).max(0.0) as usize),
            _ => None,
        };
        // The slots hold errors at the calibration's output slope; scaling
        // the budget instead of every curve keeps the decision O(slots).
        let factor = self.slope_factor();
        self.factor_at_decision = factor;
        if self
            .settled_at
            .is_some_and(|s| (factor / s - 1.0).abs() <= SETTLED_SLOPE_TOLERANCE)
        {
            // Same curves, ranks and parameters, and a slope within the
            // tolerance the allocation ignores anyway: the same outcome.
            return;
        }
        let budget = self.cfg.error_budget / factor;
        // New plans aim below the budget by the tolerance that raising
        // allows above it: a steady input's scatter then moves nothing.
        let target = budget / (1.0 + controller::OVER_BUDGET_TOLERANCE);
        // `plan` doubles as the proposal buffer; keep the current plan in the slots.
        let mut proposal = std::mem::take(&mut self.plan);
        if cap.is_none() && over_budget(&self.slots, budget, None) {
            raise_to_budget(&self.slots, target, &mut proposal);
        } else {
            allocate(
                &self.slots,
                target,
                cap,
                &mut proposal,
                &mut self.best_moves,
            );
        }
        let dwell_ok = self.frames_since_change >= self.dwell;
        let switch = should_switch(
            &self.slots,
            &proposal,
            budget,
            cap,
            dwell_ok,
            self.cfg.min_saving,
        );
        let unchanged = proposal
            .iter()
            .zip(&self.slots)
            .all(|(&k, s)| k == s.current);
        self.plan = proposal;
        if switch {
            self.apply(cells);
            self.frames_since_change = 0;
            self.refresh_prediction();
        } else {
            for (p, s) in self.plan.iter_mut().zip(&self.slots) {
                *p = s.current;
            }
            // Same ranks and curves: only the output-slope scale moved.
            self.update_predicted_error();
        }
        // Nothing to change, or a change refused for its own sake (too small
        // a saving): the same inputs give the same outcome until the curves,
        // ranks, parameters or slope move. A proposal held back by the dwell
        // must be looked at again once the dwell has passed.
        if unchanged || (!switch && dwell_ok) {
            self.settled_at = Some(factor);
        }
    }

    fn fixed_plan(&mut self, cells: &mut [Cell]) {
        let target = match self.cfg.mode {
            Mode::Full => usize::MAX,
            _ => self.cfg.fixed_rank,
        };
        if self.fixed_target == Some(target) {
            return;
        }
        self.fixed_target = Some(target);
        let mut changed = false;
        for (p, s) in self.plan.iter_mut().zip(&self.slots) {
            // The smallest candidate at or above the target (dense for Full).
            let k = s.ranks.iter().rposition(|&r| r >= target).unwrap_or(0);
            changed |= k != s.current;
            *p = k;
        }
        if changed {
            self.apply(cells);
        }
    }

    /// Sets the ranks of `plan` on the cells.
    fn apply(&mut self, cells: &mut [Cell]) {
        self.settled_at = None;
        let mut changed = false;
        for ca in &self.cells {
            let Some(cell) = cells.get_mut(ca.cell) else {
                continue;
            };
            if let Some(mut lr) = cell.low_rank() {
                for m in 0..ca.model.matrices() {
                    let si = ca.slots_start + m;
                    let k = self.plan[si];
                    if self.slots[si].current != k
                        && lr.set_rank(m, self.slots[si].ranks[k]).is_ok()
                    {
                        self.slots[si].current = k;
                        changed = true;
                    }
                }
            }
        }
        if changed {
            self.telemetry.rank_changes += 1;
        }
        for (k, s) in self.slots.iter().take(MAX_REPORTED_MATRICES).enumerate() {
            self.telemetry.ranks[k] = s.ranks[s.current] as u16;
        }
        self.telemetry.recurrent_macs = self.slots.iter().map(|s| s.macs[s.current] as u64).sum();
    }

    /// Predicted RMS gain error at the current ranks: the slots' errors in
    /// quadrature, scaled by the output slope. O(slots).
    fn update_predicted_error(&mut self) {
        let err2: f64 = self
            .cells
            .iter()
            .filter(|ca| ca.model.ready)
            .flat_map(|ca| &self.slots[ca.slots_start..ca.slots_start + ca.model.matrices()])
            .map(|s| s.err2[s.current])
            .sum();
        self.telemetry.predicted_error = (err2.sqrt() * self.slope_factor()) as f32;
    }

    /// Joint prediction at the current ranks, and the injection coherence
    /// (O(units): after new curves or a rank change).
    fn refresh_prediction(&mut self) {
        let (mut coh, mut ret, mut units) = (0.0f64, 0.0f64, 0usize);
        for ca in &self.cells {
            if !ca.model.ready {
                continue;
            }
            let count = ca.model.matrices();
            for m in 0..count {
                self.cands[m] = self.slots[ca.slots_start + m].current;
            }
            for j in 0..ca.n {
                ret += ca.stats.retention[j] as f64;
                let mut num = 0.0;
                let mut den = 0.0;
                for m in 0..count {
                    let k = self.cands[m];
                    let d0 = ca.model.tail_sum(m, k, j, 0) as f64;
                    let g0 = ca.stats.g_moment(m, j, 0) as f64;
                    if d0 > 0.0 && g0 > 0.0 {
                        num += g0
                            * d0
                            * (ca.stats.g_moment(m, j, 1) as f64 / g0)
                            * (ca.model.tail_sum(m, k, j, 1) as f64 / d0);
                        den += g0 * d0;
                    }
                }
                if den > 0.0 {
                    coh += num / den;
                }
                units += 1;
            }
        }
        // Matrices combine in quadrature (the per-unit injections add),
        // each through its own calibrated readout sensitivity.
        self.update_predicted_error();
        if units > 0 {
            self.telemetry.injection_coherence = (coh / units as f64) as f32;
            self.telemetry.retention = (ret / units as f64) as f32;
        }
        let _ = self.network_macs;
    }

    /// Network MACs per frame at full rank (for overhead ratios).
    pub fn network_macs(&self) -> u64 {
        self.network_macs
    }
}
