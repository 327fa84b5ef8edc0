//! A network that stacks a dense plugin cell (no low-rank extension) under a
//! low-rank MGRU of the same size: the rank controller must probe and lower
//! the MGRU, whatever sits beside it; and it probes less often while the
//! input stays the same.

use std::collections::BTreeMap;

use hush_cell_sdk::{
    CellDescriptor, CellError, CellSizes, ErrorForm, RecurrentCell, TensorSpec, Weights, matvec_add,
};
use hush_engine::adapt::readout::Readout;
use hush_engine::dsp::geometry::AnalysisSpec;
use hush_engine::estimator::GainEstimator;
use hush_engine::estimator::input::{FeatureLayout, LAYOUT_V1};
use hush_engine::estimator::network::Network;
use hush_engine::model::{Activation, FeatureSpec, LayerSpec, ModelFile, Tensor};
use hush_engine::pipeline::Engine;
use hush_engine::settings::{AdaptConfig, AdaptMode, EngineSettings};

/// `test.dense-tanh`: h' = tanh(W x + U h + b), nothing compressed (so the
/// cell offers no low-rank extension).
struct DenseTanh {
    w: Vec<f32>,
    u: Vec<f32>,
    b: Vec<f32>,
}

impl RecurrentCell for DenseTanh {
    const DESCRIPTOR: CellDescriptor = CellDescriptor {
        id: c"test.dense-tanh",
        name: c"Dense tanh unit (test)",
        version: c"0.1.0",
        description: c"h' = tanh(W x + U h + b), not compressed",
        tensors: &[
            TensorSpec::input_weights(c"w", c"input weights (n x m)"),
            TensorSpec::recurrent(c"u", c"recurrent weights (n x n)"),
            TensorSpec::bias(c"b", c"bias (n)"),
        ],
        matrices: &[],
        error_form: ErrorForm::PerUnit,
    };

    fn new(_sizes: CellSizes, w: &Weights<'_>) -> Result<Self, CellError> {
        Ok(Self {
            w: w.get("w")?.to_vec(),
            u: w.get("u")?.to_vec(),
            b: w.get("b")?.to_vec(),
        })
    }

    fn activate(&mut self, _max_rank: usize) -> Result<(), CellError> {
        Ok(())
    }

    fn step(&mut self, x: &[f32], h_in: &[f32], h_out: &mut [f32]) -> Result<(), CellError> {
        h_out.copy_from_slice(&self.b);
        matvec_add(&self.w, x, h_out);
        matvec_add(&self.u, h_in, h_out);
        h_out.iter_mut().for_each(|v| *v = v.tanh());
        Ok(())
    }
}

hush_cell_sdk::export_cells!(DenseTanh);

/// dense → `test.dense-tanh` (n) → `hush.mgru` (n) → dense sigmoid gains.
fn mixed_model(n: usize) -> ModelFile {
    let spec = AnalysisSpec::default_16k();
    let bands = spec.bands();
    let inputs = FeatureLayout::Bands.input_size(bands);
    let mut seed = 99u64;
    let mut rnd = |len: usize, scale: f32| -> Vec<f32> {
        (0..len)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * scale
            })
            .collect()
    };
    let mut tensors = BTreeMap::new();
    let mut put = |name: &str, shape: Vec<usize>, data: Vec<f32>| {
        tensors.insert(name.to_string(), Tensor { shape, data });
    };
    put("layers.0.weight", vec![n, inputs], rnd(n * inputs, 0.2));
    put("layers.0.bias", vec![n], rnd(n, 0.1));
    put("layers.1.w", vec![n, n], rnd(n * n, 0.2));
    put("layers.1.u", vec![n, n], rnd(n * n, 0.2));
    put("layers.1.b", vec![n], rnd(n, 0.1));
    for t in ["w_f", "u_f", "w_c", "u_c"] {
        put(&format!("layers.2.{t}"), vec![n, n], rnd(n * n, 0.4));
    }
    put("layers.2.b_f", vec![n], rnd(n, 0.1));
    put("layers.2.b_c", vec![n], rnd(n, 0.1));
    put("layers.3.weight", vec![bands, n], rnd(bands * n, 0.3));
    put("layers.3.bias", vec![bands], rnd(bands, 0.1));
    ModelFile {
        spec,
        features: FeatureSpec {
            layout: LAYOUT_V1.into(),
            running_norm_s: 3.0,
            mean: vec![-5.0; inputs],
            std: vec![2.0; inputs],
        },
        layers: vec![
            LayerSpec::Dense {
                input: inputs,
                output: n,
                activation: Activation::Tanh,
            },
            LayerSpec::Cell {
                cell: "test.dense-tanh".into(),
                input: n,
                state: n,
            },
            LayerSpec::Cell {
                cell: "hush.mgru".into(),
                input: n,
                state: n,
            },
            LayerSpec::Dense {
                input: n,
                output: bands,
                activation: Activation::Sigmoid,
            },
        ],
        tensors,
        extra: BTreeMap::new(),
    }
}

