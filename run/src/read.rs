//! The one reader of a run folder's records: `run.json`, `summary.json` and `peers.json`
//! into the types of [`crate::schema`] (leniently: a missing field takes its
//! default), and [`OrderedCounters`], the container peerlab-report reads a
//! statistics line's counters into. The host, `peerlab bench` and
//! peerlab-report all read through here.
//!
//! Must not: warn, print or decide what a damaged file means; it says what
//! is wrong ([`RecordError`]) and the caller decides.

use std::borrow::Cow;
use std::fmt;
use std::fs;
use std::io;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde_json::Value;

use crate::layout::{PEERS_JSON, RUN_JSON, SUMMARY_JSON};
use crate::schema::{PeersRecord, RunRecord, Summary};

/// Why a record could not be read.
#[derive(Debug)]
pub enum RecordError {
    Io(io::Error),
    /// Not JSON.
    Malformed(serde_json::Error),
    /// JSON, but not an object.
    NotAnObject,
    /// An object whose fields do not have the record's types.
    Schema(serde_json::Error),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Io(e) => e.fmt(f),
            RecordError::Malformed(e) => write!(f, "malformed JSON ({e})"),
            RecordError::NotAnObject => f.write_str("not a JSON object"),
            RecordError::Schema(e) => write!(f, "unexpected field ({e})"),
        }
    }
}

impl std::error::Error for RecordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecordError::Io(e) => Some(e),
            RecordError::Malformed(e) | RecordError::Schema(e) => Some(e),
            RecordError::NotAnObject => None,
        }
    }
}

fn parse<T: DeserializeOwned>(text: &str) -> Result<T, RecordError> {
    // A well-formed object straight into its type: no `Value` of the whole
    // file (a 100,000-instance run's summary.json is 100 MB with its
    // aggregates, which this skips, and would take ~8x that as a `Value`).
    if text.trim_start().starts_with('{')
        && let Ok(record) = serde_json::from_str::<T>(text)
    {
        return Ok(record);
    }
    // Anything else through a `Value`, so each problem is told as before:
    // malformed, not an object, or the wrong schema.
    let value: Value = serde_json::from_str(text).map_err(RecordError::Malformed)?;
    if !value.is_object() {
        return Err(RecordError::NotAnObject);
    }
    T::deserialize(value).map_err(RecordError::Schema)
}

/// `run.json`'s text, typed.
pub fn run_record_from_str(text: &str) -> Result<RunRecord, RecordError> {
    parse(text)
}

/// `summary.json`'s text, typed (its `aggregates` are not read).
pub fn summary_from_str(text: &str) -> Result<Summary, RecordError> {
    parse(text)
}

/// `run_dir/run.json`, typed.
pub fn read_run_record(run_dir: &Path) -> Result<RunRecord, RecordError> {
    let text = fs::read_to_string(run_dir.join(RUN_JSON)).map_err(RecordError::Io)?;
    run_record_from_str(&text)
}

/// `run_dir/peers.json`, typed.
pub fn read_peers(run_dir: &Path) -> Result<PeersRecord, RecordError> {
    let text = fs::read_to_string(run_dir.join(PEERS_JSON)).map_err(RecordError::Io)?;
    parse(&text)
}

/// `run_dir/summary.json`, typed.
pub fn read_summary(run_dir: &Path) -> Result<Summary, RecordError> {
    let text = fs::read_to_string(run_dir.join(SUMMARY_JSON)).map_err(RecordError::Io)?;
    summary_from_str(&text)
}

/// A statistics line's `counters`, in file order, borrowing names that
/// need no unescaping (`StatsLine<OrderedCounters>`). A counter that is
/// null, not a number or not finite makes the line malformed.
#[derive(Debug, Default)]
pub struct OrderedCounters<'a>(pub Vec<(Cow<'a, str>, f64)>);

impl<'de: 'a, 'a> Deserialize<'de> for OrderedCounters<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = OrderedCounters<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of counter names to numbers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(Name(name)) = map.next_key::<Name<'a>>()? {
                    let value: Option<f64> = map.next_value()?;
                    let value = value.ok_or_else(|| {
                        de::Error::custom(format_args!(
                            "counter {name:?} is null, expected a number"
                        ))
                    })?;
                    if !value.is_finite() {
                        return Err(de::Error::custom(format_args!(
                            "counter {name:?} is not finite"
                        )));
                    }
                    out.push((name, value));
                }
                Ok(OrderedCounters(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

struct Name<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Name<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a counter name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::StatsLine;

    #[test]
    fn records_say_what_is_wrong() {
        assert!(matches!(
            run_record_from_str("{\"run_id\": "),
            Err(RecordError::Malformed(_))
        ));
        assert!(matches!(
            summary_from_str("[1]"),
            Err(RecordError::NotAnObject)
        ));
        assert!(matches!(
            summary_from_str("{\"seed\": \"x\"}"),
            Err(RecordError::Schema(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_run_record(dir.path()),
            Err(RecordError::Io(_))
        ));
    }

    #[test]
    fn counters_keep_file_order_and_refuse_non_numbers() {
        let line: StatsLine<OrderedCounters<'_>> = serde_json::from_str(
            "{\"t\": 2.0, \"reset\": true, \"counters\": {\"z\": 1, \"msg_in/\\u0062\": 3}}",
        )
        .unwrap();
        assert!(line.reset);
        let names: Vec<&str> = line.counters.0.iter().map(|(n, _)| n.as_ref()).collect();
        assert_eq!(names, vec!["z", "msg_in/b"]);
        assert!(
            serde_json::from_str::<StatsLine<OrderedCounters<'_>>>(
                "{\"t\": 1, \"counters\": {\"a\": null}}"
            )
            .is_err()
        );
    }
}
