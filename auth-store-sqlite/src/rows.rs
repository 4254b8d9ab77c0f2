//! Between SQLite rows and domain values. Rows are read raw first (rusqlite's errors),
//! then checked (a value the domain would refuse is [`StoreError::Corrupt`], never a
//! panic).

use auth_core::{
    AuthMethod, BoxError, CodeChallenge, ExternalIdentity, ExternalLoginCode, ExternalLoginPurpose, ExternalLoginState,
    HashedPassword, IdentityId, LinkedIdentity, LoginChallenge, OneTimeToken, ProviderName, ReturnPath, Session,
    SessionId, StoreError, TokenHash, TotpFactor, User, UserId, stored,
};
use rusqlite::Row;
use time::OffsetDateTime;

/// The columns of `auth_users`, in the order [`RawUser::from_row`] reads them.
pub(crate) const USER_COLUMNS: &str = "id, email, password_hash, is_active, email_verified_at, roles, token_version, \
     created_at, updated_at, requires_second_factor";

/// The columns of `auth_sessions` (aliased `s`), in the order [`RawSession::from_row`]
/// reads them.
pub(crate) const SESSION_COLUMNS: &str = "s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at, s.user_agent, s.ip, \
     s.revoked_at, s.auth_methods, coalesce(s.auth_time, s.created_at)";

/// How many columns [`USER_COLUMNS`] names.
pub(crate) const USER_COLUMN_COUNT: usize = 10;

/// How many columns [`SESSION_COLUMNS`] names: a query's own columns follow them.
pub(crate) const SESSION_COLUMN_COUNT: usize = 10;

/// The columns of `auth_totp_factors`, in the order [`RawTotpFactor::from_row`] reads them.
pub(crate) const TOTP_FACTOR_COLUMNS: &str = "user_id, sealed_secret, created_at, confirmed_at, last_used_step";

/// The columns of `auth_login_challenges` but its hash, in the order
/// [`RawLoginChallenge::from_row`] reads them.
pub(crate) const LOGIN_CHALLENGE_COLUMNS: &str =
    "user_id, created_at, expires_at, attempts, token_version, user_agent, ip, first_factor";

/// The columns of `auth_identities`, in the order [`RawIdentity::from_row`] reads them.
pub(crate) const IDENTITY_COLUMNS: &str = "id, user_id, provider, subject, email, created_at, last_used_at";

/// The columns of `auth_external_login_states` but its hash, in the order
/// [`RawLoginState::from_row`] reads them.
pub(crate) const LOGIN_STATE_COLUMNS: &str =
    "binding_hash, provider, purpose, user_id, session_id, next, created_at, expires_at, exchange_challenge";

/// The columns of `auth_external_login_codes` but its hash, in the order
/// [`RawLoginCode::from_row`] reads them.
pub(crate) const LOGIN_CODE_COLUMNS: &str = "user_id, identity_id, token_version, created_at, expires_at, binding_hash";

/// What can go wrong inside a blocking store call.
#[derive(Debug)]
pub(crate) enum DbError {
    Sqlite(rusqlite::Error),
    /// The email's unique constraint refused an insert.
    Duplicate,
    /// The (provider, subject) unique constraint of `auth_identities` refused an insert.
    DuplicateIdentity,
    /// A stored value the domain refuses.
    Corrupt(String),
    /// A stored value the domain refuses, as `auth_core::stored` decides it.
    Store(StoreError),
    /// The application's registration hook failed (the insert is rolled back).
    Hook(BoxError),
}

impl From<rusqlite::Error> for DbError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sqlite(error)
    }
}

impl From<StoreError> for DbError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl DbError {
    pub(crate) fn into_store_error(self) -> StoreError {
        match self {
            Self::Duplicate => StoreError::DuplicateEmail,
            Self::DuplicateIdentity => StoreError::DuplicateIdentity,
            Self::Corrupt(what) => StoreError::Corrupt(what),
            Self::Store(error) => error,
            Self::Hook(error) => StoreError::Backend(error),
            Self::Sqlite(error) if crate::is_unavailable(&error) => StoreError::unavailable(error),
            Self::Sqlite(error) => StoreError::backend(error),
        }
    }
}

