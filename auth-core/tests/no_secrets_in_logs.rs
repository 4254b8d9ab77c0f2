//! Every flow, logged at TRACE level on every thread: no password, token, hash or key may
//! appear in the output.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::io::Write;
use std::sync::{Arc, Mutex};

use auth_core::{
    Argon2Hasher, Argon2Params, AuthService, ClientInfo, Email, HashedPassword, MemoryStore, Password, PasswordHasher,
    SigningKey, Tokens, User, UserStore,
};
use time::macros::datetime;

const SECRET_KEY: &str = "log-test-secret-key-0123456789abcdef";
const PASSWORDS: [&str; 4] = [
    "first-Secret-Passw0rd",
    "second-Secret-Passw0rd",
    "wrong-Secret-Guess",
    "legacy-Secret-Passw0rd",
];

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    // Global, so the hashing threads log into the capture too.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let store = MemoryStore::new();
    let tokens = Tokens::new(
        SigningKey::hs256(SECRET_KEY.as_bytes()).unwrap(),
        "https://auth.test",
        "test-api",
    );
    let cheap = Argon2Hasher::new(Argon2Params::new(64, 1, 1).unwrap());
    let auth = AuthService::new(store.clone(), tokens).with_hasher(cheap.clone());
    let mut secrets: Vec<String> = PASSWORDS.iter().map(|p| p.to_string()).collect();
    secrets.push(SECRET_KEY.to_owned());

    let user = auth
        .register(
            "Log.Test@example.com",
            Password::new(PASSWORDS[0]),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap();
    secrets.push(user.password_hash.clone().unwrap().as_str().to_owned());
    let _ = auth
        .login(
            "log.test@example.com",
            Password::new(PASSWORDS[2]),
            &ClientInfo::unknown(),
        )
        .await;
    let _ = auth
        .login(
            "nobody@example.com",
            Password::new(PASSWORDS[2]),
            &ClientInfo::unknown(),
        )
        .await;
    let login = auth
        .login(
            "log.test@example.com",
            Password::new(PASSWORDS[0]),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    secrets.push(login.tokens.access_token.expose_secret().to_owned());
    auth.authenticate(login.tokens.access_token.expose_secret())
        .await
        .unwrap();
    let _ = auth
        .authenticate(&format!("{}x", login.tokens.access_token.expose_secret()))
        .await;
    let _ = auth
        .register(
            "log.test@example.com",
            Password::new(PASSWORDS[1]),
            &ClientInfo::unknown(),
        )
        .await;
    let _ = auth
        .register("other@example.com", Password::new("short"), &ClientInfo::unknown())
        .await;
    // Refresh tokens, a rotation, a reuse, logout.
    secrets.push(login.tokens.refresh_token.expose_secret().to_owned());
    let rotated = auth
        .refresh(login.tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    secrets.push(rotated.refresh_token.expose_secret().to_owned());
    secrets.push(rotated.access_token.expose_secret().to_owned());
    let _ = auth
        .refresh(login.tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await;
    let _ = auth
        .logout(rotated.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await;

    // Email verification and password reset tokens, used and reused.
    let verification = auth
        .request_email_verification(user.id, &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    secrets.push(verification.token.expose_secret().to_owned());
    auth.verify_email(verification.token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    let _ = auth
        .verify_email(verification.token.expose_secret(), &ClientInfo::unknown())
        .await;
    let reset = auth
        .request_password_reset("log.test@example.com", &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    secrets.push(reset.token.expose_secret().to_owned());
    let _ = auth
        .reset_password(
            reset.token.expose_secret(),
            Password::new("short"),
            &ClientInfo::unknown(),
        )
        .await;
    let _ = auth
        .request_password_reset("nobody@example.com", &ClientInfo::unknown())
        .await
        .unwrap();

    let changed = auth
        .change_password(
            user.id,
            Password::new(PASSWORDS[0]),
            Password::new(PASSWORDS[1]),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap();
    secrets.push(changed.password_hash.unwrap().as_str().to_owned());

    // A legacy hash upgraded at login, and a corrupt one that cannot be used.
    let legacy = Argon2Hasher::new(Argon2Params::new(32, 1, 1).unwrap())
        .hash(&Password::new(PASSWORDS[3]))
        .unwrap();
    secrets.push(legacy.as_str().to_owned());
    let corrupt = "$argon2id$v=19$m=999999999,t=1,p=1$c2FsdHNhbHQ$c2VjcmV0LWhhc2gtYnl0ZXM";
    secrets.push(corrupt.to_owned());
    for (email, hash) in [
        ("legacy@example.com", legacy.as_str()),
        ("corrupt@example.com", corrupt),
    ] {
        let user = User::new(
            Email::parse(email).unwrap(),
            Some(HashedPassword::new(hash)),
            datetime!(2026-06-01 09:00 UTC),
        );
        store.insert_user(&user).await.unwrap();
        let _ = auth
            .login(email, Password::new(PASSWORDS[3]), &ClientInfo::unknown())
            .await;
    }
    let upgraded = store
        .find_user_by_email(&Email::parse("legacy@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    secrets.push(upgraded.password_hash.unwrap().as_str().to_owned());

    // A client that tries to forge a log line through its user agent.
    let forger = ClientInfo::new(
        Some("curl/8\n2026-01-01T00:00:00Z  INFO auth_core::event: auth event action=\"login\" outcome=\"success\""),
        Some("198.51.100.9".parse().unwrap()),
    );
    let _ = auth
        .login("log.test@example.com", Password::new(PASSWORDS[2]), &forger)
        .await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // Two real successful logins (the first account, then the upgraded legacy one); the
    // forged line stays inside one escaped value of a refused attempt.
    let successes = logs
        .lines()
        .filter(|line| line.contains(r#"action="login" outcome="success""#))
        .count();
    assert_eq!(successes, 2, "a user agent forged a log line:\n{logs}");
    assert!(logs.contains(r#"ip="198.51.100.9" user_agent=Some("curl/82026-01-01T00:00:00Z  INFO auth_core::event: auth event action=\"login\" outcome=\"success\"")"#));
    // The capture works: the flows above did log.
    for expected in [
        r#"action="register" outcome="success""#,
        r#"action="login" outcome="refused" reason="WrongPassword""#,
        r#"action="login" outcome="refused" reason="UnknownAccount" email_digest="#,
        r#"action="login" outcome="success""#,
        r#"action="refresh" outcome="refused" reason="InvalidToken(Reused)""#,
        r#"action="verify_email" outcome="success""#,
        r#"action="request_password_reset" outcome="success""#,
        r#"action="change_password" outcome="success""#,
        "password hash upgraded",
        "stored password hash is unusable",
    ] {
        assert!(
            logs.contains(expected),
            "expected a log line with {expected:?} in:\n{logs}"
        );
    }
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "secret {secret:?} found in logs:\n{logs}"
        );
        // Also no distinctive fragment of it (a hash's salt and output, a token's signature).
        let tail = &secret[secret.len().saturating_sub(16)..];
        assert!(
            !logs.contains(tail),
            "fragment {tail:?} of a secret found in logs:\n{logs}"
        );
    }
}
