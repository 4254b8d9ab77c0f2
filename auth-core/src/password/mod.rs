//! Plaintext passwords (held as secrets) and the policy new passwords must meet.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::Email;
use crate::email::fold_local_part;

/// A plaintext password, as the user typed it.
///
/// The text is zeroized when dropped, never printed (`Debug` shows `[redacted]`, there is
/// no `Display` or `Serialize`), and only readable through
/// [`expose_secret`](Self::expose_secret). It can be deserialized, so request bodies can
/// hold one directly.
///
/// Passwords are never trimmed or truncated. Hashing and verification use the Unicode
/// NFKC form, so the same password typed on keyboards that produce composed or
/// decomposed characters is one password.
///
/// ```
/// use auth_core::Password;
///
/// let password = Password::new("correct horse battery staple");
/// assert_eq!(format!("{password:?}"), "Password([redacted])");
/// assert_eq!(password.expose_secret(), "correct horse battery staple");
/// ```
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// Wraps `password` without altering it.
    pub fn new(password: impl Into<String>) -> Self {
        Self(SecretString::from(password.into()))
    }

    /// The password exactly as typed.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The NFKC form that is hashed and verified; zeroized on drop.
    pub(crate) fn normalized(&self) -> Zeroizing<String> {
        Zeroizing::new(self.expose_secret().nfkc().collect())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl From<String> for Password {
    fn from(password: String) -> Self {
        Self::new(password)
    }
}

impl From<&str> for Password {
    fn from(password: &str) -> Self {
        Self::new(password)
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

/// The password rule a candidate password broke. The message is meant for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyViolation {
    /// Fewer characters than the policy's minimum.
    #[error("password must be at least {min} characters long")]
    TooShort {
        /// The policy's minimum, in characters.
        min: usize,
    },
    /// More characters than the policy's maximum.
    #[error("password must be at most {max} characters long")]
    TooLong {
        /// The policy's maximum, in characters.
        max: usize,
    },
    /// The password is the account's email address or the part before its `@`.
    #[error("password must not be your email address")]
    SameAsEmail,
    /// The password is on the list of the most common passwords.
    #[error("password is too common; choose one that is harder to guess")]
    Common,
}

/// The rules a new password must meet, following NIST SP 800-63B: a minimum length, a
/// maximum length that is generous, a blocklist of common passwords, no password equal
/// to the email, and no composition rules ("one digit, one symbol") at all.
///
/// | setting | default | why |
/// |---|---|---|
/// | [`min_length`](Self::with_min_length) | 8 characters | the seeds' rule and NIST's floor when a second factor exists; NIST SP 800-63B rev 4 asks for 15 ([`NIST_SINGLE_FACTOR_MIN_LENGTH`]) when the password is the only factor |
/// | [`max_length`](Self::with_max_length) | 256 characters | NIST asks to allow at least 64; the maximum bounds hashing work and is checked before any hashing |
/// | [`common passwords`](Self::with_common_password_check) | rejected | 19,640 most common passwords (Django's list by Royce Williams), compared case-insensitively |
/// | email as password | rejected | the address or its local part, case-insensitively |
///
/// Lengths are counted in Unicode code points after NFKC normalization.
///
/// ```
/// use auth_core::{Email, Password, PasswordPolicy, PolicyViolation};
///
/// let policy = PasswordPolicy::default();
/// let email = Email::parse("alice@example.com").unwrap();
///
/// assert_eq!(policy.check(&Password::new("short"), Some(&email)), Err(PolicyViolation::TooShort { min: 8 }));
/// assert_eq!(policy.check(&Password::new("password1"), Some(&email)), Err(PolicyViolation::Common));
/// assert_eq!(policy.check(&Password::new("Alice@Example.com"), Some(&email)), Err(PolicyViolation::SameAsEmail));
/// assert!(policy.check(&Password::new("plaid-otter-sunrise"), Some(&email)).is_ok());
///
/// // Password is the only factor? NIST SP 800-63B rev 4 asks for 15 characters.
/// let strict = PasswordPolicy::default().with_min_length(auth_core::NIST_SINGLE_FACTOR_MIN_LENGTH);
/// assert_eq!(strict.check(&Password::new("plaid-otter"), None), Err(PolicyViolation::TooShort { min: 15 }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_length: usize,
    max_length: usize,
    reject_common: bool,
}

/// Default minimum length, in characters.
pub const DEFAULT_MIN_LENGTH: usize = 8;
/// Minimum length NIST SP 800-63B rev 4 requires when the password is the only factor.
pub const NIST_SINGLE_FACTOR_MIN_LENGTH: usize = 15;
/// Default maximum length, in characters.
pub const DEFAULT_MAX_LENGTH: usize = 256;

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: DEFAULT_MIN_LENGTH,
            max_length: DEFAULT_MAX_LENGTH,
            reject_common: true,
        }
    }
}

