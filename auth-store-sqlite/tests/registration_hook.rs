//! An application's own row, created in the transaction of a registration: both rows or
//! neither.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use auth_core::conformance::{sample_user, unique_email};
use auth_core::{ExternalIdentity, IdentityStore, LinkedIdentity, ProviderName, StoreError, UserStore};
use auth_store_sqlite::SqliteStore;
use common::scratch_dir;

fn counts(path: &std::path::Path) -> (i64, i64) {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT (SELECT count(*) FROM auth_users), (SELECT count(*) FROM profiles)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
}

async fn store_with_profiles() -> (std::path::PathBuf, SqliteStore) {
    let path = scratch_dir().join("app.db");
    let store = SqliteStore::open(&path).await.unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE profiles (user_id TEXT PRIMARY KEY REFERENCES auth_users (id), email TEXT NOT NULL)",
        )
        .unwrap();
    (path, store)
}

#[tokio::test]
async fn the_hook_writes_in_the_registrations_transaction_and_a_duplicate_never_calls_it() {
    let (path, store) = store_with_profiles().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let store = store.with_registration_hook(move |tx, user| {
        counted.fetch_add(1, Ordering::SeqCst);
        tx.execute(
            "INSERT INTO profiles (user_id, email) VALUES (?1, ?2)",
            (user.id.to_string(), user.email.as_str()),
        )?;
        Ok(())
    });
    let user = sample_user(unique_email("hooked"));
    store.insert_user(&user).await.unwrap();
    assert_eq!(counts(&path), (1, 1));
    let profile: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT user_id FROM profiles", [], |row| row.get(0))
        .unwrap();
    assert_eq!(profile, user.id.to_string(), "the profile references the new account");

    let twin = sample_user(user.email.clone());
    assert_ne!(twin.id, user.id);
    let duplicate = store.insert_user(&twin).await.unwrap_err();
    assert!(matches!(duplicate, StoreError::DuplicateEmail), "{duplicate:?}");
    assert_eq!((counts(&path), calls.load(Ordering::SeqCst)), ((1, 1), 1));
}

#[tokio::test]
async fn a_failing_hook_rolls_the_registration_back_and_the_address_stays_free() {
    let (path, store) = store_with_profiles().await;
    let failing = store.clone().with_registration_hook(|tx, user| {
        tx.execute(
            "INSERT INTO profiles (user_id, email) VALUES (?1, ?2)",
            (user.id.to_string(), user.email.as_str()),
        )?;
        Err("the billing system said no".into())
    });
    let user = sample_user(unique_email("refused"));
    let error = failing.insert_user(&user).await.unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    assert_eq!(
        std::error::Error::source(&error).map(ToString::to_string).as_deref(),
        Some("the billing system said no")
    );
    assert_eq!(
        counts(&path),
        (0, 0),
        "neither row: the account's insert was rolled back"
    );
    // The same address registers once the hook lets it (the store without a hook here).
    store.insert_user(&user).await.unwrap();
    assert_eq!(counts(&path), (1, 0));
}

#[tokio::test]
async fn an_account_created_with_its_identity_runs_the_hook_in_the_same_transaction() {
    let (path, store) = store_with_profiles().await;
    let hooked = store.clone().with_registration_hook(|tx, user| {
        tx.execute(
            "INSERT INTO profiles (user_id, email) VALUES (?1, ?2)",
            (user.id.to_string(), user.email.as_str()),
        )?;
        if user.email.as_str().starts_with("refused") {
            return Err("the billing system said no".into());
        }
        Ok(())
    });
    let identities = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM auth_identities", [], |row| row.get(0))
            .unwrap()
    };
    let linked = |user: &auth_core::User, subject: &str| {
        let identity = ExternalIdentity::new(ProviderName::new("google").unwrap(), subject);
        LinkedIdentity::new(user.id, &identity, user.created_at)
    };

    let refused = sample_user(unique_email("refused")).with_password_hash(None);
    let error = hooked
        .insert_user_with_identity(&refused, &linked(&refused, "refused"))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    assert_eq!(
        (counts(&path), identities(&path)),
        ((0, 0), 0),
        "no account, identity or profile"
    );

    let user = sample_user(unique_email("hooked")).with_password_hash(None);
    hooked
        .insert_user_with_identity(&user, &linked(&user, "hooked"))
        .await
        .unwrap();
    assert_eq!((counts(&path), identities(&path)), ((1, 1), 1));
}
