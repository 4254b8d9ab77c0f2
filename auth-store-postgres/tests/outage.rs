//! Losing the database, for real, and getting it back: the store answers a typed
//! `unavailable` (HTTP 503) instead of hanging, and the same store works again once the
//! database is back, without a restart.
//!
//! The connection is cut by a TCP proxy between the store and the server (so the rest of
//! the test suite keeps its database), and by the server itself killing the store's
//! backends (`pg_terminate_backend`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_core::conformance::{sample_user, unique_email};
use auth_core::{AuthError, AuthService, ClientInfo, Password, SigningKey, StoreError, Tokens, UserStore};
use sqlx::postgres::PgConnectOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy that can drop every connection and refuse new ones, then let them through
/// again.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// While cut: hold new connections open without an answer (a black hole) instead of
    /// closing them.
    silent: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let silent = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (accept_up, accept_links) = (up.clone(), links.clone());
        let (accept_silent, accept_held) = (silent.clone(), held.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !accept_up.load(Ordering::SeqCst) {
                    if accept_silent.load(Ordering::SeqCst) {
                        accept_held.lock().unwrap().push(inbound);
                    }
                    continue; // otherwise dropped: the client sees the connection closed
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                accept_links.lock().unwrap().push(link);
            }
        });
        Self {
            addr,
            up,
            silent,
            links,
            held,
        }
    }

    /// The network fails: open connections die, new ones are closed at once.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// The network fails silently: connections die, new ones get no answer at all.
    fn black_hole(&self) {
        self.silent.store(true, Ordering::SeqCst);
        self.cut();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
        self.silent.store(false, Ordering::SeqCst);
        self.held.lock().unwrap().clear();
    }
}

/// A proxy in front of the test server, and the options that connect through it.
async fn behind_proxy() -> (Proxy, PgConnectOptions) {
    let server = PgConnectOptions::from_str(&common::url()).unwrap();
    let target: SocketAddr = format!("{}:{}", server.get_host(), server.get_port()).parse().unwrap();
    let proxy = Proxy::start(target).await;
    let through = server.host("127.0.0.1").port(proxy.addr.port());
    (proxy, through)
}

/// Guards against a hang (the property under test): far longer than the acquire timeout.
async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .expect("the store answered instead of hanging")
}

