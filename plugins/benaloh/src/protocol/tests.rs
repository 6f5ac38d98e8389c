//! Unit tests of the protocol state machine: arithmetic, set-up errors,
//! every race in every order (exhaustively for small n), duplicates,
//! strangers, losses, moduli, and property tests over delivery orders and
//! lost messages for n in 2..=12.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

/// splitmix64: a tiny deterministic RNG for schedules and draws.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, bound: u64) -> u64 {
        ((self.next() as u128 * bound as u128) >> 64) as u64
    }
}

fn share(origin: u64, modulus: u64, value: u64) -> Share {
    Share {
        origin,
        modulus,
        value,
    }
}

/// The overlay's verdict on a message signed by instance `i`'s own key.
fn key(i: u64) -> Option<u64> {
    Some(i)
}

fn drain(p: &mut Protocol) -> Vec<Action> {
    std::iter::from_fn(|| p.poll_action()).collect()
}

fn reference_sum(secrets: &[u64], m: u64) -> u64 {
    (secrets.iter().map(|&s| s as u128).sum::<u128>() % m as u128) as u64
}

// ---------------------------------------------------------------- arithmetic

#[test]
fn arithmetic_never_overflows_at_the_largest_moduli() {
    for m in [2, 3, DEFAULT_MODULUS, 1 << 63, (1 << 63) + 1, u64::MAX] {
        let top = m - 1;
        assert_eq!(add_mod(top, top, m), ((top as u128 * 2) % m as u128) as u64);
        assert_eq!(sub_mod(0, top, m), 1 % m);
        assert_eq!(sub_mod(top, 0, m), top);
        assert_eq!(sub_mod(5 % m, 5 % m, m), 0);
        assert_eq!(
            sum_mod(vec![top; 1000], m),
            ((top as u128 * 1000) % m as u128) as u64
        );
    }
    // inputs above the modulus are reduced too
    assert_eq!(sub_mod(u64::MAX, u64::MAX - 1, 7), 1);
    assert_eq!(
        add_mod(u64::MAX, u64::MAX, 1 << 63),
        ((u64::MAX as u128 * 2) % (1u128 << 63)) as u64
    );
}

proptest! {
    #[test]
    fn sub_mod_inverts_add_mod(a in any::<u64>(), b in any::<u64>(), m in 2u64..=u64::MAX) {
        let (a, b) = (a % m, b % m);
        prop_assert_eq!(sub_mod(add_mod(a, b, m), b, m), a);
        prop_assert_eq!(add_mod(sub_mod(a, b, m), b, m), a);
        prop_assert!(add_mod(a, b, m) < m && sub_mod(a, b, m) < m);
    }
}

// ---------------------------------------------------------------- set-up

#[test]
fn set_up_errors_say_what_to_change() {
    let e = Protocol::new(1, 1, 7, 0).unwrap_err();
    assert_eq!(e, SetupError::TooFewInstances { n: 1 });
    assert_eq!(
        e.to_string(),
        "benaloh needs at least 2 instances, the experiment runs 1: raise instances_to_run"
    );
    assert_eq!(
        Protocol::new(0, 3, 7, 0).unwrap_err(),
        SetupError::NotAnInstance { me: 0, n: 3 }
    );
    assert_eq!(
        Protocol::new(4, 3, 7, 0).unwrap_err().to_string(),
        "instance id 4 is not one of the instances 1..=3"
    );
    assert_eq!(
        Protocol::new(1, 3, 1, 0).unwrap_err().to_string(),
        "modulus 1 is too small: use 2 or more"
    );
    assert_eq!(
        Protocol::new(1, 3, 7, 7).unwrap_err().to_string(),
        "secret 7 is out of range: it must be below the modulus 7"
    );
    assert!(Protocol::new(3, 3, u64::MAX, u64::MAX - 1).is_ok());
}

// ---------------------------------------------------------------- shares

