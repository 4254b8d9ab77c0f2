//! A SQLite file locked by another process (a `sqlite3` shell left in a transaction, a
//! backup tool): requests that must write answer 503 `unavailable` within the store's
//! lock budget, however many queue, and the server works again once the lock goes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;

use serde_json::json;

use crate::{Answer, PASSWORD, Server, Target, post_json, register};

/// Takes the write lock, says `locked`, and holds it until its stdin closes or `argv[2]`
/// seconds pass, whichever comes first; then says which it was.
const HOLDER: &str = r#"
import select, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
closed, _, _ = select.select([sys.stdin], [], [], float(sys.argv[2]))
conn.execute("ROLLBACK")
conn.close()
print("released by the test" if closed else "hold ran out", flush=True)
"#;

/// Seconds the holder keeps the lock at most: generous beside the server's budget of 1 s,
/// and short of what the old behaviour (5 s per queued write, in turn: 20 s for the
/// fourth) would need.
const HOLD_SECONDS: &str = "8";

/// Python's `sqlite3`, in a process of its own, holding the database's write lock.
/// Killed on drop, so a failing case leaves no lock behind.
struct LockHolder {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl LockHolder {
    fn hold(database: &Path) -> Self {
        let mut child = Command::new("python3")
            .args(["-c", HOLDER])
            .arg(database)
            .arg(HOLD_SECONDS)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut holder = Self {
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
        };
        assert_eq!(holder.line(), "locked");
        holder
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }

    /// Releases the lock; fails the case unless it was held until now.
    fn release(mut self) {
        drop(self.child.stdin.take());
        assert_eq!(
            self.line(),
            "released by the test",
            "the lock was held until the case released it"
        );
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends the registrations of `emails` all at once.
async fn register_concurrently(server: &Arc<Server>, emails: &[String]) -> Vec<Answer> {
    let requests: Vec<_> = emails
        .iter()
        .map(|email| {
            let (server, body) = (server.clone(), json!({ "email": email, "password": PASSWORD }));
            tokio::spawn(async move { post_json(&server, "/register", body, None).await })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    answers
}

/// Case: a SQLite lock held elsewhere is 503 unavailable at once, and the server recovers.
pub async fn a_sqlite_lock_held_elsewhere_is_503_unavailable_at_once_and_the_server_recovers(target: Target) {
    // Nine registrations from one client: the subject is the lock, not that limit.
    let server = Server::start(target, &[("AUTH_RATE_LIMIT_REGISTRATIONS_PER_CLIENT", "off")]).unwrap();
    let server = Arc::new(server);
    register(&server, "before@example.com").await;

    let holder = LockHolder::hold(&server.dir.path().join("auth.db"));
    // Four at once, so three queue behind the first: each is refused, and all of them
    // before the hold ends (`release` checks).
    let emails: Vec<String> = (0..4).map(|i| format!("locked{i}@example.com")).collect();
    for answer in register_concurrently(&server, &emails).await {
        answer.assert_error(503, "unavailable");
        assert_eq!(answer.header("retry-after"), Some("1"), "{}", answer.text);
    }
    holder.release();

    // At once afterwards, the same registrations go through: nothing was kept of the
    // refused ones, and nothing is stuck.
    for answer in register_concurrently(&server, &emails).await {
        assert_eq!(answer.status, 201, "{}", answer.text);
    }
    assert!(!server.log().contains("panicked"));
}
