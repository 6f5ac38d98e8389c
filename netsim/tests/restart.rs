//! Overlay tests of a member that comes back after being away (churn's
//! `leave` then `restart store=empty`, on bare cores over SimNet): it
//! catches up by catch-up sync like a newcomer, however long its peers'
//! sync had backed off and however many of them are away when it is back.
//! Must not: sleep or use sockets (virtual time only).

use std::sync::Arc;
use std::time::Duration;

use peerlab_dispersy::{
    Authentication, CommunityId, Config, Destination, Distribution, MetaMessage, OverlayCore,
    PeerDirectory,
};
use peerlab_netsim::LinkModel;
use peerlab_netsim::overlay::SimNet;

const PEERS: usize = 6;
/// The member that leaves and comes back.
const BACK: usize = PEERS - 1;

fn key_seed(i: usize) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    s
}

/// `PEERS` members knowing each other, syncing every second (the default).
fn build(seed: u64) -> SimNet {
    let mut net = SimNet::new(seed, LinkModel::TEST_LAN);
    for i in 0..PEERS {
        net.add_node(|addr| {
            let mut core = OverlayCore::new(Config::new(key_seed(i), seed * 1000 + i as u64, addr));
            core.define_message(MetaMessage::new(
                "rumor",
                Authentication::Member,
                Distribution::FullSync,
                Destination::Community(10),
            ))
            .unwrap();
            core.set_community(CommunityId::isolated("RestartTest", b"test-run"));
            core
        });
    }
    let dir = Arc::new(
        PeerDirectory::new(
            net.nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.addr, *n.core.public_key(), i as u32 + 1)),
        )
        .unwrap(),
    );
    for i in 0..PEERS {
        net.with_core(i, |c, now| {
            c.introduce_from_directory(dir.clone(), None);
            c.start(now);
        });
    }
    net
}

fn sync_requests_sent(net: &SimNet, i: usize) -> u64 {
    net.nodes[i]
        .core
        .stats()
        .of("sync-request")
        .map_or(0, |t| t.msg_out)
}

/// The churn defect of `scenarios/churn/gossip.scenario` (about a third of
/// its seeds failed): a member back with an empty store kept the sync
/// back-off of its first life (8x the interval after a quiet minute) and
/// backed off again after a few requests to peers away or as empty as it
/// was, so it asked once every 8 s or so and, with a few peers away, could
/// miss every rumor until the end of the run. Now it asks at the base rate
/// until its first message, and catches up as soon as a peer holding the
/// messages is back.
#[test]
fn a_member_back_with_an_empty_store_keeps_asking_until_it_catches_up() {
    let mut net = build(4);
    let rumor = net.nodes[0].core.meta_id("rumor").unwrap();
    net.with_core(0, |c, _| c.send(rumor, b"the rumor", &[]))
        .unwrap();
    // A quiet minute: everyone holds the rumor and backs off to the maximum.
    net.run_for(Duration::from_secs(60));
    assert!(net.nodes.iter().all(|n| n.core.stored_count() == 1));

    // It leaves, and while it is away so do all the others (keeping their
    // stores); it comes back with an empty store.
    for i in 0..PEERS {
        net.with_core(i, |c, _| c.stop());
    }
    net.with_core(BACK, |c, now| {
        c.clear_store();
        c.start(now);
    });
    let before = sync_requests_sent(&net, BACK);
    net.run_for(Duration::from_secs(20));
    let asked = sync_requests_sent(&net, BACK) - before;
    assert_eq!(net.nodes[BACK].core.stored_count(), 0, "nobody to answer");
    // The base rate is one request a second on average (each interval
    // uniform in [0.5 s, 1.5 s)); backed off, it asked 2 or 3 times.
    assert!(
        asked >= 14,
        "a member back with an empty store asked only {asked} times in 20 s: it backed off"
    );

    // The others come back: its next request, within 1.5 s, is answered.
    for i in 0..BACK {
        net.with_core(i, |c, now| c.start(now));
    }
    let caught_up = net.run_until(Duration::from_secs(2), |net| {
        net.nodes[BACK].core.stored_count() == 1
    });
    assert!(
        caught_up,
        "the member back did not catch up within 2 s of its peers' return"
    );
}

/// What the fix must not change: a member with nothing to catch up on (a
/// community where nobody published anything) still backs off, emptied
/// store or not, so silent communities do not sync at the base rate forever.
#[test]
fn a_member_of_a_silent_community_still_backs_off() {
    let mut net = build(5);
    net.run_for(Duration::from_secs(60));
    net.with_core(BACK, |c, now| {
        c.stop();
        c.clear_store();
        c.start(now);
    });
    let before = sync_requests_sent(&net, BACK);
    net.run_for(Duration::from_secs(40));
    let asked = sync_requests_sent(&net, BACK) - before;
    // Back at the base rate, then quiet rounds double the interval up to
    // 8 s: 1 + 2 + 4 + 8 s, then every 8 s or so; at the base rate it
    // would be about 40.
    assert!(
        (4..=14).contains(&asked),
        "{asked} sync requests in 40 s of a silent community"
    );
}
