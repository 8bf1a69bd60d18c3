//! The local server every `micro listen` forwards to: one path per owner,
//! each body recorded in arrival order. It verifies nothing; the listeners
//! are what is under test, and their signatures have tests of their own.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use tokio::sync::Notify;

use crate::check::Arrival;

struct Shared {
    clock: Instant,
    arrivals: Mutex<Vec<Arrival>>,
    /// Bodies that were not an event, with the owner they came for.
    malformed: Mutex<Vec<String>>,
    arrived: Notify,
}

pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn parse(owner: usize, body: &[u8], at: Duration) -> Option<Arrival> {
    let event: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(Arrival {
        owner,
        id: event["id"].as_str()?.to_owned(),
        sequence: event["sequence"].as_i64()?,
        event_type: event["type"].as_str()?.to_owned(),
        object_id: event["data"]["object"]["id"].as_str()?.to_owned(),
        at,
    })
}

async fn hook(State(shared): State<Arc<Shared>>, Path(owner): Path<usize>, body: Bytes) -> StatusCode {
    let at = shared.clock.elapsed();
    match parse(owner, &body, at) {
        Some(arrival) => shared
            .arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(arrival),
        None => shared
            .malformed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(format!("owner {owner}: {}", String::from_utf8_lossy(&body))),
    }
    shared.arrived.notify_waiters();
    StatusCode::OK
}

impl Receiver {
    /// `clock` is the run's start, from which arrival times count.
    pub async fn start(clock: Instant) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            clock,
            arrivals: Mutex::new(Vec::new()),
            malformed: Mutex::new(Vec::new()),
            arrived: Notify::new(),
        });
        let app = Router::new()
            .route("/hooks/{owner}", post(hook))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    pub fn url(&self, owner: usize) -> String {
        format!("http://{}/hooks/{owner}", self.addr)
    }

    pub fn arrivals(&self) -> Vec<Arrival> {
        self.shared
            .arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn count(&self) -> usize {
        self.shared
            .arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn malformed(&self) -> Vec<String> {
        self.shared
            .malformed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `done` holds for the arrivals, or the deadline passes.
    pub async fn wait_until(&self, deadline: Duration, mut done: impl FnMut(&[Arrival]) -> bool) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            // Registered before looking, so an arrival in between still wakes us.
            let arrived = self.shared.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            {
                let arrivals = self
                    .shared
                    .arrivals
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if done(&arrivals) {
                    return true;
                }
            }
            if tokio::time::timeout_at(until, arrived).await.is_err() {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, sequence: i64) -> String {
        serde_json::json!({
            "id": id, "object": "event", "type": "payment.created", "sequence": sequence,
            "created_at": "2026-01-01T00:00:00Z", "data": {"object": {"id": "pay_1", "object": "payment"}}
        })
        .to_string()
    }

    #[tokio::test]
    async fn records_bodies_per_owner_in_arrival_order_and_wakes_waiters() {
        let receiver = Receiver::start(Instant::now()).await.expect("receiver");
        let http = reqwest::Client::new();
        let waiting = receiver.wait_until(Duration::from_secs(5), |a| a.len() == 3);
        let sending = async {
            for (owner, id, sequence) in [(0, "evt_a", 1), (1, "evt_b", 1), (0, "evt_c", 2)] {
                let status = http
                    .post(receiver.url(owner))
                    .body(event(id, sequence))
                    .send()
                    .await
                    .expect("delivered")
                    .status();
                assert_eq!(status, 200);
            }
            let status = http
                .post(receiver.url(1))
                .body("not json")
                .send()
                .await
                .expect("delivered")
                .status();
            assert_eq!(status, 200, "a malformed body is recorded, not refused");
        };
        let (arrived, ()) = tokio::join!(waiting, sending);
        assert!(arrived);
        let arrivals = receiver.arrivals();
        let seen: Vec<(usize, &str, i64)> = arrivals
            .iter()
            .map(|a| (a.owner, a.id.as_str(), a.sequence))
            .collect();
        assert_eq!(seen, vec![(0, "evt_a", 1), (1, "evt_b", 1), (0, "evt_c", 2)]);
        assert_eq!(arrivals[0].object_id, "pay_1");
        assert_eq!(receiver.malformed(), vec!["owner 1: not json".to_owned()]);
    }
}
