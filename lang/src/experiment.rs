//! The typed experiment config: what each key of a `.conf` means, its
//! default, Gumby's older names for it, and the keys of Gumby's helper
//! scripts that peerlab replaces. [`Experiment::from_config`] turns a
//! [`RawConfig`] plus `PEERLAB_<KEY>` environment overrides into one
//! [`Experiment`] the runners consume.
//!
//! No I/O: the environment is passed in as a map, and `__unique_port__`
//! stays [`Port::Unique`] for the host to resolve (this layer never binds a
//! socket).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

pub use crate::external::External;
use crate::external::registration_timeout;

use crate::config::{Entry, RawConfig, RawValue};
use crate::diag::{Diagnostic, Location};
use crate::network::{Assignment, parse_bandwidth, parse_bytes};
use crate::scenario::{Scenario, Vars};
use crate::shell::expand_vars;
use crate::suggest::suggest;
use crate::value::{ValueError, parse_bool, parse_duration, parse_float, parse_size, parse_uint};

/// The prefix of environment variables that override config keys.
pub const ENV_PREFIX: &str = "PEERLAB_";

/// The config value that asks for a free port.
pub const UNIQUE_PORT: &str = "__unique_port__";

/// A TCP/UDP port setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Port {
    /// This port.
    Fixed(u16),
    /// `__unique_port__`: any free port, chosen by the host at run time.
    Unique,
}

impl Port {
    /// The fixed port, or what `pick` returns for [`Port::Unique`].
    pub fn resolve(self, pick: impl FnOnce() -> u16) -> u16 {
        match self {
            Port::Fixed(p) => p,
            Port::Unique => pick(),
        }
    }
}

/// Which runner starts the instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Runner {
    /// Processes on this machine.
    #[default]
    Local,
    /// A SLURM cluster, through `sbatch`/`srun`.
    Slurm,
}

/// Which network the overlay runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// Real UDP sockets.
    #[default]
    Real,
    /// A simulated network in virtual time.
    Simulated,
}

/// SLURM settings (used by the slurm runner only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Slurm {
    /// `--partition`.
    pub partition: Option<String>,
    /// Extra `sbatch` options, one word each.
    pub sbatch_options: Vec<String>,
    /// `--immediate`: fail at once when the nodes are not free.
    pub immediate: bool,
}

/// Settings of the instance runtime that lang types once: the simulated
/// link (`network_delay`, `network_jitter`, `network_loss`), whether the
/// instances of a process share signature checks (`shared_verification`)
/// how often resources are sampled (`resources_interval`) and statistics
/// (`stats_interval`). `None`: the key is not set, and the host's default
/// applies.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct RuntimeKeys {
    /// `network_delay`: one-way delay of every simulated link.
    pub network_delay: Option<Duration>,
    /// `network_jitter`: random extra delay of the simulated links.
    pub network_jitter: Option<Duration>,
    /// `network_loss`: probability (0 to 1) that a simulated datagram is lost.
    pub network_loss: Option<f64>,
    /// `shared_verification`: instances of one process share signature checks.
    pub shared_verification: Option<bool>,
    /// `resources_interval`: time between resource samples (0.01 to 60 s).
    pub resources_interval: Option<Duration>,
    /// `stats_interval`: scenario seconds between two lines of each
    /// instance's statistics (0.1 to 3600).
    pub stats_interval: Option<f64>,
    /// `instance_port_base`: instance `id` binds UDP port `base + id - 1`.
    pub instance_port_base: Option<u16>,
    /// `network_up`: every instance's upload capacity, bits per second.
    pub network_up: Option<f64>,
    /// `network_down`: every instance's download capacity, bits per second.
    pub network_down: Option<f64>,
    /// `network_queue`: bytes that may wait for an instance's upload or
    /// download link before more are dropped (`drop/queue_full`).
    pub network_queue: Option<u64>,
    /// `capture`: every instance writes a pcap of its datagrams.
    pub capture: Option<bool>,
    /// `capture_limit`: most bytes of one instance's pcap file.
    pub capture_limit: Option<u64>,
    /// `sim_threads`: threads a simulated run uses (1 to 1024; default:
    /// the machine's cores).
    pub sim_threads: Option<u32>,
}

/// The smallest `capture_limit` taken (64 KiB).
pub const CAPTURE_LIMIT_MIN: u64 = 64 * 1024;
/// `capture_limit` when the config does not set it (64 MB).
pub const CAPTURE_LIMIT_DEFAULT: u64 = 64_000_000;

impl RuntimeKeys {
    /// The keys this struct types.
    pub const KEYS: [&'static str; 13] = [
        "network_delay",
        "network_jitter",
        "network_loss",
        "shared_verification",
        "resources_interval",
        "stats_interval",
        "instance_port_base",
        "network_up",
        "network_down",
        "network_queue",
        "capture",
        "capture_limit",
        "sim_threads",
    ];

