//! Browser pages: server-rendered HTML forms over a cookie session, from templates.
//!
//! - [`session`]: the page session (an opaque cookie mapped to the account's tokens) and
//!   the forms' CSRF defence.
//! - [`view`]: the templates, the stylesheet and the icon, replaceable from a directory.
//! - Here: one handler per page and form. Every rule is `AuthService`'s: these handlers
//!   only translate forms into calls and outcomes into pages, choosing which field an
//!   error belongs to.

mod account;
mod email_change;
mod external;
mod passkeys;
mod second_factor;
mod session;
mod view;

use auth_core::http::ErrorResponse;
use auth_core::{AuthError, BrowserCheck, BrowserSession, ClientInfo, LoginOutcome, Password, Session, SessionId};
use auth_http::{ErrorAnswer, Mail, SendMail};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;
pub(crate) use account::{
    delete_page as account_delete_page, delete_submit as account_delete_submit, export_download as account_export,
};
use auth_axum::Client;
pub(crate) use email_change::{
    change_page as email_change_page, change_submit as email_change_submit, confirm_page as email_change_confirm_page,
    confirm_submit as email_change_confirm_submit, undo_page as email_change_undo_page,
    undo_submit as email_change_undo_submit,
};
pub(crate) use external::{link_submit, oauth_finish, oauth_finish_head, start as oauth_start, unlink_submit};
pub(crate) use passkeys::{
    login_start as passkey_login_start, login_submit as passkey_login_submit, register_start as passkey_register_start,
    register_submit as passkey_register_submit, remove_submit as passkey_remove_submit,
};
pub(crate) use second_factor::{
    confirm_submit, disable_submit, login_code_submit, mfa_page, recovery_codes_submit, setup_submit,
};
pub(crate) use session::{PageCookies, PageForm};
use session::{cookie_value, csrf, genuine, random_token};
use view::{AccountView, FormPage, HomePage, IdentityView, Link, MessagePage, Notice, SessionView};
pub(crate) use view::{Views, icon, passkey_script, stylesheet};

/// Headers every page carries: never framed (clickjacking), never cached (they show who
/// is logged in and carry CSRF tokens), scripts from this site only (the passkey buttons'
/// `/ui/passkeys.js`; no inline script) and styles from this site's stylesheet only.
pub(crate) async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The pages' Content Security Policy: everything from this origin only (the one script
/// is `/ui/passkeys.js`), no inline script or style (there is none), no plugins, no `<base>`, no framing, forms posted
/// here only; images from here or `data:` URLs (the QR code of a TOTP enrolment, made on
/// the page, never fetched from anywhere).
pub(crate) const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// The browser's page session as this request found it: its cookie and who it signs in
/// when the core says it is live; nothing otherwise. A store outage shows as "not signed
/// in" for this page without ending the session; an ended one is forgotten by the core.
pub(crate) struct Visit {
    live: Option<(String, BrowserSession)>,
}

impl Visit {
    /// The live session cookie, which the CSRF tokens are bound to.
    fn cookie(&self) -> Option<&str> {
        self.live.as_ref().map(|(cookie, _)| cookie.as_str())
    }

    /// Who is signed in, and with which session.
    fn me(&self) -> Option<&BrowserSession> {
        self.live.as_ref().map(|(_, me)| me)
    }

    fn signed_in(&self) -> bool {
        self.live.is_some()
    }

    /// Whether a state-changing form may act: from this site, with its genuine token.
    fn genuine(&self, state: &AppState, headers: &HeaderMap, submitted: &str) -> bool {
        genuine(&state.pages, headers, self.cookie(), submitted)
    }
}

impl FromRequestParts<AppState> for Visit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(cookie) = cookie_value(&parts.headers, state.pages.session_cookie()) else {
            return Ok(Self { live: None });
        };
        let live = match state.auth.check_browser_session(&cookie).await {
            BrowserCheck::Live(me) => Some((cookie, me)),
            BrowserCheck::Unchecked(error) => {
                tracing::warn!(code = error.code(), "page session not checked now");
                None
            }
            BrowserCheck::Ended(_) => None,
        };
        Ok(Self { live })
    }
}

