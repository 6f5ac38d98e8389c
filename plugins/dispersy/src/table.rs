//! The process-wide table of FullSync messages that every overlay of a
//! process shares: one copy of each message, so that each overlay's
//! [`crate::store::Store`] only remembers *which* messages it holds, as a
//! compressed bitmap of keys.
//!
//! Owns: the author ranks of a peer directory (its authors' 8-byte key
//! prefixes, sorted: a rank keeps the store's (global time, author) order and
//! a sync class is a range of ranks), the key of a message (global time and
//! author rank packed in a `u64`), and per community the message behind each
//! key (its packet, bloom key and message id; a global time many authors
//! share as an array by rank, read in order by sync walks). Entries are added and never
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

type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// A global time holding more than 1/N of the directory's authors gets a
/// dense array by rank (40 bytes a row): at most 40·N bytes a message when
/// it turns dense, less as it fills.
const DENSE_WHEN_ONE_IN: usize = 8;

/// The entries of one community by key. A global time that many authors
/// share (a scale run's rumors, all published at once) keeps its entries in
/// an array by rank, so a sync request's walk over it reads memory in order
/// instead of probing a hash table once per message; sparse times stay in a
/// hash map.
#[derive(Debug, Default)]
pub struct Entries {
    sparse: KeyMap<Entry>,
    /// Entries of `sparse` per global time.
    per_time: KeyMap<u32>,
    /// Dense global times: the entry of each rank.
    dense: KeyMap<Box<[Option<Entry>]>>,
    bits: u32,
    authors: usize,
    len: usize,
}

impl Entries {
    fn new(ranks: &Ranks) -> Self {
        Self {
            bits: ranks.bits,
            authors: ranks.len(),
            ..Self::default()
        }
    }

    fn split(&self, key: u64) -> (u64, usize) {
        (key >> self.bits, (key & ((1u64 << self.bits) - 1)) as usize)
    }

    /// The entry at `key`.
    pub fn get(&self, key: u64) -> Option<&Entry> {
        if !self.dense.is_empty() {
            let (t, r) = self.split(key);
            if let Some(block) = self.dense.get(&t) {
                return block.get(r)?.as_ref();
            }
        }
        self.sparse.get(&key)
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A reader for keys in ascending order: it looks each global time up
    /// once.
    pub fn walker(&self) -> Walker<'_> {
        Walker {
            entries: self,
            time: None,
            block: None,
        }
    }

    /// The entry at `key`, inserted as `make()` when there is none.
    fn get_or_insert(&mut self, key: u64, make: impl FnOnce() -> Entry) -> &Entry {
        let (t, r) = self.split(key);
        if self.dense.contains_key(&t) {
            let slot = &mut self.dense.get_mut(&t).expect("checked")[r];
            if slot.is_none() {
                self.len += 1;
            }
            return slot.get_or_insert_with(make);
        }
        if !self.sparse.contains_key(&key) {
            self.len += 1;
            let n = self.per_time.entry(t).or_default();
            *n += 1;
            if r < self.authors && *n as usize > self.authors / DENSE_WHEN_ONE_IN {
                self.per_time.remove(&t);
                let mut block: Box<[Option<Entry>]> = (0..self.authors).map(|_| None).collect();
                let start = t << self.bits;
                for rank in 0..self.authors {
                    if let Some(e) = self.sparse.remove(&(start | rank as u64)) {
                        block[rank] = Some(e);
                    }
                }
                block[r] = Some(make());
                self.dense.insert(t, block);
                return self.dense[&t][r].as_ref().expect("just set");
            }
            self.sparse.insert(key, make());
        }
        &self.sparse[&key]
    }
}

/// Looks up keys in ascending order (see [`Entries::walker`]).
pub struct Walker<'a> {
    entries: &'a Entries,
    time: Option<u64>,
    block: Option<&'a [Option<Entry>]>,
}

impl<'a> Walker<'a> {
    /// The entry at `key`.
    pub fn get(&mut self, key: u64) -> Option<&'a Entry> {
        let e = self.entries;
        if e.dense.is_empty() {
            return e.sparse.get(&key);
        }
        let (t, r) = e.split(key);
        if self.time != Some(t) {
            self.time = Some(t);
            self.block = e.dense.get(&t).map(|b| &b[..]);
        }
        match self.block {
            Some(b) => b.get(r)?.as_ref(),
            None => e.sparse.get(&key),
        }
    }
}

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
            entries: RwLock::new(Entries::new(&ranks)),
            ranks,
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
        if let Some(e) = self.read().get(key) {
            return same(e);
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let e = entries.get_or_insert(key, || Entry::new(msg_id, packet.clone()));
        same(e)
    }

    /// The table's packet at `key` when it is exactly `data`.
    pub fn same_packet(&self, key: u64, data: &[u8]) -> Option<Arc<[u8]>> {
        let entries = self.read();
        let e = entries.get(key)?;
        (e.packet[..] == *data).then(|| e.packet.clone())
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
        assert!(Arc::ptr_eq(&t.read().get(5).unwrap().packet, &a));
    }

    #[test]
    fn a_crowded_global_time_turns_dense_and_reads_the_same() {
        let table = MessageTable::new(0..64u64);
        let t = table.community(&CommunityId([3; 20]));
        let r = t.ranks();
        let key = |time, rank| r.key(time, rank).unwrap();
        let packets: Vec<Arc<[u8]>> = (0..64u8).map(|i| Arc::from(vec![i; 80])).collect();
        // Time 5: every author (dense past 64 / 8); time 9: two (sparse).
        for (i, p) in packets.iter().enumerate() {
            assert!(t.offer(key(5, i as u32), 1, p));
        }
        for i in [3u32, 40] {
            assert!(t.offer(key(9, i), 1, &packets[i as usize]));
        }
        let e = t.read();
        assert!(e.dense.contains_key(&5) && !e.dense.contains_key(&9));
        assert!(e.sparse.len() == 2 && e.per_time.len() == 1);
        assert_eq!(e.len(), 66);
        let mut w = e.walker();
        for i in 0..64u32 {
            let got = w.get(key(5, i)).unwrap();
            assert!(Arc::ptr_eq(&got.packet, &packets[i as usize]));
        }
        assert!(w.get(key(9, 4)).is_none());
        assert_eq!(w.get(key(9, 40)).unwrap().packet[0], 40);
        assert!(e.get(key(5, 7)).is_some() && e.get(key(6, 7)).is_none());
        drop(e);
        assert!(t.offer(key(5, 7), 1, &Arc::from(vec![7u8; 80])));
        assert!(!t.offer(key(5, 7), 1, &packets[8]));
        assert_eq!(t.len(), 66);
        assert_eq!(
            t.same_packet(key(5, 9), &[9u8; 80])
                .map(|p| Arc::ptr_eq(&p, &packets[9])),
            Some(true)
        );
        assert!(t.same_packet(key(5, 9), &[8u8; 80]).is_none());
    }
}
