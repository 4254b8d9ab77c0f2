//! A service of its own that embeds auth-core on Axum: the whole auth API beside two
//! routes of the service, one for any signed-in account and one for editors. The README's
//! "Embedding" chapter walks through it; `tests/embedded.rs` drives it over HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use auth_axum::{Authorized, CurrentUser, Endpoints};
use auth_core::{AuthService, Role, SigningKey, Tokens};
use auth_http::RoleRequirement;
use auth_store_sqlite::SqliteStore;
use axum::{Router, routing::get};

/// The accounts that may read drafts.
struct Editor;

impl RoleRequirement for Editor {
    const ROLE: Role = Role::from_static("editor");
}

async fn greeting(CurrentUser(me): CurrentUser) -> String {
    format!("hello {}", me.user.email.as_str())
}

async fn drafts(Authorized(me, ..): Authorized<Editor>) -> String {
    format!("the drafts, for {}", me.user.email.as_str())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let store = SqliteStore::open(env("DATABASE_PATH", "app.db")).await?;
    let key = SigningKey::hs256(std::env::var("SECRET_KEY")?.as_bytes())?;
    let tokens = Tokens::new(key, "http://127.0.0.1:3000", "embed-axum");
    let endpoints = Endpoints::new(Arc::new(AuthService::new(store, tokens)));
    let app = Router::new()
        .route("/greeting", get(greeting))
        .route("/drafts", get(drafts))
        .merge(auth_axum::router(&endpoints))
        .with_state(endpoints);
    let listener = tokio::net::TcpListener::bind(env("BIND", "127.0.0.1:3000")).await?;
    println!("listening address={}", listener.local_addr()?);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
