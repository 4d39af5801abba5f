//! The client's address: the TCP peer, or the client a trusted proxy names in `X-Forwarded-For`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

use super::HttpState;
use crate::platform::rate_limit::ClientAddr;

/// The client of a request. A router served without connect info (there is none in this
/// codebase, but a test could build one) puts every client at 0.0.0.0, in one bucket.
pub fn client_addr(extensions: &Extensions, headers: &HeaderMap, trusted: &[IpNet]) -> ClientAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    ClientAddr(forwarded_client(peer.to_canonical(), headers, trusted))
}

/// Walks `X-Forwarded-For` from the right while the hop that wrote each entry is trusted: the
/// first untrusted address is the client. Anything left of it was written by the client itself
/// and could say anything; a peer that is not a trusted proxy is the client whatever it sends.
fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop a trusted proxy wrote that is not an address: nothing left of it can be
        // believed, so the proxy that wrote it is the client we know.
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// The client of a request, for handlers.
pub struct Client(pub ClientAddr);

impl FromRequestParts<HttpState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(client_addr(
            &parts.extensions,
            &parts.headers,
            &state.app.config.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::BROADCAST))
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().filter_map(|n| n.parse().ok()).collect()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            if let Ok(value) = value.parse() {
                map.append("x-forwarded-for", value);
            }
        }
        map
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let got = forwarded_client(ip("203.0.113.9"), &headers(&["1.2.3.4"]), &[]);
        assert_eq!(got, ip("203.0.113.9"));
        let trusted = nets(&["10.0.0.0/8"]);
        let got = forwarded_client(ip("203.0.113.9"), &headers(&["1.2.3.4"]), &trusted);
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client claims 6.6.6.6 itself; the edge proxy appended what it saw.
        let forwarded = headers(&["6.6.6.6, 198.51.100.7", "10.1.1.1"]);
        let got = forwarded_client(ip("10.0.0.2"), &forwarded, &trusted);
        assert_eq!(got, ip("198.51.100.7"));
        // All hops trusted: the left-most is as far as anyone can tell.
        let got = forwarded_client(ip("10.0.0.2"), &headers(&["10.9.9.9"]), &trusted);
        assert_eq!(got, ip("10.9.9.9"));
        // No header: the proxy itself.
        let got = forwarded_client(ip("10.0.0.2"), &HeaderMap::new(), &trusted);
        assert_eq!(got, ip("10.0.0.2"));
        // Garbage written by the client beyond a trusted hop stops the walk at the last address.
        let got = forwarded_client(ip("10.0.0.2"), &headers(&["nonsense, 10.3.3.3"]), &trusted);
        assert_eq!(got, ip("10.3.3.3"));
    }
}
