//! The built-in tracker (Gumby's `tracker_cmd`/`tracker_port`): with
//! `tracker_cmd` set, the runner answers introduction requests on
//! `tracker_port` (a free port for `__unique_port__`, recorded in the run's
//! config) with `peerlab_dispersy::tracker::Tracker`, instead of running
//! the command. It is in the peer table as id 0 (`peers.json` kind
//! `tracker`), so instances accept its signed answers, and the instances'
//! walkers bootstrap from it when the scenario does not `introduce_peers`.
//!
//! Must not: interpret the scenario or talk to instances beyond answering
//! their introduction requests.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use peerlab_dispersy::tracker::Tracker;
use peerlab_sync::PeerEntry;
use tokio::net::UdpSocket;

use super::RunSettings;
use super::error::RunError;

/// A running tracker; dropping it stops it.
pub struct Running {
    /// Its row of the peer table.
    pub entry: PeerEntry,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.entry
            .addr
            .parse::<SocketAddr>()
            .map_or(0, |a| a.port())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether the run asks for a tracker (`tracker_cmd` is set).
pub fn wanted(settings: &RunSettings) -> bool {
    settings
        .config
        .get("tracker_cmd")
        .is_some_and(|c| !c.trim().is_empty())
}

/// Start the tracker on `ip` if the run wants one; the settings then carry
/// its port as `tracker_port` (what the instances bootstrap from).
pub async fn start(
    settings: &RunSettings,
    ip: IpAddr,
) -> Result<(Cow<'_, RunSettings>, Option<Running>), RunError> {
    if !wanted(settings) {
        return Ok((Cow::Borrowed(settings), None));
    }
    let port = settings
        .config
        .get("tracker_port")
        .and_then(|p| p.trim().parse::<u16>().ok())
        .unwrap_or(0);
    let socket = UdpSocket::bind(SocketAddr::new(ip, port))
        .await
        .map_err(|source| RunError::Tracker {
            addr: SocketAddr::new(ip, port),
            source,
        })?;
    let addr = socket.local_addr().map_err(|source| RunError::Tracker {
        addr: SocketAddr::new(ip, port),
        source,
    })?;
    let mut tracker = Tracker::new(rand::random(), settings.seed, addr);
    let entry = PeerEntry {
        id: 0,
        addr: addr.to_string(),
        public_key: peerlab_dispersy::crypto::hex(tracker.public_key().as_bytes()),
    };
    tracing::info!(%addr, "tracker listening");
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            for (to, data) in tracker.handle(Instant::now(), from, &buf[..n]) {
                let _ = socket.send_to(&data, to).await;
            }
        }
    });
    let mut with_port = settings.clone();
    with_port
        .config
        .insert("tracker_port".into(), addr.port().to_string());
    Ok((Cow::Owned(with_port), Some(Running { entry, task })))
}
