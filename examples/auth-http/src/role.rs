//! Route guards: the role a route requires, as a type.

use auth_core::{AuthError, Authenticated, Role};

/// A role a route requires, named by a type so a framework's extractor can check it
/// before the handler runs (`Authorized<Editor>` in `auth-axum` and `auth-actix`). The
/// role is a `const`, so a name that is not valid does not compile.
///
/// ```
/// use auth_core::Role;
/// use auth_http::RoleRequirement;
///
/// /// The accounts that may publish.
/// struct Editor;
///
/// impl RoleRequirement for Editor {
///     const ROLE: Role = Role::from_static("editor");
/// }
/// assert_eq!(Editor::ROLE.as_str(), "editor");
/// ```
pub trait RoleRequirement: Send + Sync + 'static {
    /// The role the account must hold.
    const ROLE: Role;

    /// `Ok` when `me` holds [`ROLE`](Self::ROLE).
    ///
    /// # Errors
    ///
    /// 403 [`AuthError::Forbidden`] naming the role.
    fn check(me: &Authenticated) -> Result<(), AuthError> {
        me.require_role(&Self::ROLE)
    }
}

/// The [`Role::ADMIN`] requirement: the accounts that administer the others.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl RoleRequirement for Admin {
    const ROLE: Role = Role::ADMIN;
}
