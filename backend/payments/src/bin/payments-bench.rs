//! Payments created and confirmed per second, end to end: payments and the
//! ledger in this process on fresh databases, the real PostgreSQL and Redis,
//! a number of concurrent clients over HTTP for a fixed time. Then, on the
//! same PostgreSQL, pgbench's TPC-B for the same time and clients, so the
//! two numbers can be compared on one machine in one run.
//!
//! `scripts/bench-payments` builds it in release mode and runs it.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use platform::config::ServiceConfig;
use platform::internal_token::{Caller, HEADER, InternalTokens};
use platform::testing::{TestDatabase, unique_suffix};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(about = "Payments created and confirmed per second, beside pgbench's TPC-B on the same server")]
struct Args {
    /// How long each measurement runs, in seconds.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Concurrent clients, for payments and for pgbench.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Merchants the clients pay; clients share them round-robin. With 1,
    /// every event lands in one merchant's stream, the hottest case.
    #[arg(long, default_value_t = 16)]
    merchants: usize,
    /// pgbench's scale factor.
    #[arg(long, default_value_t = 16)]
    scale: u32,
    /// Skip pgbench (and the ratio).
    #[arg(long)]
    no_pgbench: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        platform::telemetry::init(platform::config::LogFormat::Text);
    }
    let mut config = payments::PaymentsSettings::from_env()?;
    let mut ledger_config = ledger::LedgerSettings::from_env()?;
    config.redis.prefix = format!("bench:{}:", unique_suffix());
    let payments_db = TestDatabase::reserve("bench_payments");
    let ledger_db = TestDatabase::reserve("bench_ledger");
    config.database.url = payments_db.url.clone().into();
    ledger_config.database.url = ledger_db.url.clone().into();

    let shutdown = CancellationToken::new();
    let ledger_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let payments_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    config.ledger_url = format!("http://{}", ledger_listener.local_addr()?);
    let ledger = ledger::build(&ledger_config, ledger_listener, shutdown.clone())
        .await
        .context("starting the ledger")?;
    let payments = payments::build(&config, payments_listener, shutdown.clone())
        .await
        .context("starting payments")?;
    let base = format!("http://{}", payments.local_addr);
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "payments-bench: {} clients, {} merchants, {} s, {build} build, payments + ledger in-process, \
         PostgreSQL and Redis local",
        args.clients, args.merchants, args.seconds
    );
    if cfg!(debug_assertions) {
        println!("  (a debug build: numbers are not meaningful; use scripts/bench-payments)");
    }

    let tokens = InternalTokens::new(&config.internal_token_secret);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients * 2)
        .build()?;
    let merchants: Vec<String> = (0..args.merchants.max(1))
        .map(|i| format!("usr_bench{i:02}{}", unique_suffix()))
        .collect();

    // A short warm-up fills connection pools and caches on both sides.
    run_clients(
        &http,
        &base,
        &tokens,
        &merchants,
        args.clients,
        Duration::from_secs(1),
    )
    .await?;

    let started = Instant::now();
    let run = run_clients(
        &http,
        &base,
        &tokens,
        &merchants,
        args.clients,
        Duration::from_secs(args.seconds),
    )
    .await?;
    let confirmed_in = started.elapsed();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&payments_db.url)
        .await?;
    wait_for_outboxes(&pool).await?;
    let settled_in = started.elapsed();

    let pairs = run.pairs as f64;
    let http_rate = pairs / confirmed_in.as_secs_f64();
    let end_to_end = pairs / settled_in.as_secs_f64();
    println!(
        "payments: {} created and confirmed in {:.1} s = {http_rate:.0}/s over HTTP; \
         {end_to_end:.0}/s end to end (every ledger posting and event delivered after {:.1} s)",
        run.pairs,
        confirmed_in.as_secs_f64(),
        settled_in.as_secs_f64()
    );
    println!(
        "  create  p50 {:>7.2} ms  p99 {:>7.2} ms",
        percentile(&run.create_latencies, 0.50),
        percentile(&run.create_latencies, 0.99)
    );
    println!(
        "  confirm p50 {:>7.2} ms  p99 {:>7.2} ms",
        percentile(&run.confirm_latencies, 0.50),
        percentile(&run.confirm_latencies, 0.99)
    );
    if run.errors > 0 {
        println!("  {} requests failed; first: {}", run.errors, run.first_error);
    }
    let posted: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_postings WHERE posted_at IS NOT NULL")
        .fetch_one(&pool)
        .await?;
    println!("  ledger postings recorded: {posted}");
    pool.close().await;
    shutdown.cancel();
    let _ = ledger.task.await;
    let _ = payments.task.await;

    if !args.no_pgbench {
        let tps = pgbench(&args).await?;
        println!(
            "pgbench: TPC-B, scale {}, -c {} -j 2 -T {}: {tps:.0} tps",
            args.scale, args.clients, args.seconds
        );
        println!(
            "ratio: {end_to_end:.0} / {tps:.0} = {:.2} (goal >= 0.4)",
            end_to_end / tps
        );
    }
    Ok(())
}

