//! The ledger soak: many clients at once post random journals, reverse them,
//! retry them, reuse their references and try to overdraw guarded accounts
//! through the HTTP API; every answer is judged as it comes, and afterwards
//! the books are checked in SQL and against what the clients saw accepted.
//!
//! Shared by the `ledger-soak` binary (a long run on a database of its own)
//! and a bounded run in the test suite. The caller starts the ledger; the
//! soak needs its address, the internal token secret and a pool on its
//! database, which it expects to be otherwise empty.

mod checks;
mod client;
mod plan;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::ledger::{AccountType, Direction};
use platform::internal_token::{Caller, InternalTokens};
use serde_json::json;
use sqlx::PgPool;

pub use checks::{Check, book_checks};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoakConfig {
    /// Posting requests in all: new postings, their concurrent and later
    /// copies, reversals and reused references.
    pub postings: usize,
    /// Clients posting at once.
    pub clients: usize,
    /// Draws the plan: the same seed gives the same requests in each client.
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error("building the HTTP client")]
    Client(#[from] reqwest::Error),
    #[error("creating the soak's account {name:?}: {answer}")]
    Setup { name: String, answer: String },
    #[error("reading the books back")]
    Database(#[from] sqlx::Error),
    #[error("a soak client stopped")]
    Task(#[from] tokio::task::JoinError),
}

/// Counts of requests and answers over the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub attempted: u64,
    /// 201: a new transaction.
    pub created: u64,
    /// 200: an earlier transaction answered again.
    pub replayed: u64,
    /// Every other answer, by error code (or status).
    pub refused: BTreeMap<String, u64>,
    /// Answers other than the one the rules call for.
    pub unexpected: u64,
    /// An earlier posting or reversal sent again later, unchanged.
    pub retries: u64,
    /// Requests sent while an identical (or rival) one was in flight.
    pub concurrent_copies: u64,
    /// An earlier reference sent with a different posting.
    pub reuses: u64,
    pub reversals: u64,
    pub reversals_created: u64,
    /// Postings built to overdraw a guarded account.
    pub overdrafts: u64,
    /// Operations left out because an earlier answer went wrong.
    pub skipped: u64,
}

impl Stats {
    fn count(&mut self, answer: &client::Answer) {
        self.attempted += 1;
        match answer.status() {
            Some(201) => self.created += 1,
            Some(200) => self.replayed += 1,
            status => {
                let reason = match (status, answer.body()["error"]["code"].as_str()) {
                    (_, Some(code)) => code.to_owned(),
                    (Some(status), None) => format!("status {status}"),
                    (None, None) => "no answer".to_owned(),
                };
                *self.refused.entry(reason).or_default() += 1;
            }
        }
    }

    fn add(&mut self, other: &Stats) {
        self.attempted += other.attempted;
        self.created += other.created;
        self.replayed += other.replayed;
        for (reason, n) in &other.refused {
            *self.refused.entry(reason.clone()).or_default() += n;
        }
        self.unexpected += other.unexpected;
        self.retries += other.retries;
        self.concurrent_copies += other.concurrent_copies;
        self.reuses += other.reuses;
        self.reversals += other.reversals;
        self.reversals_created += other.reversals_created;
        self.overdrafts += other.overdrafts;
        self.skipped += other.skipped;
    }
}

/// A transaction a client saw the ledger accept, with the legs it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModelTransaction {
    pub id: String,
    pub poster: String,
    pub reference: String,
    pub reverses: Option<String>,
    pub legs: Vec<(String, Direction, i64)>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub config: SoakConfig,
    pub stats: Stats,
    /// The posting phase only, from the first request to the last answer.
    pub duration: Duration,
    pub checks: Vec<Check>,
    /// The first unexpected answers, described.
    pub problems: Vec<String>,
}

impl Report {
    /// Unexpected answers plus failed invariant checks.
    pub fn violations(&self) -> u64 {
        self.stats.unexpected + self.checks.iter().filter(|c| !c.passed()).count() as u64
    }

    pub fn postings_per_second(&self) -> f64 {
        self.stats.attempted as f64 / self.duration.as_secs_f64().max(f64::EPSILON)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        let SoakConfig {
            postings,
            clients,
            seed,
        } = &self.config;
        writeln!(
            f,
            "ledger soak: {postings} postings, {clients} clients, seed {seed}"
        )?;
        writeln!(f, "  attempted                {:>8}", s.attempted)?;
        writeln!(f, "  accepted (201)           {:>8}", s.created)?;
        writeln!(f, "  answered again (200)     {:>8}", s.replayed)?;
        let refused: u64 = s.refused.values().sum();
        writeln!(f, "  refused                  {refused:>8}")?;
        for (reason, n) in &s.refused {
            writeln!(f, "    {reason:<22} {n:>8}")?;
        }
        writeln!(f, "  retries (sequential)     {:>8}", s.retries)?;
        writeln!(f, "  sent concurrently        {:>8}", s.concurrent_copies)?;
        writeln!(f, "  references reused        {:>8}", s.reuses)?;
        writeln!(
            f,
            "  reversals                {:>8}  ({} made)",
            s.reversals, s.reversals_created
        )?;
        writeln!(f, "  overdraft attempts       {:>8}", s.overdrafts)?;
        if s.skipped > 0 {
            writeln!(f, "  skipped                  {:>8}", s.skipped)?;
        }
        writeln!(f, "  unexpected answers       {:>8}", s.unexpected)?;
        writeln!(
            f,
            "  duration                 {:>8.1} s",
            self.duration.as_secs_f64()
        )?;
        writeln!(
            f,
            "  postings/s               {:>8.0}",
            self.postings_per_second()
        )?;
        let passed = self.checks.iter().filter(|c| c.passed()).count();
        writeln!(
            f,
            "  invariant checks         {passed:>4}/{:<3} passed",
            self.checks.len()
        )?;
        for check in &self.checks {
            let mark = if check.passed() { "ok  " } else { "FAIL" };
            writeln!(f, "    {mark} {}", check.name)?;
            for example in &check.examples {
                writeln!(f, "           {example}")?;
            }
            if check.offending > check.examples.len() as u64 {
                writeln!(f, "           ... {} in all", check.offending)?;
            }
        }
        for problem in &self.problems {
            writeln!(f, "  unexpected: {problem}")?;
        }
        writeln!(f, "  violations               {:>8}", self.violations())
    }
}

