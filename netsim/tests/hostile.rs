//! The overlay against an attacker on the network (issue #18): messages
//! signed with keys from outside the peer directory, one author flooding
//! the FullSync store, and discovery packets replayed from another
//! address. Each is dropped under its own reason, never stored, delivered
//! or synchronised, and never grows the peer table. Virtual time only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use peerlab_dispersy::wire::{self, IntroductionRequest, IntroductionResponse, Style};
use peerlab_dispersy::{
    Authentication, CommunityId, Config, DEFAULT_MAX_MESSAGES_PER_AUTHOR, Delivered, Destination,
    Distribution, DropReason, Keypair, MetaId, MetaMessage, OverlayCore, OverlayEvent,
    PeerDirectory,
};
use peerlab_netsim::LinkModel;
use peerlab_netsim::overlay::SimNet;

fn cid() -> CommunityId {
    CommunityId::isolated("Hostile", b"test-run")
}

fn key_seed(i: usize) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    s
}

/// The attacker's address: no node's.
fn attacker() -> SocketAddr {
    SimNet::addr_of(999)
}

/// `n` cores, each knowing every other through the shared directory, with
/// a FullSync `gossip` message and catch-up sync every 100 ms.
fn net(n: usize, tweak: impl Fn(&mut Config)) -> SimNet {
    let mut net = SimNet::new(7, LinkModel::TEST_LAN);
    for i in 0..n {
        net.add_node(|addr| {
            let mut cfg = Config::new(key_seed(i), 100 + i as u64, addr);
            cfg.sync_interval = Duration::from_millis(100);
            tweak(&mut cfg);
            let mut core = OverlayCore::new(cfg);
            core.define_message(MetaMessage::new(
                "gossip",
                Authentication::Member,
                Distribution::FullSync,
                Destination::Community(2),
            ))
            .unwrap();
            core.set_community(cid());
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
    for i in 0..n {
        net.with_core(i, |c, now| {
            c.introduce_from_directory(dir.clone(), None);
            c.start(now);
        });
    }
    net.run_for(Duration::from_millis(50));
    net
}

fn signed(kp: &Keypair, msg: MetaId, gt: u64, payload: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; wire::MAX_DATAGRAM];
    let n = wire::encode_signed(&mut buf, &cid(), msg.0, kp, gt, |w| w.put(payload)).unwrap();
    buf[..n].to_vec()
}

fn delivered(net: &SimNet, i: usize) -> Vec<&Delivered> {
    net.nodes[i]
        .events
        .iter()
        .filter_map(|e| match e {
            OverlayEvent::Message(d) => Some(d),
            _ => None,
        })
        .collect()
}

fn drops(core: &OverlayCore) -> BTreeMap<&'static str, u64> {
    DropReason::ALL
        .iter()
        .map(|r| (r.name(), core.stats().dropped(*r)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[test]
fn a_message_signed_by_a_key_outside_the_directory_is_dropped_and_never_synced() {
    let mut net = net(4, |c| c.drop_unknown_authors = true);
    let gossip = net.nodes[0].core.meta_id("gossip").unwrap();
    // A brand-new key, sent to one member only.
    let stranger = Keypair::from_seed(&[0xEE; 32]);
    net.inject(attacker(), 1, &signed(&stranger, gossip, 1, b"forged"));
    // A genuine message of member 1 for comparison.
    net.with_core(0, |c, _| c.send(gossip, b"genuine", &[]).unwrap());
    net.run_for(Duration::from_secs(5));

    assert_eq!(
        drops(&net.nodes[1].core),
        BTreeMap::from([("unknown_author", 1)])
    );
    for i in 0..4 {
        let d = delivered(&net, i);
        assert!(
            d.iter().all(|m| m.payload == b"genuine"),
            "node {i} got the forgery: {d:?}"
        );
        assert_eq!(net.nodes[i].core.stored_count(), 1, "node {i}");
        if i != 0 {
            assert_eq!(d.len(), 1, "node {i}: {d:?}");
            assert_eq!(
                d[0].author_instance,
                Some(1),
                "the directory names the author"
            );
        }
    }
}

#[test]
fn without_the_option_a_stranger_is_delivered_but_never_named_as_an_instance() {
    let mut net = net(3, |_| {});
    let gossip = net.nodes[0].core.meta_id("gossip").unwrap();
    let stranger = Keypair::from_seed(&[0xEE; 32]);
    net.inject(attacker(), 1, &signed(&stranger, gossip, 1, b"outsider"));
    net.run_for(Duration::from_secs(5));
    // Stored and synced (py-ipv8 peers are not in the directory either),
    // but a module can tell: no author instance, whoever passed it on.
    for i in 0..3 {
        let d = delivered(&net, i);
        assert_eq!(d.len(), 1, "node {i}: {d:?}");
        assert_eq!(d[0].author_instance, None);
        assert_eq!(d[0].payload, b"outsider");
    }
    let via = delivered(&net, 0)[0].from_instance;
    assert!(matches!(via, Some(2 | 3)), "synced by a member: {via:?}");
}

#[test]
fn one_author_cannot_grow_the_store_past_its_limit() {
    assert_eq!(
        Config::new([0; 32], 0, attacker()).max_messages_per_author,
        DEFAULT_MAX_MESSAGES_PER_AUTHOR
    );
    let mut net = net(3, |c| c.max_messages_per_author = 50);
    let gossip = net.nodes[0].core.meta_id("gossip").unwrap();
    let stranger = Keypair::from_seed(&[0xEE; 32]);
    // 200 junk messages one by one, and 200 more in one batch.
    for gt in 1..=200 {
        net.inject(attacker(), 1, &signed(&stranger, gossip, gt, b"junk"));
    }
    net.run_for(Duration::from_millis(50));
    let batch: Vec<Vec<u8>> = (201..=400)
        .map(|gt| signed(&stranger, gossip, gt, b"junk"))
        .collect();
    net.with_core(1, |c, now| {
        c.handle_batch(now, batch.iter().map(|p| (attacker(), p.as_slice())))
    });
    // A member's key is limited the same way.
    let member = Keypair::from_seed(&key_seed(2));
    for gt in 1..=60 {
        net.inject(
            net.nodes[2].addr,
            1,
            &signed(&member, gossip, gt, b"chatty"),
        );
    }
    net.run_for(Duration::from_secs(10));

    let core = &net.nodes[1].core;
    assert_eq!(core.stats().dropped(DropReason::AuthorLimit), 350 + 10);
    assert_eq!(core.stored_count(), 100);
    // Catch-up sync spreads no more than the limit either.
    for i in [0, 2] {
        assert!(net.nodes[i].core.stored_count() <= 100, "node {i}");
    }
    // Others still get through.
    net.with_core(0, |c, _| c.send(gossip, b"fine", &[]).unwrap());
    net.run_for(Duration::from_secs(2));
    assert!(delivered(&net, 1).iter().any(|d| d.payload == b"fine"));
}

fn intro_request(kp: &Keypair, to: SocketAddr, from: SocketAddr, identifier: u16) -> Vec<u8> {
    let req = IntroductionRequest {
        destination: to,
        source_lan: from,
        source_wan: from,
        flags: wire::flags::REQ_ADVICE,
        identifier,
        extra: b"",
    };
    let mut buf = [0u8; wire::MAX_DATAGRAM];
    let n = wire::encode_signed(
        &mut buf,
        &cid(),
        wire::id::INTRODUCTION_REQUEST,
        kp,
        1,
        |w| req.encode(w, Style::Old),
    )
    .unwrap();
    buf[..n].to_vec()
}

fn intro_response(kp: &Keypair, to: SocketAddr, from: SocketAddr, identifier: u16) -> Vec<u8> {
    let resp = IntroductionResponse {
        destination: to,
        source_lan: from,
        source_wan: from,
        lan_introduction: wire::NO_ADDRESS,
        wan_introduction: wire::NO_ADDRESS,
        flags: 0,
        identifier,
        extra: b"",
    };
    let mut buf = [0u8; wire::MAX_DATAGRAM];
    let n = wire::encode_signed(
        &mut buf,
        &cid(),
        wire::id::INTRODUCTION_RESPONSE,
        kp,
        1,
        |w| resp.encode(w, Style::Old),
    )
    .unwrap();
    buf[..n].to_vec()
}

#[test]
fn replayed_discovery_packets_add_no_peer() {
    // Node 0 knows nobody yet (it has the directory, to recognise keys).
    let mut net = SimNet::new(3, LinkModel::TEST_LAN);
    for i in 0..3 {
        net.add_node(|addr| {
            let mut core = OverlayCore::new(Config::new(key_seed(i), i as u64, addr));
            core.set_community(cid());
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
    net.with_core(0, |c, now| {
        c.set_directory(dir.clone());
        c.set_walker(Duration::from_secs(3600), 0);
        c.start(now);
    });
    let (a0, a1) = (net.nodes[0].addr, net.nodes[1].addr);
    let member = Keypair::from_seed(&key_seed(1));
    // Member 2's signed introduction request, replayed from the attacker's
    // address, and its introduction response to no request of node 0's.
    net.inject(attacker(), 0, &intro_request(&member, a0, a1, 7));
    net.inject(attacker(), 0, &intro_response(&member, a0, a1, 8));
    net.inject(a1, 0, &intro_response(&member, a0, a1, 9));
    net.run_for(Duration::from_millis(100));
    let core = &net.nodes[0].core;
    assert_eq!(
        drops(core),
        BTreeMap::from([("unsolicited", 1), ("wrong_address", 2)])
    );
    assert_eq!(
        core.peer_count(),
        0,
        "{:?}",
        core.peer_addrs().collect::<Vec<_>>()
    );
    // The genuine request from the member's own address is answered.
    net.inject(a1, 0, &intro_request(&member, a0, a1, 10));
    net.run_for(Duration::from_millis(100));
    assert_eq!(net.nodes[0].core.peer_addrs().collect::<Vec<_>>(), [a1]);
}

#[test]
fn discovery_from_many_unknown_keys_and_addresses_keeps_the_table_bounded() {
    // No directory (a py-ipv8-style open community): strangers may join,
    // but the table holds at most max_peers of them at once.
    let mut core = OverlayCore::new(Config::new(key_seed(0), 1, SimNet::addr_of(0)));
    core.set_community(cid());
    let t0 = std::time::Instant::now();
    core.start(t0);
    let max = core.config().max_peers;
    let mut buf = [0u8; wire::MAX_DATAGRAM];
    for i in 0..2_000u32 {
        let kp = Keypair::from_seed(&key_seed(10_000 + i as usize));
        let from = SimNet::addr_of(1 + i as usize);
        core.handle(
            t0,
            from,
            &intro_request(&kp, SimNet::addr_of(0), from, i as u16),
        );
        core.handle(
            t0,
            from,
            &intro_response(&kp, SimNet::addr_of(0), from, i as u16),
        );
        while core.poll_transmit(&mut buf).is_some() {}
        while core.poll_event().is_some() {}
    }
    assert_eq!(core.peer_count(), max);
    assert!(
        core.peer_table_rows() <= max,
        "{} rows",
        core.peer_table_rows()
    );
    assert_eq!(core.stats().dropped(DropReason::Unsolicited), 2_000);
}
