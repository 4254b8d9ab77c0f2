//! The request bodies of every route, as the HTTP kit parses them (JSON and form), with
//! any `Content-Type`.
//!
//! Invariants: never panics; a body that does not parse is a 400 `invalid_request` or a
//! 415 `unsupported_media_type` (a client's error, never a 5xx); the checks after the
//! parse (roles, the second factor's fields) answer 4xx too.

#![no_main]

use auth_http::ErrorAnswer;
use auth_http::api::{
    self, ChangePasswordBody, CodeBody, DeleteAccountBody, EmailChangeBody, ExchangeBody, ForgotBody, InviteBody,
    MfaLoginBody, PasskeyChallengeBody, PasskeyLoginBody, PasskeyMfaBody, PasskeyRegisterBody, PasskeyRenameBody,
    ReauthenticationBody, RefreshBody, ResetBody, RolesBody, TokenBody,
};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 8] = [
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("Application/JSON; charset=utf-8"),
    Some("application/merge-patch+json"),
    Some("application/x-www-form-urlencoded; charset=utf-8"),
    Some("text/plain"),
    Some(""),
    None,
];

/// A refusal a client may get for its body.
fn client_error(error: &ErrorAnswer) {
    assert!(
        matches!(
            (error.status(), error.code()),
            (400, "invalid_request") | (415, "unsupported_media_type")
        ),
        "{} {}",
        error.status(),
        error.code()
    );
}

fn check<T>(result: Result<T, ErrorAnswer>) -> Option<T> {
    result.map_err(|error| client_error(&error)).ok()
}

fn second_factor(code: Option<String>, recovery_code: Option<String>) {
    let _ = check(api::second_factor(code, recovery_code));
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, body)) = input.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(mode) % CONTENT_TYPES.len()];
    match (mode / 8) % 21 {
        0 => drop(check(api::login_body(content_type, body))),
        1 => drop(check(api::json_body::<RefreshBody>(content_type, body))),
        2 => {
            if let Some(body) = check(api::json_body::<ChangePasswordBody>(content_type, body)) {
                second_factor(body.code, body.recovery_code);
            }
        }
        3 => {
            if let Some(body) = check(api::json_body::<EmailChangeBody>(content_type, body)) {
                second_factor(body.code, body.recovery_code);
            }
        }
        4 => {
            if let Some(body) = check(api::json_body::<DeleteAccountBody>(content_type, body)) {
                second_factor(body.code, body.recovery_code);
            }
        }
        5 => drop(check(api::json_body::<ForgotBody>(content_type, body))),
        6 => drop(check(api::json_body::<ResetBody>(content_type, body))),
        7 => drop(check(api::json_body::<TokenBody>(content_type, body))),
        8 => {
            if let Some(body) = check(api::json_body::<RolesBody>(content_type, body)) {
                let _ = check(body.roles());
            }
        }
        9 => {
            if let Some(body) = check(api::json_body::<InviteBody>(content_type, body)) {
                let _ = check(body.roles());
            }
        }
        10 => {
            if let Some(body) = check(api::json_body::<MfaLoginBody>(content_type, body)) {
                second_factor(body.code, body.recovery_code);
            }
        }
        11 => {
            if let Some(body) = check(api::json_body::<ReauthenticationBody>(content_type, body)) {
                second_factor(body.code, body.recovery_code);
            }
        }
        12 => drop(check(api::json_body::<CodeBody>(content_type, body))),
        13 => drop(check(api::link_body(content_type, body))),
        14 => drop(check(api::json_body::<ExchangeBody>(content_type, body))),
        15 => drop(check(api::json_body::<PasskeyRegisterBody>(content_type, body))),
        16 => drop(check(api::json_body::<PasskeyLoginBody>(content_type, body))),
        17 => drop(check(api::json_body::<PasskeyChallengeBody>(content_type, body))),
        18 => drop(check(api::json_body::<PasskeyMfaBody>(content_type, body))),
        19 => drop(check(api::json_body::<PasskeyRenameBody>(content_type, body))),
        _ => drop(check(api::form_body::<Vec<(String, String)>>(content_type, body))),
    }
});
