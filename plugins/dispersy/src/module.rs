//! The `dispersy` module: the overlay's glue to plugin-api, built into the
//! host through the same `ModuleRoot` table as any plugin.
//!
//! Owns the scenario callbacks of Gumby's DispersyModule (isolate_community,
//! start_session, stop_session, introduce_peers, reset_dispersy_statistics,
//! walker settings) and the config keys the overlay reads, each a thin call
//! into plugin-api's host context (`Host::overlay`); and the mapping between
//! plugin-api's message types and the overlay's ([`meta_message`],
//! [`incoming_message`]), which the host's overlay service uses.
//!
//! Must not: know the host's internals (it depends on `peerlab-plugin-api`
//! only, like every plugin), touch sockets or clocks, or export a library
//! header (the host links this crate; it is not opened with dlopen).

use std::time::Duration;

use peerlab_plugin_api::abi_stable::std_types::{RString, RVec};
use peerlab_plugin_api::{Host, IncomingMessage, MessageSpec, ModuleRoot_Ref, Value, module};

use crate::core::{Authentication, Delivered, Destination, Distribution, MetaMessage};

/// The root module of the built-in `dispersy` module: what the host
/// registers, as a plugin's `peerlab_root_module` would give it.
pub fn peerlab_root_module() -> ModuleRoot_Ref {
    peerlab_plugin_api::root_module_for::<Dispersy>()
}

/// A module's message definition as the overlay's meta-message.
pub fn meta_message(spec: &MessageSpec) -> Result<MetaMessage, String> {
    use peerlab_plugin_api::{
        Authentication as ApiAuthentication, Destination as ApiDestination,
        Distribution as ApiDistribution,
    };
    let authentication = match spec.authentication {
        ApiAuthentication::MEMBER => Authentication::Member,
        ApiAuthentication::NONE => Authentication::None,
        other => return Err(format!("unknown authentication policy {}", other.0)),
    };
    let distribution = match spec.distribution {
        ApiDistribution::FULL_SYNC => Distribution::FullSync,
        ApiDistribution::DIRECT => Distribution::Direct,
        other => return Err(format!("unknown distribution policy {}", other.0)),
    };
    let destination = match spec.destination.as_enum() {
        Ok(ApiDestination::Community { fanout }) => Destination::Community(*fanout as usize),
        Ok(ApiDestination::Candidate) => Destination::Candidate,
        _ => {
            return Err("unknown destination policy (a plugin built against a newer api?)".into());
        }
    };
    Ok(MetaMessage::new(
        spec.name.as_str(),
        authentication,
        distribution,
        destination,
    ))
}

/// A delivered overlay message as a module receives it: the sender is the
/// author for signed messages (a synced message may come from a
/// forwarder), the sending instance for unsigned ones, 0 for neither.
pub fn incoming_message(d: Delivered) -> IncomingMessage {
    IncomingMessage {
        name: RString::from(&*d.name),
        sender: u64::from(d.author_instance.or(d.from_instance).unwrap_or(0)),
        author: d
            .author
            .map(|k| RVec::from(k.as_bytes().to_vec()))
            .unwrap_or_default(),
        global_time: d.global_time,
        payload: RVec::from(d.payload),
        author_instance: d.author_instance.map(u64::from).into(),
    }
}

/// The `dispersy` module (stateless: the overlay keeps the state).
#[derive(Debug, Default)]
pub struct Dispersy;

fn hex20(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if s.len() != 40 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("a community id is 40 hex digits, got {s:?}"));
    }
    (0..20)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

/// The Dispersy overlay (built in): communities, sessions, peer discovery.
#[module(
    name = "dispersy",
    export = false,
    config = [
        "sync_interval: scenario time between catch-up sync requests (default 1s)",
        "sync_response_limit: most stored messages sent in answer to one sync request (default 32)",
        "drop_unknown_authors: drop signed messages whose key is not in the run's peer table, counted as drop/unknown_author (default true; false lets py-ipv8 peers from outside the run take part)",
        "max_messages_per_author: most FullSync messages each overlay stores per author; more are dropped as drop/author_limit (1 to 65535, default 10000)",
    ]
)]
impl Dispersy {
    /// Join a private community derived from NAME: `isolate_community NAME`.
    #[callback]
    fn isolate_community(&mut self, host: &mut Host, name: String) -> Result<(), String> {
        host.overlay().isolate_community(&name)
    }

    /// Use an explicit community id: `set_community_id HEX40`.
    #[callback]
    fn set_community_id(&mut self, host: &mut Host, id: String) -> Result<(), String> {
        let bytes = hex20(&id)?;
        host.overlay().set_community_id(&bytes)
    }

    /// Start the overlay session (socket and walker).
    #[callback]
    fn start_session(&mut self, host: &mut Host) -> Result<(), String> {
        host.overlay().start_session()
    }

    /// Stop the overlay session.
    #[callback]
    fn stop_session(&mut self, host: &mut Host) -> Result<(), String> {
        host.overlay().stop_session()
    }

    /// Learn peers from the sync server's table: `introduce_peers [max_peers=N]`.
    #[callback]
    fn introduce_peers(
        &mut self,
        host: &mut Host,
        #[kw(help = "at most this many peers")] max_peers: Option<i64>,
    ) -> Result<(), String> {
        let max = match max_peers {
            Some(n) if n < 0 => return Err(format!("max_peers must not be negative, got {n}")),
            Some(n) => Some(n as u64),
            None => None,
        };
        host.overlay().introduce_peers(max)
    }

    /// Reset the overlay's message and byte counters.
    #[callback]
    fn reset_dispersy_statistics(&mut self, host: &mut Host) -> Result<(), String> {
        host.overlay().reset_statistics()
    }

    /// Walker settings: `set_walker [interval=DURATION] [enabled=BOOL] [targets=N]`.
    #[callback]
    fn set_walker(
        &mut self,
        host: &mut Host,
        #[kw(help = "time between walk steps")] interval: Option<Duration>,
        #[kw(help = "walk or not")] enabled: Option<bool>,
        #[kw(help = "peers to keep walking towards")] targets: Option<i64>,
    ) -> Result<(), String> {
        let mut o = host.overlay();
        if let Some(i) = interval {
            o.set_walker("interval", Value::Duration(i.into()))?;
        }
        if let Some(e) = enabled {
            o.set_walker("enabled", Value::Bool(e))?;
        }
        if let Some(t) = targets {
            o.set_walker("targets", Value::Int(t))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerlab_plugin_api::testing::TestHost;

    #[test]
    fn callbacks_reach_the_overlay() {
        let mut th = TestHost::new(1, 3);
        let mut d = Dispersy;
        d.isolate_community(&mut th.host(), "BenalohCommunity".into())
            .unwrap();
        d.start_session(&mut th.host()).unwrap();
        d.introduce_peers(&mut th.host(), Some(2)).unwrap();
        d.reset_dispersy_statistics(&mut th.host()).unwrap();
        d.set_walker(
            &mut th.host(),
            Some(Duration::from_secs(5)),
            Some(false),
            None,
        )
        .unwrap();
        assert_eq!(th.community.as_deref(), Some("BenalohCommunity"));
        assert!(th.session_started);
        assert_eq!(th.introductions, [Some(2)]);
        assert_eq!(th.statistics_resets, 1);
        assert_eq!(th.walker.len(), 2);
        assert!(d.introduce_peers(&mut th.host(), Some(-1)).is_err());
        assert!(d.set_community_id(&mut th.host(), "abc".into()).is_err());
        d.set_community_id(&mut th.host(), "00".repeat(20)).unwrap();
    }
}
