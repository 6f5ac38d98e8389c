//! Argument types and values as they cross the plugin boundary, and their
//! conversion from scenario words and into plain Rust types.
//!
//! This module owns the *meaning* of an argument type (what `"1:30"` is as a
//! duration, which words are booleans). It does no I/O and knows nothing of
//! scenarios or modules.

use std::fmt;
use std::time::Duration;

use abi_stable::StableAbi;
use abi_stable::std_types::{RDuration, RString};

/// The type of a callback parameter, as declared in a [`crate::ParamSpec`].
///
/// An integer newtype rather than a Rust enum so that later minor versions
/// can add types: an unknown value is shown as `type#N` and refused by the
/// host, never undefined behaviour.
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash)]
pub struct ArgType(pub u8);

impl ArgType {
    /// Any text; scenario words are taken verbatim.
    pub const STRING: ArgType = ArgType(0);
    /// A signed 64-bit integer (`42`, `-3`).
    pub const INTEGER: ArgType = ArgType(1);
    /// A 64-bit float (`0.5`, `3`, `1e3`).
    pub const FLOAT: ArgType = ArgType(2);
    /// A boolean (`true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`, `t`/`f`).
    pub const BOOL: ArgType = ArgType(3);
    /// A non-negative duration: seconds (`30`, `2.5`), the scenario clock form
    /// (`1:30`, `1:00:00`) or with a unit (`500ms`, `30s`, `5m`, `1h`).
    pub const DURATION: ArgType = ArgType(4);

    /// The name shown to users (`string`, `integer`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ArgType::STRING => "string",
            ArgType::INTEGER => "integer",
            ArgType::FLOAT => "float",
            ArgType::BOOL => "bool",
            ArgType::DURATION => "duration",
            _ => "unknown type",
        }
    }

    /// Whether this host knows the type (a newer plugin may declare more).
    pub fn is_known(self) -> bool {
        self.0 <= 4
    }

    /// Convert one scenario word to a value of this type.
    ///
    /// The error says what was expected, e.g. `expected an integer, got "abc"`.
    pub fn parse(self, word: &str) -> Result<Value, String> {
        let got = || format!("expected {}, got {:?}", self.article_name(), word);
        match self {
            ArgType::STRING => Ok(Value::Str(word.into())),
            ArgType::INTEGER => word
                .trim()
                .parse::<i64>()
                .map(Value::Int)
                .map_err(|_| got()),
            ArgType::FLOAT => match word.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Value::Float(f)),
                _ => Err(got()),
            },
            ArgType::BOOL => parse_bool(word).map(Value::Bool).ok_or_else(got),
            ArgType::DURATION => parse_duration(word)
                .map(|d| Value::Duration(d.into()))
                .ok_or_else(got),
            _ => Err(format!("this host does not know argument type #{}", self.0)),
        }
    }

    /// Convert a value of any type to this type, where that loses nothing:
    /// strings are parsed, integers widen to floats and durations (seconds),
    /// floats become durations (seconds).
    pub fn convert(self, value: &Value) -> Result<Value, String> {
        match (self, value) {
            (_, Value::Str(s)) => self.parse(s.as_str()),
            (ArgType::INTEGER, Value::Int(_))
            | (ArgType::FLOAT, Value::Float(_))
            | (ArgType::BOOL, Value::Bool(_))
            | (ArgType::DURATION, Value::Duration(_)) => Ok(value.clone()),
            (ArgType::FLOAT, Value::Int(i)) => Ok(Value::Float(*i as f64)),
            (ArgType::DURATION, Value::Int(i)) if *i >= 0 => {
                Ok(Value::Duration(Duration::from_secs(*i as u64).into()))
            }
            (ArgType::DURATION, Value::Float(f)) if *f >= 0.0 && f.is_finite() => {
                Ok(Value::Duration(Duration::from_secs_f64(*f).into()))
            }
            (ArgType::STRING, v) => Ok(Value::Str(v.to_string().into())),
            (_, v) => Err(format!(
                "expected {}, got {} {}",
                self.article_name(),
                v.ty().name(),
                v
            )),
        }
    }

    fn article_name(self) -> String {
        match self {
            ArgType::INTEGER => "an integer".into(),
            ArgType::STRING => "a string".into(),
            ArgType::FLOAT => "a float".into(),
            ArgType::BOOL => "a bool".into(),
            ArgType::DURATION => "a duration".into(),
            _ => format!("type#{}", self.0),
        }
    }
}

impl fmt::Display for ArgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_known() {
            f.write_str(self.name())
        } else {
            write!(f, "type#{}", self.0)
        }
    }
}

impl fmt::Debug for ArgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A typed argument value.
///
/// Crosses the boundary wrapped in [`Value_NE`] (abi_stable's
/// `NonExhaustive`), so later minor versions can add variants; match with a
/// wildcard arm.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
#[sabi(kind(WithNonExhaustive(size = [u64; 6], traits(Debug, Clone, PartialEq))))]
#[non_exhaustive]
pub enum Value {
    /// Text.
    Str(RString),
    /// A signed integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A duration.
    Duration(RDuration),
}

impl Value {
    /// The [`ArgType`] of this value.
    pub fn ty(&self) -> ArgType {
        match self {
            Value::Str(_) => ArgType::STRING,
            Value::Int(_) => ArgType::INTEGER,
            Value::Float(_) => ArgType::FLOAT,
            Value::Bool(_) => ArgType::BOOL,
            Value::Duration(_) => ArgType::DURATION,
        }
    }

