//! Sign-in through external identity providers: the redirect, the callback's rules (who
//! is signed in, what is created, what is never linked by itself), the one-time code an
//! application trades for its session, and the identities an account links.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::AuthService;
use super::audit::Audit;
use super::login::{LoginOutcome, LoginSuccess};
use super::sessions::Caller;
use crate::auth_method::{AuthMethod, AuthMethods};
use crate::clock::later_by;
use crate::error::{AuthError, StoreError};
use crate::event::{Action, Outcome, Refusal, Subject};
use crate::id::{IdentityId, UserId};
use crate::identity::{
    AuthorizationRequest, CodeChallenge, EXTERNAL_LOGIN_CODE_TTL, EXTERNAL_LOGIN_STATE_TTL, ExternalIdentity,
    ExternalLoginCode, ExternalLoginPurpose, ExternalLoginRefusal, ExternalLoginState, IdentityProvider,
    LinkedIdentity, ProviderError, ProviderName, ReturnPath, derive_flow_secret, vouched_email,
};
use crate::notice::SecurityNoticeKind;
use crate::rate_limit::Bucket;
use crate::session::ClientInfo;
use crate::store::{AuthStore, IdentityRemoval, IdentityStore};
use crate::token::{OpaqueToken, TokenHash, TokenKind};
use crate::user::User;

/// The identity providers a service signs in through
/// ([`with_identity_provider`](AuthService::with_identity_provider)).
#[derive(Default)]
pub(super) struct IdentityProviders {
    providers: BTreeMap<ProviderName, Arc<dyn IdentityProvider>>,
}

impl fmt::Debug for IdentityProviders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.providers.keys()).finish()
    }
}

/// A begun external sign-in: where to send the browser, and the cookie that binds the
/// flow to it.
///
/// Set [`binding`](Self::binding) as an `HttpOnly`, `SameSite=Lax` cookie (`__Host-`
/// prefixed and `Secure` over HTTPS) living [`expires_in`](Self::expires_in), then
/// redirect to [`authorization_url`](Self::authorization_url). The callback must bring
/// the cookie back: a callback carried into another browser fails. `Debug` shows neither
/// the URL (it holds the state) nor the cookie.
#[non_exhaustive]
pub struct ExternalLoginStart {
    /// The provider's authorization URL, with this flow's `state`, `nonce` and PKCE
    /// challenge.
    pub authorization_url: String,
    /// The browser binding: the cookie's value. Its hash is stored; the flow's PKCE
    /// verifier and nonce are derived from it.
    pub binding: OpaqueToken,
    /// How long the flow waits for the callback (10 minutes).
    pub expires_in: Duration,
}

impl fmt::Debug for ExternalLoginStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalLoginStart")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// What proves, at [`exchange_external_login`](AuthService::exchange_external_login),
/// that the one-time code is traded by whoever began the flow. `Debug` shows neither.
#[derive(Clone, Copy)]
pub enum ExchangeProof<'a> {
    /// The binding cookie of the browser that began the flow, if the request carried it.
    BindingCookie(Option<&'a str>),
    /// A native app's PKCE `code_verifier`, for a flow begun with its challenge
    /// ([`begin_external_login_for_app`](AuthService::begin_external_login_for_app)).
    CodeVerifier(&'a str),
}

impl fmt::Debug for ExchangeProof<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BindingCookie(_) => "ExchangeProof::BindingCookie([redacted])",
            Self::CodeVerifier(_) => "ExchangeProof::CodeVerifier([redacted])",
        })
    }
}

/// What a provider's callback carries, as the query string gave it.
#[derive(Clone, Copy, Default)]
#[non_exhaustive]
pub struct ExternalCallback<'a> {
    /// `state`.
    pub state: Option<&'a str>,
    /// `code`, the authorization code.
    pub code: Option<&'a str>,
    /// `error`, when the provider refused (`access_denied`, say).
    pub error: Option<&'a str>,
}

impl fmt::Debug for ExternalCallback<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalCallback")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<'a> ExternalCallback<'a> {
    /// The callback's parameters.
    pub fn new(state: Option<&'a str>, code: Option<&'a str>, error: Option<&'a str>) -> Self {
        Self { state, code, error }
    }
}

