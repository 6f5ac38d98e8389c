//! Synthetic run folders of any size, laid out as docs/outputs.md says, for
//! tests and benchmarks of post-processing. Deterministic for a given
//! [`SynthSpec`] (its own small PRNG; no clock, no thread RNG).
//!
//! This writes files and nothing else: it never starts an instance. It is
//! not used by `peerlab run`. `run.json` and `summary.json` go through
//! peerlab-run's writers (its types, its one `write_summary`); the instances'
//! lines are formatted here, fast, in the same format.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use peerlab_run::metrics::{Histogram, MetricDecl, MetricKind};
use peerlab_run::write::{SummaryContent, write_run_record, write_summary};
use peerlab_run::{
    EndStatus, InstanceStatus, Placement, RunRecord, RunStatus, Summary, VerdictRecord,
};

/// What kind of run to write.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    pub experiment: String,
    pub instances: u32,
    /// Instances per OS process (1 = Gumby's model).
    pub instances_per_process: u32,
    /// Node folders (`localhost/node001`, ...); processes are spread over them.
    pub nodes: u32,
    /// Seconds of the timeline (samples at t = 1, 2, ... duration_s).
    pub duration_s: u32,
    /// Seconds of the `@@` setup phase before t = 0 (samples at negative t).
    pub setup_s: u32,
    pub seed: u64,
    pub message_types: Vec<String>,
    /// Instances that crash at two thirds of the run, leaving half a line.
    pub crashed: Vec<u32>,
    /// Every instance resets its statistics at this time.
    pub reset_at: Option<u32>,
    /// One line of garbage in the first instance's statistics.
    pub garbage_line: bool,
    /// Whether the run's one verdict passes.
    pub verdict_passes: bool,
    /// Module metrics declared in run.json and recorded in every
    /// statistics line (see [`SynthSpec::with_module_metrics`]).
    pub metrics: Vec<MetricDecl>,
    /// With module metrics: also a family, `synth.by_parity/*` (counters
    /// `synth.by_parity/even` and `synth.by_parity/odd`).
    pub metric_family: bool,
    /// Seconds between statistics and resources lines (1: every second;
    /// more writes only the lines at multiples of it and the last, the
    /// observations of the seconds between carried to the next line).
    pub stats_interval_s: u32,
    /// run.json's `time_scale`: events and resources are written in wall
    /// seconds (`t` × this), statistics lines in scenario seconds when the
    /// run declares metrics (as peerlab writes them), else in wall seconds.
    pub time_scale: f64,
}

impl SynthSpec {
    /// A healthy run of `instances` instances, 60 s long.
    pub fn new(instances: u32) -> Self {
        SynthSpec {
            experiment: "synthetic".into(),
            instances,
            instances_per_process: 1,
            nodes: 1,
            duration_s: 60,
            setup_s: 3,
            seed: 42,
            message_types: [
                "introduction-request",
                "introduction-response",
                "local-share",
                "broadcast-share",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            crashed: vec![],
            reset_at: None,
            garbage_line: false,
            verdict_passes: true,
            metrics: vec![],
            metric_family: false,
            stats_interval_s: 1,
            time_scale: 1.0,
        }
    }

    /// Adds five module metrics of the `synth` module, one of each kind and
    /// more: `synth.shares` (counter, headline), `synth.retries` (counter),
    /// `synth.pending` (gauge), `synth.rtt` (observation in ms, a few
    /// samples per line) and `synth.time_to_total` (observation in s, one
    /// sample per instance at about two thirds of the run, headline).
    pub fn with_module_metrics(mut self) -> Self {
        let d = |name: &str, kind, unit: &str, description: &str, headline| MetricDecl {
            name: format!("synth.{name}"),
            module: "synth".into(),
            kind: Some(kind),
            unit: unit.into(),
            description: description.into(),
            headline,
        };
        self.metrics = vec![
            d(
                "shares",
                MetricKind::Counter,
                "shares",
                "Shares this instance sent",
                true,
            ),
            d(
                "retries",
                MetricKind::Counter,
                "",
                "Shares sent again",
                false,
            ),
            d(
                "pending",
                MetricKind::Gauge,
                "messages",
                "Messages waiting for an answer",
                false,
            ),
            d(
                "rtt",
                MetricKind::Observation,
                "ms",
                "Round-trip time of each request",
                false,
            ),
            d(
                "time_to_total",
                MetricKind::Observation,
                "s",
                "Time from share_local to knowing the total",
                true,
            ),
        ];
        self
    }
}

/// splitmix64: small, fast, good enough for fake traffic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn process_of(spec: &SynthSpec, id: u32) -> u32 {
    (id - 1) / spec.instances_per_process.max(1) + 1
}