impl PasswordPolicy {
    /// Sets the minimum length in characters (at least 1). Going below
    /// [`DEFAULT_MIN_LENGTH`] weakens every account and is logged as a warning.
    #[must_use]
    pub fn with_min_length(mut self, min: usize) -> Self {
        if min < DEFAULT_MIN_LENGTH {
            tracing::warn!(min, "password policy minimum length is below 8 characters");
        }
        self.min_length = min.max(1);
        self
    }

    /// Sets the maximum length in characters. It never goes below the minimum length or
    /// below 64 (NIST SP 800-63B asks to accept at least 64).
    #[must_use]
    pub fn with_max_length(mut self, max: usize) -> Self {
        self.max_length = max.max(64);
        self
    }

    /// Turns the common-password blocklist on (the default) or off. Turning it off is
    /// logged as a warning.
    #[must_use]
    pub fn with_common_password_check(mut self, enabled: bool) -> Self {
        if !enabled {
            tracing::warn!("password policy accepts the most common passwords");
        }
        self.reject_common = enabled;
        self
    }

    /// The minimum length, in characters.
    pub fn min_length(&self) -> usize {
        self.min_length
    }

    /// The maximum length, in characters.
    pub fn max_length(&self) -> usize {
        self.max_length.max(self.min_length)
    }

    /// Checks a new password for an account with `email` (pass `None` when there is no
    /// account yet to compare with). Cheap: no hashing happens here.
    ///
    /// # Errors
    ///
    /// The first [`PolicyViolation`], checked in the order: too short, too long, same as
    /// the email, common.
    pub fn check(&self, password: &Password, email: Option<&Email>) -> Result<(), PolicyViolation> {
        if self.exceeds_max_length(password) {
            return Err(PolicyViolation::TooLong { max: self.max_length() });
        }
        let normalized = password.normalized();
        if normalized.chars().count() < self.min_length {
            return Err(PolicyViolation::TooShort { min: self.min_length });
        }
        let trimmed = normalized.trim();
        if let Some(email) = email {
            // Compared as an email (so `jürgen@bücher.de` matches the stored
            // `jürgen@xn--bcher-kva.de`) and as a local part, normalized the same way.
            let same_local = *Zeroizing::new(fold_local_part(trimmed)) == email.local_part();
            if same_local || Email::parse(trimmed).is_ok_and(|typed| typed == *email) {
                return Err(PolicyViolation::SameAsEmail);
            }
        }
        let folded = Zeroizing::new(trimmed.to_lowercase());
        if self.reject_common && is_common(&folded) {
            return Err(PolicyViolation::Common);
        }
        Ok(())
    }

    /// Whether `password` is longer than the maximum. Login uses this to refuse oversized
    /// input without hashing it; it is also the first check of [`check`](Self::check).
    pub fn exceeds_max_length(&self, password: &Password) -> bool {
        let raw = password.expose_secret();
        // NFKC shrinks text by a small bounded factor at most, so anything this large
        // is over the limit without spending time normalizing it.
        if raw.len() > self.max_length().saturating_mul(64) {
            return true;
        }
        password.normalized().chars().count() > self.max_length()
    }
}

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common-passwords.txt").lines().collect());

