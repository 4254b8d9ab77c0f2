//! Storage traits: what a backend must do for [`AuthService`](crate::AuthService).
//!
//! Backends live in their own crates (`auth-store-sqlite`, `auth-store-postgres`) and
//! prove they meet these contracts by running the [conformance suite](crate::conformance).

mod memory;

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

pub use memory::MemoryStore;

use crate::email::Email;
use crate::error::StoreError;
use crate::hash::HashedPassword;
use crate::id::{SessionId, UserId};
use crate::one_time::{OneTimeToken, TokenPurpose};
use crate::role::Role;
use crate::session::{RefreshTokenRecord, Session};
use crate::token::TokenHash;
use crate::user::User;

/// Accounts, keyed by [`UserId`] and by normalized [`Email`].
///
/// The contract every implementation keeps (and the conformance suite checks):
///
/// - "Not found" is `Ok(None)` (or `Ok(false)`), never an error.
/// - Email uniqueness is enforced by the store itself, atomically: of any number of
///   concurrent inserts with one email, exactly one succeeds and the rest get
///   [`StoreError::DuplicateEmail`]. Emails are already normalized; compare them
///   byte for byte (no case folding, no `LIKE`).
/// - Every field of [`User`] round-trips unchanged, timestamps to the microsecond.
/// - Updates are atomic per call; no update is lost to a concurrent one, and
///   compare-and-set updates apply at most once.
/// - Unreachable backends report [`StoreError::Unavailable`].
/// - Stores never decide by the clock: every time they compare or store comes from the
///   caller (`at`, `before`), never from the database's own `now()`, so expiry stays the
///   service's decision and tests stay deterministic.
///
/// The trait is object safe, so an application can choose its backend at run time with
/// `Arc<dyn UserStore>`:
///
/// ```
/// use std::sync::Arc;
/// use auth_core::{MemoryStore, UserStore};
///
/// let store: Arc<dyn UserStore> = Arc::new(MemoryStore::new());
/// ```
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a new account.
    ///
    /// # Errors
    ///
    /// [`StoreError::DuplicateEmail`] if an account with `user.email` exists; nothing is
    /// written in that case.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;

    /// The account with this id.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// The account with this normalized email.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;

    /// Up to `limit` accounts with ids greater than `after` (from the first without it),
    /// in id order: ids are UUIDv7, so this is registration order, and a page resumes
    /// after the last id of the previous one (keyset pagination: stable under inserts).
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError>;

    /// Replaces the password hash with a stronger one of the *same* password, but only if
    /// the stored hash is still `current` (compare-and-set), so a rehash computed during a
    /// login cannot overwrite a password changed meanwhile. Sets `updated_at`; does not
    /// touch `token_version`. Returns whether the hash was replaced.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn upgrade_password_hash(
        &self,
        id: UserId,
        current: &HashedPassword,
        upgraded: &HashedPassword,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Sets a new password hash (a password change or reset), increments
    /// `token_version` so every access token issued before stops working, and sets
    /// `updated_at`, but only if the account's `token_version` is still
    /// `if_token_version` (compare-and-set): a password change, disable or revocation
    /// that happened since the caller read the account makes this a no-op. Returns the
    /// updated account, or `None` if there is no such account or its version moved on.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &HashedPassword,
        if_token_version: i64,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError>;

    /// Enables or disables an account and sets `updated_at`. Disabling increments
    /// `token_version`; enabling does not (tokens from before the disable stay dead).
    /// Returns the updated account, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn set_active(&self, id: UserId, active: bool, at: OffsetDateTime) -> Result<Option<User>, StoreError>;

    /// Replaces the account's roles, increments `token_version` (tokens carry roles, so
    /// earlier ones must stop working) and sets `updated_at`. Returns the updated account,
    /// or `None` if there is none.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn set_roles(
        &self,
        id: UserId,
        roles: &BTreeSet<Role>,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError>;

    /// Increments `token_version`, so every access token issued before stops working
    /// (logout everywhere), and sets `updated_at`. Returns the updated account, or `None`
    /// if there is none.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn revoke_access_tokens(&self, id: UserId, at: OffsetDateTime) -> Result<Option<User>, StoreError>;

    /// Records that the owner of `email` proved they receive mail there: sets
    /// `email_verified_at` to `at` (unless already set) and `updated_at`, but only if the
    /// account's email is still `email`. Returns the updated account, or `None` if there
    /// is no such account or its email changed.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn mark_email_verified(
        &self,
        id: UserId,
        email: &Email,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError>;
}