/// Renders the form page `name` with this browser's CSRF token, setting the nonce cookie
/// if the browser had none.
fn with_csrf(
    state: &AppState,
    headers: &HeaderMap,
    visit: &Visit,
    status: StatusCode,
    page: FormPage,
    name: &str,
) -> Response {
    with_token(state, headers, visit, status, name, |csrf| FormPage {
        csrf,
        signed_in: visit.signed_in(),
        ..page
    })
}

/// Renders the page `name` that `page` builds around this browser's CSRF token, setting
/// the nonce cookie if the browser had none.
fn with_token<P: serde::Serialize>(
    state: &AppState,
    headers: &HeaderMap,
    visit: &Visit,
    status: StatusCode,
    name: &str,
    page: impl FnOnce(String) -> P,
) -> Response {
    let (token, set) = csrf(&state.pages, headers, visit.cookie());
    let mut response = state.views.render_with(status, name, &page(token));
    if let Some(cookie) = set {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// A form page with no error yet.
fn blank(state: &AppState, headers: &HeaderMap, visit: &Visit, name: &str, page: FormPage) -> Response {
    with_csrf(state, headers, visit, StatusCode::OK, page, name)
}

/// A form page shown again after `error`: the status the API would give the same error,
/// the message under the field that caused it or atop the form.
fn failed(
    state: &AppState,
    headers: &HeaderMap,
    visit: &Visit,
    name: &str,
    page: FormPage,
    error: &AuthError,
) -> Response {
    with_answer_headers(with_csrf(state, headers, visit, status_of(error), page, name), error)
}

/// The status the API gives `error`.
fn status_of(error: &AuthError) -> StatusCode {
    StatusCode::from_u16(ErrorResponse::from(error).status()).unwrap_or(StatusCode::BAD_REQUEST)
}

/// `error`'s headers as the API sends them (`Retry-After` when limited or busy), but a
/// bearer-token challenge (`WWW-Authenticate`), which means nothing to a page.
fn with_answer_headers(mut response: Response, error: &AuthError) -> Response {
    for (name, value) in ErrorResponse::from(error).headers() {
        if name.eq_ignore_ascii_case("www-authenticate") {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(HeaderName::from_static(name), value);
        }
    }
    response
}

fn message_page(state: &AppState, status: StatusCode, page: MessagePage) -> Response {
    state.views.render_with(status, "message.html", &page)
}

/// The page for a form body that could not be read, with `answer`'s status and headers
/// (`Connection: close` after a timeout).
fn unreadable(state: &AppState, answer: &ErrorAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let text = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "This form is too large to send. Shorten what you typed and try again.",
        StatusCode::REQUEST_TIMEOUT => "This form took too long to arrive. Try again.",
        _ => "This form could not be read. Reload the page and try again.",
    };
    let page = MessagePage {
        signed_in: false,
        notice: Some(Notice::error(text)),
        heading: "Form not sent",
        text: None,
        link: Some(Link {
            href: "/",
            text: "Back to the start",
        }),
    };
    let mut response = message_page(state, status, page);
    for (name, value) in answer.headers() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(HeaderName::from_static(name), value);
        }
    }
    response
}

/// A form that did not come from this site with its genuine token.
fn refused(state: &AppState, visit: &Visit, heading: &'static str) -> Response {
    let page = MessagePage {
        signed_in: visit.signed_in(),
        notice: Some(Notice::error(
            "This form expired or did not come from this site. Reload it and try again.",
        )),
        heading,
        text: None,
        link: Some(Link {
            href: "/",
            text: "Back to the start",
        }),
    };
    message_page(state, StatusCode::FORBIDDEN, page)
}

