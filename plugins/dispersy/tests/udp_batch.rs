//! The UDP driver's batching on real loopback sockets, with more datagrams
//! than two batches: datagrams already queued in the socket are read
//! `BATCH` per system call and handed to the core together; queued
//! transmits leave `BATCH` per system call, in order. Counts of system calls
//! come from the driver's own counters.
//!
//! Bursts are sized from the receive buffer the kernel actually granted, so
//! nothing is lost to a full buffer: each test runs once with the driver's
//! own buffer (4 MiB asked, capped by `net.core.rmem_max`) and once capped
//! as a stock kernel caps it (`rmem_max` 212,992).

use std::net::{SocketAddr, UdpSocket as StdSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use peerlab_dispersy::udp::{BATCH, UdpDriver, Wake};
use peerlab_dispersy::{
    Authentication, CommunityId, Config, Destination, Distribution, DropReason, MetaMessage,
    OverlayCore, wire,
};

/// Datagrams per test, at most (fewer when the receive buffer is smaller).
const N: usize = 600;

/// `net.core.rmem_max` of a stock Linux kernel (Debian's default): the
/// driver's 4 MiB request is capped to it, and the kernel doubles it.
const STOCK_RMEM_MAX: libc::c_int = 212_992;

/// Buffer bytes one small datagram is charged for, with room to spare: the
/// kernel charges its skb's truesize (832 bytes for these on x86-64 Linux).
const BYTES_PER_DATAGRAM: usize = 1536;

/// The receive buffers each test runs with: the driver's own, then capped
/// as on a stock kernel.
const CAPS: [Option<libc::c_int>; 2] = [None, Some(STOCK_RMEM_MAX)];

fn set_recv_buffer(fd: RawFd, bytes: libc::c_int) {
    // SAFETY: setsockopt reads a c_int from a valid pointer, on an open descriptor.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(
        r,
        0,
        "setsockopt(SO_RCVBUF): {}",
        std::io::Error::last_os_error()
    );
}

/// The receive buffer the kernel granted, in bytes.
fn granted_recv_buffer(fd: RawFd) -> usize {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into a valid c_int.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(
        r,
        0,
        "getsockopt(SO_RCVBUF): {}",
        std::io::Error::last_os_error()
    );
    usize::try_from(value).expect("a buffer size is positive")
}

/// A driver on loopback, its receive buffer capped to `cap` if given.
async fn driver(cap: Option<libc::c_int>) -> UdpDriver {
    let driver = UdpDriver::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    if let Some(cap) = cap {
        set_recv_buffer(driver.socket().as_raw_fd(), cap);
    }
    driver
}

/// How many small datagrams `receiver` surely holds unread: at most `N`,
/// and more than one batch even on a stock kernel.
fn burst(receiver: &UdpDriver) -> usize {
    let n = (granted_recv_buffer(receiver.socket().as_raw_fd()) / BYTES_PER_DATAGRAM).min(N);
    assert!(
        n > BATCH,
        "a receive buffer of {} bytes holds only {n} datagrams, not more than a batch ({BATCH})",
        granted_recv_buffer(receiver.socket().as_raw_fd())
    );
    n
}

fn core(addr: SocketAddr) -> OverlayCore {
    let mut core = OverlayCore::new(Config::new([7; 32], 7, addr));
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
    for cap in CAPS {
        queued_datagrams_are_read_a_batch_per_system_call_with(cap).await;
    }
}

