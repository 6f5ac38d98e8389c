//! Where the SLURM runner's sync server listens and which address the
//! nodes are told to connect to: `sync_interface` (an interface of the
//! submitting host: listen on its IPv4 address and give that to the nodes),
//! `sync_host` (a name or address the nodes reach; listen everywhere), or by
//! default the address this host uses to reach the cluster's nodes (their
//! `NodeAddr` from `sinfo`): on a cluster that is the head's address on the
//! nodes' network, on the single-host test cluster 127.0.0.1. Nothing here
//! assumes 127.0.0.1.
//!
//! Must not: start the server (the supervisor's `prepare` does) or decide
//! anything else about the job.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use super::{SlurmError, slurm_command};

/// The config key naming the interface the sync server listens on.
pub const SYNC_INTERFACE_KEY: &str = "sync_interface";

/// Where the sync server listens and what the nodes connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPlace {
    /// The address the server binds.
    pub bind: IpAddr,
    /// The name or address the node agents are given.
    pub advertise: String,
    /// How it was chosen, for the log.
    pub how: String,
}

/// Why no place for the sync server could be chosen.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error(
        "`{SYNC_INTERFACE_KEY} = {name}`: this host has no interface {name} with an IPv4 address (interfaces with one: {known}); set sync_interface to one of them, or set sync_host instead"
    )]
    NoSuchInterface { name: String, known: String },
    #[error(
        "cannot find an address for the sync server: SLURM names no node address this host has a route to, and this host has no name; set sync_host or sync_interface in the config"
    )]
    Nothing,
}

/// The socket address at `port` of the name or address the nodes are
/// given (IPv4 first), for a service beside the sync server (the tracker).
pub fn reachable(advertise: &str, port: u16) -> Option<SocketAddr> {
    let all: Vec<SocketAddr> = (advertise, port).to_socket_addrs().ok()?.collect();
    all.iter().find(|a| a.is_ipv4()).or(all.first()).copied()
}

/// Choose the sync server's place from the config's `sync_host` and
/// `sync_interface`; with neither, from the nodes' addresses in `partition`.
pub async fn choose(
    sync_host: Option<&str>,
    interface: Option<&str>,
    partition: Option<&str>,
) -> Result<SyncPlace, AddressError> {
    if let Some(name) = interface {
        let ip = interface_ipv4(name).ok_or_else(|| AddressError::NoSuchInterface {
            name: name.into(),
            known: interfaces_with_ipv4()
                .into_iter()
                .map(|(n, ip)| format!("{n} ({ip})"))
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        return Ok(SyncPlace {
            bind: IpAddr::V4(ip),
            advertise: sync_host.map_or_else(|| ip.to_string(), str::to_string),
            how: format!("{SYNC_INTERFACE_KEY} = {name}"),
        });
    }
    if let Some(host) = sync_host {
        return Ok(SyncPlace {
            bind: Ipv4Addr::UNSPECIFIED.into(),
            advertise: host.to_string(),
            how: "sync_host".into(),
        });
    }
    match node_addresses(partition).await {
        Ok(addrs) => {
            for (node, addr) in &addrs {
                if let Some(ip) = resolve(addr).and_then(super::agent::local_ip_towards) {
                    return Ok(SyncPlace {
                        bind: ip,
                        advertise: ip.to_string(),
                        how: format!("the address that routes to node {node} ({addr})"),
                    });
                }
            }
            tracing::warn!(
                "no node address SLURM lists has a route from here ({} nodes); using this host's name",
                addrs.len()
            );
        }
        Err(err) => tracing::warn!(
            "cannot ask SLURM for the nodes' addresses ({}); using this host's name",
            crate::util::chain(&err)
        ),
    }
    let name = super::this_host_name().ok_or(AddressError::Nothing)?;
    Ok(SyncPlace {
        bind: Ipv4Addr::UNSPECIFIED.into(),
        advertise: name,
        how: "this host's name".into(),
    })
}

/// `(node, NodeAddr)` of the partition's nodes (every node without one).
async fn node_addresses(partition: Option<&str>) -> Result<Vec<(String, String)>, SlurmError> {
    let mut args: Vec<String> = ["-h", "-N", "-o", "%N|%o"].map(String::from).to_vec();
    if let Some(p) = partition {
        args.push(format!("--partition={p}"));
    }
    let out = slurm_command("sinfo", &args).await?;
    Ok(parse_node_addresses(&out))
}

fn parse_node_addresses(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| {
            let (node, addr) = l.trim().split_once('|')?;
            let (node, addr) = (node.trim(), addr.trim());
            (!node.is_empty() && !addr.is_empty()).then(|| (node.to_string(), addr.to_string()))
        })
        .collect()
}

/// A node address (an IP, or a name) as a socket address to route towards.
fn resolve(addr: &str) -> Option<SocketAddr> {
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 9));
    }
    let addrs: Vec<SocketAddr> = (addr, 9).to_socket_addrs().ok()?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
}

/// This host's interfaces with an IPv4 address, in the kernel's order.
pub fn interfaces_with_ipv4() -> Vec<(String, Ipv4Addr)> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null()
            // SAFETY: ifa_addr points to a sockaddr of at least its family's size.
            && i32::from(unsafe { (*ifa.ifa_addr).sa_family }) == libc::AF_INET
        {
            // SAFETY: an AF_INET address is a sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            // SAFETY: ifa_name is a NUL-terminated string.
            let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
                .to_string_lossy()
                .into_owned();
            out.push((name, ip));
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// The first IPv4 address of interface `name`.
pub fn interface_ipv4(name: &str) -> Option<Ipv4Addr> {
    interfaces_with_ipv4()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, ip)| ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_are_read_from_sinfo() {
        assert_eq!(
            parse_node_addresses("n1|10.213.17.11\nn2|node302\n|x\nn4|\n"),
            vec![
                ("n1".to_string(), "10.213.17.11".to_string()),
                ("n2".to_string(), "node302".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn an_interface_gives_its_address_and_an_unknown_one_lists_the_real_ones() {
        let place = choose(None, Some("lo"), None).await.unwrap();
        assert_eq!(place.bind, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(place.advertise, "127.0.0.1");
        let place = choose(Some("head"), Some("lo"), None).await.unwrap();
        assert_eq!(place.advertise, "head");
        let err = choose(None, Some("nosuch0"), None).await.unwrap_err();
        assert!(err.to_string().contains("lo (127.0.0.1)"), "{err}");
        // sync_host alone: listen everywhere, tell the nodes the name.
        let place = choose(Some("fs0"), None, None).await.unwrap();
        assert_eq!(place.bind, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(place.advertise, "fs0");
    }

    #[test]
    fn node_names_resolve_to_routable_addresses() {
        assert_eq!(resolve("10.0.0.3"), Some("10.0.0.3:9".parse().unwrap()));
        assert!(resolve("127.0.0.1").is_some());
    }
}