/// What a person reads for `error`: the core's own safe text, in a sentence, and a
/// generic apology for anything on the server's side (logged here).
fn say(error: &AuthError) -> String {
    if error.is_server_error() {
        tracing::error!(code = error.code(), error = ?std::error::Error::source(error), "a page request failed on the server side");
        return "Something went wrong on our side. Please try again shortly.".to_owned();
    }
    let text = match error {
        AuthError::InvalidCredentials => "The email or password is not right.".to_owned(),
        AuthError::InvalidOneTimeToken(_) => "This link has expired or was already used. Ask for a new one.".to_owned(),
        AuthError::EmailTaken => "An account with this email address already exists.".to_owned(),
        other => other.to_string(),
    };
    sentence(&text)
}

/// `text` with a capital first letter and a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.next().map(char::to_uppercase).into_iter().flatten().collect();
    out.push_str(chars.as_str());
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// Opens a browser session on `session` (a sign-in has just begun it), replacing (and
/// ending) whatever this browser held: a new cookie at every sign-in, with a new CSRF
/// nonce, and a redirect to `to`.
async fn begin_page_session(
    state: &AppState,
    headers: &HeaderMap,
    client: &ClientInfo,
    session: &Session,
    to: &str,
) -> Response {
    let pages = &state.pages;
    if let Some(old) = cookie_value(headers, pages.session_cookie())
        && let Err(error) = state.auth.close_browser_session(&old, client).await
    {
        tracing::warn!(code = error.code(), "could not end a replaced page session");
    }
    let cookie = match state.auth.open_browser_session(session).await {
        Ok(cookie) => cookie,
        Err(error) => {
            let page = MessagePage {
                signed_in: false,
                notice: Some(Notice::error(say(&error))),
                heading: "Sign in",
                text: None,
                link: Some(Link {
                    href: "/ui/login",
                    text: "Try again",
                }),
            };
            return with_answer_headers(message_page(state, status_of(&error), page), &error);
        }
    };
    let mut response = Redirect::to(to).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        pages.cookie(pages.session_cookie(), cookie.expose_secret(), None),
    );
    headers.append(
        header::SET_COOKIE,
        pages.cookie(pages.csrf_cookie(), &random_token(), None),
    );
    response
}

/// Tells the browser to forget its session cookie (the session is ended by the caller)
/// and sends it to `to`.
fn end_page_session(state: &AppState, to: &str) -> Response {
    let pages = &state.pages;
    let mut response = Redirect::to(to).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, pages.cookie(pages.session_cookie(), "", Some(0)));
    response
}

fn to_sign_in() -> Response {
    Redirect::to("/ui/login").into_response()
}

// ---------------------------------------------------------------- home

/// What the account page says after a form sent the person back to it. Fixed texts by
/// key: nothing from the URL is echoed.
#[derive(Deserialize)]
pub(crate) struct HomeQuery {
    done: Option<String>,
    /// A link's callback came back: the provider linked.
    linked: Option<String>,
    /// A link's callback came back refused: the provider, and the error code.
    provider: Option<String>,
    error: Option<String>,
}

fn done_notice(done: Option<&str>) -> Option<Notice> {
    let text = match done? {
        "signed-out-everywhere" => "You are signed out on every device.",
        "signed-out" => "You are signed out.",
        "device-signed-out" => "That device is signed out.",
        "password-changed" => "Your password is changed. Your other devices are signed out.",
        "verification-sent" => "A confirmation link is on its way to your address.",
        "email-change-sent" => "A link is on its way to the new address: open it to make the change.",
        "account-deleted" => "Your account is deleted, with everything stored about it.",
        "identity-unlinked" => "The provider is unlinked: it no longer signs you in.",
        "passkey-added" => "The passkey is added: it signs you in from now on.",
        "passkey-removed" => "The passkey is removed: it no longer signs you in.",
        _ => return None,
    };
    Some(Notice::success(text))
}

