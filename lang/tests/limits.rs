//! The limits on what one parse reads and builds (`peerlab_lang::Limits`):
//! includes that multiply, too many commands, files too large, invalid
//! UTF-8, a byte-order mark, a huge line in a diagnostic, and a flood of
//! diagnostics. Each crossing is an error at the file:line that crossed it,
//! and the parse stops there instead of exhausting the machine.

use peerlab_lang::{
    Format, Limits, MemoryLoader, SourceMap, Vars, parse_config, parse_scenario,
    parse_scenario_with, render_all,
};
use proptest::prelude::*;

/// `f0.scenario` .. `f{n-1}.scenario`, each with one command and two
/// includes of the next: the whole expands to 2^n commands.
fn doubling(n: usize) -> MemoryLoader {
    let mut loader = MemoryLoader::new();
    for i in 0..n {
        let next = if i + 1 < n {
            format!(
                "&include f{}.scenario\n&include f{}.scenario\n",
                i + 1,
                i + 1
            )
        } else {
            String::new()
        };
        loader = loader.with_file(format!("f{i}.scenario"), format!("@1 c{i}\n{next}"));
    }
    loader
}

#[test]
fn includes_that_double_stop_at_the_include_limit() {
    // 14 levels: 16,383 commands from 32,766 includes without a limit.
    let mut loader = doubling(14);
    let (s, d) = parse_scenario(
        "main.scenario",
        "&include f0.scenario\n",
        &mut loader,
        &Vars::new(),
    );
    let errors: Vec<String> = d.iter().map(|d| d.render_short()).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "f12.scenario:2:10: error[too-many-includes]: more than 1,000 includes: peerlab stops reading the scenario here"
        ),
        "{errors:#?}"
    );
    assert!(s.commands.len() <= 1_001, "{}", s.commands.len());
}

#[test]
fn the_issue_s_23_doubling_files_end_quickly() {
    let mut loader = doubling(23);
    let (s, d) = parse_scenario(
        "main.scenario",
        "&include f0.scenario\n",
        &mut loader,
        &Vars::new(),
    );
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].code, Some("too-many-includes"));
    assert!(s.commands.len() <= 1_001);
}

#[test]
fn commands_beyond_the_limit_stop_the_parse_at_that_line() {
    let limits = Limits {
        commands: 5,
        ..Limits::DEFAULT
    };
    let text = "@1 a\n".repeat(8);
    let (s, d) = parse_scenario_with(
        "s.scenario",
        &text,
        &mut MemoryLoader::new(),
        &Vars::new(),
        &limits,
    );
    assert_eq!(s.commands.len(), 5);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        d[0].render_short(),
        "s.scenario:6:1: error[too-many-commands]: more than 5 commands (with includes expanded): peerlab stops reading the scenario here (help: a peer selector (`{1-100}`) runs one command on many instances; check for an include that repeats (docs/compat.md, \"Limits\"))"
    );
}

#[test]
fn the_default_command_limit_is_half_a_million() {
    let text = "@1 a\n".repeat(500_001);
    let (s, d) = parse_scenario("s.scenario", &text, &mut MemoryLoader::new(), &Vars::new());
    assert_eq!(s.commands.len(), 500_000);
    assert_eq!(d.len(), 1);
    assert!(
        d[0].render_short().starts_with(
            "s.scenario:500001:1: error[too-many-commands]: more than 500,000 commands"
        ),
        "{}",
        d[0]
    );
}

#[test]
fn an_include_over_the_size_limit_is_refused_at_the_include_line() {
    let limits = Limits {
        scenario_bytes: 100,
        ..Limits::DEFAULT
    };
    let mut loader = MemoryLoader::new()
        .with_file("big.scenario", "@1 a\n".repeat(21))
        .with_file("ok.scenario", "@1 b\n".repeat(20));
    let (s, d) = parse_scenario_with(
        "m.scenario",
        "&include ok.scenario\n&include big.scenario\n@2 c\n",
        &mut loader,
        &Vars::new(),
        &limits,
    );
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].render_short().starts_with(
            "m.scenario:2:10: error[file-too-large]: `big.scenario` is larger than 100 bytes, the limit for one file"
        ),
        "{}",
        d[0]
    );
    // The rest of the scenario is still read.
    assert_eq!(s.commands.len(), 21);
}

#[test]
fn all_files_together_have_a_limit_too() {
    let limits = Limits {
        total_bytes: 200,
        ..Limits::DEFAULT
    };
    let mut loader = MemoryLoader::new().with_file("i.scenario", "@1 a\n".repeat(12));
    let (_, d) = parse_scenario_with(
        "m.scenario",
        &"&include i.scenario\n".repeat(5),
        &mut loader,
        &Vars::new(),
        &limits,
    );
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(
        d[0].render_short().starts_with(
            "m.scenario:2:10: error[scenario-too-large]: the scenario and its includes are larger than 200 bytes in all"
        ),
        "{}",
        d[0]
    );
}

