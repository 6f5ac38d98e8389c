//! The UDP driver's batching on real loopback sockets, with more datagrams
//! than two batches: datagrams already queued in the socket are read
//! `BATCH` per system call and handed to the core together; queued
//! transmits leave `BATCH` per system call, in order. Counts of system calls
//! come from the driver's own counters.

use std::net::{SocketAddr, UdpSocket as StdSocket};
use std::time::{Duration, Instant};

use peerlab_dispersy::udp::{BATCH, UdpDriver, Wake};
use peerlab_dispersy::{
    Authentication, CommunityId, Config, Core, Destination, Distribution, DropReason, MetaMessage,
    wire,
};

const N: usize = 600;

fn core(addr: SocketAddr) -> Core {
    let mut core = Core::new(Config::new([7; 32], 7, addr));
    core.define_message(MetaMessage::new(
        "note",
        Authentication::None,
        Distribution::Direct,
        Destination::Candidate,
    ))
    .expect("fresh core");
    core.set_community(CommunityId::isolated("UdpBatch", b"udp-batch-test"));
    core.start(Instant::now());
    core
}

/// One datagram from `receiver`'s socket (the timeout only bounds a hang).
async fn recv(receiver: &UdpDriver, buf: &mut [u8]) -> (usize, SocketAddr) {
    tokio::time::timeout(Duration::from_secs(10), receiver.socket().recv_from(buf))
        .await
        .expect("a datagram within 10 s")
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn queued_datagrams_are_read_a_batch_per_system_call() {
    let mut driver = UdpDriver::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let to = driver.local_addr().unwrap();
    let mut core = core(to);
    let sender = StdSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..N {
        // Not a packet of any community: each is counted as malformed.
        sender.send_to(&[i as u8; 9], to).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while driver.stats.received < N as u64 {
        let wake = driver.wait(Some(deadline)).await.unwrap();
        assert_eq!(wake, Wake::Readable, "timed out after {:?}", driver.stats);
        driver.feed(&mut core, Instant::now(), wake).unwrap();
    }
    assert_eq!(driver.stats.received, N as u64);
    assert_eq!(core.stats().dropped(DropReason::Malformed), N as u64);
    // Everything was queued before the first read: full batches.
    assert_eq!(
        driver.stats.recv_calls,
        N.div_ceil(BATCH) as u64,
        "{:?}",
        driver.stats
    );
}

#[tokio::test(flavor = "current_thread")]
async fn queued_transmits_leave_a_batch_per_system_call_in_order() {
    let mut driver = UdpDriver::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut core = core(driver.local_addr().unwrap());
    // The receiver has the driver's large receive buffer, so nothing is lost.
    let receiver = UdpDriver::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dest = receiver.local_addr().unwrap();
    let note = core.meta_id("note").unwrap();
    for i in 0..N as u32 {
        core.send(note, &i.to_be_bytes(), &[dest]).unwrap();
    }
    // A fresh socket is writable once the reactor has seen it.
    driver.socket().writable().await.unwrap();
    driver.flush(&mut core);
    assert_eq!(core.pending_transmits(), 0);
    assert!(!driver.has_parked());
    assert_eq!(driver.stats.sent, N as u64);
    assert_eq!(
        driver.stats.send_calls,
        N.div_ceil(BATCH) as u64,
        "{:?}",
        driver.stats
    );
    let mut buf = [0u8; 2048];
    for i in 0..N as u32 {
        let (n, from) = recv(&receiver, &mut buf).await;
        assert_eq!(from, driver.local_addr().unwrap());
        let f = wire::decode_unsigned(&buf[..n]).unwrap();
        assert_eq!(f.payload, i.to_be_bytes(), "datagram {i} out of order");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn transmits_the_socket_would_not_take_yet_keep_their_order() {
    let mut driver = UdpDriver::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut core = core(driver.local_addr().unwrap());
    // The receiver has the driver's large receive buffer, so nothing is lost.
    let receiver = UdpDriver::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dest = receiver.local_addr().unwrap();
    let note = core.meta_id("note").unwrap();
    for i in 0..N as u32 {
        core.send(note, &i.to_be_bytes(), &[dest]).unwrap();
    }
    // Flushing before the reactor knows the socket is writable parks a
    // batch; waiting sends it, later flushes send the rest after it.
    driver.flush(&mut core);
    let deadline = Instant::now() + Duration::from_secs(10);
    while driver.stats.sent < N as u64 {
        if driver.has_parked() {
            let wake = driver
                .wait(Some(Instant::now() + Duration::from_millis(20)))
                .await
                .unwrap();
            assert_eq!(wake, Wake::Timeout, "nothing is sent to the driver");
        }
        driver.flush(&mut core);
        assert!(Instant::now() < deadline, "stuck: {:?}", driver.stats);
    }
    assert_eq!(driver.stats.send_errors, 0);
    let mut buf = [0u8; 2048];
    for i in 0..N as u32 {
        let (n, _) = recv(&receiver, &mut buf).await;
        let f = wire::decode_unsigned(&buf[..n]).unwrap();
        assert_eq!(f.payload, i.to_be_bytes(), "datagram {i} out of order");
    }
}
