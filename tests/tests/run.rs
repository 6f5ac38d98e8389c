//! End-to-end tests of `peerlab run` with the local runner: outputs in
//! place, commands at the right (scaled) times on the right instances,
//! crashes, hangs, Ctrl-C, failing callbacks, and many instances per process.
//! Only built-in modules are used, so these tests need no plugin.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use peerlab_e2e::{Dir, peerlab_bin};
use serde_json::Value;

fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn status_of(summary: &Value, id: u64) -> (String, Option<String>) {
    let s = summary["instance_status"]
        .as_array()
        .expect("instance_status")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("instance {id} missing in {summary:#}"));
    (
        s["status"].as_str().unwrap_or_default().to_string(),
        s["error"].as_str().map(str::to_string),
    )
}

fn out_lines(run: &Path, id: u32) -> Vec<String> {
    let p = run.join(format!("localhost/node001/{id:05}.out"));
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

/// Wait (bounded) until `cond` holds; the runs under test report progress
/// only through files, so we wait on them.
fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_run(dir: &Dir, args: &[&str]) -> Child {
    Command::new(peerlab_bin())
        .current_dir(dir.path())
        .arg("run")
        .args(args)
        .env_remove("PEERLAB_PLUGIN_PATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting peerlab run")
}

/// The pid of an instance process, from its resources file.
fn process_pid(dir: &Dir, process: u32) -> i32 {
    let mut pid = 0;
    wait_for(
        "the process's resources file",
        Duration::from_secs(60),
        || {
            let Ok(latest) = std::fs::canonicalize(dir.path().join("output/latest")) else {
                return false;
            };
            let p = latest.join(format!(
                "localhost/node001/process{process:03}.resources.jsonl"
            ));
            let Ok(text) = std::fs::read_to_string(p) else {
                return false;
            };
            match text
                .lines()
                .next()
                .and_then(|l| serde_json::from_str::<Value>(l).ok())
            {
                Some(v) => {
                    pid = v["pid"].as_i64().unwrap_or(0) as i32;
                    pid > 0
                }
                None => false,
            }
        },
    );
    pid
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

const SCENARIO_5: &str = "\
&module gumby.modules.dispersy_module.DispersyModule

@@ isolate_community TestCommunity
@0:01 start_session
@0:02 introduce_peers
@0:02 annotate start-experiment
@0:04 echo instance $MY_GREETING
@0:06 stop_session
@0:07 stop
";

const CONF_5: &str = "\
experiment_name = \"tutorial_style\"
experiment_time = 30
sync_subscribers_amount = 5
my_greeting = hello
local_instance_cmd = \"process_guard.py -c launch_scenario.py\"
scenario_file = 'five.scenario'
tracker_cmd = 'run_tracker.sh'
tracker_port = __unique_port__
experiment_server_cmd = 'experiment_server.py'
sync_host = 127.0.0.1
sync_port = __unique_port__
sync_experiment_start_delay = 1
use_local_venv = FALSE
";

#[test]
fn a_tutorial_style_conf_runs_five_instances_and_writes_every_output() {
    let dir = Dir::new("five");
    dir.write("five.scenario", SCENARIO_5);
    dir.write("five.conf", CONF_5);
    let run = dir
        .peerlab()
        .args(["run", "five.conf", "--time-scale", "0.25", "--seed", "42"])
        .run();
    run.expect_code(0);
    let run_dir = dir.latest_run();
    let summary = json(&run_dir.join("summary.json"));
    assert_eq!(summary["outcome"], "passed", "{summary:#}");
    assert_eq!(summary["seed"], 42);
    assert_eq!(summary["instances"], 5);
    for id in 1..=5u32 {
        assert_eq!(status_of(&summary, u64::from(id)).0, "finished");
        assert_eq!(out_lines(&run_dir, id), ["instance hello"]);
        let base = run_dir.join(format!("localhost/node001/{id:05}"));
        for ext in ["err", "stats.jsonl", "events.jsonl"] {
            assert!(base.with_extension(ext).is_file(), "missing {ext} of {id}");
        }
        // introduce_peers filled the overlay's table: the sampled gauge says 4 peers.
        let stats = std::fs::read_to_string(base.with_extension("stats.jsonl")).unwrap();
        let peers = stats
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["counters"]["peers"].as_f64())
            .fold(0.0, f64::max);
        assert_eq!(peers, 4.0, "instance {id} stats:\n{stats}");
        let events = std::fs::read_to_string(base.with_extension("events.jsonl")).unwrap();
        assert!(events.contains(r#""text":"start-experiment""#), "{events}");
    }
    let record = json(&run_dir.join("run.json"));
    assert_eq!(record["instances"], 5);
    assert_eq!(record["seed"], 42);
    assert!(run_dir.join("experiment.scenario").is_file());
    assert!(run_dir.join("experiment.conf").is_file());
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert!(junit.contains(r#"tests="5" failures="0""#), "{junit}");
    assert!(run.stderr.contains("PASSED"), "{run}");
}

#[test]
fn a_time_scaled_two_minute_scenario_fires_in_order_on_the_right_instances() {
    let dir = Dir::new("timescale");
    dir.write(
        "two.scenario",
        "\
@0:10 echo a
@0:30 echo b {1}
@1:00 echo c {!1}
@1:00 echo d
@1:30 echo e {2-3}
@2:00 stop
",
    );
    let run = dir
        .peerlab()
        .args([
            "run",
            "two.scenario",
            "--instances",
            "3",
            "--time-scale",
            "0.05",
        ])
        .run();
    run.expect_code(0);
    let run_dir = dir.latest_run();
    assert_eq!(out_lines(&run_dir, 1), ["a", "b", "d"]);
    assert_eq!(out_lines(&run_dir, 2), ["a", "c", "d", "e"]);
    assert_eq!(out_lines(&run_dir, 3), ["a", "c", "d", "e"]);
    // Each command ran at its scenario time, scaled: t (wall) / 0.05.
    let events =
        std::fs::read_to_string(run_dir.join("localhost/node001/00002.events.jsonl")).unwrap();
    let times: Vec<f64> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] == "command")
        .map(|v| v["t"].as_f64().unwrap() / 0.05)
        .collect();
    // In order, never early (25 ms of wall time for rounding), and late by
    // at most 30 s of wall time (a loaded machine delays commands; an
    // unscaled run would be minutes late).
    let expected = [10.0, 60.0, 60.0, 90.0, 120.0];
    assert_eq!(times.len(), expected.len(), "{events}");
    assert!(times.is_sorted(), "commands out of order:\n{events}");
    for (got, want) in times.iter().zip(expected) {
        assert!(
            *got >= want - 0.5 && *got < want + 600.0,
            "command due at {want} s ran at {got} s:\n{events}"
        );
    }
    let summary = json(&run_dir.join("summary.json"));
    assert_eq!(summary["time_scale"], 0.05);
}

#[test]
fn a_killed_instance_is_reported_with_its_signal_and_the_run_ends() {
    let dir = Dir::new("crash");
    // Instance 2 only stops at 600 s (150 s of wall time), so the kill
    // lands before its end however loaded the machine is; the others end at 20.
    dir.write("c.scenario", "@0 echo up\n@20 stop {1,3}\n@600 stop {2}\n");
    let child = spawn_run(
        &dir,
        &["c.scenario", "--instances", "3", "--time-scale", "0.25"],
    );
    let pid = process_pid(&dir, 2);
    // SAFETY: plain kill of a process this test started (indirectly).
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let run_dir = dir.latest_run();
    let summary = json(&run_dir.join("summary.json"));
    let (status, error) = status_of(&summary, 2);
    assert_eq!(status, "crashed", "{summary:#}");
    assert!(
        error.unwrap_or_default().contains("signal 9"),
        "{summary:#}"
    );
    assert_eq!(status_of(&summary, 1).0, "finished");
    assert_eq!(status_of(&summary, 3).0, "finished");
    let err = std::fs::read_to_string(run_dir.join("localhost/node001/00002.err")).unwrap();
    assert!(err.contains("ended abnormally"), "{err}");
    assert!(stderr.contains("instance 2 crashed"), "{stderr}");
}

#[test]
fn a_hung_instance_is_ended_by_the_timeout() {
    let dir = Dir::new("hang");
    // Instance 2 ends at 2 s; instance 1 would run to 60 s but is stopped
    // (SIGSTOP) whenever the test gets to it, and the 5 s timeout ends it.
    dir.write("h.scenario", "@0 echo up\n@2 stop {2}\n@60 stop {1}\n");
    let child = spawn_run(
        &dir,
        &[
            "h.scenario",
            "--instances",
            "2",
            "--timeout",
            "5",
            "--time-scale",
            "1",
        ],
    );
    let pid = process_pid(&dir, 1);
    // A stopped process neither reports nor answers the abort: a hang.
    // SAFETY: plain kill of a process this test started (indirectly).
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let summary = json(&dir.latest_run().join("summary.json"));
    assert_eq!(summary["outcome"], "timed_out", "{summary:#}");
    assert_eq!(summary["timed_out"], true);
    let (status, error) = status_of(&summary, 1);
    assert_eq!(status, "timed_out", "{summary:#}");
    assert!(
        error
            .unwrap_or_default()
            .contains("instances 1 still running"),
        "{summary:#}"
    );
    assert_eq!(status_of(&summary, 2).0, "finished");
    assert!(!alive(pid), "the hung process {pid} was not killed");
}

#[test]
fn ctrl_c_stops_every_instance_and_keeps_what_was_written() {
    let dir = Dir::new("ctrlc");
    dir.write("i.scenario", "@0 echo up\n@60 stop\n");
    let child = spawn_run(&dir, &["i.scenario", "--instances", "3"]);
    let pids: Vec<i32> = (1..=3).map(|p| process_pid(&dir, p)).collect();
    let latest = std::fs::canonicalize(dir.path().join("output/latest")).unwrap();
    wait_for("every instance to print", Duration::from_secs(60), || {
        (1..=3).all(|id| {
            std::fs::read_to_string(latest.join(format!("localhost/node001/{id:05}.out")))
                .is_ok_and(|t| t.contains("up"))
        })
    });
    // SAFETY: interrupting the run this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = json(&latest.join("summary.json"));
    assert_eq!(summary["outcome"], "interrupted", "{summary:#}");
    for id in 1..=3u32 {
        assert_eq!(status_of(&summary, u64::from(id)).0, "interrupted");
        assert_eq!(out_lines(&latest, id), ["up"], "outputs are kept");
    }
    for pid in pids {
        assert!(!alive(pid), "instance process {pid} survived Ctrl-C");
    }
}

#[test]
fn a_failing_callback_fails_only_its_instance_with_file_and_line() {
    let dir = Dir::new("fail");
    dir.write(
        "f.scenario",
        "&module dispersy\n@@ introduce_peers {2}\n@1 echo still running\n@2 stop\n",
    );
    let run = dir
        .peerlab()
        .args([
            "run",
            "f.scenario",
            "--instances",
            "3",
            "--time-scale",
            "0.25",
        ])
        .run();
    run.expect_code(1);
    let run_dir = dir.latest_run();
    let summary = json(&run_dir.join("summary.json"));
    let (status, error) = status_of(&summary, 2);
    assert_eq!(status, "failed");
    assert!(
        error.unwrap_or_default().contains("f.scenario:2"),
        "{summary:#}"
    );
    assert_eq!(status_of(&summary, 1).0, "finished");
    assert_eq!(out_lines(&run_dir, 2), ["still running"], "the run goes on");
    let err = std::fs::read_to_string(run_dir.join("localhost/node001/00002.err")).unwrap();
    assert!(
        err.contains("f.scenario:2") && err.contains("introduce_peers"),
        "{err}"
    );
}

#[test]
fn an_unknown_callback_stops_the_run_before_anything_starts() {
    let dir = Dir::new("unknown");
    dir.write("u.scenario", "@1 ecko hi\n");
    let run = dir
        .peerlab()
        .args(["run", "u.scenario", "--instances", "2"])
        .run();
    run.expect_code(2)
        .stderr_has("u.scenario:1")
        .stderr_has("echo");
    assert!(!dir.path().join("output").exists(), "nothing may start");
}

#[test]
fn a_hundred_instances_run_in_four_processes() {
    let dir = Dir::new("hundred");
    dir.write(
        "h.scenario",
        "&module dispersy\n@@ isolate_community C\n@0 start_session\n@1 introduce_peers max_peers=10\n@2 echo ok\n@3 stop\n",
    );
    let run = dir
        .peerlab()
        .args([
            "run",
            "h.scenario",
            "--instances",
            "100",
            "--instances-per-process",
            "25",
            "--time-scale",
            "0.5",
            "--no-plots",
        ])
        .run();
    run.expect_code(0);
    let run_dir = dir.latest_run();
    let summary = json(&run_dir.join("summary.json"));
    assert_eq!(summary["outcome"], "passed");
    for id in 1..=100u32 {
        assert_eq!(out_lines(&run_dir, id), ["ok"], "instance {id}");
    }
    let resources: Vec<_> = std::fs::read_dir(run_dir.join("localhost/node001"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(".resources.jsonl")
        })
        .collect();
    assert_eq!(resources.len(), 4, "one resources file per process");
}

#[test]
fn the_run_folder_keeps_every_source_and_instances_refuse_a_changed_one() {
    let dir = Dir::new("sources");
    dir.write("common.scenario", "@1 echo from the include\n");
    dir.write("main.scenario", "&include common.scenario\n@2 stop\n");
    let run = dir
        .peerlab()
        .args([
            "run",
            "main.scenario",
            "--instances",
            "2",
            "--time-scale",
            "0.25",
            "--no-plots",
        ])
        .run();
    run.expect_code(0);
    let run_dir = dir.latest_run();
    assert_eq!(out_lines(&run_dir, 2), ["from the include"]);
    // Both files are copied and hashed, the include too.
    let record = json(&run_dir.join("run.json"));
    let sources = record["sources"].as_array().expect("sources in run.json");
    assert_eq!(sources.len(), 2, "{record:#}");
    for s in sources {
        let path = PathBuf::from(s["path"].as_str().unwrap());
        let copy = run_dir.join(s["copy"].as_str().unwrap());
        assert_eq!(
            std::fs::read(&copy).unwrap(),
            std::fs::read(&path).unwrap(),
            "{} is a copy of {}",
            copy.display(),
            path.display()
        );
        use sha2::Digest;
        let sha = sha2::Sha256::digest(std::fs::read(&path).unwrap());
        assert_eq!(
            s["sha256"].as_str().unwrap(),
            peerlab_dispersy::crypto::hex(&sha),
            "the recorded hash is the file's"
        );
    }

    // An instance started after the include changed refuses to run it.
    dir.write("common.scenario", "@1 echo something nobody checked\n");
    let instance = dir
        .peerlab()
        .args([
            "instance",
            "--sync",
            "127.0.0.1:9",
            "--ids",
            "1",
            "--run-dir",
        ])
        .arg(&run_dir)
        .env("PEERLAB_RUN_TOKEN", "t")
        .run();
    instance
        .expect_code(2)
        .stderr_has("common.scenario` changed after the run started")
        .stderr_has("sources/0");
}

#[test]
fn a_scenario_run_without_a_config_takes_peerlab_key_overrides() {
    let dir = Dir::new("env-scenario");
    dir.write("e.scenario", "@0 echo up\n@1 stop\n");
    // Without a count, a lone scenario is refused and told about the variable.
    dir.peerlab()
        .args(["run", "e.scenario", "--simulate", "--no-plots"])
        .run()
        .expect_code(2)
        .stderr_has("PEERLAB_INSTANCES_TO_RUN=N");
    dir.peerlab()
        .args(["run", "e.scenario", "--simulate", "--no-plots"])
        .env("PEERLAB_INSTANCES_TO_RUN", "3")
        .env("PEERLAB_SEED", "77")
        .run()
        .expect_code(0);
    let run = dir.latest_run();
    let summary = json(&run.join("summary.json"));
    assert_eq!(
        summary["instance_status"].as_array().map(Vec::len),
        Some(3),
        "{summary:#}"
    );
    let meta = json(&run.join("run.json"));
    assert_eq!(meta["seed"], 77, "{meta:#}");
    // The run folder's config records where each value came from.
    let conf = std::fs::read_to_string(run.join("experiment.conf")).expect("experiment.conf");
    assert!(conf.contains("instances_to_run = 3"), "{conf}");
}
