//! Unit tests of the protocol state machine.
