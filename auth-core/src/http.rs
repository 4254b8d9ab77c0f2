//! How an HTTP API answers an [`AuthError`], decided once for every server: the one table
//! of every refusal, and [`ErrorResponse`], its status, headers and JSON body. No HTTP
//! crate: statuses are `u16` and headers `(&str, String)` pairs, which any framework takes.
//!
//! # The refusal table
//!
//! Every [`AuthError`] variant has one row, and everything about it is read from that row:
//! its stable [`code`](AuthError::code), its [`http_status`](AuthError::http_status), its
//! [`retry_after`](AuthError::retry_after) (transient refusals only: waiting and retrying
//! may succeed), whether the server is at fault ([`is_server_error`](AuthError::is_server_error):
//! log it as an error), and the [`Outcome`] its [`AuthEvent`](crate::AuthEvent) records.
//! Adding an error is adding its row.
//!
//! | variant | code | status | retry | server fault | event outcome |
//! |---|---|---|---|---|---|
//! | [`InvalidEmail`](AuthError::InvalidEmail) | `invalid_email` | 422 | | | refused: invalid email |
//! | [`WeakPassword`](AuthError::WeakPassword) | `weak_password` | 422 | | | refused: weak password |
//! | [`EmailTaken`](AuthError::EmailTaken) | `email_taken` | 409 | | | refused: email taken |
//! | [`InvalidCredentials`](AuthError::InvalidCredentials) | `invalid_credentials` | 401 | | | refused: wrong password, or the flow's more precise reason |
//! | [`AccountDisabled`](AuthError::AccountDisabled) | `account_disabled` | 403 | | | refused: account disabled |
//! | [`EmailNotVerified`](AuthError::EmailNotVerified) | `email_not_verified` | 403 | | | refused: email not verified |
//! | [`SecondFactorRequired`](AuthError::SecondFactorRequired) | `mfa_required` | 403 | | | refused: second factor required |
//! | [`LoginChallengeFailed`](AuthError::LoginChallengeFailed) | `invalid_code` | 401 | | | refused: wrong code, or the flow's more precise reason |
//! | [`InvalidCode`](AuthError::InvalidCode) | `invalid_code` | 400 | | | refused: wrong code |
//! | [`SecondFactorAlreadyEnrolled`](AuthError::SecondFactorAlreadyEnrolled) | `already_enrolled` | 409 | | | refused: already enrolled |
//! | [`SecondFactorNotEnrolled`](AuthError::SecondFactorNotEnrolled) | `not_enrolled` | 409 | | | refused: not enrolled |
//! | [`StepUpRequired`](AuthError::StepUpRequired) | `insufficient_user_authentication` | 401 | | | refused: step-up required |
//! | [`InvalidToken`](AuthError::InvalidToken) | `invalid_token` | 401 | | | refused: invalid token (with the reason) |
//! | [`InvalidOneTimeToken`](AuthError::InvalidOneTimeToken) | `invalid_token` | 400 | | | refused: invalid token (with the reason) |
//! | [`Forbidden`](AuthError::Forbidden) | `forbidden` | 403 | | | refused: not found |
//! | [`UserNotFound`](AuthError::UserNotFound) | `not_found` | 404 | | | refused: not found |
//! | [`SessionNotFound`](AuthError::SessionNotFound) | `not_found` | 404 | | | refused: not found |
//! | [`Conflict`](AuthError::Conflict) | `conflict` | 409 | | | refused: conflict |
//! | [`TooManyRoles`](AuthError::TooManyRoles) | `too_many_roles` | 422 | | | refused: too many roles |
//! | [`UnknownProvider`](AuthError::UnknownProvider) | `unknown_provider` | 404 | | | refused: unknown provider |
//! | [`InvalidReturnPath`](AuthError::InvalidReturnPath) | `invalid_redirect` | 400 | | | refused: invalid return path |
//! | [`InvalidCodeChallenge`](AuthError::InvalidCodeChallenge) | `invalid_code_challenge` | 400 | | | refused: invalid code challenge |
//! | [`ExternalLoginFailed`](AuthError::ExternalLoginFailed) | `external_login_failed` | 400 | | | refused: external login (with the reason) |
//! | [`ExternalAccountExists`](AuthError::ExternalAccountExists) | `account_exists` | 409 | | | refused: account exists |
//! | [`ExternalEmailUnverified`](AuthError::ExternalEmailUnverified) | `provider_email_unverified` | 403 | | | refused: provider email unverified |
//! | [`IdentityInUse`](AuthError::IdentityInUse) | `identity_in_use` | 409 | | | refused: identity in use |
//! | [`LastSignInMethod`](AuthError::LastSignInMethod) | `last_sign_in_method` | 409 | | | refused: last sign-in method |
//! | [`IdentityNotFound`](AuthError::IdentityNotFound) | `not_found` | 404 | | | refused: not found |
//! | [`PasskeyRefused`](AuthError::PasskeyRefused) | `passkey_refused` | 401 | | | refused: passkey (unknown ceremony), or the flow's more precise reason |
//! | [`InvalidPasskey`](AuthError::InvalidPasskey) | `invalid_passkey` | 400 | | | refused: passkey (malformed credential), or the flow's more precise reason |
//! | [`InvalidPasskeyName`](AuthError::InvalidPasskeyName) | `invalid_passkey_name` | 422 | | | refused: invalid passkey name |
//! | [`PasskeyNotFound`](AuthError::PasskeyNotFound) | `not_found` | 404 | | | refused: not found |
//! | [`RateLimited`](AuthError::RateLimited) | `rate_limited` | 429 | its wait | | rate limited |
//! | [`AccountLocked`](AuthError::AccountLocked) | `account_locked` | 429 | (none: only a reset unlocks) | | refused: account locked |
//! | [`Busy`](AuthError::Busy) | `busy` | 503 | its wait | (load shedding) | busy |
//! | [`ProviderUnavailable`](AuthError::ProviderUnavailable) | `provider_unavailable` | 503 | [`RETRY_AFTER`] | yes | failed |
//! | [`Unavailable`](AuthError::Unavailable) | `unavailable` | 503 | [`RETRY_AFTER`] | yes | failed |
//! | [`Internal`](AuthError::Internal) | `internal` | 500 | | yes | failed |
//!
//! ```
//! use auth_core::AuthError;
//! use auth_core::http::ErrorResponse;
//!
//! let error = AuthError::InvalidCredentials;
//! assert_eq!((error.code(), error.http_status()), ("invalid_credentials", 401));
//! let answer = ErrorResponse::from(&error);
//! assert_eq!(answer.headers(), vec![("www-authenticate", "Bearer".to_owned())]);
//! assert_eq!(answer.body(), r#"{"error":"invalid_credentials","detail":"invalid credentials"}"#);
//! ```

