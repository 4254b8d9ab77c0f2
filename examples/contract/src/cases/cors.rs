//! Cases: cross-origin requests (`AUTH_CORS_ORIGINS`), answered for the listed origins
//! only, and not at all without the variable (issue 17).

use reqwest::Method;

use crate::cases::keys::refused_start;
use crate::{Answer, Server, Target, client, register, tokens};

const LISTED: &str = "https://app.example.test";
const ALSO_LISTED: &str = "http://localhost:5173";
const UNLISTED: &str = "https://evil.example.test";

/// A request with these headers (`Origin`, `Access-Control-Request-*`, `Authorization`).
async fn request(server: &Server, method: Method, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = client().request(method, server.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Answer::of(request.send().await.unwrap()).await
}

/// A preflight for `method` on `path` from `origin`, asking for `headers`.
async fn preflight(server: &Server, path: &str, origin: &str, method: &str, headers: &str) -> Answer {
    request(
        server,
        Method::OPTIONS,
        path,
        &[
            ("origin", origin),
            ("access-control-request-method", method),
            ("access-control-request-headers", headers),
        ],
    )
    .await
}

/// A comma-separated header's items, lowercase (servers differ in case and spacing).
fn items(answer: &Answer, name: &str) -> Vec<String> {
    answer
        .headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|item| item.trim().to_ascii_lowercase())
        .filter(|item| !item.is_empty())
        .collect()
}

fn assert_no_cors_grant(answer: &Answer, what: &str) {
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-expose-headers",
    ] {
        assert!(
            answer.header(name).is_none(),
            "{what}: {name} sent: {:?}",
            answer.headers
        );
    }
}

