//! Two-factor authentication over HTTP: enrolment, the login challenge, recovery codes,
//! the step-up rule and per-role enforcement, secrets at rest, and the authenticator apps'
//! own libraries and tools (pyotp, oathtool, zbarimg) as the peers.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{Answer, PASSWORD, Server, Target, get, last_mail, last_message, login, post_json, register, tokens};

/// The code an authenticator app shows for `secret` (base32) `offset` seconds from now.
pub fn code_in(secret: &str, offset: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).unwrap();
    let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    totp.generate(now.saturating_add_signed(offset)).to_string()
}

/// A six-digit code that is none of the codes of the steps around now: wrong for sure.
pub fn wrong_code(secret: &str) -> String {
    let near: Vec<String> = (-2..=2).map(|step| code_in(secret, step * 30)).collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|code| !near.contains(code))
        .unwrap()
}

/// The claims of a JWT, unverified (the server's own token, read for `amr`).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// Registers `email`, logs in, enrols and confirms an authenticator app: the access
/// token, the secret (base32) and the recovery codes. The confirming code's time step is
/// spent; the next TOTP use takes the next step's code ([`code_in`] 30 s on).
pub async fn enrolled(server: &Server, email: &str) -> (String, String, Vec<String>) {
    register(server, email).await;
    let (access, _) = tokens(server, email).await;
    let setup = post_json(
        server,
        "/mfa/totp/setup",
        json!({ "password": PASSWORD }),
        Some(&access),
    )
    .await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    let secret = setup.json()["secret"].as_str().unwrap().to_owned();
    let confirmed = post_json(
        server,
        "/mfa/totp/confirm",
        json!({ "code": code_in(&secret, 0) }),
        Some(&access),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    let codes = confirmed.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    (access, secret, codes)
}

/// Logs in with the password: the challenge's token.
pub async fn challenge(server: &Server, email: &str) -> String {
    let answer = login(server, email, PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["mfa_required"], true, "{body}");
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn complete(server: &Server, mfa_token: &str, field: &str, code: &str) -> Answer {
    post_json(
        server,
        "/login/mfa",
        json!({ "mfa_token": mfa_token, field: code }),
        None,
    )
    .await
}

/// Case: two-factor authentication from enrolment to disabling, over HTTP.
pub async fn two_factor_authentication_from_enrolment_to_disabling(target: Target) {
    // Many wrong codes on purpose: the account's per-minute allowance is the limits'
    // case, not this one's.
    let env = [("AUTH_RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT", "100/minute")];
    let Some(server) = Server::start(target, &env) else {
        return;
    };
    register(&server, "tia@example.com").await;
    let (access, _) = tokens(&server, "tia@example.com").await;
    let (other, _) = tokens(&server, "tia@example.com").await;
    let me = get(&server, "/me", Some(&access)).await.json();
    assert_eq!(me["mfa"], json!({ "totp": false, "recovery_codes_left": 0 }));

    let wrong = post_json(
        &server,
        "/mfa/totp/setup",
        json!({ "password": "not it" }),
        Some(&access),
    )
    .await;
    wrong.assert_error(401, "invalid_credentials");
    let setup = post_json(
        &server,
        "/mfa/totp/setup",
        json!({ "password": PASSWORD }),
        Some(&access),
    )
    .await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    assert_eq!(setup.header("cache-control"), Some("no-store"));
    let body = setup.json();
    let secret = body["secret"].as_str().unwrap().to_owned();
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/auth-rs:tia%40example.com?"), "{uri}");
    assert!(
        uri.contains(&format!("secret={secret}")) && uri.contains("issuer=auth-rs"),
        "{uri}"
    );
    assert!(body["qr_svg"].as_str().unwrap().contains("<svg"), "{body}");
    // Until confirmed, login is as before.
    assert!(login(&server, "tia@example.com", PASSWORD).await.json()["access_token"].is_string());

    let refused = post_json(
        &server,
        "/mfa/totp/confirm",
        json!({ "code": wrong_code(&secret) }),
        Some(&access),
    )
    .await;
    refused.assert_error(400, "invalid_code");
    let confirmed = post_json(
        &server,
        "/mfa/totp/confirm",
        json!({ "code": code_in(&secret, 0) }),
        Some(&access),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    let codes: Vec<String> = serde_json::from_value(confirmed.json()["recovery_codes"].clone()).unwrap();
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|code| code.len() == 19), "{codes:?}");
    let notice = last_message(&server.outbox(), "totp_enabled").await;
    assert!(notice.contains("Two-factor authentication is on"), "{notice}");
    // The other session ended; this one stays.
    get(&server, "/me", Some(&other))
        .await
        .assert_error(401, "invalid_token");
    let me = get(&server, "/me", Some(&access)).await.json();
    assert_eq!(me["mfa"], json!({ "totp": true, "recovery_codes_left": 10 }));
    let again = post_json(
        &server,
        "/mfa/totp/setup",
        json!({ "password": PASSWORD }),
        Some(&access),
    )
    .await;
    again.assert_error(409, "already_enrolled");

    // The password alone gives a challenge, no token.
    let answer = login(&server, "tia@example.com", PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let body = answer.json();
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    assert_eq!(body["expires_in"], 300);
    assert!(body.get("access_token").is_none(), "{body}");
    let mfa_token = body["mfa_token"].as_str().unwrap().to_owned();
    complete(&server, &mfa_token, "code", &wrong_code(&secret))
        .await
        .assert_error(401, "invalid_code");
    let next = code_in(&secret, 30);
    let signed_in = complete(&server, &mfa_token, "code", &next).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let token_claims = claims(signed_in.json()["access_token"].as_str().unwrap());
    assert_eq!(token_claims["amr"], json!(["mfa", "otp", "pwd"]), "{token_claims}");
    assert!(token_claims["auth_time"].is_i64(), "{token_claims}");
    // The challenge is spent, and the code too (on a new challenge: a replay).
    complete(&server, &mfa_token, "code", &next)
        .await
        .assert_error(401, "invalid_code");
    let fresh = challenge(&server, "tia@example.com").await;
    complete(&server, &fresh, "code", &next)
        .await
        .assert_error(401, "invalid_code");

    // Five wrong codes kill a challenge, the right one included afterwards.
    let doomed = challenge(&server, "tia@example.com").await;
    for _ in 0..5 {
        complete(&server, &doomed, "recovery_code", "aaaa-bbbb-cccc-dddd")
            .await
            .assert_error(401, "invalid_code");
    }
    complete(&server, &doomed, "recovery_code", &codes[0])
        .await
        .assert_error(401, "invalid_code");

    // A recovery code signs in once.
    let rescue = challenge(&server, "tia@example.com").await;
    let signed_in = complete(&server, &rescue, "recovery_code", &codes[0].to_uppercase()).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let access = signed_in.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&access)["amr"], json!(["mfa", "pwd", "recovery_code"]));
    let spent = challenge(&server, "tia@example.com").await;
    complete(&server, &spent, "recovery_code", &codes[0])
        .await
        .assert_error(401, "invalid_code");
    assert_eq!(
        get(&server, "/me", Some(&access)).await.json()["mfa"]["recovery_codes_left"],
        9
    );
    // A body with both codes, or neither, is malformed.
    let both = json!({ "mfa_token": spent, "code": "123456", "recovery_code": codes[1] });
    post_json(&server, "/login/mfa", both, None)
        .await
        .assert_error(400, "invalid_request");
    post_json(&server, "/login/mfa", json!({ "mfa_token": spent }), None)
        .await
        .assert_error(400, "invalid_request");

    // New codes replace the old ones.
    let regenerated = post_json(
        &server,
        "/mfa/recovery-codes",
        json!({ "password": PASSWORD }),
        Some(&access),
    )
    .await;
    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    let fresh_codes: Vec<String> = serde_json::from_value(regenerated.json()["recovery_codes"].clone()).unwrap();
    let old = challenge(&server, "tia@example.com").await;
    complete(&server, &old, "recovery_code", &codes[1])
        .await
        .assert_error(401, "invalid_code");

    // Disabling needs the password and a code.
    let no_code = post_json(
        &server,
        "/mfa/totp/disable",
        json!({ "password": PASSWORD }),
        Some(&access),
    )
    .await;
    no_code.assert_error(400, "invalid_code");
    let bad_password = json!({ "password": "not it", "recovery_code": fresh_codes[0] });
    post_json(&server, "/mfa/totp/disable", bad_password, Some(&access))
        .await
        .assert_error(401, "invalid_credentials");
    let disable = json!({ "password": PASSWORD, "recovery_code": fresh_codes[0] });
    let disabled = post_json(&server, "/mfa/totp/disable", disable, Some(&access)).await;
    assert_eq!(disabled.status, 204, "{}", disabled.text);
    let notice = last_message(&server.outbox(), "totp_disabled").await;
    assert!(notice.contains("Two-factor authentication is off"), "{notice}");
    assert!(login(&server, "tia@example.com", PASSWORD).await.json()["access_token"].is_string());
    post_json(
        &server,
        "/mfa/totp/disable",
        json!({ "password": PASSWORD, "code": "123456" }),
        Some(&access),
    )
    .await
    .assert_error(409, "not_enrolled");

    // No secret of any of it reached the log: the key, a recovery code, a challenge.
    let log = server.log();
    assert!(
        log.contains("second_factor_challenged") && log.contains("totp_enabled"),
        "{log}"
    );
    for secret in [
        secret.as_str(),
        codes[1].as_str(),
        fresh_codes[2].as_str(),
        mfa_token.as_str(),
    ] {
        assert!(!log.contains(secret), "{secret} is in the log");
    }
}

