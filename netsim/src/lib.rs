//! peerlab's network simulator: one in-memory network on a virtual clock,
//! for the host's simulated runs (whole instances) and the overlay's tests
//! (bare cores, [`overlay::SimNet`]).
//!
//! Owns: [`LinkModel`] (what a link does to a datagram), [`Network`] (the
//! endpoints' addresses, the links between them, the seeded draws of loss
//! and jitter from each sender's own stream, and one queue of timed events
//! ordered by time, then by a key of whom they concern, never by when they
//! were queued ([`draws`]): datagrams in flight and the driver's own
//! wake-ups; [`partition`] splits one network into several whose queues
//! hold disjoint endpoints' events, for a driver with several threads),
//! and [`NetStats`]; NATs (RFC 4787 mapping and filtering, one box per
//! NAT'd endpoint) are [`nat`]'s, asked by `send` and `pop`. A driver pops the next event, hands it to its
//! endpoint (a core, an instance) and sends what the endpoint gives back
//! through [`Network::send`]; time jumps from event to event.
//!
//! Must not: read the clock, sleep, touch a socket, or know what an
//! endpoint is (the drivers do: `overlay.rs` here, the host's
//! `runtime/sim.rs`); nor depend on tokio, the host or the instance
//! runtime (`tests/tests/tidy.rs`).

mod draws;
mod inflight;
pub mod link;
pub mod nat;
pub mod overlay;
pub mod partition;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use link::LinkModel;
pub use nat::{NatBox, NatModel};

/// Counters of the network itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams handed to an endpoint.
    pub delivered: u64,
    /// Datagrams lost on a link (its `loss`).
    pub lost: u64,
    /// Datagrams over the link's MTU.
    pub too_big: u64,
    /// Datagrams to an address no endpoint has (a NAT'd endpoint's
    /// private address, its own NAT's public address: no hairpinning).
    pub undeliverable: u64,
    /// Datagrams a NAT did not let in (no mapping, or its filter).
    pub nat_filtered: u64,
}

impl NetStats {
    /// Every datagram sent that never arrives: lost, too big or undeliverable.
    pub fn dropped(&self) -> u64 {
        self.lost + self.too_big + self.undeliverable + self.nat_filtered
    }
}

/// What [`Network::send`] did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// On its way; it arrives at this instant.
    InFlight(Instant),
    /// The link lost it (its `loss`).
    Lost,
    /// Larger than the link's MTU.
    TooBig,
    /// No endpoint has its destination address.
    Undeliverable,
}

/// One timed event of the queue.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<W> {
    /// A datagram arrives at endpoint `to` (its index), sent from `from`.
    Deliver {
        to: usize,
        from: SocketAddr,
        data: Vec<u8>,
    },
    /// A wake-up the driver queued ([`Network::wake_at`]).
    Wake(W),
    /// A datagram from `from` that endpoint `to`'s NAT did not let in
    /// (counted in [`NetStats::nat_filtered`]; the driver may count it on
    /// the endpoint too).
    Filtered { to: usize, from: SocketAddr },
}

/// The network; see the module docs. `W` is what the driver queues to be
/// woken with.
#[derive(Debug)]
pub struct Network<W> {
    /// Ordered by (time, key: see [`draws`]); the event itself waits in
    /// `slots`, so the heap moves and compares small entries only.
    queue: BinaryHeap<Reverse<(Instant, u64, u32, u32)>>,
    /// Each event, with the public address a datagram to a NAT'd endpoint
    /// was sent to (its NAT filters it when it arrives); held compactly,
    /// a datagram's bytes packed with others' (`inflight.rs`).
    slots: inflight::Slots<W>,
    /// Datagrams in the queue.
    in_flight: usize,
    /// Datagram buffers to reuse.
    spare: Vec<Vec<u8>>,
    by_addr: HashMap<SocketAddr, usize>,
    link: LinkModel,
    links: HashMap<(usize, usize), LinkModel>,
    draws: draws::Draws,
    nats: nat::Nats,
    /// When split ([`partition`]): which endpoints' events this one queues.
    part: Option<partition::Part<W>>,
    /// Network counters.
    pub stats: NetStats,
}

/// Spare datagram buffers kept for reuse, at most.
const SPARE_BUFFERS: usize = 4096;

impl<W> Network<W> {
    /// An empty network whose links all have `link`'s properties; loss and
    /// jitter are drawn from a generator seeded with `seed`.
    pub fn new(seed: u64, link: LinkModel) -> Self {
        Self {
            queue: BinaryHeap::new(),
            slots: inflight::Slots::default(),
            in_flight: 0,
            spare: Vec::new(),
            by_addr: HashMap::new(),
            link,
            links: HashMap::new(),
            draws: draws::Draws::new(seed),
            nats: nat::Nats::default(),
            part: None,
            stats: NetStats::default(),
        }
    }

    /// Give endpoint `index` the address `addr` (datagrams to it arrive as
    /// [`Event::Deliver`] with `to: index`).
    pub fn attach(&mut self, addr: SocketAddr, index: usize) {
        self.by_addr.insert(addr, index);
    }

