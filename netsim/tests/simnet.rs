//! Deterministic overlay tests over the in-memory network (SimNet): gossip,
//! catch-up under loss and reordering, discovery by walking, and every kind of
//! bad packet dropped and counted. No sockets, no sleeps: virtual time only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use peerlab_dispersy::wire;
use peerlab_dispersy::{
    Authentication, CommunityId, Config, Delivered, Destination, Distribution, DropReason, Keypair,
    MetaId, MetaMessage, OverlayCore, OverlayEvent, PeerDirectory,
};
use peerlab_netsim::LinkModel;
use peerlab_netsim::overlay::SimNet;

fn cid() -> CommunityId {
    CommunityId::isolated("SimCommunity", b"test-run")
}

fn key_seed(i: usize) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    s
}

struct Setup {
    peers: usize,
    link: LinkModel,
    metas: Vec<MetaMessage>,
    directory_max: Option<Option<usize>>,
    tweak: fn(&mut Config),
    seed: u64,
}

impl Setup {
    fn new(peers: usize) -> Self {
        Self {
            peers,
            link: LinkModel::TEST_LAN,
            metas: vec![
                MetaMessage::new(
                    "gossip",
                    Authentication::Member,
                    Distribution::FullSync,
                    Destination::Community(10),
                )
                .with_forwarding(true),
            ],
            directory_max: Some(None),
            tweak: |_| {},
            seed: 1,
        }
    }

    fn build(&self) -> SimNet {
        let mut net = SimNet::new(self.seed, self.link);
        for i in 0..self.peers {
            net.add_node(|addr| {
                let mut cfg = Config::new(key_seed(i), self.seed * 1000 + i as u64, addr);
                (self.tweak)(&mut cfg);
                let mut core = OverlayCore::new(cfg);
                for m in &self.metas {
                    core.define_message(m.clone()).unwrap();
                }
                core.set_community(cid());
                core
            });
        }
        if let Some(max) = self.directory_max {
            let dir = Arc::new(
                PeerDirectory::new(
                    net.nodes
                        .iter()
                        .enumerate()
                        .map(|(i, n)| (n.addr, *n.core.public_key(), i as u32 + 1)),
                )
                .unwrap(),
            );
            for i in 0..self.peers {
                net.with_core(i, |c, _| c.introduce_from_directory(dir.clone(), max));
            }
        }
        for i in 0..self.peers {
            net.with_core(i, |c, now| c.start(now));
        }
        net
    }
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

fn no_sync(cfg: &mut Config) {
    cfg.sync_interval = Duration::from_secs(3600);
}

#[test]
fn one_fullsync_message_with_community_10_reaches_all_50() {
    let mut s = Setup::new(50);
    s.tweak = no_sync; // gossip alone, no catch-up
    s.directory_max = Some(Some(10)); // each peer knows 10 random others
    let mut net = s.build();
    let gossip = net.nodes[0].core.meta_id("gossip").unwrap();
    let report = net
        .with_core(7, |c, _| c.send(gossip, b"hello, all 50", &[]))
        .unwrap();
    assert_eq!(report.datagrams, 10);
    let all = net.run_until(Duration::from_secs(2), |net| {
        (0..50).all(|i| net.nodes[i].core.stored_count() == 1)
    });
    assert!(all, "not every peer got the message through gossip");
    for i in (0..50).filter(|&i| i != 7) {
        let d = delivered(&net, i);
        assert_eq!(d.len(), 1, "peer {i} delivered {} times", d.len());
        assert_eq!(d[0].payload, b"hello, all 50");
        assert_eq!(d[0].author_instance, Some(8));
        assert_eq!(d[0].author.as_ref(), Some(net.nodes[7].core.public_key()));
    }
    // Copies beyond the first are duplicates, counted and not delivered again.
    let dups: u64 = (0..50)
        .map(|i| net.nodes[i].core.stats().dropped(DropReason::Duplicate))
        .sum();
    assert!(dups > 0);
}

#[test]
fn hundred_messages_from_ten_authors_reach_everyone_through_catch_up_despite_loss() {
    let mut s = Setup::new(50);
    s.link = LinkModel {
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(60), // reorders
        loss: 0.2,
        mtu: 1500,
    };
    // No forwarding, initial fanout of 2: almost everything must come from catch-up.
    s.metas = vec![
        MetaMessage::new(
            "record",
            Authentication::Member,
            Distribution::FullSync,
            Destination::Community(2),
        )
        .with_forwarding(false),
    ];
    s.directory_max = Some(Some(8));
    s.tweak = |c| c.sync_interval = Duration::from_millis(500);
    s.seed = 7;
    let mut net = s.build();
    let meta = net.nodes[0].core.meta_id("record").unwrap();
    for round in 0..10 {
        for author in 0..10 {
            let payload = format!("author {author} message {round}");
            net.with_core(author * 5, |c, _| c.send(meta, payload.as_bytes(), &[]))
                .unwrap();
        }
        net.run_for(Duration::from_millis(100));
    }
    let all = net.run_until(Duration::from_secs(120), |net| {
        net.nodes.iter().all(|n| n.core.stored_count() == 100)
    });
    let missing: Vec<usize> = net
        .nodes
        .iter()
        .map(|n| 100 - n.core.stored_count())
        .collect();
    assert!(all, "missing messages per peer after 120 s: {missing:?}");
    assert!(net.stats().lost > 0, "the links lost nothing");
    for i in 0..50 {
        let d = delivered(&net, i);
        let own = if i % 5 == 0 && i < 50 { 10 } else { 0 };
        assert_eq!(
            d.len(),
            100 - own,
            "peer {i}: each message delivered exactly once"
        );
        let mut distinct: Vec<(Vec<u8>, u64)> = d
            .iter()
            .map(|d| (d.payload.clone(), d.global_time))
            .collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), d.len());
    }
    let sync_in: u64 = net
        .nodes
        .iter()
        .map(|n| n.core.stats().of("sync-request").map_or(0, |t| t.msg_in))
        .sum();
    assert!(sync_in > 0);
}

