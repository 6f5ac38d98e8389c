//! The Gumby corpus (`tests/data/gumby-corpus`, a copy of `../shared/gumby-scenarios`): every `.scenario` and
//! `.conf` goes through the parsers. Scenarios are parsed on their own (the
//! default experiment, modules unresolved), configs are typed with an empty
//! environment. The files that are genuinely malformed produce exactly the
//! errors below (each is explained in docs/compat.md); every other file
//! parses without error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use expect_test::expect;
use peerlab_lang::{Experiment, IncludeLoader, Severity, parse_config, parse_scenario};

fn corpus_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/gumby-corpus");
    assert!(
        root.join("MANIFEST.tsv").is_file(),
        "the Gumby corpus is missing at {}: it is part of the repository (tests/data/gumby-corpus)",
        root.display()
    );
    root
}

/// Reads includes relative to the corpus root (file names in diagnostics
/// stay relative, so the snapshot does not depend on where the corpus is).
struct CorpusLoader {
    root: PathBuf,
    experiment_dir: PathBuf,
}

impl IncludeLoader for CorpusLoader {
    fn read(&mut self, path: &Path, _limit: u64) -> Result<Option<Vec<u8>>, String> {
        match std::fs::read(self.root.join(path)) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn experiment_dir(&self) -> Option<&Path> {
        Some(&self.experiment_dir)
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read corpus dir") {
        let p = entry.expect("dir entry").path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn every_corpus_file_parses_or_fails_exactly_as_documented() {
    let root = corpus_root();
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let env = BTreeMap::new();
    let (mut scenarios, mut configs, mut commands) = (0, 0, 0);
    let mut errors = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .expect("under root")
            .to_string_lossy()
            .into_owned();
        let diags = if rel.ends_with(".scenario") {
            scenarios += 1;
            let text = std::fs::read_to_string(path).expect("read scenario");
            let exp = Experiment::for_scenario(&rel);
            let mut loader = CorpusLoader {
                root: root.clone(),
                experiment_dir: Path::new(&rel)
                    .parent()
                    .unwrap_or(Path::new(""))
                    .to_path_buf(),
            };
            let (s, d) = parse_scenario(&rel, &text, &mut loader, &exp.scenario_vars(&env));
            commands += s.commands.len();
            d
        } else if rel.ends_with(".conf") {
            configs += 1;
            let text = std::fs::read_to_string(path).expect("read conf");
            let (raw, mut d) = parse_config(&rel, &text);
            d.extend(Experiment::from_config(&raw, &env).1);
            d
        } else {
            continue;
        };
        errors.extend(
            diags
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| d.render_short()),
        );
    }
    assert_eq!(
        (scenarios, configs),
        (65, 78),
        "the corpus changed: update this test and docs/compat.md"
    );
    assert_eq!(
        commands, 26_889,
        "every command line of the corpus is parsed (counted independently with grep: 26844 command lines, minus 1 `@! set`, plus the lines that includes inline)"
    );
    expect![[r#"
        Tribler-gumby-devel/experiments/tunnels/anondownload-1-hop.scenario:1:10: error[include-not-found]: included file `hidden_services_common.scenario` not found (help: looked in `Tribler-gumby-devel/experiments/tunnels/hidden_services_common.scenario`; includes are resolved relative to the including file, then the experiment directory)
        qstokkink-gumby-workshop_code/experiments/dispersy/discovery.conf:27:20: error[bad-value]: in `das4_node_amount`: unknown variable `$NODES` (help: set `NODES` in the environment, or override the key with PEERLAB_DAS4_NODE_AMOUNT)
        qstokkink-gumby-workshop_code/experiments/dispersy/discovery.conf:30:21: error[bad-value]: in `das4_node_timeout`: unknown variable `$DURATION` (help: set `DURATION` in the environment, or override the key with PEERLAB_DAS4_NODE_TIMEOUT)
        qstokkink-gumby-workshop_code/experiments/dispersy/discovery.conf:33:25: error[bad-value]: in `das4_instances_to_run`: unknown variable `$PEERS` (help: set `PEERS` in the environment, or override the key with PEERLAB_DAS4_INSTANCES_TO_RUN)
        qstokkink-gumby-workshop_code/experiments/dispersy/hiddenservices-candidates.scenario:7:16: error[bad-directive]: `&module` takes one module name, found 3 words (help: write one `&module` line per module; quote a name that contains spaces)
        qstokkink-gumby-workshop_code/experiments/dispersy/hiddenservices-candidates.scenario:8:16: error[bad-directive]: `&module` takes one module name, found 3 words (help: write one `&module` line per module; quote a name that contains spaces)
        qstokkink-gumby-workshop_code/experiments/dispersy/tunnel_das4.conf:27:20: error[bad-value]: in `das4_node_amount`: unknown variable `$NODES` (help: set `NODES` in the environment, or override the key with PEERLAB_DAS4_NODE_AMOUNT)
        qstokkink-gumby-workshop_code/experiments/dispersy/tunnel_das4.conf:30:21: error[bad-value]: in `das4_node_timeout`: unknown variable `$DURATION` (help: set `DURATION` in the environment, or override the key with PEERLAB_DAS4_NODE_TIMEOUT)
        qstokkink-gumby-workshop_code/experiments/dispersy/tunnel_das4.conf:33:25: error[bad-value]: in `das4_instances_to_run`: unknown variable `$PEERS` (help: set `PEERS` in the environment, or override the key with PEERLAB_DAS4_INSTANCES_TO_RUN)
    "#]]
    .assert_eq(&(errors.join("\n") + "\n"));
}

#[test]
fn the_das4_confs_work_once_their_variables_are_set() {
    let root = corpus_root();
    let env: BTreeMap<String, String> = [("NODES", "2"), ("DURATION", "300"), ("PEERS", "10")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for f in ["discovery.conf", "tunnel_das4.conf"] {
        let rel = format!("qstokkink-gumby-workshop_code/experiments/dispersy/{f}");
        let text = std::fs::read_to_string(root.join(&rel)).expect("read conf");
        let (raw, d) = parse_config(&rel, &text);
        assert!(d.is_empty());
        let (exp, d) = Experiment::from_config(&raw, &env);
        assert!(!d.iter().any(|d| d.severity == Severity::Error), "{d:?}");
        assert_eq!(
            (
                exp.nodes,
                exp.instances,
                exp.node_timeout.map(|t| t.as_secs())
            ),
            (2, 10, Some(300))
        );
    }
}

#[test]
fn the_variable_scenario_of_the_corpus_expands() {
    // dht_experiment.local.scenario defines `$val` with `@! set` and uses it
    // in 100+ lines: all of them get the value.
    let root = corpus_root();
    let rel = "Tribler-gumby-devel/experiments/dht/dht_experiment.local.scenario";
    let text = std::fs::read_to_string(root.join(rel)).expect("read");
    let mut loader = CorpusLoader {
        root,
        experiment_dir: PathBuf::new(),
    };
    let (s, d) = parse_scenario(rel, &text, &mut loader, &peerlab_lang::Vars::new());
    assert!(d.is_empty(), "{d:?}");
    let stores: Vec<_> = s
        .commands
        .iter()
        .filter(|c| c.callback == "store")
        .collect();
    assert!(stores.len() > 100);
    assert!(stores.iter().all(|c| c.args[1].value == "value_to_store"));
}
