//! Headers the API's answers carry besides their own, decided once for every framework.

/// Headers of every token answer: never cached (RFC 6749 §5.1).
pub const TOKEN_HEADERS: [(&str, &str); 2] = [("cache-control", "no-store"), ("pragma", "no-cache")];

/// Header of answers to a page whose URL carried a token: no `Referer` leaks it.
pub const NO_REFERRER: (&str, &str) = ("referrer-policy", "no-referrer");

/// `Strict-Transport-Security` for a site served over HTTPS: one year, this host only (the
/// server cannot know whether every subdomain speaks HTTPS).
pub const HSTS: (&str, &str) = ("strict-transport-security", "max-age=31536000");

/// Headers every answer gets besides its own: `Cache-Control: no-store` when the request
/// carried credentials (an `Authorization` header or a cookie), so no cache keeps an
/// account's data (ASVS 14.3.2), unless the answer set its own; and [`HSTS`] when the site
/// is HTTPS.
///
/// ```
/// use auth_http::headers::response_headers;
///
/// assert_eq!(response_headers(true, false, false), vec![("cache-control", "no-store")]);
/// assert_eq!(response_headers(true, true, false), vec![]);
/// assert_eq!(response_headers(false, false, true), vec![("strict-transport-security", "max-age=31536000")]);
/// ```
pub fn response_headers(
    request_has_credentials: bool,
    answer_sets_cache_control: bool,
    https: bool,
) -> Vec<(&'static str, &'static str)> {
    let mut headers = Vec::new();
    if request_has_credentials && !answer_sets_cache_control {
        headers.push(("cache-control", "no-store"));
    }
    if https {
        headers.push(HSTS);
    }
    headers
}

/// Headers of the answers of `GET /oauth/{provider}/start` and `/callback`: their URL and
/// their `Location` carry a state or a code, which no cache keeps and no `Referer` leaks.
pub const EXTERNAL_LOGIN_HEADERS: [(&str, &str); 2] = [("cache-control", "no-store"), NO_REFERRER];

/// The cookie that binds a sign-in through a provider to the browser that began it, on a
/// site served over HTTPS: `Secure`, and with the `__Host-` prefix, so no other host (a
/// sibling subdomain) and no page over HTTP can set or overwrite it.
pub const SECURE_BINDING_COOKIE: &str = "__Host-auth_oauth";

/// The binding cookie's name on a site served over plain HTTP (local development).
pub const BINDING_COOKIE: &str = "auth_oauth";

/// The binding cookie's name: [`SECURE_BINDING_COOKIE`] on an HTTPS site, else
/// [`BINDING_COOKIE`].
pub fn binding_cookie_name(https: bool) -> &'static str {
    if https { SECURE_BINDING_COOKIE } else { BINDING_COOKIE }
}

/// The `Set-Cookie` value that sets the binding cookie to `value` for `max_age_secs`:
/// `HttpOnly` (no script reads it), `SameSite=Lax` (sent on the provider's top-level
/// redirect back, never on a cross-site subrequest), `Path=/`, and on an HTTPS site
/// `Secure` with the `__Host-` prefix.
///
/// ```
/// use auth_http::headers::set_binding_cookie;
///
/// assert_eq!(
///     set_binding_cookie(true, "eb_x", 600),
///     "__Host-auth_oauth=eb_x; Max-Age=600; Path=/; HttpOnly; Secure; SameSite=Lax"
/// );
/// assert_eq!(set_binding_cookie(false, "eb_x", 600), "auth_oauth=eb_x; Max-Age=600; Path=/; HttpOnly; SameSite=Lax");
/// ```
pub fn set_binding_cookie(https: bool, value: &str, max_age_secs: u64) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!(
        "{}={value}; Max-Age={max_age_secs}; Path=/; HttpOnly{secure}; SameSite=Lax",
        binding_cookie_name(https)
    )
}

/// The `Set-Cookie` value that deletes the binding cookie (`Max-Age=0`), with the same
/// attributes it was set with.
///
/// ```
/// use auth_http::headers::clear_binding_cookie;
///
/// assert_eq!(clear_binding_cookie(false), "auth_oauth=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax");
/// ```
pub fn clear_binding_cookie(https: bool) -> String {
    set_binding_cookie(https, "", 0)
}

/// The value of the cookie `name` in a request's `Cookie` header (`a=1; b=2`; several
/// `Cookie` lines joined with `; `), the first if it is there more than once; `None`
/// without it. Names are compared exactly, as browsers send them; surrounding double
/// quotes are removed (RFC 6265 §4.1.1).
///
/// ```
/// use auth_http::headers::cookie;
///
/// assert_eq!(cookie("theme=dark; __Host-auth_oauth=eb_1", "__Host-auth_oauth"), Some("eb_1"));
/// assert_eq!(cookie("auth_oauth=\"eb_2\"", "auth_oauth"), Some("eb_2"));
/// assert_eq!(cookie("xauth_oauth=eb_3", "auth_oauth"), None);
/// ```
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|value| value.strip_suffix('"'))
                .unwrap_or(value)
        })
    })
}
