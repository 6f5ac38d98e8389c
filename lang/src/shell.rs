//! Splitting a scenario line into words like a POSIX shell: whitespace
//! separates words, `'…'` is literal, `"…"` and bare text expand `$NAME` and
//! `${NAME}`, a backslash escapes, and `#` at the start of a word begins a
//! comment. A bare word starting with `{` runs to the next `}` (spaces
//! allowed) and is returned as a peer-selector token.
//!
//! Variables come from a lookup the caller passes in; an unknown one is an
//! error, never literal text. An expanded value is not split again.

use std::ops::Range;

/// One word of a line, after quote removal and expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word's text after quoting and expansion.
    pub value: String,
    /// Byte range of the word as written, relative to the lexed text.
    pub span: Range<usize>,
    /// If the word starts with an unquoted `NAME=`: the name's length in
    /// `value` (the keyword is `value[..n]`, the value `value[n + 1..]`).
    pub keyword: Option<usize>,
    /// True when any part of the word was quoted or escaped.
    pub quoted: bool,
}

/// A lexed token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An ordinary word.
    Word(Word),
    /// A `{…}` peer selector: the text between the braces, its range, and the
    /// range of the whole token.
    Braces {
        /// Text between the braces.
        inner: String,
        /// Range of `inner`.
        inner_span: Range<usize>,
        /// Range of the token including the braces.
        span: Range<usize>,
    },
}

impl Token {
    /// The range of the token as written.
    pub fn span(&self) -> Range<usize> {
        match self {
            Token::Word(w) => w.span.clone(),
            Token::Braces { span, .. } => span.clone(),
        }
    }
}

/// A lexing problem, relative to the lexed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// Where.
    pub span: Range<usize>,
    /// What is wrong.
    pub message: String,
    /// The label under the caret.
    pub label: Option<String>,
    /// What to do.
    pub help: Option<String>,
    /// A stable code.
    pub code: &'static str,
}

/// How variables are looked up: `Ok(value)`, or `Err(help)` saying what to
/// do (e.g. the closest known name).
pub type Lookup<'a> = dyn FnMut(&str) -> Result<String, Option<String>> + 'a;

/// Gumby's keyword split, applied as Gumby did after shlex had removed the
/// quotes: a word `NAME=VALUE` whose NAME is word characters (`\w+`) is a
/// keyword argument, quoted or not (`'z=3'` and `"y"=2` are keywords;
/// `a-b=5` and `=4` are not). Returns the name's length in `value`.
/// Unlike Gumby's `^\s*(\w+)\s*=\s*`, spaces around the name or `=` are not
/// skipped (`docs/compat.md`).
fn gumby_keyword(value: &str) -> Option<usize> {
    let name_len = value.len()
        - value
            .trim_start_matches(|c: char| c.is_alphanumeric() || c == '_')
            .len();
    (name_len > 0 && value[name_len..].starts_with('=')).then_some(name_len)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Split `text` into tokens. Every problem is reported; the tokens returned
/// are the best reading of the line.
pub fn split(text: &str, lookup: &mut Lookup<'_>) -> (Vec<Token>, Vec<LexError>) {
    let mut lx = Lexer {
        text,
        pos: 0,
        errors: Vec::new(),
        lookup,
    };
    let mut tokens = Vec::new();
    loop {
        lx.skip_ws();
        let Some(c) = lx.peek() else { break };
        if c == '#' {
            break; // comment to end of line
        }
        if c == '{' {
            tokens.push(lx.braces());
        } else {
            tokens.push(Token::Word(lx.word()));
        }
    }
    (tokens, lx.errors)
}

struct Lexer<'t, 'l, 'a> {
    text: &'t str,
    pos: usize,
    errors: Vec<LexError>,
    lookup: &'l mut Lookup<'a>,
}