/// Microseconds since the Unix epoch: the precision the service keeps.
pub(crate) fn micros(at: OffsetDateTime) -> Result<i64, DbError> {
    i64::try_from(at.unix_timestamp_nanos() / 1000)
        .map_err(|_| DbError::Corrupt(format!("timestamp out of range: {at}")))
}

pub(crate) fn from_micros(micros: i64) -> Result<OffsetDateTime, DbError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .map_err(|_| DbError::Corrupt(format!("timestamp out of range: {micros} µs")))
}

pub(crate) fn uuid<T: From<uuid::Uuid>>(text: &str) -> Result<T, DbError> {
    uuid::Uuid::parse_str(text)
        .map(T::from)
        .map_err(|_| DbError::Corrupt(format!("not a UUID: {text:?}")))
}

pub(crate) struct RawUser {
    id: String,
    email: String,
    password_hash: Option<String>,
    is_active: bool,
    email_verified_at: Option<i64>,
    roles: String,
    token_version: i64,
    created_at: i64,
    updated_at: i64,
    requires_second_factor: bool,
}

impl RawUser {
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Self::from_row_at(row, 0)
    }

    /// The columns from index `first` on, for a row that holds other columns before them.
    pub(crate) fn from_row_at(row: &Row<'_>, first: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(first)?,
            email: row.get(first + 1)?,
            password_hash: row.get(first + 2)?,
            is_active: row.get(first + 3)?,
            email_verified_at: row.get(first + 4)?,
            roles: row.get(first + 5)?,
            token_version: row.get(first + 6)?,
            created_at: row.get(first + 7)?,
            updated_at: row.get(first + 8)?,
            requires_second_factor: row.get(first + 9)?,
        })
    }
}

pub(crate) fn user_from_row(raw: RawUser) -> Result<User, DbError> {
    let roles = stored::roles(raw.roles.split(' ').filter(|name| !name.is_empty()))?;
    Ok(User::existing(
        uuid::<UserId>(&raw.id)?,
        stored::email(&raw.email)?,
        from_micros(raw.created_at)?,
    )
    .with_password_hash(raw.password_hash.map(HashedPassword::new))
    .with_active(raw.is_active)
    .with_email_verified_at(raw.email_verified_at.map(from_micros).transpose()?)
    .with_roles(roles)
    .with_token_version(raw.token_version)
    .with_updated_at(from_micros(raw.updated_at)?)
    .with_requires_second_factor(raw.requires_second_factor))
}

pub(crate) struct RawSession {
    id: String,
    user_id: String,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    user_agent: Option<String>,
    ip: Option<String>,
    revoked_at: Option<i64>,
    auth_methods: String,
    auth_time: i64,
}

impl RawSession {
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Self::from_row_at(row, 0)
    }

    /// The columns from index `first` on, for a row that holds other columns before them.
    pub(crate) fn from_row_at(row: &Row<'_>, first: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(first)?,
            user_id: row.get(first + 1)?,
            created_at: row.get(first + 2)?,
            last_used_at: row.get(first + 3)?,
            expires_at: row.get(first + 4)?,
            user_agent: row.get(first + 5)?,
            ip: row.get(first + 6)?,
            revoked_at: row.get(first + 7)?,
            auth_methods: row.get(first + 8)?,
            auth_time: row.get(first + 9)?,
        })
    }
}

