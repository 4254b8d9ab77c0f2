//! Cases: the holes found by probing the servers as an attacker would (issue 13), each
//! closed and held closed over real HTTP.

use std::time::Duration;

use serde_json::json;

use crate::cases::python_jose_available;
use crate::{Answer, PASSWORD, Server, Target, client, get, login, post_json, register, tokens};

async fn delete(server: &Server, path: &str, bearer: &str) -> Answer {
    let response = client()
        .delete(server.url(path))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    Answer::of(response).await
}

/// Case: a logout, a revoked session or a detected refresh-token reuse ends that session's
/// access tokens on the next request; a device revoked by its owner cannot revoke back.
pub async fn an_access_token_ends_with_its_session(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    register(&server, "ivo@example.com").await;
    // Logout ends the session's access token at once.
    let (access, refresh) = tokens(&server, "ivo@example.com").await;
    assert_eq!(get(&server, "/me", Some(&access)).await.status, 200);
    let logout = post_json(&server, "/logout", json!({"refresh_token": refresh}), None).await;
    assert_eq!(logout.status, 204);
    get(&server, "/me", Some(&access))
        .await
        .assert_error(401, "invalid_token");

    // The owner revokes a stolen device; the device can no longer act, not even to revoke
    // the owner's own session.
    let (owner, _) = tokens(&server, "ivo@example.com").await;
    let (thief, _) = tokens(&server, "ivo@example.com").await;
    let sessions = get(&server, "/sessions", Some(&owner)).await.json();
    let sessions = sessions.as_array().unwrap();
    let theirs = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mine = sessions.iter().find(|s| s["current"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        delete(&server, &format!("/sessions/{theirs}"), &owner).await.status,
        204
    );
    get(&server, "/me", Some(&thief))
        .await
        .assert_error(401, "invalid_token");
    delete(&server, &format!("/sessions/{mine}"), &thief)
        .await
        .assert_error(401, "invalid_token");
    assert_eq!(
        get(&server, "/me", Some(&owner)).await.status,
        200,
        "the owner's session lives"
    );

    // A reused refresh token ends the session: the access tokens of both sides stop.
    let (first_access, first_refresh) = tokens(&server, "ivo@example.com").await;
    let rotated = post_json(&server, "/token/refresh", json!({"refresh_token": first_refresh}), None).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let rotated_access = rotated.json()["access_token"].as_str().unwrap().to_owned();
    post_json(&server, "/token/refresh", json!({"refresh_token": first_refresh}), None)
        .await
        .assert_error(401, "invalid_token");
    for access in [first_access, rotated_access] {
        get(&server, "/me", Some(&access))
            .await
            .assert_error(401, "invalid_token");
    }
}

/// The mails in the outbox whose name says `purpose`.
fn mails(server: &Server, purpose: &str) -> usize {
    std::fs::read_dir(server.outbox())
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| entry.file_name().to_string_lossy().contains(&format!("-{purpose}-")))
                .count()
        })
        .unwrap_or(0)
}

