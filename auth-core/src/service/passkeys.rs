//! Passkeys: WebAuthn registration from a recent sign-in, discoverable sign-in, a passkey
//! as the second factor of a login challenge, and the account's list of them. The
//! attestation and assertion checks are webauthn-rs's; what is decided here is which
//! ceremony, which account, which counter.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use webauthn_rs::prelude::DiscoverableAuthentication;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use super::AuthService;
use super::audit::Audit;
use super::login::LoginSuccess;
use super::second_factor::BoxedFlow;
use super::sessions::Caller;
use crate::auth_method::{AuthMethod, AuthMethods};
use crate::clock::later_by;
use crate::error::AuthError;
use crate::event::{Action, PasskeyRefusal, Refusal, Subject};
use crate::id::{PasskeyId, UserId};
use crate::notice::SecurityNoticeKind;
use crate::passkey::{
    DEFAULT_PASSKEY_NAME, PASSKEY_CEREMONY_TTL, PasskeyCeremony, PasskeyCeremonyKind, PasskeyCredential, passkey_name,
};
use crate::rate_limit::Bucket;
use crate::session::ClientInfo;
use crate::store::{AuthStore, PasskeyRemoval, PasskeyStore, SecondFactorStore};
use crate::token::{OpaqueToken, TokenKind};
use crate::user::User;

/// Where passkeys are bound: the relying party (RP) id, a registrable domain that is the
/// host of the origin or a suffix of it, and the origin the browser shows (scheme, host,
/// port). A passkey registered under one RP id works only under it: choose it once
/// (`example.com` lets `auth.example.com` and `app.example.com` share passkeys;
/// `auth.example.com` keeps them to that host).
///
/// WebAuthn needs a secure context: an `https` origin, or `http://localhost`. An IP
/// address cannot be an RP id.
///
/// ```
/// use auth_core::PasskeySettings;
///
/// let settings = PasskeySettings::new("example.com", "https://auth.example.com")?.with_rp_name("Example");
/// assert_eq!(settings.rp_id(), "example.com");
/// assert!(PasskeySettings::new("other.example", "https://auth.example.com").is_err());
/// assert!(PasskeySettings::from_public_url("http://127.0.0.1:3000").is_err());
/// assert!(PasskeySettings::from_public_url("http://auth.example.com").is_err(), "not a secure context");
/// assert!(PasskeySettings::from_public_url("http://localhost:3000").is_ok());
/// # Ok::<(), auth_core::PasskeySettingsError>(())
/// ```
#[derive(Clone)]
pub struct PasskeySettings {
    rp_id: String,
    rp_name: String,
    origin: Url,
    webauthn: Arc<Webauthn>,
}

/// Why [`PasskeySettings`] refused an RP id or origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeySettingsError {
    /// The origin is not a URL with a host name.
    #[error("the WebAuthn origin must be a URL with a host name (not an IP address): {0}")]
    InvalidOrigin(String),
    /// The origin is neither HTTPS nor `http://localhost`: browsers offer WebAuthn to
    /// secure contexts only.
    #[error("the WebAuthn origin must be https:// (or http://localhost in development): {0}")]
    InsecureOrigin(String),
    /// The RP id is not the origin's host or a suffix of it at a dot.
    #[error("the WebAuthn RP id {rp_id:?} must be the host of {origin} or a suffix of it")]
    RpIdNotOfOrigin {
        /// The RP id given.
        rp_id: String,
        /// The origin given.
        origin: String,
    },
}

