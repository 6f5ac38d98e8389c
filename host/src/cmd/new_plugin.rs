//! `peerlab new-plugin NAME --path DIR`: write a plugin crate outside the
//! workspace (Cargo.toml as cdylib + rlib depending on peerlab-plugin-api,
//! an example module with a unit test, an example scenario and config) that
//! builds with plain `cargo build` and loads with `&module NAME`.
//!
//! Writes only inside the new directory and refuses to overwrite anything.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use crate::global::{EXIT_OK, GlobalArgs};

/// Arguments of `peerlab new-plugin`.
#[derive(Args, Debug)]
pub struct NewPluginArgs {
    /// The module's name (letters, digits, `_`, `-`; starts with a letter): `&module NAME`
    pub name: String,
    /// Directory to create for the crate (default: ./NAME)
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Depend on plugin-api at this source directory (default: this peerlab's own source when present)
    #[arg(long = "api-path", value_name = "DIR")]
    pub api_path: Option<PathBuf>,
    /// Require this plugin-api version (e.g. 1.2): written as the dependency's
    /// `version`, next to the path (or git) it builds from
    #[arg(long = "api-version", value_name = "VERSION")]
    pub api_version: Option<String>,
    /// Take plugin-api from this git repository (a peerlab checkout) instead of a path
    #[arg(long = "api-git", value_name = "URL", conflicts_with = "api_path")]
    pub api_git: Option<String>,
}

/// The plugin-api sources this peerlab was built from, if still there.
fn own_api_source() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-api");
    p.join("Cargo.toml")
        .is_file()
        .then(|| p.canonicalize().unwrap_or(p))
}

/// The `version` of a plugin-api source directory's Cargo.toml.
fn source_version(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .map(str::to_string)
}

/// Whether a crate of version `have` satisfies cargo's requirement `want`
/// (a caret requirement such as `1.2`: same major, at least that version).
fn satisfies(have: &str, want: &str) -> bool {
    let nums = |v: &str| -> Option<Vec<u64>> {
        v.trim()
            .trim_start_matches(['^', '='])
            .split('.')
            .map(|n| n.parse().ok())
            .collect()
    };
    match (nums(have), nums(want)) {
        (Some(h), Some(w)) if !w.is_empty() && h.len() == 3 && w.len() <= 3 => {
            h[0] == w[0] && h[..w.len()] >= w[..]
        }
        _ => false,
    }
}

/// The `peerlab-plugin-api = ...` dependency a new crate can build with:
/// a path (`--api-path`, or the sources this peerlab was built from) or a
/// git repository (`--api-git`), with `--api-version` as its version
/// requirement. The api crate is not on crates.io, so there is no
/// registry-only form.
fn api_dependency(args: &NewPluginArgs, own: Option<PathBuf>) -> anyhow::Result<String> {
    let version = args
        .api_version
        .as_deref()
        .map(|v| format!(", version = {v:?}"))
        .unwrap_or_default();
    if let Some(url) = &args.api_git {
        return Ok(format!("{{ git = {url:?}{version} }}"));
    }
    let (path, from) = match (&args.api_path, own) {
        (Some(p), _) => (
            p.canonicalize()
                .with_context(|| format!("--api-path {}", p.display()))?,
            "--api-path",
        ),
        (None, Some(p)) => (p, "this peerlab's own source"),
        (None, None) => bail!(
            "cannot find the plugin-api sources this peerlab was built from, and peerlab-plugin-api is not published on crates.io: give --api-path DIR (the plugin-api folder of a peerlab checkout) or --api-git URL"
        ),
    };
    if let Some(want) = &args.api_version {
        let have = source_version(&path).unwrap_or_default();
        if !satisfies(&have, want) {
            bail!(
                "--api-version {want}: the plugin-api at {} ({from}) is version {have}, which does not satisfy it; give --api-path to a plugin-api {want} source, or --api-git URL",
                path.display()
            );
        }
    }
    Ok(format!(
        "{{ path = {:?}{version} }}",
        path.display().to_string()
    ))
}

/// A path as a shell word (quoted when it holds anything unusual).
fn shell_word(p: &Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Entry point of `peerlab new-plugin`.
pub fn run(_global: &GlobalArgs, args: NewPluginArgs) -> anyhow::Result<u8> {
    let name = args.name.as_str();
    if !valid_name(name) {
        bail!(
            "invalid plugin name {name:?}: use letters, digits, `_` or `-`, starting with a letter"
        );
    }
    if crate::modules::BUILTINS.contains(&name) {
        bail!("`{name}` is a built-in module; pick another name");
    }
    let dir = args.path.clone().unwrap_or_else(|| PathBuf::from(name));
    if dir.exists()
        && fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{} already exists and is not empty; choose another --path",
            dir.display()
        );
    }
    let dep = api_dependency(&args, own_api_source())?;
    let files = render(name, &dep);
    for (rel, text) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let lib = name.replace('-', "_");
    println!("created plugin `{name}` in {}", dir.display());
    println!("next steps (each line is a command):");
    println!("  cd {}", shell_word(&dir));
    println!("  cargo build");
    println!("  peerlab modules --plugin-path target/debug {name} --call \"hello world times=2\"");
    println!("  peerlab check {name}.conf");
    println!("  peerlab run {name}.conf");
    println!(
        "(the library is target/debug/lib{lib}.so; {name}.conf finds it through `plugin_path = target/debug`: \
         point that key elsewhere if you build with CARGO_TARGET_DIR)"
    );
    Ok(EXIT_OK)
}

