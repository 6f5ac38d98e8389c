//! The sync server and its client: how the instances of a run find each
//! other and agree on a start time.
//!
//! The server runs where `peerlab run` runs. Each instance process connects
//! over TCP, presents the run's token, is given its instance ids, reports
//! each instance's UDP address and public key, waits at the barrier, and
//! receives the full peer table and a common start time. At the end it
//! reports each instance's outcome. Messages are JSON lines
//! ([`protocol`]).
//!
//! This crate knows nothing about scenarios, modules, runners or the host:
//! the host's runners start a [`SyncServer`] and the instance processes a
//! [`SyncClient`]; a program in another language may speak the same
//! protocol.

pub mod client;
pub mod protocol;
pub mod server;

pub use client::SyncClient;
pub use protocol::{PeerEntry, StartInfo};
pub use server::{ServerEvent, SyncServer};

#[cfg(test)]
mod tests;
