//! The FullSync message store: what catch-up synchronisation offers.
//!
//! Owns: the signed FullSync packets an overlay holds, ordered by (global
//! time, author), deduplicated per (author, global time), and the range and
//! bloom-filter queries sync requests need. Packets are `Arc<[u8]>` so a
//! process-wide [`crate::pool::SharedPool`] can share one copy between
//! overlays. Must not: verify, send, or know about peers.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::bloom;
use crate::crypto::SIGNATURE_LEN;

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

fn author_prefix(ed25519: &[u8; 32]) -> u64 {
    u64::from_be_bytes(ed25519[..8].try_into().expect("8 bytes"))
}

/// The store.
#[derive(Debug, Default)]
pub struct Store {
    map: BTreeMap<Key, Stored>,
    /// Messages held per global time: windows are cut at whole global
    /// times, and walking these counts instead of the messages keeps a
    /// window O(distinct times) when thousands share one time.
    per_time: BTreeMap<u64, u32>,
}

impl Store {
    /// Number of messages.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether a message of `author` at `global_time` is held.
    ///
    /// Authors are told apart by the first 8 bytes of their ed25519 key: two
    /// distinct keys sharing them would need about 2^64 key generations.
    pub fn contains(&self, author: &[u8; 32], global_time: u64) -> bool {
        self.map.contains_key(&(global_time, author_prefix(author)))
    }

    /// Stores a message; false if one of that author at that time was held.
    pub fn insert(&mut self, author: &[u8; 32], global_time: u64, stored: Stored) -> bool {
        use std::collections::btree_map::Entry;
        match self.map.entry((global_time, author_prefix(author))) {
            Entry::Occupied(_) => false,
            Entry::Vacant(v) => {
                v.insert(stored);
                *self.per_time.entry(global_time).or_default() += 1;
                true
            }
        }
    }

    /// Lowest and highest global time held.
    pub fn time_bounds(&self) -> Option<(u64, u64)> {
        Some((
            self.map.first_key_value()?.0.0,
            self.map.last_key_value()?.0.0,
        ))
    }

    /// The messages of class `offset` of `modulo` (a power of two; see
    /// [`in_class`]) with global time in `[low, high]`, from `(start_time,
    /// start_author)` on and then wrapping to the start. Within one global
    /// time a class is a contiguous run of keys, so this visits only the
    /// class's messages (plus one lookup per global time).
    pub fn class_from(
        &self,
        low: u64,
        high: u64,
        modulo: u16,
        offset: u16,
        start: (u64, u64),
    ) -> impl Iterator<Item = &Stored> {
        let start = (start.0.clamp(low, high), start.1);
        ClassIter::new(&self.map, start, high, modulo, offset)
            .chain(
                ClassIter::new(&self.map, (low, 0), high, modulo, offset)
                    .take_while(move |(k, _)| *k < start),
            )
            .map(|(_, s)| s)
    }

    /// The messages of class `offset` of `modulo` with global time in `[low, high]`.
    pub fn class(
        &self,
        low: u64,
        high: u64,
        modulo: u16,
        offset: u16,
    ) -> impl Iterator<Item = &Stored> {
        ClassIter::new(&self.map, (low, 0), high, modulo, offset).map(|(_, s)| s)
    }

    /// A window of about `count` messages starting at the first message with
    /// global time `>= from`: returns `(low, high)` covering whole global
    /// times, with `low = 0` at the start of the store and `high = u64::MAX`
    /// at its end, and the number of messages inside.
    pub fn window(&self, from: u64, count: usize) -> (u64, u64, usize) {
        let mut times = self.per_time.range(from..);
        let Some((&first, &held)) = times.next() else {
            return (0, u64::MAX, 0);
        };
        let low = if self.per_time.range(..first).next().is_none() {
            0
        } else {
            first
        };
        let mut n = held as usize;
        let mut last = first;
        for (&t, &held) in times {
            if n >= count {
                return (low, last, n);
            }
            n += held as usize;
            last = t;
        }
        (low, u64::MAX, n)
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

/// Walks one class's keys in order: within a global time the class is one
/// contiguous run of keys; between runs it seeks to the next global time.
struct ClassIter<'a> {
    map: &'a BTreeMap<Key, Stored>,
    high: u64,
    bounds: Option<(u64, u64)>,
    /// Where to look for the next run.
    seek: Option<Key>,
    run: Option<std::collections::btree_map::Range<'a, Key, Stored>>,
}

impl<'a> ClassIter<'a> {
    fn new(
        map: &'a BTreeMap<Key, Stored>,
        start: Key,
        high: u64,
        modulo: u16,
        offset: u16,
    ) -> Self {
        Self {
            map,
            high,
            bounds: class_bounds(modulo, offset),
            seek: Some(start),
            run: None,
        }
    }
}

impl<'a> Iterator for ClassIter<'a> {
    type Item = (Key, &'a Stored);

    fn next(&mut self) -> Option<Self::Item> {
        let (lo, hi) = self.bounds?;
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

    fn msg() -> Stored {
        Stored {
            msg_id: 1,
            packet: Arc::from(vec![0u8; 100]),
        }
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
        assert_eq!(s.class(3, 4, 1, 0).count(), 6);
        assert_eq!(s.class_from(3, 4, 1, 0, (4, 0)).count(), 6);
        // Windows cover whole global times.
        assert_eq!(s.window(0, 4), (0, 2, 6));
        assert_eq!(s.window(9, 100), (9, u64::MAX, 6));
        assert_eq!(s.window(5, 3), (5, 5, 3));
    }

    #[test]
    fn classes_visit_exactly_their_authors_once_from_any_start() {
        let mut s = Store::default();
        let mut authors = Vec::new();
        for i in 0..64u64 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
            authors.push(key);
        }
        for t in [1u64, 1, 2, 5] {
            for a in &authors {
                s.insert(a, t, msg());
            }
        }
        let keys: Vec<(u64, u64)> = s.map.keys().copied().collect();
        for modulo in [1u16, 2, 8] {
            let mut seen = 0;
            for offset in 0..modulo {
                let want: Vec<(u64, u64)> = keys
                    .iter()
                    .copied()
                    .filter(|&(t, a)| (2..=5).contains(&t) && in_class(a, modulo, offset))
                    .collect();
                let got = s.class(2, 5, modulo, offset).count();
                assert_eq!(got, want.len(), "modulo {modulo} offset {offset}");
                // From a start in the middle, wrapping round: each once.
                let mid = want.get(want.len() / 2).copied().unwrap_or((3, 0));
                assert_eq!(s.class_from(2, 5, modulo, offset, mid).count(), want.len());
                seen += got;
            }
            assert_eq!(
                seen, 128,
                "the classes of modulo {modulo} cover times 2..=5"
            );
        }
    }

    /// The window as first written: a walk over every message.
    fn window_by_walking(s: &Store, from: u64, count: usize) -> (u64, u64, usize) {
        let mut it = s.map.range((from, 0)..);
        let Some((&(first, _), _)) = it.next() else {
            return (0, u64::MAX, 0);
        };
        let low = if s.map.range(..(first, 0)).next().is_none() {
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

    proptest::proptest! {
        #[test]
        fn windows_from_counts_equal_windows_from_walking(
            messages in proptest::collection::vec((0u64..40, 0u8..12), 0..200),
            from in 0u64..45,
            count in 1usize..60,
        ) {
            let mut s = Store::default();
            for (t, a) in messages {
                s.insert(&[a; 32], t, msg());
            }
            proptest::prop_assert_eq!(s.window(from, count), window_by_walking(&s, from, count));
        }
    }
}
