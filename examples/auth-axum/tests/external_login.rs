//! The routes of sign-in through identity providers, request by request, with a provider
//! of the test's own (no network): the redirect and its binding cookie, the callback, the
//! exchange, the identities, and the refusals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::net::SocketAddr;
use std::sync::Arc;

use auth_axum::Endpoints;
use auth_core::{
    AuthService, AuthorizationRequest, ExternalIdentity, IdentityProvider, MemoryStore, ProviderError, ProviderName,
    SigningKey, Tokens,
};
use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

/// A provider that sends the browser to `https://idp.test/authorize?state=…` and
/// vouches, for any code, for `<code>@example.com` with the subject `<code>`; or one
/// that is down.
#[derive(Debug)]
struct FakeProvider {
    name: ProviderName,
    down: bool,
}

#[async_trait::async_trait]
impl IdentityProvider for FakeProvider {
    fn name(&self) -> &ProviderName {
        &self.name
    }

    async fn authorization_url(&self, request: &AuthorizationRequest<'_>) -> Result<String, ProviderError> {
        if self.down {
            return Err(ProviderError::Unavailable("connection refused".into()));
        }
        Ok(format!("https://idp.test/authorize?state={}", request.state))
    }

    async fn verify_callback(
        &self,
        code: &str,
        _: &AuthorizationRequest<'_>,
    ) -> Result<ExternalIdentity, ProviderError> {
        Ok(ExternalIdentity::new(self.name.clone(), code).with_email(format!("{code}@example.com"), true))
    }
}

fn provider(name: &str, down: bool) -> Arc<FakeProvider> {
    Arc::new(FakeProvider {
        name: ProviderName::new(name).unwrap(),
        down,
    })
}

fn app(secure_cookies: bool) -> Router {
    let key = SigningKey::hs256(b"a test secret of at least thirty-two bytes").unwrap();
    let service = AuthService::new(MemoryStore::new(), Tokens::new(key, "https://app.test", "app"))
        .with_identity_provider(provider("fake", false))
        .with_identity_provider(provider("down", true));
    let endpoints = Endpoints::with_identity_providers(Arc::new(service)).with_secure_cookies(secure_cookies);
    assert!(endpoints.serves_external_login());
    Router::new()
        .nest("/auth", auth_axum::router(&endpoints))
        .with_state(endpoints)
        .layer(MockConnectInfo(SocketAddr::from(([203, 0, 113, 9], 4711))))
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, body)
}

fn get(path: &str, cookie: Option<&str>, bearer: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map_or("", |value| value.to_str().unwrap())
}

/// The value of the `name=` query parameter of a URL or path.
fn param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

