//! One part of a simulation: the instances one thread drives, their
//! captures and wake-ups, and the part of the simulated network that
//! queues their events ([`peerlab_netsim::partition`]). A simulation that
//! runs on one thread is one part holding every instance.
//!
//! Owns: handling one event (a wake-up, a delivery, a NAT's filtering),
//! carrying an instance's datagrams out after it handled something, ending
//! it, and the part's counters; splitting the whole into parts (instance
//! `i` goes to part `i % parts`, the network's own rule) and joining them
//! back. Must not: decide windows or threads (`sim_parallel`), read the
//! clock, or touch another part's instances: a datagram to one of those
//! leaves through the network's outbox.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use peerlab_netsim::{Event, Network, Sent};

use super::capture::Capture;
use super::instance::{Instance, Outcome};
use super::sim::SimProgress;

pub(crate) struct Sim {
    /// The network; its wake-ups name the instance to wake.
    pub net: Network<usize>,
    /// Transmits of the instance being handled (kept to reuse its capacity).
    pub scratch: Vec<(SocketAddr, Duration, Vec<u8>)>,
    /// This part's instances: instance index `i` (the network's endpoint)
    /// is at `i / parts`.
    pub instances: Vec<Option<Instance>>,
    /// The deadline each instance is queued for (others in the queue are stale).
    pub scheduled: Vec<Option<Instant>>,
    pub buf: Vec<u8>,
    pub outcomes: Vec<(u32, Option<Outcome>)>,
    /// Datagrams handed to a live instance (the network's own count also
    /// has those that arrived after their instance ended).
    pub delivered: u64,
    /// Datagrams lost: on the network, or dropped by an instance's fault model.
    pub lost: u64,
    /// Commands fired by instances that have ended (the live ones are asked).
    pub commands_of_ended: u64,
    /// Each instance's packet capture (off unless it asks), timed in
    /// virtual time since `origin`.
    pub captures: Vec<Capture>,
    pub origin: Instant,
    /// Parts of the simulation (1 until split).
    pub parts: usize,
    /// Events popped so far (stale wake-ups included).
    pub events: u64,
    /// The time of the last event popped.
    pub now: Instant,
}

/// Move an instance's queued datagrams into `out`, each in a reused buffer
/// with the delay the fault model gave it; returns how many the fault
/// model dropped meanwhile (lost on the network).
fn drain_transmits(
    inst: &mut Instance,
    buf: &mut [u8],
    net: &mut Network<usize>,
    out: &mut Vec<(SocketAddr, Duration, Vec<u8>)>,
) -> u64 {
    let dropped = inst.dropped_by_faults();
    while let Some(t) = inst.poll_transmit(buf) {
        let mut data = net.buffer();
        data.extend_from_slice(&buf[..t.size]);
        out.push((t.destination, t.delay, data));
    }
    inst.dropped_by_faults() - dropped
}

/// Why [`Sim::run_until`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Paused {
    /// The next event is at or after the window's end, or past the run's
    /// end, or there is none.
    Window,
    /// The stop flag was seen.
    Stopped,
}

impl Sim {
    /// An empty simulation (one part) over `net`.
    pub fn new(net: Network<usize>, n: usize, buf_len: usize, origin: Instant) -> Self {
        Self {
            net,
            scratch: Vec::new(),
            instances: Vec::with_capacity(n),
            scheduled: vec![None; n],
            buf: vec![0; buf_len],
            outcomes: Vec::new(),
            delivered: 0,
            lost: 0,
            commands_of_ended: 0,
            captures: Vec::with_capacity(n),
            origin,
            parts: 1,
            events: 0,
            now: origin,
        }
    }

    fn local(&self, i: usize) -> usize {
        i / self.parts
    }

    /// Handle the events due before `window` (every one when `None`) and
    /// not after `end`, in the network's order. `stopped` is asked every
    /// 256 events, `tick` every 4096 (with the time of the next event).
    pub fn run_until(
        &mut self,
        window: Option<Instant>,
        end: Instant,
        stopped: &dyn Fn() -> bool,
        tick: &mut dyn FnMut(&Sim, Instant),
    ) -> Paused {
        while let Some(at) = self.net.next_at() {
            if at > end || window.is_some_and(|w| at >= w) {
                break;
            }
            self.events += 1;
            if self.events.is_multiple_of(256) && stopped() {
                return Paused::Stopped;
            }
            if self.events.is_multiple_of(4096) {
                tick(self, at);
            }
            let (at, event) = self.net.pop().expect("peeked");
            self.now = at;
            self.handle(at, event);
        }
        Paused::Window
    }

