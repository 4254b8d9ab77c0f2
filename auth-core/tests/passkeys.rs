//! Passkeys (WebAuthn) against a software authenticator that answers as a browser's
//! would (webauthn-authenticator-rs's `SoftPasskey`: real keys, real signatures, real
//! counters): registration from a recent sign-in, sign-in without an address, a passkey
//! as the second factor of a login challenge, management, and every refusal the issue
//! names (wrong origin, wrong RP id, replayed and expired challenges, an unknown
//! credential, a sign counter that moves back), all on the injected clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::time::Duration;

use auth_core::{
    Action, AuthError, AuthEvent, AuthMethod, ClientInfo, EventKind, Limit, LoginOutcome, LoginSuccess, Outcome,
    PasskeyCredential, PasskeyRefusal, PasskeyStore, Password, RateLimits, Refusal, SecondFactorMethod,
    SecurityNoticeKind, User,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Fixture, PASSKEY_ORIGIN, PASSWORD, laptop};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// An authenticator that verifies its user (as a platform authenticator with a PIN or a
/// fingerprint does).
fn authenticator() -> SoftPasskey {
    SoftPasskey::new(true)
}

fn origin() -> Url {
    Url::parse(PASSKEY_ORIGIN).unwrap()
}

/// The authenticator's answer to creation options, as the browser's `toJSON()` gives it.
fn create(authenticator: &mut SoftPasskey, options: &Value, origin: Url) -> Value {
    let options: CreationChallengeResponse = serde_json::from_value(json!({ "publicKey": options })).unwrap();
    serde_json::to_value(authenticator.do_registration(origin, options).unwrap()).unwrap()
}

/// The authenticator's assertion for request options. The software authenticator keeps no
/// resident keys, so the credential is named in `allowCredentials`, as a browser would
/// find it by itself.
fn assert_with(authenticator: &mut SoftPasskey, options: &Value, credential_id: &[u8], origin: Url) -> Value {
    let mut options = options.clone();
    options["allowCredentials"] = json!([{ "type": "public-key", "id": URL_SAFE_NO_PAD.encode(credential_id) }]);
    let options: RequestChallengeResponse = serde_json::from_value(json!({ "publicKey": options })).unwrap();
    serde_json::to_value(authenticator.do_authentication(origin, options).unwrap()).unwrap()
}

/// The refusal of the last event recorded.
fn last_refusal(events: &[AuthEvent]) -> Option<Refusal> {
    match &events.last().unwrap().outcome {
        Outcome::Refused(refusal) => Some(refusal.clone()),
        _ => None,
    }
}

struct Registered {
    user: User,
    login: LoginSuccess,
    authenticator: SoftPasskey,
    passkey: PasskeyCredential,
}

impl Fixture {
    /// Registers `email`, signs it in with its password, and registers a passkey.
    async fn with_passkey(&self, email: &str) -> Registered {
        let (user, login) = self.logged_in(email).await;
        let mut authenticator = authenticator();
        let caller = self.caller(&login).await;
        let begun = self.auth.begin_passkey_registration(&caller, &laptop()).await.unwrap();
        let credential = create(&mut authenticator, &begun.options, origin());
        let passkey = self
            .auth
            .finish_passkey_registration(
                &caller,
                begun.ceremony.expose_secret(),
                &credential,
                Some(" Laptop "),
                &laptop(),
            )
            .await
            .unwrap();
        self.events.take();
        self.notices.take();
        Registered {
            user,
            login,
            authenticator,
            passkey,
        }
    }

    /// Enrols and confirms TOTP for the caller of `login`: password sign-ins ask for a
    /// second factor from now on.
    async fn enrol_totp(&self, login: &LoginSuccess) {
        let caller = self.caller(login).await;
        let enrolment = self
            .auth
            .begin_totp_enrolment(&caller, Password::new(PASSWORD), &laptop())
            .await
            .unwrap();
        let secret = totp_rs::Secret::try_from_base32(enrolment.expose_secret()).unwrap();
        let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
        let code = totp
            .generate(u64::try_from(self.now().unix_timestamp()).unwrap())
            .to_string();
        self.auth.confirm_totp(&caller, &code, &laptop()).await.unwrap();
    }

