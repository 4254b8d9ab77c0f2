//! The cases: each starts the target server and checks one part of the contract over
//! real HTTP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub use crate::transcript::the_answers_match_the_reference_transcript;
use crate::{Backend, PASSWORD, Server, Target, client, get, last_mail, login, post_json, register, tokens};

/// Case: register login and me.
pub async fn register_login_and_me(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
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

/// Case: registration errors.
pub async fn registration_errors(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
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

/// Case: every login failure is the same answer.
pub async fn every_login_failure_is_the_same_answer(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
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

/// Case: malformed requests get clear errors never a 500.
pub async fn malformed_requests_get_clear_errors_never_a_500(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
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
    crate::Answer::of(malformed).await.assert_error(400, "invalid_request");
    let missing_field = post_json(&server, "/register", json!({"email": "x@example.com"}), None).await;
    missing_field.assert_error(400, "invalid_request");
    let wrong_type = http
        .post(server.url("/register"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    crate::Answer::of(wrong_type)
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

/// Case: refresh rotates and reuse ends the session.
pub async fn refresh_rotates_and_reuse_ends_the_session(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
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

/// Case: logout sessions and logout everywhere.
pub async fn logout_sessions_and_logout_everywhere(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
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
    crate::Answer::of(again).await.assert_error(404, "not_found");
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

/// Case: password change revokes everything.
pub async fn password_change_revokes_everything(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
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
    // The owner is told (refused attempts told nothing): what, when, from which client,
    // and what to do if it was not them.
    let notice = crate::last_message(&server.outbox(), "password_changed").await;
    assert!(notice.contains("Subject: Your password was changed"), "{notice}");
    assert!(notice.contains("To: gus@example.com"), "{notice}");
    assert!(notice.contains("When: "), "{notice}");
    assert!(notice.contains("From: ") && notice.contains("127.0.0.1"), "{notice}");
    assert!(notice.contains("If this was not you"), "{notice}");
    let told = std::fs::read_dir(server.outbox())
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().contains("-password_changed-"))
        .count();
    assert_eq!(told, 1, "one notice for one change");
}

/// Requests a reset for `known` and for an address without an account: both answer 202,
/// byte for byte alike.
pub(crate) async fn forgot_answers_alike(server: &Server, known: &str) {
    let known = post_json(server, "/password/forgot", json!({"email": known}), None).await;
    let unknown = post_json(server, "/password/forgot", json!({"email": "nobody@example.com"}), None).await;
    assert_eq!(known.status, 202);
    assert_eq!(
        (unknown.status, &unknown.text),
        (known.status, &known.text),
        "identical answers"
    );
}

/// Case: password reset through the outbox.
pub async fn password_reset_through_the_outbox(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    register(&server, "hal@example.com").await;
    forgot_answers_alike(&server, " HAL@example.com").await;

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
    // The owner is told, with when and from which client, and no token.
    let notice = crate::last_message(&server.outbox(), "password_reset_completed").await;
    assert!(notice.contains("Subject: Your password was reset"), "{notice}");
    assert!(notice.contains("When: ") && notice.contains("From: "), "{notice}");
    assert!(notice.contains("/ui/password/forgot"), "{notice}");
    assert!(!notice.contains("token="), "a notice carries no token: {notice}");
}

/// Case: email verification through the outbox.
pub async fn email_verification_through_the_outbox(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
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

/// Case: administration needs the admin role.
pub async fn administration_needs_the_admin_role(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
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
    // Found by a prefix of the address, whatever its case; `_` is no wildcard.
    for (prefix, expected) in [
        ("ja", vec!["jan@example.com"]),
        ("JAN%40EX", vec!["jan@example.com"]),
        ("r_ot", vec![]),
        ("nobody", vec![]),
    ] {
        let found = get(&server, &format!("/admin/users?email={prefix}"), Some(&admin)).await;
        assert_eq!(found.status, 200, "{}", found.text);
        let emails: Vec<String> = found
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(emails, expected, "{prefix}");
    }
    get(&server, "/admin/users?email=", Some(&admin))
        .await
        .assert_error(400, "invalid_request");

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

    // An account's sessions, listed and ended by an administrator (OWASP ASVS 7.4.5).
    let sessions = format!("/admin/users/{target_id}/sessions");
    get(&server, &sessions, Some(&jan)).await.assert_error(403, "forbidden");
    let listed = get(&server, &sessions, Some(&admin)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let live = listed.json().as_array().unwrap().len();
    assert!(live >= 1, "{}", listed.text);
    assert!(
        listed.text.contains("\"current\":false"),
        "none is the admin's own: {}",
        listed.text
    );
    let end = |path: String| {
        let server = &server;
        let admin = admin.clone();
        async move {
            crate::Answer::of(
                client()
                    .delete(server.url(&path))
                    .bearer_auth(&admin)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let ended = end(sessions.clone()).await;
    assert_eq!(ended.status, 204, "{}", ended.text);
    get(&server, "/me", Some(&jan)).await.assert_error(401, "invalid_token");
    assert_eq!(get(&server, &sessions, Some(&admin)).await.json(), json!([]));
    assert_eq!(
        get(&server, "/me", Some(&admin)).await.status,
        200,
        "the admin's own stay"
    );
    let unknown = "/admin/users/01a20938-2c9e-703b-88da-a646f5350450/sessions";
    get(&server, unknown, Some(&admin)).await.assert_error(404, "not_found");
    end(unknown.to_owned()).await.assert_error(404, "not_found");

    // An invitation: an account without a password, whose mailed link sets its first one.
    let invite = |body: serde_json::Value, token: String| {
        let server = &server;
        async move { post_json(server, "/admin/users", body, Some(&token)).await }
    };
    let (jan, _) = tokens(&server, "jan@example.com").await;
    invite(json!({"email": "ivy@example.com"}), jan)
        .await
        .assert_error(403, "forbidden");
    invite(json!({"email": "not an address"}), admin.clone())
        .await
        .assert_error(422, "invalid_email");
    invite(
        json!({"email": "ivy@example.com", "roles": ["no spaces allowed"]}),
        admin.clone(),
    )
    .await
    .assert_error(400, "invalid_request");
    invite(json!({"email": " JAN@example.com"}), admin.clone())
        .await
        .assert_error(409, "email_taken");
    let invited = invite(json!({"email": "Ivy@Example.com", "roles": ["editor"]}), admin.clone()).await;
    assert_eq!(invited.status, 201, "{}", invited.text);
    let ivy = invited.json();
    assert_eq!(ivy["email"], "ivy@example.com");
    assert_eq!(ivy["roles"], json!(["editor"]));
    assert_eq!(ivy["email_verified"], false);
    let (message, token) = last_mail(&server.outbox(), "invitation").await;
    assert!(message.contains("To: ivy@example.com"), "{message}");
    assert!(message.contains("Subject: You are invited"), "{message}");
    assert!(message.contains("/ui/password/reset?token="), "{message}");
    // No password until the link is used: the generic failure, whatever is tried.
    login(&server, "ivy@example.com", PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");
    let set = post_json(
        &server,
        "/password/reset",
        json!({"token": token, "new_password": "an invited passphrase"}),
        None,
    )
    .await;
    assert_eq!(set.status, 204, "{}", set.text);
    let signed_in = login(&server, "ivy@example.com", "an invited passphrase").await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let ivy_access = signed_in.json()["access_token"].as_str().unwrap().to_owned();
    let me = get(&server, "/me", Some(&ivy_access)).await.json();
    assert_eq!(me["email_verified"], true, "the link proved the address");
    assert_eq!(me["roles"], json!(["editor"]));
}

/// The newest mail of `kind` addressed to `to`, once it is in the outbox (mails leave off
/// the request path, so two sent one after the other may be written in either order).
async fn mail_to(server: &Server, kind: &str, to: &str) -> String {
    mail_with(server, kind, to, "").await
}

/// The newest mail of `kind` to `to` that contains `needle`, once it is in the outbox.
async fn mail_with(server: &Server, kind: &str, to: &str, needle: &str) -> String {
    let infix = format!("-{kind}-");
    let recipient = format!("To: {to}");
    for _ in 0..100 {
        let mut names: Vec<std::path::PathBuf> = std::fs::read_dir(server.outbox())
            .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
            .unwrap_or_default();
        names.retain(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().contains(&infix))
        });
        names.sort();
        for path in names.iter().rev() {
            let message = std::fs::read_to_string(path).unwrap();
            if message.contains(&recipient) && message.contains(needle) {
                return message;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no {kind} mail to {to} with {needle:?}");
}

/// The token of the first link in `message`.
fn token_in(message: &str) -> String {
    message
        .split("token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned()
}

/// Case: an address changes through both mailboxes: asked for with the password, the
/// new address confirms (a taken one is refused only then), both are told, the old one
/// can undo.
pub async fn an_address_changes_through_both_mailboxes(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    register(&server, "kit@example.com").await;
    register(&server, "lee@example.com").await;
    let (access, refresh) = tokens(&server, "kit@example.com").await;
    let change = |body: serde_json::Value, bearer: Option<&str>| {
        let server = &server;
        let bearer = bearer.map(str::to_owned);
        async move { post_json(server, "/email/change", body, bearer.as_deref()).await }
    };
    change(json!({"new_email": "kit@example.org", "password": PASSWORD}), None)
        .await
        .assert_error(401, "invalid_token");
    change(
        json!({"new_email": "kit@example.org", "password": "not the password"}),
        Some(&access),
    )
    .await
    .assert_error(401, "invalid_credentials");
    change(json!({"new_email": "nope", "password": PASSWORD}), Some(&access))
        .await
        .assert_error(422, "invalid_email");
    change(
        json!({"new_email": "KIT@example.com", "password": PASSWORD}),
        Some(&access),
    )
    .await
    .assert_error(409, "email_taken");

    // Taken or free, the same answer; the link to a taken address fails only when used.
    let taken = change(
        json!({"new_email": "lee@example.com", "password": PASSWORD}),
        Some(&access),
    )
    .await;
    assert_eq!((taken.status, taken.text.as_str()), (202, ""));
    let taken = token_in(&mail_to(&server, "email_change", "lee@example.com").await);
    let free = change(
        json!({"new_email": " Kit@Example.org", "password": PASSWORD}),
        Some(&access),
    )
    .await;
    assert_eq!((free.status, free.text.as_str()), (202, ""));
    let message = mail_to(&server, "email_change", "kit@example.org").await;
    assert!(message.contains("Subject: Confirm your new email address"), "{message}");
    assert!(message.contains("/ui/email/change/confirm?token=ec_"), "{message}");
    let free = token_in(&message);
    let asked = mail_with(&server, "email_change_requested", "kit@example.com", "kit@example.org").await;
    assert!(
        asked.contains("kit@example.org") && asked.contains("/ui/email/change/undo?token=eu_"),
        "{asked}"
    );

    let confirm = |token: String| {
        let server = &server;
        async move { post_json(server, "/email/change/confirm", json!({"token": token}), None).await }
    };
    confirm(taken).await.assert_error(409, "email_taken");
    confirm("ec_forged".to_owned()).await.assert_error(400, "invalid_token");
    let confirmed = confirm(free.clone()).await;
    assert_eq!(confirmed.status, 204, "{}", confirmed.text);
    assert_eq!(confirmed.header("referrer-policy"), Some("no-referrer"));
    confirm(free).await.assert_error(400, "invalid_token");

    // No access token carries the old address; the session that asked refreshes.
    get(&server, "/me", Some(&access))
        .await
        .assert_error(401, "invalid_token");
    let renewed = post_json(&server, "/token/refresh", json!({"refresh_token": refresh}), None).await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    let access = renewed.json()["access_token"].as_str().unwrap().to_owned();
    let me = get(&server, "/me", Some(&access)).await.json();
    assert_eq!(
        (me["email"].as_str(), me["email_verified"].as_bool()),
        (Some("kit@example.org"), Some(true))
    );
    login(&server, "kit@example.com", PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");

    // Both addresses told; the old one can undo, which signs everyone out.
    let changed = mail_to(&server, "email_changed", "kit@example.com").await;
    assert!(changed.contains("Subject: Your email address was changed"), "{changed}");
    mail_to(&server, "email_change_confirmed", "kit@example.org").await;
    let undo = token_in(&changed);
    let undone = post_json(&server, "/email/change/undo", json!({"token": undo}), None).await;
    assert_eq!(undone.status, 204, "{}", undone.text);
    get(&server, "/me", Some(&access))
        .await
        .assert_error(401, "invalid_token");
    assert_eq!(login(&server, "kit@example.com", PASSWORD).await.status, 200);
    mail_to(&server, "email_change_undone", "kit@example.com").await;
    post_json(&server, "/email/change/undo", json!({"token": undo}), None)
        .await
        .assert_error(400, "invalid_token");
}

/// `DELETE path` with a JSON body (or none) and a bearer token (or none).
async fn delete_json(
    server: &Server,
    path: &str,
    body: Option<serde_json::Value>,
    bearer: Option<&str>,
) -> crate::Answer {
    let mut request = client().delete(server.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    crate::Answer::of(request.send().await.unwrap()).await
}

/// Case: an account is exported for its owner (a few times an hour), then deleted whole, by its owner (with the password, or a recent
/// sign-in) or an administrator; its tokens die, its owner is told, and its address can
/// register again at once.
pub async fn an_account_is_deleted_whole_and_its_address_is_free(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    register(&server, "nia@example.com").await;
    let (access, refresh) = tokens(&server, "nia@example.com").await;

    // Before: the owner's export of everything stored about the account.
    get(&server, "/me/export", None)
        .await
        .assert_error(401, "invalid_token");
    let export = get(&server, "/me/export", Some(&access)).await;
    assert_eq!(export.status, 200, "{}", export.text);
    assert_eq!(
        export.header("content-disposition"),
        Some("attachment; filename=\"account.json\"")
    );
    assert_eq!(export.header("cache-control"), Some("no-store"));
    let body = export.json();
    assert_eq!(body["account"]["email"], "nia@example.com");
    assert_eq!(body["sessions"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["sessions"][0]["current"], true);
    assert!(
        !export.text.contains("argon2") && !export.text.contains("password_hash"),
        "{body}"
    );
    for _ in 1..5 {
        assert_eq!(get(&server, "/me/export", Some(&access)).await.status, 200);
    }
    get(&server, "/me/export", Some(&access))
        .await
        .assert_error(429, "rate_limited");

    delete_json(&server, "/me", Some(json!({"password": PASSWORD})), None)
        .await
        .assert_error(401, "invalid_token");
    delete_json(
        &server,
        "/me",
        Some(json!({"password": "not the password"})),
        Some(&access),
    )
    .await
    .assert_error(401, "invalid_credentials");
    let deleted = delete_json(&server, "/me", Some(json!({"password": PASSWORD})), Some(&access)).await;
    assert_eq!((deleted.status, deleted.text.as_str()), (204, ""));
    get(&server, "/me", Some(&access))
        .await
        .assert_error(401, "invalid_token");
    post_json(&server, "/token/refresh", json!({"refresh_token": refresh}), None)
        .await
        .assert_error(401, "invalid_token");
    login(&server, "nia@example.com", PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");
    let told = mail_to(&server, "account_deleted", "nia@example.com").await;
    assert!(told.contains("Subject: Your account was deleted"), "{told}");
    assert!(!told.contains("token="), "{told}");
    register(&server, "nia@example.com").await;

    // Without the password: a sign-in just now is recent enough.
    let (access, _) = tokens(&server, "nia@example.com").await;
    let deleted = delete_json(&server, "/me", Some(json!({})), Some(&access)).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    // An administrator's deletion.
    register(&server, "root@example.com").await;
    server.grant_role("root@example.com", "admin");
    let (admin, _) = tokens(&server, "root@example.com").await;
    let oli = register(&server, "oli@example.com").await;
    let path = format!("/admin/users/{}", oli["id"].as_str().unwrap());
    let (oli_access, _) = tokens(&server, "oli@example.com").await;
    delete_json(&server, &path, None, Some(&oli_access))
        .await
        .assert_error(403, "forbidden");
    let deleted = delete_json(&server, &path, None, Some(&admin)).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    delete_json(&server, &path, None, Some(&admin))
        .await
        .assert_error(404, "not_found");
    get(&server, "/me", Some(&oli_access))
        .await
        .assert_error(401, "invalid_token");
    mail_to(&server, "account_deleted", "oli@example.com").await;
    assert_eq!(get(&server, "/me", Some(&admin)).await.status, 200);
}

/// Case: with `AUTH_NOTIFY_NEW_DEVICE=true`, a sign-in from a device the account has no
/// live session from is mailed, naming the device; one from a known device is not.
pub async fn sign_ins_from_new_devices_are_mailed_when_enabled(target: Target) {
    let Some(server) = Server::start(target, &[("AUTH_NOTIFY_NEW_DEVICE", "true")]) else {
        return;
    };
    register(&server, "ned@example.com").await;
    let sign_in = |agent: &'static str| {
        let server = &server;
        async move {
            let response = client()
                .post(server.url("/login"))
                .header("user-agent", agent)
                .form(&[("username", "ned@example.com"), ("password", PASSWORD)])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
        }
    };
    let mailed = || {
        std::fs::read_dir(server.outbox())
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|entry| entry.file_name().to_string_lossy().contains("-new_sign_in-"))
                    .count()
            })
            .unwrap_or(0)
    };
    sign_in("Laptop/1.0").await;
    let first = crate::last_message(&server.outbox(), "new_sign_in").await;
    assert!(first.contains("Subject: A new sign-in to your account"), "{first}");
    assert!(first.contains("Laptop/1.0"), "the device is named: {first}");
    sign_in("Laptop/1.0").await;
    sign_in("Phone/2.0").await;
    for _ in 0..100 {
        if mailed() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The known device's sign-in was sent (or not) before the phone's: two in all.
    assert_eq!(mailed(), 2, "one per new device");
    let second = crate::last_message(&server.outbox(), "new_sign_in").await;
    assert!(second.contains("Phone/2.0"), "{second}");
}

/// The kinds of `path`'s records (a JSON list of events), once `ready` holds for them: the
/// log is written off the request path.
async fn events_until(
    server: &Server,
    path: &str,
    bearer: &str,
    ready: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    for _ in 0..100 {
        let answer = get(server, path, Some(bearer)).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        let records = answer.json().as_array().unwrap().clone();
        if ready(&records) {
            return records;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{path}: the records never came");
}

fn kinds(records: &[serde_json::Value]) -> Vec<&str> {
    records.iter().map(|record| record["kind"].as_str().unwrap()).collect()
}

/// Case: the audit log keeps every sign-in, refusal and denied access: an account reads
/// its own (without the operator's detail), an administrator any, by account and kind,
/// paged by a cursor; the export carries them; a deleted account's records stay under its
/// address digest only.
pub async fn the_audit_log_keeps_sign_ins_refusals_and_denials(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    let ann = register(&server, "ann@example.com").await;
    let ann_id = ann["id"].as_str().unwrap().to_owned();
    login(&server, "ann@example.com", "a wrong guess")
        .await
        .assert_error(401, "invalid_credentials");
    let (access, _) = tokens(&server, "ann@example.com").await;
    get(&server, "/me/events", None)
        .await
        .assert_error(401, "invalid_token");
    get(&server, "/me/events?after=nope", Some(&access))
        .await
        .assert_error(400, "invalid_request");
    let mine = events_until(&server, "/me/events", &access, |records| records.len() >= 3).await;
    assert_eq!(kinds(&mine), ["registered", "login_failed", "login_succeeded"]);
    assert_eq!(mine[2]["outcome"], "success");
    assert!(
        mine.iter()
            .all(|record| record.get("detail").is_none() && record.get("user_id").is_none())
    );
    let first = get(&server, "/me/events?limit=1", Some(&access)).await.json();
    let after = first[0]["id"].as_str().unwrap();
    let rest = get(&server, &format!("/me/events?after={after}"), Some(&access))
        .await
        .json();
    assert_eq!(kinds(rest.as_array().unwrap()), ["login_failed", "login_succeeded"]);

    // A denied access is a record too; an administrator reads any, with the detail.
    get(&server, "/admin/events", Some(&access))
        .await
        .assert_error(403, "forbidden");
    register(&server, "root@example.com").await;
    server.grant_role("root@example.com", "admin");
    let (admin, _) = tokens(&server, "root@example.com").await;
    let denied = events_until(&server, "/admin/events?kind=access_denied", &admin, |records| {
        !records.is_empty()
    })
    .await;
    assert_eq!(denied[0]["user_id"], ann_id.as_str());
    let failed = events_until(
        &server,
        &format!("/admin/events?user={ann_id}&kind=login_failed"),
        &admin,
        |records| !records.is_empty(),
    )
    .await;
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["detail"].as_str().unwrap().contains("WrongPassword"),
        "{failed:?}"
    );
    get(&server, "/admin/events?kind=Not-A-Kind", Some(&admin))
        .await
        .assert_error(400, "invalid_request");
    let export = get(&server, "/me/export", Some(&access)).await.json();
    assert!(export["events"].as_array().unwrap().len() >= 3, "{export}");

    // Deleted: the records stay, without the account or its clients.
    let deleted = client()
        .delete(server.url("/me"))
        .bearer_auth(&access)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let gone = events_until(&server, "/admin/events?kind=account_deleted", &admin, |records| {
        !records.is_empty()
    })
    .await;
    let digest = gone[0]["email_digest"].as_str().unwrap().to_owned();
    assert!(gone[0].get("user_id").is_none(), "{gone:?}");
    let named = get(&server, &format!("/admin/events?user={ann_id}"), Some(&admin))
        .await
        .json();
    assert_eq!(named, json!([]), "no record names the deleted account");
    let all = get(&server, "/admin/events?limit=1000", Some(&admin)).await.json();
    let theirs: Vec<&serde_json::Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|record| record["email_digest"] == digest.as_str())
        .collect();
    assert!(theirs.len() >= 5, "{theirs:?}");
    assert!(
        theirs
            .iter()
            .all(|record| record["ip"].is_null() && record["user_agent"].is_null()),
        "{theirs:?}"
    );
}

/// Case: login is rate limited with retry after.
pub async fn login_is_rate_limited_with_retry_after(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
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

/// Case: keys and health.
pub async fn keys_and_health(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    let jwks = get(&server, "/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, 200);
    assert_eq!(jwks.json(), json!({"keys": []}), "HS256: no public keys");
    let health = get(&server, "/health", None).await;
    assert_eq!(health.status, 200);
}

/// Case: a refresh token survives a restart.
pub async fn a_refresh_token_survives_a_restart(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    register(&server, "lea@example.com").await;
    let (access, refresh) = tokens(&server, "lea@example.com").await;
    let server = server.restart();
    // The development key was kept beside the database: old access tokens still verify.
    assert_eq!(get(&server, "/me", Some(&access)).await.status, 200);
    let rotated = post_json(&server, "/token/refresh", json!({"refresh_token": refresh}), None).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    if target.backend == Backend::Sqlite {
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

/// Case: no password or token ever reaches the logs.
pub async fn no_password_or_token_ever_reaches_the_logs(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
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
    // Opening the mailed link logs the request, never its token (a server without the
    // browser pages answers 404, and logs that request just the same).
    let page = client()
        .get(server.url(&format!("/ui/password/reset?token={reset_token}")))
        .send()
        .await
        .unwrap();
    let expected = if server.has_pages().await { 200 } else { 404 };
    assert_eq!(page.status().as_u16(), expected);
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

/// Case: it refuses to start without a real key where one is required.
pub async fn it_refuses_to_start_without_a_real_key_where_one_is_required(target: Target) {
    for env in [
        vec![("AUTH_ENV", "production")],
        vec![("SECRET_KEY", "too short")],
        vec![("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = std::process::Command::new(target.binary);
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
pub async fn the_seeds_curl_commands_work_as_written(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
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

/// Case: sigterm finishes and stops cleanly.
pub async fn sigterm_finishes_and_stops_cleanly(target: Target) {
    let server = Server::start(target, &[]).unwrap();
    register(&server, "nia@example.com").await;
    let (clean, log) = server.terminate();
    assert!(clean, "exit status 0 after SIGTERM:\n{log}");
    assert!(log.contains("shutting down") && log.contains("stopped"), "{log}");
}

/// Case: more contract failures.
pub async fn more_contract_failures(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
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
    crate::Answer::of(answer).await.assert_error(404, "not_found");

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
    crate::Answer::of(roles).await.assert_error(401, "invalid_token");
    let roles = client()
        .put(server.url(&format!("/admin/users/{wes_id}/roles")))
        .bearer_auth(&vic)
        .json(&json!({"roles": ["admin"]}))
        .send()
        .await
        .unwrap();
    crate::Answer::of(roles).await.assert_error(403, "forbidden");
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

/// Forwards TCP to the database until cut: then every connection is closed at once.
struct Cable {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Cable {
    async fn to(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (accept_up, accept_links) = (up.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if accept_up.load(Ordering::SeqCst) {
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    accept_links.lock().unwrap().push(link);
                }
            }
        });
        Self { port, up, links }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.links.lock().unwrap().drain(..).for_each(|link| link.abort());
    }

    fn mend(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Case: a database outage is 503 with retry after and the server recovers.
pub async fn a_database_outage_is_503_with_retry_after_and_the_server_recovers(target: Target) {
    let url = std::env::var("AUTH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let database: SocketAddr = "127.0.0.1:5432".parse().unwrap();
    if url != "postgres://postgres@127.0.0.1:5432/postgres" {
        eprintln!("notice: the outage test runs against the default local server only");
        return;
    }
    let cable = Cable::to(database).await;
    let through = format!("postgres://postgres@127.0.0.1:{}/postgres", cable.port);
    let Some(server) = Server::start(target, &[("DATABASE_URL", &through)]) else {
        return;
    };
    register(&server, "quin@example.com").await;
    let (access, _) = tokens(&server, "quin@example.com").await;

    cable.cut();
    let health = get(&server, "/health", None).await;
    health.assert_error(503, "unavailable");
    assert!(health.header("retry-after").is_some());
    let denied = login(&server, "quin@example.com", PASSWORD).await;
    denied.assert_error(503, "unavailable");
    get(&server, "/me", Some(&access))
        .await
        .assert_error(503, "unavailable");
    assert!(!server.log().contains("panicked"));

    cable.mend();
    // The PostgreSQL store notices the database is back at its next check (every 250 ms,
    // plus the time to connect): calls go through again from then on, without a restart.
    // The bound only turns a server that never recovers into a failure.
    let mended = std::time::Instant::now();
    loop {
        let health = get(&server, "/health", None).await;
        if health.status == 200 {
            break;
        }
        health.assert_error(503, "unavailable");
        assert!(
            mended.elapsed() < std::time::Duration::from_secs(10),
            "still 503 10 s after the database came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(login(&server, "quin@example.com", PASSWORD).await.status, 200);
    assert_eq!(get(&server, "/me", Some(&access)).await.status, 200);
}

/// The session's recorded IP, as `/sessions` shows it, of a login sending this header.
async fn recorded_ip(server: &Server, email: &str, forwarded: &str) -> String {
    let response = client()
        .post(server.url("/login"))
        .header("x-forwarded-for", forwarded)
        .form(&[("username", email), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    let sessions = get(server, "/sessions", Some(access)).await.json();
    let current = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap();
    current["ip"].as_str().unwrap().to_owned()
}

/// Case: x forwarded for is believed only from the trusted proxy.
pub async fn x_forwarded_for_is_believed_only_from_the_trusted_proxy(target: Target) {
    let untrusted = Server::start(target, &[]).unwrap();
    register(&untrusted, "rae@example.com").await;
    assert_eq!(
        recorded_ip(&untrusted, "rae@example.com", "203.0.113.9").await,
        "127.0.0.1"
    );

    // 30 sign-in attempts a client an hour, the default's count: none comes back while the
    // flood below runs, however slowly a loaded machine hashes.
    let behind_proxy = Server::start(
        target,
        &[
            ("TRUSTED_PROXY", "127.0.0.1"),
            ("AUTH_RATE_LIMIT_LOGIN_ATTEMPTS_PER_CLIENT", "30/hour"),
        ],
    )
    .unwrap();
    register(&behind_proxy, "rae@example.com").await;
    // The proxy appends the address it saw: the last hop is the one to believe.
    let ip = recorded_ip(&behind_proxy, "rae@example.com", "198.51.100.1, 203.0.113.9").await;
    assert_eq!(ip, "203.0.113.9");

    // Per-client limits follow the forwarded address: one client's flood is not another's.
    for i in 0..30 {
        let answer = client()
            .post(behind_proxy.url("/login"))
            .header("x-forwarded-for", "203.0.113.50")
            .form(&[
                ("username", &format!("flood{i}@example.com")),
                ("password", &"x".repeat(12)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 401);
    }
    let flooder = client()
        .post(behind_proxy.url("/login"))
        .header("x-forwarded-for", "203.0.113.50")
        .form(&[
            ("username", "flood31@example.com"),
            ("password", "x".repeat(12).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(flooder.status().as_u16(), 429);
    assert_eq!(
        recorded_ip(&behind_proxy, "rae@example.com", "203.0.113.51").await,
        "203.0.113.51"
    );
}

/// Case: rate limits come from the environment.
pub async fn rate_limits_come_from_the_environment(target: Target) {
    let server = Server::start(target, &[("AUTH_RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT", "2/hour")]).unwrap();
    register(&server, "sam@example.com").await;
    for _ in 0..2 {
        login(&server, "sam@example.com", "wrong password!")
            .await
            .assert_error(401, "invalid_credentials");
    }
    let limited = login(&server, "sam@example.com", "wrong password!").await;
    limited.assert_error(429, "rate_limited");
    assert_eq!(limited.header("retry-after"), Some("1800"));

    let off = Server::start(target, &[("AUTH_RATE_LIMITS", "off")]).unwrap();
    register(&off, "sam@example.com").await;
    for _ in 0..10 {
        login(&off, "sam@example.com", "wrong password!")
            .await
            .assert_error(401, "invalid_credentials");
    }
    assert!(off.log().contains("rate limiting is disabled"), "a loud warning");

    let bad = std::process::Command::new(target.binary)
        .env_clear()
        .env("BIND", "127.0.0.1:0")
        .env("AUTH_RATE_LIMIT_REGISTRATIONS_PER_CLIENT", "lots")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("AUTH_RATE_LIMIT_REGISTRATIONS_PER_CLIENT"));
}

/// A minimal SMTP server: hands over the DATA of every message it accepts.
async fn fake_smtp() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 fake\r\n",
                        "DATA" => {
                            write.write_all(b"354 go ahead\r\n").await.unwrap();
                            let mut data = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                data.push_str(&line);
                                data.push('\n');
                            }
                            let _ = sender.send(data);
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, receiver)
}

/// Case: smtp url sends mail through smtp.
pub async fn smtp_url_sends_mail_through_smtp(target: Target) {
    let (port, mut mails) = fake_smtp().await;
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let server = Server::start(
        target,
        &[
            ("SMTP_URL", &smtp_url),
            ("AUTH_MAIL_FROM", "Example <auth@example.test>"),
        ],
    )
    .unwrap();
    register(&server, "tia@example.com").await;
    let answer = crate::post_json(
        &server,
        "/password/forgot",
        serde_json::json!({"email": "tia@example.com"}),
        None,
    )
    .await;
    assert_eq!(answer.status, 202);
    let mail = tokio::time::timeout(std::time::Duration::from_secs(30), mails.recv())
        .await
        .expect("a mail arrives")
        .unwrap();
    assert!(mail.contains("To: tia@example.com"), "{mail}");
    assert!(mail.contains("From: Example <auth@example.test>"), "{mail}");
    assert!(
        mail.contains("https://auth.example.test/ui/password/reset?token=pr_"),
        "{mail}"
    );
    assert!(!server.outbox().exists(), "SMTP instead of the outbox");
}

/// Whether python3 can import python-jose, the seeds' JOSE library. In CI it must (a
/// missing tool fails the case); elsewhere the case is skipped with a notice.
pub(crate) fn python_jose_available() -> bool {
    let has_jose = std::process::Command::new("python3")
        .args(["-c", "import jose"])
        .status()
        .is_ok_and(|status| status.success());
    if !has_jose {
        let in_ci = std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"));
        assert!(!in_ci, "python-jose is required in CI (pip install python-jose)");
        eprintln!("notice: skipping the python-jose check: pip install python-jose");
    }
    has_jose
}

/// The seeds' own verification, character for character: python-jose's
/// `jwt.decode(token, SECRET_KEY, algorithms=[ALGORITHM])` accepts our access tokens.
pub async fn the_seeds_python_stack_verifies_our_access_tokens(target: Target) {
    if !python_jose_available() {
        return;
    }
    let secret = "a shared secret of at least thirty-two bytes";
    let server = Server::start(target, &[("SECRET_KEY", secret)]).unwrap();
    register(&server, "uma@example.com").await;
    let (access, _) = tokens(&server, "uma@example.com").await;
    let script = r#"
import sys
from jose import jwt
SECRET_KEY, ALGORITHM = sys.argv[1], "HS256"
payload = jwt.decode(sys.argv[2], SECRET_KEY, algorithms=[ALGORITHM])
print(payload.get("sub"), payload.get("email"))
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", script, secret, &access])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.trim().ends_with("uma@example.com"), "{printed}");
    // With another key, python-jose refuses it.
    let forged = std::process::Command::new("python3")
        .args(["-c", script, "another secret of at least thirty-two bytes", &access])
        .output()
        .unwrap();
    assert!(!forged.status.success());
}

/// The nice value of each thread of process `pid` named `auth-hash` (the hash pool's).
#[cfg(target_os = "linux")]
fn hashing_threads_niceness(pid: u32) -> Vec<i64> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if name.trim() == "auth-hash" {
            found.push(niceness_of(&task.join("stat").to_string_lossy()));
        }
    }
    found
}

/// The nice value in a `/proc/.../stat` file: its 19th field, the 17th after the command
/// name's closing parenthesis (the name may hold spaces).
#[cfg(target_os = "linux")]
fn niceness_of(stat: &str) -> i64 {
    let text = std::fs::read_to_string(stat).unwrap();
    let after_name = &text[text.rfind(')').unwrap() + 1..];
    after_name.split_whitespace().nth(16).unwrap().parse().unwrap()
}

/// Case: a saturated hash pool answers 503 busy at once.
pub async fn a_saturated_hash_pool_answers_503_busy_at_once(target: Target) {
    // One hashing thread and no queue: of many logins at once, those that find the
    // thread taken are refused as busy instead of waiting.
    let server = Server::start(
        target,
        &[
            ("AUTH_HASH_THREADS", "1"),
            ("AUTH_HASH_QUEUE", "0"),
            ("AUTH_HASH_NICENESS", "7"),
            ("AUTH_RATE_LIMITS", "off"),
        ],
    )
    .unwrap();
    let server = Arc::new(server);
    let attempts: Vec<_> = (0..32)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                crate::post_json(
                    &server,
                    "/register",
                    serde_json::json!({"email": format!("busy{i}@example.com"), "password": PASSWORD}),
                    None,
                )
                .await
            })
        })
        .collect();
    let mut busy = 0;
    for attempt in attempts {
        let answer = attempt.await.unwrap();
        match answer.status {
            201 => {}
            503 => {
                answer.assert_error(503, "busy");
                assert_eq!(answer.header("retry-after"), Some("1"));
                busy += 1;
            }
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert!(
        busy > 0,
        "32 concurrent hashes on one thread without a queue: some are refused"
    );
    // All that hashing ran on one thread of the pool's own, at the niceness asked for.
    #[cfg(target_os = "linux")]
    {
        let hashing = hashing_threads_niceness(server.pid());
        let server_niceness = niceness_of(&format!("/proc/{}/stat", server.pid()));
        assert_eq!(
            hashing,
            vec![(server_niceness + 7).min(19)],
            "one hashing thread, 7 above the server"
        );
    }
    // Busy refusals are counted, not logged one by one: the first of a second is a line
    // of its own, the rest of that second one line with their count (written with the
    // first event after that second). No error line: a flood must not multiply the log.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    login(&server, "nobody@example.com", "not the password")
        .await
        .assert_error(401, "invalid_credentials");
    // The count of the refusals precedes that login's line.
    let log = server.log_once_it_has("event=\"login_failed\"").await;
    let lines: Vec<&str> = log.lines().filter(|line| line.contains("event=\"busy\"")).collect();
    let counted: usize = lines
        .iter()
        .map(|line| {
            // A line of one refusal, or of the count it sums up.
            line.split("repeats=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map_or(1, |count| count.parse::<usize>().unwrap())
        })
        .sum();
    assert_eq!(counted, busy, "{log}");
    assert!(
        lines.len() <= 4,
        "at most a line and a count for each of two seconds: {log}"
    );
    assert!(!log.contains("ERROR"), "{log}");
}

/// Case: with `AUTH_PURGE_INTERVAL` set, the server deletes ended sessions by itself, and
/// leaves the live ones.
pub async fn ended_sessions_are_purged_on_the_interval(target: Target) {
    let Some(server) = Server::start(target, &[("AUTH_PURGE_INTERVAL", "1s")]) else {
        return;
    };
    register(&server, "pam@example.com").await;
    let (_, ended) = tokens(&server, "pam@example.com").await;
    let (_, live) = tokens(&server, "pam@example.com").await;
    let logout = post_json(&server, "/logout", json!({"refresh_token": ended}), None).await;
    assert_eq!(logout.status, 204, "{}", logout.text);
    // The purge runs off the request path: wait for the run that found the ended session.
    let purged = |log: &str| log.contains("purged ended sessions and spent tokens sessions=1");
    let mut log = server.log();
    for _ in 0..300 {
        if purged(&log) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        log = server.log();
    }
    assert!(purged(&log), "no purge of the ended session:\n{log}");
    assert!(
        log.contains("deleting ended sessions and spent tokens periodically every_secs=1"),
        "{log}"
    );
    let refreshed = post_json(&server, "/token/refresh", json!({"refresh_token": live}), None).await;
    assert_eq!(refreshed.status, 200, "the live session survives: {}", refreshed.text);
    assert!(!log.contains("ERROR") && !log.contains("panicked"), "{log}");
}

mod transport;
pub use transport::*;
mod password_rules;
pub use password_rules::*;
mod security;
pub use security::*;
mod mail_rules;
pub use mail_rules::*;
mod sqlite_lock;
pub use sqlite_lock::*;
mod keys;
pub use keys::*;
mod cors;
pub use cors::*;
mod redis_limits;
pub use redis_limits::*;
pub mod embedding;
mod openapi;
pub use openapi::*;
mod instances;
pub use instances::*;
pub mod second_factor;
pub use second_factor::{
    authenticator_apps_read_our_enrolment_and_make_codes_we_accept, codes_used_concurrently_sign_in_once,
    step_up_and_second_factor_roles, totp_secrets_are_sealed_at_rest_under_a_key_that_rotates,
    two_factor_authentication_from_enrolment_to_disabling,
};
mod external_login;
pub use external_login::*;
pub mod passkeys;
pub use passkeys::passkeys_register_sign_in_and_are_managed;
pub mod cluster;
mod faults;
pub mod load;
pub use faults::*;
