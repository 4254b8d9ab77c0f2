//! Real faults under a steady load: the database restarting under the server.

use std::time::{Duration, Instant};

use super::cluster::{Cluster, StopMode};
use super::load::{Load, Outcome, Request};
use crate::{PASSWORD, Server, Target, get};

/// The phases of an outage, as the load's outcomes are marked.
const BEFORE: u8 = 0;
const STOPPING: u8 = 1;
const DOWN: u8 = 2;
const STARTING: u8 = 3;
/// The first five seconds after the database accepts connections again.
const RECOVERING: u8 = 4;
const AFTER: u8 = 5;

/// How long the database stays down.
const OUTAGE: Duration = Duration::from_secs(10);
/// How soon after the restart everything must succeed again.
const RECOVERY: Duration = Duration::from_secs(5);

fn describe(outcome: &Outcome) -> String {
    format!(
        "worker {} {:?} sent in phase {} answered in {}: {:?} {:?} (retry-after {:?}, {:?}) after {:?}",
        outcome.worker,
        outcome.request,
        outcome.phase,
        outcome.answered_in,
        outcome.status,
        outcome.code,
        outcome.retry_after,
        outcome.error,
        outcome.took
    )
}

/// The server's logged errors, for a failure's message.
fn server_errors(server: &Server) -> String {
    let log = server.log();
    let errors: Vec<&str> = log
        .lines()
        .filter(|line| {
            line.contains("ERROR")
                && !line.contains("code=\"unavailable\"")
                && !line.contains("auth event")
                && !line.contains("audit log")
        })
        .take(10)
        .collect();
    format!("the server's errors:\n{}", errors.join("\n"))
}

/// Asserts that every one of `emails` signs in with [`PASSWORD`], four at a time.
async fn signs_in(server: &Server, emails: Vec<String>) {
    let server = std::sync::Arc::new(server.base.clone());
    let mut checks = tokio::task::JoinSet::new();
    for chunk in emails.chunks(emails.len().div_ceil(4)) {
        let (server, chunk) = (server.clone(), chunk.to_vec());
        checks.spawn(async move {
            let http = crate::client();
            for email in chunk {
                let answer = http
                    .post(format!("{server}/login"))
                    .form(&[("username", email.as_str()), ("password", PASSWORD)])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), 200, "{email}: {}", answer.text().await.unwrap());
            }
        });
    }
    while let Some(check) = checks.join_next().await {
        check.unwrap();
    }
}

