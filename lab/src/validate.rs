//! `hush-lab validate-model`: does the perturbation model predict what
//! truncating the recurrent rank actually costs? On sequences of every input
//! type (speech in stationary noise, speech in non-stationary noise, speech
//! only, noise only, silence, and synthetic AR(1) network inputs of
//! coherence 0…0.99) the real network runs at full rank and at truncated
//! ranks — each matrix alone and jointly, per cell and all cells together —
//! and the measured state and output errors are set beside the predictions
//! of every model variant. Prints the tables and the fraction of cases with
//! prediction/actual in [0.67, 1.5].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hush_engine::adapt::readout::{METADATA_KEY, Readout, slope_factor};
use hush_engine::estimator::input::InputBuilder;
use hush_engine::model::ModelFile;

use crate::augment::normalise_rms;
use crate::corpus::{Corpus, Split};
use crate::error::LabError;
use crate::eval::load_model;
use crate::mix::{Analyzer, Example, MixConfig, make_example};
use crate::noise::{Procedural, excerpt, procedural};
use crate::rng::Rng;
use crate::truncation::{Errors, Harness, Sequence, Variant, label, truncations};

const RATE: u32 = 16_000;

/// The range a prediction must fall in, as a multiple of the measured error.
pub const WITHIN: (f64, f64) = (0.67, 1.5);

/// Options of a validation run.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// Speech directory (the validation speakers are used).
    #[arg(long, default_value = "../shared/corpus/speech")]
    pub speech: PathBuf,
    /// Noise directory (the validation noise files are used).
    #[arg(long, default_value = "../shared/corpus/noise")]
    pub noise: PathBuf,
    /// Model file (default: the model embedded in hushd).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Sequences per input type.
    #[arg(long, default_value_t = 4)]
    pub items: usize,
    /// Seconds per sequence.
    #[arg(long, default_value_t = 6.0)]
    pub seconds: f64,
    /// Truncation ranks (comma-separated, descending).
    #[arg(long, default_value = "32,16,8,4", value_delimiter = ',')]
    pub ranks: Vec<usize>,
    /// Seed of the sequences.
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// Draw the sequences from the training split (the calibration's
    /// speakers and noise) instead of the validation split: tells a
    /// calibration that does not transfer from one that does not fit.
    #[arg(long)]
    pub training_split: bool,
    /// Output directory (validate.md, validate.json).
    #[arg(long, default_value = ".lab/validate")]
    pub out: PathBuf,
}

/// The input types, in table order.
pub const CATEGORIES: [&str; 9] = [
    "speech+stationary",
    "speech+non-stationary",
    "speech only",
    "noise only",
    "silence",
    "AR(1) a=0",
    "AR(1) a=0.5",
    "AR(1) a=0.9",
    "AR(1) a=0.99",
];

fn is_stationary(label: &str) -> bool {
    ["white_noise", "pink_noise", "brown_noise", "hum_50hz"].contains(&label)
}

fn noise_of(rng: &mut Rng, corpus: &Corpus, stationary: bool, len: usize) -> Vec<f32> {
    let clips: Vec<_> = corpus
        .noise
        .iter()
        .filter(|c| is_stationary(&c.label) == stationary)
        .collect();
    let mut y = if rng.chance(0.5) || clips.is_empty() {
        let kinds: &[Procedural] = if stationary {
            &[Procedural::Coloured, Procedural::Fan, Procedural::Hum]
        } else {
            &[Procedural::Babble, Procedural::Clicks]
        };
        let kind = kinds[rng.below(kinds.len())];
        procedural(rng, kind, len, RATE as f64, &corpus.speech)
    } else {
        let clip = clips[rng.below(clips.len())];
        excerpt(rng, &clip.samples, len)
    };
    normalise_rms(&mut y);
    y
}