#[test]
fn invalid_utf8_in_an_include_is_located_in_that_file() {
    let mut loader =
        MemoryLoader::new().with_bytes("inc.scenario", b"@1 a\n@2 b \xe9t\xe9\n".to_vec());
    let (_, d) = parse_scenario(
        "m.scenario",
        "@0 x\n&include inc.scenario\n",
        &mut loader,
        &Vars::new(),
    );
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        d[0].render_short(),
        "inc.scenario:2:6: error[invalid-utf8]: `inc.scenario` is not valid UTF-8: byte 0xe9 at line 2, byte 6 of the line (byte 10 of the file) (help: included at m.scenario:2:10; scenario files are UTF-8 text)"
    );
    let human = render_all(&d, &SourceMap::new(), Format::Human { color: false });
    assert!(human.contains("--> inc.scenario:2:6"), "{human}");
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let mut loader = MemoryLoader::new().with_file("inc.scenario", "\u{feff}@2 b\n");
    let (s, d) = parse_scenario(
        "m.scenario",
        "\u{feff}@1 a\n&include inc.scenario\n",
        &mut loader,
        &Vars::new(),
    );
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(s.commands.len(), 2);
    assert_eq!(s.commands[0].loc.column, 1);
    let (raw, d) = parse_config("x.conf", "\u{feff}experiment_name = x\n");
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(raw.get("experiment_name").unwrap().value.to_string(), "x");
    assert_eq!(
        peerlab_lang::decode_source(b"\xef\xbb\xbfa = 1\n".to_vec(), 100).unwrap(),
        "a = 1\n"
    );
}

#[test]
fn a_huge_bad_line_is_not_echoed_in_full() {
    let line = format!("@1 {}\n", "x".repeat(4 << 20)).replace("@1 x", "@1 1x");
    for text in [line.clone(), format!("nonsense{}", "y".repeat(4 << 20))] {
        let (s, d) = parse_scenario(
            "big.scenario",
            &text,
            &mut MemoryLoader::new(),
            &Vars::new(),
        );
        assert!(!d.is_empty());
        for format in [Format::Human { color: false }, Format::Short, Format::Json] {
            let out = render_all(&d, &s.sources, format);
            assert!(out.len() < 4096, "{format:?}: {} bytes", out.len());
            assert!(out.contains('…'), "{format:?}: {out}");
        }
    }
}

#[test]
fn a_flood_of_problems_keeps_the_first_thousand() {
    let (_, d) = parse_scenario(
        "bad.scenario",
        &"nonsense\n".repeat(5_000),
        &mut MemoryLoader::new(),
        &Vars::new(),
    );
    assert_eq!(d.len(), 1_001);
    assert_eq!(
        d[1_000].render_short(),
        "error[too-many-problems]: 4000 more problems not shown (peerlab shows the first 1000) (help: fix the ones above and check again)"
    );
    let (_, d) = parse_config("bad.conf", &"nonsense\n".repeat(5_000));
    assert_eq!(d.len(), 1_001);
}

#[test]
fn a_config_over_its_limit_is_refused_whole() {
    let (raw, d) = parse_config("big.conf", &"a = 1\n".repeat(200_000));
    assert!(raw.entries.is_empty());
    assert_eq!(d.len(), 1);
    assert!(
        d[0].render_short().starts_with(
            "big.conf:1:1: error[file-too-large]: `big.conf` is larger than 1 MiB, the limit for one file"
        ),
        "{}",
        d[0]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any include graph (files including each other any number of times,
    /// cycles included) under any small limits: the parse ends, and what it
    /// built stays within the limits.
    #[test]
    fn no_include_graph_escapes_the_limits(
        graph in prop::collection::vec(prop::collection::vec(0usize..6, 0..4), 1..6),
        commands in 1usize..50,
        includes in 1usize..50,
        diagnostics in 1usize..20,
    ) {
        let mut loader = MemoryLoader::new();
        for (i, targets) in graph.iter().enumerate() {
            let mut text = format!("@1 c{i}\nbad line\n");
            for t in targets {
                text.push_str(&format!("&include f{t}.scenario\n"));
            }
            loader = loader.with_file(format!("f{i}.scenario"), text);
        }
        let limits = Limits { commands, includes, diagnostics, ..Limits::DEFAULT };
        let (s, d) = parse_scenario_with(
            "main.scenario",
            "&include f0.scenario\n&include f0.scenario\n",
            &mut loader,
            &Vars::new(),
            &limits,
        );
        prop_assert!(s.commands.len() <= commands);
        prop_assert!(d.len() <= diagnostics + 1);
        prop_assert!(d.iter().any(|d| d.is_error()));
    }
}
