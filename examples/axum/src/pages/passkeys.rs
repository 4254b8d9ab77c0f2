//! Passkeys on the pages: "Sign in with a passkey" on the sign-in page, "Add a passkey"
//! and the list with its "Remove" buttons on the account page. A ceremony begins with a
//! script's POST (CSRF-checked, answered with the options as JSON) and finishes with the
//! form's ordinary POST, carrying the authenticator's answer; `/ui/passkeys.js` is the
//! whole script.

use auth_axum::{ApiError, Client};
use auth_core::{AuthError, Caller, PasskeyId};
use auth_http::ErrorAnswer;
use auth_http::api::PasskeyOptionsView;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::session::PageForm;
use super::view::{Link, MessagePage, Notice};
use super::{Visit, begin_page_session, message_page, refused, say, status_of, to_sign_in, with_answer_headers};
use crate::AppState;

/// The script's request to begin a ceremony: the page's CSRF token.
#[derive(Deserialize)]
pub(crate) struct StartForm {
    #[serde(default)]
    csrf: String,
}

/// A finished ceremony, as the form posts it.
#[derive(Deserialize)]
pub(crate) struct FinishForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    ceremony: String,
    /// The browser's `PublicKeyCredential.toJSON()`, as JSON text.
    #[serde(default)]
    credential: String,
    /// The new passkey's name (registration only).
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct RemoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    passkey: String,
}

/// A script's begin refused for its CSRF token: 403, in the API's error shape.
fn forged() -> Response {
    let body = json!({
        "error": "forbidden",
        "detail": "this page expired or did not come from this site: reload it and try again",
    });
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

/// `POST /ui/passkeys/login/start`: request options for `navigator.credentials.get()`.
pub(crate) async fn login_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<StartForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return forged();
    }
    match state.auth.begin_passkey_login(&client).await {
        Ok(begun) => Json(PasskeyOptionsView::from(begun)).into_response(),
        Err(error) => ApiError(ErrorAnswer::from(error)).into_response(),
    }
}

/// `POST /ui/passkeys/login`: the assertion checked, a page session begun.
pub(crate) async fn login_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<FinishForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Sign in with a passkey");
    }
    let credential = serde_json::from_str(&form.credential).unwrap_or_default();
    match state
        .auth
        .finish_passkey_login(&form.ceremony, &credential, &client)
        .await
    {
        Ok(login) => begin_page_session(&state, &headers, &client, &login.tokens.session, "/").await,
        Err(error) => passkey_error(&state, &visit, &error, "Sign in with a passkey", "/ui/login"),
    }
}

/// `POST /ui/passkeys/register/start`: creation options for `navigator.credentials.create()`.
pub(crate) async fn register_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<StartForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return forged();
    }
    let Some(me) = visit.me() else {
        let body = json!({ "error": "invalid_token", "detail": "sign in first" });
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    };
    match state.auth.begin_passkey_registration(&Caller::from(me), &client).await {
        Ok(begun) => Json(PasskeyOptionsView::from(begun)).into_response(),
        Err(error) => ApiError(ErrorAnswer::from(error)).into_response(),
    }
}

/// `POST /ui/passkeys/register`: the new credential checked and stored.
pub(crate) async fn register_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<FinishForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Add a passkey");
    }
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    let credential = serde_json::from_str(&form.credential).unwrap_or_default();
    let result = state
        .auth
        .finish_passkey_registration(
            &Caller::from(me),
            &form.ceremony,
            &credential,
            form.name.as_deref(),
            &client,
        )
        .await;
    match result {
        Ok(_) => Redirect::to("/?done=passkey-added").into_response(),
        Err(error) => passkey_error(&state, &visit, &error, "Add a passkey", "/"),
    }
}

/// `POST /ui/passkeys/remove`: one of the account's passkeys removed.
pub(crate) async fn remove_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<RemoveForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Remove a passkey");
    }
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    let Ok(id) = form.passkey.parse::<PasskeyId>() else {
        return passkey_error(&state, &visit, &AuthError::PasskeyNotFound, "Remove a passkey", "/");
    };
    match state.auth.delete_passkey(&Caller::from(me), id, &client).await {
        Ok(()) => Redirect::to("/?done=passkey-removed").into_response(),
        Err(error) => passkey_error(&state, &visit, &error, "Remove a passkey", "/"),
    }
}

/// The page for a passkey ceremony or removal that failed, with a way back.
fn passkey_error(
    state: &AppState,
    visit: &Visit,
    error: &AuthError,
    heading: &'static str,
    back: &'static str,
) -> Response {
    let text = match error {
        AuthError::PasskeyRefused => {
            "This passkey was not accepted. Try again, or sign in with your password.".to_owned()
        }
        AuthError::InvalidPasskey => "The passkey could not be added. Try again.".to_owned(),
        AuthError::StepUpRequired { .. } => "Sign in again first: this needs a recent sign-in.".to_owned(),
        other => say(other),
    };
    let page = MessagePage {
        signed_in: visit.signed_in(),
        notice: Some(Notice::error(text)),
        heading,
        text: None,
        link: Some(Link {
            href: back,
            text: "Back",
        }),
    };
    with_answer_headers(message_page(state, status_of(error), page), error)
}
