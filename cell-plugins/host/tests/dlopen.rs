//! The ABI contract through dlopen: each shipped cell built as a `.so`, the
//! example plugin, and each deliberately broken plugin with its specific
//! error. The test process must survive all of it.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use hush_cell_host::{
    CellFault, CellOptions, ErrorForm, HUSH_CELL_ABI_VERSION, HostError, Origin, ProbeBuffers,
    Registry,
};
use hush_cell_sdk::RecurrentCell;

fn logging_registry() -> (Registry, Arc<Mutex<Vec<String>>>) {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&logs);
    let reg = Registry::with_logger(Arc::new(move |level, msg: &str| {
        sink.lock().unwrap().push(format!("{level}: {msg}"));
    }));
    (reg, logs)
}

fn builtins() -> Registry {
    let mut reg = Registry::new();
    for e in [
        &hush_cell_mgru::ENTRY,
        &hush_cell_gru::ENTRY,
        &hush_cell_elman::ENTRY,
    ] {
        reg.add_builtin(e).unwrap();
    }
    reg
}

#[test]
fn shipped_cells_load_by_dlopen_and_match_the_builtins() {
    let dir = plugin_dir("shipped", &["mgru", "gru", "elman"]);
    let mut loaded = Registry::new();
    let report = loaded.load_dir(&dir).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.loaded.len(), 3);
    let list: Vec<(String, Vec<String>)> = loaded
        .cells()
        .iter()
        .map(|c| (c.id.clone(), c.matrices.clone()))
        .collect();
    assert_eq!(
        list,
        vec![
            ("hush.elman".into(), vec!["u".into()]),
            (
                "hush.gru".into(),
                vec!["u_z".into(), "u_r".into(), "u_c".into()]
            ),
            ("hush.mgru".into(), vec!["u_f".into(), "u_c".into()]),
            (
                "hush.mgru-svd".into(),
                vec!["w_f".into(), "u_f".into(), "w_c".into(), "u_c".into()]
            ),
        ]
    );
    for c in loaded.cells() {
        assert_eq!(c.abi, HUSH_CELL_ABI_VERSION);
        assert!(
            matches!(&c.origin, Origin::Path(p) if p.starts_with(&dir)),
            "{:?}",
            c.origin
        );
        assert_eq!(c.version, "1.0.0");
    }

    let mut builtin = builtins();
    let cells = [
        (
            "hush.mgru",
            hush_cell_mgru::Mgru::DESCRIPTOR,
            ErrorForm::PerUnit,
            12,
        ),
        (
            "hush.mgru-svd",
            hush_cell_mgru::MgruSvd::DESCRIPTOR,
            ErrorForm::PerUnit,
            32,
        ),
        (
            "hush.gru",
            hush_cell_gru::Gru::DESCRIPTOR,
            ErrorForm::PerUnit,
            12,
        ),
        (
            "hush.elman",
            hush_cell_elman::Elman::DESCRIPTOR,
            ErrorForm::MeanJacobian,
            12,
        ),
    ];
    let n = 32;
    for (id, desc, form, m) in cells {
        let owned = weights(&desc, m, n, 5);
        let mut shapes = Vec::new();
        let t = as_tensors(&owned, &mut shapes);
        let mut a = loaded
            .create(id, sizes(m, n), &t, CellOptions::default())
            .unwrap();
        let mut b = builtin
            .create(id, sizes(m, n), &t, CellOptions::default())
            .unwrap();
        assert_eq!(a.error_form(), Some(form));
        assert_eq!(a.matrices(), b.matrices());
        let (mut ha, mut hb) = (vec![0.0f32; n], vec![0.0f32; n]);
        let (mut oa, mut ob) = (vec![0.0f32; n], vec![0.0f32; n]);
        let mut rng = hush_cell_sdk::testing::Rng::new(3);
        for step in 0..30 {
            if step == 10 {
                for cell in [&mut a, &mut b] {
                    let mut lr = cell.low_rank().unwrap();
                    for i in 0..lr.matrices().len() {
                        lr.set_rank(i, n / 4).unwrap();
                        assert_eq!(lr.rank(i), n / 4);
                    }
                }
            }
            let x = rng.vec(m, 1.0);
            a.step(&x, &ha, &mut oa).unwrap();
            b.step(&x, &hb, &mut ob).unwrap();
            for (p, q) in oa.iter().zip(&ob) {
                assert!((p - q).abs() <= 1e-6, "{id} step {step}: {p} vs {q}");
            }
            std::mem::swap(&mut ha, &mut oa);
            std::mem::swap(&mut hb, &mut ob);
        }
        let mut probe = ProbeBuffers::new(&a);
        let mut lr = a.low_rank().unwrap();
        lr.probe(&mut probe).unwrap();
        assert!(probe.retention.iter().all(|v| v.is_finite()));
        let mut jac = vec![0.0; n * n];
        lr.jacobian(&mut jac).unwrap();
        let k = lr.matrices().len() as u64;
        let macs = lr.macs().unwrap();
        assert_eq!(macs.recurrent, k * 2 * (n as u64) * (n as u64 / 4));
    }
}

