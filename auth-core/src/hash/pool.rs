use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, oneshot};

/// The bounded pool on which every password hash runs.
///
/// Argon2 occupies a core and `m` KiB of memory for tens of milliseconds. Run on an
/// async worker thread, a login flood would stall every other request on that thread;
/// queued without bound, it would grow memory and latency without limit. So hashing runs
/// on threads of the pool's own, at most `permits` at a time (memory = permits × `m`).
/// Callers that find every permit taken wait in a FIFO queue; when the queue is full,
/// or a wait exceeds `max_wait`, the call fails at once with [`HashPoolError::Busy`] and
/// the server can answer 503 with `Retry-After` while cheap requests stay fast.
///
/// The threads are the pool's own, not Tokio's blocking threads (which the stores' blocking
/// calls use), so that they can run at a lower scheduling priority than request handling
/// ([`with_idle_scheduling`](Self::with_idle_scheduling),
/// [`with_thread_niceness`](Self::with_thread_niceness)). They are started as concurrent
/// hashes need them, never more than the permits, and end when the last clone of the pool
/// is dropped. The first thread takes every job it is free for; the others take the rest.
///
/// | setting | default | why |
/// |---|---|---|
/// | permits | available parallelism (cores) | one hash per core saturates the CPU; more only adds memory |
/// | `max_queue` | 128 waiting callers | absorbs a burst (50 simultaneous logins all succeed) |
/// | `max_wait` | 5 s | past this, the client is better told to retry |
/// | `thread_niceness` | 0 | hashing competes for the CPU as an equal; see [`with_thread_niceness`](Self::with_thread_niceness) for the trade-off |
/// | `idle_scheduling` | off | every thread competes for the CPU as an equal; see [`with_idle_scheduling`](Self::with_idle_scheduling) for what idle scheduling beyond the first thread buys and costs |
///
/// Cheap to clone; clones share permits, queue and threads. Needs a Tokio runtime with
/// the time driver enabled (`#[tokio::main]`, `Runtime::new` and Actix's runtime all
/// enable it): the bounded wait is a Tokio timer.
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
    threads: Arc<Threads>,
    permits: usize,
    max_queue: usize,
    max_wait: Duration,
    priority: Priority,
}

/// The scheduling priority the pool's threads give themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Priority {
    niceness: u8,
    idle: bool,
}

/// Why a job did not run to completion on the [`HashPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashPoolError {
    /// Every permit was taken and the queue was full, or the wait ran out.
    #[error("password hashing is saturated; retry later")]
    Busy,
    /// The job panicked, or no hashing thread could be started.
    #[error("the password hashing task failed")]
    TaskFailed,
}

/// Default queue length: enough for a burst of 50 logins on a single-core machine.
const DEFAULT_MAX_QUEUE: usize = 128;
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(5);
/// Default niceness of the hashing threads: none, the process's own priority (see
/// `with_thread_niceness` for what a higher one trades).
const DEFAULT_THREAD_NICENESS: u8 = 0;