/// `items` sequences of each of `categories` (names from [`CATEGORIES`]),
/// as network inputs of `model` (named `origin` in errors), from the
/// corpus `split`.
#[allow(clippy::too_many_arguments)]
pub fn sequences(
    speech: &Path,
    noise: &Path,
    split: Split,
    categories: &[&str],
    model: &ModelFile,
    origin: &str,
    items: usize,
    seconds: f64,
    seed: u64,
) -> Result<Vec<Sequence>, LabError> {
    let corpus = Corpus::load(speech, noise, split, RATE)?;
    let len = (seconds * RATE as f64) as usize;
    let mut analyzer = Analyzer::new(&model.spec, model.features.running_norm_s);
    let mut input =
        InputBuilder::new(&model.features, analyzer.bands()).map_err(|source| LabError::Model {
            origin: origin.to_string(),
            source,
        })?;
    let nin = input.len();
    let clean_cfg = MixConfig {
        snr_db: (60.0, 60.0),
        level_db: (-32.0, -18.0),
        reverb: 0.0,
        noise_only: 0.0,
        noise_kind: None,
        noise_free: 0.0,
        from_start: 1.0,
        formant_shift: 0.0,
    };
    let mut out = Vec::new();
    for (ci, cat) in categories.iter().enumerate() {
        for i in 0..items {
            let mut rng = Rng::for_item(seed, 17 + ci as u64, i as u64);
            if let Some(a) = cat.strip_prefix("AR(1) a=") {
                let a: f64 = a.parse().map_err(|_| LabError::Category(cat.to_string()))?;
                let frames = (seconds / model.spec.hop_s) as usize;
                let mut x = vec![0.0f32; frames * nin];
                let b = (1.0 - a * a).sqrt();
                for k in 0..nin {
                    let mut v = rng.normal();
                    for t in 0..frames {
                        x[t * nin + k] = v as f32;
                        v = a * v + b * rng.normal();
                    }
                }
                out.push(Sequence {
                    category: cat.to_string(),
                    inputs: x,
                    frames,
                });
                continue;
            }
            let clean = if cat.starts_with("speech") {
                make_example(&mut rng, &corpus, &clean_cfg, len, RATE as f64).clean
            } else {
                vec![0.0; len]
            };
            let level = 10f64.powf(rng.range(-32.0, -18.0) / 20.0) as f32;
            let scale = level / crate::augment::rms(&clean).max(1e-9);
            let clean: Vec<f32> = clean.iter().map(|v| v * scale).collect();
            let residual: Vec<f32> = match *cat {
                "speech+stationary" | "speech+non-stationary" => {
                    let snr = [0.0, 5.0, 10.0][i % 3];
                    let n = noise_of(&mut rng, &corpus, *cat == "speech+stationary", len);
                    let g = level * 10f64.powf(-snr / 20.0) as f32;
                    n.iter().map(|v| v * g).collect()
                }
                "noise only" => {
                    let n = noise_of(&mut rng, &corpus, i % 2 == 0, len);
                    n.iter().map(|v| v * level).collect()
                }
                "silence" => {
                    // Dither at −80 dBFS RMS: what an idle microphone path gives.
                    let g = 10f32.powf(-80.0 / 20.0);
                    (0..len).map(|_| g * rng.normal() as f32).collect()
                }
                _ => vec![0.0; len],
            };
            let mix: Vec<f32> = clean.iter().zip(&residual).map(|(c, r)| c + r).collect();
            let ex = Example {
                clean,
                residual,
                mix,
                noise_label: cat.to_string(),
                snr_db: 0.0,
                onsets: vec![],
                cutoff_hz: None,
                reverberant: false,
            };
            let f = analyzer.frames(&ex, &mut input);
            out.push(Sequence {
                category: cat.to_string(),
                inputs: f.inputs,
                frames: f.frames,
            });
        }
    }
    Ok(out)
}

/// One (input type, truncation) case, aggregated over its sequences.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Case {
    /// Input type.
    pub category: String,
    /// Truncation label.
    pub truncation: String,
    /// True if one matrix alone was truncated.
    pub single_matrix: bool,
    /// True if every cell was truncated.
    pub all_cells: bool,
    /// Measured RMS state error of the truncated cell (cell 0 for "all").
    pub state_actual: f64,
    /// Predicted RMS state error, per variant (in [`Variant::ALL`] order).
    pub state_predicted: Vec<f64>,
    /// Measured RMS band-gain error.
    pub out_actual: f64,
    /// Predicted RMS band-gain error, per variant.
    pub out_predicted: Vec<f64>,
    /// Input coherence of the sequences (mean).
    pub input_coherence: f64,
}

fn within(pred: f64, actual: f64) -> bool {
    actual > 0.0 && pred / actual >= WITHIN.0 && pred / actual <= WITHIN.1
}

struct Acc {
    actual: Errors,
    state_pred: Vec<f64>,
    out_pred: Vec<f64>,
    coherence: f64,
    count: usize,
}

