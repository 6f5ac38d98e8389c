//! End-to-end tests of the rough edges a new user hit (issue #18, items
//! 14, 15 and 18): `run` shows the warnings `check` shows and `check` takes
//! the flags that shape a run; the `verdicts` key turns a module's verdicts
//! off; small command-line mistakes get one clear message each.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use peerlab_e2e::{Dir, Run, peerlab_bin};
use serde_json::Value;

fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A scenario whose selector names an instance beyond a two-instance run.
const WIDE: &str = "@0:00.1 echo hello {1-3}\n@0:00.2 stop\n";

#[test]
fn run_shows_the_warnings_check_shows() {
    let dir = Dir::new("run-warnings");
    dir.write("wide.scenario", WIDE);
    let check = dir
        .peerlab()
        .args(["check", "wide.scenario", "--instances", "2"])
        .run();
    check
        .expect_code(0)
        .stdout_has("warning[peer-out-of-range]: peer selector `{1-3}`");
    let run = dir
        .peerlab()
        .args([
            "run",
            "wide.scenario",
            "--instances",
            "2",
            "--time-scale",
            "0.2",
        ])
        .run();
    run.expect_code(0)
        .stderr_has("warning[peer-out-of-range]: peer selector `{1-3}`");
    // -q keeps only errors
    let quiet = dir
        .peerlab()
        .args([
            "-q",
            "run",
            "wide.scenario",
            "-n",
            "2",
            "--time-scale",
            "0.2",
        ])
        .run();
    quiet.expect_code(0);
    assert!(!quiet.stderr.contains("peer-out-of-range"), "{quiet}");
}

#[test]
fn check_takes_the_instance_count_a_scenario_run_needs() {
    let dir = Dir::new("check-instances");
    // {3} runs on no instance of a two-instance run: run refuses it, and so
    // does check when told the same count.
    dir.write("nowhere.scenario", "@0:00.1 echo hi {3}\n@0:00.2 stop\n");
    let bare = dir.peerlab().args(["check", "nowhere.scenario"]).run();
    bare.expect_code(0)
        .stdout_has("note[no-instances]")
        .stdout_has("--instances N");
    let run = dir
        .peerlab()
        .args(["run", "nowhere.scenario", "-n", "2", "--time-scale", "0.2"])
        .run();
    run.expect_code(2).stderr_has("nowhere.scenario:1:17");
    let check = dir
        .peerlab()
        .args(["check", "nowhere.scenario", "--instances", "2"])
        .run();
    check.expect_code(1).stdout_has("nowhere.scenario:1:17");
    // and the run limit run computes: check refuses the same time scale
    dir.write("ok.scenario", "@0:01 stop\n");
    let stretched = dir
        .peerlab()
        .args(["check", "ok.scenario", "-n", "1", "--time-scale", "1e300"])
        .run();
    stretched
        .expect_code(1)
        .stdout_has("error[bad-run-limit]: --time-scale 1.000e300 stretches the run limit");
    // --simulate is taken, and said
    dir.peerlab()
        .args(["check", "ok.scenario", "-n", "1", "--simulate"])
        .run()
        .expect_code(0);
}

/// A run where the example module is loaded only for `greet`: its "totals
/// agree" verdict has nothing to judge.
fn greet_only(dir: &Dir, extra_conf: &str) {
    dir.write(
        "greet.scenario",
        "&module example\n@0:00.1 greet world\n@0:00.3 stop\n",
    );
    dir.write(
        "greet.conf",
        format!(
            "scenario_file = greet.scenario\ninstances_to_run = 2\ntime_scale = 0.3\n{extra_conf}"
        ),
    );
}

#[test]
fn verdicts_none_skips_a_modules_verdicts_and_says_so() {
    let dir = Dir::new("verdicts-none");
    greet_only(&dir, "verdicts = none\n");
    dir.peerlab()
        .args(["check", "greet.conf"])
        .run()
        .expect_code(0);
    let run = dir.peerlab().args(["run", "greet.conf"]).run();
    run.expect_code(0)
        .stderr_has("verdict example: SKIPPED — skipped (verdicts = none)")
        .stderr_has("PASSED");
    let summary = json(&dir.path().join("output/latest/summary.json"));
    assert_eq!(summary["outcome"], "passed", "{summary:#}");
    let verdicts = summary["verdicts"].as_array().expect("verdicts");
    assert_eq!(verdicts.len(), 1, "{summary:#}");
    assert_eq!(verdicts[0]["name"], "example");
    assert_eq!(verdicts[0]["skipped"], true);
    assert_eq!(verdicts[0]["message"], "skipped (verdicts = none)");
    let junit = dir.read("output/latest/junit.xml");
    assert!(
        junit.contains(
            r#"<testcase classname="verdicts" name="example"><skipped message="skipped (verdicts = none)"/></testcase>"#
        ),
        "{junit}"
    );
    let html = dir.read("output/latest/report.html");
    assert!(
        html.contains(">skipped<"),
        "report.html does not show the skip"
    );
}

