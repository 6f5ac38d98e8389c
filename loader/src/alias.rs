//! Gumby's dotted module names (`&module gumby.modules.dispersy_module.DispersyModule`)
//! and what they mean in peerlab. Data only: resolving the resulting name is
//! the loader's job.

/// Gumby class paths with a peerlab equivalent, as `(gumby name, peerlab name)`.
///
/// Gumby's base classes that only carried the client callbacks map to the
/// built-in `core` module; the Dispersy/IPv8 providers map to the built-in
/// `dispersy` overlay module; experiment modules map to the plugin of the
/// same experiment.
pub const ALIASES: &[(&str, &str)] = &[
    ("gumby.modules.dispersy_module.DispersyModule", "dispersy"),
    (
        "gumby.modules.base_dispersy_module.BaseDispersyModule",
        "dispersy",
    ),
    (
        "gumby.modules.community_experiment_module.CommunityExperimentModule",
        "dispersy",
    ),
    ("gumby.modules.base_ipv8_module.BaseIPv8Module", "dispersy"),
    ("gumby.modules.ipv8_module.IPv8Module", "dispersy"),
    ("gumby.modules.experiment_module.ExperimentModule", "core"),
    ("gumby.experiment.ExperimentClient", "core"),
    (
        "experiments.benaloh.benaloh_module.BenalohModule",
        "benaloh",
    ),
];

/// The peerlab name for a Gumby dotted name, if any: first the table, then
/// Gumby's experiment layout `experiments.<name>.<file>.<Class>` as plugin
/// `<name>`.
pub fn resolve(name: &str) -> Option<&str> {
    if let Some((_, to)) = ALIASES.iter().find(|(from, _)| *from == name) {
        return Some(to);
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() == 4 && parts[0] == "experiments" && !parts[1].is_empty() {
        return Some(parts[1]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gumby_names_map_to_peerlab_modules() {
        assert_eq!(
            resolve("gumby.modules.dispersy_module.DispersyModule"),
            Some("dispersy")
        );
        assert_eq!(
            resolve("experiments.benaloh.benaloh_module.BenalohModule"),
            Some("benaloh")
        );
        assert_eq!(resolve("experiments.dht.dht_module.DHTModule"), Some("dht"));
        assert_eq!(resolve("benaloh"), None);
        assert_eq!(resolve("gumby.modules.tribler_module.TriblerModule"), None);
    }
}
