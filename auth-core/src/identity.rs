//! Sign-in through external identity providers (OpenID Connect): the identities an
//! account links, the provider a service talks to ([`IdentityProvider`], implemented by
//! `auth-oidc`), and the records of a flow in progress.
//!
//! The rules (who is signed in, what is created, what is never linked by itself) are
//! [`AuthService`](crate::AuthService)'s; see
//! [`begin_external_login`](crate::AuthService::begin_external_login).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::email::Email;
use crate::error::BoxError;
use crate::id::{IdentityId, SessionId, UserId};
use crate::token::TokenHash;

/// How long a begun external sign-in waits for the provider's callback: 10 minutes.
pub const EXTERNAL_LOGIN_STATE_TTL: Duration = Duration::from_secs(10 * 60);
/// How long the one-time code of a finished external sign-in can be traded: 60 seconds.
pub const EXTERNAL_LOGIN_CODE_TTL: Duration = Duration::from_secs(60);

/// A provider's name as configured (`google`, `gitlab`, `keycloak`): 1 to 32 characters of
/// `a-z`, `0-9`, `_` and `-`. It is part of the callback URL and of every stored identity,
/// so it never changes once accounts have linked it.
///
/// ```
/// use auth_core::ProviderName;
///
/// assert_eq!(ProviderName::new("google").unwrap().as_str(), "google");
/// assert!(ProviderName::new("Google").is_err());
/// assert!(ProviderName::new("").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderName(String);

/// A string that is not a valid [`ProviderName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a provider name is 1 to 32 characters of a-z, 0-9, '_' and '-'")]
pub struct ProviderNameError;

impl ProviderName {
    /// Longest name, in bytes.
    pub const MAX_LEN: usize = 32;

    /// Validates a name.
    ///
    /// # Errors
    ///
    /// [`ProviderNameError`] when `name` is empty, too long or has other characters.
    pub fn new(name: impl Into<String>) -> Result<Self, ProviderNameError> {
        let name = name.into();
        let valid = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-');
        if name.is_empty() || name.len() > Self::MAX_LEN || !name.bytes().all(valid) {
            return Err(ProviderNameError);
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderName({})", self.0)
    }
}

impl FromStr for ProviderName {
    type Err = ProviderNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Who a provider says signed in, from an ID token whose signature, issuer, audience,
/// authorized party, times and nonce the [`IdentityProvider`] has verified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExternalIdentity {
    /// The provider.
    pub provider: ProviderName,
    /// The provider's stable identifier of the person (`sub`): the identity is
    /// (provider, subject), never the email, which the person may change there.
    pub subject: String,
    /// The email the provider gives, as written there (`email`), if any.
    pub email: Option<String>,
    /// Whether the provider vouches that the person receives mail there (`email_verified`).
    pub email_verified: bool,
}

impl ExternalIdentity {
    /// Longest subject, in bytes (OpenID Connect: 255 ASCII characters).
    pub const MAX_SUBJECT_LEN: usize = 255;

    /// An identity with no email.
    ///
    /// ```
    /// use auth_core::{ExternalIdentity, ProviderName};
    ///
    /// let identity = ExternalIdentity::new(ProviderName::new("google").unwrap(), "1083")
    ///     .with_email("ada@example.com", true);
    /// assert!(identity.email_verified);
    /// ```
    pub fn new(provider: ProviderName, subject: impl Into<String>) -> Self {
        Self {
            provider,
            subject: subject.into(),
            email: None,
            email_verified: false,
        }
    }

    /// Sets the email and whether the provider verified it.
    #[must_use]
    pub fn with_email(mut self, email: impl Into<String>, verified: bool) -> Self {
        self.email = Some(email.into());
        self.email_verified = verified;
        self
    }
}

/// An external identity linked to an account, as every
/// [`IdentityStore`](crate::IdentityStore) keeps it. Unique on (provider, subject).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkedIdentity {
    /// Stable identifier (what `DELETE /me/identities/{id}` names).
    pub id: IdentityId,
    /// The account.
    pub user_id: UserId,
    /// The provider.
    pub provider: ProviderName,
    /// The provider's `sub`.
    pub subject: String,
    /// The email the provider gave when the identity was linked (for the person to
    /// recognize it; never used to sign in).
    pub email: Option<String>,
    /// When it was linked.
    pub created_at: OffsetDateTime,
    /// When it last signed in.
    pub last_used_at: Option<OffsetDateTime>,
}

