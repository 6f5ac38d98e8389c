//! End-to-end tests of the plugin ABI and loader: the `peerlab` binary loads
//! the workspace's example plugin (by name and by path), fixture plugins
//! built against other api versions, and a crate written by `new-plugin`,
//! and calls their callbacks through `peerlab modules --call`.

use peerlab_e2e::{
    Dir, cargo_fixture, debug_dir, fixture_plugins, fixtures_target_dir, workspace_plugin,
};

#[test]
fn example_plugin_loads_by_name_and_takes_positional_and_keyword_args() {
    let dir = Dir::new("by-name");
    workspace_plugin("example");
    // no --plugin-path: found in target/debug next to the binary
    let run = dir
        .peerlab()
        .args(["modules", "example", "--instances", "2"])
        .args(["--call", "greet bob times=2 loud=yes"])
        .args(["--call", "add 5"])
        .args(["--call", "add 4 scale=0.5"])
        .args(["--call", "example.print_total"])
        .args(["--call", "shout one two three"])
        .args(["--call", "tick_every 1:30 count=2"])
        .args(["--call", "echo via core"])
        .run();
    run.expect_code(0);
    for i in 1..=2u64 {
        assert_eq!(
            run.instance_lines(i),
            [
                format!("started {i} of 2"),
                format!("HELLO BOB FROM {i}"),
                format!("HELLO BOB FROM {i}"),
                "stat example_added += 5".into(),
                "example.add returned 5".into(),
                "stat example_added += 2".into(),
                "example.add returned 7".into(),
                "total 7".into(),
                "ONE TWO THREE".into(),
                "via core".into(),
                "tick 1 at 90".into(),
                "tick 2 at 180".into(),
                "stopping after 2 ticks".into(),
            ],
            "{run}"
        );
    }
}

#[test]
fn example_plugin_loads_by_path() {
    let dir = Dir::new("by-path");
    let lib = workspace_plugin("example");
    let run = dir
        .peerlab()
        .arg("modules")
        .arg(&lib)
        .args([
            "--call",
            "greet ann",
            "--call",
            "add 3 scale=2",
            "--config",
            "example_start=10",
        ])
        .run();
    run.expect_code(0);
    let lines = run.instance_lines(1);
    assert!(lines.contains(&"hello ann from 1".to_string()), "{run}");
    assert!(
        lines.contains(&"example.add returned 16".to_string()),
        "{run}"
    );
}

#[test]
fn peerlab_modules_lists_builtins_and_plugins_with_versions_and_help() {
    let fixtures = fixture_plugins();
    let dir = Dir::new("list");
    let run = dir
        .peerlab()
        .arg("modules")
        .arg("--plugin-path")
        .arg(&fixtures)
        .run();
    run.expect_code(0)
        .stdout_has(&peerlab_e2e::with_api("core 0.1.0 (built-in, plugin-api {API}): Gumby's client callbacks"))
        .stdout_has("  echo [words:string...]")
        .stdout_has(&peerlab_e2e::with_api("dispersy 0.1.0 (built-in, plugin-api {API})"))
        .stdout_has("  introduce_peers [max_peers=integer]")
        .stdout_has(&format!("frozen 1.0.0 ({}/libfrozen.so, plugin-api 1.0.0)", fixtures.display()))
        .stdout_has("  accumulate value:integer [times=integer = 1]  Add to the sum and print it")
        .stdout_has(&peerlab_e2e::with_api(&format!("example 0.1.0 ({}/libexample.so, plugin-api {{API}})", debug_dir().display())))
        .stdout_has("  greet name:string [times=integer = 1] [loud=bool]  Greet someone")
        .stdout_has(&peerlab_e2e::with_api("libincompatible.so: incompatible plugin-api: the plugin was built against 2.0.0, this host has {API}"));
    assert!(
        !run.stdout.contains("notaplugin"),
        "non-plugins are listed only with -v:\n{run}"
    );
}

#[test]
fn refusals_are_reported_together_and_precisely() {
    let fixtures = fixture_plugins();
    let dir = Dir::new("refusals");
    let junk = dir.write("libjunk.so", "this is not an ELF file");
    let run = dir
        .peerlab()
        .arg("modules")
        .arg(fixtures.join("libnotaplugin.so"))
        .arg(fixtures.join("libincompatible.so"))
        .arg(fixtures.join("libmismatch.so"))
        .arg(&junk)
        .arg("no_such_module")
        .run();
    run.expect_code(2)
        .stderr_has("5 modules could not be loaded")
        .stderr_has("libnotaplugin.so: not a peerlab plugin: it exports no abi_stable root module")
        .stderr_has(
            &peerlab_e2e::with_api("libincompatible.so: incompatible plugin-api: the plugin was built against 2.0.0, this host has {API}"),
        )
        .stderr_has("help: rebuild the plugin against peerlab-plugin-api 1.x")
        .stderr_has(
            &peerlab_e2e::with_api(
                "libmismatch.so: layout mismatch with this host's plugin-api {API}: \
                 mismatched package: expected `peerlab-plugin-api`, found `peerlab-mismatch-fixture`",
            ),
        )
        .stderr_has("libjunk.so: cannot open it as a shared library")
        .stderr_has("module `no_such_module`: not found");
    assert!(
        !run.stderr.contains("Layout of expected type"),
        "the full layout report is only for -v:\n{run}"
    );
    let verbose = dir
        .peerlab()
        .args(["-v", "modules"])
        .arg(fixtures.join("libmismatch.so"))
        .run();
    verbose.expect_code(2).stderr_has("Layout of expected type");
}