/// Sessions and their refresh tokens, stored only as [`TokenHash`]es.
///
/// Each refresh token belongs to one session. Rotation trades the current token for a
/// new one atomically; a rotated token stays on record (with `used_at`) until its session
/// is deleted by [`delete_ended_sessions`](Self::delete_ended_sessions), so presenting it
/// again is recognized as reuse. Stores return sessions whatever their expiry: lifetimes
/// are the service's to judge.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session and its first refresh token, in one transaction.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn insert_session(&self, session: &Session, refresh_token: &TokenHash) -> Result<(), StoreError>;

    /// The refresh token with this hash, with its session, whether or not it was used.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn find_refresh_token(&self, refresh_token: &TokenHash) -> Result<Option<RefreshTokenRecord>, StoreError>;

    /// Atomically, in one transaction: if `presented` is an unused token of `session`
    /// and the session is not revoked, marks `presented` used at `at`, stores
    /// `replacement` as the session's new token, and sets the session's `last_used_at`
    /// to `at`. Returns whether it did; of any number of concurrent rotations of one
    /// token, at most one succeeds.
    ///
    /// # Errors
    ///
    /// Backend failures only; nothing is written then.
    async fn rotate_refresh_token(
        &self,
        session: SessionId,
        presented: &TokenHash,
        replacement: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// The account's sessions that are not revoked (expired ones included; the service
    /// knows the lifetimes), ordered by `created_at`, then by `id`.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn list_sessions(&self, user: UserId) -> Result<Vec<Session>, StoreError>;

    /// The session with this id, revoked or not (`None` if there is none, or it was
    /// deleted). [`AuthService::authenticate`](crate::AuthService::authenticate) reads it
    /// on every request, so an access token ends with its session.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn find_session(&self, session: SessionId) -> Result<Option<Session>, StoreError>;

    /// Revokes one session of `user` at `at`. Returns whether a session of that user
    /// was revoked now (`false` if there is none, it is someone else's, or it was already
    /// revoked).
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn revoke_session(&self, user: UserId, session: SessionId, at: OffsetDateTime) -> Result<bool, StoreError>;

    /// Revokes every session of `user` that is not revoked yet; returns how many.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn revoke_all_sessions(&self, user: UserId, at: OffsetDateTime) -> Result<u64, StoreError>;

    /// Deletes, with their refresh tokens, the sessions that have ended: revoked at or
    /// before `ended_before`, with `expires_at` at or before `ended_before`, or last used at
    /// or before `idle_since` (the same boundaries as [`Session::is_live`]). Returns how
    /// many sessions were deleted.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn delete_ended_sessions(
        &self,
        ended_before: OffsetDateTime,
        idle_since: OffsetDateTime,
    ) -> Result<u64, StoreError>;
}

/// Single-use tokens (password reset, email verification), stored only as
/// [`TokenHash`]es. Stores return and consume tokens whatever their expiry: lifetimes are
/// the service's to judge.
///
/// Tokens are not tied to an existing account: to make every answer to a reset request
/// cost the same, the service also stores decoys for the nil user id
/// (`00000000-0000-0000-0000-000000000000`), which no account can have. Store them like any
/// other token (no foreign key to accounts); they expire and are deleted like the rest.
#[async_trait]
pub trait OneTimeTokenStore: Send + Sync {
    /// Stores a new token and atomically replaces the account's unused token with the
    /// same purpose, if any: only the newest one works, also when requests race (under
    /// PostgreSQL's default isolation a delete-then-insert does not guarantee that; an
    /// upsert on a unique index over unused tokens does).
    ///
    /// # Errors
    ///
    /// A backend error if a token with this hash already exists (nothing is changed
    /// then), and backend failures.
    async fn insert_one_time_token(&self, hash: &TokenHash, token: &OneTimeToken) -> Result<(), StoreError>;

