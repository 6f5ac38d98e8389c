//! Real UDP on loopback: 24 overlays in one process, each a tokio task owning
//! its core and a `UdpDriver`, driven the way the runtime drives them (a
//! command channel beside the socket in one `select!`). They find each other
//! by walking from one bootstrap address, then every peer's FullSync message
//! reaches every peer. The test waits on events; the timeout only bounds a hang.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use peerlab_dispersy::udp::UdpDriver;
use peerlab_dispersy::{
    Authentication, CommunityId, Config, Destination, Distribution, MetaMessage, OverlayCore,
    OverlayEvent,
};
use tokio::sync::mpsc;

const PEERS: usize = 24;

enum Cmd {
    Send(Vec<u8>),
    Stop,
}

async fn peer(
    i: usize,
    mut driver: UdpDriver,
    bootstrap: SocketAddr,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    events: mpsc::UnboundedSender<(usize, OverlayEvent)>,
) -> std::io::Result<OverlayCore> {
    let addr = driver.local_addr()?;
    let mut seed = [0u8; 32];
    seed[0] = i as u8 + 1;
    let mut cfg = Config::new(seed, i as u64, addr);
    cfg.bootstrap = vec![bootstrap];
    cfg.target_peers = 8;
    cfg.walk_interval = Duration::from_millis(50);
    cfg.sync_interval = Duration::from_millis(200);
    let mut core = OverlayCore::new(cfg);
    let gossip = core
        .define_message(MetaMessage::new(
            "gossip",
            Authentication::Member,
            Distribution::FullSync,
            Destination::Community(5),
        ))
        .expect("fresh core");
    core.set_community(CommunityId::isolated("UdpLoopback", b"udp-test"));
    core.start(Instant::now());
    loop {
        driver.flush(&mut core);
        let deadline = core.poll_timeout();
        tokio::select! {
            wake = driver.wait(deadline) => {
                let wake = wake?;
                driver.feed(&mut core, Instant::now(), wake)?;
            }
            cmd = cmds.recv() => match cmd {
                Some(Cmd::Send(p)) => {
                    core.send(gossip, &p, &[]).expect("fits a datagram");
                }
                Some(Cmd::Stop) | None => return Ok(core),
            },
        }
        driver.flush(&mut core);
        while let Some(e) = core.poll_event() {
            let _ = events.send((i, e));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_four_peers_discover_each_other_and_gossip_over_loopback_udp() {
    let mut drivers = Vec::new();
    for _ in 0..PEERS {
        drivers.push(
            UdpDriver::bind("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap(),
        );
    }
    let bootstrap = drivers[0].local_addr().unwrap();
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let mut cmd_txs = Vec::new();
    let mut tasks = Vec::new();
    for (i, d) in drivers.into_iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        cmd_txs.push(tx);
        tasks.push(tokio::spawn(peer(i, d, bootstrap, rx, ev_tx.clone())));
    }

    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        // Phase 1: everyone walks until it knows at least 5 peers.
        let mut found: HashMap<usize, BTreeSet<SocketAddr>> = HashMap::new();
        while (0..PEERS).any(|i| found.get(&i).map_or(0, |s| s.len()) < 5) {
            let (i, e) = ev_rx.recv().await.expect("peers alive");
            if let OverlayEvent::PeerDiscovered { addr, .. } = e {
                found.entry(i).or_default().insert(addr);
            }
        }
        // Phase 2: every peer publishes one message; every peer must get all others.
        for (i, tx) in cmd_txs.iter().enumerate() {
            tx.send(Cmd::Send(format!("hello from {i}").into_bytes()))
                .unwrap();
        }
        let mut got: HashMap<usize, BTreeSet<Vec<u8>>> = HashMap::new();
        while (0..PEERS).any(|i| got.get(&i).map_or(0, |s| s.len()) < PEERS - 1) {
            let (i, e) = ev_rx.recv().await.expect("peers alive");
            if let OverlayEvent::Message(d) = e {
                assert!(
                    got.entry(i).or_default().insert(d.payload),
                    "peer {i}: delivered twice"
                );
            }
        }
        got
    })
    .await
    .expect("24 peers over loopback did not all discover and deliver within 60 s");
    for i in 0..PEERS {
        assert!(!outcome[&i].contains(format!("hello from {i}").as_bytes()));
    }
    for tx in &cmd_txs {
        tx.send(Cmd::Stop).unwrap();
    }
    for t in tasks {
        let core = t.await.unwrap().unwrap();
        assert_eq!(core.stored_count(), PEERS);
        let walked = ["introduction-request", "introduction-response"]
            .iter()
            .map(|t| core.stats().of(t).map_or(0, |s| s.msg_in))
            .sum::<u64>();
        assert!(walked > 0, "peer found nobody by walking");
    }
}
