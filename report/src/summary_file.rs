//! Completing `summary.json`: the runner's fields are kept byte for byte and
//! in their order; only the `aggregates` entry is added (or replaced, when
//! the report is made again). Pure text in, text out.
//!
//! The aggregates are printed with sorted keys, one line per element of an
//! array of objects (one line per instance, per event) and arrays of numbers
//! on one line, so the file stays readable and diffable with any serde_json
//! features enabled elsewhere in the build.

use std::fmt::{self, Write};

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

/// Why `summary.json` could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum CompleteError {
    #[error("summary.json is not a JSON object ({0}); left as it is")]
    NotAnObject(String),
    #[error("cannot encode the aggregates: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The new text of `summary.json`: `original`'s entries (or none), then
/// `"aggregates": <aggregates>`.
pub fn complete(
    original: Option<&str>,
    aggregates: &impl serde::Serialize,
) -> Result<String, CompleteError> {
    let entries = match original {
        Some(text) => {
            serde_json::from_str::<Entries>(text)
                .map_err(|e| CompleteError::NotAnObject(e.to_string()))?
                .0
        }
        None => Vec::new(),
    };
    let value = serde_json::to_value(aggregates)?;
    let mut out = String::from("{\n");
    for (key, raw) in entries.iter().filter(|(k, _)| k != "aggregates") {
        let _ = writeln!(out, "  {}: {},", serde_json::to_string(key)?, raw.get());
    }
    out.push_str("  \"aggregates\": ");
    pretty(&value, 2, &mut out);
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
fn pretty(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, k) in keys.iter().enumerate() {
                out.push_str(&" ".repeat(indent + 2));
                compact(&Value::String((*k).clone()), out);
                out.push_str(": ");
                pretty(&map[k.as_str()], indent + 2, out);
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
    fn keeps_runner_fields_verbatim_and_in_order() {
        let original = "{ \"run_id\": \"0001-x\",\n  \"verdicts\": [{\"name\": \"a\",   \"passed\": true}],\n  \"aggregates\": {\"old\": 1},\n  \"duration_s\": 1.50 }";
        let out = complete(
            Some(original),
            &json!({"b": [1, 2], "a": {"z": [{"k": 1}], "y": "s\"q"}}),
        )
        .unwrap();
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
        let again = complete(
            Some(&out),
            &json!({"b": [1, 2], "a": {"z": [{"k": 1}], "y": "s\"q"}}),
        )
        .unwrap();
        assert_eq!(again, out);
        let parsed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["duration_s"], json!(1.5));
    }

    #[test]
    fn no_summary_gives_aggregates_only() {
        let out = complete(None, &json!({"x": {}})).unwrap();
        assert_eq!(out, "{\n  \"aggregates\": {\n    \"x\": {}\n  }\n}\n");
    }

    #[test]
    fn a_broken_summary_is_refused() {
        assert!(matches!(
            complete(Some("{\"a\": "), &json!({})),
            Err(CompleteError::NotAnObject(_))
        ));
        assert!(matches!(
            complete(Some("[1]"), &json!({})),
            Err(CompleteError::NotAnObject(_))
        ));
    }
}