/// Runs every truncation on every sequence; one [`Case`] per (category,
/// truncation).
pub fn run_cases(
    h: &mut Harness,
    seqs: &[Sequence],
    readout: &Readout,
    progress: bool,
) -> Result<Vec<Case>, LabError> {
    let truncs = truncations(h);
    let cats: Vec<String> = {
        let mut v: Vec<String> = seqs.iter().map(|s| s.category.clone()).collect();
        v.dedup();
        v
    };
    let new_acc = || Acc {
        actual: Errors::default(),
        state_pred: vec![0.0; Variant::ALL.len()],
        out_pred: vec![0.0; Variant::ALL.len()],
        coherence: 0.0,
        count: 0,
    };
    let mut acc: Vec<Vec<Acc>> = cats
        .iter()
        .map(|_| truncs.iter().map(|_| new_acc()).collect())
        .collect();
    let references: Vec<_> = seqs
        .iter()
        .map(|s| {
            let r = h.reference(s)?;
            let p = h.predictions(&r);
            Ok((r, p))
        })
        .collect::<Result<_, LabError>>()?;
    for (ti, &t) in truncs.iter().enumerate() {
        if progress {
            eprint!(
                "\r  truncation {}/{}: {:<24}",
                ti + 1,
                truncs.len(),
                label(h, t)
            );
        }
        let mut net = h.truncated(t)?;
        for (seq, (reference, preds)) in seqs.iter().zip(&references) {
            let ci = cats.iter().position(|c| *c == seq.category).unwrap_or(0);
            let a = &mut acc[ci][ti];
            let e = h.measure(&mut net, seq, reference)?;
            let w = e.frames as f64;
            let cell = t.cell.unwrap_or(0);
            // The controller's output-slope scale of the readout sensitivity.
            let f = slope_factor(reference.output_slope_sq(h.bands), readout.slope_sq);
            for (k, v) in Variant::ALL.iter().enumerate() {
                a.state_pred[k] += w * h.predict_state_sq(preds, t, cell, *v);
                a.out_pred[k] += w * f * f * h.predict_out_sq(preds, t, readout, *v);
            }
            a.actual.add(&e);
            a.coherence += seq.input_coherence(h.bands);
            a.count += 1;
        }
    }
    if progress {
        eprintln!();
    }
    let mut cases = Vec::new();
    for (ci, cat) in cats.iter().enumerate() {
        for (ti, &t) in truncs.iter().enumerate() {
            let a = &acc[ci][ti];
            let frames = a.actual.frames.max(1) as f64;
            cases.push(Case {
                category: cat.clone(),
                truncation: label(h, t),
                single_matrix: t.cell.is_some()
                    && matches!(t.matrices, crate::truncation::Matrices::Only(_)),
                all_cells: t.cell.is_none(),
                state_actual: a.actual.state_rms(t.cell.unwrap_or(0)),
                state_predicted: a.state_pred.iter().map(|s| (s / frames).sqrt()).collect(),
                out_actual: a.actual.out_rms(),
                // The readout sensitivity already maps to a per-band RMS.
                out_predicted: a.out_pred.iter().map(|s| (s / frames).sqrt()).collect(),
                input_coherence: a.coherence / a.count.max(1) as f64,
            });
        }
    }
    Ok(cases)
}

/// Fraction of `cases` whose prediction by `variant` is within [`WITHIN`]
/// of the measured error (state error when `state`, else output error).
pub fn fraction(cases: &[&Case], variant: usize, state: bool) -> f64 {
    let ok = cases
        .iter()
        .filter(|c| {
            if state {
                within(c.state_predicted[variant], c.state_actual)
            } else {
                within(c.out_predicted[variant], c.out_actual)
            }
        })
        .count();
    ok as f64 / cases.len().max(1) as f64
}

/// Prediction/actual of the controller's variant for every case with a
/// measured error: state errors when `state`, else output errors.
fn prediction_ratios(cases: &[&Case], state: bool) -> Vec<f64> {
    cases
        .iter()
        .map(|c| {
            if state {
                (c.state_predicted[0], c.state_actual)
            } else {
                (c.out_predicted[0], c.out_actual)
            }
        })
        .filter(|&(_, actual)| actual > 0.0)
        .map(|(pred, actual)| pred / actual)
        .collect()
}

