//! The tokio UDP driver: carries a core's datagrams and deadlines over a real socket.
//!
//! Owns: one UDP socket and the datagrams it could not send yet (when the
//! socket would block). The runtime owns the [`OverlayCore`] and calls, in a loop:
//!
//! ```text
//! driver.flush(&mut core);                           // poll_transmit -> socket, in batches
//! let wake = driver.wait(core.poll_timeout()).await; // readable | deadline (borrows only the driver,
//!                                                    //  so it can sit in a select! with a command channel)
//! driver.feed(&mut core, Instant::now(), wake)?;     // one receive batch -> handle_batch | handle_timeout
//! while let Some(ev) = core.poll_event() { ... }     // call module callbacks, which may send
//! ```
//!
//! or [`UdpDriver::run`] for that loop with an event callback.
//!
//! Batching, so a process hosting a thousand overlays spends its time in the
//! protocol and not in system calls: [`UdpDriver::feed`] takes up to
//! [`BATCH`] queued datagrams with one `recvmmsg` and hands them to the core
//! as one `handle_batch` (whose signatures are batch-verified);
//! [`UdpDriver::flush`] sends up to [`BATCH`] datagrams per `sendmmsg`. The
//! receive and send buffers are per thread, not per driver: datagrams are
//! received and handled (or polled and sent) within one synchronous call, so
//! a thousand idle drivers hold no buffers (other Unix systems: one datagram
//! per system call, same buffers). The socket asks for a [`RECV_BUFFER`]
//! receive buffer, since a busy process falls behind during bursts.
//!
//! Must not: make protocol decisions or keep protocol state.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::core::{OverlayCore, OverlayEvent};

/// Most datagrams received or sent with one system call (and fed to the core
/// as one batch). Larger batches verify cheaper: ed25519 batch verification
/// costs 14 µs per signature at 64 and 12 µs at 256 (`benches/codec.rs`).
pub const BATCH: usize = 256;
/// Receive slot size: larger datagrams arrive truncated and are dropped as oversize by the core.
const SLOT: usize = 2048;
/// Receive buffer asked of the kernel (Linux caps it at `net.core.rmem_max`).
/// A process hosting many overlays falls behind during bursts (every peer
/// sends its local shares at once); py-ipv8 asks for 850 KiB for the same reason.
pub const RECV_BUFFER: usize = 4 << 20;

/// Why [`UdpDriver::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The socket has (or may have) datagrams: [`UdpDriver::feed`] reads them.
    Readable,
    /// The deadline passed.
    Timeout,
}

/// Driver counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams received.
    pub received: u64,
    /// Sends that failed with an error other than "would block" (the datagram is dropped, as UDP would).
    pub send_errors: u64,
    /// System calls that received datagrams.
    pub recv_calls: u64,
    /// System calls that sent datagrams.
    pub send_calls: u64,
}

/// Datagrams the socket would not take yet, sent first by the next `flush` or `wait`.
#[derive(Debug, Default)]
struct Parked {
    bytes: Vec<u8>,
    /// (destination, start, length) in `bytes`, oldest first.
    queue: VecDeque<(SocketAddr, usize, usize)>,
}

/// See the module docs.
#[derive(Debug)]
pub struct UdpDriver {
    socket: UdpSocket,
    parked: Parked,
    /// Counters.
    pub stats: DriverStats,
}

