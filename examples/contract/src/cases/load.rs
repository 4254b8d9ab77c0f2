//! A steady load of real clients for the fault cases: each worker has an account and sends
//! its mix of requests in a loop, one at a time, recording every answer (or the lack of
//! one) with the phase of the test it was sent in.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::PASSWORD;

/// A request a worker sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `POST /register` of a new address.
    Register,
    /// `POST /login` of the worker's account.
    Login,
    /// `GET /me` with the worker's access token.
    Me,
    /// `POST /token/refresh` with the worker's refresh token (a rotation).
    Refresh,
}

/// One request and what came of it.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The worker that sent it.
    pub worker: usize,
    /// What was sent.
    pub request: Request,
    /// The test's phase when it was sent.
    pub phase: u8,
    /// The test's phase when its answer came (or did not).
    pub answered_in: u8,
    /// How long the answer took (or the failure to get one).
    pub took: Duration,
    /// The status, or `None` when no answer came (refused, reset, cut).
    pub status: Option<u16>,
    /// The error answer's code (its `error` field).
    pub code: Option<String>,
    /// `Retry-After`, if sent.
    pub retry_after: Option<String>,
    /// The transport error, when no answer came.
    pub error: Option<String>,
    /// `Register`: the address; `Refresh`: the token sent.
    pub sent: Option<String>,
    /// `Refresh`, answered 200: the new refresh token.
    pub received: Option<String>,
}

impl Outcome {
    /// Whether the answer was a success (2xx).
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|status| (200..300).contains(&status))
    }
}

/// Workers sending `mix` in a loop until [`Load::finish`].
pub struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicU8>,
    workers: Vec<JoinHandle<Vec<Outcome>>>,
}

/// A worker's account: its address and latest tokens.
pub struct Account {
    /// The address.
    pub email: String,
    /// The latest access token.
    pub access: String,
    /// The latest refresh token.
    pub refresh: String,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

impl Load {
    /// Starts `workers` workers against `base` (`http://127.0.0.1:<port>`), each with an
    /// account registered and signed in first (`tag` makes the addresses unique).
    pub async fn start(base: &str, tag: &str, workers: usize, mix: &'static [Request]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let phase = Arc::new(AtomicU8::new(0));
        let mut handles = Vec::new();
        for worker in 0..workers {
            let email = format!("{tag}-w{worker}@example.com");
            let account = sign_up(base, &email).await;
            let (base, stop, phase) = (base.to_owned(), stop.clone(), phase.clone());
            let tag = tag.to_owned();
            handles.push(tokio::spawn(async move {
                run(worker, base, tag, account, mix, stop, phase).await
            }));
        }
        Self {
            stop,
            phase,
            workers: handles,
        }
    }

    /// Marks the requests sent from now on with `phase`.
    pub fn set_phase(&self, phase: u8) {
        self.phase.store(phase, Ordering::SeqCst);
    }

    /// Stops the workers (each after its request in flight) and returns every outcome.
    pub async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        let mut outcomes = Vec::new();
        for worker in self.workers {
            outcomes.extend(worker.await.unwrap());
        }
        outcomes
    }
}

/// Registers and signs in `email`.
pub async fn sign_up(base: &str, email: &str) -> Account {
    let http = http();
    let registered = http
        .post(format!("{base}/register"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201, "{}", registered.text().await.unwrap());
    let signed_in: Value = http
        .post(format!("{base}/login"))
        .form(&[("username", email), ("password", PASSWORD)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Account {
        email: email.to_owned(),
        access: signed_in["access_token"].as_str().unwrap().to_owned(),
        refresh: signed_in["refresh_token"].as_str().unwrap().to_owned(),
    }
}

async fn run(
    worker: usize,
    base: String,
    tag: String,
    mut account: Account,
    mix: &'static [Request],
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicU8>,
) -> Vec<Outcome> {
    let http = http();
    let mut outcomes = Vec::new();
    let mut sequence = 0;
    'load: loop {
        for &request in mix {
            if stop.load(Ordering::SeqCst) {
                break 'load;
            }
            sequence += 1;
            let sent_in = phase.load(Ordering::SeqCst);
            let mut sent = None;
            let builder = match request {
                Request::Register => {
                    let email = format!("{tag}-w{worker}-{sequence}@example.com");
                    sent = Some(email.clone());
                    http.post(format!("{base}/register"))
                        .json(&json!({ "email": email, "password": PASSWORD }))
                }
                Request::Login => http
                    .post(format!("{base}/login"))
                    .form(&[("username", account.email.as_str()), ("password", PASSWORD)]),
                Request::Me => http.get(format!("{base}/me")).bearer_auth(&account.access),
                Request::Refresh => {
                    sent = Some(account.refresh.clone());
                    http.post(format!("{base}/token/refresh"))
                        .json(&json!({ "refresh_token": account.refresh }))
                }
            };
            let started = Instant::now();
            let answer = async {
                let response = builder.send().await?;
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                let body: Value = response.json().await.unwrap_or(Value::Null);
                Ok::<_, reqwest::Error>((status, retry_after, body))
            }
            .await;
            let took = started.elapsed();
            let mut outcome = Outcome {
                worker,
                request,
                phase: sent_in,
                answered_in: phase.load(Ordering::SeqCst),
                took,
                status: None,
                code: None,
                retry_after: None,
                error: None,
                sent,
                received: None,
            };
            match answer {
                Ok((status, retry_after, body)) => {
                    outcome.status = Some(status);
                    outcome.retry_after = retry_after;
                    outcome.code = body["error"].as_str().map(str::to_owned);
                    if status == 200 {
                        if let Some(access) = body["access_token"].as_str() {
                            account.access = access.to_owned();
                        }
                        if let Some(refresh) = body["refresh_token"].as_str() {
                            if request == Request::Refresh {
                                outcome.received = Some(refresh.to_owned());
                            }
                            account.refresh = refresh.to_owned();
                        }
                    }
                }
                Err(error) => {
                    outcome.error = Some(error.to_string());
                    // No answer: the server is gone or going. Don't spin on it.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            outcomes.push(outcome);
        }
    }
    outcomes
}
