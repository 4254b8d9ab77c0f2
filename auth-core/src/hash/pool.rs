use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, TryAcquireError};

/// The bounded pool on which every password hash runs.
///
/// Argon2 occupies a core and `m` KiB of memory for tens of milliseconds. Run on an
/// async worker thread, a login flood would stall every other request on that thread;
/// queued without bound, it would grow memory and latency without limit. So hashing runs
/// on tokio's blocking threads, at most `permits` at a time (memory = permits × `m`).
/// Callers that find every permit taken wait in a FIFO queue; when the queue is full,
/// or a wait exceeds `max_wait`, the call fails at once with [`HashPoolError::Busy`] and
/// the server can answer 503 with `Retry-After` while cheap requests stay fast.
///
/// | setting | default | why |
/// |---|---|---|
/// | permits | available parallelism (cores) | one hash per core saturates the CPU; more only adds memory |
/// | `max_queue` | 128 waiting callers | absorbs a burst (50 simultaneous logins all succeed) |
/// | `max_wait` | 5 s | past this, the client is better told to retry |
///
/// Cheap to clone; clones share permits and queue. Needs a Tokio runtime with the time
/// driver enabled (`#[tokio::main]`, `Runtime::new` and Actix's runtime all enable it):
/// the bounded wait is a Tokio timer.
///
/// ```
/// use std::time::Duration;
/// use auth_core::HashPool;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pool = HashPool::new(2).with_max_queue(16).with_max_wait(Duration::from_secs(2));
/// let answer = pool.run(|| 6 * 7).await.unwrap();
/// assert_eq!(answer, 42);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HashPool {
    semaphore: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    permits: usize,
    max_queue: usize,
    max_wait: Duration,
}

/// Why a job did not run to completion on the [`HashPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashPoolError {
    /// Every permit was taken and the queue was full, or the wait ran out.
    #[error("password hashing is saturated; retry later")]
    Busy,
    /// The job panicked or the runtime is shutting down.
    #[error("the password hashing task failed")]
    TaskFailed,
}

/// Default queue length: enough for a burst of 50 logins on a single-core machine.
const DEFAULT_MAX_QUEUE: usize = 128;
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(5);

impl HashPool {
    /// A pool running at most `permits` hashes at once (at least one).
    pub fn new(permits: usize) -> Self {
        let permits = permits.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            semaphore: Arc::new(Semaphore::new(permits)),
            waiting: Arc::new(AtomicUsize::new(0)),
            permits,
            max_queue: DEFAULT_MAX_QUEUE,
            max_wait: DEFAULT_MAX_WAIT,
        }
    }

    /// How many callers may wait for a permit; the next one gets `Busy` immediately.
    /// Zero means never wait.
    #[must_use]
    pub fn with_max_queue(mut self, max_queue: usize) -> Self {
        self.max_queue = max_queue;
        self
    }

    /// How long a caller may wait for a permit before getting `Busy`.
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// How many hashes may run at once.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Runs `job` on a blocking thread once a permit is free.
    ///
    /// If the returned future is dropped while waiting, the caller leaves the queue; once
    /// the job has started it runs to completion (it cannot be interrupted) and keeps its
    /// permit until then, so the bound on concurrent hashes always holds.
    ///
    /// # Errors
    ///
    /// [`HashPoolError::Busy`] when the queue is full or `max_wait` passes;
    /// [`HashPoolError::TaskFailed`] if the job panics.
    pub async fn run<T, F>(&self, job: F) -> Result<T, HashPoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = match Arc::clone(&self.semaphore).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(HashPoolError::TaskFailed),
            Err(TryAcquireError::NoPermits) => {
                let _place = QueuePlace::take(&self.waiting, self.max_queue).ok_or(HashPoolError::Busy)?;
                match tokio::time::timeout(self.max_wait, Arc::clone(&self.semaphore).acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_closed)) => return Err(HashPoolError::TaskFailed),
                    Err(_elapsed) => return Err(HashPoolError::Busy),
                }
            }
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing task failed");
            HashPoolError::TaskFailed
        })
    }
}

impl Default for HashPool {
    /// One permit per available core.
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// A place in the wait queue, given back on drop (including when the caller gives up).
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    fn take(waiting: &'a AtomicUsize, max_queue: usize) -> Option<Self> {
        let place = Self(waiting);
        // `place` is dropped (and the count restored) when the queue is already full.
        (waiting.fetch_add(1, Ordering::AcqRel) < max_queue).then_some(place)
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Occupies every permit of `pool` until the returned senders are dropped or used.
    async fn occupy(pool: &HashPool) -> Vec<mpsc::Sender<()>> {
        let mut releases = Vec::new();
        for _ in 0..pool.permits() {
            let (release, wait) = mpsc::channel::<()>();
            let (started_tx, started) = tokio::sync::oneshot::channel();
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(move || {
                    let _ = started_tx.send(());
                    let _ = wait.recv();
                })
                .await
            });
            started.await.unwrap();
            releases.push(release);
        }
        releases
    }

    #[tokio::test]
    async fn runs_jobs_off_the_async_thread() {
        let pool = HashPool::new(1);
        let caller = std::thread::current().id();
        let job_thread = pool.run(|| std::thread::current().id()).await.unwrap();
        assert_ne!(caller, job_thread);
    }

    #[tokio::test]
    async fn full_queue_is_busy_at_once() {
        let pool = HashPool::new(1).with_max_queue(0);
        let releases = occupy(&pool).await;
        assert_eq!(pool.run(|| ()).await, Err(HashPoolError::Busy));
        drop(releases);
        // Once the permit is free again, work runs.
        let pool2 = pool.clone();
        tokio::time::timeout(Duration::from_secs(30), async move {
            loop {
                if pool2.run(|| ()).await.is_ok() {
                    break;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_too_long_is_busy() {
        let pool = HashPool::new(1)
            .with_max_queue(10)
            .with_max_wait(Duration::from_secs(5));
        // Hold the permit directly: a running blocking task would stop paused time from
        // advancing on its own.
        let _held = Arc::clone(&pool.semaphore).acquire_owned().await.unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(pool.run(|| ()).await, Err(HashPoolError::Busy));
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(pool.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn the_queue_is_bounded_and_given_back() {
        let pool = HashPool::new(1)
            .with_max_queue(2)
            .with_max_wait(Duration::from_secs(3600));
        let releases = occupy(&pool).await;
        let first = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(|| 1).await }
        });
        let second = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(|| 2).await }
        });
        while pool.waiting.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            pool.run(|| 3).await,
            Err(HashPoolError::Busy),
            "third waiter is over the bound"
        );
        assert_eq!(pool.waiting.load(Ordering::Acquire), 2);
        drop(releases);
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(second.await.unwrap(), Ok(2));
        assert_eq!(pool.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn never_more_than_permits_at_once() {
        let pool = HashPool::new(3);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let jobs = (0..40).map(|_| {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            })
        });
        for job in jobs.collect::<Vec<_>>() {
            job.await.unwrap().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 3);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_frees_its_permit() {
        let pool = HashPool::new(1).with_max_queue(0);
        #[allow(clippy::panic)]
        let result = pool.run(|| panic!("boom")).await;
        assert_eq!(result, Err(HashPoolError::TaskFailed));
        assert_eq!(pool.run(|| 5).await, Ok(5));
    }
}
