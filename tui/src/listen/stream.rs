//! The stream task: one connection at a time, resumed from the last event id.

use client::{Client, ClientError, Frame, StreamOptions};
use contract::events::EventType;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Backoff, Input, ListenUpdate, ReceivedEvent, StreamState};

pub(super) struct Streamer {
    pub client: Client,
    pub api_key: String,
    pub types: Vec<EventType>,
    /// The newest event seen (or the starting point): where a new connection resumes.
    pub last_event_id: Option<String>,
    /// Where a connection resumes while there is no event id to name.
    pub after_sequence: Option<i64>,
    pub max_reconnects: Option<u32>,
    pub backoff: Backoff,
    pub secret: String,
    pub updates: mpsc::UnboundedSender<ListenUpdate>,
    pub deliveries: mpsc::UnboundedSender<Input>,
    pub shutdown: CancellationToken,
}

/// Why a connection ended.
enum Ended {
    Shutdown,
    /// Worth another connection.
    Dropped(String),
    Fatal(String),
    KeyRefused(String),
}

fn fatal_reason(error: &ClientError) -> Option<String> {
    if error.is_unauthorized() {
        return Some(format!(
            "the API key was refused ({error}): it may have been revoked. Run `micro login` again, or pass a valid key with --api-key"
        ));
    }
    match error {
        ClientError::Api { status: 404, .. } => Some(format!(
            "{error}: the event to resume from is unknown; check the id given to --since"
        )),
        ClientError::Api { status, .. } | ClientError::Http { status, .. }
            if (400..500).contains(status) && *status != 429 =>
        {
            Some(error.to_string())
        }
        ClientError::InvalidUrl(_) => Some(error.to_string()),
        _ => None,
    }
}

impl Streamer {
    pub(super) async fn run(mut self) {
        let mut last_sequence: Option<i64> = None;
        let mut ready_sent = false;
        // Failed connections since the stream was last live.
        let mut failures: u32 = 0;
        loop {
            self.send(ListenUpdate::Stream(StreamState::Connecting {
                attempt: failures + 1,
            }));
            let shutdown = self.shutdown.clone();
            let ended = tokio::select! {
                () = shutdown.cancelled() => Ended::Shutdown,
                ended = self.connection(&mut last_sequence, &mut ready_sent, &mut failures) => ended,
            };
            let reason = match ended {
                Ended::Shutdown => {
                    self.send(ListenUpdate::Stream(StreamState::Stopped {
                        reason: "shut down".into(),
                        fatal: false,
                        key_refused: false,
                    }));
                    return;
                }
                Ended::Fatal(reason) => return self.stop_fatally(reason, false),
                Ended::KeyRefused(reason) => return self.stop_fatally(reason, true),
                Ended::Dropped(reason) => reason,
            };
            failures += 1;
            if let Some(max) = self.max_reconnects
                && failures > max
            {
                return self.stop_fatally(format!("gave up after {max} reconnect attempts: {reason}"), false);
            }
            let wait = self.backoff.delay(failures);
            self.send(ListenUpdate::Stream(StreamState::Reconnecting {
                in_: wait,
                attempt: failures,
                reason,
            }));
            tokio::select! {
                () = self.shutdown.cancelled() => {
                    self.send(ListenUpdate::Stream(StreamState::Stopped { reason: "shut down".into(), fatal: false, key_refused: false }));
                    return;
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn stop_fatally(&self, reason: String, key_refused: bool) {
        self.send(ListenUpdate::Stream(StreamState::Stopped {
            reason,
            fatal: true,
            key_refused,
        }));
        let _ = self.deliveries.send(Input::StreamEnded);
    }

    fn send(&self, update: ListenUpdate) {
        let _ = self.updates.send(update);
    }

    async fn connection(
        &mut self,
        last_sequence: &mut Option<i64>,
        ready_sent: &mut bool,
        failures: &mut u32,
    ) -> Ended {
        let options = StreamOptions {
            last_event_id: self.last_event_id.clone(),
            after_sequence: self.after_sequence,
            types: self.types.clone(),
        };
        let mut stream = match self.client.open_stream(&self.api_key, &options).await {
            Ok(stream) => stream,
            Err(e) => {
                return match fatal_reason(&e) {
                    Some(reason) if e.is_unauthorized() => Ended::KeyRefused(reason),
                    Some(reason) => Ended::Fatal(reason),
                    None => Ended::Dropped(e.to_string()),
                };
            }
        };
        while let Some(frame) = stream.next().await {
            match frame {
                Ok(Frame::Ready { replayed }) => {
                    *failures = 0;
                    self.send(ListenUpdate::Stream(StreamState::Live { replayed }));
                    if !*ready_sent {
                        *ready_sent = true;
                        self.send(ListenUpdate::Ready {
                            secret: self.secret.clone(),
                            replayed,
                        });
                    }
                }
                Ok(Frame::Event { event, raw, resend }) => {
                    if !resend {
                        // The gateway resumes after `last_event_id`; anything at or
                        // below what was already seen is a duplicate of a replay.
                        if last_sequence.is_some_and(|seen| event.sequence <= seen) {
                            continue;
                        }
                        *last_sequence = Some(event.sequence);
                        self.last_event_id = Some(event.id.clone());
                    }
                    let received = ReceivedEvent {
                        id: event.id,
                        event_type: event.kind,
                        sequence: event.sequence,
                        created_at: event.created_at,
                        resent: resend,
                        raw,
                    };
                    self.send(ListenUpdate::Event(received.clone()));
                    let _ = self.deliveries.send(Input::Event(received));
                }
                Err(e) => return Ended::Dropped(e.to_string()),
            }
        }
        Ended::Dropped("the connection ended".into())
    }
}
