use std::time::Duration;

use futures::StreamExt;
use ledger::LedgerSettings;
use payments::PaymentsSettings;
use platform::internal_token::{Caller, Service};
pub use platform::testing::{Link, closed_port};
use platform::testing::{ServiceDatabase, TestService, config, unique_suffix};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct TestPayments {
    service: TestService<PaymentsSettings>,
}

impl std::ops::Deref for TestPayments {
    type Target = TestService<PaymentsSettings>;
    fn deref(&self) -> &TestService<PaymentsSettings> {
        &self.service
    }
}

impl TestPayments {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts payments with the test configuration after `adjust`. Unless
    /// `adjust` says otherwise the ledger is a closed port, so that postings
    /// never reach a ledger some other process runs on the default port.
    pub async fn start_with(adjust: impl FnOnce(&mut PaymentsSettings)) -> Self {
        let ledger_url = format!("http://{}", closed_port().await);
        let adjust = |config: &mut PaymentsSettings| {
            config.ledger_url = ledger_url;
            adjust(config);
        };
        let service = TestService::start(ServiceDatabase::Payments, adjust, payments::build).await;
        Self { service }
    }

    /// Another process on the same database with `config`, as a replica or
    /// a restart would be.
    pub async fn instance(
        env: platform::testing::TestEnv,
        config: PaymentsSettings,
        db: std::sync::Arc<platform::testing::TestDatabase>,
    ) -> Self {
        let service = TestService::instance(env, config, db, payments::build).await;
        Self { service }
    }

    /// A second process on the same database, as a replica would be.
    pub async fn another_instance(&self) -> Self {
        Self::instance(self.env.clone(), self.config.clone(), self.db.clone()).await
    }

    pub fn request(&self, method: reqwest::Method, path: &str, owner: &str) -> reqwest::RequestBuilder {
        self.service.request(method, path, &user(owner))
    }

    pub async fn post_with_key(
        &self,
        owner: &str,
        path: &str,
        body: Value,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.request(reqwest::Method::POST, path, owner).json(&body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.expect("payments answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, owner: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.post_with_key(owner, path, body, None).await
    }

    pub async fn get(&self, owner: &str, path: &str) -> (StatusCode, Value) {
        self.service.get(path, &user(owner)).await
    }

    /// The gateway's gap filler, asked for `owner`'s events.
    pub async fn since(&self, owner: &str, query: &str) -> (StatusCode, Value) {
        self.service
            .get(
                &format!("/internal/events/since?owner_id={owner}{query}"),
                &Caller::Service(Service::Gateway),
            )
            .await
    }

    pub async fn create(&self, owner: &str, amount: i64, currency: &str) -> Value {
        let (status, body) = self
            .post(
                owner,
                "/v1/payments",
                json!({"amount": amount, "currency": currency}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn confirm(&self, owner: &str, id: &str, method: &str) -> Value {
        let (status, body) = self
            .post(
                owner,
                &format!("/v1/payments/{id}/confirm"),
                json!({"payment_method": method}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn refund(&self, owner: &str, id: &str, amount: Option<i64>) -> Value {
        let body = amount.map_or(json!({}), |amount| json!({"amount": amount}));
        let (status, body) = self
            .post(owner, &format!("/v1/payments/{id}/refunds"), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

/// A user calling with an API key, as on every `/v1` route.
pub fn user(id: &str) -> Caller {
    Caller::api_key(id, format!("key_{}", id.trim_start_matches("usr_")))
}

pub fn new_owner() -> String {
    format!("usr_{}", unique_suffix())
}

pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

pub fn id(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_owned()
}

/// The real ledger, in-process on its own database, listening on `listener`.
pub struct TestLedger(TestService<LedgerSettings>);

impl TestLedger {
    pub async fn start(listener: TcpListener) -> Self {
        Self(TestService::start_on(listener, ServiceDatabase::Ledger, |_| {}, ledger::build).await)
    }

    /// The trial balance as operators read it; anything else as payments.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let caller = if path == "/internal/trial-balance" {
            Caller::Service(Service::Ops)
        } else {
            Caller::Service(Service::Payments)
        };
        self.0.get(path, &caller).await
    }
}

/// Everything published on the test's events channel.
pub struct EventTap {
    pubsub: redis::aio::PubSub,
    channel: String,
}

impl EventTap {
    pub async fn open(settings: &PaymentsSettings) -> Self {
        let client = redis::Client::open(config::<PaymentsSettings>().redis.url).expect("redis url");
        let mut pubsub = client.get_async_pubsub().await.expect("subscribe to Redis");
        let channel = settings.redis.keys().events();
        pubsub.subscribe(&channel).await.expect("subscribe");
        Self { pubsub, channel }
    }

    /// Reads `n` messages.
    pub async fn take(&mut self, n: usize) -> Vec<Value> {
        let mut stream = self.pubsub.on_message();
        let mut out = Vec::new();
        while out.len() < n {
            let message = tokio::time::timeout(DEADLINE, stream.next())
                .await
                .expect("an event arrives in time")
                .expect("the subscription stays open");
            let payload: String = message.get_payload().expect("text");
            out.push(serde_json::from_str(&payload).expect("a published event"));
        }
        out
    }

    /// Reads everything published so far: a marker published now arrives
    /// after every message Redis accepted before it.
    pub async fn drain(&mut self) -> Vec<Value> {
        let marker = format!("marker-{}", unique_suffix());
        let client = redis::Client::open(config::<PaymentsSettings>().redis.url).expect("redis url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(&marker)
            .query_async(&mut conn)
            .await
            .expect("publish the marker");
        let mut stream = self.pubsub.on_message();
        let mut out = Vec::new();
        loop {
            let message = tokio::time::timeout(DEADLINE, stream.next())
                .await
                .expect("the marker arrives in time")
                .expect("the subscription stays open");
            let payload: String = message.get_payload().expect("text");
            if payload == marker {
                return out;
            }
            out.push(serde_json::from_str(&payload).expect("a published event"));
        }
    }
}
