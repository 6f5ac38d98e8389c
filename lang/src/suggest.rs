//! "Did you mean" suggestions: the closest candidate by Jaccard similarity
//! of character bigrams, as ripgrep suggests flag names.
//!
//! Pure string maths; callers decide what the candidates are.

use std::collections::BTreeSet;

/// Similarity below which a candidate is not worth suggesting.
pub const THRESHOLD: f64 = 0.4;

/// The character bigrams of `s`, lowercased, with `^`/`$` marking the ends
/// so that short names still have a few grams.
fn bigrams(s: &str) -> BTreeSet<(char, char)> {
    let chars: Vec<char> = std::iter::once('\u{2}')
        .chain(s.chars().flat_map(char::to_lowercase))
        .chain(std::iter::once('\u{3}'))
        .collect();
    chars.windows(2).map(|w| (w[0], w[1])).collect()
}

/// Jaccard similarity (0.0 to 1.0) of the bigram sets of `a` and `b`.
pub fn similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (bigrams(a), bigrams(b));
    let union = a.union(&b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(&b).count() as f64 / union as f64
}

/// Names longer than this (in bytes) get no suggestion.
pub const MAX_NAME: usize = 256;

/// The candidate most similar to `name`, if any reaches [`THRESHOLD`].
/// Ties go to the earliest candidate. An exact match is never suggested,
/// nor anything for a name longer than [`MAX_NAME`].
pub fn suggest<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    // A name this long is not a typo of a real one, and comparing it with
    // every candidate would cost its length each time.
    if name.len() > MAX_NAME {
        return None;
    }
    let mut best: Option<(&'a str, f64)> = None;
    for cand in candidates {
        if cand == name {
            continue;
        }
        let score = similarity(name, cand);
        if score >= THRESHOLD && best.is_none_or(|(_, b)| score > b) {
            best = Some((cand, score));
        }
    }
    best.map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_are_suggested() {
        let cands = [
            "start_session",
            "stop_session",
            "introduce_peers",
            "annotate",
        ];
        assert_eq!(suggest("start_sesion", cands), Some("start_session"));
        assert_eq!(suggest("introduce_peer", cands), Some("introduce_peers"));
        assert_eq!(suggest("anotate", cands), Some("annotate"));
        assert_eq!(suggest("xyz", cands), None);
        assert_eq!(suggest("annotate", cands), None);
        assert_eq!(suggest(&"annotate".repeat(100), cands), None);
    }

    #[test]
    fn case_is_ignored() {
        assert_eq!(
            suggest("NODE_AMOUNT", ["node_amount", "node_timeout"]),
            Some("node_amount")
        );
    }

    #[test]
    fn similarity_bounds() {
        assert_eq!(similarity("abc", "abc"), 1.0);
        assert_eq!(similarity("", ""), 1.0);
        assert!(similarity("abc", "xyz") < 0.1);
    }
}
