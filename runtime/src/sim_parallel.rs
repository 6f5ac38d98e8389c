//! Driving a simulation on several threads without changing its result:
//! conservative windows of the lookahead ([`lookahead`]: the smallest
//! one-way delay any datagram between instances can have, the simulated
//! link's `delay` plus the topology's smallest latency; jitter, fault-model
//! delays and bandwidth queues only add to it).
//!
//! The instances are split into parts (`sim_part`, instance `i` in part
//! `i % threads`), one per thread. A window starts at the earliest event of
//! any part, `g`, and ends at `g + lookahead`: no datagram sent inside it can
//! arrive inside it, so each thread handles its own instances' events of
//! the window alone, in the network's order (which depends on whom an event
//! concerns, never on when it was queued: `peerlab_netsim::draws`). At the
//! window's end each thread posts the datagrams it sent to other parts'
//! instances, and after one barrier each takes those posted to it. Each
//! instance thus sees exactly the events, in exactly the order, that one
//! thread handling every instance gives it: the outputs are byte for byte
//! those of `--threads 1`.
//!
//! What instances share besides the network is order-independent by
//! construction: the peer directory is read-only, the overlay's message
//! table is keyed by (global time, author) and holds one packet per key
//! whoever offers it first (a store that offered another packet keeps its
//! own), and the verification pool only saves work (a hit gives the bytes a
//! verification would have accepted). Features whose state is shared
//! between instances in the network itself run on one thread, and say so
//! ([`plan`]): NATs (a mapping made by one instance's datagram is consulted
//! by another's), and a link without minimum delay (no lookahead).
//!
//! Owns: the choice of threads, the windows, the barrier and the mailboxes
//! between threads. Must not: feed the wall clock into the simulation (it
//! paces the progress display only), or let a thread touch another's part.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex, PoisonError};
use std::time::{Duration, Instant};

use peerlab_netsim::partition::Parcel;

use super::sim::{PROGRESS_EVERY, SimProgress};
use super::sim_part::{Paused, Sim};

/// How a simulation runs: on how many threads, and why on one when more
/// were asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threads {
    pub threads: usize,
    /// Set when more than one thread was asked for and the run cannot use
    /// them without losing determinism: the words to tell the user.
    pub single_threaded_because: Option<String>,
}

/// The smallest one-way delay a datagram from one instance to another can
/// have: the simulated link's `delay`, plus the topology's smallest latency
/// (scaled by `time_scale`) when every one of the `instances` is in one of
/// its groups (an instance outside any group would add none).
pub fn lookahead(
    link_delay: Duration,
    topology: Option<&peerlab_lang::network::Topology>,
    time_scale: f64,
    instances: u32,
) -> Duration {
    let least = topology
        .filter(|t| t.of_instance.len() >= instances as usize)
        .and_then(|t| t.spec.latency.iter().min())
        .map_or(Duration::ZERO, |d| d.mul_f64(time_scale));
    link_delay + least
}

/// The threads a simulation asked for `requested` threads gets, given its
/// [`lookahead`] and whether any instance is behind a NAT.
pub fn plan(requested: usize, lookahead: Duration, nats: bool) -> Threads {
    let single = |why: String| Threads {
        threads: 1,
        single_threaded_because: Some(why),
    };
    if requested <= 1 {
        Threads {
            threads: 1,
            single_threaded_because: None,
        }
    } else if nats {
        single(format!(
            "instances behind NATs share the NATs' mappings on the simulated network, so the simulation runs on one thread, not {requested}, to stay repeatable"
        ))
    } else if lookahead.is_zero() {
        single(format!(
            "a datagram can arrive as soon as it is sent (network_delay = 0 and no topology latency above 0), so no window can run in parallel: the simulation runs on one thread, not {requested} (a network_delay above 0 lets it use more)"
        ))
    } else {
        Threads {
            threads: requested,
            single_threaded_because: None,
        }
    }
}

/// How the threads shared a simulation's work, for the log (a figure of
/// this machine, never an output of the run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Threading {
    /// Windows run (each ends at a barrier).
    pub windows: u64,
    /// Each thread's events handled and CPU seconds.
    pub threads: Vec<(u64, f64)>,
    /// Datagrams for another thread due inside the window they were sent
    /// in: none unless the lookahead is wrong (a bug), which would make
    /// the outputs depend on the number of threads.
    pub late: u64,
}

