//! The experiment config's syntax, ConfigObj-style: `key = value` lines,
//! `#` comments, values bare, `'single'`, `"double"` or `"""triple"""`
//! quoted, comma lists (`a, b` or `'a',`), and `[section]` headers.
//!
//! This layer only reads the text into a [`RawConfig`]; what the keys mean
//! is [`crate::experiment`]'s job. No I/O.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::diag::{Diagnostic, Location, SourceFile};
use crate::source::{DiagSink, Limits, SourceError, strip_bom};

/// A value as written: one string, or a comma list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RawValue {
    /// A single value (quotes removed).
    Str(String),
    /// A comma-separated list (`a, b` or `a,` for one item, `,` for none).
    List(Vec<String>),
}

impl RawValue {
    /// The single string, if this is not a list.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            RawValue::Str(s) => Some(s),
            RawValue::List(_) => None,
        }
    }

    /// The items: one for a string, all for a list.
    pub fn items(&self) -> Vec<&str> {
        match self {
            RawValue::Str(s) => vec![s.as_str()],
            RawValue::List(l) => l.iter().map(String::as_str).collect(),
        }
    }
}

impl fmt::Display for RawValue {
    /// A string as is; a list joined with `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawValue::Str(s) => f.write_str(s),
            RawValue::List(l) => f.write_str(&l.join(",")),
        }
    }
}

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The key as written (case kept).
    pub key: String,
    /// The value.
    pub value: RawValue,
    /// Where the key is.
    pub key_loc: Location,
    /// Where the value is (after `=`, without a trailing comment).
    pub value_loc: Location,
}

/// A `[name]` section (`[[name]]` for depth 2, and so on) and its entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    /// The name between the brackets.
    pub name: String,
    /// How many brackets.
    pub depth: usize,
    /// Where the header is.
    pub loc: Location,
    /// Its entries in file order.
    pub entries: Vec<Entry>,
}

/// A config file as written: top-level entries, then sections.
#[derive(Debug, Clone)]
pub struct RawConfig {
    /// The file's name.
    pub name: Arc<str>,
    /// Entries before the first section, in file order (keys are unique).
    pub entries: Vec<Entry>,
    /// Sections in file order.
    pub sections: Vec<Section>,
    /// The source, for rendering diagnostics.
    pub source: SourceFile,
}

impl RawConfig {
    /// An empty config called `name`.
    pub fn empty(name: &str) -> Self {
        RawConfig {
            name: Arc::from(name),
            entries: Vec::new(),
            sections: Vec::new(),
            source: SourceFile::new(name, ""),
        }
    }

    /// The top-level entry for `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The top-level entries as a map.
    pub fn to_map(&self) -> BTreeMap<String, RawValue> {
        self.entries
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect()
    }
}

