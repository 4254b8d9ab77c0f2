//! Browser pages: plain server-rendered HTML forms over a cookie session.
//!
//! - The cookie holds a random web-session id (256 bits, `HttpOnly`, `SameSite=Lax`, and
//!   `Secure` with the `__Host-` prefix when `AUTH_PUBLIC_URL` is HTTPS). The server maps it
//!   to the account's access and refresh tokens, which never reach the browser's script.
//!   Login always issues a new id (no session fixation).
//! - Every form carries a CSRF token, checked against a second cookie (double submit):
//!   a cross-site form cannot read it, so it cannot send it.
//! - Every rule is `AuthService`'s: these handlers only translate forms and pages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use auth_core::{AuthError, ClientInfo, Password, TokenError};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::glue::Client;

/// The most web sessions kept in memory; the oldest goes first beyond it.
const MAX_WEB_SESSIONS: usize = 100_000;

/// Server-side state of the browser sessions.
#[derive(Clone)]
pub(crate) struct WebSessions {
    /// Each session behind its own async lock: a browser's concurrent page loads after
    /// its access token expired refresh once, not once each (a second refresh with the
    /// same token would read as reuse and end the session).
    inner: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<WebSession>>>>>,
    secure: bool,
}

struct WebSession {
    access: String,
    refresh: String,
}

impl WebSessions {
    pub(crate) fn new(secure: bool) -> Self {
        Self {
            inner: Arc::default(),
            secure,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<WebSession>>>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn session_cookie(&self) -> &'static str {
        if self.secure { "__Host-session" } else { "session" }
    }

    fn csrf_cookie(&self) -> &'static str {
        if self.secure { "__Host-csrf" } else { "csrf" }
    }

    fn cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let age = max_age.map_or(String::new(), |age| format!("; Max-Age={age}"));
        HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{age}"))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// Stores `session` under a new id; returns the id, and the session pushed out to
    /// make room, if any (its core session must be ended too).
    fn insert(&self, session: WebSession) -> (String, Option<Arc<tokio::sync::Mutex<WebSession>>>) {
        let id = random_token();
        let mut map = self.map();
        let mut evicted = None;
        if map.len() >= MAX_WEB_SESSIONS {
            // Rare (a hundred thousand browsers): any one will do, without scanning for
            // the oldest under the lock.
            if let Some(victim) = map.keys().next().cloned() {
                evicted = map.remove(&victim);
            }
        }
        map.insert(id.clone(), Arc::new(tokio::sync::Mutex::new(session)));
        (id, evicted)
    }

