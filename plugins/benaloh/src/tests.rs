//! Module-level tests through the api's `TestHost`: n module instances in
//! one test, callbacks called with scenario words through the generated
//! callback table, and the messages each `TestHost` records shuttled
//! between them in adversarial orders (reversed, random, broadcasts first,
//! duplicated, lost, from strangers). Then the printed lines and the
//! verdict are checked, the verdict also through the exported root module.

use std::collections::BTreeMap;

use peerlab_plugin_api::abi_stable::sabi_trait::TD_Opaque;
use peerlab_plugin_api::abi_stable::std_types::{ROption, RStr, RString, RVec};
use peerlab_plugin_api::testing::TestHost;
use peerlab_plugin_api::{
    Authentication, Destination, Distribution, IncomingMessage, Module, Outputs, RawArg,
    RunOutputs, RunOutputs_TO, Verdict, bind,
};

use super::*;
use crate::protocol::DEFAULT_MODULUS;

/// A message recorded by one `TestHost`, addressed to one instance.
#[derive(Debug, Clone)]
struct Packet {
    from: u64,
    to: u64,
    name: String,
    payload: Vec<u8>,
    global_time: u64,
}

/// A tiny deterministic RNG for schedules.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % bound as u64) as usize
    }
}

/// n module instances on n test hosts, plus the messages in flight.
struct Net {
    hosts: Vec<TestHost>,
    mods: Vec<Benaloh>,
    flight: Vec<Packet>,
    /// Deliver each broadcast back to its author too.
    echo: bool,
    clock: u64,
}

impl Net {
    fn new(n: u64, config: &[(&str, &str)]) -> Net {
        let mut hosts: Vec<TestHost> = (1..=n)
            .map(|i| {
                let mut h = TestHost::new(i, n).with_metrics(Benaloh::METRICS);
                for (k, v) in config {
                    h = h.with_config(k, v);
                }
                h
            })
            .collect();
        let mods = hosts
            .iter_mut()
            .map(|h| Benaloh::new(&mut h.host()).unwrap())
            .collect();
        Net {
            hosts,
            mods,
            flight: Vec::new(),
            echo: false,
            clock: 0,
        }
    }

    fn n(&self) -> u64 {
        self.hosts.len() as u64
    }

    /// Call a callback on instance `i` with scenario words, as the host does.
    fn call(&mut self, i: u64, callback: &str, words: &[&str]) -> Result<(), String> {
        let specs = Benaloh::describe();
        let spec = specs
            .iter()
            .find(|s| s.name.as_str() == callback)
            .unwrap_or_else(|| panic!("no callback {callback}"));
        let raw: Vec<RawArg> = words.iter().map(|w| RawArg::from_word(w)).collect();
        let args = bind(spec, &raw).map_err(|e| format!("{e:?}"))?;
        let k = i as usize - 1;
        let r = Module::call(
            &mut self.mods[k],
            &mut self.hosts[k].host(),
            callback,
            &args,
        );
        self.collect();
        r.map(|_| ())
    }

    /// Call a callback on every instance, in id order.
    fn call_all(&mut self, callback: &str, words: &[&str]) {
        for i in 1..=self.n() {
            self.call(i, callback, words).unwrap();
        }
    }

    /// Move what the hosts recorded as sent into the flight, one packet per
    /// receiver (every other instance for a broadcast).
    fn collect(&mut self) {
        let n = self.n();
        for (k, h) in self.hosts.iter_mut().enumerate() {
            let from = k as u64 + 1;
            for s in h.sent.drain(..) {
                self.clock += 1;
                let to: Vec<u64> = if s.name == BROADCAST_SHARE {
                    assert!(s.to.is_empty(), "a broadcast names no receivers");
                    (1..=n).filter(|&j| j != from || self.echo).collect()
                } else {
                    assert_eq!(s.to.len(), 1, "one local share per send");
                    s.to.clone()
                };
                for to in to {
                    self.flight.push(Packet {
                        from,
                        to,
                        name: s.name.clone(),
                        payload: s.payload.clone(),
                        global_time: if s.name == BROADCAST_SHARE {
                            self.clock
                        } else {
                            0
                        },
                    });
                }
            }
        }
    }

