//! `micro listen`: the listen core rendered as text lines or JSON lines.
//! Event and delivery lines go to stdout; connection state goes to stderr.

use std::time::Duration;

use contract::events::EventType;
use serde_json::json;
use serde_json::value::RawValue;
use url::Url;

use super::print;
use crate::cli::{Format, ListenArgs};
use crate::exit::{CliError, CliResult, NETWORK, NOT_LOGGED_IN, OK};
use crate::forward::parse_header;
use crate::listen::{self, DeliveryReport, ListenOptions, ListenUpdate, ReceivedEvent, Since, StreamState};
use crate::session::{Invocation, Session};

const DEFAULT_TIMEOUT_SECONDS: u64 = 30;

/// The flags (or the config file's defaults) as listen options.
pub fn options(context: &Invocation, args: &ListenArgs) -> CliResult<ListenOptions> {
    let defaults = &context.settings.forward;
    let types = if args.events.is_empty() {
        defaults.events.clone()
    } else {
        args.events.clone()
    };
    let types = types
        .iter()
        .filter(|name| !name.trim().is_empty())
        .map(|name| {
            EventType::parse(name.trim()).ok_or_else(|| {
                let known: Vec<&str> = EventType::ALL.iter().map(EventType::as_str).collect();
                CliError::Usage(format!(
                    "--events: unknown event type {name:?}; known: {}",
                    known.join(", ")
                ))
            })
        })
        .collect::<CliResult<Vec<_>>>()?;
    let target = match args.forward_to.clone().or_else(|| defaults.to.clone()) {
        None => None,
        Some(text) => {
            let url =
                Url::parse(&text).map_err(|e| CliError::Usage(format!("--forward-to {text:?}: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(CliError::Usage(
                    "--forward-to: use an http:// or https:// URL".into(),
                ));
            }
            Some(url)
        }
    };
    let headers = args
        .headers
        .iter()
        .chain(if args.headers.is_empty() {
            defaults.headers.iter()
        } else {
            [].iter()
        })
        .map(|h| parse_header(h).map_err(CliError::Usage))
        .collect::<CliResult<Vec<_>>>()?;
    let timeout = args
        .forward_timeout
        .or(defaults.timeout_seconds)
        .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    let since = match args.since.as_deref() {
        None => Since::Now,
        Some("last") => Since::Last,
        Some(id) if contract::ids::has_prefix(id, contract::ids::EVENT) => Since::Event(id.to_owned()),
        Some(other) => {
            return Err(CliError::Usage(format!(
                "--since {other:?}: use `last` or an event id (evt_...)"
            )));
        }
    };
    Ok(ListenOptions {
        types,
        since,
        target,
        headers,
        forward_timeout: (timeout > 0).then(|| Duration::from_secs(timeout)),
        retries: args.retries.or(defaults.retries).unwrap_or(0),
        max_reconnects: args.max_reconnects,
        backoff: listen::Backoff::default(),
        state_file: Some(context.config_dir.join("listen-state.json")),
        state_key: context.target.account(),
    })
}

pub async fn run(context: &Invocation, args: ListenArgs, format: Format) -> CliResult<u8> {
    let options = options(context, &args)?;
    let session = Session::open(context).await?;
    if args.print_secret {
        let secret = session
            .client
            .webhook_secret(&session.api_key)
            .await?
            .into_value();
        print(&format!("{}\n", secret.secret));
        return Ok(OK);
    }
    let target = options.target.clone();
    let (handle, mut updates) =
        listen::start(session.client.clone(), session.api_key.clone(), options).await?;
    let renderer = Renderer { format, target };
    let mut exit = OK;
    let mut interrupted = false;
    loop {
        tokio::select! {
            update = updates.recv() => {
                let Some(update) = update else { break };
                if let ListenUpdate::Stream(StreamState::Stopped { fatal: true, key_refused, .. }) = &update {
                    exit = if *key_refused { NOT_LOGGED_IN } else { NETWORK };
                }
                renderer.render(&update);
            }
            signal = tokio::signal::ctrl_c(), if !interrupted => {
                if signal.is_ok() {
                    interrupted = true;
                    handle.shutdown();
                }
            }
        }
    }
    Ok(exit)
}

struct Renderer {
    format: Format,
    target: Option<Url>,
}

fn now() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