fn node_of_process(spec: &SynthSpec, p: u32) -> u32 {
    (p - 1) % spec.nodes.max(1) + 1
}

/// `localhost/node001`, relative.
fn node_dir(spec: &SynthSpec, id: u32) -> String {
    format!(
        "localhost/node{:03}",
        node_of_process(spec, process_of(spec, id))
    )
}

/// Writes a complete run folder into `dir` (created if needed).
pub fn write_run(dir: &Path, spec: &SynthSpec) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let run_id = format!("0001-{}", spec.experiment);
    let processes = spec.instances.div_ceil(spec.instances_per_process.max(1));
    let end_t = spec.duration_s as f64;
    let crash_t = (spec.duration_s * 2 / 3) as f64;

    let placement = (1..=spec.instances)
        .map(|id| {
            let process = process_of(spec, id);
            Placement {
                id,
                host: "localhost".into(),
                node: node_of_process(spec, process),
                process,
            }
        })
        .collect();
    write_run_record(
        dir,
        &RunRecord {
            run_id: run_id.clone(),
            experiment: spec.experiment.clone(),
            seed: spec.seed,
            instances: spec.instances,
            nodes: spec.nodes,
            instances_per_process: spec.instances_per_process,
            runner: "local".into(),
            time_scale: spec.time_scale,
            peerlab_version: "synthetic".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            modules: vec!["dispersy".into()],
            placement,
            metrics: {
                let mut m = spec.metrics.clone();
                if spec.metric_family && !m.is_empty() {
                    m.push(MetricDecl {
                        name: "synth.by_parity/*".into(),
                        module: "synth".into(),
                        kind: Some(MetricKind::Counter),
                        unit: "shares".into(),
                        description: "Shares sent to even and to odd instances".into(),
                        headline: false,
                    });
                }
                m
            },
            ..RunRecord::default()
        },
    )?;
    fs::write(
        dir.join("experiment.conf"),
        format!(
            "experiment_name = {}\ninstances = {}\n",
            spec.experiment, spec.instances
        ),
    )?;
    fs::write(
        dir.join("experiment.scenario"),
        "@0:2 annotate start-experiment\n@0:5 share_local\n",
    )?;

    let mut status = Vec::new();
    for id in 1..=spec.instances {
        let node = node_dir(spec, id);
        fs::create_dir_all(dir.join(&node))?;
        let crashed = spec.crashed.contains(&id);
        write_instance(
            dir,
            &node,
            id,
            spec,
            if crashed { Some(crash_t) } else { None },
        )?;
        let (st, code, err) = if crashed {
            (
                EndStatus::Crashed,
                139,
                Some("killed by signal 11 (SIGSEGV)".to_string()),
            )
        } else {
            (EndStatus::Finished, 0, None)
        };
        status.push(InstanceStatus {
            id,
            host: "localhost".into(),
            node: node_of_process(spec, process_of(spec, id)),
            status: st,
            exit_code: Some(code),
            error: err,
            out: PathBuf::from(format!("{node}/{id:05}.out")),
            err: PathBuf::from(format!("{node}/{id:05}.err")),
        });
    }
    for p in 1..=processes {
        let first = (p - 1) * spec.instances_per_process.max(1) + 1;
        let last = (p * spec.instances_per_process.max(1)).min(spec.instances);
        let node = format!("localhost/node{:03}", node_of_process(spec, p));
        let stop = if (first..=last).all(|i| spec.crashed.contains(&i)) {
            crash_t
        } else {
            end_t
        };
        write_process(dir, &node, p, first..=last, spec, stop)?;
    }

    let passed = spec.crashed.is_empty() && spec.verdict_passes;
    let summary = Summary {
        run_id,
        experiment: spec.experiment.clone(),
        seed: spec.seed,
        instances: spec.instances,
        nodes: spec.nodes,
        runner: "local".into(),
        time_scale: spec.time_scale,
        started_at: "2026-01-01T00:00:00Z".into(),
        ended_at: "2026-01-01T00:01:00Z".into(),
        duration_s: end_t + spec.setup_s as f64,
        outcome: Some(if passed {
            RunStatus::Passed
        } else {
            RunStatus::Failed
        }),
        timed_out: false,
        instance_status: status,
        verdicts: vec![VerdictRecord {
            name: format!("{}/same-total", spec.experiment),
            passed: spec.verdict_passes,
            message: if spec.verdict_passes {
                "all instances printed 2461"
            } else {
                "instance 2 printed 17, the others 2461"
            }
            .into(),
            skipped: false,
        }],
    };
    write_summary(dir, SummaryContent::Runner(&summary)).map_err(|e| match e {
        peerlab_run::write::SummaryError::Io(e) => e,
        other => io::Error::other(other.to_string()),
    })?;
    Ok(())
}

