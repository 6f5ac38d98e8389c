//! The SLURM job's batch script: `#SBATCH` lines, the user's options, and
//! one `srun` step that starts one node agent per node. Pure text: it
//! writes no file and runs nothing (the runner writes and submits it).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::{SLURM_DIR, SlurmSettings};
use peerlab_sync::protocol::TOKEN_ENV;

/// SLURM's `--time` text for a duration, rounded up to whole minutes
/// (`[D-]HH:MM:SS`).
pub fn format_time_limit(d: Duration) -> String {
    let minutes = d.as_secs().div_ceil(60).max(1);
    let (days, rest) = (minutes / (24 * 60), minutes % (24 * 60));
    let (h, m) = (rest / 60, rest % 60);
    if days > 0 {
        format!("{days}-{h:02}:{m:02}:00")
    } else {
        format!("{h:02}:{m:02}:00")
    }
}

/// Everything the batch script says.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub run_id: String,
    pub run_dir: PathBuf,
    /// The peerlab binary the nodes run (on the shared file system).
    pub exe: PathBuf,
    /// `host:port` of the sync server, as the nodes reach it.
    pub sync: String,
    pub instances: u32,
    pub instances_per_process: u32,
    pub slurm: SlurmSettings,
}

/// Why a batch script cannot be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScriptError {
    #[error(
        "the path {0} has white space or a quote, which an #SBATCH line cannot carry: choose an output folder without them (--output DIR)"
    )]
    UnsafePath(String),
    #[error("the sbatch option `{0}` spans lines: give each option on one line")]
    MultilineOption(String),
}

/// The batch script: peerlab's `#SBATCH` lines, the user's extra options,
/// then one `srun` starting a node agent on every node.
pub fn render_script(job: &JobSpec) -> Result<String, ScriptError> {
    let out = job.run_dir.join(SLURM_DIR).join("job.out");
    for p in [&job.run_dir, &out] {
        let s = p.to_string_lossy();
        if s.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\'')
        {
            return Err(ScriptError::UnsafePath(s.into_owned()));
        }
    }
    if let Some(bad) = job.slurm.sbatch_options.iter().find(|o| o.contains('\n')) {
        return Err(ScriptError::MultilineOption(bad.clone()));
    }
    let s = &job.slurm;
    let mut text = String::from("#!/bin/sh\n");
    let mut directive = |line: String| {
        let _ = writeln!(text, "#SBATCH {line}");
    };
    directive(format!("--job-name=peerlab-{}", job.run_id));
    directive(format!("--nodes={}", s.nodes));
    directive("--ntasks-per-node=1".into());
    directive(format!("--time={}", format_time_limit(s.time_limit)));
    directive(format!("--output={}", out.display()));
    directive(format!("--chdir={}", job.run_dir.display()));
    if let Some(partition) = &s.partition {
        directive(format!("--partition={partition}"));
    }
    for option in &s.sbatch_options {
        directive(option.clone());
    }
    let _ = writeln!(
        text,
        "# Written by peerlab for run {}: one node agent per node, each starting its\n\
         # share of the {} instances. The run token comes in ${TOKEN_ENV}.",
        job.run_id, job.instances
    );
    let mut agent = vec![
        shell_quote(&job.exe.to_string_lossy()),
        "-v".into(),
        "node-agent".into(),
        "--run-dir".into(),
        shell_quote(&job.run_dir.to_string_lossy()),
        "--sync".into(),
        shell_quote(&job.sync),
        "--instances".into(),
        job.instances.to_string(),
        "--nodes".into(),
        s.nodes.to_string(),
        "--instances-per-process".into(),
        job.instances_per_process.to_string(),
    ];
    if let Some(dir) = &s.local_dir {
        agent.push("--local-dir".into());
        agent.push(shell_quote(&dir.to_string_lossy()));
    }
    // Log files are not terminals: no colour codes in job.out and .stderr files.
    text.push_str("export NO_COLOR=1\n");
    let _ = writeln!(
        text,
        "exec srun --nodes={} --ntasks-per-node=1 --kill-on-bad-exit=0 \\\n    {}",
        s.nodes,
        agent.join(" ")
    );
    Ok(text)
}