#[test]
fn verdicts_values_are_checked_and_no_verdicts_does_the_same_from_the_command_line() {
    let dir = Dir::new("verdicts-bad");
    greet_only(&dir, "verdicts = exampel\n");
    let check = dir.peerlab().args(["check", "greet.conf"]).run();
    check
        .expect_code(1)
        .stdout_has("`verdicts` names module `exampel`, which the scenario does not load")
        .stdout_has("did you mean `example`?");
    dir.peerlab()
        .args(["run", "greet.conf"])
        .run()
        .expect_code(2)
        .stderr_has("`verdicts` names module `exampel`");

    let dir = Dir::new("verdicts-flag");
    greet_only(&dir, "");
    let run = dir
        .peerlab()
        .args(["run", "greet.conf", "--no-verdicts"])
        .run();
    run.expect_code(0).stderr_has("skipped (--no-verdicts)");
    let keys = dir.peerlab().args(["check", "--explain-keys"]).run();
    keys.expect_code(0)
        .stdout_has("  verdicts ")
        .stdout_has("  plugin_path ");
}

fn no_twice(run: &Run, what: &str) {
    let n = run.stderr.matches(what).count();
    assert!(n <= 1, "{what:?} appears {n} times in\n{run}");
}

#[test]
fn small_command_line_mistakes_get_one_clear_message() {
    let dir = Dir::new("cli-mistakes");
    dir.write("ok.scenario", "@0:00.1 echo hi\n@0:00.2 stop\n");

    let missing = dir.peerlab().args(["run", "nothere.conf"]).run();
    missing
        .expect_code(2)
        .stderr_has("cannot read `nothere.conf`");
    assert!(!missing.stderr.contains("no scenario"), "{missing}");

    let runs = dir.peerlab().args(["runs"]).run();
    runs.expect_code(2).stderr_has("output does not exist");
    no_twice(&runs, "No such file or directory");

    let negative = dir
        .peerlab()
        .args(["run", "ok.scenario", "-n", "1", "--time-scale", "-1"])
        .run();
    negative
        .expect_code(2)
        .stderr_has("invalid value '-1' for '--time-scale <F>': it must be a number above 0");
    assert!(
        !negative.stderr.contains("unexpected argument"),
        "{negative}"
    );

    let huge = dir
        .peerlab()
        .args(["run", "ok.scenario", "-n", "1", "--time-scale", "1e300"])
        .run();
    huge.expect_code(2)
        .stderr_has("--time-scale 1.000e300 stretches the run limit of 30.2 scenario seconds")
        .stderr_has("give a time scale up to");
    assert!(!huge.stderr.contains("is not a usable time"), "{huge}");

    dir.write("afile", "not a folder\n");
    let file_root = dir
        .peerlab()
        .args(["run", "ok.scenario", "-n", "1", "--output", "afile"])
        .run();
    file_root
        .expect_code(2)
        .stderr_has("the output root afile is a file: choose another --output");
    assert!(!file_root.stderr.contains("File exists"), "{file_root}");
    assert!(!file_root.stderr.contains("running `ok`"), "{file_root}");

    dir.write("session.scenario", "@0:00.1 start_session\n@0:00.2 stop\n");
    let unknown = dir.peerlab().args(["check", "session.scenario"]).run();
    unknown
        .expect_code(1)
        .stdout_has("unknown callback `start_session`")
        .stdout_has("add `&module dispersy`");
}

#[test]
fn bench_leaves_no_scenario_and_no_dangling_latest_behind() {
    let dir = Dir::new("bench-clean");
    let run = dir
        .peerlab()
        .args([
            "bench", "benaloh", "--peers", "3", "--json", "--output", "b",
        ])
        .run();
    run.expect_code(0);
    let left: Vec<String> = std::fs::read_dir(dir.path().join("b"))
        .expect("the bench's output root")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{run}");
}

