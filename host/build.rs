//! Build script: records the git commit the host is built from (when built
//! from a checkout with git on the PATH) as `PEERLAB_GIT_COMMIT`, which
//! `run.json` records (`peerlab_commit`). No checkout or no git: the
//! variable is unset and the field is left out.
//!
//! Must not: fail the build (every git problem means "no commit").

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(std::env::var_os("CARGO_MANIFEST_DIR")?)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=PEERLAB_GIT_COMMIT");
    let Some(commit) = git(&["rev-parse", "HEAD"]) else {
        return;
    };
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it names
    // (a commit) and packed-refs (a gc).
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for name in watch {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            let mut path = PathBuf::from(path);
            if path.is_relative()
                && let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR")
            {
                path = PathBuf::from(dir).join(path);
            }
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    println!("cargo:rustc-env=PEERLAB_GIT_COMMIT={commit}");
}