/// `folded` must already be lowercased and trimmed, as the bundled list is.
fn is_common(folded: &str) -> bool {
    COMMON_PASSWORDS.contains(folded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(policy: &PasswordPolicy, password: &str) -> Result<(), PolicyViolation> {
        policy.check(&Password::new(password), None)
    }

    #[test]
    fn debug_never_shows_the_password() {
        let password = Password::new("hunter2-secret");
        assert_eq!(format!("{password:?}"), "Password([redacted])");
        assert_eq!(format!("{:#?}", Some(password)), "Some(\n    Password([redacted]),\n)");
    }

    #[test]
    fn passwords_are_never_trimmed() {
        let password = Password::new("  spaced out  ");
        assert_eq!(password.expose_secret(), "  spaced out  ");
        assert_eq!(password.normalized().as_str(), "  spaced out  ");
    }

    #[test]
    fn deserializes_from_a_json_string() {
        let password: Password = serde_json::from_str("\"s3cret pass\"").unwrap();
        assert_eq!(password.expose_secret(), "s3cret pass");
    }

    #[test]
    fn the_bundled_list_has_at_least_ten_thousand_entries() {
        assert!(COMMON_PASSWORDS.len() >= 10_000, "{}", COMMON_PASSWORDS.len());
        assert!(COMMON_PASSWORDS.iter().all(|p| *p == p.trim().to_lowercase()));
    }

    #[test]
    fn minimum_length_counts_code_points_after_nfkc() {
        let policy = PasswordPolicy::default();
        assert_eq!(check(&policy, "7-chars"), Err(PolicyViolation::TooShort { min: 8 }));
        assert_eq!(check(&policy, "8-chars!"), Ok(()));
        // Eight code points, but 16 bytes.
        assert_eq!(check(&policy, "äöüßéèñç"), Ok(()));
        // Seven characters typed; the "ﬃ" ligature becomes three letters under NFKC.
        assert_eq!(check(&policy, "wa\u{FB03}le!"), Ok(()));
        // Eight code points typed, seven after NFKC composes "e" + combining acute.
        assert_eq!(
            check(&policy, "cafe\u{0301}-12"),
            Err(PolicyViolation::TooShort { min: 8 })
        );
    }

    #[test]
    fn nist_single_factor_minimum_is_one_setting() {
        let policy = PasswordPolicy::default().with_min_length(NIST_SINGLE_FACTOR_MIN_LENGTH);
        assert_eq!(
            check(&policy, "fourteen-chars"),
            Err(PolicyViolation::TooShort { min: 15 })
        );
        assert_eq!(check(&policy, "fifteen-chars!!"), Ok(()));
    }

    #[test]
    fn maximum_length_is_checked_and_cheap_for_huge_input() {
        let policy = PasswordPolicy::default();
        let at_limit: String = "abcdefgh".repeat(32);
        assert_eq!(check(&policy, &at_limit), Ok(()));
        assert_eq!(
            check(&policy, &format!("{at_limit}!")),
            Err(PolicyViolation::TooLong { max: 256 })
        );
        let huge = "a".repeat(10 * 1024 * 1024);
        assert_eq!(check(&policy, &huge), Err(PolicyViolation::TooLong { max: 256 }));
        assert!(policy.exceeds_max_length(&Password::new(huge)));
        assert_eq!(PasswordPolicy::default().with_max_length(10).max_length(), 64);
    }

    #[test]
    fn rejects_common_passwords_case_insensitively() {
        let policy = PasswordPolicy::default();
        for common in [
            "password",
            "PassWord1",
            "qwertyuiop",
            "iloveyou",
            " 12345678 ",
            "Password123",
        ] {
            assert_eq!(check(&policy, common), Err(PolicyViolation::Common), "{common:?}");
        }
        let lax = PasswordPolicy::default().with_common_password_check(false);
        assert_eq!(check(&lax, "password"), Ok(()));
    }

    #[test]
    fn rejects_the_email_and_its_local_part() {
        let policy = PasswordPolicy::default();
        let email = Email::parse("Jane.Doe@Example.com").unwrap();
        let check_for = |p: &str| policy.check(&Password::new(p), Some(&email));
        assert_eq!(check_for("jane.doe@example.com"), Err(PolicyViolation::SameAsEmail));
        assert_eq!(check_for("JANE.DOE"), Err(PolicyViolation::SameAsEmail));
        assert_eq!(check_for("jane.doe-example"), Ok(()));

        let idn = Email::parse("Jürgen.Groß@Bücher.de").unwrap();
        let check_idn = |p: &str| policy.check(&Password::new(p), Some(&idn));
        assert_eq!(check_idn("jürgen.groß@bücher.de"), Err(PolicyViolation::SameAsEmail));
        assert_eq!(
            check_idn("JÜRGEN.GROß@xn--bcher-kva.de"),
            Err(PolicyViolation::SameAsEmail)
        );
        assert_eq!(check_idn("JU\u{0308}RGEN.GROß"), Err(PolicyViolation::SameAsEmail));
    }

    #[test]
    fn no_composition_rules() {
        let policy = PasswordPolicy::default();
        assert_eq!(check(&policy, "all lowercase words here"), Ok(()));
        assert_eq!(check(&policy, "вишневый сад"), Ok(()));
        assert_eq!(check(&policy, "🦀🦀🦀🦀🦀🦀🦀🦀"), Ok(()));
    }

    #[test]
    fn error_messages_name_the_rule() {
        assert_eq!(
            PolicyViolation::TooShort { min: 8 }.to_string(),
            "password must be at least 8 characters long"
        );
        assert_eq!(
            PolicyViolation::TooLong { max: 256 }.to_string(),
            "password must be at most 256 characters long"
        );
        assert!(PolicyViolation::Common.to_string().contains("too common"));
        assert!(PolicyViolation::SameAsEmail.to_string().contains("email"));
    }

    proptest! {
        #[test]
        fn a_password_and_its_nfkc_form_get_the_same_verdict(password in "\\PC{0,30}") {
            let policy = PasswordPolicy::default();
            let normalized: String = password.nfkc().collect();
            prop_assert_eq!(check(&policy, &password), check(&policy, &normalized));
        }
    }
}
