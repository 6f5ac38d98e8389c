//! The `gossip` module: the smallest experiment on Dispersy's FullSync
//! distribution. Each instance publishes signed messages (`publish`) that
//! spread by gossip (`Community(fanout)`) and catch-up synchronisation;
//! `report` prints how many distinct messages this instance holds, and the
//! verdict checks that every instance got every published message.
//!
//! Used by peerlab's partition, loss and scale tests, and as a template for
//! experiments that broadcast.

use std::collections::BTreeSet;

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
    seen: BTreeSet<(u64, u64)>,
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
    config = ["gossip_fanout: peers each rumor is sent to first; catch-up sync brings it to the rest (default 10)"]
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
        Ok(Gossip::default())
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
        }
        Ok(())
    }

    /// Every instance that reported holds every rumor that was published.
    #[check]
    fn verdicts(outputs: &Outputs) -> Vec<Verdict> {
        let ids = outputs.instance_ids();
        let mut published = 0u64;
        let mut reports = Vec::new();
        for &id in &ids {
            let lines = outputs.lines(id);
            published += lines
                .iter()
                .rev()
                .find_map(|l| parse_published(l))
                .unwrap_or(0);
            if let Some(held) = lines.iter().rev().find_map(|l| parse_report(l)) {
                reports.push((id, held));
            }
        }
        if reports.is_empty() {
            return vec![Verdict::fail(
                "everyone holds every rumor",
                "no instance ran `report`",
            )];
        }
        let short: Vec<String> = reports
            .iter()
            .filter(|(_, held)| (*held as u64) < published)
            .map(|(id, held)| format!("{id} ({held})"))
            .collect();
        vec![if short.is_empty() {
            Verdict::pass(
                "everyone holds every rumor",
                format!(
                    "all {} reporting instances hold all {published} rumors",
                    reports.len()
                ),
            )
        } else {
            let shown: Vec<&str> = short.iter().take(20).map(String::as_str).collect();
            Verdict::fail(
                "everyone holds every rumor",
                format!(
                    "{} of {} instances miss rumors (of {published}): {}{}",
                    short.len(),
                    reports.len(),
                    shown.join(", "),
                    if short.len() > 20 { ", ..." } else { "" }
                ),
            )
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerlab_plugin_api::testing::TestHost;

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
}
