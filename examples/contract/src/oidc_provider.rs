//! A real OpenID Provider for the sign-in tests: panva's certified `oidc-provider` (npm),
//! started from `oidc-provider/provider.mjs` beside this crate on a free loopback port, and
//! a browserless driver of its development login and consent forms.
//!
//! The provider needs `node` and the fixture's `node_modules`
//! (`npm ci --prefix examples/contract/oidc-provider`). Without them,
//! [`OidcProvider::start_or_skip`] skips with a notice outside CI and fails in CI.
//!
//! ```ignore
//! let client = Client { id: "app".into(), secret: "app-secret".into(), redirect_uris: vec![callback] };
//! let Some(provider) = OidcProvider::start_or_skip(&[client]).await else { return };
//! let http = OidcProvider::browser();
//! // ... our server redirects `http` to the provider's authorization URL ...
//! let callback = provider.sign_in(&http, &authorize_url, "alice@example.com").await;
//! ```

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;
use serde_json::json;

/// How long the provider may take to print its `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The password typed in the development login form: any is accepted.
const ANY_PASSWORD: &str = "any password will do";

/// A client registered at the provider (confidential, `client_secret_basic`, the
/// authorization code grant with PKCE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// `client_id`.
    pub id: String,
    /// `client_secret`.
    pub secret: String,
    /// The exact redirect URIs the provider accepts.
    pub redirect_uris: Vec<String>,
}

/// A running `oidc-provider`, killed on drop.
///
/// Accounts exist for any login typed in its login form: `sub` is `user-<login, lowercased>`,
/// `email` the login (when it has an `@`), `email_verified` true, except for logins
/// `unverified+<email>`, whose `email` is `<email>` with `email_verified` false; `name` is the
/// part before the `@`. Scopes `openid email profile`; the ID token carries the scopes' claims.
pub struct OidcProvider {
    /// The issuer, `http://127.0.0.1:<port>`, without a trailing slash.
    pub issuer: String,
    clients: Vec<Client>,
    child: Child,
    /// Held open: the provider exits when it closes, so it ends with this process even when
    /// no destructor runs (a test binary killed by a signal).
    _stdin: Option<ChildStdin>,
    log: Arc<Mutex<String>>,
    http: reqwest::Client,
}

/// The fixture's folder, `examples/contract/oidc-provider`.
fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc-provider")
}

