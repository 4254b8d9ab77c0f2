//! What the example servers share, whatever their web framework: configuration from the
//! environment ([`Config`]), the access-token keys it names ([`token_keys`]), the store, the
//! rate limiter (in memory, or shared in Redis with `REDIS_URL`), the [`AuthService`] built
//! from them, the origins allowed cross-origin access ([`CorsPolicy`]), the [`Mailer`], the
//! command line (`serve`, `grant-role`), graceful shutdown, and the transport limits
//! ([`http`]).
//!
//! The HTTP API itself is `auth-http`'s [`Endpoints`](auth_http::Endpoints), which
//! [`App::endpoints`] configures, mounted by `auth-axum` or `auth-actix`.
//! `examples/axum` and `examples/actix` are two such servers, and one HTTP contract suite
//! (`examples/contract`) holds both to the same answers.
//!
//! ```no_run
//! # async fn serve_with_my_framework(_: example_server::App, _: (), _: std::net::TcpListener) -> std::io::Result<()> { Ok(()) }
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> std::process::ExitCode {
//!     example_server::main("my-server", |_| Ok(()), serve_with_my_framework).await
//! }
//! ```

#![forbid(unsafe_code)]

mod config;
mod cors;
pub mod http;
mod keys;
mod mail;

use std::future::Future;
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;

use auth_core::{
    AccountDeletionStore, Accounts, AuditLog, AuditLogStore, AuthService, AuthStore, BrowserSessionStore,
    EmailChangeStore, EncryptionKey, EventKey, IdentityProvider, IdentityStore, PasskeyStore, PasswordPolicy,
    PurgeStore, RateLimiter, Role, RoleStore, SecondFactorStore, SecretCipher, Tokens, TotpSettings, UserDirectory,
};
use auth_oidc::OidcProvider;
use auth_redis::RedisRateLimiter;
use auth_store_postgres::PostgresStore;
use auth_store_sqlite::SqliteStore;

pub use config::{Config, Database, oidc_callback_path, oidc_providers, secret_key};
pub use cors::{CORS_EXPOSED_HEADERS, CORS_MAX_AGE, CORS_METHODS, CORS_REQUEST_HEADERS, CorsPolicy};
pub use keys::{SigningKeySource, TokenKeys, derivation_secret, read_verification_keys, token_keys};
pub use mail::Mailer;

/// What the servers need from a store: the base traits and the optional capabilities
/// their routes use (the admin listing and role changes; purging for maintenance; page
/// sessions; second factors; external identities). Both stores have all of them;
/// `DATABASE_URL` picks one at run time.
pub trait ServerStore:
    AuthStore
    + UserDirectory
    + RoleStore
    + PurgeStore
    + BrowserSessionStore
    + SecondFactorStore
    + IdentityStore
    + EmailChangeStore
    + AccountDeletionStore
    + AuditLogStore
    + PasskeyStore
{
}

impl<
    T: AuthStore
        + UserDirectory
        + RoleStore
        + PurgeStore
        + BrowserSessionStore
        + SecondFactorStore
        + IdentityStore
        + EmailChangeStore
        + AccountDeletionStore
        + AuditLogStore
        + PasskeyStore
        + ?Sized,
> ServerStore for T
{
}

/// The service every handler calls, on the store `DATABASE_URL` picked at run time.
pub type Auth = AuthService<Arc<dyn ServerStore>>;

/// What a server's handlers reach.
#[derive(Clone)]
pub struct App {
    /// Every auth flow.
    pub auth: Arc<Auth>,
    /// Outgoing mail (reset and verification links).
    pub mailer: Mailer,
    /// The reverse proxy whose `X-Forwarded-For` is believed (`TRUSTED_PROXY`).
    pub trusted_proxy: Option<IpAddr>,
    /// `Secure` cookies with the `__Host-` prefix (`AUTH_COOKIE_SECURE`), for pages.
    pub secure_cookies: bool,
    /// Timeouts and the connection cap ([`http::HttpLimits`]).
    pub limits: http::HttpLimits,
    /// The site is HTTPS (`AUTH_PUBLIC_URL`): every answer carries [`auth_http::headers::HSTS`].
    pub https: bool,
    /// `AUTH_PUBLIC_URL`, without a trailing slash: the origin pages accept posts from.
    pub public_url: String,
    /// `AUTH_UI_TEMPLATES`: replacements for the pages' templates and assets.
    pub ui_templates: Option<std::path::PathBuf>,
    /// `AUTH_UI_SITE_NAME`: the name the pages show.
    pub ui_site_name: String,
    /// Keys the pages' CSRF tokens: derived (HMAC-SHA256 under a label of its own) from
    /// the secret every instance shares ([`keys::derivation_secret`]), so every instance
    /// accepts the others' forms, and no key is used for two purposes.
    pub page_key: [u8; 32],
    /// `AUTH_CORS_ORIGINS`: the origins whose scripts may call the API; `None`, no CORS
    /// headers at all (same-origin only).
    pub cors: Option<CorsPolicy>,
}

impl App {
    /// The HTTP API of this server: every route, administration included, the sign-in
    /// through the identity providers of `AUTH_OIDC_PROVIDERS` (their binding cookie
    /// `Secure` and `__Host-` on an HTTPS site, as HSTS is decided), mail sent by
    /// [`Mailer`], `X-Forwarded-For` believed from `TRUSTED_PROXY` only, bodies within
    /// `AUTH_BODY_TIMEOUT_SECS`.
    pub fn endpoints(&self) -> auth_http::Endpoints {
        let endpoints = auth_http::Endpoints::with_identity_providers(Arc::clone(&self.auth))
            .with_email_change(Arc::clone(&self.auth))
            .with_account_deletion(Arc::clone(&self.auth))
            .with_audit_log(Arc::clone(&self.auth))
            .with_passkeys(Arc::clone(&self.auth))
            .with_secure_cookies(self.https)
            .with_mail(self.mailer.clone())
            .with_body_timeout(self.limits.body_timeout);
        match self.trusted_proxy {
            Some(proxy) => endpoints.with_trusted_proxy(proxy),
            None => endpoints,
        }
    }
}

/// Runs the command line of an example server named `program`: `serve` (the default)
/// reads the environment, opens and migrates the store, calls `prepare` (what the server
/// must check before it accepts anyone, such as its page templates), binds `BIND`, logs
/// `listening address=<ip:port>` and hands the listener and what `prepare` made to
/// `serve`, which must serve until [`shutdown_signal`] resolves and then finish the
/// requests in flight; `grant-role <email> <role>` gives a role to a registered account.
///
/// Logs go through `tracing` (`RUST_LOG`, default `info`). Errors end the process with
/// status 1 and a message naming what to fix.
pub async fn main<P, Prepare, F, Fut>(program: &str, prepare: Prepare, serve: F) -> ExitCode
where
    Prepare: FnOnce(&App) -> Result<P, String>,
    F: FnOnce(App, P, std::net::TcpListener) -> Fut,
    Fut: Future<Output = std::io::Result<()>>,
{
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(program, prepare, serve).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run<P, Prepare, F, Fut>(program: &str, prepare: Prepare, serve: F) -> Result<(), String>
where
    Prepare: FnOnce(&App) -> Result<P, String>,
    F: FnOnce(App, P, std::net::TcpListener) -> Fut,
    Fut: Future<Output = std::io::Result<()>>,
{
    let config = Config::from_env()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] | ["serve"] => {
            // Before touching the database: a missing or wrong key is a configuration error.
            let keys = token_keys(&config)?;
            let derivation = derivation_secret(&config)?;
            let cipher = secret_cipher(&config, &derivation)?;
            let providers = identity_providers(&config)?;
            let store = open_store(&config).await?;
            let limiter = rate_limiter(&config).await?;
            let mailer = match &config.smtp_url {
                Some(url) => Mailer::smtp(url, config.mail_from.clone(), config.public_url.clone())?,
                None => Mailer::outbox(
                    config.outbox.clone(),
                    config.mail_from.clone(),
                    config.public_url.clone(),
                )?,
            };
            // Every event is kept in the store's audit log: a change's record in the
            // change's transaction, the rest written off the request path.
            let (audit_log, audit_writer) = AuditLog::new(Arc::clone(&store) as Arc<dyn AuditLogStore>);
            tokio::spawn(audit_writer.run());
            let auth =
                service(&config, store, keys, &derivation, cipher, limiter, &providers)?.with_audit_log(audit_log);
            // Every security notice the service makes is mailed.
            let notices = mailer.clone();
            let auth = auth.with_security_notices(move |notice| {
                auth_http::SendMail::send_later(&notices, auth_http::Mail::Notice(notice));
            });
            let app = App {
                auth: Arc::new(auth),
                mailer,
                trusted_proxy: config.trusted_proxy,
                secure_cookies: config.secure_cookies,
                limits: config.limits,
                https: config.public_url.starts_with("https://"),
                public_url: config.public_url.clone(),
                ui_templates: config.ui_templates.clone(),
                ui_site_name: config.ui_site_name.clone(),
                page_key: derived_key(&derivation, b"example-server page CSRF key v1")?,
                cors: config.cors.clone(),
            };
            match &app.cors {
                Some(cors) => tracing::info!(origins = ?cors.origins(), "cross-origin requests allowed from"),
                None => tracing::debug!("AUTH_CORS_ORIGINS is unset: no cross-origin access"),
            }
            let prepared = prepare(&app)?;
            // In the background: a provider that is down neither stops nor delays the start.
            discover_in_background(&providers);
            match config.purge_interval {
                Some(every) => {
                    tracing::info!(
                        every_secs = every.as_secs(),
                        "deleting ended sessions and spent tokens periodically"
                    );
                    let auth = Arc::clone(&app.auth);
                    tokio::spawn(async move { auth.purge_every(every).await });
                    let auth = Arc::clone(&app.auth);
                    let retention = config.audit_retention;
                    tokio::spawn(async move {
                        let mut ticks = tokio::time::interval(every);
                        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        loop {
                            ticks.tick().await;
                            if let Err(error) = auth.purge_audit_log(retention).await {
                                tracing::warn!(%error, "could not purge the audit log; trying again later");
                            }
                        }
                    });
                }
                None => tracing::warn!("ended sessions and spent tokens are never deleted (AUTH_PURGE_INTERVAL=off)"),
            }
            let listener = std::net::TcpListener::bind(config.bind)
                .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
                .map_err(|error| format!("cannot listen on {}: {error}", config.bind))?;
            let bound = listener.local_addr().map_err(|error| error.to_string())?;
            // Tests and scripts wait for this line.
            tracing::info!(address = %bound, "listening");
            serve(app, prepared, listener)
                .await
                .map_err(|error| error.to_string())?;
            tracing::info!("stopped");
            Ok(())
        }
        ["grant-role", email, role] => {
            let store = open_store(&config).await?;
            grant_role(store, email, role).await
        }
        _ => Err(format!("usage: {program} [serve] | grant-role <email> <role>")),
    }
}