/// Waits until the outbox holds `expected` mails for `purpose` and then stays there.
async fn settled_mails(server: &Server, purpose: &str, expected: usize) -> usize {
    for _ in 0..200 {
        if mails(server, purpose) >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Mail leaves off the request path: give any straggler the time to land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    mails(server, purpose)
}

/// Case: a flood of verification requests sends at most the account's mail allowance,
/// answered 202 every time; reset requests share the allowance.
pub async fn mail_floods_send_at_most_the_allowance(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    register(&server, "mo@example.com").await;
    let (access, _) = tokens(&server, "mo@example.com").await;
    for _ in 0..60 {
        let answer = post_json(&server, "/email/verification", json!({}), Some(&access)).await;
        assert_eq!(answer.status, 202, "{}", answer.text);
    }
    assert_eq!(
        settled_mails(&server, "email_verification", 10).await,
        10,
        "ten mails per hour"
    );
    let forgot = post_json(&server, "/password/forgot", json!({"email": "mo@example.com"}), None).await;
    assert_eq!(forgot.status, 202, "answered as usual");
    assert_eq!(settled_mails(&server, "password_reset", 0).await, 0, "and nothing sent");
}

/// Case: failed logins against an address before it is registered do not count against
/// the new account.
pub async fn failed_logins_before_registration_do_not_lock_the_new_account(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    for _ in 0..5 {
        login(&server, "nova@example.com", "not the password")
            .await
            .assert_error(401, "invalid_credentials");
    }
    login(&server, "nova@example.com", "not the password")
        .await
        .assert_error(429, "rate_limited");
    register(&server, "nova@example.com").await;
    let answer = login(&server, "nova@example.com", PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

/// Case: every answer to a request with credentials says `Cache-Control: no-store`; an
/// HTTPS site's answers carry HSTS, an HTTP site's do not.
pub async fn credentialed_answers_are_not_stored_and_https_sites_send_hsts(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    register(&server, "opal@example.com").await;
    server.grant_role("opal@example.com", "admin");
    let (access, _) = tokens(&server, "opal@example.com").await;
    for path in ["/me", "/sessions", "/admin/users", "/no/such/route"] {
        let answer = get(&server, path, Some(&access)).await;
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(
            answer.header("strict-transport-security"),
            Some("max-age=31536000"),
            "{path}"
        );
    }
    let refused = get(&server, "/me", Some("not-a-token")).await;
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    let public = get(&server, "/health", None).await;
    assert_eq!(public.header("cache-control"), None, "public answers may be cached");
    assert_eq!(public.header("strict-transport-security"), Some("max-age=31536000"));

    let plain = Server::start(target, &[("AUTH_PUBLIC_URL", "http://localhost:8000")]).unwrap();
    assert_eq!(
        get(&plain, "/health", None).await.header("strict-transport-security"),
        None
    );
}

/// Case: an account holds at most 32 roles, so every token the server issues is one it
/// accepts (200 roles once made a 17 KB token that the 8 KiB header cap refused).
pub async fn roles_are_bounded_so_every_issued_token_is_accepted(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    register(&server, "pax@example.com").await;
    server.grant_role("pax@example.com", "admin");
    let (admin, _) = tokens(&server, "pax@example.com").await;
    let me = get(&server, "/me", Some(&admin)).await.json();
    let id = me["id"].as_str().unwrap();
    let role = |i: usize| format!("{i:03}{}", "r".repeat(61));
    let too_many: Vec<String> = (0..200).map(role).collect();
    let put = |roles: Vec<String>| {
        let request = client()
            .put(server.url(&format!("/admin/users/{id}/roles")))
            .bearer_auth(&admin)
            .json(&json!({ "roles": roles }));
        async move { Answer::of(request.send().await.unwrap()).await }
    };
    put(too_many).await.assert_error(422, "too_many_roles");
    let mut most: Vec<String> = (0..31).map(role).collect();
    most.push("admin".to_owned());
    let answer = put(most).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    let (access, _) = tokens(&server, "pax@example.com").await;
    let me = get(&server, "/me", Some(&access)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json()["roles"].as_array().unwrap().len(), 32);
}

/// Case: a permanent lock (the consecutive-failure cap) says so, with the way out, and no
/// `Retry-After` of years.
pub async fn a_permanent_lock_says_to_reset_the_password(target: Target) {
    let Some(server) = Server::start(
        target,
        &[
            ("AUTH_RATE_LIMIT_CONSECUTIVE_LOGIN_FAILURES_PER_ACCOUNT", "3/total"),
            ("AUTH_RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT", "off"),
        ],
    ) else {
        return;
    };
    register(&server, "quin@example.com").await;
    for _ in 0..3 {
        login(&server, "quin@example.com", "not the password")
            .await
            .assert_error(401, "invalid_credentials");
    }
    let locked = login(&server, "quin@example.com", PASSWORD).await;
    locked.assert_error(429, "account_locked");
    assert_eq!(locked.header("retry-after"), None);
    assert!(
        locked.json()["detail"]
            .as_str()
            .unwrap()
            .contains("reset your password"),
        "{}",
        locked.text
    );
    // The owner is mailed once, with a reset link that unlocks the account.
    login(&server, "quin@example.com", PASSWORD)
        .await
        .assert_error(429, "account_locked");
    let (message, token) = crate::last_mail(&server.outbox(), "account_locked").await;
    assert!(message.contains("Subject: Your account is locked"), "{message}");
    assert!(message.contains("/ui/password/reset?token=pr_"), "{message}");
    let told = std::fs::read_dir(server.outbox())
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().contains("-account_locked-"))
        .count();
    assert_eq!(told, 1, "one mail per lock");
    let reset = crate::post_json(
        &server,
        "/password/reset",
        json!({"token": token, "new_password": "an unlocking passphrase"}),
        None,
    )
    .await;
    assert_eq!(reset.status, 204, "{}", reset.text);
    assert_eq!(
        login(&server, "quin@example.com", "an unlocking passphrase")
            .await
            .status,
        200
    );
}

/// Re-signs `token` with python-jose (a real JOSE peer), adding `claims` to its payload
/// and `headers` to its header.
fn python_jose_resign(token: &str, secret: &str, claims: &str, headers: &str) -> Option<String> {
    let script = r#"
import json, sys
from jose import jwt
token, secret, extra, headers = sys.argv[1:5]
claims = jwt.get_unverified_claims(token)
claims.update(json.loads(extra))
header = jwt.get_unverified_header(token)
header.update(json.loads(headers))
print(jwt.encode(claims, secret, algorithm="HS256", headers=header))
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", script, token, secret, claims, headers])
        .output()
        .ok()?;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    Some(String::from_utf8(output.stdout).unwrap().trim().to_owned())
}

/// Case: with no audience configured, a token naming another service's audience is
/// refused; a token whose header has `crit` is refused (RFC 7515 §4.1.11). The tokens are
/// forged with python-jose holding the server's own key, so only these differences count.
pub async fn foreign_audiences_and_critical_headers_are_refused(target: Target) {
    if !python_jose_available() {
        return;
    }
    let secret = "a shared secret of at least thirty-two bytes";
    let server = Server::start(target, &[("SECRET_KEY", secret)]).unwrap();
    register(&server, "rex@example.com").await;
    let (access, _) = tokens(&server, "rex@example.com").await;
    let same = python_jose_resign(&access, secret, "{}", "{}").unwrap();
    assert_eq!(
        get(&server, "/me", Some(&same)).await.status,
        200,
        "the re-signed original passes"
    );
    let foreign = python_jose_resign(&access, secret, r#"{"aud": "billing-api"}"#, "{}").unwrap();
    get(&server, "/me", Some(&foreign))
        .await
        .assert_error(401, "invalid_token");
    let critical = python_jose_resign(&access, secret, "{}", r#"{"crit": ["exp"]}"#).unwrap();
    get(&server, "/me", Some(&critical))
        .await
        .assert_error(401, "invalid_token");
}

/// Sends raw bytes and reads the whole answer (the server closes these connections).
async fn raw(server: &Server, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server closes the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Case: an HTTP/1.1 request without `Host` is a 400 and an overlong URI a 414, the same
/// on both servers.
pub async fn no_host_and_overlong_uris_are_refused_alike(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    let answer = raw(&server, b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("content-length: 0\r\n"),
        "{answer}"
    );
    // HTTP/1.0 needs no Host.
    let answer = raw(&server, b"GET /health HTTP/1.0\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.0 200 "), "{answer}");

    let long = format!("/health?{}", "a".repeat(16 * 1024));
    let answer = get(&server, &long, None).await;
    answer.assert_error(414, "uri_too_long");
    let answer = get(&server, &format!("/{}", "a".repeat(9 * 1024)), None).await;
    answer.assert_error(414, "uri_too_long");
    let fits = format!("/health?{}", "a".repeat(7 * 1024));
    assert_eq!(get(&server, &fits, None).await.status, 200);
}

/// Sends a request head and returns the status line of the answer, whatever the server
/// does with the rest of the connection (a refused head is answered, then the connection
/// is closed, maybe before all of it was read: a reset after the answer).
async fn status_of_head(server: &Server, head: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let _ = stream.write_all(head).await;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(read) = stream.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..read]);
        }
    })
    .await;
    assert!(read.is_ok(), "the server answers and closes");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().unwrap_or_default().to_owned()
}