/// A checked callback: where to redirect the browser now. `Debug` hides the code (also in
/// `redirect_to`).
#[non_exhaustive]
pub enum ExternalLoginFinish {
    /// A sign-in: the account is proven. Redirect to `redirect_to` (the flow's `next` with
    /// `code=` added); the application there trades the code once, within 60 seconds,
    /// with [`AuthService::exchange_external_login`].
    SignedIn {
        /// The account.
        user_id: UserId,
        /// Whether the callback created the account.
        created: bool,
        /// The one-time code (also in `redirect_to`).
        code: OpaqueToken,
        /// `next?code=…`.
        redirect_to: String,
    },
    /// A link: the identity is now the signed-in account's. Redirect to `redirect_to`
    /// (`next` with `linked=<provider>` added).
    Linked {
        /// The linked identity.
        identity: LinkedIdentity,
        /// `next?linked=…`.
        redirect_to: String,
    },
}

impl fmt::Debug for ExternalLoginFinish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SignedIn { user_id, created, .. } => f
                .debug_struct("SignedIn")
                .field("user_id", user_id)
                .field("created", created)
                .finish_non_exhaustive(),
            Self::Linked { identity, redirect_to } => f
                .debug_struct("Linked")
                .field("identity", identity)
                .field("redirect_to", redirect_to)
                .finish(),
        }
    }
}

impl ExternalLoginFinish {
    /// Where to redirect the browser.
    pub fn redirect_to(&self) -> &str {
        match self {
            Self::SignedIn { redirect_to, .. } | Self::Linked { redirect_to, .. } => redirect_to,
        }
    }
}

/// A refused callback: the error, and where to send the browser when the flow's `next`
/// was known (`next?error=<code>`); without it (no valid state), answer the error itself.
#[derive(Debug)]
#[non_exhaustive]
pub struct ExternalLoginFailure {
    /// Why.
    pub error: AuthError,
    /// `next?error=<code>`, when the flow's state was found.
    pub redirect_to: Option<String>,
}

impl<S> AuthService<S> {
    /// The names of the identity providers it signs in through.
    pub fn identity_providers(&self) -> impl Iterator<Item = &ProviderName> {
        self.identity_providers.providers.keys()
    }

    fn identity_provider(&self, name: &str) -> Result<Arc<dyn IdentityProvider>, AuthError> {
        ProviderName::new(name)
            .ok()
            .and_then(|name| self.identity_providers.providers.get(&name).cloned())
            .ok_or(AuthError::UnknownProvider)
    }
}

impl<S: AuthStore + IdentityStore> AuthService<S> {
    /// Signs people in through `provider` too (an `auth_oidc::OidcProvider`, say), under
    /// its [`name`](IdentityProvider::name), which replaces a provider of the same name.
    ///
    /// The rules of the callback ([`finish_external_login`](Self::finish_external_login)):
    ///
    /// - an identity (provider and `sub`) linked to an account signs that account in;
    /// - a new identity whose email the provider verifies, and which no account has,
    ///   creates an account without a password, its email verified;
    /// - a new identity whose email an account has is **never** linked by itself (whoever
    ///   controls an email at some provider would take the account over): nothing is
    ///   created, and the person is told to sign in to that account and link the provider
    ///   from there ([`begin_identity_link`](Self::begin_identity_link));
    /// - a new identity without a verified email creates nothing.
    ///
    /// An account with a second factor is asked for it after the provider, as after a
    /// password.
    #[must_use]
    pub fn with_identity_provider(mut self, provider: Arc<dyn IdentityProvider>) -> Self {
        self.identity_providers
            .providers
            .insert(provider.name().clone(), provider);
        self
    }

    /// Begins a sign-in through `provider`: stores the flow (single-use, 10 minutes) and
    /// gives the provider's authorization URL and the browser binding cookie. `next` is
    /// where the callback leads: a path on this site ([`ReturnPath`]), which gets the
    /// one-time code.
    ///
    /// Draws on the client's [`Bucket::LoginAttemptsPerClient`].
    ///
    /// # Errors
    ///
    /// [`UnknownProvider`](AuthError::UnknownProvider), [`InvalidReturnPath`](AuthError::InvalidReturnPath),
    /// [`ProviderUnavailable`](AuthError::ProviderUnavailable) (nothing stored),
    /// [`RateLimited`](AuthError::RateLimited), [`Unavailable`](AuthError::Unavailable).
    pub async fn begin_external_login(
        &self,
        provider: &str,
        next: &str,
        client: &ClientInfo,
    ) -> Result<ExternalLoginStart, AuthError> {
        self.audited(
            Audit::new(Action::BeginExternalLogin, Subject::Unknown),
            client,
            async |_| {
                let provider = self.identity_provider(provider)?;
                let next = ReturnPath::parse(next).map_err(AuthError::InvalidReturnPath)?;
                self.take(Bucket::LoginAttemptsPerClient, client, None).await?;
                self.begin_flow(&*provider, ExternalLoginPurpose::SignIn, next, None)
                    .await
            },
        )
        .await
    }