/// The files of a new plugin crate, as (relative path, contents).
pub fn render(name: &str, api_dependency: &str) -> Vec<(PathBuf, String)> {
    let lib = name.replace('-', "_");
    let ty: String = name
        .split(['-', '_'])
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    let cargo = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false
description = "The `{name}` experiment module for peerlab"

[lib]
name = "{lib}"
# cdylib: the plugin peerlab loads; rlib: so unit tests link it directly
crate-type = ["cdylib", "rlib"]

[dependencies]
peerlab-plugin-api = {api_dependency}

# A crate of its own, even when created inside another workspace.
[workspace]
"#
    );
    let src = format!(
        r#"//! The `{name}` peerlab module: one instance per experiment instance.
//! Scenario lines call its `#[callback]` methods; arguments arrive typed.

use std::collections::BTreeMap;

use peerlab_plugin_api::{{module, Host, Outputs, Verdict}};

/// Per-instance state.
#[derive(Debug, Default)]
pub struct {ty} {{
    greetings: i64,
}}

/// What this module is for, in one line (shown by `peerlab modules`).
#[module(
    name = "{name}",
    // Results go into metrics: one of each kind, in the stats files, run.json and the report.
    metrics = [
        counter(greetings, unit = "greetings", "greetings made"),
        gauge(last_times, unit = "greetings", "the `times` of the last hello"),
        observation(hello_at, unit = "s", headline, "scenario time of each hello"),
    ],
    // A module with a protocol of its own can declare the workload `peerlab bench {name}`
    // measures it with: bench(start = "..", done = .., messages = [..], ..); see
    // "Benchmark workload" in the peerlab-plugin-api docs.
)]
impl {ty} {{
    /// Greet someone: `hello NAME [times=N]`.
    #[callback]
    fn hello(&mut self, host: &mut Host, who: String, #[kw(default = 1)] times: i64) -> Result<(), String> {{
        if times < 0 {{
            return Err(format!("times must not be negative, got {{times}}"));
        }}
        for _ in 0..times {{
            host.print(format!("hello {{who}} from instance {{}}", host.instance_id()));
        }}
        self.greetings += times;
        host.counter_add("greetings", times as f64);
        host.gauge_set("last_times", times as f64);
        host.observe("hello_at", host.now());
        Ok(())
    }}

    /// Print how many greetings this instance made: `report`.
    #[callback]
    fn report(&mut self, host: &mut Host) {{
        host.print(format!("greetings {{}}", self.greetings));
    }}

    /// Verdict after the run: every instance reported, all the same count.
    /// Judge every instance id: one that never reported fails by name.
    #[check]
    fn verdicts(outputs: &Outputs) -> Vec<Verdict> {{
        let ids = outputs.instance_ids();
        if ids.is_empty() {{
            return vec![Verdict::fail("greetings agree", "not judged: the run has no instances")];
        }}
        let mut reports: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut silent = Vec::new();
        for id in ids {{
            match outputs.lines(id).into_iter().rev().find(|l| l.starts_with("greetings ")) {{
                Some(line) => reports.entry(line).or_default().push(id),
                None => silent.push(id),
            }}
        }}
        if let (true, Some((line, who))) = (silent.is_empty() && reports.len() == 1, reports.iter().next()) {{
            return vec![Verdict::pass("greetings agree", format!("all {{}} instances reported `{{line}}`", who.len()))];
        }}
        let mut why: Vec<String> = reports.iter().map(|(line, who)| format!("`{{line}}` from {{who:?}}")).collect();
        if !silent.is_empty() {{
            why.push(format!("no report from {{silent:?}}"));
        }}
        vec![Verdict::fail("greetings agree", why.join("; "))]
    }}
}}

#[cfg(test)]
mod tests {{
    use super::*;
    use peerlab_plugin_api::abi_stable::std_types::{{ROption, RStr, RString, RVec}};
    use peerlab_plugin_api::testing::TestHost;
    use peerlab_plugin_api::{{Module, RunOutputs}};

