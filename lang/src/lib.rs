//! peerlab's scenario and experiment-config languages.
//!
//! This crate owns the grammar of `.scenario` and `.conf` files and the
//! diagnostics they produce. It does no I/O of its own: callers hand it text
//! (and a way to read includes); it hands back plain data and diagnostics.
