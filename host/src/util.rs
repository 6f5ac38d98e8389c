//! Small helpers shared across the host that belong to no one module.

use std::io::Write;

/// Write to stderr, ignoring errors (what the crate's `eprintln!` does; see
/// `lib.rs`): a closed pipe or a full disk must not stop a run.
pub fn console_err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// Write to stdout, ignoring errors (the crate's `println!`).
pub fn console_out(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args);
    let _ = out.flush();
}

/// An error and its causes in one line, `what: why: …` (what `{:#}` of an
/// `anyhow::Error` prints), for errors that are reported as text (a launch
/// failure, a process that could not start) rather than returned.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

/// Write ids compactly as ranges: `[1,2,3,5]` -> `1-3,5`.
pub fn ranges(ids: &[u32]) -> String {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    if parts.is_empty() {
        "(none)".into()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ranges_are_compact() {
        assert_eq!(super::ranges(&[5, 1, 2, 3, 7, 8]), "1-3,5,7-8");
        assert_eq!(super::ranges(&[]), "(none)");
    }

    /// `chain` reads as `main.rs` prints an error (`{:#}` of anyhow's).
    #[test]
    fn a_chain_reads_as_main_prints_it() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot write /x/run.json")]
        struct Outer(#[source] std::io::Error);
        let err = Outer(std::io::Error::other("disk full"));
        assert_eq!(super::chain(&err), "cannot write /x/run.json: disk full");
        assert_eq!(
            super::chain(&err),
            format!("{:#}", anyhow::Error::from(err))
        );
    }
}