impl LinkedIdentity {
    /// A new link of `identity` to `user_id` at `now`, never used.
    ///
    /// ```
    /// use auth_core::{ExternalIdentity, LinkedIdentity, ProviderName, UserId};
    /// use time::macros::datetime;
    ///
    /// let now = datetime!(2026-06-01 9:00 UTC);
    /// let identity = ExternalIdentity::new(ProviderName::new("gitlab").unwrap(), "42");
    /// let linked = LinkedIdentity::new(UserId::new_at(now), &identity, now);
    /// assert_eq!((linked.subject.as_str(), linked.last_used_at), ("42", None));
    /// ```
    pub fn new(user_id: UserId, identity: &ExternalIdentity, now: OffsetDateTime) -> Self {
        Self {
            id: IdentityId::new_at(now),
            user_id,
            provider: identity.provider.clone(),
            subject: identity.subject.clone(),
            email: identity.email.clone(),
            created_at: now,
            last_used_at: None,
        }
    }

    /// Sets when it last signed in.
    #[must_use]
    pub fn with_last_used_at(mut self, last_used_at: Option<OffsetDateTime>) -> Self {
        self.last_used_at = last_used_at;
        self
    }

    /// Sets the identifier (a store loading a row).
    #[must_use]
    pub fn with_id(mut self, id: IdentityId) -> Self {
        self.id = id;
        self
    }
}

/// Where a provider's callback leads, after checking it: a path on this site.
///
/// Only a same-origin relative path is accepted (`/`, `/account?tab=1`): no scheme, no
/// host, no `//` or `\` that a browser would read as another host, no control
/// characters, at most 512 bytes. So `next` can never send a person to another site with
/// a code in the address (an open redirect).
///
/// ```
/// use auth_core::ReturnPath;
///
/// assert_eq!(ReturnPath::parse("/app?tab=1").unwrap().as_str(), "/app?tab=1");
/// for evil in ["https://evil.example", "//evil.example", "/\\evil.example", "evil", "/a\nb"] {
///     assert!(ReturnPath::parse(evil).is_err(), "{evil}");
/// }
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReturnPath(String);

/// A `next` that is not a same-origin relative path ([`ReturnPath`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("next must be a path on this site, such as /account")]
pub struct ReturnPathError;

impl ReturnPath {
    /// Longest path, in bytes.
    pub const MAX_LEN: usize = 512;

    /// Checks a path.
    ///
    /// # Errors
    ///
    /// [`ReturnPathError`] for anything but a same-origin relative path.
    pub fn parse(path: &str) -> Result<Self, ReturnPathError> {
        let bytes = path.as_bytes();
        let relative = bytes.first() == Some(&b'/') && !matches!(bytes.get(1), Some(b'/' | b'\\'));
        // Browsers treat `\` as `/` in special URLs and drop tabs and newlines, so
        // `/\evil.example` or `/<TAB>/evil.example` would leave the site.
        let plain = bytes.iter().all(|&b| b > 0x20 && b < 0x7f && b != b'\\');
        if !relative || !plain || path.len() > Self::MAX_LEN {
            return Err(ReturnPathError);
        }
        Ok(Self(path.to_owned()))
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path with `name=value` added to its query (`value` percent-encoded), before
    /// any fragment.
    ///
    /// ```
    /// use auth_core::ReturnPath;
    ///
    /// let next = ReturnPath::parse("/app?tab=1#top").unwrap();
    /// assert_eq!(next.with_query("code", "xc_a b"), "/app?tab=1&code=xc_a%20b#top");
    /// ```
    pub fn with_query(&self, name: &str, value: &str) -> String {
        let (path, fragment) = match self.0.split_once('#') {
            Some((path, fragment)) => (path, Some(fragment)),
            None => (self.0.as_str(), None),
        };
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut out = format!("{path}{separator}{name}=");
        for byte in value.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
                out.push(char::from(byte));
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        if let Some(fragment) = fragment {
            out.push('#');
            out.push_str(fragment);
        }
        out
    }
}

/// What an external sign-in is for: set when it begins, kept server-side, acted on when
/// the provider calls back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExternalLoginPurpose {
    /// Sign in (or create an account): the callback redirects to `next` with a one-time
    /// code.
    SignIn,
    /// Link the identity to this signed-in account, from this session.
    Link {
        /// The account.
        user_id: UserId,
        /// The session that asked; the link fails if it has ended meanwhile.
        session_id: SessionId,
    },
}

