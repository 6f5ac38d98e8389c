//! End-to-end tests of what a run keeps when things go wrong around it:
//! a callback that hangs (named in `.err` and `summary.json`, its command in
//! the events), a plugin's `println!` (kept in `.err`), a console closed
//! early (`peerlab run … | head -1`), and a disk that fills during the run.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use peerlab_e2e::{Dir, fixture_plugins, peerlab_bin};
use serde_json::Value;

fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn latest(output: &Path) -> PathBuf {
    let l = output.join("latest");
    std::fs::canonicalize(&l).unwrap_or_else(|e| panic!("{}: {e}", l.display()))
}

fn status_of(summary: &Value, id: u64) -> (String, String) {
    let s = summary["instance_status"]
        .as_array()
        .expect("instance_status")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("instance {id} missing in {summary:#}"));
    (
        s["status"].as_str().unwrap_or_default().to_string(),
        s["error"].as_str().unwrap_or_default().to_string(),
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Wait (bounded) until `cond` holds.
fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_hung_callback_is_named_and_its_command_is_in_the_events() {
    let fixtures = fixture_plugins();
    let dir = Dir::new("hung-callback");
    dir.write(
        "h.scenario",
        "&module stuck\n@0 echo up\n@1 hang {1}\n@2 stop {2}\n@60 stop {1}\n",
    );
    let run = dir
        .peerlab()
        .args(["run", "h.scenario", "--instances", "2", "--timeout", "5"])
        .arg("--plugin-path")
        .arg(&fixtures)
        .run();
    run.expect_code(1);
    let run_dir = latest(&dir.path().join("output"));
    let summary = json(&run_dir.join("summary.json"));
    assert_eq!(summary["outcome"], "timed_out", "{summary:#}");
    let (status, error) = status_of(&summary, 1);
    assert_eq!(status, "timed_out", "{summary:#}");
    assert!(
        error.contains("hung in stuck.hang (") && error.contains("h.scenario:3)"),
        "{summary:#}"
    );
    assert_eq!(status_of(&summary, 2).0, "finished", "{summary:#}");
    let err = read(&run_dir.join("localhost/node001/00001.err"));
    assert!(
        err.contains("peerlab: instance 1 hung in stuck.hang ("),
        "{err}"
    );
    // The command was on disk before it ran, though the instance never
    // got to write anything after it.
    let events = read(&run_dir.join("localhost/node001/00001.events.jsonl"));
    let hang: Vec<Value> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"] == "command" && e["callback"] == "hang")
        .collect();
    assert_eq!(hang.len(), 1, "{events}");
    assert_eq!(hang[0]["module"], "stuck");
    assert_eq!(hang[0]["line"], 3);
}

#[test]
fn a_process_that_aborts_in_a_callback_is_reported_with_the_callback_and_the_panic() {
    let fixtures = fixture_plugins();
    let dir = Dir::new("abort-callback");
    dir.write(
        "d.scenario",
        "&module stuck\n@0 echo up\n@1 die {1}\n@2 stop\n",
    );
    let run = dir
        .peerlab()
        .args([
            "run",
            "d.scenario",
            "--instances",
            "2",
            "--time-scale",
            "0.5",
        ])
        .arg("--plugin-path")
        .arg(&fixtures)
        .env("RUST_BACKTRACE", "full")
        .run();
    run.expect_code(1);
    let run_dir = latest(&dir.path().join("output"));
    let summary = json(&run_dir.join("summary.json"));
    let (status, error) = status_of(&summary, 1);
    assert_eq!(status, "crashed", "{summary:#}");
    assert!(
        error.contains("signal 6") && error.contains("crashed in stuck.die ("),
        "{summary:#}"
    );
    assert_eq!(status_of(&summary, 2).0, "finished", "{summary:#}");
    let err = read(&run_dir.join("localhost/node001/00001.err"));
    // The panic's message, though 40 lines and a backtrace came after it.
    let cause = err
        .split_once("peerlab: the first error in its process's stderr:\n")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no first error in:\n{err}"));
    assert!(
        cause.starts_with("  thread '<unnamed>' ")
            && cause
                .lines()
                .next()
                .unwrap_or_default()
                .contains(" panicked at ")
            && cause.contains("\n  stuck: the die callback gave up\n"),
        "{err}"
    );
    assert!(err.contains("  stuck: cleaning up 39\n"), "{err}");
    assert!(
        err.contains("peerlab: instance 1 crashed in stuck.die ("),
        "{err}"
    );
}

#[test]
fn what_a_plugin_prints_to_stdout_is_kept_in_err() {
    let fixtures = fixture_plugins();
    let dir = Dir::new("plugin-stdout");
    dir.write("s.scenario", "&module stuck\n@0 say hello there\n@1 stop\n");
    // One instance per process: each instance's own .err.
    let run = dir
        .peerlab()
        .args([
            "run",
            "s.scenario",
            "--instances",
            "2",
            "--time-scale",
            "0.2",
        ])
        .arg("--plugin-path")
        .arg(&fixtures)
        .run();
    run.expect_code(0);
    let run_dir = latest(&dir.path().join("output"));
    for id in 1..=2 {
        let err = read(&run_dir.join(format!("localhost/node001/{id:05}.err")));
        assert_eq!(
            err,
            format!("stuck on instance {id} says hello there\n"),
            "instance {id}"
        );
    }
    // Three instances share a process (and its stdout): the first one's
    // .err holds every line, with a note saying so.
    let run = dir
        .peerlab()
        .args([
            "run",
            "s.scenario",
            "--instances",
            "3",
            "--time-scale",
            "0.2",
        ])
        .args(["--instances-per-process", "3", "--plugin-path"])
        .arg(&fixtures)
        .run();
    run.expect_code(0);
    let run_dir = latest(&dir.path().join("output"));
    let err = read(&run_dir.join("localhost/node001/00001.err"));
    assert!(
        err.starts_with(
            "peerlab: what the modules of process 1 (instances 1-3) print to stdout is written here\n"
        ),
        "{err}"
    );
    for id in 1..=3 {
        assert!(
            err.contains(&format!("stuck on instance {id} says hello there\n")),
            "{err}"
        );
    }
}

#[test]
fn a_run_whose_console_closes_early_still_completes() {
    // `peerlab run … 2>&1 | head -1`: the reader goes away after one line.
    let dir = Dir::new("closed-console");
    dir.write("c.scenario", "@0 echo up\n@2 echo down\n@3 stop\n");
    let mut child = Command::new(peerlab_bin())
        .current_dir(dir.path())
        .args([
            "run",
            "c.scenario",
            "--instances",
            "2",
            "--time-scale",
            "0.5",
        ])
        .env_remove("PEERLAB_PLUGIN_PATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting peerlab run");
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("peerlab: running"), "{first}");
    // Both pipes' read ends are closed here.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status}");
    let run_dir = latest(&dir.path().join("output"));
    let summary = json(&run_dir.join("summary.json"));
    assert_eq!(summary["outcome"], "passed", "{summary:#}");
    assert!(run_dir.join("junit.xml").is_file());
    for id in 1..=2 {
        assert_eq!(
            read(&run_dir.join(format!("localhost/node001/{id:05}.out"))),
            "up\ndown\n"
        );
    }
}

