//! The load: a few clients creating and confirming payments, refunding some,
//! for several owners, through both gateway replicas. Every request and what
//! came back is recorded with its time. A failed request is retried with the
//! same idempotency key, on the other replica, as a client behind a load
//! balancer would; so each flow ends once the platform is back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::check::{Acknowledged, Answer, ConfirmAnswer, Sent};

/// An account the load pays into, with the API key its clients use.
#[derive(Debug, Clone)]
pub struct Owner {
    pub index: usize,
    pub user_id: String,
    pub api_key: String,
}

/// Registers an account, logs in and creates an API key, through `gateway`.
pub async fn register(
    http: &reqwest::Client,
    gateway: &str,
    index: usize,
    run: &str,
) -> anyhow::Result<Owner> {
    let email = format!("chaos-{run}-{index}@example.com");
    let password = format!("chaos-password-{run}");
    let credentials = json!({"email": email, "password": password});
    let user: Value = expect(
        http.post(format!("{gateway}/auth/register")).json(&credentials),
        201,
        "registering",
    )
    .await?;
    let session: Value = expect(
        http.post(format!("{gateway}/auth/login")).json(&credentials),
        200,
        "logging in",
    )
    .await?;
    let token = session["access_token"]
        .as_str()
        .context("login gave no access token")?;
    let key: Value = expect(
        http.post(format!("{gateway}/auth/api-keys"))
            .bearer_auth(token)
            .json(&json!({"name": "chaos"})),
        201,
        "creating an API key",
    )
    .await?;
    Ok(Owner {
        index,
        user_id: user["id"].as_str().context("registration gave no id")?.to_owned(),
        api_key: key["key"].as_str().context("no key in the answer")?.to_owned(),
    })
}

async fn expect(request: reqwest::RequestBuilder, status: u16, what: &str) -> anyhow::Result<Value> {
    let response = request.send().await.with_context(|| what.to_owned())?;
    let got = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    if got != status {
        bail!("{what}: expected {status}, got {got}: {body}");
    }
    serde_json::from_str(&body).with_context(|| format!("{what}: not JSON: {body}"))
}

/// Everything the load saw in one phase.
#[derive(Default)]
pub struct Record {
    pub sent: Vec<Sent>,
    pub acknowledged: Acknowledged,
    /// Calls given up after retrying for the whole retry budget.
    pub abandoned: Vec<String>,
}

/// A 2xx answer's body, and whether it was replayed from a stored answer.
#[derive(Debug, Default)]
pub struct Reply {
    pub body: Value,
    pub replayed: bool,
}

/// Sends the load's requests and records each attempt.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    gateways: Arc<[String; 2]>,
    clock: Instant,
    /// How long one call is retried before it is given up.
    retry_for: Duration,
    record: Arc<Mutex<Record>>,
}

fn classify(error: &reqwest::Error) -> Answer {
    if error.is_timeout() {
        Answer::TimedOut
    } else if error.is_connect() {
        Answer::Refused
    } else {
        let mut why = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            why = cause.to_string();
            source = cause.source();
        }
        Answer::Broken(why)
    }
}

impl Api {
    pub fn new(gateways: [String; 2], clock: Instant, retry_for: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .context("building the load's HTTP client")?;
        Ok(Self {
            http,
            gateways: Arc::new(gateways),
            clock,
            retry_for,
            record: Arc::new(Mutex::new(Record::default())),
        })
    }

    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What was recorded since the last take, leaving an empty record.
    pub fn take(&self) -> Record {
        std::mem::take(&mut *self.record())
    }

