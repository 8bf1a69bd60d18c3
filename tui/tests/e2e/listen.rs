//! `micro listen` and the listen core, against the real stack.

use std::collections::HashSet;
use std::time::Duration;

use client::Client;
use contract::events::EventType;
use micro::listen::{self, ListenOptions, ListenUpdate, Since, StreamState};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use crate::support::{Env, Listening, PASSWORD, Receiver, WAIT, closed_port_url, developer};

fn options(target: &str) -> ListenOptions {
    ListenOptions {
        target: Some(target.parse().expect("url")),
        backoff: listen::Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_millis(500),
        },
        ..ListenOptions::default()
    }
}

/// The next update matching `pick`, skipping the others.
async fn next_matching<T>(
    updates: &mut UnboundedReceiver<ListenUpdate>,
    mut pick: impl FnMut(&ListenUpdate) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(update) = updates.recv().await {
            if let Some(found) = pick(&update) {
                return Some(found);
            }
        }
        None
    })
    .await;
    found.expect("in time").expect("the listener is still running")
}

async fn live(updates: &mut UnboundedReceiver<ListenUpdate>) {
    next_matching(updates, |u| {
        matches!(u, ListenUpdate::Stream(StreamState::Live { .. })).then_some(())
    })
    .await;
}

/// A listener through `client`'s gateway, once its stream is live.
async fn listening(
    client: &Client,
    api_key: &str,
    options: ListenOptions,
) -> (listen::ListenHandle, UnboundedReceiver<ListenUpdate>) {
    let (handle, mut updates) = listen::start(client.clone(), api_key.to_owned(), options)
        .await
        .expect("starts");
    live(&mut updates).await;
    (handle, updates)
}

async fn trigger(client: &Client, key: &str, kind: EventType) -> micro::trigger::Triggered {
    micro::trigger::trigger(client, key, kind, 1234, "usd")
        .await
        .expect("triggers")
}

