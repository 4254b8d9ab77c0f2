//! What the fuzz targets share: a service on the memory store with cheap hashing, a fixed
//! clock and no rate limits (the targets look for panics and wrong acceptances, not for
//! limits), and a Tokio runtime to drive it.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a fuzz harness: fail loudly

use std::sync::Arc;

use auth_core::{
    Argon2Hasher, Argon2Params, AuthService, ClientInfo, EncryptionKey, ManualClock, MemoryStore, PasskeySettings,
    RateLimits, SecretCipher, SigningKey, Tokens, TotpSettings,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// The time every target's service lives at.
pub const NOW: OffsetDateTime = datetime!(2026-06-01 09:00 UTC);

/// The passkeys' origin and relying party.
pub const ORIGIN: &str = "https://auth.fuzz.test";

/// The password every account is registered with.
pub const PASSWORD: &str = "a fuzzing passphrase";

/// The signing secret of the access tokens.
pub const TOKEN_SECRET: &[u8] = b"a fuzzing secret of at least thirty-two bytes";

/// A service for one target: cheap argon2id, the fixed clock, no limits, TOTP and passkeys.
pub fn service() -> AuthService<MemoryStore> {
    let tokens = Tokens::new(
        SigningKey::hs256(TOKEN_SECRET).unwrap(),
        "https://auth.fuzz.test",
        "fuzz",
    )
    .with_clock(Arc::new(ManualClock::new(NOW)));
    let cipher = SecretCipher::new(EncryptionKey::new(&[7; 32]).unwrap());
    AuthService::new(MemoryStore::new(), tokens)
        .with_hasher(Argon2Hasher::new(Argon2Params::new(8, 1, 1).unwrap()))
        .with_clock(Arc::new(ManualClock::new(NOW)))
        .with_rate_limits(RateLimits::disabled())
        .with_totp(TotpSettings::new("auth-fuzz", cipher))
        .with_passkeys(PasskeySettings::new("auth.fuzz.test", ORIGIN).unwrap())
}

/// A current-thread runtime for the async flows.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The client every request comes from.
pub fn client() -> ClientInfo {
    ClientInfo::new(Some("fuzz"), Some("203.0.113.9".parse().unwrap()))
}
