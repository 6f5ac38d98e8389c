//! `peerlab report` and `peerlab runs` as a user runs them: the built
//! binary on synthetic run folders (from `peerlab_report::synth`), checking
//! exit codes, what is printed and what is written.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use peerlab_report::synth::{SynthSpec, write_run};
use peerlab_report::testing::check_processed_run;

fn peerlab(args: &[&str]) -> Output {
    Command::new(peerlab_e2e::peerlab_bin())
        .args(args)
        .output()
        .expect("cannot run the peerlab binary")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn synth(dir: &Path, instances: u32, crashed: Vec<u32>) {
    let mut spec = SynthSpec::new(instances);
    spec.duration_s = 20;
    spec.crashed = crashed;
    write_run(dir, &spec).unwrap();
}

#[test]
fn report_writes_every_output_and_says_where() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("0001-synthetic");
    synth(&dir, 6, vec![2]);
    let out = peerlab(&["report", dir.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("6 instances, outcome failed"), "{stdout}");
    assert!(stdout.contains("report.html"), "{stdout}");
    // The crashed instance's half line is a warning on stderr, not an error.
    assert!(
        stderr.contains("00002.stats.jsonl") && stderr.contains("truncated last line"),
        "{stderr}"
    );
    if let Err(problems) = check_processed_run(&dir) {
        panic!("{}", problems.join("\n"));
    }
}

#[test]
fn report_no_plots_only_completes_the_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("0001-synthetic");
    synth(&dir, 3, vec![]);
    let out = peerlab(&["report", "--no-plots", "-q", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "-q printed {}", text(&out.stdout));
    assert!(
        fs::read_to_string(dir.join("summary.json"))
            .unwrap()
            .contains("\"aggregates\"")
    );
    assert!(!dir.join("report.html").exists());
    assert!(!dir.join("plots").exists());
}

#[test]
fn report_of_a_missing_folder_exits_2_and_says_what_to_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let out = peerlab(&["report", tmp.path().join("nope").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("run folder") && stderr.contains("output/latest"),
        "{stderr}"
    );
}

#[test]
fn runs_lists_history_with_broken_and_unfinished_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    synth(&root.join("0001-synthetic"), 4, vec![]);
    synth(&root.join("0002-synthetic"), 5, vec![3]);
    // Started but never finished: run.json only.
    fs::create_dir(root.join("0003-benaloh")).unwrap();
    fs::write(
        root.join("0003-benaloh/run.json"),
        r#"{"experiment": "benaloh", "instances": 7, "created_at": "2026-11-25T03:15:17Z"}"#,
    )
    .unwrap();
    // Cut short while writing run.json.
    fs::create_dir(root.join("0004-benaloh")).unwrap();
    fs::write(root.join("0004-benaloh/run.json"), r#"{"experiment": "ben"#).unwrap();
    // Not runs: a loose file and an unrelated folder.
    fs::write(root.join("notes.txt"), "hi").unwrap();
    fs::create_dir(root.join("scratch")).unwrap();
    std::os::unix::fs::symlink("0003-benaloh", root.join("latest")).unwrap();

    let out = peerlab(&["runs", root.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(
        lines[0].contains("RUN") && lines[0].contains("OUTCOME") && lines[0].contains("SIZE"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("0001-synthetic")
            && lines[1].contains("passed")
            && lines[1].contains("KiB"),
        "{stdout}"
    );
    assert!(
        lines[2].contains("0002-synthetic") && lines[2].contains("failed"),
        "{stdout}"
    );
    assert!(
        lines[3].contains("0003-benaloh (latest)")
            && lines[3].contains("incomplete")
            && lines[3].contains(" 7 "),
        "{stdout}"
    );
    assert!(
        lines[4].contains("0004-benaloh") && lines[4].contains("broken (run.json cut short)"),
        "{stdout}"
    );

    let out = peerlab(&["runs", root.to_str().unwrap(), "--json", "-n", "2"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let folders: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["folder"].as_str().unwrap())
        .collect();
    assert_eq!(folders, vec!["0003-benaloh", "0004-benaloh"]);
}

#[test]
fn runs_of_an_empty_root_says_so_and_a_missing_root_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = peerlab(&["runs", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("no runs in "));
    let out = peerlab(&["runs", tmp.path().join("missing").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot list runs"),
        "{}",
        text(&out.stderr)
    );
}
