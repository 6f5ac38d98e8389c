//! Overlay statistics as plain data, named as docs/outputs.md says.
//!
//! Owns: per message type in/out counts and bytes, drops by reason, and the
//! rendering to counter names (`msg_in/<type>`, `drop/<reason>`, `peers`).
//! Must not: decide what to count (the core calls it) or write anywhere.

/// Why an incoming datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Could not be decoded.
    Malformed,
    /// Another community's packet.
    ForeignCommunity,
    /// The signature did not verify.
    BadSignature,
    /// A FullSync message already held (re-delivery refused).
    Duplicate,
    /// A global time beyond the acceptance window.
    FutureGlobalTime,
    /// Larger than the datagram limit.
    Oversize,
    /// A message id no meta-message (or discovery message) has.
    UnknownMessage,
    /// Lost to a fault the experiment injected (`set_network` loss, a
    /// partition); counted by the driver that applies it.
    NetworkFault,
    /// Signed by a key outside the peer directory while the overlay takes
    /// only the directory's authors ([`crate::Config::drop_unknown_authors`]).
    UnknownAuthor,
    /// A FullSync message from an author who already has
    /// [`crate::Config::max_messages_per_author`] messages stored.
    AuthorLimit,
    /// A discovery packet signed by a directory peer's key but sent from
    /// another address than the directory's (a replay).
    WrongAddress,
    /// An introduction response answering no request of ours (a replay).
    Unsolicited,
    /// Not let in by the instance's NAT (its `nat` type's filtering: no
    /// datagram of ours went to the sender yet); counted by the driver or
    /// network that models the NAT.
    NatFiltered,
    /// An instance's upload or download queue was full (its bandwidth
    /// model, `network_up`/`network_down`); counted by the instance.
    QueueFull,
}

impl DropReason {
    /// All reasons, in counter order.
    pub const ALL: [DropReason; 14] = [
        Self::Malformed,
        Self::ForeignCommunity,
        Self::BadSignature,
        Self::Duplicate,
        Self::FutureGlobalTime,
        Self::Oversize,
        Self::UnknownMessage,
        Self::NetworkFault,
        Self::UnknownAuthor,
        Self::AuthorLimit,
        Self::WrongAddress,
        Self::Unsolicited,
        Self::NatFiltered,
        Self::QueueFull,
    ];

    /// The name in `drop/<reason>`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::ForeignCommunity => "foreign_community",
            Self::BadSignature => "bad_signature",
            Self::Duplicate => "duplicate",
            Self::FutureGlobalTime => "future_global_time",
            Self::Oversize => "oversize",
            Self::UnknownMessage => "unknown_message",
            Self::NetworkFault => "network_fault",
            Self::UnknownAuthor => "unknown_author",
            Self::AuthorLimit => "author_limit",
            Self::WrongAddress => "wrong_address",
            Self::Unsolicited => "unsolicited",
            Self::QueueFull => "queue_full",
            Self::NatFiltered => "nat_filtered",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).expect("listed")
    }
}

/// Counts for one message type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeStats {
    /// The type's name (meta-message or discovery message name).
    pub name: String,
    /// Messages received and accepted.
    pub msg_in: u64,
    /// Bytes of those.
    pub bytes_in: u64,
    /// Datagrams sent.
    pub msg_out: u64,
    /// Bytes of those.
    pub bytes_out: u64,
}

/// An overlay's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    slot: [u8; 256],
    /// Per message type, in the order the types were first counted.
    pub types: Vec<TypeStats>,
    /// Drops by reason, indexed like [`DropReason::ALL`].
    pub drops: [u64; DropReason::ALL.len()],
    /// Peers known now (a gauge, not reset).
    pub peers: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            slot: [u8::MAX; 256],
            types: Vec::new(),
            drops: [0; DropReason::ALL.len()],
            peers: 0,
        }
    }
}

impl Stats {
    /// Registers the name of a message id (before counting it).
    /// Ids given the same name (py-ipv8's old and new style of one
    /// discovery message) share one set of counters, so each name appears
    /// once in [`Stats::counters`].
    pub fn name_type(&mut self, msg_id: u8, name: &str) {
        if let Some(existing) = self.types.iter().position(|t| t.name == name) {
            let current = self.slot[msg_id as usize];
            if current == u8::MAX {
                self.slot[msg_id as usize] = existing as u8;
                return;
            }
            if current as usize == existing {
                return;
            }
        }
        let s = self.slot_of(msg_id);
        self.types[s].name = name.to_owned();
    }

