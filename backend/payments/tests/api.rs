//! Payments through its HTTP routes, on a fresh database and a private Redis
//! namespace, with the internal token the gateway would attach. Tests that
//! need the ledger start the real one in-process on its own database.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ledger::LedgerSettings;
use payments::PaymentsSettings;
use platform::internal_token::{Caller, HEADER, Service};
use platform::testing::{ServiceUnderTest, TestDatabase, config, eventually, unique_suffix};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const DEADLINE: Duration = Duration::from_secs(30);

struct TestPayments {
    service: ServiceUnderTest,
    config: PaymentsSettings,
    db: Arc<TestDatabase>,
}

impl std::ops::Deref for TestPayments {
    type Target = ServiceUnderTest;
    fn deref(&self) -> &ServiceUnderTest {
        &self.service
    }
}

impl TestPayments {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts payments with the test configuration after `adjust`. Unless
    /// `adjust` says otherwise the ledger is a closed port, so that postings
    /// never reach a ledger some other process runs on the default port.
    async fn start_with(adjust: impl FnOnce(&mut PaymentsSettings)) -> Self {
        let mut config: PaymentsSettings = config();
        let db = TestDatabase::reserve("payments");
        config.database.url = db.url.clone().into();
        config.ledger_url = format!("http://{}", closed_port().await);
        adjust(&mut config);
        Self::start_on(config, Arc::new(db)).await
    }

    async fn start_on(config: PaymentsSettings, db: Arc<TestDatabase>) -> Self {
        let service = ServiceUnderTest::spawn(&config.internal_token_secret, |listener, shutdown| {
            payments::build(&config, listener, shutdown)
        })
        .await;
        Self { service, config, db }
    }

    /// A second process on the same database, as a replica would be.
    async fn another_instance(&self) -> Self {
        Self::start_on(self.config.clone(), self.db.clone()).await
    }

    fn request(&self, method: reqwest::Method, path: &str, owner: &str) -> reqwest::RequestBuilder {
        self.service.request(method, path, &user(owner))
    }

