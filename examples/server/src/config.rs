//! Configuration from the environment, with the seeds' variable names where they exist.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use auth_core::{Bucket, Limit, ProviderName, RateLimits};
use auth_oidc::{ConfigError, OidcProviderConfig};

use crate::cors::CorsPolicy;
use crate::keys::SigningKeySource;

/// Everything the server reads from its environment. Not `Debug`: it holds the secret
/// key and the SMTP credentials.
pub struct Config {
    /// `BIND`, default `127.0.0.1:8000`.
    pub bind: SocketAddr,
    /// `DATABASE_URL`, default `sqlite://auth.db`.
    pub database: Database,
    /// `AUTH_SQLITE_LOCK_TIMEOUT_MS`, default 1000: how long a SQLite call may wait for
    /// the writer and for locks held by other processes (a `sqlite3` shell, a backup)
    /// before it answers 503 `unavailable` (see `SqliteStore::with_lock_timeout`).
    pub sqlite_lock_timeout: Duration,
    /// `AUTH_SQLITE_INLINE_READS`, `on` (default) or `off`: whether SQLite reads may run
    /// in place on the request's thread (see `SqliteStore::with_inline_reads`).
    pub sqlite_inline_reads: bool,
    /// `SECRET_KEY`: the HS256 secret (at least 32 bytes); see [`secret_key`]. Beside an
    /// asymmetric signing key it only verifies (see [`token_keys`](crate::token_keys)).
    pub secret_key: Option<String>,
    /// `AUTH_SIGNING_KEY_FILE` or `AUTH_SIGNING_KEY`: an Ed25519 or P-256 private key that
    /// signs access tokens instead of `SECRET_KEY`.
    pub signing_key: Option<SigningKeySource>,
    /// `AUTH_SIGNING_KEY_ID`: the signing key's `kid`; by default its RFC 7638 thumbprint.
    pub signing_key_id: Option<String>,
    /// `AUTH_VERIFICATION_KEYS_FILE`: public keys that still verify during a rotation
    /// (see [`read_verification_keys`](crate::read_verification_keys)).
    pub verification_keys_file: Option<PathBuf>,
    /// `AUTH_CORS_ORIGINS`: the origins whose scripts may call the API; unset, none.
    pub cors: Option<CorsPolicy>,
    /// `AUTH_ENV=production` refuses the conveniences of development.
    pub production: bool,
    /// `AUTH_JWT_AUDIENCE`: the `aud` claim of access tokens. Unset by default, so that
    /// the seeds' `jwt.decode(token, SECRET_KEY, algorithms=["HS256"])` accepts them.
    pub audience: Option<String>,
    /// `ACCESS_TOKEN_EXPIRE_MINUTES`, default 15.
    pub access_token_ttl: Duration,
    /// `AUTH_MAIL_OUTBOX`, default `./outbox`.
    pub outbox: PathBuf,
    /// `SMTP_URL`: send mail through SMTP instead of the outbox.
    pub smtp_url: Option<String>,
    /// `AUTH_MAIL_FROM`, default `auth <no-reply@localhost>`.
    pub mail_from: lettre::message::Mailbox,
    /// `AUTH_PUBLIC_URL`: where links in mails point; default `http://<BIND>`.
    pub public_url: String,
    /// `AUTH_RATE_LIMITS` (`off` disables all) and `AUTH_RATE_LIMIT_<BUCKET>`.
    pub rate_limits: RateLimits,
    /// `REDIS_URL`: count the rate limits in this Redis, shared by every instance that
    /// uses it with the same prefix; unset, each instance counts in its own memory. May
    /// hold a password: never logged.
    pub redis_url: Option<String>,
    /// `AUTH_REDIS_PREFIX`, default `auth`: the prefix of the limiter's Redis keys.
    pub redis_prefix: String,
    /// `AUTH_NOTIFY_NEW_DEVICE` (`true` or `false`, default `false`): mail the owner of
    /// every sign-in from a device the account has no live session from.
    pub notify_new_device: bool,
    /// `AUTH_COOKIE_SECURE`: `Secure` cookies with the `__Host-` prefix; by default when
    /// `AUTH_PUBLIC_URL` is HTTPS. `false` for local HTTP only.
    pub secure_cookies: bool,
    /// `AUTH_HASH_THREADS` (default: one per core) and `AUTH_HASH_QUEUE` (default 128):
    /// the password-hashing pool; beyond both, logins answer 503 `busy` at once.
    pub hash_threads: Option<usize>,
    /// `AUTH_HASH_QUEUE`: see `hash_threads`.
    pub hash_queue: Option<usize>,
    /// `AUTH_HASH_NICENESS` (0 to 19, default 0): how much the hashing threads' nice
    /// value is raised above the server's (Linux), so that request handling gets a core
    /// before hashing does. See `auth_core::HashPool::with_thread_niceness`.
    pub hash_niceness: Option<u8>,
    /// `AUTH_HASH_IDLE_SCHEDULING` (`on` or `off`, default `on`): every hashing thread but
    /// the first runs only when nothing else wants its core (Linux `SCHED_IDLE`), and the
    /// first runs again what they leave stalled. See
    /// `auth_core::HashPool::with_idle_scheduling` for what it buys and costs.
    pub hash_idle_scheduling: bool,
    /// `TRUSTED_PROXY`: the address of the reverse proxy whose `X-Forwarded-For` is
    /// believed; from anyone else the header is ignored.
    pub trusted_proxy: Option<IpAddr>,
    /// `AUTH_PURGE_INTERVAL`, default `1h`: how often ended sessions and spent tokens are
    /// deleted (`off` never; `90s`, `15m`, `2h` up to `168h`).
    pub purge_interval: Option<Duration>,
    /// `AUTH_AUDIT_RETENTION_DAYS`, default 365 (1 to 3650): how long the audit log keeps
    /// a record; older ones are deleted on `AUTH_PURGE_INTERVAL`.
    pub audit_retention: Duration,
    /// `AUTH_UI_TEMPLATES`: a directory whose files replace the pages' built-in templates,
    /// stylesheet and icon of the same names (the Axum server's pages only).
    pub ui_templates: Option<PathBuf>,
    /// `AUTH_UI_SITE_NAME`, default `auth-rs`: the name in the pages' header and titles.
    pub ui_site_name: String,
    /// `AUTH_HEADER_TIMEOUT_SECS`, `AUTH_BODY_TIMEOUT_SECS`, `AUTH_MAX_CONNECTIONS`: see
    /// [`HttpLimits`](crate::http::HttpLimits).
    pub limits: crate::http::HttpLimits,
    /// `AUTH_ENCRYPTION_KEY`: 32 bytes, base64, that encrypt TOTP secrets at rest
    /// (AES-256-GCM). Required with `AUTH_ENV=production`; in development, derived from the
    /// shared secret when unset. Never logged.
    pub encryption_key: Option<auth_core::EncryptionKey>,
    /// `AUTH_ENCRYPTION_PREVIOUS_KEYS`: comma-separated keys being rotated out: they still
    /// open what they sealed, which is sealed again under the current key when next used.
    pub previous_encryption_keys: Vec<auth_core::EncryptionKey>,
    /// `AUTH_MFA_REQUIRED_ROLES`: comma-separated roles whose routes need a login with a
    /// second factor (403 `mfa_required` otherwise); none by default.
    pub mfa_required_roles: Vec<auth_core::Role>,
    /// `AUTH_STEP_UP_MINUTES`, default 10: how recent a sign-in must be for a sensitive
    /// action of an account with two-factor authentication without the code again (0:
    /// every such action asks for the code).
    pub step_up_window: Duration,
    /// `AUTH_OIDC_PROVIDERS` (comma-separated names) and, per provider, its
    /// `AUTH_OIDC_<NAME>_ISSUER`, `_CLIENT_ID`, `_CLIENT_SECRET` and optional `_SCOPES`:
    /// the OpenID Connect providers people sign in with, each redirecting back to
    /// `AUTH_PUBLIC_URL/oauth/<name>/callback` (see [`oidc_providers`]). Their client
    /// secrets are never logged.
    pub oidc_providers: Vec<OidcProviderConfig>,
    /// Passkeys: bound to `AUTH_WEBAUTHN_RP_ID` (default: `AUTH_PUBLIC_URL`'s host) at
    /// `AUTH_PUBLIC_URL`'s origin; `None` (passkeys off, with a warning) when that host is
    /// an IP address and no RP id is set.
    pub passkeys: Option<auth_core::PasskeySettings>,
}

