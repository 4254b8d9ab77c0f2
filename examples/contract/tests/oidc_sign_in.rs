//! The sign-in rules of `auth-core` with `auth-oidc` against a real OpenID provider
//! (`oidc-provider`, see `src/oidc_provider.rs`): no HTTP server of ours, the service
//! called directly, so each rule is checked where it lives. The servers' routes are the
//! contract cases' business.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    Action, AuthError, AuthEvent, AuthMethod, AuthService, Caller, ClientInfo, EncryptionKey, EventKind, EventSink,
    ExchangeProof, ExternalCallback, ExternalLoginFinish, ExternalLoginRefusal, ExternalLoginStart, IdentityStore,
    LoginOutcome, ManualClock, MemoryStore, Outcome, Password, ProviderName, Refusal, SecondFactorCode, SecretCipher,
    SecurityNoticeKind, SigningKey, Tokens, TotpSettings, UserStore,
};
use auth_oidc::{OidcProvider as Oidc, OidcProviderConfig};
use http_contract::cases::second_factor::code_in;
use http_contract::oidc_provider::{Client, OidcProvider};
use reqwest::Url;

const CLIENT_ID: &str = "sign-in-app";
const CLIENT_SECRET: &str = "sign-in-app-secret-of-some-length";
/// Never requested: the driver stops at the redirect to it.
const CALLBACK: &str = "http://127.0.0.1:9/oauth/test/callback";
const TEST_TIMEOUT: Duration = Duration::from_secs(40);

type Service = AuthService<MemoryStore>;

struct World {
    provider: OidcProvider,
    auth: Arc<Service>,
    client: ClientInfo,
    /// The binding cookie of the last sign-in: the one browser whose code exchange works.
    last_binding: std::sync::Mutex<String>,
    /// The security notices the service handed over: (kind, address).
    notices: Arc<std::sync::Mutex<Vec<(SecurityNoticeKind, String)>>>,
    /// Every event the service recorded.
    events: Recorded,
}

/// The events of a service, kept for a test to read: those not yet taken, and all.
#[derive(Debug, Clone, Default)]
struct Recorded {
    fresh: Arc<std::sync::Mutex<Vec<AuthEvent>>>,
    all: Arc<std::sync::Mutex<Vec<AuthEvent>>>,
}

impl EventSink for Recorded {
    fn record(&self, event: &AuthEvent) {
        self.fresh.lock().unwrap().push(event.clone());
        self.all.lock().unwrap().push(event.clone());
    }
}

impl Recorded {
    /// The events since the last call.
    fn take(&self) -> Vec<AuthEvent> {
        std::mem::take(&mut *self.fresh.lock().unwrap())
    }
}

async fn world() -> Option<World> {
    world_with(|config| config).await
}

/// A world whose provider configuration `configure` adjusts.
async fn world_with(configure: impl FnOnce(OidcProviderConfig) -> OidcProviderConfig) -> Option<World> {
    world_of(configure, None).await
}

/// A world on `clock` (the system's without one).
async fn world_of(
    configure: impl FnOnce(OidcProviderConfig) -> OidcProviderConfig,
    clock: Option<Arc<ManualClock>>,
) -> Option<World> {
    let provider = OidcProvider::start_or_skip(&[Client {
        id: CLIENT_ID.into(),
        secret: CLIENT_SECRET.into(),
        redirect_uris: vec![CALLBACK.into()],
    }])
    .await?;
    let config =
        configure(OidcProviderConfig::new("test", &provider.issuer, CLIENT_ID, CLIENT_SECRET, CALLBACK).unwrap());
    let key = SigningKey::hs256(b"a test secret of at least thirty-two bytes").unwrap();
    let cipher = SecretCipher::new(EncryptionKey::new(&[9; 32]).unwrap());
    let notices: Arc<std::sync::Mutex<Vec<(SecurityNoticeKind, String)>>> = Arc::default();
    let kept = Arc::clone(&notices);
    let events = Recorded::default();
    let mut auth = AuthService::new(MemoryStore::new(), Tokens::new(key, "https://app.example", "app"))
        .with_identity_provider(Arc::new(Oidc::new(config).unwrap()))
        .with_totp(TotpSettings::new("Test", cipher))
        .with_event_sink(Arc::new(events.clone()))
        .with_security_notices(move |notice: auth_core::SecurityNotice| {
            kept.lock().unwrap().push((notice.kind, notice.to.as_str().to_owned()));
        });
    if let Some(clock) = clock {
        auth = auth.with_clock(clock);
    }
    Some(World {
        notices,
        events,
        provider,
        auth: Arc::new(auth),
        client: ClientInfo::new(Some("test-browser/1"), Some("203.0.113.9".parse().unwrap())),
        last_binding: std::sync::Mutex::default(),
    })
}

