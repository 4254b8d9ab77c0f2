//! How a person proved who they are: Authentication Method References (RFC 8176), as a
//! session records them and its access tokens carry them (`amr`).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One way of proving who one is, by its RFC 8176 name (`pwd`, `otp`, `hwk`, ...): 1 to 32
/// characters of lowercase ASCII letters, digits, `_` and `-`.
///
/// The constants are the methods this library's flows record; other registered values
/// (or a provider's own) are accepted by [`new`](Self::new), so tokens and stores carry
/// whatever another issuer or a later release wrote.
///
/// ```
/// use auth_core::AuthMethod;
///
/// assert_eq!(AuthMethod::PASSWORD.as_str(), "pwd");
/// assert_eq!(AuthMethod::new("face").unwrap().as_str(), "face");
/// assert!(AuthMethod::new("Not A Method").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthMethod(Cow<'static, str>);

/// A string that is not a valid [`AuthMethod`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an authentication method is 1 to 32 characters of a-z, 0-9, '_' and '-'")]
pub struct AuthMethodError;

impl AuthMethod {
    /// `pwd`: a password.
    pub const PASSWORD: AuthMethod = AuthMethod(Cow::Borrowed("pwd"));
    /// `otp`: a one-time password, such as a TOTP code.
    pub const ONE_TIME_PASSWORD: AuthMethod = AuthMethod(Cow::Borrowed("otp"));
    /// `hwk`: proof of possession of a hardware-secured key (a security key, a platform
    /// authenticator's passkey).
    pub const HARDWARE_KEY: AuthMethod = AuthMethod(Cow::Borrowed("hwk"));
    /// `swk`: proof of possession of a software-secured key.
    pub const SOFTWARE_KEY: AuthMethod = AuthMethod(Cow::Borrowed("swk"));
    /// `mfa`: several factors.
    pub const MULTI_FACTOR: AuthMethod = AuthMethod(Cow::Borrowed("mfa"));
    /// `fed`: a sign-in through an external identity provider (OpenID Connect). Not in RFC
    /// 8176's registry; the value Microsoft's identity platform uses for a federated
    /// sign-in.
    pub const FEDERATED: AuthMethod = AuthMethod(Cow::Borrowed("fed"));
    /// `recovery_code`: a single-use recovery code, in place of a second factor (no RFC
    /// 8176 value exists for it; this library's own).
    pub const RECOVERY_CODE: AuthMethod = AuthMethod(Cow::Borrowed("recovery_code"));

    /// Longest name, in bytes.
    pub const MAX_LEN: usize = 32;

    /// Validates a method name.
    ///
    /// # Errors
    ///
    /// [`AuthMethodError`] when `name` is empty, too long or has other characters.
    pub fn new(name: impl Into<String>) -> Result<Self, AuthMethodError> {
        let name = name.into();
        let valid_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-');
        if name.is_empty() || name.len() > Self::MAX_LEN || !name.bytes().all(valid_char) {
            return Err(AuthMethodError);
        }
        Ok(Self(Cow::Owned(name)))
    }

    /// The RFC 8176 name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AuthMethod {
    type Err = AuthMethodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The methods a session was begun with: never empty, each once. Displayed (and stored)
/// as the names separated by spaces, in order; serialized as the `amr` array of names.
///
/// ```
/// use auth_core::{AuthMethod, AuthMethods};
///
/// let passkey = AuthMethods::from(AuthMethod::HARDWARE_KEY).with(AuthMethod::MULTI_FACTOR);
/// assert_eq!(passkey.to_string(), "hwk mfa");
/// assert_eq!("mfa hwk".parse::<AuthMethods>().unwrap(), passkey);
/// assert!(AuthMethods::from(AuthMethod::PASSWORD).is_password_only());
/// assert!("".parse::<AuthMethods>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMethods(BTreeSet<AuthMethod>);

impl AuthMethods {
    /// Adds `method`.
    #[must_use]
    pub fn with(mut self, method: AuthMethod) -> Self {
        self.0.insert(method);
        self
    }

    /// Whether `method` is one of them.
    pub fn contains(&self, method: &AuthMethod) -> bool {
        self.0.contains(method)
    }

    /// The methods, in order.
    pub fn iter(&self) -> impl Iterator<Item = &AuthMethod> {
        self.0.iter()
    }

    /// Whether a password was the only method (what a password login records).
    pub fn is_password_only(&self) -> bool {
        self.0.len() == 1 && self.0.contains(&AuthMethod::PASSWORD)
    }
}

impl From<AuthMethod> for AuthMethods {
    fn from(method: AuthMethod) -> Self {
        Self(BTreeSet::from([method]))
    }
}

impl fmt::Display for AuthMethods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, method) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(method.as_str())?;
        }
        Ok(())
    }
}

impl FromStr for AuthMethods {
    type Err = AuthMethodError;

    /// Names separated by whitespace; at least one.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let methods = s
            .split_whitespace()
            .map(AuthMethod::new)
            .collect::<Result<BTreeSet<_>, _>>()?;
        if methods.is_empty() {
            return Err(AuthMethodError);
        }
        Ok(Self(methods))
    }
}

impl Serialize for AuthMethods {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(AuthMethod::as_str))
    }
}

impl<'de> Deserialize<'de> for AuthMethods {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        let methods = names
            .into_iter()
            .map(AuthMethod::new)
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(serde::de::Error::custom)?;
        if methods.is_empty() {
            return Err(serde::de::Error::custom(AuthMethodError));
        }
        Ok(Self(methods))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_are_validated() {
        for good in ["pwd", "otp", "x-509_cert", &"a".repeat(32)] {
            assert!(AuthMethod::new(good).is_ok(), "{good}");
        }
        for bad in ["", "PWD", "two words", "a:b", &"a".repeat(33)] {
            assert_eq!(AuthMethod::new(bad), Err(AuthMethodError), "{bad:?}");
        }
        for constant in [
            AuthMethod::PASSWORD,
            AuthMethod::ONE_TIME_PASSWORD,
            AuthMethod::HARDWARE_KEY,
            AuthMethod::SOFTWARE_KEY,
            AuthMethod::MULTI_FACTOR,
        ] {
            assert_eq!(AuthMethod::new(constant.as_str()), Ok(constant));
        }
    }

    #[test]
    fn methods_round_trip_as_text_and_json_and_are_never_empty() {
        let methods = AuthMethods::from(AuthMethod::PASSWORD).with(AuthMethod::ONE_TIME_PASSWORD);
        assert_eq!(methods.to_string(), "otp pwd");
        assert_eq!(methods.to_string().parse::<AuthMethods>().unwrap(), methods);
        let json = serde_json::to_string(&methods).unwrap();
        assert_eq!(json, r#"["otp","pwd"]"#);
        assert_eq!(serde_json::from_str::<AuthMethods>(&json).unwrap(), methods);
        assert!(serde_json::from_str::<AuthMethods>("[]").is_err());
        assert!(serde_json::from_str::<AuthMethods>(r#"["PWD"]"#).is_err());
        assert!(" \t".parse::<AuthMethods>().is_err());
        assert!(!methods.is_password_only());
        assert!(
            AuthMethods::from(AuthMethod::PASSWORD)
                .with(AuthMethod::PASSWORD)
                .is_password_only()
        );
    }
}