    /// Handle one event of the network at `at`.
    fn handle(&mut self, at: Instant, event: Event<usize>) {
        match event {
            Event::Wake(i) => {
                let l = self.local(i);
                if self.scheduled[l] != Some(at) {
                    return;
                }
                self.scheduled[l] = None;
                if let Some(inst) = self.instances[l].as_mut() {
                    inst.handle_timeout(at);
                }
                self.after(i, at);
            }
            Event::Deliver { to, from, data } => {
                let l = self.local(to);
                let Some(inst) = self.instances[l].as_mut() else {
                    self.net.recycle(data);
                    return;
                };
                self.delivered += 1;
                self.captures[l].received(at.saturating_duration_since(self.origin), from, &data);
                inst.handle_datagram(at, from, &data);
                self.net.recycle(data);
                self.after(to, at);
            }
            Event::Filtered { to, .. } => {
                self.lost += 1;
                let l = self.local(to);
                if let Some(inst) = self.instances[l].as_mut() {
                    inst.nat_filtered();
                }
            }
        }
    }

    /// This part's share of the progress display at `at`.
    pub fn progress(&self, n: u32, at: Instant, zero: Instant) -> SimProgress {
        let clock = if at >= zero {
            (at - zero).as_secs_f64()
        } else {
            -(zero - at).as_secs_f64()
        };
        let live: u64 = self
            .instances
            .iter()
            .flatten()
            .map(Instance::commands_fired)
            .sum();
        SimProgress {
            set_up: n,
            instances: n,
            clock: Some(clock),
            ended: self.outcomes.len() as u32,
            failed: self
                .outcomes
                .iter()
                .filter(|(_, o)| matches!(o, Some(Outcome::Failed(_))))
                .count() as u32,
            commands: self.commands_of_ended + live,
            delivered: self.delivered,
            lost: self.lost,
        }
    }

    /// After instance `i` handled something at `now`: carry its datagrams,
    /// end it if it finished, and queue its next wake-up.
    pub fn after(&mut self, i: usize, now: Instant) {
        let l = self.local(i);
        let Some(inst) = self.instances[l].as_mut() else {
            return;
        };
        if inst.crashed() {
            // Gone without a goodbye: what it queued is never sent.
            let mut inst = self.instances[l].take().expect("checked");
            inst.record_mut().flush();
            self.captures[l].end(inst.record_mut());
            self.commands_of_ended += inst.commands_fired();
            self.outcomes.push((inst.id(), Some(Outcome::Crashed)));
            self.scheduled[l] = None;
            return;
        }
        self.captures[l].follow(inst.capturing());
        let mut out = std::mem::take(&mut self.scratch);
        self.lost += drain_transmits(inst, &mut self.buf, &mut self.net, &mut out);
        let from = inst.core().config().local_addr;
        let finished = inst.finished();
        let next = if finished { None } else { inst.poll_timeout() };
        let mut ended = None;
        if finished {
            let mut inst = self.instances[l].take().expect("checked");
            let outcome = inst.end(now);
            self.lost += drain_transmits(&mut inst, &mut self.buf, &mut self.net, &mut out);
            self.commands_of_ended += inst.commands_fired();
            self.outcomes.push((inst.id(), Some(outcome)));
            ended = Some(inst);
        }
        let origin = self.origin;
        let since = |t: Instant| t.saturating_duration_since(origin);
        for (dest, extra, data) in out.drain(..) {
            // On the instance's wire after its fault model's delay.
            self.captures[l].sent(since(now), since(now + extra), dest, &data);
            self.send(l, now, from, dest, data, extra);
        }
        if let Some(mut inst) = ended {
            self.captures[l].end(inst.record_mut());
        }
        self.scratch = out;
        if let Some(at) = next
            && self.scheduled[l] != Some(at)
        {
            self.scheduled[l] = Some(at.max(now));
            self.net.wake_endpoint_at(at.max(now), i, i);
        }
    }

