//! Procedural macros of `peerlab-plugin-api`: the `#[module]` attribute that
//! turns an `impl` block of a plain struct into a peerlab module, and
//! `export_module!` that exports a module as the plugin's root module.
//!
//! Plugin authors use these through `peerlab_plugin_api` (re-exported there);
//! generated code names only `::peerlab_plugin_api` paths. This crate holds
//! no runtime code.

#![warn(missing_docs)]

mod bench;
mod metrics;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, FnArg, GenericArgument, ImplItem, ImplItemFn, ItemImpl, Lit, Meta, Pat,
    PathArguments, ReturnType, Token, Type,
};

/// Export a type implementing `peerlab_plugin_api::Module` as this cdylib's
/// root module: `export_module!(MyModule);`.
///
/// Generates `pub fn peerlab_root_module() -> ModuleRoot_Ref` (callable from
/// the plugin's own tests) and the library header abi_stable's loader looks
/// for.
#[proc_macro]
pub fn export_module(input: TokenStream) -> TokenStream {
    let ty = syn::parse_macro_input!(input as Type);
    export_tokens(&ty).into()
}

fn export_tokens(ty: &Type) -> TokenStream2 {
    let header = format_ident!("{}", abi_stable_shared::mangled_root_module_loader_name());
    quote! {
        /// The root module of this plugin (also callable from the plugin's
        /// own tests, which link it as an rlib).
        pub fn peerlab_root_module() -> ::peerlab_plugin_api::ModuleRoot_Ref {
            ::peerlab_plugin_api::root_module_for::<#ty>()
        }

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static #header: ::peerlab_plugin_api::abi_stable::library::LibHeader = {
            extern "C" fn __peerlab_erased_root_module(
            ) -> ::peerlab_plugin_api::abi_stable::library::RootModuleResult {
                ::peerlab_plugin_api::abi_stable::library::__call_root_module_loader(
                    peerlab_root_module,
                )
            }
            unsafe {
                ::peerlab_plugin_api::abi_stable::library::LibHeader::from_constructor::<
                    ::peerlab_plugin_api::ModuleRoot_Ref,
                >(
                    __peerlab_erased_root_module,
                    ::peerlab_plugin_api::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    }
}

/// Turn an `impl` block into a peerlab module. See the crate docs of
/// `peerlab_plugin_api` for the full guide.
///
/// Attribute arguments: `name = "..."` (required), `version = "..."`
/// (default: the crate's version), `about = "..."` (default: the first doc
/// line on the `impl` block), `config = ["key: what it means", ...]` (the
/// experiment-config keys the module reads, so `peerlab check` knows them),
/// `metrics = [counter(name, unit = "..", "what"), gauge(..),
/// observation(name, unit = "s", headline, "what")]` (the metrics the
/// module records, since api 1.4), `bench(start = "..", done = metric,
/// messages = [..], ..)` (the workload `peerlab bench <module>` runs,
/// since api 1.5; see `peerlab_plugin_api::Bench`),
/// `export = false` (do not export a root module, e.g. for built-in modules
/// linked into the host).
///
/// Method attributes: `#[callback]` / `#[callback(name = "...")]`,
/// `#[create]`, `#[on_start]`, `#[on_timer]`, `#[on_message]`, `#[on_stop]`,
/// `#[check]`.
/// Parameter attributes: `#[kw]`, `#[kw(default = EXPR, help = "...")]`,
/// `#[arg(default = EXPR, help = "...")]`, `#[rest]`.
#[proc_macro_attribute]
pub fn module(attr: TokenStream, item: TokenStream) -> TokenStream {
    match module_impl(attr.into(), item.into()) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

const TYPES: &str = "String, i64, f64, bool, Duration, or Option<..> of one of them";

struct ModArgs {
    name: String,
    about: Option<String>,
    version: Option<Expr>,
    export: bool,
    /// `config = ["key: help", ...]`: the config keys the module reads.
    config: Vec<(String, String)>,
    /// `metrics = [counter(..), ...]`: the metrics the module records.
    metrics: Vec<metrics::MetricDecl>,
    /// `bench(...)`: the benchmark workload it declares.
    bench: Option<bench::BenchDecl>,
}

/// `["modulus: the modulus M", ...]` -> `[("modulus", "the modulus M"), ...]`.
fn config_keys(e: &Expr) -> syn::Result<Vec<(String, String)>> {
    let usage = "expected `config = [\"key: what it means\", ...]`";
    let Expr::Array(arr) = e else {
        return Err(syn::Error::new(e.span(), usage));
    };
    let mut keys = Vec::new();
    for item in &arr.elems {
        let text = lit_str(item)?;
        let Some((name, help)) = text.split_once(':') else {
            return Err(syn::Error::new(item.span(), usage));
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(syn::Error::new(
                item.span(),
                format!("config key `{name}`: keys are lower-case letters, digits and `_`"),
            ));
        }
        keys.push((name.to_string(), help.trim().to_string()));
    }
    Ok(keys)
}

fn parse_mod_args(attr: TokenStream2) -> syn::Result<ModArgs> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr.clone())?;
    let mut name = None;
    let mut version = None;
    let mut about = None;
    let mut export = true;
    let mut config = Vec::new();
    let mut metrics = Vec::new();
    let mut bench = None;
    for m in metas {
        if let Meta::List(list) = &m
            && list.path.is_ident("bench")
        {
            bench = Some(bench::parse(list)?);
            continue;
        }
        let Meta::NameValue(nv) = &m else {
            return Err(syn::Error::new(
                m.span(),
                "expected `name = \"...\"`, `version = \"...\"` or `export = false`",
            ));
        };
        let key = nv
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        match key.as_str() {
            "name" => name = Some(lit_str(&nv.value)?),
            "version" => version = Some(nv.value.clone()),
            "about" => about = Some(lit_str(&nv.value)?),
            "config" => config = config_keys(&nv.value)?,
            "metrics" => metrics = metrics::parse(&nv.value)?,
            "export" => match &nv.value {
                Expr::Lit(l) => match &l.lit {
                    Lit::Bool(b) => export = b.value,
                    _ => return Err(syn::Error::new(nv.value.span(), "expected true or false")),
                },
                _ => return Err(syn::Error::new(nv.value.span(), "expected true or false")),
            },
            _ => {
                return Err(syn::Error::new(
                    nv.path.span(),
                    format!(
                        "unknown module argument `{key}`: use name, version, about, config, metrics, bench(..) or export"
                    ),
                ));
            }
        }
    }
    let Some(name) = name else {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[module] needs a name: #[peerlab_plugin_api::module(name = \"my_module\")]",
        ));
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(syn::Error::new(
            Span::call_site(),
            "module name must be letters, digits, `_` or `-`",
        ));
    }
    Ok(ModArgs {
        name,
        about,
        version,
        export,
        config,
        metrics,
        bench,
    })
}

