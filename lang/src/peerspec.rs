//! Peer selectors: which instances a scenario command runs on (`{1,3-5}`,
//! `{!2}`, `{}` or absent for all). Instance ids are 1-based.
//!
//! Sets are kept as sorted, merged ranges, so `{1-4000000000}` costs two
//! numbers, not four billion.

use std::fmt;
use std::ops::RangeInclusive;

use serde::Serialize;

/// A set of instance ids, stored as sorted, disjoint, non-adjacent ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct IdSet {
    ranges: Vec<(u32, u32)>,
}

impl IdSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add every id in `lo..=hi` (nothing if `lo > hi`).
    pub fn insert_range(&mut self, lo: u32, hi: u32) {
        if lo > hi {
            return;
        }
        self.ranges.push((lo, hi));
        self.ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.ranges.len());
        for &(l, h) in &self.ranges {
            match merged.last_mut() {
                Some(last) if l <= last.1.saturating_add(1) => last.1 = last.1.max(h),
                _ => merged.push((l, h)),
            }
        }
        self.ranges = merged;
    }

    /// Add one id.
    pub fn insert(&mut self, id: u32) {
        self.insert_range(id, id);
    }

    /// True when `id` is in the set.
    pub fn contains(&self, id: u32) -> bool {
        let i = self.ranges.partition_point(|&(_, h)| h < id);
        self.ranges.get(i).is_some_and(|&(l, _)| l <= id)
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many ids the set holds.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|&(l, h)| u64::from(h - l) + 1).sum()
    }

    /// The smallest id.
    pub fn min(&self) -> Option<u32> {
        self.ranges.first().map(|r| r.0)
    }

    /// The largest id.
    pub fn max(&self) -> Option<u32> {
        self.ranges.last().map(|r| r.1)
    }

    /// The ranges, sorted and merged.
    pub fn ranges(&self) -> impl Iterator<Item = RangeInclusive<u32>> + '_ {
        self.ranges.iter().map(|&(l, h)| l..=h)
    }

    /// Every id, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges().flatten()
    }
}

impl fmt::Display for IdSet {
    /// `1,3-5` (the selector syntax without braces).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(l, h)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if l == h {
                write!(f, "{l}")?;
            } else {
                write!(f, "{l}-{h}")?;
            }
        }
        Ok(())
    }
}

/// Which instances a command runs on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(tag = "kind", content = "ids", rename_all = "snake_case")]
pub enum PeerSpec {
    /// Every instance (`{}` or no selector).
    #[default]
    All,
    /// Only these instances (`{1,3-5}`).
    Only(IdSet),
    /// Every instance except these (`{!2}`).
    AllBut(IdSet),
}

impl PeerSpec {
    /// True when instance `id` (1-based) of `count` runs the command. Ids
    /// outside `1..=count` are never selected.
    pub fn selects(&self, id: u32, count: u32) -> bool {
        if id == 0 || id > count {
            return false;
        }
        match self {
            PeerSpec::All => true,
            PeerSpec::Only(set) => set.contains(id),
            PeerSpec::AllBut(set) => !set.contains(id),
        }
    }

    /// The ids named in the selector, if any.
    pub fn ids(&self) -> Option<&IdSet> {
        match self {
            PeerSpec::All => None,
            PeerSpec::Only(s) | PeerSpec::AllBut(s) => Some(s),
        }
    }

    /// The largest id the selector names (to check against the instance
    /// count).
    pub fn max_id(&self) -> Option<u32> {
        self.ids().and_then(IdSet::max)
    }
}

impl fmt::Display for PeerSpec {
    /// The selector as written in a scenario: `{}`, `{1,3-5}`, `{!2}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerSpec::All => f.write_str("{}"),
            PeerSpec::Only(s) => write!(f, "{{{s}}}"),
            PeerSpec::AllBut(s) => write!(f, "{{!{s}}}"),
        }
    }
}

/// A problem in a selector's text: a byte range relative to the text between
/// the braces, and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// Byte range within the inner text.
    pub span: std::ops::Range<usize>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub help: Option<String>,
}

