//! The instance runtime: what runs inside an instance process.
//!
//! It loads the scenario's modules, runs the `@!` and `@@` phases, meets
//! the other instances at the sync server's barrier, then fires the
//! scenario's commands at their times while driving each instance's overlay
//! and writing its output files.

pub mod inflight;
pub mod instance;
pub mod metrics;
pub mod process;
pub mod record;
pub mod resources;
pub mod sim;