    /// The endpoint at `addr`.
    pub fn endpoint(&self, addr: &SocketAddr) -> Option<usize> {
        self.by_addr.get(addr).copied()
    }

    /// Put endpoint `index` behind its own NAT: its datagrams leave from
    /// the NAT's mapped public addresses, and datagrams to them arrive
    /// only through the NAT's filter; its own address is no longer
    /// reachable from outside.
    pub fn set_nat(&mut self, index: usize, nat: NatBox) {
        self.nats.insert(index, nat);
    }

    /// The NAT of endpoint `index`, if it has one.
    pub fn nat_mut(&mut self, index: usize) -> Option<&mut NatBox> {
        self.nats.get_mut(index)
    }

    /// Overrides the link from endpoint `a` to endpoint `b`.
    pub fn set_link(&mut self, a: usize, b: usize, link: LinkModel) {
        self.links.insert((a, b), link);
    }

    /// Sets every link's properties (overrides stay).
    pub fn set_default_link(&mut self, link: LinkModel) {
        self.link = link;
    }

    /// The link every pair of endpoints has unless overridden.
    pub fn default_link(&self) -> LinkModel {
        self.link
    }

    /// A buffer for a datagram (a reused one when there is one).
    pub fn buffer(&mut self) -> Vec<u8> {
        let mut b = self.spare.pop().unwrap_or_default();
        b.clear();
        b
    }

    /// Give a datagram's buffer back for reuse.
    pub fn recycle(&mut self, data: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS {
            self.spare.push(data);
        }
    }

    /// Send `data` from `from` to `to` at `now`, held `extra` longer than
    /// the link's delay (a fault model's delay). Over the MTU is dropped
    /// before the loss draw; then the loss is drawn, then the jitter (each
    /// only when the link has some), from the sender's own stream: the
    /// `n`-th datagram of a sender meets the same fate whatever the other
    /// endpoints did meanwhile.
    pub fn send(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        data: Vec<u8>,
        extra: Duration,
    ) -> Sent {
        let direct = self.by_addr.get(&to).copied();
        let src = self.by_addr.get(&from).copied();
        let seq = self.draws.next(src);
        let (dest, from, nat_dest) = if self.nats.is_empty() {
            (direct, from, None)
        } else {
            // Translated at send time; filtered at arrival (`pop`).
            let (dest, nat_dest) = match self.nats.route(to, direct) {
                nat::Route::Nat(e) => (Some(e), Some(to)),
                nat::Route::Direct(e) => (Some(e), None),
                nat::Route::Nowhere => (None, None),
            };
            match self.nats.outbound(now, src, from, to) {
                Ok(seen) if dest.is_some() => (dest, seen, nat_dest),
                _ => (None, from, None),
            }
        };
        let Some(dest) = dest else {
            self.stats.undeliverable += 1;
            self.recycle(data);
            return Sent::Undeliverable;
        };
        let link = match src {
            Some(src) if !self.links.is_empty() => {
                self.links.get(&(src, dest)).copied().unwrap_or(self.link)
            }
            _ => self.link,
        };
        if data.len() > link.mtu {
            self.stats.too_big += 1;
            self.recycle(data);
            return Sent::TooBig;
        }
        if link.loss > 0.0 && self.draws.unit(src, seq, 0) < link.loss {
            self.stats.lost += 1;
            self.recycle(data);
            return Sent::Lost;
        }
        let jitter = if link.jitter.is_zero() {
            Duration::ZERO
        } else {
            link.jitter.mul_f64(self.draws.unit(src, seq, 1))
        };
        let at = now + link.delay + jitter + extra;
        self.in_flight += 1;
        self.push_via(
            at,
            draws::deliver_key(dest, src, seq),
            Event::Deliver {
                to: dest,
                from,
                data,
            },
            nat_dest,
        );
        Sent::InFlight(at)
    }

    /// Deliver raw bytes to endpoint `to` at `at`, as if sent by `from`,
    /// past every link (forged, replayed or truncated packets in tests).
    pub fn deliver_at(&mut self, at: Instant, to: usize, from: SocketAddr, data: Vec<u8>) {
        self.in_flight += 1;
        let key = draws::deliver_key(to, None, self.draws.next(None));
        self.push_via(at, key, Event::Deliver { to, from, data }, None);
    }

    /// Queue a wake-up at `at` (after every endpoint's events at `at`).
    pub fn wake_at(&mut self, at: Instant, what: W) {
        let key = draws::wake_key(None, self.draws.next(None));
        self.push_via(at, key, Event::Wake(what), None);
    }

    /// Queue a wake-up of endpoint `endpoint` at `at`: ordered among that
    /// endpoint's events due at `at` (after its deliveries), independently
    /// of what else is queued. A split network ([`partition`]) needs this
    /// form to know whose wake-up it is.
    pub fn wake_endpoint_at(&mut self, at: Instant, endpoint: usize, what: W) {
        self.push_via(
            at,
            draws::wake_key(Some(endpoint), 0),
            Event::Wake(what),
            None,
        );
    }

