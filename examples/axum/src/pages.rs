//! Browser pages: plain server-rendered HTML forms over a cookie session.
//!
//! - The cookie holds a random web-session id (256 bits, `HttpOnly`, `SameSite=Lax`, and
//!   `Secure` with the `__Host-` prefix when `AUTH_PUBLIC_URL` is HTTPS). The server maps it
//!   to the account's access and refresh tokens, which never reach the browser's script.
//!   Login always issues a new id (no session fixation).
//! - Every form carries a CSRF token: an HMAC, under a random key of this process, of a
//!   nonce kept in a second cookie and of the browser's session id while it is logged
//!   in. Over plain HTTP a network attacker can plant any cookie (only the `__Host-`
//!   prefix forbids it), so a plain double submit (field = cookie) would let it choose
//!   both; it cannot compute the MAC. Every form POST must also come from this site by
//!   its `Origin` and `Sec-Fetch-Site` headers, when the browser sends them: that refuses
//!   a genuine anonymous token the attacker fetched for itself and replays from its page.
//! - Every rule is `AuthService`'s: these handlers only translate forms and pages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use auth_core::{AuthError, ClientInfo, LoginOutcome, Password, SessionCheck};
use auth_http::{ErrorAnswer, SendMail};
use axum::extract::{FromRef, FromRequest, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::AppState;
use auth_axum::{ApiError, Client, Endpoints, body_bytes};

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
    /// Keys the CSRF tokens. Random per process: a restart expires the open forms, as it
    /// ends the page sessions they belong to.
    csrf_key: Hmac<Sha256>,
    /// `AUTH_PUBLIC_URL`'s origin (see [`origin_of`]), which a form's `Origin` may be.
    public_origin: Option<String>,
}

struct WebSession {
    access: String,
    refresh: String,
}

impl WebSessions {
    /// The sessions of a site at `public_url`.
    ///
    /// # Errors
    ///
    /// When the OS has no randomness for the CSRF key: the pages could not be safe.
    pub(crate) fn new(secure: bool, public_url: &str) -> std::io::Result<Self> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|error| std::io::Error::other(format!("no randomness for the page CSRF key: {error}")))?;
        let csrf_key = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|error| std::io::Error::other(format!("page CSRF key: {error}")))?;
        Ok(Self {
            inner: Arc::default(),
            secure,
            csrf_key,
            public_origin: origin_of(public_url),
        })
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

    /// The form token for the CSRF cookie's `nonce` in the browser that sent `headers`:
    /// HMAC(key, nonce ‖ 0 ‖ binding), hex. The binding is the id of the browser's page
    /// session while it is logged in, so a token taken from one session's page is
    /// worthless in another's, and a fixed label otherwise (the register and login pages).
    /// A session cookie naming no live session (planted, or ended) binds as anonymous:
    /// what an attacker may toss in beside its own nonce changes nothing, and a login
    /// form shown beside a stale cookie still works.
    fn csrf_token(&self, nonce: &str, headers: &HeaderMap) -> String {
        let mut mac = self.csrf_key.clone();
        mac.update(nonce.as_bytes());
        // Cookie values never hold a NUL: nonce and binding cannot run into each other.
        mac.update(&[0]);
        let live = cookie_value(headers, self.session_cookie()).filter(|id| self.map().contains_key(id));
        match live {
            // "session=" keeps an id from ever spelling the anonymous label.
            Some(id) => {
                mac.update(b"session=");
                mac.update(id.as_bytes());
            }
            None => mac.update(b"anonymous"),
        }
        hex(&mac.finalize().into_bytes())
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
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The origin of `url` as browsers serialize it in `Origin`: `scheme://host[:port]`,
/// lowercase, without a default port (`:80` on http, `:443` on https); `None` for any
/// other scheme or no host. Path, query and user info are dropped.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix(default_port).unwrap_or(&host);
    if host.is_empty() || host.starts_with(':') {
        return None;
    }
    Some(format!("{scheme}://{host}"))
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

/// The nonce in this browser's CSRF cookie, if it holds one of the length this server
/// gives (a planted one of that length passes here: it still needs its MAC).
fn csrf_nonce(sessions: &WebSessions, headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, sessions.csrf_cookie()).filter(|nonce| nonce.len() == 64)
}

/// The CSRF token for this browser's forms, and the cookie to set if it had no nonce.
fn csrf(sessions: &WebSessions, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match csrf_nonce(sessions, headers) {
        Some(nonce) => (sessions.csrf_token(&nonce, headers), None),
        None => {
            let nonce = random_token();
            let cookie = sessions.cookie(sessions.csrf_cookie(), &nonce, None);
            (sessions.csrf_token(&nonce, headers), Some(cookie))
        }
    }
}

