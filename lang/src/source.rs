//! Turning a file's bytes into source text, and the limits that keep a
//! hostile or runaway input from exhausting the machine: bytes per file,
//! bytes, files and commands per scenario (with its includes), and
//! diagnostics kept per parse.
//!
//! No I/O: callers read (at most `limit + 1` bytes, so an endless file such
//! as `/dev/zero` costs nothing) and hand the bytes to [`decode_source`],
//! which refuses a file over its limit, accepts a UTF-8 byte-order mark and
//! reports invalid UTF-8 at its line and byte.

use std::fmt;

use crate::diag::{Diagnostic, Location};

/// How much input one parse accepts. The defaults are far above real use
/// (the largest Gumby scenario is 1.3 MB with 16,550 commands and nine
/// includes in the whole corpus; configs are a few KB) and far below what
/// would exhaust a machine. Documented in `docs/compat.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `.scenario` file, the top one or an included one.
    pub scenario_bytes: u64,
    /// Largest `.conf` file.
    pub config_bytes: u64,
    /// All the files of one scenario together (an include read twice counts twice).
    pub total_bytes: u64,
    /// `&include`s read in one scenario (each time a file is included counts).
    pub includes: usize,
    /// Commands in one scenario after includes are expanded.
    pub commands: usize,
    /// Diagnostics kept per parse; the rest are counted in one last diagnostic.
    pub diagnostics: usize,
}

impl Limits {
    /// The limits every parse uses unless told otherwise.
    pub const DEFAULT: Limits = Limits {
        scenario_bytes: 16 << 20,
        config_bytes: 1 << 20,
        total_bytes: 64 << 20,
        includes: 1_000,
        commands: 500_000,
        diagnostics: 1_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// `16 MiB`, `1 MiB`, `300 bytes`: a byte count for messages.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if n >= size {
            let v = n as f64 / size as f64;
            return if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{v:.1} {unit}")
            };
        }
    }
    format!("{n} bytes")
}

/// Why a file's bytes are not usable source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// More than `limit` bytes (the reader stopped after `limit + 1`).
    TooLarge {
        /// The limit that was crossed.
        limit: u64,
    },
    /// Not UTF-8: the first bad byte.
    InvalidUtf8 {
        /// Byte offset in the file (after a byte-order mark, if any).
        offset: usize,
        /// 1-based line.
        line: u32,
        /// 1-based byte of the line.
        byte_in_line: usize,
        /// 1-based column in characters (what came before is valid).
        column: u32,
        /// The offending byte.
        byte: u8,
    },
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::TooLarge { limit } => {
                write!(f, "larger than {}", human_bytes(*limit))
            }
            SourceError::InvalidUtf8 {
                line,
                byte_in_line,
                byte,
                ..
            } => write!(
                f,
                "not valid UTF-8: byte 0x{byte:02x} at line {line}, byte {byte_in_line} of the line"
            ),
        }
    }
}

impl SourceError {
    /// The diagnostic for file `name`: a file over its limit points at
    /// `at` (the `&include` line) or names the file; invalid UTF-8 points
    /// at the bad byte.
    pub fn to_diagnostic(&self, name: &str, at: Option<Location>) -> Diagnostic {
        match self {
            SourceError::TooLarge { limit } => {
                let d = Diagnostic::error(format!(
                    "`{}` is larger than {}, the limit for one file",
                    clip_name(name),
                    human_bytes(*limit)
                ))
                .with_code("file-too-large")
                .with_help("peerlab refuses files this large so that a wrong path (a device, a log) cannot exhaust the machine; the limits are in docs/compat.md, \"Limits\"");
                match at {
                    Some(l) => d.at(l),
                    None => d.at(Location::file_only(name)),
                }
            }
            SourceError::InvalidUtf8 {
                offset,
                line,
                byte_in_line,
                column,
                byte,
            } => Diagnostic::error(format!(
                "`{}` is not valid UTF-8: byte 0x{byte:02x} at line {line}, byte {byte_in_line} of the line (byte {offset} of the file)",
                clip_name(name)
            ))
            .with_code("invalid-utf8")
            .at(Location {
                file: name.into(),
                span: *offset..offset + 1,
                line: *line,
                column: *column,
            })
            .with_help("scenario and config files are UTF-8 text; convert it (e.g. `iconv -f latin1 -t utf-8`) or remove the byte"),
        }
    }
}