use std::time::Duration;

use crate::error::{AuthError, RETRY_AFTER};
use crate::event::{Outcome, Refusal};

/// One row of the refusal table.
struct Row {
    code: &'static str,
    status: u16,
    /// Waiting this long and retrying may succeed.
    retry_after: Option<Duration>,
    /// The server, not the client, is at fault.
    server_fault: bool,
    /// What the event of a call that ends this way records.
    outcome: Outcome,
}

impl Row {
    /// A refusal for a reason of the request's own.
    fn refused(code: &'static str, status: u16, refusal: Refusal) -> Self {
        Self {
            code,
            status,
            retry_after: None,
            server_fault: false,
            outcome: Outcome::Refused(refusal),
        }
    }
}

/// The refusal table: the one place each variant is described.
fn row(error: &AuthError) -> Row {
    use AuthError as E;
    match error {
        E::InvalidEmail(_) => Row::refused("invalid_email", 422, Refusal::InvalidEmail),
        E::WeakPassword(violation) => Row::refused("weak_password", 422, Refusal::WeakPassword(*violation)),
        E::EmailTaken => Row::refused("email_taken", 409, Refusal::EmailTaken),
        E::InvalidCredentials => Row::refused("invalid_credentials", 401, Refusal::WrongPassword),
        E::AccountDisabled => Row::refused("account_disabled", 403, Refusal::AccountDisabled),
        E::EmailNotVerified => Row::refused("email_not_verified", 403, Refusal::EmailNotVerified),
        E::SecondFactorRequired => Row::refused("mfa_required", 403, Refusal::SecondFactorRequired),
        E::LoginChallengeFailed => Row::refused("invalid_code", 401, Refusal::WrongCode),
        E::InvalidCode => Row::refused("invalid_code", 400, Refusal::WrongCode),
        E::SecondFactorAlreadyEnrolled => Row::refused("already_enrolled", 409, Refusal::AlreadyEnrolled),
        E::SecondFactorNotEnrolled => Row::refused("not_enrolled", 409, Refusal::NotEnrolled),
        E::StepUpRequired { .. } => Row::refused("insufficient_user_authentication", 401, Refusal::StepUpRequired),
        E::InvalidToken(reason) => Row::refused("invalid_token", 401, Refusal::InvalidToken(reason.clone())),
        E::InvalidOneTimeToken(reason) => Row::refused("invalid_token", 400, Refusal::InvalidToken(reason.clone())),
        E::Forbidden { .. } => Row::refused("forbidden", 403, Refusal::NotFound),
        E::UserNotFound | E::SessionNotFound => Row::refused("not_found", 404, Refusal::NotFound),
        E::Conflict => Row::refused("conflict", 409, Refusal::Conflict),
        E::TooManyRoles { .. } => Row::refused("too_many_roles", 422, Refusal::TooManyRoles),
        E::UnknownProvider => Row::refused("unknown_provider", 404, Refusal::UnknownProvider),
        E::InvalidReturnPath(_) => Row::refused("invalid_redirect", 400, Refusal::InvalidReturnPath),
        E::InvalidCodeChallenge(_) => Row::refused("invalid_code_challenge", 400, Refusal::InvalidCodeChallenge),
        E::ExternalLoginFailed(reason) => {
            Row::refused("external_login_failed", 400, Refusal::ExternalLogin(reason.clone()))
        }
        E::ExternalAccountExists => Row::refused("account_exists", 409, Refusal::AccountExists),
        E::ExternalEmailUnverified => Row::refused("provider_email_unverified", 403, Refusal::ProviderEmailUnverified),
        E::IdentityInUse => Row::refused("identity_in_use", 409, Refusal::IdentityInUse),
        E::LastSignInMethod => Row::refused("last_sign_in_method", 409, Refusal::LastSignInMethod),
        E::IdentityNotFound | E::PasskeyNotFound => Row::refused("not_found", 404, Refusal::NotFound),
        E::PasskeyRefused => Row::refused(
            "passkey_refused",
            401,
            Refusal::Passkey(crate::PasskeyRefusal::UnknownCeremony),
        ),
        E::InvalidPasskey => Row::refused(
            "invalid_passkey",
            400,
            Refusal::Passkey(crate::PasskeyRefusal::MalformedCredential),
        ),
        E::InvalidPasskeyName => Row::refused("invalid_passkey_name", 422, Refusal::InvalidPasskeyName),
        // The provider's fault, not the client's: a 503 to retry, logged as a fault.
        E::ProviderUnavailable(_) => Row {
            code: "provider_unavailable",
            status: 503,
            retry_after: Some(RETRY_AFTER),
            server_fault: true,
            outcome: Outcome::Failed,
        },
        E::RateLimited { retry_after } => Row {
            code: "rate_limited",
            status: 429,
            retry_after: Some(*retry_after),
            server_fault: false,
            outcome: Outcome::RateLimited {
                retry_after: *retry_after,
            },
        },
        // A lock, not a wait: waiting does not help, only a password reset does.
        E::AccountLocked => Row::refused("account_locked", 429, Refusal::AccountLocked),
        // Load shedding: a 503, but no fault to log (its own event counts it), or a
        // flood would multiply the log.
        E::Busy { retry_after } => Row {
            code: "busy",
            status: 503,
            retry_after: Some(*retry_after),
            server_fault: false,
            outcome: Outcome::Busy,
        },
        E::Unavailable(_) => Row {
            code: "unavailable",
            status: 503,
            retry_after: Some(RETRY_AFTER),
            server_fault: true,
            outcome: Outcome::Failed,
        },
        E::Internal(_) => Row {
            code: "internal",
            status: 500,
            retry_after: None,
            server_fault: true,
            outcome: Outcome::Failed,
        },
    }
}

