//! The real `micro` binary in tmux against the in-process services: create
//! an account in the login form, create and confirm a payment, see its event
//! forwarded, replay it to a local receiver and see the 200.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use stack::testing::TestStack;

const DEADLINE: Duration = Duration::from_secs(45);

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    fn keys(&self, keys: &[&str]) {
        let status = self
            .cmd()
            .args(["send-keys", "-t", "console"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn text(&self, text: &str) {
        let status = self
            .cmd()
            .args(["send-keys", "-t", "console", "-l", text])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "console"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls the screen until `check` holds, or fails with the last screen.
    fn wait(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            if start.elapsed() > DEADLINE {
                panic!("waited {DEADLINE:?} for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for(&self, text: &str) -> String {
        self.wait(text, |screen| screen.contains(text))
    }

    fn alive(&self) -> bool {
        self.cmd()
            .args(["has-session", "-t", "console"])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

#[derive(Default, Clone)]
struct Received {
    ids: Arc<Mutex<Vec<String>>>,
}

async fn receiver() -> (String, Received) {
    let received = Received::default();
    let kept = received.clone();
    let app = Router::new().route(
        "/webhook",
        post(move |headers: HeaderMap| {
            let kept = kept.clone();
            async move {
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                if let Ok(mut ids) = kept.ids.lock() {
                    ids.push(id);
                }
                "ok from the test receiver"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/webhook"), received)
}

fn tmux_missing() -> bool {
    let missing = Command::new("tmux")
        .arg("-V")
        .output()
        .map_or(true, |o| !o.status.success());
    if missing {
        println!("skipped: tmux is not installed (apt-get install tmux)");
    }
    missing
}

/// `micro` in a detached tmux session of its own, talking to `gateway`.
fn console(gateway: &str, config: &tempfile::TempDir, name: &str) -> Tmux {
    let tmux = Tmux {
        socket: format!("micro-e2e-{name}-{}", std::process::id()),
    };
    let binary = env!("CARGO_BIN_EXE_micro");
    let command = format!(
        "env MICRO_CONFIG_DIR={} MICRO_KEYRING=file TERM=xterm-256color {binary} --gateway {gateway}",
        config.path().display(),
    );
    let status = tmux
        .cmd()
        .args([
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "32",
            "-s",
            "console",
            &command,
        ])
        .status()
        .expect("tmux new-session");
    assert!(status.success());
    tmux
}

/// Creates an account in the login form and waits for the live stream.
fn register(tmux: &Tmux, email: &str) {
    tmux.wait_for("micro · log in");
    tmux.keys(&["C-n"]);
    tmux.wait_for("create an account");
    tmux.text(email);
    tmux.keys(&["Tab"]);
    tmux.text("correct-horse-battery");
    tmux.keys(&["Enter"]);
    // The file store is refused without opting in: the console explains and offers it.
    tmux.wait_for("keyring unavailable");
    tmux.text("f");
    tmux.wait_for("● live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn log_in_pay_see_the_event_and_replay_it() {
    if tmux_missing() {
        return;
    }
    let stack = TestStack::start().await;
    let (target, received) = receiver().await;
    let config = tempfile::tempdir().expect("tempdir");
    let tmux = console(&stack.gateway_url(), &config, "pay");

    // Tmux runs the blocking polls on this thread; the stack runs on the others.
    let run = tokio::task::spawn_blocking(move || {
        register(&tmux, "dev@example.com");

        tmux.text("f");
        tmux.wait_for("forward to URL");
        tmux.keys(&["End"]);
        for _ in 0..40 {
            tmux.keys(&["BSpace"]);
        }
        tmux.text(&target);
        tmux.keys(&["Enter"]);
        tmux.wait_for(&format!("→ {}", &target[..20]));

        tmux.text("2");
        tmux.wait_for("Payments (0");
        tmux.text("n");
        tmux.wait_for("new test payment");
        tmux.keys(&["Enter"]);
        tmux.wait_for("requires_confirmation");
        tmux.keys(&["Enter"]);
        tmux.wait(" a succeeded payment", |s| {
            s.contains("confirmed pay_") && s.contains("succeeded")
        });

        tmux.text("1");
        let screen = tmux.wait("the forwarded payment.succeeded row", |s| {
            s.lines()
                .any(|l| l.contains("payment.succeeded") && l.contains(" 200"))
        });
        assert!(screen.contains("payment.created"), "{screen}");
        // The newest row (the success) is selected; its deliveries show the receiver's answer.
        tmux.wait_for("ok from the test receiver");
        tmux.text("r");
        let screen = tmux.wait("the replay's result", |s| {
            s.contains("replayed evt_") && s.contains(": 200 in")
        });
        tmux.text("q");
        let start = Instant::now();
        while tmux.alive() {
            assert!(start.elapsed() < DEADLINE, "micro did not quit");
            std::thread::sleep(Duration::from_millis(50));
        }
        screen
    });
    let screen = run.await.expect("the tmux session");
    let ids = received.ids.lock().expect("ids").clone();
    let replayed = screen
        .split("replayed ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .expect("the replayed id")
        .to_owned();
    assert!(
        ids.iter().filter(|id| **id == replayed).count() >= 2,
        "the event was forwarded and then replayed: {ids:?}"
    );
}

/// The gateway goes away under a live console and comes back on the same
/// address: the status line says so, and the stream resumes by itself with
/// the events made meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_says_when_the_gateway_is_gone_and_recovers_by_itself() {
    if tmux_missing() {
        return;
    }
    let stack = TestStack::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let gateway = gateway::build(&stack.stack.config.gateway, listener, shutdown.clone())
        .await
        .expect("a gateway starts");
    let config = tempfile::tempdir().expect("tempdir");
    let tmux = Arc::new(console(&format!("http://127.0.0.1:{port}"), &config, "offline"));

    let session = tmux.clone();
    tokio::task::spawn_blocking(move || register(&session, "away@example.com"))
        .await
        .expect("registered");
    shutdown.cancel();
    let _ = tokio::time::timeout(DEADLINE, gateway.task).await;
    let session = tmux.clone();
    tokio::task::spawn_blocking(move || session.wait_for("↻ reconnecting"))
        .await
        .expect("the console says it is reconnecting");

    // A payment while the console cannot see the platform.
    let api = client::Client::new(&stack.gateway_url()).expect("client");
    let credentials = contract::auth::Credentials {
        email: "away@example.com".into(),
        password: "correct-horse-battery".into(),
    };
    let session_tokens = api.login(&credentials).await.expect("logs in").value;
    let key = api
        .create_api_key(&session_tokens.access_token, "test")
        .await
        .expect("a key")
        .value;
    let order = contract::payments::CreatePaymentRequest {
        amount: 4200,
        currency: "usd".into(),
        description: None,
        metadata: None,
        customer_email: None,
    };
    api.create_payment(&key.key, &order, None).await.expect("pays");

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the same port again");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let _gateway = gateway::build(&stack.stack.config.gateway, listener, shutdown.clone())
        .await
        .expect("the gateway starts again");
    let session = tmux.clone();
    let screen = tokio::task::spawn_blocking(move || {
        session.wait("live again with the payment made meanwhile", |s| {
            s.contains("● live") && s.contains("payment.created")
        })
    })
    .await
    .expect("the console recovers");
    assert!(!screen.contains("↻ reconnecting"), "{screen}");
    shutdown.cancel();
}
