//! Why an experiment could not be planned or rebuilt for its instances
//! ([`ExperimentError`]): each says what is wrong and what to do. Problems
//! found while checking an experiment are lang `Diagnostic`s, not these:
//! these stop a run that was already checked (a limit the command line
//! made impossible, an output root that is a file, files changed since the
//! run started, modules that no longer load).

use crate::modules::LoadErrors;

/// Why an experiment could not be planned, or rebuilt from `run.json`.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// The run's time limit or time scale cannot be used (the message
    /// names the flag or key and the value).
    #[error("{0}")]
    RunLimit(String),
    #[error("the experiment has no scenario file")]
    NoScenarioFile,
    #[error("the experiment has no scenario")]
    NoScenario,
    /// `what` says which path is a file.
    #[error("{what}: choose another --output (or output_dir in the config)")]
    OutputRoot { what: String },
    /// A source file differs from the one the run recorded, or is new.
    #[error(
        "{what}; instances run exactly what `peerlab run` checked: restore the file or start a new run"
    )]
    Changed { what: String },
    /// `rendered`: lang's diagnostics, one line each.
    #[error("the experiment no longer parses:\n{rendered}")]
    NoLongerParses { rendered: String },
    #[error("cannot load the modules: {0}")]
    Modules(LoadErrors),
    /// A command no longer binds to its module's callback (lang's
    /// diagnostics, one line each).
    #[error("{0}")]
    Bind(String),
    /// An overlay config key has a value the overlay cannot take.
    #[error("{0}")]
    Overlay(String),
}
