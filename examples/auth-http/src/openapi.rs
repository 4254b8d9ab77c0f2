//! The OpenAPI 3.1 document of the API (feature `openapi`), built from the code: every
//! request and answer shape is the schema of its [`api`] type, derived from the
//! type itself, and every route is one row of a table, beside the statuses its flows
//! answer. [`Endpoints::openapi`](crate::Endpoints::openapi) keeps the rows an instance
//! serves.
//!
//! Statuses left out on purpose: 404 and 405 for a path or method no route takes (they
//! belong to no operation), and 500 (a fault of the server's, never part of the contract).

use serde::{Deserialize, Serialize};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{InfoBuilder, OpenApi, Ref, RefOr, Required};
use utoipa::{OpenApi as _, ToSchema};

use crate::api;

/// The body of every error answer: `{"error": "<code>", "detail": "<message for people>"}`.
///
/// ```
/// use auth_http::openapi::{ErrorBody, ErrorCode};
///
/// let body: ErrorBody = serde_json::from_str(r#"{"error":"rate_limited","detail":"slow down"}"#).unwrap();
/// assert_eq!(body.error, ErrorCode::RateLimited);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The stable, machine-readable code.
    pub error: ErrorCode,
    /// A message for people; its wording may change.
    pub detail: String,
}

/// Every stable code an error answer carries: the rows of `auth_core::http`'s refusal
/// table and the transport's own answers ([`ErrorAnswer`](crate::ErrorAnswer)).
///
/// ```
/// use auth_http::openapi::ErrorCode;
///
/// assert_eq!(serde_json::to_string(&ErrorCode::MfaRequired).unwrap(), r#""mfa_required""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body, query or request does not parse, or a field is missing or wrong.
    InvalidRequest,
    /// 422: not an email address this service accepts.
    InvalidEmail,
    /// 422: the password breaks the password policy.
    WeakPassword,
    /// 409: an account has this email.
    EmailTaken,
    /// 401: wrong email or password (the same answer for both).
    InvalidCredentials,
    /// 403: the account is disabled.
    AccountDisabled,
    /// 403: the account's address must be confirmed first.
    EmailNotVerified,
    /// 403: the login needs a second factor this server cannot ask for, or the route's
    /// role needs a login with a second factor.
    MfaRequired,
    /// 401 (`POST /login/mfa`) or 400 (confirming or disabling): the code is wrong, used
    /// or expired, or the challenge is.
    InvalidCode,
    /// 409: two-factor authentication is already on.
    AlreadyEnrolled,
    /// 409: two-factor authentication is not on (or no enrolment was begun).
    NotEnrolled,
    /// 401: the action needs a recent sign-in or the second factor (RFC 9470); the
    /// `WWW-Authenticate` header carries `max_age`.
    InsufficientUserAuthentication,
    /// 401 (a bearer or refresh token) or 400 (a mailed link's token): not valid.
    InvalidToken,
    /// 403: the account lacks the role the route requires.
    Forbidden,
    /// 404: no such account or session.
    NotFound,
    /// 409: the account changed meanwhile; retry.
    Conflict,
    /// 422: more roles than a token can carry.
    TooManyRoles,
    /// 429: over a rate limit; `Retry-After` says when to retry.
    RateLimited,
    /// 429: too many consecutive failed logins; only a password reset unlocks.
    AccountLocked,
    /// 503: the server is saturated; `Retry-After` says when to retry.
    Busy,
    /// 503: the store does not answer; `Retry-After` says when to retry.
    Unavailable,
    /// 500: a fault of the server's.
    Internal,
    /// 415: the body's `Content-Type` is not one the route takes.
    UnsupportedMediaType,
    /// 413: the body is over [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES).
    PayloadTooLarge,
    /// 414: the path and query are over [`MAX_URI_BYTES`](crate::MAX_URI_BYTES).
    UriTooLong,
    /// 431: over [`MAX_HEADER_FIELDS`](crate::MAX_HEADER_FIELDS) header fields or
    /// [`MAX_HEADER_BYTES`](crate::MAX_HEADER_BYTES) of them.
    HeaderFieldsTooLarge,
    /// 405: the route does not take this method.
    MethodNotAllowed,
    /// 408: the body did not arrive within the body timeout.
    RequestTimeout,
    /// 404: `/oauth/{provider}/…` names no configured identity provider.
    UnknownProvider,
    /// 400: `next` is not a path on this site.
    InvalidRedirect,
    /// 400: a native app's `code_challenge` is not an `S256` challenge.
    InvalidCodeChallenge,
    /// 400: the sign-in through a provider failed or expired (its state, the provider's
    /// answer, or a one-time exchange code); start again.
    ExternalLoginFailed,
    /// 409: a provider's new identity has the email of an existing account, which is
    /// never linked by itself: sign in to it and link the provider there.
    AccountExists,
    /// 403: a provider's new identity has no email the provider verified.
    ProviderEmailUnverified,
    /// 409: the identity is linked to another account.
    IdentityInUse,
    /// 409: the identity is the account's last way to sign in.
    LastSignInMethod,
    /// 503: the identity provider cannot be reached; `Retry-After` says when to retry.
    ProviderUnavailable,
    /// 401: the passkey sign-in was refused (an unknown, spent or expired ceremony, an
    /// unknown credential, an assertion that failed verification, a sign counter that
    /// moved back).
    PasskeyRefused,
    /// 400: the passkey could not be registered (an unknown, spent or expired ceremony, a
    /// malformed credential, an attestation that failed verification).
    InvalidPasskey,
    /// 422: a passkey name must be 1 to 64 characters, without control characters.
    InvalidPasskeyName,
}

/// The codes only the routes of sign-in through identity providers answer: the document
/// lists them only where those routes are served.
const EXTERNAL_LOGIN_CODES: &[ErrorCode] = &[
    ErrorCode::UnknownProvider,
    ErrorCode::InvalidRedirect,
    ErrorCode::InvalidCodeChallenge,
    ErrorCode::ExternalLoginFailed,
    ErrorCode::AccountExists,
    ErrorCode::ProviderEmailUnverified,
    ErrorCode::IdentityInUse,
    ErrorCode::LastSignInMethod,
    ErrorCode::ProviderUnavailable,
];

