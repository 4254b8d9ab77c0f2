//! Password verification against hostile stored hashes: a row of the users table written
//! by someone else (a migration, an attacker with write access to one column), with any
//! password.
//!
//! Invariants: never panics; a hash whose parameters exceed the hasher's limits is refused
//! without being computed (bounded work whatever the row says); a match is only ever
//! reported for the password the hash was made from, checked against the fixtures' real
//! hashes.

#![no_main]

use std::sync::OnceLock;

use auth_core::{Argon2Hasher, Argon2Params, HashLimits, HashedPassword, Password, PasswordHasher};
use libfuzzer_sys::fuzz_target;

/// Limits far below the defaults, so that every hash the fuzzer can write stays cheap to
/// try; the limits' logic is the same whatever their values.
fn hasher() -> &'static Argon2Hasher {
    static HASHER: OnceLock<Argon2Hasher> = OnceLock::new();
    HASHER.get_or_init(|| {
        Argon2Hasher::new(Argon2Params::new(8, 1, 1).unwrap()).with_limits(
            HashLimits::default()
                .with_max_argon2_memory_kib(256)
                .with_max_argon2_iterations(4)
                .with_max_argon2_parallelism(2)
                .with_max_argon2_work(512)
                .with_max_bcrypt_cost(5)
                .with_max_pbkdf2_iterations(2_000),
        )
    })
}

fuzz_target!(|input: &[u8]| {
    // The first line is the stored hash, the rest the password typed.
    let text = String::from_utf8_lossy(input);
    let (stored, password) = text.split_once('\n').unwrap_or((&text, ""));
    let hash = HashedPassword::new(stored);
    let _ = hash.scheme();
    let _ = format!("{hash:?}");
    if let Ok(verification) = hasher().verify(&Password::new(password), &hash) {
        // The fuzzer cannot invert a hash: a match means the input is a real hash of this
        // password, which only the seed corpus's fixtures (made by the fixtures' password)
        // are.
        if verification.is_match() {
            assert_eq!(
                password, "correct horse battery staple",
                "a match for another password: {stored}"
            );
        }
    }
});