    /// Type the value `text` of `key` (one of [`Self::KEYS`]) into `self`;
    /// the error is the message a diagnostic carries. Any other key is
    /// left alone (`Ok(false)`).
    pub fn set(&mut self, key: &str, text: &str) -> Result<bool, String> {
        let bad = |e: ValueError| format!("bad value for `{key}`: {e}");
        match key {
            "network_delay" => self.network_delay = Some(parse_duration(text).map_err(bad)?),
            "network_jitter" => self.network_jitter = Some(parse_duration(text).map_err(bad)?),
            "network_loss" => {
                let f = parse_float(text).map_err(bad)?;
                if !(0.0..=1.0).contains(&f) {
                    return Err(format!(
                        "bad value for `network_loss`: expected a probability from 0 to 1, found `{text}`"
                    ));
                }
                self.network_loss = Some(f);
            }
            "shared_verification" => {
                self.shared_verification = Some(parse_bool(text).map_err(bad)?)
            }
            "resources_interval" => {
                let f = parse_float(text).map_err(bad)?;
                if !(0.01..=60.0).contains(&f) {
                    return Err(format!(
                        "bad value for `resources_interval`: expected seconds from 0.01 to 60, found `{text}`"
                    ));
                }
                self.resources_interval = Some(Duration::from_secs_f64(f));
            }
            "stats_interval" => {
                let f = parse_float(text).map_err(bad)?;
                if !(0.1..=3600.0).contains(&f) {
                    return Err(format!(
                        "bad value for `stats_interval`: expected scenario seconds from 0.1 to 3600, found `{text}`"
                    ));
                }
                self.stats_interval = Some(f);
            }
            "network_up" => self.network_up = Some(parse_bandwidth(text).map_err(bad)?),
            "network_down" => self.network_down = Some(parse_bandwidth(text).map_err(bad)?),
            "network_queue" => self.network_queue = Some(parse_bytes(text).map_err(bad)?),
            "instance_port_base" => match parse_uint(text) {
                Ok(p @ 1..=65535) => self.instance_port_base = Some(p as u16),
                _ => {
                    return Err(format!(
                        "bad value for `instance_port_base`: expected a port from 1 to 65535, found `{text}`"
                    ));
                }
            },
            "capture" => self.capture = Some(parse_bool(text).map_err(bad)?),
            "capture_limit" => {
                let n = parse_size(text).map_err(bad)?;
                if n < CAPTURE_LIMIT_MIN {
                    return Err(format!(
                        "bad value for `capture_limit`: expected at least 64KiB (the file's header and a few datagrams), found `{text}`"
                    ));
                }
                self.capture_limit = Some(n);
            }
            "sim_threads" => match parse_uint(text) {
                Ok(n @ 1..=1024) => self.sim_threads = Some(n as u32),
                _ => {
                    return Err(format!(
                        "bad value for `sim_threads`: expected a number of threads from 1 to 1024, found `{text}`"
                    ));
                }
            },
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Type these keys from a map of config strings (a run record's, whose
    /// values were checked when the run was planned). A value that does not
    /// type stays `None`, and its message is returned beside.
    pub fn from_strings(config: &BTreeMap<String, String>) -> (Self, Vec<String>) {
        type_strings(&Self::KEYS, config, Self::set)
    }
}

/// Type a group of config keys (`keys`, each given to `set`) from a map of
/// config strings: the group as typed, and the message of each value that
/// did not type (that key stays at its default). One definition for every
/// key group's `from_strings` ([`RuntimeKeys`], `NatKeys`).
pub(crate) fn type_strings<T: Default>(
    keys: &[&str],
    config: &BTreeMap<String, String>,
    set: fn(&mut T, &str, &str) -> Result<bool, String>,
) -> (T, Vec<String>) {
    let mut typed = T::default();
    let mut errors = Vec::new();
    for key in keys {
        if let Some(text) = config.get(*key)
            && let Err(e) = set(&mut typed, key, text)
        {
            errors.push(e);
        }
    }
    (typed, errors)
}

/// Where a config value came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A line of the config file.
    File(Location),
    /// An environment variable (its name).
    Env(String),
}

/// A config value with its origin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigValue {
    /// The value.
    pub value: RawValue,
    /// Where it came from.
    pub origin: Origin,
}

/// A typed experiment, ready for the runners.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    /// `experiment_name` (default: the config file's stem).
    pub name: String,
    /// `scenario_file`, as written (relative to the config's directory).
    pub scenario_file: Option<String>,
    /// Instances to run (`instances_to_run`; default 1).
    pub instances: u32,
    /// Machines to spread them over (`node_amount`; default 1).
    pub nodes: u32,
    /// Stop instances that run longer than this (`node_timeout`).
    pub node_timeout: Option<Duration>,
    /// How long the experiment runs (`experiment_time`).
    pub experiment_time: Option<Duration>,
    /// Instances hosted by one OS process (default 1).
    pub instances_per_process: u32,
    /// `local` or `slurm` (default local).
    pub runner: Runner,
    /// Where the sync server listens (default: decided by the runner).
    pub sync_host: Option<String>,
    /// The sync server's port (default `__unique_port__`).
    pub sync_port: Port,
    /// The tracker/bootstrap port (default `__unique_port__`).
    pub tracker_port: Port,
    /// Delay between the barrier and the common start (default 1 s).
    pub sync_experiment_start_delay: Duration,
    /// How long, in wall-clock time, every instance (peerlab's or
    /// external) has to register with the sync server
    /// (`registration_timeout`; default: 30 s + 50 ms per instance).
    pub registration_timeout: Option<Duration>,
    /// Seed of every random choice (default: a fresh one per run).
    pub seed: Option<u64>,
    /// Every scenario time and timeout is multiplied by this (0.05 runs a
    /// two-minute scenario in six seconds).
    pub time_scale: Option<f64>,
    /// Real or simulated network (default real).
    pub network: Network,
    /// The instance runtime's settings (see [`RuntimeKeys`]).
    pub runtime: RuntimeKeys,
    /// `topology`: a built-in model's name or a topology file (relative to
    /// the config's directory), read by the host (lang has no I/O).
    pub topology: Option<String>,
    /// `topology_assign`: how instances join the topology's groups.
    pub topology_assign: Assignment,
    /// Which NAT each instance sits behind (`nat`, `nat_timeout`).
    pub nat: crate::nat::NatKeys,
    /// Instances that are other programs (see [`External`]).
    pub external: External,
    /// SLURM settings.
    pub slurm: Slurm,
    /// Where run folders go (default `output`).
    pub output_dir: String,
    /// Every key after overrides, including ones peerlab does not know
    /// (plugins read their own keys from here).
    pub raw: BTreeMap<String, ConfigValue>,
}

