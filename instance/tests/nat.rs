//! The real driver's NAT filter (instance/src/nat.rs): each type lets in
//! what its RFC 4787 filtering says, and only until `nat_timeout` after the
//! last datagram out. (Here, not in the crate: the crate reads no clock.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use peerlab_instance::nat::{NatFilter, describe};
use peerlab_lang::NatType;

#[test]
fn each_type_lets_in_what_its_filtering_says_until_the_timeout() {
    let t0 = Instant::now();
    let peer = SocketAddr::from(([127, 0, 0, 1], 7001));
    let same_ip = SocketAddr::from(([127, 0, 0, 1], 7002));
    let other = SocketAddr::from(([127, 0, 0, 2], 7001));
    let t = Duration::from_secs(10);
    assert!(NatFilter::new(NatType::None, t).is_none());
    let verdicts = |nat: NatType| {
        let mut f = NatFilter::new(nat, t).unwrap();
        let before = f.allows(t0, peer);
        f.outbound(t0, peer);
        let late = f.allows(t0 + t, peer);
        [
            before,
            f.allows(t0, peer),
            f.allows(t0, same_ip),
            f.allows(t0, other),
            late,
        ]
    };
    assert_eq!(
        verdicts(NatType::FullCone),
        [false, true, true, true, false]
    );
    assert_eq!(
        verdicts(NatType::RestrictedCone),
        [false, true, true, false, false]
    );
    for nat in [NatType::PortRestrictedCone, NatType::Symmetric] {
        assert_eq!(verdicts(nat), [false, true, false, false, false], "{nat:?}");
    }
    assert_eq!(
        describe(NatType::Symmetric, t).unwrap(),
        "nat=symmetric mapping=address_and_port_dependent filtering=address_and_port_dependent timeout=10s"
    );
}
