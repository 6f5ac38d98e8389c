//! End-to-end tests of `peerlab bench benaloh`: small runs through the real
//! runner, instance runtime, UDP overlay and `target/debug/libbenaloh.so`,
//! whose JSON lines must carry every field and a correct protocol; the
//! clear failure when the plugin is not built; and the workload as the
//! plugin declares it (plugin-api 1.5): `--list`, `NAME --help`, and the
//! clear failure for a plugin that declares none (a current one, and one
//! built against the frozen api 1.0). Speed is never asserted here (the
//! benchmark's output is for people).
//!
//! Needs `cargo build --workspace` first (scripts/test does it).

use peerlab_e2e::{
    Dir, Run, debug_dir, fixture_plugins, peerlab_bin, target_dir, workspace_plugin,
};
use serde_json::Value;

fn bench(dir: &Dir, extra: &[&str]) -> Run {
    workspace_plugin("benaloh");
    dir.peerlab()
        .args(["bench", "benaloh", "--json", "--output"])
        .arg(dir.path().join("output"))
        .arg("--plugin-path")
        .arg(debug_dir())
        .args(extra)
        .run()
}

/// The JSON objects on stdout, one per line.
fn measurements(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{run}"))
        })
        .collect()
}

fn check_fields(m: &Value, peers: u64, run: &Run) {
    for field in [
        "peers",
        "protocol_wall_s",
        "messages",
        "msgs_per_s",
        "cpu_s",
        "peak_rss_mb",
        "correct",
    ] {
        assert!(m.get(field).is_some(), "{field} missing in {m}\n{run}");
    }
    assert_eq!(m["peers"], peers, "{run}");
    assert_eq!(m["correct"], true, "{run}");
    assert_eq!(m["totals_known"], peers, "{run}");
    let wall = m["protocol_wall_s"].as_f64().expect("a number");
    assert!(wall > 0.0, "{m}");
    // Every instance sent n-1 local shares and its subset sum to n-1 peers
    // (catch-up sync may add resends, never fewer).
    let messages = m["messages"].as_u64().expect("a count");
    assert!(messages >= 2 * peers * (peers - 1), "{m}");
    assert!(m["msgs_per_s"].as_f64().expect("a rate") > 0.0, "{m}");
    assert!(m["cpu_s"].as_f64().expect("seconds") >= 0.0, "{m}");
    assert!(m["peak_rss_mb"].as_f64().expect("MB") > 0.0, "{m}");
}

#[test]
fn bench_benaloh_prints_a_correct_json_line_per_measurement() {
    let dir = Dir::new("bench-json");
    let run = bench(&dir, &["--peers", "20"]);
    run.expect_code(0);
    let ms = measurements(&run);
    assert_eq!(ms.len(), 1, "{run}");
    check_fields(&ms[0], 20, &run);
    assert_eq!(ms[0]["processes"], 1, "{run}");
    // One process hosting every instance shares verifications by default.
    assert_eq!(ms[0]["shared_verification"], true, "{run}");
    // A correct run's folder is removed unless --keep.
    let kept = ms[0]["run_dir"].as_str().unwrap();
    assert!(!std::path::Path::new(kept).exists(), "{kept} was kept");
}

#[test]
fn bench_benaloh_spreads_instances_over_processes_with_and_without_the_pool() {
    let dir = Dir::new("bench-processes");
    let run = bench(
        &dir,
        &[
            "--peers",
            "6",
            "--processes",
            "3",
            "--shared-verification",
            "both",
            "--keep",
        ],
    );
    run.expect_code(0);
    let ms = measurements(&run);
    assert_eq!(ms.len(), 2, "{run}");
    for (m, pool) in ms.iter().zip([true, false]) {
        check_fields(m, 6, &run);
        assert_eq!(m["processes"], 3, "{run}");
        assert_eq!(m["shared_verification"], pool, "{run}");
        // Kept: the three processes' resources files are there.
        let run_dir = std::path::Path::new(m["run_dir"].as_str().unwrap());
        for p in 1..=3 {
            let f = run_dir.join(format!("localhost/node001/process{p:03}.resources.jsonl"));
            assert!(f.is_file(), "{} missing\n{run}", f.display());
        }
    }
}

#[test]
fn bench_benaloh_says_to_build_the_plugin_when_it_is_missing() {
    // A peerlab binary with no target directory beside it finds no plugin.
    let tmp = tempfile::Builder::new()
        .prefix("bench-noplugin-")
        .tempdir_in(target_dir())
        .expect("a temporary directory");
    let bin_dir = tmp.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let exe = bin_dir.join("peerlab");
    if std::fs::hard_link(peerlab_bin(), &exe).is_err() {
        std::fs::copy(peerlab_bin(), &exe).expect("copying peerlab");
    }
    let out = std::process::Command::new(&exe)
        .args(["bench", "benaloh", "--peers", "4", "--output"])
        .arg(tmp.path().join("output"))
        .env_remove("PEERLAB_PLUGIN_PATH")
        .current_dir(tmp.path())
        .output()
        .expect("running peerlab");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the benaloh plugin is not built")
            && stderr.contains("run cargo build --release --workspace first"),
        "{stderr}"
    );
    assert!(!tmp.path().join("output").exists(), "nothing may run");
}

