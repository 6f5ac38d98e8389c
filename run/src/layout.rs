//! Where every file of a run folder goes, relative to the folder: the fixed
//! names at its top and Gumby's `<host>/node<NNN>/` layout below (with an
//! instance's packet capture, `<ID>.pcap`, beside its other files). No I/O
//! here: names in, paths out (and back: [`instance_file`] and
//! [`process_file`] recognise a name found on disk).

use std::path::PathBuf;

/// The plan, written before any instance starts.
pub const RUN_JSON: &str = "run.json";
/// The runner's record of the run's end, completed by post-processing.
pub const SUMMARY_JSON: &str = "summary.json";
/// Every instance's overlay address and public key ([`crate::schema::PeersRecord`]).
pub const PEERS_JSON: &str = "peers.json";
/// One test case per instance and per verdict.
pub const JUNIT_XML: &str = "junit.xml";
/// Copies of every file the experiment was read from.
pub const SOURCES_DIR: &str = "sources";
/// The config's keys as the run used them.
pub const EXPERIMENT_CONF: &str = "experiment.conf";
/// A copy of the scenario file.
pub const EXPERIMENT_SCENARIO: &str = "experiment.scenario";
/// Post-processing's plots.
pub const PLOTS_DIR: &str = "plots";
/// Post-processing's page.
pub const REPORT_HTML: &str = "report.html";
/// Post-processing's "peers online" series (`t,online`: how many instances
/// were online from each change on), in runs whose scenario uses `leave`,
/// `join`, `restart` or `churn`.
pub const PEERS_ONLINE_CSV: &str = "peers_online.csv";

/// Where one node's files go, relative to the run folder.
pub fn instance_dir(host: &str, node: u32) -> PathBuf {
    PathBuf::from(node_dir(host, node))
}

/// `<host>/node<NNN>`, with `/` (the report keeps paths as strings).
pub fn node_dir(host: &str, node: u32) -> String {
    format!("{host}/node{node:03}")
}

/// The file name stem of an instance: its id on five digits.
pub fn instance_stem(id: u32) -> String {
    format!("{id:05}")
}

/// The copy of the `index`-th (0-based) source file, relative to the run folder.
pub fn source_copy(index: usize, name: &str) -> String {
    format!("{SOURCES_DIR}/{:02}-{name}", index + 1)
}

/// One kind of an instance's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceFile {
    Out,
    Err,
    Stats,
    Events,
    /// The datagrams it sent and received, when captured (`capture`): a
    /// pcap file (docs/network.md, Packet capture).
    Capture,
}

impl InstanceFile {
    /// The file name's suffix after `<ID>.`.
    pub fn suffix(self) -> &'static str {
        match self {
            InstanceFile::Out => "out",
            InstanceFile::Err => "err",
            InstanceFile::Stats => "stats.jsonl",
            InstanceFile::Events => "events.jsonl",
            InstanceFile::Capture => "pcap",
        }
    }

    /// `host/node<NNN>/<ID>.<suffix>`, relative to the run folder, with `/`.
    pub fn rel(self, host: &str, node: u32, id: u32) -> String {
        format!(
            "{}/{}.{}",
            node_dir(host, node),
            instance_stem(id),
            self.suffix()
        )
    }
}

/// `00001.stats.jsonl` -> (1, Stats); anything else -> `None`.
pub fn instance_file(name: &str) -> Option<(u32, InstanceFile)> {
    let (digits, rest) = name.split_once('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kind = [
        InstanceFile::Stats,
        InstanceFile::Events,
        InstanceFile::Out,
        InstanceFile::Err,
        InstanceFile::Capture,
    ]
    .into_iter()
    .find(|k| k.suffix() == rest)?;
    Some((digits.parse().ok()?, kind))
}

/// One kind of an OS process's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessFile {
    /// CPU, memory and I/O samples.
    Resources,
    /// What the process wrote to stderr.
    Stderr,
    /// The callback each of its instances is running.
    Inflight,
}

