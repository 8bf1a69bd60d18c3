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

/// Connects to the service's database, creating it first when it is missing
/// and the role may, then applies the service's migrations.
pub async fn connect_and_migrate(
    url: &str,
    migrator: &Migrator,
    max_connections: u32,
) -> Result<PgPool, DbSetupError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(DbSetupError::InvalidUrl)?
        .log_statements(tracing::log::LevelFilter::Trace);
    create_database_if_missing(&options).await?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
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

/// True when a database error is the unique violation of `constraint`.
pub fn is_unique_violation(error: &sqlx::Error, constraint: &str) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.code().as_deref() == Some("23505") && e.constraint() == Some(constraint))
}
