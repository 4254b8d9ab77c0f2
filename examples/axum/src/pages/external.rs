//! Sign-in through OpenID Connect providers, in the pages: the sign-in page links to
//! `GET /oauth/{provider}/start` (the API's, a GET that only redirects), whose callback
//! sends the browser to `/ui/oauth/finish?code=…`, traded here for a page session; the
//! account page lists the linked identities, unlinks them and links new ones.

use auth_core::{AuthError, Caller, ExchangeProof, IdentityId, LoginOutcome};
use auth_http::ErrorAnswer;
use auth_http::headers::{binding_cookie_name, clear_binding_cookie, set_binding_cookie};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::view::{FormPage, Link, MessagePage, Notice, OnwardPage, ProviderLink};
use super::{
    CsrfForm, PageForm, Visit, begin_page_session, cookie_value, login_form, message_page, referrer_stays_here,
    refused, say, second_factor, status_of, to_sign_in, unreadable, with_answer_headers,
};
use crate::AppState;
use auth_axum::Client;

/// A provider's configured name as people read it: `google` is "Google".
pub(super) fn display_name(provider: &str) -> String {
    let mut chars = provider.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The sign-in page's link for each configured provider (to [`start`]).
pub(super) fn sign_in_links(state: &AppState) -> Vec<ProviderLink> {
    state
        .auth
        .identity_providers()
        .map(|name| ProviderLink {
            name: display_name(name.as_str()),
            href: format!("/ui/oauth/{name}/start"),
        })
        .collect()
}

/// `GET /ui/oauth/{provider}/start`: begins a sign-in through `provider` whose callback
/// comes back to `/ui/oauth/finish` (naming the provider, so its messages can), sending
/// the browser to the provider with the flow's binding cookie. The API's
/// `/oauth/{provider}/start` does the same but answers a refusal (a provider out of reach,
/// too many attempts) in JSON; here it is the sign-in page, in words.
pub(crate) async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    Path(provider): Path<String>,
) -> Response {
    let finish = format!(
        "/ui/oauth/finish?{}",
        serde_urlencoded::to_string([("provider", provider.as_str())]).unwrap_or_default()
    );
    match state.auth.begin_external_login(&provider, &finish, &client).await {
        Ok(start) => {
            let mut response = Redirect::to(&start.authorization_url).into_response();
            let cookie = set_binding_cookie(state.https, start.binding.expose_secret(), start.expires_in.as_secs());
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
                .headers_mut()
                .insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            response
        }
        Err(error) => {
            let provider = configured(&state, Some(&provider));
            let page = FormPage {
                notice: Some(Notice::error(external_error(&error, provider.as_deref()))),
                ..login_form(&state)
            };
            with_answer_headers(
                super::with_csrf(&state, &headers, &visit, status_of(&error), page, "login.html"),
                &error,
            )
        }
    }
}

/// The account page's "Link" forms: one per configured provider the account has no
/// identity of yet.
pub(super) fn linkable(state: &AppState, linked: &[auth_core::LinkedIdentity]) -> Vec<ProviderLink> {
    state
        .auth
        .identity_providers()
        .filter(|name| linked.iter().all(|identity| &identity.provider != *name))
        .map(|name| ProviderLink {
            name: display_name(name.as_str()),
            href: format!("/ui/oauth/{name}/link"),
        })
        .collect()
}

/// `provider` if it is one this server signs in through: only a configured name is ever
/// shown, never what the URL says.
fn configured(state: &AppState, provider: Option<&str>) -> Option<String> {
    let provider = provider?;
    state
        .auth
        .identity_providers()
        .find(|name| name.to_string() == provider)
        .map(ToString::to_string)
}

/// What a person reads for the error code `code` of a sign-in or link through
/// `provider` (fixed texts by code: nothing from the URL is echoed); `None` for a code
/// with no text of its own.
pub(super) fn external_text(code: &str, provider: Option<&str>) -> Option<String> {
    let name = provider.map_or_else(|| "the provider".to_owned(), display_name);
    let text = match code {
        "account_exists" => format!(
            "An account with this email exists: sign in with its password, then link {name} from your account page."
        ),
        "provider_email_unverified" => {
            format!("{name} has not confirmed your email address. Confirm it there, then try again.")
        }
        "external_login_failed" => format!("The sign-in with {name} did not work or took too long. Try again."),
        "identity_in_use" => match provider {
            Some(provider) => format!(
                "This {} account is already linked to another account.",
                display_name(provider)
            ),
            None => "This account at the provider is already linked to another account.".to_owned(),
        },
        "account_disabled" => "This account is disabled.".to_owned(),
        "last_sign_in_method" => {
            "This is your only way to sign in: link another provider or set a password first.".to_owned()
        }
        "insufficient_user_authentication" => "Sign out and in again first: your sign-in is not recent.".to_owned(),
        // `IdentityNotFound`'s code, the only `not_found` these pages meet.
        "not_found" => "That provider is not linked to your account.".to_owned(),
        "unknown_provider" => "This provider is not available here.".to_owned(),
        "provider_unavailable" => format!("{name} cannot be reached now. Try again shortly."),
        "rate_limited" => "Too many attempts. Wait a little and try again.".to_owned(),
        _ => return None,
    };
    Some(super::sentence(&text))
}

