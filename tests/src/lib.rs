//! Helpers for peerlab's end-to-end tests: a temporary directory per test
//! ([`Dir`]), a command runner for the built `peerlab` binary
//! ([`TestCommand`]), paths to the workspace's build outputs, and the
//! fixture plugins under `tests/fixtures`, built once per test run into
//! their own target directory.
//!
//! These tests never build the main workspace: `scripts/test` runs
//! `cargo build --workspace --all-targets` first (cargo holds the main
//! target directory's lock while tests run, so building it from a test
//! would deadlock). Fixtures build with `--target-dir target/fixtures`.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The main target directory (`CARGO_TARGET_DIR` or `<root>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_relative() {
                workspace_root().join(d)
            } else {
                d
            }
        }
        None => workspace_root().join("target"),
    }
}

/// `target/debug`, where `scripts/test` put the binary and the plugins.
pub fn debug_dir() -> PathBuf {
    target_dir().join("debug")
}

/// The built `peerlab` binary; fails the test with what to run when missing.
pub fn peerlab_bin() -> PathBuf {
    let p = debug_dir().join("peerlab");
    assert!(
        p.is_file(),
        "{} is missing: build first with `cargo build --workspace --all-targets` \
         (scripts/test does this before running the tests)",
        p.display()
    );
    p
}

/// A plugin library the workspace build produced (`target/debug/lib<name>.so`).
pub fn workspace_plugin(lib_name: &str) -> PathBuf {
    let p = debug_dir().join(format!("lib{lib_name}.so"));
    assert!(
        p.is_file(),
        "{} is missing: build first with `cargo build --workspace --all-targets` \
         (scripts/test does this before running the tests)",
        p.display()
    );
    p
}

/// The target directory fixture plugins build into.
pub fn fixtures_target_dir() -> PathBuf {
    target_dir().join("fixtures")
}

/// Run `cargo build` for an out-of-workspace crate into `target/fixtures`.
/// Copies the workspace's `Cargo.lock` in first when the crate has none, so
/// fixture builds use the same dependency versions and need no index update.
pub fn cargo_build_fixture(manifest: &Path) -> Result<(), String> {
    cargo_fixture("build", manifest)
}

/// Run `cargo <subcommand>` (`build`, `test`) for an out-of-workspace crate
/// into `target/fixtures`, as [`cargo_build_fixture`] does.
pub fn cargo_fixture(subcommand: &str, manifest: &Path) -> Result<(), String> {
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let lock = dir.join("Cargo.lock");
    if !lock.exists() {
        std::fs::copy(workspace_root().join("Cargo.lock"), &lock)
            .map_err(|e| format!("copying Cargo.lock to {}: {e}", dir.display()))?;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .arg(subcommand)
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(fixtures_target_dir())
        .env_remove("CARGO_TARGET_DIR")
        .env(
            "CARGO_BUILD_JOBS",
            std::env::var("CARGO_BUILD_JOBS").unwrap_or_else(|_| "2".into()),
        )
        .output()
        .map_err(|e| format!("running cargo: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo {subcommand} --manifest-path {} failed ({}):\n{}\n{}",
            manifest.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The fixture plugins of `tests/fixtures`, built once per test process.
/// Returns the directory holding `libfrozen.so`, `libincompatible.so`,
/// `libmismatch.so`, `libnotaplugin.so` and `libstuck.so`.
pub fn fixture_plugins() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = BUILT.get_or_init(|| {
        cargo_build_fixture(&workspace_root().join("tests/fixtures/Cargo.toml"))
            .map(|()| fixtures_target_dir().join("debug"))
    });
    match r {
        Ok(p) => p.clone(),
        Err(e) => panic!("building the fixture plugins failed: {e}"),
    }
}

/// A temporary directory for one test, removed when dropped.
pub struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    /// A new empty directory.
    pub fn new(test_name: &str) -> Dir {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("peerlab-{test_name}-"))
            .tempdir()
            .expect("creating a temporary directory");
        Dir { tmp }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Write a file (creating parent directories); returns its path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("creating directories");
        }
        std::fs::write(&p, contents).expect("writing a file");
        p
    }

    /// Read a file as text.
    pub fn read(&self, rel: &str) -> String {
        let p = self.path().join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
    }

    /// A `peerlab` command running in this directory.
    pub fn peerlab(&self) -> TestCommand {
        TestCommand::new(self.path())
    }
}

/// A `peerlab` invocation.
pub struct TestCommand {
    cmd: Command,
}

impl TestCommand {
    /// `peerlab` with `cwd` as working directory and no inherited plugin path.
    pub fn new(cwd: &Path) -> TestCommand {
        let mut cmd = Command::new(peerlab_bin());
        cmd.current_dir(cwd)
            .env_remove("PEERLAB_PLUGIN_PATH")
            .env_remove("RUST_LOG");
        TestCommand { cmd }
    }

    /// Add one argument.
    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.arg(a);
        self
    }

    /// Add arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Set an environment variable.
    pub fn env(&mut self, k: &str, v: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env(k, v);
        self
    }

    /// Run it and capture everything.
    pub fn run(&mut self) -> Run {
        let out: Output = self.cmd.output().expect("running peerlab");
        Run {
            command: format!("{:?}", self.cmd),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// What a `peerlab` invocation did.
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\nexit code: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// Assert the exit code, printing everything when it differs.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code from\n{self}");
        self
    }

    /// Assert stdout contains `s`.
    pub fn stdout_has(&self, s: &str) -> &Self {
        assert!(self.stdout.contains(s), "stdout lacks {s:?} in\n{self}");
        self
    }

    /// Assert stderr contains `s`.
    pub fn stderr_has(&self, s: &str) -> &Self {
        assert!(self.stderr.contains(s), "stderr lacks {s:?} in\n{self}");
        self
    }

    /// The stdout lines starting with `[instance] `, without that prefix.
    pub fn instance_lines(&self, instance: u64) -> Vec<String> {
        let prefix = format!("[{instance}] ");
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }
}

/// The plugin-api version this workspace's host is built against (read
/// from `plugin-api/Cargo.toml`, so tests follow version bumps).
pub fn host_api_version() -> String {
    let manifest = workspace_root().join("plugin-api/Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    text.lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no version line in {}", manifest.display()))
        .to_string()
}

/// `text` with `{API}` replaced by [`host_api_version`].
pub fn with_api(text: &str) -> String {
    text.replace("{API}", &host_api_version())
}
