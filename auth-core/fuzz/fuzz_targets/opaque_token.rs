//! Opaque tokens (refresh, reset, verification, challenge, ceremony...) as presented.
//!
//! Invariants: never panics; a presented string is only looked up when it has its kind's
//! prefix and exact shape; a token of one kind never hashes as another kind's; a real
//! token with any byte changed hashes differently or is refused.

#![no_main]

use auth_core::{OpaqueToken, TokenKind};
use libfuzzer_sys::fuzz_target;

const KINDS: [TokenKind; 11] = [
    TokenKind::Refresh,
    TokenKind::PasswordReset,
    TokenKind::EmailVerification,
    TokenKind::BrowserSession,
    TokenKind::LoginChallenge,
    TokenKind::ExternalLoginState,
    TokenKind::ExternalLoginBinding,
    TokenKind::ExternalLoginCode,
    TokenKind::EmailChange,
    TokenKind::EmailChangeUndo,
    TokenKind::PasskeyCeremony,
];

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let kind = KINDS[usize::from(mode) % KINDS.len()];
    let text = String::from_utf8_lossy(rest);
    let mut accepted = 0;
    for other in KINDS {
        if OpaqueToken::hash_presented(other, &text).is_some() {
            accepted += 1;
            assert!(text.starts_with(other.prefix()));
            assert!(text.is_ascii());
        }
    }
    // `pkc_` is no other kind's prefix followed by a valid body, nor the reverse.
    assert!(accepted <= 1, "{text:?} is a token of {accepted} kinds");

    let (token, hash) = OpaqueToken::generate(kind).unwrap();
    let mut bytes = token.expose_secret().as_bytes().to_vec();
    for pair in rest.chunks_exact(2) {
        let at = usize::from(pair[0]) * bytes.len() / 256;
        bytes[at] ^= pair[1];
    }
    let mutated = String::from_utf8_lossy(&bytes);
    if mutated != token.expose_secret() {
        assert_ne!(OpaqueToken::hash_presented(kind, &mutated), Some(hash));
    }
});
