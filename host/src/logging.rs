//! Log set-up for the binary: `tracing` to stderr, filtered by `-v`/`-q` or
//! `RUST_LOG` (which wins when set).
//!
//! By default log lines look like every other message peerlab prints
//! (`peerlab: error: ...`, `peerlab: warning: ...`), so the console speaks
//! one format; with `-v` or `RUST_LOG` they carry a timestamp, the level and
//! (from `-vv`) the target, for debugging. Must not: decide what is logged.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Install the global subscriber. `verbose` counts `-v` flags.
pub fn init(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let from_env = EnvFilter::try_from_default_env().ok();
    let detailed = verbose > 0 || from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(default));
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A failed write (stderr a closed pipe or on a full disk) is
        // dropped; the default reports it with `eprintln!`, which panics.
        .log_internal_errors(false);
    let _ = if detailed {
        builder.with_ansi(ansi).with_target(verbose >= 2).try_init()
    } else {
        builder.with_ansi(false).event_format(Plain).try_init()
    };
}

/// `peerlab: <level>: <message> <fields>`, as peerlab's own messages.
struct Plain;

/// The words after `peerlab: ` for a level (info lines have none).
fn level_word(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error: ",
        Level::WARN => "warning: ",
        Level::INFO => "",
        Level::DEBUG => "debug: ",
        Level::TRACE => "trace: ",
    }
}

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "peerlab: {}", level_word(*event.metadata().level()))?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_read_like_peerlab_messages() {
        assert_eq!(level_word(Level::ERROR), "error: ");
        assert_eq!(level_word(Level::WARN), "warning: ");
        assert_eq!(level_word(Level::INFO), "");
    }
}
