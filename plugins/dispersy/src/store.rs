//! The FullSync message store: what catch-up synchronisation offers.
//!
//! Owns: the signed FullSync messages an overlay holds, ordered by (global
//! time, author), deduplicated per (author, global time), and the range and
//! bloom-filter queries sync requests need. Once the overlay knows its peer
//! directory and community, messages by directory authors live once per
//! process in a [`CommunityTable`] and the store keeps only their keys, in a
//! compressed bitmap (`roaring`: one bit per message where they are dense,
//! two bytes where sparse); the others (authors outside the directory, an
//! author's second packet at one global time, times too large for a key, and
//! what came before the directory) are kept here as before, in a B-tree of
//! `Arc<[u8]>` packets. Queries see both as one store, in the same order.
//! Must not: verify, send, or know about peers.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use roaring::RoaringTreemap;

use crate::bloom;
use crate::crypto::SIGNATURE_LEN;
use crate::table::{CommunityTable, Entry, Ranks};

/// Key order: global time, then the first 8 bytes of the author's ed25519 key.
type Key = (u64, u64);

/// One stored message.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The message id of its meta-message.
    pub msg_id: u8,
    /// The whole signed packet.
    pub packet: Arc<[u8]>,
}

impl Stored {
    /// The packet's bloom key (from its signature).
    pub fn bloom_key(&self) -> [u8; 16] {
        let sig: &[u8; SIGNATURE_LEN] = self.packet[self.packet.len() - SIGNATURE_LEN..]
            .try_into()
            .expect("stored packets end in a signature");
        bloom::key_of(sig)
    }
}

/// A stored message as a query hands it out.
#[derive(Debug, Clone, Copy)]
pub struct MessageRef<'a> {
    /// The message id of its meta-message.
    pub msg_id: u8,
    /// The whole signed packet.
    pub packet: &'a Arc<[u8]>,
    /// Its bloom key.
    pub bloom_key: [u8; 16],
}

fn author_prefix(ed25519: &[u8; 32]) -> u64 {
    u64::from_be_bytes(ed25519[..8].try_into().expect("8 bytes"))
}

/// The store.
#[derive(Debug, Default)]
pub struct Store {
    /// Keys ([`Ranks::key`]) of the messages `table` holds for this store.
    compact: RoaringTreemap,
    /// The process's messages of this overlay's community, once attached.
    table: Option<Arc<CommunityTable>>,
    /// The messages kept here (see the module comment).
    map: BTreeMap<Key, Stored>,
    /// Messages of `map` per global time: windows are cut at whole global
    /// times, and walking these counts instead of the messages keeps a
    /// window O(distinct times) when thousands share one time.
    per_time: BTreeMap<u64, u32>,
}