/// A signed packet as node `author` of `net` would send it.
fn packet(
    net: &SimNet,
    author: usize,
    community: &CommunityId,
    msg: MetaId,
    gt: u64,
    payload: &[u8],
) -> Vec<u8> {
    let kp: &Keypair = net.nodes[author].core.keypair();
    let mut buf = [0u8; wire::MAX_DATAGRAM];
    let n = wire::encode_signed(&mut buf, community, msg.0, kp, gt, |w| w.put(payload)).unwrap();
    buf[..n].to_vec()
}

#[test]
fn bad_packets_are_dropped_and_counted_never_delivered() {
    let mut s = Setup::new(3);
    s.tweak = no_sync;
    let mut net = s.build();
    net.run_for(Duration::from_millis(50));
    let gossip = net.nodes[0].core.meta_id("gossip").unwrap();
    for n in &mut net.nodes {
        n.events.clear();
        n.core.reset_statistics();
    }
    let from = net.nodes[0].addr;
    let good = packet(&net, 0, &cid(), gossip, 1, b"genuine");

    // Forged: one payload byte changed after signing.
    let mut forged = good.clone();
    let at = forged.len() - 64 - 1;
    forged[at] ^= 0x01;
    net.inject(from, 1, &forged);
    // Forged: a valid frame signed by node 2 but claiming node 0's key.
    let mut wrong_key = packet(&net, 2, &cid(), gossip, 2, b"impostor");
    wrong_key[25..25 + 74].copy_from_slice(net.nodes[0].core.public_key().as_bytes());
    net.inject(from, 1, &wrong_key);
    // The genuine packet, then a replay of it.
    net.inject(from, 1, &good);
    net.run_for(Duration::from_millis(50));
    net.inject(from, 1, &good);
    // Another community's packet.
    let other = CommunityId::isolated("SimCommunity", b"another-run");
    net.inject(from, 1, &packet(&net, 0, &other, gossip, 3, b"foreign"));
    // Truncated packets: header only, and the genuine packet cut short.
    net.inject(from, 1, &good[..23]);
    net.inject(from, 1, &good[..60]);
    net.inject(from, 1, &good[..5]);
    // Global time beyond the acceptance window.
    net.inject(
        from,
        1,
        &packet(&net, 0, &cid(), gossip, 1_000_000, b"from the future"),
    );
    // A message id nobody defined, and an oversize datagram.
    net.inject(from, 1, &packet(&net, 0, &cid(), MetaId(77), 4, b"unknown"));
    net.inject(from, 1, &vec![0u8; 1500]);
    net.run_for(Duration::from_millis(50));

    let stats = net.nodes[1].core.stats();
    let drops: BTreeMap<&str, u64> = DropReason::ALL
        .iter()
        .map(|r| (r.name(), stats.dropped(*r)))
        .collect();
    assert_eq!(drops["bad_signature"], 2, "{drops:?}");
    assert_eq!(drops["duplicate"], 1, "{drops:?}");
    assert_eq!(drops["foreign_community"], 1, "{drops:?}");
    assert_eq!(drops["malformed"], 3, "{drops:?}");
    assert_eq!(drops["future_global_time"], 1, "{drops:?}");
    assert_eq!(drops["unknown_message"], 1, "{drops:?}");
    assert_eq!(drops["oversize"], 1, "{drops:?}");
    let d = delivered(&net, 1);
    assert_eq!(d.len(), 1, "only the genuine packet is delivered: {d:?}");
    assert_eq!(d[0].payload, b"genuine");
    assert_eq!(d[0].from_instance, Some(1));
    assert_eq!(stats.of("gossip").unwrap().msg_in, 1);
}