/// Parse the text between `{` and `}`. All problems are returned, not just
/// the first.
pub fn parse_peerspec(inner: &str) -> (PeerSpec, Vec<SpecError>) {
    let mut errors = Vec::new();
    let trimmed_start = inner.len() - inner.trim_start().len();
    let body = inner.trim();
    if body.is_empty() {
        return (PeerSpec::All, errors);
    }
    let (negated, list, list_off) = match body.strip_prefix('!') {
        Some(rest) => (true, rest, trimmed_start + 1),
        None => (false, body, trimmed_start),
    };
    let mut set = IdSet::new();
    if negated && list.trim().is_empty() {
        errors.push(SpecError {
            span: trimmed_start..trimmed_start + body.len(),
            message: "`{!}` excludes no instance".into(),
            help: Some(
                "write `{}` for every instance, or list the ids to leave out: `{!2}`".into(),
            ),
        });
        return (PeerSpec::All, errors);
    }
    let mut off = list_off;
    for item in list.split(',') {
        let item_start = off + (item.len() - item.trim_start().len());
        off += item.len() + 1;
        let it = item.trim();
        let span = item_start..item_start + it.len();
        if it.is_empty() {
            errors.push(SpecError {
                span: item_start..item_start,
                message: "empty item in peer selector".into(),
                help: Some("remove the extra comma".into()),
            });
            continue;
        }
        let parse_id = |s: &str| -> Result<u32, String> {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "expected an instance id (a number from 1), found `{s}`"
                ));
            }
            match s.parse::<u32>() {
                Ok(0) => Err("instance ids start at 1".into()),
                Ok(v) => Ok(v),
                Err(_) => Err(format!("instance id `{s}` is too large")),
            }
        };
        let (lo, hi) = match it.split_once('-') {
            Some((a, b)) => (parse_id(a), parse_id(b)),
            None => {
                let v = parse_id(it);
                (v.clone(), v)
            }
        };
        match (lo, hi) {
            (Ok(l), Ok(h)) if l <= h => set.insert_range(l, h),
            (Ok(l), Ok(h)) => errors.push(SpecError {
                span,
                message: format!("empty range `{l}-{h}` in peer selector"),
                help: Some(format!("write the smaller id first: `{h}-{l}`")),
            }),
            (Err(e), _) | (_, Err(e)) => errors.push(SpecError {
                span,
                message: format!("bad peer selector item `{it}`: {e}"),
                help: Some(
                    "a selector lists ids and ranges: `{1,3-5}`, or `{!2}` for all but 2".into(),
                ),
            }),
        }
    }
    let spec = if negated {
        PeerSpec::AllBut(set)
    } else {
        PeerSpec::Only(set)
    };
    (spec, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> PeerSpec {
        let (spec, errs) = parse_peerspec(s);
        assert!(errs.is_empty(), "{s}: {errs:?}");
        spec
    }

    #[test]
    fn forms() {
        assert_eq!(ok(""), PeerSpec::All);
        assert_eq!(ok("  "), PeerSpec::All);
        assert_eq!(ok("1,3-5").to_string(), "{1,3-5}");
        assert_eq!(ok(" 1 , 2 ").to_string(), "{1-2}");
        assert_eq!(ok("!2").to_string(), "{!2}");
        assert_eq!(ok("5-5").to_string(), "{5}");
        assert_eq!(ok("1-4000000000").ids().unwrap().len(), 4_000_000_000);
    }

    #[test]
    fn selects() {
        let only = ok("1,3-5");
        let sel: Vec<u32> = (0..=7).filter(|&i| only.selects(i, 6)).collect();
        assert_eq!(sel, [1, 3, 4, 5]);
        let but = ok("!2");
        let sel: Vec<u32> = (0..=5).filter(|&i| but.selects(i, 4)).collect();
        assert_eq!(sel, [1, 3, 4]);
        assert!(PeerSpec::All.selects(3, 3));
        assert!(!PeerSpec::All.selects(4, 3));
    }

    #[test]
    fn errors() {
        let msgs = |s: &str| -> Vec<String> {
            parse_peerspec(s)
                .1
                .into_iter()
                .map(|e| format!("{:?} {}", e.span, e.message))
                .collect()
        };
        assert_eq!(
            msgs("0"),
            ["0..1 bad peer selector item `0`: instance ids start at 1"]
        );
        assert_eq!(msgs("5-3"), ["0..3 empty range `5-3` in peer selector"]);
        assert_eq!(msgs("1,,2"), ["2..2 empty item in peer selector"]);
        assert_eq!(msgs("!"), ["0..1 `{!}` excludes no instance"]);
        assert_eq!(
            msgs("a, 2-x"),
            [
                "0..1 bad peer selector item `a`: expected an instance id (a number from 1), found `a`",
                "3..6 bad peer selector item `2-x`: expected an instance id (a number from 1), found `x`"
            ]
        );
        assert_eq!(
            msgs("1!2"),
            [
                "0..3 bad peer selector item `1!2`: expected an instance id (a number from 1), found `1!2`"
            ]
        );
        assert_eq!(
            msgs("99999999999"),
            ["0..11 bad peer selector item `99999999999`: instance id `99999999999` is too large"]
        );
    }

    #[test]
    fn idset_merges() {
        let mut s = IdSet::new();
        s.insert_range(5, 7);
        s.insert(1);
        s.insert_range(2, 4);
        s.insert(u32::MAX);
        assert_eq!(s.to_string(), format!("1-7,{}", u32::MAX));
        assert!(s.contains(6) && !s.contains(8) && s.contains(u32::MAX));
        assert_eq!(s.iter().take(3).collect::<Vec<_>>(), [1, 2, 3]);
    }
}
