//! The RoleStore cases.

use std::collections::BTreeSet;

use super::{later, sample_user, unique_email};
use crate::role::Role;
use crate::store::{RoleStore, UserStore};
use crate::user::User;

conformance_cases! { $
    /// Runs the [`RoleStore`](crate::RoleStore) cases: replacing, granting and revoking roles,
    /// and their races: one `#[tokio::test]` per case, each on a fresh store made by the
    /// expression given (it may `.await`). See the [conformance suite](crate::conformance).
    macro role_store_conformance_tests for [UserStore + RoleStore + Clone + 'static];

    /// `set_roles` replaces the set, increments the token version and sets `updated_at`.
    pub async fn set_roles_replaces_roles_and_revokes_tokens(store: S) {
        let user = User {
            roles: [Role::new("viewer").unwrap()].into(),
            ..sample_user(unique_email("roles"))
        };
        store.insert_user(&user).await.unwrap();
        let roles: BTreeSet<Role> = ["admin", "billing:write"]
            .into_iter()
            .map(|r| Role::new(r).unwrap())
            .collect();
        let updated = store
            .set_roles(user.id, &roles, later(&user, 1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (&updated.roles, updated.token_version, updated.updated_at),
            (&roles, 1, later(&user, 1))
        );
        let cleared = store
            .set_roles(user.id, &BTreeSet::new(), later(&user, 2))
            .await
            .unwrap()
            .unwrap();
        assert!(cleared.roles.is_empty());
        assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(cleared));
        let ghost = sample_user(unique_email("ghost"));
        assert_eq!(store.set_roles(ghost.id, &roles, later(&user, 3)).await.unwrap(), None);
    }

    /// `grant_role` adds a role the account lacks (incrementing the token version and
    /// setting `updated_at`), and changes nothing for a role it holds or past the limit;
    /// it returns the account as it is after the call.
    pub async fn grant_role_adds_a_role_once_within_the_limit(store: S) {
        let viewer = Role::new("viewer").unwrap();
        let editor = Role::new("editor").unwrap();
        let user = User {
            roles: [viewer.clone()].into(),
            ..sample_user(unique_email("grant"))
        };
        store.insert_user(&user).await.unwrap();

        let granted = store
            .grant_role(user.id, &editor, 32, later(&user, 1))
            .await
            .unwrap()
            .unwrap();
        let expected = User {
            roles: [viewer.clone(), editor.clone()].into(),
            token_version: user.token_version + 1,
            updated_at: later(&user, 1),
            ..user.clone()
        };
        assert_eq!(granted, expected);
        assert_eq!(store.find_user_by_id(user.id).await.unwrap().as_ref(), Some(&expected));

        let again = store.grant_role(user.id, &editor, 32, later(&user, 2)).await.unwrap();
        assert_eq!(again.as_ref(), Some(&expected), "a role held already changes nothing");

        let full = store
            .grant_role(user.id, &Role::new("billing").unwrap(), 2, later(&user, 3))
            .await
            .unwrap();
        assert_eq!(full.as_ref(), Some(&expected), "at the limit, nothing is added");
        let held = store.grant_role(user.id, &viewer, 2, later(&user, 4)).await.unwrap();
        assert_eq!(held.as_ref(), Some(&expected), "a held role at the limit is still held");

        let ghost = sample_user(unique_email("ghost"));
        assert_eq!(store.grant_role(ghost.id, &editor, 32, later(&user, 5)).await.unwrap(), None);
    }

    /// `revoke_role` removes a role the account holds (incrementing the token version and
    /// setting `updated_at`) and changes nothing for a role it lacks.
    pub async fn revoke_role_removes_a_role_once(store: S) {
        let viewer = Role::new("viewer").unwrap();
        let editor = Role::new("editor").unwrap();
        let user = User {
            roles: [viewer.clone(), editor.clone()].into(),
            ..sample_user(unique_email("revoke-role"))
        };
        store.insert_user(&user).await.unwrap();

        let revoked = store
            .revoke_role(user.id, &editor, later(&user, 1))
            .await
            .unwrap()
            .unwrap();
        let expected = User {
            roles: [viewer.clone()].into(),
            token_version: user.token_version + 1,
            updated_at: later(&user, 1),
            ..user.clone()
        };
        assert_eq!(revoked, expected);
        let again = store.revoke_role(user.id, &editor, later(&user, 2)).await.unwrap();
        assert_eq!(again.as_ref(), Some(&expected), "a role not held changes nothing");
        assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(expected));

        let ghost = sample_user(unique_email("ghost"));
        assert_eq!(store.revoke_role(ghost.id, &viewer, later(&user, 3)).await.unwrap(), None);
    }

    /// 10 grants and 10 revokes of distinct roles on one account, all at once: none is
    /// lost, and each one that applied incremented the token version.
    pub async fn concurrent_grants_and_revokes_lose_no_update(store: S) {
        let role = |name: String| Role::new(name).unwrap();
        let user = User {
            roles: (0..10).map(|i| role(format!("old-{i}"))).collect(),
            ..sample_user(unique_email("role-race"))
        };
        store.insert_user(&user).await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                let at = later(&user, i + 1);
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        store.grant_role(user.id, &role(format!("new-{i}")), 32, at).await
                    } else {
                        store.revoke_role(user.id, &role(format!("old-{}", i / 2)), at).await
                    }
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().unwrap().is_some());
        }
        let stored = store.find_user_by_id(user.id).await.unwrap().unwrap();
        let expected: BTreeSet<Role> = (0..20).step_by(2).map(|i| role(format!("new-{i}"))).collect();
        assert_eq!(stored.roles, expected);
        assert_eq!(stored.token_version, user.token_version + 20);
    }

    /// 20 grants of distinct roles at once, with room for 5: exactly 5 apply.
    pub async fn concurrent_grants_never_exceed_the_limit(store: S) {
        let user = sample_user(unique_email("role-limit"));
        store.insert_user(&user).await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                let role = Role::new(format!("r-{i}")).unwrap();
                let at = later(&user, i + 1);
                tokio::spawn(async move {
                    let after = store.grant_role(user.id, &role, 5, at).await.unwrap().unwrap();
                    after.roles.contains(&role)
                })
            })
            .collect();
        let mut granted = 0;
        for task in tasks {
            granted += usize::from(task.await.unwrap());
        }
        assert_eq!(granted, 5);
        let stored = store.find_user_by_id(user.id).await.unwrap().unwrap();
        assert_eq!(stored.roles.len(), 5);
        assert_eq!(stored.token_version, user.token_version + 5);
    }
}
