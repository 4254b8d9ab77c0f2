//! The audit record of a change is written in the change's own transaction: when the
//! database refuses the record, the change is rolled back with it and the caller gets
//! the store's error; no change is ever left without its record.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

#[tokio::test(flavor = "multi_thread")]
async fn a_change_whose_record_is_refused_is_rolled_back_and_reported() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    let schema = store.schema().to_owned();
    let pool = store.pool().clone();
    let run = async |statement: String| {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&pool)
            .await
            .unwrap();
    };
    auth_core::conformance::a_change_whose_record_is_refused_is_rolled_back(
        store,
        // Every insert into the audit log fails, as a full or broken table would.
        async || {
            run(format!(
                "CREATE FUNCTION {schema}.refuse_records() RETURNS trigger LANGUAGE plpgsql
                 AS $$ BEGIN RAISE EXCEPTION 'the audit log refuses records'; END $$"
            ))
            .await;
            run(format!(
                "CREATE TRIGGER refuse_records BEFORE INSERT ON {schema}.audit_events
                 FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_records()"
            ))
            .await;
        },
        async || run(format!("DROP TRIGGER refuse_records ON {schema}.audit_events")).await,
    )
    .await;
}