/// A key for `purpose` from `secret` ([`derivation_secret`]): HMAC-SHA256(secret, purpose),
/// so no derived key is the secret itself or another purpose's key.
fn derived_key(secret: &[u8], purpose: &[u8]) -> Result<[u8; 32], String> {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret)
        .map_err(|error| format!("deriving a key: {error}"))?;
    mac.update(purpose);
    Ok(mac.finalize().into_bytes().into())
}

/// Opens the store `DATABASE_URL` names, creating or migrating its schema.
async fn open_store(config: &Config) -> Result<Arc<dyn ServerStore>, String> {
    Ok(match &config.database {
        Database::Sqlite(path) => {
            let store = SqliteStore::open(path)
                .await
                .map_err(|error| format!("cannot open {}: {error}", path.display()))?
                .with_lock_timeout(config.sqlite_lock_timeout)
                .with_inline_reads(config.sqlite_inline_reads);
            if !config.sqlite_inline_reads {
                tracing::info!("SQLite reads run on the blocking pool (AUTH_SQLITE_INLINE_READS=off)");
            }
            Arc::new(store)
        }
        Database::Postgres(url, schema) => {
            let store = PostgresStore::connect(url)
                .await
                .map_err(|error| format!("cannot connect to PostgreSQL: {error}"))?
                .with_schema(schema)
                .map_err(|error| format!("AUTH_DATABASE_SCHEMA: {error}"))?;
            store
                .migrate()
                .await
                .map_err(|error| format!("cannot migrate PostgreSQL: {error}"))?;
            Arc::new(store)
        }
    })
}

