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
//!
//! With `--preload N`, the growth benchmark instead: postings/s and the
//! latency of one account's entry pages on the fresh database, then again
//! after N entries are written straight into it with SQL (generate_series),
//! in the same run, with the ratios of the two.

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
    /// The ledger/pgbench ratio the run is held to.
    #[arg(long, default_value_t = 1.0)]
    goal: f64,
    /// The growth benchmark: measure, preload this many entries, measure again.
    #[arg(long)]
    preload: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(entries) = args.preload {
        return run_growth(&args, entries).await;
    }
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
        "ratio:    {ratio:.2} ledger/pgbench (goal >= {:.2}: {})",
        args.goal,
        if ratio >= args.goal { "met" } else { "not met" }
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

struct Bench {
    client: Arc<Client>,
    accounts: Arc<Vec<String>>,
    database: TestDatabase,
    shutdown: CancellationToken,
    server: platform::http::Server,
}

/// The ledger in this process on a fresh database, with `--accounts` accounts.
async fn start(args: &Args) -> anyhow::Result<Bench> {
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
    Ok(Bench {
        client: Arc::new(client),
        accounts: Arc::new(accounts),
        database,
        shutdown,
        server,
    })
}

impl Bench {
    /// Postings for `--seconds` after a warm-up, from `--clients` clients.
    async fn postings(&self, args: &Args, phase: &'static str) -> anyhow::Result<LedgerRun> {
        // A short warm-up fills the connection pools and the statement caches.
        run_clients(
            &self.client,
            &self.accounts,
            args.clients,
            Duration::from_secs(1),
            phase,
            "warmup",
        )
        .await?;
        let started = Instant::now();
        let latencies = run_clients(
            &self.client,
            &self.accounts,
            args.clients,
            Duration::from_secs(args.seconds),
            phase,
            "run",
        )
        .await?;
        LedgerRun::new(latencies, started.elapsed().as_secs_f64())
    }

    async fn check_books(&self) -> anyhow::Result<()> {
        let books = self
            .client
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
        Ok(())
    }

    async fn stop(self) {
        drop(self.client);
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server.task).await;
    }
}

async fn run_ledger(args: &Args) -> anyhow::Result<LedgerRun> {
    let bench = start(args).await?;
    let run = bench.postings(args, "bench").await?;
    bench.check_books().await?;
    bench.stop().await;
    Ok(run)
}

impl LedgerRun {
    fn new(mut latencies: Vec<Duration>, elapsed: f64) -> anyhow::Result<Self> {
        if latencies.is_empty() {
            bail!("no transfer completed");
        }
        latencies.sort_unstable();
        let (p50_ms, p99_ms, max_ms) = (
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0),
        );
        Ok(Self {
            posted: latencies.len(),
            elapsed,
            throughput: latencies.len() as f64 / elapsed,
            p50_ms,
            p99_ms,
            max_ms,
        })
    }
}

/// In milliseconds, of sorted latencies.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

/// Entry pages of one account read this many times in a row, per measurement.
const PAGE_READS: usize = 300;

struct PageLatency {
    first_p50: f64,
    first_p99: f64,
    deep_p50: f64,
    deep_p99: f64,
    entries: i64,
}

/// The latency of the account's newest page of 100 entries, and of a page
/// halfway down its statement (by cursor), one request at a time.
async fn page_latency(bench: &Bench, account: &str) -> anyhow::Result<PageLatency> {
    let client = &bench.client;
    let path = format!("/v1/ledger/accounts/{account}/entries?limit=100");
    let entries = client.get(&format!("/v1/ledger/accounts/{account}")).await?["entry_count"]
        .as_i64()
        .context("entry_count")?;
    let pool = sqlx::PgPool::connect(&bench.database.url).await?;
    let middle: String = sqlx::query_scalar(
        "SELECT id FROM entries WHERE account_id = $1 AND entry_number = greatest(1, $2 / 2)",
    )
    .bind(account)
    .bind(entries)
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    let deep = format!("{path}&starting_after={middle}");
    let measure = |path: String| async move {
        let mut latencies = Vec::with_capacity(PAGE_READS);
        for _ in 0..PAGE_READS {
            let started = Instant::now();
            let page = client.get(&path).await?;
            latencies.push(started.elapsed());
            if page["data"].as_array().is_none_or(Vec::is_empty) {
                bail!("an empty page of entries: {page}");
            }
        }
        latencies.sort_unstable();
        anyhow::Ok((percentile(&latencies, 0.5), percentile(&latencies, 0.99)))
    };
    let (first_p50, first_p99) = measure(path.clone()).await?;
    let (deep_p50, deep_p99) = measure(deep).await?;
    Ok(PageLatency {
        first_p50,
        first_p99,
        deep_p50,
        deep_p99,
        entries,
    })
}

