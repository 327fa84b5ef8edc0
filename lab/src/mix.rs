//! One training or validation sequence: speech (augmented) plus noise at a
//! random level and SNR, and its frames — network inputs, ideal band gains,
//! weights and voice activity — computed with the daemon's own dsp code.

use hush_engine::dsp::bands::BandLayout;
use hush_engine::dsp::frontend::FrontEnd;
use hush_engine::dsp::geometry::{AnalysisSpec, FrameGeometry};
use hush_engine::dsp::stft::Stft;
use hush_engine::estimator::input::InputBuilder;

use crate::augment::{change_speed, convolve, random_eq, rms, room_response, shift_formants};
use crate::corpus::Corpus;
use crate::corpus::NoiseKind;
use crate::noise::{noise_of_kind, random_noise};
use crate::rng::Rng;

/// A mixture and its parts, at the model rate.
#[derive(Debug, Clone)]
#[allow(
    dead_code,
    reason = "noise_label and snr_db are read by evaluation reports"
)]
pub struct Example {
    /// The target: speech with its direct path and early reflections only.
    pub clean: Vec<f32>,
    /// Everything else in the mixture (noise and late reverberation).
    pub residual: Vec<f32>,
    /// `clean + residual`.
    pub mix: Vec<f32>,
    /// Noise description.
    pub noise_label: String,
    /// SNR of speech to noise, dB.
    pub snr_db: f64,
    /// Where each utterance starts, samples.
    pub onsets: Vec<usize>,
    /// Lowest cutoff of the narrowband clips in the mixture, Hz (the loss
    /// ignores bands above it); `None`: all full band.
    pub cutoff_hz: Option<f32>,
    /// Whether the speech was reverberated.
    pub reverberant: bool,
}

/// Mixing ranges.
#[derive(Debug, Clone)]
pub struct MixConfig {
    /// SNR range, dB.
    pub snr_db: (f64, f64),
    /// Active-speech level range, dBFS RMS.
    pub level_db: (f64, f64),
    /// Probability of reverberation.
    pub reverb: f64,
    /// Probability of a noise-only sequence.
    pub noise_only: f64,
    /// Noise of this kind only (default: any, [`random_noise`]).
    pub noise_kind: Option<NoiseKind>,
    /// Probability of a practically noise-free sequence (noise 45–70 dB
    /// below the speech): the network must learn to leave clean speech alone.
    pub noise_free: f64,
    /// Probability that a clip is used from its beginning (a real word
    /// onset) rather than from a random point.
    pub from_start: f64,
    /// Probability that a clip's formants are moved by a factor in
    /// [`FORMANT_FACTORS`], pitch kept ([`shift_formants`]): voices with
    /// other vocal-tract lengths than the corpus has.
    pub formant_shift: f64,
}

/// Range of the formant-shift factors (about ±14 %, geometric-symmetric;
/// adult female formants lie about 15–20 % above male ones).
pub const FORMANT_FACTORS: (f64, f64) = (0.87, 1.15);

impl Default for MixConfig {
    fn default() -> Self {
        Self {
            snr_db: (-5.0, 20.0),
            level_db: (-40.0, -15.0),
            reverb: 0.3,
            noise_only: 0.07,
            noise_kind: None,
            noise_free: 0.0,
            from_start: 0.5,
            formant_shift: 0.0,
        }
    }
}

