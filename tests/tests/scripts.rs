//! Tests of the repository's shell scripts: `scripts/test`'s check of the
//! system tools (a missing tool fails naming what to install; a skip is an
//! explicit `PEERLAB_SKIP_*` opt-out, listed on the last line) and
//! `scripts/ipv8/venv.sh`'s venv location. No test here builds or runs the
//! suite: `scripts/test --preflight` stops after the check.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use peerlab_e2e::{Dir, workspace_root};

/// A program on this machine's PATH.
fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

/// A directory holding only `programs` (symlinks), to use as the whole PATH.
fn bin_with(dir: &Dir, programs: &[&str]) -> PathBuf {
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for p in programs {
        std::os::unix::fs::symlink(which(p), bin.join(p)).unwrap();
    }
    bin
}

/// `scripts/test --preflight` with nothing but `env` in its environment.
fn preflight(path: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(which("bash"))
        .arg(workspace_root().join("scripts/test"))
        .arg("--preflight")
        .env_clear()
        .env("PATH", path)
        .envs(env.iter().copied())
        .output()
        .expect("running scripts/test")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn scripts_test_without_the_tools_and_without_opt_outs_fails_naming_what_to_install() {
    let dir = Dir::new("preflight-missing");
    // No chromium, python3, apt-get or slurmctld on this PATH; a configured
    // Chromium that is not there counts as missing, not as found elsewhere.
    let bin = bin_with(&dir, &["bash", "id", "dirname"]);
    let out = preflight(&bin, &[("PEERLAB_CHROMIUM", "/nonexistent/chromium")]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needed in [
        "SLURM test cluster: run as root on Debian (scripts/slurm-local.sh installs slurm-wlm and munge",
        "or set PEERLAB_SKIP_SLURM=1",
        "chromium: PEERLAB_CHROMIUM=/nonexistent/chromium is not a file; install it (apt-get install chromium fonts-dejavu-core)",
        "or set PEERLAB_SKIP_BROWSER=1",
        "python3 with venv: apt-get install python3 python3-venv",
        "or set PEERLAB_SKIP_IPV8=1",
        "tcpdump: apt-get install tcpdump, or set PEERLAB_SKIP_TCPDUMP=1",
    ] {
        assert!(stderr.contains(needed), "lacks {needed:?}:\n{all}");
    }
    // An opt-out removes only its own tool from the list.
    let out = preflight(
        &bin,
        &[
            ("PEERLAB_CHROMIUM", "/nonexistent/chromium"),
            ("PEERLAB_SKIP_BROWSER", "1"),
        ],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(!all.contains("chromium:"), "{all}");
    assert!(all.contains("python3 with venv"), "{all}");
}

#[test]
fn scripts_test_with_opt_outs_passes_the_check_and_says_what_it_skips() {
    let dir = Dir::new("preflight-skips");
    let bin = bin_with(&dir, &["bash", "id", "dirname"]);
    let out = preflight(
        &bin,
        &[
            ("PEERLAB_SKIP_SLURM", "1"),
            ("PEERLAB_SKIP_BROWSER", "1"),
            ("PEERLAB_SKIP_IPV8", "1"),
            ("PEERLAB_SKIP_TMPFS", "1"),
            ("PEERLAB_SKIP_TCPDUMP", "1"),
        ],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().last(),
        Some(
            "scripts/test: skipped: SLURM tests (PEERLAB_SKIP_SLURM=1); \
             browser test (PEERLAB_SKIP_BROWSER=1); py-ipv8 tests (PEERLAB_SKIP_IPV8=1); \
             full-disk test (PEERLAB_SKIP_TMPFS=1); \
             packet capture tests (PEERLAB_SKIP_TCPDUMP=1)"
        ),
        "{all}"
    );
    // A skip is only ever an explicit opt-out: other values do not skip.
    let out = preflight(&bin, &[("PEERLAB_SKIP_SLURM", "yes")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn the_ipv8_venv_may_live_at_an_absolute_path() {
    let dir = Dir::new("ipv8-venv");
    // A venv whose python already "has" pyipv8, so nothing is installed.
    let venv = dir.path().join("venv");
    let python = dir.write("venv/bin/python", "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(&python, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = |venv: &Path| {
        let out = Command::new(which("bash"))
            .arg(workspace_root().join("scripts/ipv8/venv.sh"))
            .env("IPV8_VENV", venv)
            .output()
            .expect("running venv.sh");
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(run(&venv), format!("{}/bin/python", venv.display()));
    // A relative one is relative to the repository, as before.
    let rel = venv
        .strip_prefix("/")
        .map(|p| {
            let up = "../".repeat(workspace_root().components().count() - 1);
            PathBuf::from(up).join(p)
        })
        .unwrap();
    assert_eq!(
        run(&rel),
        format!(
            "{}/{}/bin/python",
            workspace_root().display(),
            rel.display()
        )
    );
}