impl Store {
    /// Number of messages.
    pub fn len(&self) -> usize {
        self.compact.len() as usize + self.map.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the messages of directory authors in `table` from now on. A
    /// store attached to another table before keeps what it held there as
    /// its own copies.
    pub fn attach(&mut self, table: Arc<CommunityTable>) {
        if let Some(old) = &self.table {
            if Arc::ptr_eq(old, &table) {
                return;
            }
            let entries = old.read();
            for k in &self.compact {
                let (t, r) = old.ranks().split(k);
                if let Some(e) = entries.get(k) {
                    self.map.insert(
                        (t, old.ranks().prefix(r)),
                        Stored {
                            msg_id: e.msg_id,
                            packet: e.packet.clone(),
                        },
                    );
                    *self.per_time.entry(t).or_default() += 1;
                }
            }
            drop(entries);
            self.compact.clear();
        }
        self.table = Some(table);
    }

    /// The key of a message in the attached table, if it can have one.
    fn key(&self, author: &[u8; 32], global_time: u64) -> Option<(&CommunityTable, u64)> {
        let table = self.table.as_deref()?;
        let ranks = table.ranks();
        let key = ranks.key(global_time, ranks.rank(author_prefix(author))?)?;
        Some((table, key))
    }

    /// Whether a message of `author` at `global_time` is held.
    ///
    /// Authors are told apart by the first 8 bytes of their ed25519 key: two
    /// distinct keys sharing them would need about 2^64 key generations.
    pub fn contains(&self, author: &[u8; 32], global_time: u64) -> bool {
        self.key(author, global_time)
            .is_some_and(|(_, k)| self.compact.contains(k))
            || self.map.contains_key(&(global_time, author_prefix(author)))
    }

    /// The attached table's copy of exactly these bytes as `author`'s
    /// message at `global_time`. Only verified packets enter the table, so
    /// a hit vouches for the signature as a trusting pool's hit does.
    pub fn shared_copy(
        &self,
        author: &[u8; 32],
        global_time: u64,
        data: &[u8],
    ) -> Option<Arc<[u8]>> {
        let (table, key) = self.key(author, global_time)?;
        table.same_packet(key, data)
    }

    /// Stores a message; false if one of that author at that time was held.
    pub fn insert(&mut self, author: &[u8; 32], global_time: u64, stored: Stored) -> bool {
        if self.contains(author, global_time) {
            return false;
        }
        if let Some((table, key)) = self.key(author, global_time)
            && table.offer(key, stored.msg_id, &stored.packet)
        {
            self.compact.insert(key);
            return true;
        }
        self.map
            .insert((global_time, author_prefix(author)), stored);
        *self.per_time.entry(global_time).or_default() += 1;
        true
    }

    /// Lowest and highest global time held.
    pub fn time_bounds(&self) -> Option<(u64, u64)> {
        let map = self
            .map
            .first_key_value()
            .zip(self.map.last_key_value())
            .map(|((a, _), (b, _))| (a.0, b.0));
        let compact = self.table.as_ref().and_then(|t| {
            let (lo, hi) = (self.compact.min()?, self.compact.max()?);
            Some((t.ranks().split(lo).0, t.ranks().split(hi).0))
        });
        match (map, compact) {
            (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
            (a, b) => a.or(b),
        }
    }

    /// Calls `f` with the messages of class `offset` of `modulo` (a power of
    /// two; see [`in_class`]) with global time in `[low, high]`, in (global
    /// time, author) order, until `f` breaks. With `start`, the walk begins
    /// at the first message at or after `(start_time, start_author)` and then
    /// wraps to the start, so each message is still visited once. Within one
    /// global time a class is a contiguous run of keys, so this visits only
    /// the class's messages (plus one lookup per global time).
    pub fn visit_class(
        &self,
        low: u64,
        high: u64,
        (modulo, offset): (u16, u16),
        start: Option<(u64, u64)>,
        mut f: impl FnMut(MessageRef<'_>) -> ControlFlow<()>,
    ) {
        let Some(bounds) = class_bounds(modulo, offset) else {
            return;
        };
        if low > high {
            return;
        }
        let entries = self.table.as_ref().map(|t| t.read());
        let walk = |from: Key,
                    until: Option<Key>,
                    f: &mut dyn FnMut(MessageRef<'_>) -> ControlFlow<()>|
         -> ControlFlow<()> {
            let mut compact = self
                .table
                .as_ref()
                .map(|t| CompactIter::new(&self.compact, t.ranks(), from, high, bounds))
                .into_iter()
                .flatten()
                .peekable();
            let mut kept = ClassIter::new(&self.map, from, high, bounds).peekable();
            let mut lookup = entries.as_ref().map(|e| e.walker());
            if let (Some(t), Some(lookup), true) = (&self.table, &mut lookup, self.map.is_empty()) {
                // Only the compact set (a simulation's usual case): no merge.
                for (k, key) in CompactIter::new(&self.compact, t.ranks(), from, high, bounds) {
                    if until.is_some_and(|u| k >= u) {
                        break;
                    }
                    if let Some(e) = lookup.get(key) {
                        f(entry_ref(e))?;
                    }
                }
                return ControlFlow::Continue(());
            }
            loop {
                let take_compact = match (compact.peek(), kept.peek()) {
                    (None, None) => return ControlFlow::Continue(()),
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (Some((a, _)), Some((b, _))) => a < b,
                };
                let item = if take_compact {
                    let (k, key) = compact.next().expect("peeked");
                    if until.is_some_and(|u| k >= u) {
                        return ControlFlow::Continue(());
                    }
                    let Some(e) = lookup.as_mut().and_then(|m| m.get(key)) else {
                        continue;
                    };
                    entry_ref(e)
                } else {
                    let (k, s) = kept.next().expect("peeked");
                    if until.is_some_and(|u| k >= u) {
                        return ControlFlow::Continue(());
                    }
                    MessageRef {
                        msg_id: s.msg_id,
                        packet: &s.packet,
                        bloom_key: s.bloom_key(),
                    }
                };
                f(item)?;
            }
        };
        match start {
            None => {
                let _ = walk((low, 0), None, &mut f);
            }
            Some(start) => {
                let start = (start.0.clamp(low, high), start.1);
                if walk(start, None, &mut f).is_continue() {
                    let _ = walk((low, 0), Some(start), &mut f);
                }
            }
        }
    }

    /// A window of about `count` messages starting at the first message with
    /// global time `>= from`: returns `(low, high)` covering whole global
    /// times, with `low = 0` at the start of the store and `high = u64::MAX`
    /// at its end, and the number of messages inside.
    pub fn window(&self, from: u64, count: usize) -> (u64, u64, usize) {
        let mut times = self.times_from(from);
        let Some((first, held)) = times.next() else {
            return (0, u64::MAX, 0);
        };
        let earlier_compact = self.table.as_ref().is_some_and(|t| {
            self.compact
                .min()
                .is_some_and(|k| t.ranks().split(k).0 < first)
        });
        let low = if !earlier_compact && self.per_time.range(..first).next().is_none() {
            0
        } else {
            first
        };
        let mut n = held as usize;
        let mut last = first;
        for (t, held) in times {
            if n >= count {
                return (low, last, n);
            }
            n += held as usize;
            last = t;
        }
        (low, u64::MAX, n)
    }

    /// The global times held from `from` on, each with its message count.
    fn times_from(&self, from: u64) -> impl Iterator<Item = (u64, u32)> + '_ {
        let mut compact = self
            .table
            .as_ref()
            .map(|t| CompactTimes::new(&self.compact, t.ranks(), from))
            .into_iter()
            .flatten()
            .peekable();
        let mut kept = self
            .per_time
            .range(from..)
            .map(|(&t, &n)| (t, n))
            .peekable();
        std::iter::from_fn(move || match (compact.peek(), kept.peek()) {
            (None, None) => None,
            (Some(_), None) => compact.next(),
            (None, Some(_)) => kept.next(),
            (Some(&(a, x)), Some(&(b, y))) => {
                if a < b {
                    compact.next()
                } else if b < a {
                    kept.next()
                } else {
                    compact.next();
                    kept.next();
                    Some((a, x + y))
                }
            }
        })
    }
}

fn entry_ref(e: &Entry) -> MessageRef<'_> {
    MessageRef {
        msg_id: e.msg_id,
        packet: &e.packet,
        bloom_key: e.bloom_key,
    }
}

/// Whether an author (the first 8 bytes of its ed25519 key, big-endian) is
/// in class `offset` of `modulo`: the top log2(modulo) bits of its prefix.
/// `modulo` is a power of two; 1 takes everyone.
pub fn in_class(author_prefix: u64, modulo: u16, offset: u16) -> bool {
    class_bounds(modulo, offset).is_some_and(|(lo, hi)| (lo..=hi).contains(&author_prefix))
}

/// The author-prefix range of class `offset` of `modulo`; `None` when
/// `modulo` is not a power of two or `offset` is not below it.
fn class_bounds(modulo: u16, offset: u16) -> Option<(u64, u64)> {
    if !modulo.is_power_of_two() || offset >= modulo {
        return None;
    }
    let bits = modulo.trailing_zeros();
    if bits == 0 {
        return Some((0, u64::MAX));
    }
    let shift = 64 - bits;
    let lo = u64::from(offset) << shift;
    Some((lo, lo | (u64::MAX >> bits)))
}

/// Walks one class's keys in the compact set, in order, from a (time,
/// author) on: within a global time the class is one contiguous run of
/// ranks; past its end the walk skips to the next global time.
struct CompactIter<'a> {
    it: roaring::treemap::Iter<'a>,
    ranks: &'a Ranks,
    high: u64,
    /// The class's ranks.
    rlo: u32,
    rhi: u32,
    done: bool,
}

impl<'a> CompactIter<'a> {
    fn new(
        set: &'a RoaringTreemap,
        ranks: &'a Ranks,
        from: Key,
        high: u64,
        (lo, hi): (u64, u64),
    ) -> Self {
        let mut it = set.iter();
        let (rlo, rhi, done) = match ranks.between(lo, hi) {
            Some((rlo, rhi)) => match ranks.time_start(from.0) {
                Some(k0) => {
                    let r = ranks.first_at_or_after(from.1).max(rlo);
                    match k0.checked_add(u64::from(r)) {
                        Some(k) => {
                            it.advance_to(k);
                            (rlo, rhi, false)
                        }
                        None => (0, 0, true),
                    }
                }
                None => (0, 0, true),
            },
            None => (0, 0, true),
        };
        Self {
            it,
            ranks,
            high,
            rlo,
            rhi,
            done,
        }
    }
}

impl Iterator for CompactIter<'_> {
    /// ((global time, author prefix), key).
    type Item = (Key, u64);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Some(k) = self.it.next() else {
                self.done = true;
                break;
            };
            let (t, r) = self.ranks.split(k);
            if t > self.high {
                self.done = true;
            } else if r < self.rlo {
                self.it.advance_to(k - u64::from(r) + u64::from(self.rlo));
            } else if r > self.rhi {
                match self.ranks.time_end(t).checked_add(1) {
                    Some(next) => self.it.advance_to(next),
                    None => self.done = true,
                }
            } else {
                return Some(((t, self.ranks.prefix(r)), k));
            }
        }
        None
    }
}

