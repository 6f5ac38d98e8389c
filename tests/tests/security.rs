//! End-to-end tests of what docs/security.md promises about a run over
//! real UDP, attacked the way another local user could: the test finds the
//! instances' UDP ports through /proc (as any process of the same user
//! can), then forges packets at them or reads their keys off the wire; and
//! it reads the run folder's permissions.
//!
//! Needs `cargo build --workspace` first (scripts/test does it). Linux only
//! (/proc).

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use peerlab_dispersy::wire::{self, Decoded, IntroductionRequest, Style};
use peerlab_dispersy::{CommunityId, Keypair, PublicKey};
use peerlab_e2e::{Dir, debug_dir, peerlab_bin, workspace_plugin};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The community every run here joins (`set_community_id`): a forger must
/// know it, and the community id travels in clear in every packet.
const COMMUNITY: &str = "5ec0000000000000000000000000000000000018";

fn community() -> CommunityId {
    let mut id = [0u8; 20];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&COMMUNITY[2 * i..2 * i + 2], 16).unwrap();
    }
    CommunityId(id)
}

/// Start `peerlab run CONF --seed 7 -o DIR/output` in the background.
fn spawn_run(dir: &Dir, conf: &Path) -> Child {
    Command::new(peerlab_bin())
        .current_dir(dir.path())
        .arg("run")
        .arg(conf)
        .args(["--seed", "7", "--no-plots", "--output"])
        .arg(dir.path().join("output"))
        .arg("--plugin-path")
        .arg(debug_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting peerlab run")
}

fn finish(child: Child) -> (i32, String) {
    let out = child.wait_with_output().expect("waiting for peerlab run");
    let text = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The UDP ports of the `peerlab instance` processes whose command line
/// names `marker` (the test's own directory), from /proc.
fn instance_ports(marker: &str) -> BTreeSet<u16> {
    let mut inodes = BTreeSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    for p in procs.flatten() {
        let pid = p.file_name();
        if !pid.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !args.iter().any(|a| a == "instance") || !args.iter().any(|a| a.contains(marker)) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path())
                && let Some(n) = link
                    .to_string_lossy()
                    .strip_prefix("socket:[")
                    .and_then(|s| s.strip_suffix(']'))
                    .and_then(|s| s.parse::<u64>().ok())
            {
                inodes.insert(n);
            }
        }
    }
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let inode: u64 = cols.get(9)?.parse().ok()?;
            let port = cols.get(1)?.split(':').nth(1)?;
            inodes
                .contains(&inode)
                .then(|| u16::from_str_radix(port, 16).ok())?
        })
        .collect()
}

