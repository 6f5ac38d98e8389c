//! The peerlab host: everything behind the `peerlab` binary.
//!
//! `main.rs` only parses arguments and maps results to exit codes; the work
//! lives in this library so that tests can drive it directly. Each
//! subcommand has its own module under [`cmd`] holding its arguments and its
//! entry point.

pub mod cli;
pub mod cmd;
pub mod logging;
pub mod modules;
pub mod progress;
pub mod runner;
pub mod runtime;
pub mod sync;
pub mod util;
