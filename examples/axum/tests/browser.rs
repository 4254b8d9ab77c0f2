//! The pages in a real browser: headless Chromium driven through ChromeDriver (Debian's
//! `chromium` and `chromium-driver`, which `.ci/run` installs).
//!
//! One person's whole journey through every page: register (a refused attempt first),
//! sign in (a failed attempt first), the account page and its sessions, signing out
//! another device, the confirmation link from the outbox, a password change, signing out
//! everywhere, a forgotten password reset through the outbox link, and signing out. On
//! every page the test runs axe-core (`tests/browser/node_modules`, `npm ci` by `.ci/run`)
//! in the light and the dark scheme, at 1280 and at 360 px, and fails on a serious or
//! critical violation, on a page wider than 360 px at 360 px, and on any Content Security
//! Policy violation Chromium reports in its console. Screenshots of the main pages in the
//! four variants go to `AUTH_SCREENSHOTS_DIR` (default: a directory under the target
//! directory); `examples/axum/screenshots` holds the committed set, refreshed with
//! `AUTH_SCREENSHOTS_DIR=$PWD/examples/axum/screenshots cargo test -p example-axum --test browser`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use http_contract::{Backend, PASSWORD, Server, Target};
use serde_json::{Value, json};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

/// A ChromeDriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// `None` (with a notice) when ChromeDriver is not installed outside CI.
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|path| Path::new(path).exists());
        let Some(binary) = binary else {
            assert!(
                !in_ci(),
                "chromedriver is required in CI (apt-get install chromium chromium-driver)"
            );
            eprintln!("notice: skipping the browser test: chromedriver is not installed");
            return None;
        };
        let mut child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Self {
                    child,
                    url: format!("http://127.0.0.1:{port}"),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromedriver did not start");
    }

    async fn browser(&self) -> Client {
        self.browser_with(&[]).await
    }

    /// A browser started with `extra` arguments too.
    async fn browser_with(&self, extra: &[String]) -> Client {
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,900",
            "--lang=en-US",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend_from_slice(extra);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        // The console, where Chromium reports Content Security Policy violations.
        capabilities.insert("goog:loggingPrefs".to_owned(), json!({"browser": "ALL"}));
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A ChromeDriver extension command: a DevTools call, reading the console, or WebDriver's
/// WebAuthn extension (a virtual authenticator: add one, list or remove its credentials).
#[derive(Debug)]
enum Extension {
    Cdp(&'static str, Value),
    ConsoleLog,
    AddAuthenticator(Value),
    Credentials(String),
    RemoveCredentials(String),
}

impl WebDriverCompatibleCommand for Extension {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        match self {
            Self::Cdp(..) => base_url.join(&format!("session/{session}/goog/cdp/execute")),
            Self::ConsoleLog => base_url.join(&format!("session/{session}/se/log")),
            Self::AddAuthenticator(_) => base_url.join(&format!("session/{session}/webauthn/authenticator")),
            Self::Credentials(id) | Self::RemoveCredentials(id) => {
                base_url.join(&format!("session/{session}/webauthn/authenticator/{id}/credentials"))
            }
        }
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = match self {
            Self::Cdp(cmd, params) => json!({"cmd": cmd, "params": params}),
            Self::ConsoleLog => json!({"type": "browser"}),
            Self::AddAuthenticator(options) => options.clone(),
            Self::Credentials(_) => return (http::Method::GET, None),
            Self::RemoveCredentials(_) => return (http::Method::DELETE, None),
        };
        (http::Method::POST, Some(body.to_string()))
    }
}

/// The four ways each page is looked at.
const VARIANTS: [(u32, &str); 4] = [(1280, "light"), (1280, "dark"), (360, "light"), (360, "dark")];

/// The browser, with what every page is checked by.
struct Checker {
    browser: Client,
    axe: String,
    shots: PathBuf,
    written: BTreeSet<String>,
    pages: usize,
}

impl Checker {
    async fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        self.browser.issue_cmd(Extension::Cdp(cmd, params)).await.unwrap()
    }

    /// The console messages since the last call.
    async fn console(&self) -> Vec<String> {
        let entries = self.browser.issue_cmd(Extension::ConsoleLog).await.unwrap();
        entries
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    async fn csp_violations(&self) -> Vec<String> {
        self.console()
            .await
            .into_iter()
            .filter(|message| message.contains("Content Security Policy") || message.contains("Refused to"))
            .collect()
    }

    async fn show_as(&self, width: u32, scheme: &str, height: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}),
        )
        .await;
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        )
        .await;
    }

    /// Every check of the page the browser is on, which should be titled `heading`;
    /// with a screenshot of each variant named `shot` when given.
    async fn check(&mut self, heading: &str, shot: Option<&str>) {
        wait_for_text(&self.browser, "h1", heading).await;
        self.pages += 1;
        let violations = self.csp_violations().await;
        assert!(violations.is_empty(), "{heading}: CSP violations: {violations:#?}");
        let injected = self
            .browser
            .execute(&format!("{}\nreturn typeof axe;", self.axe), vec![])
            .await
            .unwrap();
        assert_eq!(injected, "object", "axe-core did not load");
        for (width, scheme) in VARIANTS {
            self.show_as(width, scheme, 900).await;
            let found = self
                .browser
                .execute_async(
                    "const done = arguments[arguments.length - 1];
                     axe.run(document, {resultTypes: ['violations']})
                       .then(result => done(result.violations.map(v => ({
                         id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}))))
                       .catch(error => done([{id: 'axe-error', impact: 'critical', help: String(error), nodes: []}]));",
                    vec![],
                )
                .await
                .unwrap();
            let violations = found.as_array().unwrap();
            for violation in violations {
                eprintln!("axe ({heading}, {width} px, {scheme}): {violation}");
            }
            let grave: Vec<&Value> = violations
                .iter()
                .filter(|violation| matches!(violation["impact"].as_str(), Some("serious" | "critical")))
                .collect();
            assert!(
                grave.is_empty(),
                "{heading} at {width} px, {scheme}: serious or critical accessibility violations: {grave:#?}"
            );
            let page_width = self
                .browser
                .execute("return document.documentElement.scrollWidth;", vec![])
                .await
                .unwrap();
            assert!(
                page_width.as_u64().unwrap() <= u64::from(width),
                "{heading} is {page_width} px wide in a {width} px window"
            );
            if let Some(shot) = shot {
                let height = self
                    .browser
                    .execute("return document.documentElement.scrollHeight;", vec![])
                    .await
                    .unwrap();
                let height = u32::try_from(height.as_u64().unwrap()).unwrap().max(600);
                self.show_as(width, scheme, height).await;
                let png = self.browser.screenshot().await.unwrap();
                let name = format!("{shot}-{width}-{scheme}.png");
                std::fs::write(self.shots.join(&name), png).unwrap();
                self.written.insert(name);
            }
        }
        self.cdp("Emulation.clearDeviceMetricsOverride", json!({})).await;
        self.cdp("Emulation.setEmulatedMedia", json!({"features": []})).await;
        let violations = self.csp_violations().await;
        assert!(violations.is_empty(), "{heading}: CSP violations: {violations:#?}");
    }

    /// Types `fields` into the form holding the first of them (or the first form) and
    /// presses its submit button labelled `button`.
    async fn submit(&self, fields: &[(&str, &str)], button: &str) {
        for (name, value) in fields {
            let input = self
                .browser
                .find(Locator::Css(&format!("input[name='{name}']")))
                .await
                .unwrap();
            input.clear().await.unwrap();
            input.send_keys(value).await.unwrap();
        }
        self.browser
            .find(Locator::XPath(&format!("//button[normalize-space()='{button}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn goto(&self, url: &str) {
        self.browser.goto(url).await.unwrap();
    }

    async fn value_of(&self, css: &str) -> String {
        let element = self.browser.find(Locator::Css(css)).await.unwrap();
        element.prop("value").await.unwrap().unwrap_or_default()
    }
}

/// Waits (the browser navigates asynchronously) until `css` holds `expected`.
async fn wait_for_text(browser: &Client, css: &str, expected: &str) {
    let mut seen = String::new();
    for _ in 0..100 {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            if text == expected {
                return;
            }
            seen = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{css} never said {expected:?} (last: {seen:?})\n{}",
        browser.source().await.unwrap()
    );
}

/// This server, on SQLite: the pages do not depend on the store.
const AXUM: Target = Target {
    binary: env!("CARGO_BIN_EXE_example-axum"),
    backend: Backend::Sqlite,
};

/// axe-core's script, installed by `npm ci` in `tests/browser`; `None` (with a notice)
/// outside CI when it is not.
fn axe_source() -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/axe-core/axe.min.js");
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(error) => {
            assert!(
                !in_ci(),
                "{}: {error}: run `npm ci --prefix examples/axum/tests/browser`",
                path.display()
            );
            eprintln!(
                "notice: skipping the browser test: axe-core is not installed (npm ci --prefix examples/axum/tests/browser)"
            );
            None
        }
    }
}

