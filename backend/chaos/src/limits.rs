//! Limits under load, on the platform as separate processes like the
//! faults: many event streams held open on one gateway replica (its memory
//! per stream, and every event on every stream, in order), then a flood of
//! invalid API keys at the other replica (how often auth was asked, against
//! what the gateway's negative cache and per-address failure budget allow).
//! A client that reads nothing is covered by the stack's stream tests
//! (12,000 events of 2 KiB): cutting it off needs more bytes than this run's
//! payments make.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::cluster::{self, Binaries, Platform};
use crate::db;
use crate::load::{self, Owner};

/// The per-address failure budget of the flooded gateway: what stops one
/// address from making auth look up one key after another.
const FAILURES_PER_MINUTE: u32 = 600;
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Streams held open on gateway 0, spread evenly over the owners.
    pub streams: usize,
    pub owners: usize,
    /// Payments created and confirmed per owner while the streams are open.
    pub payments_per_owner: usize,
    /// How long each of the two floods lasts: under the gateway's 10 s
    /// memory of an invalid key, so that one key is looked up once.
    pub flood: Duration,
    /// Concurrent connections of each flood.
    pub flood_clients: usize,
    pub ready_deadline: Duration,
    /// For every stream to have every event of its owner.
    pub delivery_deadline: Duration,
}

impl LimitSettings {
    pub fn full() -> Self {
        Self {
            streams: 2000,
            owners: 20,
            payments_per_owner: 10,
            flood: Duration::from_secs(8),
            flood_clients: 64,
            ready_deadline: Duration::from_secs(60),
            delivery_deadline: Duration::from_secs(60),
        }
    }

    pub fn quick() -> Self {
        Self {
            streams: 400,
            owners: 4,
            payments_per_owner: 5,
            flood: Duration::from_secs(3),
            flood_clients: 16,
            ready_deadline: Duration::from_secs(60),
            delivery_deadline: Duration::from_secs(60),
        }
    }

    fn streams_per_owner(&self) -> usize {
        self.streams.div_ceil(self.owners.max(1))
    }
}

/// What one stream saw.
#[derive(Debug, Default)]
struct Seen {
    ready: bool,
    sequences: Vec<i64>,
    /// Why it ended, if it did.
    ended: Option<String>,
}

struct OpenStream {
    owner: usize,
    seen: Arc<Mutex<Seen>>,
}

impl OpenStream {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The gateway's resident memory and open descriptors, from /proc.
fn footprint(pid: u32) -> anyhow::Result<(u64, usize)> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading the gateway's status")?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in the gateway's status")?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .context("listing the gateway's descriptors")?
        .count();
    Ok((rss_kib, fds))
}

/// One flood's outcome.
#[derive(Debug, Default)]
struct Flood {
    sent: u64,
    unauthorized: u64,
    limited: u64,
    other: Vec<String>,
    /// Keys auth was asked about during the flood, from the gateway's metrics.
    lookups: u64,
    elapsed: Duration,
}

pub async fn run(binaries: &Binaries, settings: &LimitSettings, keep_logs: bool) -> anyhow::Result<bool> {
    let (dir, logs) = cluster::run_directory("micro-limits-")?;
    println!(
        "micro-chaos limits: {} streams over {} owners on gateway 0, floods of invalid keys at gateway 1; logs in {}",
        settings.streams,
        settings.owners,
        logs.display()
    );
    let per_owner = settings.streams_per_owner().to_string();
    let overrides = [
        ("STREAMS_PER_KEY_MAX", per_owner),
        ("AUTH_FAILURES_PER_MINUTE", FAILURES_PER_MINUTE.to_string()),
    ];
    let mut platform =
        Platform::start(dir.path(), &logs, binaries, settings.ready_deadline, &overrides).await?;
    let outcome = run_on(&platform, settings).await;
    platform.stop().await;
    let passed = match outcome {
        Ok(problems) if problems.is_empty() => {
            println!("micro-chaos limits: passed");
            true
        }
        Ok(problems) => {
            println!("micro-chaos limits: FAILED:");
            for problem in problems.iter().take(30) {
                println!("  {problem}");
            }
            false
        }
        Err(e) => {
            println!("micro-chaos limits: FAILED: {e:#}");
            false
        }
    };
    if passed && !keep_logs {
        drop(dir);
    } else {
        println!(
            "micro-chaos limits: logs kept in {}",
            dir.keep().join("logs").display()
        );
    }
    Ok(passed)
}

