//! End-to-end tests of the SLURM runner against a real SLURM: the
//! single-host cluster of `scripts/slurm-local.sh` (one slurmctld, nodes
//! n1..n3 as three slurmd on 127.0.0.1).
//!
//! `scripts/test` starts that cluster, sets `SLURM_CONF` and
//! `PEERLAB_SLURM_TESTS=1`, and stops it afterwards. Without a cluster every
//! test here fails saying how to get one; skipping them is an explicit
//! opt-out, `PEERLAB_SKIP_SLURM=1` (a SKIPPED line each, and scripts/test
//! lists it). The tests take the cluster one at a time (a lock), so one
//! test's job never waits in the queue behind another's.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use peerlab_e2e::slurm::{
    Cancel, Cluster, Shape, job_id, json, processes_mentioning, statuses, wait_for,
};
use peerlab_e2e::{Dir, Run, workspace_root};
use serde_json::Value;

/// The single-host cluster for `test` (see [`Cluster::get`]).
fn cluster(test: &str) -> Option<Cluster> {
    Cluster::get(Shape::SingleHost, test)
}

fn run_slurm(cluster: &Cluster, dir: &Dir, conf: &str, extra: &[&str]) -> Run {
    cluster
        .peerlab(dir)
        .args(["run", conf, "--runner", "slurm", "--time-scale", "0.05"])
        .args(extra)
        .run()
}

const ECHO_SCENARIO: &str = "\
@0:01 echo hello from $EXPERIMENT_NAME
@0:20 echo bye {2-8}
@0:40 stop
";

#[test]
fn nine_instances_spread_over_three_nodes_with_slurm_identities() {
    let Some(cluster) = cluster("nine_instances_spread_over_three_nodes") else {
        return;
    };
    let dir = Dir::new("slurm-echo");
    dir.write("echo.scenario", ECHO_SCENARIO);
    dir.write(
        "echo.conf",
        "experiment_name = echo\nscenario_file = echo.scenario\nrunner = slurm\n\
         node_amount = 3\ninstances_to_run = 10\nexperiment_time = 60\n",
    );
    let run = run_slurm(&cluster, &dir, "echo.conf", &[]);
    run.expect_code(0);
    let folder = dir.latest_run();
    let summary = json(&folder.join("summary.json"));
    assert_eq!(summary["runner"], "slurm");
    assert_eq!(summary["outcome"], "passed", "{summary:#}");
    // 10 over 3 nodes: the first node takes one more; hosts are SLURM's
    // node names (SLURMD_NODENAME), not this machine's hostname.
    let placed: Vec<(u64, String, u64)> = statuses(&summary)
        .into_iter()
        .map(|(id, host, node, status, _)| {
            assert_eq!(status, "finished", "instance {id}");
            (id, host, node)
        })
        .collect();
    let expected: Vec<(u64, String, u64)> = (1..=10)
        .map(|id| {
            let node = if id <= 4 {
                1
            } else if id <= 7 {
                2
            } else {
                3
            };
            (id, format!("n{node}"), node)
        })
        .collect();
    assert_eq!(placed, expected);
    for (id, host, node) in &expected {
        let out = folder.join(format!("{host}/node{node:03}/{id:05}.out"));
        let text =
            std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
        assert!(
            text.contains("hello from echo"),
            "{}: {text}",
            out.display()
        );
        assert_eq!(
            text.contains("bye"),
            (2..=8).contains(id),
            "{}: {text}",
            out.display()
        );
    }
    // The job's own files, and an agent log line per node.
    let script = std::fs::read_to_string(folder.join("slurm/job.sh")).expect("job.sh");
    assert!(script.contains("#SBATCH --nodes=3"), "{script}");
    let job_out = std::fs::read_to_string(folder.join("slurm/job.out")).expect("job.out");
    for (node, ids) in [(1, "1-4"), (2, "5-7"), (3, "8-10")] {
        let line = format!(
            "node agent on n{node} (node {node} of 3, task {}): instances {ids}",
            node - 1
        );
        assert!(
            job_out.contains(&line),
            "job.out lacks {line:?}:\n{job_out}"
        );
    }
    assert_eq!(cluster.job_state(&job_id(&folder)), "COMPLETED");
    cluster.assert_nothing_left(&folder);
}

