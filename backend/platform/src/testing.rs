//! The test harness's building blocks: a fresh database per test on the real
//! local PostgreSQL, an isolated Redis namespace, and waits with deadlines.
//! Failed tests keep their database for inspection, as `#[sqlx::test]` does.

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::config::ServiceConfig;
use crate::db::DbTimeouts;

/// Where test databases are created; `TEST_DATABASE_URL` overrides it.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

/// What the services under test read in place of the process environment:
/// the local defaults, except the cheapest bcrypt cost, a Redis namespace of
/// its own, ephemeral listen ports, and `TEST_REDIS_URL` when it is set.
/// Services started from one `TestEnv` share its namespace, as the services
/// of one deployment share theirs.
#[derive(Debug, Clone)]
pub struct TestEnv {
    vars: HashMap<&'static str, String>,
}

impl TestEnv {
    pub fn new() -> Self {
        let ephemeral = "127.0.0.1:0".to_owned();
        let mut vars = HashMap::from([
            ("BCRYPT_COST", "4".to_owned()),
            ("REDIS_PREFIX", format!("test:{}:", unique_suffix())),
            ("GATEWAY_ADDR", ephemeral.clone()),
            ("AUTH_ADDR", ephemeral.clone()),
            ("PAYMENTS_ADDR", ephemeral.clone()),
            ("LEDGER_ADDR", ephemeral.clone()),
            ("METRICS_ADDR", ephemeral),
        ]);
        if let Ok(url) = std::env::var("TEST_REDIS_URL") {
            vars.insert("REDIS_URL", url);
        }
        Self { vars }
    }

    /// The same, with `name` set to `value`.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.vars.insert(name, value.into());
        self
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    /// One service's configuration, read from these variables.
    pub fn config<C: ServiceConfig>(&self) -> C {
        C::from_lookup(&|name| self.get(name)).expect("the test configuration is valid")
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

/// One service's configuration for one test, in a Redis namespace of its own.
pub fn config<C: ServiceConfig>() -> C {
    TestEnv::new().config()
}

/// A database of its own for one test, dropped when the test passes.
pub struct TestDatabase {
    pub url: String,
    pub name: String,
}

impl TestDatabase {
    /// A URL naming a database that does not exist yet; the service under
    /// test creates and migrates it as it would in production.
    pub fn reserve(service: &str) -> Self {
        let name = format!("micro_test_{service}_{}", unique_suffix());
        let options = PgConnectOptions::from_str(&admin_url()).expect("TEST_DATABASE_URL is a valid URL");
        let url = options.database(&name).to_url_lossy().to_string();
        Self { url, name }
    }

    /// A created and migrated database, with a pool on it.
    pub async fn migrated(service: &str, migrator: &Migrator) -> (Self, PgPool) {
        let db = Self::reserve(service);
        let pool = crate::db::connect_and_migrate(&db.url, migrator, 10, &DbTimeouts::DEFAULT)
            .await
            .expect("create and migrate a test database");
        (db, pool)
    }

    /// A second pool on the same database, for tests that speak SQL directly.
    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(5)
            .connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept database {} for inspection", self.name);
            return;
        }
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot block on itself.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let options = PgConnectOptions::from_str(&admin_url()).ok()?;
                let mut conn = options.connect().await.ok()?;
                let statement = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                // A service still winding down may reconnect between the
                // forced disconnect and the drop; a few tries outlast it.
                for _ in 0..5 {
                    if sqlx::query(&statement).execute(&mut conn).await.is_ok() {
                        return Some(());
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                eprintln!("could not drop test database {name}");
                None
            })
        });
        let _ = dropper.join();
    }
}

/// Polls `probe` until it yields a value or `deadline` passes.
pub async fn eventually<T, F, Fut>(deadline: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One service running in-process on an ephemeral port, with an HTTP client
/// that signs each request with the internal token the gateway would send.
/// Dropping it starts the service's graceful shutdown.
pub struct ServiceUnderTest {
    pub base: String,
    pub http: reqwest::Client,
    pub tokens: crate::internal_token::InternalTokens,
    shutdown: tokio_util::sync::CancellationToken,
}

impl ServiceUnderTest {
    /// Binds 127.0.0.1:0 and starts the service with `build`, as its binary
    /// would; requests are signed with `internal_token_secret`.
    pub async fn spawn<Build, Running>(internal_token_secret: &SecretString, build: Build) -> Self
    where
        Build: FnOnce(tokio::net::TcpListener, tokio_util::sync::CancellationToken) -> Running,
        Running: Future<Output = anyhow::Result<crate::http::Server>>,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        Self::spawn_on(internal_token_secret, listener, build).await
    }

    /// Starts the service on a listener the test bound itself, so that the
    /// address can be known (or refused) before the service exists.
    pub async fn spawn_on<Build, Running>(
        internal_token_secret: &SecretString,
        listener: tokio::net::TcpListener,
        build: Build,
    ) -> Self
    where
        Build: FnOnce(tokio::net::TcpListener, tokio_util::sync::CancellationToken) -> Running,
        Running: Future<Output = anyhow::Result<crate::http::Server>>,
    {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = build(listener, shutdown.clone())
            .await
            .expect("the service starts");
        Self {
            base: format!("http://{}", server.local_addr),
            http: reqwest::Client::new(),
            tokens: crate::internal_token::InternalTokens::new(internal_token_secret),
            shutdown,
        }
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        caller: &crate::internal_token::Caller,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(crate::internal_token::HEADER, self.tokens.mint(caller))
    }

    /// The status and the exact body text, to compare answers byte for byte.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        caller: &crate::internal_token::Caller,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, String) {
        let mut request = self.request(method, path, caller);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the service answers");
        let status = response.status();
        (status, response.text().await.expect("a readable body"))
    }

    /// The status and the body as JSON (`null` when it is not JSON).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        caller: &crate::internal_token::Caller,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let (status, text) = self.send_raw(method, path, caller, body).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }
}

impl Drop for ServiceUnderTest {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
