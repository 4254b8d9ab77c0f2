//! Outgoing mail, built with lettre: sent through SMTP when `SMTP_URL` is set, otherwise
//! written as an `.eml` file in the outbox directory, where a developer (or a test) reads
//! it. Links come from `AUTH_PUBLIC_URL`, never from the request's `Host` header, so a
//! forged host cannot redirect a reset link.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use auth_core::{ClientInfo, Delivery, SecurityNotice, SecurityNoticeKind, TokenPurpose};
use auth_http::Mail;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message, MultiPart, SinglePart};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use minijinja::Environment;
use serde::Serialize;
use time::format_description::well_known::Rfc2822;

/// Where mail goes.
#[derive(Clone)]
enum Transport {
    Outbox(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Composes and sends the core's deliveries.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    public_url: String,
    /// `mail/mail.txt` and `mail/mail.html`: every mail's two parts.
    templates: Arc<Environment<'static>>,
}

impl Mailer {
    /// Mail written into `dir`.
    ///
    /// # Errors
    ///
    /// A message naming the template, if a built-in mail template does not parse.
    pub fn outbox(dir: PathBuf, from: Mailbox, public_url: String) -> Result<Self, String> {
        Ok(Self {
            transport: Transport::Outbox(dir),
            from,
            public_url,
            templates: Arc::new(templates()?),
        })
    }