    /// A password login of `email` that asks for a second factor: its challenge.
    async fn challenge(&self, email: &str) -> auth_core::SecondFactorChallenge {
        match self
            .auth
            .login(email, Password::new(PASSWORD), &laptop())
            .await
            .unwrap()
        {
            LoginOutcome::SecondFactorRequired(challenge) => challenge,
            other => panic!("a second factor is required, got {other:?}"),
        }
    }

    /// Sets the stored sign counter of `credential_id` to `counter`, as a clone of the
    /// key signing in elsewhere would have.
    async fn clone_signed_in_up_to(&self, credential_id: &[u8], counter: u32) {
        let stored = self.store.find_passkey(credential_id).await.unwrap().unwrap();
        let mut credential: Value = serde_json::from_str(&stored.credential).unwrap();
        credential["cred"]["counter"] = json!(counter);
        let moved = self
            .store
            .record_passkey_use(stored.id, stored.counter, &credential.to_string(), counter, self.now())
            .await
            .unwrap();
        assert!(moved);
    }

    /// A passkey sign-in with `authenticator` for `credential_id`, from `origin`.
    async fn passkey_login(
        &self,
        authenticator: &mut SoftPasskey,
        credential_id: &[u8],
        origin: Url,
    ) -> Result<LoginSuccess, AuthError> {
        let begun = self.auth.begin_passkey_login(&laptop()).await.unwrap();
        let assertion = assert_with(authenticator, &begun.options, credential_id, origin);
        self.auth
            .finish_passkey_login(begun.ceremony.expose_secret(), &assertion, &laptop())
            .await
    }
}