#[test]
fn example_plugin_loads() {
    let dir = plugin_dir("example", &["leaky"]);
    let mut reg = Registry::new();
    let rep = reg
        .load_file(&dir.join("libhush_cell_example_leaky.so"))
        .unwrap();
    assert_eq!(rep.cells, vec!["example.leaky".to_string()]);
    let owned = weights(&hush_cell_example_leaky::Leaky::DESCRIPTOR, 4, 8, 1);
    let mut shapes = Vec::new();
    let t = as_tensors(&owned, &mut shapes);
    let mut cell = reg
        .create("example.leaky", sizes(4, 8), &t, CellOptions::default())
        .unwrap();
    let mut h = vec![0.0; 8];
    cell.step(&[0.1, 0.2, 0.3, 0.4], &[0.5; 8], &mut h).unwrap();
    assert!(h.iter().all(|v| v.abs() < 1.0));
}

#[test]
fn a_plugin_overrides_a_builtin_and_says_so() {
    let dir = plugin_dir("override", &["mgru"]);
    let mut reg = builtins();
    assert_eq!(reg.get("hush.mgru").unwrap().origin, Origin::BuiltIn);
    let rep = reg.load_dir(&dir).unwrap();
    let ov = &rep.loaded[0].overrides;
    // The library holds hush.mgru and hush.mgru-svd.
    assert_eq!(ov.len(), 2);
    assert_eq!(ov[0].id, "hush.mgru");
    assert_eq!(ov[1].id, "hush.mgru-svd");
    assert_eq!(ov[0].previous, Origin::BuiltIn);
    assert!(matches!(
        reg.get("hush.mgru").unwrap().origin,
        Origin::Path(_)
    ));
    assert_eq!(reg.get("hush.gru").unwrap().origin, Origin::BuiltIn);
    assert_eq!(reg.cells().len(), 4);
}

