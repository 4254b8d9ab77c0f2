use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;
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
/// is dropped. The first thread takes every job it is free for; the others take the rest,
/// and the first takes what they have not started when it is free.
///
/// | setting | default | why |
/// |---|---|---|
/// | permits | available parallelism (cores) | one hash per core saturates the CPU; more only adds memory |
/// | `max_queue` | 128 waiting callers | absorbs a burst (50 simultaneous logins all succeed) |
/// | `max_wait` | 5 s | past this, the client is better told to retry |
/// | `thread_niceness` | 0 | hashing competes for the CPU as an equal; see [`with_thread_niceness`](Self::with_thread_niceness) for the trade-off |
/// | `idle_scheduling` | on (Linux) | hashing beyond one thread's waits for cores nothing else wants, and the first thread runs again what stalls there; see [`with_idle_scheduling`](Self::with_idle_scheduling) |
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
                idle: true,
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
    /// only when no other thread of the machine wants its core. On by default; elsewhere
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
    /// What keeps it safe: on a CPU kept busy by other work (cheap requests at the CPU's
    /// limit, other processes of the machine), a job on an idle thread gets no cycles. So
    /// the first thread, when it is free, takes the jobs the idle threads have not started,
    /// and runs again any job that has run on an idle thread for four times as long as its
    /// own jobs take (at least 20 ms; 200 ms before it has timed one), before any job
    /// waiting to start. The first run to end answers, and the other's result is dropped.
    /// A stalled login or registration is answered after a few hashes' time, not when the
    /// CPU has spare cycles; on a CPU that stays saturated, hashing runs at the rate of one
    /// thread at the normal policy. The runs in progress, and so the memory, stay within
    /// the permits: a job keeps its permit until its stalled run ends too. This is why jobs
    /// are `Fn`: one may run twice. A thread that could not be moved to idle priority runs
    /// at the normal policy, and its jobs are never run again.
    ///
    /// Turn it off (`false`) where logins should take every core as an equal of the
    /// machine's other work, at the cost of cheap requests waiting behind hashes.
    ///
    /// ```
    /// use auth_core::HashPool;
    ///
    /// assert!(HashPool::new(4).idle_scheduling(), "on by default");
    /// let pool = HashPool::new(4).with_idle_scheduling(false);
    /// assert!(!pool.idle_scheduling());
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

    /// Makes a job run at idle priority for exactly `after` before the first thread runs
    /// it again, however long the first thread's jobs take: for tests, whose jobs are not
    /// hashes.
    #[cfg(test)]
    fn with_rescue_after(self, after: Duration) -> Self {
        self.threads
            .shared
            .fixed_rescue_nanos
            .store(nanos(after), Ordering::Release);
        self
    }

    /// Runs `job` on one of the pool's threads once a permit is free: [`reserve`](Self::reserve)
    /// then [`HashSlot::run`].
    ///
    /// The job runs on a plain thread, outside any Tokio runtime (`Handle::current()`
    /// panics there, which fails the call with `TaskFailed`): a hash needs none.
    ///
    /// If the returned future is dropped while waiting, the caller leaves the queue; once
    /// the job has started it runs to completion (it cannot be interrupted) and keeps its
    /// permit until then. A job that stalls on an idle-priority thread may run a second
    /// time on the first thread ([`with_idle_scheduling`](Self::with_idle_scheduling)):
    /// the first run to end answers, and the permit is given back when the stalled run
    /// ends too. So a job must give the same kind of answer however often it runs (a
    /// hash, a verification), and the permits bound the runs in progress.
    ///
    /// # Errors
    ///
    /// [`HashPoolError::Busy`] when the queue is full or `max_wait` passes;
    /// [`HashPoolError::TaskFailed`] if the job panics or no thread could be started.
    pub async fn run<T, F>(&self, job: F) -> Result<T, HashPoolError>
    where
        F: Fn() -> T + Send + Sync + 'static,
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
        F: Fn() -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let Self {
            permit,
            threads,
            permits,
            priority,
        } = self;
        let (answer, answered) = oneshot::channel();
        let task = Arc::new(Job {
            work: job,
            running: AtomicUsize::new(0),
            permit: Mutex::new(Some(permit)),
            answered: AtomicBool::new(false),
            answer: Mutex::new(Some(answer)),
        });
        threads.submit(task, permits, priority)?;
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

/// A job as the pool's threads see it. It may run twice: once on an idle-priority thread,
/// and once more on the first thread when the idle one has not finished it in time (see
/// [`Shared::take_overdue`]). The first run to end answers; the last gives the permit
/// back, so that the permits bound the runs in progress, stalled ones included.
trait Task: Send + Sync {
    /// Counts a run about to start, before it can be seen to have started (on the
    /// overdue list), so that a run that ends meanwhile knows it is not the last.
    fn enter(&self);
    /// Runs the job once (counted by [`enter`](Self::enter) first), then calls `free`
    /// (its thread is free again). The last run in progress gives the permit back; the
    /// first to end answers.
    fn run(&self, free: &dyn Fn());
}

