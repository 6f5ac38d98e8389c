//! Runs too large for the machine are refused before anything starts or is
//! written: `--instances 10000000 --simulate` (it wrote a 969 MB run.json
//! and aborted on a 30 GB allocation) and a config with 100,000 local
//! processes (`check` accepted it), each with what would fit.

use std::path::Path;
use std::process::{Command, Output};

fn peerlab(dir: &Path, args: &[&str]) -> Output {
    Command::new(peerlab_e2e::peerlab_bin())
        .current_dir(dir)
        .env_remove("PEERLAB_PLUGIN_PATH")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("run peerlab")
}

#[test]
fn ten_million_simulated_instances_are_refused_before_the_run_folder_exists() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.scenario"), "@1 annotate hi\n").unwrap();
    let out = peerlab(
        dir.path(),
        &[
            "run",
            "x.scenario",
            "--instances",
            "10000000",
            "--simulate",
            "--output",
            "out",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("error[too-large-for-machine]: 10,000,000 simulated instances need at least 953.7 GiB of memory (100 KiB each); this machine has "),
        "{err}"
    );
    assert!(err.contains(" fit\n"), "{err}");
    assert!(
        err.contains("peerlab: the experiment was not started"),
        "{err}"
    );
    assert!(!dir.path().join("out").exists(), "nothing is written");
}

#[test]
fn a_hundred_thousand_local_processes_fail_the_check_with_what_would_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.scenario"), "@1 annotate hi\n").unwrap();
    std::fs::write(
        dir.path().join("x.conf"),
        "experiment_name = big\nscenario_file = x.scenario\ninstances_to_run = 100000\n",
    )
    .unwrap();
    let out = peerlab(dir.path(), &["check", "--format", "short", "x.conf"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("x.conf:3:20: error[too-many-processes]: 100,000 instances would run in 100,000 local processes: that is peerlab's own cap for one run (at most 10,000 processes) (help: host several instances per process: instances_per_process = 10 (or --instances-per-process 10) needs 10,000 processes; or use the simulated network)"),
        "{text}"
    );
    // The same refusal stops `run` before it starts anything.
    let out = peerlab(dir.path(), &["run", "x.conf", "--output", "out"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("error[too-many-processes]"), "{err}");
    assert!(!dir.path().join("out").exists(), "nothing is written");
}
