//! The platform the console starts: spawned, waited for service by
//! service, and stopped with SIGTERM (or killed when it will not stop).
//! A small stand-in that serves `/readyz` plays `micro-stack` where its
//! behaviour is the point; the real one runs when `MICRO_STACK_BIN` names it.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use micro::local_stack::{LocalStack, Services, answers};

/// Serves `/readyz` on the four addresses `micro-stack` would, one after
/// the other; `FAKE_MODE=fail` exits at once, `stubborn` ignores SIGTERM.
const FAKE_STACK: &str = r#"#!/usr/bin/env python3
import os, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

mode = os.environ.get("FAKE_MODE", "serve")
if mode == "fail":
    print("error: cannot reach PostgreSQL at 127.0.0.1:5432", file=sys.stderr, flush=True)
    sys.exit(3)

class Ready(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

def stop(signum, frame):
    with open(os.environ["FAKE_MARK"], "w") as mark:
        mark.write("terminated")
    os._exit(0)

signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else stop)
print("fake micro-stack starting", flush=True)
for name in ["AUTH_ADDR", "LEDGER_ADDR", "PAYMENTS_ADDR", "GATEWAY_ADDR"]:
    host, port = os.environ[name].rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    time.sleep(0.05)
print("fake micro-stack ready", flush=True)
while True:
    time.sleep(1)
"#;

fn fake_stack(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("micro-stack");
    std::fs::write(&path, FAKE_STACK).expect("write the stand-in");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn free_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

fn free_services() -> Services {
    Services {
        gateway: free_port(),
        auth: free_port(),
        payments: free_port(),
        ledger: free_port(),
    }
}

fn env(dir: &Path, mode: &str) -> Vec<(String, String)> {
    vec![
        ("FAKE_MODE".into(), mode.into()),
        ("FAKE_MARK".into(), dir.join("mark").display().to_string()),
    ]
}

#[tokio::test]
async fn it_is_waited_for_service_by_service_and_stopped_with_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let services = free_services();
    let gateway = format!("http://{}", services.gateway);
    assert!(!answers(&gateway).await, "nothing there yet");
    let log = dir.path().join("state").join("micro-stack.log");
    let mut stack = LocalStack::spawn(&fake_stack(dir.path()), services, &log, &env(dir.path(), "serve"))
        .expect("spawns");
    let mut seen: Vec<Vec<(&str, bool)>> = Vec::new();
    stack
        .wait_ready(Duration::from_secs(20), |up, _| seen.push(up.to_vec()))
        .await
        .expect("ready");
    assert_eq!(
        seen.first().expect("the first report"),
        &[
            ("auth", false),
            ("ledger", false),
            ("payments", false),
            ("gateway", false)
        ]
    );
    assert_eq!(
        seen.last().expect("the last report"),
        &[
            ("auth", true),
            ("ledger", true),
            ("payments", true),
            ("gateway", true)
        ]
    );
    assert!(answers(&gateway).await);

    let status = stack.stop().expect("it was running");
    assert_eq!(status.code(), Some(0), "it exits on SIGTERM: {status:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mark")).expect("the stand-in saw SIGTERM"),
        "terminated"
    );
    assert!(!answers(&gateway).await, "nothing answers once it is stopped");
    assert!(stack.stop().is_none(), "stopping twice is harmless");
    let logged = std::fs::read_to_string(&log).expect("the log");
    assert!(logged.contains("started by micro at"), "{logged}");
    // The stand-in's own output lands in the log too. ("ready" may not: the
    // gateway answers a moment before that line is printed, and the stop
    // can come first.)
    assert!(logged.contains("fake micro-stack starting"), "{logged}");
}

