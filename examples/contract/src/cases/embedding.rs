//! A service that embeds the library (`examples/embed-axum`, `examples/embed-actix`):
//! its own routes beside the API's, mounted at a prefix, over real HTTP. Not a case of
//! the example servers' contract: the embedding examples run it from their own tests.

use auth_core::{Accounts, ClientInfo, Role, UserId};
use auth_store_sqlite::SqliteStore;
use serde_json::json;

use crate::{Answer, PASSWORD, Server, Target, client, get, post_json};

/// What the embedded service answers, on its own routes (`/greeting` for any signed-in
/// account, `/drafts` for an `editor`) and on the API's under `prefix` (`""` or
/// `"/auth"`): register, login with `Cache-Control: no-store`, `/me`; 401, 403 and 405
/// in the API's format; no mail or administration routes, since it set up neither.
pub async fn an_embedded_service_serves_its_routes_beside_the_api(binary: &'static str, prefix: &str) {
    let secret = ("SECRET_KEY", "an embedding test secret of thirty-two bytes");
    let target = Target {
        binary,
        backend: crate::Backend::Sqlite,
    };
    let server = Server::start(target, &[secret]).expect("SQLite is always there");
    let api = |path: &str| format!("{prefix}{path}");

    let registered = post_json(
        &server,
        &api("/register"),
        json!({ "email": "ada@example.com", "password": PASSWORD }),
        None,
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let id: UserId = registered.json()["id"].as_str().unwrap().parse().unwrap();

    let access = login(&server, prefix).await;
    let me = get(&server, &api("/me"), Some(&access)).await;
    assert_eq!((me.status, me.json()["email"].as_str()), (200, Some("ada@example.com")));

    let greeting = get(&server, "/greeting", Some(&access)).await;
    assert_eq!(
        (greeting.status, greeting.text.as_str()),
        (200, "hello ada@example.com")
    );
    let anonymous = get(&server, "/greeting", None).await;
    anonymous.assert_error(401, "invalid_token");
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    get(&server, "/drafts", Some(&access))
        .await
        .assert_error(403, "forbidden");

    // The role is granted beside the running service, on its SQLite file; a new login
    // carries it.
    let store = SqliteStore::open(server.dir.path().join("app.db")).await.unwrap();
    let editor = Role::new("editor").unwrap();
    Accounts::new(store)
        .grant_role(id, editor, &ClientInfo::unknown())
        .await
        .unwrap();
    let access = login(&server, prefix).await;
    let drafts = get(&server, "/drafts", Some(&access)).await;
    assert_eq!(
        (drafts.status, drafts.text.as_str()),
        (200, "the drafts, for ada@example.com")
    );

    // Neither mail nor administration was set up: their routes are not there (the 404's
    // body is the application's, which set no fallback).
    let forgot = post_json(
        &server,
        &api("/password/forgot"),
        json!({ "email": "ada@example.com" }),
        None,
    )
    .await;
    assert_eq!(forgot.status, 404, "{}", forgot.text);
    assert_eq!(get(&server, &api("/admin/users"), Some(&access)).await.status, 404);
    // A method a route does not take is the API's 405, also under a prefix.
    get(&server, &api("/register"), None)
        .await
        .assert_error(405, "method_not_allowed");
}

/// Logs ada in (JSON); the access token, after checking the token answer is not cached.
async fn login(server: &Server, prefix: &str) -> String {
    let response = client()
        .post(server.url(&format!("{prefix}/login")))
        .json(&json!({ "email": "ada@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let answer = Answer::of(response).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("pragma"), Some("no-cache"));
    answer.json()["access_token"].as_str().unwrap().to_owned()
}
