//! Role requirements: the framework-neutral "may this caller do that" check, answered
//! with [`AuthError::Forbidden`] (HTTP 403).

use std::collections::BTreeSet;

use crate::auth_method::AuthMethod;
use crate::error::AuthError;
use crate::role::Role;
use crate::service::Authenticated;
use crate::token::AccessClaims;
use crate::user::User;

impl User {
    /// The framework-neutral role check: `Ok` if the account holds `role`, otherwise
    /// [`AuthError::Forbidden`] (HTTP 403).
    ///
    /// ```
    /// use auth_core::{Email, Role, User};
    /// use time::macros::datetime;
    ///
    /// let mut user = User::new(Email::parse("ann@example.com").unwrap(), None, datetime!(2026-01-01 0:00 UTC));
    /// assert_eq!(user.require_role("admin").unwrap_err().code(), "forbidden");
    /// user.roles.insert(Role::new("admin").unwrap());
    /// assert!(user.require_role("admin").is_ok());
    /// ```
    ///
    /// # Errors
    ///
    /// [`AuthError::Forbidden`] naming the missing role.
    pub fn require_role(&self, role: &str) -> Result<(), AuthError> {
        require_role(&self.roles, role)
    }
}

impl AccessClaims {
    /// `Ok` if the token carries `role`, otherwise [`AuthError::Forbidden`], for services
    /// that authorize on [`TokenVerifier::verify`](crate::TokenVerifier::verify) alone.
    /// It knows nothing of the issuer's roles that need a second factor
    /// ([`AuthService::with_second_factor_required_for`](crate::AuthService::with_second_factor_required_for)):
    /// such a service adds [`require_second_factor`](Self::require_second_factor) itself.
    ///
    /// # Errors
    ///
    /// [`AuthError::Forbidden`] naming the missing role.
    pub fn require_role(&self, role: &str) -> Result<(), AuthError> {
        require_role(self.roles(), role)
    }

    /// `Ok` if the token's login used a second factor (`amr` holds `mfa`), otherwise
    /// [`AuthError::SecondFactorRequired`] (403 `mfa_required`).
    ///
    /// # Errors
    ///
    /// [`AuthError::SecondFactorRequired`].
    pub fn require_second_factor(&self) -> Result<(), AuthError> {
        if self
            .auth_methods()
            .is_some_and(|methods| methods.contains(&AuthMethod::MULTI_FACTOR))
        {
            Ok(())
        } else {
            Err(AuthError::SecondFactorRequired)
        }
    }
}

impl Authenticated {
    /// `Ok` if the caller holds `role`, otherwise [`AuthError::Forbidden`]: the check of
    /// a route only some accounts may use (the example servers' `/admin` routes require
    /// [`Role::ADMIN`]).
    ///
    /// ```
    /// use auth_core::{AuthService, ClientInfo, MemoryStore, Password, Role, SigningKey, Tokens};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tokens = Tokens::new(SigningKey::hs256(b"an example secret of at least 32 bytes!")?, "https://a.example", "api");
    /// # let auth = AuthService::new(MemoryStore::new(), tokens);
    /// # let client = ClientInfo::unknown();
    /// # auth.register("ada@example.com", Password::new("analytical-engine"), &client).await?;
    /// # let login = auth.login("ada@example.com", Password::new("analytical-engine"), &client).await?.signed_in()?;
    /// let me = auth.authenticate(login.tokens.access_token.expose_secret()).await?;
    /// assert_eq!(me.require_role(&Role::ADMIN).unwrap_err().http_status(), 403);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// A role the service names in [`with_second_factor_required_for`](crate::AuthService::with_second_factor_required_for)
    /// also needs a token of a login with a second factor (`amr` with `mfa`).
    ///
    /// # Errors
    ///
    /// [`AuthError::Forbidden`] naming the missing role;
    /// [`AuthError::SecondFactorRequired`] when the role needs a second factor the
    /// token's login did not use.
    pub fn require_role(&self, role: &Role) -> Result<(), AuthError> {
        require_role(self.claims.roles(), role.as_str())?;
        if self.second_factor_roles.contains(role) {
            self.claims.require_second_factor()?;
        }
        Ok(())
    }
}

/// `Ok` if `roles` hold `role`, otherwise [`AuthError::Forbidden`].
fn require_role(roles: &BTreeSet<Role>, role: &str) -> Result<(), AuthError> {
    if roles.iter().any(|r| r.as_str() == role) {
        Ok(())
    } else {
        Err(AuthError::Forbidden { role: role.to_owned() })
    }
}