/// What a browser's round trip through the provider brings back to the callback.
struct Returned {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

impl Returned {
    fn callback(&self) -> ExternalCallback<'_> {
        ExternalCallback::new(self.state.as_deref(), self.code.as_deref(), self.error.as_deref())
    }
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

impl World {
    async fn begin(&self, next: &str) -> ExternalLoginStart {
        self.auth
            .begin_external_login("test", next, &self.client)
            .await
            .unwrap()
    }

    /// A fresh browser signs in at the provider as `login`, from `start`.
    async fn round_trip(&self, start: &ExternalLoginStart, login: &str) -> Returned {
        let browser = OidcProvider::browser();
        let url = self.provider.sign_in(&browser, &start.authorization_url, login).await;
        assert!(url.as_str().starts_with(CALLBACK), "{url}");
        Returned {
            state: query(&url, "state"),
            code: query(&url, "code"),
            error: query(&url, "error"),
        }
    }

    async fn finish(&self, start: &ExternalLoginStart, returned: &Returned) -> Result<ExternalLoginFinish, AuthError> {
        self.auth
            .finish_external_login(
                "test",
                returned.callback(),
                Some(start.binding.expose_secret()),
                &self.client,
            )
            .await
            .map_err(|failure| failure.error)
    }

    /// A whole sign-in as `login`: begin, the provider, the callback.
    async fn sign_in(&self, login: &str) -> Result<ExternalLoginFinish, AuthError> {
        let start = self.begin("/app").await;
        let returned = self.round_trip(&start, login).await;
        *self.last_binding.lock().unwrap() = start.binding.expose_secret().to_owned();
        self.finish(&start, &returned).await
    }

    /// The session a signed-in token stands for, as a request's `Caller` is made of it.
    async fn me(&self, login: &auth_core::LoginSuccess) -> auth_core::Authenticated {
        self.auth
            .authenticate(login.tokens.access_token.expose_secret())
            .await
            .unwrap()
    }

    /// Trades `code` (no second factor expected) and authenticates its access token.
    async fn session_for(&self, code: &str) -> auth_core::Authenticated {
        let LoginOutcome::SignedIn(login) = self.exchange(code).await.unwrap() else {
            panic!("no second factor here")
        };
        self.me(&login).await
    }

    /// A password login's session.
    async fn password_session(&self, email: &str, password: &str) -> auth_core::Authenticated {
        let login = self
            .auth
            .login(email, Password::new(password), &self.client)
            .await
            .unwrap()
            .signed_in()
            .unwrap();
        self.me(&login).await
    }

    /// Trades `code` with the last sign-in's binding cookie, as its browser does.
    async fn exchange(&self, code: &str) -> Result<LoginOutcome, AuthError> {
        let binding = self.last_binding.lock().unwrap().clone();
        self.auth
            .exchange_external_login(code, ExchangeProof::BindingCookie(Some(&binding)), &self.client)
            .await
    }

    async fn identity_count(&self, login: &str) -> usize {
        let subject = format!("user-{}", login.to_lowercase());
        usize::from(
            self.auth
                .store()
                .find_identity(&ProviderName::new("test").unwrap(), &subject)
                .await
                .unwrap()
                .is_some(),
        )
    }
}

fn signed_in(finish: ExternalLoginFinish) -> (auth_core::UserId, bool, String) {
    match finish {
        ExternalLoginFinish::SignedIn {
            user_id,
            created,
            code,
            redirect_to,
        } => {
            assert!(redirect_to.starts_with("/app?code=xc_"), "{redirect_to}");
            (user_id, created, code.expose_secret().to_owned())
        }
        other => panic!("expected a sign-in, got {other:?}"),
    }
}

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("the test took too long");
}

