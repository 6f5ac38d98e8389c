//! Every file of the Gumby corpus (`tests/data/gumby-corpus`, a copy of `../shared/gumby-scenarios`) through
//! `peerlab check --syntax-only`, in one run: configs pull in their
//! scenarios, module names stay unresolved. The genuinely malformed files
//! (docs/compat.md says why, file by file) fail with exactly these errors;
//! every other file is `ok`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus_root() -> PathBuf {
    let root = peerlab_e2e::workspace_root().join("tests/data/gumby-corpus");
    assert!(
        root.join("MANIFEST.tsv").is_file(),
        "the Gumby corpus is missing at {}: it is part of the repository (tests/data/gumby-corpus)",
        root.display()
    );
    root
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read corpus dir") {
        let p = entry.expect("dir entry").path();
        if p.is_dir() {
            walk(&p, root, out);
        } else if p
            .extension()
            .is_some_and(|e| e == "conf" || e == "scenario")
        {
            out.push(
                p.strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

/// Every error `peerlab check --syntax-only` reports on the corpus, in the
/// order printed (a scenario shared by two configs is reported under each).
const EXPECTED_ERRORS: &str = "\
Tribler-gumby-devel/experiments/algorand/algorand_experiment.conf:24:17: error[scenario-not-found]: scenario file `algorand_simple.scenario` not found (help: looked for `Tribler-gumby-devel/experiments/algorand/algorand_simple.scenario`; scenario_file is relative to the config file's directory)
Tribler-gumby-devel/experiments/bitshares/bitshares_experiment_simple.scenario:6:22: error[peer-out-of-range]: peer selector `{2-1000}` selects no instance: the experiment runs only 1 instance (help: instance ids go from 1 to the number of instances; raise the instance count or change the selector)
Tribler-gumby-devel/experiments/burrow/burrow_experiment.conf:26:17: error[scenario-not-found]: scenario file `burrow_energy_trading.scenario` not found (help: looked for `Tribler-gumby-devel/experiments/burrow/burrow_energy_trading.scenario`; scenario_file is relative to the config file's directory)
Tribler-gumby-devel/experiments/burrow/burrow_surfnet_experiment.conf:26:17: error[scenario-not-found]: scenario file `transfers_short.scenario` not found (help: looked for `Tribler-gumby-devel/experiments/burrow/transfers_short.scenario`; scenario_file is relative to the config file's directory)
Tribler-gumby-devel/experiments/hyperledger/hyperledger_experiment.conf:24:17: error[scenario-not-found]: scenario file `hyperledger_simple.scenario` not found (help: looked for `Tribler-gumby-devel/experiments/hyperledger/hyperledger_simple.scenario`; scenario_file is relative to the config file's directory)
Tribler-gumby-devel/experiments/libra/libra_simple.scenario:9:26: error[peer-out-of-range]: peer selector `{2-500}` selects no instance: the experiment runs only 1 instance (help: instance ids go from 1 to the number of instances; raise the instance count or change the selector)
Tribler-gumby-devel/experiments/market/market_experiment.conf:26:17: error[scenario-not-found]: scenario file `market_experiment_100.scenario` not found (help: looked for `Tribler-gumby-devel/experiments/market/market_experiment_100.scenario`; scenario_file is relative to the config file's directory)
Tribler-gumby-devel/experiments/stellar/stellar_simple.scenario:20:22: error[peer-out-of-range]: peer selector `{2}` selects no instance: the experiment runs only 1 instance (help: instance ids go from 1 to the number of instances; raise the instance count or change the selector)
Tribler-gumby-devel/experiments/tunnels/anondownload-1-hop.scenario:1:10: error[include-not-found]: included file `hidden_services_common.scenario` not found (help: looked in `Tribler-gumby-devel/experiments/tunnels/hidden_services_common.scenario`; includes are resolved relative to the including file, then the experiment directory)
Tribler-gumby-devel/experiments/tunnels/anondownload-1-hop.scenario:1:10: error[include-not-found]: included file `hidden_services_common.scenario` not found (help: looked in `Tribler-gumby-devel/experiments/tunnels/hidden_services_common.scenario`; includes are resolved relative to the including file, then the experiment directory)
Tribler-gumby-devel/experiments/tunnels/anondownload-1-hop.scenario:4:27: error[peer-out-of-range]: peer selector `{2}` selects no instance: the experiment runs only 1 instance (help: instance ids go from 1 to the number of instances; raise the instance count or change the selector)
Tribler-gumby-devel/experiments/tunnels/anondownload-1-hop.scenario:6:35: error[peer-out-of-range]: peer selector `{4}` selects no instance: the experiment runs only 1 instance (help: instance ids go from 1 to the number of instances; raise the instance count or change the selector)
Tribler-gumby-devel/experiments/tunnels/anondownload-1-hop.scenario:8:23: error[peer-out-of-range]: peer selector `{5}` selects no instance: the experiment runs only 1 instance (help: instance ids go from 1 to the number of instances; raise the instance count or change the selector)
Tribler-gumby-devel/experiments/tunnels/anondownload-1-hop.scenario:9:31: error[peer-out-of-range]: peer selector `{5}` selects no instance: the experiment runs only 1 instance (help: instance ids go from 1 to the number of instances; raise the instance count or change the selector)
qstokkink-gumby-workshop_code/experiments/dispersy/discovery.conf:27:20: error[bad-value]: in `das4_node_amount`: unknown variable `$NODES` (help: set `NODES` in the environment, or override the key with PEERLAB_DAS4_NODE_AMOUNT)
qstokkink-gumby-workshop_code/experiments/dispersy/discovery.conf:30:21: error[bad-value]: in `das4_node_timeout`: unknown variable `$DURATION` (help: set `DURATION` in the environment, or override the key with PEERLAB_DAS4_NODE_TIMEOUT)
qstokkink-gumby-workshop_code/experiments/dispersy/discovery.conf:33:25: error[bad-value]: in `das4_instances_to_run`: unknown variable `$PEERS` (help: set `PEERS` in the environment, or override the key with PEERLAB_DAS4_INSTANCES_TO_RUN)
qstokkink-gumby-workshop_code/experiments/dispersy/hiddenservices-candidates.scenario:7:16: error[bad-directive]: `&module` takes one module name, found 3 words (help: write one `&module` line per module; quote a name that contains spaces)
qstokkink-gumby-workshop_code/experiments/dispersy/hiddenservices-candidates.scenario:8:16: error[bad-directive]: `&module` takes one module name, found 3 words (help: write one `&module` line per module; quote a name that contains spaces)
qstokkink-gumby-workshop_code/experiments/dispersy/tunnel_das4.conf:27:20: error[bad-value]: in `das4_node_amount`: unknown variable `$NODES` (help: set `NODES` in the environment, or override the key with PEERLAB_DAS4_NODE_AMOUNT)
qstokkink-gumby-workshop_code/experiments/dispersy/tunnel_das4.conf:30:21: error[bad-value]: in `das4_node_timeout`: unknown variable `$DURATION` (help: set `DURATION` in the environment, or override the key with PEERLAB_DAS4_NODE_TIMEOUT)
qstokkink-gumby-workshop_code/experiments/dispersy/tunnel_das4.conf:33:25: error[bad-value]: in `das4_instances_to_run`: unknown variable `$PEERS` (help: set `PEERS` in the environment, or override the key with PEERLAB_DAS4_INSTANCES_TO_RUN)
";

/// The files whose check fails (the others must all be `ok`).
const EXPECTED_FAILED: &[&str] = &[
    "Tribler-gumby-devel/experiments/algorand/algorand_experiment.conf",
    "Tribler-gumby-devel/experiments/bitshares/bitshares_experiment.conf",
    "Tribler-gumby-devel/experiments/burrow/burrow_experiment.conf",
    "Tribler-gumby-devel/experiments/burrow/burrow_surfnet_experiment.conf",
    "Tribler-gumby-devel/experiments/hyperledger/hyperledger_experiment.conf",
    "Tribler-gumby-devel/experiments/libra/libra_experiment.conf",
    "Tribler-gumby-devel/experiments/market/market_experiment.conf",
    "Tribler-gumby-devel/experiments/stellar/stellar_experiment.conf",
    "Tribler-gumby-devel/experiments/tunnels/anondownload-1-hop.scenario",
    "Tribler-gumby-devel/experiments/tunnels/tunnel_das4.conf",
    "qstokkink-gumby-workshop_code/experiments/dispersy/discovery.conf",
    "qstokkink-gumby-workshop_code/experiments/dispersy/hiddenservices-candidates.scenario",
    "qstokkink-gumby-workshop_code/experiments/dispersy/tunnel_das4.conf",
];

#[test]
fn corpus_checks_with_exactly_the_documented_failures() {
    let root = corpus_root();
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    assert_eq!(
        files.len(),
        143,
        "the corpus changed: update this test and docs/compat.md"
    );

    let out = Command::new(peerlab_e2e::peerlab_bin())
        .current_dir(&root)
        .env_remove("PEERLAB_PLUGIN_PATH")
        .args(["check", "--syntax-only", "--format", "short"])
        .args(&files)
        .output()
        .expect("run peerlab check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "errors exit with 1\n{stdout}");

    let errors: String = stdout
        .lines()
        .filter(|l| l.contains(": error["))
        .map(|l| format!("{l}\n"))
        .collect();
    if errors != EXPECTED_ERRORS {
        panic!("errors changed; expected:\n{EXPECTED_ERRORS}\nactual:\n{errors}");
    }
    let failed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("FAILED: "))
        .map(|l| l.split(" (").next().unwrap_or(l))
        .collect();
    assert_eq!(failed, EXPECTED_FAILED);
    let ok = stdout.lines().filter(|l| l.starts_with("ok: ")).count();
    assert_eq!(ok, files.len() - EXPECTED_FAILED.len(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "checked 143 files: {} errors",
            EXPECTED_ERRORS.lines().count()
        )),
        "{stdout}"
    );
}
