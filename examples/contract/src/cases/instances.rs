//! Several instances of a server over one database behave as one.

use serde_json::{Value, json};

use crate::{PASSWORD, Server, Target, get, login, post_json, register, tokens};

use super::redis_limits::redis_servers;

/// Case: three instances over one database and one Redis. Failed logins and registrations
/// spread over the three are refused exactly where one instance would refuse them; a
/// refresh on one instance and the reuse of the old refresh token on another end the
/// session on all three; a logout everywhere, a password change and a disable on one are
/// refused by the others on their very next request; a page session made on one is served
/// by the others.
pub async fn three_instances_over_one_database_behave_as_one(target: Target) {
    let Some(redis) = redis_servers::redis_url() else {
        return;
    };
    let prefix = redis_servers::fresh_prefix();
    let env = [
        ("REDIS_URL", redis.as_str()),
        ("AUTH_REDIS_PREFIX", prefix.as_str()),
        ("AUTH_RATE_LIMIT_REGISTRATIONS_PER_CLIENT", "7/hour"),
    ];
    let Some(a) = Server::start(target, &env) else {
        return;
    };
    let b = a.another_instance(&[]);
    let c = a.another_instance(&[]);
    let all = [&a, &b, &c];

    // The limits count once: 5 failed logins per account per minute, spread round-robin
    // over the three (the registrations per client, 7 an hour, are counted at the end).
    for server in [&a, &b, &c, &a, &b] {
        login(server, "lim@example.com", "wrong password!")
            .await
            .assert_error(401, "invalid_credentials");
    }
    for server in all {
        let limited = login(server, "lim@example.com", "wrong password!").await;
        limited.assert_error(429, "rate_limited");
        assert_eq!(limited.header("retry-after"), Some("12"));
    }
    let mut registered = 0;
    for (server, email) in [(&a, "r1@example.com"), (&b, "r2@example.com"), (&c, "r3@example.com")] {
        register(server, email).await;
        registered += 1;
    }
    let me_on = |server: &Server, access: &str| {
        let (server, access) = (server.url(""), access.to_owned());
        async move {
            let answer = crate::client()
                .get(format!("{server}/me"))
                .bearer_auth(access)
                .send()
                .await
                .unwrap();
            answer.status().as_u16()
        }
    };

    // A login on A refreshes on B; the reuse of the old refresh token on C ends the
    // session everywhere.
    register(&a, "tri@example.com").await;
    registered += 1;
    let (_, first) = tokens(&a, "tri@example.com").await;
    let refreshed = post_json(&b, "/token/refresh", json!({"refresh_token": first}), None).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let body: Value = refreshed.json();
    let (access, second) = (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    );
    for server in all {
        assert_eq!(me_on(server, &access).await, 200);
    }
    post_json(&c, "/token/refresh", json!({"refresh_token": first}), None)
        .await
        .assert_error(401, "invalid_token");
    for server in all {
        assert_eq!(me_on(server, &access).await, 401, "the session ended everywhere");
        post_json(server, "/token/refresh", json!({"refresh_token": second}), None)
            .await
            .assert_error(401, "invalid_token");
    }

    // A logout everywhere on A is refused by B and C on their next request.
    let (access, _) = tokens(&a, "tri@example.com").await;
    assert_eq!(me_on(&b, &access).await, 200);
    let everywhere = post_json(&a, "/logout/all", json!({}), Some(&access)).await;
    assert_eq!(everywhere.status, 204, "{}", everywhere.text);
    assert_eq!((me_on(&b, &access).await, me_on(&c, &access).await), (401, 401));

    // A password change on B: the tokens from before are refused on A and C.
    let (access, refresh) = tokens(&c, "tri@example.com").await;
    let changed = post_json(
        &b,
        "/password/change",
        json!({"current_password": PASSWORD, "new_password": "a changed passphrase"}),
        Some(&access),
    )
    .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    assert_eq!((me_on(&a, &access).await, me_on(&c, &access).await), (401, 401));
    post_json(&a, "/token/refresh", json!({"refresh_token": refresh}), None)
        .await
        .assert_error(401, "invalid_token");

    // A disable on C, by an administrator: refused on A and B.
    register(&a, "boss@example.com").await;
    registered += 1;
    a.grant_role("boss@example.com", "admin");
    let (admin, _) = tokens(&b, "boss@example.com").await;
    let login = crate::login(&a, "tri@example.com", "a changed passphrase").await;
    assert_eq!(login.status, 200, "{}", login.text);
    let body = login.json();
    let access = body["access_token"].as_str().unwrap().to_owned();
    let me = get(&a, "/me", Some(&access)).await.json();
    let id = me["id"].as_str().unwrap().to_owned();
    let disabled = post_json(&c, &format!("/admin/users/{id}/disable"), json!({}), Some(&admin)).await;
    assert_eq!(disabled.status, 204, "{}", disabled.text);
    assert_eq!((me_on(&a, &access).await, me_on(&b, &access).await), (401, 401));

    // A page session made on A is served by B and C (the Axum server has pages).
    if a.has_pages().await {
        register(&a, "pia@example.com").await;
        registered += 1;
        let cookie = page_sign_in(&a, "pia@example.com").await;
        for server in [&b, &c] {
            let home = no_redirects()
                .get(server.url("/"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(home.contains("pia@example.com"), "{home}");
        }
    }

    // Registrations per client: 7 an hour across the three, then 429 on every one.
    for (n, server) in (registered..7).zip(all.iter().cycle()) {
        register(server, &format!("more{n}@example.com")).await;
    }
    for server in all {
        post_json(
            server,
            "/register",
            json!({"email": "one-too-many@example.com", "password": PASSWORD}),
            None,
        )
        .await
        .assert_error(429, "rate_limited");
    }
    for server in all {
        assert!(server.log().contains("rate limiter: redis"), "{}", server.log());
        assert!(!server.log().contains("panicked"), "{}", server.log());
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` pairs of the cookies `response` sets.
fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect()
}

/// Signs `email` in through `server`'s sign-in page; returns its session cookie pair
/// (`__Host-session=...`: the harness's public URL is HTTPS).
async fn page_sign_in(server: &Server, email: &str) -> String {
    let http = no_redirects();
    let form = http.get(server.url("/ui/login")).send().await.unwrap();
    let csrf = set_cookies(&form)
        .into_iter()
        .find(|c| c.starts_with("__Host-csrf="))
        .unwrap();
    let html = form.text().await.unwrap();
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let login = http
        .post(server.url("/ui/login"))
        .header("cookie", csrf)
        .form(&[("email", email), ("password", PASSWORD), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    set_cookies(&login)
        .into_iter()
        .find(|c| c.starts_with("__Host-session="))
        .unwrap()
}
