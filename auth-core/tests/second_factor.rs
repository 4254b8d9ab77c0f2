//! Two-factor authentication with TOTP (RFC 6238) and recovery codes: enrolment, the login
//! challenge, replay and guessing limits, recovery codes, disabling, the step-up rule,
//! per-role enforcement and secrets at rest, all on the injected clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    Action, AuthError, AuthMethod, AuthService, Caller, ClientInfo, EncryptionKey, EventKind, Limit, LoginOutcome,
    LoginSuccess, MemoryStore, NewRecoveryCodes, Outcome, Password, RateLimits, Refusal, Role, SecondFactorChallenge,
    SecondFactorCode, SecondFactorStatus, SecondFactorStore, SecretCipher, SecurityNoticeKind, SigningKey, Tokens,
    TotpEnrolment, TotpSettings, User, UserStore,
};
use common::{ENCRYPTION_KEY, Fixture, PASSWORD, laptop};
use time::OffsetDateTime;

const STEP: Duration = Duration::from_secs(30);

fn phone() -> ClientInfo {
    ClientInfo::new(Some("Safari on iOS"), Some("198.51.100.4".parse().unwrap()))
}

/// What an authenticator app shows for `secret` (base32) at `at`.
fn code_at(secret: &str, at: OffsetDateTime) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).unwrap();
    let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    totp.generate(u64::try_from(at.unix_timestamp()).unwrap()).to_string()
}

struct Enrolled {
    user: User,
    login: LoginSuccess,
    secret: String,
    codes: Vec<String>,
}

impl Fixture {
    fn code(&self, secret: &str) -> String {
        code_at(secret, self.now())
    }

    /// The account's second factors, from the account as stored now.
    async fn status(&self, id: auth_core::UserId) -> SecondFactorStatus {
        let user = self.store.find_user_by_id(id).await.unwrap().unwrap();
        self.auth.second_factor_status(&user).await.unwrap()
    }

    async fn begin(&self, login: &LoginSuccess) -> TotpEnrolment {
        let caller = self.caller(login).await;
        self.auth
            .begin_totp_enrolment(&caller, Password::new(PASSWORD), &laptop())
            .await
            .unwrap()
    }

    /// Registers, logs in, enrols and confirms; the clock then moves one step on, so the
    /// confirming code's step is past.
    async fn enrolled(&self, email: &str) -> Enrolled {
        let (user, login) = self.logged_in(email).await;
        let enrolment = self.begin(&login).await;
        let secret = enrolment.expose_secret().to_owned();
        let caller = self.caller(&login).await;
        let confirmed = self
            .auth
            .confirm_totp(&caller, &self.code(&secret), &laptop())
            .await
            .unwrap();
        let codes = confirmed.recovery_codes.expose_secrets().map(str::to_owned).collect();
        self.clock.advance(STEP);
        self.events.take();
        self.work();
        Enrolled {
            user,
            login,
            secret,
            codes,
        }
    }

    async fn challenge(&self, email: &str, client: &ClientInfo) -> SecondFactorChallenge {
        match self.auth.login(email, Password::new(PASSWORD), client).await.unwrap() {
            LoginOutcome::SecondFactorRequired(challenge) => challenge,
            other => panic!("expected a second-factor challenge, got {other:?}"),
        }
    }

    async fn complete(
        &self,
        challenge: &SecondFactorChallenge,
        code: SecondFactorCode,
    ) -> Result<LoginSuccess, AuthError> {
        self.auth
            .complete_login(challenge.token.expose_secret(), code, &laptop())
            .await
    }
}