/// The first sign-in of a new identity with a verified email creates an account without
/// a password, its email verified; the second signs the same account in; the one-time
/// code works once, for a session whose tokens say `amr: ["fed"]`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_identity_creates_an_account_and_signs_it_in_after() {
    bounded(async {
        let Some(world) = world().await else { return };
        let (user_id, created, code) = signed_in(world.sign_in("Ada@Example.com").await.unwrap());
        assert!(created);
        let user = world.auth.store().find_user_by_id(user_id).await.unwrap().unwrap();
        assert_eq!(user.email.as_str(), "ada@example.com");
        assert!(user.email_verified() && user.password_hash.is_none());

        let me = world.session_for(&code).await;
        assert_eq!(me.user.id, user_id);
        assert_eq!(
            me.claims
                .auth_methods()
                .unwrap()
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>(),
            ["fed"]
        );
        let again = world.exchange(&code).await.unwrap_err();
        assert!(
            matches!(again, AuthError::ExternalLoginFailed(ExternalLoginRefusal::InvalidCode)),
            "{again:?}"
        );

        let (second, created, _) = signed_in(world.sign_in("ada@example.com").await.unwrap());
        assert_eq!((second, created), (user_id, false));
        let identities = world.auth.list_identities(user_id).await.unwrap();
        assert_eq!(identities.len(), 1);
        assert!(identities[0].last_used_at.is_some());

        // An account without a password: password login is the usual generic failure.
        let login = world
            .auth
            .login("ada@example.com", Password::new("anything at all"), &world.client)
            .await;
        assert!(matches!(login, Err(AuthError::InvalidCredentials)), "{login:?}");
    })
    .await;
}

/// An identity whose email has an account is never linked by itself: nothing is created
/// or linked. Signed in to that account (with its password), the person links it; then
/// the provider signs that account in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_email_is_never_taken_over_and_linking_is_done_signed_in() {
    bounded(async {
        let Some(world) = world().await else { return };
        let owner = world
            .auth
            .register("grace@example.com", Password::new("cobol-compiler-1959"), &world.client)
            .await
            .unwrap();
        let refused = world.sign_in("grace@example.com").await.unwrap_err();
        assert!(matches!(refused, AuthError::ExternalAccountExists), "{refused:?}");
        assert_eq!(world.identity_count("grace@example.com").await, 0, "nothing linked");
        assert!(world.auth.list_identities(owner.id).await.unwrap().is_empty());

        let me = world.password_session("grace@example.com", "cobol-compiler-1959").await;
        let me_owner = me.clone();
        let start = world
            .auth
            .begin_identity_link(&Caller::from(&me), "test", "/settings", &world.client)
            .await
            .unwrap();
        let returned = world.round_trip(&start, "grace@example.com").await;
        match world.finish(&start, &returned).await.unwrap() {
            ExternalLoginFinish::Linked { identity, redirect_to } => {
                assert_eq!(
                    (identity.user_id, redirect_to.as_str()),
                    (owner.id, "/settings?linked=test")
                );
            }
            other => panic!("expected a link, got {other:?}"),
        }
        let provider = ProviderName::new("test").unwrap();
        assert_eq!(
            std::mem::take(&mut *world.notices.lock().unwrap()),
            [(
                SecurityNoticeKind::IdentityLinked(provider),
                "grace@example.com".to_owned()
            )],
            "the owner is told of the link"
        );
        let (user_id, created, _) = signed_in(world.sign_in("grace@example.com").await.unwrap());
        assert_eq!((user_id, created), (owner.id, false));

        // The same identity cannot be linked to a second account.
        let other = world
            .auth
            .register(
                "hopper@example.com",
                Password::new("nanosecond-wire-1952"),
                &world.client,
            )
            .await
            .unwrap();
        let me = world
            .password_session("hopper@example.com", "nanosecond-wire-1952")
            .await;
        let start = world
            .auth
            .begin_identity_link(&Caller::from(&me), "test", "/settings", &world.client)
            .await
            .unwrap();
        let returned = world.round_trip(&start, "grace@example.com").await;
        let refused = world.finish(&start, &returned).await.unwrap_err();
        assert!(matches!(refused, AuthError::IdentityInUse), "{refused:?}");
        assert!(world.auth.list_identities(other.id).await.unwrap().is_empty());

        // The owner, with a password too, unlinks the provider, and is told.
        world.notices.lock().unwrap().clear();
        let linked = world.auth.list_identities(owner.id).await.unwrap().remove(0);
        world
            .auth
            .unlink_identity(&Caller::from(&me_owner), linked.id, &world.client)
            .await
            .unwrap();
        assert!(world.auth.list_identities(owner.id).await.unwrap().is_empty());
        assert_eq!(
            std::mem::take(&mut *world.notices.lock().unwrap()),
            [(
                SecurityNoticeKind::IdentityUnlinked(ProviderName::new("test").unwrap()),
                "grace@example.com".to_owned()
            )]
        );
    })
    .await;
}

