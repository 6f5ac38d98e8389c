//! End-to-end tests of how a run ends when it is told to stop or when
//! `peerlab run` itself dies: SIGINT, SIGTERM and SIGHUP all take the
//! "interrupted" path on the local and the simulated runner (outputs kept,
//! `summary.json` and `junit.xml` written) unless the run was started with
//! the signal ignored (`nohup`), and a `peerlab run` killed with
//! SIGKILL takes every instance process with it, even one that no longer
//! answers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use peerlab_e2e::{Dir, fixture_plugins, peerlab_bin};
use serde_json::Value;

fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Wait (bounded) until `cond` holds; runs report progress through files.
fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `peerlab run ARGS` in `dir`, its stderr going to `dir/stderr.txt` (a
/// file, not a pipe, so waiting for the exit can be bounded).
fn spawn_run(dir: &Dir, args: &[&str]) -> Child {
    let stderr = std::fs::File::create(dir.path().join("stderr.txt")).unwrap();
    Command::new(peerlab_bin())
        .current_dir(dir.path())
        .arg("run")
        .args(args)
        .env_remove("PEERLAB_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("starting peerlab run")
}

/// Wait (bounded) for `child` to exit; kills it if it does not.
fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("peerlab run did not end within {limit:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn out_has(run: &Path, host: &str, id: u32, text: &str) -> bool {
    std::fs::read_to_string(run.join(format!("{host}/node001/{id:05}.out")))
        .is_ok_and(|t| t.lines().any(|l| l == text))
}

fn send(child: &Child, signal: i32) {
    // SAFETY: signalling the process this test started.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// The instance processes (`peerlab instance --run-dir …`) whose run
/// folder is `run`, found by scanning /proc: pid and state letter.
fn instance_processes(run: &Path) -> Vec<(i32, char)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.get(1) != Some(&&b"instance"[..]) {
            continue;
        }
        let Some(i) = args.iter().position(|a| *a == b"--run-dir") else {
            continue;
        };
        let Some(dir) = args.get(i + 1) else { continue };
        let dir = Path::new(std::str::from_utf8(dir).unwrap_or_default());
        let dir = match std::fs::read_link(entry.path().join("cwd")) {
            Ok(cwd) => cwd.join(dir),
            Err(_) => continue,
        };
        if std::fs::canonicalize(&dir).is_ok_and(|d| d == run) {
            // The state letter follows the parenthesised command name.
            let state = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.chars().next()))
                .flatten()
                .unwrap_or('?');
            found.push((pid, state));
        }
    }
    found
}

