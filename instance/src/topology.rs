//! The per-link network model of one instance: the topology's latency
//! between its group and the destination's, its upload link (a
//! serialisation queue) and its download link (an inbound queue), with
//! the capacities `network_up`/`network_down` give and `set_network
//! up=/down=` changes.
//!
//! Owns: [`NetModel`], what it adds to an outgoing datagram's delay and
//! which datagrams it holds or drops (`drop/queue_full`). The topology
//! itself (files, built-in models, assignment) is `peerlab_lang::network`'s.
//! Must not: read a clock, carry datagrams, or know its driver; every time
//! it computes is scenario time scaled like every other (`--time-scale`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use peerlab_lang::network::{Topology, format_bandwidth};

use peerlab_dispersy::OverlayCore;
use peerlab_run::EventLine;
use peerlab_run::schema::event_kind;

use crate::State;
use crate::bandwidth::{DEFAULT_QUEUE, Inbound, Link};

/// One instance's links. See the module docs.
#[derive(Debug)]
pub struct NetModel {
    topology: Option<Arc<Topology>>,
    up: Option<Link>,
    down: Option<Inbound>,
    /// `network_up`, `network_down` (bits per scenario second).
    default_up: Option<f64>,
    default_down: Option<f64>,
    queue: u64,
    scale: f64,
}

impl NetModel {
    /// The model from the run's topology and the typed config keys.
    pub fn new(
        topology: Option<Arc<Topology>>,
        keys: &peerlab_lang::RuntimeKeys,
        time_scale: f64,
    ) -> Self {
        let mut m = Self {
            topology,
            up: None,
            down: None,
            default_up: keys.network_up.filter(|r| r.is_finite()),
            default_down: keys.network_down.filter(|r| r.is_finite()),
            queue: keys.network_queue.unwrap_or(DEFAULT_QUEUE),
            scale: time_scale,
        };
        m.set_bandwidth(None, None);
        m
    }

    /// Whether it delays outgoing datagrams at all.
    pub fn shapes_outgoing(&self) -> bool {
        self.topology.is_some() || self.up.is_some()
    }

    /// The capacities in force: `None` is the run's default, infinity is
    /// unlimited.
    pub fn set_bandwidth(&mut self, up: Option<f64>, down: Option<f64>) {
        let up = up.or(self.default_up).filter(|r| r.is_finite());
        let down = down.or(self.default_down).filter(|r| r.is_finite());
        match (up, self.up.as_mut()) {
            (Some(r), Some(l)) => l.set_rate(r),
            (Some(r), None) => self.up = Some(Link::new(r, self.queue, self.scale)),
            (None, _) => self.up = None,
        }
        match (down, self.down.as_mut()) {
            (Some(r), Some(q)) => q.set_rate(r),
            (Some(r), None) => self.down = Some(Inbound::new(Link::new(r, self.queue, self.scale))),
            // Unlimited again: what is held is still released at its instant.
            (None, Some(q)) => q.set_rate(f64::MAX),
            (None, None) => {}
        }
    }

    /// `up=… down=…` as an event says it.
    pub fn describe_bandwidth(&self) -> String {
        let rate = |l: Option<&Link>| format_bandwidth(l.map_or(f64::INFINITY, Link::rate));
        let down = self
            .down
            .as_ref()
            .map(|q| &q.link)
            .filter(|l| l.rate() < f64::MAX);
        format!("up={} down={}", rate(self.up.as_ref()), rate(down))
    }

    /// The group of instance `id` in the topology, by name.
    pub fn group_name(&self, id: u32) -> Option<&str> {
        let t = self.topology.as_ref()?;
        Some(t.spec.groups[t.group_of(id)?].as_str())
    }

    /// What the links add to a datagram of `size` bytes that instance
    /// `from` hands to the network at `now` for instance `to` (`None`: not
    /// an instance of the run, so no topology latency): the wait for and
    /// time on its upload link, then its link's latency. `None` when the
    /// upload queue is full (the datagram is dropped).
    pub fn outgoing(
        &mut self,
        now: Instant,
        from: u32,
        to: Option<u32>,
        size: usize,
    ) -> Option<Duration> {
        let mut delay = Duration::ZERO;
        if let Some(up) = self.up.as_mut() {
            delay = up.admit(now, size)?.saturating_duration_since(now);
        }
        if let Some(t) = &self.topology
            && let Some(latency) = to.and_then(|to| t.latency(from, to))
        {
            delay += latency.mul_f64(self.scale);
        }
        Some(delay)
    }