pub(crate) async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Query(query): Query<HomeQuery>,
) -> Response {
    let mut notice = done_notice(query.done.as_deref());
    let Some(me) = visit.me() else {
        return with_token(&state, &headers, &visit, StatusCode::OK, "home.html", |csrf| HomePage {
            csrf,
            notice,
            ..HomePage::default()
        });
    };
    let listed = match state.auth.list_sessions(me.user.id).await {
        Ok(sessions) => match state.auth.list_identities(me.user.id).await {
            Ok(identities) if state.auth.serves_passkeys() => state
                .auth
                .list_passkeys(me.user.id)
                .await
                .map(|passkeys| (sessions, identities, Some(passkeys))),
            Ok(identities) => Ok((sessions, identities, None)),
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    let (sessions, identities, passkeys) = match listed {
        Ok(listed) => listed,
        Err(error) => {
            let page = MessagePage {
                signed_in: true,
                notice: Some(Notice::error(say(&error))),
                heading: "Your account",
                text: None,
                link: Some(Link {
                    href: "/",
                    text: "Try again",
                }),
            };
            return with_answer_headers(message_page(&state, status_of(&error), page), &error);
        }
    };
    // A link's outcome is news to the signed-in account only.
    notice = notice.or_else(|| {
        let link = (
            query.linked.as_deref(),
            query.provider.as_deref(),
            query.error.as_deref(),
        );
        external::link_notice(&state, &identities, link)
    });
    let current = me.session.id;
    with_token(&state, &headers, &visit, StatusCode::OK, "home.html", |csrf| HomePage {
        csrf,
        signed_in: true,
        notice,
        account: Some(AccountView {
            email: me.user.email.as_str().to_owned(),
            verified: me.user.email_verified(),
            created: date(me.user.created_at),
            roles: me.user.roles.iter().map(ToString::to_string).collect(),
            has_password: me.user.password_hash.is_some(),
        }),
        linkable: external::linkable(&state, &identities),
        passkeys: passkeys.map(|passkeys| {
            passkeys
                .iter()
                .map(|passkey| view::PasskeyItem {
                    id: passkey.id.to_string(),
                    name: passkey.name.clone(),
                    added: date(passkey.created_at),
                    last_used: passkey.last_used_at.map(moment),
                })
                .collect()
        }),
        identities: identities
            .iter()
            .map(|identity| IdentityView {
                id: identity.id.to_string(),
                provider: external::display_name(identity.provider.as_str()),
                email: identity.email.clone(),
                linked: date(identity.created_at),
                last_used: identity.last_used_at.map(moment),
            })
            .collect(),
        sessions: sessions
            .iter()
            .rev()
            .map(|session| SessionView {
                id: session.id.to_string(),
                device: device(session.user_agent.as_deref()),
                ip: session.ip.map(|ip| ip.to_string()),
                started: moment(session.created_at),
                last_active: moment(session.last_used_at),
                current: session.id == current,
            })
            .collect(),
    })
}

fn date(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{}-{:02}-{:02}", at.year(), u8::from(at.month()), at.day())
}

fn moment(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", date(at), at.hour(), at.minute())
}

/// "Firefox on Linux" from a user agent: enough for a person to tell their devices
/// apart, not a device database.
fn device(user_agent: Option<&str>) -> String {
    let Some(agent) = user_agent.filter(|agent| !agent.trim().is_empty()) else {
        return "Unknown device".to_owned();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .into_iter()
    .find(|(mark, _)| agent.contains(mark))
    .map_or("Unknown browser", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(mark, _)| agent.contains(mark))
    .map(|(_, name)| name);
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_owned(),
    }
}

// ---------------------------------------------------------------- register and sign-in

#[derive(Deserialize)]
pub(crate) struct CredentialsForm {
    email: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

fn register_form(state: &AppState) -> FormPage {
    FormPage {
        password_rules: state.auth.password_policy().requirements(),
        ..FormPage::default()
    }
}

/// The registration page's fields: the password rules and the providers' links.
fn registration(state: &AppState) -> FormPage {
    FormPage {
        providers: external::sign_in_links(state),
        ..register_form(state)
    }
}

/// The sign-in page's fields: the providers' links.
fn login_form(state: &AppState) -> FormPage {
    FormPage {
        providers: external::sign_in_links(state),
        passkeys: state.auth.serves_passkeys(),
        ..FormPage::default()
    }
}

pub(crate) async fn register_page(State(state): State<AppState>, headers: HeaderMap, visit: Visit) -> Response {
    blank(&state, &headers, &visit, "register.html", registration(&state))
}

pub(crate) async fn register_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<CredentialsForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Create an account");
    }
    match state
        .auth
        .register(&form.email, Password::new(form.password), &client)
        .await
    {
        Ok(_) => Redirect::to("/ui/login?registered=1").into_response(),
        Err(error) => {
            let mut page = FormPage {
                email: Some(form.email),
                ..registration(&state)
            };
            match &error {
                AuthError::InvalidEmail(_) | AuthError::EmailTaken => page.errors.email = Some(say(&error)),
                AuthError::WeakPassword(_) => page.errors.password = Some(say(&error)),
                _ => page.notice = Some(Notice::error(say(&error))),
            }
            failed(&state, &headers, &visit, "register.html", page, &error)
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    registered: Option<String>,
}

pub(crate) async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Query(query): Query<LoginQuery>,
) -> Response {
    let page = FormPage {
        notice: query
            .registered
            .map(|_| Notice::success("Your account is created. Sign in.")),
        ..login_form(&state)
    };
    blank(&state, &headers, &visit, "login.html", page)
}

pub(crate) async fn login_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<CredentialsForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Sign in");
    }
    match state
        .auth
        .login(&form.email, Password::new(form.password), &client)
        .await
    {
        Ok(LoginOutcome::SecondFactorRequired(challenge)) => second_factor::code_page(
            &state,
            &headers,
            &visit,
            challenge.token.expose_secret().to_owned(),
            None,
            view::FieldErrors::default(),
            StatusCode::OK,
        ),
        Ok(outcome) => match outcome.signed_in() {
            Ok(success) => begin_page_session(&state, &headers, &client, &success.tokens.session, "/").await,
            Err(error) => {
                let page = FormPage {
                    email: Some(form.email),
                    notice: Some(Notice::error(say(&error))),
                    ..login_form(&state)
                };
                failed(&state, &headers, &visit, "login.html", page, &error)
            }
        },
        Err(error) => {
            // Which of the two was wrong is exactly what a sign-in must not say: the
            // message is about the form, and the address typed stays.
            let page = FormPage {
                email: Some(form.email),
                notice: Some(Notice::error(say(&error))),
                ..login_form(&state)
            };
            failed(&state, &headers, &visit, "login.html", page, &error)
        }
    }
}

