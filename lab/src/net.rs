//! The denoiser network in candle, for training: dense input layer → stacked
//! recurrent cells → dense sigmoid band gains, plus a sigmoid voice-activity
//! head. The cells are MGRU (DESIGN.md §1 equations, "f → 0 keeps the state")
//! or GRU (reset-before, "z → 0 keeps the state"), written from tensor ops
//! with exactly the equations of the `hush.mgru` and `hush.gru` cell plugins.
//! Parameter names and shapes are those of the model file and of the plugins
//! (`w_f` [n, m], `u_f` [n, n], `b_f` [n], … for MGRU; `w_z`, `w_r`, `w_c`
//! [n, m], `u_z`, `u_r`, `u_c` [n, n], `b_z`, `b_r`, `b_c` [n] for GRU).

use std::collections::BTreeMap;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{Init, VarBuilder, VarMap};
use hush_engine::model::{Activation, LayerSpec};

use crate::rng::Rng;

/// The recurrent cell of the network.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    /// Minimal gated unit, `hush.mgru`:
    /// f = σ(W_f x + U_f h + b_f), c = tanh(W_c x + U_c (f ⊙ h) + b_c),
    /// h' = (1 − f) ⊙ h + f ⊙ c.
    #[default]
    Mgru,
    /// Gated recurrent unit, reset-before form, `hush.gru`:
    /// z = σ(W_z x + U_z h + b_z), r = σ(W_r x + U_r h + b_r),
    /// c = tanh(W_c x + U_c (r ⊙ h) + b_c), h' = (1 − z) ⊙ h + z ⊙ c.
    Gru,
}

/// Which of a cell's weight matrices a nuclear-norm step shrinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatrixKind {
    /// The recurrent matrices `u_*`.
    Recurrent,
    /// The input matrices `w_*`.
    Input,
}

impl CellKind {
    /// The cell id in the model file's layer list.
    pub fn id(self) -> &'static str {
        match self {
            Self::Mgru => "hush.mgru",
            Self::Gru => "hush.gru",
        }
    }

    /// The kind a model file's cell id trains as: `hush.mgru` and its
    /// variants with the same tensors (`hush.mgru-svd`) are MGRU cells,
    /// `hush.gru` a GRU; other ids are not cells the trainer builds.
    pub fn of_id(id: &str) -> Option<Self> {
        if id.starts_with(Self::Mgru.id()) {
            Some(Self::Mgru)
        } else if id == Self::Gru.id() {
            Some(Self::Gru)
        } else {
            None
        }
    }

    /// The cell's gates, in tensor-name order (each has `w_`, `u_`, `b_`).
    fn gates(self) -> &'static [&'static str] {
        match self {
            Self::Mgru => &["f", "c"],
            Self::Gru => &["z", "r", "c"],
        }
    }
}

/// Sizes of the network.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Input features.
    pub inputs: usize,
    /// Width of the input layer and of every cell.
    pub hidden: usize,
    /// Stacked recurrent cells.
    pub cells: usize,
    /// Output bands.
    pub bands: usize,
}

/// A parameter as (name, shape, row-major values).
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// The network's parameters.
pub struct Net {
    /// Sizes.
    pub shape: Shape,
    /// The recurrent cell.
    pub cell: CellKind,
    /// Every trainable variable, by model-file name.
    pub varmap: VarMap,
    params: BTreeMap<String, Tensor>,
}

