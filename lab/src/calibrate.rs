//! `hush-lab calibrate MODEL`: measures the readout sensitivity — RMS
//! band-gain error per unit of RMS state error — of every cell, and of every
//! compressed matrix at every rank, by truncating the real network on
//! training-split sequences of every realistic input type, and stores it in
//! the model's metadata (`hush.readout_sensitivity`, see
//! [`hush_engine::adapt::readout`]), where the rank controller reads it.

use std::fmt::Write as _;
use std::path::PathBuf;

use hush_engine::adapt::readout::{METADATA_KEY, MatrixCurve, Readout, slope_factor};

use crate::corpus::Split;
use crate::error::LabError;
use crate::truncation::{Errors, Harness, Matrices, Truncation};
use crate::validate::{CATEGORIES, sequences};

/// Options of a calibration.
#[derive(Debug, Clone, clap::Args)]
pub struct CalibrateArgs {
    /// The model file to calibrate.
    pub model: PathBuf,
    /// Where to write the calibrated model (default: rewrite MODEL in place).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Speech directory (the training speakers are used).
    #[arg(long, default_value = "../shared/corpus/speech")]
    pub speech: PathBuf,
    /// Noise directory (the training noise files are used).
    #[arg(long, default_value = "../shared/corpus/noise")]
    pub noise: PathBuf,
    /// Sequences per input type.
    #[arg(long, default_value_t = 4)]
    pub items: usize,
    /// Seconds per sequence.
    #[arg(long, default_value_t = 6.0)]
    pub seconds: f64,
    /// Calibrated ranks (comma-separated, descending).
    #[arg(long, default_value = "48,32,24,16,12,8,6,4", value_delimiter = ',')]
    pub ranks: Vec<usize>,
    /// Seed of the sequences.
    #[arg(long, default_value_t = 23)]
    pub seed: u64,
    /// Before calibrating, switch every `hush.mgru` layer to this cell id
    /// (same tensors and equations), e.g. `hush.mgru-svd` to compress the
    /// input matrices too; the written model carries the new id.
    #[arg(long)]
    pub cell: Option<String>,
}

/// Gain error per unit state error of cell `c` from summed errors; `None`
/// when the truncation changed nothing (a rank at or above n/2 runs dense).
fn ratio(e: &Errors, c: usize) -> Option<f64> {
    let s = e.state_rms(c);
    (s > 0.0).then(|| e.out_rms() / s)
}

/// Replaces the id of every `hush.mgru` cell layer with `id` (an MGRU
/// variant with the same tensors).
fn switch_cells(model: &mut hush_engine::model::ModelFile, id: &str) {
    for layer in &mut model.layers {
        if let hush_engine::model::LayerSpec::Cell { cell, .. } = layer
            && cell.starts_with("hush.mgru")
        {
            *cell = id.to_string();
        }
    }
}

/// Runs the calibration.
pub fn run(args: &CalibrateArgs) -> Result<(), LabError> {
    let origin = args.model.display().to_string();
    let mut model = crate::engine_io::read_model(&args.model)?;
    if let Some(id) = &args.cell {
        switch_cells(&mut model, id);
    }
    let mut h = Harness::new(model.clone(), &origin, &args.ranks)?;
    // Realistic inputs only: the synthetic AR(1) inputs are for validation.
    let cats: Vec<&str> = CATEGORIES
        .iter()
        .copied()
        .filter(|c| !c.starts_with("AR(1)"))
        .collect();
    let seqs = sequences(
        &args.speech,
        &args.noise,
        Split::Train,
        &cats,
        &model,
        &origin,
        args.items,
        args.seconds,
        args.seed,
    )?;
    eprintln!(
        "hush-lab calibrate: {} training sequences, {} cells, ranks {:?}",
        seqs.len(),
        h.cells(),
        args.ranks
    );
    let references = seqs
        .iter()
        .map(|s| h.reference(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| cell | matrix | {} |",
        args.ranks
            .iter()
            .map(|r| format!("r{r}"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(table, "|---|---|{}", "---|".repeat(args.ranks.len()));
    // Truncation errors reach the gains through the sigmoid's slope g(1−g):
    // the sensitivity is stored at the mean slope of the calibration frames,
    // each sequence's state error weighted by its own slope factor, and the
    // controller rescales it by the running slope.
    let slopes: Vec<f64> = references
        .iter()
        .map(|r| r.output_slope_sq(h.bands))
        .collect();
    let slope_sq = slopes.iter().sum::<f64>() / slopes.len().max(1) as f64;
    let f2: Vec<f64> = slopes
        .iter()
        .map(|&s| slope_factor(s, Some(slope_sq)).powi(2))
        .collect();
    let mut cells = Vec::new();
    let mut matrices = Vec::new();
    for c in 0..h.cells() {
        let mut pooled = Errors::default();
        let mut curves = Vec::new();
        let names = h.matrix_names[c].clone();
        for (m, name) in names
            .iter()
            .enumerate()
            .map(|(m, n)| (Some(m), n.as_str()))
            .chain([(None, "joint")])
        {
            let (mut ranks, mut sens) = (Vec::new(), Vec::new());
            let mut cells_md = Vec::new();
            for &rank in &args.ranks {
                let trunc = Truncation {
                    cell: Some(c),
                    matrices: m.map_or(Matrices::Joint, Matrices::Only),
                    rank,
                };
                let mut net = h.truncated(trunc)?;
                let mut total = Errors::default();
                for ((seq, r), f2) in seqs.iter().zip(&references).zip(&f2) {
                    let mut e = h.measure(&mut net, seq, r)?;
                    e.state_sq.iter_mut().for_each(|s| *s *= f2);
                    total.add(&e);
                }
                if m.is_none() {
                    pooled.add(&total);
                }
                match ratio(&total, c) {
                    Some(s) => {
                        ranks.push(rank);
                        sens.push(s);
                        cells_md.push(format!("{s:.4}"));
                    }
                    None => cells_md.push("dense".into()),
                }
            }
            let _ = writeln!(table, "| {c} | {name} | {} |", cells_md.join(" | "));
            if m.is_some() && !ranks.is_empty() {
                curves.push(MatrixCurve {
                    name: name.to_string(),
                    ranks,
                    sensitivity: sens,
                });
            }
        }
        cells.push(ratio(&pooled, c).ok_or_else(|| LabError::NoTruncatingRank {
            origin: origin.clone(),
            cell: c,
        })?);
        // Every matrix needs a curve, or none does (the cell's pooled value).
        matrices.push(if curves.len() == h.matrix_names[c].len() {
            curves
        } else {
            Vec::new()
        });
    }
    let readout = Readout {
        version: 1,
        cells,
        matrices,
        slope_sq: Some(slope_sq),
    };
    println!(
        "Readout sensitivity (RMS gain error per band / slope-weighted RMS state error), training split:\n"
    );
    println!("{table}");
    println!("pooled per cell: {:?}", readout.cells);
    println!("output slope mean_b (g(1-g))^2 over the calibration frames: {slope_sq:.5}");
    model
        .extra
        .insert(METADATA_KEY.to_string(), readout.to_metadata());
    let out = args.out.clone().unwrap_or_else(|| args.model.clone());
    model.validate().map_err(|source| LabError::Model {
        origin: out.display().to_string(),
        source,
    })?;
    let tmp = out.with_extension("tmp");
    crate::engine_io::write_model(&model, &tmp)?;
    std::fs::rename(&tmp, &out).map_err(LabError::write(&out))?;
    println!("wrote {}", out.display());
    Ok(())
}
