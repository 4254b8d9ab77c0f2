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
/// `Retry-After` within a second, everything succeeds again within five seconds of the
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
            assert!(
                outcome.status == Some(503)
                    && outcome.code.as_deref() == Some("unavailable")
                    && outcome.retry_after.is_some()
                    && outcome.took < Duration::from_secs(1),
                "{mode:?}: {}",
                describe(outcome)
            );
        }
        // Sent and answered before the stop, or sent once everything works again.
        for outcome in in_phase(BEFORE)
            .filter(|o| o.answered_in == BEFORE)
            .chain(in_phase(AFTER))
        {
            assert!(outcome.succeeded(), "{mode:?}: {}", describe(outcome));
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
        outcomes.extend(round_outcomes);
    }

    // Nothing acknowledged was lost: every registration answered 201 signs in.
    let acknowledged: Vec<String> = outcomes
        .iter()
        .filter(|o| o.request == Request::Register && o.status == Some(201))
        .filter_map(|o| o.sent.clone())
        .collect();
    assert!(acknowledged.len() >= 8, "registrations went through");
    signs_in(&server, acknowledged).await;
    assert!(!server.log().contains("panicked"));
}
