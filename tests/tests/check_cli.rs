//! `peerlab check` end to end: the built binary on files in a temp dir (and
//! the tutorial's files), its exit status and its three output formats.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    peerlab_e2e::workspace_root()
}

fn peerlab(dir: &Path, args: &[&str]) -> Output {
    Command::new(peerlab_e2e::peerlab_bin())
        .current_dir(dir)
        .env_remove("PEERLAB_PLUGIN_PATH")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("run peerlab")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write fixture");
}

#[test]
fn tutorial_files_check_ok() {
    let out = peerlab(
        &repo(),
        &[
            "check",
            "--syntax-only",
            "scenarios/benaloh/benaloh.scenario",
            "scenarios/benaloh/benaloh_das5.conf",
            "scenarios/benaloh/benaloh.conf",
        ],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("ok: scenarios/benaloh/benaloh.scenario\n"),
        "{text}"
    );
    assert!(text.contains("ok: scenarios/benaloh/benaloh_das5.conf\n  experiment `benaloh`: 5 instances on 5 nodes, local runner, runs for 2:45\n"), "{text}");
    assert!(
        text.contains("  11 commands (0 load, 1 setup, 10 timed), timeline 2:15 (135s)\n"),
        "{text}"
    );
    assert!(text.contains("modules: gumby.modules.dispersy_module.DispersyModule, experiments.benaloh.benaloh_module.BenalohModule"));
    assert!(
        text.contains(
            "note[gumby-key]: `experiment_server_cmd` is a Gumby helper setting, ignored"
        ),
        "{text}"
    );
    // tracker_cmd is no longer ignored: it starts the built-in tracker (#20).
    assert!(
        !text.contains("`tracker_cmd` is a Gumby helper setting"),
        "{text}"
    );
    assert!(
        text.contains("checked 3 files: 0 errors, 0 warnings\n"),
        "{text}"
    );
    assert!(
        !text.contains("unresolved-module"),
        "--syntax-only resolves nothing: {text}"
    );
}

#[test]
fn errors_fail_with_every_problem_in_each_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "bad.scenario",
        "&module benaloh\n@1 start\n@x stop\n@2 share $NOPE {0}\n",
    );

    let human = peerlab(dir.path(), &["check", "--syntax-only", "bad.scenario"]);
    assert_eq!(human.status.code(), Some(1));
    let text = stdout(&human);
    assert!(
        text.contains("error[bad-time]: bad time `@x`\n --> bad.scenario:3:1\n  |\n3 | @x stop\n  | ^^ expected `[[h:]m:]s`, `@@` or `@!`\n"),
        "{text}"
    );
    assert!(
        text.contains("FAILED: bad.scenario (3 errors, 0 warnings)\n"),
        "{text}"
    );

    let short = peerlab(
        dir.path(),
        &[
            "check",
            "--syntax-only",
            "--format",
            "short",
            "bad.scenario",
        ],
    );
    assert_eq!(short.status.code(), Some(1));
    let lines: Vec<String> = stdout(&short)
        .lines()
        .filter(|l| l.contains(": error["))
        .map(str::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "bad.scenario:3:1: error[bad-time]: bad time `@x` (help: times are `@90`, `@1:30`, `@0:10.5` or `@1:00:00`: whole hours and minutes, seconds may be fractional)",
            "bad.scenario:4:10: error[unknown-variable]: unknown variable `$NOPE` (help: define it first with `@! set NAME VALUE`, or set it in the config or the environment)",
            "bad.scenario:4:17: error[bad-selector]: bad peer selector item `0`: instance ids start at 1 (help: a selector lists ids and ranges: `{1,3-5}`, or `{!2}` for all but 2)",
        ]
    );

    let json = peerlab(
        dir.path(),
        &["check", "--syntax-only", "--format", "json", "bad.scenario"],
    );
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(stdout(&json).trim()).expect("one JSON object");
    assert_eq!(v["ok"], false);
    assert_eq!(v["errors"], 3);
    assert_eq!(v["scenario"]["commands"], 1);
    assert_eq!(v["scenario"]["modules"][0], "benaloh");
    assert_eq!(v["diagnostics"][0]["code"], "bad-time");
    assert_eq!(v["diagnostics"][0]["line"], 3);
    assert_eq!(v["diagnostics"][0]["column"], 1);
    assert_eq!(v["diagnostics"][0]["file"], "bad.scenario");
}