impl PasskeySettings {
    /// Passkeys bound to `rp_id`, for pages served from `origin` (`https://auth.example.com`;
    /// a path is ignored). The name authenticators show is the RP id until
    /// [`with_rp_name`](Self::with_rp_name).
    ///
    /// # Errors
    ///
    /// [`PasskeySettingsError`] when `origin` has no host name or `rp_id` is not it or a
    /// suffix of it.
    pub fn new(rp_id: &str, origin: &str) -> Result<Self, PasskeySettingsError> {
        let parsed = Url::parse(origin).map_err(|_| PasskeySettingsError::InvalidOrigin(origin.to_owned()))?;
        let Some(host) = parsed.domain() else {
            return Err(PasskeySettingsError::InvalidOrigin(origin.to_owned()));
        };
        // Browsers offer WebAuthn to secure contexts only: HTTPS, or a loopback name.
        let loopback = host == "localhost" || host.ends_with(".localhost");
        if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
            return Err(PasskeySettingsError::InsecureOrigin(origin.to_owned()));
        }
        let origin = Url::parse(&parsed.origin().ascii_serialization())
            .map_err(|_| PasskeySettingsError::InvalidOrigin(origin.to_owned()))?;
        let rp_id = rp_id.trim().trim_end_matches('.').to_ascii_lowercase();
        let webauthn = build(&rp_id, &rp_id, &origin)?;
        Ok(Self {
            rp_name: rp_id.clone(),
            rp_id,
            origin,
            webauthn,
        })
    }

    /// Passkeys for the service at `public_url`, bound to its host: what
    /// `AUTH_PUBLIC_URL` alone gives the example servers.
    ///
    /// # Errors
    ///
    /// [`PasskeySettingsError::InvalidOrigin`] when the URL has no host name.
    pub fn from_public_url(public_url: &str) -> Result<Self, PasskeySettingsError> {
        let parsed = Url::parse(public_url).map_err(|_| PasskeySettingsError::InvalidOrigin(public_url.to_owned()))?;
        let host = parsed
            .domain()
            .ok_or_else(|| PasskeySettingsError::InvalidOrigin(public_url.to_owned()))?
            .to_owned();
        Self::new(&host, public_url)
    }

    /// The name authenticators show beside the account ("Example").
    #[must_use]
    pub fn with_rp_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        // The RP id and origin were checked by `new`: building again cannot fail on them.
        if let Ok(webauthn) = build(&self.rp_id, &name, &self.origin) {
            self.webauthn = webauthn;
            self.rp_name = name;
        }
        self
    }

    /// The RP id.
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// The origin assertions must come from.
    pub fn origin(&self) -> &str {
        self.origin.as_str().trim_end_matches('/')
    }
}

fn build(rp_id: &str, rp_name: &str, origin: &Url) -> Result<Arc<Webauthn>, PasskeySettingsError> {
    let refused = || PasskeySettingsError::RpIdNotOfOrigin {
        rp_id: rp_id.to_owned(),
        origin: origin.to_string(),
    };
    if rp_id.is_empty() {
        return Err(refused());
    }
    WebauthnBuilder::new(rp_id, origin)
        .and_then(|builder| builder.rp_name(rp_name).timeout(PASSKEY_CEREMONY_TTL).build())
        .map(Arc::new)
        .map_err(|_| refused())
}

impl fmt::Debug for PasskeySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasskeySettings")
            .field("rp_id", &self.rp_id)
            .field("rp_name", &self.rp_name)
            .field("origin", &self.origin.as_str())
            .finish_non_exhaustive()
    }
}

/// A ceremony begun: the options for the browser's `navigator.credentials.create()` or
/// `.get()`, and the token that names the ceremony when it finishes.
#[derive(Debug)]
#[non_exhaustive]
pub struct PasskeyChallenge {
    /// The ceremony's token (`pkc_…`), stored only hashed; works once, for
    /// [`PASSKEY_CEREMONY_TTL`].
    pub ceremony: OpaqueToken,
    /// WebAuthn's `PublicKeyCredentialCreationOptions` (registration) or
    /// `PublicKeyCredentialRequestOptions` (sign-in) in their JSON form (binary fields
    /// base64url): what `PublicKeyCredential.parseCreationOptionsFromJSON` and
    /// `parseRequestOptionsFromJSON` read.
    pub options: Value,
    /// How long the ceremony works from now.
    pub expires_in: Duration,
}

/// The passkey part of a service: its settings, and the one step flows written for every
/// store need from a [`PasskeyStore`].
pub(super) struct Passkeys<S> {
    pub(super) settings: PasskeySettings,
    pub(super) has_passkeys: HasPasskeys<S>,
    pub(super) purge_ceremonies: PurgeCeremonies<S>,
}

/// Deletes the ceremonies expired before a time: for the purge, written for every store.
pub(super) type PurgeCeremonies<S> = for<'a> fn(&'a AuthService<S>, time::OffsetDateTime) -> BoxedFlow<'a, u64>;

fn purge_ceremonies<S: AuthStore + PasskeyStore>(
    service: &AuthService<S>,
    before: time::OffsetDateTime,
) -> BoxedFlow<'_, u64> {
    Box::pin(async move { Ok(service.store().delete_expired_passkey_ceremonies(before).await?) })
}

/// Whether an account has a passkey: set by [`AuthService::with_passkeys`], where the
/// store is known to keep them, and read by the login challenge, written for every store.
pub(super) type HasPasskeys<S> = for<'a> fn(&'a AuthService<S>, UserId) -> BoxedFlow<'a, bool>;

