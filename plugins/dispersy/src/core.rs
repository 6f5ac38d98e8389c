//! The sans-IO overlay core: one community member as a pure state machine.
//!
//! Owns: the community's meta-messages, global time, the FullSync store,
//! catch-up sync, the walker, peer bookkeeping, signature checks, statistics,
//! and the queues of datagrams to send and events to deliver. Must not: touch
//! sockets, read a clock (`now` is always an argument), use a thread RNG (the
//! RNG is seeded from [`Config::rng_seed`]) or spawn anything. Drivers (the
//! tokio UDP driver in `udp`, the simulated network in `sim`) carry bytes and
//! deadlines to and from it.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, VerifyingKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bloom;
use crate::counts::AuthorCounts;
use crate::crypto::{self, CommunityId, Keypair, PublicKey};
use crate::error::{CommandError, DecodeError};
use crate::peers::{PeerDirectory, PeerKey, PeerRef, PeerTable};
use crate::pool::SharedPool;
use crate::stats::{DropReason, Stats};
use crate::store::{Store, Stored};
use crate::wire::{
    self, Decoded, IntroductionRequest, IntroductionResponse, Puncture, Style, SyncRequest, id,
};

/// How a meta-message is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication {
    /// Signed by its author (ed25519), verified on receipt.
    Member,
    /// Not signed.
    None,
}

/// How a meta-message is distributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// Stamped with the author's Lamport global time, unique per (author, global
    /// time), stored and offered to catch-up sync. Needs `Authentication::Member`.
    FullSync,
    /// Sent once, not stored.
    Direct,
}

/// Where a meta-message goes when sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// To `n` random known peers (and, for FullSync with forwarding on, each
    /// receiver passes a new message on to `n` random peers of its own).
    Community(usize),
    /// To the peers the sender names.
    Candidate,
}

/// A message type, declared at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaMessage {
    /// Its name (statistics use it: `msg_in/<name>`).
    pub name: String,
    /// The wire message id; `None` takes the lowest free id from 1 up.
    pub id: Option<u8>,
    /// Authentication policy.
    pub authentication: Authentication,
    /// Distribution policy.
    pub distribution: Distribution,
    /// Destination policy.
    pub destination: Destination,
    /// Whether a receiver of a new FullSync message forwards it (gossip) to the
    /// destination's `n` peers; catch-up sync delivers it regardless.
    pub forward: bool,
}

impl MetaMessage {
    /// A meta-message with an automatic id. As in Dispersy, receivers of a
    /// FullSync message store it and offer it to catch-up sync but do not
    /// forward it (forwarding on every hop costs n × fanout datagrams per
    /// message); [`with_forwarding`](Self::with_forwarding) turns epidemic
    /// forwarding on.
    pub fn new(
        name: impl Into<String>,
        authentication: Authentication,
        distribution: Distribution,
        destination: Destination,
    ) -> Self {
        Self {
            name: name.into(),
            id: None,
            authentication,
            distribution,
            destination,
            forward: false,
        }
    }

    /// Fixes the wire message id (1..=228), e.g. to match a py-ipv8 community.
    pub fn with_id(mut self, id: u8) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets whether receivers forward new FullSync messages.
    pub fn with_forwarding(mut self, forward: bool) -> Self {
        self.forward = forward;
        self
    }
}

/// The wire id of a defined meta-message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetaId(pub u8);

/// Settings of one overlay. Intervals are in protocol time: scale them for `--time-scale`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seed of the member's ed25519 key (e.g. derived from the run seed and instance id).
    pub key_seed: [u8; 32],
    /// Seed of the core's RNG (peer choice, sync salts, identifiers).
    pub rng_seed: u64,
    /// The address this overlay is reachable at (advertised in introductions; py-ipv8 answers to it).
    pub local_addr: SocketAddr,
    /// Time between walker steps (py-ipv8: 0.5 s).
    pub walk_interval: Duration,
    /// The walker stops stepping once this many peers are known.
    pub target_peers: usize,
    /// Introduction requests from new peers are not answered once this many peers are known (py-ipv8: 30).
    pub max_peers: usize,
    /// Addresses to walk to when no peer is known (bootstrap / tracker).
    pub bootstrap: Vec<SocketAddr>,
    /// Time between catch-up sync requests.
    pub sync_interval: Duration,
    /// Most stored packets sent in answer to one sync request.
    pub sync_response_limit: usize,
    /// FullSync messages with a global time more than this far ahead of ours are refused (Dispersy: 10,000).
    pub acceptable_global_time_range: u64,
    /// Walker peers not heard from for this long are forgotten (`None`: never).
    pub peer_timeout: Option<Duration>,
    /// Largest datagram sent or accepted.
    pub max_datagram: usize,
    /// Process-wide pool of verified FullSync packets (see [`crate::pool`]); `None` verifies everything.
    pub pool: Option<Arc<SharedPool>>,
    /// Take signed messages (application and discovery) only from authors
    /// whose key is in the peer directory ([`OverlayCore::set_directory`]); others
    /// are dropped as `drop/unknown_author`, before their signature is
    /// checked. For communities whose members all come from one directory
    /// (every peerlab run); off by default, as py-ipv8 peers are not in it.
    pub drop_unknown_authors: bool,
    /// Most FullSync messages stored per author (this member's own are not
    /// limited); further ones are dropped as `drop/author_limit`, so one
    /// key cannot grow every member's store without bound. At most
    /// [`MAX_MESSAGES_PER_AUTHOR`]: larger values act as that.
    pub max_messages_per_author: usize,
    /// A discovery packet signed by a directory member's key must come
    /// from that member's directory address (else `drop/wrong_address`).
    /// Off when members sit behind NATs: a NAT'd member sends from its
    /// NAT's mapped address, not the address it has in the directory.
    pub check_directory_address: bool,
}

/// The default of [`Config::max_messages_per_author`]: far above what an
/// experiment publishes per member (the scale scenarios: 1 to 20).
pub const DEFAULT_MAX_MESSAGES_PER_AUTHOR: usize = 10_000;

/// The largest effective [`Config::max_messages_per_author`]: counts are
/// 16-bit, so the counters of 10,000 authors cost each member 20 KB.
pub const MAX_MESSAGES_PER_AUTHOR: usize = u16::MAX as usize;

impl Config {
    /// Defaults close to py-ipv8's, for a member with the given seeds and address.
    pub fn new(key_seed: [u8; 32], rng_seed: u64, local_addr: SocketAddr) -> Self {
        Self {
            key_seed,
            rng_seed,
            local_addr,
            walk_interval: Duration::from_millis(500),
            target_peers: 20,
            max_peers: 30,
            bootstrap: Vec::new(),
            sync_interval: Duration::from_secs(1),
            sync_response_limit: 32,
            acceptable_global_time_range: 10_000,
            peer_timeout: None,
            max_datagram: wire::MAX_DATAGRAM,
            pool: None,
            drop_unknown_authors: false,
            max_messages_per_author: DEFAULT_MAX_MESSAGES_PER_AUTHOR,
            check_directory_address: true,
        }
    }
}

/// One datagram to send: the bytes are in the buffer given to [`OverlayCore::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// How many bytes of the buffer to send.
    pub size: usize,
    /// Its message id (for the driver's own accounting; the core already counted it).
    pub msg_id: u8,
}

/// A message delivered to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Its meta-message.
    pub meta: MetaId,
    /// The meta-message's name.
    pub name: Arc<str>,
    /// The address it came from (for a synced FullSync message, the peer that forwarded it).
    pub from: SocketAddr,
    /// The sender's experiment instance id, when the peer came from the sync server's table.
    pub from_instance: Option<u32>,
    /// The author's key (signed messages).
    pub author: Option<PublicKey>,
    /// The author's instance id, when its key is in the directory.
    pub author_instance: Option<u32>,
    /// The author's global time.
    pub global_time: u64,
    /// The payload.
    pub payload: Vec<u8>,
}

