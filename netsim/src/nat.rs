//! NATs on the simulated network, as RFC 4787 describes them: each NAT'd
//! endpoint sits alone behind its own NAT box ([`NatBox`]) with a public
//! IP address; its datagrams leave from a mapped public address, and
//! datagrams to that address pass the box's filter or are dropped.
//!
//! Owns: the NAT behaviours ([`Dependence`] of mapping and of filtering,
//! [`NatModel`] with its named textbook types), the mapping table of one
//! box (ports, timeouts, which remote endpoints each mapping sent to) and
//! [`Nats`], every box of a [`crate::Network`] by endpoint and public IP.
//! The network asks it at send time (the source a receiver sees, where a
//! public address leads) and at arrival time (whether the filter lets the
//! datagram in: a puncture sent while a datagram was in flight counts).
//!
//! Must not: read a clock (time is an argument), draw random numbers
//! (ports are handed out in order, so a run repeats byte for byte), or know
//! what an endpoint is. Modelled choices (docs/network.md, NAT): only
//! outbound datagrams refresh a mapping (RFC 4787 REQ-6 allows inbound
//! refresh too); a mapping and each of its filter permissions live
//! `timeout` after the last datagram out through them; no port preservation
//! (ports are handed out from [`FIRST_PORT`] up); hairpinning is off (a
//! datagram to the box's own public address is dropped).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How a NAT's mapping or filtering depends on the remote endpoint
/// (RFC 4787 sections 4.1 and 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependence {
    /// The same for every remote endpoint.
    EndpointIndependent,
    /// Per remote IP address.
    AddressDependent,
    /// Per remote IP address and port.
    AddressAndPortDependent,
}

/// One NAT's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatModel {
    /// Which outbound datagrams share a public port.
    pub mapping: Dependence,
    /// Which inbound datagrams a mapping lets in: from anyone (independent),
    /// from an IP it sent to (address), from an endpoint it sent to
    /// (address and port).
    pub filtering: Dependence,
    /// How long a mapping, and each permission of its filter, lives after
    /// the last datagram sent out through it.
    pub timeout: Duration,
}

/// RFC 4787 REQ-5's least mapping timeout: 2 minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The first public port a box hands out.
pub const FIRST_PORT: u16 = 40_000;

impl NatModel {
    /// Full cone: endpoint-independent mapping and filtering.
    pub const fn full_cone(timeout: Duration) -> Self {
        Self::of(
            Dependence::EndpointIndependent,
            Dependence::EndpointIndependent,
            timeout,
        )
    }

    /// (Address-)restricted cone: endpoint-independent mapping,
    /// address-dependent filtering.
    pub const fn restricted_cone(timeout: Duration) -> Self {
        Self::of(
            Dependence::EndpointIndependent,
            Dependence::AddressDependent,
            timeout,
        )
    }

    /// Port-restricted cone: endpoint-independent mapping,
    /// address-and-port-dependent filtering.
    pub const fn port_restricted_cone(timeout: Duration) -> Self {
        Self::of(
            Dependence::EndpointIndependent,
            Dependence::AddressAndPortDependent,
            timeout,
        )
    }

    /// Symmetric: address-and-port-dependent mapping and filtering.
    pub const fn symmetric(timeout: Duration) -> Self {
        Self::of(
            Dependence::AddressAndPortDependent,
            Dependence::AddressAndPortDependent,
            timeout,
        )
    }

    const fn of(mapping: Dependence, filtering: Dependence, timeout: Duration) -> Self {
        Self {
            mapping,
            filtering,
            timeout,
        }
    }
}

/// One mapping: an internal endpoint's public port towards the remote
/// endpoints its key covers.
#[derive(Debug, Clone)]
struct Mapping {
    /// The remote side the mapping is for: unspecified (independent), the
    /// IP with port 0 (address) or the endpoint (address and port).
    key: SocketAddr,
    port: u16,
    /// When a datagram last went out through it.
    last_out: Instant,
    /// Remote endpoints it sent to, and when last.
    sent: Vec<(SocketAddr, Instant)>,
}

