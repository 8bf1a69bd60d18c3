//! `GET /v1/events/stream`: a WebSocket of the caller's events. A client that
//! names the last event it saw gets every later event exactly once: the
//! stream subscribes to live events first, replays the gap from payments,
//! then goes live, dropping what the replay already sent.

pub mod hub;
pub mod listener;
pub mod slots;

use std::collections::HashSet;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use contract::List;
use contract::events::{Event, EventType, StreamFrame};
use platform::error::Query;
use platform::internal_token::Caller;
use serde::Deserialize;

use crate::authn::key_cache::Principal;
use crate::{AppState, GatewayError};
use hub::{Ended, Subscription};
use slots::StreamSlot;

const PING_EVERY: Duration = Duration::from_secs(5);
/// A client that cannot take a frame in this long is cut off.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const REPLAY_PAGE: usize = 500;
/// The stream only sends; what a client may send (pongs, a close) is tiny.
const MAX_INCOMING_BYTES: usize = 4 * 1024;
const READ_BUFFER_BYTES: usize = 2 * MAX_INCOMING_BYTES;
/// Sent when the API key the stream was opened with is revoked; a client
/// should not reconnect with that key.
pub const CLOSE_KEY_REVOKED: u16 = 4001;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StreamParams {
    /// Replay every event after this one, then go live.
    last_event_id: Option<String>,
    /// Replay every event whose `sequence` is above this one, then go live;
    /// `0` replays them all. A client that has seen no event yet resumes with
    /// the sequence it started from, as it has no id to name.
    #[param(minimum = 0)]
    after_sequence: Option<i64>,
    /// Comma-separated event types; all types when absent.
    types: Option<String>,
}

/// Upgrades to a WebSocket of the caller's events: `{"type": "event", "event": ...}`
/// frames, one `{"type": "ready", "replayed": n}` once missed events are sent,
/// and pings every few seconds.
#[utoipa::path(get, path = "/v1/events/stream", operation_id = "stream_events", tag = "events", security(("api_key" = [])), params(StreamParams),
    responses((status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, body = contract::ErrorBody), (status = 401, body = contract::ErrorBody),
        (status = 404, description = "Unknown last_event_id", body = contract::ErrorBody),
        (status = 426, description = "Not a WebSocket upgrade request", body = contract::ErrorBody),
        (status = 429, description = "The key holds its maximum of concurrent streams", body = contract::ErrorBody),
        (status = 503, description = "The stream is reconnecting to its source; retry shortly", body = contract::ErrorBody)))]
