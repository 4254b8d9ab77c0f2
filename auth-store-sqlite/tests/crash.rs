//! Durability with a real process: a child registers users in a loop and acknowledges
//! each on stdout; it is killed with SIGKILL at a random moment, five times over the same
//! file. Every acknowledged registration must then be present and loginable, and SQLite's
//! integrity check must say `ok`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_core::{
    Argon2Hasher, Argon2Params, AuthService, ClientInfo, Password, RateLimits, SigningKey, Tokens, UserStore,
};
use auth_store_sqlite::SqliteStore;

const CHILD_DB: &str = "AUTH_SQLITE_CRASH_CHILD_DB";
const CHILD_RUN: &str = "AUTH_SQLITE_CRASH_CHILD_RUN";
const PASSWORD: &str = "correct horse battery staple";

/// Cheap parameters: the subject is the store, and the parent logs every account in.
fn service(store: SqliteStore) -> AuthService<SqliteStore> {
    let tokens = Tokens::new(SigningKey::hs256(&[7; 32]).unwrap(), "https://auth.test", "test");
    AuthService::new(store, tokens)
        .with_hasher(Argon2Hasher::new(Argon2Params::new(64, 1, 1).unwrap()))
        .with_rate_limits(RateLimits::disabled())
}

/// The child: registers until killed, printing `ACK <email>` after each registration
/// returns. Started by the test below; does nothing when run on its own.
#[test]
#[ignore = "the child process of the SIGKILL test, which starts it"]
fn crash_child() {
    let (Ok(path), Ok(run)) = (std::env::var(CHILD_DB), std::env::var(CHILD_RUN)) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let auth = Arc::new(service(SqliteStore::open(&path).await.unwrap()));
        // Several registrations in flight at once, as on a server.
        let tasks: Vec<_> = (0..4)
            .map(|task| {
                let auth = auth.clone();
                let run = run.clone();
                tokio::spawn(async move {
                    for i in 0.. {
                        let email = format!("crash-{run}-{task}-{i}@example.com");
                        auth.register(&email, Password::new(PASSWORD), &ClientInfo::unknown())
                            .await
                            .unwrap();
                        // One write per line: a kill leaves at most a partial last line.
                        println!("ACK {email}");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// Starts the child on `path`, kills it with SIGKILL a random time after its first
/// acknowledgement, and returns the emails it acknowledged.
fn run_and_kill(path: &Path, run: usize) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, path)
        .env(CHILD_RUN, run.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let (first, is_first) = std::sync::mpsc::channel();
    let reader = {
        let acked = acked.clone();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            let mut line = Vec::new();
            while stdout.read_until(b'\n', &mut line).unwrap() > 0 {
                // A line cut by the kill has no newline and was not acknowledged.
                if let Some(email) = line.strip_prefix(b"ACK ").and_then(|rest| rest.strip_suffix(b"\n")) {
                    acked.lock().unwrap().push(String::from_utf8(email.to_vec()).unwrap());
                    let _ = first.send(());
                }
                line.clear();
            }
        })
    };
    is_first
        .recv_timeout(Duration::from_secs(60))
        .expect("the child acknowledges registrations");
    std::thread::sleep(Duration::from_millis(rand::random_range(20..400)));
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush, no checkpoint
    child.wait().unwrap();
    reader.join().unwrap();
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_registrations_survive_sigkill() {
    let path = common::scratch_dir().join("auth.db");
    let mut acknowledged = Vec::new();
    for run in 0..5 {
        let child_path = path.clone();
        let acked = tokio::task::spawn_blocking(move || run_and_kill(&child_path, run))
            .await
            .unwrap();
        assert!(!acked.is_empty(), "run {run}: killed mid-loop");

        acknowledged.extend(acked);
        // Every acknowledgement so far, not only this run's: a later crash must not lose
        // an earlier run's registrations either.
        let store = SqliteStore::open(&path).await.unwrap();
        let auth = service(store.clone());
        for email in &acknowledged {
            let user = store
                .find_user_by_email(&auth_core::Email::parse(email).unwrap())
                .await
                .unwrap();
            assert!(user.is_some(), "run {run}: acknowledged {email} is missing");
            let login = auth.login(email, Password::new(PASSWORD), &ClientInfo::unknown()).await;
            assert!(login.is_ok(), "run {run}: {email} cannot log in: {login:?}");
        }
        drop(auth);
        drop(store);

        let check: String = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(check, "ok", "run {run}");
    }
    println!(
        "{} acknowledged registrations over 5 kills, all present",
        acknowledged.len()
    );
}
