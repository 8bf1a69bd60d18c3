//! `bench-listen`: how long after a payment's confirm returns does the local
//! receiver get the signed `payment.succeeded`? The whole stack runs
//! in-process on fresh databases; the listen core forwards to a receiver on
//! loopback. Beside it, a raw Redis PUBLISH -> subscriber round trip at the
//! same rate, as the floor any event path sits on.
//!
//! `bench-listen [payments] [per-second]` (defaults: 1000 at 50/s).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use client::Client;
use contract::auth::Credentials;
use contract::events::EventType;
use contract::payments::CreatePaymentRequest;
use futures::StreamExt;
use micro::listen::{self, ListenOptions, ListenUpdate};
use stack::testing::TestStack;
use tokio::sync::mpsc;

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// Records when each payment's `payment.succeeded` arrived.
async fn receive(State(arrivals): State<(Arrivals, mpsc::UnboundedSender<()>)>, body: Bytes) -> &'static str {
    let at = Instant::now();
    if let Ok(event) = serde_json::from_slice::<contract::events::Event>(&body)
        && event.kind == EventType::PaymentSucceeded
        && let Some(id) = event.data.object["id"].as_str()
    {
        if let Ok(mut map) = arrivals.0.lock() {
            map.insert(id.to_owned(), at);
        }
        let _ = arrivals.1.send(());
    }
    "ok"
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(name: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    println!(
        "{name:<44} n={:<5} p50={:>8.3} ms  p99={:>8.3} ms  max={:>8.3} ms",
        samples.len(),
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        samples.last().copied().unwrap_or(f64::NAN)
    );
}

fn millis(from: Instant, to: Instant) -> f64 {
    if to >= from {
        (to - from).as_secs_f64() * 1000.0
    } else {
        -((from - to).as_secs_f64() * 1000.0)
    }
}

async fn redis_round_trip(url: &str, count: usize, every: Duration) -> anyhow::Result<Vec<f64>> {
    let client = redis::Client::open(url)?;
    let mut publisher = client.get_multiplexed_async_connection().await?;
    let mut pubsub = client.get_async_pubsub().await?;
    let channel = format!("bench-listen:{}", uuid::Uuid::new_v4());
    pubsub.subscribe(&channel).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        let mut messages = pubsub.on_message();
        while let Some(_message) = messages.next().await {
            if tx.send(Instant::now()).is_err() {
                break;
            }
        }
    });
    let mut samples = Vec::with_capacity(count);
    let mut tick = tokio::time::interval(every);
    for i in 0..count {
        tick.tick().await;
        let sent = Instant::now();
        let () = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(format!("message {i}"))
            .query_async::<i64>(&mut publisher)
            .await
            .map(|_| ())?;
        let received = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .context("no message within 5 s")?
            .context("subscriber ended")?;
        samples.push(millis(sent, received));
    }
    reader.abort();
    Ok(samples)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let rate: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50);
    let every = Duration::from_micros(1_000_000 / rate.max(1));

    // 2 requests a payment at any rate the bench asks for: lift the per-key budget.
    let stack = TestStack::start_with(|c| c.gateway.rate_limit_per_minute = 1_000_000).await;
    let api = Client::new(&stack.gateway_url())?;
    let credentials = Credentials {
        email: "bench@example.com".into(),
        password: "correct horse battery".into(),
    };
    api.register(&credentials).await?;
    let tokens = api.login(&credentials).await?.into_value();
    let key = api
        .create_api_key(&tokens.access_token, "bench")
        .await?
        .into_value()
        .key;

    let arrivals: Arrivals = Arc::default();
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel();
    let app = Router::new()
        .route("/webhook", post(receive))
        .with_state((arrivals.clone(), arrived_tx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let target = format!("http://{}/webhook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let options = ListenOptions {
        types: vec![EventType::PaymentSucceeded],
        ..ListenOptions::forwarding_to(Some(target.parse()?))
    };
    let (handle, mut updates) = listen::start(api.clone(), key.clone(), options).await?;
    let frames: Arrivals = Arc::default();
    let frames_writer = frames.clone();
    let (live_tx, mut live) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(update) = updates.recv().await {
            match update {
                ListenUpdate::Stream(listen::StreamState::Live { .. }) => {
                    let _ = live_tx.send(());
                }
                ListenUpdate::Event(event) => {
                    let at = Instant::now();
                    if let Ok(parsed) = serde_json::from_slice::<contract::events::Event>(&event.raw)
                        && let (Some(id), Ok(mut map)) =
                            (parsed.data.object["id"].as_str(), frames_writer.lock())
                    {
                        map.insert(id.to_owned(), at);
                    }
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), live.recv())
        .await
        .context("the stream did not go live")?;

    eprintln!("{count} payments at {rate}/s ...");
    let mut confirmed: Vec<(String, Instant)> = Vec::with_capacity(count);
    let mut tick = tokio::time::interval(every);
    let request = CreatePaymentRequest {
        amount: 1000,
        currency: "usd".into(),
        ..Default::default()
    };
    for _ in 0..count {
        tick.tick().await;
        let payment = api.create_payment(&key, &request, None).await?.into_value();
        api.confirm_payment(&key, &payment.id, "pm_card_visa", None)
            .await?;
        confirmed.push((payment.id, Instant::now()));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut received = 0;
    while received < count && Instant::now() < deadline {
        if tokio::time::timeout(Duration::from_secs(5), arrived.recv())
            .await
            .is_err()
        {
            break;
        }
        received += 1;
    }
    handle.shutdown();

    let (arrivals, frames) = (
        arrivals.lock().map(|m| m.clone()).unwrap_or_default(),
        frames.lock().map(|m| m.clone()).unwrap_or_default(),
    );
    let mut end_to_end = Vec::new();
    let mut to_frame = Vec::new();
    let mut own = Vec::new();
    for (id, at) in &confirmed {
        if let Some(arrived) = arrivals.get(id) {
            end_to_end.push(millis(*at, *arrived));
            if let Some(frame) = frames.get(id) {
                own.push(millis(*frame, *arrived));
            }
        }
        if let Some(frame) = frames.get(id) {
            to_frame.push(millis(*at, *frame));
        }
    }
    let redis = redis_round_trip(&stack.config.gateway.redis.url, count, every).await?;

    println!("bench-listen: {count} payments at {rate}/s, loopback");
    summary("confirm returned -> receiver got signed POST", end_to_end);
    summary("confirm returned -> stream frame in micro", to_frame);
    summary("stream frame -> receiver (micro's own part)", own);
    summary("raw Redis PUBLISH -> subscriber", redis);
    if received < count {
        println!(
            "missing: {} of {count} deliveries did not arrive",
            count - received
        );
    }
    Ok(())
}