// ---------------------------------------------------------------- sign-out

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn logout_page(State(state): State<AppState>, headers: HeaderMap, visit: Visit) -> Response {
    blank(&state, &headers, &visit, "logout.html", FormPage::default())
}

pub(crate) async fn logout_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<CsrfForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Sign out");
    }
    if let Some(cookie) = cookie_value(&headers, state.pages.session_cookie())
        && let Err(error) = state.auth.close_browser_session(&cookie, &client).await
    {
        tracing::warn!(code = error.code(), "logout could not end the session");
    }
    end_page_session(&state, "/?done=signed-out")
}

pub(crate) async fn logout_all_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<CsrfForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Sign out everywhere");
    }
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    if let Err(error) = state.auth.logout_all(me.user.id, &client).await {
        return account_error(&state, &error);
    }
    end_page_session(&state, "/?done=signed-out-everywhere")
}

#[derive(Deserialize)]
pub(crate) struct RevokeForm {
    #[serde(default)]
    session: String,
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn revoke_session_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<RevokeForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Sign out a device");
    }
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    let Ok(session) = form.session.parse::<SessionId>() else {
        return unreadable(&state, &ErrorAnswer::invalid_request("not a session id"));
    };
    match state.auth.revoke_session(me.user.id, session, &client).await {
        // Already ended (a second click, another tab): what was asked is done.
        Ok(()) | Err(AuthError::SessionNotFound) => Redirect::to("/?done=device-signed-out").into_response(),
        Err(error) => account_error(&state, &error),
    }
}

