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
    // A browser-session token: `bs_` and 256 random bits, base64url.
    assert!(session.starts_with("__Host-session=bs_"), "{session}");
    assert_eq!(session.len(), "__Host-session=bs_".len() + 43);
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
        ("/ui/login/code", vec![("challenge", "mfa_x"), ("code", "123456")]),
        ("/ui/mfa/setup", vec![("password", PASSWORD)]),
        ("/ui/mfa/confirm", vec![("code", "123456")]),
        ("/ui/mfa/recovery-codes", vec![("password", PASSWORD)]),
        (
            "/ui/mfa/disable",
            vec![("disable_password", PASSWORD), ("disable_code", "123456")],
        ),
        ("/ui/oauth/test/link", vec![]),
        (
            "/ui/email/change",
            vec![("email", "pia@example.org"), ("password", PASSWORD)],
        ),
        ("/ui/email/change/confirm", vec![("token", "ec_x")]),
        ("/ui/account/delete", vec![("password", PASSWORD)]),
        ("/ui/email/change/undo", vec![("token", "eu_x")]),
        (
            "/ui/identities/unlink",
            vec![("identity", "00000000-0000-0000-0000-000000000000")],
        ),
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
async fn the_link_pages_keep_their_referrer_on_this_site_and_escape_what_they_echo() {
    let server = Server::start(AXUM, &[]).unwrap();
    for page in [
        "/ui/password/reset",
        "/ui/email/verify",
        "/ui/email/change/confirm",
        "/ui/email/change/undo",
    ] {
        let answer = no_redirects()
            .get(server.url(&format!("{page}?token=%22%3E%3Cscript%3Ealert(1)%3C/script%3E")))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 200, "{page}");
        assert_eq!(answer.headers()["referrer-policy"], "same-origin", "{page}");
        let html = answer.text().await.unwrap();
        assert!(!html.contains("<script>"), "{page}: {html}");
        assert!(html.contains("&quot;&gt;&lt;script&gt;"), "{page}: {html}");
    }
}