    /// Mail sent through the SMTP server of `url` (`smtp://host:25`, `smtps://user:pass@host`,
    /// `smtp://host:587?tls=required`; lettre's URL format).
    pub fn smtp(url: &str, from: Mailbox, public_url: String) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|error| format!("SMTP_URL: {error}"))?
            .build();
        Ok(Self {
            transport: Transport::Smtp(transport),
            from,
            public_url,
            templates: Arc::new(templates()?),
        })
    }

    fn compose(&self, mail: &Mail) -> Result<Message, String> {
        match mail {
            Mail::Link(delivery) => self.compose_link(delivery),
            Mail::Notice(notice) => self.compose_notice(notice),
            Mail::Invitation(delivery) => self.compose_invitation(delivery),
            _ => Err("a kind of mail this server does not know".to_owned()),
        }
    }

    fn compose_notice(&self, notice: &SecurityNotice) -> Result<Message, String> {
        let (subject, what) = match &notice.kind {
            SecurityNoticeKind::PasswordChanged => (
                "Your password was changed".to_owned(),
                "The password of your account was changed. Your other sessions were signed out.".to_owned(),
            ),
            SecurityNoticeKind::PasswordReset => (
                "Your password was reset".to_owned(),
                "A new password was set for your account through a reset link. Every session was signed out."
                    .to_owned(),
            ),
            SecurityNoticeKind::TotpEnabled => (
                "Two-factor authentication is on".to_owned(),
                "Two-factor authentication was turned on for your account: signing in now asks for a \
                 code from your authenticator app. Your other sessions were signed out."
                    .to_owned(),
            ),
            SecurityNoticeKind::TotpDisabled => (
                "Two-factor authentication is off".to_owned(),
                "Two-factor authentication was turned off for your account: signing in asks for your \
                 password only. Your other sessions were signed out."
                    .to_owned(),
            ),
            SecurityNoticeKind::RecoveryCodesRegenerated => (
                "New recovery codes".to_owned(),
                "New recovery codes were made for your account; the old ones no longer work.".to_owned(),
            ),
            SecurityNoticeKind::IdentityLinked(provider) => {
                let provider = display_name(provider.as_str());
                (
                    format!("{provider} can now sign you in"),
                    format!("A {provider} account was linked to your account: it now signs you in."),
                )
            }
            SecurityNoticeKind::IdentityUnlinked(provider) => {
                let provider = display_name(provider.as_str());
                (
                    format!("{provider} no longer signs you in"),
                    format!("The {provider} account linked to your account was unlinked."),
                )
            }
            SecurityNoticeKind::EmailChangeRequested(new) => (
                "A change of your email address was asked for".to_owned(),
                format!(
                    "Someone signed in to your account asked to change its email address to {new}. \
                     Nothing changes until that address confirms it."
                ),
            ),
            SecurityNoticeKind::EmailChanged(new) => (
                "Your email address was changed".to_owned(),
                format!(
                    "The email address of your account is now {new}. Your other sessions were \
                     signed out. Mail about the account now goes there."
                ),
            ),
            SecurityNoticeKind::EmailChangeConfirmed => (
                "This is now your account's email address".to_owned(),
                "You confirmed this address: your account signs in with it from now on.".to_owned(),
            ),
            SecurityNoticeKind::EmailChangeUndone => (
                "Your email address was restored".to_owned(),
                "A change of your account's email address was undone: this address is back, and \
                 every session was signed out. Reset your password now: whoever changed the \
                 address may have changed it too."
                    .to_owned(),
            ),
            SecurityNoticeKind::NewSignIn => (
                "A new sign-in to your account".to_owned(),
                "Your account was signed in to from a device it had no session from.".to_owned(),
            ),
            SecurityNoticeKind::AccountLocked => (
                "Your account is locked".to_owned(),
                "Too many sign-ins with a wrong password, one after another, locked your account: \
                 it signs in again once you set a new password with the link below."
                    .to_owned(),
            ),
            SecurityNoticeKind::AccountDeleted => (
                "Your account was deleted".to_owned(),
                "Your account and everything stored about it were deleted; this address can \
                 create a new account at any time. If this was not you, someone knew your \
                 password: change it wherever else you use it."
                    .to_owned(),
            ),
            SecurityNoticeKind::PasskeyAdded(name) => (
                "A passkey was added to your account".to_owned(),
                format!(
                    "A passkey{} was added to your account: it now signs you in \
                     without a password. If this was not you, remove it from your account's \
                     settings and change your password.",
                    named(name)
                ),
            ),
            SecurityNoticeKind::PasskeyRemoved(name) => (
                "A passkey was removed from your account".to_owned(),
                format!("The passkey{} no longer signs you in to your account.", named(name)),
            ),
            _ => (
                "Your account changed".to_owned(),
                "A security setting of your account changed.".to_owned(),
            ),
        };
        let link = notice.link.as_ref().map(|delivery| {
            let mut view = self.link_view(delivery.purpose, delivery.token.expose_secret(), delivery.expires_at);
            view.link.take().map(|mut link| {
                if delivery.purpose == TokenPurpose::EmailChangeUndo {
                    link.text = "If this was not you, open this link to undo the change and sign \
                                 everyone out"
                        .to_owned();
                }
                link
            })
        });
        let view = MailView {
            heading: subject.clone(),
            subject,
            paragraphs: vec![what],
            link: link.flatten(),
            when: Some(notice.at.format(&Rfc2822).unwrap_or_default()),
            client: Some(client_line(&notice.client)),
            // A deleted account has no password left to reset.
            if_not_you: (notice.kind != SecurityNoticeKind::AccountDeleted).then_some(
                "If this was not you, reset your password at once (and then check the sign-in \
                 providers linked on your account page):",
            ),
            ignore: None,
            site: self.public_url.clone(),
        };
        self.message(notice.to.as_str(), &view)
    }

    fn compose_invitation(&self, delivery: &Delivery) -> Result<Message, String> {
        let mut view = self.link_view(delivery.purpose, delivery.token.expose_secret(), delivery.expires_at);
        view.subject = "You are invited".to_owned();
        view.heading = view.subject.clone();
        view.paragraphs =
            vec!["An account was made for you with this address. Choose its password to start using it.".to_owned()];
        if let Some(link) = view.link.as_mut() {
            link.text = "Open this link to choose your password".to_owned();
        }
        view.ignore = Some("If you did not expect it, ignore this message: nothing happens until the link is used.");
        self.message(delivery.to.as_str(), &view)
    }

    fn compose_link(&self, delivery: &Delivery) -> Result<Message, String> {
        let view = self.link_view(delivery.purpose, delivery.token.expose_secret(), delivery.expires_at);
        self.message(delivery.to.as_str(), &view)
    }

    /// What a mail carrying the single-use `token` for `purpose` says.
    fn link_view(&self, purpose: TokenPurpose, token: &str, expires_at: time::OffsetDateTime) -> MailView {
        let (subject, page, action) = match purpose {
            TokenPurpose::PasswordReset => ("Reset your password", "ui/password/reset", "Set a new password"),
            TokenPurpose::EmailVerification => {
                ("Confirm your email address", "ui/email/verify", "Confirm your address")
            }
            TokenPurpose::EmailChange => (
                "Confirm your new email address",
                "ui/email/change/confirm",
                "Make this your account's address",
            ),
            TokenPurpose::EmailChangeUndo => ("Undo the change", "ui/email/change/undo", "Undo the change"),
            _ => ("Your link", "", "Continue"),
        };
        MailView {
            subject: subject.to_owned(),
            heading: subject.to_owned(),
            paragraphs: Vec::new(),
            link: Some(LinkView {
                text: format!("Open this link to {}", action.to_lowercase()),
                url: format!("{}/{page}?token={token}", self.public_url),
                expires: Some(expires_at.format(&Rfc2822).unwrap_or_default()),
            }),
            when: None,
            client: None,
            if_not_you: None,
            ignore: Some("If you did not ask for it, ignore this message."),
            site: self.public_url.clone(),
        }
    }

    /// The message of `view` to `to`: its plain-text and HTML parts from the two
    /// templates, each 7-bit with CRLF line ends.
    fn message(&self, to: &str, view: &MailView) -> Result<Message, String> {
        // The bare address, never parsed as a mailbox (`Name <addr>`): `Email::parse` only
        // takes addresses lettre's `Address` accepts, so this fails only for an account
        // created before that rule, and the failure is logged like any failed send.
        let address = Address::from_str(to).map_err(|error| format!("recipient: {error}"))?;
        let to = Mailbox::new(None, address);
        let text = render(&self.templates, "mail.txt", view)?;
        let html = render(&self.templates, "mail.html", view)?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&view.subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(seven_bit(ContentType::TEXT_PLAIN, text)?)
                    .singlepart(seven_bit(ContentType::TEXT_HTML, html)?),
            )
            .map_err(|error| error.to_string())
    }

    async fn send(&self, mail: &Mail) -> Result<(), String> {
        let message = self.compose(mail)?;
        match &self.transport {
            Transport::Smtp(transport) => transport
                .send(message)
                .await
                .map(drop)
                .map_err(|error| error.to_string()),
            Transport::Outbox(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|error| error.to_string())?;
                let id = uuid::Uuid::new_v4().simple();
                let name = format!(
                    "{}-{}-{id}.eml",
                    time::OffsetDateTime::now_utc().unix_timestamp_nanos(),
                    kind(mail),
                );
                // Written under a hidden temporary name, then renamed: whoever lists the
                // outbox (a developer, a test, a forwarding script) sees whole messages only.
                let partial = dir.join(format!(".{id}.partial"));
                // Owner-only: the file holds a live token.
                let mut options = tokio::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                options.mode(0o600);
                let written = async {
                    let mut file = options.open(&partial).await?;
                    tokio::io::AsyncWriteExt::write_all(&mut file, &message.formatted()).await?;
                    file.sync_all().await?;
                    tokio::fs::rename(&partial, dir.join(name)).await
                }
                .await;
                if written.is_err() {
                    let _ = tokio::fs::remove_file(&partial).await;
                }
                written.map_err(|error| error.to_string())
            }
        }
    }
}

