//! Cases: the transport under abuse. Stalled connections are cut after the timeouts and
//! never starve other clients; a client answered before it finished sending its body
//! reads the answer, not a reset.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{Answer, PASSWORD, Server, Target, client, register, tokens};

/// The three ways to stall: say nothing, stop inside the head, stop inside the body.
const STALLS: [&[u8]; 3] = [
    b"",
    b"POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Ty",
    b"POST /register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"email\":",
];

/// Case: hundreds of stalled connections of each kind, more than the server's descriptors,
/// while a well-behaved client keeps being answered; each stalled one is then closed by the
/// server.
pub async fn stalled_connections_are_cut_and_others_are_still_served(target: Target) {
    let Some(server) = Server::start(
        target,
        &[
            ("RLIMIT_NOFILE", "256"),
            ("AUTH_HEADER_TIMEOUT_SECS", "2"),
            ("AUTH_BODY_TIMEOUT_SECS", "2"),
        ],
    ) else {
        return;
    };
    register(&server, "steady@example.com").await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stalled = Vec::new();
    for (kind, opening) in STALLS.iter().enumerate() {
        for _ in 0..120 {
            let mut stream = TcpStream::connect(&address).await.unwrap();
            // A write may fail once the server has refused and closed the connection.
            let _ = stream.write_all(opening).await;
            stalled.push((kind, stream));
        }
    }

    // The well-behaved client is answered (a 503 `busy` over the cap counts: it says when
    // to come back), never left hanging, and is served once it comes back.
    let answered = client_until_served(&server).await;
    assert!(
        answered.iter().all(|status| [200, 503].contains(status)),
        "{answered:?}"
    );

    // Every stalled connection ends, from the server's side, after the timeouts (the
    // bound here only turns a hang into a failure).
    let mut answers = [0_usize; 3];
    for (kind, mut stream) in stalled {
        let mut received = Vec::new();
        let ended = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut received)).await;
        assert!(ended.is_ok(), "a stalled connection (kind {kind}) is still open");
        let text = String::from_utf8_lossy(&received);
        if !text.is_empty() {
            assert!(
                text.starts_with("HTTP/1.1 408") || text.starts_with("HTTP/1.1 503"),
                "kind {kind}: {text}"
            );
            answers[kind] += 1;
        }
    }
    let log = server.log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(!log.contains("cannot accept connections"), "{log}");
    // And the server is as good as new.
    let (access, _) = tokens(&server, "steady@example.com").await;
    let me = crate::get(&server, "/me", Some(&access)).await;
    assert_eq!(me.status, 200, "{}", me.text);
}

