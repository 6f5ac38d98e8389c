//! `peers.json`: every instance's overlay address and public key, written
//! when the sync server's barrier opens (the peer table it hands to the
//! instances). Addresses are first-class outputs: a researcher (or a
//! program that joins later) reads them here instead of digging ports out
//! of the machine.
//!
//! Must not: talk to instances or decide anything about the run; a failed
//! write is a warning, never a failed run.

use std::path::Path;

use peerlab_run::schema::{PeerRecord, PeersRecord};
use peerlab_sync::PeerEntry;

/// Write `peers.json` for a run that started at `start_unix_ms` with this
/// peer table; `external` says which ids are other programs.
pub fn record(run_dir: &Path, start_unix_ms: u64, peers: &[PeerEntry], external: &[u32]) {
    let record = PeersRecord {
        start_unix_ms,
        peers: peers
            .iter()
            .map(|p| PeerRecord {
                id: p.id,
                addr: p.addr.clone(),
                public_key: p.public_key.clone(),
                kind: if p.id == 0 {
                    "tracker".into()
                } else if external.contains(&p.id) {
                    "external".into()
                } else {
                    "peerlab".into()
                },
            })
            .collect(),
    };
    if let Err(e) = peerlab_run::write::write_peers(run_dir, &record) {
        tracing::warn!(
            "cannot write {}: {e}",
            run_dir.join(peerlab_run::layout::PEERS_JSON).display()
        );
    }
}
