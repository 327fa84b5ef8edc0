//! `hush-lab memory`: the noiseless memorisation experiment of J. A. Cox
//! (arXiv 1612.00891; the Hochreiter & Schmidhuber / Martens & Sutskever
//! task). A random pattern of `pattern` symbols (alphabet `symbols`), each
//! held for `k` steps, then `T` blank steps, a cue, then the pattern must be
//! recalled (each symbol again for `k` steps). A small Elman RNN and a small
//! MGRU are trained in candle (equations and tensor names exactly those of
//! the `hush.elman` and `hush.mgru` plugins), then run through the real
//! plugins: full rank beside every truncated rank (no fine-tuning), recall
//! accuracy and the measured state error against the perturbation model's
//! predictions — per-unit (DESIGN §1, `Form::Product`, with the via path of
//! matrices that declare one) and mean-Jacobian (Lyapunov, DESIGN §1c;
//! product form without the via path, measured injection with it).
//!
//! Runs on the main thread, single-threaded candle CPU; results go to
//! `--out` (default `.lab/memory/`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use crate::lyapunov::{MeanJacobianModel, Propagator};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use hush_cell_host::{Cell, CellOptions, CellSizes, ProbeBuffers, Tensor as CellTensor};
use hush_engine::adapt::perturbation::{CellModel, Form, RetentionKind, dense_from_factors};
use hush_engine::adapt::stats::CellStats;
use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::rng::Rng;
use crate::xyplot::{Series, xy_svg};

/// Options of `hush-lab memory`.
#[derive(Debug, Clone, clap::Args)]
pub struct MemoryArgs {
    /// Output directory (weights, logs, tables, plots, JSON).
    #[arg(long, default_value = ".lab/memory")]
    pub out: PathBuf,
    /// Cells to train and test: comma-separated `elman`, `mgru`.
    #[arg(long, default_value = "elman,mgru")]
    pub cells: String,
    /// State size n of each cell.
    #[arg(long, default_value_t = 64)]
    pub state: usize,
    /// Alphabet size.
    #[arg(long, default_value_t = 4)]
    pub symbols: usize,
    /// Symbols per pattern.
    #[arg(long, default_value_t = 5)]
    pub pattern: usize,
    /// Delays T tested (the net is trained on delays 1..=max).
    #[arg(long, default_value = "5,10,20")]
    pub delays: String,
    /// Hold times k tested and trained on (input coherence).
    #[arg(long, default_value = "1,2,4")]
    pub holds: String,
    /// Truncated ranks tested (ranks with 2r ≥ n run dense in the plugins).
    #[arg(long, default_value = "24,16,12,8,6,4,2")]
    pub ranks: String,
    /// Optimizer steps per cell.
    #[arg(long, default_value_t = 3000)]
    pub steps: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Learning rate (AdamW).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Learning rate of the Elman net (slower to train than the MGRU).
    #[arg(long, default_value_t = 3e-3)]
    pub elman_lr: f64,
    /// Curriculum: raise the largest training delay once the last 50
    /// batches recalled at least this fraction of symbols.
    #[arg(long, default_value_t = 0.85)]
    pub advance_at: f64,
    /// Test sequences per (cell, k, T).
    #[arg(long, default_value_t = 150)]
    pub sequences: usize,
    /// Largest lag of the Lyapunov coherence terms.
    #[arg(long, default_value_t = 64)]
    pub lyap_lags: usize,
    /// Steps of the window used for the measured-injection Lyapunov form.
    #[arg(long, default_value_t = 4096)]
    pub injection_steps: usize,
    /// Seed of everything (weights, curriculum, test sequences).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Reuse weights already trained in `--out` (skip training).
    #[arg(long)]
    pub reuse: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    Elman,
    Mgru,
}

impl Kind {
    fn parse(s: &str) -> Result<Self, LabError> {
        match s.trim() {
            "elman" => Ok(Kind::Elman),
            "mgru" => Ok(Kind::Mgru),
            o => Err(LabError::Usage(format!(
                "--cells: unknown cell `{o}` (elman, mgru)"
            ))),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Elman => "elman",
            Kind::Mgru => "mgru",
        }
    }
    fn id(self) -> &'static str {
        match self {
            Kind::Elman => "hush.elman",
            Kind::Mgru => "hush.mgru",
        }
    }
    fn matrices(self) -> usize {
        match self {
            Kind::Elman => 1,
            Kind::Mgru => 2,
        }
    }
}

/// The task's geometry.
#[derive(Debug, Clone, Copy)]
struct Task {
    symbols: usize,
    pattern: usize,
}

/// One sequence: inputs `[step][m]` and recall targets per recall step.
struct Seq {
    inputs: Vec<f32>,
    targets: Vec<usize>,
    len: usize,
    recall_start: usize,
}

