//! How many FullSync messages each author has in one overlay's store, for
//! the per-author store limit.
//!
//! Owns: the counts, by directory row for directory authors and by key
//! prefix for the others. Most authors of a large experiment have one
//! message or none, so directory rows start as a compressed bitmap of rows
//! with one message plus a map of the few with more; once more than an
//! eighth of the rows have several, a dense array of 16-bit counts is
//! smaller and replaces them. Must not: decide the limit or drop messages.

use std::collections::HashMap;

use roaring::RoaringBitmap;

/// Directory rows whose counts are more than this fraction (1/N) of the
/// rows go dense.
const DENSE_WHEN_ONE_IN: usize = 8;

#[derive(Debug)]
enum Rows {
    Sparse {
        /// Rows with at least one message.
        ones: RoaringBitmap,
        /// Rows with more than one, and how many.
        more: HashMap<u32, u16>,
    },
    Dense(Vec<u16>),
}

impl Default for Rows {
    fn default() -> Self {
        Rows::Sparse {
            ones: RoaringBitmap::new(),
            more: HashMap::new(),
        }
    }
}

/// The counts of one overlay.
#[derive(Debug, Default)]
pub(crate) struct AuthorCounts {
    rows: Rows,
    others: HashMap<u64, u16>,
}

/// The first 8 bytes of an ed25519 key (how the store tells authors apart).
pub(crate) fn prefix(author: &[u8; 32]) -> u64 {
    u64::from_be_bytes(author[..8].try_into().expect("8 bytes"))
}

impl AuthorCounts {
    /// Forgets the counts by row (they mean nothing in another directory).
    pub(crate) fn clear_rows(&mut self) {
        self.rows = Rows::default();
    }

    /// Messages of the author at directory row `row`, or with key `author`.
    pub(crate) fn get(&self, row: Option<u32>, author: &[u8; 32]) -> usize {
        match row {
            Some(r) => match &self.rows {
                Rows::Sparse { ones, more } => match more.get(&r) {
                    Some(&c) => c as usize,
                    None => usize::from(ones.contains(r)),
                },
                Rows::Dense(v) => v.get(r as usize).copied().unwrap_or(0) as usize,
            },
            None => self.others.get(&prefix(author)).copied().unwrap_or(0) as usize,
        }
    }

    /// Counts one more message; `rows` is the directory's size.
    pub(crate) fn add(&mut self, row: Option<u32>, author: &[u8; 32], rows: usize) {
        let Some(r) = row else {
            let c = self.others.entry(prefix(author)).or_default();
            *c = c.saturating_add(1);
            return;
        };
        if (r as usize) >= rows {
            return;
        }
        match &mut self.rows {
            Rows::Sparse { ones, more } => {
                if ones.insert(r) {
                    return;
                }
                let c = more.entry(r).or_insert(1);
                *c = c.saturating_add(1);
                if more.len() * DENSE_WHEN_ONE_IN > rows {
                    let mut dense = vec![0u16; rows];
                    for i in ones.iter() {
                        dense[i as usize] = 1;
                    }
                    for (&i, &c) in more.iter() {
                        dense[i as usize] = c;
                    }
                    self.rows = Rows::Dense(dense);
                }
            }
            Rows::Dense(v) => {
                if v.len() < rows {
                    v.resize(rows, 0);
                }
                v[r as usize] = v[r as usize].saturating_add(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Sparse, dense and the switch between them count as a plain array does.
        #[test]
        fn counts_match_a_plain_array(adds in proptest::collection::vec((0u32..40, proptest::option::of(0u8..4)), 0..400)) {
            let rows = 32usize;
            let mut c = AuthorCounts::default();
            let mut want = vec![0usize; 40];
            let mut others = [0usize; 4];
            for (r, other) in adds {
                let key = [other.unwrap_or(0); 32];
                match other {
                    Some(o) => {
                        c.add(None, &key, rows);
                        others[o as usize] += 1;
                    }
                    None => {
                        c.add(Some(r), &key, rows);
                        if (r as usize) < rows {
                            want[r as usize] += 1;
                        }
                    }
                }
                for (i, &w) in want.iter().enumerate() {
                    proptest::prop_assert_eq!(c.get(Some(i as u32), &key), w);
                }
                for (o, &w) in others.iter().enumerate() {
                    proptest::prop_assert_eq!(c.get(None, &[o as u8; 32]), w);
                }
            }
        }
    }
}