/// A native app's PKCE challenge (RFC 7636, method `S256`) for the one-time code of an
/// external sign-in: the app keeps a random `code_verifier`, sends
/// `BASE64URL(SHA-256(code_verifier))` when the flow begins, and trades the code with the
/// verifier. It stands in for the binding cookie, which an app does not have: the system
/// browser that went through the provider holds it, not the app's HTTP client. A code
/// carried to another app (or sent to a victim) is still worthless without the verifier.
///
/// ```
/// use auth_core::CodeChallenge;
///
/// // The app's verifier, and BASE64URL(SHA-256(verifier)) sent when the flow begins.
/// let verifier = "a-native-apps-verifier-43-to-128-characters.long~";
/// let challenge = CodeChallenge::s256("vtogej9x93k08OmwVSoQ5yJzhjSnnfHlExMJL8TpHtg").unwrap();
/// assert!(challenge.is_met_by(verifier));
/// assert!(!challenge.is_met_by("a-native-apps-verifier-43-to-128-characters.long!"));
/// assert!(CodeChallenge::s256("plain-text-is-no-challenge").is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CodeChallenge(TokenHash);

/// A `code_challenge` that is not 43 characters of unpadded base64url (a SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("code_challenge must be BASE64URL(SHA-256(code_verifier)), 43 characters, method S256")]
pub struct CodeChallengeError;

impl CodeChallenge {
    /// Reads an `S256` challenge: 43 characters of unpadded base64url.
    ///
    /// # Errors
    ///
    /// [`CodeChallengeError`] for anything else.
    pub fn s256(challenge: &str) -> Result<Self, CodeChallengeError> {
        use base64::Engine as _;
        if challenge.len() != 43 {
            return Err(CodeChallengeError);
        }
        let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(challenge)
            .map_err(|_| CodeChallengeError)?;
        let digest: [u8; 32] = digest.try_into().map_err(|_| CodeChallengeError)?;
        Ok(Self(TokenHash::from_bytes(digest)))
    }

    /// A challenge read from a store ([`as_bytes`](Self::as_bytes)).
    pub const fn from_bytes(digest: [u8; 32]) -> Self {
        Self(TokenHash::from_bytes(digest))
    }

    /// The SHA-256 digest, to store.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Whether `verifier` is a well-formed `code_verifier` (43 to 128 of `A-Z a-z 0-9 - .
    /// _ ~`) whose SHA-256 is this challenge; compared in constant time.
    pub fn is_met_by(&self, verifier: &str) -> bool {
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        well_formed && TokenHash::of(verifier) == self.0
    }

    /// The hash a one-time code is bound to (its record's `binding`).
    pub(crate) const fn binding(&self) -> TokenHash {
        self.0
    }
}

impl fmt::Debug for CodeChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeChallenge(S256)")
    }
}

/// A begun external sign-in, as an [`IdentityStore`](crate::IdentityStore) keeps it under
/// the hash of its `state`. It holds no secret: the PKCE verifier and the nonce are
/// derived from the browser's binding cookie, which only its hash here can be checked
/// against, so the database alone cannot finish a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExternalLoginState {
    /// The hash of the browser binding cookie.
    pub binding: TokenHash,
    /// The provider it was begun with.
    pub provider: ProviderName,
    /// What it is for.
    pub purpose: ExternalLoginPurpose,
    /// Where the callback leads.
    pub next: ReturnPath,
    /// When it began.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// A native app's challenge: its one-time code is traded with the app's verifier, not
    /// the binding cookie ([`CodeChallenge`]).
    pub exchange_challenge: Option<CodeChallenge>,
}

impl ExternalLoginState {
    /// The same flow, begun by a native app with `challenge`.
    #[must_use]
    pub fn with_exchange_challenge(mut self, challenge: Option<CodeChallenge>) -> Self {
        self.exchange_challenge = challenge;
        self
    }

