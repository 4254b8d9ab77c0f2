use super::*;
use crate::clock::ManualClock;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use time::macros::datetime;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const ED_PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/ed25519-private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/ed25519-public.pem");
const EC_PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/p256-private.pem");
const EC_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/p256-public.pem");

fn user() -> User {
    let now = datetime!(2026-05-01 12:00 UTC);
    User {
        id: UserId::new_at(now),
        email: Email::parse("alice@example.com").unwrap(),
        password_hash: None,
        is_active: true,
        email_verified_at: None,
        roles: [Role::new("admin").unwrap()].into(),
        token_version: 3,
        created_at: now,
        updated_at: now,
        requires_second_factor: false,
    }
}

fn tokens(key: SigningKey) -> (Tokens, ManualClock) {
    let clock = ManualClock::new(datetime!(2026-05-01 12:00 UTC));
    let tokens = Tokens::new(key, "https://auth.example.com", "api").with_clock(Arc::new(clock.clone()));
    (tokens, clock)
}

fn hs256() -> (Tokens, ManualClock) {
    tokens(SigningKey::hs256(SECRET).unwrap())
}

fn decode_part(token: &str, index: usize) -> serde_json::Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Re-signs `claims` with `key`, as an attacker holding the key (or a bug) would.
fn forge(header: &Header, claims: &serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

#[test]
fn short_secrets_refuse_to_build() {
    assert_eq!(
        SigningKey::hs256(&SECRET[..31]).unwrap_err(),
        KeyError::SecretTooShort { len: 31 }
    );
    assert!(SigningKey::hs256(&SECRET[..32]).is_ok());
}

#[test]
fn issued_tokens_carry_every_claim() {
    let (tokens, _) = hs256();
    let user = user();
    let token = tokens.issue(&user, None).unwrap();
    let header = decode_part(token.expose_secret(), 0);
    assert_eq!(header["alg"], "HS256");
    let claims = decode_part(token.expose_secret(), 1);
    let iat = datetime!(2026-05-01 12:00 UTC).unix_timestamp();
    assert_eq!(claims["sub"], user.id.to_string());
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["roles"], serde_json::json!(["admin"]));
    assert_eq!(claims["iat"], iat);
    assert_eq!(claims["nbf"], iat);
    assert_eq!(claims["exp"], iat + 900);
    assert_eq!(claims["iss"], "https://auth.example.com");
    assert_eq!(claims["aud"], "api");
    assert_eq!(claims["token_use"], "access");
    assert_eq!(claims["ver"], 3);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
    assert_ne!(
        tokens.issue(&user, None).unwrap().expose_secret(),
        token.expose_secret(),
        "jti differs"
    );
    assert_eq!(token.expires_in(), Duration::from_secs(900));
    assert!(!format!("{token:?}").contains(token.expose_secret()));
}

#[test]
fn verify_round_trip() {
    let (tokens, _) = hs256();
    let user = user();
    let claims = tokens
        .verify(tokens.issue(&user, None).unwrap().expose_secret())
        .unwrap();
    assert_eq!(claims.user_id(), user.id);
    assert_eq!(claims.email(), &user.email);
    assert!(claims.has_role("admin"));
    assert_eq!(claims.token_version(), 3);
    assert_eq!(claims.expires_at(), datetime!(2026-05-01 12:15 UTC));
}

#[test]
fn expiry_boundary_with_leeway() {
    let (tokens, clock) = hs256();
    let tokens = tokens
        .with_ttl(Duration::from_secs(60))
        .with_leeway(Duration::from_secs(5));
    let token = tokens.issue(&user(), None).unwrap();
    clock.advance(Duration::from_secs(64));
    assert!(tokens.verify(token.expose_secret()).is_ok(), "exp + leeway - 1s");
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        tokens.verify(token.expose_secret()),
        Err(TokenError::Expired),
        "exp + leeway"
    );
}

#[test]
fn not_before_boundary_with_leeway() {
    let (tokens, clock) = hs256();
    let token = tokens.issue(&user(), None).unwrap();
    clock.set(datetime!(2026-05-01 11:59:55 UTC));
    assert!(tokens.verify(token.expose_secret()).is_ok(), "nbf - leeway");
    clock.set(datetime!(2026-05-01 11:59:54 UTC));
    assert_eq!(tokens.verify(token.expose_secret()), Err(TokenError::NotYetValid));
}

