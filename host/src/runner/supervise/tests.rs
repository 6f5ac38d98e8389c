//! Tests of supervision: the timeouts, stop signals and early ends as a
//! runner sees them, and the notes an abnormal end leaves in `.err`.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use super::end::note_abnormal_end;
use super::*;
use crate::runner::interrupt::StopSignal;
use peerlab_sync::client::{Hello, SyncClient};
use peerlab_sync::protocol::ClientMsg;

/// A launcher whose processes never show up (or have all gone).
struct Nothing;

impl Launcher for Nothing {
    fn stop(&mut self, _force: bool) {}
    fn running(&self) -> bool {
        false
    }
}

fn settings(dir: &Path, instances: u32) -> RunSettings {
    let scenario = dir.join("s.scenario");
    fs::write(&scenario, "@1 stop\n").unwrap();
    RunSettings {
        experiment: "unit".into(),
        config_path: None,
        scenario_path: scenario,
        config: Default::default(),
        instances,
        instances_per_process: 1,
        seed: 1,
        time_scale: 1.0,
        timeout: Duration::from_secs(30),
        registration_timeout: Duration::from_millis(300),
        start_delay: Duration::from_millis(1),
        output_root: dir.join("output"),
        plugin_path: Vec::new(),
        modules: Vec::new(),
        metrics: Vec::new(),
        sync_port: 0,
        progress: false,
        plugins: Vec::new(),
        sources: Vec::new(),
        source_names: Default::default(),
    }
}

/// A local run's folder and sync server on a free port.
async fn prepared(settings: &RunSettings) -> Prepared {
    prepare(
        settings,
        "local",
        1,
        Vec::new(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

async fn connect(prepared: &Prepared, id: u32) -> SyncClient {
    SyncClient::connect(
        prepared.server.local_addr(),
        Hello {
            token: prepared.token.clone(),
            host: "localhost".into(),
            node: 1,
            ids: vec![id],
            count: 1,
        },
        Duration::from_secs(5),
    )
    .await
    .unwrap()
}

fn status(summary: &folder::Summary, id: u32) -> folder::InstanceStatus {
    summary
        .instance_status
        .iter()
        .find(|s| s.id == id)
        .unwrap()
        .clone()
}

#[test]
fn an_abnormal_end_copies_a_bounded_tail_and_the_panic_message() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("process001.stderr");
    // 200 MB of one line (sparse: no disk), then a panic and its backtrace.
    let f = fs::File::create(&stderr).unwrap();
    f.set_len(200 << 20).unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(&stderr).unwrap();
    writeln!(f).unwrap();
    writeln!(f, "thread 'main' panicked at plugins/x/src/lib.rs:9:9:").unwrap();
    writeln!(f, "the share list was empty").unwrap();
    writeln!(f, "stack backtrace:").unwrap();
    for i in 0..60 {
        writeln!(f, "  {i}: some::frame").unwrap();
    }
    drop(f);
    note_abnormal_end(
        dir.path(),
        &[],
        2,
        "its process ended: killed by signal 6",
        Some(&stderr),
    );
    let err_path = dir.path().join("localhost/node001/00002.err");
    let len = fs::metadata(&err_path).unwrap().len();
    assert!(len < 16 << 10, ".err grew by {len} bytes");
    let err = fs::read_to_string(&err_path).unwrap();
    assert!(err.contains("killed by signal 6"), "{err}");
    assert!(err.contains("  the share list was empty\n"), "{err}");
    assert!(err.contains("  59: some::frame"), "{err}");
}

#[tokio::test]
async fn the_registration_timeout_names_the_instances_that_never_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path(), 3);
    // Long enough that a loaded machine registers instance 2 in time
    // (0.3 s was not); the run must not end before it.
    settings.registration_timeout = Duration::from_secs(2);
    let began = Instant::now();
    let prepared = prepared(&settings).await;
    // Instance 2 registers and waits at the barrier; 1 and 3 never come.
    let client = connect(&prepared, 2).await;
    client.send(&ClientMsg::Ready {
        id: 2,
        addr: "127.0.0.1:9".into(),
        public_key: "00".into(),
    });
    let (_tx, events) = mpsc::unbounded_channel();
    let summary = supervise(
        &settings,
        prepared,
        &mut Nothing,
        events,
        &Interrupt::never(),
    )
    .await
    .unwrap();
    assert_eq!(summary.outcome.map(|o| o.as_str()), Some("timed_out"));
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(60),
        "the registration timeout of 2 s ended the run after {took:?}"
    );
    let why = "instances 1,3 never registered within 2.0 s";
    assert_eq!(status(&summary, 2).status.as_str(), "timed_out");
    assert_eq!(status(&summary, 2).error.as_deref(), Some(why));
    for id in [1, 3] {
        let s = status(&summary, id);
        assert_eq!(s.status.as_str(), "never_started");
        assert_eq!(s.error.as_deref(), Some(why), "{s:?}");
    }
}

