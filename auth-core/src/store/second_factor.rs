//! Second factors: an optional capability, for services whose accounts may add a TOTP
//! authenticator and recovery codes to their password.

use time::OffsetDateTime;

use crate::error::StoreError;
use crate::id::UserId;
use crate::second_factor::{LoginChallenge, TotpFactor};
use crate::token::TokenHash;
use crate::user::User;

store_trait! {
    composed(users: U);
    /// An account's TOTP factor, its recovery codes (stored only as [`TokenHash`]es) and
    /// the login challenges that wait for them (stored under the hash of their token).
    ///
    /// Confirming and removing a factor also set the account's
    /// [`requires_second_factor`](User::requires_second_factor), in the same transaction,
    /// so this capability lives with the accounts (in a [`ComposedStore`](crate::ComposedStore),
    /// the accounts' part has it). The contract every implementation keeps, beside the
    /// base traits' (the conformance suite checks it):
    ///
    /// - An account has at most one TOTP factor and at most one login challenge; recovery
    ///   codes are unique per account.
    /// - Every "at most once" is atomic: of concurrent uses of one time step, one recovery
    ///   code or one challenge, exactly one succeeds.
    /// - Deleting an account deletes its factor, codes and challenge (a foreign key with
    ///   `ON DELETE CASCADE` in SQL).
    ///
    /// Nothing here needs purging: an account has at most one challenge, which the next
    /// login replaces, and a spent one is deleted when taken; expired ones wait for the
    /// next login of their account.
    pub trait SecondFactorStore {
        /// Stores a TOTP factor as given (the service gives it unconfirmed), replacing an
        /// unconfirmed one, unless the account has a confirmed factor: then nothing is
        /// written and this returns `false`.
        ///
        /// # Errors
        ///
        /// A backend error when the account does not exist; backend failures.
        async fn insert_totp_factor(&self, factor: &TotpFactor) -> Result<bool, StoreError>;

        /// The account's TOTP factor, confirmed or not.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn find_totp_factor(&self, user: UserId) -> Result<Option<TotpFactor>, StoreError>;

        /// Atomically, if the account's factor is unconfirmed and its secret is still
        /// `sealed_secret`: confirms it at `at` with `step` as its last used step, replaces
        /// the account's recovery codes with `recovery_codes`, and sets the account's
        /// `requires_second_factor` and `updated_at`. Returns the updated account, or
        /// `None` (nothing written) otherwise.
        ///
        /// # Errors
        ///
        /// Backend failures only; nothing is written then.
        async fn confirm_totp_factor(
            &self,
            user: UserId,
            sealed_secret: &str,
            step: i64,
            recovery_codes: &[TokenHash],
            at: OffsetDateTime,
        ) -> Result<Option<User>, StoreError>;

        /// Records that a code of time step `step` was accepted: if the account's factor is
        /// confirmed and its last used step is unset or before `step`, sets it to `step`
        /// and returns `true`; otherwise (a replayed or older step) `false`. Of concurrent
        /// calls with one step, exactly one gets `true`.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool, StoreError>;

        /// Replaces the factor's sealed secret by `resealed` (the same secret under a newer
        /// key) if it is still `current`. Returns whether it did.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn reseal_totp_factor(&self, user: UserId, current: &str, resealed: &str) -> Result<bool, StoreError>;

        /// Deletes the account's TOTP factor and recovery codes, and clears its
        /// `requires_second_factor` (setting `updated_at`), atomically. Returns the updated
        /// account, or `None` if it had no factor (nothing written).
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn delete_totp_factor(&self, user: UserId, at: OffsetDateTime) -> Result<Option<User>, StoreError>;

        /// Replaces the account's recovery codes (used or not) with `recovery_codes`, if it
        /// has a confirmed factor; `at` is when (a store may keep it; the bundled ones do
        /// not need to). Returns whether it did.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn replace_recovery_codes(
            &self,
            user: UserId,
            recovery_codes: &[TokenHash],
            at: OffsetDateTime,
        ) -> Result<bool, StoreError>;

        /// Marks the account's unused recovery code with this hash used at `at`. Returns
        /// whether it did; of concurrent calls with one code, exactly one gets `true`.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn use_recovery_code(&self, user: UserId, code: &TokenHash, at: OffsetDateTime) -> Result<bool, StoreError>;

        /// How many of the account's recovery codes are unused.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn count_recovery_codes(&self, user: UserId) -> Result<u32, StoreError>;

        /// Stores a login challenge under `hash`, replacing the account's previous one (only
        /// the newest works).
        ///
        /// # Errors
        ///
        /// A backend error when the account does not exist or the hash is taken; backend
        /// failures.
        async fn insert_login_challenge(&self, hash: &TokenHash, challenge: &LoginChallenge) -> Result<(), StoreError>;

        /// The login challenge stored under `hash`, whatever its expiry or failures.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn find_login_challenge(&self, hash: &TokenHash) -> Result<Option<LoginChallenge>, StoreError>;

        /// Counts one code presented to the challenge under `hash` (before it is checked);
        /// returns its attempts now, or `None` if there is none. Concurrent calls each
        /// count, and each gets its own count (one atomic increment).
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn record_login_challenge_attempt(&self, hash: &TokenHash) -> Result<Option<u32>, StoreError>;

        /// Deletes the challenge under `hash` and returns it; `None` if there is none. Of
        /// concurrent calls with one hash, exactly one gets it.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn take_login_challenge(&self, hash: &TokenHash) -> Result<Option<LoginChallenge>, StoreError>;
    }
}
