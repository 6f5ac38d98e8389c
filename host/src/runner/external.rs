//! External instances: instances of a run that are other programs
//! (`external_instances`, `external_cmd`; a py-ipv8 peer through
//! peerlab's Python client, say). They are started like peerlab's own
//! instance processes (own process group, dying with their parent), find
//! the sync server, token, instance id and output paths in their
//! environment (docs/sync-protocol.md), write their stdout to the
//! instance's `.out` and their stderr to its `.err`, and are supervised by
//! [`super::supervise`] exactly like the others.
//!
//! Must not: interpret the scenario beyond writing each external
//! instance's share of it (its schedule file), or talk to the programs
//! other than through the sync server.

use peerlab_lang::External;

use super::RunSettings;

impl RunSettings {
    /// The external-instance keys of this run (lang typed them when the
    /// run was planned).
    pub fn external(&self) -> External {
        let mut e = External::default();
        for key in External::KEYS {
            if let Some(v) = self.config.get(key) {
                let _ = e.set(key, v);
            }
        }
        e
    }

    /// The ids of the instances that are other programs (the last ones).
    pub fn external_ids(&self) -> Vec<u32> {
        let e = self.external();
        if e.instances == 0 {
            return Vec::new();
        }
        e.ids(self.instances).collect()
    }
}