    /// Begins a sign-in through `provider` for a native app (or any client whose HTTP
    /// requests do not share the cookies of the browser that goes through the provider):
    /// as [`begin_external_login`](Self::begin_external_login), but the one-time code is
    /// traded with the app's PKCE verifier ([`ExchangeProof::CodeVerifier`]) instead of
    /// the binding cookie. `code_challenge` is `BASE64URL(SHA-256(code_verifier))`
    /// (RFC 7636, `S256`). The system browser still gets the binding cookie: the callback
    /// checks it, so the flow cannot be finished in another browser either.
    ///
    /// # Errors
    ///
    /// As [`begin_external_login`](Self::begin_external_login), and
    /// [`InvalidCodeChallenge`](AuthError::InvalidCodeChallenge).
    pub async fn begin_external_login_for_app(
        &self,
        provider: &str,
        next: &str,
        code_challenge: &str,
        client: &ClientInfo,
    ) -> Result<ExternalLoginStart, AuthError> {
        self.audited(
            Audit::new(Action::BeginExternalLogin, Subject::Unknown),
            client,
            async |_| {
                let provider = self.identity_provider(provider)?;
                let next = ReturnPath::parse(next).map_err(AuthError::InvalidReturnPath)?;
                let challenge = CodeChallenge::s256(code_challenge).map_err(AuthError::InvalidCodeChallenge)?;
                self.take(Bucket::LoginAttemptsPerClient, client, None).await?;
                self.begin_flow(&*provider, ExternalLoginPurpose::SignIn, next, Some(challenge))
                    .await
            },
        )
        .await
    }

    /// Begins linking `provider` to the caller's account, from its session: as
    /// [`begin_external_login`](Self::begin_external_login), but the callback links the
    /// identity to this account instead of signing in. Needs a recent authentication
    /// (within [`with_step_up_window`](Self::with_step_up_window), with the second factor
    /// where the account has one): a stolen, old session cannot attach an attacker's
    /// identity as a way back in.
    ///
    /// # Errors
    ///
    /// As [`begin_external_login`](Self::begin_external_login), and
    /// [`StepUpRequired`](AuthError::StepUpRequired) without a recent authentication (or
    /// without a session).
    pub async fn begin_identity_link(
        &self,
        caller: &Caller,
        provider: &str,
        next: &str,
        client: &ClientInfo,
    ) -> Result<ExternalLoginStart, AuthError> {
        self.audited(
            Audit::new(Action::BeginExternalLogin, Subject::User(caller.user_id())),
            client,
            async |audit| {
                let provider = self.identity_provider(provider)?;
                let next = ReturnPath::parse(next).map_err(AuthError::InvalidReturnPath)?;
                let user = self.active_account(caller.user_id()).await?;
                self.recent_authentication(caller, &user, audit)?;
                self.take(Bucket::LoginAttemptsPerClient, client, None).await?;
                let session_id = caller.session_id().ok_or(AuthError::StepUpRequired {
                    max_age: self.step_up_window,
                })?;
                let purpose = ExternalLoginPurpose::Link {
                    user_id: user.id,
                    session_id,
                };
                self.begin_flow(&*provider, purpose, next, None).await
            },
        )
        .await
    }

