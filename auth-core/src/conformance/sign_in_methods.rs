//! The cases of an account's ways to sign in across capabilities: a password, linked
//! identities and passkeys count together.

use time::OffsetDateTime;

use super::unique_email;
use crate::clock::truncate_to_micros;
use crate::identity::{ExternalIdentity, LinkedIdentity, ProviderName};
use crate::passkey::PasskeyCredential;
use crate::store::{IdentityRemoval, IdentityStore, PasskeyRemoval, PasskeyStore, UserStore};
use crate::user::User;

conformance_cases! { $
    /// Runs the cases of an account's ways to sign in across
    /// [`IdentityStore`](crate::IdentityStore) and [`PasskeyStore`](crate::PasskeyStore):
    /// one `#[tokio::test]` per case, each on a fresh store made by the expression given
    /// (it may `.await`). See the [conformance suite](crate::conformance).
    macro sign_in_method_conformance_tests for [UserStore + IdentityStore + PasskeyStore + Clone + 'static];

    /// A passwordless account with an identity and a passkey may lose either, never both:
    /// each deletion counts the other kind.
    pub async fn identities_and_passkeys_count_together_as_ways_to_sign_in(store: S) {
        let now = truncate_to_micros(OffsetDateTime::now_utc());
        for identity_first in [true, false] {
            let user = User::new(unique_email("ways"), None, now);
            store.insert_user(&user).await.unwrap();
            let subject = format!("sub-{}", uuid::Uuid::new_v4().simple());
            let identity =
                LinkedIdentity::new(user.id, &ExternalIdentity::new(ProviderName::new("google").unwrap(), subject), now);
            store.insert_identity(&identity).await.unwrap();
            let passkey = PasskeyCredential::new(user.id, uuid::Uuid::new_v4().as_bytes().to_vec(), "{}".into(), 0, "Key", now);
            store.insert_passkey(&passkey).await.unwrap();
            if identity_first {
                assert_eq!(store.delete_identity(user.id, identity.id).await.unwrap(), IdentityRemoval::Removed);
                assert_eq!(store.delete_passkey(user.id, passkey.id).await.unwrap(), PasskeyRemoval::LastSignInMethod);
            } else {
                assert_eq!(store.delete_passkey(user.id, passkey.id).await.unwrap(), PasskeyRemoval::Removed);
                assert_eq!(store.delete_identity(user.id, identity.id).await.unwrap(), IdentityRemoval::LastSignInMethod);
            }
        }
    }
}
