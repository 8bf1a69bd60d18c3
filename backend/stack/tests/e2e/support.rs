use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::Value;
use stack::testing::TestStack;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

pub const PASSWORD: &str = "correct horse battery";

/// A user of the platform, as a developer would be after `micro login`.
pub struct Developer {
    pub user_id: String,
    pub access_token: String,
    pub api_key: String,
    pub key_id: String,
}

/// Raw requests to the gateway, answering status and JSON body: these tests
/// send what the typed client (`client::Client`, used for setting a user up)
/// never would, and check every status and error code it answers.
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub typed: client::Client,
}

impl Client {
    pub fn new(stack: &TestStack) -> Self {
        Self::at(stack.gateway_url())
    }

    pub fn at(base: String) -> Self {
        Self::with_http(base, reqwest::Client::new())
    }

    /// Raw requests through `http` (bound to another local address, say).
    pub fn with_http(base: String, http: reqwest::Client) -> Self {
        let typed = client::Client::new(&base).expect("a valid gateway URL");
        Self { base, http, typed }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
        let (status, _, body) = self.send(reqwest::Method::GET, path, bearer, None).await;
        (status, body)
    }

    pub async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> (StatusCode, Value) {
        let (status, _, body) = self.send(reqwest::Method::POST, path, bearer, Some(body)).await;
        (status, body)
    }

    /// Registers, logs in and creates an API key, all through the gateway.
    /// Registers `email`, logs in and creates an API key, as `micro login` does.
    pub async fn developer(&self, email: &str) -> Developer {
        let credentials = contract::auth::Credentials {
            email: email.to_owned(),
            password: PASSWORD.to_owned(),
        };
        let user = self.typed.register(&credentials).await.expect("registers").value;
        let session = self.typed.login(&credentials).await.expect("logs in").value;
        let key = self
            .typed
            .create_api_key(&session.access_token, "test")
            .await
            .expect("creates an API key")
            .value;
        Developer {
            user_id: user.id,
            access_token: session.access_token,
            api_key: key.key,
            key_id: key.id,
        }
    }
}

pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Opens `/v1/events/stream` with the key in the header, as `micro` does.
pub async fn open_stream(
    stack: &TestStack,
    api_key: &str,
    query: &str,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let url = format!("ws://{}/v1/events/stream{query}", stack.stack.gateway);
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {api_key}").parse().expect("header"),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// The HTTP status and error code of a refused upgrade.
pub fn refused(result: Result<Socket, tokio_tungstenite::tungstenite::Error>) -> (u16, Value) {
    match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .and_then(|bytes| serde_json::from_slice(bytes).ok())
                .unwrap_or(Value::Null);
            (response.status().as_u16(), body)
        }
        Ok(_) => panic!("the upgrade was accepted"),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
    }
}

/// The next JSON frame, answering pings and skipping other control frames.
pub async fn next_frame(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")?
            .ok()?;
        match message {
            Message::Text(text) => return Some(serde_json::from_str(&text).expect("a JSON frame")),
            Message::Ping(payload) => {
                let _ = socket.send(Message::Pong(payload)).await;
            }
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// A TCP relay to Redis that a test can cut and restore, to see what the
/// platform does while Redis is unreachable, or stall and resume, to see
/// what it does when a connection stays open but nothing comes through.
pub struct RedisRelay {
    pub port: u16,
    running: Option<CancellationToken>,
    stalled: tokio::sync::watch::Sender<bool>,
}

impl RedisRelay {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (stalled, _) = tokio::sync::watch::channel(false);
        let mut relay = Self {
            port,
            running: None,
            stalled,
        };
        relay.serve(listener);
        relay
    }

    /// Stops forwarding in both directions on every connection, old and new,
    /// without closing any: bytes wait until `resume`.
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    pub fn resume(&self) {
        self.stalled.send_replace(false);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn serve(&mut self, listener: TcpListener) {
        let stop = CancellationToken::new();
        self.running = Some(stop.clone());
        let stalled = self.stalled.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((inbound, _)) = accepted else { continue };
                let stop = stop.clone();
                let stalled = stalled.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect("127.0.0.1:6379").await else {
                        return;
                    };
                    let (from_client, to_client) = inbound.into_split();
                    let (from_redis, to_redis) = outbound.into_split();
                    tokio::select! {
                        () = stop.cancelled() => {}
                        () = pump(from_client, to_redis, stalled.subscribe()) => {}
                        () = pump(from_redis, to_client, stalled.subscribe()) => {}
                    }
                });
            }
        });
    }

    /// Closes the listener and every relayed connection.
    pub fn cut(&mut self) {
        if let Some(stop) = self.running.take() {
            stop.cancel();
        }
    }

    pub async fn restore(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the relay port");
        self.serve(listener);
    }
}

/// Copies one direction of a relayed connection, holding still while stalled.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if stalled.wait_for(|stalled| !*stalled).await.is_err() {
            return;
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            changed = stalled.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Bytes read as the stall began are held until it ends.
        if stalled.wait_for(|stalled| !*stalled).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

impl Drop for RedisRelay {
    fn drop(&mut self) {
        self.cut();
    }
}

/// The close frame that ends `socket` within `deadline`, answering pings and
/// skipping data on the way.
pub async fn closed_with(
    socket: &mut Socket,
    deadline: Duration,
) -> tokio_tungstenite::tungstenite::protocol::CloseFrame {
    tokio::time::timeout(deadline, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return frame,
                Some(Ok(Message::Ping(payload))) => {
                    let _ = socket.send(Message::Pong(payload)).await;
                }
                Some(Ok(Message::Close(None))) => panic!("closed without a code"),
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("the stream closes within the deadline")
}

/// The Prometheus text of the stack's metrics listener.
pub async fn metrics_text(stack: &TestStack) -> String {
    reqwest::get(format!("http://{}/metrics", stack.stack.metrics))
        .await
        .expect("the metrics listener answers")
        .text()
        .await
        .expect("text")
}

pub use platform::testing::metric_value;
