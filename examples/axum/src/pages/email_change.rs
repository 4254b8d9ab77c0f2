//! Changing the account's address: the form, and the pages of the two mailed links
//! (confirm, from the new address; undo, from the old one).

use auth_core::{AuthError, Caller, Password, SecondFactorCode};
use auth_http::{Mail, SendMail};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::view::{FormPage, Link, MessagePage, Notice};
use super::{
    LinkForm, PageForm, TokenQuery, Visit, answer_link, blank, failed, link_page, reauthentication_error,
    reauthentication_form, refused, say, to_sign_in,
};
use crate::AppState;
use auth_axum::Client;

#[derive(Deserialize)]
pub(crate) struct ChangeEmailForm {
    /// The address wanted.
    #[serde(default)]
    email: String,
    /// The current password; empty within the step-up window of a sign-in.
    #[serde(default)]
    password: String,
    /// The step-up's code, for an account with two-factor authentication.
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn change_page(State(state): State<AppState>, headers: HeaderMap, visit: Visit) -> Response {
    if visit.me().is_none() {
        return to_sign_in();
    }
    // The field is the new address: empty, not the account's.
    let page = FormPage {
        email: None,
        ..reauthentication_form(&state, &visit)
    };
    blank(&state, &headers, &visit, "email_change.html", page)
}

pub(crate) async fn change_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<ChangeEmailForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Change your email");
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
    match state
        .auth
        .request_email_change(caller, &form.email, password, &client)
        .await
    {
        Ok(delivery) => {
            // Over the mail limits nothing is sent, and the page says the same.
            if let Some(delivery) = delivery {
                state.mailer.send_later(Mail::Link(delivery));
            }
            Redirect::to("/?done=email-change-sent").into_response()
        }
        Err(error) => {
            let mut page = FormPage {
                email: Some(form.email),
                ..reauthentication_form(&state, &visit)
            };
            match &error {
                AuthError::InvalidEmail(_) => page.errors.email = Some(say(&error)),
                AuthError::EmailTaken => page.errors.email = Some("This is already your address.".to_owned()),
                _ if reauthentication_error(&mut page, &error) => {}
                _ => page.notice = Some(Notice::error(say(&error))),
            }
            failed(&state, &headers, &visit, "email_change.html", page, &error)
        }
    }
}

/// The confirmation link opens a page (see [`link_page`]).
pub(crate) async fn confirm_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Query(query): Query<TokenQuery>,
) -> Response {
    link_page(&state, &headers, &visit, "email_change_confirm.html", query.token)
}

/// As [`confirm_page`], for the undo link.
pub(crate) async fn undo_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Query(query): Query<TokenQuery>,
) -> Response {
    link_page(&state, &headers, &visit, "email_change_undo.html", query.token)
}

pub(crate) async fn confirm_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<LinkForm>,
) -> Response {
    let page = ("Confirm your new email", "email_change_confirm.html");
    let spend = async |token: &str| state.auth.confirm_email_change(token, &client).await;
    answer_link(&state, &headers, &visit, form, page, spend, |user| MessagePage {
        signed_in: false,
        notice: Some(Notice::success(format!(
            "Your account's address is now {}.",
            user.email.as_str()
        ))),
        heading: "Email changed",
        text: Some("Sign in with the new address from now on.".to_owned()),
        link: Some(Link {
            href: "/",
            text: "Go to your account",
        }),
    })
    .await
}

pub(crate) async fn undo_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<LinkForm>,
) -> Response {
    let page = ("Undo the change of your email", "email_change_undo.html");
    let spend = async |token: &str| state.auth.undo_email_change(token, &client).await;
    answer_link(&state, &headers, &visit, form, page, spend, |user| MessagePage {
        signed_in: false,
        notice: Some(Notice::success(format!(
            "{} is your account's address again, and every device is signed out.",
            user.email.as_str()
        ))),
        heading: "Change undone",
        text: Some("Whoever changed your address may have changed your password too: set a new one now.".to_owned()),
        link: Some(Link {
            href: "/ui/password/forgot",
            text: "Reset your password",
        }),
    })
    .await
}