/// Whether `submitted` is the token of the browser's nonce and session, compared in
/// constant time (a timing difference would let the MAC be guessed byte by byte).
fn csrf_ok(sessions: &WebSessions, headers: &HeaderMap, submitted: &str) -> bool {
    csrf_nonce(sessions, headers).is_some_and(|nonce| {
        let expected = sessions.csrf_token(&nonce, headers);
        bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
    })
}

/// Whether the browser says the form was sent from this site.
///
/// - `Sec-Fetch-Site`, when sent, must be `same-origin` or `none` (the person's own
///   navigation); `same-site` is refused too: a sibling subdomain is another site's code.
/// - `Origin`, when sent, must not be `null` (a sandboxed or `data:` page) and must be the
///   public URL's origin or the address the browser itself used (`Host`), so local runs on
///   the default public URL, or on a test address, still work. The `Host` fallback takes
///   either scheme: this server speaks plain HTTP, but a TLS proxy in front of it may pass
///   the Host through. It opens nothing to a foreign page: a browser's `Host` is always the
///   target's, so only a page of this very host could match it.
/// - Without either header (older browsers and non-browser clients) the MAC alone decides.
fn same_origin(sessions: &WebSessions, headers: &HeaderMap) -> bool {
    let site_ok = headers
        .get_all("sec-fetch-site")
        .iter()
        .all(|site| matches!(site.as_bytes(), b"same-origin" | b"none"));
    let host = headers.get(header::HOST).and_then(|host| host.to_str().ok());
    let origin_ok = headers.get_all(header::ORIGIN).iter().all(|origin| {
        let Some(origin) = origin.to_str().ok().and_then(origin_of) else {
            return false;
        };
        sessions.public_origin.as_deref() == Some(origin.as_str())
            || host.is_some_and(|host| {
                ["http", "https"]
                    .iter()
                    .any(|scheme| origin_of(&format!("{scheme}://{host}")).as_deref() == Some(origin.as_str()))
            })
    });
    site_ok && origin_ok
}

/// Whether a state-changing form POST may act: from this site, with its genuine token.
fn genuine(sessions: &WebSessions, headers: &HeaderMap, submitted: &str) -> bool {
    if !same_origin(sessions, headers) {
        tracing::info!("page form refused: sent from another site");
        return false;
    }
    if !csrf_ok(sessions, headers, submitted) {
        tracing::info!("page form refused: no valid CSRF token");
        return false;
    }
    true
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

/// A page form's fields. Axum's `Form` answers a bad body in `text/plain`; a person gets
/// the pages' HTML error page instead, with the status the API gives the same body: 413
/// over the size limit, 408 (closing the connection) past the body timeout, 400 for
/// anything else that is not a well-formed `application/x-www-form-urlencoded` body
/// holding the form's fields.
pub(crate) struct PageForm<T>(pub(crate) T);

impl<S, T> FromRequest<S> for PageForm<T>
where
    S: Send + Sync,
    Endpoints: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (content_type, body) = body_bytes(request, state)
            .await
            .map_err(|ApiError(answer)| unreadable(&answer))?;
        let bad = || unreadable(&ErrorAnswer::invalid_request("not a page form"));
        if !is_form(content_type.as_deref()) || !well_encoded(&body) {
            return Err(bad());
        }
        serde_urlencoded::from_bytes(&body).map(Self).map_err(|_| bad())
    }
}