/// Why a datagram did not get through a NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// To a public port no live mapping has.
    NoMapping,
    /// The mapping's filter does not let this remote endpoint in.
    Filtered,
    /// To the box's own public address from inside (hairpinning is off).
    Hairpin,
}

/// The NAT box of one endpoint; see the module docs.
#[derive(Debug, Clone)]
pub struct NatBox {
    model: NatModel,
    public_ip: IpAddr,
    mappings: Vec<Mapping>,
    next_port: u16,
}

impl NatBox {
    /// A box with no mappings yet.
    pub fn new(model: NatModel, public_ip: IpAddr) -> Self {
        Self {
            model,
            public_ip,
            mappings: Vec::new(),
            next_port: FIRST_PORT,
        }
    }

    /// Its behaviour.
    pub fn model(&self) -> NatModel {
        self.model
    }

    /// Its public IP address.
    pub fn public_ip(&self) -> IpAddr {
        self.public_ip
    }

    /// Live mappings at `now`.
    pub fn mappings(&mut self, now: Instant) -> usize {
        self.expire(now);
        self.mappings.len()
    }

    fn key(&self, dest: SocketAddr) -> SocketAddr {
        let any = match dest {
            SocketAddr::V4(_) => IpAddr::from([0u8; 4]),
            SocketAddr::V6(_) => IpAddr::from([0u16; 8]),
        };
        match self.model.mapping {
            Dependence::EndpointIndependent => SocketAddr::new(any, 0),
            Dependence::AddressDependent => SocketAddr::new(dest.ip(), 0),
            Dependence::AddressAndPortDependent => dest,
        }
    }

    fn expire(&mut self, now: Instant) {
        let timeout = self.model.timeout;
        let alive = |t: Instant| now.saturating_duration_since(t) < timeout;
        self.mappings.retain_mut(|m| {
            m.sent.retain(|(_, t)| alive(*t));
            alive(m.last_out)
        });
    }

    fn free_port(&mut self) -> u16 {
        loop {
            let p = self.next_port;
            self.next_port = if p == u16::MAX { 1024 } else { p + 1 };
            if !self.mappings.iter().any(|m| m.port == p) {
                return p;
            }
        }
    }

    /// A datagram goes out to `dest` at `now`: the public address it
    /// leaves from (a mapping made or refreshed, `dest` permitted back in).
    pub fn outbound(&mut self, now: Instant, dest: SocketAddr) -> Result<SocketAddr, Refused> {
        if dest.ip() == self.public_ip {
            return Err(Refused::Hairpin);
        }
        self.expire(now);
        let key = self.key(dest);
        let i = match self.mappings.iter().position(|m| m.key == key) {
            Some(i) => i,
            None => {
                let port = self.free_port();
                self.mappings.push(Mapping {
                    key,
                    port,
                    last_out: now,
                    sent: Vec::new(),
                });
                self.mappings.len() - 1
            }
        };
        let m = &mut self.mappings[i];
        m.last_out = now;
        match m.sent.iter_mut().find(|(a, _)| *a == dest) {
            Some(entry) => entry.1 = now,
            None => m.sent.push((dest, now)),
        }
        Ok(SocketAddr::new(self.public_ip, m.port))
    }

    /// A datagram from `from` arrives at public port `port` at `now`:
    /// whether the box lets it in.
    pub fn inbound(&mut self, now: Instant, port: u16, from: SocketAddr) -> Result<(), Refused> {
        self.expire(now);
        let m = self
            .mappings
            .iter()
            .find(|m| m.port == port)
            .ok_or(Refused::NoMapping)?;
        let allowed = match self.model.filtering {
            Dependence::EndpointIndependent => true,
            Dependence::AddressDependent => m.sent.iter().any(|(a, _)| a.ip() == from.ip()),
            Dependence::AddressAndPortDependent => m.sent.iter().any(|(a, _)| *a == from),
        };
        if allowed {
            Ok(())
        } else {
            Err(Refused::Filtered)
        }
    }
}

