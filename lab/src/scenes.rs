//! `hush-lab scenes`: WAV files whose input regime switches, to show that the
//! chosen rank follows the input — steady fan-like noise alternating with
//! transient (clicking) noise, and speech alternating with silence. Built
//! from the validation split; run them through `hushd process --report` and
//! draw the trace with `hush-lab plot`.

use std::path::PathBuf;

use crate::augment::{normalise_rms, rms};
use crate::corpus::{Corpus, Split};
use crate::error::LabError;
use crate::eval::write_wav16;
use crate::mix::{MixConfig, make_example};
use crate::noise::{Procedural, procedural};
use crate::rng::Rng;

const RATE: u32 = 16_000;

/// Options of `hush-lab scenes`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScenesArgs {
    /// Speech directory (the validation speakers are used).
    #[arg(long, default_value = "../shared/corpus/speech")]
    pub speech: PathBuf,
    /// Noise directory.
    #[arg(long, default_value = "../shared/corpus/noise")]
    pub noise: PathBuf,
    /// Seconds per segment.
    #[arg(long, default_value_t = 10.0)]
    pub segment_s: f64,
    /// Segments per file (alternating, starting with the first kind).
    #[arg(long, default_value_t = 6)]
    pub segments: usize,
    /// Seed.
    #[arg(long, default_value_t = 5)]
    pub seed: u64,
    /// Output directory.
    #[arg(long, default_value = ".lab/scenes")]
    pub out: PathBuf,
}

fn at_dbfs(mut x: Vec<f32>, dbfs: f64) -> Vec<f32> {
    normalise_rms(&mut x);
    let g = 10f64.powf(dbfs / 20.0) as f32;
    x.iter_mut().for_each(|v| *v *= g);
    x
}

/// Writes `fan-vs-transient.wav` and `speech-vs-silence.wav`.
pub fn run(args: &ScenesArgs) -> Result<(), LabError> {
    let corpus = Corpus::load(&args.speech, &args.noise, Split::Validation, RATE)?;
    let len = (args.segment_s * RATE as f64) as usize;
    let mut rng = Rng::new(args.seed);
    let mut fan = Vec::new();
    let mut talk = Vec::new();
    let clean_cfg = MixConfig {
        snr_db: (60.0, 60.0),
        level_db: (-26.0, -26.0),
        reverb: 0.0,
        noise_only: 0.0,
        noise_kind: None,
        noise_free: 0.0,
        from_start: 1.0,
        formant_shift: 0.0,
    };
    for k in 0..args.segments {
        let even = k % 2 == 0;
        let kind = if even {
            Procedural::Fan
        } else {
            Procedural::Clicks
        };
        fan.extend(at_dbfs(
            procedural(&mut rng, kind, len, RATE as f64, &corpus.speech),
            -30.0,
        ));
        if even {
            let speech = make_example(&mut rng, &corpus, &clean_cfg, len, RATE as f64).clean;
            let level = rms(&speech).max(1e-9);
            talk.extend(speech.iter().map(|v| v / level * 0.05));
        } else {
            // Dither at −80 dBFS: an idle microphone.
            talk.extend((0..len).map(|_| 1e-4 * rng.normal() as f32));
        }
    }
    std::fs::create_dir_all(&args.out).map_err(LabError::write(&args.out))?;
    for (name, x) in [
        ("fan-vs-transient.wav", &fan),
        ("speech-vs-silence.wav", &talk),
    ] {
        let path = args.out.join(name);
        write_wav16(&path, x)?;
        println!(
            "wrote {} ({:.0} s)",
            path.display(),
            x.len() as f64 / RATE as f64
        );
    }
    Ok(())
}