impl HashPool {
    /// A pool running at most `permits` hashes at once (at least one).
    pub fn new(permits: usize) -> Self {
        let permits = permits.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            semaphore: Arc::new(Semaphore::new(permits)),
            waiting: Arc::new(AtomicUsize::new(0)),
            threads: Arc::new(Threads::new()),
            permits,
            max_queue: DEFAULT_MAX_QUEUE,
            max_wait: DEFAULT_MAX_WAIT,
            priority: Priority {
                niceness: DEFAULT_THREAD_NICENESS,
                idle: false,
            },
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

    /// How much the hashing threads' nice value is raised above the process's (Linux
    /// only; elsewhere the threads run at the process's priority): 0 by default, at most
    /// 19 in all.
    ///
    /// A higher nice value does not slow a hash down on an otherwise idle core; it decides
    /// who runs when a request and a hash want the same core: at 10, a hashing thread's
    /// share of a contended core is about a tenth of a request thread's. Measured with the
    /// example server on 2 cores during a 64-connection login flood (`benches/BENCHMARKS.md`,
    /// "The hash pool's threads"): a `GET /me` client beside it was answered 70 % more
    /// often with a median p99 of 3.9 ms instead of 5.8, and the flood's logins went from
    /// 72 to 41 a second, since that client took the cycles hashing lost. Raise it where
    /// cheap requests matter more than login throughput when both want the CPU. The pool
    /// gets threads of its own: clones made before keep theirs, at their niceness, and
    /// share only the permits.
    ///
    /// ```
    /// use auth_core::HashPool;
    ///
    /// // Request handling first; hashing gets the cycles nothing else wants.
    /// let pool = HashPool::new(4).with_thread_niceness(10);
    /// assert_eq!(pool.thread_niceness(), 10);
    /// ```
    #[must_use]
    pub fn with_thread_niceness(mut self, increment: u8) -> Self {
        self.priority.niceness = increment.min(19);
        self.threads = Arc::new(Threads::new());
        self
    }

    /// Whether every hashing thread but the first runs under Linux's `SCHED_IDLE` policy:
    /// only when no other thread of the machine wants its core. Off by default; elsewhere
    /// than Linux the setting has no effect. The first thread keeps the normal policy (and
    /// the [niceness](Self::with_thread_niceness)) and takes every job it is free for, so
    /// a lone login never waits for spare cycles.
    ///
    /// What it buys: a request never waits for a core behind the hashes of the idle
    /// threads. Linux wakes a request's thread on a core that runs only `SCHED_IDLE` work
    /// as on a free one, so with a single thread at the normal policy only one core is ever
    /// contended. Measured with the example server on 2 cores during a 64-connection login
    /// flood, beside a `GET /me` client pausing 1 ms between requests (`benches/BENCHMARKS.md`,
    /// "One hashing thread at the normal policy"): that client's p99 was 0.5–0.8 ms instead
    /// of 3.3–4.1 ms with every thread at the normal policy, and 0.5–0.6 ms with every
    /// thread idle, for the same logins a second.
    ///
    /// What it costs: on a CPU kept busy by other work (cheap requests at the CPU's limit,
    /// other processes of the machine), the idle threads' jobs wait for spare cycles, so
    /// logins and registrations beyond the one the first thread is hashing are slow; the
    /// first thread competes for the CPU as an equal, so they never stop. Seen in a test:
    /// under the example server's own flood of failing requests during a database outage, a
    /// registration whose hash went to an idle thread was answered after a second instead
    /// of at once. That is why it is off by default: turn it on where the CPU has headroom
    /// and cheap requests' latency matters more than hashing's share of a saturated CPU.
    ///
    /// ```
    /// use auth_core::HashPool;
    ///
    /// assert!(!HashPool::new(4).idle_scheduling(), "off by default");
    /// let pool = HashPool::new(4).with_idle_scheduling(true);
    /// assert!(pool.idle_scheduling());
    /// ```
    #[must_use]
    pub fn with_idle_scheduling(mut self, idle: bool) -> Self {
        self.priority.idle = idle;
        self.threads = Arc::new(Threads::new());
        self
    }

    /// How many hashes may run at once.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// How much the hashing threads' nice value is raised: see
    /// [`with_thread_niceness`](Self::with_thread_niceness).
    pub fn thread_niceness(&self) -> u8 {
        self.priority.niceness
    }

    /// Whether the hashing threads beyond the first run at idle priority: see
    /// [`with_idle_scheduling`](Self::with_idle_scheduling).
    pub fn idle_scheduling(&self) -> bool {
        self.priority.idle
    }

    /// Runs `job` on one of the pool's threads once a permit is free: [`reserve`](Self::reserve)
    /// then [`HashSlot::run`].
    ///
    /// The job runs on a plain thread, outside any Tokio runtime (`Handle::current()`
    /// panics there, which fails the call with `TaskFailed`): a hash needs none.
    ///
    /// If the returned future is dropped while waiting, the caller leaves the queue; once
    /// the job has started it runs to completion (it cannot be interrupted) and keeps its
    /// permit until then, so the bound on concurrent hashes always holds.
    ///
    /// # Errors
    ///
    /// [`HashPoolError::Busy`] when the queue is full or `max_wait` passes;
    /// [`HashPoolError::TaskFailed`] if the job panics or no thread could be started.
    pub async fn run<T, F>(&self, job: F) -> Result<T, HashPoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.reserve().await?.run(job).await
    }