/// CPU seconds of the calling thread (for [`Threading`] only).
fn thread_cpu() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec; the call only writes it.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return 0.0;
    }
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// What every thread reads: the run's fixed values and the exchange.
struct Shared<'a> {
    parts: usize,
    lookahead: Duration,
    end: Instant,
    zero: Instant,
    n: u32,
    stop: &'a AtomicBool,
    barrier: Barrier,
    /// Parcels posted in a window: `[parity][from][to]`.
    mail: Vec<Mutex<Vec<Parcel<usize>>>>,
    /// Each part's earliest event after a window: `[parity][part]`.
    next: Vec<Mutex<Option<Instant>>>,
    /// A part saw the stop flag (or panicked) in a window: `[parity]`.
    halt: [AtomicBool; 2],
    /// Each part's latest share of the progress display.
    shares: Vec<Mutex<Option<SimProgress>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared<'_> {
    fn mail(&self, parity: usize, from: usize, to: usize) -> &Mutex<Vec<Parcel<usize>>> {
        &self.mail[(parity * self.parts + from) * self.parts + to]
    }

    fn next(&self, parity: usize, part: usize) -> &Mutex<Option<Instant>> {
        &self.next[parity * self.parts + part]
    }
}

/// The progress display, driven by the first thread.
pub(crate) struct Display<'a> {
    pub progress: &'a mut dyn FnMut(SimProgress),
    pub last: &'a mut Instant,
}

