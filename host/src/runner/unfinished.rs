//! The lines `peerlab run` prints at the end for the instances that did not
//! finish, bounded at any scale: instances that ended the same way for the
//! same reason (5,000 interrupted by one Ctrl-C, 100,000 stopped by the run
//! timeout) share one line with their count and first ids; a few alone
//! keep a line each, naming their `.err` file; and at most
//! [`MAX_LINES`] lines in all, the rest counted on a last line.
//!
//! Must not: print (the caller does) or decide an exit status. Every
//! instance's status and reason stay in `summary.json`; these lines only
//! point there.

use std::collections::HashMap;
use std::path::Path;

use super::folder::{EndStatus, InstanceStatus};

/// At most this many instances of one status and reason get a line each;
/// more share one line.
pub const ONE_LINE_EACH_UP_TO: usize = 3;

/// Ids a shared line names before "and N more".
const IDS_SHOWN: usize = 5;

/// At most this many lines in all (the last says how many more did not
/// finish).
pub const MAX_LINES: usize = 20;

/// The lines (without the `peerlab: ` prefix) for the instances of
/// `statuses` that did not finish, in the order of their first id.
/// `err_exists` says whether an instance's `.err` file (its path under
/// `run_dir`) is there to be named.
pub fn lines(
    run_dir: &Path,
    statuses: &[InstanceStatus],
    err_exists: impl Fn(&Path) -> bool,
) -> Vec<String> {
    // Groups by (status, reason), in the order each was first met.
    let mut groups: Vec<(EndStatus, Option<&str>, Vec<&InstanceStatus>)> = Vec::new();
    let mut index: HashMap<(EndStatus, Option<&str>), usize> = HashMap::new();
    for s in statuses.iter().filter(|s| s.status != EndStatus::Finished) {
        let key = (s.status, s.error.as_deref());
        let i = *index.entry(key).or_insert_with(|| {
            groups.push((key.0, key.1, Vec::new()));
            groups.len() - 1
        });
        groups[i].2.push(s);
    }
    let mut out = Vec::new();
    let mut said = 0usize;
    let total: usize = groups.iter().map(|g| g.2.len()).sum();
    for (status, why, members) in &groups {
        let why = why.unwrap_or("no details");
        let wanted = if members.len() <= ONE_LINE_EACH_UP_TO {
            members.len()
        } else {
            1
        };
        // Room for the last line that counts the rest, unless none is left.
        let room = if said + members.len() < total {
            MAX_LINES - 1
        } else {
            MAX_LINES
        };
        if out.len() + wanted > room {
            break;
        }
        if members.len() <= ONE_LINE_EACH_UP_TO {
            for s in members {
                let err = run_dir.join(&s.err);
                let see = if err_exists(&err) {
                    format!(" (see {})", err.display())
                } else {
                    String::new()
                };
                out.push(format!("instance {} {status}: {why}{see}", s.id));
            }
        } else {
            out.push(format!(
                "{} instances {status}: {why} ({}; each one's status is in {})",
                members.len(),
                ids_text(members.iter().map(|s| s.id)),
                run_dir.join(peerlab_run::layout::SUMMARY_JSON).display()
            ));
        }
        said += members.len();
    }
    if said < total {
        out.push(format!(
            "{} more instances did not finish (each one's status is in {})",
            total - said,
            run_dir.join(peerlab_run::layout::SUMMARY_JSON).display()
        ));
    }
    out
}

/// `1, 2, 3, 4, 5 and 4995 more`.
fn ids_text(ids: impl ExactSizeIterator<Item = u32>) -> String {
    let n = ids.len();
    let shown: Vec<String> = ids.take(IDS_SHOWN).map(|id| id.to_string()).collect();
    if n > IDS_SHOWN {
        format!("ids {} and {} more", shown.join(", "), n - IDS_SHOWN)
    } else {
        format!("ids {}", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn status(id: u32, status: EndStatus, error: &str) -> InstanceStatus {
        InstanceStatus {
            id,
            host: "simulated".into(),
            node: 1,
            status,
            exit_code: None,
            error: Some(error.into()),
            out: PathBuf::from(format!("simulated/node001/{id:05}.out")),
            err: PathBuf::from(format!("simulated/node001/{id:05}.err")),
        }
    }

    #[test]
    fn five_thousand_interrupted_instances_share_one_line() {
        let statuses: Vec<_> = (1..=5000)
            .map(|id| status(id, EndStatus::Interrupted, "stopped by SIGINT"))
            .collect();
        let lines = lines(Path::new("/runs/0001-x"), &statuses, |_| true);
        assert_eq!(
            lines,
            [
                "5000 instances interrupted: stopped by SIGINT (ids 1, 2, 3, 4, 5 and 4995 more; \
              each one's status is in /runs/0001-x/summary.json)"
            ]
        );
    }

    #[test]
    fn a_few_keep_a_line_each_naming_their_err_file() {
        let mut statuses: Vec<_> = (1..=3)
            .map(|id| status(id, EndStatus::Interrupted, "stopped by SIGTERM"))
            .collect();
        statuses.push(status(4, EndStatus::Finished, ""));
        statuses.push(status(5, EndStatus::Failed, "boom"));
        let lines = lines(Path::new("/r"), &statuses, |p| !p.ends_with("00002.err"));
        assert_eq!(
            lines,
            [
                "instance 1 interrupted: stopped by SIGTERM (see /r/simulated/node001/00001.err)",
                "instance 2 interrupted: stopped by SIGTERM",
                "instance 3 interrupted: stopped by SIGTERM (see /r/simulated/node001/00003.err)",
                "instance 5 failed: boom (see /r/simulated/node001/00005.err)",
            ]
        );
    }

    #[test]
    fn many_different_reasons_are_cut_at_the_line_limit_and_counted() {
        let statuses: Vec<_> = (1..=100_000)
            .map(|id| status(id, EndStatus::Failed, &format!("lost line {id}")))
            .collect();
        let lines = lines(Path::new("/r"), &statuses, |_| false);
        assert_eq!(lines.len(), MAX_LINES);
        assert_eq!(lines[0], "instance 1 failed: lost line 1");
        assert_eq!(lines[MAX_LINES - 2], "instance 19 failed: lost line 19");
        assert_eq!(
            lines[MAX_LINES - 1],
            "99981 more instances did not finish (each one's status is in /r/summary.json)"
        );
    }

    #[test]
    fn everyone_finished_says_nothing() {
        let statuses: Vec<_> = (1..=10)
            .map(|id| status(id, EndStatus::Finished, ""))
            .collect();
        assert!(lines(Path::new("/r"), &statuses, |_| true).is_empty());
    }
}
