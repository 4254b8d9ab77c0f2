//! Cases: asymmetric signing keys other services verify with the JWKS alone, their
//! rotation without a refused token, and the start-up errors of a wrong key (issue 17).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::{Backend, Server, Target, get, post_json, register, tokens};

/// The two kinds of key the servers sign with.
#[derive(Debug, Clone, Copy)]
enum Curve {
    Ed25519,
    P256,
}

/// A key pair written by `openssl`, with the README's commands.
struct KeyPair {
    /// The PKCS#8 private key PEM (`openssl genpkey`).
    private: PathBuf,
    /// Its SPKI public key PEM (`openssl pkey -pubout`).
    public: PathBuf,
}

impl KeyPair {
    fn generate(dir: &Path, name: &str, curve: Curve) -> Self {
        let private = dir.join(format!("{name}.pem"));
        let public = dir.join(format!("{name}.pub.pem"));
        let algorithm: &[&str] = match curve {
            Curve::Ed25519 => &["-algorithm", "ed25519"],
            Curve::P256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        };
        openssl(&[&["genpkey"], algorithm, &["-out", path(&private)]].concat());
        openssl(&["pkey", "-in", path(&private), "-pubout", "-out", path(&public)]);
        Self { private, public }
    }

    /// The key id a server gives this key when `AUTH_SIGNING_KEY_ID` is unset: its RFC 7638
    /// thumbprint (the Python verifier below recomputes it on its own).
    fn kid(&self) -> String {
        let public = std::fs::read(&self.public).unwrap();
        auth_core::VerificationKey::from_public_pem(None, &public)
            .unwrap()
            .kid()
            .unwrap()
            .to_owned()
    }

    fn private_pem(&self) -> String {
        std::fs::read_to_string(&self.private).unwrap()
    }

    fn public_pem(&self) -> String {
        std::fs::read_to_string(&self.public).unwrap()
    }
}

