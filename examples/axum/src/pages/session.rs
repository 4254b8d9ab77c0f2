//! The pages' cookies and the forms' CSRF defence.
//!
//! - The session cookie holds a browser-session token (`bs_` and 256 random bits,
//!   `HttpOnly`, `SameSite=Lax`, and `Secure` with the `__Host-` prefix when
//!   `AUTH_PUBLIC_URL` is HTTPS) that the store keeps hashed and maps to the account's
//!   session (`auth_core::BrowserSessionStore`): the browser holds no access or refresh
//!   token, any instance over the same store serves it, and a restart signs nobody out.
//!   Every sign-in issues a new one (no session fixation).
//! - Every form carries a CSRF token: an HMAC, under a key derived from `SECRET_KEY`, of
//!   a nonce kept in a second cookie and of the browser's session cookie while it is
//!   live. Over plain HTTP a network attacker can plant any cookie (only the `__Host-`
//!   prefix forbids it), so a plain double submit (field = cookie) would let it choose
//!   both; it cannot compute the MAC. Every form POST must also come from this site by
//!   its `Origin` and `Sec-Fetch-Site` headers, when the browser sends them: that refuses
//!   a genuine anonymous token the attacker fetched for itself and replays from its page.

use auth_http::ErrorAnswer;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use hmac::{Hmac, KeyInit, Mac};
use serde::de::DeserializeOwned;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::AppState;
use auth_axum::{ApiError, body_bytes};

/// The pages' cookies, and the key of their CSRF tokens. The sessions themselves are the
/// store's (`auth_core`'s browser sessions): any instance serves any browser.
#[derive(Clone)]
pub(crate) struct PageCookies {
    secure: bool,
    /// Keys the CSRF tokens: the same on every instance that shares `SECRET_KEY`, so a
    /// form shown by one is accepted by another.
    csrf_key: Hmac<Sha256>,
    /// `AUTH_PUBLIC_URL`'s origin (see [`origin_of`]), which a form's `Origin` may be.
    public_origin: Option<String>,
}

impl PageCookies {
    /// The cookies of a site at `public_url`, their CSRF tokens keyed by `key`.
    pub(crate) fn new(secure: bool, public_url: &str, key: &[u8; 32]) -> std::io::Result<Self> {
        let csrf_key = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|error| std::io::Error::other(format!("page CSRF key: {error}")))?;
        Ok(Self {
            secure,
            csrf_key,
            public_origin: origin_of(public_url),
        })
    }

    pub(super) fn session_cookie(&self) -> &'static str {
        if self.secure { "__Host-session" } else { "session" }
    }

    pub(super) fn csrf_cookie(&self) -> &'static str {
        if self.secure { "__Host-csrf" } else { "csrf" }
    }

    /// The form token for the CSRF cookie's `nonce`: HMAC(key, nonce ‖ 0 ‖ binding),
    /// hex. The binding is the browser's session cookie while it names a live session
    /// (`live`), so a token taken from one session's page is worthless in another's, and
    /// a fixed label otherwise (the register and sign-in pages). A session cookie naming
    /// no live session (planted, or ended) binds as anonymous: what an attacker may toss
    /// in beside its own nonce changes nothing, and a sign-in form shown beside a stale
    /// cookie still works.
    fn csrf_token(&self, nonce: &str, live: Option<&str>) -> String {
        let mut mac = self.csrf_key.clone();
        mac.update(nonce.as_bytes());
        // Cookie values never hold a NUL: nonce and binding cannot run into each other.
        mac.update(&[0]);
        match live {
            // "session=" keeps a cookie from ever spelling the anonymous label.
            Some(cookie) => {
                mac.update(b"session=");
                mac.update(cookie.as_bytes());
            }
            None => mac.update(b"anonymous"),
        }
        hex(&mac.finalize().into_bytes())
    }

    pub(super) fn cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let age = max_age.map_or(String::new(), |age| format!("; Max-Age={age}"));
        HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{age}"))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // Without randomness no session can be safe: this one will never match a cookie.
        return String::new();
    }
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The origin of `url` as browsers serialize it in `Origin`: `scheme://host[:port]`,
/// lowercase, without a default port (`:80` on http, `:443` on https); `None` for any
/// other scheme or no host. Path, query and user info are dropped.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix(default_port).unwrap_or(&host);
    if host.is_empty() || host.starts_with(':') {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

/// The value of the cookie `name` in the request's `Cookie` headers (the API's parser).
pub(super) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| auth_http::headers::cookie(value, name))
        .map(str::to_owned)
}