    /// Forgets a browser session and ends its core session, off the request path.
    fn end(&self, state: &AppState, session: Arc<tokio::sync::Mutex<WebSession>>, client: &ClientInfo) {
        let (auth, client) = (Arc::clone(&state.auth), client.clone());
        tokio::spawn(async move {
            let refresh = session.lock().await.refresh.clone();
            if let Err(error) = auth.logout(&refresh, &client).await {
                tracing::warn!(code = error.code(), "could not end a replaced page session");
            }
        });
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // Without randomness no session can be safe: this one will never match a cookie.
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Headers every page carries: never framed (clickjacking), never cached (they show who
/// is logged in and carry CSRF tokens).
pub(crate) async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head><body><main>\
         <h1>{title}</h1>{body}<nav><a href=\"/\">Home</a> · <a href=\"/ui/register\">Register</a> · \
         <a href=\"/ui/login\">Log in</a> · <a href=\"/ui/password/forgot\">Forgot password</a></nav>\
         </main></body></html>",
        title = escape(title)
    )
}

/// The CSRF token of this browser, and the cookie to set if it had none.
fn csrf(sessions: &WebSessions, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie_value(headers, sessions.csrf_cookie()).filter(|token| token.len() == 64) {
        Some(token) => (token, None),
        None => {
            let token = random_token();
            let cookie = sessions.cookie(sessions.csrf_cookie(), &token, None);
            (token, Some(cookie))
        }
    }
}

fn csrf_ok(sessions: &WebSessions, headers: &HeaderMap, submitted: &str) -> bool {
    cookie_value(headers, sessions.csrf_cookie())
        .is_some_and(|cookie| !cookie.is_empty() && bool::from(cookie.as_bytes().ct_eq(submitted.as_bytes())))
}

fn form_page(
    sessions: &WebSessions,
    headers: &HeaderMap,
    title: &str,
    message: Option<&str>,
    fields: &str,
    action: &str,
) -> Response {
    let (token, set) = csrf(sessions, headers);
    let notice = message.map_or(String::new(), |m| format!("<p role=\"alert\">{}</p>", escape(m)));
    let body = format!(
        "{notice}<form method=\"post\" action=\"{action}\">{fields}\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
         <button type=\"submit\">{title}</button></form>",
    );
    let mut response = Html(page(title, &body)).into_response();
    if let Some(cookie) = set {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn refused(title: &str) -> Response {
    let body = "<p role=\"alert\">This form expired or did not come from this site. Reload it and try again.</p>";
    (StatusCode::FORBIDDEN, Html(page(title, body))).into_response()
}

/// The person's message for an error: the core's own safe text.
fn message(error: &AuthError) -> String {
    if error.is_server_error() {
        tracing::error!(code = error.code(), "a page request failed on the server side");
        "Something went wrong on our side. Please try again shortly.".to_owned()
    } else {
        error.to_string()
    }
}

// ---------------------------------------------------------------- home

pub(crate) async fn home(State(state): State<AppState>, headers: HeaderMap, Client(client): Client) -> Response {
    let who = current_email(&state, &headers, &client).await;
    let body = match who {
        Some(email) => format!(
            "<p>Logged in as <strong id=\"who\">{}</strong>.</p><p><a href=\"/ui/logout\">Log out</a></p>",
            escape(&email)
        ),
        None => "<p id=\"who\">Not logged in.</p>".to_owned(),
    };
    Html(page("Account", &body)).into_response()
}

/// The email of the browser's account, refreshing its access token when it expired.
/// A store outage shows as "not logged in" for this page without ending the session;
/// only a refused token or account does.
async fn current_email(state: &AppState, headers: &HeaderMap, client: &ClientInfo) -> Option<String> {
    let sessions = &state.pages;
    let id = cookie_value(headers, sessions.session_cookie())?;
    let entry = sessions.map().get(&id).cloned()?;
    let mut session = entry.lock().await;
    let outcome = match state.auth.authenticate(&session.access).await {
        Err(AuthError::InvalidToken(TokenError::Expired)) => match state.auth.refresh(&session.refresh, client).await {
            Ok(pair) => {
                session.access = pair.access_token.expose_secret().to_owned();
                session.refresh = pair.refresh_token.expose_secret().to_owned();
                state.auth.authenticate(&session.access).await
            }
            Err(error) => Err(error),
        },
        other => other,
    };
    match outcome {
        Ok(me) => Some(me.user.email.as_str().to_owned()),
        // Transient (an outage, a saturated pool, a limit): the session stays.
        Err(error) if error.is_server_error() || error.retry_after().is_some() => {
            tracing::warn!(code = error.code(), "page session not checked now");
            None
        }
        Err(_) => {
            sessions.map().remove(&id);
            None
        }
    }
}

// ---------------------------------------------------------------- register and login

const CREDENTIAL_FIELDS: &str = "<label>Email <input type=\"email\" name=\"email\" autocomplete=\"username\" required></label>\
     <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label>";

#[derive(Deserialize)]
pub(crate) struct CredentialsForm {
    email: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn register_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    form_page(
        &state.pages,
        &headers,
        "Register",
        None,
        CREDENTIAL_FIELDS,
        "/ui/register",
    )
}

pub(crate) async fn register_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Client(client): Client,
    axum::Form(form): axum::Form<CredentialsForm>,
) -> Response {
    if !csrf_ok(&state.pages, &headers, &form.csrf) {
        return refused("Register");
    }
    match state
        .auth
        .register(&form.email, Password::new(form.password), &client)
        .await
    {
        Ok(_) => Redirect::to("/ui/login?registered=1").into_response(),
        Err(error) => {
            let text = message(&error);
            form_page(
                &state.pages,
                &headers,
                "Register",
                Some(&text),
                CREDENTIAL_FIELDS,
                "/ui/register",
            )
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
    Query(query): Query<LoginQuery>,
) -> Response {
    let note = query.registered.map(|_| "Account created. Log in.");
    form_page(&state.pages, &headers, "Log in", note, CREDENTIAL_FIELDS, "/ui/login")
}

pub(crate) async fn login_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Client(client): Client,
    axum::Form(form): axum::Form<CredentialsForm>,
) -> Response {
    let sessions = &state.pages;
    if !csrf_ok(sessions, &headers, &form.csrf) {
        return refused("Log in");
    }
    match state
        .auth
        .login(&form.email, Password::new(form.password), &client)
        .await
    {
        Ok(success) => {
            // A fresh id at every login, whatever the browser held before; the session it
            // replaces ends in the core too.
            let replaced =
                cookie_value(&headers, sessions.session_cookie()).and_then(|old| sessions.map().remove(&old));
            let (id, evicted) = sessions.insert(WebSession {
                access: success.tokens.access_token.expose_secret().to_owned(),
                refresh: success.tokens.refresh_token.expose_secret().to_owned(),
            });
            for old in replaced.into_iter().chain(evicted) {
                sessions.end(&state, old, &client);
            }
            let mut response = Redirect::to("/").into_response();
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                sessions.cookie(sessions.session_cookie(), &id, None),
            );
            // A new CSRF token with the new session.
            headers.append(
                header::SET_COOKIE,
                sessions.cookie(sessions.csrf_cookie(), &random_token(), None),
            );
            response
        }
        Err(error) => {
            let text = message(&error);
            form_page(
                sessions,
                &headers,
                "Log in",
                Some(&text),
                CREDENTIAL_FIELDS,
                "/ui/login",
            )
        }
    }
}

// ---------------------------------------------------------------- logout

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn logout_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    form_page(&state.pages, &headers, "Log out", None, "", "/ui/logout")
}

pub(crate) async fn logout_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Client(client): Client,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    let sessions = &state.pages;
    if !csrf_ok(sessions, &headers, &form.csrf) {
        return refused("Log out");
    }
    let session = cookie_value(&headers, sessions.session_cookie()).and_then(|id| sessions.map().remove(&id));
    if let Some(session) = session {
        let refresh = session.lock().await.refresh.clone();
        if let Err(error) = state.auth.logout(&refresh, &client).await {
            tracing::warn!(code = error.code(), "logout could not end the session");
        }
    }
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        sessions.cookie(sessions.session_cookie(), "", Some(0)),
    );
    response
}

