//! Sign-in through an OpenID Connect provider over HTTP, against a real provider
//! (`oidc-provider`, see [`crate::oidc_provider`]): the redirect, the callback, the one-time
//! code, linking and unlinking, and the refusals, on every server and store.

use reqwest::Url;
use serde_json::{Value, json};

use crate::oidc_provider::{Client, OidcProvider};
use crate::{Answer, PASSWORD, Server, Target, client, get, post_json, register, tokens};

const CLIENT_ID: &str = "contract-server";
const CLIENT_SECRET: &str = "contract-server-secret-of-some-length";
/// The contract's servers run with `AUTH_PUBLIC_URL=https://auth.example.test`: the
/// redirect URI registered at the provider. The browser's last hop to it is this test's
/// request to the server's own address.
const CALLBACK: &str = "https://auth.example.test/oauth/test/callback";

async fn provider() -> Option<OidcProvider> {
    OidcProvider::start_or_skip(&[Client {
        id: CLIENT_ID.into(),
        secret: CLIENT_SECRET.into(),
        redirect_uris: vec![CALLBACK.into()],
    }])
    .await
}

fn provider_env(issuer: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AUTH_OIDC_PROVIDERS", "test".to_owned()),
        ("AUTH_OIDC_TEST_ISSUER", issuer.to_owned()),
        ("AUTH_OIDC_TEST_CLIENT_ID", CLIENT_ID.to_owned()),
        ("AUTH_OIDC_TEST_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
    ]
}

fn start(target: Target, issuer: &str) -> Option<Server> {
    let env = provider_env(issuer);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start(target, &env)
}

/// A client that follows no redirects, as the browser's part: each hop is checked.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// The binding cookie an answer sets, as `name=value` (sent back by hand: the cookie is
/// `Secure` for the HTTPS site, and this test talks plain HTTP to the server).
fn binding_cookie(answer: &Answer) -> String {
    let set = answer
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with("__Host-auth_oauth="))
        .unwrap_or_else(|| panic!("no binding cookie in {:?}", answer.headers));
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/", "Max-Age=600"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    set.split(';').next().unwrap().to_owned()
}

