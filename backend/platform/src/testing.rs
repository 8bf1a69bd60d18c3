//! The test harness's building blocks: a fresh database per test on the real
//! local PostgreSQL, an isolated Redis namespace, and waits with deadlines.
//! Failed tests keep their database for inspection, as `#[sqlx::test]` does.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{INTERNAL_TOKEN_SECRET, RedisSettings, ServiceConfig};
use crate::db::DbTimeouts;
use crate::http::Server;

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
        let pool =
            crate::db::connect_and_migrate(&db.url, migrator, crate::db::Pool::of(10), &DbTimeouts::DEFAULT)
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

/// A clock that stands still until the test moves it, so that a window or
/// a lockout ends exactly when the test says and never in the middle of a
/// burst. It starts at the real time, so that what it stamps looks like any
/// other row, cut to the whole second, so that a whole number of seconds
/// from it (a `Retry-After`) lands exactly on a window's end.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<SystemTime>>);

impl ManualClock {
    pub fn new() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Self(Arc::new(Mutex::new(
            UNIX_EPOCH + Duration::from_secs(since_epoch),
        )))
    }

    pub fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }

    /// The handle services read, for the `clock` of the gateway's and
    /// auth's settings.
    pub fn clock(&self) -> Clock {
        let this = self.clone();
        Clock::from_fn(move || this.now())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

/// The services that keep a database of their own, and the setting that
/// names each one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceDatabase {
    Auth,
    Payments,
    Ledger,
}

impl ServiceDatabase {
    pub const ALL: [Self; 3] = [Self::Auth, Self::Payments, Self::Ledger];

    const fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Payments => "payments",
            Self::Ledger => "ledger",
        }
    }

    /// The variable the service reads its database URL from.
    pub const fn variable(self) -> &'static str {
        match self {
            Self::Auth => "AUTH_DATABASE_URL",
            Self::Payments => "PAYMENTS_DATABASE_URL",
            Self::Ledger => "LEDGER_DATABASE_URL",
        }
    }

    /// Reserves a fresh database for this service and points `env` at it.
    pub fn reserve(self, env: TestEnv) -> (TestEnv, TestDatabase) {
        let db = TestDatabase::reserve(self.name());
        (env.with(self.variable(), db.url.clone()), db)
    }
}

async fn ephemeral_port() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind an ephemeral port")
}

/// One service running in-process on its own database and an ephemeral
/// port, with an HTTP client that signs each request with the internal
/// token the gateway would send. Dropping it starts the service's graceful
/// shutdown; its database goes when the last instance on it has gone.
pub struct TestService<C> {
    pub base: String,
    pub http: reqwest::Client,
    pub tokens: crate::internal_token::InternalTokens,
    /// What it runs with, to start another instance alike.
    pub config: C,
    /// The variables its configuration was read from.
    pub env: TestEnv,
    pub db: Arc<TestDatabase>,
    shutdown: CancellationToken,
}

impl<C: ServiceConfig> TestService<C> {
    /// Starts the service with `build`, as its binary would, on a fresh
    /// database and 127.0.0.1:0, with the test configuration after `adjust`.
    pub async fn start(
        service: ServiceDatabase,
        adjust: impl FnOnce(&mut C),
        build: impl AsyncFnOnce(&C, TcpListener, CancellationToken) -> anyhow::Result<Server>,
    ) -> Self {
        Self::start_in(TestEnv::new(), service, adjust, build).await
    }

    /// As `start`, reading the configuration from `env`.
    pub async fn start_in(
        env: TestEnv,
        service: ServiceDatabase,
        adjust: impl FnOnce(&mut C),
        build: impl AsyncFnOnce(&C, TcpListener, CancellationToken) -> anyhow::Result<Server>,
    ) -> Self {
        Self::start_on_in(ephemeral_port().await, env, service, adjust, build).await
    }

    /// As `start`, on a listener the test bound itself, so that the address
    /// can be known (or refused) before the service exists.
    pub async fn start_on(
        listener: TcpListener,
        service: ServiceDatabase,
        adjust: impl FnOnce(&mut C),
        build: impl AsyncFnOnce(&C, TcpListener, CancellationToken) -> anyhow::Result<Server>,
    ) -> Self {
        Self::start_on_in(listener, TestEnv::new(), service, adjust, build).await
    }