/// The rate limiter `REDIS_URL` selects, said in the log: Redis, checked to answer before
/// the server listens, or `None` for the service's own in-memory limiter.
async fn rate_limiter(config: &Config) -> Result<Option<Arc<dyn RateLimiter>>, String> {
    let Some(url) = &config.redis_url else {
        tracing::info!("rate limiter: in memory, this instance only (set REDIS_URL to share limits between instances)");
        return Ok(None);
    };
    let limiter = RedisRateLimiter::new(url, config.rate_limits.clone())
        .map_err(|error| format!("REDIS_URL: {}", with_causes(&error)))?
        .with_prefix(config.redis_prefix.clone());
    limiter
        .ping()
        .await
        .map_err(|error| format!("cannot reach Redis at {}: {}", limiter.address(), with_causes(&error)))?;
    tracing::info!(
        address = %limiter.address(),
        prefix = %limiter.prefix(),
        "rate limiter: redis, shared by every instance with this prefix"
    );
    Ok(Some(Arc::new(limiter)))
}

/// The OpenID Connect providers of `AUTH_OIDC_PROVIDERS`, said in the log (names, issuers
/// and redirect URIs; never a secret). Nothing is fetched yet.
fn identity_providers(config: &Config) -> Result<Vec<Arc<OidcProvider>>, String> {
    if config.oidc_providers.is_empty() {
        tracing::debug!("AUTH_OIDC_PROVIDERS is unset: no sign-in through identity providers");
    }
    config
        .oidc_providers
        .iter()
        .map(|provider| {
            let name = provider.name();
            tracing::info!(
                provider = %name,
                issuer = provider.issuer(),
                redirect_uri = format!("{}{}", config.public_url, oidc_callback_path(name.as_str())),
                "sign-in through OpenID Connect provider"
            );
            OidcProvider::new(provider.clone())
                .map(Arc::new)
                .map_err(|error| format!("AUTH_OIDC_PROVIDERS: {name}: {error}"))
        })
        .collect()
}