/// What is missing to run the provider, if anything.
fn missing_prerequisite() -> Option<String> {
    let node = Command::new("node").arg("--version").stdin(Stdio::null()).output();
    if !node.is_ok_and(|output| output.status.success()) {
        return Some("`node` is not on the PATH".to_owned());
    }
    let package = fixture_dir().join("node_modules/oidc-provider/package.json");
    if !package.is_file() {
        return Some(format!(
            "{} is missing: run `npm ci --prefix examples/contract/oidc-provider`",
            package.display()
        ));
    }
    None
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

impl OidcProvider {
    /// Starts the provider with `clients` registered; panics if it cannot (its log in the
    /// message), or if `node` or the fixture's `node_modules` is missing.
    pub async fn start(clients: &[Client]) -> OidcProvider {
        if let Some(missing) = missing_prerequisite() {
            panic!("cannot start the OpenID provider: {missing}");
        }
        Self::spawn(clients).await
    }

    /// Like [`OidcProvider::start`], but `None`, with a notice, when `node` or the fixture's
    /// `node_modules` is missing outside CI (env `CI` unset); in CI that panics.
    pub async fn start_or_skip(clients: &[Client]) -> Option<OidcProvider> {
        if let Some(missing) = missing_prerequisite() {
            if in_ci() {
                panic!("the OpenID provider is required in CI: {missing}");
            }
            eprintln!("notice: skipping an OpenID Connect test: {missing}");
            return None;
        }
        Some(Self::spawn(clients).await)
    }

    async fn spawn(clients: &[Client]) -> OidcProvider {
        Self::spawn_on(clients, 0).await
    }

    /// Stops the provider (SIGKILL), as an outage does; [`OidcProvider::start_again`]
    /// brings it back at the same issuer.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the provider again after [`OidcProvider::stop`], on the same port (so the
    /// same issuer) with the same clients, and new signing keys.
    pub async fn start_again(&mut self) {
        let port = Url::parse(&self.issuer).unwrap().port().unwrap();
        let next = Self::spawn_on(&self.clients, port).await;
        assert_eq!(next.issuer, self.issuer);
        *self = next;
    }

    async fn spawn_on(clients: &[Client], port: u16) -> OidcProvider {
        let registered = clients.to_vec();
        let clients: Vec<_> = clients
            .iter()
            .map(|client| {
                json!({
                    "client_id": client.id,
                    "client_secret": client.secret,
                    "redirect_uris": client.redirect_uris,
                })
            })
            .collect();
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(fixture_dir())
            .env("PORT", port.to_string())
            .env("CLIENTS", serde_json::to_string(&clients).unwrap())
            .env("EXIT_ON_STDIN_CLOSE", "1")
            .env_remove("ISSUER_HOST")
            .env_remove("DEBUG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let log = Arc::new(Mutex::new(String::new()));
        // Both pipes are drained for the provider's whole life (a full pipe would stall it);
        // the first `listening` line on stdout is the issuer.
        let (issuer_found, issuer) = tokio::sync::oneshot::channel();
        let mut issuer_found = Some(issuer_found);
        let drain = |stream: Box<dyn Read + Send>, mut on_line: Box<dyn FnMut(&str) + Send>| {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    on_line(&line);
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            })
        };
        let readers = [
            drain(
                Box::new(child.stdout.take().unwrap()),
                Box::new(move |line| {
                    if let Some(issuer) = line.strip_prefix("listening ")
                        && let Some(found) = issuer_found.take()
                    {
                        let _ = found.send(issuer.trim().to_owned());
                    }
                }),
            ),
            drain(Box::new(child.stderr.take().unwrap()), Box::new(|_| {})),
        ];
        // An early exit drops the sender: no need to wait out the timeout.
        match tokio::time::timeout(START_TIMEOUT, issuer).await {
            Ok(Ok(issuer)) => OidcProvider {
                issuer,
                clients: registered,
                child,
                _stdin: stdin,
                log,
                http: crate::client(),
            },
            outcome => {
                let _ = child.kill();
                let status = child
                    .wait()
                    .map_or_else(|error| error.to_string(), |status| status.to_string());
                for reader in readers {
                    let _ = reader.join();
                }
                let why = if outcome.is_err() {
                    format!("no `listening` line within {START_TIMEOUT:?}")
                } else {
                    "it exited".to_owned()
                };
                panic!(
                    "the OpenID provider did not start ({why}; {status}):\n{}",
                    log.lock().unwrap()
                );
            }
        }
    }

    /// The discovery document's URL, `<issuer>/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// What the provider printed so far (stdout and stderr): its warnings and errors.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Spoils the ID token of the provider's next token-endpoint answer, once:
    /// - `other-audience`: `aud` is `someone-else` (no `azp`), signed with the real key;
    /// - `expired`: `iat` two hours ago, `exp` one hour ago, signed with the real key;
    /// - `future-iat`: `iat` (and `exp` with it) an hour ahead, signed with the real key;
    /// - `tampered`: `sub` changed in the payload, the original signature kept;
    /// - `previous`: the ID token the provider issued before (another flow's `nonce`);
    ///   panics if it has issued none yet;
    /// - `unknown-key`: signed with a fresh key whose `kid` is not in the JWKS.
    pub async fn set_next_id_token(&self, mode: &str) {
        let response = self
            .http
            .post(format!("{}/__test/next-id-token", self.issuer))
            .json(&json!({ "mode": mode }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, 204, "setting the next ID token to {mode}: {text}");
    }

    /// Forgets a [`OidcProvider::set_next_id_token`] not used yet.
    pub async fn reset(&self) {
        let response = self
            .http
            .post(format!("{}/__test/reset", self.issuer))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "resetting the OpenID provider");
    }

    /// An HTTP client as [`OidcProvider::sign_in`] needs one: a cookie store (for our
    /// server's cookies and the provider's), no automatic redirects, no proxy.
    pub fn browser() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    /// Signs in as `login` from the provider's `authorize_url`, as a browser would: follows
    /// the provider's redirects, fills its login form (any password) and submits its consent
    /// form, and returns the first redirect away from the provider (the relying party's
    /// callback with `code` and `state`, or with `error`) without requesting it.
    ///
    /// `http` must keep cookies and not follow redirects (see [`OidcProvider::browser`]).
    /// Panics if the provider shows an error page, or if no login form appeared (its session
    /// cookie already signed someone in: use a fresh client per user, or
    /// [`OidcProvider::continue_session`]) and the redirect carries no `error`.
    pub async fn sign_in(&self, http: &reqwest::Client, authorize_url: &str, login: &str) -> Url {
        self.drive(http, authorize_url, Some(login)).await
    }

    /// Like [`OidcProvider::sign_in`] for a client already signed in at the provider: no
    /// login form is expected (one that appears is a panic); a consent form is submitted.
    pub async fn continue_session(&self, http: &reqwest::Client, authorize_url: &str) -> Url {
        self.drive(http, authorize_url, None).await
    }

    async fn drive(&self, http: &reqwest::Client, authorize_url: &str, login: Option<&str>) -> Url {
        let provider = Url::parse(&self.issuer).unwrap().origin();
        let mut url = Url::parse(authorize_url).unwrap();
        assert_eq!(
            url.origin(),
            provider,
            "{authorize_url} is not on the provider {}",
            self.issuer
        );
        let mut request = http.get(url.clone());
        let mut login_form_seen = false;
        // Login and consent are two forms and about six redirects; more is a loop.
        for _ in 0..20 {
            let response = request
                .send()
                .await
                .unwrap_or_else(|error| panic!("requesting {url} at the OpenID provider: {error}"));
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_else(|| panic!("{url} answered {status} without a Location"));
                let next = url.join(location).unwrap();
                if next.origin() != provider {
                    let error = next.query_pairs().any(|(key, _)| key == "error");
                    assert!(
                        login_form_seen || login.is_none() || error,
                        "the provider signed in without showing its login form (a provider \
                         session in this client's cookies?), so not as {login:?}: {next}"
                    );
                    return next;
                }
                // Every redirect of the provider's is to be followed with a GET (303s after
                // the forms' POSTs).
                url = next;
                request = http.get(url.clone());
                continue;
            }
            let page = response.text().await.unwrap_or_default();
            assert!(
                status.is_success(),
                "the OpenID provider answered {url} with {status}: {}",
                page_text(&page)
            );
            let form = Form::first_in(&page).unwrap_or_else(|| {
                panic!(
                    "the OpenID provider's page at {url} has no form and no redirect: {}",
                    page_text(&page)
                )
            });
            let mut fields = form.fields;
            if fields.iter().any(|(name, _)| name == "login") {
                let login = login
                    .unwrap_or_else(|| panic!("the OpenID provider asks for a login at {url}, but none was given"));
                login_form_seen = true;
                for (name, value) in &mut fields {
                    match name.as_str() {
                        "login" => *value = login.to_owned(),
                        "password" => *value = ANY_PASSWORD.to_owned(),
                        _ => {}
                    }
                }
            }
            let action = url.join(&form.action).unwrap();
            url = action;
            request = http.post(url.clone()).form(&fields);
        }
        panic!("the OpenID provider kept redirecting or showing forms; last at {url}");
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first `<form>` of a page: its action (empty: the page itself) and its named inputs
/// with their values. The provider's pages are its own simple, well-formed templates.
struct Form {
    action: String,
    fields: Vec<(String, String)>,
}

impl Form {
    fn first_in(html: &str) -> Option<Form> {
        let lower = html.to_ascii_lowercase();
        let start = lower.find("<form")?;
        let end = lower[start..].find("</form").map_or(html.len(), |end| start + end);
        let (form_tag, _) = tag_at(html, start)?;
        let action = attribute(form_tag, "action").unwrap_or_default();
        let mut fields = Vec::new();
        let mut at = start;
        while let Some(found) = lower[at..end].find("<input") {
            let (tag, next) = tag_at(html, at + found)?;
            at = next;
            if let Some(name) = attribute(tag, "name") {
                fields.push((name, attribute(tag, "value").unwrap_or_default()));
            }
        }
        Some(Form { action, fields })
    }
}

/// The tag starting at `start` (up to its `>`, quotes respected) and the index after it.
fn tag_at(html: &str, start: usize) -> Option<(&str, usize)> {
    let mut quote = None;
    for (offset, c) in html[start..].char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(open), _) if c == open => quote = None,
            (None, '>') => return Some((&html[start..start + offset], start + offset + 1)),
            _ => {}
        }
    }
    None
}