/// Start `peerlab run` on a one-minute scenario, wait until its instance
/// printed, interrupt it (the supervisor logs a warning), and return stderr.
fn interrupted_run(dir: &Dir, verbose: bool) -> String {
    dir.write("long.scenario", "@0 echo up\n@60 stop\n");
    let mut cmd = Command::new(peerlab_bin());
    cmd.current_dir(dir.path())
        .env_remove("PEERLAB_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if verbose {
        cmd.arg("-v");
    }
    let child = cmd
        .args(["run", "long.scenario", "-n", "1", "--no-plots", "-o", "out"])
        .spawn()
        .expect("starting peerlab run");
    let out_file = dir.path().join("out/latest/localhost/node001/00001.out");
    let start = Instant::now();
    while !std::fs::read_to_string(&out_file).is_ok_and(|t| t.contains("up")) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the instance never printed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: interrupting the run this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("waiting for peerlab run");
    let _ = std::fs::remove_dir_all(dir.path().join("out"));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn log_lines_read_like_peerlab_messages_unless_asked_for_detail() {
    let dir = Dir::new("log-format");
    let stderr = interrupted_run(&dir, false);
    assert!(
        stderr.lines().any(|l| l.starts_with("peerlab: warning: ")),
        "{stderr}"
    );
    let raw: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("peerlab: ") && (l.contains(" WARN ") || l.contains(" ERROR ")))
        .collect();
    assert!(raw.is_empty(), "raw tracing lines: {raw:?}\n{stderr}");
    // -v asks for detail: timestamps and levels
    let verbose = interrupted_run(&dir, true);
    assert!(
        verbose
            .lines()
            .any(|l| l.contains(" WARN ") && l.starts_with("20")),
        "{verbose}"
    );
}

#[test]
fn a_panic_is_reported_once_with_its_location_and_the_report_links_the_process_stderr() {
    let dir = Dir::new("panic-report");
    dir.write(
        "boom.scenario",
        "&module example\n@0:00.1 greet a\n@0:00.2 boom kaput\n@0:00.3 greet b\n@0:00.4 greet c\n@0:00.5 greet d\n@0:00.6 greet e\n@0:01 stop\n",
    );
    let run = dir
        .peerlab()
        .args(["run", "boom.scenario", "-n", "1", "--time-scale", "0.3"])
        .run();
    run.expect_code(1);
    let summary = json(&dir.path().join("output/latest/summary.json"));
    let error = summary["instance_status"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("boom.scenario:3: example.boom: module `example` panicked in callback `boom`: kaput (at ")
            && error.contains("src/lib.rs:"),
        "{error}"
    );
    assert!(
        error.ends_with("; 4 later calls refused (the module is unusable after its panic)"),
        "{error}"
    );
    assert!(
        !error.contains("unusable after an earlier panic"),
        "{error}"
    );
    assert_eq!(run.stderr.matches("unusable after").count(), 1, "{run}");
    // the .err keeps one line per call, the location with the panic
    let err = dir.read("output/latest/localhost/node001/00001.err");
    assert!(err.contains("kaput (at "), "{err}");
    // report.html links the process's stderr (message, location, backtrace)
    let html = dir.read("output/latest/report.html");
    assert!(
        html.contains(r#"<a href="localhost/node001/process001.stderr">process stderr</a>"#),
        "report.html does not link process001.stderr"
    );
    let stderr = dir.read("output/latest/localhost/node001/process001.stderr");
    assert!(stderr.contains("kaput"), "{stderr}");
}

#[test]
fn a_module_not_found_names_every_folder_searched_and_no_empty_one() {
    let dir = Dir::new("search-list");
    dir.write("x.scenario", "&module nosuchmodule\n@0:01 stop\n");
    dir.write(
        "x.conf",
        "scenario_file = x.scenario\ninstances_to_run = 1\n",
    );
    let check = dir.peerlab().args(["check", "x.conf"]).run();
    check
        .expect_code(1)
        .stdout_has("module `nosuchmodule`: not found");
    let searched = check
        .stdout
        .lines()
        .find_map(|l| l.split_once("(searched ").map(|(_, rest)| rest.to_string()))
        .unwrap_or_else(|| panic!("no search list in\n{check}"));
    for folder in searched.trim_end_matches(')').split(", ") {
        assert!(
            Path::new(folder).is_absolute(),
            "folder {folder:?} in the search list: {searched}"
        );
    }
}
