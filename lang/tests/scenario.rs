//! Data-driven tests of the scenario language: one `check` helper renders
//! what the parser understood (modules, commands in order) and every
//! diagnostic, compared against an `expect!` snapshot (`UPDATE_EXPECT=1`
//! refreshes them).

use expect_test::{Expect, expect};
use peerlab_lang::{MemoryLoader, Phase, Scenario, Vars, parse_scenario};

fn dump(scenario: &Scenario, diags: &[peerlab_lang::Diagnostic]) -> String {
    let mut out = String::new();
    for m in &scenario.modules {
        out.push_str(&format!(
            "module {} @{}:{}\n",
            m.name, m.loc.line, m.loc.column
        ));
    }
    for c in &scenario.commands {
        let phase = match c.phase {
            Phase::Load => "load".to_string(),
            Phase::Setup => "setup".to_string(),
            Phase::At(t) => format!("@{t}"),
        };
        let mut line = format!("{}:{} {phase} {}", c.loc.file, c.loc.line, c.callback);
        for a in &c.args {
            line.push_str(&format!(" [{}]", a.value));
        }
        for k in &c.kwargs {
            line.push_str(&format!(" {}=[{}]", k.name, k.value));
        }
        if c.peers_loc.is_some() {
            line.push_str(&format!(" {}", c.peers));
        }
        out.push_str(&line);
        out.push('\n');
    }
    for (k, v) in &scenario.variables {
        out.push_str(&format!("var {k}={v}\n"));
    }
    for d in diags {
        out.push_str(&d.render_short());
        out.push('\n');
    }
    out
}

fn vars() -> Vars {
    Vars::new()
        .with_config([
            ("EXPERIMENT_NAME", "demo"),
            ("MODULUS", "7"),
            ("SHARED", "from-config"),
        ])
        .with_env([
            ("HOME", "/home/u"),
            ("SHARED", "from-env"),
            ("SPACED", "a b"),
        ])
}

/// Parse `text` as `exp/main.scenario` with `files` available to includes
/// (paths relative to the experiment directory `exp`).
fn check_with(text: &str, files: &[(&str, &str)], expect: Expect) {
    let mut loader = MemoryLoader::new().with_experiment_dir("exp");
    for (p, t) in files {
        loader = loader.with_file(*p, *t);
    }
    let (scenario, diags) = parse_scenario("exp/main.scenario", text, &mut loader, &vars());
    expect.assert_eq(&dump(&scenario, &diags));
}

fn check(text: &str, expect: Expect) {
    check_with(text, &[], expect);
}