impl UdpDriver {
    /// Binds a socket.
    pub async fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self::new(UdpSocket::bind(addr).await?))
    }

    /// Wraps a bound socket.
    pub fn new(socket: UdpSocket) -> Self {
        set_recv_buffer(&socket, RECV_BUFFER);
        Self {
            socket,
            parked: Parked::default(),
            stats: DriverStats::default(),
        }
    }

    /// The socket's address (give it to the core with `set_local_addr`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// The socket (e.g. to send hand-made packets in tests).
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Sends everything the core has queued without waiting, in batches. If
    /// the socket would block, the rest of the batch is parked (sent by the
    /// next `wait` when the socket is writable) and the core keeps the others.
    pub fn flush(&mut self, core: &mut OverlayCore) {
        if !self.send_parked() {
            return;
        }
        SCRATCH.with_borrow_mut(|s| {
            loop {
                let mut k = 0;
                while k < BATCH {
                    let buf = &mut s.bufs[k * SLOT..(k + 1) * SLOT];
                    match core.poll_transmit(buf) {
                        Some(t) => {
                            s.meta[k] = (t.destination, t.size);
                            k += 1;
                        }
                        None => break,
                    }
                }
                if k == 0 {
                    return;
                }
                let sent = self.send_scratch(s, k);
                if sent < k {
                    for j in sent..k {
                        let (dest, len) = s.meta[j];
                        let start = self.parked.bytes.len();
                        self.parked
                            .bytes
                            .extend_from_slice(&s.bufs[j * SLOT..j * SLOT + len]);
                        self.parked.queue.push_back((dest, start, len));
                    }
                    return;
                }
                if k < BATCH {
                    return;
                }
            }
        });
    }

    /// Sends datagrams `0..k` of the scratch batch until the socket would
    /// block; returns how many were handled (sent, or dropped on an error).
    fn send_scratch(&mut self, s: &mut Scratch, k: usize) -> usize {
        let mut done = 0;
        while done < k {
            let fd = self.socket.as_raw_fd();
            let r = self
                .socket
                .try_io(Interest::WRITABLE, || sys::send_batch(fd, s, done, k));
            self.stats.send_calls += 1;
            match r {
                Ok(n) => {
                    self.stats.sent += n as u64;
                    done += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    // The first datagram of the rest failed: drop it, as UDP would.
                    self.stats.send_errors += 1;
                    done += 1;
                }
            }
        }
        done
    }

    /// Sends parked datagrams; true when nothing is parked any more.
    fn send_parked(&mut self) -> bool {
        while let Some(&(dest, start, len)) = self.parked.queue.front() {
            match self
                .socket
                .try_send_to(&self.parked.bytes[start..start + len], dest)
            {
                Ok(_) => self.stats.sent += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => self.stats.send_errors += 1,
            }
            self.parked.queue.pop_front();
        }
        self.parked.bytes.clear();
        if self.parked.bytes.capacity() > BATCH * SLOT {
            self.parked.bytes = Vec::new();
            self.parked.queue = VecDeque::new();
        }
        true
    }

    /// Sends one datagram the caller holds (a transmit it delayed on
    /// purpose, e.g. for fault injection), without waiting: if the socket
    /// would block the datagram is dropped and counted in `send_errors`, as
    /// a full network queue would drop it.
    pub fn send_now(&mut self, dest: SocketAddr, bytes: &[u8]) {
        self.stats.send_calls += 1;
        match self.socket.try_send_to(bytes, dest) {
            Ok(_) => self.stats.sent += 1,
            Err(_) => self.stats.send_errors += 1,
        }
    }

    /// Whether datagrams wait for the socket to become writable.
    pub fn has_parked(&self) -> bool {
        !self.parked.queue.is_empty()
    }

    /// Waits until datagrams may be read or the deadline passes (sending
    /// parked datagrams when the socket becomes writable meanwhile). Cancel-safe.
    pub async fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Wake> {
        loop {
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let parked = self.has_parked();
            tokio::select! {
                r = self.socket.readable() => {
                    r?;
                    return Ok(Wake::Readable);
                }
                r = self.socket.writable(), if parked => {
                    r?;
                    self.send_parked();
                }
                _ = sleep => return Ok(Wake::Timeout),
            }
        }
    }

    /// Acts on what `wait` returned: reads one batch of datagrams (up to
    /// [`BATCH`], one system call) into the core, or fires its due timers.
    /// Returns the number of datagrams fed. ICMP errors reported on the
    /// socket (a peer's port is closed) are not errors here.
    pub fn feed(&mut self, core: &mut OverlayCore, now: Instant, wake: Wake) -> io::Result<usize> {
        match wake {
            Wake::Readable => SCRATCH.with_borrow_mut(|s| {
                let fd = self.socket.as_raw_fd();
                let r = self
                    .socket
                    .try_io(Interest::READABLE, || sys::recv_batch(fd, s));
                let n = match r {
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::ConnectionRefused
                                | io::ErrorKind::ConnectionReset
                        ) =>
                    {
                        return Ok(0);
                    }
                    Err(e) => return Err(e),
                };
                self.stats.recv_calls += 1;
                self.stats.received += n as u64;
                let bufs = &s.bufs;
                core.handle_batch(
                    now,
                    s.meta[..n]
                        .iter()
                        .enumerate()
                        .map(|(k, (from, len))| (*from, &bufs[k * SLOT..k * SLOT + len])),
                );
                Ok(n)
            }),
            Wake::Timeout => {
                if core.poll_timeout().is_some_and(|t| t <= now) {
                    core.handle_timeout(now);
                }
                Ok(0)
            }
        }
    }

    /// One turn of the loop: flush, wait, feed, flush.
    pub async fn drive(&mut self, core: &mut OverlayCore) -> io::Result<()> {
        self.flush(core);
        let wake = self.wait(core.poll_timeout()).await?;
        self.feed(core, Instant::now(), wake)?;
        self.flush(core);
        Ok(())
    }

    /// Runs the loop until `on_event` returns false; `on_event` may issue commands to the core.
    pub async fn run(
        &mut self,
        core: &mut OverlayCore,
        mut on_event: impl FnMut(&mut OverlayCore, OverlayEvent) -> bool,
    ) -> io::Result<()> {
        loop {
            self.drive(core).await?;
            while let Some(e) = core.poll_event() {
                if !on_event(core, e) {
                    self.flush(core);
                    return Ok(());
                }
            }
        }
    }
}

