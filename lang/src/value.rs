//! Typed conversion of the strings scenarios and configs hold: integers,
//! floats, booleans, durations, sizes in bytes and `[[h:]m:]s` clock times.
//!
//! Each function takes the text as written and returns the value or a
//! [`ValueError`] whose message says what was expected; callers attach the
//! location. No I/O, no panics.

use std::time::Duration;

use thiserror::Error;

/// Why a string is not a value of the wanted type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    /// Not an integer (or out of range).
    #[error("expected an integer, found `{0}`")]
    Int(String),
    /// Not a finite number.
    #[error("expected a number, found `{0}`")]
    Float(String),
    /// Not a boolean word.
    #[error("expected true/false (or yes/no, on/off, 1/0), found `{0}`")]
    Bool(String),
    /// Not a duration.
    #[error("expected a duration like `90`, `1.5s`, `50ms`, `2m`, `1h` or `1:30`, found `{0}`")]
    Duration(String),
    /// Not a bandwidth.
    #[error("expected a bandwidth like `10Mbit`, `500kbit`, `1Gbit` or `unlimited`, found `{0}`")]
    Bandwidth(String),
    /// Not a byte size.
    #[error("expected a size in bytes like `1500`, `64kB`, `1MB` or `64KiB`, found `{0}`")]
    Bytes(String),
    /// Not a `[[h:]m:]s` time.
    #[error("expected a time `[[h:]m:]s` like `90`, `1:30` or `0:10.5`, found `{0}`")]
    Clock(String),
    /// Not a size in bytes.
    #[error("expected a size like `64MB`, `512KiB`, `1GB` or `1000000` (bytes), found `{0}`")]
    Size(String),
    /// A number outside the allowed range.
    #[error("`{value}` is out of range: {why}")]
    Range {
        /// The text as written.
        value: String,
        /// What the range is.
        why: String,
    },
}

/// A signed integer in decimal, with an optional leading `+` or `-`.
pub fn parse_int(s: &str) -> Result<i64, ValueError> {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::Int(s.to_string()));
    }
    t.parse::<i64>().map_err(|_| ValueError::Int(s.to_string()))
}

/// A non-negative integer that fits in `u64`.
pub fn parse_uint(s: &str) -> Result<u64, ValueError> {
    let t = s.trim();
    let digits = t.strip_prefix('+').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::Int(s.to_string()));
    }
    digits
        .parse::<u64>()
        .map_err(|_| ValueError::Int(s.to_string()))
}

/// A finite decimal number (`1`, `-2.5`, `1e3`); `inf` and `nan` are refused.
pub fn parse_float(s: &str) -> Result<f64, ValueError> {
    let t = s.trim();
    let ok_chars = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    match t.parse::<f64>() {
        Ok(v) if ok_chars && v.is_finite() => Ok(v),
        _ => Err(ValueError::Float(s.to_string())),
    }
}

/// `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`, in any case.
pub fn parse_bool(s: &str) -> Result<bool, ValueError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(ValueError::Bool(s.to_string())),
    }
}

/// An unsigned decimal `123` or `123.45` (no sign, no exponent).
fn plain_decimal(s: &str) -> Option<f64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A clock time `[[h:]m:]s` in seconds: hours and minutes are whole
/// numbers, seconds may be fractional, and no field has an upper bound
/// (`90`, `1:30` and `0:90` are all ninety seconds).
pub fn parse_clock(s: &str) -> Result<f64, ValueError> {
    let err = || ValueError::Clock(s.to_string());
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() > 3 {
        return Err(err());
    }
    let (last, rest) = parts.split_last().ok_or_else(err)?;
    let mut total = plain_decimal(last).ok_or_else(err)?;
    let mut factor = 60.0;
    for p in rest.iter().rev() {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let v: f64 = p.parse::<f64>().map_err(|_| err())?;
        total += v * factor;
        factor *= 60.0;
    }
    if total.is_finite() {
        Ok(total)
    } else {
        Err(err())
    }
}

