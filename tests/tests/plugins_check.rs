//! End-to-end: `peerlab check` resolves a scenario's modules and callbacks
//! against the loaded plugins' callback tables, so a wrong argument type or
//! an unknown callback fails the check (with file:line:col and a "did you
//! mean"), not the run.

use peerlab_e2e::{Dir, fixture_plugins, workspace_plugin};

const CONF: &str = "experiment_name = \"x\"\nscenario_file = 'x.scenario'\nsync_subscribers_amount = 2\nexperiment_time = 10\n";

#[test]
fn check_catches_wrong_argument_types_and_unknown_callbacks() {
    workspace_plugin("example");
    let dir = Dir::new("check-args");
    dir.write("x.conf", CONF);
    dir.write(
        "x.scenario",
        "&module example\n\
         &module gumby.modules.dispersy_module.DispersyModule\n\
         @0:01 greet bob times=2\n\
         @0:02 add lots\n\
         @0:03 introduce_peers max_peers=many\n\
         @0:04 greet_all\n",
    );
    let run = dir
        .peerlab()
        .args(["check", "x.conf", "--format", "short"])
        .run();
    run.expect_code(1)
        .stdout_has(
            "x.scenario:4:11: error[bad-argument]: example.add: argument `value`: expected an integer, got \"lots\"",
        )
        .stdout_has(
            "x.scenario:5:23: error[bad-argument]: dispersy.introduce_peers: argument `max_peers`: expected an integer, got \"many\"",
        )
        .stdout_has("x.scenario:6:7: error[unknown-callback]: unknown callback `greet_all`")
        .stdout_has("did you mean `greet`?");
    assert!(
        !run.stdout.contains("x.scenario:3:"),
        "the good line is not reported:\n{run}"
    );
}

#[test]
fn check_passes_a_good_scenario_and_reports_plugins_that_do_not_load() {
    let fixtures = fixture_plugins();
    let dir = Dir::new("check-load");
    dir.write("x.conf", CONF);
    dir.write(
        "x.scenario",
        "&module example\n@0:01 greet bob times=2 loud=yes\n@0:02 add 3 scale=0.5\n@0:03 core.echo done\n",
    );
    dir.peerlab()
        .args(["check", "x.conf", "--format", "short"])
        .run()
        .expect_code(0);

    dir.write(
        "x.scenario",
        format!(
            "&module example\n&module {}\n@0:01 greet bob\n@0:02 something_the_broken_module_had\n",
            fixtures.join("libincompatible.so").display()
        ),
    );
    let run = dir
        .peerlab()
        .args(["check", "x.conf", "--format", "short"])
        .run();
    run.expect_code(1)
        .stdout_has("x.scenario:2:9: error[incompatible-plugin-api]: ")
        .stdout_has(&peerlab_e2e::with_api(
            "incompatible plugin-api: the plugin was built against 2.0.0, this host has {API}",
        ));
    assert!(
        !run.stdout.contains("something_the_broken_module_had"),
        "callbacks are not judged while a module failed to load:\n{run}"
    );
}

#[test]
fn config_keys_a_module_declares_are_not_unknown() {
    let dir = Dir::new("module-keys");
    dir.write("k.scenario", "&module example\n@0:01 greet bob\n");
    dir.write(
        "k.conf",
        "scenario_file = k.scenario\ninstances_to_run = 1\nexample_start = 5\nexampel_start = 6\n",
    );
    let run = dir
        .peerlab()
        .args(["check", "k.conf", "--format", "short"])
        .run();
    run.expect_code(0).stdout_has("unknown key `exampel_start`");
    assert!(
        !run.stdout.contains("unknown key `example_start`"),
        "the example plugin declares `example_start`:\n{run}"
    );
    // Without module resolution the key is not known yet.
    let syntax_only = dir
        .peerlab()
        .args(["check", "k.conf", "--format", "short", "--syntax-only"])
        .run();
    syntax_only.stdout_has("unknown key `example_start`");
}