/// Run `sim` to `end` (or a stop) on `threads` threads (one: in this
/// thread, in one loop). Returns the whole simulation again, whether the
/// stop flag ended it, and how the threads shared the work (`None` on one).
pub(crate) fn drive(
    sim: Sim,
    threads: usize,
    lookahead: Duration,
    (end, zero, n): (Instant, Instant, u32),
    stop: &AtomicBool,
    display: Display<'_>,
) -> (Sim, bool, Option<Threading>) {
    let mut sim = sim;
    if threads <= 1 || lookahead.is_zero() {
        let stopped = || stop.load(Ordering::Relaxed);
        let Display { progress, last } = display;
        let paused = sim.run_until(None, end, &stopped, &mut |s, at| {
            if last.elapsed() >= PROGRESS_EVERY {
                *last = Instant::now();
                progress(s.progress(n, at, zero));
            }
        });
        return (sim, paused == Paused::Stopped, None);
    }
    let parts = match sim.split(threads) {
        Ok(parts) => parts,
        Err(sim) => return drive(*sim, 1, lookahead, (end, zero, n), stop, display),
    };
    let shared = Shared {
        parts: threads,
        lookahead,
        end,
        zero,
        n,
        stop,
        barrier: Barrier::new(threads),
        mail: (0..2 * threads * threads)
            .map(|_| Mutex::new(Vec::new()))
            .collect(),
        next: (0..2 * threads).map(|_| Mutex::new(None)).collect(),
        halt: [AtomicBool::new(false), AtomicBool::new(false)],
        shares: (0..threads).map(|_| Mutex::new(None)).collect(),
    };
    let ended: Vec<Ended> = std::thread::scope(|s| {
        let mut parts = parts.into_iter();
        let first = parts.next().expect("threads > 1");
        let shared = &shared;
        let others: Vec<_> = parts
            .enumerate()
            .map(|(k, part)| s.spawn(move || worker(shared, k + 1, part, None)))
            .collect();
        let mut all = vec![worker(shared, 0, first, Some(display))];
        for h in others {
            all.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        all
    });
    let mut interrupted = false;
    let mut parts = Vec::with_capacity(ended.len());
    let mut threading = Threading::default();
    for e in ended {
        if let Some(panic) = e.panic {
            std::panic::resume_unwind(panic);
        }
        interrupted |= e.interrupted;
        threading.windows = threading.windows.max(e.windows);
        threading.threads.push((e.sim.events, e.cpu));
        threading.late += e.late;
        parts.push(e.sim);
    }
    (Sim::join(parts), interrupted, Some(threading))
}

struct Ended {
    sim: Sim,
    interrupted: bool,
    windows: u64,
    cpu: f64,
    late: u64,
    panic: Option<Box<dyn std::any::Any + Send>>,
}

/// One thread's loop over the windows. Every thread takes the same
/// decisions (from values all of them read after the same barrier), so
/// all leave the loop after the same window.
fn worker(sh: &Shared<'_>, me: usize, mut sim: Sim, mut display: Option<Display<'_>>) -> Ended {
    let p = sh.parts;
    let cpu = thread_cpu();
    *lock(sh.next(0, me)) = sim.net.next_at();
    sh.barrier.wait();
    let mut window: u64 = 0;
    let mut interrupted = false;
    let mut panic = None;
    let mut last_share: Option<Instant> = None;
    let mut late = 0;
    let stopped = || sh.stop.load(Ordering::Relaxed);
    loop {
        let parity = (window % 2) as usize;
        let after = 1 - parity;
        if sh.halt[parity].load(Ordering::Acquire) {
            interrupted = true;
            break;
        }
        let Some(g) = (0..p).filter_map(|q| *lock(sh.next(parity, q))).min() else {
            break;
        };
        if g > sh.end {
            break;
        }
        for q in 0..p {
            let parcels = std::mem::take(&mut *lock(sh.mail(parity, q, me)));
            sim.net.accept(parcels);
        }
        if let Some(d) = display.as_mut()
            && d.last.elapsed() >= PROGRESS_EVERY
        {
            *d.last = Instant::now();
            let mut total = sim.progress(sh.n, g, sh.zero);
            for q in 1..p {
                if let Some(share) = *lock(&sh.shares[q]) {
                    total.ended += share.ended;
                    total.failed += share.failed;
                    total.commands += share.commands;
                    total.delivered += share.delivered;
                    total.lost += share.lost;
                }
            }
            (d.progress)(total);
        }
        let end_of_window = g + sh.lookahead;
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
            sim.run_until(Some(end_of_window), sh.end, &stopped, &mut |_, _| {})
        }));
        match ran {
            Ok(Paused::Window) => {}
            Ok(Paused::Stopped) => sh.halt[after].store(true, Ordering::Release),
            Err(e) => {
                panic = Some(e);
                sh.halt[after].store(true, Ordering::Release);
            }
        }
        if me == 0 && stopped() {
            sh.halt[after].store(true, Ordering::Release);
        }
        let mut earliest = sim.net.next_at();
        for q in (0..p).filter(|&q| q != me) {
            let parcels = sim.net.take_outbox(q);
            if let Some(first) = parcels.iter().map(Parcel::at).min() {
                if first < end_of_window {
                    late += 1;
                }
                earliest = Some(earliest.map_or(first, |e| e.min(first)));
                lock(sh.mail(after, me, q)).extend(parcels);
            }
        }
        *lock(sh.next(after, me)) = earliest;
        if me > 0 && last_share.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY / 2) {
            last_share = Some(Instant::now());
            *lock(&sh.shares[me]) = Some(sim.progress(sh.n, g, sh.zero));
        }
        window += 1;
        sh.barrier.wait();
    }
    Ended {
        sim,
        interrupted,
        windows: window,
        cpu: thread_cpu() - cpu,
        late,
        panic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerlab_lang::network::{Assignment, Topology, builtin};

    #[test]
    fn the_lookahead_is_the_link_delay_plus_the_least_topology_latency() {
        let ms = Duration::from_millis;
        let world = builtin("world").expect("built in");
        let all = Topology::assign(world.clone(), &Assignment::RoundRobin, 6).unwrap();
        assert_eq!(lookahead(ms(5), None, 1.0, 6), ms(5));
        assert_eq!(lookahead(ms(0), Some(&all), 1.0, 6), ms(10));
        assert_eq!(lookahead(ms(2), Some(&all), 0.5, 6), ms(7));
        // An instance outside every group gets no topology latency.
        let short = Topology::assign(world, &Assignment::RoundRobin, 4).unwrap();
        assert_eq!(lookahead(ms(0), Some(&short), 1.0, 6), ms(0));
    }

    #[test]
    fn one_thread_is_chosen_and_said_for_nats_and_for_no_lookahead() {
        let ms = Duration::from_millis;
        assert_eq!(plan(4, ms(5), false).threads, 4);
        assert_eq!(plan(4, ms(5), false).single_threaded_because, None);
        assert_eq!(plan(1, ms(0), true).single_threaded_because, None);
        let nat = plan(2, ms(5), true);
        assert_eq!(nat.threads, 1);
        assert!(nat.single_threaded_because.unwrap().contains("NAT"));
        let zero = plan(2, ms(0), false);
        assert_eq!(zero.threads, 1);
        assert!(
            zero.single_threaded_because
                .unwrap()
                .contains("network_delay = 0")
        );
    }
}
