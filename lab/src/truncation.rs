//! Truncation experiments on a denoiser network, shared by `calibrate` and
//! `validate-model`: run the real network (cells through the plugin host) at
//! full rank on a sequence of prepared inputs, with the probe recording a
//! window; then run copies with some recurrent matrices truncated, measure
//! the actual state and output errors over the same window, and set them
//! beside the perturbation model's predictions from the full-rank probe.

use hush_cell_host::{ProbeBuffers, Registry};
use hush_engine::adapt::perturbation::{CellModel, Form, RetentionKind, dense_from_factors};
use hush_engine::adapt::readout::Readout;
use hush_engine::adapt::stats::CellStats;
use hush_engine::estimator::GainEstimator;
use hush_engine::estimator::network::Network;
use hush_engine::model::ModelFile;

use crate::error::LabError;

/// Frames at the start of a sequence left out of every measurement, so the
/// states have settled from their zero start.
pub const WARMUP: usize = 50;
/// Longest probe window, frames.
pub const MAX_WINDOW: usize = 512;

/// One sequence of network inputs.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// What kind of input this is (a row of the tables).
    pub category: String,
    /// `frames × inputs`, row-major.
    pub inputs: Vec<f32>,
    /// Frames.
    pub frames: usize,
}

impl Sequence {
    /// The measured window: frames `WARMUP..WARMUP + len`.
    pub fn window(&self) -> usize {
        self.frames.saturating_sub(WARMUP).min(MAX_WINDOW)
    }

    /// Lag-1 normalised autocorrelation of the first `bands` inputs (the
    /// normalised log band energies) over the window, mean-removed per band
    /// and pooled over bands: the statistic of the daemon's input coherence
    /// monitor, which a per-band affine normalisation leaves unchanged.
    pub fn input_coherence(&self, bands: usize) -> f64 {
        let nin = self.inputs.len() / self.frames.max(1);
        let w = self.window();
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for b in 0..bands.min(nin) {
            let x = |t: usize| self.inputs[(WARMUP + t) * nin + b] as f64;
            let mean = (0..w).map(x).sum::<f64>() / w as f64;
            den += (0..w).map(|t| (x(t) - mean).powi(2)).sum::<f64>();
            num += (1..w)
                .map(|t| (x(t) - mean) * (x(t - 1) - mean))
                .sum::<f64>();
        }
        if den > 0.0 { num / den } else { 0.0 }
    }
}

/// Which matrices of a cell are truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matrices {
    /// All of them, to the same rank.
    Joint,
    /// Only matrix `m`.
    Only(usize),
}

/// One truncation of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    /// The cell layer truncated, or every cell (`None`).
    pub cell: Option<usize>,
    /// Which of its matrices.
    pub matrices: Matrices,
    /// The rank kept.
    pub rank: usize,
}

/// The perturbation-model variants compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// DESIGN §1: product of gate and projection autocorrelations, mean
    /// retention (what the controller uses).
    Product,
    /// Product form with injection-weighted retention (§1b refinement).
    ProductWeighted,
    /// Measured injection autocorrelation, mean retention (§1b refinement).
    Measured,
    /// Measured injection, injection-weighted retention (both refinements).
    MeasuredWeighted,
    /// Coherence from the projections alone (the shortcut DESIGN rejects).
    ProjectionsOnly,
    /// No coherence term (the other rejected shortcut).
    CoherenceBlind,
}

impl Variant {
    /// Every variant, in table order.
    pub const ALL: [Variant; 6] = [
        Variant::Product,
        Variant::ProductWeighted,
        Variant::Measured,
        Variant::MeasuredWeighted,
        Variant::ProjectionsOnly,
        Variant::CoherenceBlind,
    ];

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Product => "product",
            Variant::ProductWeighted => "product+wγ",
            Variant::Measured => "measured",
            Variant::MeasuredWeighted => "measured+wγ",
            Variant::ProjectionsOnly => "p-only",
            Variant::CoherenceBlind => "blind",
        }
    }
}

