//! The stable ABI between the peerlab host and experiment modules.
//!
//! This is the only crate a plugin depends on.