/// Signs `email` in through the API as another device would (an iPhone), returning its
/// refresh token.
async fn sign_in_elsewhere(server: &Server, email: &str, password: &str) -> String {
    let answer = http_contract::client()
        .post(server.url("/login"))
        .header(
            "user-agent",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        )
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let body: Value = answer.json().await.unwrap();
    body["refresh_token"].as_str().unwrap().to_owned()
}

/// Whether the session of `refresh` still lives (a refresh with it works).
async fn still_signed_in(server: &Server, refresh: &str) -> bool {
    let answer = http_contract::post_json(server, "/token/refresh", json!({"refresh_token": refresh}), None).await;
    answer.status == 200
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_works_is_accessible_in_both_schemes_at_both_widths_and_breaks_no_csp() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let Some(axe) = axe_source() else {
        return;
    };
    let shots = std::env::var_os("AUTH_SCREENSHOTS_DIR").map_or_else(
        || Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&shots).unwrap();
    // Plain HTTP on loopback: cookies without `Secure` (AUTH_COOKIE_SECURE=false).
    let server = Server::start(AXUM, &[("AUTH_COOKIE_SECURE", "false")]).unwrap();
    let mut page = Checker {
        browser: driver.browser().await,
        axe,
        shots: shots.clone(),
        written: BTreeSet::new(),
        pages: 0,
    };
    let email = "browser@example.com";

    // The welcome page, then registration: refused first, the address kept.
    page.goto(&server.url("/")).await;
    page.check("Welcome", Some("welcome")).await;
    page.goto(&server.url("/ui/register")).await;
    page.check("Create an account", Some("register")).await;
    page.submit(
        &[("email", "Browser@Example.com"), ("password", "short")],
        "Create account",
    )
    .await;
    wait_for_text(
        &page.browser,
        "#password-error",
        "Password must be at least 8 characters long.",
    )
    .await;
    page.check("Create an account", Some("register-error")).await;
    assert_eq!(page.value_of("#email").await, "Browser@Example.com");
    assert_eq!(page.value_of("#password").await, "", "a password is never sent back");
    page.submit(&[("password", PASSWORD)], "Create account").await;
    wait_for_text(&page.browser, "[role='status']", "Your account is created. Sign in.").await;
    page.check("Sign in", Some("login")).await;

    // A failed sign-in keeps the address, then the right password.
    page.submit(&[("email", email), ("password", "not the password")], "Sign in")
        .await;
    wait_for_text(&page.browser, "[role='alert']", "The email or password is not right.").await;
    page.check("Sign in", Some("login-error")).await;
    assert_eq!(page.value_of("#email").await, email);
    assert_eq!(page.value_of("#password").await, "");
    let phone = sign_in_elsewhere(&server, email, PASSWORD).await;
    page.submit(&[("password", PASSWORD)], "Sign in").await;
    wait_for_text(&page.browser, "#who", email).await;
    page.check("Your account", Some("account")).await;

    // The account's sessions: this browser and the phone; the phone signed out from here.
    let devices = page.browser.find_all(Locator::Css("ul.sessions li")).await.unwrap();
    assert_eq!(devices.len(), 2);
    wait_for_text(&page.browser, "ul.sessions .badge", "this device").await;
    page.submit(&[], "Sign out this device").await;
    wait_for_text(&page.browser, "[role='status']", "That device is signed out.").await;
    page.check("Your account", None).await;
    assert!(!still_signed_in(&server, &phone).await, "the phone is signed out");
    assert_eq!(
        page.browser
            .find_all(Locator::Css("ul.sessions li"))
            .await
            .unwrap()
            .len(),
        1
    );

    // Email confirmation through the link mailed to the outbox.
    wait_for_text(&page.browser, "dd .badge", "not verified").await;
    page.submit(&[], "Send a confirmation link").await;
    wait_for_text(
        &page.browser,
        "[role='status']",
        "A confirmation link is on its way to your address.",
    )
    .await;
    let (_, token) = http_contract::last_mail(&server.outbox(), "email_verification").await;
    page.goto(&server.url(&format!("/ui/email/verify?token={token}"))).await;
    page.check("Confirm your email", Some("verify")).await;
    page.submit(&[], "Confirm my email").await;
    page.check("Email confirmed", Some("email-confirmed")).await;
    page.goto(&server.url("/")).await;
    wait_for_text(&page.browser, "dd .badge", "verified").await;

    // A password change: the wrong current password is refused under its field; the
    // right one keeps this browser signed in and signs the others out.
    let phone = sign_in_elsewhere(&server, email, PASSWORD).await;
    page.goto(&server.url("/ui/password/change")).await;
    page.check("Change your password", Some("password-change")).await;
    let changed = "a changed passphrase";
    page.submit(
        &[("current_password", "not the password"), ("new_password", changed)],
        "Change the password",
    )
    .await;
    wait_for_text(
        &page.browser,
        "#current_password-error",
        "This is not your current password.",
    )
    .await;
    page.check("Change your password", None).await;
    page.submit(
        &[("current_password", PASSWORD), ("new_password", changed)],
        "Change the password",
    )
    .await;
    wait_for_text(
        &page.browser,
        "[role='status']",
        "Your password is changed. Your other devices are signed out.",
    )
    .await;
    wait_for_text(&page.browser, "#who", email).await;
    assert!(
        !still_signed_in(&server, &phone).await,
        "the other device is signed out"
    );

    // Signing out everywhere ends this browser's session and every other.
    let phone = sign_in_elsewhere(&server, email, changed).await;
    page.submit(&[], "Sign out everywhere").await;
    wait_for_text(&page.browser, "[role='status']", "You are signed out on every device.").await;
    page.check("Welcome", None).await;
    wait_for_text(&page.browser, "#who", "Not signed in.").await;
    assert!(!still_signed_in(&server, &phone).await);

    // A forgotten password, reset through the link mailed to the outbox.
    page.goto(&server.url("/ui/password/forgot")).await;
    page.check("Reset your password", Some("forgot")).await;
    page.submit(&[("email", email)], "Send the link").await;
    wait_for_text(&page.browser, "[role='status']", auth_http::api::FORGOT_ANSWER).await;
    page.check("Reset your password", None).await;
    let (_, token) = http_contract::last_mail(&server.outbox(), "password_reset").await;
    page.goto(&server.url(&format!("/ui/password/reset?token={token}")))
        .await;
    page.check("Set a new password", Some("reset")).await;
    page.submit(&[("new_password", "the reset passphrase")], "Set the password")
        .await;
    page.check("Password changed", None).await;
    page.goto(&server.url("/ui/login")).await;
    page.submit(&[("email", email), ("password", "the reset passphrase")], "Sign in")
        .await;
    wait_for_text(&page.browser, "#who", email).await;

    // Two-factor authentication: enrol by reading the key off the page (the code is
    // computed here, as an app would), then sign out and back in with a code, and once
    // with a recovery code.
    let passphrase = "the reset passphrase";
    page.goto(&server.url("/ui/mfa")).await;
    page.check("Two-factor authentication", Some("mfa-off")).await;
    page.submit(&[("password", passphrase)], "Set up an authenticator app")
        .await;
    page.check("Set up your authenticator app", Some("mfa-setup")).await;
    let secret = page
        .browser
        .find(Locator::Css("#totp-secret"))
        .await
        .unwrap()
        .attr("data-secret")
        .await
        .unwrap()
        .unwrap();
    let wrong = http_contract::cases::second_factor::wrong_code(&secret);
    page.submit(&[("code", &wrong)], "Turn on two-factor authentication")
        .await;
    wait_for_text(
        &page.browser,
        "#code-error",
        "That code is not right. Enter the code your app shows now.",
    )
    .await;
    page.check("Set up your authenticator app", None).await;
    let now = http_contract::cases::second_factor::code_in(&secret, 0);
    page.submit(&[("code", &now)], "Turn on two-factor authentication")
        .await;
    page.check("Your recovery codes", Some("mfa-codes")).await;
    let mut codes = Vec::new();
    for code in page
        .browser
        .find_all(Locator::Css("#recovery-codes code"))
        .await
        .unwrap()
    {
        codes.push(code.text().await.unwrap());
    }
    assert_eq!(codes.len(), 10, "{codes:?}");
    page.goto(&server.url("/ui/mfa")).await;
    page.check("Two-factor authentication", Some("mfa-on")).await;
    wait_for_text(&page.browser, "#codes-left", "10").await;

    page.goto(&server.url("/ui/logout")).await;
    page.submit(&[], "Sign out").await;
    wait_for_text(&page.browser, "#who", "Not signed in.").await;
    page.goto(&server.url("/ui/login")).await;
    page.submit(&[("email", email), ("password", passphrase)], "Sign in")
        .await;
    page.check("Enter your code", Some("login-code")).await;
    let next = http_contract::cases::second_factor::code_in(&secret, 30);
    page.submit(&[("code", &next)], "Verify").await;
    wait_for_text(&page.browser, "#who", email).await;

    page.goto(&server.url("/ui/logout")).await;
    page.submit(&[], "Sign out").await;
    wait_for_text(&page.browser, "#who", "Not signed in.").await;
    page.goto(&server.url("/ui/login")).await;
    page.submit(&[("email", email), ("password", passphrase)], "Sign in")
        .await;
    wait_for_text(&page.browser, "h1", "Enter your code").await;
    page.submit(&[("code", &next)], "Verify").await;
    wait_for_text(
        &page.browser,
        "#code-error",
        "That code is not right, or this sign-in has expired. Try again, or start over.",
    )
    .await;
    page.check("Enter your code", None).await;
    page.browser
        .find(Locator::Css("details summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page.submit(&[("recovery_code", &codes[0])], "Sign in with the recovery code")
        .await;
    wait_for_text(&page.browser, "#who", email).await;
    page.goto(&server.url("/ui/mfa")).await;
    wait_for_text(&page.browser, "#codes-left", "9").await;
    page.submit(
        &[
            ("disable_password", passphrase),
            ("disable_code", "zzzz-zzzz-zzzz-zzzz"),
        ],
        "Turn off two-factor authentication",
    )
    .await;
    wait_for_text(&page.browser, "#disable_code-error", "That code is not right.").await;
    page.check("Two-factor authentication", None).await;
    page.submit(
        &[("disable_password", passphrase), ("disable_code", &codes[1])],
        "Turn off two-factor authentication",
    )
    .await;
    wait_for_text(
        &page.browser,
        "[role='status']",
        "Two-factor authentication is off. Your other devices are signed out.",
    )
    .await;
    page.goto(&server.url("/ui/logout")).await;
    page.submit(&[], "Sign out").await;
    wait_for_text(&page.browser, "#who", "Not signed in.").await;
    page.goto(&server.url("/ui/login")).await;
    page.submit(&[("email", email), ("password", passphrase)], "Sign in")
        .await;
    wait_for_text(&page.browser, "#who", email).await;

    // A change of address: asked for with the password, confirmed from the link mailed
    // to the new address (this browser, which asked, stays signed in), then undone from
    // the link mailed to the old one (every device signed out).
    let moved = "moved@example.com";
    page.goto(&server.url("/ui/email/change")).await;
    page.check("Change your email", Some("email-change")).await;
    page.submit(&[("email", moved), ("password", "not the password")], "Send the link")
        .await;
    wait_for_text(&page.browser, "#password-error", "This is not your current password.").await;
    page.check("Change your email", None).await;
    assert_eq!(page.value_of("#email").await, moved);
    page.submit(&[("email", moved), ("password", passphrase)], "Send the link")
        .await;
    wait_for_text(
        &page.browser,
        "[role='status']",
        "A link is on its way to the new address: open it to make the change.",
    )
    .await;
    let (_, token) = http_contract::last_mail(&server.outbox(), "email_change").await;
    page.goto(&server.url(&format!("/ui/email/change/confirm?token={token}")))
        .await;
    page.check("Confirm your new email", Some("email-change-confirm")).await;
    page.submit(&[], "Use this address").await;
    page.check("Email changed", None).await;
    page.goto(&server.url("/")).await;
    wait_for_text(&page.browser, "#who", moved).await;
    let (_, undo) = http_contract::last_mail(&server.outbox(), "email_changed").await;
    page.goto(&server.url(&format!("/ui/email/change/undo?token={undo}")))
        .await;
    page.check("Undo the change of your email", Some("email-change-undo"))
        .await;
    page.submit(&[], "Undo the change").await;
    page.check("Change undone", None).await;
    page.goto(&server.url("/")).await;
    wait_for_text(&page.browser, "#who", "Not signed in.").await;
    page.goto(&server.url("/ui/login")).await;
    page.submit(&[("email", email), ("password", passphrase)], "Sign in")
        .await;
    wait_for_text(&page.browser, "#who", email).await;

    // Another site's form posting to our sign-out, without our CSRF token: refused, and
    // the session survives.
    let attack = format!(
        "data:text/html,<form id=f method=post action='{}'></form><script>f.submit()</script>",
        server.url("/ui/logout")
    );
    page.goto(&attack).await;
    wait_for_text(
        &page.browser,
        "[role='alert']",
        "This form expired or did not come from this site. Reload it and try again.",
    )
    .await;
    page.check("Sign out", None).await;
    page.goto(&server.url("/")).await;
    wait_for_text(&page.browser, "#who", email).await;

    // Signing out of this browser.
    page.goto(&server.url("/ui/logout")).await;
    page.check("Sign out", Some("logout")).await;
    page.submit(&[], "Sign out").await;
    wait_for_text(&page.browser, "[role='status']", "You are signed out.").await;
    wait_for_text(&page.browser, "#who", "Not signed in.").await;

    // Deleting the account: the wrong password is refused under its field; the right one
    // deletes it, signs this browser out, and the address can register again.
    page.goto(&server.url("/ui/login")).await;
    page.submit(&[("email", email), ("password", passphrase)], "Sign in")
        .await;
    wait_for_text(&page.browser, "#who", email).await;
    page.goto(&server.url("/ui/account/delete")).await;
    page.check("Delete your account", Some("account-delete")).await;
    page.submit(&[("password", "not the password")], "Delete my account")
        .await;
    wait_for_text(&page.browser, "#password-error", "This is not your current password.").await;
    page.check("Delete your account", None).await;
    page.submit(&[("password", passphrase)], "Delete my account").await;
    wait_for_text(
        &page.browser,
        "[role='status']",
        "Your account is deleted, with everything stored about it.",
    )
    .await;
    wait_for_text(&page.browser, "#who", "Not signed in.").await;
    let again = http_contract::login(&server, email, passphrase).await;
    assert_eq!(again.status, 401, "{}", again.text);
    http_contract::register(&server, email).await;

    // The CSP check can fail: an inline style added to a page is refused, and reported.
    page.browser
        .execute(
            "document.head.insertAdjacentHTML('beforeend', '<style>body { color: red }</style>');",
            vec![],
        )
        .await
        .unwrap();
    let mut reported = Vec::new();
    for _ in 0..50 {
        reported.extend(page.csp_violations().await);
        if !reported.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reported.iter().any(|message| message.contains("style")),
        "Chromium reports an inline style as a CSP violation: {reported:?}"
    );
    page.browser.close().await.unwrap();

    // Every screenshot the README can show is committed, and none is stale by name.
    let committed: BTreeSet<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots"))
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        committed,
        page.written,
        "examples/axum/screenshots differs from the pages this test shoots: refresh it with \
         AUTH_SCREENSHOTS_DIR=$PWD/examples/axum/screenshots cargo test -p example-axum --test browser \
         (they are in {})",
        shots.display()
    );
    eprintln!(
        "checked {} pages, {} screenshots in {}",
        page.pages,
        page.written.len(),
        shots.display()
    );
}

/// The site's name in the OpenID Connect test: the provider must redirect the browser to
/// the server's public URL, and the server's port is only known once it listens, so the
/// browser maps this name (port 80) to it (`--host-resolver-rules`). A loopback name: a
/// redirect URI over plain HTTP is accepted on loopback only.
const SITE: &str = "localhost";

/// The account page's and sign-in page's provider flows in a real browser against a real
/// OpenID provider (`oidc-provider`, through its own login and consent pages): an
/// existing email is told to sign in and link (nothing created); a new identity creates
/// an account without a password, which cannot unlink its only way in; an account with a
/// password and an authenticator app links the provider from its account page, signs in
/// with it (and its second factor), and unlinks it.
/// Every page of ours on the way gets the same accessibility and CSP checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_and_linking_through_an_openid_provider_works_in_a_browser() {
    sign_in_and_link_in_a_browser(Backend::Sqlite).await;
}

