//! The Benaloh secret-sharing protocol of one instance, as a pure state
//! machine: shares, the subset sum, buffering of early messages, rejection
//! of duplicates and strangers, detection of what is missing, and all
//! arithmetic mod M.
//!
//! Inputs are method calls (`share_local`, `share_subset_sum`,
//! `receive_local_share`, `receive_subset_sum`, `configure`); outputs are
//! [`Action`]s drained with [`Protocol::poll_action`] and answers
//! ([`Receipt`], [`Protocol::total`]). This module never touches the host,
//! the network, a clock or an RNG of its own: randomness is passed in, so
//! every order of events can be replayed in a test.
//!
//! Arithmetic: values are below the modulus M (2 ≤ M ≤ 2^64-1); sums and
//! differences go through `u128`, so nothing overflows for any such M.

use std::collections::VecDeque;
use std::fmt;

/// The modulus when neither the config nor a keyword argument sets one
/// (2^31 - 1, a prime).
pub const DEFAULT_MODULUS: u64 = (1 << 31) - 1;

/// `(a + b) mod m`, for any `a`, `b` and `m > 0`.
pub fn add_mod(a: u64, b: u64, m: u64) -> u64 {
    ((a as u128 + b as u128) % m as u128) as u64
}

/// `(a - b) mod m` (never negative), for any `a`, `b` and `m > 0`.
pub fn sub_mod(a: u64, b: u64, m: u64) -> u64 {
    let m = m as u128;
    ((a as u128 % m + m - b as u128 % m) % m) as u64
}

/// `Σ values mod m`, for any values and `m > 0`.
pub fn sum_mod(values: impl IntoIterator<Item = u64>, m: u64) -> u64 {
    values.into_iter().fold(0, |acc, v| add_mod(acc, v, m))
}

/// Instance ids shown as `3,4` (ascending as given).
#[derive(Debug, Clone, Copy)]
pub struct Ids<'a>(pub &'a [u64]);

impl fmt::Display for Ids<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

/// `instance 3` or `instances 3,4`.
fn instances(ids: &[u64]) -> String {
    if ids.len() == 1 {
        format!("instance {}", ids[0])
    } else {
        format!("instances {}", Ids(ids))
    }
}

/// Why the protocol cannot be set up or reconfigured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    /// Fewer than two instances: there is nobody to share with.
    TooFewInstances {
        /// The instance count.
        n: u64,
    },
    /// This instance's id is not in `1..=n`.
    NotAnInstance {
        /// This instance's id.
        me: u64,
        /// The instance count.
        n: u64,
    },
    /// A modulus below 2.
    BadModulus {
        /// The modulus asked for.
        modulus: u64,
    },
    /// A secret that is not below the modulus.
    SecretOutOfRange {
        /// The secret asked for.
        secret: u64,
        /// The modulus.
        modulus: u64,
    },
    /// The secret or modulus can no longer change.
    TooLate {
        /// What was to change (`the secret`, `the modulus`).
        what: &'static str,
        /// What already happened.
        because: &'static str,
    },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::TooFewInstances { n } => write!(
                f,
                "benaloh needs at least 2 instances, the experiment runs {n}: raise instances_to_run"
            ),
            SetupError::NotAnInstance { me, n } => {
                write!(f, "instance id {me} is not one of the instances 1..={n}")
            }
            SetupError::BadModulus { modulus } => {
                write!(f, "modulus {modulus} is too small: use 2 or more")
            }
            SetupError::SecretOutOfRange { secret, modulus } => write!(
                f,
                "secret {secret} is out of range: it must be below the modulus {modulus}"
            ),
            SetupError::TooLate { what, because } => write!(
                f,
                "{what} can no longer change: {because}; set it in the config or before share_local"
            ),
        }
    }
}

/// The two message kinds of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// One share of a secret, addressed to one instance (`local-share`).
    LocalShare,
    /// An instance's subset sum, for everyone (`broadcast-share`).
    SubsetSum,
}

impl Kind {
    /// `local share` / `subset sum`.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::LocalShare => "local share",
            Kind::SubsetSum => "subset sum",
        }
    }
}

/// A value as carried by a message: who it is from (as the payload claims),
/// the modulus its author computes with, and the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// The authoring instance.
    pub origin: u64,
    /// The author's modulus.
    pub modulus: u64,
    /// The value, below `modulus`.
    pub value: u64,
}