fn openssl(args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed (the README's key commands)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The header of a compact JWT.
fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// The key ids `/.well-known/jwks.json` lists, sorted, after checking that every key is a
/// public signature key with its `kid`, `alg` and `use`, and no private or secret member.
async fn published_kids(server: &Server) -> Vec<String> {
    let jwks = get(server, "/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, 200, "{}", jwks.text);
    let mut kids: Vec<String> = jwks.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            assert_eq!(key["use"], "sig", "{key}");
            let expected_alg = match key["kty"].as_str() {
                Some("OKP") => "EdDSA",
                Some("EC") => "ES256",
                other => panic!("a key of type {other:?}: {key}"),
            };
            assert_eq!(key["alg"], expected_alg, "{key}");
            for private in ["d", "k", "p", "q"] {
                assert!(key.get(private).is_none(), "{private} published: {key}");
            }
            key["kid"].as_str().unwrap().to_owned()
        })
        .collect();
    kids.sort();
    kids
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn sorted(kids: &[&str]) -> Vec<String> {
    let mut kids: Vec<String> = kids.iter().map(|kid| (*kid).to_owned()).collect();
    kids.sort();
    kids
}

/// Case: an asymmetric signing key, from a file or from the variable itself, signs the
/// access tokens; the JWKS publishes its public half (and never `SECRET_KEY`); no part
/// of the private key reaches the log.
pub async fn asymmetric_signing_keys_are_published_and_never_logged(target: Target) {
    let keys = tempfile::tempdir().unwrap();
    let ed = KeyPair::generate(keys.path(), "ed", Curve::Ed25519);
    let ec = KeyPair::generate(keys.path(), "ec", Curve::P256);
    let ec_private = ec.private_pem();
    for (env, kid, alg, private) in [
        (
            vec![
                ("AUTH_SIGNING_KEY_FILE", path(&ed.private).to_owned()),
                // Beside an asymmetric key the secret only verifies, and is never published.
                ("SECRET_KEY", "a shared secret of at least thirty-two bytes".to_owned()),
                ("AUTH_ENV", "production".to_owned()),
                // Production requires the key of TOTP secrets at rest too; never logged.
                ("AUTH_ENCRYPTION_KEY", ENCRYPTION_KEY.to_owned()),
            ],
            ed.kid(),
            "EdDSA",
            ed.private_pem(),
        ),
        (
            vec![
                ("AUTH_SIGNING_KEY", ec_private.clone()),
                ("AUTH_SIGNING_KEY_ID", "2026-12-p256".to_owned()),
                ("SECRET_KEY", String::new()),
            ],
            "2026-12-p256".to_owned(),
            "ES256",
            ec_private.clone(),
        ),
    ] {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let Some(server) = Server::start(target, &env) else {
            return;
        };
        if target.backend == Backend::Sqlite {
            let development_key = server.dir.path().join("auth.db.secret-key");
            assert!(
                !development_key.exists(),
                "no development secret beside an asymmetric key"
            );
        }
        assert_eq!(published_kids(&server).await, std::slice::from_ref(&kid));
        let jwks = get(&server, "/.well-known/jwks.json", None).await.text;
        assert!(!jwks.contains("thirty-two"), "{jwks}");
        register(&server, "kai@example.com").await;
        let (access, _) = tokens(&server, "kai@example.com").await;
        let header = jwt_header(&access);
        assert_eq!(
            (header["alg"].as_str(), header["kid"].as_str()),
            (Some(alg), Some(kid.as_str()))
        );
        assert_eq!(get(&server, "/me", Some(&access)).await.status, 200);
        let log = server.log();
        assert!(log.contains(&kid), "the log names the signing key by its kid:\n{log}");
        for line in private.lines().filter(|line| !line.starts_with("-----")) {
            assert!(!log.contains(line), "a line of the private key is in the log");
        }
        assert!(!log.contains(&ENCRYPTION_KEY[..20]), "the encryption key is in the log");
    }
}

/// A base64 AES-256 key (`openssl rand -base64 32`).
const ENCRYPTION_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

/// The variables of each step of a rotation from `old` to `new`, as the README lists
/// them: (a) publish `new` as verification-only, (b) sign with `new` while `old` only
/// verifies, (c) drop `old`.
struct Rotation {
    publish: Vec<(String, String)>,
    switch: Vec<(String, String)>,
    drop_old: Vec<(String, String)>,
}

impl Rotation {
    fn new(dir: &Path, old: &KeyPair, new: &KeyPair) -> Self {
        let next = dir.join("next.pem");
        std::fs::write(&next, new.public_pem()).unwrap();
        // The same file may list the signing key's own public key: a server keeps it once.
        let both = dir.join("verification.pem");
        std::fs::write(&both, old.public_pem() + &new.public_pem()).unwrap();
        // Asymmetric keys only: PostgreSQL's test servers are otherwise given a SECRET_KEY.
        let step = |signing: &KeyPair, verification: Option<&Path>| {
            let mut env = vec![
                ("SECRET_KEY".to_owned(), String::new()),
                ("AUTH_SIGNING_KEY_FILE".to_owned(), path(&signing.private).to_owned()),
            ];
            if let Some(file) = verification {
                env.push(("AUTH_VERIFICATION_KEYS_FILE".to_owned(), path(file).to_owned()));
            }
            env
        };
        Self {
            publish: step(old, Some(&next)),
            switch: step(new, Some(&both)),
            drop_old: step(new, None),
        }
    }
}

/// The instances of one deployment, on one store. A step of a rotation redeploys them one
/// at a time, and every instance is checked after every restart, so the steps hold for a
/// rolling deployment of any size. While it runs, a client calls `/me` on every instance
/// that is up ([`Caller`]).
struct Deployment {
    instances: Vec<Server>,
    caller: Option<Caller>,
}

/// A client that keeps calling `/me` with `token` on every instance that is up, as behind
/// a load balancer that skips an instance while it restarts: every answer must be 200.
struct Caller {
    bases: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<(usize, Vec<String>)>,
}

impl Caller {
    fn start(bases: Vec<String>, token: String) -> Self {
        let bases = std::sync::Arc::new(std::sync::Mutex::new(bases));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = tokio::spawn({
            let (bases, stop) = (bases.clone(), stop.clone());
            async move {
                let (mut answered, mut refused) = (0, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let up = bases.lock().unwrap().clone();
                    for base in up {
                        let Ok(answer) = crate::client()
                            .get(format!("{base}/me"))
                            .bearer_auth(&token)
                            .send()
                            .await
                        else {
                            // Down, restarting: a load balancer sends the call elsewhere.
                            continue;
                        };
                        answered += 1;
                        if answer.status() != 200 {
                            refused.push(format!("{base}: {}", answer.status()));
                        }
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                (answered, refused)
            }
        });
        Self { bases, stop, task }
    }

    /// Stops, and asserts every answer was 200 and there were some.
    async fn finish(self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (answered, refused) = self.task.await.unwrap();
        assert!(answered > 0, "the caller was answered");
        assert!(refused.is_empty(), "calls refused during the rotation: {refused:?}");
    }
}

impl Deployment {
    /// `count` instances over one store.
    fn start_many(target: Target, env: &[(String, String)], count: usize) -> Option<Self> {
        let first = Server::start(target, &borrowed(env))?;
        let mut instances: Vec<Server> = (1..count).map(|_| first.another_instance(&[])).collect();
        instances.insert(0, first);
        Some(Self {
            instances,
            caller: None,
        })
    }

    /// Starts a client calling `/me` with `token` on every instance that is up.
    fn keep_calling(mut self, token: &str) -> Self {
        let bases = self.instances.iter().map(|instance| instance.url("")).collect();
        self.caller = Some(Caller::start(bases, token.to_owned()));
        self
    }

    /// Stops the client, asserting it lost no call.
    async fn stop_calling(mut self) -> Self {
        if let Some(caller) = self.caller.take() {
            caller.finish().await;
        }
        self
    }

    fn any(&self) -> &Server {
        &self.instances[0]
    }

    /// Restarts the instances one by one with `env`; after each restart, every instance
    /// must accept each of `accepted`.
    async fn redeploy(self, env: &[(String, String)], accepted: &[&str]) -> Self {
        let env = borrowed(env);
        let (mut instances, caller) = (self.instances, self.caller);
        for index in 0..instances.len() {
            let instance = instances.remove(index);
            let down = instance.url("");
            if let Some(caller) = &caller {
                caller.bases.lock().unwrap().retain(|base| *base != down);
            }
            let restarted = instance.restart_with(&env);
            if let Some(caller) = &caller {
                caller.bases.lock().unwrap().push(restarted.url(""));
            }
            instances.insert(index, restarted);
            let deployment = Self {
                instances,
                caller: None,
            };
            deployment.assert_accepted(accepted).await;
            instances = deployment.instances;
        }
        Self { instances, caller }
    }

    async fn assert_accepted(&self, tokens: &[&str]) {
        for instance in &self.instances {
            for token in tokens {
                let me = get(instance, "/me", Some(token)).await;
                assert_eq!(me.status, 200, "kid {}: {}", jwt_header(token)["kid"], me.text);
            }
        }
    }

    async fn assert_refused(&self, tokens: &[&str]) {
        for instance in &self.instances {
            for token in tokens {
                get(instance, "/me", Some(token))
                    .await
                    .assert_error(401, "invalid_token");
            }
        }
    }

    async fn assert_published(&self, kids: &[&str]) {
        for instance in &self.instances {
            assert_eq!(published_kids(instance).await, sorted(kids));
        }
    }
}

/// Case: a key rotation in the README's three steps, by restarting the server with each
/// step's variables: a token issued before each step is accepted after it, the JWKS lists
/// exactly the keys that verify, a refresh after the switch is signed by the new key, and
/// once the old key is dropped its tokens are refused.
pub async fn keys_rotate_without_refusing_a_token_before_it_expires(target: Target) {
    let keys = tempfile::tempdir().unwrap();
    let old = KeyPair::generate(keys.path(), "old", Curve::Ed25519);
    let new = KeyPair::generate(keys.path(), "new", Curve::P256);
    let (old_kid, new_kid) = (old.kid(), new.kid());
    let rotation = Rotation::new(keys.path(), &old, &new);
    let initial = vec![
        ("SECRET_KEY".to_owned(), String::new()),
        ("AUTH_SIGNING_KEY_FILE".to_owned(), path(&old.private).to_owned()),
    ];
    // Three instances over one PostgreSQL database, restarted one at a time; SQLite runs
    // one (it is the single-host store).
    let count = if target.backend == Backend::Postgres { 3 } else { 1 };
    let Some(deployment) = Deployment::start_many(target, &initial, count) else {
        return;
    };
    register(deployment.any(), "ria@example.com").await;
    let (before_publish, refresh) = tokens(deployment.any(), "ria@example.com").await;
    assert_eq!(jwt_header(&before_publish)["kid"], old_kid);
    deployment.assert_published(&[&old_kid]).await;
    // A client keeps calling /me through the publish and the switch.
    let deployment = deployment.keep_calling(&before_publish);

    // (a) The new key is published, verification-only; the old one still signs.
    let deployment = deployment.redeploy(&rotation.publish, &[&before_publish]).await;
    deployment.assert_published(&[&old_kid, &new_kid]).await;
    let (before_switch, _) = tokens(deployment.any(), "ria@example.com").await;
    assert_eq!(jwt_header(&before_switch)["kid"], old_kid);

    // (b) The new key signs; the old one only verifies.
    let deployment = deployment
        .redeploy(&rotation.switch, &[&before_publish, &before_switch])
        .await;
    deployment.assert_published(&[&old_kid, &new_kid]).await;
    let refreshed = post_json(
        deployment.any(),
        "/token/refresh",
        json!({"refresh_token": refresh}),
        None,
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let after_switch = refreshed.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt_header(&after_switch)["kid"], new_kid);
    assert_eq!(jwt_header(&after_switch)["alg"], "ES256");

    let deployment = deployment.stop_calling().await;

    // (c) After the access-token lifetime the old key goes: its tokens are refused, the
    // new key's are not.
    let deployment = deployment.redeploy(&rotation.drop_old, &[&after_switch]).await;
    deployment.assert_published(&[&new_kid]).await;
    deployment.assert_refused(&[&before_publish, &before_switch]).await;
    if target.backend == Backend::Postgres {
        let log = deployment.any().log();
        assert!(
            !log.contains("SECRET_KEY"),
            "PostgreSQL ran on the asymmetric keys alone:\n{log}"
        );
    }
}

/// Case: the way from the default HS256 `SECRET_KEY` to an asymmetric key: while the
/// secret is still set beside the new key it verifies the tokens it signed (and is never
/// published); once it is unset they are refused.
pub async fn an_hs256_deployment_moves_to_an_asymmetric_key_without_refusing_a_token(target: Target) {
    let keys = tempfile::tempdir().unwrap();
    let ed = KeyPair::generate(keys.path(), "ed", Curve::Ed25519);
    let secret = "the secret before the switch, thirty-two bytes or more";
    let Some(server) = Server::start(target, &[("SECRET_KEY", secret)]) else {
        return;
    };
    register(&server, "hal@example.com").await;
    let (hs256, _) = tokens(&server, "hal@example.com").await;
    assert_eq!(jwt_header(&hs256)["alg"], "HS256");
    assert!(published_kids(&server).await.is_empty());

    let server = server.restart_with(&[("SECRET_KEY", secret), ("AUTH_SIGNING_KEY_FILE", path(&ed.private))]);
    assert_eq!(get(&server, "/me", Some(&hs256)).await.status, 200);
    assert_eq!(published_kids(&server).await, [ed.kid()]);
    let (eddsa, _) = tokens(&server, "hal@example.com").await;
    assert_eq!(jwt_header(&eddsa)["alg"], "EdDSA");
    assert!(server.log().contains("SECRET_KEY still verifies"), "{}", server.log());

    let server = server.restart_with(&[("SECRET_KEY", ""), ("AUTH_SIGNING_KEY_FILE", path(&ed.private))]);
    get(&server, "/me", Some(&hs256))
        .await
        .assert_error(401, "invalid_token");
    assert_eq!(get(&server, "/me", Some(&eddsa)).await.status, 200);
}

/// Whether python3 has PyJWT with its crypto extra (`pip install 'pyjwt[crypto]'`). In CI
/// it must (a missing tool fails the case); elsewhere the case is skipped with a notice.
fn pyjwt_available() -> bool {
    let available = std::process::Command::new("python3")
        .args(["-c", "import cryptography; from jwt import PyJWKClient"])
        .status()
        .is_ok_and(|status| status.success());
    if !available {
        let in_ci = std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"));
        assert!(!in_ci, "PyJWT is required in CI (pip install 'pyjwt[crypto]')");
        eprintln!("notice: skipping the PyJWT check: pip install 'pyjwt[crypto]'");
    }
    available
}

/// PyJWT's `PyJWKClient`, given nothing but the JWKS URL, verifies each token (signature,
/// `exp`, `nbf`, `iss`); for each, `{"ok": true, "kid", "email"}` or `{"ok": false,
/// "error"}`. It also recomputes every published key's RFC 7638 thumbprint.
const PYJWT_VERIFIER: &str = r#"
import base64, hashlib, json, sys
import jwt
from jwt import PyJWKClient

jwks_url, issuer, tokens = sys.argv[1], sys.argv[2], sys.argv[3:]
client = PyJWKClient(jwks_url, cache_keys=False)

def thumbprint(key):
    required = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}[key["kty"]]
    members = json.dumps({name: key[name] for name in required}, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(members.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

published = client.fetch_data()["keys"]
results = {"thumbprints": [[key["kid"], thumbprint(key)] for key in published], "tokens": []}
for token in tokens:
    try:
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key.key, algorithms=["EdDSA", "ES256"], issuer=issuer,
                            options={"require": ["exp", "iat", "nbf", "iss", "sub"]})
        results["tokens"].append({"ok": True, "kid": key.key_id, "email": claims["email"]})
    except Exception as error:
        results["tokens"].append({"ok": False, "error": f"{type(error).__name__}: {error}"})
print(json.dumps(results))
"#;

/// Runs [`PYJWT_VERIFIER`] against `server`'s JWKS URL; one verdict a token.
fn pyjwt_verify(server: &Server, tokens: &[&str]) -> Vec<Value> {
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            PYJWT_VERIFIER,
            &server.url("/.well-known/jwks.json"),
            "https://auth.example.test",
        ])
        .args(tokens)
        // Straight to the loopback server, whatever proxy the environment names.
        .env("NO_PROXY", "*")
        .env("no_proxy", "*")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results: Value = serde_json::from_slice(&output.stdout).unwrap();
    for pair in results["thumbprints"].as_array().unwrap() {
        assert_eq!(
            pair[0], pair[1],
            "a kid is its key's RFC 7638 thumbprint, as Python computes it"
        );
    }
    results["tokens"].as_array().unwrap().clone()
}

/// Case: an independent verifier, PyJWT's `PyJWKClient` given the JWKS URL alone,
/// accepts our access tokens before, during and after a rotation, and refuses the old
/// key's tokens once the old key is dropped.
pub async fn pyjwt_verifies_our_tokens_with_the_jwks_url_alone_across_a_rotation(target: Target) {
    if !pyjwt_available() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let old = KeyPair::generate(keys.path(), "old", Curve::P256);
    let new = KeyPair::generate(keys.path(), "new", Curve::Ed25519);
    let rotation = Rotation::new(keys.path(), &old, &new);
    let server = Server::start(target, &[("AUTH_SIGNING_KEY_FILE", path(&old.private))]).unwrap();
    register(&server, "pia@example.com").await;
    let (old_token, _) = tokens(&server, "pia@example.com").await;
    let verdicts = pyjwt_verify(&server, &[&old_token]);
    assert_eq!(verdicts[0]["ok"], true, "{verdicts:?}");
    assert_eq!(verdicts[0]["kid"], old.kid());
    assert_eq!(verdicts[0]["email"], "pia@example.com");

    let restart = |server: Server, env: &[(String, String)]| server.restart_with(&borrowed(env));
    let server = restart(server, &rotation.publish);
    assert_eq!(pyjwt_verify(&server, &[&old_token])[0]["ok"], true);
    let server = restart(server, &rotation.switch);
    let (new_token, _) = tokens(&server, "pia@example.com").await;
    let verdicts = pyjwt_verify(&server, &[&old_token, &new_token]);
    assert_eq!(
        (verdicts[0]["ok"].clone(), verdicts[1]["ok"].clone()),
        (json!(true), json!(true)),
        "{verdicts:?}"
    );
    assert_eq!(verdicts[1]["kid"], new.kid());

    let server = restart(server, &rotation.drop_old);
    let verdicts = pyjwt_verify(&server, &[&old_token, &new_token]);
    assert_eq!(verdicts[0]["ok"], false, "{verdicts:?}");
    assert!(
        verdicts[0]["error"].as_str().unwrap().contains("PyJWKClientError"),
        "{verdicts:?}"
    );
    assert_eq!(verdicts[1]["ok"], true, "{verdicts:?}");
    // The new key's header and claims under another signature: the kid alone is not enough.
    let (unsigned, _) = new_token.rsplit_once('.').unwrap();
    let (_, other_signature) = old_token.rsplit_once('.').unwrap();
    let forged = format!("{unsigned}.{other_signature}");
    let verdict = &pyjwt_verify(&server, &[&forged])[0];
    assert!(
        verdict["error"].as_str().unwrap().contains("InvalidSignatureError"),
        "{verdict}"
    );
}

/// Runs the server binary with `env` (and a fresh SQLite file); it must refuse to start:
/// its standard error.
pub(crate) fn refused_start(target: Target, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(target.binary);
    command
        .env_clear()
        .env("BIND", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("auth.db").display()),
        )
        .current_dir(dir.path())
        .envs(env.iter().copied());
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{env:?} started:\n{stderr}");
    stderr
}

/// Case: each key mistake stops the start with a message naming its variable (and what is
/// wrong), never repeating the key.
pub async fn key_mistakes_stop_the_start_naming_the_variable(target: Target) {
    let keys = tempfile::tempdir().unwrap();
    let dir = keys.path();
    let ed = KeyPair::generate(dir, "ed", Curve::Ed25519);
    let ec = KeyPair::generate(dir, "ec", Curve::P256);
    let rsa = dir.join("rsa.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        path(&rsa),
    ]);
    let p384 = dir.join("p384.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-out",
        path(&p384),
    ]);
    let write = |name: &str, contents: &str| {
        let file = dir.join(name);
        std::fs::write(&file, contents).unwrap();
        file
    };
    let private_in_public = write("mixed.pem", &(ed.public_pem() + &ec.private_pem()));
    let twice = write("twice.pem", &(ed.public_pem() + &ed.public_pem()));
    let prose = write("prose.txt", "the new key, see the wiki\n");
    let secret_jwks = write(
        "secret.json",
        &json!({"keys": [{"kty": "oct", "alg": "HS256", "kid": "s", "k": "c2VjcmV0"}]}).to_string(),
    );
    let missing = dir.join("missing.pem");
    let ed_private = ed.private_pem();
    let public_key = path(&ed.public);
    // (the environment, what the error must say)
    type Mistake<'a> = (Vec<(&'a str, &'a str)>, &'a [&'a str]);
    let cases: Vec<Mistake> = vec![
        (
            vec![("AUTH_SIGNING_KEY_FILE", path(&missing))],
            &["AUTH_SIGNING_KEY_FILE", "cannot read"],
        ),
        (
            vec![("AUTH_SIGNING_KEY_FILE", public_key)],
            &["AUTH_SIGNING_KEY_FILE", "a public key"],
        ),
        (
            vec![("AUTH_SIGNING_KEY_FILE", path(&rsa))],
            &["AUTH_SIGNING_KEY_FILE", "RSA"],
        ),
        (
            vec![("AUTH_SIGNING_KEY_FILE", path(&p384))],
            &["AUTH_SIGNING_KEY_FILE", "P-256"],
        ),
        (
            vec![("AUTH_SIGNING_KEY", "not a key")],
            &["AUTH_SIGNING_KEY", "not a PEM"],
        ),
        (
            vec![
                ("AUTH_SIGNING_KEY_FILE", path(&ed.private)),
                ("AUTH_SIGNING_KEY", &ed_private),
            ],
            &["AUTH_SIGNING_KEY_FILE and AUTH_SIGNING_KEY are both set"],
        ),
        (vec![("AUTH_SIGNING_KEY_ID", "2026-12")], &["AUTH_SIGNING_KEY_ID"]),
        (
            vec![("AUTH_VERIFICATION_KEYS_FILE", path(&private_in_public))],
            &["AUTH_VERIFICATION_KEYS_FILE", "PEM block 2", "a private key"],
        ),
        (
            vec![("AUTH_VERIFICATION_KEYS_FILE", path(&twice))],
            &["AUTH_VERIFICATION_KEYS_FILE", "two keys have the key id"],
        ),
        (
            vec![("AUTH_VERIFICATION_KEYS_FILE", path(&prose))],
            &["AUTH_VERIFICATION_KEYS_FILE", "no PEM block"],
        ),
        (
            vec![("AUTH_VERIFICATION_KEYS_FILE", path(&secret_jwks))],
            &["AUTH_VERIFICATION_KEYS_FILE", "key 1 of the JWKS"],
        ),
        (
            vec![("AUTH_VERIFICATION_KEYS_FILE", path(&missing))],
            &["AUTH_VERIFICATION_KEYS_FILE", "cannot read"],
        ),
        (
            vec![("AUTH_ENV", "production")],
            &["SECRET_KEY", "AUTH_SIGNING_KEY_FILE"],
        ),
        (
            vec![
                ("SECRET_KEY", "too short"),
                ("AUTH_SIGNING_KEY_FILE", path(&ed.private)),
            ],
            &["SECRET_KEY", "at least 32"],
        ),
    ];
    for (env, says) in cases {
        let stderr = refused_start(target, &env);
        for said in says {
            assert!(stderr.contains(said), "{env:?}: {said:?} not in {stderr}");
        }
        for line in ed_private.lines().chain(ec.private_pem().lines()) {
            assert!(
                line.starts_with("-----") || !stderr.contains(line),
                "{env:?}: a key in {stderr}"
            );
        }
    }
}