pub(crate) fn session_from_row(raw: RawSession) -> Result<Session, DbError> {
    let ip = raw.ip.as_deref().map(stored::ip).transpose()?;
    Ok(Session::new(
        uuid::<SessionId>(&raw.id)?,
        uuid::<UserId>(&raw.user_id)?,
        from_micros(raw.created_at)?,
        from_micros(raw.expires_at)?,
    )
    .with_last_used_at(from_micros(raw.last_used_at)?)
    .with_user_agent(raw.user_agent)
    .with_ip(ip)
    .with_revoked_at(raw.revoked_at.map(from_micros).transpose()?)
    .with_auth_methods(stored::auth_methods(&raw.auth_methods)?)
    .with_auth_time(from_micros(raw.auth_time)?))
}

pub(crate) struct RawOneTimeToken {
    user_id: String,
    purpose: String,
    email: String,
    token_version: i64,
    created_at: i64,
    expires_at: i64,
}

impl RawOneTimeToken {
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            user_id: row.get(0)?,
            purpose: row.get(1)?,
            email: row.get(2)?,
            token_version: row.get(3)?,
            created_at: row.get(4)?,
            expires_at: row.get(5)?,
        })
    }
}

pub(crate) fn one_time_token_from_row(raw: RawOneTimeToken) -> Result<OneTimeToken, DbError> {
    Ok(OneTimeToken::new(
        uuid::<UserId>(&raw.user_id)?,
        stored::purpose(&raw.purpose)?,
        stored::email(&raw.email)?,
        raw.token_version,
        from_micros(raw.created_at)?,
        from_micros(raw.expires_at)?,
    ))
}

pub(crate) struct RawTotpFactor {
    user_id: String,
    sealed_secret: String,
    created_at: i64,
    confirmed_at: Option<i64>,
    last_used_step: Option<i64>,
}

impl RawTotpFactor {
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            user_id: row.get(0)?,
            sealed_secret: row.get(1)?,
            created_at: row.get(2)?,
            confirmed_at: row.get(3)?,
            last_used_step: row.get(4)?,
        })
    }
}

pub(crate) fn totp_factor_from_row(raw: RawTotpFactor) -> Result<TotpFactor, DbError> {
    Ok(TotpFactor::new(
        uuid::<UserId>(&raw.user_id)?,
        raw.sealed_secret,
        from_micros(raw.created_at)?,
    )
    .with_confirmed_at(raw.confirmed_at.map(from_micros).transpose()?)
    .with_last_used_step(raw.last_used_step))
}

pub(crate) struct RawLoginChallenge {
    user_id: String,
    created_at: i64,
    expires_at: i64,
    attempts: i64,
    token_version: i64,
    user_agent: Option<String>,
    ip: Option<String>,
    first_factor: String,
}

impl RawLoginChallenge {
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            user_id: row.get(0)?,
            created_at: row.get(1)?,
            expires_at: row.get(2)?,
            attempts: row.get(3)?,
            token_version: row.get(4)?,
            user_agent: row.get(5)?,
            ip: row.get(6)?,
            first_factor: row.get(7)?,
        })
    }
}

pub(crate) fn login_challenge_from_row(raw: RawLoginChallenge) -> Result<LoginChallenge, DbError> {
    let ip = raw.ip.as_deref().map(stored::ip).transpose()?;
    let attempts = attempts(raw.attempts)?;
    let first_factor = AuthMethod::new(raw.first_factor.as_str())
        .map_err(|_| DbError::Corrupt(format!("invalid login challenge first factor {:?}", raw.first_factor)))?;
    Ok(LoginChallenge::new(
        uuid::<UserId>(&raw.user_id)?,
        from_micros(raw.created_at)?,
        from_micros(raw.expires_at)?,
        raw.token_version,
    )
    .with_attempts(attempts)
    .with_user_agent(raw.user_agent)
    .with_ip(ip)
    .with_first_factor(first_factor))
}

/// A login challenge's stored count of codes presented.
pub(crate) fn attempts(stored: i64) -> Result<u32, DbError> {
    u32::try_from(stored).map_err(|_| DbError::Corrupt(format!("login challenge attempts out of range: {stored}")))
}