#[test]
fn benaloh_on_three_nodes_passes_its_verdict() {
    let Some(cluster) = cluster("benaloh_on_three_nodes_passes_its_verdict") else {
        return;
    };
    let dir = Dir::new("slurm-benaloh");
    let conf = workspace_root().join("tests/data/slurm/benaloh_slurm.conf");
    let run = cluster
        .peerlab(&dir)
        .arg("run")
        .arg(&conf)
        .args(["--time-scale", "0.05", "--output"])
        .arg(dir.path().join("output"))
        .run();
    run.expect_code(0)
        .stderr_has("PASSED: 9/9 instances finished");
    let folder = dir.latest_run();
    let summary = json(&folder.join("summary.json"));
    assert_eq!(summary["outcome"], "passed", "{summary:#}");
    assert_eq!(summary["nodes"], 3);
    let verdicts = summary["verdicts"].as_array().expect("verdicts");
    assert!(!verdicts.is_empty(), "no verdict in {summary:#}");
    assert!(verdicts.iter().all(|v| v["passed"] == true), "{summary:#}");
    let mut per_host = std::collections::BTreeMap::<String, usize>::new();
    for (id, host, _, status, _) in statuses(&summary) {
        assert_eq!(status, "finished", "instance {id}");
        *per_host.entry(host).or_default() += 1;
    }
    assert_eq!(
        per_host.into_iter().collect::<Vec<_>>(),
        vec![("n1".into(), 3), ("n2".into(), 3), ("n3".into(), 3)]
    );
    cluster.assert_nothing_left(&folder);
}

#[test]
fn a_job_slurm_cannot_place_fails_with_slurms_reason() {
    let Some(cluster) = cluster("a_job_slurm_cannot_place_fails_with_slurms_reason") else {
        return;
    };
    let dir = Dir::new("slurm-unplaceable");
    dir.write("echo.scenario", ECHO_SCENARIO);
    // The test cluster has 3 nodes; 5 can never be given.
    dir.write(
        "five.conf",
        "experiment_name = five\nscenario_file = echo.scenario\nrunner = slurm\n\
         node_amount = 5\ninstances_to_run = 5\nexperiment_time = 60\n",
    );
    let started = Instant::now();
    let run = run_slurm(&cluster, &dir, "five.conf", &[]);
    run.expect_code(1).stderr_has("SLURM cannot place job");
    // Whatever words this SLURM version picks, they are SLURM's.
    assert!(
        ["PartitionNodeLimit", "PartitionConfig", "ReqNodeNotAvail"]
            .iter()
            .any(|r| run.stderr.contains(r)),
        "no SLURM reason in\n{run}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "waited {:?} for a job that can never run",
        started.elapsed()
    );
    let folder = dir.latest_run();
    let summary = json(&folder.join("summary.json"));
    assert_eq!(summary["outcome"], "failed");
    for (id, _, _, status, error) in statuses(&summary) {
        assert_eq!(status, "never_started", "instance {id}");
        assert!(
            error.contains("SLURM cannot place job"),
            "instance {id}: {error}"
        );
    }
    // The job was cancelled, not left in the queue.
    wait_for("the job to be cancelled", Duration::from_secs(30), || {
        cluster.job_state(&job_id(&folder)) == "CANCELLED"
    });
}

#[test]
fn a_partition_slurm_does_not_have_is_refused_with_its_message() {
    let Some(cluster) = cluster("a_partition_slurm_does_not_have_is_refused") else {
        return;
    };
    let dir = Dir::new("slurm-partition");
    dir.write("echo.scenario", ECHO_SCENARIO);
    dir.write(
        "p.conf",
        "experiment_name = p\nscenario_file = echo.scenario\nrunner = slurm\n\
         node_amount = 2\ninstances_to_run = 2\nslurm_partition = nosuchpartition\n",
    );
    let run = run_slurm(&cluster, &dir, "p.conf", &[]);
    run.expect_code(1)
        .stderr_has("SLURM refused the job")
        .stderr_has("nosuchpartition");
    let summary = json(&dir.latest_run().join("summary.json"));
    assert_eq!(summary["outcome"], "failed");
    assert!(
        statuses(&summary).iter().all(
            |(_, _, _, status, e)| status == "never_started" && e.contains("Invalid partition")
        ),
        "{summary:#}"
    );
}

