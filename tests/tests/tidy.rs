//! House rules checked as tests (after rust-analyzer's tidy): every Rust
//! file opens with a `//!` comment saying what it owns, and ARCHITECTURE.md
//! names every crate of the workspace.

use std::path::{Path, PathBuf};

use peerlab_e2e::workspace_root;

/// Every `.rs` file under `dir`, skipping build outputs.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if name == "target" || name.starts_with('.') || name == "output" {
                continue;
            }
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_comment() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in [
        "host",
        "lang",
        "plugin-api",
        "plugins",
        "report",
        "sync",
        "tests",
    ] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 50,
        "found only {} files: wrong root?",
        files.len()
    );
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            !text.trim_start_matches('\u{feff}').starts_with("//!")
        })
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not open with a `//!` comment saying what they own:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn architecture_md_names_every_workspace_crate() {
    let root = workspace_root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let members: Vec<&str> = manifest
        .split("members = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("a members list")
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .collect();
    assert!(members.len() >= 5, "{members:?}");
    for member in members {
        assert!(
            architecture.contains(&format!("{member}/")),
            "ARCHITECTURE.md does not mention the workspace member `{member}/`"
        );
    }
}

// ---------------------------------------------------------------------------
// Dependency rules (ARCHITECTURE.md's boundaries, held by a test).
//
// Read from `cargo metadata --no-deps` (which crate depends on which of
// ours: a dependency given by `path`) and, where the rule is about a module
// inside a crate, from the `use` lines of its source.

/// One workspace package: its name, its folder relative to the workspace
/// root, and the names of the crates of ours it depends on (any kind:
/// normal, dev or build).
#[derive(Debug)]
struct Package {
    name: String,
    dir: String,
    ours: Vec<String>,
    /// Every crate it depends on for its own code (normal dependencies,
    /// not dev or build ones), ours or not.
    normal: Vec<String>,
    /// Its normal dependencies with the features it asks of each: (name,
    /// default features on, features).
    features: Vec<(String, bool, Vec<String>)>,
}

/// The workspace's packages, as `cargo metadata` sees them.
fn workspace_packages() -> Vec<Package> {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    meta["packages"]
        .as_array()
        .expect("a package list")
        .iter()
        .map(|p| {
            let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap());
            let dir = manifest.parent().unwrap();
            let dir = dir.strip_prefix(&root).unwrap_or(dir);
            Package {
                name: p["name"].as_str().unwrap().to_string(),
                dir: dir.display().to_string(),
                ours: p["dependencies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|d| d["path"].is_string())
                    .map(|d| d["name"].as_str().unwrap().to_string())
                    .collect(),
                normal: p["dependencies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|d| d["kind"].is_null())
                    .map(|d| d["name"].as_str().unwrap().to_string())
                    .collect(),
                features: p["dependencies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|d| d["kind"].is_null())
                    .map(|d| {
                        (
                            d["name"].as_str().unwrap().to_string(),
                            d["uses_default_features"].as_bool().unwrap_or(true),
                            d["features"]
                                .as_array()
                                .map(|f| {
                                    f.iter()
                                        .filter_map(|x| x.as_str().map(str::to_string))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Every crate of ours may depend only on the crates of ours that its rule
/// allows; the messages name the rule and the file that states it.
#[test]
fn crates_depend_only_on_what_their_boundary_allows() {
    let packages = workspace_packages();
    let find = |dir: &str| {
        packages
            .iter()
            .find(|p| p.dir == dir)
            .unwrap_or_else(|| panic!("no workspace package in {dir}/: {packages:#?}"))
    };
    let host = find("host");
    let api = find("plugin-api");
    let mut broken = Vec::new();

    // Plugins are built against plugin-api alone, plugins/dispersy too (the
    // built-in plugin the host links: its module glue uses plugin-api only).
    let plugins: Vec<&Package> = packages
        .iter()
        .filter(|p| p.dir.starts_with("plugins/"))
        .collect();
    assert!(plugins.len() >= 4, "{packages:#?}");
    for p in &plugins {
        for d in p.ours.iter().filter(|d| **d != api.name) {
            broken.push(format!(
                "{} ({}/) depends on {d}: a plugin depends only on {} among our crates",
                p.name, p.dir, api.name
            ));
        }
    }
    // plugin-api is the boundary: nothing of ours behind it but its macros.
    for d in &api.ours {
        if find("plugin-api/macros").name != *d {
            broken.push(format!(
                "{} depends on {d}: plugin-api depends on nothing of ours but its macros crate",
                api.name
            ));
        }
    }
    // lang is pure: it depends on nothing of ours.
    let lang = find("lang");
    for d in &lang.ours {
        broken.push(format!(
            "{} depends on {d}: lang knows nothing of modules, runners or the overlay",
            lang.name
        ));
    }
    // The plugin loader finds, checks and opens plugin files: plugin-api is
    // all it knows of ours, and it runs no async runtime.
    let loader = find("loader");
    for d in loader.ours.iter().filter(|d| **d != api.name) {
        broken.push(format!(
            "{} depends on {d}: the loader depends only on {} among our crates",
            loader.name, api.name
        ));
    }
    if loader.normal.iter().any(|d| d == "tokio") {
        broken.push(format!(
            "{} depends on tokio: loading a plugin needs no async runtime",
            loader.name
        ));
    }
    // The sync protocol knows no scenario, module or runner: of ours it
    // depends on the run folder's types (the end statuses) alone.
    let sync = find("sync");
    let run = find("run");
    for d in sync.ours.iter().filter(|d| **d != run.name) {
        broken.push(format!(
            "{} depends on {d}: the sync crate depends only on {} among our crates",
            sync.name, run.name
        ));
    }
    // Nothing depends on the host but the end-to-end tests (report and the
    // run folder's types are read by the host, never the other way round).
    for p in packages.iter().filter(|p| p.dir != "tests") {
        if p.ours.contains(&host.name) {
            broken.push(format!(
                "{} ({}/) depends on the host ({}): only the end-to-end tests may",
                p.name, p.dir, host.name
            ));
        }
    }
    // The sweep crate works on run folders only: it reads them through
    // peerlab-run (and configs through lang), never through the runtime,
    // plugin-api or the report, and nothing but the host uses it.
    let sweep = find("sweep");
    for d in &sweep.ours {
        if *d != find("run").name && *d != lang.name {
            broken.push(format!(
                "{} depends on {d}: the sweep crate depends only on peerlab-run and lang among our crates",
                sweep.name
            ));
        }
    }
    for p in packages
        .iter()
        .filter(|p| p.dir != "host" && p.dir != "tests")
    {
        if p.ours.contains(&sweep.name) {
            broken.push(format!(
                "{} ({}/) depends on {}: only the host (and the end-to-end tests) may",
                p.name, p.dir, sweep.name
            ));
        }
    }
    // SLURM's words are pure text: of ours only the sync protocol (the run
    // token's variable), no async runtime, and nothing but the host uses it.
    let slurm = find("slurm");
    for d in slurm.ours.iter().filter(|d| **d != sync.name) {
        broken.push(format!(
            "{} depends on {d}: SLURM's script and parsers know only {} among our crates",
            slurm.name, sync.name
        ));
    }
    if slurm.normal.iter().any(|d| d == "tokio" || d == "libc") {
        broken.push(format!(
            "{} depends on tokio or libc: it renders and parses text, running nothing",
            slurm.name
        ));
    }
    for p in packages
        .iter()
        .filter(|p| p.dir != "host" && p.dir != "tests")
    {
        if p.ours.contains(&slurm.name) {
            broken.push(format!(
                "{} ({}/) depends on {}: only the host's SLURM runner may",
                p.name, p.dir, slurm.name
            ));
        }
    }
    // Verdicts judge the run folder through the modules' hooks: the
    // registry, the plugin api, lang and the run folder's types, nothing
    // that starts or supervises instances.
    let verdicts = find("verdicts");
    let allowed: Vec<&str> = ["lang", "instance", "plugin-api", "run"]
        .iter()
        .map(|d| find(d).name.as_str())
        .collect();
    for d in verdicts
        .ours
        .iter()
        .filter(|d| !allowed.contains(&d.as_str()))
    {
        broken.push(format!(
            "{} depends on {d}: verdicts know only {allowed:?} among our crates",
            verdicts.name
        ));
    }
    if verdicts.normal.iter().any(|d| d == "tokio") {
        broken.push(format!(
            "{} depends on tokio: judging a run folder needs no async runtime",
            verdicts.name
        ));
    }
    // The instance runtime is a pure state machine (the quinn-proto half of
    // a quinn-proto/quinn split): no async runtime, not the host (so not
    // the runner), and the overlay without its tokio UDP driver.
    let instance = find("instance");
    for (d, default, features) in &instance.features {
        if d == "tokio" || d.starts_with("tokio-") || d == "futures" || d == "libc" {
            broken.push(format!(
                "{} depends on {d}: the instance state machine has no async runtime and no system calls (drivers do)",
                instance.name
            ));
        }
        if *d == find("plugins/dispersy").name
            && (*default || features.iter().any(|f| f == "tokio"))
        {
            broken.push(format!(
                "{} uses {d} with its tokio UDP driver: depend on it with default-features = false",
                instance.name
            ));
        }
    }
    // The network simulator is shared by the host's simulated runs and the
    // overlay's tests: it may know the overlay (its SimNet drives bare
    // cores), but not the host, the instance runtime or tokio.
    let netsim = find("netsim");
    for d in &netsim.ours {
        if *d != find("plugins/dispersy").name {
            broken.push(format!(
                "{} depends on {d}: the network simulator knows only the overlay among our crates",
                netsim.name
            ));
        }
    }
    for (d, default, features) in &netsim.features {
        if d == "tokio"
            || (*d == find("plugins/dispersy").name
                && (*default || features.iter().any(|f| f == "tokio")))
        {
            broken.push(format!(
                "{} depends on {d} with tokio: the network simulator has no async runtime",
                netsim.name
            ));
        }
    }
    // Library crates return typed errors: anyhow only in the host crate
    // (ARCHITECTURE.md, Errors) and in the end-to-end tests.
    for p in packages
        .iter()
        .filter(|p| p.dir != "host" && p.dir != "tests")
    {
        if p.normal.iter().any(|d| d == "anyhow") {
            broken.push(format!(
                "{} ({}/) depends on anyhow: library crates return thiserror enums or Diagnostics",
                p.name, p.dir
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "forbidden dependencies (see ARCHITECTURE.md):\n  {}",
        broken.join("\n  ")
    );
}

/// The source lines of `file` that are code (comments dropped), numbered.
fn code_lines(file: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .filter(|(_, l)| !l.starts_with("//"))
        .collect()
}

/// Whether `line` names the module `path` (e.g. `std::fs`), either as a
/// path or inside a grouped `use std::{fs, ...}`.
fn names_module(line: &str, path: &str) -> bool {
    let word_at = |s: &str, at: usize, len: usize| {
        let before = s[..at].chars().next_back();
        let after = s[at + len..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    };
    if line
        .match_indices(path)
        .any(|(at, _)| word_at(line, at, path.len()))
    {
        return true;
    }
    let (parent, leaf) = path.rsplit_once("::").unwrap_or(("", path));
    let group = format!("{parent}::{{");
    match line.find(&group) {
        Some(at) if !parent.is_empty() => {
            let inner = &line[at + group.len()..];
            inner
                .match_indices(leaf)
                .any(|(i, _)| word_at(inner, i, leaf.len()))
        }
        _ => false,
    }
}

/// lang does no I/O: no file system, network, processes or async runtime
/// in its source (parsers take text and an `IncludeLoader` the caller
/// implements).
#[test]
fn lang_does_no_io() {
    let found = lines_matching("lang/src", 5, |line| {
        ["std::fs", "std::net", "std::process", "tokio"]
            .iter()
            .find(|m| names_module(line, m))
            .map(|m| m.to_string())
    });
    assert!(
        found.is_empty(),
        "lang must do no I/O (ARCHITECTURE.md, lang's invariant); these lines use I/O:\n  {}",
        found.join("\n  ")
    );
}

/// Every code line of the `.rs` files under `dir` (relative to the
/// workspace root, which must hold at least `min_files` of them) for which
/// `what` names a problem, as `file:line: problem: line`.
fn lines_matching(
    dir: &str,
    min_files: usize,
    what: impl Fn(&str) -> Option<String>,
) -> Vec<String> {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join(dir), &mut files);
    assert!(files.len() >= min_files, "{dir}: {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        for (n, line) in code_lines(file) {
            if let Some(problem) = what(&line) {
                found.push(format!("{rel}:{n}: {problem}: {line}"));
            }
        }
    }
    found
}

/// The runners, `peerlab bench` and the experiment planner return typed
/// errors (`thiserror` enums: what, where, what to do); `anyhow` is the
/// subcommands' edge (`host/src/cmd/`, `cli.rs`), where errors are only
/// passed up and printed.
#[test]
fn runners_and_bench_return_typed_errors() {
    let mut found = Vec::new();
    for (dir, min_files) in [
        ("host/src/runner", 10),
        ("host/src/bench", 3),
        ("host/src/experiment", 3),
    ] {
        found.extend(lines_matching(dir, min_files, |line| {
            names_module(line, "anyhow").then(|| "anyhow".to_string())
        }));
    }
    assert!(
        found.is_empty(),
        "runners, bench and the planner return thiserror enums, anyhow is for host/src/cmd/ (ARCHITECTURE.md, Errors):\n  {}",
        found.join("\n  ")
    );
}

/// Files stay under ~800 lines (one job per file) in the host, the
/// instance state machine and its drivers, and the loader; a longer one says why in its opening
/// `//!` comment, with a line that starts `//! Long because`.
#[test]
fn files_stay_short_or_say_why() {
    const LIMIT: usize = 800;
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["host", "instance", "runtime", "loader"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() >= 40, "{files:?}");
    let mut long = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines = text.lines().count();
        let says_why = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .any(|l| l.starts_with("//! Long because"));
        if lines > LIMIT && !says_why {
            let rel = file.strip_prefix(&root).unwrap_or(file);
            long.push(format!("{}: {lines} lines", rel.display()));
        }
    }
    assert!(
        long.is_empty(),
        "these files are over {LIMIT} lines without a `//! Long because …` line saying why (split them by job):\n  {}",
        long.join("\n  ")
    );
}

/// The instance runtime's drivers (`runtime/`, peerlab-runtime) do not
/// import the runner: runners start instances, never the other way. The
/// crate cannot name the host (the dependency rule keeps the host out of
/// every crate), and it knows of ours only what an instance needs.
#[test]
fn runtime_does_not_import_the_runner() {
    let packages = workspace_packages();
    let find = |dir: &str| {
        packages
            .iter()
            .find(|p| p.dir == dir)
            .unwrap_or_else(|| panic!("no crate in {dir}/"))
    };
    let runtime = find("runtime");
    let allowed: Vec<&str> = [
        "lang",
        "instance",
        "netsim",
        "run",
        "sync",
        "plugins/dispersy",
    ]
    .iter()
    .map(|d| find(d).name.as_str())
    .collect();
    let broken: Vec<String> = runtime
        .ours
        .iter()
        .filter(|d| !allowed.contains(&d.as_str()))
        .map(|d| {
            format!(
                "{} depends on {d}: the instance runtime knows only {allowed:?} among our crates (runners start instances, never the other way)",
                runtime.name
            )
        })
        .collect();
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    // The host's old path stays gone: the drivers live in one place.
    assert!(!workspace_root().join("host/src/runtime").exists());
}

/// The instance state machine (the `instance/` crate, peerlab-instance)
/// touches no socket or file, reads no clock and sleeps not: time and
/// datagrams are its arguments, its drivers (`runtime/src/process.rs`,
/// `runtime/src/sim.rs`) carry them and store its records.
#[test]
fn the_instance_state_machine_does_no_io_and_reads_no_clock() {
    let found = lines_matching("instance/src", 8, |line| {
        let module = [
            "std::net::UdpSocket",
            "std::net::TcpStream",
            "std::net::TcpListener",
            "tokio",
            "std::thread",
            "std::fs",
            "std::process",
            "peerlab::runner",
        ]
        .iter()
        .find(|m| names_module(line, m));
        let call = ["Instant::now", "SystemTime", "sleep("]
            .iter()
            .find(|c| line.contains(*c));
        module.or(call).map(|w| w.to_string())
    });
    assert!(
        found.is_empty(),
        "the instance state machine must do no I/O and read no clock (ARCHITECTURE.md, runtime/):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn names_module_sees_paths_and_groups() {
    assert!(names_module("use std::fs;", "std::fs"));
    assert!(names_module("let f = std::fs::read(p)?;", "std::fs"));
    assert!(names_module("use std::{fs, io};", "std::fs"));
    assert!(names_module("use std::{io, net::TcpStream};", "std::net"));
    assert!(names_module("tokio::spawn(x);", "tokio"));
    assert!(!names_module("use std::fsx;", "std::fs"));
    assert!(!names_module("use std::{fmt, io};", "std::fs"));
    assert!(!names_module("let tokio_like = 1;", "tokio"));
    assert!(names_module(
        "use crate::{runner::folder, util};",
        "crate::runner"
    ));
}

/// The host names no plugin's protocol: `peerlab bench` reads the workload
/// a plugin declares (plugin-api 1.5, `#[module(bench(..))]`) and measures
/// it through the declared metrics, so none of the benaloh plugin's
/// commands, messages, config keys, annotations or counters may appear in
/// `host/src` (code, comments and help texts alike). Each name is checked
/// to still be the plugin's, so the list cannot go stale unnoticed.
#[test]
fn the_host_names_no_plugin_protocol() {
    const BENALOH_NAMES: [&str; 14] = [
        "share_local",
        "share_subset_sum",
        "auto_share",
        "print_local_value",
        "print_total_sum",
        "broadcast_fanout",
        "local-share",
        "broadcast-share",
        "benaloh: total known",
        "BenalohCommunity",
        "local_shares_out",
        "broadcast_shares_out",
        "subset sum",
        "TOTAL_KNOWN",
    ];
    let root = workspace_root();
    let plugin = std::fs::read_to_string(root.join("plugins/benaloh/src/lib.rs"))
        .expect("plugins/benaloh/src/lib.rs");
    for name in BENALOH_NAMES {
        assert!(
            plugin.contains(name),
            "`{name}` is no longer the benaloh plugin's: update this list"
        );
    }
    let mut files = Vec::new();
    rust_files(&root.join("host/src"), &mut files);
    assert!(files.len() >= 40, "{files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        for (n, line) in text.lines().enumerate() {
            for name in BENALOH_NAMES.iter().filter(|name| line.contains(*name)) {
                found.push(format!("{rel}:{}: `{name}`: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the host names the benaloh plugin's protocol; read it from the plugin's declarations \
         instead (its bench(..) workload, its metrics):\n  {}",
        found.join("\n  ")
    );
}
