//! The scenario language: `&module`/`&include` directives, comments, and
//! command lines `@TIME CALLBACK [ARGS...] [{PEERSPEC}]`, parsed into a
//! [`Scenario`] with every problem as a [`Diagnostic`].
//!
//! Pure: included files are read through the [`IncludeLoader`] the caller
//! implements, and variables come from the [`Vars`] it passes. Module names
//! are recorded, never resolved here (that is the host's loader). The
//! [`Limits`] bound what one parse reads and builds: bytes per file and in
//! all, includes, commands and diagnostics.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::diag::{Diagnostic, Location, SourceFile, SourceMap};
use crate::peerspec::{PeerSpec, parse_peerspec};
use crate::shell::{self, Token, Word};
use crate::source::{DiagSink, Limits, decode_source, human_bytes, strip_bom, thousands};
use crate::suggest::suggest;
use crate::value::parse_clock;

/// How deep `&include` may nest before it is treated as runaway.
pub const MAX_INCLUDE_DEPTH: usize = 32;

/// Reads the files that `&include` names. The parser computes the paths;
/// the implementation only reads.
pub trait IncludeLoader {
    /// The bytes of the file at `path`: `Ok(None)` when there is no such
    /// file (the parser then tries the next place), `Err(reason)` when it
    /// exists but cannot be read (or is not a regular file: a FIFO would
    /// block, a device never end). The parser refuses a file of more than
    /// `limit` bytes, so read at most `limit + 1` (e.g. `take(limit + 1)`).
    /// The parser checks the encoding (UTF-8, with or without a BOM).
    fn read(&mut self, path: &Path, limit: u64) -> Result<Option<Vec<u8>>, String>;

    /// The experiment directory: the second place an include is looked for,
    /// after the including file's own directory.
    fn experiment_dir(&self) -> Option<&Path> {
        None
    }
}

/// An [`IncludeLoader`] over files held in memory (for tests and tools).
#[derive(Debug, Clone, Default)]
pub struct MemoryLoader {
    files: BTreeMap<PathBuf, Vec<u8>>,
    experiment_dir: Option<PathBuf>,
}

impl MemoryLoader {
    /// No files.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a file.
    pub fn with_file(self, path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.with_bytes(path, text.into().into_bytes())
    }

    /// Add a file given as bytes (which need not be UTF-8).
    pub fn with_bytes(mut self, path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.insert(normalize(&path.into()), bytes.into());
        self
    }

    /// Set the experiment directory.
    pub fn with_experiment_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.experiment_dir = Some(dir.into());
        self
    }
}

impl IncludeLoader for MemoryLoader {
    fn read(&mut self, path: &Path, limit: u64) -> Result<Option<Vec<u8>>, String> {
        let limit = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
        Ok(self
            .files
            .get(&normalize(path))
            .map(|b| b[..b.len().min(limit)].to_vec()))
    }

    fn experiment_dir(&self) -> Option<&Path> {
        self.experiment_dir.as_deref()
    }
}

/// An [`IncludeLoader`] that has no files: every `&include` is "not found".
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIncludes;

impl IncludeLoader for NoIncludes {
    fn read(&mut self, _path: &Path, _limit: u64) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
}

/// Where `$NAME` finds values, after the scenario's own `@! set` variables:
/// first the config's keys (upper-cased, as Gumby exported them), then the
/// environment.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    config: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
}

impl Vars {
    /// No variables at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// Config variables; each key is used exactly as given (callers pass
    /// [`crate::Experiment::vars`], which upper-cases them).
    pub fn with_config<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.config
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Environment variables (pass `std::env::vars()` at the edge).
    pub fn with_env<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// The value of `name` from the config, else the environment.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.config
            .get(name)
            .or_else(|| self.env.get(name))
            .map(String::as_str)
    }

    /// Every known name (config first, then environment).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.config
            .keys()
            .chain(self.env.keys())
            .map(String::as_str)
    }
}

/// When a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "phase", content = "seconds", rename_all = "snake_case")]
pub enum Phase {
    /// `@!`: at load time, in file order, before anything else.
    Load,
    /// `@@`: once, after loading and before the timeline starts.
    Setup,
    /// `@[[h:]m:]s`: this many seconds after the common start.
    At(f64),
}

