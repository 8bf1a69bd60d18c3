//! Path traversal through the gateway: every spelling of a dot segment,
//! encoded separator or backslash, against every public prefix, sent byte for
//! byte over a raw socket, is refused, and no service ever sees an
//! `/internal` path on a user's behalf.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use platform::internal_token::{Caller, HEADER, InternalTokens, Service};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stack::testing::TestStack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::support::{Client, code};

/// A TCP relay in front of a service that keeps every byte the gateway sends
/// through it, so that a test can read the request lines a service received.
struct Recorder {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<u8>>>,
    stop: CancellationToken,
}

impl Recorder {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let sent = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (log, stopped) = (sent.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stopped.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((inbound, _)) = accepted else { continue };
                let (log, stopped) = (log.clone(), stopped.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut from_gateway, mut to_gateway) = inbound.into_split();
                    let (mut from_service, mut to_service) = outbound.into_split();
                    let upstream = async {
                        let mut buffer = [0u8; 8192];
                        loop {
                            let n = match from_gateway.read(&mut buffer).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            log.lock().expect("log").extend_from_slice(&buffer[..n]);
                            if to_service.write_all(&buffer[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    let downstream = tokio::io::copy(&mut from_service, &mut to_gateway);
                    tokio::select! {
                        () = stopped.cancelled() => {}
                        () = upstream => {}
                        _ = downstream => {}
                    }
                });
            }
        });
        Self { addr, sent, stop }
    }

    /// The target of every request line the service was sent. A request
    /// follows the previous one's body without a line break, so each line
    /// ending in the version is searched for the last method in it.
    fn request_targets(&self) -> Vec<String> {
        const METHODS: [&str; 7] = ["GET ", "POST ", "PUT ", "PATCH ", "DELETE ", "HEAD ", "OPTIONS "];
        let sent = self.sent.lock().expect("log").clone();
        String::from_utf8_lossy(&sent)
            .split("\r\n")
            .filter_map(|line| {
                let line = line.strip_suffix(" HTTP/1.1")?;
                let (at, method) = METHODS
                    .iter()
                    .filter_map(|method| line.rfind(method).map(|at| (at, method)))
                    .max_by_key(|(at, _)| *at)?;
                Some(line[at + method.len()..].to_owned())
            })
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A second gateway on the test stack whose every upstream call goes
/// through a recorder.
struct RecordedGateway {
    addr: SocketAddr,
    recorders: Vec<Recorder>,
    shutdown: CancellationToken,
}

impl RecordedGateway {
    async fn start(stack: &TestStack) -> Self {
        let recorders = vec![
            Recorder::start(stack.stack.auth).await,
            Recorder::start(stack.stack.payments).await,
            Recorder::start(stack.stack.ledger).await,
        ];
        let mut config = stack.stack.config.gateway.clone();
        config.auth_url = format!("http://{}", recorders[0].addr);
        config.payments_url = format!("http://{}", recorders[1].addr);
        config.ledger_url = format!("http://{}", recorders[2].addr);
        let shutdown = CancellationToken::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = gateway::build(&config, listener, shutdown.clone())
            .await
            .expect("the recorded gateway starts");
        Self {
            addr: server.local_addr,
            recorders,
            shutdown,
        }
    }

    fn request_targets(&self) -> Vec<String> {
        self.recorders
            .iter()
            .flat_map(Recorder::request_targets)
            .collect()
    }
}

impl Drop for RecordedGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Sends `target` exactly as given, as `curl --path-as-is` would, and
/// returns the status and the body.
async fn raw_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    bearer: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut request = format!("{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    if let Some(token) = bearer {
        request.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    request.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    let mut socket = TcpStream::connect(addr).await.expect("connect to the gateway");
    socket
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
        .await
        .expect("the gateway answers within 10 s")
        .expect("read the answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?} for {target:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Every way to write `.` or `..` that a URL parser resolves.
fn dot_spellings() -> Vec<String> {
    let dot = [".", "%2e", "%2E"];
    let mut spellings: Vec<String> = dot.iter().map(|d| d.to_string()).collect();
    for first in dot {
        for second in dot {
            spellings.push(format!("{first}{second}"));
        }
    }
    spellings
}

/// The separators a dot segment can be followed by, encoded or not.
const SEPARATORS: [&str; 6] = ["/", "%2f", "%2F", "%5c", "%5C", "\\"];

/// Where the attack starts: every public prefix, the stream, and a path no
/// route has.
const PREFIXES: [&str; 10] = [
    "/v1/payments/",
    "/v1/events/",
    "/v1/events/stream/",
    "/v1/ledger/",
    "/v1/webhooks/",
    "/v1/webhooks/secret/roll/",
    "/auth/api-keys/",
    "/auth/me/",
    "/auth/login/",
    "/nowhere/",
];

#[tokio::test]
async fn no_spelling_of_a_traversal_reaches_an_internal_route() {
    let stack = TestStack::start_with(|c| c.gateway.rate_limit_per_minute = 1_000_000).await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let gateway = RecordedGateway::start(&stack).await;

    // The reported attack, with the caller's own id, so that it would post.
    let posting = json!({"reference": "x1", "merchant_id": ada.user_id, "kind": "payment", "amount": 999_999_999, "currency": "usd"})
        .to_string();
    let mut sent = 0;
    for prefix in PREFIXES {
        let bearer = if prefix.starts_with("/auth/") {
            &ada.access_token
        } else {
            &ada.api_key
        };
        for dots in dot_spellings() {
            for separator in SEPARATORS {
                for depth in 1..=3 {
                    let climb = format!("{dots}{separator}").repeat(depth);
                    let target = format!("{prefix}{climb}internal/payment-postings");
                    let (status, body) =
                        raw_request(gateway.addr, "POST", &target, Some(bearer), &posting).await;
                    sent += 1;
                    assert_eq!(status, 400, "{target}: {body}");
                    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    assert_eq!(code(&body), "invalid_path", "{target}: {body}");
                    assert_eq!(body["error"]["type"], "invalid_request_error");
                }
            }
        }
        // NULs, empty segments and malformed escapes, encoded or raw.
        for tail in [
            "a%00/internal",
            "/internal/trial-balance",
            "a//internal",
            "%zz/internal",
            "%c0%ae%c0%ae/internal",
        ] {
            let target = format!("{prefix}{tail}");
            let (status, body) = raw_request(gateway.addr, "GET", &target, Some(bearer), "").await;
            sent += 1;
            assert_eq!(status, 400, "{target}: {body}");
            let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            assert_eq!(code(&body), "invalid_path", "{target}");
        }
        // Refused before authentication: no credential, the same answer.
        let target = format!("{prefix}%2e%2e/%2e%2e/internal/trial-balance");
        let (status, body) = raw_request(gateway.addr, "GET", &target, None, "").await;
        assert_eq!(status, 400, "{target}: {body}");
    }
    assert!(sent > 2_000, "{sent} spellings sent");

    // A raw NUL never gets past the HTTP parser; it must not get anywhere else either.
    let (status, _) = raw_request(
        gateway.addr,
        "GET",
        "/v1/ledger/a\0/../../internal/trial-balance",
        Some(&ada.api_key),
        "",
    )
    .await;
    assert_eq!(status, 400);

    // Ordinary requests still go through the recorded gateway, so the
    // recorders do see what the gateway forwards.
    let recorded = Client::at(format!("http://{}", gateway.addr));
    let (status, accounts) = recorded.get("/v1/ledger/accounts", Some(&ada.api_key)).await;
    assert_eq!(status, StatusCode::OK, "{accounts}");
    let (status, _) = recorded.get("/auth/me", Some(&ada.access_token)).await;
    assert_eq!(status, StatusCode::OK);

    let targets = gateway.request_targets();
    assert!(targets.iter().any(|t| t == "/v1/ledger/accounts"), "{targets:?}");
    assert!(targets.iter().any(|t| t == "/auth/me"), "{targets:?}");
    let internal: Vec<&String> = targets
        .iter()
        .filter(|t| t.to_ascii_lowercase().contains("internal") || t.contains("%2") || t.contains("%5"))
        .filter(|t| t.as_str() != "/internal/api-keys/verify")
        .collect();
    assert!(internal.is_empty(), "services were sent {internal:?}");

    // Nothing moved: no balance, and no entry anywhere in the ledger.
    for account in accounts["data"].as_array().expect("a list") {
        assert_eq!(account["balance"], 0, "{account}");
    }
    assert_ledger_holds_no_entry(&stack).await;
}

#[tokio::test]
async fn the_reported_attack_no_longer_mints_money() {
    let stack = TestStack::start().await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let posting = json!({"reference": "x1", "merchant_id": ada.user_id, "kind": "payment", "amount": 999_999_999, "currency": "usd"})
        .to_string();
    let (status, body) = raw_request(
        stack.stack.gateway,
        "POST",
        "/v1/ledger/%2e%2e/%2e%2e/internal/payment-postings",
        Some(&ada.api_key),
        &posting,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, accounts) = client.get("/v1/ledger/accounts", Some(&ada.api_key)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        accounts["data"]
            .as_array()
            .expect("a list")
            .iter()
            .all(|a| a["balance"] == 0),
        "{accounts}"
    );
    // And a key cannot mint its own successor through the webhooks prefix.
    let (status, body) = raw_request(
        stack.stack.gateway,
        "POST",
        "/v1/webhooks/%2e%2e/%2e%2e/auth/api-keys",
        Some(&ada.api_key),
        r#"{"name":"successor"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (_, keys) = client.get("/auth/api-keys", Some(&ada.access_token)).await;
    assert_eq!(keys["data"].as_array().map(Vec::len), Some(1), "{keys}");
}

/// Spellings that some servers and proxies resolve as `..` but a URL parser
/// does not: double-encoded dots, Tomcat's `..;`, full-width and one-dot
/// leaders, `%u` escapes, dots padded by encoded blanks. The gateway may
/// refuse them or forward them as plain segments; either way the service
/// must see a path under the route's own prefix in which no segment, decoded
/// once more, is a dot segment, and nothing reaches an internal route.
#[tokio::test]
async fn dot_look_alikes_stay_plain_segments_under_the_route_prefix() {
    let stack = TestStack::start_with(|c| c.gateway.rate_limit_per_minute = 1_000_000).await;
    let client = Client::new(&stack);
    let ada = client.developer("ada@example.com").await;
    let gateway = RecordedGateway::start(&stack).await;
    const LOOK_ALIKES: [&str; 14] = [
        "%252e%252e",
        "%252E%252E",
        "%25252e%25252e",
        "..;",
        ".;",
        "..%3b",
        "%2e%2e;jsessionid=x",
        "%ef%bc%8e%ef%bc%8e",
        "%u002e%u002e",
        "...",
        "%2e%2e%2e",
        "..%20",
        "%20..",
        "..%09",
    ];
    const AFTER: [&str; 4] = ["/", "%252f", "%255c", "/%252e%252e/"];
    let posting = json!({"reference": "x2", "merchant_id": ada.user_id, "kind": "payment", "amount": 5, "currency": "usd"})
        .to_string();
    let mut sent = 0;
    for prefix in PREFIXES.iter().filter(|p| !p.starts_with("/nowhere")) {
        let bearer = if prefix.starts_with("/auth/") {
            &ada.access_token
        } else {
            &ada.api_key
        };
        for look_alike in LOOK_ALIKES {
            for after in AFTER {
                for depth in 1..=2 {
                    let climb = format!("{look_alike}{after}").repeat(depth);
                    let target = format!("{prefix}{climb}internal/payment-postings");
                    let (status, body) =
                        raw_request(gateway.addr, "POST", &target, Some(bearer), &posting).await;
                    sent += 1;
                    assert!(
                        matches!(status, 400 | 404 | 405),
                        "{target} answered {status}: {body}"
                    );
                }
            }
        }
    }
    assert!(sent > 700, "{sent} look-alikes sent");

    let upstream_prefixes = [
        "/v1/payments",
        "/v1/events",
        "/v1/ledger",
        "/v1/webhooks",
        "/auth/",
        "/internal/api-keys/verify",
    ];
    for target in gateway.request_targets() {
        assert!(
            upstream_prefixes.iter().any(|p| target.starts_with(p)),
            "a service was sent {target}"
        );
        let path = target.split('?').next().unwrap_or_default();
        for segment in path.split('/') {
            let once = percent_decode(segment);
            assert!(
                once != "." && once != ".." && !once.contains('/') && !once.contains('\\'),
                "{target} holds a segment that decodes to {once:?}"
            );
        }
    }

    assert_ledger_holds_no_entry(&stack).await;
}

/// The ledger's trial balance, asked as ops: empty when no posting was made.
async fn assert_ledger_holds_no_entry(stack: &TestStack) {
    let ops =
        InternalTokens::new(&stack.config.gateway.internal_token_secret).mint(&Caller::Service(Service::Ops));
    let books: Value = reqwest::Client::new()
        .get(format!("http://{}/internal/trial-balance", stack.stack.ledger))
        .header(HEADER, ops)
        .send()
        .await
        .expect("the ledger answers")
        .json()
        .await
        .expect("json");
    assert_eq!(books, json!([]), "the ledger holds no entry");
}

/// One round of percent-decoding, as a service's router does.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| segment.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