/// A launcher whose processes run until forced, and which is asked
/// again to stop (a second signal) as soon as it is asked the first time.
struct Stubborn {
    interrupt: Interrupt,
    stops: Vec<(bool, Instant)>,
}

impl Launcher for Stubborn {
    fn stop(&mut self, force: bool) {
        self.stops.push((force, Instant::now()));
        if !force {
            self.interrupt.raise(StopSignal::Hangup);
        }
    }
    fn running(&self) -> bool {
        !self.stops.iter().any(|(force, _)| *force)
    }
}

#[tokio::test]
async fn a_stop_signal_interrupts_the_run_and_a_second_one_skips_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path(), 2);
    settings.registration_timeout = Duration::from_secs(600);
    let prepared = prepared(&settings).await;
    let _client = connect(&prepared, 1).await;
    let interrupt = Interrupt::never();
    // Received before supervision starts (e.g. while the job was submitted).
    interrupt.raise(StopSignal::Terminate);
    let mut launcher = Stubborn {
        interrupt: interrupt.clone(),
        stops: Vec::new(),
    };
    let (_tx, events) = mpsc::unbounded_channel();
    let summary = tokio::time::timeout(
        Duration::from_secs(30),
        supervise(&settings, prepared, &mut launcher, events, &interrupt),
    )
    .await
    .expect("the run ends")
    .unwrap();
    assert_eq!(summary.outcome.map(|o| o.as_str()), Some("interrupted"));
    for id in [1, 2] {
        let s = status(&summary, id);
        assert_eq!(s.status.as_str(), "interrupted");
        assert_eq!(s.error.as_deref(), Some("stopped by SIGTERM"), "{s:?}");
    }
    let forces: Vec<bool> = launcher.stops.iter().map(|s| s.0).collect();
    assert_eq!(forces, [false, true], "a polite stop, then a forced one");
    let waited = launcher.stops[1].1 - launcher.stops[0].1;
    assert!(
        waited < GRACE,
        "the second signal did not wait for the grace: {waited:?}"
    );
}

#[tokio::test]
async fn an_instance_that_ends_before_the_start_stops_the_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(dir.path(), 2);
    settings.registration_timeout = Duration::from_secs(600);
    let prepared = prepared(&settings).await;
    let client = connect(&prepared, 1).await;
    client.send(&ClientMsg::Done {
        id: 1,
        status: peerlab_run::EndStatus::Failed,
        exit_code: None,
        error: Some("@@ line failed".into()),
    });
    let (_tx, events) = mpsc::unbounded_channel();
    let summary = tokio::time::timeout(
        Duration::from_secs(30),
        supervise(
            &settings,
            prepared,
            &mut Nothing,
            events,
            &Interrupt::never(),
        ),
    )
    .await
    .expect("the run ends long before the 600 s registration timeout")
    .unwrap();
    assert_eq!(status(&summary, 1).status.as_str(), "failed");
    let two = status(&summary, 2);
    assert_eq!(two.status.as_str(), "never_started");
    assert_eq!(
        two.error.as_deref(),
        Some("instances 1 ended before the start, so the run cannot begin")
    );
}
