//! One network split into several, for a driver that hands the endpoints
//! to several threads: endpoint `e` belongs to part `e % parts`, each part
//! queues only its own endpoints' events, and a datagram one part sends to
//! another's endpoint waits in the sender's outbox ([`Parcel`]s) until the
//! driver moves it over ([`Network::take_outbox`], [`Network::accept`]).
//!
//! Because the queue orders events by a key of whom they concern
//! ([`crate::draws`]) and each sender draws from its own stream, the parts
//! together do exactly what the whole network does, in whatever order the
//! outboxes are moved, provided every moved datagram is due after the
//! driver's current window (the driver's lookahead: no datagram arrives
//! sooner than the smallest link delay after it was sent).
//!
//! Owns: the split, the ownership rule and the outboxes. Must not: decide
//! windows or threads (the driver does), or split a network with NATs
//! (their mappings are shared between endpoints: [`Network::split`]
//! refuses).

use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::Instant;

use crate::draws::{Key, key_endpoint};
use crate::{Event, Network};

/// A queued event on its way from one part to another.
#[derive(Debug)]
pub struct Parcel<W> {
    at: Instant,
    key: Key,
    event: Event<W>,
    nat_dest: Option<SocketAddr>,
}

impl<W> Parcel<W> {
    /// When it is due.
    pub fn at(&self) -> Instant {
        self.at
    }
}

/// A part's place in its split.
#[derive(Debug)]
pub(crate) struct Part<W> {
    parts: usize,
    me: usize,
    /// Parcels for each other part.
    outbox: Vec<Vec<Parcel<W>>>,
}

impl<W> Part<W> {
    fn owner(&self, endpoint: usize) -> usize {
        endpoint % self.parts
    }
}

impl<W> Network<W> {
    /// Splits this network into `parts` (at least 1): each has every
    /// endpoint, link and draw counter, and the queued events of the
    /// endpoints it owns (`e % parts`; wake-ups queued without an endpoint
    /// go to part 0). Refused (the network comes back) when it has NATs.
    pub fn split(mut self, parts: usize) -> Result<Vec<Network<W>>, Box<Self>> {
        if !self.nats.is_empty() || parts == 0 {
            return Err(Box::new(self));
        }
        let mut nets: Vec<Network<W>> = (0..parts)
            .map(|me| Network {
                queue: BinaryHeap::new(),
                slots: Default::default(),
                in_flight: 0,
                spare: if me == 0 {
                    std::mem::take(&mut self.spare)
                } else {
                    Vec::new()
                },
                by_addr: self.by_addr.clone(),
                link: self.link,
                links: self.links.clone(),
                draws: self.draws.clone(),
                nats: crate::nat::Nats::default(),
                part: Some(Part {
                    parts,
                    me,
                    outbox: (0..parts).map(|_| Vec::new()).collect(),
                }),
                stats: if me == 0 {
                    self.stats
                } else {
                    Default::default()
                },
            })
            .collect();
        for std::cmp::Reverse((at, hi, lo, slot)) in self.queue.drain() {
            let (event, nat_dest) = self.slots.take(slot, Vec::new);
            let key = (hi, lo);
            let owner = key_endpoint(key).map_or(0, |e| e % parts);
            let net = &mut nets[owner];
            if matches!(event, Event::Deliver { .. }) {
                net.in_flight += 1;
            }
            net.push_via(at, key, event, nat_dest);
        }
        Ok(nets)
    }

    /// The part that owns endpoint `endpoint` (0 when not split).
    pub fn owner(&self, endpoint: usize) -> usize {
        self.part.as_ref().map_or(0, |p| p.owner(endpoint))
    }

    /// The parcels queued for part `to` since the last call.
    pub fn take_outbox(&mut self, to: usize) -> Vec<Parcel<W>> {
        match self.part.as_mut() {
            Some(p) => std::mem::take(&mut p.outbox[to]),
            None => Vec::new(),
        }
    }

    /// Queue parcels another part posted for this one's endpoints.
    pub fn accept(&mut self, parcels: impl IntoIterator<Item = Parcel<W>>) {
        for p in parcels {
            if matches!(p.event, Event::Deliver { .. }) {
                self.in_flight += 1;
            }
            self.push_via(p.at, p.key, p.event, p.nat_dest);
        }
    }

    /// Called by `push_via`: the event back when this network queues it,
    /// or `None` when it went to the outbox of the part that owns its
    /// endpoint.
    pub(crate) fn keep_or_post(
        &mut self,
        at: Instant,
        key: Key,
        event: Event<W>,
        nat_dest: Option<SocketAddr>,
    ) -> Option<(Instant, Key, Event<W>, Option<SocketAddr>)> {
        let Some(part) = self.part.as_mut() else {
            return Some((at, key, event, nat_dest));
        };
        let owner = key_endpoint(key).map_or(0, |e| part.owner(e));
        if owner == part.me {
            return Some((at, key, event, nat_dest));
        }
        if matches!(event, Event::Deliver { .. }) {
            self.in_flight -= 1;
        }
        part.outbox[owner].push(Parcel {
            at,
            key,
            event,
            nat_dest,
        });
        None
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use crate::{Event, LinkModel, Network};

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, i], 7000))
    }

    /// Every event of a run of `n` endpoints that each send to every other
    /// when woken, as (time, endpoint, what) in the order handled: by one
    /// network, or by `parts` parts in windows of the link delay.
    fn run(parts: usize) -> Vec<(Duration, usize, String)> {
        let t0 = Instant::now();
        let link = LinkModel {
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(3),
            loss: 0.3,
            mtu: usize::MAX,
        };
        let n = 5;
        let mut whole: Network<usize> = Network::new(9, link);
        for e in 0..n {
            whole.attach(addr(e as u8 + 1), e);
            whole.wake_endpoint_at(t0 + Duration::from_millis(e as u64), e, e);
        }
        let mut nets = whole.split(parts).unwrap_or_else(|_| panic!("no NATs"));
        let mut log = Vec::new();
        let mut window = t0;
        while let Some(next) = nets.iter().filter_map(Network::next_at).min() {
            window = window.max(next) + link.delay;
            for net in nets.iter_mut() {
                while let Some(at) = net.next_at()
                    && at < window
                {
                    let (at, event) = net.pop().unwrap();
                    let (e, what) = match event {
                        Event::Wake(e) => (e, "wake".to_string()),
                        Event::Deliver { to, data, .. } => (to, format!("from {}", data[0])),
                        Event::Filtered { .. } => unreachable!(),
                    };
                    log.push((at - t0, e, what));
                    if at < t0 + Duration::from_millis(40) {
                        for d in 0..n {
                            net.send(
                                at,
                                addr(e as u8 + 1),
                                addr(d as u8 + 1),
                                vec![e as u8],
                                Duration::ZERO,
                            );
                        }
                    }
                }
            }
            for p in 0..parts {
                for q in 0..parts {
                    let parcels = nets[p].take_outbox(q);
                    nets[q].accept(parcels);
                }
            }
        }
        // Each endpoint's own events in the order it saw them.
        log.sort_by_key(|(_, e, _)| *e);
        log
    }

    #[test]
    fn parts_of_a_network_give_each_endpoint_the_events_the_whole_gives_it() {
        let one = run(1);
        assert!(one.len() > 100, "{}", one.len());
        assert!(one.iter().any(|(_, _, w)| w.starts_with("from")));
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
    }
}
