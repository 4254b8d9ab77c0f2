//! The two-factor pages: the code step of a sign-in, and `/ui/mfa` (enrol an
//! authenticator app with its QR code, confirm it, see the recovery codes once, get new
//! ones, turn it off).

use auth_core::{AuthError, Caller, Password, SecondFactorCode};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use serde::Deserialize;

use super::view::{FieldErrors, FormPage, MfaPage, Notice, SetupView};
use super::{
    PageForm, Visit, begin_page_session, refused, say, status_of, to_sign_in, with_answer_headers, with_token,
};
use crate::AppState;
use auth_axum::Client;

// ---------------------------------------------------------------- the sign-in's code step

/// The page that asks for the code of the sign-in whose challenge is `challenge`.
pub(super) fn code_page(
    state: &AppState,
    headers: &HeaderMap,
    visit: &Visit,
    challenge: String,
    notice: Option<Notice>,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let page = FormPage {
        token: Some(challenge),
        notice,
        errors,
        ..FormPage::default()
    };
    super::with_csrf(state, headers, visit, status, page, "login_code.html")
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    challenge: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn login_code_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<CodeForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Enter your code");
    }
    let (code, recovery) = (form.code.filter(|c| !c.trim().is_empty()), form.recovery_code);
    let typed = match (code, recovery.filter(|c| !c.trim().is_empty())) {
        (Some(code), _) => SecondFactorCode::totp(code),
        (None, Some(recovery)) => SecondFactorCode::recovery_code(recovery),
        (None, None) => {
            let errors = FieldErrors {
                code: Some("Enter the code from your app.".to_owned()),
                ..FieldErrors::default()
            };
            return code_page(
                &state,
                &headers,
                &visit,
                form.challenge,
                None,
                errors,
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let used_recovery = matches!(typed, SecondFactorCode::RecoveryCode(_));
    match state.auth.complete_login(&form.challenge, typed, &client).await {
        Ok(success) => begin_page_session(&state, &headers, &client, &success.tokens.session, "/").await,
        Err(error) => {
            let text = match &error {
                AuthError::LoginChallengeFailed => {
                    "That code is not right, or this sign-in has expired. Try again, or start over.".to_owned()
                }
                other => say(other),
            };
            let mut errors = FieldErrors::default();
            let mut notice = None;
            if matches!(error, AuthError::LoginChallengeFailed) {
                if used_recovery {
                    errors.recovery_code = Some(text);
                } else {
                    errors.code = Some(text);
                }
            } else {
                notice = Some(Notice::error(text));
            }
            let status = status_of(&error);
            with_answer_headers(
                code_page(&state, &headers, &visit, form.challenge, notice, errors, status),
                &error,
            )
        }
    }
}

// ---------------------------------------------------------------- /ui/mfa

/// What the two-factor page says after a form sent the person back to it.
#[derive(Deserialize)]
pub(crate) struct MfaQuery {
    done: Option<String>,
}

pub(crate) async fn mfa_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Query(query): Query<MfaQuery>,
) -> Response {
    let notice = match query.done.as_deref() {
        Some("disabled") => Some(Notice::success(
            "Two-factor authentication is off. Your other devices are signed out.",
        )),
        _ => None,
    };
    status_page(&state, &headers, &visit, notice, FieldErrors::default(), StatusCode::OK).await
}

/// `/ui/mfa` as the account stands: on (codes left, new codes, turn off) or off (set up).
async fn status_page(
    state: &AppState,
    headers: &HeaderMap,
    visit: &Visit,
    notice: Option<Notice>,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    let factors = match state.auth.second_factor_status(&me.user).await {
        Ok(factors) => factors,
        Err(error) => {
            let page = |csrf| MfaPage {
                csrf,
                signed_in: true,
                notice: Some(Notice::error(say(&error))),
                ..MfaPage::default()
            };
            return with_answer_headers(
                with_token(state, headers, visit, status_of(&error), "mfa.html", page),
                &error,
            );
        }
    };
    let email = me.user.email.as_str().to_owned();
    with_token(state, headers, visit, status, "mfa.html", |csrf| MfaPage {
        csrf,
        signed_in: true,
        notice,
        errors,
        email,
        enabled: factors.totp,
        recovery_codes_left: factors.recovery_codes_left,
        ..MfaPage::default()
    })
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn setup_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<PasswordForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Two-factor authentication");
    }
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    let enrolment = state
        .auth
        .begin_totp_enrolment(&Caller::from(me), Password::new(form.password), &client)
        .await;
    match enrolment {
        Ok(enrolment) => {
            let setup = setup_view(enrolment.expose_secret(), enrolment.expose_otpauth_uri());
            setup_page(&state, &headers, &visit, setup, FieldErrors::default(), StatusCode::OK)
        }
        Err(error) => refused_on_status_page(&state, &headers, &visit, error, MfaForm::Main).await,
    }
}

