//! The experiment's verdict, judged only from what the instances printed:
//! every instance printed the same total (`My computed sum is <total>`), and
//! it equals the sum of the printed secrets (`My secret value is <s>`) mod M.
//!
//! M is the last `My modulus is <M>` line an instance printed (only printed
//! when a keyword argument set it), else the config key `modulus`, else
//! 2^31-1. Pure: lines in, [`Verdict`]s out; the module's check hook feeds it.

use std::collections::BTreeMap;

use peerlab_plugin_api::Verdict;

use crate::protocol::{DEFAULT_MODULUS, add_mod};

/// The prefix of the line `print_local_value` prints.
pub const SECRET_LINE: &str = "My secret value is ";
/// The prefix of the line `print_total_sum` prints.
pub const TOTAL_LINE: &str = "My computed sum is ";
/// The prefix of the line printed when a keyword argument sets the modulus.
pub const MODULUS_LINE: &str = "My modulus is ";
/// What follows [`TOTAL_LINE`] when the total is not known.
pub const UNKNOWN: &str = "unknown";

/// How many different reasons for an unknown total a message lists.
const MAX_REASONS: usize = 4;

/// The name of the verdict that all totals agree.
pub const SAME_TOTAL: &str = "same-total";
/// The name of the verdict that the total is the sum of the secrets.
pub const SUM_OF_SECRETS: &str = "sum-of-secrets";

/// What one instance printed, as far as the verdict cares (last line wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Printed {
    secret: Option<Result<u64, String>>,
    total: Option<Result<u64, String>>,
    modulus: Option<Result<u64, String>>,
}

fn parse(rest: &str) -> Result<u64, String> {
    rest.trim()
        .parse::<u64>()
        .map_err(|_| rest.trim().to_string())
}

fn read(lines: &[String]) -> Printed {
    let mut p = Printed::default();
    for l in lines {
        if let Some(rest) = l.strip_prefix(SECRET_LINE) {
            p.secret = Some(parse(rest));
        } else if let Some(rest) = l.strip_prefix(TOTAL_LINE) {
            p.total = Some(parse(rest));
        } else if let Some(rest) = l.strip_prefix(MODULUS_LINE) {
            p.modulus = Some(parse(rest));
        }
    }
    p
}

/// `instance 3` / `instances 3,4` / `instances 1-20,22` (ascending ids;
/// runs of three or more as ranges).
fn who(ids: &[u64]) -> String {
    if ids.len() == 1 {
        return format!("instance {}", ids[0]);
    }
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            parts.push(format!("{}-{}", ids[i], ids[j]));
        } else {
            parts.extend(ids[i..=j].iter().map(u64::to_string));
        }
        i = j + 1;
    }
    format!("instances {}", parts.join(","))
}

/// Group instance ids by a value, in value order.
fn groups<K: Ord + Clone>(items: impl IntoIterator<Item = (u64, K)>) -> BTreeMap<K, Vec<u64>> {
    let mut g: BTreeMap<K, Vec<u64>> = BTreeMap::new();
    for (id, k) in items {
        g.entry(k).or_default().push(id);
    }
    g
}

/// Judge a run: `instances` are (id, printed lines) of every instance;
/// `config_modulus` is the config key `modulus` as written, if set.
pub fn judge(instances: &[(u64, Vec<String>)], config_modulus: Option<&str>) -> Vec<Verdict> {
    let printed: Vec<(u64, Printed)> = instances
        .iter()
        .map(|(id, lines)| (*id, read(lines)))
        .collect();
    let n = printed.len();
    if n == 0 {
        return vec![Verdict::fail(SAME_TOTAL, "the run has no instances")];
    }
    if printed
        .iter()
        .all(|(_, p)| p.secret.is_none() && p.total.is_none())
    {
        let msg = "no instance printed its secret or total: add print_local_value and print_total_sum to the scenario";
        return vec![
            Verdict::fail(SAME_TOTAL, msg),
            Verdict::fail(SUM_OF_SECRETS, msg),
        ];
    }
    vec![
        same_total(&printed),
        sum_of_secrets(&printed, config_modulus),
    ]
}

