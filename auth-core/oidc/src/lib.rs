//! Sign-in through OpenID Connect providers (Google, Microsoft, GitLab, Keycloak, Auth0, ...)
//! for [`auth_core`]: an [`OidcProvider`] is an [`IdentityProvider`] over the
//! [`openidconnect`] crate.
//!
//! - **Discovery** from the issuer's `/.well-known/openid-configuration`, with its keys
//!   (JWKS), at the first use and cached; fetched again when an ID token names a key the
//!   cache lacks (the provider rotated its keys), at most once every 30 seconds
//!   ([`OidcProviderConfig::with_key_refresh_interval`]). A
//!   provider that is down answers [`ProviderError::Unavailable`] (a 503) until discovery
//!   succeeds, retried at most every 2 seconds, so it never stops the service from
//!   starting.
//! - **The authorization-code flow** with PKCE S256, `state` and `nonce` (made by
//!   [`AuthService`](auth_core::AuthService), which keeps the flow).
//! - **The ID token verified in full**: signature against the provider's keys, by one of
//!   the asymmetric algorithms it advertises (RS256, ES256, ...; never HS256, keyed with
//!   the client secret), `iss`, `aud` (no audience but this client's), `azp`, `exp`, `iat` (not in
//!   the future, beyond a minute of clock skew), `nonce`.
//! - **Its own HTTP client** (reqwest with rustls), following no redirects (no SSRF through
//!   a provider's answer), with timeouts. An issuer must be `https://`; `http://` is
//!   accepted for a loopback host only (development and tests).
//!
//! ```no_run
//! use std::sync::Arc;
//! use auth_core::{AuthService, MemoryStore, SigningKey, Tokens};
//! use auth_oidc::{OidcProvider, OidcProviderConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let google = OidcProviderConfig::new(
//!     "google",
//!     "https://accounts.google.com",
//!     "1234.apps.googleusercontent.com",
//!     std::env::var("GOOGLE_CLIENT_SECRET")?,
//!     "https://app.example/oauth/google/callback",
//! )?;
//! let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
//! let auth = AuthService::new(MemoryStore::new(), Tokens::new(key, "https://app.example", "app"))
//!     .with_identity_provider(Arc::new(OidcProvider::new(google)?));
//! # let _ = auth;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::{AuthorizationRequest, ExternalIdentity, IdentityProvider, ProviderError, ProviderName};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AsyncHttpClient, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, HttpRequest,
    HttpResponse, IssuerUrl, JwsSigningAlgorithm, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Mutex, RwLock};

/// How long one request to a provider may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after a failed discovery the next request tries again (until then, requests
/// answer [`ProviderError::Unavailable`] at once).
pub const DISCOVERY_RETRY: Duration = Duration::from_secs(2);
/// How often at most an unknown key id fetches the provider's keys again.
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// The clock skew tolerated on `iat` and `exp`.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// The scopes asked for by default, besides `openid`: the email, which the sign-in rules
/// need.
pub const DEFAULT_SCOPES: &[&str] = &["email"];

/// A mistake in an [`OidcProviderConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The name is not a valid [`ProviderName`].
    #[error("invalid provider name: {0}")]
    Name(String),
    /// The issuer is not an `https://` URL (or `http://` on a loopback host).
    #[error("the issuer must be an https:// URL (http:// only on a loopback host): {0}")]
    Issuer(String),
    /// The redirect URI is not an absolute `https://` URL (or `http://` on a loopback host).
    #[error("the redirect URI must be an absolute https:// URL (http:// only on a loopback host): {0}")]
    RedirectUri(String),
    /// The client id or secret is empty.
    #[error("the client id and secret must not be empty")]
    Client,
    /// A scope is empty or has characters a scope cannot (RFC 6749 §3.3).
    #[error("invalid scope: {0:?}")]
    Scope(String),
    /// The HTTP client could not be built (no TLS roots, say).
    #[error("the HTTP client could not be built: {0}")]
    Http(String),
}

