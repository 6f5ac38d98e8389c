//! `example`: a small peerlab plugin that exercises the plugin ABI: typed
//! positional, keyword, defaulted and variadic arguments, return values,
//! timers, config keys, statistics, metrics of each kind (and one call
//! that records an undeclared metric on purpose), the verdict hook, and a
//! callback that panics on purpose. The end-to-end tests load it by name and by path.
//!
//! It does no I/O of its own; everything goes through the host context.

use std::collections::BTreeMap;
use std::time::Duration;

use peerlab_plugin_api::{Host, IncomingMessage, Outputs, Verdict, module};

/// Per-instance state of the example module.
#[derive(Debug, Default)]
pub struct Example {
    total: i64,
    ticks: u64,
}

/// Exercises the plugin ABI: typed arguments, timers, verdicts, panics.
#[module(
    name = "example",
    config = ["example_start: the sum `add` starts from (default 0)"],
    metrics = [
        counter(bumps, unit = "bumps", "what `bump` added up"),
        gauge(level, unit = "units", "the last `level` set"),
        observation(latency, unit = "ms", headline, "each `sample` recorded"),
        counter("per_peer/*", unit = "calls", "`bump_peer N` calls, one counter per N"),
    ]
)]
impl Example {
    /// Make the instance; reads the optional config key `example_start`.
    #[create]
    fn new(host: &mut Host) -> Result<Self, String> {
        let total = host.config_parse::<i64>("example_start")?.unwrap_or(0);
        Ok(Example { total, ticks: 0 })
    }

    /// Greet someone: `greet NAME [times=N] [loud=BOOL]`.
    #[callback]
    fn greet(
        &mut self,
        host: &mut Host,
        name: String,
        #[kw(default = 1, help = "how often")] times: i64,
        #[kw] loud: Option<bool>,
    ) -> Result<(), String> {
        if times < 0 {
            return Err(format!("times must not be negative, got {times}"));
        }
        for _ in 0..times {
            let line = format!("hello {name} from {}", host.instance_id());
            host.print(if loud == Some(true) {
                line.to_uppercase()
            } else {
                line
            });
        }
        Ok(())
    }

    /// Add a number to the running total: `add VALUE [scale=FLOAT]`.
    #[callback]
    fn add(&mut self, host: &mut Host, value: i64, #[kw] scale: Option<f64>) -> i64 {
        let v = match scale {
            Some(s) => (value as f64 * s).round() as i64,
            None => value,
        };
        self.total += v;
        host.stat_add("example_added", v as f64);
        self.total
    }

    /// Print the running total as `total N`.
    #[callback]
    fn print_total(&mut self, host: &mut Host) {
        host.print(format!("total {}", self.total));
    }

    /// Print all words joined by spaces: `shout WORD...`.
    #[callback]
    fn shout(&mut self, host: &mut Host, #[rest] words: Vec<String>) {
        host.print(words.join(" ").to_uppercase());
    }

    /// Tick `count` times, `every` apart, on timers: `tick_every DURATION [count=N]`.
    #[callback]
    fn tick_every(&mut self, host: &mut Host, every: Duration, #[kw(default = 3)] count: i64) {
        for i in 1..=count.max(0) as u64 {
            host.set_timer(every * i as u32, i);
        }
    }

    /// Ask the module `other` for its total through the host and print it.
    #[callback]
    fn ask(&mut self, host: &mut Host, module: String) -> Result<(), String> {
        let v = host.call_module(
            &module,
            "add",
            peerlab_plugin_api::Invocation::new().arg(0i64),
        )?;
        host.print(format!(
            "{module} says {}",
            v.map(|v| v.to_string()).unwrap_or_default()
        ));
        Ok(())
    }

    /// Add to the counter metric `bumps`: `bump [BY]` (default 1).
    #[callback]
    fn bump(&mut self, host: &mut Host, #[arg(default = 1.0)] by: f64) {
        host.counter_add("bumps", by);
    }

    /// Count one call in the family member `per_peer/N`: `bump_peer N`.
    #[callback]
    fn bump_peer(&mut self, host: &mut Host, peer: i64) {
        host.counter_add(&format!("per_peer/{peer}"), 1.0);
    }

    /// Set the gauge metric `level`: `level VALUE`.
    #[callback]
    fn level(&mut self, host: &mut Host, value: f64) {
        host.gauge_set("level", value);
    }

    /// Record samples of the observation metric `latency`: `sample MS...`.
    #[callback]
    fn sample(&mut self, host: &mut Host, #[rest] values: Vec<f64>) {
        for v in values {
            host.observe("latency", v);
        }
    }