#[test]
fn with_immediate_a_job_that_must_wait_fails_instead() {
    let Some(cluster) = cluster("with_immediate_a_job_that_must_wait_fails_instead") else {
        return;
    };
    let dir = Dir::new("slurm-immediate");
    // Hold one node with a job of our own, so 3 nodes are not free now.
    let holder = cluster
        .command("sbatch")
        .args([
            "--parsable",
            "-N",
            "1",
            "--time=5",
            "--output=/dev/null",
            "--wrap",
            "sleep 300",
        ])
        .output()
        .expect("sbatch");
    assert!(
        holder.status.success(),
        "{}",
        String::from_utf8_lossy(&holder.stderr)
    );
    let holder = String::from_utf8_lossy(&holder.stdout).trim().to_string();
    let cancel = Cancel(&cluster, holder.clone());
    wait_for("the holding job to run", Duration::from_secs(30), || {
        cluster.job_state(&holder) == "RUNNING"
    });
    dir.write("echo.scenario", ECHO_SCENARIO);
    dir.write(
        "now.conf",
        "experiment_name = now\nscenario_file = echo.scenario\nrunner = slurm\n\
         node_amount = 3\ninstances_to_run = 3\nslurm_immediate = true\n",
    );
    let run = run_slurm(&cluster, &dir, "now.conf", &[]);
    drop(cancel);
    run.expect_code(1)
        .stderr_has("SLURM cannot place job")
        .stderr_has("slurm_immediate");
    assert!(
        ["Resources", "Priority"]
            .iter()
            .any(|r| run.stderr.contains(r)),
        "no SLURM reason in\n{run}"
    );
}

#[test]
fn a_killed_instance_is_reported_and_node_local_outputs_come_back() {
    let Some(cluster) = cluster("a_killed_instance_is_reported") else {
        return;
    };
    let dir = Dir::new("slurm-kill");
    let local = Dir::new("slurm-node-local");
    dir.write("k.scenario", "@0 echo up\n@0:30 echo later\n@1:00 stop\n");
    dir.write(
        "k.conf",
        format!(
            "experiment_name = k\nscenario_file = k.scenario\nrunner = slurm\n\
             node_amount = 3\ninstances_to_run = 3\nexperiment_time = 120\n\
             slurm_local_output_dir = {}\n",
            local.path().display()
        ),
    );
    let child = cluster
        .peerlab_child(&dir)
        .args(["run", "k.conf", "--runner", "slurm", "--time-scale", "0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting peerlab run");
    // Instance 2 runs on n2; its process writes its resources file in the
    // node-local folder, which tells us its pid.
    let mut pid = 0i32;
    wait_for("instance 2's process", Duration::from_secs(60), || {
        let Ok(entries) = std::fs::read_dir(local.path()) else {
            return false;
        };
        for e in entries.flatten() {
            let p = e.path().join("n2/node002/process001.resources.jsonl");
            if let Ok(text) = std::fs::read_to_string(&p)
                && let Some(line) = text.lines().next()
                && let Ok(v) = serde_json::from_str::<Value>(line)
                && let Some(p) = v["pid"].as_i64()
            {
                pid = p as i32;
                return true;
            }
        }
        false
    });
    // Wait until it has printed (so it has outputs to lose), then kill it.
    wait_for("instance 2's first line", Duration::from_secs(60), || {
        std::fs::read_dir(local.path())
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_to_string(e.path().join("n2/node002/00002.out"))
                    .is_ok_and(|t| t.contains("up"))
            })
    });
    // SAFETY: plain kill(2) of a process this test's run started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let out = child.wait_with_output().expect("waiting for peerlab run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let folder = dir.latest_run();
    let summary = json(&folder.join("summary.json"));
    let st = statuses(&summary);
    assert_eq!(st[1].3, "crashed", "{summary:#}");
    assert!(st[1].4.contains("signal 9"), "{summary:#}");
    assert_eq!(
        (st[0].3.as_str(), st[2].3.as_str()),
        ("finished", "finished")
    );
    // Every node's outputs are in the run folder, the killed one's too,
    // with the supervisor's note; the node-local copies are gone.
    for (id, node) in [(1, 1), (2, 2), (3, 3)] {
        let out = folder.join(format!("n{node}/node{node:03}/{id:05}.out"));
        let text =
            std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
        assert!(text.contains("up"), "{}: {text}", out.display());
        assert_eq!(text.contains("later"), id != 2, "{}: {text}", out.display());
    }
    let err = std::fs::read_to_string(folder.join("n2/node002/00002.err")).expect("00002.err");
    assert!(err.contains("ended abnormally"), "{err}");
    let exits = std::fs::read_to_string(folder.join("slurm/node002.exits.jsonl")).expect("exits");
    assert!(exits.contains("signal 9"), "{exits}");
    let left: Vec<_> = std::fs::read_dir(local.path())
        .expect("local dir")
        .collect();
    assert!(left.is_empty(), "node-local folders left behind: {left:?}");
    cluster.assert_nothing_left(&folder);
    let still = processes_mentioning(&local.path().to_string_lossy());
    assert!(still.is_empty(), "instance processes left: {still:?}");
}

