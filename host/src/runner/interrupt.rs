//! Stop requests from outside a run: SIGINT (Ctrl-C), SIGTERM (`kill`, a
//! batch system, systemd) and SIGHUP (a closed terminal or SSH session) all
//! mean "interrupted". Every runner stops its instances, keeps what they
//! wrote, and still writes `summary.json` and `junit.xml`.
//!
//! This module owns listening for those signals and telling whoever waits;
//! it must not decide what a stop does (the runners do: [`super::supervise`]
//! for processes, [`super::sim`] for the simulation).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// A signal that stops a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT: Ctrl-C in the terminal.
    Interrupt,
    /// SIGTERM: `kill`, a batch system or a service manager.
    Terminate,
    /// SIGHUP: the terminal or SSH session went away.
    Hangup,
}

impl StopSignal {
    /// How the signal is named in messages ("stopped by …").
    pub fn describe(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "Ctrl-C",
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Hangup => "SIGHUP",
        }
    }
}

/// What has been received so far.
#[derive(Debug, Clone, Copy, Default)]
struct Received {
    first: Option<StopSignal>,
    count: u32,
}

/// Where a run learns that it was asked to stop. Cheap to clone; every
/// clone sees every signal.
#[derive(Clone)]
pub struct Interrupt {
    tx: Arc<watch::Sender<Received>>,
    rx: watch::Receiver<Received>,
    flag: Arc<AtomicBool>,
}

impl Interrupt {
    /// Listen for SIGINT, SIGTERM and SIGHUP from now on (for the rest of
    /// the process: their default action, ending the process at once, is
    /// replaced). A signal this process was started with ignored (`nohup`
    /// ignores SIGHUP, a shell's background job SIGINT) stays ignored. Must
    /// be called inside a tokio runtime, whose workers then listen even
    /// while no task of the caller runs.
    pub fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let ignored = ignored_at_start();
        let listen = |kind: SignalKind, ignored: bool| -> std::io::Result<Option<Signal>> {
            if ignored {
                Ok(None)
            } else {
                signal(kind).map(Some)
            }
        };
        let mut int = listen(SignalKind::interrupt(), ignored.interrupt)?;
        let mut term = listen(SignalKind::terminate(), ignored.terminate)?;
        let mut hup = listen(SignalKind::hangup(), ignored.hangup)?;
        let me = Self::never();
        let (tx, flag) = (me.tx.clone(), me.flag.clone());
        tokio::spawn(async move {
            loop {
                let signal = tokio::select! {
                    Some(()) = recv(&mut int) => StopSignal::Interrupt,
                    Some(()) = recv(&mut term) => StopSignal::Terminate,
                    Some(()) = recv(&mut hup) => StopSignal::Hangup,
                    else => return,
                };
                flag.store(true, Ordering::SeqCst);
                tx.send_modify(|r| {
                    r.first.get_or_insert(signal);
                    r.count += 1;
                });
            }
        });
        Ok(me)
    }

    /// An interrupt that only [`Interrupt::raise`] triggers (tests, and
    /// callers that handle signals themselves).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(Received::default());
        Self {
            tx: Arc::new(tx),
            rx,
            flag: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Act as if `signal` had been received.
    pub fn raise(&self, signal: StopSignal) {
        self.flag.store(true, Ordering::SeqCst);
        self.tx.send_modify(|r| {
            r.first.get_or_insert(signal);
            r.count += 1;
        });
    }

    /// The first stop signal received, if any.
    pub fn received(&self) -> Option<StopSignal> {
        self.rx.borrow().first
    }

    /// A flag set at the first stop signal, for loops that do not await
    /// (the simulation checks it between events).
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    /// Wait for a stop signal this receiver has not seen yet (one received
    /// before the first call counts); returns the first signal of the run
    /// and how many have arrived so far.
    pub async fn next(&mut self) -> (StopSignal, u32) {
        let mut fresh = self.rx.has_changed().unwrap_or(false);
        loop {
            // `changed` marks the value seen: what it saw is fresh.
            let seen = *self.rx.borrow_and_update();
            if let Some(first) = seen.first
                && fresh
            {
                return (first, seen.count);
            }
            if self.rx.changed().await.is_err() {
                // Cannot happen while `self.tx` lives; never fire then.
                std::future::pending::<()>().await;
            }
            fresh = true;
        }
    }
}

/// The next delivery of a signal that is listened for; never for one that is not.
async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Which stop signals the process was started with ignored.
#[derive(Debug, Clone, Copy)]
struct Ignored {
    interrupt: bool,
    terminate: bool,
    hangup: bool,
}

/// Read once, before any listener replaces the dispositions (a later
/// [`Interrupt::listen`], e.g. the next run of `peerlab bench`, sees the
/// same answer).
fn ignored_at_start() -> Ignored {
    static AT_START: std::sync::OnceLock<Ignored> = std::sync::OnceLock::new();
    *AT_START.get_or_init(|| Ignored {
        interrupt: is_ignored(libc::SIGINT),
        terminate: is_ignored(libc::SIGTERM),
        hangup: is_ignored(libc::SIGHUP),
    })
}

fn is_ignored(signal: libc::c_int) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one
    // into `old`, a zeroed plain C struct owned here.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_signal_raised_before_anyone_waits_is_still_seen_once() {
        let mut interrupt = Interrupt::never();
        let mut other = interrupt.clone();
        assert_eq!(interrupt.received(), None);
        interrupt.raise(StopSignal::Terminate);
        assert!(interrupt.flag().load(Ordering::SeqCst));
        assert_eq!(interrupt.received(), Some(StopSignal::Terminate));
        assert_eq!(interrupt.next().await, (StopSignal::Terminate, 1));
        assert_eq!(other.next().await, (StopSignal::Terminate, 1));
        // Seen: waiting again blocks until the next signal, which keeps
        // the first one's name and counts two.
        let again = tokio::time::timeout(Duration::from_millis(50), interrupt.next()).await;
        assert!(again.is_err(), "no new signal: {again:?}");
        interrupt.raise(StopSignal::Hangup);
        assert_eq!(interrupt.next().await, (StopSignal::Terminate, 2));
    }

    #[tokio::test]
    async fn sighup_is_caught_and_reported_by_name() {
        // A run started under `nohup` (SIGHUP ignored) leaves SIGHUP alone,
        // as it should; this test wants the ordinary case whatever started it.
        // SAFETY: resetting one signal's action in this test process.
        unsafe { libc::signal(libc::SIGHUP, libc::SIG_DFL) };
        let mut interrupt = Interrupt::listen().unwrap();
        // SAFETY: signalling ourselves; the listener replaced the default action.
        unsafe { libc::raise(libc::SIGHUP) };
        let got = tokio::time::timeout(Duration::from_secs(10), interrupt.next())
            .await
            .expect("the signal arrives");
        assert_eq!(got.0, StopSignal::Hangup);
        assert_eq!(got.0.describe(), "SIGHUP");
    }
}
