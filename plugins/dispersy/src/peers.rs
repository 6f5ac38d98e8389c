//! Peer bookkeeping: the shared directory and each overlay's peer table.
//!
//! Owns: O(1) lookup of peers by address and by key, the set of peers an
//! overlay knows, and random choice among them. A [`PeerDirectory`] (the sync
//! server's table: address, key, instance id, with keys decompressed once) is
//! immutable and shared by `Arc` between all overlays of a process, so an
//! overlay that knows 999 directory peers pays a bitset and a 4-byte index per
//! peer, not a copy of each entry. The directory also carries the process's
//! table of FullSync messages by its authors ([`MessageTable`]). Peers found by the walker live in the
//! overlay's own small table. Must not: do I/O or read clocks (times are given).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ed25519_dalek::VerifyingKey;

use crate::crypto::PublicKey;
use crate::error::DecodeError;
use crate::table::MessageTable;

/// A public key with its decompressed ed25519 key, shared between tables.
#[derive(Debug, Clone)]
pub struct PeerKey {
    /// The serialised key.
    pub public_key: PublicKey,
    /// The decompressed verification key.
    pub verifying: VerifyingKey,
}

impl PeerKey {
    /// Decompresses `public_key`.
    pub fn new(public_key: PublicKey) -> Result<Self, DecodeError> {
        Ok(Self {
            verifying: public_key.verifying_key()?,
            public_key,
        })
    }
}

/// Hashes an ed25519 key by 8 of its bytes: keys are uniformly random, so
/// those are a hash already, and every signed message a simulated overlay
/// receives looks its author up here (SipHash over 32 bytes showed in
/// profiles). Lookups take keys from packets but only the directory inserts,
/// so chosen keys cannot grow a bucket.
#[derive(Default)]
pub struct KeyBytesHasher(u64);

impl Hasher for KeyBytesHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut b = [0u8; 8];
        let n = bytes.len().min(8);
        b[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(b);
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = self.0.rotate_left(29) ^ n as u64;
    }
}

/// One row of the sync server's peer table.
#[derive(Debug, Clone)]
pub struct DirectoryEntry {
    /// Where the instance's overlay listens.
    pub addr: SocketAddr,
    /// Its key.
    pub key: PeerKey,
    /// Its experiment instance id.
    pub instance_id: u32,
}

/// An immutable table of peers shared by all overlays of a process (`Arc`).
#[derive(Debug, Default)]
pub struct PeerDirectory {
    entries: Vec<DirectoryEntry>,
    by_addr: HashMap<SocketAddr, u32>,
    by_key: HashMap<[u8; 32], u32, BuildHasherDefault<KeyBytesHasher>>,
    by_instance: HashMap<u32, u32>,
    /// The FullSync messages the overlays using this directory share.
    messages: MessageTable,
}

impl PeerDirectory {
    /// Builds the directory; fails on an invalid key. A repeated address or key keeps the first row.
    pub fn new(
        rows: impl IntoIterator<Item = (SocketAddr, PublicKey, u32)>,
    ) -> Result<Self, DecodeError> {
        let mut dir = Self::default();
        for (addr, public_key, instance_id) in rows {
            let key = PeerKey::new(public_key)?;
            let idx = dir.entries.len() as u32;
            if dir.by_addr.contains_key(&addr)
                || dir.by_key.contains_key(public_key.ed25519_bytes())
            {
                continue;
            }
            dir.by_addr.insert(addr, idx);
            dir.by_key.insert(*public_key.ed25519_bytes(), idx);
            dir.by_instance.entry(instance_id).or_insert(idx);
            dir.entries.push(DirectoryEntry {
                addr,
                key,
                instance_id,
            });
        }
        dir.messages = MessageTable::new(dir.entries.iter().map(|e| {
            let k = e.key.public_key.ed25519_bytes();
            u64::from_be_bytes(k[..8].try_into().expect("8 bytes"))
        }));
        Ok(dir)
    }