#[test]
fn leeway_is_capped_at_thirty_seconds() {
    let (tokens, _) = hs256();
    assert_eq!(
        tokens
            .clone()
            .with_leeway(Duration::from_secs(3600))
            .verifier()
            .leeway(),
        MAX_LEEWAY
    );
    assert_eq!(tokens.verifier().leeway(), DEFAULT_LEEWAY);
}

#[test]
fn other_keys_issuers_and_audiences_are_refused() {
    let (tokens, clock) = hs256();
    let token = tokens.issue(&user(), None).unwrap();
    let token = token.expose_secret();

    let other_key = Tokens::new(
        SigningKey::hs256(&[7u8; 32]).unwrap(),
        "https://auth.example.com",
        "api",
    )
    .with_clock(Arc::new(clock.clone()));
    assert_eq!(other_key.verify(token), Err(TokenError::BadSignature));
    let other_issuer = Tokens::new(SigningKey::hs256(SECRET).unwrap(), "https://evil.example", "api")
        .with_clock(Arc::new(clock.clone()));
    assert_eq!(other_issuer.verify(token), Err(TokenError::WrongIssuer));
    let other_audience = Tokens::new(
        SigningKey::hs256(SECRET).unwrap(),
        "https://auth.example.com",
        "billing",
    )
    .with_clock(Arc::new(clock));
    assert_eq!(other_audience.verify(token), Err(TokenError::WrongAudience));
}

#[test]
fn tampered_tokens_are_refused() {
    let (tokens, _) = hs256();
    let token = tokens.issue(&user(), None).unwrap();
    let token = token.expose_secret();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = decode_part(token, 1);
    claims["roles"] = serde_json::json!(["admin", "superuser"]);
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_eq!(tokens.verify(&parts.join(".")), Err(TokenError::BadSignature));
    for garbage in ["", ".", "..", "a.b.c", "not a token", &"x".repeat(20_000)] {
        assert!(tokens.verify(garbage).is_err(), "{garbage:?}");
    }
}

#[test]
fn the_none_algorithm_and_algorithm_confusion_are_refused() {
    let (tokens, _) = hs256();
    let token = tokens.issue(&user(), None).unwrap();
    let token = token.expose_secret();
    let claims = token.split('.').nth(1).unwrap();
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    assert!(tokens.verify(&format!("{none_header}.{claims}.")).is_err());
    // HS384 with the same secret is still not the pinned algorithm.
    let hs384 = forge(&Header::new(Algorithm::HS384), &decode_part(token, 1), SECRET);
    assert_eq!(tokens.verify(&hs384), Err(TokenError::WrongAlgorithm));

    // An HS256 token "signed" with the public key of an EdDSA service.
    let (ed_tokens, _) = tokens_ed25519();
    let confused = forge(&Header::new(Algorithm::HS256), &decode_part(token, 1), ED_PUBLIC);
    assert_eq!(
        ed_tokens.verify(&confused),
        Err(TokenError::UnknownKey),
        "no key without a kid"
    );
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("ed-2026".to_owned());
    let confused = forge(&header, &decode_part(token, 1), ED_PUBLIC);
    assert_eq!(
        ed_tokens.verify(&confused),
        Err(TokenError::WrongAlgorithm),
        "the key's algorithm is pinned"
    );
}

#[test]
fn missing_claims_are_refused() {
    let (tokens, _) = hs256();
    let token = tokens.issue(&user(), None).unwrap();
    let claims = decode_part(token.expose_secret(), 1);
    for claim in [
        "exp",
        "nbf",
        "iat",
        "iss",
        "aud",
        "sub",
        "token_use",
        "ver",
        "email",
        "roles",
        "jti",
    ] {
        let mut stripped = claims.clone();
        stripped.as_object_mut().unwrap().remove(claim);
        let forged = forge(&Header::new(Algorithm::HS256), &stripped, SECRET);
        let result = tokens.verify(&forged);
        assert!(
            matches!(result, Err(TokenError::Malformed | TokenError::MissingClaim(_))),
            "{claim}: {result:?}"
        );
    }
}

