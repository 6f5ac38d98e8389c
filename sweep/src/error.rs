//! The errors of peerlab-sweep: each says what, where (the file or the
//! text given) and what to do. Must not: print anything.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("bad --param `{text}`: {why}")]
    BadParam { text: String, why: String },
    #[error("bad --fail-if `{text}`: {why}")]
    BadCondition { text: String, why: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Record { path: PathBuf, why: String },
    #[error(
        "{0} is neither a run folder (no run.json) nor a sweep folder (no sweep.json); give OUTPUT/NNNN-name or OUTPUT/sweeps/<name>"
    )]
    NotRunOrSweep(PathBuf),
    #[error("{path}: {message}")]
    Conf { path: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, SweepError>;
