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

    /// Messages with global time in `[low, high]`, in key order.
    pub fn range(&self, low: u64, high: u64) -> impl Iterator<Item = &Stored> {
        self.map.range((low, 0)..=(high, u64::MAX)).map(|(_, s)| s)
    }

    /// Messages from key `(time, pivot)` on, up to `high`, then wrapping to the
    /// start of `[low, ...)`: a fair starting point for answering a sync request.
    pub fn range_from(
        &self,
        low: u64,
        high: u64,
        time: u64,
        pivot: u64,
    ) -> impl Iterator<Item = &Stored> {
        let start = (time.clamp(low, high), pivot);
        self.map
            .range(start..=(high, u64::MAX))
            .chain(self.map.range((low, 0)..start))
            .map(|(_, s)| s)
    }

    /// A window of about `count` messages starting at the first message with
    /// global time `>= from`: returns `(low, high)` covering whole global
    /// times, with `low = 0` at the start of the store and `high = u64::MAX`
    /// at its end, and the number of messages inside.
    pub fn window(&self, from: u64, count: usize) -> (u64, u64, usize) {
        let mut it = self.map.range((from, 0)..);
        let Some((&(first, _), _)) = it.next() else {
            return (0, u64::MAX, 0);
        };
        let low = if self.map.range(..(first, 0)).next().is_none() {
            0
        } else {
            first
        };
        let mut n = 1;
        let mut last = first;
        for (&(t, _), _) in it.by_ref() {
            if n >= count && t != last {
                let high = last;
                return (low, high, n);
            }
            n += 1;
            last = t;
        }
        (low, u64::MAX, n)
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
        assert_eq!(s.range(3, 4).count(), 6);
        assert_eq!(s.range_from(3, 4, 4, 0).count(), 6);
        // Windows cover whole global times.
        assert_eq!(s.window(0, 4), (0, 2, 6));
        assert_eq!(s.window(9, 100), (9, u64::MAX, 6));
        assert_eq!(s.window(5, 3), (5, 5, 3));
    }
}
