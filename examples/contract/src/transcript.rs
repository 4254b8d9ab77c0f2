//! The reference transcript: one scripted conversation over every route and every class
//! of error, whose answers (status, headers, body; tokens, ids, times and waits masked)
//! must equal `reference/transcript.json` exactly. Every server on every store compares
//! against the same file, so any difference between two of them (a status, a header, a
//! field, an error detail) fails a test instead of waiting to be noticed.
//!
//! After an intended change of the contract, write the file anew from one server with
//! `HTTP_CONTRACT_BLESS=1 cargo test -p example-axum --test contract transcript`, review
//! the diff, and run every server against it.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::cases::second_factor::{code_in, wrong_code};
use crate::{PASSWORD, Server, Target, client, last_mail};

/// Where the reference lives, in this crate.
const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/reference/transcript.json");

/// Response headers left out of the comparison: they vary by the clock or the transport.
const UNCOMPARED_HEADERS: [&str; 3] = ["date", "content-length", "connection"];

/// A request body.
enum Body {
    None,
    Json(Value),
    Form(&'static str),
    Raw(&'static str, String),
}

/// One request of the conversation and its answer, unmasked.
pub(crate) struct Exchange {
    /// The request's method.
    pub method: Method,
    /// The request's path and query.
    pub path: String,
    /// The answer's status.
    pub status: u16,
    /// The answer's headers.
    pub headers: reqwest::header::HeaderMap,
    /// The answer's body.
    pub text: String,
}

/// The conversation, one step at a time; answers are kept, masked, in order, and as they
/// came.
pub(crate) struct Conversation<'a> {
    server: &'a Server,
    steps: Vec<Value>,
    /// Every request and its answer, unmasked.
    pub exchanges: Vec<Exchange>,
}

impl Conversation<'_> {
    /// Sends one request and records its masked answer; returns the raw JSON body (or
    /// `Null`) for the script to take tokens and ids from.
    async fn step(&mut self, label: &str, method: &Method, path: &str, bearer: Option<&str>, body: Body) -> Value {
        let mut request = client().request(method.clone(), self.server.url(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(&value),
            Body::Form(form) => request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form),
            Body::Raw(content_type, text) => request.header("content-type", content_type).body(text),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let raw_headers = response.headers().clone();
        let mut headers = serde_json::Map::new();
        for (name, value) in response.headers() {
            let name = name.as_str().to_ascii_lowercase();
            if UNCOMPARED_HEADERS.contains(&name.as_str()) {
                continue;
            }
            let value = value.to_str().unwrap_or("<binary>");
            let value = if name == "retry-after" { "<seconds>" } else { value };
            headers.insert(name, json!(value));
        }
        let text = response.text().await.unwrap();
        let raw: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let body = if text.is_empty() {
            Value::Null
        } else if raw.is_null() {
            json!({ "text": mask_string(&text) })
        } else {
            mask(&raw)
        };
        self.steps.push(json!({
            "step": label,
            "request": format!("{method} {}", mask_string(path)),
            "status": status,
            "headers": headers,
            "body": body,
        }));
        self.exchanges.push(Exchange {
            method: method.clone(),
            path: path.to_owned(),
            status,
            headers: raw_headers,
            text,
        });
        raw
    }
}

/// Masks what differs from run to run: ids, tokens, times, the audit log's records.
fn mask(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(mask_string(text)),
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        // The audit log is written off the request path: which records an answer carries
        // depends on timing, so the transcript keeps only that it carries them (the
        // contract case checks them).
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| {
                    let masked = if k == "events" && v.is_array() {
                        json!("<events>")
                    } else if k == "challenge" && v.is_string() {
                        // A WebAuthn challenge: random per ceremony.
                        json!("<challenge>")
                    } else if k == "id" && v.as_str().is_some_and(is_webauthn_id) {
                        // A WebAuthn user handle or credential id (base64url).
                        json!("<webauthn_id>")
                    } else {
                        mask(v)
                    };
                    (k.clone(), masked)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A WebAuthn user handle or credential id as the options carry them: base64url, at
/// least 16 bytes' worth, and not a UUID (the ids of the API's own records).
fn is_webauthn_id(text: &str) -> bool {
    text.len() >= 22
        && uuid::Uuid::try_parse(text).is_err()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn mask_string(text: &str) -> String {
    // Paths carry ids: mask each segment.
    if text.starts_with('/') {
        return text.split('/').map(mask_string).collect::<Vec<_>>().join("/");
    }
    let opaque = ["rt_", "pr_", "ev_"].iter().any(|prefix| text.starts_with(prefix)) && text.len() > 40;
    let base32 = |s: &str| s.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
    let recovery_code = text.len() == 19
        && text.split('-').count() == 4
        && text
            .split('-')
            .all(|part| part.len() == 4 && base32(&part.to_ascii_uppercase()) && part == part.to_ascii_lowercase());
    let time = text.len() >= 20
        && text.as_bytes().get(4) == Some(&b'-')
        && text.as_bytes().get(10) == Some(&b'T')
        && text.ends_with('Z');
    if text.len() == 36 && uuid::Uuid::try_parse(text).is_ok() {
        "<uuid>".to_owned()
    } else if text.starts_with("eyJ") && text.matches('.').count() == 2 {
        "<jwt>".to_owned()
    } else if opaque {
        format!("<{}token>", &text[..3])
    } else if text.starts_with("mfa_") && text.len() > 40 {
        "<mfa_token>".to_owned()
    } else if text.starts_with("pkc_") && text.len() > 40 {
        "<pkc_token>".to_owned()
    } else if text.starts_with("otpauth://") {
        "<otpauth_uri>".to_owned()
    } else if text.starts_with("<?xml") && text.contains("<svg") {
        "<qr_svg>".to_owned()
    } else if text.len() == 32 && base32(text) {
        "<totp_secret>".to_owned()
    } else if recovery_code {
        "<recovery_code>".to_owned()
    } else if time {
        "<time>".to_owned()
    } else {
        text.to_owned()
    }
}

fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
        .to_owned()
}

/// `{"email": .., "password": ..}`.
fn credentials(email: &str, password: &str) -> Body {
    Body::Json(json!({ "email": email, "password": password }))
}

/// The environment the conversation needs: registration attempts and uses of mailed
/// links are many in it; the limits have their own cases.
pub(crate) const CONVERSATION_ENV: [(&str, &str); 3] = [
    ("AUTH_RATE_LIMIT_REGISTRATIONS_PER_CLIENT", "100/hour"),
    ("AUTH_RATE_LIMIT_CONFIRMATIONS_PER_CLIENT", "100/minute"),
    ("AUTH_RATE_LIMIT_LOGIN_ATTEMPTS_PER_CLIENT", "100/minute"),
];

/// Case: the answers match the reference transcript.
pub async fn the_answers_match_the_reference_transcript(target: Target) {
    let Some(server) = Server::start(target, &CONVERSATION_ENV) else {
        return;
    };
    let conversation = converse(&server).await;
    compare(&Value::Array(conversation.steps), Path::new(REFERENCE), target);
}

/// The scripted conversation over every route and every class of error, with `server`
/// (started with [`CONVERSATION_ENV`]).
pub(crate) async fn converse(server: &Server) -> Conversation<'_> {
    let mut c = Conversation {
        server,
        steps: Vec::new(),
        exchanges: Vec::new(),
    };
    let (get, post) = (Method::GET, Method::POST);
    let ada = |password: &str| credentials("ada@example.com", password);

    // Registration and its errors.
    c.step(
        "register",
        &post,
        "/register",
        None,
        credentials("  Ada@Example.COM ", PASSWORD),
    )
    .await;
    c.step("register a duplicate", &post, "/register", None, ada(PASSWORD))
        .await;
    let bad_email = credentials("not-an-email", PASSWORD);
    c.step("register a bad email", &post, "/register", None, bad_email)
        .await;
    let short = credentials("bea@example.com", "short");
    c.step("register a short password", &post, "/register", None, short)
        .await;
    let common = credentials("bea@example.com", "password123");
    c.step("register a common password", &post, "/register", None, common)
        .await;
    let malformed = Body::Raw("application/json", "{\"email\": ".to_owned());
    c.step("register malformed JSON", &post, "/register", None, malformed)
        .await;
    let missing = Body::Json(json!({ "email": "bea@example.com" }));
    c.step("register a missing field", &post, "/register", None, missing)
        .await;
    let text_body = Body::Raw("text/plain", "hello".to_owned());
    c.step("register as text", &post, "/register", None, text_body).await;
    let huge = Body::Raw(
        "application/json",
        format!("{{\"email\": \"{}\"}}", "a".repeat(70 * 1024)),
    );
    c.step("register a huge body", &post, "/register", None, huge).await;
    c.step("register by GET", &get, "/register", None, Body::None).await;
    c.step("an unknown route", &get, "/no/such/route", None, Body::None)
        .await;
    c.step("a trailing slash", &get, "/health/", None, Body::None).await;
    let options = Method::OPTIONS;
    c.step("register by OPTIONS", &options, "/register", None, Body::None)
        .await;
    let array = Body::Raw("application/json; charset=utf-8", "[1, 2]".to_owned());
    c.step("register a JSON array", &post, "/register", None, array).await;
    let empty = Body::Raw("application/json", String::new());
    c.step("register an empty body", &post, "/register", None, empty).await;
    c.step("health by HEAD", &Method::HEAD, "/health", None, Body::None)
        .await;
    c.step("health by POST", &post, "/health", None, Body::None).await;
    c.step("a session by GET", &get, "/sessions/nope", None, Body::None)
        .await;

    // Login, in every shape, and its failures.
    let form = Body::Form("username=ada%40example.com&password=correct+horse+battery+staple");
    let login = c.step("log in with the form", &post, "/login", None, form).await;
    let (access, refresh) = (text(&login, "access_token"), text(&login, "refresh_token"));
    let shouted = credentials("ADA@example.com", PASSWORD);
    c.step("log in with JSON", &post, "/login", None, shouted).await;
    c.step("a wrong password", &post, "/login", None, ada("a wrong guess"))
        .await;
    let unknown = credentials("nobody@example.com", PASSWORD);
    c.step("an unknown email", &post, "/login", None, unknown).await;
    let half_form = Body::Form("username=ada%40example.com");
    c.step("a form without password", &post, "/login", None, half_form)
        .await;
    let text_body = Body::Raw("text/plain", "x".to_owned());
    c.step("login as text", &post, "/login", None, text_body).await;

    // The account and its tokens.
    c.step("me", &get, "/me", Some(&access), Body::None).await;
    c.step("me without a token", &get, "/me", None, Body::None).await;
    c.step("me with garbage", &get, "/me", Some("garbage"), Body::None)
        .await;
    let refresh_with = |token: &str| Body::Json(json!({ "refresh_token": token }));
    let rotated = c
        .step("refresh", &post, "/token/refresh", None, refresh_with(&refresh))
        .await;
    c.step("refresh reused", &post, "/token/refresh", None, refresh_with(&refresh))
        .await;
    let next = text(&rotated, "refresh_token");
    c.step(
        "refresh after reuse",
        &post,
        "/token/refresh",
        None,
        refresh_with(&next),
    )
    .await;

    // Sessions.
    let login = c.step("log in again", &post, "/login", None, ada(PASSWORD)).await;
    let (access, refresh) = (text(&login, "access_token"), text(&login, "refresh_token"));
    c.step("sessions", &get, "/sessions", Some(&access), Body::None).await;
    c.step("sessions without a token", &get, "/sessions", None, Body::None)
        .await;
    let delete = Method::DELETE;
    c.step(
        "end a session that is not",
        &delete,
        "/sessions/nope",
        Some(&access),
        Body::None,
    )
    .await;
    let unknown = "/sessions/00000000-0000-7000-8000-000000000000";
    c.step("end an unknown session", &delete, unknown, Some(&access), Body::None)
        .await;
    let undecodable = "/sessions/%FF";
    c.step(
        "end a session in bad UTF-8",
        &delete,
        undecodable,
        Some(&access),
        Body::None,
    )
    .await;
    let second = c.step("a second login", &post, "/login", None, ada(PASSWORD)).await;
    // Listed with the second login's token, the second session is the current one.
    let second_access = text(&second, "access_token");
    let listed = c
        .step("three sessions", &get, "/sessions", Some(&second_access), Body::None)
        .await;
    let current = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|session| session["current"] == true);
    let other = format!("/sessions/{}", text(current.unwrap(), "id"));
    c.step("end the other session", &delete, &other, Some(&access), Body::None)
        .await;
    let dead = refresh_with(&text(&second, "refresh_token"));
    c.step("its refresh token is dead", &post, "/token/refresh", None, dead)
        .await;
    c.step("log out", &post, "/logout", None, refresh_with(&refresh)).await;
    c.step(
        "log out an unknown token",
        &post,
        "/logout",
        None,
        refresh_with("rt_nope"),
    )
    .await;

    // Password change.
    let login = c.step("log in to change", &post, "/login", None, ada(PASSWORD)).await;
    let access = text(&login, "access_token");
    let change = |current: &str, new: &str| Body::Json(json!({ "current_password": current, "new_password": new }));
    let wrong = change("not it", "a brand new passphrase");
    c.step(
        "change with a wrong password",
        &post,
        "/password/change",
        Some(&access),
        wrong,
    )
    .await;
    let weak = change(PASSWORD, "short");
    c.step(
        "change to a weak password",
        &post,
        "/password/change",
        Some(&access),
        weak,
    )
    .await;
    let good = change(PASSWORD, "a brand new passphrase");
    c.step("change the password", &post, "/password/change", Some(&access), good)
        .await;
    c.step("the old token is dead", &get, "/me", Some(&access), Body::None)
        .await;
    let login = c
        .step(
            "log in after the change",
            &post,
            "/login",
            None,
            ada("a brand new passphrase"),
        )
        .await;
    let access = text(&login, "access_token");

    // Verification (before the reset, which proves the address too).
    c.step(
        "ask for verification",
        &post,
        "/email/verification",
        Some(&access),
        Body::None,
    )
    .await;
    c.step("ask without a token", &post, "/email/verification", None, Body::None)
        .await;
    let (_, verify) = last_mail(&server.outbox(), "email_verification").await;
    let token = |token: &str| Body::Json(json!({ "token": token }));
    c.step(
        "verify with a bad token",
        &post,
        "/email/verify",
        None,
        token("ev_nope"),
    )
    .await;
    c.step("verify", &post, "/email/verify", None, token(&verify)).await;
    c.step("verified", &get, "/me", Some(&access), Body::None).await;

    // Reset.
    let forgot = |email: &str| Body::Json(json!({ "email": email }));
    c.step("forgot", &post, "/password/forgot", None, forgot("Ada@example.com"))
        .await;
    c.step(
        "forgot an unknown email",
        &post,
        "/password/forgot",
        None,
        forgot("nobody@example.com"),
    )
    .await;
    let (_, reset) = last_mail(&server.outbox(), "password_reset").await;
    let reset_with = |token: &str, password: &str| Body::Json(json!({ "token": token, "new_password": password }));
    let bogus = reset_with("pr_nope", "another new passphrase");
    c.step("reset with a bad token", &post, "/password/reset", None, bogus)
        .await;
    let weak = reset_with(&reset, "short");
    c.step("reset to a weak password", &post, "/password/reset", None, weak)
        .await;
    let done = reset_with(&reset, "another new passphrase");
    c.step("reset", &post, "/password/reset", None, done).await;
    let again = reset_with(&reset, "yet another passphrase");
    c.step("reset twice", &post, "/password/reset", None, again).await;
    let login = c
        .step(
            "log in after the reset",
            &post,
            "/login",
            None,
            ada("another new passphrase"),
        )
        .await;
    let access = text(&login, "access_token");

    // Administration.
    let bob = credentials("bob@example.com", PASSWORD);
    let bob_id = text(&c.step("register bob", &post, "/register", None, bob).await, "id");
    let login = c
        .step(
            "bob logs in",
            &post,
            "/login",
            None,
            credentials("bob@example.com", PASSWORD),
        )
        .await;
    let bob_access = text(&login, "access_token");
    c.step(
        "users, not an admin",
        &get,
        "/admin/users",
        Some(&bob_access),
        Body::None,
    )
    .await;
    c.step("users without a token", &get, "/admin/users", None, Body::None)
        .await;
    server.grant_role("ada@example.com", "admin");
    c.step("a role change ends old tokens", &get, "/me", Some(&access), Body::None)
        .await;
    let login = c
        .step("log in as admin", &post, "/login", None, ada("another new passphrase"))
        .await;
    let admin = text(&login, "access_token");
    c.step("users", &get, "/admin/users", Some(&admin), Body::None).await;
    c.step(
        "users, one page",
        &get,
        "/admin/users?limit=1",
        Some(&admin),
        Body::None,
    )
    .await;
    c.step(
        "users, a bad limit",
        &get,
        "/admin/users?limit=many",
        Some(&admin),
        Body::None,
    )
    .await;
    c.step(
        "users, a bad cursor",
        &get,
        "/admin/users?after=nope",
        Some(&admin),
        Body::None,
    )
    .await;
    let disable = format!("/admin/users/{bob_id}/disable");
    c.step("disable, not an admin", &post, &disable, Some(&bob_access), Body::None)
        .await;
    c.step(
        "disable a bad id",
        &post,
        "/admin/users/nope/disable",
        Some(&admin),
        Body::None,
    )
    .await;
    let nobody = "/admin/users/00000000-0000-7000-8000-000000000000/disable";
    c.step("disable an unknown account", &post, nobody, Some(&admin), Body::None)
        .await;
    c.step("disable bob", &post, &disable, Some(&admin), Body::None).await;
    c.step(
        "disabling ends bob's tokens",
        &get,
        "/me",
        Some(&bob_access),
        Body::None,
    )
    .await;
    let bob = credentials("bob@example.com", PASSWORD);
    c.step("bob is disabled", &post, "/login", None, bob).await;
    let bob_wrong = credentials("bob@example.com", "a wrong guess");
    c.step("disabled, wrong password", &post, "/login", None, bob_wrong)
        .await;
    let enable = format!("/admin/users/{bob_id}/enable");
    c.step("enable bob", &post, &enable, Some(&admin), Body::None).await;
    let roles = format!("/admin/users/{bob_id}/roles");
    let bad_roles = Body::Json(json!({ "roles": ["not a role!"] }));
    c.step("roles, a bad name", &Method::PUT, &roles, Some(&admin), bad_roles)
        .await;
    let good_roles = Body::Json(json!({ "roles": ["editor", "admin"] }));
    c.step("roles", &Method::PUT, &roles, Some(&admin), good_roles).await;
    c.step("roles by POST", &post, &roles, Some(&admin), Body::None).await;
    let login = c
        .step(
            "bob logs in again",
            &post,
            "/login",
            None,
            credentials("bob@example.com", PASSWORD),
        )
        .await;
    c.step(
        "bob's roles",
        &get,
        "/me",
        Some(&text(&login, "access_token")),
        Body::None,
    )
    .await;

    // An account's sessions, ended by an administrator; finding and inviting accounts.
    c.step(
        "find accounts by address",
        &get,
        "/admin/users?email=BOB%40",
        Some(&admin),
        Body::None,
    )
    .await;
    let bob_sessions = format!("/admin/users/{bob_id}/sessions");
    c.step("bob's sessions", &get, &bob_sessions, Some(&admin), Body::None)
        .await;
    c.step("bob's sessions, no token", &get, &bob_sessions, None, Body::None)
        .await;
    c.step(
        "end bob's sessions",
        &Method::DELETE,
        &bob_sessions,
        Some(&admin),
        Body::None,
    )
    .await;
    let nobody_sessions = "/admin/users/00000000-0000-7000-8000-000000000000/sessions";
    c.step(
        "an unknown account's sessions",
        &get,
        nobody_sessions,
        Some(&admin),
        Body::None,
    )
    .await;
    let invite = |email: &str| Body::Json(json!({ "email": email, "roles": ["editor"] }));
    c.step(
        "invite without a token",
        &post,
        "/admin/users",
        None,
        invite("ivy@example.com"),
    )
    .await;
    c.step("invite", &post, "/admin/users", Some(&admin), invite("Ivy@example.com"))
        .await;
    c.step(
        "invite a taken address",
        &post,
        "/admin/users",
        Some(&admin),
        invite("bob@example.com"),
    )
    .await;

    // Changing an address: asked for with the password, confirmed from the new address,
    // undone from the old one.
    let eli = |password: &str| credentials("eli@example.com", password);
    c.step("register eli", &post, "/register", None, eli(PASSWORD)).await;
    let login = c.step("eli logs in", &post, "/login", None, eli(PASSWORD)).await;
    let eli_access = text(&login, "access_token");
    let change = |password: &str| Body::Json(json!({ "new_email": "eli@example.org", "password": password }));
    c.step(
        "change the email without a token",
        &post,
        "/email/change",
        None,
        change(PASSWORD),
    )
    .await;
    let wrong = change("a wrong guess");
    c.step(
        "change the email, a wrong password",
        &post,
        "/email/change",
        Some(&eli_access),
        wrong,
    )
    .await;
    c.step(
        "change the email",
        &post,
        "/email/change",
        Some(&eli_access),
        change(PASSWORD),
    )
    .await;
    let (_, confirm) = last_mail(&server.outbox(), "email_change").await;
    c.step(
        "confirm with a bad token",
        &post,
        "/email/change/confirm",
        None,
        token("ec_nope"),
    )
    .await;
    c.step(
        "confirm the change",
        &post,
        "/email/change/confirm",
        None,
        token(&confirm),
    )
    .await;
    c.step(
        "confirm it twice",
        &post,
        "/email/change/confirm",
        None,
        token(&confirm),
    )
    .await;
    c.step(
        "the change ends the old token",
        &get,
        "/me",
        Some(&eli_access),
        Body::None,
    )
    .await;
    let (_, undo) = last_mail(&server.outbox(), "email_changed").await;
    c.step("undo the change", &post, "/email/change/undo", None, token(&undo))
        .await;
    c.step("undo it twice", &post, "/email/change/undo", None, token(&undo))
        .await;
    c.step("log in with the old address", &post, "/login", None, eli(PASSWORD))
        .await;

    // Deletion: by the owner (the password), and by an administrator.
    let fay = |password: &str| credentials("fay@example.com", password);
    let fay_id = text(
        &c.step("register fay", &post, "/register", None, fay(PASSWORD)).await,
        "id",
    );
    let login = c.step("fay logs in", &post, "/login", None, fay(PASSWORD)).await;
    let fay_access = text(&login, "access_token");
    c.step("fay's events without a token", &get, "/me/events", None, Body::None)
        .await;
    c.step(
        "fay's events, a bad cursor",
        &get,
        "/me/events?after=nope",
        Some(&fay_access),
        Body::None,
    )
    .await;
    c.step(
        "events, not an admin",
        &get,
        "/admin/events",
        Some(&fay_access),
        Body::None,
    )
    .await;
    c.step(
        "events of a kind never recorded",
        &get,
        "/admin/events?kind=never_recorded",
        Some(&admin),
        Body::None,
    )
    .await;
    c.step(
        "events of a malformed kind",
        &get,
        "/admin/events?kind=Login-Failed",
        Some(&admin),
        Body::None,
    )
    .await;
    c.step("export the account", &get, "/me/export", Some(&fay_access), Body::None)
        .await;
    c.step("export without a token", &get, "/me/export", None, Body::None)
        .await;
    let confirm_with = |password: &str| Body::Json(json!({ "password": password }));
    c.step(
        "delete the account without a token",
        &Method::DELETE,
        "/me",
        None,
        confirm_with(PASSWORD),
    )
    .await;
    let wrong = confirm_with("a wrong guess");
    c.step(
        "delete the account, a wrong password",
        &Method::DELETE,
        "/me",
        Some(&fay_access),
        wrong,
    )
    .await;
    c.step(
        "delete the account",
        &Method::DELETE,
        "/me",
        Some(&fay_access),
        confirm_with(PASSWORD),
    )
    .await;
    c.step(
        "the deleted account's token",
        &get,
        "/me",
        Some(&fay_access),
        Body::None,
    )
    .await;
    c.step("register fay again", &post, "/register", None, fay(PASSWORD))
        .await;
    let fay_user = format!("/admin/users/{fay_id}");
    c.step(
        "delete an account gone",
        &Method::DELETE,
        &fay_user,
        Some(&admin),
        Body::None,
    )
    .await;
    let login = c.step("fay logs in again", &post, "/login", None, fay(PASSWORD)).await;
    let fay_user = format!(
        "/admin/users/{}",
        text(
            &c.step(
                "fay's account",
                &get,
                "/me",
                Some(&text(&login, "access_token")),
                Body::None
            )
            .await,
            "id"
        )
    );
    c.step(
        "delete an account, not an admin",
        &Method::DELETE,
        &fay_user,
        Some(&text(&login, "access_token")),
        Body::None,
    )
    .await;
    c.step(
        "delete an account",
        &Method::DELETE,
        &fay_user,
        Some(&admin),
        Body::None,
    )
    .await;

    // Two-factor authentication: enrolment, the login challenge, recovery codes, disabling.
    let dee = |password: &str| credentials("dee@example.com", password);
    c.step("register dee", &post, "/register", None, dee(PASSWORD)).await;
    let login = c.step("dee logs in", &post, "/login", None, dee(PASSWORD)).await;
    let dee_access = text(&login, "access_token");
    c.step("me, no second factor", &get, "/me", Some(&dee_access), Body::None)
        .await;
    let reauthenticate = |password: &str| Body::Json(json!({ "password": password }));
    c.step(
        "totp setup without a token",
        &post,
        "/mfa/totp/setup",
        None,
        reauthenticate(PASSWORD),
    )
    .await;
    c.step(
        "totp setup, a wrong password",
        &post,
        "/mfa/totp/setup",
        Some(&dee_access),
        reauthenticate("not it"),
    )
    .await;
    let setup = c
        .step(
            "totp setup",
            &post,
            "/mfa/totp/setup",
            Some(&dee_access),
            reauthenticate(PASSWORD),
        )
        .await;
    let secret = text(&setup, "secret");
    let code = |value: String| Body::Json(json!({ "code": value }));
    c.step(
        "confirm, a wrong code",
        &post,
        "/mfa/totp/confirm",
        Some(&dee_access),
        code(wrong_code(&secret)),
    )
    .await;
    let confirmed = c
        .step(
            "confirm",
            &post,
            "/mfa/totp/confirm",
            Some(&dee_access),
            code(code_in(&secret, 0)),
        )
        .await;
    let recovery: Vec<String> = serde_json::from_value(confirmed["recovery_codes"].clone()).unwrap();
    c.step(
        "totp setup again",
        &post,
        "/mfa/totp/setup",
        Some(&dee_access),
        reauthenticate(PASSWORD),
    )
    .await;
    c.step("me, with a second factor", &get, "/me", Some(&dee_access), Body::None)
        .await;
    let asked = c
        .step("log in, a code asked for", &post, "/login", None, dee(PASSWORD))
        .await;
    let mfa_token = text(&asked, "mfa_token");
    let complete = |token: &str, fields: Value| {
        let mut body = json!({ "mfa_token": token });
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        Body::Json(body)
    };
    let wrong = complete(&mfa_token, json!({ "code": wrong_code(&secret) }));
    c.step("complete, a wrong code", &post, "/login/mfa", None, wrong).await;
    let both = complete(&mfa_token, json!({ "code": "123456", "recovery_code": recovery[0] }));
    c.step("complete, both codes", &post, "/login/mfa", None, both).await;
    let neither = complete(&mfa_token, json!({}));
    c.step("complete, no code", &post, "/login/mfa", None, neither).await;
    let bogus = complete("mfa_nope", json!({ "code": "123456" }));
    c.step("complete, a bad challenge", &post, "/login/mfa", None, bogus)
        .await;
    let next = code_in(&secret, 30);
    let good = complete(&mfa_token, json!({ "code": next }));
    c.step("complete with the code", &post, "/login/mfa", None, good).await;
    let again = complete(&mfa_token, json!({ "code": next }));
    c.step("complete twice", &post, "/login/mfa", None, again).await;
    let asked = c
        .step("log in for a recovery code", &post, "/login", None, dee(PASSWORD))
        .await;
    let rescue = complete(&text(&asked, "mfa_token"), json!({ "recovery_code": recovery[0] }));
    let signed_in = c
        .step("complete with a recovery code", &post, "/login/mfa", None, rescue)
        .await;
    let dee_access = text(&signed_in, "access_token");
    let fresh = c
        .step(
            "new recovery codes",
            &post,
            "/mfa/recovery-codes",
            Some(&dee_access),
            reauthenticate(PASSWORD),
        )
        .await;
    let fresh: Vec<String> = serde_json::from_value(fresh["recovery_codes"].clone()).unwrap();
    c.step(
        "disable without a code",
        &post,
        "/mfa/totp/disable",
        Some(&dee_access),
        reauthenticate(PASSWORD),
    )
    .await;
    let disable = Body::Json(json!({ "password": PASSWORD, "recovery_code": fresh[0] }));
    c.step("disable", &post, "/mfa/totp/disable", Some(&dee_access), disable)
        .await;
    let disable = Body::Json(json!({ "password": PASSWORD, "recovery_code": fresh[1] }));
    c.step("disable again", &post, "/mfa/totp/disable", Some(&dee_access), disable)
        .await;
    c.step("log in with the password alone", &post, "/login", None, dee(PASSWORD))
        .await;

    // Passkeys: registration, sign-in, management, and a passkey as the second factor.
    let gil = |password: &str| credentials("gil@example.com", password);
    c.step("register gil", &post, "/register", None, gil(PASSWORD)).await;
    let login = c.step("gil logs in", &post, "/login", None, gil(PASSWORD)).await;
    let gil_access = text(&login, "access_token");
    let empty = || Body::Json(json!({}));
    c.step(
        "passkey registration without a token",
        &post,
        "/passkeys/register/start",
        None,
        empty(),
    )
    .await;
    let begun = c
        .step(
            "begin a passkey registration",
            &post,
            "/passkeys/register/start",
            Some(&gil_access),
            empty(),
        )
        .await;
    let mut key = crate::cases::passkeys::Authenticator::default();
    let credential = key.create(&begun["options"]);
    let id = crate::cases::passkeys::credential_id(&credential);
    let registration =
        |name: &str| Body::Json(json!({ "ceremony": begun["ceremony"], "credential": credential, "name": name }));
    c.step(
        "register a passkey, a bad name",
        &post,
        "/passkeys/register/finish",
        Some(&gil_access),
        registration("   "),
    )
    .await;
    let added = c
        .step(
            "register the passkey",
            &post,
            "/passkeys/register/finish",
            Some(&gil_access),
            registration("Laptop"),
        )
        .await;
    let passkey = format!("/me/passkeys/{}", text(&added, "id"));
    c.step(
        "register it again",
        &post,
        "/passkeys/register/finish",
        Some(&gil_access),
        registration("Laptop"),
    )
    .await;
    c.step("gil's passkeys", &get, "/me/passkeys", Some(&gil_access), Body::None)
        .await;
    let start = c
        .step("begin a passkey sign-in", &post, "/passkeys/login/start", None, empty())
        .await;
    let assertion = key.assert(&start["options"], &id);
    let finish = Body::Json(json!({ "ceremony": start["ceremony"], "credential": assertion }));
    c.step(
        "sign in with the passkey",
        &post,
        "/passkeys/login/finish",
        None,
        finish,
    )
    .await;
    let finish = Body::Json(json!({ "ceremony": start["ceremony"], "credential": assertion }));
    c.step(
        "sign in with the ceremony again",
        &post,
        "/passkeys/login/finish",
        None,
        finish,
    )
    .await;
    let patch = Method::PATCH;
    let name = |name: &str| Body::Json(json!({ "name": name }));
    c.step("rename the passkey", &patch, &passkey, Some(&gil_access), name("Phone"))
        .await;
    c.step("rename, a bad name", &patch, &passkey, Some(&gil_access), name(""))
        .await;
    let unknown = "/me/passkeys/00000000-0000-7000-8000-000000000000";
    c.step(
        "rename an unknown passkey",
        &patch,
        unknown,
        Some(&gil_access),
        name("Phone"),
    )
    .await;
    c.step(
        "delete a passkey that is not",
        &delete,
        "/me/passkeys/nope",
        Some(&gil_access),
        Body::None,
    )
    .await;
    let setup = c
        .step(
            "gil's totp setup",
            &post,
            "/mfa/totp/setup",
            Some(&gil_access),
            reauthenticate(PASSWORD),
        )
        .await;
    let secret = text(&setup, "secret");
    c.step(
        "gil's totp confirmed",
        &post,
        "/mfa/totp/confirm",
        Some(&gil_access),
        code(code_in(&secret, 0)),
    )
    .await;
    let asked = c
        .step("log in, a passkey offered", &post, "/login", None, gil(PASSWORD))
        .await;
    let mfa_token = text(&asked, "mfa_token");
    let bogus = Body::Json(json!({ "mfa_token": "mfa_nope" }));
    c.step(
        "a passkey for a bad challenge",
        &post,
        "/login/mfa/passkey/start",
        None,
        bogus,
    )
    .await;
    let second = c
        .step(
            "begin a passkey second factor",
            &post,
            "/login/mfa/passkey/start",
            None,
            Body::Json(json!({ "mfa_token": mfa_token })),
        )
        .await;
    let assertion = key.assert(&second["options"], &id);
    let body = json!({ "mfa_token": mfa_token, "ceremony": second["ceremony"], "credential": assertion });
    let completed = c
        .step(
            "complete with the passkey",
            &post,
            "/login/mfa/passkey/finish",
            None,
            Body::Json(body),
        )
        .await;
    let gil_access = text(&completed, "access_token");
    c.step("delete the passkey", &delete, &passkey, Some(&gil_access), Body::None)
        .await;
    c.step(
        "gil's passkeys, none",
        &get,
        "/me/passkeys",
        Some(&gil_access),
        Body::None,
    )
    .await;

    // Everywhere, keys, health, and the login limit.
    c.step("log out everywhere", &post, "/logout/all", Some(&admin), Body::None)
        .await;
    c.step("after logging out everywhere", &get, "/me", Some(&admin), Body::None)
        .await;
    c.step("log out everywhere, no token", &post, "/logout/all", None, Body::None)
        .await;
    c.step("keys", &get, "/.well-known/jwks.json", None, Body::None).await;
    c.step("health", &get, "/health", None, Body::None).await;
    let carl = credentials("carl@example.com", PASSWORD);
    c.step("register carl", &post, "/register", None, carl).await;
    for attempt in 1..=6 {
        let label = format!("carl's wrong password #{attempt}");
        let wrong = credentials("carl@example.com", "a wrong guess");
        c.step(&label, &post, "/login", None, wrong).await;
    }

    c
}

fn compare(actual: &Value, reference: &Path, target: Target) {
    let pretty = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var("HTTP_CONTRACT_BLESS").is_ok_and(|value| value == "1") {
        std::fs::create_dir_all(reference.parent().unwrap()).unwrap();
        std::fs::write(reference, &pretty).unwrap();
        eprintln!("wrote {}", reference.display());
        return;
    }
    let expected: Value = std::fs::read_to_string(reference)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| {
            panic!(
                "no reference at {}: write it with HTTP_CONTRACT_BLESS=1",
                reference.display()
            )
        });
    if &expected == actual {
        return;
    }
    let saved = std::env::temp_dir().join(format!("transcript-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&saved, &pretty).unwrap();
    let empty = Value::Null;
    let (expected, actual) = (expected.as_array().unwrap(), actual.as_array().unwrap());
    for index in 0..expected.len().max(actual.len()) {
        let (want, got) = (
            expected.get(index).unwrap_or(&empty),
            actual.get(index).unwrap_or(&empty),
        );
        if want != got {
            panic!(
                "{} on {:?} differs from the reference transcript at step {index}:\nexpected {}\nactual   {}\n\
                 (the whole answer is in {})",
                target.binary,
                target.backend,
                serde_json::to_string_pretty(want).unwrap(),
                serde_json::to_string_pretty(got).unwrap(),
                saved.display(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volatile_values_are_masked_and_nothing_else() {
        assert_eq!(mask_string("0192f0c4-8a7e-7cc3-9f3b-1d2e3f4a5b6c"), "<uuid>");
        assert_eq!(mask_string("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"), "<jwt>");
        assert_eq!(mask_string(&format!("rt_{}", "A".repeat(43))), "<rt_token>");
        assert_eq!(mask_string("2026-11-30T10:32:14.123456Z"), "<time>");
        assert_eq!(
            mask_string("/admin/users/0192f0c4-8a7e-7cc3-9f3b-1d2e3f4a5b6c/roles"),
            "/admin/users/<uuid>/roles"
        );
        assert_eq!(mask_string(&format!("mfa_{}", "A".repeat(43))), "<mfa_token>");
        assert_eq!(mask_string("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"), "<totp_secret>");
        assert_eq!(mask_string("abcd-ef23-ghij-kl7m"), "<recovery_code>");
        assert_eq!(mask_string("otpauth://totp/a:b?secret=X"), "<otpauth_uri>");
        for kept in [
            "rt_nope",
            "mfa_nope",
            "ada@example.com",
            "invalid credentials",
            "/health",
            "2026",
            "abcd-efgh",
        ] {
            assert_eq!(mask_string(kept), kept);
        }
    }
}
