//! Runs a server binary on a free port with a temporary SQLite file (or a fresh
//! PostgreSQL schema) and outbox, and talks to it over HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// The password every case registers with.
pub const PASSWORD: &str = "correct horse battery staple";

/// What a case runs against: a server binary on a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The server binary (`env!("CARGO_BIN_EXE_<name>")` in the caller's tests).
    pub binary: &'static str,
    /// Its store.
    pub backend: Backend,
}

/// The store a server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the server's temporary directory.
    Sqlite,
    /// A schema of its own on the test PostgreSQL (`AUTH_TEST_DATABASE_URL`, default the
    /// local server), dropped when the server is.
    Postgres,
}

fn postgres_url() -> String {
    std::env::var("AUTH_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Whether the test PostgreSQL answers; outside CI its absence skips the Postgres runs
/// with a notice, in CI it fails them.
fn postgres_answers() -> bool {
    use std::net::ToSocketAddrs;
    let url = postgres_url();
    let address = url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_owned();
    let reachable = address.to_socket_addrs().is_ok_and(|mut addrs| {
        addrs.any(|addr| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok())
    });
    let in_ci = std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"));
    if !reachable && in_ci {
        panic!("PostgreSQL at {url} is required in CI");
    }
    if !reachable {
        eprintln!("notice: skipping a PostgreSQL run: {url} does not answer; set AUTH_TEST_DATABASE_URL");
    }
    reachable
}

/// A running server binary, killed on drop. Its data directory outlives restarts.
pub struct Server {
    child: Child,
    binary: &'static str,
    backend: Backend,
    /// `DATABASE_URL` and, for Postgres, `AUTH_DATABASE_SCHEMA` and `SECRET_KEY`.
    database: Vec<(String, String)>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The server's data directory (SQLite file, outbox, development key).
    pub dir: Arc<tempfile::TempDir>,
    log: Arc<Mutex<String>>,
    env: Vec<(String, String)>,
}

impl Server {
    /// Starts the server on a fresh store of `backend` with `env` added; `None` when the
    /// backend is absent outside CI. The pseudo-variable `RLIMIT_NOFILE` lowers the
    /// server's open-file limit instead of reaching its environment.
    pub fn start(target: Target, env: &[(&str, &str)]) -> Option<Self> {
        let Target { binary, backend } = target;
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let database = match backend {
            Backend::Sqlite => vec![(
                "DATABASE_URL".to_owned(),
                format!("sqlite://{}", dir.path().join("auth.db").display()),
            )],
            Backend::Postgres => {
                if !postgres_answers() {
                    return None;
                }
                let schema = format!("http_test_{}", uuid::Uuid::new_v4().simple());
                vec![
                    ("DATABASE_URL".to_owned(), postgres_url()),
                    ("AUTH_DATABASE_SCHEMA".to_owned(), schema),
                    (
                        "SECRET_KEY".to_owned(),
                        "a test secret of at least thirty-two bytes".to_owned(),
                    ),
                ]
            }
        };
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Some(Self::start_in(binary, backend, database, dir, env))
    }

    fn start_in(
        binary: &'static str,
        backend: Backend,
        database: Vec<(String, String)>,
        dir: Arc<tempfile::TempDir>,
        env: Vec<(String, String)>,
    ) -> Self {
        // `RLIMIT_NOFILE` is no variable of the server's: it lowers the open-file limit the
        // server starts with (through the shell's `ulimit`, which needs no unsafe code).
        let open_files = env
            .iter()
            .find(|(key, _)| key == "RLIMIT_NOFILE")
            .map(|(_, v)| v.clone());
        let mut command = match &open_files {
            Some(limit) => {
                let mut command = Command::new("sh");
                command.args(["-c", "ulimit -n \"$0\" && exec \"$1\"", limit, binary]);
                command
            }
            None => Command::new(binary),
        };
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND", "127.0.0.1:0")
            .envs(database.iter().map(|(k, v)| (k, v)))
            .env("AUTH_MAIL_OUTBOX", dir.path().join("outbox"))
            .env("AUTH_PUBLIC_URL", "https://auth.example.test")
            // Request logs too (Axum's tower_http, Actix's own), for the log scans.
            .env("RUST_LOG", "info,tower_http=debug,example_actix=debug")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env.iter().filter(|(key, _)| key != "RLIMIT_NOFILE") {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (address, found) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (log, address) = (log.clone(), address.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Some(at) = line.find("listening address=") {
                        let _ = address.send(line[at + "listening address=".len()..].trim().to_owned());
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let Ok(address) = found.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("the server did not start:\n{}", log.lock().unwrap());
        };
        Self {
            child,
            binary,
            backend,
            database,
            base: format!("http://{address}"),
            dir,
            log,
            env,
        }
    }

    /// Stops the server (SIGKILL) and starts it again on the same data.
    pub fn restart(mut self) -> Self {
        let env = std::mem::take(&mut self.env);
        self.restart_in(env)
    }

    /// Stops the server (SIGKILL) and starts it again on the same data with `env` in
    /// place of the variables it was started with: a redeploy with a new configuration
    /// (on another free port: read [`Server::base`] again).
    pub fn restart_with(self, env: &[(&str, &str)]) -> Self {
        let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.restart_in(env)
    }

    fn restart_in(mut self, env: Vec<(String, String)>) -> Self {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = self.dir.clone();
        let database = self.database.clone();
        let backend = self.backend;
        // This server's schema is the next one's: this one must not drop it.
        self.backend = Backend::Sqlite;
        let previous = self.log();
        let next = Self::start_in(self.binary, backend, database, dir, env);
        next.log.lock().unwrap().insert_str(0, &previous);
        next
    }

    /// Starts another instance of this server over the same data (database, key,
    /// outbox), with `env` added to this one's: several instances behind one database.
    /// This server keeps the data; the other leaves it when dropped.
    pub fn another_instance(&self, env: &[(&str, &str)]) -> Self {
        let mut all = self.env.clone();
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut other = Self::start_in(self.binary, self.backend, self.database.clone(), self.dir.clone(), all);
        // The first instance drops a PostgreSQL schema; this one must not.
        other.backend = Backend::Sqlite;
        other
    }

    /// Sends SIGTERM and waits: whether it exited cleanly, and its whole log.
    pub fn terminate(mut self) -> (bool, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let status = self.child.wait().unwrap();
        // The reader threads see the end of the pipes just after the exit.
        std::thread::sleep(Duration::from_millis(200));
        (status.success(), self.log())
    }

    /// Sends SIGTERM, waits for the exit, and starts the server again on the same data
    /// with the same variables (on another free port): whether it exited cleanly, and the
    /// new instance.
    pub fn terminate_and_start_again(mut self) -> (bool, Self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let clean = self.child.wait().unwrap().success();
        let env = std::mem::take(&mut self.env);
        (clean, self.restart_in(env))
    }

    /// Everything the server logged, once it contains `needle` (its log reaches the test
    /// through a pipe, a moment after the answer that follows the line); at most 10 s.
    pub async fn log_once_it_has(&self, needle: &str) -> String {
        for _ in 0..100 {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.log()
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Where the server writes mail.
    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Whether the server has the browser pages (`example-axum`'s `/ui/...`; the JSON API
    /// is the contract, the pages are optional).
    pub async fn has_pages(&self) -> bool {
        get(self, "/ui/login", None).await.status == 200
    }

    /// Runs the binary's `grant-role` command against this server's database.
    pub fn grant_role(&self, email: &str, role: &str) {
        let output = Command::new(self.binary)
            .args(["grant-role", email, role])
            .env_clear()
            .envs(self.database.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.backend == Backend::Postgres
            && let Some((_, schema)) = self.database.iter().find(|(key, _)| key == "AUTH_DATABASE_SCHEMA")
        {
            drop_schema(schema.clone());
        }
    }
}

/// Drops a test schema, from a thread of its own (Drop may run inside a runtime).
fn drop_schema(schema: String) {
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            if let Ok(pool) = sqlx::PgPool::connect(&postgres_url()).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                )))
                .execute(&pool)
                .await;
                pool.close().await;
            }
        });
    })
    .join();
}