/// A `GET /health` head of `fields` header fields (Host and Connection among them), the
/// others `value_bytes` long.
fn head_with(fields: usize, value_bytes: usize) -> Vec<u8> {
    let mut head = b"GET /health HTTP/1.1\r\nHost: auth.test\r\nConnection: close\r\n".to_vec();
    for i in 2..fields {
        head.extend_from_slice(format!("X-Field-{i}: {}\r\n", "a".repeat(value_bytes)).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Case: a request's header fields are limited alike on both servers: at most 64 and 32
/// KiB of them (`auth_http::MAX_HEADER_FIELDS`, `MAX_HEADER_BYTES`), beyond 431
/// `header_fields_too_large`; past what the HTTP parsers take (96 fields), 431 too.
pub async fn request_heads_are_limited_alike(target: Target) {
    let server = Server::start(target, &[]).unwrap();
    let ok = "HTTP/1.1 200 OK";
    let too_large = "HTTP/1.1 431 Request Header Fields Too Large";
    assert_eq!(status_of_head(&server, &head_with(64, 8)).await, ok);
    assert_eq!(status_of_head(&server, &head_with(65, 8)).await, too_large);
    assert_eq!(status_of_head(&server, &head_with(97, 8)).await, too_large);
    assert_eq!(status_of_head(&server, &head_with(300, 8)).await, too_large);
    // 10 fields of 3,000 bytes beside Host and Connection: about 30 KiB in all; 12 of
    // them: about 36 KiB.
    assert_eq!(status_of_head(&server, &head_with(12, 3_000)).await, ok);
    assert_eq!(status_of_head(&server, &head_with(14, 3_000)).await, too_large);
    assert_eq!(status_of_head(&server, &head_with(40, 6_000)).await, too_large);
    // The API's own refusal has the API's shape.
    let answer = client()
        .get(server.url("/health"))
        .header("x-large", "a".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    Answer::of(answer).await.assert_error(431, "header_fields_too_large");
    // And the server goes on.
    assert_eq!(status_of_head(&server, &head_with(3, 8)).await, ok);
}