/// The nonce in this browser's CSRF cookie, if it holds one of the length this server
/// gives (a planted one of that length passes here: it still needs its MAC).
fn csrf_nonce(sessions: &PageCookies, headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, sessions.csrf_cookie()).filter(|nonce| nonce.len() == 64)
}

/// The CSRF token for this browser's forms, bound to its live session cookie `live` if
/// any, and the cookie to set if it had no nonce.
pub(super) fn csrf(sessions: &PageCookies, headers: &HeaderMap, live: Option<&str>) -> (String, Option<HeaderValue>) {
    match csrf_nonce(sessions, headers) {
        Some(nonce) => (sessions.csrf_token(&nonce, live), None),
        None => {
            let nonce = random_token();
            let cookie = sessions.cookie(sessions.csrf_cookie(), &nonce, None);
            (sessions.csrf_token(&nonce, live), Some(cookie))
        }
    }
}

/// Whether `submitted` is the token of the browser's nonce and live session cookie,
/// compared in constant time (a timing difference would let the MAC be guessed byte by
/// byte).
fn csrf_ok(sessions: &PageCookies, headers: &HeaderMap, live: Option<&str>, submitted: &str) -> bool {
    csrf_nonce(sessions, headers).is_some_and(|nonce| {
        let expected = sessions.csrf_token(&nonce, live);
        bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
    })
}

/// Whether the browser says the form was sent from this site.
///
/// - `Sec-Fetch-Site`, when sent, must be `same-origin` or `none` (the person's own
///   navigation); `same-site` is refused too: a sibling subdomain is another site's code.
/// - `Origin`, when sent, must not be `null` (a sandboxed or `data:` page) and must be the
///   public URL's origin or the address the browser itself used (`Host`), so local runs on
///   the default public URL, or on a test address, still work. The `Host` fallback takes
///   either scheme: this server speaks plain HTTP, but a TLS proxy in front of it may pass
///   the Host through. It opens nothing to a foreign page: a browser's `Host` is always the
///   target's, so only a page of this very host could match it.
/// - Without either header (older browsers and non-browser clients) the MAC alone decides.
fn same_origin(sessions: &PageCookies, headers: &HeaderMap) -> bool {
    let site_ok = headers
        .get_all("sec-fetch-site")
        .iter()
        .all(|site| matches!(site.as_bytes(), b"same-origin" | b"none"));
    let host = headers.get(header::HOST).and_then(|host| host.to_str().ok());
    let origin_ok = headers.get_all(header::ORIGIN).iter().all(|origin| {
        let Some(origin) = origin.to_str().ok().and_then(origin_of) else {
            return false;
        };
        sessions.public_origin.as_deref() == Some(origin.as_str())
            || host.is_some_and(|host| {
                ["http", "https"]
                    .iter()
                    .any(|scheme| origin_of(&format!("{scheme}://{host}")).as_deref() == Some(origin.as_str()))
            })
    });
    site_ok && origin_ok
}

/// Whether a state-changing form POST may act: from this site, with its genuine token
/// (bound to the live session cookie `live`, if any).
pub(super) fn genuine(sessions: &PageCookies, headers: &HeaderMap, live: Option<&str>, submitted: &str) -> bool {
    if !same_origin(sessions, headers) {
        tracing::info!("page form refused: sent from another site");
        return false;
    }
    if !csrf_ok(sessions, headers, live, submitted) {
        tracing::info!("page form refused: no valid CSRF token");
        return false;
    }
    true
}