/// Wait (bounded) for `n` instance sockets.
fn wait_for_ports(dir: &Dir, n: usize) -> Vec<SocketAddr> {
    let marker = dir.path().to_string_lossy().into_owned();
    let start = Instant::now();
    loop {
        let ports = instance_ports(&marker);
        if ports.len() >= n {
            return ports
                .into_iter()
                .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
                .collect();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "gave up waiting for {n} instance sockets (found {ports:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last value of counter `name` in an instance's statistics.
fn last_counter(run: &Path, id: u32, name: &str) -> f64 {
    let p = run.join(format!("localhost/node001/{id:05}.stats.jsonl"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    // Counters are cumulative: the last line has the total.
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .and_then(|v| v["counters"][name].as_f64())
        .unwrap_or(0.0)
}

/// The Benaloh experiment of 5 instances where instance 1 broadcasts its
/// subset sum last (@6), so a forgery claiming instance 1 arrives first.
fn benaloh_experiment(dir: &Dir, extra_conf: &str) -> PathBuf {
    workspace_plugin("benaloh");
    dir.write(
        "forged.scenario",
        format!(
            "&module dispersy\n&module benaloh\n\
             @0 set_community_id {COMMUNITY}\n@0 start_session\n@0 introduce_peers\n\
             @1 share_local\n@2 share_subset_sum {{2-5}}\n@6 share_subset_sum {{1}}\n\
             @8 print_local_value\n@8 print_total_sum\n@9 stop\n"
        ),
    );
    dir.write(
        "forged.conf",
        format!(
            "experiment_name = forged\nscenario_file = forged.scenario\n\
             sync_subscribers_amount = 5\nexperiment_time = 60\n{extra_conf}"
        ),
    )
}

/// A `broadcast-share` (Benaloh's message id 2) claiming instance 1 with a
/// made-up subset sum, signed with a brand-new key.
fn forged_broadcast() -> Vec<u8> {
    let stranger = Keypair::from_seed(&[0x66; 32]);
    let mut payload = vec![1u8, 2];
    payload.extend_from_slice(&1u64.to_be_bytes());
    payload.extend_from_slice(&((1u64 << 31) - 1).to_be_bytes());
    payload.extend_from_slice(&12345u64.to_be_bytes());
    let mut buf = [0u8; wire::MAX_DATAGRAM];
    let n =
        wire::encode_signed(&mut buf, &community(), 2, &stranger, 1, |w| w.put(&payload)).unwrap();
    buf[..n].to_vec()
}

/// Run the Benaloh experiment, sending the forgery to every instance from
/// the moment their sockets exist until each has started (its first
/// statistics line) plus two seconds, well before instance 1's @6.
fn run_benaloh_under_forgery(dir: &Dir, extra_conf: &str) -> (i32, String, PathBuf) {
    let conf = benaloh_experiment(dir, extra_conf);
    let child = spawn_run(dir, &conf);
    let targets = wait_for_ports(dir, 5);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let forged = forged_broadcast();
    let mut started: Option<Instant> = None;
    let begin = Instant::now();
    while started.is_none_or(|t| t.elapsed() < Duration::from_secs(2)) {
        for t in &targets {
            let _ = sock.send_to(&forged, t);
        }
        if started.is_none()
            && let Ok(run) = std::fs::canonicalize(dir.path().join("output/latest"))
            && (1..=5).all(|id| {
                std::fs::metadata(run.join(format!("localhost/node001/{id:05}.stats.jsonl")))
                    .is_ok_and(|m| m.len() > 0)
            })
        {
            started = Some(Instant::now());
        }
        assert!(
            begin.elapsed() < Duration::from_secs(60),
            "the instances never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, text) = finish(child);
    (code, text, dir.latest_run())
}

fn verdicts(run: &Path) -> Vec<(String, bool, String)> {
    json(&run.join("summary.json"))["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap_or_default().to_string(),
                v["passed"].as_bool().unwrap_or(false),
                v["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_forged_broadcast_share_from_a_new_key_is_dropped_and_the_verdict_passes() {
    let dir = Dir::new("forged-dropped");
    let (code, text, run) = run_benaloh_under_forgery(&dir, "");
    assert_eq!(code, 0, "{text}\nverdicts: {:?}", verdicts(&run));
    assert!(verdicts(&run).iter().all(|v| v.1), "{:?}", verdicts(&run));
    let dropped: f64 = (1..=5)
        .map(|id| last_counter(&run, id, "drop/unknown_author"))
        .sum();
    assert!(
        dropped >= 5.0,
        "every instance dropped the forgery: {dropped}"
    );
}

#[test]
fn with_outsiders_allowed_benaloh_itself_refuses_the_forged_subset_sum() {
    let dir = Dir::new("forged-refused");
    let (code, text, run) = run_benaloh_under_forgery(&dir, "drop_unknown_authors = false\n");
    assert_eq!(code, 0, "{text}\nverdicts: {:?}", verdicts(&run));
    assert!(verdicts(&run).iter().all(|v| v.1), "{:?}", verdicts(&run));
    let rejected: f64 = (1..=5)
        .map(|id| last_counter(&run, id, "stat/benaloh_rejected"))
        .sum();
    assert!(rejected >= 4.0, "instances 2-5 refused it: {rejected}");
    let log = std::fs::read_to_string(run.join("localhost/node001/00002.err")).unwrap_or_default();
    assert!(
        log.contains("claiming instance 1 is not signed by a key of the run"),
        "{log}"
    );
}

/// Keys as peerlab derived them before #18: SHA-256 of a tag, the seed in
/// run.json and the instance id.
fn key_from_run_json(seed: u64, id: u32) -> PublicKey {
    let mut h = Sha256::new();
    h.update(b"peerlab member key v1\0");
    h.update(seed.to_be_bytes());
    h.update(id.to_be_bytes());
    *Keypair::from_seed(&h.finalize().into()).public()
}

#[test]
fn member_keys_are_not_rebuilt_from_run_json_and_the_run_folder_is_owner_only() {
    let dir = Dir::new("keys");
    dir.write(
        "keys.scenario",
        format!("&module dispersy\n@0 set_community_id {COMMUNITY}\n@0 start_session\n@3 stop\n"),
    );
    let conf = dir.write(
        "keys.conf",
        "experiment_name = keys\nscenario_file = keys.scenario\nsync_subscribers_amount = 3\n\
         experiment_time = 30\ndrop_unknown_authors = false\n",
    );
    let child = spawn_run(&dir, &conf);
    let targets = wait_for_ports(&dir, 3);
    // Ask each instance for an introduction: its answer is signed with its key.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let me = sock.local_addr().unwrap();
    let asker = Keypair::from_seed(&[0x77; 32]);
    let mut keys = BTreeSet::new();
    let begin = Instant::now();
    while keys.len() < 3 {
        assert!(
            begin.elapsed() < Duration::from_secs(60),
            "only {} instances answered",
            keys.len()
        );
        for (i, t) in targets.iter().enumerate() {
            let req = IntroductionRequest {
                destination: *t,
                source_lan: me,
                source_wan: me,
                flags: wire::flags::REQ_ADVICE,
                identifier: i as u16,
                extra: b"",
            };
            let mut buf = [0u8; wire::MAX_DATAGRAM];
            let n = wire::encode_signed(
                &mut buf,
                &community(),
                wire::id::INTRODUCTION_REQUEST,
                &asker,
                1,
                |w| req.encode(w, Style::Old),
            )
            .unwrap();
            let _ = sock.send_to(&buf[..n], t);
        }
        let mut buf = [0u8; wire::MAX_DATAGRAM];
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            if let Ok(Decoded::IntroductionResponse(f, _)) = wire::decode(&buf[..n]) {
                keys.insert(f.public_key.to_vec());
            }
        }
    }
    let (code, text) = finish(child);
    assert_eq!(code, 0, "{text}");
    let run = dir.latest_run();
    let record = json(&run.join("run.json"));
    let seed = record["seed"].as_u64().expect("run.json has the seed");
    for id in 1..=3 {
        let guess = key_from_run_json(seed, id);
        assert!(
            !keys.contains(guess.as_bytes().as_slice()),
            "instance {id}'s key follows from run.json's seed"
        );
    }

    // Nobody but the owner can read anything in the run folder.
    let mut stack = vec![run.clone()];
    let mut seen = 0;
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", p.display());
        seen += 1;
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    assert!(seen > 10, "only {seen} entries checked");
    assert_eq!(
        std::fs::metadata(&run).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn a_flood_of_bad_messages_is_recorded_sparingly() {
    let dir = Dir::new("flood");
    workspace_plugin("gossip");
    dir.write(
        "flood.scenario",
        format!(
            "&module dispersy\n&module gossip\n@0 set_community_id {COMMUNITY}\n\
             @0 start_session\n@0 introduce_peers\n@4 report\n@5 stop\n"
        ),
    );
    let conf = dir.write(
        "flood.conf",
        "experiment_name = flood\nscenario_file = flood.scenario\nsync_subscribers_amount = 2\n\
         experiment_time = 30\ndrop_unknown_authors = false\n",
    );
    let child = spawn_run(&dir, &conf);
    let targets = wait_for_ports(&dir, 2);
    let begin = Instant::now();
    while !std::fs::canonicalize(dir.path().join("output/latest")).is_ok_and(|run| {
        (1..=2).all(|id| {
            std::fs::metadata(run.join(format!("localhost/node001/{id:05}.stats.jsonl")))
                .is_ok_and(|m| m.len() > 0)
        })
    }) {
        assert!(begin.elapsed() < Duration::from_secs(60), "never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // 300 signed rumors (gossip's message id 1) whose payload gossip
    // cannot decode: each is an on_message failure.
    let stranger = Keypair::from_seed(&[0x55; 32]);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for gt in 1..=300 {
        let mut buf = [0u8; wire::MAX_DATAGRAM];
        let n = wire::encode_signed(&mut buf, &community(), 1, &stranger, gt, |w| {
            w.put(&[0xFF; 3])
        })
        .unwrap();
        for t in &targets {
            let _ = sock.send_to(&buf[..n], t);
        }
    }
    let (_, text) = finish(child);
    let run = dir.latest_run();
    for id in 1..=2 {
        let err = std::fs::read_to_string(run.join(format!("localhost/node001/{id:05}.err")))
            .unwrap_or_default();
        let lines = err.matches("failed in on_message").count();
        assert!(
            (11..=20).contains(&lines),
            "instance {id}: {lines} lines\n{err}\n{text}"
        );
        assert!(err.contains("on_message failures so far; only some are recorded"));
    }
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    assert!(summary.len() < 20_000, "{} bytes", summary.len());
}

/// plugin-api 1.3 delivers messages through a new method; a plugin built
/// against 1.0 lacks it and must still get every message, through the
/// method's default and its own 1.0 `on_message`.
#[test]
fn a_plugin_built_against_api_1_0_still_receives_messages() {
    let fixtures = peerlab_e2e::fixture_plugins();
    let dir = Dir::new("frozen-messages");
    dir.write(
        "notes.scenario",
        "&module dispersy\n&module frozen\n@0 isolate_community Notes\n@0 start_session\n\
         @0 introduce_peers\n@0 listen\n@1 note hello {1}\n@5 stop\n",
    );
    let run = dir
        .peerlab()
        .arg("run")
        .arg(dir.path().join("notes.scenario"))
        .args([
            "--instances",
            "3",
            "--simulate",
            "--seed",
            "1",
            "--no-plots",
        ])
        .arg("--plugin-path")
        .arg(&fixtures)
        .run();
    run.expect_code(0);
    let folder = dir.latest_run();
    for id in [2, 3] {
        let out = std::fs::read_to_string(folder.join(format!("simulated/node001/{id:05}.out")))
            .unwrap_or_default();
        assert!(
            out.lines()
                .any(|l| l == "frozen got frozen-note \"hello\" from 1"),
            "instance {id}: {out}\n{run}"
        );
    }
}