    /// Whether arriving datagrams wait for a download link.
    pub fn holds_incoming(&self) -> bool {
        // Unlimited again and nothing held: straight through once more.
        self.down
            .as_ref()
            .is_some_and(|q| q.link.rate() < f64::MAX || q.next_at().is_some())
    }

    /// A datagram arrived: held for the download link; `false` when its
    /// queue is full (dropped).
    pub fn arrive(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> bool {
        match self.down.as_mut() {
            Some(q) => q.arrive(now, from, bytes),
            None => true,
        }
    }

    /// When the next held datagram is through the download link.
    pub fn next_incoming(&self) -> Option<Instant> {
        self.down.as_ref().and_then(Inbound::next_at)
    }

    /// The held datagrams through by `now`.
    pub fn incoming_due(&mut self, now: Instant) -> Vec<(SocketAddr, Vec<u8>)> {
        self.down.as_mut().map(|q| q.due(now)).unwrap_or_default()
    }
}

/// Hand arrivals to the download link; those its queue cannot take are
/// counted as `drop/queue_full`.
pub(crate) fn hold_arrivals<'a>(
    links: &mut NetModel,
    core: &mut OverlayCore,
    now: Instant,
    datagrams: impl Iterator<Item = (SocketAddr, &'a [u8])>,
) {
    for (from, bytes) in datagrams {
        if !links.arrive(now, from, bytes) {
            core.count_queue_full_drop();
        }
    }
}

/// What a driver asks of the model.
impl crate::Instance {
    /// The instant of the input or timeout handled last: what a
    /// [`Transmit::delay`] counts from (the datagram was made then).
    pub fn now(&self) -> Instant {
        self.state.now
    }

    /// Whether every datagram leaves at once and none is dropped (no
    /// fault, topology or upload limit): the driver may send in batches.
    pub fn sends_at_once(&self) -> bool {
        self.state.net.is_clean() && !self.state.links.shapes_outgoing()
    }
}

/// The instance's side of the model: what the state machine asks of it.
impl State {
    /// What the links add to a datagram to `dest` of `size` bytes: the
    /// upload link's wait and the topology's latency to the destination's
    /// group; `None` when the upload queue is full (counted as
    /// `drop/queue_full`).
    pub(crate) fn through_links(&mut self, dest: SocketAddr, size: usize) -> Option<Duration> {
        if !self.links.shapes_outgoing() {
            return Some(Duration::ZERO);
        }
        let to = self.directory.as_deref().and_then(|d| {
            d.index_of_addr(&dest)
                .map(|i| d.entries()[i as usize].instance_id)
        });
        let extra = self.links.outgoing(self.now, self.id, to, size);
        if extra.is_none() {
            self.core.count_queue_full_drop();
        }
        extra
    }

    /// The held arrivals the download link has carried by `now`, if any
    /// are due (none reach an instance that is away: they are lost, as
    /// arrivals are).
    pub(crate) fn arrivals_due(&mut self, now: Instant) -> Option<Vec<(SocketAddr, Vec<u8>)>> {
        if self.links.next_incoming().is_none_or(|t| t > now) {
            return None;
        }
        let mut due = self.links.incoming_due(now);
        if self.presence.away {
            due.clear();
        }
        Some(due)
    }

    /// Record this instance's links (its topology group, its capacities)
    /// as a `network` event, at the start and when `set_network` changes
    /// them, so plots and readers see the model in force.
    pub(crate) fn network_event(&mut self) {
        let group = self
            .links
            .group_name(self.id)
            .map(|g| format!("group={g} "));
        if group.is_none() && !self.links.holds_incoming() && !self.links.shapes_outgoing() {
            return;
        }
        let t = self.wall_t(self.now);
        let mut e = EventLine::new(t, event_kind::NETWORK);
        let text = format!(
            "{}{}",
            group.unwrap_or_default(),
            self.links.describe_bandwidth()
        );
        e.text = Some(text.as_str().into());
        self.record.event(&e);
    }
}