#[tokio::test]
async fn login_listen_and_every_trigger_deliver_the_exact_bytes_signed() {
    let env = Env::start().await;
    let registered = crate::support::run(
        env.micro(&[
            "register",
            "--email",
            "ada@example.com",
            "--password-stdin",
            "--insecure-storage",
        ]),
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert_eq!(registered.code, 0, "{registered:?}");
    assert!(
        registered.stdout.contains("Logged in as ada@example.com"),
        "{registered:?}"
    );
    let secret = env.run(&["webhooks", "secret"]).await;
    assert_eq!(secret.code, 0, "{secret:?}");
    let secret = secret.stdout.trim().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");

    let mut receiver = Receiver::start().await;
    let mut listening = Listening::spawn(env.micro(&["listen", "--forward-to", &receiver.url]));
    // Not a terminal: JSON lines on stdout, the Ready line on stderr.
    let seen = listening.stderr_until("Ready!").await;
    assert!(
        seen.iter()
            .any(|l| l == &format!("Ready! Your webhook signing secret is {secret} (^C to quit)")),
        "{seen:?}"
    );

    let mut expected = Vec::new();
    for kind in EventType::ALL {
        let triggered = env.run(&["trigger", kind.as_str(), "--format", "json"]).await;
        assert_eq!(triggered.code, 0, "{triggered:?}");
        let made: serde_json::Value = serde_json::from_str(&triggered.stdout).expect("json");
        let payment = made["payment"]["id"].as_str().expect("payment id").to_owned();
        expected.push((kind, payment));
    }
    // payment.created comes first for every trigger, then its own event (two for a refund).
    let mut delivered = Vec::new();
    let api_key = crate::support::stored_key(&env);
    let total = EventType::ALL.len() + 4 + 1;
    for _ in 0..total {
        let request = receiver.next().await;
        request.verify(&secret).expect("the signature verifies");
        let event = request.event();
        assert_eq!(request.header("webhook-id"), event.id);
        let from_api = env
            .client
            .event(&api_key, &event.id)
            .await
            .expect("the event")
            .into_value();
        assert_eq!(
            request.body,
            serde_json::to_vec(&from_api).expect("json"),
            "the body is the event's exact bytes"
        );
        delivered.push(event);
    }
    let sequences: Vec<i64> = delivered.iter().map(|e| e.sequence).collect();
    let mut sorted = sequences.clone();
    sorted.sort_unstable();
    assert_eq!(sequences, sorted, "delivered in order");
    for (kind, payment) in &expected {
        assert!(
            delivered
                .iter()
                .any(|e| e.kind == *kind && e.data.object["id"] == payment.as_str()),
            "{kind} for {payment} was delivered"
        );
    }
    // Each stdout line is an event or a delivery, as JSON.
    let first: serde_json::Value = serde_json::from_str(&listening.stdout_line().await).expect("json line");
    assert_eq!(first["type"], "event");
    assert_eq!(first["event"]["id"], first["id"]);
    let second: serde_json::Value = serde_json::from_str(&listening.stdout_line().await).expect("json line");
    assert_eq!(second["type"], "delivery");
    assert_eq!(second["status"], 200);
    assert_eq!(second["body"], "{\"received\":true}");

    listening.interrupt();
    assert_eq!(listening.exit_code().await, 0, "Ctrl-C exits 0");
}

#[tokio::test]
async fn text_lines_show_events_and_deliveries() {
    let env = Env::start().await;
    let ada = developer(&env.client, "ada@example.com").await;
    let mut receiver = Receiver::start().await;
    let mut command = env.micro(&["listen", "--forward-to", &receiver.url, "--format", "text"]);
    command.env("MICRO_API_KEY", &ada.api_key);
    let mut listening = Listening::spawn(command);
    let ready = listening.stdout_line().await;
    assert_eq!(
        ready,
        format!(
            "Ready! Your webhook signing secret is {} (^C to quit)",
            ada.secret
        )
    );
    trigger(&env.client, &ada.api_key, EventType::PaymentCreated).await;
    receiver.next().await;
    let event = listening.stdout_line().await;
    let delivery = listening.stdout_line().await;
    let event_line = regex_like(&event, "  --> payment.created [evt_");
    assert!(event_line, "{event}");
    assert!(
        delivery.contains(&format!("  <-- [200] POST {} [evt_", receiver.url)) && delivery.ends_with("ms"),
        "{delivery}"
    );
    listening.interrupt();
    assert_eq!(listening.exit_code().await, 0);
}

/// `<yyyy-mm-dd hh:mm:ss>` then `rest`.
fn regex_like(line: &str, rest: &str) -> bool {
    line.len() > 19
        && line.as_bytes()[4] == b'-'
        && line.as_bytes()[13] == b':'
        && line[19..].starts_with(rest)
}

#[tokio::test]
async fn filters_pass_only_the_chosen_types() {
    let env = Env::start().await;
    let ada = developer(&env.client, "ada@example.com").await;
    let mut receiver = Receiver::start().await;
    let mut options = options(&receiver.url);
    options.types = vec![EventType::PaymentSucceeded, EventType::PaymentCanceled];
    let (handle, _updates) = listening(&env.client, &ada.api_key, options).await;
    for kind in EventType::ALL {
        trigger(&env.client, &ada.api_key, kind).await;
    }
    // The refund trigger succeeds its payment first, so succeeded comes twice.
    let kinds = [
        receiver.next().await.event().kind,
        receiver.next().await.event().kind,
        receiver.next().await.event().kind,
    ];
    assert_eq!(
        kinds,
        [
            EventType::PaymentSucceeded,
            EventType::PaymentCanceled,
            EventType::PaymentSucceeded
        ]
    );
    receiver.assert_quiet(Duration::from_millis(500)).await;
    handle.shutdown();
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_backoff_and_every_attempt_reported() {
    let env = Env::start().await;
    let ada = developer(&env.client, "ada@example.com").await;
    let mut receiver = Receiver::answering(vec![500, 503]).await;
    let mut options = options(&receiver.url);
    options.retries = 2;
    let (handle, mut updates) = listening(&env.client, &ada.api_key, options).await;
    trigger(&env.client, &ada.api_key, EventType::PaymentCreated).await;
    let mut reports = Vec::new();
    while reports.len() < 3 {
        reports.push(
            next_matching(&mut updates, |u| match u {
                ListenUpdate::Delivery(report) => Some(report.clone()),
                _ => None,
            })
            .await,
        );
    }
    let statuses: Vec<u16> = reports
        .iter()
        .map(|r| r.outcome.as_ref().expect("an answer").status)
        .collect();
    assert_eq!(statuses, vec![500, 503, 200]);
    assert_eq!(
        reports.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(reports[0].retry_in.is_some() && reports[2].retry_in.is_none());
    let bodies: HashSet<_> = [
        receiver.next().await,
        receiver.next().await,
        receiver.next().await,
    ]
    .into_iter()
    .map(|r| {
        r.verify(&ada.secret).expect("each attempt is signed");
        r.body
    })
    .collect();
    assert_eq!(bodies.len(), 1, "the same bytes each time");
    handle.shutdown();
}

#[tokio::test]
async fn a_target_that_is_down_is_reported_per_event_and_the_listener_goes_on() {
    let env = Env::start().await;
    let ada = developer(&env.client, "ada@example.com").await;
    let down = closed_port_url().await;
    let (handle, mut updates) = listening(&env.client, &ada.api_key, options(&down)).await;
    trigger(&env.client, &ada.api_key, EventType::PaymentSucceeded).await;
    for _ in 0..2 {
        let report = next_matching(&mut updates, |u| match u {
            ListenUpdate::Delivery(report) => Some(report.clone()),
            _ => None,
        })
        .await;
        let error = report.outcome.expect_err("nobody listens");
        assert!(error.contains("connection failed"), "{error}");
    }
    // Pointing it at a live receiver, later events arrive; earlier replays on request.
    let mut receiver = Receiver::start().await;
    handle.set_target(Some(receiver.url.parse().expect("url")));
    trigger(&env.client, &ada.api_key, EventType::PaymentCreated).await;
    let delivered = receiver.next().await.event();
    assert_eq!(delivered.kind, EventType::PaymentCreated);
    handle.shutdown();
}

#[tokio::test]
async fn paused_events_queue_and_go_out_in_order_and_replays_are_signed_anew() {
    let env = Env::start().await;
    let ada = developer(&env.client, "ada@example.com").await;
    let mut receiver = Receiver::start().await;
    let (handle, mut updates) = listening(&env.client, &ada.api_key, options(&receiver.url)).await;
    handle.pause();
    trigger(&env.client, &ada.api_key, EventType::PaymentSucceeded).await;
    // Both events are received while paused, and queued.
    let queued = next_matching(&mut updates, |u| match u {
        ListenUpdate::Control(control) if control.paused && control.queued == 2 => Some(control.queued),
        _ => None,
    })
    .await;
    assert_eq!(queued, 2);
    receiver.assert_quiet(Duration::from_millis(300)).await;
    handle.resume();
    let first = receiver.next().await;
    let second = receiver.next().await;
    assert_eq!(
        (first.event().kind, second.event().kind),
        (EventType::PaymentCreated, EventType::PaymentSucceeded)
    );
    handle.replay(first.event().id);
    let replayed = receiver.next().await;
    assert_eq!(replayed.body, first.body);
    replayed.verify(&ada.secret).expect("signed");
    let report = next_matching(&mut updates, |u| match u {
        ListenUpdate::Delivery(report) if report.replay => Some(report.clone()),
        _ => None,
    })
    .await;
    assert_eq!(report.event_id, first.event().id);
    handle.shutdown();
    // The channel closes once both tasks have ended.
    tokio::time::timeout(WAIT, async { while updates.recv().await.is_some() {} })
        .await
        .expect("the listener ends");
}

#[tokio::test]
async fn resent_events_are_delivered_and_marked() {
    let env = Env::start().await;
    let ada = developer(&env.client, "ada@example.com").await;
    let mut receiver = Receiver::start().await;
    let (handle, mut updates) = listening(&env.client, &ada.api_key, options(&receiver.url)).await;
    trigger(&env.client, &ada.api_key, EventType::PaymentCreated).await;
    let original = receiver.next().await;
    env.client
        .resend_event(&ada.api_key, &original.event().id, None)
        .await
        .expect("resends");
    let again = receiver.next().await;
    assert_eq!(again.event().id, original.event().id);
    let event = next_matching(&mut updates, |u| match u {
        ListenUpdate::Event(event) if event.resent => Some(event.clone()),
        _ => None,
    })
    .await;
    assert_eq!(event.id, original.event().id);
    handle.shutdown();
}

#[tokio::test]
async fn since_back_fills_what_was_missed() {
    let env = Env::start().await;
    let ada = developer(&env.client, "ada@example.com").await;
    trigger(&env.client, &ada.api_key, EventType::PaymentCreated).await;
    let events = env
        .client
        .list_events(&ada.api_key, &Default::default())
        .await
        .expect("events")
        .into_value();
    let anchor = events.data[0].id.clone();
    trigger(&env.client, &ada.api_key, EventType::PaymentSucceeded).await;

    let state = tempfile::tempdir().expect("tempdir");
    let mut receiver = Receiver::start().await;
    let mut options = options(&receiver.url);
    options.since = Since::Event(anchor);
    options.state_file = Some(state.path().join("state.json"));
    options.state_key = "ada".into();
    let (handle, mut updates) = listen::start(env.client.clone(), ada.api_key.clone(), options.clone())
        .await
        .expect("starts");
    let replayed = next_matching(&mut updates, |u| match u {
        ListenUpdate::Ready { replayed, .. } => Some(*replayed),
        _ => None,
    })
    .await;
    assert_eq!(replayed, 2, "the second payment's created and succeeded");
    assert_eq!(receiver.next().await.event().kind, EventType::PaymentCreated);
    let last = receiver.next().await.event();
    assert_eq!(last.kind, EventType::PaymentSucceeded);
    handle.shutdown();
    tokio::time::timeout(WAIT, async { while updates.recv().await.is_some() {} })
        .await
        .expect("ends");

    // Offline: two more events. `--since last` starts after the last one processed.
    trigger(&env.client, &ada.api_key, EventType::PaymentCanceled).await;
    options.since = Since::Last;
    let (handle, _updates) = listening(&env.client, &ada.api_key, options).await;
    let kinds = [
        receiver.next().await.event().kind,
        receiver.next().await.event().kind,
    ];
    assert_eq!(kinds, [EventType::PaymentCreated, EventType::PaymentCanceled]);
    receiver.assert_quiet(Duration::from_millis(300)).await;
    handle.shutdown();
}

/// A gateway of its own on a fixed port, which the test stops and restarts.
struct OwnGateway {
    port: u16,
    shutdown: CancellationToken,
    server: Option<platform::http::Server>,
}

impl OwnGateway {
    async fn start(env: &Env, port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let shutdown = CancellationToken::new();
        let server = gateway::build(&env.stack.stack.config.gateway, listener, shutdown.clone())
            .await
            .expect("a gateway starts");
        Self {
            port,
            shutdown,
            server: Some(server),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(WAIT, server.task).await;
        }
    }
}

/// A listener on an account without events has no event id to resume from;
/// what happens before its first event arrives must survive a reconnect.
#[tokio::test]
async fn events_made_before_the_first_one_arrives_survive_a_reconnect() {
    let env = Env::start().await;
    let ada = developer(&env.client, "ada@example.com").await;
    let mut own = OwnGateway::start(&env, 0).await;
    let mut receiver = Receiver::start().await;
    let via_own = Client::new(&own.url()).expect("client");
    let (handle, mut updates) = listening(&via_own, &ada.api_key, options(&receiver.url)).await;
    own.stop().await;
    next_matching(&mut updates, |u| match u {
        ListenUpdate::Stream(StreamState::Reconnecting { .. }) => Some(()),
        _ => None,
    })
    .await;
    trigger(&env.client, &ada.api_key, EventType::PaymentSucceeded).await;
    let own = OwnGateway::start(&env, own.port).await;

    let sequences = [
        receiver.next().await.event().sequence,
        receiver.next().await.event().sequence,
    ];
    assert_eq!(sequences, [1, 2]);
    receiver.assert_quiet(Duration::from_millis(300)).await;
    handle.shutdown();
    drop(own);
}

#[tokio::test]
async fn a_gateway_restart_mid_stream_loses_nothing_and_repeats_nothing() {
    let env = Env::start().await;
    let ada = developer(&env.client, "ada@example.com").await;
    let mut own = OwnGateway::start(&env, 0).await;
    let mut receiver = Receiver::start().await;
    let via_own = Client::new(&own.url()).expect("client");
    let (handle, mut updates) = listening(&via_own, &ada.api_key, options(&receiver.url)).await;
    trigger(&env.client, &ada.api_key, EventType::PaymentSucceeded).await;

    own.stop().await;
    let reason = next_matching(&mut updates, |u| match u {
        ListenUpdate::Stream(StreamState::Reconnecting { reason, .. }) => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(!reason.is_empty());
    // While the gateway is down, more events happen.
    trigger(&env.client, &ada.api_key, EventType::PaymentRefunded).await;
    let own = OwnGateway::start(&env, own.port).await;
    trigger(&env.client, &ada.api_key, EventType::PaymentCanceled).await;

    // 2 + 3 (created, succeeded, refunded) + 2, each once, in order.
    let mut sequences = Vec::new();
    for _ in 0..7 {
        let event = receiver.next().await.event();
        sequences.push(event.sequence);
    }
    assert_eq!(sequences, (1..=7).collect::<Vec<i64>>());
    receiver.assert_quiet(Duration::from_millis(500)).await;
    handle.shutdown();
    drop(own);
}

#[tokio::test]
async fn a_revoked_key_exits_non_zero_and_says_what_to_do() {
    let env = Env::start().await;
    let ada = developer(&env.client, "ada@example.com").await;
    env.client
        .revoke_api_key(&ada.access_token, &ada.key_id)
        .await
        .expect("revokes");
    let mut command = env.micro(&["listen", "--forward-to", "http://127.0.0.1:9/webhook"]);
    command.env("MICRO_API_KEY", &ada.api_key);
    let output = crate::support::run(command, None).await;
    assert_eq!(output.code, 2, "{output:?}");
    assert!(output.stderr.contains("micro login"), "{}", output.stderr);
}

#[tokio::test]
async fn max_reconnects_gives_up_with_exit_4() {
    let env = Env::start().await;
    let ada = developer(&env.client, "ada@example.com").await;
    let mut own = OwnGateway::start(&env, 0).await;
    let mut command = env.micro(&["listen", "--max-reconnects", "2", "--format", "json"]);
    command
        .env("MICRO_API_KEY", &ada.api_key)
        .env("MICRO_GATEWAY", own.url());
    let mut listening = Listening::spawn(command);
    listening.stderr_until("Ready!").await;
    own.stop().await;
    let seen = listening.stderr_until("gave up after 2 reconnect attempts").await;
    assert!(
        seen.iter()
            .any(|l| l.starts_with("reconnecting in ") && l.contains("(attempt 1: ")),
        "{seen:#?}"
    );
    assert_eq!(listening.exit_code().await, 4);
}

#[tokio::test]
async fn print_secret_prints_it_and_exits() {
    let env = Env::start().await;
    let ada = developer(&env.client, "ada@example.com").await;
    let mut command = env.micro(&["listen", "--print-secret"]);
    command.env("MICRO_API_KEY", &ada.api_key);
    let output = crate::support::run(command, None).await;
    assert_eq!(output.code, 0, "{output:?}");
    assert_eq!(output.stdout.trim(), ada.secret);
}