/// Calls `call` until it is no longer `Unavailable`: once the database answers again, the
/// store's outage watch lets calls through within its check period (a quarter second).
async fn once_back<T, Fut: Future<Output = Result<T, StoreError>>>(
    mut call: impl FnMut() -> Fut,
) -> Result<T, StoreError> {
    bounded(async {
        loop {
            match call().await {
                Err(StoreError::Unavailable(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
                other => return other,
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_is_unavailable_and_the_same_store_recovers() {
    let Some(direct) = common::pool().await else {
        return;
    };
    drop(direct);
    let (proxy, through) = behind_proxy().await;
    let store = common::store_with(through).await;
    let user = sample_user(unique_email("outage"));
    store.insert_user(&user).await.unwrap();
    let auth = AuthService::new(
        store.clone(),
        Tokens::new(SigningKey::hs256(&[9; 32]).unwrap(), "https://auth.test", "test"),
    );

    proxy.cut();
    for _ in 0..3 {
        let error = bounded(store.find_user_by_id(user.id)).await.unwrap_err();
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    }
    let error = bounded(auth.login(
        user.email.as_str(),
        Password::new("whatever it is"),
        &ClientInfo::unknown(),
    ))
    .await
    .unwrap_err();
    assert!(matches!(error, AuthError::Unavailable(_)), "{error:?}");
    assert_eq!((error.code(), error.http_status()), ("unavailable", 503));
    assert!(error.retry_after().is_some());

    proxy.restore();
    let found = once_back(|| store.find_user_by_id(user.id)).await;
    assert_eq!(found.unwrap(), Some(user.clone()), "the same store works again");

    // No answer at all: the pool's acquire timeout bounds the wait.
    proxy.black_hole();
    let error = bounded(store.find_user_by_id(user.id)).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    proxy.restore();
    let found = once_back(|| store.find_user_by_id(user.id)).await;
    assert_eq!(found.unwrap(), Some(user.clone()));
    let again = sample_user(unique_email("after-outage"));
    bounded(store.insert_user(&again)).await.unwrap();
}

/// Guards a call that must not wait out the pool's acquire timeout: far shorter than it.
async fn without_waiting<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .expect("the call waited for the pool instead of failing at once")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_an_outage_calls_fail_at_once_even_those_already_waiting_and_work_again_after() {
    let Some(direct) = common::pool().await else {
        return;
    };
    drop(direct);
    let (proxy, through) = behind_proxy().await;
    // An acquire timeout far longer than the guard: only the outage watch can end a call
    // in time.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(120))
        .connect_lazy_with(through);
    let store = auth_store_postgres::PostgresStore::new(pool)
        .with_schema(&common::fresh_schema_name())
        .unwrap();
    bounded(store.migrate()).await.unwrap();
    let user = sample_user(unique_email("watched"));
    store.insert_user(&user).await.unwrap();

    for round in 0..3 {
        // Calls made at the moment the database goes are waiting for a connection (sqlx
        // retries a refused one until the acquire timeout) when the watch finds out. In
        // the second round the network answers nothing at all: a check without an answer
        // counts as an outage too.
        if round == 1 {
            proxy.black_hole();
        } else {
            proxy.cut();
        }
        let waiting: Vec<_> = (0..6)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.find_user_by_id(user.id).await })
            })
            .collect();
        for call in waiting {
            let error = without_waiting(call).await.unwrap().unwrap_err();
            assert!(matches!(error, StoreError::Unavailable(_)), "round {round}: {error:?}");
        }
        // The watch comes to see the database down (those calls may have failed on their
        // own first), and says so without asking it: a registration then spends no hash.
        let known = async {
            while !store.known_unavailable().await {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), known)
            .await
            .expect("the watch never reported the outage");
        let error = without_waiting(store.insert_user(&sample_user(unique_email("refused"))))
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Unavailable(_)), "round {round}: {error:?}");

        proxy.restore();
        let found = once_back(|| store.find_user_by_id(user.id)).await;
        assert_eq!(found.unwrap(), Some(user.clone()), "round {round}");
        assert!(!store.known_unavailable().await, "round {round}: the watch saw it back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_watch_an_outage_waits_out_the_acquire_timeout() {
    let Some(direct) = common::pool().await else {
        return;
    };
    drop(direct);
    let (proxy, through) = behind_proxy().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with(through);
    let store = auth_store_postgres::PostgresStore::new(pool)
        .with_schema(&common::fresh_schema_name())
        .unwrap()
        .without_outage_watch();
    bounded(store.migrate()).await.unwrap();
    let user = sample_user(unique_email("unwatched"));
    store.insert_user(&user).await.unwrap();
    proxy.cut();
    let error = bounded(store.find_user_by_id(user.id)).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(!store.known_unavailable().await, "without the watch, nothing is known");
    proxy.restore();
    // No watch to wait for: the next call connects again itself.
    assert_eq!(bounded(store.find_user_by_id(user.id)).await.unwrap(), Some(user));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_killed_by_the_server_are_replaced_transparently() {
    let Some(admin) = common::pool().await else {
        return;
    };
    let name = format!("auth-outage-{}", uuid::Uuid::new_v4().simple());
    let options = PgConnectOptions::from_str(&common::url())
        .unwrap()
        .application_name(&name);
    let store = common::store_with(options).await;
    let user = sample_user(unique_email("terminated"));
    store.insert_user(&user).await.unwrap();

    for round in 0..3 {
        let killed: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(&name)
        .fetch_one(&admin)
        .await
        .unwrap();
        assert!(killed >= 1, "round {round}: the store's connections were killed");
        let found = bounded(store.find_user_by_id(user.id)).await;
        assert_eq!(found.unwrap(), Some(user.clone()), "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_against_a_silent_server_is_unavailable_within_the_acquire_timeout() {
    let Some(direct) = common::pool().await else {
        return;
    };
    drop(direct);
    let (proxy, through) = behind_proxy().await;
    proxy.black_hole();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with(through);
    let store = auth_store_postgres::PostgresStore::new(pool)
        .with_schema(&common::fresh_schema_name())
        .unwrap();
    let error = bounded(store.migrate()).await.unwrap_err();
    assert!(
        matches!(error, auth_store_postgres::MigrateError::Unavailable(_)),
        "{error:?}"
    );
}
