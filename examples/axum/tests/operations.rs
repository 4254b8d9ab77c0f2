//! Operating the server: a database outage and its recovery, the trusted proxy, rate
//! limits from the environment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{Backend, PASSWORD, Server, client, get, login, register, tokens};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards TCP to the database until cut: then every connection is closed at once.
struct Cable {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Cable {
    async fn to(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (accept_up, accept_links) = (up.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if accept_up.load(Ordering::SeqCst) {
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    accept_links.lock().unwrap().push(link);
                }
            }
        });
        Self { port, up, links }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.links.lock().unwrap().drain(..).for_each(|link| link.abort());
    }

    fn mend(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_with_retry_after_and_the_server_recovers() {
    let url = std::env::var("AUTH_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let target: SocketAddr = "127.0.0.1:5432".parse().unwrap();
    if url != "postgres://postgres@127.0.0.1:5432/postgres" {
        eprintln!("notice: the outage test runs against the default local server only");
        return;
    }
    let cable = Cable::to(target).await;
    let through = format!("postgres://postgres@127.0.0.1:{}/postgres", cable.port);
    let Some(server) = Server::start(Backend::Postgres, &[("DATABASE_URL", &through)]) else {
        return;
    };
    register(&server, "quin@example.com").await;
    let (access, _) = tokens(&server, "quin@example.com").await;

    cable.cut();
    let health = get(&server, "/health", None).await;
    health.assert_error(503, "unavailable");
    assert!(health.header("retry-after").is_some());
    let denied = login(&server, "quin@example.com", PASSWORD).await;
    denied.assert_error(503, "unavailable");
    get(&server, "/me", Some(&access))
        .await
        .assert_error(503, "unavailable");
    assert!(!server.log().contains("panicked"));

    cable.mend();
    assert_eq!(get(&server, "/health", None).await.status, 200);
    assert_eq!(login(&server, "quin@example.com", PASSWORD).await.status, 200);
    assert_eq!(get(&server, "/me", Some(&access)).await.status, 200);
}

/// The session's recorded IP, as `/sessions` shows it, of a login sending this header.
async fn recorded_ip(server: &Server, email: &str, forwarded: &str) -> String {
    let response = client()
        .post(server.url("/login"))
        .header("x-forwarded-for", forwarded)
        .form(&[("username", email), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    let sessions = get(server, "/sessions", Some(access)).await.json();
    let current = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap();
    current["ip"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_the_trusted_proxy() {
    let untrusted = Server::start(Backend::Sqlite, &[]).unwrap();
    register(&untrusted, "rae@example.com").await;
    assert_eq!(
        recorded_ip(&untrusted, "rae@example.com", "203.0.113.9").await,
        "127.0.0.1"
    );

    let behind_proxy = Server::start(Backend::Sqlite, &[("TRUSTED_PROXY", "127.0.0.1")]).unwrap();
    register(&behind_proxy, "rae@example.com").await;
    // The proxy appends the address it saw: the last hop is the one to believe.
    let ip = recorded_ip(&behind_proxy, "rae@example.com", "198.51.100.1, 203.0.113.9").await;
    assert_eq!(ip, "203.0.113.9");

    // Per-client limits follow the forwarded address: one client's flood is not another's.
    for i in 0..30 {
        let answer = client()
            .post(behind_proxy.url("/login"))
            .header("x-forwarded-for", "203.0.113.50")
            .form(&[
                ("username", &format!("flood{i}@example.com")),
                ("password", &"x".repeat(12)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 401);
    }
    let flooder = client()
        .post(behind_proxy.url("/login"))
        .header("x-forwarded-for", "203.0.113.50")
        .form(&[
            ("username", "flood31@example.com"),
            ("password", "x".repeat(12).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(flooder.status().as_u16(), 429);
    assert_eq!(
        recorded_ip(&behind_proxy, "rae@example.com", "203.0.113.51").await,
        "203.0.113.51"
    );
}

#[tokio::test]
async fn rate_limits_come_from_the_environment() {
    let server = Server::start(
        Backend::Sqlite,
        &[("AUTH_RATE_LIMIT_LOGIN_FAILURES_PER_ACCOUNT", "2/hour")],
    )
    .unwrap();
    register(&server, "sam@example.com").await;
    for _ in 0..2 {
        login(&server, "sam@example.com", "wrong password!")
            .await
            .assert_error(401, "invalid_credentials");
    }
    let limited = login(&server, "sam@example.com", "wrong password!").await;
    limited.assert_error(429, "rate_limited");
    assert_eq!(limited.header("retry-after"), Some("1800"));

    let off = Server::start(Backend::Sqlite, &[("AUTH_RATE_LIMITS", "off")]).unwrap();
    register(&off, "sam@example.com").await;
    for _ in 0..10 {
        login(&off, "sam@example.com", "wrong password!")
            .await
            .assert_error(401, "invalid_credentials");
    }
    assert!(off.log().contains("rate limiting is disabled"), "a loud warning");

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_example-axum"))
        .env_clear()
        .env("BIND", "127.0.0.1:0")
        .env("AUTH_RATE_LIMIT_REGISTRATIONS_PER_CLIENT", "lots")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("AUTH_RATE_LIMIT_REGISTRATIONS_PER_CLIENT"));
}

/// A minimal SMTP server: hands over the DATA of every message it accepts.
async fn fake_smtp() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 fake\r\n",
                        "DATA" => {
                            write.write_all(b"354 go ahead\r\n").await.unwrap();
                            let mut data = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                data.push_str(&line);
                                data.push('\n');
                            }
                            let _ = sender.send(data);
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, receiver)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_url_sends_mail_through_smtp() {
    let (port, mut mails) = fake_smtp().await;
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let server = Server::start(
        Backend::Sqlite,
        &[
            ("SMTP_URL", &smtp_url),
            ("AUTH_MAIL_FROM", "Example <auth@example.test>"),
        ],
    )
    .unwrap();
    register(&server, "tia@example.com").await;
    let answer = common::post_json(
        &server,
        "/password/forgot",
        serde_json::json!({"email": "tia@example.com"}),
        None,
    )
    .await;
    assert_eq!(answer.status, 202);
    let mail = tokio::time::timeout(std::time::Duration::from_secs(30), mails.recv())
        .await
        .expect("a mail arrives")
        .unwrap();
    assert!(mail.contains("To: tia@example.com"), "{mail}");
    assert!(mail.contains("From: Example <auth@example.test>"), "{mail}");
    assert!(
        mail.contains("https://auth.example.test/ui/password/reset?token=pr_"),
        "{mail}"
    );
    assert!(!server.outbox().exists(), "SMTP instead of the outbox");
}

/// The seeds' own verification, character for character: python-jose's
/// `jwt.decode(token, SECRET_KEY, algorithms=[ALGORITHM])` accepts our access tokens.
#[tokio::test]
async fn the_seeds_python_stack_verifies_our_access_tokens() {
    let has_jose = std::process::Command::new("python3")
        .args(["-c", "import jose"])
        .status()
        .is_ok_and(|status| status.success());
    if !has_jose {
        let in_ci = std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"));
        assert!(!in_ci, "python-jose is required in CI (pip install python-jose)");
        eprintln!("notice: skipping the python-jose check: pip install python-jose");
        return;
    }
    let secret = "a shared secret of at least thirty-two bytes";
    let server = Server::start(Backend::Sqlite, &[("SECRET_KEY", secret)]).unwrap();
    register(&server, "uma@example.com").await;
    let (access, _) = tokens(&server, "uma@example.com").await;
    let script = r#"
import sys
from jose import jwt
SECRET_KEY, ALGORITHM = sys.argv[1], "HS256"
payload = jwt.decode(sys.argv[2], SECRET_KEY, algorithms=[ALGORITHM])
print(payload.get("sub"), payload.get("email"))
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", script, secret, &access])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.trim().ends_with("uma@example.com"), "{printed}");
    // With another key, python-jose refuses it.
    let forged = std::process::Command::new("python3")
        .args(["-c", script, "another secret of at least thirty-two bytes", &access])
        .output()
        .unwrap();
    assert!(!forged.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_saturated_hash_pool_answers_503_busy_at_once() {
    // One hashing thread and no queue: of many logins at once, those that find the
    // thread taken are refused as busy instead of waiting.
    let server = Server::start(
        Backend::Sqlite,
        &[
            ("AUTH_HASH_THREADS", "1"),
            ("AUTH_HASH_QUEUE", "0"),
            ("AUTH_RATE_LIMITS", "off"),
        ],
    )
    .unwrap();
    let server = Arc::new(server);
    let attempts: Vec<_> = (0..32)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                common::post_json(
                    &server,
                    "/register",
                    serde_json::json!({"email": format!("busy{i}@example.com"), "password": PASSWORD}),
                    None,
                )
                .await
            })
        })
        .collect();
    let mut busy = 0;
    for attempt in attempts {
        let answer = attempt.await.unwrap();
        match answer.status {
            201 => {}
            503 => {
                answer.assert_error(503, "busy");
                assert_eq!(answer.header("retry-after"), Some("1"));
                busy += 1;
            }
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert!(
        busy > 0,
        "32 concurrent hashes on one thread without a queue: some are refused"
    );
}
