//! The router and extractors in an application's own router, request by request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use auth_axum::{ApiError, Authorized, CurrentUser, Endpoints};
use auth_core::{AuthService, ClientInfo, MemoryStore, Role, SigningKey, Tokens};
use auth_http::Admin;
use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};
use tower::ServiceExt;

type Service = Arc<AuthService<MemoryStore>>;

fn service() -> Service {
    let key = SigningKey::hs256(b"a test secret of at least thirty-two bytes").unwrap();
    Arc::new(AuthService::new(
        MemoryStore::new(),
        Tokens::new(key, "https://app.test", "app"),
    ))
}

fn totp() -> auth_core::TotpSettings {
    let key = auth_core::EncryptionKey::new(&[7; 32]).unwrap();
    auth_core::TotpSettings::new("App", auth_core::SecretCipher::new(key))
}

async fn report(Authorized(me, ..): Authorized<Admin>) -> Result<String, ApiError> {
    Ok(format!("report for {}", me.user.email.as_str()))
}

async fn whoami(CurrentUser(me): CurrentUser) -> String {
    me.user.email.as_str().to_owned()
}

/// An application's router: two routes of its own, the API under `/auth`.
fn app(endpoints: &Endpoints) -> Router {
    Router::new()
        .route("/report", get(report))
        .route("/whoami", get(whoami))
        .nest("/auth", auth_axum::router(endpoints))
        .with_state(endpoints.clone())
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (parts.status, parts.headers, body)
}

fn post(path: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

fn json_post(path: &str, body: &Value) -> Request<Body> {
    post(path, "application/json", body.to_string())
}

fn bearer_get(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

async fn login(app: &Router) -> String {
    let credentials = json!({ "email": "ada@example.com", "password": "analytical-engine-1843" });
    let (status, headers, body) = send(app, json_post("/auth/login", &credentials)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["pragma"], "no-cache");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_api_under_a_prefix_and_the_applications_routes_share_one_state() {
    let service = service();
    let endpoints = Endpoints::new(Arc::clone(&service));
    let app = app(&endpoints).layer(MockConnectInfo(SocketAddr::from(([203, 0, 113, 9], 4711))));
    let credentials = json!({ "email": "ada@example.com", "password": "analytical-engine-1843" });
    let (status, _, body) = send(&app, json_post("/auth/register", &credentials)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().parse().unwrap();

    let token = login(&app).await;
    let (status, _, body) = send(&app, bearer_get("/auth/me", &token)).await;
    assert_eq!(
        (status, body["email"].as_str()),
        (StatusCode::OK, Some("ada@example.com"))
    );
    let (status, _, body) = send(&app, bearer_get("/whoami", &token)).await;
    assert_eq!((status, body), (StatusCode::OK, json!("ada@example.com")));

    let (status, headers, body) = send(&app, Request::get("/whoami").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, _, body) = send(&app, bearer_get("/report", &token)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );

    service
        .grant_role(id, Role::ADMIN, &ClientInfo::unknown())
        .await
        .unwrap();
    let token = login(&app).await;
    let (status, _, body) = send(&app, bearer_get("/report", &token)).await;
    assert_eq!((status, body), (StatusCode::OK, json!("report for ada@example.com")));
    // No administration and no mail were set up: those routes are not mounted.
    let (status, _, _) = send(&app, bearer_get("/auth/admin/users", &token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let forgot = json_post("/auth/password/forgot", &json!({ "email": "ada@example.com" }));
    assert_eq!(send(&app, forgot).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_bodies_are_answered_in_the_apis_format() {
    let app = app(&Endpoints::new(service())).layer(MockConnectInfo(SocketAddr::from(([203, 0, 113, 9], 4711))));
    let (status, _, body) = send(&app, post("/auth/register", "text/plain", "hello")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type"))
    );
    let (status, _, body) = send(&app, post("/auth/register", "application/json", "{")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let huge = format!(r#"{{"email": "{}"}}"#, "a".repeat(auth_http::MAX_BODY_BYTES));
    let (status, _, body) = send(&app, post("/auth/register", "application/json", huge)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let (status, _, body) = send(&app, Request::get("/auth/register").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

/// A log that the test reads back.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_server_without_peer_addresses_is_refused_loudly_never_served_in_one_bucket() {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    // Served without `into_make_service_with_connect_info` (and without MockConnectInfo).
    let app = app(&Endpoints::new(service()));
    let credentials = json!({ "email": "ada@example.com", "password": "analytical-engine-1843" });
    for _ in 0..2 {
        let (status, _, body) = send(&app, json_post("/auth/register", &credentials)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::INTERNAL_SERVER_ERROR, Some("internal"))
        );
    }
    let log = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert_eq!(
        log.matches("ERROR").count(),
        2,
        "every such request is an error in the log: {log}"
    );
    assert!(
        log.contains("into_make_service_with_connect_info::<std::net::SocketAddr>()"),
        "{log}"
    );
}

#[cfg(feature = "openapi")]
#[tokio::test]
async fn the_openapi_document_lists_the_routes_served_under_the_prefix_they_are_nested_at() {
    let plain = app(&Endpoints::new(service()));
    let (status, headers, document) =
        send(&plain, Request::get("/auth/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["servers"][0]["url"], "/auth");
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.contains_key("/login") && paths.contains_key("/openapi.json"));
    assert!(!paths.contains_key("/password/forgot") && !paths.contains_key("/admin/users"));

    assert!(!paths.contains_key("/login/mfa"));

    let with_totp = Arc::new(
        AuthService::new(
            MemoryStore::new(),
            Tokens::new(
                SigningKey::hs256(b"a test secret of at least thirty-two bytes").unwrap(),
                "https://app.test",
                "app",
            ),
        )
        .with_totp(totp()),
    );
    let full = app(&Endpoints::with_second_factor(with_totp).with_mail(|_: auth_http::Mail| {}));
    let (_, _, document) = send(&full, Request::get("/auth/openapi.json").body(Body::empty()).unwrap()).await;
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.contains_key("/password/forgot") && paths.contains_key("/admin/users/{id}/roles"));
    assert!(paths.contains_key("/login/mfa") && paths.contains_key("/mfa/recovery-codes"));
}