    /// Takes a permit for one job, waiting in the queue as [`run`](Self::run) does, before
    /// the job is known: a caller that must read something first (the account whose
    /// password a login checks) learns that the pool is saturated before it does that
    /// work, so a refusal under a flood costs no read. The permit is held from here until
    /// the job ends, or given back if the slot is dropped unused.
    ///
    /// ```
    /// use auth_core::HashPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = HashPool::new(1).with_max_queue(0);
    /// let slot = pool.reserve().await.unwrap();
    /// // The only permit is taken and nobody may wait: the next caller is refused at once.
    /// assert!(pool.reserve().await.is_err());
    /// let stored = "what the read found"; // read while holding the slot
    /// assert_eq!(slot.run(move || stored.len()).await.unwrap(), 19);
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`HashPoolError::Busy`] when the queue is full or `max_wait` passes;
    /// [`HashPoolError::TaskFailed`] if the pool is closed.
    pub async fn reserve(&self) -> Result<HashSlot, HashPoolError> {
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
        Ok(HashSlot {
            permit,
            threads: Arc::clone(&self.threads),
            permits: self.permits,
            priority: self.priority,
        })
    }
}

/// One job's permit on a [`HashPool`], taken by [`HashPool::reserve`]: the job it runs
/// needs no further wait. Dropped unused, it gives the permit back.
#[derive(Debug)]
#[must_use = "a slot holds one of the pool's permits until it runs its job or is dropped"]
pub struct HashSlot {
    permit: OwnedSemaphorePermit,
    threads: Arc<Threads>,
    permits: usize,
    priority: Priority,
}

impl HashSlot {
    /// Runs `job` on one of the pool's threads, under this slot's permit, as
    /// [`HashPool::run`] does once it has a permit.
    ///
    /// # Errors
    ///
    /// [`HashPoolError::TaskFailed`] if the job panics or no thread could be started.
    pub async fn run<T, F>(self, job: F) -> Result<T, HashPoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Self {
            permit,
            threads,
            permits,
            priority,
        } = self;
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |free_thread: &dyn Fn()| {
            let result = std::panic::catch_unwind(AssertUnwindSafe(job));
            // The thread, then the permit, are given back before the answer: whoever
            // takes the permit (the caller woken here, or one waiting) finds the thread.
            free_thread();
            drop(permit);
            // The caller may have stopped waiting; the work is done either way.
            let _ = answer.send(result);
        });
        threads.submit(job, permits, priority)?;
        match answered.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_panic)) => {
                tracing::error!("a password hashing job panicked");
                Err(HashPoolError::TaskFailed)
            }
            Err(_dropped) => Err(HashPoolError::TaskFailed),
        }
    }
}

impl Default for HashPool {
    /// One permit per available core.
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// A job as the pool's threads take it: it calls the function it is given (which counts
/// its thread free again) as it ends, before it gives its permit back.
type Job = Box<dyn FnOnce(&dyn Fn()) + Send>;

/// The pool's threads. The first has a channel of its own and takes each job it is free
/// for, at the normal scheduling policy; the others take the remaining jobs from one
/// shared channel, at idle priority when the pool asks for it. Threads hold receiving ends
/// only, so dropping the last pool (and with it the senders) ends them.
///
/// A thread is started only when a job finds none free, so there are never more threads
/// than jobs that ran at once, and never more than the permits.
struct Threads {
    /// The first thread's channel, once it is started.
    first: Mutex<Option<mpsc::Sender<Job>>>,
    /// Whether the first thread is free for a job (or not started yet). A job takes it by
    /// setting it to false, and gives it back as it ends, before its permit: while it is
    /// false, one permit is held by the first thread's job.
    first_free: Arc<AtomicBool>,
    jobs: mpsc::Sender<Job>,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    /// The threads on the shared channel that were started.
    started: AtomicUsize,
    /// Threads on the shared channel that finished a job and were not yet claimed by a new one.
    idle: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Threads")
            .field("started", &self.started())
            .finish_non_exhaustive()
    }
}