/// `3` / `3,4,5` after `instance ` / `instances ` (as `Missing` prints them).
fn parse_ids(s: &str) -> Option<Vec<u64>> {
    let list = s
        .strip_prefix("instances ")
        .or_else(|| s.strip_prefix("instance "))?;
    list.split(',').map(|i| i.trim().parse().ok()).collect()
}

/// Why instances could not compute their total, summarised across them:
/// who lacks which instances' local shares and subset sums (the parts of
/// `My computed sum is unknown: ...` lines), then any other reasons
/// grouped by text, at most [`MAX_REASONS`] of them.
fn explain_unknown(unknown: &[(u64, &str)]) -> String {
    const KINDS: [(&str, &str); 2] = [
        ("missing local shares from ", "local shares"),
        ("missing subset sums from ", "subset sums"),
    ];
    // per kind: (instances lacking, instances lacked)
    let mut lack: [(Vec<u64>, Vec<u64>); 2] = Default::default();
    let mut other: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for &(id, why) in unknown {
        let why = why.strip_prefix(UNKNOWN).unwrap_or(why);
        let why = why.trim_start_matches(':').trim();
        for part in why.split("; ") {
            let parsed = KINDS
                .iter()
                .enumerate()
                .find_map(|(k, (prefix, _))| Some((k, parse_ids(part.strip_prefix(prefix)?)?)));
            match parsed {
                Some((k, from)) => {
                    lack[k].0.push(id);
                    lack[k].1.extend(from);
                }
                None => other.entry(part).or_default().push(id),
            }
        }
    }
    let mut parts = Vec::new();
    for (k, (at, from)) in lack.iter_mut().enumerate() {
        if at.is_empty() {
            continue;
        }
        at.sort_unstable();
        at.dedup();
        from.sort_unstable();
        from.dedup();
        let verb = if at.len() == 1 { "lacks" } else { "lack" };
        parts.push(format!(
            "{} {verb} {} from {}",
            who(at),
            KINDS[k].1,
            who(from)
        ));
    }
    for (why, ids) in other.iter().take(MAX_REASONS) {
        parts.push(format!("{}: {why}", who(ids)));
    }
    if other.len() > MAX_REASONS {
        parts.push(format!(
            "{} more reasons (see the instances' output)",
            other.len() - MAX_REASONS
        ));
    }
    parts.join("; ")
}

fn same_total(printed: &[(u64, Printed)]) -> Verdict {
    let n = printed.len();
    let mut problems = Vec::new();
    let silent: Vec<u64> = printed
        .iter()
        .filter(|(_, p)| p.total.is_none())
        .map(|(i, _)| *i)
        .collect();
    if !silent.is_empty() {
        problems.push(format!("no total from {}", who(&silent)));
    }
    let unknown: Vec<(u64, &str)> = printed
        .iter()
        .filter_map(|(i, p)| match &p.total {
            Some(Err(why)) => Some((*i, why.as_str())),
            _ => None,
        })
        .collect();
    if !unknown.is_empty() {
        let ids: Vec<u64> = unknown.iter().map(|(i, _)| *i).collect();
        problems.push(format!(
            "{} could not compute it: {}",
            who(&ids),
            explain_unknown(&unknown)
        ));
    }
    let totals = groups(printed.iter().filter_map(|(i, p)| match p.total {
        Some(Ok(t)) => Some((*i, t)),
        _ => None,
    }));
    if totals.len() > 1 {
        let each: Vec<String> = totals
            .iter()
            .map(|(t, ids)| format!("{t} from {}", who(ids)))
            .collect();
        problems.push(format!("totals disagree: {}", each.join("; ")));
    }
    if problems.is_empty() {
        let t = totals.keys().next().copied().unwrap_or_default();
        let all = if n == 1 { "the one instance" } else { "all" };
        let count = if n == 1 {
            String::new()
        } else {
            format!(" {n} instances")
        };
        Verdict::pass(SAME_TOTAL, format!("{all}{count} printed {t}"))
    } else {
        Verdict::fail(SAME_TOTAL, problems.join("; "))
    }
}