impl Net {
    /// A freshly initialised network of `cell`s, deterministic given `seed`
    /// (candle's CPU device cannot be seeded, so values come from the lab's
    /// own RNG).
    pub fn new(shape: Shape, cell: CellKind, dev: &Device, seed: u64) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, dev);
        let mut params = BTreeMap::new();
        let h = shape.hidden;
        let mut rng = Rng::new(seed ^ 0xA11C_E5EE);
        let mut add = |name: String, dims: &[usize], init: Init| -> Result<()> {
            let n: usize = dims.iter().product();
            let values: Vec<f32> = match init {
                Init::Const(c) => vec![c as f32; n],
                Init::Uniform { lo, up } => (0..n).map(|_| rng.range(lo, up) as f32).collect(),
                Init::Randn { mean, stdev } => (0..n)
                    .map(|_| (mean + stdev * rng.normal()) as f32)
                    .collect(),
                Init::Kaiming { .. } => unreachable!("not used"),
            };
            let t = vb.get_with_hints(dims.to_vec(), &name, Init::Const(0.0))?;
            let data = varmap.data().lock().expect("varmap lock");
            data[&name].set(&Tensor::from_vec(values, dims.to_vec(), dev)?)?;
            drop(data);
            params.insert(name, t);
            Ok(())
        };
        let xavier = |fan_in: usize, fan_out: usize| Init::Uniform {
            lo: -(6.0 / (fan_in + fan_out) as f64).sqrt(),
            up: (6.0 / (fan_in + fan_out) as f64).sqrt(),
        };
        add(
            "layers.0.weight".into(),
            &[h, shape.inputs],
            xavier(shape.inputs, h),
        )?;
        add("layers.0.bias".into(), &[h], Init::Const(0.0))?;
        for c in 0..shape.cells {
            let l = c + 1;
            for &g in cell.gates() {
                add(format!("layers.{l}.w_{g}"), &[h, h], xavier(h, h))?;
                add(
                    format!("layers.{l}.u_{g}"),
                    &[h, h],
                    Init::Randn {
                        mean: 0.0,
                        stdev: 0.5 / (h as f64).sqrt(),
                    },
                )?;
                // Start with the update (MGRU: forget) gate leaning towards
                // keeping the state; the other biases at 0.
                let b = if matches!(g, "f" | "z") { -1.0 } else { 0.0 };
                add(format!("layers.{l}.b_{g}"), &[h], Init::Const(b))?;
            }
        }
        let o = shape.cells + 1;
        add(
            format!("layers.{o}.weight"),
            &[shape.bands, h],
            xavier(h, shape.bands),
        )?;
        add(format!("layers.{o}.bias"), &[shape.bands], Init::Const(0.0))?;
        add("vad.weight".into(), &[1, h], xavier(h, 1))?;
        add("vad.bias".into(), &[1], Init::Const(0.0))?;
        Ok(Self {
            shape,
            cell,
            varmap,
            params,
        })
    }

    fn p(&self, name: &str) -> &Tensor {
        &self.params[name]
    }

    /// Zero states, one per cell, `[batch, hidden]`.
    pub fn zero_state(&self, batch: usize, dev: &Device) -> Result<Vec<Tensor>> {
        (0..self.shape.cells)
            .map(|_| Tensor::zeros((batch, self.shape.hidden), DType::F32, dev))
            .collect()
    }

    /// The weights of the cell in layer `l`, arranged for [`CellWeights::step`].
    fn cell_weights(&self, l: usize) -> Result<CellWeights> {
        let g = |n: &str| self.p(&format!("layers.{l}.{n}")).clone();
        Ok(match self.cell {
            CellKind::Mgru => CellWeights::Mgru {
                wf: g("w_f").t()?,
                uf: g("u_f").t()?,
                bf: g("b_f"),
                wc: g("w_c").t()?,
                uc: g("u_c").t()?,
                bc: g("b_c"),
            },
            CellKind::Gru => CellWeights::Gru {
                n: self.shape.hidden,
                w: Tensor::cat(&[g("w_z"), g("w_r"), g("w_c")], 0)?.t()?,
                b: Tensor::cat(&[g("b_z"), g("b_r"), g("b_c")], 0)?,
                u_zr: Tensor::cat(&[g("u_z"), g("u_r")], 0)?.t()?,
                uc: g("u_c").t()?,
            },
        })
    }

    /// Runs `x` `[batch, steps, inputs]` from `state`; returns gains
    /// `[batch, steps, bands]`, voice activity `[batch, steps, 1]` and the
    /// final states.
    pub fn forward(&self, x: &Tensor, state: &[Tensor]) -> Result<(Tensor, Tensor, Vec<Tensor>)> {
        let steps = x.dim(1)?;
        let mut h: Vec<Tensor> = state.to_vec();
        let (mut gains, mut vads) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
        let w0t = self.p("layers.0.weight").t()?;
        let b0 = self.p("layers.0.bias");
        let cells: Vec<CellWeights> = (0..self.shape.cells)
            .map(|c| self.cell_weights(c + 1))
            .collect::<Result<_>>()?;
        let o = self.shape.cells + 1;
        let wot = self.p(&format!("layers.{o}.weight")).t()?;
        let bo = self.p(&format!("layers.{o}.bias"));
        let wvt = self.p("vad.weight").t()?;
        let bv = self.p("vad.bias");
        for t in 0..steps {
            // Narrow the plain input (no gradient) per step: see the notes on
            // the O(T²) backward of narrowing a differentiable chunk.
            let xt = x.narrow(1, t, 1)?.squeeze(1)?;
            let mut a = xt.matmul(&w0t)?.broadcast_add(b0)?.tanh()?;
            for (c, w) in cells.iter().enumerate() {
                let hn = w.step(&a, &h[c])?;
                h[c] = hn.clone();
                a = hn;
            }
            gains.push(candle_nn::ops::sigmoid(
                &a.matmul(&wot)?.broadcast_add(bo)?,
            )?);
            vads.push(candle_nn::ops::sigmoid(
                &a.matmul(&wvt)?.broadcast_add(bv)?,
            )?);
        }
        Ok((Tensor::stack(&gains, 1)?, Tensor::stack(&vads, 1)?, h))
    }

    /// All variables.
    pub fn vars(&self) -> Vec<Var> {
        self.varmap.all_vars()
    }

    /// Proximal step of a nuclear-norm penalty on the cells' matrices of
    /// one kind (`u_*` recurrent, `w_*` input): every singular value is
    /// lowered by `threshold` and clipped at 0 (singular-value soft
    /// thresholding). Applied after an optimizer step with `threshold = λ ·
    /// learning rate`, it drives the spectrum's tail to zero, so the rank
    /// controller can keep fewer components at the same predicted error.
    /// Returns the summed nuclear norm of those matrices after the step.
    pub fn shrink_spectra(&self, kind: MatrixKind, threshold: f64) -> Result<f64> {
        let prefix = match kind {
            MatrixKind::Recurrent => "u_",
            MatrixKind::Input => "w_",
        };
        let data = self.varmap.data().lock().expect("varmap lock");
        let mut nuclear = 0.0;
        for (name, var) in data.iter() {
            // Cell tensors only: `layers.<i>.u_f`, not a dense `layers.<i>.weight`.
            if !name
                .rsplit('.')
                .next()
                .is_some_and(|t| t.starts_with(prefix))
            {
                continue;
            }
            let (rows, cols) = var.as_tensor().dims2()?;
            let values = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            let m =
                nalgebra::DMatrix::from_row_iterator(rows, cols, values.iter().map(|&v| v as f64));
            let mut svd = m.svd(true, true);
            for s in svd.singular_values.iter_mut() {
                *s = (*s - threshold).max(0.0);
                nuclear += *s;
            }
            let shrunk = svd.recompose().map_err(candle_core::Error::msg)?;
            let out: Vec<f32> = (0..rows)
                .flat_map(|r| (0..cols).map(move |c| (r, c)))
                .map(|(r, c)| shrunk[(r, c)] as f32)
                .collect();
            var.set(&Tensor::from_vec(
                out,
                (rows, cols),
                var.as_tensor().device(),
            )?)?;
        }
        Ok(nuclear)
    }

    /// The layer list of the model file.
    pub fn layer_specs(&self) -> Vec<LayerSpec> {
        let s = self.shape;
        let mut v = vec![LayerSpec::Dense {
            input: s.inputs,
            output: s.hidden,
            activation: Activation::Tanh,
        }];
        for _ in 0..s.cells {
            v.push(LayerSpec::Cell {
                cell: self.cell.id().into(),
                input: s.hidden,
                state: s.hidden,
            });
        }
        v.push(LayerSpec::Dense {
            input: s.hidden,
            output: s.bands,
            activation: Activation::Sigmoid,
        });
        v
    }

    /// Every parameter as (name, shape, values).
    pub fn export(&self) -> Result<Vec<NamedTensor>> {
        self.params
            .iter()
            .map(|(k, t)| {
                Ok((
                    k.clone(),
                    t.dims().to_vec(),
                    t.flatten_all()?.to_vec1::<f32>()?,
                ))
            })
            .collect()
    }
}