/// Fetches each provider's discovery document and keys in a task of its own, logging
/// whether it answered. One that is down delays nothing: its routes answer 503
/// `provider_unavailable` until it answers (tried again at their next use, at most every
/// few seconds).
fn discover_in_background(providers: &[Arc<OidcProvider>]) {
    for provider in providers {
        let provider = Arc::clone(provider);
        tokio::spawn(async move {
            let (name, issuer) = (provider.config().name(), provider.config().issuer());
            match provider.discover().await {
                Ok(()) => tracing::info!(provider = %name, issuer, "identity provider ready"),
                Err(error) => tracing::warn!(
                    provider = %name,
                    issuer,
                    error = %with_causes(&error),
                    "identity provider unavailable: its sign-in answers 503 provider_unavailable until it answers"
                ),
            }
        });
    }
}

/// An error and its causes, for a message that says what to fix.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Some errors repeat their source in their own message: say it once.
        let cause_text = cause.to_string();
        if !message.contains(&cause_text) {
            message.push_str(&format!(": {cause_text}"));
        }
        source = cause.source();
    }
    message
}

fn service(
    config: &Config,
    store: Arc<dyn ServerStore>,
    keys: TokenKeys,
    derivation: &[u8],
    cipher: SecretCipher,
    limiter: Option<Arc<dyn RateLimiter>>,
    providers: &[Arc<OidcProvider>],
) -> Result<Auth, String> {
    let TokenKeys { signing, verification } = keys;
    // Names only: which key signs and which still verify, never key material.
    tracing::info!(algorithm = signing.algorithm(), kid = ?signing.kid(), "access tokens signed with");
    let mut tokens = match &config.audience {
        Some(audience) => Tokens::new(signing, config.public_url.clone(), audience.clone()),
        // Plain HS256 tokens that other stacks sharing the key (the seeds' python-jose)
        // verify as they are; set AUTH_JWT_AUDIENCE to bind tokens to this API.
        None => Tokens::new(signing, config.public_url.clone(), "example-server").without_audience_claim(),
    }
    .with_ttl(config.access_token_ttl);
    for key in verification {
        tracing::info!(algorithm = key.algorithm(), kid = ?key.kid(), "access tokens also verified with");
        tokens = tokens.with_verification_key(key).map_err(|error| {
            format!("AUTH_VERIFICATION_KEYS_FILE: {error} (the signing key or another key has that key id)")
        })?;
    }
    let policy = PasswordPolicy::default().with_context_words(config.password_context_words());
    // Per-account limits are keyed by a digest of the email under the event key: one key
    // for every instance (they share the derivation secret), or a limit shared in Redis
    // would count each instance's accounts apart.
    let event_key = EventKey::new(&derived_key(derivation, b"example-server email digest key v1")?);
    let mut auth = AuthService::new(store, tokens)
        .with_rate_limits(config.rate_limits.clone())
        .with_event_key(event_key)
        .with_password_policy(policy)
        .with_totp(TotpSettings::new(config.ui_site_name.clone(), cipher))
        .with_step_up_window(config.step_up_window)
        .with_new_device_notices(config.notify_new_device)
        .with_second_factor_required_for(config.mfa_required_roles.iter().cloned());
    if let Some(limiter) = limiter {
        auth = auth.with_rate_limiter(limiter);
    }
    for provider in providers {
        auth = auth.with_identity_provider(Arc::clone(provider) as Arc<dyn IdentityProvider>);
    }
    match config.passkeys.clone() {
        Some(settings) => {
            tracing::info!(rp_id = settings.rp_id(), origin = settings.origin(), "passkeys on");
            auth = auth.with_passkeys(settings.with_rp_name(config.ui_site_name.clone()));
        }
        None => tracing::warn!(
            public_url = %config.public_url,
            "passkeys off: AUTH_PUBLIC_URL is not an https:// URL with a host name (nor http://localhost); browsers offer passkeys to secure contexts only (use http://localhost:8000 in development)"
        ),
    }
    if config.hash_threads.is_some()
        || config.hash_queue.is_some()
        || config.hash_niceness.is_some()
        || !config.hash_idle_scheduling
    {
        let threads = config
            .hash_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let mut pool = auth_core::HashPool::new(threads);
        if let Some(queue) = config.hash_queue {
            pool = pool.with_max_queue(queue);
        }
        if let Some(niceness) = config.hash_niceness {
            pool = pool.with_thread_niceness(niceness);
        }
        pool = pool.with_idle_scheduling(config.hash_idle_scheduling);
        auth = auth.with_hash_pool(pool);
    }
    Ok(auth)
}