    /// A state record.
    ///
    /// ```
    /// use auth_core::{ExternalLoginPurpose, ExternalLoginState, OpaqueToken, ProviderName, ReturnPath, TokenKind};
    /// use time::macros::datetime;
    ///
    /// let (_, binding) = OpaqueToken::generate(TokenKind::ExternalLoginBinding).unwrap();
    /// let state = ExternalLoginState::new(
    ///     binding,
    ///     ProviderName::new("google").unwrap(),
    ///     ExternalLoginPurpose::SignIn,
    ///     ReturnPath::parse("/").unwrap(),
    ///     datetime!(2026-06-01 9:00 UTC),
    ///     datetime!(2026-06-01 9:10 UTC),
    /// );
    /// assert_eq!(state.purpose, ExternalLoginPurpose::SignIn);
    /// ```
    pub fn new(
        binding: TokenHash,
        provider: ProviderName,
        purpose: ExternalLoginPurpose,
        next: ReturnPath,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            binding,
            provider,
            purpose,
            next,
            created_at,
            expires_at,
            exchange_challenge: None,
        }
    }
}

/// A finished external sign-in waiting for its application to trade the one-time code
/// (stored under the code's hash): which account, through which identity.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExternalLoginCode {
    /// The account signed in.
    pub user_id: UserId,
    /// The identity it signed in with.
    pub identity_id: IdentityId,
    /// What the exchange must prove: the hash of the flow's browser binding cookie (only
    /// that browser can trade the code: a code carried to another browser signs no one in
    /// there, no login CSRF), or a native app's [`CodeChallenge`] (only the app holding the
    /// verifier can).
    pub binding: TokenHash,
    /// The account's token version when the provider's callback was checked: a password
    /// change or revocation in between kills the code.
    pub token_version: i64,
    /// When the callback was checked (the session's `auth_time`).
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

impl ExternalLoginCode {
    /// A code record.
    ///
    /// ```
    /// use auth_core::{ExternalLoginCode, IdentityId, UserId};
    /// use time::macros::datetime;
    ///
    /// let at = datetime!(2026-06-01 9:00 UTC);
    /// let (_, binding) = auth_core::OpaqueToken::generate(auth_core::TokenKind::ExternalLoginBinding).unwrap();
    /// let code = ExternalLoginCode::new(UserId::new_at(at), IdentityId::new_at(at), binding, 0, at, datetime!(2026-06-01 9:01 UTC));
    /// assert_eq!(code.token_version, 0);
    /// ```
    pub fn new(
        user_id: UserId,
        identity_id: IdentityId,
        binding: TokenHash,
        token_version: i64,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            user_id,
            identity_id,
            binding,
            token_version,
            created_at,
            expires_at,
        }
    }
}

/// Why a provider's callback was refused: detail for the event and the log, never for
/// the client (who sees [`AuthError::ExternalLoginFailed`](crate::AuthError::ExternalLoginFailed)).
/// It never holds a code or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExternalLoginRefusal {
    /// No `state`, or one this service never issued (or already used: states are
    /// single-use).
    UnknownState,
    /// The state expired (10 minutes).
    ExpiredState,
    /// The browser's binding cookie is missing or another browser's: a callback carried
    /// into another browser (login CSRF) or a replayed one.
    AnotherBrowser,
    /// The callback names another provider than the flow began with.
    WrongProvider,
    /// The provider answered with an error (`error=access_denied`, say): its code.
    ProviderError(String),
    /// The callback has no authorization code.
    MissingCode,
    /// The provider's code or ID token failed a check: why.
    TokenRefused(String),
    /// A link's session ended before the provider called back.
    SessionEnded,
    /// The one-time code of a finished sign-in is unknown, spent or expired, its account
    /// changed since, or it came without the binding cookie of the browser that began the
    /// flow.
    InvalidCode,
}

/// What an [`IdentityProvider`] needs to build the authorization request and check its
/// answer: the `state`, the `nonce` and the PKCE verifier of one flow. `Debug` shows none.
pub struct AuthorizationRequest<'a> {
    /// The `state` parameter (the flow's `st_` token).
    pub state: &'a str,
    /// The `nonce` the ID token must carry.
    pub nonce: &'a str,
    /// The PKCE code verifier (RFC 7636), whose S256 challenge the authorization request
    /// carries and which the code exchange sends.
    pub pkce_verifier: &'a str,
}

impl fmt::Debug for AuthorizationRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthorizationRequest([redacted])")
    }
}

impl<'a> AuthorizationRequest<'a> {
    /// The request's parts.
    pub fn new(state: &'a str, nonce: &'a str, pkce_verifier: &'a str) -> Self {
        Self {
            state,
            nonce,
            pkce_verifier,
        }
    }
}