/// `GET /oauth/test/start?next=...`: the provider's authorization URL and the cookie.
async fn begin(server: &Server, next: &str) -> (String, String) {
    let answer = Answer::of(browser().get(start_url(server, next)).send().await.unwrap()).await;
    assert_eq!(answer.status, 303, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let location = answer.header("location").unwrap().to_owned();
    (location, binding_cookie(&answer))
}

/// `/oauth/test/start?next=<next>` on `server`, `next` query-encoded.
fn start_url(server: &Server, next: &str) -> Url {
    let mut url = Url::parse(&server.url("/oauth/test/start")).unwrap();
    url.query_pairs_mut().append_pair("next", next);
    url
}

/// The provider's redirect to our callback, made to this server with `cookie` (or none).
async fn callback(server: &Server, returned: &Url, cookie: Option<&str>) -> Answer {
    assert!(returned.as_str().starts_with(CALLBACK), "{returned}");
    let url = format!(
        "{}?{}",
        server.url("/oauth/test/callback"),
        returned.query().unwrap_or_default()
    );
    let mut request = browser().get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let answer = Answer::of(request.send().await.unwrap()).await;
    if answer.status == 303 {
        // Cleared, but after a sign-in: the code's exchange needs it.
        let cleared = answer
            .headers
            .get_all("set-cookie")
            .iter()
            .any(|value| value.to_str().unwrap().contains("Max-Age=0"));
        let signed_in = answer.header("location").is_some_and(|to| to.contains("?code="));
        assert_eq!(
            cleared, !signed_in,
            "the binding cookie after the callback: {:?}",
            answer.headers
        );
    }
    answer
}

/// A whole sign-in as `login` in a fresh browser: the callback's answer, and the
/// browser's binding cookie (which the code's exchange needs).
async fn sign_in(server: &Server, provider: &OidcProvider, login: &str, next: &str) -> (Answer, String) {
    let (authorize, cookie) = begin(server, next).await;
    let returned = provider.sign_in(&OidcProvider::browser(), &authorize, login).await;
    (callback(server, &returned, Some(&cookie)).await, cookie)
}

fn location(answer: &Answer) -> String {
    assert_eq!(answer.status, 303, "{}", answer.text);
    answer.header("location").unwrap().to_owned()
}

/// The one-time code in a callback's redirect to `next`.
fn code_in(answer: &Answer, next: &str) -> String {
    let location = location(answer);
    let code = location
        .strip_prefix(&format!("{next}?code="))
        .unwrap_or_else(|| panic!("no code in {location}"));
    assert!(code.starts_with("xc_"), "{code}");
    code.to_owned()
}

/// `POST /oauth/exchange` with the browser's binding cookie (or none).
async fn exchange(server: &Server, code: &str, cookie: Option<&str>) -> Answer {
    let mut request = browser()
        .post(server.url("/oauth/exchange"))
        .json(&json!({ "code": code }));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    Answer::of(request.send().await.unwrap()).await
}

/// The claims of a JWT, unverified (the server's own token, read for `amr`).
fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The whole flow through the routes: a first sign-in creates the account, the code works
/// once for a token pair (`amr: ["fed"]`), the second sign-in finds the account; an
/// existing email is not taken over and is linked from a signed-in session; the last way
/// in is not unlinked; replays, a missing cookie, an off-site `next`, an unknown provider
/// and a spoiled ID token are refused.
pub async fn sign_in_through_an_openid_provider(target: Target) {
    let Some(provider) = provider().await else {
        return;
    };
    let Some(server) = start(target, &provider.issuer) else {
        return;
    };
    let providers = get(&server, "/oauth/providers", None).await;
    assert_eq!(providers.status, 200, "{}", providers.text);
    assert_eq!(providers.json(), json!({ "providers": ["test"] }));

    // A new identity: an account, then a session for the code, once.
    let (first, cookie) = sign_in(&server, &provider, "ada@example.com", "/app").await;
    let code = code_in(&first, "/app");
    let pair = exchange(&server, &code, Some(&cookie)).await;
    assert_eq!(pair.status, 200, "{}", pair.text);
    assert_eq!(pair.header("cache-control"), Some("no-store"));
    let access = pair.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&access)["amr"], json!(["fed"]));
    let me = get(&server, "/me", Some(&access)).await.json();
    assert_eq!(
        (me["email"].clone(), me["email_verified"].clone()),
        (json!("ada@example.com"), json!(true))
    );
    exchange(&server, &code, Some(&cookie))
        .await
        .assert_error(400, "external_login_failed");
    let identities = get(&server, "/me/identities", Some(&access)).await;
    assert_eq!(identities.status, 200, "{}", identities.text);
    let listed = identities.json()["identities"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["provider"], "test");
    assert_eq!(listed[0]["email"], "ada@example.com");
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let unlink = client()
        .delete(server.url(&format!("/me/identities/{id}")))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    Answer::of(unlink).await.assert_error(409, "last_sign_in_method");
    // The account has no password: the generic failure.
    crate::login(&server, "ada@example.com", PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");

    // The code carried to another browser (a link sent to a victim) signs no one in.
    let (carried, _) = sign_in(&server, &provider, "ada@example.com", "/app").await;
    exchange(&server, &code_in(&carried, "/app"), None)
        .await
        .assert_error(400, "external_login_failed");
    let (second, cookie) = sign_in(&server, &provider, "ada@example.com", "/app").await;
    let again = exchange(&server, &code_in(&second, "/app"), Some(&cookie)).await.json();
    let me_again = get(&server, "/me", again["access_token"].as_str()).await.json();
    assert_eq!(me_again["id"], me["id"]);

    // An existing email is never taken over; signed in, its owner links the provider.
    register(&server, "grace@example.com").await;
    let (refused, _) = sign_in(&server, &provider, "grace@example.com", "/app").await;
    assert_eq!(location(&refused), "/app?error=account_exists");
    let (grace, _) = tokens(&server, "grace@example.com").await;
    assert!(
        get(&server, "/me/identities", Some(&grace)).await.json()["identities"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let link = post_json(
        &server,
        "/oauth/test/link",
        json!({ "next": "/settings" }),
        Some(&grace),
    )
    .await;
    assert_eq!(link.status, 200, "{}", link.text);
    let cookie = binding_cookie(&link);
    let authorize = link.json()["authorization_url"].as_str().unwrap().to_owned();
    let returned = provider
        .sign_in(&OidcProvider::browser(), &authorize, "grace@example.com")
        .await;
    let linked = callback(&server, &returned, Some(&cookie)).await;
    assert_eq!(location(&linked), "/settings?linked=test");
    // Replayed: the state is spent, and no `next` is known any more.
    callback(&server, &returned, Some(&cookie))
        .await
        .assert_error(400, "external_login_failed");
    let (by_provider, cookie) = sign_in(&server, &provider, "grace@example.com", "/app").await;
    let pair = exchange(&server, &code_in(&by_provider, "/app"), Some(&cookie))
        .await
        .json();
    let me = get(&server, "/me", pair["access_token"].as_str()).await.json();
    assert_eq!(me["email"], "grace@example.com");

    // Another browser (no cookie): refused, back to `next` with the error.
    let (authorize, _) = begin(&server, "/app").await;
    let returned = provider
        .sign_in(&OidcProvider::browser(), &authorize, "mallory@example.com")
        .await;
    let foreign = callback(&server, &returned, None).await;
    assert_eq!(location(&foreign), "/app?error=external_login_failed");

    // A spoiled ID token (another audience): refused, nothing created.
    provider.set_next_id_token("other-audience").await;
    let (spoiled, _) = sign_in(&server, &provider, "eve@example.com", "/app").await;
    assert_eq!(location(&spoiled), "/app?error=external_login_failed");
    let log = server.log();
    assert!(log.contains("external_login"), "the refusal is an event");
    assert!(!log.contains("xc_"), "no one-time code reaches the log");

    // A native app: its system browser goes through the flow begun with the app's PKCE
    // challenge; the app's own client, without the browser's cookie, trades the code
    // with its verifier, once. The cookie alone does not trade that code.
    let verifier = "native-app-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let challenge = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
    };
    let app_start = |challenge: &str, method: &str| {
        let mut url = start_url(&server, "/app/done");
        url.query_pairs_mut()
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", method);
        url
    };
    let app_exchange = |code: String, verifier: &'static str| {
        let server = &server;
        async move {
            Answer::of(
                browser()
                    .post(server.url("/oauth/exchange"))
                    .json(&json!({ "code": code, "code_verifier": verifier }))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let mut app_codes = Vec::new();
    for _ in 0..3 {
        let answer = Answer::of(browser().get(app_start(&challenge, "S256")).send().await.unwrap()).await;
        assert_eq!(answer.status, 303, "{}", answer.text);
        let cookie = binding_cookie(&answer);
        let returned = provider
            .sign_in(
                &OidcProvider::browser(),
                answer.header("location").unwrap(),
                "ada@example.com",
            )
            .await;
        let done = callback(&server, &returned, Some(&cookie)).await;
        app_codes.push((code_in(&done, "/app/done"), cookie));
    }
    let (code, cookie) = app_codes.remove(0);
    exchange(&server, &code, Some(&cookie))
        .await
        .assert_error(400, "external_login_failed");
    let (code, _) = app_codes.remove(0);
    app_exchange(code, "native-app-verifier-0123456789-abcdefghijklmnopqrstuvwxyZ")
        .await
        .assert_error(400, "external_login_failed");
    let (code, _) = app_codes.remove(0);
    let app_pair = app_exchange(code.clone(), verifier).await;
    assert_eq!(app_pair.status, 200, "{}", app_pair.text);
    let app_me = get(&server, "/me", app_pair.json()["access_token"].as_str())
        .await
        .json();
    assert_eq!(app_me["email"], "ada@example.com");
    app_exchange(code, verifier)
        .await
        .assert_error(400, "external_login_failed");
    for (challenge, method) in [(challenge.as_str(), "plain"), ("too-short", "S256")] {
        Answer::of(browser().get(app_start(challenge, method)).send().await.unwrap())
            .await
            .assert_error(400, "invalid_code_challenge");
    }

    // Off-site `next`, an unknown provider.
    Answer::of(
        browser()
            .get(start_url(&server, "https://evil.example/"))
            .send()
            .await
            .unwrap(),
    )
    .await
    .assert_error(400, "invalid_redirect");
    Answer::of(browser().get(server.url("/oauth/nope/start")).send().await.unwrap())
        .await
        .assert_error(404, "unknown_provider");
}

/// A provider that is down at start-up does not stop the server: its routes answer 503
/// `provider_unavailable` with `Retry-After` until the provider is back, then work without a
/// restart.
pub async fn a_provider_down_at_start_is_503_until_it_is_back(target: Target) {
    let Some(mut provider) = provider().await else {
        return;
    };
    provider.stop();
    let Some(server) = start(target, &provider.issuer) else {
        return;
    };
    assert_eq!(get(&server, "/health", None).await.status, 200);
    let down = Answer::of(browser().get(server.url("/oauth/test/start")).send().await.unwrap()).await;
    down.assert_error(503, "provider_unavailable");
    assert!(down.header("retry-after").is_some());

    provider.start_again().await;
    // Discovery is retried at most every 2 seconds: the first request after that succeeds.
    let mut answer = down;
    for _ in 0..40 {
        answer = Answer::of(browser().get(server.url("/oauth/test/start")).send().await.unwrap()).await;
        if answer.status == 303 {
            break;
        }
        answer.assert_error(503, "provider_unavailable");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(answer.status, 303, "{}", answer.text);
    let returned = provider
        .sign_in(
            &OidcProvider::browser(),
            answer.header("location").unwrap(),
            "late@example.com",
        )
        .await;
    let finished = callback(&server, &returned, Some(&binding_cookie(&answer))).await;
    code_in(&finished, "/");
}