impl Phase {
    fn rank(self) -> (u8, f64) {
        match self {
            Phase::Load => (0, 0.0),
            Phase::Setup => (1, 0.0),
            Phase::At(t) => (2, t),
        }
    }

    /// The seconds of a timed command.
    pub fn seconds(self) -> Option<f64> {
        match self {
            Phase::At(t) => Some(t),
            _ => None,
        }
    }
}

/// A module a scenario asks for with `&module NAME`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModuleRef {
    /// The name as written (a Gumby dotted path, a plugin name or a path).
    pub name: String,
    /// Where the name is.
    pub loc: Location,
}

/// A positional argument.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arg {
    /// The text after quoting and `$VAR` expansion.
    pub value: String,
    /// Where the word is.
    pub loc: Location,
}

/// A keyword argument `name=value`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KwArg {
    /// The keyword.
    pub name: String,
    /// The value after quoting and `$VAR` expansion.
    pub value: String,
    /// Where the whole `name=value` word is.
    pub loc: Location,
}

/// One scenario command.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Command {
    /// When it runs.
    #[serde(flatten)]
    pub phase: Phase,
    /// The callback, possibly qualified: `module.callback`.
    pub callback: String,
    /// Where the callback name is.
    pub callback_loc: Location,
    /// Positional arguments in order.
    pub args: Vec<Arg>,
    /// Keyword arguments in the order written (names are unique).
    pub kwargs: Vec<KwArg>,
    /// Which instances run it.
    pub peers: PeerSpec,
    /// Where the `{…}` selector is, if written.
    pub peers_loc: Option<Location>,
    /// Where the line starts (its time).
    pub loc: Location,
}

impl Command {
    /// For `module.callback`, the module part.
    pub fn qualifier(&self) -> Option<&str> {
        self.callback.rsplit_once('.').map(|(m, _)| m)
    }

    /// The callback name without any module qualifier.
    pub fn callback_name(&self) -> &str {
        self.callback
            .rsplit_once('.')
            .map_or(&self.callback, |(_, c)| c)
    }

    /// The value of keyword argument `name`.
    pub fn kwarg(&self, name: &str) -> Option<&KwArg> {
        self.kwargs.iter().find(|k| k.name == name)
    }
}

/// A parsed scenario.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scenario {
    /// The top-level file's name.
    pub name: Arc<str>,
    /// `&module` names in order (first occurrence of each).
    pub modules: Vec<ModuleRef>,
    /// Load commands, then setup commands, then the timeline sorted by time
    /// (commands at the same time keep file order; includes are inlined
    /// where they appear).
    pub commands: Vec<Command>,
    /// The variables `@! set` defined, with their final values.
    pub variables: BTreeMap<String, String>,
    /// Every file read (the scenario and its includes), for rendering.
    #[serde(skip)]
    pub sources: SourceMap,
}

impl Scenario {
    /// The time of the last timed command, in seconds (0 when none).
    pub fn timeline_length(&self) -> f64 {
        self.commands
            .iter()
            .filter_map(|c| c.phase.seconds())
            .fold(0.0, f64::max)
    }

    /// Commands of one kind of phase: `Load`, `Setup`, or timed.
    pub fn count(&self, phase: PhaseKind) -> usize {
        self.commands
            .iter()
            .filter(|c| PhaseKind::of(c.phase) == phase)
            .count()
    }

    /// Diagnostics for selectors naming an instance beyond `count`: an error
    /// for `{…}` (those instances do not exist), a warning for `{!…}`.
    pub fn check_peers(&self, count: u32) -> Vec<Diagnostic> {
        self.commands
            .iter()
            .filter_map(|c| check_peerspec(&c.peers, c.peers_loc.as_ref(), count))
            .collect()
    }
}

/// A phase without its time, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseKind {
    /// `@!`.
    Load,
    /// `@@`.
    Setup,
    /// Timed.
    Timed,
}

