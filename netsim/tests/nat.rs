//! The NAT matrix: two members that know only a public third (their
//! bootstrap address) walk to it, are introduced to each other by its
//! introduction responses and puncture requests, and then try to exchange
//! messages, each behind its own NAT of a type (RFC 4787 behaviours,
//! `peerlab_netsim::nat`). The verdict for every pair must match the
//! textbook matrix: every pair succeeds after the puncture except
//! symmetric with symmetric and symmetric with port-restricted cone, which
//! need a relay. Virtual time only, seeded, a few milliseconds per pair.

use std::time::Duration;

use peerlab_dispersy::{
    Authentication, CommunityId, Config, Destination, Distribution, MetaMessage, OverlayCore,
    OverlayEvent,
};
use peerlab_netsim::overlay::SimNet;
use peerlab_netsim::{LinkModel, NatModel, nat};

/// The NAT types, by the names docs/network.md uses.
/// A NAT type's model for a mapping timeout; `None`: no NAT.
type Make = Option<fn(Duration) -> NatModel>;

const TYPES: [(&str, Make); 5] = [
    ("none", None),
    ("full_cone", Some(NatModel::full_cone)),
    ("restricted_cone", Some(NatModel::restricted_cone)),
    ("port_restricted_cone", Some(NatModel::port_restricted_cone)),
    ("symmetric", Some(NatModel::symmetric)),
];

/// The textbook verdict: a direct path exists after the puncture unless
/// one side is symmetric and the other symmetric or port-restricted.
fn textbook(a: &str, b: &str) -> bool {
    let hard = |x: &str| x == "symmetric" || x == "port_restricted_cone";
    !((a == "symmetric" && hard(b)) || (b == "symmetric" && hard(a)))
}

const INTRODUCER: usize = 0;
const A: usize = 1;
const B: usize = 2;

fn build(a: Option<NatModel>, b: Option<NatModel>, seed: u64) -> SimNet {
    let mut net = SimNet::new(seed, LinkModel::TEST_LAN);
    for i in 0..3 {
        net.add_node(|addr| {
            let mut key = [0u8; 32];
            key[0] = i as u8 + 1;
            let mut cfg = Config::new(key, seed * 10 + i as u64, addr);
            if i != INTRODUCER {
                cfg.bootstrap = vec![SimNet::addr_of(INTRODUCER)];
            }
            cfg.sync_interval = Duration::from_secs(3600);
            let mut core = OverlayCore::new(cfg);
            core.define_message(MetaMessage::new(
                "hello",
                Authentication::Member,
                Distribution::Direct,
                Destination::Candidate,
            ))
            .unwrap();
            core.set_community(CommunityId::isolated("NatMatrix", b"test-run"));
            core
        });
    }
    for (i, model) in [(A, a), (B, b)] {
        if let Some(m) = model {
            net.set_nat(i, m);
        }
    }
    for i in 0..3 {
        net.with_core(i, |c, now| c.start(now));
    }
    net
}

/// Whether `from` got a `hello` authored by `author`.
fn heard(net: &SimNet, at: usize, author: usize) -> bool {
    let key = *net.nodes[author].core.public_key();
    net.nodes[at].events.iter().any(|e| {
        matches!(e, OverlayEvent::Message(d) if d.name.as_ref() == "hello" && d.author == Some(key))
    })
}

/// Walk for a while, then each of A and B says hello to every peer it
/// knows but the introducer: whether both heard the other.
fn exchange(a: Option<NatModel>, b: Option<NatModel>) -> (bool, SimNet) {
    let mut net = build(a, b, 7);
    net.run_for(Duration::from_secs(20));
    let introducer = SimNet::addr_of(INTRODUCER);
    for i in [A, B] {
        let hello = net.nodes[i].core.meta_id("hello").unwrap();
        let peers: Vec<_> = net.nodes[i]
            .core
            .peer_addrs()
            .filter(|p| *p != introducer)
            .collect();
        if !peers.is_empty() {
            net.with_core(i, |c, _| c.send(hello, b"hello", &peers))
                .unwrap();
        }
    }
    net.run_for(Duration::from_secs(1));
    (heard(&net, B, A) && heard(&net, A, B), net)
}

#[test]
fn every_pair_of_nat_types_meets_through_the_walker_as_the_textbook_matrix_says() {
    let timeout = nat::DEFAULT_TIMEOUT;
    let mut wrong = Vec::new();
    for (na, ma) in TYPES {
        for (nb, mb) in TYPES {
            let (met, net) = exchange(ma.map(|m| m(timeout)), mb.map(|m| m(timeout)));
            let want = textbook(na, nb);
            if met != want {
                wrong.push(format!(
                    "{na} <-> {nb}: met {met}, textbook {want} (A's peers {:?}, B's peers {:?}, network {:?})",
                    net.nodes[A].core.peer_addrs().collect::<Vec<_>>(),
                    net.nodes[B].core.peer_addrs().collect::<Vec<_>>(),
                    net.stats()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn behind_a_restricted_nat_a_member_is_reachable_only_after_a_puncture() {
    let pr = NatModel::port_restricted_cone(nat::DEFAULT_TIMEOUT);
    // Without an introducer's puncture request, B never sends to A: A's
    // walks to B are filtered by B's NAT (counted by the network).
    let mut net = SimNet::new(3, LinkModel::TEST_LAN);
    for i in 0..2 {
        net.add_node(|addr| {
            let mut key = [0u8; 32];
            key[0] = i as u8 + 1;
            let mut cfg = Config::new(key, 30 + i as u64, addr);
            cfg.sync_interval = Duration::from_secs(3600);
            let mut core = OverlayCore::new(cfg);
            core.set_community(CommunityId::isolated("NatPuncture", b"test-run"));
            core
        });
    }
    net.set_nat(1, pr);
    for i in 0..2 {
        net.with_core(i, |c, now| c.start(now));
    }
    // Node 0 (public) learns node 1's public address some other way: a
    // mapping node 1 made by sending to a third party's address.
    let third = std::net::SocketAddr::from(([192, 0, 2, 1], 7000));
    net.with_core(1, |c, _| c.send_introduction_request(third));
    net.run_for(Duration::from_millis(50));
    let mapped = std::net::SocketAddr::new(SimNet::public_ip_of(1), nat::FIRST_PORT);
    net.with_core(0, |c, _| c.send_introduction_request(mapped));
    net.run_for(Duration::from_secs(1));
    assert_eq!(
        net.nodes[1].core.peer_count(),
        0,
        "the NAT let an unsolicited request in"
    );
    assert_eq!(net.stats().nat_filtered, 1);
    // Node 1 punctures towards node 0 (as a puncture request would make it
    // do); node 0's next request passes and is answered.
    net.with_core(1, |c, _| c.send_introduction_request(SimNet::addr_of(0)));
    net.run_for(Duration::from_millis(50));
    net.with_core(0, |c, _| c.send_introduction_request(mapped));
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.nodes[1].core.peer_count(), 1);
    assert_eq!(net.nodes[0].core.peer_count(), 1);
    assert_eq!(net.stats().nat_filtered, 1);
}