#[test]
fn walker_discovers_peers_from_one_bootstrap_address_and_gossip_follows() {
    let mut s = Setup::new(20);
    s.directory_max = None;
    s.tweak = |c| {
        c.bootstrap = vec![SimNet::addr_of(0)];
        c.target_peers = 8;
        c.max_peers = 30;
    };
    let mut net = s.build();
    let found = net.run_until(Duration::from_secs(30), |net| {
        net.nodes.iter().all(|n| n.core.peer_count() >= 8)
    });
    let counts: Vec<usize> = net.nodes.iter().map(|n| n.core.peer_count()).collect();
    assert!(found, "peer counts after 30 s: {counts:?}");
    // Discovery raised events with keys.
    let discovered = net.nodes[5]
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                OverlayEvent::PeerDiscovered {
                    public_key: Some(_),
                    ..
                }
            )
        })
        .count();
    assert!(discovered >= 8);
    let gossip = net.nodes[0].core.meta_id("gossip").unwrap();
    net.with_core(13, |c, _| c.send(gossip, b"walked", &[]))
        .unwrap();
    assert!(net.run_until(Duration::from_secs(10), |net| {
        net.nodes.iter().all(|n| n.core.stored_count() == 1)
    }));
}

#[test]
fn a_late_joiner_catches_up_and_stop_silences_a_core() {
    let mut s = Setup::new(10);
    s.metas[0].forward = false;
    s.tweak = |c| c.sync_interval = Duration::from_millis(300);
    let mut net = s.build();
    let gossip = net.nodes[0].core.meta_id("gossip").unwrap();
    net.with_core(9, |c, _| c.stop());
    for k in 0..20 {
        net.with_core(k % 9, |c, _| {
            c.send(gossip, format!("m{k}").as_bytes(), &[])
        })
        .unwrap();
    }
    net.run_for(Duration::from_secs(5));
    assert_eq!(
        net.nodes[9].core.stored_count(),
        0,
        "a stopped core takes nothing in"
    );
    net.with_core(9, |c, now| c.start(now));
    assert!(net.run_until(Duration::from_secs(20), |net| {
        net.nodes.iter().all(|n| n.core.stored_count() == 20)
    }));
    assert_eq!(delivered(&net, 9).len(), 20);
}

