//! The live processing loop without devices: the rings are driven by the
//! test. Proves that an iteration allocates nothing (counting allocator),
//! that the latency bound drops input and that an underrun re-primes the
//! playback ring, all counted; checks the shipped Raspberry Pi config.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hush_tests::alloc::{CountingAllocator, count_allocations};
use hush_tests::fixtures::{voiced, white_noise};
use hush_tests::processor;
use hushd::audio::live::io::IoShared;
use hushd::audio::live::proc::{Core, CoreParts, CoreSetup};
use hushd::config::EstimatorChoice;
use hushd::control::{ControlParams, FaultHooks};
use hushd::telemetry::{Telemetry, snapshot_channel};
use ringbuf::HeapRb;
use ringbuf::traits::{Consumer, Observer, Producer, Split};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const RATE: u32 = 48_000;
const PERIOD: usize = 960;

struct Rig {
    core: Core,
    cap: ringbuf::HeapProd<f32>,
    play: ringbuf::HeapCons<f32>,
    rec: ringbuf::HeapCons<f32>,
    io: Arc<IoShared>,
    params: Arc<ControlParams>,
    reader: hushd::telemetry::SnapshotReader<Telemetry>,
}

fn rig(choice: EstimatorChoice) -> Rig {
    let (cap, in_cons) = HeapRb::<f32>::new(RATE as usize / 4).split();
    let (out_prod, play) = HeapRb::<f32>::new(RATE as usize / 4).split();
    let (rec_prod, rec) = HeapRb::<f32>::new(RATE as usize * 2).split();
    let (writer, reader) = snapshot_channel(&Telemetry::default());
    let io = Arc::new(IoShared::default());
    let params = Arc::new(ControlParams::new(30.0, false));
    let core = Core::new(
        CoreParts {
            procs: vec![processor(RATE, choice, 30.0, false)],
            telemetry: writer,
            record: Some(rec_prod),
        },
        CoreSetup {
            rate: RATE,
            channels: 1,
            buffer_frames: PERIOD,
            poll_ms: 2.0,
            latency_slack_ms: 40.0,
        },
        in_cons,
        Some(out_prod),
        io.clone(),
        params.clone(),
        Arc::new(FaultHooks::default()),
    );
    Rig {
        core,
        cap,
        play,
        rec,
        io,
        params,
        reader,
    }
}

fn signal(n: usize) -> Vec<f32> {
    voiced(n, RATE, 7000.0, 3)
        .iter()
        .zip(white_noise(n, 0.05, 4))
        .map(|(a, b)| a + b)
        .collect()
}

impl Rig {
    /// One device period in and out, like the callbacks would do.
    fn period(&mut self, x: &[f32], out: &mut [f32]) {
        self.cap.push_slice(x);
        self.core.step();
        let got = self.play.pop_slice(out);
        out[got..].fill(0.0);
        let _ = self.rec.pop_slice(out);
    }
}

#[test]
fn an_iteration_allocates_nothing() {
    for choice in [EstimatorChoice::Network, EstimatorChoice::Classical] {
        let mut r = rig(choice);
        let x = signal(RATE as usize * 2);
        let mut out = vec![0.0f32; PERIOD];
        // Warm up past a telemetry window (1 s of wall time), reading the
        // snapshot so that all three slots have been cycled.
        let t0 = Instant::now();
        let mut i = 0;
        while t0.elapsed() < Duration::from_millis(1300) {
            let k = (i * PERIOD) % (x.len() - PERIOD);
            r.period(&x[k..k + PERIOD], &mut out);
            let _ = r.reader.latest();
            std::thread::sleep(Duration::from_millis(5));
            i += 1;
        }
        let t1 = Instant::now();
        let mut reads = Vec::with_capacity(64);
        let (_, allocs) = count_allocations(|| {
            let mut i = 0;
            while t1.elapsed() < Duration::from_millis(1300) {
                let k = (i * PERIOD) % (x.len() - PERIOD);
                r.cap.push_slice(&x[k..k + PERIOD]);
                if i == 10 {
                    r.params.set_attenuation_limit_db(12.0);
                    r.params.set_bypass(true);
                }
                if i == 20 {
                    r.params.set_bypass(false);
                    // An underrun reported by the playback callback.
                    r.io.out_underrun_events.fetch_add(1, Ordering::Relaxed);
                    let _ = r.play.skip(r.play.occupied_len());
                }
                if i == 30 {
                    // A backlog beyond the latency bound.
                    for _ in 0..6 {
                        r.cap.push_slice(&x[..PERIOD]);
                    }
                }
                r.core.step();
                let got = r.play.pop_slice(&mut out);
                let _ = got;
                let _ = r.rec.pop_slice(&mut out);
                std::thread::sleep(Duration::from_millis(2));
                i += 1;
            }
        });
        reads.push(r.reader.latest());
        assert_eq!(
            allocs, 0,
            "{choice:?}: {allocs} allocations in the processing loop"
        );
        let t = reads.pop().unwrap();
        assert!(t.io.frames_processed > 0);
        assert!(t.cpu.frame_ns_max > 0, "{:?}", t.cpu);
        assert_eq!(t.channels[0].attenuation_limit_db, 12.0);
        assert!(t.io.resyncs >= 2, "{:?}", t.io);
        assert!(
            t.io.inserted_frames > 0,
            "re-priming not counted: {:?}",
            t.io
        );
        assert!(
            t.io.dropped_frames > 0,
            "backlog drop not counted: {:?}",
            t.io
        );
    }
}

#[test]
fn latency_is_bounded_and_output_is_the_stream_output() {
    let mut r = rig(EstimatorChoice::Classical);
    let x = signal(RATE as usize);
    let target = r.core.target_out_frames();
    let bound = r.core.bound_frames();
    assert!(
        target >= PERIOD && bound > target + PERIOD,
        "{target} {bound}"
    );
    // Output equals what a StreamProcessor produces for the same input,
    // after the playback prefill.
    let mut reference = processor(RATE, EstimatorChoice::Classical, 30.0, false);
    let mut want = vec![0.0f32; x.len()];
    reference.process(&x, &mut want);
    let mut got = Vec::new();
    let mut out = vec![0.0f32; PERIOD];
    for k in (0..x.len()).step_by(PERIOD) {
        r.cap.push_slice(&x[k..k + PERIOD]);
        r.core.step();
        let n = r.play.pop_slice(&mut out);
        got.extend_from_slice(&out[..n]);
        let _ = r.rec.pop_slice(&mut out);
    }
    assert!(
        got[..target].iter().all(|&v| v == 0.0),
        "prefill is silence"
    );
    let body = &got[target..];
    assert_eq!(
        body,
        &want[..body.len()],
        "live loop output differs from the stream processor"
    );
    // A backlog of 0.2 s is cut back to the steady state, and counted.
    for _ in 0..10 {
        r.cap.push_slice(&x[..PERIOD]);
    }
    let before = r.io.resync_dropped_frames.load(Ordering::Relaxed);
    r.core.step();
    let dropped = r.io.resync_dropped_frames.load(Ordering::Relaxed) - before;
    assert!(dropped > 0);
    assert!(
        r.play.occupied_len() <= bound,
        "playback ring {} above the bound {bound}",
        r.play.occupied_len()
    );
}

#[test]
fn raspberry_pi_config_validates() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/raspberry-pi.toml");
    let cfg =
        hushd::config::Config::load(std::path::Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.live.buffer_ms >= 20.0, "conservative buffers on the Pi");
    let default = hushd::config::Config::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/default.toml"
    )))
    .unwrap();
    assert_eq!(default, hushd::config::Config::default());
}