/// Where accounts live.
#[derive(Debug, Clone)]
pub enum Database {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL, and the schema of the store (`AUTH_DATABASE_SCHEMA`, default `auth`).
    Postgres(String, String),
}

impl Config {
    /// Reads the environment.
    ///
    /// # Errors
    ///
    /// A message naming the variable that is wrong.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let bind: SocketAddr = var("BIND")
            .unwrap_or_else(|| "127.0.0.1:8000".to_owned())
            .parse()
            .map_err(|error| format!("BIND: {error}"))?;
        let url = var("DATABASE_URL").unwrap_or_else(|| "sqlite://auth.db".to_owned());
        let database = if let Some(path) = url.strip_prefix("sqlite://") {
            Database::Sqlite(PathBuf::from(path))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Database::Postgres(url, var("AUTH_DATABASE_SCHEMA").unwrap_or_else(|| "auth".to_owned()))
        } else {
            return Err("DATABASE_URL: use sqlite://<path> or postgres://...".to_owned());
        };
        let minutes: u64 = var("ACCESS_TOKEN_EXPIRE_MINUTES")
            .map_or(Ok(15), |value| value.parse())
            .map_err(|error| format!("ACCESS_TOKEN_EXPIRE_MINUTES: {error}"))?;
        if !(1..=60).contains(&minutes) {
            return Err("ACCESS_TOKEN_EXPIRE_MINUTES: between 1 and 60 (access tokens are short-lived)".to_owned());
        }
        let trusted_proxy = var("TRUSTED_PROXY")
            .map(|value| value.parse().map_err(|error| format!("TRUSTED_PROXY: {error}")))
            .transpose()?;
        let public_url = var("AUTH_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{bind}"))
            .trim_end_matches('/')
            .to_owned();
        let secure_cookies = match var("AUTH_COOKIE_SECURE").as_deref() {
            None => public_url.starts_with("https://"),
            Some("true") => true,
            Some("false") => {
                if public_url.starts_with("https://") {
                    tracing::warn!("AUTH_COOKIE_SECURE=false on an HTTPS site: session cookies may travel in clear");
                }
                false
            }
            Some(_) => return Err("AUTH_COOKIE_SECURE: true or false".to_owned()),
        };
        let notify_new_device = match var("AUTH_NOTIFY_NEW_DEVICE").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err("AUTH_NOTIFY_NEW_DEVICE: true or false".to_owned()),
        };
        let oidc_providers = oidc_providers(var, &public_url)?;
        let passkeys = passkey_settings(var("AUTH_WEBAUTHN_RP_ID").as_deref(), &public_url)?;
        let count = |name: &str| -> Result<Option<usize>, String> {
            var(name)
                .map(|value| value.parse().map_err(|error| format!("{name}: {error}")))
                .transpose()
        };
        Ok(Self {
            bind,
            secure_cookies,
            notify_new_device,
            sqlite_lock_timeout: sqlite_lock_timeout(var)?,
            sqlite_inline_reads: sqlite_inline_reads(var("AUTH_SQLITE_INLINE_READS").as_deref())?,
            hash_threads: count("AUTH_HASH_THREADS")?,
            hash_queue: count("AUTH_HASH_QUEUE")?,
            hash_niceness: hash_niceness(var("AUTH_HASH_NICENESS").as_deref())?,
            hash_idle_scheduling: hash_idle_scheduling(var("AUTH_HASH_IDLE_SCHEDULING").as_deref())?,
            database,
            secret_key: var("SECRET_KEY"),
            signing_key: SigningKeySource::from_vars(var("AUTH_SIGNING_KEY_FILE"), var("AUTH_SIGNING_KEY"))?,
            signing_key_id: var("AUTH_SIGNING_KEY_ID"),
            verification_keys_file: var("AUTH_VERIFICATION_KEYS_FILE").map(PathBuf::from),
            cors: var("AUTH_CORS_ORIGINS")
                .map(|origins| CorsPolicy::parse(&origins).map_err(|error| format!("AUTH_CORS_ORIGINS: {error}")))
                .transpose()?,
            audience: var("AUTH_JWT_AUDIENCE"),
            production: match var("AUTH_ENV").as_deref() {
                None | Some("development") => false,
                Some("production") => true,
                Some(_) => return Err("AUTH_ENV: production or development".to_owned()),
            },
            access_token_ttl: Duration::from_secs(minutes * 60),
            outbox: PathBuf::from(var("AUTH_MAIL_OUTBOX").unwrap_or_else(|| "./outbox".to_owned())),
            smtp_url: var("SMTP_URL"),
            mail_from: var("AUTH_MAIL_FROM")
                .unwrap_or_else(|| "auth <no-reply@localhost>".to_owned())
                .parse()
                .map_err(|error| format!("AUTH_MAIL_FROM: {error}"))?,
            public_url,
            passkeys,
            rate_limits: rate_limits(var)?,
            redis_url: var("REDIS_URL"),
            redis_prefix: var("AUTH_REDIS_PREFIX").unwrap_or_else(|| auth_redis::DEFAULT_PREFIX.to_owned()),
            trusted_proxy,
            purge_interval: purge_interval(var("AUTH_PURGE_INTERVAL").as_deref())?,
            audit_retention: match var("AUTH_AUDIT_RETENTION_DAYS") {
                None => Duration::from_secs(365 * 24 * 3600),
                Some(days) => match days.parse::<u64>() {
                    Ok(days @ 1..=3650) => Duration::from_secs(days * 24 * 3600),
                    _ => return Err("AUTH_AUDIT_RETENTION_DAYS: a number of days from 1 to 3650".to_owned()),
                },
            },
            ui_templates: var("AUTH_UI_TEMPLATES").map(PathBuf::from),
            ui_site_name: var("AUTH_UI_SITE_NAME").unwrap_or_else(|| "auth-rs".to_owned()),
            encryption_key: var("AUTH_ENCRYPTION_KEY")
                .map(|key| auth_core::EncryptionKey::from_base64(&key))
                .transpose()
                .map_err(|error| format!("AUTH_ENCRYPTION_KEY: {error}"))?,
            previous_encryption_keys: var("AUTH_ENCRYPTION_PREVIOUS_KEYS")
                .map(|keys| {
                    keys.split(',')
                        .filter(|key| !key.trim().is_empty())
                        .map(auth_core::EncryptionKey::from_base64)
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
                .map_err(|error| format!("AUTH_ENCRYPTION_PREVIOUS_KEYS: {error}"))?
                .unwrap_or_default(),
            mfa_required_roles: var("AUTH_MFA_REQUIRED_ROLES")
                .map(|roles| {
                    roles
                        .split(',')
                        .map(str::trim)
                        .filter(|role| !role.is_empty())
                        .map(|role| auth_core::Role::new(role).map_err(|error| format!("{role:?}: {error}")))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()
                .map_err(|error| format!("AUTH_MFA_REQUIRED_ROLES: {error}"))?
                .unwrap_or_default(),
            step_up_window: match var("AUTH_STEP_UP_MINUTES") {
                None => auth_core::DEFAULT_STEP_UP_WINDOW,
                Some(minutes) => match minutes.parse::<u64>() {
                    Ok(minutes @ 0..=1440) => Duration::from_secs(minutes * 60),
                    _ => return Err("AUTH_STEP_UP_MINUTES: whole minutes, 0 to 1440".to_owned()),
                },
            },
            limits: crate::http::HttpLimits::from_env(var)?,
            oidc_providers,
        })
    }
}

impl Config {
    /// The password policy's context words: the labels of `AUTH_PUBLIC_URL`'s host
    /// except the top-level one and `www` (`https://auth.example.test` gives `auth` and
    /// `example`), the names a user sees in the address bar and is tempted to build a
    /// password from. None for an IP address or a single-label host such as `localhost`,
    /// which name no service.
    pub fn password_context_words(&self) -> Vec<String> {
        host_labels(&self.public_url)
    }
}

fn host_labels(url: &str) -> Vec<String> {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or_default();
    let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    // A bracketed IPv6 literal holds colons of its own; it names no service anyway.
    if host_and_port.starts_with('[') {
        return Vec::new();
    }
    let host = host_and_port.split(':').next().unwrap_or_default();
    if host.parse::<IpAddr>().is_ok() {
        return Vec::new();
    }
    let labels: Vec<&str> = host.split('.').filter(|label| !label.is_empty()).collect();
    let Some((_top_level, names)) = labels.split_last() else {
        return Vec::new();
    };
    names
        .iter()
        .filter(|label| !label.eq_ignore_ascii_case("www"))
        .map(|label| label.to_ascii_lowercase())
        .collect()
}

/// The path under `AUTH_PUBLIC_URL` of a provider's callback: `/oauth/<name>/callback`,
/// where the servers mount it (at the root).
pub fn oidc_callback_path(name: &str) -> String {
    format!("/oauth/{name}/callback")
}

/// The variables of one provider: `AUTH_OIDC_<NAME>`, its name uppercased with `-` as
/// `_` (`my-idp`: `AUTH_OIDC_MY_IDP`).
fn oidc_prefix(name: &str) -> String {
    format!("AUTH_OIDC_{}", name.to_ascii_uppercase().replace('-', "_"))
}

/// The OpenID Connect providers of `AUTH_OIDC_PROVIDERS` (comma-separated names; unset or
/// empty, none), each configured by
///
/// | variable | |
/// |---|---|
/// | `AUTH_OIDC_<NAME>_ISSUER` | required: the issuer URL (`https://`, or `http://` on a loopback host) |
/// | `AUTH_OIDC_<NAME>_CLIENT_ID` | required: this service's client id there |
/// | `AUTH_OIDC_<NAME>_CLIENT_SECRET` | required: its secret (never logged) |
/// | `AUTH_OIDC_<NAME>_SCOPES` | optional, space- or comma-separated (default `email`; `openid` is always asked) |
///
/// where `<NAME>` is the name uppercased with `-` as `_`. The redirect URI to register at
/// the provider is `public_url` + `/oauth/<name>/callback`.
///
/// # Errors
///
/// A message naming the variable that is missing or wrong.
pub fn oidc_providers(
    var: impl Fn(&str) -> Option<String>,
    public_url: &str,
) -> Result<Vec<OidcProviderConfig>, String> {
    const LIST: &str = "AUTH_OIDC_PROVIDERS";
    let Some(list) = var(LIST) else {
        return Ok(Vec::new());
    };
    let mut providers: Vec<OidcProviderConfig> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        ProviderName::new(name).map_err(|error| format!("{LIST}: {name:?}: {error}"))?;
        let prefix = oidc_prefix(name);
        if let Some(other) = providers
            .iter()
            .map(|provider| provider.name().as_str())
            .find(|other| oidc_prefix(other) == prefix)
        {
            return Err(if other == name {
                format!("{LIST}: {name} is listed twice")
            } else {
                format!("{LIST}: {other} and {name} would both be configured by {prefix}_*; rename one")
            });
        }
        let required = |suffix: &str| {
            let variable = format!("{prefix}_{suffix}");
            var(&variable).ok_or_else(|| format!("{variable} is required for the identity provider {name} ({LIST})"))
        };
        let (issuer, client_id, client_secret) =
            (required("ISSUER")?, required("CLIENT_ID")?, required("CLIENT_SECRET")?);
        let redirect_uri = format!("{public_url}{}", oidc_callback_path(name));
        let mut config = OidcProviderConfig::new(name, issuer.trim(), client_id.trim(), client_secret, &redirect_uri)
            .map_err(|error| match error {
            ConfigError::Issuer(_) => format!("{prefix}_ISSUER: {error}"),
            ConfigError::RedirectUri(_) => {
                format!("AUTH_PUBLIC_URL: the redirect URI of the identity provider {name} is built from it: {error}")
            }
            ConfigError::Client => format!("{prefix}_CLIENT_ID or {prefix}_CLIENT_SECRET: {error}"),
            other => format!("{LIST}: {name}: {other}"),
        })?;
        let scopes_variable = format!("{prefix}_SCOPES");
        if let Some(scopes) = var(&scopes_variable) {
            let scopes: Vec<&str> = scopes
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|scope| !scope.is_empty())
                .collect();
            if scopes.is_empty() {
                return Err(format!(
                    "{scopes_variable}: no scope given (unset it for the default, email)"
                ));
            }
            if !scopes.contains(&"email") {
                tracing::warn!(
                    provider = name,
                    "{scopes_variable} leaves out `email`: the provider may give no address, and no account is \
                     created for a new identity without one"
                );
            }
            config = config
                .with_scopes(scopes)
                .map_err(|error| format!("{scopes_variable}: {error}"))?;
        }
        providers.push(config);
    }
    Ok(providers)
}

