//! Module-level tests through the api's TestHost.
