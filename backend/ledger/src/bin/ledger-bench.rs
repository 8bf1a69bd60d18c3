//! Posting throughput of the ledger, measured against PostgreSQL's own
//! pgbench on the same server.
//!
//! 1. Starts the ledger in this process on a fresh database, creates a set of
//!    accounts, and has `--clients` concurrent clients post two-entry
//!    transfers between random pairs of them through the HTTP API (each
//!    request with the internal token, as the gateway sends it) for
//!    `--seconds`.
//! 2. On a scratch database, `pgbench -i -s <scale>`, then
//!    `pgbench -c <clients> -j 2 -T <seconds>` with its default TPC-B-like script.
//! 3. Prints both throughputs, their ratio, and the ledger's latencies.

use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use platform::internal_token::{Caller, HEADER, InternalTokens, Service};
use platform::testing::TestDatabase;
use rand::Rng;
use serde_json::{Value, json};
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(about = "Ledger posting throughput against pgbench on the same PostgreSQL")]
struct Args {
    /// How long each of the two runs lasts.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Concurrent clients, for both runs.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Accounts the transfers pick their pairs from. Each transfer locks two of
    /// 64, so two transfers collide about as often (6%) as two pgbench
    /// transactions do on its 16 branches at scale 16.
    #[arg(long, default_value_t = 64)]
    accounts: usize,
    /// pgbench's scale factor.
    #[arg(long, default_value_t = 16)]
    scale: u32,
    #[arg(long, default_value = "/usr/bin/pgbench")]
    pgbench: String,
    /// Only measure the ledger.
    #[arg(long)]
    skip_pgbench: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ledger = run_ledger(&args).await?;
    println!(
        "ledger:   {:>8.1} tx/s  ({} transfers in {:.1} s, {} clients, {} accounts, 0 errors)",
        ledger.throughput, ledger.posted, ledger.elapsed, args.clients, args.accounts
    );
    println!(
        "          latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ledger.p50_ms, ledger.p99_ms, ledger.max_ms
    );
    if args.skip_pgbench {
        return Ok(());
    }
    let pgbench_tps = run_pgbench(&args).await?;
    println!(
        "pgbench:  {pgbench_tps:>8.1} tps   (TPC-B-like, -s {} -c {} -j 2 -T {})",
        args.scale, args.clients, args.seconds
    );
    let ratio = ledger.throughput / pgbench_tps;
    println!(
        "ratio:    {ratio:.2} ledger/pgbench (goal >= 0.80: {})",
        if ratio >= 0.8 { "met" } else { "not met" }
    );
    Ok(())
}

struct LedgerRun {
    posted: usize,
    elapsed: f64,
    throughput: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

async fn run_ledger(args: &Args) -> anyhow::Result<LedgerRun> {
    let database = TestDatabase::reserve("bench");
    let mut config: ledger::LedgerSettings = platform::testing::config();
    config.database.url = database.url.clone().into();
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = ledger::build(&config, listener, shutdown.clone()).await?;
    let client = Client {
        base: format!("http://{}", server.local_addr),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(args.clients)
            .build()?,
        tokens: InternalTokens::new(&config.internal_token_secret),
        caller: Caller::api_key("usr_bench", "key_bench"),
    };
    let mut accounts = Vec::with_capacity(args.accounts);
    for i in 0..args.accounts.max(2) {
        let body = json!({"name": format!("account {i}"), "type": "asset", "currency": "usd"});
        let account = client.post("/v1/ledger/accounts", &body).await?;
        accounts.push(account["id"].as_str().context("an account id")?.to_owned());
    }
    let client = Arc::new(client);
    let accounts = Arc::new(accounts);

    // A short warm-up fills the connection pools and the statement caches.
    run_clients(&client, &accounts, args.clients, Duration::from_secs(1), "warmup").await?;
    let started = Instant::now();
    let mut latencies = run_clients(
        &client,
        &accounts,
        args.clients,
        Duration::from_secs(args.seconds),
        "run",
    )
    .await?;
    let elapsed = started.elapsed().as_secs_f64();

    let books = client
        .get_as(
            contract::internal::paths::TRIAL_BALANCE,
            &Caller::Service(Service::Ops),
        )
        .await?;
    for line in books.as_array().context("trial balance lines")? {
        if line["debits"] != line["credits"] {
            bail!("the books do not balance after the run: {line}");
        }
    }
    drop(client);
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), server.task).await;

    latencies.sort_unstable();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1000.0
    };
    if latencies.is_empty() {
        bail!("no transfer completed");
    }
    Ok(LedgerRun {
        posted: latencies.len(),
        elapsed,
        throughput: latencies.len() as f64 / elapsed,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        max_ms: percentile(1.0),
    })
}

