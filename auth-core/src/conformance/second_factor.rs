//! The SecondFactorStore cases.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{micros_after, sample_user, unique_email};
use crate::clock::truncate_to_micros;
use crate::second_factor::{LoginChallenge, TotpFactor};
use crate::store::{SecondFactorStore, UserStore};
use crate::token::{OpaqueToken, TokenHash, TokenKind};
use crate::user::User;

fn code_hashes(n: usize) -> Vec<TokenHash> {
    (0..n)
        .map(|_| OpaqueToken::generate(TokenKind::PasswordReset).unwrap().1)
        .collect()
}

fn challenge_hash() -> TokenHash {
    OpaqueToken::generate(TokenKind::LoginChallenge).unwrap().1
}

fn now() -> OffsetDateTime {
    truncate_to_micros(OffsetDateTime::now_utc())
}

async fn account<S: UserStore>(store: &S, prefix: &str) -> User {
    let user = sample_user(unique_email(prefix));
    store.insert_user(&user).await.unwrap();
    user
}

/// An account with a confirmed factor (last used step 1000) and `codes`.
async fn enrolled<S: UserStore + SecondFactorStore>(store: &S, prefix: &str, codes: &[TokenHash]) -> User {
    let user = account(store, prefix).await;
    let factor = TotpFactor::new(user.id, format!("v1.0a1b2c3d.{prefix}"), now());
    assert!(store.insert_totp_factor(&factor).await.unwrap());
    store
        .confirm_totp_factor(
            user.id,
            &factor.sealed_secret,
            1000,
            codes,
            micros_after(factor.created_at, 1),
        )
        .await
        .unwrap()
        .expect("the pending factor confirms")
}

fn sample_challenge(user: &User) -> LoginChallenge {
    let at = now();
    LoginChallenge::new(user.id, at, at + time::Duration::minutes(5), user.token_version + 3)
        .with_user_agent(Some("Mozilla/5.0 «ü»".to_owned()))
        .with_ip(Some("2001:db8::9".parse().unwrap()))
        .with_first_factor(crate::AuthMethod::FEDERATED)
}

