//! The demo's webhook endpoint: a local HTTP server that checks every
//! request's Standard Webhooks signature, as a developer's server would,
//! and reports each one.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{DateTime, Utc};
use contract::events::{Event, EventType};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The `webhook-id` header.
    pub webhook_id: String,
    /// The event in the body, when the body is one.
    pub event: Option<ArrivedEvent>,
    /// `Ok` when the signature verifies against the account's secret and
    /// `webhook-id` names the event in the body.
    pub verified: Result<(), String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrivedEvent {
    pub id: String,
    pub kind: EventType,
    /// The id of the object the event is about (`data.object.id`).
    pub object_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Arrival {
    /// Checks one request against `secret` at `now` (Unix seconds).
    pub fn check(secret: &str, headers: &HeaderMap, body: &[u8], now: DateTime<Utc>) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let webhook_id = header(contract::webhook::HEADER_ID);
        let event = serde_json::from_slice::<Event>(body)
            .ok()
            .map(|event| ArrivedEvent {
                object_id: event
                    .data
                    .object
                    .get("id")
                    .and_then(|id| id.as_str())
                    .map(str::to_owned),
                id: event.id,
                kind: event.kind,
                created_at: event.created_at,
            });
        let verified = header(contract::webhook::HEADER_TIMESTAMP)
            .parse::<i64>()
            .map_err(|_| "no valid webhook-timestamp".to_owned())
            .and_then(|timestamp| {
                contract::webhook::verify(
                    secret,
                    &webhook_id,
                    timestamp,
                    body,
                    &header(contract::webhook::HEADER_SIGNATURE),
                    now.timestamp(),
                )
                .map_err(|e| e.to_string())
            })
            .and_then(|()| match &event {
                Some(event) if event.id == webhook_id => Ok(()),
                Some(event) => Err(format!(
                    "webhook-id {webhook_id} does not name the event {}",
                    event.id
                )),
                None => Err("the body is not an event".to_owned()),
            });
        Self {
            webhook_id,
            event,
            verified,
            at: now,
        }
    }
}

#[derive(Clone)]
struct ReceiverState {
    secret: String,
    arrivals: mpsc::UnboundedSender<Arrival>,
}

async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let arrival = Arrival::check(&state.secret, &headers, &body, Utc::now());
    let status = if arrival.verified.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    let _ = state.arrivals.send(arrival);
    status
}

/// A running receiver on `127.0.0.1`, at `/webhook`.
pub struct Receiver {
    pub url: Url,
    pub arrivals: mpsc::UnboundedReceiver<Arrival>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Binds an ephemeral port and serves until [`Receiver::stop`].
    pub async fn start(secret: String) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let url = Url::parse(&format!("http://{addr}/webhook"))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let (tx, arrivals) = mpsc::unbounded_channel();
        let app = Router::new()
            .route("/webhook", post(receive))
            .with_state(ReceiverState { secret, arrivals: tx });
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Ok(Self {
            url,
            arrivals,
            shutdown,
            task,
        })
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn signed(id: &str, body: &[u8], secret: &str, at: DateTime<Utc>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in
            crate::forward::signature_headers(secret, id, at.timestamp(), body).expect("signs")
        {
            headers.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        headers
    }

    fn body(id: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "id": id, "object": "event", "type": "payment.succeeded", "sequence": 2,
            "created_at": "2026-11-26T12:00:00Z", "data": {"object": {"id": "pay_1", "object": "payment"}}
        }))
        .expect("json")
    }

    #[test]
    fn a_signed_event_verifies_and_names_its_payment() {
        let now = Utc::now();
        let body = body("evt_1");
        let arrival = Arrival::check(SECRET, &signed("evt_1", &body, SECRET, now), &body, now);
        assert_eq!(arrival.verified, Ok(()));
        let event = arrival.event.expect("an event");
        assert_eq!(event.kind, EventType::PaymentSucceeded);
        assert_eq!(event.object_id.as_deref(), Some("pay_1"));
    }

    #[test]
    fn a_wrong_secret_a_changed_body_a_stale_time_or_another_id_do_not() {
        let now = Utc::now();
        let body = body("evt_1");
        let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let wrong_secret = Arrival::check(SECRET, &signed("evt_1", &body, other, now), &body, now);
        assert!(wrong_secret.verified.is_err());
        let mut changed = body.clone();
        changed.push(b' ');
        let changed_body = Arrival::check(SECRET, &signed("evt_1", &body, SECRET, now), &changed, now);
        assert!(changed_body.verified.is_err());
        let an_hour_ago = now - chrono::Duration::hours(1);
        let stale = Arrival::check(SECRET, &signed("evt_1", &body, SECRET, an_hour_ago), &body, now);
        assert!(stale.verified.is_err());
        let other_id = Arrival::check(SECRET, &signed("evt_2", &body, SECRET, now), &body, now);
        assert_eq!(
            other_id.verified,
            Err("webhook-id evt_2 does not name the event evt_1".into())
        );
        let unsigned = Arrival::check(SECRET, &HeaderMap::new(), &body, now);
        assert!(unsigned.verified.is_err());
    }
}
