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
//! A binary or workspace plugin older than a source it was built from
//! (cargo's dep-info files say which) fails the test that would run it,
//! with the command to rebuild, instead of testing an old build.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub mod slurm;

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

/// The built `peerlab` binary; fails the test with what to run when it is
/// missing, or older than a source it was built from (or a workspace plugin
/// beside it is: the binary loads them from there).
pub fn peerlab_bin() -> PathBuf {
    let p = debug_dir().join("peerlab");
    assert!(
        p.is_file(),
        "{} is missing: build first with `cargo build --workspace --all-targets` \
         (scripts/test does this before running the tests)",
        p.display()
    );
    assert_workspace_fresh();
    p
}

/// A plugin library the workspace build produced (`target/debug/lib<name>.so`),
/// checked as [`peerlab_bin`] checks the binary.
pub fn workspace_plugin(lib_name: &str) -> PathBuf {
    let p = debug_dir().join(format!("lib{lib_name}.so"));
    assert!(
        p.is_file(),
        "{} is missing: build first with `cargo build --workspace --all-targets` \
         (scripts/test does this before running the tests)",
        p.display()
    );
    assert_workspace_fresh();
    p
}

/// Fails when `target/debug/peerlab` or a workspace plugin
/// (`target/debug/lib*.so` with cargo's dep-info file beside it) is older
/// than a source it was built from: `cargo test -p peerlab-e2e` builds
/// neither, and these tests would test an old build. Checked once per test
/// process.
fn assert_workspace_fresh() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let r = CHECKED.get_or_init(|| {
        let dir = debug_dir();
        let mut artifacts = vec![dir.join("peerlab")];
        if let Ok(rd) = std::fs::read_dir(&dir) {
            let mut libs: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|e| e == "so") && p.with_extension("d").is_file()
                })
                .collect();
            libs.sort();
            artifacts.extend(libs);
        }
        let stale: Vec<String> = artifacts
            .iter()
            .filter(|a| a.is_file())
            .filter_map(|a| stale_source(a).err())
            .collect();
        if stale.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}\nrebuild with `cargo build --workspace --all-targets` (scripts/test does; \
                 `cargo test -p peerlab-e2e` alone builds neither the binary nor the plugins)",
                stale.join("\n")
            ))
        }
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// `Err` naming the first source that changed after `artifact` was built,
/// from cargo's dep-info file beside it (`<artifact without extension>.d`,
/// `target: source source ...` lines, spaces escaped with `\`). An artifact
/// without one is taken as fresh. Git's own files (`.git/HEAD`, refs) are
/// not sources: a commit alone leaves the binary current.
pub fn stale_source(artifact: &Path) -> Result<(), String> {
    let built = std::fs::metadata(artifact)
        .and_then(|m| m.modified())
        .map_err(|e| format!("{}: {e}", artifact.display()))?;
    let Ok(dep_info) = std::fs::read_to_string(artifact.with_extension("d")) else {
        return Ok(());
    };
    for line in dep_info.lines() {
        let Some((_, deps)) = line.split_once(": ") else {
            continue;
        };
        let mut words = Vec::new();
        let mut word = String::new();
        let mut chars = deps.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => word.extend(chars.next()),
                ' ' => words.push(std::mem::take(&mut word)),
                _ => word.push(c),
            }
        }
        words.push(word);
        // The host's build script reads git's HEAD and refs to embed the
        // commit in `peerlab --version`: a commit changes no code, so it
        // does not make the binary stale.
        let code = |w: &&String| !w.is_empty() && !w.contains("/.git/");
        for source in words.iter().filter(code).map(Path::new) {
            match std::fs::metadata(source).and_then(|m| m.modified()) {
                Ok(changed) if changed > built => {
                    return Err(format!(
                        "{} is older than {}, changed after the build",
                        artifact.display(),
                        source.display()
                    ));
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(format!(
                        "{} was built from {}, which is gone ({e})",
                        artifact.display(),
                        source.display()
                    ));
                }
            }
        }
    }
    Ok(())
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

    /// The newest run folder under this directory's `output/` (where
    /// `output/latest` points), as an absolute path.
    pub fn latest_run(&self) -> PathBuf {
        let link = self.path().join("output/latest");
        std::fs::canonicalize(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn set_mtime(p: &Path, t: SystemTime) {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn an_artifact_older_than_its_sources_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("my src.rs");
        let other = dir.path().join("b.rs");
        let lib = dir.path().join("libx.so");
        for p in [&src, &other, &lib] {
            std::fs::write(p, "").unwrap();
        }
        std::fs::write(
            dir.path().join("libx.d"),
            format!(
                "{}: {} {}\n\n{}: {}\n",
                lib.display(),
                src.display().to_string().replace(' ', "\\ "),
                other.display(),
                dir.path().join("libx.rlib").display(),
                other.display()
            ),
        )
        .unwrap();
        let t0 = SystemTime::now() - Duration::from_secs(100);
        set_mtime(&src, t0);
        set_mtime(&other, t0);
        set_mtime(&lib, t0 + Duration::from_secs(10));
        assert_eq!(stale_source(&lib), Ok(()));
        set_mtime(&src, t0 + Duration::from_secs(20));
        assert_eq!(
            stale_source(&lib),
            Err(format!(
                "{} is older than {}, changed after the build",
                lib.display(),
                src.display()
            ))
        );
        set_mtime(&src, t0);
        std::fs::remove_file(&other).unwrap();
        let gone = stale_source(&lib).unwrap_err();
        assert!(gone.contains("which is gone"), "{gone}");
        // Without dep-info there is nothing to compare with.
        std::fs::remove_file(dir.path().join("libx.d")).unwrap();
        assert_eq!(stale_source(&lib), Ok(()));
        // A commit after the build (git's refs, read by the host's build
        // script for `--version`) does not make it stale; code does.
        let git = dir.path().join(".git/refs/heads");
        std::fs::create_dir_all(&git).unwrap();
        let head = git.join("main");
        std::fs::write(&head, "").unwrap();
        std::fs::write(&other, "").unwrap();
        set_mtime(&other, t0);
        set_mtime(&head, t0 + Duration::from_secs(30));
        std::fs::write(
            dir.path().join("libx.d"),
            format!(
                "{}: {} {}\n",
                lib.display(),
                head.display(),
                other.display()
            ),
        )
        .unwrap();
        assert_eq!(stale_source(&lib), Ok(()));
        set_mtime(&other, t0 + Duration::from_secs(30));
        assert!(
            stale_source(&lib).is_err(),
            "a source newer than the build still counts"
        );
    }
}
