//! Gumby's post-processing hook: runs the config's `post_process_cmd` in
//! the run folder after the built-in report, with its output captured to
//! `post_process.log`, and says how it ended ([`HookOutcome`]).
//!
//! Must not: decide the run's verdict (a failing command is reported, never
//! fatal to the run) or read what the command wrote (the loader lists
//! `plots/extra/`). The command runs through `sh -c`, as Gumby ran it,
//! with `OUTPUT_DIR` (Gumby's name) and `PEERLAB_RUN_DIR` set to the run
//! folder; peerlab waits for it.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The file the command's stdout and stderr go to, in the run folder.
pub const POST_PROCESS_LOG: &str = "post_process.log";

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookOutcome {
    pub command: String,
    /// Its exit status; `None` when it did not exit normally (a signal)
    /// or could not be started.
    pub exit_code: Option<i32>,
    /// Whether it exited with status 0.
    pub ok: bool,
    /// What went wrong, in words (`exited with status 3`, `killed by
    /// signal 9`, `cannot start sh: ...`); empty when it succeeded.
    pub error: String,
    /// `post_process.log`, relative to the run folder.
    pub log: String,
    #[serde(skip)]
    pub elapsed: Duration,
}

/// Runs `command` in `run_dir` and waits for it.
pub fn run(run_dir: &Path, command: &str) -> HookOutcome {
    let started = Instant::now();
    let mut out = HookOutcome {
        command: command.to_string(),
        exit_code: None,
        ok: false,
        error: String::new(),
        log: POST_PROCESS_LOG.to_string(),
        elapsed: Duration::ZERO,
    };
    let log_path = run_dir.join(POST_PROCESS_LOG);
    let log = match fs::File::create(&log_path) {
        Ok(f) => f,
        Err(e) => {
            out.error = format!("cannot create {}: {e}", log_path.display());
            return out;
        }
    };
    let err = match log.try_clone() {
        Ok(f) => f,
        Err(e) => {
            out.error = format!("cannot share {}: {e}", log_path.display());
            return out;
        }
    };
    let abs = run_dir
        .canonicalize()
        .unwrap_or_else(|_| run_dir.to_path_buf());
    let status = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(run_dir)
        .env("OUTPUT_DIR", &abs)
        .env("PEERLAB_RUN_DIR", &abs)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .status();
    out.elapsed = started.elapsed();
    match status {
        Err(e) => out.error = format!("cannot start sh: {e}"),
        Ok(s) => {
            out.exit_code = s.code();
            out.ok = s.success();
            if !s.success() {
                out.error = match s.code() {
                    Some(c) => format!("exited with status {c}"),
                    None => {
                        use std::os::unix::process::ExitStatusExt;
                        match s.signal() {
                            Some(sig) => format!("killed by signal {sig}"),
                            None => "ended abnormally".into(),
                        }
                    }
                };
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_runs_in_the_run_folder_and_its_failure_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let ok = run(
            tmp.path(),
            "echo hello; pwd > where.txt; test -n \"$OUTPUT_DIR\"",
        );
        assert!(ok.ok, "{ok:?}");
        assert_eq!(ok.exit_code, Some(0));
        let log = fs::read_to_string(tmp.path().join(POST_PROCESS_LOG)).unwrap();
        assert_eq!(log, "hello\n");
        let here = fs::read_to_string(tmp.path().join("where.txt")).unwrap();
        assert_eq!(
            Path::new(here.trim()),
            tmp.path().canonicalize().unwrap().as_path()
        );

        let bad = run(tmp.path(), "echo oops >&2; exit 3");
        assert!(!bad.ok);
        assert_eq!(bad.exit_code, Some(3));
        assert_eq!(bad.error, "exited with status 3");
        let log = fs::read_to_string(tmp.path().join(POST_PROCESS_LOG)).unwrap();
        assert_eq!(log, "oops\n");
    }
}
