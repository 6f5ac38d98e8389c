//! A process-wide pool of verified FullSync packets, optional.
//!
//! Owns: remembering which exact packets (SHA-256 over signature and signed
//! bytes) already passed signature verification in this process, and handing
//! out one shared copy of their bytes. When many overlays run in one process
//! (issue 9: 1,000 overlays each receive the same 1,000 signed broadcasts), the
//! first overlay that receives a packet verifies it and every other overlay
//! that receives the identical bytes skips the ed25519 check and stores the
//! shared `Arc` instead of its own copy.
//!
//! Trade-off, stated plainly: a hit is cryptographically sound (the digest
//! binds every byte the signature covers, so the result cannot differ), but
//! the experiment then no longer pays one verification per peer: CPU figures
//! measured with the pool are those of a process that shares work between
//! peers, not of N independent peers. [`SharedPool::sharing_only`] keeps the
//! memory saving (one copy of each stored packet per process) and still
//! verifies every copy. It is off unless the runtime passes one in
//! [`crate::Config::pool`]. Must not: hold protocol state or per-overlay data.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

const SHARDS: usize = 16;

type Shard = Mutex<HashMap<[u8; 32], Arc<[u8]>>>;

/// The shared pool; create one per process and give every overlay an `Arc` of it.
#[derive(Debug)]
pub struct SharedPool {
    shards: Vec<Shard>,
    capacity_per_shard: usize,
    trust_hits: bool,
}

/// A packet's identity in the pool.
pub type Digest32 = [u8; 32];

impl SharedPool {
    /// A pool holding up to `capacity` packets (a shard that fills up is cleared;
    /// overlays keep their `Arc`s, so nothing they hold is lost) whose hits
    /// skip signature verification.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            capacity_per_shard: capacity.div_ceil(SHARDS).max(1),
            trust_hits: true,
        }
    }

    /// A pool that only shares packet bytes: every overlay still verifies every packet.
    pub fn sharing_only(capacity: usize) -> Self {
        Self {
            trust_hits: false,
            ..Self::new(capacity)
        }
    }

    /// Whether a hit vouches for the signature.
    pub fn trusts_hits(&self) -> bool {
        self.trust_hits
    }

    /// The digest of a signed packet (signature included).
    pub fn digest(packet: &[u8]) -> Digest32 {
        Sha256::digest(packet).into()
    }

    fn shard(&self, d: &Digest32) -> &Shard {
        &self.shards[d[0] as usize % SHARDS]
    }

    /// The shared bytes of a packet verified before, if any.
    pub fn get(&self, d: &Digest32) -> Option<Arc<[u8]>> {
        let shard = self.shard(d).lock().unwrap_or_else(|e| e.into_inner());
        shard.get(d).cloned()
    }

    /// Records a verified packet and returns its shared bytes.
    pub fn insert(&self, d: Digest32, packet: &[u8]) -> Arc<[u8]> {
        let mut shard = self.shard(&d).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = shard.get(&d) {
            return a.clone();
        }
        if shard.len() >= self.capacity_per_shard {
            shard.clear();
        }
        let a: Arc<[u8]> = Arc::from(packet);
        shard.insert(d, a.clone());
        a
    }

    /// Packets held now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
