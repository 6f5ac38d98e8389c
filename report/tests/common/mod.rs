//! Helpers shared by the report crate's integration tests: temp copies of
//! fixtures and synthetic run folders.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use peerlab_report::synth::{SynthSpec, write_run};

/// Copies a folder tree (files and folders only).
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// A fixture under tests/fixtures, copied into a fresh temp dir (the report
/// writes into the run folder).
pub fn fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
        &dst,
    );
    (tmp, dst)
}

/// A small synthetic run with a crash, a garbage line and a reset.
pub fn small_run() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("0001-synthetic");
    let mut spec = SynthSpec::new(12);
    spec.duration_s = 40;
    spec.crashed = vec![3];
    spec.garbage_line = true;
    spec.reset_at = Some(10);
    write_run(&dir, &spec).unwrap();
    (tmp, dir)
}