/// An attribute's value in a tag's text, entities decoded; `Some("")` for a bare attribute.
fn attribute(tag: &str, wanted: &str) -> Option<String> {
    // Skip the tag's name, then read `name`, `name=value`, `name="value"` or `name='value'`.
    let mut rest = tag.trim_start_matches('<');
    rest = rest.trim_start_matches(|c: char| !c.is_whitespace());
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if rest.is_empty() {
            return None;
        }
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        rest = rest[name_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (raw, remaining) = match after.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    let inner = &after[1..];
                    let close = inner.find(quote).unwrap_or(inner.len());
                    (&inner[..close], inner.get(close + 1..).unwrap_or(""))
                }
                _ => {
                    let close = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..close], &after[close..])
                }
            };
            value = decode_entities(raw);
            rest = remaining;
        }
        if name.eq_ignore_ascii_case(wanted) {
            return Some(value);
        }
    }
}

/// The entities an HTML template escapes attribute values with.
fn decode_entities(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A page's visible text, for a panic message: no styles, no tags, spaces collapsed.
fn page_text(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        text.push(' ');
        let skip_to = if rest[open..].to_ascii_lowercase().starts_with("<style") {
            "</style>"
        } else {
            ">"
        };
        rest = rest[open..]
            .find(skip_to)
            .map_or("", |close| &rest[open + close + skip_to.len()..]);
    }
    text.push_str(rest);
    let text = decode_entities(&text.split_whitespace().collect::<Vec<_>>().join(" "));
    text.chars().take(2000).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_read_with_their_fields() {
        let page = r#"<h1>Sign-in</h1><FORM autocomplete="off" action="http://127.0.0.1:1/interaction/a?x=1&amp;y=2" method="post">
  <input type="hidden" name="prompt" value="login"/>
  <input required type="text" name="login" placeholder="Enter any login" autofocus="on">
  <input required type='password' name=password placeholder="and > password">
  <input type="checkbox" disabled>
  <button type="submit">Sign-in</button></form><form action="/other"><input name="no"></form>"#;
        let form = Form::first_in(page).unwrap();
        assert_eq!(form.action, "http://127.0.0.1:1/interaction/a?x=1&y=2");
        assert_eq!(
            form.fields,
            [("prompt", "login"), ("login", ""), ("password", "")].map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert!(Form::first_in("<p>no form</p>").is_none());
    }

    #[test]
    fn page_text_drops_styles_and_tags() {
        let page = "<html><head><style>body { x: y }</style></head><body><h1>oops!</h1>\n<pre>invalid_redirect_uri &amp; more</pre></body></html>";
        assert_eq!(page_text(page), "oops! invalid_redirect_uri & more");
    }
}
