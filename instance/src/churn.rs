//! The churn model's words: the distributions sessions and downtimes are
//! drawn from (`exp(10m)`, `uniform(1m,5m)`, `weibull(0.5,10m)`,
//! `pareto(1.5,2m)`, or a plain duration), the store a returning instance
//! keeps (`store=kept|empty`), and the arguments of the presence commands
//! (`leave`, `join`, `restart`, `churn`) parsed and checked once, for
//! `peerlab check` (with the word at fault) and for the instance that runs
//! them.
//!
//! Owns: parsing, validation and inverse-CDF sampling (one uniform draw per
//! sample, from the caller's seeded RNG, so a run repeats). Must not: hold
//! an instance's state, read the clock or do I/O (`crate::presence` runs
//! the commands).

use std::fmt;

use rand::Rng;

/// The longest session or downtime a distribution may give (ten years):
/// draws are clamped to it, and a parameter above it is refused.
pub const MAX_SECONDS: f64 = 10.0 * 365.0 * 86_400.0;
/// The shortest draw (one millisecond): a session or downtime is never
/// zero, so an instance never leaves and returns at the same instant.
pub const MIN_SECONDS: f64 = 0.001;

/// A distribution of durations, in scenario seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    /// Always this long (`30s`, `fixed(30s)`).
    Fixed(f64),
    /// Exponential with this mean (`exp(10m)`): memoryless sessions.
    Exp { mean: f64 },
    /// Uniform between two durations (`uniform(1m,5m)`).
    Uniform { low: f64, high: f64 },
    /// Weibull with a shape and a scale (`weibull(0.5,10m)`), as measured
    /// session lengths of deployed P2P systems often are (shape < 1).
    Weibull { shape: f64, scale: f64 },
    /// Pareto with a shape and a minimum (`pareto(1.5,2m)`): heavy-tailed.
    Pareto { shape: f64, min: f64 },
}

impl Dist {
    /// One draw in scenario seconds, from one uniform number of `rng`
    /// (inverse transform; docs/network.md gives the equations), clamped
    /// to [`MIN_SECONDS`, `MAX_SECONDS`].
    pub fn sample(&self, rng: &mut impl Rng) -> f64 {
        // u in [0, 1): 1 - u is in (0, 1], so its logarithm is finite.
        let u: f64 = rng.random();
        let v = match *self {
            Dist::Fixed(d) => d,
            Dist::Exp { mean } => -mean * (1.0 - u).ln(),
            Dist::Uniform { low, high } => low + u * (high - low),
            Dist::Weibull { shape, scale } => scale * (-(1.0 - u).ln()).powf(1.0 / shape),
            Dist::Pareto { shape, min } => min * (1.0 - u).powf(-1.0 / shape),
        };
        if v.is_finite() {
            v.clamp(MIN_SECONDS, MAX_SECONDS)
        } else {
            MAX_SECONDS
        }
    }

    /// Its mean in scenario seconds (infinite for a Pareto of shape <= 1).
    pub fn mean(&self) -> f64 {
        match *self {
            Dist::Fixed(d) => d,
            Dist::Exp { mean } => mean,
            Dist::Uniform { low, high } => (low + high) / 2.0,
            Dist::Weibull { shape, scale } => scale * gamma(1.0 + 1.0 / shape),
            Dist::Pareto { shape, min } if shape > 1.0 => shape * min / (shape - 1.0),
            Dist::Pareto { .. } => f64::INFINITY,
        }
    }
}

/// Lanczos approximation of the gamma function (for the Weibull mean the
/// docs and tests state; not used to draw).
fn gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma(1.0 - x))
    } else {
        let x = x - 1.0;
        let t = x + 7.5;
        let mut a = G[0];
        for (i, g) in G.iter().enumerate().skip(1) {
            a += g / (x + i as f64);
        }
        (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
    }
}

fn secs(d: f64) -> String {
    let s = format!("{d:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}s")
}

impl fmt::Display for Dist {
    /// The normalised form, durations in seconds: `exp(600s)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Dist::Fixed(d) => write!(f, "{}", secs(d)),
            Dist::Exp { mean } => write!(f, "exp({})", secs(mean)),
            Dist::Uniform { low, high } => write!(f, "uniform({},{})", secs(low), secs(high)),
            Dist::Weibull { shape, scale } => write!(f, "weibull({shape},{})", secs(scale)),
            Dist::Pareto { shape, min } => write!(f, "pareto({shape},{})", secs(min)),
        }
    }
}