/// Quote a word for `sh` when it needs it.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_QUEUE_TIMEOUT;
    use expect_test::expect;
    #[test]
    fn time_limits_round_up_to_minutes() {
        assert_eq!(format_time_limit(Duration::from_secs(0)), "00:01:00");
        assert_eq!(format_time_limit(Duration::from_secs(61)), "00:02:00");
        assert_eq!(format_time_limit(Duration::from_secs(3600)), "01:00:00");
        assert_eq!(
            format_time_limit(Duration::from_secs(2 * 86400 + 90)),
            "2-00:02:00"
        );
    }

    fn spec() -> JobSpec {
        JobSpec {
            run_id: "0003-benaloh".into(),
            run_dir: "/shared/exp/output/0003-benaloh".into(),
            exe: "/shared/peerlab/bin/peerlab".into(),
            sync: "fs0.das5:41234".into(),
            instances: 9,
            instances_per_process: 1,
            slurm: SlurmSettings {
                partition: Some("defq".into()),
                sbatch_options: vec!["--constraint=cpunode".into(), "--time=00:15:00".into()],
                nodes: 3,
                time_limit: Duration::from_secs(165 + 60 + 1 + 120),
                sync_host: "fs0.das5".into(),
                immediate: false,
                local_dir: Some("/local/peerlab".into()),
                poll_interval: Duration::from_secs(1),
                queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            },
        }
    }

    #[test]
    fn the_batch_script_starts_one_agent_per_node() {
        expect![[r#"
            #!/bin/sh
            #SBATCH --job-name=peerlab-0003-benaloh
            #SBATCH --nodes=3
            #SBATCH --ntasks-per-node=1
            #SBATCH --time=00:06:00
            #SBATCH --output=/shared/exp/output/0003-benaloh/slurm/job.out
            #SBATCH --chdir=/shared/exp/output/0003-benaloh
            #SBATCH --partition=defq
            #SBATCH --constraint=cpunode
            #SBATCH --time=00:15:00
            # Written by peerlab for run 0003-benaloh: one node agent per node, each starting its
            # share of the 9 instances. The run token comes in $PEERLAB_RUN_TOKEN.
            export NO_COLOR=1
            exec srun --nodes=3 --ntasks-per-node=1 --kill-on-bad-exit=0 \
                /shared/peerlab/bin/peerlab -v node-agent --run-dir /shared/exp/output/0003-benaloh --sync fs0.das5:41234 --instances 9 --nodes 3 --instances-per-process 1 --local-dir /local/peerlab
        "#]]
        .assert_eq(&render_script(&spec()).unwrap());
    }

    #[test]
    fn the_batch_script_quotes_and_refuses_what_sh_or_sbatch_cannot_carry() {
        let mut job = spec();
        job.slurm.partition = None;
        job.slurm.sbatch_options.clear();
        job.slurm.local_dir = None;
        job.exe = "/opt/my tools/peerlab".into();
        let text = render_script(&job).unwrap();
        assert!(
            text.contains("'/opt/my tools/peerlab' -v node-agent"),
            "{text}"
        );
        assert!(!text.contains("--partition"), "{text}");
        assert!(!text.contains("--local-dir"), "{text}");
        job.run_dir = "/shared/my runs/0003".into();
        assert!(matches!(
            render_script(&job),
            Err(ScriptError::UnsafePath(_))
        ));
        let mut job = spec();
        job.slurm.sbatch_options = vec!["--a\n#SBATCH --b".into()];
        assert!(matches!(
            render_script(&job),
            Err(ScriptError::MultilineOption(_))
        ));
    }
}
