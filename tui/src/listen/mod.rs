//! The listen core: one engine behind `micro listen` and the console.
//!
//! [`start`] checks the key, fetches the signing secret, and spawns two tasks:
//! the stream task holds `/v1/events/stream` open (reconnecting with
//! exponential backoff and jitter, resuming from the last event id, dropping
//! anything already seen) and the delivery task forwards each event, in
//! order and one at a time, to the target URL, signed anew per Standard
//! Webhooks. Everything that happens comes back as [`ListenUpdate`]s on the
//! returned channel, which closes once both tasks have ended; a renderer
//! (text lines, JSON lines, the console) only reads that channel and sends
//! commands through the [`ListenHandle`]:
//!
//! ```no_run
//! # async fn demo(client: client::Client) -> Result<(), client::ClientError> {
//! use micro::listen::{self, ListenOptions, ListenUpdate};
//! let options = ListenOptions::forwarding_to("http://localhost:4242/webhook".parse().ok());
//! let (handle, mut updates) = listen::start(client, "sk_test_...".into(), options).await?;
//! while let Some(update) = updates.recv().await {
//!     match update {
//!         ListenUpdate::Event(event) => println!("--> {} [{}]", event.event_type, event.id),
//!         ListenUpdate::Delivery(report) => println!("<-- {:?}", report.outcome),
//!         _ => {}
//!     }
//! }
//! handle.shutdown(); // finishes the delivery in flight, then the channel closes
//! # Ok(()) }
//! ```
//!
//! Commands: [`ListenHandle::set_target`] (or clear it: events are then only
//! shown), [`ListenHandle::pause`] / [`ListenHandle::resume`] (events queue
//! and go out in order on resume), [`ListenHandle::replay`] (an event seen
//! in this run, or fetched by id, delivered again with a fresh signature
//! even while paused, reported with `replay: true`), [`ListenHandle::shutdown`].

mod deliver;
mod stream;

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use client::{Client, ClientError};
use contract::events::EventType;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

pub use crate::forward::ForwardResponse;

/// Where the stream starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Since {
    /// Only events from now on.
    #[default]
    Now,
    /// After the last event this profile processed in an earlier run.
    Last,
    /// After the named event.
    Event(String),
}

/// How the listener behaves; `Default` is "show events, deliver nowhere".
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Only these types; all when empty.
    pub types: Vec<EventType>,
    pub since: Since,
    /// Where events are forwarded; `None` only shows them.
    pub target: Option<Url>,
    /// Extra headers on every delivery.
    pub headers: Vec<(String, String)>,
    /// `None` waits as long as the local server takes.
    pub forward_timeout: Option<Duration>,
    /// Further attempts after a failed delivery (not 2xx, or no answer).
    pub retries: u32,
    /// Consecutive failed reconnects before giving up; `None` never gives up.
    pub max_reconnects: Option<u32>,
    pub backoff: Backoff,
    /// Where the last processed event id is kept, for `Since::Last`.
    pub state_file: Option<PathBuf>,
    /// The key under which this listener's last event is kept in `state_file`.
    pub state_key: String,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self {
            types: Vec::new(),
            since: Since::Now,
            target: None,
            headers: Vec::new(),
            forward_timeout: Some(Duration::from_secs(30)),
            retries: 0,
            max_reconnects: None,
            backoff: Backoff::default(),
            state_file: None,
            state_key: String::new(),
        }
    }
}

impl ListenOptions {
    pub fn forwarding_to(target: Option<Url>) -> Self {
        Self {
            target,
            ..Self::default()
        }
    }
}

/// Exponential backoff, each wait drawn between half and all of its step.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before attempt `attempt` (1-based), with jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let step = self
            .first
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max);
        step.mul_f64(rand::Rng::gen_range(&mut rand::thread_rng(), 0.5..=1.0))
    }
}

