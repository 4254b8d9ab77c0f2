//! The single-use tokens that mails carry: issued, and taken back from the client, once
//! here for every flow that mails one.

use std::time::Duration;

use super::AuthService;
use crate::clock::later_by;
use crate::error::AuthError;
use crate::one_time::{Delivery, OneTimeToken, TokenPurpose};
use crate::rate_limit::Bucket;
use crate::session::ClientInfo;
use crate::store::AuthStore;
use crate::token::{OpaqueToken, TokenError, TokenHash};
use crate::user::User;

impl<S: AuthStore> AuthService<S> {
    /// The hash of a single-use token a client presents to confirm something (a reset, a
    /// verification), after drawing on its allowance of confirmations
    /// ([`Bucket::ConfirmationsPerClient`]) before any other work.
    pub(super) async fn presented_one_time_token(
        &self,
        token: &str,
        purpose: TokenPurpose,
        client: &ClientInfo,
    ) -> Result<TokenHash, AuthError> {
        self.take(Bucket::ConfirmationsPerClient, client, None).await?;
        OpaqueToken::hash_presented(purpose.kind(), token).ok_or(AuthError::InvalidOneTimeToken(TokenError::Malformed))
    }

    /// Stores `hash` as `user`'s single-use token for `purpose`, bound to the account's
    /// current address and token version and working for `ttl`, and returns the message
    /// that delivers `token` to that address.
    pub(super) async fn issue_one_time_token(
        &self,
        user: &User,
        purpose: TokenPurpose,
        token: OpaqueToken,
        hash: &TokenHash,
        ttl: Duration,
    ) -> Result<Delivery, AuthError> {
        let now = self.now();
        let record = OneTimeToken {
            user_id: user.id,
            purpose,
            email: user.email.clone(),
            token_version: user.token_version,
            created_at: now,
            expires_at: later_by(now, ttl),
        };
        self.store().insert_one_time_token(hash, &record).await?;
        Ok(Delivery {
            to: record.email,
            user_id: user.id,
            purpose,
            token,
            expires_at: record.expires_at,
        })
    }
}
