//! The recurrent network estimator: input features → dense → recurrent cells
//! (through the cell ABI) → dense sigmoid band gains, plus an optional
//! voice-activity head. Built from a [`ModelFile`] and a cell [`Registry`] on
//! the main thread; [`GainEstimator::estimate`] runs allocation-free.
//!
//! A cell that faults (panic, NaN/Inf) is bypassed: the frame gets unity
//! gains, the fault shows in telemetry, the state is cleared and the cell is
//! reset (a panicked cell stays poisoned and the network stays bypassed).

use std::time::Instant;

use hush_cell_host::{Cell, CellFault, CellOptions, CellSizes, Registry, Tensor};
use hush_cell_sdk::simd;

use super::gain::{EstimatorTelemetry, GainEstimator};
use super::input::InputBuilder;
use crate::adapt::readout::Readout;
use crate::adapt::{AdaptTelemetry, Adapter};
use crate::dsp::features::BandFrame;
use crate::error::EngineError;
use crate::model::{Activation, LayerSpec, ModelError, ModelFile};
use crate::settings::{AdaptConfig, AdaptMode};

enum Layer {
    Dense {
        weight: Vec<f32>,
        bias: Vec<f32>,
        input: usize,
        activation: Activation,
        out: Vec<f32>,
    },
    Cell {
        index: usize,
        state: Vec<f32>,
        next: Vec<f32>,
    },
}

impl Layer {
    fn output(&self) -> &[f32] {
        match self {
            Layer::Dense { out, .. } => out,
            Layer::Cell { state, .. } => state,
        }
    }
}

/// The network estimator.
pub struct Network {
    input: InputBuilder,
    x: Vec<f32>,
    layers: Vec<Layer>,
    cells: Vec<Cell>,
    adapt: Option<Adapter>,
    vad: Option<(Vec<f32>, f32)>,
    bands: usize,
    running_norm_s: f64,
    telemetry: EstimatorTelemetry,
    last_fault: Option<CellFault>,
}

/// `y = act(W x + b)` with W row-major `[out, in]`. No allocation.
/// `out = act(W x + b)` on the SDK's vector kernels (AVX2/FMA or NEON, the
/// scalar reference elsewhere; polynomial σ and tanh, no libm call per
/// element). No allocation.
fn dense(weight: &[f32], bias: &[f32], x: &[f32], act: Activation, out: &mut [f32]) {
    out.copy_from_slice(bias);
    simd::matvec_add(weight, x, out);
    match act {
        Activation::Linear => {}
        Activation::Tanh => simd::tanh_in_place(out),
        Activation::Sigmoid => simd::sigmoid_in_place(out),
        Activation::Relu => out.iter_mut().for_each(|v| *v = v.max(0.0)),
    }
}

