//! The simulated driver's NATs: the NAT box each instance's `nat` type
//! gives it on the simulated network (`peerlab_netsim::nat`, exact
//! RFC 4787 mapping and filtering), and its public address.
//!
//! Owns: the translation of lang's typed NAT behaviour into the network
//! simulator's, and the public IP of instance `id`'s NAT
//! (`100.64.0.0/10`, the shared address space of carrier-grade NATs; the
//! instances' own addresses are `10.0.0.0/8`). Must not: model a NAT
//! itself or touch the instance's state.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use peerlab_lang::NatType;
use peerlab_lang::nat::Dependence as LangDependence;
use peerlab_netsim::nat::{Dependence, NatBox, NatModel};

/// The public IP address of instance `id`'s NAT.
pub fn public_ip(id: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x6440_0000u32 + (id & 0x003f_ffff)))
}

/// The NAT box of instance `id` behind a NAT of type `nat`; `None` for no NAT.
pub fn nat_box(id: u32, nat: NatType, timeout: Duration) -> Option<NatBox> {
    let (mapping, filtering) = nat.behaviour()?;
    let dep = |d| match d {
        LangDependence::EndpointIndependent => Dependence::EndpointIndependent,
        LangDependence::AddressDependent => Dependence::AddressDependent,
        LangDependence::AddressAndPortDependent => Dependence::AddressAndPortDependent,
    };
    let model = NatModel {
        mapping: dep(mapping),
        filtering: dep(filtering),
        timeout,
    };
    Some(NatBox::new(model, public_ip(id)))
}
