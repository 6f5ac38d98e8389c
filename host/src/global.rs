//! What every subcommand shares with the command line around it: the
//! global flags and the exit-code convention. Both `cli.rs` (which
//! dispatches) and each `cmd/*.rs` (which returns a code) use it, so that
//! neither imports the other back. It holds no logic.

use clap::Args;

/// Everything went as planned.
pub const EXIT_OK: u8 = 0;
/// The run happened but something failed: an instance, a verdict, a check.
pub const EXIT_FAILED: u8 = 1;
/// peerlab could not do what was asked: bad input, missing files, I/O errors.
pub const EXIT_ERROR: u8 = 2;

/// Flags every subcommand accepts.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}