/// One provider's configuration: its name here, its issuer, this service's client id and
/// secret there, the redirect URI registered there, and the scopes asked for.
#[derive(Clone)]
pub struct OidcProviderConfig {
    name: ProviderName,
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: SecretString,
    redirect_uri: RedirectUrl,
    scopes: Vec<Scope>,
    key_refresh_interval: Duration,
}

impl fmt::Debug for OidcProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProviderConfig")
            .field("name", &self.name)
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id.as_str())
            .field("client_secret", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri.as_str())
            .field(
                "scopes",
                &self.scopes.iter().map(|scope| scope.as_str()).collect::<Vec<_>>(),
            )
            .field("key_refresh_interval", &self.key_refresh_interval)
            .finish()
    }
}

impl OidcProviderConfig {
    /// A provider named `name` (the callback path's segment: `/oauth/<name>/callback`)
    /// at `issuer` (its discovery document is `<issuer>/.well-known/openid-configuration`),
    /// with this service's `client_id` and `client_secret` there and the `redirect_uri`
    /// registered there, asking for [`DEFAULT_SCOPES`].
    ///
    /// ```
    /// use auth_oidc::OidcProviderConfig;
    ///
    /// let config = OidcProviderConfig::new("gitlab", "https://gitlab.com", "id", "secret", "https://app.example/oauth/gitlab/callback");
    /// assert!(config.is_ok());
    /// assert!(OidcProviderConfig::new("gitlab", "http://gitlab.com", "id", "secret", "https://app.example/cb").is_err());
    /// assert!(OidcProviderConfig::new("local", "http://127.0.0.1:9000", "id", "secret", "http://127.0.0.1:8000/cb").is_ok());
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an invalid name, a non-HTTPS issuer or redirect URI (HTTP only on
    /// a loopback host), or an empty client id or secret.
    pub fn new(
        name: &str,
        issuer: &str,
        client_id: &str,
        client_secret: impl Into<String>,
        redirect_uri: &str,
    ) -> Result<Self, ConfigError> {
        let name = ProviderName::new(name).map_err(|_| ConfigError::Name(name.to_owned()))?;
        if !secure_url(issuer) {
            return Err(ConfigError::Issuer(issuer.to_owned()));
        }
        // Issuers compare exactly (OpenID Connect Discovery §4.3): keep the configured form.
        let issuer = IssuerUrl::new(issuer.to_owned()).map_err(|_| ConfigError::Issuer(issuer.to_owned()))?;
        if !secure_url(redirect_uri) {
            return Err(ConfigError::RedirectUri(redirect_uri.to_owned()));
        }
        let redirect_uri =
            RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| ConfigError::RedirectUri(redirect_uri.to_owned()))?;
        let client_secret = client_secret.into();
        if client_id.is_empty() || client_secret.is_empty() {
            return Err(ConfigError::Client);
        }
        Ok(Self {
            name,
            issuer,
            client_id: ClientId::new(client_id.to_owned()),
            client_secret: SecretString::from(client_secret),
            redirect_uri,
            scopes: DEFAULT_SCOPES
                .iter()
                .map(|scope| Scope::new((*scope).to_owned()))
                .collect(),
            key_refresh_interval: KEY_REFRESH_INTERVAL,
        })
    }

    /// Fetches the provider's keys again on an ID token naming an unknown key at most once
    /// per `interval` (default [`KEY_REFRESH_INTERVAL`], 30 seconds), instead of the
    /// default. ID tokens come from the provider's token endpoint, so only the provider
    /// rotating its keys (or a misconfiguration) makes such fetches; a shorter interval
    /// picks up a rotation sooner after a refresh that came too early to see it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use auth_oidc::OidcProviderConfig;
    ///
    /// let config = OidcProviderConfig::new("gitlab", "https://gitlab.com", "id", "secret", "https://app.example/oauth/gitlab/callback")
    ///     .unwrap()
    ///     .with_key_refresh_interval(Duration::from_secs(5));
    /// assert!(format!("{config:?}").contains("key_refresh_interval: 5s"));
    /// ```
    #[must_use]
    pub fn with_key_refresh_interval(mut self, interval: Duration) -> Self {
        self.key_refresh_interval = interval;
        self
    }

