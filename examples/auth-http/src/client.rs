//! Who is calling: the client's address as the core should count it, and its user agent.

use std::net::IpAddr;

use auth_core::ClientInfo;

/// How a request's client is told apart: its TCP peer address, or, when that peer is the
/// one reverse proxy the application trusts, the address the proxy put in
/// `X-Forwarded-For`. Rate limits count per client, so this decides who shares a limit.
///
/// ```
/// use auth_http::ClientAddressing;
///
/// let direct = ClientAddressing::peer_only();
/// let client = direct.client("203.0.113.9".parse().unwrap(), Some("6.6.6.6"), Some("curl/8"));
/// // Nobody's X-Forwarded-For is believed without a trusted proxy.
/// assert_eq!(client.ip(), "203.0.113.9".parse().ok());
///
/// let proxied = ClientAddressing::behind_proxy("10.0.0.1".parse().unwrap());
/// let client = proxied.client("10.0.0.1".parse().unwrap(), Some("6.6.6.6, 203.0.113.9"), None);
/// assert_eq!(client.ip(), "203.0.113.9".parse().ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientAddressing {
    trusted_proxy: Option<IpAddr>,
}

impl ClientAddressing {
    /// The TCP peer is the client (the default): no forwarding header is believed.
    pub fn peer_only() -> Self {
        Self { trusted_proxy: None }
    }

    /// Requests from `proxy` are counted under the address it appended to
    /// `X-Forwarded-For`; requests from anyone else under their own address.
    pub fn behind_proxy(proxy: IpAddr) -> Self {
        Self {
            trusted_proxy: Some(proxy),
        }
    }

    /// The trusted proxy, if any.
    pub fn trusted_proxy(&self) -> Option<IpAddr> {
        self.trusted_proxy
    }

    /// The client of a request from `peer` with this last `X-Forwarded-For` line and
    /// `User-Agent`. Behind the proxy, unreadable forwarding is an unknown client rather
    /// than the proxy itself, which would put every client in one rate-limit bucket.
    pub fn client(&self, peer: IpAddr, last_forwarded_for: Option<&str>, user_agent: Option<&str>) -> ClientInfo {
        ClientInfo::new(
            user_agent,
            client_ip(Some(peer), self.trusted_proxy, last_forwarded_for),
        )
    }
}

/// The client's IP as the core should see it: the TCP peer's, or, when the peer is the
/// trusted proxy, the last entry of the last `X-Forwarded-For` line (the one the proxy
/// appended; anything before it came from the client). Behind the proxy, unreadable
/// forwarding is an unknown client, not the proxy itself (which would put every client
/// in one rate-limit bucket). Accepts `ip`, `ip:port` and `[ipv6]:port`.
pub(crate) fn client_ip(
    peer: Option<IpAddr>,
    trusted_proxy: Option<IpAddr>,
    last_forwarded_for: Option<&str>,
) -> Option<IpAddr> {
    match (peer, trusted_proxy) {
        (Some(peer), Some(proxy)) if peer == proxy => {
            let entry = last_forwarded_for?.rsplit(',').next()?.trim();
            entry
                .parse::<IpAddr>()
                .ok()
                .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|addr| addr.ip()))
        }
        (peer, _) => peer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_proxys_own_x_forwarded_for_entry_is_believed() {
        let proxy: Option<IpAddr> = "10.0.0.1".parse().ok();
        let ip = |line: Option<&str>| client_ip(proxy, proxy, line);
        assert_eq!(ip(None), None);
        assert_eq!(ip(Some("198.51.100.1, 203.0.113.9")), "203.0.113.9".parse().ok());
        assert_eq!(ip(Some("[2001:db8::1]:4711")), "2001:db8::1".parse().ok());
        assert_eq!(ip(Some("203.0.113.9:80")), "203.0.113.9".parse().ok());
        assert_eq!(ip(Some("garbage")), None);
        let stranger: Option<IpAddr> = "192.0.2.7".parse().ok();
        assert_eq!(client_ip(stranger, proxy, Some("203.0.113.9")), stranger);
        assert_eq!(client_ip(stranger, None, Some("203.0.113.9")), stranger);
    }
}
