//! Passkeys (WebAuthn credentials) as the stores keep them: the registered credentials of
//! an account and the ceremonies in progress. The WebAuthn verification itself is
//! `webauthn-rs`'s, behind the `passkeys` feature; what is stored here is opaque to the
//! stores (JSON the service reads back), beside the columns they index and compare.

use std::time::Duration;

use time::OffsetDateTime;

use crate::id::{PasskeyId, UserId};

/// How long a passkey ceremony (its options, its challenge) works: 5 minutes from its
/// start, once.
pub const PASSKEY_CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);

/// The longest name a passkey may have, in characters.
pub const MAX_PASSKEY_NAME_CHARS: usize = 64;

/// The name of a passkey registered without one.
pub const DEFAULT_PASSKEY_NAME: &str = "Passkey";

/// A passkey name as its owner typed it, trimmed: 1 to [`MAX_PASSKEY_NAME_CHARS`]
/// characters, none of them a control character; `None` otherwise.
#[cfg(feature = "passkeys")]
pub(crate) fn passkey_name(typed: &str) -> Option<&str> {
    let name = typed.trim();
    let length = name.chars().count();
    ((1..=MAX_PASSKEY_NAME_CHARS).contains(&length) && !name.chars().any(char::is_control)).then_some(name)
}

/// A passkey registered to an account, as every [`PasskeyStore`](crate::PasskeyStore)
/// keeps it. Unique on [`credential_id`](Self::credential_id).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasskeyCredential {
    /// Stable identifier (what `DELETE /me/passkeys/{id}` names).
    pub id: PasskeyId,
    /// The account.
    pub user_id: UserId,
    /// The authenticator's credential id (what an assertion names), unique across
    /// accounts.
    pub credential_id: Vec<u8>,
    /// The verified credential (public key, algorithm, backup flags, transports, sign
    /// counter) as `webauthn-rs` serializes it: public data, read back to verify the next
    /// assertion.
    pub credential: String,
    /// The sign counter of [`credential`](Self::credential), kept beside it so a store
    /// can refuse to move it back (`0` for authenticators that keep none).
    pub counter: u32,
    /// The name the person chose ("Laptop", "Phone").
    pub name: String,
    /// When it was registered.
    pub created_at: OffsetDateTime,
    /// When it last signed in.
    pub last_used_at: Option<OffsetDateTime>,
}

impl PasskeyCredential {
    /// A new passkey of `user_id`, registered at `now`, never used.
    ///
    /// ```
    /// use auth_core::{PasskeyCredential, UserId};
    /// use time::macros::datetime;
    ///
    /// let now = datetime!(2026-06-01 9:00 UTC);
    /// let passkey = PasskeyCredential::new(UserId::new_at(now), vec![1, 2, 3], "{}".into(), 0, "Laptop", now);
    /// assert_eq!((passkey.name.as_str(), passkey.last_used_at), ("Laptop", None));
    /// ```
    pub fn new(
        user_id: UserId,
        credential_id: Vec<u8>,
        credential: String,
        counter: u32,
        name: impl Into<String>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id: PasskeyId::new_at(now),
            user_id,
            credential_id,
            credential,
            counter,
            name: name.into(),
            created_at: now,
            last_used_at: None,
        }
    }

    /// Sets the identifier (a store loading a row).
    #[must_use]
    pub fn with_id(mut self, id: PasskeyId) -> Self {
        self.id = id;
        self
    }

    /// Sets when it last signed in.
    #[must_use]
    pub fn with_last_used_at(mut self, last_used_at: Option<OffsetDateTime>) -> Self {
        self.last_used_at = last_used_at;
        self
    }
}

// The credential is public data, but long; the name is the person's.
impl std::fmt::Debug for PasskeyCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyCredential")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("counter", &self.counter)
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .finish_non_exhaustive()
    }
}

/// What a WebAuthn ceremony in progress is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PasskeyCeremonyKind {
    /// Registering a new passkey to the account.
    Registration,
    /// Signing in with a discoverable passkey (no account named).
    Login,
    /// A passkey as the second factor of a login challenge: bound to the challenge's
    /// account, and to its passkeys.
    SecondFactor,
}

impl PasskeyCeremonyKind {
    /// The stable name stores keep.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Login => "login",
            Self::SecondFactor => "second_factor",
        }
    }

    /// The kind named by [`as_str`](Self::as_str).
    ///
    /// ```
    /// use auth_core::PasskeyCeremonyKind;
    ///
    /// assert_eq!(PasskeyCeremonyKind::parse("login"), Some(PasskeyCeremonyKind::Login));
    /// assert_eq!(PasskeyCeremonyKind::parse("other"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "registration" => Some(Self::Registration),
            "login" => Some(Self::Login),
            "second_factor" => Some(Self::SecondFactor),
            _ => None,
        }
    }
}

/// A WebAuthn ceremony in progress, kept server side under the hash of its token until it
/// finishes (once) or expires: the challenge's state as `webauthn-rs` serializes it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasskeyCeremony {
    /// What it is for.
    pub kind: PasskeyCeremonyKind,
    /// The account it is bound to (a registration's; none for a discoverable sign-in).
    pub user_id: Option<UserId>,
    /// The challenge's state.
    pub state: String,
    /// When it began.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

impl PasskeyCeremony {
    /// A ceremony of `kind` for `user_id`, begun at `now`, working until `expires_at`.
    pub fn new(
        kind: PasskeyCeremonyKind,
        user_id: Option<UserId>,
        state: String,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            kind,
            user_id,
            state,
            created_at: now,
            expires_at,
        }
    }
}

// The state holds the challenge: not for logs.
impl std::fmt::Debug for PasskeyCeremony {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyCeremony")
            .field("kind", &self.kind)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