/// The cipher of TOTP secrets at rest: `AUTH_ENCRYPTION_KEY` (and the keys being rotated
/// out); in development without it, a key derived from the shared secret, so every
/// instance opens every secret. Production refuses to start without it: a derived key
/// would change with the signing key.
fn secret_cipher(config: &Config, derivation: &[u8]) -> Result<SecretCipher, String> {
    let current = match &config.encryption_key {
        Some(key) => key.clone(),
        None if config.production => {
            return Err("AUTH_ENV=production requires AUTH_ENCRYPTION_KEY (32 bytes, base64: \
                 `openssl rand -base64 32`), which encrypts TOTP secrets at rest"
                .to_owned());
        }
        None => {
            tracing::warn!(
                "AUTH_ENCRYPTION_KEY is not set: TOTP secrets are encrypted under a key derived from the \
                 signing secret; set AUTH_ENCRYPTION_KEY in production"
            );
            EncryptionKey::new(&derived_key(derivation, b"example-server totp encryption key v1")?)
                .map_err(|error| error.to_string())?
        }
    };
    tracing::info!(
        key_id = current.id(),
        previous = config.previous_encryption_keys.len(),
        "TOTP secrets sealed with"
    );
    Ok(config
        .previous_encryption_keys
        .iter()
        .cloned()
        .fold(SecretCipher::new(current), SecretCipher::with_previous_key))
}

/// Resolves at SIGTERM or Ctrl-C, after logging that requests in flight are finishing.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Gives `role` to the account of `email`: one atomic grant (a concurrent grant or revoke
/// loses nothing), with no signing key, since nothing is issued.
async fn grant_role(store: Arc<dyn ServerStore>, email: &str, role: &str) -> Result<(), String> {
    let role = Role::new(role).map_err(|error| format!("{role}: {error}"))?;
    // An existing account's address, which may predate the rules for new ones.
    let address = auth_core::Email::parse_existing(email).map_err(|error| format!("{email}: {error}"))?;
    let accounts = Accounts::new(store);
    let user = accounts
        .store()
        .find_user_by_email(&address)
        .await
        .map_err(|error| error.to_string())?
        .ok_or_else(|| format!("no account for {}", address.as_str()))?;
    let user = accounts
        .grant_role(
            user.id,
            role.clone(),
            &auth_core::ClientInfo::new(Some("grant-role"), None),
        )
        .await
        .map_err(|error| error.to_string())?;
    println!("{} now has the role {}", user.email.as_str(), role.as_str());
    Ok(())
}