/// The distinct global times of the compact set from a time on, with counts.
struct CompactTimes<'a> {
    set: &'a RoaringTreemap,
    it: roaring::treemap::Iter<'a>,
    ranks: &'a Ranks,
    done: bool,
}

impl<'a> CompactTimes<'a> {
    fn new(set: &'a RoaringTreemap, ranks: &'a Ranks, from: u64) -> Self {
        let mut it = set.iter();
        let done = match ranks.time_start(from) {
            Some(k) => {
                it.advance_to(k);
                false
            }
            None => true,
        };
        Self {
            set,
            it,
            ranks,
            done,
        }
    }
}

impl Iterator for CompactTimes<'_> {
    type Item = (u64, u32);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let Some(k) = self.it.next() else {
            self.done = true;
            return None;
        };
        let t = self.ranks.split(k).0;
        let end = self.ranks.time_end(t);
        let n = self.set.range_cardinality(k..=end) as u32;
        match end.checked_add(1) {
            Some(next) => self.it.advance_to(next),
            None => self.done = true,
        }
        Some((t, n))
    }
}

/// Walks one class's keys of the kept map in order: within a global time
/// the class is one contiguous run of keys; between runs it seeks to the
/// next global time.
struct ClassIter<'a> {
    map: &'a BTreeMap<Key, Stored>,
    high: u64,
    bounds: (u64, u64),
    /// Where to look for the next run.
    seek: Option<Key>,
    run: Option<std::collections::btree_map::Range<'a, Key, Stored>>,
}