/// What a mail says, for its two templates (`mail/mail.txt`, `mail/mail.html`).
#[derive(Serialize)]
struct MailView {
    subject: String,
    heading: String,
    paragraphs: Vec<String>,
    /// A single-use link and what it does.
    link: Option<LinkView>,
    /// When the change was made, for a notice.
    when: Option<String>,
    /// Which client made it, for a notice.
    client: Option<String>,
    /// What to do if it was not the owner (the reset page follows).
    if_not_you: Option<&'static str>,
    /// What to do with an unasked-for link.
    ignore: Option<&'static str>,
    /// `AUTH_PUBLIC_URL`.
    site: String,
}

#[derive(Serialize)]
struct LinkView {
    text: String,
    url: String,
    expires: Option<String>,
}

/// The two templates every mail is rendered from.
fn templates() -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    // Escaped by file name: HTML for `.html`, nothing for `.txt`.
    for (name, source) in [
        ("mail.txt", include_str!("../mail/mail.txt")),
        ("mail.html", include_str!("../mail/mail.html")),
    ] {
        env.add_template(name, source)
            .map_err(|error| format!("mail template {name}: {error}"))?;
    }
    Ok(env)
}

fn render(env: &Environment<'static>, name: &str, view: &MailView) -> Result<String, String> {
    let rendered = env
        .get_template(name)
        .and_then(|template| template.render(view))
        .map_err(|error| format!("mail template {name}: {error}"))?;
    Ok(rendered.replace("\r\n", "\n").replace('\n', "\r\n"))
}

