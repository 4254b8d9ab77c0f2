//! Changing an account's address: an optional capability, for services that let people
//! change their email.

use time::OffsetDateTime;

use crate::email::Email;
use crate::error::StoreError;
use crate::id::{SessionId, UserId};
use crate::token::TokenHash;
use crate::user::User;

/// A requested change of an account's address, as a store keeps it (under the hashes of
/// its confirmation and undo tokens).
///
/// Built with [`EmailChange::new`]; `#[non_exhaustive]`, so a field added later breaks
/// no store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmailChange {
    /// The account.
    pub user_id: UserId,
    /// Its address when the change was asked for: where the undo link goes.
    pub old_email: Email,
    /// The address asked for: where the confirmation link goes.
    pub new_email: Email,
    /// The session that asked, if any: confirming keeps it and ends the others.
    pub session_id: Option<SessionId>,
    /// The account's token version when the change was asked for: confirming works only
    /// while it is unchanged, so a password change, a revocation or another change in
    /// between kills the request.
    pub token_version: i64,
    /// When it was asked for.
    pub requested_at: OffsetDateTime,
    /// When its confirmation link stops working.
    pub confirm_expires_at: OffsetDateTime,
    /// When its undo link stops working.
    pub undo_expires_at: OffsetDateTime,
}

impl EmailChange {
    /// A change of `user`'s address (its current one, at its current token version) to
    /// `new_email`, asked for by `session_id` at `requested_at`; confirmable until
    /// `confirm_expires_at`, undoable until `undo_expires_at`.
    ///
    /// ```
    /// use auth_core::{Email, EmailChange, User};
    /// use time::macros::datetime;
    ///
    /// let at = datetime!(2026-06-01 9:00 UTC);
    /// let user = User::new(Email::parse("ada@example.com").unwrap(), None, at);
    /// let change = EmailChange::new(
    ///     &user,
    ///     Email::parse("ada@example.org").unwrap(),
    ///     None,
    ///     at,
    ///     datetime!(2026-06-02 9:00 UTC),
    ///     datetime!(2026-06-08 9:00 UTC),
    /// );
    /// assert_eq!(change.old_email.as_str(), "ada@example.com");
    /// ```
    pub fn new(
        user: &User,
        new_email: Email,
        session_id: Option<SessionId>,
        requested_at: OffsetDateTime,
        confirm_expires_at: OffsetDateTime,
        undo_expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            user_id: user.id,
            old_email: user.email.clone(),
            new_email,
            session_id,
            token_version: user.token_version,
            requested_at,
            confirm_expires_at,
            undo_expires_at,
        }
    }
}

/// What [`EmailChangeStore::confirm_email_change`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmailConfirmation {
    /// The address was switched: the change, and the account as it is now.
    Switched {
        /// The change confirmed.
        change: EmailChange,
        /// The account with its new address.
        user: User,
    },
    /// The confirmation link had expired; nothing was changed.
    Expired(EmailChange),
    /// The account's token version moved since the request (or the account is gone);
    /// nothing was changed.
    Stale(EmailChange),
}

store_trait! {
    composed(users: U);
    /// Requested changes of accounts' addresses, under the hashes of their confirmation
    /// and undo tokens. It writes the accounts, so in a
    /// [`ComposedStore`](crate::ComposedStore) the accounts' part has it. The contract
    /// (the conformance suite checks it):
    ///
    /// - An address is unique among accounts by the database's own constraint at the
    ///   moment of a switch: of a confirmation and a registration (or another confirmation)
    ///   racing for one address, exactly one wins; the other gets
    ///   [`StoreError::DuplicateEmail`] and nothing written.
    /// - A switch is compare-and-set on the account's token version and bumps it, so of
    ///   several pending changes of one account at most one is ever confirmed, and a link
    ///   is spent by its use.
    /// - Undoing a change also voids every change of the account stored after it (a later
    ///   change cannot undo the undo), never an earlier one: stores keep the order of
    ///   insertion, not of timestamps, which may be equal.
    pub trait EmailChangeStore {
        /// Stores a requested change under the hashes of its two tokens, and deletes the
        /// account's changes whose undo window has closed by `change.requested_at`.
        ///
        /// # Errors
        ///
        /// A backend error if a hash is stored already or the account does not exist.
        async fn insert_email_change(
            &self,
            change: &EmailChange,
            confirm: &TokenHash,
            undo: &TokenHash,
        ) -> Result<(), StoreError>;

        /// Confirms the change whose confirmation token has this hash, atomically: if it
        /// is unconfirmed, not undone, unexpired at `at` and the account's token version
        /// is still the change's, sets the account's address to the new one, verified at
        /// `at`, bumps its token version and marks the change confirmed. `None` for a hash
        /// with no unconfirmed, not undone change.
        ///
        /// # Errors
        ///
        /// [`StoreError::DuplicateEmail`] if another account has the address (nothing is
        /// written, the link still works); backend failures.
        async fn confirm_email_change(
            &self,
            confirm: &TokenHash,
            at: OffsetDateTime,
        ) -> Result<Option<EmailConfirmation>, StoreError>;

        /// Undoes the change whose undo token has this hash, atomically: if it is not
        /// undone and its undo window is open at `at`, sets the account's address back to
        /// the change's old one, verified at `at`, bumps its token version, and marks this
        /// change and every change of the account stored after it undone.
        /// Returns the change and the account as it is now; `None` for an unknown hash,
        /// an undone change or a closed window.
        ///
        /// # Errors
        ///
        /// [`StoreError::DuplicateEmail`] if another account has taken the old address
        /// meanwhile (nothing is written); backend failures.
        async fn undo_email_change(
            &self,
            undo: &TokenHash,
            at: OffsetDateTime,
        ) -> Result<Option<(EmailChange, User)>, StoreError>;
    }
}
