//! A passkey sign-in's assertion (the browser's `PublicKeyCredential` as JSON), through
//! the service (`finish_passkey_login`) with a registered passkey: any JSON, and real
//! assertions of a software authenticator (webauthn-authenticator-rs's `SoftPasskey`)
//! with bytes of their binary fields changed.
//!
//! Invariants: never panics; arbitrary JSON never signs in and is refused as a client's
//! error (`PasskeyRefused` or `InvalidPasskey`), never an internal one; a real assertion
//! with any byte of its credential id, authenticator data, client data or signature
//! changed never signs in; the unchanged one does.

#![no_main]

use std::cell::RefCell;

use auth_core::{AuthError, AuthService, Caller, LoginOutcome, MemoryStore, Password};
use auth_fuzz::{ORIGIN, PASSWORD, client, runtime, service};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    auth: AuthService<MemoryStore>,
    authenticator: SoftPasskey,
    credential_id: String,
    served: u32,
}

fn fixture() -> Fixture {
    let runtime = runtime();
    let auth = service();
    let mut authenticator = SoftPasskey::new(true);
    let credential_id = runtime.block_on(async {
        let email = "ada@example.com";
        auth.register(email, Password::new(PASSWORD), &client()).await.unwrap();
        let LoginOutcome::SignedIn(login) = auth.login(email, Password::new(PASSWORD), &client()).await.unwrap() else {
            panic!("no second factor here");
        };
        let me = auth
            .authenticate(login.tokens.access_token.expose_secret())
            .await
            .unwrap();
        let caller = Caller::from(&me);
        let begun = auth.begin_passkey_registration(&caller, &client()).await.unwrap();
        let options: CreationChallengeResponse = serde_json::from_value(json!({ "publicKey": begun.options })).unwrap();
        let created = authenticator
            .do_registration(Url::parse(ORIGIN).unwrap(), options)
            .unwrap();
        let credential = serde_json::to_value(created).unwrap();
        auth.finish_passkey_registration(
            &caller,
            begun.ceremony.expose_secret(),
            &credential,
            Some("fuzz"),
            &client(),
        )
        .await
        .unwrap();
        credential["rawId"].as_str().unwrap().to_owned()
    });
    Fixture {
        runtime,
        auth,
        authenticator,
        credential_id,
        served: 0,
    }
}

thread_local! {
    static FIXTURE: RefCell<Option<Fixture>> = const { RefCell::new(None) };
}

/// The binary fields a mutation may change, and where they are in the JSON.
const FIELDS: [&[&str]; 4] = [
    &["rawId"],
    &["response", "authenticatorData"],
    &["response", "clientDataJSON"],
    &["response", "signature"],
];

fn field<'v>(value: &'v mut Value, path: &[&str]) -> &'v mut Value {
    path.iter().fold(value, |value, key| &mut value[*key])
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    FIXTURE.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|f| f.served >= 20_000) {
            *slot = Some(fixture());
        }
        let f = slot.as_mut().unwrap();
        f.served += 1;
        let begun = f.runtime.block_on(f.auth.begin_passkey_login(&client())).unwrap();
        let (credential, changed) = if mode < 128 {
            let value =
                serde_json::from_slice(rest).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(rest).into()));
            (value, true)
        } else {
            let mut options = begun.options.clone();
            options["allowCredentials"] = json!([{ "type": "public-key", "id": f.credential_id }]);
            let options: RequestChallengeResponse = serde_json::from_value(json!({ "publicKey": options })).unwrap();
            let answer = f
                .authenticator
                .do_authentication(Url::parse(ORIGIN).unwrap(), options)
                .unwrap();
            let original = serde_json::to_value(answer).unwrap();
            let mut credential = original.clone();
            // Triples: (field, position, xor mask).
            for triple in rest.chunks_exact(3) {
                let path = FIELDS[usize::from(triple[0]) % FIELDS.len()];
                let slot = field(&mut credential, path);
                let Some(encoded) = slot.as_str() else { continue };
                let mut bytes = URL_SAFE_NO_PAD.decode(encoded).unwrap();
                if bytes.is_empty() {
                    continue;
                }
                let at = usize::from(triple[1]) * bytes.len() / 256;
                bytes[at] ^= triple[2];
                *slot = Value::String(URL_SAFE_NO_PAD.encode(&bytes));
            }
            let changed = credential != original;
            (credential, changed)
        };
        let result = f.runtime.block_on(f.auth.finish_passkey_login(
            begun.ceremony.expose_secret(),
            &credential,
            &client(),
        ));
        match result {
            Ok(_) => assert!(!changed, "signed in with {credential}"),
            Err(AuthError::PasskeyRefused | AuthError::InvalidPasskey) if changed => {}
            Err(other) => panic!("{other:?} for {credential} (changed: {changed})"),
        }
    });
});
