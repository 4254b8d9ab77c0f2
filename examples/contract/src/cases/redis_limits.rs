//! `REDIS_URL`: the rate limits counted in Redis, once for every server that shares it
//! (and its prefix), failing closed while Redis is away.

use serde_json::json;

// The Redis helpers of auth-redis's own tests: the machine's Redis, and servers a test
// starts and stops itself.
#[path = "../../../../auth-core/redis/tests/common/mod.rs"]
pub(super) mod redis_servers;

use crate::{PASSWORD, Server, Target, login, post_json, register};

const SHARED_SECRET: &str = "a secret every instance shares, 32 bytes or more";

/// Case: two servers sharing one Redis prefix count each limit once, per client and per
/// account: 429 exactly where one server would answer it.
pub async fn two_servers_sharing_redis_count_each_limit_once(target: Target) {
    let Some(url) = redis_servers::redis_url() else {
        return;
    };
    let prefix = redis_servers::fresh_prefix();
    let env = [
        ("REDIS_URL", url.as_str()),
        ("AUTH_REDIS_PREFIX", prefix.as_str()),
        // Accounts are keyed under a digest of the signing secret: instances share it.
        ("SECRET_KEY", SHARED_SECRET),
        ("AUTH_RATE_LIMIT_REGISTRATIONS_PER_CLIENT", "3/hour"),
    ];
    let a = Server::start(target, &env).unwrap();
    let b = Server::start(target, &env).unwrap();
    for server in [&a, &b] {
        assert!(server.log().contains("rate limiter: redis"), "{}", server.log());
        assert!(server.log().contains(&format!("prefix={prefix}")), "{}", server.log());
    }

    // Registrations per client (both see 127.0.0.1): 3 in all, not 3 each.
    register(&a, "reg1@example.com").await;
    register(&b, "reg2@example.com").await;
    register(&a, "reg3@example.com").await;
    for server in [&b, &a] {
        let refused = post_json(
            server,
            "/register",
            json!({"email": "reg4@example.com", "password": PASSWORD}),
            None,
        )
        .await;
        refused.assert_error(429, "rate_limited");
        assert_eq!(
            refused.header("retry-after"),
            Some("1200"),
            "one of 3 per hour refills in 20 minutes"
        );
    }

    // Login failures per account (5 per minute), spread over both: the sixth is refused on
    // either, as on one server.
    for server in [&a, &b, &a, &b, &a] {
        login(server, "kim@example.com", "wrong password!")
            .await
            .assert_error(401, "invalid_credentials");
    }
    for server in [&b, &a] {
        let limited = login(server, "kim@example.com", "wrong password!").await;
        limited.assert_error(429, "rate_limited");
        assert_eq!(limited.header("retry-after"), Some("12"));
    }

    // Another prefix is another count; without REDIS_URL each server counts alone.
    let other_prefix = redis_servers::fresh_prefix();
    let apart = Server::start(
        target,
        &[
            ("REDIS_URL", url.as_str()),
            ("AUTH_REDIS_PREFIX", other_prefix.as_str()),
        ],
    )
    .unwrap();
    register(&apart, "reg4@example.com").await;
    let alone = Server::start(target, &[]).unwrap();
    assert!(
        alone.log().contains("rate limiter: in memory"),
        "the log says which limiter is in use: {}",
        alone.log()
    );
}

/// Case: with Redis gone the limited routes answer 503 `unavailable` with `Retry-After`
/// (never an unchecked pass), and the same server serves again once Redis is back; a
/// server whose Redis does not answer refuses to start, naming it without its password.
pub async fn a_redis_outage_is_503_with_retry_after_and_the_server_recovers(target: Target) {
    let Some(mut redis) = redis_servers::OwnRedis::start() else {
        return;
    };
    let url = redis.url();
    let server = Server::start(target, &[("REDIS_URL", url.as_str())]).unwrap();
    register(&server, "uma@example.com").await;
    assert_eq!(login(&server, "uma@example.com", PASSWORD).await.status, 200);

    redis.stop();
    let denied = login(&server, "uma@example.com", PASSWORD).await;
    denied.assert_error(503, "unavailable");
    assert_eq!(denied.header("retry-after"), Some("1"));
    post_json(
        &server,
        "/register",
        json!({"email": "val@example.com", "password": PASSWORD}),
        None,
    )
    .await
    .assert_error(503, "unavailable");
    post_json(&server, "/password/forgot", json!({"email": "uma@example.com"}), None)
        .await
        .assert_error(503, "unavailable");
    assert!(!server.log().contains("panicked"));

    redis.resume();
    assert_eq!(login(&server, "uma@example.com", PASSWORD).await.status, 200);
    register(&server, "val@example.com").await;

    redis.stop();
    let refused = std::process::Command::new(target.binary)
        .env_clear()
        .env("BIND", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", server.dir.path().join("other.db").display()),
        )
        .env("REDIS_URL", format!("redis://:hunter2-secret@127.0.0.1:{}", redis.port))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        output.contains(&format!("cannot reach Redis at 127.0.0.1:{}/0", redis.port)),
        "{output}"
    );
    assert!(!output.contains("hunter2"), "{output}");
}
