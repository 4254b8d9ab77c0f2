//! The routes and extractors in an application's own App, request by request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::sync::Arc;

use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::{App, web};
use auth_actix::{ApiError, Authorized, CurrentUser, Endpoints};
use auth_core::{AuthService, ClientInfo, MemoryStore, Role, SigningKey, Tokens};
use auth_http::Admin;
use serde_json::{Value, json};

fn service() -> Arc<AuthService<MemoryStore>> {
    let key = SigningKey::hs256(b"a test secret of at least thirty-two bytes").unwrap();
    Arc::new(AuthService::new(
        MemoryStore::new(),
        Tokens::new(key, "https://app.test", "app"),
    ))
}

async fn report(Authorized(me, ..): Authorized<Admin>) -> Result<String, ApiError> {
    Ok(format!("report for {}", me.user.email.as_str()))
}

async fn whoami(CurrentUser(me): CurrentUser) -> String {
    me.user.email.as_str().to_owned()
}

const PEER: &str = "203.0.113.9:4711";

fn credentials() -> Value {
    json!({ "email": "ada@example.com", "password": "analytical-engine-1843" })
}

fn body_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into()))
}

#[actix_web::test]
async fn the_api_in_a_scope_and_the_applications_routes_share_one_endpoints() {
    let service = service();
    let endpoints = Endpoints::new(Arc::clone(&service));
    let app = init_service(
        App::new()
            .app_data(web::Data::new(endpoints.clone()))
            .route("/report", web::get().to(report))
            .route("/whoami", web::get().to(whoami))
            .service(web::scope("/auth").configure(auth_actix::configure(&endpoints))),
    )
    .await;
    let request = |r: TestRequest| r.peer_addr(PEER.parse().unwrap()).to_request();
    let registered = call_service(
        &app,
        request(TestRequest::post().uri("/auth/register").set_json(credentials())),
    )
    .await;
    assert_eq!(registered.status(), 201);
    let id = body_of(&read_body(registered).await)["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let login = || TestRequest::post().uri("/auth/login").set_json(credentials());
    let answer = call_service(&app, request(login())).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers().get("cache-control").unwrap(), "no-store");
    let token = body_of(&read_body(answer).await)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = |path: &str, token: &str| {
        request(
            TestRequest::get()
                .uri(path)
                .insert_header(("authorization", format!("Bearer {token}"))),
        )
    };
    let me = call_service(&app, bearer("/whoami", &token)).await;
    assert_eq!(read_body(me).await, "ada@example.com");
    let anonymous = call_service(&app, request(TestRequest::get().uri("/whoami"))).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers().get("www-authenticate").unwrap(), "Bearer");
    assert_eq!(body_of(&read_body(anonymous).await)["error"], "invalid_token");
    let refused = call_service(&app, bearer("/report", &token)).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(body_of(&read_body(refused).await)["error"], "forbidden");

    service
        .grant_role(id, Role::ADMIN, &ClientInfo::unknown())
        .await
        .unwrap();
    let answer = call_service(&app, request(login())).await;
    let token = body_of(&read_body(answer).await)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let report = call_service(&app, bearer("/report", &token)).await;
    assert_eq!(read_body(report).await, "report for ada@example.com");
    // No administration and no mail were set up: those routes are not mounted.
    assert_eq!(
        call_service(&app, bearer("/auth/admin/users", &token)).await.status(),
        404
    );
    let wrong_method = call_service(&app, request(TestRequest::get().uri("/auth/register"))).await;
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers().get("allow").unwrap(), "POST");
    assert_eq!(body_of(&read_body(wrong_method).await)["error"], "method_not_allowed");
}

#[actix_web::test]
async fn bad_bodies_are_answered_in_the_apis_format() {
    let endpoints = Endpoints::new(service());
    let app = init_service(App::new().configure(auth_actix::configure(&endpoints))).await;
    let post = |content_type: &str, body: String| {
        TestRequest::post()
            .uri("/register")
            .insert_header(("content-type", content_type))
            .set_payload(body)
            .peer_addr(PEER.parse().unwrap())
            .to_request()
    };
    for (content_type, body, status, code) in [
        ("text/plain", "hello".to_owned(), 415, "unsupported_media_type"),
        ("application/json", "{".to_owned(), 400, "invalid_request"),
        (
            "application/json",
            format!(r#"{{"email": "{}"}}"#, "a".repeat(auth_http::MAX_BODY_BYTES)),
            413,
            "payload_too_large",
        ),
    ] {
        let answer = call_service(&app, post(content_type, body)).await;
        assert_eq!(answer.status(), status);
        assert_eq!(body_of(&read_body(answer).await)["error"], code);
    }
}

#[actix_web::test]
async fn requests_without_a_peer_address_or_without_endpoints_are_refused_never_served_in_one_bucket() {
    let endpoints = Endpoints::new(service());
    let app = init_service(
        App::new()
            .route("/whoami", web::get().to(whoami))
            .service(web::scope("/auth").configure(auth_actix::configure(&endpoints))),
    )
    .await;
    let no_peer = TestRequest::post()
        .uri("/auth/register")
        .set_json(credentials())
        .to_request();
    let answer = call_service(&app, no_peer).await;
    assert_eq!(answer.status(), 500);
    assert_eq!(body_of(&read_body(answer).await)["error"], "internal");
    // The Endpoints were registered in the scope only: the app's own route lacks them.
    let outside = TestRequest::get()
        .uri("/whoami")
        .insert_header(("authorization", "Bearer x"))
        .peer_addr(PEER.parse().unwrap())
        .to_request();
    assert_eq!(call_service(&app, outside).await.status(), 500);
}

#[cfg(feature = "openapi")]
#[actix_web::test]
async fn the_openapi_document_lists_the_routes_served_under_the_scope_they_are_in() {
    let key = auth_core::EncryptionKey::new(&[7; 32]).unwrap();
    let with_totp = Arc::new(
        Arc::try_unwrap(service())
            .unwrap()
            .with_totp(auth_core::TotpSettings::new("App", auth_core::SecretCipher::new(key))),
    );
    for (endpoints, mail_and_admin) in [
        (Endpoints::new(service()), false),
        (
            Endpoints::with_second_factor(with_totp).with_mail(|_: auth_http::Mail| {}),
            true,
        ),
    ] {
        let app =
            init_service(App::new().service(web::scope("/auth").configure(auth_actix::configure(&endpoints)))).await;
        let response = call_service(&app, TestRequest::get().uri("/auth/openapi.json").to_request()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers().get("content-type").unwrap(), "application/json");
        let document = body_of(&read_body(response).await);
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["servers"][0]["url"], "/auth");
        let paths = document["paths"].as_object().unwrap();
        assert!(paths.contains_key("/login") && paths.contains_key("/openapi.json"));
        assert_eq!(paths.contains_key("/password/forgot"), mail_and_admin);
        assert_eq!(paths.contains_key("/admin/users"), mail_and_admin);
        assert_eq!(paths.contains_key("/login/mfa"), mail_and_admin);
        assert_eq!(paths.contains_key("/mfa/totp/setup"), mail_and_admin);
    }
}