/// A part sent as 7bit, its links whole: quoted-printable (lettre's choice for lines over
/// 76 characters) would fold them and encode their `=`, breaking copy and paste. RFC 5322
/// allows 998 characters a line; the parts are ASCII with CRLF line ends.
fn seven_bit(content_type: ContentType, body: String) -> Result<SinglePart, String> {
    if !body.is_ascii() || body.lines().any(|line| line.len() > 998) || body.contains('\0') {
        return Err("the message is not 7-bit text".to_owned());
    }
    let body = Body::dangerous_pre_encoded(body.into_bytes(), ContentTransferEncoding::SevenBit);
    Ok(SinglePart::builder().header(content_type).body(body))
}

/// ` named "<name>"`, a passkey's name as a notice gives it: in 7-bit text, as the client's
/// user agent is (anything else is a `?`).
fn named(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' })
        .collect();
    format!(" named \"{name}\"")
}

/// A provider's configured name as people read it: `google` is "Google".
fn display_name(provider: &str) -> String {
    let mut chars = provider.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The client that made a change, as a notice names it: its user agent and address, in
/// 7-bit text (anything else in a user agent is a `?`), at most 200 characters.
fn client_line(client: &ClientInfo) -> String {
    let agent = client.user_agent().map(|agent| {
        agent
            .chars()
            .take(200)
            .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' })
            .collect::<String>()
    });
    match (agent, client.ip()) {
        (Some(agent), Some(ip)) => format!("{agent}, at {ip}"),
        (Some(agent), None) => agent,
        (None, Some(ip)) => format!("an unnamed client at {ip}"),
        (None, None) => "an unknown client".to_owned(),
    }
}

/// What a mail is, for its file name and the log: the token's purpose, or the notice's
/// kind.
fn kind(mail: &Mail) -> &'static str {
    match mail {
        Mail::Link(delivery) => delivery.purpose.as_str(),
        Mail::Notice(notice) => notice.kind.as_str(),
        Mail::Invitation(_) => "invitation",
        _ => "mail",
    }
}