/// The upper median of `values` (sorted in place); NaN when empty.
fn median_of(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The most of `ratios` (prediction/actual) that one common factor can
/// bring into [`WITHIN`], and that factor (the smallest of the best).
/// The count only changes where a ratio crosses an end of the range, so
/// the factors putting some ratio exactly on an end are the only
/// candidates (nudged inside, away from rounding).
pub fn best_single_scale(ratios: &[f64]) -> (usize, f64) {
    let count = |f: f64| {
        ratios
            .iter()
            .filter(|&&r| r > 0.0 && within(f * r, 1.0))
            .count()
    };
    ratios
        .iter()
        .filter(|&&r| r > 0.0 && r.is_finite())
        .flat_map(|&r| [WITHIN.0 / r * (1.0 + 1e-9), WITHIN.1 / r * (1.0 - 1e-9)])
        .map(|f| (count(f), f))
        .fold((0, 1.0), |best, c| {
            if c.0 > best.0 || (c.0 == best.0 && c.0 > 0 && c.1 < best.1) {
                c
            } else {
                best
            }
        })
}

/// The report: the per-case table, fractions by variant, by input type and
/// by truncation kind, and the error against input coherence.
pub fn report(title: &str, command: &str, cases: &[Case]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {title}\n\n`{command}`\n");
    let _ = writeln!(
        md,
        "Prediction/actual must fall in [{}, {}]. State: RMS state error of the truncated cell \
         (cell 0 for `all`); output: RMS band-gain error per band, predicted through the \
         model's calibrated readout sensitivity (scaled by the output slope of the sequence's \
         full-rank gains, as the controller scales it), matrices combined in quadrature.\n",
        WITHIN.0, WITHIN.1
    );
    // Fractions by variant.
    let state_cases: Vec<&Case> = cases.iter().filter(|c| !c.all_cells).collect();
    let all: Vec<&Case> = cases.iter().collect();
    let singles: Vec<&Case> = state_cases
        .iter()
        .copied()
        .filter(|c| c.single_matrix)
        .collect();
    let joints: Vec<&Case> = state_cases
        .iter()
        .copied()
        .filter(|c| !c.single_matrix)
        .collect();
    let _ = writeln!(md, "## Fraction within range, by model variant\n");
    let _ = writeln!(
        md,
        "| variant | state, all cases ({}) | state, single-matrix ({}) | state, joint ({}) | output, all cases ({}) |",
        state_cases.len(),
        singles.len(),
        joints.len(),
        all.len()
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    for (k, v) in Variant::ALL.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {} | {:.0} % | {:.0} % | {:.0} % | {:.0} % |",
            v.name(),
            100.0 * fraction(&state_cases, k, true),
            100.0 * fraction(&singles, k, true),
            100.0 * fraction(&joints, k, true),
            100.0 * fraction(&all, k, false),
        );
    }
    // By input type, controller variant.
    let _ = writeln!(
        md,
        "\n## By input type (variant `product`, the controller's)\n"
    );
    let _ = writeln!(
        md,
        "| input | input coherence | state within | output within | median pred/actual (state) | median pred/actual (output) | output within at this input's best scale | actual state error, joint r8 cell 0 | actual output error, all r8 |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    let mut best_within = 0usize;
    let mut cats: Vec<&str> = cases.iter().map(|c| c.category.as_str()).collect();
    cats.dedup();
    for cat in &cats {
        let st: Vec<&Case> = state_cases
            .iter()
            .copied()
            .filter(|c| c.category == *cat)
            .collect();
        let al: Vec<&Case> = all.iter().copied().filter(|c| c.category == *cat).collect();
        let median = median_of(&mut prediction_ratios(&st, true));
        let mut out_ratios = prediction_ratios(&al, false);
        let out_median = median_of(&mut out_ratios);
        let (best, scale) = best_single_scale(&out_ratios);
        best_within += best;
        let pick = |name: &str, f: fn(&Case) -> f64| {
            al.iter()
                .find(|c| c.truncation == name)
                .map_or(f64::NAN, |c| f(c))
        };
        let _ = writeln!(
            md,
            "| {cat} | {:.3} | {:.0} % | {:.0} % | {:.2} | {:.2} | {:.0} % (× {scale:.2}) | {:.4} | {:.4} |",
            al.first().map_or(0.0, |c| c.input_coherence),
            100.0 * fraction(&st, 0, true),
            100.0 * fraction(&al, 0, false),
            median,
            out_median,
            100.0 * best as f64 / al.len().max(1) as f64,
            pick("cell 0 joint r8", |c| c.state_actual),
            pick("all r8", |c| c.out_actual),
        );
    }
    let _ = writeln!(
        md,
        "\nWith the best single scale for each input type (chosen knowing the \
         measured errors), {:.0} % of the output cases would be within range: the \
         most any readout can reach whose sensitivity per matrix and rank changes \
         between input types by one factor, as the output-slope scale does.",
        100.0 * best_within as f64 / all.len().max(1) as f64
    );
    // Every case.
    let _ = writeln!(md, "\n## Every case\n");
    let mut head = String::from("| input | truncation | state actual |");
    let mut rule = String::from("|---|---|---|");
    for v in Variant::ALL {
        let _ = write!(head, " {} |", v.name());
        rule.push_str("---|");
    }
    head.push_str(" output actual | output predicted (product) |");
    rule.push_str("---|---|");
    let _ = writeln!(
        md,
        "State columns per variant are prediction/actual.\n\n{head}\n{rule}"
    );
    for c in cases {
        let mut row = format!(
            "| {} | {} | {:.4} |",
            c.category, c.truncation, c.state_actual
        );
        for p in &c.state_predicted {
            let r = p / c.state_actual;
            let mark = if within(*p, c.state_actual) {
                ""
            } else {
                " ✗"
            };
            let _ = write!(row, " {r:.2}{mark} |");
        }
        let _ = write!(
            row,
            " {:.4} | {:.4} ({:.2}) |",
            c.out_actual,
            c.out_predicted[0],
            c.out_predicted[0] / c.out_actual
        );
        let _ = writeln!(md, "{row}");
    }
    md
}

/// Runs the validation.
pub fn run(args: &ValidateArgs, command_line: &str) -> Result<(), LabError> {
    let (model, origin) = load_model(args.model.as_deref())?;
    let mut h = Harness::new(model.clone(), &origin, &args.ranks)?;
    let readout =
        Readout::from_metadata(model.extra.get(METADATA_KEY).map(String::as_str), h.cells())
            .ok_or_else(|| LabError::NoCalibration {
                origin: origin.clone(),
                key: METADATA_KEY,
            })?;
    eprintln!(
        "hush-lab validate-model: {} sequences per input type, {} input types",
        args.items,
        CATEGORIES.len()
    );
    let split = if args.training_split {
        Split::Train
    } else {
        Split::Validation
    };
    let seqs = sequences(
        &args.speech,
        &args.noise,
        split,
        &CATEGORIES,
        &model,
        &origin,
        args.items,
        args.seconds,
        args.seed,
    )?;
    let cases = run_cases(&mut h, &seqs, &readout, true)?;
    let md = report(
        "Perturbation model against measured truncation error",
        command_line,
        &cases,
    );
    std::fs::create_dir_all(&args.out).map_err(LabError::write(&args.out))?;
    let json_path = args.out.join("validate.json");
    let json = serde_json::to_string_pretty(&cases).map_err(LabError::json(&json_path))?;
    std::fs::write(&json_path, json).map_err(LabError::write(&json_path))?;
    let md_path = args.out.join("validate.md");
    std::fs::write(&md_path, &md).map_err(LabError::write(&md_path))?;
    // The summary (everything before the per-case table) on stdout.
    let summary = md.split("\n## Every case").next().unwrap_or(&md);
    println!("{summary}");
    println!("(every case: {})", args.out.join("validate.md").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The best factor found equals a brute-force scan over a fine grid,
    /// and it never does worse than no factor at all.
    #[test]
    fn best_single_scale_matches_a_grid_search() {
        let mut rng = Rng::new(5);
        for case in 0..200 {
            let n = 1 + case % 12;
            let ratios: Vec<f64> = (0..n).map(|_| (4.0 * rng.uniform() - 2.0).exp()).collect();
            let (best, f) = best_single_scale(&ratios);
            let count = |f: f64| ratios.iter().filter(|&&r| within(f * r, 1.0)).count();
            assert_eq!(count(f), best, "{ratios:?}");
            assert!(best >= count(1.0));
            let grid = (0..=20_000)
                .map(|i| count((-4.0 + 8.0 * i as f64 / 20_000.0).exp()))
                .max()
                .unwrap();
            assert_eq!(best, grid, "{ratios:?}");
        }
        assert_eq!(best_single_scale(&[1.0, 2.0, 4.0]).0, 2);
        assert_eq!(best_single_scale(&[]), (0, 1.0));
    }
}