#[test]
fn other_token_kinds_cannot_pass_as_access_tokens() {
    let (tokens, _) = hs256();
    let token = tokens.issue(&user(), None).unwrap();
    for kind in ["refresh", "reset", "verification", "Access", ""] {
        let mut claims = decode_part(token.expose_secret(), 1);
        claims["token_use"] = serde_json::json!(kind);
        let forged = forge(&Header::new(Algorithm::HS256), &claims, SECRET);
        assert_eq!(tokens.verify(&forged), Err(TokenError::WrongType), "{kind}");
    }
}

fn tokens_ed25519() -> (Tokens, ManualClock) {
    tokens(SigningKey::eddsa_pem("ed-2026", ED_PRIVATE, ED_PUBLIC).unwrap())
}

#[test]
fn asymmetric_keys_sign_with_a_kid() {
    for (tokens, alg) in [
        (tokens_ed25519().0, "EdDSA"),
        (
            tokens(SigningKey::es256_pem("ec-2026", EC_PRIVATE, EC_PUBLIC).unwrap()).0,
            "ES256",
        ),
    ] {
        let user = user();
        let token = tokens.issue(&user, None).unwrap();
        let header = decode_part(token.expose_secret(), 0);
        assert_eq!(header["alg"], alg);
        assert!(header["kid"].as_str().unwrap().ends_with("-2026"));
        assert_eq!(tokens.verify(token.expose_secret()).unwrap().user_id(), user.id);
    }
}

#[test]
fn a_different_kid_is_refused() {
    let (tokens, clock) = tokens_ed25519();
    let token = tokens.issue(&user(), None).unwrap();
    let renamed = Tokens::new(
        SigningKey::eddsa_pem("ed-2027", ED_PRIVATE, ED_PUBLIC).unwrap(),
        "https://auth.example.com",
        "api",
    )
    .with_clock(Arc::new(clock));
    assert_eq!(renamed.verify(token.expose_secret()), Err(TokenError::UnknownKey));
}

#[test]
fn bad_key_material_fails_at_construction() {
    assert!(matches!(
        SigningKey::eddsa_pem("k", b"not a pem", ED_PUBLIC),
        Err(KeyError::InvalidKey { .. })
    ));
    assert!(matches!(
        SigningKey::es256_pem("k", ED_PRIVATE, ED_PUBLIC),
        Err(KeyError::InvalidKey { .. })
    ));
    assert_eq!(
        SigningKey::eddsa_pem("", ED_PRIVATE, ED_PUBLIC).unwrap_err(),
        KeyError::InvalidKeyId
    );
    let other_public = include_bytes!("../../tests/fixtures/ed25519-other-public.pem");
    assert_eq!(
        SigningKey::eddsa_pem("k", ED_PRIVATE, other_public).unwrap_err(),
        KeyError::KeyMismatch
    );
    assert!(!format!("{:?}", SigningKey::hs256(SECRET).unwrap()).contains("0123"));
}

#[test]
fn bearer_header_parsing() {
    assert_eq!(bearer_token("Bearer a.b.c"), Some("a.b.c"));
    assert_eq!(bearer_token("BEARER a.b.c "), Some("a.b.c"));
    assert_eq!(bearer_token("Bearer a b"), None);
    assert_eq!(bearer_token("Bearer a\u{b}b"), None, "vertical tab");
    assert_eq!(bearer_token("Bearer a\u{2003}b"), None, "em space");
    assert_eq!(bearer_token("Bearer"), None);
    assert_eq!(bearer_token("Token a.b.c"), None);
    assert_eq!(bearer_token(""), None);
}

#[test]
fn access_tokens_name_their_session() {
    let (tokens, _) = hs256();
    let session = SessionId::new_at(datetime!(2026-05-01 12:00 UTC));
    let token = tokens.issue(&user(), Some(session)).unwrap();
    assert_eq!(decode_part(token.expose_secret(), 1)["sid"], session.to_string());
    assert_eq!(
        tokens.verify(token.expose_secret()).unwrap().session_id(),
        Some(session)
    );
    let sessionless = tokens.issue(&user(), None).unwrap();
    assert!(decode_part(sessionless.expose_secret(), 1).get("sid").is_none());
    assert_eq!(tokens.verify(sessionless.expose_secret()).unwrap().session_id(), None);
}

