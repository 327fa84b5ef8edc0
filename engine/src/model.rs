//! The model file (DESIGN.md §5): safetensors with `hush.*` metadata.
//!
//! Tensors are `layers.{i}.{name}` (f32, little-endian), plus an optional
//! voice-activity head `vad.weight` / `vad.bias`. Metadata (string → string,
//! JSON where structured) describes the analysis (rate, window, hop, band
//! centres), the input features and their normalisation, the layer list and
//! the training record. [`ModelFile::from_bytes`] checks the format version,
//! every dense shape, and that every value is finite; errors name the file and
//! the tensor or key.

use std::collections::BTreeMap;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::dsp::geometry::AnalysisSpec;

/// The model file format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Activation of a dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// Identity.
    Linear,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// max(0, x).
    Relu,
}

impl Activation {
    /// Applies the activation to one value.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Self::Linear => x,
            Self::Tanh => x.tanh(),
            Self::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Self::Relu => x.max(0.0),
        }
    }
}

/// One layer of the network, in order from input to gains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LayerSpec {
    /// `y = act(W x + b)`: tensors `weight` [output, input] and `bias` [output].
    Dense {
        /// Input size.
        input: usize,
        /// Output size.
        output: usize,
        /// Activation.
        activation: Activation,
    },
    /// A recurrent cell through the plugin ABI; tensors as its descriptor lists.
    Cell {
        /// Cell id, e.g. `hush.mgru`.
        cell: String,
        /// Input size m.
        input: usize,
        /// State size n.
        state: usize,
    },
}

impl LayerSpec {
    /// Size of the layer's output.
    pub fn output(&self) -> usize {
        match self {
            Self::Dense { output, .. } => *output,
            Self::Cell { state, .. } => *state,
        }
    }

    /// Size of the layer's input.
    pub fn input(&self) -> usize {
        match self {
            Self::Dense { input, .. } | Self::Cell { input, .. } => *input,
        }
    }
}

/// The network's input vector, built from band features (see
/// [`crate::estimator::input`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Layout name and version, e.g. `log-energy+running+delta/1`.
    pub layout: String,
    /// Time constant of the running normalisation of log energies, seconds.
    pub running_norm_s: f64,
    /// Per-input mean subtracted before the network.
    pub mean: Vec<f32>,
    /// Per-input standard deviation divided by before the network.
    pub std: Vec<f32>,
}

/// A tensor: shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// A loaded (or to-be-written) model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    /// Analysis the model was trained with.
    pub spec: AnalysisSpec,
    /// Input features.
    pub features: FeatureSpec,
    /// Layers, input to output; the last produces one gain per band.
    pub layers: Vec<LayerSpec>,
    /// Tensors by name.
    pub tensors: BTreeMap<String, Tensor>,
    /// Other metadata (`hush.training`, `hush.metrics`, `hush.readout_sensitivity`, …), verbatim.
    pub extra: BTreeMap<String, String>,
}

/// A model file error: the file and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ModelError {
    /// File name (or "<embedded>").
    pub origin: String,
    /// What is wrong, naming the tensor or key.
    pub message: String,
}

/// What is inconsistent inside a parsed model (its layer chain, tensors or
/// feature normalisation). [`ModelError`] adds the file it came from.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelDefect {
    /// `hush.layers` lists no layer.
    #[error("metadata `hush.layers` is empty")]
    NoLayers,
    /// The feature normalisation's length differs from the input width.
    #[error("metadata `hush.features`: {means} means / {stds} stds for {inputs} inputs")]
    NormalisationSize {
        /// Entries in `mean`.
        means: usize,
        /// Entries in `std`.
        stds: usize,
        /// Inputs the first layer (or the layout) takes.
        inputs: usize,
    },
    /// A mean is not finite or a std not finite and positive.
    #[error("metadata `hush.features`: normalisation must be finite with positive stds")]
    NormalisationValues,
    /// The feature layout is not one this build computes.
    #[error("unknown feature layout `{found}` (this build knows `{known}`)")]
    UnknownLayout {
        /// The layout the model names.
        found: String,
        /// The layout this build computes.
        known: &'static str,
    },
    /// Layer `from`'s output width differs from the next layer's input.
    #[error("layers {from} → {to}: output {output} does not match input {input}", to = from + 1)]
    LayerChain {
        /// Index of the earlier layer.
        from: usize,
        /// Its output width.
        output: usize,
        /// The next layer's input width.
        input: usize,
    },
    /// The last layer does not give one value per band.
    #[error("the last layer gives {output} values for {bands} bands")]
    LastLayer {
        /// Its output width.
        output: usize,
        /// Bands of the analysis.
        bands: usize,
    },
    /// A tensor the layers need is absent.
    #[error("missing tensor `{0}`")]
    MissingTensor(String),
    /// A tensor has the wrong shape.
    #[error("tensor `{name}`: shape {found:?}, expected {expected:?}")]
    TensorShape {
        /// Tensor name.
        name: String,
        /// Its shape in the file.
        found: Vec<usize>,
        /// The shape the layer needs.
        expected: Vec<usize>,
    },
    /// The model could not be serialised (metadata or tensor encoding).
    #[error("cannot serialise the model: {0}")]
    Serialise(String),
}