    /// Deliver one packet as the overlay would, with `sender` as the
    /// sending instance id.
    fn deliver_as(&mut self, p: &Packet, sender: u64) {
        let author = if p.name == BROADCAST_SHARE {
            self.hosts[p.from as usize - 1].public_key.clone()
        } else {
            Vec::new()
        };
        let msg = IncomingMessage {
            name: p.name.as_str().into(),
            sender,
            author: author.into(),
            global_time: p.global_time,
            payload: p.payload.clone().into(),
            // The overlay verified the signature against the run's key of `from`.
            author_instance: if p.name == BROADCAST_SHARE {
                ROption::RSome(p.from)
            } else {
                ROption::RNone
            },
        };
        self.deliver_message(p.to, &msg);
    }

    /// Deliver `msg` to instance `to` as it is (e.g. a forgery).
    fn deliver_message(&mut self, to: u64, msg: &IncomingMessage) {
        let k = to as usize - 1;
        Module::on_message(&mut self.mods[k], &mut self.hosts[k].host(), msg).unwrap();
        self.collect();
    }

    fn deliver(&mut self, p: &Packet) {
        self.deliver_as(p, p.from);
    }

    /// Deliver everything in flight (and what it causes) in the order
    /// `pick` chooses among the pending packets.
    fn run(&mut self, mut pick: impl FnMut(&[Packet]) -> usize) {
        while !self.flight.is_empty() {
            let i = pick(&self.flight);
            let p = self.flight.remove(i);
            self.deliver(&p);
        }
    }

    /// Deliver everything, newest first.
    fn run_reversed(&mut self) {
        self.run(|f| f.len() - 1);
    }

    fn prints(&self, i: u64) -> &[String] {
        &self.hosts[i as usize - 1].prints
    }

    fn logs(&self, i: u64) -> &[String] {
        &self.hosts[i as usize - 1].logs
    }

    fn secret(&self, i: u64) -> u64 {
        self.mods[i as usize - 1].proto.secret()
    }

    fn expected_total(&self, m: u64) -> u64 {
        (1..=self.n())
            .map(|i| self.secret(i) as u128)
            .sum::<u128>()
            .rem_euclid(m as u128) as u64
    }