/// Squared errors summed over a window, and their counts (so windows of
/// several sequences aggregate by summing).
#[derive(Debug, Clone, Default)]
pub struct Errors {
    /// Per cell: Σ_t ‖h_t − h̃_t‖².
    pub state_sq: Vec<f64>,
    /// Σ_t Σ_b (g_tb − g̃_tb)².
    pub out_sq: f64,
    /// Frames measured.
    pub frames: usize,
    /// Bands per frame.
    pub bands: usize,
}

impl Errors {
    /// Adds `other` (same cells and bands).
    pub fn add(&mut self, other: &Errors) {
        if self.state_sq.is_empty() {
            self.state_sq = vec![0.0; other.state_sq.len()];
            self.bands = other.bands;
        }
        for (a, b) in self.state_sq.iter_mut().zip(&other.state_sq) {
            *a += b;
        }
        self.out_sq += other.out_sq;
        self.frames += other.frames;
    }

    /// RMS state error of cell `c`, `sqrt E‖Δh‖²`.
    pub fn state_rms(&self, c: usize) -> f64 {
        (self.state_sq[c] / self.frames.max(1) as f64).sqrt()
    }

    /// RMS band-gain error per band, `sqrt E[(Δg)²]`.
    pub fn out_rms(&self) -> f64 {
        (self.out_sq / (self.frames * self.bands).max(1) as f64).sqrt()
    }
}

/// The full-rank run of one sequence and its probe statistics.
pub struct Reference {
    /// Per cell: states over the window, `[t][n]`.
    pub states: Vec<Vec<f32>>,
    /// Gains over the window, `[t][bands]`.
    pub gains: Vec<f32>,
    /// Per cell: the probe statistics of the window.
    pub stats: Vec<CellStats>,
    /// Per cell: the perturbation model's tail sums, candidates [`Harness::ranks`].
    pub models: Vec<CellModel>,
}

/// A model and what the experiments need to know about its cells.
pub struct Harness {
    model: ModelFile,
    origin: String,
    registry: Registry,
    full: Network,
    /// State size of each cell layer.
    pub n: Vec<usize>,
    /// Names of each cell's compressed matrices.
    pub matrix_names: Vec<Vec<String>>,
    /// Per cell, per matrix: the factors `P = [σ_i u_i]`, row-major.
    pub factors: Vec<Vec<Vec<f32>>>,
    /// Per cell, per matrix: the dense matrix `P Qᵀ`.
    pub dense: Vec<Vec<Vec<f32>>>,
    /// Per cell, per matrix: the matrix whose input it also perturbs.
    pub via: Vec<Vec<Option<usize>>>,
    /// Ranks the experiments use (descending, without the dense one).
    pub ranks: Vec<usize>,
    /// Band gains per frame.
    pub bands: usize,
}

/// `cell` of the model from `origin` lacks the low-rank extension.
fn no_low_rank(origin: &str, cell: &hush_cell_host::Cell) -> LabError {
    LabError::NoLowRank {
        origin: origin.to_string(),
        cell: cell.id().to_string(),
    }
}

