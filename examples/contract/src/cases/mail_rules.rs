//! The rules for addresses (issue 13): an address mail cannot reach, or a look-alike that
//! mixes scripts, is refused at registration; a mail that cannot be sent is an error in
//! the server's log, and the API answers as usual.

use std::time::Duration;

use serde_json::json;

use crate::{PASSWORD, Server, Target, get, post_json, register, tokens};

/// Case: addresses mail cannot reach, and mixed-script look-alikes, are refused at
/// registration with 422 `invalid_email`, while the address they imitate registers.
pub async fn unmailable_and_look_alike_addresses_are_refused_at_registration(target: Target) {
    // More registrations than one client may make in an hour by default.
    let Some(server) = Server::start(target, &[("AUTH_RATE_LIMIT_REGISTRATIONS_PER_CLIENT", "off")]) else {
        return;
    };
    // What the detail names: the API says what is wrong with the address.
    for (email, detail) in [
        (".lead@example.com", "dot"),
        ("a..b@example.com", "dot"),
        ("a.@example.com", "dot"),
        ("\u{1F600}@example.com", "mail cannot be addressed to"),
        ("\u{1F600}\u{1F4E7}@example.com", "mail cannot be addressed to"),
        ("\u{301}\u{308}@example.com", "combining mark"),
        // A Cyrillic `а` (U+0430) among Latin letters, in the local part and in a label.
        ("p\u{430}yp\u{430}l@example.com", "scripts"),
        ("alice@p\u{430}ypal.com", "scripts"),
    ] {
        let answer = post_json(
            &server,
            "/register",
            json!({"email": email, "password": PASSWORD}),
            None,
        )
        .await;
        answer.assert_error(422, "invalid_email");
        let said = answer.json()["detail"].as_str().unwrap_or_default().to_owned();
        assert!(said.contains(detail), "{email:?}: {said}");
    }
    let created = register(&server, "paypal@example.com").await;
    assert_eq!(created["email"], "paypal@example.com");
    // Beside the real account the look-alike is still invalid, not "taken": it is no
    // other spelling of the same address.
    post_json(
        &server,
        "/register",
        json!({"email": "p\u{430}yp\u{430}l@example.com", "password": PASSWORD}),
        None,
    )
    .await
    .assert_error(422, "invalid_email");
    // One script throughout is accepted, whatever the script.
    let cyrillic = register(&server, "\u{418}\u{432}\u{430}\u{43D}@example.com").await;
    assert_eq!(cyrillic["email"], "\u{438}\u{432}\u{430}\u{43D}@example.com");
    assert_eq!(
        register(&server, "jos\u{E9}+news@example.com").await["email"],
        "jos\u{E9}+news@example.com"
    );
    // A refused address is no account: logging in with it is the usual failure.
    crate::login(&server, "a..b@example.com", PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");
}

/// Case: a mail that cannot be sent (the SMTP server refuses connections) is logged as
/// an ERROR, and the API answers as it does when mail goes out.
pub async fn a_mail_that_cannot_be_sent_is_an_error_in_the_log_and_the_answer_is_unchanged(target: Target) {
    // A closed port that stays closed: a socket bound but never listening refuses every
    // connection, and holding it keeps any other process (the server under test binds
    // port 0 too) from taking the port while the case runs. A listener bound and dropped
    // would leave the port free for anyone to reuse.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = closed.local_addr().unwrap().port();
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert_eq!(
        refused.map(drop).map_err(|error| error.kind()),
        Err(std::io::ErrorKind::ConnectionRefused),
        "the SMTP port is closed"
    );
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let server = Server::start(
        target,
        &[
            ("SMTP_URL", &smtp_url),
            ("AUTH_MAIL_FROM", "Example <auth@example.test>"),
        ],
    )
    .unwrap();
    register(&server, "una@example.com").await;
    let (access, _) = tokens(&server, "una@example.com").await;
    let verification = post_json(&server, "/email/verification", json!({}), Some(&access)).await;
    assert_eq!(verification.status, 202, "{}", verification.text);
    crate::cases::forgot_answers_alike(&server, "una@example.com").await;

    // Sending happens off the request path: wait for both failures to be logged.
    let failed = |log: &str, purpose: &str| {
        log.lines()
            .any(|line| line.contains("ERROR") && line.contains("could not send a mail") && line.contains(purpose))
    };
    let mut log = server.log();
    for _ in 0..300 {
        if failed(&log, "email_verification") && failed(&log, "password_reset") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        log = server.log();
    }
    assert!(
        failed(&log, "email_verification"),
        "no ERROR line for the verification mail:\n{log}"
    );
    assert!(
        failed(&log, "password_reset"),
        "no ERROR line for the reset mail:\n{log}"
    );
    // Exactly the two mails that were due: nothing for the unknown address.
    assert_eq!(log.matches("could not send a mail").count(), 2, "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(!server.outbox().exists(), "no fallback to the outbox");
    // The server carries on.
    assert_eq!(get(&server, "/health", None).await.status, 200);
    drop(closed);
}