#[test]
fn a_panicking_callback_is_an_error_naming_plugin_callback_and_message() {
    let dir = Dir::new("panic");
    let run = dir
        .peerlab()
        .args(["modules", "example"])
        .args([
            "--call",
            "greet before",
            "--call",
            "boom kaput",
            "--call",
            "greet after",
        ])
        .run();
    // the host survived (no abort), reported the panic, and kept going
    run.expect_code(1);
    let lines = run.instance_lines(1);
    assert_eq!(lines[1], "hello before from 1", "{run}");
    assert!(
        lines[2].starts_with(
            "error: example.boom: module `example` panicked in callback `boom`: kaput (at "
        ) && lines[2].ends_with(")"),
        "{run}"
    );
    // the panic's location in the plugin's source
    assert!(lines[2].contains("src/lib.rs:"), "{run}");
    assert!(
        lines[3].starts_with(
            "error: example.greet: module `example` is unusable after an earlier panic"
        ),
        "{run}"
    );
}

#[test]
fn wrong_argument_types_are_caught_before_any_call() {
    let dir = Dir::new("bad-args");
    let run = dir
        .peerlab()
        .args(["modules", "example"])
        .args([
            "--call",
            "greet bob",
            "--call",
            "add lots",
            "--call",
            "greet bob tims=2",
            "--call",
            "gret bob",
        ])
        .run();
    run.expect_code(2)
        .stderr_has("example.add: argument `value`: expected an integer, got \"lots\"")
        .stderr_has("`greet` has no parameter `tims`")
        .stderr_has("did you mean `times`?")
        .stderr_has("unknown callback `gret`")
        .stderr_has("did you mean `greet`?");
    assert!(
        !run.stdout.contains("hello bob"),
        "nothing runs when a line is wrong:\n{run}"
    );
}

#[test]
fn two_modules_with_the_same_callback_need_a_qualified_name() {
    let fixtures = fixture_plugins();
    let dir = Dir::new("ambiguous");
    let run = dir
        .peerlab()
        .args(["modules", "example", "frozen", "--plugin-path"])
        .arg(&fixtures)
        .args(["--call", "greet x"])
        .run();
    run.expect_code(2)
        .stderr_has("callback `greet` is defined by several modules: `example` and `frozen`")
        .stderr_has("qualify it: `example.greet` or `frozen.greet`");
    let run = dir
        .peerlab()
        .args(["modules", "example", "frozen", "--plugin-path"])
        .arg(&fixtures)
        .args(["--call", "frozen.greet x", "--call", "example.greet y"])
        .run();
    run.expect_code(0)
        .stdout_has("[1] frozen greets x")
        .stdout_has("[1] hello y from 1");
}

#[test]
fn host_only_upgrade_runs_a_plugin_built_against_the_previous_api() {
    let fixtures = fixture_plugins();
    let dir = Dir::new("upgrade");
    let run = dir
        .peerlab()
        .args(["modules", "frozen", "--plugin-path"])
        .arg(&fixtures)
        .args([
            "--call",
            "accumulate 3 times=2",
            "--call",
            "accumulate 1",
            "--call",
            "echo done",
        ])
        .run();
    run.expect_code(0);
    // on_start (added in api 1.1) falls back to its default for this 1.0 plugin
    assert_eq!(
        run.instance_lines(1),
        ["frozen sum 6", "frozen sum 7", "done", "frozen stopping"],
        "{run}"
    );
    let list = dir
        .peerlab()
        .args(["modules", "frozen", "--plugin-path"])
        .arg(&fixtures)
        .run();
    list.expect_code(0)
        .stdout_has("frozen 1.0.0 (")
        .stdout_has("plugin-api 1.0.0)");
}