fn lit_str(e: &Expr) -> syn::Result<String> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) => Ok(s.value()),
            _ => Err(syn::Error::new(e.span(), "expected a string literal")),
        },
        _ => Err(syn::Error::new(e.span(), "expected a string literal")),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Callback,
    Create,
    OnTimer,
    OnMessage,
    OnStop,
    OnStart,
    Check,
}

const ROLE_ATTRS: [(&str, Role); 7] = [
    ("on_start", Role::OnStart),
    ("callback", Role::Callback),
    ("create", Role::Create),
    ("on_timer", Role::OnTimer),
    ("on_message", Role::OnMessage),
    ("on_stop", Role::OnStop),
    ("check", Role::Check),
];

fn take_role(attrs: &mut Vec<Attribute>) -> syn::Result<Option<(Role, Attribute)>> {
    let mut found: Option<(Role, Attribute)> = None;
    let mut keep = Vec::new();
    for a in attrs.drain(..) {
        let role = ROLE_ATTRS
            .iter()
            .find(|(n, _)| a.path().is_ident(n))
            .map(|(_, r)| *r);
        match role {
            Some(r) => {
                if found.is_some() {
                    return Err(syn::Error::new(
                        a.span(),
                        "a method can have only one role attribute",
                    ));
                }
                found = Some((r, a));
            }
            None => keep.push(a),
        }
    }
    *attrs = keep;
    Ok(found)
}