#[test]
fn direct_candidate_messages_and_oversize_refusal() {
    let mut s = Setup::new(4);
    s.tweak = no_sync;
    s.metas.push(MetaMessage::new(
        "local-share",
        Authentication::None,
        Distribution::Direct,
        Destination::Candidate,
    ));
    s.metas.push(
        MetaMessage::new(
            "signed-direct",
            Authentication::Member,
            Distribution::Direct,
            Destination::Candidate,
        )
        .with_id(42),
    );
    let mut net = s.build();
    let share = net.nodes[0].core.meta_id("local-share").unwrap();
    let signed = net.nodes[0].core.meta_id("signed-direct").unwrap();
    assert_eq!(signed, MetaId(42));
    net.with_core(0, |c, _| c.send_to_instance(share, b"share for 3", 3))
        .unwrap();
    let to = [net.nodes[1].addr, net.nodes[3].addr];
    net.with_core(0, |c, _| c.send(signed, b"to 2 and 4", &to))
        .unwrap();
    let err = net
        .with_core(0, |c, _| c.send(signed, &[0u8; 1300], &to))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("over the 1400-byte datagram limit"),
        "{err}"
    );
    net.run_for(Duration::from_millis(100));
    let d2 = delivered(&net, 2);
    assert_eq!(d2.len(), 1);
    assert_eq!(
        (d2[0].payload.as_slice(), d2[0].author, d2[0].from_instance),
        (&b"share for 3"[..], None, Some(1))
    );
    for i in [1, 3] {
        let d = delivered(&net, i);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].payload, b"to 2 and 4");
        assert_eq!(d[0].author_instance, Some(1));
    }
    assert!(delivered(&net, 0).is_empty());
    assert_eq!(
        net.nodes[0]
            .core
            .stats()
            .of("signed-direct")
            .unwrap()
            .msg_out,
        2
    );
}

/// Every node's counters and events after a short lossy run.
type Trace = (Vec<Vec<(String, u64)>>, Vec<Vec<OverlayEvent>>);

fn trace(seed: u64) -> Trace {
    let mut s = Setup::new(12);
    s.seed = seed;
    s.link.loss = 0.1;
    s.link.jitter = Duration::from_millis(30);
    s.directory_max = Some(Some(4));
    let mut net = s.build();
    let gossip = net.nodes[0].core.meta_id("gossip").unwrap();
    for k in 0..12 {
        net.with_core(k, |c, _| c.send(gossip, &[k as u8], &[]))
            .unwrap();
    }
    net.run_for(Duration::from_secs(5));
    let counters = net
        .nodes
        .iter()
        .map(|n| n.core.stats().counters().collect())
        .collect();
    let events = net.nodes.into_iter().map(|n| n.events).collect();
    (counters, events)
}

#[test]
fn runs_are_deterministic_for_a_seed() {
    let a = trace(3);
    assert_eq!(a, trace(3));
    assert_ne!(a.0, trace(4).0);
}

#[test]
fn run_until_idle_is_bounded() {
    let mut s = Setup::new(3);
    s.tweak = |c| {
        no_sync(c);
        c.target_peers = 2;
    };
    let mut net = s.build();
    // Walker timers keep firing, but with everyone known there is no traffic left.
    assert!(net.run_until_idle(1000));
    let gossip = net.nodes[0].core.meta_id("gossip").unwrap();
    net.with_core(0, |c, _| c.send(gossip, b"x", &[])).unwrap();
    assert!(net.in_flight() > 0);
    assert!(net.run_until_idle(1000));
    assert!(net.nodes.iter().all(|n| n.core.stored_count() == 1));
}

