//! The audit log: every [`AuthEvent`] kept in the store ([`AuditLogStore`]), the record
//! of a change in the change's own transaction ([`PendingRecords`]), the rest written by
//! an [`AuditLog`] off the request path; read back per account or for an administrator.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;

use crate::event::{AuthEvent, Outcome, Subject};
use crate::id::{EventId, SessionId, UserId};
use crate::store::AuditLogStore;

/// The most records one [`AuditQuery`] returns.
pub const MAX_AUDIT_PAGE: u32 = 1000;

/// One event as the audit log keeps it: names and strings, so a record of any release
/// reads back in any other. Never a password, token or address; an account without an id
/// (an unknown address, a deleted account) only as the keyed digest of its address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditRecord {
    /// Its identifier, made when it was recorded: the log's order and cursor.
    pub id: EventId,
    /// When (UTC, to the microsecond).
    pub at: OffsetDateTime,
    /// [`EventKind::as_str`](crate::EventKind::as_str): `login_succeeded`, ...
    pub kind: String,
    /// [`Action::as_str`](crate::Action::as_str).
    pub action: String,
    /// [`Outcome::as_str`]: `success`, `refused`, ...
    pub outcome: String,
    /// Why it was refused or limited, for the operator (never shown to the client).
    pub reason: Option<String>,
    /// The account, when the event names one.
    pub user_id: Option<UserId>,
    /// The keyed digest of the address, when the event names one without an account (or
    /// the account was deleted since).
    pub email_digest: Option<String>,
    /// The session, if any.
    pub session_id: Option<SessionId>,
    /// The client's user agent, as it described itself.
    pub user_agent: Option<String>,
    /// The client's address.
    pub ip: Option<IpAddr>,
}

impl AuditRecord {
    /// The record of `event`, with a new id made at the event's time.
    ///
    /// ```
    /// use auth_core::{Action, AuditRecord, AuthEvent, ClientInfo, Outcome, Subject, UserId};
    /// use time::macros::datetime;
    ///
    /// let at = datetime!(2026-06-01 9:00 UTC);
    /// let user = UserId::new_at(at);
    /// let event = AuthEvent::new(at, Action::Login, Outcome::Success, Subject::User(user), None, ClientInfo::unknown());
    /// let record = AuditRecord::of(&event);
    /// assert_eq!((record.kind.as_str(), record.user_id), ("login_succeeded", Some(user)));
    /// ```
    pub fn of(event: &AuthEvent) -> Self {
        let (user_id, email_digest) = match &event.subject {
            Subject::User(id) => (Some(*id), None),
            Subject::Email(digest) => (None, Some(digest.to_string())),
            Subject::Unknown => (None, None),
        };
        let reason = match &event.outcome {
            Outcome::Refused(refusal) => Some(format!("{refusal:?}")),
            Outcome::RateLimited { retry_after } => Some(format!("retry after {}s", retry_after.as_secs())),
            Outcome::Busy if event.repeats > 0 => Some(format!("{} more in the second before", event.repeats)),
            _ => None,
        };
        Self {
            id: EventId::new_at(event.at),
            at: event.at,
            kind: event.kind().as_str().to_owned(),
            action: event.action.as_str().to_owned(),
            outcome: event.outcome.as_str().to_owned(),
            reason,
            user_id,
            email_digest,
            session_id: event.session_id,
            user_agent: event.client.user_agent().map(str::to_owned),
            ip: event.client.ip(),
        }
    }

    /// A record as a store reads it back: every field given.
    #[allow(clippy::too_many_arguments)]
    pub fn stored(
        id: EventId,
        at: OffsetDateTime,
        kind: String,
        action: String,
        outcome: String,
        reason: Option<String>,
        (user_id, email_digest): (Option<UserId>, Option<String>),
        session_id: Option<SessionId>,
        (user_agent, ip): (Option<String>, Option<IpAddr>),
    ) -> Self {
        Self {
            id,
            at,
            kind,
            action,
            outcome,
            reason,
            user_id,
            email_digest,
            session_id,
            user_agent,
            ip,
        }
    }
}

/// Which records [`AuditLogStore::list_audit_records`] returns: those after the cursor,
/// in the log's order, of one account and one kind when given, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditQuery {
    /// Only this account's records.
    pub user: Option<UserId>,
    /// Only records of this kind ([`EventKind::as_str`](crate::EventKind::as_str)).
    pub kind: Option<String>,
    /// Only records after this one (the last of the previous page).
    pub after: Option<EventId>,
    /// At most this many (1 to [`MAX_AUDIT_PAGE`]).
    pub limit: u32,
}

