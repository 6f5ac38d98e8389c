//! Diagnostics: the one error/warning/note type of peerlab's languages, and
//! its three renderings (rich for people, one line for CI, JSON for tools).
//!
//! A [`Diagnostic`] is a plain value: a severity, a message, and where it
//! points ([`Location`]: file, byte span, 1-based line and column). Spans
//! stay byte ranges until rendering; the rich renderer looks the source text
//! up in a [`SourceMap`] the caller keeps. Nothing here prints or reads files.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::Serialize;

/// How bad a diagnostic is. Only [`Severity::Error`] makes a check fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input cannot be used as written.
    Error,
    /// The input works, but probably not as meant (an unknown key, say).
    Warning,
    /// Information: what peerlab does with something (a Gumby-only key, say).
    Note,
}

impl Severity {
    /// The lowercase word used in every rendering: `error`, `warning`, `note`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A place in a source file: its name, a byte span, and the 1-based line and
/// column (in characters) where the span starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Location {
    /// The file's name as the caller gave it (usually a path).
    pub file: Arc<str>,
    /// Byte range in the file's text.
    pub span: Range<usize>,
    /// 1-based line of `span.start`.
    pub line: u32,
    /// 1-based column (counted in characters) of `span.start`.
    pub column: u32,
}

impl Location {
    /// A location that only names a file (line 1, column 1, empty span):
    /// for problems with a file as a whole.
    pub fn file_only(file: impl Into<Arc<str>>) -> Self {
        Location {
            file: file.into(),
            span: 0..0,
            line: 1,
            column: 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One file's text with its line starts, to turn byte spans into
/// [`Location`]s.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: Arc<str>,
    text: Arc<str>,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Index `text` under the display name `name`.
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// The display name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The location of a byte span. Out-of-range spans are clamped to the
    /// text, so this never panics.
    pub fn location(&self, span: Range<usize>) -> Location {
        let len = self.text.len();
        let mut start = span.start.min(len);
        while !self.text.is_char_boundary(start) {
            start -= 1;
        }
        let end = span.end.clamp(start, len);
        let line_idx = match self.line_starts.binary_search(&start) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = self.line_starts[line_idx];
        let column = self.text[line_start..start].chars().count() + 1;
        Location {
            file: self.name.clone(),
            span: start..end,
            line: u32::try_from(line_idx + 1).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }

    /// The byte range of 1-based line `line`, without its line ending.
    pub fn line_range(&self, line: u32) -> Option<Range<usize>> {
        let idx = (line as usize).checked_sub(1)?;
        let start = *self.line_starts.get(idx)?;
        let mut end = self
            .line_starts
            .get(idx + 1)
            .copied()
            .unwrap_or(self.text.len());
        let bytes = self.text.as_bytes();
        if end > start && bytes[end - 1] == b'\n' {
            end -= 1;
        }
        if end > start && bytes[end - 1] == b'\r' {
            end -= 1;
        }
        Some(start..end)
    }
}

/// Every source text a set of diagnostics may point into, by file name.
/// The rich renderer reads snippets from here.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: BTreeMap<Arc<str>, SourceFile>,
}

impl SourceMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) a file and return its index.
    pub fn add(&mut self, file: SourceFile) -> &SourceFile {
        let name = file.name.clone();
        self.files.insert(name.clone(), file);
        &self.files[&name]
    }

    /// The file called `name`, if known.
    pub fn get(&self, name: &str) -> Option<&SourceFile> {
        self.files.get(name)
    }

    /// Every file, by name.
    pub fn iter(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.values()
    }

    /// Add every file of `other`.
    pub fn extend(&mut self, other: &SourceMap) {
        for f in other.iter() {
            self.add(f.clone());
        }
    }
}

/// An error, warning or note about some input, pointing at where it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// A stable identifier, e.g. `unknown-variable`, for tools and docs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// What is wrong: lowercase, no trailing period.
    pub message: String,
    /// Where; `None` for problems outside any file (an environment variable).
    #[serde(flatten, serialize_with = "ser_location")]
    pub location: Option<Location>,
    /// A short text shown under the caret (what was expected here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<Box<str>>,
    /// What to do about it ("did you mean `x`?").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<Box<str>>,
}

fn ser_location<S: serde::Serializer>(loc: &Option<Location>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(None)?;
    if let Some(loc) = loc {
        m.serialize_entry("file", &*loc.file)?;
        m.serialize_entry("line", &loc.line)?;
        m.serialize_entry("column", &loc.column)?;
        m.serialize_entry("span", &[loc.span.start, loc.span.end])?;
    }
    m.end()
}

/// The longest message, label or help kept, in bytes: a message that
/// quotes a 40 MB word from the input keeps its first kilobyte.
pub const MAX_TEXT: usize = 1024;

/// The longest part of a source line a snippet shows, in bytes, around
/// the span; the rest is elided with `…`.
pub const MAX_ECHO: usize = 240;

