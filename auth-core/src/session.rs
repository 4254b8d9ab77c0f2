//! Sessions: one per login, each a family of rotating refresh tokens.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use time::OffsetDateTime;

use crate::auth_method::{AuthMethod, AuthMethods};
use crate::clock::later_by;
use crate::id::{SessionId, UserId};
use crate::token::{AccessToken, OpaqueToken};

/// Longest user agent kept, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// What the caller knows about the client making a request: kept with the session so
/// its owner can recognize their devices. The values are untrusted: the user agent is
/// truncated and stripped of control characters; the IP is whatever the application
/// determined (the peer address, or a forwarded one only behind a proxy it trusts).
///
/// ```
/// use auth_core::ClientInfo;
///
/// let client = ClientInfo::new(Some("Mozilla/5.0\r\nX-Injected: 1"), Some("203.0.113.7".parse().unwrap()));
/// assert_eq!(client.user_agent(), Some("Mozilla/5.0X-Injected: 1"));
/// // No address at all must be said by name: every such caller shares one rate-limit bucket.
/// assert_eq!(ClientInfo::unknown().ip(), None);
/// ```
///
/// There is deliberately no `Default`: a client whose address was forgotten (a server
/// that did not pass the peer address to its handlers) would silently put every caller
/// in one rate-limit bucket, where the eleventh registration from anyone is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    user_agent: Option<String>,
    ip: Option<IpAddr>,
}

impl ClientInfo {
    /// Client metadata; the user agent is sanitized (see the type documentation).
    pub fn new(user_agent: Option<&str>, ip: Option<IpAddr>) -> Self {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT_CHARS)
                    .collect::<String>()
            })
            .filter(|ua| !ua.trim().is_empty());
        Self { user_agent, ip }
    }

    /// A client about which nothing is known: no user agent, no address. For work that
    /// no client asked for (a command line tool, a scheduled job, a test). A request
    /// served without its peer address is counted with every other such request under
    /// one shared rate-limit key (see [`rate_limit_key`](Self::rate_limit_key)), so a
    /// server should never build this for a request.
    ///
    /// ```
    /// use auth_core::ClientInfo;
    ///
    /// let job = ClientInfo::unknown();
    /// assert_eq!((job.user_agent(), job.ip(), job.rate_limit_key()), (None, None, None));
    /// ```
    pub fn unknown() -> Self {
        Self {
            user_agent: None,
            ip: None,
        }
    }

    /// The sanitized user agent.
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    /// The client's IP address.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// The key per-client rate limits count under: the IPv4 address (also when it comes
    /// IPv4-mapped, `::ffff:a.b.c.d`, or through NAT64, `64:ff9b::a.b.c.d`), or the /64
    /// prefix of an IPv6 address (one host usually holds a whole /64). `None` without an
    /// IP: the service then counts all such clients under one shared key, and logs that
    /// once.
    ///
    /// ```
    /// use auth_core::ClientInfo;
    ///
    /// let v6 = ClientInfo::new(None, Some("2001:db8:1:2:aaaa::1".parse().unwrap()));
    /// assert_eq!(v6.rate_limit_key().as_deref(), Some("2001:db8:1:2::/64"));
    /// let v4 = ClientInfo::new(None, Some("203.0.113.7".parse().unwrap()));
    /// assert_eq!(v4.rate_limit_key().as_deref(), Some("203.0.113.7"));
    /// let nat64 = ClientInfo::new(None, Some("64:ff9b::203.0.113.7".parse().unwrap()));
    /// assert_eq!(nat64.rate_limit_key().as_deref(), Some("203.0.113.7"));
    /// ```
    pub fn rate_limit_key(&self) -> Option<String> {
        const NAT64_PREFIX: [u16; 6] = [0x64, 0xff9b, 0, 0, 0, 0];
        self.ip.map(|ip| match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let segments = v6.segments();
                if let Some(v4) = v6.to_ipv4_mapped() {
                    v4.to_string()
                } else if segments[..6] == NAT64_PREFIX {
                    let [.., a, b, c, d] = v6.octets();
                    std::net::Ipv4Addr::new(a, b, c, d).to_string()
                } else {
                    let prefix =
                        std::net::Ipv6Addr::new(segments[0], segments[1], segments[2], segments[3], 0, 0, 0, 0);
                    format!("{prefix}/64")
                }
            }
        })
    }
}

/// A login session: the family of refresh tokens issued from one login, rotated on every
/// refresh. What a store keeps and what [`AuthService::list_sessions`](crate::AuthService::list_sessions)
/// shows (never a token).
///
/// Built with [`Session::new`] and the `with_*` methods: it is `#[non_exhaustive]`, so
/// that a field added later, with its default, breaks no store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Session {
    /// Stable identifier; access tokens carry it as `sid`.
    pub id: SessionId,
    /// The account.
    pub user_id: UserId,
    /// When the login happened.
    pub created_at: OffsetDateTime,
    /// When a refresh token of this session was last issued.
    pub last_used_at: OffsetDateTime,
    /// The absolute end of the session, whatever its use.
    pub expires_at: OffsetDateTime,
    /// The client's user agent at login.
    pub user_agent: Option<String>,
    /// The client's IP address at login.
    pub ip: Option<IpAddr>,
    /// When the session was ended (logout, revocation, reuse detected), if it was.
    pub revoked_at: Option<OffsetDateTime>,
    /// How the person proved who they are when the session began (a password login
    /// records [`AuthMethod::PASSWORD`](crate::AuthMethod::PASSWORD)); its access tokens
    /// carry it as `amr`, unless it is a password alone (see
    /// [`AccessClaims::auth_methods`](crate::AccessClaims::auth_methods)).
    pub auth_methods: AuthMethods,
    /// When they proved it (`auth_time`): the session's beginning; refreshes keep it.
    pub auth_time: OffsetDateTime,
}