/// A stored provider name.
fn provider(text: &str) -> Result<ProviderName, DbError> {
    ProviderName::new(text).map_err(|_| DbError::Corrupt(format!("invalid provider name {text:?}")))
}

/// A stored 32-byte hash.
fn token_hash(bytes: &[u8]) -> Result<TokenHash, DbError> {
    <[u8; 32]>::try_from(bytes)
        .map(TokenHash::from_bytes)
        .map_err(|_| DbError::Corrupt(format!("a stored hash has {} bytes, not 32", bytes.len())))
}

pub(crate) struct RawIdentity {
    id: String,
    user_id: String,
    provider: String,
    subject: String,
    email: Option<String>,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl RawIdentity {
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            user_id: row.get(1)?,
            provider: row.get(2)?,
            subject: row.get(3)?,
            email: row.get(4)?,
            created_at: row.get(5)?,
            last_used_at: row.get(6)?,
        })
    }
}

pub(crate) fn identity_from_row(raw: RawIdentity) -> Result<LinkedIdentity, DbError> {
    let mut identity = ExternalIdentity::new(provider(&raw.provider)?, raw.subject);
    if let Some(email) = raw.email {
        // Whether the provider verified it is not kept: a linked identity has no use for it.
        identity = identity.with_email(email, false);
    }
    Ok(
        LinkedIdentity::new(uuid::<UserId>(&raw.user_id)?, &identity, from_micros(raw.created_at)?)
            .with_id(uuid::<IdentityId>(&raw.id)?)
            .with_last_used_at(raw.last_used_at.map(from_micros).transpose()?),
    )
}

pub(crate) struct RawLoginState {
    binding_hash: Vec<u8>,
    provider: String,
    purpose: String,
    user_id: Option<String>,
    session_id: Option<String>,
    next: String,
    created_at: i64,
    expires_at: i64,
    exchange_challenge: Option<Vec<u8>>,
}

impl RawLoginState {
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            binding_hash: row.get(0)?,
            provider: row.get(1)?,
            purpose: row.get(2)?,
            user_id: row.get(3)?,
            session_id: row.get(4)?,
            next: row.get(5)?,
            created_at: row.get(6)?,
            expires_at: row.get(7)?,
            exchange_challenge: row.get(8)?,
        })
    }
}

/// How a purpose is stored: its name, and a link's account and session.
pub(crate) type PurposeColumns = (&'static str, Option<String>, Option<String>);

/// The columns of `purpose`.
pub(crate) fn purpose_columns(purpose: &ExternalLoginPurpose) -> Result<PurposeColumns, DbError> {
    match purpose {
        ExternalLoginPurpose::SignIn => Ok(("sign_in", None, None)),
        ExternalLoginPurpose::Link { user_id, session_id } => {
            Ok(("link", Some(user_id.to_string()), Some(session_id.to_string())))
        }
        // The enum is non-exhaustive: a purpose a later auth-core adds has no column here
        // yet, and is refused rather than stored as another.
        other => Err(DbError::Store(StoreError::backend(format!(
            "this store cannot keep the external login purpose {other:?}"
        )))),
    }
}

pub(crate) fn login_state_from_row(raw: RawLoginState) -> Result<ExternalLoginState, DbError> {
    let purpose = match (raw.purpose.as_str(), raw.user_id, raw.session_id) {
        ("sign_in", None, None) => ExternalLoginPurpose::SignIn,
        ("link", Some(user_id), Some(session_id)) => ExternalLoginPurpose::Link {
            user_id: uuid::<UserId>(&user_id)?,
            session_id: uuid::<SessionId>(&session_id)?,
        },
        (purpose, ..) => {
            return Err(DbError::Corrupt(format!("invalid external login purpose {purpose:?}")));
        }
    };
    let next = ReturnPath::parse(&raw.next)
        .map_err(|_| DbError::Corrupt(format!("invalid external login return path {:?}", raw.next)))?;
    let challenge = raw
        .exchange_challenge
        .as_deref()
        .map(|digest| token_hash(digest).map(|hash| CodeChallenge::from_bytes(*hash.as_bytes())))
        .transpose()?;
    Ok(ExternalLoginState::new(
        token_hash(&raw.binding_hash)?,
        provider(&raw.provider)?,
        purpose,
        next,
        from_micros(raw.created_at)?,
        from_micros(raw.expires_at)?,
    )
    .with_exchange_challenge(challenge))
}

pub(crate) struct RawLoginCode {
    user_id: String,
    identity_id: String,
    token_version: i64,
    created_at: i64,
    expires_at: i64,
    binding_hash: Vec<u8>,
}

impl RawLoginCode {
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            user_id: row.get(0)?,
            identity_id: row.get(1)?,
            token_version: row.get(2)?,
            created_at: row.get(3)?,
            expires_at: row.get(4)?,
            binding_hash: row.get(5)?,
        })
    }
}