impl PhaseKind {
    /// The kind of `phase`.
    pub fn of(phase: Phase) -> Self {
        match phase {
            Phase::Load => PhaseKind::Load,
            Phase::Setup => PhaseKind::Setup,
            Phase::At(_) => PhaseKind::Timed,
        }
    }
}

/// A diagnostic when `spec` names an instance outside `1..=count`: an
/// error when the command would run on no instance at all (`{5}` of 3), a
/// warning when only some named ids are missing (`{2-1000}` of 7, a Gumby
/// idiom for "all but the first") or an excluded id does not exist.
pub fn check_peerspec(spec: &PeerSpec, loc: Option<&Location>, count: u32) -> Option<Diagnostic> {
    let max = spec.max_id()?;
    if max <= count {
        return None;
    }
    let what = if count == 1 {
        "1 instance".to_string()
    } else {
        format!("{count} instances")
    };
    let runs_nowhere = matches!(spec, PeerSpec::Only(ids) if ids.min().is_some_and(|m| m > count));
    let d = match spec {
        PeerSpec::AllBut(_) => Diagnostic::warning(format!(
            "peer selector `{spec}` excludes instance {max}, but the experiment runs only {what}"
        )),
        _ if runs_nowhere => Diagnostic::error(format!(
            "peer selector `{spec}` selects no instance: the experiment runs only {what}"
        ))
        .with_help("instance ids go from 1 to the number of instances; raise the instance count or change the selector"),
        _ => Diagnostic::warning(format!(
            "peer selector `{spec}` names instances up to {max}, but the experiment runs only {what}"
        ))
        .with_help("the command runs on the instances that exist; the others are ignored"),
    };
    let d = d
        .with_code("peer-out-of-range")
        .with_label(format!("ids must be within 1..={count}"));
    Some(match loc {
        Some(l) => d.at(l.clone()),
        None => d,
    })
}

/// Lexically normalise a path: drop `.`, fold `a/..`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for comp in path.components() {
        match comp {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Parse the scenario `text` of file `name`. `name` is also the path from
/// which relative `&include`s are resolved. Never stops at the first
/// problem: the scenario holds every line that parsed, the diagnostics every
/// line that did not; only crossing one of the [`Limits::DEFAULT`] stops it
/// (with a diagnostic at the line that crossed it).
pub fn parse_scenario(
    name: &str,
    text: &str,
    loader: &mut dyn IncludeLoader,
    vars: &Vars,
) -> (Scenario, Vec<Diagnostic>) {
    parse_scenario_with(name, text, loader, vars, &Limits::DEFAULT)
}

/// [`parse_scenario`] with other [`Limits`].
pub fn parse_scenario_with(
    name: &str,
    text: &str,
    loader: &mut dyn IncludeLoader,
    vars: &Vars,
    limits: &Limits,
) -> (Scenario, Vec<Diagnostic>) {
    let mut p = Parser {
        loader,
        vars,
        limits: *limits,
        sources: SourceMap::new(),
        diags: DiagSink::new(limits.diagnostics),
        modules: Vec::new(),
        commands: Vec::new(),
        set_vars: BTreeMap::new(),
        stack: Vec::new(),
        includes: 0,
        bytes: text.len() as u64,
        stopped: false,
    };
    let path = normalize(Path::new(name));
    if text.len() as u64 > limits.scenario_bytes.min(limits.total_bytes) {
        let limit = limits.scenario_bytes.min(limits.total_bytes);
        p.diags
            .push(crate::source::SourceError::TooLarge { limit }.to_diagnostic(name, None));
    } else {
        p.parse_file(Arc::from(name), path, text);
    }
    let Parser {
        sources,
        diags,
        modules,
        mut commands,
        set_vars,
        ..
    } = p;
    let diags = diags.finish();
    commands.sort_by(|a, b| {
        let (ra, ta) = a.phase.rank();
        let (rb, tb) = b.phase.rank();
        ra.cmp(&rb).then(ta.total_cmp(&tb))
    });
    let scenario = Scenario {
        name: Arc::from(name),
        modules,
        commands,
        variables: set_vars.into_iter().map(|(k, (v, _))| (k, v)).collect(),
        sources,
    };
    (scenario, diags)
}

struct Parser<'a> {
    loader: &'a mut dyn IncludeLoader,
    vars: &'a Vars,
    limits: Limits,
    sources: SourceMap,
    diags: DiagSink,
    modules: Vec<ModuleRef>,
    commands: Vec<Command>,
    set_vars: BTreeMap<String, (String, Location)>,
    /// The include chain: (path, display name).
    stack: Vec<(PathBuf, Arc<str>)>,
    /// Includes read so far.
    includes: usize,
    /// Bytes read so far, every file.
    bytes: u64,
    /// A limit was crossed: read no further.
    stopped: bool,
}

