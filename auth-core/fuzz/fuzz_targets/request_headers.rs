//! The request headers the servers read before anything else: `Authorization: Bearer`,
//! `Cookie` and `X-Forwarded-For` (with a `User-Agent`).
//!
//! Invariants: never panics; a bearer token is non-empty, has no whitespace and is the end
//! of the header after a `Bearer` scheme; a cookie's value lies inside the header and never
//! spans pairs; `X-Forwarded-For` is believed only from the trusted proxy (a stranger is
//! always its own address); a user agent keeps no control character.

#![no_main]

use std::net::IpAddr;

use auth_core::bearer_token;
use auth_http::ClientAddressing;
use auth_http::headers::cookie;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    // Three header values, separated by newlines (which no header value holds).
    let mut values = input.splitn(3, '\n');
    let first = values.next().unwrap_or("");
    let second = values.next();
    let third = values.next();

    if let Some(token) = bearer_token(first) {
        assert!(!token.is_empty() && !token.contains(char::is_whitespace));
        let trimmed = first.trim();
        assert!(trimmed.ends_with(token));
        let scheme = trimmed[..trimmed.len() - token.len()].trim_end();
        assert!(scheme.eq_ignore_ascii_case("bearer"), "scheme {scheme:?}");
    }

    for name in ["__Host-auth_oauth", "auth_oauth", "auth_session", ""] {
        if let Some(value) = cookie(first, name) {
            assert!(!value.contains(';'));
            let start = value.as_ptr() as usize - first.as_ptr() as usize;
            assert!(start + value.len() <= first.len(), "the value lies inside the header");
        }
    }

    let proxy: IpAddr = "10.0.0.1".parse().unwrap();
    let stranger: IpAddr = "192.0.2.7".parse().unwrap();
    let behind = ClientAddressing::behind_proxy(proxy);
    let client = behind.client(stranger, second, third);
    assert_eq!(
        client.ip(),
        Some(stranger),
        "a stranger's X-Forwarded-For is never believed"
    );
    let forwarded = behind.client(proxy, second, third);
    if forwarded.ip().is_some() {
        assert!(second.is_some(), "behind the proxy, an address only from the header");
    }
    for client in [
        client,
        forwarded,
        ClientAddressing::peer_only().client(proxy, second, third),
    ] {
        if let Some(agent) = client.user_agent() {
            assert!(!agent.chars().any(char::is_control) && !agent.trim().is_empty());
        }
    }
});