#[derive(Default)]
struct Run {
    pairs: u64,
    errors: u64,
    first_error: String,
    create_latencies: Vec<Duration>,
    confirm_latencies: Vec<Duration>,
}

async fn run_clients(
    http: &reqwest::Client,
    base: &str,
    tokens: &InternalTokens,
    merchants: &[String],
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let until = Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let http = http.clone();
        let base = base.to_owned();
        let tokens = tokens.clone();
        let merchant = merchants[client % merchants.len()].clone();
        tasks.spawn(async move { client_loop(http, base, tokens, merchant, client, until).await });
    }
    let mut total = Run::default();
    while let Some(run) = tasks.join_next().await {
        let run = run?;
        total.pairs += run.pairs;
        if total.errors == 0 {
            total.first_error = run.first_error;
        }
        total.errors += run.errors;
        total.create_latencies.extend(run.create_latencies);
        total.confirm_latencies.extend(run.confirm_latencies);
    }
    Ok(total)
}

async fn client_loop(
    http: reqwest::Client,
    base: String,
    tokens: InternalTokens,
    merchant: String,
    client: usize,
    until: Instant,
) -> Run {
    let mut run = Run::default();
    let caller = Caller::api_key(merchant, "key_bench");
    let mut token = tokens.mint(&caller);
    let mut minted = Instant::now();
    let mut n = 0u64;
    while Instant::now() < until {
        if minted.elapsed() > Duration::from_secs(30) {
            token = tokens.mint(&caller);
            minted = Instant::now();
        }
        n += 1;
        let key = format!("bench-{client}-{n}-{}", unique_suffix());
        let started = Instant::now();
        let created = post(
            &http,
            &format!("{base}/v1/payments"),
            &token,
            &format!("{key}-create"),
            json!({"amount": 1000 + (n % 500) as i64, "currency": "usd", "metadata": {"client": client.to_string()}}),
        )
        .await;
        let id = match created {
            Ok(body) => body["id"].as_str().unwrap_or_default().to_owned(),
            Err(e) => {
                record_error(&mut run, e);
                continue;
            }
        };
        run.create_latencies.push(started.elapsed());
        let started = Instant::now();
        let confirmed = post(
            &http,
            &format!("{base}/v1/payments/{id}/confirm"),
            &token,
            &format!("{key}-confirm"),
            json!({"payment_method": "pm_card_visa"}),
        )
        .await;
        match confirmed {
            Ok(body) if body["status"] == "succeeded" => {
                run.confirm_latencies.push(started.elapsed());
                run.pairs += 1;
            }
            Ok(body) => record_error(&mut run, format!("confirm answered {body}")),
            Err(e) => record_error(&mut run, e),
        }
    }
    run
}

fn record_error(run: &mut Run, error: String) {
    if run.errors == 0 {
        run.first_error = error;
    }
    run.errors += 1;
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    key: &str,
    body: Value,
) -> Result<Value, String> {
    let response = http
        .post(url)
        .header(HEADER, token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

/// Waits until the ledger has every posting and Redis every event.
async fn wait_for_outboxes(pool: &PgPool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (postings, events): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM ledger_postings WHERE posted_at IS NULL),
                    (SELECT count(*) FROM event_outbox)",
        )
        .fetch_one(pool)
        .await?;
        if postings == 0 && events == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{postings} postings and {events} events still undelivered after two minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn percentile(latencies: &[Duration], q: f64) -> f64 {
    if latencies.is_empty() {
        return f64::NAN;
    }
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// The server's URL naming `database`, without the query parameters only
/// sqlx understands, for pgbench (libpq).
fn libpq_url(database: &str) -> String {
    let admin = platform::testing::admin_url();
    let without_query = admin.split('?').next().unwrap_or(&admin);
    let server = without_query
        .rsplit_once('/')
        .map_or(without_query, |(server, _)| server);
    format!("{server}/{database}")
}

/// TPC-B on a scratch database of the same server, dropped afterwards.
async fn pgbench(args: &Args) -> anyhow::Result<f64> {
    let scratch = TestDatabase::reserve("bench_pgbench");
    platform::db::create_database_if_missing(&scratch.url.parse()?).await?;
    let url = libpq_url(&scratch.name);
    let init = Command::new("pgbench")
        .args(["-i", "-q", "-s", &args.scale.to_string(), &url])
        .output()
        .context("running pgbench -i (is pgbench installed?)")?;
    if !init.status.success() {
        bail!("pgbench -i failed: {}", String::from_utf8_lossy(&init.stderr));
    }
    let run = Command::new("pgbench")
        .args([
            "-c",
            &args.clients.to_string(),
            "-j",
            "2",
            "-T",
            &args.seconds.to_string(),
            &url,
        ])
        .output()
        .context("running pgbench")?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    if !run.status.success() {
        bail!(
            "pgbench failed: {}{}",
            stdout,
            String::from_utf8_lossy(&run.stderr)
        );
    }
    stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .with_context(|| format!("no tps in pgbench's output:\n{stdout}"))
}