/// Writes `entries` entries (two per transaction, between the bench's
/// accounts, with their running numbers and balances) in one SQL statement
/// per table, then brings the balances up to date. The tables' own
/// triggers (which check each posting as it comes) are bypassed for the load
/// by `session_replication_role`; the books stay balanced, which the trial
/// balance at the end confirms.
async fn preload(bench: &Bench, entries: u64) -> anyhow::Result<()> {
    let transactions = i64::try_from(entries.div_ceil(2))?;
    let mut db = PgConnectOptions::from_str(&bench.database.url)?.connect().await?;
    let mut tx = sqlx::Connection::begin(&mut db).await?;
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO transactions (id, poster, reference, request, description, entry_count, posted_at)
         SELECT 'txn_preload' || g, 'usr_bench', 'preload-' || g, '{}', 'preloaded', 2,
                now() - make_interval(secs => $1 - g)
         FROM generate_series(1, $1) g",
    )
    .bind(transactions)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "CREATE TEMP TABLE preload_legs ON COMMIT DROP AS
         SELECT 'txn_preload' || g AS transaction_id, 'ent_preload' || g || '_' || side AS id,
                side::SMALLINT AS position,
                ($1::TEXT[])[1 + ((g * 7919 + side * (1 + g % ($2 - 1))) % $2)] AS account_id,
                CASE side WHEN 0 THEN 'debit' ELSE 'credit' END AS direction,
                1 + g % 100000 AS amount, g
         FROM generate_series(1, $3) g, (VALUES (0), (1)) AS s (side)",
    )
    .bind(bench.accounts.as_slice())
    .bind(i64::try_from(bench.accounts.len())?)
    .bind(transactions)
    .execute(&mut *tx)
    .await?;
    // Every bench account is an asset: a debit adds to its balance.
    sqlx::query(
        "INSERT INTO entries (id, transaction_id, position, account_id, direction, amount, currency,
                              entry_number, balance_after)
         SELECT l.id, l.transaction_id, l.position, l.account_id, l.direction, l.amount, 'usd',
                b.entry_count + row_number() OVER w,
                b.balance + sum(CASE l.direction WHEN 'debit' THEN l.amount ELSE -l.amount END) OVER w
         FROM preload_legs l JOIN account_balances b ON b.account_id = l.account_id
         WINDOW w AS (PARTITION BY l.account_id ORDER BY l.g, l.position)",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE account_balances b
         SET balance = b.balance + s.change, entry_count = b.entry_count + s.n, version = b.version + s.n
         FROM (SELECT account_id, count(*) AS n,
                      sum(CASE direction WHEN 'debit' THEN amount ELSE -amount END) AS change
               FROM preload_legs GROUP BY account_id) s
         WHERE b.account_id = s.account_id",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    for table in ["transactions", "entries", "account_balances"] {
        sqlx::query(&format!("VACUUM ANALYZE {table}"))
            .execute(&mut db)
            .await?;
    }
    Ok(())
}

async fn run_growth(args: &Args, entries: u64) -> anyhow::Result<()> {
    let bench = start(args).await?;
    let account = bench.accounts.first().context("an account")?.clone();
    let empty = bench.postings(args, "empty").await?;
    let empty_pages = page_latency(&bench, &account).await?;
    let started = Instant::now();
    preload(&bench, entries).await?;
    let loaded_in = started.elapsed().as_secs_f64();
    let grown = bench.postings(args, "grown").await?;
    let grown_pages = page_latency(&bench, &account).await?;
    bench.check_books().await?;
    bench.stop().await;

    let within = |ratio: f64| {
        if (0.8..).contains(&ratio) {
            "within 20%"
        } else {
            "NOT within 20%"
        }
    };
    println!(
        "growth:   {} clients, {} accounts, {} s per run; {entries} entries preloaded in {loaded_in:.1} s",
        args.clients, args.accounts, args.seconds
    );
    println!(
        "empty:    {:>8.1} tx/s  p50 {:.2} ms p99 {:.2} ms | entry page ({} entries): newest p50 {:.2} ms p99 {:.2} ms, middle p50 {:.2} ms p99 {:.2} ms",
        empty.throughput,
        empty.p50_ms,
        empty.p99_ms,
        empty_pages.entries,
        empty_pages.first_p50,
        empty_pages.first_p99,
        empty_pages.deep_p50,
        empty_pages.deep_p99
    );
    println!(
        "grown:    {:>8.1} tx/s  p50 {:.2} ms p99 {:.2} ms | entry page ({} entries): newest p50 {:.2} ms p99 {:.2} ms, middle p50 {:.2} ms p99 {:.2} ms",
        grown.throughput,
        grown.p50_ms,
        grown.p99_ms,
        grown_pages.entries,
        grown_pages.first_p50,
        grown_pages.first_p99,
        grown_pages.deep_p50,
        grown_pages.deep_p99
    );
    let postings = grown.throughput / empty.throughput;
    let newest = empty_pages.first_p50 / grown_pages.first_p50;
    let middle = empty_pages.deep_p50 / grown_pages.deep_p50;
    println!(
        "ratio:    postings {postings:.2} ({}), newest page p50 {newest:.2} ({}), middle page p50 {middle:.2} ({}) grown/empty speed",
        within(postings),
        within(newest),
        within(middle)
    );
    Ok(())
}

/// Runs `clients` posting loops until `duration` passes; returns every latency.
async fn run_clients(
    client: &Arc<Client>,
    accounts: &Arc<Vec<String>>,
    clients: usize,
    duration: Duration,
    run: &'static str,
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
                    "reference": format!("{run}-{phase}-{worker}-{sequence}"),
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

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let request = self.http.get(format!("{}{path}", self.base));
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