// ---------------------------------------------------------------- password reset

#[derive(Deserialize)]
pub(crate) struct ForgotForm {
    email: String,
    #[serde(default)]
    csrf: String,
}

const FORGOT_FIELDS: &str = "<label>Email <input type=\"email\" name=\"email\" required></label>";

pub(crate) async fn forgot_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    form_page(
        &state.pages,
        &headers,
        "Forgot password",
        None,
        FORGOT_FIELDS,
        "/ui/password/forgot",
    )
}

pub(crate) async fn forgot_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Client(client): Client,
    axum::Form(form): axum::Form<ForgotForm>,
) -> Response {
    if !csrf_ok(&state.pages, &headers, &form.csrf) {
        return refused("Forgot password");
    }
    let text = match state.auth.request_password_reset(&form.email, &client).await {
        Ok(delivery) => {
            if let Some(delivery) = delivery {
                state.mailer.send_later(delivery);
            }
            example_server::api::FORGOT_ANSWER.to_owned()
        }
        Err(error) => message(&error),
    };
    form_page(
        &state.pages,
        &headers,
        "Forgot password",
        Some(&text),
        FORGOT_FIELDS,
        "/ui/password/forgot",
    )
}

#[derive(Deserialize)]
pub(crate) struct ResetQuery {
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

fn reset_fields(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"token\" value=\"{}\">\
         <label>New password <input type=\"password\" name=\"new_password\" autocomplete=\"new-password\" required></label>",
        escape(token)
    )
}

