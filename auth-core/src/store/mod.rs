//! Storage traits: what a backend must do for [`AuthService`](crate::AuthService).
//!
//! Three base traits, which every flow needs ([`AuthStore`] names them together), and one
//! trait per optional capability (`directory`, `roles`, `purge`), which a backend
//! implements when it can; [`AuthStore`]'s documentation has the table of which flow needs
//! which. Every trait is declared with `store_trait!`, which also writes its forwarding
//! for `Arc` and `Box` once. Backends live in their own crates (`auth-store-sqlite`,
//! `auth-store-postgres`) and prove they meet these contracts by running the
//! [conformance suite](crate::conformance), one suite per trait.

/// Declares a store trait (object safe, `Send + Sync`, its methods `async` through
/// `async_trait`) and implements it for `Arc<T>` and `Box<T>` of every `T` that
/// implements it, `dyn` included, so the forwarding is written once for every trait.
///
/// Methods with a default body, optional fast paths a backend overrides when it can, come
/// last, in a `provided { ... }` group; `Arc` and `Box` forward them like the rest.
/// Methods with a default body that describe the store itself rather than read its data
/// come in a `forwarded { ... }` group after that.
///
/// Prefixed with `composed(<part>: <U|S|T>);`, it also implements the trait for
/// [`ComposedStore`] by forwarding every method to that part, except the provided ones,
/// which keep their default there: a fast path of one part may read what another holds.
/// The `forwarded` ones go to the part too.
macro_rules! store_trait {
    (
        composed($part:ident: $Part:ident);
        $(#[$attr:meta])*
        pub trait $name:ident {
            $(
                $(#[$method_attr:meta])*
                async fn $method:ident(&self $(, $arg:ident: $arg_ty:ty)* $(,)?) -> $ret:ty;
            )*
            $(
                provided {
                    $(
                        $(#[$provided_attr:meta])*
                        async fn $provided:ident(&self $(, $parg:ident: $parg_ty:ty)* $(,)?) -> $pret:ty $body:block
                    )*
                }
            )?
            $(
                forwarded {
                    $(
                        $(#[$forwarded_attr:meta])*
                        async fn $forwarded:ident(&self $(, $farg:ident: $farg_ty:ty)* $(,)?) -> $fret:ty $fbody:block
                    )*
                }
            )?
        }
    ) => {
        store_trait! {
            $(#[$attr])*
            pub trait $name {
                $(
                    $(#[$method_attr])*
                    async fn $method(&self $(, $arg: $arg_ty)*) -> $ret;
                )*
                $(
                    provided {
                        $(
                            $(#[$provided_attr])*
                            async fn $provided(&self $(, $parg: $parg_ty)*) -> $pret $body
                        )*
                    }
                )?
                $(
                    forwarded {
                        $(
                            $(#[$forwarded_attr])*
                            async fn $forwarded(&self $(, $farg: $farg_ty)*) -> $fret $fbody
                        )*
                    }
                )?
            }
        }

        #[async_trait::async_trait]
        impl<U, S, T> $name for $crate::store::ComposedStore<U, S, T>
        where
            U: Send + Sync,
            S: Send + Sync,
            T: Send + Sync,
            $Part: $name,
        {
            $(
                async fn $method(&self $(, $arg: $arg_ty)*) -> $ret {
                    self.$part.$method($($arg),*).await
                }
            )*
            $($(
                async fn $forwarded(&self $(, $farg: $farg_ty)*) -> $fret {
                    self.$part.$forwarded($($farg),*).await
                }
            )*)?
        }
    };
    (
        $(#[$attr:meta])*
        pub trait $name:ident {
            $(
                $(#[$method_attr:meta])*
                async fn $method:ident(&self $(, $arg:ident: $arg_ty:ty)* $(,)?) -> $ret:ty;
            )*
            $(
                provided {
                    $(
                        $(#[$provided_attr:meta])*
                        async fn $provided:ident(&self $(, $parg:ident: $parg_ty:ty)* $(,)?) -> $pret:ty $body:block
                    )*
                }
            )?
            $(
                forwarded {
                    $(
                        $(#[$forwarded_attr:meta])*
                        async fn $forwarded:ident(&self $(, $farg:ident: $farg_ty:ty)* $(,)?) -> $fret:ty $fbody:block
                    )*
                }
            )?
        }
    ) => {
        $(#[$attr])*
        #[async_trait::async_trait]
        pub trait $name: Send + Sync {
            $(
                $(#[$method_attr])*
                async fn $method(&self $(, $arg: $arg_ty)*) -> $ret;
            )*
            $($(
                $(#[$provided_attr])*
                async fn $provided(&self $(, $parg: $parg_ty)*) -> $pret $body
            )*)?
            $($(
                $(#[$forwarded_attr])*
                async fn $forwarded(&self $(, $farg: $farg_ty)*) -> $fret $fbody
            )*)?
        }

        #[async_trait::async_trait]
        impl<T: $name + ?Sized> $name for std::sync::Arc<T> {
            $(
                async fn $method(&self $(, $arg: $arg_ty)*) -> $ret {
                    (**self).$method($($arg),*).await
                }
            )*
            $($(
                async fn $provided(&self $(, $parg: $parg_ty)*) -> $pret {
                    (**self).$provided($($parg),*).await
                }
            )*)?
            $($(
                async fn $forwarded(&self $(, $farg: $farg_ty)*) -> $fret {
                    (**self).$forwarded($($farg),*).await
                }
            )*)?
        }

        #[async_trait::async_trait]
        impl<T: $name + ?Sized> $name for Box<T> {
            $(
                async fn $method(&self $(, $arg: $arg_ty)*) -> $ret {
                    (**self).$method($($arg),*).await
                }
            )*
            $($(
                async fn $provided(&self $(, $parg: $parg_ty)*) -> $pret {
                    (**self).$provided($($parg),*).await
                }
            )*)?
            $($(
                async fn $forwarded(&self $(, $farg: $farg_ty)*) -> $fret {
                    (**self).$forwarded($($farg),*).await
                }
            )*)?
        }
    };
}

mod audit;
mod browser;
mod composed;
mod deletion;
mod directory;
mod email_change;
mod identity;
mod memory;
mod passkey;
mod purge;
mod roles;
mod second_factor;

use time::OffsetDateTime;

pub use audit::AuditLogStore;
pub use browser::BrowserSessionStore;
pub use composed::ComposedStore;
pub use deletion::AccountDeletionStore;
pub use directory::UserDirectory;
pub use email_change::{EmailChange, EmailChangeStore, EmailConfirmation};
pub use identity::{IdentityRemoval, IdentityStore};
pub use memory::MemoryStore;
pub use passkey::{PasskeyRemoval, PasskeyStore};
pub use purge::PurgeStore;
pub use roles::RoleStore;
pub use second_factor::SecondFactorStore;

use crate::email::Email;
use crate::error::StoreError;
use crate::hash::HashedPassword;
use crate::id::{SessionId, UserId};
use crate::one_time::{OneTimeToken, TokenPurpose};
use crate::session::{RefreshTokenRecord, Session};
use crate::token::TokenHash;
use crate::user::User;

store_trait! {
    composed(users: U);
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
    pub trait UserStore {
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

        forwarded {
            /// Whether the store knows, without asking its database, that a call would fail
            /// with [`StoreError::Unavailable`] right now: `auth-store-postgres` knows it
            /// while its outage watch sees the database down. The service asks before work it
            /// would throw away if the store then failed: a registration hashes its password
            /// before its only store call, so during an outage it is refused at once instead
            /// of after a hash (which, with the CPU busy, can take seconds).
            ///
            /// Answer `true` only when a call would fail anyway (a wrong `true` refuses
            /// registrations that would have succeeded), and from memory, with no I/O. A
            /// `false` may be stale: it changes nothing. The default is `false`, never
            /// known. A store that wraps another forwards it; [`ComposedStore`] asks its
            /// `users` part, and `Arc` and `Box` the store they hold.
            ///
            /// ```
            /// use auth_core::{MemoryStore, UserStore};
            ///
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() {
            /// assert!(!MemoryStore::new().known_unavailable().await);
            /// # }
            /// ```
            async fn known_unavailable(&self) -> bool {
                false
            }
        }
    }
}

store_trait! {
    composed(sessions: S);
    /// Sessions and their refresh tokens, stored only as [`TokenHash`]es.
    ///
    /// Each refresh token belongs to one session. Rotation trades the current token for a
    /// new one atomically; a rotated token stays on record (with `used_at`) until its session
    /// is deleted by [`PurgeStore::delete_ended_sessions`], so presenting it
    /// again is recognized as reuse. Stores return sessions whatever their expiry: lifetimes
    /// are the service's to judge.
    pub trait SessionStore {
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

        provided {
            /// The account `user` and the session `session`, as
            /// [`find_user_by_id`](UserStore::find_user_by_id) and
            /// [`find_session`](Self::find_session) would return them, read in one round trip
            /// by a store that holds both: [`AuthService::authenticate`](crate::AuthService::authenticate)
            /// needs the two on every request. `Ok(None)` means the store does not read them
            /// together (the default); the service then makes the two calls itself.
            ///
            /// A store that overrides this must answer exactly what the two calls would
            /// (the conformance suite compares them), each part `None` when missing.
            ///
            /// # Errors
            ///
            /// Backend failures only.
            async fn find_user_and_session(
                &self,
                user: UserId,
                session: SessionId,
            ) -> Result<Option<(Option<User>, Option<Session>)>, StoreError> {
                let _ = (user, session);
                Ok(None)
            }
        }
    }
}

store_trait! {
    composed(one_time: T);
    /// Single-use tokens (password reset, email verification), stored only as
    /// [`TokenHash`]es. Stores return and consume tokens whatever their expiry: lifetimes are
    /// the service's to judge.
    ///
    /// Tokens are not tied to an existing account: to make every answer to a reset request
    /// cost the same, the service also stores decoys for the nil user id
    /// (`00000000-0000-0000-0000-000000000000`), which no account can have. Store them like any
    /// other token (no foreign key to accounts); they expire and are deleted like the rest.
    pub trait OneTimeTokenStore {
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
    }
}

/// What every flow of [`AuthService`](crate::AuthService) needs from storage: the three
/// base traits. Implemented for every type that implements them; `Arc<dyn AuthStore>`
/// chooses a backend at run time.
///
/// Optional capabilities are traits of their own, which a backend implements when it can;
/// their flows exist only for stores that have them, so a store without one still runs
/// everything else:
///
/// | trait | methods | what needs it |
/// |---|---|---|
/// | [`UserStore`] | 8 | every flow |
/// | [`SessionStore`] | 7 (and 1 optional) | every flow |
/// | [`OneTimeTokenStore`] | 3 | every flow |
/// | [`UserDirectory`] (optional) | 1 | [`Accounts::list_users`](crate::Accounts::list_users) |
/// | [`RoleStore`] (optional) | 3 | [`Accounts::set_roles`](crate::Accounts::set_roles), [`grant_role`](crate::Accounts::grant_role), [`revoke_role`](crate::Accounts::revoke_role) |
/// | [`PurgeStore`] (optional) | 2 | [`AuthService::purge_expired`](crate::AuthService::purge_expired) |
/// | [`SecondFactorStore`] (optional) | 13 | [`AuthService::with_totp`](crate::AuthService::with_totp) and the TOTP flows: enrolment, the login challenge, recovery codes |
/// | [`AuditLogStore`] (optional) | 3 | [`AuditLog`](crate::AuditLog), [`AuthService::events_of`](crate::AuthService::events_of), [`list_events`](crate::AuthService::list_events) |
/// | [`AccountDeletionStore`] (optional) | 1 | [`AuthService::delete_account`](crate::AuthService::delete_account), [`delete_user`](crate::AuthService::delete_user) |
/// | [`EmailChangeStore`] (optional) | 3 | [`AuthService::request_email_change`](crate::AuthService::request_email_change), [`confirm_email_change`](crate::AuthService::confirm_email_change), [`undo_email_change`](crate::AuthService::undo_email_change) |
/// | [`PasskeyStore`] (optional) | 8 | passkeys: registration, sign-in, management |
/// | [`BrowserSessionStore`] (optional) | 4 | [`AuthService::open_browser_session`](crate::AuthService::open_browser_session), [`check_browser_session`](crate::AuthService::check_browser_session), [`close_browser_session`](crate::AuthService::close_browser_session) |
///
/// Every store trait is object safe, and implemented for `Arc<T>` and `Box<T>` of any `T`
/// that implements it (`dyn` included). To choose a backend at run time with the optional
/// capabilities an application uses, name them together in a trait of its own:
///
/// ```
/// use std::sync::Arc;
/// use auth_core::{AuthStore, MemoryStore, PurgeStore, RoleStore};
///
/// trait AppStore: AuthStore + RoleStore + PurgeStore {}
/// impl<T: AuthStore + RoleStore + PurgeStore + ?Sized> AppStore for T {}
///
/// let store: Arc<dyn AppStore> = Arc::new(MemoryStore::new());
/// let base: Arc<dyn AuthStore> = Arc::new(MemoryStore::new());
/// # let _ = (store, base);
/// ```
pub trait AuthStore: UserStore + SessionStore + OneTimeTokenStore {}

impl<T: UserStore + SessionStore + OneTimeTokenStore + ?Sized> AuthStore for T {}
