//! The allowances every flow draws on: each bucket's key, written once, and the draws.

use super::AuthService;
use super::audit::Audit;
use crate::email::Email;
use crate::error::{AuthError, StoreError};
use crate::event::{EmailDigest, Outcome};
use crate::rate_limit::{Bucket, RateDecision};
use crate::session::ClientInfo;

impl<S> AuthService<S> {
    /// Takes one unit of `bucket`'s allowance, before any expensive work: under the key of
    /// `client` for a per-client bucket, of `account` for a per-account one.
    pub(super) async fn take(
        &self,
        bucket: Bucket,
        client: &ClientInfo,
        account: Option<&Email>,
    ) -> Result<(), AuthError> {
        let key = if bucket.is_per_account() {
            self.account_key(account)
        } else {
            client_key(client)
        };
        match self.limiter.acquire(bucket, &key).await {
            Ok(RateDecision::Allowed) => Ok(()),
            Ok(RateDecision::Limited { retry_after }) => Err(AuthError::RateLimited { retry_after }),
            // Fail closed: without a working limiter, nothing is checked.
            Err(error) => Err(AuthError::Unavailable(StoreError::Unavailable(error))),
        }
    }

    /// Draws on [`Bucket::ConsecutiveLoginFailuresPerAccount`]. Its refusal is a lock,
    /// not a wait: waiting does not refill it (a retry-after of years says nothing
    /// useful), only a successful reset does, so it answers
    /// [`AccountLocked`](AuthError::AccountLocked).
    pub(super) async fn take_consecutive_failure(
        &self,
        client: &ClientInfo,
        account: Option<&Email>,
    ) -> Result<(), AuthError> {
        match self
            .take(Bucket::ConsecutiveLoginFailuresPerAccount, client, account)
            .await
        {
            Err(AuthError::RateLimited { .. }) => Err(AuthError::AccountLocked),
            other => other,
        }
    }

    /// Draws one mail to `recipient` requested by `client` from the mail allowances.
    /// `Ok(false)` over either: the caller answers as usual and sends nothing, since a
    /// refusal would tell the client, and mail bombing is the attack.
    /// The event then records the call as rate limited.
    pub(super) async fn mail_allowed(
        &self,
        recipient: &Email,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<bool, AuthError> {
        for bucket in [Bucket::MailsPerClient, Bucket::MailsPerAccount] {
            match self.take(bucket, client, Some(recipient)).await {
                Ok(()) => {}
                Err(AuthError::RateLimited { retry_after }) => {
                    audit.outcome = Some(Outcome::RateLimited { retry_after });
                    return Ok(false);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(true)
    }

    /// Refills the account's login allowance (after a success, or a completed reset).
    pub(super) async fn refill_login_allowance(&self, email: &Email) {
        let key = self.account_key(Some(email));
        for bucket in [
            Bucket::LoginFailuresPerAccount,
            Bucket::ConsecutiveLoginFailuresPerAccount,
            Bucket::LockNoticesPerAccount,
        ] {
            if let Err(error) = self.limiter.reset(bucket, &key).await {
                tracing::warn!(%bucket, %error, "could not refill a login allowance");
            }
        }
    }

    /// Refills the account's allowance of wrong second-factor codes (after a completed
    /// second-factor login, or a code that turned the factor on or off).
    pub(super) async fn refill_second_factor_allowance(&self, email: &Email) {
        let key = self.account_key(Some(email));
        if let Err(error) = self.limiter.reset(Bucket::SecondFactorFailuresPerAccount, &key).await {
            tracing::warn!(%error, "could not refill the second-factor allowance");
        }
    }

    /// The key of an account in per-account buckets: the keyed digest of its normalized
    /// email, so a shared limiter backend never sees addresses. Malformed emails share one
    /// key (they have no owner to lock out).
    fn account_key(&self, email: Option<&Email>) -> String {
        email.map_or_else(
            || "malformed-email".to_owned(),
            |email| EmailDigest::of(&self.accounts.event_key, email).to_string(),
        )
    }
}

/// The key of `client` in per-client buckets. Clients without an address share one key,
/// so a caller that forgets to pass addresses gets one strict limit rather than none;
/// that is logged once, since it throttles every such client together.
fn client_key(client: &ClientInfo) -> String {
    static WARNED: std::sync::Once = std::sync::Once::new();
    client.rate_limit_key().unwrap_or_else(|| {
        WARNED.call_once(|| {
            tracing::warn!(
                "a request came without a client IP address: per-client rate limits apply to all such \
                 requests together; pass the peer address in ClientInfo"
            );
        });
        "unknown-client".to_owned()
    })
}