impl ModelError {
    /// `defect` found in the model from `origin` (file name or
    /// "<embedded>").
    pub fn new(origin: &str, defect: impl std::fmt::Display) -> Self {
        ModelError {
            origin: origin.to_string(),
            message: defect.to_string(),
        }
    }
}

impl ModelFile {
    /// Parses and validates model bytes; `origin` names them in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self, ModelError> {
        let err = |message: String| ModelError {
            origin: origin.to_string(),
            message,
        };
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| err(format!("not a safetensors model: {e}")))?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| err(format!("not a safetensors model: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |k: &str| {
            meta.get(k)
                .ok_or_else(|| err(format!("missing metadata key `{k}`")))
        };
        let json = |k: &str| -> Result<serde_json::Value, ModelError> {
            serde_json::from_str(get(k)?).map_err(|e| err(format!("metadata `{k}`: {e}")))
        };
        let format: u32 = get("hush.format")?
            .parse()
            .map_err(|_| err("metadata `hush.format` is not an integer".into()))?;
        if format != FORMAT_VERSION {
            return Err(err(format!(
                "unsupported model format {format} (this build reads {FORMAT_VERSION})"
            )));
        }
        let num = |k: &str| -> Result<f64, ModelError> {
            get(k)?
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| err(format!("metadata `{k}` must be a positive number")))
        };
        let model_rate = num("hush.sample_rate")? as u32;
        let window_s = num("hush.window")?;
        let hop_s = num("hush.hop")?;
        if (hop_s * 2.0 - window_s).abs() > 1e-9 {
            return Err(err(
                "metadata `hush.hop` must be half of `hush.window`".into()
            ));
        }
        let band_centres_hz: Vec<f64> = serde_json::from_value(json("hush.bands")?)
            .map_err(|e| err(format!("metadata `hush.bands`: {e}")))?;
        if band_centres_hz.len() < 2
            || band_centres_hz[0] != 0.0
            || band_centres_hz.windows(2).any(|w| w[1] <= w[0])
        {
            return Err(err(
                "metadata `hush.bands` must start at 0 Hz and increase".into()
            ));
        }
        let features: FeatureSpec = serde_json::from_value(json("hush.features")?)
            .map_err(|e| err(format!("metadata `hush.features`: {e}")))?;
        let layers: Vec<LayerSpec> = serde_json::from_value(json("hush.layers")?)
            .map_err(|e| err(format!("metadata `hush.layers`: {e}")))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(err(format!(
                    "tensor `{name}`: dtype {:?}, expected F32",
                    view.dtype()
                )));
            }
            let data: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                return Err(err(format!(
                    "tensor `{name}`: non-finite value at index {i}"
                )));
            }
            tensors.insert(
                name,
                Tensor {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        let extra = meta
            .into_iter()
            .filter(|(k, _)| !CORE_KEYS.contains(&k.as_str()))
            .collect();
        let model = Self {
            spec: AnalysisSpec {
                model_rate,
                window_s,
                hop_s,
                band_centres_hz,
            },
            features,
            layers,
            tensors,
            extra,
        };
        model.validate().map_err(|d| err(d.to_string()))?;
        Ok(model)
    }

    /// Checks the layer chain, the dense tensors' shapes, the feature
    /// normalisation and the VAD head. Cell tensors are checked against the
    /// cell's descriptor when the network is built.
    pub fn validate(&self) -> Result<(), ModelDefect> {
        let first = self.layers.first().ok_or(ModelDefect::NoLayers)?;
        let n_in = first.input();
        if self.features.mean.len() != n_in || self.features.std.len() != n_in {
            return Err(ModelDefect::NormalisationSize {
                means: self.features.mean.len(),
                stds: self.features.std.len(),
                inputs: n_in,
            });
        }
        if self
            .features
            .std
            .iter()
            .any(|s| !(s.is_finite() && *s > 0.0))
            || self.features.mean.iter().any(|m| !m.is_finite())
        {
            return Err(ModelDefect::NormalisationValues);
        }
        for (i, w) in self.layers.windows(2).enumerate() {
            if w[0].output() != w[1].input() {
                return Err(ModelDefect::LayerChain {
                    from: i,
                    output: w[0].output(),
                    input: w[1].input(),
                });
            }
        }
        let last = self.layers.last().expect("non-empty");
        if last.output() != self.spec.bands() {
            return Err(ModelDefect::LastLayer {
                output: last.output(),
                bands: self.spec.bands(),
            });
        }
        for (i, l) in self.layers.iter().enumerate() {
            if let LayerSpec::Dense { input, output, .. } = *l {
                self.expect_shape(&format!("layers.{i}.weight"), &[output, input])?;
                self.expect_shape(&format!("layers.{i}.bias"), &[output])?;
            }
        }
        if self.tensors.contains_key("vad.weight") {
            let hidden = self.layers[self.layers.len() - 2].output();
            self.expect_shape("vad.weight", &[1, hidden])?;
            self.expect_shape("vad.bias", &[1])?;
        }
        Ok(())
    }

    /// Errors unless tensor `name` exists with exactly `shape`.
    pub fn expect_shape(&self, name: &str, shape: &[usize]) -> Result<&Tensor, ModelDefect> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| ModelDefect::MissingTensor(name.to_string()))?;
        if t.shape != shape {
            return Err(ModelDefect::TensorShape {
                name: name.to_string(),
                found: t.shape.clone(),
                expected: shape.to_vec(),
            });
        }
        Ok(t)
    }

    /// Serialises to safetensors bytes with metadata.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelDefect> {
        fn ser(e: impl std::fmt::Display) -> ModelDefect {
            ModelDefect::Serialise(e.to_string())
        }
        let mut meta: std::collections::HashMap<String, String> =
            self.extra.clone().into_iter().collect();
        meta.insert("hush.format".into(), FORMAT_VERSION.to_string());
        meta.insert("hush.sample_rate".into(), self.spec.model_rate.to_string());
        meta.insert("hush.window".into(), format!("{}", self.spec.window_s));
        meta.insert("hush.hop".into(), format!("{}", self.spec.hop_s));
        meta.insert(
            "hush.frame".into(),
            format!(
                "{}",
                (self.spec.window_s * self.spec.model_rate as f64).round()
            ),
        );
        meta.insert(
            "hush.bands".into(),
            serde_json::to_string(&self.spec.band_centres_hz).map_err(ser)?,
        );
        meta.insert(
            "hush.features".into(),
            serde_json::to_string(&self.features).map_err(ser)?,
        );
        meta.insert(
            "hush.layers".into(),
            serde_json::to_string(&self.layers).map_err(ser)?,
        );
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .tensors
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    t.shape.clone(),
                )
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(k, b, s)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (k.clone(), v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ser)?;
        safetensors::serialize(views, Some(meta)).map_err(ser)
    }

    /// Multiply-accumulates per frame at full rank (dense layers and the
    /// cells' W and U products, per the cell kinds hush ships).
    pub fn macs_per_frame(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                LayerSpec::Dense { input, output, .. } => input * output,
                LayerSpec::Cell { cell, input, state } => {
                    let gates = match cell.as_str() {
                        "hush.gru" => 3,
                        "hush.elman" => 1,
                        _ => 2,
                    };
                    gates * state * (input + state)
                }
            })
            .sum::<usize>()
            + if self.tensors.contains_key("vad.weight") {
                self.layers[self.layers.len() - 2].output()
            } else {
                0
            }
    }
}