/// The text for `error`: its own external text, else the pages' usual one.
fn external_error(error: &AuthError, provider: Option<&str>) -> String {
    if error.is_server_error() && !matches!(error, AuthError::ProviderUnavailable(_)) {
        return say(error);
    }
    external_text(error.code(), provider).unwrap_or_else(|| say(error))
}

/// The query of `/ui/oauth/finish`, read leniently: the first of a repeated parameter,
/// anything unreadable ignored (a person gets the sign-in page, never a plain-text 400).
#[derive(Default)]
pub(crate) struct FinishQuery {
    provider: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

impl FinishQuery {
    fn read(query: Option<&str>) -> Self {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or_default();
        let first = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        Self {
            provider: first("provider"),
            code: first("code"),
            error: first("error"),
        }
    }
}

/// The status a refusal the callback sent back as `error=<code>` has in the API (400 for
/// a code it does not know).
fn status_of_code(code: Option<&str>) -> StatusCode {
    match code {
        Some("account_exists" | "identity_in_use") => StatusCode::CONFLICT,
        Some("provider_email_unverified" | "account_disabled") => StatusCode::FORBIDDEN,
        Some("rate_limited") => StatusCode::TOO_MANY_REQUESTS,
        Some("provider_unavailable") => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// `HEAD /ui/oauth/finish`: 405 with `Allow: GET`. Axum would answer a HEAD with the GET
/// handler, and a prefetch or link preview would spend the one-time code.
pub(crate) async fn oauth_finish_head() -> Response {
    let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    response
}

/// `GET /ui/oauth/finish?provider=…&code=…` (or `&error=…`): trades the callback's
/// one-time code, with this browser's binding cookie, for a page session (or the code
/// step of a two-factor account); shows the sign-in page with the reason otherwise. The
/// binding cookie is cleared (but after a refusal that left the code unspent: too many
/// attempts, or a fault on the server's side, so that trying again can work), and the code
/// in the URL goes to no other site (`Referrer-Policy: same-origin`; see
/// `referrer_stays_here` for why not `no-referrer`: the sign-in and code pages shown here
/// hold forms).
pub(crate) async fn oauth_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    RawQuery(query): RawQuery,
) -> Response {
    let query = FinishQuery::read(query.as_deref());
    let mut keep_cookie = false;
    let provider = configured(&state, query.provider.as_deref());
    let provider = provider.as_deref();
    let sign_in_again = |status: StatusCode, text: String| {
        let page = FormPage {
            notice: Some(Notice::error(text)),
            ..login_form(&state)
        };
        super::with_csrf(&state, &headers, &visit, status, page, "login.html")
    };
    let response = match (query.code.filter(|code| !code.is_empty()), query.error) {
        (Some(code), None) => {
            let binding = cookie_value(&headers, binding_cookie_name(state.https));
            match state
                .auth
                .exchange_external_login(&code, ExchangeProof::BindingCookie(binding.as_deref()), &client)
                .await
            {
                Ok(LoginOutcome::SecondFactorRequired(challenge)) => second_factor::code_page(
                    &state,
                    &headers,
                    &visit,
                    challenge.token.expose_secret().to_owned(),
                    None,
                    super::view::FieldErrors::default(),
                    StatusCode::OK,
                ),
                Ok(outcome) => match outcome.signed_in() {
                    Ok(success) => begin_page_session(&state, &headers, &client, &success.tokens.session, "/").await,
                    Err(error) => with_answer_headers(
                        sign_in_again(status_of(&error), external_error(&error, provider)),
                        &error,
                    ),
                },
                Err(error) => {
                    keep_cookie = matches!(error, AuthError::RateLimited { .. }) || error.is_server_error();
                    with_answer_headers(
                        sign_in_again(status_of(&error), external_error(&error, provider)),
                        &error,
                    )
                }
            }
        }
        (_, error) => {
            let text = error
                .as_deref()
                .and_then(|code| external_text(code, provider))
                .unwrap_or_else(|| {
                    let name = provider.map_or_else(|| "the provider".to_owned(), display_name);
                    format!("The sign-in with {name} did not work. Try again.")
                });
            sign_in_again(status_of_code(error.as_deref()), text)
        }
    };
    let mut response = referrer_stays_here(response);
    if !keep_cookie && let Ok(clear) = HeaderValue::from_str(&clear_binding_cookie(state.https)) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

/// `POST /ui/oauth/{provider}/link`: begins linking `provider` to the signed-in account,
/// sending the browser there with the flow's binding cookie; the callback comes back to
/// the account page with `?linked=<provider>` (or `?error=<code>`).
pub(crate) async fn link_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    Path(provider): Path<String>,
    PageForm(form): PageForm<CsrfForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Link a sign-in provider");
    }
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    match state
        .auth
        .begin_identity_link(&Caller::from(me), &provider, &link_return(&provider), &client)
        .await
    {
        Ok(start) => {
            // Not a redirect: `form-action 'self'` would stop this form's redirect to
            // another site. A page that moves on at once does the same.
            let name = display_name(&provider);
            let page = OnwardPage {
                signed_in: true,
                notice: None,
                heading: "Link a sign-in provider",
                text: format!("Taking you to {name} to link it to your account."),
                href: start.authorization_url.clone(),
                button: format!("Continue to {name}"),
            };
            let mut response = state.views.render_with(StatusCode::OK, "onward.html", &page);
            let cookie = set_binding_cookie(state.https, start.binding.expose_secret(), start.expires_in.as_secs());
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(error) => identity_error(&state, &error, configured(&state, Some(&provider)).as_deref()),
    }
}

#[derive(Deserialize)]
pub(crate) struct UnlinkForm {
    #[serde(default)]
    identity: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/identities/unlink`: unlinks one of the account's identities.
pub(crate) async fn unlink_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<UnlinkForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Unlink a sign-in provider");
    }
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    let Ok(identity) = form.identity.parse::<IdentityId>() else {
        return unreadable(&state, &ErrorAnswer::invalid_request("not an identity id"));
    };
    match state.auth.unlink_identity(&Caller::from(me), identity, &client).await {
        Ok(()) => Redirect::to("/?done=identity-unlinked").into_response(),
        // Not this account's (or already unlinked, by a second click): said as it is.
        Err(error) => identity_error(&state, &error, None),
    }
}

/// The page for a link or unlink that failed.
fn identity_error(state: &AppState, error: &AuthError, provider: Option<&str>) -> Response {
    let page = MessagePage {
        signed_in: true,
        notice: Some(Notice::error(external_error(error, provider))),
        heading: "Your account",
        text: None,
        link: Some(Link {
            href: "/",
            text: "Back to your account",
        }),
    };
    with_answer_headers(message_page(state, status_of(error), page), error)
}

/// Where a link's callback leads: the account page, naming the provider so that a
/// refusal's message can name it too (`/?provider=google&error=identity_in_use`).
fn link_return(provider: &str) -> String {
    let query = serde_urlencoded::to_string([("provider", provider)]).unwrap_or_default();
    format!("/?{query}")
}

/// What the account page says when a link's callback sent the person back to it:
/// `?linked=<provider>` when that provider is among the account's identities (a crafted
/// link says nothing), or `?provider=<provider>&error=<code>` for a known code only.
pub(super) fn link_notice(
    state: &AppState,
    identities: &[auth_core::LinkedIdentity],
    query: (Option<&str>, Option<&str>, Option<&str>),
) -> Option<Notice> {
    let (linked, provider, error) = query;
    if let Some(linked) = linked
        && identities.iter().any(|identity| identity.provider.as_str() == linked)
    {
        return Some(Notice::success(format!("Linked {}.", display_name(linked))));
    }
    let provider = configured(state, provider);
    external_text(error?, provider.as_deref()).map(Notice::error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_errors_read_as_sentences_naming_the_provider() {
        assert_eq!(
            external_text("account_exists", Some("google")).as_deref(),
            Some(
                "An account with this email exists: sign in with its password, then link Google from your account page."
            )
        );
        assert_eq!(
            external_text("provider_email_unverified", None).as_deref(),
            Some("The provider has not confirmed your email address. Confirm it there, then try again.")
        );
        assert_eq!(external_text("<script>", Some("google")), None);
    }
}