fn write_instance(
    dir: &Path,
    node: &str,
    id: u32,
    spec: &SynthSpec,
    crash_at: Option<f64>,
) -> io::Result<()> {
    let mut rng = Rng(spec.seed ^ (u64::from(id) << 32) ^ 0xA5A5);
    let base = format!("{node}/{id:05}");
    fs::write(
        dir.join(format!("{base}.out")),
        format!("instance {id} of {}\n", spec.instances),
    )?;
    let err = if crash_at.is_some() {
        "error: share_local (benaloh.scenario:9): index out of bounds\n".to_string()
    } else {
        String::new()
    };
    fs::write(dir.join(format!("{base}.err")), err)?;

    // Statistics: cumulative counters once per second.
    let types = &spec.message_types;
    let mut msg_out = vec![0u64; types.len()];
    let mut bytes_out = vec![0u64; types.len()];
    let mut msg_in = vec![0u64; types.len()];
    let mut bytes_in = vec![0u64; types.len()];
    let mut dup = 0u64;
    let mut bad_sig = 0u64;
    let mut stats = io::BufWriter::new(fs::File::create(dir.join(format!("{base}.stats.jsonl")))?);
    let end = crash_at.unwrap_or(spec.duration_s as f64) as i64;
    let max_peers = (spec.instances.saturating_sub(1)).min(20) as u64;
    let mut line = String::with_capacity(1024);
    let mut m = ModuleMetrics {
        total_at: (spec.duration_s as i64 * 2 / 3).max(1) - (id % 3) as i64,
        time_to_total: 5.0 + rng.unit() * 20.0,
        ..ModuleMetrics::default()
    };
    let interval = i64::from(spec.stats_interval_s.max(1));
    let mut carry_rtt = Histogram::new();
    let mut carry_total: Option<Histogram> = None;
    for t in -(spec.setup_s as i64) + 1..=end {
        let write_now = t.rem_euclid(interval) == 0 || t == end;
        let reset = spec.reset_at == Some(t as u32) && t > 0;
        if reset {
            for v in [&mut msg_out, &mut bytes_out, &mut msg_in, &mut bytes_in] {
                v.iter_mut().for_each(|x| *x = 0);
            }
            dup = 0;
            bad_sig = 0;
        }
        let active = if t > 0 { 1 } else { 0 };
        for (k, _) in types.iter().enumerate() {
            let rate = (k as u64 + 1) * if k < 2 { 1 } else { active * 2 };
            let n_out = rng.below(2 * rate + 1);
            let n_in = rng.below(2 * rate + 1);
            let size = 60 + 40 * k as u64;
            msg_out[k] += n_out;
            bytes_out[k] += n_out * size + rng.below(8) * n_out;
            msg_in[k] += n_in;
            bytes_in[k] += n_in * size + rng.below(8) * n_in;
        }
        dup += rng.below(2) * active;
        if rng.below(10) == 0 {
            bad_sig += 1;
        }
        let peers = ((t + spec.setup_s as i64).max(0) as u64 * 2).min(max_peers);
        line.clear();
        let stats_t = if spec.metrics.is_empty() {
            t as f64 * spec.time_scale
        } else {
            t as f64
        };
        let _ = write!(line, "{{\"t\": {stats_t:?}, ");
        if reset {
            line.push_str("\"reset\": true, ");
        }
        line.push_str("\"counters\": {");
        for (k, ty) in types.iter().enumerate() {
            let _ = write!(
                line,
                "\"msg_out/{ty}\": {}, \"bytes_out/{ty}\": {}, \"msg_in/{ty}\": {}, \"bytes_in/{ty}\": {}, ",
                msg_out[k], bytes_out[k], msg_in[k], bytes_in[k]
            );
        }
        let _ = write!(
            line,
            "\"drop/duplicate\": {dup}, \"drop/bad_signature\": {bad_sig}, \"peers\": {peers}, \"stat/shares\": {}",
            msg_out.get(2).copied().unwrap_or(0) as f64 / 2.0
        );
        if spec.metrics.is_empty() {
            line.push_str("}}\n");
        } else {
            // Module metrics: counters only grow (from zero again after a
            // reset), the gauge moves, observations are this interval's.
            if reset {
                m.shares = 0;
                m.retries = 0;
            }
            if t > 0 {
                m.shares += rng.below(3);
                m.retries += u64::from(rng.below(8) == 0);
            }
            m.pending = rng.below(5 + id as u64 % 3);
            let _ = write!(
                line,
                ", \"synth.shares\": {}, \"synth.retries\": {}, \"synth.pending\": {}",
                m.shares, m.retries, m.pending
            );
            if spec.metric_family {
                let even = m.shares / 2;
                let _ = write!(
                    line,
                    ", \"synth.by_parity/even\": {even}, \"synth.by_parity/odd\": {}",
                    m.shares - even
                );
            }
            line.push('}');
            if t > 0 {
                for _ in 0..rng.below(4) {
                    let _ = carry_rtt.record(5.0 + rng.unit() * 40.0 + (id % 7) as f64);
                }
            }
            if t == m.total_at {
                let mut h = Histogram::new();
                let _ = h.record(m.time_to_total);
                carry_total = Some(h);
            }
            let mut obs = Vec::new();
            if write_now {
                if !carry_rtt.is_empty() {
                    obs.push(("synth.rtt", std::mem::take(&mut carry_rtt)));
                }
                if let Some(h) = carry_total.take() {
                    obs.push(("synth.time_to_total", h));
                }
            }
            if !obs.is_empty() {
                line.push_str(", \"observations\": {");
                for (i, (name, h)) in obs.iter().enumerate() {
                    let sep = if i > 0 { ", " } else { "" };
                    let _ = write!(line, "{sep}\"{name}\": \"{}\"", h.to_base64());
                }
                line.push('}');
            }
            line.push_str("}\n");
        }
        if crash_at.is_some() && t == end {
            // The process died while writing this line.
            let half = line.len() / 2;
            stats.write_all(&line.as_bytes()[..half])?;
            break;
        }
        if write_now {
            stats.write_all(line.as_bytes())?;
        }
        if spec.garbage_line && id == 1 && t == 1 {
            stats.write_all(b"{\"t\": 1.5, \"counters\": garbage}\n")?;
        }
    }
    stats.flush()?;

    // Events: annotations with a little spread across instances, commands, a fault.
    let jitter = rng.unit() * 0.5;
    let d = spec.duration_s as f64;
    let mut ev = String::new();
    let mut push = |t: f64, body: String| {
        if crash_at.is_none_or(|c| t <= c) {
            let _ = writeln!(ev, "{{\"t\": {:.3}, {body}}}", t * spec.time_scale);
        }
    };
    push(-(spec.setup_s as f64) + 0.5, "\"kind\": \"command\", \"callback\": \"isolate_community\", \"module\": \"dispersy\", \"file\": \"synthetic.scenario\", \"line\": 2".into());
    push(
        2.0 + jitter,
        "\"kind\": \"annotation\", \"text\": \"start-experiment\"".into(),
    );
    push(5.0, "\"kind\": \"command\", \"callback\": \"share_local\", \"module\": \"synthetic\", \"file\": \"synthetic.scenario\", \"line\": 9".into());
    push(
        (d * 0.5).round() + jitter * 2.0,
        "\"kind\": \"fault\", \"text\": \"set_network loss=0.1\"".into(),
    );
    push((d * 0.8).round(), "\"kind\": \"command\", \"callback\": \"print_total_sum\", \"module\": \"synthetic\", \"file\": \"synthetic.scenario\", \"line\": 12".into());
    push(
        (d * 0.8).round() + 1.0 + jitter * 4.0,
        "\"kind\": \"annotation\", \"text\": \"sum-printed\"".into(),
    );
    if crash_at.is_none() {
        push(d, "\"kind\": \"end\", \"status\": \"finished\"".into());
    }
    fs::write(dir.join(format!("{base}.events.jsonl")), ev)
}