/// Why a message was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// From no instance of this experiment (id 0, above n, or this instance
    /// for a local share).
    UnknownPeer {
        /// The message kind.
        kind: Kind,
        /// The id it came from or claims.
        from: u64,
    },
    /// A local share whose payload names another instance than the one that
    /// sent it.
    SenderMismatch {
        /// The sending instance.
        sender: u64,
        /// The instance the payload names.
        origin: u64,
    },
    /// A value that is not below its own modulus, or a modulus below 2.
    OutOfRange {
        /// The message kind.
        kind: Kind,
        /// The claimed author.
        origin: u64,
        /// The value.
        value: u64,
        /// Its modulus.
        modulus: u64,
    },
    /// A second, different value from the same instance; the first is kept
    /// and the total is reported as unknown.
    Conflict {
        /// The message kind.
        kind: Kind,
        /// The author.
        origin: u64,
        /// The value kept.
        first: u64,
        /// The value refused.
        second: u64,
    },
    /// A subset sum claiming an instance but not signed with that
    /// instance's key (as the overlay verified it against the run's peer
    /// table): a forgery, or a message from outside the run.
    AuthorMismatch {
        /// The claimed author.
        origin: u64,
        /// The instance whose key signed it, if the key is the run's.
        signer: Option<u64>,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::UnknownPeer { kind, from } => {
                write!(f, "{} from unknown peer {from}", kind.noun())
            }
            Rejection::SenderMismatch { sender, origin } => write!(
                f,
                "local share sent by instance {sender} but claiming to be from instance {origin}"
            ),
            Rejection::OutOfRange {
                kind,
                origin,
                value,
                modulus,
            } => write!(
                f,
                "{} {value} from instance {origin} is not valid mod {modulus}",
                kind.noun()
            ),
            Rejection::Conflict {
                kind,
                origin,
                first,
                second,
            } => write!(
                f,
                "second {} from instance {origin} ({second}) differs from the first ({first})",
                kind.noun()
            ),
            Rejection::AuthorMismatch {
                origin,
                signer: Some(signer),
            } => write!(
                f,
                "subset sum claiming instance {origin} is signed by instance {signer}'s key"
            ),
            Rejection::AuthorMismatch {
                origin,
                signer: None,
            } => write!(
                f,
                "subset sum claiming instance {origin} is not signed by a key of the run"
            ),
        }
    }
}

/// What became of a received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// Stored (and counted once, when it is used).
    Accepted,
    /// The same value from the same instance again: ignored.
    Duplicate,
    /// This instance's own subset sum echoed back: ignored (it is counted
    /// directly, exactly once).
    OwnEcho,
    /// Refused.
    Rejected(Rejection),
}

/// What the protocol asks the host to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send `value` to instance `to` in a `local-share` message.
    SendLocalShare {
        /// The receiving instance.
        to: u64,
        /// The share.
        value: u64,
    },
    /// Broadcast this instance's subset sum in a `broadcast-share` message.
    BroadcastSubsetSum {
        /// The subset sum.
        value: u64,
    },
}

/// What `share_local` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    /// Drew fresh shares and queued one send per peer.
    Fresh,
    /// Shares were drawn before: queued the same ones again (receivers
    /// ignore them as duplicates, so this only helps after a loss).
    Resent,
}

/// What `share_subset_sum` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Armed {
    /// Queued the broadcast of this subset sum.
    Broadcast(u64),
    /// The subset sum was broadcast before; nothing queued.
    AlreadyBroadcast(u64),
    /// Local shares are still missing (from these instances, or with
    /// another modulus): the broadcast is queued as soon as they arrive.
    Waiting(Missing),
}

/// What keeps the total from being known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Missing {
    /// Instances whose local share to this instance has not arrived.
    pub local_shares: Vec<u64>,
    /// Instances whose subset sum has not arrived.
    pub subset_sums: Vec<u64>,
    /// Messages computed with another modulus: (kind, instance, modulus).
    pub other_modulus: Vec<(Kind, u64, u64)>,
    /// Instances that sent two different values: (kind, instance).
    pub conflicts: Vec<(Kind, u64)>,
    /// This instance's modulus (for the message).
    pub modulus: u64,
}