    /// Wrap for crossing the boundary.
    pub fn into_ne(self) -> Value_NE {
        Value_NE::new(self)
    }

    /// Unwrap a value that crossed the boundary; `None` when it is a variant
    /// this side does not know (sent by a newer peer).
    pub fn from_ne(ne: &Value_NE) -> Option<Value> {
        ne.as_enum().ok().cloned()
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Duration(d) => write!(f, "{}s", Duration::from(*d).as_secs_f64()),
        }
    }
}

/// Parse Gumby's boolean words (case-insensitive).
pub fn parse_bool(word: &str) -> Option<bool> {
    match word.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "on" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Parse a duration: plain seconds (`2.5`), the scenario clock form
/// (`[[hh:]mm:]ss`, e.g. `1:30`) or a number with a unit (`ms`, `s`, `m`, `h`).
pub fn parse_duration(word: &str) -> Option<Duration> {
    let w = word.trim();
    if w.is_empty() {
        return None;
    }
    let secs = if w.contains(':') {
        let parts: Vec<&str> = w.split(':').collect();
        if parts.len() > 3 {
            return None;
        }
        let mut total = 0.0;
        for (i, p) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let v: f64 = if last {
                p.parse().ok()?
            } else {
                p.parse::<u64>().ok()? as f64
            };
            total = total * 60.0 + v;
        }
        total
    } else {
        let (num, mult) = if let Some(n) = w.strip_suffix("ms") {
            (n, 0.001)
        } else if let Some(n) = w.strip_suffix('s') {
            (n, 1.0)
        } else if let Some(n) = w.strip_suffix('m') {
            (n, 60.0)
        } else if let Some(n) = w.strip_suffix('h') {
            (n, 3600.0)
        } else {
            (w, 1.0)
        };
        num.trim().parse::<f64>().ok()? * mult
    };
    if secs.is_finite() && secs >= 0.0 {
        Some(Duration::from_secs_f64(secs))
    } else {
        None
    }
}

/// A Rust type usable as a callback parameter: converts from a [`Value`]
/// of its declared [`ArgType`].
pub trait FromValue: Sized {
    /// The type declared for parameters of this Rust type.
    const TYPE: ArgType;
    /// Take the value; `None` if it has another type.
    fn from_value(value: &Value) -> Option<Self>;
}

/// A Rust type a callback can return, or pass to another module.
pub trait IntoValue {
    /// Wrap into a [`Value`].
    fn into_value(self) -> Value;
}

macro_rules! value_conv {
    ($t:ty, $ty:expr, $var:ident, |$v:ident| $from:expr, |$s:ident| $into:expr) => {
        impl FromValue for $t {
            const TYPE: ArgType = $ty;
            fn from_value(value: &Value) -> Option<Self> {
                match value {
                    Value::$var($v) => Some($from),
                    _ => None,
                }
            }
        }
        impl IntoValue for $t {
            fn into_value(self) -> Value {
                let $s = self;
                Value::$var($into)
            }
        }
    };
}

value_conv!(String, ArgType::STRING, Str, |v| v.to_string(), |s| s
    .into());
value_conv!(i64, ArgType::INTEGER, Int, |v| *v, |s| s);
value_conv!(f64, ArgType::FLOAT, Float, |v| *v, |s| s);
value_conv!(bool, ArgType::BOOL, Bool, |v| *v, |s| s);
value_conv!(
    Duration,
    ArgType::DURATION,
    Duration,
    |v| (*v).into(),
    |s| s.into()
);

impl IntoValue for &str {
    fn into_value(self) -> Value {
        Value::Str(self.into())
    }
}

impl IntoValue for Value {
    fn into_value(self) -> Value {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_parse_by_type() {
        assert_eq!(ArgType::INTEGER.parse("42"), Ok(Value::Int(42)));
        assert!(
            ArgType::INTEGER
                .parse("4x")
                .unwrap_err()
                .contains("expected an integer")
        );
        assert_eq!(ArgType::FLOAT.parse("0.5"), Ok(Value::Float(0.5)));
        assert_eq!(ArgType::BOOL.parse("Yes"), Ok(Value::Bool(true)));
        assert!(ArgType::BOOL.parse("maybe").is_err());
        assert_eq!(parse_duration("1:30"), Some(Duration::from_secs(90)));
        assert_eq!(
            parse_duration("1:00:02.5"),
            Some(Duration::from_secs_f64(3602.5))
        );
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration("a:b"), None);
    }

    #[test]
    fn conversion_widens_but_never_narrows() {
        assert_eq!(
            ArgType::FLOAT.convert(&Value::Int(3)),
            Ok(Value::Float(3.0))
        );
        assert!(ArgType::INTEGER.convert(&Value::Float(3.5)).is_err());
        assert_eq!(
            ArgType::DURATION.convert(&Value::Int(2)),
            Ok(Value::Duration(Duration::from_secs(2).into()))
        );
    }

    #[test]
    fn values_cross_as_nonexhaustive() {
        let ne = Value::Int(7).into_ne();
        assert_eq!(Value::from_ne(&ne), Some(Value::Int(7)));
    }
}