/// Start a 3-node job that would run 10 minutes, wait until every instance
/// has printed, send `signal` to `peerlab run`, and check the job is
/// cancelled and the run ends as interrupted with its outputs.
fn a_stop_signal_cancels_the_job_and_keeps_the_outputs(test: &str, signal: i32) {
    let Some(cluster) = cluster(test) else {
        return;
    };
    let dir = Dir::new(test);
    dir.write("c.scenario", "@0 echo up\n@10:00 stop\n");
    dir.write(
        "c.conf",
        "experiment_name = c\nscenario_file = c.scenario\nrunner = slurm\n\
         node_amount = 3\ninstances_to_run = 3\nexperiment_time = 900\n",
    );
    let child = cluster
        .peerlab_child(&dir)
        .args(["run", "c.conf", "--runner", "slurm"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting peerlab run");
    wait_for("every instance to print", Duration::from_secs(60), || {
        let Ok(folder) = std::fs::canonicalize(dir.path().join("output/latest")) else {
            return false;
        };
        (1..=3).all(|n| {
            std::fs::read_to_string(folder.join(format!("n{n}/node{n:03}/{n:05}.out")))
                .is_ok_and(|t| t.contains("up"))
        })
    });
    let folder = dir.latest_run();
    let job = job_id(&folder);
    assert_eq!(cluster.job_state(&job), "RUNNING");
    // SAFETY: plain kill(2) of the child this test started.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let out = child.wait_with_output().expect("waiting for peerlab run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let summary = json(&folder.join("summary.json"));
    assert_eq!(summary["outcome"], "interrupted", "{summary:#}");
    assert_eq!(cluster.job_state(&job), "CANCELLED");
    for n in 1..=3 {
        let text = std::fs::read_to_string(folder.join(format!("n{n}/node{n:03}/{n:05}.out")))
            .expect("output kept");
        assert!(text.contains("up"));
    }
    cluster.assert_nothing_left(&folder);
}

#[test]
fn ctrl_c_cancels_the_job_and_keeps_the_outputs() {
    a_stop_signal_cancels_the_job_and_keeps_the_outputs("slurm-ctrl-c", libc::SIGINT);
}

#[test]
fn sigterm_cancels_the_job_and_keeps_the_outputs() {
    a_stop_signal_cancels_the_job_and_keeps_the_outputs("slurm-sigterm", libc::SIGTERM);
}

#[test]
fn killing_peerlab_run_ends_the_job_even_with_an_instance_stuck_in_a_callback() {
    let Some(cluster) = cluster("killing_peerlab_run_ends_the_job") else {
        return;
    };
    let dir = Dir::new("slurm-orphans");
    // Instance 1 (on n1) gets stuck in a callback that never returns, so it
    // cannot notice that the sync server went away; its node agent must.
    dir.write(
        "o.scenario",
        "&module stuck\n@0 echo up\n@1 stall {1}\n@10:00 stop\n",
    );
    dir.write(
        "o.conf",
        "experiment_name = o\nscenario_file = o.scenario\nrunner = slurm\n\
         node_amount = 3\ninstances_to_run = 3\nexperiment_time = 900\n",
    );
    let plugins = peerlab_e2e::fixture_plugins();
    let mut child = cluster
        .peerlab_child(&dir)
        .args(["run", "o.conf", "--runner", "slurm", "--plugin-path"])
        .arg(&plugins)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting peerlab run");
    let has = |folder: &Path, n: u32, text: &str| {
        std::fs::read_to_string(folder.join(format!("n{n}/node{n:03}/{n:05}.out")))
            .is_ok_and(|t| t.lines().any(|l| l == text))
    };
    wait_for(
        "instance 1 to be stuck and the others to print",
        Duration::from_secs(60),
        || {
            let Ok(folder) = std::fs::canonicalize(dir.path().join("output/latest")) else {
                return false;
            };
            has(&folder, 1, "stalling") && (2..=3).all(|n| has(&folder, n, "up"))
        },
    );
    let folder = dir.latest_run();
    let job = job_id(&folder);
    let _cancel = Cancel(&cluster, job.clone());
    assert_eq!(cluster.job_state(&job), "RUNNING");
    let _ = child.kill();
    let _ = child.wait();
    wait_for(
        "the job to end without peerlab run",
        Duration::from_secs(60),
        || cluster.job_state(&job) != "RUNNING",
    );
    cluster.assert_nothing_left(&folder);
}

#[test]
fn a_sweep_runs_each_point_as_a_slurm_job() {
    let Some(cluster) = cluster("a_sweep_runs_each_point_as_a_slurm_job") else {
        return;
    };
    let dir = Dir::new("slurm-sweep");
    dir.write("echo.scenario", ECHO_SCENARIO);
    dir.write(
        "echo.conf",
        "experiment_name = echo\nscenario_file = echo.scenario\nrunner = slurm\n\
         node_amount = 3\ninstances_to_run = 3\nexperiment_time = 60\n",
    );
    let run = cluster
        .peerlab(&dir)
        .args([
            "sweep",
            "echo.conf",
            "--param",
            "instances_to_run=3,4",
            "--time-scale",
            "0.05",
            "--no-plots",
            "--name",
            "sl",
        ])
        .run();
    run.expect_code(0).stderr_has("sweep 2/2 done");
    let runs_root = dir.path().join("output/sweeps/sl/runs");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&runs_root).expect("the sweep's runs") {
        let entry = entry.unwrap();
        let folder = entry.path();
        // `latest` is a link to one of them.
        if entry.file_type().unwrap().is_symlink() || !folder.join("run.json").is_file() {
            continue;
        }
        let record = json(&folder.join("run.json"));
        let summary = json(&folder.join("summary.json"));
        assert_eq!(summary["runner"], "slurm", "{summary:#}");
        assert_eq!(summary["outcome"], "passed", "{summary:#}");
        // A job of SLURM's ran it: its instances are on SLURM's nodes.
        let hosts: std::collections::BTreeSet<String> = statuses(&summary)
            .into_iter()
            .map(|(_, host, _, status, _)| {
                assert_eq!(status, "finished");
                host
            })
            .collect();
        assert!(hosts.iter().all(|h| h.starts_with('n')), "{hosts:?}");
        assert!(!job_id(&folder).is_empty());
        seen.push(record["instances"].as_u64().unwrap());
        cluster.assert_nothing_left(&folder);
    }
    seen.sort();
    assert_eq!(seen, vec![3, 4], "one SLURM run per grid point");
}

/// A Python experiment module on peerlab's Python client (python/peerlab),
/// as an external instance (tests/tests/open.rs runs the same locally).
const PYTHON_PEER: &str = r#"
from peerlab import ExperimentModule, experiment_callback, run

class Greeter(ExperimentModule):
    @experiment_callback
    def greet(self, name: str):
        self.print(f"hello {name} from {self.instance_id} of {self.instances}")
        self.stat("greetings", 1)

    @experiment_callback
    def census(self):
        self.print("peers: " + ",".join(str(p.id) for p in self.peers))

if __name__ == "__main__":
    run(Greeter)
"#;

#[test]
fn external_instances_run_on_the_nodes_and_their_outputs_come_back() {
    if std::env::var("PEERLAB_SKIP_IPV8").as_deref() == Ok("1") {
        eprintln!("skipped: PEERLAB_SKIP_IPV8=1 (the Python client's tests)");
        return;
    }
    let Some(cluster) = cluster("external_instances_run_on_the_nodes") else {
        return;
    };
    let dir = Dir::new("slurm-external");
    let local = Dir::new("slurm-external-node-local");
    let python = workspace_root().join("python");
    dir.write("peer.py", PYTHON_PEER);
    dir.write(
        "cb.json",
        r#"{"callbacks": {"greet": {"params": [{"name": "name", "type": "str"}]}, "census": {}}}"#,
    );
    dir.write(
        "x.scenario",
        "@@ greet setup {4-5}\n@0 echo up {1-3}\n@1 greet world {4-5}\n@2 census {4-5}\n@3 stop\n",
    );
    // 5 instances on 3 nodes (1-2, 3-4, 5), the last two external: node 2
    // runs a peerlab instance and an external one, node 3 an external one.
    dir.write(
        "x.conf",
        format!(
            "experiment_name = x\nscenario_file = x.scenario\nrunner = slurm\nnode_amount = 3\n\
             instances_to_run = 5\nexternal_instances = 2\nexternal_callbacks = cb.json\n\
             external_cmd = PYTHONPATH={} exec python3 peer.py\nexperiment_time = 60\n\
             slurm_local_output_dir = {}\n",
            python.display(),
            local.path().display()
        ),
    );
    cluster
        .peerlab(&dir)
        .args(["check", "x.conf"])
        .run()
        .expect_code(0);
    let run = cluster
        .peerlab(&dir)
        .args(["run", "x.conf", "--time-scale", "0.2", "--no-plots"])
        .run();
    run.expect_code(0);
    let folder = dir.latest_run();
    let summary = json(&folder.join("summary.json"));
    assert_eq!(summary["outcome"], "passed", "{summary:#}");
    let placed: Vec<(u64, String, u64, String)> = statuses(&summary)
        .into_iter()
        .map(|(id, host, node, status, _)| (id, host, node, status))
        .collect();
    let at = |id: u64, node: u64| (id, format!("n{node}"), node, "finished".to_string());
    assert_eq!(
        placed,
        vec![at(1, 1), at(2, 1), at(3, 2), at(4, 2), at(5, 3)],
        "{summary:#}"
    );
    // Their stdout in the node's folder, copied back from the node-local one.
    for (id, node) in [(4, 2), (5, 3)] {
        let node_dir = folder.join(format!("n{node}/node{node:03}"));
        let out = std::fs::read_to_string(node_dir.join(format!("{id:05}.out")))
            .unwrap_or_else(|e| panic!("{}: {e}", node_dir.display()));
        assert_eq!(
            out,
            format!("hello setup from {id} of 5\nhello world from {id} of 5\npeers: 1,2,3,4,5\n")
        );
        assert!(node_dir.join(format!("{id:05}.schedule.json")).is_file());
        assert!(node_dir.join(format!("{id:05}.events.jsonl")).is_file());
    }
    let peers = json(&folder.join("peers.json"));
    let kinds: Vec<&str> = peers["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| p["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        ["peerlab", "peerlab", "peerlab", "external", "external"]
    );
    // Node 3's agent started instance 5 alone, as a process of its own,
    // and reported its clean end.
    let exits = std::fs::read_to_string(folder.join("slurm/node003.exits.jsonl")).expect("exits");
    let exit: Value = serde_json::from_str(exits.trim()).expect("one exit line");
    assert_eq!(exit["ids"], serde_json::json!([5]), "{exits}");
    assert_eq!(exit["clean"], true, "{exits}");
    let left: Vec<_> = std::fs::read_dir(local.path())
        .expect("local dir")
        .collect();
    assert!(left.is_empty(), "node-local folders left behind: {left:?}");
    cluster.assert_nothing_left(&folder);
}

#[test]
fn an_external_instance_that_crashes_on_a_node_is_reported_with_its_status() {
    let Some(cluster) = cluster("an_external_instance_that_crashes_on_a_node") else {
        return;
    };
    let dir = Dir::new("slurm-external-crash");
    dir.write("x.scenario", "@0 echo peerlab up {1}\n@1 stop {1}\n");
    dir.write(
        "x.conf",
        "experiment_name = x\nscenario_file = x.scenario\nrunner = slurm\nnode_amount = 2\n\
         instances_to_run = 2\nexternal_instances = 1\n\
         external_cmd = echo external up; echo it broke >&2; exit 3\nexperiment_time = 4\n",
    );
    let run = run_slurm(&cluster, &dir, "x.conf", &["--no-plots"]);
    run.expect_code(1);
    let folder = dir.latest_run();
    let summary = json(&folder.join("summary.json"));
    let st = statuses(&summary);
    // It never registered, yet it is placed where it ran: node 2.
    assert_eq!(
        (
            st[1].0,
            st[1].1.as_str(),
            st[1].2,
            st[1].3.as_str(),
            st[1].4.as_str()
        ),
        (2, "n2", 2, "crashed", "its process ended: exit code 3"),
        "{summary:#}"
    );
    assert_eq!(
        st[0].4, "instances 2 ended before the start, so the run cannot begin",
        "{summary:#}"
    );
    let node = folder.join("n2/node002");
    assert_eq!(
        std::fs::read_to_string(node.join("00002.out")).expect("00002.out"),
        "external up\n"
    );
    let err = std::fs::read_to_string(node.join("00002.err")).expect("00002.err");
    assert!(err.starts_with("it broke\n"), "{err}");
    assert!(
        err.contains("peerlab: instance 2 ended abnormally: its process ended: exit code 3"),
        "{err}"
    );
    let exits = std::fs::read_to_string(folder.join("slurm/node002.exits.jsonl")).expect("exits");
    assert!(exits.contains("exit code 3"), "{exits}");
    cluster.assert_nothing_left(&folder);
}

#[test]
fn an_external_instance_that_never_registers_is_reported_within_registration_timeout() {
    let Some(cluster) = cluster("an_external_instance_that_never_registers") else {
        return;
    };
    let dir = Dir::new("slurm-external-silent");
    dir.write("x.scenario", "@0 echo peerlab up {1}\n@1 stop {1}\n");
    dir.write(
        "x.conf",
        "experiment_name = x\nscenario_file = x.scenario\nrunner = slurm\nnode_amount = 2\n\
         instances_to_run = 2\nexternal_instances = 1\nexternal_cmd = exec sleep 617\n\
         experiment_time = 60\nregistration_timeout = 3\n",
    );
    let run = run_slurm(&cluster, &dir, "x.conf", &["--no-plots"]);
    run.expect_code(1);
    let folder = dir.latest_run();
    let summary = json(&folder.join("summary.json"));
    assert_eq!(summary["outcome"], "timed_out", "{summary:#}");
    let st = statuses(&summary);
    assert_eq!(
        (st[1].3.as_str(), st[1].4.as_str()),
        ("never_started", "instances 2 never registered within 3.0 s"),
        "{summary:#}"
    );
    // The job was cancelled and the program stopped with it.
    cluster.assert_nothing_left(&folder);
    wait_for(
        "the silent program to be stopped",
        Duration::from_secs(30),
        || processes_mentioning("sleep 617").is_empty(),
    );
}

#[test]
fn peers_on_three_nodes_find_each_other_only_through_the_built_in_tracker() {
    let Some(cluster) = cluster("peers_find_each_other_only_through_the_built_in_tracker") else {
        return;
    };
    let dir = Dir::new("slurm-tracker");
    // No introduce_peers, no set_bootstrap: Gumby's tracker keys alone.
    dir.write(
        "d.scenario",
        "&module dispersy\n&module gossip\n@@ isolate_community SlurmTracker\n\
         @0 start_session\n@3 publish\n@12 report\n@13 stop\n",
    );
    dir.write(
        "d.conf",
        "scenario_file = d.scenario\nrunner = slurm\nnode_amount = 3\ninstances_to_run = 4\n\
         tracker_cmd = run_tracker.sh\ntracker_port = __unique_port__\n",
    );
    let run = cluster
        .peerlab(&dir)
        .args(["run", "d.conf", "--time-scale", "0.5", "--no-plots"])
        .run();
    run.expect_code(0).stderr_has(
        "verdict gossip/everyone holds every rumor: PASS — all 4 instances hold all 4 rumors",
    );
    let folder = dir.latest_run();
    let peers = json(&folder.join("peers.json"));
    let tracker = &peers["peers"][0];
    assert_eq!(tracker["id"], 0, "{peers:#}");
    assert_eq!(tracker["kind"], "tracker", "{peers:#}");
    let record = json(&folder.join("run.json"));
    let port = record["config"]["tracker_port"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        tracker["addr"]
            .as_str()
            .is_some_and(|a| a.ends_with(&format!(":{port}"))),
        "the tracker's row has the run's tracker_port {port}: {peers:#}"
    );
    // The instances ran on SLURM's nodes.
    let hosts: std::collections::BTreeSet<String> = statuses(&json(&folder.join("summary.json")))
        .into_iter()
        .map(|(_, host, ..)| host)
        .collect();
    assert_eq!(hosts.len(), 3, "{hosts:?}");
    cluster.assert_nothing_left(&folder);
}
