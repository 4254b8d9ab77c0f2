//! The pages' templates and assets: minijinja templates (one layout, one file per page),
//! one stylesheet and one icon, built in and replaceable from a directory
//! (`AUTH_UI_TEMPLATES`).
//!
//! minijinja rather than askama: the templates are read when the server starts, so an
//! application restyles or rewords its pages without recompiling. What askama would
//! check at compile time is checked at start instead: every template is parsed and
//! rendered with sample pages in every state, and the server refuses to start, naming the
//! file and line, when one fails. Every value is HTML-escaped by the engine, whatever the
//! file name; the built-in templates never mark anything safe (a test holds them to it).

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::AppState;

/// The built-in templates, by file name.
pub(crate) const TEMPLATES: [(&str, &str); 20] = [
    ("base.html", include_str!("../../ui/base.html")),
    ("forms.html", include_str!("../../ui/forms.html")),
    ("home.html", include_str!("../../ui/home.html")),
    ("register.html", include_str!("../../ui/register.html")),
    ("login.html", include_str!("../../ui/login.html")),
    ("logout.html", include_str!("../../ui/logout.html")),
    ("forgot.html", include_str!("../../ui/forgot.html")),
    ("reset.html", include_str!("../../ui/reset.html")),
    ("verify.html", include_str!("../../ui/verify.html")),
    ("password_change.html", include_str!("../../ui/password_change.html")),
    ("email_change.html", include_str!("../../ui/email_change.html")),
    (
        "email_change_confirm.html",
        include_str!("../../ui/email_change_confirm.html"),
    ),
    (
        "email_change_undo.html",
        include_str!("../../ui/email_change_undo.html"),
    ),
    ("account_delete.html", include_str!("../../ui/account_delete.html")),
    ("message.html", include_str!("../../ui/message.html")),
    ("onward.html", include_str!("../../ui/onward.html")),
    ("login_code.html", include_str!("../../ui/login_code.html")),
    ("mfa.html", include_str!("../../ui/mfa.html")),
    ("mfa_setup.html", include_str!("../../ui/mfa_setup.html")),
    ("mfa_codes.html", include_str!("../../ui/mfa_codes.html")),
];
const STYLESHEET: (&str, &str) = ("style.css", include_str!("../../ui/style.css"));
const ICON: (&str, &str) = ("icon.svg", include_str!("../../ui/icon.svg"));
const PASSKEY_SCRIPT: (&str, &str) = ("passkeys.js", include_str!("../../ui/passkeys.js"));

/// The pages' templates and assets, shared by every request.
#[derive(Clone)]
pub(crate) struct Views {
    env: Arc<Environment<'static>>,
    stylesheet: Asset,
    icon: Asset,
    passkey_script: Asset,
}

/// A file served as is, under a URL that changes with its content (so it can be cached
/// for a year and a new version is still fetched at once).
#[derive(Clone)]
struct Asset {
    body: Bytes,
    url: String,
}

impl Asset {
    fn new(path: &str, body: String) -> Self {
        let digest = Sha256::digest(body.as_bytes());
        let version: String = digest.iter().take(6).map(|byte| format!("{byte:02x}")).collect();
        Self {
            url: format!("{path}?v={version}"),
            body: Bytes::from(body),
        }
    }
}

/// A message about the whole page: an error (announced at once) or a success.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Notice {
    kind: &'static str,
    text: String,
}

impl Notice {
    pub(crate) fn error(text: impl Into<String>) -> Self {
        Self {
            kind: "error",
            text: text.into(),
        }
    }

    pub(crate) fn success(text: impl Into<String>) -> Self {
        Self {
            kind: "success",
            text: text.into(),
        }
    }
}

/// The errors shown under the fields that caused them.
#[derive(Serialize, Default, Debug)]
pub(crate) struct FieldErrors {
    pub(crate) email: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) current_password: Option<String>,
    pub(crate) new_password: Option<String>,
    pub(crate) code: Option<String>,
    pub(crate) recovery_code: Option<String>,
    pub(crate) disable_password: Option<String>,
    pub(crate) disable_code: Option<String>,
}

/// The two-factor pages (`mfa.html`, `mfa_setup.html`, `mfa_codes.html`).
#[derive(Serialize, Default, Debug)]
pub(crate) struct MfaPage {
    pub(crate) csrf: String,
    pub(crate) signed_in: bool,
    pub(crate) notice: Option<Notice>,
    pub(crate) errors: FieldErrors,
    /// The account's address, for password managers.
    pub(crate) email: String,
    /// Whether an authenticator app is confirmed.
    pub(crate) enabled: bool,
    pub(crate) recovery_codes_left: u32,
    /// An enrolment begun: what to scan or type.
    pub(crate) setup: Option<SetupView>,
    /// Recovery codes, shown once.
    pub(crate) recovery_codes: Vec<String>,
}