/// Best effort: a smaller buffer only means more loss under bursts.
fn set_recv_buffer(socket: &UdpSocket, bytes: usize) {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a valid c_int,
    // on a descriptor the socket keeps open for the duration of the call.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// One thread's batch buffers: `BATCH` slots of `SLOT` bytes and their
/// (address, length), plus the system call's own arrays.
struct Scratch {
    bufs: Box<[u8]>,
    meta: Vec<(SocketAddr, usize)>,
    sys: sys::Arrays,
}

impl Scratch {
    fn new() -> Self {
        Self {
            bufs: vec![0; BATCH * SLOT].into_boxed_slice(),
            meta: vec![(SocketAddr::from(([0, 0, 0, 0], 0)), 0); BATCH],
            sys: sys::Arrays::new(),
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

/// `recvmmsg` / `sendmmsg` over the scratch buffers (Linux).
#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

    use super::{BATCH, RawFd, SLOT, Scratch};

    /// The message headers, I/O vectors and addresses of one batch. The
    /// pointers inside are set right before each call, into the scratch
    /// buffers of the same thread.
    pub struct Arrays {
        hdrs: Vec<libc::mmsghdr>,
        iovs: Vec<libc::iovec>,
        addrs: Vec<libc::sockaddr_storage>,
    }

    impl Arrays {
        pub fn new() -> Self {
            // SAFETY: these C structs are plain data for which all-zero bytes are valid.
            let zero_hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
            let zero_addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            Self {
                hdrs: vec![zero_hdr; BATCH],
                iovs: vec![
                    libc::iovec {
                        iov_base: std::ptr::null_mut(),
                        iov_len: 0,
                    };
                    BATCH
                ],
                addrs: vec![zero_addr; BATCH],
            }
        }
    }

    /// Receives up to `BATCH` datagrams into the scratch slots; returns how many.
    pub fn recv_batch(fd: RawFd, s: &mut Scratch) -> io::Result<usize> {
        let a = &mut s.sys;
        for k in 0..BATCH {
            a.iovs[k] = libc::iovec {
                iov_base: s.bufs[k * SLOT..].as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            let h = &mut a.hdrs[k];
            h.msg_hdr.msg_name = (&mut a.addrs[k] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            h.msg_hdr.msg_iov = &mut a.iovs[k];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: every header points at one live iovec over a SLOT-byte
        // region of `s.bufs` and at one sockaddr_storage with its true size;
        // all of them outlive the call, and the kernel writes at most those sizes.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                a.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = r as usize;
        let mut kept = 0;
        for k in 0..n {
            let len = (a.hdrs[k].msg_len as usize).min(SLOT);
            // A datagram from an address we cannot read is dropped.
            if let Some(from) = from_storage(&a.addrs[k]) {
                if kept != k {
                    s.bufs.copy_within(k * SLOT..k * SLOT + len, kept * SLOT);
                }
                s.meta[kept] = (from, len);
                kept += 1;
            }
        }
        Ok(kept)
    }

    /// Sends datagrams `from..to` of the scratch batch; returns how many the kernel took.
    pub fn send_batch(fd: RawFd, s: &mut Scratch, from: usize, to: usize) -> io::Result<usize> {
        let a = &mut s.sys;
        for k in from..to {
            let (dest, len) = s.meta[k];
            let namelen = to_storage(&dest, &mut a.addrs[k]);
            a.iovs[k] = libc::iovec {
                iov_base: s.bufs[k * SLOT..].as_mut_ptr().cast(),
                iov_len: len,
            };
            let h = &mut a.hdrs[k];
            h.msg_hdr.msg_name = (&mut a.addrs[k] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = namelen;
            h.msg_hdr.msg_iov = &mut a.iovs[k];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: headers from..to point at live iovecs over initialised
        // bytes of `s.bufs` and at addresses of the stated length; the kernel
        // only reads them during the call.
        let r = unsafe {
            libc::sendmmsg(
                fd,
                a.hdrs[from..to].as_mut_ptr(),
                (to - from) as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    fn to_storage(addr: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe {
                    std::ptr::write((out as *mut libc::sockaddr_storage).cast(), sin);
                }
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe {
                    std::ptr::write((out as *mut libc::sockaddr_storage).cast(), sin6);
                }
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }

    fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match s.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the family says the kernel wrote a sockaddr_in here.
                let sin: &libc::sockaddr_in =
                    unsafe { &*(s as *const libc::sockaddr_storage).cast() };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the kernel wrote a sockaddr_in6 here.
                let sin6: &libc::sockaddr_in6 =
                    unsafe { &*(s as *const libc::sockaddr_storage).cast() };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn addresses_survive_the_sockaddr_round_trip() {
            for a in [
                "127.0.0.1:9000",
                "10.1.2.3:1",
                "[::1]:65535",
                "[fe80::1%3]:7",
            ] {
                let a: SocketAddr = a.parse().unwrap();
                // SAFETY: all-zero bytes are a valid sockaddr_storage.
                let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
                to_storage(&a, &mut s);
                assert_eq!(from_storage(&s), Some(a));
            }
        }
    }
}

/// One datagram per system call, over the same scratch buffers (Unix but not Linux).
#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::mem::ManuallyDrop;
    use std::os::fd::FromRawFd;

    use super::{BATCH, RawFd, SLOT, Scratch};

    pub struct Arrays;

    impl Arrays {
        pub fn new() -> Self {
            Arrays
        }
    }

    /// A std socket over a descriptor someone else owns (never closed here).
    fn borrowed(fd: RawFd) -> ManuallyDrop<std::net::UdpSocket> {
        // SAFETY: the descriptor is a UDP socket kept open by the caller for
        // the whole call; ManuallyDrop keeps it from being closed.
        ManuallyDrop::new(unsafe { std::net::UdpSocket::from_raw_fd(fd) })
    }

    pub fn recv_batch(fd: RawFd, s: &mut Scratch) -> io::Result<usize> {
        let sock = borrowed(fd);
        let mut n = 0;
        while n < BATCH {
            match sock.recv_from(&mut s.bufs[n * SLOT..(n + 1) * SLOT]) {
                Ok((len, from)) => {
                    s.meta[n] = (from, len);
                    n += 1;
                }
                // What was received is fed; an error shows again on the next call.
                Err(_) if n > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    pub fn send_batch(fd: RawFd, s: &mut Scratch, from: usize, to: usize) -> io::Result<usize> {
        let sock = borrowed(fd);
        let mut k = from;
        while k < to {
            let (dest, len) = s.meta[k];
            match sock.send_to(&s.bufs[k * SLOT..k * SLOT + len], dest) {
                Ok(_) => k += 1,
                // Report what was sent; an error shows again on the next call.
                Err(_) if k > from => break,
                Err(e) => return Err(e),
            }
        }
        Ok(k - from)
    }
}
