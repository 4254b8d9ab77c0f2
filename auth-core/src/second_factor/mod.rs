//! Second factors: TOTP (RFC 6238) with single-use recovery codes, the records a store
//! keeps for them, and the cipher that keeps TOTP secrets encrypted at rest.

mod cipher;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use zeroize::Zeroizing;

pub use cipher::{ENCRYPTION_KEY_BYTES, EncryptionKey, EncryptionKeyError, SealError, SecretCipher};

use crate::id::UserId;
use crate::token::{RngError, TokenHash};

/// The bytes of a TOTP secret: 160 bits, RFC 4226's recommendation.
pub const TOTP_SECRET_BYTES: usize = 20;
/// How many recovery codes an account gets at a time.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// The random bytes of a recovery code: 80 bits, written as 16 base32 characters.
const RECOVERY_CODE_BYTES: usize = 10;
/// How long a login challenge works: 5 minutes.
pub const LOGIN_CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);
/// Codes a login challenge takes: a right one ends it, and after this many wrong ones it
/// is dead. Counted before each code is checked, so concurrent guesses stay within it.
pub const MAX_LOGIN_CHALLENGE_ATTEMPTS: u32 = 5;
/// How long an enrolment waits for its confirming code: 30 minutes.
pub const TOTP_ENROLMENT_TTL: Duration = Duration::from_secs(30 * 60);
/// The TOTP time step, in seconds (RFC 6238's default, what every authenticator app uses).
pub const TOTP_STEP_SECS: u64 = 30;

/// A second factor a login challenge accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecondFactorMethod {
    /// A current code of the account's authenticator app.
    Totp,
    /// One of the account's unused recovery codes.
    RecoveryCode,
    /// One of the account's passkeys ([`begin_passkey_second_factor`](crate::AuthService::begin_passkey_second_factor),
    /// [`complete_login_with_passkey`](crate::AuthService::complete_login_with_passkey)).
    Passkey,
}

impl SecondFactorMethod {
    /// Its API name: `totp`, `recovery_code`, `passkey`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey => "passkey",
        }
    }
}

impl fmt::Display for SecondFactorMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A second factor as a person typed it: a TOTP code or a recovery code. Never printed.
///
/// ```
/// use auth_core::SecondFactorCode;
///
/// let code = SecondFactorCode::totp("123456");
/// assert_eq!(format!("{code:?}"), "SecondFactorCode::Totp([redacted])");
/// ```
#[derive(Clone)]
pub enum SecondFactorCode {
    /// A TOTP code (six digits; spaces are ignored).
    Totp(SecretString),
    /// A recovery code (case, spaces and dashes are ignored).
    RecoveryCode(SecretString),
}

impl SecondFactorCode {
    /// A TOTP code.
    pub fn totp(code: impl Into<String>) -> Self {
        Self::Totp(SecretString::from(code.into()))
    }

    /// A recovery code.
    pub fn recovery_code(code: impl Into<String>) -> Self {
        Self::RecoveryCode(SecretString::from(code.into()))
    }

    /// What a person typed in one field that takes either: six digits (spaces aside) are
    /// an app's code, anything else a recovery code.
    ///
    /// ```
    /// use auth_core::{SecondFactorCode, SecondFactorMethod};
    ///
    /// assert_eq!(SecondFactorCode::typed("123 456").method(), SecondFactorMethod::Totp);
    /// assert_eq!(SecondFactorCode::typed("abcd-efgh-ijkl-mnop").method(), SecondFactorMethod::RecoveryCode);
    /// ```
    pub fn typed(typed: &str) -> Self {
        let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Self::totp(digits)
        } else {
            Self::recovery_code(typed)
        }
    }

    /// Which method it is.
    pub fn method(&self) -> SecondFactorMethod {
        match self {
            Self::Totp(_) => SecondFactorMethod::Totp,
            Self::RecoveryCode(_) => SecondFactorMethod::RecoveryCode,
        }
    }
}

impl fmt::Debug for SecondFactorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Totp(_) => f.write_str("SecondFactorCode::Totp([redacted])"),
            Self::RecoveryCode(_) => f.write_str("SecondFactorCode::RecoveryCode([redacted])"),
        }
    }
}

/// An account's TOTP factor as a store keeps it: the secret sealed by a
/// [`SecretCipher`] (never in the clear), whether it is confirmed, and the last time step
/// a code was accepted for (a code is accepted at most once).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TotpFactor {
    /// The account.
    pub user_id: UserId,
    /// The secret, sealed ([`SecretCipher::seal`]).
    pub sealed_secret: String,
    /// When the enrolment began.
    pub created_at: OffsetDateTime,
    /// When a first code confirmed it; until then it changes nothing for login.
    pub confirmed_at: Option<OffsetDateTime>,
    /// The time step (Unix time / 30 s) of the last accepted code.
    pub last_used_step: Option<i64>,
}