#[tokio::test]
async fn one_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("micro-stack.log");
    let mut stack = LocalStack::spawn(
        &fake_stack(dir.path()),
        free_services(),
        &log,
        &env(dir.path(), "stubborn"),
    )
    .expect("spawns");
    stack
        .wait_ready(Duration::from_secs(20), |_, _| {})
        .await
        .expect("ready");
    stack.grace = Duration::from_millis(300);
    let started = Instant::now();
    let status = stack.stop().expect("it was running");
    assert_eq!(status.signal(), Some(9), "killed: {status:?}");
    assert!(started.elapsed() >= stack.grace, "SIGTERM had its chance first");
}

#[tokio::test]
async fn one_that_exits_before_it_is_ready_is_reported_with_its_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("micro-stack.log");
    let mut stack = LocalStack::spawn(
        &fake_stack(dir.path()),
        free_services(),
        &log,
        &env(dir.path(), "fail"),
    )
    .expect("spawns");
    let error = stack
        .wait_ready(Duration::from_secs(20), |_, _| {})
        .await
        .expect_err("it exited");
    assert!(error.contains("micro-stack exited"), "{error}");
    assert!(error.contains("3"), "the exit code is named: {error}");
    let tail = stack.log_tail(5);
    assert!(tail.contains("cannot reach PostgreSQL"), "{tail}");
}

#[tokio::test]
async fn dropping_it_stops_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let services = free_services();
    let mut stack = LocalStack::spawn(
        &fake_stack(dir.path()),
        services,
        &dir.path().join("log"),
        &env(dir.path(), "serve"),
    )
    .expect("spawns");
    stack
        .wait_ready(Duration::from_secs(20), |_, _| {})
        .await
        .expect("ready");
    drop(stack);
    assert!(dir.path().join("mark").exists(), "SIGTERM on drop");
    assert!(!answers(&format!("http://{}", services.gateway)).await);
}

/// The real `micro-stack` on ports and databases of its own. `MICRO_STACK_BIN`
/// names it (CI sets it to the one `cargo nextest run --workspace` built).
#[tokio::test]
async fn the_real_micro_stack_starts_answers_and_stops_cleanly() {
    let Some(binary) = std::env::var_os("MICRO_STACK_BIN").map(PathBuf::from) else {
        eprintln!("skipped: set MICRO_STACK_BIN to a micro-stack binary to run this test");
        return;
    };
    assert!(
        binary.is_file(),
        "MICRO_STACK_BIN={} is not a file",
        binary.display()
    );
    let databases = ["auth", "payments", "ledger"].map(platform::testing::TestDatabase::reserve);
    let dir = tempfile::tempdir().expect("tempdir");
    let services = free_services();
    let env: Vec<(String, String)> = vec![
        ("AUTH_DATABASE_URL".into(), databases[0].url.clone()),
        ("PAYMENTS_DATABASE_URL".into(), databases[1].url.clone()),
        ("LEDGER_DATABASE_URL".into(), databases[2].url.clone()),
        (
            "REDIS_PREFIX".into(),
            format!("test:{}:", platform::testing::unique_suffix()),
        ),
        ("METRICS_ADDR".into(), "127.0.0.1:0".into()),
        ("RUST_LOG".into(), "warn".into()),
    ];
    let log = dir.path().join("micro-stack.log");
    let mut stack = LocalStack::spawn(&binary, services, &log, &env).expect("spawns");
    let ready = stack.wait_ready(Duration::from_secs(60), |_, _| {}).await;
    assert!(ready.is_ok(), "{ready:?}\n{}", stack.log_tail(20));
    let gateway = format!("http://{}", services.gateway);
    let client = client::Client::new(&gateway).expect("client");
    client
        .register(&contract::auth::Credentials {
            email: "local@example.com".into(),
            password: crate::support::PASSWORD.into(),
        })
        .await
        .expect("the started platform serves the API");
    let status = stack.stop().expect("it was running");
    assert!(
        status.success(),
        "a graceful exit on SIGTERM: {status:?}\n{}",
        stack.log_tail(20)
    );
    assert!(!answers(&gateway).await);
}