impl<'a> ClassIter<'a> {
    fn new(map: &'a BTreeMap<Key, Stored>, start: Key, high: u64, bounds: (u64, u64)) -> Self {
        Self {
            map,
            high,
            bounds,
            seek: Some(start),
            run: None,
        }
    }
}

impl<'a> Iterator for ClassIter<'a> {
    type Item = (Key, &'a Stored);

    fn next(&mut self) -> Option<Self::Item> {
        let (lo, hi) = self.bounds;
        loop {
            if let Some(run) = &mut self.run {
                if let Some((&k, v)) = run.next() {
                    return Some((k, v));
                }
                self.run = None;
            }
            let from = self.seek?;
            let Some((&(t, a), _)) = self.map.range(from..).next() else {
                self.seek = None;
                return None;
            };
            if t > self.high {
                self.seek = None;
                return None;
            }
            if a < lo {
                self.seek = Some((t, lo));
            } else if a > hi {
                self.seek = t.checked_add(1).map(|t| (t, 0));
            } else {
                self.run = Some(self.map.range((t, a)..=(t, hi)));
                self.seek = t.checked_add(1).map(|t| (t, 0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::MessageTable;

    fn msg() -> Stored {
        Stored {
            msg_id: 1,
            packet: Arc::from(vec![0u8; 100]),
        }
    }

    fn class(s: &Store, low: u64, high: u64, modulo: u16, offset: u16) -> usize {
        let mut n = 0;
        s.visit_class(low, high, (modulo, offset), None, |_| {
            n += 1;
            ControlFlow::Continue(())
        });
        n
    }

    fn class_from(s: &Store, low: u64, high: u64, m: (u16, u16), start: Key) -> usize {
        let mut n = 0;
        s.visit_class(low, high, m, Some(start), |_| {
            n += 1;
            ControlFlow::Continue(())
        });
        n
    }

    #[test]
    fn dedupe_and_windows() {
        let mut s = Store::default();
        for t in 1..=10u64 {
            for a in 0..3u8 {
                assert!(s.insert(&[a; 32], t, msg()));
            }
        }
        assert!(!s.insert(&[1; 32], 5, msg()));
        assert!(s.contains(&[2; 32], 7));
        assert!(!s.contains(&[2; 32], 11));
        assert_eq!(class(&s, 3, 4, 1, 0), 6);
        assert_eq!(class_from(&s, 3, 4, (1, 0), (4, 0)), 6);
        // Windows cover whole global times.
        assert_eq!(s.window(0, 4), (0, 2, 6));
        assert_eq!(s.window(9, 100), (9, u64::MAX, 6));
        assert_eq!(s.window(5, 3), (5, 5, 3));
    }

    #[test]
    fn classes_visit_exactly_their_authors_once_from_any_start() {
        let mut authors = Vec::new();
        for i in 0..64u64 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
            authors.push(key);
        }
        // Half the authors in the directory: both halves of the store.
        let table = MessageTable::new(authors[..32].iter().map(author_prefix));
        for attached in [false, true] {
            let mut s = Store::default();
            if attached {
                s.attach(table.community(&crate::CommunityId([0; 20])));
            }
            let mut keys = Vec::new();
            for t in [1u64, 1, 2, 5] {
                for a in &authors {
                    if s.insert(a, t, msg()) {
                        keys.push((t, author_prefix(a)));
                    }
                }
            }
            assert_eq!(s.compact.len(), if attached { 96 } else { 0 });
            for modulo in [1u16, 2, 8] {
                let mut seen = 0;
                for offset in 0..modulo {
                    let mut want: Vec<Key> = keys
                        .iter()
                        .copied()
                        .filter(|&(t, a)| (2..=5).contains(&t) && in_class(a, modulo, offset))
                        .collect();
                    want.sort_unstable();
                    let got = class(&s, 2, 5, modulo, offset);
                    assert_eq!(got, want.len(), "modulo {modulo} offset {offset}");
                    // From a start in the middle, wrapping round: each once.
                    let mid = want.get(want.len() / 2).copied().unwrap_or((3, 0));
                    assert_eq!(class_from(&s, 2, 5, (modulo, offset), mid), want.len());
                    seen += got;
                }
                assert_eq!(
                    seen, 128,
                    "the classes of modulo {modulo} cover times 2..=5"
                );
            }
        }
    }

    /// The store as first written: one B-tree of every message, walked.
    #[derive(Default)]
    struct Model(BTreeMap<Key, Stored>);

    impl Model {
        fn insert(&mut self, author: &[u8; 32], t: u64, s: Stored) -> bool {
            use std::collections::btree_map::Entry;
            match self.0.entry((t, author_prefix(author))) {
                Entry::Occupied(_) => false,
                Entry::Vacant(v) => {
                    v.insert(s);
                    true
                }
            }
        }

        fn window(&self, from: u64, count: usize) -> (u64, u64, usize) {
            let mut it = self.0.range((from, 0)..);
            let Some((&(first, _), _)) = it.next() else {
                return (0, u64::MAX, 0);
            };
            let low = if self.0.range(..(first, 0)).next().is_none() {
                0
            } else {
                first
            };
            let mut n = 1;
            let mut last = first;
            for (&(t, _), _) in it {
                if n >= count && t != last {
                    return (low, last, n);
                }
                n += 1;
                last = t;
            }
            (low, u64::MAX, n)
        }

        /// The class walk from `start`, wrapping: what `visit_class` must give.
        fn class(&self, low: u64, high: u64, m: (u16, u16), start: Option<Key>) -> Vec<Vec<u8>> {
            if low > high {
                return Vec::new();
            }
            let inside = |&(t, a): &Key| (low..=high).contains(&t) && in_class(a, m.0, m.1);
            let all: Vec<(Key, Vec<u8>)> = self
                .0
                .iter()
                .filter(|(k, _)| inside(k))
                .map(|(k, s)| (*k, s.packet.to_vec()))
                .collect();
            match start {
                None => all.into_iter().map(|(_, p)| p).collect(),
                Some(s) => {
                    let s = (s.0.clamp(low, high), s.1);
                    let (before, after): (Vec<_>, Vec<_>) =
                        all.into_iter().partition(|(k, _)| *k < s);
                    after.into_iter().chain(before).map(|(_, p)| p).collect()
                }
            }
        }
    }

    fn visit(s: &Store, low: u64, high: u64, m: (u16, u16), start: Option<Key>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        s.visit_class(low, high, m, start, |r| {
            assert_eq!(r.msg_id, r.packet[0]);
            let mut sig = [0u8; 64];
            sig.copy_from_slice(&r.packet[r.packet.len() - 64..]);
            assert_eq!(r.bloom_key, bloom::key_of(&sig));
            out.push(r.packet.to_vec());
            ControlFlow::Continue(())
        });
        out
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Store, author, global time, which of two packets.
        Insert(usize, usize, u64, bool),
        /// Store, table.
        Attach(usize, usize),
        /// Store, low, high, modulo exponent, offset, start (time, author), stop after.
        Visit(usize, u64, u64, u32, u16, Option<(u64, usize)>, usize),
        /// Store, from, count.
        Window(usize, u64, usize),
    }

    fn time() -> impl proptest::strategy::Strategy<Value = u64> {
        use proptest::prelude::*;
        // Small times, and times too large to share a key with a rank.
        prop_oneof![8 => 0u64..30, 1 => (u64::MAX - 2)..=u64::MAX, 1 => (1u64 << 61)..(1u64 << 61) + 2]
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            10 => (0..3usize, 0..12usize, time(), any::<bool>()).prop_map(|(s, a, t, v)| Op::Insert(s, a, t, v)),
            1 => (0..3usize, 0..2usize).prop_map(|(s, t)| Op::Attach(s, t)),
            3 => (0..3usize, time(), time(), 0..4u32, 0..8u16, proptest::option::of((time(), 0..12usize)), 1..40usize)
                .prop_map(|(s, lo, hi, m, o, st, stop)| Op::Visit(s, lo, hi, m, o, st, stop)),
            2 => (0..3usize, time(), 1..20usize).prop_map(|(s, f, c)| Op::Window(s, f, c)),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Three stores over two shared tables (authors 0..8 in the first
        /// directory, 4..10 in the second, 10 and 11 in neither), attached
        /// and re-attached at random, answer every query as the old store
        /// did: same messages, same order, same windows.
        #[test]
        fn the_compact_store_answers_as_the_old_one_did(ops in proptest::collection::vec(op(), 1..120)) {
            let authors: Vec<[u8; 32]> = (0..12u64)
                .map(|i| {
                    let mut k = [0u8; 32];
                    k[..8].copy_from_slice(&(i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
                    k
                })
                .collect();
            let tables = [
                MessageTable::new(authors[..8].iter().map(author_prefix)),
                MessageTable::new(authors[4..10].iter().map(author_prefix)),
            ];
            let community = crate::CommunityId([3; 20]);
            let mut stores: Vec<Store> = (0..3).map(|_| Store::default()).collect();
            let mut models: Vec<Model> = (0..3).map(|_| Model::default()).collect();
            for op in ops {
                match op {
                    Op::Insert(s, a, t, v) => {
                        let mut p = vec![1 + u8::from(v), a as u8];
                        p.extend_from_slice(&t.to_le_bytes());
                        let mut sig = [0u8; 64];
                        for (i, b) in sig.iter_mut().enumerate() {
                            *b = (t as u8) ^ (a as u8).wrapping_mul(31) ^ (i as u8) ^ u8::from(v);
                        }
                        p.extend_from_slice(&sig);
                        let st = Stored { msg_id: p[0], packet: Arc::from(p) };
                        let got = stores[s].insert(&authors[a], t, st.clone());
                        proptest::prop_assert_eq!(got, models[s].insert(&authors[a], t, st));
                    }
                    Op::Attach(s, t) => stores[s].attach(tables[t].community(&community)),
                    Op::Visit(s, lo, hi, m, o, start, stop) => {
                        let m = (1u16 << m, o % (1u16 << m));
                        let start = start.map(|(t, a)| (t, author_prefix(&authors[a]).wrapping_add(1)));
                        let want = models[s].class(lo, hi, m, start);
                        proptest::prop_assert_eq!(&visit(&stores[s], lo, hi, m, start), &want);
                        // Breaking off early stops at once.
                        let mut n = 0;
                        stores[s].visit_class(lo, hi, m, start, |_| {
                            n += 1;
                            if n == stop { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
                        });
                        proptest::prop_assert_eq!(n, want.len().min(stop));
                    }
                    Op::Window(s, from, count) => {
                        proptest::prop_assert_eq!(stores[s].window(from, count), models[s].window(from, count));
                    }
                }
                for (s, m) in stores.iter().zip(&models) {
                    proptest::prop_assert_eq!(s.len(), m.0.len());
                    let bounds = m.0.first_key_value().zip(m.0.last_key_value()).map(|(a, b)| (a.0.0, b.0.0));
                    proptest::prop_assert_eq!(s.time_bounds(), bounds);
                    for &(t, a) in m.0.keys() {
                        let author = authors.iter().find(|k| author_prefix(k) == a).expect("one of ours");
                        proptest::prop_assert!(s.contains(author, t));
                        proptest::prop_assert!(!s.contains(author, t.wrapping_add(7)) || m.0.contains_key(&(t.wrapping_add(7), a)));
                    }
                }
            }
        }
    }
}