    /// The run's outputs as the host would give them to the check hook.
    fn outputs(&self, config: &[(&str, &str)]) -> FakeOutputs {
        FakeOutputs {
            lines: (1..=self.n())
                .map(|i| (i, self.prints(i).to_vec()))
                .collect(),
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The verdicts of the run, through the exported root module's check
    /// entry point (as the host calls it).
    fn verdicts(&self, config: &[(&str, &str)]) -> Vec<Verdict> {
        let out = self.outputs(config);
        let root = peerlab_root_module();
        let check = root.check();
        check(RunOutputs_TO::from_ptr(&out, TD_Opaque))
            .into_result()
            .unwrap()
            .into_vec()
    }
}

/// What a finished run printed, as the host's `RunOutputs`.
struct FakeOutputs {
    lines: BTreeMap<u64, Vec<String>>,
    config: BTreeMap<String, String>,
}

impl RunOutputs for FakeOutputs {
    fn instance_ids(&self) -> RVec<u64> {
        self.lines.keys().copied().collect()
    }
    fn lines(&self, instance: u64) -> RVec<RString> {
        self.lines
            .get(&instance)
            .map(|ls| ls.iter().map(|l| RString::from(l.as_str())).collect())
            .unwrap_or_default()
    }
    fn succeeded(&self, _instance: u64) -> bool {
        true
    }
    fn status(&self, _instance: u64) -> RString {
        "exit status 0".into()
    }
    fn config(&self, key: RStr<'_>) -> ROption<RString> {
        self.config
            .get(key.as_str())
            .map(|v| RString::from(v.as_str()))
            .into()
    }
    fn config_keys(&self) -> RVec<RString> {
        self.config
            .keys()
            .map(|k| RString::from(k.as_str()))
            .collect()
    }
}

fn all_pass(v: &[Verdict]) -> bool {
    v.len() == 2 && v.iter().all(|v| v.passed)
}

/// The tutorial's order: share_local, deliver, share_subset_sum, deliver, print.
fn tutorial(n: u64, config: &[(&str, &str)]) -> Net {
    let mut net = Net::new(n, config);
    net.call_all("share_local", &[]);
    net.run(|_| 0);
    net.call_all("share_subset_sum", &[]);
    net.run(|_| 0);
    net.call_all("print_local_value", &[]);
    net.call_all("print_total_sum", &[]);
    net
}

fn assert_correct(net: &Net, m: u64) {
    let total = net.expected_total(m);
    for i in 1..=net.n() {
        let errors = &net.hosts[i as usize - 1].metric_errors;
        assert!(errors.is_empty(), "instance {i}: {errors:?}");
        assert_eq!(
            net.prints(i).last().unwrap(),
            &format!("My computed sum is {total}"),
            "instance {i}: {:?}\nlog: {:?}",
            net.prints(i),
            net.logs(i)
        );
        assert!(
            net.prints(i)
                .contains(&format!("My secret value is {}", net.secret(i)))
        );
    }
}

// ---------------------------------------------------------------- the tutorial, as written

#[test]
fn the_tutorial_prints_the_sum_of_the_secrets_and_passes_the_verdict() {
    for n in [2, 5, 6] {
        let net = tutorial(n, &[]);
        assert_correct(&net, DEFAULT_MODULUS);
        for i in 1..=n {
            assert_eq!(net.prints(i).len(), 2, "{:?}", net.prints(i));
            assert!(net.prints(i)[0].starts_with("My secret value is "));
        }
        let v = net.verdicts(&[]);
        assert!(all_pass(&v), "{v:?}");
        assert_eq!(
            v[0].message.as_str(),
            format!(
                "all {n} instances printed {}",
                net.expected_total(DEFAULT_MODULUS)
            )
        );
    }
}

#[test]
fn the_modulus_comes_from_the_config() {
    let net = tutorial(5, &[("modulus", "1000")]);
    assert_correct(&net, 1000);
    assert!((1..=5).all(|i| net.secret(i) < 1000));
    assert!(all_pass(&net.verdicts(&[("modulus", "1000")])));
    // the verdict judged with another modulus fails, naming the numbers
    let v = net.verdicts(&[("modulus", "999")]);
    assert!(!v[1].passed, "{v:?}");
}

#[test]
fn the_messages_are_defined_as_the_workshop_did() {
    let net = Net::new(3, &[]);
    let defs = &net.hosts[0].messages;
    assert_eq!(defs.len(), 2);
    assert_eq!(defs[0].name.as_str(), LOCAL_SHARE);
    assert_eq!(defs[0].authentication, Authentication::NONE);
    assert_eq!(defs[0].distribution, Distribution::DIRECT);
    assert_eq!(
        defs[0].destination.as_enum().ok(),
        Some(&Destination::Candidate)
    );
    assert_eq!(defs[1].name.as_str(), BROADCAST_SHARE);
    assert_eq!(defs[1].authentication, Authentication::MEMBER);
    assert_eq!(defs[1].distribution, Distribution::FULL_SYNC);
    assert_eq!(
        defs[1].destination.as_enum().ok(),
        Some(&Destination::Community { fanout: 10 })
    );
    let net = Net::new(3, &[("broadcast_fanout", "3")]);
    assert_eq!(
        net.hosts[0].messages[1].destination.as_enum().ok(),
        Some(&Destination::Community { fanout: 3 })
    );
}

// ---------------------------------------------------------------- adversarial orders

#[test]
fn every_adversarial_delivery_order_gives_the_right_total() {
    for n in [3u64, 5, 6] {
        for seed in 0..40u64 {
            let mut net = Net::new(n, &[]);
            net.echo = seed % 2 == 0;
            let mut rng = Rng(seed * 31 + n);
            // callbacks interleave with deliveries: each step either runs a
            // pending callback or delivers a random packet in flight
            let mut calls: Vec<(u64, &str)> = (1..=n)
                .flat_map(|i| [(i, "share_local"), (i, "share_subset_sum")])
                .collect();
            while !calls.is_empty() || !net.flight.is_empty() {
                let deliver = !net.flight.is_empty() && (calls.is_empty() || rng.below(3) > 0);
                if deliver {
                    let k = rng.below(net.flight.len());
                    let p = net.flight.remove(k);
                    net.deliver(&p);
                } else {
                    let (i, cb) = calls.remove(rng.below(calls.len()));
                    net.call(i, cb, &[]).unwrap();
                }
            }
            net.call_all("print_local_value", &[]);
            net.call_all("print_total_sum", &[]);
            assert_correct(&net, DEFAULT_MODULUS);
            assert!(all_pass(&net.verdicts(&[])), "n={n} seed={seed}");
        }
    }
}

#[test]
fn newest_first_delivery_gives_the_right_total() {
    let mut net = Net::new(5, &[]);
    net.call_all("share_local", &[]);
    net.call_all("share_subset_sum", &[]);
    net.run_reversed();
    net.call_all("print_local_value", &[]);
    net.call_all("print_total_sum", &[]);
    assert_correct(&net, DEFAULT_MODULUS);
}

#[test]
fn race_all_broadcasts_reach_an_instance_before_its_local_shares() {
    let mut net = Net::new(5, &[]);
    net.call_all("share_local", &[]);
    // hold back every local share addressed to instance 1
    let (to_one, rest): (Vec<Packet>, Vec<Packet>) = net.flight.drain(..).partition(|p| p.to == 1);
    net.flight = rest;
    net.run(|_| 0);
    net.call_all("share_subset_sum", &[]);
    // 2..5 broadcast; instance 1 is waiting for its local shares
    assert!(net.logs(1).iter().any(|l| l.contains(
        "share_subset_sum: the subset sum is broadcast once complete (missing local shares from instances 2,3,4,5)"
    )));
    net.run(|_| 0);
    net.call(1, "print_total_sum", &[]).unwrap();
    assert_eq!(
        net.prints(1).last().unwrap(),
        "My computed sum is unknown: missing local shares from instances 2,3,4,5"
    );
    for p in to_one {
        net.deliver(&p);
    }
    // its broadcast went out as soon as the last one arrived
    assert_eq!(net.hosts[0].stat("benaloh_subset_sums_out"), Some(1.0));
    net.run(|_| 0);
    net.call_all("print_local_value", &[]);
    net.call_all("print_total_sum", &[]);
    assert_correct(&net, DEFAULT_MODULUS);
}

#[test]
fn race_broadcasts_before_share_subset_sum_fires_here() {
    let mut net = Net::new(4, &[]);
    net.call_all("share_local", &[]);
    net.run(|_| 0);
    for i in 2..=4 {
        net.call(i, "share_subset_sum", &[]).unwrap();
    }
    net.run(|_| 0);
    // instance 1 has every other subset sum before its own share_subset_sum
    assert_eq!(net.hosts[0].stat("benaloh_subset_sums_in"), Some(3.0));
    net.call(1, "share_subset_sum", &[]).unwrap();
    net.run(|_| 0);
    net.call_all("print_local_value", &[]);
    net.call_all("print_total_sum", &[]);
    assert_correct(&net, DEFAULT_MODULUS);
}

#[test]
fn race_local_shares_before_share_local_runs_here() {
    let mut net = Net::new(4, &[]);
    for i in 2..=4 {
        net.call(i, "share_local", &[]).unwrap();
    }
    net.run(|_| 0);
    assert_eq!(net.hosts[0].stat("benaloh_local_shares_in"), Some(3.0));
    net.call(1, "share_local", &[]).unwrap();
    net.run(|_| 0);
    net.call_all("share_subset_sum", &[]);
    net.run(|_| 0);
    net.call_all("print_local_value", &[]);
    net.call_all("print_total_sum", &[]);
    assert_correct(&net, DEFAULT_MODULUS);
}

// ---------------------------------------------------------------- duplicates, strangers, more peers

#[test]
fn duplicates_and_strangers_are_not_counted() {
    let mut net = Net::new(3, &[]);
    net.call_all("share_local", &[]);
    let locals = net.flight.clone();
    // every local share twice, and once more from unknown peers 0 and 7
    for p in &locals {
        net.deliver(p);
        net.deliver(p);
        net.deliver_as(p, 0);
        net.deliver_as(p, 7);
    }
    net.flight.clear();
    net.call_all("share_subset_sum", &[]);
    let sums = net.flight.clone();
    net.run(|_| 0);
    for p in &sums {
        net.deliver(p);
    }
    net.flight.clear();
    net.call_all("print_local_value", &[]);
    net.call_all("print_total_sum", &[]);
    assert_correct(&net, DEFAULT_MODULUS);
    let h = &net.hosts[0];
    assert_eq!(h.stat("benaloh_local_shares_in"), Some(2.0));
    assert_eq!(h.stat("benaloh_subset_sums_in"), Some(2.0));
    assert_eq!(h.stat("benaloh_duplicates"), Some(4.0));
    assert_eq!(h.stat("benaloh_rejected"), Some(4.0));
    assert!(
        net.logs(1)
            .iter()
            .any(|l| l == "rejected: local share from unknown peer 0"),
        "{:?}",
        net.logs(1)
    );
}

#[test]
fn a_forged_subset_sum_signed_outside_the_run_changes_no_total() {
    let mut net = Net::new(4, &[]);
    net.call_all("share_local", &[]);
    net.run(|_| 0);
    // Before anyone broadcasts, a subset sum claiming instance 1 but signed
    // with a brand-new key (the overlay names no author instance) reaches
    // every other instance, passed on by instance 3 as catch-up sync would.
    let forged = payload::encode(
        Kind::SubsetSum,
        Share {
            origin: 1,
            modulus: DEFAULT_MODULUS,
            value: 12345,
        },
    );
    for to in [2, 3, 4] {
        let msg = IncomingMessage {
            name: BROADCAST_SHARE.into(),
            sender: 3,
            author: vec![7u8; 74].into(),
            global_time: 1,
            payload: forged.clone().into(),
            author_instance: ROption::RNone,
        };
        net.deliver_message(to, &msg);
    }
    net.call_all("share_subset_sum", &[]);
    net.run(|_| 0);
    net.call_all("print_local_value", &[]);
    net.call_all("print_total_sum", &[]);
    assert_correct(&net, DEFAULT_MODULUS);
    let v = net.verdicts(&[]);
    assert!(all_pass(&v), "{v:?}");
    assert!(
        net.logs(2)
            .iter()
            .any(|l| l.contains("claiming instance 1 is not signed by a key of the run")),
        "{:?}",
        net.logs(2)
    );
}

#[test]
fn more_peers_than_shares_sends_one_share_to_each_instance() {
    // the overlay knows more peers than there are other instances
    let mut net = Net::new(3, &[]);
    for h in &mut net.hosts {
        h.peers = vec![1, 2, 3, 4, 5, 6, 7];
    }
    net.call(1, "share_local", &[]).unwrap();
    let to: Vec<u64> = net.flight.iter().map(|p| p.to).collect();
    assert_eq!(to, [2, 3]);
}

#[test]
fn own_broadcast_echoed_back_is_counted_once() {
    let mut net = Net::new(4, &[]);
    net.echo = true;
    net.call_all("share_local", &[]);
    net.call_all("share_subset_sum", &[]);
    net.run(|f| f.len() / 2);
    net.call_all("print_local_value", &[]);
    net.call_all("print_total_sum", &[]);
    assert_correct(&net, DEFAULT_MODULUS);
}

#[test]
fn a_malformed_payload_is_logged_not_fatal() {
    let mut net = Net::new(3, &[]);
    let bad = Packet {
        from: 2,
        to: 1,
        name: LOCAL_SHARE.into(),
        payload: vec![1, 2, 3],
        global_time: 0,
    };
    net.deliver(&bad);
    assert_eq!(net.hosts[0].stat("benaloh_rejected"), Some(1.0));
    assert_eq!(
        net.logs(1).last().unwrap(),
        "rejected a local share from instance 2: payload has 3 bytes, expected 26"
    );
    // messages of other modules' types are none of its business
    let other = Packet {
        name: "other".into(),
        ..bad
    };
    net.deliver(&other);
    assert_eq!(net.hosts[0].stat("benaloh_rejected"), Some(1.0));
}

#[test]
fn a_flood_of_junk_is_counted_in_full_but_logged_sparingly() {
    let mut net = Net::new(3, &[]);
    let bad = Packet {
        from: 2,
        to: 1,
        name: BROADCAST_SHARE.into(),
        payload: vec![1, 2, 3],
        global_time: 1,
    };
    for _ in 0..40_000 {
        net.deliver(&bad);
    }
    assert_eq!(net.hosts[0].stat("benaloh_rejected"), Some(40_000.0));
    // The first ten, then one line each time the count doubles (16 .. 32768).
    assert_eq!(net.logs(1).len(), 10 + 12, "{:?}", net.logs(1));
    assert!(
        net.logs(1)
            .last()
            .unwrap()
            .ends_with("(32768 messages rejected so far; only some are logged, all are counted in benaloh_rejected)"),
        "{:?}",
        net.logs(1).last()
    );
}

// ---------------------------------------------------------------- losses

#[test]
fn a_lost_local_share_is_reported_and_fails_the_verdict_by_name() {
    let mut net = Net::new(5, &[]);
    net.call_all("share_local", &[]);
    // the share from 2 to 4 is lost
    net.flight.retain(|p| !(p.from == 2 && p.to == 4));
    net.run(|_| 0);
    net.call_all("share_subset_sum", &[]);
    net.run(|_| 0);
    net.call_all("print_local_value", &[]);
    net.call_all("print_total_sum", &[]);
    assert_eq!(
        net.prints(4).last().unwrap(),
        "My computed sum is unknown: missing local shares from instance 2"
    );
    for i in [1, 2, 3, 5] {
        assert_eq!(
            net.prints(i).last().unwrap(),
            "My computed sum is unknown: missing subset sums from instance 4"
        );
    }
    let v = net.verdicts(&[]);
    assert!(!v[0].passed && !v[1].passed);
    assert_eq!(
        v[0].message.as_str(),
        "instances 1-5 could not compute it: instance 4 lacks local shares from instance 2; \
         instances 1-3,5 lack subset sums from instance 4"
    );
    // resending recovers: share_local again resends the same shares
    net.call(2, "share_local", &[]).unwrap();
    assert!(
        net.logs(2)
            .iter()
            .any(|l| l.contains("resending the same local shares"))
    );
    net.run(|_| 0);
    net.call_all("print_total_sum", &[]);
    assert_correct(&net, DEFAULT_MODULUS);
    assert!(all_pass(&net.verdicts(&[])));
}

#[test]
fn a_lost_broadcast_is_named_by_the_instance_that_missed_it() {
    let mut net = Net::new(3, &[]);
    net.call_all("share_local", &[]);
    net.run(|_| 0);
    net.call_all("share_subset_sum", &[]);
    net.flight
        .retain(|p| !(p.name == BROADCAST_SHARE && p.from == 3 && p.to == 1));
    net.run(|_| 0);
    net.call_all("print_total_sum", &[]);
    assert_eq!(
        net.prints(1).last().unwrap(),
        "My computed sum is unknown: missing subset sums from instance 3"
    );
    assert!(
        net.prints(2)
            .last()
            .unwrap()
            .starts_with("My computed sum is ")
    );
    assert!(!net.prints(2).last().unwrap().contains("unknown"));
}

// ---------------------------------------------------------------- automatic mode

#[test]
fn automatic_mode_needs_no_share_subset_sum() {
    // `share_local auto=true`
    let mut net = Net::new(6, &[]);
    net.call_all("share_local", &["auto=true"]);
    let mut rng = Rng(6);
    net.run(|f| rng.below(f.len()));
    net.call_all("print_local_value", &[]);
    net.call_all("print_total_sum", &[]);
    assert_correct(&net, DEFAULT_MODULUS);
    // `auto_share` first, then share_local
    let mut net = Net::new(5, &[]);
    net.call_all("auto_share", &[]);
    net.call_all("share_local", &[]);
    net.run_reversed();
    net.call_all("print_local_value", &[]);
    net.call_all("print_total_sum", &[]);
    assert_correct(&net, DEFAULT_MODULUS);
    assert!(all_pass(&net.verdicts(&[])));
    // a late share_subset_sum changes nothing
    net.call(1, "share_subset_sum", &[]).unwrap();
    assert!(net.flight.is_empty());
    assert!(
        net.logs(1)
            .last()
            .unwrap()
            .contains("was already broadcast")
    );
}

// ---------------------------------------------------------------- arguments and config

#[test]
fn keyword_arguments_set_modulus_and_secret_and_the_verdict_follows() {
    let mut net = Net::new(3, &[]);
    for i in 1..=3 {
        let s = format!("secret={}", i * 10);
        net.call(i, "share_local", &["modulus=50", &s, "auto=yes"])
            .unwrap();
    }
    net.run(|_| 0);
    net.call_all("print_local_value", &[]);
    net.call_all("print_total_sum", &[]);
    for i in 1..=3 {
        assert_eq!(
            net.prints(i),
            [
                "My modulus is 50".to_string(),
                format!("My secret value is {}", i * 10),
                "My computed sum is 10".to_string(),
            ]
        );
    }
    // the config does not know the modulus; the printed line tells the verdict
    assert!(all_pass(&net.verdicts(&[])));
}

#[test]
fn a_drawn_secret_is_drawn_again_below_a_new_modulus() {
    let mut net = Net::new(3, &[]);
    net.call_all("share_local", &["modulus=3", "auto=true"]);
    assert!((1..=3).all(|i| net.secret(i) < 3));
    net.run(|_| 0);
    net.call_all("print_local_value", &[]);
    net.call_all("print_total_sum", &[]);
    assert_correct(&net, 3);
    assert!(all_pass(&net.verdicts(&[])));
}

#[test]
fn bad_arguments_are_errors_that_say_what_to_do() {
    let mut net = Net::new(3, &[]);
    assert_eq!(
        net.call(1, "share_local", &["secret=-1"]).unwrap_err(),
        "keyword argument `secret=-1` is out of range: use 0 or more"
    );
    assert_eq!(
        net.call(1, "share_local", &["modulus=1"]).unwrap_err(),
        "keyword argument `modulus=1` is out of range: use 2 or more"
    );
    assert_eq!(
        net.call(1, "share_local", &["modulus=10", "secret=10"])
            .unwrap_err(),
        "secret 10 is out of range: it must be below the modulus 10"
    );
    net.call(1, "print_local_value", &[]).unwrap();
    assert_eq!(
        net.call(1, "share_local", &["secret=3"]).unwrap_err(),
        "the secret can no longer change: the secret was already printed; set it in the config or before share_local"
    );
    net.call(2, "share_local", &[]).unwrap();
    assert!(
        net.call(2, "auto_share", &["modulus=99"])
            .unwrap_err()
            .contains("local shares were already sent")
    );
    assert!(net.call(1, "share_local", &["auto=maybe"]).is_err());
}

#[test]
fn config_keys_are_checked_at_creation() {
    let make = |n: u64, config: &[(&str, &str)]| {
        let mut h = TestHost::new(1, n);
        for (k, v) in config {
            h = h.with_config(k, v);
        }
        Benaloh::new(&mut h.host()).map(|_| ())
    };
    assert_eq!(
        make(3, &[("modulus", "1")]).unwrap_err(),
        "config key `modulus` = 1 is too small: use 2 or more"
    );
    assert!(
        make(3, &[("modulus", "many")])
            .unwrap_err()
            .starts_with("config key `modulus` = \"many\"")
    );
    assert_eq!(
        make(3, &[("broadcast_fanout", "0")]).unwrap_err(),
        "config key `broadcast_fanout` = 0 is too small: use 1 or more"
    );
    assert_eq!(
        make(3, &[("modulus", "10"), ("secret", "10")]).unwrap_err(),
        "secret 10 is out of range: it must be below the modulus 10"
    );
    assert_eq!(
        make(1, &[]).unwrap_err(),
        "benaloh needs at least 2 instances, the experiment runs 1: raise instances_to_run"
    );
    // the largest modulus, from the config
    assert!(make(3, &[("modulus", &u64::MAX.to_string())]).is_ok());
    // through the exported root module, a bad config is an error, not a panic
    let mut h = TestHost::new(1, 1);
    let err =
        (peerlab_root_module().new_instance())(peerlab_plugin_api::Host::from_impl(&mut h).raw())
            .into_result()
            .map(|_| ())
            .unwrap_err();
    assert!(err.as_str().contains("at least 2 instances"), "{err}");
}

#[test]
fn a_config_secret_is_used_and_random_secrets_follow_the_seed() {
    let net = tutorial(3, &[("secret", "7")]);
    assert!((1..=3).all(|i| net.secret(i) == 7));
    assert_correct(&net, DEFAULT_MODULUS);
    // same seeds, same secrets; different instances, different secrets
    let a = Net::new(4, &[]);
    let b = Net::new(4, &[]);
    let sa: Vec<u64> = (1..=4).map(|i| a.secret(i)).collect();
    let sb: Vec<u64> = (1..=4).map(|i| b.secret(i)).collect();
    assert_eq!(sa, sb);
    assert!(sa.windows(2).any(|w| w[0] != w[1]));
}

#[test]
fn a_failed_send_is_an_error_naming_the_instances() {
    let mut net = Net::new(3, &[]);
    // the overlay forgets the message type: every send fails
    net.hosts[0].messages.clear();
    let e = net.call(1, "share_local", &[]).unwrap_err();
    assert_eq!(
        e,
        "could not send local-share to instance 2: message `local-share` is not defined; \
         local-share to instance 3: message `local-share` is not defined (run share_local again to resend)"
    );
}

#[test]
fn the_total_known_annotation_is_recorded_once_when_the_last_share_arrives() {
    let mut net = Net::new(4, &[]);
    net.call_all("share_local", &["auto=true"]);
    let noted = |net: &Net, i: u64| {
        net.hosts[i as usize - 1]
            .annotations
            .iter()
            .filter(|(_, text)| text == TOTAL_KNOWN)
            .count()
    };
    // Every local share, but no subset sum yet: nobody knows the total.
    while let Some(i) = net.flight.iter().position(|p| p.name == LOCAL_SHARE) {
        let p = net.flight.remove(i);
        net.deliver(&p);
    }
    assert!((1..=4).all(|i| noted(&net, i) == 0));
    // Instance 1 gets every subset sum but one.
    let last_for_1 = net
        .flight
        .iter()
        .rposition(|p| p.name == BROADCAST_SHARE && p.to == 1)
        .unwrap();
    let last = net.flight.remove(last_for_1);
    net.run(|f| f.iter().position(|p| p.to != 1).unwrap_or(0));
    assert_eq!(noted(&net, 1), 0, "{:?}", net.hosts[0].annotations);
    net.deliver(&last);
    // Duplicates afterwards do not record it again.
    net.deliver(&last);
    for i in 1..=4 {
        assert_eq!(noted(&net, i), 1, "instance {i}");
    }
    net.call_all("print_local_value", &[]);
    net.call_all("print_total_sum", &[]);
    assert_correct(&net, DEFAULT_MODULUS);
}

#[test]
fn exercise_1_prints_its_argument_plus_one() {
    let mut net = Net::new(2, &[]);
    net.call(1, "exercise_1", &["41"]).unwrap();
    net.call(1, "exercise_1", &["9223372036854775807"]).unwrap();
    net.call(1, "exercise_1", &["-1"]).unwrap();
    assert_eq!(net.prints(1), ["42", "9223372036854775808", "0"]);
    assert!(net.call(1, "exercise_1", &["x"]).is_err());
}

#[test]
fn the_callback_table_has_the_workshop_names() {
    let names: Vec<String> = Benaloh::describe()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    for want in [
        "share_local",
        "share_subset_sum",
        "auto_share",
        "print_local_value",
        "print_total_sum",
        "exercise_1",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let root = peerlab_root_module();
    assert_eq!(root.name().as_str(), "benaloh");
}

#[test]
fn the_check_hook_reads_outputs_through_the_api() {
    let net = tutorial(3, &[]);
    let out = net.outputs(&[]);
    let v = Benaloh::verdicts(&Outputs::from_impl(&out));
    assert!(all_pass(&v), "{v:?}");
}

// ---------------------------------------------------------------- metrics

#[test]
fn time_to_total_and_share_counters_are_recorded_as_declared() {
    let n = 4;
    let mut net = Net::new(n, &[]);
    // Instance k shares at scenario time 10 + k; everything is delivered
    // at 20, except what instance 1 needs last, at 25.
    for i in 1..=n {
        net.hosts[i as usize - 1].now = 10.0 + i as f64;
        net.call(i, "share_local", &["auto=true"]).unwrap();
    }
    for h in &mut net.hosts {
        h.now = 20.0;
    }
    let (to_one, rest): (Vec<Packet>, Vec<Packet>) = net
        .flight
        .drain(..)
        .partition(|p| p.to == 1 && p.name == LOCAL_SHARE);
    net.flight = rest;
    net.run(|_| 0);
    for i in 2..=n {
        assert!(
            net.hosts[i as usize - 1]
                .observations(TIME_TO_TOTAL)
                .is_empty()
        );
    }
    for h in &mut net.hosts {
        h.now = 25.0;
    }
    for p in to_one {
        net.deliver(&p);
    }
    net.run(|_| 0);
    for i in 1..=n {
        let h = &net.hosts[i as usize - 1];
        assert!(h.metric_errors.is_empty(), "{:?}", h.metric_errors);
        // Everyone learns the total once instance 1's broadcast arrives, at 25.
        assert_eq!(h.observations(TIME_TO_TOTAL), [25.0 - (10.0 + i as f64)]);
        assert_eq!(h.counter("local_shares_out"), (n - 1) as f64);
        assert_eq!(h.counter("local_shares_in"), (n - 1) as f64);
        assert_eq!(h.counter("broadcast_shares_out"), 1.0);
        assert_eq!(h.counter("broadcast_shares_in"), (n - 1) as f64);
        // The old statistics still count the same.
        assert_eq!(h.stat("benaloh_local_shares_out"), Some((n - 1) as f64));
    }
    let decl = Benaloh::METRICS
        .iter()
        .find(|m| m.name.as_str() == TIME_TO_TOTAL)
        .unwrap();
    assert!(decl.headline && decl.kind == peerlab_plugin_api::MetricKind::OBSERVATION);
    assert_eq!(decl.unit.as_str(), "s");
}
