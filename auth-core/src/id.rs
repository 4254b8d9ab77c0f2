//! UUIDv7 identifiers: accounts and sessions.

use std::sync::{Mutex, PoisonError};

/// The counter every id of this process shares: RFC 9562's method 1 (`uuid`'s
/// `ContextV7`, as `Uuid::now_v7` uses), so ids sort in the order they were made, also
/// within one millisecond and when the clock steps back.
static CONTEXT: Mutex<uuid::ContextV7> = Mutex::new(uuid::ContextV7::new());

/// A UUIDv7 at `at` (the Unix epoch for an earlier time), after every id this process
/// made before. Its timestamp is `at`, or the latest one this process used if `at` is
/// earlier (a clock that stepped back, or an injected one behind the real one).
fn new_v7(at: time::OffsetDateTime) -> uuid::Uuid {
    let seconds = u64::try_from(at.unix_timestamp()).unwrap_or(0);
    // The context is a counter in cells: a panic elsewhere leaves it usable.
    let context = CONTEXT.lock().unwrap_or_else(PoisonError::into_inner);
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(&*context, seconds, at.nanosecond()))
}

/// Defines a UUIDv7 newtype: time-ordered (friendly to B-tree indexes) without being a
/// guessable sequence number.
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new UUIDv7 whose timestamp is `at` (or the latest this process used, if
            /// `at` is earlier). Within one process ids sort in the order they were made,
            /// also within one millisecond (RFC 9562's counter), so records listed by id
            /// keep the order of events.
            pub fn new_at(at: time::OffsetDateTime) -> Self {
                Self(crate::id::new_v7(at))
            }

            /// Wraps an existing UUID (from a database row, for example).
            pub const fn from_uuid(uuid: uuid::Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID.
            pub const fn as_uuid(&self) -> &uuid::Uuid {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::try_parse(s).map(Self)
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(uuid: uuid::Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}

uuid_id! {
    /// An account's identifier: a UUIDv7.
    ///
    /// ```
    /// use auth_core::UserId;
    ///
    /// let id: UserId = "01936f2e-8d4b-7c3a-9f1e-2b3c4d5e6f70".parse().unwrap();
    /// assert_eq!(id.to_string(), "01936f2e-8d4b-7c3a-9f1e-2b3c4d5e6f70");
    /// assert!("not-a-uuid".parse::<UserId>().is_err());
    /// ```
    UserId
}

uuid_id! {
    /// A session's identifier: a UUIDv7.
    ///
    /// ```
    /// use auth_core::SessionId;
    ///
    /// let id: SessionId = "01936f2e-8d4b-7c3a-9f1e-2b3c4d5e6f70".parse().unwrap();
    /// assert_eq!(id.to_string(), "01936f2e-8d4b-7c3a-9f1e-2b3c4d5e6f70");
    /// ```
    SessionId
}

uuid_id! {
    /// An audit record's identifier: a UUIDv7, made when the event is recorded, so records
    /// of one process list in the order they happened, also within a millisecond: the
    /// cursor of [`AuditQuery`](crate::AuditQuery).
    ///
    /// ```
    /// use auth_core::EventId;
    ///
    /// let id: EventId = "01936f2e-8d4b-7c3a-9f1e-2b3c4d5e6f70".parse().unwrap();
    /// assert_eq!(id.to_string(), "01936f2e-8d4b-7c3a-9f1e-2b3c4d5e6f70");
    /// ```
    EventId
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn ids_are_v7_and_ordered_by_time() {
        let early = UserId::new_at(datetime!(2026-01-01 0:00 UTC));
        let late = UserId::new_at(datetime!(2026-01-01 0:00:01 UTC));
        assert_eq!(early.as_uuid().get_version_num(), 7);
        assert!(early < late);
        assert_ne!(
            UserId::new_at(datetime!(2026-01-01 0:00 UTC)),
            early,
            "random bits differ"
        );
        let json = serde_json::to_string(&early).unwrap();
        assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), early);
    }

    #[test]
    fn ids_sort_in_the_order_they_were_made_within_a_millisecond_and_back_in_time() {
        let at = time::OffsetDateTime::now_utc();
        let mut ids: Vec<EventId> = (0..1000).map(|_| EventId::new_at(at)).collect();
        ids.extend((0..10).map(|_| EventId::new_at(at - time::Duration::seconds(5))));
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "strictly increasing");
    }
}

uuid_id! {
    /// A registered passkey's identifier: a UUIDv7 (what `DELETE /me/passkeys/{id}`
    /// names; the authenticator's own credential id is another thing).
    ///
    /// ```
    /// use auth_core::PasskeyId;
    ///
    /// let id = PasskeyId::new_at(time::OffsetDateTime::now_utc());
    /// assert_eq!(id.to_string().parse::<PasskeyId>().unwrap(), id);
    /// ```
    PasskeyId
}

uuid_id! {
    /// A linked external identity's identifier: a UUIDv7.
    ///
    /// ```
    /// use auth_core::IdentityId;
    ///
    /// let id = IdentityId::new_at(time::OffsetDateTime::now_utc());
    /// assert_eq!(id.to_string().parse::<IdentityId>().unwrap(), id);
    /// ```
    IdentityId
}
