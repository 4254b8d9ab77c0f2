//! An application's own row, created in the transaction of a registration: both rows or
//! neither.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use auth_core::conformance::{sample_user, unique_email};
use auth_core::{ExternalIdentity, IdentityStore, LinkedIdentity, ProviderName, StoreError, UserStore};
use auth_store_postgres::PostgresStore;

async fn counts(store: &PostgresStore) -> (i64, i64) {
    let schema = store.schema();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT (SELECT count(*) FROM {schema}.users), (SELECT count(*) FROM {schema}.profiles)"
    )))
    .fetch_one(store.pool())
    .await
    .unwrap()
}

/// A fresh store, with the application's `profiles` table beside its tables.
async fn store_with_profiles() -> Option<PostgresStore> {
    let store = common::fresh_store().await?;
    let schema = store.schema().to_owned();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {schema}.profiles (user_id uuid PRIMARY KEY REFERENCES {schema}.users (id), email text NOT NULL)"
    )))
    .execute(store.pool())
    .await
    .unwrap();
    Some(store)
}

#[tokio::test]
async fn the_hook_writes_in_the_registrations_transaction_and_a_duplicate_never_commits_it() {
    let Some(store) = store_with_profiles().await else {
        return;
    };
    let insert_profile = format!(
        "INSERT INTO {}.profiles (user_id, email) VALUES ($1, $2)",
        store.schema()
    );
    let hooked = store.clone().with_registration_hook(move |conn, user| {
        let sql = insert_profile.clone();
        Box::pin(async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(user.id.as_uuid())
                .bind(user.email.as_str())
                .execute(conn)
                .await?;
            Ok(())
        })
    });
    let user = sample_user(unique_email("hooked"));
    hooked.insert_user(&user).await.unwrap();
    assert_eq!(counts(&store).await, (1, 1));

    let twin = sample_user(user.email.clone());
    let duplicate = hooked.insert_user(&twin).await.unwrap_err();
    assert!(matches!(duplicate, StoreError::DuplicateEmail), "{duplicate:?}");
    assert_eq!(counts(&store).await, (1, 1));
}

#[tokio::test]
async fn a_failing_hook_rolls_the_registration_back_and_the_address_stays_free() {
    let Some(store) = store_with_profiles().await else {
        return;
    };
    let insert_profile = format!(
        "INSERT INTO {}.profiles (user_id, email) VALUES ($1, $2)",
        store.schema()
    );
    let failing = store.clone().with_registration_hook(move |conn, user| {
        let sql = insert_profile.clone();
        Box::pin(async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(user.id.as_uuid())
                .bind(user.email.as_str())
                .execute(conn)
                .await?;
            Err("the billing system said no".into())
        })
    });
    let user = sample_user(unique_email("refused"));
    let error = failing.insert_user(&user).await.unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    assert_eq!(
        std::error::Error::source(&error).map(ToString::to_string).as_deref(),
        Some("the billing system said no")
    );
    assert_eq!(
        counts(&store).await,
        (0, 0),
        "neither row: the account's insert was rolled back"
    );
    store.insert_user(&user).await.unwrap();
    assert_eq!(counts(&store).await, (1, 0));
}

#[tokio::test]
async fn an_account_created_with_its_identity_runs_the_hook_in_the_same_transaction() {
    let Some(store) = store_with_profiles().await else {
        return;
    };
    let insert_profile = format!(
        "INSERT INTO {}.profiles (user_id, email) VALUES ($1, $2)",
        store.schema()
    );
    let hooked = store.clone().with_registration_hook(move |conn, user| {
        let sql = insert_profile.clone();
        Box::pin(async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(user.id.as_uuid())
                .bind(user.email.as_str())
                .execute(conn)
                .await?;
            if user.email.as_str().starts_with("refused") {
                return Err("the billing system said no".into());
            }
            Ok(())
        })
    });
    let identities = format!("SELECT count(*) FROM {}.identities", store.schema());
    let identities = || async {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(identities.clone()))
            .fetch_one(store.pool())
            .await
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
        (counts(&store).await, identities().await),
        ((0, 0), 0),
        "no account, identity or profile"
    );

    let user = sample_user(unique_email("hooked")).with_password_hash(None);
    hooked
        .insert_user_with_identity(&user, &linked(&user, "hooked"))
        .await
        .unwrap();
    assert_eq!((counts(&store).await, identities().await), ((1, 1), 1));
}
