//! UUIDv7 identifiers.

/// Defines a UUIDv7 newtype: time-ordered (friendly to B-tree indexes) without being a
/// guessable sequence number.
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new UUIDv7 whose timestamp is `at`.
            pub fn new_at(at: time::OffsetDateTime) -> Self {
                let seconds = u64::try_from(at.unix_timestamp()).unwrap_or(0);
                let timestamp = uuid::Timestamp::from_unix(uuid::NoContext, seconds, at.nanosecond());
                Self(uuid::Uuid::new_v7(timestamp))
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

pub(crate) use uuid_id;