/// A new identity without an email the provider verified creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_email_creates_nothing() {
    bounded(async {
        let Some(world) = world().await else { return };
        let refused = world.sign_in("unverified+eve@example.com").await.unwrap_err();
        assert!(matches!(refused, AuthError::ExternalEmailUnverified), "{refused:?}");
        let email = auth_core::Email::parse("eve@example.com").unwrap();
        assert!(world.auth.store().find_user_by_email(&email).await.unwrap().is_none());
        assert_eq!(world.identity_count("unverified+eve@example.com").await, 0);
    })
    .await;
}

/// The state is this browser's and single-use: another browser's cookie, no cookie, a
/// replay and another provider's callback are refused, and nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_is_single_use_and_bound_to_its_browser() {
    bounded(async {
        let Some(world) = world().await else { return };
        let mine = world.begin("/app").await;
        let theirs = world.begin("/app").await;
        let returned = world.round_trip(&mine, "mallory@example.com").await;
        let foreign = world
            .auth
            .finish_external_login(
                "test",
                returned.callback(),
                Some(theirs.binding.expose_secret()),
                &world.client,
            )
            .await
            .unwrap_err();
        assert!(matches!(
            foreign.error,
            AuthError::ExternalLoginFailed(ExternalLoginRefusal::AnotherBrowser)
        ));
        assert_eq!(foreign.redirect_to.as_deref(), Some("/app?error=external_login_failed"));
        // The state was spent by that attempt: the right cookie comes too late.
        let replay = world.finish(&mine, &returned).await.unwrap_err();
        assert!(
            matches!(
                replay,
                AuthError::ExternalLoginFailed(ExternalLoginRefusal::UnknownState)
            ),
            "{replay:?}"
        );
        assert_eq!(world.identity_count("mallory@example.com").await, 0);

        let start = world.begin("/app").await;
        let returned = world.round_trip(&start, "mallory@example.com").await;
        let no_cookie = world
            .auth
            .finish_external_login("test", returned.callback(), None, &world.client)
            .await
            .unwrap_err();
        assert!(matches!(
            no_cookie.error,
            AuthError::ExternalLoginFailed(ExternalLoginRefusal::AnotherBrowser)
        ));

        let unknown = world
            .auth
            .finish_external_login("nope", returned.callback(), None, &world.client)
            .await
            .unwrap_err();
        assert!(matches!(unknown.error, AuthError::UnknownProvider));
        assert_eq!(unknown.redirect_to, None);

        // A replayed successful callback: its state is spent.
        let start = world.begin("/app").await;
        let returned = world.round_trip(&start, "mallory@example.com").await;
        let (_, _, code) = signed_in(world.finish(&start, &returned).await.unwrap());
        // Its code, carried to another browser (a link sent to a victim: login CSRF), signs
        // no one in there, with another cookie or none.
        for binding in [Some(theirs.binding.expose_secret()), None] {
            let refused = world
                .auth
                .exchange_external_login(&code, ExchangeProof::BindingCookie(binding), &world.client)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    refused,
                    AuthError::ExternalLoginFailed(ExternalLoginRefusal::InvalidCode)
                ),
                "{refused:?}"
            );
        }
        let replay = world.finish(&start, &returned).await.unwrap_err();
        assert!(matches!(
            replay,
            AuthError::ExternalLoginFailed(ExternalLoginRefusal::UnknownState)
        ));
    })
    .await;
}