/// One cell's weights for a forward pass, matrices transposed for
/// `[batch, ·] × [·, n]` products.
enum CellWeights {
    Mgru {
        wf: Tensor,
        uf: Tensor,
        bf: Tensor,
        wc: Tensor,
        uc: Tensor,
        bc: Tensor,
    },
    /// W_z, W_r, W_c stacked ([m, 3n] after transposition) with their biases
    /// ([3n]), and U_z, U_r stacked ([n, 2n]): one product each per step.
    Gru {
        n: usize,
        w: Tensor,
        b: Tensor,
        u_zr: Tensor,
        uc: Tensor,
    },
}

impl CellWeights {
    /// One step from input `a` `[batch, m]` and state `hp` `[batch, n]`: the
    /// new state, by the plugin's equations.
    fn step(&self, a: &Tensor, hp: &Tensor) -> Result<Tensor> {
        match self {
            Self::Mgru {
                wf,
                uf,
                bf,
                wc,
                uc,
                bc,
            } => {
                let f = candle_nn::ops::sigmoid(
                    &a.matmul(wf)?.add(&hp.matmul(uf)?)?.broadcast_add(bf)?,
                )?;
                let cand = a
                    .matmul(wc)?
                    .add(&(&f * hp)?.matmul(uc)?)?
                    .broadcast_add(bc)?
                    .tanh()?;
                hp.add(&(&f * (cand - hp)?)?)
            }
            Self::Gru { n, w, b, u_zr, uc } => {
                let n = *n;
                // z, r = σ(W x + U h + b); c = tanh(W_c x + U_c (r ⊙ h) + b_c);
                // h' = h + z ⊙ (c − h).
                let ax = a.matmul(w)?.broadcast_add(b)?;
                let zr = candle_nn::ops::sigmoid(&ax.narrow(1, 0, 2 * n)?.add(&hp.matmul(u_zr)?)?)?;
                let z = zr.narrow(1, 0, n)?;
                let r = zr.narrow(1, n, n)?;
                let cand = ax
                    .narrow(1, 2 * n, n)?
                    .add(&(&r * hp)?.matmul(uc)?)?
                    .tanh()?;
                hp.add(&(&z * (cand - hp)?)?)
            }
        }
    }
}

