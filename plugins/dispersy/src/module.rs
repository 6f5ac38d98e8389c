//! The `dispersy` module: the overlay's glue to plugin-api, built into the
//! host through the same `ModuleRoot` table as any plugin.
//!
//! Owns the scenario callbacks of Gumby's DispersyModule (isolate_community,
//! start_session, stop_session, introduce_peers, reset_dispersy_statistics,
//! walker settings, and the IPv8 module's set_bootstrap and walk_to) and the config keys the overlay reads, each a thin call
//! into plugin-api's host context (`Host::overlay`); and, for the host's
//! overlay services behind that context, what they mean for an
//! [`OverlayCore`]: the mapping between plugin-api's message types and the
//! overlay's ([`meta_message`], [`incoming_message`]) and the services'
//! semantics ([`community_id`], [`introduce_peers`], [`set_walker`],
//! [`send`], [`known_peers`]). The host keeps only what needs its instance:
//! which core, the peer table it got at the barrier, the time scale, which
//! module defined which message, its records.
//!
//! Must not: know the host's internals (it depends on `peerlab-plugin-api`
//! only, like every plugin), touch sockets or clocks, or export a library
//! header (the host links this crate; it is not opened with dlopen).

use std::sync::Arc;
use std::time::Duration;

use peerlab_plugin_api::abi_stable::std_types::{RString, RVec};
use peerlab_plugin_api::{Host, IncomingMessage, MessageSpec, ModuleRoot_Ref, Value, module};

use crate::core::{Authentication, Delivered, Destination, Distribution, MetaMessage, OverlayCore};
use crate::crypto::CommunityId;
use crate::peers::PeerDirectory;

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

/// The walker's peer target when `set_walker enabled=true` switches it back on.
pub const WALKER_TARGETS: usize = 20;

/// `set_community_id`: the 20 bytes of a community id.
pub fn community_id(id: &[u8]) -> Result<CommunityId, String> {
    let bytes = <[u8; 20]>::try_from(id)
        .map_err(|_| format!("a community id has 20 bytes, got {}", id.len()))?;
    Ok(CommunityId(bytes))
}

/// `introduce_peers`: learn up to `max_peers` peers from the run's peer
/// table, which an instance has from the barrier on.
pub fn introduce_peers(
    core: &mut OverlayCore,
    directory: Option<&Arc<PeerDirectory>>,
    max_peers: Option<u64>,
) -> Result<(), String> {
    let dir = directory.cloned().ok_or(
        "introduce_peers needs the peer table, which arrives at the start: call it at @0 or later, not in @@ or @!",
    )?;
    core.introduce_from_directory(dir, max_peers.map(|m| m as usize));
    Ok(())
}

/// One `set_walker` setting (`interval`, `targets` or `enabled`);
/// `wall_interval` turns a scenario interval into the overlay's.
pub fn set_walker(
    core: &mut OverlayCore,
    name: &str,
    value: &Value,
    wall_interval: impl FnOnce(Duration) -> Duration,
) -> Result<(), String> {
    let cfg = core.config();
    let (mut interval, mut targets) = (cfg.walk_interval, cfg.target_peers);
    match (name, value) {
        // `set_bootstrap`: where the walker goes while it knows no peer.
        ("bootstrap", Value::Str(list)) => {
            let addrs = list
                .split(',')
                .map(|a| parse_addr(a.trim()))
                .collect::<Result<Vec<_>, _>>()?;
            core.set_bootstrap(addrs);
            return Ok(());
        }
        // `walk_to`: one introduction request, now.
        ("walk_to", Value::Str(addr)) => {
            let addr = parse_addr(addr.trim())?;
            if !core.is_started() {
                return Err(format!(
                    "walk_to {addr}: the session has not started: call start_session first"
                ));
            }
            core.send_introduction_request(addr);
            return Ok(());
        }
        ("interval", Value::Duration(d)) => {
            let d: Duration = (*d).into();
            if d.is_zero() {
                return Err("walker interval must be above zero".into());
            }
            // Scenario time, like every other time of the scenario.
            interval = wall_interval(d);
        }
        ("targets", Value::Int(n)) => {
            targets = usize::try_from(*n)
                .map_err(|_| format!("walker targets must be 0 or more, got {n}"))?;
        }
        // The walker steps while it knows fewer peers than its target.
        ("enabled", Value::Bool(false)) => targets = 0,
        ("enabled", Value::Bool(true)) => {
            if targets == 0 {
                targets = WALKER_TARGETS;
            }
        }
        (other, v) => {
            return Err(format!(
                "unknown walker setting `{other}` = {v:?}: use interval=DURATION, targets=N or enabled=BOOL"
            ));
        }
    }
    core.set_walker(interval, targets);
    Ok(())
}

/// An overlay address as scenarios write it: `IP:PORT`, `[IPv6]:PORT` or
/// `localhost:PORT` (no name lookups: the overlay does no I/O).
pub fn parse_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    let text = text
        .strip_prefix("localhost:")
        .map_or_else(|| text.to_string(), |port| format!("127.0.0.1:{port}"));
    text.parse().map_err(|_| {
        format!("`{text}` is not an address: write IP:PORT (e.g. 10.0.0.5:6421) or localhost:PORT")
    })
}

