//! `junit.xml`: one test case per instance and per verdict, so CI servers
//! (Jenkins, GitLab) show a run's results. Rendered from the runner's
//! [`Summary`] only (pure text; [`crate::write::write_junit`] writes it).

use std::fmt::Write;

use crate::schema::{EndStatus, Summary};

/// Render the summary as a JUnit XML document.
pub fn render(summary: &Summary) -> String {
    let cases = summary.instance_status.len() + summary.verdicts.len();
    let failures = summary
        .instance_status
        .iter()
        .filter(|s| s.status != EndStatus::Finished)
        .count()
        + summary.verdicts.iter().filter(|v| !v.passed).count();
    let mut x = String::new();
    let _ = writeln!(x, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        x,
        r#"<testsuites name="peerlab" tests="{cases}" failures="{failures}" time="{:.3}">"#,
        summary.duration_s
    );
    let _ = writeln!(
        x,
        r#"  <testsuite name="{}" tests="{}" failures="{}" timestamp="{}">"#,
        esc(&format!("{}/instances", summary.run_id)),
        summary.instance_status.len(),
        summary
            .instance_status
            .iter()
            .filter(|s| s.status != EndStatus::Finished)
            .count(),
        esc(&summary.started_at)
    );
    for s in &summary.instance_status {
        let name = format!("instance {:05}", s.id);
        if s.status == EndStatus::Finished {
            let _ = writeln!(
                x,
                r#"    <testcase classname="instances" name="{}"/>"#,
                esc(&name)
            );
        } else {
            let message = match &s.error {
                Some(e) => format!("{}: {e}", s.status),
                None => s.status.to_string(),
            };
            let _ = writeln!(
                x,
                r#"    <testcase classname="instances" name="{}">"#,
                esc(&name)
            );
            let _ = writeln!(
                x,
                r#"      <failure message="{}">see {}</failure>"#,
                esc(&message),
                esc(&s.err.display().to_string())
            );
            let _ = writeln!(x, "    </testcase>");
        }
    }
    let _ = writeln!(x, "  </testsuite>");
    let _ = writeln!(
        x,
        r#"  <testsuite name="{}" tests="{}" failures="{}" skipped="{}">"#,
        esc(&format!("{}/verdicts", summary.run_id)),
        summary.verdicts.len(),
        summary.verdicts.iter().filter(|v| !v.passed).count(),
        summary.verdicts.iter().filter(|v| v.skipped).count()
    );
    for v in &summary.verdicts {
        if v.skipped {
            let _ = writeln!(
                x,
                r#"    <testcase classname="verdicts" name="{}"><skipped message="{}"/></testcase>"#,
                esc(&v.name),
                esc(&v.message)
            );
        } else if v.passed {
            let _ = writeln!(
                x,
                r#"    <testcase classname="verdicts" name="{}"><system-out>{}</system-out></testcase>"#,
                esc(&v.name),
                esc(&v.message)
            );
        } else {
            let _ = writeln!(
                x,
                r#"    <testcase classname="verdicts" name="{}"><failure message="{}"/></testcase>"#,
                esc(&v.name),
                esc(&v.message)
            );
        }
    }
    let _ = writeln!(x, "  </testsuite>");
    let _ = writeln!(x, "</testsuites>");
    x
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{InstanceStatus, Summary, VerdictRecord};

    #[test]
    fn failures_are_counted_and_text_is_escaped() {
        let summary = Summary {
            run_id: "0001-x".into(),
            experiment: "x".into(),
            seed: 1,
            instances: 2,
            nodes: 1,
            runner: "local".into(),
            time_scale: 1.0,
            started_at: "2026-01-01T00:00:00Z".into(),
            ended_at: "2026-01-01T00:00:01Z".into(),
            duration_s: 1.0,
            outcome: Some(crate::RunStatus::Failed),
            timed_out: false,
            instance_status: vec![
                InstanceStatus {
                    id: 1,
                    host: "localhost".into(),
                    node: 1,
                    status: crate::EndStatus::Finished,
                    exit_code: Some(0),
                    error: None,
                    out: "a.out".into(),
                    err: "a.err".into(),
                },
                InstanceStatus {
                    id: 2,
                    host: "localhost".into(),
                    node: 1,
                    status: crate::EndStatus::Failed,
                    exit_code: Some(1),
                    error: Some("x.scenario:3: <boom> & \"bang\"".into()),
                    out: "b.out".into(),
                    err: "b.err".into(),
                },
            ],
            verdicts: vec![VerdictRecord {
                name: "sum".into(),
                passed: false,
                message: "2 != 3".into(),
                skipped: false,
            }],
        };
        let xml = render(&summary);
        assert!(
            xml.contains(r#"<testsuites name="peerlab" tests="3" failures="2""#),
            "{xml}"
        );
        assert!(xml.contains("&lt;boom&gt; &amp; &quot;bang&quot;"), "{xml}");
        assert!(
            xml.contains(
                r#"<testcase classname="verdicts" name="sum"><failure message="2 != 3"/>"#
            )
        );
    }
}
