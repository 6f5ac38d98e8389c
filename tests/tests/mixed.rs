//! scenarios/mixed: 4 peerlab instances running the gossip plugin and 2
//! py-ipv8 instances (scenarios/mixed/mixed_peer.py on peerlab's Python
//! client) in one run. Every rumor must reach every instance of both kinds
//! (the gossip verdict), with py-ipv8 signing and checking its messages
//! and peerlab checking py-ipv8's signatures; outputs and report as for
//! any run. `peerlab check` resolves the Python instances' callbacks from
//! the committed manifest, which must be what the module declares.
//!
//! Needs python3 with venv (scripts/ipv8/venv.sh installs pyipv8 from PyPI
//! and the client from python/); PEERLAB_SKIP_IPV8=1 skips it, saying so.

use std::path::{Path, PathBuf};
use std::process::Command;

use peerlab_e2e::{Dir, workspace_root};
use serde_json::Value;

const FILES: [&str; 4] = [
    "mixed.conf",
    "mixed.scenario",
    "mixed_peer.py",
    "mixed_peer.callbacks.json",
];

/// The venv's python, or `None` when the test is skipped.
fn venv_python() -> Option<PathBuf> {
    if std::env::var("PEERLAB_SKIP_IPV8").as_deref() == Ok("1") {
        eprintln!("SKIPPED (PEERLAB_SKIP_IPV8=1): the mixed peerlab + py-ipv8 experiment");
        return None;
    }
    let out = Command::new("bash")
        .arg(workspace_root().join("scripts/ipv8/venv.sh"))
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "scripts/ipv8/venv.sh failed (python3 with venv and PyPI are needed; or set PEERLAB_SKIP_IPV8=1): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(PathBuf::from(
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

/// The mixed experiment copied into the test's folder (its runs go there).
fn copy_experiment(dir: &Dir) {
    let src = workspace_root().join("scenarios/mixed");
    for f in FILES {
        dir.write(f, std::fs::read(src.join(f)).unwrap());
    }
}

fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn last_counters(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let last = text.lines().last().expect("a stats line");
    serde_json::from_str::<Value>(last).unwrap()["counters"].clone()
}

#[test]
fn every_rumor_reaches_every_peerlab_and_py_ipv8_instance() {
    let Some(python) = venv_python() else {
        return;
    };
    let dir = Dir::new("mixed");
    copy_experiment(&dir);
    let run = dir
        .peerlab()
        .env("PEERLAB_PYTHON", &python)
        .args(["run", "mixed.conf"])
        .run();
    run.expect_code(0).stderr_has(
        "verdict gossip/everyone holds every rumor: PASS — all 6 instances hold all 6 rumors",
    );
    let run_dir = dir.latest_run();
    let summary = json(&run_dir.join("summary.json"));
    assert_eq!(summary["outcome"], "passed", "{summary:#}");
    assert!(
        run_dir.join("report.html").is_file(),
        "the report is written"
    );
    let peers = json(&run_dir.join("peers.json"));
    let kinds: Vec<&str> = peers["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "peerlab", "peerlab", "peerlab", "peerlab", "external", "external"
        ]
    );
    let node = run_dir.join("localhost/node001");
    for id in 1..=6 {
        let out = std::fs::read_to_string(node.join(format!("{id:05}.out"))).unwrap();
        assert_eq!(
            out, "gossip: published 1\ngossip: holding 6 rumors\n",
            "instance {id}"
        );
    }
    // peerlab's instances checked every py-ipv8 signature and dropped none.
    for id in 1..=4 {
        let c = last_counters(&node.join(format!("{id:05}.stats.jsonl")));
        assert_eq!(c["drop/bad_signature"], 0.0, "instance {id}: {c:#}");
        assert_eq!(c["drop/unknown_author"], 0.0, "instance {id}: {c:#}");
        assert_eq!(c["drop/wrong_address"], 0.0, "instance {id}: {c:#}");
        assert!(
            c["msg_in/rumor"].as_f64().unwrap_or(0.0) >= 5.0,
            "instance {id}: {c:#}"
        );
    }
    for id in 5..=6 {
        let c = last_counters(&node.join(format!("{id:05}.stats.jsonl")));
        assert_eq!(c["stat/rumors_held"], 6.0, "instance {id}: {c:#}");
    }
}

#[test]
fn check_resolves_the_python_callbacks_and_the_manifest_is_the_modules() {
    let Some(python) = venv_python() else {
        return;
    };
    let dir = Dir::new("mixed-check");
    copy_experiment(&dir);
    // The committed manifest is what the module's @experiment_callbacks say.
    let made = Command::new(&python)
        .args(["-m", "peerlab", "manifest", "mixed_peer.py"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    assert_eq!(
        String::from_utf8_lossy(&made.stdout),
        dir.read("mixed_peer.callbacks.json"),
        "scenarios/mixed/mixed_peer.callbacks.json is stale: regenerate it (see mixed_peer.py)"
    );
    dir.peerlab()
        .env("PEERLAB_PYTHON", &python)
        .args(["check", "mixed.conf"])
        .run()
        .expect_code(0);
    let scenario = dir.read("mixed.scenario");
    let line = scenario
        .lines()
        .position(|l| l == "@2 publish")
        .expect("the scenario publishes at @2")
        + 1;
    dir.write(
        "mixed.scenario",
        scenario.replace("@2 publish\n", "@2 publish {1-4}\n@2 publsh {5-6}\n"),
    );
    let run = dir
        .peerlab()
        .env("PEERLAB_PYTHON", &python)
        .args(["check", "mixed.conf"])
        .run();
    run.expect_code(1)
        .stdout_has(&format!("mixed.scenario:{}:4", line + 1))
        .stdout_has("the external instances have no callback `publsh`")
        .stdout_has("did you mean `publish`?");
}