/// Kills whatever instance processes of `run` are left when the test ends
/// (a failing test must not leave busy orphans behind).
struct Reaper(PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        for (pid, _) in instance_processes(&self.0) {
            // SAFETY: plain kill of a process started by this test's run.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Start a local run of 3 instances that would last a minute, wait until
/// each has printed, send `signal`, and check the run ended as interrupted
/// with everything written so far kept.
fn local_run_stops_on(signal: i32, name: &str) {
    let dir = Dir::new(name);
    dir.write("i.scenario", "@0 echo up\n@60 stop\n");
    let mut child = spawn_run(&dir, &["i.scenario", "--instances", "3", "--no-plots"]);
    wait_for("the run folder", Duration::from_secs(60), || {
        dir.path().join("output/latest").exists()
    });
    let run = dir.latest_run();
    let _reaper = Reaper(run.clone());
    wait_for("every instance to print", Duration::from_secs(60), || {
        (1..=3).all(|id| out_has(&run, "localhost", id, "up"))
    });
    let pids: Vec<i32> = instance_processes(&run).iter().map(|p| p.0).collect();
    assert_eq!(pids.len(), 3, "three instance processes run");
    send(&child, signal);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let stderr = dir.read("stderr.txt");
    assert_eq!(status.code(), Some(1), "{status}: {stderr}");
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["outcome"], "interrupted", "{summary:#}");
    for s in summary["instance_status"].as_array().unwrap() {
        assert_eq!(s["status"], "interrupted", "{summary:#}");
    }
    for id in 1..=3 {
        assert!(out_has(&run, "localhost", id, "up"), "outputs are kept");
    }
    let junit = std::fs::read_to_string(run.join("junit.xml")).expect("junit.xml written");
    assert!(junit.contains("<testsuite"), "{junit}");
    assert!(
        stderr.contains("INTERRUPTED"),
        "the run's last lines say how it ended: {stderr}"
    );
    wait_for(
        "the instance processes to be gone",
        Duration::from_secs(30),
        || {
            instance_processes(&run)
                .iter()
                .all(|(_, state)| *state == 'Z')
        },
    );
}

#[test]
fn sigterm_stops_a_local_run_as_interrupted_and_keeps_its_outputs() {
    local_run_stops_on(libc::SIGTERM, "sigterm");
}

#[test]
fn sighup_stops_a_local_run_as_interrupted_and_keeps_its_outputs() {
    local_run_stops_on(libc::SIGHUP, "sighup");
}

#[test]
fn a_run_started_with_sighup_ignored_as_nohup_does_goes_on_after_sighup() {
    use std::os::unix::process::CommandExt;
    let dir = Dir::new("nohup");
    dir.write("n.scenario", "@0 echo up\n@3 echo done\n@3 stop\n");
    let stderr = std::fs::File::create(dir.path().join("stderr.txt")).unwrap();
    let mut cmd = Command::new(peerlab_bin());
    cmd.current_dir(dir.path())
        .args(["run", "n.scenario", "--instances", "2", "--no-plots"])
        .env_remove("PEERLAB_PLUGIN_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    // SAFETY: signal(2) is async-signal-safe; it runs in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("starting peerlab run");
    wait_for("the run folder", Duration::from_secs(60), || {
        dir.path().join("output/latest").exists()
    });
    let run = dir.latest_run();
    let _reaper = Reaper(run.clone());
    wait_for("every instance to print", Duration::from_secs(60), || {
        (1..=2).all(|id| out_has(&run, "localhost", id, "up"))
    });
    send(&child, libc::SIGHUP);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let stderr = dir.read("stderr.txt");
    assert_eq!(status.code(), Some(0), "{status}: {stderr}");
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["outcome"], "passed", "{summary:#}");
    for id in 1..=2 {
        assert!(out_has(&run, "localhost", id, "done"), "the run went on");
    }
}

/// Start a simulated run that would take hours of wall time (the overlay
/// walks for 250 virtual hours), wait until every instance has printed,
/// send `signal`, and check the run ended as interrupted with its records.
fn simulated_run_stops_on(signal: i32, name: &str) {
    let dir = Dir::new(name);
    dir.write(
        "s.scenario",
        "&module dispersy\n@@ isolate_community C\n@0 start_session\n@0 introduce_peers\n@0 echo up\n@900000 stop\n",
    );
    let mut child = spawn_run(
        &dir,
        &[
            "s.scenario",
            "--instances",
            "8",
            "--simulate",
            "--timeout",
            "1000000",
            "--no-plots",
        ],
    );
    wait_for("the run folder", Duration::from_secs(60), || {
        dir.path().join("output/latest").exists()
    });
    let run = dir.latest_run();
    wait_for("every instance to print", Duration::from_secs(60), || {
        (1..=8).all(|id| out_has(&run, "simulated", id, "up"))
    });
    send(&child, signal);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let stderr = dir.read("stderr.txt");
    assert_eq!(status.code(), Some(1), "{status}: {stderr}");
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["outcome"], "interrupted", "{summary:#}");
    for s in summary["instance_status"].as_array().unwrap() {
        assert_eq!(s["status"], "interrupted", "{summary:#}");
        assert!(
            s["error"]
                .as_str()
                .unwrap_or_default()
                .contains("stopped by"),
            "{summary:#}"
        );
    }
    for id in 1..=8 {
        assert!(out_has(&run, "simulated", id, "up"), "outputs are kept");
    }
    let junit = std::fs::read_to_string(run.join("junit.xml")).expect("junit.xml written");
    assert!(junit.contains("<testsuite"), "{junit}");
    assert!(stderr.contains("INTERRUPTED"), "{stderr}");
    // One line for the eight, not one per instance (5,000 lines at scale).
    let about: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" interrupted: "))
        .collect();
    let by = if signal == libc::SIGINT {
        "Ctrl-C"
    } else {
        "SIGTERM"
    };
    assert_eq!(about.len(), 1, "{stderr}");
    let want = format!(
        "peerlab: 8 instances interrupted: stopped by {by} (ids 1, 2, 3, 4, 5 and 3 more; each one's status is in "
    );
    assert!(
        about[0].starts_with(&want) && about[0].ends_with("summary.json)"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_stops_a_simulated_run_as_interrupted_and_keeps_its_outputs() {
    simulated_run_stops_on(libc::SIGINT, "sim-sigint");
}

#[test]
fn sigterm_stops_a_simulated_run_as_interrupted_and_keeps_its_outputs() {
    simulated_run_stops_on(libc::SIGTERM, "sim-sigterm");
}

#[test]
fn killing_peerlab_run_takes_every_instance_process_with_it() {
    let dir = Dir::new("orphans");
    // Instance 1 gets stuck in a callback that never returns: it can no
    // longer notice that the sync server went away.
    dir.write(
        "i.scenario",
        "&module stuck\n@0 echo up\n@1 stall {1}\n@60 stop\n",
    );
    let plugins = fixture_plugins();
    let mut child = spawn_run(
        &dir,
        &[
            "i.scenario",
            "--instances",
            "3",
            "--no-plots",
            "--plugin-path",
            plugins.to_str().unwrap(),
        ],
    );
    wait_for("the run folder", Duration::from_secs(60), || {
        dir.path().join("output/latest").exists()
    });
    let run = dir.latest_run();
    let _reaper = Reaper(run.clone());
    wait_for(
        "instance 1 to be stuck and the others to print",
        Duration::from_secs(60),
        || {
            out_has(&run, "localhost", 1, "stalling")
                && (2..=3).all(|id| out_has(&run, "localhost", id, "up"))
        },
    );
    let processes = instance_processes(&run);
    assert_eq!(processes.len(), 3, "three instance processes run");
    send(&child, libc::SIGKILL);
    let _ = child.wait();
    wait_for(
        "every instance process to die with peerlab run",
        Duration::from_secs(30),
        || {
            instance_processes(&run)
                .iter()
                .all(|(_, state)| *state == 'Z')
        },
    );
}