impl<S> fmt::Debug for Passkeys<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passkeys")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn has_passkeys<S: AuthStore + PasskeyStore>(service: &AuthService<S>, user: UserId) -> BoxedFlow<'_, bool> {
    Box::pin(async move { Ok(!service.store().list_passkeys(user).await?.is_empty()) })
}

/// A refusal of a ceremony, for the event, and the answer the flow gives.
fn refuse(audit: &mut Audit, refusal: PasskeyRefusal, answer: AuthError) -> AuthError {
    audit.refusal = Some(Refusal::Passkey(refusal));
    answer
}

/// The stored sign counter of a credential, as webauthn-rs serializes it.
fn stored_counter(passkey: &Passkey) -> Result<u32, AuthError> {
    let value = serde_json::to_value(passkey).map_err(AuthError::internal)?;
    let counter = value
        .pointer("/cred/counter")
        .and_then(Value::as_u64)
        .ok_or_else(|| AuthError::internal("a passkey credential without a counter"))?;
    u32::try_from(counter).map_err(AuthError::internal)
}

/// How a verified assertion proved possession, as `amr` says it (RFC 8176): a key that can
/// leave its device (a synced passkey: backup eligible) is software-secured (`swk`), one
/// bound to its authenticator hardware-secured (`hwk`).
fn key_method(backup_eligible: bool) -> AuthMethod {
    if backup_eligible {
        AuthMethod::SOFTWARE_KEY
    } else {
        AuthMethod::HARDWARE_KEY
    }
}

impl<S: AuthStore + PasskeyStore> AuthService<S> {
    /// Turns passkeys on: an account can register passkeys
    /// ([`begin_passkey_registration`](Self::begin_passkey_registration)), sign in with
    /// one without typing its address ([`begin_passkey_login`](Self::begin_passkey_login)),
    /// and, where it has TOTP too, complete a login challenge with one
    /// ([`begin_passkey_second_factor`](Self::begin_passkey_second_factor)).
    ///
    /// Adding a passkey does not make password sign-ins ask for a second factor: an
    /// account whose only second factor is a device it can lose would have no recovery
    /// codes. A passkey sign-in is multi-factor on its own (possession of the key, and
    /// the user verification every ceremony requires).
    ///
    /// Attestation: `none` is asked for and accepted (no authenticator model is trusted
    /// or refused by its attestation certificate); user verification is required at
    /// registration and at every sign-in; resident (discoverable) keys are preferred.
    ///
    /// ```
    /// use auth_core::{AuthService, MemoryStore, PasskeySettings, SigningKey, Tokens};
    ///
    /// # let tokens = Tokens::new(SigningKey::hs256(b"an example secret of at least 32 bytes!").unwrap(), "https://a.example", "api");
    /// let settings = PasskeySettings::from_public_url("https://auth.example.com")?;
    /// let auth = AuthService::new(MemoryStore::new(), tokens).with_passkeys(settings);
    /// assert!(auth.serves_passkeys());
    /// # Ok::<(), auth_core::PasskeySettingsError>(())
    /// ```
    #[must_use]
    pub fn with_passkeys(mut self, settings: PasskeySettings) -> Self {
        self.passkeys = Some(Passkeys {
            settings,
            has_passkeys: has_passkeys::<S>,
            purge_ceremonies: purge_ceremonies::<S>,
        });
        self
    }

    /// Begins registering a passkey to the caller's account: creation options for
    /// `navigator.credentials.create()`, bound to the account and excluding its passkeys
    /// already registered, and the ceremony's token for
    /// [`finish_passkey_registration`](Self::finish_passkey_registration) (5 minutes,
    /// once). Needs a recent authentication (the step-up window; with the second factor
    /// where the account has one). Draws on [`Bucket::PasskeyCeremoniesPerClient`].
    ///
    /// # Errors
    ///
    /// [`StepUpRequired`](AuthError::StepUpRequired), [`RateLimited`](AuthError::RateLimited),
    /// [`UserNotFound`](AuthError::UserNotFound), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal) (also
    /// without [`with_passkeys`](Self::with_passkeys)).
    pub async fn begin_passkey_registration(
        &self,
        caller: &Caller,
        client: &ClientInfo,
    ) -> Result<PasskeyChallenge, AuthError> {
        let audit = Audit::new(Action::BeginPasskeyRegistration, Subject::User(caller.user_id()));
        self.audited(audit, client, async |audit| {
            let webauthn = self.webauthn()?;
            self.take(Bucket::PasskeyCeremoniesPerClient, client, None).await?;
            let user = self.active_account(caller.user_id()).await?;
            self.recent_authentication(caller, &user, audit)?;
            let registered = self.store().list_passkeys(user.id).await?;
            let exclude = registered
                .iter()
                .map(|passkey| passkey.credential_id.clone())
                .collect::<Vec<_>>();
            let (options, state) = webauthn
                .start_passkey_registration(
                    *user.id.as_uuid(),
                    user.email.as_str(),
                    user.email.as_str(),
                    Some(exclude),
                )
                .map_err(AuthError::internal)?;
            let state = serde_json::to_string(&state).map_err(AuthError::internal)?;
            let options = creation_options(&options)?;
            self.begin_ceremony(PasskeyCeremonyKind::Registration, Some(user.id), state, options)
                .await
        })
        .await
    }