impl Harness {
    /// Loads the network of `model` and reads its cells' factors; `ranks`
    /// are the truncation ranks studied (descending).
    pub fn new(model: ModelFile, origin: &str, ranks: &[usize]) -> Result<Self, LabError> {
        let mut registry = hush_engine::cells::registry(None)?;
        let mut full = Network::build(&model, &mut registry, origin)?;
        let (mut n, mut matrix_names, mut factors) = (Vec::new(), Vec::new(), Vec::new());
        let (mut dense, mut via) = (Vec::new(), Vec::new());
        for cell in full.cells_mut() {
            let size = cell.sizes().state;
            let id = cell.id().to_string();
            let mut lr = cell.low_rank().ok_or_else(|| LabError::NoLowRank {
                origin: origin.to_string(),
                cell: id,
            })?;
            let names: Vec<String> = lr.matrices().iter().map(|m| m.name.clone()).collect();
            via.push(lr.matrices().iter().map(|m| m.via).collect::<Vec<_>>());
            let (mut fs, mut ds) = (Vec::new(), Vec::new());
            for m in 0..names.len() {
                let (mut p, mut qt) = (vec![0.0; size * size], vec![0.0; size * size]);
                lr.factors(m, Some(&mut p), Some(&mut qt))
                    .map_err(|source| LabError::CellCall {
                        call: format!("factors of matrix {m}"),
                        source,
                    })?;
                ds.push(dense_from_factors(size, &p, &qt));
                fs.push(p);
            }
            dense.push(ds);
            n.push(size);
            matrix_names.push(names);
            factors.push(fs);
        }
        let bands = model.spec.bands();
        Ok(Self {
            model,
            origin: origin.to_string(),
            registry,
            full,
            n,
            matrix_names,
            factors,
            dense,
            via,
            ranks: ranks.to_vec(),
            bands,
        })
    }

    /// Cell layers.
    pub fn cells(&self) -> usize {
        self.n.len()
    }

    fn candidates(&self, c: usize) -> Vec<usize> {
        let mut v = vec![self.n[c]];
        v.extend(self.ranks.iter().copied().filter(|&r| r < self.n[c]));
        v
    }

    /// Index of `rank` among the candidates of cell `c`.
    fn candidate(&self, c: usize, rank: usize) -> usize {
        self.candidates(c)
            .iter()
            .position(|&r| r == rank)
            .unwrap_or(0)
    }

    /// Runs the full-rank network over `seq`, recording the window and the
    /// probe statistics.
    pub fn reference(&mut self, seq: &Sequence) -> Result<Reference, LabError> {
        let w = seq.window();
        if w < 16 {
            return Err(LabError::ShortSequence {
                category: seq.category.clone(),
            });
        }
        let nin = self.full.input_len();
        self.full.reset();
        let mut probes: Vec<ProbeBuffers> = self
            .full
            .cells_mut()
            .map(|c| ProbeBuffers::new(c))
            .collect();
        let mut stats: Vec<CellStats> = (0..self.cells())
            .map(|c| CellStats::new(self.n[c], self.factors[c].len(), w))
            .collect();
        for s in &mut stats {
            s.start();
        }
        let mut states: Vec<Vec<f32>> = self.n.iter().map(|&n| vec![0.0; w * n]).collect();
        let mut gains = vec![0.0; w * self.bands];
        let mut g = vec![0.0; self.bands];
        for t in 0..WARMUP + w {
            self.full
                .step_inputs(&seq.inputs[t * nin..(t + 1) * nin], &mut g)
                .map_err(LabError::cell_call("full-rank network"))?;
            if t < WARMUP {
                continue;
            }
            let k = t - WARMUP;
            gains[k * self.bands..(k + 1) * self.bands].copy_from_slice(&g);
            for (c, h) in self.full.cell_states().enumerate() {
                states[c][k * h.len()..(k + 1) * h.len()].copy_from_slice(h);
            }
            for ((cell, probe), st) in self.full.cells_mut().zip(&mut probes).zip(&mut stats) {
                let Some(mut lr) = cell.low_rank() else {
                    return Err(no_low_rank(&self.origin, cell));
                };
                lr.probe(probe).map_err(LabError::cell_call("probe"))?;
                st.record_probe(probe);
            }
        }
        let mut models = Vec::new();
        for (c, st) in stats.iter_mut().enumerate() {
            while !st.analyse_step() {}
            let mut m = CellModel::new(self.n[c], &self.factors[c], self.candidates(c), st.max_lag);
            for (k, v) in self.via[c].iter().enumerate() {
                if let Some(t) = *v {
                    m = m.with_via(k, t, &self.dense[c][t]);
                }
            }
            m.begin_refresh();
            while !m.refresh_step(st) {}
            models.push(m);
        }
        Ok(Reference {
            states,
            gains,
            stats,
            models,
        })
    }

