//! The OpenID provider fixture itself (`oidc-provider/provider.mjs` and the harness in
//! `src/oidc_provider.rs`), with a hand-made relying party: discovery, the sign-in driver,
//! the code exchange with PKCE, the accounts' claims, and every spoiled-ID-token mode.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_contract::client;
use http_contract::oidc_provider::{Client, OidcProvider};
use reqwest::Url;
use serde_json::Value;
use sha2::{Digest, Sha256};

const CLIENT_ID: &str = "contract-app";
const CLIENT_SECRET: &str = "contract-app-secret-of-some-length";
/// Never requested: the driver stops at the redirect to it.
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

/// Every test is bounded: a hung provider fails the test instead of stalling the run.
const TEST_TIMEOUT: Duration = Duration::from_secs(25);

async fn start() -> Option<OidcProvider> {
    OidcProvider::start_or_skip(&[Client {
        id: CLIENT_ID.to_owned(),
        secret: CLIENT_SECRET.to_owned(),
        redirect_uris: vec![REDIRECT_URI.to_owned()],
    }])
    .await
}

fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// One authorization request of a relying party: what it keeps for the callback.
struct Flow {
    authorize_url: String,
    state: String,
    nonce: String,
    verifier: String,
}

async fn discovery(provider: &OidcProvider) -> Value {
    let response = client().get(provider.discovery_url()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn flow(discovery: &Value, scope: &str) -> Flow {
    let (state, nonce) = (random(), random());
    let verifier = format!("{}{}", random(), random());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut url = Url::parse(discovery["authorization_endpoint"].as_str().unwrap()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", scope)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Flow {
        authorize_url: url.into(),
        state,
        nonce,
        verifier,
    }
}

fn query(url: &Url, key: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// Signs in as `login` on a fresh browser and exchanges the code: the token answer.
async fn sign_in_and_exchange(provider: &OidcProvider, discovery: &Value, login: &str) -> (Flow, Value) {
    let flow = flow(discovery, "openid email profile");
    let callback = provider
        .sign_in(&OidcProvider::browser(), &flow.authorize_url, login)
        .await;
    assert!(callback.as_str().starts_with(REDIRECT_URI), "{callback}");
    assert_eq!(query(&callback, "state").as_deref(), Some(flow.state.as_str()));
    assert_eq!(query(&callback, "iss").as_deref(), Some(provider.issuer.as_str()));
    let code = query(&callback, "code").expect("a code");
    let tokens = exchange(discovery, &code, &flow.verifier).await;
    (flow, tokens)
}

async fn exchange(discovery: &Value, code: &str, verifier: &str) -> Value {
    let response = client()
        .post(discovery["token_endpoint"].as_str().unwrap())
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// The three parts of a compact JWS, header and payload decoded.
fn parts(token: &str) -> (Value, Value, String) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let decode = |part: &str| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap() };
    (decode(parts[0]), decode(parts[1]), parts[2].to_owned())
}

/// What an independent verifier (jsonwebtoken, with the key of `kid` from the provider's
/// JWKS; the token's own `kid` by default) says of an ID token for our client: its claims,
/// or why it is refused.
async fn verify(provider: &OidcProvider, discovery: &Value, token: &str, kid: Option<&str>) -> Result<Value, String> {
    // jsonwebtoken picks its backend once per process; name it, whatever else is linked.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let jwks: jsonwebtoken::jwk::JwkSet = client()
        .get(discovery["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = kid.map(str::to_owned).or(header.kid).unwrap();
    let Some(jwk) = jwks.find(&kid) else {
        return Err("UnknownKid".to_owned());
    };
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[&provider.issuer]);
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|error| format!("{:?}", error.kind()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("the test took too long");
}

#[tokio::test]
async fn a_sign_in_yields_a_code_and_an_id_token_with_the_nonce_and_verified_email() {
    bounded(async {
        let Some(provider) = start().await else { return };
        let discovery = discovery(&provider).await;
        assert_eq!(discovery["issuer"], provider.issuer.as_str());
        assert!(provider.issuer.starts_with("http://127.0.0.1:"), "{}", provider.issuer);
        assert_eq!(
            discovery["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );

        let (flow, tokens) = sign_in_and_exchange(&provider, &discovery, "alice@example.com").await;
        assert!(tokens["access_token"].is_string(), "{tokens}");
        let (header, claims, _) = parts(tokens["id_token"].as_str().unwrap());
        assert_eq!(header["alg"], "RS256");
        assert!(header["kid"].is_string(), "{header}");
        assert_eq!(claims["iss"], provider.issuer.as_str());
        assert_eq!(claims["aud"], CLIENT_ID);
        assert_eq!(claims["nonce"], flow.nonce.as_str());
        assert_eq!(claims["sub"], "user-alice@example.com");
        assert_eq!(claims["email"], "alice@example.com");
        assert_eq!(claims["email_verified"], true);
        assert_eq!(claims["name"], "alice");
        let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
        assert!((iat - now()).abs() < 60 && exp > iat, "{claims}");

        // The key it is signed with is published.
        let jwks: Value = client()
            .get(discovery["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kids: Vec<&Value> = jwks["keys"].as_array().unwrap().iter().map(|key| &key["kid"]).collect();
        assert!(kids.contains(&&header["kid"]), "{jwks}");
        assert!(
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .all(|key| key.get("d").is_none())
        );
        let verified = verify(&provider, &discovery, tokens["id_token"].as_str().unwrap(), None).await;
        assert_eq!(verified.unwrap()["nonce"], flow.nonce.as_str());
    })
    .await;
}

#[tokio::test]
async fn the_subject_is_stable_and_unverified_logins_have_unverified_emails() {
    bounded(async {
        let Some(provider) = start().await else { return };
        let discovery = discovery(&provider).await;
        let (_, tokens) = sign_in_and_exchange(&provider, &discovery, "unverified+bob@example.com").await;
        let (_, claims, _) = parts(tokens["id_token"].as_str().unwrap());
        assert_eq!(claims["email"], "bob@example.com");
        assert_eq!(claims["email_verified"], false);
        assert_eq!(claims["sub"], "user-unverified+bob@example.com");

        // The same login in another case is the same subject; a verified bob is another.
        let (_, tokens) = sign_in_and_exchange(&provider, &discovery, "Unverified+Bob@Example.com").await;
        assert_eq!(
            parts(tokens["id_token"].as_str().unwrap()).1["sub"],
            "user-unverified+bob@example.com"
        );
        let (_, tokens) = sign_in_and_exchange(&provider, &discovery, "bob@example.com").await;
        let (_, claims, _) = parts(tokens["id_token"].as_str().unwrap());
        assert_eq!(claims["sub"], "user-bob@example.com");
        assert_eq!(claims["email_verified"], true);
    })
    .await;
}

#[tokio::test]
async fn a_second_sign_in_on_the_same_browser_reuses_the_provider_session() {
    bounded(async {
        let Some(provider) = start().await else { return };
        let discovery = discovery(&provider).await;
        let browser = OidcProvider::browser();
        let first = flow(&discovery, "openid email");
        provider
            .sign_in(&browser, &first.authorize_url, "carol@example.com")
            .await;
        let second = flow(&discovery, "openid email");
        let callback = provider.continue_session(&browser, &second.authorize_url).await;
        assert_eq!(query(&callback, "state").as_deref(), Some(second.state.as_str()));
        let tokens = exchange(&discovery, &query(&callback, "code").unwrap(), &second.verifier).await;
        let (_, claims, _) = parts(tokens["id_token"].as_str().unwrap());
        assert_eq!(claims["sub"], "user-carol@example.com");
        assert_eq!(claims["nonce"], second.nonce.as_str());
    })
    .await;
}

#[tokio::test]
async fn pkce_is_required_and_a_wrong_verifier_is_refused() {
    bounded(async {
        let Some(provider) = start().await else { return };
        let discovery = discovery(&provider).await;
        // Without a code challenge, the provider sends the browser back with an error.
        let mut url = Url::parse(&flow(&discovery, "openid").authorize_url).unwrap();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !k.starts_with("code_challenge"))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        let callback = provider
            .sign_in(&OidcProvider::browser(), url.as_str(), "dave@example.com")
            .await;
        assert_eq!(
            query(&callback, "error").as_deref(),
            Some("invalid_request"),
            "{callback}"
        );

        let flow = flow(&discovery, "openid");
        let callback = provider
            .sign_in(&OidcProvider::browser(), &flow.authorize_url, "dave@example.com")
            .await;
        let response = client()
            .post(discovery["token_endpoint"].as_str().unwrap())
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &query(&callback, "code").unwrap()),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &format!("{}{}", random(), random())),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant", "{body}");
    })
    .await;
}

#[tokio::test]
async fn each_mode_spoils_the_next_id_token_once() {
    bounded(async {
        let Some(provider) = start().await else { return };
        let discovery = discovery(&provider).await;
        let (_, real) = sign_in_and_exchange(&provider, &discovery, "erin@example.com").await;
        let real_kid = parts(real["id_token"].as_str().unwrap()).0["kid"].clone();

        provider.set_next_id_token("other-audience").await;
        let (flow, tokens) = sign_in_and_exchange(&provider, &discovery, "erin@example.com").await;
        let (header, claims, _) = parts(tokens["id_token"].as_str().unwrap());
        assert_eq!(claims["aud"], "someone-else");
        assert!(claims.get("azp").is_none(), "{claims}");
        assert_eq!(claims["nonce"], flow.nonce.as_str());
        assert_eq!(header["kid"], real_kid);
        let token = tokens["id_token"].as_str().unwrap();
        assert_eq!(
            verify(&provider, &discovery, token, None).await.unwrap_err(),
            "InvalidAudience"
        );

        // One-shot: the next answer is real again.
        let (flow, tokens) = sign_in_and_exchange(&provider, &discovery, "erin@example.com").await;
        let previous = tokens["id_token"].as_str().unwrap().to_owned();
        let (_, claims, _) = parts(&previous);
        assert_eq!(claims["aud"], CLIENT_ID);
        assert_eq!(claims["nonce"], flow.nonce.as_str());

        provider.set_next_id_token("previous").await;
        let (flow, tokens) = sign_in_and_exchange(&provider, &discovery, "erin@example.com").await;
        assert_eq!(tokens["id_token"], previous.as_str());
        // Valid in every way but the nonce, which is another flow's.
        let verified = verify(&provider, &discovery, &previous, None).await.unwrap();
        assert_ne!(verified["nonce"], flow.nonce.as_str());

        provider.set_next_id_token("expired").await;
        let (_, tokens) = sign_in_and_exchange(&provider, &discovery, "erin@example.com").await;
        let (header, claims, _) = parts(tokens["id_token"].as_str().unwrap());
        let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
        assert!(
            (now() - 3600 - exp).abs() < 60 && (now() - 7200 - iat).abs() < 60,
            "{claims}"
        );
        assert_eq!(header["kid"], real_kid);
        let token = tokens["id_token"].as_str().unwrap();
        assert_eq!(
            verify(&provider, &discovery, token, None).await.unwrap_err(),
            "ExpiredSignature"
        );

        provider.set_next_id_token("future-iat").await;
        let (_, tokens) = sign_in_and_exchange(&provider, &discovery, "erin@example.com").await;
        let (header, claims, _) = parts(tokens["id_token"].as_str().unwrap());
        let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
        assert!((iat - now() - 3600).abs() < 60 && exp > iat, "{claims}");
        assert_eq!(header["kid"], real_kid);
        // jsonwebtoken does not check `iat`: the signature and the other claims are good.
        let token = tokens["id_token"].as_str().unwrap();
        assert_eq!(verify(&provider, &discovery, token, None).await.unwrap()["iat"], iat);

        provider.set_next_id_token("unknown-key").await;
        let (flow, tokens) = sign_in_and_exchange(&provider, &discovery, "erin@example.com").await;
        let (header, claims, _) = parts(tokens["id_token"].as_str().unwrap());
        assert_eq!(header["alg"], "RS256");
        assert_ne!(header["kid"], real_kid);
        assert_eq!(claims["nonce"], flow.nonce.as_str());
        let jwks: Value = client()
            .get(discovery["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .all(|key| key["kid"] != header["kid"]),
            "{jwks}"
        );
        let token = tokens["id_token"].as_str().unwrap();
        assert_eq!(
            verify(&provider, &discovery, token, None).await.unwrap_err(),
            "UnknownKid"
        );
        let real_kid_text = real_kid.as_str().unwrap();
        let verified = verify(&provider, &discovery, token, Some(real_kid_text)).await;
        assert_eq!(verified.unwrap_err(), "InvalidSignature");

        provider.set_next_id_token("tampered").await;
        let (flow, tokens) = sign_in_and_exchange(&provider, &discovery, "erin@example.com").await;
        let token = tokens["id_token"].as_str().unwrap();
        let (header, claims, signature) = parts(token);
        assert_eq!(claims["sub"], "user-mallory@example.com");
        assert_eq!(claims["nonce"], flow.nonce.as_str());
        assert_eq!(header["kid"], real_kid);
        assert_eq!(
            verify(&provider, &discovery, token, None).await.unwrap_err(),
            "InvalidSignature"
        );
        // The signature is the real key's, of the payload before the change.
        let [head, payload, _] = token.split('.').collect::<Vec<_>>()[..] else {
            panic!("{token}")
        };
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let original = payload.replace(
            r#""sub":"user-mallory@example.com""#,
            r#""sub":"user-erin@example.com""#,
        );
        assert_ne!(original, payload);
        let restored = format!("{head}.{}.{signature}", URL_SAFE_NO_PAD.encode(original));
        assert_eq!(
            verify(&provider, &discovery, &restored, None).await.unwrap()["sub"],
            "user-erin@example.com"
        );

        // A mode set and reset is not used; an unknown mode is refused.
        provider.set_next_id_token("expired").await;
        provider.reset().await;
        let (_, tokens) = sign_in_and_exchange(&provider, &discovery, "erin@example.com").await;
        let (_, claims, _) = parts(tokens["id_token"].as_str().unwrap());
        assert!(claims["exp"].as_i64().unwrap() > now(), "{claims}");
        let response = client()
            .post(format!("{}/__test/next-id-token", provider.issuer))
            .json(&serde_json::json!({ "mode": "no-such-mode" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
    })
    .await;
}

#[tokio::test]
async fn previous_needs_an_earlier_id_token() {
    bounded(async {
        let Some(provider) = start().await else { return };
        let response = client()
            .post(format!("{}/__test/next-id-token", provider.issuer))
            .json(&serde_json::json!({ "mode": "previous" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 409);
    })
    .await;
}

#[tokio::test]
async fn the_provider_stops_with_its_handle() {
    bounded(async {
        let Some(provider) = start().await else { return };
        let jwks_url = discovery(&provider).await["jwks_uri"].as_str().unwrap().to_owned();
        let jwks = client().get(&jwks_url).send().await.unwrap().text().await.unwrap();
        drop(provider);
        // Refused; or, if another test's provider got the port meanwhile, another provider.
        if let Ok(response) = client().get(&jwks_url).send().await {
            assert_ne!(response.text().await.unwrap(), jwks, "still answering after drop");
        }
    })
    .await;
}
