//! Faults through the default server, on both stores: killed with SIGKILL 20 times under
//! load (the database's own restart is in the contract, for both servers).

use http_contract::cases::acknowledged_writes_survive_sigkill_under_load;
use http_contract::{Backend, Target};

const BINARY: &str = env!("CARGO_BIN_EXE_example-axum");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_under_load_on_sqlite() {
    acknowledged_writes_survive_sigkill_under_load(Target {
        binary: BINARY,
        backend: Backend::Sqlite,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill_under_load_on_postgres() {
    acknowledged_writes_survive_sigkill_under_load(Target {
        binary: BINARY,
        backend: Backend::Postgres,
    })
    .await;
}
