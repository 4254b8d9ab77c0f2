//! The EmailChangeStore cases.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{micros_after, sample_user, unique_email};
use crate::clock::truncate_to_micros;
use crate::email::Email;
use crate::error::StoreError;
use crate::store::{EmailChange, EmailChangeStore, EmailConfirmation, UserStore};
use crate::token::{OpaqueToken, TokenHash, TokenKind};
use crate::user::User;

fn now() -> OffsetDateTime {
    truncate_to_micros(OffsetDateTime::now_utc())
}

fn hash(kind: TokenKind) -> TokenHash {
    OpaqueToken::generate(kind).unwrap().1
}

/// A stored account.
async fn account<S: UserStore>(store: &S, prefix: &str) -> User {
    let user = sample_user(unique_email(prefix));
    store.insert_user(&user).await.unwrap();
    user
}

/// A change of `user` to `to` asked for at `at` (one day to confirm, seven to undo),
/// stored; its (confirm, undo) hashes.
async fn requested<S: EmailChangeStore>(
    store: &S,
    user: &User,
    to: &Email,
    at: OffsetDateTime,
) -> (EmailChange, TokenHash, TokenHash) {
    let change = EmailChange::new(
        user,
        to.clone(),
        None,
        at,
        at + time::Duration::days(1),
        at + time::Duration::days(7),
    );
    let (confirm, undo) = (hash(TokenKind::EmailChange), hash(TokenKind::EmailChangeUndo));
    store.insert_email_change(&change, &confirm, &undo).await.unwrap();
    (change, confirm, undo)
}

