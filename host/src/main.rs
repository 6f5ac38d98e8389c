//! The `peerlab` binary: parse arguments, run one command, map the result to
//! an exit code. Everything else lives in the `peerlab` library.

use std::process::ExitCode;

use clap::Parser;
use peerlab::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    raise_open_file_limit();
    peerlab::logging::init(cli.global.verbose, cli.global.quiet);
    match peerlab::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // Never a panic, even on a closed stderr (see the library's `eprintln!`).
            peerlab::util::console_err(format_args!("peerlab: error: {err:#}\n"));
            ExitCode::from(peerlab::cli::EXIT_ERROR)
        }
    }
}

/// Every instance holds a UDP socket and a process may host thousands:
/// raise the soft open-file limit to the hard one (Debian's soft default is
/// 1,024). Failing to is not an error; a later bind says what ran out.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