    /// Checks a provider's callback for `provider` with the browser's `binding` cookie,
    /// and acts on it by the rules of [`with_identity_provider`](Self::with_identity_provider):
    /// the flow's state must be this service's, unexpired, unused and this browser's; the
    /// provider's code is traded with the PKCE verifier and its ID token verified fully
    /// (by the [`IdentityProvider`]). The state is spent whatever the outcome.
    ///
    /// The event is [`Action::ExternalLogin`] (a known identity),
    /// [`Action::RegisterThroughProvider`] (an account created) or
    /// [`Action::LinkIdentity`], with the refusal's reason when refused.
    ///
    /// # Errors
    ///
    /// In [`ExternalLoginFailure::error`]: [`ExternalLoginFailed`](AuthError::ExternalLoginFailed)
    /// (state, provider error, ID token), [`ExternalAccountExists`](AuthError::ExternalAccountExists),
    /// [`ExternalEmailUnverified`](AuthError::ExternalEmailUnverified),
    /// [`IdentityInUse`](AuthError::IdentityInUse), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`UnknownProvider`](AuthError::UnknownProvider), [`ProviderUnavailable`](AuthError::ProviderUnavailable),
    /// [`RateLimited`](AuthError::RateLimited), [`Unavailable`](AuthError::Unavailable).
    pub async fn finish_external_login(
        &self,
        provider: &str,
        callback: ExternalCallback<'_>,
        binding: Option<&str>,
        client: &ClientInfo,
    ) -> Result<ExternalLoginFinish, ExternalLoginFailure> {
        let mut next: Option<ReturnPath> = None;
        let result = self
            .audited(
                Audit::new(Action::ExternalLogin, Subject::Unknown),
                client,
                async |audit| {
                    let failed = |reason| AuthError::ExternalLoginFailed(reason);
                    let provider = self.identity_provider(provider)?;
                    let state = callback.state.unwrap_or_default();
                    let hash = OpaqueToken::hash_presented(TokenKind::ExternalLoginState, state)
                        .ok_or(failed(ExternalLoginRefusal::UnknownState))?;
                    let record = self
                        .store()
                        .take_login_state(&hash)
                        .await?
                        .ok_or(failed(ExternalLoginRefusal::UnknownState))?;
                    next = Some(record.next.clone());
                    if let ExternalLoginPurpose::Link { user_id, .. } = record.purpose {
                        audit.action = Action::LinkIdentity;
                        audit.subject = Subject::User(user_id);
                    }
                    let binding = binding.filter(|binding| {
                        OpaqueToken::hash_presented(TokenKind::ExternalLoginBinding, binding)
                            .is_some_and(|hash| hash == record.binding)
                    });
                    let refusal = if &record.provider != provider.name() {
                        Some(ExternalLoginRefusal::WrongProvider)
                    } else if record.expires_at <= self.now() {
                        Some(ExternalLoginRefusal::ExpiredState)
                    } else if binding.is_none() {
                        Some(ExternalLoginRefusal::AnotherBrowser)
                    } else if let Some(error) = callback.error {
                        Some(ExternalLoginRefusal::ProviderError(printable(error)))
                    } else if callback.code.is_none_or(str::is_empty) {
                        Some(ExternalLoginRefusal::MissingCode)
                    } else {
                        None
                    };
                    if let Some(refusal) = refusal {
                        return Err(failed(refusal));
                    }
                    let (Some(binding), Some(code)) = (binding, callback.code) else {
                        return Err(failed(ExternalLoginRefusal::MissingCode));
                    };
                    let secret = |purpose| {
                        derive_flow_secret(binding, purpose, state).ok_or_else(|| AuthError::internal("flow secret"))
                    };
                    let (nonce, verifier) = (secret("nonce")?, secret("pkce")?);
                    let identity = provider
                        .verify_callback(code, &AuthorizationRequest::new(state, &nonce, &verifier))
                        .await
                        .map_err(provider_error)?;
                    if &identity.provider != provider.name()
                        || identity.subject.is_empty()
                        || identity.subject.len() > ExternalIdentity::MAX_SUBJECT_LEN
                    {
                        return Err(failed(ExternalLoginRefusal::TokenRefused(
                            "the provider's identity names another provider or no subject".into(),
                        )));
                    }
                    match record.purpose {
                        ExternalLoginPurpose::SignIn => {
                            let (user, linked, created) = self.external_account(&identity, client, audit).await?;
                            audit.subject = Subject::User(user.id);
                            // A native app's challenge, else this browser's cookie, is what
                            // the exchange must prove.
                            let exchange = record
                                .exchange_challenge
                                .map_or(record.binding, |challenge| challenge.binding());
                            let code = self.issue_login_code(&user, linked, exchange).await?;
                            Ok(ExternalLoginFinish::SignedIn {
                                user_id: user.id,
                                created,
                                redirect_to: record.next.with_query("code", code.expose_secret()),
                                code,
                            })
                        }
                        ExternalLoginPurpose::Link { user_id, session_id } => {
                            let session = self.store().find_session(session_id).await?;
                            let live = session.is_some_and(|session| {
                                session.user_id == user_id && session.is_live(self.now(), self.session_idle_timeout)
                            });
                            if !live {
                                return Err(failed(ExternalLoginRefusal::SessionEnded));
                            }
                            let user = self.active_account(user_id).await?;
                            let identity = self.link(&user, &identity, client, audit).await?;
                            let kind = SecurityNoticeKind::IdentityLinked(identity.provider.clone());
                            self.notify(&user, kind, client, None);
                            Ok(ExternalLoginFinish::Linked {
                                redirect_to: record.next.with_query("linked", identity.provider.as_str()),
                                identity,
                            })
                        }
                    }
                },
            )
            .await;
        result.map_err(|error| ExternalLoginFailure {
            redirect_to: next.map(|next| next.with_query("error", error.code())),
            error,
        })
    }