/// The codes only the passkey routes answer: listed only where those routes are served.
const PASSKEY_CODES: &[ErrorCode] = &[
    ErrorCode::PasskeyRefused,
    ErrorCode::InvalidPasskey,
    ErrorCode::InvalidPasskeyName,
];

/// The shapes the document names, each the schema of its type.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    api::UserView,
    api::TokenView,
    api::SessionView,
    api::Credentials,
    api::OAuthForm,
    api::RefreshBody,
    api::ChangePasswordBody,
    api::ForgotBody,
    api::ForgotAnswer,
    api::Health,
    api::ResetBody,
    api::TokenBody,
    api::RolesBody,
    api::InviteBody,
    api::EmailChangeBody,
    api::DeleteAccountBody,
    api::ExportView,
    api::EventView,
    api::MfaView,
    api::MfaChallengeView,
    api::MfaLoginBody,
    api::ReauthenticationBody,
    api::CodeBody,
    api::TotpSetupView,
    api::RecoveryCodesView,
    ErrorBody,
    ErrorCode,
)))]
struct Shapes;

/// The shapes of the routes of sign-in through identity providers, named only where
/// they are served.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    api::LinkBody,
    api::AuthorizationView,
    api::ExchangeBody,
    api::IdentityView,
    api::IdentitiesView,
    api::ProvidersView,
)))]
struct ExternalLoginShapes;

/// The shapes of the passkey routes, named only where they are served.
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    api::PasskeyOptionsView,
    api::PasskeyRegisterBody,
    api::PasskeyLoginBody,
    api::PasskeyChallengeBody,
    api::PasskeyMfaBody,
    api::PasskeyRenameBody,
    api::PasskeyView,
    api::PasskeysView,
)))]
struct PasskeyShapes;

/// Which [`Endpoints`](crate::Endpoints) serve a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    Always,
    WithMail,
    WithAdministration,
    /// Administration routes that send mail (an invitation).
    WithAdministrationAndMail,
    /// The email-change routes (their flows and mail).
    WithEmailChange,
    /// `DELETE /me`.
    WithAccountDeletion,
    /// `GET /me/events`.
    WithAuditLog,
    /// `GET /admin/events`.
    WithAdministrationAndAuditLog,
    /// `DELETE /admin/users/{id}`.
    WithAdministrationAndDeletion,
    WithSecondFactor,
    WithExternalLogin,
    /// The passkey routes.
    WithPasskeys,
}