/// The same on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_and_linking_through_an_openid_provider_works_in_a_browser_on_postgres() {
    sign_in_and_link_in_a_browser(Backend::Postgres).await;
}

async fn sign_in_and_link_in_a_browser(backend: Backend) {
    use http_contract::oidc_provider::{Client as ProviderClient, OidcProvider};

    let Some(driver) = Driver::start() else {
        return;
    };
    let Some(axe) = axe_source() else {
        return;
    };
    let registered = ProviderClient {
        id: "app".into(),
        secret: "app-secret".into(),
        redirect_uris: vec![format!("http://{SITE}/oauth/test/callback")],
    };
    let Some(mut provider) = OidcProvider::start_or_skip(&[registered]).await else {
        return;
    };
    // Down when the server starts: its discovery fails, and the sign-in page says so.
    provider.stop();
    let public_url = format!("http://{SITE}");
    let target = Target { backend, ..AXUM };
    let Some(server) = Server::start(
        target,
        &[
            ("AUTH_COOKIE_SECURE", "false"),
            ("AUTH_PUBLIC_URL", &public_url),
            ("AUTH_OIDC_PROVIDERS", "test"),
            ("AUTH_OIDC_TEST_ISSUER", &provider.issuer),
            ("AUTH_OIDC_TEST_CLIENT_ID", "app"),
            ("AUTH_OIDC_TEST_CLIENT_SECRET", "app-secret"),
        ],
    ) else {
        return;
    };
    let port = url::Url::parse(&server.base).unwrap().port().unwrap();
    let mapping = format!("--host-resolver-rules=MAP {SITE} 127.0.0.1:{port}");
    let mut page = Checker {
        browser: driver.browser_with(&[mapping]).await,
        axe,
        shots: PathBuf::new(),
        written: BTreeSet::new(),
        pages: 0,
    };
    let site = |path: &str| format!("{public_url}{path}");
    // The owner of an account with a password and an authenticator app.
    let owner = "owner@example.com";
    let (_, secret, recovery_codes) = http_contract::cases::second_factor::enrolled(&server, owner).await;

    page.goto(&site("/ui/login")).await;
    page.check("Sign in", None).await;
    page.click_link("Sign in with Test").await;
    wait_for_text(
        &page.browser,
        "[role='alert']",
        "Test cannot be reached now. Try again shortly.",
    )
    .await;
    page.check("Sign in", None).await;

    // Back (discovery is retried at most every 2 s): an existing email never links by
    // itself, and the sign-in page says to sign in and link.
    provider.start_again().await;
    let issuer = url::Url::parse(&provider.issuer).unwrap();
    let mut reached = false;
    'attempts: for _ in 0..20 {
        page.goto(&site("/ui/login")).await;
        page.click_link("Sign in with Test").await;
        // Either the provider, or our page saying it is still out of reach.
        for _ in 0..100 {
            if page.browser.current_url().await.unwrap().origin() == issuer.origin() {
                reached = true;
                break 'attempts;
            }
            if page.browser.find(Locator::Css("[role='alert']")).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue 'attempts;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(reached, "the provider back, sign-in reaches it");
    at_provider(&page, &provider, Some(owner)).await;
    wait_for_text(
        &page.browser,
        "[role='alert']",
        "An account with this email exists: sign in with its password, then link Test from your account page.",
    )
    .await;
    page.check("Sign in", None).await;

    // A new identity with a verified email: an account without a password, signed in.
    let newcomer = "newcomer@example.com";
    page.forget_every_cookie().await;
    page.goto(&site("/ui/register")).await;
    page.check("Create an account", None).await;
    page.click_link("Sign up with Test").await;
    at_provider(&page, &provider, Some(newcomer)).await;
    wait_for_text(&page.browser, "#who", newcomer).await;
    page.check("Your account", None).await;
    wait_for_text(&page.browser, "dd .badge", "verified").await;
    wait_for_text(&page.browser, "ul.identities .device", "Test").await;
    page.browser
        .find(Locator::LinkText("Set a password"))
        .await
        .expect("an account without a password is offered to set one");
    // Its only way in cannot be unlinked.
    page.submit(&[], "Unlink").await;
    wait_for_text(
        &page.browser,
        "[role='alert']",
        "This is your only way to sign in: link another provider or set a password first.",
    )
    .await;
    page.check("Your account", None).await;

    // The owner signs in (password and code) and links the provider from the account page.
    page.forget_every_cookie().await;
    page.goto(&site("/ui/login")).await;
    page.submit(&[("email", owner), ("password", PASSWORD)], "Sign in")
        .await;
    page.check("Enter your code", None).await;
    let code = http_contract::cases::second_factor::code_in(&secret, 30);
    page.submit(&[("code", &code)], "Verify").await;
    wait_for_text(&page.browser, "#who", owner).await;
    assert!(
        page.browser.find(Locator::Css("ul.identities")).await.is_err(),
        "no identity linked yet"
    );
    page.submit(&[], "Link Test").await;
    at_provider(&page, &provider, Some(owner)).await;
    wait_for_text(&page.browser, "[role='status']", "Linked Test.").await;
    page.check("Your account", None).await;
    wait_for_text(&page.browser, "ul.identities .device", "Test").await;

    // Signed out, the provider signs this account in, and its second factor is asked for
    // after the provider too (a recovery code here).
    page.goto(&site("/ui/logout")).await;
    page.submit(&[], "Sign out").await;
    wait_for_text(&page.browser, "#who", "Not signed in.").await;
    page.forget_every_cookie().await;
    page.goto(&site("/ui/login")).await;
    page.click_link("Sign in with Test").await;
    at_provider(&page, &provider, Some(owner)).await;
    page.check("Enter your code", None).await;
    page.browser
        .find(Locator::Css("details summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page.submit(
        &[("recovery_code", &recovery_codes[0])],
        "Sign in with the recovery code",
    )
    .await;
    wait_for_text(&page.browser, "#who", owner).await;

    // And unlinks it: the password remains.
    page.submit(&[], "Unlink").await;
    wait_for_text(
        &page.browser,
        "[role='status']",
        "The provider is unlinked: it no longer signs you in.",
    )
    .await;
    page.check("Your account", None).await;
    assert!(page.browser.find(Locator::Css("ul.identities")).await.is_err());

    // A callback that comes back refused shows the sign-in page with the reason.
    page.goto(&site("/ui/oauth/finish?provider=test&error=external_login_failed"))
        .await;
    wait_for_text(
        &page.browser,
        "[role='alert']",
        "The sign-in with Test did not work or took too long. Try again.",
    )
    .await;
    page.check("Sign in", None).await;
    page.browser.close().await.unwrap();
    eprintln!("checked {} pages", page.pages);
}

impl Checker {
    /// Follows the link reading `text`.
    async fn click_link(&self, text: &str) {
        self.browser
            .find(Locator::LinkText(text))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Every cookie of every site, ours and the provider's: the next sign-in at the
    /// provider asks who it is.
    async fn forget_every_cookie(&self) {
        self.cdp("Network.clearBrowserCookies", json!({})).await;
    }
}

/// Waits for the browser to reach `provider`, signs in there as `login` through its login
/// form (when given) and consents, then waits until the provider has sent the browser back.
async fn at_provider(page: &Checker, provider: &http_contract::oidc_provider::OidcProvider, login: Option<&str>) {
    let issuer = url::Url::parse(&provider.issuer).unwrap();
    let on_provider = async || {
        let url = page.browser.current_url().await.unwrap();
        url.origin() == issuer.origin()
    };
    for _ in 0..100 {
        if on_provider().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !on_provider().await {
        panic!(
            "the browser never reached the provider: at {} with {}",
            page.browser.current_url().await.unwrap(),
            page.browser.source().await.unwrap()
        );
    }
    if let Some(login) = login {
        let field = page
            .browser
            .wait()
            .for_element(Locator::Css("input[name='login']"))
            .await
            .unwrap();
        field.send_keys(login).await.unwrap();
        let password = page.browser.find(Locator::Css("input[name='password']")).await.unwrap();
        password.send_keys("any password").await.unwrap();
        page.browser
            .find(Locator::Css("button[type='submit']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // The consent page follows (at the same URL): wait for the login form to go.
        for _ in 0..100 {
            if page.browser.find(Locator::Css("input[name='login']")).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The consent form, unless the grant is remembered; then back to us.
    for _ in 0..100 {
        if !on_provider().await {
            return;
        }
        if let Ok(button) = page.browser.find(Locator::Css("button[type='submit']")).await {
            let _ = button.click().await;
            for _ in 0..50 {
                if !on_provider().await || page.browser.find(Locator::Css("button[type='submit']")).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the provider never sent the browser back: {}",
        page.browser.source().await.unwrap()
    );
}

/// Passkeys in a real browser: Chromium's virtual authenticator (WebDriver's WebAuthn
/// extension; resident keys, user verification) registers a passkey from the account page,
/// the browser signs out and signs back in with it from the sign-in page, no address
/// typed; then the credential is removed from the authenticator, and the sign-in with a
/// passkey fails, saying so, with nobody signed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_is_added_and_signs_in_in_a_browser_and_fails_once_gone() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let Some(axe) = axe_source() else {
        return;
    };
    // WebAuthn needs a secure context and an RP id that is a name: `localhost`, mapped to
    // the server's port as the provider test does.
    let public_url = format!("http://{SITE}");
    let Some(server) = Server::start(
        AXUM,
        &[("AUTH_COOKIE_SECURE", "false"), ("AUTH_PUBLIC_URL", &public_url)],
    ) else {
        return;
    };
    let port = url::Url::parse(&server.base).unwrap().port().unwrap();
    let mapping = format!("--host-resolver-rules=MAP {SITE} 127.0.0.1:{port}");
    let mut page = Checker {
        browser: driver.browser_with(&[mapping]).await,
        axe,
        shots: PathBuf::new(),
        written: BTreeSet::new(),
        pages: 0,
    };
    let site = |path: &str| format!("{public_url}{path}");
    let authenticator = page
        .browser
        .issue_cmd(Extension::AddAuthenticator(json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
        })))
        .await
        .unwrap();
    let authenticator = authenticator.as_str().unwrap().to_owned();
    let email = "passkey@example.com";
    http_contract::register(&server, email).await;

    page.goto(&site("/ui/login")).await;
    page.submit(&[("email", email), ("password", PASSWORD)], "Sign in")
        .await;
    wait_for_text(&page.browser, "#who", email).await;
    page.check("Your account", None).await;
    page.submit(&[("name", "This laptop")], "Add a passkey").await;
    wait_for_text(
        &page.browser,
        "[role='status']",
        "The passkey is added: it signs you in from now on.",
    )
    .await;
    page.check("Your account", None).await;
    let listed = page
        .browser
        .find(Locator::Css("ul.passkeys .device"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(listed, "This laptop");
    let credentials = page
        .browser
        .issue_cmd(Extension::Credentials(authenticator.clone()))
        .await
        .unwrap();
    let credentials = credentials.as_array().unwrap();
    assert_eq!(credentials.len(), 1, "{credentials:?}");
    assert_eq!(
        credentials[0]["isResidentCredential"], true,
        "a discoverable credential"
    );
    let notice = http_contract::last_message(&server.outbox(), "passkey_added").await;
    assert!(notice.contains("\"This laptop\""), "{notice}");

    // Signed out, then back in with the passkey alone.
    page.goto(&site("/ui/logout")).await;
    page.submit(&[], "Sign out").await;
    wait_for_text(&page.browser, "#who", "Not signed in.").await;
    page.goto(&site("/ui/login")).await;
    page.check("Sign in", None).await;
    page.submit(&[], "Sign in with a passkey").await;
    wait_for_text(&page.browser, "#who", email).await;
    page.check("Your account", None).await;
    let used = page
        .browser
        .find(Locator::Css("ul.passkeys .meta"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(used.contains("last used"), "{used}");

    // The authenticator loses the credential: the sign-in with a passkey fails, and says so.
    page.goto(&site("/ui/logout")).await;
    page.submit(&[], "Sign out").await;
    wait_for_text(&page.browser, "#who", "Not signed in.").await;
    page.browser
        .issue_cmd(Extension::RemoveCredentials(authenticator.clone()))
        .await
        .unwrap();
    page.goto(&site("/ui/login")).await;
    page.submit(&[], "Sign in with a passkey").await;
    wait_for_text(
        &page.browser,
        "[data-passkey-status]",
        "No passkey was used: the request was cancelled, timed out, or found no passkey for this site.",
    )
    .await;
    page.check("Sign in", None).await;
    page.goto(&site("/")).await;
    wait_for_text(&page.browser, "#who", "Not signed in.").await;
    page.browser.close().await.unwrap();
}