/// `AUTH_SQLITE_LOCK_TIMEOUT_MS`: 1 to 60,000 milliseconds, default the store's own
/// (1 s). Zero, which the store takes as "never wait", is refused here: a server would
/// answer 503 to every write that has to queue behind another. Past a minute, the client
/// or its proxy has usually given up, and the request would only hold its place.
fn sqlite_lock_timeout(var: impl Fn(&str) -> Option<String>) -> Result<Duration, String> {
    const NAME: &str = "AUTH_SQLITE_LOCK_TIMEOUT_MS";
    let Some(value) = var(NAME) else {
        return Ok(auth_store_sqlite::DEFAULT_LOCK_TIMEOUT);
    };
    let millis: u64 = value.trim().parse().map_err(|error| format!("{NAME}: {error}"))?;
    if !(1..=60_000).contains(&millis) {
        return Err(format!("{NAME}: between 1 and 60000 milliseconds"));
    }
    Ok(Duration::from_millis(millis))
}

/// `AUTH_SQLITE_INLINE_READS`: `on` (the default) or `off`.
fn sqlite_inline_reads(value: Option<&str>) -> Result<bool, String> {
    on_off("AUTH_SQLITE_INLINE_READS", value, true)
}

/// `AUTH_HASH_IDLE_SCHEDULING`: `on` (the default) or `off`.
fn hash_idle_scheduling(value: Option<&str>) -> Result<bool, String> {
    on_off("AUTH_HASH_IDLE_SCHEDULING", value, true)
}

