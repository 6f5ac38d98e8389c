//! The instance's NAT as far as a real UDP driver can have one: the
//! filtering of inbound datagrams (RFC 4787 section 5) that the config key
//! `nat` gives this instance, against the destinations it has sent to.
//!
//! Owns: [`NatFilter`] (which remote endpoints may send to this instance
//! now, with the `nat_timeout` of each permission) and the text of the
//! instance's `network` event that says which NAT it sits behind. The
//! real driver turns the filter on ([`crate::Instance::emulate_nat_filter`]):
//! a filtered datagram never reaches the overlay and is counted as
//! `drop/nat_filtered`. Over the simulated network the network itself
//! models each NAT exactly, mapping included (`peerlab_netsim::nat`), and
//! this filter stays off.
//!
//! What is emulated over real UDP (docs/network.md, NAT): filtering only,
//! with one public address per instance (its socket's), so every type maps
//! endpoint-independently; a symmetric NAT filters as a port-restricted
//! cone does, and its per-destination mapping is not reproduced.
//! Must not: touch a socket, read a clock or know its driver.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use peerlab_lang::NatType;
use peerlab_lang::nat::Dependence;

/// Which remote endpoints may send to this instance; see the module docs.
#[derive(Debug, Clone)]
pub struct NatFilter {
    filtering: Dependence,
    timeout: Duration,
    /// Each remote endpoint sent to, and when last.
    sent: HashMap<SocketAddr, Instant>,
    /// Size of `sent` after its last pruning (prune when it doubles).
    pruned_at: usize,
}

impl NatFilter {
    /// The filter of a NAT of type `nat`; `None` for no NAT.
    pub fn new(nat: NatType, timeout: Duration) -> Option<Self> {
        let (_, filtering) = nat.behaviour()?;
        Some(Self {
            filtering,
            timeout,
            sent: HashMap::new(),
            pruned_at: 0,
        })
    }

    /// A datagram goes out to `dest` at `now`: `dest` may answer until
    /// `timeout` after the last one.
    pub fn outbound(&mut self, now: Instant, dest: SocketAddr) {
        self.sent.insert(dest, now);
        if self.sent.len() > 2 * self.pruned_at.max(64) {
            let timeout = self.timeout;
            self.sent
                .retain(|_, t| now.saturating_duration_since(*t) < timeout);
            self.pruned_at = self.sent.len();
        }
    }

    /// Whether a datagram from `from` arriving at `now` passes.
    pub fn allows(&self, now: Instant, from: SocketAddr) -> bool {
        let alive = |t: &Instant| now.saturating_duration_since(*t) < self.timeout;
        match self.filtering {
            Dependence::EndpointIndependent => self.sent.values().any(alive),
            Dependence::AddressDependent => self
                .sent
                .iter()
                .any(|(a, t)| a.ip() == from.ip() && alive(t)),
            Dependence::AddressAndPortDependent => self.sent.get(&from).is_some_and(alive),
        }
    }
}

/// The `network` event's text for an instance behind `nat`:
/// `nat=symmetric mapping=address_and_port_dependent filtering=… timeout=120s`.
pub fn describe(nat: NatType, timeout: Duration) -> Option<String> {
    let (mapping, filtering) = nat.behaviour()?;
    let name = |d: Dependence| match d {
        Dependence::EndpointIndependent => "endpoint_independent",
        Dependence::AddressDependent => "address_dependent",
        Dependence::AddressAndPortDependent => "address_and_port_dependent",
    };
    Some(format!(
        "nat={} mapping={} filtering={} timeout={}s",
        nat.name(),
        name(mapping),
        name(filtering),
        timeout.as_secs_f64()
    ))
}

/// What a driver asks of the instance's NAT.
impl crate::Instance {
    /// The NAT this instance sits behind and its mapping timeout (the
    /// simulated driver gives it one on the simulated network).
    pub fn nat(&self) -> (peerlab_lang::NatType, Duration) {
        self.state.nat
    }

    /// The driver cannot model the NAT in its network (real UDP): filter
    /// inbound datagrams here, as the NAT's filtering would ([`crate::nat`]).
    pub fn emulate_nat_filter(&mut self) {
        let (t, timeout) = self.state.nat;
        self.state.nat_filter = NatFilter::new(t, timeout);
    }

    /// The driver's network model dropped a datagram to this instance at
    /// its NAT: counted as `drop/nat_filtered`.
    pub fn nat_filtered(&mut self) {
        self.state.core.count_nat_drop();
    }
}