/// `application/x-www-form-urlencoded`, any parameters, any case: what an HTML form sends.
fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Whether every `%` starts an escape of two hex digits and the decoded body is UTF-8.
/// `serde_urlencoded` keeps a broken escape as typed and replaces bytes that are not
/// UTF-8, so a mangled form would otherwise reach a handler as other text than was sent
/// (a password, say). A browser's form always passes.
fn well_encoded(body: &[u8]) -> bool {
    let digit = |byte: Option<&u8>| byte.and_then(|byte| char::from(*byte).to_digit(16));
    let mut decoded = Vec::with_capacity(body.len());
    let mut bytes = body.iter();
    while let Some(&byte) = bytes.next() {
        if byte == b'%' {
            let (Some(high), Some(low)) = (digit(bytes.next()), digit(bytes.next())) else {
                return false;
            };
            // Two hex digits: at most 255.
            decoded.push(u8::try_from(high * 16 + low).unwrap_or(u8::MAX));
        } else {
            decoded.push(byte);
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

/// The error page for a form body that could not be read, with `answer`'s status and
/// headers (`Connection: close` after a timeout).
fn unreadable(answer: &ErrorAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let text = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "This form is too large to send. Shorten what you typed and try again.",
        StatusCode::REQUEST_TIMEOUT => "This form took too long to arrive. Try again.",
        _ => "This form could not be read. Reload the page and try again.",
    };
    let body = format!("<p role=\"alert\">{text}</p>");
    let mut response = (status, Html(page("Form not sent", &body))).into_response();
    for (name, value) in answer.headers() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(HeaderName::from_static(name), value);
        }
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

/// The email of the browser's account, its session resumed by the core (refreshed when
/// its access token expired). A store outage shows as "not logged in" for this page
/// without ending the session; only a refused token or account does.
async fn current_email(state: &AppState, headers: &HeaderMap, client: &ClientInfo) -> Option<String> {
    let sessions = &state.pages;
    let id = cookie_value(headers, sessions.session_cookie())?;
    let entry = sessions.map().get(&id).cloned()?;
    let mut session = entry.lock().await;
    let resumed = state
        .auth
        .resume_session(&session.access, &session.refresh, client)
        .await;
    if let Some(pair) = resumed.refreshed {
        session.access = pair.access_token.expose_secret().to_owned();
        session.refresh = pair.refresh_token.expose_secret().to_owned();
    }
    match resumed.check {
        SessionCheck::Live(me) => Some(me.user.email.as_str().to_owned()),
        SessionCheck::Unchecked(error) => {
            tracing::warn!(code = error.code(), "page session not checked now");
            None
        }
        SessionCheck::Ended(_) => {
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
    PageForm(form): PageForm<CredentialsForm>,
) -> Response {
    if !genuine(&state.pages, &headers, &form.csrf) {
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
    PageForm(form): PageForm<CredentialsForm>,
) -> Response {
    let sessions = &state.pages;
    if !genuine(sessions, &headers, &form.csrf) {
        return refused("Log in");
    }
    match state
        .auth
        .login(&form.email, Password::new(form.password), &client)
        .await
        .and_then(LoginOutcome::signed_in)
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
            // A new CSRF nonce with the new session.
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
    PageForm(form): PageForm<CsrfForm>,
) -> Response {
    let sessions = &state.pages;
    if !genuine(sessions, &headers, &form.csrf) {
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
    PageForm(form): PageForm<ForgotForm>,
) -> Response {
    if !genuine(&state.pages, &headers, &form.csrf) {
        return refused("Forgot password");
    }
    let text = match state.auth.request_password_reset(&form.email, &client).await {
        Ok(delivery) => {
            if let Some(delivery) = delivery {
                state.mailer.send_later(delivery);
            }
            auth_http::api::FORGOT_ANSWER.to_owned()
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
    PageForm(form): PageForm<ResetForm>,
) -> Response {
    if !genuine(&state.pages, &headers, &form.csrf) {
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
    PageForm(form): PageForm<VerifyForm>,
) -> Response {
    if !genuine(&state.pages, &headers, &form.csrf) {
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
        let secure = WebSessions::new(true, "https://auth.example.test").unwrap();
        let cookie = secure.cookie(secure.session_cookie(), "v", None);
        assert_eq!(cookie, "__Host-session=v; Path=/; HttpOnly; SameSite=Lax; Secure");
        let local = WebSessions::new(false, "http://127.0.0.1:8000").unwrap();
        assert_eq!(
            local.cookie(local.csrf_cookie(), "v", Some(0)),
            "csrf=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        );
    }

    #[test]
    fn origins_are_scheme_host_and_port_without_the_default_port() {
        assert_eq!(
            origin_of("https://Auth.Example.Test").as_deref(),
            Some("https://auth.example.test")
        );
        assert_eq!(
            origin_of("https://auth.example.test:443/app?x#y").as_deref(),
            Some("https://auth.example.test")
        );
        assert_eq!(origin_of("http://127.0.0.1:80").as_deref(), Some("http://127.0.0.1"));
        assert_eq!(
            origin_of("http://127.0.0.1:443").as_deref(),
            Some("http://127.0.0.1:443")
        );
        assert_eq!(
            origin_of("https://user@[::1]:8443").as_deref(),
            Some("https://[::1]:8443")
        );
        for not_an_origin in ["null", "ftp://example.test", "https://", "https://:443", "example.test"] {
            assert_eq!(origin_of(not_an_origin), None, "{not_an_origin}");
        }
    }

    fn with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn forms_must_come_from_the_public_origin_or_the_addressed_host() {
        let sessions = WebSessions::new(false, "https://auth.example.test").unwrap();
        let host = ("host", "127.0.0.1:8000");
        for accepted in [
            vec![host],
            vec![host, ("sec-fetch-site", "same-origin")],
            vec![host, ("sec-fetch-site", "none")],
            vec![host, ("origin", "https://auth.example.test")],
            vec![host, ("origin", "http://127.0.0.1:8000")],
            vec![host, ("origin", "https://127.0.0.1:8000")],
            vec![("origin", "https://auth.example.test")],
        ] {
            assert!(same_origin(&sessions, &with(&accepted)), "{accepted:?}");
        }
        for refused in [
            vec![host, ("sec-fetch-site", "cross-site")],
            vec![host, ("sec-fetch-site", "same-site")],
            vec![
                host,
                ("sec-fetch-site", "same-origin"),
                ("sec-fetch-site", "cross-site"),
            ],
            vec![host, ("origin", "null")],
            vec![host, ("origin", "https://evil.example")],
            vec![host, ("origin", "http://auth.example.test")],
            vec![host, ("origin", "http://127.0.0.1:8001")],
            vec![("origin", "http://127.0.0.1:8000")],
            vec![
                host,
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ],
        ] {
            assert!(!same_origin(&sessions, &with(&refused)), "{refused:?}");
        }
    }

    #[test]
    fn the_csrf_token_is_the_mac_of_the_nonce_and_the_session() {
        let sessions = WebSessions::new(false, "http://127.0.0.1:8000").unwrap();
        let nonce = "ab".repeat(32);
        let anonymous = with(&[]);
        let token = sessions.csrf_token(&nonce, &anonymous);
        assert_eq!(token.len(), 64);
        assert_ne!(token, nonce);
        assert_eq!(token, sessions.csrf_token(&nonce, &anonymous), "deterministic");
        let session = || WebSession {
            access: String::new(),
            refresh: String::new(),
        };
        let (first, _) = sessions.insert(session());
        let (second, _) = sessions.insert(session());
        let cookie = |id: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, HeaderValue::from_str(&format!("session={id}")).unwrap());
            headers
        };
        let first_token = sessions.csrf_token(&nonce, &cookie(&first));
        assert_ne!(token, first_token, "bound to the session");
        assert_ne!(first_token, sessions.csrf_token(&nonce, &cookie(&second)));
        assert_eq!(
            token,
            sessions.csrf_token(&nonce, &cookie("planted")),
            "a cookie naming no live session is anonymous"
        );
        assert_ne!(
            token,
            sessions.csrf_token(&"cd".repeat(32), &anonymous),
            "bound to the nonce"
        );
        let other_process = WebSessions::new(false, "http://127.0.0.1:8000").unwrap();
        assert_ne!(token, other_process.csrf_token(&nonce, &anonymous), "keyed");

        let cookie = HeaderValue::from_str(&format!("csrf={nonce}")).unwrap();
        let mut browser = HeaderMap::new();
        browser.insert(header::COOKIE, cookie);
        assert!(csrf_ok(&sessions, &browser, &token));
        assert!(
            !csrf_ok(&sessions, &browser, &nonce),
            "the cookie's own value is no token"
        );
        assert!(!csrf_ok(&sessions, &browser, ""));
        assert!(!csrf_ok(&sessions, &anonymous, &token), "no cookie, no token");
    }

    #[test]
    fn page_forms_must_be_urlencoded_and_well_escaped() {
        for form in [
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-URLEncoded; charset=UTF-8",
        ] {
            assert!(is_form(Some(form)), "{form}");
        }
        for other in [None, Some("text/plain"), Some("multipart/form-data; boundary=x")] {
            assert!(!is_form(other), "{other:?}");
        }
        for good in ["", "a=b&c=", "email=a%40b.example&password=%C3%A9t%C3%A9+x", "x=%2a%2A"] {
            assert!(well_encoded(good.as_bytes()), "{good}");
        }
        for bad in ["a=%zz", "a=%4", "a=%", "a=%ff", "a=%C3", "a=%C3=%A9"] {
            assert!(!well_encoded(bad.as_bytes()), "{bad}");
        }
        assert!(!well_encoded(b"a=\xff"), "raw bytes must be UTF-8 too");
    }
}