    /// Record a metric that was never declared (tests that the host says so).
    #[callback]
    fn misrecord(&mut self, host: &mut Host) {
        host.counter_add("bumsp", 1.0);
    }

    /// Panic on purpose (tests that the host survives a panicking plugin).
    #[callback]
    fn boom(&mut self, message: String) {
        panic!("{message}");
    }

    /// Print the seeded random number of this instance.
    #[callback]
    fn roll(&mut self, host: &mut Host) {
        let r = host.random_u64() % 6 + 1;
        host.print(format!("rolled {r}"));
    }

    #[on_timer]
    fn tick(&mut self, host: &mut Host, token: u64) {
        self.ticks += 1;
        host.print(format!("tick {token} at {}", host.now()));
    }

    #[on_message]
    fn message(&mut self, host: &mut Host, message: &IncomingMessage) {
        host.print(format!("got {} from {}", message.name, message.sender));
    }

    #[on_start]
    fn started(&mut self, host: &mut Host) {
        host.print(format!(
            "started {} of {}",
            host.instance_id(),
            host.instance_count()
        ));
    }

    #[on_stop]
    fn stopping(&mut self, host: &mut Host) {
        host.print(format!("stopping after {} ticks", self.ticks));
    }

    /// Verdict: every instance printed the same `total N` line (its
    /// last); an instance without one fails by name, and a run without
    /// instances is not judged.
    #[check]
    fn verdicts(outputs: &Outputs) -> Vec<Verdict> {
        let ids = outputs.instance_ids();
        let n = ids.len();
        if n == 0 {
            return vec![Verdict::fail(
                "totals agree",
                "not judged: the run has no instances",
            )];
        }
        let mut totals: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        let mut without = Vec::new();
        for i in ids {
            match outputs
                .lines(i)
                .into_iter()
                .rev()
                .find_map(|l| l.strip_prefix("total ").map(str::to_string))
            {
                Some(t) => totals.entry(t).or_default().push(i),
                None => without.push(i.to_string()),
            }
        }
        if without.is_empty() && totals.len() == 1 {
            return vec![Verdict::pass(
                "totals agree",
                format!("{n} instances printed the same total"),
            )];
        }
        let mut why: Vec<String> = totals
            .iter()
            .map(|(t, who)| {
                let who: Vec<String> = who.iter().map(u64::to_string).collect();
                format!("total {t} from {}", who.join(","))
            })
            .collect();
        if !without.is_empty() {
            why.push(format!("no total from {}", without.join(",")));
        }
        vec![Verdict::fail(
            "totals agree",
            format!("{n} instances: {}", why.join("; ")),
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerlab_plugin_api::abi_stable::std_types::{ROption, RStr, RString, RVec};
    use peerlab_plugin_api::testing::TestHost;
    use peerlab_plugin_api::{Module, RawArg, RunOutputs, bind};

    /// What each instance printed, as the host's `RunOutputs`.
    struct FakeOutputs(Vec<Vec<&'static str>>);

    impl RunOutputs for FakeOutputs {
        fn instance_ids(&self) -> RVec<u64> {
            (1..=self.0.len() as u64).collect()
        }
        fn lines(&self, instance: u64) -> RVec<RString> {
            self.0[instance as usize - 1]
                .iter()
                .map(|l| RString::from(*l))
                .collect()
        }
        fn succeeded(&self, _instance: u64) -> bool {
            true
        }
        fn status(&self, _instance: u64) -> RString {
            "finished".into()
        }
        fn config(&self, _key: RStr<'_>) -> ROption<RString> {
            ROption::RNone
        }
        fn config_keys(&self) -> RVec<RString> {
            RVec::new()
        }
    }

    fn judged(printed: Vec<Vec<&'static str>>) -> (bool, String) {
        let fake = FakeOutputs(printed);
        let v = Example::verdicts(&Outputs::from_impl(&fake));
        assert_eq!(v.len(), 1);
        (v[0].passed, v[0].message.to_string())
    }

    #[test]
    fn the_verdict_judges_every_instance_and_no_instances_is_not_a_pass() {
        assert_eq!(
            judged(vec![vec!["total 3"], vec!["total 2", "total 3"]]),
            (true, "2 instances printed the same total".into())
        );
        assert_eq!(
            judged(vec![vec!["total 3"], vec!["total 4"], vec!["hello"]]),
            (
                false,
                "3 instances: total 3 from 1; total 4 from 2; no total from 3".into()
            )
        );
        assert_eq!(
            judged(vec![vec!["total 3"], vec![]]),
            (false, "2 instances: total 3 from 1; no total from 2".into())
        );
        assert_eq!(
            judged(Vec::new()),
            (false, "not judged: the run has no instances".into())
        );
    }

    #[test]
    fn callbacks_work_on_a_test_host() {
        let mut th = TestHost::new(2, 3).with_config("example_start", "10");
        let mut m = Example::new(&mut th.host()).unwrap();
        m.greet(&mut th.host(), "bob".into(), 2, Some(true))
            .unwrap();
        assert_eq!(m.add(&mut th.host(), 5, None), 15);
        m.print_total(&mut th.host());
        assert_eq!(
            th.prints,
            ["HELLO BOB FROM 2", "HELLO BOB FROM 2", "total 15"]
        );
        assert_eq!(th.stat("example_added"), Some(5.0));
    }

    #[test]
    fn the_generated_table_binds_scenario_words() {
        let specs = Example::describe();
        let greet = specs.iter().find(|s| s.name == "greet").unwrap();
        assert_eq!(
            greet.help,
            "Greet someone: `greet NAME [times=N] [loud=BOOL]`."
        );
        assert_eq!(
            greet.usage(),
            "greet name:string [times=integer = 1] [loud=bool]"
        );
        let words: Vec<RawArg> = ["ann", "loud=yes"]
            .iter()
            .map(|w| RawArg::from_word(w))
            .collect();
        let args = bind(greet, &words).unwrap();
        let mut th = TestHost::new(1, 1);
        let mut m = Example::default();
        m.call(&mut th.host(), "greet", &args).unwrap();
        assert_eq!(th.prints, ["HELLO ANN FROM 1"]);
    }

    #[test]
    fn metrics_of_each_kind_are_declared_and_recorded() {
        let mut th = TestHost::new(1, 2).with_metrics(Example::METRICS);
        let mut m = Example::default();
        m.bump(&mut th.host(), 2.5);
        m.bump(&mut th.host(), 1.0);
        m.bump_peer(&mut th.host(), 7);
        m.level(&mut th.host(), 4.0);
        m.level(&mut th.host(), -1.5);
        m.sample(&mut th.host(), vec![3.0, 12.5]);
        assert!(th.metric_errors.is_empty(), "{:?}", th.metric_errors);
        assert_eq!(th.counter("bumps"), 3.5);
        assert_eq!(th.counter("per_peer/7"), 1.0);
        assert_eq!(th.gauge("level"), Some(-1.5));
        assert_eq!(th.observations("latency"), [3.0, 12.5]);
        m.misrecord(&mut th.host());
        m.bump(&mut th.host(), -1.0);
        m.sample(&mut th.host(), vec![f64::NAN]);
        assert_eq!(
            th.metric_errors,
            [
                "metric `bumsp` is not declared",
                "counter_add(`bumps`, -1): counter values must be finite and >= 0",
                "observe(`latency`, NaN): observation values must be finite and >= 0",
            ]
        );
    }

    #[test]
    fn timers_are_recorded_and_fired_by_the_test() {
        let mut th = TestHost::new(1, 1);
        let mut m = Example::default();
        m.tick_every(&mut th.host(), Duration::from_secs(2), 2);
        assert_eq!(th.timers, [(2.0, 1), (4.0, 2)]);
        th.now = 2.0;
        Module::on_timer(&mut m, &mut th.host(), 1).unwrap();
        assert_eq!(th.prints, ["tick 1 at 2"]);
    }

    #[test]
    fn a_panic_becomes_an_error_naming_module_and_callback() {
        let mut th = TestHost::new(1, 1);
        let root = peerlab_root_module();
        let mut inst = (root.new_instance())(peerlab_plugin_api::Host::from_impl(&mut th).raw())
            .into_result()
            .unwrap();
        let spec = Example::describe()
            .into_iter()
            .find(|s| s.name == "boom")
            .unwrap();
        let args = bind(&spec, &[RawArg::from_word("kaput")]).unwrap();
        let err = inst
            .call(
                peerlab_plugin_api::Host::from_impl(&mut th).raw(),
                "boom".into(),
                args.clone(),
            )
            .into_result()
            .unwrap_err();
        // the message, then where the panic happened
        assert!(
            err.as_str()
                .starts_with("module `example` panicked in callback `boom`: kaput (at ")
                && err.as_str().contains("src/lib.rs:"),
            "{err}"
        );
        let again = inst
            .call(
                peerlab_plugin_api::Host::from_impl(&mut th).raw(),
                "boom".into(),
                args,
            )
            .into_result()
            .unwrap_err();
        assert!(again.contains("unusable after an earlier panic"), "{again}");
    }
}