/// Everything the listener reports, in the order it happened.
#[derive(Debug, Clone)]
pub enum ListenUpdate {
    Stream(StreamState),
    /// Once, when the first connection is live.
    Ready {
        secret: String,
        /// Missed events sent before going live (with `since`).
        replayed: u64,
    },
    Event(ReceivedEvent),
    Delivery(DeliveryReport),
    /// A command took effect.
    Control(ControlState),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamState {
    Connecting {
        attempt: u32,
    },
    Live {
        replayed: u64,
    },
    Reconnecting {
        in_: Duration,
        attempt: u32,
        reason: String,
    },
    /// The stream will not come back: shut down (`fatal: false`), or a
    /// refused key, or too many failed reconnects (`fatal: true`).
    Stopped {
        reason: String,
        fatal: bool,
        /// The gateway refused the API key: logging in again is the remedy.
        key_refused: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlState {
    pub paused: bool,
    pub queued: usize,
    pub target: Option<Url>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    pub id: String,
    pub event_type: EventType,
    pub sequence: i64,
    pub created_at: DateTime<Utc>,
    /// Sent again on a user's request.
    pub resent: bool,
    /// The event object exactly as the gateway sent it: the body forwarded.
    pub raw: Bytes,
}

#[derive(Debug, Clone)]
pub struct DeliveryReport {
    pub event_id: String,
    pub event_type: EventType,
    /// 1 for the first try.
    pub attempt: u32,
    /// Attempts allowed in all (`retries + 1`).
    pub attempts: u32,
    pub url: Url,
    pub request_headers: Vec<(String, String)>,
    pub outcome: Result<ForwardResponse, String>,
    /// When another attempt follows, after this long.
    pub retry_in: Option<Duration>,
    pub replay: bool,
    pub resent: bool,
}

impl DeliveryReport {
    /// A 2xx answer.
    pub fn succeeded(&self) -> bool {
        matches!(&self.outcome, Ok(response) if (200..300).contains(&response.status))
    }
}

/// What a replay asks for.
#[derive(Debug, Clone)]
pub enum ReplayOf {
    Id(String),
    Event(ReceivedEvent),
}

#[derive(Debug)]
enum Input {
    Event(ReceivedEvent),
    Replay(ReplayOf),
    SetTarget(Option<Url>),
    Pause,
    Resume,
    /// The stream has stopped for good: deliver what is queued, then end.
    StreamEnded,
}

/// Steers a running listener. Cheap to clone; commands after the end are ignored.
#[derive(Debug, Clone)]
pub struct ListenHandle {
    inputs: mpsc::UnboundedSender<Input>,
    shutdown: CancellationToken,
}

impl ListenHandle {
    pub fn set_target(&self, target: Option<Url>) {
        let _ = self.inputs.send(Input::SetTarget(target));
    }

    pub fn pause(&self) {
        let _ = self.inputs.send(Input::Pause);
    }

    pub fn resume(&self) {
        let _ = self.inputs.send(Input::Resume);
    }

    /// Delivers an event again, signed anew.
    pub fn replay(&self, event_id: impl Into<String>) {
        let _ = self.inputs.send(Input::Replay(ReplayOf::Id(event_id.into())));
    }

    pub fn replay_event(&self, event: ReceivedEvent) {
        let _ = self.inputs.send(Input::Replay(ReplayOf::Event(event)));
    }

    /// Stops the stream; the delivery in flight finishes, queued ones are
    /// left (a later `--since last` picks them up), then the channel closes.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

async fn newest_event(client: &Client, api_key: &str) -> Result<Option<String>, ClientError> {
    let newest = client
        .list_events(
            api_key,
            &contract::payments::ListEventsParams {
                page: contract::list::PageParams {
                    limit: Some(1),
                    starting_after: None,
                },
                ..Default::default()
            },
        )
        .await?;
    Ok(newest.value.data.first().map(|event| event.id.clone()))
}

/// Checks the key, fetches the signing secret and starts listening.
/// A refused key fails here, before anything is spawned.
pub async fn start(
    client: Client,
    api_key: String,
    options: ListenOptions,
) -> Result<(ListenHandle, mpsc::UnboundedReceiver<ListenUpdate>), ClientError> {
    let secret = client.webhook_secret(&api_key).await?.into_value().secret;
    let after = match &options.since {
        Since::Event(id) => Some(id.clone()),
        Since::Last => match deliver::load_last(options.state_file.as_deref(), &options.state_key) {
            Some(id) => Some(id),
            // Nothing processed here yet: start from now.
            None => newest_event(&client, &api_key).await?,
        },
        Since::Now => newest_event(&client, &api_key).await?,
    };
    // With no event to name, "from now" is "after everything there was": an
    // account without events resumes from sequence 0, so that events made
    // before the first one arrives survive a reconnect.
    let after_sequence = after.is_none().then_some(0);
    let (updates_tx, updates) = mpsc::unbounded_channel();
    let (inputs_tx, inputs) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let forwarder =
        crate::forward::Forwarder::new(secret.clone(), options.headers.clone(), options.forward_timeout);
    let delivery = deliver::Deliverer::new(
        client.clone(),
        api_key.clone(),
        forwarder,
        &options,
        updates_tx.clone(),
        shutdown.clone(),
    );
    tokio::spawn(delivery.run(inputs));
    let stream = stream::Streamer {
        client,
        api_key,
        types: options.types.clone(),
        last_event_id: after,
        after_sequence,
        max_reconnects: options.max_reconnects,
        backoff: options.backoff,
        secret,
        updates: updates_tx,
        deliveries: inputs_tx.clone(),
        shutdown: shutdown.clone(),
    };
    tokio::spawn(stream.run());
    Ok((
        ListenHandle {
            inputs: inputs_tx,
            shutdown,
        },
        updates,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_stops_at_the_cap() {
        let backoff = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let first = backoff.delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = backoff.delay(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(backoff.delay(30) <= Duration::from_secs(1));
        }
    }
}