/// Runs `clients` posting loops until `duration` passes; returns every latency.
async fn run_clients(
    client: &Arc<Client>,
    accounts: &Arc<Vec<String>>,
    clients: usize,
    duration: Duration,
    phase: &'static str,
) -> anyhow::Result<Vec<Duration>> {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::with_capacity(clients);
    for worker in 0..clients {
        let client = client.clone();
        let accounts = accounts.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut sequence = 0u64;
            while Instant::now() < deadline {
                let (from, to, amount) = {
                    let mut rng = rand::thread_rng();
                    let from = rng.gen_range(0..accounts.len());
                    let to = (from + rng.gen_range(1..accounts.len())) % accounts.len();
                    (from, to, rng.gen_range(1..=100_000i64))
                };
                sequence += 1;
                let body = json!({
                    "reference": format!("{phase}-{worker}-{sequence}"),
                    "entries": [
                        {"account_id": accounts[to], "direction": "debit", "amount": amount},
                        {"account_id": accounts[from], "direction": "credit", "amount": amount},
                    ],
                });
                let started = Instant::now();
                client.post("/v1/ledger/transactions", &body).await?;
                latencies.push(started.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.context("a client task")??);
    }
    Ok(all)
}

struct Client {
    base: String,
    http: reqwest::Client,
    tokens: InternalTokens,
    caller: Caller,
}

impl Client {
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(request).await
    }

    async fn get_as(&self, path: &str, caller: &Caller) -> anyhow::Result<Value> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send_as(request, caller).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        self.send_as(request, &self.caller).await
    }

    async fn send_as(&self, request: reqwest::RequestBuilder, caller: &Caller) -> anyhow::Result<Value> {
        let response = request.header(HEADER, self.tokens.mint(caller)).send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("the ledger answered {status}: {body}");
        }
        Ok(body)
    }
}

/// pgbench's default script on a scratch database of the same server; the tps.
async fn run_pgbench(args: &Args) -> anyhow::Result<f64> {
    let scratch = TestDatabase::reserve("pgbench");
    let options = PgConnectOptions::from_str(&scratch.url)?;
    let mut admin = options.clone().database("postgres").connect().await?;
    sqlx::query(&format!("CREATE DATABASE \"{}\"", scratch.name))
        .execute(&mut admin)
        .await?;
    let connection = |command: &mut Command| {
        command
            .arg("-h")
            .arg(options.get_host())
            .arg("-p")
            .arg(options.get_port().to_string())
            .arg("-U")
            .arg(options.get_username());
    };
    let mut init = Command::new(&args.pgbench);
    init.args(["-i", "-q", "-s", &args.scale.to_string()]);
    connection(&mut init);
    init.arg(&scratch.name);
    let output = init
        .output()
        .with_context(|| format!("running {}", args.pgbench))?;
    if !output.status.success() {
        bail!("pgbench -i failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let mut run = Command::new(&args.pgbench);
    run.args([
        "-c",
        &args.clients.to_string(),
        "-j",
        "2",
        "-T",
        &args.seconds.to_string(),
    ]);
    connection(&mut run);
    run.arg(&scratch.name);
    let output = run
        .output()
        .with_context(|| format!("running {}", args.pgbench))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
        .lines()
        .find_map(|line| {
            let rest = line.trim().strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .with_context(|| format!("no tps in pgbench's output:\n{stdout}"))
}