    /// The unused token with this hash and purpose.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn find_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
    ) -> Result<Option<OneTimeToken>, StoreError>;

    /// Atomically marks the unused token with this hash and purpose as used at `at` and
    /// returns it; `None` if there is none. Of any number of concurrent calls with one
    /// token, exactly one gets it.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        at: OffsetDateTime,
    ) -> Result<Option<OneTimeToken>, StoreError>;

    /// Deletes tokens used at or before `before`, or with `expires_at` at or before
    /// `before`; returns how many.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn delete_spent_one_time_tokens(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

/// Everything [`AuthService`](crate::AuthService) needs from storage. Implemented for
/// every type that implements the three store traits; `Arc<dyn AuthStore>` chooses a
/// backend at run time.
///
/// ```
/// use std::sync::Arc;
/// use auth_core::{AuthStore, MemoryStore};
///
/// let store: Arc<dyn AuthStore> = Arc::new(MemoryStore::new());
/// ```
pub trait AuthStore: UserStore + SessionStore + OneTimeTokenStore {}

impl<T: UserStore + SessionStore + OneTimeTokenStore + ?Sized> AuthStore for T {}

#[async_trait]
impl<T: UserStore + ?Sized> UserStore for Arc<T> {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        (**self).insert_user(user).await
    }

    async fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        (**self).find_user_by_id(id).await
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        (**self).find_user_by_email(email).await
    }

    async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError> {
        (**self).list_users(after, limit).await
    }

    async fn upgrade_password_hash(
        &self,
        id: UserId,
        current: &HashedPassword,
        upgraded: &HashedPassword,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        (**self).upgrade_password_hash(id, current, upgraded, at).await
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &HashedPassword,
        if_token_version: i64,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        (**self).set_password_hash(id, hash, if_token_version, at).await
    }

    async fn set_active(&self, id: UserId, active: bool, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        (**self).set_active(id, active, at).await
    }

    async fn set_roles(
        &self,
        id: UserId,
        roles: &BTreeSet<Role>,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        (**self).set_roles(id, roles, at).await
    }

    async fn revoke_access_tokens(&self, id: UserId, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        (**self).revoke_access_tokens(id, at).await
    }

    async fn mark_email_verified(
        &self,
        id: UserId,
        email: &Email,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        (**self).mark_email_verified(id, email, at).await
    }
}

#[async_trait]
impl<T: SessionStore + ?Sized> SessionStore for Arc<T> {
    async fn insert_session(&self, session: &Session, refresh_token: &TokenHash) -> Result<(), StoreError> {
        (**self).insert_session(session, refresh_token).await
    }

    async fn find_refresh_token(&self, refresh_token: &TokenHash) -> Result<Option<RefreshTokenRecord>, StoreError> {
        (**self).find_refresh_token(refresh_token).await
    }

    async fn rotate_refresh_token(
        &self,
        session: SessionId,
        presented: &TokenHash,
        replacement: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        (**self).rotate_refresh_token(session, presented, replacement, at).await
    }

    async fn list_sessions(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        (**self).list_sessions(user).await
    }

    async fn find_session(&self, session: SessionId) -> Result<Option<Session>, StoreError> {
        (**self).find_session(session).await
    }

    async fn revoke_session(&self, user: UserId, session: SessionId, at: OffsetDateTime) -> Result<bool, StoreError> {
        (**self).revoke_session(user, session, at).await
    }

    async fn revoke_all_sessions(&self, user: UserId, at: OffsetDateTime) -> Result<u64, StoreError> {
        (**self).revoke_all_sessions(user, at).await
    }

    async fn delete_ended_sessions(
        &self,
        ended_before: OffsetDateTime,
        idle_since: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        (**self).delete_ended_sessions(ended_before, idle_since).await
    }
}

#[async_trait]
impl<T: OneTimeTokenStore + ?Sized> OneTimeTokenStore for Arc<T> {
    async fn insert_one_time_token(&self, hash: &TokenHash, token: &OneTimeToken) -> Result<(), StoreError> {
        (**self).insert_one_time_token(hash, token).await
    }

    async fn find_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
    ) -> Result<Option<OneTimeToken>, StoreError> {
        (**self).find_one_time_token(hash, purpose).await
    }

    async fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        at: OffsetDateTime,
    ) -> Result<Option<OneTimeToken>, StoreError> {
        (**self).consume_one_time_token(hash, purpose, at).await
    }

    async fn delete_spent_one_time_tokens(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        (**self).delete_spent_one_time_tokens(before).await
    }
}