    /// Asks for `scopes` (besides `openid`, always asked) instead of [`DEFAULT_SCOPES`]:
    /// keep `email`, or new identities come without the address the rules need.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Scope`] for an empty scope or one with a space, quote or backslash.
    pub fn with_scopes<I, T>(mut self, scopes: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let mut checked = Vec::new();
        for scope in scopes {
            let scope = scope.into();
            let valid = |c: char| c.is_ascii_graphic() && c != '"' && c != '\\';
            if scope.is_empty() || !scope.chars().all(valid) {
                return Err(ConfigError::Scope(scope));
            }
            if scope != "openid" {
                checked.push(Scope::new(scope));
            }
        }
        self.scopes = checked;
        Ok(self)
    }

    /// The provider's name.
    pub fn name(&self) -> &ProviderName {
        &self.name
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }
}

/// `https://`, or `http://` on a loopback host (RFC 8252 §8.3's exception, for
/// development and tests).
fn secure_url(value: &str) -> bool {
    let Ok(url) = url::Url::parse(value) else {
        return false;
    };
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(domain)) => domain == "localhost",
            None => false,
        },
        _ => false,
    }
}

/// The discovered metadata, and when discovery last ran (or failed).
#[derive(Default)]
struct Discovery {
    metadata: Option<Arc<CoreProviderMetadata>>,
    last_attempt: Option<Instant>,
}

