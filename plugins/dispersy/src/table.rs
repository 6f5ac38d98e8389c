//! The process-wide table of FullSync messages that every overlay of a
//! process shares: one copy of each message, so that each overlay's
//! [`crate::store::Store`] only remembers *which* messages it holds, as a
//! compressed bitmap of keys.
//!
//! Owns: the author ranks of a peer directory (its authors' 8-byte key
//! prefixes, sorted: a rank keeps the store's (global time, author) order and
//! a sync class is a range of ranks), the key of a message (global time and
//! author rank packed in a `u64`), and per community the message behind each
//! key (its packet, bloom key and message id). Entries are added and never
//! removed: stores never forget a message either. Must not: know which
//! overlay holds what, verify signatures, or send.
//!
//! Why: with 10,000 simulated instances each holding the same 10,000 rumors,
//! a B-tree entry per message per instance (about 60 bytes) was 6 GB; a
//! bitmap of keys is one bit per message at that density.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

use crate::bloom;
use crate::crypto::{CommunityId, SIGNATURE_LEN};

/// The authors of a directory, sorted by key prefix.
#[derive(Debug)]
pub struct Ranks {
    /// Distinct prefixes, ascending: rank `r` is `prefixes[r]`.
    prefixes: Vec<u64>,
    /// Bits of a key that hold the rank.
    bits: u32,
}

impl Default for Ranks {
    fn default() -> Self {
        Self::new([])
    }
}

impl Ranks {
    /// The ranks of these authors (prefixes in any order, repeats allowed:
    /// the store tells authors apart by prefix, so one prefix is one author).
    pub fn new(prefixes: impl IntoIterator<Item = u64>) -> Self {
        let mut prefixes: Vec<u64> = prefixes.into_iter().collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        let bits = (usize::BITS - prefixes.len().saturating_sub(1).leading_zeros()).max(1);
        Self { prefixes, bits }
    }

    /// Number of ranked authors.
    pub fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// Whether no author is ranked.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// The rank of an author prefix, if ranked.
    pub fn rank(&self, prefix: u64) -> Option<u32> {
        self.prefixes.binary_search(&prefix).ok().map(|r| r as u32)
    }

    /// The prefix of rank `r`.
    pub fn prefix(&self, r: u32) -> u64 {
        self.prefixes[r as usize]
    }

    /// The first rank whose prefix is `>= prefix` (may be `len()`).
    pub fn first_at_or_after(&self, prefix: u64) -> u32 {
        self.prefixes.partition_point(|&p| p < prefix) as u32
    }

    /// The ranks whose prefixes lie in `[lo, hi]`, or `None` when none do.
    pub fn between(&self, lo: u64, hi: u64) -> Option<(u32, u32)> {
        let first = self.first_at_or_after(lo);
        let end = self.prefixes.partition_point(|&p| p <= hi) as u32;
        (first < end).then(|| (first, end - 1))
    }

    /// The key of (global time, rank), or `None` when the time does not fit
    /// beside the rank in 64 bits (such a message is stored the old way).
    pub fn key(&self, global_time: u64, rank: u32) -> Option<u64> {
        (global_time >> (64 - self.bits) == 0).then(|| global_time << self.bits | u64::from(rank))
    }

    /// The first key of a global time (`None` past the last one that fits).
    pub fn time_start(&self, global_time: u64) -> Option<u64> {
        self.key(global_time, 0)
    }

    /// The last key of a global time.
    pub fn time_end(&self, global_time: u64) -> u64 {
        global_time << self.bits | ((1u64 << self.bits) - 1)
    }

    /// (global time, rank) of a key.
    pub fn split(&self, key: u64) -> (u64, u32) {
        (key >> self.bits, (key & ((1u64 << self.bits) - 1)) as u32)
    }
}

/// One message in the table.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The whole signed packet.
    pub packet: Arc<[u8]>,
    /// Its bloom key (kept here so a sync request does not read the packet).
    pub bloom_key: [u8; 16],
    /// The message id of its meta-message.
    pub msg_id: u8,
}

impl Entry {
    /// The entry of a stored packet (which ends in its signature).
    pub fn new(msg_id: u8, packet: Arc<[u8]>) -> Self {
        let sig: &[u8; SIGNATURE_LEN] = packet[packet.len() - SIGNATURE_LEN..]
            .try_into()
            .expect("stored packets end in a signature");
        Self {
            bloom_key: bloom::key_of(sig),
            packet,
            msg_id,
        }
    }
}

/// Keys are already well spread in their low bits only; mix them.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Entries = HashMap<u64, Entry, BuildHasherDefault<KeyHasher>>;

