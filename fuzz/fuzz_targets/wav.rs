//! The WAV reader of `hushd process`: any bytes either decode to samples
//! (integer formats: in [−1, 1] (32-bit full scale rounds to 1.0 in f32); float: as stored, NaN/Inf included — the
//! stream sanitises and counts those) or give a one-line error; never a
//! panic, a hang or an allocation the input size does not bound.
#![no_main]

use hushd::audio::wav::WavSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut src) = WavSource::new(data) else {
        return;
    };
    let f = src.format();
    assert!(f.channels >= 1 && (1_000..=768_000).contains(&f.sample_rate));
    let mut buf = vec![0.0f32; 4096];
    // The data can announce more than it holds: reading stops at the end of
    // the bytes (an error) long before the announced length.
    let mut total = 0usize;
    loop {
        match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !f.float {
                    assert!(buf[..n].iter().all(|v| (-1.0..=1.0).contains(v)));
                }
                total += n;
                assert!(total <= data.len() * 8, "more samples than bytes");
            }
        }
    }
});
