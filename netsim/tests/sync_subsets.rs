//! Catch-up sync when more messages share a global time than one bloom
//! filter holds (thousands of authors publishing at global time 1): the
//! request covers one class of authors (`modulo`/`offset`), and a peer
//! still gets every message.

use std::time::{Duration, Instant};

use peerlab_dispersy::store;
use peerlab_dispersy::wire;
use peerlab_dispersy::{
    Authentication, CommunityId, Config, Destination, Distribution, Keypair, MetaMessage,
    OverlayCore,
};
use peerlab_netsim::LinkModel;
use peerlab_netsim::overlay::SimNet;

/// A core whose filters hold about 275 messages (small datagrams), so a
/// thousand messages at one global time need subsets of the range.
fn small_datagram_core(
    community: CommunityId,
    addr: std::net::SocketAddr,
    seed: u8,
    sync_interval: Duration,
) -> OverlayCore {
    let mut cfg = Config::new([seed; 32], u64::from(seed), addr);
    cfg.max_datagram = 400;
    cfg.sync_interval = sync_interval;
    let mut core = OverlayCore::new(cfg);
    core.define_message(MetaMessage::new(
        "rumor",
        Authentication::Member,
        Distribution::FullSync,
        Destination::Community(1),
    ))
    .unwrap();
    core.set_community(community);
    core
}

/// Hand `core` one rumor from each of `authors` members, all at global time 1.
fn receive_from_authors(
    core: &mut OverlayCore,
    community: &CommunityId,
    now: Instant,
    authors: u32,
) {
    let meta = core.meta_id("rumor").unwrap();
    let mut buf = [0u8; wire::MAX_DATAGRAM];
    for i in 0..authors {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_be_bytes());
        seed[31] = 0xa5;
        let kp = Keypair::from_seed(&seed);
        let n = wire::encode_signed(&mut buf, community, meta.0, &kp, 1, |w| {
            w.put(&i.to_be_bytes())
        })
        .unwrap();
        core.handle(now, SimNet::addr_of(99), &buf[..n]);
    }
    assert_eq!(core.stored_count(), authors as usize);
}

#[test]
fn author_classes_partition_every_author() {
    for modulo in [1u16, 2, 4, 64, 1 << 15] {
        for i in 0..500u64 {
            let prefix = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let classes = (0..modulo)
                .filter(|&o| store::in_class(prefix, modulo, o))
                .count();
            assert_eq!(classes, 1, "author {prefix:x} with modulo {modulo}");
        }
    }
    assert!(!store::in_class(5, 3, 0), "3 is not a power of two");
}

#[test]
fn a_bad_subset_in_a_sync_request_is_refused() {
    let mut payload = Vec::new();
    payload.extend_from_slice(&0u64.to_be_bytes());
    payload.extend_from_slice(&u64::MAX.to_be_bytes());
    payload.extend_from_slice(&1u32.to_be_bytes());
    payload.push(3);
    let with = |modulo: u16, offset: u16| {
        let mut p = payload.clone();
        p.extend_from_slice(&modulo.to_be_bytes());
        p.extend_from_slice(&offset.to_be_bytes());
        p.push(0);
        wire::SyncRequest::decode(&p).map(|r| (r.modulo, r.offset))
    };
    assert_eq!(with(4, 3).unwrap(), (4, 3));
    assert!(with(0, 0).is_err(), "modulo 0");
    assert!(with(3, 1).is_err(), "modulo not a power of two");
    assert!(with(4, 4).is_err(), "offset not below modulo");
}

#[test]
fn a_thousand_messages_with_one_global_time_all_reach_a_new_peer() {
    const AUTHORS: u32 = 1000;
    let community = CommunityId::isolated("subsets", b"test");
    let make = |addr, seed| small_datagram_core(community, addr, seed, Duration::from_millis(200));
    let mut net = SimNet::new(7, LinkModel::TEST_LAN);
    let holder = net.add_node(|a| make(a, 1));
    let newcomer = net.add_node(|a| make(a, 2));
    let (ha, na) = (SimNet::addr_of(holder), SimNet::addr_of(newcomer));
    // The holder receives every author's message (all at global time 1).
    net.with_core(holder, |c, now| {
        c.start(now);
        receive_from_authors(c, &community, now, AUTHORS);
    });
    net.with_core(newcomer, |c, now| {
        c.add_peer(ha, None, None).unwrap();
        c.start(now);
    });
    net.with_core(holder, |c, _| c.add_peer(na, None, None).unwrap());
    let done = net.run_until(Duration::from_secs(600), |net| {
        net.nodes[newcomer].core.stored_count() == AUTHORS as usize
    });
    assert!(
        done,
        "the newcomer holds {} of {AUTHORS} after 600 s",
        net.nodes[newcomer].core.stored_count()
    );
}

#[test]
fn a_quiet_round_asks_about_every_class_before_requests_slow_down() {
    const AUTHORS: u32 = 1000;
    let base = Duration::from_millis(200);
    let community = CommunityId::isolated("rounds", b"test");
    let addr = |i: usize| SimNet::addr_of(i);
    // 1,000 messages at global time 1, about 275 per filter: each request
    // covers one of 4 classes of authors.
    let mut core = small_datagram_core(community, addr(1), 1, base);
    let t0 = Instant::now();
    core.start(t0);
    receive_from_authors(&mut core, &community, t0, AUTHORS);
    // A peer that never answers: every request is quiet.
    core.add_peer(addr(2), None, None).unwrap();
    let mut buf = [0u8; wire::MAX_DATAGRAM];
    let mut requests = Vec::new();
    let mut now = t0;
    while requests.len() < 8 {
        let at = core.poll_timeout().expect("a started core has timers");
        now = now.max(at);
        core.handle_timeout(now);
        while let Some(t) = core.poll_transmit(&mut buf) {
            if let Ok(wire::Decoded::SyncRequest(_, req)) = wire::decode(&buf[..t.size]) {
                requests.push((now, req.modulo, req.offset));
            }
        }
        while core.poll_event().is_some() {}
    }
    let mut first_round: Vec<u16> = requests[..4].iter().map(|r| r.2).collect();
    assert!(requests[..4].iter().all(|r| r.1 == 4), "{requests:?}");
    first_round.sort();
    assert_eq!(
        first_round,
        [0, 1, 2, 3],
        "one request per class: {requests:?}"
    );
    let gap = |i: usize| requests[i + 1].0 - requests[i].0;
    for i in 0..3 {
        assert!(
            gap(i) < base * 3 / 2,
            "no slowing down within the first round: gap {i} is {:?}",
            gap(i)
        );
    }
    // After a whole quiet round the requests do slow down.
    assert!(gap(6) >= base * 3, "gap 6 is {:?}", gap(6));
}