    /// Finishes a registration: verifies `credential` (the JSON of the browser's
    /// `PublicKeyCredential`, as its `toJSON()` gives it) against the ceremony `ceremony`
    /// names, which must be the caller's, and stores the passkey under `name` (trimmed;
    /// [`DEFAULT_PASSKEY_NAME`] when `None`). Tells the account's owner.
    ///
    /// # Errors
    ///
    /// [`InvalidPasskey`](AuthError::InvalidPasskey) (the ceremony unknown, spent, expired
    /// or another account's, the credential malformed or its attestation refused: the
    /// event says which), [`InvalidPasskeyName`](AuthError::InvalidPasskeyName),
    /// [`Conflict`](AuthError::Conflict) (the credential is registered already),
    /// [`UserNotFound`](AuthError::UserNotFound), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn finish_passkey_registration(
        &self,
        caller: &Caller,
        ceremony: &str,
        credential: &Value,
        name: Option<&str>,
        client: &ClientInfo,
    ) -> Result<PasskeyCredential, AuthError> {
        let audit = Audit::new(Action::RegisterPasskey, Subject::User(caller.user_id()));
        self.audited(audit, client, async |audit| {
            let webauthn = self.webauthn()?;
            let name = match name {
                None => DEFAULT_PASSKEY_NAME,
                Some(typed) => passkey_name(typed).ok_or_else(|| {
                    audit.refusal = Some(Refusal::InvalidPasskeyName);
                    AuthError::InvalidPasskeyName
                })?,
            };
            let user = self.active_account(caller.user_id()).await?;
            let record = self
                .take_ceremony(
                    ceremony,
                    PasskeyCeremonyKind::Registration,
                    audit,
                    AuthError::InvalidPasskey,
                )
                .await?;
            if record.user_id != Some(user.id) {
                return Err(refuse(audit, PasskeyRefusal::WrongCeremony, AuthError::InvalidPasskey));
            }
            let state: PasskeyRegistration = serde_json::from_str(&record.state).map_err(AuthError::internal)?;
            let response: RegisterPublicKeyCredential = serde_json::from_value(credential.clone())
                .map_err(|_| refuse(audit, PasskeyRefusal::MalformedCredential, AuthError::InvalidPasskey))?;
            let passkey = webauthn
                .finish_passkey_registration(&response, &state)
                .map_err(|error| {
                    refuse(
                        audit,
                        PasskeyRefusal::Verification(error.to_string()),
                        AuthError::InvalidPasskey,
                    )
                })?;
            let stored = PasskeyCredential::new(
                user.id,
                passkey.cred_id().to_vec(),
                serde_json::to_string(&passkey).map_err(AuthError::internal)?,
                stored_counter(&passkey)?,
                name,
                self.now(),
            );
            self.record_change(audit, client, self.store().insert_passkey(&stored))
                .await?;
            self.notify(
                &user,
                SecurityNoticeKind::PasskeyAdded(stored.name.clone()),
                client,
                None,
            );
            Ok(stored)
        })
        .await
    }

    /// Begins a passkey sign-in, no account named: request options for
    /// `navigator.credentials.get()` (with or without `mediation: "conditional"`), and the
    /// ceremony's token for [`finish_passkey_login`](Self::finish_passkey_login) (5
    /// minutes, once). Draws on [`Bucket::PasskeyCeremoniesPerClient`].
    ///
    /// # Errors
    ///
    /// [`RateLimited`](AuthError::RateLimited), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn begin_passkey_login(&self, client: &ClientInfo) -> Result<PasskeyChallenge, AuthError> {
        self.audited(
            Audit::new(Action::BeginPasskeyLogin, Subject::Unknown),
            client,
            async |_audit| {
                let webauthn = self.webauthn()?;
                self.take(Bucket::PasskeyCeremoniesPerClient, client, None).await?;
                let (options, state) = webauthn
                    .start_discoverable_authentication()
                    .map_err(AuthError::internal)?;
                let state = serde_json::to_string(&state).map_err(AuthError::internal)?;
                let options = request_options(&options)?;
                self.begin_ceremony(PasskeyCeremonyKind::Login, None, state, options)
                    .await
            },
        )
        .await
    }

    /// Finishes a passkey sign-in: verifies `credential` (the browser's
    /// `PublicKeyCredential` as JSON) against the ceremony and the registered passkey it
    /// names (and, when the assertion carries a user handle, that it is the passkey's
    /// account), with user verification, and starts a session whose `amr` says `hwk` or
    /// `swk` (a synced passkey) and `mfa`. A sign counter at or below the stored one is
    /// refused, and its event is [`PasskeyCounterRegressed`](crate::EventKind::PasskeyCounterRegressed)
    /// (a cloned authenticator). Draws on [`Bucket::LoginAttemptsPerClient`].
    ///
    /// # Errors
    ///
    /// [`PasskeyRefused`](AuthError::PasskeyRefused) (the event says why),
    /// [`RateLimited`](AuthError::RateLimited), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`EmailNotVerified`](AuthError::EmailNotVerified) (with
    /// [`with_require_verified_email`](Self::with_require_verified_email)),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn finish_passkey_login(
        &self,
        ceremony: &str,
        credential: &Value,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, AuthError> {
        self.audited(
            Audit::new(Action::PasskeyLogin, Subject::Unknown),
            client,
            async |audit| {
                let webauthn = self.webauthn()?;
                self.take(Bucket::LoginAttemptsPerClient, client, None).await?;
                let record = self
                    .take_ceremony(ceremony, PasskeyCeremonyKind::Login, audit, AuthError::PasskeyRefused)
                    .await?;
                let state: DiscoverableAuthentication =
                    serde_json::from_str(&record.state).map_err(AuthError::internal)?;
                let assertion = assertion(credential, audit)?;
                let stored = self
                    .store()
                    .find_passkey(assertion.get_credential_id())
                    .await?
                    .ok_or_else(|| refuse(audit, PasskeyRefusal::UnknownCredential, AuthError::PasskeyRefused))?;
                audit.subject = Subject::User(stored.user_id);
                if let Some(handle) = assertion.get_user_unique_id()
                    && Uuid::from_slice(handle).ok().as_ref() != Some(stored.user_id.as_uuid())
                {
                    return Err(refuse(audit, PasskeyRefusal::WrongAccount, AuthError::PasskeyRefused));
                }
                let passkey: Passkey = serde_json::from_str(&stored.credential).map_err(AuthError::internal)?;
                let result = webauthn.finish_discoverable_authentication_v2(&assertion, state, &passkey);
                let owner = stored.user_id;
                let method = self
                    .record_assertion(stored, passkey, result, audit, AuthError::PasskeyRefused)
                    .await?;
                let user = self.active_account(owner).await?;
                if self.require_verified_email && !user.email_verified() {
                    return Err(AuthError::EmailNotVerified);
                }
                let methods = AuthMethods::from(method).with(AuthMethod::MULTI_FACTOR);
                let tokens = self.session_with_tokens(&user, methods, client, audit).await?;
                audit.session_id = Some(tokens.session.id);
                Ok(LoginSuccess { user, tokens })
            },
        )
        .await
    }

    /// The caller's passkeys, oldest first (a read: no event).
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn list_passkeys(&self, user: UserId) -> Result<Vec<PasskeyCredential>, AuthError> {
        Ok(self.store().list_passkeys(user).await?)
    }

    /// Renames the caller's passkey `id` to `name` (trimmed).
    ///
    /// # Errors
    ///
    /// [`InvalidPasskeyName`](AuthError::InvalidPasskeyName), [`PasskeyNotFound`](AuthError::PasskeyNotFound),
    /// [`UserNotFound`](AuthError::UserNotFound), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn rename_passkey(
        &self,
        caller: &Caller,
        id: PasskeyId,
        name: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let audit = Audit::new(Action::RenamePasskey, Subject::User(caller.user_id()));
        self.audited(audit, client, async |audit| {
            let name = passkey_name(name).ok_or_else(|| {
                audit.refusal = Some(Refusal::InvalidPasskeyName);
                AuthError::InvalidPasskeyName
            })?;
            let user = self.active_account(caller.user_id()).await?;
            if self
                .record_change(audit, client, self.store().rename_passkey(user.id, id, name))
                .await?
            {
                Ok(())
            } else {
                Err(AuthError::PasskeyNotFound)
            }
        })
        .await
    }

    /// Removes the caller's passkey `id`, after a recent authentication (the step-up
    /// rule), unless it is the account's last way to sign in. Tells the account's owner.
    ///
    /// # Errors
    ///
    /// [`StepUpRequired`](AuthError::StepUpRequired), [`LastSignInMethod`](AuthError::LastSignInMethod),
    /// [`PasskeyNotFound`](AuthError::PasskeyNotFound), [`UserNotFound`](AuthError::UserNotFound),
    /// [`AccountDisabled`](AuthError::AccountDisabled), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn delete_passkey(&self, caller: &Caller, id: PasskeyId, client: &ClientInfo) -> Result<(), AuthError> {
        let audit = Audit::new(Action::DeletePasskey, Subject::User(caller.user_id()));
        self.audited(audit, client, async |audit| {
            let user = self.active_account(caller.user_id()).await?;
            self.recent_authentication(caller, &user, audit)?;
            let name = self
                .store()
                .list_passkeys(user.id)
                .await?
                .into_iter()
                .find(|passkey| passkey.id == id)
                .map(|passkey| passkey.name)
                .ok_or(AuthError::PasskeyNotFound)?;
            match self
                .record_change(audit, client, self.store().delete_passkey(user.id, id))
                .await?
            {
                PasskeyRemoval::Removed => {
                    self.notify(&user, SecurityNoticeKind::PasskeyRemoved(name), client, None);
                    Ok(())
                }
                PasskeyRemoval::LastSignInMethod => {
                    audit.refusal = Some(Refusal::LastSignInMethod);
                    Err(AuthError::LastSignInMethod)
                }
                // Deleted concurrently.
                PasskeyRemoval::NotFound => Err(AuthError::PasskeyNotFound),
            }
        })
        .await
    }

    /// Stores a ceremony and answers its options and token.
    async fn begin_ceremony(
        &self,
        kind: PasskeyCeremonyKind,
        user: Option<UserId>,
        state: String,
        options: Value,
    ) -> Result<PasskeyChallenge, AuthError> {
        let now = self.now();
        let (ceremony, hash) = OpaqueToken::generate(TokenKind::PasskeyCeremony)?;
        let record = PasskeyCeremony::new(kind, user, state, now, later_by(now, PASSKEY_CEREMONY_TTL));
        self.store().insert_passkey_ceremony(&hash, &record).await?;
        Ok(PasskeyChallenge {
            ceremony,
            options,
            expires_in: PASSKEY_CEREMONY_TTL,
        })
    }

    /// Takes (spends) the ceremony `presented` names, if it is a live one of `kind`.
    async fn take_ceremony(
        &self,
        presented: &str,
        kind: PasskeyCeremonyKind,
        audit: &mut Audit,
        answer: AuthError,
    ) -> Result<PasskeyCeremony, AuthError> {
        let Some(hash) = OpaqueToken::hash_presented(TokenKind::PasskeyCeremony, presented) else {
            return Err(refuse(audit, PasskeyRefusal::UnknownCeremony, answer));
        };
        let Some(record) = self.store().take_passkey_ceremony(&hash).await? else {
            return Err(refuse(audit, PasskeyRefusal::UnknownCeremony, answer));
        };
        if record.kind != kind {
            return Err(refuse(audit, PasskeyRefusal::WrongCeremony, answer));
        }
        if record.expires_at <= self.now() {
            return Err(refuse(audit, PasskeyRefusal::ExpiredCeremony, answer));
        }
        Ok(record)
    }

    /// Applies a verified assertion to its stored passkey (the sign counter, the backup
    /// flags, the last use), or refuses it: the method it proved.
    ///
    /// The counter moves by compare-and-set over the one read: of concurrent assertions,
    /// each that carries a higher counter than the stored one applies in turn; one that
    /// does not (a clone's, replaying a counter) is refused.
    async fn record_assertion(
        &self,
        mut stored: PasskeyCredential,
        mut passkey: Passkey,
        result: Result<webauthn_rs::prelude::AuthenticationResult, WebauthnError>,
        audit: &mut Audit,
        answer: AuthError,
    ) -> Result<AuthMethod, AuthError> {
        let result = match result {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                return Err(refuse(audit, PasskeyRefusal::CounterRegressed, answer));
            }
            Err(error) => {
                return Err(refuse(audit, PasskeyRefusal::Verification(error.to_string()), answer));
            }
        };
        if !result.user_verified() {
            return Err(refuse(
                audit,
                PasskeyRefusal::Verification("the authenticator did not verify the user".into()),
                answer,
            ));
        }
        for _ in 0..3 {
            // webauthn-rs compared the counter with the credential it was given: for a
            // second factor, the copy its ceremony began with, which another sign-in may
            // have passed since. The stored one decides.
            if (result.counter() > 0 || stored.counter > 0) && result.counter() <= stored.counter {
                return Err(refuse(audit, PasskeyRefusal::CounterRegressed, answer));
            }
            passkey.update_credential(&result);
            let credential = serde_json::to_string(&passkey).map_err(AuthError::internal)?;
            let counter = stored_counter(&passkey)?;
            if self
                .store()
                .record_passkey_use(stored.id, stored.counter, &credential, counter, self.now())
                .await?
            {
                audit.subject = Subject::User(stored.user_id);
                return Ok(key_method(result.backup_eligible()));
            }
            // Another sign-in with this passkey applied first: decide on what it left.
            let Some(current) = self.store().find_passkey(&stored.credential_id).await? else {
                return Err(refuse(audit, PasskeyRefusal::UnknownCredential, answer));
            };
            passkey = serde_json::from_str(&current.credential).map_err(AuthError::internal)?;
            stored = current;
        }
        Err(AuthError::Conflict)
    }
}

