//! A service of its own that embeds auth-core on Actix-web: the whole auth API under
//! `/auth` beside two routes of the service, one for any signed-in account and one for
//! editors. The README's "Embedding" chapter walks through it; `tests/embedded.rs` drives
//! it over HTTP.

use std::sync::Arc;

use actix_web::{App, HttpServer, web};
use auth_actix::{Authorized, CurrentUser, Endpoints};
use auth_core::{AuthService, Role, SigningKey, Tokens};
use auth_http::RoleRequirement;
use auth_store_sqlite::SqliteStore;

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

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let store = SqliteStore::open(env("DATABASE_PATH", "app.db")).await?;
    let key = SigningKey::hs256(std::env::var("SECRET_KEY")?.as_bytes())?;
    let tokens = Tokens::new(key, "http://127.0.0.1:3000", "embed-actix");
    let endpoints = Endpoints::new(Arc::new(AuthService::new(store, tokens)));
    let listener = std::net::TcpListener::bind(env("BIND", "127.0.0.1:3000"))?;
    println!("listening address={}", listener.local_addr()?);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(endpoints.clone()))
            .route("/greeting", web::get().to(greeting))
            .route("/drafts", web::get().to(drafts))
            .service(web::scope("/auth").configure(auth_actix::configure(&endpoints)))
    })
    .listen(listener)?
    .run()
    .await?)
}