impl Renderer {
    fn render(&self, update: &ListenUpdate) {
        match update {
            ListenUpdate::Ready { secret, replayed } => {
                let mut line = format!("Ready! Your webhook signing secret is {secret} (^C to quit)");
                if *replayed > 0 {
                    line.push_str(&format!("\n{replayed} missed events were sent first"));
                }
                match (self.format, &self.target) {
                    (Format::Text, _) => print(&format!("{line}\n")),
                    (Format::Json, _) => eprintln!("{line}"),
                }
                if self.target.is_none() {
                    eprintln!("(no --forward-to: events are shown, not forwarded)");
                }
            }
            ListenUpdate::Stream(state) => match state {
                StreamState::Connecting { attempt } if *attempt > 1 => {
                    eprintln!("connecting (attempt {attempt})")
                }
                StreamState::Connecting { .. } => {}
                StreamState::Live { replayed } => {
                    if *replayed > 0 {
                        eprintln!("connected; {replayed} missed events replayed");
                    }
                }
                StreamState::Reconnecting { in_, attempt, reason } => {
                    eprintln!("reconnecting in {} (attempt {attempt}: {reason})", seconds(*in_));
                }
                StreamState::Stopped { reason, fatal, .. } => {
                    if *fatal {
                        eprintln!("micro: {reason}");
                    }
                }
            },
            ListenUpdate::Event(event) => self.event(event),
            ListenUpdate::Delivery(report) => self.delivery(report),
            ListenUpdate::Control(_) => {}
        }
    }

    fn event(&self, event: &ReceivedEvent) {
        match self.format {
            Format::Text => {
                let resent = if event.resent { " (resent)" } else { "" };
                print(&format!(
                    "{}  --> {} [{}]{resent}\n",
                    now(),
                    event.event_type,
                    event.id
                ));
            }
            Format::Json => {
                let raw = std::str::from_utf8(&event.raw)
                    .ok()
                    .and_then(|text| RawValue::from_string(text.to_owned()).ok());
                let line = json!({
                    "type": "event",
                    "time": chrono::Utc::now(),
                    "id": event.id,
                    "event_type": event.event_type,
                    "sequence": event.sequence,
                    "created_at": event.created_at,
                    "resent": event.resent,
                    "event": raw,
                });
                print(&format!("{line}\n"));
            }
        }
    }

    fn delivery(&self, report: &DeliveryReport) {
        match self.format {
            Format::Text => {
                let mut notes = Vec::new();
                if report.replay {
                    notes.push("replay".to_owned());
                }
                if report.resent {
                    notes.push("resent".to_owned());
                }
                if report.attempts > 1 {
                    notes.push(format!("attempt {}/{}", report.attempt, report.attempts));
                }
                if let Some(wait) = report.retry_in {
                    notes.push(format!("retrying in {}", seconds(wait)));
                }
                let notes = if notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", notes.join(", "))
                };
                let line = match &report.outcome {
                    Ok(response) => format!(
                        "{}  <-- [{}] POST {} [{}] {}ms{notes}\n",
                        now(),
                        response.status,
                        report.url,
                        report.event_id,
                        response.latency.as_millis()
                    ),
                    Err(error) => format!(
                        "{}  <-- [ERR] POST {} [{}] {error}{notes}\n",
                        now(),
                        report.url,
                        report.event_id
                    ),
                };
                print(&line);
            }
            Format::Json => {
                let (status, latency, body, error) = match &report.outcome {
                    Ok(r) => (
                        Some(r.status),
                        Some(r.latency.as_secs_f64() * 1000.0),
                        Some(r.body_excerpt.as_str()),
                        None,
                    ),
                    Err(e) => (None, None, None, Some(e.as_str())),
                };
                let line = json!({
                    "type": "delivery",
                    "time": chrono::Utc::now(),
                    "event_id": report.event_id,
                    "event_type": report.event_type,
                    "url": report.url.as_str(),
                    "attempt": report.attempt,
                    "attempts": report.attempts,
                    "status": status,
                    "ok": report.succeeded(),
                    "latency_ms": latency,
                    "body": body,
                    "error": error,
                    "retry_in_ms": report.retry_in.map(|d| d.as_millis() as u64),
                    "replay": report.replay,
                    "resent": report.resent,
                });
                print(&format!("{line}\n"));
            }
        }
    }
}