#[tokio::test]
async fn enrolment_gives_a_secret_and_uri_and_changes_nothing_until_confirmed() {
    let f = Fixture::new();
    let (user, login) = f.logged_in("ada@example.com").await;
    let enrolment = f.begin(&login).await;
    let secret = enrolment.expose_secret();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    let uri = enrolment.expose_otpauth_uri();
    assert!(
        uri.starts_with("otpauth://totp/Auth%20Test:ada%40example.com?"),
        "{uri}"
    );
    assert!(
        uri.contains(&format!("secret={secret}")) && uri.contains("issuer=Auth%20Test"),
        "{uri}"
    );
    assert!(!format!("{enrolment:?}").contains(secret));

    let stored = f.store.find_totp_factor(user.id).await.unwrap().unwrap();
    assert!(!stored.is_confirmed());
    assert!(!stored.sealed_secret.contains(secret), "sealed at rest");
    let key = SecretCipher::new(EncryptionKey::new(&ENCRYPTION_KEY).unwrap());
    let context = format!("auth-core totp {}", user.id);
    let opened = key.open(&stored.sealed_secret, context.as_bytes()).unwrap();
    assert_eq!(totp_rs::Secret::from(opened.to_vec()).to_base32(), secret);

    let again = f
        .auth
        .login("ada@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap();
    assert!(
        matches!(again, LoginOutcome::SignedIn(_)),
        "unconfirmed: login as before"
    );
    assert_eq!(f.status(user.id).await, SecondFactorStatus::default());
}

#[tokio::test]
async fn enrolment_needs_the_password_and_no_confirmed_factor() {
    let f = Fixture::new();
    let e = f.enrolled("bo@example.com").await;
    let caller = f.caller(&e.login).await;
    let wrong = f
        .auth
        .begin_totp_enrolment(&caller, Password::new("not the password"), &laptop())
        .await;
    assert!(matches!(wrong, Err(AuthError::InvalidCredentials)), "{wrong:?}");
    let again = f
        .auth
        .begin_totp_enrolment(&caller, Password::new(PASSWORD), &laptop())
        .await;
    assert!(
        matches!(again, Err(AuthError::SecondFactorAlreadyEnrolled)),
        "{again:?}"
    );
    assert_eq!((again.unwrap_err().http_status()), 409);
}

#[tokio::test]
async fn confirming_needs_a_current_code_and_ends_the_other_sessions() {
    let f = Fixture::new();
    let (user, login) = f.logged_in("cy@example.com").await;
    let other = f
        .auth
        .login("cy@example.com", Password::new(PASSWORD), &phone())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let enrolment = f.begin(&login).await;
    let secret = enrolment.expose_secret();
    let caller = f.caller(&login).await;
    let stale = code_at(secret, f.now() - Duration::from_secs(90));
    let refused = f.auth.confirm_totp(&caller, &stale, &laptop()).await;
    assert!(matches!(refused, Err(AuthError::InvalidCode)), "{refused:?}");
    assert_eq!(refused.unwrap_err().http_status(), 400);

    f.notices.take();
    let NewRecoveryCodes { recovery_codes, .. } =
        f.auth.confirm_totp(&caller, &f.code(secret), &laptop()).await.unwrap();
    assert_eq!(recovery_codes.len(), 10);
    let notices = f.notices.take_whole();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(
        (&notices[0].kind, notices[0].to.as_str()),
        (&SecurityNoticeKind::TotpEnabled, "cy@example.com")
    );
    assert_eq!(
        notices[0].client,
        laptop(),
        "the notice names the client that made the change"
    );
    let live: Vec<_> = f
        .auth
        .list_sessions(user.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        live,
        vec![login.tokens.session.id],
        "the confirming session stays, the others end"
    );
    assert!(
        f.auth
            .authenticate(other.tokens.access_token.expose_secret())
            .await
            .is_err()
    );
    let status = f.status(user.id).await;
    assert_eq!((status.totp, status.recovery_codes_left), (true, 10));
    assert!(
        f.store
            .find_user_by_id(user.id)
            .await
            .unwrap()
            .unwrap()
            .requires_second_factor
    );
}

#[tokio::test]
async fn a_right_password_yields_a_challenge_and_no_session_then_a_code_signs_in() {
    let f = Fixture::new();
    let e = f.enrolled("di@example.com").await;
    let sessions_before = f.auth.list_sessions(e.user.id).await.unwrap().len();
    let challenge = f.challenge("di@example.com", &laptop()).await;
    assert_eq!(
        f.work(),
        (1, 0),
        "the password step does one verification, as any login"
    );
    assert!(challenge.token.expose_secret().starts_with("mfa_"));
    assert_eq!(challenge.expires_at, f.now() + Duration::from_secs(300));
    assert_eq!(
        challenge.methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        ["totp", "recovery_code"]
    );
    assert_eq!(
        f.auth.list_sessions(e.user.id).await.unwrap().len(),
        sessions_before,
        "no session yet"
    );
    let events = f.events.take();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind(), &events[0].outcome),
        (EventKind::SecondFactorChallenged, &Outcome::SecondFactorRequired)
    );

    f.clock.advance(Duration::from_secs(20));
    let login = f
        .complete(&challenge, SecondFactorCode::totp(f.code(&e.secret)))
        .await
        .unwrap();
    let me = f
        .auth
        .authenticate(login.tokens.access_token.expose_secret())
        .await
        .unwrap();
    let amr: Vec<&str> = me
        .claims
        .auth_methods()
        .unwrap()
        .iter()
        .map(AuthMethod::as_str)
        .collect();
    assert_eq!(amr, ["mfa", "otp", "pwd"]);
    assert_eq!(me.claims.auth_time(), Some(f.now()));
    let events = f.events.take();
    assert_eq!(
        (events[0].action, events[0].kind()),
        (Action::CompleteLogin, EventKind::LoginSucceeded)
    );
    assert!(
        f.complete(&challenge, SecondFactorCode::totp(f.code(&e.secret)))
            .await
            .is_err(),
        "single use"
    );
}

