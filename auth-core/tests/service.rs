//! `AuthService` flows on `MemoryStore`, with an injected clock and a hasher that counts
//! its work.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_core::{
    Argon2Hasher, Argon2Params, AuthError, AuthService, AuthStore, ClientInfo, Email, HashError, HashPool,
    HashedPassword, MemoryStore, Password, PasswordHasher, PasswordPolicy, PolicyViolation, SigningKey, TokenError,
    Tokens, UserId, UserStore, Verification,
};
use time::macros::datetime;

mod common;

use common::{Fixture, Interference, PASSWORD, SECRET};

fn code<T: std::fmt::Debug>(result: Result<T, AuthError>) -> &'static str {
    result.unwrap_err().code()
}

// ---------------------------------------------------------------- registration

#[tokio::test]
async fn register_normalizes_the_email_and_stores_only_a_hash() {
    let f = Fixture::new();
    let user = f
        .auth
        .register(
            "  Ada.Lovelace+Notes@Example.COM ",
            Password::new(PASSWORD),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap();
    assert_eq!(user.email.as_str(), "ada.lovelace+notes@example.com");
    assert!(user.is_active);
    assert!(!user.email_verified());
    assert!(user.roles.is_empty());
    assert_eq!(user.token_version, 0);
    assert_eq!(user.created_at, datetime!(2026-06-01 09:00 UTC));
    let hash = user.password_hash.clone().unwrap();
    assert!(hash.as_str().starts_with("$argon2id$"));
    assert!(!hash.as_str().contains(PASSWORD));
    assert_eq!(f.stored(user.id).await, user);
    assert_eq!(f.work(), (0, 1));
}

#[tokio::test]
async fn duplicate_email_is_email_taken_whatever_the_case_or_spacing() {
    let f = Fixture::new();
    f.register("bob@example.com").await;
    for variant in ["bob@example.com", "BOB@EXAMPLE.COM", "  Bob@Example.com\t"] {
        let result = f
            .auth
            .register(variant, Password::new("another good password"), &ClientInfo::unknown())
            .await;
        let error = result.unwrap_err();
        assert!(matches!(error, AuthError::EmailTaken), "{variant}: {error:?}");
        assert_eq!(error.http_status(), 409);
    }
}

#[tokio::test]
async fn invalid_email_and_weak_password_are_refused_before_hashing() {
    let f = Fixture::new();
    assert_eq!(
        code(
            f.auth
                .register("not-an-email", Password::new(PASSWORD), &ClientInfo::unknown())
                .await
        ),
        "invalid_email"
    );
    assert_eq!(
        code(
            f.auth
                .register("a@b@c.com", Password::new(PASSWORD), &ClientInfo::unknown())
                .await
        ),
        "invalid_email"
    );
    let weak = |p: &str| {
        let auth = &f.auth;
        let p = Password::new(p);
        async move {
            auth.register("carol@example.com", p, &ClientInfo::unknown())
                .await
                .unwrap_err()
        }
    };
    assert!(matches!(
        weak("short").await,
        AuthError::WeakPassword(PolicyViolation::TooShort { min: 8 })
    ));
    assert!(matches!(
        weak("password123").await,
        AuthError::WeakPassword(PolicyViolation::Common)
    ));
    assert!(matches!(
        weak("carol@example.com").await,
        AuthError::WeakPassword(PolicyViolation::SameAsEmail)
    ));
    assert!(matches!(
        weak(&"x".repeat(257)).await,
        AuthError::WeakPassword(PolicyViolation::TooLong { max: 256 })
    ));
    assert_eq!(
        weak("short").await.to_string(),
        "password must be at least 8 characters long"
    );
    assert_eq!(f.work(), (0, 0), "no hashing for refused input");
    assert!(
        f.store
            .find_user_by_email(&Email::parse("carol@example.com").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn addresses_mail_cannot_reach_or_mixing_scripts_are_refused_at_registration() {
    let f = Fixture::new();
    for email in [
        ".lead@example.com",
        "a..b@example.com",
        "a.@example.com",
        "\u{1F600}@example.com",
        "\u{301}\u{302}@example.com",
        "p\u{430}ypal@example.com",
    ] {
        let error = f
            .auth
            .register(email, Password::new(PASSWORD), &ClientInfo::unknown())
            .await
            .unwrap_err();
        assert!(matches!(error, AuthError::InvalidEmail(_)), "{email:?}: {error:?}");
        assert_eq!((error.code(), error.http_status()), ("invalid_email", 422), "{email:?}");
    }
    assert_eq!(f.work(), (0, 0), "no hashing for refused input");
}

#[tokio::test]
async fn an_account_older_than_the_new_address_rules_still_logs_in_and_resets() {
    let f = Fixture::new();
    let hash = f.hasher.hash(&Password::new(PASSWORD)).unwrap();
    for email in ["a..b@example.com", "\u{1F600}@example.com", "p\u{430}ypal@example.com"] {
        let user = f.insert(email, Some(hash.as_str()), true).await;
        let login = f
            .auth
            .login(&email.to_uppercase(), Password::new(PASSWORD), &ClientInfo::unknown())
            .await
            .unwrap()
            .signed_in()
            .unwrap();
        assert_eq!(login.user.id, user.id);
        // Its access token carries the old address and still verifies.
        let me = f
            .auth
            .authenticate(login.tokens.access_token.expose_secret())
            .await
            .unwrap();
        assert_eq!(me.user.email, user.email);
        assert_eq!(me.claims.email(), &user.email);
        let delivery = f
            .auth
            .request_password_reset(email, &ClientInfo::unknown())
            .await
            .unwrap()
            .expect("a reset mail for the account");
        assert_eq!(delivery.to, user.email);
    }
}

#[tokio::test]
async fn the_policy_is_configurable() {
    let f = Fixture::new();
    let auth = AuthService::new(f.store.clone(), f.auth.tokens().clone())
        .with_hasher(f.hasher.clone())
        .with_password_policy(PasswordPolicy::default().with_min_length(15));
    let error = auth
        .register(
            "dan@example.com",
            Password::new("only-14-chars!"),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        AuthError::WeakPassword(PolicyViolation::TooShort { min: 15 })
    ));
}

#[tokio::test]
async fn every_new_password_is_checked_against_the_accounts_email_and_the_services_name() {
    let f = Fixture::new();
    let auth = AuthService::new(f.store.clone(), f.auth.tokens().clone())
        .with_hasher(f.hasher.clone())
        .with_password_policy(PasswordPolicy::default().with_context_words(["Globex"]));
    let client = ClientInfo::unknown();
    let context = |result: Result<(), AuthError>, what: &str| {
        let error = result.unwrap_err();
        assert!(
            matches!(error, AuthError::WeakPassword(PolicyViolation::ContextWords)),
            "{what}: {error:?}"
        );
        assert_eq!((error.code(), error.http_status()), ("weak_password", 422));
    };

    // Registration: the email is the one being registered.
    for built in ["jonathan!!", "Jonathan.Smith!", "smithjonathan1", "globex-2024!"] {
        let result = auth
            .register("Jonathan.Smith@example.com", Password::new(built), &client)
            .await;
        context(result.map(drop), built);
    }
    for pattern in ["passwordpassword", "abcdefghijklmnop"] {
        let error = auth
            .register("jonathan.smith@example.com", Password::new(pattern), &client)
            .await
            .unwrap_err();
        assert_eq!(error.code(), "weak_password", "{pattern}");
    }
    assert_eq!(f.work(), (0, 0), "every refusal before any hashing");
    let user = auth
        .register("jonathan.smith@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap();

    // Password change: the account's email, though the request names only the account.
    let change = auth
        .change_password(
            user.id,
            Password::new(PASSWORD),
            Password::new("smith.jonathan!!"),
            &client,
        )
        .await;
    context(change.map(drop), "change");
    assert_eq!(f.work(), (0, 1), "the current password was not even verified");

    // Reset: the email of the account the token belongs to.
    let delivery = auth
        .request_password_reset("jonathan.smith@example.com", &client)
        .await
        .unwrap()
        .unwrap();
    let token = delivery.token.expose_secret();
    let reset = auth
        .reset_password(token, Password::new("example-jonathan"), &client)
        .await;
    context(reset, "reset");
    auth.reset_password(token, Password::new("a brand new passphrase"), &client)
        .await
        .unwrap();
}

// ---------------------------------------------------------------- login

#[tokio::test]
async fn login_issues_a_token_for_the_normalized_email() {
    let f = Fixture::new();
    let user = f.register("erin@example.com").await;
    let login = f
        .auth
        .login("  ERIN@Example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    assert_eq!(login.user, user);
    assert_eq!(login.tokens.access_token.expires_in(), Duration::from_secs(900));
    assert_eq!(login.tokens.access_token.expires_at(), datetime!(2026-06-01 09:15 UTC));
    let claims = f
        .auth
        .tokens()
        .verify(login.tokens.access_token.expose_secret())
        .unwrap();
    assert_eq!(claims.user_id(), user.id);
    assert_eq!(claims.email().as_str(), "erin@example.com");
}

#[tokio::test]
async fn every_login_failure_is_the_same_invalid_credentials() {
    let f = Fixture::new();
    f.register("frank@example.com").await;
    f.insert("nopassword@example.com", None, true).await;
    let unknown = f
        .auth
        .login("ghost@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap_err();
    let wrong = f
        .auth
        .login(
            "frank@example.com",
            Password::new("wrong password"),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap_err();
    let malformed = f
        .auth
        .login("not an email", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap_err();
    let passwordless = f
        .auth
        .login(
            "nopassword@example.com",
            Password::new(PASSWORD),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap_err();
    for error in [&unknown, &wrong, &malformed, &passwordless] {
        assert!(matches!(error, AuthError::InvalidCredentials), "{error:?}");
        assert_eq!((error.code(), error.http_status()), ("invalid_credentials", 401));
        assert_eq!(error.to_string(), "invalid credentials");
        assert!(std::error::Error::source(error).is_none());
    }
}

#[tokio::test]
async fn every_login_attempt_verifies_exactly_one_hash() {
    let f = Fixture::new();
    f.register("grace@example.com").await;
    let disabled = f.register("disabled@example.com").await;
    f.auth
        .set_active(disabled.id, false, &ClientInfo::unknown())
        .await
        .unwrap();
    f.insert("nopassword@example.com", None, true).await;
    let hostile = "$argon2id$v=19$m=99999999,t=99,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
    f.insert("hostile@example.com", Some(hostile), true).await;
    f.insert("garbage@example.com", Some("not a hash at all"), true).await;
    let oversized = "y".repeat(100_000);
    f.work();

    // (case, email, password, stored hash refused up front)
    let attempts = [
        ("right password", "grace@example.com", PASSWORD, false),
        ("wrong password", "grace@example.com", "wrong password", false),
        ("unknown email", "nobody@example.com", PASSWORD, false),
        ("malformed email", "nobody at example.com", PASSWORD, false),
        ("disabled, right password", "disabled@example.com", PASSWORD, false),
        (
            "disabled, wrong password",
            "disabled@example.com",
            "wrong password",
            false,
        ),
        ("no password", "nopassword@example.com", PASSWORD, false),
        ("hostile stored hash", "hostile@example.com", PASSWORD, true),
        ("garbage stored hash", "garbage@example.com", PASSWORD, true),
        ("oversized password", "grace@example.com", oversized.as_str(), false),
    ];
    for (case, email, password, refused) in attempts {
        let _ = f
            .auth
            .login(email, Password::new(password), &ClientInfo::unknown())
            .await;
        assert_eq!(
            f.work(),
            (1, 0),
            "{case}: exactly one verification that computed, no other hashing"
        );
        assert_eq!(f.refused(), usize::from(refused), "{case}");
    }
    let longest = f.hasher.longest_password.load(Ordering::SeqCst);
    assert!(
        longest < 1_000,
        "an oversized password reached the hasher ({longest} bytes)"
    );
}

#[tokio::test]
async fn a_disabled_account_is_forbidden_only_after_the_right_password() {
    let f = Fixture::new();
    let user = f.register("heidi@example.com").await;
    f.auth.set_active(user.id, false, &ClientInfo::unknown()).await.unwrap();
    let right = f
        .auth
        .login("heidi@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap_err();
    assert!(matches!(right, AuthError::AccountDisabled));
    assert_eq!(right.http_status(), 403);
    let wrong = f
        .auth
        .login(
            "heidi@example.com",
            Password::new("wrong password"),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap_err();
    assert!(matches!(wrong, AuthError::InvalidCredentials));

    f.auth.set_active(user.id, true, &ClientInfo::unknown()).await.unwrap();
    assert!(
        f.auth
            .login("heidi@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn set_active_on_an_unknown_account_is_not_found() {
    let f = Fixture::new();
    let ghost = UserId::new_at(datetime!(2026-01-01 0:00 UTC));
    assert_eq!(
        code(f.auth.set_active(ghost, false, &ClientInfo::unknown()).await),
        "not_found"
    );
}

// ---------------------------------------------------------------- rehash on login

#[tokio::test]
async fn outdated_argon2_parameters_are_upgraded_on_login() {
    let f = Fixture::new();
    let old = Argon2Hasher::new(Argon2Params::new(32, 1, 1).unwrap());
    let old_hash = old.hash(&Password::new(PASSWORD)).unwrap();
    let user = f.insert("ivan@example.com", Some(old_hash.as_str()), true).await;
    f.clock.advance(Duration::from_secs(60));

    let login = f
        .auth
        .login("ivan@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    assert_eq!(f.work(), (1, 1), "one verification, one new hash");
    let stored = f.stored(user.id).await;
    let new_hash = stored.password_hash.clone().unwrap();
    assert!(
        new_hash.as_str().starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
        "{new_hash:?}"
    );
    assert_eq!(login.user, stored);
    assert_eq!(stored.updated_at, datetime!(2026-06-01 09:01 UTC));
    assert_eq!(stored.token_version, 0, "an upgrade is not a password change");

    // The next login verifies the new hash and needs no further upgrade.
    f.auth
        .login("ivan@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    assert_eq!(f.work(), (1, 0));
    assert_eq!(f.stored(user.id).await.password_hash, Some(new_hash));
}

#[tokio::test]
async fn failed_and_disabled_logins_never_write() {
    let f = Fixture::new();
    let old = Argon2Hasher::new(Argon2Params::new(32, 1, 1).unwrap());
    let old_hash = old.hash(&Password::new(PASSWORD)).unwrap();
    let active = f.insert("judy@example.com", Some(old_hash.as_str()), true).await;
    let disabled = f.insert("mallory@example.com", Some(old_hash.as_str()), false).await;
    f.clock.advance(Duration::from_secs(60));

    assert!(
        f.auth
            .login(
                "judy@example.com",
                Password::new("wrong password"),
                &ClientInfo::unknown()
            )
            .await
            .is_err()
    );
    assert!(
        f.auth
            .login("mallory@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
            .await
            .is_err()
    );
    assert_eq!(f.work(), (2, 0), "no new hash computed");
    assert_eq!(f.stored(active.id).await, active);
    assert_eq!(f.stored(disabled.id).await, disabled);
}

fn other_hash() -> HashedPassword {
    HashedPassword::new("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$Y2hhbmdlZGNoYW5nZWRjaGFuZ2VkY2hhbmdlZA")
}

#[tokio::test]
async fn a_password_change_during_login_wins_over_the_upgrade() {
    let f = Fixture::new();
    let old = Argon2Hasher::new(Argon2Params::new(32, 1, 1).unwrap())
        .hash(&Password::new(PASSWORD))
        .unwrap();
    let user = f.insert("ken@example.com", Some(old.as_str()), true).await;
    f.store
        .interfere_before_next_password_write(Interference::ChangePassword(other_hash()));

    // The password was right when verified, so the login succeeds; the stale upgrade is
    // refused by the store and the concurrent change stands.
    let login = f
        .auth
        .login("ken@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    assert_eq!(
        login.user.password_hash, user.password_hash,
        "the login does not claim an upgrade"
    );
    assert_eq!(f.stored(user.id).await.password_hash, Some(other_hash()));
    let revoked = f.auth.authenticate(login.tokens.access_token.expose_secret()).await;
    assert!(revoked.is_err(), "revoked by the change");
}

#[tokio::test]
async fn a_password_change_racing_another_is_a_conflict() {
    let f = Fixture::new();
    let user = f.register("liam@example.com").await;
    f.store
        .interfere_before_next_password_write(Interference::ChangePassword(other_hash()));
    let new = Password::new("a brand new passphrase");
    let error = f
        .auth
        .change_password(user.id, Password::new(PASSWORD), new, &ClientInfo::unknown())
        .await
        .unwrap_err();
    assert!(matches!(error, AuthError::Conflict), "{error:?}");
    assert_eq!((error.code(), error.http_status()), ("conflict", 409));
    assert_eq!(
        f.stored(user.id).await.password_hash,
        Some(other_hash()),
        "the other change is not overwritten"
    );
}

#[tokio::test]
async fn a_disable_during_a_password_change_wins() {
    let f = Fixture::new();
    let user = f.register("maya@example.com").await;
    f.store.interfere_before_next_password_write(Interference::Disable);
    let new = Password::new("a brand new passphrase");
    let error = f
        .auth
        .change_password(user.id, Password::new(PASSWORD), new, &ClientInfo::unknown())
        .await
        .unwrap_err();
    assert!(matches!(error, AuthError::AccountDisabled), "{error:?}");
    let stored = f.stored(user.id).await;
    assert_eq!(stored.password_hash, user.password_hash);
    assert!(!stored.is_active);
}

// ---------------------------------------------------------------- authenticate and revocation

#[tokio::test]
async fn authenticate_returns_the_current_account() {
    let f = Fixture::new();
    let user = f.register("laura@example.com").await;
    let login = f
        .auth
        .login("laura@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    assert_eq!(
        f.auth
            .authenticate(login.tokens.access_token.expose_secret())
            .await
            .unwrap()
            .user,
        user
    );
    let error = f.auth.authenticate("garbage").await.unwrap_err();
    assert_eq!((error.code(), error.http_status()), ("invalid_token", 401));
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let f = Fixture::new();
    f.register("mike@example.com").await;
    let login = f
        .auth
        .login("mike@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let token = login.tokens.access_token.expose_secret();
    f.clock.advance(Duration::from_secs(15 * 60 + 4));
    assert!(f.auth.authenticate(token).await.is_ok(), "within the 5 s leeway");
    f.clock.advance(Duration::from_secs(1));
    let error = f.auth.authenticate(token).await.unwrap_err();
    assert!(
        matches!(error, AuthError::InvalidToken(TokenError::Expired)),
        "{error:?}"
    );
}

#[tokio::test]
async fn disabling_revokes_tokens_and_enabling_does_not_revive_them() {
    let f = Fixture::new();
    let user = f.register("nina@example.com").await;
    let before = f
        .auth
        .login("nina@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap()
        .tokens
        .access_token;
    f.auth.set_active(user.id, false, &ClientInfo::unknown()).await.unwrap();
    let error = f.auth.authenticate(before.expose_secret()).await.unwrap_err();
    assert!(
        matches!(error, AuthError::InvalidToken(TokenError::Revoked)),
        "{error:?}"
    );
    f.auth.set_active(user.id, true, &ClientInfo::unknown()).await.unwrap();
    assert!(f.auth.authenticate(before.expose_secret()).await.is_err());
    let after = f
        .auth
        .login("nina@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap()
        .tokens
        .access_token;
    assert!(f.auth.authenticate(after.expose_secret()).await.is_ok());
}

#[tokio::test]
async fn revocation_is_exact_within_the_same_second() {
    let f = Fixture::new();
    let user = f.register("oscar@example.com").await;
    // The clock does not move: issue, change and reissue all happen in one second.
    let before = f
        .auth
        .login("oscar@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap()
        .tokens
        .access_token;
    f.auth
        .change_password(
            user.id,
            Password::new(PASSWORD),
            Password::new("a brand new passphrase"),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap();
    let after = f
        .auth
        .login(
            "oscar@example.com",
            Password::new("a brand new passphrase"),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap()
        .signed_in()
        .unwrap()
        .tokens
        .access_token;
    assert_eq!(before.expires_at(), after.expires_at(), "same second");
    assert!(
        f.auth.authenticate(before.expose_secret()).await.is_err(),
        "issued right before: refused"
    );
    assert!(
        f.auth.authenticate(after.expose_secret()).await.is_ok(),
        "issued right after: accepted"
    );
}

// ---------------------------------------------------------------- change password

#[tokio::test]
async fn change_password_requires_the_current_one() {
    let f = Fixture::new();
    let user = f.register("peggy@example.com").await;
    let error = f
        .auth
        .change_password(
            user.id,
            Password::new("not my password"),
            Password::new("a brand new passphrase"),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, AuthError::InvalidCredentials));
    assert_eq!(f.work(), (1, 0), "verified the current password, hashed nothing");
    assert_eq!(f.stored(user.id).await, user);
}

#[tokio::test]
async fn change_password_applies_the_policy_before_any_hashing() {
    let f = Fixture::new();
    let user = f.register("quinn@example.com").await;
    for (new, violation) in [
        ("short", PolicyViolation::TooShort { min: 8 }),
        ("qwerty123", PolicyViolation::Common),
        ("QUINN@example.com", PolicyViolation::SameAsEmail),
    ] {
        let error = f
            .auth
            .change_password(
                user.id,
                Password::new(PASSWORD),
                Password::new(new),
                &ClientInfo::unknown(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error, AuthError::WeakPassword(v) if v == violation),
            "{new}: {error:?}"
        );
    }
    assert_eq!(f.work(), (0, 0));
}

#[tokio::test]
async fn change_password_replaces_the_hash_and_revokes_tokens() {
    let f = Fixture::new();
    let user = f.register("rupert@example.com").await;
    let token = f
        .auth
        .login("rupert@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap()
        .tokens
        .access_token;
    f.clock.advance(Duration::from_secs(30));
    let updated = f
        .auth
        .change_password(
            user.id,
            Password::new(PASSWORD),
            Password::new("a brand new passphrase"),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap();
    assert_eq!(updated.token_version, user.token_version + 1);
    assert_eq!(updated.updated_at, datetime!(2026-06-01 09:00:30 UTC));
    assert!(f.auth.authenticate(token.expose_secret()).await.is_err());
    assert!(
        f.auth
            .login("rupert@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
            .await
            .is_err()
    );
    assert!(
        f.auth
            .login(
                "rupert@example.com",
                Password::new("a brand new passphrase"),
                &ClientInfo::unknown()
            )
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn change_password_of_unknown_or_disabled_accounts_fails() {
    let f = Fixture::new();
    let ghost = UserId::new_at(datetime!(2026-01-01 0:00 UTC));
    let new = || Password::new("a brand new passphrase");
    assert_eq!(
        code(
            f.auth
                .change_password(ghost, Password::new(PASSWORD), new(), &ClientInfo::unknown())
                .await
        ),
        "not_found"
    );
    let user = f.register("sybil@example.com").await;
    f.auth.set_active(user.id, false, &ClientInfo::unknown()).await.unwrap();
    assert_eq!(
        code(
            f.auth
                .change_password(user.id, Password::new(PASSWORD), new(), &ClientInfo::unknown())
                .await
        ),
        "account_disabled"
    );
}

// ---------------------------------------------------------------- hashing load

/// A hasher whose `hash` blocks until released, to hold the pool's only permit.
#[derive(Debug)]
struct GateHasher {
    inner: Argon2Hasher,
    gate: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    entered: tokio::sync::Notify,
}

impl PasswordHasher for GateHasher {
    fn hash(&self, password: &Password) -> Result<HashedPassword, HashError> {
        let gate = self.gate.lock().unwrap().take();
        if let Some(gate) = gate {
            self.entered.notify_one();
            let _ = gate.recv();
        }
        self.inner.hash(password)
    }

    fn verify(&self, password: &Password, hash: &HashedPassword) -> Result<Verification, HashError> {
        self.inner.verify(password, hash)
    }

    fn dummy_hash(&self) -> &HashedPassword {
        self.inner.dummy_hash()
    }
}

#[tokio::test]
async fn a_saturated_pool_answers_busy_at_once() {
    let (release, gate) = std::sync::mpsc::channel();
    let hasher = Arc::new(GateHasher {
        inner: Argon2Hasher::new(Argon2Params::new(64, 1, 1).unwrap()),
        gate: Mutex::new(Some(gate)),
        entered: tokio::sync::Notify::new(),
    });
    let tokens = Tokens::new(SigningKey::hs256(SECRET).unwrap(), "https://auth.test", "test-api");
    let auth = Arc::new(
        AuthService::new(MemoryStore::new(), tokens)
            .with_hasher(hasher.clone())
            .with_hash_pool(HashPool::new(1).with_max_queue(0)),
    );
    let first = tokio::spawn({
        let auth = auth.clone();
        async move {
            auth.register("first@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
                .await
        }
    });
    hasher.entered.notified().await;

    for attempt in [
        auth.register("second@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
            .await
            .map(drop),
        auth.login("first@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
            .await
            .map(drop),
    ] {
        let error = attempt.unwrap_err();
        assert!(matches!(error, AuthError::Busy { .. }), "{error:?}");
        assert_eq!((error.code(), error.http_status()), ("busy", 503));
        assert!(error.retry_after().is_some());
    }
    release.send(()).unwrap();
    first.await.unwrap().unwrap();
    assert!(
        auth.register("second@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
            .await
            .is_ok()
    );
}

/// Client number `i`: bursts here test the hash pool, not the per-client limits.
fn client_number(i: u8) -> ClientInfo {
    ClientInfo::new(None, Some(std::net::IpAddr::from([10, 0, 1, i])))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_fifty_registrations_and_logins_succeeds_with_the_defaults() {
    // Production parameters and the default pool: the burst must be absorbed, not refused.
    let tokens = Tokens::new(SigningKey::hs256(SECRET).unwrap(), "https://auth.test", "test-api");
    let auth = Arc::new(AuthService::new(MemoryStore::new(), tokens));
    let registrations: Vec<_> = (0..50)
        .map(|i| {
            let auth = auth.clone();
            tokio::spawn(async move {
                auth.register(
                    &format!("user{i}@example.com"),
                    Password::new(PASSWORD),
                    &client_number(i),
                )
                .await
            })
        })
        .collect();
    for task in registrations {
        task.await.unwrap().unwrap();
    }
    let logins: Vec<_> = (0..50)
        .map(|i| {
            let auth = auth.clone();
            tokio::spawn(async move {
                auth.login(
                    &format!("USER{i}@example.com"),
                    Password::new(PASSWORD),
                    &client_number(i),
                )
                .await
            })
        })
        .collect();
    for task in logins {
        task.await.unwrap().unwrap().signed_in().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_fifty_logins_succeeds_on_a_single_permit() {
    // As on a one-core machine: every hash waits its turn in the queue, none is refused.
    // (Fifty accounts: fifty concurrent logins to one account would meet its rate limit,
    // which draws before verifying.)
    let tokens = Tokens::new(SigningKey::hs256(SECRET).unwrap(), "https://auth.test", "test-api");
    let auth = Arc::new(AuthService::new(MemoryStore::new(), tokens).with_hash_pool(HashPool::new(1)));
    for i in 0..50 {
        auth.register(
            &format!("solo{i}@example.com"),
            Password::new(PASSWORD),
            &client_number(i),
        )
        .await
        .unwrap();
    }
    let logins: Vec<_> = (0..50)
        .map(|i| {
            let auth = auth.clone();
            tokio::spawn(async move {
                let email = format!("solo{i}@example.com");
                auth.login(&email, Password::new(PASSWORD), &client_number(i)).await
            })
        })
        .collect();
    for task in logins {
        task.await.unwrap().unwrap().signed_in().unwrap();
    }
}

#[tokio::test]
async fn a_store_that_is_down_answers_unavailable() {
    let f = Fixture::new();
    let user = f.register("nora@example.com").await;
    let login = f
        .auth
        .login("nora@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let (access, refresh) = (login.tokens.access_token, login.tokens.refresh_token);
    f.store.set_down(true);
    let new = || Password::new("a brand new passphrase");
    let errors = [
        f.auth
            .register("nora2@example.com", new(), &ClientInfo::unknown())
            .await
            .map(drop)
            .unwrap_err(),
        f.auth
            .login("nora@example.com", new(), &ClientInfo::unknown())
            .await
            .map(drop)
            .unwrap_err(),
        f.auth.authenticate(access.expose_secret()).await.map(drop).unwrap_err(),
        f.auth
            .refresh(refresh.expose_secret(), &ClientInfo::unknown())
            .await
            .map(drop)
            .unwrap_err(),
        f.auth
            .logout(refresh.expose_secret(), &ClientInfo::unknown())
            .await
            .unwrap_err(),
        f.auth.logout_all(user.id, &ClientInfo::unknown()).await.unwrap_err(),
        f.auth.list_sessions(user.id).await.map(drop).unwrap_err(),
        f.auth
            .change_password(user.id, Password::new(PASSWORD), new(), &ClientInfo::unknown())
            .await
            .map(drop)
            .unwrap_err(),
        f.auth
            .set_active(user.id, false, &ClientInfo::unknown())
            .await
            .map(drop)
            .unwrap_err(),
        f.auth
            .request_password_reset("nora@example.com", &ClientInfo::unknown())
            .await
            .map(drop)
            .unwrap_err(),
        f.auth
            .request_email_verification(user.id, &ClientInfo::unknown())
            .await
            .map(drop)
            .unwrap_err(),
    ];
    for error in errors {
        assert!(matches!(error, AuthError::Unavailable(_)), "{error:?}");
        assert_eq!((error.code(), error.http_status()), ("unavailable", 503));
        assert!(error.retry_after().is_some());
        assert!(
            !error.to_string().contains("connection refused"),
            "cause kept out of the message"
        );
    }
    f.store.set_down(false);
    assert!(
        f.auth.authenticate(access.expose_secret()).await.is_ok(),
        "recovers when the store is back"
    );
}

#[tokio::test]
async fn a_registration_in_an_outage_the_store_knows_of_is_refused_before_its_hash() {
    let f = Fixture::new();
    let client = ClientInfo::unknown();
    let register = |email: &'static str| f.auth.register(email, Password::new(PASSWORD), &client);
    f.store.set_down(true);
    // A store that cannot tell: the hash runs, then the insert fails.
    let error = register("first@example.com").await.unwrap_err();
    assert!(matches!(error, AuthError::Unavailable(_)), "{error:?}");
    assert_eq!(f.work(), (0, 1));
    assert!(f.store.calls().contains(&"insert_user"));

    // A store that knows: refused the same way, with no hash and no write tried.
    f.store.set_outage_known(true);
    f.store.clear_calls();
    let error = register("second@example.com").await.unwrap_err();
    assert!(matches!(error, AuthError::Unavailable(_)), "{error:?}");
    assert_eq!((error.code(), error.http_status()), ("unavailable", 503));
    assert!(error.retry_after().is_some());
    assert_eq!(f.work(), (0, 0), "no hash in a known outage");
    assert!(!f.store.calls().contains(&"insert_user"), "{:?}", f.store.calls());

    // Input is still judged first: a weak password is the client's error, not a 503.
    let weak = f
        .auth
        .register("third@example.com", Password::new("short"), &ClientInfo::unknown())
        .await
        .unwrap_err();
    assert!(matches!(weak, AuthError::WeakPassword(_)), "{weak:?}");

    f.store.set_down(false);
    register("second@example.com").await.unwrap();
    assert_eq!(f.work(), (0, 1), "the store is back: registrations hash again");
}

#[tokio::test]
async fn a_known_outage_is_seen_through_arc_box_dyn_and_a_composed_store() {
    let store = common::HookedStore::default();
    store.set_down(true);
    store.set_outage_known(true);
    let shared: Arc<dyn UserStore> = Arc::new(store.clone());
    let boxed: Box<dyn UserStore> = Box::new(store.clone());
    let composed = auth_core::ComposedStore::new(store.clone(), MemoryStore::new(), MemoryStore::new());
    assert!(shared.known_unavailable().await);
    assert!(boxed.known_unavailable().await);
    assert!(composed.known_unavailable().await, "ComposedStore asks its users part");
    store.set_down(false);
    assert!(!shared.known_unavailable().await);
    assert!(!composed.known_unavailable().await);
}

// ---------------------------------------------------------------- object safety

#[tokio::test]
async fn the_store_can_be_chosen_at_run_time() {
    let store: Arc<dyn AuthStore> = Arc::new(MemoryStore::new());
    let tokens = Tokens::new(SigningKey::hs256(SECRET).unwrap(), "https://auth.test", "test-api");
    let auth = AuthService::new(store, tokens).with_hasher(Argon2Hasher::new(Argon2Params::new(64, 1, 1).unwrap()));
    auth.register("tina@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap();
    assert!(
        auth.login("tina@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn administrators_list_accounts_a_page_at_a_time() {
    let f = Fixture::new();
    let mut registered = Vec::new();
    for i in 0..5 {
        registered.push(f.register(&format!("listed{i}@example.com")).await);
        f.clock.advance(Duration::from_millis(2));
    }
    let first = f.auth.list_users(None, 2).await.unwrap();
    assert_eq!(first, registered[..2].to_vec(), "registration order");
    let next = f.auth.list_users(Some(first[1].id), 1000).await.unwrap();
    assert_eq!(next, registered[2..].to_vec());
    assert!(
        f.events
            .take()
            .iter()
            .all(|event| event.action == auth_core::Action::Register),
        "reads record nothing"
    );
}

#[tokio::test]
async fn the_store_check_says_unavailable_when_the_store_is_down() {
    let f = Fixture::new();
    f.auth.check_store().await.unwrap();
    f.store.set_down(true);
    let error = f.auth.check_store().await.unwrap_err();
    assert_eq!((error.code(), error.http_status()), ("unavailable", 503));
}

// ---------------------------------------------------------------- roles

#[tokio::test]
async fn roles_are_bounded_so_every_issued_token_is_accepted() {
    let f = Fixture::new();
    // The longest address there is (254 bytes) and the most, longest roles.
    let email = format!(
        "{}@{}.{}.{}.com",
        "a".repeat(64),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(57)
    );
    assert_eq!(email.len(), auth_core::MAX_ADDRESS_BYTES);
    let user = f.register(&email).await;
    let role = |i: usize| auth_core::Role::new(format!("{i:02}{}", "r".repeat(62))).unwrap();
    let most: std::collections::BTreeSet<_> = (0..auth_core::Role::MAX_PER_ACCOUNT).map(role).collect();
    assert!(most.iter().all(|role| role.as_str().len() == auth_core::Role::MAX_LEN));
    f.auth
        .set_roles(user.id, most.clone(), &ClientInfo::unknown())
        .await
        .unwrap();
    let login = f
        .auth
        .login(&email, Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let token = login.tokens.access_token.expose_secret();
    assert!(token.len() < 4 * 1024, "{} bytes", token.len());
    let me = f.auth.authenticate(token).await.unwrap();
    assert_eq!(me.claims.roles(), &most);

    // One more is refused, and nothing is written.
    let mut too_many = most.clone();
    too_many.insert(role(99));
    let refused = f.auth.set_roles(user.id, too_many, &ClientInfo::unknown()).await;
    match refused.unwrap_err() {
        error @ AuthError::TooManyRoles { max: 32 } => {
            assert_eq!((error.code(), error.http_status()), ("too_many_roles", 422));
        }
        other => panic!("expected too_many_roles, got {other:?}"),
    }
    assert_eq!(f.stored(user.id).await.roles, most);
}

#[tokio::test]
async fn an_invited_account_has_no_password_until_its_link_sets_one() {
    let f = Fixture::new();
    let client = ClientInfo::unknown();
    let roles: std::collections::BTreeSet<_> = [auth_core::Role::new("editor").unwrap()].into();
    let invitation = f.auth.invite(" Ivy@Example.com", roles.clone(), &client).await.unwrap();
    let user = invitation.user;
    assert_eq!(user.email.as_str(), "ivy@example.com");
    assert!(user.password_hash.is_none() && user.email_verified_at.is_none());
    assert_eq!(f.stored(user.id).await.roles, roles);
    assert_eq!(invitation.delivery.to.as_str(), "ivy@example.com");
    assert_eq!(invitation.delivery.purpose, auth_core::TokenPurpose::PasswordReset);
    assert_eq!(
        invitation.delivery.expires_at,
        datetime!(2026-06-01 09:00 UTC) + auth_core::INVITATION_TTL
    );
    let kinds: Vec<_> = f.events.take().iter().map(auth_core::AuthEvent::kind).collect();
    assert_eq!(kinds, [auth_core::EventKind::AccountInvited]);

    // Password login fails as for an unknown account, with the same work.
    f.work();
    f.refused();
    assert_eq!(
        code(
            f.auth
                .login("nobody@example.com", Password::new(PASSWORD), &client)
                .await
        ),
        "invalid_credentials"
    );
    let unknown = (f.work(), f.refused());
    assert_eq!(
        code(f.auth.login("ivy@example.com", Password::new(PASSWORD), &client).await),
        "invalid_credentials"
    );
    assert_eq!((f.work(), f.refused()), unknown);
    assert_eq!(unknown, ((1, 0), 0), "one verification, against the dummy hash");

    // The link works for 7 days, sets the password and proves the address.
    f.clock.advance(Duration::from_secs(6 * 24 * 60 * 60));
    f.auth
        .reset_password(
            invitation.delivery.token.expose_secret(),
            Password::new("an invited passphrase"),
            &client,
        )
        .await
        .unwrap();
    let stored = f.stored(user.id).await;
    assert!(stored.password_hash.is_some() && stored.email_verified_at.is_some());
    assert!(
        f.auth
            .login("ivy@example.com", Password::new("an invited passphrase"), &client)
            .await
            .is_ok()
    );

    // A taken address and too many roles write nothing.
    assert_eq!(
        code(f.auth.invite("IVY@example.com", Default::default(), &client).await),
        "email_taken"
    );
    let too_many: std::collections::BTreeSet<_> = (0..=auth_core::Role::MAX_PER_ACCOUNT)
        .map(|i| auth_core::Role::new(format!("r{i}")).unwrap())
        .collect();
    assert_eq!(
        code(f.auth.invite("zed@example.com", too_many, &client).await),
        "too_many_roles"
    );
    let zed = Email::parse("zed@example.com").unwrap();
    assert!(f.store.find_user_by_email(&zed).await.unwrap().is_none());
}

#[tokio::test]
async fn an_invitation_link_expires_after_seven_days() {
    let f = Fixture::new();
    let client = ClientInfo::unknown();
    let invitation = f
        .auth
        .invite("late@example.com", Default::default(), &client)
        .await
        .unwrap();
    f.clock.advance(auth_core::INVITATION_TTL + Duration::from_secs(1));
    let late = f
        .auth
        .reset_password(
            invitation.delivery.token.expose_secret(),
            Password::new("an invited passphrase"),
            &client,
        )
        .await;
    assert_eq!(code(late), "invalid_token");
    assert!(f.stored(invitation.user.id).await.password_hash.is_none());
}
