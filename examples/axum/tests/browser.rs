//! The pages in a real browser: headless Chromium driven through ChromeDriver
//! (Debian's `chromium` and `chromium-driver`, which `.ci/run` installs). Register, log
//! in, see the email on `/`, log out; and a cross-site form POST without the CSRF token is
//! refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use http_contract::{Backend, PASSWORD, Server, Target};

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
            .find(|path| std::path::Path::new(path).exists());
        let Some(binary) = binary else {
            let in_ci = std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"));
            assert!(
                !in_ci,
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
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            }),
        );
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

async fn fill_and_submit(browser: &Client, fields: &[(&str, &str)]) {
    for (name, value) in fields {
        let input = browser
            .find(Locator::Css(&format!("input[name='{name}']")))
            .await
            .unwrap();
        input.send_keys(value).await.unwrap();
    }
    browser
        .find(Locator::Css("button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
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

/// Waits until the browser is on `path`.
async fn wait_for_path(browser: &Client, path: &str) {
    for _ in 0..100 {
        if browser.current_url().await.unwrap().path() == path {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never reached {path}\n{}", browser.source().await.unwrap());
}

/// This server, on SQLite: the pages do not depend on the store.
const AXUM: Target = Target {
    binary: env!("CARGO_BIN_EXE_example-axum"),
    backend: Backend::Sqlite,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_log_in_see_the_email_log_out_and_refuse_cross_site_posts() {
    let Some(driver) = Driver::start() else {
        return;
    };
    // Plain HTTP on loopback: cookies without `Secure` (AUTH_COOKIE_SECURE=false).
    let server = Server::start(AXUM, &[("AUTH_COOKIE_SECURE", "false")]).unwrap();
    let browser = driver.browser().await;

    browser.goto(&server.url("/ui/register")).await.unwrap();
    fill_and_submit(&browser, &[("email", "Browser@Example.com"), ("password", PASSWORD)]).await;
    wait_for_text(&browser, "[role='alert']", "Account created. Log in.").await;

    fill_and_submit(
        &browser,
        &[("email", "browser@example.com"), ("password", "not the password")],
    )
    .await;
    wait_for_text(&browser, "[role='alert']", "invalid credentials").await;
    fill_and_submit(&browser, &[("email", "browser@example.com"), ("password", PASSWORD)]).await;
    wait_for_path(&browser, "/").await;
    wait_for_text(&browser, "#who", "browser@example.com").await;

    // Another site's form posting to our logout, without our CSRF token: refused, and the
    // session survives.
    let attack = format!(
        "data:text/html,<form id=f method=post action='{}'></form><script>f.submit()</script>",
        server.url("/ui/logout")
    );
    browser.goto(&attack).await.unwrap();
    wait_for_text(
        &browser,
        "[role='alert']",
        "This form expired or did not come from this site. Reload it and try again.",
    )
    .await;
    browser.goto(&server.url("/")).await.unwrap();
    wait_for_text(&browser, "#who", "browser@example.com").await;

    browser.goto(&server.url("/ui/logout")).await.unwrap();
    fill_and_submit(&browser, &[]).await;
    wait_for_path(&browser, "/").await;
    wait_for_text(&browser, "#who", "Not logged in.").await;
    browser.close().await.unwrap();
}
