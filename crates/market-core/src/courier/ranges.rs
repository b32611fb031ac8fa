//! Which addresses are not public: the IPv4 and IPv6 ranges a webhook may never be sent to,
//! each with the words a seller reads when their URL lands in one.
//!
//! Written as tables rather than `Ipv4Addr::is_private` and friends: the standard library's
//! `is_global` is still unstable, and the stable predicates leave out ranges an attacker wants
//! (carrier-grade NAT, 198.18/15, NAT64). An IPv6 address that carries an IPv4 one
//! (`::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is judged by the IPv4 address
//! inside, since that is where the packets end up.

use std::net::{IpAddr, Ipv4Addr};

/// What kind of non-public address `ip` is, or `None` when it is public.
pub(super) fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match (ip, embedded_v4(ip)) {
        (_, Some(v4)) | (IpAddr::V4(v4), None) => v4_kind(u32::from(v4)),
        (IpAddr::V6(v6), None) => v6_kind(u128::from(v6)),
    }
}

/// The IPv4 address an IPv6 one carries to an IPv4 host: mapped (`::ffff:a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`) or 6to4 (`2002:aabb:ccdd::`).
pub(super) fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let bits = u128::from(v6);
    let low32 = |bits: u128| u32::try_from(bits & u128::from(u32::MAX)).ok();
    if in_v6(bits, 0xffff_0000_0000, 96) || in_v6(bits, 0x0064_ff9b << 96, 96) {
        return low32(bits).map(Ipv4Addr::from);
    }
    if in_v6(bits, 0x2002 << 112, 16) {
        return low32(bits >> 80).map(Ipv4Addr::from);
    }
    None
}

/// Refused IPv4 networks, most specific first: (network, prefix length, what it is).
const V4: &[([u8; 4], u32, &str)] = &[
    ([0, 0, 0, 0], 32, "an unspecified address"),
    ([0, 0, 0, 0], 8, "a \"this network\" address (0.0.0.0/8)"),
    ([127, 0, 0, 0], 8, "a loopback address"),
    ([10, 0, 0, 0], 8, "a private address"),
    ([172, 16, 0, 0], 12, "a private address"),
    ([192, 168, 0, 0], 16, "a private address"),
    ([100, 64, 0, 0], 10, "a shared (carrier-grade NAT) address"),
    ([169, 254, 169, 254], 32, "the cloud metadata address"),
    ([169, 254, 0, 0], 16, "a link-local address"),
    (
        [192, 0, 0, 0],
        24,
        "an IETF protocol address (192.0.0.0/24)",
    ),
    ([192, 0, 2, 0], 24, "a documentation address"),
    ([198, 51, 100, 0], 24, "a documentation address"),
    ([203, 0, 113, 0], 24, "a documentation address"),
    ([192, 88, 99, 0], 24, "a 6to4 relay address"),
    ([198, 18, 0, 0], 15, "a benchmarking address"),
    ([224, 0, 0, 0], 4, "a multicast address"),
    ([255, 255, 255, 255], 32, "the broadcast address"),
    ([240, 0, 0, 0], 4, "a reserved address (240.0.0.0/4)"),
];

/// Refused IPv6 networks (those carrying IPv4 addresses are judged by them instead).
const V6: &[(u128, u32, &str)] = &[
    (0, 128, "an unspecified address"),
    (1, 128, "a loopback address"),
    (0, 96, "an IPv4-compatible address (deprecated)"),
    (0x0064_ff9b_0001 << 80, 48, "a local-use NAT64 address"),
    (0x0100 << 112, 64, "a discard-only address"),
    (0x2001_0002 << 96, 48, "a benchmarking address"),
    (0x2001_0db8 << 96, 32, "a documentation address"),
    (0xfc00 << 112, 7, "a unique-local address"),
    (0xfe80 << 112, 10, "a link-local address"),
    (0xfec0 << 112, 10, "a site-local address"),
    (0xff00 << 112, 8, "a multicast address"),
];

fn v4_kind(ip: u32) -> Option<&'static str> {
    V4.iter()
        .find(|(net, prefix, _)| {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            ip & mask == u32::from(Ipv4Addr::from(*net)) & mask
        })
        .map(|(_, _, kind)| *kind)
}

fn v6_kind(ip: u128) -> Option<&'static str> {
    V6.iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map(|(_, _, kind)| *kind)
}

fn in_v6(ip: u128, net: u128, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    ip & mask == net & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn every_non_public_range_is_refused_and_public_addresses_pass() {
        let refused = "\
            0.0.0.0 0.1.2.3 127.0.0.1 127.255.255.254 10.1.2.3 172.16.0.1 172.31.255.255 \
            192.168.1.1 100.64.0.1 100.127.255.255 169.254.169.254 169.254.1.1 192.0.0.8 \
            192.0.2.1 198.51.100.7 203.0.113.9 198.18.0.1 198.19.255.255 224.0.0.1 \
            239.255.255.250 240.0.0.1 255.255.255.255 :: ::1 ::ffff:127.0.0.1 ::ffff:10.0.0.5 \
            ::ffff:169.254.169.254 64:ff9b::a00:5 64:ff9b::7f00:1 2002:7f00:1::1 ::127.0.0.1 \
            fe80::1 febf::1 fec0::1 fc00::1 fd12:3456::1 ff02::1 2001:db8::1 100::1 \
            64:ff9b:1::1 ";
        for text in refused.split_whitespace() {
            assert!(refused_kind(ip(text)).is_some(), "{text} was let through");
        }
        let public = "\
            1.1.1.1 8.8.8.8 172.32.0.1 172.15.255.255 100.128.0.1 198.20.0.1 93.184.216.34 \
            2606:4700:4700::1111 2a00:1450:4001::200e ::ffff:8.8.8.8 64:ff9b::808:808 ";
        for text in public.split_whitespace() {
            assert_eq!(refused_kind(ip(text)), None, "{text} was refused");
        }
    }
}
