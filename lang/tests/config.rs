//! Data-driven tests of the experiment config: `check_raw` shows what the
//! ConfigObj-style syntax layer read, `check` what the typed [`Experiment`]
//! became (after environment overrides) plus every diagnostic.

use std::collections::BTreeMap;
use std::time::Duration;

use expect_test::{Expect, expect};
use peerlab_lang::{Experiment, MemoryLoader, Port, RawValue, Vars, parse_config, parse_scenario};

fn check_raw(text: &str, expect: Expect) {
    let (raw, diags) = parse_config("t.conf", text);
    let mut out = String::new();
    let mut show = |prefix: &str, entries: &[peerlab_lang::Entry]| {
        for e in entries {
            let v = match &e.value {
                RawValue::Str(s) => format!("{s:?}"),
                RawValue::List(l) => format!("{l:?}"),
            };
            out.push_str(&format!(
                "{prefix}{} = {v} @{}:{}-{}:{}\n",
                e.key, e.key_loc.line, e.key_loc.column, e.value_loc.line, e.value_loc.column
            ));
        }
    };
    show("", &raw.entries);
    for s in &raw.sections {
        show(&format!("[{}]{} ", s.name, s.depth), &s.entries);
    }
    for d in &diags {
        out.push_str(&d.render_short());
        out.push('\n');
    }
    expect.assert_eq(&out);
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn check_env(text: &str, env_pairs: &[(&str, &str)], expect: Expect) {
    let (raw, mut diags) = parse_config("exp/t.conf", text);
    let (exp, more) = Experiment::from_config(&raw, &env(env_pairs));
    diags.extend(more);
    let mut out = format!(
        "name={} scenario={:?} instances={} nodes={} node_timeout={:?} experiment_time={:?} per_process={} runner={:?}\n\
         sync_host={:?} sync_port={:?} tracker_port={:?} start_delay={:?} seed={:?} time_scale={:?} network={:?}\n\
         slurm={:?} output_dir={}\n",
        exp.name,
        exp.scenario_file,
        exp.instances,
        exp.nodes,
        exp.node_timeout,
        exp.experiment_time,
        exp.instances_per_process,
        exp.runner,
        exp.sync_host,
        exp.sync_port,
        exp.tracker_port,
        exp.sync_experiment_start_delay,
        exp.seed,
        exp.time_scale,
        exp.network,
        exp.slurm,
        exp.output_dir,
    );
    for d in &diags {
        out.push_str(&d.render_short());
        out.push('\n');
    }
    expect.assert_eq(&out);
}

fn check(text: &str, expect: Expect) {
    check_env(text, &[], expect);
}

#[test]
fn values_quotes_lists_comments() {
    check_raw(
        concat!(
            "# comment\n",
            "  # indented comment\n",
            "bare = some value  # trailing comment\n",
            "single = 'it''s'\n",
            "double = \"a # not a comment\"\n",
            "glued = \"output\"# comment right after\n",
            "empty =\n",
            "empty_quoted = ''\n",
            "list = a, b , c\n",
            "one_item = 'x',\n",
            "no_items = ,\n",
            "quoted_list = \"a b\", 'c'\n",
            "cmd = process_guard.py -c \"(yes > /dev/null ; wait)\" -n $N\n",
            "spaced_key  =  v\n",
            "nospace=v\n",
            "\"quoted key\" = v\n",
            "    indented = v\n",
        ),
        expect![[r#"
            bare = "some value" @3:1-3:8
            double = "a # not a comment" @5:1-5:10
            glued = "output" @6:1-6:9
            empty = "" @7:1-7:8
            empty_quoted = "" @8:1-8:16
            list = ["a", "b", "c"] @9:1-9:8
            one_item = ["x"] @10:1-10:12
            no_items = [] @11:1-11:12
            quoted_list = ["a b", "c"] @12:1-12:15
            cmd = "process_guard.py -c \"(yes > /dev/null ; wait)\" -n $N" @13:1-13:7
            spaced_key = "v" @14:1-14:16
            nospace = "v" @15:1-15:9
            quoted key = "v" @16:1-16:16
            indented = "v" @17:5-17:16
            t.conf:4:14: error[config-syntax]: unexpected text after a quoted value (help: quote the whole value, separate list items with `,`, or start a comment with `#`)
        "#]],
    );
}

#[test]
fn triple_quoted_values() {
    check_raw(
        "a = \"\"\"one line\"\"\"\nb = '''first\nsecond\n  third'''  # c\nc = 1\nd = \"\"\"never closed\ne = 2\n",
        expect![[r#"
            a = "one line" @1:1-1:5
            b = "first\nsecond\n  third" @2:1-2:5
            c = "1" @5:1-5:5
            t.conf:6:5: error[config-syntax]: unclosed """ value (help: close it with `"""`)
        "#]],
    );
}

#[test]
fn sections() {
    check_raw(
        "top = 1\n[loggers]\nkeys=root\n[[nested]]\nx = 2\n[handler_default]  # c\nargs=(sys.stderr,)\nformat=%(asctime)s %(message)s\n",
        expect![[r#"
            top = "1" @1:1-1:7
            [loggers]1 keys = "root" @3:1-3:6
            [nested]2 x = "2" @5:1-5:5
            [handler_default]1 args = ["(sys.stderr", ")"] @7:1-7:6
            [handler_default]1 format = "%(asctime)s %(message)s" @8:1-8:8
        "#]],
    );
}

#[test]
fn syntax_errors_all_reported() {
    check_raw(
        concat!(
            "no equals sign\n",
            "= value\n",
            "key = \"unclosed\n",
            "key2 = 'a' 'b'\n",
            "dup = 1\n",
            "dup = 2\n",
            "list = a,,b\n",
            "[unclosed\n",
            "[[mismatch]\n",
            "[]\n",
            "[sec] junk\n",
            "[s]\n",
            "[s]\n",
            "\"open key = 1\n",
            "\"k\" v\n",
            "ok = fine\n",
        ),
        expect![[r#"
            dup = "1" @5:1-5:7
            [s]1 ok = "fine" @16:1-16:6
            t.conf:1:1: error[config-syntax]: expected `key = value`, found `no equals sign` (help: config lines are `key = value`, `[section]` or `# comment`)
            t.conf:2:1: error[config-syntax]: missing key before `=` (help: config lines are `key = value`)
            t.conf:3:7: error[config-syntax]: unclosed quote in value (help: add the closing `"`)
            t.conf:4:12: error[config-syntax]: unexpected text after a quoted value (help: quote the whole value, separate list items with `,`, or start a comment with `#`)
            t.conf:6:1: error[duplicate-key]: key `dup` is set twice (first at line 5) (help: remove one of the two lines)
            t.conf:7:10: error[config-syntax]: empty item in a list value (help: remove the extra comma)
            t.conf:8:1: error[config-syntax]: unclosed section header (help: write `[name]`)
            t.conf:9:1: error[config-syntax]: section header opens with 2 `[` but closes with 1 `]` (help: write `[[name]]`)
            t.conf:10:1: error[config-syntax]: empty section name (help: write `[name]`)
            t.conf:11:7: error[config-syntax]: unexpected text after the section header (help: only a `# comment` may follow `[section]`)
            t.conf:13:1: error[duplicate-section]: section `[s]` appears twice (first at line 12)
            t.conf:14:1: error[config-syntax]: unclosed quote in key (help: add the closing `"`)
            t.conf:15:5: error[config-syntax]: expected `=` after the key (help: config lines are `key = value`)
        "#]],
    );
}

#[test]
fn tutorial_das5_conf() {
    check(
        include_str!("../../scenarios/benaloh/benaloh_das5.conf"),
        expect![[r#"
            name=benaloh scenario=Some("benaloh.scenario") instances=5 nodes=5 node_timeout=Some(165s) experiment_time=None per_process=1 runner=Local
            sync_host=None sync_port=Unique tracker_port=Unique start_delay=1s seed=None time_scale=None network=Real
            slurm=Slurm { partition: None, sbatch_options: [], immediate: false } output_dir=output
            exp/t.conf:5:1: note[local-nodes]: `das4_node_amount` asks for 5 machines, but the local runner runs every instance on this one (help: set `runner = slurm` to spread the instances over a cluster)
            exp/t.conf:9:1: note[gumby-key]: `local_setup_cmd` is a Gumby helper setting, ignored: no setup script runs: peerlab is one binary and needs no build or virtualenv step
            exp/t.conf:10:1: note[gumby-key]: `local_instance_cmd` is a Gumby helper setting, ignored: peerlab starts the instances itself (local runner: processes here; slurm runner: srun)
            exp/t.conf:11:1: note[gumby-key]: `das4_node_command` is a Gumby helper setting, ignored: peerlab runs its own instance command on every node
            exp/t.conf:14:1: note[gumby-key]: `experiment_server_cmd` is a Gumby helper setting, ignored: peerlab runs its built-in sync server
            exp/t.conf:17:1: note[gumby-key]: `use_local_venv` is a Gumby helper setting, ignored: peerlab is one binary; there is no Python virtualenv
            exp/t.conf:18:1: note[gumby-key]: `with_systemtap` is a Gumby helper setting, ignored: systemtap probes are not supported; CPU and memory are sampled from procfs
        "#]],
    );
}

#[test]
fn tutorial_local_conf() {
    check(
        include_str!("../../scenarios/benaloh/benaloh.conf"),
        expect![[r#"
            name=benaloh scenario=Some("benaloh.scenario") instances=5 nodes=1 node_timeout=None experiment_time=Some(165s) per_process=1 runner=Local
            sync_host=Some("127.0.0.1") sync_port=Unique tracker_port=Unique start_delay=1s seed=None time_scale=None network=Real
            slurm=Slurm { partition: None, sbatch_options: [], immediate: false } output_dir=output
            exp/t.conf:7:1: note[gumby-key]: `local_instance_cmd` is a Gumby helper setting, ignored: peerlab starts the instances itself (local runner: processes here; slurm runner: srun)
            exp/t.conf:14:1: note[gumby-key]: `experiment_server_cmd` is a Gumby helper setting, ignored: peerlab runs its built-in sync server
            exp/t.conf:18:1: note[gumby-key]: `use_local_venv` is a Gumby helper setting, ignored: peerlab is one binary; there is no Python virtualenv
        "#]],
    );
}

#[test]
fn every_typed_key() {
    check(
        concat!(
            "experiment_name = demo\n",
            "scenario_file = demo.scenario\n",
            "instances_to_run = 20\n",
            "node_amount = 4\n",
            "node_timeout = 2m\n",
            "experiment_time = 1:30\n",
            "instances_per_process = 5\n",
            "runner = SLURM\n",
            "sync_host = 10.0.0.1\n",
            "sync_port = 12345\n",
            "tracker_port = __unique_port__\n",
            "sync_experiment_start_delay = 500ms\n",
            "seed = 42\n",
            "time_scale = 2.5\n",
            "network = simulated\n",
            "slurm_partition = defq\n",
            "slurm_sbatch_options = --time=00:15:00, --constraint=cpunode\n",
            "slurm_immediate = Yes\n",
            "output_dir = /tmp/runs\n",
        ),
        expect![[r#"
            name=demo scenario=Some("demo.scenario") instances=20 nodes=4 node_timeout=Some(120s) experiment_time=Some(90s) per_process=5 runner=Slurm
            sync_host=Some("10.0.0.1") sync_port=Fixed(12345) tracker_port=Unique start_delay=500ms seed=Some(42) time_scale=Some(2.5) network=Simulated
            slurm=Slurm { partition: Some("defq"), sbatch_options: ["--time=00:15:00", "--constraint=cpunode"], immediate: true } output_dir=/tmp/runs
        "#]],
    );
}

#[test]
fn defaults_and_missing_name() {
    check(
        "",
        expect![[r#"
            name=t scenario=None instances=1 nodes=1 node_timeout=None experiment_time=None per_process=1 runner=Local
            sync_host=None sync_port=Unique tracker_port=Unique start_delay=1s seed=None time_scale=None network=Real
            slurm=Slurm { partition: None, sbatch_options: [], immediate: false } output_dir=output
            exp/t.conf:1:1: note[default-name]: no `experiment_name`: the experiment is called `t`
        "#]],
    );
}

#[test]
fn bad_values_are_errors_at_the_value() {
    check(
        concat!(
            "experiment_name = ''\n",
            "instances_to_run = many\n",
            "node_amount = 0\n",
            "node_timeout = soon\n",
            "experiment_time = -5\n",
            "instances_per_process = 1.5\n",
            "runner = cluster\n",
            "sync_port = 70000\n",
            "tracker_port = 0\n",
            "sync_experiment_start_delay = 1x\n",
            "seed = -1\n",
            "time_scale = 0\n",
            "network = virtual\n",
            "slurm_immediate = maybe\n",
            "output_dir = ''\n",
            "scenario_file = a, b\n",
        ),
        expect![[r#"
            name=t scenario=None instances=1 nodes=1 node_timeout=None experiment_time=None per_process=1 runner=Local
            sync_host=None sync_port=Unique tracker_port=Unique start_delay=1s seed=None time_scale=None network=Real
            slurm=Slurm { partition: None, sbatch_options: [], immediate: false } output_dir=output
            exp/t.conf:1:19: error[bad-value]: `experiment_name` is empty (help: name the experiment; it names the run folder)
            exp/t.conf:2:20: error[bad-value]: bad value for `instances_to_run`: expected an integer, found `many`
            exp/t.conf:3:15: error[bad-value]: bad value for `node_amount`: expected a whole number from 1, found `0`
            exp/t.conf:4:16: error[bad-value]: bad value for `node_timeout`: expected a duration like `90`, `1.5s`, `50ms`, `2m`, `1h` or `1:30`, found `soon`
            exp/t.conf:5:19: error[bad-value]: bad value for `experiment_time`: expected a duration like `90`, `1.5s`, `50ms`, `2m`, `1h` or `1:30`, found `-5`
            exp/t.conf:6:25: error[bad-value]: bad value for `instances_per_process`: expected an integer, found `1.5`
            exp/t.conf:7:10: error[bad-value]: bad value for `runner`: expected `local` or `slurm`, found `cluster`
            exp/t.conf:8:13: error[bad-value]: bad value for `sync_port`: expected a port from 1 to 65535 or `__unique_port__`, found `70000`
            exp/t.conf:9:16: error[bad-value]: bad value for `tracker_port`: expected a port from 1 to 65535 or `__unique_port__`, found `0`
            exp/t.conf:10:31: error[bad-value]: bad value for `sync_experiment_start_delay`: expected a duration like `90`, `1.5s`, `50ms`, `2m`, `1h` or `1:30`, found `1x`
            exp/t.conf:11:8: error[bad-value]: bad value for `seed`: expected an integer, found `-1`
            exp/t.conf:12:14: error[bad-value]: bad value for `time_scale`: expected a number above 0, found `0`
            exp/t.conf:13:11: error[bad-value]: bad value for `network`: expected `real` or `simulated`, found `virtual`
            exp/t.conf:14:19: error[bad-value]: bad value for `slurm_immediate`: expected true/false (or yes/no, on/off, 1/0), found `maybe`
            exp/t.conf:15:14: error[bad-value]: `output_dir` is empty
            exp/t.conf:16:17: error[bad-value]: `scenario_file` takes one value, found a list (help: remove the commas (a trailing comma makes a list), or quote the value)
        "#]],
    );
}

#[test]
fn aliases_and_conflicts() {
    check(
        "das4_instances_to_run = 10\nsync_subscribers_amount = 10\ndas4_node_amount = 2\ndas4_node_timeout = 50\nrunner = slurm\n",
        expect![[r#"
            name=t scenario=None instances=10 nodes=2 node_timeout=Some(50s) experiment_time=None per_process=1 runner=Slurm
            sync_host=None sync_port=Unique tracker_port=Unique start_delay=1s seed=None time_scale=None network=Real
            slurm=Slurm { partition: None, sbatch_options: [], immediate: false } output_dir=output
            exp/t.conf:1:1: note[default-name]: no `experiment_name`: the experiment is called `t`
        "#]],
    );
    check(
        "experiment_name = x\ninstances_to_run = 4\ndas4_instances_to_run = 8\nsync_subscribers_amount = 4\n",
        expect![[r#"
            name=x scenario=None instances=4 nodes=1 node_timeout=None experiment_time=None per_process=1 runner=Local
            sync_host=None sync_port=Unique tracker_port=Unique start_delay=1s seed=None time_scale=None network=Real
            slurm=Slurm { partition: None, sbatch_options: [], immediate: false } output_dir=output
            exp/t.conf:3:25: warning[conflicting-keys]: `das4_instances_to_run` = 8 is ignored: `instances_to_run` = 4 is used (help: both set the instances_to_run value; keep one)
        "#]],
    );
}

#[test]
fn unknown_keys_warn_with_suggestions() {
    check(
        "experiment_name = x\nnode_amout = 3\nNODE_AMOUNT = 3\nmodulus = 7\n",
        expect![[r#"
            name=x scenario=None instances=1 nodes=1 node_timeout=None experiment_time=None per_process=1 runner=Local
            sync_host=None sync_port=Unique tracker_port=Unique start_delay=1s seed=None time_scale=None network=Real
            slurm=Slurm { partition: None, sbatch_options: [], immediate: false } output_dir=output
            exp/t.conf:2:1: warning[unknown-key]: unknown key `node_amout` (help: did you mean `node_amount`?)
            exp/t.conf:3:1: warning[unknown-key]: unknown key `NODE_AMOUNT` (help: did you mean `node_amount`? keys are lower case)
            exp/t.conf:4:1: warning[unknown-key]: unknown key `modulus` (help: peerlab does not use it; modules may read it (`peerlab check --explain-keys` lists the keys))
        "#]],
    );
}

#[test]
fn module_keys_can_be_declared_known() {
    let (raw, _) = parse_config("t.conf", "experiment_name = x\nmodulus = 7\n");
    let (exp, diags) = Experiment::from_config_with_keys(&raw, &BTreeMap::new(), &["modulus"]);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(exp.get_str("modulus"), Some("7"));
}

#[test]
fn environment_overrides() {
    check_env(
        "experiment_name = x\ninstances_to_run = 4\nmodulus = 7\n",
        &[
            ("PEERLAB_INSTANCES_TO_RUN", "9"),
            ("PEERLAB_SEED", "5"),
            ("PEERLAB_SLURM_SBATCH_OPTIONS", "--a, --b"),
            ("PEERLAB_NODE_AMOUNT", "lots"),
            ("PEERLAB_UNRELATED_THING", "ignored"),
        ],
        expect![[r#"
            name=x scenario=None instances=9 nodes=1 node_timeout=None experiment_time=None per_process=1 runner=Local
            sync_host=None sync_port=Unique tracker_port=Unique start_delay=1s seed=Some(5) time_scale=None network=Real
            slurm=Slurm { partition: None, sbatch_options: ["--a", "--b"], immediate: false } output_dir=output
            error[bad-value]: PEERLAB_NODE_AMOUNT: bad value for `node_amount`: expected an integer, found `lots`
            exp/t.conf:3:1: warning[unknown-key]: unknown key `modulus` (help: peerlab does not use it; modules may read it (`peerlab check --explain-keys` lists the keys))
        "#]],
    );
    let (raw, _) = parse_config("t.conf", "experiment_name = x\nmodulus = 7\n");
    let (exp, _) = Experiment::from_config(&raw, &env(&[("PEERLAB_MODULUS", "11")]));
    assert_eq!(exp.get_str("modulus"), Some("11"));
    assert!(
        matches!(&exp.raw["modulus"].origin, peerlab_lang::Origin::Env(v) if v == "PEERLAB_MODULUS")
    );
}

#[test]
fn variables_in_values_expand_from_the_environment() {
    let text = "experiment_name = x\ndas4_node_amount = $NODES\ndas4_node_timeout = ${DURATION}\ndas4_instances_to_run = $PEERS\n";
    check_env(
        text,
        &[("NODES", "3"), ("DURATION", "60"), ("PEERS", "12")],
        expect![[r#"
            name=x scenario=None instances=12 nodes=3 node_timeout=Some(60s) experiment_time=None per_process=1 runner=Local
            sync_host=None sync_port=Unique tracker_port=Unique start_delay=1s seed=None time_scale=None network=Real
            slurm=Slurm { partition: None, sbatch_options: [], immediate: false } output_dir=output
            exp/t.conf:2:1: note[local-nodes]: `das4_node_amount` asks for 3 machines, but the local runner runs every instance on this one (help: set `runner = slurm` to spread the instances over a cluster)
        "#]],
    );
    check(
        text,
        expect![[r#"
            name=x scenario=None instances=1 nodes=1 node_timeout=None experiment_time=None per_process=1 runner=Local
            sync_host=None sync_port=Unique tracker_port=Unique start_delay=1s seed=None time_scale=None network=Real
            slurm=Slurm { partition: None, sbatch_options: [], immediate: false } output_dir=output
            exp/t.conf:2:20: error[bad-value]: in `das4_node_amount`: unknown variable `$NODES` (help: set `NODES` in the environment, or override the key with PEERLAB_DAS4_NODE_AMOUNT)
            exp/t.conf:3:21: error[bad-value]: in `das4_node_timeout`: unknown variable `$DURATION` (help: set `DURATION` in the environment, or override the key with PEERLAB_DAS4_NODE_TIMEOUT)
            exp/t.conf:4:25: error[bad-value]: in `das4_instances_to_run`: unknown variable `$PEERS` (help: set `PEERS` in the environment, or override the key with PEERLAB_DAS4_INSTANCES_TO_RUN)
        "#]],
    );
}

#[test]
fn ports_and_durations_typed() {
    let (raw, _) = parse_config("t.conf", "experiment_name = x\nsync_port = 7000\n");
    let (exp, _) = Experiment::from_config(&raw, &BTreeMap::new());
    assert_eq!(exp.sync_port, Port::Fixed(7000));
    assert_eq!(exp.sync_port.resolve(|| 1), 7000);
    assert_eq!(exp.tracker_port.resolve(|| 4242), 4242);
    assert_eq!(exp.sync_experiment_start_delay, Duration::from_secs(1));
}

#[test]
fn logging_configs_are_recognised() {
    check(
        "[loggers]\nkeys=root\n\n[handlers]\nkeys=default\n",
        expect![[r#"
            name=t scenario=None instances=1 nodes=1 node_timeout=None experiment_time=None per_process=1 runner=Local
            sync_host=None sync_port=Unique tracker_port=Unique start_delay=1s seed=None time_scale=None network=Real
            slurm=Slurm { partition: None, sbatch_options: [], immediate: false } output_dir=output
            exp/t.conf:1:1: warning[ignored-section]: section `[loggers]` is ignored: experiment configs have no sections (help: this file looks like a Python logging config, not an experiment config)
            exp/t.conf:1:1: note[default-name]: no `experiment_name`: the experiment is called `t`
            exp/t.conf:4:1: warning[ignored-section]: section `[handlers]` is ignored: experiment configs have no sections (help: this file looks like a Python logging config, not an experiment config)
        "#]],
    );
}

#[test]
fn config_keys_become_scenario_variables() {
    let (raw, _) = parse_config(
        "t.conf",
        "experiment_name = demo\nmodulus = 7\npeers = a, b\n",
    );
    let (exp, _) = Experiment::from_config(&raw, &BTreeMap::new());
    let vars = exp.vars();
    expect![[r#"
        {
            "EXPERIMENT_NAME": "demo",
            "MODULUS": "7",
            "PEERS": "a,b",
        }
    "#]]
    .assert_debug_eq(&vars);
    let standalone = Experiment::for_scenario("dir/dummy.scenario");
    assert_eq!(standalone.name, "dummy");
    assert_eq!(standalone.vars()["EXPERIMENT_NAME"], "dummy");
}

#[test]
fn scenario_checked_against_the_experiment() {
    let (raw, _) = parse_config(
        "t.conf",
        "experiment_name = x\ninstances_to_run = 3\nexperiment_time = 60\n",
    );
    let (exp, _) = Experiment::from_config(&raw, &BTreeMap::new());
    let vars: Vars = exp.scenario_vars(&BTreeMap::new());
    let (s, d) = parse_scenario(
        "s.scenario",
        "@1 a $EXPERIMENT_NAME {1-3}\n@2 b {4}\n@1:30 late\n@2:00 later\n",
        &mut MemoryLoader::new(),
        &vars,
    );
    assert!(d.is_empty());
    assert_eq!(s.commands[0].args[0].value, "x");
    let out: Vec<String> = exp
        .check_scenario(&s)
        .iter()
        .map(|d| d.render_short())
        .collect();
    expect![[r#"
        [
            "s.scenario:2:6: error[peer-out-of-range]: peer selector `{4}` selects no instance: the experiment runs only 3 instances (help: instance ids go from 1 to the number of instances; raise the instance count or change the selector)",
            "s.scenario:3:1: warning[after-end]: `late` runs at 90s, after the experiment ends (experiment_time is 60s) (and 1 more) (help: raise experiment_time, or move the command earlier)",
        ]
    "#]]
    .assert_debug_eq(&out);
}

#[test]
fn every_key_is_documented_once() {
    let mut seen = std::collections::BTreeSet::new();
    for k in peerlab_lang::KEYS {
        assert!(seen.insert(k.name), "{} listed twice", k.name);
        assert!(!k.doc.is_empty() && !k.doc.ends_with('.'), "{}", k.name);
        if let peerlab_lang::KeyKind::Alias(of) = k.kind {
            assert!(
                peerlab_lang::key_doc(of).is_some(),
                "{} aliases unknown {of}",
                k.name
            );
        }
    }
}

#[test]
fn runtime_keys_are_typed_once_by_lang() {
    let (raw, diags) = parse_config(
        "t.conf",
        "experiment_name = t\nnetwork_delay = 20ms\nnetwork_loss = 0.25\nshared_verification = off\nresources_interval = 0.5\nstats_interval = 0.25\n",
    );
    assert!(diags.is_empty(), "{diags:?}");
    let (exp, diags) = Experiment::from_config(&raw, &BTreeMap::new());
    assert!(diags.is_empty(), "{diags:?}");
    let keys = exp.runtime;
    assert_eq!(keys.network_delay, Some(Duration::from_millis(20)));
    assert_eq!(keys.network_jitter, None);
    assert_eq!(keys.network_loss, Some(0.25));
    assert_eq!(keys.shared_verification, Some(false));
    assert_eq!(keys.resources_interval, Some(Duration::from_millis(500)));
    assert_eq!(keys.stats_interval, Some(0.25));
    // The same rules over a run record's strings.
    let strings: BTreeMap<String, String> = [
        ("shared_verification", "yes"),
        ("resources_interval", "100"),
        ("network_jitter", "3ms"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (keys, errors) = peerlab_lang::RuntimeKeys::from_strings(&strings);
    assert_eq!(keys.shared_verification, Some(true));
    assert_eq!(keys.network_jitter, Some(Duration::from_millis(3)));
    assert_eq!(keys.resources_interval, None);
    assert_eq!(
        errors,
        vec!["bad value for `resources_interval`: expected seconds from 0.01 to 60, found `100`"]
    );
}

#[test]
fn a_bad_stats_interval_is_refused_at_its_line() {
    for bad in ["0", "0.05", "4000", "-1", "soon"] {
        let text = format!("experiment_name = t\nstats_interval = {bad}\n");
        let (raw, diags) = parse_config("t.conf", &text);
        assert!(diags.is_empty(), "{diags:?}");
        let (_, diags) = Experiment::from_config(&raw, &BTreeMap::new());
        assert_eq!(diags.len(), 1, "{bad}: {diags:?}");
        assert!(
            diags[0]
                .message
                .starts_with("bad value for `stats_interval`"),
            "{bad}: {}",
            diags[0].message
        );
        let at = diags[0].location.as_ref().map(|l| l.line);
        assert_eq!(at, Some(2), "{bad}: {:?}", diags[0]);
    }
}

#[test]
fn a_scenario_without_a_config_takes_the_environment_s_overrides() {
    let env: BTreeMap<String, String> = [
        ("PEERLAB_INSTANCES_TO_RUN", "7"),
        ("PEERLAB_SEED", "42"),
        ("PEERLAB_NOT_A_KEY", "x"),
        ("HOME", "/root"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (exp, diags) = Experiment::for_scenario_with_env("dir/dummy.scenario", &env);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(exp.name, "dummy");
    assert_eq!(exp.scenario_file.as_deref(), Some("dir/dummy.scenario"));
    assert_eq!(exp.instances, 7);
    assert_eq!(exp.seed, Some(42));
    // Without overrides it is the plain scenario experiment.
    let (plain, diags) = Experiment::for_scenario_with_env("dir/dummy.scenario", &BTreeMap::new());
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(
        plain.instances,
        Experiment::for_scenario("dir/dummy.scenario").instances
    );
    // A bad value is an error naming the variable.
    let bad: BTreeMap<String, String> =
        [("PEERLAB_INSTANCES_TO_RUN".to_string(), "many".to_string())]
            .into_iter()
            .collect();
    let (_, diags) = Experiment::for_scenario_with_env("dummy.scenario", &bad);
    assert!(
        diags
            .iter()
            .any(|d| d.message.contains("PEERLAB_INSTANCES_TO_RUN")),
        "{diags:?}"
    );
}