/// The caller's function and how its runs end.
struct Job<T, F> {
    work: F,
    /// Runs entered and not yet ended.
    running: AtomicUsize,
    /// Taken by the last run to end, and only by it.
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    /// Set by the first run to end, which alone then takes `answer`: two runs never wait
    /// for each other's lock.
    answered: AtomicBool,
    answer: Mutex<Option<oneshot::Sender<std::thread::Result<T>>>>,
}

impl<T, F> Task for Job<T, F>
where
    T: Send,
    F: Fn() -> T + Send + Sync,
{
    fn enter(&self) {
        self.running.fetch_add(1, Ordering::AcqRel);
    }

    fn run(&self, free: &dyn Fn()) {
        let result = std::panic::catch_unwind(AssertUnwindSafe(&self.work));
        // The thread, then the permit, are given back before the answer: whoever takes
        // the permit (the caller woken here, or one waiting) finds the thread free.
        free();
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            drop(self.permit.lock().unwrap_or_else(PoisonError::into_inner).take());
        }
        if !self.answered.swap(true, Ordering::AcqRel) {
            let answer = self.answer.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(answer) = answer {
                // The caller may have stopped waiting; the work is done either way.
                let _ = answer.send(result);
            }
        }
    }
}

/// How many typical hashes a job may run on an idle-priority thread before the first
/// thread runs it again: a hash there runs at full speed on a spare core and at a
/// fraction of it beside request handling, and only a core kept busy by other work stalls
/// it for longer than this.
const RESCUE_FACTOR: u32 = 4;
/// The least time a job runs on an idle-priority thread before the first thread runs it
/// again, so that jobs much shorter than a scheduler's time slice are not run again.
const MIN_RESCUE_AFTER: Duration = Duration::from_millis(20);
/// The time a job may run on an idle-priority thread before the first thread has timed
/// one of its own.
const RESCUE_AFTER_UNMEASURED: Duration = Duration::from_millis(200);
/// How soon the first thread looks at the overdue list again when an idle-priority thread
/// held it.
const OVERDUE_RETRY: Duration = Duration::from_millis(1);

/// The pool's threads. The first takes each job it is free for, at the normal scheduling
/// policy; the others take the rest, at idle priority when the pool asks for it, and the
/// first takes what they have not started when it is free. The threads hold the shared
/// state only, so dropping the last pool (and with it this) ends them once their work is
/// done.
///
/// A thread is started only when a job finds none parked (one finishing a job is not
/// counted, so a thread more than needed may start), never more than the permits.
struct Threads {
    shared: Arc<Shared>,
}

/// What the threads and `submit` share.
///
/// `submit` runs on an async worker, and threads at idle priority can be preempted
/// anywhere, for as long as the machine has other work: a lock both take would let a
/// preempted idle thread hold up a worker and every request on it. So `submit` and the
/// idle threads share no lock. Jobs go through a lock-free queue; a thread waiting for
/// work parks, after raising its flag and looking for work once more, and is woken by
/// whoever swaps the flag down. The locks `submit` takes (`for_first`, `others`) are
/// shared with the first thread, at the normal policy, and with other callers only; the
/// one idle threads take (`on_idle`) the first thread only tries.
struct Shared {
    /// Jobs for any thread, not yet started, oldest first.
    queue: SegQueue<Arc<dyn Task>>,
    /// The first thread, once started.
    first: OnceLock<Parker>,
    /// The first thread runs no job and has none given to it. Whoever swaps it from
    /// `true` has the thread: a `submit` gives it its job through `for_first`; the thread
    /// itself looks for work. The thread sets it again when its job ends.
    first_free: AtomicBool,
    /// The job given to the first thread, not yet taken by it.
    for_first: Mutex<Option<Arc<dyn Task>>>,
    /// The other threads, in the order they were started. Also taken while a thread is
    /// started, so that no more than the permits are.
    others: Mutex<Vec<Parker>>,
    /// Jobs running on idle-priority threads, which the first thread runs again once they
    /// are overdue.
    on_idle: Mutex<OnIdle>,
    /// How long the first thread's runs take, smoothed, in nanoseconds (0: none timed
    /// yet): what a job costs when it gets a core as an equal.
    typical_nanos: AtomicU64,
    /// How long a job runs at idle priority before it is run again, whatever the first
    /// thread's jobs take, in nanoseconds (0: not fixed): set by tests only.
    fixed_rescue_nanos: AtomicU64,
    /// The last pool handle is gone: the threads end once no work is left.
    closed: AtomicBool,
    /// Called by the first thread when it has looked for work and found none, before it
    /// lets a `submit` have it again: lets a test hold it at that point.
    #[cfg(test)]
    on_empty_look: Mutex<Option<EmptyLookHook>>,
}

/// What a test runs where the first thread has found no work (see `Shared::on_empty_look`).
#[cfg(test)]
type EmptyLookHook = Arc<dyn Fn(&Shared) + Send + Sync>;

/// A pool thread as others see it: its handle and whether it is parked.
struct Parker {
    thread: std::thread::Thread,
    /// Raised by the thread before it looks for work a last time and parks; whoever
    /// swaps it down wakes the thread.
    parked: Arc<AtomicBool>,
}

