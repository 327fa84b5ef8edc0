//! Shared helpers of the host tests: building the plugin fixtures once per
//! test binary, scratch directories, tensors.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use hush_cell_host::{CellSizes, Tensor};
use hush_cell_sdk::testing::{OwnedTensor, random_tensors};

/// Library file names of the fixtures, by short name.
pub const LIBS: &[(&str, &str)] = &[
    ("mgru", "libhush_cell_mgru.so"),
    ("gru", "libhush_cell_gru.so"),
    ("elman", "libhush_cell_elman.so"),
    ("leaky", "libhush_cell_example_leaky.so"),
    ("faulty", "libhush_fixture_faulty.so"),
    ("wrong-major", "libhush_fixture_wrong_major.so"),
    ("no-entry", "libhush_fixture_no_entry.so"),
    ("init-fails", "libhush_fixture_init_fails.so"),
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Build every plugin fixture once (one nested `cargo build` with its own
/// target directory, so it does not wait for the outer build's lock) and
/// return the directory holding the `.so` files.
pub fn fixture_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace_root();
        let target = root.join("target/plugin-fixtures");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&root)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .args(["build", "--offline", "--quiet"]);
        for p in [
            "hush-cell-mgru",
            "hush-cell-gru",
            "hush-cell-elman",
            "hush-cell-example-leaky",
            "hush-fixture-faulty",
            "hush-fixture-wrong-major",
            "hush-fixture-no-entry",
            "hush-fixture-init-fails",
        ] {
            cmd.args(["-p", p]);
        }
        cmd.args([
            "--features",
            "hush-cell-mgru/plugin,hush-cell-gru/plugin,hush-cell-elman/plugin,\
             hush-cell-example-leaky/plugin",
        ]);
        let out = cmd
            .output()
            .expect("run nested cargo build for the plugin fixtures");
        assert!(
            out.status.success(),
            "building plugin fixtures failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("debug")
    })
}

/// Path of a built fixture by short name.
pub fn lib(name: &str) -> PathBuf {
    let file = LIBS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("known fixture")
        .1;
    fixture_dir().join(file)
}

/// A fresh scratch directory (mode 0755) under the target's tmp dir.
pub fn scratch(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "host-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    set_mode(&dir, 0o755);
    dir
}

/// A scratch directory holding copies of the named fixtures (mode 0644).
pub fn plugin_dir(tag: &str, names: &[&str]) -> PathBuf {
    let dir = scratch(tag);
    for name in names {
        let src = lib(name);
        let dst = dir.join(src.file_name().unwrap());
        std::fs::copy(&src, &dst).unwrap();
        set_mode(&dst, 0o644);
    }
    dir
}

/// chmod.
pub fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Random weights for a cell descriptor.
pub fn weights(
    desc: &hush_cell_sdk::CellDescriptor,
    m: usize,
    n: usize,
    seed: u64,
) -> Vec<OwnedTensor> {
    random_tensors(
        desc,
        hush_cell_sdk::CellSizes { input: m, state: n },
        seed,
        1.0,
    )
}

/// Borrow owned tensors as host tensors (shapes stored in `shapes`).
pub fn as_tensors<'a>(
    owned: &'a [OwnedTensor],
    shapes: &'a mut Vec<Vec<usize>>,
) -> Vec<Tensor<'a>> {
    *shapes = owned
        .iter()
        .map(|t| t.shape.iter().map(|&d| d as usize).collect())
        .collect();
    owned
        .iter()
        .zip(shapes.iter())
        .map(|(t, s)| Tensor {
            name: t.name.to_str().unwrap(),
            shape: s,
            data: &t.data,
        })
        .collect()
}

/// Host sizes.
pub fn sizes(m: usize, n: usize) -> CellSizes {
    CellSizes { input: m, state: n }
}
