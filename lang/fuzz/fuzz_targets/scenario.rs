//! Fuzz the scenario parser: any bytes, as text, must parse to a value and
//! diagnostics (never a panic), and every diagnostic must render.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerlab_lang::{Format, MemoryLoader, Vars, parse_scenario, render_all};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut loader = MemoryLoader::new().with_file("inc.scenario", "@1 inc\n&include main.scenario\n");
    let vars = Vars::new().with_config([("A", "1")]);
    let (scenario, diags) = parse_scenario("main.scenario", &text, &mut loader, &vars);
    for format in [Format::Human { color: false }, Format::Short, Format::Json] {
        render_all(&diags, &scenario.sources, format);
    }
});