#[test]
fn tutorial_scenario_as_printed() {
    check(
        include_str!("../../scenarios/benaloh/benaloh.scenario"),
        expect![[r#"
            module gumby.modules.dispersy_module.DispersyModule @1:9
            module experiments.benaloh.benaloh_module.BenalohModule @2:9
            exp/main.scenario:4 setup isolate_community [BenalohCommunity]
            exp/main.scenario:5 @1 start_session
            exp/main.scenario:6 @2 introduce_peers
            exp/main.scenario:7 @15 reset_dispersy_statistics
            exp/main.scenario:8 @15 annotate [start-experiment]
            exp/main.scenario:10 @30 share_local
            exp/main.scenario:11 @45 share_subset_sum
            exp/main.scenario:13 @90 print_local_value
            exp/main.scenario:14 @90 print_total_sum
            exp/main.scenario:16 @120 stop_session
            exp/main.scenario:17 @135 stop
        "#]],
    );
}

#[test]
fn comments_blank_lines_and_crlf() {
    check(
        "# a comment\n   # an indented comment\n\n\t\n@1 a\r\n  @2 b   \r\n",
        expect![[r#"
            exp/main.scenario:5 @1 a
            exp/main.scenario:6 @2 b
        "#]],
    );
}

#[test]
fn times() {
    check(
        "@90 a\n@1:30 b\n90 c\n@0:90 d\n@1:00:00 e\n@0:10.5 f\n@0:595 g\n@0.0 h\n1:2:3.25 i\n",
        expect![[r#"
            exp/main.scenario:8 @0 h
            exp/main.scenario:6 @10.5 f
            exp/main.scenario:1 @90 a
            exp/main.scenario:2 @90 b
            exp/main.scenario:3 @90 c
            exp/main.scenario:4 @90 d
            exp/main.scenario:7 @595 g
            exp/main.scenario:5 @3600 e
            exp/main.scenario:9 @3723.25 i
        "#]],
    );
}

#[test]
fn bad_times() {
    check(
        "@ a\n@1.5:00 b\n@-1 c\n@1:2:3:4 d\n@1e3 e\n@x f\n@!x g\n",
        expect![[r#"
            exp/main.scenario:1:1: error[bad-time]: bad time `@` (help: times are `@90`, `@1:30`, `@0:10.5` or `@1:00:00`: whole hours and minutes, seconds may be fractional)
            exp/main.scenario:2:1: error[bad-time]: bad time `@1.5:00` (help: times are `@90`, `@1:30`, `@0:10.5` or `@1:00:00`: whole hours and minutes, seconds may be fractional)
            exp/main.scenario:3:1: error[bad-time]: bad time `@-1` (help: times are `@90`, `@1:30`, `@0:10.5` or `@1:00:00`: whole hours and minutes, seconds may be fractional)
            exp/main.scenario:4:1: error[bad-time]: bad time `@1:2:3:4` (help: times are `@90`, `@1:30`, `@0:10.5` or `@1:00:00`: whole hours and minutes, seconds may be fractional)
            exp/main.scenario:5:1: error[bad-time]: bad time `@1e3` (help: times are `@90`, `@1:30`, `@0:10.5` or `@1:00:00`: whole hours and minutes, seconds may be fractional)
            exp/main.scenario:6:1: error[bad-time]: bad time `@x` (help: times are `@90`, `@1:30`, `@0:10.5` or `@1:00:00`: whole hours and minutes, seconds may be fractional)
            exp/main.scenario:7:1: error[bad-time]: bad time `@!x` (help: times are `@90`, `@1:30`, `@0:10.5` or `@1:00:00`: whole hours and minutes, seconds may be fractional)
        "#]],
    );
}

#[test]
fn lines_that_are_not_commands() {
    check(
        "start_session\n  stop {1}\n",
        expect![[r#"
            exp/main.scenario:1:1: error[expected-time]: expected a command line, found `start_session` (help: a command line is `@TIME CALLBACK [ARGS...] [{PEERS}]`, e.g. `@1:30 start_session`; comments start with `#`)
            exp/main.scenario:2:3: error[expected-time]: expected a command line, found `stop` (help: a command line is `@TIME CALLBACK [ARGS...] [{PEERS}]`, e.g. `@1:30 start_session`; comments start with `#`)
        "#]],
    );
}

#[test]
fn phases_are_ordered_load_setup_then_time_stably() {
    check(
        "@5 late\n@1 first_at_1\n@@ setup_a\n@! load_a\n@1 second_at_1\n@@ setup_b\n@0 zero\n@! load_b\n@1.0 third_at_1\n",
        expect![[r#"
            exp/main.scenario:4 load load_a
            exp/main.scenario:8 load load_b
            exp/main.scenario:3 setup setup_a
            exp/main.scenario:6 setup setup_b
            exp/main.scenario:7 @0 zero
            exp/main.scenario:2 @1 first_at_1
            exp/main.scenario:5 @1 second_at_1
            exp/main.scenario:9 @1 third_at_1
            exp/main.scenario:1 @5 late
        "#]],
    );
}

#[test]
fn arguments_split_like_a_shell() {
    check(
        concat!(
            "@1 cb a   b\tc\n",
            "@2 cb 'single quoted' \"double quoted\" back\\ slash \"esc\\\"aped\" ''\n",
            "@3 cb x=1 y='two words' 'z=3' =4 a-b=5 k=\n",
            "@4 cb pos k=v other # trailing comment\n",
            "@5 transfer action=seed download_id=16191 length=39729074 hops=0 {31}\n",
        ),
        expect![[r#"
            exp/main.scenario:1 @1 cb [a] [b] [c]
            exp/main.scenario:2 @2 cb [single quoted] [double quoted] [back slash] [esc"aped] []
            exp/main.scenario:3 @3 cb [=4] [a-b=5] x=[1] y=[two words] z=[3] k=[]
            exp/main.scenario:4 @4 cb [pos] [other] k=[v]
            exp/main.scenario:5 @5 transfer action=[seed] download_id=[16191] length=[39729074] hops=[0] {31}
        "#]],
    );
}

#[test]
fn argument_errors() {
    check(
        "@1 cb 'open\n@2 cb \"open\n@3 cb tail\\\n@4 cb k=1 k=2\n@5 cb $(date)\n",
        expect![[r#"
            exp/main.scenario:1:7: error[unclosed-quote]: unclosed single quote (help: add the closing `'`)
            exp/main.scenario:2:7: error[unclosed-quote]: unclosed double quote (help: add the closing `"`)
            exp/main.scenario:3:11: error[trailing-backslash]: backslash at the end of the line (help: write `\\` for a literal backslash; lines cannot be continued)
            exp/main.scenario:4:11: error[duplicate-keyword]: keyword argument `k` is given twice
            exp/main.scenario:5:7: error[command-substitution]: command substitution `$(...)` is not supported (help: quote the `$` as `'$'` or `\$` if it is meant literally)
        "#]],
    );
}

#[test]
fn callbacks() {
    check(
        "@1 dispersy.start_session\n@2 9lives\n@3 a-b\n@4\n@5 {1}\n@6 'quoted_ok'\n",
        expect![[r#"
            exp/main.scenario:1 @1 dispersy.start_session
            exp/main.scenario:6 @6 quoted_ok
            exp/main.scenario:2:4: error[bad-callback]: `9lives` is not a callback name (help: callback names are letters, digits and `_` (not starting with a digit), optionally qualified as `module.callback`)
            exp/main.scenario:3:4: error[bad-callback]: `a-b` is not a callback name (help: callback names are letters, digits and `_` (not starting with a digit), optionally qualified as `module.callback`)
            exp/main.scenario:4:3: error[expected-callback]: expected a callback name after the time (help: a command line is `@TIME CALLBACK [ARGS...] [{PEERS}]`)
            exp/main.scenario:5:4: error[expected-callback]: expected a callback name after the time (help: a command line is `@TIME CALLBACK [ARGS...] [{PEERS}]`)
        "#]],
    );
}

#[test]
fn qualified_callback_parts() {
    let (s, d) = parse_scenario(
        "x",
        "@1 benaloh.share_local\n@2 stop\n",
        &mut MemoryLoader::new(),
        &Vars::new(),
    );
    assert!(d.is_empty());
    assert_eq!(
        (s.commands[0].qualifier(), s.commands[0].callback_name()),
        (Some("benaloh"), "share_local")
    );
    assert_eq!(
        (s.commands[1].qualifier(), s.commands[1].callback_name()),
        (None, "stop")
    );
}

#[test]
fn peer_selectors() {
    check(
        "@1 a {}\n@2 b {1,3-5}\n@3 c {!2}\n@4 d { 1 , 2 }\n@5 e\n@6 f x {7}\n",
        expect![[r#"
            exp/main.scenario:1 @1 a {}
            exp/main.scenario:2 @2 b {1,3-5}
            exp/main.scenario:3 @3 c {!2}
            exp/main.scenario:4 @4 d {1-2}
            exp/main.scenario:5 @5 e
            exp/main.scenario:6 @6 f [x] {7}
        "#]],
    );
}

#[test]
fn peer_selector_errors() {
    check(
        "@1 a {0}\n@2 b {5-3}\n@3 c {1,,2}\n@4 d {!}\n@5 e {x}\n@6 f {1} more\n@7 g {1\n@8 h {1}x\n@9 i {$N}\n",
        expect![[r#"
            exp/main.scenario:1:7: error[bad-selector]: bad peer selector item `0`: instance ids start at 1 (help: a selector lists ids and ranges: `{1,3-5}`, or `{!2}` for all but 2)
            exp/main.scenario:2:7: error[bad-selector]: empty range `5-3` in peer selector (help: write the smaller id first: `3-5`)
            exp/main.scenario:3:9: error[bad-selector]: empty item in peer selector (help: remove the extra comma)
            exp/main.scenario:4:7: error[bad-selector]: `{!}` excludes no instance (help: write `{}` for every instance, or list the ids to leave out: `{!2}`)
            exp/main.scenario:5:7: error[bad-selector]: bad peer selector item `x`: expected an instance id (a number from 1), found `x` (help: a selector lists ids and ranges: `{1,3-5}`, or `{!2}` for all but 2)
            exp/main.scenario:6:6: error[selector-not-last]: the peer selector must come last on the line (help: move `{…}` to the end, or quote the argument if the braces are meant literally)
            exp/main.scenario:7:6: error[unclosed-selector]: unclosed peer selector (help: close it: `{1,3-5}`, or quote the argument if the brace is meant literally)
            exp/main.scenario:8:9: error[text-after-selector]: unexpected text right after the peer selector (help: put a space after `}`, or quote the argument if the braces are meant literally)
            exp/main.scenario:9:7: error[bad-selector]: bad peer selector item `$N`: expected an instance id (a number from 1), found `$N` (help: a selector lists ids and ranges: `{1,3-5}`, or `{!2}` for all but 2)
        "#]],
    );
}

#[test]
fn variables_expand_from_set_then_config_then_env() {
    check(
        concat!(
            "@1 a $EXPERIMENT_NAME $HOME $SHARED\n",
            "@! set SHARED from-set\n",
            "@2 b $SHARED ${SHARED}x \"$SHARED y\" '$SHARED' \\$SHARED\n",
            "@3 c $SPACED k=$MODULUS\n",
            "@! set key 10d00d55\n",
            "@! set key \"re defined\"\n",
            "@4 d $key {2}\n",
            "@5 e 5$ $ lone$\n",
        ),
        expect![[r#"
            exp/main.scenario:1 @1 a [demo] [/home/u] [from-config]
            exp/main.scenario:3 @2 b [from-set] [from-setx] [from-set y] [$SHARED] [$SHARED]
            exp/main.scenario:4 @3 c [a b] k=[7]
            exp/main.scenario:7 @4 d [re defined] {2}
            exp/main.scenario:8 @5 e [5$] [$] [lone$]
            var SHARED=from-set
            var key=re defined
        "#]],
    );
}

#[test]
fn variable_is_only_visible_after_its_set() {
    check(
        "@1 a $later\n@! set later now\n@2 b $later\n",
        expect![[r#"
            exp/main.scenario:3 @2 b [now]
            var later=now
            exp/main.scenario:1:6: error[unknown-variable]: unknown variable `$later` (help: define it first with `@! set NAME VALUE`, or set it in the config or the environment)
        "#]],
    );
}

#[test]
fn unknown_variables_are_errors_with_suggestions() {
    check(
        "@1 a $experiment_name\n@2 b $MODULUSS\n@3 c $val\n@4 d ${1x}\n@5 e ${open\n",
        expect![[r#"
            exp/main.scenario:1:6: error[unknown-variable]: unknown variable `$experiment_name` (help: did you mean `$EXPERIMENT_NAME`? variable names are case-sensitive, and config keys are upper-cased)
            exp/main.scenario:2:6: error[unknown-variable]: unknown variable `$MODULUSS` (help: did you mean `$MODULUS`?)
            exp/main.scenario:3:6: error[unknown-variable]: unknown variable `$val` (help: define it first with `@! set NAME VALUE`, or set it in the config or the environment)
            exp/main.scenario:4:6: error[bad-variable]: `${1x}` is not a variable name (help: variable names are letters, digits and `_`, not starting with a digit)
            exp/main.scenario:5:6: error[bad-variable]: unclosed `${` (help: close it: `${NAME}`)
        "#]],
    );
}

#[test]
fn set_errors() {
    check(
        "@1 set x y\n@@ set x y\n@! set x\n@! set x y z\n@! set 1x y\n@! set x y {1}\n@! set k=v\n@! set\n",
        expect![[r#"
            exp/main.scenario:1:4: error[bad-set]: `set` only works at load time (help: write `@! set NAME VALUE`; quote a value that contains spaces; a timed `set` would not change any line)
            exp/main.scenario:2:4: error[bad-set]: `set` only works at load time (help: write `@! set NAME VALUE`; quote a value that contains spaces; a timed `set` would not change any line)
            exp/main.scenario:3:7: error[bad-set]: `set` takes a name and a value, found 1 argument (help: write `@! set NAME VALUE`; quote a value that contains spaces)
            exp/main.scenario:4:12: error[bad-set]: `set` takes a name and a value, found 3 arguments (help: write `@! set NAME VALUE`; quote a value that contains spaces)
            exp/main.scenario:5:8: error[bad-set]: `1x` is not a variable name (help: variable names are letters, digits and `_`, not starting with a digit)
            exp/main.scenario:6:12: error[bad-set]: `set` takes no peer selector (help: variables are the same on every instance)
            exp/main.scenario:7:8: error[bad-set]: `set` takes a name and a value, not a keyword argument (help: write `@! set NAME VALUE`; quote a value that contains spaces)
            exp/main.scenario:8:7: error[bad-set]: `set` takes a name and a value, found 0 arguments (help: write `@! set NAME VALUE`; quote a value that contains spaces)
        "#]],
    );
}

#[test]
fn load_commands_other_than_set_are_kept() {
    check(
        "@! echo hello\n@1 a\n",
        expect![[r#"
            exp/main.scenario:1 load echo [hello]
            exp/main.scenario:2 @1 a
        "#]],
    );
}

#[test]
fn modules() {
    check(
        "&module gumby.modules.tribler_module.TriblerModule\n  &module benaloh\n&module ./plugins/libx.so\n&module benaloh\n",
        expect![[r#"
            module gumby.modules.tribler_module.TriblerModule @1:9
            module benaloh @2:11
            module ./plugins/libx.so @3:9
            exp/main.scenario:4:9: warning[duplicate-module]: module `benaloh` is already loaded at exp/main.scenario:2:11
        "#]],
    );
}

#[test]
fn directive_errors() {
    check(
        "&module module module x.Y\n&module\n&modul x\n&foo bar\n&\n&module a {1}\n&include\n&include a b\n",
        expect![[r#"
            exp/main.scenario:1:16: error[bad-directive]: `&module` takes one module name, found 3 words (help: write one `&module` line per module; quote a name that contains spaces)
            exp/main.scenario:2:8: error[bad-directive]: expected a module name after `&module`
            exp/main.scenario:3:1: error[unknown-directive]: unknown directive `&modul` (help: did you mean `&module`? the directives are `&module NAME` and `&include PATH`)
            exp/main.scenario:4:1: error[unknown-directive]: unknown directive `&foo` (help: the directives are `&module NAME` and `&include PATH`)
            exp/main.scenario:5:1: error[bad-directive]: expected a directive name after `&`
            exp/main.scenario:6:11: error[bad-directive]: `&module` takes no peer selector (help: directives apply to every instance; `&module` takes one module name)
            exp/main.scenario:7:9: error[bad-directive]: expected a file path after `&include`
            exp/main.scenario:8:12: error[bad-directive]: `&include` takes one file path, found 2 words (help: write one `&include` line per file; quote a path that contains spaces)
        "#]],
    );
}

#[test]
fn includes_are_inlined_where_they_appear() {
    check_with(
        "@1 before\n&include common.scenario\n@1 after\n&include sub/deeper.scenario\n",
        &[
            (
                "exp/common.scenario",
                "&module dispersy\n@! set v from-include\n@1 inside $v\n@0 early\n",
            ),
            ("exp/sub/deeper.scenario", "&include ../common2.scenario\n"),
            ("exp/common2.scenario", "@2 two_levels_down\n"),
        ],
        expect![[r#"
            module dispersy @1:9
            exp/common.scenario:4 @0 early
            exp/main.scenario:1 @1 before
            exp/common.scenario:3 @1 inside [from-include]
            exp/main.scenario:3 @1 after
            exp/common2.scenario:1 @2 two_levels_down
            var v=from-include
        "#]],
    );
}

#[test]
fn includes_fall_back_to_the_experiment_dir() {
    // `nested/a.scenario` includes `shared.scenario`, which is not beside
    // it but is in the experiment directory `exp`.
    check_with(
        "&include nested/a.scenario\n",
        &[
            ("exp/nested/a.scenario", "&include shared.scenario\n"),
            ("exp/shared.scenario", "@1 shared\n"),
        ],
        expect![[r#"
            exp/shared.scenario:1 @1 shared
        "#]],
    );
}

#[test]
fn include_not_found_and_cycles() {
    check_with(
        "&include missing.scenario\n&include a.scenario\n@9 still_parsed\n",
        &[
            ("exp/a.scenario", "&include b.scenario\n@1 in_a\n"),
            (
                "exp/b.scenario",
                "&include a.scenario\n&include main.scenario\n@2 in_b\n",
            ),
        ],
        expect![[r#"
            exp/a.scenario:2 @1 in_a
            exp/b.scenario:3 @2 in_b
            exp/main.scenario:3 @9 still_parsed
            exp/main.scenario:1:10: error[include-not-found]: included file `missing.scenario` not found (help: looked in `exp/missing.scenario`; includes are resolved relative to the including file, then the experiment directory)
            exp/b.scenario:1:10: error[include-cycle]: include cycle: exp/a.scenario -> exp/b.scenario -> exp/a.scenario (help: remove one of the `&include` lines of the cycle)
            exp/b.scenario:2:10: error[include-cycle]: include cycle: exp/main.scenario -> exp/a.scenario -> exp/b.scenario -> exp/main.scenario (help: remove one of the `&include` lines of the cycle)
        "#]],
    );
}

#[test]
fn include_self_is_a_cycle() {
    check(
        "&include main.scenario\n",
        expect![[r#"
            exp/main.scenario:1:10: error[include-cycle]: include cycle: exp/main.scenario -> exp/main.scenario (help: remove one of the `&include` lines of the cycle)
        "#]],
    );
}

#[test]
fn unreadable_include() {
    struct Broken;
    impl peerlab_lang::IncludeLoader for Broken {
        fn read(&mut self, _: &std::path::Path, _: u64) -> Result<Option<Vec<u8>>, String> {
            Err("permission denied".into())
        }
    }
    let (_, d) = parse_scenario(
        "s/main.scenario",
        "&include x.scenario\n",
        &mut Broken,
        &Vars::new(),
    );
    expect![[r#"
        s/main.scenario:1:10: error[include-unreadable]: cannot read included file `s/x.scenario`: permission denied
    "#]]
    .assert_eq(&dump(&Default::default(), &d));
}

#[test]
fn include_path_may_use_variables_and_quotes() {
    check_with(
        "&include \"$EXPERIMENT_NAME common.scenario\"\n",
        &[("exp/demo common.scenario", "@1 ok\n")],
        expect![[r#"
            exp/demo common.scenario:1 @1 ok
        "#]],
    );
}

#[test]
fn every_error_of_a_file_is_reported_and_good_lines_kept() {
    check(
        "@1 good_one\n@x bad_time\n@2 bad {0}\n&nope\n@3 good_two $MISSING\n@4 good_three\n",
        expect![[r#"
            exp/main.scenario:1 @1 good_one
            exp/main.scenario:6 @4 good_three
            exp/main.scenario:2:1: error[bad-time]: bad time `@x` (help: times are `@90`, `@1:30`, `@0:10.5` or `@1:00:00`: whole hours and minutes, seconds may be fractional)
            exp/main.scenario:3:9: error[bad-selector]: bad peer selector item `0`: instance ids start at 1 (help: a selector lists ids and ranges: `{1,3-5}`, or `{!2}` for all but 2)
            exp/main.scenario:4:1: error[unknown-directive]: unknown directive `&nope` (help: the directives are `&module NAME` and `&include PATH`)
            exp/main.scenario:5:13: error[unknown-variable]: unknown variable `$MISSING` (help: define it first with `@! set NAME VALUE`, or set it in the config or the environment)
        "#]],
    );
}

#[test]
fn scenario_helpers() {
    let (s, d) = parse_scenario(
        "x",
        "@! echo a\n@@ setup\n@1:30 a {1-3}\n@10 b {!9}\n@0:5 c\n",
        &mut MemoryLoader::new(),
        &Vars::new(),
    );
    assert!(d.is_empty());
    assert_eq!(s.timeline_length(), 90.0);
    assert_eq!(s.count(peerlab_lang::PhaseKind::Load), 1);
    assert_eq!(s.count(peerlab_lang::PhaseKind::Setup), 1);
    assert_eq!(s.count(peerlab_lang::PhaseKind::Timed), 3);
    assert!(s.check_peers(9).is_empty());
    let out: Vec<String> = s.check_peers(2).iter().map(|d| d.render_short()).collect();
    expect![[r#"
        [
            "x:4:7: warning[peer-out-of-range]: peer selector `{!9}` excludes instance 9, but the experiment runs only 2 instances",
            "x:3:9: warning[peer-out-of-range]: peer selector `{1-3}` names instances up to 3, but the experiment runs only 2 instances (help: the command runs on the instances that exist; the others are ignored)",
        ]
    "#]]
    .assert_debug_eq(&out);
}

#[test]
fn runaway_include_nesting_is_stopped() {
    // a0 includes a1 includes a2 ... : no cycle, but deeper than the limit.
    let mut loader = MemoryLoader::new();
    for i in 0..40 {
        loader = loader.with_file(
            format!("d/a{i}.scenario"),
            format!("&include a{}.scenario\n", i + 1),
        );
    }
    let (_, d) = parse_scenario(
        "d/main.scenario",
        "&include a0.scenario\n",
        &mut loader,
        &Vars::new(),
    );
    let out: Vec<String> = d.iter().map(|d| d.render_short()).collect();
    expect![[r#"
        [
            "d/a30.scenario:1:10: error[include-depth]: includes nest deeper than 32 files",
        ]
    "#]]
    .assert_debug_eq(&out);
}

#[test]
fn several_trailing_groups_are_group_arguments() {
    check(
        concat!(
            "@1 partition {1-3} {4-5}\n",
            "@2 partition {1} {2} {3,5}\n",
            "@3 echo {1} {2} x\n",
            "@4 partition {1-3} {!4}\n",
            "@5 partition {} {2}\n",
        ),
        expect![[r#"
            exp/main.scenario:1 @1 partition [{1-3}] [{4-5}]
            exp/main.scenario:2 @2 partition [{1}] [{2}] [{3,5}]
            exp/main.scenario:3:9: error[selector-not-last]: the peer selector must come last on the line (help: move `{…}` to the end, or quote the argument if the braces are meant literally)
            exp/main.scenario:3:13: error[selector-not-last]: the peer selector must come last on the line (help: move `{…}` to the end, or quote the argument if the braces are meant literally)
            exp/main.scenario:4:20: error[bad-group]: a group of instances must list ids, like `{1-3}` (help: `{}` and `{!…}` select, they do not name a group)
            exp/main.scenario:5:14: error[bad-group]: a group of instances must list ids, like `{1-3}` (help: `{}` and `{!…}` select, they do not name a group)
        "#]],
    );
}