impl AuthError {
    /// A stable, machine-readable code, for API error bodies and metrics (see the
    /// [refusal table](crate::http)).
    pub fn code(&self) -> &'static str {
        row(self).code
    }

    /// The HTTP status a JSON API should answer with (see the
    /// [refusal table](crate::http)).
    pub fn http_status(&self) -> u16 {
        row(self).status
    }

    /// For `Retry-After`: how long the client should wait, when waiting helps (a rate
    /// limit, a saturated hash pool, an unreachable store).
    pub fn retry_after(&self) -> Option<Duration> {
        row(self).retry_after
    }

    /// Whether the refusal is transient: the same request may succeed later, after
    /// [`retry_after`](Self::retry_after).
    pub fn is_transient(&self) -> bool {
        self.retry_after().is_some()
    }

    /// Whether the server, not the client, is at fault (log these as errors). A saturated
    /// hash pool ([`Busy`](Self::Busy)) answers 503 but is no fault: it is load shedding,
    /// recorded by its own `busy` event, and an error line for each refusal would multiply
    /// a flood's log volume.
    pub fn is_server_error(&self) -> bool {
        row(self).server_fault
    }

    /// The outcome an event records for a call that ends with this error; `refusal`, a
    /// flow's more precise reason, replaces the table's for a refusal of the request's own.
    pub(crate) fn audit_outcome(&self, refusal: Option<Refusal>) -> Outcome {
        match (row(self).outcome, refusal) {
            (Outcome::Refused(_), Some(precise)) => Outcome::Refused(precise),
            (outcome, _) => outcome,
        }
    }
}