/// The key an `unknown-key` warning is about (so a caller that learns of
/// more keys later, e.g. the ones loaded modules read, can drop it).
pub fn unknown_key_of(d: &Diagnostic) -> Option<&str> {
    if d.code != Some("unknown-key") {
        return None;
    }
    d.message.strip_prefix("unknown key `")?.strip_suffix('`')
}

/// What a key is, for the key table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A peerlab key with a value type (`integer`, `duration`, …).
    Typed(&'static str),
    /// Gumby's older name for a peerlab key.
    Alias(&'static str),
    /// A key of Gumby's helper scripts: accepted with a note saying what
    /// peerlab does instead.
    Gumby,
}

/// One documented config key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDoc {
    /// The key.
    pub name: &'static str,
    /// What it is.
    pub kind: KeyKind,
    /// One line: what it does (for Gumby keys: what peerlab does instead).
    pub doc: &'static str,
}

const fn typed(name: &'static str, ty: &'static str, doc: &'static str) -> KeyDoc {
    KeyDoc {
        name,
        kind: KeyKind::Typed(ty),
        doc,
    }
}
const fn alias(name: &'static str, of: &'static str, doc: &'static str) -> KeyDoc {
    KeyDoc {
        name,
        kind: KeyKind::Alias(of),
        doc,
    }
}
const fn gumby(name: &'static str, doc: &'static str) -> KeyDoc {
    KeyDoc {
        name,
        kind: KeyKind::Gumby,
        doc,
    }
}