    /// Trades the one-time code of a finished external sign-in (from the callback's
    /// redirect) for a session, once, within 60 seconds, with `proof`: the binding cookie
    /// of the browser that began the flow, or for a flow a native app began
    /// ([`begin_external_login_for_app`](Self::begin_external_login_for_app)) its PKCE
    /// verifier (a code carried to another browser or app, or sent to a victim in a link,
    /// signs no one in: no login CSRF): [`LoginOutcome::SignedIn`], its
    /// access tokens carrying `amr: ["fed"]` and the callback's time as `auth_time`; or,
    /// for an account with a second factor, [`LoginOutcome::SecondFactorRequired`] with a
    /// challenge that [`complete_login`](Self::complete_login) completes (`amr` then
    /// `["fed", "otp", "mfa"]`). A password change, reset or revocation since the callback
    /// kills the code.
    ///
    /// Draws on the client's [`Bucket::ConfirmationsPerClient`].
    ///
    /// # Errors
    ///
    /// [`ExternalLoginFailed`](AuthError::ExternalLoginFailed) for an unknown, spent or
    /// expired code, [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`EmailNotVerified`](AuthError::EmailNotVerified), [`SecondFactorRequired`](AuthError::SecondFactorRequired)
    /// (a second factor this service cannot ask for), [`RateLimited`](AuthError::RateLimited),
    /// [`Unavailable`](AuthError::Unavailable).
    pub async fn exchange_external_login(
        &self,
        code: &str,
        proof: ExchangeProof<'_>,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, AuthError> {
        self.audited(
            Audit::new(Action::ExchangeExternalLogin, Subject::Unknown),
            client,
            async |audit| {
                self.take(Bucket::ConfirmationsPerClient, client, None).await?;
                let invalid = AuthError::ExternalLoginFailed(ExternalLoginRefusal::InvalidCode);
                let hash = OpaqueToken::hash_presented(TokenKind::ExternalLoginCode, code).ok_or(invalid)?;
                let invalid = || AuthError::ExternalLoginFailed(ExternalLoginRefusal::InvalidCode);
                let record = self.store().take_login_code(&hash).await?.ok_or_else(invalid)?;
                audit.subject = Subject::User(record.user_id);
                let proven = match proof {
                    ExchangeProof::BindingCookie(cookie) => cookie
                        .and_then(|cookie| OpaqueToken::hash_presented(TokenKind::ExternalLoginBinding, cookie))
                        .is_some_and(|hash| hash == record.binding),
                    ExchangeProof::CodeVerifier(verifier) => {
                        CodeChallenge::from_bytes(*record.binding.as_bytes()).is_met_by(verifier)
                    }
                };
                if record.expires_at <= self.now() || !proven {
                    return Err(invalid());
                }
                let user = self.active_account(record.user_id).await?;
                if user.token_version != record.token_version {
                    return Err(invalid());
                }
                if self.require_verified_email && !user.email_verified() {
                    return Err(AuthError::EmailNotVerified);
                }
                if user.requires_second_factor {
                    let Some(factors) = &self.second_factors else {
                        return Err(AuthError::SecondFactorRequired);
                    };
                    let challenge = (factors.issue_challenge)(self, &user, AuthMethod::FEDERATED, client).await?;
                    audit.outcome = Some(Outcome::SecondFactorRequired);
                    return Ok(LoginOutcome::SecondFactorRequired(challenge));
                }
                let tokens = self
                    .session_with_tokens_since(
                        &user,
                        AuthMethods::from(AuthMethod::FEDERATED),
                        Some(record.created_at),
                        client,
                        audit,
                    )
                    .await?;
                audit.session_id = Some(tokens.session.id);
                Ok(LoginOutcome::SignedIn(LoginSuccess { user, tokens }))
            },
        )
        .await
    }

