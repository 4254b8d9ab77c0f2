//! Opaque tokens (refresh, password reset, email verification): random secrets that mean
//! nothing by themselves and are stored only as their SHA-256.

use std::fmt;
use std::hash::{Hash, Hasher};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Random bytes per token: 256 bits.
const TOKEN_BYTES: usize = 32;
/// Length of the base64url (unpadded) encoding of [`TOKEN_BYTES`].
const ENCODED_LEN: usize = 43;

/// What an opaque token is for. Each kind has its own prefix (`rt_`, `pr_`, `ev_`), so a
/// token of one kind is refused where another is expected before any lookup, and a
/// leaked token is recognizable by secret scanners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenKind {
    /// A refresh token, traded for new access and refresh tokens.
    Refresh,
    /// A password-reset token, sent by mail.
    PasswordReset,
    /// An email-verification token, sent by mail.
    EmailVerification,
    /// A browser session's cookie.
    BrowserSession,
    /// A login waiting for its second factor (`mfa_`).
    LoginChallenge,
    /// The `state` of a sign-in through an external identity provider (`st_`): names the
    /// server-side record of the flow.
    ExternalLoginState,
    /// The cookie that binds an external sign-in to the browser that began it (`eb_`).
    ExternalLoginBinding,
    /// A one-time code an application trades for the session of a finished external
    /// sign-in (`xc_`).
    ExternalLoginCode,
    /// Confirms a change of an account's address, mailed to the new address (`ec_`).
    EmailChange,
    /// Undoes a change of an account's address, mailed to the old address (`eu_`).
    EmailChangeUndo,
    /// Names a passkey ceremony in progress (`pkc_`): between its start and its finish.
    PasskeyCeremony,
}

impl TokenKind {
    /// The prefix every token of this kind starts with.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Refresh => "rt_",
            Self::PasswordReset => "pr_",
            Self::EmailVerification => "ev_",
            Self::BrowserSession => "bs_",
            Self::LoginChallenge => "mfa_",
            Self::ExternalLoginState => "st_",
            Self::ExternalLoginBinding => "eb_",
            Self::ExternalLoginCode => "xc_",
            Self::EmailChange => "ec_",
            Self::EmailChangeUndo => "eu_",
            Self::PasskeyCeremony => "pkc_",
        }
    }
}

/// A secret opaque token as handed to its owner: a kind prefix and 256 random bits from
/// the operating system, base64url-encoded. Zeroized on drop; `Debug` hides it.
///
/// ```
/// use auth_core::{OpaqueToken, TokenKind};
///
/// let (token, hash) = OpaqueToken::generate(TokenKind::Refresh).unwrap();
/// assert!(token.expose_secret().starts_with("rt_"));
/// assert_eq!(token.expose_secret().len(), 46);
/// assert_eq!(OpaqueToken::hash_presented(TokenKind::Refresh, token.expose_secret()), Some(hash));
/// assert_eq!(OpaqueToken::hash_presented(TokenKind::PasswordReset, token.expose_secret()), None);
/// assert_eq!(format!("{token:?}"), "OpaqueToken([redacted])");
/// ```
#[derive(Clone)]
pub struct OpaqueToken(SecretString);

/// The operating system's random number generator failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RngError(String);

impl RngError {
    pub(crate) fn new(message: String) -> Self {
        Self(message)
    }
}

impl OpaqueToken {
    /// A fresh token of `kind`, and the hash to store.
    ///
    /// # Errors
    ///
    /// [`RngError`] if the operating system cannot provide randomness.
    pub fn generate(kind: TokenKind) -> Result<(Self, TokenHash), RngError> {
        let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
        getrandom::fill(bytes.as_mut()).map_err(|e| RngError(e.to_string()))?;
        let token = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes.as_ref()));
        let hash = TokenHash::of(&token);
        Ok((Self(SecretString::from(token)), hash))
    }

    /// The hash under which a presented token of `kind` is stored, or `None` when the
    /// string cannot be such a token (wrong prefix, length or alphabet).
    pub fn hash_presented(kind: TokenKind, presented: &str) -> Option<TokenHash> {
        let encoded = presented.strip_prefix(kind.prefix())?;
        let well_formed = encoded.len() == ENCODED_LEN
            && encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| TokenHash::of(presented))
    }

    /// The token, to send to its owner.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpaqueToken([redacted])")
    }
}

/// The SHA-256 of an opaque token: all a store ever keeps. Equality is constant-time.
///
/// Stores persist it as 32 bytes ([`as_bytes`](Self::as_bytes), [`from_bytes`](Self::from_bytes)).
#[derive(Clone, Copy, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub(crate) fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Wraps 32 bytes read from a store.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes to store.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Hash for TokenHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_carry_256_random_bits() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let (token, hash) = OpaqueToken::generate(TokenKind::PasswordReset).unwrap();
            let encoded = token.expose_secret().strip_prefix("pr_").unwrap();
            assert_eq!(URL_SAFE_NO_PAD.decode(encoded).unwrap().len(), 32);
            assert!(seen.insert(hash.0), "no repeats");
        }
    }

    #[test]
    fn the_hash_is_the_sha256_of_the_whole_token() {
        let (token, hash) = OpaqueToken::generate(TokenKind::EmailVerification).unwrap();
        let expected: [u8; 32] = Sha256::digest(token.expose_secret().as_bytes()).into();
        assert_eq!(hash.as_bytes(), &expected);
        assert_eq!(TokenHash::from_bytes(expected), hash);
    }

    #[test]
    fn malformed_presentations_have_no_hash() {
        let (token, _) = OpaqueToken::generate(TokenKind::Refresh).unwrap();
        let token = token.expose_secret();
        for bad in [
            "",
            "rt_",
            &token[..token.len() - 1],
            &format!("{token}A"),
            &token.replacen("rt_", "RT_", 1),
            &token.replacen("rt_", "", 1),
            &format!("rt_{}", "!".repeat(43)),
            &format!("rt_{}", "é".repeat(43)),
        ] {
            assert_eq!(OpaqueToken::hash_presented(TokenKind::Refresh, bad), None, "{bad:?}");
        }
        for other in [TokenKind::PasswordReset, TokenKind::EmailVerification] {
            assert_eq!(OpaqueToken::hash_presented(other, token), None);
        }
    }
}