/// What the core tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayEvent {
    /// A message for the application.
    Message(Delivered),
    /// The walker found a new peer (directory introductions do not raise this).
    PeerDiscovered {
        /// Its address.
        addr: SocketAddr,
        /// Its key.
        public_key: Option<PublicKey>,
        /// Its instance id, if known.
        instance_id: Option<u32>,
    },
}

/// What `send` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReport {
    /// The global time the message carries.
    pub global_time: u64,
    /// Datagrams queued.
    pub datagrams: usize,
}

#[derive(Debug)]
struct Meta {
    def: MetaMessage,
    name: Arc<str>,
}

#[derive(Debug)]
enum OutBytes {
    Arena { start: u32, len: u32 },
    Shared(Arc<[u8]>),
}

#[derive(Debug)]
struct Out {
    dest: SocketAddr,
    msg_id: u8,
    bytes: OutBytes,
}

/// A signed application packet that passed every check but the signature.
#[derive(Debug)]
struct Pending {
    slot: usize,
    from: SocketAddr,
    author: PublicKey,
    verifying: VerifyingKey,
    author_instance: Option<u32>,
    /// The author's row in the peer directory.
    author_row: Option<u32>,
    global_time: u64,
    /// Shared bytes from the pool (already verified) or `None`.
    pooled: Option<Arc<[u8]>>,
    /// The pool vouches for the signature (a hit in a pool that trusts hits).
    preverified: bool,
    digest: Option<[u8; 32]>,
}

const WALKABLE_MAX: usize = 256;
/// At most this many sync intervals between requests when nothing new arrives.
const SYNC_BACKOFF_MAX: u32 = 8;
/// The largest author class count of a sync request (a power of two).
const MAX_SYNC_MODULO: usize = 1 << 15;
const KEY_CACHE_MAX: usize = 4096;
const IDLE_CAPACITY_BYTES: usize = 4 * wire::MAX_DATAGRAM;
/// Introduction requests of ours a response may answer (the walker sends
/// one per step, so these cover the last minute or more).
const OUTSTANDING_INTRODUCTIONS: usize = 64;
const IDLE_CAPACITY_ITEMS: usize = 16;

/// One overlay member (Dispersy community instance) as a state machine.
///
/// Methods come in four kinds, as quinn-proto's `Connection`:
/// (A) getters (`stats`, `peer_count`, `global_time`, `public_key`, ...);
/// (B) inputs: [`handle`](Self::handle), [`handle_batch`](Self::handle_batch),
///     [`handle_timeout`](Self::handle_timeout);
/// (C) commands that only change state and queue work: `define_message`,
///     `set_community`, `start`, `stop`, `send`, `add_peer`, `introduce_from_directory`,
///     `reset_statistics`;
/// (D) outputs, to be polled in this order after every input or command:
///     [`poll_transmit`](Self::poll_transmit) until `None`, then
///     [`poll_timeout`](Self::poll_timeout) (the one next deadline; call
///     `handle_timeout` when it passes), then [`poll_event`](Self::poll_event)
///     until `None`. Time must never go backwards; an early or repeated
///     `handle_timeout` does nothing harmful.
#[derive(Debug)]
pub struct OverlayCore {
    cfg: Config,
    keypair: Keypair,
    community: Option<CommunityId>,
    rng: ChaCha8Rng,
    metas: Vec<Meta>,
    slot_of_id: [u8; 256],
    peers: PeerTable,
    key_cache: HashMap<[u8; 32], Arc<PeerKey>>,
    walkable: Vec<(SocketAddr, Instant)>,
    store: Store,
    global_time: u64,
    started: bool,
    next_walk: Option<Instant>,
    next_sync: Option<Instant>,
    /// Multiplier of the sync interval: doubles after each quiet request
    /// once a whole round has been quiet, back to 1 on news.
    sync_backoff: u32,
    /// Sync requests since the last news.
    sync_quiet: u32,
    /// The store was emptied while it held messages (a restart with an
    /// empty store): the community has messages this member lacks, so its
    /// quiet requests (to peers away, or as empty as it is) are no sign of
    /// convergence and it does not back off until its first message.
    catching_up: bool,
    /// Requests one round over the whole store takes (windows × classes).
    sync_round: u32,
    /// The class of authors the next request covers when the store is
    /// split into classes: round robin, so a round covers every class.
    sync_class: u16,
    my_wan: SocketAddr,
    out: VecDeque<Out>,
    arena: Vec<u8>,
    events: VecDeque<OverlayEvent>,
    stats: Stats,
    /// FullSync messages stored per author, for the per-author limit.
    author_counts: AuthorCounts,
    /// Identifiers of our recent introduction requests: a response must
    /// answer one of them (and uses it up), so a replayed one is refused.
    outstanding: VecDeque<u16>,
}

