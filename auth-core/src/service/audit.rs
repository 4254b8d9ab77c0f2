//! The one event of every call: [`Audit`] collects what the flow learns, and `audited`
//! records it when the flow ends, however it ends.

use super::{Accounts, AuthService};
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
}

impl Audit {
    pub(super) fn new(action: Action, subject: Subject) -> Self {
        Self {
            action,
            subject,
            session_id: None,
            refusal: None,
            outcome: None,
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
        };
        event.trace();
        self.events.record(&event);
        result
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
}
