//! Access-token verification on arbitrary bytes, and on real tokens with bits changed.
//!
//! Invariants: never panics; arbitrary text is never accepted; a real token with any
//! byte changed is never accepted (the signature covers header and claims, and base64url
//! with unused bits set is refused), and the unchanged token is.

#![no_main]

use std::sync::{Arc, OnceLock};

use auth_core::{Email, ManualClock, SigningKey, Tokens, User};
use auth_fuzz::{NOW, TOKEN_SECRET};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    /// One issuer per algorithm the servers sign with.
    issuers: Vec<(Tokens, String)>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let user = User::new(Email::parse("ada@example.com").unwrap(), None, NOW);
        let keys = [
            SigningKey::hs256(TOKEN_SECRET).unwrap(),
            SigningKey::from_private_pem(Some("ed"), include_bytes!("../../tests/fixtures/ed25519-private.pem"))
                .unwrap(),
            SigningKey::from_private_pem(Some("es"), include_bytes!("../../tests/fixtures/p256-private.pem")).unwrap(),
        ];
        let issuers = keys
            .into_iter()
            .map(|key| {
                let tokens =
                    Tokens::new(key, "https://auth.fuzz.test", "fuzz").with_clock(Arc::new(ManualClock::new(NOW)));
                let token = tokens.issue(&user, None).unwrap().expose_secret().to_owned();
                tokens.verify(&token).expect("the unchanged token is accepted");
                (tokens, token)
            })
            .collect();
        Fixture { issuers }
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let (tokens, real) = &fixture().issuers[usize::from(mode) % 3];
    if mode < 128 {
        // Arbitrary text as a token.
        let text = String::from_utf8_lossy(rest);
        assert!(tokens.verify(&text).is_err(), "accepted arbitrary text: {text:?}");
        return;
    }
    // A real token with bytes changed: pairs of (position, xor mask).
    let mut bytes = real.as_bytes().to_vec();
    for pair in rest.chunks_exact(2) {
        let at = usize::from(pair[0]) * bytes.len() / 256;
        bytes[at] ^= pair[1];
    }
    let mutated = String::from_utf8_lossy(&bytes);
    if mutated != real.as_str() {
        assert!(tokens.verify(&mutated).is_err(), "accepted a changed token: {mutated}");
    }
});
