//! peerlab-sweep: experiments over many runs, as a paper needs them. A
//! sweep's grid and each run's derived seed ([`grid`]), each grid point's
//! config ([`conf`]), the sweep folder and resuming it ([`folder`]),
//! running the jobs as `peerlab run` processes ([`exec`]), a run folder as
//! numbers ([`collect`]), statistics over repetitions ([`stats`],
//! [`aggregate`]), comparisons and `--fail-if` ([`compare`]), and the
//! self-contained report pages ([`svg`], [`html`]) and the output root's
//! history page ([`index`]).
//!
//! Reads run folders only through peerlab-run's types and reader; the
//! host's `peerlab sweep`, `compare` and `rerun` are thin commands over
//! this crate. Must not: depend on the host, the runtime or plugin-api.

pub mod aggregate;
pub mod collect;
pub mod compare;
pub mod conf;
pub mod error;
pub mod exec;
pub mod folder;
pub mod grid;
pub mod html;
pub mod index;
pub mod stats;
pub mod svg;

pub use error::SweepError;