impl Threads {
    fn new() -> Self {
        let (jobs, queue) = mpsc::channel();
        Self {
            first: Mutex::new(None),
            first_free: Arc::new(AtomicBool::new(true)),
            jobs,
            queue: Arc::new(Mutex::new(queue)),
            started: AtomicUsize::new(0),
            idle: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// How many threads were started, the first included.
    fn started(&self) -> usize {
        let first = self.first.lock().unwrap_or_else(PoisonError::into_inner).is_some();
        usize::from(first) + self.started.load(Ordering::Acquire)
    }

    /// Hands `job`, which holds one of the `permits`, to the first thread if it is free,
    /// else to an idle thread of the shared channel, or to a new one if fewer than
    /// `permits - 1` were started.
    fn submit(&self, job: Job, permits: usize, priority: Priority) -> Result<(), HashPoolError> {
        let job = match self
            .first_free
            .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => match self.submit_to_first(job, priority) {
                Ok(()) => return Ok(()),
                Err(job) => {
                    self.first_free.store(true, Ordering::Release);
                    job
                }
            },
            Err(_taken) => job,
        };
        // A busy first thread holds a permit, so at most `permits - 1` jobs, this one
        // included, need a shared thread (if the first could not be started, a job
        // beyond them waits for one).
        let limit = permits.saturating_sub(1);
        let claimed_idle = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |idle| idle.checked_sub(1))
            .is_ok();
        if !claimed_idle {
            // Holding a permit while no thread is idle: every thread started is running a
            // job that holds one of the other permits, so fewer than `limit` are started.
            self.start_one_if_fewer_than(limit, priority)?;
        }
        self.jobs.send(job).map_err(|_closed| HashPoolError::TaskFailed)
    }

    /// Sends `job` to the first thread, starting it if it is not yet; gives the job back
    /// if it cannot be started.
    fn submit_to_first(&self, job: Job, priority: Priority) -> Result<(), Job> {
        let mut first = self.first.lock().unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            let (jobs, queue) = mpsc::channel::<Job>();
            let free = Arc::clone(&self.first_free);
            // The first thread keeps the normal policy, whatever the others do.
            let priority = Priority {
                idle: false,
                ..priority
            };
            let spawned = std::thread::Builder::new().name("auth-hash".to_owned()).spawn(move || {
                serve(|| queue.recv().ok(), priority, &|| free.store(true, Ordering::Release));
            });
            match spawned {
                Ok(_detached) => *first = Some(jobs),
                Err(error) => {
                    tracing::error!(%error, "cannot start a password hashing thread");
                    return Err(job);
                }
            }
        }
        match first.as_ref() {
            Some(jobs) => jobs.send(job).map_err(|mpsc::SendError(job)| job),
            None => Err(job),
        }
    }

    /// Starts one more thread on the shared channel if fewer than `limit` were started.
    fn start_one_if_fewer_than(&self, limit: usize, priority: Priority) -> Result<(), HashPoolError> {
        if limit == 0 {
            // A pool of one permit whose first thread could not be started.
            return Err(HashPoolError::TaskFailed);
        }
        let mut started = self.started.load(Ordering::Acquire);
        while started < limit {
            match self
                .started
                .compare_exchange(started, started + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    let queue = Arc::clone(&self.queue);
                    let idle = Arc::clone(&self.idle);
                    let spawned = std::thread::Builder::new().name("auth-hash".to_owned()).spawn(move || {
                        // The lock is held while waiting: the other idle threads wait for
                        // it instead, and each job goes to exactly one thread.
                        let next = || queue.lock().unwrap_or_else(PoisonError::into_inner).recv().ok();
                        serve(next, priority, &|| {
                            idle.fetch_add(1, Ordering::AcqRel);
                        });
                    });
                    return match spawned {
                        Ok(_detached) => Ok(()),
                        Err(error) => {
                            let before = self.started.fetch_sub(1, Ordering::AcqRel);
                            tracing::error!(%error, "cannot start a password hashing thread");
                            // The job can still wait for a thread started earlier.
                            if before > 1 {
                                Ok(())
                            } else {
                                Err(HashPoolError::TaskFailed)
                            }
                        }
                    };
                }
                Err(now) => started = now,
            }
        }
        Ok(())
    }
}