impl AuditQuery {
    /// The first `limit` records (at most [`MAX_AUDIT_PAGE`]).
    ///
    /// ```
    /// use auth_core::{AuditQuery, UserId};
    ///
    /// let query = AuditQuery::first(50).of_user(UserId::new_at(time::OffsetDateTime::now_utc()));
    /// assert_eq!(query.limit, 50);
    /// ```
    pub fn first(limit: u32) -> Self {
        Self {
            limit: limit.clamp(1, MAX_AUDIT_PAGE),
            ..Self::default()
        }
    }

    /// Only `user`'s records.
    #[must_use]
    pub fn of_user(mut self, user: UserId) -> Self {
        self.user = Some(user);
        self
    }

    /// Only records of `kind`.
    #[must_use]
    pub fn of_kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Only records after `cursor`.
    #[must_use]
    pub fn after(mut self, cursor: Option<EventId>) -> Self {
        self.after = cursor;
        self
    }
}

/// How many records [`AuditLog`] holds in memory before it drops (and counts) new ones.
pub const AUDIT_QUEUE: usize = 10_000;

/// The store's audit log, for [`AuthService::with_audit_log`](crate::AuthService::with_audit_log)
/// (or [`Accounts::with_audit_log`](crate::Accounts::with_audit_log)), which keeps every
/// event in it:
///
/// - The record of a change goes into the change's own transaction: the service hands it
///   to the store's write as [`PendingRecords`], and a store that takes them (the shipped
///   ones do, for every write) stores both or neither. If that transaction fails, the
///   change fails with it and the caller gets the store's error: no change is ever left
///   without its record.
/// - Every other event (a refusal, a read, a write whose store did not take the records)
///   is queued here, and the [`AuditWriter`] it comes with writes the queue in batches,
///   off the request path. Nothing is lost silently: a record the store refuses (it is
///   down) or one that finds the queue full is logged at `error` with the count, and
///   counted ([`lost`](Self::lost)).
///
/// ```
/// use std::sync::Arc;
/// use auth_core::{AuditLog, AuthService, MemoryStore, SigningKey, Tokens};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let (log, writer) = AuditLog::new(Arc::new(store.clone()));
/// tokio::spawn(writer.run());
/// let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
/// let auth = AuthService::new(store, Tokens::new(key, "https://auth.example", "api")).with_audit_log(log);
/// # let _ = auth;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AuditLog {
    queue: tokio::sync::mpsc::Sender<AuditRecord>,
    lost: Arc<AtomicU64>,
}

/// Writes an [`AuditLog`]'s queue to its store: run [`run`](Self::run) on a task for as
/// long as the service lives; it ends when every [`AuditLog`] clone is dropped and the
/// queue is written.
pub struct AuditWriter {
    queue: tokio::sync::mpsc::Receiver<AuditRecord>,
    store: Arc<dyn AuditLogStore>,
    lost: Arc<AtomicU64>,
}

impl AuditLog {
    /// A sink writing to `store`, and the writer to run.
    pub fn new(store: Arc<dyn AuditLogStore>) -> (Self, AuditWriter) {
        let (sender, receiver) = tokio::sync::mpsc::channel(AUDIT_QUEUE);
        let lost = Arc::new(AtomicU64::new(0));
        (
            Self {
                queue: sender,
                lost: Arc::clone(&lost),
            },
            AuditWriter {
                queue: receiver,
                store,
                lost,
            },
        )
    }

    /// How many records were lost since the start (the store refused them, or the queue
    /// was full); each loss is also logged.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog").field("lost", &self.lost()).finish()
    }
}

impl AuditLog {
    /// Queues the record of `event` for the writer.
    pub(crate) fn queue(&self, event: &AuthEvent) {
        if self.queue.try_send(AuditRecord::of(event)).is_err() {
            let lost = self.lost.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(
                event = event.kind().as_str(),
                lost,
                "audit log: the queue is full or its writer stopped; the event is not kept"
            );
        }
    }
}

/// The most records the writer sends to the store at once.
const BATCH: usize = 100;

impl AuditWriter {
    /// Writes records as they come, in batches, until every [`AuditLog`] is dropped.
    pub async fn run(mut self) {
        let mut batch = Vec::with_capacity(BATCH);
        while self.queue.recv_many(&mut batch, BATCH).await > 0 {
            self.write(&batch).await;
            batch.clear();
        }
    }

