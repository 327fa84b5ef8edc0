//! Analysis/synthesis windows.

use std::f64::consts::PI;

/// The Vorbis power-complementary window of length `len` (even).
///
/// With a hop of `len / 2`, `w[n]² + w[n + len/2]² = 1` for every `n`, so using
/// the same window for analysis and synthesis reconstructs the input exactly
/// (the property RNNoise relies on too). Values are in `[0, 1]`.
///
/// Allocates; call at construction only (any thread).
pub fn vorbis(len: usize) -> Vec<f32> {
    assert!(
        len >= 2 && len.is_multiple_of(2),
        "window length must be even, got {len}"
    );
    (0..len)
        .map(|n| {
            let s = (PI * (n as f64 + 0.5) / len as f64).sin();
            (0.5 * PI * s * s).sin() as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_complementary_at_half_overlap() {
        for len in [2usize, 8, 320, 440, 882, 960] {
            let w = vorbis(len);
            let h = len / 2;
            for n in 0..h {
                let s = w[n] as f64 * w[n] as f64 + w[n + h] as f64 * w[n + h] as f64;
                assert!((s - 1.0).abs() < 1e-6, "len {len} n {n}: {s}");
            }
        }
    }

    #[test]
    fn symmetric_and_bounded() {
        let w = vorbis(320);
        for n in 0..320 {
            assert!((0.0..=1.0).contains(&w[n]));
            assert!((w[n] - w[319 - n]).abs() < 1e-6);
        }
    }
}