/// What an enrolment shows: the QR code as a `data:` URL, the key (also in groups of
/// four), the `otpauth://` URI.
#[derive(Serialize, Default, Debug)]
pub(crate) struct SetupView {
    pub(crate) qr: String,
    pub(crate) secret: String,
    pub(crate) secret_grouped: String,
    pub(crate) uri: String,
}

/// Every page with a form but the account page: what it needs of these fields.
#[derive(Serialize, Default, Debug)]
pub(crate) struct FormPage {
    pub(crate) csrf: String,
    pub(crate) signed_in: bool,
    pub(crate) notice: Option<Notice>,
    /// The address typed, shown again after a failed attempt (a password never is).
    pub(crate) email: Option<String>,
    pub(crate) errors: FieldErrors,
    /// The password policy in words, shown before the person types a new password.
    pub(crate) password_rules: Vec<String>,
    /// The one-time token of the reset and verification links.
    pub(crate) token: Option<String>,
    /// The account has two-factor authentication (the password change asks for a code
    /// when the sign-in is not recent).
    pub(crate) second_factor: bool,
    /// The sign-in and registration pages' "Sign in with …" links, one per configured
    /// identity provider.
    pub(crate) providers: Vec<ProviderLink>,
    /// The server signs in with passkeys (the sign-in page's "Sign in with a passkey").
    pub(crate) passkeys: bool,
}

/// An identity provider as the pages offer it: its name to show and where to go (a link
/// to sign in, or a form's action to link).
#[derive(Serialize, Debug)]
pub(crate) struct ProviderLink {
    pub(crate) name: String,
    pub(crate) href: String,
}

/// The account page: the account and its sessions when signed in, a welcome otherwise.
#[derive(Serialize, Default, Debug)]
pub(crate) struct HomePage {
    pub(crate) csrf: String,
    pub(crate) signed_in: bool,
    pub(crate) notice: Option<Notice>,
    pub(crate) account: Option<AccountView>,
    pub(crate) sessions: Vec<SessionView>,
    /// The identity providers linked to the account.
    pub(crate) identities: Vec<IdentityView>,
    /// The configured providers it can link, each with its form's action.
    pub(crate) linkable: Vec<ProviderLink>,
    /// The account's passkeys, when the server has passkeys.
    pub(crate) passkeys: Option<Vec<PasskeyItem>>,
}

/// A passkey as the account page lists it.
#[derive(Serialize, Debug)]
pub(crate) struct PasskeyItem {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) added: String,
    pub(crate) last_used: Option<String>,
}

#[derive(Serialize, Debug)]
pub(crate) struct AccountView {
    pub(crate) email: String,
    pub(crate) verified: bool,
    pub(crate) created: String,
    pub(crate) roles: Vec<String>,
    /// The account has a password (one created through a provider has none until it sets
    /// one through the reset flow).
    pub(crate) has_password: bool,
}

#[derive(Serialize, Debug)]
pub(crate) struct IdentityView {
    pub(crate) id: String,
    pub(crate) provider: String,
    pub(crate) email: Option<String>,
    pub(crate) linked: String,
    pub(crate) last_used: Option<String>,
}

#[derive(Serialize, Debug)]
pub(crate) struct SessionView {
    pub(crate) id: String,
    pub(crate) device: String,
    pub(crate) ip: Option<String>,
    pub(crate) started: String,
    pub(crate) last_active: String,
    pub(crate) current: bool,
}

/// A page that only says something, with a link onwards.
#[derive(Serialize, Debug)]
pub(crate) struct MessagePage {
    pub(crate) signed_in: bool,
    pub(crate) notice: Option<Notice>,
    pub(crate) heading: &'static str,
    pub(crate) text: Option<String>,
    pub(crate) link: Option<Link>,
}

/// A page that sends the browser on to `href` at once (`onward.html`).
#[derive(Serialize, Debug)]
pub(crate) struct OnwardPage {
    pub(crate) signed_in: bool,
    pub(crate) notice: Option<Notice>,
    pub(crate) heading: &'static str,
    pub(crate) text: String,
    pub(crate) href: String,
    pub(crate) button: String,
}