fn clip_name(name: &str) -> &str {
    match name.char_indices().nth(200) {
        Some((i, _)) => &name[..i],
        None => name,
    }
}

/// The byte-order mark some editors put at the start of a UTF-8 file.
pub const BOM: &str = "\u{feff}";

/// A file's text from its `bytes`: refused when longer than `limit`,
/// without a leading byte-order mark, and only when valid UTF-8.
pub fn decode_source(bytes: Vec<u8>, limit: u64) -> Result<String, SourceError> {
    if bytes.len() as u64 > limit {
        return Err(SourceError::TooLarge { limit });
    }
    let mut bytes = bytes;
    if bytes.starts_with(BOM.as_bytes()) {
        bytes.drain(..BOM.len());
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let offset = e.utf8_error().valid_up_to();
        let valid = &bytes[..offset];
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        // The bytes before the bad one are valid UTF-8 (valid_up_to).
        let column = std::str::from_utf8(&valid[line_start..]).map_or(0, |s| s.chars().count()) + 1;
        SourceError::InvalidUtf8 {
            offset,
            line: u32::try_from(line).unwrap_or(u32::MAX),
            byte_in_line: offset - line_start + 1,
            column: u32::try_from(column).unwrap_or(u32::MAX),
            byte: bytes[offset],
        }
    })
}

/// `1,000,000`: a count for messages.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Strip a leading byte-order mark from text already decoded.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// Collects diagnostics up to a limit; beyond it, counts them and ends
/// with one diagnostic saying how many were left out (as severe as the
/// worst of them, so an error is never hidden behind warnings).
#[derive(Debug)]
pub(crate) struct DiagSink {
    kept: Vec<Diagnostic>,
    max: usize,
    dropped: usize,
    worst_dropped: Option<crate::diag::Severity>,
}

impl DiagSink {
    pub(crate) fn new(max: usize) -> Self {
        DiagSink {
            kept: Vec::new(),
            max,
            dropped: 0,
            worst_dropped: None,
        }
    }

    pub(crate) fn push(&mut self, d: Diagnostic) {
        if self.kept.len() < self.max {
            self.kept.push(d);
        } else {
            self.dropped += 1;
            self.worst_dropped = Some(match self.worst_dropped {
                Some(s) => s.min(d.severity),
                None => d.severity,
            });
        }
    }

    pub(crate) fn extend(&mut self, ds: impl IntoIterator<Item = Diagnostic>) {
        for d in ds {
            self.push(d);
        }
    }

    pub(crate) fn finish(mut self) -> Vec<Diagnostic> {
        if let Some(sev) = self.worst_dropped {
            self.kept.push(
                Diagnostic::new(
                    sev,
                    format!(
                        "{} more problems not shown (peerlab shows the first {})",
                        self.dropped, self.max
                    ),
                )
                .with_code("too-many-problems")
                .with_help("fix the ones above and check again"),
            );
        }
        self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bom_is_dropped_and_bad_bytes_are_located() {
        assert_eq!(
            decode_source(b"\xef\xbb\xbf@1 a\n".to_vec(), 100).unwrap(),
            "@1 a\n"
        );
        assert_eq!(
            decode_source(b"@1 a\n@2 \xc3\xa9t\xff\n".to_vec(), 100),
            Err(SourceError::InvalidUtf8 {
                offset: 11,
                line: 2,
                byte_in_line: 7,
                column: 6,
                byte: 0xff
            })
        );
        assert_eq!(
            decode_source(vec![b'a'; 11], 10),
            Err(SourceError::TooLarge { limit: 10 })
        );
        assert_eq!(decode_source(vec![b'a'; 10], 10).unwrap().len(), 10);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(16 << 20), "16 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(thousands(500_000), "500,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
    }

    #[test]
    fn the_sink_keeps_the_first_and_never_hides_an_error() {
        let mut s = DiagSink::new(2);
        s.push(Diagnostic::warning("a"));
        s.push(Diagnostic::warning("b"));
        s.push(Diagnostic::warning("c"));
        s.push(Diagnostic::error("d"));
        let out = s.finish();
        assert_eq!(out.len(), 3);
        assert!(out[2].is_error());
        assert_eq!(
            out[2].message,
            "2 more problems not shown (peerlab shows the first 2)"
        );
    }
}
