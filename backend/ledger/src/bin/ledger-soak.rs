//! The ledger soak on a database of its own.
//!
//! Creates `micro_soak_<random>` on the server `--database-url` names, starts
//! the ledger in this process on it, runs [`ledger::soak`] (`--postings`
//! posting requests from `--clients` concurrent clients, planned from
//! `--seed`), prints the table, drops the database, and exits non-zero if an
//! answer broke the ledger's rules or an invariant failed.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use platform::internal_token::InternalTokens;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    about = "Concurrent random postings against an in-process ledger, then its invariants checked in SQL"
)]
struct Args {
    /// Posting requests in all (new postings, retries, reversals, reused references).
    #[arg(long, default_value_t = 20_000)]
    postings: usize,
    /// Clients posting at once.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Draws the plan; the same seed sends the same requests.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The PostgreSQL server to create the soak's database on (any database
    /// of it; the soak connects to `postgres` to create and drop its own).
    #[arg(
        long,
        env = "TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// Keep the database afterwards, for inspection.
    #[arg(long)]
    keep_database: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let server = PgConnectOptions::from_str(&args.database_url).context("--database-url")?;
    let name = format!("micro_soak_{}", platform::testing::unique_suffix());
    let url = server.clone().database(&name).to_url_lossy().to_string();

    let outcome = soak(&args, &url).await;
    if args.keep_database {
        eprintln!("kept database {name}");
    } else {
        drop_database(&server, &name)
            .await
            .with_context(|| format!("dropping {name}"))?;
    }
    let report = outcome?;
    print!("{report}");
    Ok(if report.violations() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn soak(args: &Args, url: &str) -> anyhow::Result<ledger::soak::Report> {
    let mut config: ledger::LedgerSettings = platform::testing::config();
    config.database.url = url.to_owned().into();
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    // Creates and migrates the database, as the service does in production.
    let server = ledger::build(&config, listener, shutdown.clone())
        .await
        .context("starting the ledger")?;
    let db = PgPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .context("connecting to the soak's database")?;
    let report = ledger::soak::run(
        &format!("http://{}", server.local_addr),
        InternalTokens::new(&config.internal_token_secret),
        &db,
        &ledger::soak::SoakConfig {
            postings: args.postings,
            clients: args.clients,
            seed: args.seed,
        },
    )
    .await;
    db.close().await;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), server.task).await;
    Ok(report?)
}

async fn drop_database(server: &PgConnectOptions, name: &str) -> anyhow::Result<()> {
    let mut admin = server.clone().database("postgres").connect().await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    Ok(())
}