/// Every key peerlab knows, with a one-line doc each.
pub const KEYS: &[KeyDoc] = &[
    typed(
        "experiment_name",
        "string",
        "name of the experiment; names the run folder (default: the config file's name)",
    ),
    typed(
        "scenario_file",
        "path",
        "the scenario to run, relative to the config file's directory",
    ),
    typed(
        "instances_to_run",
        "integer",
        "how many instances to run (default 1)",
    ),
    alias(
        "das4_instances_to_run",
        "instances_to_run",
        "Gumby's DAS-4 name for instances_to_run",
    ),
    alias(
        "sync_subscribers_amount",
        "instances_to_run",
        "Gumby's name for the number of instances the sync server waits for",
    ),
    typed(
        "node_amount",
        "integer",
        "how many machines to spread the instances over (default 1)",
    ),
    alias(
        "das4_node_amount",
        "node_amount",
        "Gumby's DAS-4 name for node_amount",
    ),
    typed(
        "node_timeout",
        "duration",
        "stop instances still running after this long (seconds, or `90s`, `2m`, `1:30`)",
    ),
    alias(
        "das4_node_timeout",
        "node_timeout",
        "Gumby's DAS-4 name for node_timeout",
    ),
    typed(
        "experiment_time",
        "duration",
        "how long the experiment runs before instances are stopped",
    ),
    typed(
        "instances_per_process",
        "integer",
        "instances hosted by one OS process (default 1: one process each)",
    ),
    typed(
        "runner",
        "local|slurm",
        "how instances are started: processes on this machine, or a SLURM cluster (default local)",
    ),
    typed(
        "sync_host",
        "host",
        "address the sync server listens on and instances connect to (default: chosen by the runner)",
    ),
    typed(
        "sync_port",
        "port",
        "the sync server's TCP port, or __unique_port__ for a free one (the default)",
    ),
    typed(
        "tracker_cmd",
        "string",
        "any value starts peerlab's built-in tracker on tracker_port (instead of this command); walkers bootstrap from it while they know no peer (local runner)",
    ),
    typed(
        "tracker_port",
        "port",
        "the bootstrap/tracker UDP port, or __unique_port__ for a free one (the default)",
    ),
    typed(
        "sync_experiment_start_delay",
        "duration",
        "delay between everyone reaching the barrier and the common start (default 1s)",
    ),
    typed(
        "registration_timeout",
        "duration",
        "wall-clock time every instance, peerlab's or external, has to register with the sync server and finish its setup (@! and @@) before the run ends as timed out; not scaled by time_scale, 1ms to 24h (default 30s + 50ms per instance)",
    ),
    typed(
        "seed",
        "integer",
        "seed of every random choice, so a run can be repeated (default: a fresh seed)",
    ),
    typed(
        "time_scale",
        "number",
        "multiply every scenario time and timeout by this: 0.05 runs a 2-minute scenario in 6 s (default 1)",
    ),
    typed(
        "network",
        "real|simulated",
        "run the overlay over real UDP sockets or a simulated network (default real)",
    ),
    typed(
        "network_delay",
        "duration",
        "one-way delay of every link of the simulated network (default 5ms)",
    ),
    typed(
        "network_jitter",
        "duration",
        "extra delay, uniform in [0, jitter), of the simulated network: reorders datagrams (default 1ms)",
    ),
    typed(
        "network_loss",
        "number",
        "probability that the simulated network loses a datagram (default 0)",
    ),
    typed(
        "topology",
        "name|path",
        "per-link latency between groups of instances: a built-in model (`world`: europe, north_america, asia; `lan`) or a CSV/JSON file of latencies between groups, or coordinates (docs/network.md); both drivers delay every datagram by its link's latency",
    ),
    typed(
        "topology_assign",
        "round_robin|fractions",
        "how instances join the topology's groups: `round_robin` (default) or consecutive blocks by fraction, e.g. `europe:0.5, asia:0.3, north_america:0.2`",
    ),
    typed(
        "network_up",
        "bandwidth",
        "every instance's upload capacity, e.g. `10Mbit` (default unlimited; `set_network up=` changes one instance's)",
    ),
    typed(
        "network_down",
        "bandwidth",
        "every instance's download capacity, e.g. `50Mbit` (default unlimited; `set_network down=` changes one instance's)",
    ),
    typed(
        "network_queue",
        "bytes",
        "bytes that may wait for an instance's upload or download link; more are dropped as `drop/queue_full` (default 256kB)",
    ),
    typed(
        "resources_interval",
        "number",
        "seconds between samples of each process's CPU, memory and I/O, 0.01 to 60 (default 1)",
    ),
    typed(
        "stats_interval",
        "number",
        "scenario seconds between two lines of each instance's statistics (counters, gauges, observations), 0.1 to 3600 (default 1)",
    ),
    typed(
        "instance_port_base",
        "port",
        "instance N's overlay binds UDP port base + N - 1 (for firewalled clusters; default: a free port each, recorded in peers.json)",
    ),
    typed(
        "nat",
        "nat types",
        "the NAT each instance sits behind: none, full_cone, restricted_cone, port_restricted_cone or symmetric, each optionally for some instances, e.g. `symmetric {3-10}, full_cone` (default none; docs/network.md, NAT)",
    ),
    typed(
        "nat_timeout",
        "duration",
        "how long a NAT mapping (and each of its filter's permissions) lives after its last outgoing datagram (default 2m)",
    ),
    typed(
        "capture",
        "bool",
        "every instance writes a pcap of the datagrams it sends and receives, <ID>.pcap beside its other files (docs/network.md, Packet capture; `capture {3}` in the scenario captures some; default off)",
    ),
    typed(
        "capture_limit",
        "size",
        "most bytes of one instance's pcap file, e.g. 64MB or 1GiB, at least 64KiB; datagrams past it are counted, not written (default 64MB)",
    ),
    typed(
        "sim_threads",
        "integer",
        "threads a simulated run uses (`--threads`; default: this machine's cores); the outputs are the same for any number (docs/performance.md, Threads)",
    ),
    typed(
        "external_instances",
        "integer",
        "how many of instances_to_run are other programs (the last ids), started with external_cmd (default 0)",
    ),
    typed(
        "external_cmd",
        "string",
        "the command each external instance runs (sh -c, in the config's directory), e.g. `python3 my_peer.py`; its environment names the sync server, token, instance id and output files (docs/sync-protocol.md)",
    ),
    typed(
        "external_callbacks",
        "path",
        "the external program's callback manifest (JSON, `python3 -m peerlab manifest`), so `peerlab check` checks the commands external instances run",
    ),
    typed(
        "shared_verification",
        "bool",
        "instances of one process accept a signed packet another of them already verified (default: on when a process hosts several instances)",
    ),
    typed(
        "slurm_partition",
        "string",
        "SLURM partition to run in (slurm runner)",
    ),
    typed(
        "slurm_sbatch_options",
        "list",
        "extra sbatch options, e.g. `--time=00:15:00, --constraint=cpunode` (slurm runner)",
    ),
    typed(
        "slurm_local_output_dir",
        "path",
        "an absolute directory on each node's local disk for instance outputs, copied back to the run folder at the end (slurm runner; default: write to the shared run folder)",
    ),
    typed(
        "slurm_node_failure",
        "stop|continue",
        "what the run does when SLURM reports one of its nodes down: `stop` every other instance (the default) or let them `continue`; the node's instances end `lost` either way (slurm runner)",
    ),
    typed(
        "sync_interface",
        "string",
        "an interface of this host (e.g. `ib0`) whose IPv4 address the sync server listens on and the nodes connect to (slurm runner; default: the address that routes to the nodes)",
    ),
    typed(
        "slurm_immediate",
        "boolean",
        "fail at once when the cluster cannot give the nodes now (slurm runner; default false)",
    ),
    typed(
        "output_dir",
        "path",
        "where run folders are written (default `output`)",
    ),
    typed(
        "post_process_cmd",
        "command",
        "a shell command run in the run folder after peerlab's own report (Gumby's hook); its output goes to post_process.log, images it writes under plots/extra/ join report.html's gallery; a failure is reported, not a failed run",
    ),
    typed(
        "report_walker_messages",
        "include|exclude",
        "whether the report's message plots show the walker's discovery messages (introduction-*, puncture*); default `exclude`: they would dwarf the experiment's own messages",
    ),
    typed(
        "plugin_path",
        "list",
        "extra folders searched for plugin modules, relative to the config file's directory, e.g. `target/debug` (before the experiment's own folder)",
    ),
    typed(
        "verdicts",
        "all|none|list",
        "which modules judge the run: `all` (default), `none`, or module names, e.g. `benaloh, gossip`; the others are listed as skipped",
    ),
    gumby(
        "local_instance_cmd",
        "peerlab starts the instances itself (local runner: processes here; slurm runner: srun)",
    ),
    gumby(
        "das4_node_command",
        "peerlab runs its own instance command on every node",
    ),
    gumby(
        "das_node_command",
        "peerlab runs its own instance command on every node",
    ),
    gumby(
        "experiment_server_cmd",
        "peerlab runs its built-in sync server",
    ),
    gumby("config_server_cmd", "peerlab runs its built-in sync server"),
    gumby(
        "local_setup_cmd",
        "no setup script runs: peerlab is one binary and needs no build or virtualenv step",
    ),
    gumby(
        "remote_setup_cmd",
        "no setup script runs on the nodes: peerlab is one binary",
    ),
    gumby("remote_instance_cmd", "peerlab starts the instances itself"),
    gumby(
        "extra_r_scripts_to_run",
        "plots are drawn by peerlab's report, not by R scripts",
    ),
    gumby(
        "use_local_venv",
        "peerlab is one binary; there is no Python virtualenv",
    ),
    gumby(
        "virtualenv_dir",
        "peerlab is one binary; there is no Python virtualenv",
    ),
    gumby(
        "with_systemtap",
        "systemtap probes are not supported; CPU and memory are sampled from procfs",
    ),
    gumby(
        "use_local_systemtap",
        "systemtap probes are not supported; CPU and memory are sampled from procfs",
    ),
    gumby(
        "workspace_dir",
        "paths are relative to the config file's directory",
    ),
    gumby(
        "das4_reserve_duration",
        "the slurm runner derives the reservation time from node_timeout",
    ),
    gumby(
        "das4_processes_per_node",
        "instances are spread evenly over node_amount nodes",
    ),
    gumby(
        "head_nodes",
        "peerlab runs where you start it; there are no head nodes to ssh into",
    ),
    gumby(
        "process_guard_timeout",
        "use node_timeout: peerlab's runners stop instances that run too long",
    ),
];