/// A hashing thread's life: lowers its own priority, then runs the jobs `next` gives
/// until the pool is gone. It is started for a job already on its way; each job calls
/// `free` (which counts its thread free again) as it ends.
fn serve(next: impl Fn() -> Option<Job>, priority: Priority, free: &dyn Fn()) {
    lower_priority(priority);
    while let Some(job) = next() {
        job(free);
    }
}

/// Raises the calling thread's nice value by the niceness asked for, or moves it to
/// `SCHED_IDLE` (Linux: both are per thread there; lowering a priority needs no
/// privilege, raising it back would).
#[cfg(target_os = "linux")]
fn lower_priority(priority: Priority) {
    if priority.idle {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
        };
        // The crate also sets the thread's nice value to the lowest priority's (19);
        // under SCHED_IDLE a nice value has no effect.
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        if let Err(error) =
            set_thread_priority_and_policy(thread_native_id(), thread_priority::ThreadPriority::Min, idle)
        {
            tracing::warn!(?error, "cannot move the password hashing thread to idle priority");
        }
        return;
    }
    let increment = priority.niceness;
    if increment == 0 {
        return;
    }
    let thread = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(thread)).unwrap_or(0);
    let target = current.saturating_add(i32::from(increment)).min(19);
    if let Err(error) = rustix::process::setpriority_process(Some(thread), target) {
        tracing::warn!(%error, "cannot lower the password hashing thread's priority");
    }
}