async fn run_on(platform: &Platform, settings: &LimitSettings) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut owners = Vec::new();
    for index in 0..settings.owners {
        owners.push(load::register(&http, &platform.gateways[1].url(), index, &run_id[..8]).await?);
    }
    let pid = platform.gateways[0].pid().context("gateway 0 is not running")?;

    // Streams.
    let (rss_before, fds_before) = footprint(pid)?;
    let opened = Instant::now();
    let streams = open_streams(&platform.gateways[0].url(), &owners, settings).await?;
    wait_for(settings.ready_deadline, || streams.iter().all(|s| s.seen().ready))
        .await
        .context("waiting for every stream's ready frame")?;
    let open_time = opened.elapsed();
    let (rss_open, fds_open) = footprint(pid)?;

    let paid = Instant::now();
    pay(
        &http,
        &platform.gateways[1].url(),
        &owners,
        settings.payments_per_owner,
    )
    .await?;
    let payments_time = paid.elapsed();
    let payments_db = db::pool(&platform.postgres.url("micro_payments")).await?;
    let mut expected: HashMap<usize, Vec<i64>> = HashMap::new();
    let index_of: HashMap<&str, usize> = owners.iter().map(|o| (o.user_id.as_str(), o.index)).collect();
    for (owner_id, _, sequence) in db::events(&payments_db).await? {
        if let Some(&owner) = index_of.get(owner_id.as_str()) {
            expected.entry(owner).or_default().push(sequence);
        }
    }
    payments_db.close().await;
    for sequences in expected.values_mut() {
        sequences.sort_unstable();
    }
    let delivered_in = wait_for(settings.delivery_deadline, || {
        streams.iter().all(|s| {
            let wanted = expected.get(&s.owner).map_or(0, Vec::len);
            s.seen().sequences.len() >= wanted
        })
    })
    .await;
    let (rss_delivered, _) = footprint(pid)?;
    let mut in_order = 0;
    for (i, stream) in streams.iter().enumerate() {
        let seen = stream.seen();
        let wanted = expected.get(&stream.owner).cloned().unwrap_or_default();
        if seen.sequences == wanted {
            in_order += 1;
        } else {
            problems.push(format!(
                "stream {i} (owner {}): got {} events, wanted {}{}{}",
                stream.owner,
                seen.sequences.len(),
                wanted.len(),
                if is_increasing(&seen.sequences) {
                    ""
                } else {
                    ", out of order"
                },
                seen.ended
                    .as_deref()
                    .map(|e| format!(", ended: {e}"))
                    .unwrap_or_default()
            ));
        }
    }
    if let Err(e) = &delivered_in {
        problems.push(format!("not every stream had every event: {e:#}"));
    }
    let events: usize = expected.values().map(Vec::len).sum();
    let per_stream = |kib: u64| kib as f64 / streams.len().max(1) as f64;
    println!("\n| streams on gateway 0 | figure |\n|---|---|");
    println!(
        "| streams open | {} ({} owners × {}) |",
        streams.len(),
        owners.len(),
        settings.streams_per_owner()
    );
    println!(
        "| time to open all and get their ready frames | {:.2} s |",
        open_time.as_secs_f64()
    );
    println!(
        "| gateway resident memory: before, streams open, after delivery | {:.1} MiB, {:.1} MiB, {:.1} MiB |",
        rss_before as f64 / 1024.0,
        rss_open as f64 / 1024.0,
        rss_delivered as f64 / 1024.0
    );
    println!(
        "| memory per open stream | {:.1} KiB |",
        per_stream(rss_open.saturating_sub(rss_before))
    );
    println!("| gateway descriptors: before, streams open | {fds_before}, {fds_open} |");
    println!(
        "| events made (create + confirm of {} payments each, {:.1} s) | {events} |",
        settings.payments_per_owner,
        payments_time.as_secs_f64()
    );
    println!(
        "| frames to deliver, streams with every event in order | {}, {in_order} of {} |",
        streams
            .iter()
            .map(|s| expected.get(&s.owner).map_or(0, Vec::len))
            .sum::<usize>(),
        streams.len()
    );
    println!(
        "| from the last confirm's answer to every frame delivered | {} |",
        delivered_in.map_or_else(
            |_| "not within the deadline".to_owned(),
            |d| format!("{:.2} s", d.as_secs_f64())
        )
    );
    drop(streams);

    // Floods.
    let gateway = platform.gateways[1].url();
    let metrics = format!("http://{}/metrics", platform.gateway_metrics[1]);
    // Each flood from an address of its own (all of 127/8 is loopback), so
    // that the second does not start with the first's failure budget spent.
    let repeated = format!("sk_test_{}", "0".repeat(48));
    let same = flood(&gateway, &metrics, settings, [127, 0, 0, 2], move |_| {
        repeated.clone()
    })
    .await?;
    let distinct = flood(&gateway, &metrics, settings, [127, 0, 0, 3], |_| {
        format!("sk_test_{}", uuid::Uuid::new_v4().simple())
    })
    .await?;
    println!(
        "\n| flood of invalid keys at gateway 1 | one key, repeated | a new key each time |\n|---|---|---|"
    );
    println!(
        "| requests, rate | {}, {:.0}/s | {}, {:.0}/s |",
        same.sent,
        rate(&same),
        distinct.sent,
        rate(&distinct)
    );
    println!(
        "| 401 invalid_api_key / 429 | {} / {} | {} / {} |",
        same.unauthorized, same.limited, distinct.unauthorized, distinct.limited
    );
    println!(
        "| keys auth was asked about | {} | {} |",
        same.lookups, distinct.lookups
    );
    // Fixed windows of a minute: a flood can span two of them. The budget is
    // looked at before a lookup and spent after it, so in each window the
    // requests in flight when it runs out can pass it by up to their number
    // (docs/reliability.md).
    let windows = 1 + distinct.elapsed.as_secs().div_ceil(60);
    let in_flight = settings.flood_clients as u64;
    let budget = (u64::from(FAILURES_PER_MINUTE) + in_flight) * windows;
    println!(
        "| what the gateway allows | 1 (negative cache) | {budget} ({FAILURES_PER_MINUTE} failures a minute per address and {in_flight} in flight, {windows} windows) |"
    );
    if same.lookups > 1 {
        problems.push(format!(
            "one invalid key sent {} times made auth look it up {} times; the negative cache allows 1",
            same.sent, same.lookups
        ));
    }
    if distinct.lookups > budget {
        problems.push(format!(
            "{} distinct invalid keys from one address made auth look up {}; the failure budget allows {budget}",
            distinct.sent, distinct.lookups
        ));
    }
    for flood in [&same, &distinct] {
        problems.extend(
            flood
                .other
                .iter()
                .take(5)
                .map(|o| format!("flood: unexpected answer {o}")),
        );
        if flood.unauthorized == 0 {
            problems.push("flood: no request was answered 401".into());
        }
    }
    if distinct.limited == 0 && distinct.sent > budget {
        problems.push("flood: more failures than the budget, and no 429".into());
    }
    Ok(problems)
}

