//! Outgoing mail: each message written as an `.eml` file in the outbox directory, where a
//! developer (or a test) reads it. Links come from `AUTH_PUBLIC_URL`, never from the
//! request's `Host` header, so a forged host cannot redirect a reset link.

use std::path::PathBuf;

use auth_core::{Delivery, TokenPurpose};
use time::format_description::well_known::Rfc2822;

/// Writes messages into a directory.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    dir: PathBuf,
    public_url: String,
}

impl Outbox {
    pub(crate) fn new(dir: PathBuf, public_url: String) -> Self {
        Self { dir, public_url }
    }

    /// Sends off the request path: the response never waits for (or reveals) the mail.
    pub(crate) fn send_later(&self, delivery: Delivery) {
        let outbox = self.clone();
        tokio::spawn(async move {
            if let Err(error) = outbox.send(&delivery).await {
                // Never the token: only where it was going.
                tracing::error!(%error, purpose = delivery.purpose.as_str(), "could not write a mail to the outbox");
            }
        });
    }

    async fn send(&self, delivery: &Delivery) -> std::io::Result<()> {
        let (subject, page, action) = match delivery.purpose {
            TokenPurpose::PasswordReset => ("Reset your password", "ui/password/reset", "set a new password"),
            TokenPurpose::EmailVerification => {
                ("Confirm your email address", "ui/email/verify", "confirm your address")
            }
            _ => ("Your link", "", "continue"),
        };
        let link = format!("{}/{page}?token={}", self.public_url, delivery.token.expose_secret());
        let date = time::OffsetDateTime::now_utc().format(&Rfc2822).unwrap_or_default();
        let expires = delivery.expires_at.format(&Rfc2822).unwrap_or_default();
        let message = format!(
            "From: auth <no-reply@localhost>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n\
             Open this link to {action}:\r\n\r\n{link}\r\n\r\nIt works once, until {expires}.\r\n\
             If you did not ask for it, ignore this message.\r\n",
            to = delivery.to.as_str(),
        );
        tokio::fs::create_dir_all(&self.dir).await?;
        let name = format!(
            "{}-{}-{}.eml",
            time::OffsetDateTime::now_utc().unix_timestamp_nanos(),
            delivery.purpose.as_str(),
            uuid::Uuid::new_v4().simple()
        );
        tokio::fs::write(self.dir.join(name), message).await
    }
}
