//! Bandwidth: an instance's upload and download capacity, each a link that
//! serialises datagrams one after another (`size / rate`) behind a bounded
//! queue, by next-free-time accounting; and the inbound queue that holds
//! what arrived until the download link has carried it.
//!
//! Owns: [`Link`] (admission, serialisation delay, queue-full drops) and
//! [`Inbound`] (datagrams held for the download link, released at their
//! instants). Must not: read a clock (time is an argument), hold outgoing
//! datagrams (the driver applies the delay this computes), or know which
//! driver runs the instance.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Bytes that may wait for a link by default (`network_queue`).
pub const DEFAULT_QUEUE: u64 = 256_000;

/// One direction of an instance's access link: `rate` bits per scenario
/// second, at most `queue` bytes waiting.
#[derive(Debug, Clone)]
pub struct Link {
    rate: f64,
    queue: u64,
    /// Wall seconds per scenario second (`--time-scale`).
    scale: f64,
    /// When the link has carried everything admitted so far.
    free_at: Option<Instant>,
}

impl Link {
    pub fn new(rate: f64, queue: u64, scale: f64) -> Self {
        Self {
            rate,
            queue,
            scale,
            free_at: None,
        }
    }

    /// Bits per scenario second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// A new rate for what is admitted from now on; what was admitted
    /// keeps its instant, and later datagrams still queue behind it.
    pub fn set_rate(&mut self, rate: f64) {
        self.rate = rate;
    }

    /// A datagram of `size` bytes is handed to the link at `now`: the
    /// instant its last bit has left (after what waits before it, plus
    /// `size * 8 / rate`), or `None` when the bytes already waiting and it
    /// would exceed the queue (dropped; an idle link always takes one).
    pub fn admit(&mut self, now: Instant, size: usize) -> Option<Instant> {
        let start = self.free_at.map_or(now, |f| f.max(now));
        let waiting = start.saturating_duration_since(now);
        if !waiting.is_zero() {
            let backlog = waiting.as_secs_f64() / self.scale * self.rate / 8.0;
            if backlog + size as f64 > self.queue as f64 {
                return None;
            }
        }
        let secs = size as f64 * 8.0 / self.rate * self.scale;
        let done = start + Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX / 4);
        self.free_at = Some(done);
        Some(done)
    }
}

/// Datagrams that arrived and wait for the download link, in the order
/// the link releases them.
#[derive(Debug)]
pub struct Inbound {
    pub link: Link,
    held: VecDeque<(Instant, SocketAddr, Vec<u8>)>,
}

impl Inbound {
    pub fn new(link: Link) -> Self {
        Self {
            link,
            held: VecDeque::new(),
        }
    }

    /// A datagram arrived at `now`: held until the link has carried it;
    /// `false` when the queue is full (dropped).
    pub fn arrive(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> bool {
        match self.link.admit(now, bytes.len()) {
            Some(at) => {
                self.held.push_back((at, from, bytes.to_vec()));
                true
            }
            None => false,
        }
    }

    /// When the next held datagram is through.
    pub fn next_at(&self) -> Option<Instant> {
        self.held.front().map(|(at, _, _)| *at)
    }

    /// The datagrams through by `now`, in arrival order.
    pub fn due(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        while self.held.front().is_some_and(|(at, _, _)| *at <= now) {
            let (_, from, bytes) = self.held.pop_front().expect("peeked");
            out.push((from, bytes));
        }
        out
    }

    /// A new rate; what is held keeps its instants.
    pub fn set_rate(&mut self, rate: f64) {
        self.link.set_rate(rate);
    }
}