    async fn start_on_in(
        listener: TcpListener,
        env: TestEnv,
        service: ServiceDatabase,
        adjust: impl FnOnce(&mut C),
        build: impl AsyncFnOnce(&C, TcpListener, CancellationToken) -> anyhow::Result<Server>,
    ) -> Self {
        let (env, db) = service.reserve(env);
        let mut config: C = env.config();
        adjust(&mut config);
        Self::serve(listener, env, config, Arc::new(db), build).await
    }

    /// Another instance on `db` with `config`, read from `env`, on
    /// 127.0.0.1:0, as a replica or a restarted process would be.
    pub async fn instance(
        env: TestEnv,
        config: C,
        db: Arc<TestDatabase>,
        build: impl AsyncFnOnce(&C, TcpListener, CancellationToken) -> anyhow::Result<Server>,
    ) -> Self {
        Self::serve(ephemeral_port().await, env, config, db, build).await
    }

    async fn serve(
        listener: TcpListener,
        env: TestEnv,
        config: C,
        db: Arc<TestDatabase>,
        build: impl AsyncFnOnce(&C, TcpListener, CancellationToken) -> anyhow::Result<Server>,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let server = build(&config, listener, shutdown.clone())
            .await
            .expect("the service starts");
        let secret = INTERNAL_TOKEN_SECRET
            .read(&|name| env.get(name))
            .expect("the test configuration is valid");
        Self {
            base: format!("http://{}", server.local_addr),
            http: reqwest::Client::new(),
            tokens: crate::internal_token::InternalTokens::new(&secret),
            config,
            env,
            db,
            shutdown,
        }
    }

    /// A pool of its own on the service's database, for speaking SQL directly.
    pub async fn pool(&self) -> PgPool {
        self.db.pool().await
    }

    /// The Prometheus text the service serves.
    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// The value of one series of the service's metrics (see [`metric_value`]).
    pub async fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics_text().await, series)
    }

    pub async fn get(
        &self,
        path: &str,
        caller: &crate::internal_token::Caller,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.send(reqwest::Method::GET, path, caller, None).await
    }

    pub async fn post(
        &self,
        path: &str,
        caller: &crate::internal_token::Caller,
        body: serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.send(reqwest::Method::POST, path, caller, Some(body)).await
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

impl<C> Drop for TestService<C> {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An address where nothing listens: connecting is refused at once.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address")
}

/// A TCP link to a shared server that the test can cut and restore on the
/// same port, since the server itself cannot be stopped: cutting closes
/// every connection through it and refuses new ones, which is what payments
/// sees when Redis stops or PostgreSQL restarts.
pub struct Link {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    relay: Option<JoinHandle<()>>,
}

impl Link {
    /// A link to the test Redis, closed until `open`.
    pub async fn to_redis() -> Self {
        let env = TestEnv::new();
        let upstream = RedisSettings::from_lookup(&|name| env.get(name))
            .url
            .trim_start_matches("redis://")
            .split('/')
            .next()
            .and_then(|hostport| hostport.parse().ok())
            .expect("the test Redis URL is redis://host:port");
        Self {
            addr: closed_port().await,
            upstream,
            relay: None,
        }
    }

    /// An open link to the test PostgreSQL.
    pub async fn to_postgres() -> Self {
        let admin = PgConnectOptions::from_str(&admin_url()).expect("TEST_DATABASE_URL is a valid URL");
        let upstream = tokio::net::lookup_host((admin.get_host(), admin.get_port()))
            .await
            .expect("the database's address")
            .next()
            .expect("an address");
        let mut link = Self {
            addr: closed_port().await,
            upstream,
            relay: None,
        };
        link.open().await;
        link
    }

    pub fn redis_url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// `url` with its host and port replaced by this link's.
    pub fn postgres_url(&self, url: &str) -> String {
        PgConnectOptions::from_str(url)
            .expect("a database URL")
            .host("127.0.0.1")
            .port(self.addr.port())
            .to_url_lossy()
            .to_string()
    }

    pub async fn open(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("the same port again");
        let upstream = self.upstream;
        self.relay = Some(tokio::spawn(async move {
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
    pub async fn cut(&mut self) {
        // Aborting the relay drops its listener and every connection it holds.
        if let Some(relay) = self.relay.take() {
            relay.abort();
            let _ = relay.await;
        }
    }
}

/// The value of one series (`name{labels}` exactly as rendered) in a
/// Prometheus text, 0 when absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().expect("a number"))
        .unwrap_or(0.0)
}