/// The synthetic module metrics' state of one instance.
#[derive(Default)]
struct ModuleMetrics {
    shares: u64,
    retries: u64,
    pending: u64,
    /// The line that records `time_to_total`.
    total_at: i64,
    time_to_total: f64,
}

fn write_process(
    dir: &Path,
    node: &str,
    p: u32,
    ids: std::ops::RangeInclusive<u32>,
    spec: &SynthSpec,
    stop: f64,
) -> io::Result<()> {
    let mut rng = Rng(spec.seed ^ (u64::from(p) << 40) ^ 0x5A5A);
    let n = (ids.end() - ids.start() + 1) as f64;
    let list = ids.map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    let mut out = String::new();
    let (mut user, mut system) = (0.0f64, 0.0f64);
    let interval = i64::from(spec.stats_interval_s.max(1));
    let last = stop as i64;
    for t in -(spec.setup_s as i64) + 1..=last {
        user += (0.02 + rng.unit() * 0.04) * n;
        system += (0.005 + rng.unit() * 0.01) * n;
        let rss = 20_000.0
            + 4_000.0 * n
            + (t + spec.setup_s as i64) as f64 * 50.0 * n
            + rng.below(500) as f64;
        if t.rem_euclid(interval) != 0 && t != last {
            continue;
        }
        let _ = writeln!(
            out,
            "{{\"t\": {:?}, \"pid\": {}, \"instances\": [{}], \"cpu_user_s\": {user:.3}, \"cpu_system_s\": {system:.3}, \"rss_kb\": {rss:.0}, \"read_bytes\": 0, \"write_bytes\": {}}}",
            t as f64 * spec.time_scale,
            4000 + p,
            list,
            (t + spec.setup_s as i64) * 4096
        );
    }
    fs::write(
        dir.join(format!("{node}/process{p:03}.resources.jsonl")),
        out,
    )
}
