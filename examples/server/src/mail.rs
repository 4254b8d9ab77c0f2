//! Outgoing mail, built with lettre: sent through SMTP when `SMTP_URL` is set, otherwise
//! written as an `.eml` file in the outbox directory, where a developer (or a test) reads
//! it. Links come from `AUTH_PUBLIC_URL`, never from the request's `Host` header, so a
//! forged host cannot redirect a reset link.

use std::path::PathBuf;
use std::str::FromStr;

use auth_core::{ClientInfo, Delivery, SecurityNotice, SecurityNoticeKind, TokenPurpose};
use auth_http::Mail;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message, SinglePart};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
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
}

impl Mailer {
    /// Mail written into `dir`.
    pub fn outbox(dir: PathBuf, from: Mailbox, public_url: String) -> Self {
        Self {
            transport: Transport::Outbox(dir),
            from,
            public_url,
        }
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
        })
    }

    fn compose(&self, mail: &Mail) -> Result<Message, String> {
        match mail {
            Mail::Link(delivery) => self.compose_link(delivery),
            Mail::Notice(notice) => self.compose_notice(notice),
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
            _ => (
                "Your account changed".to_owned(),
                "A security setting of your account changed.".to_owned(),
            ),
        };
        let at = notice.at.format(&Rfc2822).unwrap_or_default();
        let text = format!(
            "{what}\r\n\r\nWhen: {at}\r\nFrom: {}\r\n\r\nIf this was not you, reset your password at once \
             (and then check the sign-in providers linked on your account page):\r\n\r\n\
             {}/ui/password/forgot\r\n",
            client_line(&notice.client),
            self.public_url
        );
        self.message(notice.to.as_str(), &subject, text)
    }

    fn compose_link(&self, delivery: &Delivery) -> Result<Message, String> {
        let (subject, page, action) = match delivery.purpose {
            TokenPurpose::PasswordReset => ("Reset your password", "ui/password/reset", "set a new password"),
            TokenPurpose::EmailVerification => {
                ("Confirm your email address", "ui/email/verify", "confirm your address")
            }
            _ => ("Your link", "", "continue"),
        };
        let link = format!("{}/{page}?token={}", self.public_url, delivery.token.expose_secret());
        let expires = delivery.expires_at.format(&Rfc2822).unwrap_or_default();
        let text = format!(
            "Open this link to {action}:\r\n\r\n{link}\r\n\r\nIt works once, until {expires}.\r\n\
             If you did not ask for it, ignore this message.\r\n"
        );
        self.message(delivery.to.as_str(), subject, text)
    }

    /// A plain-text message to `to`.
    fn message(&self, to: &str, subject: &str, text: String) -> Result<Message, String> {
        // The bare address, never parsed as a mailbox (`Name <addr>`): `Email::parse` only
        // takes addresses lettre's `Address` accepts, so this fails only for an account
        // created before that rule, and the failure is logged like any failed send.
        let address = Address::from_str(to).map_err(|error| format!("recipient: {error}"))?;
        let to = Mailbox::new(None, address);
        // Sent as 7bit, the link whole: quoted-printable (lettre's choice for lines over 76
        // characters) would fold it and encode its `=`, breaking copy and paste. RFC 5322
        // allows 998 characters a line; the text is ASCII with CRLF line ends.
        if !text.is_ascii() || text.lines().any(|line| line.len() > 998) || text.contains('\0') {
            return Err("the message is not 7-bit text".to_owned());
        }
        let body = Body::dangerous_pre_encoded(text.into_bytes(), ContentTransferEncoding::SevenBit);
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(body))
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
