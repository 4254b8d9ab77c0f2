//! The HTTP contract, over real HTTP against the running server binary on SQLite.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use common::{Backend, PASSWORD, Server, client, get, last_mail, login, post_json, register, tokens};
use serde_json::json;

/// Every case runs against the server on each store.
macro_rules! on_every_store {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Backend::Postgres).await;
                }
            )+
        }
    };
}

on_every_store!(
    register_login_and_me,
    more_contract_failures,
    the_seeds_curl_commands_work_as_written,
    registration_errors,
    every_login_failure_is_the_same_answer,
    malformed_requests_get_clear_errors_never_a_500,
    refresh_rotates_and_reuse_ends_the_session,
    logout_sessions_and_logout_everywhere,
    password_change_revokes_everything,
    password_reset_through_the_outbox,
    email_verification_through_the_outbox,
    administration_needs_the_admin_role,
    login_is_rate_limited_with_retry_after,
    keys_and_health,
    a_refresh_token_survives_a_restart,
    no_password_or_token_ever_reaches_the_logs,
);

async fn register_login_and_me(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    // curl -X POST /register -H 'Content-Type: application/json' -d '{"email": ..., "password": ...}'
    let created = register(&server, "  Alice@Example.COM ").await;
    assert_eq!(created["email"], "alice@example.com");
    assert_eq!(created["is_active"], true);
    assert_eq!(created["email_verified"], false);
    assert_eq!(created["roles"], json!([]));
    assert!(created.get("password").is_none() && created.get("password_hash").is_none());
    // curl -X POST /login -d 'username=...&password=...'
    let answer = login(&server, "alice@example.com", PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let body = answer.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 900);
    // curl /me -H 'Authorization: Bearer ...'
    let me = get(&server, "/me", body["access_token"].as_str()).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["email"], "alice@example.com");
}

async fn registration_errors(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    register(&server, "bob@example.com").await;
    let duplicate = post_json(
        &server,
        "/register",
        json!({"email": "BOB@example.com ", "password": PASSWORD}),
        None,
    )
    .await;
    duplicate.assert_error(409, "email_taken");
    let invalid = post_json(
        &server,
        "/register",
        json!({"email": "not-an-email", "password": PASSWORD}),
        None,
    )
    .await;
    invalid.assert_error(422, "invalid_email");
    let weak = post_json(
        &server,
        "/register",
        json!({"email": "carl@example.com", "password": "short"}),
        None,
    )
    .await;
    weak.assert_error(422, "weak_password");
    assert!(weak.json()["detail"].as_str().unwrap().contains('8'), "{}", weak.text);
}

