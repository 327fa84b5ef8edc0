//! ABI contract of the SDK's generated thunks, in process: argument checks,
//! weight validation, states, panics (poisoning) and non-finite output.

use std::ffi::CString;

use hush_cell_sdk::abi::{self, HUSH_CELL_ABI_VERSION, HUSH_EXT_LOW_RANK, HushStatus};
use hush_cell_sdk::testing::{InProcess, OwnedTensor, ProbeData, random_tensors};
use hush_cell_sdk::{
    CellDescriptor, CellError, CellSizes, ErrorForm, HushDim, LowRankMatrix, MatrixSpec,
    RecurrentCell, TensorSpec, Weights, matvec_add,
};

/// h' = tanh(W x + U h); x[0] = 999 panics, x[0] = −999 gives NaN.
struct Lin {
    n: usize,
    w: Vec<f32>,
    u: Vec<f32>,
    mats: Vec<LowRankMatrix>,
    h_prev: Vec<f32>,
}

impl RecurrentCell for Lin {
    const DESCRIPTOR: CellDescriptor = CellDescriptor {
        id: c"test.lin",
        name: c"test",
        version: c"0.0.1",
        description: c"test cell",
        tensors: &[
            TensorSpec {
                name: c"w",
                description: c"",
                shape: &[HushDim::STATE, HushDim::INPUT],
            },
            TensorSpec {
                name: c"u",
                description: c"",
                shape: &[HushDim::STATE, HushDim::STATE],
            },
        ],
        matrices: &[MatrixSpec {
            tensor: c"u",
            input: c"h",
            via: None,
        }],
        error_form: ErrorForm::PerUnit,
    };

    fn new(sizes: CellSizes, w: &Weights<'_>) -> Result<Self, CellError> {
        Ok(Lin {
            n: sizes.state,
            w: w.get("w")?.to_vec(),
            u: w.get("u")?.to_vec(),
            mats: Vec::new(),
            h_prev: vec![0.0; sizes.state],
        })
    }

    fn activate(&mut self, max_rank: usize) -> Result<(), CellError> {
        self.mats = vec![LowRankMatrix::factor(&self.u, self.n, max_rank)?];
        Ok(())
    }

    fn step(&mut self, x: &[f32], h: &[f32], out: &mut [f32]) -> Result<(), CellError> {
        if x[0] == 999.0 {
            panic!("deliberate test panic");
        }
        out.fill(0.0);
        matvec_add(&self.w, x, out);
        self.mats[0].apply_add(h, out);
        out.iter_mut().for_each(|v| *v = v.tanh());
        if x[0] == -999.0 {
            out[0] = f32::NAN;
        }
        self.h_prev.copy_from_slice(h);
        Ok(())
    }

    fn matrices(&self) -> &[LowRankMatrix] {
        &self.mats
    }
    fn matrices_mut(&mut self) -> &mut [LowRankMatrix] {
        &mut self.mats
    }
    fn probe_input(&self, _: usize) -> &[f32] {
        &self.h_prev
    }
    fn probe_derivatives(
        &self,
        _: usize,
        g: Option<&mut [f32]>,
        d: Option<&mut [f32]>,
    ) -> Result<(), CellError> {
        if let Some(g) = g {
            g.fill(1.0);
        }
        if let Some(d) = d {
            d.fill(0.0);
        }
        Ok(())
    }
    fn retention(&self, out: &mut [f32]) -> Result<(), CellError> {
        out.fill(0.5);
        Ok(())
    }
}

#[allow(unexpected_cfgs)]
mod exported {
    hush_cell_sdk::export_cells!(super::Lin);
}
use exported::ENTRY;

const SIZES: CellSizes = CellSizes { input: 3, state: 8 };

fn tensors() -> Vec<OwnedTensor> {
    random_tensors(&Lin::DESCRIPTOR, SIZES, 7, 0.9)
}

fn active(lib: &InProcess) -> hush_cell_sdk::testing::TestCell {
    let mut c = lib.create("test.lin", SIZES, &tensors()).unwrap();
    c.activate(0).unwrap();
    c
}

#[test]
fn entry_and_descriptor() {
    assert_eq!(ENTRY.abi, HUSH_CELL_ABI_VERSION);
    let lib = InProcess::new(&ENTRY).unwrap();
    assert_eq!(lib.cell_ids(), vec!["test.lin".to_string()]);
    let d = lib.descriptors()[0];
    assert_eq!(d.tensor_count, 2);
    // SAFETY: the descriptor's tensor array has tensor_count entries.
    let specs = unsafe { std::slice::from_raw_parts(d.tensors, 2) };
    assert_eq!(specs[0].flags, 0);
    assert_eq!(specs[1].flags, abi::HUSH_TENSOR_FLAG_LOW_RANK);
    assert_eq!(specs[1].ndim, 2);
    assert_eq!(specs[1].dims[0], HushDim::STATE);
}

