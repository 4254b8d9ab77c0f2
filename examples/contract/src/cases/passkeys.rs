//! Passkeys over HTTP: registration from a recent sign-in, sign-in without an address, a
//! passkey as the second factor of a login challenge, the list, renaming and removal, and
//! the notices mailed; webauthn-authenticator-rs's software authenticator (real keys,
//! signatures and counters) answers the server's options as a browser's would. The
//! browser itself (Chromium's virtual authenticator) is the Axum pages' test.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::cases::second_factor::code_in;
use crate::{PASSWORD, Server, Target, client, get, last_message, login, post_json, register, tokens};

/// The origin of every contract server (`AUTH_PUBLIC_URL`): the origin browsers show, which
/// assertions must name, whatever address the test reaches the server at.
pub const ORIGIN: &str = "https://auth.example.test";

/// A software authenticator that verifies its user, as a platform authenticator does.
pub struct Authenticator(SoftPasskey);

impl Default for Authenticator {
    fn default() -> Self {
        Self(SoftPasskey::new(true))
    }
}

impl Authenticator {
    /// The new credential for `options` (the `options` of a registration's start), as the
    /// browser's `toJSON()` gives it.
    pub fn create(&mut self, options: &Value) -> Value {
        let options: CreationChallengeResponse = serde_json::from_value(json!({ "publicKey": options })).unwrap();
        let credential = self.0.do_registration(Url::parse(ORIGIN).unwrap(), options).unwrap();
        serde_json::to_value(credential).unwrap()
    }

    /// The assertion for `options` (a sign-in's start) with the credential `id`
    /// (base64url). This authenticator keeps no discoverable keys: the credential is named
    /// in `allowCredentials`, as a browser finds it by itself.
    pub fn assert(&mut self, options: &Value, id: &str) -> Value {
        let mut options = options.clone();
        options["allowCredentials"] = json!([{ "type": "public-key", "id": id }]);
        let options: RequestChallengeResponse = serde_json::from_value(json!({ "publicKey": options })).unwrap();
        let assertion = self.0.do_authentication(Url::parse(ORIGIN).unwrap(), options).unwrap();
        serde_json::to_value(assertion).unwrap()
    }
}

/// The credential id (base64url) of a credential `create` gave.
pub fn credential_id(credential: &Value) -> String {
    credential["id"].as_str().unwrap().to_owned()
}

/// The claims of a JWT, unverified (the server's own token, read for `amr`).
fn amr(jwt: &str) -> Vec<String> {
    let payload = jwt.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    serde_json::from_value(claims["amr"].clone()).unwrap()
}