/// Case: one recovery code or one TOTP code, presented at once many times, signs in once.
pub async fn codes_used_concurrently_sign_in_once(target: Target) {
    let Some(server) = Server::start(target, &[("AUTH_RATE_LIMITS", "off")]) else {
        return;
    };
    let (_, secret, codes) = enrolled(&server, "uli@example.com").await;
    for (field, code, racers) in [
        ("recovery_code", codes[4].clone(), 20),
        ("code", code_in(&secret, 30), 2),
    ] {
        let mfa_token = challenge(&server, "uli@example.com").await;
        let attempts: Vec<_> = (0..racers)
            .map(|_| {
                let (base, mfa_token, code) = (server.base.clone(), mfa_token.clone(), code.clone());
                tokio::spawn(async move {
                    let body = json!({ "mfa_token": mfa_token, field: code });
                    crate::client()
                        .post(format!("{base}/login/mfa"))
                        .json(&body)
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for attempt in attempts {
            statuses.push(attempt.await.unwrap());
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{field}: {statuses:?}"
        );
        assert!(statuses.iter().all(|s| matches!(s, 200 | 401)), "{field}: {statuses:?}");
    }
    // The recovery code is spent for good, on a new challenge too.
    let again = challenge(&server, "uli@example.com").await;
    complete(&server, &again, "recovery_code", &codes[4])
        .await
        .assert_error(401, "invalid_code");
}

/// Case: sensitive actions need a recent sign-in or the code, and roles named in
/// `AUTH_MFA_REQUIRED_ROLES` need a login with a second factor.
pub async fn step_up_and_second_factor_roles(target: Target) {
    // A window of zero: every sensitive action asks for the code again.
    let env = [("AUTH_STEP_UP_MINUTES", "0"), ("AUTH_MFA_REQUIRED_ROLES", "admin")];
    let Some(server) = Server::start(target, &env) else {
        return;
    };
    register(&server, "vic@example.com").await;
    server.grant_role("vic@example.com", "admin");
    let (access, _) = tokens(&server, "vic@example.com").await;
    let refused = get(&server, "/admin/users", Some(&access)).await;
    refused.assert_error(403, "mfa_required");

    // Enrol (the setup's own proof is the password), then sign in with the code.
    let setup = post_json(
        &server,
        "/mfa/totp/setup",
        json!({ "password": PASSWORD }),
        Some(&access),
    )
    .await;
    let secret = setup.json()["secret"].as_str().unwrap().to_owned();
    let confirmed = post_json(
        &server,
        "/mfa/totp/confirm",
        json!({ "code": code_in(&secret, 0) }),
        Some(&access),
    )
    .await;
    let codes: Vec<String> = serde_json::from_value(confirmed.json()["recovery_codes"].clone()).unwrap();
    get(&server, "/admin/users", Some(&access))
        .await
        .assert_error(403, "mfa_required");
    let mfa_token = challenge(&server, "vic@example.com").await;
    let signed_in = complete(&server, &mfa_token, "code", &code_in(&secret, 30)).await;
    let access = signed_in.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get(&server, "/admin/users", Some(&access)).await.status, 200);

    let without = post_json(
        &server,
        "/mfa/recovery-codes",
        json!({ "password": PASSWORD }),
        Some(&access),
    )
    .await;
    without.assert_error(401, "insufficient_user_authentication");
    let challenge_header = without.header("www-authenticate").unwrap();
    assert_eq!(
        challenge_header,
        r#"Bearer error="insufficient_user_authentication", max_age=0"#
    );
    let with_code = json!({ "password": PASSWORD, "recovery_code": codes[0] });
    let regenerated = post_json(&server, "/mfa/recovery-codes", with_code, Some(&access)).await;
    assert_eq!(regenerated.status, 200, "{}", regenerated.text);
    let codes: Vec<String> = serde_json::from_value(regenerated.json()["recovery_codes"].clone()).unwrap();

    let change = json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" });
    post_json(&server, "/password/change", change, Some(&access))
        .await
        .assert_error(401, "insufficient_user_authentication");
    let change = json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase", "recovery_code": "zzzz-zzzz-zzzz-zzzz" });
    post_json(&server, "/password/change", change, Some(&access))
        .await
        .assert_error(400, "invalid_code");
    let change =
        json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase", "recovery_code": codes[0] });
    let changed = post_json(&server, "/password/change", change, Some(&access)).await;
    assert_eq!(changed.status, 204, "{}", changed.text);

    // A password reset never bypasses the factor.
    post_json(&server, "/password/forgot", json!({ "email": "vic@example.com" }), None).await;
    let (_, reset) = last_mail(&server.outbox(), "password_reset").await;
    let body = json!({ "token": reset, "new_password": "a reset passphrase 2026" });
    assert_eq!(post_json(&server, "/password/reset", body, None).await.status, 204);
    let after = login(&server, "vic@example.com", "a reset passphrase 2026").await;
    assert_eq!(after.json()["mfa_required"], true, "{}", after.text);
}

/// Whether `command` runs; in CI it must (a missing peer is a failure), elsewhere a
/// notice says how to get it.
fn tool_available(command: &str, args: &[&str], install: &str) -> bool {
    let found = std::process::Command::new(command)
        .args(args)
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        let in_ci = std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"));
        assert!(!in_ci, "{command} is required in CI ({install})");
        eprintln!("notice: skipping a check that needs {command}: {install}");
    }
    found
}

fn run(command: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(command).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{command} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Case: the authenticator apps' libraries and tools read our enrolment and make codes we
/// accept: pyotp parses the `otpauth://` URI back to the same secret, issuer and label and
/// its code confirms; `oathtool`'s code completes a login; `zbarimg` reads the QR code
/// (rendered to PNG by `rsvg-convert`) back to the URI.
pub async fn authenticator_apps_read_our_enrolment_and_make_codes_we_accept(target: Target) {
    let tools = [
        ("python3", &["-c", "import pyotp"][..], "pip install pyotp"),
        ("oathtool", &["--version"][..], "apt-get install oathtool"),
        ("zbarimg", &["--version"][..], "apt-get install zbar-tools"),
        ("rsvg-convert", &["--version"][..], "apt-get install librsvg2-bin"),
    ];
    if !tools
        .iter()
        .all(|(command, args, install)| tool_available(command, args, install))
    {
        return;
    }
    let server = Server::start(target, &[("AUTH_UI_SITE_NAME", "Example Co")]).unwrap();
    register(&server, "wyn@example.com").await;
    let (access, _) = tokens(&server, "wyn@example.com").await;
    let setup = post_json(
        &server,
        "/mfa/totp/setup",
        json!({ "password": PASSWORD }),
        Some(&access),
    )
    .await;
    let body = setup.json();
    let (secret, uri) = (body["secret"].as_str().unwrap(), body["otpauth_uri"].as_str().unwrap());

    let parsed = run(
        "python3",
        &[
            "-c",
            "import sys, pyotp; t = pyotp.parse_uri(sys.argv[1]); print(t.secret, t.issuer, t.name, t.digits, t.interval, t.digest().name, sep='|')",
            uri,
        ],
    );
    assert_eq!(parsed, format!("{secret}|Example Co|wyn@example.com|6|30|sha1"));

    // The QR code says the URI.
    let dir = tempfile::tempdir().unwrap();
    let (svg, png) = (dir.path().join("qr.svg"), dir.path().join("qr.png"));
    std::fs::write(&svg, body["qr_svg"].as_str().unwrap()).unwrap();
    run("rsvg-convert", &[svg.to_str().unwrap(), "-o", png.to_str().unwrap()]);
    let decoded = run("zbarimg", &["--quiet", "--raw", png.to_str().unwrap()]);
    assert_eq!(decoded, uri);

    // pyotp's code (from the URI) confirms; oathtool's (from the secret), one step on,
    // completes a login.
    let pyotp_code = run(
        "python3",
        &[
            "-c",
            "import sys, pyotp; print(pyotp.parse_uri(sys.argv[1]).now())",
            uri,
        ],
    );
    let confirmed = post_json(
        &server,
        "/mfa/totp/confirm",
        json!({ "code": pyotp_code }),
        Some(&access),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    // oathtool gets the secret from the URI, as an app scanning the QR code does.
    let from_uri = uri
        .split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|pair| pair.strip_prefix("secret="))
        .unwrap();
    assert_eq!(from_uri, secret);
    let next_step = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 30;
    let oath_code = run(
        "oathtool",
        &["--totp", "--base32", "--now", &format!("@{next_step}"), from_uri],
    );
    let mfa_token = challenge(&server, "wyn@example.com").await;
    let signed_in = complete(&server, &mfa_token, "code", &oath_code).await;
    assert_eq!(signed_in.status, 200, "oathtool's code: {}", signed_in.text);
}

/// Case: TOTP secrets are sealed at rest, production refuses to start without the key,
/// and a rotated key still opens them.
pub async fn totp_secrets_are_sealed_at_rest_under_a_key_that_rotates(target: Target) {
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let server = Server::start(target, &[("AUTH_ENCRYPTION_KEY", &key)]).unwrap();
    let (_, secret, codes) = enrolled(&server, "xia@example.com").await;
    let raw = base32_decode(&secret);
    for entry in std::fs::read_dir(server.dir.path()).unwrap().flatten() {
        let path = entry.path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes())
                || bytes.windows(raw.len()).any(|w| w == raw.as_slice());
            assert!(!found, "the secret is in {} in the clear", path.display());
        }
    }

    // Rotated: a new key current, the old one previous; codes still work.
    let new_key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let server = server.restart_with(&[
        ("AUTH_ENCRYPTION_KEY", &new_key),
        ("AUTH_ENCRYPTION_PREVIOUS_KEYS", &key),
    ]);
    let mfa_token = challenge(&server, "xia@example.com").await;
    let signed_in = complete(&server, &mfa_token, "code", &code_in(&secret, 30)).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    // Without the old key (and before anything resealed it), the secret cannot be opened:
    // the login fails as a fault of the server's, never as a pass.
    let server = server.restart_with(&[(
        "AUTH_ENCRYPTION_KEY",
        &base64::engine::general_purpose::STANDARD.encode([1u8; 32]),
    )]);
    let mfa_token = challenge(&server, "xia@example.com").await;
    let answer = complete(&server, &mfa_token, "code", &code_in(&secret, 60)).await;
    assert_eq!(answer.status, 500, "{}", answer.text);
    // Recovery codes are hashes, not sealed: they still sign in.
    let mfa_token = challenge(&server, "xia@example.com").await;
    let rescued = complete(&server, &mfa_token, "recovery_code", &codes[0]).await;
    assert_eq!(rescued.status, 200, "{}", rescued.text);

    // Production without the key refuses to start, naming it.
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(target.binary)
        .env_clear()
        .env("BIND", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("auth.db").display()),
        )
        .env("AUTH_ENV", "production")
        .env("SECRET_KEY", "a production secret of at least 32 bytes")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AUTH_ENCRYPTION_KEY"), "{stderr}");
    let output = std::process::Command::new(target.binary)
        .env_clear()
        .env("BIND", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("auth.db").display()),
        )
        .env("AUTH_ENCRYPTION_KEY", "c2hvcnQ=")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("AUTH_ENCRYPTION_KEY"));
}

fn base32_decode(secret: &str) -> Vec<u8> {
    totp_rs::Secret::try_from_base32(secret).unwrap().as_ref().to_vec()
}