/// One line being parsed: its file and where it starts.
struct Line<'s> {
    file: &'s SourceFile,
    /// Byte offset of the line in the file.
    start: usize,
}

impl Line<'_> {
    fn loc(&self, span: Range<usize>) -> Location {
        self.file
            .location(self.start + span.start..self.start + span.end)
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_callback_name(s: &str) -> bool {
    s.split('.').all(is_ident)
}

impl Parser<'_> {
    fn parse_file(&mut self, name: Arc<str>, path: PathBuf, text: &str) {
        let text = strip_bom(text);
        self.stack.push((path, name.clone()));
        let file = SourceFile::new(name, text);
        let mut offset = 0;
        for raw in text.split_inclusive('\n') {
            if self.stopped {
                break;
            }
            let start = offset;
            offset += raw.len();
            let body = raw.strip_suffix('\n').unwrap_or(raw);
            let body = body.strip_suffix('\r').unwrap_or(body);
            let content = body.trim_end();
            let indent = content.len() - content.trim_start().len();
            let line = Line { file: &file, start };
            let rest = &content[indent..];
            if rest.is_empty() || rest.starts_with('#') {
                continue;
            }
            if rest.starts_with('&') {
                self.directive(&line, indent, content);
            } else {
                self.command(&line, indent, content);
            }
        }
        self.sources.add(file);
        self.stack.pop();
    }

    fn lex(&self, text: &str) -> (Vec<Token>, Vec<shell::LexError>) {
        let set_vars = &self.set_vars;
        let vars = self.vars;
        let mut lookup = |n: &str| -> Result<String, Option<String>> {
            if let Some((v, _)) = set_vars.get(n) {
                return Ok(v.clone());
            }
            if let Some(v) = vars.get(n) {
                return Ok(v.to_string());
            }
            let cands = set_vars.keys().map(String::as_str).chain(vars.names());
            Err(match suggest(n, cands) {
                Some(s) if s.eq_ignore_ascii_case(n) => Some(format!(
                    "did you mean `${s}`? variable names are case-sensitive, and config keys are upper-cased"
                )),
                Some(s) => Some(format!("did you mean `${s}`?")),
                None => Some("define it first with `@! set NAME VALUE`, or set it in the config or the environment".into()),
            })
        };
        shell::split(text, &mut lookup)
    }

    /// Lex `content[from..]` and report lexing errors; positions are
    /// line-relative. Returns the tokens and whether there were errors.
    fn lex_at(&mut self, line: &Line<'_>, content: &str, from: usize) -> (Vec<Token>, bool) {
        let (mut toks, errs) = self.lex(&content[from..]);
        let failed = !errs.is_empty();
        for e in errs {
            let mut d = Diagnostic::error(e.message)
                .with_code(e.code)
                .at(line.loc(from + e.span.start..from + e.span.end));
            d.label = e.label.map(String::into_boxed_str);
            d.help = e.help.map(String::into_boxed_str);
            self.diags.push(d);
        }
        for t in &mut toks {
            match t {
                Token::Word(w) => w.span = from + w.span.start..from + w.span.end,
                Token::Braces {
                    inner_span, span, ..
                } => {
                    *inner_span = from + inner_span.start..from + inner_span.end;
                    *span = from + span.start..from + span.end;
                }
            }
        }
        (toks, failed)
    }

    fn directive(&mut self, line: &Line<'_>, indent: usize, content: &str) {
        let after = indent + 1;
        let name_len = content[after..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(content.len() - after);
        let dname = &content[after..after + name_len];
        let name_span = indent..after + name_len;
        let known = ["module", "include"];
        if dname.is_empty() {
            self.diags.push(
                Diagnostic::error("expected a directive name after `&`")
                    .with_code("bad-directive")
                    .at(line.loc(indent..indent + 1))
                    .with_label("expected `&module` or `&include`"),
            );
            return;
        }
        if !known.contains(&dname) {
            let help = match suggest(dname, known) {
                Some(s) => format!(
                    "did you mean `&{s}`? the directives are `&module NAME` and `&include PATH`"
                ),
                None => "the directives are `&module NAME` and `&include PATH`".into(),
            };
            self.diags.push(
                Diagnostic::error(format!("unknown directive `&{dname}`"))
                    .with_code("unknown-directive")
                    .at(line.loc(name_span))
                    .with_help(help),
            );
            return;
        }
        let (toks, failed) = self.lex_at(line, content, after + name_len);
        if failed {
            return;
        }
        let what = if dname == "module" {
            "module name"
        } else {
            "file path"
        };
        let words: Vec<&Word> = toks
            .iter()
            .filter_map(|t| match t {
                Token::Word(w) => Some(w),
                Token::Braces { .. } => None,
            })
            .collect();
        if let Some(b) = toks.iter().find(|t| matches!(t, Token::Braces { .. })) {
            self.diags.push(
                Diagnostic::error(format!("`&{dname}` takes no peer selector"))
                    .with_code("bad-directive")
                    .at(line.loc(b.span()))
                    .with_help(format!(
                        "directives apply to every instance; `&{dname}` takes one {what}"
                    )),
            );
            return;
        }
        match words.as_slice() {
            [] => self.diags.push(
                Diagnostic::error(format!("expected a {what} after `&{dname}`"))
                    .with_code("bad-directive")
                    .at(line.loc(name_span.end..name_span.end))
                    .with_label(format!("missing {what}")),
            ),
            [w] => {
                let loc = line.loc(w.span.clone());
                if dname == "module" {
                    self.module(w.value.clone(), loc);
                } else {
                    self.include(&w.value, loc);
                }
            }
            [_, extra @ ..] => {
                let span = extra[0].span.start..extra[extra.len() - 1].span.end;
                let mut d = Diagnostic::error(format!(
                    "`&{dname}` takes one {what}, found {} words",
                    words.len()
                ))
                .with_code("bad-directive")
                .at(line.loc(span))
                .with_label("unexpected");
                d.help = Some(Box::from(if dname == "module" {
                    "write one `&module` line per module; quote a name that contains spaces"
                } else {
                    "write one `&include` line per file; quote a path that contains spaces"
                }));
                self.diags.push(d);
            }
        }
    }

    fn module(&mut self, name: String, loc: Location) {
        if let Some(prev) = self.modules.iter().find(|m| m.name == name) {
            self.diags.push(
                Diagnostic::warning(format!("module `{name}` is already loaded at {}", prev.loc))
                    .with_code("duplicate-module")
                    .at(loc)
                    .with_label("this line has no effect"),
            );
            return;
        }
        self.modules.push(ModuleRef { name, loc });
    }

    fn include(&mut self, target: &str, loc: Location) {
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            self.diags.push(
                Diagnostic::error(format!(
                    "includes nest deeper than {MAX_INCLUDE_DEPTH} files"
                ))
                .with_code("include-depth")
                .at(loc),
            );
            return;
        }
        let target_path = Path::new(target);
        let mut candidates = Vec::new();
        if target_path.is_absolute() {
            candidates.push(normalize(target_path));
        } else {
            let here = self
                .stack
                .last()
                .map(|(p, _)| p.clone())
                .unwrap_or_default();
            let dir = here.parent().map(Path::to_path_buf).unwrap_or_default();
            candidates.push(normalize(&dir.join(target_path)));
            if let Some(exp) = self.loader.experiment_dir() {
                let c = normalize(&exp.join(target_path));
                if !candidates.contains(&c) {
                    candidates.push(c);
                }
            }
        }
        if self.includes >= self.limits.includes {
            self.diags.push(
                Diagnostic::error(format!(
                    "more than {} includes: peerlab stops reading the scenario here",
                    thousands(self.limits.includes)
                ))
                .with_code("too-many-includes")
                .at(loc)
                .with_label("one include too many")
                .with_help("a file that includes another twice, included twice itself, doubles at each level; include each file once (docs/compat.md, \"Limits\")"),
            );
            self.stopped = true;
            return;
        }
        for cand in &candidates {
            if let Some(i) = self.stack.iter().position(|(p, _)| p == cand) {
                let mut chain: Vec<String> =
                    self.stack[i..].iter().map(|(_, n)| n.to_string()).collect();
                chain.push(self.stack[i].1.to_string());
                self.diags.push(
                    Diagnostic::error(format!("include cycle: {}", chain.join(" -> ")))
                        .with_code("include-cycle")
                        .at(loc)
                        .with_label("includes a file that is already being read")
                        .with_help("remove one of the `&include` lines of the cycle"),
                );
                return;
            }
            match self.loader.read(cand, self.limits.scenario_bytes) {
                Ok(Some(bytes)) => {
                    self.includes += 1;
                    let name: Arc<str> = Arc::from(cand.to_string_lossy().as_ref());
                    self.bytes = self.bytes.saturating_add(bytes.len() as u64);
                    if self.bytes > self.limits.total_bytes {
                        self.diags.push(
                            Diagnostic::error(format!(
                                "the scenario and its includes are larger than {} in all: peerlab stops reading here",
                                human_bytes(self.limits.total_bytes)
                            ))
                            .with_code("scenario-too-large")
                            .at(loc)
                            .with_label(format!("`{}` crossed the limit", cand.display()))
                            .with_help("include each file once (docs/compat.md, \"Limits\")"),
                        );
                        self.stopped = true;
                        return;
                    }
                    match decode_source(bytes, self.limits.scenario_bytes) {
                        Ok(text) => self.parse_file(name, cand.clone(), &text),
                        Err(e) => {
                            let mut d = e.to_diagnostic(&name, Some(loc.clone()));
                            if d.location.as_ref() != Some(&loc) {
                                d = d.with_help(format!(
                                    "included at {loc}; scenario files are UTF-8 text"
                                ));
                            }
                            self.diags.push(d);
                        }
                    }
                    return;
                }
                Ok(None) => {}
                Err(reason) => {
                    self.diags.push(
                        Diagnostic::error(format!(
                            "cannot read included file `{}`: {reason}",
                            cand.display()
                        ))
                        .with_code("include-unreadable")
                        .at(loc),
                    );
                    return;
                }
            }
        }
        let looked: Vec<String> = candidates
            .iter()
            .map(|c| format!("`{}`", c.display()))
            .collect();
        self.diags.push(
            Diagnostic::error(format!("included file `{target}` not found"))
                .with_code("include-not-found")
                .at(loc)
                .with_label("no such file")
                .with_help(format!(
                    "looked in {}; includes are resolved relative to the including file, then the experiment directory",
                    looked.join(" and ")
                )),
        );
    }

    fn command(&mut self, line: &Line<'_>, indent: usize, content: &str) {
        let time_end = content[indent..]
            .find(char::is_whitespace)
            .map_or(content.len(), |i| indent + i);
        let time_text = &content[indent..time_end];
        let time_span = indent..time_end;
        let phase = match time_text {
            "@@" => Some(Phase::Setup),
            "@!" => Some(Phase::Load),
            t => {
                let clock = t.strip_prefix('@').unwrap_or(t);
                let looks_timed = t.starts_with('@') || t.starts_with(|c: char| c.is_ascii_digit());
                if !looks_timed {
                    self.diags.push(
                        Diagnostic::error(format!("expected a command line, found `{t}`"))
                            .with_code("expected-time")
                            .at(line.loc(time_span))
                            .with_label("expected `@TIME`, `@@` or `@!` here")
                            .with_help("a command line is `@TIME CALLBACK [ARGS...] [{PEERS}]`, e.g. `@1:30 start_session`; comments start with `#`"),
                    );
                    return;
                }
                match parse_clock(clock) {
                    Ok(t) => Some(Phase::At(t)),
                    Err(_) => {
                        self.diags.push(
                            Diagnostic::error(format!("bad time `{t}`"))
                                .with_code("bad-time")
                                .at(line.loc(time_span.clone()))
                                .with_label("expected `[[h:]m:]s`, `@@` or `@!`")
                                .with_help("times are `@90`, `@1:30`, `@0:10.5` or `@1:00:00`: whole hours and minutes, seconds may be fractional"),
                        );
                        None
                    }
                }
            }
        };
        let (toks, mut failed) = self.lex_at(line, content, time_end);
        let Some(phase) = phase else { return };
        let mut iter = toks.into_iter().peekable();
        let callback = match iter.next() {
            Some(Token::Word(w)) => w,
            other => {
                let at = other.map_or(content.len()..content.len(), |t| t.span());
                self.diags.push(
                    Diagnostic::error("expected a callback name after the time")
                        .with_code("expected-callback")
                        .at(line.loc(if at.is_empty() {
                            time_span.end..time_span.end
                        } else {
                            at
                        }))
                        .with_label("missing callback")
                        .with_help("a command line is `@TIME CALLBACK [ARGS...] [{PEERS}]`"),
                );
                return;
            }
        };
        if !is_callback_name(&callback.value) {
            self.diags.push(
                Diagnostic::error(format!("`{}` is not a callback name", callback.value))
                    .with_code("bad-callback")
                    .at(line.loc(callback.span.clone()))
                    .with_label("expected a name like `start_session` or `module.callback`")
                    .with_help("callback names are letters, digits and `_` (not starting with a digit), optionally qualified as `module.callback`"),
            );
            failed = true;
        }
        let mut args = Vec::new();
        let mut kwargs: Vec<KwArg> = Vec::new();
        let mut peers = PeerSpec::All;
        let mut peers_loc = None;
        // Two or more `{…}` groups ending the line are group arguments (as in
        // `partition {1-3} {4-5}`), and the command runs on every instance.
        let rest: Vec<Token> = iter.collect();
        let trailing_groups = rest
            .iter()
            .rev()
            .take_while(|t| matches!(t, Token::Braces { .. }))
            .count();
        let groups_from = if trailing_groups >= 2 {
            rest.len() - trailing_groups
        } else {
            rest.len()
        };
        let mut iter = rest.into_iter().enumerate().peekable();
        while let Some((index, tok)) = iter.next() {
            if index >= groups_from
                && let Token::Braces {
                    inner,
                    inner_span,
                    span,
                } = &tok
            {
                let (spec, errs) = parse_peerspec(inner);
                for e in &errs {
                    let mut d = Diagnostic::error(e.message.clone())
                        .with_code("bad-selector")
                        .at(line
                            .loc(inner_span.start + e.span.start..inner_span.start + e.span.end));
                    d.help = e.help.as_deref().map(Box::from);
                    self.diags.push(d);
                }
                if errs.is_empty() && !matches!(spec, PeerSpec::Only(_)) {
                    self.diags.push(
                        Diagnostic::error("a group of instances must list ids, like `{1-3}`")
                            .with_code("bad-group")
                            .at(line.loc(span.clone()))
                            .with_help("`{}` and `{!…}` select, they do not name a group"),
                    );
                    failed = true;
                }
                failed |= !errs.is_empty();
                args.push(Arg {
                    value: format!("{{{inner}}}"),
                    loc: line.loc(span.clone()),
                });
                continue;
            }
            match tok {
                Token::Word(w) => match w.keyword {
                    Some(n) => {
                        let name = w.value[..n].to_string();
                        let loc = line.loc(w.span.clone());
                        if let Some(prev) = kwargs.iter().find(|k| k.name == name) {
                            self.diags.push(
                                Diagnostic::error(format!(
                                    "keyword argument `{name}` is given twice"
                                ))
                                .with_code("duplicate-keyword")
                                .at(loc)
                                .with_label(format!("first given at column {}", prev.loc.column)),
                            );
                            failed = true;
                            continue;
                        }
                        kwargs.push(KwArg {
                            name,
                            value: w.value[n + 1..].to_string(),
                            loc,
                        });
                    }
                    None => args.push(Arg {
                        value: w.value,
                        loc: line.loc(w.span),
                    }),
                },
                Token::Braces {
                    inner,
                    inner_span,
                    span,
                } => {
                    if iter.peek().is_some() {
                        self.diags.push(
                            Diagnostic::error("the peer selector must come last on the line")
                                .with_code("selector-not-last")
                                .at(line.loc(span))
                                .with_label("followed by more words")
                                .with_help("move `{…}` to the end, or quote the argument if the braces are meant literally"),
                        );
                        failed = true;
                        continue;
                    }
                    let (spec, errs) = parse_peerspec(&inner);
                    for e in &errs {
                        let mut d = Diagnostic::error(e.message.clone())
                            .with_code("bad-selector")
                            .at(line.loc(
                                inner_span.start + e.span.start..inner_span.start + e.span.end,
                            ));
                        d.help = e.help.as_deref().map(Box::from);
                        self.diags.push(d);
                    }
                    failed |= !errs.is_empty();
                    peers = spec;
                    peers_loc = Some(line.loc(span));
                }
            }
        }
        if failed {
            return;
        }
        let callback_loc = line.loc(callback.span.clone());
        if callback.value == "set" {
            self.set(line, phase, callback_loc, args, kwargs, peers_loc);
            return;
        }
        if self.commands.len() >= self.limits.commands {
            self.diags.push(
                Diagnostic::error(format!(
                    "more than {} commands (with includes expanded): peerlab stops reading the scenario here",
                    thousands(self.limits.commands)
                ))
                .with_code("too-many-commands")
                .at(line.loc(time_span))
                .with_label("one command too many")
                .with_help("a peer selector (`{1-100}`) runs one command on many instances; check for an include that repeats (docs/compat.md, \"Limits\")"),
            );
            self.stopped = true;
            return;
        }
        self.commands.push(Command {
            phase,
            callback: callback.value,
            callback_loc,
            args,
            kwargs,
            peers,
            peers_loc,
            loc: line.loc(time_span),
        });
    }

    fn set(
        &mut self,
        line: &Line<'_>,
        phase: Phase,
        callback_loc: Location,
        args: Vec<Arg>,
        kwargs: Vec<KwArg>,
        peers_loc: Option<Location>,
    ) {
        let usage = "write `@! set NAME VALUE`; quote a value that contains spaces";
        if phase != Phase::Load {
            self.diags.push(
                Diagnostic::error("`set` only works at load time")
                    .with_code("bad-set")
                    .at(callback_loc)
                    .with_label("this line is not `@!`")
                    .with_help(format!("{usage}; a timed `set` would not change any line")),
            );
            return;
        }
        if let Some(loc) = peers_loc {
            self.diags.push(
                Diagnostic::error("`set` takes no peer selector")
                    .with_code("bad-set")
                    .at(loc)
                    .with_help("variables are the same on every instance"),
            );
            return;
        }
        if let Some(k) = kwargs.first() {
            self.diags.push(
                Diagnostic::error("`set` takes a name and a value, not a keyword argument")
                    .with_code("bad-set")
                    .at(k.loc.clone())
                    .with_help(usage),
            );
            return;
        }
        match args.as_slice() {
            [name, value] => {
                if !is_ident(&name.value) {
                    self.diags.push(
                        Diagnostic::error(format!("`{}` is not a variable name", name.value))
                            .with_code("bad-set")
                            .at(name.loc.clone())
                            .with_help("variable names are letters, digits and `_`, not starting with a digit"),
                    );
                    return;
                }
                self.set_vars
                    .insert(name.value.clone(), (value.value.clone(), name.loc.clone()));
            }
            _ => {
                let loc = match args.get(2) {
                    Some(extra) => extra.loc.clone(),
                    None => line.loc(
                        callback_loc.span.end - line.start..callback_loc.span.end - line.start,
                    ),
                };
                self.diags.push(
                    Diagnostic::error(format!(
                        "`set` takes a name and a value, found {} argument{}",
                        args.len(),
                        if args.len() == 1 { "" } else { "s" }
                    ))
                    .with_code("bad-set")
                    .at(loc)
                    .with_help(usage),
                );
            }
        }
    }
}
