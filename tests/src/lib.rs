//! Helpers for peerlab's end-to-end tests: a temporary directory per test and
//! a command runner for the built `peerlab` binary.
