//! Checks that `include/hush_cell.h` matches the Rust ABI definitions.
//!
//! The test writes a C file that includes the header and asserts, with
//! `_Static_assert`, the size and alignment of every struct, the offset of
//! every field and the value of every constant, using the numbers Rust
//! computes, then compiles it with the system C compiler (`cc`). A renamed
//! field fails to compile; a moved, resized or added field or a changed
//! constant fails an assertion. It also checks that the header defines no
//! status code that Rust does not know.

use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use hush_cell_abi::*;

macro_rules! layout {
    ($out:expr, $t:ident { $($f:ident),* $(,)? }) => {{
        let out: &mut String = $out;
        writeln!(out, "_Static_assert(sizeof({}) == {}, \"sizeof {}\");",
            stringify!($t), size_of::<$t>(), stringify!($t)).unwrap();
        writeln!(out, "_Static_assert(_Alignof({}) == {}, \"alignof {}\");",
            stringify!($t), align_of::<$t>(), stringify!($t)).unwrap();
        $(
            writeln!(out, "_Static_assert(offsetof({}, {}) == {}, \"offset {}.{}\");",
                stringify!($t), stringify!($f), offset_of!($t, $f),
                stringify!($t), stringify!($f)).unwrap();
        )*
    }};
}

fn c_source() -> String {
    let mut s =
        String::from("#include \"hush_cell.h\"\n#include <stddef.h>\n#include <string.h>\n");
    layout!(
        &mut s,
        HushVersion {
            major,
            minor,
            patch
        }
    );
    layout!(
        &mut s,
        HushHost {
            abi,
            host_data,
            name,
            version,
            log
        }
    );
    layout!(
        &mut s,
        HushCellEntry {
            abi,
            init,
            deinit,
            get_factory
        }
    );
    layout!(
        &mut s,
        HushDim {
            input,
            state,
            constant
        }
    );
    layout!(
        &mut s,
        HushTensorSpec {
            name,
            description,
            flags,
            ndim,
            dims
        }
    );
    layout!(
        &mut s,
        HushCellDescriptor {
            abi,
            id,
            name,
            version,
            description,
            tensor_count,
            tensors
        }
    );
    layout!(&mut s, HushCellSizes { input, state });
    layout!(
        &mut s,
        HushTensor {
            name,
            ndim,
            shape,
            data,
            len
        }
    );
    layout!(
        &mut s,
        HushCellFactory {
            get_cell_count,
            get_cell_descriptor,
            create_cell
        }
    );
    layout!(
        &mut s,
        HushCellInstance {
            desc,
            cell_data,
            activate,
            reset,
            step,
            get_extension,
            destroy
        }
    );
    layout!(
        &mut s,
        HushMatrixInfo {
            name,
            input,
            rows,
            cols,
            via_matrix
        }
    );
    layout!(&mut s, HushMacs { total, recurrent });
    layout!(
        &mut s,
        HushProbeMatrix {
            projections,
            gate_derivatives,
            input_derivatives
        }
    );
    layout!(
        &mut s,
        HushProbe {
            state_len,
            matrix_count,
            matrices,
            retention
        }
    );
    layout!(
        &mut s,
        HushLowRankExt {
            matrix_count,
            matrix_info,
            error_form,
            singular_values,
            factors,
            set_rank,
            get_rank,
            macs,
            macs_for_ranks,
            probe,
            jacobian,
        }
    );
    layout!(&mut s, HushStatus {});
    layout!(&mut s, HushLogLevel {});

    let mut int = |name: &str, value: i64| {
        writeln!(s, "_Static_assert({name} == {value}, \"{name}\");").unwrap();
    };
    int("HUSH_CELL_ABI_MAJOR", HUSH_CELL_ABI_MAJOR.into());
    int("HUSH_CELL_ABI_MINOR", HUSH_CELL_ABI_MINOR.into());
    int("HUSH_CELL_ABI_PATCH", HUSH_CELL_ABI_PATCH.into());
    int("HUSH_TENSOR_MAX_DIMS", HUSH_TENSOR_MAX_DIMS as i64);
    int(
        "HUSH_TENSOR_FLAG_LOW_RANK",
        HUSH_TENSOR_FLAG_LOW_RANK.into(),
    );
    int("HUSH_VIA_NONE", HUSH_VIA_NONE.into());
    int("HUSH_ERROR_FORM_PER_UNIT", HushErrorForm::PER_UNIT.0.into());
    int(
        "HUSH_ERROR_FORM_MEAN_JACOBIAN",
        HushErrorForm::MEAN_JACOBIAN.0.into(),
    );
    int("HUSH_LOG_ERROR", HushLogLevel::ERROR.0.into());
    int("HUSH_LOG_WARNING", HushLogLevel::WARNING.0.into());
    int("HUSH_LOG_INFO", HushLogLevel::INFO.0.into());
    int("HUSH_LOG_DEBUG", HushLogLevel::DEBUG.0.into());
    for st in HushStatus::ALL {
        int(&status_macro(st), st.0.into());
    }

    // String ids: compared at run time by main(), since C11 has no
    // constexpr string comparison.
    s.push_str("int main(void) {\n  int bad = 0;\n");
    for (name, value) in [
        ("HUSH_CELL_ENTRY_SYMBOL", HUSH_CELL_ENTRY_SYMBOL),
        ("HUSH_CELL_FACTORY_ID", HUSH_CELL_FACTORY_ID),
        ("HUSH_EXT_LOW_RANK", HUSH_EXT_LOW_RANK),
    ] {
        let v = value.to_str().unwrap();
        writeln!(s, "  if (strcmp({name}, \"{v}\") != 0) bad = 1;").unwrap();
    }
    s.push_str("  return bad;\n}\n");
    s
}

