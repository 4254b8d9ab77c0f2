//! The one event of every call: [`Audit`] collects what the flow learns, and `audited`
//! records it when the flow ends, however it ends.

use super::{Accounts, AuthService};
use crate::audit::{AuditRecord, with_pending_records};
use crate::email::Email;
use crate::error::AuthError;
use crate::event::{Action, AuthEvent, EmailDigest, Outcome, Refusal, Subject};
use crate::id::SessionId;
use crate::session::ClientInfo;

/// What one call is about, filled in as the flow learns it, for its one event.
pub(super) struct Audit {
    pub(super) action: Action,
    pub(super) subject: Subject,
    pub(super) session_id: Option<SessionId>,
    /// A more precise refusal than the error says (`WrongPassword` behind
    /// `InvalidCredentials`, say).
    pub(super) refusal: Option<Refusal>,
    /// The outcome of a call that succeeds for its caller but not really (a reset
    /// request over the account's limit, answered as usual).
    pub(super) outcome: Option<Outcome>,
    /// Whether the store wrote the call's record with its change ([`Accounts::record_change`]),
    /// so the audit log's queue does not get it again.
    pub(super) recorded: bool,
}

impl Audit {
    pub(super) fn new(action: Action, subject: Subject) -> Self {
        Self {
            action,
            subject,
            session_id: None,
            refusal: None,
            outcome: None,
            recorded: false,
        }
    }
}

impl<S> Accounts<S> {
    /// Runs `flow`, then records its one event: [`Outcome::Success`] (or what the flow
    /// set in [`Audit::outcome`]) when it succeeds, otherwise the outcome the refusal
    /// table gives its error (with the flow's more precise [`Audit::refusal`], if any).
    pub(super) async fn audited<T>(
        &self,
        mut audit: Audit,
        client: &ClientInfo,
        flow: impl AsyncFnOnce(&mut Audit) -> Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        let result = flow(&mut audit).await;
        let outcome = match &result {
            Ok(_) => audit.outcome.take().unwrap_or(Outcome::Success),
            Err(error) => error.audit_outcome(audit.refusal.take()),
        };
        let event = AuthEvent {
            at: self.now(),
            action: audit.action,
            outcome,
            subject: audit.subject,
            session_id: audit.session_id,
            client: client.clone(),
            repeats: 0,
        };
        self.record_event(&event, audit.recorded);
        result
    }

    /// Sends `event` to `tracing`, the event sink and, unless the store already wrote it
    /// with its change (`recorded`), the audit log's queue.
    pub(super) fn record_event(&self, event: &AuthEvent, recorded: bool) {
        self.record_busy_summaries(event.at);
        if event.outcome == Outcome::Busy && !self.busy.is_first(event) {
            return;
        }
        self.emit_event(event, recorded);
    }

    /// Records the summaries of the busy refusals counted in seconds that ended before
    /// `now` (see `busy.rs`).
    pub(super) fn record_busy_summaries(&self, now: time::OffsetDateTime) {
        for summary in self.busy.ended(now) {
            self.emit_event(&summary, false);
        }
    }

    fn emit_event(&self, event: &AuthEvent, recorded: bool) {
        event.trace();
        self.events.record(event);
        if let Some(log) = &self.audit_log
            && !recorded
        {
            log.queue(event);
        }
    }

    /// Awaits `write`, the store call that makes the change `audit` is about, handing the
    /// store the call's record (a success, as the audit says now) to write in the same
    /// transaction ([`PendingRecords`](crate::PendingRecords)). When the store wrote it,
    /// the call's event is not queued again at its end, whatever happens after the change
    /// (the record says what was changed; `tracing` has the rest). Without an audit log
    /// this only awaits `write`.
    pub(super) async fn record_change<T>(
        &self,
        audit: &mut Audit,
        client: &ClientInfo,
        write: impl Future<Output = T>,
    ) -> T {
        let subject = audit.subject.clone();
        self.record_change_of(audit, subject, client, write).await
    }

    /// [`record_change`](Self::record_change) of a change that makes its own subject (a
    /// new account, a deleted one): the record names `subject`, and so does the call's
    /// event once the store wrote the record.
    pub(super) async fn record_change_of<T>(
        &self,
        audit: &mut Audit,
        subject: Subject,
        client: &ClientInfo,
        write: impl Future<Output = T>,
    ) -> T {
        if self.audit_log.is_none() || audit.recorded {
            return write.await;
        }
        let event = AuthEvent {
            at: self.now(),
            action: audit.action,
            outcome: Outcome::Success,
            subject,
            session_id: audit.session_id,
            client: client.clone(),
            repeats: 0,
        };
        let record = AuditRecord::of(&event);
        let (output, written) = with_pending_records(vec![record], write).await;
        if written {
            audit.recorded = true;
            audit.subject = event.subject;
        }
        output
    }

    /// Whom a call about `email` is about before the flow finds the account: the keyed
    /// digest of the address as typed (parsed by the identity rules), or nobody.
    pub(super) fn email_subject(&self, email: Option<&Email>) -> Subject {
        email.map_or(Subject::Unknown, |email| {
            Subject::Email(EmailDigest::of(&self.event_key, email))
        })
    }
}

impl<S> AuthService<S> {
    /// [`Accounts::audited`], with this service's clock and events.
    pub(super) async fn audited<T>(
        &self,
        audit: Audit,
        client: &ClientInfo,
        flow: impl AsyncFnOnce(&mut Audit) -> Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        self.accounts.audited(audit, client, flow).await
    }

    /// [`Accounts::record_change`], with this service's clock and audit log.
    pub(super) async fn record_change<T>(
        &self,
        audit: &mut Audit,
        client: &ClientInfo,
        write: impl Future<Output = T>,
    ) -> T {
        self.accounts.record_change(audit, client, write).await
    }

    /// [`Accounts::record_change_of`], with this service's clock and audit log.
    pub(super) async fn record_change_of<T>(
        &self,
        audit: &mut Audit,
        subject: Subject,
        client: &ClientInfo,
        write: impl Future<Output = T>,
    ) -> T {
        self.accounts.record_change_of(audit, subject, client, write).await
    }
}