impl<S: AuthStore + PasskeyStore + SecondFactorStore> AuthService<S> {
    /// Begins completing a login challenge with a passkey (where
    /// [`SecondFactorChallenge::methods`](crate::SecondFactorChallenge::methods) names
    /// [`Passkey`](crate::SecondFactorMethod::Passkey)): request options listing the
    /// challenge's account's passkeys, and the ceremony's token for
    /// [`complete_login_with_passkey`](Self::complete_login_with_passkey). Spends none of
    /// the challenge's attempts. Draws on [`Bucket::PasskeyCeremoniesPerClient`].
    ///
    /// # Errors
    ///
    /// [`LoginChallengeFailed`](AuthError::LoginChallengeFailed) (the challenge does not
    /// work, or its account has no passkey), [`RateLimited`](AuthError::RateLimited),
    /// [`AccountDisabled`](AuthError::AccountDisabled), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn begin_passkey_second_factor(
        &self,
        challenge: &str,
        client: &ClientInfo,
    ) -> Result<PasskeyChallenge, AuthError> {
        self.audited(
            Audit::new(Action::BeginPasskeySecondFactor, Subject::Unknown),
            client,
            async |audit| {
                let webauthn = self.webauthn()?;
                self.take(Bucket::PasskeyCeremoniesPerClient, client, None).await?;
                let (_, _, user) = self.live_challenge(challenge, client, audit).await?;
                let passkeys = self.account_passkeys(user.id).await?;
                if passkeys.is_empty() {
                    audit.refusal = Some(Refusal::NotEnrolled);
                    return Err(AuthError::LoginChallengeFailed);
                }
                let (options, state) = webauthn
                    .start_passkey_authentication(&passkeys)
                    .map_err(AuthError::internal)?;
                let state = serde_json::to_string(&state).map_err(AuthError::internal)?;
                let options = request_options(&options)?;
                self.begin_ceremony(PasskeyCeremonyKind::SecondFactor, Some(user.id), state, options)
                    .await
            },
        )
        .await
    }

    /// Completes a login challenge with a passkey: `ceremony` is the token of
    /// [`begin_passkey_second_factor`](Self::begin_passkey_second_factor), `credential` the
    /// browser's assertion as JSON. As [`complete_login`](Self::complete_login) otherwise
    /// (one of the challenge's attempts, its allowances, one answer for every refusal);
    /// the session's `amr` says `pwd`, `hwk` or `swk`, and `mfa`.
    ///
    /// # Errors
    ///
    /// [`LoginChallengeFailed`](AuthError::LoginChallengeFailed), [`RateLimited`](AuthError::RateLimited),
    /// [`AccountLocked`](AuthError::AccountLocked), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn complete_login_with_passkey(
        &self,
        challenge: &str,
        ceremony: &str,
        credential: &Value,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, AuthError> {
        self.audited(
            Audit::new(Action::CompleteLoginWithPasskey, Subject::Unknown),
            client,
            async |audit| {
                let webauthn = self.webauthn()?;
                self.complete_challenge(challenge, client, audit, async |user| {
                    let mut check = Audit::new(Action::CompleteLoginWithPasskey, Subject::User(user.id));
                    let verified = self
                        .verify_second_factor(webauthn, user, ceremony, credential, &mut check)
                        .await;
                    match verified {
                        Ok(method) => Ok(Ok(method)),
                        Err(AuthError::LoginChallengeFailed) => Ok(Err(check
                            .refusal
                            .unwrap_or(Refusal::Passkey(PasskeyRefusal::UnknownCeremony)))),
                        Err(error) => Err(error),
                    }
                })
                .await
            },
        )
        .await
    }

    /// Checks a passkey assertion as `user`'s second factor, against the ceremony begun
    /// for it.
    async fn verify_second_factor(
        &self,
        webauthn: &Webauthn,
        user: &User,
        ceremony: &str,
        credential: &Value,
        audit: &mut Audit,
    ) -> Result<AuthMethod, AuthError> {
        let answer = || AuthError::LoginChallengeFailed;
        let record = self
            .take_ceremony(ceremony, PasskeyCeremonyKind::SecondFactor, audit, answer())
            .await?;
        if record.user_id != Some(user.id) {
            return Err(refuse(audit, PasskeyRefusal::WrongCeremony, answer()));
        }
        let state: PasskeyAuthentication = serde_json::from_str(&record.state).map_err(AuthError::internal)?;
        let assertion = assertion(credential, audit).map_err(|_| answer())?;
        let stored = self
            .store()
            .find_passkey(assertion.get_credential_id())
            .await?
            .filter(|stored| stored.user_id == user.id)
            .ok_or_else(|| refuse(audit, PasskeyRefusal::UnknownCredential, answer()))?;
        let passkey: Passkey = serde_json::from_str(&stored.credential).map_err(AuthError::internal)?;
        let result = webauthn.finish_passkey_authentication(&assertion, &state);
        self.record_assertion(stored, passkey, result, audit, answer()).await
    }

    async fn account_passkeys(&self, user: UserId) -> Result<Vec<Passkey>, AuthError> {
        self.store()
            .list_passkeys(user)
            .await?
            .iter()
            .map(|stored| serde_json::from_str(&stored.credential).map_err(AuthError::internal))
            .collect()
    }
}

