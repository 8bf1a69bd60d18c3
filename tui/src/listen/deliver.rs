//! The delivery task: one event at a time, in the order received.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use client::Client;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::{
    Backoff, ControlState, DeliveryReport, Input, ListenOptions, ListenUpdate, ReceivedEvent, ReplayOf,
};
use crate::forward::Forwarder;

/// How many received events are kept for replay by id.
const REMEMBERED: usize = 1000;
/// The last processed event id is written at most this often (and at the end).
const SAVE_EVERY: Duration = Duration::from_secs(1);

pub(super) struct Deliverer {
    client: Client,
    api_key: String,
    forwarder: Forwarder,
    target: Option<Url>,
    retries: u32,
    retry_backoff: Backoff,
    paused: bool,
    queue: VecDeque<ReceivedEvent>,
    replays: VecDeque<ReplayOf>,
    remembered: HashMap<String, ReceivedEvent>,
    remembered_order: VecDeque<String>,
    updates: mpsc::UnboundedSender<ListenUpdate>,
    shutdown: CancellationToken,
    state_file: Option<PathBuf>,
    state_key: String,
    last_processed: Option<String>,
    saved: Option<String>,
    saved_at: Instant,
}

impl Deliverer {
    pub(super) fn new(
        client: Client,
        api_key: String,
        forwarder: Forwarder,
        options: &ListenOptions,
        updates: mpsc::UnboundedSender<ListenUpdate>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            client,
            api_key,
            forwarder,
            target: options.target.clone(),
            retries: options.retries,
            retry_backoff: Backoff {
                first: Duration::from_millis(500),
                max: Duration::from_secs(30),
            },
            paused: false,
            queue: VecDeque::new(),
            replays: VecDeque::new(),
            remembered: HashMap::new(),
            remembered_order: VecDeque::new(),
            updates,
            shutdown,
            state_file: options.state_file.clone(),
            state_key: options.state_key.clone(),
            last_processed: None,
            saved: None,
            saved_at: Instant::now(),
        }
    }

    pub(super) async fn run(mut self, mut inputs: mpsc::UnboundedReceiver<Input>) {
        let mut stream_ended = false;
        loop {
            // Take everything already waiting, so that commands sent before
            // an event was delivered apply in the order they were given.
            while let Ok(input) = inputs.try_recv() {
                stream_ended |= self.take(input);
            }
            if self.shutdown.is_cancelled() {
                break;
            }
            if let Some(replay) = self.replays.pop_front() {
                self.replay(replay).await;
                continue;
            }
            if !self.paused
                && let Some(event) = self.queue.pop_front()
            {
                self.deliver(&event, false).await;
                self.processed(&event);
                continue;
            }
            if stream_ended && (self.queue.is_empty() || self.paused) {
                break;
            }
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                input = inputs.recv() => match input {
                    Some(input) => stream_ended |= self.take(input),
                    None => stream_ended = true,
                },
            }
        }
        self.save(true);
    }

    /// Applies one input; true when the stream has ended.
    fn take(&mut self, input: Input) -> bool {
        match input {
            Input::Event(event) => {
                self.remember(&event);
                self.queue.push_back(event);
                if self.paused {
                    self.control();
                }
            }
            Input::Replay(replay) => self.replays.push_back(replay),
            Input::SetTarget(target) => {
                self.target = target;
                self.control();
            }
            Input::Pause => {
                self.paused = true;
                self.control();
            }
            Input::Resume => {
                self.paused = false;
                self.control();
            }
            Input::StreamEnded => return true,
        }
        false
    }

    fn control(&self) {
        let _ = self.updates.send(ListenUpdate::Control(ControlState {
            paused: self.paused,
            queued: self.queue.len(),
            target: self.target.clone(),
        }));
    }

    fn remember(&mut self, event: &ReceivedEvent) {
        if self.remembered.insert(event.id.clone(), event.clone()).is_none() {
            self.remembered_order.push_back(event.id.clone());
        }
        while self.remembered_order.len() > REMEMBERED {
            if let Some(old) = self.remembered_order.pop_front() {
                self.remembered.remove(&old);
            }
        }
    }

    async fn replay(&mut self, replay: ReplayOf) {
        let event = match replay {
            ReplayOf::Event(event) => event,
            ReplayOf::Id(id) => match self.remembered.get(&id) {
                Some(event) => event.clone(),
                None => match self.fetch(&id).await {
                    Ok(event) => event,
                    Err(message) => {
                        if let Some(url) = self.target.clone() {
                            self.report_failure(&id, url, message);
                        }
                        return;
                    }
                },
            },
        };
        self.deliver(&event, true).await;
    }

    /// An event not seen in this run, from the API. Its bytes are the API's
    /// rendering of the event, which is what the stream would have sent.
    async fn fetch(&self, id: &str) -> Result<ReceivedEvent, String> {
        let event = self
            .client
            .event(&self.api_key, id)
            .await
            .map_err(|e| format!("cannot fetch {id} to replay it: {e}"))?
            .into_value();
        let raw = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
        Ok(ReceivedEvent {
            id: event.id,
            event_type: event.kind,
            sequence: event.sequence,
            created_at: event.created_at,
            resent: false,
            raw: raw.into(),
        })
    }

    fn report_failure(&self, id: &str, url: Url, message: String) {
        let _ = self.updates.send(ListenUpdate::Delivery(DeliveryReport {
            event_id: id.to_owned(),
            event_type: contract::events::EventType::PaymentCreated,
            attempt: 1,
            attempts: 1,
            url,
            request_headers: Vec::new(),
            outcome: Err(message),
            retry_in: None,
            replay: true,
            resent: false,
        }));
    }

    /// Every attempt is reported; retries wait with backoff, and a shutdown
    /// during the wait ends them.
    async fn deliver(&mut self, event: &ReceivedEvent, replay: bool) {
        let Some(url) = self.target.clone() else {
            return;
        };
        let attempts = self.retries + 1;
        for attempt in 1..=attempts {
            let (request_headers, outcome) = self.forwarder.send(&url, &event.id, &event.raw).await;
            let ok = matches!(&outcome, Ok(response) if (200..300).contains(&response.status));
            let retry_in = (!ok && attempt < attempts && !self.shutdown.is_cancelled())
                .then(|| self.retry_backoff.delay(attempt));
            let _ = self.updates.send(ListenUpdate::Delivery(DeliveryReport {
                event_id: event.id.clone(),
                event_type: event.event_type,
                attempt,
                attempts,
                url: url.clone(),
                request_headers,
                outcome,
                retry_in,
                replay,
                resent: event.resent,
            }));
            let Some(wait) = retry_in else {
                return;
            };
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn processed(&mut self, event: &ReceivedEvent) {
        if !event.resent {
            self.last_processed = Some(event.id.clone());
        }
        self.save(false);
    }

    fn save(&mut self, now: bool) {
        let Some(path) = self.state_file.clone() else {
            return;
        };
        if self.last_processed == self.saved || !(now || self.saved_at.elapsed() >= SAVE_EVERY) {
            return;
        }
        if let Some(id) = &self.last_processed {
            if let Err(e) = save_last(&path, &self.state_key, id) {
                tracing_free_warn(&format!(
                    "cannot remember the last event in {}: {e}",
                    path.display()
                ));
            }
            self.saved = Some(id.clone());
            self.saved_at = Instant::now();
        }
    }
}

fn tracing_free_warn(message: &str) {
    eprintln!("micro: warning: {message}");
}

type State = HashMap<String, String>;

/// The last event processed for `key` in an earlier run.
pub(super) fn load_last(path: Option<&Path>, key: &str) -> Option<String> {
    let bytes = std::fs::read(path?).ok()?;
    let state: State = serde_json::from_slice(&bytes).ok()?;
    state.get(key).cloned()
}

fn save_last(path: &Path, key: &str, id: &str) -> std::io::Result<()> {
    let mut state: State = std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    state.insert(key.to_owned(), id.to_owned());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, serde_json::to_vec(&state)?)?;
    std::fs::rename(temporary, path)
}
