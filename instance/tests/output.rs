//! The instance state machine driven by hand (here, outside `src/`, because
//! a test needs a clock reading to start from): no network, no files (an
//! in-memory [`Storage`] that can refuse writes, as a full disk does).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peerlab_lang::{NoIncludes, Vars, parse_scenario};
use peerlab_run::EndStatus;

use peerlab_instance::record::{OutputFile, Record, Storage};
use peerlab_instance::{Instance, OverlayTuning, ScheduledCall, Shared, overlay_config};

/// What an instance stored, per file; files in `full` refuse every write.
#[derive(Default)]
struct Memory {
    files: HashMap<OutputFile, Vec<u8>>,
    full: HashSet<OutputFile>,
}

#[derive(Clone, Default)]
struct MemoryStorage(Arc<Mutex<Memory>>);

impl MemoryStorage {
    fn text(&self, file: OutputFile) -> String {
        let m = self.0.lock().unwrap();
        String::from_utf8_lossy(m.files.get(&file).map(Vec::as_slice).unwrap_or_default())
            .into_owned()
    }
}

impl Storage for MemoryStorage {
    fn append(&mut self, file: OutputFile, bytes: &[u8]) -> io::Result<()> {
        let mut m = self.0.lock().unwrap();
        if m.full.contains(&file) {
            return Err(io::Error::other("No space left on device"));
        }
        m.files.entry(file).or_default().extend_from_slice(bytes);
        Ok(())
    }

    fn name(&self, file: OutputFile) -> String {
        format!("memory:{file:?}")
    }
}

/// One instance of a scenario of `core` commands, storing into memory.
fn instance(scenario: &str, storage: MemoryStorage, t0: Instant) -> Instance {
    let (sc, diags) = parse_scenario("t.scenario", scenario, &mut NoIncludes, &Vars::new());
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    let registry = peerlab_instance::modules::Registry::core_only();
    let commands = sc
        .commands
        .iter()
        .map(|c| ScheduledCall::new(c, registry.bind_command(c).unwrap()))
        .collect();
    let shared = Arc::new(Shared {
        registry: Arc::new(registry),
        commands,
        config: BTreeMap::new(),
        instances: 1,
        run_seed: 7,
        time_scale: 1.0,
        run_identity: b"test".to_vec(),
        pool: None,
        overlay: OverlayTuning::default(),
        topology: None,
    });
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let overlay = overlay_config(&shared, 1, addr, None);
    Instance::new(1, shared, overlay, Record::new(Box::new(storage)), t0)
}

/// Drive `inst` on its own deadlines until it is finished.
fn run_to_the_end(inst: &mut Instance, t0: Instant) -> peerlab_instance::Outcome {
    let directory = Arc::new(peerlab_dispersy::PeerDirectory::default());
    inst.run_phase(t0, peerlab_instance::EarlyPhase::Load);
    inst.run_phase(t0, peerlab_instance::EarlyPhase::Setup);
    inst.start(t0, t0, directory);
    let mut buf = vec![0u8; peerlab_dispersy::wire::MAX_DATAGRAM];
    for _ in 0..1000 {
        while inst.poll_transmit(&mut buf).is_some() {}
        if inst.finished() {
            return inst.end(inst.poll_timeout().unwrap_or(t0 + Duration::from_secs(60)));
        }
        let at = inst
            .poll_timeout()
            .expect("a running instance has a deadline");
        inst.handle_timeout(at);
    }
    panic!("the instance never finished");
}

#[test]
fn output_that_cannot_be_written_fails_the_instance_and_its_end_event_says_why() {
    let storage = MemoryStorage::default();
    storage.0.lock().unwrap().full.insert(OutputFile::Out);
    let t0 = Instant::now();
    let mut inst = instance("@0 echo one\n@1 echo two\n@2 stop\n", storage.clone(), t0);
    let outcome = run_to_the_end(&mut inst, t0);
    let peerlab_instance::Outcome::Failed(why) = &outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        why,
        "output lost: 2 lines (8 bytes) could not be written to memory:Out: No space left on device"
    );
    assert_eq!(outcome.status().0, EndStatus::Failed);
    // The events (another file) were written, ending with the loss.
    let events = storage.text(OutputFile::Events);
    let end: serde_json::Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    assert_eq!(end["kind"], "end", "{events}");
    assert_eq!(end["status"], "failed", "{events}");
    assert_eq!(end["text"], why.as_str(), "{events}");
}

#[test]
fn an_instance_that_wrote_everything_ends_finished_without_a_why() {
    let storage = MemoryStorage::default();
    let t0 = Instant::now();
    let mut inst = instance("@0 echo one\n@1 stop\n", storage.clone(), t0);
    assert_eq!(
        run_to_the_end(&mut inst, t0),
        peerlab_instance::Outcome::Finished
    );
    assert_eq!(storage.text(OutputFile::Out), "one\n");
    let events = storage.text(OutputFile::Events);
    let end: serde_json::Value = serde_json::from_str(events.lines().last().unwrap()).unwrap();
    assert_eq!(end["status"], "finished", "{events}");
    assert!(end.get("text").is_none(), "{events}");
}