/// Every spoiled ID token is refused, with the reason in the refusal, and creates nothing:
/// another audience, expired, tampered (the signature fails), another flow's nonce, a key
/// the provider never published, issued in the future, keyed with the client secret.
/// A native app (its system browser goes through the provider, its own HTTP client trades
/// the code) proves the flow with its PKCE verifier: the browser's cookie cannot trade
/// that code, nor can a wrong verifier, and the verifier cannot trade a browser's code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_app_trades_its_code_with_its_verifier_never_with_the_cookie() {
    use base64::Engine as _;
    use sha2::Digest as _;

    bounded(async {
        let Some(world) = world().await else { return };
        let verifier = "a-native-apps-code-verifier-of-forty-three-or-more.characters~";
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier));
        let refused = world
            .auth
            .begin_external_login_for_app("test", "/app", "not-a-challenge", &world.client)
            .await
            .unwrap_err();
        assert!(matches!(refused, AuthError::InvalidCodeChallenge(_)), "{refused:?}");

        let mut codes = Vec::new();
        for _ in 0..5 {
            let start = world
                .auth
                .begin_external_login_for_app("test", "/app", &challenge, &world.client)
                .await
                .unwrap();
            let returned = world.round_trip(&start, "nadia@example.com").await;
            // The callback still needs the system browser's binding cookie.
            let finish = world.finish(&start, &returned).await.unwrap();
            let ExternalLoginFinish::SignedIn { code, .. } = finish else {
                panic!("a sign-in")
            };
            codes.push((
                code.expose_secret().to_owned(),
                start.binding.expose_secret().to_owned(),
            ));
        }
        let invalid = |result: Result<LoginOutcome, AuthError>| {
            matches!(
                result,
                Err(AuthError::ExternalLoginFailed(ExternalLoginRefusal::InvalidCode))
            )
        };
        // The system browser's cookie is not the app's proof; a wrong verifier neither;
        // each attempt spends its code.
        let (code, cookie) = &codes[0];
        let with_cookie = world
            .auth
            .exchange_external_login(code, ExchangeProof::BindingCookie(Some(cookie)), &world.client)
            .await;
        assert!(invalid(with_cookie));
        let another = "a-native-apps-code-verifier-of-forty-three-or-more.characters-";
        for ((code, _), wrong) in codes[1..4].iter().zip([another, challenge.as_str(), ""]) {
            let attempt = world
                .auth
                .exchange_external_login(code, ExchangeProof::CodeVerifier(wrong), &world.client)
                .await;
            assert!(invalid(attempt), "{wrong:?}");
        }
        // The app's verifier trades its code, once.
        let (code, _) = &codes[4];
        let LoginOutcome::SignedIn(login) = world
            .auth
            .exchange_external_login(code, ExchangeProof::CodeVerifier(verifier), &world.client)
            .await
            .unwrap()
        else {
            panic!("no second factor here")
        };
        assert_eq!(login.user.email.as_str(), "nadia@example.com");
        let again = world
            .auth
            .exchange_external_login(code, ExchangeProof::CodeVerifier(verifier), &world.client)
            .await;
        assert!(invalid(again));

        // A browser's code is not traded with a verifier (not even one hashing to its
        // cookie's hash is knowable without the cookie).
        let browser = world.sign_in("nadia@example.com").await.unwrap();
        let ExternalLoginFinish::SignedIn { code, .. } = browser else {
            panic!("a sign-in")
        };
        let attempt = world
            .auth
            .exchange_external_login(
                code.expose_secret(),
                ExchangeProof::CodeVerifier(verifier),
                &world.client,
            )
            .await;
        assert!(invalid(attempt));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoiled_id_tokens_are_refused_and_create_nothing() {
    bounded(async {
        let Some(world) = world().await else { return };
        // A real token first, for `previous` to replay.
        signed_in(world.sign_in("first@example.com").await.unwrap());
        for (mode, why) in [
            ("other-audience", "audience"),
            ("expired", "expired"),
            ("tampered", "signature"),
            ("previous", "nonce"),
            ("unknown-key", "no matching key"),
            ("future-iat", "future"),
            // Advertised by the provider, but keyed with the client secret: never accepted.
            ("client-secret-hs256", "alg"),
        ] {
            let login = format!("{mode}@example.com");
            world.provider.set_next_id_token(mode).await;
            let refused = world.sign_in(&login).await.unwrap_err();
            let AuthError::ExternalLoginFailed(ExternalLoginRefusal::TokenRefused(reason)) = &refused else {
                panic!("{mode}: {refused:?}");
            };
            assert!(reason.to_lowercase().contains(why), "{mode}: {reason}");
            assert_eq!(world.identity_count(&login).await, 0, "{mode}");
            let email = auth_core::Email::parse(&login).unwrap();
            assert!(
                world.auth.store().find_user_by_email(&email).await.unwrap().is_none(),
                "{mode}"
            );
        }
        world.provider.reset().await;
        signed_in(world.sign_in("after@example.com").await.unwrap());
    })
    .await;
}