/// A page form's fields. Axum's `Form` answers a bad body in `text/plain`; a person gets
/// the pages' HTML error page instead, with the status the API gives the same body: 413
/// over the size limit, 408 (closing the connection) past the body timeout, 400 for
/// anything else that is not a well-formed `application/x-www-form-urlencoded` body
/// holding the form's fields.
pub(crate) struct PageForm<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for PageForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (content_type, body) = body_bytes(request, state)
            .await
            .map_err(|ApiError(answer)| super::unreadable(state, &answer))?;
        let bad = || super::unreadable(state, &ErrorAnswer::invalid_request("not a page form"));
        if !is_form(content_type.as_deref()) || !well_encoded(&body) {
            return Err(bad());
        }
        serde_urlencoded::from_bytes(&body).map(Self).map_err(|_| bad())
    }
}

/// `application/x-www-form-urlencoded`, any parameters, any case: what an HTML form sends.
fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Whether every `%` starts an escape of two hex digits and the decoded body is UTF-8.
/// `serde_urlencoded` keeps a broken escape as typed and replaces bytes that are not
/// UTF-8, so a mangled form would otherwise reach a handler as other text than was sent
/// (a password, say). A browser's form always passes.
fn well_encoded(body: &[u8]) -> bool {
    let digit = |byte: Option<&u8>| byte.and_then(|byte| char::from(*byte).to_digit(16));
    let mut decoded = Vec::with_capacity(body.len());
    let mut bytes = body.iter();
    while let Some(&byte) = bytes.next() {
        if byte == b'%' {
            let (Some(high), Some(low)) = (digit(bytes.next()), digit(bytes.next())) else {
                return false;
            };
            // Two hex digits: at most 255.
            decoded.push(u8::try_from(high * 16 + low).unwrap_or(u8::MAX));
        } else {
            decoded.push(byte);
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("xsession=1; session=abc; csrf=def"),
        );
        assert_eq!(cookie_value(&headers, "session").as_deref(), Some("abc"));
        assert_eq!(cookie_value(&headers, "csrf").as_deref(), Some("def"));
        assert_eq!(cookie_value(&headers, "missing"), None);
    }

    #[test]
    fn secure_cookies_use_the_host_prefix() {
        let secure = PageCookies::new(true, "https://auth.example.test", &[1; 32]).unwrap();
        let cookie = secure.cookie(secure.session_cookie(), "v", None);
        assert_eq!(cookie, "__Host-session=v; Path=/; HttpOnly; SameSite=Lax; Secure");
        let local = PageCookies::new(false, "http://127.0.0.1:8000", &[1; 32]).unwrap();
        assert_eq!(
            local.cookie(local.csrf_cookie(), "v", Some(0)),
            "csrf=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        );
    }

    #[test]
    fn origins_are_scheme_host_and_port_without_the_default_port() {
        assert_eq!(
            origin_of("https://Auth.Example.Test").as_deref(),
            Some("https://auth.example.test")
        );
        assert_eq!(
            origin_of("https://auth.example.test:443/app?x#y").as_deref(),
            Some("https://auth.example.test")
        );
        assert_eq!(origin_of("http://127.0.0.1:80").as_deref(), Some("http://127.0.0.1"));
        assert_eq!(
            origin_of("http://127.0.0.1:443").as_deref(),
            Some("http://127.0.0.1:443")
        );
        assert_eq!(
            origin_of("https://user@[::1]:8443").as_deref(),
            Some("https://[::1]:8443")
        );
        for not_an_origin in ["null", "ftp://example.test", "https://", "https://:443", "example.test"] {
            assert_eq!(origin_of(not_an_origin), None, "{not_an_origin}");
        }
    }

    fn with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn forms_must_come_from_the_public_origin_or_the_addressed_host() {
        let sessions = PageCookies::new(false, "https://auth.example.test", &[1; 32]).unwrap();
        let host = ("host", "127.0.0.1:8000");
        for accepted in [
            vec![host],
            vec![host, ("sec-fetch-site", "same-origin")],
            vec![host, ("sec-fetch-site", "none")],
            vec![host, ("origin", "https://auth.example.test")],
            vec![host, ("origin", "http://127.0.0.1:8000")],
            vec![host, ("origin", "https://127.0.0.1:8000")],
            vec![("origin", "https://auth.example.test")],
        ] {
            assert!(same_origin(&sessions, &with(&accepted)), "{accepted:?}");
        }
        for refused in [
            vec![host, ("sec-fetch-site", "cross-site")],
            vec![host, ("sec-fetch-site", "same-site")],
            vec![
                host,
                ("sec-fetch-site", "same-origin"),
                ("sec-fetch-site", "cross-site"),
            ],
            vec![host, ("origin", "null")],
            vec![host, ("origin", "https://evil.example")],
            vec![host, ("origin", "http://auth.example.test")],
            vec![host, ("origin", "http://127.0.0.1:8001")],
            vec![("origin", "http://127.0.0.1:8000")],
            vec![
                host,
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ],
        ] {
            assert!(!same_origin(&sessions, &with(&refused)), "{refused:?}");
        }
    }

    #[test]
    fn the_csrf_token_is_the_mac_of_the_nonce_and_the_session() {
        let sessions = PageCookies::new(false, "http://127.0.0.1:8000", &[1; 32]).unwrap();
        let nonce = "ab".repeat(32);
        let token = sessions.csrf_token(&nonce, None);
        assert_eq!(token.len(), 64);
        assert_ne!(token, nonce);
        assert_eq!(token, sessions.csrf_token(&nonce, None), "deterministic");
        let (first, second) = ("bs_first", "bs_second");
        let first_token = sessions.csrf_token(&nonce, Some(first));
        assert_ne!(token, first_token, "bound to the session");
        assert_ne!(first_token, sessions.csrf_token(&nonce, Some(second)));
        assert_ne!(
            token,
            sessions.csrf_token(&nonce, Some("anonymous")),
            "no cookie spells the label"
        );
        assert_ne!(token, sessions.csrf_token(&"cd".repeat(32), None), "bound to the nonce");
        let same_key = PageCookies::new(false, "http://127.0.0.1:8000", &[1; 32]).unwrap();
        assert_eq!(
            token,
            same_key.csrf_token(&nonce, None),
            "another instance with the key agrees"
        );
        let other_key = PageCookies::new(false, "http://127.0.0.1:8000", &[2; 32]).unwrap();
        assert_ne!(token, other_key.csrf_token(&nonce, None), "keyed");

        let cookie = HeaderValue::from_str(&format!("csrf={nonce}")).unwrap();
        let mut browser = HeaderMap::new();
        browser.insert(header::COOKIE, cookie);
        assert!(csrf_ok(&sessions, &browser, None, &token));
        assert!(
            !csrf_ok(&sessions, &browser, Some(first), &token),
            "not in a session's form"
        );
        assert!(csrf_ok(&sessions, &browser, Some(first), &first_token));
        assert!(
            !csrf_ok(&sessions, &browser, None, &nonce),
            "the cookie's own value is no token"
        );
        assert!(!csrf_ok(&sessions, &browser, None, ""));
        assert!(
            !csrf_ok(&sessions, &HeaderMap::new(), None, &token),
            "no cookie, no token"
        );
    }

    #[test]
    fn page_forms_must_be_urlencoded_and_well_escaped() {
        for form in [
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-URLEncoded; charset=UTF-8",
        ] {
            assert!(is_form(Some(form)), "{form}");
        }
        for other in [None, Some("text/plain"), Some("multipart/form-data; boundary=x")] {
            assert!(!is_form(other), "{other:?}");
        }
        for good in ["", "a=b&c=", "email=a%40b.example&password=%C3%A9t%C3%A9+x", "x=%2a%2A"] {
            assert!(well_encoded(good.as_bytes()), "{good}");
        }
        for bad in ["a=%zz", "a=%4", "a=%", "a=%ff", "a=%C3", "a=%C3=%A9"] {
            assert!(!well_encoded(bad.as_bytes()), "{bad}");
        }
        assert!(!well_encoded(b"a=\xff"), "raw bytes must be UTF-8 too");
    }
}
