//! The topology an experiment names (`topology`): a built-in model, or a
//! file read here (relative to the config's directory, through
//! [`super::load::read_source`]) and parsed by lang, its text joining the
//! experiment's sources so its diagnostics point at its lines and the run
//! folder keeps (and checks) the copy the run used.
//!
//! Must not: parse the file itself (lang does), or apply the model (the
//! instance runtime does).

use peerlab_lang::network::{Topology, TopologySpec, builtin, parse_topology};
use peerlab_lang::{Diagnostic, Limits, Location, RawConfig, SourceFile};

use super::load::{Loaded, display};

/// Read and check the topology `loaded`'s experiment names, if any: its
/// spec goes to `loaded.topology`, its problems to `loaded.diagnostics`.
pub fn read(loaded: &mut Loaded, raw: &RawConfig) {
    let Some(value) = loaded.experiment.topology.clone() else {
        return;
    };
    let at = |key: &str| raw.get(key).map(|e| e.value_loc.clone());
    let spec = match builtin(&value) {
        Some(spec) => spec,
        None => match read_file(loaded, &value, at("topology")) {
            Some(spec) => spec,
            None => return,
        },
    };
    // The groups `topology_assign` names must be the topology's.
    if let Err(why) = Topology::assign(spec.clone(), &loaded.experiment.topology_assign, 0) {
        let d = Diagnostic::error(why).with_code("unknown-group");
        loaded.diagnostics.push(match at("topology_assign") {
            Some(l) => d.at(l),
            None => d,
        });
        return;
    }
    loaded.topology = Some(spec);
}

fn read_file(loaded: &mut Loaded, value: &str, at: Option<Location>) -> Option<TopologySpec> {
    let path = loaded.experiment_dir.join(value);
    let name = display(&path);
    let limit = Limits::DEFAULT.config_bytes;
    let text = super::load::read_source(&path, limit)
        .map_err(|e| e.to_string())
        .and_then(|bytes| peerlab_lang::decode_source(bytes, limit).map_err(|e| e.to_string()));
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            let names: Vec<&str> = peerlab_lang::network::BUILTIN
                .iter()
                .map(|(n, _)| *n)
                .collect();
            let d = Diagnostic::error(format!("cannot read the topology file `{name}`: {e}"))
                .with_code("bad-topology")
                .with_help(format!(
                    "`topology` is a built-in model ({}) or a .csv/.json file relative to the config's directory",
                    names.join(", ")
                ));
            loaded.diagnostics.push(match at {
                Some(l) => d.at(l),
                None => d,
            });
            return None;
        }
    };
    let file = SourceFile::new(name.as_str(), text.as_str());
    let (spec, diags) = parse_topology(&file);
    loaded.sources.add(file);
    loaded.diagnostics.extend(diags);
    spec
}
