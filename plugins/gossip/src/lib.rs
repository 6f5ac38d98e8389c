//! The `gossip` module: the smallest experiment on Dispersy's FullSync
//! distribution. Each instance publishes signed messages (`publish`) that
//! spread by gossip (`Community(fanout)`) and catch-up synchronisation;
//! `report` prints how many distinct messages this instance holds, and the
//! verdict checks that every instance got every published message.
//!
//! Used by peerlab's partition, loss and scale tests, and as a template for
//! experiments that broadcast.

use std::collections::BTreeSet;

use roaring::RoaringTreemap;

use peerlab_plugin_api::serde::{Deserialize, Serialize};
use peerlab_plugin_api::{
    Authentication, Destination, Distribution, Host, IncomingMessage, MessageSpec, Outputs,
    Verdict, module, payload,
};

/// The message type every instance publishes.
pub const RUMOR: &str = "rumor";

/// Per-instance state: what this instance published and received.
#[derive(Debug, Default)]
pub struct Gossip {
    published: u64,
    /// (author instance, sequence number) of every rumor held.
    seen: Seen,
    /// Rumors the experiment publishes in all (config key `gossip_rumors`,
    /// default one per instance), for `time_to_all_rumors`.
    expected: u64,
    /// Scenario time this instance first held a rumor.
    first_at: Option<f64>,
    /// `time_to_all_rumors` was recorded.
    all_noted: bool,
}

/// The rumors an instance holds, as (author, sequence number). A scale run
/// has every instance hold every rumor (10,000 instances x 10,000 rumors:
/// a B-tree entry each was 2.5 GB), so pairs that fit in 32 bits each are
/// bits of a compressed bitmap, sequence number high, author low: rumors
/// with one sequence number from many authors share one container. Other
/// pairs (a foreign peer's payload) are kept as they are.
#[derive(Debug, Default)]
struct Seen {
    packed: RoaringTreemap,
    other: BTreeSet<(u64, u64)>,
}

impl Seen {
    /// Whether the pair is new.
    fn insert(&mut self, (author, seq): (u64, u64)) -> bool {
        match (u32::try_from(author), u32::try_from(seq)) {
            (Ok(a), Ok(s)) => self.packed.insert(u64::from(s) << 32 | u64::from(a)),
            _ => self.other.insert((author, seq)),
        }
    }

    fn len(&self) -> usize {
        self.packed.len() as usize + self.other.len()
    }
}

/// A rumor's payload (a typed payload, encoded with the api's helper).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(crate = "peerlab_plugin_api::serde")]
struct Rumor {
    author: u64,
    seq: u64,
}

fn encode(author: u64, seq: u64) -> Vec<u8> {
    payload::to_bytes(&Rumor { author, seq }).expect("two integers always encode")
}

fn decode(bytes: &[u8]) -> Option<(u64, u64)> {
    payload::from_bytes::<Rumor>(bytes)
        .ok()
        .map(|r| (r.author, r.seq))
}

/// The line `report` prints, parsed back by the verdict.
fn report_line(held: usize) -> String {
    format!("gossip: holding {held} rumors")
}

fn parse_report(line: &str) -> Option<usize> {
    line.strip_prefix("gossip: holding ")?
        .strip_suffix(" rumors")?
        .parse()
        .ok()
}

/// Published rumors, printed by `publish` for the verdict.
fn published_line(count: u64) -> String {
    format!("gossip: published {count}")
}

fn parse_published(line: &str) -> Option<u64> {
    line.strip_prefix("gossip: published ")?.parse().ok()
}

/// FullSync gossip: publish rumors, count what arrives, check that everyone got everything.
#[module(
    name = "gossip",
    config = [
        "gossip_fanout: peers each rumor is sent to first; catch-up sync brings it to the rest (default 10)",
        "gossip_rumors: rumors the experiment publishes in all, for the time_to_all_rumors metric (default: one per instance)",
    ],
    metrics = [
        observation(time_to_all_rumors, unit = "s", headline,
            "scenario time from holding a first rumor to holding all gossip_rumors of them"),
        counter(rumors_received, unit = "rumors", "new rumors received"),
        gauge(rumors, unit = "rumors", "distinct rumors held"),
    ]
)]
impl Gossip {
    #[create]
    fn new(host: &mut Host) -> Result<Self, String> {
        let fanout = host
            .config_parse::<u32>("gossip_fanout")?
            .unwrap_or(10)
            .max(1);
        host.overlay()
            .define_message(MessageSpec::new(
                RUMOR,
                Authentication::MEMBER,
                Distribution::FULL_SYNC,
                Destination::Community { fanout },
            ))
            .map_err(|e| format!("cannot define `{RUMOR}`: {e}"))?;
        let expected = match host.config_parse::<u64>("gossip_rumors")? {
            Some(0) => return Err("config key `gossip_rumors` = 0: at least one rumor".into()),
            Some(n) => n,
            None => host.instance_count(),
        };
        Ok(Gossip {
            expected,
            ..Gossip::default()
        })
    }

