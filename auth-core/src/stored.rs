//! Reading stored values back, the same way in every backend: a value the domain would
//! refuse is [`StoreError::Corrupt`] with the same message whatever the database, never a
//! panic and never a record that lookups would miss.
//!
//! ```
//! use auth_core::{StoreError, stored};
//!
//! let email = stored::email("ada@example.com").unwrap();
//! assert_eq!(email.as_str(), "ada@example.com");
//! // Written by something that skipped normalization: lookups would never find it.
//! assert!(matches!(stored::email("Ada@Example.com"), Err(StoreError::Corrupt(_))));
//! assert!(stored::role("admin").is_ok());
//! assert!(stored::ip("not an address").is_err());
//! ```

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::auth_method::AuthMethods;
use crate::email::Email;
use crate::error::StoreError;
use crate::one_time::TokenPurpose;
use crate::role::Role;

/// A stored email: it must parse (with the identity rules, so accounts created before a
/// rule for new addresses was added still load) and be stored in its normalized form.
///
/// # Errors
///
/// [`StoreError::Corrupt`] when it does not parse, or is not normalized.
pub fn email(text: &str) -> Result<Email, StoreError> {
    let email = Email::parse_existing(text).map_err(|_| corrupt("stored email does not parse"))?;
    if email.as_str() != text {
        // Written by something that skipped normalization: lookups would miss it.
        return Err(corrupt("stored email is not normalized"));
    }
    Ok(email)
}

/// A stored role name.
///
/// # Errors
///
/// [`StoreError::Corrupt`] naming the invalid role.
pub fn role(name: &str) -> Result<Role, StoreError> {
    Role::new(name).map_err(|_| corrupt(format!("invalid role {name:?}")))
}

/// Stored role names, as a set.
///
/// # Errors
///
/// [`StoreError::Corrupt`] naming the first invalid role.
pub fn roles<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<BTreeSet<Role>, StoreError> {
    names.into_iter().map(role).collect()
}

/// A stored single-use token purpose.
///
/// # Errors
///
/// [`StoreError::Corrupt`] naming the unknown purpose.
pub fn purpose(text: &str) -> Result<TokenPurpose, StoreError> {
    text.parse()
        .map_err(|_| corrupt(format!("unknown token purpose {text:?}")))
}

/// A stored IP address (of a session's client).
///
/// # Errors
///
/// [`StoreError::Corrupt`] naming the text.
pub fn ip(text: &str) -> Result<IpAddr, StoreError> {
    text.parse()
        .map_err(|_| corrupt(format!("not an IP address: {text:?}")))
}

/// How a stored session began: method names separated by spaces.
///
/// # Errors
///
/// [`StoreError::Corrupt`] naming the text.
pub fn auth_methods(text: &str) -> Result<AuthMethods, StoreError> {
    text.parse()
        .map_err(|_| corrupt(format!("invalid authentication methods {text:?}")))
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(error: StoreError) -> String {
        match error {
            StoreError::Corrupt(what) => what,
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn stored_values_load_or_are_corrupt_with_one_message() {
        assert_eq!(email(".lead@example.com").unwrap().as_str(), ".lead@example.com");
        assert_eq!(message(email("no at sign").unwrap_err()), "stored email does not parse");
        assert_eq!(
            message(email(" ada@example.com").unwrap_err()),
            "stored email is not normalized"
        );
        assert_eq!(message(role("Admin").unwrap_err()), r#"invalid role "Admin""#);
        assert_eq!(roles(["b", "a", "b"]).unwrap().len(), 2);
        assert_eq!(purpose("password_reset").unwrap(), TokenPurpose::PasswordReset);
        assert_eq!(
            message(purpose("login").unwrap_err()),
            r#"unknown token purpose "login""#
        );
        assert_eq!(ip("2001:db8::7").unwrap().to_string(), "2001:db8::7");
        assert_eq!(message(ip("10.0.0").unwrap_err()), r#"not an IP address: "10.0.0""#);
        assert_eq!(auth_methods("pwd otp").unwrap().to_string(), "otp pwd");
        assert_eq!(
            message(auth_methods("").unwrap_err()),
            r#"invalid authentication methods """#
        );
    }
}