/// `next` must be a path on this site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_must_stay_on_the_site() {
    bounded(async {
        let Some(world) = world().await else { return };
        for evil in ["https://evil.example", "//evil.example/x", "/\\evil.example", "evil"] {
            let refused = world
                .auth
                .begin_external_login("test", evil, &world.client)
                .await
                .unwrap_err();
            assert!(
                matches!(refused, AuthError::InvalidReturnPath(_)),
                "{evil}: {refused:?}"
            );
        }
    })
    .await;
}

/// A provider that rotates its keys (restarted with new ones, at the same issuer) is
/// followed: the ID token names a key the cached set lacks, the keys are fetched again,
/// and the sign-in works. The refresh interval is set to zero here: the default 30 s
/// would refuse a refresh so soon after the first discovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_rotates_its_keys_is_followed() {
    bounded(async {
        let Some(mut world) = world_with(|config| config.with_key_refresh_interval(Duration::ZERO)).await else {
            return;
        };
        signed_in(world.sign_in("rota@example.com").await.unwrap());
        world.provider.stop();
        world.provider.start_again().await;
        signed_in(world.sign_in("rota@example.com").await.unwrap());
    })
    .await;
}

/// A provider that is down makes sign-in unavailable (a 503), not an error of the client,
/// and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_is_down_is_unavailable() {
    bounded(async {
        // Port 9 (discard) on loopback: nothing listens.
        let config = OidcProviderConfig::new("down", "http://127.0.0.1:9", CLIENT_ID, CLIENT_SECRET, CALLBACK).unwrap();
        let key = SigningKey::hs256(b"a test secret of at least thirty-two bytes").unwrap();
        let auth = AuthService::new(MemoryStore::new(), Tokens::new(key, "https://app.example", "app"))
            .with_identity_provider(Arc::new(Oidc::new(config).unwrap()));
        let refused = auth
            .begin_external_login("down", "/", &ClientInfo::unknown())
            .await
            .unwrap_err();
        assert!(matches!(refused, AuthError::ProviderUnavailable(_)), "{refused:?}");
        assert_eq!((refused.http_status(), refused.code()), (503, "provider_unavailable"));
        assert!(refused.retry_after().is_some());
    })
    .await;
}

