//! The denoiser network in candle, for training: dense input layer → stacked
//! MGRU cells (DESIGN.md §1 equations, "f → 0 keeps the state", written from
//! tensor ops) → dense sigmoid band gains, plus a sigmoid voice-activity head.
//! Parameter names and shapes are those of the model file and of the
//! `hush.mgru` cell plugin (`w_f` [n, m], `u_f` [n, n], `b_f` [n], …).

use std::collections::BTreeMap;

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{Init, VarBuilder, VarMap};
use hushd::model::{Activation, LayerSpec};

use crate::rng::Rng;

/// Sizes of the network.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Input features.
    pub inputs: usize,
    /// Width of the input layer and of every cell.
    pub hidden: usize,
    /// Stacked MGRU cells.
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
    /// Every trainable variable, by model-file name.
    pub varmap: VarMap,
    params: BTreeMap<String, Tensor>,
}

impl Net {
    /// A freshly initialised network, deterministic given `seed` (candle's
    /// CPU device cannot be seeded, so values come from the lab's own RNG).
    pub fn new(shape: Shape, dev: &Device, seed: u64) -> Result<Self> {
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
            add(format!("layers.{l}.w_f"), &[h, h], xavier(h, h))?;
            add(
                format!("layers.{l}.u_f"),
                &[h, h],
                Init::Randn {
                    mean: 0.0,
                    stdev: 0.5 / (h as f64).sqrt(),
                },
            )?;
            // Start with a forget gate leaning towards keeping the state.
            add(format!("layers.{l}.b_f"), &[h], Init::Const(-1.0))?;
            add(format!("layers.{l}.w_c"), &[h, h], xavier(h, h))?;
            add(
                format!("layers.{l}.u_c"),
                &[h, h],
                Init::Randn {
                    mean: 0.0,
                    stdev: 0.5 / (h as f64).sqrt(),
                },
            )?;
            add(format!("layers.{l}.b_c"), &[h], Init::Const(0.0))?;
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

    /// Runs `x` `[batch, steps, inputs]` from `state`; returns gains
    /// `[batch, steps, bands]`, voice activity `[batch, steps, 1]` and the
    /// final states.
    pub fn forward(&self, x: &Tensor, state: &[Tensor]) -> Result<(Tensor, Tensor, Vec<Tensor>)> {
        let steps = x.dim(1)?;
        let mut h: Vec<Tensor> = state.to_vec();
        let (mut gains, mut vads) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
        let w0t = self.p("layers.0.weight").t()?;
        let b0 = self.p("layers.0.bias");
        let cells: Vec<[Tensor; 6]> = (0..self.shape.cells)
            .map(|c| {
                let g = |n: &str| self.p(&format!("layers.{}.{n}", c + 1)).clone();
                Ok([
                    g("w_f").t()?,
                    g("u_f").t()?,
                    g("b_f"),
                    g("w_c").t()?,
                    g("u_c").t()?,
                    g("b_c"),
                ])
            })
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
            for (c, [wf, uf, bf, wc, uc, bc]) in cells.iter().enumerate() {
                let hp = &h[c];
                let f = candle_nn::ops::sigmoid(
                    &a.matmul(wf)?.add(&hp.matmul(uf)?)?.broadcast_add(bf)?,
                )?;
                let cand = a
                    .matmul(wc)?
                    .add(&(&f * hp)?.matmul(uc)?)?
                    .broadcast_add(bc)?
                    .tanh()?;
                let hn = hp.add(&(&f * (cand - hp)?)?)?;
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
                cell: "hush.mgru".into(),
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

/// The loss: weighted mean squared error of square-root gains, plus a
/// weighted binary cross-entropy of the voice-activity head.
pub fn loss(
    gains: &Tensor,
    vad: &Tensor,
    target: &Tensor,
    weight: &Tensor,
    vad_target: &Tensor,
    vad_weight: f64,
) -> Result<Tensor> {
    let diff = ((gains + 1e-6)?.sqrt()? - (target + 1e-6)?.sqrt()?)?;
    let wsum = (weight.sum_all()? + 1.0)?;
    let gain_loss = (diff.sqr()? * weight)?.sum_all()?.div(&wsum)?;
    let p = vad.clamp(1e-5, 1.0 - 1e-5)?;
    let one = Tensor::ones_like(&p)?;
    let bce = ((vad_target * p.log()?)? + ((&one - vad_target)? * (&one - &p)?.log()?)?)?
        .neg()?
        .mean_all()?;
    gain_loss + (bce * vad_weight)?
}