fn rate(flood: &Flood) -> f64 {
    flood.sent as f64 / flood.elapsed.as_secs_f64().max(f64::EPSILON)
}

fn is_increasing(sequences: &[i64]) -> bool {
    sequences.windows(2).all(|pair| pair[0] < pair[1])
}

async fn wait_for(deadline: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if done() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= deadline {
            bail!("not within {deadline:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn open_streams(
    gateway: &str,
    owners: &[Owner],
    settings: &LimitSettings,
) -> anyhow::Result<Vec<OpenStream>> {
    let api = client::Client::new(gateway)?;
    let opening = Arc::new(Semaphore::new(64));
    let mut handles = Vec::new();
    for owner in owners {
        for _ in 0..settings.streams_per_owner() {
            if handles.len() == settings.streams {
                break;
            }
            let (api, key, opening) = (api.clone(), owner.api_key.clone(), opening.clone());
            let seen = Arc::new(Mutex::new(Seen::default()));
            let record = seen.clone();
            handles.push((
                owner.index,
                seen,
                tokio::spawn(async move {
                    let permit = opening.acquire_owned().await;
                    let mut stream = api
                        .open_stream(&key, &client::StreamOptions::default())
                        .await
                        .map_err(|e| anyhow::anyhow!("opening a stream: {e}"))?;
                    drop(permit);
                    tokio::spawn(async move {
                        while let Some(frame) = stream.next().await {
                            let mut seen = record.lock().unwrap_or_else(PoisonError::into_inner);
                            match frame {
                                Ok(client::Frame::Ready { .. }) => seen.ready = true,
                                Ok(client::Frame::Event { event, .. }) => seen.sequences.push(event.sequence),
                                Err(e) => {
                                    seen.ended = Some(e.to_string());
                                    return;
                                }
                            }
                        }
                    });
                    anyhow::Ok(())
                }),
            ));
        }
    }
    let mut streams = Vec::new();
    for (owner, seen, handle) in handles {
        handle.await.context("a stream's task")??;
        streams.push(OpenStream { owner, seen });
    }
    Ok(streams)
}

/// Every owner's payments, owners in parallel, each owner's one after another.
async fn pay(http: &reqwest::Client, gateway: &str, owners: &[Owner], count: usize) -> anyhow::Result<()> {
    let payments = owners.iter().map(|owner| async move {
        for _ in 0..count {
            let created = send(
                http,
                gateway,
                owner,
                "/v1/payments",
                json!({"amount": 1234, "currency": "usd"}),
            )
            .await?;
            let id = created["id"].as_str().context("a payment without an id")?;
            send(
                http,
                gateway,
                owner,
                &format!("/v1/payments/{id}/confirm"),
                json!({"payment_method": "pm_card_visa"}),
            )
            .await?;
        }
        anyhow::Ok(())
    });
    for result in futures::future::join_all(payments).await {
        result?;
    }
    Ok(())
}

async fn send(
    http: &reqwest::Client,
    gateway: &str,
    owner: &Owner,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let response = http
        .post(format!("{gateway}{path}"))
        .bearer_auth(&owner.api_key)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("POST {path}: {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("POST {path}: not JSON"))
}

/// Keys auth has been asked about and refused, from the gateway's metrics.
async fn invalid_lookups(http: &reqwest::Client, metrics: &str) -> anyhow::Result<u64> {
    let text = http.get(metrics).send().await?.text().await?;
    Ok(text
        .lines()
        .filter(|line| {
            line.starts_with("gateway_api_key_verifications_total") && line.contains("outcome=\"invalid\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

/// `flood_clients` connections from the address `from` sending GETs with
/// `key(i)` as fast as the answers come, for `settings.flood`.
async fn flood(
    gateway: &str,
    metrics: &str,
    settings: &LimitSettings,
    from: [u8; 4],
    key: impl Fn(u64) -> String + Send + Sync + 'static,
) -> anyhow::Result<Flood> {
    let http = &reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(from))
        .timeout(Duration::from_secs(20))
        .build()?;
    let before = invalid_lookups(http, metrics).await?;
    let key = Arc::new(key);
    let started = Instant::now();
    let clients = (0..settings.flood_clients).map(|_| {
        let (http, key, url) = (http.clone(), key.clone(), format!("{gateway}/v1/payments"));
        let until = started + settings.flood;
        tokio::spawn(async move {
            let mut flood = Flood::default();
            while Instant::now() < until {
                let answer = http.get(&url).bearer_auth(key(flood.sent)).send().await;
                flood.sent += 1;
                match answer.map(|r| r.status().as_u16()) {
                    Ok(401) => flood.unauthorized += 1,
                    Ok(429) => flood.limited += 1,
                    Ok(status) => flood.other.push(status.to_string()),
                    Err(e) => flood.other.push(e.to_string()),
                }
            }
            flood
        })
    });
    let mut total = Flood::default();
    for client in futures::future::join_all(clients).await {
        let flood = client.context("a flood client")?;
        total.sent += flood.sent;
        total.unauthorized += flood.unauthorized;
        total.limited += flood.limited;
        total.other.extend(flood.other);
    }
    total.elapsed = started.elapsed();
    total.lookups = invalid_lookups(http, metrics).await?.saturating_sub(before);
    Ok(total)
}
