//! The peerlab host: everything behind the `peerlab` binary.
//!
//! `main.rs` only parses arguments and maps results to exit codes; the work
//! lives in this library so that tests can drive it directly. Each
//! subcommand has its own module under [`cmd`] holding its arguments and its
//! entry point.

/// Console output that never panics. `std`'s `println!`/`eprintln!` panic
/// when the write fails: stdout or stderr a closed pipe (`peerlab run … |
/// head -1`) or a file on a full disk. A run must survive both and still
/// write its summary, so every module of this crate gets these instead
/// (`macro_rules!` defined before the modules shadow the prelude's): the
/// line is written whole, and an error is ignored.
macro_rules! eprintln {
    () => { $crate::util::console_err(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::util::console_err(format_args!("{}\n", format_args!($($arg)*))) };
}
/// See [`eprintln!`].
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::util::console_err(format_args!($($arg)*)) };
}
/// See [`eprintln!`].
macro_rules! println {
    () => { $crate::util::console_out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::util::console_out(format_args!("{}\n", format_args!($($arg)*))) };
}
/// See [`eprintln!`].
macro_rules! print {
    ($($arg:tt)*) => { $crate::util::console_out(format_args!($($arg)*)) };
}

pub mod bench;
pub mod cli;
pub mod cmd;
pub mod experiment;
pub mod follow;
pub mod global;
pub mod logging;
pub mod modules;
pub mod progress;
pub mod provenance;
pub mod runner;

pub mod util;
