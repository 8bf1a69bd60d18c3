//! The harness: the whole stack in-process, a local receiver that records
//! what `micro` forwards, and the `micro` binary run as a user would.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use client::Client;
use contract::auth::Credentials;
use stack::testing::TestStack;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout};
use tokio::sync::mpsc;

pub const PASSWORD: &str = "correct horse battery";
pub const WAIT: Duration = Duration::from_secs(15);

pub fn micro_binary() -> &'static str {
    env!("CARGO_BIN_EXE_micro")
}

/// A developer with a key, made through the public API.
pub struct Developer {
    pub api_key: String,
    pub key_id: String,
    pub access_token: String,
    pub secret: String,
}

pub async fn developer(client: &Client, email: &str) -> Developer {
    let credentials = Credentials {
        email: email.into(),
        password: PASSWORD.into(),
    };
    client.register(&credentials).await.expect("registers");
    let tokens = client.login(&credentials).await.expect("logs in").into_value();
    let key = client
        .create_api_key(&tokens.access_token, "test")
        .await
        .expect("creates a key")
        .into_value();
    let secret = client
        .webhook_secret(&key.key)
        .await
        .expect("a secret")
        .into_value()
        .secret;
    Developer {
        api_key: key.key,
        key_id: key.id,
        access_token: tokens.access_token,
        secret,
    }
}

/// The stack and a private config directory for `micro`.
pub struct Env {
    pub stack: TestStack,
    pub client: Client,
    pub config: tempfile::TempDir,
}

impl Env {
    pub async fn start() -> Self {
        let stack = TestStack::start().await;
        let client = Client::new(&stack.gateway_url()).expect("client");
        Self {
            stack,
            client,
            config: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// `micro` with this environment's gateway and config, the file store forced.
    pub fn micro(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(micro_binary());
        command
            .args(args)
            .env("MICRO_GATEWAY", self.stack.gateway_url())
            .env("MICRO_CONFIG_DIR", self.config.path())
            .env("MICRO_KEYRING", "file")
            .env_remove("MICRO_API_KEY")
            .env_remove("MICRO_PROFILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        run(self.micro(args), None).await
    }
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub async fn run(mut command: tokio::process::Command, stdin: Option<&str>) -> Output {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("micro starts");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use tokio::io::AsyncWriteExt;
        pipe.write_all(text.as_bytes()).await.expect("stdin");
        drop(pipe);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("micro finishes within a minute")
        .expect("micro runs");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A running `micro listen` whose output is read line by line.
pub struct Listening {
    pub child: Child,
    pub stdout: Lines<BufReader<ChildStdout>>,
    pub stderr: Lines<BufReader<ChildStderr>>,
}

impl Listening {
    pub fn spawn(mut command: tokio::process::Command) -> Self {
        let mut child = command.spawn().expect("micro listen starts");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// Reads stderr until a line contains `needle`; returns the lines read.
    pub async fn stderr_until(&mut self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        let found = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = self.stderr.next_line().await {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(found, Ok(true)),
            "no {needle:?} on stderr; saw {seen:#?}"
        );
        seen
    }

    pub async fn stdout_line(&mut self) -> String {
        tokio::time::timeout(WAIT, self.stdout.next_line())
            .await
            .expect("a line on stdout in time")
            .expect("stdout readable")
            .expect("stdout still open")
    }

    pub fn interrupt(&self) {
        let pid = self.child.id().expect("still running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")),
            nix::sys::signal::Signal::SIGINT,
        )
        .expect("SIGINT");
    }

    pub async fn exit_code(mut self) -> i32 {
        // Drain so the child never blocks on a full pipe while exiting.
        let drain = async { while let Ok(Some(_)) = self.stdout.next_line().await {} };
        let (_, status) = tokio::time::timeout(WAIT, async { tokio::join!(drain, self.child.wait()) })
            .await
            .expect("micro exits in time");
        status.expect("exit status").code().unwrap_or(-1)
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Checks the Standard Webhooks signature with `contract`'s `verify`.
    pub fn verify(&self, secret: &str) -> Result<(), contract::webhook::SignatureError> {
        let timestamp: i64 = self.header("webhook-timestamp").parse().unwrap_or_default();
        contract::webhook::verify(
            secret,
            self.header("webhook-id"),
            timestamp,
            &self.body,
            self.header("webhook-signature"),
            chrono::Utc::now().timestamp(),
        )
    }

    pub fn event(&self) -> contract::events::Event {
        serde_json::from_slice(&self.body).expect("the body is an event")
    }
}

#[derive(Clone)]
struct ReceiverState {
    requests: mpsc::UnboundedSender<Received>,
    /// Statuses answered in turn; 200 once they run out.
    statuses: Arc<Mutex<Vec<u16>>>,
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let _ = state.requests.send(Received { headers, body });
    let status = {
        let mut statuses = state.statuses.lock().expect("lock");
        if statuses.is_empty() {
            200
        } else {
            statuses.remove(0)
        }
    };
    (
        StatusCode::from_u16(status).expect("status"),
        "{\"received\":true}",
    )
}

/// A local webhook endpoint at `/webhook`.
pub struct Receiver {
    pub url: String,
    pub requests: mpsc::UnboundedReceiver<Received>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::answering(Vec::new()).await
    }

    /// Answers with `statuses` in turn, then 200.
    pub async fn answering(statuses: Vec<u16>) -> Self {
        let (tx, requests) = mpsc::unbounded_channel();
        let state = ReceiverState {
            requests: tx,
            statuses: Arc::new(Mutex::new(statuses)),
        };
        let app = Router::new().route("/webhook", post(receive)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/webhook", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, requests }
    }

    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.requests.recv())
            .await
            .expect("a delivery in time")
            .expect("receiver running")
    }

    /// Nothing more arrives within `quiet`: used after everything expected came.
    pub async fn assert_quiet(&mut self, quiet: Duration) {
        if let Ok(Some(extra)) = tokio::time::timeout(quiet, self.requests.recv()).await {
            panic!("an unexpected delivery: {}", String::from_utf8_lossy(&extra.body));
        }
    }
}

/// A port nothing listens on.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/webhook")
}

/// The API key `micro login` kept in the file store of `env`.
pub fn stored_key(env: &Env) -> String {
    let bytes = std::fs::read(env.config.path().join("credentials.json")).expect("the file store exists");
    let entries: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let account = format!("default@{}", env.stack.gateway_url());
    entries[&account]["api_key"]
        .as_str()
        .expect("a stored key")
        .to_owned()
}