#[tokio::test]
async fn a_code_works_once_within_one_step_of_drift() {
    let f = Fixture::new();
    let e = f.enrolled("ed@example.com").await;
    // The code of the step before, and after, are accepted; two steps away are not.
    for (offset, accepted) in [(-60i64, false), (60, false), (-30, true), (30, true)] {
        let challenge = f.challenge("ed@example.com", &laptop()).await;
        let at = if offset < 0 {
            f.now() - Duration::from_secs(offset.unsigned_abs())
        } else {
            f.now() + Duration::from_secs(offset.unsigned_abs())
        };
        let result = f
            .complete(&challenge, SecondFactorCode::totp(code_at(&e.secret, at)))
            .await;
        assert_eq!(result.is_ok(), accepted, "a code {offset:+}s away");
        f.clock.advance(STEP * 3);
    }
    // A replay: the same code, within its step, on a new challenge.
    let code = f.code(&e.secret);
    let first = f.challenge("ed@example.com", &laptop()).await;
    f.complete(&first, SecondFactorCode::totp(code.clone())).await.unwrap();
    let second = f.challenge("ed@example.com", &laptop()).await;
    let replay = f.complete(&second, SecondFactorCode::totp(code)).await;
    assert!(matches!(replay, Err(AuthError::LoginChallengeFailed)), "{replay:?}");
    let refusal = f.events.take().into_iter().last().unwrap().outcome;
    assert_eq!(refusal, Outcome::Refused(Refusal::CodeReused));
    // An earlier step's code after a later one was used: refused too.
    f.clock.advance(STEP);
    let later = f.challenge("ed@example.com", &laptop()).await;
    f.complete(&later, SecondFactorCode::totp(code_at(&e.secret, f.now() + STEP)))
        .await
        .unwrap();
    let earlier = f.challenge("ed@example.com", &laptop()).await;
    assert!(
        f.complete(&earlier, SecondFactorCode::totp(f.code(&e.secret)))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_uses_of_one_code_make_one_session() {
    let f = Arc::new(Fixture::new());
    let e = f.enrolled("fay@example.com").await;
    let code = f.code(&e.secret);
    // Each login replaces the account's challenge: the older one dies, the newest works.
    let old = f.challenge("fay@example.com", &laptop()).await;
    let challenge = f.challenge("fay@example.com", &laptop()).await;
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let (f, token, code) = (Arc::clone(&f), challenge.token.expose_secret().to_owned(), code.clone());
            tokio::spawn(async move {
                f.auth
                    .complete_login(&token, SecondFactorCode::totp(code), &laptop())
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for racer in racers {
        wins += usize::from(racer.await.unwrap().is_ok());
    }
    assert_eq!(wins, 1);
    assert!(
        f.complete(&old, SecondFactorCode::totp(f.code(&e.secret)))
            .await
            .is_err(),
        "superseded"
    );
}

#[tokio::test]
async fn a_challenge_dies_after_five_wrong_codes_after_five_minutes_and_elsewhere() {
    // The account's per-minute allowance (5 by default) would stop the guesses first:
    // raised here, so that the challenge's own count is what stops them.
    let f = Fixture::with_limits(
        RateLimits::default().with_limit(auth_core::Bucket::LoginFailuresPerAccount, Some(Limit::per_minute(100))),
    );
    let e = f.enrolled("gil@example.com").await;
    let challenge = f.challenge("gil@example.com", &laptop()).await;
    for _ in 0..5 {
        let wrong = f.complete(&challenge, SecondFactorCode::totp("000000")).await;
        assert!(matches!(wrong, Err(AuthError::LoginChallengeFailed)), "{wrong:?}");
    }
    let dead = f.complete(&challenge, SecondFactorCode::totp(f.code(&e.secret))).await;
    assert!(matches!(dead, Err(AuthError::LoginChallengeFailed)));
    let last = f.events.take().into_iter().last().unwrap();
    assert_eq!(
        (last.kind(), last.outcome),
        (
            EventKind::SecondFactorFailed,
            Outcome::Refused(Refusal::ChallengeExhausted)
        )
    );

    let challenge = f.challenge("gil@example.com", &laptop()).await;
    f.clock.advance(Duration::from_secs(300));
    assert!(
        f.complete(&challenge, SecondFactorCode::totp(f.code(&e.secret)))
            .await
            .is_err(),
        "expired"
    );

    let challenge = f.challenge("gil@example.com", &laptop()).await;
    let elsewhere = f
        .auth
        .complete_login(
            challenge.token.expose_secret(),
            SecondFactorCode::totp(f.code(&e.secret)),
            &phone(),
        )
        .await;
    assert!(matches!(elsewhere, Err(AuthError::LoginChallengeFailed)));
    assert_eq!(
        f.events.take().into_iter().last().unwrap().outcome,
        Outcome::Refused(Refusal::ChallengeFromAnotherClient)
    );
    f.complete(&challenge, SecondFactorCode::totp(f.code(&e.secret)))
        .await
        .unwrap();
    for bad in ["", "mfa_short", "rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let refused = f
            .auth
            .complete_login(bad, SecondFactorCode::totp("123456"), &laptop())
            .await;
        assert!(matches!(refused, Err(AuthError::LoginChallengeFailed)), "{bad:?}");
    }
}

#[tokio::test]
async fn code_guesses_draw_on_the_account_limits_across_challenges() {
    // Four consecutive failures lock the account; a new challenge (a new password login)
    // does not reset the count, and only a completed login refills it.
    let limits = RateLimits::default()
        .with_limit(
            auth_core::Bucket::ConsecutiveLoginFailuresPerAccount,
            Some(Limit::total(4)),
        )
        .with_limit(auth_core::Bucket::LoginFailuresPerAccount, Some(Limit::per_minute(100)));
    let f = Fixture::with_limits(limits);
    let e = f.enrolled("hal@example.com").await;
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let challenge = f.challenge("hal@example.com", &laptop()).await;
        for _ in 0..2 {
            outcomes.push(f.complete(&challenge, SecondFactorCode::totp("000000")).await.map(drop));
        }
    }
    // Draws: login, code, code, login (the 4th), code (the 5th: locked), code.
    let codes: Vec<&str> = outcomes.iter().map(|o| o.as_ref().unwrap_err().code()).collect();
    assert_eq!(
        codes,
        ["invalid_code", "invalid_code", "account_locked", "account_locked"]
    );
    let again = f
        .auth
        .login("hal@example.com", Password::new(PASSWORD), &laptop())
        .await;
    assert!(matches!(again, Err(AuthError::AccountLocked)), "{again:?}");
    let _ = e;
}

#[tokio::test]
async fn recovery_codes_work_once_and_are_counted_and_replaced() {
    let f = Fixture::new();
    let e = f.enrolled("ivy@example.com").await;
    let challenge = f.challenge("ivy@example.com", &laptop()).await;
    let typed = e.codes[0].to_uppercase().replace('-', " ");
    let login = f
        .complete(&challenge, SecondFactorCode::recovery_code(typed))
        .await
        .unwrap();
    let amr = login.tokens.session.auth_methods.to_string();
    assert_eq!(amr, "mfa pwd recovery_code");
    let event = f.events.take().into_iter().last().unwrap();
    assert_eq!(event.kind(), EventKind::RecoveryCodeUsed);
    assert_eq!(f.status(e.user.id).await.recovery_codes_left, 9);

    let challenge = f.challenge("ivy@example.com", &laptop()).await;
    let spent = f
        .complete(&challenge, SecondFactorCode::recovery_code(e.codes[0].clone()))
        .await;
    assert!(matches!(spent, Err(AuthError::LoginChallengeFailed)));

    let caller = f.caller(&login).await;
    f.notices.take();
    let fresh = f
        .auth
        .regenerate_recovery_codes(&caller, Password::new(PASSWORD), &laptop())
        .await
        .unwrap();
    assert_eq!(
        f.notices.take(),
        [(
            SecurityNoticeKind::RecoveryCodesRegenerated,
            "ivy@example.com".to_owned()
        )]
    );
    assert_eq!(f.status(e.user.id).await.recovery_codes_left, 10);
    let challenge = f.challenge("ivy@example.com", &laptop()).await;
    let old = f
        .complete(&challenge, SecondFactorCode::recovery_code(e.codes[1].clone()))
        .await;
    assert!(old.is_err(), "the old codes died");
    let new = fresh.recovery_codes.expose_secrets().next().unwrap().to_owned();
    f.complete(&challenge, SecondFactorCode::recovery_code(new))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_simultaneous_uses_of_one_recovery_code_make_one_session() {
    let f = Arc::new(Fixture::new());
    let e = f.enrolled("jo@example.com").await;
    let code = e.codes[3].clone();
    let challenge = f.challenge("jo@example.com", &laptop()).await;
    let racers: Vec<_> = (0..20)
        .map(|_| {
            let (f, token, code) = (Arc::clone(&f), challenge.token.expose_secret().to_owned(), code.clone());
            tokio::spawn(async move {
                f.auth
                    .complete_login(&token, SecondFactorCode::recovery_code(code), &laptop())
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for racer in racers {
        wins += usize::from(racer.await.unwrap().is_ok());
    }
    assert_eq!(wins, 1);
    assert_eq!(f.status(e.user.id).await.recovery_codes_left, 9);
}

#[tokio::test]
async fn disabling_needs_the_password_and_a_code_and_ends_the_other_sessions() {
    let f = Fixture::new();
    let e = f.enrolled("kai@example.com").await;
    let challenge = f.challenge("kai@example.com", &phone()).await;
    let other = f
        .auth
        .complete_login(
            challenge.token.expose_secret(),
            SecondFactorCode::totp(f.code(&e.secret)),
            &phone(),
        )
        .await
        .unwrap();
    f.clock.advance(STEP);
    let caller = f.caller(&e.login).await;
    let no_code = f
        .auth
        .disable_totp(
            &caller,
            Password::new(PASSWORD),
            SecondFactorCode::totp("000000"),
            &laptop(),
        )
        .await;
    assert!(matches!(no_code, Err(AuthError::InvalidCode)), "{no_code:?}");
    let no_password = f
        .auth
        .disable_totp(
            &caller,
            Password::new("wrong password!"),
            SecondFactorCode::totp(f.code(&e.secret)),
            &laptop(),
        )
        .await;
    assert!(matches!(no_password, Err(AuthError::InvalidCredentials)));
    f.notices.take();
    f.auth
        .disable_totp(
            &caller,
            Password::new(PASSWORD),
            SecondFactorCode::totp(f.code(&e.secret)),
            &laptop(),
        )
        .await
        .unwrap();
    let told: Vec<_> = f.notices.take().into_iter().map(|(kind, _)| kind).collect();
    assert_eq!(told, [SecurityNoticeKind::TotpDisabled]);
    assert!(
        f.auth
            .authenticate(other.tokens.access_token.expose_secret())
            .await
            .is_err(),
        "others ended"
    );
    assert!(
        f.auth
            .authenticate(e.login.tokens.access_token.expose_secret())
            .await
            .is_ok(),
        "own kept"
    );
    let plain = f
        .auth
        .login("kai@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap();
    assert!(matches!(plain, LoginOutcome::SignedIn(_)));
    assert_eq!(f.status(e.user.id).await, SecondFactorStatus::default());
    let kinds: Vec<EventKind> = f.events.take().iter().map(|e| e.kind()).collect();
    assert!(kinds.contains(&EventKind::TotpDisabled), "{kinds:?}");
}

#[tokio::test]
async fn sensitive_actions_need_a_recent_sign_in_or_the_code() {
    let f = Fixture::new();
    let e = f.enrolled("lou@example.com").await;
    let challenge = f.challenge("lou@example.com", &laptop()).await;
    let login = f
        .complete(&challenge, SecondFactorCode::totp(f.code(&e.secret)))
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(9 * 60));
    let caller = f.caller(&login).await;
    f.auth
        .regenerate_recovery_codes(&caller, Password::new(PASSWORD), &laptop())
        .await
        .expect("within ten minutes of the sign-in");

    f.clock.advance(Duration::from_secs(2 * 60));
    let stale = f.caller(&login).await;
    let refused = f
        .auth
        .regenerate_recovery_codes(&stale, Password::new(PASSWORD), &laptop())
        .await;
    let error = refused.unwrap_err();
    assert!(matches!(error, AuthError::StepUpRequired { .. }), "{error:?}");
    assert_eq!(
        (error.code(), error.http_status()),
        ("insufficient_user_authentication", 401)
    );
    let header = auth_core::http::ErrorResponse::from(&error).headers();
    assert!(
        header
            .iter()
            .any(|(name, value)| *name == "www-authenticate" && value.contains("max_age=600")),
        "{header:?}"
    );

    let with_code = stale
        .clone()
        .with_second_factor(SecondFactorCode::totp(f.code(&e.secret)));
    f.auth
        .regenerate_recovery_codes(&with_code, Password::new(PASSWORD), &laptop())
        .await
        .expect("the code again is the step-up");

    // A password change follows the same rule.
    let changed = f
        .auth
        .change_password(
            stale.clone(),
            Password::new(PASSWORD),
            Password::new("a brand new passphrase"),
            &laptop(),
        )
        .await;
    assert!(matches!(changed, Err(AuthError::StepUpRequired { .. })), "{changed:?}");
    f.clock.advance(STEP);
    let with_code = stale.with_second_factor(SecondFactorCode::totp(f.code(&e.secret)));
    f.auth
        .change_password(
            with_code,
            Password::new(PASSWORD),
            Password::new("a brand new passphrase"),
            &laptop(),
        )
        .await
        .unwrap();
    // A bare account id (the application acting) has no recent sign-in on record.
    let bare = f
        .auth
        .change_password(
            e.user.id,
            Password::new("a brand new passphrase"),
            Password::new("another new passphrase"),
            &laptop(),
        )
        .await;
    assert!(matches!(bare, Err(AuthError::StepUpRequired { .. })), "{bare:?}");
}

#[tokio::test]
async fn a_password_reset_never_bypasses_the_factor() {
    let f = Fixture::new();
    let e = f.enrolled("max@example.com").await;
    let delivery = f
        .auth
        .request_password_reset("max@example.com", &laptop())
        .await
        .unwrap()
        .unwrap();
    f.auth
        .reset_password(
            delivery.token.expose_secret(),
            Password::new("reset passphrase 2026"),
            &laptop(),
        )
        .await
        .unwrap();
    let after = f
        .auth
        .login("max@example.com", Password::new("reset passphrase 2026"), &laptop())
        .await
        .unwrap();
    assert!(matches!(after, LoginOutcome::SecondFactorRequired(_)), "{after:?}");
    let _ = e;
}

#[tokio::test]
async fn roles_named_for_a_second_factor_refuse_a_password_only_token() {
    let store = MemoryStore::new();
    let tokens = Tokens::new(
        SigningKey::hs256(common::SECRET).unwrap(),
        "https://auth.test",
        "test-api",
    );
    let auth = AuthService::new(store.clone(), tokens)
        .with_totp(common::totp_settings())
        .with_second_factor_required_for([Role::ADMIN]);
    let user = auth
        .register("root@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap();
    auth.grant_role(user.id, Role::ADMIN, &laptop()).await.unwrap();
    let login = auth
        .login("root@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let me = auth
        .authenticate(login.tokens.access_token.expose_secret())
        .await
        .unwrap();
    let error = me.require_role(&Role::ADMIN).unwrap_err();
    assert_eq!((error.code(), error.http_status()), ("mfa_required", 403));
    assert!(
        me.require_role(&Role::new("support").unwrap())
            .is_err_and(|e| e.code() == "forbidden")
    );

    let enrolment = auth
        .begin_totp_enrolment(&Caller::from(&me), Password::new(PASSWORD), &laptop())
        .await
        .unwrap();
    let secret = enrolment.expose_secret().to_owned();
    let now = OffsetDateTime::now_utc();
    auth.confirm_totp(&Caller::from(&me), &code_at(&secret, now), &laptop())
        .await
        .unwrap();
    let LoginOutcome::SecondFactorRequired(challenge) = auth
        .login("root@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
    else {
        panic!("a challenge");
    };
    let next_step = now + STEP;
    let login = auth
        .complete_login(
            challenge.token.expose_secret(),
            SecondFactorCode::totp(code_at(&secret, next_step)),
            &laptop(),
        )
        .await
        .unwrap();
    let me = auth
        .authenticate(login.tokens.access_token.expose_secret())
        .await
        .unwrap();
    me.require_role(&Role::ADMIN).expect("a login with a second factor");
}

#[tokio::test]
async fn a_service_without_totp_refuses_an_account_that_has_a_factor() {
    let f = Fixture::new();
    let _ = f.enrolled("ned@example.com").await;
    let tokens = Tokens::new(
        SigningKey::hs256(common::SECRET).unwrap(),
        "https://auth.test",
        "test-api",
    );
    let plain = AuthService::new(f.store.clone(), tokens);
    let refused = plain.login("ned@example.com", Password::new(PASSWORD), &laptop()).await;
    assert!(
        matches!(refused, Err(AuthError::SecondFactorRequired)),
        "never the password alone: {refused:?}"
    );
}

#[tokio::test]
async fn a_rotated_encryption_key_still_opens_and_reseals_on_use() {
    let f = Fixture::new();
    let e = f.enrolled("oz@example.com").await;
    let new_key = EncryptionKey::new(&[9; 32]).unwrap();
    let rotated = TotpSettings::new(
        "Auth Test",
        SecretCipher::new(new_key.clone()).with_previous_key(EncryptionKey::new(&ENCRYPTION_KEY).unwrap()),
    );
    let tokens = Tokens::new(
        SigningKey::hs256(common::SECRET).unwrap(),
        "https://auth.test",
        "test-api",
    );
    let auth = AuthService::new(f.store.clone(), tokens)
        .with_clock(Arc::new(f.clock.clone()))
        .with_totp(rotated);
    let LoginOutcome::SecondFactorRequired(challenge) = auth
        .login("oz@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
    else {
        panic!("a challenge");
    };
    auth.complete_login(
        challenge.token.expose_secret(),
        SecondFactorCode::totp(f.code(&e.secret)),
        &laptop(),
    )
    .await
    .unwrap();
    let sealed = f
        .store
        .find_totp_factor(e.user.id)
        .await
        .unwrap()
        .unwrap()
        .sealed_secret;
    assert!(
        sealed.starts_with(&format!("v1.{}.", new_key.id())),
        "resealed under the new key"
    );
}

#[tokio::test]
async fn every_second_factor_flow_records_its_event() {
    let f = Fixture::new();
    let (_, login) = f.logged_in("pia@example.com").await;
    f.events.take();
    let enrolment = f.begin(&login).await;
    let caller = f.caller(&login).await;
    f.auth
        .confirm_totp(&caller, &f.code(enrolment.expose_secret()), &laptop())
        .await
        .unwrap();
    f.clock.advance(STEP);
    // This session began on the password alone: no step-up by recency, the code it is.
    let with_code = caller.with_second_factor(SecondFactorCode::totp(f.code(enrolment.expose_secret())));
    f.auth
        .regenerate_recovery_codes(&with_code, Password::new(PASSWORD), &laptop())
        .await
        .unwrap();
    let kinds: Vec<EventKind> = f.events.take().iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        [
            EventKind::TotpEnrolmentStarted,
            EventKind::TotpEnabled,
            EventKind::RecoveryCodesRegenerated
        ]
    );
}

#[tokio::test]
async fn a_password_reset_gives_no_new_code_guesses_and_kills_the_pending_challenge() {
    // Four wrong codes per hour for the account, whatever else happens.
    let limits = RateLimits::default()
        .with_limit(
            auth_core::Bucket::SecondFactorFailuresPerAccount,
            Some(Limit::per_hour(4)),
        )
        .with_limit(auth_core::Bucket::LoginFailuresPerAccount, Some(Limit::per_minute(100)));
    let f = Fixture::with_limits(limits);
    let e = f.enrolled("quin@example.com").await;
    // A challenge pending when the password is reset dies with it, even with the right code.
    let pending = f.challenge("quin@example.com", &laptop()).await;
    let delivery = f
        .auth
        .request_password_reset("quin@example.com", &laptop())
        .await
        .unwrap()
        .unwrap();
    f.auth
        .reset_password(
            delivery.token.expose_secret(),
            Password::new("the owner's new passphrase"),
            &laptop(),
        )
        .await
        .unwrap();
    f.events.take();
    let stale = f.complete(&pending, SecondFactorCode::totp(f.code(&e.secret))).await;
    assert!(matches!(stale, Err(AuthError::LoginChallengeFailed)), "{stale:?}");
    let reason = f.events.take().into_iter().last().unwrap().outcome;
    assert_eq!(
        reason,
        Outcome::Refused(Refusal::InvalidToken(auth_core::TokenError::Revoked))
    );
    let mut codes = Vec::new();
    for round in 0..3 {
        // Whoever holds the mailbox resets the password to one of their own...
        let delivery = f
            .auth
            .request_password_reset("quin@example.com", &laptop())
            .await
            .unwrap()
            .unwrap();
        let password = format!("the mailbox owner's passphrase {round}");
        f.auth
            .reset_password(
                delivery.token.expose_secret(),
                Password::new(password.clone()),
                &laptop(),
            )
            .await
            .unwrap();
        // ...and guesses codes on a fresh challenge.
        let LoginOutcome::SecondFactorRequired(challenge) = f
            .auth
            .login("quin@example.com", Password::new(password), &laptop())
            .await
            .unwrap()
        else {
            panic!("a challenge");
        };
        for _ in 0..2 {
            let wrong = wrong_code_for(&e.secret, f.now());
            let answer = f.complete(&challenge, SecondFactorCode::totp(wrong)).await;
            codes.push(answer.unwrap_err().code());
        }
    }
    assert_eq!(
        codes,
        [
            "invalid_code",
            "invalid_code",
            "invalid_code",
            "invalid_code",
            "rate_limited",
            "rate_limited"
        ],
        "the resets gave back no guesses"
    );
}

/// A six-digit code that matches none of the steps around `at`.
fn wrong_code_for(secret: &str, at: OffsetDateTime) -> String {
    let near: Vec<String> = [-60i64, -30, 0, 30, 60]
        .iter()
        .map(|offset| code_at(secret, at + time::Duration::seconds(*offset)))
        .collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|code| !near.contains(code))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_on_one_challenge_are_checked_at_most_five_times() {
    let limits = RateLimits::default()
        .with_limit(auth_core::Bucket::SecondFactorFailuresPerAccount, None)
        .with_limit(auth_core::Bucket::LoginFailuresPerAccount, None)
        .with_limit(auth_core::Bucket::ConsecutiveLoginFailuresPerAccount, None)
        .with_limit(auth_core::Bucket::LoginAttemptsPerClient, None);
    let f = Arc::new(Fixture::with_limits(limits));
    let e = f.enrolled("rex@example.com").await;
    let challenge = f.challenge("rex@example.com", &laptop()).await;
    f.events.take();
    let wrong = wrong_code_for(&e.secret, f.now());
    let racers: Vec<_> = (0..40)
        .map(|_| {
            let (f, token, wrong) = (
                Arc::clone(&f),
                challenge.token.expose_secret().to_owned(),
                wrong.clone(),
            );
            tokio::spawn(async move {
                f.auth
                    .complete_login(&token, SecondFactorCode::totp(wrong), &laptop())
                    .await
            })
        })
        .collect();
    for racer in racers {
        assert!(matches!(racer.await.unwrap(), Err(AuthError::LoginChallengeFailed)));
    }
    let checked = f
        .events
        .take()
        .iter()
        .filter(|event| event.outcome == Outcome::Refused(Refusal::WrongCode))
        .count();
    assert_eq!(checked, 5, "the challenge's five codes were checked, no more");
    let right = f.complete(&challenge, SecondFactorCode::totp(f.code(&e.secret))).await;
    assert!(right.is_err(), "and it is dead");
}

#[tokio::test]
async fn an_abandoned_enrolment_expires_and_confirming_draws_on_the_account() {
    let limits = RateLimits::default().with_limit(
        auth_core::Bucket::SecondFactorFailuresPerAccount,
        Some(Limit::per_hour(3)),
    );
    let f = Fixture::with_limits(limits);
    let (_, login) = f.logged_in("sia@example.com").await;
    let enrolment = f.begin(&login).await;
    let secret = enrolment.expose_secret().to_owned();
    let caller = f.caller(&login).await;
    // Guesses at the confirmation are the account's, from any client.
    let mut answers = Vec::new();
    for client in [laptop(), phone(), laptop(), phone()] {
        let wrong = wrong_code_for(&secret, f.now());
        answers.push(f.auth.confirm_totp(&caller, &wrong, &client).await.unwrap_err().code());
    }
    assert_eq!(
        answers,
        ["invalid_code", "invalid_code", "invalid_code", "rate_limited"]
    );
    // Thirty minutes later the secret is gone for good: begin again.
    f.clock.advance(Duration::from_secs(30 * 60));
    let late = f.auth.confirm_totp(&caller, &f.code(&secret), &laptop()).await;
    assert!(matches!(late, Err(AuthError::SecondFactorNotEnrolled)), "{late:?}");
}

#[tokio::test]
async fn a_step_up_needs_a_recent_sign_in_with_the_second_factor() {
    let f = Fixture::new();
    let e = f.enrolled("tam@example.com").await;
    // e.login began on the password alone, before the factor: recent, but no step-up.
    let password_only = f.caller(&e.login).await;
    let refused = f
        .auth
        .regenerate_recovery_codes(&password_only, Password::new(PASSWORD), &laptop())
        .await;
    assert!(matches!(refused, Err(AuthError::StepUpRequired { .. })), "{refused:?}");
    // A session that carries on another keeps its sign-in time and methods: a password
    // change opens no new window.
    let challenge = f.challenge("tam@example.com", &laptop()).await;
    let login = f
        .complete(&challenge, SecondFactorCode::totp(f.code(&e.secret)))
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(8 * 60));
    let carried = f.auth.continue_session(&login.tokens.session, &laptop()).await.unwrap();
    assert_eq!(carried.tokens.session.auth_time, login.tokens.session.auth_time);
    assert_eq!(carried.tokens.session.auth_methods, login.tokens.session.auth_methods);
    f.clock.advance(Duration::from_secs(3 * 60));
    let caller = f.caller(&carried).await;
    let stale = f
        .auth
        .regenerate_recovery_codes(&caller, Password::new(PASSWORD), &laptop())
        .await;
    assert!(matches!(stale, Err(AuthError::StepUpRequired { .. })), "{stale:?}");
}

#[tokio::test]
async fn a_login_racing_the_confirmation_keeps_no_password_only_session() {
    let f = Fixture::new();
    let (user, login) = f.logged_in("uma@example.com").await;
    let _pending = f.begin(&login).await;
    let sealed = f.store.find_totp_factor(user.id).await.unwrap().unwrap().sealed_secret;
    // Another request confirms the factor right after this login stored its session,
    // having listed the sessions before it.
    let store = f.store.inner.clone();
    let at = f.now();
    f.store.after_next_session_insert(Box::new(move || {
        Box::pin(async move {
            store
                .confirm_totp_factor(user.id, &sealed, 1, &[], at)
                .await
                .unwrap()
                .unwrap();
        })
    }));
    let raced = f
        .auth
        .login("uma@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap();
    assert!(matches!(raced, LoginOutcome::SecondFactorRequired(_)), "{raced:?}");
    let live: Vec<_> = f
        .auth
        .list_sessions(user.id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        live,
        vec![login.tokens.session.id],
        "the racing login's session was ended"
    );
}

/// Changing the address and deleting the account follow the step-up rule too: the
/// password alone is not enough once the sign-in is stale; the code again is.
#[tokio::test]
async fn an_address_change_and_a_deletion_need_the_step_up_too() {
    let f = Fixture::new();
    let e = f.enrolled("mia@example.com").await;
    f.clock.advance(Duration::from_secs(11 * 60));
    let stale = f.caller(&e.login).await;
    let change = f
        .auth
        .request_email_change(
            stale.clone(),
            "mia@example.org",
            Some(Password::new(PASSWORD)),
            &laptop(),
        )
        .await;
    assert!(matches!(change, Err(AuthError::StepUpRequired { .. })), "{change:?}");
    let deletion = f
        .auth
        .delete_account(stale.clone(), Some(Password::new(PASSWORD)), &laptop())
        .await;
    assert!(
        matches!(deletion, Err(AuthError::StepUpRequired { .. })),
        "{deletion:?}"
    );
    assert!(f.store.find_user_by_id(e.user.id).await.unwrap().is_some());

    let with_code = stale.with_second_factor(SecondFactorCode::totp(f.code(&e.secret)));
    f.auth
        .delete_account(with_code, Some(Password::new(PASSWORD)), &laptop())
        .await
        .unwrap();
    assert!(f.store.find_user_by_id(e.user.id).await.unwrap().is_none());
    assert!(f.store.find_totp_factor(e.user.id).await.unwrap().is_none());
    assert_eq!(f.store.count_recovery_codes(e.user.id).await.unwrap(), 0);
}