    /// Publish `count` rumors (FullSync, signed), spread by gossip and sync.
    #[callback]
    fn publish(&mut self, host: &mut Host, #[kw(default = 1)] count: i64) -> Result<(), String> {
        if count < 1 {
            return Err(format!("count={count}: publish at least one rumor"));
        }
        let me = host.instance_id();
        for _ in 0..count {
            self.published += 1;
            let payload = encode(me, self.published);
            host.overlay().send(RUMOR, payload, &[])?;
            self.seen.insert((me, self.published));
        }
        host.print(published_line(self.published));
        host.stat_set("rumors_held", self.seen.len() as f64);
        self.held(host);
        Ok(())
    }

    /// Print how many distinct rumors this instance holds (its own included).
    #[callback]
    fn report(&mut self, host: &mut Host) {
        host.print(report_line(self.seen.len()));
    }

    #[on_message]
    fn message(&mut self, host: &mut Host, message: &IncomingMessage) -> Result<(), String> {
        if message.name.as_str() != RUMOR {
            return Ok(());
        }
        let Some((author, seq)) = decode(&message.payload) else {
            return Err(format!(
                "a rumor of {} bytes is malformed",
                message.payload.len()
            ));
        };
        if self.seen.insert((author, seq)) {
            host.stat_set("rumors_held", self.seen.len() as f64);
            host.counter_add("rumors_received", 1.0);
            self.held(host);
        }
        Ok(())
    }

    /// Every instance online at the end holds every rumor that was
    /// published; an instance without a report (silent, or its output
    /// missing) fails, by name. Instances away at the end (`leave`, churn)
    /// are not judged, and the verdict says how many.
    #[check]
    fn verdicts(outputs: &Outputs) -> Vec<Verdict> {
        vec![judge(outputs)]
    }
}

impl Gossip {
    /// The rumors held changed: the gauge, and `time_to_all_rumors` the
    /// first time every expected rumor is here.
    fn held(&mut self, host: &mut Host) {
        let now = host.now();
        let first = *self.first_at.get_or_insert(now);
        host.gauge_set("rumors", self.seen.len() as f64);
        if !self.all_noted && self.seen.len() as u64 >= self.expected {
            self.all_noted = true;
            host.observe("time_to_all_rumors", now - first);
        }
    }
}

/// The verdict's name.
pub const EVERYONE_HOLDS_EVERY_RUMOR: &str = "everyone holds every rumor";

/// How many instances a message names before it says `...`.
const MAX_NAMED: usize = 20;

