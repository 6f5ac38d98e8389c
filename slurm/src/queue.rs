//! What SLURM says about a job, parsed: `squeue`, `sacct` and `scontrol`
//! rows, `sbatch`'s job id, exit codes, the pending reasons that mean the
//! job can never start, and how a job's end reads in words. Pure
//! functions over the commands' text: running the commands is the
//! poller's.

use std::fmt::Write as _;

/// A SLURM job state (`squeue %T`, `sacct State`, `scontrol JobState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Configuring,
    Running,
    Completing,
    Suspended,
    Completed,
    Failed,
    Cancelled,
    Timeout,
    NodeFail,
    Preempted,
    OutOfMemory,
    BootFail,
    Deadline,
    Other(String),
}

impl JobState {
    /// Parse SLURM's spelling (`CANCELLED by 0` counts as `CANCELLED`).
    pub fn parse(text: &str) -> Self {
        let word = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches('+');
        match word {
            "PENDING" | "PD" => Self::Pending,
            "CONFIGURING" | "CF" => Self::Configuring,
            "RUNNING" | "R" => Self::Running,
            "COMPLETING" | "CG" => Self::Completing,
            "SUSPENDED" | "S" => Self::Suspended,
            "COMPLETED" | "CD" => Self::Completed,
            "FAILED" | "F" => Self::Failed,
            "CANCELLED" | "CA" => Self::Cancelled,
            "TIMEOUT" | "TO" => Self::Timeout,
            "NODE_FAIL" | "NF" => Self::NodeFail,
            "PREEMPTED" | "PR" => Self::Preempted,
            "OUT_OF_MEMORY" | "OOM" => Self::OutOfMemory,
            "BOOT_FAIL" | "BF" => Self::BootFail,
            "DEADLINE" | "DL" => Self::Deadline,
            other => Self::Other(other.to_string()),
        }
    }

    /// The job is over: nothing of it runs any more.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Completed
                | Self::Failed
                | Self::Cancelled
                | Self::Timeout
                | Self::NodeFail
                | Self::Preempted
                | Self::OutOfMemory
                | Self::BootFail
                | Self::Deadline
        )
    }

    /// Lowercase words for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Pending => "pending".into(),
            Self::Configuring => "configuring".into(),
            Self::Running => "running".into(),
            Self::Completing => "completing".into(),
            Self::Suspended => "suspended".into(),
            Self::Completed => "completed".into(),
            Self::Failed => "failed".into(),
            Self::Cancelled => "cancelled".into(),
            Self::Timeout => "ended by its time limit".into(),
            Self::NodeFail => "ended by a node failure".into(),
            Self::Preempted => "preempted".into(),
            Self::OutOfMemory => "out of memory".into(),
            Self::BootFail => "failed to boot its nodes".into(),
            Self::Deadline => "past its deadline".into(),
            Self::Other(s) => s.to_lowercase(),
        }
    }
}

/// One job as a SLURM query reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: String,
    pub state: JobState,
    /// Why it pends (or `None`), as SLURM words it.
    pub reason: String,
    /// Its nodes, in SLURM's host list syntax (`n[1-3]`); empty while pending.
    pub nodes: String,
    /// The batch script's exit code and the signal that ended it, when known.
    pub exit: Option<(i32, i32)>,
}

/// The `squeue` format [`parse_squeue`] reads.
pub const SQUEUE_FORMAT: &str = "%i|%T|%r|%N";

/// Parse `squeue -h -o '%i|%T|%r|%N'` output: the row of job `id`, if listed.
pub fn parse_squeue(output: &str, id: &str) -> Option<JobRow> {
    output.lines().find_map(|line| {
        let mut f = line.trim().splitn(4, '|');
        let job = f.next()?.trim();
        if job != id {
            return None;
        }
        Some(JobRow {
            id: job.to_string(),
            state: JobState::parse(f.next()?.trim()),
            reason: f.next().unwrap_or("").trim().to_string(),
            nodes: f.next().unwrap_or("").trim().to_string(),
            exit: None,
        })
    })
}

/// The `sacct` fields [`parse_sacct`] reads (with `-n -P -X`).
pub const SACCT_FIELDS: &str = "JobIDRaw,State,ExitCode,Reason,NodeList";

/// Parse `sacct -n -P -X -o JobIDRaw,State,ExitCode,Reason,NodeList` output.
pub fn parse_sacct(output: &str, id: &str) -> Option<JobRow> {
    output.lines().find_map(|line| {
        let f: Vec<&str> = line.trim().split('|').collect();
        if f.len() < 3 || f[0].trim() != id {
            return None;
        }
        Some(JobRow {
            id: id.to_string(),
            state: JobState::parse(f[1]),
            reason: f.get(3).unwrap_or(&"").trim().to_string(),
            nodes: f.get(4).unwrap_or(&"").trim().to_string(),
            exit: parse_exit_code(f[2]),
        })
    })
}