/// An HTTP client that ignores proxy settings of the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Status, headers and body of a response.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as text.
    pub text: String,
}

impl Answer {
    /// Reads a whole response.
    pub async fn of(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Self { status, headers, text }
    }

    /// The body as JSON (fails the case if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts an error answer: status and `error` code, and a non-empty `detail`.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        let body = self.json();
        assert_eq!(body["error"], code, "{}", self.text);
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{}", self.text);
    }
}

/// POSTs `body` as JSON, with a bearer token if given.
pub async fn post_json(server: &Server, path: &str, body: Value, bearer: Option<&str>) -> Answer {
    let mut request = client().post(server.url(path)).json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    Answer::of(request.send().await.unwrap()).await
}

/// GETs `path`, with a bearer token if given.
pub async fn get(server: &Server, path: &str, bearer: Option<&str>) -> Answer {
    let mut request = client().get(server.url(path));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    Answer::of(request.send().await.unwrap()).await
}

/// Registers `email` with [`PASSWORD`]; fails the case unless it is 201.
pub async fn register(server: &Server, email: &str) -> Value {
    let answer = post_json(
        server,
        "/register",
        json!({ "email": email, "password": PASSWORD }),
        None,
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    answer.json()
}

/// Logs in with the seeds' form; returns the token answer.
pub async fn login(server: &Server, email: &str, password: &str) -> Answer {
    let response = client()
        .post(server.url("/login"))
        .form(&[("username", email), ("password", password)])
        .send()
        .await
        .unwrap();
    Answer::of(response).await
}

/// (access token, refresh token) of a successful login.
pub async fn tokens(server: &Server, email: &str) -> (String, String) {
    let answer = login(server, email, PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// The newest message in the outbox for `purpose`, and the token of its link; waits for
/// the mail, which leaves off the request path.
pub async fn last_mail(outbox: &Path, purpose: &str) -> (String, String) {
    let message = last_message(outbox, purpose).await;
    let token = message
        .split("token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    (message, token)
}

/// The newest message in the outbox whose file name holds `kind` (a token's purpose, a
/// notice's kind); waits for it.
pub async fn last_message(outbox: &Path, kind: &str) -> String {
    for _ in 0..100 {
        let mut mails: Vec<PathBuf> = std::fs::read_dir(outbox)
            .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
            .unwrap_or_default();
        // Named `<nanos>-<kind>-<id>.eml`: the kind whole (`password_reset` is not
        // `password_reset_completed`).
        let infix = format!("-{kind}-");
        mails.retain(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().contains(&infix))
        });
        mails.sort();
        if let Some(path) = mails.last() {
            return std::fs::read_to_string(path).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {kind} mail in {}", outbox.display());
}