/// The page for an account action that failed.
fn account_error(state: &AppState, error: &AuthError) -> Response {
    let page = MessagePage {
        signed_in: true,
        notice: Some(Notice::error(say(error))),
        heading: "Your account",
        text: None,
        link: Some(Link {
            href: "/",
            text: "Back to your account",
        }),
    };
    with_answer_headers(message_page(state, status_of(error), page), error)
}

// ---------------------------------------------------------------- password change

#[derive(Deserialize)]
pub(crate) struct ChangeForm {
    current_password: String,
    new_password: String,
    /// The step-up's code, for an account with two-factor authentication.
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    csrf: String,
}

/// A form of a sensitive change, which asks for the password (or a recent sign-in) and,
/// for an account with two-factor authentication, a code.
fn reauthentication_form(state: &AppState, visit: &Visit) -> FormPage {
    FormPage {
        email: visit.me().map(|me| me.user.email.as_str().to_owned()),
        second_factor: visit.me().is_some_and(|me| me.user.requires_second_factor),
        ..register_form(state)
    }
}

/// Puts a re-authentication's refusal under its field (a wrong password, a sign-in too
/// old, a wrong code); `false` for any other error.
fn reauthentication_error(page: &mut FormPage, error: &AuthError) -> bool {
    match error {
        AuthError::InvalidCredentials => {
            page.errors.current_password = Some("This is not your current password.".to_owned());
        }
        AuthError::StepUpRequired { .. } if page.second_factor => {
            page.errors.code = Some("Enter a code from your app too: your sign-in is not recent.".to_owned());
        }
        AuthError::StepUpRequired { .. } => {
            page.errors.current_password = Some("Enter your password: your sign-in is not recent.".to_owned());
        }
        AuthError::InvalidCode => page.errors.code = Some("That code is not right.".to_owned()),
        _ => return false,
    }
    true
}

pub(crate) async fn password_change_page(State(state): State<AppState>, headers: HeaderMap, visit: Visit) -> Response {
    if visit.me().is_none() {
        return to_sign_in();
    }
    let page = reauthentication_form(&state, &visit);
    blank(&state, &headers, &visit, "password_change.html", page)
}

pub(crate) async fn password_change_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<ChangeForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Change your password");
    }
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    let mut caller = auth_core::Caller::from(me);
    if let Some(code) = form.code.as_deref().filter(|code| !code.trim().is_empty()) {
        caller = caller.with_second_factor(auth_core::SecondFactorCode::typed(code));
    }
    let changed = state
        .auth
        .change_password(
            caller,
            Password::new(form.current_password),
            Password::new(form.new_password),
            &client,
        )
        .await;
    match changed {
        // Every session ended with the change, this one too; the person has just proven
        // their password (and, for two-factor accounts, met the step-up rule), so this
        // browser gets a new session (with a new id) at once, carrying on the last one:
        // its methods and its sign-in time.
        Ok(_) => match state.auth.continue_session(&me.session, &client).await {
            Ok(success) => {
                begin_page_session(
                    &state,
                    &headers,
                    &client,
                    &success.tokens.session,
                    "/?done=password-changed",
                )
                .await
            }
            Err(_) => end_page_session(&state, "/ui/login"),
        },
        Err(error) => {
            let mut page = reauthentication_form(&state, &visit);
            if !reauthentication_error(&mut page, &error) {
                match &error {
                    AuthError::WeakPassword(_) => page.errors.new_password = Some(say(&error)),
                    _ => page.notice = Some(Notice::error(say(&error))),
                }
            }
            failed(&state, &headers, &visit, "password_change.html", page, &error)
        }
    }
}

