//! The one Redis subscription of this gateway process: events for the
//! streams, and API key revocations for the key cache and the streams.
//!
//! A subscription can stall without closing (a half-open connection, a
//! wedged proxy), and then it would deliver nothing while looking alive. So
//! it is pinged every heartbeat, and one that has not answered by the
//! deadline is treated as lost: every stream is closed with 1012 (their
//! clients reconnect and fill the gap), the key cache is dropped (a
//! revocation may have been missed) and the subscription is made anew. The
//! socket also has TCP keepalive, which finds a vanished peer on its own.

use std::time::Duration;

use contract::internal::ApiKeyRevoked;
use contract::internal::PublishedEvent;
use futures::StreamExt;
use redis::aio::{PubSub, PubSubSink};
use redis::io::tcp::socket2::{SockRef, TcpKeepalive};
use redis::{ConnectionAddr, RedisError};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::AppState;

const MAX_BACKOFF: Duration = Duration::from_secs(5);
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);

/// How the subscription is watched.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    pub heartbeat: Duration,
    pub deadline: Duration,
}

/// Starts the subscription; the returned receiver resolves once it is live.
pub fn spawn(
    state: AppState,
    redis_url: String,
    watch: Watch,
    shutdown: CancellationToken,
) -> oneshot::Receiver<()> {
    let (ready_tx, ready_rx) = oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut backoff = Duration::from_millis(100);
        let mut had_gap = false;
        while !shutdown.is_cancelled() {
            let mut was_live = false;
            match run(
                &state,
                &redis_url,
                watch,
                &shutdown,
                &mut ready,
                had_gap,
                &mut was_live,
            )
            .await
            {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "event subscription lost; streams closed, retrying");
                    metrics::counter!("gateway_subscription_lost_total").increment(1);
                }
            }
            state.hub.set_live(false);
            state.hub.disconnect_all();
            // Revocations may be missed from now until the next subscription.
            state.key_cache.clear();
            had_gap = true;
            if was_live {
                backoff = Duration::from_millis(100);
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
    ready_rx
}

fn lost(reason: &'static str) -> RedisError {
    RedisError::from((redis::ErrorKind::IoError, reason))
}

/// A pub/sub connection whose socket has TCP keepalive on (the redis crate
/// offers no setting for its pub/sub connections).
async fn connect(redis_url: &str) -> redis::RedisResult<PubSub> {
    let client = redis::Client::open(redis_url)?;
    let info = client.get_connection_info();
    let ConnectionAddr::Tcp(host, port) = &info.addr else {
        return client.get_async_pubsub().await;
    };
    let socket = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
    socket.set_nodelay(true)?;
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL);
    SockRef::from(&socket).set_tcp_keepalive(&keepalive)?;
    PubSub::new(&info.redis, socket).await
}

async fn run(
    state: &AppState,
    redis_url: &str,
    watch: Watch,
    shutdown: &CancellationToken,
    ready: &mut Option<oneshot::Sender<()>>,
    had_gap: bool,
    was_live: &mut bool,
) -> redis::RedisResult<()> {
    let events_channel = state.keys.events();
    let revocations_channel = state.keys.api_key_revocations();
    let subscribing = async {
        let mut pubsub = connect(redis_url).await?;
        pubsub.subscribe(&events_channel).await?;
        pubsub.subscribe(&revocations_channel).await?;
        Ok::<_, RedisError>(pubsub)
    };
    // A stalled Redis can accept the connection and then say nothing.
    let pubsub = tokio::time::timeout(watch.deadline, subscribing)
        .await
        .map_err(|_| lost("subscribing timed out"))??;
    let (sink, mut messages) = pubsub.split();
    if had_gap {
        state.key_cache.clear();
    }
    state.hub.set_live(true);
    *was_live = true;
    if let Some(ready) = ready.take() {
        let _ = ready.send(());
    }
    tracing::info!("subscribed to events and key revocations");

    let mut heartbeat = tokio::spawn(heartbeat(sink, watch));
    let result = loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            silent = &mut heartbeat => break Err(silent.unwrap_or_else(|_| lost("the heartbeat stopped"))),
            message = messages.next() => message,
        };
        let Some(message) = message else {
            break Err(lost("subscription closed"));
        };
        let payload: Vec<u8> = match message.get_payload() {
            Ok(payload) => payload,
            Err(e) => break Err(e),
        };
        let channel = message.get_channel_name();
        if channel == events_channel {
            match serde_json::from_slice::<PublishedEvent>(&payload) {
                Ok(event) => state.hub.publish(event),
                Err(e) => tracing::error!(error = %e, "ignoring a malformed event message"),
            }
        } else if channel == revocations_channel {
            match serde_json::from_slice::<ApiKeyRevoked>(&payload) {
                Ok(revoked) => {
                    state.key_cache.evict_key(&revoked.key_id);
                    state.hub.revoke_key(&revoked.key_id);
                }
                Err(e) => tracing::error!(error = %e, "ignoring a malformed revocation message"),
            }
        }
    };
    heartbeat.abort();
    result
}

/// Pings the subscription every heartbeat until one goes unanswered for the
/// deadline. Redis answers in order, so a pong also says that every message
/// published before it was delivered.
async fn heartbeat(mut sink: PubSubSink, watch: Watch) -> RedisError {
    let mut every = tokio::time::interval(watch.heartbeat);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match tokio::time::timeout(watch.deadline, sink.ping::<redis::Value>()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return e,
            Err(_) => {
                metrics::counter!("gateway_subscription_heartbeat_missed_total").increment(1);
                return lost("no answer to a heartbeat ping within the deadline");
            }
        }
    }
}