/// An error answer of an HTTP API: a status, headers, and the JSON body
/// `{"error": "<code>", "detail": "<human message>"}`, the same bytes whatever the server.
///
/// From an [`AuthError`] it takes the error's row of the [refusal table](self) and its
/// client-safe `Display`; servers build their own transport-level answers (a malformed
/// body, an unknown route) with [`new`](Self::new).
///
/// ```
/// use std::time::Duration;
/// use auth_core::AuthError;
/// use auth_core::http::ErrorResponse;
///
/// let limited = ErrorResponse::from(AuthError::RateLimited { retry_after: Duration::from_millis(11_200) });
/// assert_eq!((limited.status(), limited.code()), (429, "rate_limited"));
/// assert_eq!(limited.headers(), vec![("retry-after", "12".to_owned())]);
///
/// let malformed = ErrorResponse::new(400, "invalid_request", "the body is not JSON");
/// assert_eq!(malformed.body(), r#"{"error":"invalid_request","detail":"the body is not JSON"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    status: u16,
    code: &'static str,
    detail: String,
    retry_after: Option<Duration>,
    /// The `WWW-Authenticate` challenge of a 401 (`Bearer` unless the error says more).
    challenge: Option<String>,
    /// `Connection: close`: the connection cannot carry another request.
    close: bool,
}

impl ErrorResponse {
    /// An answer with `status`, the stable `code` and a `detail` for people.
    pub fn new(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            challenge: None,
            close: false,
        }
    }

    /// Asks the client to wait `wait` before retrying (`Retry-After`).
    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// Ends the connection after this answer (`Connection: close`).
    #[must_use]
    pub fn with_connection_close(mut self) -> Self {
        self.close = true;
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for people.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Headers beside the JSON content type: `Retry-After` in whole seconds rounded up (a
    /// client that waits this long is served), `WWW-Authenticate: Bearer` on a 401 (RFC
    /// 9110 §15.5.2 requires one; RFC 9470's `error="insufficient_user_authentication"`
    /// with its `max_age` when a step-up is needed), `Connection: close` when asked for.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.push(("retry-after", seconds.max(1).to_string()));
        }
        if self.status == 401 {
            let challenge = self.challenge.clone().unwrap_or_else(|| "Bearer".to_owned());
            headers.push(("www-authenticate", challenge));
        }
        if self.close {
            headers.push(("connection", "close".to_owned()));
        }
        headers
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            error: &'a str,
            detail: &'a str,
        }
        serde_json::to_string(&Body {
            error: self.code,
            detail: &self.detail,
        })
        .unwrap_or_default()
    }
}