#[test]
fn a_sync_request_moves_the_clock_at_most_one_acceptance_window() {
    let mut s = Setup::new(2);
    s.tweak = no_sync;
    let mut net = s.build();
    let gossip = net.nodes[0].core.meta_id("gossip").unwrap();
    let sync = |gt: u64| {
        let mut buf = [0u8; 100];
        let n = wire::encode_unsigned(&mut buf, &cid(), wire::id::SYNC_REQUEST, gt, |w| {
            wire::SyncRequest::encode_fixed(w, 0, u64::MAX, 1, 1, 1, 0)?;
            w.put(&[0; 8])
        })
        .unwrap();
        buf[..n].to_vec()
    };
    let window = net.nodes[0].core.config().acceptable_global_time_range;
    // Anyone's clock tells ours where the community is, but one unsigned
    // request moves it by one window at most: nobody can push it to the end.
    let stranger: std::net::SocketAddr = "127.9.9.9:1".parse().unwrap();
    net.inject(stranger, 0, &sync(u64::MAX));
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.nodes[0].core.global_time(), window);
    let known = net.nodes[1].addr;
    net.inject(known, 0, &sync(u64::MAX));
    net.run_for(Duration::from_millis(50));
    assert_eq!(net.nodes[0].core.global_time(), 2 * window);
    net.with_core(0, |c, _| c.send(gossip, b"far ahead", &[]))
        .unwrap();
    net.run_for(Duration::from_millis(50));
    // Node 1's clock is far behind: the message is beyond its acceptance window.
    assert_eq!(net.nodes[1].core.stored_count(), 0);
    let drops = net.nodes[1]
        .core
        .stats()
        .dropped(DropReason::FutureGlobalTime);
    assert_eq!(drops, 1);
}

#[test]
fn a_shared_pool_holds_one_copy_per_message_and_never_vouches_for_forgeries() {
    for trusting in [true, false] {
        let pool = Arc::new(if trusting {
            peerlab_dispersy::SharedPool::new(1000)
        } else {
            peerlab_dispersy::SharedPool::sharing_only(1000)
        });
        let mut s = Setup::new(10);
        s.tweak = no_sync;
        let mut net = s.build();
        for i in 0..10 {
            // The pool is a config field: rebuild each core with it.
            let mut cfg = net.nodes[i].core.config().clone();
            cfg.pool = Some(pool.clone());
            let mut core = OverlayCore::new(cfg);
            core.define_message(s.metas[0].clone()).unwrap();
            core.set_community(cid());
            net.with_core(i, |c, now| {
                *c = core;
                c.start(now);
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
        for i in 0..10 {
            net.with_core(i, |c, _| c.introduce_from_directory(dir.clone(), None));
        }
        let gossip = net.nodes[0].core.meta_id("gossip").unwrap();
        for k in 0..3 {
            net.with_core(k, |c, _| c.send(gossip, &[k as u8], &[]))
                .unwrap();
        }
        assert!(net.run_until(Duration::from_secs(2), |net| {
            net.nodes.iter().all(|n| n.core.stored_count() == 3)
        }));
        // One copy per message: each author's copy is in the directory's
        // message table, and every receiver takes that copy for a packet
        // identical to it byte for byte (dispersy 83ddb36), so nothing
        // reaches the pool. A packet the table does not hold is checked in
        // full: the forgery below.
        assert_eq!(pool.len(), 0, "trusting={trusting}");
        let mut forged = packet(&net, 0, &cid(), gossip, 50, b"forged");
        let at = forged.len() - 65;
        forged[at] ^= 1;
        net.inject(net.nodes[0].addr, 5, &forged);
        net.run_for(Duration::from_millis(50));
        assert_eq!(
            net.nodes[5].core.stats().dropped(DropReason::BadSignature),
            1
        );
        assert_eq!(net.nodes[5].core.stored_count(), 3);
    }
}

#[test]
fn introduce_peers_with_a_maximum_knows_exactly_that_many_others() {
    // Few of many (drawn one by one) and most of them (a shuffle), and the
    // same choice for the same seed.
    for max in [1usize, 10, 24, 25, 30, 48, 49] {
        let mut s = Setup::new(50);
        s.directory_max = Some(Some(max));
        let net = s.build();
        let again = s.build();
        for i in 0..50 {
            let core = &net.nodes[i].core;
            assert_eq!(core.peer_count(), max, "max {max}, peer {i}");
            assert!(core.peer_addrs().all(|a| a != net.nodes[i].addr));
            let mine: Vec<_> = core.peer_addrs().collect();
            let theirs: Vec<_> = again.nodes[i].core.peer_addrs().collect();
            assert_eq!(mine, theirs, "max {max}, peer {i}: same seed, same peers");
        }
    }
}