impl Missing {
    /// Whether nothing is missing.
    pub fn is_empty(&self) -> bool {
        self.local_shares.is_empty()
            && self.subset_sums.is_empty()
            && self.other_modulus.is_empty()
            && self.conflicts.is_empty()
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.local_shares.is_empty() {
            parts.push(format!(
                "missing local shares from {}",
                instances(&self.local_shares)
            ));
        }
        if !self.subset_sums.is_empty() {
            parts.push(format!(
                "missing subset sums from {}",
                instances(&self.subset_sums)
            ));
        }
        for (kind, from, m) in &self.other_modulus {
            parts.push(format!(
                "the {} from instance {from} uses modulus {m}, not {}",
                kind.noun(),
                self.modulus
            ));
        }
        for kind in [Kind::LocalShare, Kind::SubsetSum] {
            let ids: Vec<u64> = self
                .conflicts
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, i)| *i)
                .collect();
            if !ids.is_empty() {
                parts.push(format!(
                    "conflicting {}s from {}",
                    kind.noun(),
                    instances(&ids)
                ));
            }
        }
        f.write_str(&parts.join("; "))
    }
}

/// How many messages went which way (for statistics and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Local shares stored.
    pub local_accepted: u64,
    /// Subset sums stored.
    pub sums_accepted: u64,
    /// Repeats ignored.
    pub duplicates: u64,
    /// Own subset sums echoed back and ignored.
    pub own_echoes: u64,
    /// Messages refused.
    pub rejected: u64,
}

/// One received value per instance: the first one, plus whether a
/// different one was seen after it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    value: u64,
    modulus: u64,
    conflicted: bool,
}

/// The values received from the other instances, one slot per instance id
/// (dense: a run of n instances fills n-1 of them, and a slot is 24 bytes
/// where a map entry cost several times that).
#[derive(Debug, Clone, Default)]
struct Slots {
    /// Index: instance id - 1.
    slots: Vec<Option<Slot>>,
    filled: u64,
}

impl Slots {
    fn get(&self, origin: u64) -> Option<&Slot> {
        self.slots.get(origin.checked_sub(1)? as usize)?.as_ref()
    }

    /// Instances with a value.
    fn len(&self) -> u64 {
        self.filled
    }

    fn values(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots.iter().flatten().map(|s| s.value)
    }
}

/// The protocol state of one instance.
///
/// Call order does not matter: every message can arrive before or after any
/// callback here, any number of times, and the outcome is the same.
#[derive(Debug, Clone)]
pub struct Protocol {
    me: u64,
    n: u64,
    modulus: u64,
    secret: u64,
    /// The shares this instance drew, as (to, value), once `share_local` ran.
    shares: Option<Vec<(u64, u64)>>,
    /// The secret was shown (so it can no longer change).
    revealed: bool,
    /// Broadcast the subset sum as soon as it is complete.
    armed: bool,
    /// The subset sum this instance broadcast.
    broadcast: Option<u64>,
    local: Slots,
    sums: Slots,
    actions: VecDeque<Action>,
    counters: Counters,
}

impl Protocol {
    /// Instance `me` of `n`, computing mod `modulus`, with this secret.
    pub fn new(me: u64, n: u64, modulus: u64, secret: u64) -> Result<Self, SetupError> {
        if n < 2 {
            return Err(SetupError::TooFewInstances { n });
        }
        if me == 0 || me > n {
            return Err(SetupError::NotAnInstance { me, n });
        }
        check_params(modulus, secret)?;
        Ok(Protocol {
            me,
            n,
            modulus,
            secret,
            shares: None,
            revealed: false,
            armed: false,
            broadcast: None,
            local: Slots::default(),
            sums: Slots::default(),
            actions: VecDeque::new(),
            counters: Counters::default(),
        })
    }

    /// This instance's id.
    pub fn me(&self) -> u64 {
        self.me
    }

    /// The instance count.
    pub fn n(&self) -> u64 {
        self.n
    }

    /// The modulus.
    pub fn modulus(&self) -> u64 {
        self.modulus
    }

    /// The secret, without marking it shown.
    pub fn secret(&self) -> u64 {
        self.secret
    }

