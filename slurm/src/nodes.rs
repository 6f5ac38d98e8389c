//! What SLURM says about the nodes of a running job: `scontrol show
//! hostnames` (the job's node list, in the order of `SLURM_NODEID`) and
//! `sinfo -N` (each node's state and reason), and which states mean the
//! node is lost. Pure text: the host's poller runs the commands.

/// The `sinfo` format [`parse_sinfo_nodes`] reads (with `-h -N -n LIST`).
pub const SINFO_NODE_FORMAT: &str = "%N|%T|%E";

/// One node as `sinfo -N` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub name: String,
    /// SLURM's state word, lower case as sinfo prints it (`allocated`,
    /// `down*`: a `*` means the node does not respond).
    pub state: String,
    /// SLURM's reason for the state (`Not responding`, `Kill task failed`),
    /// empty when sinfo says `none`.
    pub reason: String,
}

impl NodeRow {
    /// Whether SLURM has given up on the node: it is down or failed. A node
    /// that only stopped responding (`allocated*`) may come back and is not
    /// lost yet.
    pub fn lost(&self) -> bool {
        let base = self
            .state
            .trim_end_matches(['*', '~', '#', '!', '%', '$', '@', '^', '-'])
            .to_ascii_lowercase();
        base.starts_with("down") || base.contains("fail")
    }

    /// The node's state in SLURM's words, for a person: `down* (Not responding)`.
    pub fn describe(&self) -> String {
        if self.reason.is_empty() {
            self.state.clone()
        } else {
            format!("{} ({})", self.state, self.reason)
        }
    }
}

/// Parse `sinfo -h -N -n LIST -o '%N|%T|%E'`: one row per node (a node in
/// several partitions is listed once).
pub fn parse_sinfo_nodes(output: &str) -> Vec<NodeRow> {
    let mut rows: Vec<NodeRow> = Vec::new();
    for line in output.lines() {
        let mut f = line.trim().splitn(3, '|');
        let (Some(name), Some(state)) = (f.next(), f.next()) else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || rows.iter().any(|r| r.name == name) {
            continue;
        }
        let reason = f.next().unwrap_or("").trim();
        rows.push(NodeRow {
            name: name.to_string(),
            state: state.trim().to_string(),
            reason: if reason.eq_ignore_ascii_case("none") {
                String::new()
            } else {
                reason.to_string()
            },
        });
    }
    rows
}

/// Parse `scontrol show hostnames LIST`: one node name a line, in the
/// job's order (node `i` of the list is the one with `SLURM_NODEID` i).
pub fn parse_hostnames(output: &str) -> Vec<String> {
    output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_rows_and_which_are_lost() {
        let rows = parse_sinfo_nodes(
            "n1|allocated|none\nn2|down*|Not responding\nn3|allocated*|none\nn2|down*|Not responding\n\n",
        );
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].describe(), "down* (Not responding)");
        assert_eq!(rows[0].describe(), "allocated");
        let lost: Vec<bool> = rows.iter().map(NodeRow::lost).collect();
        // A node that does not respond yet is not lost; a down one is.
        assert_eq!(lost, vec![false, true, false]);
        for (state, lost) in [
            ("fail", true),
            ("failing", true),
            ("down~", true),
            ("drained", false),
            ("mixed", false),
            ("idle", false),
            ("completing", false),
        ] {
            let row = NodeRow {
                name: "x".into(),
                state: state.into(),
                reason: String::new(),
            };
            assert_eq!(row.lost(), lost, "{state}");
        }
        assert!(parse_sinfo_nodes("garbage\n|\n").is_empty());
    }

    #[test]
    fn hostnames_keep_the_job_order() {
        assert_eq!(parse_hostnames("n1\nn3\n\n"), vec!["n1", "n3"]);
    }
}