/// The doc of `key`, if peerlab knows it.
pub fn key_doc(key: &str) -> Option<&'static KeyDoc> {
    KEYS.iter().find(|k| k.name == key)
}

/// The canonical key of `key` (an alias's target, or itself).
fn canonical(key: &str) -> &str {
    match key_doc(key) {
        Some(KeyDoc {
            kind: KeyKind::Alias(of),
            ..
        }) => of,
        _ => key,
    }
}

/// A value being typed: its text, where it is, and how to name it.
struct Val<'a> {
    key: &'a str,
    value: &'a RawValue,
    origin: &'a Origin,
}

impl Val<'_> {
    fn diag(&self, message: String) -> Diagnostic {
        let d = Diagnostic::error(message).with_code("bad-value");
        match self.origin {
            Origin::File(loc) => d.at(loc.clone()),
            Origin::Env(var) => Diagnostic {
                message: format!("{var}: {}", d.message),
                ..d
            },
        }
    }
}

impl Experiment {
    /// The experiment for a scenario run without a config: every default,
    /// named after the scenario file.
    pub fn for_scenario(scenario_file: &str) -> Self {
        let mut exp = Self::defaults(&stem(scenario_file));
        exp.scenario_file = Some(scenario_file.to_string());
        exp
    }

    /// As [`Experiment::for_scenario`], with the environment's
    /// `PEERLAB_<KEY>` overrides for the keys peerlab knows (a scenario run
    /// without a config takes them as a config's run would). Bad override
    /// values are errors naming the variable.
    pub fn for_scenario_with_env(
        scenario_file: &str,
        env: &BTreeMap<String, String>,
    ) -> (Self, Vec<Diagnostic>) {
        let (mut exp, mut diags) = Self::from_config(&RawConfig::empty(scenario_file), env);
        // A scenario run is named after its file; that is no news here.
        diags.retain(|d| d.code != Some("default-name"));
        exp.name = stem(scenario_file);
        exp.scenario_file = Some(scenario_file.to_string());
        (exp, diags)
    }

    fn defaults(name: &str) -> Self {
        Experiment {
            name: name.to_string(),
            scenario_file: None,
            instances: 1,
            nodes: 1,
            node_timeout: None,
            experiment_time: None,
            instances_per_process: 1,
            runner: Runner::Local,
            sync_host: None,
            sync_port: Port::Unique,
            tracker_port: Port::Unique,
            sync_experiment_start_delay: Duration::from_secs(1),
            registration_timeout: None,
            seed: None,
            time_scale: None,
            network: Network::Real,
            runtime: RuntimeKeys::default(),
            topology: None,
            topology_assign: Assignment::default(),
            nat: Default::default(),
            external: External::default(),
            slurm: Slurm::default(),
            output_dir: "output".to_string(),
            raw: BTreeMap::new(),
        }
    }

    /// Type a parsed config. `env` is the process environment: `PEERLAB_<KEY>`
    /// overrides `key` (for keys peerlab knows and keys the file sets), and
    /// `$NAME` in a typed value expands from it. Unknown keys are warnings,
    /// Gumby helper keys notes, bad values errors.
    pub fn from_config(
        raw: &RawConfig,
        env: &BTreeMap<String, String>,
    ) -> (Experiment, Vec<Diagnostic>) {
        Self::from_config_with_keys(raw, env, &[])
    }