conformance_cases! { $
    /// Runs the [`SecondFactorStore`](crate::SecondFactorStore) cases: a TOTP factor per
    /// account, confirmed with the account's flag in one write, its time steps and recovery
    /// codes used at most once under concurrency, and login challenges that count their
    /// failures and are taken once: one `#[tokio::test]` per case, each on a fresh store
    /// made by the expression given (it may `.await`). See the
    /// [conformance suite](crate::conformance).
    macro second_factor_store_conformance_tests for [UserStore + SecondFactorStore + Clone + 'static];

    /// An unconfirmed factor round-trips, is replaced by a newer one, and changes nothing
    /// for the account; confirming it sets the account's flag, its last step and its codes
    /// in one write; then no new factor replaces it.
    pub async fn a_factor_is_pending_until_confirmed_then_required(store: S) {
        let user = account(&store, "totp-pending").await;
        assert_eq!(store.find_totp_factor(user.id).await.unwrap(), None);
        let first = TotpFactor::new(user.id, "v1.0a1b2c3d.first".into(), now());
        assert!(store.insert_totp_factor(&first).await.unwrap());
        assert_eq!(store.find_totp_factor(user.id).await.unwrap(), Some(first.clone()));
        let second = TotpFactor::new(user.id, "v1.0a1b2c3d.second".into(), micros_after(first.created_at, 3));
        assert!(store.insert_totp_factor(&second).await.unwrap(), "a pending factor is replaced");
        assert_eq!(store.find_totp_factor(user.id).await.unwrap(), Some(second.clone()));
        assert!(!store.find_user_by_id(user.id).await.unwrap().unwrap().requires_second_factor);

        let at = micros_after(second.created_at, 5);
        let codes = code_hashes(10);
        assert_eq!(
            store.confirm_totp_factor(user.id, &first.sealed_secret, 7, &codes, at).await.unwrap(),
            None,
            "confirming a replaced secret does nothing"
        );
        let updated = store
            .confirm_totp_factor(user.id, &second.sealed_secret, 7, &codes, at)
            .await
            .unwrap()
            .expect("confirmed");
        assert!(updated.requires_second_factor);
        assert_eq!(updated.updated_at, at);
        assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(updated));
        assert_eq!(
            store.find_totp_factor(user.id).await.unwrap(),
            Some(second.clone().with_confirmed_at(Some(at)).with_last_used_step(Some(7)))
        );
        assert_eq!(store.count_recovery_codes(user.id).await.unwrap(), 10);
        assert_eq!(
            store.confirm_totp_factor(user.id, &second.sealed_secret, 8, &codes, at).await.unwrap(),
            None,
            "a confirmed factor confirms once"
        );
        let third = TotpFactor::new(user.id, "v1.0a1b2c3d.third".into(), at);
        assert!(!store.insert_totp_factor(&third).await.unwrap(), "a confirmed factor stays");
        assert_eq!(
            store.find_totp_factor(user.id).await.unwrap().map(|f| f.sealed_secret),
            Some(second.sealed_secret)
        );
    }

    /// Time steps only move forward, and of concurrent uses of one step exactly one wins.
    pub async fn a_time_step_is_used_at_most_once(store: S) {
        let user = enrolled(&store, "totp-steps", &[]).await;
        assert!(!store.use_totp_step(user.id, 1000).await.unwrap(), "the confirming step is spent");
        assert!(!store.use_totp_step(user.id, 999).await.unwrap(), "an older step");
        assert!(store.use_totp_step(user.id, 1001).await.unwrap());
        assert!(!store.use_totp_step(user.id, 1001).await.unwrap(), "a replay");

        let store = Arc::new(store);
        let racers: Vec<_> = (0..20)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.use_totp_step(user.id, 1002).await.unwrap() })
            })
            .collect();
        let mut wins = 0;
        for racer in racers {
            wins += usize::from(racer.await.unwrap());
        }
        assert_eq!(wins, 1, "exactly one concurrent use of a step succeeds");
        assert_eq!(store.find_totp_factor(user.id).await.unwrap().unwrap().last_used_step, Some(1002));

        let pending = account(&*store, "totp-steps-pending").await;
        let factor = TotpFactor::new(pending.id, "v1.0a1b2c3d.p".into(), now());
        assert!(store.insert_totp_factor(&factor).await.unwrap());
        assert!(!store.use_totp_step(pending.id, 5).await.unwrap(), "an unconfirmed factor takes no codes");
    }

    /// A recovery code works once, also when 20 uses race; codes are the account's own;
    /// new codes replace every old one; the count is of unused codes.
    pub async fn recovery_codes_are_single_use_and_replaced_whole(store: S) {
        let codes = code_hashes(3);
        let user = enrolled(&store, "recovery", &codes).await;
        let other = enrolled(&store, "recovery-other", &code_hashes(2)).await;
        let at = micros_after(user.updated_at, 10);
        assert!(!store.use_recovery_code(other.id, &codes[0], at).await.unwrap(), "another account's code");
        assert!(store.use_recovery_code(user.id, &codes[0], at).await.unwrap());
        assert!(!store.use_recovery_code(user.id, &codes[0], at).await.unwrap(), "used");
        assert_eq!(store.count_recovery_codes(user.id).await.unwrap(), 2);

        let store = Arc::new(store);
        let code = codes[1];
        let racers: Vec<_> = (0..20)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.use_recovery_code(user.id, &code, at).await.unwrap() })
            })
            .collect();
        let mut wins = 0;
        for racer in racers {
            wins += usize::from(racer.await.unwrap());
        }
        assert_eq!(wins, 1, "exactly one of 20 concurrent uses succeeds");
        assert_eq!(store.count_recovery_codes(user.id).await.unwrap(), 1);

        let fresh = code_hashes(10);
        assert!(store.replace_recovery_codes(user.id, &fresh, at).await.unwrap());
        assert_eq!(store.count_recovery_codes(user.id).await.unwrap(), 10);
        assert!(!store.use_recovery_code(user.id, &codes[2], at).await.unwrap(), "old codes die");
        assert!(store.use_recovery_code(user.id, &fresh[9], at).await.unwrap());
        assert_eq!(store.count_recovery_codes(other.id).await.unwrap(), 2, "others untouched");

        let plain = account(&*store, "recovery-none").await;
        assert!(!store.replace_recovery_codes(plain.id, &fresh, at).await.unwrap(), "no factor, no codes");
        assert_eq!(store.count_recovery_codes(plain.id).await.unwrap(), 0);
    }

    /// Deleting the factor deletes its codes and clears the account's flag in one write;
    /// a second delete finds nothing. A reseal replaces the secret only if unchanged.
    pub async fn deleting_a_factor_clears_the_account_and_its_codes(store: S) {
        let codes = code_hashes(2);
        let user = enrolled(&store, "totp-delete", &codes).await;
        let sealed = store.find_totp_factor(user.id).await.unwrap().unwrap().sealed_secret;
        assert!(!store.reseal_totp_factor(user.id, "v1.other.x", "v1.new.y").await.unwrap());
        assert!(store.reseal_totp_factor(user.id, &sealed, "v1.1b2c3d4e.resealed").await.unwrap());
        assert_eq!(
            store.find_totp_factor(user.id).await.unwrap().unwrap().sealed_secret,
            "v1.1b2c3d4e.resealed"
        );

        let at = micros_after(user.updated_at, 20);
        let updated = store.delete_totp_factor(user.id, at).await.unwrap().expect("deleted");
        assert!(!updated.requires_second_factor);
        assert_eq!(updated.updated_at, at);
        assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(updated));
        assert_eq!(store.find_totp_factor(user.id).await.unwrap(), None);
        assert_eq!(store.count_recovery_codes(user.id).await.unwrap(), 0);
        assert!(!store.use_recovery_code(user.id, &codes[0], at).await.unwrap());
        assert_eq!(store.delete_totp_factor(user.id, at).await.unwrap(), None);

        let again = TotpFactor::new(user.id, "v1.0a1b2c3d.again".into(), at);
        assert!(store.insert_totp_factor(&again).await.unwrap(), "a new enrolment may begin");
    }

    /// A challenge round-trips under its hash (its token version too); a newer one of the
    /// account replaces it; attempts count (concurrently too, each its own count); it is
    /// taken once, also under a race.
    pub async fn login_challenges_count_attempts_and_are_taken_once(store: S) {
        let user = account(&store, "challenge").await;
        let (first, second) = (challenge_hash(), challenge_hash());
        let challenge = sample_challenge(&user);
        store.insert_login_challenge(&first, &challenge).await.unwrap();
        assert_eq!(store.find_login_challenge(&first).await.unwrap(), Some(challenge.clone()));
        assert_eq!(store.find_login_challenge(&second).await.unwrap(), None);
        store.insert_login_challenge(&second, &challenge).await.unwrap();
        assert_eq!(store.find_login_challenge(&first).await.unwrap(), None, "only the newest works");
        assert_eq!(store.record_login_challenge_attempt(&first).await.unwrap(), None);

        let store = Arc::new(store);
        let failures: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.record_login_challenge_attempt(&second).await.unwrap() })
            })
            .collect();
        let mut counts = Vec::new();
        for failure in failures {
            counts.push(failure.await.unwrap().unwrap());
        }
        counts.sort_unstable();
        assert_eq!(counts, (1..=8).collect::<Vec<u32>>(), "every concurrent attempt counts, once");
        assert_eq!(
            store.find_login_challenge(&second).await.unwrap(),
            Some(challenge.clone().with_attempts(8))
        );

        let takers: Vec<_> = (0..20)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.take_login_challenge(&second).await.unwrap() })
            })
            .collect();
        let mut taken = 0;
        for taker in takers {
            taken += usize::from(taker.await.unwrap().is_some());
        }
        assert_eq!(taken, 1, "exactly one concurrent take gets the challenge");
        assert_eq!(store.find_login_challenge(&second).await.unwrap(), None);

        let other = account(&*store, "challenge-other").await;
        let bare = LoginChallenge::new(other.id, challenge.created_at, challenge.expires_at, 0);
        let third = challenge_hash();
        store.insert_login_challenge(&third, &bare).await.unwrap();
        assert_eq!(store.find_login_challenge(&third).await.unwrap(), Some(bare), "no client details");
    }
}