    /// The FullSync messages of this directory's authors, shared by the
    /// stores of every overlay that uses it ([`crate::store::Store::attach`]).
    pub fn messages(&self) -> &MessageTable {
        &self.messages
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All rows, in insertion order.
    pub fn entries(&self) -> &[DirectoryEntry] {
        &self.entries
    }

    /// Row index of an address.
    pub fn index_of_addr(&self, addr: &SocketAddr) -> Option<u32> {
        self.by_addr.get(addr).copied()
    }

    /// Row index of an instance id.
    pub fn index_of_instance(&self, instance_id: u32) -> Option<u32> {
        self.by_instance.get(&instance_id).copied()
    }

    /// Row index of an ed25519 key.
    pub fn index_of_key(&self, ed25519: &[u8; 32]) -> Option<u32> {
        self.by_key.get(ed25519).copied()
    }
}

/// A handle to a peer in one overlay's table (a directory row or a local row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerRef(u32);

const LOCAL: u32 = 1 << 31;

/// A peer the overlay found itself (walker, `add_peer`).
#[derive(Debug, Clone)]
struct LocalPeer {
    addr: SocketAddr,
    key: Option<Arc<PeerKey>>,
    instance_id: Option<u32>,
    last_seen: Option<Instant>,
    known: bool,
}

/// What the table tells about a peer.
#[derive(Debug, Clone, Copy)]
pub struct PeerInfo<'a> {
    /// Its address.
    pub addr: SocketAddr,
    /// Its key, once known.
    pub key: Option<&'a PeerKey>,
    /// Its instance id, when it came from the sync server's table.
    pub instance_id: Option<u32>,
}

/// One overlay's peers.
#[derive(Debug, Default)]
pub struct PeerTable {
    dir: Option<Arc<PeerDirectory>>,
    dir_known: Vec<u64>,
    local: Vec<LocalPeer>,
    local_by_addr: HashMap<SocketAddr, u32>,
    known: Vec<PeerRef>,
}

impl PeerTable {
    /// Uses `dir` for directory lookups (replacing a previous directory forgets its peers).
    pub fn set_directory(&mut self, dir: Arc<PeerDirectory>) {
        if let Some(old) = &self.dir
            && Arc::ptr_eq(old, &dir)
        {
            return;
        }
        self.known.retain(|r| r.0 & LOCAL != 0);
        self.dir_known = vec![0; dir.len().div_ceil(64)];
        // A peer met before the directory arrived (e.g. its introduction
        // request came first) is the same peer as its directory row: keep one.
        let local = &mut self.local;
        let local_by_addr = &mut self.local_by_addr;
        let mut merged = Vec::new();
        self.known.retain(|r| {
            let p = &mut local[(r.0 & !LOCAL) as usize];
            let Some(idx) = dir.index_of_addr(&p.addr) else {
                return true;
            };
            let same_key = p
                .key
                .as_ref()
                .is_none_or(|k| dir.entries[idx as usize].key.public_key == k.public_key);
            if same_key {
                p.known = false;
                local_by_addr.remove(&p.addr);
                merged.push(idx);
            }
            !same_key
        });
        self.dir = Some(dir);
        for idx in merged {
            self.know_directory_row(idx);
        }
    }

    /// The shared directory, if any.
    pub fn directory(&self) -> Option<&Arc<PeerDirectory>> {
        self.dir.as_ref()
    }

    /// Marks directory row `idx` as known; false if it already was or does not exist.
    pub fn know_directory_row(&mut self, idx: u32) -> bool {
        let Some(dir) = &self.dir else { return false };
        if idx as usize >= dir.len() {
            return false;
        }
        let (w, b) = ((idx / 64) as usize, idx % 64);
        if self.dir_known[w] & (1 << b) != 0 {
            return false;
        }
        self.dir_known[w] |= 1 << b;
        self.known.push(PeerRef(idx));
        true
    }

    /// Finds a peer (known or not) by address.
    pub fn lookup(&self, addr: &SocketAddr) -> Option<PeerRef> {
        if let Some(&i) = self.local_by_addr.get(addr) {
            return Some(PeerRef(i | LOCAL));
        }
        self.dir
            .as_ref()
            .and_then(|d| d.index_of_addr(addr))
            .map(PeerRef)
    }

    /// Whether `r` is a known peer (one the overlay talks to).
    pub fn is_known(&self, r: PeerRef) -> bool {
        if r.0 & LOCAL != 0 {
            self.local
                .get((r.0 & !LOCAL) as usize)
                .is_some_and(|p| p.known)
        } else {
            let (w, b) = ((r.0 / 64) as usize, r.0 % 64);
            self.dir_known.get(w).is_some_and(|x| x & (1 << b) != 0)
        }
    }