    /// Message counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The other instances, ascending: exactly the ones shares go to and
    /// come from.
    pub fn peers(&self) -> impl Iterator<Item = u64> + '_ {
        (1..=self.n).filter(move |&i| i != self.me)
    }

    fn is_peer(&self, id: u64) -> bool {
        id != self.me && (1..=self.n).contains(&id)
    }

    /// Whether the secret or modulus may still change: nothing derived from
    /// them has left this instance or been shown.
    fn locked(&self, what: &'static str) -> Result<(), SetupError> {
        let because = if self.shares.is_some() {
            "local shares were already sent"
        } else if self.broadcast.is_some() {
            "the subset sum was already broadcast"
        } else if self.revealed {
            "the secret was already printed"
        } else {
            return Ok(());
        };
        Err(SetupError::TooLate { what, because })
    }

    /// Change the modulus and secret, as long as nothing derived from them
    /// was sent or shown. Shares already received are kept: they are checked
    /// against the modulus when they are used.
    pub fn configure(&mut self, modulus: u64, secret: u64) -> Result<(), SetupError> {
        if modulus != self.modulus {
            self.locked("the modulus")?;
        }
        if secret != self.secret {
            self.locked("the secret")?;
        }
        check_params(modulus, secret)?;
        self.modulus = modulus;
        self.secret = secret;
        self.maybe_broadcast();
        Ok(())
    }

    /// The secret, to show it; from now on it cannot change.
    pub fn reveal_secret(&mut self) -> u64 {
        self.revealed = true;
        self.secret
    }

    /// Split the secret into n-1 shares, one per peer: n-2 values from
    /// `draw(modulus)` (which must return a value below its argument) and
    /// (secret - their sum) mod M; queue one [`Action::SendLocalShare`] per
    /// peer. A second call queues the same shares again.
    pub fn share_local(&mut self, mut draw: impl FnMut(u64) -> u64) -> Shared {
        let fresh = self.shares.is_none();
        if fresh {
            let m = self.modulus;
            let peers: Vec<u64> = self.peers().collect();
            let mut values: Vec<u64> = (0..peers.len() - 1).map(|_| draw(m) % m).collect();
            values.push(sub_mod(self.secret, sum_mod(values.iter().copied(), m), m));
            self.shares = Some(peers.into_iter().zip(values).collect());
        }
        for &(to, value) in self.shares.iter().flatten() {
            self.actions.push_back(Action::SendLocalShare { to, value });
        }
        if fresh { Shared::Fresh } else { Shared::Resent }
    }

    /// The shares drawn by `share_local`, as (to, value).
    pub fn local_shares_sent(&self) -> Option<&[(u64, u64)]> {
        self.shares.as_deref()
    }

    /// Broadcast the subset sum now if every local share is here, else as
    /// soon as the last one arrives (automatic mode is this, called early).
    pub fn share_subset_sum(&mut self) -> Armed {
        if let Some(v) = self.broadcast {
            return Armed::AlreadyBroadcast(v);
        }
        self.armed = true;
        self.maybe_broadcast();
        match self.broadcast {
            Some(v) => Armed::Broadcast(v),
            None => Armed::Waiting(self.local_missing()),
        }
    }

    /// Whether the subset sum will be (or was) broadcast without another call.
    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// The subset sum this instance broadcast, if it did.
    pub fn broadcast_value(&self) -> Option<u64> {
        self.broadcast
    }

    /// A `local-share` message sent by instance `sender` (0: unknown).
    pub fn receive_local_share(&mut self, sender: u64, share: Share) -> Receipt {
        let r = if !self.is_peer(sender) {
            Receipt::Rejected(Rejection::UnknownPeer {
                kind: Kind::LocalShare,
                from: sender,
            })
        } else if share.origin != sender {
            Receipt::Rejected(Rejection::SenderMismatch {
                sender,
                origin: share.origin,
            })
        } else {
            store(&mut self.local, Kind::LocalShare, share, self.n)
        };
        self.count(&r, Kind::LocalShare);
        if r == Receipt::Accepted {
            self.maybe_broadcast();
        }
        r
    }

    /// A `broadcast-share` message whose payload names its origin instance
    /// (the overlay may deliver it through any peer). `signer` is the
    /// instance whose key signed it, as the overlay verified it against the
    /// run's peer table (`None`: unsigned, or a key from outside the run).
    /// Only the origin's own key can vouch for its subset sum: anything
    /// else is refused before it can take the origin's slot.
    pub fn receive_subset_sum(&mut self, signer: Option<u64>, share: Share) -> Receipt {
        let r = if share.origin == self.me {
            Receipt::OwnEcho
        } else if !self.is_peer(share.origin) {
            Receipt::Rejected(Rejection::UnknownPeer {
                kind: Kind::SubsetSum,
                from: share.origin,
            })
        } else if signer != Some(share.origin) {
            Receipt::Rejected(Rejection::AuthorMismatch {
                origin: share.origin,
                signer,
            })
        } else {
            store(&mut self.sums, Kind::SubsetSum, share, self.n)
        };
        self.count(&r, Kind::SubsetSum);
        r
    }

    fn count(&mut self, r: &Receipt, kind: Kind) {
        let c = &mut self.counters;
        match r {
            Receipt::Accepted if kind == Kind::LocalShare => c.local_accepted += 1,
            Receipt::Accepted => c.sums_accepted += 1,
            Receipt::Duplicate => c.duplicates += 1,
            Receipt::OwnEcho => c.own_echoes += 1,
            Receipt::Rejected(_) => c.rejected += 1,
        }
    }

    /// Local shares not (usably) here: absent ones, ones with another
    /// modulus, conflicting ones.
    fn local_missing(&self) -> Missing {
        let mut m = Missing {
            modulus: self.modulus,
            ..Missing::default()
        };
        self.audit(&self.local, Kind::LocalShare, &mut m);
        m
    }

    fn audit(&self, slots: &Slots, kind: Kind, into: &mut Missing) {
        for peer in self.peers() {
            match slots.get(peer) {
                None if kind == Kind::LocalShare => into.local_shares.push(peer),
                None => into.subset_sums.push(peer),
                Some(s) if s.conflicted => into.conflicts.push((kind, peer)),
                Some(s) if s.modulus != self.modulus => {
                    into.other_modulus.push((kind, peer, s.modulus))
                }
                Some(_) => {}
            }
        }
    }

    /// The instances whose local share has not arrived, ascending.
    pub fn missing_local_shares(&self) -> Vec<u64> {
        self.local_missing().local_shares
    }

    /// This instance's subset sum (Σ of the n-1 shares it received, mod
    /// M), once every one of them is here with this modulus.
    pub fn subset_sum(&self) -> Result<u64, Missing> {
        let missing = self.local_missing();
        if !missing.is_empty() {
            return Err(missing);
        }
        Ok(sum_mod(self.local.values(), self.modulus))
    }

    fn maybe_broadcast(&mut self) {
        if !self.armed || self.broadcast.is_some() {
            return;
        }
        // Cheap test first: this runs on every arriving share, and the full
        // audit walks every peer (quadratic over a run of n instances).
        if self.local.len() < self.n - 1 {
            return;
        }
        if let Ok(v) = self.subset_sum() {
            self.broadcast = Some(v);
            self.actions
                .push_back(Action::BroadcastSubsetSum { value: v });
        }
    }

    /// The total: this instance's own subset sum (counted directly, once)
    /// plus every other instance's, mod M; or what keeps it from being
    /// known.
    pub fn total(&self) -> Result<u64, Missing> {
        let own = self.subset_sum();
        let mut missing = own.clone().err().unwrap_or(Missing {
            modulus: self.modulus,
            ..Missing::default()
        });
        self.audit(&self.sums, Kind::SubsetSum, &mut missing);
        match own {
            Ok(own) if missing.is_empty() => Ok(add_mod(
                own,
                sum_mod(self.sums.values(), self.modulus),
                self.modulus,
            )),
            _ => Err(missing),
        }
    }

    /// The next thing for the host to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        let a = self.actions.pop_front();
        // `share_local` queues n-1 sends at once: do not keep that capacity.
        if a.is_none() && self.actions.capacity() > 16 {
            self.actions = VecDeque::new();
        }
        a
    }
}