#[test]
fn factory_rejects_bad_weights_naming_the_tensor() {
    let lib = InProcess::new(&ENTRY).unwrap();
    assert_eq!(
        lib.create("test.nope", SIZES, &tensors()).err(),
        Some(HushStatus::INVALID_ARGUMENT)
    );

    let mut t = tensors();
    t.remove(1);
    assert_eq!(
        lib.create("test.lin", SIZES, &t).err(),
        Some(HushStatus::REJECTED)
    );
    assert!(
        lib.logs().iter().any(|l| l.contains("missing tensor `u`")),
        "{:?}",
        lib.logs()
    );

    let mut t = tensors();
    t[1].shape = vec![8, 7];
    t[1].data.truncate(56);
    assert_eq!(
        lib.create("test.lin", SIZES, &t).err(),
        Some(HushStatus::REJECTED)
    );
    assert!(
        lib.logs()
            .iter()
            .any(|l| l.contains("tensor `u` has shape [8, 7], expected [8, 8]"))
    );

    let mut t = tensors();
    t[0].data[5] = f32::INFINITY;
    assert_eq!(
        lib.create("test.lin", SIZES, &t).err(),
        Some(HushStatus::REJECTED)
    );
    assert!(
        lib.logs()
            .iter()
            .any(|l| l.contains("`w` has a non-finite value at index 5"))
    );

    let mut t = tensors();
    t.push(OwnedTensor {
        name: CString::new("extra").unwrap(),
        shape: vec![1],
        data: vec![0.0],
    });
    assert_eq!(
        lib.create("test.lin", SIZES, &t).err(),
        Some(HushStatus::REJECTED)
    );

    let mut t = tensors();
    t.push(t[0].clone());
    assert_eq!(
        lib.create("test.lin", SIZES, &t).err(),
        Some(HushStatus::REJECTED)
    );

    let zero = CellSizes { input: 0, state: 8 };
    assert_eq!(
        lib.create("test.lin", zero, &tensors()).err(),
        Some(HushStatus::REJECTED)
    );
}

#[test]
fn state_checks() {
    let lib = InProcess::new(&ENTRY).unwrap();
    let mut c = lib.create("test.lin", SIZES, &tensors()).unwrap();
    let x = [0.1, 0.2, 0.3];
    let h = [0.0f32; 8];
    let mut out = [0.0f32; 8];
    assert_eq!(c.step(&x, &h, &mut out), Err(HushStatus::INVALID_STATE));
    assert_eq!(c.set_rank(0, 2), Err(HushStatus::INVALID_STATE));
    c.activate(0).unwrap();
    assert_eq!(c.activate(0), Err(HushStatus::INVALID_STATE));
    let mut probe = ProbeData::new(1, 8);
    assert_eq!(c.probe(&mut probe), Err(HushStatus::INVALID_STATE));
    let mut jac = vec![0.0; 64];
    assert_eq!(c.jacobian(&mut jac), Err(HushStatus::INVALID_STATE));
    c.step(&x, &h, &mut out).unwrap();
    c.probe(&mut probe).unwrap();
    assert_eq!(probe.retention, vec![0.5; 8]);
    // The test cell has no Jacobian: the default says so.
    assert_eq!(c.jacobian(&mut jac), Err(HushStatus::UNSUPPORTED));
    c.reset().unwrap();
    assert_eq!(c.probe(&mut probe), Err(HushStatus::INVALID_STATE));
}

#[test]
fn argument_checks() {
    let lib = InProcess::new(&ENTRY).unwrap();
    let mut c = active(&lib);
    let h = [0.0f32; 8];
    let mut out = [0.0f32; 8];
    assert_eq!(
        c.step(&[0.1, 0.2], &h, &mut out),
        Err(HushStatus::INVALID_ARGUMENT)
    );
    assert_eq!(
        c.step(&[0.1, 0.2, 0.3], &h[..7], &mut out[..7]),
        Err(HushStatus::INVALID_ARGUMENT)
    );
    let raw = c.raw();
    // SAFETY: `raw` is a live instance; the pointers are deliberately bad
    // (null, overlapping) and the thunk must refuse them without touching
    // memory beyond the valid buffers.
    unsafe {
        let step = (*raw).step.unwrap();
        let x = [0.1f32, 0.2, 0.3];
        let mut buf = [0.0f32; 12];
        assert_eq!(
            step(raw, std::ptr::null(), 3, h.as_ptr(), out.as_mut_ptr(), 8),
            HushStatus::INVALID_ARGUMENT
        );
        assert_eq!(
            step(raw, x.as_ptr(), 3, std::ptr::null(), out.as_mut_ptr(), 8),
            HushStatus::INVALID_ARGUMENT
        );
        assert_eq!(
            step(raw, x.as_ptr(), 3, h.as_ptr(), std::ptr::null_mut(), 8),
            HushStatus::INVALID_ARGUMENT
        );
        let p = buf.as_mut_ptr();
        assert_eq!(
            step(raw, x.as_ptr(), 3, p, p.add(4), 8),
            HushStatus::INVALID_ARGUMENT
        );
        assert_eq!(
            step(
                std::ptr::null(),
                x.as_ptr(),
                3,
                h.as_ptr(),
                out.as_mut_ptr(),
                8
            ),
            HushStatus::INVALID_ARGUMENT
        );
        let get_ext = (*raw).get_extension.unwrap();
        assert!(get_ext(raw, c"hush.nothing/1".as_ptr()).is_null());
        assert!(get_ext(raw, std::ptr::null()).is_null());
        assert!(!get_ext(raw, HUSH_EXT_LOW_RANK.as_ptr()).is_null());
        let ext = c.low_rank().unwrap();
        assert_eq!(
            (ext.singular_values.unwrap())(raw, 0, std::ptr::null_mut(), 8),
            HushStatus::INVALID_ARGUMENT
        );
        assert_eq!(
            (ext.set_rank.unwrap())(raw, 5, 2),
            HushStatus::INVALID_ARGUMENT
        );
    }
    assert_eq!(c.set_rank(0, 0), Err(HushStatus::INVALID_ARGUMENT));
    assert_eq!(c.set_rank(0, 9), Err(HushStatus::INVALID_ARGUMENT));
    assert_eq!(
        c.singular_values(1).err(),
        Some(HushStatus::INVALID_ARGUMENT)
    );
    assert_eq!(
        c.macs_for_ranks(&[2, 2]).err(),
        Some(HushStatus::INVALID_ARGUMENT)
    );
    let mut jac = vec![0.0; 63];
    c.step(&[0.1, 0.2, 0.3], &h, &mut out).unwrap();
    assert_eq!(c.jacobian(&mut jac), Err(HushStatus::INVALID_ARGUMENT));
    let mut probe = ProbeData::new(1, 7);
    assert_eq!(c.probe(&mut probe), Err(HushStatus::INVALID_ARGUMENT));
    // The instance still works after refused calls.
    c.step(&[0.1, 0.2, 0.3], &h, &mut out).unwrap();
}

