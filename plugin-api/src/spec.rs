//! The callback table: what a module declares about its callbacks
//! ([`CallbackSpec`], [`ParamSpec`]), the bound arguments a callback receives
//! ([`CallArgs`]) and the binding of raw scenario arguments to a spec
//! ([`bind`]), which the host runs before every call so that `peerlab check`
//! catches a wrong argument.
//!
//! Pure data and pure functions; no I/O.

use std::fmt;

use abi_stable::StableAbi;
use abi_stable::std_types::{ROption, RString, RVec};

use crate::value::{ArgType, Value, Value_NE};

/// How a parameter is passed on a scenario line.
///
/// An integer newtype so that later versions can add kinds.
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub struct ParamKind(pub u8);

impl ParamKind {
    /// By position (`share_local 5`); may also be given by name (`value=5`).
    pub const POSITIONAL: ParamKind = ParamKind(0);
    /// Only by name (`introduce_peers max_peers=3`).
    pub const KEYWORD: ParamKind = ParamKind(1);
}

/// One declared parameter of a callback.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// The parameter's name (used for `name=value` and in messages).
    pub name: RString,
    /// Its type; the host converts the scenario word to it before the call.
    pub ty: ArgType,
    /// Positional or keyword-only.
    pub kind: ParamKind,
    /// Whether the scenario must give it. A parameter that is neither
    /// required nor has a default arrives as `None`.
    pub required: bool,
    /// The value used when the scenario leaves it out.
    pub default: ROption<Value_NE>,
    /// A short description (may be empty).
    pub help: RString,
}

impl ParamSpec {
    /// A required positional parameter.
    pub fn positional(name: &str, ty: ArgType) -> Self {
        ParamSpec {
            name: name.into(),
            ty,
            kind: ParamKind::POSITIONAL,
            required: true,
            default: ROption::RNone,
            help: RString::new(),
        }
    }

    /// A keyword-only parameter, optional without default.
    pub fn keyword(name: &str, ty: ArgType) -> Self {
        ParamSpec {
            kind: ParamKind::KEYWORD,
            required: false,
            ..ParamSpec::positional(name, ty)
        }
    }

    /// Make it optional (arrives as `None` when absent).
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Make it required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Give it a default (which makes it optional).
    pub fn with_default(mut self, value: Value) -> Self {
        self.required = false;
        self.default = ROption::RSome(value.into_ne());
        self
    }

    /// Set the help text.
    pub fn with_help(mut self, help: &str) -> Self {
        self.help = help.into();
        self
    }
}

impl fmt::Display for ParamSpec {
    /// Usage form: `NAME:type`, `[NAME:type]`, `name=type`, `[name=type=default]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = if self.kind == ParamKind::KEYWORD {
            format!("{}={}", self.name, self.ty)
        } else {
            format!("{}:{}", self.name, self.ty)
        };
        let default = match &self.default {
            ROption::RSome(d) => match Value::from_ne(d) {
                Some(v) => format!(" = {v}"),
                None => String::new(),
            },
            ROption::RNone => String::new(),
        };
        if self.required {
            write!(f, "{inner}")
        } else {
            write!(f, "[{inner}{default}]")
        }
    }
}

/// One entry of a module's callback table.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct CallbackSpec {
    /// The name used on scenario lines.
    pub name: RString,
    /// One line of help.
    pub help: RString,
    /// Declared parameters, positional ones first, in call order.
    pub params: RVec<ParamSpec>,
    /// A variadic rest: extra positional words, each converted to this
    /// parameter's type (`echo` takes any number of strings).
    pub rest: ROption<ParamSpec>,
}

impl CallbackSpec {
    /// A callback with no parameters.
    pub fn new(name: &str, help: &str) -> Self {
        CallbackSpec {
            name: name.into(),
            help: help.into(),
            params: RVec::new(),
            rest: ROption::RNone,
        }
    }

    /// Append a parameter.
    pub fn param(mut self, p: ParamSpec) -> Self {
        self.params.push(p);
        self
    }

    /// Set the variadic rest.
    pub fn rest(mut self, p: ParamSpec) -> Self {
        self.rest = ROption::RSome(p);
        self
    }

    /// The usage line: `name ARG:type [kw=type]...`.
    pub fn usage(&self) -> String {
        let mut s = self.name.to_string();
        for p in &self.params {
            s.push(' ');
            s.push_str(&p.to_string());
        }
        if let ROption::RSome(r) = &self.rest {
            s.push_str(&format!(" [{}:{}...]", r.name, r.ty));
        }
        s
    }
}

/// The arguments of one call after the host bound and converted them.
///
/// `values` has one slot per declared parameter, in [`CallbackSpec::params`]
/// order; a slot is `None` only for an optional parameter without default
/// that the scenario left out. Every value already has the declared type.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Default)]
pub struct CallArgs {
    /// One slot per declared parameter.
    pub values: RVec<ROption<Value_NE>>,
    /// The words bound to the variadic rest, converted.
    pub rest: RVec<Value_NE>,
}