impl Network {
    /// Builds the network of `model` with cells from `registry`. Errors name
    /// `origin` (the model file) and the layer or tensor. Main thread.
    pub fn build(
        model: &ModelFile,
        registry: &mut Registry,
        origin: &str,
    ) -> Result<Self, EngineError> {
        let model_err = |message: String| {
            EngineError::Model(ModelError {
                origin: origin.to_string(),
                message,
            })
        };
        let bands = model.spec.bands();
        let input =
            InputBuilder::new(&model.features, bands).map_err(|d| model_err(d.to_string()))?;
        if input.len() != model.layers[0].input() {
            return Err(model_err(format!(
                "features give {} inputs, layer 0 takes {}",
                input.len(),
                model.layers[0].input()
            )));
        }
        let mut layers = Vec::with_capacity(model.layers.len());
        let mut cells = Vec::new();
        for (i, spec) in model.layers.iter().enumerate() {
            match spec {
                LayerSpec::Dense {
                    input,
                    output,
                    activation,
                } => {
                    let w = model
                        .expect_shape(&format!("layers.{i}.weight"), &[*output, *input])
                        .map_err(|d| model_err(d.to_string()))?;
                    let b = model
                        .expect_shape(&format!("layers.{i}.bias"), &[*output])
                        .map_err(|d| model_err(d.to_string()))?;
                    layers.push(Layer::Dense {
                        weight: w.data.clone(),
                        bias: b.data.clone(),
                        input: *input,
                        activation: *activation,
                        out: vec![0.0; *output],
                    });
                }
                LayerSpec::Cell { cell, input, state } => {
                    let info = registry
                        .get(cell)
                        .ok_or_else(|| {
                            EngineError::Cell(format!(
                                "{origin}: layer {i} needs cell `{cell}`, which is not available (see `hushd cells`)"
                            ))
                        })?
                        .clone();
                    let mut names = Vec::new();
                    for t in &info.tensors {
                        let name = format!("layers.{i}.{}", t.name);
                        let shape = t
                            .shape_for(*input, *state)
                            .ok_or_else(|| model_err(format!("tensor `{name}`: shape overflow")))?;
                        model
                            .expect_shape(&name, &shape)
                            .map_err(|d| model_err(d.to_string()))?;
                        names.push((t.name.clone(), name));
                    }
                    let tensors: Vec<Tensor<'_>> = names
                        .iter()
                        .map(|(short, full)| {
                            let t = &model.tensors[full];
                            Tensor {
                                name: short,
                                shape: &t.shape,
                                data: &t.data,
                            }
                        })
                        .collect();
                    let c = registry
                        .create(
                            cell,
                            CellSizes {
                                input: *input,
                                state: *state,
                            },
                            &tensors,
                            CellOptions {
                                max_rank: None,
                                require_low_rank: false,
                            },
                        )
                        .map_err(|e| EngineError::Cell(format!("{origin}: layer {i}: {e}")))?;
                    cells.push(c);
                    layers.push(Layer::Cell {
                        index: cells.len() - 1,
                        state: vec![0.0; *state],
                        next: vec![0.0; *state],
                    });
                }
            }
        }
        let vad = match (
            model.tensors.get("vad.weight"),
            model.tensors.get("vad.bias"),
        ) {
            (Some(w), Some(b)) => Some((w.data.clone(), b.data[0])),
            _ => None,
        };
        Ok(Self {
            x: vec![0.0; input.len()],
            input,
            layers,
            cells,
            adapt: None,
            vad,
            bands,
            running_norm_s: model.features.running_norm_s,
            telemetry: EstimatorTelemetry::default(),
            last_fault: None,
        })
    }

    /// The fault that last bypassed the network, if any.
    pub fn last_fault(&self) -> Option<CellFault> {
        self.last_fault
    }

    /// The recurrent cells, in layer order (for rank control and probes).
    pub fn cells_mut(&mut self) -> impl Iterator<Item = &mut Cell> {
        self.cells.iter_mut()
    }

    /// Turns on rank adaptation with `cfg`; `readout` is the readout
    /// sensitivity (gain error per unit state error) per cell, matrix and
    /// rank, from the model's calibration or the config's fallback. Main
    /// thread; allocates.
    pub fn enable_adaptation(
        &mut self,
        cfg: AdaptConfig,
        readout: &Readout,
        hop_s: f64,
        network_macs: u64,
    ) {
        self.adapt = Some(Adapter::new(
            cfg,
            &mut self.cells,
            readout,
            self.bands,
            hop_s,
            network_macs,
        ));
    }

    /// The adapter, if adaptation is on.
    pub fn adapter_mut(&mut self) -> Option<&mut Adapter> {
        self.adapt.as_mut()
    }

    /// Length of the network's input vector (the feature layout's).
    pub fn input_len(&self) -> usize {
        self.x.len()
    }

    /// Runs one frame from a prepared input vector `x` ([`input_len`](Self::input_len)
    /// values, as the model's [`InputBuilder`] makes them), writing band
    /// gains; no adaptation step. For calibration and validation, which feed
    /// recorded or synthetic inputs. Owning thread; no allocation.
    pub fn step_inputs(&mut self, x: &[f32], gains: &mut [f32]) -> Result<(), CellFault> {
        self.x.copy_from_slice(x);
        self.run(gains)
    }

    /// The state of each cell layer after the last frame.
    pub fn cell_states(&self) -> impl Iterator<Item = &[f32]> {
        self.layers.iter().filter_map(|l| match l {
            Layer::Cell { state, .. } => Some(state.as_slice()),
            Layer::Dense { .. } => None,
        })
    }