impl TotpFactor {
    /// An unconfirmed factor.
    ///
    /// ```
    /// use auth_core::{TotpFactor, UserId};
    /// use time::macros::datetime;
    ///
    /// let at = datetime!(2026-06-01 09:00 UTC);
    /// let factor = TotpFactor::new(UserId::new_at(at), "v1.0a1b2c3d.c2VhbGVk".into(), at)
    ///     .with_confirmed_at(Some(at))
    ///     .with_last_used_step(Some(59_310_000));
    /// assert!(factor.is_confirmed());
    /// ```
    pub fn new(user_id: UserId, sealed_secret: String, created_at: OffsetDateTime) -> Self {
        Self {
            user_id,
            sealed_secret,
            created_at,
            confirmed_at: None,
            last_used_step: None,
        }
    }

    /// Sets when it was confirmed.
    #[must_use]
    pub fn with_confirmed_at(mut self, confirmed_at: Option<OffsetDateTime>) -> Self {
        self.confirmed_at = confirmed_at;
        self
    }

    /// Sets the last accepted time step.
    #[must_use]
    pub fn with_last_used_step(mut self, last_used_step: Option<i64>) -> Self {
        self.last_used_step = last_used_step;
        self
    }

    /// Whether a code confirmed it.
    pub fn is_confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

/// A login waiting for its second factor, as a store keeps it (under the hash of its
/// token): whose, when it ends, how many codes it took, the account's token version when
/// the password was right (a password change or reset since kills it), and the client it
/// was issued to (user agent and address), which alone may complete it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginChallenge {
    /// The account whose password was right.
    pub user_id: UserId,
    /// When the password was checked.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// Codes presented so far, right or wrong.
    pub attempts: u32,
    /// The account's [`token_version`](crate::User::token_version) at the password step.
    pub token_version: i64,
    /// The user agent of the login.
    pub user_agent: Option<String>,
    /// The address of the login.
    pub ip: Option<IpAddr>,
    /// How the first step proved who it is: [`AuthMethod::PASSWORD`](crate::AuthMethod::PASSWORD),
    /// or [`AuthMethod::FEDERATED`](crate::AuthMethod::FEDERATED) for a sign-in through an
    /// identity provider. The session the challenge leads to records it beside the code's.
    pub first_factor: crate::AuthMethod,
}

impl LoginChallenge {
    /// A challenge without attempts, for the account at `token_version`, after a password.
    ///
    /// ```
    /// use auth_core::{LoginChallenge, UserId};
    /// use time::macros::datetime;
    ///
    /// let at = datetime!(2026-06-01 09:00 UTC);
    /// let challenge = LoginChallenge::new(UserId::new_at(at), at, datetime!(2026-06-01 09:05 UTC), 0)
    ///     .with_user_agent(Some("curl/8.5".into()))
    ///     .with_ip(Some("203.0.113.7".parse().unwrap()));
    /// assert_eq!(challenge.attempts, 0);
    /// ```
    pub fn new(user_id: UserId, created_at: OffsetDateTime, expires_at: OffsetDateTime, token_version: i64) -> Self {
        Self {
            user_id,
            created_at,
            expires_at,
            attempts: 0,
            token_version,
            user_agent: None,
            ip: None,
            first_factor: crate::AuthMethod::PASSWORD,
        }
    }

    /// Sets how the first step proved who it is (a password by default).
    #[must_use]
    pub fn with_first_factor(mut self, first_factor: crate::AuthMethod) -> Self {
        self.first_factor = first_factor;
        self
    }

    /// Sets the user agent.
    #[must_use]
    pub fn with_user_agent(mut self, user_agent: Option<String>) -> Self {
        self.user_agent = user_agent;
        self
    }

    /// Sets the address.
    #[must_use]
    pub fn with_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }

    /// Sets the count of codes presented.
    #[must_use]
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }
}

/// A new account's recovery codes, shown once: each works once, in place of a TOTP code.
/// Stored only as hashes. Never printed by `Debug`.
#[derive(Clone)]
pub struct RecoveryCodes(Vec<SecretString>);

impl RecoveryCodes {
    /// [`RECOVERY_CODE_COUNT`] fresh codes and their hashes.
    pub(crate) fn generate() -> Result<(Self, Vec<TokenHash>), RngError> {
        let mut codes = Vec::with_capacity(RECOVERY_CODE_COUNT);
        let mut hashes = Vec::with_capacity(RECOVERY_CODE_COUNT);
        for _ in 0..RECOVERY_CODE_COUNT {
            let mut bytes = Zeroizing::new([0u8; RECOVERY_CODE_BYTES]);
            getrandom::fill(bytes.as_mut()).map_err(|e| RngError::new(e.to_string()))?;
            let plain = Zeroizing::new(base32_lower(bytes.as_ref()));
            hashes.push(recovery_code_hash(&plain));
            let shown = plain
                .as_bytes()
                .chunks(4)
                .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
                .collect::<Vec<_>>()
                .join("-");
            codes.push(SecretString::from(shown));
        }
        Ok((Self(codes), hashes))
    }