impl Parker {
    /// Wakes the thread if it is parked, or about to: whether it was.
    fn wake_if_parked(&self) -> bool {
        let parked = self.parked.swap(false, Ordering::SeqCst);
        if parked {
            self.thread.unpark();
        }
        parked
    }
}

#[derive(Default)]
struct OnIdle {
    /// Oldest first.
    running: VecDeque<Running>,
    next_run: u64,
}

struct Running {
    id: u64,
    task: Arc<dyn Task>,
    since: Instant,
    rescued: bool,
}

/// What a thread found to do.
enum Work {
    Run(Arc<dyn Task>),
    /// Nothing until woken, or until the instant given.
    Wait(Option<Instant>),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX).max(1)
}

impl Shared {
    /// How long a job may run on an idle-priority thread before the first thread runs it
    /// again.
    fn rescue_after(&self) -> Duration {
        match self.fixed_rescue_nanos.load(Ordering::Acquire) {
            0 => match self.typical_nanos.load(Ordering::Acquire) {
                0 => RESCUE_AFTER_UNMEASURED,
                typical => Duration::from_nanos(typical).saturating_mul(RESCUE_FACTOR),
            }
            .max(MIN_RESCUE_AFTER),
            fixed => Duration::from_nanos(fixed),
        }
    }

    /// For the first thread: the oldest job running on an idle-priority thread for longer
    /// than it should, not yet run again (marked as being run again, and entered), or
    /// when the next one will be. Only tried: an idle thread holding the list is never
    /// waited for, and the list is looked at again shortly.
    fn take_overdue(&self, now: Instant) -> Result<Arc<dyn Task>, Option<Instant>> {
        let mut on_idle = match self.on_idle.try_lock() {
            Ok(on_idle) => on_idle,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(Some(now + OVERDUE_RETRY)),
        };
        let after = self.rescue_after();
        let mut next = None::<Instant>;
        for running in on_idle.running.iter_mut().filter(|running| !running.rescued) {
            let due = running.since + after;
            if due <= now {
                running.rescued = true;
                running.task.enter();
                return Ok(Arc::clone(&running.task));
            }
            next = Some(next.map_or(due, |next| next.min(due)));
        }
        Err(next)
    }

    /// What the first thread does next: a stalled job, which is older than any job
    /// waiting to start; else the job given to it; else, if no `submit` is giving it one,
    /// a queued one.
    fn first_work(&self, now: Instant) -> Work {
        let mut given = lock(&self.for_first);
        // With a job given to it, the thread is already had; else it has itself.
        let had = given.is_some()
            || self
                .first_free
                .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if !had {
            // A submit has the thread: its job is on its way to `for_first`, and the
            // submit unparks the thread once it is there.
            return Work::Wait(None);
        }
        let next_overdue = match self.take_overdue(now) {
            Ok(task) => {
                tracing::debug!(
                    after = ?self.rescue_after(),
                    "a password hash stalled at idle priority runs again on the first hashing thread"
                );
                // A job given to it stays given: `first_free` stays down until it is run.
                return Work::Run(task);
            }
            Err(next) => next,
        };
        if let Some(task) = given.take().or_else(|| self.queue.pop()) {
            task.enter();
            return Work::Run(task);
        }
        #[cfg(test)]
        if let Some(hook) = lock(&self.on_empty_look).clone() {
            hook(self);
        }
        drop(given);
        self.first_free.store(true, Ordering::Release);
        Work::Wait(next_overdue)
    }
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Threads")
            .field("started", &self.started())
            .finish_non_exhaustive()
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        // Unparked whether parked or not: a thread about to park keeps the token.
        if let Some(first) = self.shared.first.get() {
            first.thread.unpark();
        }
        for other in lock(&self.shared.others).iter() {
            other.thread.unpark();
        }
    }
}