/// The last way to sign in is never unlinked; with a password, it is. Unlinking needs a
/// recent sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_way_to_sign_in_is_never_unlinked() {
    bounded(async {
        let Some(world) = world().await else { return };
        let (user_id, _, code) = signed_in(world.sign_in("lone@example.com").await.unwrap());
        let me = world.session_for(&code).await;
        let identity = world.auth.list_identities(user_id).await.unwrap().remove(0);
        let refused = world
            .auth
            .unlink_identity(&Caller::from(&me), identity.id, &world.client)
            .await
            .unwrap_err();
        assert!(matches!(refused, AuthError::LastSignInMethod), "{refused:?}");
        assert_eq!(world.auth.list_identities(user_id).await.unwrap().len(), 1);
        // Without a recent authentication (a bare account id): step up first.
        let stale = world
            .auth
            .unlink_identity(&Caller::from(user_id), identity.id, &world.client)
            .await
            .unwrap_err();
        assert!(matches!(stale, AuthError::StepUpRequired { .. }), "{stale:?}");
        assert!(world.notices.lock().unwrap().is_empty(), "refusals tell nothing");
    })
    .await;
}

/// An account with a second factor is asked for it after the provider too; the session
/// then records both (`fed`, `otp`, `mfa`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_with_a_second_factor_is_asked_for_it_after_the_provider() {
    bounded(async {
        let Some(world) = world().await else { return };
        let (user_id, _, code) = signed_in(world.sign_in("totp@example.com").await.unwrap());
        let me = world.session_for(&code).await;
        let enrolment = world
            .auth
            .begin_totp_enrolment(&Caller::from(&me), Password::new(""), &world.client)
            .await
            .unwrap();
        let secret = enrolment.expose_secret().to_owned();
        world
            .auth
            .confirm_totp(&Caller::from(&me), &code_in(&secret, 0), &world.client)
            .await
            .unwrap();

        let (again, _, code) = signed_in(world.sign_in("totp@example.com").await.unwrap());
        assert_eq!(again, user_id);
        let LoginOutcome::SecondFactorRequired(challenge) = world.exchange(&code).await.unwrap() else {
            panic!("the second factor was skipped")
        };
        // The code of the next time step: the confirmation spent the current one.
        let code = code_in(&secret, 30);
        let login = world
            .auth
            .complete_login(
                challenge.token.expose_secret(),
                SecondFactorCode::totp(code),
                &world.client,
            )
            .await
            .unwrap();
        let methods = login.tokens.session.auth_methods;
        for method in [
            AuthMethod::FEDERATED,
            AuthMethod::ONE_TIME_PASSWORD,
            AuthMethod::MULTI_FACTOR,
        ] {
            assert!(methods.contains(&method), "{methods:?} lacks {method}");
        }
        assert!(!methods.contains(&AuthMethod::PASSWORD));
    })
    .await;
}

/// A flow's state works for 10 minutes: the provider's answer after that is refused as
/// expired, and nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_expires_after_ten_minutes() {
    bounded(async {
        let clock = Arc::new(ManualClock::new(auth_core::Clock::now(&auth_core::SystemClock)));
        let Some(world) = world_of(|config| config, Some(Arc::clone(&clock))).await else {
            return;
        };
        let start = world.begin("/app").await;
        let returned = world.round_trip(&start, "late@example.com").await;
        clock.advance(Duration::from_secs(10 * 60 + 1));
        let refused = world.finish(&start, &returned).await.unwrap_err();
        assert!(
            matches!(
                refused,
                AuthError::ExternalLoginFailed(ExternalLoginRefusal::ExpiredState)
            ),
            "{refused:?}"
        );
        assert_eq!(world.identity_count("late@example.com").await, 0);

        // Within the 10 minutes, the same steps sign in.
        let start = world.begin("/app").await;
        let returned = world.round_trip(&start, "prompt@example.com").await;
        clock.advance(Duration::from_secs(9 * 60));
        signed_in(world.finish(&start, &returned).await.unwrap());
    })
    .await;
}