/// Elsewhere the threads keep the process's priority.
#[cfg(not(target_os = "linux"))]
fn lower_priority(_priority: Priority) {}

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

    #[tokio::test]
    async fn a_reserved_slot_holds_its_permit_until_it_runs_or_is_dropped() {
        let pool = HashPool::new(1).with_max_queue(0);
        let slot = pool.reserve().await.unwrap();
        assert_eq!(pool.semaphore.available_permits(), 0);
        assert_eq!(
            pool.run(|| ()).await,
            Err(HashPoolError::Busy),
            "the slot's permit is taken"
        );
        drop(slot);
        assert_eq!(pool.semaphore.available_permits(), 1, "dropped unused: given back");
        let slot = pool.reserve().await.unwrap();
        assert_eq!(slot.run(|| 7).await, Ok(7));
        assert_eq!(pool.semaphore.available_permits(), 1, "given back when its job ends");
        assert_eq!(pool.run(|| 8).await, Ok(8));
    }

    #[tokio::test(start_paused = true)]
    async fn reserving_waits_in_the_bounded_queue_as_run_does() {
        let pool = HashPool::new(1).with_max_queue(1).with_max_wait(Duration::from_secs(5));
        let _held = Arc::clone(&pool.semaphore).acquire_owned().await.unwrap();
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { pool.reserve().await.map(drop) }
        });
        while pool.waiting.load(Ordering::Acquire) < 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            pool.reserve().await.map(drop),
            Err(HashPoolError::Busy),
            "the queue is full"
        );
        assert_eq!(waiter.await.unwrap(), Err(HashPoolError::Busy), "the wait ran out");
        assert_eq!(pool.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_too_long_is_busy() {
        let pool = HashPool::new(1)
            .with_max_queue(10)
            .with_max_wait(Duration::from_secs(5));
        // Hold the permit directly: no job runs, and paused time advances only by the
        // wait's own timer.
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
    async fn no_more_threads_than_permits_ever_used_at_once() {
        let pool = HashPool::new(3);
        for _ in 0..20 {
            pool.run(|| ()).await.unwrap();
        }
        // One at a time: one thread served them all.
        assert_eq!(pool.threads.started(), 1);
        let jobs = (0..40).map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| std::thread::sleep(Duration::from_millis(1))).await })
        });
        for job in jobs.collect::<Vec<_>>() {
            job.await.unwrap().unwrap();
        }
        assert!(pool.threads.started() <= 3);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_the_nice_value_asked_for() {
        let nice_of_this_thread = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let base = nice_of_this_thread();
        let default = HashPool::new(1).run(nice_of_this_thread).await.unwrap();
        assert_eq!(default, base, "by default, the process's own");
        let ten = HashPool::new(1).with_thread_niceness(10);
        assert_eq!(ten.run(nice_of_this_thread).await.unwrap(), (base + 10).min(19));
        let beyond = HashPool::new(1).with_thread_niceness(40);
        assert_eq!(beyond.thread_niceness(), 19);
        assert_eq!(beyond.run(nice_of_this_thread).await.unwrap(), 19);
        // The caller's own thread is left as it was.
        assert_eq!(nice_of_this_thread(), base);
    }

    /// Runs `jobs` jobs on `pool` at once (each waits for all to have started) and returns
    /// the scheduling policy each ran under, sorted.
    #[cfg(target_os = "linux")]
    async fn policies_of_concurrent_jobs(pool: &HashPool, jobs: usize) -> Vec<String> {
        let all_started = Arc::new(std::sync::Barrier::new(jobs));
        let runs = (0..jobs).map(|_| {
            let (pool, all_started) = (pool.clone(), Arc::clone(&all_started));
            tokio::spawn(async move {
                pool.run(move || {
                    all_started.wait();
                    format!("{:?}", thread_priority::unix::thread_schedule_policy().unwrap())
                })
                .await
            })
        });
        let mut policies = Vec::new();
        for run in runs.collect::<Vec<_>>() {
            policies.push(run.await.unwrap().unwrap());
        }
        policies.sort();
        policies
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_hashing_thread_but_the_first_runs_at_idle_priority_when_asked() {
        use thread_priority::unix::{NormalThreadSchedulePolicy, ThreadSchedulePolicy, thread_schedule_policy};
        let (normal, idle) = (
            format!("{:?}", ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other)),
            format!("{:?}", ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle)),
        );
        let caller = thread_schedule_policy().unwrap();

        let default = HashPool::new(2);
        assert!(!default.idle_scheduling(), "off by default");
        assert_eq!(
            policies_of_concurrent_jobs(&default, 2).await,
            [normal.clone(), normal.clone()]
        );

        let pool = HashPool::new(3).with_idle_scheduling(true);
        assert!(pool.idle_scheduling());
        assert_eq!(
            policies_of_concurrent_jobs(&pool, 3).await,
            [idle.clone(), idle.clone(), normal.clone()],
            "three at once: the first thread at the normal policy, the others idle"
        );
        // One at a time, each job goes to the first thread, however many were started.
        for _ in 0..20 {
            assert_eq!(
                policies_of_concurrent_jobs(&pool, 1).await,
                std::slice::from_ref(&normal)
            );
        }
        assert_eq!(pool.threads.started(), 3);

        // The caller's own thread is left as it was.
        assert_eq!(thread_schedule_policy().unwrap(), caller);
    }

    #[tokio::test]
    async fn the_first_thread_takes_each_job_it_is_free_for() {
        let pool = HashPool::new(2);
        let (release, wait) = mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let first = pool.run(|| std::thread::current().id()).await.unwrap();
        // The first thread is busy: the next job goes to another thread.
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    let _ = started_tx.send(std::thread::current().id());
                    let _ = wait.recv();
                })
                .await
            }
        });
        assert_eq!(started.await.unwrap(), first);
        let other = pool.run(|| std::thread::current().id()).await.unwrap();
        assert_ne!(other, first);
        drop(release);
        busy.await.unwrap().unwrap();
        // Free again: the first thread takes the next job.
        assert_eq!(pool.run(|| std::thread::current().id()).await.unwrap(), first);
        assert_eq!(pool.threads.started(), 2);
    }

    #[tokio::test]
    async fn the_threads_end_with_the_last_pool() {
        let pool = HashPool::new(2);
        let thread = pool.run(|| std::thread::current().id()).await.unwrap();
        // Two at once: the second goes to a thread of the shared channel.
        let (one, two) = tokio::join!(pool.run(|| ()), pool.run(|| ()));
        one.unwrap();
        two.unwrap();
        let queue = Arc::downgrade(&pool.threads.queue);
        let first_free = Arc::downgrade(&pool.threads.first_free);
        assert_ne!(thread, std::thread::current().id());
        drop(pool);
        // The threads held the only other references to the shared channel and to the
        // first thread's flag; they let go on their way out.
        tokio::time::timeout(Duration::from_secs(30), async {
            while queue.upgrade().is_some() || first_free.upgrade().is_some() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap();
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