/// A switch variable `name`: `on` or `off` (surrounding spaces ignored), `default` when unset.
fn on_off(name: &str, value: Option<&str>, default: bool) -> Result<bool, String> {
    match value.map(str::trim) {
        None => Ok(default),
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(_) => Err(format!("{name}: on or off")),
    }
}

/// `AUTH_PURGE_INTERVAL`: `off`, or a number of seconds, minutes or hours (`90s`, `15m`,
/// `1h`; a bare number is seconds), from one second to a week; `1h` when unset.
fn purge_interval(value: Option<&str>) -> Result<Option<Duration>, String> {
    const NAME: &str = "AUTH_PURGE_INTERVAL";
    let value = value.map_or("1h", str::trim);
    if value == "off" {
        tracing::warn!("{NAME}=off: ended sessions and spent tokens are never deleted");
        return Ok(None);
    }
    let (number, unit) = match value.strip_suffix(['s', 'm', 'h']) {
        Some(number) => (number, &value[number.len()..]),
        None => (value, "s"),
    };
    let count: u64 = number
        .parse()
        .map_err(|_| format!("{NAME}: `off` or a duration such as 90s, 15m or 1h"))?;
    let seconds = count.saturating_mul(match unit {
        "m" => 60,
        "h" => 3600,
        _ => 1,
    });
    if !(1..=7 * 24 * 3600).contains(&seconds) {
        return Err(format!("{NAME}: between 1s and 168h"));
    }
    Ok(Some(Duration::from_secs(seconds)))
}