#[test]
fn a_panic_poisons_the_instance_and_never_aborts() {
    let lib = InProcess::new(&ENTRY).unwrap();
    let mut c = active(&lib);
    let h = [0.1f32; 8];
    let mut out = [0.0f32; 8];
    c.step(&[0.1, 0.2, 0.3], &h, &mut out).unwrap();
    assert_eq!(
        c.step(&[999.0, 0.0, 0.0], &h, &mut out),
        Err(HushStatus::PANICKED)
    );
    assert_eq!(
        c.step(&[0.1, 0.2, 0.3], &h, &mut out),
        Err(HushStatus::POISONED)
    );
    assert_eq!(c.set_rank(0, 2), Err(HushStatus::POISONED));
    assert_eq!(c.reset(), Err(HushStatus::POISONED));
    let mut probe = ProbeData::new(1, 8);
    assert_eq!(c.probe(&mut probe), Err(HushStatus::POISONED));
    let logs = lib.logs();
    assert!(
        logs.iter().any(
            |l| l.contains("test.lin: step panicked: deliberate test panic; instance poisoned")
        ),
        "{logs:?}"
    );
    // Other instances are unaffected; destroying the poisoned one is fine.
    let mut other = active(&lib);
    other.step(&[0.1, 0.2, 0.3], &h, &mut out).unwrap();
    drop(c);
}

#[test]
fn non_finite_output_is_reported_and_logged_once() {
    let lib = InProcess::new(&ENTRY).unwrap();
    let mut c = active(&lib);
    let h = [0.1f32; 8];
    let mut out = [0.0f32; 8];
    for _ in 0..5 {
        assert_eq!(
            c.step(&[-999.0, 0.0, 0.0], &h, &mut out),
            Err(HushStatus::NON_FINITE)
        );
    }
    let n = lib
        .logs()
        .iter()
        .filter(|l| l.contains("non-finite"))
        .count();
    assert_eq!(n, 1, "{:?}", lib.logs());
    // Not poisoned: a finite step works again.
    c.step(&[0.1, 0.2, 0.3], &h, &mut out).unwrap();
}

#[test]
fn max_rank_and_macs() {
    let lib = InProcess::new(&ENTRY).unwrap();
    let mut c = lib.create("test.lin", SIZES, &tensors()).unwrap();
    c.activate(2).unwrap();
    assert_eq!(c.rank(0), 8);
    c.set_rank(0, 2).unwrap();
    assert_eq!(c.rank(0), 2);
    // 3 is below n/2 but above max_rank.
    assert_eq!(c.set_rank(0, 3), Err(HushStatus::INVALID_ARGUMENT));
    c.set_rank(0, 4).unwrap();
    assert_eq!(c.rank(0), 8);
    let m = c.macs().unwrap();
    assert_eq!(m.recurrent, 64);
    assert_eq!(m.total, 64);
    assert_eq!(c.macs_for_ranks(&[1]).unwrap().recurrent, 16);
    assert_eq!(
        c.macs_for_ranks(&[3]).err(),
        Some(HushStatus::INVALID_ARGUMENT)
    );
    assert_eq!(
        c.matrix_info(0).unwrap(),
        ("u".into(), "h".into(), abi::HUSH_VIA_NONE)
    );
    assert_eq!(c.error_form(), abi::HushErrorForm::PER_UNIT.0);
}
