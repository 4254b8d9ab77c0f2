//! `Email::parse` and `Email::parse_existing` on any text.
//!
//! Invariants: never panics; a parsed address is normalized (parsing its own text gives
//! the same address, by both rule sets: parse∘format round-trips); the new-account rules
//! only ever add refusals to the identity rules, never change the address found; the
//! parts put together are the address.

#![no_main]

use auth_core::Email;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let existing = Email::parse_existing(input);
    if let Ok(email) = &existing {
        assert_eq!(
            Email::parse_existing(email.as_str()).as_ref(),
            Ok(email),
            "identity parse is idempotent"
        );
        assert_eq!(format!("{}@{}", email.local_part(), email.domain()), email.as_str());
        assert!(
            !email.domain().bytes().any(|b| b.is_ascii_uppercase()),
            "domain in lowercase"
        );
        assert_eq!(
            email.to_string().parse::<Email>().ok().is_some(),
            Email::parse(email.as_str()).is_ok()
        );
    }
    if let Ok(email) = Email::parse(input) {
        assert_eq!(
            existing.as_ref(),
            Ok(&email),
            "the new-account rules find the same address"
        );
        assert_eq!(
            Email::parse(email.as_str()).as_ref(),
            Ok(&email),
            "new-address parse is idempotent"
        );
    }
});