/// Case: a key named by `AUTH_SIGNING_KEY_ID` retires through the JWKS document the
/// servers published while it signed, saved as `AUTH_VERIFICATION_KEYS_FILE`: a PEM file
/// has no room for a key id, a JWKS keeps it.
pub async fn a_named_key_retires_through_the_jwks_it_published(target: Target) {
    let keys = tempfile::tempdir().unwrap();
    let old = KeyPair::generate(keys.path(), "old", Curve::P256);
    let new = KeyPair::generate(keys.path(), "new", Curve::P256);
    let named = [
        ("AUTH_SIGNING_KEY_FILE", path(&old.private)),
        ("AUTH_SIGNING_KEY_ID", "2026-11"),
    ];
    let server = Server::start(target, &named).unwrap();
    register(&server, "nia@example.com").await;
    let (named_token, _) = tokens(&server, "nia@example.com").await;
    assert_eq!(jwt_header(&named_token)["kid"], "2026-11");
    let published = keys.path().join("published.json");
    std::fs::write(&published, get(&server, "/.well-known/jwks.json", None).await.text).unwrap();

    let server = server.restart_with(&[
        ("AUTH_SIGNING_KEY_FILE", path(&new.private)),
        ("AUTH_VERIFICATION_KEYS_FILE", path(&published)),
    ]);
    assert_eq!(published_kids(&server).await, sorted(&["2026-11", &new.kid()]));
    assert_eq!(get(&server, "/me", Some(&named_token)).await.status, 200);
    let (new_token, _) = tokens(&server, "nia@example.com").await;
    assert_eq!(jwt_header(&new_token)["kid"], new.kid());
}