/// Metadata keys interpreted by [`ModelFile`]; everything else is kept in `extra`.
const CORE_KEYS: &[&str] = &[
    "hush.format",
    "hush.sample_rate",
    "hush.window",
    "hush.hop",
    "hush.frame",
    "hush.bands",
    "hush.features",
    "hush.layers",
];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::estimator::input::{FeatureLayout, LAYOUT_V1};

    /// A small valid model: dense → MGRU → dense, deterministic weights.
    pub(crate) fn tiny_model(hidden: usize) -> ModelFile {
        let spec = AnalysisSpec::default_16k();
        let bands = spec.bands();
        let inputs = FeatureLayout::Bands.input_size(bands);
        let mut seed = 12345u64;
        let mut rnd = |n: usize, scale: f32| -> Vec<f32> {
            (0..n)
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
        put(
            "layers.0.weight",
            vec![hidden, inputs],
            rnd(hidden * inputs, 0.2),
        );
        put("layers.0.bias", vec![hidden], rnd(hidden, 0.1));
        for (n, shape) in [
            ("w_f", vec![hidden, hidden]),
            ("u_f", vec![hidden, hidden]),
            ("w_c", vec![hidden, hidden]),
            ("u_c", vec![hidden, hidden]),
        ] {
            let len = shape.iter().product();
            put(&format!("layers.1.{n}"), shape, rnd(len, 0.3));
        }
        put("layers.1.b_f", vec![hidden], rnd(hidden, 0.1));
        put("layers.1.b_c", vec![hidden], rnd(hidden, 0.1));
        put(
            "layers.2.weight",
            vec![bands, hidden],
            rnd(bands * hidden, 0.3),
        );
        put("layers.2.bias", vec![bands], rnd(bands, 0.1));
        put("vad.weight", vec![1, hidden], rnd(hidden, 0.3));
        put("vad.bias", vec![1], vec![0.0]);
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
                    output: hidden,
                    activation: Activation::Tanh,
                },
                LayerSpec::Cell {
                    cell: "hush.mgru".into(),
                    input: hidden,
                    state: hidden,
                },
                LayerSpec::Dense {
                    input: hidden,
                    output: bands,
                    activation: Activation::Sigmoid,
                },
            ],
            tensors,
            extra: [("hush.training".to_string(), "{\"seed\":1}".to_string())]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn round_trip() {
        let m = tiny_model(16);
        let bytes = m.to_bytes().unwrap();
        let back = ModelFile::from_bytes(&bytes, "t").unwrap();
        assert_eq!(back, m);
        assert_eq!(m.macs_per_frame(), 96 * 16 + 2 * 16 * 32 + 16 * 32 + 16);
    }

    #[test]
    fn rejects_corrupt_files() {
        let m = tiny_model(8);
        let check = |m: &ModelFile, needle: &str| {
            let bytes = m.to_bytes().unwrap();
            let e = ModelFile::from_bytes(&bytes, "bad.safetensors")
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("bad.safetensors: ") && e.contains(needle),
                "{e} should mention {needle}"
            );
        };
        let mut wrong = m.clone();
        wrong.tensors.get_mut("layers.2.weight").unwrap().shape = vec![8, 32];
        check(&wrong, "layers.2.weight");
        let mut nan = m.clone();
        nan.tensors.get_mut("layers.1.u_c").unwrap().data[3] = f32::NAN;
        check(&nan, "layers.1.u_c");
        let mut missing = m.clone();
        missing.tensors.remove("layers.0.bias");
        check(&missing, "layers.0.bias");
        let mut chain = m.clone();
        chain.layers[1] = LayerSpec::Cell {
            cell: "hush.mgru".into(),
            input: 7,
            state: 8,
        };
        check(&chain, "layers 0 → 1");
        let mut version = m.clone();
        version.extra.insert("hush.format".into(), "1".into());
        let bytes = version.to_bytes().unwrap();
        assert!(ModelFile::from_bytes(&bytes, "x").is_ok());
        // A future format version.
        let mut future = bytes.clone();
        let pat = b"\"hush.format\":\"1\"";
        let at = future
            .windows(pat.len())
            .position(|w| w == pat)
            .expect("format key in header");
        future[at + pat.len() - 2] = b'9';
        let e = ModelFile::from_bytes(&future, "x").unwrap_err().to_string();
        assert!(e.contains("unsupported model format 9"), "{e}");
        // Truncated anywhere: an error, never a panic.
        let good = m.to_bytes().unwrap();
        for cut in [0, 7, 8, 100, good.len() / 2, good.len() - 1] {
            assert!(
                ModelFile::from_bytes(&good[..cut], "cut").is_err(),
                "cut at {cut}"
            );
        }
    }
}
