//! The routes of sign-in through identity providers, request by request, with a provider
//! of the test's own (no network): the redirect and its binding cookie, the callback, the
//! exchange, the identities, and the refusals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::sync::Arc;

use actix_web::dev::ServiceResponse;
use actix_web::http::header::HeaderMap;
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::{App, web};
use auth_actix::Endpoints;
use auth_core::{
    AuthService, AuthorizationRequest, ExternalIdentity, IdentityProvider, MemoryStore, ProviderError, ProviderName,
    SigningKey, Tokens,
};
use serde_json::{Value, json};

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

fn endpoints(secure_cookies: bool) -> Endpoints {
    let key = SigningKey::hs256(b"a test secret of at least thirty-two bytes").unwrap();
    let provider = |name: &str, down: bool| {
        Arc::new(FakeProvider {
            name: ProviderName::new(name).unwrap(),
            down,
        })
    };
    let service = AuthService::new(MemoryStore::new(), Tokens::new(key, "https://app.test", "app"))
        .with_identity_provider(provider("fake", false))
        .with_identity_provider(provider("down", true));
    Endpoints::with_identity_providers(Arc::new(service)).with_secure_cookies(secure_cookies)
}

const PEER: &str = "203.0.113.9:4711";

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

async fn answer(response: ServiceResponse) -> (u16, HeaderMap, Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = read_body(response).await;
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[actix_web::test]
async fn a_browser_signs_in_through_a_provider_and_the_application_trades_the_code() {
    let endpoints = endpoints(true);
    let app = init_service(App::new().service(web::scope("/auth").configure(auth_actix::configure(&endpoints)))).await;
    let send = |request: TestRequest| call_service(&app, request.peer_addr(PEER.parse().unwrap()).to_request());

    let (status, _, body) = answer(send(TestRequest::get().uri("/auth/oauth/providers")).await).await;
    assert_eq!((status, body), (200, json!({"providers": ["down", "fake"]})));

    let (status, headers, _) = answer(send(TestRequest::get().uri("/auth/oauth/fake/start?next=%2Fapp")).await).await;
    assert_eq!(status, 303);
    let cookie = header(&headers, "set-cookie").to_owned();
    assert!(cookie.starts_with("__Host-auth_oauth=eb_"), "{cookie}");
    assert!(
        cookie.ends_with("; Max-Age=600; Path=/; HttpOnly; Secure; SameSite=Lax"),
        "{cookie}"
    );
    assert_eq!(header(&headers, "cache-control"), "no-store");
    assert_eq!(header(&headers, "referrer-policy"), "no-referrer");
    let state = param(header(&headers, "location"), "state");
    let binding = cookie.split(';').next().unwrap();

    let callback = TestRequest::get()
        .uri(&format!("/auth/oauth/fake/callback?state={state}&code=ada"))
        .insert_header(("cookie", format!("theme=dark; {binding}")));
    let (status, headers, _) = answer(send(callback).await).await;
    assert_eq!(status, 303);
    let location = header(&headers, "location").to_owned();
    assert!(location.starts_with("/app?code=xc_"), "{location}");
    assert_eq!(header(&headers, "set-cookie"), "", "kept for the code's exchange");

    let exchange = |code: &str| {
        TestRequest::post()
            .uri("/auth/oauth/exchange")
            .insert_header(("cookie", binding.to_owned()))
            .set_json(json!({ "code": code }))
    };
    let code = param(&location, "code");
    let (status, headers, body) = answer(send(exchange(&code)).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "cache-control"), "no-store");
    assert_eq!(
        header(&headers, "set-cookie"),
        "__Host-auth_oauth=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"
    );
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, _, body) = answer(send(exchange(&code)).await).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("external_login_failed")));

    let bearer = ("authorization", format!("Bearer {token}"));
    let (status, _, body) = answer(
        send(
            TestRequest::get()
                .uri("/auth/me/identities")
                .insert_header(bearer.clone()),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["identities"][0]["provider"], "fake");
    let id = body["identities"][0]["id"].as_str().unwrap().to_owned();
    let delete = |path: &str| TestRequest::delete().uri(path).insert_header(bearer.clone());
    let (status, _, body) = answer(send(delete("/auth/me/identities/not-an-id")).await).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, _, body) = answer(send(delete(&format!("/auth/me/identities/{id}"))).await).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("last_sign_in_method")));

    let link = TestRequest::post()
        .uri("/auth/oauth/fake/link")
        .insert_header(bearer.clone())
        .set_json(json!({ "next": "/settings" }));
    let (status, headers, body) = answer(send(link).await).await;
    assert_eq!(status, 200, "{body}");
    let url = body["authorization_url"].as_str().unwrap();
    let binding = header(&headers, "set-cookie").split(';').next().unwrap().to_owned();
    let callback = TestRequest::get()
        .uri(&format!(
            "/auth/oauth/fake/callback?state={}&code=ada-at-work",
            param(url, "state")
        ))
        .insert_header(("cookie", binding));
    let (status, headers, _) = answer(send(callback).await).await;
    assert_eq!((status, header(&headers, "location")), (303, "/settings?linked=fake"));
    let (status, _, _) = answer(send(delete(&format!("/auth/me/identities/{id}"))).await).await;
    assert_eq!(status, 204);
}