impl Task {
    /// Input size: symbols, blank, cue.
    fn m(self) -> usize {
        self.symbols + 2
    }

    fn sample(self, k: usize, delay: usize, rng: &mut Rng) -> Seq {
        let m = self.m();
        let p = self.pattern;
        let pat: Vec<usize> = (0..p).map(|_| rng.below(self.symbols)).collect();
        let recall_start = p * k + delay + 1;
        let len = recall_start + p * k;
        let mut inputs = vec![0.0f32; len * m];
        for t in 0..len {
            let ch = if t < p * k {
                pat[t / k]
            } else if t == p * k + delay {
                self.symbols + 1
            } else {
                self.symbols
            };
            inputs[t * m + ch] = 1.0;
        }
        let targets = (0..p * k).map(|r| pat[r / k]).collect();
        Seq {
            inputs,
            targets,
            len,
            recall_start,
        }
    }
}

/// Trained weights: the cell's tensors (plugin names) and the readout.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Weights {
    kind: Kind,
    n: usize,
    m: usize,
    classes: usize,
    /// (name, shape, row-major values), cell tensors then `wo`, `bo`.
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    /// Training log lines.
    log: Vec<String>,
}

impl Weights {
    fn get(&self, name: &str) -> &[f32] {
        &self
            .tensors
            .iter()
            .find(|t| t.0 == name)
            .unwrap_or_else(|| panic!("tensor {name}"))
            .2
    }

