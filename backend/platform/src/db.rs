use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("the database URL is not valid")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("the database URL names no database")]
    NoDatabaseName,
    #[error("cannot create database {name}")]
    Create {
        name: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot connect to the database")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Limits every session of a pool runs under, so that a runaway query, a
/// lock queue or a transaction left open by a stuck task fails with an error
/// instead of holding a connection (and its locks) indefinitely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbTimeouts {
    pub statement: Duration,
    pub lock: Duration,
    pub idle_in_transaction: Duration,
}

impl DbTimeouts {
    /// Five seconds for a statement, two waiting for a lock, ten idle in a
    /// transaction: far beyond any request's own work, far below a stuck one.
    pub const DEFAULT: Self = Self {
        statement: Duration::from_millis(5_000),
        lock: Duration::from_millis(2_000),
        idle_in_transaction: Duration::from_millis(10_000),
    };

    /// Connection options for `url` that set the timeouts on each session at
    /// start-up, so no pooled connection ever runs without them.
    pub fn connect_options(&self, url: &str) -> Result<PgConnectOptions, DbSetupError> {
        let millis = |d: Duration| d.as_millis().to_string();
        Ok(PgConnectOptions::from_str(url)
            .map_err(DbSetupError::InvalidUrl)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .options([
                ("statement_timeout", millis(self.statement)),
                ("lock_timeout", millis(self.lock)),
                (
                    "idle_in_transaction_session_timeout",
                    millis(self.idle_in_transaction),
                ),
            ]))
    }
}

/// The size of a service's pool, and whether it checks a connection before
/// handing it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub max_connections: u32,
    /// sqlx pings an idle connection before handing it out: a second round
    /// trip for every one-statement request. A service whose every query is
    /// safe to retry (the ledger's postings are idempotent by reference) can
    /// skip it; a connection that died is then dropped by the pool after the
    /// query that finds out.
    pub ping_before_use: bool,
}

impl Pool {
    pub const fn of(max_connections: u32) -> Self {
        Self {
            max_connections,
            ping_before_use: true,
        }
    }
}

/// Connects to the service's database, creating it first when it is missing
/// and the role may, then applies the service's migrations. Every service's
/// pool is made here, so all run under the same timeouts.
pub async fn connect_and_migrate(
    url: &str,
    migrator: &Migrator,
    pool: Pool,
    timeouts: &DbTimeouts,
) -> Result<PgPool, DbSetupError> {
    let options = timeouts.connect_options(url)?;
    create_database_if_missing(&options).await?;
    let pool = PgPoolOptions::new()
        .max_connections(pool.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(pool.ping_before_use)
        .connect_with(options)
        .await
        .map_err(DbSetupError::Connect)?;
    migrator.run(&pool).await.map_err(DbSetupError::Migrate)?;
    Ok(pool)
}

pub async fn create_database_if_missing(options: &PgConnectOptions) -> Result<(), DbSetupError> {
    let name = options
        .get_database()
        .ok_or(DbSetupError::NoDatabaseName)?
        .to_owned();
    // A role limited to its own database may not see `postgres`; trying its
    // own database first keeps the common case to one connection.
    if options.connect().await.is_ok() {
        return Ok(());
    }
    let mut admin = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .map_err(DbSetupError::Connect)?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .map_err(DbSetupError::Connect)?;
    if !exists {
        let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        if let Err(source) = sqlx::query(&statement).execute(&mut admin).await {
            // Another process may have created it between our check and now.
            let raced = source
                .as_database_error()
                .and_then(|e| e.code())
                .is_some_and(|code| code == "42P04");
            if !raced {
                return Err(DbSetupError::Create { name, source });
            }
        }
        tracing::info!(database = %name, "created database");
    }
    let _ = admin.close().await;
    Ok(())
}

/// True when the database could not be reached or went away: refused,
/// reset, shut down or restarting (SQLSTATE class 08, 57P01-57P03), or no
/// connection free within the pool's timeout. Nothing is wrong with the
/// request; sent again later, it may well succeed.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// Names a constraint violation where a query is made, so that a handler
/// says what a duplicate email or a replayed key means instead of matching
/// SQLSTATEs: `query.await.on_constraint("users_email_key", |_| EmailTaken)?`.
pub trait ResultExt<T> {
    /// A violation of `constraint` (unique, check, foreign key, exclusion)
    /// becomes `map(error)`; any other error converts with `From`.
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        constraint: &str,
        map: impl FnOnce(sqlx::Error) -> E,
    ) -> Result<T, E>;
}

