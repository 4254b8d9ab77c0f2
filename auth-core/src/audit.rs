//! The audit log: every [`AuthEvent`] kept in the store ([`AuditLogStore`]), written by
//! an [`AuditLog`] sink off the request path, read back per account or for an
//! administrator.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use time::OffsetDateTime;

use crate::event::{AuthEvent, EventSink, Outcome, Subject};
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

/// An [`EventSink`] that keeps every event in the store's audit log: `record` (on the
/// request path) only queues the event, and the [`AuditWriter`] it comes with writes the
/// queue in batches. Nothing is lost silently: a record the store refuses (it is down) or
/// one that finds the queue full is logged at `error` with the count, and counted
/// ([`lost`](Self::lost)); the change the event records stands either way.
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
/// let auth = AuthService::new(store, Tokens::new(key, "https://auth.example", "api")).with_event_sink(Arc::new(log));
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

impl EventSink for AuditLog {
    fn record(&self, event: &AuthEvent) {
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