    /// Send a datagram of this part's instance `l`.
    fn send(
        &mut self,
        l: usize,
        now: Instant,
        from: SocketAddr,
        dest: SocketAddr,
        data: Vec<u8>,
        extra: Duration,
    ) {
        match self.net.send(now, from, dest, data, extra) {
            Sent::InFlight(_) => {}
            Sent::TooBig | Sent::Undeliverable => self.lost += 1,
            Sent::Lost => {
                self.lost += 1;
                // The sender's statistics show the simulated network's loss too.
                if let Some(inst) = self.instances[l].as_mut() {
                    inst.lost_in_network();
                }
            }
        }
    }

    /// Split into `parts` parts (instance `i` to part `i % parts`); the
    /// whole comes back when its network cannot be split (NATs).
    pub fn split(self, parts: usize) -> Result<Vec<Sim>, Box<Sim>> {
        let Sim {
            net,
            instances,
            scheduled,
            captures,
            buf,
            origin,
            outcomes,
            delivered,
            lost,
            commands_of_ended,
            events,
            now,
            scratch,
            parts: _,
        } = self;
        let nets = match net.split(parts) {
            Ok(nets) => nets,
            Err(net) => {
                return Err(Box::new(Sim {
                    net: *net,
                    instances,
                    scheduled,
                    captures,
                    buf,
                    origin,
                    outcomes,
                    delivered,
                    lost,
                    commands_of_ended,
                    events,
                    now,
                    scratch,
                    parts: 1,
                }));
            }
        };
        let n = instances.len();
        let mut out: Vec<Sim> = nets
            .into_iter()
            .map(|net| {
                let mut s = Sim::new(net, 0, buf.len(), origin);
                s.parts = parts;
                s.now = now;
                s
            })
            .collect();
        let mut scheduled = scheduled.into_iter();
        for (i, (inst, capture)) in instances.into_iter().zip(captures).enumerate() {
            let p = &mut out[i % parts];
            p.instances.push(inst);
            p.captures.push(capture);
            p.scheduled.push(scheduled.next().flatten());
        }
        debug_assert_eq!(out.iter().map(|p| p.instances.len()).sum::<usize>(), n);
        let first = &mut out[0];
        first.outcomes = outcomes;
        first.delivered = delivered;
        first.lost = lost;
        first.commands_of_ended = commands_of_ended;
        first.events = events;
        Ok(out)
    }

    /// Join parts back into one (the inverse of [`Sim::split`]; the
    /// network is the first part's, for what is left to do: nothing more
    /// is sent).
    pub fn join(parts: Vec<Sim>) -> Sim {
        let count = parts.len();
        let n: usize = parts.iter().map(|p| p.instances.len()).sum();
        let now = parts
            .iter()
            .map(|p| p.now)
            .max()
            .expect("one part at least");
        let (origin, buf_len) = (parts[0].origin, parts[0].buf.len());
        let mut instances = Vec::with_capacity(count);
        let mut captures = Vec::with_capacity(count);
        let mut scheduled = Vec::with_capacity(count);
        let mut rest = Vec::with_capacity(count);
        for p in parts {
            instances.push(p.instances.into_iter());
            captures.push(p.captures.into_iter());
            scheduled.push(p.scheduled.into_iter());
            rest.push((
                p.net,
                p.outcomes,
                p.delivered,
                p.lost,
                p.commands_of_ended,
                p.events,
            ));
        }
        let mut joined: Option<Sim> = None;
        for (net, outcomes, delivered, lost, commands, events) in rest {
            match joined.as_mut() {
                None => {
                    let mut s = Sim::new(net, 0, buf_len, origin);
                    s.outcomes = outcomes;
                    s.delivered = delivered;
                    s.lost = lost;
                    s.commands_of_ended = commands;
                    s.events = events;
                    joined = Some(s);
                }
                Some(s) => {
                    s.outcomes.extend(outcomes);
                    s.delivered += delivered;
                    s.lost += lost;
                    s.commands_of_ended += commands;
                    s.events += events;
                }
            }
        }
        let mut s = joined.expect("one part at least");
        for i in 0..n {
            let p = i % count;
            s.instances.push(instances[p].next().expect("split evenly"));
            s.captures.push(captures[p].next().expect("split evenly"));
            s.scheduled.push(scheduled[p].next().expect("split evenly"));
        }
        s.now = now;
        s
    }
}
