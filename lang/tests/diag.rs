//! The three renderings of a diagnostic (rich, short, JSON), snapshotted.

use expect_test::{Expect, expect};
use peerlab_lang::{Diagnostic, Format, MemoryLoader, SourceMap, Vars, parse_scenario, render_all};

fn check(text: &str, format: Format, expect: Expect) {
    let (s, diags) = parse_scenario(
        "exp/demo.scenario",
        text,
        &mut MemoryLoader::new(),
        &Vars::new(),
    );
    expect.assert_eq(&render_all(&diags, &s.sources, format));
}

const BAD: &str = "&module benaloh\n@1:30 share_local $MODULUS {1-3}\n@x stop\n";

#[test]
fn rich() {
    check(
        BAD,
        Format::Human { color: false },
        expect![[r#"
            error[unknown-variable]: unknown variable `$MODULUS`
             --> exp/demo.scenario:2:19
              |
            2 | @1:30 share_local $MODULUS {1-3}
              |                   ^^^^^^^^ not defined by `@! set`, the config or the environment
              |
            help: define it first with `@! set NAME VALUE`, or set it in the config or the environment

            error[bad-time]: bad time `@x`
             --> exp/demo.scenario:3:1
              |
            3 | @x stop
              | ^^ expected `[[h:]m:]s`, `@@` or `@!`
              |
            help: times are `@90`, `@1:30`, `@0:10.5` or `@1:00:00`: whole hours and minutes, seconds may be fractional

        "#]],
    );
}

#[test]
fn short() {
    check(
        BAD,
        Format::Short,
        expect![[r#"
            exp/demo.scenario:2:19: error[unknown-variable]: unknown variable `$MODULUS` (help: define it first with `@! set NAME VALUE`, or set it in the config or the environment)
            exp/demo.scenario:3:1: error[bad-time]: bad time `@x` (help: times are `@90`, `@1:30`, `@0:10.5` or `@1:00:00`: whole hours and minutes, seconds may be fractional)
        "#]],
    );
}

#[test]
fn json() {
    check(
        BAD,
        Format::Json,
        expect![[r#"
            {"severity":"error","code":"unknown-variable","message":"unknown variable `$MODULUS`","file":"exp/demo.scenario","line":2,"column":19,"span":[34,42],"label":"not defined by `@! set`, the config or the environment","help":"define it first with `@! set NAME VALUE`, or set it in the config or the environment"}
            {"severity":"error","code":"bad-time","message":"bad time `@x`","file":"exp/demo.scenario","line":3,"column":1,"span":[49,51],"label":"expected `[[h:]m:]s`, `@@` or `@!`","help":"times are `@90`, `@1:30`, `@0:10.5` or `@1:00:00`: whole hours and minutes, seconds may be fractional"}
        "#]],
    );
}

#[test]
fn columns_count_characters_and_spans_are_bytes() {
    check(
        "@1 cb é $X\n",
        Format::Json,
        expect![[r#"
            {"severity":"error","code":"unknown-variable","message":"unknown variable `$X`","file":"exp/demo.scenario","line":1,"column":9,"span":[9,11],"label":"not defined by `@! set`, the config or the environment","help":"define it first with `@! set NAME VALUE`, or set it in the config or the environment"}
        "#]],
    );
}

#[test]
fn without_source_or_location() {
    let sources = SourceMap::new();
    let located = Diagnostic::warning("unknown key `x`")
        .with_code("unknown-key")
        .with_label("here")
        .at(peerlab_lang::Location {
            file: "gone.conf".into(),
            span: 0..1,
            line: 4,
            column: 2,
        });
    let bare = Diagnostic::error("PEERLAB_SEED: bad value").with_help("use a number");
    expect![[r#"
        warning[unknown-key]: unknown key `x`
          --> gone.conf:4:2: here

        error: PEERLAB_SEED: bad value
         |
        help: use a number

    "#]]
    .assert_eq(&render_all(
        &[located.clone(), bare.clone()],
        &sources,
        Format::Human { color: false },
    ));
    expect![[r#"
        {"severity":"warning","code":"unknown-key","message":"unknown key `x`","file":"gone.conf","line":4,"column":2,"span":[0,1],"label":"here"}
        {"severity":"error","message":"PEERLAB_SEED: bad value","help":"use a number"}
    "#]]
    .assert_eq(&render_all(&[located, bare], &sources, Format::Json));
}

#[test]
fn has_errors_only_counts_errors() {
    let w = Diagnostic::warning("w");
    let n = Diagnostic::note("n");
    assert!(!peerlab_lang::has_errors(&[w.clone(), n.clone()]));
    assert!(peerlab_lang::has_errors(&[w, n, Diagnostic::error("e")]));
}