    /// Recall class from a state: argmax of `wo h + bo`.
    fn readout(&self, h: &[f32]) -> usize {
        let (wo, bo) = (self.get("wo"), self.get("bo"));
        let n = self.n;
        (0..self.classes)
            .map(|c| {
                let v: f32 = bo[c]
                    + wo[c * n..(c + 1) * n]
                        .iter()
                        .zip(h)
                        .map(|(a, b)| a * b)
                        .sum::<f32>();
                (c, v)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|x| x.0)
            .unwrap_or(0)
    }

    fn instantiate(&self, reg: &mut hush_cell_host::Registry) -> Result<Cell, LabError> {
        let t: Vec<CellTensor<'_>> = self
            .tensors
            .iter()
            .filter(|t| t.0 != "wo" && t.0 != "bo")
            .map(|(name, shape, data)| CellTensor { name, shape, data })
            .collect();
        Ok(reg.create(
            self.kind.id(),
            CellSizes {
                input: self.m,
                state: self.n,
            },
            &t,
            CellOptions::default(),
        )?)
    }
}

/// A random orthogonal n×n matrix (Gram–Schmidt of a Gaussian matrix).
fn orthogonal(n: usize, rng: &mut Rng) -> Vec<f32> {
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(n);
    while q.len() < n {
        let mut v: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        for b in &q {
            let d: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
            for (x, y) in v.iter_mut().zip(b) {
                *x -= d * y;
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-6 {
            q.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    q.into_iter().flatten().map(|x| x as f32).collect()
}

/// The candle model being trained.
struct Trainable {
    kind: Kind,
    n: usize,
    m: usize,
    classes: usize,
    names: Vec<(String, Vec<usize>)>,
    vars: Vec<Var>,
}

impl Trainable {
    fn new(kind: Kind, n: usize, task: Task, dev: &Device, seed: u64) -> candle_core::Result<Self> {
        let m = task.m();
        let classes = task.symbols;
        let mut rng = Rng::new(seed ^ 0x3E30_12D5);
        let gauss = |len: usize, std: f64, rng: &mut Rng| -> Vec<f32> {
            (0..len).map(|_| (rng.normal() * std) as f32).collect()
        };
        let sm = 1.0 / (m as f64).sqrt();
        let sn = 1.0 / (n as f64).sqrt();
        let mut init: Vec<(String, Vec<usize>, Vec<f32>)> = match kind {
            Kind::Elman => vec![
                ("w".into(), vec![n, m], gauss(n * m, sm, &mut rng)),
                ("u".into(), vec![n, n], orthogonal(n, &mut rng)),
                ("b".into(), vec![n], vec![0.0; n]),
            ],
            Kind::Mgru => vec![
                ("w_f".into(), vec![n, m], gauss(n * m, sm, &mut rng)),
                ("u_f".into(), vec![n, n], gauss(n * n, 0.5 * sn, &mut rng)),
                ("b_f".into(), vec![n], vec![-2.0; n]),
                ("w_c".into(), vec![n, m], gauss(n * m, sm, &mut rng)),
                ("u_c".into(), vec![n, n], orthogonal(n, &mut rng)),
                ("b_c".into(), vec![n], vec![0.0; n]),
            ],
        };
        init.push((
            "wo".into(),
            vec![classes, n],
            gauss(classes * n, sn, &mut rng),
        ));
        init.push(("bo".into(), vec![classes], vec![0.0; classes]));
        let mut names = Vec::new();
        let mut vars = Vec::new();
        for (name, shape, data) in init {
            vars.push(Var::from_tensor(&Tensor::from_vec(
                data,
                shape.clone(),
                dev,
            )?)?);
            names.push((name, shape));
        }
        Ok(Self {
            kind,
            n,
            m,
            classes,
            names,
            vars,
        })
    }

    fn var(&self, name: &str) -> &Tensor {
        let i = self.names.iter().position(|x| x.0 == name).expect("param");
        self.vars[i].as_tensor()
    }

    /// Runs a batch of equal-length sequences; returns recall logits
    /// `[recall·batch, classes]` (recall-step major) and the final states.
    fn forward(&self, seqs: &[Seq], dev: &Device) -> candle_core::Result<(Tensor, Tensor)> {
        let b = seqs.len();
        let (len, rs) = (seqs[0].len, seqs[0].recall_start);
        let m = self.m;
        let mut h = Tensor::zeros((b, self.n), DType::F32, dev)?;
        let wo_t = self.var("wo").t()?;
        let bo = self.var("bo");
        let mut logits = Vec::with_capacity(len - rs);
        let params: Vec<Tensor> = match self.kind {
            Kind::Elman => ["w", "u", "b"]
                .iter()
                .map(|n| self.var(n).clone())
                .collect(),
            Kind::Mgru => ["w_f", "u_f", "b_f", "w_c", "u_c", "b_c"]
                .iter()
                .map(|n| self.var(n).clone())
                .collect(),
        };
        let tr: Vec<Tensor> = params
            .iter()
            .map(|p| if p.rank() == 2 { p.t() } else { Ok(p.clone()) })
            .collect::<candle_core::Result<_>>()?;
        for t in 0..len {
            let mut xs = Vec::with_capacity(b * m);
            for s in seqs {
                xs.extend_from_slice(&s.inputs[t * m..(t + 1) * m]);
            }
            let x = Tensor::from_vec(xs, (b, m), dev)?;
            h = match self.kind {
                Kind::Elman => x
                    .matmul(&tr[0])?
                    .add(&h.matmul(&tr[1])?)?
                    .broadcast_add(&tr[2])?
                    .tanh()?,
                Kind::Mgru => {
                    let f = candle_nn::ops::sigmoid(
                        &x.matmul(&tr[0])?
                            .add(&h.matmul(&tr[1])?)?
                            .broadcast_add(&tr[2])?,
                    )?;
                    let c = x
                        .matmul(&tr[3])?
                        .add(&(&f * &h)?.matmul(&tr[4])?)?
                        .broadcast_add(&tr[5])?
                        .tanh()?;
                    h.add(&(&f * (c - &h)?)?)?
                }
            };
            if t >= rs {
                logits.push(h.matmul(&wo_t)?.broadcast_add(bo)?);
            }
        }
        Ok((Tensor::cat(&logits, 0)?, h))
    }

    fn export(&self, log: Vec<String>) -> candle_core::Result<Weights> {
        let tensors = self
            .names
            .iter()
            .zip(&self.vars)
            .map(|((name, shape), v)| {
                Ok((
                    name.clone(),
                    shape.clone(),
                    v.as_tensor().flatten_all()?.to_vec1::<f32>()?,
                ))
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Weights {
            kind: self.kind,
            n: self.n,
            m: self.m,
            classes: self.classes,
            tensors,
            log,
        })
    }
}

fn targets_tensor(seqs: &[Seq], dev: &Device) -> candle_core::Result<Tensor> {
    let r = seqs[0].targets.len();
    let mut t = Vec::with_capacity(r * seqs.len());
    for step in 0..r {
        for s in seqs {
            t.push(s.targets[step] as u32);
        }
    }
    Tensor::from_vec(t, r * seqs.len(), dev)
}

fn clip(
    vars: &[Var],
    grads: &mut candle_core::backprop::GradStore,
    max_norm: f64,
) -> candle_core::Result<f64> {
    let mut total = 0.0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            total += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = total.sqrt();
    if norm > max_norm && norm.is_finite() {
        for v in vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                let scaled = (g * (max_norm / norm))?;
                grads.insert(v.as_tensor(), scaled);
            }
        }
    }
    Ok(norm)
}

/// Trains one cell with a delay curriculum (delays 1..=T_cur, T_cur grown
/// ×1.5 whenever the last 50 batches recalled `--advance-at` of the symbols).
fn train(
    kind: Kind,
    args: &MemoryArgs,
    task: Task,
    holds: &[usize],
    t_max: usize,
) -> Result<Weights, LabError> {
    let dev = Device::Cpu;
    let net = Trainable::new(kind, args.state, task, &dev, args.seed)?;
    let lr = match kind {
        Kind::Elman => args.elman_lr,
        Kind::Mgru => args.lr,
    };
    let mut opt = AdamW::new(
        net.vars.clone(),
        ParamsAdamW {
            lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut rng = Rng::new(args.seed.wrapping_mul(31) ^ kind as u64);
    let mut t_cur = 5.min(t_max);
    let (mut acc_sum, mut loss_sum, mut count) = (0.0, 0.0, 0);
    let mut log = Vec::new();
    let start = Instant::now();
    for step in 0..args.steps {
        if step == args.steps * 4 / 5 {
            opt.set_learning_rate(lr / 4.0);
        }
        let k = holds[rng.below(holds.len())];
        let delay = 1 + rng.below(t_cur);
        let seqs: Vec<Seq> = (0..args.batch)
            .map(|_| task.sample(k, delay, &mut rng))
            .collect();
        let tgt = targets_tensor(&seqs, &dev)?;
        let (logits, _) = net.forward(&seqs, &dev)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &tgt)?;
        let pred = logits.argmax(1)?;
        let acc = pred
            .eq(&tgt)?
            .to_dtype(DType::F32)?
            .mean_all()?
            .to_scalar::<f32>()? as f64;
        let mut grads = loss.backward()?;
        clip(&net.vars, &mut grads, 1.0)?;
        opt.step(&grads)?;
        acc_sum += acc;
        loss_sum += loss.to_scalar::<f32>()? as f64;
        count += 1;
        if count == 50 {
            let a = acc_sum / count as f64;
            let line = format!(
                "{} step {:5} T_cur {:3} loss {:.4} acc {:.3} ({:.0} s)",
                kind.name(),
                step + 1,
                t_cur,
                loss_sum / count as f64,
                a,
                start.elapsed().as_secs_f64()
            );
            eprintln!("{line}");
            log.push(line);
            if a >= args.advance_at && t_cur < t_max {
                t_cur = ((t_cur as f64 * 1.5).ceil() as usize).min(t_max);
            }
            (acc_sum, loss_sum, count) = (0.0, 0.0, 0);
        }
    }
    log.push(format!("final T_cur {t_cur} (max {t_max})"));
    Ok(net.export(log)?)
}

/// One measured point.
#[derive(Debug, Clone, Serialize)]
struct Point {
    cell: &'static str,
    hold: usize,
    delay: usize,
    rank: usize,
    /// Recall accuracy (fraction of recall symbols), truncated net.
    accuracy: f64,
    /// Recall accuracy at full rank.
    accuracy_full: f64,
    /// RMS state error over all steps of all sequences.
    rms: f64,
    /// Median over sequences of the per-sequence RMS state error.
    median: f64,
    /// Per-unit model, product form, mean retention, with the via path
    /// (`CellModel::with_via`; MGRU U_f → U_c).
    per_unit: f64,
    /// Mean-Jacobian (Lyapunov) model, product form (`MeanJacobianModel`
    /// has no via-path term).
    lyapunov: f64,
    /// Mean-Jacobian model, measured injection (via path included).
    lyapunov_injection: f64,
    /// Spectral radius of the mean Jacobian.
    radius: f64,
    /// Mean per-unit retention γ.
    retention: f64,
}

/// Runs cell `w` on all sequences at the current rank; returns per-step states.
fn run_all(cell: &mut Cell, seqs: &[Seq], m: usize, n: usize) -> Result<Vec<Vec<f32>>, LabError> {
    let mut out = Vec::with_capacity(seqs.len());
    let (mut h, mut nh) = (vec![0.0f32; n], vec![0.0f32; n]);
    for s in seqs {
        h.fill(0.0);
        let mut states = Vec::with_capacity(s.len * n);
        for t in 0..s.len {
            cell.step(&s.inputs[t * m..(t + 1) * m], &h, &mut nh)
                .map_err(LabError::cell_call("step"))?;
            std::mem::swap(&mut h, &mut nh);
            states.extend_from_slice(&h);
        }
        out.push(states);
    }
    Ok(out)
}

fn accuracy(w: &Weights, seqs: &[Seq], states: &[Vec<f32>]) -> f64 {
    let n = w.n;
    let (mut ok, mut all) = (0usize, 0usize);
    for (s, st) in seqs.iter().zip(states) {
        for (r, &target) in s.targets.iter().enumerate() {
            let t = s.recall_start + r;
            ok += (w.readout(&st[t * n..(t + 1) * n]) == target) as usize;
            all += 1;
        }
    }
    ok as f64 / all.max(1) as f64
}

/// Full rank beside every truncated rank for one (k, T).
fn evaluate(
    w: &Weights,
    args: &MemoryArgs,
    task: Task,
    hold: usize,
    delay: usize,
    ranks: &[usize],
) -> Result<Vec<Point>, LabError> {
    let (n, m) = (w.n, w.m);
    let mats = w.kind.matrices();
    let mut rng = Rng::for_item(args.seed, 77, (hold * 1000 + delay) as u64);
    let seqs: Vec<Seq> = (0..args.sequences)
        .map(|_| task.sample(hold, delay, &mut rng))
        .collect();
    let window: usize = seqs.iter().map(|s| s.len).sum();
    let mut reg = hush_engine::cells::registry(None)?;
    let mut full = w.instantiate(&mut reg)?;
    let mut low = w.instantiate(&mut reg)?;
    // Full-rank run with the probe and the mean Jacobian.
    let mut stats = CellStats::new(n, mats, window);
    stats.start();
    let mut probe = ProbeBuffers::new(&full);
    let mut jac = vec![0.0f32; n * n];
    let mut jsum = vec![0.0f64; n * n];
    let mut jcount = 0usize;
    let mut full_states = Vec::with_capacity(seqs.len());
    let (mut h, mut nh) = (vec![0.0f32; n], vec![0.0f32; n]);
    for s in &seqs {
        h.fill(0.0);
        let mut states = Vec::with_capacity(s.len * n);
        for t in 0..s.len {
            full.step(&s.inputs[t * m..(t + 1) * m], &h, &mut nh)
                .map_err(LabError::cell_call("step"))?;
            std::mem::swap(&mut h, &mut nh);
            states.extend_from_slice(&h);
            let Some(mut lr) = full.low_rank() else {
                return Err(no_low_rank(&full));
            };
            lr.probe(&mut probe).map_err(LabError::cell_call("probe"))?;
            stats.record_probe(&probe);
            lr.jacobian(&mut jac)
                .map_err(LabError::cell_call("jacobian"))?;
            for (a, &b) in jsum.iter_mut().zip(&jac) {
                *a += b as f64;
            }
            jcount += 1;
        }
        full_states.push(states);
    }
    while !stats.analyse_step() {}
    let acc_full = accuracy(w, &seqs, &full_states);
    // Factors P, dense matrices P Qᵀ and via targets (the MGRU's U_f also
    // perturbs U_c's input f⊙h through the probe's input derivatives d).
    let mut factors = vec![vec![0.0f32; n * n]; mats];
    let mut dense = Vec::with_capacity(mats);
    let via: Vec<Option<usize>> = {
        let Some(mut lr) = full.low_rank() else {
            return Err(no_low_rank(&full));
        };
        let via = lr.matrices().iter().map(|mi| mi.via).collect();
        for (mi, f) in factors.iter_mut().enumerate() {
            let mut qt = vec![0.0f32; n * n];
            lr.factors(mi, Some(f), Some(&mut qt))
                .map_err(|source| LabError::CellCall {
                    call: format!("factors of matrix {mi}"),
                    source,
                })?;
            dense.push(dense_from_factors(n, f, &qt));
        }
        via
    };
    let mut cands = vec![n];
    cands.extend(ranks.iter().copied());
    let mut model = CellModel::new(n, &factors, cands.clone(), stats.max_lag);
    for (mi, v) in via.iter().enumerate() {
        if let Some(target) = *v {
            model = model.with_via(mi, target, &dense[target]);
        }
    }
    model.begin_refresh();
    while !model.refresh_step(&stats) {}
    let jbar: Vec<f64> = jsum.iter().map(|v| v / jcount as f64).collect();
    let prop = Propagator::new(n, &jbar, args.lyap_lags.min(stats.max_lag));
    let mj = MeanJacobianModel::new(&prop, &factors, &stats, cands.clone());
    let retention = stats.retention.iter().map(|&g| g as f64).sum::<f64>() / n as f64;
    // Series for the measured-injection form.
    let inj_steps = args.injection_steps.min(window);
    let proj: Vec<&[f32]> = (0..mats).map(|mi| stats.projections(mi)).collect();
    let gates: Vec<&[f32]> = (0..mats).map(|mi| stats.gate_derivatives(mi)).collect();
    let d_in: Vec<&[f32]> = (0..mats).map(|mi| stats.input_derivatives(mi)).collect();
    let mut delta = vec![0.0f32; n];
    let mut points = Vec::new();
    for (ci, &rank) in ranks.iter().enumerate() {
        {
            let Some(mut lr) = low.low_rank() else {
                return Err(no_low_rank(&low));
            };
            for mi in 0..mats {
                lr.set_rank(mi, rank).map_err(|source| LabError::CellCall {
                    call: format!("set_rank({mi}, {rank})"),
                    source,
                })?;
            }
        }
        let states = run_all(&mut low, &seqs, m, n)?;
        let acc = accuracy(w, &seqs, &states);
        let mut total = 0.0f64;
        let mut per_seq = Vec::with_capacity(seqs.len());
        for (a, b) in states.iter().zip(&full_states) {
            let e2: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
            total += e2;
            per_seq.push((e2 / (a.len() / n) as f64).sqrt());
        }
        per_seq.sort_by(f64::total_cmp);
        let k = ci + 1;
        let kk = vec![k; mats];
        let per_unit = model.predict(&stats, &kk, Form::Product, RetentionKind::Mean);
        // Measured injection s_t = Σ_M g_M ⊙ Δ_M, Δ_M = P_M[:, r..] p_M[r..],
        // plus the via path g_target ⊙ (V_target (d_M ⊙ Δ_M)).
        let mut s = vec![0.0f64; inj_steps * n];
        for mi in 0..mats {
            let p = &factors[mi];
            for t in 0..inj_steps {
                let pt = &proj[mi][t * n..(t + 1) * n];
                let gt = &gates[mi][t * n..(t + 1) * n];
                for j in 0..n {
                    delta[j] = (rank..n).map(|i| p[j * n + i] * pt[i]).sum();
                    s[t * n + j] += (gt[j] * delta[j]) as f64;
                }
                if let Some(target) = via[mi] {
                    let v = &dense[target];
                    let dt = &d_in[mi][t * n..(t + 1) * n];
                    let gc = &gates[target][t * n..(t + 1) * n];
                    for k in 0..n {
                        let a: f64 = (0..n)
                            .map(|j| v[k * n + j] as f64 * dt[j] as f64 * delta[j] as f64)
                            .sum();
                        s[t * n + k] += gc[k] as f64 * a;
                    }
                }
            }
        }
        let lyap_inj = prop.trace_from_injection(&s, inj_steps).max(0.0).sqrt();
        points.push(Point {
            cell: w.kind.name(),
            hold,
            delay,
            rank,
            accuracy: acc,
            accuracy_full: acc_full,
            rms: (total / window as f64).sqrt(),
            median: per_seq[per_seq.len() / 2],
            per_unit,
            lyapunov: mj.predict(&kk),
            lyapunov_injection: lyap_inj,
            radius: prop.radius,
            retention,
        });
    }
    Ok(points)
}

/// Largest |h_candle − h_plugin| over a few sequences at full rank.
fn equivalence(
    w: &Weights,
    task: Task,
    holds: &[usize],
    delay: usize,
    seed: u64,
) -> Result<f64, LabError> {
    let dev = Device::Cpu;
    let mut net = Trainable::new(w.kind, w.n, task, &dev, 0)?;
    net.vars = w
        .tensors
        .iter()
        .map(|(_, shape, data)| {
            Tensor::from_vec(data.clone(), shape.clone(), &dev).and_then(|t| Var::from_tensor(&t))
        })
        .collect::<candle_core::Result<_>>()?;
    let mut reg = hush_engine::cells::registry(None)?;
    let mut cell = w.instantiate(&mut reg)?;
    let mut worst = 0.0f64;
    let mut rng = Rng::new(seed ^ 0xE0);
    for &k in holds {
        let seqs: Vec<Seq> = (0..4).map(|_| task.sample(k, delay, &mut rng)).collect();
        let (_, h) = net.forward(&seqs, &dev)?;
        let hc: Vec<f32> = h.flatten_all()?.to_vec1()?;
        let states = run_all(&mut cell, &seqs, w.m, w.n)?;
        for (b, (s, st)) in seqs.iter().zip(&states).enumerate() {
            let last = &st[(s.len - 1) * w.n..s.len * w.n];
            for (x, y) in last.iter().zip(&hc[b * w.n..(b + 1) * w.n]) {
                worst = worst.max((x - y).abs() as f64);
            }
        }
    }
    Ok(worst)
}

/// The comma-separated numbers `s` of the option `option`.
fn list(option: &str, s: &str) -> Result<Vec<usize>, LabError> {
    s.split(',')
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| LabError::Usage(format!("{option}: bad number `{v}`")))
        })
        .collect()
}

/// The memory experiment's `cell` lacks the low-rank extension.
fn no_low_rank(cell: &Cell) -> LabError {
    LabError::NoLowRank {
        origin: "hush-lab memory".into(),
        cell: cell.id().to_string(),
    }
}

fn in_band(r: f64) -> bool {
    (0.67..=1.5).contains(&r)
}

/// Runs the experiment.
pub fn run(args: &MemoryArgs, command_line: &str) -> Result<(), LabError> {
    let kinds: Vec<Kind> = args
        .cells
        .split(',')
        .map(Kind::parse)
        .collect::<Result<_, _>>()?;
    let delays = list("--delays", &args.delays)?;
    let holds = list("--holds", &args.holds)?;
    let ranks = list("--ranks", &args.ranks)?;
    if ranks.iter().any(|&r| r == 0 || r >= args.state) || ranks.windows(2).any(|w| w[0] <= w[1]) {
        return Err(LabError::Usage(
            "--ranks must be descending, each in 1..n".into(),
        ));
    }
    let task = Task {
        symbols: args.symbols,
        pattern: args.pattern,
    };
    let t_max = delays.iter().copied().max().unwrap_or(10);
    std::fs::create_dir_all(&args.out).map_err(LabError::write(&args.out))?;
    let mut all: Vec<Point> = Vec::new();
    let mut report = String::new();
    let _ = writeln!(report, "# hush-lab memory\n\n`{command_line}`\n");
    let _ = writeln!(
        report,
        "Task: {} symbols, pattern of {}, each held k steps, blank delay T, cue, recall (k steps per symbol). n = {}, ranks {:?} (no fine-tuning).\n",
        args.symbols, args.pattern, args.state, ranks
    );
    for &kind in &kinds {
        let path = args.out.join(format!("{}.json", kind.name()));
        let w: Weights = if args.reuse && path.exists() {
            let text = std::fs::read_to_string(&path).map_err(LabError::read(&path))?;
            serde_json::from_str(&text).map_err(LabError::json(&path))?
        } else {
            let start = Instant::now();
            let w = train(kind, args, task, &holds, t_max)?;
            eprintln!(
                "{}: trained in {:.0} s",
                kind.name(),
                start.elapsed().as_secs_f64()
            );
            std::fs::write(
                &path,
                serde_json::to_string(&w).map_err(LabError::json(&path))?,
            )
            .map_err(LabError::write(&path))?;
            w
        };
        let eq = equivalence(&w, task, &holds, t_max, args.seed)?;
        let _ = writeln!(
            report,
            "## {}\n\nTraining: {}. Candle vs plugin final state, max |Δh| = {eq:.2e}.\n",
            kind.name(),
            w.log
                .iter()
                .rev()
                .take(2)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
        eprintln!("{}: candle vs plugin max |dh| {eq:.2e}", kind.name());
        let mut pts = Vec::new();
        for &hold in &holds {
            for &delay in &delays {
                let start = Instant::now();
                let p = evaluate(&w, args, task, hold, delay, &ranks)?;
                eprintln!(
                    "{} k {hold} T {delay}: {:.0} s",
                    kind.name(),
                    start.elapsed().as_secs_f64()
                );
                pts.extend(p);
            }
        }
        report.push_str(&tables(kind, &pts, &ranks, &holds, &delays));
        let p = args.out.join(format!("accuracy_{}.svg", kind.name()));
        std::fs::write(&p, accuracy_svg(kind, &pts, args.state)).map_err(LabError::write(&p))?;
        let p = args.out.join(format!("prediction_{}.svg", kind.name()));
        std::fs::write(&p, prediction_svg(kind, &pts)).map_err(LabError::write(&p))?;
        all.extend(pts);
    }
    report.push_str(&fractions(&all));
    println!("{report}");
    let p = args.out.join("report.md");
    std::fs::write(&p, &report).map_err(LabError::write(&p))?;
    let p = args.out.join("results.json");
    std::fs::write(
        &p,
        serde_json::to_string_pretty(&all).map_err(LabError::json(&p))?,
    )
    .map_err(LabError::write(&p))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

fn tables(kind: Kind, pts: &[Point], ranks: &[usize], holds: &[usize], delays: &[usize]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### {} recall accuracy (full rank, then each rank)\n",
        kind.name()
    );
    let _ = write!(s, "| k | T | γ̄ | ρ(J̄) | full |");
    for r in ranks {
        let _ = write!(s, " r{r} |");
    }
    let _ = write!(s, "\n|---|---|---|---|---|");
    for _ in ranks {
        let _ = write!(s, "---|");
    }
    s.push('\n');
    for &k in holds {
        for &t in delays {
            let row: Vec<&Point> = pts.iter().filter(|p| p.hold == k && p.delay == t).collect();
            let Some(first) = row.first() else { continue };
            let _ = write!(
                s,
                "| {k} | {t} | {:.2} | {:.3} | {:.3} |",
                first.retention, first.radius, first.accuracy_full
            );
            for p in &row {
                let _ = write!(s, " {:.3} |", p.accuracy);
            }
            s.push('\n');
        }
    }
    let _ = writeln!(
        s,
        "\n### {} state error: measured vs predicted (ratio = predicted / measured RMS)\n",
        kind.name()
    );
    let _ = writeln!(
        s,
        "| k | T | rank | acc | RMS | median | per-unit | ratio | Lyapunov | ratio | Lyap. inj. | ratio |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for p in pts {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.3} | {:.4} | {:.4} | {:.4} | {:.2} | {:.4} | {:.2} | {:.4} | {:.2} |",
            p.hold,
            p.delay,
            p.rank,
            p.accuracy,
            p.rms,
            p.median,
            p.per_unit,
            p.per_unit / p.rms,
            p.lyapunov,
            p.lyapunov / p.rms,
            p.lyapunov_injection,
            p.lyapunov_injection / p.rms
        );
    }
    s.push('\n');
    s
}

fn fractions(all: &[Point]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Fraction of points with predicted / measured in [0.67, 1.5] (min / median / max ratio)\n\n| cell | reference | per-unit | Lyapunov (product) | Lyapunov (measured injection) |\n|---|---|---|---|---|"
    );
    let names: Vec<&str> = {
        let mut v: Vec<&str> = all.iter().map(|p| p.cell).collect();
        v.dedup();
        v
    };
    for cell in names {
        let pts: Vec<&Point> = all
            .iter()
            .filter(|p| p.cell == cell && p.rms > 0.0)
            .collect();
        for (refname, refv) in [
            ("RMS", (|p: &Point| p.rms) as fn(&Point) -> f64),
            ("median", |p: &Point| p.median),
        ] {
            let _ = write!(s, "| {cell} | {refname} |");
            for f in [
                (|p: &Point| p.per_unit) as fn(&Point) -> f64,
                |p: &Point| p.lyapunov,
                |p: &Point| p.lyapunov_injection,
            ] {
                let mut r: Vec<f64> = pts
                    .iter()
                    .filter(|p| refv(p) > 0.0)
                    .map(|p| f(p) / refv(p))
                    .collect();
                r.sort_by(f64::total_cmp);
                if r.is_empty() {
                    let _ = write!(s, " – |");
                    continue;
                }
                let ok = r.iter().filter(|&&x| in_band(x)).count();
                let _ = write!(
                    s,
                    " {}/{} = {:.0} % ({:.2} / {:.2} / {:.2}) |",
                    ok,
                    r.len(),
                    100.0 * ok as f64 / r.len() as f64,
                    r[0],
                    r[r.len() / 2],
                    r[r.len() - 1]
                );
            }
            s.push('\n');
        }
    }
    s.push('\n');
    s
}

/// Reads one value of a [`Point`].
type Getter = fn(&Point) -> f64;

const COLORS: [&str; 9] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#17becf",
];