conformance_cases! { $
    /// Runs the [`EmailChangeStore`](crate::EmailChangeStore) cases: a confirmation
    /// switches the address atomically (unique by the store's own constraint, even under
    /// racing confirmations and registrations), compare-and-set on the token version, and
    /// an undo restores the old address and voids later changes only: one
    /// `#[tokio::test]` per case, each on a fresh store made by the expression given (it
    /// may `.await`). See the [conformance suite](crate::conformance).
    macro email_change_store_conformance_tests for [UserStore + EmailChangeStore + Clone + 'static];

    /// Confirming switches the address (verified, token version bumped) once; the old
    /// address is free for others, the new one found; an expired link and a link whose
    /// account moved on change nothing.
    pub async fn a_confirmed_change_switches_the_address_once(store: S) {
        let user = account(&store, "change-from").await;
        let to = unique_email("change-to");
        let at = now();
        let (change, confirm, _) = requested(&store, &user, &to, at).await;
        let later = micros_after(at, 10);
        let Some(EmailConfirmation::Switched { change: confirmed, user: switched }) =
            store.confirm_email_change(&confirm, later).await.unwrap()
        else {
            panic!("expected a switch");
        };
        assert_eq!(confirmed, change);
        assert_eq!(switched.email, to);
        assert_eq!(switched.email_verified_at, Some(later));
        assert_eq!(switched.token_version, user.token_version + 1);
        assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(switched.clone()));
        assert_eq!(store.find_user_by_email(&to).await.unwrap().map(|u| u.id), Some(user.id));
        assert_eq!(store.find_user_by_email(&user.email).await.unwrap(), None);
        assert_eq!(store.confirm_email_change(&confirm, later).await.unwrap(), None, "spent");
        let reuse = sample_user(user.email.clone());
        store.insert_user(&reuse).await.unwrap();

        // Expired: nothing changes.
        let other = account(&store, "change-expired").await;
        let (_, confirm, _) = requested(&store, &other, &unique_email("never"), at).await;
        let expired = store.confirm_email_change(&confirm, at + time::Duration::days(1)).await.unwrap();
        assert!(matches!(expired, Some(EmailConfirmation::Expired(_))), "{expired:?}");
        assert_eq!(store.find_user_by_id(other.id).await.unwrap(), Some(other.clone()));

        // Two pending changes: the first confirmed voids the other (its version moved).
        let (_, first, _) = requested(&store, &other, &unique_email("first"), micros_after(at, 1)).await;
        let (_, second, _) = requested(&store, &other, &unique_email("second"), micros_after(at, 2)).await;
        assert!(matches!(
            store.confirm_email_change(&second, later).await.unwrap(),
            Some(EmailConfirmation::Switched { .. })
        ));
        let stale = store.confirm_email_change(&first, later).await.unwrap();
        assert!(matches!(stale, Some(EmailConfirmation::Stale(_))), "{stale:?}");
        assert_eq!(store.confirm_email_change(&hash(TokenKind::EmailChange), later).await.unwrap(), None);
    }

    /// An address another account has is never taken: the confirmation is a typed
    /// conflict and nothing is written.
    pub async fn a_change_to_a_taken_address_is_a_typed_conflict(store: S) {
        let user = account(&store, "change-taken").await;
        let owner = account(&store, "change-owner").await;
        let at = now();
        let (_, confirm, _) = requested(&store, &user, &owner.email, at).await;
        let refused = store.confirm_email_change(&confirm, micros_after(at, 5)).await;
        assert!(matches!(refused, Err(StoreError::DuplicateEmail)), "{refused:?}");
        assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(user.clone()));
        assert_eq!(store.find_user_by_id(owner.id).await.unwrap(), Some(owner.clone()));
    }

    /// Twenty confirmations of changes of different accounts to one address, racing a
    /// registration of it: exactly one wins, every other is a typed conflict, and the
    /// address has exactly one account.
    pub async fn racing_changes_and_a_registration_of_one_address_give_it_one_account(store: S) {
        let to = unique_email("contested");
        let at = now();
        let mut confirms = Vec::new();
        for i in 0..20 {
            let user = account(&store, &format!("racer{i}")).await;
            let (_, confirm, _) = requested(&store, &user, &to, at).await;
            confirms.push(confirm);
        }
        let store = Arc::new(store);
        let barrier = Arc::new(tokio::sync::Barrier::new(confirms.len() + 1));
        let mut tasks = Vec::new();
        for confirm in confirms {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.confirm_email_change(&confirm, micros_after(at, 3)).await.map(|found| {
                    matches!(found, Some(EmailConfirmation::Switched { .. }))
                })
            }));
        }
        let registration = {
            let (store, barrier, to) = (Arc::clone(&store), Arc::clone(&barrier), to.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.insert_user(&sample_user(to)).await
            })
        };
        let mut wins = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(true) => wins += 1,
                Ok(false) => panic!("a confirmation found nothing to do"),
                Err(StoreError::DuplicateEmail) => {}
                Err(other) => panic!("not a typed conflict: {other:?}"),
            }
        }
        match registration.await.unwrap() {
            Ok(()) => wins += 1,
            Err(StoreError::DuplicateEmail) => {}
            Err(other) => panic!("not a typed conflict: {other:?}"),
        }
        assert_eq!(wins, 1, "exactly one of 21 gets the address");
        assert!(store.find_user_by_email(&to).await.unwrap().is_some());
    }

    /// Undoing restores the old address (verified, version bumped) and voids the changes
    /// stored after it, never earlier ones (whatever their timestamps); a used, unknown or late undo link does
    /// nothing; an undo before the confirmation cancels it.
    pub async fn an_undo_restores_the_old_address_and_voids_later_changes_only(store: S) {
        let user = account(&store, "undo-owner").await;
        let at = now();
        let b = unique_email("undo-b");
        let (_, confirm_ab, undo_ab) = requested(&store, &user, &b, at).await;
        let Some(EmailConfirmation::Switched { user: at_b, .. }) =
            store.confirm_email_change(&confirm_ab, micros_after(at, 1)).await.unwrap()
        else {
            panic!("expected a switch");
        };
        let c = unique_email("undo-c");
        // Asked for at the same instant: the order stored decides.
        let (_, confirm_bc, undo_bc) = requested(&store, &at_b, &c, at).await;
        assert!(matches!(
            store.confirm_email_change(&confirm_bc, micros_after(at, 3)).await.unwrap(),
            Some(EmailConfirmation::Switched { .. })
        ));
        // The later undo (back to b) leaves the earlier one working.
        let (undone, restored) = store.undo_email_change(&undo_bc, micros_after(at, 4)).await.unwrap().unwrap();
        assert_eq!((undone.old_email, restored.email.clone()), (b.clone(), b.clone()));
        let (_, restored) = store.undo_email_change(&undo_ab, micros_after(at, 5)).await.unwrap().unwrap();
        assert_eq!(restored.email, user.email);
        assert_eq!(restored.email_verified_at, Some(micros_after(at, 5)));
        assert_eq!(restored.token_version, user.token_version + 4, "two switches, two undos");
        assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(restored.clone()));
        assert_eq!(store.undo_email_change(&undo_ab, micros_after(at, 6)).await.unwrap(), None, "spent");
        assert_eq!(store.undo_email_change(&hash(TokenKind::EmailChangeUndo), at).await.unwrap(), None);

        // Undoing the first voids a later one, which then undoes nothing.
        let d = unique_email("undo-d");
        let (_, confirm_ad, undo_ad) = requested(&store, &restored, &d, micros_after(at, 7)).await;
        let (_, _, undo_later) = requested(&store, &restored, &unique_email("undo-e"), micros_after(at, 7)).await;
        assert!(store.undo_email_change(&undo_ad, micros_after(at, 9)).await.unwrap().is_some());
        assert_eq!(store.undo_email_change(&undo_later, micros_after(at, 10)).await.unwrap(), None);
        // ... and cancels the change it undoes, not yet confirmed.
        assert_eq!(store.confirm_email_change(&confirm_ad, micros_after(at, 11)).await.unwrap(), None);
        assert_eq!(store.find_user_by_id(user.id).await.unwrap().unwrap().email, user.email);

        // The undo window is 7 days.
        let late = account(&store, "undo-late").await;
        let (_, _, undo) = requested(&store, &late, &unique_email("undo-f"), at).await;
        assert_eq!(store.undo_email_change(&undo, at + time::Duration::days(7)).await.unwrap(), None);
    }

    /// An undo to an address another account took meanwhile is a typed conflict, and
    /// nothing is written (the link still works).
    pub async fn an_undo_to_a_taken_address_is_a_typed_conflict(store: S) {
        let user = account(&store, "undo-taken").await;
        let at = now();
        let (_, confirm, undo) = requested(&store, &user, &unique_email("undo-new"), at).await;
        let Some(EmailConfirmation::Switched { user: switched, .. }) =
            store.confirm_email_change(&confirm, micros_after(at, 1)).await.unwrap()
        else {
            panic!("expected a switch");
        };
        store.insert_user(&sample_user(user.email.clone())).await.unwrap();
        let refused = store.undo_email_change(&undo, micros_after(at, 2)).await;
        assert!(matches!(refused, Err(StoreError::DuplicateEmail)), "{refused:?}");
        assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(switched));
    }

    /// Confirmations and undos of one account's changes, all at once, never fail (no
    /// deadlock, no error but the typed outcomes), and the first change's undo wins: the
    /// account ends with its old address.
    pub async fn racing_confirmations_and_undos_of_one_account_end_with_the_first_undo(store: S) {
        let user = account(&store, "race-undo").await;
        let at = now();
        let mut links = Vec::new();
        for i in 0..6 {
            links.push(requested(&store, &user, &unique_email(&format!("race-to{i}")), micros_after(at, i)).await);
        }
        let first_undo = links[0].2;
        let store = Arc::new(store);
        let barrier = Arc::new(tokio::sync::Barrier::new(links.len() * 2));
        let mut tasks = Vec::new();
        for (_, confirm, undo) in links {
            for (hash, is_undo) in [(confirm, false), (undo, true)] {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    let later = micros_after(at, 100);
                    if is_undo {
                        store.undo_email_change(&hash, later).await.map(|done| (hash, done.is_some()))
                    } else {
                        store.confirm_email_change(&hash, later).await.map(|_| (hash, false))
                    }
                }));
            }
        }
        let mut first_undone = false;
        for task in tasks {
            let (hash, undone) = task.await.unwrap().unwrap();
            first_undone |= hash == first_undo && undone;
        }
        assert!(first_undone, "the first change's undo is voided by nothing");
        assert_eq!(store.find_user_by_id(user.id).await.unwrap().unwrap().email, user.email);
    }
}