impl Session {
    /// A session that began at `created_at` with a password alone and ends at
    /// `expires_at` at the latest: last used and authenticated at `created_at`, no client
    /// information, not revoked, until a `with_*` method says otherwise.
    ///
    /// ```
    /// use auth_core::{AuthMethod, AuthMethods, Session, SessionId, UserId};
    /// use time::macros::datetime;
    ///
    /// let start = datetime!(2026-03-01 9:00 UTC);
    /// let session = Session::new(SessionId::new_at(start), UserId::new_at(start), start, datetime!(2026-03-31 9:00 UTC))
    ///     .with_ip(Some("203.0.113.7".parse().unwrap()))
    ///     .with_auth_methods(AuthMethods::from(AuthMethod::PASSWORD).with(AuthMethod::ONE_TIME_PASSWORD))
    ///     .with_last_used_at(datetime!(2026-03-02 9:00 UTC));
    /// assert_eq!((session.auth_time, session.revoked_at), (start, None));
    /// assert!(!session.auth_methods.is_password_only());
    /// ```
    pub fn new(id: SessionId, user_id: UserId, created_at: OffsetDateTime, expires_at: OffsetDateTime) -> Self {
        Self {
            id,
            user_id,
            created_at,
            last_used_at: created_at,
            expires_at,
            user_agent: None,
            ip: None,
            revoked_at: None,
            auth_methods: AuthMethods::from(AuthMethod::PASSWORD),
            auth_time: created_at,
        }
    }

    /// Sets when a refresh token of the session was last issued.
    #[must_use]
    pub fn with_last_used_at(mut self, last_used_at: OffsetDateTime) -> Self {
        self.last_used_at = last_used_at;
        self
    }

    /// Sets the client's user agent at login.
    #[must_use]
    pub fn with_user_agent(mut self, user_agent: Option<String>) -> Self {
        self.user_agent = user_agent;
        self
    }

    /// Sets the client's IP address at login.
    #[must_use]
    pub fn with_ip(mut self, ip: Option<IpAddr>) -> Self {
        self.ip = ip;
        self
    }

    /// Sets when the session was ended (`None`: it was not).
    #[must_use]
    pub fn with_revoked_at(mut self, revoked_at: Option<OffsetDateTime>) -> Self {
        self.revoked_at = revoked_at;
        self
    }

    /// Sets how the person proved who they are.
    #[must_use]
    pub fn with_auth_methods(mut self, auth_methods: AuthMethods) -> Self {
        self.auth_methods = auth_methods;
        self
    }

    /// Sets when they proved it.
    #[must_use]
    pub fn with_auth_time(mut self, auth_time: OffsetDateTime) -> Self {
        self.auth_time = auth_time;
        self
    }

    /// Whether the session still works at `now`: not revoked, within its absolute
    /// lifetime, and used within `idle_timeout`.
    pub fn is_live(&self, now: OffsetDateTime, idle_timeout: Duration) -> bool {
        self.revoked_at.is_none() && now < self.expires_at && now < later_by(self.last_used_at, idle_timeout)
    }
}

/// A refresh token as a store finds it by its hash: the session it belongs to, and
/// whether it was already traded for a newer one. `#[non_exhaustive]`: built with
/// [`RefreshTokenRecord::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshTokenRecord {
    /// The session (family) of the token.
    pub session: Session,
    /// When the token was rotated away. Presenting it again is reuse.
    pub used_at: Option<OffsetDateTime>,
}

impl RefreshTokenRecord {
    /// The token of `session`, rotated away at `used_at` (`None`: still the current one).
    ///
    /// ```
    /// use auth_core::{RefreshTokenRecord, Session, SessionId, UserId};
    /// use time::macros::datetime;
    ///
    /// let start = datetime!(2026-03-01 9:00 UTC);
    /// let session = Session::new(SessionId::new_at(start), UserId::new_at(start), start, datetime!(2026-03-31 9:00 UTC));
    /// let record = RefreshTokenRecord::new(session, None);
    /// assert_eq!(record.used_at, None);
    /// ```
    pub fn new(session: Session, used_at: Option<OffsetDateTime>) -> Self {
        Self { session, used_at }
    }
}

/// A fresh access token and refresh token: what a login or a refresh hands the client.
#[derive(Clone)]
#[non_exhaustive]
pub struct TokenPair {
    /// The short-lived access token.
    pub access_token: AccessToken,
    /// The refresh token; each can be used once.
    pub refresh_token: OpaqueToken,
    /// The session both belong to.
    pub session: Session,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("session", &self.session.id)
            .finish()
    }
}