/// Parse `scontrol -o show job ID` output (one line of `Key=Value` words).
pub fn parse_scontrol(output: &str, id: &str) -> Option<JobRow> {
    let line = output
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == format!("JobId={id}")))?;
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .map(str::to_string)
    };
    Some(JobRow {
        id: id.to_string(),
        state: JobState::parse(&field("JobState")?),
        reason: field("Reason").unwrap_or_default(),
        nodes: field("NodeList")
            .filter(|n| n != "(null)")
            .unwrap_or_default(),
        exit: field("ExitCode").and_then(|e| parse_exit_code(&e)),
    })
}

/// `3:0` (exit code, signal) as SLURM writes it.
pub fn parse_exit_code(text: &str) -> Option<(i32, i32)> {
    let (code, signal) = text.trim().split_once(':')?;
    Some((code.parse().ok()?, signal.parse().ok()?))
}

/// The job id `sbatch --parsable` printed (`12` or `12;cluster`).
pub fn parse_sbatch_id(output: &str) -> Option<String> {
    let first = output.lines().map(str::trim).find(|l| !l.is_empty())?;
    let id = first.split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

/// Pending reasons that mean SLURM will never start the job as submitted,
/// with what they mean.
const NEVER_REASONS: &[(&str, &str)] = &[
    (
        "PartitionNodeLimit",
        "the job asks for more nodes than the partition allows",
    ),
    (
        "PartitionTimeLimit",
        "the job's time limit is above the partition's",
    ),
    (
        "PartitionConfig",
        "the partition's configuration does not allow this job",
    ),
    ("PartitionDown", "the partition is down"),
    ("PartitionInactive", "the partition is inactive"),
    (
        "ReqNodeNotAvail",
        "a node the job needs is not available (down, drained or reserved)",
    ),
    (
        "BadConstraints",
        "no node has the features the job's constraints ask for",
    ),
    ("InvalidAccount", "the job's account is invalid"),
    ("InvalidQOS", "the job's QOS is invalid"),
    (
        "QOSMaxNodePerJobLimit",
        "the job asks for more nodes than its QOS allows",
    ),
    (
        "QOSMaxWallDurationPerJobLimit",
        "the job's time limit is above its QOS's",
    ),
    (
        "AssocMaxNodesPerJobLimit",
        "the job asks for more nodes than its association allows",
    ),
    (
        "AssocMaxWallDurationPerJobLimit",
        "the job's time limit is above its association's",
    ),
    (
        "DependencyNeverSatisfied",
        "the job depends on a job that will never complete",
    ),
];

/// Whether a pending job with `reason` can never start as submitted (or,
/// with `immediate`, cannot start now); the explanation if so.
pub fn cannot_place(reason: &str, immediate: bool) -> Option<String> {
    let code = reason.split([',', ' ']).next().unwrap_or("").trim();
    if let Some((_, why)) = NEVER_REASONS.iter().find(|(r, _)| *r == code) {
        return Some(format!("{reason}: {why}"));
    }
    if immediate && !code.is_empty() && code != "None" {
        return Some(format!(
            "{reason}: the nodes are not free now and slurm_immediate is set"
        ));
    }
    None
}

/// How a job ended, in words: its state, SLURM's reason when it says
/// more than `None`, and the batch script's exit code or signal.
pub fn describe_end(job: &str, row: &JobRow) -> String {
    let mut text = format!("SLURM job {job} {}", row.state.describe());
    if !row.reason.is_empty() && row.reason != "None" {
        let _ = write!(text, " ({})", row.reason);
    }
    match row.exit {
        Some((0, 0)) | None => {}
        Some((code, 0)) => {
            let _ = write!(text, ", exit code {code}");
        }
        Some((_, sig)) => {
            let _ = write!(text, ", signal {sig}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_rows_are_found_by_job_id() {
        let out = "11|RUNNING|None|n[1-3]\n12|PENDING|PartitionNodeLimit|\n";
        assert_eq!(
            parse_squeue(out, "12"),
            Some(JobRow {
                id: "12".into(),
                state: JobState::Pending,
                reason: "PartitionNodeLimit".into(),
                nodes: String::new(),
                exit: None,
            })
        );
        let row = parse_squeue(out, "11").unwrap();
        assert_eq!(row.state, JobState::Running);
        assert_eq!(row.nodes, "n[1-3]");
        assert_eq!(parse_squeue(out, "1"), None);
        assert_eq!(parse_squeue("", "12"), None);
        let row = parse_squeue("7|COMPLETING|None|n1\n", "7").unwrap();
        assert_eq!(row.state, JobState::Completing);
        assert!(!row.state.is_terminal());
        let row = parse_squeue("8|PENDING|ReqNodeNotAvail, UnavailableNodes:n4|\n", "8").unwrap();
        assert_eq!(row.reason, "ReqNodeNotAvail, UnavailableNodes:n4");
    }

    #[test]
    fn sacct_and_scontrol_give_the_end_and_exit_code() {
        let row = parse_sacct("12|CANCELLED by 0|0:15|None|n[1-3]\n", "12").unwrap();
        assert_eq!(row.state, JobState::Cancelled);
        assert!(row.state.is_terminal());
        assert_eq!(row.exit, Some((0, 15)));
        assert_eq!(row.nodes, "n[1-3]");
        let row = parse_sacct("12|FAILED|3:0|NonZeroExitCode|n1\n", "12").unwrap();
        assert_eq!((row.state, row.exit), (JobState::Failed, Some((3, 0))));
        assert_eq!(parse_sacct("13|COMPLETED|0:0\n", "12"), None);
        assert_eq!(parse_sacct("garbage", "12"), None);

        let line = "JobId=6 JobName=wrap UserId=root(0) JobState=FAILED Reason=NonZeroExitCode \
                    Dependency=(null) ExitCode=3:0 NodeList=n1 BatchHost=n1";
        let row = parse_scontrol(line, "6").unwrap();
        assert_eq!(row.state, JobState::Failed);
        assert_eq!(row.reason, "NonZeroExitCode");
        assert_eq!(row.exit, Some((3, 0)));
        assert_eq!(row.nodes, "n1");
        let pending =
            "JobId=2 JobState=PENDING Reason=PartitionNodeLimit ExitCode=0:0 NodeList=(null)";
        let row = parse_scontrol(pending, "2").unwrap();
        assert_eq!((row.state, row.nodes.as_str()), (JobState::Pending, ""));
        assert_eq!(parse_scontrol(line, "60"), None);
    }

    #[test]
    fn job_ends_are_described_with_reason_and_exit() {
        let row = |state: &str, reason: &str, exit| JobRow {
            id: "7".into(),
            state: JobState::parse(state),
            reason: reason.into(),
            nodes: String::new(),
            exit,
        };
        assert_eq!(
            describe_end("7", &row("FAILED", "JobLaunchFailure", Some((0, 53)))),
            "SLURM job 7 failed (JobLaunchFailure), signal 53"
        );
        assert_eq!(
            describe_end("7", &row("COMPLETED", "None", Some((0, 0)))),
            "SLURM job 7 completed"
        );
        assert_eq!(
            describe_end("7", &row("FAILED", "NonZeroExitCode", Some((1, 0)))),
            "SLURM job 7 failed (NonZeroExitCode), exit code 1"
        );
        assert_eq!(
            describe_end("7", &row("TIMEOUT", "TimeLimit", None)),
            "SLURM job 7 ended by its time limit (TimeLimit)"
        );
    }

    #[test]
    fn sbatch_ids_and_states_parse() {
        assert_eq!(parse_sbatch_id("12\n"), Some("12".into()));
        assert_eq!(parse_sbatch_id("12;das5\n"), Some("12".into()));
        assert_eq!(parse_sbatch_id("Submitted batch job 12\n"), None);
        assert_eq!(parse_sbatch_id(""), None);
        assert_eq!(JobState::parse("CANCELLED by 1000"), JobState::Cancelled);
        assert_eq!(JobState::parse("R"), JobState::Running);
        assert_eq!(
            JobState::parse("REQUEUED"),
            JobState::Other("REQUEUED".into())
        );
        assert!(!JobState::parse("REQUEUED").is_terminal());
        assert_eq!(parse_exit_code("1:9"), Some((1, 9)));
        assert_eq!(parse_exit_code("x"), None);
    }

    #[test]
    fn unplaceable_reasons_fail_and_waiting_reasons_wait() {
        let why = cannot_place("PartitionNodeLimit", false).unwrap();
        assert!(why.starts_with("PartitionNodeLimit: "), "{why}");
        assert!(cannot_place("ReqNodeNotAvail, UnavailableNodes:n4", false).is_some());
        assert!(cannot_place("BadConstraints", false).is_some());
        assert!(cannot_place("PartitionConfig", false).is_some());
        assert_eq!(cannot_place("Resources", false), None);
        assert_eq!(cannot_place("Priority", false), None);
        assert_eq!(cannot_place("None", false), None);
        assert_eq!(cannot_place("", true), None);
        assert_eq!(cannot_place("None", true), None);
        let why = cannot_place("Resources", true).unwrap();
        assert!(why.contains("slurm_immediate"), "{why}");
    }
}
