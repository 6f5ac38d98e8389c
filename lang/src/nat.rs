//! The NAT config keys: `nat` (the NAT type each instance sits behind, by
//! group: `nat = symmetric {3-10}, port_restricted_cone {11-20}, none`)
//! and `nat_timeout` (how long a NAT mapping lives after its last datagram
//! out). Typed here, for `peerlab check` and for the drivers that model
//! the NATs (the simulated network, the real driver's filter).
//!
//! Owns: the NAT type names and their RFC 4787 behaviours ([`NatType`],
//! [`Dependence`]), the `nat` value's grammar and which type an instance
//! gets ([`NatKeys::of`]). Must not: model a NAT (the network simulator and
//! the instance runtime do) or do any I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::peerspec::{IdSet, PeerSpec, parse_peerspec};
use crate::value::parse_duration;

/// How a NAT's mapping or filtering depends on the remote endpoint
/// (RFC 4787 sections 4.1 and 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dependence {
    EndpointIndependent,
    AddressDependent,
    AddressAndPortDependent,
}

/// The textbook NAT types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NatType {
    /// No NAT: the instance's own address is public.
    #[default]
    None,
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping, address-dependent filtering.
    RestrictedCone,
    /// Endpoint-independent mapping, address-and-port-dependent filtering.
    PortRestrictedCone,
    /// Address-and-port-dependent mapping and filtering.
    Symmetric,
}

impl NatType {
    /// Every type, by its name in the `nat` key.
    pub const ALL: [(&'static str, NatType); 5] = [
        ("none", NatType::None),
        ("full_cone", NatType::FullCone),
        ("restricted_cone", NatType::RestrictedCone),
        ("port_restricted_cone", NatType::PortRestrictedCone),
        ("symmetric", NatType::Symmetric),
    ];

    /// The type a name (or `address_restricted_cone`, RFC 3489's other
    /// name for the restricted cone) stands for.
    pub fn parse(name: &str) -> Option<NatType> {
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        if name == "address_restricted_cone" {
            return Some(NatType::RestrictedCone);
        }
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// Its name in the `nat` key.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(n, _)| *n)
            .expect("every type is listed")
    }

    /// Its (mapping, filtering) behaviour; `None` for no NAT.
    pub fn behaviour(self) -> Option<(Dependence, Dependence)> {
        use Dependence::*;
        match self {
            NatType::None => None,
            NatType::FullCone => Some((EndpointIndependent, EndpointIndependent)),
            NatType::RestrictedCone => Some((EndpointIndependent, AddressDependent)),
            NatType::PortRestrictedCone => Some((EndpointIndependent, AddressAndPortDependent)),
            NatType::Symmetric => Some((AddressAndPortDependent, AddressAndPortDependent)),
        }
    }
}

/// The default `nat_timeout`: RFC 4787 REQ-5's least, 2 minutes.
pub const DEFAULT_NAT_TIMEOUT: Duration = Duration::from_secs(120);

/// The typed `nat` and `nat_timeout` keys.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct NatKeys {
    /// `nat`: each item a type for the instances its selector names (none:
    /// every instance no other item names); the first item naming an
    /// instance decides.
    pub groups: Vec<(NatType, Option<IdSet>)>,
    /// `nat_timeout`.
    pub timeout: Option<Duration>,
}