    /// What the table knows about `r`.
    pub fn info(&self, r: PeerRef) -> PeerInfo<'_> {
        if r.0 & LOCAL != 0 {
            let p = &self.local[(r.0 & !LOCAL) as usize];
            PeerInfo {
                addr: p.addr,
                key: p.key.as_deref(),
                instance_id: p.instance_id,
            }
        } else {
            let e = &self
                .dir
                .as_ref()
                .expect("directory ref without directory")
                .entries[r.0 as usize];
            PeerInfo {
                addr: e.addr,
                key: Some(&e.key),
                instance_id: Some(e.instance_id),
            }
        }
    }

    /// Adds or updates a local peer and marks it known. Returns the ref and
    /// whether it became known just now. A peer already in the directory is
    /// marked known there instead (the directory's instance id wins).
    pub fn add(
        &mut self,
        addr: SocketAddr,
        key: Option<Arc<PeerKey>>,
        instance_id: Option<u32>,
        now: Option<Instant>,
    ) -> (PeerRef, bool) {
        if !self.local_by_addr.contains_key(&addr)
            && let Some(idx) = self.dir.as_ref().and_then(|d| d.index_of_addr(&addr))
        {
            let same_key = match (&key, self.dir.as_ref()) {
                (Some(k), Some(d)) => d.entries[idx as usize].key.public_key == k.public_key,
                _ => true,
            };
            if same_key {
                let new = self.know_directory_row(idx);
                return (PeerRef(idx), new);
            }
        }
        match self.local_by_addr.get(&addr) {
            Some(&i) => {
                let p = &mut self.local[i as usize];
                if key.is_some() {
                    p.key = key;
                }
                if instance_id.is_some() {
                    p.instance_id = instance_id;
                }
                if now.is_some() {
                    p.last_seen = now;
                }
                let new = !p.known;
                if new {
                    p.known = true;
                    self.known.push(PeerRef(i | LOCAL));
                }
                (PeerRef(i | LOCAL), new)
            }
            None => {
                let peer = LocalPeer {
                    addr,
                    key,
                    instance_id,
                    last_seen: now,
                    known: true,
                };
                // A forgotten peer's row is reused, so the table grows with
                // the peers known at once, not with every address ever seen.
                let i = match self.local.iter().position(|p| !p.known) {
                    Some(free) => {
                        let old = std::mem::replace(&mut self.local[free], peer);
                        if self.local_by_addr.get(&old.addr) == Some(&(free as u32)) {
                            self.local_by_addr.remove(&old.addr);
                        }
                        free as u32
                    }
                    None => {
                        self.local.push(peer);
                        (self.local.len() - 1) as u32
                    }
                };
                self.local_by_addr.insert(addr, i);
                self.known.push(PeerRef(i | LOCAL));
                (PeerRef(i | LOCAL), true)
            }
        }
    }

    /// Records that `r` was heard from.
    pub fn touch(&mut self, r: PeerRef, now: Instant) {
        if r.0 & LOCAL != 0
            && let Some(p) = self.local.get_mut((r.0 & !LOCAL) as usize)
        {
            p.last_seen = Some(now);
        }
    }

    /// Forgets local peers not heard from since `cutoff` (directory peers stay).
    /// Returns how many were dropped.
    pub fn expire(&mut self, cutoff: Instant) -> usize {
        let before = self.known.len();
        let local = &mut self.local;
        self.known.retain(|r| {
            if r.0 & LOCAL == 0 {
                return true;
            }
            let p = &mut local[(r.0 & !LOCAL) as usize];
            let keep = p.last_seen.is_none_or(|t| t >= cutoff);
            if !keep {
                p.known = false;
            }
            keep
        });
        before - self.known.len()
    }

    /// The known peers, in the order they became known.
    pub fn known(&self) -> &[PeerRef] {
        &self.known
    }

    /// Rows of the overlay's own table (known or forgotten).
    pub fn local_rows(&self) -> usize {
        self.local.len()
    }

    /// Number of known peers.
    pub fn known_count(&self) -> usize {
        self.known.len()
    }

    /// A directory row's key and instance id by ed25519 bytes, in O(1).
    pub fn directory_key(&self, ed: &[u8; 32]) -> Option<(&PeerKey, u32)> {
        let d = self.dir.as_ref()?;
        let e = &d.entries[d.index_of_key(ed)? as usize];
        Some((&e.key, e.instance_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    fn key(i: u8) -> PublicKey {
        *Keypair::from_seed(&[i; 32]).public()
    }

    #[test]
    fn directory_and_local_lookups() {
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let dir = Arc::new(
            PeerDirectory::new((1..=3).map(|i| (addr(i), key(i as u8), u32::from(i)))).unwrap(),
        );
        let mut t = PeerTable::default();
        t.set_directory(dir);
        assert_eq!(t.known_count(), 0);
        let r = t.lookup(&addr(2)).unwrap();
        assert!(!t.is_known(r));
        assert!(t.know_directory_row(1));
        assert!(t.is_known(r));
        assert_eq!(t.info(r).instance_id, Some(2));
        // Adding a directory peer by address marks the row, no local copy.
        let (r3, new) = t.add(addr(3), None, None, None);
        assert!(new && t.is_known(r3) && t.info(r3).instance_id == Some(3));
        let (r9, new) = t.add(addr(9), None, Some(9), None);
        assert!(new && t.info(r9).instance_id == Some(9));
        assert_eq!(t.known_count(), 3);
        assert_eq!(t.lookup(&addr(9)), Some(r9));
    }
}