#[test]
fn bench_runs_the_workload_a_plugin_declares_and_refuses_one_without() {
    workspace_plugin("benaloh");
    workspace_plugin("gossip");
    let fixtures = fixture_plugins();
    let dir = Dir::new("bench-declared");
    let path = std::env::join_paths([debug_dir(), fixtures.clone()]).unwrap();
    let list = dir
        .peerlab()
        .args(["bench", "--list", "--plugin-path"])
        .arg(&path)
        .run();
    list.expect_code(0);
    let names: Vec<&str> = list
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["benaloh"], "{list}");
    assert!(
        list.stdout
            .contains("the Benaloh protocol in automatic mode  ("),
        "{list}"
    );
    // NAME --help: the workload in the plugin's own names.
    dir.peerlab()
        .args(["bench", "benaloh", "--help", "--plugin-path"])
        .arg(debug_dir())
        .run()
        .expect_code(0)
        .stdout_has("Usage: peerlab bench")
        .stdout_has("from the first `share_local`")
        .stdout_has("plus its `benaloh.time_to_total` observation")
        .stdout_has("Messages are the local-share and broadcast-share datagrams sent");
    // A current plugin without a workload, and one built against api 1.0.
    for (name, api, plugin_dir) in [
        ("gossip", peerlab_e2e::host_api_version(), debug_dir()),
        ("frozen", "1.0.0".to_string(), fixtures.clone()),
    ] {
        let run = dir
            .peerlab()
            .args(["bench", name, "--peers", "4", "--output"])
            .arg(dir.path().join("output"))
            .arg("--plugin-path")
            .arg(&plugin_dir)
            .run();
        run.expect_code(2).stderr_has(&format!(
            "the {name} plugin (plugin-api {api}) declares no benchmark workload: declare one with \
             #[module(bench("
        ));
        run.stderr_has("`peerlab bench --list` shows the plugins that do");
        assert!(
            !dir.path().join("output").exists(),
            "nothing may run\n{run}"
        );
    }
}

#[test]
fn the_py_ipv8_reference_runs_the_same_protocol_and_prints_the_same_fields() {
    use peerlab_e2e::workspace_root;
    if std::env::var("PEERLAB_SKIP_IPV8").as_deref() == Ok("1") {
        eprintln!("SKIPPED (PEERLAB_SKIP_IPV8=1): the py-ipv8 reference benchmark");
        return;
    }
    let venv_ok = std::process::Command::new("python3")
        .args(["-m", "venv", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        venv_ok,
        "python3 with venv is not installed: install it (`apt-get install python3 python3-venv`; \
         .ci/run does; pyipv8 itself comes from PyPI), or set PEERLAB_SKIP_IPV8=1 to skip this test"
    );
    let venv = std::process::Command::new("bash")
        .arg(workspace_root().join("scripts/ipv8/venv.sh"))
        .output()
        .expect("run scripts/ipv8/venv.sh");
    assert!(
        venv.status.success(),
        "scripts/ipv8/venv.sh failed (needs PyPI for pyipv8):\n{}",
        String::from_utf8_lossy(&venv.stderr)
    );
    let python = String::from_utf8(venv.stdout).unwrap().trim().to_owned();
    let out = std::process::Command::new(&python)
        .arg(workspace_root().join("scripts/bench/ipv8_benaloh.py"))
        .args(["--peers", "12", "--timeout", "60"])
        .output()
        .expect("run ipv8_benaloh.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(m["implementation"], "py-ipv8", "{m}");
    // The same fields as peerlab's own JSON line, less those about how
    // peerlab ran (the reference is one Python process, no pool, no run
    // folder), plus `implementation` (compare.py adds it to peerlab's).
    let dir = Dir::new("bench-fields");
    let run = bench(&dir, &["--peers", "4"]);
    run.expect_code(0);
    let ours = measurements(&run);
    let keys = |v: &Value| -> std::collections::BTreeSet<String> {
        v.as_object()
            .unwrap_or_else(|| panic!("not an object: {v}"))
            .keys()
            .cloned()
            .collect()
    };
    let peerlab_only = ["processes", "shared_verification", "fanout", "run_dir"];
    let mut expected = keys(&ours[0]);
    for k in peerlab_only {
        assert!(expected.remove(k), "peerlab no longer prints {k}: {run}");
    }
    expected.insert("implementation".into());
    assert_eq!(keys(&m), expected, "py-ipv8: {m}\npeerlab: {}", ours[0]);
    assert_eq!(m["peers"], 12, "{m}");
    assert_eq!(m["correct"], true, "{m}");
    // Exactly the protocol's datagrams: n-1 local shares and n-1 copies of
    // the subset sum per peer (no catch-up in the reference).
    assert_eq!(m["messages"], 2 * 12 * 11, "{m}");
    for field in ["protocol_wall_s", "msgs_per_s", "cpu_s", "peak_rss_mb"] {
        assert!(m[field].as_f64().is_some(), "{field} in {m}");
    }
}