/// `AUTH_RATE_LIMITS=off`, or the defaults with any `AUTH_RATE_LIMIT_<BUCKET>` set to
/// `<n>/second|minute|hour|day`, `<n>/total` or `off`.
fn rate_limits(var: impl Fn(&str) -> Option<String>) -> Result<RateLimits, String> {
    if var("AUTH_RATE_LIMITS").as_deref() == Some("off") {
        tracing::warn!("AUTH_RATE_LIMITS=off: every rate limit is disabled; for benchmarks only");
        return Ok(RateLimits::disabled());
    }
    let mut limits = RateLimits::default();
    for bucket in Bucket::ALL {
        let name = format!("AUTH_RATE_LIMIT_{}", bucket.as_str().to_uppercase());
        if let Some(value) = var(&name) {
            let limit = parse_limit(&value).map_err(|error| format!("{name}: {error}"))?;
            limits = limits.with_limit(bucket, limit);
        }
    }
    Ok(limits)
}

fn parse_limit(value: &str) -> Result<Option<Limit>, String> {
    if value == "off" {
        return Ok(None);
    }
    let (count, per) = value
        .split_once('/')
        .ok_or("expected <n>/<second|minute|hour|day|total> or off")?;
    let count: u32 = count.trim().parse().map_err(|_| "the count is not a number")?;
    if count == 0 {
        return Err("the count must be at least 1 (use off to disable)".to_owned());
    }
    let period = match per.trim() {
        "second" => Duration::from_secs(1),
        "minute" => Duration::from_secs(60),
        "hour" => Duration::from_secs(3600),
        "day" => Duration::from_secs(24 * 3600),
        "total" => return Ok(Some(Limit::total(count))),
        _ => return Err("the period is second, minute, hour, day or total".to_owned()),
    };
    Ok(Some(Limit::new(count, period)))
}