fn modulus_of(printed: &[(u64, Printed)], config: Option<&str>) -> Result<u64, String> {
    let config_m = match config {
        None => DEFAULT_MODULUS,
        Some(s) => match s.trim().parse::<u64>() {
            Ok(m) if m >= 2 => m,
            _ => {
                return Err(format!(
                    "config key `modulus` = {s:?} is not a whole number of at least 2"
                ));
            }
        },
    };
    let each = groups(printed.iter().map(|(i, p)| {
        (
            *i,
            match &p.modulus {
                None => Ok(config_m),
                Some(m) => m.clone(),
            },
        )
    }));
    if let Some((Err(bad), ids)) = each.iter().find(|(m, _)| m.is_err()) {
        return Err(format!("{} printed `{MODULUS_LINE}{bad}`", who(ids)));
    }
    if each.len() > 1 {
        let list: Vec<String> = each
            .iter()
            .map(|(m, ids)| format!("{} from {}", m.clone().unwrap_or_default(), who(ids)))
            .collect();
        return Err(format!(
            "instances disagree on the modulus: {}",
            list.join("; ")
        ));
    }
    each.into_keys().next().unwrap_or(Ok(config_m))
}

fn sum_of_secrets(printed: &[(u64, Printed)], config: Option<&str>) -> Verdict {
    let m = match modulus_of(printed, config) {
        Ok(m) => m,
        Err(e) => return Verdict::fail(SUM_OF_SECRETS, e),
    };
    let mut problems = Vec::new();
    let silent: Vec<u64> = printed
        .iter()
        .filter(|(_, p)| p.secret.is_none())
        .map(|(i, _)| *i)
        .collect();
    if !silent.is_empty() {
        problems.push(format!("no secret from {}", who(&silent)));
    }
    for (id, p) in printed {
        if let Some(Err(bad)) = &p.secret {
            problems.push(format!("instance {id} printed `{SECRET_LINE}{bad}`"));
        }
    }
    if !problems.is_empty() {
        return Verdict::fail(
            SUM_OF_SECRETS,
            format!("cannot add up the secrets: {}", problems.join("; ")),
        );
    }
    let expected = printed
        .iter()
        .filter_map(|(_, p)| p.secret.clone().and_then(Result::ok))
        .fold(0, |acc, s| add_mod(acc, s % m, m));
    let wrong = groups(printed.iter().filter_map(|(i, p)| match p.total {
        Some(Ok(t)) if t != expected => Some((*i, t)),
        _ => None,
    }));
    let right: Vec<u64> = printed
        .iter()
        .filter(|(_, p)| p.total == Some(Ok(expected)))
        .map(|(i, _)| *i)
        .collect();
    let n = printed.len();
    if wrong.is_empty() && right.len() == n {
        return Verdict::pass(
            SUM_OF_SECRETS,
            format!("{expected} is the sum of the {n} secrets mod {m}"),
        );
    }
    let mut msg = format!("the {n} secrets sum to {expected} mod {m}");
    let each: Vec<String> = wrong
        .iter()
        .map(|(t, ids)| format!("{} printed {t}", who(ids)))
        .collect();
    if !each.is_empty() {
        msg.push_str(&format!(" but {}", each.join(", ")));
    }
    let without = n - right.len() - wrong.values().map(Vec::len).sum::<usize>();
    if without > 0 {
        let ids: Vec<u64> = printed
            .iter()
            .filter(|(_, p)| !matches!(p.total, Some(Ok(_))))
            .map(|(i, _)| *i)
            .collect();
        msg.push_str(&format!(
            "{} no total from {}",
            if each.is_empty() { " but" } else { ";" },
            who(&ids)
        ));
    }
    Verdict::fail(SUM_OF_SECRETS, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lines: &[&[&str]]) -> Vec<(u64, Vec<String>)> {
        lines
            .iter()
            .enumerate()
            .map(|(i, ls)| (i as u64 + 1, ls.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn messages(v: &[Verdict]) -> Vec<(String, bool, String)> {
        v.iter()
            .map(|v| (v.name.to_string(), v.passed, v.message.to_string()))
            .collect()
    }

    #[test]
    fn a_correct_run_passes_both() {
        let r = run(&[
            &["My secret value is 10", "My computed sum is 16"],
            &["noise", "My secret value is 5", "My computed sum is 16"],
            &["My computed sum is 16", "My secret value is 1"],
        ]);
        assert_eq!(
            messages(&judge(&r, None)),
            [
                (SAME_TOTAL.into(), true, "all 3 instances printed 16".into()),
                (
                    SUM_OF_SECRETS.into(),
                    true,
                    "16 is the sum of the 3 secrets mod 2147483647".into()
                ),
            ]
        );
    }

    #[test]
    fn sums_wrap_around_the_configured_modulus() {
        let r = run(&[
            &["My secret value is 6", "My computed sum is 2"],
            &["My secret value is 6", "My computed sum is 2"],
        ]);
        let v = judge(&r, Some("10"));
        assert!(v.iter().all(|v| v.passed), "{v:?}");
        // 2^63 and a sum that overflows u64 without u128 intermediates
        let big = (1u64 << 63).to_string();
        let s = ((1u64 << 63) - 1).to_string();
        let r = run(&[
            &[
                &format!("My secret value is {s}"),
                "My computed sum is 9223372036854775806",
            ],
            &[
                &format!("My secret value is {s}"),
                "My computed sum is 9223372036854775806",
            ],
        ]);
        let v = judge(&r, Some(&big));
        assert!(v.iter().all(|v| v.passed), "{v:?}");
    }

    #[test]
    fn a_wrong_total_names_who_printed_what() {
        let r = run(&[
            &["My secret value is 1", "My computed sum is 3"],
            &["My secret value is 2", "My computed sum is 4"],
            &["My secret value is 3", "My computed sum is 4"],
        ]);
        assert_eq!(
            messages(&judge(&r, None)),
            [
                (
                    SAME_TOTAL.into(),
                    false,
                    "totals disagree: 3 from instance 1; 4 from instances 2,3".into()
                ),
                (
                    SUM_OF_SECRETS.into(),
                    false,
                    "the 3 secrets sum to 6 mod 2147483647 but instance 1 printed 3, instances 2,3 printed 4"
                        .into()
                ),
            ]
        );
    }

    #[test]
    fn an_unknown_total_and_silence_are_named() {
        let r = run(&[
            &["My secret value is 1", "My computed sum is 3"],
            &[
                "My secret value is 2",
                "My computed sum is unknown: missing subset sums from instance 3",
            ],
            &[],
        ]);
        assert_eq!(
            messages(&judge(&r, None)),
            [
                (
                    SAME_TOTAL.into(),
                    false,
                    "no total from instance 3; instance 2 could not compute it: instance 2 lacks subset sums from instance 3"
                        .into()
                ),
                (
                    SUM_OF_SECRETS.into(),
                    false,
                    "cannot add up the secrets: no secret from instance 3".into()
                ),
            ]
        );
        let r = run(&[
            &["My secret value is 1", "My computed sum is 3"],
            &["My secret value is 2", "My computed sum is unknown: x"],
        ]);
        assert_eq!(
            judge(&r, None)[1].message.as_str(),
            "the 2 secrets sum to 3 mod 2147483647 but no total from instance 2"
        );
    }

    #[test]
    fn unknown_totals_are_summarised_by_who_lacks_what() {
        let mut lines: Vec<(u64, Vec<String>)> = (1..=50)
            .map(|i| {
                (
                    i,
                    vec![
                        "My secret value is 1".to_string(),
                        "My computed sum is unknown: missing subset sums from instance 50"
                            .to_string(),
                    ],
                )
            })
            .collect();
        lines[49].1[1] =
            "My computed sum is unknown: missing local shares from instances 7,9".into();
        lines[3].1[1] = "My computed sum is unknown: missing local shares from instance 8; \
                         missing subset sums from instances 3,50; \
                         conflicting subset sums from instance 2"
            .into();
        let v = judge(&lines, None);
        assert_eq!(
            v[0].message.as_str(),
            "instances 1-50 could not compute it: instances 4,50 lack local shares from instances 7-9; \
             instances 1-49 lack subset sums from instances 3,50; \
             instance 4: conflicting subset sums from instance 2"
        );
        for (i, l) in lines.iter_mut().enumerate() {
            l.1[1] = format!("My computed sum is unknown: reason {i}");
        }
        let v = judge(&lines, None);
        assert!(
            v[0].message
                .ends_with("instance 12: reason 11; 46 more reasons (see the instances' output)"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn long_id_lists_are_shown_as_ranges() {
        assert_eq!(who(&[4]), "instance 4");
        assert_eq!(who(&[1, 2]), "instances 1,2");
        assert_eq!(who(&[1, 2, 3, 5, 7, 8, 9, 10]), "instances 1-3,5,7-10");
    }

    #[test]
    fn the_last_line_wins() {
        let r = run(&[
            &[
                "My computed sum is unknown: x",
                "My secret value is 1",
                "My computed sum is 3",
            ],
            &["My secret value is 2", "My computed sum is 3"],
        ]);
        assert!(judge(&r, None).iter().all(|v| v.passed));
    }

    #[test]
    fn a_printed_modulus_overrides_the_config_and_must_agree() {
        let r = run(&[
            &[
                "My modulus is 5",
                "My secret value is 4",
                "My computed sum is 2",
            ],
            &[
                "My modulus is 5",
                "My secret value is 3",
                "My computed sum is 2",
            ],
        ]);
        assert!(judge(&r, Some("1000")).iter().all(|v| v.passed));
        let r = run(&[
            &[
                "My modulus is 5",
                "My secret value is 4",
                "My computed sum is 2",
            ],
            &["My secret value is 3", "My computed sum is 2"],
        ]);
        assert_eq!(
            judge(&r, Some("1000"))[1].message.as_str(),
            "instances disagree on the modulus: 5 from instance 1; 1000 from instance 2"
        );
    }

    #[test]
    fn a_bad_config_modulus_fails_with_the_key() {
        let r = run(&[&["My secret value is 4", "My computed sum is 4"]]);
        let v = judge(&r, Some("lots"));
        assert!(v[0].passed);
        assert_eq!(
            v[1].message.as_str(),
            "config key `modulus` = \"lots\" is not a whole number of at least 2"
        );
    }

    #[test]
    fn a_run_that_printed_nothing_fails_with_a_hint() {
        let r = run(&[&["hello"], &[]]);
        let v = judge(&r, None);
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|v| !v.passed));
        assert!(
            v[0].message
                .contains("add print_local_value and print_total_sum")
        );
        assert!(!judge(&[], None)[0].passed);
    }

    #[test]
    fn garbage_after_a_prefix_is_reported_not_parsed() {
        let r = run(&[
            &["My secret value is x", "My computed sum is 1"],
            &["My secret value is 1", "My computed sum is 1"],
        ]);
        let v = judge(&r, None);
        assert!(v[0].passed);
        assert_eq!(
            v[1].message.as_str(),
            "cannot add up the secrets: instance 1 printed `My secret value is x`"
        );
    }
}