/// Case: the database is stopped (fast, then immediate) and started again under a load of
/// registrations, logins and `/me`: every request in the outage is 503 `unavailable` with
/// `Retry-After` within a second (or, sent as it ends, served within a second once the
/// database is back), everything succeeds again within five seconds of the
/// restart without restarting the server, and every acknowledged registration signs in.
pub async fn a_database_restart_is_503_at_once_and_loses_no_acknowledged_registration(target: Target) {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let Some(server) = Server::start(target, &[("DATABASE_URL", &cluster.url()), ("AUTH_RATE_LIMITS", "off")]) else {
        return;
    };
    let mut outcomes = Vec::new();
    for (round, mode) in [StopMode::Fast, StopMode::Immediate].into_iter().enumerate() {
        let load = Load::start(
            &server.base,
            &format!("restart{round}"),
            4,
            &[Request::Register, Request::Login, Request::Me, Request::Me],
        )
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;

        load.set_phase(STOPPING);
        // pg_ctl blocks until the server is down: off the runtime's threads.
        tokio::task::block_in_place(|| cluster.stop(mode));
        load.set_phase(DOWN);
        let down_at = Instant::now();
        let mut health = Vec::new();
        while down_at.elapsed() < OUTAGE {
            health.push(get(&server, "/health", None).await);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        load.set_phase(STARTING);
        tokio::task::block_in_place(|| cluster.start_again());
        load.set_phase(RECOVERING);
        tokio::time::sleep(RECOVERY).await;
        load.set_phase(AFTER);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let round_outcomes = load.finish().await;

        for answer in &health {
            answer.assert_error(503, "unavailable");
            assert!(answer.header("retry-after").is_some(), "{}", answer.text);
        }
        let in_phase = |phase| round_outcomes.iter().filter(move |o| o.phase == phase);
        assert!(in_phase(DOWN).count() >= 8, "{mode:?}: a steady load during the outage");
        for outcome in in_phase(DOWN) {
            // One sent at the end of the outage may reach the database once it is back
            // (a registration hashes first): then it succeeds, as fast.
            let refused = outcome.status == Some(503)
                && outcome.code.as_deref() == Some("unavailable")
                && outcome.retry_after.is_some();
            let served_after = outcome.answered_in > DOWN && outcome.succeeded();
            assert!(
                (refused || served_after) && outcome.took < Duration::from_secs(1),
                "{mode:?}: {}\n{}",
                describe(outcome),
                server_errors(&server)
            );
        }
        // Sent and answered before the stop, or sent once everything works again.
        for outcome in in_phase(BEFORE)
            .filter(|o| o.answered_in == BEFORE)
            .chain(in_phase(AFTER))
        {
            assert!(
                outcome.succeeded(),
                "{mode:?}: {}\n{}",
                describe(outcome),
                server_errors(&server)
            );
        }
        assert!(
            in_phase(AFTER).count() >= 8,
            "{mode:?}: a steady load after the recovery"
        );
        for outcome in &round_outcomes {
            // The HTTP server never went away, and nothing a client sent is a 500.
            assert!(
                outcome.succeeded() || (outcome.status == Some(503) && outcome.code.as_deref() == Some("unavailable")),
                "{mode:?}: {}\n{}",
                describe(outcome),
                cluster.log()
            );
        }
        let slowest = in_phase(DOWN).map(|o| o.took).max().unwrap_or_default();
        eprintln!(
            "restart ({mode:?}): {} requests during the outage, each 503 unavailable (or served once the database was back), the slowest in {} ms; {} after the recovery, each succeeded",
            in_phase(DOWN).count(),
            slowest.as_millis(),
            in_phase(AFTER).count()
        );
        outcomes.extend(round_outcomes);
    }

    // Nothing acknowledged was lost: every registration answered 201 signs in.
    let acknowledged: Vec<String> = outcomes
        .iter()
        .filter(|o| o.request == Request::Register && o.status == Some(201))
        .filter_map(|o| o.sent.clone())
        .collect();
    assert!(acknowledged.len() >= 8, "registrations went through");
    eprintln!(
        "restart: {} acknowledged registrations, each signs in",
        acknowledged.len()
    );
    signs_in(&server, acknowledged).await;
    assert!(!server.log().contains("panicked"));
}

/// `PRAGMA integrity_check` of the server's SQLite file.
fn sqlite_integrity(server: &Server) -> String {
    sqlite_integrity_at(&server.dir.path().join("auth.db"))
}

/// `PRAGMA integrity_check` of the SQLite file at `path`.
fn sqlite_integrity_at(path: &std::path::Path) -> String {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap()
}

/// Refreshes with `token` on `server`: the status.
async fn refresh_status(server: &Server, token: &str) -> u16 {
    crate::post_json(
        server,
        "/token/refresh",
        serde_json::json!({ "refresh_token": token }),
        None,
    )
    .await
    .status
}

/// How many times the server is killed.
const KILLS: usize = 20;

/// Case: the server is killed (SIGKILL) 20 times during a load of registrations and
/// refresh-token rotations, each time at another moment, and started again on the same
/// store: every acknowledged registration signs in, each client's last acknowledged
/// rotation's new token works and every token it rotated away is refused, and a SQLite
/// file's integrity check says `ok`.
pub async fn acknowledged_writes_survive_sigkill_under_load(target: Target) {
    let Some(mut server) = Server::start(target, &[("AUTH_RATE_LIMITS", "off")]) else {
        return;
    };
    let (mut registrations, mut rotations_checked, mut cut) = (0, 0, 0);
    for trial in 0..KILLS {
        let load = Load::start(
            &server.base,
            &format!("kill{trial}"),
            4,
            &[Request::Register, Request::Refresh, Request::Refresh],
        )
        .await;
        // Somewhere between a fifth of a second and a second and a half into the load,
        // a different moment each trial.
        let moment = 200 + (trial * 617) % 1300;
        tokio::time::sleep(Duration::from_millis(moment as u64)).await;
        server = tokio::task::block_in_place(|| server.restart());
        let outcomes = load.finish().await;
        assert!(
            outcomes.iter().any(|o| o.error.is_some()),
            "trial {trial}: the kill cut requests in flight"
        );

        let registered: Vec<String> = outcomes
            .iter()
            .filter(|o| o.request == Request::Register && o.status == Some(201))
            .filter_map(|o| o.sent.clone())
            .collect();
        registrations += registered.len();
        cut += outcomes.iter().filter(|o| o.status.is_none()).count();
        signs_in(&server, registered).await;

        for worker in 0..4 {
            let rotations: Vec<&Outcome> = outcomes
                .iter()
                .filter(|o| o.worker == worker && o.request == Request::Refresh)
                .collect();
            let Some(last) = rotations.iter().rposition(|o| o.status == Some(200)) else {
                continue;
            };
            // A rotation sent after the last acknowledged one got no answer: the server may
            // or may not have made it before it died, so the last new token may be spent.
            let unanswered_after = rotations[last + 1..].iter().any(|o| o.status.is_none());
            let newest = rotations[last].received.as_deref().unwrap();
            rotations_checked += 1;
            if !unanswered_after {
                assert_eq!(
                    refresh_status(&server, newest).await,
                    200,
                    "trial {trial}, worker {worker}: the last acknowledged rotation's token works"
                );
            }
            for rotated in rotations[..=last].iter().filter(|o| o.status == Some(200)) {
                assert_eq!(
                    refresh_status(&server, rotated.sent.as_deref().unwrap()).await,
                    401,
                    "trial {trial}, worker {worker}: a token rotated away is refused"
                );
            }
        }
        if target.backend == crate::Backend::Sqlite {
            assert_eq!(sqlite_integrity(&server), "ok", "trial {trial}");
        }
    }
    eprintln!(
        "sigkill ({:?}): {KILLS} kills, {cut} requests cut, {registrations} acknowledged registrations all sign in, {rotations_checked} clients' last rotations checked",
        target.backend
    );
    assert!(!server.log().contains("panicked"));
}

/// A small filesystem of the test's own (tmpfs), unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB; `None` (with a notice) when the test may not mount
    /// one (not root), outside CI; in CI that fails the test.
    fn mount(mib: u32) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "auth-test-disk"])
            .arg(dir.path())
            .output()
            .is_ok_and(|output| output.status.success());
        if !mounted {
            let in_ci = std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"));
            assert!(!in_ci, "the full-disk test mounts a tmpfs: CI runs as root");
            eprintln!("notice: skipping the full-disk test: mounting a tmpfs needs root");
            return None;
        }
        Some(Self { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills the free space with a file of its own: the next allocation fails (ENOSPC).
    fn fill(&self) {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.path().join("filler")).unwrap();
        let block = vec![0xa5u8; 64 * 1024];
        while filler.write_all(&block).is_ok() {}
        // The last partial block, a byte at a time.
        while filler.write_all(&[0xa5]).is_ok() {}
        let _ = filler.sync_all();
    }

    /// Frees the space [`fill`](Self::fill) took.
    fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Case: the SQLite file's filesystem fills up. Writes answer 503 `unavailable` (never a
/// 500, never a panic), reads go on, a refused registration leaves nothing behind, and
/// once space is freed the same server writes again.
pub async fn a_full_disk_is_503_for_writes_reads_go_on_and_the_server_recovers(target: Target) {
    // Declared first, dropped last: the server lets go of the file before the unmount.
    let Some(disk) = SmallDisk::mount(8) else {
        return;
    };
    let database = format!("sqlite://{}", disk.path().join("auth.db").display());
    let Some(server) = Server::start(target, &[("DATABASE_URL", &database), ("AUTH_RATE_LIMITS", "off")]) else {
        return;
    };
    crate::register(&server, "before@example.com").await;
    let (access, _) = crate::tokens(&server, "before@example.com").await;

    disk.fill();
    // The WAL may still have room for a few commits: write until the disk says no.
    let mut refused = Vec::new();
    for attempt in 0..200 {
        let email = format!("full{attempt}@example.com");
        let answer = crate::post_json(
            &server,
            "/register",
            serde_json::json!({ "email": email, "password": PASSWORD }),
            None,
        )
        .await;
        match answer.status {
            201 => {}
            503 => {
                answer.assert_error(503, "unavailable");
                assert!(answer.header("retry-after").is_some(), "{}", answer.text);
                refused.push(email);
                if refused.len() == 5 {
                    break;
                }
            }
            _ => panic!("a full disk answered {}: {}", answer.status, answer.text),
        }
    }
    assert_eq!(refused.len(), 5, "writes fail on a full disk");
    // Every write now: a login (it stores a session) too.
    crate::login(&server, "before@example.com", PASSWORD)
        .await
        .assert_error(503, "unavailable");
    // Reads go on.
    let me = get(&server, "/me", Some(&access)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(get(&server, "/health", None).await.status, 200);

    disk.free();
    // Nothing of a refused registration was kept: each address is free, and takes.
    for email in &refused {
        crate::register(&server, email).await;
    }
    assert_eq!(crate::login(&server, &refused[0], PASSWORD).await.status, 200);
    assert_eq!(sqlite_integrity_at(&disk.path().join("auth.db")), "ok");
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// Case: SIGTERM during a mixed load (registrations, logins, `/me`, rotations), five
/// times: the server finishes what it accepted and exits cleanly. A request either gets
/// its answer or never reached the server (its connection refused, or closed before the
/// server read it): a registration that got no answer created no account, a rotation
/// that got none left its token working. No answer is a 5xx.
pub async fn sigterm_under_load_answers_every_request_it_accepted(target: Target) {
    let mut server = Server::start(target, &[("AUTH_RATE_LIMITS", "off")]).unwrap();
    for trial in 0..5 {
        let load = Load::start(
            &server.base,
            &format!("term{trial}"),
            8,
            &[Request::Register, Request::Login, Request::Me, Request::Refresh],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(400 + 250 * trial as u64)).await;
        let (clean, next) = tokio::task::block_in_place(|| server.terminate_and_start_again());
        server = next;
        let outcomes = load.finish().await;
        assert!(clean, "trial {trial}: exit status 0 after SIGTERM:\n{}", server.log());

        for outcome in &outcomes {
            assert!(
                outcome.succeeded() || outcome.status.is_none(),
                "trial {trial}: {}",
                describe(outcome)
            );
        }
        let unanswered: Vec<&Outcome> = outcomes.iter().filter(|o| o.status.is_none()).collect();
        assert!(
            !unanswered.is_empty(),
            "trial {trial}: requests were sent as the server went"
        );
        for outcome in unanswered {
            match outcome.request {
                Request::Register => {
                    let email = outcome.sent.as_deref().unwrap();
                    crate::login(&server, email, PASSWORD)
                        .await
                        .assert_error(401, "invalid_credentials");
                }
                Request::Refresh => {
                    let token = outcome.sent.as_deref().unwrap();
                    let status = refresh_status(&server, token).await;
                    // A worker resends its token after a refused request: the first
                    // check of it rotates it, a later one of the same token is reuse.
                    let checked_before = outcomes
                        .iter()
                        .filter(|o| o.status.is_none() && o.sent.as_deref() == Some(token))
                        .position(|o| std::ptr::eq(o, outcome))
                        .is_some_and(|at| at > 0);
                    if !checked_before {
                        assert_eq!(
                            status, 200,
                            "trial {trial}: an unanswered rotation left its token working"
                        );
                    }
                }
                Request::Login | Request::Me => {}
            }
        }
    }
    let log = server.log();
    assert!(
        log.matches("shutting down").count() >= 5 && !log.contains("panicked"),
        "{log}"
    );
}
