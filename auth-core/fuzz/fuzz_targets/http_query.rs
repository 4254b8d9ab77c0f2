//! The query strings and path parameters of the HTTP kit: the pages of `/admin/users` and
//! the event logs, an OpenID Connect sign-in's start and the provider's callback, and the
//! ids in paths.
//!
//! Invariants: never panics; a query that does not parse is a 400, an id that does not parse
//! a 404 (never a 5xx); a PKCE challenge is only taken with its `S256` method; an id that parses prints as
//! itself (parse∘format round-trips).

#![no_main]

use auth_http::ErrorAnswer;
use auth_http::api::{self, CallbackQuery, EventsPage, StartQuery, UsersPage};
use libfuzzer_sys::fuzz_target;

fn bad_request(error: &ErrorAnswer) {
    assert_eq!(error.status(), 400, "{}", error.code());
}

fuzz_target!(|input: &str| {
    let query = (!input.is_empty()).then_some(input);
    if let Err(error) = UsersPage::parse(query) {
        bad_request(&error);
    }
    if let Err(error) = EventsPage::parse(query) {
        bad_request(&error);
    }
    match StartQuery::parse(query) {
        Ok(start) => assert!(start.code_challenge.is_none() || input.contains("S256")),
        Err(error) => bad_request(&error),
    }
    if let Err(error) = CallbackQuery::parse(query) {
        bad_request(&error);
    }
    match api::account_id(input) {
        Ok(id) => assert_eq!(api::account_id(&id.to_string()).ok(), Some(id)),
        Err(error) => assert_eq!(error.status(), 404, "an id that does not parse names nothing"),
    }
    match api::session_id(input) {
        Ok(id) => assert_eq!(api::session_id(&id.to_string()).ok(), Some(id)),
        Err(error) => assert_eq!(error.status(), 404, "an id that does not parse names nothing"),
    }
    match api::identity_id(input) {
        Ok(id) => assert_eq!(api::identity_id(&id.to_string()).ok(), Some(id)),
        Err(error) => assert_eq!(error.status(), 404, "an id that does not parse names nothing"),
    }
    match api::passkey_id(input) {
        Ok(id) => assert_eq!(api::passkey_id(&id.to_string()).ok(), Some(id)),
        Err(error) => assert_eq!(error.status(), 404, "an id that does not parse names nothing"),
    }
});