impl Threads {
    fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                queue: SegQueue::new(),
                first: OnceLock::new(),
                first_free: AtomicBool::new(false),
                for_first: Mutex::new(None),
                others: Mutex::new(Vec::new()),
                on_idle: Mutex::new(OnIdle::default()),
                typical_nanos: AtomicU64::new(0),
                fixed_rescue_nanos: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                #[cfg(test)]
                on_empty_look: Mutex::new(None),
            }),
        }
    }

    /// How many threads were started, the first included.
    fn started(&self) -> usize {
        usize::from(self.shared.first.get().is_some()) + lock(&self.shared.others).len()
    }

    /// Hands `task`, which holds one of the `permits`, to the first thread if it is free,
    /// else to the queue, waking a parked thread or starting one more if none is parked
    /// and fewer than `permits - 1` others were started.
    fn submit(&self, task: Arc<dyn Task>, permits: usize, priority: Priority) -> Result<(), HashPoolError> {
        let shared = &self.shared;
        if shared.first.get().is_none() {
            self.start_first(priority);
        }
        if shared.first_free.swap(false, Ordering::AcqRel) {
            *lock(&shared.for_first) = Some(task);
            if let Some(first) = shared.first.get() {
                first.parked.store(false, Ordering::SeqCst);
                first.thread.unpark();
            }
            return Ok(());
        }
        let mut others = lock(&shared.others);
        shared.queue.push(task);
        // Paired with the fence after a thread raises its parked flag: either that
        // thread's last look finds this job, or the flag is seen up here and it is woken.
        std::sync::atomic::fence(Ordering::SeqCst);
        // A first thread that is busy takes from the queue when its job ends. One that
        // swapped `first_free` down itself is looking for work, and may have looked at the
        // queue before this job was in it: if it is parked, or about to, it is woken, or
        // the job would wait for the next submit (with one permit, that never comes: the
        // job holds it). Woken or not, it may be about to run another job (one a submit is
        // handing it), so the others are woken, or one started, as if it were busy.
        if let Some(first) = shared.first.get() {
            first.wake_if_parked();
        }
        if others.iter().any(Parker::wake_if_parked) {
            return Ok(());
        }
        // A busy first thread, or one that could not be started, leaves at most
        // `permits - 1` jobs to the others.
        if others.len() < permits.saturating_sub(1) {
            match spawn(shared, move |shared, parked| serve_other(shared, parked, priority)) {
                Ok(other) => others.push(other),
                Err(error) => tracing::error!(%error, "cannot start a password hashing thread"),
            }
        }
        if shared.first.get().is_none() && others.is_empty() {
            // No thread took the job and none could be started: it fails rather than
            // waits for nobody. The queue is empty of others' jobs too (no thread ever ran).
            let failed = shared.queue.pop();
            drop(others);
            // The caller's job is dropped here, outside the lock.
            drop(failed);
            return Err(HashPoolError::TaskFailed);
        }
        Ok(())
    }

    /// Starts the first thread, at the normal policy (and the pool's niceness), whatever
    /// the others do.
    fn start_first(&self, priority: Priority) {
        let shared = &self.shared;
        // Taken so that two submits do not both start it.
        let _starting = lock(&shared.others);
        if shared.first.get().is_some() {
            return;
        }
        let normal = Priority {
            idle: false,
            ..priority
        };
        match spawn(shared, move |shared, parked| serve_first(shared, parked, normal)) {
            Ok(first) => {
                let _ = shared.first.set(first);
                shared.first_free.store(true, Ordering::Release);
            }
            Err(error) => tracing::error!(%error, "cannot start a password hashing thread"),
        }
    }
}

/// Starts a pool thread running `serve` with the shared state and its parked flag.
fn spawn(shared: &Arc<Shared>, serve: impl FnOnce(&Shared, &AtomicBool) + Send + 'static) -> std::io::Result<Parker> {
    let parked = Arc::new(AtomicBool::new(false));
    let (shared, flag) = (Arc::clone(shared), Arc::clone(&parked));
    let handle = std::thread::Builder::new()
        .name("auth-hash".to_owned())
        .spawn(move || serve(&shared, &flag))?;
    Ok(Parker {
        thread: handle.thread().clone(),
        parked,
    })
}

/// A pool thread's loop: runs what `next` finds (with `run`, given when the run started),
/// else raises its flag, looks once more, and parks, until it is woken or the instant
/// `next` gave; it ends once the pool is gone and no work is left.
fn serve(shared: &Shared, parked: &AtomicBool, next: impl Fn(Instant) -> Work, run: impl Fn(Arc<dyn Task>, Instant)) {
    let mut flag_up = false;
    loop {
        let now = Instant::now();
        match next(now) {
            Work::Run(task) => {
                if flag_up {
                    // Swapped down already if someone woke it: the token they left only
                    // makes the next park return at once.
                    parked.store(false, Ordering::SeqCst);
                    flag_up = false;
                }
                run(task, now);
            }
            Work::Wait(until) => {
                if !flag_up {
                    // Work that came before the flag was up was not told to wake this
                    // thread: look once more with it up.
                    parked.store(true, Ordering::SeqCst);
                    // Paired with the fence in `submit` after it queues a job.
                    std::sync::atomic::fence(Ordering::SeqCst);
                    flag_up = true;
                    continue;
                }
                if shared.closed.load(Ordering::SeqCst) {
                    return;
                }
                match until {
                    Some(at) => std::thread::park_timeout(at.saturating_duration_since(now)),
                    None => std::thread::park(),
                }
                parked.store(false, Ordering::SeqCst);
                flag_up = false;
            }
        }
    }
}

/// The first thread's life: at the normal policy (and the pool's niceness), it runs the
/// job given to it, else again one that has run too long on an idle-priority thread,
/// else one the other threads have not started; until the pool is gone and no work is
/// left.
fn serve_first(shared: &Shared, parked: &AtomicBool, priority: Priority) {
    // The first thread never runs at idle priority.
    let _idle = lower_priority(priority);
    serve(
        shared,
        parked,
        |now| shared.first_work(now),
        |task, started| {
            task.run(&|| {
                let took = nanos(started.elapsed());
                let typical = shared.typical_nanos.load(Ordering::Acquire);
                let smoothed = if typical == 0 { took } else { typical / 4 * 3 + took / 4 };
                shared.typical_nanos.store(smoothed.max(1), Ordering::Release);
                // A job given to it while it ran a stalled one is still to come, and keeps
                // it had. Nobody gives it one meanwhile: `first_free` is down.
                if lock(&shared.for_first).is_none() {
                    shared.first_free.store(true, Ordering::Release);
                }
            });
            // The caller's job is dropped here, outside any lock.
            drop(task);
        },
    );
}