/// Case: a connection beyond the cap is answered 503 `busy` as soon as it is accepted,
/// before it sends a byte, and closed: connections that open and say nothing cannot make
/// a new client wait for their header timeout, nor can refused clients that never close.
/// Once they go, the server serves again.
pub async fn a_connection_over_the_cap_is_refused_before_it_sends_anything(target: Target) {
    const CAP: usize = 16;
    let Some(server) = Server::start(
        target,
        &[
            ("AUTH_MAX_CONNECTIONS", "16"),
            // Far beyond the case's own bound: an idle connection is not cut meanwhile.
            ("AUTH_HEADER_TIMEOUT_SECS", "60"),
        ],
    ) else {
        return;
    };
    let address = server.base.trim_start_matches("http://").to_owned();
    // The account is registered on a connection this case keeps, idle, as one of the held
    // ones: a client's pooled connection would close when the server has already counted
    // the connections below, and free a slot for a connection meant to be over the cap.
    let mut silent = vec![register_kept_alive(&address, "steady@example.com").await];
    while silent.len() < CAP {
        silent.push(TcpStream::connect(&address).await.unwrap());
    }
    // A held connection is not refused: it reads nothing.
    let mut byte = [0_u8; 1];
    let quiet = tokio::time::timeout(Duration::from_millis(300), silent[CAP - 1].read(&mut byte)).await;
    assert!(quiet.is_err(), "a connection within the cap was answered: {quiet:?}");

    // Refused clients that read their answer and never close their side do not hold the
    // server's refusals: more of them than any margin, and each next one is still answered
    // (the bound is far below the 60 s an idle connection is allowed).
    let mut refused = Vec::new();
    for attempt in 0..40 {
        let mut over = TcpStream::connect(&address).await.unwrap();
        let mut received = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), over.read_to_end(&mut received))
            .await
            .unwrap_or_else(|_| panic!("attempt {attempt}: the connection over the cap is still open, unanswered"))
            .unwrap();
        let text = String::from_utf8_lossy(&received);
        assert!(text.starts_with("HTTP/1.1 503 "), "attempt {attempt}: {text}");
        let lower = text.to_ascii_lowercase();
        assert!(lower.contains("\r\nretry-after: "), "{text}");
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"], "busy", "{text}");
        refused.push(over);
    }

    drop((silent, refused));
    let answered = client_until_served(&server).await;
    assert!(
        answered.iter().all(|status| [200, 503].contains(status)),
        "{answered:?}"
    );
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// Registers `email` with [`PASSWORD`] on a new connection, reads the 201 and returns the
/// connection, still open (HTTP/1.1 keeps it alive).
async fn register_kept_alive(address: &str, email: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let body = json!({ "email": email, "password": PASSWORD }).to_string();
    let request = format!(
        "POST /register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, body) = round_trip(&mut stream, &request).await;
    assert_eq!(status, 201, "{body}");
    stream
}

/// `/me` and login for `steady@example.com`, honouring `Retry-After`, until both are 200;
/// returns every status seen.
async fn client_until_served(server: &Server) -> Vec<u16> {
    // A fresh connection per request: a kept-alive one, idle between attempts while the
    // server is loaded, can meet the server's header timeout (2 s here) at the moment the
    // next request goes out, and the client then reads the 408 that closes it (HTTP/1.1's
    // keep-alive race, which clients answer by retrying; a POST is not retried).
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..30 {
        let login = client
            .post(server.url("/login"))
            .form(&[("username", "steady@example.com"), ("password", PASSWORD)])
            .send()
            .await
            .expect("the login request is answered, not left hanging");
        let login = Answer::of(login).await;
        seen.push(login.status);
        if login.status == 200 {
            let access = login.json()["access_token"].as_str().unwrap().to_owned();
            let me = client
                .get(server.url("/me"))
                .bearer_auth(&access)
                .send()
                .await
                .expect("/me is answered, not left hanging");
            let me = Answer::of(me).await;
            seen.push(me.status);
            if me.status == 200 {
                return seen;
            }
        }
        let last = seen.last().copied();
        assert_eq!(
            last,
            Some(503),
            "only `busy` may stand between the client and its answer: {seen:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("never served: {seen:?}");
}

/// Case: 200 clients each send a whole 1 MiB JSON body at once, and each reads its 413;
/// a body answered early (401 before it is read) is read as an answer too.
pub async fn oversized_bodies_are_answered_not_reset(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    let big = format!(
        r#"{{"email": "big@example.com", "password": "{}"}}"#,
        "x".repeat(1 << 20)
    );
    let client = client();
    let mut sends = Vec::new();
    for i in 0..200 {
        // Half to a route that reads the body (413), half to one that refuses first (401).
        let path = if i % 2 == 0 { "/register" } else { "/password/change" };
        let request = client
            .post(server.url(path))
            .header("content-type", "application/json")
            .body(big.clone());
        sends.push(tokio::spawn(async move {
            let response = request.send().await.map_err(|error| format!("{error:?}"))?;
            Ok::<_, String>((path, Answer::of(response).await))
        }));
    }
    let mut failures = Vec::new();
    for send in sends {
        match send.await.unwrap() {
            Ok(("/register", answer)) => answer.assert_error(413, "payload_too_large"),
            Ok((_, answer)) => answer.assert_error(401, "invalid_token"),
            Err(error) => failures.push(error),
        }
    }
    let log = server.log();
    let warnings: Vec<&str> = log.lines().filter(|line| line.contains("WARN")).take(5).collect();
    assert!(
        failures.is_empty(),
        "{} of 200 saw no answer: {:?}\n{warnings:#?}",
        failures.len(),
        failures.first()
    );
    // And a normal request afterwards is served.
    let answer = crate::post_json(
        &server,
        "/register",
        json!({"email": "small@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
}

/// Case: a body that trickles in, a byte at a time, is cut by the body timeout with a 408
/// (an idle-only timeout would never fire on it).
pub async fn a_trickled_body_is_cut_by_the_body_timeout(target: Target) {
    let Some(server) = Server::start(target, &[("AUTH_BODY_TIMEOUT_SECS", "2")]) else {
        return;
    };
    let mut stream = TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(b"POST /register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    // 1000 bytes at one per 200 ms would take 200 s; the answer must come first.
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..1000 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), reader.read_to_end(&mut received)).await;
    trickle.abort();
    assert!(read.is_ok(), "the trickling connection is still open");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(text.contains("\"request_timeout\""), "{text}");
}

/// Case: a request answered 503 `busy` and asked again at once on the same connection, as
/// a flood does, is served only once its `Retry-After` has passed; another request on that
/// connection in between is served as usual.
pub async fn a_busy_request_repeated_at_once_waits_for_its_retry_after(target: Target) {
    // One hashing thread, no queue: a registration that finds it taken is refused.
    let Some(server) = Server::start(
        target,
        &[
            ("AUTH_HASH_THREADS", "1"),
            ("AUTH_HASH_QUEUE", "0"),
            ("AUTH_RATE_LIMITS", "off"),
        ],
    ) else {
        return;
    };
    let server = std::sync::Arc::new(server);
    // Registrations back to back keep the thread taken (each refused one of them waits
    // its own second before its next try, so several take turns).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood: Vec<_> = (0..4)
        .map(|flooder| {
            let (server, stop) = (server.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    n += 1;
                    let email = format!("flood{flooder}-{n}@example.com");
                    let _answer = crate::post_json(
                        &server,
                        "/register",
                        json!({"email": email, "password": PASSWORD}),
                        None,
                    )
                    .await;
                }
            })
        })
        .collect();

    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let register = |n: usize| {
        let body = json!({"email": format!("repeat{n}@example.com"), "password": PASSWORD}).to_string();
        format!(
            "POST /register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let mut refused_at = None;
    for n in 0..500 {
        let (status, body) = round_trip(&mut stream, &register(n)).await;
        if status == 503 {
            assert!(body.contains(r#""error":"busy""#), "{body}");
            refused_at = Some(std::time::Instant::now());
            break;
        }
        assert_eq!(status, 201, "{body}");
    }
    let refused_at = refused_at.expect("500 registrations beside a flood on one thread: one is refused");

    // Another request on the connection is not held back.
    let (status, body) = round_trip(&mut stream, "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(status, 200, "{body}");
    // The refused request again (another address: the method and path are what count).
    let (status, body) = round_trip(&mut stream, &register(1000)).await;
    let waited = refused_at.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Release);
    for flooder in flood {
        flooder.await.unwrap();
    }
    assert!([201, 503].contains(&status), "{status}: {body}");
    // The server counts its second from the moment it answered, a little before the
    // client read the answer: a lower bound with a margin for that, never an upper one.
    assert!(
        waited >= Duration::from_millis(900),
        "the repeat was answered {waited:?} after the refusal, before its Retry-After of 1 s"
    );
}

/// Sends `request` on `stream` and reads one answer: its status and body (by its
/// `Content-Length`).
async fn round_trip(stream: &mut TcpStream, request: &str) -> (u16, String) {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut chunk = [0_u8; 4096];
    let head_end = loop {
        if let Some(end) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk))
            .await
            .expect("an answer within 30 s")
            .unwrap();
        assert!(
            n > 0,
            "closed before the answer's head: {}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap());
    while received.len() < head_end + length {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk))
            .await
            .expect("the whole body within 30 s")
            .unwrap();
        assert!(n > 0, "closed inside the body");
        received.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&received[head_end..head_end + length]).into_owned();
    (status, body)
}