fn accuracy_svg(kind: Kind, pts: &[Point], n: usize) -> String {
    let mut keys: Vec<(usize, usize)> = pts.iter().map(|p| (p.hold, p.delay)).collect();
    keys.dedup();
    let series: Vec<Series> = keys
        .iter()
        .enumerate()
        .map(|(i, &(k, t))| {
            let mut points: Vec<(f64, f64)> = pts
                .iter()
                .filter(|p| p.hold == k && p.delay == t)
                .map(|p| (p.rank as f64, p.accuracy))
                .collect();
            if let Some(f) = pts.iter().find(|p| p.hold == k && p.delay == t) {
                points.push((n as f64, f.accuracy_full));
            }
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                label: format!("k={k} T={t}"),
                points,
                color: COLORS[i % COLORS.len()].into(),
                line: true,
            }
        })
        .collect();
    xy_svg(
        &format!(
            "{}: recall accuracy vs recurrent rank (rightmost = full)",
            kind.name()
        ),
        "rank",
        "recall accuracy",
        &series,
        true,
        false,
        false,
    )
}

fn prediction_svg(kind: Kind, pts: &[Point]) -> String {
    let forms: [(&str, Getter); 3] = [
        ("per-unit", |p| p.per_unit),
        ("Lyapunov", |p| p.lyapunov),
        ("Lyapunov (meas. inj.)", |p| p.lyapunov_injection),
    ];
    let series: Vec<Series> = forms
        .iter()
        .enumerate()
        .map(|(i, (label, f))| Series {
            label: (*label).into(),
            points: pts
                .iter()
                .filter(|p| p.rms > 0.0 && f(p) > 0.0)
                .map(|p| (p.rms, f(p)))
                .collect(),
            color: COLORS[i].into(),
            line: false,
        })
        .collect();
    xy_svg(
        &format!(
            "{}: predicted vs measured RMS state error (band 0.67-1.5)",
            kind.name()
        ),
        "measured RMS state error",
        "predicted",
        &series,
        true,
        true,
        true,
    )
}
