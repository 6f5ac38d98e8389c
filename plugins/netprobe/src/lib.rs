//! The `netprobe` module: measures the network model from inside an
//! experiment. `ping` sends one unsigned, direct probe to every other
//! instance; `burst` sends many padded probes to one instance at once.
//! Each probe carries the scenario time it was sent at, and the receiver
//! prints one line per probe (`netprobe: probe from A seq K sent T1 at T2
//! bytes B`), from which tests read one-way latencies per pair of groups
//! and transfer times through a bandwidth limit.
//!
//! Probes are unsigned (`Authentication::NONE`) so no signature work sits
//! between the two timestamps. Must not: judge anything (the tests do,
//! against the configured model).

use peerlab_plugin_api::serde::{Deserialize, Serialize};
use peerlab_plugin_api::{
    Authentication, Destination, Distribution, Host, IncomingMessage, MessageSpec, module, payload,
};

/// The message type of every probe.
pub const PROBE: &str = "probe";

/// One probe's payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "peerlab_plugin_api::serde")]
struct Probe {
    from: u64,
    seq: u64,
    /// Scenario seconds when it was sent.
    sent: f64,
    pad: Vec<u8>,
}

/// The line printed for each probe received, parsed back by tests.
pub fn probe_line(from: u64, seq: u64, sent: f64, at: f64, bytes: usize) -> String {
    format!("netprobe: probe from {from} seq {seq} sent {sent:.9} at {at:.9} bytes {bytes}")
}

/// Per-instance state: probes sent so far.
#[derive(Debug, Default)]
pub struct NetProbe {
    seq: u64,
}

/// Probes that measure one-way latency and transfer time.
#[module(name = "netprobe")]
impl NetProbe {
    #[create]
    fn new(host: &mut Host) -> Result<Self, String> {
        host.overlay()
            .define_message(MessageSpec::new(
                PROBE,
                Authentication::NONE,
                Distribution::DIRECT,
                Destination::Candidate,
            ))
            .map_err(|e| format!("cannot define `{PROBE}`: {e}"))?;
        Ok(NetProbe::default())
    }

    /// Send one probe to every other instance of the run.
    #[callback]
    fn ping(&mut self, host: &mut Host) -> Result<(), String> {
        let me = host.instance_id();
        let others: Vec<u64> = (1..=host.instance_count()).filter(|&i| i != me).collect();
        for to in others {
            self.send(host, to, 0)?;
        }
        Ok(())
    }

    /// Send `count` probes of `size` padding bytes to instance `to`, all at once.
    #[callback]
    fn burst(
        &mut self,
        host: &mut Host,
        to: i64,
        #[kw(default = 10)] count: i64,
        #[kw(default = 1000)] size: i64,
    ) -> Result<(), String> {
        if to < 1 || count < 1 || !(0..=1200).contains(&size) {
            return Err(format!(
                "burst to={to} count={count} size={size}: an instance id, at least one probe, 0 to 1200 bytes"
            ));
        }
        for _ in 0..count {
            self.send(host, to as u64, size as usize)?;
        }
        Ok(())
    }

    #[on_message]
    fn message(&mut self, host: &mut Host, message: &IncomingMessage) -> Result<(), String> {
        if message.name.as_str() != PROBE {
            return Ok(());
        }
        let p: Probe =
            payload::from_bytes(&message.payload).map_err(|e| format!("a malformed probe: {e}"))?;
        let at = host.now();
        host.print(probe_line(p.from, p.seq, p.sent, at, message.payload.len()));
        Ok(())
    }
}

impl NetProbe {
    fn send(&mut self, host: &mut Host, to: u64, pad: usize) -> Result<(), String> {
        self.seq += 1;
        let probe = Probe {
            from: host.instance_id(),
            seq: self.seq,
            sent: host.now(),
            pad: vec![0x5a; pad],
        };
        let bytes = payload::to_bytes(&probe).map_err(|e| e.to_string())?;
        host.overlay().send(PROBE, bytes, &[to])
    }
}