/// What the setup page shows: the QR code (an SVG in a `data:` URL, which the CSP's
/// `img-src` admits), the key to type, and the URI (kept in the confirm form, so a wrong
/// code shows the same QR code again).
fn setup_view(secret: &str, uri: &str) -> SetupView {
    let qr = auth_http::qr::svg(uri)
        .map(|svg| {
            format!(
                "data:image/svg+xml;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(svg)
            )
        })
        .unwrap_or_default();
    // Groups of four, as apps show keys; spaces are ignored where it is typed.
    let grouped = secret
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    SetupView {
        qr,
        secret: secret.to_owned(),
        secret_grouped: grouped,
        uri: uri.to_owned(),
    }
}

fn setup_page(
    state: &AppState,
    headers: &HeaderMap,
    visit: &Visit,
    setup: SetupView,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    with_token(state, headers, visit, status, "mfa_setup.html", |csrf| MfaPage {
        csrf,
        signed_in: true,
        errors,
        setup: Some(setup),
        ..MfaPage::default()
    })
}

#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    uri: String,
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn confirm_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<ConfirmForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Two-factor authentication");
    }
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    match state.auth.confirm_totp(&Caller::from(me), &form.code, &client).await {
        Ok(confirmed) => {
            let codes = confirmed.recovery_codes.expose_secrets().map(str::to_owned).collect();
            codes_page(&state, &headers, &visit, codes, "Two-factor authentication is on")
        }
        Err(AuthError::InvalidCode) => {
            let errors = FieldErrors {
                code: Some("That code is not right. Enter the code your app shows now.".to_owned()),
                ..FieldErrors::default()
            };
            let setup = setup_view(&form.secret, &form.uri);
            setup_page(&state, &headers, &visit, setup, errors, StatusCode::BAD_REQUEST)
        }
        Err(error) => refused_on_status_page(&state, &headers, &visit, error, MfaForm::Main).await,
    }
}

/// The recovery codes, shown once.
fn codes_page(state: &AppState, headers: &HeaderMap, visit: &Visit, codes: Vec<String>, heading: &str) -> Response {
    let heading = heading.to_owned();
    with_token(state, headers, visit, StatusCode::OK, "mfa_codes.html", |csrf| {
        MfaPage {
            csrf,
            signed_in: true,
            enabled: true,
            notice: Some(Notice::success(heading)),
            recovery_codes: codes,
            ..MfaPage::default()
        }
    })
}

pub(crate) async fn recovery_codes_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<PasswordForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Two-factor authentication");
    }
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    let mut caller = Caller::from(me);
    if let Some(code) = form.code.filter(|code| !code.trim().is_empty()) {
        caller = caller.with_second_factor(SecondFactorCode::typed(&code));
    }
    match state
        .auth
        .regenerate_recovery_codes(&caller, Password::new(form.password), &client)
        .await
    {
        Ok(fresh) => {
            let codes = fresh.recovery_codes.expose_secrets().map(str::to_owned).collect();
            codes_page(
                &state,
                &headers,
                &visit,
                codes,
                "New recovery codes: the old ones no longer work",
            )
        }
        Err(error) => refused_on_status_page(&state, &headers, &visit, error, MfaForm::Main).await,
    }
}

/// The turn-off form: its fields are named apart from the new-codes form's, which
/// shares the page.
#[derive(Deserialize)]
pub(crate) struct DisableForm {
    #[serde(default)]
    disable_password: String,
    #[serde(default)]
    disable_code: String,
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn disable_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<DisableForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Two-factor authentication");
    }
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    let code = SecondFactorCode::typed(&form.disable_code);
    match state
        .auth
        .disable_totp(&Caller::from(me), Password::new(form.disable_password), code, &client)
        .await
    {
        Ok(()) => Redirect::to("/ui/mfa?done=disabled").into_response(),
        Err(error) => refused_on_status_page(&state, &headers, &visit, error, MfaForm::Disable).await,
    }
}

/// Which form of `/ui/mfa` an error answers: its own fields carry it.
#[derive(Clone, Copy)]
enum MfaForm {
    /// Setting up, confirming, new recovery codes: `password`, `code`.
    Main,
    /// Turning off: `disable_password`, `disable_code`.
    Disable,
}

/// `/ui/mfa` again, with `error` under the field of `form` it belongs to.
async fn refused_on_status_page(
    state: &AppState,
    headers: &HeaderMap,
    visit: &Visit,
    error: AuthError,
    form: MfaForm,
) -> Response {
    let mut errors = FieldErrors::default();
    let mut notice = None;
    let (password, code) = match form {
        MfaForm::Main => (&mut errors.password, &mut errors.code),
        MfaForm::Disable => (&mut errors.disable_password, &mut errors.disable_code),
    };
    match &error {
        AuthError::InvalidCredentials => *password = Some("That password is not right.".to_owned()),
        AuthError::InvalidCode => *code = Some("That code is not right.".to_owned()),
        AuthError::StepUpRequired { .. } => {
            *code = Some("Enter a code from your app too: your sign-in is not recent.".to_owned());
        }
        other => notice = Some(Notice::error(say(other))),
    }
    let response = status_page(state, headers, visit, notice, errors, status_of(&error)).await;
    with_answer_headers(response, &error)
}