impl Lexer<'_, '_, '_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn error(&mut self, span: Range<usize>, code: &'static str, message: String) -> &mut LexError {
        self.errors.push(LexError {
            span,
            message,
            label: None,
            help: None,
            code,
        });
        self.errors.last_mut().expect("just pushed")
    }

    fn braces(&mut self) -> Token {
        let start = self.pos;
        self.bump(); // `{`
        let inner_start = self.pos;
        match self.text[self.pos..].find('}') {
            Some(rel) => {
                let inner_end = self.pos + rel;
                self.pos = inner_end + 1;
                let inner = self.text[inner_start..inner_end].to_string();
                if self.peek().is_some_and(|c| !c.is_whitespace()) {
                    let from = self.pos;
                    while self.peek().is_some_and(|c| !c.is_whitespace()) {
                        self.bump();
                    }
                    self.error(
                        from..self.pos,
                        "text-after-selector",
                        "unexpected text right after the peer selector".into(),
                    )
                    .help = Some("put a space after `}`, or quote the argument if the braces are meant literally".into());
                }
                Token::Braces {
                    inner,
                    inner_span: inner_start..inner_end,
                    span: start..inner_end + 1,
                }
            }
            None => {
                self.pos = self.text.len();
                let e = self.error(
                    start..self.pos,
                    "unclosed-selector",
                    "unclosed peer selector".into(),
                );
                e.label = Some("this `{` has no `}`".into());
                e.help = Some(
                    "close it: `{1,3-5}`, or quote the argument if the brace is meant literally"
                        .into(),
                );
                Token::Braces {
                    inner: self.text[inner_start..].to_string(),
                    inner_span: inner_start..self.text.len(),
                    span: start..self.text.len(),
                }
            }
        }
    }

    fn word(&mut self) -> Word {
        let start = self.pos;
        let mut value = String::new();
        let mut quoted = false;
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                break;
            }
            match c {
                '\'' => {
                    quoted = true;
                    let q = self.pos;
                    self.bump();
                    match self.text[self.pos..].find('\'') {
                        Some(rel) => {
                            value.push_str(&self.text[self.pos..self.pos + rel]);
                            self.pos += rel + 1;
                        }
                        None => {
                            value.push_str(&self.text[self.pos..]);
                            self.pos = self.text.len();
                            self.error(
                                q..self.pos,
                                "unclosed-quote",
                                "unclosed single quote".into(),
                            )
                            .help = Some("add the closing `'`".into());
                        }
                    }
                }
                '"' => {
                    quoted = true;
                    self.double_quoted(&mut value);
                }
                '\\' => {
                    quoted = true;
                    let b = self.pos;
                    self.bump();
                    match self.bump() {
                        Some(n) => value.push(n),
                        None => {
                            self.error(
                                b..self.pos,
                                "trailing-backslash",
                                "backslash at the end of the line".into(),
                            )
                            .help = Some(
                                "write `\\\\` for a literal backslash; lines cannot be continued"
                                    .into(),
                            );
                        }
                    }
                }
                '$' => self.dollar(&mut value),
                _ => {
                    value.push(c);
                    self.bump();
                }
            }
        }
        let keyword = gumby_keyword(&value);
        Word {
            value,
            span: start..self.pos,
            keyword,
            quoted,
        }
    }

    fn double_quoted(&mut self, value: &mut String) {
        let q = self.pos;
        self.bump(); // opening quote
        loop {
            match self.peek() {
                None => {
                    self.error(
                        q..self.pos,
                        "unclosed-quote",
                        "unclosed double quote".into(),
                    )
                    .help = Some("add the closing `\"`".into());
                    return;
                }
                Some('"') => {
                    self.bump();
                    return;
                }
                Some('\\') => {
                    self.bump();
                    match self.peek() {
                        Some(n @ ('$' | '`' | '"' | '\\')) => {
                            value.push(n);
                            self.bump();
                        }
                        _ => value.push('\\'),
                    }
                }
                Some('$') => self.dollar(value),
                Some(c) => {
                    value.push(c);
                    self.bump();
                }
            }
        }
    }

    /// At a `$`: expand `$NAME` / `${NAME}`, or keep a lone `$`.
    fn dollar(&mut self, value: &mut String) {
        let start = self.pos;
        self.bump(); // `$`
        match self.peek() {
            Some('{') => {
                self.bump();
                let name_start = self.pos;
                match self.text[self.pos..].find('}') {
                    Some(rel) => {
                        let name = &self.text[name_start..name_start + rel];
                        self.pos = name_start + rel + 1;
                        let valid = name.chars().next().is_some_and(is_name_start)
                            && name.chars().all(is_name_char);
                        if valid {
                            self.expand(name.to_string(), start..self.pos, value);
                        } else {
                            self.error(start..self.pos, "bad-variable", format!("`${{{name}}}` is not a variable name"))
                                .help = Some("variable names are letters, digits and `_`, not starting with a digit".into());
                        }
                    }
                    None => {
                        self.pos = self.text.len();
                        self.error(start..self.pos, "bad-variable", "unclosed `${`".into())
                            .help = Some("close it: `${NAME}`".into());
                    }
                }
            }
            Some('(') => {
                self.error(
                    start..start + 2,
                    "command-substitution",
                    "command substitution `$(...)` is not supported".into(),
                )
                .help = Some("quote the `$` as `'$'` or `\\$` if it is meant literally".into());
                value.push('$');
            }
            Some(c) if is_name_char(c) => {
                let name_start = self.pos;
                while self.peek().is_some_and(is_name_char) {
                    self.bump();
                }
                let name = self.text[name_start..self.pos].to_string();
                self.expand(name, start..self.pos, value);
            }
            _ => value.push('$'),
        }
    }

    fn expand(&mut self, name: String, span: Range<usize>, value: &mut String) {
        match (self.lookup)(&name) {
            Ok(v) => value.push_str(&v),
            Err(help) => {
                let e = self.error(
                    span,
                    "unknown-variable",
                    format!("unknown variable `${name}`"),
                );
                e.label = Some("not defined by `@! set`, the config or the environment".into());
                e.help = help;
            }
        }
    }
}