/// The forms a distribution may take, for error messages.
pub const DIST_FORMS: &str = "exp(MEAN), uniform(LOW,HIGH), weibull(SHAPE,SCALE), pareto(SHAPE,MIN) or a fixed duration such as 30s (durations like 90s, 10m, 1h, 1:30)";

fn duration(word: &str, what: &str) -> Result<f64, String> {
    let d = peerlab_lang::value::parse_duration(word)
        .map_err(|_| format!("{what} `{word}` is not a duration (e.g. 30s, 10m, 1h)"))?
        .as_secs_f64();
    if d > MAX_SECONDS {
        return Err(format!("{what} `{word}` is over ten years"));
    }
    Ok(d)
}

fn shape(word: &str) -> Result<f64, String> {
    match peerlab_lang::value::parse_float(word) {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 100.0 => Ok(s),
        _ => Err(format!(
            "the shape `{word}` must be a number above 0 (at most 100)"
        )),
    }
}

/// Parse a distribution: see [`DIST_FORMS`]. Every duration must be above
/// zero (a uniform's low end may be zero when its high end is not).
pub fn parse_dist(text: &str) -> Result<Dist, String> {
    let t = text.trim();
    let Some(open) = t.find('(') else {
        let d = duration(t, "the duration")
            .map_err(|_| format!("`{t}` is not a distribution: give {DIST_FORMS}"))?;
        if d <= 0.0 {
            return Err(format!("`{t}`: a fixed duration must be above 0"));
        }
        return Ok(Dist::Fixed(d));
    };
    let Some(inner) = t[open + 1..].strip_suffix(')') else {
        return Err(format!("`{t}` lacks its closing `)`: give {DIST_FORMS}"));
    };
    let name = t[..open].trim();
    let args: Vec<&str> = inner.split(',').map(str::trim).collect();
    let want = |n: usize, usage: &str| {
        if args.len() == n && args.iter().all(|a| !a.is_empty()) {
            Ok(())
        } else {
            Err(format!("`{t}`: write it as {usage}"))
        }
    };
    let positive = |d: f64, word: &str| {
        if d > 0.0 {
            Ok(d)
        } else {
            Err(format!("`{t}`: `{word}` must be above 0"))
        }
    };
    match name {
        "fixed" => {
            want(1, "fixed(DURATION)")?;
            Ok(Dist::Fixed(positive(
                duration(args[0], "the duration")?,
                args[0],
            )?))
        }
        "exp" => {
            want(1, "exp(MEAN), e.g. exp(10m)")?;
            Ok(Dist::Exp {
                mean: positive(duration(args[0], "the mean")?, args[0])?,
            })
        }
        "uniform" => {
            want(2, "uniform(LOW,HIGH), e.g. uniform(1m,5m)")?;
            let low = duration(args[0], "the low end")?;
            let high = positive(duration(args[1], "the high end")?, args[1])?;
            if low > high {
                return Err(format!(
                    "`{t}`: the low end `{}` is above the high end `{}`",
                    args[0], args[1]
                ));
            }
            Ok(Dist::Uniform { low, high })
        }
        "weibull" => {
            want(2, "weibull(SHAPE,SCALE), e.g. weibull(0.5,10m)")?;
            Ok(Dist::Weibull {
                shape: shape(args[0]).map_err(|e| format!("`{t}`: {e}"))?,
                scale: positive(duration(args[1], "the scale")?, args[1])?,
            })
        }
        "pareto" => {
            want(2, "pareto(SHAPE,MIN), e.g. pareto(1.5,2m)")?;
            Ok(Dist::Pareto {
                shape: shape(args[0]).map_err(|e| format!("`{t}`: {e}"))?,
                min: positive(duration(args[1], "the minimum")?, args[1])?,
            })
        }
        other => {
            let known = ["exp", "uniform", "weibull", "pareto", "fixed"];
            let hint = peerlab_lang::suggest(other, known)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            Err(format!(
                "unknown distribution `{other}`{hint}: give {DIST_FORMS}"
            ))
        }
    }
}