/// `s` cut to at most [`MAX_TEXT`] bytes (at a character boundary), with
/// `…` when cut.
pub fn clip(s: String) -> String {
    if s.len() <= MAX_TEXT {
        return s;
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s[..end].to_string();
    out.push('…');
    out
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The part of `line` shown for the byte span `start..end`: at most
/// [`MAX_ECHO`] bytes from a little before the span, `…` where cut. Returns
/// the text and the span within it.
fn echo_window(line: &str, start: usize, end: usize) -> (String, usize, usize) {
    if line.len() <= MAX_ECHO {
        return (line.to_string(), start, end);
    }
    let from = floor_boundary(line, start.saturating_sub(MAX_ECHO / 4));
    let to = floor_boundary(line, from + MAX_ECHO);
    let mut text = String::new();
    if from > 0 {
        text.push('…');
    }
    let shift = text.len();
    text.push_str(&line[from..to]);
    if to < line.len() {
        text.push('…');
    }
    let s = start.clamp(from, to) - from + shift;
    let e = end.clamp(from, to) - from + shift;
    (text, s, e.max(s))
}

impl Diagnostic {
    /// A diagnostic of any severity with no location yet. Texts longer
    /// than [`MAX_TEXT`] are cut (here and in the label and help).
    pub fn new(severity: Severity, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            code: None,
            message: clip(message.into()),
            location: None,
            label: None,
            help: None,
        }
    }

    /// An error with no location yet.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Severity::Error, message)
    }

    /// A warning with no location yet.
    pub fn warning(message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, message)
    }

    /// A note with no location yet.
    pub fn note(message: impl Into<String>) -> Self {
        Self::new(Severity::Note, message)
    }

    /// Point at `location`.
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Set the text shown under the caret.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(clip(label.into()).into_boxed_str());
        self
    }

    /// Set the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(clip(help.into()).into_boxed_str());
        self
    }

    /// Set the code (a stable kebab-case identifier).
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// One line, `file:line:col: severity[code]: message`, as compilers
    /// print for CI and editors. The help, if any, follows after ` (help: …)`.
    pub fn render_short(&self) -> String {
        let mut out = String::new();
        if let Some(loc) = &self.location {
            out.push_str(&format!("{loc}: "));
        }
        out.push_str(self.severity.as_str());
        if let Some(code) = &self.code {
            out.push_str(&format!("[{code}]"));
        }
        out.push_str(": ");
        out.push_str(&self.message);
        if let Some(help) = &self.help {
            out.push_str(&format!(" (help: {help})"));
        }
        out
    }

    /// The rich form for people: a header, the source line with a caret under
    /// the span and the label, then the help. Without the source text in
    /// `sources`, only the header and the help are shown.
    pub fn render_rich(&self, sources: &SourceMap, color: bool) -> String {
        use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

        let level = match self.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
            Severity::Note => Level::NOTE,
        };
        let mut title = level.primary_title(self.message.as_str());
        if let Some(code) = &self.code {
            title = title.id(*code);
        }
        let mut group = Group::with_title(title);
        let mut header_only = None;
        let echoed: String;
        if let Some(loc) = &self.location {
            match sources
                .get(&loc.file)
                .and_then(|f| Some((f, f.line_range(loc.line)?)))
            {
                Some((file, range)) => {
                    let full_line = &file.text()[range.clone()];
                    let start = loc
                        .span
                        .start
                        .saturating_sub(range.start)
                        .min(full_line.len());
                    let end = loc
                        .span
                        .end
                        .saturating_sub(range.start)
                        .clamp(start, full_line.len());
                    let (line_text, start, end) = echo_window(full_line, start, end);
                    echoed = line_text;
                    let mut ann = AnnotationKind::Primary.span(start..end);
                    if let Some(label) = &self.label {
                        ann = ann.label(&**label);
                    }
                    group = group.element(
                        Snippet::source(echoed.as_str())
                            .line_start(loc.line as usize)
                            .path(&*loc.file)
                            .annotation(ann),
                    );
                }
                None => header_only = Some(loc.to_string()),
            }
        }
        let mut groups = vec![group];
        if let Some(help) = &self.help {
            groups.push(Group::with_title(Level::HELP.secondary_title(&**help)));
        }
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let mut out = renderer.render(&groups);
        if let Some(loc) = header_only {
            // No snippet: still say where, in the compiler's `-->` style.
            let label = self
                .label
                .as_deref()
                .map(|l| format!(": {l}"))
                .unwrap_or_default();
            match out.find('\n') {
                Some(nl) => out.insert_str(nl + 1, &format!("  --> {loc}{label}\n")),
                None => out.push_str(&format!("\n  --> {loc}{label}")),
            }
        }
        out
    }

    /// The JSON object of this diagnostic (one line): `severity`, `code`,
    /// `message`, `file`, `line`, `column`, `span` (`[start, end]` bytes),
    /// `label`, `help`; absent fields are left out.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render_short())
    }
}

/// How to print a list of diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Rich, with source snippets; `color` adds ANSI colours.
    Human {
        /// Use ANSI colours.
        color: bool,
    },
    /// One line per diagnostic.
    Short,
    /// One JSON object per line (JSON Lines).
    Json,
}

/// Render every diagnostic in `diags` in `format`, each ending in a newline.
pub fn render_all(diags: &[Diagnostic], sources: &SourceMap, format: Format) -> String {
    let mut out = String::new();
    for d in diags {
        match format {
            Format::Human { color } => {
                out.push_str(&d.render_rich(sources, color));
                out.push_str("\n\n");
            }
            Format::Short => {
                out.push_str(&d.render_short());
                out.push('\n');
            }
            Format::Json => {
                out.push_str(&d.to_json());
                out.push('\n');
            }
        }
    }
    out
}

/// True when any diagnostic is an error.
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(Diagnostic::is_error)
}