/// The loss's shape.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LossConfig {
    /// Gains are compared after raising to this power (0.5: square roots;
    /// smaller exponents weigh errors at low gains more).
    pub gain_exp: f64,
    /// Frames with speech weigh `1 + speech_weight` (RNNoise 0.2 uses 5).
    pub speech_weight: f64,
    /// Weight of the voice-activity cross-entropy.
    pub vad_weight: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            gain_exp: 0.5,
            speech_weight: 0.0,
            vad_weight: 0.2,
        }
    }
}

/// The loss: weighted mean squared error of compressed gains (`g^gain_exp`;
/// weights 0 for bands holding no signal, ×(1 + speech_weight) on speech
/// frames), plus a weighted binary cross-entropy of the voice-activity head.
pub fn loss(
    gains: &Tensor,
    vad: &Tensor,
    target: &Tensor,
    weight: &Tensor,
    vad_target: &Tensor,
    cfg: &LossConfig,
) -> Result<Tensor> {
    let compress = |t: &Tensor| -> Result<Tensor> {
        let t = (t + 1e-6)?;
        if cfg.gain_exp == 0.5 {
            t.sqrt()
        } else {
            t.powf(cfg.gain_exp)
        }
    };
    let diff = (compress(gains)? - compress(target)?)?;
    let weight = if cfg.speech_weight > 0.0 {
        weight.broadcast_mul(&((vad_target * cfg.speech_weight)? + 1.0)?)?
    } else {
        weight.clone()
    };
    let wsum = (weight.sum_all()? + 1.0)?;
    let gain_loss = (diff.sqr()? * &weight)?.sum_all()?.div(&wsum)?;
    let p = vad.clamp(1e-5, 1.0 - 1e-5)?;
    let one = Tensor::ones_like(&p)?;
    let bce = ((vad_target * p.log()?)? + ((&one - vad_target)? * (&one - &p)?.log()?)?)?
        .neg()?
        .mean_all()?;
    gain_loss + (bce * cfg.vad_weight)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_cell_host::{CellOptions, CellSizes, Tensor as CellTensor};

    /// Random parameters large enough that every gate swings across its
    /// range (the initialisation keeps the update gate near one end).
    fn randomise(net: &Net, seed: u64) {
        let mut rng = Rng::new(seed);
        let data = net.varmap.data().lock().expect("varmap lock");
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in names {
            let var = &data[name];
            let dims = var.dims().to_vec();
            let scale = if dims.len() == 2 {
                1.5 / (dims[1] as f64).sqrt()
            } else {
                0.7
            };
            let values: Vec<f32> = (0..var.elem_count())
                .map(|_| (scale * rng.normal()) as f32)
                .collect();
            var.set(&Tensor::from_vec(values, dims, var.device()).unwrap())
                .unwrap();
        }
    }

    fn singular_values(net: &Net, name: &str) -> Vec<f64> {
        let data = net.varmap.data().lock().expect("varmap lock");
        let t = data[name].as_tensor();
        let (r, c) = t.dims2().unwrap();
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let m = nalgebra::DMatrix::from_row_iterator(r, c, v.iter().map(|&x| x as f64));
        let mut s: Vec<f64> = m.singular_values().iter().copied().collect();
        s.sort_by(|a, b| b.total_cmp(a));
        s
    }

    /// The proximal step lowers every recurrent singular value by the
    /// threshold (clipped at 0), leaves the other tensors alone, and returns
    /// the summed nuclear norm after the step.
    #[test]
    fn spectral_shrink_is_singular_value_soft_thresholding() {
        let dev = Device::Cpu;
        let shape = Shape {
            inputs: 6,
            hidden: 8,
            cells: 2,
            bands: 4,
        };
        let net = Net::new(shape, CellKind::Mgru, &dev, 5).unwrap();
        randomise(&net, 9);
        let names = [
            "layers.1.u_f",
            "layers.1.u_c",
            "layers.2.u_f",
            "layers.2.u_c",
        ];
        let before: Vec<Vec<f64>> = names.iter().map(|n| singular_values(&net, n)).collect();
        let w_before = net
            .p("layers.1.w_f")
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // A threshold between the smallest and largest singular values, so
        // that some are zeroed and some survive.
        let threshold = before[0][4];
        let nuclear = net
            .shrink_spectra(MatrixKind::Recurrent, threshold)
            .unwrap();
        let mut expected_nuclear = 0.0;
        for (name, s0) in names.iter().zip(&before) {
            let s1 = singular_values(&net, name);
            for (a, b) in s0.iter().zip(&s1) {
                let want = (a - threshold).max(0.0);
                expected_nuclear += want;
                assert!((want - b).abs() < 1e-4, "{name}: {a} -> {b}, want {want}");
            }
        }
        assert!((nuclear - expected_nuclear).abs() < 1e-3);
        assert!(singular_values(&net, names[0])[4] < 1e-4);
        let w_after = net
            .p("layers.1.w_f")
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(w_before, w_after, "input matrices are not penalised");
    }

    fn dense(w: &[f32], b: &[f32], x: &[f32], act: fn(f32) -> f32) -> Vec<f32> {
        b.iter()
            .zip(w.chunks(x.len()))
            .map(|(bi, row)| act(bi + row.iter().zip(x).map(|(a, b)| a * b).sum::<f32>()))
            .collect()
    }

    /// The candle network and the same weights run through the cell plugins
    /// (registered as the daemon registers them, at full rank) agree on every
    /// cell state and gain of a random input sequence, for both cell kinds.
    fn candle_matches_the_plugin(cell: CellKind) {
        let dev = Device::Cpu;
        let shape = Shape {
            inputs: 10,
            hidden: 24,
            cells: 2,
            bands: 6,
        };
        let (batch, steps) = (2, 60);
        let net = Net::new(shape, cell, &dev, 7).unwrap();
        randomise(&net, 11);
        let mut rng = Rng::new(13);
        let xs: Vec<f32> = (0..batch * steps * shape.inputs)
            .map(|_| (1.5 * rng.normal()) as f32)
            .collect();
        // Candle, one step at a time, recording every state.
        let x = Tensor::from_vec(xs.clone(), (batch, steps, shape.inputs), &dev).unwrap();
        let mut state = net.zero_state(batch, &dev).unwrap();
        let mut want_h = Vec::new(); // [t][cell] → [batch, hidden] flattened
        let mut want_g = Vec::new(); // [t] → [batch, bands] flattened
        for t in 0..steps {
            let (g, _, h) = net.forward(&x.narrow(1, t, 1).unwrap(), &state).unwrap();
            want_g.push(g.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            want_h.push(
                h.iter()
                    .map(|s| s.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                    .collect::<Vec<_>>(),
            );
            state = h;
        }
        // The plugins.
        let params: BTreeMap<String, (Vec<usize>, Vec<f32>)> = net
            .export()
            .unwrap()
            .into_iter()
            .map(|(k, s, v)| (k, (s, v)))
            .collect();
        let mut reg = hush_engine::cells::registry(None).unwrap();
        let mut cells: Vec<_> = (1..=shape.cells)
            .map(|l| {
                let prefix = format!("layers.{l}.");
                let tensors: Vec<CellTensor<'_>> = params
                    .iter()
                    .filter_map(|(k, (s, v))| {
                        k.strip_prefix(&prefix).map(|name| CellTensor {
                            name,
                            shape: s,
                            data: v,
                        })
                    })
                    .collect();
                assert_eq!(tensors.len(), 3 * cell.gates().len());
                reg.create(
                    cell.id(),
                    CellSizes {
                        input: shape.hidden,
                        state: shape.hidden,
                    },
                    &tensors,
                    CellOptions {
                        max_rank: None,
                        require_low_rank: false,
                    },
                )
                .unwrap()
            })
            .collect();
        let o = shape.cells + 1;
        let p = |k: &str| &params[k].1;
        let (n, mut worst) = (shape.hidden, 0f32);
        for b in 0..batch {
            let mut h = vec![vec![0f32; n]; shape.cells];
            for t in 0..steps {
                let at = (b * steps + t) * shape.inputs;
                let mut a = dense(
                    p("layers.0.weight"),
                    p("layers.0.bias"),
                    &xs[at..at + shape.inputs],
                    f32::tanh,
                );
                for (c, cell) in cells.iter_mut().enumerate() {
                    let mut next = vec![0f32; n];
                    cell.step(&a, &h[c], &mut next).unwrap();
                    for (got, want) in next.iter().zip(&want_h[t][c][b * n..(b + 1) * n]) {
                        worst = worst.max((got - want).abs());
                    }
                    h[c] = next.clone();
                    a = next;
                }
                let g = dense(
                    p(&format!("layers.{o}.weight")),
                    p(&format!("layers.{o}.bias")),
                    &a,
                    |v| 1.0 / (1.0 + (-v).exp()),
                );
                let bands = shape.bands;
                for (got, want) in g.iter().zip(&want_g[t][b * bands..(b + 1) * bands]) {
                    worst = worst.max((got - want).abs());
                }
            }
        }
        assert!(worst < 1e-4, "{}: largest difference {worst}", cell.id());
        // The states moved: the comparison is not between constants.
        let spread = want_h[steps - 1][1]
            .iter()
            .map(|v| v.abs())
            .fold(0f32, f32::max);
        assert!(spread > 0.1, "final state {spread}");
    }

    #[test]
    fn candle_gru_matches_the_hush_gru_plugin() {
        candle_matches_the_plugin(CellKind::Gru);
    }

    #[test]
    fn candle_mgru_matches_the_hush_mgru_plugin() {
        candle_matches_the_plugin(CellKind::Mgru);
    }

    #[test]
    fn layer_specs_name_the_cell() {
        let shape = Shape {
            inputs: 4,
            hidden: 3,
            cells: 2,
            bands: 2,
        };
        let net = Net::new(shape, CellKind::Gru, &Device::Cpu, 1).unwrap();
        let specs = net.layer_specs();
        assert_eq!(specs.len(), 4);
        for s in &specs[1..3] {
            assert!(matches!(s, LayerSpec::Cell { cell, .. } if cell == "hush.gru"));
        }
        let names: Vec<String> = net.export().unwrap().into_iter().map(|t| t.0).collect();
        for t in [
            "w_z", "u_z", "b_z", "w_r", "u_r", "b_r", "w_c", "u_c", "b_c",
        ] {
            assert!(names.contains(&format!("layers.2.{t}")), "{t}");
        }
        assert!(!names.iter().any(|n| n.ends_with("w_f")));
    }
}