impl CallArgs {
    /// The value of parameter `index`, if given (or defaulted).
    pub fn get(&self, index: usize) -> Option<Value> {
        match self.values.get(index)? {
            ROption::RSome(v) => Value::from_ne(v),
            ROption::RNone => None,
        }
    }

    /// The rest values.
    pub fn rest_values(&self) -> Vec<Value> {
        self.rest.iter().filter_map(Value::from_ne).collect()
    }
}

/// A call from one module to another through the host
/// ([`crate::Host::call_module`]): unbound arguments that the host binds
/// against the callee's spec, as it does for scenario lines.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Default)]
pub struct Invocation {
    /// Positional arguments.
    pub positional: RVec<Value_NE>,
    /// Keyword arguments as (name, value).
    pub keyword: RVec<abi_stable::std_types::Tuple2<RString, Value_NE>>,
}

impl Invocation {
    /// An invocation without arguments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append a positional argument.
    pub fn arg(mut self, v: impl crate::IntoValue) -> Self {
        self.positional.push(v.into_value().into_ne());
        self
    }

    /// Append a keyword argument.
    pub fn kwarg(mut self, name: &str, v: impl crate::IntoValue) -> Self {
        self.keyword.push(abi_stable::std_types::Tuple2(
            name.into(),
            v.into_value().into_ne(),
        ));
        self
    }

    /// As raw arguments for [`bind`].
    pub fn to_raw(&self) -> Vec<RawArg> {
        let mut out = Vec::new();
        for v in &self.positional {
            if let Some(v) = Value::from_ne(v) {
                out.push(RawArg::positional(v));
            }
        }
        for kv in &self.keyword {
            if let Some(v) = Value::from_ne(&kv.1) {
                out.push(RawArg::keyword(kv.0.as_str(), v));
            }
        }
        out
    }
}

/// One argument as written, before binding: a scenario word (`5`,
/// `max_peers=3`) or a value another module passed.
#[derive(Debug, Clone, PartialEq)]
pub struct RawArg {
    /// `Some(name)` for `name=value`.
    pub name: Option<String>,
    /// The value; scenario words are [`Value::Str`].
    pub value: Value,
}

impl RawArg {
    /// A positional argument.
    pub fn positional(value: Value) -> Self {
        RawArg { name: None, value }
    }

    /// A keyword argument.
    pub fn keyword(name: &str, value: Value) -> Self {
        RawArg {
            name: Some(name.to_string()),
            value,
        }
    }

    /// Split a scenario word: `name=value` (name an identifier) is a keyword
    /// argument, as in Gumby; anything else is positional.
    pub fn from_word(word: &str) -> Self {
        if let Some((k, v)) = word.split_once('=') {
            let ident = !k.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !k.starts_with(|c: char| c.is_ascii_digit());
            if ident {
                return RawArg::keyword(k, Value::Str(v.into()));
            }
        }
        RawArg::positional(Value::Str(word.into()))
    }
}