impl From<&AuthError> for ErrorResponse {
    fn from(error: &AuthError) -> Self {
        let row = row(error);
        Self {
            status: row.status,
            code: row.code,
            detail: error.to_string(),
            retry_after: row.retry_after,
            challenge: match error {
                AuthError::StepUpRequired { max_age } => Some(format!(
                    "Bearer error=\"insufficient_user_authentication\", max_age={}",
                    max_age.as_secs()
                )),
                _ => None,
            },
            close: false,
        }
    }
}

impl From<AuthError> for ErrorResponse {
    fn from(error: AuthError) -> Self {
        Self::from(&error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::EmailError;
    use crate::error::StoreError;
    use crate::password::PolicyViolation;
    use crate::token::TokenError;

    /// One error of every variant; the match makes a new variant a compile error here
    /// until it is added.
    fn every_variant() -> Vec<AuthError> {
        let all = vec![
            AuthError::InvalidEmail(EmailError::MissingAt),
            AuthError::WeakPassword(PolicyViolation::Common),
            AuthError::EmailTaken,
            AuthError::InvalidCredentials,
            AuthError::AccountDisabled,
            AuthError::EmailNotVerified,
            AuthError::SecondFactorRequired,
            AuthError::LoginChallengeFailed,
            AuthError::InvalidCode,
            AuthError::SecondFactorAlreadyEnrolled,
            AuthError::SecondFactorNotEnrolled,
            AuthError::StepUpRequired {
                max_age: Duration::from_secs(600),
            },
            AuthError::InvalidToken(TokenError::Expired),
            AuthError::InvalidOneTimeToken(TokenError::Reused),
            AuthError::Forbidden { role: "admin".into() },
            AuthError::UserNotFound,
            AuthError::SessionNotFound,
            AuthError::Conflict,
            AuthError::TooManyRoles { max: 32 },
            AuthError::UnknownProvider,
            AuthError::InvalidReturnPath(crate::ReturnPathError),
            AuthError::InvalidCodeChallenge(crate::CodeChallengeError),
            AuthError::ExternalLoginFailed(crate::ExternalLoginRefusal::AnotherBrowser),
            AuthError::ExternalAccountExists,
            AuthError::ExternalEmailUnverified,
            AuthError::IdentityInUse,
            AuthError::LastSignInMethod,
            AuthError::IdentityNotFound,
            AuthError::PasskeyRefused,
            AuthError::InvalidPasskey,
            AuthError::InvalidPasskeyName,
            AuthError::PasskeyNotFound,
            AuthError::ProviderUnavailable("down".into()),
            AuthError::RateLimited {
                retry_after: Duration::from_secs(3),
            },
            AuthError::AccountLocked,
            AuthError::Busy {
                retry_after: RETRY_AFTER,
            },
            AuthError::Unavailable(StoreError::unavailable("down")),
            AuthError::Internal("broken".into()),
        ];
        for error in &all {
            match error {
                AuthError::InvalidEmail(_)
                | AuthError::WeakPassword(_)
                | AuthError::EmailTaken
                | AuthError::InvalidCredentials
                | AuthError::AccountDisabled
                | AuthError::EmailNotVerified
                | AuthError::SecondFactorRequired
                | AuthError::LoginChallengeFailed
                | AuthError::InvalidCode
                | AuthError::SecondFactorAlreadyEnrolled
                | AuthError::SecondFactorNotEnrolled
                | AuthError::StepUpRequired { .. }
                | AuthError::InvalidToken(_)
                | AuthError::InvalidOneTimeToken(_)
                | AuthError::Forbidden { .. }
                | AuthError::UserNotFound
                | AuthError::SessionNotFound
                | AuthError::Conflict
                | AuthError::TooManyRoles { .. }
                | AuthError::UnknownProvider
                | AuthError::InvalidReturnPath(_)
                | AuthError::InvalidCodeChallenge(_)
                | AuthError::ExternalLoginFailed(_)
                | AuthError::ExternalAccountExists
                | AuthError::ExternalEmailUnverified
                | AuthError::IdentityInUse
                | AuthError::LastSignInMethod
                | AuthError::IdentityNotFound
                | AuthError::PasskeyRefused
                | AuthError::InvalidPasskey
                | AuthError::InvalidPasskeyName
                | AuthError::PasskeyNotFound
                | AuthError::ProviderUnavailable(_)
                | AuthError::RateLimited { .. }
                | AuthError::AccountLocked
                | AuthError::Busy { .. }
                | AuthError::Unavailable(_)
                | AuthError::Internal(_) => {}
            }
        }
        all
    }

    #[test]
    fn the_documented_table_is_the_table() {
        let doc = include_str!("http.rs");
        for error in every_variant() {
            let name = format!("{error:?}");
            let variant = name.split(['(', ' ']).next().unwrap();
            let line = doc
                .lines()
                .find(|line| line.starts_with(&format!("//! | [`{variant}`]")))
                .unwrap_or_else(|| panic!("{variant} has no row in the module documentation"));
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            assert_eq!(cells[2], format!("`{}`", error.code()), "{variant}");
            assert_eq!(cells[3], error.http_status().to_string(), "{variant}");
            assert_eq!(
                !cells[4].is_empty() && !cells[4].starts_with('('),
                error.is_transient(),
                "{variant}"
            );
            assert_eq!(cells[5] == "yes", error.is_server_error(), "{variant}");
            // The README's table of codes has the row too.
            let readme_row = format!("| `{}` | {} |", error.code(), error.http_status());
            assert!(README.contains(&readme_row), "README.md lacks {readme_row}");
        }
    }

    const README: &str = include_str!("../../README.md");

    #[test]
    fn only_the_servers_faults_are_server_errors_and_only_waits_are_transient() {
        for error in every_variant() {
            assert_eq!(
                error.is_server_error(),
                matches!(
                    error,
                    AuthError::Unavailable(_) | AuthError::Internal(_) | AuthError::ProviderUnavailable(_)
                ),
                "{error:?}"
            );
            assert_eq!(
                error.is_transient(),
                matches!(
                    error,
                    AuthError::RateLimited { .. }
                        | AuthError::Busy { .. }
                        | AuthError::Unavailable(_)
                        | AuthError::ProviderUnavailable(_)
                ),
                "{error:?}"
            );
            assert!((400..600).contains(&error.http_status()), "{error:?}");
        }
    }

    #[test]
    fn a_precise_refusal_replaces_only_a_refusal() {
        let precise = Some(Refusal::UnknownAccount);
        assert_eq!(
            AuthError::InvalidCredentials.audit_outcome(precise.clone()),
            Outcome::Refused(Refusal::UnknownAccount)
        );
        assert_eq!(
            AuthError::InvalidCredentials.audit_outcome(None),
            Outcome::Refused(Refusal::WrongPassword)
        );
        let down = AuthError::Unavailable(StoreError::unavailable("down"));
        assert_eq!(down.audit_outcome(precise), Outcome::Failed);
    }

    #[test]
    fn retry_after_is_rounded_up_in_whole_seconds() {
        let answer = ErrorResponse::from(AuthError::RateLimited {
            retry_after: Duration::from_millis(11_200),
        });
        assert_eq!((answer.status(), answer.code()), (429, "rate_limited"));
        assert_eq!(answer.headers(), vec![("retry-after", "12".to_owned())]);
        let tiny = ErrorResponse::from(AuthError::RateLimited {
            retry_after: Duration::from_millis(1),
        });
        assert_eq!(tiny.headers(), vec![("retry-after", "1".to_owned())]);
    }

    #[test]
    fn transport_answers_carry_what_they_ask_for() {
        let answer = ErrorResponse::new(503, "busy", "too many connections")
            .with_retry_after(Duration::from_secs(1))
            .with_connection_close();
        assert_eq!(
            answer.headers(),
            vec![("retry-after", "1".to_owned()), ("connection", "close".to_owned())]
        );
    }

    #[test]
    fn request_errors_carry_no_extra_headers() {
        let answer = ErrorResponse::new(400, "invalid_request", "bad");
        assert_eq!(answer.status(), 400);
        assert!(answer.headers().is_empty());
        assert_eq!(answer.body(), r#"{"error":"invalid_request","detail":"bad"}"#);
    }
}
