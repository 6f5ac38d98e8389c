//! The instance runtime's drivers: what runs inside an instance process
//! around the state machine (`peerlab_instance`, re-exported as
//! [`instance`]).
//!
//! They load the scenario's modules, run the `@!` and `@@` phases, meet
//! the other instances at the sync server's barrier, then carry datagrams
//! and time to and from each instance ([`process`] over real UDP, [`sim`]
//! over a simulated network) and store its records ([`record`]).

pub mod inflight;
pub mod process;
pub mod record;
pub mod resources;
pub mod sim;

/// The instance state machine, a crate of its own (no tokio, no I/O).
pub use peerlab_instance as instance;