#[derive(Serialize, Debug)]
pub(crate) struct Link {
    pub(crate) href: &'static str,
    pub(crate) text: &'static str,
}

impl Views {
    /// The built-in templates and assets, each replaced by the file of the same name in
    /// `dir` when there is one; the site's name `site` in every page's header.
    ///
    /// # Errors
    ///
    /// A message naming the file, when `dir` cannot be read, holds an `.html`, `.css` or
    /// `.svg` file of no known name (a misspelt replacement would otherwise be silently
    /// ignored), or a template does not parse or fails to render a sample page.
    pub(crate) fn load(dir: Option<&Path>, site: &str) -> Result<Self, String> {
        let read = |(name, built_in): (&'static str, &'static str)| -> Result<String, String> {
            match dir.map(|dir| dir.join(name)) {
                Some(path) if path.exists() => std::fs::read_to_string(&path)
                    .map_err(|error| format!("AUTH_UI_TEMPLATES: {}: {error}", path.display())),
                _ => Ok(built_in.to_owned()),
            }
        };
        if let Some(dir) = dir {
            let known: Vec<&str> = TEMPLATES
                .iter()
                .chain([&STYLESHEET, &ICON])
                .map(|(name, _)| *name)
                .collect();
            let entries =
                std::fs::read_dir(dir).map_err(|error| format!("AUTH_UI_TEMPLATES: {}: {error}", dir.display()))?;
            for entry in entries {
                let entry = entry.map_err(|error| format!("AUTH_UI_TEMPLATES: {}: {error}", dir.display()))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                // Only what looks like a page file: a README or an editor's file may sit
                // beside them.
                let page_like = [".html", ".css", ".svg"].iter().any(|end| name.ends_with(end));
                if page_like && !known.contains(&name.as_ref()) {
                    return Err(format!(
                        "AUTH_UI_TEMPLATES: {}: no page uses a file of this name (the names are {})",
                        entry.path().display(),
                        known.join(", ")
                    ));
                }
            }
        }
        let mut env = Environment::new();
        // Everything is escaped as HTML, whatever a replacement file is called.
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        // A misspelt variable fails the start-up check rather than printing nothing.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for template in TEMPLATES {
            let source = read(template)?;
            env.add_template_owned(template.0, source)
                .map_err(|error| template_error(dir, &error))?;
        }
        let stylesheet = Asset::new("/ui/style.css", read(STYLESHEET)?);
        let icon = Asset::new("/ui/icon.svg", read(ICON)?);
        let passkey_script = Asset::new("/ui/passkeys.js", read(PASSKEY_SCRIPT)?);
        env.add_global("site", site.to_owned());
        env.add_global("passkey_script", passkey_script.url.clone());
        env.add_global("stylesheet", stylesheet.url.clone());
        env.add_global("icon", icon.url.clone());
        let views = Self {
            env: Arc::new(env),
            stylesheet,
            icon,
            passkey_script,
        };
        for (name, sample) in samples() {
            views
                .render_to_string(name, &sample)
                .map_err(|error| template_error(dir, &error))?;
        }
        Ok(views)
    }

    fn render_to_string(&self, name: &str, page: &impl Serialize) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(page)
    }

    /// The page `name` rendered with `page`, answered with `status`. A template that
    /// fails here passed the start-up check, so it is a bug of this server: logged, and
    /// answered with a plain 500 page.
    pub(crate) fn render_with(&self, status: StatusCode, name: &str, page: &impl Serialize) -> Response {
        match self.render_to_string(name, page) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(error) => {
                tracing::error!(template = name, %error, "a page could not be rendered");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Html("<!doctype html><html lang=\"en\"><title>Error</title><p>Something went wrong on our side.</p></html>"),
                )
                    .into_response()
            }
        }
    }
}

/// The template error, with its file and line, and where the file came from.
fn template_error(dir: Option<&Path>, error: &minijinja::Error) -> String {
    let file = error.name().unwrap_or("a template");
    let line = error.line().map_or(String::new(), |line| format!(", line {line}"));
    let origin = match dir {
        Some(dir) if dir.join(file).exists() => format!("{}", dir.join(file).display()),
        _ => format!("built-in {file}"),
    };
    format!("page template {origin}{line}: {error:#}")
}

fn asset(asset: &Asset, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // The URL changes with the content (`?v=`): a year is safe.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        asset.body.clone(),
    )
        .into_response()
}

/// `GET /ui/style.css`.
pub(crate) async fn stylesheet(State(state): State<AppState>) -> Response {
    asset(&state.views.stylesheet, "text/css; charset=utf-8")
}