/// Each step is one event: the account made through the provider, a returning sign-in,
/// the code traded, a refused callback with its reason, a link and an unlink; none
/// carries the code, the state, the binding cookie or a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_is_an_event_and_none_carries_a_secret() {
    bounded(async {
        let Some(world) = world().await else { return };
        let mut secrets = Vec::new();
        let start = world.begin("/app").await;
        secrets.push(start.binding.expose_secret().to_owned());
        let returned = world.round_trip(&start, "ada@example.com").await;
        secrets.extend(returned.state.clone());
        secrets.extend(returned.code.clone());
        let (user_id, created, code) = signed_in(world.finish(&start, &returned).await.unwrap());
        assert!(created);
        secrets.push(code.clone());
        let kinds = |events: &[AuthEvent]| events.iter().map(AuthEvent::kind).collect::<Vec<_>>();
        let events = world.events.take();
        assert_eq!(
            kinds(&events),
            [EventKind::ExternalLoginStarted, EventKind::RegisteredThroughProvider]
        );
        assert_eq!(events[1].subject, auth_core::Subject::User(user_id));

        *world.last_binding.lock().unwrap() = start.binding.expose_secret().to_owned();
        let LoginOutcome::SignedIn(login) = world.exchange(&code).await.unwrap() else {
            panic!("no second factor here")
        };
        secrets.push(login.tokens.access_token.expose_secret().to_owned());
        secrets.push(login.tokens.refresh_token.expose_secret().to_owned());
        assert_eq!(kinds(&world.events.take()), [EventKind::LoginSucceeded]);

        let (again, created, code) = signed_in(world.sign_in("ada@example.com").await.unwrap());
        assert_eq!((again, created), (user_id, false));
        secrets.push(code);
        assert_eq!(
            kinds(&world.events.take()),
            [EventKind::ExternalLoginStarted, EventKind::ExternalLoginVerified]
        );

        world.provider.set_next_id_token("other-audience").await;
        world.sign_in("ada@example.com").await.unwrap_err();
        world.provider.reset().await;
        let events = world.events.take();
        assert_eq!(
            kinds(&events),
            [EventKind::ExternalLoginStarted, EventKind::LoginFailed]
        );
        assert_eq!(events[1].action, Action::ExternalLogin);
        assert!(
            matches!(
                &events[1].outcome,
                Outcome::Refused(Refusal::ExternalLogin(ExternalLoginRefusal::TokenRefused(why)))
                    if why.to_lowercase().contains("audience")
            ),
            "{:?}",
            events[1].outcome
        );

        // Another browser's callback: refused, with the reason.
        let start = world.begin("/app").await;
        let returned = world.round_trip(&start, "ada@example.com").await;
        secrets.extend(returned.code.clone());
        world
            .auth
            .finish_external_login(
                "test",
                returned.callback(),
                Some("another-browsers-cookie"),
                &world.client,
            )
            .await
            .unwrap_err();
        let events = world.events.take();
        assert!(
            matches!(
                &events.last().unwrap().outcome,
                Outcome::Refused(Refusal::ExternalLogin(ExternalLoginRefusal::AnotherBrowser))
            ),
            "{events:?}"
        );

        // A link, then an unlink, by an account with a password.
        let owner = world
            .auth
            .register(
                "lin@example.com",
                Password::new("difference-engine-1822"),
                &world.client,
            )
            .await
            .unwrap();
        let me = world
            .password_session("lin@example.com", "difference-engine-1822")
            .await;
        world.events.take();
        let start = world
            .auth
            .begin_identity_link(&Caller::from(&me), "test", "/settings", &world.client)
            .await
            .unwrap();
        let returned = world.round_trip(&start, "lin@example.com").await;
        world.finish(&start, &returned).await.unwrap();
        let linked = world.auth.list_identities(owner.id).await.unwrap().remove(0);
        world
            .auth
            .unlink_identity(&Caller::from(&me), linked.id, &world.client)
            .await
            .unwrap();
        let events = world.events.take();
        assert_eq!(
            kinds(&events),
            [
                EventKind::ExternalLoginStarted,
                EventKind::IdentityLinked,
                EventKind::IdentityUnlinked
            ]
        );
        assert!(
            events
                .iter()
                .all(|event| event.subject == auth_core::Subject::User(owner.id))
        );

        let everything = format!("{:?}", world.events.all.lock().unwrap());
        assert!(everything.contains("ExternalLogin"), "the events are all there");
        for secret in &secrets {
            assert!(!everything.contains(secret.as_str()), "an event carries {secret}");
        }
    })
    .await;
}