#[test]
fn shares_go_to_every_other_instance_once_and_add_up_to_the_secret() {
    for n in 2..=9u64 {
        for me in 1..=n {
            let m = 1000;
            let mut p = Protocol::new(me, n, m, 123).unwrap();
            let mut rng = Rng(n * 100 + me);
            assert_eq!(p.share_local(|b| rng.below(b)), Shared::Fresh);
            let sent: Vec<(u64, u64)> = drain(&mut p)
                .into_iter()
                .map(|a| match a {
                    Action::SendLocalShare { to, value } => (to, value),
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            let to: Vec<u64> = sent.iter().map(|s| s.0).collect();
            let want: Vec<u64> = (1..=n).filter(|&i| i != me).collect();
            assert_eq!(to, want, "n={n} me={me}");
            assert!(sent.iter().all(|s| s.1 < m));
            assert_eq!(sum_mod(sent.iter().map(|s| s.1), m), 123);
            assert_eq!(p.local_shares_sent().unwrap(), sent.as_slice());
        }
    }
}

#[test]
fn two_instances_send_the_secret_itself_and_draw_nothing() {
    let mut p = Protocol::new(2, 2, 1000, 77).unwrap();
    p.share_local(|_| panic!("no random value is needed for n = 2"));
    assert_eq!(drain(&mut p), [Action::SendLocalShare { to: 1, value: 77 }]);
}

#[test]
fn a_second_share_local_resends_the_same_shares_without_drawing() {
    let mut p = Protocol::new(1, 4, 1000, 5).unwrap();
    let mut rng = Rng(9);
    p.share_local(|b| rng.below(b));
    let first = drain(&mut p);
    assert_eq!(
        p.share_local(|_| panic!("must not draw again")),
        Shared::Resent
    );
    assert_eq!(drain(&mut p), first);
}

#[test]
fn a_misbehaving_draw_is_reduced_below_the_modulus() {
    let mut p = Protocol::new(1, 4, 10, 3).unwrap();
    p.share_local(|_| u64::MAX);
    let values: Vec<u64> = drain(&mut p)
        .into_iter()
        .map(|a| match a {
            Action::SendLocalShare { value, .. } => value,
            _ => unreachable!(),
        })
        .collect();
    assert!(values.iter().all(|&v| v < 10));
    assert_eq!(sum_mod(values, 10), 3);
}

#[test]
fn the_subset_sum_starts_from_zero_not_from_the_secret() {
    // the reference started it from the secret
    let mut p = Protocol::new(1, 4, 1000, 999).unwrap();
    for (from, v) in [(2, 1), (3, 2), (4, 3)] {
        assert_eq!(
            p.receive_local_share(from, share(from, 1000, v)),
            Receipt::Accepted
        );
    }
    assert_eq!(p.subset_sum(), Ok(6));
    assert_eq!(p.share_subset_sum(), Armed::Broadcast(6));
    assert_eq!(drain(&mut p), [Action::BroadcastSubsetSum { value: 6 }]);
}

// ---------------------------------------------------------------- a whole experiment, in one order

/// Every instance's shares and subset sums, computed by running the
/// protocols in the tutorial's order.
struct World {
    n: u64,
    m: u64,
    secrets: Vec<u64>,
    /// local[i][j]: the share instance i+1 sends to instance j+1.
    local: Vec<Vec<Option<u64>>>,
    /// sums[i]: instance i+1's subset sum.
    sums: Vec<u64>,
}

impl World {
    fn new(n: u64, m: u64, seed: u64) -> World {
        let mut rng = Rng(seed);
        let secrets: Vec<u64> = (0..n).map(|_| rng.below(m)).collect();
        let mut local = vec![vec![None; n as usize]; n as usize];
        for i in 1..=n {
            let mut p = Protocol::new(i, n, m, secrets[i as usize - 1]).unwrap();
            p.share_local(|b| rng.below(b));
            for a in drain(&mut p) {
                if let Action::SendLocalShare { to, value } = a {
                    local[i as usize - 1][to as usize - 1] = Some(value);
                }
            }
        }
        let sums = (1..=n)
            .map(|j| {
                sum_mod(
                    (1..=n).filter_map(|i| local[i as usize - 1][j as usize - 1]),
                    m,
                )
            })
            .collect();
        World {
            n,
            m,
            secrets,
            local,
            sums,
        }
    }

    fn protocol(&self, me: u64) -> Protocol {
        Protocol::new(me, self.n, self.m, self.secrets[me as usize - 1]).unwrap()
    }

    fn share_to(&self, from: u64, to: u64) -> Share {
        share(
            from,
            self.m,
            self.local[from as usize - 1][to as usize - 1].unwrap(),
        )
    }

    fn sum_of(&self, from: u64) -> Share {
        share(from, self.m, self.sums[from as usize - 1])
    }

    fn total(&self) -> u64 {
        reference_sum(&self.secrets, self.m)
    }
}

/// One input to one instance.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Input {
    ShareLocal,
    ShareSubsetSum,
    Local(u64),
    Sum(u64),
    /// The instance's own subset sum coming back through the overlay.
    Echo,
}

/// Feed `inputs` to instance `me` in order; return its broadcasts.
fn feed(w: &World, me: u64, inputs: &[Input]) -> (Protocol, Vec<u64>) {
    let mut p = w.protocol(me);
    let mut rng = Rng(me);
    let mut broadcasts = Vec::new();
    for &input in inputs {
        match input {
            Input::ShareLocal => {
                p.share_local(|b| rng.below(b));
            }
            Input::ShareSubsetSum => {
                p.share_subset_sum();
            }
            Input::Local(from) => {
                assert_eq!(
                    p.receive_local_share(from, w.share_to(from, me)),
                    Receipt::Accepted
                );
            }
            Input::Sum(from) => {
                assert_eq!(
                    p.receive_subset_sum(key(from), w.sum_of(from)),
                    Receipt::Accepted
                );
            }
            Input::Echo => {
                assert_eq!(
                    p.receive_subset_sum(key(me), w.sum_of(me)),
                    Receipt::OwnEcho
                );
            }
        }
        for a in drain(&mut p) {
            if let Action::BroadcastSubsetSum { value } = a {
                broadcasts.push(value);
            }
        }
    }
    (p, broadcasts)
}

fn inputs_for(w: &World, me: u64) -> Vec<Input> {
    let mut v = vec![Input::ShareLocal, Input::ShareSubsetSum];
    for i in (1..=w.n).filter(|&i| i != me) {
        v.push(Input::Local(i));
        v.push(Input::Sum(i));
    }
    v
}

/// All permutations of `items` (Heap's algorithm), calling `f` on each.
fn permutations<T: Clone>(items: &mut [T], k: usize, f: &mut impl FnMut(&[T])) {
    if k <= 1 {
        f(items);
        return;
    }
    for i in 0..k - 1 {
        permutations(items, k - 1, f);
        let j = if k.is_multiple_of(2) { i } else { 0 };
        items.swap(j, k - 1);
    }
    permutations(items, k - 1, f);
}

#[test]
fn the_tutorial_order_gives_the_sum_of_the_secrets() {
    for n in [2, 3, 5, 6, 12] {
        let w = World::new(n, DEFAULT_MODULUS, n);
        for me in 1..=n {
            let (p, b) = feed(&w, me, &inputs_for(&w, me));
            assert_eq!(b, [w.sums[me as usize - 1]]);
            assert_eq!(p.total(), Ok(w.total()), "n={n} me={me}");
        }
    }
}

#[test]
fn every_order_of_every_input_gives_the_right_total_n3_n4() {
    // Exhaustive: every interleaving of share_local, share_subset_sum, the
    // n-1 local shares, the n-1 subset sums and an echo of its own
    // broadcast, for every instance of n = 3 (5040 orders each) and of n = 4
    // without the echo (40320 orders each). This covers every race: a
    // broadcast before this instance's local shares are complete or before
    // share_subset_sum, and a local share before share_local runs here.
    for (n, echo) in [(3u64, true), (4, false)] {
        let w = World::new(n, 1_000_003, 42 + n);
        for me in 1..=n {
            let mut inputs = inputs_for(&w, me);
            if echo {
                inputs.push(Input::Echo);
            }
            let k = inputs.len();
            let mut orders = 0u64;
            permutations(&mut inputs, k, &mut |order| {
                // the echo can only come back after the broadcast: skip orders where it comes before
                let echo_at = order.iter().position(|i| *i == Input::Echo);
                let last_needed = order
                    .iter()
                    .rposition(|i| matches!(i, Input::Local(_) | Input::ShareSubsetSum));
                if let (Some(e), Some(l)) = (echo_at, last_needed)
                    && e < l
                {
                    return;
                }
                orders += 1;
                let (p, b) = feed(&w, me, order);
                assert_eq!(b, [w.sums[me as usize - 1]], "{order:?}");
                assert_eq!(p.total(), Ok(w.total()), "{order:?}");
                assert_eq!(p.counters().sums_accepted, n - 1);
            });
            assert!(orders > 0);
        }
    }
}

// ---------------------------------------------------------------- each race on its own

#[test]
fn race_broadcast_before_own_local_shares_are_complete() {
    let w = World::new(4, 1000, 7);
    let mut p = w.protocol(1);
    // the subset sums of 2, 3, 4 all arrive first
    for i in 2..=4 {
        assert_eq!(p.receive_subset_sum(key(i), w.sum_of(i)), Receipt::Accepted);
    }
    assert_eq!(
        p.share_subset_sum(),
        Armed::Waiting(Missing {
            local_shares: vec![2, 3, 4],
            modulus: 1000,
            ..Missing::default()
        })
    );
    assert!(drain(&mut p).is_empty());
    let err = p.total().unwrap_err();
    assert_eq!(err.local_shares, [2, 3, 4]);
    assert!(err.subset_sums.is_empty());
    for i in 2..=4 {
        p.receive_local_share(i, w.share_to(i, 1));
    }
    assert_eq!(
        drain(&mut p),
        [Action::BroadcastSubsetSum { value: w.sums[0] }]
    );
    assert_eq!(p.total(), Ok(w.total()));
}

#[test]
fn race_broadcast_before_share_subset_sum_fires() {
    let w = World::new(3, 1000, 8);
    let mut p = w.protocol(2);
    for i in [1, 3] {
        p.receive_local_share(i, w.share_to(i, 2));
        p.receive_subset_sum(key(i), w.sum_of(i));
    }
    // complete, but share_subset_sum has not fired: nothing is broadcast
    assert!(drain(&mut p).is_empty());
    // the own subset sum is counted directly, so the total is known already
    assert_eq!(p.total(), Ok(w.total()));
    assert_eq!(p.share_subset_sum(), Armed::Broadcast(w.sums[1]));
    assert_eq!(
        drain(&mut p),
        [Action::BroadcastSubsetSum { value: w.sums[1] }]
    );
    assert_eq!(p.share_subset_sum(), Armed::AlreadyBroadcast(w.sums[1]));
    assert!(drain(&mut p).is_empty());
}

#[test]
fn race_local_share_before_share_local_runs_here() {
    let w = World::new(3, 1000, 9);
    let mut p = w.protocol(3);
    assert_eq!(
        p.receive_local_share(1, w.share_to(1, 3)),
        Receipt::Accepted
    );
    assert_eq!(
        p.receive_local_share(2, w.share_to(2, 3)),
        Receipt::Accepted
    );
    let mut rng = Rng(3);
    p.share_local(|b| rng.below(b));
    assert_eq!(drain(&mut p).len(), 2);
    assert_eq!(p.subset_sum(), Ok(w.sums[2]));
}

#[test]
fn automatic_mode_broadcasts_the_moment_the_last_local_share_arrives() {
    let w = World::new(5, 1000, 10);
    let mut p = w.protocol(5);
    assert!(matches!(p.share_subset_sum(), Armed::Waiting(_)));
    assert!(p.is_armed());
    for i in 1..=3 {
        p.receive_local_share(i, w.share_to(i, 5));
        assert!(drain(&mut p).is_empty());
    }
    p.receive_local_share(4, w.share_to(4, 5));
    assert_eq!(
        drain(&mut p),
        [Action::BroadcastSubsetSum { value: w.sums[4] }]
    );
    assert_eq!(p.broadcast_value(), Some(w.sums[4]));
    // a duplicate of the last share does not broadcast again
    assert_eq!(
        p.receive_local_share(4, w.share_to(4, 5)),
        Receipt::Duplicate
    );
    assert!(drain(&mut p).is_empty());
}

// ---------------------------------------------------------------- duplicates, strangers, echoes

#[test]
fn duplicates_are_counted_once() {
    let w = World::new(3, 1000, 11);
    let mut p = w.protocol(1);
    for _ in 0..3 {
        p.receive_local_share(2, w.share_to(2, 1));
        p.receive_local_share(3, w.share_to(3, 1));
        p.receive_subset_sum(key(2), w.sum_of(2));
        p.receive_subset_sum(key(3), w.sum_of(3));
    }
    assert_eq!(p.total(), Ok(w.total()));
    let c = p.counters();
    assert_eq!((c.local_accepted, c.sums_accepted, c.duplicates), (2, 2, 8));
}

#[test]
fn a_different_second_value_is_a_conflict_and_makes_the_total_unknown() {
    let w = World::new(3, 1000, 12);
    let mut p = w.protocol(1);
    for i in [2, 3] {
        p.receive_local_share(i, w.share_to(i, 1));
        p.receive_subset_sum(key(i), w.sum_of(i));
    }
    let mut other = w.sum_of(3);
    other.value = (other.value + 1) % 1000;
    assert_eq!(
        p.receive_subset_sum(key(3), other),
        Receipt::Rejected(Rejection::Conflict {
            kind: Kind::SubsetSum,
            origin: 3,
            first: w.sums[2],
            second: other.value
        })
    );
    let mut bad_local = w.share_to(2, 1);
    bad_local.value = (bad_local.value + 1) % 1000;
    assert!(matches!(
        p.receive_local_share(2, bad_local),
        Receipt::Rejected(Rejection::Conflict { .. })
    ));
    let m = p.total().unwrap_err();
    assert_eq!(m.conflicts, [(Kind::LocalShare, 2), (Kind::SubsetSum, 3)]);
    assert_eq!(
        m.to_string(),
        "conflicting local shares from instance 2; conflicting subset sums from instance 3"
    );
    // a conflicted local share also keeps the subset sum from being broadcast
    assert!(matches!(p.share_subset_sum(), Armed::Waiting(_)));
    assert!(drain(&mut p).is_empty());
}

#[test]
fn shares_from_unknown_peers_are_rejected_and_never_counted() {
    let w = World::new(3, 1000, 13);
    let mut p = w.protocol(1);
    // more peers than shares: ids 0 (not an instance), 1 (itself), 4 and 99 (beyond n)
    for stranger in [0, 1, 4, 99] {
        assert_eq!(
            p.receive_local_share(stranger, share(stranger, 1000, 5)),
            Receipt::Rejected(Rejection::UnknownPeer {
                kind: Kind::LocalShare,
                from: stranger
            })
        );
    }
    for stranger in [0, 4, 99] {
        assert_eq!(
            p.receive_subset_sum(key(stranger), share(stranger, 1000, 5)),
            Receipt::Rejected(Rejection::UnknownPeer {
                kind: Kind::SubsetSum,
                from: stranger
            })
        );
    }
    // a share sent by 2 that claims to be from 3
    assert_eq!(
        p.receive_local_share(2, share(3, 1000, 5)),
        Receipt::Rejected(Rejection::SenderMismatch {
            sender: 2,
            origin: 3
        })
    );
    assert_eq!(p.counters().rejected, 8);
    assert_eq!(p.missing_local_shares(), [2, 3]);
    for i in [2, 3] {
        p.receive_local_share(i, w.share_to(i, 1));
        p.receive_subset_sum(key(i), w.sum_of(i));
    }
    assert_eq!(p.total(), Ok(w.total()));
}

#[test]
fn a_subset_sum_signed_by_another_key_is_rejected() {
    let w = World::new(3, 1000, 14);
    let mut p = w.protocol(1);
    for i in [2, 3] {
        p.receive_local_share(i, w.share_to(i, 1));
    }
    // Forgeries arrive first: a key from outside the run, then instance 3's
    // key, both claiming instance 2's subset sum with a made-up value.
    let forged = share(2, 1000, (w.sum_of(2).value + 1) % 1000);
    assert_eq!(
        p.receive_subset_sum(None, forged),
        Receipt::Rejected(Rejection::AuthorMismatch {
            origin: 2,
            signer: None
        })
    );
    assert_eq!(
        p.receive_subset_sum(Some(3), forged),
        Receipt::Rejected(Rejection::AuthorMismatch {
            origin: 2,
            signer: Some(3)
        })
    );
    // The genuine ones still take their slots, and the total is right.
    assert_eq!(p.receive_subset_sum(key(2), w.sum_of(2)), Receipt::Accepted);
    assert_eq!(p.receive_subset_sum(key(3), w.sum_of(3)), Receipt::Accepted);
    p.share_subset_sum();
    assert_eq!(p.total(), Ok(w.total()));
}

#[test]
fn own_echo_is_ignored_and_own_subset_sum_counted_exactly_once() {
    let w = World::new(3, 1000, 15);
    let with_echo = |echoes: usize| {
        let mut p = w.protocol(1);
        for i in [2, 3] {
            p.receive_local_share(i, w.share_to(i, 1));
            p.receive_subset_sum(key(i), w.sum_of(i));
        }
        p.share_subset_sum();
        for _ in 0..echoes {
            assert_eq!(p.receive_subset_sum(key(1), w.sum_of(1)), Receipt::OwnEcho);
        }
        p.total()
    };
    assert_eq!(with_echo(0), Ok(w.total()));
    assert_eq!(with_echo(1), Ok(w.total()));
    assert_eq!(with_echo(3), Ok(w.total()));
}

#[test]
fn out_of_range_values_are_rejected() {
    let mut p = Protocol::new(1, 3, 1000, 0).unwrap();
    assert_eq!(
        p.receive_local_share(2, share(2, 1000, 1000)),
        Receipt::Rejected(Rejection::OutOfRange {
            kind: Kind::LocalShare,
            origin: 2,
            value: 1000,
            modulus: 1000
        })
    );
    assert!(matches!(
        p.receive_subset_sum(key(2), share(2, 1, 0)),
        Receipt::Rejected(Rejection::OutOfRange { .. })
    ));
    assert_eq!(
        Rejection::OutOfRange {
            kind: Kind::SubsetSum,
            origin: 2,
            value: 1000,
            modulus: 1000
        }
        .to_string(),
        "subset sum 1000 from instance 2 is not valid mod 1000"
    );
}

// ---------------------------------------------------------------- losses

#[test]
fn a_lost_share_is_named_instead_of_a_wrong_total() {
    let w = World::new(5, 1000, 16);
    // instance 1 lost the local share from 4 and the subset sums from 3 and 5
    let mut p = w.protocol(1);
    for i in 2..=5 {
        if i != 4 {
            p.receive_local_share(i, w.share_to(i, 1));
        }
        if i != 3 && i != 5 {
            p.receive_subset_sum(key(i), w.sum_of(i));
        }
    }
    let m = p.total().unwrap_err();
    assert_eq!(m.local_shares, [4]);
    assert_eq!(m.subset_sums, [3, 5]);
    assert_eq!(
        m.to_string(),
        "missing local shares from instance 4; missing subset sums from instances 3,5"
    );
    assert_eq!(
        Missing {
            local_shares: vec![2, 5],
            modulus: 7,
            ..Missing::default()
        }
        .to_string(),
        "missing local shares from instances 2,5"
    );
}

#[test]
fn nothing_received_names_everyone() {
    let p = Protocol::new(2, 4, 1000, 1).unwrap();
    let m = p.total().unwrap_err();
    assert_eq!(m.local_shares, [1, 3, 4]);
    assert_eq!(m.subset_sums, [1, 3, 4]);
}

// ---------------------------------------------------------------- moduli

#[test]
fn the_modulus_can_change_until_something_is_sent_or_shown() {
    let mut p = Protocol::new(1, 3, 1000, 5).unwrap();
    p.configure(17, 16).unwrap();
    assert_eq!((p.modulus(), p.secret()), (17, 16));
    assert_eq!(
        p.configure(17, 17).unwrap_err(),
        SetupError::SecretOutOfRange {
            secret: 17,
            modulus: 17
        }
    );
    assert_eq!(
        p.configure(1, 0).unwrap_err(),
        SetupError::BadModulus { modulus: 1 }
    );
    p.share_local(|_| 3);
    let e = p.configure(19, 16).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the modulus can no longer change: local shares were already sent; set it in the config or before share_local"
    );
    assert!(p.configure(17, 3).is_err());
    // the same values are no change
    p.configure(17, 16).unwrap();

    let mut q = Protocol::new(1, 3, 1000, 5).unwrap();
    assert_eq!(q.reveal_secret(), 5);
    assert!(matches!(
        q.configure(1000, 6),
        Err(SetupError::TooLate {
            what: "the secret",
            because: "the secret was already printed"
        })
    ));
}

