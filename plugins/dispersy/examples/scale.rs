//! Core-only scale check for issue 9: N overlays in one process run a
//! Benaloh-shaped exchange (each sends N−1 unsigned direct messages and one
//! signed FullSync broadcast to everyone; every peer verifies every broadcast),
//! with datagrams handed straight from one core to another (no sockets, one
//! thread). Prints protocol CPU time and memory per overlay.
//!
//! Run: `cargo run --release -p peerlab-dispersy --example scale -- 1000 [--pool | --share] [--batch]`
//! (`--pool`: a shared pool whose hits skip verification; `--share`: a pool
//! that only shares stored bytes, every copy still verified).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use peerlab_dispersy::{
    Authentication, CommunityId, Config, Destination, Distribution, MetaMessage, OverlayCore,
    OverlayEvent, PeerDirectory, SharedPool, wire,
};

/// Counts live heap bytes, so memory per overlay is what overlays hold, not
/// what the allocator keeps after a burst.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let use_pool = args.iter().any(|a| a == "--pool" || a == "--share");
    let share_only = args.iter().any(|a| a == "--share");
    let batch = args.iter().any(|a| a == "--batch");
    let addr = |i: usize| SocketAddr::from(([127, 3, (i >> 8) as u8, i as u8], 9000));
    let seed = |i: usize| {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        s
    };
    let rss0 = rss_kib("VmRSS:");
    let live0 = LIVE.load(Ordering::Relaxed);
    let pool = use_pool.then(|| {
        Arc::new(if share_only {
            SharedPool::sharing_only(4 * n)
        } else {
            SharedPool::new(4 * n)
        })
    });
    let community = CommunityId::isolated("Benaloh", b"scale");
    let now = Instant::now();
    let mut cores: Vec<OverlayCore> = (0..n)
        .map(|i| {
            let mut cfg = Config::new(seed(i), i as u64, addr(i));
            cfg.pool = pool.clone();
            let mut c = OverlayCore::new(cfg);
            c.define_message(MetaMessage::new(
                "local-share",
                Authentication::None,
                Distribution::Direct,
                Destination::Candidate,
            ))
            .unwrap();
            c.define_message(
                MetaMessage::new(
                    "broadcast-share",
                    Authentication::Member,
                    Distribution::FullSync,
                    Destination::Community(n),
                )
                .with_forwarding(false),
            )
            .unwrap();
            c.set_community(community);
            c
        })
        .collect();
    let dir = Arc::new(
        PeerDirectory::new(
            cores
                .iter()
                .enumerate()
                .map(|(i, c)| (addr(i), *c.public_key(), i as u32 + 1)),
        )
        .unwrap(),
    );
    for c in &mut cores {
        c.introduce_from_directory(dir.clone(), None);
        c.start(now);
    }
    let rss_built = rss_kib("VmRSS:");
    let local = cores[0].meta_id("local-share").unwrap();
    let bcast = cores[0].meta_id("broadcast-share").unwrap();
    let t0 = Instant::now();
    let mut buf = vec![0u8; wire::MAX_DATAGRAM];
    let mut inbox: Vec<Vec<(SocketAddr, Vec<u8>)>> = vec![Vec::new(); n];
    let mut delivered = 0u64;
    let mut datagrams = 0u64;
    for phase in 0..2 {
        for i in 0..n {
            if phase == 0 {
                for j in 0..n as u32 {
                    if j as usize != i {
                        cores[i]
                            .send_to_instance(local, &[i as u8; 40], j + 1)
                            .unwrap();
                    }
                }
            } else {
                cores[i].send(bcast, &[i as u8; 80], &[]).unwrap();
            }
            while let Some(t) = cores[i].poll_transmit(&mut buf) {
                datagrams += 1;
                let to = dir.index_of_addr(&t.destination).unwrap() as usize;
                if batch {
                    inbox[to].push((addr(i), buf[..t.size].to_vec()));
                } else {
                    cores[to].handle(now, addr(i), &buf[..t.size]);
                }
            }
        }
        if batch {
            for (to, msgs) in inbox.iter_mut().enumerate() {
                for chunk in msgs.chunks(64) {
                    cores[to].handle_batch(now, chunk.iter().map(|(f, d)| (*f, d.as_slice())));
                }
                msgs.clear();
                msgs.shrink_to_fit();
            }
        }
        for c in &mut cores {
            while let Some(e) = c.poll_event() {
                if matches!(e, OverlayEvent::Message(_)) {
                    delivered += 1;
                }
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let rss_end = rss_kib("VmRSS:");
    drop(inbox);
    let live_end = LIVE.load(Ordering::Relaxed).saturating_sub(live0);
    let expected = 2 * (n as u64) * (n as u64 - 1);
    println!(
        "overlays={n} pool={use_pool} share_only={share_only} batch={batch} datagrams={datagrams} delivered={delivered} (expected {expected}) \
         cpu_wall_s={secs:.2} per_message_us={:.2} live_heap_per_overlay_kib={} rss_per_overlay_kib: built={} end={} peak_rss_mib={}",
        secs * 1e6 / datagrams as f64,
        live_end / 1024 / n,
        (rss_built.saturating_sub(rss0)) / n as u64,
        (rss_end.saturating_sub(rss0)) / n as u64,
        rss_kib("VmHWM:") / 1024,
    );
    assert_eq!(delivered, expected, "not every message was delivered");
}