// ---------------------------------------------------------------- password reset

#[derive(Deserialize)]
pub(crate) struct ForgotForm {
    email: String,
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn forgot_page(State(state): State<AppState>, headers: HeaderMap, visit: Visit) -> Response {
    blank(&state, &headers, &visit, "forgot.html", FormPage::default())
}

pub(crate) async fn forgot_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<ForgotForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Reset your password");
    }
    match state.auth.request_password_reset(&form.email, &client).await {
        Ok(delivery) => {
            if let Some(delivery) = delivery {
                state.mailer.send_later(Mail::Link(delivery));
            }
            let page = FormPage {
                email: Some(form.email),
                notice: Some(Notice::success(auth_http::api::FORGOT_ANSWER)),
                ..FormPage::default()
            };
            blank(&state, &headers, &visit, "forgot.html", page)
        }
        Err(error) => {
            let page = FormPage {
                email: Some(form.email),
                notice: Some(Notice::error(say(&error))),
                ..FormPage::default()
            };
            failed(&state, &headers, &visit, "forgot.html", page, &error)
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub(crate) struct ResetForm {
    token: String,
    new_password: String,
    #[serde(default)]
    csrf: String,
}

/// The reset and verification pages carry a token in their URL: no Referer may take it
/// to another site. `same-origin`, not `no-referrer`: under `no-referrer` a browser sends
/// the page's own form with `Origin: null`, which the CSRF check refuses, as it must for a
/// sandboxed or `data:` page (a real browser showed it: the reset form never worked).
fn referrer_stays_here(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

pub(crate) async fn reset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Query(query): Query<TokenQuery>,
) -> Response {
    let page = FormPage {
        token: Some(query.token),
        ..register_form(&state)
    };
    referrer_stays_here(blank(&state, &headers, &visit, "reset.html", page))
}

pub(crate) async fn reset_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<ResetForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return referrer_stays_here(refused(&state, &visit, "Set a new password"));
    }
    let result = state
        .auth
        .reset_password(&form.token, Password::new(form.new_password), &client)
        .await;
    referrer_stays_here(match result {
        Ok(()) => {
            let page = MessagePage {
                signed_in: false,
                notice: Some(Notice::success("Your password is changed.")),
                heading: "Password changed",
                text: Some("Every session of your account has ended. Sign in with the new password.".to_owned()),
                link: Some(Link {
                    href: "/ui/login",
                    text: "Sign in",
                }),
            };
            message_page(&state, StatusCode::OK, page)
        }
        Err(error) => {
            let mut page = FormPage {
                token: Some(form.token),
                ..register_form(&state)
            };
            match &error {
                AuthError::WeakPassword(_) => page.errors.new_password = Some(say(&error)),
                _ => page.notice = Some(Notice::error(say(&error))),
            }
            failed(&state, &headers, &visit, "reset.html", page, &error)
        }
    })
}

// ---------------------------------------------------------------- email verification

/// The link in the mail opens a page (see [`link_page`]).
pub(crate) async fn verify_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Query(query): Query<TokenQuery>,
) -> Response {
    link_page(&state, &headers, &visit, "verify.html", query.token)
}

pub(crate) async fn verify_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<LinkForm>,
) -> Response {
    let spend = async |token: &str| state.auth.verify_email(token, &client).await;
    answer_link(
        &state,
        &headers,
        &visit,
        form,
        ("Confirm your email", "verify.html"),
        spend,
        |user| MessagePage {
            signed_in: false,
            notice: Some(Notice::success(format!("{} is confirmed.", user.email.as_str()))),
            heading: "Email confirmed",
            text: None,
            link: Some(Link {
                href: "/",
                text: "Go to your account",
            }),
        },
    )
    .await
}