/// The reset page carries the token in its URL: no Referer may take it elsewhere.
fn no_referrer(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

pub(crate) async fn reset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ResetQuery>,
) -> Response {
    no_referrer(form_page(
        &state.pages,
        &headers,
        "Set a new password",
        None,
        &reset_fields(&query.token),
        "/ui/password/reset",
    ))
}

pub(crate) async fn reset_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Client(client): Client,
    axum::Form(form): axum::Form<ResetForm>,
) -> Response {
    if !csrf_ok(&state.pages, &headers, &form.csrf) {
        return no_referrer(refused("Set a new password"));
    }
    let result = state
        .auth
        .reset_password(&form.token, Password::new(form.new_password), &client)
        .await;
    no_referrer(match result {
        Ok(()) => Html(page(
            "Password changed",
            "<p>Your password is changed and every session ended. <a href=\"/ui/login\">Log in</a>.</p>",
        ))
        .into_response(),
        Err(error) => {
            let text = message(&error);
            form_page(
                &state.pages,
                &headers,
                "Set a new password",
                Some(&text),
                &reset_fields(&form.token),
                "/ui/password/reset",
            )
        }
    })
}

// ---------------------------------------------------------------- email verification

/// The link in the mail opens a page; only its button (a POST) spends the token, so a
/// mail scanner following links cannot.
pub(crate) async fn verify_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ResetQuery>,
) -> Response {
    let fields = format!(
        "<input type=\"hidden\" name=\"token\" value=\"{}\">",
        escape(&query.token)
    );
    no_referrer(form_page(
        &state.pages,
        &headers,
        "Confirm your email",
        None,
        &fields,
        "/ui/email/verify",
    ))
}

#[derive(Deserialize)]
pub(crate) struct VerifyForm {
    token: String,
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn verify_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Client(client): Client,
    axum::Form(form): axum::Form<VerifyForm>,
) -> Response {
    if !csrf_ok(&state.pages, &headers, &form.csrf) {
        return no_referrer(refused("Confirm your email"));
    }
    no_referrer(match state.auth.verify_email(&form.token, &client).await {
        Ok(user) => Html(page(
            "Email confirmed",
            &format!("<p>{} is confirmed.</p>", escape(user.email.as_str())),
        ))
        .into_response(),
        Err(error) => {
            let text = message(&error);
            let fields = format!(
                "<input type=\"hidden\" name=\"token\" value=\"{}\">",
                escape(&form.token)
            );
            form_page(
                &state.pages,
                &headers,
                "Confirm your email",
                Some(&text),
                &fields,
                "/ui/email/verify",
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("xsession=1; session=abc; csrf=def"),
        );
        assert_eq!(cookie_value(&headers, "session").as_deref(), Some("abc"));
        assert_eq!(cookie_value(&headers, "csrf").as_deref(), Some("def"));
        assert_eq!(cookie_value(&headers, "missing"), None);
    }

    #[test]
    fn secure_cookies_use_the_host_prefix() {
        let secure = WebSessions::new(true);
        let cookie = secure.cookie(secure.session_cookie(), "v", None);
        assert_eq!(cookie, "__Host-session=v; Path=/; HttpOnly; SameSite=Lax; Secure");
        let local = WebSessions::new(false);
        assert_eq!(
            local.cookie(local.csrf_cookie(), "v", Some(0)),
            "csrf=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        );
    }
}
