//! The second factor of a login challenge as a person types it: a TOTP code or a recovery
//! code, through the service (`complete_login`), for an account with a confirmed TOTP.
//!
//! Invariants: never panics; the service answers only `LoginChallengeFailed` (its one
//! answer for any wrong code) for anything but a real code; the only TOTP code ever accepted is the next
//! time step's (the current one was spent by the confirmation), once; a recovery code is
//! accepted once, in any case and with any spaces and dashes.

#![no_main]

use std::cell::RefCell;

use auth_core::{AuthError, AuthService, LoginOutcome, MemoryStore, Password, SecondFactorCode};
use auth_fuzz::{NOW, PASSWORD, client, runtime, service};
use libfuzzer_sys::fuzz_target;
use totp_rs::{Builder, Secret};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    auth: AuthService<MemoryStore>,
    /// The next time step's code: the only TOTP code left to accept.
    next_code: Option<String>,
    /// The recovery codes not yet used, normalized (lowercase, no spaces or dashes).
    recovery_codes: Vec<String>,
    /// Logins served; the fixture is rebuilt now and then, so that challenges never
    /// fill the memory store.
    served: u32,
}

fn normalized_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn fixture() -> Fixture {
    let runtime = runtime();
    let auth = service();
    let (next_code, recovery_codes) = runtime.block_on(async {
        let email = "ada@example.com";
        auth.register(email, Password::new(PASSWORD), &client()).await.unwrap();
        let LoginOutcome::SignedIn(login) = auth.login(email, Password::new(PASSWORD), &client()).await.unwrap() else {
            panic!("no second factor yet");
        };
        let me = auth
            .authenticate(login.tokens.access_token.expose_secret())
            .await
            .unwrap();
        let caller = auth_core::Caller::from(&me);
        let enrolment = auth
            .begin_totp_enrolment(&caller, Password::new(PASSWORD), &client())
            .await
            .unwrap();
        let secret = Secret::try_from_base32(enrolment.expose_secret()).unwrap();
        let totp = Builder::new()
            .with_secret(secret)
            .with_step_duration(30)
            .build()
            .unwrap();
        let now = u64::try_from(NOW.unix_timestamp()).unwrap();
        let confirmed = auth
            .confirm_totp(&caller, &totp.generate(now).to_string(), &client())
            .await
            .unwrap();
        let recovery = confirmed
            .recovery_codes
            .expose_secrets()
            .map(normalized_recovery)
            .collect();
        (Some(totp.generate(now + 30).to_string()), recovery)
    });
    Fixture {
        runtime,
        auth,
        next_code,
        recovery_codes,
        served: 0,
    }
}

thread_local! {
    static FIXTURE: RefCell<Option<Fixture>> = const { RefCell::new(None) };
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let typed = String::from_utf8_lossy(rest).into_owned();
    FIXTURE.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|f| f.served >= 20_000) {
            *slot = Some(fixture());
        }
        let f = slot.as_mut().unwrap();
        f.served += 1;
        let code = match mode % 3 {
            0 => SecondFactorCode::typed(&typed),
            1 => SecondFactorCode::totp(typed.clone()),
            _ => SecondFactorCode::recovery_code(typed.clone()),
        };
        let is_totp = matches!(code, SecondFactorCode::Totp(_));
        let result = f.runtime.block_on(async {
            let outcome = f
                .auth
                .login("ada@example.com", Password::new(PASSWORD), &client())
                .await
                .unwrap();
            let LoginOutcome::SecondFactorRequired(challenge) = outcome else {
                panic!("a TOTP account signed in with its password alone");
            };
            f.auth
                .complete_login(challenge.token.expose_secret(), code, &client())
                .await
        });
        match result {
            Ok(_) if is_totp => {
                let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
                assert_eq!(
                    f.next_code.take().as_deref(),
                    Some(digits.as_str()),
                    "accepted TOTP code {typed:?}"
                );
            }
            Ok(_) => {
                let presented = normalized_recovery(&typed);
                let at = f.recovery_codes.iter().position(|code| *code == presented);
                assert!(at.is_some(), "accepted recovery code {typed:?}");
                f.recovery_codes.remove(at.unwrap());
            }
            Err(AuthError::LoginChallengeFailed) => {}
            Err(other) => panic!("{other:?} for {typed:?}"),
        }
    });
});