    /// Writes what is queued now and returns (for tests and shutdown).
    pub async fn flush(&mut self) {
        let mut batch = Vec::with_capacity(BATCH);
        while let Ok(record) = self.queue.try_recv() {
            batch.push(record);
            if batch.len() == BATCH {
                self.write(&batch).await;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            self.write(&batch).await;
        }
    }

    async fn write(&self, batch: &[AuditRecord]) {
        if let Err(error) = self.store.insert_audit_records(batch).await {
            let lost = self.lost.fetch_add(batch.len() as u64, Ordering::Relaxed) + batch.len() as u64;
            tracing::error!(%error, records = batch.len(), lost, "audit log: the store refused records; they are not kept");
        }
    }
}

impl fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditWriter").finish_non_exhaustive()
    }
}

tokio::task_local! {
    /// The records the service hands to the store write it is awaiting.
    static PENDING: Arc<PendingScope>;
}

/// What [`PendingRecords::take`] takes from, and how the service learns they were written.
#[derive(Debug)]
struct PendingScope {
    records: Mutex<Option<Vec<AuditRecord>>>,
    written: AtomicBool,
}

/// The audit records of the change a store is about to write, to be stored in the same
/// transaction: the service hands them over while it awaits that one write, and a store
/// that keeps an audit log ([`AuditLogStore`]) takes them in its write methods:
///
/// 1. at the start of the write, [`take`](Self::take) them (once: they go with one write);
/// 2. if the write changes something, insert [`records`](Self::records) in its
///    transaction, before the commit; if it changes nothing (a compare-and-set that lost,
///    an unknown id), leave them out;
/// 3. after the commit, [`written`](Self::written).
///
/// A write that fails rolls them back with the change, and the service reports the
/// store's error. Records that were not written (the write changed nothing, or the store
/// never took them) are not lost: the service queues the event's record for the
/// [`AuditLog`]'s writer instead, with the outcome the call really had. So a store that
/// ignores this still has a complete log, written just after each change rather than
/// with it.
///
/// ```
/// use auth_core::PendingRecords;
///
/// // Outside a service's write there is nothing to take.
/// assert!(PendingRecords::take().is_none());
/// ```
#[derive(Debug)]
pub struct PendingRecords {
    records: Vec<AuditRecord>,
    scope: Arc<PendingScope>,
}

impl PendingRecords {
    /// The records handed over with the write being made now, if any; `None` outside a
    /// service's recorded write, or once taken. Call it on the task that called the
    /// store method (before moving work to another thread).
    pub fn take() -> Option<Self> {
        PENDING
            .try_with(|scope| {
                let records = scope.records.lock().unwrap_or_else(PoisonError::into_inner).take()?;
                Some(Self {
                    records,
                    scope: Arc::clone(scope),
                })
            })
            .ok()
            .flatten()
    }

    /// The records to insert, with the change, in its transaction.
    pub fn records(&self) -> &[AuditRecord] {
        &self.records
    }

    /// Names `user` in the records that name no account yet: for a write that learns
    /// whose account it changes as it makes the change (an email change confirmed or
    /// undone by its link), call it before inserting them.
    ///
    /// ```
    /// # use auth_core::PendingRecords;
    /// # fn confirm(mut pending: PendingRecords, owner: auth_core::UserId) {
    /// pending.about(owner);
    /// assert!(pending.records().iter().all(|record| record.user_id == Some(owner)));
    /// # }
    /// ```
    pub fn about(&mut self, user: UserId) {
        for record in &mut self.records {
            if record.user_id.is_none() && record.email_digest.is_none() {
                record.user_id = Some(user);
            }
        }
    }

    /// Says that the transaction holding the records committed.
    pub fn written(self) {
        self.scope.written.store(true, Ordering::Release);
    }
}

/// Awaits `write` with `records` pending for it; returns what it returned, and whether
/// the store wrote the records in its transaction.
pub(crate) async fn with_pending_records<T>(records: Vec<AuditRecord>, write: impl Future<Output = T>) -> (T, bool) {
    let scope = Arc::new(PendingScope {
        records: Mutex::new(Some(records)),
        written: AtomicBool::new(false),
    });
    let output = PENDING.scope(Arc::clone(&scope), write).await;
    (output, scope.written.load(Ordering::Acquire))
}
