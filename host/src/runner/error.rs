//! The runners' errors: why a run could not be started or its folder not
//! written, each saying what failed, where (the path, the address, the
//! process) and, where there is one, what to try. Runners return
//! [`RunError`]; the subcommands (`cmd/`) pass it up, and `main.rs` prints
//! its chain once (`what: why: …`). The SLURM runner's own failures are
//! [`SlurmError`](super::slurm::SlurmError) and its node agent's
//! [`AgentError`](super::slurm::agent::AgentError).
//!
//! Owns no recovery: a failing instance is not an error here (it is
//! recorded in the summary and changes the exit status).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::slurm::{SlurmConfigError, SlurmError};

/// Why a runner could not run, or could not record, a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start the async runtime")]
    AsyncRuntime(#[source] io::Error),
    #[error("cannot listen for stop signals")]
    Signals(#[source] io::Error),
    #[error("cannot find the peerlab executable")]
    Executable(#[source] io::Error),
    #[error("cannot create a run folder under {}", root.display())]
    RunFolder {
        root: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot find the run folder {}", path.display())]
    FindRunFolder {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the sync server on {bind}")]
    SyncServer {
        bind: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the tracker on {addr} (tracker_port)")]
    Tracker {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// A folder of the run folder (or beside it) could not be created.
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file of the run folder could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An experiment's source file could not be copied into the run folder.
    #[error("cannot copy {} into the run folder", path.display())]
    CopyInput {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the scenario of {}", path.display())]
    ScenarioUnreadable { path: PathBuf },
    #[error("external_instances is set but external_cmd is not")]
    NoExternalCmd,
    #[error("cannot start external instance {id}: sh -c {cmd:?}")]
    SpawnExternal {
        id: u32,
        cmd: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot start instance process {process}")]
    Spawn {
        process: u32,
        #[source]
        source: io::Error,
    },
    /// A config key the runner reads has a value it cannot use (lang's
    /// message, which names the key).
    #[error("{0}")]
    BadKey(String),
    /// The experiment could not be rebuilt from the run's record (the
    /// simulated runner loads it as the instance processes do).
    #[error(transparent)]
    Experiment(#[from] crate::experiment::ExperimentError),
    #[error("the simulation could not write to {}", dir.display())]
    Simulation {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The run ended, but a record of it could not be written.
    #[error("the run ended but its results are incomplete: {}", unwritten.join("; "))]
    Incomplete { unwritten: Vec<String> },
    #[error(transparent)]
    SlurmConfig(#[from] SlurmConfigError),
    #[error(transparent)]
    Slurm(#[from] SlurmError),
}

impl RunError {
    /// `Create` for `path`, as a closure for `map_err`.
    pub(crate) fn create(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Create { path, source }
    }

    /// `Write` for `path`, as a closure for `map_err`.
    pub(crate) fn write(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Write { path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain `main.rs` prints (what `util::chain` gives, `{:#}` of the
    /// error the subcommand returns) reads as the runners' messages always
    /// read: what, where, then why.
    #[test]
    fn the_printed_chain_names_what_where_and_why() {
        let err = RunError::SyncServer {
            bind: "127.0.0.1:7".parse().unwrap(),
            source: io::Error::new(io::ErrorKind::AddrInUse, "address in use"),
        };
        assert_eq!(
            crate::util::chain(&err),
            "cannot start the sync server on 127.0.0.1:7: address in use"
        );
        let err = RunError::Incomplete {
            unwritten: vec![
                "summary.json: disk full".into(),
                "junit.xml: disk full".into(),
            ],
        };
        assert_eq!(
            crate::util::chain(&err),
            "the run ended but its results are incomplete: summary.json: disk full; junit.xml: disk full"
        );
    }
}
