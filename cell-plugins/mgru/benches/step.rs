//! ns per MGRU `step` at n = 64, 128, 256 (m = 64) and ranks full (dense),
//! n/2 (dense by the rank rule, and factored explicitly), n/4, n/8; the
//! speedup of rank n/4 over full; the overhead of a call through the ABI
//! (the SDK's thunks, in process) over a direct Rust call.
//!
//! Run: `cargo bench -p hush-cell-mgru --bench step`. "best" and "median"
//! are the lowest and the median of 7 per-round means (total time of a
//! batch loop / steps; the lowest is the least disturbed by other load on a
//! shared machine); p99 and max come from timing each call individually
//! (includes ~20 ns of clock reads).

use std::hint::black_box;
use std::time::Instant;

use hush_cell_mgru::{ENTRY, Mgru};
use hush_cell_sdk::testing::{InProcess, Rng, random_tensors};
use hush_cell_sdk::{CellSizes, RecurrentCell, Weights};

#[derive(Clone, Copy)]
enum Rank {
    Full,
    /// Factored product even where dense is cheaper.
    Factored(usize),
    /// By the hush rule (2r ≥ n → dense).
    Rule(usize),
}

struct Stats {
    /// Lowest per-round mean (least disturbed by other load).
    best: f64,
    /// Median per-round mean.
    median: f64,
    p99: f64,
    max: f64,
}

const ROUNDS: usize = 7;

fn measure(mut step: impl FnMut(&[f32], &[f32], &mut [f32]), m: usize, n: usize) -> Stats {
    let mut rng = Rng::new(7);
    let xs: Vec<Vec<f32>> = (0..64).map(|_| rng.vec(m, 1.0)).collect();
    let mut h = vec![0.0f32; n];
    let mut out = vec![0.0f32; n];
    // Calibrate the iteration count to ~0.08 s per round.
    let t0 = Instant::now();
    for i in 0..200 {
        step(&xs[i % 64], &h, &mut out);
        std::mem::swap(&mut h, &mut out);
    }
    let per = t0.elapsed().as_secs_f64() / 200.0;
    let iters = ((0.08 / per) as usize).clamp(500, 1_000_000);
    let mut means = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t0 = Instant::now();
        for i in 0..iters {
            step(black_box(&xs[i % 64]), &h, &mut out);
            std::mem::swap(&mut h, &mut out);
        }
        means.push(t0.elapsed().as_secs_f64() / iters as f64 * 1e9);
    }
    means.sort_by(f64::total_cmp);
    let mut samples = Vec::with_capacity(iters * 2);
    for i in 0..iters * 2 {
        let t = Instant::now();
        step(black_box(&xs[i % 64]), &h, &mut out);
        samples.push(t.elapsed().as_nanos() as f64);
        std::mem::swap(&mut h, &mut out);
    }
    black_box(&h);
    samples.sort_by(f64::total_cmp);
    Stats {
        best: means[0],
        median: means[ROUNDS / 2],
        p99: samples[(samples.len() * 99) / 100],
        max: *samples.last().unwrap(),
    }
}

fn direct_cell(m: usize, n: usize, rank: Rank) -> Mgru {
    let sizes = CellSizes { input: m, state: n };
    let owned = random_tensors(&Mgru::DESCRIPTOR, sizes, 1, 1.0);
    let w = Weights::unchecked(
        owned
            .iter()
            .map(|t| (name_of(t), t.data.as_slice()))
            .collect(),
    );
    let mut cell = Mgru::new(sizes, &w).unwrap();
    cell.activate(n).unwrap();
    for mat in cell.matrices_mut() {
        match rank {
            Rank::Full => mat.set_rank(n).unwrap(),
            Rank::Factored(r) => mat.set_factored_rank(r).unwrap(),
            Rank::Rule(r) => mat.set_rank(r).unwrap(),
        }
    }
    cell
}

fn name_of(t: &hush_cell_sdk::testing::OwnedTensor) -> &'static std::ffi::CStr {
    Mgru::DESCRIPTOR
        .tensors
        .iter()
        .find(|s| s.name == t.name.as_c_str())
        .unwrap()
        .name
}