    /// The codes, as shown: `xxxx-xxxx-xxxx-xxxx`, 16 base32 characters (80 bits).
    pub fn expose_secrets(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(ExposeSecret::expose_secret)
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes({} [redacted])", self.0.len())
    }
}

/// The hash a store keeps of a recovery code as typed (case, spaces and dashes ignored),
/// or `None` when it cannot be one.
pub(crate) fn presented_recovery_code(typed: &str) -> Option<TokenHash> {
    let plain: Zeroizing<String> = Zeroizing::new(
        typed
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    );
    let well_formed = plain.len() == 16 && plain.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7'));
    well_formed.then(|| recovery_code_hash(&plain))
}

fn recovery_code_hash(plain: &str) -> TokenHash {
    TokenHash::of(&format!("rc_{plain}"))
}

/// RFC 4648 base32, lowercase, without padding (10 bytes → 16 characters).
fn base32_lower(bytes: &[u8]) -> String {
    totp_rs::Secret::from(bytes.to_vec()).to_base32().to_ascii_lowercase()
}

/// What an account's owner scans to enrol an authenticator app: the secret in base32 (to
/// type) and as an `otpauth://totp/` URI (for a QR code), issuer and account label set.
/// Shown once, before a code confirms it. Never printed by `Debug`.
#[derive(Clone)]
pub struct TotpEnrolment {
    pub(crate) secret: SecretString,
    pub(crate) otpauth_uri: SecretString,
}

impl TotpEnrolment {
    /// The secret, base32 without padding (to type into an app).
    pub fn expose_secret(&self) -> &str {
        self.secret.expose_secret()
    }

    /// `otpauth://totp/<issuer>:<email>?secret=…&issuer=…` (SHA-1, 6 digits, 30 s: the
    /// defaults, so not written), for a QR code.
    pub fn expose_otpauth_uri(&self) -> &str {
        self.otpauth_uri.expose_secret()
    }
}

impl fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpEnrolment([redacted])")
    }
}

/// An account's second factors, for `/me`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SecondFactorStatus {
    /// A confirmed TOTP factor.
    pub totp: bool,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u32,
}

/// The TOTP generator of a secret, with the parameters every authenticator app accepts.
pub(crate) fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<totp_rs::Totp, totp_rs::TotpError> {
    totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .with_step_duration(TOTP_STEP_SECS)
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build()
}

/// The time step a code matches at `now`, within one step either way; `None` if none.
pub(crate) fn matching_step(totp: &totp_rs::Totp, code: &str, now: OffsetDateTime) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let now = u64::try_from(now.unix_timestamp()).ok()?;
    totp.check(&code, now).and_then(|step| i64::try_from(step).ok())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn recovery_codes_are_ten_80_bit_codes_hashed_as_typed_any_way() {
        let (codes, hashes) = RecoveryCodes::generate().unwrap();
        assert_eq!((codes.len(), hashes.len()), (10, 10));
        let shown: Vec<&str> = codes.expose_secrets().collect();
        assert_eq!(shown.iter().collect::<HashSet<_>>().len(), 10);
        for (code, hash) in shown.iter().zip(&hashes) {
            assert_eq!(code.len(), 19, "{code}");
            assert_eq!(presented_recovery_code(code), Some(*hash));
            let loose = code.to_ascii_uppercase().replace('-', " ");
            assert_eq!(presented_recovery_code(&loose), Some(*hash));
        }
        assert!(!format!("{codes:?}").contains(shown[0]));
        for bad in ["", "abcd", "abcd-efgh-ijkl-mno1", "abcd-efgh-ijkl-mnopq"] {
            assert_eq!(presented_recovery_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn codes_match_their_step_and_one_either_side() {
        // RFC 6238 appendix B: the SHA-1 secret "12345678901234567890", 8 digits there;
        // 6 digits are its last six.
        let totp = totp(b"12345678901234567890", "Example", "ada@example.com").unwrap();
        let at = OffsetDateTime::from_unix_timestamp(59).unwrap();
        assert_eq!(matching_step(&totp, "287082", at), Some(1));
        assert_eq!(matching_step(&totp, "287 082", at), Some(1));
        let step_1 = OffsetDateTime::from_unix_timestamp(30).unwrap();
        for (offset, expected) in [(-30, Some(1)), (29, Some(1)), (30, Some(1)), (59, Some(1)), (60, None)] {
            let at = step_1 + time::Duration::seconds(offset);
            assert_eq!(matching_step(&totp, "287082", at), expected, "at {offset:+}s");
        }
        assert_eq!(matching_step(&totp, "000000", at), None);
        assert_eq!(matching_step(&totp, "28708", at), None);
    }
}