    /// A network with `trunc` applied.
    pub fn truncated(&mut self, trunc: Truncation) -> Result<Network, LabError> {
        let mut net = Network::build(&self.model, &mut self.registry, &self.origin)?;
        for (c, cell) in net.cells_mut().enumerate() {
            if trunc.cell.is_some_and(|t| t != c) {
                continue;
            }
            let Some(mut lr) = cell.low_rank() else {
                return Err(no_low_rank(&self.origin, cell));
            };
            for m in 0..lr.matrices().len() {
                if trunc.matrices == Matrices::Joint || trunc.matrices == Matrices::Only(m) {
                    lr.set_rank(m, trunc.rank)
                        .map_err(|source| LabError::CellCall {
                            call: format!("set_rank({m}, {})", trunc.rank),
                            source,
                        })?;
                }
            }
        }
        Ok(net)
    }

    /// Runs `net` over `seq` and measures its errors against `reference`.
    pub fn measure(
        &self,
        net: &mut Network,
        seq: &Sequence,
        reference: &Reference,
    ) -> Result<Errors, LabError> {
        let (w, nin, b) = (seq.window(), net.input_len(), self.bands);
        net.reset();
        let mut g = vec![0.0; b];
        let mut e = Errors {
            state_sq: vec![0.0; self.cells()],
            out_sq: 0.0,
            frames: w,
            bands: b,
        };
        for t in 0..WARMUP + w {
            net.step_inputs(&seq.inputs[t * nin..(t + 1) * nin], &mut g)
                .map_err(LabError::cell_call("truncated network"))?;
            if t < WARMUP {
                continue;
            }
            let k = t - WARMUP;
            let r = &reference.gains[k * b..(k + 1) * b];
            e.out_sq += g
                .iter()
                .zip(r)
                .map(|(x, y)| ((x - y) as f64).powi(2))
                .sum::<f64>();
            for (c, h) in net.cell_states().enumerate() {
                let n = h.len();
                let rh = &reference.states[c][k * n..(k + 1) * n];
                e.state_sq[c] += h
                    .iter()
                    .zip(rh)
                    .map(|(x, y)| ((x - y) as f64).powi(2))
                    .sum::<f64>();
            }
        }
        Ok(e)
    }

    /// Predicted mean squared state error `E‖e‖²` of cell `c` with its
    /// matrix `m` truncated to `rank` (all others dense), by `variant`.
    pub fn predict_single(
        &self,
        reference: &Reference,
        c: usize,
        m: usize,
        rank: usize,
        variant: Variant,
    ) -> f64 {
        let count = self.factors[c].len();
        let (stats, model) = (&reference.stats[c], &reference.models[c]);
        let mut cands = vec![0; count];
        cands[m] = self.candidate(c, rank);
        let e = match variant {
            Variant::Product => model.predict(stats, &cands, Form::Product, RetentionKind::Mean),
            Variant::ProductWeighted => model.predict(
                stats,
                &cands,
                Form::Product,
                RetentionKind::InjectionWeighted,
            ),
            Variant::ProjectionsOnly => {
                model.predict(stats, &cands, Form::ProjectionsOnly, RetentionKind::Mean)
            }
            Variant::CoherenceBlind => {
                model.predict(stats, &cands, Form::CoherenceBlind, RetentionKind::Mean)
            }
            Variant::Measured | Variant::MeasuredWeighted => {
                let mut ranks = vec![self.n[c]; count];
                ranks[m] = rank;
                let kind = if variant == Variant::Measured {
                    RetentionKind::Mean
                } else {
                    RetentionKind::InjectionWeighted
                };
                let via: Vec<Option<(usize, &[f32])>> = self.via[c]
                    .iter()
                    .map(|v| v.map(|t| (t, self.dense[c][t].as_slice())))
                    .collect();
                predict_measured_injection(stats, &self.factors[c], &ranks, &via, kind)
            }
        };
        e * e
    }