impl ProcessFile {
    pub fn suffix(self) -> &'static str {
        match self {
            ProcessFile::Resources => "resources.jsonl",
            ProcessFile::Stderr => "stderr",
            ProcessFile::Inflight => "inflight",
        }
    }

    /// `host/node<NNN>/process<PPP>.<suffix>`, relative to the run folder, with `/`.
    pub fn rel(self, host: &str, node: u32, process: u32) -> String {
        format!(
            "{}/process{process:03}.{}",
            node_dir(host, node),
            self.suffix()
        )
    }
}

/// `process001.resources.jsonl` -> (1, Resources); anything else -> `None`.
pub fn process_file(name: &str) -> Option<(u32, ProcessFile)> {
    let rest = name.strip_prefix("process")?;
    let (digits, suffix) = rest.split_once('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kind = [
        ProcessFile::Resources,
        ProcessFile::Stderr,
        ProcessFile::Inflight,
    ]
    .into_iter()
    .find(|k| k.suffix() == suffix)?;
    Some((digits.parse().ok()?, kind))
}

/// Paths of one instance's files, relative to the run folder.
#[derive(Debug, Clone)]
pub struct InstancePaths {
    pub out: PathBuf,
    pub err: PathBuf,
    pub stats: PathBuf,
    pub events: PathBuf,
    /// Its packet capture (written only when capture is on).
    pub capture: PathBuf,
}

impl InstancePaths {
    pub fn new(host: &str, node: u32, id: u32) -> Self {
        let path = |f: InstanceFile| PathBuf::from(f.rel(host, node, id));
        Self {
            out: path(InstanceFile::Out),
            err: path(InstanceFile::Err),
            stats: path(InstanceFile::Stats),
            events: path(InstanceFile::Events),
            capture: path(InstanceFile::Capture),
        }
    }
}

/// The resources file of one OS process, relative to the run folder.
pub fn process_resources(host: &str, node: u32, process: u32) -> PathBuf {
    PathBuf::from(ProcessFile::Resources.rel(host, node, process))
}

/// The captured stderr of one OS process (panics, crashes), relative to the run folder.
pub fn process_stderr(host: &str, node: u32, process: u32) -> PathBuf {
    PathBuf::from(ProcessFile::Stderr.rel(host, node, process))
}

/// Which module callback each instance of one OS process is running,
/// relative to the run folder.
pub fn process_inflight(host: &str, node: u32, process: u32) -> PathBuf {
    PathBuf::from(ProcessFile::Inflight.rel(host, node, process))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_files_follow_gumbys_layout() {
        let p = InstancePaths::new("localhost", 1, 7);
        assert_eq!(p.out, PathBuf::from("localhost/node001/00007.out"));
        assert_eq!(
            p.stats,
            PathBuf::from("localhost/node001/00007.stats.jsonl")
        );
        assert_eq!(
            process_stderr("h", 2, 3),
            PathBuf::from("h/node002/process003.stderr")
        );
    }

    #[test]
    fn file_names_are_recognised() {
        assert_eq!(
            instance_file("00001.stats.jsonl"),
            Some((1, InstanceFile::Stats))
        );
        assert_eq!(instance_file("00042.err"), Some((42, InstanceFile::Err)));
        assert_eq!(
            instance_file("00003.pcap"),
            Some((3, InstanceFile::Capture))
        );
        assert_eq!(instance_file("process001.resources.jsonl"), None);
        assert_eq!(instance_file("notes.txt"), None);
        assert_eq!(instance_file("00001.stats.jsonl.bak"), None);
        assert_eq!(
            process_file("process001.resources.jsonl"),
            Some((1, ProcessFile::Resources))
        );
        assert_eq!(process_file("process001.resources.jsonl.tmp"), None);
        assert_eq!(process_file("processx.stderr"), None);
    }
}