/// Why arguments do not fit a callback.
#[derive(Debug, Clone, PartialEq)]
pub struct BindError {
    /// Index into the raw arguments of the offending one, or `None` when the
    /// problem is a missing argument.
    pub arg: Option<usize>,
    /// What is wrong, lowercase, e.g. `argument \`value\`: expected an integer, got "x"`.
    pub message: String,
    /// A suggestion such as the usage line or a close keyword name.
    pub help: Option<String>,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.help {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for BindError {}

/// Bind raw arguments to a callback's parameters and convert each to its
/// declared type. Returns every problem found, not just the first.
pub fn bind(spec: &CallbackSpec, args: &[RawArg]) -> Result<CallArgs, Vec<BindError>> {
    let n = spec.params.len();
    let mut slots: Vec<Option<Value>> = vec![None; n];
    let mut rest = RVec::new();
    let mut errors = Vec::new();
    let usage = || Some(format!("usage: {}", spec.usage()));
    let positional: Vec<usize> = (0..n)
        .filter(|&i| spec.params[i].kind == ParamKind::POSITIONAL)
        .collect();
    let mut next_pos = 0;
    for (ai, arg) in args.iter().enumerate() {
        let target = match &arg.name {
            None => {
                // skip positional slots already filled by name
                while next_pos < positional.len() && slots[positional[next_pos]].is_some() {
                    next_pos += 1;
                }
                if next_pos < positional.len() {
                    next_pos += 1;
                    Some(positional[next_pos - 1])
                } else if let ROption::RSome(r) = &spec.rest {
                    match r.ty.convert(&arg.value) {
                        Ok(v) => rest.push(v.into_ne()),
                        Err(e) => errors.push(BindError {
                            arg: Some(ai),
                            message: format!("argument `{}`: {e}", r.name),
                            help: None,
                        }),
                    }
                    None
                } else {
                    errors.push(BindError {
                        arg: Some(ai),
                        message: format!(
                            "`{}` takes {} positional argument{}, got another: {:?}",
                            spec.name,
                            positional.len(),
                            if positional.len() == 1 { "" } else { "s" },
                            arg.value.to_string()
                        ),
                        help: usage(),
                    });
                    None
                }
            }
            Some(name) => match spec.params.iter().position(|p| p.name.as_str() == name) {
                Some(i) if slots[i].is_some() => {
                    errors.push(BindError {
                        arg: Some(ai),
                        message: format!("argument `{name}` given twice"),
                        help: usage(),
                    });
                    None
                }
                Some(i) => Some(i),
                None => {
                    let names: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
                    let help = match closest(name, names.iter().copied()) {
                        Some(c) => Some(format!("did you mean `{c}`? usage: {}", spec.usage())),
                        None => usage(),
                    };
                    errors.push(BindError {
                        arg: Some(ai),
                        message: format!("`{}` has no parameter `{name}`", spec.name),
                        help,
                    });
                    None
                }
            },
        };
        if let Some(i) = target {
            let p = &spec.params[i];
            match p.ty.convert(&arg.value) {
                Ok(v) => slots[i] = Some(v),
                Err(e) => {
                    // mark as given so it is not reported missing as well
                    slots[i] = Some(arg.value.clone());
                    errors.push(BindError {
                        arg: Some(ai),
                        message: format!("argument `{}`: {e}", p.name),
                        help: usage(),
                    })
                }
            }
        }
    }
    let mut values = RVec::with_capacity(n);
    for (i, slot) in slots.into_iter().enumerate() {
        let p = &spec.params[i];
        let v = match slot {
            Some(v) => ROption::RSome(v.into_ne()),
            None => match &p.default {
                ROption::RSome(d) => ROption::RSome(d.clone()),
                ROption::RNone if p.required => {
                    errors.push(BindError {
                        arg: None,
                        message: format!("`{}` needs argument `{}` ({})", spec.name, p.name, p.ty),
                        help: usage(),
                    });
                    ROption::RNone
                }
                ROption::RNone => ROption::RNone,
            },
        };
        values.push(v);
    }
    if errors.is_empty() {
        Ok(CallArgs { values, rest })
    } else {
        Err(errors)
    }
}

/// The candidate closest to `name` (by edit distance, case-insensitive), if
/// close enough to be a plausible typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lname = name.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = edit_distance(&lname, &c.to_ascii_lowercase());
        let limit = (name.len().max(c.len()) / 3).max(1);
        let plausible = d <= limit || c.contains(name) || name.contains(c);
        if plausible && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CallbackSpec {
        CallbackSpec::new("share", "share a value")
            .param(ParamSpec::positional("value", ArgType::INTEGER))
            .param(
                ParamSpec::positional("label", ArgType::STRING)
                    .with_default(Value::Str("x".into())),
            )
            .param(ParamSpec::keyword("modulus", ArgType::INTEGER))
    }

    fn words(ws: &[&str]) -> Vec<RawArg> {
        ws.iter().map(|w| RawArg::from_word(w)).collect()
    }

    #[test]
    fn binds_positional_keyword_and_defaults() {
        let a = bind(&spec(), &words(&["5", "modulus=7"])).unwrap();
        assert_eq!(a.get(0), Some(Value::Int(5)));
        assert_eq!(a.get(1), Some(Value::Str("x".into())));
        assert_eq!(a.get(2), Some(Value::Int(7)));
        let a = bind(&spec(), &words(&["label=y", "5"])).unwrap();
        assert_eq!(a.get(1), Some(Value::Str("y".into())));
        assert_eq!(a.get(2), None);
    }

    #[test]
    fn reports_every_problem_with_hints() {
        let errs = bind(&spec(), &words(&["five", "moduls=3", "a", "b"])).unwrap_err();
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs[0].contains("argument `value`: expected an integer, got \"five\""),
            "{msgs:?}"
        );
        assert!(msgs[1].contains("did you mean `modulus`"), "{msgs:?}");
        assert!(msgs[2].contains("takes 2 positional arguments"), "{msgs:?}");
        assert_eq!(errs[2].arg, Some(3));
        let errs = bind(&spec(), &[]).unwrap_err();
        assert_eq!(errs[0].message, "`share` needs argument `value` (integer)");
    }

    #[test]
    fn rest_collects_extra_words() {
        let s =
            CallbackSpec::new("echo", "print").rest(ParamSpec::positional("word", ArgType::STRING));
        let a = bind(&s, &words(&["a", "b"])).unwrap();
        assert_eq!(
            a.rest_values(),
            vec![Value::Str("a".into()), Value::Str("b".into())]
        );
    }

    #[test]
    fn closest_finds_typos_only() {
        let c = ["share_local", "share_subset_sum", "print_total_sum"];
        assert_eq!(closest("share_locl", c), Some("share_local"));
        assert_eq!(closest("zzz", c), None);
    }
}