fn check_params(modulus: u64, secret: u64) -> Result<(), SetupError> {
    if modulus < 2 {
        return Err(SetupError::BadModulus { modulus });
    }
    if secret >= modulus {
        return Err(SetupError::SecretOutOfRange { secret, modulus });
    }
    Ok(())
}

/// Keep the first value per origin (an instance id of the run's `n`, so
/// >= 1); a repeat is a duplicate, a different value a conflict.
fn store(slots: &mut Slots, kind: Kind, share: Share, n: u64) -> Receipt {
    if share.modulus < 2 || share.value >= share.modulus {
        return Receipt::Rejected(Rejection::OutOfRange {
            kind,
            origin: share.origin,
            value: share.value,
            modulus: share.modulus,
        });
    }
    let i = (share.origin - 1) as usize;
    if i >= slots.slots.len() {
        // A slot for every instance at once (no doubling slack).
        slots.slots.resize(i.max(n as usize - 1) + 1, None);
    }
    match &mut slots.slots[i] {
        None => {
            slots.slots[i] = Some(Slot {
                value: share.value,
                modulus: share.modulus,
                conflicted: false,
            });
            slots.filled += 1;
            Receipt::Accepted
        }
        Some(s) if s.value == share.value && s.modulus == share.modulus => Receipt::Duplicate,
        Some(s) => {
            s.conflicted = true;
            Receipt::Rejected(Rejection::Conflict {
                kind,
                origin: share.origin,
                first: s.value,
                second: share.value,
            })
        }
    }
}

#[cfg(test)]
mod tests;
