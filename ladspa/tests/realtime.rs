//! `run` allocates nothing: the plugin's audio path under a counting
//! allocator, through the same descriptor table a host uses, with control
//! changes, odd block sizes and in-place buffers.

use std::ffi::c_ulong;

use hush_tests::alloc::{CountingAllocator, count_allocations};
use hush_tests::fixtures::{sum, voiced, white_noise};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn run_allocates_nothing_for_either_plugin_type() {
    for (index, rate, channels) in [(0, 16_000u32, 1usize), (1, 48_000, 2)] {
        let desc = hush_ladspa::ladspa_descriptor(index);
        // SAFETY: the descriptor is the plugin's own static table; every
        // pointer connected below outlives the instance.
        unsafe {
            let d = &*desc;
            let h = (d.instantiate.unwrap())(desc, rate as c_ulong);
            assert!(!h.is_null());
            let n = rate as usize;
            let x = sum(&voiced(n, rate, 7000.0, 3), &white_noise(n, 0.05, 4));
            let mut bufs = vec![x; channels];
            let mut ctl = [30.0f32, 0.0, 0.05, 0.0];
            let mut latency = 0.0f32;
            for (k, v) in ctl.iter_mut().enumerate() {
                (d.connect_port.unwrap())(h, (2 * channels + k) as c_ulong, v);
            }
            (d.connect_port.unwrap())(h, (2 * channels + 4) as c_ulong, &mut latency);
            (d.activate.unwrap())(h);
            let run = |pos: usize, len: usize, bufs: &mut [Vec<f32>]| {
                for (c, b) in bufs.iter_mut().enumerate() {
                    let p = b[pos..].as_mut_ptr();
                    (d.connect_port.unwrap())(h, c as c_ulong, p);
                    (d.connect_port.unwrap())(h, (channels + c) as c_ulong, p);
                }
                (d.run.unwrap())(h, len as c_ulong);
            };
            run(0, 4800, &mut bufs); // warm up
            let ctl_ptr = ctl.as_mut_ptr();
            let (_, allocs) = count_allocations(|| {
                let mut pos = 4800;
                for (i, len) in [1usize, 64, 441, 480, 2048, 7].iter().cycle().enumerate() {
                    if pos + len > n {
                        break;
                    }
                    // Control changes from the host between runs.
                    match i % 40 {
                        10 => *ctl_ptr = 12.0,
                        20 => *ctl_ptr.add(3) = 3.0,
                        30 => *ctl_ptr.add(1) = 1.0,
                        39 => {
                            *ctl_ptr = 30.0;
                            *ctl_ptr.add(1) = 0.0;
                            *ctl_ptr.add(2) = 0.05;
                            *ctl_ptr.add(3) = 0.0;
                        }
                        _ => {}
                    }
                    run(pos, *len, &mut bufs);
                    pos += len;
                }
            });
            assert_eq!(allocs, 0, "plugin {index}: {allocs} allocations in run");
            assert_eq!(latency as u32, rate / 50);
            (d.cleanup.unwrap())(h);
        }
    }
}
