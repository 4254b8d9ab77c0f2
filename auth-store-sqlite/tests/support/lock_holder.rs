//! Another process holding a SQLite file's write lock, for tests: Python's own `sqlite3`
//! with `BEGIN IMMEDIATE`. Shared by this crate's `locked` tests and the HTTP contract
//! suite (`examples/contract/src/cases/sqlite_lock.rs` includes this file by path).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// Takes the write lock, says `locked`, and holds it until its stdin closes or `HOLD`
/// seconds pass, whichever comes first; then says which it was. The hold is the bound
/// the ordering claims rest on: released by the test means everything the test did
/// before closing stdin happened while the lock was held.
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

/// Generous beside the default budget of 1 s: the old behaviour (5 s per queued write,
/// in turn) would outlast it with the second write.
const HOLD: Duration = Duration::from_secs(8);

/// Another process holding the database's write lock. Killed on drop, so a failing test
/// leaves no lock behind.
pub(crate) struct LockHolder {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl LockHolder {
    /// Returns once the lock is held.
    pub(crate) fn hold(path: &Path) -> Self {
        let mut child = Command::new("python3")
            .args(["-c", HOLDER])
            .arg(path)
            .arg(HOLD.as_secs().to_string())
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

    /// Releases the lock; fails the test unless it was still held until now.
    pub(crate) fn release(mut self) {
        drop(self.child.stdin.take());
        assert_eq!(
            self.line(),
            "released by the test",
            "the lock was held until the test released it"
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
