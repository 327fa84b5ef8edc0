//! Built-in (statically linked) cells through the same ABI table: listing
//! for `hushd cells`, creation from named tensors, the low-rank wrapper.

mod common;

use common::*;
use hush_cell_host::{CellFault, CellOptions, HostError, Origin, ProbeBuffers, Registry};
use hush_cell_sdk::RecurrentCell;

fn registry() -> Registry {
    let mut reg = Registry::new();
    for e in [
        &hush_cell_mgru::ENTRY,
        &hush_cell_gru::ENTRY,
        &hush_cell_elman::ENTRY,
    ] {
        let rep = reg.add_builtin(e).unwrap();
        assert_eq!(rep.origin, Origin::BuiltIn);
        assert!(rep.overrides.is_empty());
    }
    reg
}

#[test]
fn lists_the_builtins() {
    let reg = registry();
    let ids: Vec<&str> = reg.cells().iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        ["hush.elman", "hush.gru", "hush.mgru", "hush.mgru-svd"]
    );
    let svd = reg.get("hush.mgru-svd").unwrap();
    // Listed in tensor order (the extension orders them U_f, U_c, W_f, W_c).
    assert_eq!(svd.matrices, ["w_f", "u_f", "w_c", "u_c"]);
    let mgru = reg.get("hush.mgru").unwrap();
    assert_eq!(mgru.origin.to_string(), "built-in");
    assert_eq!(mgru.matrices, ["u_f", "u_c"]);
    let names: Vec<&str> = mgru.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["w_f", "u_f", "b_f", "w_c", "u_c", "b_c"]);
    assert_eq!(mgru.tensors[0].shape_for(64, 128), Some(vec![128, 64]));
    assert_eq!(mgru.tensors[1].shape_for(64, 128), Some(vec![128, 128]));
    assert_eq!(mgru.tensors[2].shape_for(64, 128), Some(vec![128]));
}

#[test]
fn registering_a_builtin_twice_reports_the_override() {
    let mut reg = registry();
    let rep = reg.add_builtin(&hush_cell_mgru::ENTRY).unwrap();
    // The MGRU library holds two cells (hush.mgru, hush.mgru-svd).
    assert_eq!(rep.overrides.len(), 2);
    assert_eq!(rep.overrides[0].previous, Origin::BuiltIn);
    assert_eq!(reg.cells().len(), 4);
}

#[test]
fn create_and_drive_the_low_rank_extension() {
    let mut reg = registry();
    let (m, n) = (16, 64);
    let owned = weights(&hush_cell_mgru::Mgru::DESCRIPTOR, m, n, 3);
    let mut shapes = Vec::new();
    let t = as_tensors(&owned, &mut shapes);
    let opts = CellOptions {
        max_rank: Some(n / 4),
        require_low_rank: true,
    };
    let mut cell = reg.create("hush.mgru", sizes(m, n), &t, opts).unwrap();
    assert_eq!(cell.id(), "hush.mgru");
    assert_eq!(cell.matrices().len(), 2);
    assert_eq!(cell.matrices()[0].via, Some(1));
    assert_eq!(cell.matrices()[1].input, "f*h");
    let sv = &cell.matrices()[0].singular_values;
    assert!(sv.windows(2).all(|w| w[0] >= w[1]) && sv[0] > 0.0);

    let mut h = vec![0.0f32; n];
    let mut out = vec![0.0f32; n];
    let x = vec![0.3f32; m];
    cell.step(&x, &h, &mut out).unwrap();
    assert_eq!(
        cell.step(&x[..m - 1], &h, &mut out),
        Err(CellFault::InvalidArgument)
    );
    assert_eq!(cell.fault(), None, "a caller error is not sticky");
    std::mem::swap(&mut h, &mut out);

    let mut lr = cell.low_rank().unwrap();
    let full = lr.macs().unwrap();
    assert_eq!(full.recurrent, 2 * (n * n) as u64);
    assert_eq!(full.total, full.recurrent + 2 * (n * m) as u64);
    lr.set_rank(0, 8).unwrap();
    lr.set_rank(1, 16).unwrap();
    assert_eq!((lr.rank(0), lr.rank(1)), (8, 16));
    assert_eq!(
        lr.macs().unwrap().recurrent,
        (2 * n * 8 + 2 * n * 16) as u64
    );
    assert_eq!(lr.macs_for_ranks(&[64, 64]).unwrap(), full);
    // 20 < n/2 but above max_rank = n/4.
    assert_eq!(lr.set_rank(0, 20), Err(CellFault::InvalidArgument));
    assert_eq!(lr.set_rank(5, 8), Err(CellFault::InvalidArgument));
    let mut p = vec![0.0; n * n];
    let mut qt = vec![0.0; n * n];
    lr.factors(0, Some(&mut p), Some(&mut qt)).unwrap();
    assert!(p.iter().any(|&v| v != 0.0) && qt.iter().any(|&v| v != 0.0));

    cell.step(&x, &h, &mut out).unwrap();
    let mut probe = ProbeBuffers::new(&cell);
    let mut lr = cell.low_rank().unwrap();
    lr.probe(&mut probe).unwrap();
    // Projections of h onto the right singular vectors of U_f: ‖p‖ = ‖h‖.
    let np: f32 = probe.projections[0]
        .iter()
        .map(|v| v * v)
        .sum::<f32>()
        .sqrt();
    let nh: f32 = h.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((np - nh).abs() <= 1e-4 * (1.0 + nh), "{np} vs {nh}");
    let mut jac = vec![0.0; n * n];
    lr.jacobian(&mut jac).unwrap();
    assert_eq!(lr.jacobian(&mut jac[1..]), Err(CellFault::InvalidArgument));
}

#[test]
fn creation_errors_name_the_cell_and_the_tensor() {
    let mut reg = registry();
    let mut owned = weights(&hush_cell_gru::Gru::DESCRIPTOR, 4, 8, 1);
    owned[4].data[3] = f32::NAN; // u_r
    let mut shapes = Vec::new();
    let t = as_tensors(&owned, &mut shapes);
    let err = reg
        .create("hush.gru", sizes(4, 8), &t, CellOptions::default())
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HostError::WeightsRejected { .. }), "{msg}");
    assert!(
        msg.contains("built-in") && msg.contains("hush.gru") && msg.contains("`u_r`"),
        "{msg}"
    );
}

#[test]
fn cell_and_registry_are_send() {
    fn send<T: Send>() {}
    send::<hush_cell_host::Cell>();
    send::<Registry>();
}
