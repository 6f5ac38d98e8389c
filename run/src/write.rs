//! The one writer of `run.json` ([`write_run_record`]), of `peers.json`
//! ([`write_peers`]), of `summary.json`
//! ([`write_summary`]: the runner's record, and post-processing's
//! completion of it) and of `junit.xml` ([`write_junit`]). Both write atomically (a temporary
//! file, then a rename), so a reader never sees half a record, and a failed
//! write (a full disk) leaves no temporary file behind.
//!
//! Must not: create run folders or choose their names (the host does), or
//! write an instance's files (the runtime's record does, with the line
//! types of [`crate::schema`]).

use std::fmt::{self, Write as _};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::layout::{JUNIT_XML, PEERS_JSON, RUN_JSON, SUMMARY_JSON};
use crate::schema::{PeersRecord, RunRecord, Summary};

/// Write `junit.xml` into `run_dir` (rendered from the runner's summary).
/// Returns the file's path.
pub fn write_junit(run_dir: &Path, summary: &Summary) -> io::Result<PathBuf> {
    let path = run_dir.join(JUNIT_XML);
    write_atomic(&path, crate::junit::render(summary).as_bytes())?;
    Ok(path)
}

/// Write `run.json` into `run_dir`.
pub fn write_run_record(run_dir: &Path, record: &RunRecord) -> io::Result<()> {
    write_json(&run_dir.join(RUN_JSON), record)
}

/// Write `peers.json` into `run_dir`.
pub fn write_peers(run_dir: &Path, peers: &PeersRecord) -> io::Result<()> {
    write_json(&run_dir.join(PEERS_JSON), peers)
}

/// What goes into `summary.json`.
pub enum SummaryContent<'a> {
    /// The runner's record of the run (pretty JSON).
    Runner(&'a Summary),
    /// Post-processing: the runner's file as it was (its entries kept byte
    /// for byte and in order; `None` when the runner wrote none), with
    /// `aggregates` appended (or replaced).
    WithAggregates {
        original: Option<&'a str>,
        aggregates: &'a Value,
    },
    /// As `WithAggregates`, with the array `aggregates.<key>` (a
    /// placeholder in `aggregates`) taken from `rows` one element at a
    /// time, so a big run's array (one element per instance) is never a
    /// `Value` whole. The file is the same as with the whole array.
    WithAggregateRows {
        original: Option<&'a str>,
        aggregates: &'a Value,
        key: &'a str,
        rows: &'a mut dyn Iterator<Item = Value>,
    },
}

/// Why `summary.json` was not written.
#[derive(Debug)]
pub enum SummaryError {
    /// The runner's file is not a JSON object: it is left as it is.
    NotAnObject(String),
    Io(io::Error),
}

impl fmt::Display for SummaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SummaryError::NotAnObject(e) => {
                write!(f, "summary.json is not a JSON object ({e}); left as it is")
            }
            SummaryError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SummaryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SummaryError::Io(e) => Some(e),
            SummaryError::NotAnObject(_) => None,
        }
    }
}

/// The one writer of `summary.json` in `run_dir`: every runner, `peerlab
/// bench` and post-processing call this. Returns the file's path.
pub fn write_summary(run_dir: &Path, content: SummaryContent<'_>) -> Result<PathBuf, SummaryError> {
    let path = run_dir.join(SUMMARY_JSON);
    let text = match content {
        SummaryContent::Runner(summary) => pretty_json(summary).map_err(SummaryError::Io)?,
        SummaryContent::WithAggregates {
            original,
            aggregates,
        } => complete(original, aggregates)?,
        SummaryContent::WithAggregateRows {
            original,
            aggregates,
            key,
            rows,
        } => complete_rows(original, aggregates, Some((key, rows)))?,
    };
    write_atomic(&path, text.as_bytes()).map_err(SummaryError::Io)?;
    Ok(path)
}

fn pretty_json<T: Serialize>(value: &T) -> io::Result<String> {
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    Ok(text + "\n")
}

/// Write JSON atomically, pretty-printed with a final newline.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    write_atomic(path, pretty_json(value)?.as_bytes())
}

