//! The instance runtime's drivers (the quinn half of the quinn-proto/quinn
//! split): what runs around the instance state machine
//! (`peerlab_instance`, re-exported as [`instance`]).
//!
//! They meet the other instances at the sync server's barrier, then carry
//! datagrams and time to and from each instance ([`process`] over real
//! UDP, [`sim`] over the simulated network, with [`sim_nat`] its NATs and
//! [`sim_parallel`] its threads),
//! store its records ([`record`], [`inflight`]), its packet capture
//! ([`capture`]) and the process's CPU and memory ([`resources`]).
//!
//! Must not: import the host (runners, subcommands, the run's end), decide
//! what a run's outcome is, or parse config its own way (values come typed
//! from `peerlab-lang`'s `RuntimeKeys`). The dependency rule is held by
//! `tests/tests/tidy.rs::crates_depend_only_on_what_their_boundary_allows`.

pub mod capture;
pub mod inflight;
pub mod process;
pub mod record;
pub mod resources;
pub mod sim;
pub mod sim_nat;
pub mod sim_parallel;
mod sim_part;

/// The instance state machine, a crate of its own (no tokio, no I/O).
pub use peerlab_instance as instance;
