//! The one Redis subscription of this gateway process: events for the
//! streams, and API key revocations for the key cache.

use std::time::Duration;

use contract::auth::ApiKeyRevoked;
use contract::events::PublishedEvent;
use futures::StreamExt;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::AppState;

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Starts the subscription; the returned receiver resolves once it is live.
pub fn spawn(state: AppState, redis_url: String, shutdown: CancellationToken) -> oneshot::Receiver<()> {
    let (ready_tx, ready_rx) = oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut backoff = Duration::from_millis(100);
        let mut had_gap = false;
        while !shutdown.is_cancelled() {
            match run(&state, &redis_url, &shutdown, &mut ready, had_gap).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "event subscription lost; streams closed, retrying");
                }
            }
            state.hub.set_live(false);
            state.hub.disconnect_all();
            had_gap = true;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
    ready_rx
}

async fn run(
    state: &AppState,
    redis_url: &str,
    shutdown: &CancellationToken,
    ready: &mut Option<oneshot::Sender<()>>,
    had_gap: bool,
) -> redis::RedisResult<()> {
    let client = redis::Client::open(redis_url)?;
    let mut pubsub = tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub())
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::IoError, "connecting timed out")))??;
    let events_channel = state.keys.events();
    let revocations_channel = state.keys.api_key_revocations();
    pubsub.subscribe(&events_channel).await?;
    pubsub.subscribe(&revocations_channel).await?;
    if had_gap {
        // Revocations may have been missed while the subscription was down.
        state.key_cache.clear();
    }
    state.hub.set_live(true);
    if let Some(ready) = ready.take() {
        let _ = ready.send(());
    }
    tracing::info!("subscribed to events and key revocations");

    let mut messages = pubsub.on_message();
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            message = messages.next() => message,
        };
        let Some(message) = message else {
            return Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "subscription closed",
            )));
        };
        let payload: Vec<u8> = message.get_payload()?;
        let channel = message.get_channel_name();
        if channel == events_channel {
            match serde_json::from_slice::<PublishedEvent>(&payload) {
                Ok(event) => state.hub.publish(event),
                Err(e) => tracing::error!(error = %e, "ignoring a malformed event message"),
            }
        } else if channel == revocations_channel {
            match serde_json::from_slice::<ApiKeyRevoked>(&payload) {
                Ok(revoked) => state.key_cache.evict_key(&revoked.key_id),
                Err(e) => tracing::error!(error = %e, "ignoring a malformed revocation message"),
            }
        }
    }
}
