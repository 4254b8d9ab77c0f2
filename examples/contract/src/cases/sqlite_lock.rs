//! A SQLite file locked by another process (a `sqlite3` shell left in a transaction, a
//! backup tool): requests that must write answer 503 `unavailable` within the store's
//! lock budget, however many queue, and the server works again once the lock goes.

use std::sync::Arc;

use serde_json::json;

// The lock holder of the store's own tests, so both hold a lock the same way.
#[path = "../../../../auth-store-sqlite/tests/support/lock_holder.rs"]
mod lock_holder;

use lock_holder::LockHolder;

use crate::{Answer, PASSWORD, Server, Target, post_json, register};

/// Sends the registrations of `emails` all at once.
async fn register_concurrently(server: &Arc<Server>, emails: &[String]) -> Vec<Answer> {
    let requests: Vec<_> = emails
        .iter()
        .map(|email| {
            let (server, body) = (server.clone(), json!({ "email": email, "password": PASSWORD }));
            tokio::spawn(async move { post_json(&server, "/register", body, None).await })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    answers
}

/// Case: a SQLite lock held elsewhere is 503 unavailable at once, and the server recovers.
pub async fn a_sqlite_lock_held_elsewhere_is_503_unavailable_at_once_and_the_server_recovers(target: Target) {
    // Nine registrations from one client: the subject is the lock, not that limit.
    let server = Server::start(target, &[("AUTH_RATE_LIMIT_REGISTRATIONS_PER_CLIENT", "off")]).unwrap();
    let server = Arc::new(server);
    register(&server, "before@example.com").await;

    let holder = LockHolder::hold(&server.dir.path().join("auth.db"));
    // Four at once, so three queue behind the first: each is refused, and all of them
    // before the hold ends (`release` checks).
    let emails: Vec<String> = (0..4).map(|i| format!("locked{i}@example.com")).collect();
    for answer in register_concurrently(&server, &emails).await {
        answer.assert_error(503, "unavailable");
        assert_eq!(answer.header("retry-after"), Some("1"), "{}", answer.text);
    }
    holder.release();

    // At once afterwards, the same registrations go through: nothing was kept of the
    // refused ones, and nothing is stuck.
    for answer in register_concurrently(&server, &emails).await {
        assert_eq!(answer.status, 201, "{}", answer.text);
    }
    assert!(!server.log().contains("panicked"));
}

/// Case: a request that nothing else bounds in time (here a write waiting on a lock held
/// elsewhere, with a lock timeout of a minute) is answered 503 `unavailable` with
/// `Retry-After` at the request timeout, and the server serves on.
pub async fn a_request_not_answered_in_time_is_503_at_the_request_timeout(target: Target) {
    let server = Server::start(
        target,
        &[
            ("AUTH_SQLITE_LOCK_TIMEOUT_MS", "60000"),
            ("AUTH_REQUEST_TIMEOUT_SECS", "1"),
        ],
    )
    .unwrap();
    register(&server, "early@example.com").await;
    let holder = LockHolder::hold(&server.dir.path().join("auth.db"));
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        post_json(
            &server,
            "/register",
            json!({ "email": "late@example.com", "password": PASSWORD }),
            None,
        ),
    )
    .await
    .expect("answered at the request timeout, not the lock's");
    answer.assert_error(503, "unavailable");
    assert_eq!(answer.header("retry-after"), Some("1"), "{}", answer.text);
    // Reads are not behind the lock (WAL): the server serves on meanwhile.
    assert_eq!(crate::get(&server, "/health", None).await.status, 200);
    holder.release();
    register(&server, "after@example.com").await;
    let log = server.log();
    assert!(log.contains("a request was not answered in time"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}