/// Write a file atomically: `<path>.tmp`, then a rename. On failure the
/// temporary file is removed and `path` keeps what it had.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// The new text of `summary.json`: `original`'s entries (or none), then
/// `"aggregates": <aggregates>`.
///
/// The aggregates are printed with sorted keys, one line per element of an
/// array of objects (one line per instance, per event) and arrays of numbers
/// on one line, so the file stays readable and diffable with any serde_json
/// features enabled elsewhere in the build.
pub fn complete(original: Option<&str>, aggregates: &Value) -> Result<String, SummaryError> {
    complete_rows(original, aggregates, None)
}

/// The array under `aggregates.<key>`, given one element at a time.
type Rows<'a> = Option<(&'a str, &'a mut dyn Iterator<Item = Value>)>;

fn complete_rows(
    original: Option<&str>,
    aggregates: &Value,
    rows: Rows<'_>,
) -> Result<String, SummaryError> {
    let entries = match original {
        Some(text) => {
            serde_json::from_str::<Entries>(text)
                .map_err(|e| SummaryError::NotAnObject(e.to_string()))?
                .0
        }
        None => Vec::new(),
    };
    let mut out = String::from("{\n");
    for (key, raw) in entries.iter().filter(|(k, _)| k != "aggregates") {
        let _ = writeln!(out, "  {}: {},", Value::String(key.clone()), raw.get());
    }
    out.push_str("  \"aggregates\": ");
    pretty(aggregates, 2, &mut out, rows);
    out.push_str("\n}\n");
    Ok(out)
}

/// The top-level entries of a JSON object, in file order, values untouched.
struct Entries(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Objects on several lines; arrays of scalars on one line; elements of
/// arrays of containers one per line, each compact.
fn pretty(v: &Value, indent: usize, out: &mut String, mut rows: Rows<'_>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, k) in keys.iter().enumerate() {
                out.push_str(&" ".repeat(indent + 2));
                compact(&Value::String((*k).clone()), out);
                out.push_str(": ");
                match &map[k.as_str()] {
                    // `aggregates.metrics`: one metric per line (a run
                    // declares dozens; each is a flat record).
                    Value::Object(rows) if indent == 2 && k.as_str() == "metrics" => {
                        one_per_line(rows, indent + 2, out)
                    }
                    _ if rows.as_ref().is_some_and(|r| r.0 == k.as_str()) => {
                        if let Some((_, items)) = rows.take() {
                            stream_array(items, indent + 2, out);
                        }
                    }
                    v => pretty(v, indent + 2, out, None),
                }
                if i + 1 < keys.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(&" ".repeat(indent));
            out.push('}');
        }
        Value::Array(items) if items.iter().any(|x| x.is_object() || x.is_array()) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&" ".repeat(indent + 2));
                compact(item, out);
                if i + 1 < items.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(&" ".repeat(indent));
            out.push(']');
        }
        other => compact(other, out),
    }
}