/// The life of every other thread: at idle priority when the pool asks for it, it runs the
/// queued jobs, until the pool is gone and no work is left. At idle priority, each job it
/// runs is listed for the first thread to run again if it is overdue.
fn serve_other(shared: &Shared, parked: &AtomicBool, priority: Priority) {
    // Only a thread that really runs at idle priority can stall for want of cycles.
    let idle = lower_priority(priority);
    serve(
        shared,
        parked,
        |_now| match shared.queue.pop() {
            Some(task) => {
                task.enter();
                Work::Run(task)
            }
            None => Work::Wait(None),
        },
        |task, _started| {
            let mut id = None;
            if idle {
                let mut on_idle = lock(&shared.on_idle);
                let run = on_idle.next_run;
                on_idle.next_run += 1;
                on_idle.running.push_back(Running {
                    id: run,
                    task: Arc::clone(&task),
                    since: Instant::now(),
                    rescued: false,
                });
                drop(on_idle);
                id = Some(run);
                // A first thread parked without a deadline learns this job's.
                if let Some(first) = shared.first.get() {
                    first.wake_if_parked();
                }
            }
            task.run(&|| {
                if let Some(id) = id {
                    lock(&shared.on_idle).running.retain(|running| running.id != id);
                }
            });
            // The caller's job is dropped here, outside any lock.
            drop(task);
        },
    );
}

/// Raises the calling thread's nice value by the niceness asked for, or moves it to
/// `SCHED_IDLE` (Linux: both are per thread there; lowering a priority needs no
/// privilege, raising it back would). Whether the thread now runs under `SCHED_IDLE`.
#[cfg(target_os = "linux")]
fn lower_priority(priority: Priority) -> bool {
    if priority.idle {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy, thread_native_id,
        };
        // The crate also sets the thread's nice value to the lowest priority's (19);
        // under SCHED_IDLE a nice value has no effect.
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        return match set_thread_priority_and_policy(thread_native_id(), thread_priority::ThreadPriority::Min, idle) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(?error, "cannot move the password hashing thread to idle priority");
                false
            }
        };
    }
    let increment = priority.niceness;
    if increment == 0 {
        return false;
    }
    let thread = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(thread)).unwrap_or(0);
    let target = current.saturating_add(i32::from(increment)).min(19);
    if let Err(error) = rustix::process::setpriority_process(Some(thread), target) {
        tracing::warn!(%error, "cannot lower the password hashing thread's priority");
    }
    false
}