/// Where a datagram to an address goes, NATs considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// To this endpoint, past its NAT's filter at arrival.
    Nat(usize),
    /// To this endpoint directly (it has no NAT).
    Direct(usize),
    /// Nowhere: no endpoint has the address, or it is a NAT'd endpoint's
    /// private address.
    Nowhere,
}

/// Every NAT box of a network, by endpoint and by public IP.
#[derive(Debug, Default)]
pub struct Nats {
    boxes: HashMap<usize, NatBox>,
    by_ip: HashMap<IpAddr, usize>,
}

impl Nats {
    /// No endpoint is behind a NAT.
    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }

    /// Put endpoint `endpoint` behind `nat` (replacing a box it had).
    pub fn insert(&mut self, endpoint: usize, nat: NatBox) {
        if let Some(old) = self.boxes.remove(&endpoint) {
            self.by_ip.remove(&old.public_ip);
        }
        self.by_ip.insert(nat.public_ip, endpoint);
        self.boxes.insert(endpoint, nat);
    }

    /// The box of endpoint `endpoint`.
    pub fn get_mut(&mut self, endpoint: usize) -> Option<&mut NatBox> {
        self.boxes.get_mut(&endpoint)
    }

    /// The source address a datagram from endpoint `src` (at `from`) to
    /// `to` is seen with: its NAT's mapping, or `from` without a NAT.
    pub(crate) fn outbound(
        &mut self,
        now: Instant,
        src: Option<usize>,
        from: SocketAddr,
        to: SocketAddr,
    ) -> Result<SocketAddr, Refused> {
        match src.and_then(|s| self.boxes.get_mut(&s)) {
            Some(nat) => nat.outbound(now, to),
            None => Ok(from),
        }
    }

    /// Where a datagram to `to` goes; `direct` is the endpoint that has
    /// `to` as its own address, if any.
    pub(crate) fn route(&self, to: SocketAddr, direct: Option<usize>) -> Route {
        if let Some(&e) = self.by_ip.get(&to.ip()) {
            return Route::Nat(e);
        }
        match direct {
            Some(e) if self.boxes.contains_key(&e) => Route::Nowhere,
            Some(e) => Route::Direct(e),
            None => Route::Nowhere,
        }
    }

    /// Whether endpoint `endpoint`'s NAT lets a datagram from `from` to its
    /// public address `to` in at `now`.
    pub(crate) fn inbound(
        &mut self,
        now: Instant,
        endpoint: usize,
        to: SocketAddr,
        from: SocketAddr,
    ) -> Result<(), Refused> {
        match self.boxes.get_mut(&endpoint) {
            Some(nat) => nat.inbound(now, to.port(), from),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    const T: Duration = Duration::from_secs(30);
    const PUB: [u8; 4] = [100, 64, 0, 1];

    #[test]
    fn cone_mappings_are_one_port_and_symmetric_ones_one_per_destination() {
        let t0 = Instant::now();
        let (x, y) = (a([10, 0, 0, 2], 7000), a([10, 0, 0, 3], 7000));
        let y2 = a([10, 0, 0, 3], 7001);
        let mut cone = NatBox::new(NatModel::port_restricted_cone(T), PUB.into());
        let p = cone.outbound(t0, x).unwrap();
        assert_eq!(p, a(PUB, FIRST_PORT));
        assert_eq!(cone.outbound(t0, y).unwrap(), p);
        assert_eq!(cone.outbound(t0, y2).unwrap(), p);
        let mut sym = NatBox::new(NatModel::symmetric(T), PUB.into());
        let ports: Vec<u16> = [x, y, y2, x]
            .iter()
            .map(|d| sym.outbound(t0, *d).unwrap().port())
            .collect();
        assert_eq!(
            ports,
            [FIRST_PORT, FIRST_PORT + 1, FIRST_PORT + 2, FIRST_PORT]
        );
        let mut adm = NatBox::new(
            NatModel::of(
                Dependence::AddressDependent,
                Dependence::AddressDependent,
                T,
            ),
            PUB.into(),
        );
        assert_eq!(adm.outbound(t0, y).unwrap(), adm.outbound(t0, y2).unwrap());
        assert_ne!(adm.outbound(t0, x).unwrap(), adm.outbound(t0, y).unwrap());
    }

    #[test]
    fn filters_let_in_what_rfc_4787_says_and_nothing_before_a_datagram_out() {
        let t0 = Instant::now();
        let peer = a([10, 0, 0, 2], 7000);
        let same_ip = a([10, 0, 0, 2], 9999);
        let other = a([10, 0, 0, 3], 7000);
        let verdicts = |model: NatModel| {
            let mut nat = NatBox::new(model, PUB.into());
            let before = nat.inbound(t0, FIRST_PORT, peer);
            let port = nat.outbound(t0, peer).unwrap().port();
            [peer, same_ip, other]
                .into_iter()
                .map(|from| nat.inbound(t0, port, from).is_ok())
                .collect::<Vec<_>>()
                .into_iter()
                .chain([before == Err(Refused::NoMapping)])
                .collect::<Vec<_>>()
        };
        assert_eq!(verdicts(NatModel::full_cone(T)), [true, true, true, true]);
        assert_eq!(
            verdicts(NatModel::restricted_cone(T)),
            [true, true, false, true]
        );
        assert_eq!(
            verdicts(NatModel::port_restricted_cone(T)),
            [true, false, false, true]
        );
        assert_eq!(verdicts(NatModel::symmetric(T)), [true, false, false, true]);
    }

    #[test]
    fn a_symmetric_mapping_lets_in_only_the_endpoint_it_was_made_for() {
        let t0 = Instant::now();
        let (tracker, peer) = (a([10, 0, 0, 1], 7000), a([10, 0, 0, 2], 7000));
        let mut nat = NatBox::new(NatModel::symmetric(T), PUB.into());
        let to_tracker = nat.outbound(t0, tracker).unwrap().port();
        nat.outbound(t0, peer).unwrap();
        // The peer learned the tracker's mapping from the tracker: refused.
        assert_eq!(nat.inbound(t0, to_tracker, peer), Err(Refused::Filtered));
    }

    #[test]
    fn mappings_and_permissions_time_out_after_the_last_datagram_out_and_hairpins_are_dropped() {
        let t0 = Instant::now();
        let peer = a([10, 0, 0, 2], 7000);
        let mut nat = NatBox::new(NatModel::full_cone(T), PUB.into());
        let port = nat.outbound(t0, peer).unwrap().port();
        let later = t0 + T - Duration::from_millis(1);
        assert_eq!(nat.inbound(later, port, peer), Ok(()));
        // Inbound traffic does not refresh it.
        assert_eq!(nat.inbound(t0 + T, port, peer), Err(Refused::NoMapping));
        assert_eq!(nat.mappings(t0 + T), 0);
        // A new mapping takes a new port.
        assert_eq!(nat.outbound(t0 + T, peer).unwrap().port(), port + 1);
        assert_eq!(
            nat.outbound(t0 + T, a(PUB, port + 1)),
            Err(Refused::Hairpin)
        );
        let mut pr = NatBox::new(NatModel::port_restricted_cone(T), PUB.into());
        let other = a([10, 0, 0, 3], 7000);
        let port = pr.outbound(t0, peer).unwrap().port();
        pr.outbound(t0 + T / 2, other).unwrap();
        // The mapping lives on (refreshed towards `other`); the permission
        // for `peer` has timed out.
        assert_eq!(pr.inbound(t0 + T, port, other), Ok(()));
        assert_eq!(pr.inbound(t0 + T, port, peer), Err(Refused::Filtered));
    }
}