    fn push_via(
        &mut self,
        at: Instant,
        key: draws::Key,
        event: Event<W>,
        nat_dest: Option<SocketAddr>,
    ) {
        let Some((at, key, event, nat_dest)) = self.keep_or_post(at, key, event, nat_dest) else {
            return;
        };
        let (slot, emptied) = self.slots.insert(event, nat_dest);
        if let Some(data) = emptied {
            self.recycle(data);
        }
        self.queue.push(Reverse((at, key.0, key.1, slot)));
    }

    /// When the next event is due.
    pub fn next_at(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((at, ..))| *at)
    }

    /// The next event and when it is due (a delivery is counted as
    /// delivered here).
    pub fn pop(&mut self) -> Option<(Instant, Event<W>)> {
        let Reverse((at, _, _, slot)) = self.queue.pop()?;
        let spare = &mut self.spare;
        let (event, nat_dest) = self.slots.take(slot, || spare.pop().unwrap_or_default());
        if self.slots.sparse() {
            self.compact();
        }
        if let Event::Deliver { to, from, data } = event {
            self.in_flight -= 1;
            if let Some(public) = nat_dest
                && self.nats.inbound(at, to, public, from).is_err()
            {
                self.stats.nat_filtered += 1;
                self.recycle(data);
                return Some((at, Event::Filtered { to, from }));
            }
            self.stats.delivered += 1;
            return Some((at, Event::Deliver { to, from, data }));
        }
        Some((at, event))
    }

    /// Renumber the slots of the events still queued and give back the
    /// memory of the rest (after a burst); the order of events stays: it
    /// never depends on the slot.
    fn compact(&mut self) {
        let mut entries = std::mem::take(&mut self.queue).into_vec();
        self.slots
            .compact(entries.iter_mut().map(|Reverse((.., slot))| slot));
        entries.shrink_to_fit();
        self.queue = BinaryHeap::from(entries);
    }

    /// Datagrams in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Events queued (datagrams and wake-ups).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, i], 7000))
    }

    #[test]
    fn a_link_delays_drops_oversize_and_unknown_and_orders_by_time_then_deliveries_first() {
        let t0 = Instant::now();
        let mut net: Network<&str> = Network::new(1, LinkModel::TEST_LAN);
        net.attach(addr(1), 0);
        net.attach(addr(2), 1);
        assert_eq!(
            net.send(t0, addr(1), addr(2), vec![1], Duration::ZERO),
            Sent::InFlight(t0 + Duration::from_millis(10))
        );
        assert_eq!(
            net.send(t0, addr(1), addr(9), vec![2], Duration::ZERO),
            Sent::Undeliverable
        );
        assert_eq!(
            net.send(t0, addr(1), addr(2), vec![0; 1501], Duration::ZERO),
            Sent::TooBig
        );
        net.wake_at(t0 + Duration::from_millis(10), "tick");
        net.wake_at(t0 + Duration::from_millis(5), "first");
        assert_eq!(net.in_flight(), 1);
        let order: Vec<String> = std::iter::from_fn(|| net.pop())
            .map(|(at, e)| match e {
                Event::Wake(w) => format!("{:?} {w}", at - t0),
                Event::Deliver { to, data, .. } => format!("{:?} to {to} {data:?}", at - t0),
                Event::Filtered { to, .. } => format!("{:?} filtered at {to}", at - t0),
            })
            .collect();
        assert_eq!(order, ["5ms first", "10ms to 1 [1]", "10ms tick"]);
        assert_eq!(
            net.stats,
            NetStats {
                delivered: 1,
                lost: 0,
                too_big: 1,
                undeliverable: 1,
                nat_filtered: 0,
            }
        );
    }

    #[test]
    fn loss_and_jitter_repeat_from_the_seed_and_a_link_can_be_overridden() {
        let t0 = Instant::now();
        let lossy = LinkModel {
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(3),
            loss: 0.5,
            mtu: usize::MAX,
        };
        let fates = |seed| {
            let mut net: Network<()> = Network::new(seed, lossy);
            net.attach(addr(1), 0);
            net.attach(addr(2), 1);
            (0..64)
                .map(|_| net.send(t0, addr(1), addr(2), vec![0], Duration::ZERO))
                .collect::<Vec<_>>()
        };
        let a = fates(3);
        assert_eq!(a, fates(3));
        assert_ne!(a, fates(4));
        assert!(a.contains(&Sent::Lost));
        assert!(a.iter().any(|s| matches!(s, Sent::InFlight(_))));
        let mut net: Network<()> = Network::new(3, lossy);
        net.attach(addr(1), 0);
        net.attach(addr(2), 1);
        net.set_link(0, 1, LinkModel::TEST_LAN);
        assert_eq!(
            net.send(t0, addr(1), addr(2), vec![0], Duration::from_millis(1)),
            Sent::InFlight(t0 + Duration::from_millis(11))
        );
        // The other direction keeps the default, lossy link.
        assert_eq!(net.default_link(), lossy);
    }
}
