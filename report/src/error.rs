//! The errors that stop post-processing, and the warnings that do not.
//!
//! A [`ReportError`] means no report could be written (the folder is
//! missing, an output cannot be written). Everything a crashed or broken run
//! can leave behind (half a line, a missing file, a counter that went
//! backwards) is a [`Warning`]: counted, shown in the report, never fatal.

use std::path::PathBuf;

use serde::Serialize;

/// Why post-processing could not produce its outputs.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run folder does not exist or is not a folder.
    #[error(
        "run folder {path} not found: pass the folder of one run, e.g. output/0001-benaloh or output/latest"
    )]
    NoRunFolder { path: PathBuf },
    /// The folder exists but holds nothing a run writes.
    #[error(
        "{path} does not look like a run folder: it has no run.json, summary.json or <host>/node<NNN>/ folders"
    )]
    NotARun { path: PathBuf },
    /// Reading a file or listing a folder failed (other than a missing optional file).
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing an output failed.
    #[error("cannot write {path}: {source}; check the run folder is writable")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Drawing a plot failed (a bug or an unusable font).
    #[error("cannot draw plot {name}: {message}")]
    Plot { name: String, message: String },
    /// Encoding summary.json failed.
    #[error("cannot encode {what} as JSON: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Something wrong in the run folder that post-processing worked around.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    /// The file, relative to the run folder (`""` for the folder itself).
    pub file: String,
    /// 1-based line number, for line-oriented files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
}

impl Warning {
    /// A warning about a whole file.
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Warning {
            file: file.into(),
            line: None,
            message: message.into(),
        }
    }

    /// A warning about one line of a file.
    pub fn line(file: impl Into<String>, line: usize, message: impl Into<String>) -> Self {
        Warning {
            file: file.into(),
            line: Some(line),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.file.is_empty(), self.line) {
            (true, _) => write!(f, "{}", self.message),
            (false, Some(line)) => write!(f, "{}:{}: {}", self.file, line, self.message),
            (false, None) => write!(f, "{}: {}", self.file, self.message),
        }
    }
}