/// A start: the state in the provider's URL and the `name=value` of the binding cookie.
async fn start(app: &Router, next: &str) -> (String, String) {
    let (status, headers, _) = send(app, get(&format!("/auth/oauth/fake/start?next={next}"), None, None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = header(&headers, "location");
    assert!(
        location.starts_with("https://idp.test/authorize?state=st_"),
        "{location}"
    );
    let cookie = header(&headers, "set-cookie");
    let binding = cookie.split(';').next().unwrap().to_owned();
    (param(location, "state"), binding)
}

#[tokio::test]
async fn a_browser_signs_in_through_a_provider_and_the_application_trades_the_code() {
    let app = app(true);
    let (status, _, body) = send(&app, get("/auth/oauth/providers", None, None)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"providers": ["down", "fake"]})));

    let (status, headers, _) = send(&app, get("/auth/oauth/fake/start?next=%2Fapp", None, None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = header(&headers, "set-cookie");
    assert!(cookie.starts_with("__Host-auth_oauth=eb_"), "{cookie}");
    assert!(
        cookie.ends_with("; Max-Age=600; Path=/; HttpOnly; Secure; SameSite=Lax"),
        "{cookie}"
    );
    assert_eq!(header(&headers, "cache-control"), "no-store");
    assert_eq!(header(&headers, "referrer-policy"), "no-referrer");
    let state = param(header(&headers, "location"), "state");
    let binding = cookie.split(';').next().unwrap();

    let callback = format!("/auth/oauth/fake/callback?state={state}&code=ada");
    let (status, headers, _) = send(&app, get(&callback, Some(&format!("theme=dark; {binding}")), None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = header(&headers, "location");
    assert!(location.starts_with("/app?code=xc_"), "{location}");
    assert_eq!(header(&headers, "set-cookie"), "", "kept for the code's exchange");
    assert_eq!(header(&headers, "cache-control"), "no-store");
    assert_eq!(header(&headers, "referrer-policy"), "no-referrer");

    let exchange = |code: String| {
        Request::post("/auth/oauth/exchange")
            .header("content-type", "application/json")
            .header("cookie", binding)
            .body(Body::from(json!({ "code": code }).to_string()))
            .unwrap()
    };
    let code = param(location, "code");
    let (status, headers, body) = send(&app, exchange(code.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(header(&headers, "cache-control"), "no-store");
    assert_eq!(
        header(&headers, "set-cookie"),
        "__Host-auth_oauth=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"
    );
    assert_eq!(body["token_type"], "bearer");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, _, body) = send(&app, exchange(code)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("external_login_failed"))
    );

    let (status, _, body) = send(&app, get("/auth/me/identities", None, Some(&token))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let identities = body["identities"].as_array().unwrap();
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0]["provider"], "fake");
    assert_eq!(identities[0]["email"], "ada@example.com");
    assert!(identities[0]["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(identities[0]["last_used_at"].is_string());

    let delete = |path: &str| {
        Request::delete(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, body) = send(&app, delete("/auth/me/identities/not-an-id")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let id = identities[0]["id"].as_str().unwrap();
    let (status, _, body) = send(&app, delete(&format!("/auth/me/identities/{id}"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("last_sign_in_method")),
        "no password, no other identity"
    );

    // Linking, from the signed-in account: no body at all is `next=/`.
    let link = Request::post("/auth/oauth/fake/link")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send(&app, link).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["authorization_url"]
            .as_str()
            .unwrap()
            .starts_with("https://idp.test/authorize?state=st_")
    );
    assert!(header(&headers, "set-cookie").starts_with("__Host-auth_oauth=eb_"));
    let state = param(body["authorization_url"].as_str().unwrap(), "state");
    let binding = header(&headers, "set-cookie").split(';').next().unwrap().to_owned();
    let callback = format!("/auth/oauth/fake/callback?state={state}&code=ada-at-work");
    let (status, headers, _) = send(&app, get(&callback, Some(&binding), None)).await;
    assert_eq!(
        (status, header(&headers, "location")),
        (StatusCode::SEE_OTHER, "/?linked=fake")
    );
    let (_, _, body) = send(&app, get("/auth/me/identities", None, Some(&token))).await;
    assert_eq!(body["identities"].as_array().unwrap().len(), 2);
    let (status, _, _) = send(&app, delete(&format!("/auth/me/identities/{id}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn refusals_are_answered_in_the_apis_format_or_sent_back_to_next() {
    let app = app(false);
    let (status, headers, body) = send(&app, get("/auth/oauth/nope/start", None, None)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_provider"))
    );
    assert_eq!(header(&headers, "cache-control"), "no-store");
    let evil = "/auth/oauth/fake/start?next=https%3A%2F%2Fevil.example";
    let (status, _, body) = send(&app, get(evil, None, None)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_redirect"))
    );
    let (status, headers, body) = send(&app, get("/auth/oauth/down/start", None, None)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("provider_unavailable"))
    );
    assert!(headers.contains_key("retry-after"));
    assert_eq!(header(&headers, "referrer-policy"), "no-referrer");

    // Over plain HTTP the cookie is `auth_oauth`, without `Secure`.
    let (state, binding) = start(&app, "/app").await;
    assert!(binding.starts_with("auth_oauth=eb_"), "{binding}");
    // Without the cookie (another browser): back to `next` with the error; the state is spent.
    let callback = format!("/auth/oauth/fake/callback?state={state}&code=eve");
    let (status, headers, _) = send(&app, get(&callback, None, None)).await;
    assert_eq!(
        (status, header(&headers, "location")),
        (StatusCode::SEE_OTHER, "/app?error=external_login_failed")
    );
    assert_eq!(
        header(&headers, "set-cookie"),
        "auth_oauth=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    );
    // Replayed with the cookie: the flow is unknown now, so the error itself, and the
    // cookie deleted all the same.
    let (status, headers, body) = send(&app, get(&callback, Some(&binding), None)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("external_login_failed"))
    );
    assert_eq!(
        header(&headers, "set-cookie"),
        "auth_oauth=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    );
    assert_eq!(header(&headers, "cache-control"), "no-store");

    // The provider's refusal.
    let (state, binding) = start(&app, "/app").await;
    let denied = format!("/auth/oauth/fake/callback?state={state}&error=access_denied");
    let (status, headers, _) = send(&app, get(&denied, Some(&binding), None)).await;
    assert_eq!(
        (status, header(&headers, "location")),
        (StatusCode::SEE_OTHER, "/app?error=external_login_failed")
    );

    // Linking needs a bearer token; the exchange a body.
    let link = Request::post("/auth/oauth/fake/link").body(Body::empty()).unwrap();
    assert_eq!(send(&app, link).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, body) = send(&app, Request::post("/auth/oauth/exchange").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type"))
    );
    let (status, headers, _) = send(
        &app,
        Request::post("/auth/oauth/fake/start").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&headers, "allow"), "GET,HEAD");
    // A HEAD of the callback (a link preview) spends nothing: refused.
    let (status, headers, _) = send(
        &app,
        Request::head("/auth/oauth/fake/callback?state=st_x&code=c")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, header(&headers, "allow")),
        (StatusCode::METHOD_NOT_ALLOWED, "GET")
    );
}

#[tokio::test]
async fn without_providers_the_routes_are_not_served() {
    let key = SigningKey::hs256(b"a test secret of at least thirty-two bytes").unwrap();
    let service = Arc::new(AuthService::new(
        MemoryStore::new(),
        Tokens::new(key, "https://app.test", "app"),
    ));
    let endpoints = Endpoints::with_identity_providers(service);
    assert!(!endpoints.serves_external_login());
    let app: Router = Router::new()
        .nest("/auth", auth_axum::router(&endpoints))
        .with_state(endpoints.clone())
        .layer(MockConnectInfo(SocketAddr::from(([203, 0, 113, 9], 4711))));
    assert_eq!(
        send(&app, get("/auth/oauth/providers", None, None)).await.0,
        StatusCode::NOT_FOUND
    );
    #[cfg(feature = "openapi")]
    {
        let document = serde_json::to_value(endpoints.openapi()).unwrap();
        assert!(document["paths"].get("/oauth/{provider}/start").is_none());
    }
}