/// Builds one sequence of `len` samples.
pub fn make_example(
    rng: &mut Rng,
    corpus: &Corpus,
    cfg: &MixConfig,
    len: usize,
    rate: f64,
) -> Example {
    let mut speech = vec![0.0f32; len];
    let noise_only = rng.chance(cfg.noise_only);
    let mut onsets = Vec::new();
    let mut cutoff_hz: Option<f32> = None;
    if !noise_only {
        let mut pos = if rng.chance(0.5) {
            (rng.range(0.0, 0.8) * rate) as usize
        } else {
            0
        };
        while pos < len {
            let picked = &corpus.speech[rng.below(corpus.speech.len())];
            if let Some(c) = picked.cutoff_hz {
                cutoff_hz = Some(cutoff_hz.map_or(c, |m| m.min(c)));
            }
            let clip = &picked.samples;
            let mut seg = if rng.chance(0.6) {
                change_speed(clip, rng.range(0.85, 1.18))
            } else {
                clip.clone()
            };
            let start = if rng.chance(cfg.from_start) {
                0
            } else {
                rng.below(seg.len().saturating_sub((rate * 1.0) as usize).max(1))
            };
            seg.drain(..start);
            if cfg.formant_shift > 0.0 && rng.chance(cfg.formant_shift) {
                seg.truncate(len - pos);
                let factor = rng.range(FORMANT_FACTORS.0, FORMANT_FACTORS.1);
                seg = shift_formants(&seg, factor, rate);
            }
            random_eq(rng, rate, &mut seg);
            let g = 10f64.powf(rng.range(-6.0, 6.0) / 20.0) as f32;
            let n = seg.len().min(len - pos);
            for i in 0..n {
                speech[pos + i] += g * seg[i];
            }
            // A segment cut from the clip's middle has no word onset.
            if start == 0
                && let Some(o) = first_active(&seg[..n], (rate * 0.02) as usize)
            {
                onsets.push(pos + o);
            }
            pos += n + (rng.range(0.0, 0.8) * rate) as usize;
        }
    }
    let (mut clean, mut late) = (speech.clone(), vec![0.0f32; len]);
    let reverberant = !noise_only && rng.chance(cfg.reverb);
    if reverberant {
        let rt60 = rng.range(0.15, 0.9);
        let (full, early) = room_response(rng, rate, rt60);
        let wet = convolve(&speech, &full);
        clean = convolve(&speech, &early);
        for i in 0..len {
            late[i] = wet[i] - clean[i];
        }
    }
    // Level of active speech: RMS over the loudest half of 20 ms blocks.
    let active = active_rms(&clean, (rate * 0.02) as usize).max(1e-9);
    let level = 10f64.powf(rng.range(cfg.level_db.0, cfg.level_db.1) / 20.0) as f32;
    let gs = level / active;
    clean.iter_mut().for_each(|v| *v *= gs);
    late.iter_mut().for_each(|v| *v *= gs);
    let (noise, noise_label) = match cfg.noise_kind {
        Some(k) => noise_of_kind(rng, k, &corpus.noise, corpus.babble_speech(), len, rate),
        None => random_noise(rng, &corpus.noise, &corpus.speech, len, rate),
    };
    let snr_db = if !noise_only && cfg.noise_free > 0.0 && rng.chance(cfg.noise_free) {
        rng.range(45.0, 70.0)
    } else {
        rng.range(cfg.snr_db.0, cfg.snr_db.1)
    };
    let noise_rms = if noise_only {
        level * 10f64.powf(-rng.range(0.0, 15.0) / 20.0) as f32
    } else {
        level * 10f64.powf(-snr_db / 20.0) as f32
    };
    let mut residual: Vec<f32> = noise
        .iter()
        .zip(&late)
        .map(|(n, l)| n * noise_rms + l)
        .collect();
    let mut mix: Vec<f32> = clean.iter().zip(&residual).map(|(c, r)| c + r).collect();
    let peak = mix.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if peak > 0.99 {
        let g = 0.99 / peak;
        for v in clean
            .iter_mut()
            .chain(residual.iter_mut())
            .chain(mix.iter_mut())
        {
            *v *= g;
        }
    }
    Example {
        clean,
        residual,
        mix,
        noise_label,
        snr_db: if noise_only {
            f64::NEG_INFINITY
        } else {
            snr_db
        },
        onsets,
        cutoff_hz,
        reverberant,
    }
}

impl Example {
    /// This example followed by `next`: one sequence in which speaker, noise,
    /// level and room change at once where `next` begins (what a stream meets
    /// when someone else talks or a machine starts). The cutoff is the lower
    /// of the two, the SNR label the lower (noise-only if either is).
    pub fn followed_by(mut self, next: Example) -> Example {
        let at = self.mix.len();
        self.clean.extend_from_slice(&next.clean);
        self.residual.extend_from_slice(&next.residual);
        self.mix.extend_from_slice(&next.mix);
        self.noise_label = format!("{}|{}", self.noise_label, next.noise_label);
        self.snr_db = self.snr_db.min(next.snr_db);
        self.onsets.extend(next.onsets.iter().map(|o| o + at));
        self.cutoff_hz = match (self.cutoff_hz, next.cutoff_hz) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.reverberant |= next.reverberant;
        self
    }
}

/// One training sequence of `len` samples: with probability `splice`, two
/// independent mixtures joined at a random point between a quarter and
/// three quarters of it ([`Example::followed_by`]), else one mixture.
pub fn make_sequence(
    rng: &mut Rng,
    corpus: &Corpus,
    cfg: &MixConfig,
    splice: f64,
    len: usize,
    rate: f64,
) -> Example {
    if splice > 0.0 && rng.chance(splice) {
        let at = (len as f64 * rng.range(0.25, 0.75)) as usize;
        let first = make_example(rng, corpus, cfg, at, rate);
        first.followed_by(make_example(rng, corpus, cfg, len - at, rate))
    } else {
        make_example(rng, corpus, cfg, len, rate)
    }
}

