//! Shared by this crate's test binaries: the machine's Redis (each test under a key
//! prefix of its own) and Redis servers a test starts and stops itself.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The variable naming the Redis the tests use (the README documents it).
pub const URL_VARIABLE: &str = "AUTH_TEST_REDIS_URL";
/// Without it: the local server `.ci/run` guarantees.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

pub fn url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Whether this is CI (`CI` set to anything but empty, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

/// The test Redis's URL, or `None` (with a notice) when it does not answer outside CI;
/// in CI its absence fails the test.
pub fn redis_url() -> Option<String> {
    static ANSWERS: OnceLock<bool> = OnceLock::new();
    let url = url();
    let answers = *ANSWERS.get_or_init(|| {
        let address = url
            .trim_start_matches("redis://")
            .rsplit('@')
            .next()
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("127.0.0.1:6379")
            .to_owned();
        address.parse::<SocketAddr>().is_ok_and(pong)
    });
    if answers {
        return Some(url);
    }
    if in_ci() {
        panic!("Redis at {url} is required in CI");
    }
    eprintln!("notice: skipping a Redis test: {url} does not answer PING; set {URL_VARIABLE}");
    None
}

/// A key prefix no other test or run uses.
pub fn fresh_prefix() -> String {
    format!("auth-test-{}", uuid::Uuid::new_v4().simple())
}

/// Whether a Redis at `address` answers PING.
pub fn pong(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}

/// A `redis-server` of the test's own on a free loopback port, without persistence;
/// killed on drop.
pub struct OwnRedis {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
}

impl OwnRedis {
    /// Starts one; `None` (with a notice) when `redis-server` is not installed outside CI.
    pub fn start() -> Option<Self> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            assert!(!in_ci(), "redis-server is required in CI");
            eprintln!("notice: skipping: redis-server is not installed");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("auth-redis-test-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self { port, child: None, dir };
        redis.resume();
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills the server and waits until nothing listens on its port.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        assert!(!pong(self.address()));
    }

    /// Starts the server again, on the same port, and waits until it answers.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Bounded: 200 tries, 25 ms apart.
        for _ in 0..200 {
            if pong(self.address()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not answer on port {}", self.port);
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
