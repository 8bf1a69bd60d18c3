//! One signed delivery of an event's exact bytes to a local URL, per
//! Standard Webhooks: `webhook-id`, `webhook-timestamp`, and
//! `webhook-signature: v1,<base64 HMAC-SHA256>` keyed with the `whsec_` secret.

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

/// How much of a response body is kept for display.
pub const BODY_EXCERPT: usize = 4096;

/// What the local server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardResponse {
    pub status: u16,
    pub latency: Duration,
    /// The first 4 KiB of the body, lossily decoded.
    pub body_excerpt: String,
}

/// `-H "Name: value"`, checked once when the listener starts.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not a header: use \"Name: value\""))?;
    let name = name.trim();
    let value = value.trim();
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("{name:?} is not a valid header name"))?;
    HeaderValue::from_str(value).map_err(|_| format!("the value of {name} is not a valid header value"))?;
    Ok((name.to_owned(), value.to_owned()))
}

/// The three Standard Webhooks headers for one delivery.
pub fn signature_headers(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<[(String, String); 3], contract::webhook::SignatureError> {
    let signature = contract::webhook::sign(secret, id, timestamp, body)?;
    Ok([
        (contract::webhook::HEADER_ID.to_owned(), id.to_owned()),
        (
            contract::webhook::HEADER_TIMESTAMP.to_owned(),
            timestamp.to_string(),
        ),
        (contract::webhook::HEADER_SIGNATURE.to_owned(), signature),
    ])
}

/// Sends events to one URL at a time; cheap to clone.
#[derive(Debug, Clone)]
pub struct Forwarder {
    http: reqwest::Client,
    secret: String,
    extra_headers: Vec<(String, String)>,
    timeout: Option<Duration>,
}

impl Forwarder {
    /// `timeout: None` waits for as long as the server takes (breakpoints).
    pub fn new(secret: String, extra_headers: Vec<(String, String)>, timeout: Option<Duration>) -> Self {
        client::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("micro-listen/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            http,
            secret,
            extra_headers,
            timeout,
        }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Signs `body` anew (a fresh timestamp) and POSTs it. Returns the
    /// headers sent, and the answer or why there was none.
    pub async fn send(
        &self,
        url: &Url,
        event_id: &str,
        body: &Bytes,
    ) -> (Vec<(String, String)>, Result<ForwardResponse, String>) {
        let timestamp = chrono::Utc::now().timestamp();
        let mut sent = vec![("content-type".to_owned(), "application/json".to_owned())];
        match signature_headers(&self.secret, event_id, timestamp, body) {
            Ok(signed) => sent.extend(signed),
            Err(e) => return (sent, Err(format!("cannot sign: {e}"))),
        }
        sent.extend(self.extra_headers.iter().cloned());
        let mut headers = HeaderMap::new();
        for (name, value) in &sent {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        let mut request = self.http.post(url.clone()).headers(headers).body(body.clone());
        if let Some(timeout) = self.timeout {
            request = request.timeout(timeout);
        }
        let started = Instant::now();
        let outcome = async {
            let response = request.send().await.map_err(describe)?;
            let status = response.status().as_u16();
            let mut excerpt = Vec::new();
            let mut response = response;
            while let Some(chunk) = response.chunk().await.map_err(describe)? {
                let room = BODY_EXCERPT - excerpt.len();
                excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if excerpt.len() >= BODY_EXCERPT {
                    break;
                }
            }
            Ok(ForwardResponse {
                status,
                latency: started.elapsed(),
                body_excerpt: String::from_utf8_lossy(&excerpt).into_owned(),
            })
        }
        .await;
        (sent, outcome)
    }
}

/// A short reason for a failed request: what a person can act on.
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text = cause.to_string();
        source = cause.source();
    }
    if e.is_connect() {
        format!("connection failed: {text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_known_answer() {
        let [id, timestamp, signature] = signature_headers(
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        )
        .expect("signs");
        assert_eq!(
            id,
            ("webhook-id".into(), "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk".into())
        );
        assert_eq!(timestamp.1, "1649367553");
        assert_eq!(signature.1, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn headers_are_checked() {
        assert_eq!(
            parse_header("X-Test:  yes ").expect("valid"),
            ("X-Test".into(), "yes".into())
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: v").is_err());
    }
}