    /// Every single-matrix prediction of `reference`, for every rank and
    /// variant (the sums below reuse them).
    pub fn predictions(&self, reference: &Reference) -> Predictions {
        let mut sq = Vec::new();
        for c in 0..self.cells() {
            for m in 0..self.factors[c].len() {
                for &r in &self.ranks {
                    for v in Variant::ALL {
                        sq.push(self.predict_single(reference, c, m, r, v));
                    }
                }
            }
        }
        Predictions {
            sq,
            matrices: self.factors.iter().map(Vec::len).collect(),
            ranks: self.ranks.clone(),
        }
    }

    /// The truncated (cell, matrix) pairs of `trunc`.
    pub fn slots(&self, trunc: Truncation) -> Vec<(usize, usize)> {
        (0..self.cells())
            .filter(|&c| trunc.cell.is_none_or(|t| t == c))
            .flat_map(|c| {
                (0..self.factors[c].len())
                    .filter(move |&m| {
                        trunc.matrices == Matrices::Joint || trunc.matrices == Matrices::Only(m)
                    })
                    .map(move |m| (c, m))
            })
            .collect()
    }

    /// Predicted `E‖e‖²` of cell `c` under `trunc` (its matrices' single
    /// predictions add: the per-unit injections are additive in the model).
    pub fn predict_state_sq(
        &self,
        p: &Predictions,
        trunc: Truncation,
        c: usize,
        variant: Variant,
    ) -> f64 {
        self.slots(trunc)
            .into_iter()
            .filter(|&(cc, _)| cc == c)
            .map(|(c, m)| p.single(c, m, trunc.rank, variant))
            .sum()
    }

    /// Predicted mean squared gain error per band under `trunc`: each
    /// truncated matrix's state error through its readout sensitivity,
    /// combined in quadrature (what the controller budgets).
    pub fn predict_out_sq(
        &self,
        p: &Predictions,
        trunc: Truncation,
        readout: &Readout,
        variant: Variant,
    ) -> f64 {
        self.slots(trunc)
            .into_iter()
            .map(|(c, m)| {
                readout.at(c, m, trunc.rank).powi(2) * p.single(c, m, trunc.rank, variant)
            })
            .sum()
    }
}

/// Single-matrix predictions `E‖e‖²` of one reference run, by cell, matrix,
/// rank and variant.
pub struct Predictions {
    sq: Vec<f64>,
    matrices: Vec<usize>,
    ranks: Vec<usize>,
}

impl Predictions {
    /// `E‖e‖²` of cell `c` with matrix `m` alone at `rank`, by `variant`.
    pub fn single(&self, c: usize, m: usize, rank: usize, variant: Variant) -> f64 {
        let r = self.ranks.iter().position(|&x| x == rank).unwrap_or(0);
        let v = Variant::ALL.iter().position(|&x| x == variant).unwrap_or(0);
        let before: usize = self.matrices[..c].iter().sum::<usize>() + m;
        self.sq[(before * self.ranks.len() + r) * Variant::ALL.len() + v]
    }
}

impl Reference {
    /// Mean output slope `mean_b (g(1−g))²` of the full-rank gains over the
    /// window (what scales the readout sensitivity, see
    /// [`hush_engine::adapt::readout`]).
    pub fn output_slope_sq(&self, bands: usize) -> f64 {
        let frames = self.gains.len() / bands.max(1);
        self.gains
            .chunks(bands)
            .map(hush_engine::adapt::readout::output_slope_sq)
            .sum::<f64>()
            / frames.max(1) as f64
    }
}

/// Every truncation studied: per cell, each matrix alone and all jointly,
/// at each rank; and every cell jointly at each rank.
pub fn truncations(h: &Harness) -> Vec<Truncation> {
    let mut v = Vec::new();
    for &rank in &h.ranks {
        for c in 0..h.cells() {
            v.push(Truncation {
                cell: Some(c),
                matrices: Matrices::Joint,
                rank,
            });
            for m in 0..h.factors[c].len() {
                v.push(Truncation {
                    cell: Some(c),
                    matrices: Matrices::Only(m),
                    rank,
                });
            }
        }
        v.push(Truncation {
            cell: None,
            matrices: Matrices::Joint,
            rank,
        });
    }
    v
}