    /// What each instance printed (instance 1 first), as peerlab hands it to the verdict.
    struct Printed(Vec<Vec<&'static str>>);

    impl RunOutputs for Printed {{
        fn instance_ids(&self) -> RVec<u64> {{
            (1..=self.0.len() as u64).collect()
        }}
        fn lines(&self, instance: u64) -> RVec<RString> {{
            self.0[instance as usize - 1].iter().map(|l| RString::from(*l)).collect()
        }}
        fn succeeded(&self, _instance: u64) -> bool {{
            true
        }}
        fn status(&self, _instance: u64) -> RString {{
            "finished".into()
        }}
        fn config(&self, _key: RStr<'_>) -> ROption<RString> {{
            ROption::RNone
        }}
        fn config_keys(&self) -> RVec<RString> {{
            RVec::new()
        }}
    }}

    fn judged(printed: Vec<Vec<&'static str>>) -> (bool, String) {{
        let printed = Printed(printed);
        let v = {ty}::verdicts(&Outputs::from_impl(&printed));
        (v[0].passed, v[0].message.to_string())
    }}

    #[test]
    fn the_verdict_judges_every_instance() {{
        assert_eq!(judged(vec![vec!["greetings 2"], vec!["greetings 2"]]), (true, "all 2 instances reported `greetings 2`".into()));
        assert_eq!(judged(vec![vec!["greetings 2"], vec!["greetings 1"]]), (false, "`greetings 1` from [2]; `greetings 2` from [1]".into()));
        assert_eq!(judged(vec![vec!["greetings 2"], vec![], vec!["hello"]]), (false, "`greetings 2` from [1]; no report from [2, 3]".into()));
        assert_eq!(judged(vec![]), (false, "not judged: the run has no instances".into()));
    }}

    #[test]
    fn hello_prints_and_counts() {{
        // with_metrics: undeclared metric names are caught, as the host does.
        let mut host = TestHost::new(2, 3).with_metrics({ty}::METRICS);
        let mut m = {ty}::default();
        host.now = 1.5;
        m.hello(&mut host.host(), "world".into(), 2).unwrap();
        m.report(&mut host.host());
        assert_eq!(host.prints, ["hello world from instance 2", "hello world from instance 2", "greetings 2"]);
        assert_eq!(host.counter("greetings"), 2.0);
        assert_eq!(host.gauge("last_times"), Some(2.0));
        assert_eq!(host.observations("hello_at"), [1.5]);
        assert!(host.metric_errors.is_empty(), "{{:?}}", host.metric_errors);
        assert!(m.hello(&mut host.host(), "x".into(), -1).is_err());
    }}
}}
"#
    );
    let scenario = format!(
        r#"# Example scenario for the `{name}` module: `peerlab check {name}.conf`, then `peerlab run {name}.conf`.
&module {name}

@0:01 hello world times=2
@0:02 echo greeted
@0:03 report
@0:05 stop
"#
    );
    let conf = format!(
        r#"experiment_name = "{name}"
scenario_file = '{name}.scenario'
sync_subscribers_amount = 3
experiment_time = 10
# Where `cargo build` puts the plugin, relative to this file.
plugin_path = target/debug
"#
    );
    let readme = format!(
        "# {name}\n\nA peerlab experiment module.\n\n```sh\ncargo build\ncargo test\npeerlab modules --plugin-path target/debug {name}\npeerlab check {name}.conf\npeerlab run {name}.conf\n```\n\n`{name}.conf` finds the built plugin through `plugin_path = target/debug`\n(relative to the config file).\n"
    );
    vec![
        ("Cargo.toml".into(), cargo),
        ("src/lib.rs".into(), src),
        (format!("{name}.scenario").into(), scenario),
        (format!("{name}.conf").into(), conf),
        ("README.md".into(), readme),
        (".gitignore".into(), "/target\n/output\nCargo.lock\n".into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(valid_name("greeter"));
        assert!(valid_name("my-mod_2"));
        assert!(!valid_name("2x"));
        assert!(!valid_name("a b"));
    }

    #[test]
    fn versions_are_matched_as_cargo_does() {
        assert!(satisfies("1.2.0", "1.2"));
        assert!(satisfies("1.2.0", "1"));
        assert!(satisfies("1.2.0", "1.0"));
        assert!(satisfies("1.2.0", "=1.2.0"));
        assert!(!satisfies("1.2.0", "1.3"));
        assert!(!satisfies("1.2.0", "2"));
        assert!(!satisfies("1.2.0", "x"));
    }

    #[test]
    fn rendered_crate_is_a_cdylib_named_after_the_module() {
        let files = render("my-mod", "{ path = \"/x\" }");
        let cargo = &files[0].1;
        assert!(cargo.contains("name = \"my_mod\""), "{cargo}");
        assert!(cargo.contains("crate-type = [\"cdylib\", \"rlib\"]"));
        assert!(files[1].1.contains("pub struct MyMod"));
        assert!(files[2].1.starts_with("# Example scenario"));
    }
}