#[test]
fn shares_computed_with_another_modulus_are_buffered_then_used_or_reported() {
    // 2 and 3 run `share_local modulus=17` before this instance does
    let mut p = Protocol::new(1, 3, DEFAULT_MODULUS, 5).unwrap();
    p.receive_local_share(2, share(2, 17, 10));
    p.receive_local_share(3, share(3, 17, 9));
    p.share_subset_sum();
    assert!(drain(&mut p).is_empty());
    let m = p.subset_sum().unwrap_err();
    assert_eq!(
        m.to_string(),
        "the local share from instance 2 uses modulus 17, not 2147483647; the local share from instance 3 uses modulus 17, not 2147483647"
    );
    p.configure(17, 5).unwrap();
    assert_eq!(drain(&mut p), [Action::BroadcastSubsetSum { value: 2 }]);
    // a subset sum with another modulus is reported, not summed
    p.receive_subset_sum(key(2), share(2, 17, 1));
    p.receive_subset_sum(key(3), share(3, 1000, 1));
    let m = p.total().unwrap_err();
    assert_eq!(m.other_modulus, [(Kind::SubsetSum, 3, 1000)]);
}

#[test]
fn a_full_run_at_the_largest_moduli_matches_u128_arithmetic() {
    for m in [1u64 << 63, u64::MAX] {
        let w = World::new(7, m, m);
        for me in 1..=7 {
            let (p, _) = feed(&w, me, &inputs_for(&w, me));
            assert_eq!(p.total(), Ok(w.total()));
        }
    }
}

