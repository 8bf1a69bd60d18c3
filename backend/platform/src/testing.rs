//! The test harness's building blocks: a fresh database per test on the real
//! local PostgreSQL, an isolated Redis namespace, and waits with deadlines.
//! Failed tests keep their database for inspection, as `#[sqlx::test]` does.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::config::Config;

/// Where test databases are created; `TEST_DATABASE_URL` overrides it.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

/// A configuration for one test: local defaults, the cheapest bcrypt cost,
/// its own Redis namespace, fresh database names and ephemeral ports.
pub fn config() -> Config {
    let mut config = Config::local_defaults();
    config.bcrypt_cost = 4;
    config.redis_prefix = format!("test:{}:", unique_suffix());
    let ephemeral = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.gateway_addr = ephemeral;
    config.auth_addr = ephemeral;
    config.payments_addr = ephemeral;
    config.ledger_addr = ephemeral;
    if let Ok(url) = std::env::var("TEST_REDIS_URL") {
        config.redis_url = url;
    }
    config
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
        let pool = crate::db::connect_and_migrate(&db.url, migrator, 10)
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
