//! A plugin is code: world-writable files or directories, and files or
//! directories owned by anyone but root or the daemon's user, are refused.
//! The tests run as root, so the "foreign owner" branch is tested both by
//! chown to nobody (uid 65534) and by an injected owner policy.

mod common;

use std::os::unix::fs::chown;

use common::*;
use hush_cell_host::{HostError, OwnerPolicy, Registry};

const NOBODY: u32 = 65534;
const SO: &str = "libhush_cell_elman.so";

fn refused(err: &HostError, path_part: &str, reason_part: &str) {
    let HostError::Permission { .. } = err else {
        panic!("expected a permission error: {err}")
    };
    let msg = err.to_string();
    assert!(
        msg.contains(path_part) && msg.contains(reason_part),
        "{msg}"
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_good_directory_loads() {
    let dir = plugin_dir("perm-ok", &["elman"]);
    let mut reg = Registry::new();
    let rep = reg.load_dir(&dir).unwrap();
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!(reg.cells().len(), 1);
}

#[test]
fn world_writable_directory_is_refused() {
    let dir = plugin_dir("perm-dir777", &["elman"]);
    set_mode(&dir, 0o777);
    let mut reg = Registry::new();
    let err = reg.load_dir(&dir).unwrap_err();
    refused(&err, dir.to_str().unwrap(), "world-writable");
    let err = reg.load_file(&dir.join(SO)).unwrap_err();
    refused(&err, dir.to_str().unwrap(), "world-writable");
    assert!(reg.cells().is_empty());
}

#[test]
fn world_writable_file_is_refused() {
    let dir = plugin_dir("perm-file666", &["elman", "gru"]);
    let file = dir.join(SO);
    set_mode(&file, 0o666);
    let mut reg = Registry::new();
    let err = reg.load_file(&file).unwrap_err();
    refused(&err, SO, "world-writable (mode 666)");
    // In a directory load the bad file is reported and the rest loads.
    let rep = reg.load_dir(&dir).unwrap();
    assert_eq!(rep.loaded.len(), 1);
    assert_eq!(rep.errors.len(), 1);
    refused(&rep.errors[0], SO, "world-writable");
}

#[test]
fn file_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: chown needs root");
        return;
    }
    let dir = plugin_dir("perm-nobody-file", &["elman"]);
    let file = dir.join(SO);
    chown(&file, Some(NOBODY), Some(NOBODY)).unwrap();
    let err = Registry::new().load_file(&file).unwrap_err();
    refused(&err, SO, "owned by uid 65534");
}

#[test]
fn directory_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: chown needs root");
        return;
    }
    let dir = plugin_dir("perm-nobody-dir", &["elman"]);
    chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    let err = Registry::new().load_dir(&dir).unwrap_err();
    refused(&err, dir.to_str().unwrap(), "owned by uid 65534");
}

#[test]
fn the_owner_policy_is_injectable() {
    let dir = plugin_dir("perm-policy", &["elman"]);
    let mut reg = Registry::new();
    // Our files are owned by the test user (root here): refused by a
    // policy that trusts only some other uid.
    reg.set_owner_policy(OwnerPolicy::only([4242]));
    let err = reg.load_dir(&dir).unwrap_err();
    refused(&err, dir.to_str().unwrap(), "allowed uids: 4242");
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    reg.set_owner_policy(OwnerPolicy::only([me]));
    reg.load_dir(&dir).unwrap();
    assert_eq!(reg.cells().len(), 1);
    assert!(OwnerPolicy::default().allowed().contains(&0));
    assert!(OwnerPolicy::default().allowed().contains(&me));
}

#[test]
fn a_directory_named_like_a_plugin_is_refused() {
    let dir = scratch("perm-notfile");
    let sub = dir.join("fake.so");
    std::fs::create_dir(&sub).unwrap();
    set_mode(&sub, 0o755);
    let rep = Registry::new().load_dir(&dir).unwrap();
    assert_eq!(rep.errors.len(), 1);
    refused(&rep.errors[0], "fake.so", "not a regular file");
}