    /// The account's linked identities, oldest first.
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable).
    pub async fn list_identities(&self, user: UserId) -> Result<Vec<LinkedIdentity>, AuthError> {
        Ok(self.store().list_identities(user).await?)
    }

    /// Unlinks one of the caller's identities, unless it is the account's last way to
    /// sign in (no password, no other identity). Needs a recent authentication, as
    /// [`begin_identity_link`](Self::begin_identity_link).
    ///
    /// # Errors
    ///
    /// [`IdentityNotFound`](AuthError::IdentityNotFound), [`LastSignInMethod`](AuthError::LastSignInMethod),
    /// [`StepUpRequired`](AuthError::StepUpRequired), [`Unavailable`](AuthError::Unavailable).
    pub async fn unlink_identity(&self, caller: &Caller, id: IdentityId, client: &ClientInfo) -> Result<(), AuthError> {
        self.audited(
            Audit::new(Action::UnlinkIdentity, Subject::User(caller.user_id())),
            client,
            async |audit| {
                let user = self.active_account(caller.user_id()).await?;
                self.recent_authentication(caller, &user, audit)?;
                // Read first, for the notice to name the provider.
                let provider = self
                    .store()
                    .list_identities(user.id)
                    .await?
                    .into_iter()
                    .find(|identity| identity.id == id)
                    .map(|identity| identity.provider)
                    .ok_or(AuthError::IdentityNotFound)?;
                match self
                    .record_change(audit, client, self.store().delete_identity(user.id, id))
                    .await?
                {
                    IdentityRemoval::Removed => {
                        self.notify(&user, SecurityNoticeKind::IdentityUnlinked(provider), client, None);
                        Ok(())
                    }
                    IdentityRemoval::LastSignInMethod => Err(AuthError::LastSignInMethod),
                    _ => Err(AuthError::IdentityNotFound),
                }
            },
        )
        .await
    }

    async fn begin_flow(
        &self,
        provider: &dyn IdentityProvider,
        purpose: ExternalLoginPurpose,
        next: ReturnPath,
        exchange_challenge: Option<CodeChallenge>,
    ) -> Result<ExternalLoginStart, AuthError> {
        let now = self.now();
        // Flows never finished would pile up: each begin clears the expired ones.
        self.store().delete_expired_logins(now).await?;
        let (state, state_hash) = OpaqueToken::generate(TokenKind::ExternalLoginState)?;
        let (binding, binding_hash) = OpaqueToken::generate(TokenKind::ExternalLoginBinding)?;
        let secret = |purpose| {
            derive_flow_secret(binding.expose_secret(), purpose, state.expose_secret())
                .ok_or_else(|| AuthError::internal("flow secret"))
        };
        let (nonce, verifier) = (secret("nonce")?, secret("pkce")?);
        let authorization_url = provider
            .authorization_url(&AuthorizationRequest::new(state.expose_secret(), &nonce, &verifier))
            .await
            .map_err(provider_error)?;
        let record = ExternalLoginState::new(
            binding_hash,
            provider.name().clone(),
            purpose,
            next,
            now,
            later_by(now, EXTERNAL_LOGIN_STATE_TTL),
        )
        .with_exchange_challenge(exchange_challenge);
        self.store().insert_login_state(&state_hash, &record).await?;
        Ok(ExternalLoginStart {
            authorization_url,
            binding,
            expires_in: EXTERNAL_LOGIN_STATE_TTL,
        })
    }

    /// The account a verified identity signs in, by the rules: its linked account, or a
    /// new one for a new identity with a vouched-for email no account has. Returns the
    /// account, the identity's id, and whether it was created.
    async fn external_account(
        &self,
        identity: &ExternalIdentity,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<(User, IdentityId, bool), AuthError> {
        if let Some(linked) = self.linked_account(identity).await? {
            return Ok(linked);
        }
        let Some(email) = vouched_email(identity) else {
            return Err(AuthError::ExternalEmailUnverified);
        };
        audit.subject = self.accounts.email_subject(Some(&email));
        // A fast answer only: the database's uniqueness decides below.
        if self.store().find_user_by_email(&email).await?.is_some() {
            return Err(AuthError::ExternalAccountExists);
        }
        self.take(Bucket::RegistrationsPerClient, client, None).await?;
        let now = self.now();
        let user = User::new(email, None, now).with_email_verified_at(Some(now));
        let linked = LinkedIdentity::new(user.id, identity, now).with_last_used_at(Some(now));
        // The record says what the write does; the call is that if it succeeds.
        let action = std::mem::replace(&mut audit.action, Action::RegisterThroughProvider);
        let creation = self.store().insert_user_with_identity(&user, &linked);
        let created = self
            .record_change_of(audit, Subject::User(user.id), client, creation)
            .await;
        if created.is_err() {
            audit.action = action;
        }
        match created {
            Ok(()) => Ok((user, linked.id, true)),
            // Two first sign-ins of one identity at once: the other created the account.
            Err(StoreError::DuplicateIdentity) => self.linked_account(identity).await?.ok_or(AuthError::Conflict),
            Err(StoreError::DuplicateEmail) => Err(AuthError::ExternalAccountExists),
            Err(error) => Err(error.into()),
        }
    }

    /// The active account an identity is linked to, its use recorded.
    async fn linked_account(&self, identity: &ExternalIdentity) -> Result<Option<(User, IdentityId, bool)>, AuthError> {
        let Some(linked) = self
            .store()
            .find_identity(&identity.provider, &identity.subject)
            .await?
        else {
            return Ok(None);
        };
        let user = self.active_account(linked.user_id).await?;
        self.store().record_identity_use(linked.id, self.now()).await?;
        Ok(Some((user, linked.id, false)))
    }

    /// Links `identity` to `user`; linking it again to the same account changes nothing.
    async fn link(
        &self,
        user: &User,
        identity: &ExternalIdentity,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<LinkedIdentity, AuthError> {
        if let Some(linked) = self
            .store()
            .find_identity(&identity.provider, &identity.subject)
            .await?
        {
            return if linked.user_id == user.id {
                Ok(linked)
            } else {
                Err(AuthError::IdentityInUse)
            };
        }
        let linked = LinkedIdentity::new(user.id, identity, self.now());
        self.record_change_of(
            audit,
            Subject::User(user.id),
            client,
            self.store().insert_identity(&linked),
        )
        .await?;
        Ok(linked)
    }

    async fn issue_login_code(
        &self,
        user: &User,
        identity: IdentityId,
        binding: TokenHash,
    ) -> Result<OpaqueToken, AuthError> {
        let now = self.now();
        let (code, hash) = OpaqueToken::generate(TokenKind::ExternalLoginCode)?;
        let record = ExternalLoginCode::new(
            user.id,
            identity,
            binding,
            user.token_version,
            now,
            later_by(now, EXTERNAL_LOGIN_CODE_TTL),
        );
        self.store().insert_login_code(&hash, &record).await?;
        Ok(code)
    }
}

impl<S> AuthService<S> {
    /// The rule for changing how an account signs in without a password to check: an
    /// authentication within the step-up window, with the second factor where the
    /// account has one.
    pub(super) fn recent_authentication(
        &self,
        caller: &Caller,
        user: &User,
        audit: &mut Audit,
    ) -> Result<(), AuthError> {
        let now = self.now();
        let recent = if user.requires_second_factor {
            caller.proved_second_factor_within(self.step_up_window, now)
        } else {
            caller.authenticated_within(self.step_up_window, now)
        };
        if recent {
            return Ok(());
        }
        audit.refusal = Some(Refusal::StepUpRequired);
        Err(AuthError::StepUpRequired {
            max_age: self.step_up_window,
        })
    }
}

fn provider_error(error: ProviderError) -> AuthError {
    match error {
        ProviderError::Unavailable(source) => AuthError::ProviderUnavailable(source),
        ProviderError::Refused(why) => AuthError::ExternalLoginFailed(ExternalLoginRefusal::TokenRefused(why)),
    }
}

/// A provider's `error` as an event may carry it: at most 64 printable ASCII characters.
fn printable(error: &str) -> String {
    error.chars().filter(|c| c.is_ascii_graphic()).take(64).collect()
}