/// What a route's request carries as its body.
#[derive(Debug, Clone, Copy)]
enum RequestShape {
    None,
    /// JSON of the named schema.
    Json(&'static str),
    /// JSON of the named schema, or no body at all.
    OptionalJson(&'static str),
    /// `POST /login`: OAuth2's password form, or JSON credentials.
    Login,
}

/// What a success answer carries.
#[derive(Debug, Clone, Copy)]
enum AnswerShape {
    None,
    /// JSON of the named schema.
    Json(&'static str),
    /// JSON of one of the named schemas.
    OneOf(&'static [&'static str]),
    /// A JSON array of the named schema.
    ListOf(&'static str),
    /// A JSON Web Key Set (RFC 7517 §5).
    KeySet,
    /// An OpenAPI document.
    Document,
}

/// One route of the API, as the document describes it.
struct Route {
    method: HttpMethod,
    path: &'static str,
    operation_id: &'static str,
    summary: &'static str,
    served: Served,
    /// Needs `Authorization: Bearer <access token>`.
    bearer: bool,
    request: RequestShape,
    success: u16,
    answer: AnswerShape,
    /// Headers of the success answer beyond the content type.
    success_headers: &'static [(&'static str, &'static str)],
    /// The refusals of the route's own flow; those of every route, of a body and of a
    /// bearer token are added by [`Route::error_statuses`].
    refusals: &'static [u16],
}

/// Headers of a token answer.
const NOT_CACHED: &[(&str, &str)] = &[
    ("Cache-Control", "`no-store`: a token answer is never cached."),
    ("Pragma", "`no-cache`, for HTTP/1.0 caches."),
];

/// Headers of every answer of `GET /oauth/{provider}/start` and `/callback`.
const REDIRECT_NOT_CACHED: &[(&str, &str)] = &[
    (
        "Cache-Control",
        "`no-store`: the URL or the `Location` carries a state or a code.",
    ),
    (
        "Referrer-Policy",
        "`no-referrer`: the URL or the `Location` carries a state or a code.",
    ),
];

/// Headers of every answer of `GET /oauth/{provider}/callback`.
const CALLBACK_HEADERS: &[(&str, &str)] = &[
    (
        "Cache-Control",
        "`no-store`: the URL or the `Location` carries a state or a code.",
    ),
    (
        "Referrer-Policy",
        "`no-referrer`: the URL or the `Location` carries a state or a code.",
    ),
    (
        "Set-Cookie",
        "Deletes the binding cookie (`Max-Age=0`): a flow is finished, or refused, once.",
    ),
];

/// Every route of the API.
const ROUTES: &[Route] = &[
    Route {
        method: HttpMethod::Post,
        path: "/register",
        operation_id: "register",
        summary: "Creates an account",
        served: Served::Always,
        bearer: false,
        request: RequestShape::Json("Credentials"),
        success: 201,
        answer: AnswerShape::Json("UserView"),
        success_headers: &[],
        refusals: &[409, 422, 429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/login",
        operation_id: "login",
        summary: "Logs in: OAuth2's password form or JSON credentials, answered with a token pair, or with a challenge for `POST /login/mfa` when the account has two-factor authentication",
        served: Served::Always,
        bearer: false,
        request: RequestShape::Login,
        success: 200,
        answer: AnswerShape::OneOf(&["TokenView", "MfaChallengeView"]),
        success_headers: NOT_CACHED,
        refusals: &[401, 403, 429],
    },
    Route {
        method: HttpMethod::Get,
        path: "/me",
        operation_id: "me",
        summary: "The account of the access token",
        served: Served::Always,
        bearer: true,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::Json("UserView"),
        success_headers: &[],
        refusals: &[],
    },
    Route {
        method: HttpMethod::Post,
        path: "/token/refresh",
        operation_id: "refresh",
        summary: "Rotates a refresh token: a new token pair; a reused one ends its session",
        served: Served::Always,
        bearer: false,
        request: RequestShape::Json("RefreshBody"),
        success: 200,
        answer: AnswerShape::Json("TokenView"),
        success_headers: NOT_CACHED,
        refusals: &[401, 403],
    },
    Route {
        method: HttpMethod::Post,
        path: "/logout",
        operation_id: "logout",
        summary: "Ends the refresh token's session (an unknown token too: 204)",
        served: Served::Always,
        bearer: false,
        request: RequestShape::Json("RefreshBody"),
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[],
    },
    Route {
        method: HttpMethod::Post,
        path: "/logout/all",
        operation_id: "logout_all",
        summary: "Ends every session of the account",
        served: Served::Always,
        bearer: true,
        request: RequestShape::None,
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[],
    },
    Route {
        method: HttpMethod::Get,
        path: "/sessions",
        operation_id: "sessions",
        summary: "The account's live sessions, the request's own marked `current`",
        served: Served::Always,
        bearer: true,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::ListOf("SessionView"),
        success_headers: &[],
        refusals: &[],
    },
    Route {
        method: HttpMethod::Delete,
        path: "/sessions/{id}",
        operation_id: "revoke_session",
        summary: "Ends one of the account's sessions",
        served: Served::Always,
        bearer: true,
        request: RequestShape::None,
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[404],
    },
    Route {
        method: HttpMethod::Post,
        path: "/password/change",
        operation_id: "change_password",
        summary: "Changes the password and ends every session",
        served: Served::Always,
        bearer: true,
        request: RequestShape::Json("ChangePasswordBody"),
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[400, 409, 422, 429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/login/mfa",
        operation_id: "login_mfa",
        summary: "Completes a login that asked for a second factor: the challenge and a TOTP code or a recovery code, answered with a token pair",
        served: Served::WithSecondFactor,
        bearer: false,
        request: RequestShape::Json("MfaLoginBody"),
        success: 200,
        answer: AnswerShape::Json("TokenView"),
        success_headers: NOT_CACHED,
        refusals: &[401, 403, 429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/mfa/totp/setup",
        operation_id: "totp_setup",
        summary: "Begins enrolling an authenticator app: a TOTP secret, its otpauth:// URI and a QR code of it",
        served: Served::WithSecondFactor,
        bearer: true,
        request: RequestShape::Json("ReauthenticationBody"),
        success: 200,
        answer: AnswerShape::Json("TotpSetupView"),
        success_headers: NOT_CACHED,
        refusals: &[409, 429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/mfa/totp/confirm",
        operation_id: "totp_confirm",
        summary: "Confirms the enrolment with a current code: login now asks for one; ten recovery codes, shown once",
        served: Served::WithSecondFactor,
        bearer: true,
        request: RequestShape::Json("CodeBody"),
        success: 200,
        answer: AnswerShape::Json("RecoveryCodesView"),
        success_headers: NOT_CACHED,
        refusals: &[409, 429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/mfa/totp/disable",
        operation_id: "totp_disable",
        summary: "Turns two-factor authentication off, with the password and a code or a recovery code",
        served: Served::WithSecondFactor,
        bearer: true,
        request: RequestShape::Json("ReauthenticationBody"),
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[409, 429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/mfa/recovery-codes",
        operation_id: "regenerate_recovery_codes",
        summary: "Replaces the recovery codes with ten new ones, shown once (a recent sign-in, or a code)",
        served: Served::WithSecondFactor,
        bearer: true,
        request: RequestShape::Json("ReauthenticationBody"),
        success: 200,
        answer: AnswerShape::Json("RecoveryCodesView"),
        success_headers: NOT_CACHED,
        refusals: &[409, 429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/password/forgot",
        operation_id: "forgot_password",
        summary: "Mails a reset link if an account has the address; the same answer either way",
        served: Served::WithMail,
        bearer: false,
        request: RequestShape::Json("ForgotBody"),
        success: 202,
        answer: AnswerShape::Json("ForgotAnswer"),
        success_headers: &[],
        refusals: &[429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/password/reset",
        operation_id: "reset_password",
        summary: "Sets a new password with a mailed reset token",
        served: Served::WithMail,
        bearer: false,
        request: RequestShape::Json("ResetBody"),
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[("Referrer-Policy", "`no-referrer`: the link carried a token.")],
        refusals: &[409, 422, 429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/email/verification",
        operation_id: "request_verification",
        summary: "Mails a link confirming the account's address, unless it is confirmed",
        served: Served::WithMail,
        bearer: true,
        request: RequestShape::None,
        success: 202,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[],
    },
    Route {
        method: HttpMethod::Post,
        path: "/email/verify",
        operation_id: "verify_email",
        summary: "Confirms the address with a mailed verification token",
        served: Served::WithMail,
        bearer: false,
        request: RequestShape::Json("TokenBody"),
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[429],
    },
    Route {
        method: HttpMethod::Get,
        path: "/me/export",
        operation_id: "export_me",
        summary: "Everything stored about the account (profile, sessions, linked providers, second factor's state; no secret), as a download",
        served: Served::Always,
        bearer: true,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::Json("ExportView"),
        success_headers: &[
            ("Cache-Control", "`no-store`."),
            ("Content-Disposition", "`attachment; filename=\"account.json\"`."),
        ],
        refusals: &[429],
    },
    Route {
        method: HttpMethod::Get,
        path: "/me/events",
        operation_id: "my_events",
        summary: "The account's own records of the audit log (sign-ins, refusals, changes), oldest first, paged by `after`",
        served: Served::WithAuditLog,
        bearer: true,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::ListOf("EventView"),
        success_headers: &[],
        refusals: &[],
    },
    Route {
        method: HttpMethod::Delete,
        path: "/me",
        operation_id: "delete_me",
        summary: "Deletes the account and everything stored about it (the password, or a recent sign-in; the step-up for two-factor accounts)",
        served: Served::WithAccountDeletion,
        bearer: true,
        request: RequestShape::Json("DeleteAccountBody"),
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/email/change",
        operation_id: "request_email_change",
        summary: "Asks to change the address: a confirmation link to the new one, a notice with an undo link to the old one",
        served: Served::WithEmailChange,
        bearer: true,
        request: RequestShape::Json("EmailChangeBody"),
        success: 202,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[409, 422, 429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/email/change/confirm",
        operation_id: "confirm_email_change",
        summary: "Switches to the new address with its mailed confirmation token; other sessions end",
        served: Served::WithEmailChange,
        bearer: false,
        request: RequestShape::Json("TokenBody"),
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[("Referrer-Policy", "`no-referrer`: the link carried a token.")],
        refusals: &[403, 409, 429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/email/change/undo",
        operation_id: "undo_email_change",
        summary: "Restores the old address with the undo token mailed to it (7 days); every session ends",
        served: Served::WithEmailChange,
        bearer: false,
        request: RequestShape::Json("TokenBody"),
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[("Referrer-Policy", "`no-referrer`: the link carried a token.")],
        refusals: &[409, 429],
    },
    Route {
        method: HttpMethod::Get,
        path: "/admin/users",
        operation_id: "list_users",
        summary: "A page of accounts in registration order (role `admin`)",
        served: Served::WithAdministration,
        bearer: true,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::ListOf("UserView"),
        success_headers: &[],
        refusals: &[403],
    },
    Route {
        method: HttpMethod::Post,
        path: "/admin/users",
        operation_id: "invite_user",
        summary: "Creates an account without a password and mails it a set-password link, working 7 days (role `admin`)",
        served: Served::WithAdministrationAndMail,
        bearer: true,
        request: RequestShape::Json("InviteBody"),
        success: 201,
        answer: AnswerShape::Json("UserView"),
        success_headers: &[],
        refusals: &[403, 409, 422],
    },
    Route {
        method: HttpMethod::Post,
        path: "/admin/users/{id}/disable",
        operation_id: "disable_user",
        summary: "Disables an account and ends its sessions (role `admin`)",
        served: Served::WithAdministration,
        bearer: true,
        request: RequestShape::None,
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[403, 404],
    },
    Route {
        method: HttpMethod::Post,
        path: "/admin/users/{id}/enable",
        operation_id: "enable_user",
        summary: "Enables an account (role `admin`)",
        served: Served::WithAdministration,
        bearer: true,
        request: RequestShape::None,
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[403, 404],
    },
    Route {
        method: HttpMethod::Get,
        path: "/admin/events",
        operation_id: "list_events",
        summary: "Records of the audit log, by account and kind, oldest first, paged by `after` (role `admin`)",
        served: Served::WithAdministrationAndAuditLog,
        bearer: true,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::ListOf("EventView"),
        success_headers: &[],
        refusals: &[403],
    },
    Route {
        method: HttpMethod::Delete,
        path: "/admin/users/{id}",
        operation_id: "delete_user",
        summary: "Deletes an account and everything stored about it (role `admin`)",
        served: Served::WithAdministrationAndDeletion,
        bearer: true,
        request: RequestShape::None,
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[403, 404],
    },
    Route {
        method: HttpMethod::Get,
        path: "/admin/users/{id}/sessions",
        operation_id: "user_sessions",
        summary: "An account's live sessions (role `admin`)",
        served: Served::WithAdministration,
        bearer: true,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::ListOf("SessionView"),
        success_headers: &[],
        refusals: &[403, 404],
    },
    Route {
        method: HttpMethod::Delete,
        path: "/admin/users/{id}/sessions",
        operation_id: "end_user_sessions",
        summary: "Ends every session of an account and revokes its access tokens (role `admin`)",
        served: Served::WithAdministration,
        bearer: true,
        request: RequestShape::None,
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[403, 404],
    },
    Route {
        method: HttpMethod::Put,
        path: "/admin/users/{id}/roles",
        operation_id: "set_roles",
        summary: "Replaces an account's roles (role `admin`)",
        served: Served::WithAdministration,
        bearer: true,
        request: RequestShape::Json("RolesBody"),
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[403, 404, 422],
    },
    Route {
        method: HttpMethod::Get,
        path: "/oauth/providers",
        operation_id: "oauth_providers",
        summary: "The names of the identity providers one can sign in with",
        served: Served::WithExternalLogin,
        bearer: false,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::Json("ProvidersView"),
        success_headers: &[],
        refusals: &[],
    },
    Route {
        method: HttpMethod::Get,
        path: "/oauth/{provider}/start",
        operation_id: "oauth_start",
        summary: "Begins a sign-in through an identity provider: redirects the browser to the provider, with a cookie binding the flow to it",
        served: Served::WithExternalLogin,
        bearer: false,
        request: RequestShape::None,
        success: 303,
        answer: AnswerShape::None,
        success_headers: &[
            ("Location", "The provider's authorization URL."),
            (
                "Set-Cookie",
                "The binding cookie, which the callback needs: `__Host-auth_oauth` (`Secure`) on an HTTPS site, else `auth_oauth`; `HttpOnly; SameSite=Lax; Path=/; Max-Age=600`.",
            ),
            (
                "Cache-Control",
                "`no-store`: the URL or the `Location` carries a state or a code.",
            ),
            (
                "Referrer-Policy",
                "`no-referrer`: the URL or the `Location` carries a state or a code.",
            ),
        ],
        refusals: &[400, 404, 429],
    },
    Route {
        method: HttpMethod::Get,
        path: "/oauth/{provider}/callback",
        operation_id: "oauth_callback",
        summary: "The provider's redirect back: redirects to `next` with `code=` (a sign-in, for `POST /oauth/exchange`), `linked=` (a link) or `error=` (a refusal once the flow is known)",
        served: Served::WithExternalLogin,
        bearer: false,
        request: RequestShape::None,
        success: 303,
        answer: AnswerShape::None,
        success_headers: &[
            (
                "Location",
                "`next` with `code=<one-time code>`, `linked=<provider>` or `error=<error code>`.",
            ),
            (
                "Set-Cookie",
                "Deletes the binding cookie (`Max-Age=0`): a flow is finished, or refused, once.",
            ),
            (
                "Cache-Control",
                "`no-store`: the URL or the `Location` carries a state or a code.",
            ),
            (
                "Referrer-Policy",
                "`no-referrer`: the URL or the `Location` carries a state or a code.",
            ),
        ],
        refusals: &[400, 404],
    },
    Route {
        method: HttpMethod::Post,
        path: "/oauth/{provider}/link",
        operation_id: "oauth_link",
        summary: "Begins linking an identity provider to the account (a recent sign-in needed): the URL to send the browser to, and a cookie binding the flow to it",
        served: Served::WithExternalLogin,
        bearer: true,
        request: RequestShape::OptionalJson("LinkBody"),
        success: 200,
        answer: AnswerShape::Json("AuthorizationView"),
        success_headers: &[(
            "Set-Cookie",
            "The binding cookie, which the callback needs: `__Host-auth_oauth` (`Secure`) on an HTTPS site, else `auth_oauth`; `HttpOnly; SameSite=Lax; Path=/; Max-Age=600`.",
        )],
        refusals: &[400, 404, 429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/oauth/exchange",
        operation_id: "oauth_exchange",
        summary: "Trades the one-time code of a sign-in through a provider, once, within 60 seconds: a token pair, or a challenge for `POST /login/mfa` when the account has two-factor authentication",
        served: Served::WithExternalLogin,
        bearer: false,
        request: RequestShape::Json("ExchangeBody"),
        success: 200,
        answer: AnswerShape::OneOf(&["TokenView", "MfaChallengeView"]),
        success_headers: NOT_CACHED,
        refusals: &[400, 403, 429],
    },
    Route {
        method: HttpMethod::Get,
        path: "/me/identities",
        operation_id: "identities",
        summary: "The identities linked to the account, oldest first",
        served: Served::WithExternalLogin,
        bearer: true,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::Json("IdentitiesView"),
        success_headers: &[],
        refusals: &[],
    },
    Route {
        method: HttpMethod::Delete,
        path: "/me/identities/{id}",
        operation_id: "unlink_identity",
        summary: "Unlinks an identity from the account (a recent sign-in needed), unless it is its last way to sign in",
        served: Served::WithExternalLogin,
        bearer: true,
        request: RequestShape::None,
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[404, 409],
    },
    Route {
        method: HttpMethod::Post,
        path: "/passkeys/register/start",
        operation_id: "passkey_register_start",
        summary: "Begins registering a passkey to the account (a recent sign-in needed): creation options for `navigator.credentials.create()` and the ceremony's token (5 minutes, once)",
        served: Served::WithPasskeys,
        bearer: true,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::Json("PasskeyOptionsView"),
        success_headers: NOT_CACHED,
        refusals: &[429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/passkeys/register/finish",
        operation_id: "passkey_register_finish",
        summary: "Verifies the browser's new credential against the ceremony and registers the passkey (a notice mailed)",
        served: Served::WithPasskeys,
        bearer: true,
        request: RequestShape::Json("PasskeyRegisterBody"),
        success: 201,
        answer: AnswerShape::Json("PasskeyView"),
        success_headers: &[],
        refusals: &[409, 422],
    },
    Route {
        method: HttpMethod::Post,
        path: "/passkeys/login/start",
        operation_id: "passkey_login_start",
        summary: "Begins a passkey sign-in, no account named: request options for `navigator.credentials.get()` and the ceremony's token (5 minutes, once)",
        served: Served::WithPasskeys,
        bearer: false,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::Json("PasskeyOptionsView"),
        success_headers: NOT_CACHED,
        refusals: &[429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/passkeys/login/finish",
        operation_id: "passkey_login_finish",
        summary: "Verifies the browser's assertion against the ceremony and the passkey it names: a token pair, `amr` saying `hwk` or `swk` and `mfa`",
        served: Served::WithPasskeys,
        bearer: false,
        request: RequestShape::Json("PasskeyLoginBody"),
        success: 200,
        answer: AnswerShape::Json("TokenView"),
        success_headers: NOT_CACHED,
        refusals: &[401, 403, 429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/login/mfa/passkey/start",
        operation_id: "passkey_mfa_start",
        summary: "Begins completing a login challenge with a passkey: request options naming the account's passkeys",
        served: Served::WithPasskeys,
        bearer: false,
        request: RequestShape::Json("PasskeyChallengeBody"),
        success: 200,
        answer: AnswerShape::Json("PasskeyOptionsView"),
        success_headers: NOT_CACHED,
        refusals: &[401, 403, 429],
    },
    Route {
        method: HttpMethod::Post,
        path: "/login/mfa/passkey/finish",
        operation_id: "passkey_mfa_finish",
        summary: "Completes a login challenge with a passkey's assertion: a token pair",
        served: Served::WithPasskeys,
        bearer: false,
        request: RequestShape::Json("PasskeyMfaBody"),
        success: 200,
        answer: AnswerShape::Json("TokenView"),
        success_headers: NOT_CACHED,
        refusals: &[401, 403, 429],
    },
    Route {
        method: HttpMethod::Get,
        path: "/me/passkeys",
        operation_id: "passkeys",
        summary: "The account's passkeys, oldest first",
        served: Served::WithPasskeys,
        bearer: true,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::Json("PasskeysView"),
        success_headers: &[],
        refusals: &[],
    },
    Route {
        method: HttpMethod::Patch,
        path: "/me/passkeys/{id}",
        operation_id: "rename_passkey",
        summary: "Renames one of the account's passkeys",
        served: Served::WithPasskeys,
        bearer: true,
        request: RequestShape::Json("PasskeyRenameBody"),
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[404, 422],
    },
    Route {
        method: HttpMethod::Delete,
        path: "/me/passkeys/{id}",
        operation_id: "delete_passkey",
        summary: "Removes one of the account's passkeys (a recent sign-in needed), unless it is its last way to sign in (a notice mailed)",
        served: Served::WithPasskeys,
        bearer: true,
        request: RequestShape::None,
        success: 204,
        answer: AnswerShape::None,
        success_headers: &[],
        refusals: &[404, 409],
    },
    Route {
        method: HttpMethod::Get,
        path: "/.well-known/jwks.json",
        operation_id: "jwks",
        summary: "The public keys that verify access tokens (none for an HS256 secret)",
        served: Served::Always,
        bearer: false,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::KeySet,
        success_headers: &[],
        refusals: &[],
    },
    Route {
        method: HttpMethod::Get,
        path: "/health",
        operation_id: "health",
        summary: "Whether the store answers",
        served: Served::Always,
        bearer: false,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::Json("Health"),
        success_headers: &[],
        refusals: &[],
    },
    Route {
        method: HttpMethod::Get,
        path: "/openapi.json",
        operation_id: "openapi",
        summary: "This document",
        served: Served::Always,
        bearer: false,
        request: RequestShape::None,
        success: 200,
        answer: AnswerShape::Document,
        success_headers: &[],
        refusals: &[],
    },
];

impl Route {
    /// Every error status the route answers, in order.
    fn error_statuses(&self) -> Vec<u16> {
        // Any request: a malformed one (no `Host`) is 400, an overlong URI 414, too many
        // or too large header fields 431, a saturated server or an unreachable store 503.
        let mut statuses = vec![400, 414, 431, 503];
        if !matches!(self.request, RequestShape::None) {
            statuses.extend([408, 413, 415]);
        }
        if self.bearer {
            // A missing or refused token; a disabled account.
            statuses.extend([401, 403]);
        }
        statuses.extend(self.refusals);
        statuses.sort_unstable();
        statuses.dedup();
        statuses
    }

    fn operation(&self) -> utoipa::openapi::path::Operation {
        let mut responses = ResponsesBuilder::new().response(self.success.to_string(), self.success_response());
        let external = self.served == Served::WithExternalLogin;
        // Headers every answer of the route carries, errors included.
        let error_headers = match self.operation_id {
            "oauth_start" => REDIRECT_NOT_CACHED,
            "oauth_callback" => CALLBACK_HEADERS,
            _ => &[],
        };
        for status in self.error_statuses() {
            responses = responses.response(status.to_string(), error_response(status, external, error_headers));
        }
        let mut operation = OperationBuilder::new()
            .operation_id(Some(self.operation_id))
            .summary(Some(self.summary))
            .responses(responses.build());
        if self.bearer {
            operation = operation.security(SecurityRequirement::new(BEARER, Vec::<String>::new()));
        }
        if self.path.contains("{id}") {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name("id")
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .description(Some("The id; one that does not parse names nothing (404)."))
                    .schema(Some(Schema::from(ObjectBuilder::new().schema_type(Type::String)))),
            );
        }
        if self.path.contains("{provider}") {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name("provider")
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .description(Some(
                        "The identity provider's name (`GET /oauth/providers`); another is 404 `unknown_provider`.",
                    ))
                    .schema(Some(Schema::from(ObjectBuilder::new().schema_type(Type::String)))),
            );
        }
        if self.operation_id == "oauth_start" {
            operation = operation.parameter(query(
                "next",
                "Where the callback leads afterwards: a path on this site (default `/`); anything else is 400 `invalid_redirect`.",
                ObjectBuilder::new().schema_type(Type::String),
            ));
            operation = operation.parameter(query(
                "code_challenge",
                "A native app's PKCE challenge, `BASE64URL(SHA-256(code_verifier))` (43 characters): the one-time code is then traded with `code_verifier` instead of the binding cookie.",
                ObjectBuilder::new().schema_type(Type::String),
            ));
            operation = operation.parameter(query(
                "code_challenge_method",
                "`S256`, required with `code_challenge` (`plain` is refused: 400 `invalid_code_challenge`).",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["S256"])),
            ));
        }
        if self.operation_id == "oauth_callback" {
            for (name, description) in [
                ("state", "The flow, as the provider returns it."),
                ("code", "The provider's authorization code."),
                ("error", "The provider's refusal (`access_denied`, say)."),
            ] {
                operation =
                    operation.parameter(query(name, description, ObjectBuilder::new().schema_type(Type::String)));
            }
        }
        if matches!(self.operation_id, "my_events" | "list_events") {
            operation = paged(
                operation,
                "List the records after this one (the last of the previous page).",
                "At most this many (default 100, at most 1000).",
            );
        }
        if self.operation_id == "list_events" {
            operation = operation
                .parameter(query(
                    "user",
                    "Only this account's records.",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(utoipa::openapi::SchemaFormat::Custom("uuid".to_owned()))),
                ))
                .parameter(query(
                    "kind",
                    "Only records of this kind (`login_failed`, `access_denied`, ...).",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(64)),
                ));
        }
        if self.operation_id == "list_users" {
            operation = paged(
                operation,
                "List the accounts registered after this one.",
                "At most this many (default 100; the service caps it).",
            )
            .parameter(query(
                "email",
                "Only the accounts whose email starts with this prefix (case-insensitive; 1 to 320 bytes).",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(320)),
            ));
        }
        match self.request {
            RequestShape::None => {}
            RequestShape::Json(name) => {
                operation = operation.request_body(Some(
                    RequestBodyBuilder::new()
                        .required(Some(Required::True))
                        .content("application/json", json_content(schema_ref(name)))
                        .build(),
                ));
            }
            RequestShape::OptionalJson(name) => {
                operation = operation.request_body(Some(
                    RequestBodyBuilder::new()
                        .required(Some(Required::False))
                        .description(Some("JSON, or no body at all for the defaults."))
                        .content("application/json", json_content(schema_ref(name)))
                        .build(),
                ));
            }
            RequestShape::Login => {
                operation = operation.request_body(Some(
                    RequestBodyBuilder::new()
                        .required(Some(Required::True))
                        .description(Some("OAuth2's password grant form (RFC 6749 §4.3), or JSON."))
                        .content(
                            "application/x-www-form-urlencoded",
                            json_content(schema_ref("OAuthForm")),
                        )
                        .content("application/json", json_content(schema_ref("Credentials")))
                        .build(),
                ));
            }
        }
        operation.build()
    }

    fn success_response(&self) -> utoipa::openapi::Response {
        let mut response = ResponseBuilder::new().description(self.summary);
        let schema: Option<RefOr<Schema>> = match self.answer {
            AnswerShape::None => None,
            AnswerShape::Json(name) => Some(schema_ref(name)),
            AnswerShape::OneOf(names) => Some(
                names
                    .iter()
                    .fold(utoipa::openapi::schema::OneOfBuilder::new(), |one_of, name| {
                        one_of.item(schema_ref(name))
                    })
                    .into(),
            ),
            AnswerShape::ListOf(name) => Some(ArrayBuilder::new().items(schema_ref(name)).into()),
            AnswerShape::KeySet => Some(key_set().into()),
            AnswerShape::Document => Some(ObjectBuilder::new().required("openapi").required("paths").into()),
        };
        if let Some(schema) = schema {
            response = response.content("application/json", json_content(schema));
        }
        for (name, description) in self.success_headers {
            response = response.header(*name, string_header(description));
        }
        if self.bearer {
            response = response.header(
                "Cache-Control",
                string_header("`no-store`: the request carried credentials."),
            );
        }
        response.build()
    }
}

/// The name of the bearer security scheme.
const BEARER: &str = "bearer";

fn schema_ref(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn json_content(schema: RefOr<Schema>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

fn string_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

fn query(name: &str, description: &str, schema: ObjectBuilder) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(Schema::from(schema)))
        .build()
}

/// A JSON Web Key Set: `{"keys": [{"kty": .., ..}]}` (RFC 7517 §5); each key's members
/// depend on its type.
fn key_set() -> ObjectBuilder {
    let key = ObjectBuilder::new()
        .property("kty", ObjectBuilder::new().schema_type(Type::String))
        .required("kty");
    ObjectBuilder::new()
        .property("keys", ArrayBuilder::new().items(key))
        .required("keys")
}

/// The error answer of `status`: an [`ErrorBody`], with the headers that status carries
/// and `headers` (those every answer of the route carries); for a route of sign-in
/// through identity providers (`external`), with its own codes.
fn error_response(status: u16, external: bool, headers: &[(&str, &str)]) -> utoipa::openapi::Response {
    let external_description = match status {
        400 if external => Some(
            "`invalid_request`: the request, body or query does not parse; `invalid_redirect`: `next` is not a path on this site; `invalid_code_challenge`: a native app's `code_challenge` is not an `S256` challenge; `external_login_failed`: the sign-in through the provider failed or expired (an unknown, spent, expired or another browser's state, or exchange code); start again.",
        ),
        404 if external => {
            Some("`unknown_provider`: no identity provider of that name; `not_found`: no such identity on the account.")
        }
        409 if external => Some("`last_sign_in_method`: the identity is the account's last way to sign in."),
        503 if external => Some(
            "`provider_unavailable` (the identity provider cannot be reached), `busy` or `unavailable`, with `Retry-After`.",
        ),
        _ => None,
    };
    let description = external_description.unwrap_or(match status {
        400 => {
            "`invalid_request`: the request, body or query does not parse; `invalid_token`: a mailed token is not valid; `invalid_code`: a wrong code when confirming or disabling two-factor authentication."
        }
        401 => {
            "`invalid_token`, `invalid_credentials`, `invalid_code` (`POST /login/mfa`) or `insufficient_user_authentication` (a recent sign-in or the second factor is needed)."
        }
        403 => "`account_disabled`, `email_not_verified`, `mfa_required` or `forbidden` (a role is missing).",
        404 => "`not_found`: no such account or session.",
        408 => "`request_timeout`: the body did not arrive in time; the connection is closed.",
        409 => "`email_taken`, `already_enrolled`, `not_enrolled`, or `conflict`: the account changed meanwhile.",
        413 => "`payload_too_large`.",
        414 => "`uri_too_long`.",
        431 => "`header_fields_too_large`.",
        415 => "`unsupported_media_type`.",
        422 => "`invalid_email`, `weak_password` or `too_many_roles`.",
        429 => "`rate_limited` (with `Retry-After`), or `account_locked` (only a password reset unlocks).",
        503 => "`busy` or `unavailable`, with `Retry-After`.",
        _ => "An error.",
    });
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", json_content(schema_ref("ErrorBody")));
    for (name, description) in headers {
        response = response.header(*name, string_header(description));
    }
    if status == 401 {
        response = response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(
                    "`Bearer` (RFC 9110 §15.5.2); for `insufficient_user_authentication`, with `error` and `max_age` (RFC 9470).",
                ))
                .build(),
        );
    }
    if matches!(status, 429 | 503) {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
                .description(Some("Seconds to wait before retrying, when waiting helps."))
                .build(),
        );
    }
    response.build()
}

/// The document of the routes `served` keeps, at `prefix` (empty: at the root).
pub(crate) fn document(served: impl Fn(Served) -> bool, prefix: &str) -> OpenApi {
    let mut document = Shapes::openapi();
    document.info = InfoBuilder::new()
        .title("auth-http")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Accounts, logins and sessions over HTTP. Every error answer is an `ErrorBody`.",
        ))
        .build();
    for route in ROUTES.iter().filter(|route| served(route.served)) {
        document
            .paths
            .add_path_operation(route.path, vec![route.method.clone()], route.operation());
    }
    if served(Served::WithExternalLogin) {
        document.merge(ExternalLoginShapes::openapi());
    } else {
        without_codes(&mut document, EXTERNAL_LOGIN_CODES);
    }
    if served(Served::WithPasskeys) {
        document.merge(PasskeyShapes::openapi());
    } else {
        without_codes(&mut document, PASSKEY_CODES);
    }
    if let Some(components) = document.components.as_mut() {
        let scheme = SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        );
        components.add_security_scheme(BEARER, scheme);
    }
    if !prefix.is_empty() {
        document.servers = Some(vec![Server::new(prefix)]);
    }
    document
}

/// Removes `codes` from the document's [`ErrorCode`] schema: codes no route served
/// answers.
fn without_codes(document: &mut OpenApi, codes: &[ErrorCode]) {
    let names: Vec<serde_json::Value> = codes
        .iter()
        .filter_map(|code| serde_json::to_value(code).ok())
        .collect();
    let schema = document
        .components
        .as_mut()
        .and_then(|components| components.schemas.get_mut("ErrorCode"));
    if let Some(RefOr::T(Schema::Object(object))) = schema
        && let Some(values) = object.enum_values.as_mut()
    {
        values.retain(|value| !names.contains(value));
    }
}

/// `operation` with the `after` (an id) and `limit` query parameters of a paged list.
fn paged(
    operation: utoipa::openapi::path::OperationBuilder,
    after: &str,
    limit: &str,
) -> utoipa::openapi::path::OperationBuilder {
    operation
        .parameter(query(
            "after",
            after,
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::Custom("uuid".to_owned()))),
        ))
        .parameter(query(
            "limit",
            limit,
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .maximum(Some(u32::MAX)),
        ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use auth_core::{AuthError, EmailError, PolicyViolation, StoreError, TokenError};

    use super::*;
    use crate::ErrorAnswer;

    fn full() -> serde_json::Value {
        serde_json::to_value(document(|_| true, "")).unwrap()
    }

    #[test]
    fn every_reference_names_a_schema_of_the_document() {
        let document = full();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        let text = document.to_string();
        let references: Vec<&str> = text.split("\"$ref\":\"#/components/schemas/").skip(1).collect();
        assert!(references.len() > 20);
        for reference in references {
            let name = reference.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "{name} is referenced and not defined");
        }
    }

    #[test]
    fn it_is_openapi_3_1_with_a_bearer_scheme() {
        let document = full();
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert_eq!(
            document["paths"]["/me"]["get"]["security"][0]["bearer"],
            serde_json::json!([])
        );
        let login = &document["paths"]["/login"]["post"]["requestBody"]["content"];
        assert!(login["application/x-www-form-urlencoded"].is_object() && login["application/json"].is_object());
    }

    #[test]
    fn only_the_routes_served_are_documented_at_the_prefix_given() {
        let plain = serde_json::to_value(document(|served| served == Served::Always, "/auth")).unwrap();
        let paths = plain["paths"].as_object().unwrap();
        assert!(paths.contains_key("/login") && paths.contains_key("/openapi.json"));
        assert!(!paths.contains_key("/password/forgot") && !paths.contains_key("/admin/users"));
        assert_eq!(plain["servers"][0]["url"], "/auth");
    }

    #[test]
    fn the_external_login_routes_codes_and_shapes_are_there_only_where_served() {
        let codes = |document: &serde_json::Value| document["components"]["schemas"]["ErrorCode"]["enum"].clone();
        let without = serde_json::to_value(document(|served| served != Served::WithExternalLogin, "")).unwrap();
        let with = full();
        for code in EXTERNAL_LOGIN_CODES {
            let code = serde_json::to_value(code).unwrap();
            assert!(!codes(&without).as_array().unwrap().contains(&code), "{code}");
            assert!(codes(&with).as_array().unwrap().contains(&code), "{code}");
        }
        for path in [
            "/oauth/{provider}/start",
            "/oauth/{provider}/callback",
            "/oauth/exchange",
            "/me/identities",
        ] {
            assert!(
                without["paths"].get(path).is_none() && with["paths"].get(path).is_some(),
                "{path}"
            );
        }
        for schema in [
            "IdentitiesView",
            "ProvidersView",
            "ExchangeBody",
            "LinkBody",
            "AuthorizationView",
        ] {
            assert!(without["components"]["schemas"].get(schema).is_none(), "{schema}");
            assert!(with["components"]["schemas"].get(schema).is_some(), "{schema}");
        }
        assert_eq!(with["info"], without["info"]);
        let callback = &with["paths"]["/oauth/{provider}/callback"]["get"];
        assert!(callback["responses"]["303"]["headers"]["Location"].is_object());
        assert!(callback["responses"]["400"]["headers"]["Set-Cookie"].is_object());
        let parameters: Vec<&str> = callback["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|parameter| parameter["name"].as_str().unwrap())
            .collect();
        assert_eq!(parameters, ["provider", "state", "code", "error"]);
    }

    #[test]
    fn every_error_code_the_api_answers_is_in_the_enum() {
        let errors = [
            AuthError::InvalidEmail(EmailError::Empty),
            AuthError::WeakPassword(PolicyViolation::TooShort { min: 8 }),
            AuthError::Forbidden { role: "admin".into() },
            AuthError::TooManyRoles { max: 8 },
            AuthError::InvalidCredentials,
            AuthError::AccountDisabled,
            AuthError::EmailNotVerified,
            AuthError::SecondFactorRequired,
            AuthError::EmailTaken,
            AuthError::InvalidToken(TokenError::Malformed),
            AuthError::InvalidOneTimeToken(TokenError::Malformed),
            AuthError::UserNotFound,
            AuthError::SessionNotFound,
            AuthError::Conflict,
            AuthError::RateLimited {
                retry_after: Duration::from_secs(1),
            },
            AuthError::AccountLocked,
            AuthError::Busy {
                retry_after: Duration::from_secs(1),
            },
            AuthError::Unavailable(StoreError::unavailable("down")),
            AuthError::Internal("bug".into()),
            AuthError::UnknownProvider,
            AuthError::InvalidReturnPath(auth_core::ReturnPathError),
            AuthError::InvalidCodeChallenge(auth_core::CodeChallengeError),
            AuthError::ExternalLoginFailed(auth_core::ExternalLoginRefusal::UnknownState),
            AuthError::ExternalAccountExists,
            AuthError::ExternalEmailUnverified,
            AuthError::IdentityInUse,
            AuthError::LastSignInMethod,
            AuthError::IdentityNotFound,
            AuthError::ProviderUnavailable("down".into()),
            AuthError::StepUpRequired {
                max_age: Duration::from_secs(600),
            },
            AuthError::PasskeyRefused,
            AuthError::InvalidPasskey,
            AuthError::InvalidPasskeyName,
            AuthError::PasskeyNotFound,
        ];
        let answers = errors.into_iter().map(ErrorAnswer::from).chain([
            ErrorAnswer::too_many_connections(),
            ErrorAnswer::body_timeout(),
            ErrorAnswer::invalid_request("x"),
            ErrorAnswer::unsupported_media_type("application/json"),
            ErrorAnswer::payload_too_large(),
            ErrorAnswer::uri_too_long(),
            ErrorAnswer::header_fields_too_large(),
            ErrorAnswer::no_route(),
            ErrorAnswer::method_not_allowed(),
        ]);
        for answer in answers {
            let body: ErrorBody =
                serde_json::from_str(&answer.body()).unwrap_or_else(|error| panic!("{}: {error}", answer.body()));
            assert_eq!(serde_json::to_value(body.error).unwrap(), answer.code());
        }
    }
}
