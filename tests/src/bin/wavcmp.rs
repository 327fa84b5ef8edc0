//! `wavcmp A.wav B.wav [MAX_ABS]`: compares two WAV files sample by sample
//! (same length and channel count required); prints the largest absolute
//! difference, the RMS difference and the signal-to-difference ratio; exits
//! 1 if the largest difference exceeds MAX_ABS (full scale = 1.0).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: wavcmp A.wav B.wav [MAX_ABS]");
        return std::process::ExitCode::from(2);
    }
    let read = |p: &str| -> Result<(Vec<f32>, hound::WavSpec), String> {
        if !std::path::Path::new(p).exists() {
            return Err(format!("{p}: no such file"));
        }
        Ok(hush_tests::fixtures::read_wav(std::path::Path::new(p)))
    };
    let ((a, sa), (b, sb)) = match (read(&args[1]), read(&args[2])) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("wavcmp: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if a.len() != b.len() || sa.channels != sb.channels || sa.sample_rate != sb.sample_rate {
        eprintln!(
            "wavcmp: shapes differ: {} vs {} samples, {}/{} ch, {}/{} Hz",
            a.len(),
            b.len(),
            sa.channels,
            sb.channels,
            sa.sample_rate,
            sb.sample_rate
        );
        return std::process::ExitCode::from(1);
    }
    let (mut max, mut se, mut ss) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(&b) {
        let d = (*x as f64 - *y as f64).abs();
        max = max.max(d);
        se += d * d;
        ss += (*x as f64).powi(2);
    }
    let n = a.len().max(1) as f64;
    let sdr = 10.0 * (ss / se.max(1e-30)).log10();
    println!(
        "samples {} max_abs_diff {max:.3e} rms_diff {:.3e} signal_to_diff {sdr:.1} dB",
        a.len(),
        (se / n).sqrt()
    );
    if let Some(tol) = args.get(3).and_then(|t| t.parse::<f64>().ok())
        && max > tol
    {
        eprintln!("wavcmp: max difference {max:.3e} exceeds {tol:.3e}");
        return std::process::ExitCode::from(1);
    }
    std::process::ExitCode::SUCCESS
}