#[test]
fn a_conf_pulls_in_its_scenario_and_exports_its_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "exp.conf",
        "experiment_name = demo\nscenario_file = exp.scenario\ninstances_to_run = 3\nexperiment_time = 60\nmodulus = 7\n",
    );
    write(
        dir.path(),
        "exp.scenario",
        "&include common.scenario\n@1 share $MODULUS $EXPERIMENT_NAME {1-3}\n@1:30 late\n",
    );
    write(dir.path(), "common.scenario", "@@ isolate_community Demo\n");
    let out = peerlab(
        dir.path(),
        &["check", "--syntax-only", "--format", "json", "exp.conf"],
    );
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["instances"], 3);
    assert_eq!(v["scenario"]["file"], "exp.scenario");
    assert_eq!(v["scenario"]["setup"], 1);
    assert_eq!(v["scenario"]["timeline_seconds"], 90.0);
    let codes: Vec<&str> = v["diagnostics"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert_eq!(codes, ["unknown-key", "after-end"], "{v}");
}

#[test]
fn missing_scenario_file_is_an_error_at_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "exp.conf",
        "experiment_name = demo\nscenario_file = 'gone.scenario'\n",
    );
    let out = peerlab(dir.path(), &["check", "--format", "short", "exp.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with(
            "exp.conf:2:17: error[scenario-not-found]: scenario file `gone.scenario` not found"
        ),
        "{}",
        stdout(&out)
    );
}

#[test]
fn overlay_tuning_keys_are_known_and_their_values_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "s.scenario", "&module dispersy\n@1 stop\n");
    write(
        dir.path(),
        "good.conf",
        "scenario_file = s.scenario\nsync_interval = 500ms\nsync_response_limit = 128\n",
    );
    write(
        dir.path(),
        "bad.conf",
        "scenario_file = s.scenario\nsync_interval = 0\nsync_response_limit = lots\n",
    );
    let out = peerlab(dir.path(), &["check", "--format", "short", "good.conf"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(!stdout(&out).contains("unknown"), "{}", stdout(&out));
    let out = peerlab(dir.path(), &["check", "--format", "short", "bad.conf"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("bad.conf:2:17: error[bad-value]: config key `sync_interval` = \"0\""),
        "{text}"
    );
    assert!(
        text.contains(
            "bad.conf:3:23: error[bad-value]: config key `sync_response_limit` = \"lots\""
        ),
        "{text}"
    );
    // `peerlab run` refuses it before anything starts.
    let out = peerlab(dir.path(), &["run", "bad.conf", "--instances", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join("output").exists());
}

#[test]
fn environment_overrides_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "exp.conf",
        "experiment_name = demo\ninstances_to_run = 2\n",
    );
    let out = Command::new(peerlab_e2e::peerlab_bin())
        .current_dir(dir.path())
        .env("PEERLAB_INSTANCES_TO_RUN", "lots")
        .args(["check", "--format", "short", "exp.conf"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with(
        "error[bad-value]: PEERLAB_INSTANCES_TO_RUN: bad value for `instances_to_run`: expected an integer, found `lots`\n"
    ));
    let ok = Command::new(peerlab_e2e::peerlab_bin())
        .current_dir(dir.path())
        .env("PEERLAB_INSTANCES_TO_RUN", "12")
        .args(["check", "--format", "json", "exp.conf"])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_str(stdout(&ok).trim()).expect("json");
    assert_eq!(v["instances"], 12);
}

#[test]
fn unreadable_and_unknown_files_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "notes.txt", "hello\n");
    let out = peerlab(
        dir.path(),
        &[
            "check",
            "--format",
            "short",
            "missing.scenario",
            "notes.txt",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("missing.scenario:1:1: error[unreadable]: cannot read `missing.scenario`: "),
        "{text}"
    );
    assert!(
        text.contains("notes.txt:1:1: error[unknown-file-kind]: cannot check `notes.txt`: expected a `.conf` or `.scenario` file"),
        "{text}"
    );
    assert!(
        text.contains("checked 2 files: 2 errors, 0 warnings"),
        "{text}"
    );
}

#[test]
fn explain_keys_lists_every_key() {
    let out = peerlab(&repo(), &["check", "--explain-keys"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for key in [
        "instances_to_run",
        "das4_instances_to_run",
        "sync_port",
        "local_instance_cmd",
        "with_systemtap",
    ] {
        assert!(text.contains(key), "{key} missing from\n{text}");
    }
    assert!(text.contains("PEERLAB_<KEY>"));
}