/// What a returning instance's overlay store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChoice {
    /// The messages it held when it left (a peer with its database).
    Kept,
    /// None: it catches up from its peers like a new one (a fresh install).
    Empty,
}

impl StoreChoice {
    pub fn parse(word: &str) -> Result<Self, String> {
        match word.trim() {
            "kept" | "keep" => Ok(StoreChoice::Kept),
            "empty" => Ok(StoreChoice::Empty),
            other => Err(format!("store=`{other}`: give store=kept or store=empty")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StoreChoice::Kept => "kept",
            StoreChoice::Empty => "empty",
        }
    }
}

/// How an instance away comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    /// `join`: as it was (its modules' memory and timers kept).
    Join,
    /// `restart`: a new process with the same identity (fresh modules).
    Restart,
}

impl Return {
    pub fn parse(word: &str) -> Result<Self, String> {
        match word.trim() {
            "join" => Ok(Return::Join),
            "restart" => Ok(Return::Restart),
            other => Err(format!(
                "rejoin=`{other}`: give rejoin=restart or rejoin=join"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Return::Join => "join",
            Return::Restart => "restart",
        }
    }
}

/// The churn model one instance follows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    pub session: Dist,
    pub downtime: Dist,
    pub store: StoreChoice,
    pub rejoin: Return,
}

/// A presence command with its arguments checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    Leave,
    Back(Return, StoreChoice),
    Churn(Model),
    ChurnOff,
}

/// The names of the presence commands (callbacks of the `core` module).
pub const COMMANDS: [&str; 4] = ["leave", "join", "restart", "churn"];

/// One argument as written: its keyword name (`None`: positional) and text.
pub type Word<'a> = (Option<&'a str>, &'a str);

