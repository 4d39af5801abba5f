//! Which addresses are public: every range that reaches this host, its network or nothing,
//! in every spelling (IPv4-mapped, compatible, NAT64 and 6to4 forms judged by what they embed).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an IPv4 address is not public, or `None` when it is.
fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "\"this network\" (0.0.0.0/8)",
        (10, _, _) => "RFC 1918",
        (100, b, _) if b & 0xc0 == 64 => "shared address space, CGNAT",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local",
        (172, b, _) if b & 0xf0 == 16 => "RFC 1918",
        (192, 0, 0) => "IETF protocol assignments",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay anycast",
        (192, 168, _) => "RFC 1918",
        (198, b, _) if b & 0xfe == 18 => "benchmarking",
        (224..=239, _, _) => "multicast",
        _ if ip.is_broadcast() => "broadcast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

/// Why an IPv6 address is not public, or `None` when it is. Forms that embed an IPv4 address
/// (mapped, compatible, NAT64, 6to4) are judged by the address they embed.
fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if s[..6] == [0; 6] {
        // ::a.b.c.d, deprecated; nothing legitimate uses it any more.
        return Some(forbidden_v4(embedded(s[6], s[7])).unwrap_or("IPv4-compatible (deprecated)"));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64, well-known prefix: it reaches what it embeds.
        return forbidden_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 6to4: the relay reaches the embedded address.
        return forbidden_v4(embedded(s[1], s[2]));
    }
    Some(match s[0] {
        0x64 if s[1] == 0xff9b && s[2] == 1 => "NAT64 local use",
        0x100 if s[1..4] == [0, 0, 0] => "discard-only",
        // 2001::/23 holds Teredo (whose embedded address is obfuscated), benchmarking, ORCHID.
        0x2001 if s[1] < 0x200 => "IETF protocol assignments",
        0x2001 if s[1] == 0xdb8 => "documentation",
        0x3fff if s[1] < 0x1000 => "documentation",
        x if x & 0xfe00 == 0xfc00 => "unique local",
        x if x & 0xffc0 == 0xfe80 => "link-local",
        x if x & 0xffc0 == 0xfec0 => "site-local (deprecated)",
        x if x & 0xff00 == 0xff00 => "multicast",
        // Only 2000::/3 is allocated for global unicast.
        x if x & 0xe000 != 0x2000 => "reserved",
        _ => return None,
    })
}

/// Why `ip` is not a public address, or `None` when it is.
pub(super) fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}
