//! Log set-up for the binary: `tracing` to stderr, filtered by `-v`/`-q` or
//! `RUST_LOG` (which wins when set).

use tracing_subscriber::EnvFilter;

/// Install the global subscriber. `verbose` counts `-v` flags.
pub fn init(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(verbose >= 2)
        // A failed write (stderr a closed pipe or on a full disk) is
        // dropped; the default reports it with `eprintln!`, which panics.
        .log_internal_errors(false)
        .try_init();
}