/// Start of the first 20 ms block within 30 dB of the loudest block (the
/// speech onset after a clip's lead-in silence), samples.
fn first_active(x: &[f32], block: usize) -> Option<usize> {
    let e: Vec<f32> = x.chunks(block.max(1)).map(rms).collect();
    let peak = e.iter().fold(0.0f32, |m, v| m.max(*v));
    (peak > 0.0)
        .then(|| e.iter().position(|v| *v > peak * 10f32.powf(-30.0 / 20.0)))
        .flatten()
        .map(|b| b * block)
}

fn active_rms(x: &[f32], block: usize) -> f32 {
    let mut e: Vec<f32> = x.chunks(block.max(1)).map(rms).collect();
    e.sort_by(|a, b| b.total_cmp(a));
    let half = &e[..e.len().div_ceil(2)];
    (half.iter().map(|v| v * v).sum::<f32>() / half.len().max(1) as f32).sqrt()
}

/// The frames of a sequence, flattened row-major.
#[derive(Debug, Clone, Default)]
pub struct Frames {
    /// Frames.
    pub frames: usize,
    /// Network inputs, `frames × inputs`.
    pub inputs: Vec<f32>,
    /// Ideal band gains `sqrt(Es / (Es + En))`, `frames × bands`.
    pub gains: Vec<f32>,
    /// Loss weights (0 where a band holds neither speech nor noise), `frames × bands`.
    pub weights: Vec<f32>,
    /// Voice activity, `frames`.
    pub vad: Vec<f32>,
}

/// The daemon's analysis of one signal, shared by the trainer and evaluation.
pub struct Analyzer {
    /// The mixture's analysis, as the engine runs it (with the period
    /// search when the input builder's layout uses it).
    mix: FrontEnd,
    stft_clean: Stft,
    stft_residual: Stft,
    layout: BandLayout,
    scale: f32,
    hop: usize,
    bands: usize,
    /// Band centres, Hz (for the narrowband loss mask).
    centres_hz: Vec<f32>,
}

impl Analyzer {
    /// The analysis of `spec` at its model rate; `running_norm_s` as the
    /// network's features use it.
    pub fn new(spec: &AnalysisSpec, running_norm_s: f64) -> Self {
        let g = FrameGeometry::at_rate(spec, spec.model_rate);
        let stft = Stft::new(g.window);
        let scale = 1.0 / (stft.window_sum() * stft.window_sum());
        let layout = BandLayout::new(&spec.band_centres_hz, g.bin_hz, g.bins())
            .expect("valid default bands");
        let bands = layout.len();
        Self {
            mix: FrontEnd::new(&g, layout.clone(), running_norm_s, false),
            stft_clean: Stft::new(g.window),
            stft_residual: stft,
            layout,
            scale,
            hop: g.hop,
            bands,
            centres_hz: spec.band_centres_hz.iter().map(|&c| c as f32).collect(),
        }
    }

    /// Band count.
    pub fn bands(&self) -> usize {
        self.bands
    }