#[test]
fn rotated_keys_keep_verifying_until_removed() {
    let clock = ManualClock::new(datetime!(2026-05-01 12:00 UTC));
    let old = SigningKey::hs256(SECRET).unwrap().with_kid("2026-10").unwrap();
    let new = SigningKey::eddsa_pem("2026-11", ED_PRIVATE, ED_PUBLIC).unwrap();
    let before = Tokens::new(old.clone(), "https://auth.example.com", "api").with_clock(Arc::new(clock.clone()));
    let old_token = before.issue(&user(), None).unwrap();

    // Sign with the new key, keep the old one for verification.
    let during = Tokens::new(new.clone(), "https://auth.example.com", "api")
        .with_verification_key(old.verification_key().clone())
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    let new_token = during.issue(&user(), None).unwrap();
    assert_eq!(decode_part(new_token.expose_secret(), 0)["kid"], "2026-11");
    assert!(
        during.verify(old_token.expose_secret()).is_ok(),
        "tokens signed before the rotation still work"
    );
    assert!(during.verify(new_token.expose_secret()).is_ok());

    // Once the old key is dropped, its tokens stop working.
    let after = Tokens::new(new, "https://auth.example.com", "api").with_clock(Arc::new(clock));
    assert_eq!(after.verify(old_token.expose_secret()), Err(TokenError::UnknownKey));
    assert!(after.verify(new_token.expose_secret()).is_ok());
}

#[test]
fn duplicate_key_ids_are_refused() {
    let a = SigningKey::hs256(SECRET).unwrap();
    let b = SigningKey::hs256(&[9u8; 32]).unwrap();
    let tokens = Tokens::new(a, "iss", "aud");
    assert_eq!(
        tokens
            .clone()
            .with_verification_key(b.verification_key().clone())
            .unwrap_err(),
        KeyError::DuplicateKeyId(None)
    );
    let kid = b.with_kid("k1").unwrap();
    assert!(tokens.with_verification_key(kid.verification_key().clone()).is_ok());
}

#[test]
fn the_jwks_publishes_public_keys_only_and_verifies_elsewhere() {
    let ed = SigningKey::eddsa_pem("ed-2026", ED_PRIVATE, ED_PUBLIC).unwrap();
    let ec = SigningKey::es256_pem("ec-2026", EC_PRIVATE, EC_PUBLIC).unwrap();
    let hs = SigningKey::hs256(SECRET).unwrap().with_kid("hs-2026").unwrap();
    let (tokens, clock) = tokens(ed);
    let tokens = tokens
        .with_verification_key(ec.verification_key().clone())
        .unwrap()
        .with_verification_key(hs.verification_key().clone())
        .unwrap();
    let jwks = tokens.jwks();
    let json = serde_json::to_value(&jwks).unwrap();
    let kids: Vec<&str> = jwks.keys.iter().filter_map(|k| k.common.key_id.as_deref()).collect();
    assert_eq!(kids, ["ed-2026", "ec-2026"], "the HS256 secret is never published");
    assert!(!json.to_string().contains(&URL_SAFE_NO_PAD.encode(SECRET)));
    for key in json["keys"].as_array().unwrap() {
        assert_eq!(key["use"], "sig");
        assert!(key.get("d").is_none(), "no private key material");
    }

    // Another service verifies with nothing but the published document.
    let published: jsonwebtoken::jwk::JwkSet = serde_json::from_value(json).unwrap();
    let keys = published.keys.iter().map(|jwk| VerificationKey::from_jwk(jwk).unwrap());
    let elsewhere = TokenVerifier::new(keys, "https://auth.example.com", "api")
        .unwrap()
        .with_clock(Arc::new(clock));
    let token = tokens.issue(&user(), None).unwrap();
    assert_eq!(
        elsewhere.verify(token.expose_secret()).unwrap().user_id(),
        tokens.verify(token.expose_secret()).unwrap().user_id()
    );
}