/// Why a provider could not be used or refused a callback.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider cannot be reached or answered nonsense (its discovery document, keys
    /// or token endpoint): servers answer 503; later may work.
    #[error("the identity provider is unavailable")]
    Unavailable(#[source] BoxError),
    /// The provider's answer is not acceptable: the code was refused, or the ID token
    /// failed a check (signature, issuer, audience, authorized party, expiry, issue time,
    /// nonce). The reason is for the event and the log, never for the client.
    #[error("the identity provider's answer was refused: {0}")]
    Refused(String),
}

/// A service's side of one OpenID Connect provider: builds the authorization URL and
/// checks the callback. `auth-oidc` implements it over the `openidconnect` crate, with
/// discovery; an application may implement it for another protocol.
#[async_trait::async_trait]
pub trait IdentityProvider: Send + Sync + fmt::Debug {
    /// The provider's name (part of the callback URL and of every linked identity).
    fn name(&self) -> &ProviderName;

    /// The URL to send the browser to: the provider's authorization endpoint with this
    /// client, the redirect URI, the scopes, `state`, `nonce` and the PKCE S256 challenge
    /// of `request.pkce_verifier`.
    ///
    /// # Errors
    ///
    /// [`ProviderError::Unavailable`] when the provider's metadata cannot be had.
    async fn authorization_url(&self, request: &AuthorizationRequest<'_>) -> Result<String, ProviderError>;

    /// Trades the callback's `code` (with the PKCE verifier) for an ID token, verifies it
    /// fully (signature against the provider's keys, issuer, audience, authorized party,
    /// expiry, issue time, `nonce`), and says who signed in.
    ///
    /// # Errors
    ///
    /// [`ProviderError::Refused`] for an answer that fails a check,
    /// [`ProviderError::Unavailable`] when the provider cannot be reached.
    async fn verify_callback(
        &self,
        code: &str,
        request: &AuthorizationRequest<'_>,
    ) -> Result<ExternalIdentity, ProviderError>;
}

/// Derives a flow's secret from the browser's binding cookie and its state: the PKCE
/// verifier and the nonce exist only while the cookie does, so nothing stored can finish
/// the flow. 43 base64url characters (256 bits), a valid PKCE verifier (RFC 7636 §4.1).
pub(crate) fn derive_flow_secret(binding: &str, purpose: &str, state: &str) -> Option<String> {
    use base64::Engine;
    // HMAC takes keys of any length: `new_from_slice` never fails for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(binding.as_bytes()).ok()?;
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(state.as_bytes());
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// The email a provider vouches for, as this service would register it: `None` unless
/// verified there and acceptable here.
pub(crate) fn vouched_email(identity: &ExternalIdentity) -> Option<Email> {
    if !identity.email_verified {
        return None;
    }
    identity.email.as_deref().and_then(|email| Email::parse(email).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_the_site() {
        for good in ["/", "/ui/account", "/a?b=c&d=%2F", "/a#frag", "/a/b/../c"] {
            assert!(ReturnPath::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/a\tb",
            "/\t/evil.example",
            "/a b",
            "javascript:alert(1)",
            "/é",
        ] {
            assert!(ReturnPath::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ReturnPath::parse(&format!("/{}", "a".repeat(511))).is_ok());
        assert!(ReturnPath::parse(&format!("/{}", "a".repeat(512))).is_err());
    }

    #[test]
    fn flow_secrets_depend_on_the_binding_the_purpose_and_the_state() {
        let derive = |b, p, s| derive_flow_secret(b, p, s).unwrap();
        let a = derive("eb_1", "pkce", "st_1");
        assert_eq!(a.len(), 43);
        assert_eq!(a, derive("eb_1", "pkce", "st_1"));
        assert_ne!(a, derive("eb_2", "pkce", "st_1"));
        assert_ne!(a, derive("eb_1", "nonce", "st_1"));
        assert_ne!(a, derive("eb_1", "pkce", "st_2"));
    }

    #[test]
    fn only_a_verified_acceptable_email_is_vouched_for() {
        let provider = ProviderName::new("p").unwrap();
        let identity = ExternalIdentity::new(provider, "1");
        assert_eq!(vouched_email(&identity), None);
        assert_eq!(
            vouched_email(&identity.clone().with_email("Ann@Example.com", false)),
            None
        );
        assert_eq!(
            vouched_email(&identity.clone().with_email("Ann@Example.com", true)).map(|e| e.as_str().to_owned()),
            Some("ann@example.com".to_owned())
        );
        assert_eq!(vouched_email(&identity.with_email("not an address", true)), None);
    }
}