#[actix_web::test]
async fn refusals_are_answered_in_the_apis_format_or_sent_back_to_next() {
    let endpoints = endpoints(false);
    let app = init_service(App::new().configure(auth_actix::configure(&endpoints))).await;
    let send = |request: TestRequest| call_service(&app, request.peer_addr(PEER.parse().unwrap()).to_request());

    let (status, _, body) = answer(send(TestRequest::get().uri("/oauth/nope/start")).await).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("unknown_provider")));
    let evil = TestRequest::get().uri("/oauth/fake/start?next=https%3A%2F%2Fevil.example");
    let (status, _, body) = answer(send(evil).await).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_redirect")));
    let (status, headers, body) = answer(send(TestRequest::get().uri("/oauth/down/start")).await).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("provider_unavailable")));
    assert!(headers.contains_key("retry-after"));

    let (_, headers, _) = answer(send(TestRequest::get().uri("/oauth/fake/start?next=/app")).await).await;
    let binding = header(&headers, "set-cookie").split(';').next().unwrap().to_owned();
    assert!(binding.starts_with("auth_oauth=eb_"), "{binding}");
    let state = param(header(&headers, "location"), "state");
    let callback = format!("/oauth/fake/callback?state={state}&code=eve");
    let (status, headers, _) = answer(send(TestRequest::get().uri(&callback)).await).await;
    assert_eq!(
        (status, header(&headers, "location")),
        (303, "/app?error=external_login_failed")
    );
    assert_eq!(
        header(&headers, "set-cookie"),
        "auth_oauth=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    );
    let replay = TestRequest::get().uri(&callback).insert_header(("cookie", binding));
    let (status, headers, body) = answer(send(replay).await).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("external_login_failed")));
    assert_eq!(
        header(&headers, "set-cookie"),
        "auth_oauth=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    );
    assert_eq!(header(&headers, "referrer-policy"), "no-referrer");

    let (status, _, _) = answer(send(TestRequest::post().uri("/oauth/fake/link")).await).await;
    assert_eq!(status, 401);
    let (status, headers, _) = answer(send(TestRequest::post().uri("/oauth/fake/start")).await).await;
    assert_eq!((status, header(&headers, "allow")), (405, "GET,HEAD"));
    // A HEAD of the callback (a link preview) spends nothing: refused.
    let head = TestRequest::default()
        .method(actix_web::http::Method::HEAD)
        .uri("/oauth/fake/callback?state=st_x&code=c");
    let (status, headers, _) = answer(send(head).await).await;
    assert_eq!((status, header(&headers, "allow")), (405, "GET"));
}
