//! `#[module(bench(...))]`: parsing a module's benchmark workload at
//! compile time, checking what the module itself declares (the `done`
//! observation among its metrics, the `fanout` key among its config keys),
//! and the tokens of `Module::BENCH`.
//!
//! Must not: check commands (they may be another module's: the host binds
//! them when it loads the workload) or know how the host measures.

use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Lit, Meta, MetaList, Token};

use crate::metrics::MetricDecl;

/// One workload declaration.
pub struct BenchDecl {
    about: String,
    protocol: String,
    modules: Vec<String>,
    community: String,
    start: String,
    end: Vec<String>,
    done: (String, Span),
    messages: Vec<String>,
    fanout: (String, Span),
    help: String,
}

const USAGE: &str = "expected `bench(start = \"command args\", done = observation_name, \
messages = [\"message-type\", ...])`, optionally with about, protocol, modules = [..], \
community, end = [..], fanout = \"config_key\", help";

fn string(e: &Expr) -> syn::Result<String> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) => Ok(s.value()),
            _ => Err(syn::Error::new(e.span(), "expected a string literal")),
        },
        _ => Err(syn::Error::new(e.span(), "expected a string literal")),
    }
}

fn strings(e: &Expr) -> syn::Result<Vec<String>> {
    let Expr::Array(arr) = e else {
        return Err(syn::Error::new(e.span(), "expected [\"...\", ...]"));
    };
    arr.elems.iter().map(string).collect()
}

/// An identifier (`time_to_total`) or a string.
fn name(e: &Expr) -> syn::Result<String> {
    match e {
        Expr::Path(p) if p.path.get_ident().is_some() => Ok(p
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default()),
        other => string(other),
    }
}

/// `bench(start = "...", ...)` -> the declaration.
pub fn parse(list: &MetaList) -> syn::Result<BenchDecl> {
    let metas = list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
    let span = list.span();
    let mut d = BenchDecl {
        about: String::new(),
        protocol: String::new(),
        modules: Vec::new(),
        community: String::new(),
        start: String::new(),
        end: Vec::new(),
        done: (String::new(), span),
        messages: Vec::new(),
        fanout: (String::new(), span),
        help: String::new(),
    };
    for m in metas {
        let Meta::NameValue(nv) = &m else {
            return Err(syn::Error::new(m.span(), USAGE));
        };
        let key = nv
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let v = &nv.value;
        match key.as_str() {
            "about" => d.about = string(v)?,
            "protocol" => d.protocol = string(v)?,
            "modules" => d.modules = strings(v)?,
            "community" => d.community = string(v)?,
            "start" => d.start = string(v)?,
            "end" => d.end = strings(v)?,
            "done" => d.done = (name(v)?, v.span()),
            "messages" => d.messages = strings(v)?,
            "fanout" => d.fanout = (string(v)?, v.span()),
            "help" => d.help = string(v)?,
            _ => {
                return Err(syn::Error::new(
                    nv.path.span(),
                    format!(
                        "unknown bench argument `{key}`: use about, protocol, modules, community, \
                         start, end, done, messages, fanout or help"
                    ),
                ));
            }
        }
    }
    if d.start.split_whitespace().next().is_none() {
        return Err(syn::Error::new(
            span,
            "bench needs `start = \"command args\"`: the scenario line that starts the protocol",
        ));
    }
    if d.done.0.is_empty() {
        return Err(syn::Error::new(
            span,
            "bench needs `done = observation_name`: the observation each instance records once when it is done",
        ));
    }
    if d.messages.is_empty() {
        return Err(syn::Error::new(
            span,
            "bench needs `messages = [\"message-type\", ...]`: the messages counted as the protocol's",
        ));
    }
    Ok(d)
}

/// The parts that name the module's own declarations: `done` is one of its
/// observations, `fanout` one of its config keys.
pub fn check(
    d: &BenchDecl,
    metrics: &[MetricDecl],
    config: &[(String, String)],
) -> syn::Result<()> {
    let (done, at) = &d.done;
    match metrics.iter().find(|m| m.name() == done) {
        Some(m) if m.kind() == "OBSERVATION" && !m.name().ends_with("/*") => {}
        Some(_) => {
            return Err(syn::Error::new(
                *at,
                format!(
                    "bench: `done = {done}` must name an observation, and `{done}` is declared as another kind"
                ),
            ));
        }
        None => {
            return Err(syn::Error::new(
                *at,
                format!(
                    "bench: `done = {done}` is not one of this module's metrics: declare \
                     `observation({done}, unit = \"s\", \"...\")` in `metrics = [...]`"
                ),
            ));
        }
    }
    let (fanout, at) = &d.fanout;
    if !fanout.is_empty() && !config.iter().any(|(k, _)| k == fanout) {
        return Err(syn::Error::new(
            *at,
            format!(
                "bench: `fanout = \"{fanout}\"` is not one of this module's config keys: declare it in `config = [...]`"
            ),
        ));
    }
    Ok(())
}

/// The `Module::BENCH` constant (`None` without a declaration).
pub fn tokens(d: Option<&BenchDecl>, api: &TokenStream2) -> TokenStream2 {
    let Some(d) = d else {
        return quote!();
    };
    let (about, protocol, community, start) = (&d.about, &d.protocol, &d.community, &d.start);
    let (modules, end, messages) = (&d.modules, &d.end, &d.messages);
    let (done, fanout, help) = (&d.done.0, &d.fanout.0, &d.help);
    quote! {
        const BENCH: ::std::option::Option<#api::Bench> = ::std::option::Option::Some(#api::Bench {
            about: #about,
            protocol: #protocol,
            modules: &[ #(#modules),* ],
            community: #community,
            start: #start,
            end: &[ #(#end),* ],
            done: #done,
            messages: &[ #(#messages),* ],
            fanout: #fanout,
            help: #help,
        });
    }
}
