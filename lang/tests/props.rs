//! Property tests: the parsers never panic on arbitrary input, and what
//! peerlab writes out (selectors, generated scenarios and configs) reads
//! back to the same value.

use std::collections::BTreeMap;

use peerlab_lang::diag::Format;
use peerlab_lang::peerspec::parse_peerspec;
use peerlab_lang::{
    Experiment, IdSet, MemoryLoader, PeerSpec, Phase, RawValue, SourceMap, Vars, parse_config,
    parse_scenario, render_all, value,
};
use proptest::prelude::*;

/// Text biased towards the languages' special characters.
fn scenario_like() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("@".to_string()),
        Just("@@".to_string()),
        Just("@!".to_string()),
        Just("&module".to_string()),
        Just("&include".to_string()),
        Just(" ".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\t".to_string()),
        Just("#".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("!".to_string()),
        Just(",".to_string()),
        Just("-".to_string()),
        Just(":".to_string()),
        Just(".".to_string()),
        Just("=".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("$".to_string()),
        Just("${".to_string()),
        Just("set".to_string()),
        Just("é".to_string()),
        "[0-9]{1,3}",
        "[a-z_]{1,6}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(atom, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn scenario_parser_never_panics(text in scenario_like()) {
        let mut loader = MemoryLoader::new().with_file("inc.scenario", "@1 included\n&include inc.scenario\n");
        let vars = Vars::new().with_config([("A", "1")]);
        let (s, diags) = parse_scenario("main.scenario", &text, &mut loader, &vars);
        // Rendering every diagnostic in every format never panics either.
        for f in [Format::Human { color: false }, Format::Short, Format::Json] {
            render_all(&diags, &s.sources, f);
        }
        for c in &s.commands {
            prop_assert!(!c.callback.is_empty());
        }
    }

    #[test]
    fn scenario_parser_never_panics_on_any_string(text in any::<String>()) {
        let (s, diags) = parse_scenario("main.scenario", &text, &mut MemoryLoader::new(), &Vars::new());
        render_all(&diags, &s.sources, Format::Human { color: true });
    }

    #[test]
    fn config_parser_never_panics(text in scenario_like(), env_val in "[ -~]{0,8}") {
        let (raw, diags) = parse_config("t.conf", &text);
        let mut sources = SourceMap::new();
        sources.add(raw.source.clone());
        render_all(&diags, &sources, Format::Human { color: false });
        let env: BTreeMap<String, String> = [("PEERLAB_INSTANCES_TO_RUN".to_string(), env_val)].into();
        let (_, diags) = Experiment::from_config(&raw, &env);
        render_all(&diags, &sources, Format::Json);
    }

    #[test]
    fn config_parser_never_panics_on_any_string(text in any::<String>()) {
        let (raw, _) = parse_config("t.conf", &text);
        Experiment::from_config(&raw, &BTreeMap::new());
    }

    #[test]
    fn value_conversions_never_panic(s in any::<String>()) {
        let _ = value::parse_int(&s);
        let _ = value::parse_uint(&s);
        let _ = value::parse_float(&s);
        let _ = value::parse_bool(&s);
        let _ = value::parse_duration(&s);
        let _ = value::parse_clock(&s);
        let _ = parse_peerspec(&s);
    }

    #[test]
    fn peerspec_display_round_trips(
        ranges in prop::collection::vec((1u32..50, 0u32..5), 1..6),
        negated in any::<bool>(),
    ) {
        let mut set = IdSet::new();
        for (lo, len) in ranges {
            set.insert_range(lo, lo + len);
        }
        let spec = if negated { PeerSpec::AllBut(set) } else { PeerSpec::Only(set) };
        let text = spec.to_string();
        let (back, errs) = parse_peerspec(&text[1..text.len() - 1]);
        prop_assert!(errs.is_empty());
        prop_assert_eq!(back, spec);
    }

    #[test]
    fn generated_scenarios_round_trip(cmds in prop::collection::vec(command(), 0..20)) {
        let mut text = String::new();
        for c in &cmds {
            text.push_str(&c.render());
            text.push('\n');
        }
        let (s, diags) = parse_scenario("g.scenario", &text, &mut MemoryLoader::new(), &Vars::new());
        prop_assert!(diags.is_empty(), "{:?}\n{}", diags, text);
        // Expected order: load, setup, then stable by time.
        let mut expected: Vec<(usize, &Cmd)> = cmds.iter().enumerate().collect();
        expected.sort_by(|a, b| a.1.rank().partial_cmp(&b.1.rank()).expect("finite"));
        prop_assert_eq!(s.commands.len(), expected.len());
        for (got, (line, want)) in s.commands.iter().zip(expected) {
            prop_assert_eq!(got.loc.line as usize, line + 1);
            prop_assert_eq!(&got.callback, &want.callback);
            prop_assert_eq!(got.args.iter().map(|a| a.value.clone()).collect::<Vec<_>>(), want.args.clone());
            prop_assert_eq!(
                got.kwargs.iter().map(|k| (k.name.clone(), k.value.clone())).collect::<Vec<_>>(),
                want.kwargs.clone()
            );
            prop_assert_eq!(&got.peers, &want.peers);
            match (got.phase, want.phase) {
                (Phase::At(a), Phase::At(b)) => prop_assert!((a - b).abs() < 1e-9, "{} vs {}", a, b),
                (a, b) => prop_assert_eq!(a, b),
            }
        }
    }

    #[test]
    fn generated_configs_round_trip(entries in prop::collection::btree_map("[a-z][a-z_]{0,8}", config_value(), 0..10)) {
        let mut text = String::new();
        for (k, v) in &entries {
            text.push_str(&format!("{k} = {}\n", v.1));
        }
        let (raw, diags) = parse_config("g.conf", &text);
        prop_assert!(diags.is_empty(), "{:?}\n{}", diags, text);
        let got: BTreeMap<String, RawValue> = raw.to_map();
        let want: BTreeMap<String, RawValue> = entries.into_iter().map(|(k, v)| (k, v.0)).collect();
        prop_assert_eq!(got, want);
    }
}

/// A generated command and how it was meant.
#[derive(Debug, Clone)]
struct Cmd {
    phase: Phase,
    time_text: String,
    callback: String,
    args: Vec<String>,
    kwargs: Vec<(String, String)>,
    peers: PeerSpec,
}

impl Cmd {
    fn rank(&self) -> (u8, f64) {
        match self.phase {
            Phase::Load => (0, 0.0),
            Phase::Setup => (1, 0.0),
            Phase::At(t) => (2, t),
        }
    }

    /// Write the command, single-quoting every argument (escaping quotes the
    /// shell way: `'it'\''s'`).
    fn render(&self) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let mut out = format!("{} {}", self.time_text, self.callback);
        for a in &self.args {
            out.push(' ');
            out.push_str(&quote(a));
        }
        for (k, v) in &self.kwargs {
            out.push_str(&format!(" {k}={}", quote(v)));
        }
        if self.peers != PeerSpec::All {
            out.push_str(&format!("  {}", self.peers));
        }
        out
    }
}

