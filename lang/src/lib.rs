//! peerlab's scenario and experiment-config languages.
//!
//! This crate owns the grammar of `.scenario` and `.conf` files and the
//! diagnostics they produce. It does no I/O of its own: callers hand it text
//! (and a way to read includes); it hands back plain data and diagnostics.
//!
//! - [`parse_scenario`] reads a scenario into a [`Scenario`]: its `&module`
//!   names and its [`Command`]s (phase, callback, arguments, [`PeerSpec`]).
//! - [`parse_config`] reads a `.conf` into a [`RawConfig`];
//!   [`Experiment::from_config`] types it (with `PEERLAB_<KEY>` overrides).
//! - Every problem is a [`Diagnostic`], rendered rich, short or as JSON.
//! - [`suggest`] finds the closest name for "did you mean".
//! - [`source`] turns a file's bytes into text (UTF-8, BOM, size limit) and
//!   holds the [`Limits`] on what one parse reads and builds.
//! - [`network`] types the network model: bandwidths, byte sizes,
//!   topology files and the assignment of instances to groups.
//! - [`value`] converts argument strings to integers, floats, booleans and
//!   durations.
//!
//! **Invariant:** parsing never stops at the first error; every function
//! returns its best value plus every diagnostic. No function here panics on
//! any input, reads a file, or touches the network.

pub mod config;
pub mod diag;
pub mod experiment;
pub mod external;
pub mod nat;
pub mod network;
mod network_json;
pub mod peerspec;
pub mod scenario;
pub mod shell;
pub mod source;
pub mod suggest;
pub mod value;

pub use config::{Entry, RawConfig, RawValue, Section, parse_config};
pub use diag::{
    Diagnostic, Format, Location, Severity, SourceFile, SourceMap, has_errors, render_all,
};
pub use experiment::{
    CAPTURE_LIMIT_DEFAULT, ConfigValue, Experiment, External, KEYS, KeyDoc, KeyKind, Network,
    Origin, Port, Runner, RuntimeKeys, Slurm, key_doc, unknown_key_of,
};
pub use nat::{NatKeys, NatType};
pub use peerspec::{IdSet, PeerSpec};
pub use scenario::{
    Arg, Command, IncludeLoader, KwArg, MemoryLoader, ModuleRef, NoIncludes, Phase, PhaseKind,
    Scenario, Vars, check_peerspec, parse_scenario, parse_scenario_with,
};
pub use source::{Limits, SourceError, decode_source};
pub use suggest::suggest;