fn doc_first_line(attrs: &[Attribute]) -> String {
    for a in attrs {
        if let Meta::NameValue(nv) = &a.meta
            && nv.path.is_ident("doc")
            && let Ok(s) = lit_str(&nv.value)
        {
            let t = s.trim();
            if !t.is_empty() {
                return t.to_string();
            }
        }
    }
    String::new()
}

/// `Option<T>` / `Vec<T>` / `T` with T one of the supported scalars.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Plain,
    Option,
    Vec,
}

fn last_ident(ty: &Type) -> Option<(String, &syn::PathSegment)> {
    if let Type::Path(p) = ty
        && p.qself.is_none()
    {
        let seg = p.path.segments.last()?;
        return Some((seg.ident.to_string(), seg));
    }
    None
}

fn classify(ty: &Type) -> Option<(Shape, Type)> {
    let (name, seg) = last_ident(ty)?;
    match name.as_str() {
        "Option" | "Vec" => {
            let PathArguments::AngleBracketed(a) = &seg.arguments else {
                return None;
            };
            let Some(GenericArgument::Type(inner)) = a.args.first() else {
                return None;
            };
            let (s, base) = classify(inner)?;
            if s != Shape::Plain {
                return None;
            }
            Some((
                if name == "Option" {
                    Shape::Option
                } else {
                    Shape::Vec
                },
                base,
            ))
        }
        "String" | "i64" | "f64" | "bool" | "Duration" => {
            if matches!(seg.arguments, PathArguments::None) {
                Some((Shape::Plain, ty.clone()))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn is_host(ty: &Type) -> bool {
    if let Type::Reference(r) = ty
        && r.mutability.is_some()
        && let Some((n, _)) = last_ident(&r.elem)
    {
        return n == "Host";
    }
    false
}

fn is_result(rt: &ReturnType) -> bool {
    match rt {
        ReturnType::Default => false,
        ReturnType::Type(_, ty) => last_ident(ty).is_some_and(|(n, _)| n == "Result"),
    }
}

struct Param {
    name: String,
    ident: syn::Ident,
    shape: Shape,
    base: Type,
    keyword: bool,
    rest: bool,
    default: Option<Expr>,
    help: String,
}

fn parse_param_attrs(
    attrs: &mut Vec<Attribute>,
) -> syn::Result<(bool, bool, Option<Expr>, String)> {
    let (mut kw, mut rest, mut default, mut help) = (false, false, None, String::new());
    let mut keep = Vec::new();
    for a in attrs.drain(..) {
        let is_kw = a.path().is_ident("kw");
        let is_arg = a.path().is_ident("arg");
        let is_rest = a.path().is_ident("rest");
        if !(is_kw || is_arg || is_rest) {
            keep.push(a);
            continue;
        }
        kw |= is_kw;
        rest |= is_rest;
        if let Meta::List(_) = &a.meta {
            let metas = a.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
            for m in metas {
                match &m {
                    Meta::NameValue(nv) if nv.path.is_ident("default") => {
                        if is_rest {
                            return Err(syn::Error::new(
                                m.span(),
                                "a #[rest] parameter has no default",
                            ));
                        }
                        default = Some(nv.value.clone())
                    }
                    Meta::NameValue(nv) if nv.path.is_ident("help") => help = lit_str(&nv.value)?,
                    _ => {
                        return Err(syn::Error::new(
                            m.span(),
                            "expected `default = EXPR` or `help = \"...\"`",
                        ));
                    }
                }
            }
        }
    }
    *attrs = keep;
    Ok((kw, rest, default, help))
}

struct Callback {
    name: String,
    method: syn::Ident,
    help: String,
    has_host: bool,
    params: Vec<Param>,
    returns_result: bool,
}

fn strip_raw(s: String) -> String {
    s.strip_prefix("r#").map(str::to_string).unwrap_or(s)
}

fn analyse_callback(f: &mut ImplItemFn, role_attr: &Attribute) -> syn::Result<Callback> {
    let mut name = strip_raw(f.sig.ident.to_string());
    if let Meta::List(_) = &role_attr.meta {
        let metas = role_attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
        for m in metas {
            match &m {
                Meta::NameValue(nv) if nv.path.is_ident("name") => name = lit_str(&nv.value)?,
                _ => return Err(syn::Error::new(m.span(), "expected `name = \"...\"`")),
            }
        }
    }
    let help = doc_first_line(&f.attrs);
    let mut inputs = f.sig.inputs.iter_mut();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() => {}
        _ => {
            return Err(syn::Error::new(
                f.sig.span(),
                "a #[callback] takes `&mut self` (or `&self`) first, then optionally `host: &mut Host`, then its arguments",
            ));
        }
    }
    let mut has_host = false;
    let mut params: Vec<Param> = Vec::new();
    for (i, arg) in inputs.enumerate() {
        let FnArg::Typed(pt) = arg else {
            unreachable!("only the first input is a receiver")
        };
        if is_host(&pt.ty) {
            if i != 0 {
                return Err(syn::Error::new(
                    pt.ty.span(),
                    "`host: &mut Host` must come right after `self`",
                ));
            }
            has_host = true;
            continue;
        }
        let (keyword, rest, default, phelp) = parse_param_attrs(&mut pt.attrs)?;
        let Pat::Ident(pi) = &*pt.pat else {
            return Err(syn::Error::new(
                pt.pat.span(),
                "callback parameters must be plain names",
            ));
        };
        let ident = pi.ident.clone();
        let pname = strip_raw(ident.to_string());
        let Some((shape, base)) = classify(&pt.ty) else {
            return Err(syn::Error::new(
                pt.ty.span(),
                format!("unsupported callback parameter type: use {TYPES} (Vec<..> with #[rest])"),
            ));
        };
        if rest != (shape == Shape::Vec) {
            return Err(syn::Error::new(
                pt.ty.span(),
                "a variadic parameter is `#[rest] name: Vec<T>`, and only it is a Vec",
            ));
        }
        if keyword && rest {
            return Err(syn::Error::new(
                pt.span(),
                "a parameter cannot be both #[kw] and #[rest]",
            ));
        }
        if default.is_some() && shape == Shape::Option {
            return Err(syn::Error::new(
                pt.span(),
                "a parameter with a default is `T`, not `Option<T>`",
            ));
        }
        if let Some(last) = params.last()
            && last.rest
        {
            return Err(syn::Error::new(
                pt.span(),
                "the #[rest] parameter must come last",
            ));
        }
        if !keyword && !rest {
            let optional_before = params.iter().any(|p| {
                !p.keyword && !p.rest && (p.shape == Shape::Option || p.default.is_some())
            });
            if optional_before && shape == Shape::Plain && default.is_none() {
                return Err(syn::Error::new(
                    pt.span(),
                    "a required positional parameter cannot follow an optional one",
                ));
            }
        }
        params.push(Param {
            name: pname,
            ident,
            shape,
            base,
            keyword,
            rest,
            default,
            help: phelp,
        });
    }
    Ok(Callback {
        name,
        method: f.sig.ident.clone(),
        help,
        has_host,
        params,
        returns_result: is_result(&f.sig.output),
    })
}

fn hook_host_arity(f: &ImplItemFn, role: &str, extra: usize, receiver: bool) -> syn::Result<bool> {
    let mut it = f.sig.inputs.iter();
    if receiver {
        match it.next() {
            Some(FnArg::Receiver(r)) if r.reference.is_some() => {}
            _ => {
                return Err(syn::Error::new(
                    f.sig.span(),
                    format!("#[{role}] takes `&mut self` first"),
                ));
            }
        }
    }
    let rest: Vec<&FnArg> = it.collect();
    let has_host = rest
        .first()
        .is_some_and(|a| matches!(a, FnArg::Typed(p) if is_host(&p.ty)));
    let expected = extra + usize::from(has_host);
    if rest.len() != expected {
        return Err(syn::Error::new(
            f.sig.span(),
            match role {
                "on_timer" => "#[on_timer] is `fn(&mut self, host: &mut Host, token: u64)`",
                "on_message" => {
                    "#[on_message] is `fn(&mut self, host: &mut Host, message: &IncomingMessage)`"
                }
                "on_stop" => "#[on_stop] is `fn(&mut self, host: &mut Host)`",
                "on_start" => "#[on_start] is `fn(&mut self, host: &mut Host)`",
                "create" => "#[create] is `fn(host: &mut Host) -> Result<Self, E>` (or `-> Self`)",
                _ => {
                    "#[check] is `fn(outputs: &Outputs) -> Result<Vec<Verdict>, E>` (or `-> Vec<Verdict>`)"
                }
            },
        ));
    }
    Ok(has_host)
}

fn module_impl(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let args = parse_mod_args(attr)?;
    let mut imp: ItemImpl = syn::parse2(item)?;
    if imp.trait_.is_some() {
        return Err(syn::Error::new(
            imp.span(),
            "#[module] goes on an inherent `impl MyModule { .. }` block",
        ));
    }
    if !imp.generics.params.is_empty() {
        return Err(syn::Error::new(
            imp.generics.span(),
            "a module type cannot be generic",
        ));
    }
    let self_ty = imp.self_ty.clone();
    let api = quote!(::peerlab_plugin_api);
    let mut callbacks: Vec<Callback> = Vec::new();
    let (mut create, mut on_timer, mut on_message, mut on_stop, mut on_start, mut check) =
        (None, None, None, None, None, None);
    for item in imp.items.iter_mut() {
        let ImplItem::Fn(f) = item else { continue };
        let Some((role, role_attr)) = take_role(&mut f.attrs)? else {
            continue;
        };
        let ident = f.sig.ident.clone();
        let res = is_result(&f.sig.output);
        match role {
            Role::Callback => {
                let cb = analyse_callback(f, &role_attr)?;
                if callbacks.iter().any(|c| c.name == cb.name) {
                    return Err(syn::Error::new(
                        f.sig.ident.span(),
                        format!("duplicate callback `{}`", cb.name),
                    ));
                }
                callbacks.push(cb);
            }
            Role::Create => {
                let h = hook_host_arity(f, "create", 0, false)?;
                set_once(&mut create, (ident, h, res), f, "create")?;
            }
            Role::OnTimer => {
                let h = hook_host_arity(f, "on_timer", 1, true)?;
                set_once(&mut on_timer, (ident, h, res), f, "on_timer")?;
            }
            Role::OnMessage => {
                let h = hook_host_arity(f, "on_message", 1, true)?;
                set_once(&mut on_message, (ident, h, res), f, "on_message")?;
            }
            Role::OnStop => {
                let h = hook_host_arity(f, "on_stop", 0, true)?;
                set_once(&mut on_stop, (ident, h, res), f, "on_stop")?;
            }
            Role::OnStart => {
                let h = hook_host_arity(f, "on_start", 0, true)?;
                set_once(&mut on_start, (ident, h, res), f, "on_start")?;
            }
            Role::Check => {
                hook_host_arity(f, "check", 1, false)?;
                set_once(&mut check, (ident, false, res), f, "check")?;
            }
        }
    }
    let mod_name = &args.name;
    let about = args
        .about
        .clone()
        .unwrap_or_else(|| doc_first_line(&imp.attrs));
    let version = match &args.version {
        Some(v) => quote!(#v),
        None => quote!(env!("CARGO_PKG_VERSION")),
    };
    let config_names: Vec<&str> = args.config.iter().map(|(n, _)| n.as_str()).collect();
    let config_helps: Vec<&str> = args.config.iter().map(|(_, h)| h.as_str()).collect();
    let metrics = metrics::tokens(&args.metrics, &api);
    if let Some(b) = &args.bench {
        bench::check(b, &args.metrics, &args.config)?;
    }
    let bench = bench::tokens(args.bench.as_ref(), &api);

    // describe()
    let specs = callbacks.iter().map(|cb| {
        let name = &cb.name;
        let help = &cb.help;
        let params = cb
            .params
            .iter()
            .filter(|p| !p.rest)
            .map(|p| param_spec(p, &api));
        let rest = cb.params.iter().find(|p| p.rest).map(|p| {
            let s = param_spec(p, &api);
            quote!(.rest(#s))
        });
        quote! {
            #api::CallbackSpec::new(#name, #help) #( .param(#params) )* #rest
        }
    });

    // call()
    let arms = callbacks.iter().map(|cb| {
        let name = &cb.name;
        let method = &cb.method;
        let mut binds = Vec::new();
        let mut idents = Vec::new();
        let mut slot = 0usize;
        for p in &cb.params {
            let id = &p.ident;
            let base = &p.base;
            let pname = &p.name;
            let wrong = quote! {
                || ::std::format!(
                    "argument `{}` of `{}` does not have type {}",
                    #pname, #name, <#base as #api::FromValue>::TYPE
                )
            };
            let b = if p.rest {
                quote! {
                    let #id: ::std::vec::Vec<#base> = __args
                        .rest_values()
                        .iter()
                        .map(|v| <#base as #api::FromValue>::from_value(v).ok_or_else(#wrong))
                        .collect::<::std::result::Result<_, _>>()?;
                }
            } else {
                let i = slot;
                slot += 1;
                match (p.shape, &p.default) {
                    (Shape::Option, _) => quote! {
                        let #id: ::std::option::Option<#base> = match __args.get(#i) {
                            ::std::option::Option::Some(v) => ::std::option::Option::Some(
                                <#base as #api::FromValue>::from_value(&v).ok_or_else(#wrong)?,
                            ),
                            ::std::option::Option::None => ::std::option::Option::None,
                        };
                    },
                    (_, Some(d)) => quote! {
                        let #id: #base = match __args.get(#i) {
                            ::std::option::Option::Some(v) =>
                                <#base as #api::FromValue>::from_value(&v).ok_or_else(#wrong)?,
                            ::std::option::Option::None => ::std::convert::Into::into(#d),
                        };
                    },
                    _ => quote! {
                        let #id: #base = match __args.get(#i) {
                            ::std::option::Option::Some(v) =>
                                <#base as #api::FromValue>::from_value(&v).ok_or_else(#wrong)?,
                            ::std::option::Option::None => return ::std::result::Result::Err(
                                ::std::format!("`{}` needs argument `{}`", #name, #pname),
                            ),
                        };
                    },
                }
            };
            binds.push(b);
            idents.push(id.clone());
        }
        let host_arg = if cb.has_host { quote!(__host,) } else { quote!() };
        let ret = if cb.returns_result {
            quote! {
                match __r {
                    ::std::result::Result::Ok(v) => ::std::result::Result::Ok(#api::ReturnValue::into_return_value(v)),
                    ::std::result::Result::Err(e) => ::std::result::Result::Err(::std::string::ToString::to_string(&e)),
                }
            }
        } else {
            quote!(::std::result::Result::Ok(#api::ReturnValue::into_return_value(__r)))
        };
        quote! {
            #name => {
                #(#binds)*
                let __r = Self::#method(self, #host_arg #(#idents),*);
                #ret
            }
        }
    });

    let create_body = match &create {
        Some((id, h, res)) => {
            let host_arg = if *h { quote!(__host) } else { quote!() };
            if *res {
                quote!(Self::#id(#host_arg).map_err(|e| ::std::string::ToString::to_string(&e)))
            } else {
                quote!(::std::result::Result::Ok(Self::#id(#host_arg)))
            }
        }
        None => quote!(::std::result::Result::Ok(
            <Self as ::std::default::Default>::default()
        )),
    };

    let hook = |h: &Option<(syn::Ident, bool, bool)>, sig: TokenStream2, extra: TokenStream2| {
        h.as_ref().map(|(id, has_host, res)| {
            let host_arg = if *has_host { quote!(__host,) } else { quote!() };
            let body = if *res {
                quote!(Self::#id(self, #host_arg #extra).map_err(|e| ::std::string::ToString::to_string(&e)))
            } else {
                quote!({ Self::#id(self, #host_arg #extra); ::std::result::Result::Ok(()) })
            };
            quote!(#sig { #body })
        })
    };
    let on_timer_fn = hook(
        &on_timer,
        quote!(fn on_timer(&mut self, __host: &mut #api::Host<'_>, __token: u64) -> ::std::result::Result<(), ::std::string::String>),
        quote!(__token),
    );
    let on_message_fn = hook(
        &on_message,
        quote!(fn on_message(&mut self, __host: &mut #api::Host<'_>, __message: &#api::IncomingMessage) -> ::std::result::Result<(), ::std::string::String>),
        quote!(__message),
    );
    let on_stop_fn = hook(
        &on_stop,
        quote!(fn on_stop(&mut self, __host: &mut #api::Host<'_>) -> ::std::result::Result<(), ::std::string::String>),
        quote!(),
    );
    let on_start_fn = hook(
        &on_start,
        quote!(fn on_start(&mut self, __host: &mut #api::Host<'_>) -> ::std::result::Result<(), ::std::string::String>),
        quote!(),
    );
    let check_fn = check.as_ref().map(|(id, _, res)| {
        let body = if *res {
            quote!(Self::#id(__outputs).map_err(|e| ::std::string::ToString::to_string(&e)))
        } else {
            quote!(::std::result::Result::Ok(Self::#id(__outputs)))
        };
        quote! {
            fn check(__outputs: &#api::Outputs<'_>) -> ::std::result::Result<::std::vec::Vec<#api::Verdict>, ::std::string::String> {
                #body
            }
        }
    });
    let export = if args.export {
        export_tokens(&self_ty)
    } else {
        quote!()
    };
    Ok(quote! {
        #imp

        impl #api::Module for #self_ty {
            const NAME: &'static str = #mod_name;
            const VERSION: &'static str = #version;
            const ABOUT: &'static str = #about;
            const CONFIG_KEYS: &'static [(&'static str, &'static str)] = &[ #((#config_names, #config_helps)),* ];
            #metrics
            #bench

            fn describe() -> ::std::vec::Vec<#api::CallbackSpec> {
                ::std::vec![ #(#specs),* ]
            }

            #[allow(unused_variables)]
            fn create(__host: &mut #api::Host<'_>) -> ::std::result::Result<Self, ::std::string::String> {
                #create_body
            }

            #[allow(unused_variables, unreachable_code)]
            fn call(
                &mut self,
                __host: &mut #api::Host<'_>,
                __callback: &str,
                __args: &#api::CallArgs,
            ) -> ::std::result::Result<::std::option::Option<#api::Value>, ::std::string::String> {
                match __callback {
                    #(#arms)*
                    __other => ::std::result::Result::Err(::std::format!(
                        "module `{}` has no callback `{}`", #mod_name, __other
                    )),
                }
            }

            #on_timer_fn
            #on_message_fn
            #on_stop_fn
            #on_start_fn
            #check_fn
        }

        #export
    })
}

fn set_once<T>(slot: &mut Option<T>, v: T, f: &ImplItemFn, role: &str) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            f.sig.ident.span(),
            format!("only one #[{role}] method per module"),
        ));
    }
    *slot = Some(v);
    Ok(())
}

fn param_spec(p: &Param, api: &TokenStream2) -> TokenStream2 {
    let name = &p.name;
    let base = &p.base;
    let help = &p.help;
    let ctor = if p.keyword {
        quote!(#api::ParamSpec::keyword(#name, <#base as #api::FromValue>::TYPE))
    } else {
        quote!(#api::ParamSpec::positional(#name, <#base as #api::FromValue>::TYPE))
    };
    let req = match (p.shape, &p.default, p.keyword, p.rest) {
        (_, _, _, true) => quote!(.optional()),
        (_, Some(d), _, _) => quote! {
            .with_default(#api::IntoValue::into_value({
                let __d: #base = ::std::convert::Into::into(#d);
                __d
            }))
        },
        (Shape::Option, None, _, _) => quote!(.optional()),
        (_, None, _, _) => quote!(.required()),
    };
    quote!(#ctor #req .with_help(#help))
}