#[test]
fn symmetric_or_anonymous_jwks_are_refused() {
    let hs = SigningKey::hs256(SECRET).unwrap().with_kid("hs").unwrap();
    let secret_jwk =
        jsonwebtoken::jwk::Jwk::from_decoding_key(&hs.verification_key().decoding, Some(Algorithm::HS256)).unwrap();
    assert!(matches!(
        VerificationKey::from_jwk(&secret_jwk),
        Err(KeyError::InvalidKey { .. })
    ));
    let ed = SigningKey::eddsa_pem("ed", ED_PRIVATE, ED_PUBLIC).unwrap();
    let mut anonymous = ed.verification_key().public_jwk().unwrap();
    anonymous.common.key_id = None;
    assert_eq!(
        VerificationKey::from_jwk(&anonymous).unwrap_err(),
        KeyError::InvalidKeyId
    );
}

#[test]
fn tokens_without_an_audience_claim_are_only_for_verifiers_that_expect_none() {
    let (tokens, clock) = hs256();
    let bare = tokens.clone().without_audience_claim();
    let token = bare.issue(&user(), None).unwrap();
    let claims = decode_part(token.expose_secret(), 1);
    assert!(claims.get("aud").is_none(), "{claims}");
    assert_eq!(
        bare.verify(token.expose_secret()).unwrap().email().as_str(),
        "alice@example.com"
    );
    // A verifier that expects an audience refuses a token without one...
    assert!(tokens.verify(token.expose_secret()).is_err());
    // ...and one that expects none still checks everything else.
    let other_issuer = Tokens::new(SigningKey::hs256(SECRET).unwrap(), "https://evil.example", "api")
        .with_clock(Arc::new(clock))
        .without_audience_claim();
    assert_eq!(other_issuer.verify(token.expose_secret()), Err(TokenError::WrongIssuer));
}

#[test]
fn a_verifier_without_an_audience_refuses_tokens_meant_for_one() {
    let (tokens, _) = hs256();
    let bare = tokens.clone().without_audience_claim();
    // Another service's token, same key and issuer, meant for its own audience.
    let foreign = tokens.issue(&user(), None).unwrap();
    assert_eq!(bare.verify(foreign.expose_secret()), Err(TokenError::WrongAudience));
    let mut claims = decode_part(foreign.expose_secret(), 1);
    claims["aud"] = serde_json::json!(["api", "other"]);
    let listed = forge(&Header::new(Algorithm::HS256), &claims, SECRET);
    assert!(bare.verify(&listed).is_err(), "a list of audiences is refused too");
}

