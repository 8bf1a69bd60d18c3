//! `/v1/events/stream` as a typed stream of frames that keeps each event's
//! exact bytes, so that what is forwarded is what the gateway sent.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use contract::events::{Event, EventType};
use futures::{Sink, Stream};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{Client, ClientError, Result, error_chain};

/// Where a stream starts and what it carries.
#[derive(Debug, Clone, Default)]
pub struct StreamOptions {
    /// Replay every event after this one before going live.
    pub last_event_id: Option<String>,
    /// Replay every event with a higher sequence; used when there is no
    /// `last_event_id` to name (`Some(0)`: every event of the account).
    pub after_sequence: Option<i64>,
    /// Only these types; all when empty.
    pub types: Vec<EventType>,
}

/// One frame of the event stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Missed events are sent (`replayed` of them); live events follow.
    Ready { replayed: u64 },
    Event {
        event: Box<Event>,
        /// The event object exactly as the gateway sent it.
        raw: Bytes,
        /// A user asked for this event to be sent again.
        resend: bool,
    },
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow, default)]
    event: Option<&'a RawValue>,
    #[serde(default)]
    replayed: u64,
    #[serde(default)]
    resend: bool,
}

pub(crate) fn parse_frame(text: &str) -> Result<Option<Frame>> {
    let decode = |e: serde_json::Error| ClientError::Decode {
        status: 101,
        message: format!("stream frame: {e}"),
    };
    let raw: RawFrame<'_> = serde_json::from_str(text).map_err(decode)?;
    match raw.kind {
        "ready" => Ok(Some(Frame::Ready {
            replayed: raw.replayed,
        })),
        "event" => {
            let event_raw = raw.event.ok_or_else(|| ClientError::Decode {
                status: 101,
                message: "an event frame without its event".into(),
            })?;
            let event: Event = serde_json::from_str(event_raw.get()).map_err(decode)?;
            Ok(Some(Frame::Event {
                event: Box::new(event),
                raw: Bytes::copy_from_slice(event_raw.get().as_bytes()),
                resend: raw.resend,
            }))
        }
        // Frames a newer gateway may add are not this client's business.
        _ => Ok(None),
    }
}

/// The open stream. Ends with `Err(StreamClosed)` when the gateway closes
/// it, or a network error when the connection drops.
pub struct EventStream {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    done: bool,
}

impl Client {
    /// Opens `/v1/events/stream`. A refused key or an unknown
    /// `last_event_id` comes back as [`ClientError::Api`].
    pub async fn open_stream(&self, api_key: &str, options: &StreamOptions) -> Result<EventStream> {
        let mut url = self.url("/v1/events/stream")?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|()| ClientError::InvalidUrl(url.to_string()))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(id) = &options.last_event_id {
                query.append_pair("last_event_id", id);
            } else if let Some(sequence) = options.after_sequence {
                query.append_pair("after_sequence", &sequence.to_string());
            }
            if !options.types.is_empty() {
                let types: Vec<&str> = options.types.iter().map(EventType::as_str).collect();
                query.append_pair("types", &types.join(","));
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| ClientError::InvalidUrl(e.to_string()))?;
        let bearer = format!("Bearer {api_key}")
            .parse()
            .map_err(|_| ClientError::InvalidUrl("the API key is not a valid header value".into()))?;
        request.headers_mut().insert("authorization", bearer);
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(EventStream { socket, done: false }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response.body().clone().unwrap_or_default();
                Err(crate::error::from_answer(status, &body, None))
            }
            Err(e) => Err(ClientError::Network(error_chain(&e))),
        }
    }
}

impl EventStream {
    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

impl Stream for EventStream {
    type Item = Result<Frame>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let message = match Pin::new(&mut self.socket).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(ClientError::Network(
                        "the connection ended without a close frame".into(),
                    ))));
                }
                Poll::Ready(Some(Err(e))) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(ClientError::Network(error_chain(&e)))));
                }
                Poll::Ready(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => match parse_frame(text.as_str()) {
                    Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                    Ok(None) => {}
                    Err(e) => return Poll::Ready(Some(Err(e))),
                },
                Message::Close(frame) => {
                    self.done = true;
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, "no reason given".into()));
                    return Poll::Ready(Some(Err(ClientError::StreamClosed { code, reason })));
                }
                // Pings are answered by the socket itself on the next poll.
                _ => {
                    let _ = Pin::new(&mut self.socket).poll_flush(cx);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_frames_keep_the_exact_bytes() {
        let event = r#"{"id":"evt_1","object":"event","type":"payment.created","sequence":1,"created_at":"2026-01-01T00:00:00Z","data":{"object":{"b":1,  "a":2}}}"#;
        let text = format!(r#"{{"type":"event","event":{event},"resend":true}}"#);
        let Some(Frame::Event {
            event: parsed,
            raw,
            resend,
        }) = parse_frame(&text).expect("parses")
        else {
            panic!("an event frame");
        };
        assert_eq!(raw, Bytes::from(event));
        assert!(resend);
        assert_eq!(parsed.sequence, 1);
        assert_eq!(
            parse_frame(r#"{"type":"ready","replayed":3}"#).expect("parses"),
            Some(Frame::Ready { replayed: 3 })
        );
        assert_eq!(parse_frame(r#"{"type":"hello"}"#).expect("parses"), None);
    }
}