#[test]
fn wrong_major_is_refused_naming_both_versions() {
    let dir = plugin_dir("major", &["wrong-major"]);
    let path = dir.join("libhush_fixture_wrong_major.so");
    let err = Registry::new().load_file(&path).unwrap_err();
    let HostError::WrongMajor {
        found, expected, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!((found.major, found.minor, found.patch), (99, 3, 1));
    assert_eq!(*expected, HUSH_CELL_ABI_VERSION);
    let msg = err.to_string();
    assert!(msg.contains("99.3.1") && msg.contains("1.0.0"), "{msg}");
    assert!(msg.contains(path.to_str().unwrap()), "{msg}");
}

#[test]
fn missing_entry_symbol_is_refused() {
    let dir = plugin_dir("noentry", &["no-entry"]);
    let path = dir.join("libhush_fixture_no_entry.so");
    let err = Registry::new().load_file(&path).unwrap_err();
    assert!(matches!(err, HostError::MissingEntry { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("hush_cell_entry") && msg.contains(path.to_str().unwrap()),
        "{msg}"
    );
}

#[test]
fn init_failure_is_refused() {
    let dir = plugin_dir("initfail", &["init-fails"]);
    let (mut reg, logs) = logging_registry();
    let err = reg
        .load_file(&dir.join("libhush_fixture_init_fails.so"))
        .unwrap_err();
    assert!(matches!(err, HostError::InitFailed { .. }), "{err}");
    assert!(err.to_string().contains("init failed"));
    assert!(
        logs.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("refusing to start"))
    );
}

#[test]
fn a_file_that_is_not_a_shared_object_is_refused() {
    let dir = scratch("notso");
    let path = dir.join("readme.so");
    std::fs::write(&path, "this is text").unwrap();
    set_mode(&path, 0o644);
    let err = Registry::new().load_file(&path).unwrap_err();
    assert!(matches!(err, HostError::NotSharedObject { .. }), "{err}");
    // An ELF header that is not a loadable library.
    std::fs::write(&path, b"\x7fELF garbage").unwrap();
    let err = Registry::new().load_file(&path).unwrap_err();
    assert!(matches!(err, HostError::NotSharedObject { .. }), "{err}");
    assert!(err.to_string().contains("readme.so"));
}

#[test]
fn faulty_cells_are_bypassed_and_the_process_survives() {
    let dir = plugin_dir("faulty", &["faulty"]);
    let (mut reg, logs) = logging_registry();
    reg.load_dir(&dir).unwrap();
    let opts = CellOptions {
        max_rank: None,
        require_low_rank: false,
    };

    let mut p = reg.create("test.panic", sizes(2, 4), &[], opts).unwrap();
    let h = [0.25f32; 4];
    let mut out = [0.0f32; 4];
    p.step(&[-1.0, 0.0], &h, &mut out).unwrap();
    assert_eq!(out, h);
    assert_eq!(p.step(&[1.0, 0.0], &h, &mut out), Err(CellFault::Panicked));
    assert_eq!(p.fault(), Some(CellFault::Poisoned));
    assert_eq!(p.step(&[-1.0, 0.0], &h, &mut out), Err(CellFault::Poisoned));
    assert_eq!(p.reset(), Err(CellFault::Poisoned));
    // The audio-thread calls only queued the log line; draining delivers it.
    assert!(
        !logs.lock().unwrap().iter().any(|l| l.contains("panicked")),
        "a step logged through the logger directly"
    );
    reg.drain_log();
    assert!(
        logs.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("panicked") && l.contains("poisoned"))
    );

    let mut q = reg.create("test.nan", sizes(2, 4), &[], opts).unwrap();
    assert_eq!(q.step(&[1.0, 0.0], &h, &mut out), Err(CellFault::NonFinite));
    assert_eq!(
        q.step(&[-1.0, 0.0], &h, &mut out),
        Err(CellFault::NonFinite),
        "sticky"
    );
    q.reset().unwrap();
    q.step(&[-1.0, 0.0], &h, &mut out).unwrap();

    // A cell without the low-rank extension is refused when it is required.
    let err = reg
        .create("test.nan", sizes(2, 4), &[], CellOptions::default())
        .unwrap_err();
    assert!(matches!(err, HostError::MissingExtension { .. }), "{err}");
    drop(p);
    drop(q);
}

#[test]
fn rejected_weights_name_the_tensor() {
    let dir = plugin_dir("rejected", &["mgru"]);
    let mut reg = Registry::new();
    reg.load_dir(&dir).unwrap();
    let mut owned = weights(&hush_cell_mgru::Mgru::DESCRIPTOR, 4, 8, 1);
    owned.retain(|t| t.name.to_bytes() != b"u_c");
    let mut shapes = Vec::new();
    let t = as_tensors(&owned, &mut shapes);
    let err = reg
        .create("hush.mgru", sizes(4, 8), &t, CellOptions::default())
        .unwrap_err();
    assert!(matches!(err, HostError::WeightsRejected { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("u_c") && msg.contains("libhush_cell_mgru.so"),
        "{msg}"
    );
    let err = reg
        .create("hush.nope", sizes(4, 8), &t, CellOptions::default())
        .unwrap_err();
    assert!(matches!(err, HostError::UnknownCell { .. }));
}

#[test]
fn the_library_stays_loaded_while_cells_exist() {
    let dir = plugin_dir("alive", &["gru"]);
    let mut reg = Registry::new();
    reg.load_dir(&dir).unwrap();
    let owned = weights(&hush_cell_gru::Gru::DESCRIPTOR, 3, 8, 2);
    let mut shapes = Vec::new();
    let t = as_tensors(&owned, &mut shapes);
    let mut cell = reg
        .create("hush.gru", sizes(3, 8), &t, CellOptions::default())
        .unwrap();
    drop(reg);
    let mut out = [0.0f32; 8];
    cell.step(&[0.1, 0.2, 0.3], &[0.0; 8], &mut out).unwrap();
    cell.low_rank().unwrap().set_rank(2, 2).unwrap();
    cell.step(&[0.1, 0.2, 0.3], &out.clone(), &mut out).unwrap();
}

#[test]
fn load_dir_collects_each_failure_and_loads_the_rest() {
    let dir = plugin_dir("mixed", &["elman", "wrong-major", "no-entry", "init-fails"]);
    std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
    let mut reg = Registry::new();
    let rep = reg.load_dir(&dir).unwrap();
    assert_eq!(rep.loaded.len(), 1);
    assert_eq!(rep.errors.len(), 3, "{:?}", rep.errors);
    assert!(
        rep.errors
            .iter()
            .any(|e| matches!(e, HostError::WrongMajor { .. }))
    );
    assert!(
        rep.errors
            .iter()
            .any(|e| matches!(e, HostError::MissingEntry { .. }))
    );
    assert!(
        rep.errors
            .iter()
            .any(|e| matches!(e, HostError::InitFailed { .. }))
    );
    assert_eq!(reg.cells().len(), 1);
}