#[test]
fn any_critical_header_extension_is_refused() {
    let (tokens, _) = hs256();
    let token = tokens.issue(&user(), None).unwrap();
    let claims = decode_part(token.expose_secret(), 1);
    for crit in [vec!["exp".to_owned()], vec!["b64".to_owned()], vec![]] {
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(crit.clone());
        let forged = forge(&header, &claims, SECRET);
        assert_eq!(
            tokens.verify(&forged),
            Err(TokenError::UnsupportedCriticalHeader),
            "crit {crit:?}"
        );
    }
    // The same token without `crit` verifies: the refusal is the header's alone.
    let plain = forge(&Header::new(Algorithm::HS256), &claims, SECRET);
    assert!(tokens.verify(&plain).is_ok());
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn a_private_pem_alone_gives_the_key_pair_its_algorithm_and_its_thumbprint_as_kid() {
    for (private, public, algorithm) in [(ED_PRIVATE, ED_PUBLIC, "EdDSA"), (EC_PRIVATE, EC_PUBLIC, "ES256")] {
        let derived = SigningKey::from_private_pem(None, private).unwrap();
        assert_eq!(derived.algorithm(), algorithm);
        // The public half derived from the private key is the one openssl wrote.
        let written = VerificationKey::from_public_pem(None, public).unwrap();
        assert_eq!(derived.verification_key().public_jwk(), written.public_jwk());
        assert_eq!(derived.kid(), written.kid(), "both are named by their thumbprint");
        assert_eq!(derived.kid(), derived.verification_key().thumbprint().as_deref());
        // Tokens it signs verify with the public key alone, chosen by that kid.
        let (tokens, clock) = tokens(derived.clone());
        let token = tokens.issue(&user(), None).unwrap();
        assert_eq!(decode_part(token.expose_secret(), 0)["kid"].as_str(), derived.kid());
        let elsewhere = TokenVerifier::new([written], "https://auth.example.com", "api")
            .unwrap()
            .with_clock(Arc::new(clock));
        assert!(elsewhere.verify(token.expose_secret()).is_ok());
        // A kid given explicitly names the key instead.
        let named = SigningKey::from_private_pem(Some("2026-11"), private).unwrap();
        assert_eq!(named.kid(), Some("2026-11"));
        assert_eq!(
            VerificationKey::from_public_pem(Some("2026-11"), public).unwrap().kid(),
            Some("2026-11")
        );
    }
    assert_ne!(
        SigningKey::from_private_pem(None, ED_PRIVATE).unwrap().kid(),
        SigningKey::from_private_pem(None, EC_PRIVATE).unwrap().kid()
    );
}

#[test]
fn the_thumbprint_is_rfc_7638s() {
    // RFC 8037 appendix A.3: the Ed25519 key of A.2 and its RFC 7638 thumbprint.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(serde_json::json!({
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": "rfc8037",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    }))
    .unwrap();
    let key = VerificationKey::from_jwk(&jwk).unwrap();
    assert_eq!(
        key.thumbprint().as_deref(),
        Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
    );
    // P-256: SHA-256 of the required members in lexicographic order, computed here.
    let ec = VerificationKey::from_public_pem(None, EC_PUBLIC).unwrap();
    let published = serde_json::to_value(ec.public_jwk().unwrap()).unwrap();
    let members = format!(
        r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
        published["x"], published["y"]
    );
    let digest = <sha2::Sha256 as sha2::Digest>::digest(members.as_bytes());
    assert_eq!(ec.kid(), Some(URL_SAFE_NO_PAD.encode(digest).as_str()));
    assert_eq!(SigningKey::hs256(SECRET).unwrap().verification_key().thumbprint(), None);
}

#[test]
fn keys_of_another_kind_are_refused_saying_what_they_are() {
    let refused_private = |pem: &[u8]| match SigningKey::from_private_pem(None, pem) {
        Err(KeyError::UnsupportedKey(reason)) => reason,
        other => panic!("{other:?}"),
    };
    let refused_public = |pem: &[u8]| match VerificationKey::from_public_pem(None, pem) {
        Err(KeyError::UnsupportedKey(reason)) => reason,
        other => panic!("{other:?}"),
    };
    assert!(refused_private(ED_PUBLIC).contains("a public key"));
    assert!(refused_public(ED_PRIVATE).contains("a private key"));
    assert!(refused_private(&fixture("p256-sec1-private.pem")).contains("openssl pkcs8 -topk8"));
    assert!(refused_private(&fixture("ed25519-encrypted-private.pem")).contains("an encrypted key"));
    assert!(refused_private(&fixture("rsa-private.pem")).contains("RSA"));
    assert!(refused_private(&fixture("ed448-private.pem")).contains("neither"));
    for other_curve in ["p384-private.pem", "secp256k1-private.pem"] {
        assert!(
            refused_private(&fixture(other_curve)).contains("P-256"),
            "{other_curve}"
        );
    }
    for other_curve in ["p384-public.pem", "secp256k1-public.pem"] {
        assert!(refused_public(&fixture(other_curve)).contains("P-256"), "{other_curve}");
    }
    assert!(refused_private(b"").contains("not a PEM"));
    assert!(refused_public(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").contains("CERTIFICATE"));
    assert!(
        refused_private(b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n").contains("neither")
    );
    // No message repeats the key it refused.
    let private = String::from_utf8(fixture("p384-private.pem")).unwrap();
    let body = private.lines().nth(1).unwrap();
    assert!(!refused_private(private.as_bytes()).contains(body));
    assert_eq!(
        SigningKey::from_private_pem(Some(""), ED_PRIVATE).unwrap_err(),
        KeyError::InvalidKeyId
    );
}

#[test]
fn a_jwk_whose_curve_is_not_its_algorithms_is_refused() {
    let p384 = jsonwebtoken::DecodingKey::from_ec_pem(&fixture("p384-public.pem")).unwrap();
    let mut jwk = jsonwebtoken::jwk::Jwk::from_decoding_key(&p384, Some(Algorithm::ES256)).unwrap();
    jwk.common.key_id = Some("p384".to_owned());
    assert!(matches!(
        VerificationKey::from_jwk(&jwk),
        Err(KeyError::InvalidKey { .. })
    ));
}