/// Judge every instance id of the run online at its end, not only those
/// that reported: each must have printed a `report` line holding every
/// published rumor. The published total is the sum of the `published`
/// lines of every instance (one away at the end published too), but never
/// less than what some instance holds (a missing output cannot lower it).
fn judge(outputs: &Outputs) -> Verdict {
    let all = outputs.instance_ids();
    if all.is_empty() {
        return Verdict::fail(
            EVERYONE_HOLDS_EVERY_RUMOR,
            "not judged: the run has no instances",
        );
    }
    let (ids, away): (Vec<u64>, Vec<u64>) = all.iter().partition(|&&id| outputs.online_at_end(id));
    if ids.is_empty() {
        return Verdict::fail(
            EVERYONE_HOLDS_EVERY_RUMOR,
            format!(
                "not judged: none of the {} instances was online at the end",
                all.len()
            ),
        );
    }
    let mut printed_published = 0u64;
    let mut held: Vec<(u64, u64)> = Vec::new();
    let mut silent: Vec<(u64, String)> = Vec::new();
    for &id in &all {
        let lines = outputs.lines(id);
        printed_published += lines
            .iter()
            .rev()
            .find_map(|l| parse_published(l))
            .unwrap_or(0);
        if away.contains(&id) {
            continue;
        }
        match lines.iter().rev().find_map(|l| parse_report(l)) {
            Some(h) => held.push((id, h as u64)),
            None if outputs.succeeded(id) => silent.push((id, "no `report` line".into())),
            None => silent.push((id, outputs.status(id))),
        }
    }
    let most_held = held.iter().map(|&(_, h)| h).max().unwrap_or(0);
    let published = printed_published.max(most_held);
    let mut problems = Vec::new();
    if !silent.is_empty() {
        let named: Vec<String> = silent
            .iter()
            .take(MAX_NAMED)
            .map(|(id, why)| format!("{id} ({why})"))
            .collect();
        problems.push(format!(
            "{} of {} instances did not report: {}{}",
            silent.len(),
            ids.len(),
            named.join(", "),
            if silent.len() > MAX_NAMED {
                ", ..."
            } else {
                ""
            }
        ));
    }
    if most_held > printed_published {
        problems.push(format!(
            "the outputs show {printed_published} rumors published but an instance holds {most_held}: a `published` line is missing"
        ));
    }
    let short: Vec<(u64, u64)> = held
        .iter()
        .copied()
        .filter(|&(_, h)| h < published)
        .collect();
    if !short.is_empty() {
        let named: Vec<String> = short
            .iter()
            .take(MAX_NAMED)
            .map(|(id, h)| format!("{id} ({h})"))
            .collect();
        problems.push(format!(
            "{} of {} instances miss rumors (of {published}): {}{}",
            short.len(),
            ids.len(),
            named.join(", "),
            if short.len() > MAX_NAMED { ", ..." } else { "" }
        ));
    }
    let away_note = if away.is_empty() {
        String::new()
    } else {
        let named: Vec<String> = away.iter().take(MAX_NAMED).map(u64::to_string).collect();
        format!(
            " ({} away at the end, not judged: {}{})",
            away.len(),
            named.join(", "),
            if away.len() > MAX_NAMED { ", ..." } else { "" }
        )
    };
    let online = if away.is_empty() {
        ""
    } else {
        " online at the end"
    };
    if problems.is_empty() {
        Verdict::pass(
            EVERYONE_HOLDS_EVERY_RUMOR,
            format!(
                "all {} instances{online} hold all {published} rumors{away_note}",
                ids.len()
            ),
        )
    } else {
        Verdict::fail(
            EVERYONE_HOLDS_EVERY_RUMOR,
            format!("{}{away_note}", problems.join("; ")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerlab_plugin_api::abi_stable::std_types::{ROption, RStr, RString, RVec};
    use peerlab_plugin_api::testing::TestHost;
    use peerlab_plugin_api::{RunOutputs, Verdict};

    /// A finished run as the host's `RunOutputs`: per instance, its lines,
    /// or `None` when its output is missing (the host then reports it as not
    /// succeeded, with the reason in its status).
    struct FakeOutputs(Vec<(u64, Option<Vec<&'static str>>)>);

    impl RunOutputs for FakeOutputs {
        fn instance_ids(&self) -> RVec<u64> {
            self.0.iter().map(|(id, _)| *id).collect()
        }
        fn lines(&self, instance: u64) -> RVec<RString> {
            self.0
                .iter()
                .find(|(id, _)| *id == instance)
                .and_then(|(_, l)| l.as_ref())
                .map(|l| l.iter().map(|s| RString::from(*s)).collect())
                .unwrap_or_default()
        }
        fn succeeded(&self, instance: u64) -> bool {
            self.0.iter().any(|(id, l)| *id == instance && l.is_some())
        }
        fn status(&self, instance: u64) -> RString {
            if self.succeeded(instance) {
                "finished".into()
            } else {
                format!("finished; its output {instance:05}.out is missing").into()
            }
        }
        fn config(&self, _key: RStr<'_>) -> ROption<RString> {
            ROption::RNone
        }
        fn config_keys(&self) -> RVec<RString> {
            RVec::new()
        }
    }

    /// [`FakeOutputs`] with some instances away at their end.
    struct WithAway(FakeOutputs, Vec<u64>);

    impl RunOutputs for WithAway {
        fn instance_ids(&self) -> RVec<u64> {
            self.0.instance_ids()
        }
        fn lines(&self, instance: u64) -> RVec<RString> {
            self.0.lines(instance)
        }
        fn succeeded(&self, instance: u64) -> bool {
            self.0.succeeded(instance)
        }
        fn status(&self, instance: u64) -> RString {
            self.0.status(instance)
        }
        fn config(&self, key: RStr<'_>) -> ROption<RString> {
            self.0.config(key)
        }
        fn config_keys(&self) -> RVec<RString> {
            self.0.config_keys()
        }
        fn online_at_end(&self, instance: u64) -> bool {
            !self.1.contains(&instance)
        }
    }

    #[test]
    fn instances_away_at_the_end_are_not_judged_but_their_rumors_count() {
        // 3 published and left before the report: 1 and 2 must hold its rumor too.
        let run = |held: &'static str| {
            let fake = WithAway(
                FakeOutputs(vec![
                    (1, Some(vec![PUBLISHED_1, held])),
                    (2, Some(vec![PUBLISHED_1, HOLDING_3])),
                    (3, Some(vec![PUBLISHED_1])),
                ]),
                vec![3],
            );
            Gossip::verdicts(&Outputs::from_impl(&fake)).remove(0)
        };
        let v = run(HOLDING_3);
        assert!(v.passed, "{v:?}");
        assert_eq!(
            v.message.as_str(),
            "all 2 instances online at the end hold all 3 rumors (1 away at the end, not judged: 3)"
        );
        let v = run("gossip: holding 2 rumors");
        assert!(!v.passed, "{v:?}");
        assert_eq!(
            v.message.as_str(),
            "1 of 2 instances miss rumors (of 3): 1 (2) (1 away at the end, not judged: 3)"
        );
        let fake = WithAway(FakeOutputs(vec![(1, Some(vec![PUBLISHED_1]))]), vec![1]);
        let v = Gossip::verdicts(&Outputs::from_impl(&fake)).remove(0);
        assert!(!v.passed);
        assert!(v.message.contains("none of the 1 instances"), "{v:?}");
    }

    fn judged(instances: Vec<(u64, Option<Vec<&'static str>>)>) -> Verdict {
        let fake = FakeOutputs(instances);
        let v = Gossip::verdicts(&Outputs::from_impl(&fake));
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].name.as_str(), EVERYONE_HOLDS_EVERY_RUMOR);
        v[0].clone()
    }

    const PUBLISHED_1: &str = "gossip: published 1";
    const HOLDING_3: &str = "gossip: holding 3 rumors";

    #[test]
    fn a_run_where_everyone_holds_everything_passes() {
        let v = judged(vec![
            (
                1,
                Some(vec![PUBLISHED_1, "gossip: holding 1 rumors", HOLDING_3]),
            ),
            (2, Some(vec![PUBLISHED_1, HOLDING_3])),
            (3, Some(vec![PUBLISHED_1, HOLDING_3])),
        ]);
        assert!(v.passed, "{v:?}");
        assert_eq!(v.message.as_str(), "all 3 instances hold all 3 rumors");
    }

    #[test]
    fn an_instance_without_a_report_line_fails_by_name() {
        let v = judged(vec![
            (1, Some(vec![PUBLISHED_1, HOLDING_3])),
            (2, Some(vec![PUBLISHED_1, HOLDING_3])),
            (3, Some(vec![PUBLISHED_1])),
        ]);
        assert!(!v.passed, "{v:?}");
        assert_eq!(
            v.message.as_str(),
            "1 of 3 instances did not report: 3 (no `report` line)"
        );
    }

    #[test]
    fn a_missing_output_fails_by_name_and_does_not_lower_the_total() {
        // instance 3 published and its output is gone: the others hold 3,
        // which the printed `published` lines (2) cannot explain
        let v = judged(vec![
            (1, Some(vec![PUBLISHED_1, HOLDING_3])),
            (2, Some(vec![PUBLISHED_1, "gossip: holding 2 rumors"])),
            (3, None),
        ]);
        assert!(!v.passed, "{v:?}");
        assert_eq!(
            v.message.as_str(),
            "1 of 3 instances did not report: 3 (finished; its output 00003.out is missing); \
             the outputs show 2 rumors published but an instance holds 3: a `published` line is missing; \
             1 of 3 instances miss rumors (of 3): 2 (2)"
        );
    }

    #[test]
    fn missing_rumors_are_named_with_what_each_holds() {
        let v = judged(vec![
            (1, Some(vec![PUBLISHED_1, "gossip: holding 1 rumors"])),
            (2, Some(vec![PUBLISHED_1, HOLDING_3])),
            (3, Some(vec![PUBLISHED_1, "gossip: holding 2 rumors"])),
        ]);
        assert!(!v.passed, "{v:?}");
        assert_eq!(
            v.message.as_str(),
            "2 of 3 instances miss rumors (of 3): 1 (1), 3 (2)"
        );
    }

    #[test]
    fn silence_everywhere_fails_and_long_lists_are_cut() {
        let v = judged((1..=25).map(|i| (i, Some(vec![PUBLISHED_1]))).collect());
        assert!(!v.passed, "{v:?}");
        assert!(
            v.message
                .starts_with("25 of 25 instances did not report: 1 (no `report` line), 2 ("),
            "{v:?}"
        );
        assert!(v.message.ends_with("20 (no `report` line), ..."), "{v:?}");
    }

    #[test]
    fn a_run_without_instances_is_not_judged() {
        let v = judged(Vec::new());
        assert!(!v.passed);
        assert_eq!(v.message.as_str(), "not judged: the run has no instances");
    }

    #[test]
    fn payloads_round_trip_and_bad_ones_are_refused() {
        assert_eq!(decode(&encode(7, 9)), Some((7, 9)));
        assert_eq!(decode(&[1, 2, 3]), None);
        assert_eq!(parse_report(&report_line(12)), Some(12));
        assert_eq!(parse_published(&published_line(3)), Some(3));
    }

    #[test]
    fn publishing_and_receiving_count_distinct_rumors() {
        let mut a = TestHost::new(1, 2);
        let mut b = TestHost::new(2, 2);
        let mut ga = Gossip::new(&mut a.host()).unwrap();
        let mut gb = Gossip::new(&mut b.host()).unwrap();
        ga.publish(&mut a.host(), 2).unwrap();
        assert_eq!(a.sent.len(), 2, "{:?}", a.sent);
        for sent in a.sent.clone() {
            let msg = IncomingMessage {
                name: RUMOR.into(),
                sender: 1,
                author: Vec::new().into(),
                global_time: 1,
                payload: sent.payload.clone().into(),
                author_instance: Some(1).into(),
            };
            gb.message(&mut b.host(), &msg).unwrap();
            gb.message(&mut b.host(), &msg).unwrap();
        }
        gb.report(&mut b.host());
        assert_eq!(
            b.prints,
            ["gossip: holding 2 rumors"],
            "duplicates count once"
        );
        assert!(ga.publish(&mut a.host(), 0).is_err(), "count=0 is refused");
    }

    #[test]
    fn held_rumors_count_each_pair_once_whatever_its_size() {
        let mut seen = Seen::default();
        let pairs = [
            (1, 1),
            (2, 1),
            (1, 2),
            (u64::from(u32::MAX), u64::from(u32::MAX)),
            (1 << 32, 1),
            (1, 1 << 32),
            (u64::MAX, 0),
        ];
        for p in pairs {
            assert!(seen.insert(p), "{p:?} is new");
        }
        for p in pairs {
            assert!(!seen.insert(p), "{p:?} is held");
        }
        assert_eq!(seen.len(), pairs.len());
    }

    #[test]
    fn time_to_all_rumors_is_recorded_once_when_the_last_one_arrives() {
        use peerlab_plugin_api::Module;
        let mut b = TestHost::new(2, 3)
            .with_config("gossip_rumors", "3")
            .with_metrics(Gossip::METRICS);
        let mut gb = Gossip::new(&mut b.host()).unwrap();
        b.now = 4.0;
        gb.publish(&mut b.host(), 1).unwrap();
        for (at, author) in [(5.5, 1), (7.25, 3), (9.0, 3)] {
            b.now = at;
            let msg = IncomingMessage {
                name: RUMOR.into(),
                sender: author,
                author: Vec::new().into(),
                global_time: 1,
                payload: encode(author, 1).into(),
                author_instance: Some(author).into(),
            };
            gb.message(&mut b.host(), &msg).unwrap();
        }
        assert!(b.metric_errors.is_empty(), "{:?}", b.metric_errors);
        // First rumor (its own) at 4, the third distinct one at 7.25; the
        // duplicate at 9 changes nothing.
        assert_eq!(b.observations("time_to_all_rumors"), [3.25]);
        assert_eq!(b.counter("rumors_received"), 2.0);
        assert_eq!(b.gauge("rumors"), Some(3.0));
        let bad = TestHost::new(1, 3).with_config("gossip_rumors", "0");
        let mut bad = bad;
        assert!(Gossip::new(&mut bad.host()).is_err());
    }
}