/// Expand `$NAME` and `${NAME}` in `text` (no quoting, no splitting): for
/// config values. A `$` not followed by a name is kept. Returns the first
/// unknown or malformed variable as an error.
pub fn expand_vars(text: &str, lookup: &mut Lookup<'_>) -> Result<String, LexError> {
    let mut out = String::new();
    let mut rest = text;
    let mut base = 0;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => {
                    return Err(LexError {
                        span: base + i..text.len(),
                        message: "unclosed `${`".into(),
                        label: None,
                        help: Some("close it: `${NAME}`".into()),
                        code: "bad-variable",
                    });
                }
            }
        } else {
            let end = after
                .find(|c: char| !is_name_char(c))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        let valid =
            name.chars().next().is_some_and(is_name_start) && name.chars().all(is_name_char);
        if name.is_empty() && len == 0 {
            out.push('$');
        } else if !valid {
            return Err(LexError {
                span: base + i..base + i + 1 + len,
                message: format!("`${name}` is not a variable name"),
                label: None,
                help: Some(
                    "variable names are letters, digits and `_`, not starting with a digit".into(),
                ),
                code: "bad-variable",
            });
        } else {
            match lookup(name) {
                Ok(v) => out.push_str(&v),
                Err(help) => {
                    return Err(LexError {
                        span: base + i..base + i + 1 + len,
                        message: format!("unknown variable `${name}`"),
                        label: None,
                        help,
                        code: "unknown-variable",
                    });
                }
            }
        }
        rest = &after[len..];
        base += i + 1 + len;
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(s: &str) -> String {
        let mut lookup = |n: &str| match n {
            "A" => Ok("alpha".to_string()),
            "SP" => Ok("x y".to_string()),
            _ => Err(None),
        };
        let (toks, errs) = split(s, &mut lookup);
        let mut out: Vec<String> = toks
            .iter()
            .map(|t| match t {
                Token::Word(w) => match w.keyword {
                    Some(n) => format!("kw({}={})", &w.value[..n], &w.value[n + 1..]),
                    None => format!("[{}]", w.value),
                },
                Token::Braces { inner, .. } => format!("{{{inner}}}"),
            })
            .collect();
        out.extend(errs.iter().map(|e| format!("E{:?}:{}", e.span, e.message)));
        out.join(" ")
    }

    #[test]
    fn words() {
        assert_eq!(lex("a  b\tc"), "[a] [b] [c]");
        assert_eq!(lex("'a b' \"c d\" e\\ f"), "[a b] [c d] [e f]");
        assert_eq!(
            lex("x=1 y='a b' 'z=2' =3 a-b=4"),
            "kw(x=1) kw(y=a b) kw(z=2) [=3] [a-b=4]"
        );
        // Gumby's split: shlex first, then `^\s*(\w+)\s*=\s*` on the result
        assert_eq!(
            lex("\"y\"=2 k$A=1 2x=1 k= m=' x' '=5' 'a b=6' ' z=3' 'z =3'"),
            "kw(y=2) kw(kalpha=1) kw(2x=1) kw(k=) kw(m= x) [=5] [a b=6] [ z=3] [z =3]"
        );
        assert_eq!(lex("k=$A"), "kw(k=alpha)");
        assert_eq!(
            lex("$A ${A}x \"$A\" '$A' \\$A $SP"),
            "[alpha] [alphax] [alpha] [$A] [$A] [x y]"
        );
        assert_eq!(lex("a # comment {1}"), "[a]");
        assert_eq!(lex("a#b"), "[a#b]");
        assert_eq!(lex("a {1, 2}"), "[a] {1, 2}");
        assert_eq!(lex("\"a\\\"b\\n\""), "[a\"b\\n]");
        assert_eq!(lex("$ a$ $-"), "[$] [a$] [$-]");
    }

    #[test]
    fn expand() {
        let mut lookup = |n: &str| {
            if n == "A" {
                Ok("1".to_string())
            } else {
                Err(None)
            }
        };
        assert_eq!(
            expand_vars("x$A ${A}y $ 5$", &mut lookup).unwrap(),
            "x1 1y $ 5$"
        );
        assert_eq!(
            expand_vars("$B", &mut lookup).unwrap_err().message,
            "unknown variable `$B`"
        );
        assert_eq!(expand_vars("a${B", &mut lookup).unwrap_err().span, 1..4);
    }

    #[test]
    fn errors() {
        assert_eq!(lex("'abc"), "[abc] E0..4:unclosed single quote");
        assert_eq!(lex("\"abc"), "[abc] E0..4:unclosed double quote");
        assert_eq!(lex("a\\"), "[a] E1..2:backslash at the end of the line");
        assert_eq!(lex("$NOPE x"), "[] [x] E0..5:unknown variable `$NOPE`");
        assert_eq!(lex("${1x}"), "[] E0..5:`${1x}` is not a variable name");
        assert_eq!(lex("${A"), "[] E0..3:unclosed `${`");
        assert_eq!(
            lex("$(ls)"),
            "[$(ls)] E0..2:command substitution `$(...)` is not supported"
        );
        assert_eq!(lex("{1"), "{1} E0..2:unclosed peer selector");
        assert_eq!(
            lex("{1}x"),
            "{1} E3..4:unexpected text right after the peer selector"
        );
    }
}
