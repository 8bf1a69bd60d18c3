//! `GET /v1/events/stream`: a WebSocket of the caller's events. A client that
//! names the last event it saw gets every later event exactly once: the
//! stream subscribes to live events first, replays the gap from payments,
//! then goes live, dropping what the replay already sent.
//!
//! Live events can reach the gateway out of order (payments publishes each
//! one as soon as its request commits, and two requests of one owner finish
//! in either order) and more than once (the outbox's sweep may send one
//! again). A stream sends each owner's events in sequence order all the
//! same: an event past the next expected sequence first fetches the ones
//! before it from payments, and an event at or below the last one sent is
//! dropped.

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
    let start = match (&params.last_event_id, after_sequence) {
        (Some(id), _) => Start::ReplayAfter(event_sequence(&state, &principal, id).await?),
        (None, Some(sequence)) => Start::ReplayAfter(sequence),
        (None, None) => Start::LiveAfter(newest_sequence(&state, &principal).await),
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
        .run(subscription, slot, start, closes_at)
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

/// The newest sequence of the caller's events, which a stream that replays
/// nothing starts after; unknown while payments cannot say, and then the
/// first live event sets it.
async fn newest_sequence(state: &AppState, principal: &Principal) -> Option<i64> {
    let response = state
        .http
        .get(format!("{}/v1/events", state.upstreams.payments))
        .query(&[("limit", "1")])
        .header(
            platform::internal_token::HEADER,
            state.token_cache.token_for(&caller(principal)),
        )
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    let newest: Result<List<Event>, reqwest::Error> = match response {
        Ok(response) => response.json().await,
        Err(e) => Err(e),
    };
    match newest {
        Ok(list) => Some(list.data.first().map_or(0, |event| event.sequence)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the newest event; the stream starts at its first live event");
            None
        }
    }
}

/// Where a stream begins: after a replay of what the client missed, or live
/// after the newest event when it opened.
#[derive(Debug, Clone, Copy)]
enum Start {
    ReplayAfter(i64),
    LiveAfter(Option<i64>),
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
        start: Start,
        closes_at: tokio::time::Instant,
    ) {
        let end = match self.stream(&mut subscription, start, closes_at).await {
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
        start: Start,
        closes_at: tokio::time::Instant,
    ) -> Result<StreamEnd, StreamEnd> {
        // The sequence of the last event sent or skipped; the next one sent
        // is always the one after it.
        let (mut last_sent, replayed) = match start {
            Start::ReplayAfter(after) => {
                let (cursor, replayed) = self.send_missed(after).await?;
                (Some(cursor), replayed)
            }
            Start::LiveAfter(newest) => (newest, 0),
        };
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
                        let sequence = published.event.sequence;
                        match last_sent {
                            // Already sent, by a replay or as a live event.
                            Some(last) if sequence <= last => continue,
                            // An earlier event is committed and not here yet.
                            Some(last) if sequence > last + 1 => {
                                let (cursor, _) = self.send_missed(last).await?;
                                last_sent = Some(cursor);
                                if sequence <= cursor {
                                    continue;
                                }
                            }
                            _ => {}
                        }
                        last_sent = Some(sequence);
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

    /// Sends every wanted event after `after` that payments has, oldest
    /// first; answers the last sequence it read and how many it sent.
    async fn send_missed(&mut self, after: i64) -> Result<(i64, u64), StreamEnd> {
        let mut cursor = after;
        let mut sent = 0;
        loop {
            let page = self.subscriber.missed_since(cursor).await?;
            for event in page.data {
                cursor = cursor.max(event.sequence);
                if self.subscriber.wanted(&event) {
                    self.send(&StreamFrame::Event { event, resend: false }).await?;
                    sent += 1;
                }
            }
            if !page.has_more {
                return Ok((cursor, sent));
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