/// Check a presence command's words; on error, the index of the word at
/// fault (`None`: the command as a whole) and why.
pub fn parse_command(
    callback: &str,
    words: &[Word<'_>],
) -> Result<Action, (Option<usize>, String)> {
    let kw = |name: &str| {
        words
            .iter()
            .enumerate()
            .find(|(_, (k, _))| *k == Some(name))
            .map(|(i, (_, v))| (i, *v))
    };
    let positional: Vec<(usize, &str)> = words
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| k.is_none())
        .map(|(i, (_, v))| (i, *v))
        .collect();
    let store = || match kw("store") {
        Some((i, v)) => StoreChoice::parse(v).map_err(|e| (Some(i), e)),
        None => Ok(StoreChoice::Kept),
    };
    match callback {
        "leave" => Ok(Action::Leave),
        "join" => Ok(Action::Back(Return::Join, store()?)),
        "restart" => Ok(Action::Back(Return::Restart, store()?)),
        "churn" => {
            if let Some(&(i, w)) = positional.first() {
                if w == "off" && positional.len() == 1 {
                    return Ok(Action::ChurnOff);
                }
                return Err((
                    Some(i),
                    format!("`{w}`: churn takes `off` or session=DIST downtime=DIST"),
                ));
            }
            let dist = |name: &str| match kw(name) {
                Some((i, v)) => parse_dist(v).map_err(|e| {
                    let e = e.strip_prefix(&format!("`{}`: ", v.trim())).unwrap_or(&e);
                    (Some(i), format!("{name}={v}: {e}"))
                }),
                None => Err((
                    None,
                    format!(
                        "churn needs {name}=DIST, e.g. `churn session=exp(10m) downtime=exp(2m)`"
                    ),
                )),
            };
            let rejoin = match kw("rejoin") {
                Some((i, v)) => Return::parse(v).map_err(|e| (Some(i), e))?,
                None => Return::Restart,
            };
            Ok(Action::Churn(Model {
                session: dist("session")?,
                downtime: dist("downtime")?,
                store: store()?,
                rejoin,
            }))
        }
        other => Err((None, format!("`{other}` is not a presence command"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn distributions_parse_and_refuse_bad_values() {
        assert_eq!(parse_dist("exp(10m)"), Ok(Dist::Exp { mean: 600.0 }));
        assert_eq!(parse_dist("30s"), Ok(Dist::Fixed(30.0)));
        assert_eq!(parse_dist("fixed(1:30)"), Ok(Dist::Fixed(90.0)));
        assert_eq!(
            parse_dist("uniform(0, 5m)"),
            Ok(Dist::Uniform {
                low: 0.0,
                high: 300.0
            })
        );
        assert_eq!(
            parse_dist("weibull(0.5,10m)"),
            Ok(Dist::Weibull {
                shape: 0.5,
                scale: 600.0
            })
        );
        assert_eq!(
            parse_dist("pareto(1.5,2m)"),
            Ok(Dist::Pareto {
                shape: 1.5,
                min: 120.0
            })
        );
        for (bad, says) in [
            ("exp(-1m)", "not a duration"),
            ("exp(0)", "must be above 0"),
            ("exp(10x)", "not a duration"),
            ("exp(10m", "closing"),
            ("exp(1m,2m)", "write it as exp(MEAN)"),
            ("uniform(5m,1m)", "above the high end"),
            ("weibull(0,1m)", "shape"),
            ("weibull(-2,1m)", "shape"),
            ("pareto(1.5,0s)", "must be above 0"),
            ("expo(10m)", "did you mean `exp`"),
            ("0s", "above 0"),
            ("soon", "not a distribution"),
            ("exp(100000h)", "over ten years"),
        ] {
            let e = parse_dist(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn draws_follow_the_distribution_and_repeat_from_the_seed() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 20_000;
        for dist in [
            Dist::Exp { mean: 60.0 },
            Dist::Uniform {
                low: 10.0,
                high: 20.0,
            },
            Dist::Weibull {
                shape: 2.0,
                scale: 100.0,
            },
            Dist::Pareto {
                shape: 3.0,
                min: 10.0,
            },
        ] {
            let draws: Vec<f64> = (0..n).map(|_| dist.sample(&mut rng)).collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            let want = dist.mean();
            assert!(
                (mean - want).abs() < 0.05 * want,
                "{dist}: mean of {n} draws {mean}, expected {want}"
            );
            assert!(
                draws
                    .iter()
                    .all(|d| (MIN_SECONDS..=MAX_SECONDS).contains(d))
            );
        }
        let a: Vec<f64> = {
            let mut r = ChaCha8Rng::seed_from_u64(3);
            (0..5)
                .map(|_| Dist::Exp { mean: 1.0 }.sample(&mut r))
                .collect()
        };
        let b: Vec<f64> = {
            let mut r = ChaCha8Rng::seed_from_u64(3);
            (0..5)
                .map(|_| Dist::Exp { mean: 1.0 }.sample(&mut r))
                .collect()
        };
        assert_eq!(a, b);
        assert_eq!(Dist::Fixed(0.0).sample(&mut rng), MIN_SECONDS);
    }

    #[test]
    fn presence_commands_name_the_word_at_fault() {
        let churn = |w: &[Word<'_>]| parse_command("churn", w);
        assert_eq!(
            churn(&[(Some("session"), "exp(10m)"), (Some("downtime"), "exp(2m)")]),
            Ok(Action::Churn(Model {
                session: Dist::Exp { mean: 600.0 },
                downtime: Dist::Exp { mean: 120.0 },
                store: StoreChoice::Kept,
                rejoin: Return::Restart,
            }))
        );
        assert_eq!(churn(&[(None, "off")]), Ok(Action::ChurnOff));
        let (at, e) = churn(&[
            (Some("session"), "exp(10m)"),
            (Some("downtime"), "exp(-2m)"),
        ])
        .unwrap_err();
        assert_eq!(at, Some(1));
        assert!(e.starts_with("downtime=exp(-2m): "), "{e}");
        let (at, e) = churn(&[(Some("session"), "exp(10m)")]).unwrap_err();
        assert_eq!(at, None);
        assert!(e.contains("downtime=DIST"), "{e}");
        let (at, e) = parse_command("restart", &[(Some("store"), "full")]).unwrap_err();
        assert_eq!(at, Some(0));
        assert!(e.contains("store=kept or store=empty"), "{e}");
        assert_eq!(
            parse_command("join", &[]),
            Ok(Action::Back(Return::Join, StoreChoice::Kept))
        );
    }

    #[test]
    fn the_weibull_mean_uses_the_gamma_function() {
        assert!((gamma(5.0) - 24.0).abs() < 1e-9);
        assert!((gamma(0.5) - std::f64::consts::PI.sqrt()).abs() < 1e-9);
    }
}
