//! What the runner knows about each instance while a run goes on, and the
//! rules that turn events (sync server reports, process exits, timeouts)
//! into one final status per instance. Pure bookkeeping: no I/O.

use std::collections::BTreeMap;

/// Where an instance is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Planned; its process has not registered it yet.
    Pending,
    Registered,
    Ready,
    /// Ended, with a final status.
    Ended(End),
}

/// How an instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub status: EndStatus,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

/// The statuses an instance ends with: peerlab-run's, as written to `summary.json`.
pub use peerlab_run::EndStatus;

/// Every instance's phase, by id.
#[derive(Debug, Clone)]
pub struct Tracker {
    phases: BTreeMap<u32, Phase>,
}

impl Tracker {
    pub fn new(instances: u32) -> Self {
        Self {
            phases: (1..=instances).map(|id| (id, Phase::Pending)).collect(),
        }
    }

    pub fn phase(&self, id: u32) -> Option<&Phase> {
        self.phases.get(&id)
    }

    fn advance(&mut self, id: u32, to: Phase) {
        if let Some(phase) = self.phases.get_mut(&id)
            && !matches!(phase, Phase::Ended(_))
        {
            *phase = to;
        }
    }

    pub fn registered(&mut self, id: u32) {
        self.advance(id, Phase::Registered);
    }

    pub fn ready(&mut self, id: u32) {
        self.advance(id, Phase::Ready);
    }

    /// Record an end; the first end of an instance wins.
    pub fn end(
        &mut self,
        id: u32,
        status: EndStatus,
        exit_code: Option<i32>,
        error: Option<String>,
    ) {
        self.advance(
            id,
            Phase::Ended(End {
                status,
                exit_code,
                error,
            }),
        );
    }

    /// End every instance not ended yet: those that never registered with
    /// `unregistered`, the others with `running`.
    pub fn end_all_open(&mut self, unregistered: EndStatus, running: EndStatus, why: &str) {
        let open: Vec<(u32, bool)> = self
            .phases
            .iter()
            .filter_map(|(&id, p)| match p {
                Phase::Pending => Some((id, false)),
                Phase::Registered | Phase::Ready => Some((id, true)),
                Phase::Ended(_) => None,
            })
            .collect();
        for (id, registered) in open {
            let status = if registered { running } else { unregistered };
            self.end(id, status, None, Some(why.to_string()));
        }
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for phase in self.phases.values() {
            match phase {
                Phase::Pending => {}
                Phase::Registered => c.registered += 1,
                Phase::Ready => {
                    c.registered += 1;
                    c.ready += 1
                }
                Phase::Ended(end) => {
                    c.registered += 1;
                    c.ended += 1;
                    if end.status != EndStatus::Finished {
                        c.failed += 1;
                    }
                }
            }
        }
        c
    }

    pub fn all_ended(&self) -> bool {
        self.phases.values().all(|p| matches!(p, Phase::Ended(_)))
    }

    pub fn ids_not_registered(&self) -> Vec<u32> {
        self.phases
            .iter()
            .filter(|(_, p)| matches!(p, Phase::Pending))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Registered instances that have not reported ready (still in `@!`/`@@`).
    pub fn ids_not_ready(&self) -> Vec<u32> {
        self.ids_where(|p| matches!(p, Phase::Registered))
    }

    /// Instances that have ended.
    pub fn ids_ended(&self) -> Vec<u32> {
        self.ids_where(|p| matches!(p, Phase::Ended(_)))
    }

    fn ids_where(&self, f: impl Fn(&Phase) -> bool) -> Vec<u32> {
        self.phases
            .iter()
            .filter(|(_, p)| f(p))
            .map(|(&id, _)| id)
            .collect()
    }

    pub fn ids_running(&self) -> Vec<u32> {
        self.phases
            .iter()
            .filter(|(_, p)| matches!(p, Phase::Registered | Phase::Ready))
            .map(|(&id, _)| id)
            .collect()
    }

    pub fn ends(&self) -> impl Iterator<Item = (u32, Option<&End>)> {
        self.phases.iter().map(|(&id, p)| match p {
            Phase::Ended(end) => (id, Some(end)),
            _ => (id, None),
        })
    }
}

/// Tallies for the progress line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub registered: u32,
    pub ready: u32,
    pub ended: u32,
    pub failed: u32,
}

/// Describe a process exit the way people read it: "exit code 3" or
/// "killed by signal 9 (SIGKILL)".
pub fn describe_exit(status: &std::process::ExitStatus) -> (Option<i32>, String) {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return (Some(code), format!("exit code {code}"));
    }
    if let Some(sig) = status.signal() {
        let name = match sig {
            libc::SIGKILL => " (SIGKILL)",
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGABRT => " (SIGABRT)",
            libc::SIGTERM => " (SIGTERM)",
            libc::SIGINT => " (SIGINT)",
            libc::SIGBUS => " (SIGBUS)",
            _ => "",
        };
        return (Some(128 + sig), format!("killed by signal {sig}{name}"));
    }
    (None, "ended for an unknown reason".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_end_wins_and_open_instances_are_closed_by_kind() {
        let mut t = Tracker::new(3);
        t.registered(1);
        t.registered(2);
        t.end(2, EndStatus::Finished, Some(0), None);
        t.end(2, EndStatus::Crashed, Some(9), None);
        t.end_all_open(EndStatus::NeverStarted, EndStatus::TimedOut, "timeout");
        let ends: Vec<_> = t.ends().map(|(id, e)| (id, e.unwrap().status)).collect();
        assert_eq!(
            ends,
            vec![
                (1, EndStatus::TimedOut),
                (2, EndStatus::Finished),
                (3, EndStatus::NeverStarted)
            ]
        );
        assert!(t.all_ended());
        assert_eq!(t.counts().failed, 2);
    }
}
