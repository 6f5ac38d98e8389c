//! The tokio UDP driver: carries a core's datagrams and deadlines over a real socket.
//!
//! Owns: one UDP socket, its receive batch buffer and at most one parked
//! transmit (when the socket would block). The runtime owns the [`Core`] and
//! calls, in a loop:
//!
//! ```text
//! driver.flush(&mut core);                           // poll_transmit -> socket
//! let wake = driver.wait(core.poll_timeout()).await; // datagrams | deadline (borrows only the driver,
//!                                                    //  so it can sit in a select! with a command channel)
//! driver.feed(&mut core, Instant::now(), wake);      // handle_batch | handle_timeout
//! while let Some(ev) = core.poll_event() { ... }     // call module callbacks, which may send
//! ```
//!
//! or [`UdpDriver::run`] for that loop with an event callback. Received
//! datagrams that are already queued in the socket are fed as one batch (up
//! to [`BATCH`]), so signatures are batch-verified under load; `recvmmsg`
//! can replace the `try_recv_from` loop later without changing this API.
//! Must not: make protocol decisions or keep protocol state.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::UdpSocket;

use crate::core::{Core, Event};

/// Most datagrams fed to the core in one batch.
pub const BATCH: usize = 64;
/// Receive slot size: larger datagrams arrive truncated and are dropped as oversize by the core.
const SLOT: usize = 2048;

/// Why [`UdpDriver::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// This many datagrams are in the driver's batch buffer.
    Datagrams(usize),
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
}

/// See the module docs.
#[derive(Debug)]
pub struct UdpDriver {
    socket: UdpSocket,
    send_buf: Vec<u8>,
    parked: Option<(SocketAddr, usize)>,
    recv: Vec<u8>,
    meta: Vec<(SocketAddr, usize)>,
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
        Self {
            socket,
            send_buf: vec![0; SLOT],
            parked: None,
            recv: vec![0; SLOT * BATCH],
            meta: Vec::with_capacity(BATCH),
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

    /// Sends everything the core has queued without waiting. If the socket
    /// would block, one datagram is parked and sent by the next `wait`.
    pub fn flush(&mut self, core: &mut Core) {
        if self.parked.is_some() && !self.try_send_parked() {
            return;
        }
        while let Some(t) = core.poll_transmit(&mut self.send_buf) {
            self.parked = Some((t.destination, t.size));
            if !self.try_send_parked() {
                return;
            }
        }
    }

    /// True when nothing is parked any more.
    fn try_send_parked(&mut self) -> bool {
        let Some((dest, len)) = self.parked else {
            return true;
        };
        match self.socket.try_send_to(&self.send_buf[..len], dest) {
            Ok(_) => {
                self.stats.sent += 1;
                self.parked = None;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => {
                self.stats.send_errors += 1;
                self.parked = None;
                true
            }
        }
    }

    /// Sends one datagram the caller holds (a transmit it delayed on
    /// purpose, e.g. for fault injection), without waiting: if the socket
    /// would block the datagram is dropped and counted in `send_errors`, as
    /// a full network queue would drop it.
    pub fn send_now(&mut self, dest: SocketAddr, bytes: &[u8]) {
        match self.socket.try_send_to(bytes, dest) {
            Ok(_) => self.stats.sent += 1,
            Err(_) => self.stats.send_errors += 1,
        }
    }

    /// Whether a datagram waits for the socket to become writable.
    pub fn has_parked(&self) -> bool {
        self.parked.is_some()
    }

    /// Waits for datagrams or the deadline (sending a parked datagram when
    /// the socket becomes writable meanwhile). Cancel-safe.
    pub async fn wait(&mut self, deadline: Option<Instant>) -> io::Result<Wake> {
        loop {
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let parked = self.parked.is_some();
            tokio::select! {
                r = self.socket.recv_from(&mut self.recv[..SLOT]) => {
                    let (n, from) = match r {
                        Ok(x) => x,
                        // ICMP errors reported on the socket: not ours to act on.
                        Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset) => continue,
                        Err(e) => return Err(e),
                    };
                    self.meta.clear();
                    self.meta.push((from, n));
                    while self.meta.len() < BATCH {
                        let k = self.meta.len();
                        match self.socket.try_recv_from(&mut self.recv[k * SLOT..(k + 1) * SLOT]) {
                            Ok((n, from)) => self.meta.push((from, n)),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset) => break,
                            Err(e) => return Err(e),
                        }
                    }
                    self.stats.received += self.meta.len() as u64;
                    return Ok(Wake::Datagrams(self.meta.len()));
                }
                r = self.socket.writable(), if parked => {
                    r?;
                    self.try_send_parked();
                }
                _ = sleep => return Ok(Wake::Timeout),
            }
        }
    }

    /// Feeds what `wait` returned into the core.
    pub fn feed(&mut self, core: &mut Core, now: Instant, wake: Wake) {
        match wake {
            Wake::Datagrams(n) => {
                let recv = &self.recv;
                core.handle_batch(
                    now,
                    self.meta[..n.min(self.meta.len())]
                        .iter()
                        .enumerate()
                        .map(|(k, (from, len))| (*from, &recv[k * SLOT..k * SLOT + len])),
                );
            }
            Wake::Timeout => {
                if core.poll_timeout().is_some_and(|t| t <= now) {
                    core.handle_timeout(now);
                }
            }
        }
    }

    /// One turn of the loop: flush, wait, feed, flush.
    pub async fn drive(&mut self, core: &mut Core) -> io::Result<()> {
        self.flush(core);
        let wake = self.wait(core.poll_timeout()).await?;
        self.feed(core, Instant::now(), wake);
        self.flush(core);
        Ok(())
    }

    /// Runs the loop until `on_event` returns false; `on_event` may issue commands to the core.
    pub async fn run(
        &mut self,
        core: &mut Core,
        mut on_event: impl FnMut(&mut Core, Event) -> bool,
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