#[tokio::test]
async fn a_provider_sign_in_that_fails_comes_back_to_the_sign_in_page_in_words_echoing_nothing() {
    let server = Server::start(AXUM, &[]).unwrap();
    let http = no_redirects();
    let script = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    for (query, status, text) in [
        // A refusal the callback sent back: its code in words; an unknown code or
        // provider is never echoed.
        (
            "provider=test&error=account_exists".to_owned(),
            409,
            "An account with this email exists: sign in with its password, then link the provider from your account page.",
        ),
        (
            format!("provider={script}&error={script}"),
            400,
            "The sign-in with the provider did not work. Try again.",
        ),
        // A code that was never issued (or was spent): refused, nobody signed in.
        (
            "provider=test&code=xc_never-issued".to_owned(),
            400,
            "The sign-in with the provider did not work or took too long. Try again.",
        ),
        // A repeated parameter is read as its first, never a plain-text 400.
        (
            "code=xc_never-issued&code=xc_other".to_owned(),
            400,
            "The sign-in with the provider did not work or took too long. Try again.",
        ),
    ] {
        let page = http
            .get(server.url(&format!("/ui/oauth/finish?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), status, "{query}");
        assert_eq!(page.headers()["referrer-policy"], "same-origin", "{query}");
        let cookies = set_cookies(&page);
        assert!(
            cookies
                .iter()
                .any(|cookie| cookie.starts_with("__Host-auth_oauth=; Max-Age=0")),
            "{query}: the binding cookie is cleared: {cookies:?}"
        );
        assert!(
            !cookies.iter().any(|cookie| cookie.starts_with("__Host-session=")),
            "{query}"
        );
        let html = page.text().await.unwrap();
        assert!(html.contains("<h1>Sign in</h1>"), "{query}: {html}");
        assert!(html.contains(text), "{query}: {html}");
        assert!(
            !html.contains("<script>") && !html.contains("alert(1)"),
            "{query}: {html}"
        );
    }
    // A HEAD (a prefetch, a link preview) spends no code: refused.
    let head = http
        .head(server.url("/ui/oauth/finish?code=xc_x"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 405);
    assert_eq!(head.headers()["allow"], "GET");
}

/// After a link, the account page says only what it knows: nothing to a visitor, no
/// "Linked" for a provider the account has not linked, no text for an unknown code; a
/// known refusal in words; and unlinking what is not the account's says so.
#[tokio::test]
async fn the_account_page_believes_no_crafted_link_outcome() {
    let server = plain_http_server();
    let http = no_redirects();
    let script = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let notices = |html: &str| html.contains("role=\"status\"") || html.contains("role=\"alert\"");
    let visitor = http
        .get(server.url(&format!("/?linked={script}&error={script}")))
        .send()
        .await
        .unwrap();
    let html = visitor.text().await.unwrap();
    assert!(!notices(&html) && !html.contains("alert(1)"), "{html}");
    register(&server, "lin@example.com").await;
    let session = page_sign_in(&server, "lin@example.com").await;
    for crafted in [
        "/?linked=test".to_owned(),
        format!("/?error={script}"),
        "/?error=not_a_code".to_owned(),
    ] {
        let page = http
            .get(server.url(&crafted))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        let html = page.text().await.unwrap();
        assert!(html.contains("lin@example.com"), "signed in: {html}");
        assert!(!notices(&html), "{crafted}: {html}");
    }
    let refused = http
        .get(server.url("/?provider=test&error=identity_in_use"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    let html = refused.text().await.unwrap();
    assert!(
        html.contains("This account at the provider is already linked to another account."),
        "{html}"
    );

    // Unlinking an identity that is not the account's: 404, never "unlinked".
    let page = http
        .get(server.url("/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    let csrf = pair(&set_cookies(&page), "csrf");
    let token = csrf_field(&page.text().await.unwrap());
    let unlink = http
        .post(server.url("/ui/identities/unlink"))
        .header("cookie", format!("{session}; {csrf}"))
        .form(&[
            ("identity", "01890a5d-ac96-774b-bcce-b302099a8057"),
            ("csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(unlink.status().as_u16(), 404);
    let html = unlink.text().await.unwrap();
    assert!(html.contains("That provider is not linked to your account."), "{html}");
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
        .form(&[
            ("email", "not an email"),
            ("password", "short secret"),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 422, "the status the API gives the same error");
    let html = answer.text().await.unwrap();
    // Under the field that caused it, tied to it, announced, with the focus on the field.
    assert!(
        html.contains("aria-describedby=\"email-error\" aria-invalid=\"true\" autofocus")
            && html.contains("<p class=\"field-error\" id=\"email-error\" role=\"alert\">Invalid email address"),
        "{html}"
    );
    assert!(
        html.contains("value=\"not an email\""),
        "the address typed stays: {html}"
    );
    assert!(!html.contains("short secret"), "the password never comes back: {html}");
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
    assert_eq!(page.headers()["referrer-policy"], "same-origin");
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

/// A server whose cookies are the plain-HTTP ones (`csrf`, `session`): the mode where a
/// network attacker can plant a cookie, since nothing but a `__Host-` prefix stops it.
fn plain_http_server() -> Server {
    Server::start(AXUM, &[("AUTH_COOKIE_SECURE", "false")]).unwrap()
}

/// The form on `path` as a new browser gets it: the `csrf=...` cookie pair it sets and
/// the hidden field's token.
async fn page_token(http: &reqwest::Client, server: &Server, path: &str) -> (String, String) {
    let page = http.get(server.url(path)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200, "{path}");
    let csrf = pair(&set_cookies(&page), "csrf");
    (csrf, csrf_field(&page.text().await.unwrap()))
}

/// Whether `cookie` (a `session=...` pair) is logged in on `/`.
async fn logged_in(server: &Server, cookie: &str) -> bool {
    let home = no_redirects()
        .get(server.url("/"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    !home.text().await.unwrap().contains("Not signed in.")
}

/// Asserts that `answer` is the pages' refusal (403 and its page) and logged nobody in.
async fn assert_refused(answer: reqwest::Response, what: &str) {
    let status = answer.status().as_u16();
    let cookies = set_cookies(&answer);
    let html = answer.text().await.unwrap();
    assert_eq!(status, 403, "{what}: {html}");
    assert!(
        html.contains("This form expired or did not come from this site."),
        "{what}: {html}"
    );
    assert!(
        !cookies.iter().any(|cookie| cookie.starts_with("session=")),
        "{what}: no session is issued: {cookies:?}"
    );
}

#[tokio::test]
async fn a_csrf_cookie_planted_over_plain_http_with_the_same_form_field_is_refused() {
    let server = plain_http_server();
    register(&server, "rui@example.com").await;
    let http = no_redirects();
    // What a network attacker can toss into the victim's cookie jar over plain HTTP, and
    // the form its page submits: before the token was bound, this pair passed.
    let planted = "ab".repeat(32);
    let answer = http
        .post(server.url("/ui/login"))
        .header("cookie", format!("csrf={planted}"))
        .form(&[
            ("email", "rui@example.com"),
            ("password", PASSWORD),
            ("csrf", planted.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_refused(answer, "a planted cookie and field").await;
    // The page a browser holding the planted nonce gets carries another token: the MAC.
    let page = http
        .get(server.url("/ui/login"))
        .header("cookie", format!("csrf={planted}"))
        .send()
        .await
        .unwrap();
    assert_ne!(csrf_field(&page.text().await.unwrap()), planted);
}

#[tokio::test]
async fn the_genuine_form_flow_works_with_a_token_bound_to_the_session() {
    let server = plain_http_server();
    register(&server, "sia@example.com").await;
    let http = no_redirects();
    let (csrf, token) = page_token(&http, &server, "/ui/login").await;
    assert_eq!(csrf.len(), "csrf=".len() + 64);
    assert_eq!(token.len(), 64);
    assert_ne!(token, csrf["csrf=".len()..], "the field is not the cookie's value");
    let login = http
        .post(server.url("/ui/login"))
        .header("cookie", &csrf)
        .form(&[("email", "sia@example.com"), ("password", PASSWORD), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    let cookies = set_cookies(&login);
    let session = pair(&cookies, "session");
    let csrf = pair(&cookies, "csrf");
    assert!(logged_in(&server, &session).await);

    // The logout form's token is bound to this session: beside the same csrf cookie,
    // with a session cookie naming no session, or none, it is refused and the session
    // lives on.
    let jar = format!("{session}; {csrf}");
    let page = http
        .get(server.url("/ui/logout"))
        .header("cookie", &jar)
        .send()
        .await
        .unwrap();
    let token = csrf_field(&page.text().await.unwrap());
    for other in [format!("{csrf}; session={}", "cd".repeat(32)), csrf.clone()] {
        let answer = http
            .post(server.url("/ui/logout"))
            .header("cookie", &other)
            .form(&[("csrf", &token)])
            .send()
            .await
            .unwrap();
        assert_refused(answer, &other).await;
    }
    assert!(logged_in(&server, &session).await);
    let logout = http
        .post(server.url("/ui/logout"))
        .header("cookie", &jar)
        .form(&[("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status().as_u16(), 303);
    assert!(!logged_in(&server, &session).await);
}

#[tokio::test]
async fn a_genuine_token_from_another_origin_is_refused_and_from_this_one_accepted() {
    let server = plain_http_server();
    register(&server, "tea@example.com").await;
    let http = no_redirects();
    let fields = |token: &str| {
        [
            ("email", "tea@example.com".to_owned()),
            ("password", PASSWORD.to_owned()),
            ("csrf", token.to_owned()),
        ]
    };
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        // The public URL's host on another scheme or port is another origin.
        ("origin", "http://auth.example.test"),
        ("origin", "https://auth.example.test:8443"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let (csrf, token) = page_token(&http, &server, "/ui/login").await;
        let answer = http
            .post(server.url("/ui/login"))
            .header("cookie", &csrf)
            .header(header, value)
            .form(&fields(&token))
            .send()
            .await
            .unwrap();
        assert_refused(answer, &format!("{header}: {value}")).await;
    }
    // A refused Origin is refused even beside a same-origin fetch site.
    let (csrf, token) = page_token(&http, &server, "/ui/login").await;
    let answer = http
        .post(server.url("/ui/login"))
        .header("cookie", &csrf)
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "same-origin")
        .form(&fields(&token))
        .send()
        .await
        .unwrap();
    assert_refused(answer, "a foreign Origin beside Sec-Fetch-Site: same-origin").await;

    // Accepted: the public URL's origin (any case, its default port spelled out), the
    // address the browser used (the Host header: local runs), and a form the person
    // opened directly (`none`).
    for headers in [
        vec![
            ("origin", "https://auth.example.test"),
            ("sec-fetch-site", "same-origin"),
        ],
        vec![("origin", "https://Auth.Example.Test:443")],
        vec![("origin", server.base.as_str()), ("sec-fetch-site", "same-origin")],
        vec![("sec-fetch-site", "none")],
    ] {
        let (csrf, token) = page_token(&http, &server, "/ui/login").await;
        let mut request = http.post(server.url("/ui/login")).header("cookie", &csrf);
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let answer = request.form(&fields(&token)).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 303, "{headers:?}");
        assert!(logged_in(&server, &pair(&set_cookies(&answer), "session")).await);
    }
}

#[tokio::test]
async fn malformed_page_forms_get_the_html_error_page() {
    let server = plain_http_server();
    let http = no_redirects();
    let (csrf, token) = page_token(&http, &server, "/ui/login").await;
    let form = "application/x-www-form-urlencoded";
    let oversize = format!("email=a&password={}&csrf={token}", "x".repeat(70 * 1024));
    for (what, content_type, body, status) in [
        (
            "a text/plain body",
            "text/plain",
            format!("email=a%40example.com&password=x&csrf={token}"),
            400,
        ),
        (
            "a missing field",
            form,
            format!("email=a%40example.com&csrf={token}"),
            400,
        ),
        ("a bad escape", form, format!("email=%zz&password=x&csrf={token}"), 400),
        (
            "a truncated escape",
            form,
            format!("email=a&csrf={token}&password=x%4"),
            400,
        ),
        (
            "an escape of no UTF-8",
            form,
            format!("email=%ff&password=x&csrf={token}"),
            400,
        ),
        ("a body over 64 KiB", form, oversize, 413),
    ] {
        let answer = http
            .post(server.url("/ui/login"))
            .header("cookie", &csrf)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), status, "{what}");
        let headers = answer.headers().clone();
        assert!(
            headers["content-type"].to_str().unwrap().starts_with("text/html"),
            "{what}: {headers:?}"
        );
        // The pages' own headers, as on every other page.
        assert_eq!(headers["x-frame-options"], "DENY", "{what}");
        assert_eq!(headers["cache-control"], "no-store", "{what}");
        let html = answer.text().await.unwrap();
        assert!(html.starts_with("<!doctype html>"), "{what}: {html}");
        assert!(
            html.contains("<div class=\"notice error\" role=\"alert\">"),
            "{what}: {html}"
        );
        assert!(html.contains("\">Back to the start</a>"), "{what}: {html}");
    }
    // The same cookie and token in a well-formed form reach the login (a wrong password:
    // the form again, with its message).
    let answer = http
        .post(server.url("/ui/login"))
        .header("cookie", &csrf)
        .form(&[
            ("email", "nobody@example.com"),
            ("password", "not the password"),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 401);
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("The email or password is not right.")
    );
}

/// A fresh directory for one test's replacement templates.
fn theme_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn auth_ui_templates_replaces_the_templates_and_stylesheet_it_holds_and_nothing_else() {
    let dir = theme_dir("theme");
    std::fs::write(dir.join("style.css"), ":root { --accent: #8a2be2; }\n").unwrap();
    std::fs::write(
        dir.join("login.html"),
        "{% extends \"base.html\" %}\n{% block title %}Welcome back{% endblock %}\n\
         {% block content %}<p class=\"lead\">Our own words.</p>{{ csrf }}{% endblock %}\n",
    )
    .unwrap();
    let server = Server::start(
        AXUM,
        &[
            ("AUTH_UI_TEMPLATES", dir.to_str().unwrap()),
            ("AUTH_UI_SITE_NAME", "Acme <Login>"),
        ],
    )
    .unwrap();
    let http = no_redirects();
    let login = http
        .get(server.url("/ui/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        login.contains("<h1>Welcome back</h1>") && login.contains("Our own words."),
        "{login}"
    );
    assert!(
        login.contains("Acme &lt;Login&gt;"),
        "the site's name, escaped: {login}"
    );
    // The page links the replacement stylesheet, under a URL of its content.
    let href = login
        .split("rel=\"stylesheet\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&#x2f;", "/");
    assert!(href.starts_with("/ui/style.css?v="), "{href}");
    let css = http.get(server.url(&href)).send().await.unwrap();
    assert_eq!(css.status().as_u16(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(css.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(css.headers()["x-content-type-options"], "nosniff");
    assert_eq!(css.text().await.unwrap(), ":root { --accent: #8a2be2; }\n");
    // Pages it does not replace are the built-in ones.
    let register = http
        .get(server.url("/ui/register"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(register.contains("<h1>Create an account</h1>"), "{register}");
    let icon = http.get(server.url("/ui/icon.svg")).send().await.unwrap();
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_broken_replacement_template_stops_the_server_at_start_naming_its_file_and_line() {
    let dir = theme_dir("broken-theme");
    std::fs::write(
        dir.join("register.html"),
        "{% extends \"base.html\" %}\n{% block content %}\n{{ form.emial }}\n{% endblock %}\n",
    )
    .unwrap();
    let data = theme_dir("broken-theme-data");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_example-axum"))
        .env_clear()
        .env("BIND", "127.0.0.1:0")
        .env("DATABASE_URL", format!("sqlite://{}", data.join("auth.db").display()))
        .env("AUTH_MAIL_OUTBOX", data.join("outbox"))
        .env("AUTH_UI_TEMPLATES", &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}{stderr}");
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains(&format!("{}", dir.join("register.html").display())) && said.contains("line 3"),
        "{said}"
    );
    assert!(!said.contains("listening"), "{said}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&data).unwrap();
}

#[tokio::test]
async fn the_pages_policy_allows_this_site_only_and_nothing_inline() {
    let server = Server::start(AXUM, &[]).unwrap();
    for path in ["/", "/ui/login", "/ui/register", "/ui/password/forgot", "/ui/logout"] {
        let page = no_redirects().get(server.url(path)).send().await.unwrap();
        let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert_eq!(
            csp,
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
             form-action 'self'",
            "{path}"
        );
        assert!(!csp.contains("unsafe"), "{path}");
        let html = page.text().await.unwrap();
        // No inline style or script: the one script is this site's file, the passkey
        // buttons' (and only where passkeys are).
        assert!(!html.contains("style="), "{path}: {html}");
        let scripts = html.matches("<script").count();
        let passkey_script = html.matches("<script src=\"&#x2f;ui&#x2f;passkeys.js?v=").count();
        assert_eq!(scripts, passkey_script, "{path}: {html}");
        assert!(!html.contains("<script>"), "{path}: {html}");
    }
}

#[tokio::test]
async fn signed_in_pages_send_a_browser_without_a_session_to_sign_in() {
    let server = plain_http_server();
    let http = no_redirects();
    for page in [
        "/ui/password/change",
        "/ui/mfa",
        "/ui/email/change",
        "/ui/account/delete",
        "/ui/account/export",
    ] {
        let answer = http.get(server.url(page)).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 303, "{page}");
        assert_eq!(answer.headers()["location"], "/ui/login", "{page}");
    }
    for path in [
        "/ui/logout/all",
        "/ui/sessions/revoke",
        "/ui/email/verify/request",
        "/ui/email/change",
        "/ui/account/delete",
        "/ui/mfa/setup",
        "/ui/mfa/confirm",
        "/ui/mfa/recovery-codes",
        "/ui/mfa/disable",
    ] {
        let (csrf, token) = page_token(&http, &server, "/ui/login").await;
        let answer = http
            .post(server.url(path))
            .header("cookie", &csrf)
            .form(&[
                ("csrf", token.as_str()),
                ("session", "00000000-0000-0000-0000-000000000000"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 303, "{path}");
        assert_eq!(answer.headers()["location"], "/ui/login", "{path}");
    }
}

/// Signs `email` in through the page form of `server` (plain-HTTP cookies); returns the
/// `session=...` cookie pair.
async fn page_sign_in(server: &Server, email: &str) -> String {
    let http = no_redirects();
    let (csrf, token) = page_token(&http, server, "/ui/login").await;
    let login = http
        .post(server.url("/ui/login"))
        .header("cookie", &csrf)
        .form(&[("email", email), ("password", PASSWORD), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    pair(&set_cookies(&login), "session")
}

#[tokio::test]
async fn a_page_session_survives_a_restart_and_is_served_by_another_instance() {
    let server = plain_http_server();
    register(&server, "ivy@example.com").await;
    let session = page_sign_in(&server, "ivy@example.com").await;
    assert!(logged_in(&server, &session).await);
    let server = server.restart();
    assert!(logged_in(&server, &session).await, "a restart signs nobody out");

    // A second instance over the same database and key serves the same browser, and
    // takes the forms the first one showed.
    let other = server.another_instance(&[]);
    assert!(logged_in(&other, &session).await);
    let http = no_redirects();
    let page = http
        .get(server.url("/ui/logout"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    let csrf = pair(&set_cookies(&page), "csrf");
    let token = csrf_field(&page.text().await.unwrap());
    let logout = http
        .post(other.url("/ui/logout"))
        .header("cookie", format!("{session}; {csrf}"))
        .form(&[("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status().as_u16(), 303, "{}", logout.text().await.unwrap());
    assert!(!logged_in(&server, &session).await, "signed out on both");
    assert!(!logged_in(&other, &session).await);
}

/// The account page's download is the API's export of the page session's account.
#[tokio::test]
async fn the_data_download_is_the_signed_in_accounts_export() {
    let server = plain_http_server();
    register(&server, "xia@example.com").await;
    let session = page_sign_in(&server, "xia@example.com").await;
    let answer = no_redirects()
        .get(server.url("/ui/account/export"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        answer.headers()["content-disposition"],
        "attachment; filename=\"account.json\""
    );
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["account"]["email"], "xia@example.com");
    assert_eq!(body["sessions"][0]["current"], true, "{body}");
}

/// The passkey buttons' requests are the pages' forms: a start without the page's token is
/// refused in the API's error shape, a genuine one answers the options; a finish without
/// the token is refused as any form; the script is this site's cacheable file.
#[tokio::test]
async fn the_passkey_routes_of_the_pages_need_the_pages_token() {
    let server = plain_http_server();
    let http = no_redirects();
    let forged = http
        .post(server.url("/ui/passkeys/login/start"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    let body: serde_json::Value = forged.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");

    let (csrf, token) = page_token(&http, &server, "/ui/login").await;
    let begun = http
        .post(server.url("/ui/passkeys/login/start"))
        .header("cookie", &csrf)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(begun.status().as_u16(), 200);
    let begun: serde_json::Value = begun.json().await.unwrap();
    assert!(begun["ceremony"].as_str().unwrap().starts_with("pkc_"), "{begun}");
    assert_eq!(begun["options"]["rpId"], "auth.example.test");

    // A visitor cannot begin a registration, even with a genuine token.
    let registration = http
        .post(server.url("/ui/passkeys/register/start"))
        .header("cookie", &csrf)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(registration.status().as_u16(), 401);

    for path in ["/ui/passkeys/login", "/ui/passkeys/register", "/ui/passkeys/remove"] {
        let refused = http
            .post(server.url(path))
            .form(&[("csrf", "forged"), ("ceremony", "pkc_x"), ("credential", "{}")])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 403, "{path}");
    }

    let script = http.get(server.url("/ui/passkeys.js")).send().await.unwrap();
    assert_eq!(script.status().as_u16(), 200);
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(
        script.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"),
        "versioned by its URL"
    );
}
