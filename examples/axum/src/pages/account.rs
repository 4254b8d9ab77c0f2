//! The account's data: downloading it, and deleting the account.

use auth_core::{Caller, Password, SecondFactorCode};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::view::{Link, MessagePage, Notice};
use super::{
    PageForm, Visit, blank, end_page_session, failed, message_page, reauthentication_error, reauthentication_form,
    refused, say, to_sign_in,
};
use crate::AppState;
use auth_axum::Client;

/// `GET /ui/account/export`: the API's export of the signed-in account, as a download.
pub(crate) async fn export_download(State(state): State<AppState>, visit: Visit, Client(client): Client) -> Response {
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    match state
        .endpoints
        .export_of(&client, me.user.id, Some(me.session.id))
        .await
    {
        Ok(answer) => auth_axum::Reply(answer).into_response(),
        Err(answer) => {
            let status = StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let text = if status == StatusCode::TOO_MANY_REQUESTS {
                "You downloaded your data several times this hour: try again later."
            } else {
                "Your data could not be read just now: try again later."
            };
            message_page(
                &state,
                status,
                MessagePage {
                    signed_in: true,
                    notice: Some(Notice::error(text.to_owned())),
                    heading: "Download your data",
                    text: None,
                    link: Some(Link {
                        href: "/",
                        text: "Back to your account",
                    }),
                },
            )
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct DeleteForm {
    /// The current password; empty within the step-up window of a sign-in.
    #[serde(default)]
    password: String,
    /// The step-up's code, for an account with two-factor authentication.
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn delete_page(State(state): State<AppState>, headers: HeaderMap, visit: Visit) -> Response {
    if visit.me().is_none() {
        return to_sign_in();
    }
    let page = reauthentication_form(&state, &visit);
    blank(&state, &headers, &visit, "account_delete.html", page)
}

pub(crate) async fn delete_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<DeleteForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Delete your account");
    }
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    let mut caller = Caller::from(me);
    if let Some(code) = form.code.as_deref().filter(|code| !code.trim().is_empty()) {
        caller = caller.with_second_factor(SecondFactorCode::typed(code));
    }
    let password = Some(form.password)
        .filter(|password| !password.is_empty())
        .map(Password::new);
    match state.auth.delete_account(caller, password, &client).await {
        // The session went with the account: the cookie goes too.
        Ok(()) => end_page_session(&state, "/?done=account-deleted"),
        Err(error) => {
            let mut page = reauthentication_form(&state, &visit);
            if !reauthentication_error(&mut page, &error) {
                page.notice = Some(Notice::error(say(&error)));
            }
            failed(&state, &headers, &visit, "account_delete.html", page, &error)
        }
    }
}