#[test]
fn new_plugin_writes_a_crate_whose_printed_steps_work_as_written() {
    let dir = Dir::new("new-plugin");
    let crate_dir = dir.path().join("greeter-x");
    let created = dir
        .peerlab()
        .args(["new-plugin", "greeter-x", "--path"])
        .arg(&crate_dir)
        .run();
    created
        .expect_code(0)
        .stdout_has("created plugin `greeter-x`");
    assert!(crate_dir.join("greeter-x.scenario").is_file());
    // refuses to overwrite
    dir.peerlab()
        .args(["new-plugin", "greeter-x", "--path"])
        .arg(&crate_dir)
        .run()
        .expect_code(2)
        .stderr_has("already exists");

    // Follow the printed steps literally, in one shell. Two stand-ins keep
    // the build warm and offline: the crate's target/ is the fixtures'
    // target directory, and it gets the workspace's Cargo.lock.
    let steps: Vec<&str> = created
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("next steps"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(str::trim)
        .collect();
    assert_eq!(
        steps.first().map(|s| s.starts_with("cd ")),
        Some(true),
        "{created}"
    );
    assert!(steps.contains(&"peerlab check greeter-x.conf"), "{created}");
    assert!(steps.contains(&"peerlab run greeter-x.conf"), "{created}");
    std::fs::copy(
        peerlab_e2e::workspace_root().join("Cargo.lock"),
        crate_dir.join("Cargo.lock"),
    )
    .expect("copying Cargo.lock");
    std::fs::create_dir_all(fixtures_target_dir()).expect("creating the fixtures target");
    std::os::unix::fs::symlink(fixtures_target_dir(), crate_dir.join("target"))
        .expect("linking target/");
    let path = format!(
        "{}:{}",
        debug_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cargo_dir = std::env::var_os("CARGO")
        .map(std::path::PathBuf::from)
        .and_then(|c| c.parent().map(|d| d.display().to_string()))
        .unwrap_or_default();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("set -ex; {}", steps.join("; ")))
        .current_dir(dir.path())
        .env("PATH", format!("{cargo_dir}:{path}"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("PEERLAB_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .env("CARGO_BUILD_JOBS", "2")
        .output()
        .expect("running sh");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the printed steps failed ({}):\n{}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status,
        steps.join("\n")
    );
    assert!(
        stdout.contains("[1] hello world from instance 1"),
        "{stdout}"
    );
    assert!(stdout.contains("ok: greeter-x.conf"), "{stdout}");
    assert!(
        stderr.contains("PASSED: 3/3 instances finished"),
        "{stderr}"
    );
    assert!(crate_dir.join("output/latest/summary.json").is_file());
    // the crate's own tests pass, its verdict among them
    if let Err(e) = cargo_fixture("test", &crate_dir.join("Cargo.toml")) {
        panic!("{e}");
    }
    // the template's verdict judges every instance: one that never reports fails by name
    std::fs::write(
        crate_dir.join("quiet.scenario"),
        "&module greeter-x\n@0:01 hello world\n@0:03 report {1}\n@0:05 stop\n",
    )
    .unwrap();
    dir.peerlab()
        .args(["run", "greeter-x/quiet.scenario", "--instances", "3"])
        .args(["--simulate", "--no-plots", "--plugin-path"])
        .arg(fixtures_target_dir().join("debug"))
        .run()
        .expect_code(1)
        .stderr_has(
            "verdict greeter-x/greetings agree: FAIL — `greetings 1` from [1]; no report from [2, 3]",
        );
}

#[test]
fn new_plugin_with_an_api_version_depends_on_a_crate_cargo_can_find() {
    let dir = Dir::new("new-plugin-version");
    let crate_dir = dir.path().join("versioned");
    let api = peerlab_e2e::host_api_version();
    let major_minor: String = api.split('.').take(2).collect::<Vec<_>>().join(".");
    dir.peerlab()
        .args([
            "new-plugin",
            "versioned",
            "--api-version",
            &major_minor,
            "--path",
        ])
        .arg(&crate_dir)
        .run()
        .expect_code(0);
    std::fs::copy(
        peerlab_e2e::workspace_root().join("Cargo.lock"),
        crate_dir.join("Cargo.lock"),
    )
    .expect("copying Cargo.lock");
    // Resolving the dependencies is what failed: the api crate is not on
    // any registry, so a version-only dependency cannot be found.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "--offline", "--depth", "1", "--manifest-path"])
        .arg(crate_dir.join("Cargo.toml"))
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo cannot resolve the new crate's dependencies:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap_or_default()
    );
    // A version this peerlab's api cannot satisfy is refused with what to do.
    dir.peerlab()
        .args(["new-plugin", "other", "--api-version", "99.0", "--path"])
        .arg(dir.path().join("other"))
        .run()
        .expect_code(2)
        .stderr_has("--api-path");
    assert!(!dir.path().join("other").exists());
}

#[test]
fn the_plugin_search_order_is_cli_env_experiment_target() {
    let dir = Dir::new("search-order");
    let run = dir
        .peerlab()
        .args(["modules", "nothere", "--plugin-path", "/cli"])
        .args(["--experiment-dir", "/exp"])
        .env("PEERLAB_PLUGIN_PATH", "/env1::/env2")
        .run();
    run.expect_code(2).stderr_has(&format!(
        "(searched /cli, /env1, /env2, /exp, {}",
        debug_dir().display()
    ));
}