// ---------------------------------------------------------------- property tests: whole experiments

/// An event in a simulated run of n instances.
#[derive(Debug, Clone, Copy)]
enum Event {
    ShareLocal(u64),
    ShareSubsetSum(u64),
    Local { from: u64, to: u64, value: u64 },
    Sum { from: u64, to: u64, value: u64 },
}

/// What a simulated run delivered and what it lost.
struct Run {
    protos: Vec<Protocol>,
    secrets: Vec<u64>,
    /// (from, to) of lost local shares.
    lost_local: BTreeSet<(u64, u64)>,
    /// (from, to) of delivered subset sums.
    got_sum: BTreeSet<(u64, u64)>,
    broadcasts: Vec<u64>,
}

/// Run n instances: every event is picked at random among the pending ones
/// (any delivery order, callbacks included); each message is lost with
/// probability `loss_percent`%. Automatic instances arm at the start.
fn simulate(n: u64, m: u64, seed: u64, loss_percent: u64, echo: bool) -> Run {
    let mut rng = Rng(seed);
    let secrets: Vec<u64> = (0..n).map(|_| rng.below(m)).collect();
    let mut protos: Vec<Protocol> = (1..=n)
        .map(|i| Protocol::new(i, n, m, secrets[i as usize - 1]).unwrap())
        .collect();
    let mut pending: Vec<Event> = (1..=n)
        .flat_map(|i| [Event::ShareLocal(i), Event::ShareSubsetSum(i)])
        .collect();
    let mut run = Run {
        protos: Vec::new(),
        secrets,
        lost_local: BTreeSet::new(),
        got_sum: BTreeSet::new(),
        broadcasts: vec![0; n as usize],
    };
    while !pending.is_empty() {
        let e = pending.swap_remove(rng.below(pending.len() as u64) as usize);
        let at = match e {
            Event::ShareLocal(i) | Event::ShareSubsetSum(i) => i,
            Event::Local { to, .. } | Event::Sum { to, .. } => to,
        };
        let p = &mut protos[at as usize - 1];
        match e {
            Event::ShareLocal(_) => {
                p.share_local(|b| rng.below(b));
            }
            Event::ShareSubsetSum(_) => {
                p.share_subset_sum();
            }
            Event::Local { from, to, value } => {
                assert_eq!(
                    p.receive_local_share(from, share(from, m, value)),
                    Receipt::Accepted
                );
                let _ = to;
            }
            Event::Sum { from, to, value } => {
                let r = p.receive_subset_sum(key(from), share(from, m, value));
                if from == to {
                    assert_eq!(r, Receipt::OwnEcho);
                } else {
                    assert_eq!(r, Receipt::Accepted);
                    run.got_sum.insert((from, to));
                }
            }
        }
        while let Some(a) = p.poll_action() {
            match a {
                Action::SendLocalShare { to, value } => {
                    if rng.below(100) < loss_percent {
                        run.lost_local.insert((at, to));
                    } else {
                        pending.push(Event::Local {
                            from: at,
                            to,
                            value,
                        });
                    }
                }
                Action::BroadcastSubsetSum { value } => {
                    run.broadcasts[at as usize - 1] += 1;
                    for to in 1..=n {
                        if (to == at && !echo) || rng.below(100) < loss_percent {
                            continue;
                        }
                        pending.push(Event::Sum {
                            from: at,
                            to,
                            value,
                        });
                    }
                }
            }
        }
    }
    run.protos = protos;
    run
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any delivery order of all messages and callbacks gives every instance
    /// the sum of all secrets, and each instance broadcasts exactly once.
    #[test]
    fn any_delivery_order_gives_the_right_total(
        n in 2u64..=12,
        m in prop_oneof![Just(DEFAULT_MODULUS), Just(1000u64), Just(2u64), Just(1u64 << 63), 2u64..=u64::MAX],
        seed in any::<u64>(),
        echo in any::<bool>(),
    ) {
        let run = simulate(n, m, seed, 0, echo);
        let want = reference_sum(&run.secrets, m);
        for p in &run.protos {
            prop_assert_eq!(p.total(), Ok(want));
        }
        prop_assert!(run.broadcasts.iter().all(|&b| b == 1));
    }

    /// Any subset of lost messages gives each instance either the right
    /// total or a report naming exactly the instances whose messages it
    /// did not get.
    #[test]
    fn lost_messages_give_the_right_total_or_name_exactly_the_missing(
        n in 2u64..=12,
        seed in any::<u64>(),
        loss in 0u64..=60,
    ) {
        let m = DEFAULT_MODULUS;
        let run = simulate(n, m, seed, loss, false);
        let want = reference_sum(&run.secrets, m);
        for p in &run.protos {
            let j = p.me();
            let local: Vec<u64> = (1..=n)
                .filter(|&i| run.lost_local.contains(&(i, j)))
                .collect();
            let sums: Vec<u64> = (1..=n)
                .filter(|&i| i != j && !run.got_sum.contains(&(i, j)))
                .collect();
            match p.total() {
                Ok(t) => {
                    prop_assert!(local.is_empty() && sums.is_empty());
                    prop_assert_eq!(t, want);
                }
                Err(missing) => {
                    prop_assert_eq!(&missing.local_shares, &local);
                    prop_assert_eq!(&missing.subset_sums, &sums);
                    prop_assert!(missing.other_modulus.is_empty() && missing.conflicts.is_empty());
                    prop_assert!(!missing.is_empty());
                }
            }
        }
    }
}