/// Case: a passkey registered from a fresh sign-in signs in without an address (`amr`
/// `hwk` and `mfa`), once per ceremony; it completes a login challenge of an account with
/// TOTP; it is listed, renamed and removed (with a recent sign-in), and its owner is told
/// of both.
pub async fn passkeys_register_sign_in_and_are_managed(target: Target) {
    let Some(server) = Server::start(target, &[]) else {
        return;
    };
    let email = "pia@example.com";
    register(&server, email).await;
    let (access, _) = tokens(&server, email).await;

    let begun = post_json(&server, "/passkeys/register/start", json!({}), Some(&access)).await;
    assert_eq!(begun.status, 200, "{}", begun.text);
    let begun = begun.json();
    assert_eq!(begun["options"]["rp"]["id"], "auth.example.test");
    assert_eq!(begun["options"]["authenticatorSelection"]["residentKey"], "preferred");
    let mut key = Authenticator::default();
    let credential = key.create(&begun["options"]);
    let body = json!({ "ceremony": begun["ceremony"], "credential": credential, "name": "Work laptop" });
    let added = post_json(&server, "/passkeys/register/finish", body, Some(&access)).await;
    assert_eq!(added.status, 201, "{}", added.text);
    let passkey_id = added.json()["id"].as_str().unwrap().to_owned();
    let mail = last_message(&server.outbox(), "passkey_added").await;
    assert!(
        mail.contains("A passkey was added") && mail.contains("\"Work laptop\""),
        "{mail}"
    );

    // Sign in without an address; the ceremony works once.
    let id = credential_id(&credential);
    let start = post_json(&server, "/passkeys/login/start", json!({}), None)
        .await
        .json();
    let assertion = key.assert(&start["options"], &id);
    let finish = json!({ "ceremony": start["ceremony"], "credential": assertion });
    let signed_in = post_json(&server, "/passkeys/login/finish", finish.clone(), None).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
    let passkey_access = signed_in.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(amr(&passkey_access), ["hwk", "mfa"]);
    let me = get(&server, "/me", Some(&passkey_access)).await;
    assert_eq!(me.json()["email"], email);
    let replayed = post_json(&server, "/passkeys/login/finish", finish, None).await;
    assert_eq!(
        (replayed.status, replayed.json()["error"].clone()),
        (401, json!("passkey_refused"))
    );

    // With TOTP on, the login challenge offers the passkey, which completes it.
    let setup = post_json(&server, "/mfa/totp/setup", json!({"password": PASSWORD}), Some(&access)).await;
    let secret = setup.json()["secret"].as_str().unwrap().to_owned();
    let confirmed = post_json(
        &server,
        "/mfa/totp/confirm",
        json!({"code": code_in(&secret, 0)}),
        Some(&access),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.text);
    let asked = login(&server, email, PASSWORD).await.json();
    assert_eq!(asked["methods"], json!(["totp", "recovery_code", "passkey"]));
    let mfa_token = asked["mfa_token"].as_str().unwrap().to_owned();
    let second = post_json(
        &server,
        "/login/mfa/passkey/start",
        json!({"mfa_token": mfa_token}),
        None,
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let second = second.json();
    assert_eq!(second["options"]["allowCredentials"][0]["id"], json!(id));
    let assertion = key.assert(&second["options"], &id);
    let body = json!({ "mfa_token": mfa_token, "ceremony": second["ceremony"], "credential": assertion });
    let completed = post_json(&server, "/login/mfa/passkey/finish", body, None).await;
    assert_eq!(completed.status, 200, "{}", completed.text);
    let mfa_access = completed.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(amr(&mfa_access), ["hwk", "mfa", "pwd"]);

    // Listed, renamed, removed; a notice for the removal.
    let listed = get(&server, "/me/passkeys", Some(&mfa_access)).await.json();
    assert_eq!(listed["passkeys"][0]["name"], "Work laptop");
    assert!(listed["passkeys"][0]["last_used_at"].is_string(), "{listed}");
    let rename = client()
        .patch(server.url(&format!("/me/passkeys/{passkey_id}")))
        .bearer_auth(&mfa_access)
        .json(&json!({"name": "Phone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rename.status(), 204);
    let listed = get(&server, "/me/passkeys", Some(&mfa_access)).await.json();
    assert_eq!(listed["passkeys"][0]["name"], "Phone");
    let removed = client()
        .delete(server.url(&format!("/me/passkeys/{passkey_id}")))
        .bearer_auth(&mfa_access)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    let mail = last_message(&server.outbox(), "passkey_removed").await;
    assert!(
        mail.contains("A passkey was removed") && mail.contains("\"Phone\""),
        "{mail}"
    );
    let gone = get(&server, "/me/passkeys", Some(&mfa_access)).await.json();
    assert_eq!(gone, json!({"passkeys": []}));

    // A removed passkey signs in no more.
    let start = post_json(&server, "/passkeys/login/start", json!({}), None)
        .await
        .json();
    let assertion = key.assert(&start["options"], &id);
    let finish = json!({ "ceremony": start["ceremony"], "credential": assertion });
    let refused = post_json(&server, "/passkeys/login/finish", finish, None).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
}