/// Elsewhere the threads keep the process's priority.
#[cfg(not(target_os = "linux"))]
fn lower_priority(_priority: Priority) -> bool {
    false
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

    /// A job that may run only once (the tests' gates are used up by it), as the pool
    /// takes jobs.
    fn once<T>(job: impl FnOnce() -> T + Send + 'static) -> impl Fn() -> T + Send + Sync + 'static {
        let job = Mutex::new(Some(job));
        move || {
            #[allow(clippy::expect_used)]
            let job = job.lock().unwrap().take().expect("a job of these tests runs once");
            job()
        }
    }

    /// Occupies every permit of `pool` until the returned senders are dropped or used.
    async fn occupy(pool: &HashPool) -> Vec<mpsc::Sender<()>> {
        let mut releases = Vec::new();
        for _ in 0..pool.permits() {
            let (release, wait) = mpsc::channel::<()>();
            let (started_tx, started) = tokio::sync::oneshot::channel();
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(once(move || {
                    let _ = started_tx.send(());
                    let _ = wait.recv();
                }))
                .await
            });
            started.await.unwrap();
            releases.push(release);
        }
        releases
    }

    /// The first thread looked at the queue, found it empty and is about to park when a
    /// job is queued (a `submit` found it had itself, not free): the job is run, and not
    /// left for the next `submit`, which with one permit never comes (the job holds it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_queued_as_the_first_thread_finds_none_is_run() {
        let pool = HashPool::new(1).with_max_queue(0);
        let reached = Arc::new(AtomicBool::new(false));
        let resume = Arc::new(AtomicBool::new(false));
        // Holds the first thread once: on its last look before it parks (its flag up)
        // after it has run a job (it has timed one). It spins rather than blocks: a
        // blocking wait would use up the wake-up the queued job gives the thread.
        let hook: EmptyLookHook = Arc::new({
            let (reached, resume) = (Arc::clone(&reached), Arc::clone(&resume));
            move |shared: &Shared| {
                let last_look = shared.typical_nanos.load(Ordering::Acquire) != 0
                    && shared
                        .first
                        .get()
                        .is_some_and(|first| first.parked.load(Ordering::SeqCst));
                if last_look && !reached.swap(true, Ordering::AcqRel) {
                    // A wake-up left from the first job's hand-over is used up here, so
                    // that only one given from now on can end the coming park.
                    std::thread::park_timeout(Duration::ZERO);
                    let until = Instant::now() + Duration::from_secs(30);
                    while !resume.load(Ordering::Acquire) && Instant::now() < until {
                        std::thread::yield_now();
                    }
                }
            }
        });
        *lock(&pool.threads.shared.on_empty_look) = Some(hook);

        // A job given to the first thread; when it ends, the thread looks for more.
        pool.run(|| ()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), async {
            while !reached.load(Ordering::Acquire) {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the first thread looks for work once more before it parks");
        let queued = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(|| 7).await }
        });
        while pool.threads.shared.queue.is_empty() {
            tokio::task::yield_now().await;
        }
        resume.store(true, Ordering::Release);
        let answer = tokio::time::timeout(Duration::from_secs(30), queued)
            .await
            .expect("the queued job is run, not left to the next submit");
        assert_eq!(answer.unwrap(), Ok(7));
        assert_eq!(pool.threads.started(), 1, "run by the first thread: there is no other");
    }

    /// Two permits, both threads parked. A first job finds the first thread free and is
    /// being handed to it (held here at the `for_first` lock) when a second is queued: the
    /// second runs on the other thread, not after the first job, although the first
    /// thread's flag is up and waking it would do.
    #[test]
    fn a_job_queued_while_another_is_handed_to_the_first_thread_goes_to_a_parked_other() {
        /// Runs `job` on `pool` from a thread of its own, which a submit may block.
        fn call(pool: &HashPool, job: impl Fn() -> bool + Send + Sync + 'static) -> std::thread::JoinHandle<bool> {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(pool.run(job)).unwrap()
            })
        }
        fn wait_for(what: &str, done: impl Fn() -> bool) {
            let until = Instant::now() + Duration::from_secs(30);
            while !done() {
                assert!(Instant::now() < until, "{what}");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let pool = HashPool::new(2).with_idle_scheduling(false).with_max_queue(0);
        let shared = Arc::clone(&pool.threads.shared);
        // Both threads started: two jobs that each wait for the other.
        let both = Arc::new(std::sync::Barrier::new(2));
        let warm: Vec<_> = (0..2)
            .map(|_| {
                let both = Arc::clone(&both);
                call(&pool, move || {
                    both.wait();
                    true
                })
            })
            .collect();
        for warm in warm {
            assert!(warm.join().unwrap());
        }
        assert_eq!(pool.threads.started(), 2);
        wait_for("both threads parked, the first one free", || {
            shared.first_free.load(Ordering::SeqCst)
                && shared
                    .first
                    .get()
                    .is_some_and(|first| first.parked.load(Ordering::SeqCst))
                && lock(&shared.others)
                    .iter()
                    .all(|other| other.parked.load(Ordering::SeqCst))
        });

        let handing = lock(&shared.for_first);
        let second_ran = Arc::new(AtomicBool::new(false));
        // The first job ends once the second has run, or after 30 s if it waits behind it.
        let first = call(&pool, {
            let second_ran = Arc::clone(&second_ran);
            move || {
                let until = Instant::now() + Duration::from_secs(30);
                while !second_ran.load(Ordering::Acquire) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(1));
                }
                second_ran.load(Ordering::Acquire)
            }
        });
        wait_for("the first job's submit has the first thread", || {
            !shared.first_free.load(Ordering::SeqCst)
        });
        let second = call(&pool, {
            let second_ran = Arc::clone(&second_ran);
            move || {
                second_ran.store(true, Ordering::Release);
                true
            }
        });
        wait_for("the second job queued", || {
            !shared.queue.is_empty() || second_ran.load(Ordering::Acquire)
        });
        drop(handing);
        assert!(second.join().unwrap());
        assert!(
            first.join().unwrap(),
            "the second job waited for the first, with a thread parked and a permit free"
        );
    }

    /// One permit, jobs back to back: each finds the first thread in some step of looking
    /// for work, and none is left waiting for a wake-up that never comes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_one_permit_jobs_back_to_back_are_all_run() {
        let pool = HashPool::new(1).with_max_queue(0);
        for n in 0..50_000 {
            let answer = tokio::time::timeout(Duration::from_secs(30), pool.run(move || n)).await;
            assert_eq!(answer, Ok(Ok(n)), "job {n}");
        }
    }

    /// Several callers, jobs back to back, on pools of two and three permits with and
    /// without idle scheduling: every job is answered, by whichever thread was free.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn with_several_callers_jobs_back_to_back_are_all_run() {
        for (permits, idle) in [(2, true), (2, false), (3, true), (3, false)] {
            let pool = HashPool::new(permits)
                .with_idle_scheduling(idle)
                .with_max_queue(16)
                .with_max_wait(Duration::from_secs(3600));
            let callers: Vec<_> = (0..4)
                .map(|caller| {
                    let pool = pool.clone();
                    tokio::spawn(async move {
                        for n in 0..5_000 {
                            let answer = tokio::time::timeout(Duration::from_secs(30), pool.run(move || n)).await;
                            assert_eq!(
                                answer,
                                Ok(Ok(n)),
                                "{permits} permits, idle {idle}: caller {caller}, job {n}"
                            );
                        }
                    })
                })
                .collect();
            for caller in callers {
                caller.await.unwrap();
            }
            assert!(pool.threads.started() <= permits);
        }
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

        let off = HashPool::new(2).with_idle_scheduling(false);
        assert!(!off.idle_scheduling());
        assert_eq!(
            policies_of_concurrent_jobs(&off, 2).await,
            [normal.clone(), normal.clone()]
        );

        // On by default. A loaded machine may stall an idle thread for longer than a
        // barrier takes; the job must not run again on the first thread here.
        let pool = HashPool::new(3).with_rescue_after(Duration::from_secs(3600));
        assert!(pool.idle_scheduling(), "on by default");
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
                pool.run(once(move || {
                    let _ = started_tx.send(std::thread::current().id());
                    let _ = wait.recv();
                }))
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

    /// What a [`stalling`] job's caller holds: when its first run started (and on which
    /// thread), the release of that run, and how many times the job ran.
    struct Stall {
        started: tokio::sync::oneshot::Receiver<std::thread::ThreadId>,
        release: mpsc::Sender<()>,
        runs: Arc<AtomicUsize>,
    }

    /// A job whose first run waits until released, as a hash starved of the CPU does, and
    /// whose later runs do not; every run answers with its thread.
    fn stalling() -> (impl Fn() -> std::thread::ThreadId + Send + Sync + 'static, Stall) {
        let (release, wait) = mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let first_run = Mutex::new(Some((wait, started_tx)));
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let job = move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let first = first_run.lock().unwrap().take();
            if let Some((wait, started_tx)) = first {
                let _ = started_tx.send(std::thread::current().id());
                let _ = wait.recv();
            }
            std::thread::current().id()
        };
        (job, Stall { started, release, runs })
    }

    /// `future`, or a failure if it takes minutes: a hang is a bug, and a loaded machine
    /// gets time to run a thread at idle priority.
    async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(120), future)
            .await
            .expect("no answer within two minutes")
    }

    /// Runs `job` on `pool` in a task of its own.
    fn spawn_run<T, F>(pool: &HashPool, job: F) -> tokio::task::JoinHandle<Result<T, HashPoolError>>
    where
        F: Fn() -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let pool = pool.clone();
        tokio::spawn(async move { pool.run(job).await })
    }

    /// A stalled job started on the first thread (A), then one on another thread (B):
    /// the two threads' ids, and each job's task and stall.
    async fn first_and_other_stalled(
        pool: &HashPool,
    ) -> (
        [std::thread::ThreadId; 2],
        (
            tokio::task::JoinHandle<Result<std::thread::ThreadId, HashPoolError>>,
            Stall,
        ),
        (
            tokio::task::JoinHandle<Result<std::thread::ThreadId, HashPoolError>>,
            Stall,
        ),
    ) {
        let (a, mut a_stall) = stalling();
        let a_run = spawn_run(pool, a);
        let first = within(&mut a_stall.started).await.unwrap();
        let (b, mut b_stall) = stalling();
        let b_run = spawn_run(pool, b);
        let other = within(&mut b_stall.started).await.unwrap();
        assert_ne!(other, first, "the first thread is busy: B goes to the other");
        ([first, other], (a_run, a_stall), (b_run, b_stall))
    }

    /// Once a job waits for a permit.
    async fn until_a_job_waits(pool: &HashPool) {
        within(async {
            while pool.waiting.load(Ordering::Acquire) == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_stalled_at_idle_priority_is_run_again_by_the_first_thread() {
        let pool = HashPool::new(2).with_idle_scheduling(true);
        let ([first, _], (a_run, a_stall), (b_run, b_stall)) = first_and_other_stalled(&pool).await;

        drop(a_stall.release);
        assert_eq!(within(a_run).await.unwrap(), Ok(first));
        // B's first run never ends on the idle thread: once it is overdue, the first
        // thread runs it again, and that run answers.
        assert_eq!(within(b_run).await.unwrap(), Ok(first));
        assert_eq!(b_stall.runs.load(Ordering::SeqCst), 2);
        assert_eq!(
            pool.semaphore.available_permits(),
            1,
            "B keeps its permit while its stalled run goes on"
        );

        // The other thread is still in B's first run, and B holds a permit: C takes the
        // other and keeps the first thread busy; D waits for a permit, then goes to the
        // first thread when C ends.
        let (c, c_stall) = stalling();
        let c_run = spawn_run(&pool, c);
        assert_eq!(within(c_stall.started).await.unwrap(), first);
        let d_run = spawn_run(&pool, || std::thread::current().id());
        until_a_job_waits(&pool).await;
        drop(c_stall.release);
        assert_eq!(within(c_run).await.unwrap(), Ok(first));
        assert_eq!(within(d_run).await.unwrap(), Ok(first));
        assert_eq!(pool.threads.started(), 2);

        // B's first run ends at last: its result is not wanted any more, and B's permit
        // is given back.
        drop(b_stall.release);
        within(async {
            while pool.semaphore.available_permits() < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        assert_eq!(b_stall.runs.load(Ordering::SeqCst), 2);
        assert!(lock(&pool.threads.shared.on_idle).running.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_job_runs_again_before_a_job_waiting_to_start() {
        // The rule is 4 times the first thread's jobs, and A, the first thread's job here,
        // lasts as long as the test makes it.
        let rescue_after = Duration::from_millis(50);
        let pool = HashPool::new(3)
            .with_idle_scheduling(true)
            .with_rescue_after(rescue_after);
        // A holds the first thread, B stalls on an idle one, C holds the third.
        let ([first, _], (a_run, a_stall), (b_run, b_stall)) = first_and_other_stalled(&pool).await;
        let (c, c_stall) = stalling();
        let c_run = spawn_run(&pool, c);
        within(c_stall.started).await.unwrap();
        // D waits for a permit; by the time A ends, B is overdue. D tells how many times
        // B had run when D ran.
        let b_runs = Arc::clone(&b_stall.runs);
        let d_run = spawn_run(&pool, move || b_runs.load(Ordering::SeqCst));
        until_a_job_waits(&pool).await;
        tokio::time::sleep(rescue_after * 2).await;

        // A ends: its permit goes to D, which is given to the now free first thread; but
        // the first thread runs B again before it.
        drop(a_stall.release);
        assert_eq!(within(a_run).await.unwrap(), Ok(first));
        assert_eq!(within(b_run).await.unwrap(), Ok(first));
        assert_eq!(within(d_run).await.unwrap(), Ok(2), "B ran again before D");
        drop((b_stall.release, c_stall.release));
        assert!(within(c_run).await.unwrap().is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    // Held across awaits on purpose: the test plays a thread preempted while it holds it.
    #[allow(clippy::await_holding_lock)]
    async fn neither_submit_nor_the_first_thread_waits_for_the_lock_idle_threads_take() {
        let pool = HashPool::new(2)
            .with_idle_scheduling(true)
            .with_rescue_after(Duration::from_millis(1));
        let ([first, _], (a_run, a_stall), (b_run, b_stall)) = first_and_other_stalled(&pool).await;
        drop(a_stall.release);
        assert_eq!(within(a_run).await.unwrap(), Ok(first));
        // As if the idle thread running B were preempted while it holds the list of jobs
        // on idle threads: new jobs are still handed over and run by the first thread.
        let held = lock(&pool.threads.shared.on_idle);
        for _ in 0..3 {
            assert_eq!(within(pool.run(|| std::thread::current().id())).await, Ok(first));
        }
        assert_eq!(b_stall.runs.load(Ordering::SeqCst), 1, "B's list was never read");
        // Once the lock is free, B, long overdue, runs again on the first thread.
        drop(held);
        assert_eq!(within(b_run).await.unwrap(), Ok(first));
        drop(b_stall.release);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_rescues_all_the_time_every_job_is_answered() {
        // Every job outlives the rescue interval, so the first thread runs again whatever
        // the other threads run, while new jobs keep coming.
        let pool = HashPool::new(3)
            .with_idle_scheduling(true)
            .with_max_queue(1000)
            .with_rescue_after(Duration::from_millis(1));
        let runs = Arc::new(AtomicUsize::new(0));
        let jobs = (0..300).map(|n| {
            let (pool, runs) = (pool.clone(), Arc::clone(&runs));
            tokio::spawn(async move {
                pool.run(move || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    n
                })
                .await
            })
        });
        for (n, job) in jobs.collect::<Vec<_>>().into_iter().enumerate() {
            assert_eq!(within(job).await.unwrap(), Ok(n));
        }
        assert!(runs.load(Ordering::SeqCst) >= 300);
        within(async {
            while pool.semaphore.available_permits() < 3 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_the_normal_policy_a_long_job_is_never_run_twice() {
        let pool = HashPool::new(2).with_idle_scheduling(false);
        let ([first, other], (a_run, a_stall), (b_run, b_stall)) = first_and_other_stalled(&pool).await;
        drop(a_stall.release);
        assert_eq!(within(a_run).await.unwrap(), Ok(first));
        // Ten times as long as a job at idle priority may run before it is run again.
        let rescue_after = pool.threads.shared.rescue_after();
        tokio::time::sleep(rescue_after * 10).await;
        assert_eq!(
            b_stall.runs.load(Ordering::SeqCst),
            1,
            "B still runs once, on its thread"
        );
        assert_eq!(within(pool.run(|| std::thread::current().id())).await, Ok(first));
        drop(b_stall.release);
        assert_eq!(within(b_run).await.unwrap(), Ok(other));
        assert_eq!(b_stall.runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_threads_end_with_the_last_pool() {
        let pool = HashPool::new(2);
        let thread = pool.run(|| std::thread::current().id()).await.unwrap();
        // Two at once: the second goes to another thread.
        let (one, two) = tokio::join!(pool.run(|| ()), pool.run(|| ()));
        one.unwrap();
        two.unwrap();
        let shared = Arc::downgrade(&pool.threads.shared);
        assert_ne!(thread, std::thread::current().id());
        drop(pool);
        // The threads held the only other references to their shared state; they let go
        // on their way out.
        tokio::time::timeout(Duration::from_secs(30), async {
            while shared.upgrade().is_some() {
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
