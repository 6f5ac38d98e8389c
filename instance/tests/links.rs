//! Tests of the bandwidth links (`peerlab_instance::bandwidth`): the
//! serialisation queue's instants and drops, and the inbound queue's
//! release order. Instants are made here (the crate itself reads no clock).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use peerlab_instance::bandwidth::{Inbound, Link};

#[test]
fn a_link_serialises_back_to_back_and_drops_past_its_queue() {
    let t0 = Instant::now();
    // 1 Mbit/s: 1000 bytes take 8 ms.
    let mut l = Link::new(1e6, 3000, 1.0);
    let ms = |d: Instant| (d - t0).as_secs_f64() * 1000.0;
    let a = l.admit(t0, 1000).unwrap();
    let b = l.admit(t0, 1000).unwrap();
    let c = l.admit(t0, 1000).unwrap();
    assert!((ms(a) - 8.0).abs() < 1e-6 && (ms(b) - 16.0).abs() < 1e-6);
    assert!((ms(c) - 24.0).abs() < 1e-6);
    // 3000 bytes wait: a fourth does not fit in the queue's 3000.
    assert_eq!(l.admit(t0, 1000), None);
    // Once the link is idle again it starts at once.
    let later = t0 + Duration::from_millis(100);
    let d = l.admit(later, 500).unwrap();
    assert!((ms(d) - 104.0).abs() < 1e-6);
    // A time scale of 0.1 makes it ten times faster in wall time.
    let mut fast = Link::new(1e6, 10_000, 0.1);
    assert!((ms(fast.admit(t0, 1000).unwrap()) - 0.8).abs() < 1e-6);
}

#[test]
fn inbound_releases_in_order_at_the_link_rate() {
    let t0 = Instant::now();
    let from: SocketAddr = "10.0.0.1:7000".parse().unwrap();
    let mut q = Inbound::new(Link::new(8000.0, 100, 1.0));
    assert!(q.arrive(t0, from, &[1; 10]));
    assert!(q.arrive(t0, from, &[2; 10]));
    assert_eq!(q.next_at(), Some(t0 + Duration::from_millis(10)));
    assert!(q.due(t0 + Duration::from_millis(9)).is_empty());
    let got = q.due(t0 + Duration::from_millis(20));
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].1, vec![2; 10]);
}