/// The messages of one community, shared by the stores of every overlay of
/// the process in that community.
#[derive(Debug)]
pub struct CommunityTable {
    ranks: Arc<Ranks>,
    entries: RwLock<Entries>,
}

impl CommunityTable {
    /// An empty table over `ranks`.
    pub fn new(ranks: Arc<Ranks>) -> Self {
        Self {
            ranks,
            entries: RwLock::new(Entries::default()),
        }
    }

    /// The author ranks its keys use.
    pub fn ranks(&self) -> &Ranks {
        &self.ranks
    }

    /// Offers the message at `key`: true when the table now holds exactly
    /// these bytes there (it was empty or held the same packet), false when
    /// it holds another packet (an author that signed two messages with one
    /// global time: the caller keeps its own copy).
    pub fn offer(&self, key: u64, msg_id: u8, packet: &Arc<[u8]>) -> bool {
        let same = |e: &Entry| Arc::ptr_eq(&e.packet, packet) || e.packet[..] == packet[..];
        if let Some(e) = self.read().get(&key) {
            return same(e);
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let e = entries
            .entry(key)
            .or_insert_with(|| Entry::new(msg_id, packet.clone()));
        same(e)
    }

    /// Read access to the entries (hold it for a whole walk, not per message).
    pub fn read(&self) -> RwLockReadGuard<'_, Entries> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The tables of one peer directory, one per community (created on first use).
#[derive(Debug, Default)]
pub struct MessageTable {
    ranks: Arc<Ranks>,
    communities: Mutex<Vec<(CommunityId, Arc<CommunityTable>)>>,
}

impl MessageTable {
    /// A table whose keys rank these author prefixes.
    pub fn new(prefixes: impl IntoIterator<Item = u64>) -> Self {
        Self {
            ranks: Arc::new(Ranks::new(prefixes)),
            communities: Mutex::new(Vec::new()),
        }
    }

    /// The author ranks.
    pub fn ranks(&self) -> &Arc<Ranks> {
        &self.ranks
    }

    /// The table of `community` (made empty the first time).
    pub fn community(&self, community: &CommunityId) -> Arc<CommunityTable> {
        let mut all = self
            .communities
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, t)) = all.iter().find(|(c, _)| c == community) {
            return t.clone();
        }
        let t = Arc::new(CommunityTable::new(self.ranks.clone()));
        all.push((*community, t.clone()));
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_keep_prefix_order_and_keys_keep_time_order() {
        let r = Ranks::new([30, 10, 20, 10]);
        assert_eq!(r.len(), 3);
        assert_eq!(r.bits, 2);
        assert_eq!(
            (r.rank(10), r.rank(20), r.rank(30), r.rank(15)),
            (Some(0), Some(1), Some(2), None)
        );
        assert_eq!(r.between(11, 30), Some((1, 2)));
        assert_eq!(r.between(31, u64::MAX), None);
        assert_eq!(r.first_at_or_after(21), 2);
        let k = |t, a| r.key(t, a).unwrap();
        assert!(k(1, 2) < k(2, 0));
        assert_eq!(r.split(k(7, 2)), (7, 2));
        assert_eq!(r.time_end(7), k(7, 3));
        // A time too large to pack beside the rank has no key.
        assert_eq!(r.key(1 << 62, 0), None);
        assert!(r.key((1 << 62) - 1, 3).is_some());
        assert_eq!(Ranks::new([5]).bits, 1);
        assert_eq!(Ranks::default().bits, 1);
        assert_eq!(Ranks::default().time_start(3), Some(6));
        assert_eq!(Ranks::new(0..1025).bits, 11);
    }

    #[test]
    fn one_key_holds_one_packet() {
        let table = MessageTable::new([1, 2]);
        let t = table.community(&CommunityId([1; 20]));
        assert!(Arc::ptr_eq(&t, &table.community(&CommunityId([1; 20]))));
        assert!(!Arc::ptr_eq(&t, &table.community(&CommunityId([2; 20]))));
        let a: Arc<[u8]> = Arc::from(vec![7u8; 80]);
        let same: Arc<[u8]> = Arc::from(vec![7u8; 80]);
        let other: Arc<[u8]> = Arc::from(vec![8u8; 80]);
        assert!(t.offer(5, 1, &a));
        assert!(t.offer(5, 1, &same), "equal bytes are the same message");
        assert!(!t.offer(5, 1, &other), "another packet with the same key");
        assert!(t.offer(6, 1, &other));
        assert_eq!(t.len(), 2);
        assert!(Arc::ptr_eq(&t.read()[&5].packet, &a));
    }
}