impl NatKeys {
    /// The keys this struct types.
    pub const KEYS: [&'static str; 2] = ["nat", "nat_timeout"];

    /// Type the value `text` of `key` (one of [`Self::KEYS`]; a comma list
    /// joined with `,`) into `self`; the error is the message a diagnostic
    /// carries. Any other key is left alone (`Ok(false)`).
    pub fn set(&mut self, key: &str, text: &str) -> Result<bool, String> {
        match key {
            "nat" => self.groups = parse_nat(text)?,
            "nat_timeout" => {
                let d = parse_duration(text)
                    .map_err(|e| format!("bad value for `nat_timeout`: {e}"))?;
                if d.is_zero() {
                    return Err(format!(
                        "bad value for `nat_timeout`: expected a duration above 0, found `{text}`"
                    ));
                }
                self.timeout = Some(d);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Type these keys from a map of config strings (a run record's).
    pub fn from_strings(config: &BTreeMap<String, String>) -> (Self, Vec<String>) {
        crate::experiment::type_strings(&Self::KEYS, config, Self::set)
    }

    /// The NAT type instance `id` sits behind.
    pub fn of(&self, id: u32) -> NatType {
        let named = self
            .groups
            .iter()
            .find(|(_, ids)| ids.as_ref().is_some_and(|s| s.contains(id)));
        let rest = self.groups.iter().find(|(_, ids)| ids.is_none());
        named.or(rest).map_or(NatType::None, |(t, _)| *t)
    }

    /// Whether some instance sits behind a NAT.
    pub fn any(&self) -> bool {
        self.groups.iter().any(|(t, _)| *t != NatType::None)
    }

    /// What to warn about when a type names instance ids beyond the
    /// experiment's `instances` (a typo, or a count changed since).
    pub fn beyond(&self, instances: u32) -> Option<String> {
        let (t, max) = self
            .groups
            .iter()
            .filter_map(|(t, ids)| Some((t, ids.as_ref()?.max()?)))
            .find(|(_, max)| *max > instances)?;
        Some(format!(
            "`nat` puts instance {max} behind a {} NAT, but the experiment runs {instances} instance{}",
            t.name(),
            if instances == 1 { "" } else { "s" }
        ))
    }

    /// The mapping timeout (`nat_timeout`, default [`DEFAULT_NAT_TIMEOUT`]).
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_NAT_TIMEOUT)
    }
}

/// `TYPE [{ids}]` items separated by commas outside the braces.
fn parse_nat(text: &str) -> Result<Vec<(NatType, Option<IdSet>)>, String> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    let names = || {
        NatType::ALL
            .iter()
            .map(|(n, _)| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut groups = Vec::new();
    for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        let (name, selector) = match item.find('{') {
            Some(b) => {
                let Some(inner) = item[b + 1..].strip_suffix('}') else {
                    return Err(format!(
                        "bad value for `nat`: `{item}` has no closing `}}` at its end (write `TYPE {{ids}}`)"
                    ));
                };
                (item[..b].trim(), Some(inner))
            }
            None => (item, None),
        };
        let Some(t) = NatType::parse(name) else {
            let hint = crate::suggest(name, NatType::ALL.iter().map(|(n, _)| *n))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(format!(
                "bad value for `nat`: unknown NAT type `{name}`{hint}; expected {} (each optionally followed by instance ids, e.g. `symmetric {{3-10}}`)",
                names()
            ));
        };
        let ids = match selector {
            None => {
                if groups
                    .iter()
                    .any(|(_, ids): &(NatType, Option<IdSet>)| ids.is_none())
                {
                    return Err(format!(
                        "bad value for `nat`: two types for every other instance (`{item}`); give all but one of them instance ids, e.g. `symmetric {{3-10}}`"
                    ));
                }
                None
            }
            Some(inner) => {
                let (spec, errors) = parse_peerspec(inner);
                if let Some(e) = errors.first() {
                    return Err(format!("bad value for `nat`: in `{item}`: {}", e.message));
                }
                match spec {
                    PeerSpec::Only(set) => Some(set),
                    _ => {
                        return Err(format!(
                            "bad value for `nat`: `{item}` must list instance ids, e.g. `{name} {{3-10}}` (a type with no ids applies to every other instance)"
                        ));
                    }
                }
            }
        };
        groups.push((t, ids));
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_pick_the_first_type_naming_an_instance_and_a_bare_type_is_the_rest() {
        let mut k = NatKeys::default();
        k.set(
            "nat",
            "symmetric {3-5,9}, Port-Restricted_Cone {5-6}, full_cone",
        )
        .unwrap();
        let types: Vec<&str> = (1..=9).map(|i| k.of(i).name()).collect();
        assert_eq!(
            types,
            [
                "full_cone",
                "full_cone",
                "symmetric",
                "symmetric",
                "symmetric",
                "port_restricted_cone",
                "full_cone",
                "full_cone",
                "symmetric"
            ]
        );
        assert!(k.any());
        assert_eq!(NatKeys::default().of(1), NatType::None);
        assert!(!NatKeys::default().any());
        k.set("nat", "address_restricted_cone").unwrap();
        assert_eq!(k.of(4), NatType::RestrictedCone);
        assert_eq!(k.timeout(), DEFAULT_NAT_TIMEOUT);
        k.set("nat_timeout", "30s").unwrap();
        assert_eq!(k.timeout(), Duration::from_secs(30));
        k.set("nat", "full_cone {2}, symmetric {4-12}").unwrap();
        assert_eq!(
            k.beyond(10).as_deref(),
            Some(
                "`nat` puts instance 12 behind a symmetric NAT, but the experiment runs 10 instances"
            )
        );
        assert_eq!(k.beyond(12), None);
    }

    #[test]
    fn bad_values_say_what_is_wrong_and_what_to_write() {
        let err = |key: &str, text: &str| NatKeys::default().set(key, text).unwrap_err();
        let e = err("nat", "symetric {2}");
        assert!(e.contains("unknown NAT type `symetric`"), "{e}");
        assert!(e.contains("did you mean `symmetric`?"), "{e}");
        assert!(e.contains("`port_restricted_cone`"), "{e}");
        assert!(err("nat", "full_cone, symmetric").contains("two types for every other instance"));
        assert!(err("nat", "symmetric {!2}").contains("must list instance ids"));
        assert!(err("nat", "symmetric {2").contains("no closing"));
        assert!(err("nat", "symmetric {2-x}").contains("in `symmetric {2-x}`"));
        assert!(err("nat_timeout", "0").contains("above 0"));
        assert!(err("nat_timeout", "soon").contains("bad value for `nat_timeout`"));
    }
}