/// Throughput of the shared dense kernel (`matvec_add`, n×n) in MAC/ns.
fn kernel_throughput(n: usize) -> f64 {
    let mut rng = Rng::new(3);
    let mat = rng.vec(n * n, 0.1);
    let y = rng.vec(n, 1.0);
    let mut out = vec![0.0f32; n];
    let iters = (50_000_000 / (n * n)).max(10);
    let mut best = f64::INFINITY;
    for _ in 0..ROUNDS {
        let t0 = Instant::now();
        for _ in 0..iters {
            hush_cell_sdk::matvec_add(black_box(&mat), black_box(&y), &mut out);
        }
        best = best.min(t0.elapsed().as_secs_f64() * 1e9 / iters as f64);
    }
    black_box(&out);
    (n * n) as f64 / best
}

fn main() {
    for n in [64, 128, 256] {
        println!("matvec_add {n}x{n}: {:.1} MAC/ns", kernel_throughput(n));
    }
    let m = 64;
    println!("MGRU step, m = {m}; ns per step");
    println!(
        "{:>5} {:>16} {:>9} {:>9} {:>9} {:>10} {:>12}",
        "n", "rank", "best", "median", "p99", "max", "recur. MACs"
    );
    let lib = InProcess::new(&ENTRY).unwrap();
    let mut summary = Vec::new();
    for n in [64usize, 128, 256] {
        let mut full_mean = 0.0;
        let mut quarter_mean = 0.0;
        let cases = [
            ("full (dense)", Rank::Full),
            ("n/2 (rule→dense)", Rank::Rule(n / 2)),
            ("n/2 factored", Rank::Factored(n / 2)),
            ("n/4", Rank::Rule(n / 4)),
            ("n/8", Rank::Rule(n / 8)),
        ];
        for (label, rank) in cases {
            let mut cell = direct_cell(m, n, rank);
            let macs: u64 = cell.matrices().iter().map(|x| x.macs()).sum();
            let s = measure(|x, h, o| cell.step(x, h, o).unwrap(), m, n);
            println!(
                "{n:>5} {label:>16} {:>9.0} {:>9.0} {:>9.0} {:>10.0} {macs:>12}",
                s.best, s.median, s.p99, s.max
            );
            match label {
                "full (dense)" => full_mean = s.best,
                "n/4" => quarter_mean = s.best,
                _ => {}
            }
        }
        // Through the ABI (SDK thunks: checks, catch_unwind, finiteness).
        let sizes = CellSizes { input: m, state: n };
        let owned = random_tensors(&Mgru::DESCRIPTOR, sizes, 1, 1.0);
        let mut abi_cell = lib.create("hush.mgru", sizes, &owned).unwrap();
        abi_cell.activate(0).unwrap();
        let mut direct = direct_cell(m, n, Rank::Full);
        // Alternate direct and ABI measurements; compare the best rounds.
        let mut best_direct = f64::INFINITY;
        let mut best_abi = f64::INFINITY;
        let mut abi_last = None;
        for _ in 0..3 {
            let d = measure(|x, h, o| direct.step(x, h, o).unwrap(), m, n);
            let a = measure(|x, h, o| abi_cell.step(x, h, o).unwrap(), m, n);
            best_direct = best_direct.min(d.best);
            best_abi = best_abi.min(a.best);
            abi_last = Some(a);
        }
        let a = abi_last.unwrap();
        println!(
            "{n:>5} {:>16} {:>9.0} {:>9.0} {:>9.0} {:>10.0}   (direct, same rounds: {best_direct:.0})",
            "full via ABI", best_abi, a.median, a.p99, a.max
        );
        summary.push((n, full_mean / quarter_mean, best_abi - best_direct));
    }
    println!();
    for (n, speedup, overhead) in summary {
        println!(
            "n = {n:>3}: speedup of rank n/4 over full = {speedup:.2}x; \
             ABI call overhead = {overhead:+.0} ns per step"
        );
    }
}