/// `GET /ui/icon.svg`.
pub(crate) async fn icon(State(state): State<AppState>) -> Response {
    asset(&state.views.icon, "image/svg+xml")
}

/// `GET /ui/passkeys.js`: the pages' only script, the passkey buttons'.
pub(crate) async fn passkey_script(State(state): State<AppState>) -> Response {
    asset(&state.views.passkey_script, "text/javascript; charset=utf-8")
}

/// Every page in every state its template distinguishes, with made-up values: what the
/// start-up check renders.
fn samples() -> Vec<(&'static str, minijinja::Value)> {
    use minijinja::Value;
    let rules = vec!["At least 8 characters.".to_owned()];
    let errors = || FieldErrors {
        email: Some("sample".to_owned()),
        password: Some("sample".to_owned()),
        current_password: Some("sample".to_owned()),
        new_password: Some("sample".to_owned()),
        code: Some("sample".to_owned()),
        recovery_code: Some("sample".to_owned()),
        disable_password: Some("sample".to_owned()),
        disable_code: Some("sample".to_owned()),
    };
    let form = |with_errors: bool| FormPage {
        csrf: "csrf".to_owned(),
        signed_in: with_errors,
        notice: with_errors.then(|| Notice::error("sample")),
        email: with_errors.then(|| "ada@example.com".to_owned()),
        errors: if with_errors { errors() } else { FieldErrors::default() },
        password_rules: rules.clone(),
        token: Some("token".to_owned()),
        second_factor: with_errors,
        providers: with_errors.then(sample_provider).into_iter().collect(),
        passkeys: with_errors,
    };
    let home = |signed_in: bool| HomePage {
        csrf: "csrf".to_owned(),
        signed_in,
        notice: Some(Notice::success("sample")),
        account: signed_in.then(|| AccountView {
            email: "ada@example.com".to_owned(),
            verified: false,
            created: "2026-01-01".to_owned(),
            roles: vec!["admin".to_owned()],
            has_password: signed_in,
        }),
        identities: vec![IdentityView {
            id: "id".to_owned(),
            provider: "Google".to_owned(),
            email: Some("ada@example.com".to_owned()),
            linked: "2026-01-01".to_owned(),
            last_used: Some("2026-01-01 00:00 UTC".to_owned()),
        }],
        linkable: vec![sample_provider()],
        passkeys: signed_in.then(|| {
            vec![PasskeyItem {
                id: "id".to_owned(),
                name: "Laptop".to_owned(),
                added: "2026-01-01".to_owned(),
                last_used: Some("2026-01-01 00:00 UTC".to_owned()),
            }]
        }),
        sessions: [true, false]
            .into_iter()
            .map(|current| SessionView {
                id: "id".to_owned(),
                device: "Firefox on Linux".to_owned(),
                ip: Some("192.0.2.1".to_owned()),
                started: "2026-01-01 00:00 UTC".to_owned(),
                last_active: "2026-01-01 00:00 UTC".to_owned(),
                current,
            })
            .collect(),
    };
    fn sample_provider() -> ProviderLink {
        ProviderLink {
            name: "Google".to_owned(),
            href: "/oauth/google/start".to_owned(),
        }
    }
    let message = |full: bool| MessagePage {
        signed_in: full,
        notice: full.then(|| Notice::success("sample")),
        heading: "Sample",
        text: full.then(|| "sample".to_owned()),
        link: full.then_some(Link {
            href: "/",
            text: "Home",
        }),
    };
    let mut samples = Vec::new();
    for name in [
        "register.html",
        "login.html",
        "logout.html",
        "forgot.html",
        "reset.html",
        "verify.html",
        "password_change.html",
        "email_change.html",
        "email_change_confirm.html",
        "email_change_undo.html",
        "account_delete.html",
        "login_code.html",
    ] {
        for with_errors in [false, true] {
            samples.push((name, Value::from_serialize(form(with_errors))));
        }
    }
    for signed_in in [false, true] {
        samples.push(("home.html", Value::from_serialize(home(signed_in))));
    }
    for full in [false, true] {
        samples.push(("message.html", Value::from_serialize(message(full))));
    }
    samples.push((
        "onward.html",
        Value::from_serialize(OnwardPage {
            signed_in: true,
            notice: None,
            heading: "Sample",
            text: "sample".to_owned(),
            href: "https://accounts.example.com/authorize?state=x&scope=openid".to_owned(),
            button: "Continue".to_owned(),
        }),
    ));
    let mfa = |enabled: bool, with_errors: bool| MfaPage {
        csrf: "csrf".to_owned(),
        signed_in: true,
        notice: with_errors.then(|| Notice::error("sample")),
        errors: if with_errors { errors() } else { FieldErrors::default() },
        email: "ada@example.com".to_owned(),
        enabled,
        recovery_codes_left: 7,
        setup: Some(SetupView {
            qr: "data:image/svg+xml;base64,PHN2Zy8+".to_owned(),
            secret: "JBSWY3DPEHPK3PXP".to_owned(),
            secret_grouped: "JBSW Y3DP EHPK 3PXP".to_owned(),
            uri: "otpauth://totp/Sample:ada%40example.com?secret=JBSWY3DPEHPK3PXP".to_owned(),
        }),
        recovery_codes: vec!["abcd-efgh-ijkl-mnop".to_owned()],
    };
    for name in ["mfa.html", "mfa_setup.html", "mfa_codes.html"] {
        for (enabled, with_errors) in [(false, false), (true, false), (false, true), (true, true)] {
            samples.push((name, Value::from_serialize(mfa(enabled, with_errors))));
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_templates_load_and_escape_everything() {
        let views = Views::load(None, "Site <b>").unwrap();
        let page = FormPage {
            csrf: "c".to_owned(),
            email: Some("\"><script>alert(1)</script>".to_owned()),
            errors: FieldErrors {
                email: Some("<i>bad</i>".to_owned()),
                ..FieldErrors::default()
            },
            ..FormPage::default()
        };
        let html = views.render_to_string("login.html", &page).unwrap();
        assert!(
            html.contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;&#x2f;script&gt;\""),
            "{html}"
        );
        assert!(html.contains("&lt;i&gt;bad&lt;&#x2f;i&gt;"), "{html}");
        assert!(html.contains("Site &lt;b&gt;"), "{html}");
        assert!(!html.contains("<script>") && !html.contains("<i>"));
    }

    #[test]
    fn the_built_in_templates_never_turn_escaping_off_nor_style_inline() {
        for (name, source) in TEMPLATES {
            // The one script the pages load: this site's file, by its versioned URL.
            let source = source.replace(r#"<script src="{{ passkey_script }}" defer></script>"#, "");
            let source = source.as_str();
            for unsafe_construct in [
                "|safe",
                "| safe",
                "autoescape",
                "style=",
                "<style",
                "<script",
                "javascript:",
            ] {
                assert!(
                    !source.contains(unsafe_construct),
                    "{name} holds {unsafe_construct:?}: the pages escape everything and run under a strict CSP"
                );
            }
            // Inline event handlers (` onclick=`): a space, `on`, letters, `=`.
            let handler = source.match_indices(" on").any(|(at, _)| {
                let rest = &source[at + 3..];
                let letters = rest.chars().take_while(char::is_ascii_lowercase).count();
                letters > 0 && rest[letters..].starts_with('=')
            });
            assert!(!handler, "{name} holds an inline event handler");
        }
    }

    #[test]
    fn replacements_come_from_the_directory_and_misspelt_or_broken_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("auth-ui-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("style.css"), "body { color: red; }").unwrap();
        let views = Views::load(Some(&dir), "Site").unwrap();
        assert_eq!(&views.stylesheet.body[..], b"body { color: red; }");
        assert!(views.stylesheet.url.starts_with("/ui/style.css?v="));
        assert_ne!(views.stylesheet.url, Views::load(None, "Site").unwrap().stylesheet.url);

        std::fs::write(dir.join("logni.html"), "").unwrap();
        let error = Views::load(Some(&dir), "Site").err().unwrap();
        assert!(error.contains("logni.html") && error.contains("login.html"), "{error}");
        std::fs::remove_file(dir.join("logni.html")).unwrap();
        std::fs::write(dir.join("README.md"), "our theme").unwrap();
        assert!(
            Views::load(Some(&dir), "Site").is_ok(),
            "other files may sit beside them"
        );

        std::fs::write(
            dir.join("login.html"),
            "{% extends \"base.html\" %}\n{% block content %}{{ nothing.here }}{% endblock %}",
        )
        .unwrap();
        let error = Views::load(Some(&dir), "Site").err().unwrap();
        assert!(error.contains("login.html") && error.contains("line 2"), "{error}");
        std::fs::write(dir.join("login.html"), "{% if %}").unwrap();
        let error = Views::load(Some(&dir), "Site").err().unwrap();
        assert!(error.contains("login.html") && error.contains("line 1"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