/// Sends off the request path: the response never waits for (or reveals) the mail.
impl auth_http::SendMail for Mailer {
    fn send_later(&self, mail: Mail) {
        let mailer = self.clone();
        tokio::spawn(async move {
            if let Err(error) = mailer.send(&mail).await {
                // Never the token: only what kind of mail failed.
                tracing::error!(%error, kind = kind(&mail), "could not send a mail");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: fail loudly

    use auth_core::{Email, OpaqueToken, TokenKind, UserId};
    use time::macros::datetime;

    use super::*;

    fn mailer() -> Mailer {
        let from = "auth <no-reply@example.test>".parse().unwrap();
        Mailer::outbox(PathBuf::from("unused"), from, "https://auth.example.test".to_owned()).unwrap()
    }

    fn parts(message: &Message) -> String {
        String::from_utf8(message.formatted()).unwrap()
    }

    #[test]
    fn passkey_notices_name_the_passkey_in_7_bit_text() {
        let at = datetime!(2026-06-01 09:00 UTC);
        for (kind, subject, said) in [
            (
                SecurityNoticeKind::PasskeyAdded("Ada's <b>phone</b> \u{e9}".into()),
                "Subject: A passkey was added to your account",
                "A passkey named \"Ada's <b>phone</b> ?\" was added",
            ),
            (
                SecurityNoticeKind::PasskeyRemoved("Laptop".into()),
                "Subject: A passkey was removed from your account",
                "The passkey named \"Laptop\" no longer signs you in",
            ),
        ] {
            let notice = SecurityNotice::new(
                Email::parse("ada@example.com").unwrap(),
                UserId::new_at(at),
                kind,
                at,
                ClientInfo::unknown(),
            );
            let message = parts(&mailer().compose_notice(&notice).unwrap());
            assert!(message.contains(subject), "{message}");
            assert!(message.contains(said), "{message}");
            if said.contains("<b>") {
                assert!(
                    message.contains("&lt;b&gt;phone"),
                    "the HTML part escapes the name: {message}"
                );
            }
        }
    }

    #[test]
    fn a_notice_has_a_text_and_an_html_part_naming_what_when_and_who_and_no_token() {
        let at = datetime!(2026-06-01 09:00 UTC);
        let client = ClientInfo::new(
            Some("Evil <script>alert(1)</script> Browser/1 \u{e9}"),
            Some("203.0.113.7".parse().unwrap()),
        );
        let notice = SecurityNotice::new(
            Email::parse("ada@example.com").unwrap(),
            UserId::new_at(at),
            SecurityNoticeKind::PasswordChanged,
            at,
            client,
        );
        let message = parts(&mailer().compose_notice(&notice).unwrap());
        assert!(message.contains("Subject: Your password was changed"), "{message}");
        assert!(message.contains("Content-Type: multipart/alternative"), "{message}");
        assert!(message.contains("Content-Type: text/plain"), "{message}");
        assert!(message.contains("Content-Type: text/html"), "{message}");
        // The text part: the words, when, from whom (non-ASCII as `?`), what to do.
        assert!(
            message.contains("The password of your account was changed."),
            "{message}"
        );
        assert!(
            message.contains("When: Mon, 01 Jun 2026 09:00:00 +0000\r\n"),
            "{message}"
        );
        assert!(
            message.contains("From: Evil <script>alert(1)</script> Browser/1 ?, at 203.0.113.7\r\n"),
            "{message}"
        );
        assert!(
            message.contains("https://auth.example.test/ui/password/forgot"),
            "{message}"
        );
        // The HTML part escapes what the client sent.
        assert!(
            message.contains("From: Evil &lt;script&gt;alert(1)&lt;&#x2f;script&gt; Browser&#x2f;1 ?"),
            "{message}"
        );
        assert!(!message.contains("token="), "{message}");
        assert!(message.is_ascii());
    }

    #[test]
    fn a_link_mail_keeps_its_link_whole_in_both_parts() {
        let (token, _) = OpaqueToken::generate(TokenKind::PasswordReset).unwrap();
        let url = format!(
            "https://auth.example.test/ui/password/reset?token={}",
            token.expose_secret()
        );
        let mailer = mailer();
        let view = mailer.link_view(
            TokenPurpose::PasswordReset,
            token.expose_secret(),
            datetime!(2026-06-01 10:00 UTC),
        );
        let message = parts(&mailer.message("ada@example.com", &view).unwrap());
        assert!(message.contains("Subject: Reset your password"), "{message}");
        assert!(
            message.contains(&format!("\r\n{url}\r\n")),
            "the text part's link on its own line: {message}"
        );
        // minijinja escapes `/` in HTML as `&#x2f;`, which a browser reads back as `/`.
        assert!(
            message.contains(&format!("href=\"{}\"", url.replace('/', "&#x2f;"))),
            "{message}"
        );
        assert!(
            message.contains("It works once, until Mon, 01 Jun 2026 10:00:00 +0000."),
            "{message}"
        );
        assert!(
            message.contains("If you did not ask for it, ignore this message."),
            "{message}"
        );
    }
}