    /// Frames of `ex` with inputs from `input` (fresh state per sequence).
    pub fn frames(&mut self, ex: &Example, input: &mut InputBuilder) -> Frames {
        self.mix.set_pitch(input.layout().uses_pitch());
        self.mix.reset();
        self.stft_clean.reset();
        self.stft_residual.reset();
        input.reset();
        let (b, nin) = (self.bands, input.len());
        let t = ex.mix.len() / self.hop;
        let mut f = Frames {
            frames: t,
            inputs: vec![0.0; t * nin],
            gains: vec![0.0; t * b],
            weights: vec![0.0; t * b],
            vad: vec![0.0; t],
        };
        let (mut es, mut en) = (vec![0.0f32; b], vec![0.0f32; b]);
        // Bands above a narrowband clip's cutoff carry no speech by
        // recording, not by nature: the loss ignores them.
        let band_used: Vec<bool> = self
            .centres_hz
            .iter()
            .map(|&c| ex.cutoff_hz.is_none_or(|cut| c <= cut))
            .collect();
        let mut frame_speech = vec![0.0f32; t];
        for (i, speech) in frame_speech.iter_mut().enumerate() {
            let r = i * self.hop..(i + 1) * self.hop;
            let frame = self.mix.analyze(&ex.mix[r.clone()]);
            input.build(&frame, &mut f.inputs[i * nin..(i + 1) * nin]);
            let sc = self.stft_clean.analyze(&ex.clean[r.clone()]);
            self.layout.energies(sc, self.scale, &mut es);
            let sr = self.stft_residual.analyze(&ex.residual[r]);
            self.layout.energies(sr, self.scale, &mut en);
            for k in 0..b {
                let total = es[k] + en[k];
                f.gains[i * b + k] = if total > 0.0 {
                    (es[k] / total).sqrt()
                } else {
                    0.0
                };
                f.weights[i * b + k] = if total > 1e-10 && band_used[k] {
                    1.0
                } else {
                    0.0
                };
            }
            *speech = es.iter().sum();
        }
        let peak = frame_speech.iter().fold(0.0f32, |m, v| m.max(*v));
        for (v, e) in f.vad.iter_mut().zip(&frame_speech) {
            *v = if peak > 0.0 && *e > peak * 1e-3 {
                1.0
            } else {
                0.0
            };
        }
        f
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::corpus::Clip;
    use hush_engine::dsp::features::BandFrame;
    use hush_engine::estimator::{EstimatorTelemetry, GainEstimator};
    use hush_engine::pipeline::Engine;
    use hush_engine::settings::EngineSettings;
    use std::sync::{Arc, Mutex};

    /// A synthetic corpus: harmonic "voices" and procedural noise only, so
    /// tests need no audio files.
    pub(crate) fn synthetic_corpus() -> Corpus {
        let rate = 16_000.0;
        let voice = |f0: f64, seed: u64| -> Vec<f32> {
            let mut r = Rng::new(seed);
            (0..(rate * 3.0) as usize)
                .map(|t| {
                    let ts = t as f64 / rate;
                    let env = if (ts * 3.0).fract() < 0.6 { 1.0 } else { 0.0 };
                    let f = f0 * (1.0 + 0.1 * (ts * 2.0).sin());
                    let s: f64 = (1..20)
                        .map(|k| (2.0 * std::f64::consts::PI * f * k as f64 * ts).sin() / k as f64)
                        .sum();
                    (0.1 * env * s + 0.001 * r.normal()) as f32
                })
                .collect()
        };
        Corpus {
            speech: vec![
                Clip {
                    label: "a".into(),
                    samples: voice(120.0, 1),
                    cutoff_hz: None,
                    kind: None,
                    source: "synthetic".into(),
                },
                Clip {
                    label: "b".into(),
                    samples: voice(210.0, 2),
                    cutoff_hz: None,
                    kind: None,
                    source: "synthetic".into(),
                },
            ],
            noise: vec![],
            babble: vec![],
            meta: Default::default(),
            sources: Default::default(),
        }
    }

    struct Recorder {
        input: InputBuilder,
        rows: Arc<Mutex<Vec<Vec<f32>>>>,
    }

    impl GainEstimator for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn bands(&self) -> usize {
            32
        }
        fn uses_pitch(&self) -> bool {
            self.input.layout().uses_pitch()
        }
        fn estimate(&mut self, frame: &BandFrame<'_>, gains: &mut [f32]) {
            let mut row = vec![0.0; self.input.len()];
            self.input.build(frame, &mut row);
            self.rows.lock().unwrap().push(row);
            gains.fill(1.0);
        }
        fn reset(&mut self) {}
        fn telemetry(&self) -> EstimatorTelemetry {
            EstimatorTelemetry::default()
        }
    }

