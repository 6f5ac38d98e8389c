//! The Dispersy overlay: communities, signed gossip with global time,
//! catch-up synchronisation and peer discovery, speaking py-ipv8's wire format.