async fn queued_datagrams_are_read_a_batch_per_system_call_with(cap: Option<libc::c_int>) {
    let mut driver = driver(cap).await;
    let to = driver.local_addr().unwrap();
    let mut core = core(to);
    let sender = StdSocket::bind("127.0.0.1:0").unwrap();
    // Bursts the buffer holds, until N datagrams were read.
    let burst = burst(&driver);
    let mut sent = 0;
    while sent < N {
        let n = burst.min(N - sent);
        for i in sent..sent + n {
            // Not a packet of any community: each is counted as malformed.
            sender.send_to(&[i as u8; 9], to).unwrap();
        }
        sent += n;
        let calls_before = driver.stats.recv_calls;
        let deadline = Instant::now() + Duration::from_secs(10);
        while driver.stats.received < sent as u64 {
            let wake = driver.wait(Some(deadline)).await.unwrap();
            assert_eq!(
                wake,
                Wake::Readable,
                "cap {cap:?}: timed out after {:?}",
                driver.stats
            );
            driver.feed(&mut core, Instant::now(), wake).unwrap();
        }
        // The whole burst was queued before the first read: full batches.
        assert_eq!(
            driver.stats.recv_calls - calls_before,
            n.div_ceil(BATCH) as u64,
            "cap {cap:?}, burst {n}: {:?}",
            driver.stats
        );
    }
    assert_eq!(driver.stats.received, N as u64);
    assert_eq!(core.stats().dropped(DropReason::Malformed), N as u64);
}

#[tokio::test(flavor = "current_thread")]
async fn queued_transmits_leave_a_batch_per_system_call_in_order() {
    for cap in CAPS {
        queued_transmits_leave_a_batch_per_system_call_in_order_with(cap).await;
    }
}

async fn queued_transmits_leave_a_batch_per_system_call_in_order_with(cap: Option<libc::c_int>) {
    let mut driver = driver(None).await;
    let mut core = core(driver.local_addr().unwrap());
    // The burst fits the receiver's buffer, so nothing is lost.
    let receiver = self::driver(cap).await;
    let n = burst(&receiver);
    let dest = receiver.local_addr().unwrap();
    let note = core.meta_id("note").unwrap();
    for i in 0..n as u32 {
        core.send(note, &i.to_be_bytes(), &[dest]).unwrap();
    }
    // A fresh socket is writable once the reactor has seen it.
    driver.socket().writable().await.unwrap();
    driver.flush(&mut core);
    assert_eq!(core.pending_transmits(), 0);
    assert!(!driver.has_parked());
    assert_eq!(driver.stats.sent, n as u64);
    assert_eq!(
        driver.stats.send_calls,
        n.div_ceil(BATCH) as u64,
        "cap {cap:?}: {:?}",
        driver.stats
    );
    let mut buf = [0u8; 2048];
    for i in 0..n as u32 {
        let (len, from) = recv(&receiver, &mut buf).await;
        assert_eq!(from, driver.local_addr().unwrap());
        let f = wire::decode_unsigned(&buf[..len]).unwrap();
        assert_eq!(f.payload, i.to_be_bytes(), "datagram {i} out of order");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn transmits_the_socket_would_not_take_yet_keep_their_order() {
    for cap in CAPS {
        transmits_the_socket_would_not_take_yet_keep_their_order_with(cap).await;
    }
}

async fn transmits_the_socket_would_not_take_yet_keep_their_order_with(cap: Option<libc::c_int>) {
    let mut driver = driver(None).await;
    let mut core = core(driver.local_addr().unwrap());
    // The burst fits the receiver's buffer, so nothing is lost.
    let receiver = self::driver(cap).await;
    let n = burst(&receiver);
    let dest = receiver.local_addr().unwrap();
    let note = core.meta_id("note").unwrap();
    for i in 0..n as u32 {
        core.send(note, &i.to_be_bytes(), &[dest]).unwrap();
    }
    // Flushing before the reactor knows the socket is writable parks a
    // batch; waiting sends it, later flushes send the rest after it.
    driver.flush(&mut core);
    let deadline = Instant::now() + Duration::from_secs(10);
    while driver.stats.sent < n as u64 {
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
    for i in 0..n as u32 {
        let (len, _) = recv(&receiver, &mut buf).await;
        let f = wire::decode_unsigned(&buf[..len]).unwrap();
        assert_eq!(f.payload, i.to_be_bytes(), "datagram {i} out of order");
    }
}