/// Case: with `AUTH_CORS_ORIGINS`, a preflight from a listed origin is answered with the
/// origin, credentials, the API's methods and headers and a `Max-Age`; simple requests
/// from it get the origin, credentials and the exposed headers, errors included; any
/// other origin (unlisted, `null`, another port or scheme) gets no grant, its request
/// still served; every answer says `Vary: Origin`.
pub async fn cross_origin_requests_are_answered_for_the_listed_origins_only(target: Target) {
    let origins = format!("{LISTED}, {ALSO_LISTED}");
    let server = Server::start(target, &[("AUTH_CORS_ORIGINS", &origins)]).unwrap();
    register(&server, "cora@example.com").await;
    let (access, _) = tokens(&server, "cora@example.com").await;

    for (path, method, asked) in [
        ("/login", "POST", "content-type"),
        ("/me", "GET", "authorization"),
        (
            "/sessions/0190b1d8-0000-7000-8000-000000000000",
            "DELETE",
            "authorization",
        ),
        (
            "/admin/users/0190b1d8-0000-7000-8000-000000000000/roles",
            "PUT",
            "authorization,content-type",
        ),
    ] {
        for origin in [LISTED, ALSO_LISTED] {
            let answer = preflight(&server, path, origin, method, asked).await;
            let what = format!("preflight {method} {path} from {origin}");
            assert!((200..300).contains(&answer.status), "{what}: {}", answer.status);
            assert_eq!(answer.header("access-control-allow-origin"), Some(origin), "{what}");
            assert_eq!(
                answer.header("access-control-allow-credentials"),
                Some("true"),
                "{what}"
            );
            let methods = items(&answer, "access-control-allow-methods");
            for expected in ["get", "post", "put", "delete"] {
                assert!(methods.iter().any(|m| m == expected), "{what}: {methods:?}");
            }
            let headers = items(&answer, "access-control-allow-headers");
            for expected in ["authorization", "content-type"] {
                assert!(headers.iter().any(|h| h == expected), "{what}: {headers:?}");
            }
            assert_eq!(answer.header("access-control-max-age"), Some("600"), "{what}");
            assert!(items(&answer, "vary").iter().any(|v| v == "origin"), "{what}");
        }
    }

    // Any other origin: no grant. Axum's tower-http answers the preflight 200 without
    // one, Actix's actix-cors refuses it (400 `invalid_request`); a browser stops either
    // way. (The Axum server is the one with pages.)
    let axum = server.has_pages().await;
    for origin in [
        UNLISTED,
        "null",
        "https://app.example.test:8443",
        "http://app.example.test",
    ] {
        let answer = preflight(&server, "/me", origin, "GET", "authorization").await;
        let what = format!("preflight from {origin}");
        assert_no_cors_grant(&answer, &what);
        if axum {
            assert_eq!(answer.status, 200, "{what}: {}", answer.text);
        } else {
            answer.assert_error(400, "invalid_request");
        }
    }
    // A bare OPTIONS (no Access-Control-Request-Method) is a preflight to tower-http, and
    // a method the route does not take to Actix.
    let bare = request(&server, Method::OPTIONS, "/me", &[]).await;
    if axum {
        assert_eq!(bare.status, 200, "{}", bare.text);
    } else {
        bare.assert_error(405, "method_not_allowed");
    }
    assert_no_cors_grant(&bare, "bare OPTIONS");

    // Simple requests: the listed origin reads the answer, errors included (a 401's
    // challenge is exposed); another origin's request is served, but without a grant.
    let bearer = format!("Bearer {access}");
    let me = request(
        &server,
        Method::GET,
        "/me",
        &[("origin", LISTED), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.header("access-control-allow-origin"), Some(LISTED));
    assert_eq!(me.header("access-control-allow-credentials"), Some("true"));
    assert!(items(&me, "vary").iter().any(|v| v == "origin"));
    let refused = request(
        &server,
        Method::GET,
        "/me",
        &[("origin", ALSO_LISTED), ("authorization", "Bearer x.y.z")],
    )
    .await;
    refused.assert_error(401, "invalid_token");
    assert_eq!(refused.header("access-control-allow-origin"), Some(ALSO_LISTED));
    let exposed = items(&refused, "access-control-expose-headers");
    for expected in ["www-authenticate", "retry-after"] {
        assert!(exposed.iter().any(|h| h == expected), "{exposed:?}");
    }
    for origin in [UNLISTED, "null"] {
        let answer = request(
            &server,
            Method::GET,
            "/me",
            &[("origin", origin), ("authorization", &bearer)],
        )
        .await;
        assert_eq!(answer.status, 200, "served, but the browser keeps it from the script");
        assert_no_cors_grant(&answer, origin);
        assert!(items(&answer, "vary").iter().any(|v| v == "origin"), "{origin}");
    }
    let same_origin = request(&server, Method::GET, "/health", &[]).await;
    assert_eq!(same_origin.status, 200);
    assert_no_cors_grant(&same_origin, "no Origin");
}

/// Case: without `AUTH_CORS_ORIGINS` (the default), no answer carries a CORS header,
/// preflights included: same-origin only, as before the variable existed.
pub async fn without_cors_origins_no_cross_origin_headers_are_sent(target: Target) {
    let server = Server::start(target, &[]).unwrap();
    let answer = preflight(&server, "/me", LISTED, "GET", "authorization").await;
    answer.assert_error(405, "method_not_allowed");
    assert_no_cors_grant(&answer, "preflight");
    assert!(answer.header("access-control-allow-methods").is_none());
    let simple = request(&server, Method::GET, "/health", &[("origin", LISTED)]).await;
    assert_eq!(simple.status, 200);
    assert_no_cors_grant(&simple, "simple request");
    assert!(simple.header("vary").is_none(), "{:?}", simple.headers);
}

/// Case: a wildcard, `null` or anything but an exact origin in `AUTH_CORS_ORIGINS` stops
/// the start with a message naming the variable and the entry.
pub async fn a_wildcard_or_malformed_cors_origin_stops_the_start(target: Target) {
    for (origins, says) in [
        ("*", "wildcards are refused"),
        (
            "https://app.example.test, https://*.example.test",
            "wildcards are refused",
        ),
        ("null", "\"null\" is refused"),
        ("https://app.example.test/", "without a path"),
        ("app.example.test", "is not an origin"),
    ] {
        let stderr = refused_start(target, &[("AUTH_CORS_ORIGINS", origins)]);
        assert!(
            stderr.contains("AUTH_CORS_ORIGINS") && stderr.contains(says),
            "{origins}: {stderr}"
        );
    }
}