async fn every_login_failure_is_the_same_answer(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    register(&server, "dora@example.com").await;
    let wrong = login(&server, "dora@example.com", "not the password").await;
    let unknown = login(&server, "nobody@example.com", "not the password").await;
    wrong.assert_error(401, "invalid_credentials");
    assert_eq!(wrong.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        (unknown.status, &unknown.text),
        (wrong.status, &wrong.text),
        "byte-identical"
    );
    assert_eq!(unknown.header("www-authenticate"), Some("Bearer"));
    // JSON works too.
    let json_login = post_json(
        &server,
        "/login",
        json!({"email": "dora@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(json_login.status, 200, "{}", json_login.text);
}

async fn malformed_requests_get_clear_errors_never_a_500(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    let http = client();
    let malformed = http
        .post(server.url("/register"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    common::Answer::of(malformed).await.assert_error(400, "invalid_request");
    let missing_field = post_json(&server, "/register", json!({"email": "x@example.com"}), None).await;
    missing_field.assert_error(400, "invalid_request");
    let wrong_type = http
        .post(server.url("/register"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    common::Answer::of(wrong_type)
        .await
        .assert_error(415, "unsupported_media_type");
    let huge = "a".repeat(70 * 1024);
    let too_large = post_json(
        &server,
        "/register",
        json!({"email": "x@example.com", "password": huge}),
        None,
    )
    .await;
    too_large.assert_error(413, "payload_too_large");
    get(&server, "/no/such/route", None)
        .await
        .assert_error(404, "not_found");
    get(&server, "/register", None)
        .await
        .assert_error(405, "method_not_allowed");
    get(&server, "/me", None).await.assert_error(401, "invalid_token");
    get(&server, "/me", Some("garbage"))
        .await
        .assert_error(401, "invalid_token");
    let bad_refresh = post_json(&server, "/token/refresh", json!({"refresh_token": "rt_nope"}), None).await;
    bad_refresh.assert_error(401, "invalid_token");
}

async fn refresh_rotates_and_reuse_ends_the_session(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    register(&server, "erin@example.com").await;
    let (_, refresh_token) = tokens(&server, "erin@example.com").await;
    let rotated = post_json(&server, "/token/refresh", json!({"refresh_token": refresh_token}), None).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(rotated.header("cache-control"), Some("no-store"));
    let next = rotated.json()["refresh_token"].as_str().unwrap().to_owned();
    // The spent token again: reuse, which ends the whole session.
    post_json(&server, "/token/refresh", json!({"refresh_token": refresh_token}), None)
        .await
        .assert_error(401, "invalid_token");
    post_json(&server, "/token/refresh", json!({"refresh_token": next}), None)
        .await
        .assert_error(401, "invalid_token");
}

async fn logout_sessions_and_logout_everywhere(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    register(&server, "fay@example.com").await;
    let (access, refresh) = tokens(&server, "fay@example.com").await;
    let (other_access, other_refresh) = tokens(&server, "fay@example.com").await;

    let listed = get(&server, "/sessions", Some(&access)).await;
    assert_eq!(listed.status, 200);
    let sessions = listed.json();
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(!listed.text.contains("rt_"), "never a token");
    let other_id = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = client()
        .delete(server.url(&format!("/sessions/{other_id}")))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    post_json(&server, "/token/refresh", json!({"refresh_token": other_refresh}), None)
        .await
        .assert_error(401, "invalid_token");
    let again = client()
        .delete(server.url(&format!("/sessions/{other_id}")))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    common::Answer::of(again).await.assert_error(404, "not_found");
    let _ = other_access;

    let logout = post_json(&server, "/logout", json!({"refresh_token": refresh}), None).await;
    assert_eq!(logout.status, 204);
    let twice = post_json(&server, "/logout", json!({"refresh_token": refresh}), None).await;
    assert_eq!(twice.status, 204, "idempotent");

    let (access, refresh) = tokens(&server, "fay@example.com").await;
    let everywhere = post_json(&server, "/logout/all", json!({}), Some(&access)).await;
    assert_eq!(everywhere.status, 204);
    get(&server, "/me", Some(&access))
        .await
        .assert_error(401, "invalid_token");
    post_json(&server, "/token/refresh", json!({"refresh_token": refresh}), None)
        .await
        .assert_error(401, "invalid_token");
    post_json(&server, "/logout/all", json!({}), None)
        .await
        .assert_error(401, "invalid_token");
}

async fn password_change_revokes_everything(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    register(&server, "gus@example.com").await;
    let (access, refresh) = tokens(&server, "gus@example.com").await;
    let wrong = post_json(
        &server,
        "/password/change",
        json!({"current_password": "nope nope nope", "new_password": "a brand new passphrase"}),
        Some(&access),
    )
    .await;
    wrong.assert_error(401, "invalid_credentials");
    let weak = post_json(
        &server,
        "/password/change",
        json!({"current_password": PASSWORD, "new_password": "short"}),
        Some(&access),
    )
    .await;
    weak.assert_error(422, "weak_password");
    let changed = post_json(
        &server,
        "/password/change",
        json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        Some(&access),
    )
    .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    get(&server, "/me", Some(&access))
        .await
        .assert_error(401, "invalid_token");
    post_json(&server, "/token/refresh", json!({"refresh_token": refresh}), None)
        .await
        .assert_error(401, "invalid_token");
    assert_eq!(
        login(&server, "gus@example.com", "a brand new passphrase").await.status,
        200
    );
}

async fn password_reset_through_the_outbox(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    register(&server, "hal@example.com").await;
    let known = post_json(&server, "/password/forgot", json!({"email": " HAL@example.com"}), None).await;
    let unknown = post_json(
        &server,
        "/password/forgot",
        json!({"email": "nobody@example.com"}),
        None,
    )
    .await;
    assert_eq!(known.status, 202);
    assert_eq!(
        (unknown.status, &unknown.text),
        (known.status, &known.text),
        "identical answers"
    );

    let (message, token) = last_mail(&server.outbox(), "password_reset").await;
    assert!(message.contains("To: hal@example.com"), "{message}");
    assert!(message.contains("Subject: Reset your password"), "{message}");
    assert!(
        message.contains(&format!("https://auth.example.test/ui/password/reset?token={token}")),
        "links come from AUTH_PUBLIC_URL: {message}"
    );
    let weak = post_json(
        &server,
        "/password/reset",
        json!({"token": token, "new_password": "short"}),
        None,
    )
    .await;
    weak.assert_error(422, "weak_password");
    let reset = post_json(
        &server,
        "/password/reset",
        json!({"token": token, "new_password": "a brand new passphrase"}),
        None,
    )
    .await;
    assert_eq!(reset.status, 204, "{}", reset.text);
    assert_eq!(reset.header("referrer-policy"), Some("no-referrer"));
    let replay = post_json(
        &server,
        "/password/reset",
        json!({"token": token, "new_password": "another new passphrase"}),
        None,
    )
    .await;
    replay.assert_error(400, "invalid_token");
    login(&server, "hal@example.com", PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");
    assert_eq!(
        login(&server, "hal@example.com", "a brand new passphrase").await.status,
        200
    );
}

async fn email_verification_through_the_outbox(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    register(&server, "ivy@example.com").await;
    let (access, _) = tokens(&server, "ivy@example.com").await;
    post_json(&server, "/email/verification", json!({}), None)
        .await
        .assert_error(401, "invalid_token");
    let requested = post_json(&server, "/email/verification", json!({}), Some(&access)).await;
    assert_eq!(requested.status, 202, "{}", requested.text);
    let (_, token) = last_mail(&server.outbox(), "email_verification").await;
    post_json(&server, "/email/verify", json!({"token": "ev_forged"}), None)
        .await
        .assert_error(400, "invalid_token");
    let verified = post_json(&server, "/email/verify", json!({"token": token}), None).await;
    assert_eq!(verified.status, 204, "{}", verified.text);
    assert_eq!(get(&server, "/me", Some(&access)).await.json()["email_verified"], true);
}

async fn administration_needs_the_admin_role(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    register(&server, "root@example.com").await;
    let target = register(&server, "jan@example.com").await;
    let target_id = target["id"].as_str().unwrap();
    let (plain, _) = tokens(&server, "root@example.com").await;
    get(&server, "/admin/users", None)
        .await
        .assert_error(401, "invalid_token");
    get(&server, "/admin/users", Some(&plain))
        .await
        .assert_error(403, "forbidden");

    server.grant_role("root@example.com", "admin");
    let (admin, _) = tokens(&server, "root@example.com").await;
    let users = get(&server, "/admin/users", Some(&admin)).await;
    assert_eq!(users.status, 200, "{}", users.text);
    let emails: Vec<String> = users
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(emails, ["root@example.com", "jan@example.com"]);
    assert!(!users.text.contains("argon2"), "never a hash");
    get(&server, "/admin/users?limit=lots", Some(&admin))
        .await
        .assert_error(400, "invalid_request");
    get(&server, "/admin/users?after=nope", Some(&admin))
        .await
        .assert_error(400, "invalid_request");
    let page = get(&server, "/admin/users?limit=1", Some(&admin)).await.json();
    assert_eq!(page.as_array().unwrap().len(), 1);

    let disable = post_json(
        &server,
        &format!("/admin/users/{target_id}/disable"),
        json!({}),
        Some(&admin),
    )
    .await;
    assert_eq!(disable.status, 204, "{}", disable.text);
    login(&server, "jan@example.com", PASSWORD)
        .await
        .assert_error(403, "account_disabled");
    login(&server, "jan@example.com", "wrong password!")
        .await
        .assert_error(401, "invalid_credentials");
    let enable = post_json(
        &server,
        &format!("/admin/users/{target_id}/enable"),
        json!({}),
        Some(&admin),
    )
    .await;
    assert_eq!(enable.status, 204);
    assert_eq!(login(&server, "jan@example.com", PASSWORD).await.status, 200);

    let roles = client()
        .put(server.url(&format!("/admin/users/{target_id}/roles")))
        .bearer_auth(&admin)
        .json(&json!({"roles": ["editor"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(roles.status().as_u16(), 204);
    let (jan, _) = tokens(&server, "jan@example.com").await;
    assert_eq!(get(&server, "/me", Some(&jan)).await.json()["roles"], json!(["editor"]));
    let missing = post_json(
        &server,
        "/admin/users/01a20938-2c9e-703b-88da-a646f5350450/disable",
        json!({}),
        Some(&admin),
    )
    .await;
    missing.assert_error(404, "not_found");
    let garbage_id = post_json(&server, "/admin/users/not-an-id/disable", json!({}), Some(&admin)).await;
    garbage_id.assert_error(404, "not_found");
}

async fn login_is_rate_limited_with_retry_after(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    register(&server, "kim@example.com").await;
    for _ in 0..5 {
        login(&server, "kim@example.com", "wrong password!")
            .await
            .assert_error(401, "invalid_credentials");
    }
    let limited = login(&server, "kim@example.com", PASSWORD).await;
    limited.assert_error(429, "rate_limited");
    assert_eq!(limited.header("retry-after"), Some("12"));
}

async fn keys_and_health(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    let jwks = get(&server, "/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, 200);
    assert_eq!(jwks.json(), json!({"keys": []}), "HS256: no public keys");
    let health = get(&server, "/health", None).await;
    assert_eq!(health.status, 200);
}

async fn a_refresh_token_survives_a_restart(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    register(&server, "lea@example.com").await;
    let (access, refresh) = tokens(&server, "lea@example.com").await;
    let server = server.restart();
    // The development key was kept beside the database: old access tokens still verify.
    assert_eq!(get(&server, "/me", Some(&access)).await.status, 200);
    let rotated = post_json(&server, "/token/refresh", json!({"refresh_token": refresh}), None).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    if backend == Backend::Sqlite {
        let key = std::fs::metadata(server.dir.path().join("auth.db.secret-key")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                key.permissions().mode() & 0o777,
                0o600,
                "the development key is private"
            );
        }
        let _ = key;
    }
}

async fn no_password_or_token_ever_reaches_the_logs(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    register(&server, "max@example.com").await;
    let (access, refresh) = tokens(&server, "max@example.com").await;
    login(&server, "max@example.com", "a wrong guess 123")
        .await
        .assert_error(401, "invalid_credentials");
    let rotated = post_json(&server, "/token/refresh", json!({"refresh_token": refresh}), None).await;
    let next = rotated.json()["refresh_token"].as_str().unwrap().to_owned();
    post_json(&server, "/password/forgot", json!({"email": "max@example.com"}), None).await;
    let (_, reset_token) = last_mail(&server.outbox(), "password_reset").await;
    // Opening the mailed link logs the request, never its token.
    let page = client()
        .get(server.url(&format!("/ui/password/reset?token={reset_token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    post_json(
        &server,
        "/password/reset",
        json!({"token": reset_token, "new_password": "a brand new passphrase"}),
        None,
    )
    .await;
    let log = server.log();
    assert!(log.contains("auth event"), "the events are logged:\n{log}");
    for secret in [
        PASSWORD,
        "a wrong guess 123",
        "a brand new passphrase",
        &access,
        &refresh,
        &next,
        &reset_token,
    ] {
        assert!(!log.contains(secret), "{secret:?} is in the log");
    }
    assert!(!log.contains("$argon2"), "no hash in the log");
}

#[tokio::test]
async fn it_refuses_to_start_without_a_real_key_where_one_is_required() {
    for env in [
        vec![("AUTH_ENV", "production")],
        vec![("SECRET_KEY", "too short")],
        vec![("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_example-axum"));
        command
            .env_clear()
            .env("BIND", "127.0.0.1:0")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", dir.path().join("auth.db").display()),
            )
            .current_dir(dir.path());
        for (key, value) in &env {
            command.env(key, value);
        }
        let output = command.output().unwrap();
        assert!(!output.status.success(), "{env:?} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("SECRET_KEY"), "{env:?}: {stderr}");
    }
}

/// Runs `curl` with these arguments; returns its output (`-i`: status line, headers, body).
fn curl(args: &[&str]) -> String {
    let output = std::process::Command::new("curl")
        .arg("-sS")
        .args(args)
        .output()
        .expect("curl is installed");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// The seeds' "Test the flow" commands, character for character but for the port.
async fn the_seeds_curl_commands_work_as_written(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    let base = server.base.replace("127.0.0.1", "localhost");
    let register = curl(&[
        "-i",
        "-X",
        "POST",
        &format!("{base}/register"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"email":"user@example.com","password":"testpass123"}"#,
    ]);
    assert!(register.starts_with("HTTP/1.1 201"), "{register}");
    let login = curl(&[
        "-i",
        "-X",
        "POST",
        &format!("{base}/login"),
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        "-d",
        "username=user@example.com&password=testpass123",
    ]);
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    let body = login.split("\r\n\r\n").nth(1).unwrap();
    let token: serde_json::Value = serde_json::from_str(body).unwrap();
    let token = token["access_token"].as_str().unwrap();
    let me = curl(&[
        "-i",
        &format!("{base}/me"),
        "-H",
        &format!("Authorization: Bearer {token}"),
    ]);
    assert!(me.starts_with("HTTP/1.1 200"), "{me}");
    assert!(me.contains(r#""email":"user@example.com""#), "{me}");
    let duplicate = curl(&[
        "-i",
        "-X",
        "POST",
        &format!("{base}/register"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"email":"user@example.com","password":"testpass123"}"#,
    ]);
    assert!(duplicate.starts_with("HTTP/1.1 409"), "{duplicate}");
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_finishes_and_stops_cleanly() {
    let server = Server::start(Backend::Sqlite, &[]).unwrap();
    register(&server, "nia@example.com").await;
    let (clean, log) = server.terminate();
    assert!(clean, "exit status 0 after SIGTERM:\n{log}");
    assert!(log.contains("shutting down") && log.contains("stopped"), "{log}");
}

async fn more_contract_failures(backend: Backend) {
    let Some(server) = Server::start(backend, &[]) else {
        return;
    };
    register(&server, "vic@example.com").await;
    register(&server, "wes@example.com").await;
    let (vic, _) = tokens(&server, "vic@example.com").await;
    let (wes, _) = tokens(&server, "wes@example.com").await;

    // Someone else's session is not found, and the fields are all there.
    let listed = get(&server, "/sessions", Some(&wes)).await.json();
    let session = &listed.as_array().unwrap()[0];
    for field in ["id", "created_at", "last_used_at", "user_agent", "ip", "current"] {
        assert!(session.get(field).is_some(), "{field} in {session}");
    }
    assert_eq!(session["ip"], "127.0.0.1");
    let theirs = session["id"].as_str().unwrap();
    let answer = client()
        .delete(server.url(&format!("/sessions/{theirs}")))
        .bearer_auth(&vic)
        .send()
        .await
        .unwrap();
    common::Answer::of(answer).await.assert_error(404, "not_found");

    // Roles and enabling need an admin.
    let wes_id = get(&server, "/me", Some(&wes)).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let roles = client()
        .put(server.url(&format!("/admin/users/{wes_id}/roles")))
        .json(&json!({"roles": ["admin"]}))
        .send()
        .await
        .unwrap();
    common::Answer::of(roles).await.assert_error(401, "invalid_token");
    let roles = client()
        .put(server.url(&format!("/admin/users/{wes_id}/roles")))
        .bearer_auth(&vic)
        .json(&json!({"roles": ["admin"]}))
        .send()
        .await
        .unwrap();
    common::Answer::of(roles).await.assert_error(403, "forbidden");
    post_json(&server, &format!("/admin/users/{wes_id}/enable"), json!({}), Some(&vic))
        .await
        .assert_error(403, "forbidden");

    // Reset requests from one client: 10 an hour, then 429 with Retry-After.
    for i in 0..10 {
        let answer = post_json(
            &server,
            "/password/forgot",
            json!({"email": format!("x{i}@example.com")}),
            None,
        )
        .await;
        assert_eq!(answer.status, 202);
    }
    let limited = post_json(&server, "/password/forgot", json!({"email": "x10@example.com"}), None).await;
    limited.assert_error(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
}
