//! Cross-origin access to the API (`AUTH_CORS_ORIGINS`), decided once here and applied by
//! each server with its framework's CORS middleware (tower-http's `CorsLayer` on Axum,
//! `actix-cors` on Actix).

use std::time::Duration;

/// The methods the API's routes take beyond the CORS-safelisted ones (`PUT` for roles,
/// `DELETE` for sessions), with `GET` and `POST`.
pub const CORS_METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// The request headers a cross-origin script may send: the bearer token and a JSON body's
/// type.
pub const CORS_REQUEST_HEADERS: [&str; 2] = ["authorization", "content-type"];

/// Response headers a cross-origin script may read beyond the safelisted ones: when to
/// retry after a 429 or 503, and the challenge of a 401.
pub const CORS_EXPOSED_HEADERS: [&str; 2] = ["retry-after", "www-authenticate"];

/// How long a browser may reuse a preflight's answer (`Access-Control-Max-Age`): ten
/// minutes, within every browser's own cap (Chromium's is two hours), so a change of the
/// list reaches browsers soon.
pub const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// The origins whose scripts may call the API with credentials (`AUTH_CORS_ORIGINS`):
/// exact origins only, each as a browser sends it in `Origin` (scheme, host, port; no
/// path). Requests from any other origin are served as before, without CORS headers, so
/// browsers keep their answers from the scripts that asked.
///
/// ```
/// use example_server::CorsPolicy;
///
/// let policy = CorsPolicy::parse("https://app.example.com, http://localhost:5173").unwrap();
/// assert_eq!(policy.origins(), ["https://app.example.com", "http://localhost:5173"]);
/// assert!(policy.allows("http://localhost:5173"));
/// assert!(!policy.allows("https://evil.example.com"));
/// assert!(CorsPolicy::parse("*").is_err(), "no wildcard: credentials are allowed");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    origins: Vec<String>,
}

impl CorsPolicy {
    /// Reads a comma-separated list of origins. Each is normalized as browsers serialize
    /// origins (lowercase scheme and host, an IDN host in its ASCII form, no default port),
    /// so `https://App.Example.com:443` matches the `Origin` `https://app.example.com`.
    ///
    /// # Errors
    ///
    /// A message naming the entry: `*` or any wildcard (a credentialed API lists its
    /// origins), `null` (sandboxed and `file:` documents share it), a scheme other than
    /// `http` or `https`, a path, query, fragment or user name, or an empty list.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut origins: Vec<String> = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let origin = parse_origin(entry)?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        if origins.is_empty() {
            return Err("lists no origin (e.g. https://app.example.com)".to_owned());
        }
        Ok(Self { origins })
    }

    /// The allowed origins, normalized.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// Whether a request's `Origin` header value is allowed: byte for byte one of the list.
    pub fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|allowed| allowed == origin)
    }
}

fn parse_origin(entry: &str) -> Result<String, String> {
    if entry.contains('*') {
        return Err(format!(
            "{entry:?}: wildcards are refused; list each origin exactly (https://app.example.com), \
             since a listed origin's scripts may call the API with credentials"
        ));
    }
    if entry.eq_ignore_ascii_case("null") {
        return Err("\"null\" is refused: sandboxed frames and local files all send it, so it names no one".to_owned());
    }
    let url = url::Url::parse(entry).map_err(|error| format!("{entry:?} is not an origin: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{entry:?}: the scheme must be http or https"));
    }
    // `Url` adds the root path itself; an entry written with a path, even `/`, is not an
    // origin as a browser sends it.
    let after_authority = entry.split_once("://").map_or("", |(_, rest)| rest);
    if after_authority.contains(['/', '?', '#']) || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{entry:?}: an origin is scheme://host[:port], without a path, query, fragment or user"
        ));
    }
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Ok(origin.ascii_serialization()),
        url::Origin::Opaque(_) => Err(format!("{entry:?} is not an origin")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized_as_browsers_send_them() {
        let policy = CorsPolicy::parse(
            " https://App.Example.COM:443 ,http://localhost:5173,, http://[::1]:8080, https://bücher.example, https://app.example.com",
        )
        .unwrap();
        assert_eq!(
            policy.origins(),
            [
                "https://app.example.com",
                "http://localhost:5173",
                "http://[::1]:8080",
                "https://xn--bcher-kva.example"
            ]
        );
        assert!(policy.allows("https://app.example.com"));
        assert!(!policy.allows("https://app.example.com:8443"));
        assert!(!policy.allows("http://app.example.com"));
        assert!(!policy.allows("https://APP.example.com"), "browsers send it lowercase");
    }

    #[test]
    fn anything_but_exact_origins_is_refused_naming_the_entry() {
        for (value, says) in [
            ("*", "wildcards are refused"),
            ("https://*.example.com", "wildcards are refused"),
            ("null", "\"null\" is refused"),
            ("https://app.example.com/", "without a path"),
            ("https://app.example.com/app", "without a path"),
            ("https://app.example.com?x=1", "without a path"),
            ("https://user@app.example.com", "without a path"),
            ("ftp://files.example.com", "http or https"),
            ("app.example.com", "is not an origin"),
            ("https://", "is not an origin"),
            (" , ", "lists no origin"),
        ] {
            let error = CorsPolicy::parse(value).unwrap_err();
            assert!(error.contains(says), "{value:?}: {error}");
        }
    }
}