pub(crate) fn login_code_from_row(raw: RawLoginCode) -> Result<ExternalLoginCode, DbError> {
    Ok(ExternalLoginCode::new(
        uuid::<UserId>(&raw.user_id)?,
        uuid::<IdentityId>(&raw.identity_id)?,
        token_hash(&raw.binding_hash)?,
        raw.token_version,
        from_micros(raw.created_at)?,
        from_micros(raw.expires_at)?,
    ))
}

pub(crate) struct RawPasskey {
    id: String,
    user_id: String,
    credential_id: Vec<u8>,
    credential: String,
    counter: i64,
    name: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

/// The columns [`RawPasskey::from_row`] reads, in its order.
pub(crate) const PASSKEY_COLUMNS: &str =
    "id, user_id, credential_id, credential, counter, name, created_at, last_used_at";

impl RawPasskey {
    pub(crate) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            user_id: row.get(1)?,
            credential_id: row.get(2)?,
            credential: row.get(3)?,
            counter: row.get(4)?,
            name: row.get(5)?,
            created_at: row.get(6)?,
            last_used_at: row.get(7)?,
        })
    }
}

pub(crate) fn passkey_from_row(raw: RawPasskey) -> Result<auth_core::PasskeyCredential, DbError> {
    let counter =
        u32::try_from(raw.counter).map_err(|_| DbError::Corrupt(format!("a sign counter of {}", raw.counter)))?;
    Ok(auth_core::PasskeyCredential::new(
        uuid::<UserId>(&raw.user_id)?,
        raw.credential_id,
        raw.credential,
        counter,
        raw.name,
        from_micros(raw.created_at)?,
    )
    .with_id(uuid::<auth_core::PasskeyId>(&raw.id)?)
    .with_last_used_at(raw.last_used_at.map(from_micros).transpose()?))
}

pub(crate) struct RawPasskeyCeremony {
    kind: String,
    user_id: Option<String>,
    state: String,
    created_at: i64,
    expires_at: i64,
}

impl RawPasskeyCeremony {
    pub(crate) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            kind: row.get(0)?,
            user_id: row.get(1)?,
            state: row.get(2)?,
            created_at: row.get(3)?,
            expires_at: row.get(4)?,
        })
    }
}

pub(crate) fn passkey_ceremony_from_row(raw: RawPasskeyCeremony) -> Result<auth_core::PasskeyCeremony, DbError> {
    let kind = auth_core::PasskeyCeremonyKind::parse(&raw.kind)
        .ok_or_else(|| DbError::Corrupt(format!("a passkey ceremony of kind {:?}", raw.kind)))?;
    Ok(auth_core::PasskeyCeremony::new(
        kind,
        raw.user_id.as_deref().map(uuid::<UserId>).transpose()?,
        raw.state,
        from_micros(raw.created_at)?,
        from_micros(raw.expires_at)?,
    ))
}