/// Parse a config file's text. Every problem is reported; lines that parse
/// are kept.
pub fn parse_config(name: &str, text: &str) -> (RawConfig, Vec<Diagnostic>) {
    let limits = Limits::DEFAULT;
    if text.len() as u64 > limits.config_bytes {
        let d = SourceError::TooLarge {
            limit: limits.config_bytes,
        }
        .to_diagnostic(name, None);
        return (RawConfig::empty(name), vec![d]);
    }
    let text = strip_bom(text);
    let source = SourceFile::new(name, text);
    let mut diags = DiagSink::new(limits.diagnostics);
    let mut entries: Vec<Entry> = Vec::new();
    let mut sections: Vec<Section> = Vec::new();
    // First line of each key, per (section number, 0 = top level), and of each section.
    let mut seen_keys: HashMap<(usize, String), u32> = HashMap::new();
    let mut seen_sections: HashMap<(String, usize), u32> = HashMap::new();

    // Lines with their byte offsets; triple-quoted values may span several.
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut off = 0;
    for raw in text.split_inclusive('\n') {
        let body = raw.strip_suffix('\n').unwrap_or(raw);
        let body = body.strip_suffix('\r').unwrap_or(body);
        lines.push((off, body));
        off += raw.len();
    }

    let mut i = 0;
    while i < lines.len() {
        let (start, line) = lines[i];
        i += 1;
        let loc = |a: usize, b: usize| source.location(start + a..start + b);
        let content = line.trim_end();
        let indent = content.len() - content.trim_start().len();
        let rest = &content[indent..];
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        if rest.starts_with('[') {
            if let Some(sec) = section_header(content, indent, &loc, &mut diags) {
                // Maps, not scans: a generated config may have thousands of lines.
                match seen_sections.entry((sec.name.clone(), sec.depth)) {
                    std::collections::hash_map::Entry::Occupied(first) => diags.push(
                        Diagnostic::error(format!(
                            "section `[{}]` appears twice (first at line {})",
                            sec.name,
                            first.get()
                        ))
                        .with_code("duplicate-section")
                        .at(sec.loc.clone()),
                    ),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(sec.loc.line);
                    }
                }
                sections.push(sec);
            }
            continue;
        }
        // The key: quoted, or up to the first `=`.
        let (key, key_span, after_key) = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => match content[indent + 1..].find(q) {
                Some(rel) => {
                    let end = indent + 1 + rel;
                    (
                        content[indent + 1..end].to_string(),
                        indent..end + 1,
                        end + 1,
                    )
                }
                None => {
                    diags.push(
                        Diagnostic::error("unclosed quote in key")
                            .with_code("config-syntax")
                            .at(loc(indent, content.len()))
                            .with_help(format!("add the closing `{q}`")),
                    );
                    continue;
                }
            },
            _ => match content[indent..].find('=') {
                Some(rel) => {
                    let k = content[indent..indent + rel].trim_end();
                    (k.to_string(), indent..indent + k.len(), indent + k.len())
                }
                None => {
                    diags.push(
                        Diagnostic::error(format!("expected `key = value`, found `{rest}`"))
                            .with_code("config-syntax")
                            .at(loc(indent, content.len()))
                            .with_label("no `=` on this line")
                            .with_help(
                                "config lines are `key = value`, `[section]` or `# comment`",
                            ),
                    );
                    continue;
                }
            },
        };
        let after_ws =
            after_key + (content[after_key..].len() - content[after_key..].trim_start().len());
        if !content[after_ws..].starts_with('=') {
            diags.push(
                Diagnostic::error("expected `=` after the key")
                    .with_code("config-syntax")
                    .at(loc(
                        after_ws,
                        content.len().max(after_ws + 1).min(content.len()),
                    ))
                    .with_help("config lines are `key = value`"),
            );
            continue;
        }
        if key.is_empty() {
            diags.push(
                Diagnostic::error("missing key before `=`")
                    .with_code("config-syntax")
                    .at(loc(after_ws, after_ws + 1))
                    .with_help("config lines are `key = value`"),
            );
            continue;
        }
        let vstart = after_ws
            + 1
            + (content[after_ws + 1..].len() - content[after_ws + 1..].trim_start().len());
        let vtext = &content[vstart..];

        let parsed = if vtext.starts_with("\"\"\"") || vtext.starts_with("'''") {
            // Triple-quoted: may run over several lines.
            let delim = &vtext[..3];
            let mut value = String::new();
            let mut closed = None;
            if let Some(rel) = vtext[3..].find(delim) {
                value.push_str(&vtext[3..3 + rel]);
                closed = Some((i - 1, vstart + 3 + rel + 3));
            } else {
                value.push_str(&vtext[3..]);
                while i < lines.len() {
                    let (_, l) = lines[i];
                    i += 1;
                    value.push('\n');
                    if let Some(rel) = l.find(delim) {
                        value.push_str(&l[..rel]);
                        closed = Some((i - 1, rel + 3));
                        break;
                    }
                    value.push_str(l);
                }
            }
            match closed {
                Some((li, after)) => {
                    let (ls, l) = lines[li];
                    let tail = l[after..].trim_start();
                    if !(tail.is_empty() || tail.starts_with('#')) {
                        diags.push(
                            Diagnostic::error("unexpected text after the closing triple quote")
                                .with_code("config-syntax")
                                .at(source.location(ls + after..ls + l.trim_end().len()))
                                .with_help("only a `# comment` may follow a value"),
                        );
                        None
                    } else {
                        let vloc = source.location(start + vstart..ls + after);
                        Some((RawValue::Str(value), vloc))
                    }
                }
                None => {
                    diags.push(
                        Diagnostic::error(format!("unclosed {delim} value"))
                            .with_code("config-syntax")
                            .at(loc(vstart, vstart + 3))
                            .with_label("opened here, never closed")
                            .with_help(format!("close it with `{delim}`")),
                    );
                    None
                }
            }
        } else {
            match parse_value(vtext) {
                Ok((v, len)) => Some((v, loc(vstart, vstart + len))),
                Err((span, msg, help)) => {
                    diags.push(
                        Diagnostic::error(msg)
                            .with_code("config-syntax")
                            .at(loc(vstart + span.start, vstart + span.end))
                            .with_help(help),
                    );
                    None
                }
            }
        };
        let Some((value, value_loc)) = parsed else {
            continue;
        };
        let entry = Entry {
            key,
            value,
            key_loc: loc(key_span.start, key_span.end),
            value_loc,
        };
        let first_line = *seen_keys
            .entry((sections.len(), entry.key.clone()))
            .or_insert(entry.key_loc.line);
        let list = match sections.last_mut() {
            Some(s) => &mut s.entries,
            None => &mut entries,
        };
        if first_line != entry.key_loc.line {
            diags.push(
                Diagnostic::error(format!(
                    "key `{}` is set twice (first at line {first_line})",
                    entry.key
                ))
                .with_code("duplicate-key")
                .at(entry.key_loc.clone())
                .with_help("remove one of the two lines"),
            );
            continue;
        }
        list.push(entry);
    }
    (
        RawConfig {
            name: Arc::from(name),
            entries,
            sections,
            source,
        },
        diags.finish(),
    )
}