    async fn post_with_key(
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

    async fn post(&self, owner: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.post_with_key(owner, path, body, None).await
    }

    async fn get(&self, owner: &str, path: &str) -> (StatusCode, Value) {
        let response = self
            .request(reqwest::Method::GET, path, owner)
            .send()
            .await
            .expect("payments answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The gateway's gap filler, asked for `owner`'s events.
    async fn since(&self, owner: &str, query: &str) -> (StatusCode, Value) {
        self.service
            .send(
                reqwest::Method::GET,
                &format!("/internal/events/since?owner_id={owner}{query}"),
                &Caller::Service(Service::Gateway),
                None,
            )
            .await
    }

    async fn create(&self, owner: &str, amount: i64, currency: &str) -> Value {
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

    async fn confirm(&self, owner: &str, id: &str, method: &str) -> Value {
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

    async fn refund(&self, owner: &str, id: &str, amount: Option<i64>) -> Value {
        let body = amount.map_or(json!({}), |amount| json!({"amount": amount}));
        let (status, body) = self
            .post(owner, &format!("/v1/payments/{id}/refunds"), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    async fn pool(&self) -> PgPool {
        self.db.pool().await
    }
}

/// A user calling with an API key, as on every `/v1` route.
fn user(id: &str) -> Caller {
    Caller::api_key(id, format!("key_{}", id.trim_start_matches("usr_")))
}

fn new_owner() -> String {
    format!("usr_{}", unique_suffix())
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn id(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_owned()
}

/// An address where nothing listens: connecting is refused at once.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address")
}

/// The real ledger, in-process on its own database.
struct TestLedger {
    service: ServiceUnderTest,
    _db: TestDatabase,
}

impl TestLedger {
    /// A ledger that shares `payments`' internal token secret.
    async fn start(payments: &PaymentsSettings, listener: TcpListener) -> Self {
        let mut config: LedgerSettings = config();
        config.internal_token_secret = payments.internal_token_secret.clone();
        let db = TestDatabase::reserve("ledger");
        config.database.url = db.url.clone().into();
        let service =
            ServiceUnderTest::spawn_on(&config.internal_token_secret, listener, |listener, shutdown| {
                ledger::build(&config, listener, shutdown)
            })
            .await;
        Self { service, _db: db }
    }

    /// The trial balance as operators read it; anything else as payments.
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let caller = if path == "/internal/trial-balance" {
            Caller::Service(Service::Ops)
        } else {
            Caller::Service(Service::Payments)
        };
        self.service.send(reqwest::Method::GET, path, &caller, None).await
    }
}

/// A TCP proxy in front of Redis that the test can cut and restore, since a
/// shared Redis cannot be stopped: cutting it closes every connection through
/// it and refuses new ones, which is what payments sees when Redis stops.
struct RedisProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl RedisProxy {
    fn new(addr: SocketAddr) -> Self {
        let url = config::<PaymentsSettings>().redis.url;
        let upstream = url
            .trim_start_matches("redis://")
            .split('/')
            .next()
            .and_then(|hostport| hostport.parse().ok())
            .expect("the test Redis URL is redis://host:port");
        Self {
            addr,
            upstream,
            task: None,
        }
    }

    async fn open(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind the proxy port");
        let upstream = self.upstream;
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }));
    }

    /// Stops listening and drops every open connection.
    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Everything published on the test's events channel.
struct EventTap {
    pubsub: redis::aio::PubSub,
    channel: String,
}

impl EventTap {
    async fn open(settings: &PaymentsSettings) -> Self {
        let client = redis::Client::open(config::<PaymentsSettings>().redis.url).expect("redis url");
        let mut pubsub = client.get_async_pubsub().await.expect("subscribe to Redis");
        let channel = settings.redis.keys().events();
        pubsub.subscribe(&channel).await.expect("subscribe");
        Self { pubsub, channel }
    }

    /// Reads `n` messages.
    async fn take(&mut self, n: usize) -> Vec<Value> {
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
    async fn drain(&mut self) -> Vec<Value> {
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

async fn unpublished(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
        .expect("count")
}

async fn wait_until_published(pool: &PgPool) {
    eventually(DEADLINE, || async {
        (unpublished(pool).await == 0).then_some(())
    })
    .await
    .expect("every event is published");
}

/// Asserts that `messages` hold every event of the database exactly once,
/// each owner's in sequence order, and none marked as a resend.
async fn assert_published_exactly_once(pool: &PgPool, messages: &[Value]) {
    let expected: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT id, owner_id, sequence FROM events ORDER BY owner_id, sequence")
            .fetch_all(pool)
            .await
            .expect("events");
    let mut seen = HashSet::new();
    let mut last: HashMap<String, i64> = HashMap::new();
    for message in messages {
        let id = message["event"]["id"].as_str().expect("event id").to_owned();
        assert!(seen.insert(id.clone()), "{id} was published twice");
        assert_eq!(message["resend"], false);
        let owner = message["owner_id"].as_str().expect("owner").to_owned();
        let sequence = message["event"]["sequence"].as_i64().expect("sequence");
        let previous = last.insert(owner.clone(), sequence).unwrap_or(0);
        assert_eq!(sequence, previous + 1, "{owner}'s events arrived out of order");
    }
    let expected_ids: HashSet<String> = expected.iter().map(|(id, _, _)| id.clone()).collect();
    assert_eq!(seen, expected_ids, "every event is published");
}

#[tokio::test]
async fn creates_retrieves_and_lists_payments() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let (status, created) = payments
        .post(
            &owner,
            "/v1/payments",
            json!({
                "amount": 2500,
                "currency": "EUR",
                "description": "  Two coffees ",
                "metadata": {"order": "42"},
                "customer_email": "Ada@Example.com",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(id(&created).starts_with("pay_"));
    assert_eq!(created["object"], "payment");
    assert_eq!(created["amount"], 2500);
    assert_eq!(created["amount_refunded"], 0);
    assert_eq!(created["currency"], "eur");
    assert_eq!(created["status"], "requires_confirmation");
    assert_eq!(created["description"], "Two coffees");
    assert_eq!(created["metadata"], json!({"order": "42"}));
    assert_eq!(created["customer_email"], "ada@example.com");
    assert_eq!(created["payment_method"], Value::Null);
    assert_eq!(created["failure_code"], Value::Null);
    assert_eq!(created["ledger_transaction_id"], Value::Null);
    assert!(created["created_at"].is_string());

    let (status, fetched) = payments
        .get(&owner, &format!("/v1/payments/{}", id(&created)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);

    // Another owner learns nothing, not even that the id exists.
    let stranger = new_owner();
    let (status, body) = payments
        .get(&stranger, &format!("/v1/payments/{}", id(&created)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "resource_missing");
    let (_, list) = payments.get(&stranger, "/v1/payments").await;
    assert_eq!(list["data"], json!([]));

    let mut ids = vec![id(&created)];
    for amount in [100, 200, 300] {
        ids.push(id(&payments.create(&owner, amount, "usd").await));
    }
    payments.confirm(&owner, &ids[1], "pm_card_visa").await;
    ids.reverse();

    let (status, page) = payments.get(&owner, "/v1/payments?limit=3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["object"], "list");
    assert_eq!(page["has_more"], true);
    let first: Vec<String> = page["data"].as_array().expect("data").iter().map(id).collect();
    assert_eq!(first, ids[..3]);
    let (_, page) = payments
        .get(&owner, &format!("/v1/payments?limit=3&starting_after={}", ids[2]))
        .await;
    assert_eq!(page["has_more"], false);
    let rest: Vec<String> = page["data"].as_array().expect("data").iter().map(id).collect();
    assert_eq!(rest, ids[3..]);

    let (_, succeeded) = payments.get(&owner, "/v1/payments?status=succeeded").await;
    let succeeded: Vec<String> = succeeded["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(id)
        .collect();
    assert_eq!(succeeded, vec![ids[2].clone()]);

    for (query, expected) in [
        ("?status=paid", "invalid_status"),
        ("?limit=0", "invalid_limit"),
        ("?limit=101", "invalid_limit"),
        ("?limit=ten", "invalid_query"),
    ] {
        let (status, body) = payments.get(&owner, &format!("/v1/payments{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(code(&body), expected, "{query}");
    }
}

#[tokio::test]
async fn refuses_bad_payments_with_the_reason() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let many_keys: serde_json::Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (
            json!({"amount": 0, "currency": "usd"}),
            "invalid_amount",
            Some("amount"),
        ),
        (
            json!({"amount": -5, "currency": "usd"}),
            "invalid_amount",
            Some("amount"),
        ),
        (
            json!({"amount": 1_000_000_000_000i64, "currency": "usd"}),
            "invalid_amount",
            Some("amount"),
        ),
        (json!({"amount": 10.5, "currency": "usd"}), "invalid_body", None),
        (json!({"amount": "10", "currency": "usd"}), "invalid_body", None),
        (json!({"currency": "usd"}), "invalid_body", None),
        (
            json!({"amount": 100, "currency": "xyz"}),
            "invalid_currency",
            Some("currency"),
        ),
        (
            json!({"amount": 100, "currency": "usd", "amout": 1}),
            "invalid_body",
            None,
        ),
        (
            json!({"amount": 100, "currency": "usd", "description": "d".repeat(1001)}),
            "invalid_description",
            Some("description"),
        ),
        (
            json!({"amount": 100, "currency": "usd", "metadata": many_keys}),
            "invalid_metadata",
            Some("metadata"),
        ),
        (
            json!({"amount": 100, "currency": "usd", "metadata": {"k": "v".repeat(501)}}),
            "invalid_metadata",
            Some("metadata"),
        ),
        (
            json!({"amount": 100, "currency": "usd", "metadata": {"k": 1}}),
            "invalid_body",
            None,
        ),
        (
            json!({"amount": 100, "currency": "usd", "customer_email": "nobody"}),
            "invalid_email",
            Some("customer_email"),
        ),
    ];
    for (body, expected, param) in cases {
        let (status, answer) = payments.post(&owner, "/v1/payments", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(code(&answer), expected, "{body}");
        assert_eq!(answer["error"]["type"], "invalid_request_error");
        assert_eq!(answer["error"]["param"].as_str(), param, "{body}");
    }

    let response = payments
        .request(reqwest::Method::POST, "/v1/payments", &owner)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(code(&body), "invalid_json");

    let response = payments
        .request(reqwest::Method::POST, "/v1/payments", &owner)
        .body(r#"{"amount": 100, "currency": "usd"}"#)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Nothing was created by any of it.
    let (_, list) = payments.get(&owner, "/v1/payments").await;
    assert_eq!(list["data"], json!([]));

    // jpy has no minor unit: 500 means 500 yen.
    let yen = payments.create(&owner, 500, "JPY").await;
    assert_eq!(
        (yen["amount"].as_i64(), yen["currency"].as_str()),
        (Some(500), Some("jpy"))
    );
}

#[tokio::test]
async fn answers_nobody_without_a_valid_internal_token() {
    let payments = TestPayments::start().await;
    let response = payments
        .http
        .post(format!("{}/v1/payments", payments.base))
        .json(&json!({"amount": 100, "currency": "usd"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = payments
        .http
        .get(format!("{}/v1/events", payments.base))
        .header(HEADER, payments.tokens.mint(&Caller::Anonymous))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(code(&body), "authentication_required");

    let response = payments
        .http
        .get(format!("{}/readyz", payments.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn walks_the_state_machine_and_refuses_every_illegal_transition() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let path = |id: &str, action: &str| format!("/v1/payments/{id}/{action}");

    // requires_confirmation -> succeeded, then nothing but refunds.
    let paid = id(&payments.create(&owner, 1000, "usd").await);
    let succeeded = payments.confirm(&owner, &paid, "pm_card_visa").await;
    assert_eq!(succeeded["status"], "succeeded");
    assert_eq!(succeeded["payment_method"], "pm_card_visa");
    assert_eq!(succeeded["failure_code"], Value::Null);
    let (status, body) = payments
        .post(
            &owner,
            &path(&paid, "confirm"),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "payment_not_confirmable");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("succeeded")
    );
    let (status, body) = payments.post(&owner, &path(&paid, "cancel"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "payment_not_cancelable");

    // Refunds: partial, partial, never beyond the amount, then the rest.
    let first = payments.refund(&owner, &paid, Some(300)).await;
    assert!(id(&first).starts_with("re_"));
    assert_eq!(first["object"], "refund");
    assert_eq!(first["payment"], paid.as_str());
    assert_eq!(first["amount"], 300);
    assert_eq!(first["currency"], "usd");
    assert_eq!(first["status"], "succeeded");
    payments.refund(&owner, &paid, Some(200)).await;
    let (status, body) = payments
        .post(&owner, &path(&paid, "refunds"), json!({"amount": 501}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "refund_exceeds_payment");
    for bad in [json!({"amount": 0}), json!({"amount": -1})] {
        let (status, body) = payments.post(&owner, &path(&paid, "refunds"), bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(code(&body), "invalid_amount");
    }
    let rest = payments.refund(&owner, &paid, None).await;
    assert_eq!(rest["amount"], 500);
    let (status, body) = payments.post(&owner, &path(&paid, "refunds"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "refund_exceeds_payment");
    let (_, fetched) = payments.get(&owner, &format!("/v1/payments/{paid}")).await;
    assert_eq!(fetched["amount_refunded"], 1000);
    assert_eq!(fetched["status"], "succeeded");
    let (_, refunds) = payments.get(&owner, &path(&paid, "refunds")).await;
    let amounts: Vec<i64> = refunds["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|r| r["amount"].as_i64().expect("amount"))
        .collect();
    assert_eq!(amounts, vec![500, 200, 300]);

    // Declines fail the payment with their code; failed is final.
    for (method, failure) in [
        ("pm_card_chargeDeclined", "card_declined"),
        ("pm_card_insufficientFunds", "insufficient_funds"),
    ] {
        let declined = id(&payments.create(&owner, 700, "usd").await);
        let failed = payments.confirm(&owner, &declined, method).await;
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["failure_code"], failure);
        assert!(failed["failure_message"].is_string());
        for (action, body, expected) in [
            (
                "confirm",
                json!({"payment_method": "pm_card_visa"}),
                "payment_not_confirmable",
            ),
            ("cancel", json!({}), "payment_not_cancelable"),
            ("refunds", json!({}), "payment_not_refundable"),
        ] {
            let (status, answer) = payments.post(&owner, &path(&declined, action), body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{action} after failure");
            assert_eq!(code(&answer), expected);
        }
    }

    // requires_confirmation -> canceled; canceled is final.
    let canceled = id(&payments.create(&owner, 900, "usd").await);
    let (status, body) = payments
        .post(&owner, &path(&canceled, "refunds"), json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "payment_not_refundable");
    let (status, body) = payments.post(&owner, &path(&canceled, "cancel"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "canceled");
    for (action, body, expected) in [
        (
            "confirm",
            json!({"payment_method": "pm_card_visa"}),
            "payment_not_confirmable",
        ),
        ("cancel", json!({}), "payment_not_cancelable"),
        ("refunds", json!({"amount": 1}), "payment_not_refundable"),
    ] {
        let (status, answer) = payments.post(&owner, &path(&canceled, action), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{action} after cancel");
        assert_eq!(code(&answer), expected);
    }

    // Bad inputs to confirm and cancel.
    let fresh = id(&payments.create(&owner, 100, "usd").await);
    for (body, expected) in [
        (
            json!({"payment_method": "pm_card_unknown"}),
            "payment_method_unknown",
        ),
        (json!({}), "invalid_body"),
    ] {
        let (status, answer) = payments.post(&owner, &path(&fresh, "confirm"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(code(&answer), expected);
    }
    let (status, answer) = payments
        .post(&owner, &path(&fresh, "cancel"), json!({"reason": "x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&answer), "invalid_body");
    let (_, still) = payments.get(&owner, &format!("/v1/payments/{fresh}")).await;
    assert_eq!(still["status"], "requires_confirmation");

    // Unknown payments, and other owners' payments, are simply missing.
    let stranger = new_owner();
    for (who, target) in [(&owner, "pay_0123456789abcdef"), (&stranger, fresh.as_str())] {
        for (action, body) in [
            ("confirm", json!({"payment_method": "pm_card_visa"})),
            ("cancel", json!({})),
            ("refunds", json!({})),
        ] {
            let (status, answer) = payments.post(who, &path(target, action), body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{action} {target}");
            assert_eq!(code(&answer), "resource_missing");
        }
    }
    let (status, _) = payments.get(&stranger, &path(&fresh, "refunds")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Every state change, and only those, left an event.
    let (_, events) = payments.get(&owner, "/v1/events?limit=100").await;
    let mut kinds: Vec<&str> = events["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    kinds.reverse();
    assert_eq!(
        kinds,
        vec![
            "payment.created",
            "payment.succeeded",
            "payment.refunded",
            "payment.refunded",
            "payment.refunded",
            "payment.created",
            "payment.failed",
            "payment.created",
            "payment.failed",
            "payment.created",
            "payment.canceled",
            "payment.created",
        ]
    );
}

#[tokio::test]
async fn a_hundred_concurrent_creates_with_one_key_make_one_payment() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let body = json!({"amount": 4200, "currency": "usd", "metadata": {"cart": "7"}});
    let attempts = (0..100).map(|_| {
        payments
            .request(reqwest::Method::POST, "/v1/payments", &owner)
            .header("idempotency-key", "order-7")
            .json(&body)
            .send()
    });
    let responses = futures::future::join_all(attempts).await;
    let mut created = Vec::new();
    let mut in_progress = 0;
    for response in responses {
        let response = response.expect("answers");
        match response.status() {
            StatusCode::CREATED => created.push(response.bytes().await.expect("body")),
            StatusCode::CONFLICT => {
                let body: Value = response.json().await.expect("json");
                assert_eq!(code(&body), "idempotency_key_in_use");
                assert_eq!(body["error"]["type"], "idempotency_error");
                in_progress += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(!created.is_empty());
    assert!(
        created.iter().all(|b| b == &created[0]),
        "every success is the same answer"
    );
    assert_eq!(created.len() + in_progress, 100);
    let (_, list) = payments.get(&owner, "/v1/payments?limit=100").await;
    assert_eq!(list["data"].as_array().expect("data").len(), 1);
    let (_, events) = payments.get(&owner, "/v1/events").await;
    assert_eq!(events["data"].as_array().expect("data").len(), 1);

    // Once the first has finished, a retry is a replay, byte for byte.
    let response = payments
        .request(reqwest::Method::POST, "/v1/payments", &owner)
        .header("idempotency-key", "order-7")
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    assert_eq!(response.bytes().await.expect("body"), created[0]);
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_reuse_and_stay_with_their_owner() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let create = json!({"amount": 1500, "currency": "gbp"});
    let (status, first) = payments
        .post_with_key(&owner, "/v1/payments", create.clone(), Some("k-1"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // The same request in another layout is the same request.
    let response = payments
        .request(reqwest::Method::POST, "/v1/payments", &owner)
        .header("idempotency-key", "k-1")
        .header("content-type", "application/json")
        .body(r#"{ "currency":"gbp",  "amount":1500 }"#)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.json::<Value>().await.expect("json"), first);

    // Another body, or another route, under the same key is refused.
    let (status, body) = payments
        .post_with_key(
            &owner,
            "/v1/payments",
            json!({"amount": 1501, "currency": "gbp"}),
            Some("k-1"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "idempotency_key_reused");
    let paid = id(&first);
    let (status, body) = payments
        .post_with_key(
            &owner,
            &format!("/v1/payments/{paid}/confirm"),
            json!({"payment_method": "pm_card_visa"}),
            Some("k-1"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&body), "idempotency_key_reused");

    // A confirm retried after success replays the success; nothing runs twice.
    let confirm = format!("/v1/payments/{paid}/confirm");
    let visa = json!({"payment_method": "pm_card_visa"});
    let (status, confirmed) = payments
        .post_with_key(&owner, &confirm, visa.clone(), Some("k-2"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, again) = payments
        .post_with_key(&owner, &confirm, visa.clone(), Some("k-2"))
        .await;
    assert_eq!((status, &again), (StatusCode::OK, &confirmed));
    let refund = format!("/v1/payments/{paid}/refunds");
    let (status, refunded) = payments
        .post_with_key(&owner, &refund, json!({"amount": 100}), Some("k-3"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, again) = payments
        .post_with_key(&owner, &refund, json!({"amount": 100}), Some("k-3"))
        .await;
    assert_eq!((status, &again), (StatusCode::CREATED, &refunded));
    let (_, fetched) = payments.get(&owner, &format!("/v1/payments/{paid}")).await;
    assert_eq!(fetched["amount_refunded"], 100);

    // A refusal that came from running the request is replayed too.
    let (status, refused) = payments
        .post_with_key(&owner, &confirm, visa.clone(), Some("k-4"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&refused), "payment_not_confirmable");
    let (status, again) = payments
        .post_with_key(&owner, &confirm, visa.clone(), Some("k-4"))
        .await;
    assert_eq!((status, &again), (StatusCode::BAD_REQUEST, &refused));

    // A request refused for its shape is not kept: the key stays free.
    let (status, _) = payments
        .post_with_key(
            &owner,
            "/v1/payments",
            json!({"amount": 0, "currency": "gbp"}),
            Some("k-5"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = payments
        .post_with_key(&owner, "/v1/payments", create.clone(), Some("k-5"))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Keys belong to their owner: another owner's k-1 is a new request.
    let stranger = new_owner();
    let (status, theirs) = payments
        .post_with_key(&stranger, "/v1/payments", create.clone(), Some("k-1"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(id(&theirs), paid);

    // Without a key a POST still runs, but every time.
    let a = payments.create(&owner, 10, "usd").await;
    let b = payments.create(&owner, 10, "usd").await;
    assert_ne!(id(&a), id(&b));

    // Key length: 255 is fine, 256 is refused before anything runs.
    let (status, _) = payments
        .post_with_key(&owner, "/v1/payments", create.clone(), Some(&"k".repeat(255)))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = payments
        .post_with_key(&owner, "/v1/payments", create.clone(), Some(&"k".repeat(256)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "idempotency_key_invalid");
    assert_eq!(body["error"]["param"], "Idempotency-Key");
    let (_, list) = payments.get(&owner, "/v1/payments?limit=100").await;
    assert_eq!(list["data"].as_array().expect("data").len(), 5);
}

#[tokio::test]
async fn a_server_error_is_not_kept_as_the_answer() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let pool = payments.pool().await;
    // Break the event outbox so that creating fails after the payment row
    // was written: the transaction, key included, must roll back.
    sqlx::query("ALTER TABLE event_sequences RENAME TO event_sequences_away")
        .execute(&pool)
        .await
        .expect("rename");
    let body = json!({"amount": 800, "currency": "usd"});
    let (status, answer) = payments
        .post_with_key(&owner, "/v1/payments", body.clone(), Some("retry-me"))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(code(&answer), "internal_error");
    assert!(
        !answer.to_string().contains("event_sequences"),
        "no cause leaks: {answer}"
    );
    sqlx::query("ALTER TABLE event_sequences_away RENAME TO event_sequences")
        .execute(&pool)
        .await
        .expect("rename back");

    let (status, created) = payments
        .post_with_key(&owner, "/v1/payments", body.clone(), Some("retry-me"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (_, list) = payments.get(&owner, "/v1/payments").await;
    assert_eq!(list["data"], json!([created]));
}

/// A TCP link to PostgreSQL that can be cut (every connection closed, new
/// ones refused) and restored on the same port, as a database restart
/// looks from the service.
struct DatabaseLink {
    addr: SocketAddr,
    upstream: SocketAddr,
    relay: Option<JoinHandle<()>>,
}

impl DatabaseLink {
    async fn start() -> Self {
        let admin = sqlx::postgres::PgConnectOptions::from_str(&platform::testing::admin_url())
            .expect("TEST_DATABASE_URL is a valid URL");
        let upstream = tokio::net::lookup_host((admin.get_host(), admin.get_port()))
            .await
            .expect("the database's address")
            .next()
            .expect("an address");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        Self {
            addr,
            upstream,
            relay: Some(tokio::spawn(relay(listener, upstream))),
        }
    }

    /// `url` with its host and port replaced by this link's.
    fn url(&self, url: &str) -> String {
        use sqlx::ConnectOptions;
        sqlx::postgres::PgConnectOptions::from_str(url)
            .expect("a database URL")
            .host("127.0.0.1")
            .port(self.addr.port())
            .to_url_lossy()
            .to_string()
    }

    fn cut(&mut self) {
        // Aborting the relay drops its listener and every connection it holds.
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("the same port again");
        self.relay = Some(tokio::spawn(relay(listener, self.upstream)));
    }
}

async fn relay(listener: TcpListener, upstream: SocketAddr) {
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((mut client, _)) = listener.accept().await {
        connections.spawn(async move {
            if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}

#[tokio::test]
async fn a_database_outage_is_503_and_the_same_key_succeeds_afterwards() {
    let mut link = DatabaseLink::start().await;
    let payments = TestPayments::start_with(|config| {
        config.database.url = link.url(config.database.url.expose_secret()).into();
    })
    .await;
    let owner = new_owner();
    payments.create(&owner, 100, "usd").await;

    link.cut();
    let body = json!({"amount": 800, "currency": "usd"});
    let (status, answer) = payments
        .post_with_key(&owner, "/v1/payments", body.clone(), Some("through-the-outage"))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(code(&answer), "database_unavailable");

    link.restore().await;
    let created = eventually(DEADLINE, || {
        let body = body.clone();
        let payments = &payments;
        let owner = &owner;
        async move {
            let (status, created) = payments
                .post_with_key(owner, "/v1/payments", body, Some("through-the-outage"))
                .await;
            (status == StatusCode::CREATED).then_some(created)
        }
    })
    .await
    .expect("created once the database is back");
    assert_eq!(created["amount"], 800);
}

#[tokio::test]
async fn expired_idempotency_keys_are_purged() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let body = json!({"amount": 100, "currency": "usd"});
    let (_, old) = payments
        .post_with_key(&owner, "/v1/payments", body.clone(), Some("old"))
        .await;
    let (_, recent) = payments
        .post_with_key(&owner, "/v1/payments", body.clone(), Some("recent"))
        .await;
    let pool = payments.pool().await;
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'")
        .execute(&pool)
        .await
        .expect("age the key");

    // The purge runs when a process starts, then periodically.
    let _second = payments.another_instance().await;
    eventually(DEADLINE, || async {
        let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency_keys ORDER BY key")
            .fetch_all(&pool)
            .await
            .expect("keys");
        (keys == ["recent"]).then_some(())
    })
    .await
    .expect("the expired key is purged, the recent one kept");

    let (status, again) = payments
        .post_with_key(&owner, "/v1/payments", body.clone(), Some("old"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(id(&again), id(&old), "an expired key no longer replays");
    let (_, replay) = payments
        .post_with_key(&owner, "/v1/payments", body.clone(), Some("recent"))
        .await;
    assert_eq!(replay, recent);
}

#[tokio::test]
async fn a_payment_run_emits_exactly_the_expected_events_in_order() {
    let payments = TestPayments::start().await;
    let mut tap = EventTap::open(&payments.config).await;
    let owner = new_owner();
    let paid = id(&payments.create(&owner, 1000, "usd").await);
    payments.confirm(&owner, &paid, "pm_card_visa").await;
    payments.refund(&owner, &paid, Some(300)).await;
    payments.refund(&owner, &paid, None).await;

    let (status, list) = payments.get(&owner, "/v1/events?limit=10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["has_more"], false);
    let mut events = list["data"].as_array().expect("data").clone();
    events.reverse();
    let summary: Vec<(i64, &str, &str, i64)> = events
        .iter()
        .map(|e| {
            (
                e["sequence"].as_i64().expect("sequence"),
                e["type"].as_str().expect("type"),
                e["data"]["object"]["status"].as_str().expect("status"),
                e["data"]["object"]["amount_refunded"].as_i64().expect("refunded"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "payment.created", "requires_confirmation", 0),
            (2, "payment.succeeded", "succeeded", 0),
            (3, "payment.refunded", "succeeded", 300),
            (4, "payment.refunded", "succeeded", 1000),
        ]
    );
    for event in &events {
        assert!(id(event).starts_with("evt_"));
        assert_eq!(event["object"], "event");
        assert_eq!(event["data"]["object"]["id"], paid.as_str());
        assert_eq!(event["data"]["object"]["object"], "payment");
        assert!(event["created_at"].is_string());
    }

    // Redis carries the same events, in order, with their owner.
    let published = tap.take(4).await;
    for (message, event) in published.iter().zip(&events) {
        assert_eq!(message["owner_id"], owner.as_str());
        assert_eq!(message["resend"], false);
        assert_eq!(&message["event"], event);
    }

    // Retrieve, filter and page.
    let (status, one) = payments
        .get(&owner, &format!("/v1/events/{}", id(&events[1])))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, events[1]);
    let (_, refunded) = payments.get(&owner, "/v1/events?type=payment.refunded").await;
    assert_eq!(refunded["data"], json!([events[3], events[2]]));
    let (_, page) = payments.get(&owner, "/v1/events?limit=2").await;
    assert_eq!(
        (page["has_more"].as_bool(), page["data"].as_array().map(Vec::len)),
        (Some(true), Some(2))
    );
    let (_, page) = payments
        .get(
            &owner,
            &format!("/v1/events?limit=2&starting_after={}", id(&events[2])),
        )
        .await;
    assert_eq!(page["data"], json!([events[1], events[0]]));
    assert_eq!(page["has_more"], false);
    for (query, expected) in [
        ("?type=payment.paid", "invalid_type"),
        ("?starting_after=evt_nope", "invalid_cursor"),
        ("?limit=1000", "invalid_limit"),
    ] {
        let (status, body) = payments.get(&owner, &format!("/v1/events{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(code(&body), expected, "{query}");
    }
    let stranger = new_owner();
    let (status, body) = payments
        .get(&stranger, &format!("/v1/events/{}", id(&events[0])))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "resource_missing");

    // The gateway's gap filler: ascending, after an id or a sequence.
    let (status, since) = payments
        .since(&owner, &format!("&after={}&limit=2", id(&events[0])))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(since["data"], json!([events[1], events[2]]));
    assert_eq!(since["has_more"], true);
    let (_, since) = payments.since(&owner, "&after_sequence=3").await;
    assert_eq!(since["data"], json!([events[3]]));
    assert_eq!(since["has_more"], false);
    let (_, all) = payments.since(&owner, "").await;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(4));
    let (status, body) = payments.since(&owner, "&after=evt_unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "resource_missing");
    let (status, _) = payments
        .since(&stranger, &format!("&after={}", id(&events[0])))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Only the gateway asks, on its own account; a user's token never
    // reaches the gap filler, whatever its credential.
    let path = format!("/internal/events/since?owner_id={owner}");
    let callers = [
        Caller::Anonymous,
        Caller::session(owner.clone()),
        user(&owner),
        Caller::Service(Service::Payments),
        Caller::Service(Service::Ops),
    ];
    for caller in callers {
        let (status, body) = payments
            .service
            .send(reqwest::Method::GET, &path, &caller, None)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{caller:?}: {body}");
        assert_eq!(code(&body), "caller_not_allowed", "{caller:?}");
    }
    let response = payments
        .http
        .get(format!("{}{path}", payments.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // A resend goes out again to live listeners, marked as such.
    let (status, resent) = payments
        .post(
            &owner,
            &format!("/v1/events/{}/resend", id(&events[1])),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resent, events[1]);
    let again = tap.take(1).await;
    assert_eq!(again[0]["resend"], true);
    assert_eq!(again[0]["owner_id"], owner.as_str());
    assert_eq!(again[0]["event"], events[1]);
    let (status, _) = payments
        .post(
            &stranger,
            &format!("/v1/events/{}/resend", id(&events[1])),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Resending is not a state change: the stream did not grow.
    let (_, list) = payments.get(&owner, "/v1/events?limit=10").await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(4));
}

/// Redis goes away twice: before payments has ever reached it, and in the
/// middle of a run. Events wait in the outbox and, once Redis is back, each
/// is published exactly once and every owner's in order.
#[tokio::test]
async fn events_survive_redis_outages_and_are_published_exactly_once() {
    let mut proxy = RedisProxy::new(closed_port().await);
    let payments = TestPayments::start_with(|c| c.redis.url = format!("redis://{}", proxy.addr)).await;
    let mut tap = EventTap::open(&payments.config).await;
    let pool = payments.pool().await;
    let owners = [new_owner(), new_owner()];

    let run = |round: usize| {
        let payments = &payments;
        let owners = &owners;
        async move {
            for i in 0..3 {
                let owner = &owners[(round + i) % 2];
                let paid = id(&payments.create(owner, 100 + i as i64, "usd").await);
                payments.confirm(owner, &paid, "pm_card_visa").await;
            }
        }
    };

    run(0).await;
    assert_eq!(unpublished(&pool).await, 6, "nothing can be published yet");
    proxy.open().await;
    wait_until_published(&pool).await;

    proxy.cut().await;
    run(1).await;
    assert_eq!(unpublished(&pool).await, 6, "the second run waits for Redis");
    proxy.open().await;
    wait_until_published(&pool).await;

    let messages = tap.drain().await;
    assert_eq!(messages.len(), 12);
    assert_published_exactly_once(&pool, &messages).await;
}

/// Two processes publish from one outbox: each event still goes out once,
/// and each owner's events in sequence order.
#[tokio::test]
async fn several_publishers_never_publish_an_event_twice() {
    let first = TestPayments::start().await;
    let second = first.another_instance().await;
    let mut tap = EventTap::open(&first.config).await;
    let owners: Vec<String> = (0..3).map(|_| new_owner()).collect();
    let work = (0..24).map(|i| {
        let instance = if i % 2 == 0 { &first } else { &second };
        let owner = owners[i % owners.len()].clone();
        async move {
            let paid = id(&instance.create(&owner, 100, "usd").await);
            instance.confirm(&owner, &paid, "pm_card_visa").await;
        }
    });
    futures::future::join_all(work).await;
    let pool = first.pool().await;
    wait_until_published(&pool).await;
    let messages = tap.drain().await;
    assert_eq!(messages.len(), 48);
    assert_published_exactly_once(&pool, &messages).await;
}

/// The ledger is down while payments succeed and are refunded; once it is
/// up, every posting lands exactly once and the books balance.
#[tokio::test]
async fn ledger_postings_survive_an_outage_and_land_exactly_once() {
    let ledger_addr = closed_port().await;
    let payments = TestPayments::start_with(|c| c.ledger_url = format!("http://{ledger_addr}")).await;
    let pool = payments.pool().await;
    let merchants = [new_owner(), new_owner()];

    let mut succeeded = Vec::new();
    for (i, amount) in [1000i64, 2550, 99, 12345, 7].into_iter().enumerate() {
        let owner = &merchants[i % 2];
        let currency = if i == 3 { "eur" } else { "usd" };
        let paid = id(&payments.create(owner, amount, currency).await);
        payments.confirm(owner, &paid, "pm_card_visa").await;
        succeeded.push((owner.clone(), paid, amount));
    }
    let declined = id(&payments.create(&merchants[0], 500, "usd").await);
    payments
        .confirm(&merchants[0], &declined, "pm_card_chargeDeclined")
        .await;
    let mut refunds = Vec::new();
    for (owner, paid, amount) in [&succeeded[0], &succeeded[3]] {
        let partial = payments.refund(owner, paid, Some(amount / 3)).await;
        refunds.push((owner.clone(), id(&partial), amount / 3));
        let rest = payments.refund(owner, paid, None).await;
        refunds.push((owner.clone(), id(&rest), amount - amount / 3));
    }

    // The worker has tried and failed for every posting.
    let owed = (succeeded.len() + refunds.len()) as i64;
    eventually(DEADLINE, || async {
        let tried: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM ledger_postings WHERE attempts > 0 AND posted_at IS NULL AND last_error IS NOT NULL",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        (tried == owed).then_some(())
    })
    .await
    .expect("every posting was attempted while the ledger was down");
    let (_, first) = payments
        .get(&succeeded[0].0, &format!("/v1/payments/{}", succeeded[0].1))
        .await;
    assert_eq!(first["ledger_transaction_id"], Value::Null);

    let listener = TcpListener::bind(ledger_addr)
        .await
        .expect("rebind the ledger port");
    let ledger = TestLedger::start(&payments.config, listener).await;

    for (owner, paid, amount) in &succeeded {
        let payment = eventually(DEADLINE, || async {
            let (_, payment) = payments.get(owner, &format!("/v1/payments/{paid}")).await;
            payment["ledger_transaction_id"].is_string().then_some(payment)
        })
        .await
        .expect("the payment is posted once the ledger is back");
        let (status, transaction) = ledger
            .get(&format!("/internal/transactions/by-reference/{paid}"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(transaction["id"], payment["ledger_transaction_id"]);
        let debits: i64 = transaction["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["direction"] == "debit")
            .map(|e| e["amount"].as_i64().expect("amount"))
            .sum();
        assert_eq!(debits, *amount);
    }
    for (_, refund_id, _) in &refunds {
        let (status, transaction) = ledger
            .get(&format!("/internal/transactions/by-reference/{refund_id}"))
            .await;
        assert_eq!(status, StatusCode::OK, "refund {refund_id} posted");
        let stored = eventually(DEADLINE, || async {
            sqlx::query_scalar::<_, Option<String>>("SELECT ledger_transaction_id FROM refunds WHERE id = $1")
                .bind(refund_id)
                .fetch_one(&pool)
                .await
                .expect("refund")
        })
        .await
        .expect("the refund shows its ledger transaction");
        assert_eq!(transaction["id"], stored.as_str());
    }
    let (status, _) = ledger
        .get(&format!("/internal/transactions/by-reference/{declined}"))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a declined payment is never posted"
    );

    // Exactly once: what the ledger holds adds up to what payments owed.
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for (i, (_, _, amount)) in succeeded.iter().enumerate() {
        *expected
            .entry(if i == 3 { "eur" } else { "usd" }.into())
            .or_default() += amount;
    }
    for (i, (_, _, amount)) in refunds.iter().enumerate() {
        *expected
            .entry(if i >= 2 { "eur" } else { "usd" }.into())
            .or_default() += amount;
    }
    let (status, balance) = ledger.get("/internal/trial-balance").await;
    assert_eq!(status, StatusCode::OK);
    let mut totals = BTreeMap::new();
    for line in balance.as_array().expect("lines") {
        let debits = line["debits"].as_i64().expect("debits");
        assert_eq!(debits, line["credits"].as_i64().expect("credits"), "{line}");
        totals.insert(line["currency"].as_str().expect("currency").to_owned(), debits);
    }
    assert_eq!(totals, expected);
    let posted: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_postings WHERE posted_at IS NOT NULL")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(posted, owed);
}

#[tokio::test]
async fn describes_its_public_routes_only() {
    let document = serde_json::to_value(payments::openapi()).expect("json");
    let paths = document["paths"].as_object().expect("paths");
    for path in [
        "/v1/payments",
        "/v1/payments/{id}",
        "/v1/payments/{id}/confirm",
        "/v1/payments/{id}/cancel",
        "/v1/payments/{id}/refunds",
        "/v1/events",
        "/v1/events/{id}",
        "/v1/events/{id}/resend",
    ] {
        assert!(paths.contains_key(path), "{path} is described");
    }
    assert!(paths.keys().all(|p| !p.starts_with("/internal")));
    let schemas = document["components"]["schemas"].as_object().expect("schemas");
    assert!(
        schemas.contains_key("Payment") && schemas.contains_key("Refund") && schemas.contains_key("Event")
    );
}

/// The fee is decided when a payment succeeds, in the currency's own minor
/// unit, and stays what it was: a posting sent after the fee schedule
/// changed carries the stamped fee, and the ledger books exactly that.
#[tokio::test]
async fn fees_are_stamped_at_success_and_posted_as_stamped() {
    let payments = TestPayments::start().await;
    let owner = new_owner();
    let mut stamped = Vec::new();
    // 2.9% + 0.30: 30 cents, no yen at all, 300 fils.
    for (amount, currency, fee) in [(10_000, "usd", 320), (1_000, "jpy", 29), (10_000, "kwd", 590)] {
        let created = payments.create(&owner, amount, currency).await;
        assert_eq!(created["fee"], Value::Null, "no fee before success");
        let paid = payments.confirm(&owner, &id(&created), "pm_card_visa").await;
        assert_eq!(paid["fee"], fee, "{currency}: {paid}");
        stamped.push((id(&created), amount, fee));
    }
    let declined = id(&payments.create(&owner, 500, "usd").await);
    let declined = payments
        .confirm(&owner, &declined, "pm_card_chargeDeclined")
        .await;
    assert_eq!(declined["fee"], Value::Null, "a failed payment has no fee");

    // The same database under a schedule with no fee at all, and a ledger.
    let config = payments.config.clone();
    let db = payments.db.clone();
    drop(payments);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ledger_addr = listener.local_addr().expect("address");
    let ledger = TestLedger::start(&config, listener).await;
    let mut free = config.clone();
    free.fee_basis_points = 0;
    free.fee_fixed_cents = 0;
    free.ledger_url = format!("http://{ledger_addr}");
    let payments = TestPayments::start_on(free, db).await;

    for (paid, amount, fee) in &stamped {
        let payment = eventually(DEADLINE, || async {
            let (_, payment) = payments.get(&owner, &format!("/v1/payments/{paid}")).await;
            payment["ledger_transaction_id"].is_string().then_some(payment)
        })
        .await
        .expect("posted once the ledger is up");
        assert_eq!(payment["fee"], *fee, "the stamp never changes");
        let (status, transaction) = ledger
            .get(&format!("/internal/transactions/by-reference/{paid}"))
            .await;
        assert_eq!(status, StatusCode::OK);
        let credits: Vec<i64> = transaction["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["direction"] == "credit")
            .map(|e| e["amount"].as_i64().expect("amount"))
            .collect();
        assert_eq!(credits, vec![amount - fee, *fee], "{transaction}");
    }
}

/// A posting the ledger refuses (here: an owner that is not a user, which
/// the ledger will never take as a merchant) is tried a bounded number of
/// times and dead-lettered, and does not hold up anyone else's postings.
#[tokio::test]
async fn a_refused_posting_is_dead_lettered_after_bounded_attempts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ledger_addr = listener.local_addr().expect("address");
    let payments = TestPayments::start_with(|c| c.ledger_url = format!("http://{ledger_addr}")).await;
    let _ledger = TestLedger::start(&payments.config, listener).await;
    let pool = payments.pool().await;

    let odd_owner = format!("org_{}", unique_suffix());
    let refused = id(&payments.create(&odd_owner, 1_000, "usd").await);
    payments.confirm(&odd_owner, &refused, "pm_card_visa").await;
    let owner = new_owner();
    let fine = id(&payments.create(&owner, 1_000, "usd").await);
    payments.confirm(&owner, &fine, "pm_card_visa").await;

    let (attempts, refusals, last_error): (i32, i32, Option<String>) = eventually(DEADLINE, || async {
        sqlx::query_as(
            "SELECT attempts, refusals, last_error FROM ledger_postings
             WHERE reference = $1 AND dead_lettered_at IS NOT NULL",
        )
        .bind(&refused)
        .fetch_optional(&pool)
        .await
        .expect("posting")
    })
    .await
    .expect("the refused posting is dead-lettered");
    assert_eq!((attempts, refusals), (5, 5));
    let last_error = last_error.unwrap_or_default();
    assert!(
        last_error.contains("400") && last_error.contains("invalid_merchant_id"),
        "{last_error}"
    );

    let (_, payment) = payments.get(&owner, &format!("/v1/payments/{fine}")).await;
    assert!(payment["ledger_transaction_id"].is_string(), "{payment}");
    let (_, payment) = payments.get(&odd_owner, &format!("/v1/payments/{refused}")).await;
    assert_eq!(payment["ledger_transaction_id"], Value::Null);

    let metrics = reqwest::get(format!("{}/metrics", payments.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("payments_postings_dead_lettered_total"),
        "{metrics}"
    );

    // Dead means no more attempts: well past when it would have been due
    // (and a few polls of the worker later), the count stays at five.
    eventually(DEADLINE, || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT next_attempt_at + interval '1 second' < now() FROM ledger_postings WHERE reference = $1",
        )
        .bind(&refused)
        .fetch_one(&pool)
        .await
        .expect("due")
        .then_some(())
    })
    .await
    .expect("time passes");
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM ledger_postings WHERE reference = $1")
        .bind(&refused)
        .fetch_one(&pool)
        .await
        .expect("attempts");
    assert_eq!(attempts, 5);
}

/// An outbox row that cannot be published (an event type this version does
/// not know) is quarantined; events written after it, its owner's and
/// everyone else's, are still published.
#[tokio::test]
async fn an_undecodable_outbox_row_is_quarantined_and_the_rest_flows() {
    let payments = TestPayments::start().await;
    let mut tap = EventTap::open(&payments.config).await;
    let pool = payments.pool().await;
    let (owner, other) = (new_owner(), new_owner());
    let bad = format!("evt_bad{}", unique_suffix());
    sqlx::query("INSERT INTO event_sequences (owner_id, last_sequence) VALUES ($1, 1)")
        .bind(&owner)
        .execute(&pool)
        .await
        .expect("sequence");
    sqlx::query(
        "INSERT INTO events (id, owner_id, sequence, type, object_id, object, created_at)
         VALUES ($1, $2, 1, 'payment.exploded', 'pay_x', '{}', now())",
    )
    .bind(&bad)
    .bind(&owner)
    .execute(&pool)
    .await
    .expect("a bad row");

    for who in [&owner, &other, &owner] {
        let paid = id(&payments.create(who, 100, "usd").await);
        payments.confirm(who, &paid, "pm_card_visa").await;
    }
    let reason: String = eventually(DEADLINE, || async {
        sqlx::query_scalar(
            "SELECT quarantine_reason FROM events WHERE id = $1 AND quarantined_at IS NOT NULL",
        )
        .bind(&bad)
        .fetch_optional(&pool)
        .await
        .expect("event")
    })
    .await
    .expect("the bad row is quarantined");
    assert!(reason.contains("payment.exploded"), "{reason}");
    eventually(DEADLINE, || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE published_at IS NULL AND quarantined_at IS NULL",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        (waiting == 0).then_some(())
    })
    .await
    .expect("every other event is published");

    let messages = tap.drain().await;
    let sequences = |who: &str| -> Vec<i64> {
        messages
            .iter()
            .filter(|m| m["owner_id"] == who)
            .map(|m| m["event"]["sequence"].as_i64().expect("sequence"))
            .collect()
    };
    assert_eq!(sequences(&owner), vec![2, 3, 4, 5]);
    assert_eq!(sequences(&other), vec![1, 2]);
    assert!(messages.iter().all(|m| m["event"]["id"] != bad.as_str()));

    // Reads leave it out too, rather than failing on it.
    let (status, list) = payments.get(&owner, "/v1/events").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["data"].as_array().expect("data").len(), 4);
    let metrics = reqwest::get(format!("{}/metrics", payments.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("payments_events_quarantined_total"), "{metrics}");
}