/// A small tmpfs of our own, unmounted when dropped. Mounting needs root:
/// where it fails the test fails too, naming what to do, unless the test was
/// opted out with `PEERLAB_SKIP_TMPFS=1` (then `None`, after a SKIPPED line),
/// as every test that needs something from the machine (scripts/test).
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: PathBuf, size: &str) -> Option<SmallDisk> {
        if std::env::var("PEERLAB_SKIP_TMPFS").as_deref() == Ok("1") {
            eprintln!("SKIPPED (PEERLAB_SKIP_TMPFS=1): the full-disk test");
            return None;
        }
        std::fs::create_dir_all(&at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk(at)),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                panic!(
                    "the full-disk test mounts a small tmpfs and could not: {why}; \
                     run the tests as root (scripts/test, .ci/run), or set \
                     PEERLAB_SKIP_TMPFS=1 to skip this test"
                )
            }
        }
    }

    /// Fill it: write until the disk says it is full.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0u8; 64 << 10];
        loop {
            if let Err(e) = f.write_all(&block) {
                assert_eq!(e.raw_os_error(), Some(28), "{e}");
                break;
            }
        }
        // Small writes into the last partial page, too.
        while f.write_all(&[0u8; 512]).is_ok() {}
        while f.write_all(&[0u8; 1]).is_ok() {}
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_disk_that_fills_during_the_run_loses_output_not_the_run() {
    let dir = Dir::new("full-disk");
    let Some(disk) = SmallDisk::mount(dir.path().join("disk"), "8m") else {
        return;
    };
    // A line longer than a page: it cannot fit in a page a file already has.
    let long = "x".repeat(8192);
    dir.write(
        "f.scenario",
        format!("@0 echo up\n@4 echo {long}\n@5 stop\n"),
    );
    let output = disk.0.join("output");
    let child = Command::new(peerlab_bin())
        .current_dir(dir.path())
        .args(["run", "f.scenario", "--instances", "2", "--time-scale", "1"])
        .arg("--output")
        .arg(&output)
        .env_remove("PEERLAB_PLUGIN_PATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting peerlab run");
    wait_for("both instances to print", Duration::from_secs(60), || {
        let Ok(run) = std::fs::canonicalize(output.join("latest")) else {
            return false;
        };
        (1..=2).all(|id| {
            std::fs::read_to_string(run.join(format!("localhost/node001/{id:05}.out")))
                .is_ok_and(|t| t == "up\n")
        })
    });
    disk.fill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let run_dir = latest(&output);
    // The instances were not aborted: each says what it lost, and where.
    for id in 1..=2 {
        let out_file = run_dir.join(format!("localhost/node001/{id:05}.out"));
        let lost = format!(
            "peerlab: instance {id} failed: output lost: 1 line (8193 bytes) could not be written to {}: No space left on device",
            out_file.display()
        );
        assert!(stderr.contains(&lost), "missing {lost:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("crashed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // summary.json and junit.xml were attempted; the last message names them.
    let last = stderr.lines().last().unwrap_or_default();
    let summary = run_dir.join("summary.json");
    assert!(
        last.starts_with("peerlab: error: the run ended but its results are incomplete: ")
            && last.contains(&format!(
                "cannot write {}: No space left on device",
                summary.display()
            ))
            && last.contains("junit.xml"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        !run_dir.join("summary.json.tmp").exists() && !run_dir.join("junit.xml.tmp").exists(),
        "temporary files left behind"
    );
}
