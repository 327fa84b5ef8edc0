//! The embedded default model really denoises: on a generated noisy fixture
//! (a harmonic, speech-like signal with pauses under white noise at 5 dB
//! SNR) it improves SI-SDR by a margin, with rank adaptation on (the default).

use hush_engine::settings::EstimatorChoice;
use hush_tests::fixtures::{si_sdr_db, sum, voiced, white_noise_at_snr};
use hush_tests::{processor, run_aligned};

fn fixture(rate: u32, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let n = 8 * rate as usize;
    let clean = voiced(n, rate, 7000.0, seed);
    let noisy = sum(&clean, &white_noise_at_snr(&clean, 5.0, seed + 7));
    (clean, noisy)
}

#[test]
fn default_model_improves_si_sdr() {
    let (clean, noisy) = fixture(16_000, 3);
    let mut p = processor(16_000, EstimatorChoice::Network, 30.0, false);
    assert_eq!(p.engine().estimator_name(), "network");
    let out = run_aligned(&mut p, &noisy, 160);
    let skip = 16_000; // the first second: running normalisation settles
    let before = si_sdr_db(&clean[skip..], &noisy[skip..]);
    let after = si_sdr_db(&clean[skip..], &out[skip..]);
    eprintln!("default model: SI-SDR {before:.2} → {after:.2} dB");
    // Measured 4.9 → 12.0 dB (+7.1) with the shipped model; require +4 dB.
    assert!(after > before + 4.0, "SI-SDR {before:.2} → {after:.2} dB");
}
