//! SimNet: many overlay cores on a virtual clock over an in-memory network.
//!
//! Owns: moving datagrams between cores over links of the shared
//! [`LinkModel`] (delay, jitter that reorders, loss, MTU), one per direction; the virtual clock; stepping to the next
//! deadline. Like quinn-proto's test `Pair`, but for N cores. Seeded, so a
//! run is repeated exactly. It is the same loop as the UDP driver (handle,
//! drain transmits, fire timeouts, collect events) and makes no protocol
//! decisions. Must not: use real sockets, sleep, or read the clock more than
//! once (the start instant; every later time is start + offset).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::core::{OverlayCore, OverlayEvent};
use crate::link::LinkModel;

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

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    seq: u64,
    to: usize,
    from: SocketAddr,
    data: Vec<u8>,
}

/// Counters of the simulated network itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams handed to a core.
    pub delivered: u64,
    /// Datagrams lost on a link.
    pub lost: u64,
    /// Datagrams over the link's MTU.
    pub too_big: u64,
    /// Datagrams to an address no node has.
    pub undeliverable: u64,
}

/// The simulated network; see the module docs.
#[derive(Debug)]
pub struct SimNet {
    /// The members, by index.
    pub nodes: Vec<SimNode>,
    start: Instant,
    now: Instant,
    rng: ChaCha8Rng,
    link: LinkModel,
    links: HashMap<(usize, usize), LinkModel>,
    by_addr: HashMap<SocketAddr, usize>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    buf: Vec<u8>,
    /// Network counters.
    pub stats: NetStats,
}

impl SimNet {
    /// An empty network whose links all have `link`'s properties.
    pub fn new(seed: u64, link: LinkModel) -> Self {
        let start = Instant::now();
        Self {
            nodes: Vec::new(),
            start,
            now: start,
            rng: ChaCha8Rng::seed_from_u64(seed),
            link,
            links: HashMap::new(),
            by_addr: HashMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            buf: vec![0; 65536],
            stats: NetStats::default(),
        }
    }

    /// The address node `i` gets (loopback addresses; no real traffic is sent).
    pub fn addr_of(i: usize) -> SocketAddr {
        SocketAddr::from(([127, 1, (i >> 8) as u8, (i & 0xff) as u8], 7000))
    }

    /// Adds a node built by `make` from its address; returns its index.
    pub fn add_node(&mut self, make: impl FnOnce(SocketAddr) -> OverlayCore) -> usize {
        let i = self.nodes.len();
        let addr = Self::addr_of(i);
        self.by_addr.insert(addr, i);
        self.nodes.push(SimNode {
            core: make(addr),
            addr,
            events: Vec::new(),
        });
        i
    }

    /// Overrides the link from `a` to `b`.
    pub fn set_link(&mut self, a: usize, b: usize, link: LinkModel) {
        self.links.insert((a, b), link);
    }

    /// Sets every link's properties (overrides stay).
    pub fn set_default_link(&mut self, link: LinkModel) {
        self.link = link;
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
        self.queue.len()
    }

    /// Delivers raw bytes to node `to` as if sent by `from`, after the default link's delay
    /// (for forged, replayed or truncated packets).
    pub fn inject(&mut self, from: SocketAddr, to: usize, data: &[u8]) {
        self.seq += 1;
        self.queue.push(Reverse(InFlight {
            at: self.now + self.link.delay,
            seq: self.seq,
            to,
            from,
            data: data.to_vec(),
        }));
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
            let Some(&to) = self.by_addr.get(&t.destination) else {
                self.stats.undeliverable += 1;
                continue;
            };
            let link = self.links.get(&(i, to)).copied().unwrap_or(self.link);
            if t.size > link.mtu {
                self.stats.too_big += 1;
                continue;
            }
            if link.loss > 0.0 && self.rng.random_bool(link.loss.min(1.0)) {
                self.stats.lost += 1;
                continue;
            }
            let jitter = if link.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_nanos(self.rng.random_range(0..link.jitter.as_nanos() as u64))
            };
            self.seq += 1;
            self.queue.push(Reverse(InFlight {
                at: self.now + link.delay + jitter,
                seq: self.seq,
                to,
                from,
                data: self.buf[..t.size].to_vec(),
            }));
        }
    }

    fn collect(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        while let Some(e) = node.core.poll_event() {
            node.events.push(e);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let net = self.queue.peek().map(|Reverse(p)| p.at);
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
        // Datagrams due now, delivered per node as one batch (exercising batch verification).
        let mut due: Vec<InFlight> = Vec::new();
        while self.queue.peek().is_some_and(|Reverse(p)| p.at <= now) {
            due.push(self.queue.pop().expect("peeked").0);
        }
        due.sort_by_key(|p| (p.to, p.seq));
        let mut i = 0;
        while i < due.len() {
            let to = due[i].to;
            let mut j = i;
            while j < due.len() && due[j].to == to {
                j += 1;
            }
            self.stats.delivered += (j - i) as u64;
            self.nodes[to]
                .core
                .handle_batch(now, due[i..j].iter().map(|p| (p.from, p.data.as_slice())));
            i = j;
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
            if self.queue.is_empty() {
                return true;
            }
            self.step();
        }
        self.flush_all();
        self.queue.is_empty()
    }
}