    async fn send_once(
        &self,
        owner: &Owner,
        gateway: usize,
        path: &str,
        key: &str,
        body: &Value,
    ) -> (Answer, Reply) {
        let result = self
            .http
            .post(format!("{}{path}", self.gateways[gateway]))
            .bearer_auth(&owner.api_key)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await;
        let response = match result {
            Ok(response) => response,
            Err(e) => return (classify(&e), Reply::default()),
        };
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|value| value == "true");
        match response.bytes().await {
            Ok(bytes) => {
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let code = body["error"]["code"].as_str().map(str::to_owned);
                (Answer::Status(status, code), Reply { body, replayed })
            }
            Err(e) => (classify(&e), Reply::default()),
        }
    }

    /// POSTs until a 2xx, retrying what is retryable under one idempotency
    /// key, alternating replicas from `primary`. `None` when refused or
    /// given up; either is in the record.
    pub async fn call(
        &self,
        what: &'static str,
        owner: &Owner,
        primary: usize,
        path: &str,
        body: Value,
    ) -> Option<Reply> {
        let key = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let mut backoff = Duration::from_millis(50);
        for attempt in 0usize.. {
            let gateway = (primary + attempt) % 2;
            let sent_at = self.clock.elapsed();
            let (answer, reply) = self.send_once(owner, gateway, path, &key, &body).await;
            let success = answer.is_success();
            let retryable = answer.is_retryable();
            self.record().sent.push(Sent {
                started: sent_at,
                ended: self.clock.elapsed(),
                gateway,
                what,
                answer: answer.clone(),
            });
            if success {
                return Some(reply);
            }
            if !retryable {
                return None;
            }
            if started.elapsed() >= self.retry_for {
                self.record().abandoned.push(format!(
                    "{what} {path} for owner {} after {} attempts, last: {answer}",
                    owner.index,
                    attempt + 1
                ));
                return None;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
        None
    }

    /// Creates a payment: its id, once created.
    pub async fn create(
        &self,
        what: &'static str,
        owner: &Owner,
        primary: usize,
        amount: i64,
        currency: &str,
    ) -> Option<String> {
        let body = json!({"amount": amount, "currency": currency, "description": "chaos"});
        let payment = self.call(what, owner, primary, "/v1/payments", body).await?.body;
        let id = payment["id"].as_str()?.to_owned();
        self.record().acknowledged.created.push(id.clone());
        Some(id)
    }

    /// One payment's life: created, confirmed, and perhaps refunded.
    async fn flow(&self, owner: &Owner, primary: usize, rng: &mut StdRng) {
        let amount = rng.gen_range(100..=50_000);
        let currency = if rng.gen_bool(0.8) { "usd" } else { "eur" };
        let Some(id) = self.create("create", owner, primary, amount, currency).await else {
            return;
        };
        let method = if rng.gen_bool(0.1) {
            "pm_card_chargeDeclined"
        } else {
            "pm_card_visa"
        };
        let confirm = json!({"payment_method": method});
        let Some(Reply {
            body: payment,
            replayed,
        }) = self
            .call(
                "confirm",
                owner,
                primary,
                &format!("/v1/payments/{id}/confirm"),
                confirm,
            )
            .await
        else {
            return;
        };
        let status = payment["status"].as_str().unwrap_or_default().to_owned();
        self.record().acknowledged.confirms.push(ConfirmAnswer {
            id: id.clone(),
            status: status.clone(),
            fee: payment["fee"].as_i64(),
            replayed,
        });
        if status != "succeeded" {
            return;
        }
        self.record().acknowledged.succeeded.push(id.clone());
        if !rng.gen_bool(0.3) {
            return;
        }
        let refund = if rng.gen_bool(0.5) {
            json!({})
        } else {
            json!({"amount": rng.gen_range(1..=amount)})
        };
        let path = format!("/v1/payments/{id}/refunds");
        if let Some(refund) = self.call("refund", owner, primary, &path, refund).await
            && let Some(refund_id) = refund.body["id"].as_str()
        {
            self.record().acknowledged.refunds.push(refund_id.to_owned());
        }
    }
}

/// Clients running flows until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `clients` tasks, client `c` on replica `c % 2` first, owners taken in
    /// turn, `think` between flows.
    pub fn start(api: &Api, owners: &Arc<Vec<Owner>>, clients: usize, think: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|client| {
                let (api, owners, stop) = (api.clone(), owners.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut rng = StdRng::from_entropy();
                    let mut turn = client;
                    while !stop.load(Ordering::Relaxed) && !owners.is_empty() {
                        let owner = &owners[turn % owners.len()];
                        api.flow(owner, client % 2, &mut rng).await;
                        turn += 1;
                        if !think.is_zero() {
                            tokio::time::sleep(think).await;
                        }
                    }
                })
            })
            .collect();
        Self { stop, clients }
    }

    /// Lets every flow in progress finish, then returns.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            let _ = client.await;
        }
    }
}
