//! One login of a given kind, for counting its work with an instruction counter instead
//! of a clock: a wrong password and an unknown email must cost the same, whatever the
//! machine is doing meanwhile.
//!
//! ```sh
//! for kind in wrong unknown malformed right; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/login_work $kind 2>&1 | grep 'Collected'
//! done
//! ```
//!
//! Each run registers one account (the same work every time), then logs in once:
//! `right` (the right password), `wrong` (a wrong one of the same length), `unknown` (an
//! email with no account) or `malformed` (not an email at all). It prints the outcome.
//! The counts are recorded in `benches/BENCHMARKS.md`.

use std::process::ExitCode;

use auth_core::{AuthService, ClientInfo, MemoryStore, Password, RateLimits, SigningKey, Tokens};
use benches::PASSWORD;

const USAGE: &str = "usage: login_work <right|wrong|unknown|malformed>";

fn main() -> ExitCode {
    benches::exit_code(run(), USAGE)
}

fn run() -> Result<(), String> {
    let kind = std::env::args().nth(1).unwrap_or_default();
    let (email, password) = match kind.as_str() {
        "right" => ("ada@example.com", PASSWORD),
        "wrong" => ("ada@example.com", "correct horse battery stapla"),
        "unknown" => ("bob@example.com", PASSWORD),
        "malformed" => ("not an email", PASSWORD),
        _ => return Err(format!("unknown kind {kind:?}")),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    runtime.block_on(async {
        let key = SigningKey::hs256(b"a benchmark secret of at least 32 bytes!!").map_err(|error| error.to_string())?;
        let tokens = Tokens::new(key, "https://auth.example.com", "bench-api");
        let auth = AuthService::new(MemoryStore::new(), tokens).with_rate_limits(RateLimits::disabled());
        let client = ClientInfo::new(None, None);
        auth.register("ada@example.com", Password::new(PASSWORD), &client)
            .await
            .map_err(|error| format!("register: {error}"))?;
        let outcome = auth.login(email, Password::new(password), &client).await;
        println!(
            "{kind}: {}",
            outcome.map_or_else(|error| error.code().to_owned(), |_| "ok".to_owned())
        );
        Ok(())
    })
}