fn section_header(
    content: &str,
    indent: usize,
    loc: &dyn Fn(usize, usize) -> Location,
    diags: &mut DiagSink,
) -> Option<Section> {
    let rest = &content[indent..];
    let depth = rest.len() - rest.trim_start_matches('[').len();
    let inner_start = indent + depth;
    let Some(close_rel) = content[inner_start..].find(']') else {
        diags.push(
            Diagnostic::error("unclosed section header")
                .with_code("config-syntax")
                .at(loc(indent, content.len()))
                .with_help(format!(
                    "write `{}name{}`",
                    "[".repeat(depth),
                    "]".repeat(depth)
                )),
        );
        return None;
    };
    let close = inner_start + close_rel;
    let name = content[inner_start..close].trim().to_string();
    let closing = content[close..].len() - content[close..].trim_start_matches(']').len();
    let after = close + closing;
    let tail = content[after..].trim_start();
    let header_loc = loc(indent, after);
    if closing != depth || name.is_empty() {
        diags.push(
            Diagnostic::error(if name.is_empty() {
                "empty section name".to_string()
            } else {
                format!("section header opens with {depth} `[` but closes with {closing} `]`")
            })
            .with_code("config-syntax")
            .at(header_loc)
            .with_help(format!(
                "write `{}name{}`",
                "[".repeat(depth),
                "]".repeat(depth)
            )),
        );
        return None;
    }
    if !(tail.is_empty() || tail.starts_with('#')) {
        diags.push(
            Diagnostic::error("unexpected text after the section header")
                .with_code("config-syntax")
                .at(loc(content.len() - tail.len(), content.len()))
                .with_help("only a `# comment` may follow `[section]`"),
        );
        return None;
    }
    Some(Section {
        name,
        depth,
        loc: header_loc,
        entries: Vec::new(),
    })
}

type ValueError = (std::ops::Range<usize>, String, String);

