//! Plaintext passwords (held as secrets) and the policy new passwords must meet.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::email::{Email, fold_local_part};

mod rules;

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
    /// The password is two or more copies of a shorter unit (`aaaaaaaa`,
    /// `passwordpassword`, `abcabcab`); see [`PasswordPolicy`] for the exact rule.
    #[error("the password repeats a shorter sequence")]
    Repetitive,
    /// The password is made of runs of consecutive characters (`abcdefgh`, `98765432`,
    /// `1234abcd`); see [`PasswordPolicy`] for the exact rule.
    #[error("the password is a sequence of consecutive characters")]
    Sequential,
    /// Without the words of the account's email and the service's
    /// [context words](PasswordPolicy::with_context_words), too little of the password is
    /// left (`alicealice!!` for `alice@example.com`); see [`PasswordPolicy`] for the exact rule.
    #[error("the password is built from the account's email or the service's name")]
    ContextWords,
}

/// The rules a new password must meet, following NIST SP 800-63B and OWASP ASVS 6.2.11:
/// a minimum length, a maximum length that is generous, a blocklist of common passwords,
/// no repetitive or sequential passwords, none built from the account's email or the
/// service's name, and no composition rules ("one digit, one symbol") at all.
///
/// | setting | default | why |
/// |---|---|---|
/// | [`min_length`](Self::with_min_length) | 8 characters | the seeds' rule and NIST's floor when a second factor exists; NIST SP 800-63B rev 4 asks for 15 ([`NIST_SINGLE_FACTOR_MIN_LENGTH`]) when the password is the only factor |
/// | [`max_length`](Self::with_max_length) | 256 characters | NIST asks to allow at least 64; the maximum bounds hashing work and is checked before any hashing |
/// | [`common passwords`](Self::with_common_password_check) | rejected | 19,640 most common passwords (Django's list by Royce Williams), compared case-insensitively |
/// | email as password | rejected | the address or its local part, case-insensitively |
/// | repetition | rejected | see below |
/// | sequences | rejected | see below |
/// | [`context words`](Self::with_context_words) | none besides the email's | see below |
///
/// Lengths are counted in Unicode code points after NFKC normalization. The rules below
/// compare the NFKC form lowercased, so case never hides a pattern, and judge the whole
/// password: a pattern inside a longer passphrase (the `abc` in `abc stands for
/// alphabet`) is no reason to refuse it.
///
/// - **Repetition** ([`PolicyViolation::Repetitive`]): the password is two or more copies
///   of a shorter unit, the last copy possibly cut short; that is, it has a period of at
///   most half its length. `aaaaaaaa`, `passwordpassword`, `abcabcab` and sixteen spaces
///   are refused; `abcab` and `passwordpasswor` are not repetitions.
/// - **Sequences** ([`PolicyViolation::Sequential`]): the password splits entirely into
///   runs of at least 3 characters, each stepping by +1 or by −1 in code point, with digits
///   also wrapping around (`7890123`, `3210987`). Runs may change direction or kind:
///   `abcdefgh`, `zyxwvuts`, `123456789012345`, `1234abcd` and `abccba` are refused;
///   `Tr0ub4dor&3xyzzy` is not (its `xyz` is only part of it).
/// - **Context words** ([`PolicyViolation::ContextWords`]): the words are the service's
///   [context words](Self::with_context_words) and, when the account's email is known,
///   its local part, the local part's pieces split on `.` `_` `-` `+`, and the domain's
///   labels (in Unicode) except the top-level one; words under 3 characters are ignored.
///   Every occurrence of every word is removed from the password; if any was, and what is
///   left is shorter than the minimum length, repetitive, sequential or (with the
///   blocklist on) a common password, the password is refused. For `alice@example.com`,
///   `alicealice!!`, `alice!!!!!!!!` (its `!!!!!!!!` is a repetition), `Alice12345678`
///   and `examplepassword` (`password` is common) are refused, while `alice in
///   wonderland` keeps more than 8 characters of its own and is accepted.
///
/// The checks run in this order and the first broken rule is reported: too long, too
/// short, same as the email, common, repetitive, sequential, context words.
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
/// assert_eq!(policy.check(&Password::new("passwordpassword"), Some(&email)), Err(PolicyViolation::Repetitive));
/// assert_eq!(policy.check(&Password::new("1234abcd5678"), Some(&email)), Err(PolicyViolation::Sequential));
/// assert_eq!(policy.check(&Password::new("alicealice!!"), Some(&email)), Err(PolicyViolation::ContextWords));
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
    /// Folded as passwords are, at least 3 characters each.
    context_words: Vec<String>,
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
            context_words: Vec::new(),
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

    /// Sets the service's context words, replacing any set before: names a password must
    /// not be built from, such as the service's or the company's name (`"acme"`) or the
    /// site's host name. Each word is compared case-insensitively, in NFKC form, as given
    /// (pass `"acme"` and `"mail"`, not `"acme mail"`, to refuse either); words shorter
    /// than 3 characters are ignored. None by default: the service's name is not
    /// something the library can guess. See the type documentation for the rule.
    ///
    /// ```
    /// use auth_core::{Password, PasswordPolicy, PolicyViolation};
    ///
    /// let policy = PasswordPolicy::default().with_context_words(["Acme", "ac"]);
    /// assert_eq!(policy.context_words(), ["acme"]);
    /// assert_eq!(policy.check(&Password::new("ACME-2024!"), None), Err(PolicyViolation::ContextWords));
    /// assert!(policy.check(&Password::new("acme makes anvils"), None).is_ok());
    /// ```
    #[must_use]
    pub fn with_context_words(mut self, words: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut folded: Vec<String> = words
            .into_iter()
            .filter_map(|word| rules::fold_word(&word.into()))
            .collect();
        folded.sort();
        folded.dedup();
        self.context_words = folded;
        self
    }

    /// The service's context words, folded (lowercase NFKC) and without those shorter
    /// than 3 characters.
    pub fn context_words(&self) -> &[String] {
        &self.context_words
    }

    /// The minimum length, in characters.
    pub fn min_length(&self) -> usize {
        self.min_length
    }

    /// The maximum length, in characters.
    pub fn max_length(&self) -> usize {
        self.max_length.max(self.min_length)
    }

    /// The rules of this policy in plain words, one sentence each, in the order
    /// [`check`](Self::check) applies them: what a form shows before the person types,
    /// so the first password they choose passes.
    ///
    /// ```
    /// use auth_core::PasswordPolicy;
    ///
    /// let rules = PasswordPolicy::default().requirements();
    /// assert_eq!(rules[0], "At least 8 characters (at most 256). Spaces count.");
    /// assert_eq!(rules.len(), 4);
    /// let lenient = PasswordPolicy::default().with_common_password_check(false);
    /// assert_eq!(lenient.requirements().len(), 3);
    /// ```
    pub fn requirements(&self) -> Vec<String> {
        let mut rules = vec![
            format!(
                "At least {} characters (at most {}). Spaces count.",
                self.min_length,
                self.max_length()
            ),
            "Not your email address, and not built from it or from this site's name.".to_owned(),
        ];
        if self.reject_common {
            rules.push("Not one of the most common passwords.".to_owned());
        }
        rules.push("Not a repetition (abcabcabc) or a run of consecutive characters (12345678).".to_owned());
        rules
    }

    /// Checks a new password for an account with `email` (pass `None` when there is no
    /// account yet to compare with). Cheap: no hashing happens here.
    ///
    /// # Errors
    ///
    /// The first [`PolicyViolation`], checked in the order: too long, too short, same as
    /// the email, common, repetitive, sequential, context words (the type documentation
    /// has the exact rules).
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
            if same_local || Email::parse_existing(trimmed).is_ok_and(|typed| typed == *email) {
                return Err(PolicyViolation::SameAsEmail);
            }
        }
        let folded = Zeroizing::new(trimmed.to_lowercase());
        if self.reject_common && is_common(&folded) {
            return Err(PolicyViolation::Common);
        }
        // The whole password, untrimmed: sixteen spaces are a repetition too.
        let chars = rules::fold(&normalized);
        if rules::is_repetitive(&chars) {
            return Err(PolicyViolation::Repetitive);
        }
        if rules::is_sequential(&chars) {
            return Err(PolicyViolation::Sequential);
        }
        if self.is_built_from_context_words(&chars, email) {
            return Err(PolicyViolation::ContextWords);
        }
        Ok(())
    }

    fn is_built_from_context_words(&self, chars: &[char], email: Option<&Email>) -> bool {
        let mut words = self.context_words.clone();
        words.extend(email.map(rules::email_words).unwrap_or_default());
        let Some(rest) = rules::without_words(chars, &words) else {
            return false;
        };
        // What is left is judged as a password of its own: the words added nothing an
        // attacker who knows the account and the site would not try first.
        let rest_chars = Zeroizing::new(rest.chars().collect::<Vec<char>>());
        rest_chars.len() < self.min_length
            || rules::is_repetitive(&rest_chars)
            || rules::is_sequential(&rest_chars)
            || (self.reject_common && is_common(rest.trim()))
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
mod tests;