// ---------------------------------------------------------------- mailed links

/// A mailed link's page (`template`, a button holding `token`): only the button (a POST)
/// spends the token, so a mail scanner following links cannot. Its address (the token)
/// never leaves as a referrer.
fn link_page(state: &AppState, headers: &HeaderMap, visit: &Visit, template: &str, token: String) -> Response {
    let page = FormPage {
        token: Some(token),
        ..FormPage::default()
    };
    referrer_stays_here(blank(state, headers, visit, template, page))
}

/// What a mailed link's button posts.
#[derive(Deserialize)]
pub(crate) struct LinkForm {
    token: String,
    #[serde(default)]
    csrf: String,
}

/// Answers a mailed link's button: refused without this page's CSRF token (`heading`
/// names the page); otherwise `spend` uses the token, and the answer is `done`'s page, or
/// the link's page (`template`) again with the error, the token kept for another try.
async fn answer_link<T>(
    state: &AppState,
    headers: &HeaderMap,
    visit: &Visit,
    form: LinkForm,
    (heading, template): (&'static str, &'static str),
    spend: impl AsyncFnOnce(&str) -> Result<T, AuthError>,
    done: impl FnOnce(T) -> MessagePage,
) -> Response {
    if !visit.genuine(state, headers, &form.csrf) {
        return referrer_stays_here(refused(state, visit, heading));
    }
    referrer_stays_here(match spend(&form.token).await {
        Ok(value) => message_page(state, StatusCode::OK, done(value)),
        Err(error) => {
            let page = FormPage {
                token: Some(form.token),
                notice: Some(Notice::error(say(&error))),
                ..FormPage::default()
            };
            failed(state, headers, visit, template, page, &error)
        }
    })
}

/// `POST /ui/email/verify/request`: mails the signed-in account a confirmation link.
pub(crate) async fn verify_request_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    visit: Visit,
    Client(client): Client,
    PageForm(form): PageForm<CsrfForm>,
) -> Response {
    if !visit.genuine(&state, &headers, &form.csrf) {
        return refused(&state, &visit, "Confirm your email");
    }
    let Some(me) = visit.me() else {
        return to_sign_in();
    };
    match state.auth.request_email_verification(me.user.id, &client).await {
        Ok(delivery) => {
            // Over the mail limits nothing is sent, and the page says the same: the
            // newest link sent within them still works.
            if let Some(delivery) = delivery {
                state.mailer.send_later(Mail::Link(delivery));
            }
            Redirect::to("/?done=verification-sent").into_response()
        }
        Err(error) => account_error(&state, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_by_browser_and_system() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(device(Some(firefox)), "Firefox on Linux");
        let chrome_mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(device(Some(chrome_mac)), "Chrome on macOS");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
        assert_eq!(device(Some(edge)), "Edge on Windows");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
        assert_eq!(device(Some(iphone)), "Safari on iOS");
        assert_eq!(device(Some("curl/8.5.0")), "curl");
        assert_eq!(device(Some(" ")), "Unknown device");
        assert_eq!(device(None), "Unknown device");
    }

    #[test]
    fn messages_are_sentences() {
        assert_eq!(sentence("invalid or expired token"), "Invalid or expired token.");
        assert_eq!(sentence("Done."), "Done.");
        assert_eq!(
            say(&AuthError::InvalidCredentials),
            "The email or password is not right."
        );
    }

    #[test]
    fn only_known_keys_say_anything_after_a_redirect() {
        assert!(done_notice(Some("password-changed")).is_some());
        assert_eq!(done_notice(Some("<script>")), None);
        assert_eq!(done_notice(None), None);
    }

    #[test]
    fn times_are_shown_in_utc_to_the_minute() {
        let at = time::macros::datetime!(2026-12-03 17:40:59 +01:00);
        assert_eq!(moment(at), "2026-12-03 16:40 UTC");
        assert_eq!(date(at), "2026-12-03");
    }
}
