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