    fn slot_of(&mut self, msg_id: u8) -> usize {
        let s = self.slot[msg_id as usize];
        if s != u8::MAX {
            return s as usize;
        }
        self.types.push(TypeStats {
            name: format!("message-{msg_id}"),
            ..TypeStats::default()
        });
        let s = (self.types.len() - 1) as u8;
        self.slot[msg_id as usize] = s;
        s as usize
    }

    /// Counts an accepted incoming message.
    pub fn count_in(&mut self, msg_id: u8, bytes: usize) {
        let s = self.slot_of(msg_id);
        self.types[s].msg_in += 1;
        self.types[s].bytes_in += bytes as u64;
    }

    /// Counts a sent datagram.
    pub fn count_out(&mut self, msg_id: u8, bytes: usize) {
        let s = self.slot_of(msg_id);
        self.types[s].msg_out += 1;
        self.types[s].bytes_out += bytes as u64;
    }

    /// Counts a drop.
    pub fn count_drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }

    /// Drops for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// The stats of a type by name.
    pub fn of(&self, name: &str) -> Option<&TypeStats> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Zeroes every counter except the `peers` gauge (`reset_dispersy_statistics`).
    pub fn reset(&mut self) {
        for t in &mut self.types {
            t.msg_in = 0;
            t.bytes_in = 0;
            t.msg_out = 0;
            t.bytes_out = 0;
        }
        self.drops = [0; DropReason::ALL.len()];
    }

    /// Every counter, as [`Stats::counters`] names and orders them, without
    /// building a name: `f(prefix, name, value)`, the name being
    /// `prefix` followed by `name` (a statistics sample every second in
    /// every simulated instance must not allocate per counter).
    pub fn visit_counters(&self, mut f: impl FnMut(&str, &str, u64)) {
        for t in &self.types {
            f("msg_in/", &t.name, t.msg_in);
            f("bytes_in/", &t.name, t.bytes_in);
            f("msg_out/", &t.name, t.msg_out);
            f("bytes_out/", &t.name, t.bytes_out);
        }
        for r in DropReason::ALL {
            f("drop/", r.name(), self.dropped(r));
        }
        f("", "peers", self.peers);
    }

    /// Every counter under its docs/outputs.md name (zero counters included).
    pub fn counters(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.types
            .iter()
            .flat_map(|t| {
                [
                    (format!("msg_in/{}", t.name), t.msg_in),
                    (format!("bytes_in/{}", t.name), t.bytes_in),
                    (format!("msg_out/{}", t.name), t.msg_out),
                    (format!("bytes_out/{}", t.name), t.bytes_out),
                ]
            })
            .chain(
                DropReason::ALL
                    .iter()
                    .map(|r| (format!("drop/{}", r.name()), self.dropped(*r))),
            )
            .chain(std::iter::once(("peers".to_owned(), self.peers)))
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn ids_with_one_name_share_counters_and_names_are_unique() {
        let mut s = Stats::default();
        s.name_type(246, "introduction-request");
        s.name_type(234, "introduction-request");
        s.name_type(1, "rumor");
        s.count_in(246, 10);
        s.count_in(234, 20);
        s.count_out(234, 5);
        let counters: Vec<(String, u64)> = s.counters().collect();
        let mut names: Vec<&str> = counters.iter().map(|(n, _)| n.as_str()).collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "every counter name once: {counters:?}");
        let get = |k: &str| counters.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        assert_eq!(get("msg_in/introduction-request"), Some(2));
        assert_eq!(get("bytes_in/introduction-request"), Some(30));
        assert_eq!(get("msg_out/introduction-request"), Some(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_outputs_md() {
        let mut s = Stats::default();
        s.name_type(1, "broadcast-share");
        s.count_in(1, 100);
        s.count_out(246, 200);
        s.name_type(246, "introduction-request");
        s.count_drop(DropReason::BadSignature);
        let c: std::collections::BTreeMap<_, _> = s.counters().collect();
        assert_eq!(c["msg_in/broadcast-share"], 1);
        assert_eq!(c["bytes_in/broadcast-share"], 100);
        assert_eq!(c["bytes_out/introduction-request"], 200);
        assert_eq!(c["drop/bad_signature"], 1);
        assert_eq!(c["drop/future_global_time"], 0);
        let mut visited = Vec::new();
        s.visit_counters(|p, n, v| visited.push((format!("{p}{n}"), v)));
        assert_eq!(visited, s.counters().collect::<Vec<_>>());
        s.reset();
        assert!(s.counters().all(|(_, v)| v == 0));
    }
}