/// The network of [`mixed_model`] with adaptation configured by `cfg`.
fn mixed_network(model: &ModelFile, cfg: AdaptConfig) -> Network {
    let mut registry = hush_engine::cells::registry(None).expect("built-in cells");
    registry.add_builtin(&ENTRY).expect("test cell registers");
    let mut net = Network::build(model, &mut registry, "mixed").expect("network builds");
    net.enable_adaptation(cfg, &Readout::uniform(2, 0.05), 0.01, 1);
    net
}

/// A 16 kHz engine over `net`.
fn engine_over(model: &ModelFile, net: Network) -> Engine {
    Engine::new(
        &model.spec,
        16_000,
        &EngineSettings::default(),
        Box::new(net),
    )
    .expect("engine")
}

/// An engine over [`mixed_model`] with adaptation configured by `cfg`.
fn mixed_engine(n: usize, cfg: AdaptConfig) -> Engine {
    let model = mixed_model(n);
    let net = mixed_network(&model, cfg);
    engine_over(&model, net)
}

/// Runs `seconds` of white noise (amplitude ×`step_gain` from `step_at_s`
/// on) and returns the frames at which a probe started.
fn probe_frames(
    engine: &mut Engine,
    seconds: usize,
    step_at_s: usize,
    step_gain: f32,
) -> Vec<usize> {
    let hop = engine.hop();
    let frames_per_s = 16_000 / hop;
    let (mut out, mut starts, mut seen) = (vec![0.0f32; hop], Vec::new(), 0);
    let mut state = 7u64;
    let step_frame = step_at_s.saturating_mul(frames_per_s);
    for f in 0..seconds * frames_per_s {
        let gain = if f >= step_frame { step_gain } else { 1.0 };
        let input: Vec<f32> = (0..hop)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.02 * gain
            })
            .collect();
        engine.process_hop(&input, &mut out);
        let probes = engine.adapt_telemetry().expect("the network adapts").probes;
        if probes > seen {
            seen = probes;
            starts.push(f);
        }
    }
    starts
}

#[test]
fn probes_back_off_on_steady_input_and_resume_after_a_change() {
    let cfg = |backoff| AdaptConfig {
        mode: AdaptMode::ErrorBudget,
        probe_every_s: 5.0,
        probe_backoff_max: backoff,
        ..AdaptConfig::default()
    };
    let steady = |backoff| probe_frames(&mut mixed_engine(16, cfg(backoff)), 120, usize::MAX, 1.0);
    let (every, backed_off) = (steady(1), steady(4));
    eprintln!(
        "probes in 120 s of steady noise: {} without back-off, {} with",
        every.len(),
        every.len().min(backed_off.len())
    );
    assert!(every.len() >= 18, "every 5 s: {every:?}");
    // 5, 10, 20, 20, … s apart: at most one probe per 20 s once backed off.
    assert!(
        backed_off.len() <= every.len() / 2,
        "{backed_off:?} vs {every:?}"
    );
    let gaps: Vec<usize> = backed_off.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.windows(2).all(|g| g[1] >= g[0]),
        "gaps only grow: {gaps:?}"
    );
    assert!(
        *gaps.last().expect("several probes") >= 2000,
        "capped at 20 s: {gaps:?}"
    );

    // A 30 dB step after 100 s: a probe within 3 s, and the interval back at 5 s.
    let stepped = probe_frames(&mut mixed_engine(16, cfg(4)), 120, 100, 31.6);
    let after: Vec<usize> = stepped.iter().copied().filter(|&f| f >= 10_000).collect();
    assert!(
        after.first().is_some_and(|&f| f < 10_300),
        "no probe soon after the change: {stepped:?}"
    );
    assert!(
        after.len() >= 3,
        "probing resumed at the base interval: {stepped:?}"
    );
}

#[test]
fn the_low_rank_cell_beside_a_dense_cell_of_the_same_size_is_probed_and_lowered() {
    let n = 32;
    let model = mixed_model(n);
    let cfg = AdaptConfig {
        mode: AdaptMode::ErrorBudget,
        error_budget: 1.0, // anything goes: the controller lowers what it probed
        probe_every_s: 2.0,
        min_dwell_s: 0.0,
        ..AdaptConfig::default()
    };
    let mut net = mixed_network(&model, cfg);
    assert_eq!(
        net.adapt_matrices(),
        vec![
            ("cells.1.u_f".to_string(), n as u32),
            ("cells.1.u_c".to_string(), n as u32)
        ],
        "only the MGRU (the second cell) adapts"
    );
    let mut engine = engine_over(&model, net);
    let hop = engine.hop();
    let (mut out, mut probed, mut lowest) = (vec![0.0f32; hop], false, u16::MAX);
    let mut state = 7u64;
    for _ in 0..600 {
        let input: Vec<f32> = (0..hop)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
            })
            .collect();
        engine.process_hop(&input, &mut out);
        let t = engine.adapt_telemetry().expect("the network adapts");
        probed |= t.probing;
        lowest = lowest.min(*t.ranks[..t.matrices].iter().min().expect("two matrices"));
    }
    assert!(probed, "the MGRU was never probed");
    assert!(
        (lowest as usize) < n,
        "no rank was lowered below dense ({lowest}) with an unlimited budget"
    );
}