impl<T> ResultExt<T> for Result<T, sqlx::Error> {
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        constraint: &str,
        map: impl FnOnce(sqlx::Error) -> E,
    ) -> Result<T, E> {
        self.map_err(|error| {
            if violates(&error, constraint) {
                map(error)
            } else {
                E::from(error)
            }
        })
    }
}

/// True when a database error is an integrity violation (SQLSTATE class 23)
/// of `constraint`.
pub fn violates(error: &sqlx::Error, constraint: &str) -> bool {
    error.as_database_error().is_some_and(|e| {
        e.code().is_some_and(|code| code.starts_with("23")) && e.constraint() == Some(constraint)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn on_constraint_maps_only_the_named_constraint() {
        // The default timeouts: a temporary table's DDL can wait on the catalog
        // longer than the short ones allow on a busy machine.
        let pool = pool(&DbTimeouts::DEFAULT).await;
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query("CREATE TEMP TABLE named (id INT CONSTRAINT named_pkey PRIMARY KEY, n INT CONSTRAINT named_n_positive CHECK (n > 0))")
            .execute(&mut *tx)
            .await
            .expect("create");
        sqlx::query("INSERT INTO named VALUES (1, 1)")
            .execute(&mut *tx)
            .await
            .expect("insert");
        #[derive(Debug)]
        enum Outcome {
            Duplicate,
            Other(sqlx::Error),
        }
        impl From<sqlx::Error> for Outcome {
            fn from(error: sqlx::Error) -> Self {
                Self::Other(error)
            }
        }
        sqlx::query("SAVEPOINT s")
            .execute(&mut *tx)
            .await
            .expect("savepoint");
        let duplicate = sqlx::query("INSERT INTO named VALUES (1, 1)")
            .execute(&mut *tx)
            .await
            .on_constraint("named_pkey", |_| Outcome::Duplicate);
        assert!(matches!(duplicate, Err(Outcome::Duplicate)), "{duplicate:?}");
        sqlx::query("ROLLBACK TO SAVEPOINT s")
            .execute(&mut *tx)
            .await
            .expect("rollback");
        let negative = sqlx::query("INSERT INTO named VALUES (2, -1)")
            .execute(&mut *tx)
            .await
            .on_constraint("named_pkey", |_| Outcome::Duplicate);
        assert!(
            matches!(&negative, Err(Outcome::Other(e)) if violates(e, "named_n_positive")),
            "another constraint passes through: {negative:?}"
        );
    }

    fn short() -> DbTimeouts {
        DbTimeouts {
            statement: Duration::from_millis(300),
            lock: Duration::from_millis(200),
            idle_in_transaction: Duration::from_millis(1_500),
        }
    }

    async fn pool(timeouts: &DbTimeouts) -> PgPool {
        let options = timeouts
            .connect_options(&crate::testing::admin_url())
            .expect("a valid URL");
        PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .expect("connect to PostgreSQL")
    }

    #[tokio::test]
    async fn every_session_runs_under_the_configured_timeouts() {
        let pool = pool(&short()).await;
        for (setting, expected) in [
            ("statement_timeout", "300ms"),
            ("lock_timeout", "200ms"),
            ("idle_in_transaction_session_timeout", "1500ms"),
        ] {
            let shown: String = sqlx::query_scalar(&format!("SHOW {setting}"))
                .fetch_one(&pool)
                .await
                .expect("show");
            assert_eq!(shown, expected, "{setting}");
        }
    }

    #[tokio::test]
    async fn a_query_longer_than_the_statement_timeout_is_cancelled() {
        let pool = pool(&short()).await;
        let started = std::time::Instant::now();
        let error = sqlx::query("SELECT pg_sleep(5)")
            .execute(&pool)
            .await
            .expect_err("cancelled by statement_timeout");
        let code = error
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        // 57014: query_canceled, which is what statement_timeout raises.
        assert_eq!(code.as_deref(), Some("57014"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        // The pool is still usable after the cancelled query.
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .expect("select");
        assert_eq!(one, 1);
    }

    #[tokio::test]
    async fn the_defaults_are_five_two_and_ten_seconds() {
        let timeouts = DbTimeouts::from_lookup(&|_| None).expect("the defaults are valid");
        assert_eq!(timeouts.statement, Duration::from_secs(5));
        assert_eq!(timeouts.lock, Duration::from_secs(2));
        assert_eq!(timeouts.idle_in_transaction, Duration::from_secs(10));
        let pool = pool(&timeouts).await;
        let shown: String = sqlx::query_scalar("SHOW statement_timeout")
            .fetch_one(&pool)
            .await
            .expect("show");
        assert_eq!(shown, "5s");
    }
}