/// A readable name of `trunc`, e.g. `cell 1 u_f r8` or `all r8`.
pub fn label(h: &Harness, trunc: Truncation) -> String {
    let what = match (trunc.cell, trunc.matrices) {
        (None, _) => "all".to_string(),
        (Some(c), Matrices::Joint) => format!("cell {c} joint"),
        (Some(c), Matrices::Only(m)) => format!("cell {c} {}", h.matrix_names[c][m]),
    };
    format!("{what} r{}", trunc.rank)
}

/// The §1b refinement of the coherence term: the predicted RMS state error
/// from the *measured* injection of the recorded probe window,
/// `s_j(t) = Σ_M g_Mj(t) Σ_{i≥r_M} P_M[j,i] p_Mi(t)`, its uncentred
/// autocorrelation over lags ≤ `stats.lags` and the retention γ_j, instead of
/// the product of gate and projection autocorrelations. `factors[M]` is
/// `P = [σ_i u_i]` row-major (`p[j·n + i] = σ_i u_ji`); `ranks[M]` the rank
/// kept (n or more: dense); `via[M]`, when the matrix has a via path, the
/// target matrix and its dense value V (n×n row-major), adding
/// `g_target,k Σ_j V_kj d_Mj Δ_Mj` exactly. Offline (calibration, validation): allocates and
/// costs O(T·n²) per matrix, so the controller does not use it on the audio
/// thread.
pub fn predict_measured_injection(
    stats: &CellStats,
    factors: &[Vec<f32>],
    ranks: &[usize],
    via: &[Option<(usize, &[f32])>],
    retention: RetentionKind,
) -> f64 {
    let (n, w) = (stats.n, stats.window);
    let mut s = vec![0.0f64; w * n];
    let mut delta = vec![0.0f64; n];
    for (m, (f, &r)) in factors.iter().zip(ranks).enumerate() {
        if r >= n {
            continue;
        }
        let (p, g) = (stats.projections(m), stats.gate_derivatives(m));
        let d_in = stats.input_derivatives(m);
        for t in 0..w {
            let pt = &p[t * n..(t + 1) * n];
            for j in 0..n {
                let row = &f[j * n..(j + 1) * n];
                delta[j] = (r..n).map(|i| row[i] as f64 * pt[i] as f64).sum();
                s[t * n + j] += g[t * n + j] as f64 * delta[j];
            }
            if let Some(Some((target, v))) = via.get(m) {
                let gt = &stats.gate_derivatives(*target)[t * n..(t + 1) * n];
                for k in 0..n {
                    let a: f64 = (0..n)
                        .map(|j| v[k * n + j] as f64 * d_in[t * n + j] as f64 * delta[j])
                        .sum();
                    s[t * n + k] += gt[k] as f64 * a;
                }
            }
        }
    }
    let mut total = 0.0;
    for j in 0..n {
        let c0 = (0..w).map(|t| s[t * n + j].powi(2)).sum::<f64>() / w as f64;
        if c0 <= 0.0 {
            continue;
        }
        let gamma = match retention {
            RetentionKind::Mean => stats.retention[j],
            RetentionKind::InjectionWeighted => stats.retention_weighted[j],
        }
        .clamp(0.0, 0.995) as f64;
        let (mut sum, mut gp) = (0.0, 1.0);
        for tau in 1..=stats.lags.min(w - 1) {
            gp *= gamma;
            let c = (tau..w)
                .map(|t| s[t * n + j] * s[(t - tau) * n + j])
                .sum::<f64>()
                / (w - tau) as f64;
            sum += gp * c / c0;
        }
        total += c0 * ((1.0 + 2.0 * sum) / (1.0 - gamma * gamma)).max(0.0);
    }
    total.sqrt()
}