/// Parse a one-line value (no triple quotes). Returns the value and the
/// length of its text without any trailing comment.
fn parse_value(v: &str) -> Result<(RawValue, usize), ValueError> {
    let mut items: Vec<String> = Vec::new();
    let mut is_list = false;
    let mut pos = 0;
    let mut end = 0;
    let bytes = v.as_bytes();
    let skip_ws = |mut p: usize| {
        while p < bytes.len() && (bytes[p] == b' ' || bytes[p] == b'\t') {
            p += 1;
        }
        p
    };
    loop {
        pos = skip_ws(pos);
        if pos >= v.len() || bytes[pos] == b'#' {
            // Nothing (more): `key =` or a trailing comma.
            if !is_list {
                items.push(String::new());
            }
            break;
        }
        if bytes[pos] == b',' {
            if !is_list && items.is_empty() {
                // `key = ,` is the empty list.
                let after = skip_ws(pos + 1);
                if after >= v.len() || bytes[after] == b'#' {
                    return Ok((RawValue::List(Vec::new()), pos + 1));
                }
            }
            return Err((
                pos..pos + 1,
                "empty item in a list value".into(),
                "remove the extra comma".into(),
            ));
        }
        let (item, item_end) = match bytes[pos] {
            q @ (b'"' | b'\'') => match v[pos + 1..].find(q as char) {
                Some(rel) => (v[pos + 1..pos + 1 + rel].to_string(), pos + 1 + rel + 1),
                None => {
                    return Err((
                        pos..v.len(),
                        "unclosed quote in value".into(),
                        format!("add the closing `{}`", q as char),
                    ));
                }
            },
            _ => {
                let stop = v[pos..].find([',', '#']).map_or(v.len(), |r| pos + r);
                let item = v[pos..stop].trim_end();
                (item.to_string(), pos + item.len())
            }
        };
        items.push(item);
        end = item_end;
        let after = skip_ws(item_end);
        if after >= v.len() || bytes[after] == b'#' {
            break;
        }
        if bytes[after] == b',' {
            is_list = true;
            end = after + 1;
            pos = after + 1;
            let next = skip_ws(pos);
            if next >= v.len() || bytes[next] == b'#' {
                break; // trailing comma: a list
            }
            continue;
        }
        return Err((
            after..v.trim_end().len(),
            "unexpected text after a quoted value".into(),
            "quote the whole value, separate list items with `,`, or start a comment with `#`"
                .into(),
        ));
    }
    let value = if is_list {
        RawValue::List(items)
    } else {
        RawValue::Str(items.pop().unwrap_or_default())
    };
    Ok((value, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(s: &str) -> String {
        match parse_value(s) {
            Ok((v, len)) => format!("{v:?} len={len}"),
            Err((span, m, _)) => format!("E{span:?} {m}"),
        }
    }

    #[test]
    fn values() {
        assert_eq!(val("abc"), "Str(\"abc\") len=3");
        assert_eq!(val("abc  # c"), "Str(\"abc\") len=3");
        assert_eq!(val("a#b"), "Str(\"a\") len=1");
        assert_eq!(val("\"a b\""), "Str(\"a b\") len=5");
        assert_eq!(val("'x'# c"), "Str(\"x\") len=3");
        assert_eq!(val(""), "Str(\"\") len=0");
        assert_eq!(val("a, b ,c"), "List([\"a\", \"b\", \"c\"]) len=7");
        assert_eq!(val("'a',"), "List([\"a\"]) len=4");
        assert_eq!(val(","), "List([]) len=1");
        assert_eq!(
            val("p -c \"(x ; y)\" -n 2"),
            "Str(\"p -c \\\"(x ; y)\\\" -n 2\") len=19"
        );
        assert_eq!(val("\"a\" b"), "E4..5 unexpected text after a quoted value");
        assert_eq!(val("\"a"), "E0..2 unclosed quote in value");
        assert_eq!(val("a,,b"), "E2..3 empty item in a list value");
    }
}