pub async fn handler(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(params): Query<StreamParams>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, GatewayError> {
    // Axum's own rejections are plain text; the public API answers in its error body.
    let upgrade = upgrade.map_err(|_| GatewayError::WebSocketUpgradeRequired)?;
    let types = match params.types.as_deref() {
        None | Some("") => None,
        Some(list) => Some(
            list.split(',')
                .map(|name| {
                    EventType::parse(name.trim()).ok_or_else(|| {
                        GatewayError::InvalidStreamRequest(format!("unknown event type {name:?}"))
                    })
                })
                .collect::<Result<HashSet<_>, _>>()?,
        ),
    };
    let after_sequence = match (params.last_event_id.is_some(), params.after_sequence) {
        (true, Some(_)) => {
            return Err(GatewayError::InvalidStreamRequest(
                "give last_event_id or after_sequence, not both".into(),
            ));
        }
        (_, Some(sequence)) if sequence < 0 => {
            return Err(GatewayError::InvalidStreamRequest(
                "after_sequence must be 0 or more".into(),
            ));
        }
        (_, sequence) => sequence,
    };
    if !state.hub.is_live() {
        return Err(GatewayError::StreamUnavailable);
    }
    let slot_key = principal.key_id.as_deref().unwrap_or(&principal.user_id);
    let slot = state
        .stream_slots
        .try_acquire(slot_key)
        .ok_or(GatewayError::TooManyStreams)?;
    // Subscribe before looking back, so that nothing published meanwhile is lost.
    let subscription = state
        .hub
        .subscribe(&principal.user_id, principal.key_id.as_deref())
        .ok_or(GatewayError::InvalidApiKey)?;
    let after = match &params.last_event_id {
        Some(id) => Some(event_sequence(&state, &principal, id).await?),
        None => after_sequence,
    };
    // A client sends nothing but pongs and a close, so the read buffer
    // needs only a few small frames, not the 128 KiB WebSocket libraries
    // allocate by default: that default was most of a stream's memory.
    let upgrade = upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(MAX_INCOMING_BYTES)
        .max_frame_size(MAX_INCOMING_BYTES);
    Ok(upgrade.on_upgrade(move |socket| async move {
        let closes_at = tokio::time::Instant::now() + state.stream_lifetime;
        Stream {
            socket,
            subscriber: Subscriber {
                state,
                principal,
                types,
            },
        }
        .run(subscription, slot, after, closes_at)
        .await;
    }))
}

fn caller(principal: &Principal) -> Caller {
    crate::authn::token_cache::user_caller(principal)
}

async fn event_sequence(state: &AppState, principal: &Principal, id: &str) -> Result<i64, GatewayError> {
    if !contract::ids::has_prefix(id, contract::ids::EVENT) {
        return Err(GatewayError::UnknownEvent);
    }
    let response = state
        .http
        .get(format!("{}/v1/events/{id}", state.upstreams.payments))
        .header(
            platform::internal_token::HEADER,
            state.token_cache.token_for(&caller(principal)),
        )
        .send()
        .await
        .map_err(|e| crate::routes::proxy::upstream_error("payments", &e))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(GatewayError::UnknownEvent);
    }
    // Payments' database is down or restarting: the stream can be resumed
    // once it is back, so the client is told to retry, not that payments
    // answered nonsense.
    if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
        return Err(GatewayError::UpstreamUnavailable("payments"));
    }
    if !response.status().is_success() {
        return Err(GatewayError::BadGateway("payments"));
    }
    let event: Event = response
        .json()
        .await
        .map_err(|_| GatewayError::BadGateway("payments"))?;
    Ok(event.sequence)
}

struct Stream {
    socket: WebSocket,
    subscriber: Subscriber,
}

/// Who the stream is for and which events they asked for, kept apart from
/// the socket so that it can be borrowed across awaits while the socket is
/// in use.
struct Subscriber {
    state: AppState,
    principal: Principal,
    types: Option<HashSet<EventType>>,
}