/// Unexpected answers the report describes; all are counted.
const PROBLEMS_SHOWN: usize = 20;

/// Users the clients post as: two, so that each reference is used under two
/// posters and concurrency still meets on shared accounts.
const USERS: usize = 2;

/// Runs the soak against the ledger at `base` (which signs nothing itself:
/// requests carry internal tokens made with `tokens`), then checks the books
/// through `db`.
pub async fn run(
    base: &str,
    tokens: InternalTokens,
    db: &PgPool,
    config: &SoakConfig,
) -> Result<Report, SoakError> {
    let clients = config.clients.max(1);
    let http = Arc::new(client::Http {
        base: base.trim_end_matches('/').to_owned(),
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(clients * 2)
            .timeout(Duration::from_secs(60))
            .build()?,
        tokens,
    });
    let users = clients.min(USERS);
    let plans: Vec<Vec<plan::Op>> = (0..clients)
        .map(|client| {
            let share = config.postings / clients + usize::from(client < config.postings % clients);
            plan::client_plan(config.seed, client, share)
        })
        .collect();

    let mut kinds: HashMap<String, AccountType> = HashMap::new();
    let mut desks = Vec::with_capacity(clients);
    let mut charts = Vec::with_capacity(users);
    for user in 0..users {
        let user_id = format!("usr_soak{user}");
        let caller = Caller::api_key(&user_id, format!("key_soak{user}"));
        let mut chart = Vec::with_capacity(plan::CHART.len());
        for (name, kind, currency) in plan::CHART {
            chart.push(create_account(&http, &caller, name, kind, currency, false, &mut kinds).await?);
        }
        let pool = create_account(
            &http,
            &caller,
            "pool",
            AccountType::Asset,
            "usd",
            true,
            &mut kinds,
        )
        .await?;
        let capacity = plan::pool_capacity(plans.iter().skip(user).step_by(users));
        charts.push((user_id, caller, Arc::new(chart), pool, capacity));
    }
    for client in 0..clients {
        let (user_id, caller, chart, pool, capacity) = &charts[client % users];
        let wallet = format!("wallet {client}");
        let deposits = format!("deposits {client}");
        desks.push(client::Desk {
            user: user_id.clone(),
            caller: caller.clone(),
            prefix: format!("soak{}", client / users),
            chart: chart.clone(),
            pool: pool.clone(),
            wallet: create_account(
                &http,
                caller,
                &wallet,
                AccountType::Asset,
                "usd",
                true,
                &mut kinds,
            )
            .await?,
            deposits: create_account(
                &http,
                caller,
                &deposits,
                AccountType::Liability,
                "eur",
                true,
                &mut kinds,
            )
            .await?,
            pool_capacity: *capacity,
        });
    }

    let started = Instant::now();
    let tasks: Vec<_> = desks
        .into_iter()
        .zip(plans)
        .map(|(desk, plan)| tokio::spawn(client::run(http.clone(), desk, plan)))
        .collect();
    let mut stats = Stats::default();
    let mut accepted = Vec::new();
    let mut problems = Vec::new();
    for task in tasks {
        let outcome = task.await?;
        stats.add(&outcome.stats);
        accepted.extend(outcome.accepted);
        problems.extend(outcome.problems);
    }
    let duration = started.elapsed();
    problems.truncate(PROBLEMS_SHOWN);

    let checks = checks::run(db, &accepted, &kinds).await?;
    Ok(Report {
        config: config.clone(),
        stats,
        duration,
        checks,
        problems,
    })
}

async fn create_account(
    http: &client::Http,
    caller: &Caller,
    name: &str,
    kind: AccountType,
    currency: &str,
    guarded: bool,
    kinds: &mut HashMap<String, AccountType>,
) -> Result<String, SoakError> {
    let body = json!({
        "name": name, "type": kind, "currency": currency, "must_not_go_negative": guarded,
    });
    let answer = http.post(caller, "/v1/ledger/accounts", &body).await;
    match (answer.status(), answer.body()["id"].as_str()) {
        (Some(201), Some(id)) => {
            kinds.insert(id.to_owned(), kind);
            Ok(id.to_owned())
        }
        _ => Err(SoakError::Setup {
            name: name.to_owned(),
            answer: format!("{answer:?}"),
        }),
    }
}
