//! `#[module(metrics = [...])]`: parsing a module's metric declarations
//! at compile time (kind, name, unit, description, headline), so a bad
//! declaration is a compile error at the line that wrote it, and the
//! tokens of the `Module::METRICS` table.
//!
//! Must not: know how the host records metrics; names are checked with the
//! same rule as the host's (`peerlab_plugin_api::check_metric_name`, copied
//! here because a proc-macro crate cannot depend on the crate it serves).

use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Expr, Lit};

/// One declaration: `counter(name, unit = "...", "description")`.
pub struct MetricDecl {
    kind: &'static str,
    name: String,
    unit: String,
    description: String,
    headline: bool,
}

impl MetricDecl {
    /// The declared name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `COUNTER`, `GAUGE` or `OBSERVATION` (the `MetricKind` constant).
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}

const USAGE: &str = "expected `metrics = [counter(name, unit = \"...\", \"what it counts\"), \
gauge(...), observation(name, unit = \"s\", headline, \"...\")]`";

/// The host's rule (`peerlab_plugin_api::check_metric_name`), for the
/// compile-time check.
fn check_name(name: &str) -> Option<String> {
    let stem = name.strip_suffix("/*").unwrap_or(name);
    if stem.is_empty() || name.len() > 64 {
        return Some(format!(
            "metric `{name}`: names are 1 to 64 bytes of lower-case letters, digits and `_`"
        ));
    }
    let ok = stem
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '/');
    (!ok || stem.starts_with('/') || stem.ends_with('/') || stem.contains("//")).then(|| {
        format!(
            "metric `{name}`: names are lower-case letters, digits and `_` (a family ends in `/*`)"
        )
    })
}

fn string(e: &Expr) -> Option<String> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) => Some(s.value()),
            _ => None,
        },
        _ => None,
    }
}

fn one(e: &Expr) -> syn::Result<MetricDecl> {
    let Expr::Call(call) = e else {
        return Err(syn::Error::new(e.span(), USAGE));
    };
    let kind = match &*call.func {
        Expr::Path(p) if p.path.is_ident("counter") => "COUNTER",
        Expr::Path(p) if p.path.is_ident("gauge") => "GAUGE",
        Expr::Path(p) if p.path.is_ident("observation") => "OBSERVATION",
        other => {
            return Err(syn::Error::new(
                other.span(),
                "a metric is a `counter(..)`, a `gauge(..)` or an `observation(..)`",
            ));
        }
    };
    let mut args = call.args.iter();
    let Some(first) = args.next() else {
        return Err(syn::Error::new(call.span(), USAGE));
    };
    // The name: an identifier (`time_to_total`) or a string (`"sent_to/*"`).
    let name = match first {
        Expr::Path(p) if p.path.get_ident().is_some() => p
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default(),
        other => string(other).ok_or_else(|| {
            syn::Error::new(
                other.span(),
                "the metric's name comes first: an identifier or a string",
            )
        })?,
    };
    if let Some(why) = check_name(&name) {
        return Err(syn::Error::new(first.span(), why));
    }
    let mut decl = MetricDecl {
        kind,
        name,
        unit: String::new(),
        description: String::new(),
        headline: false,
    };
    for a in args {
        match a {
            Expr::Assign(asg) => {
                let key = match &*asg.left {
                    Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
                    _ => None,
                };
                let value = string(&asg.right)
                    .ok_or_else(|| syn::Error::new(asg.right.span(), "expected a string"))?;
                match key.as_deref() {
                    Some("unit") => decl.unit = value,
                    Some("description") => decl.description = value,
                    _ => {
                        return Err(syn::Error::new(
                            asg.left.span(),
                            "unknown metric argument: use unit = \"...\", description = \"...\" or headline",
                        ));
                    }
                }
            }
            Expr::Path(p) if p.path.is_ident("headline") => decl.headline = true,
            other => match string(other) {
                Some(d) => decl.description = d,
                None => return Err(syn::Error::new(other.span(), USAGE)),
            },
        }
    }
    Ok(decl)
}

/// `[counter(..), ...]` -> the declarations, with duplicate names refused.
pub fn parse(e: &Expr) -> syn::Result<Vec<MetricDecl>> {
    let Expr::Array(arr) = e else {
        return Err(syn::Error::new(e.span(), USAGE));
    };
    let mut out: Vec<MetricDecl> = Vec::new();
    for item in &arr.elems {
        let d = one(item)?;
        if out.iter().any(|o| o.name == d.name) {
            return Err(syn::Error::new(
                item.span(),
                format!("metric `{}` is declared twice", d.name),
            ));
        }
        out.push(d);
    }
    Ok(out)
}

/// The `Module::METRICS` table.
pub fn tokens(decls: &[MetricDecl], api: &TokenStream2) -> TokenStream2 {
    let items = decls.iter().map(|d| {
        let kind = syn::Ident::new(d.kind, proc_macro2::Span::call_site());
        let (name, unit, description, headline) = (&d.name, &d.unit, &d.description, d.headline);
        quote! {
            #api::MetricSpec {
                name: #api::abi_stable::std_types::RStr::from_str(#name),
                kind: #api::MetricKind::#kind,
                unit: #api::abi_stable::std_types::RStr::from_str(#unit),
                description: #api::abi_stable::std_types::RStr::from_str(#description),
                headline: #headline,
            }
        }
    });
    quote! {
        const METRICS: &'static [#api::MetricSpec] = &[ #(#items),* ];
    }
}