fn command() -> impl Strategy<Value = Cmd> {
    let phase = prop_oneof![
        Just((Phase::Load, "@!".to_string())),
        Just((Phase::Setup, "@@".to_string())),
        (
            0u32..3,
            0u32..120,
            0u32..120,
            prop::option::of(0u32..100),
            any::<bool>()
        )
            .prop_map(|(h, m, s, frac, at)| {
                let mut text = if h > 0 {
                    format!("{h}:{m}:{s}")
                } else if m > 0 {
                    format!("{m}:{s}")
                } else {
                    s.to_string()
                };
                let mut t = f64::from(h * 3600 + m * 60 + s);
                if let Some(f) = frac {
                    text.push_str(&format!(".{f:02}"));
                    t += f64::from(f) / 100.0;
                }
                (Phase::At(t), if at { format!("@{text}") } else { text })
            }),
    ];
    let callback = "[a-z_][a-z0-9_]{0,10}(\\.[a-z_][a-z0-9_]{0,6})?"
        .prop_filter("set is special", |c| c != "set");
    // As in Gumby, `NAME=...` is a keyword however it is quoted, so a
    // positional argument never has that form.
    let arg = "[ -~]{0,8}".prop_filter("a keyword, not a positional argument", |a: &String| {
        let name = a.len()
            - a.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_')
                .len();
        !(name > 0 && a[name..].starts_with('='))
    });
    let kwargs = prop::collection::btree_map("[a-z_][a-z0-9_]{0,5}", "[ -~]{0,6}", 0..3);
    let peers = prop_oneof![
        Just(PeerSpec::All),
        prop::collection::vec((1u32..30, 0u32..4), 1..4).prop_map(|r| {
            let mut s = IdSet::new();
            r.into_iter().for_each(|(l, n)| s.insert_range(l, l + n));
            PeerSpec::Only(s)
        }),
        (1u32..30).prop_map(|i| {
            let mut s = IdSet::new();
            s.insert(i);
            PeerSpec::AllBut(s)
        }),
    ];
    (
        phase,
        callback,
        prop::collection::vec(arg, 0..4),
        kwargs,
        peers,
    )
        .prop_map(|((phase, time_text), callback, args, kwargs, peers)| Cmd {
            phase,
            time_text,
            callback,
            args,
            kwargs: kwargs.into_iter().collect(),
            peers,
        })
}

/// A config value and how to write it.
fn config_value() -> impl Strategy<Value = (RawValue, String)> {
    let item = "[a-zA-Z0-9_./:@-]([a-zA-Z0-9_./:@ -]{0,8}[a-zA-Z0-9_./:@-])?";
    prop_oneof![
        item.prop_map(|s: String| (RawValue::Str(s.clone()), s)),
        "[ -~&&[^\"]]{0,10}".prop_map(|s: String| (RawValue::Str(s.clone()), format!("\"{s}\""))),
        "[ -~&&[^']]{0,10}"
            .prop_map(|s: String| (RawValue::Str(s.clone()), format!("'{s}'  # comment"))),
        prop::collection::vec(item, 1..4).prop_map(|v: Vec<String>| {
            let text = if v.len() == 1 {
                format!("{},", v[0])
            } else {
                v.join(", ")
            };
            (RawValue::List(v), text)
        }),
    ]
}