/// Why a stream stops: the gateway closes it with a code and a reason, or
/// the client has already gone and there is no one to tell.
enum StreamEnd {
    CloseWith(u16, &'static str),
    ClientGone,
}

impl Stream {
    /// Streams until the end; the slot is held until then and freed on drop.
    async fn run(
        mut self,
        mut subscription: Subscription,
        _slot: StreamSlot,
        after: Option<i64>,
        closes_at: tokio::time::Instant,
    ) {
        let end = match self.stream(&mut subscription, after, closes_at).await {
            Ok(end) => end,
            Err(end) => end,
        };
        if let StreamEnd::CloseWith(code, reason) = end {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Close(Some(frame)))).await;
        }
    }

    async fn stream(
        &mut self,
        subscription: &mut Subscription,
        after: Option<i64>,
        closes_at: tokio::time::Instant,
    ) -> Result<StreamEnd, StreamEnd> {
        let mut last_sent = after.unwrap_or(0);
        let mut replayed = 0;
        if let Some(after) = after {
            let mut cursor = after;
            loop {
                let page = self.subscriber.missed_since(cursor).await?;
                for event in page.data {
                    cursor = event.sequence;
                    if self.subscriber.wanted(&event) {
                        self.send(&StreamFrame::Event { event, resend: false }).await?;
                        replayed += 1;
                    }
                }
                if !page.has_more {
                    break;
                }
            }
            last_sent = cursor;
        }
        self.send(&StreamFrame::Ready { replayed }).await?;

        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let shutdown = self.subscriber.state.shutdown.clone();
        loop {
            tokio::select! {
                // An ended stream closes at once, before any event still in its buffer.
                biased;
                () = shutdown.cancelled() => return Ok(StreamEnd::CloseWith(close_code::AWAY, "the gateway is shutting down")),
                why = &mut subscription.ended => return Ok(closing(why.unwrap_or(Ended::Restart))),
                () = tokio::time::sleep_until(closes_at) => {
                    return Ok(StreamEnd::CloseWith(close_code::RESTART, "stream lifetime reached: reconnect with last_event_id"));
                }
                delivery = subscription.events.recv() => {
                    let Some(published) = delivery else {
                        return Ok(closing(subscription.ended.try_recv().unwrap_or(Ended::Restart)));
                    };
                    if !published.resend {
                        // Already sent by the replay, or out of date.
                        if published.event.sequence <= last_sent {
                            continue;
                        }
                        last_sent = published.event.sequence;
                    }
                    if self.subscriber.wanted(&published.event) {
                        let frame = StreamFrame::Event { event: published.event.clone(), resend: published.resend };
                        self.send(&frame).await?;
                    }
                }
                _ = ping.tick() => {
                    self.send_message(Message::Ping(Default::default())).await?;
                }
                incoming = self.socket.recv() => match incoming {
                    None | Some(Ok(Message::Close(_))) => return Ok(StreamEnd::ClientGone),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                        return Ok(StreamEnd::CloseWith(close_code::POLICY, "the stream is receive-only: send only ping, pong and close"));
                    }
                    Some(Err(e)) => return Ok(receive_failed(&e)),
                },
            }
        }
    }

    async fn send(&mut self, frame: &StreamFrame) -> Result<(), StreamEnd> {
        let text = match serde_json::to_string(frame) {
            Ok(text) => text,
            Err(e) => unreachable!("serialising a stream frame: {e}"),
        };
        self.send_message(Message::Text(text.into())).await
    }

    async fn send_message(&mut self, message: Message) -> Result<(), StreamEnd> {
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(StreamEnd::ClientGone),
            Err(_) => Err(StreamEnd::CloseWith(
                close_code::POLICY,
                "consumer too slow: reconnect with last_event_id",
            )),
        }
    }
}

fn closing(why: Ended) -> StreamEnd {
    match why {
        Ended::TooSlow => StreamEnd::CloseWith(
            close_code::POLICY,
            "consumer too slow: reconnect with last_event_id",
        ),
        Ended::KeyRevoked => StreamEnd::CloseWith(CLOSE_KEY_REVOKED, "api key revoked"),
        Ended::Restart => StreamEnd::CloseWith(
            close_code::RESTART,
            "event source restarting: reconnect with last_event_id",
        ),
    }
}

/// A message over the size limit is refused by the WebSocket layer as an
/// error that only its text identifies; other read errors mean the
/// connection is gone.
fn receive_failed(error: &axum::Error) -> StreamEnd {
    if error.to_string().to_ascii_lowercase().contains("too long") {
        StreamEnd::CloseWith(close_code::SIZE, "messages to the stream are limited to 4 KiB")
    } else {
        StreamEnd::ClientGone
    }
}

impl Subscriber {
    fn wanted(&self, event: &Event) -> bool {
        self.types
            .as_ref()
            .is_none_or(|types| types.contains(&event.kind))
    }

    async fn missed_since(&self, sequence: i64) -> Result<List<Event>, StreamEnd> {
        // The gap filler answers only the gateway on its own account, so the
        // owner is named in the query rather than by a user's token.
        let url = format!(
            "{}{}",
            self.state.upstreams.payments,
            contract::internal::paths::EVENTS_SINCE
        );
        let response = self
            .state
            .http
            .get(url)
            .query(&[
                ("owner_id", self.principal.user_id.clone()),
                ("after_sequence", sequence.to_string()),
                ("limit", REPLAY_PAGE.to_string()),
            ])
            .header(
                platform::internal_token::HEADER,
                self.state
                    .token_cache
                    .token_for(&Caller::Service(platform::internal_token::Service::Gateway)),
            )
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        let failed = |e: reqwest::Error| {
            tracing::error!(error = %e, "could not replay missed events");
            StreamEnd::CloseWith(
                close_code::ERROR,
                "could not replay missed events: reconnect with last_event_id",
            )
        };
        response.map_err(failed)?.json().await.map_err(failed)
    }
}