    /// As [`Experiment::from_config`], with `extra_keys` (keys that loaded
    /// modules read) not reported as unknown.
    pub fn from_config_with_keys(
        raw: &RawConfig,
        env: &BTreeMap<String, String>,
        extra_keys: &[&str],
    ) -> (Experiment, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let key_locs: std::collections::HashMap<&str, &Location> = raw
            .entries
            .iter()
            .map(|e| (e.key.as_str(), &e.key_loc))
            .collect();
        let mut values: BTreeMap<String, ConfigValue> = BTreeMap::new();
        for Entry {
            key,
            value,
            value_loc,
            ..
        } in &raw.entries
        {
            values.insert(
                key.clone(),
                ConfigValue {
                    value: value.clone(),
                    origin: Origin::File(value_loc.clone()),
                },
            );
        }
        // Environment overrides, for keys peerlab knows and keys the file has.
        for (var, val) in env {
            let Some(k) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let lower = k.to_ascii_lowercase();
            let key = if values.contains_key(k) {
                k.to_string()
            } else if values.contains_key(&lower) || key_doc(&lower).is_some() {
                lower
            } else {
                continue;
            };
            let value = match parse_override(val) {
                Some(v) => v,
                None => RawValue::Str(val.clone()),
            };
            values.insert(
                key,
                ConfigValue {
                    value,
                    origin: Origin::Env(var.clone()),
                },
            );
        }
        for sec in &raw.sections {
            diags.push(
                Diagnostic::warning(format!(
                    "section `[{}]` is ignored: experiment configs have no sections",
                    sec.name
                ))
                .with_code("ignored-section")
                .at(sec.loc.clone())
                .with_help(if is_logging_config(raw) {
                    "this file looks like a Python logging config, not an experiment config"
                } else {
                    "move its keys to the top of the file"
                }),
            );
        }

        let mut exp = Self::defaults(&stem(&raw.name));
        // Config keys as variables, for `$NAME` in values.
        let config_vars: BTreeMap<String, String> = values
            .iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v.value.to_string()))
            .collect();

        // Which key supplies each canonical key: the canonical name, else
        // the first alias in KEYS order.
        let mut chosen: BTreeMap<&str, &str> = BTreeMap::new();
        for doc in KEYS {
            if doc.kind != KeyKind::Gumby && values.contains_key(doc.name) {
                chosen.entry(canonical(doc.name)).or_insert(doc.name);
            }
        }
        // Report aliases that disagree with the key actually used.
        for key in values.keys() {
            let canon = canonical(key);
            if canon == key.as_str() || key_doc(key).is_none() {
                continue;
            }
            let used = chosen[canon];
            if used != key.as_str() && values[used].value != values[key].value {
                let d = Diagnostic::warning(format!(
                    "`{key}` = {} is ignored: `{used}` = {} is used",
                    values[key].value, values[used].value
                ))
                .with_code("conflicting-keys")
                .with_help(format!("both set the {canon} value; keep one"));
                diags.push(match &values[key].origin {
                    Origin::File(l) => d.at(l.clone()),
                    Origin::Env(_) => d,
                });
            }
        }

        for (key, cv) in &values {
            let Some(doc) = key_doc(key) else {
                if extra_keys.contains(&key.as_str()) {
                    continue;
                }
                let mut d =
                    Diagnostic::warning(format!("unknown key `{key}`")).with_code("unknown-key");
                let known = KEYS
                    .iter()
                    .map(|k| k.name)
                    .chain(extra_keys.iter().copied());
                d.help = Some(Box::from(match suggest(key, known) {
                    Some(s) if s.eq_ignore_ascii_case(key) => format!("did you mean `{s}`? keys are lower case"),
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "peerlab does not use it; modules may read it (`peerlab check --explain-keys` lists the keys)".into(),
                }));
                if let Origin::File(l) = &cv.origin {
                    d = d.at(key_locs
                        .get(key.as_str())
                        .map(|l| (*l).clone())
                        .unwrap_or_else(|| l.clone()));
                }
                diags.push(d);
                continue;
            };
            if doc.kind == KeyKind::Gumby {
                let mut d = Diagnostic::note(format!(
                    "`{key}` is a Gumby helper setting, ignored: {}",
                    doc.doc
                ))
                .with_code("gumby-key");
                if let Origin::File(l) = &cv.origin {
                    d = d.at(key_locs
                        .get(key.as_str())
                        .map(|l| (*l).clone())
                        .unwrap_or_else(|| l.clone()));
                }
                diags.push(d);
                continue;
            }
            let canon = canonical(key);
            if chosen.get(canon) != Some(&key.as_str()) {
                continue;
            }
            let val = Val {
                key,
                value: &cv.value,
                origin: &cv.origin,
            };
            if let Err(d) = exp.set_typed(canon, &val, env, &config_vars) {
                diags.push(d);
            }
        }
        if !values.contains_key("experiment_name") && !raw.name.is_empty() {
            diags.push(
                Diagnostic::note(format!(
                    "no `experiment_name`: the experiment is called `{}`",
                    exp.name
                ))
                .with_code("default-name")
                .at(Location::file_only(raw.name.clone())),
            );
        }
        if let Some(m) = exp.nat.beyond(exp.instances) {
            let mut d = Diagnostic::warning(m).with_code("nat-ids");
            if let Some(l) = key_locs.get("nat").map(|l| (*l).clone()) {
                d = d.at(l);
            }
            diags.push(d);
        }
        if exp.runner == Runner::Local && exp.nodes > 1 {
            let key = chosen.get("node_amount").copied().unwrap_or("node_amount");
            let mut d = Diagnostic::note(format!(
                "`{key}` asks for {} machines, but the local runner runs every instance on this one",
                exp.nodes
            ))
            .with_code("local-nodes")
            .with_help("set `runner = slurm` to spread the instances over a cluster");
            if let Some(l) = key_locs.get(key).map(|l| (*l).clone()) {
                d = d.at(l);
            }
            diags.push(d);
        }
        exp.raw = values;
        // File order (problems from the environment first).
        diags.sort_by_key(|d| d.location.as_ref().map(|l| (l.line, l.column)));
        // The config's size limit bounds the list; this bounds the output.
        let mut sink = crate::source::DiagSink::new(crate::source::Limits::DEFAULT.diagnostics);
        sink.extend(diags);
        (exp, sink.finish())
    }

    fn set_typed(
        &mut self,
        canon: &str,
        v: &Val<'_>,
        env: &BTreeMap<String, String>,
        config_vars: &BTreeMap<String, String>,
    ) -> Result<(), Diagnostic> {
        let key = v.key;
        let text = || -> Result<String, Diagnostic> {
            let s = match v.value {
                RawValue::Str(s) => s,
                RawValue::List(_) => {
                    return Err(v
                        .diag(format!("`{key}` takes one value, found a list"))
                        .with_help(
                            "remove the commas (a trailing comma makes a list), or quote the value",
                        ));
                }
            };
            let mut lookup =
                |n: &str| -> Result<String, Option<String>> {
                    env.get(n).or_else(|| config_vars.get(n)).cloned().ok_or_else(|| {
                    Some(format!(
                        "set `{n}` in the environment, or override the key with {ENV_PREFIX}{}",
                        key.to_ascii_uppercase()
                    ))
                })
                };
            expand_vars(s, &mut lookup).map_err(|e| {
                let mut d = v.diag(format!("in `{key}`: {}", e.message));
                d.help = e.help.map(String::into_boxed_str);
                d
            })
        };
        let bad = |e: ValueError| v.diag(format!("bad value for `{key}`: {e}"));
        let count = |s: &str| -> Result<u32, Diagnostic> {
            let n = parse_uint(s).map_err(bad)?;
            if n == 0 || n > u64::from(u32::MAX) {
                return Err(v.diag(format!(
                    "bad value for `{key}`: expected a whole number from 1, found `{s}`"
                )));
            }
            Ok(n as u32)
        };
        let port = |s: &str| -> Result<Port, Diagnostic> {
            if s == UNIQUE_PORT {
                return Ok(Port::Unique);
            }
            match parse_uint(s) {
                Ok(p @ 1..=65535) => Ok(Port::Fixed(p as u16)),
                _ => Err(v
                    .diag(format!("bad value for `{key}`: expected a port from 1 to 65535 or `{UNIQUE_PORT}`, found `{s}`"))),
            }
        };
        let duration = |s: &str| parse_duration(s).map_err(bad);
        match canon {
            "experiment_name" => {
                let s = text()?;
                if s.trim().is_empty() {
                    return Err(v
                        .diag("`experiment_name` is empty".into())
                        .with_help("name the experiment; it names the run folder"));
                }
                self.name = s;
            }
            "scenario_file" => {
                let s = text()?;
                self.scenario_file = (!s.is_empty()).then_some(s);
            }
            "instances_to_run" => self.instances = count(&text()?)?,
            "node_amount" => self.nodes = count(&text()?)?,
            "node_timeout" => self.node_timeout = Some(duration(&text()?)?),
            "experiment_time" => self.experiment_time = Some(duration(&text()?)?),
            "instances_per_process" => self.instances_per_process = count(&text()?)?,
            "runner" => {
                self.runner =
                    match text()?.to_ascii_lowercase().as_str() {
                        "local" => Runner::Local,
                        "slurm" => Runner::Slurm,
                        other => return Err(v.diag(format!(
                            "bad value for `runner`: expected `local` or `slurm`, found `{other}`"
                        ))),
                    }
            }
            "network" => {
                self.network = match text()?.to_ascii_lowercase().as_str() {
                    "real" => Network::Real,
                    "simulated" => Network::Simulated,
                    other => {
                        return Err(v.diag(format!("bad value for `network`: expected `real` or `simulated`, found `{other}`")));
                    }
                }
            }
            "sync_host" => {
                let s = text()?;
                self.sync_host = (!s.is_empty()).then_some(s);
            }
            "sync_port" => self.sync_port = port(&text()?)?,
            "tracker_port" => self.tracker_port = port(&text()?)?,
            "sync_experiment_start_delay" => self.sync_experiment_start_delay = duration(&text()?)?,
            "registration_timeout" => {
                let s = text()?;
                self.registration_timeout = Some(registration_timeout(&s).map_err(|m| v.diag(m))?);
            }
            "seed" => self.seed = Some(parse_uint(&text()?).map_err(bad)?),
            "time_scale" => {
                let s = text()?;
                let f = parse_float(&s).map_err(bad)?;
                if f <= 0.0 {
                    return Err(v.diag(format!(
                        "bad value for `time_scale`: expected a number above 0, found `{s}`"
                    )));
                }
                self.time_scale = Some(f);
            }
            "network_delay"
            | "network_jitter"
            | "network_loss"
            | "shared_verification"
            | "resources_interval"
            | "stats_interval"
            | "instance_port_base"
            | "network_up"
            | "network_down"
            | "network_queue"
            | "capture"
            | "capture_limit"
            | "sim_threads" => {
                self.runtime.set(canon, &text()?).map_err(|m| v.diag(m))?;
            }
            "topology" => {
                let s = text()?;
                self.topology = (!s.trim().is_empty()).then(|| s.trim().to_string());
            }
            "topology_assign" => {
                // `europe:0.5, asia:0.5` is a list to the config's grammar.
                let s = match v.value {
                    RawValue::List(items) => items.join(","),
                    RawValue::Str(_) => text()?,
                };
                self.topology_assign = Assignment::parse(&s).map_err(|m| v.diag(m))?;
            }
            "nat" | "nat_timeout" => {
                // A comma list (`symmetric {3-10}, full_cone`) is one value here.
                let s = v.value.to_string();
                self.nat.set(canon, &s).map_err(|m| v.diag(m))?;
            }
            "external_instances" | "external_cmd" | "external_callbacks" => {
                self.external.set(canon, &text()?).map_err(|m| v.diag(m))?;
            }
            "slurm_partition" => {
                let s = text()?;
                self.slurm.partition = (!s.is_empty()).then_some(s);
            }
            "slurm_sbatch_options" => {
                self.slurm.sbatch_options = match v.value {
                    RawValue::List(items) => items.clone(),
                    RawValue::Str(_) => text()?.split_whitespace().map(str::to_string).collect(),
                }
            }
            "slurm_immediate" => self.slurm.immediate = parse_bool(&text()?).map_err(bad)?,
            "slurm_node_failure" => {
                let s = text()?.to_ascii_lowercase();
                if s != "stop" && s != "continue" {
                    return Err(v.diag(format!(
                        "bad value for `slurm_node_failure`: expected `stop` or `continue`, found `{s}`"
                    )));
                }
            }
            "slurm_local_output_dir" => {
                let s = text()?;
                if !s.starts_with('/') {
                    return Err(v.diag(format!(
                        "bad value for `slurm_local_output_dir`: expected an absolute path, found `{s}`"
                    )));
                }
            }
            "report_walker_messages" => {
                let s = text()?.to_ascii_lowercase();
                if s != "include" && s != "exclude" {
                    return Err(v.diag(format!(
                        "bad value for `report_walker_messages`: expected `include` or `exclude`, found `{s}`"
                    )));
                }
            }
            "output_dir" => {
                let s = text()?;
                if s.is_empty() {
                    return Err(v.diag("`output_dir` is empty".into()));
                }
                self.output_dir = s;
            }
            _ => {}
        }
        Ok(())
    }

    /// The config as variables for a scenario's `$NAME`, as Gumby exported
    /// them: every key upper-cased (lists joined with `,`), plus
    /// `EXPERIMENT_NAME`.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut vars: BTreeMap<String, String> = self
            .raw
            .iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v.value.to_string()))
            .collect();
        vars.insert("EXPERIMENT_NAME".into(), self.name.clone());
        vars
    }

    /// [`Vars`] for parsing this experiment's scenario: [`Experiment::vars`]
    /// then `env`.
    pub fn scenario_vars(&self, env: &BTreeMap<String, String>) -> Vars {
        Vars::new().with_config(self.vars()).with_env(env.clone())
    }

    /// When the run is ended, in scenario time, and which key says so: the
    /// earlier of `experiment_time` and `node_timeout`.
    pub fn time_limit(&self) -> Option<(&'static str, Duration)> {
        match (self.experiment_time, self.node_timeout) {
            (Some(e), Some(n)) if n < e => Some(("node_timeout", n)),
            (Some(e), _) => Some(("experiment_time", e)),
            (None, Some(n)) => Some(("node_timeout", n)),
            (None, None) => None,
        }
    }

    /// A key's value as a string (for module-specific keys like `modulus`).
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.raw.get(key).and_then(|v| v.value.as_str())
    }

    /// Whether the config (or a `PEERLAB_<KEY>` override) states the
    /// instance count, under its name or a Gumby alias.
    pub fn states_instance_count(&self) -> bool {
        [
            "instances_to_run",
            "das4_instances_to_run",
            "sync_subscribers_amount",
        ]
        .iter()
        .any(|k| self.raw.contains_key(*k))
    }

    /// Checks of a scenario against this experiment: selectors naming
    /// instances that do not exist (when the config states the instance
    /// count), and commands scheduled after the experiment ends.
    pub fn check_scenario(&self, scenario: &Scenario) -> Vec<Diagnostic> {
        // Gumby configs often leave the instance count to their helper
        // script (`process_guard.py -c … -c …`): only a count the config
        // states is checked against the selectors.
        let mut diags = if self.states_instance_count() {
            scenario.check_peers(self.instances)
        } else {
            Vec::new()
        };
        if let Some((key, limit)) = self.time_limit() {
            let limit_s = limit.as_secs_f64();
            let late: Vec<_> = scenario
                .commands
                .iter()
                .filter(|c| c.phase.seconds().is_some_and(|t| t > limit_s))
                .collect();
            if let Some(first) = late.first() {
                let more = if late.len() > 1 {
                    format!(" (and {} more)", late.len() - 1)
                } else {
                    String::new()
                };
                diags.push(
                    Diagnostic::warning(format!(
                        "`{}` runs at {}s, after the experiment ends ({key} is {}s){more}",
                        first.callback,
                        first.phase.seconds().unwrap_or(0.0),
                        limit_s
                    ))
                    .with_code("after-end")
                    .at(first.loc.clone())
                    .with_help(format!("raise {key}, or move the command earlier")),
                );
            }
        }
        diags
    }
}

/// `a, b` given in the environment is a list, like in the file.
fn parse_override(s: &str) -> Option<RawValue> {
    if !s.contains(',') {
        return None;
    }
    Some(RawValue::List(
        s.split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
    ))
}

fn is_logging_config(raw: &RawConfig) -> bool {
    let names: BTreeSet<&str> = raw.sections.iter().map(|s| s.name.as_str()).collect();
    names.contains("loggers") || names.contains("handlers") || names.contains("formatters")
}

/// The file name without directories and extension.
fn stem(name: &str) -> String {
    Path::new(name)
        .file_stem()
        .map_or_else(|| name.to_string(), |s| s.to_string_lossy().into_owned())
}