/// `send`: a message of a defined type to the given experiment instances.
pub fn send(
    core: &mut OverlayCore,
    message: &str,
    payload: &[u8],
    to: Vec<u64>,
) -> Result<(), String> {
    let meta = core.meta_id(message).ok_or_else(|| {
        format!("message type `{message}` is not defined: call define_message first")
    })?;
    let mut addrs = Vec::with_capacity(to.len());
    for id in to {
        let addr = u32::try_from(id)
            .ok()
            .and_then(|i| core.instance_addr(i))
            .ok_or_else(|| {
                format!(
                    "cannot send `{message}` to instance {id}: it is not in the peer table (introduce_peers first)"
                )
            })?;
        addrs.push(addr);
    }
    core.send(meta, payload, &addrs)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The experiment instances among the core's peers (none before the
/// barrier gave the peer table).
pub fn known_peers(core: &OverlayCore, directory: Option<&PeerDirectory>) -> Vec<u64> {
    let Some(dir) = directory else {
        return Vec::new();
    };
    core.peer_addrs()
        .filter_map(|a| dir.index_of_addr(&a))
        .map(|i| u64::from(dir.entries()[i as usize].instance_id))
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
    ],
    // The overlay core counts these itself (`Stats::counters`); declared
    // here so run.json and the reports know them like any module's. As the
    // built-in overlay's they keep their historic names, unprefixed.
    metrics = [
        counter("msg_in/*", unit = "messages", "messages received, by message type"),
        counter("bytes_in/*", unit = "bytes", "bytes received, by message type"),
        counter("msg_out/*", unit = "messages", "messages sent, by message type"),
        counter("bytes_out/*", unit = "bytes", "bytes sent, by message type"),
        counter("drop/*", unit = "packets", "packets dropped, by reason (docs/outputs.md)"),
        gauge(peers, unit = "peers", "peers known now"),
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
        let id = CommunityId::from_hex(id.trim())
            .ok_or_else(|| format!("a community id is 40 hex digits, got {:?}", id.trim()))?;
        host.overlay().set_community_id(&id.0)
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

    /// Walk to these addresses while no peer is known (Gumby's IPv8 module:
    /// bootstrap servers, a tracker): `set_bootstrap ADDR[:PORT]...`; a
    /// bare address takes the config's `tracker_port`.
    #[callback]
    fn set_bootstrap(
        &mut self,
        host: &mut Host,
        #[rest] addresses: Vec<String>,
    ) -> Result<(), String> {
        if addresses.is_empty() {
            return Err("set_bootstrap needs at least one address (IP:PORT)".into());
        }
        let port = host.config("tracker_port");
        let with_port = |a: &String| -> Result<String, String> {
            if a.contains(':') && !a.ends_with(']') {
                return Ok(a.clone());
            }
            match port.as_deref().map(str::trim) {
                Some(p) if p.parse::<u16>().is_ok() => Ok(format!("{a}:{p}")),
                _ => Err(format!(
                    "`{a}` has no port and the config's tracker_port is not a number: write {a}:PORT"
                )),
            }
        };
        let list = addresses
            .iter()
            .map(with_port)
            .collect::<Result<Vec<_>, _>>()?
            .join(",");
        host.overlay()
            .set_walker("bootstrap", Value::Str(list.into()))
    }

    /// Send one introduction request to ADDR now (the session must have
    /// started): `walk_to ADDR`.
    #[callback]
    fn walk_to(&mut self, host: &mut Host, address: String) -> Result<(), String> {
        host.overlay()
            .set_walker("walk_to", Value::Str(address.into()))
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

    #[test]
    fn services_refuse_what_the_core_cannot_do() {
        use crate::core::Config;
        let addr = "127.0.0.1:9".parse().unwrap();
        let mut core = OverlayCore::new(Config::new([1; 32], 1, addr));
        assert!(community_id(&[0; 19]).is_err());
        assert_eq!(community_id(&[7; 20]).unwrap(), CommunityId([7; 20]));
        let e = introduce_peers(&mut core, None, Some(3)).unwrap_err();
        assert!(e.contains("needs the peer table"), "{e}");
        let e = send(&mut core, "nope", b"", vec![1]).unwrap_err();
        assert!(e.contains("not defined"), "{e}");
        assert!(known_peers(&core, None).is_empty());
        let e = set_walker(&mut core, "speed", &Value::Int(1), |d| d).unwrap_err();
        assert!(e.contains("unknown walker setting"), "{e}");
        set_walker(&mut core, "enabled", &Value::Bool(false), |d| d).unwrap();
        assert_eq!(core.config().target_peers, 0);
        set_walker(&mut core, "enabled", &Value::Bool(true), |d| d).unwrap();
        assert_eq!(core.config().target_peers, WALKER_TARGETS);
        set_walker(
            &mut core,
            "interval",
            &Value::Duration(Duration::from_secs(2).into()),
            |d| d * 2,
        )
        .unwrap();
        assert_eq!(core.config().walk_interval, Duration::from_secs(4));
    }
}
