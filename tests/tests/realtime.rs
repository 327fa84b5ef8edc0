//! Allocation trapping: the per-frame path allocates nothing once constructed.

use hush_engine::ModelChoice;
use hush_engine::settings::EstimatorChoice;
use hush_engine::settings::Settings;
use hush_tests::alloc::{CountingAllocator, count_allocations};
use hush_tests::fixtures::{sum, voiced, white_noise};
use hush_tests::{model_with_periodicity_inputs, processor};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn the_allocator_really_counts() {
    let (_, n) = count_allocations(|| std::hint::black_box(vec![1u8; 10]));
    assert!(n >= 1, "counting allocator did not see a Vec allocation");
}

/// The period search (a model whose features use it) allocates nothing.
#[test]
fn periodicity_features_allocate_nothing_per_frame() {
    let model = model_with_periodicity_inputs();
    let mut with_filter = Settings::default();
    with_filter.engine.pitch_filter = true;
    for (rate, settings) in [
        (16_000u32, &Settings::default()),
        (44_100, &Settings::default()),
        (48_000, &Settings::default()),
        (16_000, &with_filter),
        (48_000, &with_filter),
    ] {
        let mut p = hush_tests::processor_with_model(
            settings,
            ModelChoice::Bytes {
                bytes: model.clone(),
                origin: "pitch".into(),
            },
            rate,
        );
        let n = rate as usize / 2;
        let x = sum(&voiced(n, rate, 7000.0, 3), &white_noise(n, 0.05, 4));
        let mut y = vec![0.0; n];
        p.process(&x[..2400], &mut y[..2400]);
        let (_, allocs) = count_allocations(|| {
            for (i, o) in x[2400..].chunks(441).zip(y[2400..].chunks_mut(441)) {
                p.process(i, o);
            }
            p.engine_mut().reset();
            p.process(&x[..480], &mut y[..480]);
        });
        assert_eq!(
            allocs, 0,
            "{rate} Hz: {allocs} allocations with the period search"
        );
    }
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
            let x = sum(&voiced(n, rate, 7000.0, 1), &white_noise(n, 0.05, 2));
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
                // A stream restart forgets the estimator's state in place.
                p.engine_mut().reset();
                p.process(&x[..480], &mut y[..480]);
            });
            assert_eq!(
                allocs, 0,
                "{rate} Hz {choice:?}: {allocs} allocations on the processing path"
            );
        }
    }
}

#[test]
fn rank_adaptation_allocates_nothing_while_probing_deciding_and_switching() {
    use hush_engine::settings::AdaptMode;
    let mut cfg = hush_engine::settings::Settings::default();
    cfg.adapt.probe_every_s = 2.0;
    let mut p = hush_tests::processor_with(&cfg, 16_000);
    // 14 s: probes (first at 1 s, then every 2 s), decisions, the control
    // changes at chunks 300/330 (9 s, 9.9 s) and the long frames at 400.
    let n = 16_000 * 14;
    let x = sum(&voiced(n, 16_000, 7000.0, 4), &white_noise(n, 0.05, 5));
    let mut y = vec![0.0; n];
    p.set_deadline_guard(true);
    p.process(&x[..1600], &mut y[..1600]);
    let (last, allocs) = count_allocations(|| {
        let mut t = None;
        for (k, (i, o)) in x[1600..]
            .chunks(480)
            .zip(y[1600..].chunks_mut(480))
            .enumerate()
        {
            // Mode and budget changes from the control path, and a burst of
            // long frames for the deadline guard, while probes run.
            match k {
                300 => p.engine_mut().estimator_mut().set_adapt_params(
                    AdaptMode::Full,
                    0.03,
                    f64::INFINITY,
                ),
                330 => p.engine_mut().estimator_mut().set_adapt_params(
                    AdaptMode::ErrorBudget,
                    0.01,
                    f64::INFINITY,
                ),
                400 => p.set_frame_pad_ns(9_000_000),
                403 => p.set_frame_pad_ns(0),
                _ => {}
            }
            p.process_with(i, o, &mut |e, _| t = e.adapt_telemetry());
        }
        t
    });
    let last = last.expect("network adapts");
    assert_eq!(allocs, 0, "{allocs} allocations with adaptation running");
    // The window really covered probes, decisions and the guard.
    assert!(last.overhead_macs > 0, "no probe ran");
    assert!(
        last.rank_changes >= 2,
        "ranks changed {} times",
        last.rank_changes
    );
    assert!(last.deadline_events >= 1, "the deadline guard never fired");
}