/// An OpenID Connect provider: discovery, the authorization URL and the callback's
/// verification ([`IdentityProvider`]). Cheap to share (`Arc`); one per provider.
pub struct OidcProvider {
    config: OidcProviderConfig,
    http: HttpClient,
    discovery: RwLock<Discovery>,
    /// Serializes discoveries, so a burst of requests fetches once.
    discovering: Mutex<()>,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OidcProvider {
    /// A provider; nothing is fetched until [`discover`](Self::discover) or the first
    /// sign-in.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Http`] if the HTTP client cannot be built.
    pub fn new(config: OidcProviderConfig) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            // A redirect in a provider's answer is never followed (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|error| ConfigError::Http(error.to_string()))?;
        Ok(Self {
            config,
            http: HttpClient(client),
            discovery: RwLock::default(),
            discovering: Mutex::new(()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OidcProviderConfig {
        &self.config
    }

    /// Fetches the discovery document and keys now (a server calls it at start-up, to
    /// log a provider that is down; the first sign-in would otherwise).
    ///
    /// # Errors
    ///
    /// [`ProviderError::Unavailable`] if the provider cannot be reached or its document
    /// is invalid (or names another issuer).
    pub async fn discover(&self) -> Result<(), ProviderError> {
        self.rediscover(None).await.map(drop)
    }

    /// The cached metadata, discovered first if there is none.
    async fn metadata(&self) -> Result<Arc<CoreProviderMetadata>, ProviderError> {
        if let Some(metadata) = &self.discovery.read().await.metadata {
            return Ok(Arc::clone(metadata));
        }
        self.rediscover(Some(DISCOVERY_RETRY)).await
    }

    /// Runs discovery, unless one ran within `min_interval` (then the cached result, or
    /// unavailable at once after a failure).
    async fn rediscover(&self, min_interval: Option<Duration>) -> Result<Arc<CoreProviderMetadata>, ProviderError> {
        let _one_at_a_time = self.discovering.lock().await;
        {
            let discovery = self.discovery.read().await;
            let recent =
                min_interval.is_some_and(|interval| discovery.last_attempt.is_some_and(|at| at.elapsed() < interval));
            if recent {
                return match &discovery.metadata {
                    Some(metadata) => Ok(Arc::clone(metadata)),
                    None => Err(unavailable("discovery failed moments ago; retrying shortly")),
                };
            }
        }
        let result = CoreProviderMetadata::discover_async(self.config.issuer.clone(), &self.http).await;
        let mut discovery = self.discovery.write().await;
        discovery.last_attempt = Some(Instant::now());
        match result {
            Ok(metadata) => {
                let metadata = Arc::new(metadata);
                discovery.metadata = Some(Arc::clone(&metadata));
                tracing::info!(provider = %self.config.name, issuer = self.config.issuer(), "OpenID Connect discovery succeeded");
                Ok(metadata)
            }
            Err(error) => {
                tracing::warn!(provider = %self.config.name, issuer = self.config.issuer(), %error, "OpenID Connect discovery failed");
                match &discovery.metadata {
                    // A failed refresh keeps the metadata and keys known so far.
                    Some(metadata) => Ok(Arc::clone(metadata)),
                    None => Err(ProviderError::Unavailable(Box::new(error))),
                }
            }
        }
    }

    fn client(
        &self,
        metadata: &CoreProviderMetadata,
    ) -> openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            metadata.clone(),
            self.config.client_id.clone(),
            Some(ClientSecret::new(self.config.client_secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(self.config.redirect_uri.clone())
    }

    /// Checks the ID token of `response` against `metadata`'s keys.
    fn verify(
        &self,
        metadata: &CoreProviderMetadata,
        id_token: &openidconnect::core::CoreIdToken,
        nonce: &str,
    ) -> Result<ExternalIdentity, ClaimsVerificationError> {
        let client = self.client(metadata);
        let skew = chrono::Duration::from_std(CLOCK_SKEW).unwrap_or_else(|_| chrono::Duration::seconds(60));
        // Only the provider's asymmetric algorithms: an HS256 token is keyed with the client
        // secret, which every holder of this configuration knows, so it proves nothing
        // about the provider (Keycloak, for one, advertises HS256).
        let asymmetric = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|alg| !alg.uses_shared_secret())
            .cloned();
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(asymmetric)
            .set_issue_time_verifier_fn(move |iat| {
                if iat > chrono::Utc::now() + skew {
                    Err(format!("issued in the future ({iat})"))
                } else {
                    Ok(())
                }
            });
        let claims = id_token.claims(&verifier, &Nonce::new(nonce.to_owned()))?;
        let mut identity = ExternalIdentity::new(self.config.name.clone(), claims.subject().as_str());
        if let Some(email) = claims.email() {
            identity = identity.with_email(email.as_str(), claims.email_verified() == Some(true));
        }
        Ok(identity)
    }
}

#[async_trait::async_trait]
impl IdentityProvider for OidcProvider {
    fn name(&self) -> &ProviderName {
        &self.config.name
    }

    async fn authorization_url(&self, request: &AuthorizationRequest<'_>) -> Result<String, ProviderError> {
        let metadata = self.metadata().await?;
        let client = self.client(&metadata);
        let (state, nonce) = (request.state.to_owned(), request.nonce.to_owned());
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(request.pkce_verifier.to_owned()));
        let (url, _, _) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scopes(self.config.scopes.iter().cloned())
            .set_pkce_challenge(challenge)
            .url();
        Ok(url.into())
    }

    async fn verify_callback(
        &self,
        code: &str,
        request: &AuthorizationRequest<'_>,
    ) -> Result<ExternalIdentity, ProviderError> {
        let metadata = self.metadata().await?;
        let client = self.client(&metadata);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|error| unavailable(format!("no token endpoint: {error}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(request.pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|error| match error {
                // The provider refused the code (spent, expired, another client's, a wrong
                // verifier): the flow's fault, not an outage.
                RequestTokenError::ServerResponse(response) => {
                    ProviderError::Refused(format!("the token endpoint refused the code: {}", response.error()))
                }
                RequestTokenError::Parse(error, _) => {
                    ProviderError::Refused(format!("the token endpoint's answer does not parse: {error}"))
                }
                other => ProviderError::Unavailable(Box::new(other)),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| ProviderError::Refused("the token endpoint's answer has no id_token".into()))?;
        match self.verify(&metadata, id_token, request.nonce) {
            // A key id the cached keys lack: the provider may have rotated its keys.
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                let refreshed = self.rediscover(Some(self.config.key_refresh_interval)).await?;
                self.verify(&refreshed, id_token, request.nonce)
                    .map_err(|error| ProviderError::Refused(with_sources(&error)))
            }
            other => other.map_err(|error| ProviderError::Refused(with_sources(&error))),
        }
    }
}

/// An error and its sources, one line: "Signature verification failed: No matching key
/// found".
fn with_sources(error: &dyn StdError) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

fn unavailable(why: impl Into<String>) -> ProviderError {
    ProviderError::Unavailable(why.into().into())
}

/// openidconnect's HTTP client interface over our reqwest (its own `reqwest` feature is
/// another major version).
struct HttpClient(reqwest::Client);

/// A failed request to a provider.
#[derive(Debug, thiserror::Error)]
#[error("request to the identity provider failed: {0}")]
struct HttpError(#[source] Box<dyn StdError + Send + Sync>);

impl<'c> AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(|error| HttpError(Box::new(error)))?;
            let response = self
                .0
                .execute(request)
                .await
                .map_err(|error| HttpError(Box::new(error)))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(|error| HttpError(Box::new(error)))?;
            let mut answer = http::Response::new(body.to_vec());
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            Ok(answer)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_and_redirects_must_be_https_but_on_loopback() {
        let config = |issuer: &str, redirect: &str| OidcProviderConfig::new("p", issuer, "id", "secret", redirect);
        assert!(config("https://accounts.google.com", "https://app.example/oauth/p/callback").is_ok());
        assert!(config("http://localhost:8080/realms/x", "http://localhost:3000/cb").is_ok());
        assert!(config("http://[::1]:9000", "http://127.0.0.1:3000/cb").is_ok());
        for (issuer, redirect) in [
            ("http://accounts.google.com", "https://app.example/cb"),
            ("http://10.0.0.1", "https://app.example/cb"),
            ("ftp://accounts.google.com", "https://app.example/cb"),
            ("not a url", "https://app.example/cb"),
            ("https://accounts.google.com", "http://app.example/cb"),
            ("https://accounts.google.com", "/cb"),
        ] {
            assert!(config(issuer, redirect).is_err(), "{issuer} {redirect}");
        }
        assert_eq!(
            OidcProviderConfig::new("p", "https://a.example", "", "s", "https://b.example/cb").unwrap_err(),
            ConfigError::Client
        );
        assert!(matches!(
            OidcProviderConfig::new("Google", "https://a.example", "i", "s", "https://b.example/cb"),
            Err(ConfigError::Name(_))
        ));
    }

    #[test]
    fn scopes_are_checked_and_openid_is_implied() {
        let config = OidcProviderConfig::new("p", "https://a.example", "i", "s", "https://b.example/cb").unwrap();
        let scopes =
            |config: &OidcProviderConfig| config.scopes.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(scopes(&config), vec!["email"]);
        let more = config.clone().with_scopes(["openid", "email", "profile"]).unwrap();
        assert_eq!(scopes(&more), vec!["email", "profile"]);
        assert!(config.clone().with_scopes(["a b"]).is_err());
        assert!(config.with_scopes([""]).is_err());
    }

    #[test]
    fn the_secret_never_prints() {
        let config =
            OidcProviderConfig::new("p", "https://a.example", "i", "hunter2-secret", "https://b.example/cb").unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        let provider = OidcProvider::new(config).unwrap();
        assert!(!format!("{provider:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn a_provider_that_is_down_is_unavailable_and_retried_later_not_at_once() {
        // Port 9 on loopback: nothing listens (discard), the connection is refused.
        let config = OidcProviderConfig::new("down", "http://127.0.0.1:9", "i", "s", "http://127.0.0.1:1/cb").unwrap();
        let provider = OidcProvider::new(config).unwrap();
        let request = AuthorizationRequest::new("st_x", "n", "v".repeat(43).leak());
        assert!(matches!(
            provider.authorization_url(&request).await,
            Err(ProviderError::Unavailable(_))
        ));
        let first = provider.discovery.read().await.last_attempt;
        assert!(matches!(
            provider.authorization_url(&request).await,
            Err(ProviderError::Unavailable(_))
        ));
        assert_eq!(
            provider.discovery.read().await.last_attempt,
            first,
            "no second attempt within the retry interval"
        );
    }
}