    fn run(&mut self, gains: &mut [f32]) -> Result<(), CellFault> {
        for i in 0..self.layers.len() {
            let (before, rest) = self.layers.split_at_mut(i);
            let x: &[f32] = match before.last() {
                Some(l) => l.output(),
                None => &self.x,
            };
            match &mut rest[0] {
                Layer::Dense {
                    weight,
                    bias,
                    input,
                    activation,
                    out,
                } => {
                    debug_assert_eq!(x.len(), *input);
                    dense(weight, bias, x, *activation, out);
                }
                Layer::Cell { index, state, next } => {
                    self.cells[*index].step(x, state, next)?;
                    std::mem::swap(state, next);
                }
            }
        }
        let n = self.layers.len();
        gains.copy_from_slice(&self.layers[n - 1].output()[..self.bands]);
        if let Some((w, b)) = &self.vad {
            let hidden = self.layers[n - 2].output();
            let a = simd::dot(w, hidden) + b;
            self.telemetry.speech_probability = Some(hush_cell_sdk::sigmoid(a));
        }
        Ok(())
    }

    fn clear_state(&mut self) {
        self.input.reset();
        for l in &mut self.layers {
            if let Layer::Cell { state, next, .. } = l {
                state.fill(0.0);
                next.fill(0.0);
            }
        }
        for c in &mut self.cells {
            let _ = c.reset();
        }
    }
}

impl GainEstimator for Network {
    fn name(&self) -> &'static str {
        "network"
    }

    fn bands(&self) -> usize {
        self.bands
    }

    fn uses_pitch(&self) -> bool {
        self.input.layout().uses_pitch()
    }

    fn estimate(&mut self, frame: &BandFrame<'_>, gains: &mut [f32]) {
        self.input.build(frame, &mut self.x);
        // Monotonic clock reads (vDSO, no system call) around the network
        // and the adapter: the controller's cost in time, not MACs.
        let t0 = Instant::now();
        match self.run(gains) {
            Ok(()) => {
                self.telemetry.bypassed = false;
                self.telemetry.mean_gain = gains.iter().sum::<f32>() / gains.len() as f32;
                if let Some(a) = &mut self.adapt {
                    let t1 = Instant::now();
                    a.after_frame(&mut self.cells, frame.log_energy, gains);
                    let t2 = Instant::now();
                    a.add_times(
                        t1.duration_since(t0).as_nanos() as u64,
                        t2.duration_since(t1).as_nanos() as u64,
                    );
                }
            }
            Err(fault) => {
                gains.fill(1.0);
                self.last_fault = Some(fault);
                self.telemetry.bypassed = true;
                self.telemetry.failed_frames += 1;
                self.telemetry.mean_gain = 1.0;
                self.telemetry.speech_probability = None;
                // Start again from silence; a poisoned cell keeps failing.
                self.clear_state();
            }
        }
    }

    fn frame_time(&mut self, frame_ns: u64) {
        if let Some(a) = &mut self.adapt {
            a.frame_time(&mut self.cells, frame_ns);
        }
    }

    fn set_adapt_params(&mut self, mode: AdaptMode, error_budget: f64, compute_budget: f64) {
        if let Some(a) = &mut self.adapt {
            a.set_params(mode, error_budget, compute_budget);
        }
    }

    fn adapt_matrices(&mut self) -> Vec<(String, u32)> {
        if self.adapt.is_none() {
            return Vec::new();
        }
        // The adapter's order: cells in layer order, the compressed matrices
        // of each cell that has the low-rank extension.
        let mut out = Vec::new();
        for (ci, cell) in self.cells.iter_mut().enumerate() {
            if let Some(lr) = cell.low_rank() {
                for m in lr.matrices() {
                    out.push((format!("cells.{ci}.{}", m.name), m.rows as u32));
                }
            }
        }
        out
    }

    fn adapt_telemetry(&self) -> Option<AdaptTelemetry> {
        self.adapt.as_ref().map(Adapter::telemetry)
    }

    fn reset(&mut self) {
        self.clear_state();
    }

    fn telemetry(&self) -> EstimatorTelemetry {
        self.telemetry
    }

    fn running_norm_s(&self) -> f64 {
        self.running_norm_s
    }
}