fn status_macro(st: HushStatus) -> String {
    format!(
        "HUSH_STATUS_{}",
        st.name().replace(['-', ' '], "_").to_uppercase()
    )
    .replace("NON_FINITE_OUTPUT", "NON_FINITE")
    .replace("INTERNAL_ERROR", "INTERNAL")
}

fn header_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include")
}

#[test]
fn header_matches_rust_layout_and_constants() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("header_sync");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("check.c");
    let exe = dir.join("check");
    std::fs::write(&src, c_source()).unwrap();
    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(header_path())
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the system C compiler `cc`");
    assert!(
        out.status.success(),
        "hush_cell.h drifted from the Rust ABI:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).status().unwrap();
    assert!(
        run.success(),
        "string ids in hush_cell.h differ from the Rust ones"
    );
}

#[test]
fn header_defines_exactly_the_rust_status_codes() {
    let header = std::fs::read_to_string(header_path().join("hush_cell.h")).unwrap();
    let mut defined: Vec<String> = header
        .lines()
        .filter_map(|l| l.strip_prefix("#define HUSH_STATUS_"))
        .map(|l| format!("HUSH_STATUS_{}", l.split_whitespace().next().unwrap()))
        .collect();
    defined.sort();
    let mut rust: Vec<String> = HushStatus::ALL.iter().map(|s| status_macro(*s)).collect();
    rust.sort();
    assert_eq!(defined, rust);
}

#[test]
fn the_check_really_fails_on_drift() {
    // Guard against a check that can never fail: a wrong offset must not
    // compile.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("header_sync_neg");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("bad.c");
    let bad = format!(
        "#include \"hush_cell.h\"\n#include <stddef.h>\n_Static_assert(offsetof(HushCellInstance, step) == {}, \"x\");\n",
        offset_of!(HushCellInstance, step) + 8
    );
    std::fs::write(&src, bad).unwrap();
    let out = Command::new("cc")
        .args(["-std=c11", "-fsyntax-only", "-I"])
        .arg(header_path())
        .arg(&src)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