    /// The trainer's inputs are the engine's inputs, bit for bit, with and
    /// without the periodicity features.
    #[test]
    fn trainer_features_equal_engine_features() {
        use hush_engine::estimator::input::FeatureLayout;
        let spec = AnalysisSpec::default_16k();
        let corpus = synthetic_corpus();
        let ex = make_example(
            &mut Rng::new(5),
            &corpus,
            &MixConfig::default(),
            16_000 * 2,
            16_000.0,
        );
        // One analyzer for both layouts: it follows the builder's.
        let mut an = Analyzer::new(&spec, hush_engine::dsp::features::DEFAULT_RUNNING_NORM_S);
        for layout in [
            FeatureLayout::Bands,
            FeatureLayout::BandsPitch,
            FeatureLayout::Bands,
        ] {
            let n = layout.input_size(32);
            let norm = hush_engine::model::FeatureSpec {
                layout: layout.name().into(),
                running_norm_s: hush_engine::dsp::features::DEFAULT_RUNNING_NORM_S,
                mean: (0..n).map(|i| i as f32 * 0.01 - 0.3).collect(),
                std: (0..n).map(|i| 0.5 + i as f32 * 0.02).collect(),
            };
            let mut input = InputBuilder::new(&norm, 32).unwrap();
            let f = an.frames(&ex, &mut input);

            let rows = Arc::new(Mutex::new(Vec::new()));
            let rec = Recorder {
                input: InputBuilder::new(&norm, 32).unwrap(),
                rows: rows.clone(),
            };
            let mut engine =
                Engine::new(&spec, 16_000, &EngineSettings::default(), Box::new(rec)).unwrap();
            let mut out = vec![0.0; engine.hop()];
            for hop in ex.mix.chunks_exact(engine.hop()) {
                engine.process_hop(hop, &mut out);
            }
            let rows = rows.lock().unwrap();
            assert_eq!(rows.len(), f.frames);
            for (i, row) in rows.iter().enumerate() {
                assert_eq!(
                    row.as_slice(),
                    &f.inputs[i * n..(i + 1) * n],
                    "{layout:?}, frame {i}"
                );
            }
            if layout.uses_pitch() {
                // The periodicity inputs are live: the voices are harmonic.
                let first = rows[0][4 * 32];
                assert!(rows.iter().any(|r| r[4 * 32] != first));
            }
        }
    }

    #[test]
    fn ideal_gains_are_bounded_and_follow_speech() {
        let spec = AnalysisSpec::default_16k();
        let corpus = synthetic_corpus();
        let cfg = MixConfig {
            snr_db: (0.0, 0.0),
            ..MixConfig::default()
        };
        let ex = make_example(&mut Rng::new(8), &corpus, &cfg, 16_000 * 3, 16_000.0);
        let mut an = Analyzer::new(&spec, 3.0);
        let f = an.frames(
            &ex,
            &mut InputBuilder::unnormalised(
                hush_engine::estimator::input::FeatureLayout::Bands,
                32,
            ),
        );
        assert!(f.gains.iter().all(|g| (0.0..=1.0).contains(g)));
        let mean = |vad: f32| {
            let sel: Vec<f32> = (0..f.frames)
                .filter(|&i| f.vad[i] == vad)
                .flat_map(|i| f.gains[i * 32..i * 32 + 12].to_vec())
                .collect();
            sel.iter().sum::<f32>() / sel.len().max(1) as f32
        };
        assert!(
            mean(1.0) > mean(0.0) + 0.2,
            "speech frames {} vs pauses {}",
            mean(1.0),
            mean(0.0)
        );
    }

    /// `splice = 0` is `make_example` on the same random stream; `splice =
    /// 1` is two independent mixtures drawn in turn from it, joined where the
    /// stream says, with the second one's onsets moved by the join.
    #[test]
    fn spliced_sequences_are_two_mixtures_end_to_end() {
        let corpus = synthetic_corpus();
        let cfg = MixConfig::default();
        let (len, rate) = (16_000 * 4, 16_000.0);
        for seed in 0..6 {
            let plain = make_example(&mut Rng::new(seed), &corpus, &cfg, len, rate);
            let same = make_sequence(&mut Rng::new(seed), &corpus, &cfg, 0.0, len, rate);
            assert_eq!(plain.mix, same.mix);

            let spliced = make_sequence(&mut Rng::new(seed), &corpus, &cfg, 1.0, len, rate);
            let mut r = Rng::new(seed);
            assert!(r.chance(1.0));
            let at = (len as f64 * r.range(0.25, 0.75)) as usize;
            assert!((len / 4..=len * 3 / 4).contains(&at));
            let a = make_example(&mut r, &corpus, &cfg, at, rate);
            let b = make_example(&mut r, &corpus, &cfg, len - at, rate);
            assert_eq!(spliced.mix.len(), len);
            assert_eq!(spliced.mix[..at], a.mix[..]);
            assert_eq!(spliced.mix[at..], b.mix[..]);
            assert_eq!(spliced.clean[at..], b.clean[..]);
            assert_eq!(spliced.residual[..at], a.residual[..]);
            let onsets: Vec<usize> = a
                .onsets
                .iter()
                .copied()
                .chain(b.onsets.iter().map(|o| o + at))
                .collect();
            assert_eq!(spliced.onsets, onsets);
            assert_eq!(spliced.reverberant, a.reverberant || b.reverberant);
            assert_eq!(spliced.snr_db, a.snr_db.min(b.snr_db));
        }
    }
}