impl<S> AuthService<S> {
    fn webauthn(&self) -> Result<&Webauthn, AuthError> {
        self.passkeys
            .as_ref()
            .map(|passkeys| &*passkeys.settings.webauthn)
            .ok_or_else(|| AuthError::internal("passkeys are not configured: call AuthService::with_passkeys"))
    }

    /// Whether [`with_passkeys`](AuthService::with_passkeys) turned passkeys on.
    pub fn serves_passkeys(&self) -> bool {
        self.passkeys.is_some()
    }

    /// The passkey settings, when [`with_passkeys`](AuthService::with_passkeys) turned
    /// passkeys on.
    pub fn passkey_settings(&self) -> Option<&PasskeySettings> {
        self.passkeys.as_ref().map(|passkeys| &passkeys.settings)
    }

    /// Deletes the passkey ceremonies expired before `before` (none without passkeys).
    pub(super) async fn purge_passkey_ceremonies(&self, before: time::OffsetDateTime) -> Result<u64, AuthError> {
        match &self.passkeys {
            Some(passkeys) => (passkeys.purge_ceremonies)(self, before).await,
            None => Ok(0),
        }
    }

    /// Whether `user` has a passkey the service can check (false without passkeys).
    pub(super) async fn has_passkeys(&self, user: UserId) -> Result<bool, AuthError> {
        match &self.passkeys {
            Some(passkeys) => (passkeys.has_passkeys)(self, user).await,
            None => Ok(false),
        }
    }
}

/// The browser's assertion, parsed.
fn assertion(credential: &Value, audit: &mut Audit) -> Result<PublicKeyCredential, AuthError> {
    serde_json::from_value(credential.clone())
        .map_err(|_| refuse(audit, PasskeyRefusal::MalformedCredential, AuthError::PasskeyRefused))
}

/// Request options as the browser reads them: the `publicKey` member alone (whether to
/// use conditional mediation is the page's choice).
fn request_options(options: &RequestChallengeResponse) -> Result<Value, AuthError> {
    serde_json::to_value(&options.public_key).map_err(AuthError::internal)
}

/// Creation options as the browser reads them (the `publicKey` member), asking for a
/// discoverable (resident) key where the authenticator can make one, so the passkey signs
/// in without an address typed (webauthn-rs leaves it to the authenticator).
fn creation_options(options: &CreationChallengeResponse) -> Result<Value, AuthError> {
    let mut options = serde_json::to_value(&options.public_key).map_err(AuthError::internal)?;
    if let Some(selection) = options.get_mut("authenticatorSelection").and_then(Value::as_object_mut) {
        selection.insert("residentKey".into(), Value::from("preferred"));
        selection.insert("requireResidentKey".into(), Value::from(false));
    }
    Ok(options)
}
