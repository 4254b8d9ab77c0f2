//! The pages' security properties over plain HTTP (the browser test covers the flow).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use http_contract::{Backend, PASSWORD, Server, Target, register};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

/// `name=value` of the cookie called `name` among `cookies`.
fn pair(cookies: &[String], name: &str) -> String {
    cookies
        .iter()
        .find(|cookie| cookie.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {cookies:?}"))
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

fn csrf_field(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// This server, on SQLite: the pages do not depend on the store.
const AXUM: Target = Target {
    binary: env!("CARGO_BIN_EXE_example-axum"),
    backend: Backend::Sqlite,
};

#[tokio::test]
async fn https_sites_get_host_prefixed_secure_http_only_lax_cookies_and_a_new_session_at_login() {
    // The harness serves AUTH_PUBLIC_URL=https://...: secure cookies by default.
    let server = Server::start(AXUM, &[]).unwrap();
    register(&server, "ola@example.com").await;
    let http = no_redirects();
    let form = http.get(server.url("/ui/login")).send().await.unwrap();
    let cookies = set_cookies(&form);
    let csrf_cookie = cookies.iter().find(|c| c.starts_with("__Host-csrf=")).unwrap();
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(csrf_cookie.contains(attribute), "{csrf_cookie}");
    }
    let csrf = pair(&cookies, "__Host-csrf");
    let token = csrf_field(&form.text().await.unwrap());

    // A session id planted beforehand (fixation) is not the one the login gives.
    let planted = "__Host-session=planted-by-an-attacker";
    let login = http
        .post(server.url("/ui/login"))
        .header("cookie", format!("{csrf}; {planted}"))
        .form(&[("email", "ola@example.com"), ("password", PASSWORD), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    let cookies = set_cookies(&login);
    let session = pair(&cookies, "__Host-session");
    assert_ne!(session, planted);
    assert_eq!(session.len(), "__Host-session=".len() + 64);
    assert_ne!(
        pair(&cookies, "__Host-csrf"),
        csrf,
        "a new CSRF token with the new session"
    );
    let session_cookie = cookies.iter().find(|c| c.starts_with("__Host-session=")).unwrap();
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    let home = http
        .get(server.url("/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert!(home.text().await.unwrap().contains("ola@example.com"));
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let server = Server::start(AXUM, &[]).unwrap();
    let http = no_redirects();
    for (path, fields) in [
        (
            "/ui/register",
            vec![("email", "pia@example.com"), ("password", PASSWORD)],
        ),
        ("/ui/login", vec![("email", "pia@example.com"), ("password", PASSWORD)]),
        ("/ui/password/forgot", vec![("email", "pia@example.com")]),
        (
            "/ui/password/reset",
            vec![("token", "pr_x"), ("new_password", "a brand new passphrase")],
        ),
        ("/ui/logout", vec![]),
    ] {
        let answer = http.post(server.url(path)).form(&fields).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 403, "{path}");
        // A token in the form but not in the cookie (or the reverse) is no better.
        let mut forged = fields.clone();
        forged.push((
            "csrf",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ));
        let answer = http.post(server.url(path)).form(&forged).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 403, "{path}");
    }
    let answer = reqwest::Client::new().get(server.url("/health")).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    // Nothing was registered: the address is still free.
    let register = http_contract::post_json(
        &server,
        "/register",
        serde_json::json!({"email": "pia@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(register.status, 201, "{}", register.text);
}

#[tokio::test]
async fn the_reset_page_sends_no_referrer_and_escapes_what_it_echoes() {
    let server = Server::start(AXUM, &[]).unwrap();
    let page = no_redirects()
        .get(server.url("/ui/password/reset?token=%22%3E%3Cscript%3Ealert(1)%3C/script%3E"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&quot;&gt;&lt;script&gt;"), "{html}");
}

#[tokio::test]
async fn errors_are_shown_to_the_person_never_a_stack_trace() {
    let server = Server::start(AXUM, &[]).unwrap();
    let http = no_redirects();
    let form = http.get(server.url("/ui/register")).send().await.unwrap();
    let csrf = pair(&set_cookies(&form), "__Host-csrf");
    let token = csrf_field(&form.text().await.unwrap());
    let answer = http
        .post(server.url("/ui/register"))
        .header("cookie", &csrf)
        .form(&[("email", "not an email"), ("password", "short"), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let html = answer.text().await.unwrap();
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(
        !html.to_lowercase().contains("panicked") && !html.contains("src/"),
        "{html}"
    );
}

#[tokio::test]
async fn pages_cannot_be_framed_or_cached() {
    let server = Server::start(AXUM, &[]).unwrap();
    for path in [
        "/",
        "/ui/login",
        "/ui/register",
        "/ui/password/forgot",
        "/ui/password/reset?token=x",
    ] {
        let page = no_redirects().get(server.url(path)).send().await.unwrap();
        let headers = page.headers();
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
    }
}

#[tokio::test]
async fn the_mailed_reset_link_opens_a_page_whose_form_sets_the_password() {
    let server = Server::start(AXUM, &[]).unwrap();
    register(&server, "quy@example.com").await;
    http_contract::post_json(
        &server,
        "/password/forgot",
        serde_json::json!({"email": "quy@example.com"}),
        None,
    )
    .await;
    let (_, token) = http_contract::last_mail(&server.outbox(), "password_reset").await;
    let http = no_redirects();
    let page = http
        .get(server.url(&format!("/ui/password/reset?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let csrf = pair(&set_cookies(&page), "__Host-csrf");
    let html = page.text().await.unwrap();
    assert!(html.contains(&token), "the form carries the token");
    let answer = http
        .post(server.url("/ui/password/reset"))
        .header("cookie", &csrf)
        .form(&[
            ("token", token.as_str()),
            ("new_password", "a brand new passphrase"),
            ("csrf", &csrf_field(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert!(answer.text().await.unwrap().contains("Password changed"));
    let login = http_contract::login(&server, "quy@example.com", "a brand new passphrase").await;
    assert_eq!(login.status, 200, "{}", login.text);
}
