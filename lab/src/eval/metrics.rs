//! Quality metrics: SI-SDR (whole file and word onsets) here, PESQ-WB and
//! STOI through `lab/scripts/metrics.py`.

use std::path::{Path, PathBuf};

use crate::error::LabError;

const RATE: u32 = 16_000;

/// Scale-invariant SDR, dB.
pub fn si_sdr(reference: &[f32], estimate: &[f32]) -> f64 {
    let n = reference.len().min(estimate.len());
    let mr = reference[..n].iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let me = estimate[..n].iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let (mut dot, mut rr) = (0.0, 0.0);
    for i in 0..n {
        let (r, e) = (reference[i] as f64 - mr, estimate[i] as f64 - me);
        dot += r * e;
        rr += r * r;
    }
    let a = dot / rr.max(1e-20);
    let (mut t, mut d) = (0.0, 0.0);
    for i in 0..n {
        let (r, e) = (reference[i] as f64 - mr, estimate[i] as f64 - me);
        t += (a * r).powi(2);
        d += (e - a * r).powi(2);
    }
    10.0 * (t.max(1e-20) / d.max(1e-20)).log10()
}

/// SI-SDR over the first `window` samples after each onset (the onsets'
/// excerpts concatenated): whether word beginnings survive. `None` without
/// onsets.
pub fn onset_si_sdr(
    reference: &[f32],
    estimate: &[f32],
    onsets: &[usize],
    window: usize,
) -> Option<f64> {
    let (mut r, mut e) = (Vec::new(), Vec::new());
    for &o in onsets {
        let end = (o + window).min(reference.len()).min(estimate.len());
        if end > o {
            r.extend_from_slice(&reference[o..end]);
            e.extend_from_slice(&estimate[o..end]);
        }
    }
    (!r.is_empty()).then(|| si_sdr(&r, &e))
}

/// Writes `x` as a 16 kHz mono 16-bit WAV.
pub fn write_wav16(path: &Path, x: &[f32]) -> Result<(), LabError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(LabError::wav(path))?;
    for &v in x {
        w.write_sample((v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .map_err(LabError::wav(path))?;
    }
    w.finalize().map_err(LabError::wav(path))
}

/// PESQ-WB and STOI of one pair (None where the metric failed).
pub type PairMetrics = (Option<f64>, Option<f64>);

/// PESQ-WB and STOI of every (reference, degraded) pair, by `metrics.py`.
pub fn python_metrics(pairs: &[(PathBuf, PathBuf)]) -> Result<Vec<PairMetrics>, LabError> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/metrics.py");
    let job = serde_json::json!({
        "rate": RATE,
        "pairs": pairs.iter().map(|(r, d)| serde_json::json!({"ref": r, "deg": d})).collect::<Vec<_>>(),
    });
    let mut child = std::process::Command::new("python3")
        .arg(&script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(LabError::tool_io("python3"))?;
    let tool = script.display().to_string();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(job.to_string().as_bytes())
            .map_err(LabError::tool_io(&tool))?;
    }
    let out = child.wait_with_output().map_err(LabError::tool_io(&tool))?;
    if !out.status.success() {
        return Err(LabError::Tool {
            tool,
            message: "failed (pip install pesq pystoi numpy scipy)".into(),
        });
    }
    let v: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).map_err(LabError::json(&script))?;
    if v.len() != pairs.len() {
        return Err(LabError::Tool {
            tool,
            message: format!("{} results for {} pairs", v.len(), pairs.len()),
        });
    }
    Ok(v.iter()
        .map(|o| (o["pesq"].as_f64(), o["stoi"].as_f64()))
        .collect())
}

/// Mean of `v` (`None` when empty).
pub fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Median of `v` (`None` when empty; the mean of the middle two for even lengths).
pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_sdr_is_scale_invariant_and_falls_with_noise() {
        let r: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.1).sin()).collect();
        let scaled: Vec<f32> = r.iter().map(|v| 0.3 * v).collect();
        assert!(si_sdr(&r, &scaled) > 100.0);
        let noisy: Vec<f32> = r
            .iter()
            .enumerate()
            .map(|(i, v)| v + 0.1 * ((i * 7919 % 13) as f32 / 6.0 - 1.0))
            .collect();
        let s = si_sdr(&r, &noisy);
        assert!((10.0..40.0).contains(&s), "{s}");
        let onset = onset_si_sdr(&r, &noisy, &[0, 500], 100).unwrap();
        assert!(onset.is_finite());
        assert_eq!(onset_si_sdr(&r, &noisy, &[], 100), None);
    }

    #[test]
    fn mean_and_median() {
        assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(median(&[6.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