#[tokio::test]
async fn a_passkey_registered_from_a_recent_sign_in_signs_in_without_an_address() {
    let f = Fixture::new();
    let (user, login) = f.logged_in("ada@example.com").await;
    let caller = f.caller(&login).await;
    f.events.take();
    let begun = f.auth.begin_passkey_registration(&caller, &laptop()).await.unwrap();
    assert!(begun.ceremony.expose_secret().starts_with("pkc_"));
    assert_eq!(begun.expires_in, Duration::from_secs(300));
    let options = &begun.options;
    assert_eq!(options["rp"]["id"], "auth.test");
    assert_eq!(options["user"]["name"], "ada@example.com");
    assert_eq!(
        options["user"]["id"],
        URL_SAFE_NO_PAD.encode(user.id.as_uuid().as_bytes()),
        "the user handle is the account's id"
    );
    assert_eq!(options["authenticatorSelection"]["residentKey"], "preferred");
    assert_eq!(options["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(options["attestation"], "none");

    let mut key = authenticator();
    let credential = create(&mut key, options, origin());
    let passkey = f
        .auth
        .finish_passkey_registration(
            &caller,
            begun.ceremony.expose_secret(),
            &credential,
            Some(" Laptop "),
            &laptop(),
        )
        .await
        .unwrap();
    assert_eq!(passkey.name, "Laptop", "trimmed");
    assert_eq!(passkey.user_id, user.id);
    assert_eq!(f.auth.list_passkeys(user.id).await.unwrap(), vec![passkey.clone()]);
    let kinds: Vec<_> = f.events.take().iter().map(AuthEvent::kind).collect();
    assert_eq!(kinds, [EventKind::PasskeyRegistrationStarted, EventKind::PasskeyAdded]);
    assert_eq!(
        f.notices.take(),
        [(
            SecurityNoticeKind::PasskeyAdded("Laptop".into()),
            "ada@example.com".into()
        )]
    );

    // A second registration excludes the first credential.
    let again = f.auth.begin_passkey_registration(&caller, &laptop()).await.unwrap();
    assert_eq!(
        again.options["excludeCredentials"][0]["id"],
        URL_SAFE_NO_PAD.encode(&passkey.credential_id)
    );

    let signed_in = f
        .passkey_login(&mut key, &passkey.credential_id, origin())
        .await
        .unwrap();
    assert_eq!(signed_in.user.id, user.id);
    let me = f
        .auth
        .authenticate(signed_in.tokens.access_token.expose_secret())
        .await
        .unwrap();
    let methods = me.claims.auth_methods().unwrap();
    assert!(methods.contains(&AuthMethod::HARDWARE_KEY), "{methods}");
    assert!(methods.contains(&AuthMethod::MULTI_FACTOR), "{methods}");
    assert!(!methods.contains(&AuthMethod::PASSWORD), "{methods}");
    let events = f.events.take();
    let last = events.last().unwrap();
    assert_eq!(
        (last.action, last.kind()),
        (Action::PasskeyLogin, EventKind::LoginSucceeded)
    );
    let used = f.store.find_passkey(&passkey.credential_id).await.unwrap().unwrap();
    assert_eq!(used.counter, 1, "the authenticator's counter is stored");
    assert_eq!(used.last_used_at, Some(f.now()));
}

#[tokio::test]
async fn registration_needs_a_recent_sign_in_and_the_callers_own_ceremony() {
    let f = Fixture::new();
    let (_, login) = f.logged_in("ada@example.com").await;
    let (_, other) = f.logged_in("bob@example.com").await;
    let caller = f.caller(&login).await;
    let begun = f.auth.begin_passkey_registration(&caller, &laptop()).await.unwrap();
    let credential = create(&mut authenticator(), &begun.options, origin());

    // Bob cannot finish Ada's ceremony; the ceremony is spent by the attempt.
    let bob = f.caller(&other).await;
    let refused = f
        .auth
        .finish_passkey_registration(&bob, begun.ceremony.expose_secret(), &credential, None, &laptop())
        .await;
    assert!(matches!(refused, Err(AuthError::InvalidPasskey)), "{refused:?}");
    assert_eq!(
        last_refusal(&f.events.take()),
        Some(Refusal::Passkey(PasskeyRefusal::WrongCeremony))
    );
    let replayed = f
        .auth
        .finish_passkey_registration(&caller, begun.ceremony.expose_secret(), &credential, None, &laptop())
        .await;
    assert!(matches!(replayed, Err(AuthError::InvalidPasskey)), "{replayed:?}");
    assert_eq!(
        last_refusal(&f.events.take()),
        Some(Refusal::Passkey(PasskeyRefusal::UnknownCeremony))
    );

    // Malformed credentials and names are refused, nothing stored.
    let begun = f.auth.begin_passkey_registration(&caller, &laptop()).await.unwrap();
    let malformed = f
        .auth
        .finish_passkey_registration(
            &caller,
            begun.ceremony.expose_secret(),
            &json!({"id": 7}),
            None,
            &laptop(),
        )
        .await;
    assert!(matches!(malformed, Err(AuthError::InvalidPasskey)), "{malformed:?}");
    for name in ["", "   ", &"x".repeat(65), "a\u{7}b"] {
        let begun = f.auth.begin_passkey_registration(&caller, &laptop()).await.unwrap();
        let credential = create(&mut authenticator(), &begun.options, origin());
        let refused = f
            .auth
            .finish_passkey_registration(
                &caller,
                begun.ceremony.expose_secret(),
                &credential,
                Some(name),
                &laptop(),
            )
            .await;
        assert!(
            matches!(refused, Err(AuthError::InvalidPasskeyName)),
            "{name:?}: {refused:?}"
        );
    }
    assert!(f.auth.list_passkeys(caller.user_id()).await.unwrap().is_empty());

    // An hour later the sign-in is no longer recent.
    f.clock.advance(Duration::from_secs(3600));
    let stale = f.auth.begin_passkey_registration(&caller, &laptop()).await;
    assert!(matches!(stale, Err(AuthError::StepUpRequired { .. })), "{stale:?}");
}

#[tokio::test]
async fn an_assertion_from_another_origin_or_for_another_rp_id_is_refused() {
    let f = Fixture::new();
    let mut r = f.with_passkey("ada@example.com").await;
    let id = r.passkey.credential_id.clone();

    // A subdomain: the authenticator signs (the RP id covers it), the service refuses.
    let other_origin = Url::parse("https://login.auth.test").unwrap();
    let refused = f.passkey_login(&mut r.authenticator, &id, other_origin).await;
    assert!(matches!(refused, Err(AuthError::PasskeyRefused)), "{refused:?}");
    let events = f.events.take();
    assert!(
        matches!(
            last_refusal(&events),
            Some(Refusal::Passkey(PasskeyRefusal::Verification(_)))
        ),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap().kind(), EventKind::LoginFailed);

    // Options rewritten for a wider RP id: the authenticator signs for it, the service
    // expects its own.
    let begun = f.auth.begin_passkey_login(&laptop()).await.unwrap();
    let mut options = begun.options.clone();
    options["rpId"] = json!("test");
    let assertion = assert_with(&mut r.authenticator, &options, &id, origin());
    let refused = f
        .auth
        .finish_passkey_login(begun.ceremony.expose_secret(), &assertion, &laptop())
        .await;
    assert!(matches!(refused, Err(AuthError::PasskeyRefused)), "{refused:?}");
    assert!(matches!(
        last_refusal(&f.events.take()),
        Some(Refusal::Passkey(PasskeyRefusal::Verification(_)))
    ));

    // The right origin still works.
    f.passkey_login(&mut r.authenticator, &id, origin()).await.unwrap();
}

#[tokio::test]
async fn a_challenge_works_once_and_for_five_minutes() {
    let f = Fixture::new();
    let mut r = f.with_passkey("ada@example.com").await;
    let id = r.passkey.credential_id.clone();

    let begun = f.auth.begin_passkey_login(&laptop()).await.unwrap();
    let assertion = assert_with(&mut r.authenticator, &begun.options, &id, origin());
    f.auth
        .finish_passkey_login(begun.ceremony.expose_secret(), &assertion, &laptop())
        .await
        .unwrap();
    let replayed = f
        .auth
        .finish_passkey_login(begun.ceremony.expose_secret(), &assertion, &laptop())
        .await;
    assert!(matches!(replayed, Err(AuthError::PasskeyRefused)), "{replayed:?}");
    assert_eq!(
        last_refusal(&f.events.take()),
        Some(Refusal::Passkey(PasskeyRefusal::UnknownCeremony))
    );

    // The same assertion under a fresh ceremony: its challenge is not that ceremony's.
    let fresh = f.auth.begin_passkey_login(&laptop()).await.unwrap();
    let replayed = f
        .auth
        .finish_passkey_login(fresh.ceremony.expose_secret(), &assertion, &laptop())
        .await;
    assert!(matches!(replayed, Err(AuthError::PasskeyRefused)), "{replayed:?}");
    assert!(matches!(
        last_refusal(&f.events.take()),
        Some(Refusal::Passkey(PasskeyRefusal::Verification(_)))
    ));

    let begun = f.auth.begin_passkey_login(&laptop()).await.unwrap();
    let assertion = assert_with(&mut r.authenticator, &begun.options, &id, origin());
    f.clock.advance(Duration::from_secs(300));
    let expired = f
        .auth
        .finish_passkey_login(begun.ceremony.expose_secret(), &assertion, &laptop())
        .await;
    assert!(matches!(expired, Err(AuthError::PasskeyRefused)), "{expired:?}");
    assert_eq!(
        last_refusal(&f.events.take()),
        Some(Refusal::Passkey(PasskeyRefusal::ExpiredCeremony))
    );

    // A registration's ceremony is no sign-in's.
    let caller = f.caller(&r.login).await;
    let registration = f.auth.begin_passkey_registration(&caller, &laptop()).await.unwrap();
    let login = f.auth.begin_passkey_login(&laptop()).await.unwrap();
    let assertion = assert_with(&mut r.authenticator, &login.options, &id, origin());
    let wrong_kind = f
        .auth
        .finish_passkey_login(registration.ceremony.expose_secret(), &assertion, &laptop())
        .await;
    assert!(matches!(wrong_kind, Err(AuthError::PasskeyRefused)), "{wrong_kind:?}");
    assert_eq!(
        last_refusal(&f.events.take()),
        Some(Refusal::Passkey(PasskeyRefusal::WrongCeremony))
    );
}

#[tokio::test]
async fn an_unknown_credential_is_refused() {
    let f = Fixture::new();
    let mut r = f.with_passkey("ada@example.com").await;
    // A second key, registered to the authenticator only: the service never saw it.
    let caller = f.caller(&r.login).await;
    let begun = f.auth.begin_passkey_registration(&caller, &laptop()).await.unwrap();
    let orphan = create(&mut r.authenticator, &begun.options, origin());
    let orphan_id = URL_SAFE_NO_PAD.decode(orphan["rawId"].as_str().unwrap()).unwrap();
    let refused = f.passkey_login(&mut r.authenticator, &orphan_id, origin()).await;
    assert!(matches!(refused, Err(AuthError::PasskeyRefused)), "{refused:?}");
    assert_eq!(
        last_refusal(&f.events.take()),
        Some(Refusal::Passkey(PasskeyRefusal::UnknownCredential))
    );

    // And a removed one.
    f.auth.delete_passkey(&caller, r.passkey.id, &laptop()).await.unwrap();
    let removed = f
        .passkey_login(&mut r.authenticator, &r.passkey.credential_id, origin())
        .await;
    assert!(matches!(removed, Err(AuthError::PasskeyRefused)), "{removed:?}");
    assert_eq!(
        last_refusal(&f.events.take()),
        Some(Refusal::Passkey(PasskeyRefusal::UnknownCredential))
    );
}

#[tokio::test]
async fn a_sign_counter_that_moves_back_is_refused_and_recorded_as_a_possible_clone() {
    let f = Fixture::new();
    let mut r = f.with_passkey("ada@example.com").await;
    let id = r.passkey.credential_id.clone();
    f.passkey_login(&mut r.authenticator, &id, origin()).await.unwrap();
    f.passkey_login(&mut r.authenticator, &id, origin()).await.unwrap();
    assert_eq!(f.store.find_passkey(&id).await.unwrap().unwrap().counter, 2);

    // A clone of the key signed in five times elsewhere: the stored counter is 7, this
    // authenticator's next is 3.
    f.clone_signed_in_up_to(&id, 7).await;
    let refused = f.passkey_login(&mut r.authenticator, &id, origin()).await;
    assert!(matches!(refused, Err(AuthError::PasskeyRefused)), "{refused:?}");
    let events = f.events.take();
    let last = events.last().unwrap();
    assert_eq!(last.kind(), EventKind::PasskeyCounterRegressed);
    assert_eq!(last.subject, auth_core::Subject::User(r.user.id));
    assert_eq!(
        f.store.find_passkey(&id).await.unwrap().unwrap().counter,
        7,
        "the counter never moves back"
    );
}

#[tokio::test]
async fn a_passkey_completes_a_login_challenge_as_the_second_factor() {
    let f = Fixture::new();
    let mut r = f.with_passkey("ada@example.com").await;
    // A password login without TOTP signs in at once: a passkey alone does not make the
    // password ask for a second factor.
    let plain = f
        .auth
        .login("ada@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap();
    assert!(matches!(plain, LoginOutcome::SignedIn(_)));

    // With TOTP confirmed, the challenge offers the passkey too.
    f.enrol_totp(&r.login).await;
    f.events.take();

    let challenge = f.challenge("ada@example.com").await;
    assert_eq!(
        challenge.methods,
        [
            SecondFactorMethod::Totp,
            SecondFactorMethod::RecoveryCode,
            SecondFactorMethod::Passkey
        ]
    );
    let begun = f
        .auth
        .begin_passkey_second_factor(challenge.token.expose_secret(), &laptop())
        .await
        .unwrap();
    assert_eq!(
        begun.options["allowCredentials"][0]["id"],
        URL_SAFE_NO_PAD.encode(&r.passkey.credential_id),
        "the challenge's account's passkeys are listed"
    );
    let assertion = assert_with(&mut r.authenticator, &begun.options, &r.passkey.credential_id, origin());

    // Not from another client; the challenge stays usable.
    let elsewhere = ClientInfo::new(Some("curl/8"), Some("192.0.2.9".parse().unwrap()));
    let refused = f
        .auth
        .complete_login_with_passkey(
            challenge.token.expose_secret(),
            begun.ceremony.expose_secret(),
            &assertion,
            &elsewhere,
        )
        .await;
    assert!(matches!(refused, Err(AuthError::LoginChallengeFailed)), "{refused:?}");

    let login = f
        .auth
        .complete_login_with_passkey(
            challenge.token.expose_secret(),
            begun.ceremony.expose_secret(),
            &assertion,
            &laptop(),
        )
        .await
        .unwrap();
    let me = f
        .auth
        .authenticate(login.tokens.access_token.expose_secret())
        .await
        .unwrap();
    let methods = me.claims.auth_methods().unwrap().to_string();
    assert!(
        methods.contains("pwd") && methods.contains("hwk") && methods.contains("mfa"),
        "{methods}"
    );
    let last = f.events.take().pop().unwrap();
    assert_eq!(
        (last.action, last.kind()),
        (Action::CompleteLoginWithPasskey, EventKind::LoginSucceeded)
    );

    // The challenge is spent.
    let again = f
        .auth
        .begin_passkey_second_factor(challenge.token.expose_secret(), &laptop())
        .await;
    assert!(matches!(again, Err(AuthError::LoginChallengeFailed)), "{again:?}");
}

#[tokio::test]
async fn passkeys_are_renamed_and_removed_by_their_owner_never_the_last_way_in() {
    let f = Fixture::new();
    let r = f.with_passkey("ada@example.com").await;
    let caller = f.caller(&r.login).await;
    f.auth
        .rename_passkey(&caller, r.passkey.id, "Work laptop", &laptop())
        .await
        .unwrap();
    assert_eq!(f.auth.list_passkeys(r.user.id).await.unwrap()[0].name, "Work laptop");
    let too_long = f
        .auth
        .rename_passkey(&caller, r.passkey.id, &"x".repeat(65), &laptop())
        .await;
    assert!(matches!(too_long, Err(AuthError::InvalidPasskeyName)));

    // Another account's passkey is not found.
    let (_, bob) = f.logged_in("bob@example.com").await;
    let bob = f.caller(&bob).await;
    let theirs = f.auth.rename_passkey(&bob, r.passkey.id, "Mine", &laptop()).await;
    assert!(matches!(theirs, Err(AuthError::PasskeyNotFound)), "{theirs:?}");
    let theirs = f.auth.delete_passkey(&bob, r.passkey.id, &laptop()).await;
    assert!(matches!(theirs, Err(AuthError::PasskeyNotFound)), "{theirs:?}");

    // Removal needs a recent sign-in.
    f.clock.advance(Duration::from_secs(3600));
    let stale = f.auth.delete_passkey(&caller, r.passkey.id, &laptop()).await;
    assert!(matches!(stale, Err(AuthError::StepUpRequired { .. })), "{stale:?}");
    let fresh = f
        .auth
        .login("ada@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let caller = f.caller(&fresh).await;
    f.notices.take();
    f.auth.delete_passkey(&caller, r.passkey.id, &laptop()).await.unwrap();
    assert!(f.auth.list_passkeys(r.user.id).await.unwrap().is_empty());
    assert_eq!(
        f.notices.take(),
        [(
            SecurityNoticeKind::PasskeyRemoved("Work laptop".into()),
            "ada@example.com".into()
        )]
    );
    let last = f.events.take().pop().unwrap();
    assert_eq!(
        (last.action, last.kind()),
        (Action::DeletePasskey, EventKind::PasskeyRemoved)
    );

    // A passwordless account keeps its only passkey.
    let lone = f.insert("cy@example.com", None, true).await;
    let lone_passkey = PasskeyCredential::new(lone.id, vec![7; 32], "{}".into(), 0, "Key", f.now());
    f.store.insert_passkey(&lone_passkey).await.unwrap();
    let lone_login = f
        .auth
        .start_session(lone.id, AuthMethod::HARDWARE_KEY.into(), &laptop())
        .await
        .unwrap();
    let lone_caller = f.caller(&lone_login).await;
    let last = f.auth.delete_passkey(&lone_caller, lone_passkey.id, &laptop()).await;
    assert!(matches!(last, Err(AuthError::LastSignInMethod)), "{last:?}");
}

#[tokio::test]
async fn ceremony_starts_draw_on_the_clients_allowance() {
    let f = Fixture::with_limits(RateLimits::default().with_limit(
        auth_core::Bucket::PasskeyCeremoniesPerClient,
        Some(Limit::per_minute(2)),
    ));
    f.auth.begin_passkey_login(&laptop()).await.unwrap();
    f.auth.begin_passkey_login(&laptop()).await.unwrap();
    let limited = f.auth.begin_passkey_login(&laptop()).await;
    assert!(matches!(limited, Err(AuthError::RateLimited { .. })), "{limited:?}");
    let other = ClientInfo::new(Some("curl/8"), Some("192.0.2.9".parse().unwrap()));
    f.auth.begin_passkey_login(&other).await.unwrap();
    let last = f.events.take().pop().unwrap();
    assert_eq!(last.kind(), EventKind::PasskeyLoginStarted);
}

#[tokio::test]
async fn registering_renaming_and_removing_a_passkey_keep_their_audit_records_with_the_change() {
    // The writer never runs: every record read back was written with its change.
    let mut f = Fixture::new();
    let (log, _writer) = auth_core::AuditLog::new(std::sync::Arc::new(f.store.clone()));
    f.auth = f.auth.with_audit_log(log);
    let r = f.with_passkey("ada@example.com").await;
    let caller = f.caller(&r.login).await;
    f.auth
        .rename_passkey(&caller, r.passkey.id, "Phone", &laptop())
        .await
        .unwrap();
    f.auth.delete_passkey(&caller, r.passkey.id, &laptop()).await.unwrap();
    let kinds: Vec<String> = f
        .auth
        .events_of(r.user.id, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.kind)
        .filter(|kind| kind.starts_with("passkey"))
        .collect();
    assert_eq!(kinds, ["passkey_added", "passkey_renamed", "passkey_removed"]);
}

#[tokio::test]
async fn expired_ceremonies_are_purged_and_live_ones_kept() {
    let f = Fixture::new();
    f.auth.begin_passkey_login(&laptop()).await.unwrap();
    f.clock.advance(Duration::from_secs(240));
    let live = f.auth.begin_passkey_login(&laptop()).await.unwrap();
    f.clock.advance(Duration::from_secs(61));
    let purged = f.auth.purge_expired().await.unwrap();
    assert_eq!(purged.passkey_ceremonies, 1, "the first expired, the second is live");
    // The live one still finishes (here refused for its credential, not its ceremony).
    let refused = f
        .auth
        .finish_passkey_login(live.ceremony.expose_secret(), &json!({}), &laptop())
        .await;
    assert!(matches!(refused, Err(AuthError::PasskeyRefused)));
    assert_eq!(
        last_refusal(&f.events.take()),
        Some(Refusal::Passkey(PasskeyRefusal::MalformedCredential))
    );
}

#[tokio::test]
async fn a_second_factor_assertion_is_held_to_the_stored_counter_not_the_ceremonys_copy() {
    let f = Fixture::new();
    let mut r = f.with_passkey("ada@example.com").await;
    f.enrol_totp(&r.login).await;
    let challenge = f.challenge("ada@example.com").await;
    let begun = f
        .auth
        .begin_passkey_second_factor(challenge.token.expose_secret(), &laptop())
        .await
        .unwrap();
    // After the ceremony began, a clone signed in elsewhere: the stored counter is 7.
    f.clone_signed_in_up_to(&r.passkey.credential_id, 7).await;
    f.events.take();
    // This authenticator's next counter (1) is above the ceremony's copy (0), not the store's.
    let assertion = assert_with(&mut r.authenticator, &begun.options, &r.passkey.credential_id, origin());
    let refused = f
        .auth
        .complete_login_with_passkey(
            challenge.token.expose_secret(),
            begun.ceremony.expose_secret(),
            &assertion,
            &laptop(),
        )
        .await;
    assert!(matches!(refused, Err(AuthError::LoginChallengeFailed)), "{refused:?}");
    let last = f.events.take().pop().unwrap();
    assert_eq!(last.kind(), EventKind::PasskeyCounterRegressed);
    assert_eq!(
        f.store
            .find_passkey(&r.passkey.credential_id)
            .await
            .unwrap()
            .unwrap()
            .counter,
        7
    );
}