/// A duration: plain seconds (`90`, `1.5`), a clock time (`1:30`), or a
/// number with a unit: `ms`, `s`, `m`, `h`.
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let t = s.trim();
    let err = || ValueError::Duration(s.to_string());
    let secs = if t.contains(':') {
        parse_clock(t).map_err(|_| err())?
    } else {
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n = plain_decimal(num).ok_or_else(err)?;
        let scale = match unit {
            "" | "s" => 1.0,
            "ms" => 0.001,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        n * scale
    };
    Duration::try_from_secs_f64(secs).map_err(|_| err())
}

/// A size in bytes: a whole number of bytes (`1000000`), or a number with
/// a unit: `B`, `kB`/`KB`, `MB`, `GB` (powers of 1000) or `KiB`, `MiB`,
/// `GiB` (powers of 1024); `1.5MB` is 1,500,000 bytes.
pub fn parse_size(s: &str) -> Result<u64, ValueError> {
    let t = s.trim();
    let err = || ValueError::Size(s.to_string());
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n = plain_decimal(num).ok_or_else(err)?;
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(err()),
    };
    let bytes = (n * scale).round();
    if bytes.is_finite() && bytes < u64::MAX as f64 {
        Ok(bytes as u64)
    } else {
        Err(err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000000"), Ok(1_000_000));
        assert_eq!(parse_size("64MB"), Ok(64_000_000));
        assert_eq!(parse_size("1.5 MB"), Ok(1_500_000));
        assert_eq!(parse_size("2KiB"), Ok(2048));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        for bad in ["", "MB", "-1MB", "1XB", "1e3", "1.2.3"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int("42"), Ok(42));
        assert_eq!(parse_int(" -7 "), Ok(-7));
        assert_eq!(parse_int("+3"), Ok(3));
        assert!(parse_int("4.0").is_err());
        assert!(parse_int("").is_err());
        assert!(parse_int("99999999999999999999").is_err());
        assert_eq!(parse_uint("5"), Ok(5));
        assert!(parse_uint("-5").is_err());
    }

    #[test]
    fn floats() {
        assert_eq!(parse_float("1.5"), Ok(1.5));
        assert_eq!(parse_float("-2"), Ok(-2.0));
        assert_eq!(parse_float("1e3"), Ok(1000.0));
        assert!(parse_float("inf").is_err());
        assert!(parse_float("NaN").is_err());
        assert!(parse_float("1e999").is_err());
    }

    #[test]
    fn bools() {
        for t in ["true", "TRUE", "True", "yes", "On", "1"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["false", "FALSE", "no", "off", "0"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        assert_eq!(
            parse_bool("yup").unwrap_err().to_string(),
            "expected true/false (or yes/no, on/off, 1/0), found `yup`"
        );
    }

    #[test]
    fn clocks() {
        assert_eq!(parse_clock("90"), Ok(90.0));
        assert_eq!(parse_clock("1:30"), Ok(90.0));
        assert_eq!(parse_clock("0:90"), Ok(90.0));
        assert_eq!(parse_clock("1:0:0"), Ok(3600.0));
        assert_eq!(parse_clock("0:10.5"), Ok(10.5));
        assert_eq!(parse_clock("0.0"), Ok(0.0));
        for bad in [
            "", ":", "1:", ":1", "1.5:0", "-1", "1:2:3:4", "1e3", "a", "1.", ".5",
        ] {
            assert!(parse_clock(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        let d = |s| parse_duration(s).map(|d| d.as_secs_f64());
        assert_eq!(d("50ms"), Ok(0.05));
        assert_eq!(d("1.5s"), Ok(1.5));
        assert_eq!(d("2m"), Ok(120.0));
        assert_eq!(d("1h"), Ok(3600.0));
        assert_eq!(d("1:30"), Ok(90.0));
        assert_eq!(d("165"), Ok(165.0));
        for bad in ["", "s", "1x", "-1", "1.5.2s", "ms"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
