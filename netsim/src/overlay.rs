//! SimNet: many overlay cores on a virtual clock over the simulated
//! [`Network`], for the overlay's tests.
//!
//! Owns: driving bare cores over the network (links of [`LinkModel`]:
//! delay, jitter that reorders, loss, MTU, one per direction, carried and
//! drawn by [`Network`], the same network the host's simulated runs use);
//! the virtual clock; stepping to the next deadline. Like quinn-proto's
//! test `Pair`, but for N cores. Seeded, so a run is repeated exactly. It
//! is the same loop as the UDP driver (handle, drain transmits, fire
//! timeouts, collect events) and makes no protocol decisions. Must not:
//! use real sockets, sleep, or read the clock more than once (the start
//! instant; every later time is start + offset).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use peerlab_dispersy::{OverlayCore, OverlayEvent};

use crate::{Event, LinkModel, NatBox, NatModel, NetStats, Network};

/// One simulated member.
#[derive(Debug)]
pub struct SimNode {
    /// Its core.
    pub core: OverlayCore,
    /// Its address.
    pub addr: SocketAddr,
    /// Events it produced, oldest first (take them with `std::mem::take`).
    pub events: Vec<OverlayEvent>,
}

/// The simulated network; see the module docs.
#[derive(Debug)]
pub struct SimNet {
    /// The members, by index.
    pub nodes: Vec<SimNode>,
    start: Instant,
    now: Instant,
    net: Network<()>,
    buf: Vec<u8>,
}

impl SimNet {
    /// An empty network whose links all have `link`'s properties.
    pub fn new(seed: u64, link: LinkModel) -> Self {
        let start = Instant::now();
        Self {
            nodes: Vec::new(),
            start,
            now: start,
            net: Network::new(seed, link),
            buf: vec![0; 65536],
        }
    }

    /// Network counters.
    pub fn stats(&self) -> NetStats {
        self.net.stats
    }

    /// The address node `i` gets (loopback addresses; no real traffic is sent).
    pub fn addr_of(i: usize) -> SocketAddr {
        SocketAddr::from(([127, 1, (i >> 8) as u8, (i & 0xff) as u8], 7000))
    }

    /// The public IP address of node `i`'s NAT (`100.64.0.0/10`, the
    /// shared address space of carrier-grade NATs).
    pub fn public_ip_of(i: usize) -> std::net::IpAddr {
        std::net::IpAddr::from([100, 64, (i >> 8) as u8, (i & 0xff) as u8])
    }

    /// Puts node `i` behind its own NAT of `model` (public IP
    /// [`public_ip_of`](Self::public_ip_of)): others reach it only through
    /// the NAT's mappings, as its filter allows.
    pub fn set_nat(&mut self, i: usize, model: NatModel) {
        self.net
            .set_nat(i, NatBox::new(model, Self::public_ip_of(i)));
    }

    /// Adds a node built by `make` from its address; returns its index.
    pub fn add_node(&mut self, make: impl FnOnce(SocketAddr) -> OverlayCore) -> usize {
        let i = self.nodes.len();
        let addr = Self::addr_of(i);
        self.net.attach(addr, i);
        self.nodes.push(SimNode {
            core: make(addr),
            addr,
            events: Vec::new(),
        });
        i
    }

    /// Overrides the link from `a` to `b`.
    pub fn set_link(&mut self, a: usize, b: usize, link: LinkModel) {
        self.net.set_link(a, b, link);
    }

    /// Sets every link's properties (overrides stay).
    pub fn set_default_link(&mut self, link: LinkModel) {
        self.net.set_default_link(link);
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Datagrams in flight.
    pub fn in_flight(&self) -> usize {
        self.net.in_flight()
    }

    /// Delivers raw bytes to node `to` as if sent by `from`, after the default link's delay
    /// (for forged, replayed or truncated packets).
    pub fn inject(&mut self, from: SocketAddr, to: usize, data: &[u8]) {
        let at = self.now + self.net.default_link().delay;
        self.net.deliver_at(at, to, from, data.to_vec());
    }

    /// Runs `f` on node `i`'s core at the current time, then moves its output onto the network.
    pub fn with_core<R>(&mut self, i: usize, f: impl FnOnce(&mut OverlayCore, Instant) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.nodes[i].core, now);
        self.flush(i);
        self.collect(i);
        r
    }

    fn flush(&mut self, i: usize) {
        let from = self.nodes[i].addr;
        while let Some(t) = self.nodes[i].core.poll_transmit(&mut self.buf) {
            let mut data = self.net.buffer();
            data.extend_from_slice(&self.buf[..t.size]);
            self.net
                .send(self.now, from, t.destination, data, Duration::ZERO);
        }
    }

    fn collect(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        while let Some(e) = node.core.poll_event() {
            node.events.push(e);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let net = self.net.next_at();
        let timers = self
            .nodes
            .iter()
            .filter_map(|n| n.core.poll_timeout())
            .min();
        match (net, timers) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves every node's pending output onto the network and collects events.
    pub fn flush_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.flush(i);
            self.collect(i);
        }
    }

    /// Advances to the next deadline (a datagram arriving or a timer), handles
    /// everything due then, and moves the output onto the network. Returns
    /// false when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.flush_all();
        let Some(next) = self.next_deadline() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        // Datagrams due now, delivered per node as one batch (exercising
        // batch verification), each node's in the order they were sent.
        let mut due: Vec<(usize, SocketAddr, Vec<u8>)> = Vec::new();
        while self.net.next_at().is_some_and(|at| at <= now) {
            if let Some((_, Event::Deliver { to, from, data })) = self.net.pop() {
                due.push((to, from, data));
            }
        }
        due.sort_by_key(|(to, _, _)| *to);
        for batch in due.chunk_by(|a, b| a.0 == b.0) {
            let to = batch[0].0;
            self.nodes[to]
                .core
                .handle_batch(now, batch.iter().map(|(_, from, d)| (*from, d.as_slice())));
        }
        for (_, _, data) in due {
            self.net.recycle(data);
        }
        for n in &mut self.nodes {
            if n.core.poll_timeout().is_some_and(|t| t <= now) {
                n.core.handle_timeout(now);
            }
        }
        self.flush_all();
        true
    }

    /// Steps until `pred` holds or `limit` of virtual time passed; true if `pred` held.
    pub fn run_until(&mut self, limit: Duration, mut pred: impl FnMut(&SimNet) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.flush_all();
            if pred(self) {
                return true;
            }
            match self.next_deadline() {
                Some(t) if t <= end => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(end);
                    return pred(self);
                }
            }
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    /// Steps until no datagram is in flight or queued (timers alone do not
    /// count), at most `max_steps` steps; false means it never went idle (a livelock).
    pub fn run_until_idle(&mut self, max_steps: usize) -> bool {
        for _ in 0..max_steps {
            self.flush_all();
            if self.net.queued() == 0 {
                return true;
            }
            self.step();
        }
        self.flush_all();
        self.net.queued() == 0
    }
}
