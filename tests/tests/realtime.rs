//! Allocation trapping: the per-frame path allocates nothing once constructed.

use hush_tests::alloc::{CountingAllocator, count_allocations};
use hush_tests::fixtures::{voiced, white_noise};
use hush_tests::processor;
use hushd::config::EstimatorChoice;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn the_allocator_really_counts() {
    let (_, n) = count_allocations(|| std::hint::black_box(vec![1u8; 10]));
    assert!(n >= 1, "counting allocator did not see a Vec allocation");
}

#[test]
fn stream_processing_allocates_nothing_per_frame() {
    for rate in [8_000u32, 16_000, 22_050, 44_100, 48_000] {
        for choice in [
            EstimatorChoice::Network,
            EstimatorChoice::Classical,
            EstimatorChoice::Bypass,
        ] {
            let mut p = processor(rate, choice, 30.0, false);
            let n = rate as usize;
            let x: Vec<f32> = voiced(n, rate, 7000.0, 1)
                .iter()
                .zip(white_noise(n, 0.05, 2))
                .map(|(a, b)| a + b)
                .collect();
            let mut y = vec![0.0; n];
            // Warm up (first frames), then count over many frames and odd block sizes.
            p.process(&x[..4800.min(n / 4)], &mut y[..4800.min(n / 4)]);
            let (_, allocs) = count_allocations(|| {
                let mut pos = 0;
                for (i, block) in [1usize, 7, 160, 441, 480, 1024, 3000]
                    .iter()
                    .cycle()
                    .enumerate()
                {
                    if pos + block > n || i > 200 {
                        break;
                    }
                    p.process(&x[pos..pos + block], &mut y[pos..pos + block]);
                    pos += block;
                }
                p.engine_mut().set_attenuation_limit_db(12.0);
                p.engine_mut().set_bypass(true);
                p.process(&x[..480], &mut y[..480]);
                p.engine_mut().set_bypass(false);
            });
            assert_eq!(
                allocs, 0,
                "{rate} Hz {choice:?}: {allocs} allocations on the processing path"
            );
        }
    }
}
