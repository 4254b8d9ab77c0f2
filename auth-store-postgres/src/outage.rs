//! Knowing at once that the database is gone, and when it is back.
//!
//! When PostgreSQL stops (or restarts, or fails over), every call would otherwise wait out
//! the pool's acquire timeout: sqlx takes a refused connection for a server starting up
//! and retries until the deadline, so each request hangs for seconds and the HTTP server
//! piles them up. Instead, a task beside the pool keeps one connection of its own and
//! checks it every [`CHECK_PERIOD`]: when it breaks and a new one cannot be made either,
//! the database is *down*, and every call of the store (the ones waiting in the pool too)
//! fails at once as [`StoreError::Unavailable`](auth_core::StoreError) (HTTP 503 with
//! `Retry-After`), until the task connects again. A broken connection that is replaced at
//! once (the server ended an idle session, an administrator ended the backend) is not an
//! outage.
//!
//! The task starts with the store's first call (it needs the caller's Tokio runtime) and
//! ends, closing its connection, once every clone of the store is dropped.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;

/// How often the watch checks its connection (and, while the database is down, tries to
/// connect again).
pub(crate) const CHECK_PERIOD: Duration = Duration::from_millis(250);

/// How long a check or a new connection may take before the database counts as
/// unreachable (a network that drops packets answers nothing at all).
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether the database is down, shared by a store's clones and its watch task.
#[derive(Debug)]
pub(crate) struct OutageWatch {
    /// `true` while the database is down.
    down: watch::Sender<bool>,
    /// Whether the watch task was started (or is not wanted).
    started: AtomicBool,
    /// How many times the database went down or came back, as the watch saw it.
    changes: AtomicU64,
}

impl OutageWatch {
    /// A watch that starts its task with the store's first call; `enabled: false` never
    /// starts one (calls then wait out the pool's acquire timeout in an outage).
    pub(crate) fn new(enabled: bool) -> Arc<Self> {
        Arc::new(Self {
            down: watch::Sender::new(false),
            started: AtomicBool::new(!enabled),
            changes: AtomicU64::new(0),
        })
    }

    /// How many times the database went down or came back: a connection made before the
    /// count last changed may be one the server no longer knows.
    pub(crate) fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Whether the watch sees the database down now.
    pub(crate) fn is_down(&self) -> bool {
        *self.down.borrow()
    }

    /// Runs `work` (a query or a connection acquisition of the store's pool) unless the
    /// database is down, and stops waiting for it as soon as the database goes down.
    pub(crate) async fn guard<T>(
        self: &Arc<Self>,
        pool: &PgPool,
        work: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        self.start(pool);
        let mut down = self.down.subscribe();
        if *down.borrow_and_update() {
            return Err(unreachable());
        }
        tokio::select! {
            biased;
            result = work => result,
            _ = down.wait_for(|down| *down) => Err(unreachable()),
        }
    }

    fn start(self: &Arc<Self>, pool: &PgPool) {
        if self.started.load(Ordering::Relaxed) || self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let options = (*pool.connect_options()).clone();
                runtime.spawn(watch(Arc::downgrade(self), options));
            }
            // Not on a Tokio runtime (sqlx itself needs one): try again at the next call.
            Err(_) => self.started.store(false, Ordering::Release),
        }
    }

    fn set_down(&self, down: bool) {
        let changed = self
            .down
            .send_if_modified(|state| std::mem::replace(state, down) != down);
        if changed {
            self.changes.fetch_add(1, Ordering::AcqRel);
        }
        if changed && down {
            tracing::warn!("the database is unreachable: calls fail at once (503) until it answers again");
        } else if changed {
            tracing::info!("the database answers again");
        }
    }
}

/// The error of a call refused during an outage: an I/O error, which the store reports as
/// [`StoreError::Unavailable`](auth_core::StoreError).
fn unreachable() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "the database is unreachable (the store's watch connects again every 250 ms)",
    ))
}

/// The watch task: checks its connection every [`CHECK_PERIOD`] until the store is gone.
async fn watch(store: Weak<OutageWatch>, options: PgConnectOptions) {
    let options = options.application_name("auth-store-postgres outage watch");
    let mut connection = connect(&options).await;
    loop {
        tokio::time::sleep(CHECK_PERIOD).await;
        if store.strong_count() == 0 {
            break;
        }
        let healthy = match connection.as_mut() {
            Some(connection) => matches!(tokio::time::timeout(CHECK_TIMEOUT, connection.ping()).await, Ok(Ok(()))),
            None => false,
        };
        if !healthy {
            // Dropped, not closed: closing talks to a server that may not answer.
            drop(connection.take());
            connection = connect(&options).await;
        }
        let Some(watch) = store.upgrade() else { break };
        watch.set_down(connection.is_none());
    }
    if let Some(connection) = connection {
        let _ = tokio::time::timeout(CHECK_TIMEOUT, connection.close()).await;
    }
}

async fn connect(options: &PgConnectOptions) -> Option<PgConnection> {
    match tokio::time::timeout(CHECK_TIMEOUT, PgConnection::connect_with(options)).await {
        Ok(Ok(connection)) => Some(connection),
        _ => None,
    }
}

/// Runs a future of the store's pool through its [`OutageWatch`]:
/// `query.fetch_one(&self.pool).guarded(self).await`.
pub(crate) trait Guarded<T>: Future<Output = Result<T, sqlx::Error>> + Sized {
    /// See [`OutageWatch::guard`].
    fn guarded(self, store: &crate::PostgresStore) -> impl Future<Output = Result<T, sqlx::Error>> + Send
    where
        Self: Send,
        T: Send;
}

impl<T, F: Future<Output = Result<T, sqlx::Error>>> Guarded<T> for F {
    fn guarded(self, store: &crate::PostgresStore) -> impl Future<Output = Result<T, sqlx::Error>> + Send
    where
        Self: Send,
        T: Send,
    {
        let (watch, pool) = (store.outage.clone(), store.pool.clone());
        async move { watch.guard(&pool, self).await }
    }
}