impl OverlayCore {
    /// A stopped core with no community; define messages, set the community, then `start`.
    pub fn new(cfg: Config) -> Self {
        let keypair = Keypair::from_seed(&cfg.key_seed);
        let mut stats = Stats::default();
        for (msg_id, name) in [
            (id::INTRODUCTION_REQUEST, "introduction-request"),
            (id::INTRODUCTION_RESPONSE, "introduction-response"),
            (id::PUNCTURE_REQUEST, "puncture-request"),
            (id::PUNCTURE, "puncture"),
            (id::NEW_INTRODUCTION_REQUEST, "introduction-request"),
            (id::NEW_INTRODUCTION_RESPONSE, "introduction-response"),
            (id::NEW_PUNCTURE_REQUEST, "puncture-request"),
            (id::NEW_PUNCTURE, "puncture"),
            (id::SYNC_REQUEST, "sync-request"),
        ] {
            stats.name_type(msg_id, name);
        }
        Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.rng_seed),
            my_wan: cfg.local_addr,
            keypair,
            cfg,
            community: None,
            metas: Vec::new(),
            slot_of_id: [u8::MAX; 256],
            peers: PeerTable::default(),
            key_cache: HashMap::new(),
            walkable: Vec::new(),
            store: Store::default(),
            global_time: 0,
            started: false,
            next_walk: None,
            next_sync: None,
            sync_backoff: 1,
            sync_quiet: 0,
            catching_up: false,
            sync_round: 1,
            sync_class: 0,
            out: VecDeque::new(),
            arena: Vec::new(),
            events: VecDeque::new(),
            stats,
            author_counts: AuthorCounts::default(),
            outstanding: VecDeque::new(),
        }
    }

    // ---- (A) getters ----

    /// This member's public key.
    pub fn public_key(&self) -> &PublicKey {
        self.keypair.public()
    }

    /// This member's key pair.
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// The community id, once set.
    pub fn community(&self) -> Option<CommunityId> {
        self.community
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The Lamport global time.
    pub fn global_time(&self) -> u64 {
        self.global_time
    }

    /// Whether `start` was called (and `stop` not since).
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Counts a datagram the driver dropped on purpose (an injected fault):
    /// the core never saw it leave, but its statistics should say so.
    pub fn count_fault_drop(&mut self) {
        self.stats.count_drop(DropReason::NetworkFault);
    }

    /// Counts a datagram an instance's bandwidth model dropped because its
    /// upload or download queue was full (`drop/queue_full`).
    pub fn count_queue_full_drop(&mut self) {
        self.stats.count_drop(DropReason::QueueFull);
    }

    /// Counts a datagram to this member that its NAT did not let in
    /// (`drop/nat_filtered`; the driver or network modelling the NAT calls this).
    pub fn count_nat_drop(&mut self) {
        self.stats.count_drop(DropReason::NatFiltered);
    }

    /// Statistics (the `peers` gauge is current).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of known peers.
    pub fn peer_count(&self) -> usize {
        self.peers.known_count()
    }

    /// Rows of the overlay's own peer table (walker and `add_peer` peers,
    /// known or forgotten; directory peers take none).
    pub fn peer_table_rows(&self) -> usize {
        self.peers.local_rows()
    }

    /// Addresses of the known peers.
    pub fn peer_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.peers.known().iter().map(|r| self.peers.info(*r).addr)
    }

    /// Number of FullSync messages held.
    pub fn stored_count(&self) -> usize {
        self.store.len()
    }

    /// The meta-message with id `id`.
    pub fn meta(&self, id: MetaId) -> Option<&MetaMessage> {
        self.slot(id.0).map(|s| &self.metas[s].def)
    }

    /// The id of the meta-message named `name`.
    pub fn meta_id(&self, name: &str) -> Option<MetaId> {
        self.metas
            .iter()
            .find(|m| m.def.name == name)
            .and_then(|m| m.def.id.map(MetaId))
    }

    /// The address of an instance in the directory.
    pub fn instance_addr(&self, instance_id: u32) -> Option<SocketAddr> {
        let dir = self.peers.directory()?;
        let i = dir.index_of_instance(instance_id)?;
        Some(dir.entries()[i as usize].addr)
    }

    fn slot(&self, msg_id: u8) -> Option<usize> {
        match self.slot_of_id[msg_id as usize] {
            u8::MAX => None,
            s => Some(s as usize),
        }
    }

    // ---- (C) commands ----

    /// Declares a meta-message; returns its wire id.
    pub fn define_message(&mut self, mut def: MetaMessage) -> Result<MetaId, CommandError> {
        if def.distribution == Distribution::FullSync && def.authentication == Authentication::None
        {
            return Err(CommandError::Unsupported {
                name: def.name,
                why: "FullSync needs Authentication::Member (uniqueness is per author and global time)",
            });
        }
        if let Destination::Community(0) = def.destination {
            return Err(CommandError::Unsupported {
                name: def.name,
                why: "Community(0) would send to nobody",
            });
        }
        let msg_id = match def.id {
            Some(i) if i == 0 || i >= id::FIRST_RESERVED => {
                return Err(CommandError::ReservedId(i));
            }
            Some(i) => i,
            None => (1..id::FIRST_RESERVED)
                .find(|i| self.slot(*i).is_none())
                .ok_or_else(|| CommandError::NoFreeId(def.name.clone()))?,
        };
        if self.slot(msg_id).is_some() || self.metas.iter().any(|m| m.def.name == def.name) {
            return Err(CommandError::Conflict {
                name: def.name,
                id: msg_id,
            });
        }
        def.id = Some(msg_id);
        self.stats.name_type(msg_id, &def.name);
        self.slot_of_id[msg_id as usize] = self.metas.len() as u8;
        self.metas.push(Meta {
            name: Arc::from(def.name.as_str()),
            def,
        });
        Ok(MetaId(msg_id))
    }

    /// Sets the community id (`isolate_community`: use [`CommunityId::isolated`]).
    pub fn set_community(&mut self, id: CommunityId) {
        self.community = Some(id);
        self.attach_store();
    }

    /// Keeps the store's messages by directory authors in the directory's
    /// shared table, once both the directory and the community are known.
    fn attach_store(&mut self) {
        if let (Some(c), Some(d)) = (self.community, self.peers.directory()) {
            self.store.attach(d.messages().community(&c));
        }
    }

    /// Sets the address advertised to peers (e.g. after binding the socket).
    pub fn set_local_addr(&mut self, addr: SocketAddr) {
        self.cfg.local_addr = addr;
        self.my_wan = addr;
    }

    /// Sets the walker (Gumby's `walk` settings): step interval and target peer count.
    pub fn set_walker(&mut self, interval: Duration, target_peers: usize) {
        self.cfg.walk_interval = interval;
        self.cfg.target_peers = target_peers;
    }

    /// Sets the catch-up sync interval.
    pub fn set_sync_interval(&mut self, interval: Duration) {
        self.cfg.sync_interval = interval;
    }

    /// Replaces the bootstrap (tracker) addresses.
    pub fn set_bootstrap(&mut self, addrs: Vec<SocketAddr>) {
        self.cfg.bootstrap = addrs;
    }

    /// Starts walking and syncing (`start_session`).
    pub fn start(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        self.next_walk = Some(now);
        // A session started again (a member back after `stop`) may have
        // missed anything while it was stopped: it syncs at the base rate
        // until a round is quiet again, as a fresh member does.
        self.reset_sync_backoff();
        let jitter = self.jitter(self.cfg.sync_interval);
        self.next_sync = Some(now + jitter);
    }

    /// Stops walking and syncing and ignores incoming packets (`stop_session`).
    pub fn stop(&mut self) {
        self.started = false;
        self.next_walk = None;
        self.next_sync = None;
    }

    /// Forgets every stored FullSync message (a member that comes back with
    /// an empty store, as after a fresh install): it catches up from its
    /// peers again, asking at the base sync rate until its first message
    /// arrives when it held any (requests that go to peers away or as empty
    /// as it is do not make it back off). Key, community, definitions,
    /// peers and global time stay (so its new messages never reuse an old
    /// global time).
    pub fn clear_store(&mut self) {
        self.catching_up |= !self.store.is_empty();
        self.store = Store::default();
        self.attach_store();
        self.author_counts = AuthorCounts::default();
        self.reset_sync_backoff();
    }

    /// Catch-up sync back at the base rate, as a fresh member starts.
    fn reset_sync_backoff(&mut self) {
        self.sync_backoff = 1;
        self.sync_quiet = 0;
    }

    /// Zeroes the counters (`reset_dispersy_statistics`).
    pub fn reset_statistics(&mut self) {
        self.stats.reset();
    }

    /// Adds a peer directly (one row of `introduce_peers`). A key lets the core
    /// verify the peer's messages without decompressing its key again.
    pub fn add_peer(
        &mut self,
        addr: SocketAddr,
        public_key: Option<PublicKey>,
        instance_id: Option<u32>,
    ) -> Result<(), CommandError> {
        if public_key.as_ref() == Some(self.keypair.public()) || addr == self.cfg.local_addr {
            return Ok(());
        }
        let key = match public_key {
            Some(k) => Some(self.intern_key(&k).map_err(|_| CommandError::Unsupported {
                name: format!("peer {addr}"),
                why: "its public key is not a valid ed25519 key",
            })?),
            None => None,
        };
        self.peers.add(addr, key, instance_id, None);
        self.stats.peers = self.peers.known_count() as u64;
        Ok(())
    }

    /// Uses `dir` to recognise authors (their instance ids, and for
    /// [`Config::drop_unknown_authors`] who may write at all) without
    /// knowing any of its peers yet; `introduce_from_directory` does both.
    pub fn set_directory(&mut self, dir: Arc<PeerDirectory>) {
        if !self.peers.directory().is_some_and(|d| Arc::ptr_eq(d, &dir)) {
            // Counts by row mean nothing in another directory.
            self.author_counts.clear_rows();
        }
        self.peers.set_directory(dir);
        self.attach_store();
        self.stats.peers = self.peers.known_count() as u64;
    }

    /// `introduce_peers`: knows the directory's peers (all but itself, or a
    /// random `max_peers` of them). The directory is shared, not copied.
    pub fn introduce_from_directory(&mut self, dir: Arc<PeerDirectory>, max_peers: Option<usize>) {
        let me = dir.index_of_key(self.keypair.public().ed25519_bytes());
        let n = dir.len();
        // Rows with instance id 0 are not instances (the run's tracker):
        // the walker meets them, introduce_peers does not.
        // Asked per row, never built per member: a table of every row for
        // each of 100,000 members is O(n²) at the start of a run.
        let entries = Arc::clone(&dir);
        let wanted = |i: usize| Some(i as u32) != me && entries.entries()[i].instance_id != 0;
        let me_counted = me.is_some_and(|m| dir.entries()[m as usize].instance_id != 0);
        let others = dir.instance_rows() - usize::from(me_counted);
        self.set_directory(dir);
        match max_peers {
            Some(k) if k < others => {
                // A few of many (50 of 100,000): draw rows until k new ones,
                // a bounded number of times, instead of shuffling every row
                // for every member (O(n) each, O(n²) for a run).
                let mut chosen = 0;
                let mut draws = 4 * k + 64;
                while chosen < k && draws > 0 && k * 2 <= others {
                    draws -= 1;
                    let i = self.rng.random_range(0..n as u32);
                    if wanted(i as usize) && self.peers.know_directory_row(i) {
                        chosen += 1;
                    }
                }
                if chosen < k {
                    for i in rand::seq::index::sample(&mut self.rng, n, n) {
                        if chosen == k {
                            break;
                        }
                        if wanted(i) && self.peers.know_directory_row(i as u32) {
                            chosen += 1;
                        }
                    }
                }
            }
            _ => {
                for i in 0..n as u32 {
                    if wanted(i as usize) {
                        self.peers.know_directory_row(i);
                    }
                }
            }
        }
        self.stats.peers = self.peers.known_count() as u64;
    }

    /// Sends a message of meta-message `meta`. For `Destination::Community(n)`
    /// `to` must be empty (n random known peers are chosen); for
    /// `Destination::Candidate` it names the receivers. A FullSync message is
    /// stored (and offered to sync) even when no peer is known yet.
    pub fn send(
        &mut self,
        meta: MetaId,
        payload: &[u8],
        to: &[SocketAddr],
    ) -> Result<SendReport, CommandError> {
        let community = self.community.ok_or(CommandError::NoCommunity)?;
        let slot = self
            .slot(meta.0)
            .ok_or_else(|| CommandError::UnknownMessage(format!("id {}", meta.0)))?;
        let def = &self.metas[slot].def;
        let signed = def.authentication == Authentication::Member;
        let overhead = if signed {
            wire::SIGNED_OVERHEAD
        } else {
            wire::UNSIGNED_OVERHEAD
        };
        let size = overhead + payload.len();
        if size > self.cfg.max_datagram {
            return Err(CommandError::Oversize {
                meta: def.name.clone(),
                payload: payload.len(),
                size,
                max: self.cfg.max_datagram,
            });
        }
        let (distribution, destination) = (def.distribution, def.destination);
        match destination {
            Destination::Candidate if to.is_empty() && distribution == Distribution::Direct => {
                return Err(CommandError::NoDestination {
                    meta: def.name.clone(),
                    why: "a Candidate destination needs at least one address",
                });
            }
            Destination::Community(_) if !to.is_empty() => {
                return Err(CommandError::NoDestination {
                    meta: def.name.clone(),
                    why: "a Community destination picks its own peers: pass no addresses",
                });
            }
            _ => {}
        }
        self.global_time = self
            .global_time
            .checked_add(1)
            .ok_or(CommandError::ClockExhausted)?;
        let gt = self.global_time;
        let start = self.arena.len();
        self.arena.resize(start + size, 0);
        let buf = &mut self.arena[start..];
        let n = if signed {
            wire::encode_signed(buf, &community, meta.0, &self.keypair, gt, |w| {
                w.put(payload)
            })
        } else {
            wire::encode_unsigned(buf, &community, meta.0, gt, |w| w.put(payload))
        }
        .expect("buffer sized from the overhead");
        debug_assert_eq!(n, size);
        // Named receivers are used as given (no copy per send).
        let chosen;
        let targets: &[SocketAddr] = match destination {
            Destination::Candidate => to,
            Destination::Community(k) => {
                chosen = self.random_peers(k, &[]);
                &chosen
            }
        };
        let bytes = if distribution == Distribution::FullSync {
            let packet: Arc<[u8]> = Arc::from(&self.arena[start..start + n]);
            self.arena.truncate(start);
            self.store.insert(
                self.keypair.public().ed25519_bytes(),
                gt,
                Stored {
                    msg_id: meta.0,
                    packet: packet.clone(),
                },
            );
            Some(packet)
        } else {
            None
        };
        for dest in targets {
            let bytes = match &bytes {
                Some(p) => OutBytes::Shared(p.clone()),
                None => OutBytes::Arena {
                    start: start as u32,
                    len: n as u32,
                },
            };
            self.out.push_back(Out {
                dest: *dest,
                msg_id: meta.0,
                bytes,
            });
        }
        if bytes.is_none() && targets.is_empty() {
            self.arena.truncate(start);
        }
        Ok(SendReport {
            global_time: gt,
            datagrams: targets.len(),
        })
    }

    /// Sends `payload` to the directory peer with instance id `instance_id`
    /// (a `Candidate` meta-message).
    pub fn send_to_instance(
        &mut self,
        meta: MetaId,
        payload: &[u8],
        instance_id: u32,
    ) -> Result<SendReport, CommandError> {
        let addr = self
            .instance_addr(instance_id)
            .ok_or(CommandError::NoDestination {
                meta: format!("id {}", meta.0),
                why: "no peer with that instance id in the directory",
            })?;
        self.send(meta, payload, &[addr])
    }

    // ---- (B) inputs ----

    /// Handles one incoming datagram.
    pub fn handle(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if !self.started {
            return;
        }
        // The single-packet path allocates nothing but what it delivers or stores.
        match self.precheck(now, from, data) {
            Ok(Some(p)) => {
                if p.preverified || verify_packet(&p.verifying, data) {
                    self.accept(now, p, data);
                } else {
                    self.stats.count_drop(DropReason::BadSignature);
                }
            }
            Ok(None) => {}
            Err(reason) => self.stats.count_drop(reason),
        }
    }

    /// Handles several incoming datagrams at once; the signatures of the signed
    /// application messages among them are checked with one batch verification
    /// (falling back to single checks to find the bad ones when the batch fails).
    /// Discovery and unsigned messages are handled as they come; the signed
    /// application messages follow, in arrival order, after the batch check.
    pub fn handle_batch<'a>(
        &mut self,
        now: Instant,
        datagrams: impl IntoIterator<Item = (SocketAddr, &'a [u8])>,
    ) {
        if !self.started {
            return;
        }
        VERIFY.with_borrow_mut(|v| {
            v.pending.clear();
            let mut data: Vec<&'a [u8]> = Vec::new();
            for (from, d) in datagrams {
                match self.precheck(now, from, d) {
                    Ok(Some(p)) => {
                        v.pending.push(p);
                        data.push(d);
                    }
                    Ok(None) => {}
                    Err(reason) => self.stats.count_drop(reason),
                }
            }
            if data.is_empty() {
                return;
            }
            // Verify what the pool did not vouch for.
            v.ok.clear();
            v.ok.resize(data.len(), true);
            v.need.clear();
            v.need
                .extend((0..data.len()).filter(|&i| !v.pending[i].preverified));
            if v.need.len() > 1 {
                v.sigs.clear();
                v.keys.clear();
                let mut msgs: Vec<&[u8]> = Vec::with_capacity(v.need.len());
                for &i in &v.need {
                    let split = data[i].len() - crypto::SIGNATURE_LEN;
                    let sig: &[u8; 64] = data[i][split..].try_into().expect("checked in precheck");
                    msgs.push(&data[i][..split]);
                    v.sigs.push(Signature::from_bytes(sig));
                    v.keys.push(v.pending[i].verifying);
                }
                if ed25519_dalek::verify_batch(&msgs, &v.sigs, &v.keys).is_err() {
                    for &i in &v.need {
                        v.ok[i] = verify_packet(&v.pending[i].verifying, data[i]);
                    }
                }
            } else {
                for &i in &v.need {
                    v.ok[i] = verify_packet(&v.pending[i].verifying, data[i]);
                }
            }
            for (i, p) in v.pending.drain(..).enumerate() {
                if v.ok[i] {
                    self.accept(now, p, data[i]);
                } else {
                    self.stats.count_drop(DropReason::BadSignature);
                }
            }
        });
    }

    /// Fires the timers that are due (walker step, sync request).
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.started {
            return;
        }
        if self.next_walk.is_some_and(|t| t <= now) {
            self.walk_step(now);
            self.next_walk = Some(now + self.cfg.walk_interval);
        }
        if self.next_sync.is_some_and(|t| t <= now) {
            self.sync_step();
            // Nothing new in either direction for a whole round (every
            // window and class of the store asked about once): ask less
            // often, up to SYNC_BACKOFF_MAX times the interval; news resets
            // it. Backing off after any quiet request would stall a large
            // store, where one request covers a sixteenth of it or less.
            // A member catching up after `clear_store` does not back off.
            let interval = self.cfg.sync_interval * self.sync_backoff;
            self.sync_quiet = self.sync_quiet.saturating_add(1);
            if self.sync_quiet >= self.sync_round && !self.catching_up {
                self.sync_backoff = (self.sync_backoff * 2).min(SYNC_BACKOFF_MAX);
            }
            let next = self.around(interval);
            self.next_sync = Some(now + next);
        }
    }

    // ---- (D) outputs ----

    /// The next datagram to send, written into `buf` (give it at least
    /// `max_datagram` bytes). Call until `None`.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        loop {
            let Some(out) = self.out.pop_front() else {
                self.arena.clear();
                // An idle overlay keeps little: a burst's queue capacity is returned.
                if self.arena.capacity() > IDLE_CAPACITY_BYTES {
                    self.arena.shrink_to(IDLE_CAPACITY_BYTES);
                }
                if self.out.capacity() > IDLE_CAPACITY_ITEMS {
                    self.out.shrink_to(IDLE_CAPACITY_ITEMS);
                }
                return None;
            };
            let bytes: &[u8] = match &out.bytes {
                OutBytes::Arena { start, len } => {
                    &self.arena[*start as usize..(*start + *len) as usize]
                }
                OutBytes::Shared(p) => p,
            };
            if bytes.len() > buf.len() {
                // A too-small buffer is the driver's bug; never truncate a packet.
                self.stats.count_drop(DropReason::Oversize);
                continue;
            }
            let size = bytes.len();
            buf[..size].copy_from_slice(bytes);
            self.stats.count_out(out.msg_id, size);
            if self.out.is_empty() {
                self.arena.clear();
            }
            return Some(Transmit {
                destination: out.dest,
                size,
                msg_id: out.msg_id,
            });
        }
    }

    /// Datagrams waiting in the queue.
    pub fn pending_transmits(&self) -> usize {
        self.out.len()
    }

    /// The next deadline at which `handle_timeout` must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_walk, self.next_sync) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<OverlayEvent> {
        let e = self.events.pop_front();
        if e.is_none() && self.events.capacity() > IDLE_CAPACITY_ITEMS {
            self.events.shrink_to(IDLE_CAPACITY_ITEMS);
        }
        e
    }

    // ---- internals ----

    /// Uniform in [d/2, 3d/2): `d` on average, without lockstep.
    fn around(&mut self, d: Duration) -> Duration {
        let ns = d.as_nanos().clamp(2, u128::from(u64::MAX / 2)) as u64;
        Duration::from_nanos(ns / 2 + self.rng.random_range(0..ns))
    }

    fn jitter(&mut self, d: Duration) -> Duration {
        // Uniform in [d/2, d): timers of many peers do not fire in lockstep.
        let ns = d.as_nanos().max(2) as u64;
        Duration::from_nanos(ns / 2 + self.rng.random_range(0..ns / 2))
    }

    fn random_peers(&mut self, n: usize, exclude: &[SocketAddr]) -> Vec<SocketAddr> {
        let known = self.peers.known();
        let len = known.len();
        let mut outv = Vec::with_capacity(n.min(len));
        if n >= len {
            for r in known {
                let a = self.peers.info(*r).addr;
                if !exclude.contains(&a) {
                    outv.push(a);
                }
            }
            return outv;
        }
        for i in rand::seq::index::sample(&mut self.rng, len, (n + exclude.len()).min(len)) {
            let a = self.peers.info(known[i]).addr;
            if !exclude.contains(&a) && outv.len() < n {
                outv.push(a);
            }
        }
        outv
    }

    fn intern_key(&mut self, k: &PublicKey) -> Result<Arc<PeerKey>, DecodeError> {
        if let Some(a) = self.key_cache.get(k.ed25519_bytes())
            && a.public_key == *k
        {
            return Ok(a.clone());
        }
        let a = Arc::new(PeerKey::new(*k)?);
        if self.key_cache.len() >= KEY_CACHE_MAX {
            self.key_cache.clear();
        }
        self.key_cache.insert(*k.ed25519_bytes(), a.clone());
        Ok(a)
    }

    /// The effective per-author store limit.
    fn author_limit(&self) -> usize {
        self.cfg
            .max_messages_per_author
            .min(MAX_MESSAGES_PER_AUTHOR)
    }

    /// The directory row of author `k`.
    fn directory_row(&self, k: &PublicKey) -> Option<u32> {
        self.peers.directory()?.index_of_key(k.ed25519_bytes())
    }

    /// Whether a verified discovery packet signed by `author` may come from
    /// `from`: a directory peer's key only from its directory address (the
    /// packets carry no freshness, so another address means a replay), and
    /// with [`Config::drop_unknown_authors`] only directory keys at all.
    fn check_discovery_source(
        &self,
        from: SocketAddr,
        author: &PublicKey,
    ) -> Result<(), DropReason> {
        let row = self.peers.directory().and_then(|d| {
            let i = d.index_of_key(author.ed25519_bytes())?;
            Some(d.entries()[i as usize].addr)
        });
        match row {
            Some(addr) if addr != from && self.cfg.check_directory_address => {
                Err(DropReason::WrongAddress)
            }
            Some(_) => Ok(()),
            None if self.cfg.drop_unknown_authors => Err(DropReason::UnknownAuthor),
            None => Ok(()),
        }
    }

    /// The verification key of `k`, from the directory, the sender's entry or the cache.
    /// `row` is `k`'s directory row ([`Self::directory_row`]), looked up once by the caller.
    fn resolve_key(
        &mut self,
        sender: Option<PeerRef>,
        k: &PublicKey,
        row: Option<u32>,
    ) -> Result<(VerifyingKey, Option<u32>), DecodeError> {
        if let Some(e) = row.and_then(|r| self.peers.directory()?.entries().get(r as usize))
            && e.key.public_key == *k
        {
            return Ok((e.key.verifying, Some(e.instance_id)));
        }
        if let Some(r) = sender {
            let info = self.peers.info(r);
            if let Some(pk) = info.key
                && pk.public_key == *k
            {
                return Ok((pk.verifying, info.instance_id));
            }
        }
        Ok((self.intern_key(k)?.verifying, None))
    }

    /// Everything up to the signature check. `Ok(None)`: handled (discovery)
    /// or silently ignored; `Ok(Some)`: a signed application message to verify.
    fn precheck(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<Option<Pending>, DropReason> {
        if data.len() > self.cfg.max_datagram {
            return Err(DropReason::Oversize);
        }
        let (header, _) = wire::split_header(data).map_err(|_| DropReason::Malformed)?;
        if Some(header.community) != self.community.as_ref().map(|c| &c.0) {
            return Err(DropReason::ForeignCommunity);
        }
        if header.msg_id >= id::FIRST_RESERVED {
            self.handle_discovery(now, from, data)?;
            return Ok(None);
        }
        let slot = self.slot(header.msg_id).ok_or(DropReason::UnknownMessage)?;
        let meta = &self.metas[slot];
        if meta.def.authentication == Authentication::None {
            let f = wire::decode_unsigned(data).map_err(|_| DropReason::Malformed)?;
            let sender = self.peers.lookup(&from);
            let d = Delivered {
                meta: MetaId(header.msg_id),
                name: meta.name.clone(),
                from,
                from_instance: sender.and_then(|r| self.peers.info(r).instance_id),
                author: None,
                author_instance: None,
                global_time: f.global_time,
                payload: f.payload.to_vec(),
            };
            if let Some(r) = sender {
                self.peers.touch(r, now);
            }
            self.stats.count_in(header.msg_id, data.len());
            self.events.push_back(OverlayEvent::Message(d));
            return Ok(None);
        }
        let full_sync = meta.def.distribution == Distribution::FullSync;
        let f = wire::decode_signed(data).map_err(|_| DropReason::Malformed)?;
        let author = PublicKey::from_bin(f.public_key).map_err(|_| DropReason::Malformed)?;
        let own = author == *self.keypair.public();
        let author_row = self.directory_row(&author);
        if author_row.is_none() && self.cfg.drop_unknown_authors && !own {
            return Err(DropReason::UnknownAuthor);
        }
        if full_sync {
            if f.global_time
                > self
                    .global_time
                    .saturating_add(self.cfg.acceptable_global_time_range)
            {
                return Err(DropReason::FutureGlobalTime);
            }
            if self.store.contains(author.ed25519_bytes(), f.global_time) {
                return Err(DropReason::Duplicate);
            }
            if !own
                && self.author_counts.get(author_row, author.ed25519_bytes()) >= self.author_limit()
            {
                return Err(DropReason::AuthorLimit);
            }
        } else if own {
            // Our own direct message reflected back to us.
            return Err(DropReason::Duplicate);
        }
        let mut pooled = None;
        let mut preverified = false;
        let mut digest = None;
        if full_sync && let Some(pool) = &self.cfg.pool {
            // In a process of many overlays the same bytes arrive at each:
            // the shared table answers for all but the first receipt.
            if let Some(shared) =
                self.store
                    .shared_copy(author.ed25519_bytes(), f.global_time, data)
            {
                pooled = Some(shared);
                preverified = pool.trusts_hits();
            } else {
                let d = SharedPool::digest(data);
                pooled = pool.get(&d);
                preverified = pooled.is_some() && pool.trusts_hits();
                digest = Some(d);
            }
        }
        let sender = self.peers.lookup(&from);
        let (verifying, author_instance) = self
            .resolve_key(sender, &author, author_row)
            .map_err(|_| DropReason::Malformed)?;
        Ok(Some(Pending {
            slot,
            from,
            author,
            verifying,
            author_instance,
            author_row,
            global_time: f.global_time,
            pooled,
            preverified,
            digest,
        }))
    }

    /// A verified signed application message.
    fn accept(&mut self, now: Instant, p: Pending, data: &[u8]) {
        let meta = &self.metas[p.slot];
        let msg_id = meta.def.id.expect("defined metas have ids");
        let name = meta.name.clone();
        let (distribution, destination, forward) = (
            meta.def.distribution,
            meta.def.destination,
            meta.def.forward,
        );
        if distribution == Distribution::FullSync {
            let own = p.author == *self.keypair.public();
            let author = p.author.ed25519_bytes();
            if !own && self.author_counts.get(p.author_row, author) >= self.author_limit() {
                // The author reached the limit earlier in this batch.
                self.stats.count_drop(DropReason::AuthorLimit);
                return;
            }
            let packet = match (p.pooled, p.digest, &self.cfg.pool) {
                (Some(a), _, _) => a,
                (None, Some(d), Some(pool)) => pool.insert(d, data),
                _ => Arc::from(data),
            };
            if !self.store.insert(
                p.author.ed25519_bytes(),
                p.global_time,
                Stored {
                    msg_id,
                    packet: packet.clone(),
                },
            ) {
                // The same message twice in one batch.
                self.stats.count_drop(DropReason::Duplicate);
                return;
            }
            if !own {
                let rows = self.peers.directory().map_or(0, |d| d.len());
                self.author_counts.add(p.author_row, author, rows);
            }
            self.global_time = self.global_time.max(p.global_time);
            self.catching_up = false;
            self.note_news(now);
            if forward && let Destination::Community(n) = destination {
                let author_addr = self.peers.directory().and_then(|d| {
                    let i = d.index_of_key(p.author.ed25519_bytes())?;
                    Some(d.entries()[i as usize].addr)
                });
                let mut exclude = vec![p.from];
                exclude.extend(author_addr);
                for dest in self.random_peers(n, &exclude) {
                    self.out.push_back(Out {
                        dest,
                        msg_id,
                        bytes: OutBytes::Shared(packet.clone()),
                    });
                }
            }
        }
        let sender = self.peers.lookup(&p.from);
        if let Some(r) = sender {
            self.peers.touch(r, now);
        }
        let payload_start = wire::HEADER_LEN + 2 + crypto::PUBLIC_KEY_LEN + 8;
        let payload = data[payload_start..data.len() - crypto::SIGNATURE_LEN].to_vec();
        self.stats.count_in(msg_id, data.len());
        self.events.push_back(OverlayEvent::Message(Delivered {
            meta: MetaId(msg_id),
            name,
            from: p.from,
            from_instance: sender.and_then(|r| self.peers.info(r).instance_id),
            author: Some(p.author),
            author_instance: p.author_instance,
            global_time: p.global_time,
            payload,
        }));
    }

    /// Decodes and verifies a signed discovery packet, returning the frame's
    /// author key and the decoded message.
    fn verified_discovery<'d>(
        &mut self,
        from: SocketAddr,
        data: &'d [u8],
    ) -> Result<(Decoded<'d>, Option<PublicKey>), DropReason> {
        let decoded = wire::decode(data).map_err(|_| DropReason::Malformed)?;
        let frame = match &decoded {
            Decoded::IntroductionRequest(f, _)
            | Decoded::IntroductionResponse(f, _)
            | Decoded::Puncture(f, _) => *f,
            _ => return Ok((decoded, None)),
        };
        let author = PublicKey::from_bin(frame.public_key).map_err(|_| DropReason::Malformed)?;
        let sender = self.peers.lookup(&from);
        let row = self.directory_row(&author);
        let (vk, _) = self
            .resolve_key(sender, &author, row)
            .map_err(|_| DropReason::Malformed)?;
        if !crypto::verify(&vk, frame.signed, frame.signature) {
            return Err(DropReason::BadSignature);
        }
        Ok((decoded, Some(author)))
    }

    fn handle_discovery(
        &mut self,
        now: Instant,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), DropReason> {
        let (decoded, author) = self.verified_discovery(from, data)?;
        if author.as_ref() == Some(self.keypair.public()) {
            return Ok(()); // Our own packet (we walked to ourselves).
        }
        if let Some(a) = &author {
            self.check_discovery_source(from, a)?;
        }
        let msg_id = data[wire::HEADER_LEN - 1];
        match decoded {
            Decoded::IntroductionRequest(_, req) => {
                self.stats.count_in(msg_id, data.len());
                let style = if msg_id == id::NEW_INTRODUCTION_REQUEST {
                    Style::New
                } else {
                    Style::Old
                };
                self.on_introduction_request(now, from, author, &req, style);
            }
            Decoded::IntroductionResponse(_, resp) => {
                let Some(i) = self.outstanding.iter().position(|&x| x == resp.identifier) else {
                    return Err(DropReason::Unsolicited);
                };
                self.outstanding.remove(i);
                self.stats.count_in(msg_id, data.len());
                self.on_introduction_response(now, from, author, &resp);
            }
            Decoded::PunctureRequest(_, req) => {
                self.stats.count_in(msg_id, data.len());
                let style = if msg_id == id::NEW_PUNCTURE_REQUEST {
                    Style::New
                } else {
                    Style::Old
                };
                let target = if req.wan.ip() == self.my_wan.ip() {
                    req.lan
                } else {
                    req.wan
                };
                let p = Puncture {
                    lan: self.cfg.local_addr,
                    wan: self.my_wan,
                    identifier: req.identifier,
                };
                let pid = if style == Style::New {
                    id::NEW_PUNCTURE
                } else {
                    id::PUNCTURE
                };
                self.queue_signed(target, pid, |w| p.encode(w, style));
            }
            Decoded::Puncture(..) => {
                self.stats.count_in(msg_id, data.len());
            }
            Decoded::SyncRequest(f, req) => {
                self.stats.count_in(msg_id, data.len());
                let known = self.peers.lookup(&from).filter(|r| self.peers.is_known(*r));
                if let Some(r) = known {
                    self.peers.touch(r, now);
                }
                // A peer's clock tells ours where the community is (Dispersy's
                // global-time sync), so a late joiner catches up and accepts
                // current messages; but one unsigned request moves it at most by
                // the acceptance window, so nobody can push it to the end.
                let window = self
                    .global_time
                    .saturating_add(self.cfg.acceptable_global_time_range);
                self.global_time = self.global_time.max(f.global_time.min(window));
                self.answer_sync(now, from, &req);
            }
            Decoded::Application(..) => return Err(DropReason::UnknownMessage),
        }
        Ok(())
    }

    fn queue_signed(
        &mut self,
        dest: SocketAddr,
        msg_id: u8,
        payload: impl FnOnce(&mut wire::Writer<'_>) -> Result<(), crate::error::EncodeError>,
    ) {
        let Some(community) = self.community else {
            return;
        };
        let start = self.arena.len();
        self.arena.resize(start + self.cfg.max_datagram, 0);
        let gt = self.global_time % 65536;
        match wire::encode_signed(
            &mut self.arena[start..],
            &community,
            msg_id,
            &self.keypair,
            gt,
            payload,
        ) {
            Ok(n) => {
                self.arena.truncate(start + n);
                self.out.push_back(Out {
                    dest,
                    msg_id,
                    bytes: OutBytes::Arena {
                        start: start as u32,
                        len: n as u32,
                    },
                });
            }
            Err(_) => self.arena.truncate(start),
        }
    }

    fn queue_unsigned(
        &mut self,
        dest: SocketAddr,
        msg_id: u8,
        global_time: u64,
        payload: impl FnOnce(&mut wire::Writer<'_>) -> Result<(), crate::error::EncodeError>,
    ) {
        let Some(community) = self.community else {
            return;
        };
        let start = self.arena.len();
        self.arena.resize(start + self.cfg.max_datagram, 0);
        match wire::encode_unsigned(
            &mut self.arena[start..],
            &community,
            msg_id,
            global_time,
            payload,
        ) {
            Ok(n) => {
                self.arena.truncate(start + n);
                self.out.push_back(Out {
                    dest,
                    msg_id,
                    bytes: OutBytes::Arena {
                        start: start as u32,
                        len: n as u32,
                    },
                });
            }
            Err(_) => self.arena.truncate(start),
        }
    }

    fn discovered(&mut self, addr: SocketAddr, key: Option<PublicKey>, now: Instant) {
        let known = self
            .peers
            .lookup(&addr)
            .is_some_and(|r| self.peers.is_known(r));
        if !known && self.peers.known_count() >= self.cfg.max_peers {
            // Full: a discovery packet (perhaps replayed from anywhere)
            // does not grow the table; the walker looks elsewhere.
            return;
        }
        let arc = key.as_ref().and_then(|k| self.intern_key(k).ok());
        let (r, new) = self.peers.add(addr, arc, None, Some(now));
        self.walkable.retain(|(a, _)| *a != addr);
        if new {
            let instance_id = self.peers.info(r).instance_id;
            self.events.push_back(OverlayEvent::PeerDiscovered {
                addr,
                public_key: key,
                instance_id,
            });
        }
        self.stats.peers = self.peers.known_count() as u64;
    }

    fn on_introduction_request(
        &mut self,
        now: Instant,
        from: SocketAddr,
        author: Option<PublicKey>,
        req: &IntroductionRequest<'_>,
        style: Style,
    ) {
        let known = self
            .peers
            .lookup(&from)
            .is_some_and(|r| self.peers.is_known(r));
        let at_limit = self.peers.known_count() >= self.cfg.max_peers;
        if !known && at_limit {
            return; // As py-ipv8: a full peer does not answer, so the walker looks elsewhere.
        }
        self.discovered(from, author, now);
        // Introduce a random other peer.
        let intro = self
            .random_peers(1, &[from])
            .into_iter()
            .find(|a| style == Style::New || a.is_ipv4());
        let (lan_i, wan_i) = match intro {
            Some(a) => (a, a),
            None => (wire::NO_ADDRESS, wire::NO_ADDRESS),
        };
        let resp_style = if style == Style::New || !from.is_ipv4() {
            Style::New
        } else {
            Style::Old
        };
        let flags = match resp_style {
            Style::Old if self.peers.known_count() >= self.cfg.max_peers => {
                wire::flags::RESP_PEER_LIMIT_REACHED
            }
            _ => 0,
        };
        let lan = self.cfg.local_addr;
        let wan = self.my_wan;
        let resp = IntroductionResponse {
            destination: from,
            source_lan: lan,
            source_wan: wan,
            lan_introduction: lan_i,
            wan_introduction: wan_i,
            flags,
            identifier: req.identifier,
            extra: b"",
        };
        let resp_id = if resp_style == Style::New {
            id::NEW_INTRODUCTION_RESPONSE
        } else {
            id::INTRODUCTION_RESPONSE
        };
        self.queue_signed(from, resp_id, |w| resp.encode(w, resp_style));
        if let Some(target) = intro {
            let pr = Puncture {
                lan: req.source_lan,
                wan: from,
                identifier: req.identifier,
            };
            let (pid, pstyle) = if resp_style == Style::New || !req.source_lan.is_ipv4() {
                (id::NEW_PUNCTURE_REQUEST, Style::New)
            } else {
                (id::PUNCTURE_REQUEST, Style::Old)
            };
            let gt = self.global_time;
            self.queue_unsigned(target, pid, gt, |w| pr.encode(w, pstyle));
        }
    }

    fn on_introduction_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        author: Option<PublicKey>,
        resp: &IntroductionResponse<'_>,
    ) {
        if resp.destination != wire::NO_ADDRESS {
            self.my_wan = resp.destination;
        }
        // A bootstrap address (a tracker) introduces peers but is not one,
        // as py-ipv8 blacklists its bootstrap servers.
        if !self.cfg.bootstrap.contains(&from) {
            self.discovered(from, author, now);
        }
        let intro = if resp.wan_introduction != wire::NO_ADDRESS {
            resp.wan_introduction
        } else {
            resp.lan_introduction
        };
        if intro == wire::NO_ADDRESS
            || intro == self.cfg.local_addr
            || intro == self.my_wan
            || self
                .peers
                .lookup(&intro)
                .is_some_and(|r| self.peers.is_known(r))
            || self.walkable.iter().any(|(a, _)| *a == intro)
        {
            return;
        }
        if self.walkable.len() >= WALKABLE_MAX {
            self.walkable.remove(0);
        }
        self.walkable.push((intro, now));
    }

    fn walk_step(&mut self, now: Instant) {
        let stale = self.cfg.walk_interval * 20;
        self.walkable
            .retain(|(_, t)| now.saturating_duration_since(*t) < stale);
        if let Some(timeout) = self.cfg.peer_timeout
            && let Some(cutoff) = now.checked_sub(timeout)
            && self.peers.expire(cutoff) > 0
        {
            self.stats.peers = self.peers.known_count() as u64;
        }
        if self.peers.known_count() >= self.cfg.target_peers {
            return;
        }
        let target = if !self.walkable.is_empty() {
            let i = self.rng.random_range(0..self.walkable.len());
            Some(self.walkable.swap_remove(i).0)
        } else if self.peers.known_count() > 0 {
            self.random_peers(1, &[]).into_iter().next()
        } else if !self.cfg.bootstrap.is_empty() {
            let i = self.rng.random_range(0..self.cfg.bootstrap.len());
            Some(self.cfg.bootstrap[i])
        } else {
            None
        };
        if let Some(dest) = target {
            self.send_introduction_request(dest);
        }
    }

    /// Queues an introduction request to `dest` (the walker does this by itself).
    pub fn send_introduction_request(&mut self, dest: SocketAddr) {
        let style = if dest.is_ipv4() && self.cfg.local_addr.is_ipv4() {
            Style::Old
        } else {
            Style::New
        };
        let req = IntroductionRequest {
            destination: dest,
            source_lan: self.cfg.local_addr,
            source_wan: self.my_wan,
            flags: wire::flags::REQ_ADVICE,
            identifier: self.rng.random(),
            extra: b"",
        };
        if self.outstanding.len() >= OUTSTANDING_INTRODUCTIONS {
            self.outstanding.pop_front();
        }
        self.outstanding.push_back(req.identifier);
        let msg_id = if style == Style::New {
            id::NEW_INTRODUCTION_REQUEST
        } else {
            id::INTRODUCTION_REQUEST
        };
        self.queue_signed(dest, msg_id, |w| req.encode(w, style));
    }

    /// News: a new FullSync message arrived, or a peer lacked one of ours.
    /// Sync at the base rate again, and soon if the next request was backed
    /// off far.
    fn note_news(&mut self, now: Instant) {
        self.sync_quiet = 0;
        if self.sync_backoff > 1 {
            self.sync_backoff = 1;
            if let Some(t) = self.next_sync {
                let soon = now + self.cfg.sync_interval;
                if t > soon {
                    self.next_sync = Some(soon);
                }
            }
        }
    }

    fn sync_step(&mut self) {
        let Some(dest) = self.random_peers(1, &[]).into_iter().next() else {
            return;
        };
        let max_bloom = self
            .cfg
            .max_datagram
            .saturating_sub(wire::UNSIGNED_OVERHEAD + SyncRequest::FIXED_LEN);
        // About 10 bits per message at the largest filter.
        let cap = (max_bloom * 8 / 10).max(1);
        let (low, high, in_window) = if self.store.len() <= cap {
            (0, u64::MAX, self.store.len())
        } else {
            let (lo, hi) = self.store.time_bounds().unwrap_or((0, 0));
            let from = self.rng.random_range(lo..=hi);
            self.store.window(from, cap)
        };
        // A window cannot split one global time: when more messages share
        // it than a filter holds, the request covers one class of authors.
        let modulo = in_window
            .div_ceil(cap)
            .next_power_of_two()
            .clamp(1, MAX_SYNC_MODULO) as u16;
        // Round robin (2^16 is a multiple of every modulo, so wrapping
        // keeps the order).
        let offset = self.sync_class % modulo;
        self.sync_class = self.sync_class.wrapping_add(1);
        self.sync_round = u32::try_from(self.store.len().div_ceil(cap))
            .unwrap_or(u32::MAX)
            .max(u32::from(modulo))
            .max(1);
        // One pass over the class: the filter's size depends on how many
        // keys go in, and reading each key touches its packet.
        BLOOM_KEYS.with_borrow_mut(|keys| {
            keys.clear();
            self.store
                .visit_class(low, high, (modulo, offset), None, |m| {
                    keys.push(m.bloom_key);
                    ControlFlow::Continue(())
                });
            self.queue_sync_request(dest, (low, high), (modulo, offset), keys, max_bloom);
        });
    }

    fn queue_sync_request(
        &mut self,
        dest: SocketAddr,
        (low, high): (u64, u64),
        (modulo, offset): (u16, u16),
        keys: &[[u8; 16]],
        max_bloom: usize,
    ) {
        let (bytes, k) = bloom::dimensions(keys.len(), max_bloom);
        let salt: u32 = self.rng.random();
        let Some(community) = self.community else {
            return;
        };
        let start = self.arena.len();
        let total = wire::UNSIGNED_OVERHEAD + SyncRequest::FIXED_LEN + bytes;
        self.arena.resize(start + total, 0);
        let res = wire::encode_unsigned(
            &mut self.arena[start..],
            &community,
            id::SYNC_REQUEST,
            self.global_time,
            |w| {
                SyncRequest::encode_fixed(w, low, high, salt, k, modulo, offset)?;
                let filter = w.reserve(bytes)?;
                filter.fill(0);
                for key in keys {
                    bloom::insert(filter, key, salt, k);
                }
                Ok(())
            },
        );
        match res {
            Ok(n) => {
                self.arena.truncate(start + n);
                self.out.push_back(Out {
                    dest,
                    msg_id: id::SYNC_REQUEST,
                    bytes: OutBytes::Arena {
                        start: start as u32,
                        len: n as u32,
                    },
                });
            }
            Err(_) => self.arena.truncate(start),
        }
    }

    fn answer_sync(&mut self, now: Instant, from: SocketAddr, req: &SyncRequest<'_>) {
        let Some((lo, hi)) = self.store.time_bounds() else {
            return;
        };
        let (lo, hi) = (lo.max(req.time_low), hi.min(req.time_high));
        if lo > hi {
            return;
        }
        let time = self.rng.random_range(lo..=hi);
        let pivot: u64 = self.rng.random();
        let mut sent = 0;
        let limit = self.cfg.sync_response_limit;
        let out = &mut self.out;
        let class = (req.modulo, req.offset);
        self.store
            .visit_class(lo, hi, class, Some((time, pivot)), |m| {
                if sent >= limit {
                    return ControlFlow::Break(());
                }
                if !bloom::contains(req.bloom, &m.bloom_key, req.salt, req.functions) {
                    out.push_back(Out {
                        dest: from,
                        msg_id: m.msg_id,
                        bytes: OutBytes::Shared(m.packet.clone()),
                    });
                    sent += 1;
                }
                ControlFlow::Continue(())
            });
        if sent > 0 {
            // A peer lacked something: the community has not converged, so
            // this peer should not back off its own requests either.
            self.note_news(now);
        }
    }
}

/// `handle_batch`'s working space, one per thread rather than one per core:
/// it is only used within a call, so a thousand idle cores hold none of it
/// (a batch of 256 keys alone is 48 KiB).
#[derive(Default)]
struct VerifyScratch {
    pending: Vec<Pending>,
    sigs: Vec<Signature>,
    keys: Vec<VerifyingKey>,
    need: Vec<usize>,
    ok: Vec<bool>,
}

thread_local! {
    static VERIFY: RefCell<VerifyScratch> = RefCell::new(VerifyScratch::default());
    /// A sync request's bloom keys, kept between requests for the capacity.
    static BLOOM_KEYS: RefCell<Vec<[u8; 16]>> = const { RefCell::new(Vec::new()) };
}

fn verify_packet(key: &VerifyingKey, data: &[u8]) -> bool {
    let split = data.len() - crypto::SIGNATURE_LEN;
    let sig: &[u8; 64] = data[split..].try_into().expect("checked in precheck");
    crypto::verify(key, &data[..split], sig)
}