/// The signing secret: `SECRET_KEY` (at least 32 bytes), or, for SQLite outside
/// production, a random key generated once and kept beside the database file (mode 0600).
///
/// # Errors
///
/// A message saying what to set.
pub fn secret_key(config: &Config) -> Result<Vec<u8>, String> {
    if let Some(key) = &config.secret_key {
        if key.len() < 32 {
            return Err("SECRET_KEY must be at least 32 bytes (generate one: openssl rand -hex 32)".to_owned());
        }
        return Ok(key.as_bytes().to_vec());
    }
    match &config.database {
        Database::Sqlite(path) if !config.production => development_key(path),
        Database::Sqlite(_) => Err("AUTH_ENV=production requires a signing key: \
             SECRET_KEY (at least 32 bytes) or AUTH_SIGNING_KEY_FILE"
            .to_owned()),
        Database::Postgres(..) => Err("with PostgreSQL, a signing key is required, \
             SECRET_KEY (at least 32 bytes) or AUTH_SIGNING_KEY_FILE: every instance must sign with the same key"
            .to_owned()),
    }
}

fn development_key(database: &Path) -> Result<Vec<u8>, String> {
    let mut name = database.as_os_str().to_owned();
    name.push(".secret-key");
    let path = PathBuf::from(name);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let key = existing.trim().to_owned();
        if key.len() >= 32 {
            return Ok(key.into_bytes());
        }
        return Err(format!("{} holds a key shorter than 32 bytes", path.display()));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| format!("no randomness for a development key: {error}"))?;
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, &key).map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "SECRET_KEY is not set: generated a development key beside the database; set SECRET_KEY in production"
    );
    Ok(key.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// Passkeys bound to `rp_id` (default: `public_url`'s host) at `public_url`'s origin; none
/// when no RP id is given and the host is an IP address (an RP id must be a name).
fn passkey_settings(rp_id: Option<&str>, public_url: &str) -> Result<Option<auth_core::PasskeySettings>, String> {
    match rp_id {
        Some(rp_id) => auth_core::PasskeySettings::new(rp_id, public_url)
            .map(Some)
            .map_err(|error| format!("AUTH_WEBAUTHN_RP_ID: {error}")),
        None => Ok(auth_core::PasskeySettings::from_public_url(public_url).ok()),
    }
}

/// `AUTH_HASH_NICENESS`: 0 to 19.
fn hash_niceness(value: Option<&str>) -> Result<Option<u8>, String> {
    value
        .map(|value| match value.trim().parse::<u8>() {
            Ok(niceness) if niceness <= 19 => Ok(niceness),
            _ => Err(format!(
                "AUTH_HASH_NICENESS: a whole number from 0 to 19, not {value:?}"
            )),
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passkeys_are_bound_to_the_public_host_or_the_rp_id_given() {
        let own = passkey_settings(None, "https://auth.example.com").unwrap().unwrap();
        assert_eq!(
            (own.rp_id(), own.origin()),
            ("auth.example.com", "https://auth.example.com")
        );
        let shared = passkey_settings(Some("example.com"), "https://auth.example.com")
            .unwrap()
            .unwrap();
        assert_eq!(shared.rp_id(), "example.com");
        let local = passkey_settings(None, "http://localhost:8000").unwrap().unwrap();
        assert_eq!((local.rp_id(), local.origin()), ("localhost", "http://localhost:8000"));
        assert!(
            passkey_settings(None, "http://127.0.0.1:8000").unwrap().is_none(),
            "an IP: off"
        );
        assert!(
            passkey_settings(None, "http://auth.example.com").unwrap().is_none(),
            "plain HTTP but localhost: off"
        );
        let insecure = passkey_settings(Some("example.com"), "http://auth.example.com").unwrap_err();
        assert!(insecure.starts_with("AUTH_WEBAUTHN_RP_ID: "), "{insecure}");
        let foreign = passkey_settings(Some("other.com"), "https://auth.example.com").unwrap_err();
        assert!(foreign.starts_with("AUTH_WEBAUTHN_RP_ID: "), "{foreign}");
        let on_an_ip = passkey_settings(Some("example.com"), "http://127.0.0.1:8000").unwrap_err();
        assert!(on_an_ip.starts_with("AUTH_WEBAUTHN_RP_ID: "), "{on_an_ip}");
    }

    #[test]
    fn context_words_are_the_public_hosts_labels_but_the_top_level_one() {
        assert_eq!(host_labels("https://auth.example.test"), ["auth", "example"]);
        assert_eq!(host_labels("https://www.Acme.co.uk:8443/app"), ["acme", "co"]);
        assert_eq!(host_labels("https://user@login.globex.com"), ["login", "globex"]);
        for nameless in [
            "http://127.0.0.1:8000",
            "http://[::1]:8000",
            "http://localhost:8000",
            "",
        ] {
            assert!(host_labels(nameless).is_empty(), "{nameless:?}");
        }
    }

    fn providers(vars: &[(&str, &str)]) -> Result<Vec<OidcProviderConfig>, String> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        oidc_providers(
            |name| vars.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone()),
            "https://auth.example.test",
        )
    }

    const GOOD: &[(&str, &str)] = &[
        ("AUTH_OIDC_PROVIDERS", "google, my-idp"),
        ("AUTH_OIDC_GOOGLE_ISSUER", "https://accounts.google.com"),
        ("AUTH_OIDC_GOOGLE_CLIENT_ID", "1234.apps.googleusercontent.com"),
        ("AUTH_OIDC_GOOGLE_CLIENT_SECRET", "hunter2-google"),
        ("AUTH_OIDC_MY_IDP_ISSUER", "http://127.0.0.1:9000/realms/x"),
        ("AUTH_OIDC_MY_IDP_CLIENT_ID", "app"),
        ("AUTH_OIDC_MY_IDP_CLIENT_SECRET", "hunter2-idp"),
        ("AUTH_OIDC_MY_IDP_SCOPES", "email profile,groups"),
    ];

    #[test]
    fn identity_providers_come_from_their_variables() {
        assert!(providers(&[]).unwrap().is_empty());
        let configured = providers(GOOD).unwrap();
        let names: Vec<&str> = configured.iter().map(|provider| provider.name().as_str()).collect();
        assert_eq!(names, ["google", "my-idp"]);
        assert_eq!(configured[1].issuer(), "http://127.0.0.1:9000/realms/x");
        let printed = format!("{configured:?}");
        assert!(
            printed.contains("https://auth.example.test/oauth/my-idp/callback"),
            "{printed}"
        );
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn identity_provider_mistakes_name_the_variable() {
        let with = |changes: &[(&'static str, Option<&'static str>)]| {
            let mut vars: Vec<(&str, &str)> = GOOD.to_vec();
            for (name, value) in changes {
                vars.retain(|(key, _)| key != name);
                if let Some(value) = value {
                    vars.push((name, value));
                }
            }
            providers(&vars).unwrap_err()
        };
        for (changes, variable) in [
            (
                &[("AUTH_OIDC_PROVIDERS", Some("Google"))][..],
                "AUTH_OIDC_PROVIDERS: \"Google\"",
            ),
            (
                &[("AUTH_OIDC_PROVIDERS", Some("google,google"))][..],
                "AUTH_OIDC_PROVIDERS: google is listed twice",
            ),
            (
                &[("AUTH_OIDC_PROVIDERS", Some("my-idp,my_idp"))][..],
                "AUTH_OIDC_PROVIDERS: my-idp and my_idp",
            ),
            (
                &[("AUTH_OIDC_GOOGLE_ISSUER", None)][..],
                "AUTH_OIDC_GOOGLE_ISSUER is required",
            ),
            (
                &[("AUTH_OIDC_GOOGLE_CLIENT_ID", None)][..],
                "AUTH_OIDC_GOOGLE_CLIENT_ID is required",
            ),
            (
                &[("AUTH_OIDC_MY_IDP_CLIENT_SECRET", None)][..],
                "AUTH_OIDC_MY_IDP_CLIENT_SECRET is required",
            ),
            (
                &[("AUTH_OIDC_GOOGLE_ISSUER", Some("http://accounts.google.com"))][..],
                "AUTH_OIDC_GOOGLE_ISSUER: ",
            ),
            (
                &[("AUTH_OIDC_MY_IDP_SCOPES", Some("email a\"b"))][..],
                "AUTH_OIDC_MY_IDP_SCOPES: ",
            ),
            (
                &[("AUTH_OIDC_MY_IDP_SCOPES", Some(" , "))][..],
                "AUTH_OIDC_MY_IDP_SCOPES: ",
            ),
        ] {
            let error = with(changes);
            assert!(error.starts_with(variable), "{changes:?}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
        let plain_http = oidc_providers(
            |name| {
                GOOD.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            },
            "http://0.0.0.0:8000",
        )
        .unwrap_err();
        assert!(plain_http.starts_with("AUTH_PUBLIC_URL: "), "{plain_http}");
    }

    #[test]
    fn the_purge_runs_hourly_unless_told_otherwise() {
        let hours = |n: u64| Ok(Some(Duration::from_secs(n * 3600)));
        assert_eq!(purge_interval(None), hours(1));
        assert_eq!(purge_interval(Some("2h")), hours(2));
        assert_eq!(purge_interval(Some("15m")), Ok(Some(Duration::from_secs(900))));
        assert_eq!(purge_interval(Some(" 90s ")), Ok(Some(Duration::from_secs(90))));
        assert_eq!(purge_interval(Some("30")), Ok(Some(Duration::from_secs(30))));
        assert_eq!(purge_interval(Some("off")), Ok(None));
        for wrong in ["0", "0s", "169h", "1d", "h", "-1m", "1.5h", "", "an hour"] {
            let error = purge_interval(Some(wrong)).unwrap_err();
            assert!(error.starts_with("AUTH_PURGE_INTERVAL: "), "{wrong:?}: {error}");
        }
    }

    #[test]
    fn the_hashing_threads_niceness_is_0_to_19() {
        assert_eq!(hash_niceness(None), Ok(None));
        assert_eq!(hash_niceness(Some("0")), Ok(Some(0)));
        assert_eq!(hash_niceness(Some("10")), Ok(Some(10)));
        assert_eq!(hash_niceness(Some("19")), Ok(Some(19)));
        for refused in ["20", "-1", "ten", "1.5"] {
            let error = hash_niceness(Some(refused)).unwrap_err();
            assert!(error.starts_with("AUTH_HASH_NICENESS: "), "{refused}: {error}");
        }
    }

    fn lock_timeout(value: Option<&str>) -> Result<Duration, String> {
        sqlite_lock_timeout(|name| {
            assert_eq!(name, "AUTH_SQLITE_LOCK_TIMEOUT_MS");
            value.map(str::to_owned)
        })
    }

    #[test]
    fn switches_are_on_or_off_with_their_default_when_unset() {
        assert_eq!(sqlite_inline_reads(None), Ok(true), "reads in place unless turned off");
        assert_eq!(
            hash_idle_scheduling(None),
            Ok(true),
            "idle hashing beyond the first thread unless turned off"
        );
        assert_eq!(
            sqlite_inline_reads(Some("yes")),
            Err("AUTH_SQLITE_INLINE_READS: on or off".to_owned())
        );
        for default in [true, false] {
            assert_eq!(on_off("X", Some("on"), default), Ok(true));
            assert_eq!(on_off("X", Some(" off "), default), Ok(false));
        }
        for refused in ["yes", "0", "1", "OFF", "ON", ""] {
            assert_eq!(
                on_off("AUTH_HASH_IDLE_SCHEDULING", Some(refused), false),
                Err("AUTH_HASH_IDLE_SCHEDULING: on or off".to_owned()),
                "{refused}"
            );
        }
    }

    #[test]
    fn the_sqlite_lock_timeout_defaults_to_the_stores_and_is_bounded() {
        assert_eq!(lock_timeout(None), Ok(auth_store_sqlite::DEFAULT_LOCK_TIMEOUT));
        assert_eq!(lock_timeout(Some("250")), Ok(Duration::from_millis(250)));
        assert_eq!(lock_timeout(Some("60000")), Ok(Duration::from_secs(60)));
        for refused in ["0", "60001", "-1", "1s", "one"] {
            let error = lock_timeout(Some(refused)).unwrap_err();
            assert!(error.starts_with("AUTH_SQLITE_LOCK_TIMEOUT_MS: "), "{refused}: {error}");
        }
    }
}
