//! Pool connections kept between reads, so that a read costs one round trip.
//!
//! sqlx's pool checks every connection given back to it with a round trip to the server:
//! dropping a `PoolConnection` spawns a task that pings it, and no option turns that off.
//! With the default `test_before_acquire` it pings every connection taken too. The session
//! check reads on every request, so through the pool each read paid two round trips and a
//! task beside the one round trip it needs. Instead the store keeps a few connections
//! checked out of the pool between its reads: a read takes one and, once its statement
//! has completed, puts it back here.
//!
//! What sqlx's checks were for stays covered:
//! - A read that fails, or is cancelled midway (its request was dropped), does not put its
//!   connection back. The connection goes back to sqlx's pool, whose checks close it or
//!   clean it up.
//! - A connection the server ended while it was kept (a restart, an administrator, an idle
//!   timeout) fails its next read with a connection error. The other idle kept
//!   connections, which the server may have ended too, go back to the pool, which checks
//!   them; the read, which changes nothing, runs once more.
//! - Connections kept from before an outage the store's watch saw are not used again.
//! - A connection is kept for at most [`KEEP_FOR`]: the next read after that gives it back
//!   to the pool, where its `max_lifetime` and `idle_timeout` apply. (While no read comes,
//!   the idle kept connections stay open, as a pool's `min_connections` would.)
//! - At most half the pool's connections are kept, so writes always find the other half;
//!   none of a pool of one. Reads take turns at those (a turn is waited for at most the
//!   pool's acquire timeout), and a read opens a connection of the pool only when none is
//!   idle here, so the kept ones, in use or idle, are never more than the turns. (A read
//!   already waiting for the pool when another puts one back goes on waiting for the pool:
//!   only while writes hold the pool's whole other half can that wait run out.)
//! - Once the pool is closed, the idle kept connections go back to it and no more are
//!   kept: `PgPool::close` waits for every connection out of the pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long a connection is kept before it goes back to the pool.
pub(crate) const KEEP_FOR: Duration = Duration::from_secs(60);

/// The idle kept connections of one pool, shared by a store's clones.
#[derive(Debug)]
pub(crate) struct KeptConnections {
    idle: Mutex<Vec<Kept>>,
    /// A turn per connection that may be kept.
    turns: Semaphore,
    cap: usize,
    acquire_timeout: Duration,
    /// Whether the task that gives the idle ones back when the pool closes was started.
    watching_close: AtomicBool,
}

/// A connection out of the pool, with what decides whether it may be used again.
#[derive(Debug)]
pub(crate) struct Kept {
    pub(crate) connection: PoolConnection<Postgres>,
    /// The outage watch's count of changes when the connection was first kept.
    outages: u64,
    since: Instant,
}

impl KeptConnections {
    /// Keeps at most half of `max_connections` (rounded down); a read waits for its turn
    /// at most `acquire_timeout`, as it would for the pool.
    pub(crate) fn new(max_connections: u32, acquire_timeout: Duration) -> Self {
        let cap = usize::try_from(max_connections / 2).unwrap_or(usize::MAX);
        Self {
            idle: Mutex::new(Vec::with_capacity(cap)),
            turns: Semaphore::new(cap),
            cap,
            acquire_timeout,
            watching_close: AtomicBool::new(false),
        }
    }

    /// Whether any connection is kept: not from a pool of one.
    pub(crate) fn keeps_any(&self) -> bool {
        self.cap > 0
    }

    /// A read's turn, once one is free within the acquire timeout; `None` when none was.
    pub(crate) async fn turn(&self) -> Option<SemaphorePermit<'_>> {
        if let Ok(turn) = self.turns.try_acquire() {
            return Some(turn);
        }
        tokio::time::timeout(self.acquire_timeout, self.turns.acquire())
            .await
            .ok()?
            .ok()
    }

    /// An idle kept connection that may still be used, if any; the idle ones that may not
    /// (kept before the watch's count became `outages`, or for [`KEEP_FOR`]) go back to the
    /// pool.
    pub(crate) fn take(&self, outages: u64) -> Option<Kept> {
        let now = Instant::now();
        let usable = |kept: &Kept| kept.outages == outages && now.saturating_duration_since(kept.since) < KEEP_FOR;
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.iter().all(usable) {
            return idle.pop();
        }
        let (usable, stale): (Vec<Kept>, Vec<Kept>) = std::mem::take(&mut *idle).into_iter().partition(usable);
        *idle = usable;
        let taken = idle.pop();
        drop(idle);
        drop(stale);
        taken
    }

    /// Gives every idle kept connection back to the pool, which checks each.
    pub(crate) fn forget_idle(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        drop(idle);
    }

    /// Keeps `connection`, taken from `pool` while the watch's count was `outages`, after a
    /// read on it completed (with its turn still held: the turns bound how many are kept).
    pub(crate) fn keep_new(self: &Arc<Self>, connection: PoolConnection<Postgres>, outages: u64, pool: &PgPool) {
        self.watch_close(pool);
        self.put_back(
            Kept {
                connection,
                outages,
                since: Instant::now(),
            },
            pool,
        );
    }

    /// Puts back `kept` after a read on it completed (with its turn still held); gives it
    /// back to `pool` instead once the pool is closed.
    pub(crate) fn put_back(&self, kept: Kept, pool: &PgPool) {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(kept);
        // Checked after the push: either the close task, which runs after the pool is
        // marked closed, finds this one, or this check finds the pool closed.
        if pool.is_closed() {
            self.forget_idle();
        }
    }

    /// Starts, once, the task that gives the idle kept connections back when `pool` closes.
    fn watch_close(self: &Arc<Self>, pool: &PgPool) {
        if self.watching_close.load(Ordering::Relaxed) {
            return;
        }
        // Not on a Tokio runtime (sqlx itself needs one): try again at the next keep.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.watching_close.swap(true, Ordering::AcqRel) {
            return;
        }
        let (closed, kept) = (pool.close_event(), Arc::downgrade(self));
        runtime.spawn(async move {
            closed.await;
            if let Some(kept) = kept.upgrade() {
                kept.forget_idle();
            }
        });
    }
}
