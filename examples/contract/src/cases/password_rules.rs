//! The password rules of issue 13 item 7 over HTTP: repetitions, sequences and passwords
//! built from the account's email or the service's name are refused with `weak_password`
//! and a detail that names the rule.

use serde_json::json;

use crate::{PASSWORD, Server, Target, post_json, register, tokens};

const REPETITIVE: &str = "the password repeats a shorter sequence";
const SEQUENTIAL: &str = "the password is a sequence of consecutive characters";
const CONTEXT_WORDS: &str = "the password is built from the account's email or the service's name";

/// Case: repetitive, sequential and context-word passwords are refused on registration
/// and on a password change; a good passphrase is accepted.
pub async fn password_rules_refuse_patterns_and_context_words(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    // Seven refusals and one success: within the default ten registrations an hour. A
    // fresh address each time, so no refusal could be an `email_taken` in disguise.
    for (email, password, rule) in [
        ("rules1@example.com", "passwordpassword", REPETITIVE),
        ("rules2@example.com", "123456789012345", SEQUENTIAL),
        ("rules3@example.com", "aaaaaaaaaaaaaaaa", REPETITIVE),
        ("rules4@example.com", "abcdefghijklmnop", SEQUENTIAL),
        ("rules5@example.com", "                ", REPETITIVE),
        // The email's local part plus `!!`.
        ("jonathan@example.com", "jonathan!!", CONTEXT_WORDS),
        // The service's name: the servers take it from AUTH_PUBLIC_URL, here
        // https://auth.example.test.
        ("rules7@example.com", "Example-Auth-1!", CONTEXT_WORDS),
    ] {
        let answer = post_json(
            &server,
            "/register",
            json!({"email": email, "password": password}),
            None,
        )
        .await;
        answer.assert_error(422, "weak_password");
        assert_eq!(answer.json()["detail"], rule, "{password:?}: {}", answer.text);
    }
    let created = register(&server, "jonathan.smith@example.com").await;
    assert_eq!(created["email"], "jonathan.smith@example.com");

    // A change is checked against the account's email, which the request does not carry.
    let (access, _) = tokens(&server, "jonathan.smith@example.com").await;
    let change = |new: &str| json!({"current_password": PASSWORD, "new_password": new});
    for (new, rule) in [("smith.jonathan!!", CONTEXT_WORDS), ("zyxwvutsrqponmlk", SEQUENTIAL)] {
        let answer = post_json(&server, "/password/change", change(new), Some(&access)).await;
        answer.assert_error(422, "weak_password");
        assert_eq!(answer.json()["detail"], rule, "{new:?}: {}", answer.text);
    }
    let changed = post_json(
        &server,
        "/password/change",
        change("jonathan's own passphrase"),
        Some(&access),
    )
    .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
}
