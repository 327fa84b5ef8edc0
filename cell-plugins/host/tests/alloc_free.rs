//! Allocation trap: `step`, rank switching, `macs`, `probe`, `jacobian` and
//! `reset` of every built-in cell, through the host wrapper and the ABI
//! thunks, allocate nothing. A counting global allocator counts allocations
//! made on the current thread inside a marked region.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell as StdCell;

use common::*;
use hush_cell_host::{CellOptions, ProbeBuffers, Registry};
use hush_cell_sdk::RecurrentCell;

struct Counting;

thread_local! {
    static ARMED: StdCell<bool> = const { StdCell::new(false) };
    static COUNT: StdCell<u64> = const { StdCell::new(0) };
}

fn note() {
    // `try_with`: the allocator may run during thread teardown.
    let _ = ARMED.try_with(|a| {
        if a.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: forwards every call to `System` unchanged; the bookkeeping uses
// const-initialised thread-locals without destructors, which never
// allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    COUNT.with(|c| c.get())
}

#[test]
fn the_trap_works() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 16]))) >= 1);
}

#[test]
fn audio_thread_calls_do_not_allocate() {
    let mut reg = Registry::new();
    for e in [
        &hush_cell_mgru::ENTRY,
        &hush_cell_gru::ENTRY,
        &hush_cell_elman::ENTRY,
    ] {
        reg.add_builtin(e).unwrap();
    }
    let n = 64;
    for (id, desc, m) in [
        ("hush.mgru", hush_cell_mgru::Mgru::DESCRIPTOR, 16),
        ("hush.mgru-svd", hush_cell_mgru::MgruSvd::DESCRIPTOR, n),
        ("hush.gru", hush_cell_gru::Gru::DESCRIPTOR, 16),
        ("hush.elman", hush_cell_elman::Elman::DESCRIPTOR, 16),
    ] {
        let owned = weights(&desc, m, n, 1);
        let mut shapes = Vec::new();
        let t = as_tensors(&owned, &mut shapes);
        let mut cell = reg
            .create(id, sizes(m, n), &t, CellOptions::default())
            .unwrap();
        let k = cell.matrices().len();
        let mut probe = ProbeBuffers::new(&cell);
        let mut jac = vec![0.0f32; n * n];
        let mut h = vec![0.0f32; n];
        let mut out = vec![0.0f32; n];
        let x: Vec<f32> = (0..m).map(|i| (i as f32 * 0.37).sin()).collect();
        let ranks = vec![8u32; k];
        let count = allocations(|| {
            for t in 0..200 {
                if t % 50 == 10 {
                    let mut lr = cell.low_rank().unwrap();
                    for i in 0..k {
                        lr.set_rank(i, [n, 16, 8, 4][(t / 50) % 4]).unwrap();
                    }
                    let _ = lr.macs().unwrap();
                    let _ = lr.macs_for_ranks(&ranks).unwrap();
                }
                cell.step(&x, &h, &mut out).unwrap();
                if t % 37 == 0 {
                    let mut lr = cell.low_rank().unwrap();
                    lr.probe(&mut probe).unwrap();
                    lr.jacobian(&mut jac).unwrap();
                }
                std::mem::swap(&mut h, &mut out);
            }
            cell.reset().unwrap();
        });
        assert_eq!(count, 0, "{id}: {count} allocations on the audio path");
    }
}