/// An array of objects given one at a time, printed as [`pretty`] prints
/// one: an element per line, each compact (`[]` when there is none).
fn stream_array(items: &mut dyn Iterator<Item = Value>, indent: usize, out: &mut String) {
    let mut items = items.peekable();
    if items.peek().is_none() {
        out.push_str("[]");
        return;
    }
    out.push_str("[\n");
    while let Some(item) = items.next() {
        out.push_str(&" ".repeat(indent + 2));
        compact(&item, out);
        if items.peek().is_some() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str(&" ".repeat(indent));
    out.push(']');
}

/// An object with each entry compact on its own line, keys sorted.
fn one_per_line(map: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    if map.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push_str("{\n");
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for (i, k) in keys.iter().enumerate() {
        out.push_str(&" ".repeat(indent + 2));
        compact(&Value::String((*k).clone()), out);
        out.push_str(": ");
        compact(&map[k.as_str()], out);
        if i + 1 < keys.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str(&" ".repeat(indent));
    out.push('}');
}

/// One-line JSON with sorted keys.
fn compact(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            out.push('{');
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                compact(&Value::String((*k).clone()), out);
                out.push_str(": ");
                compact(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                compact(item, out);
            }
            out.push(']');
        }
        // Scalars: serde_json's own escaping and number format.
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_given_one_at_a_time_print_as_the_whole_array() {
        let original = "{\n  \"run_id\": \"r\",\n  \"aggregates\": {\"old\": 1}\n}\n";
        for n in [0, 1, 3] {
            let rows: Vec<Value> = (0..n)
                .map(|i| json!({"id": i, "by_type": {"b": [1, 2], "a": {}}}))
                .collect();
            let whole = json!({"z": [1, 2], "per_instance": rows.clone(), "a": {"k": 1}});
            let placeholder = json!({"z": [1, 2], "per_instance": [], "a": {"k": 1}});
            let mut it = rows.into_iter();
            let streamed = complete_rows(
                Some(original),
                &placeholder,
                Some(("per_instance", &mut it)),
            )
            .unwrap();
            assert_eq!(
                streamed,
                complete(Some(original), &whole).unwrap(),
                "{n} rows"
            );
        }
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file_and_keeps_the_old_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        fs::write(&path, "{}\n").unwrap();
        // The temporary file on a "full disk": every write fails.
        let tmp = dir.path().join("summary.json.tmp");
        std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
        let err = write_json(&path, &json!({"outcome": "passed"})).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
        assert!(
            fs::symlink_metadata(&tmp).is_err(),
            "summary.json.tmp is left behind"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "{}\n");
        write_json(&path, &json!({"outcome": "passed"})).unwrap();
        assert!(fs::read_to_string(&path).unwrap().contains("passed"));
    }

    #[test]
    fn keeps_runner_fields_verbatim_and_in_order() {
        let original = "{ \"run_id\": \"0001-x\",\n  \"verdicts\": [{\"name\": \"a\",   \"passed\": true}],\n  \"aggregates\": {\"old\": 1},\n  \"duration_s\": 1.50 }";
        let aggregates = json!({"b": [1, 2], "a": {"z": [{"k": 1}], "y": "s\"q"}});
        let out = complete(Some(original), &aggregates).unwrap();
        let expected = r#"{
  "run_id": "0001-x",
  "verdicts": [{"name": "a",   "passed": true}],
  "duration_s": 1.50,
  "aggregates": {
    "a": {
      "y": "s\"q",
      "z": [
        {"k": 1}
      ]
    },
    "b": [1, 2]
  }
}
"#;
        assert_eq!(out, expected);
        // Completing twice gives the same file.
        let again = complete(Some(&out), &aggregates).unwrap();
        assert_eq!(again, out);
        let parsed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["duration_s"], json!(1.5));
    }

    #[test]
    fn each_metric_of_the_aggregates_is_one_line() {
        let agg = json!({"metrics": {"b.x": {"kind": "counter", "total": 2.0}, "a.y": {"kind": "gauge"}},
                         "time": {"first_t": 1.0}});
        let text = complete(None, &agg).unwrap();
        assert!(
            text.contains("    \"metrics\": {\n      \"a.y\": {\"kind\": \"gauge\"},\n      \"b.x\": {\"kind\": \"counter\", \"total\": 2.0}\n    },\n"),
            "{text}"
        );
        assert!(
            text.contains("    \"time\": {\n      \"first_t\": 1.0\n    }\n"),
            "{text}"
        );
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["aggregates"], agg);
    }

    #[test]
    fn no_summary_gives_aggregates_only() {
        let out = complete(None, &json!({"x": {}})).unwrap();
        assert_eq!(out, "{\n  \"aggregates\": {\n    \"x\": {}\n  }\n}\n");
    }

    #[test]
    fn a_broken_summary_is_refused_and_left_alone() {
        assert!(matches!(
            complete(Some("{\"a\": "), &json!({})),
            Err(SummaryError::NotAnObject(_))
        ));
        assert!(matches!(
            complete(Some("[1]"), &json!({})),
            Err(SummaryError::NotAnObject(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let err = write_summary(
            dir.path(),
            SummaryContent::WithAggregates {
                original: Some("[1]"),
                aggregates: &json!({}),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("left as it is"), "{err}");
        assert!(!dir.path().join(SUMMARY_JSON).exists());
    }

    #[test]
    fn the_runners_summary_is_pretty_json() {
        let dir = tempfile::tempdir().unwrap();
        let s = Summary {
            outcome: Some(crate::RunStatus::Passed),
            ..Summary::default()
        };
        let path = write_summary(dir.path(), SummaryContent::Runner(&s)).unwrap();
        let text = fs::read_to_string(path).unwrap();
        assert!(text.contains("\n  \"outcome\": \"passed\",\n"), "{text}");
        assert!(text.ends_with("}\n"));
        assert_eq!(serde_json::from_str::<Summary>(&text).unwrap(), s);
    }
}
