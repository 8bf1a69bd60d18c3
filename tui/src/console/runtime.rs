//! The loop: terminal input, listen updates, API replies and ticks all
//! arrive as [`Msg`]s on one channel; `update` runs, its commands become
//! tasks that send their results back as messages, and a frame is drawn only
//! when the state says something visible changed.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::{Client, ClientError, Reply};
use contract::auth::Credentials;
use contract::list::PageParams;
use contract::payments::{CreatePaymentRequest, ListPaymentsParams};
use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event as TermEvent, EventStream};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use super::msg::{ApiReply, EntriesPage, Msg, PaymentDetail, StreamUpdate};
use super::state::State;
use super::store::Attempt;
use super::update::{Command, start, update};
use super::view;
use crate::credentials::{Backend, Store, StoreOptions, StoredLogin};
use crate::listen::{self, ListenHandle, ListenOptions, ListenUpdate, ReceivedEvent};
use crate::session::{Invocation, Session};

/// How often the clock ticks; a tick draws only when something moved.
const TICK: Duration = Duration::from_millis(250);
/// How long a session token is used before a fresh one is fetched.
const ACCESS_TOKEN_AGE: Duration = Duration::from_secs(10 * 60);

/// Opens the console and runs it until the user quits.
pub async fn run(context: Invocation) -> anyhow::Result<()> {
    client::install_crypto_provider();
    let mut state = State::new(&context.target.gateway, &context.target.profile);
    state.no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let (tx, rx) = unbounded_channel();
    let mut exec = Executor::new(context.clone(), tx.clone())?;
    // A stored login (or a given key) skips the form.
    let mut first = Vec::new();
    if let Ok(session) = Session::open(&context).await {
        let email = session
            .stored()
            .map_or_else(|| "API key".to_owned(), |login| login.email.clone());
        let key = session.api_key.clone();
        *exec.session.lock().await = Some(session);
        first = start(&mut state, email, key);
    }
    let mut terminal = init_terminal()?;
    let size = terminal.size()?;
    state.width = size.width;
    state.height = size.height;
    let result = event_loop(&mut terminal, &mut state, &mut exec, tx, rx, first).await;
    exec.shutdown();
    restore_terminal();
    result
}

fn init_terminal() -> anyhow::Result<DefaultTerminal> {
    // ratatui's own hook restores the screen on panic; the mouse is ours.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
        previous(info);
    }));
    let terminal = ratatui::init();
    crossterm::execute!(std::io::stdout(), EnableMouseCapture)?;
    Ok(terminal)
}

pub(crate) fn restore_terminal() {
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
}

fn spawn_input(tx: UnboundedSender<Msg>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut events = EventStream::new();
        while let Some(Ok(event)) = events.next().await {
            let msg = match event {
                TermEvent::Key(key) => Msg::Key(key),
                TermEvent::Mouse(mouse) => Msg::Mouse(mouse),
                TermEvent::Resize(w, h) => Msg::Resize(w, h),
                _ => continue,
            };
            if tx.send(msg).is_err() {
                break;
            }
        }
    })
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    state: &mut State,
    exec: &mut Executor,
    tx: UnboundedSender<Msg>,
    mut rx: UnboundedReceiver<Msg>,
    first: Vec<Command>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut input = spawn_input(tx.clone());
    let ticker_tx = tx.clone();
    let ticker = tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            if ticker_tx
                .send(Msg::Tick(started.elapsed().as_millis() as u64))
                .is_err()
            {
                break;
            }
        }
    });
    let mut pending = first;
    loop {
        for command in std::mem::take(&mut pending) {
            match command {
                Command::Quit => state.quit = true,
                Command::EditReplay { event_id, body } => {
                    // The editor owns the terminal meanwhile: stop reading keys.
                    input.abort();
                    let edited = edit_in_editor(&body);
                    terminal.clear()?;
                    input = spawn_input(tx.clone());
                    state.dirty = true;
                    match edited {
                        Ok(Some(edited)) => exec.replay(&event_id, Some(edited)),
                        Ok(None) => {
                            pending.extend(update(
                                state,
                                Msg::Api(ApiReply::Done(Ok(
                                    "edit canceled: the file was not changed".into()
                                ))),
                            ));
                            state.busy = state.busy.saturating_sub(1);
                        }
                        Err(error) => {
                            state.busy = state.busy.saturating_sub(1);
                            pending.extend(update(state, Msg::Api(ApiReply::Done(Err(error)))));
                        }
                    }
                }
                other => exec.run(other),
            }
        }
        if state.quit {
            break;
        }
        if state.dirty {
            terminal.draw(|frame| view::render(state, frame))?;
            state.dirty = false;
        }
        let Some(msg) = rx.recv().await else {
            break;
        };
        pending.extend(update(state, msg));
        // Take everything already waiting before drawing again: a burst of
        // events costs one frame, not one each.
        let mut drained = 0;
        while drained < 10_000 {
            match rx.try_recv() {
                Ok(msg) => pending.extend(update(state, msg)),
                Err(_) => break,
            }
            drained += 1;
        }
    }
    ticker.abort();
    input.abort();
    Ok(())
}

/// Opens the payload in `$EDITOR` (or `vi`); `None` when it was left unchanged.
fn edit_in_editor(body: &str) -> Result<Option<String>, String> {
    let pretty = serde_json::from_str::<serde_json::Value>(body)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| body.to_owned());
    let path = std::env::temp_dir().join(format!("micro-event-{}.json", std::process::id()));
    std::fs::write(&path, &pretty).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    restore_terminal();
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let mut parts = editor.split_whitespace();
    let program = parts.next().unwrap_or("vi").to_owned();
    let status = std::process::Command::new(&program)
        .args(parts)
        .arg(&path)
        .status();
    let _ = ratatui::init();
    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    let status = status.map_err(|e| format!("cannot start the editor {program:?}: {e}"))?;
    if !status.success() {
        let _ = std::fs::remove_file(&path);
        return Err(format!(
            "the editor {program:?} exited with {status}; nothing replayed"
        ));
    }
    let edited = std::fs::read_to_string(&path).map_err(|e| format!("cannot read the edited file: {e}"))?;
    let _ = std::fs::remove_file(&path);
    if edited == pretty {
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_str(&edited).map_err(|e| format!("the edited payload is not JSON: {e}"))?;
    Ok(Some(serde_json::to_string(&value).unwrap_or(edited)))
}

/// Runs commands as tasks; owns the client, the key and the listener.
struct Executor {
    context: Invocation,
    client: Client,
    tx: UnboundedSender<Msg>,
    api_key: Arc<Mutex<Option<String>>>,
    listen: Arc<Mutex<Option<ListenHandle>>>,
    session: Arc<tokio::sync::Mutex<Option<Session>>>,
    access: Arc<tokio::sync::Mutex<Option<(String, Instant)>>>,
    forward_to: Arc<Mutex<Option<url::Url>>>,
    /// Events as received, for replays with an edited body.
    received: Arc<Mutex<HashMap<String, ReceivedEvent>>>,
    /// The login made by the form, until it is stored.
    pending: Arc<Mutex<Option<StoredLogin>>>,
}

fn text(error: ClientError) -> String {
    error.to_string()
}

impl Executor {
    fn new(context: Invocation, tx: UnboundedSender<Msg>) -> anyhow::Result<Self> {
        let client = Client::new(&context.target.gateway)?;
        Ok(Self {
            context,
            client,
            tx,
            api_key: Arc::default(),
            listen: Arc::default(),
            session: Arc::default(),
            access: Arc::default(),
            forward_to: Arc::default(),
            received: Arc::default(),
            pending: Arc::default(),
        })
    }

    fn shutdown(&self) {
        if let Ok(listen) = self.listen.lock()
            && let Some(handle) = listen.as_ref()
        {
            handle.shutdown();
        }
    }

    fn key(&self) -> Option<String> {
        self.api_key.lock().ok().and_then(|k| k.clone())
    }

    fn send(&self, reply: ApiReply) {
        let _ = self.tx.send(Msg::Api(reply));
    }

    /// Runs `call` with the API key, reporting the rate limit and mapping the result.
    fn call<T, F, Fut>(&self, call: F, reply: impl FnOnce(Result<T, String>) -> ApiReply + Send + 'static)
    where
        T: Send + 'static,
        F: FnOnce(Client, String) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Reply<T>, ClientError>> + Send,
    {
        let Some(key) = self.key() else {
            self.send(reply(Err("not logged in".into())));
            return;
        };
        let client = self.client.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = call(client, key).await;
            if let Ok(reply) = &result
                && let Some(limit) = reply.rate_limit
            {
                let _ = tx.send(Msg::RateLimit {
                    remaining: limit.remaining,
                    limit: limit.limit,
                });
            }
            let _ = tx.send(Msg::Api(reply(result.map(Reply::into_value).map_err(text))));
        });
    }

    /// A session token for the key routes: the one from the login form, else
    /// a fresh one from the stored refresh token.
    fn with_access<T, F, Fut>(
        &self,
        call: F,
        reply: impl FnOnce(Result<T, String>) -> ApiReply + Send + 'static,
    ) where
        T: Send + 'static,
        F: FnOnce(Client, String) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Reply<T>, ClientError>> + Send,
    {
        let client = self.client.clone();
        let tx = self.tx.clone();
        let access = self.access.clone();
        let session = self.session.clone();
        tokio::spawn(async move {
            let token = {
                let mut cached = access.lock().await;
                match cached.as_ref() {
                    Some((token, at)) if at.elapsed() < ACCESS_TOKEN_AGE => Ok(token.clone()),
                    _ => match session.lock().await.as_mut() {
                        Some(session) => match session.access_token().await {
                            Ok(token) => {
                                *cached = Some((token.clone(), Instant::now()));
                                Ok(token)
                            }
                            Err(e) => Err(e.message()),
                        },
                        None => Err("this needs a login session: log in again (micro login)".to_owned()),
                    },
                }
            };
            let result = match token {
                Ok(token) => call(client, token).await.map(Reply::into_value).map_err(text),
                Err(e) => Err(e),
            };
            let _ = tx.send(Msg::Api(reply(result)));
        });
    }

    fn replay(&self, event_id: &str, body: Option<String>) {
        let handle = self.listen.lock().ok().and_then(|l| l.clone());
        let Some(handle) = handle else {
            self.send(ApiReply::Done(Err("the stream is not started yet".into())));
            return;
        };
        match body {
            None => handle.replay(event_id),
            Some(body) => {
                let original = self.received.lock().ok().and_then(|r| r.get(event_id).cloned());
                let Some(mut event) = original else {
                    self.send(ApiReply::Done(Err(format!(
                        "{event_id} was not received in this session"
                    ))));
                    return;
                };
                event.raw = bytes::Bytes::from(body);
                handle.replay_event(event);
            }
        }
    }

    fn run(&mut self, command: Command) {
        match command {
            Command::Quit | Command::EditReplay { .. } => {}
            Command::Login {
                email,
                password,
                register,
            } => self.login(email, password, register),
            Command::StoreInFile { email, api_key } => {
                let context = self.context.clone();
                let tx = self.tx.clone();
                let login = self.pending_login(&email, &api_key);
                tokio::spawn(async move {
                    let result = async {
                        let options = StoreOptions {
                            forced: Some(Backend::File),
                            insecure_storage: true,
                            dir: context.config_dir.clone(),
                        };
                        let store = Store::for_saving(&options).await.map_err(|e| e.to_string())?;
                        store
                            .set(&context.target.account(), &login)
                            .await
                            .map_err(|e| e.to_string())?;
                        Ok(context.config_dir.join("credentials.json").display().to_string())
                    }
                    .await;
                    let _ = tx.send(Msg::Api(ApiReply::StoredInFile(result)));
                });
            }
            Command::Start { api_key, .. } => self.start(api_key),
            Command::LoadPayments => self.call(
                |c, k| async move {
                    let params = ListPaymentsParams {
                        page: contract::list::PageParams {
                            limit: Some(100),
                            starting_after: None,
                        },
                        ..Default::default()
                    };
                    c.list_payments(&k, &params).await
                },
                |r| ApiReply::Payments(r.map(|list| list.data)),
            ),
            Command::LoadPaymentDetail(id) => {
                let client = self.client.clone();
                let tx = self.tx.clone();
                let Some(key) = self.key() else { return };
                tokio::spawn(async move {
                    let result = async {
                        let payment = client.payment(&key, &id).await.map_err(text)?.into_value();
                        let refunds = client.list_refunds(&key, &id).await.map_err(text)?.into_value();
                        Ok(PaymentDetail {
                            payment,
                            refunds: refunds.data,
                        })
                    }
                    .await;
                    let _ = tx.send(Msg::Api(ApiReply::PaymentDetail(result)));
                });
            }
            Command::CreatePayment { amount, currency, .. } => self.call(
                move |c, k| async move {
                    let request = CreatePaymentRequest {
                        amount,
                        currency,
                        description: Some("created in the micro console".into()),
                        ..Default::default()
                    };
                    c.create_payment(&k, &request, None).await
                },
                |result| ApiReply::PaymentAction {
                    what: "created".into(),
                    result,
                },
            ),
            Command::ConfirmPayment { id, method } => self.call(
                move |c, k| async move { c.confirm_payment(&k, &id, &method, None).await },
                |result| ApiReply::PaymentAction {
                    what: "confirmed".into(),
                    result,
                },
            ),
            Command::CancelPayment(id) => self.call(
                move |c, k| async move { c.cancel_payment(&k, &id, None).await },
                |result| ApiReply::PaymentAction {
                    what: "canceled".into(),
                    result,
                },
            ),
            Command::Refund { id, amount } => self.call(
                move |c, k| async move {
                    c.refund_payment(&k, &id, amount, None).await?;
                    c.payment(&k, &id).await
                },
                |result| ApiReply::PaymentAction {
                    what: "refunded".into(),
                    result,
                },
            ),
            Command::LoadAccounts => self.call(
                |c, k| async move {
                    let page = PageParams {
                        limit: Some(100),
                        starting_after: None,
                    };
                    c.ledger_accounts(&k, &page).await
                },
                |r| ApiReply::Accounts(r.map(|list| list.data)),
            ),
            Command::LoadEntries {
                account_id,
                starting_after,
            } => {
                let id = account_id.clone();
                self.call(
                    move |c, k| async move {
                        let page = PageParams {
                            limit: Some(50),
                            starting_after,
                        };
                        c.ledger_entries(&k, &id, &page).await
                    },
                    move |r| ApiReply::Entries {
                        account_id,
                        result: r.map(|list| EntriesPage {
                            entries: list.data,
                            has_more: list.has_more,
                        }),
                    },
                )
            }
            Command::LoadTransaction(id) => self.call(
                move |c, k| async move { c.ledger_transaction(&k, &id).await },
                ApiReply::Transaction,
            ),
            Command::LoadKeys => self.with_access(
                |c, token| async move {
                    let page = PageParams {
                        limit: Some(100),
                        starting_after: None,
                    };
                    c.list_api_keys(&token, &page).await
                },
                |r| ApiReply::Keys(r.map(|list| list.data)),
            ),
            Command::CreateKey(name) => self.with_access(
                move |c, token| async move { c.create_api_key(&token, &name).await },
                |r| ApiReply::KeyCreated(r.map(Into::into)),
            ),
            Command::RevokeKey(id) => self.with_access(
                move |c, token| async move { c.revoke_api_key(&token, &id).await },
                |r| ApiReply::KeyRevoked(r.map(|revoked| revoked.id)),
            ),
            Command::LoadSecret => self.call(
                |c, k| async move { c.webhook_secret(&k).await },
                |r| ApiReply::WebhookSecret(r.map(|s| s.secret)),
            ),
            Command::RollSecret => self.call(
                |c, k| async move { c.roll_webhook_secret(&k).await },
                |r| ApiReply::WebhookSecret(r.map(|s| s.secret)),
            ),
            Command::CopySecret => self.call(
                |c, k| async move { c.webhook_secret(&k).await },
                |r| {
                    ApiReply::Done(r.and_then(|s| {
                        copy(&s.secret).map(|()| "the webhook signing secret is on the clipboard".into())
                    }))
                },
            ),
            Command::SetForward(url) => {
                let parsed = url.as_deref().and_then(|u| url::Url::parse(u).ok());
                if let Ok(mut target) = self.forward_to.lock() {
                    *target = parsed.clone();
                }
                if let Some(handle) = self.listen.lock().ok().and_then(|l| l.clone()) {
                    handle.set_target(parsed);
                }
            }
            Command::SetPaused(paused) => {
                if let Some(handle) = self.listen.lock().ok().and_then(|l| l.clone()) {
                    if paused {
                        handle.pause();
                    } else {
                        handle.resume();
                    }
                }
            }
            Command::Replay { event_id, .. } => self.replay(&event_id, None),
            Command::Resend(id) => self.call(
                move |c, k| async move { c.resend_event(&k, &id, None).await },
                |r| ApiReply::Resent(r.map(|event| event.id)),
            ),
            Command::Copy(text) => {
                let result = copy(&text).map(|()| format!("copied {} characters", text.chars().count()));
                self.send(ApiReply::Done(result));
            }
        }
    }

    fn pending_login(&self, email: &str, api_key: &str) -> StoredLogin {
        let pending = self.pending.lock().ok().and_then(|p| p.clone());
        pending.unwrap_or_else(|| StoredLogin {
            email: email.to_owned(),
            user_id: String::new(),
            api_key: api_key.to_owned(),
            api_key_id: String::new(),
            api_key_prefix: api_key.chars().take(12).collect(),
            refresh_token: String::new(),
        })
    }

    fn login(&self, email: String, password: String, register: bool) {
        let client = self.client.clone();
        let tx = self.tx.clone();
        let context = self.context.clone();
        let access = self.access.clone();
        let pending = self.pending.clone();
        let session = self.session.clone();
        tokio::spawn(async move {
            let credentials = Credentials { email, password };
            let result: Result<StoredLogin, String> = async {
                if register {
                    client.register(&credentials).await.map_err(text)?;
                }
                let tokens = client.login(&credentials).await.map_err(text)?.into_value();
                let user = client.me(&tokens.access_token).await.map_err(text)?.into_value();
                let key = client
                    .create_api_key(&tokens.access_token, &machine_name())
                    .await
                    .map_err(text)?
                    .into_value();
                *access.lock().await = Some((tokens.access_token.clone(), Instant::now()));
                Ok(StoredLogin {
                    email: user.email,
                    user_id: user.id,
                    api_key: key.key,
                    api_key_id: key.id,
                    api_key_prefix: key.prefix,
                    refresh_token: tokens.refresh_token,
                })
            }
            .await;
            let login = match result {
                Ok(login) => login,
                Err(error) => {
                    let _ = tx.send(Msg::Api(ApiReply::LoginFailed(error)));
                    return;
                }
            };
            if let Ok(mut slot) = pending.lock() {
                *slot = Some(login.clone());
            }
            let stored = async {
                let options = context.store_options().map_err(|e| e.message())?;
                let store = Store::for_saving(&options).await.map_err(|e| e.to_string())?;
                store
                    .set(&context.target.account(), &login)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(store.backend().describe().to_owned())
            }
            .await;
            if stored.is_ok()
                && let Ok(opened) = Session::open(&context).await
            {
                *session.lock().await = Some(opened);
            }
            let _ = tx.send(Msg::Api(ApiReply::LoggedIn {
                email: login.email.clone(),
                api_key: login.api_key.clone(),
                stored,
            }));
        });
    }

    fn start(&mut self, api_key: String) {
        if let Ok(mut key) = self.api_key.lock() {
            *key = Some(api_key.clone());
        }
        let client = self.client.clone();
        let tx = self.tx.clone();
        let listen_slot = self.listen.clone();
        let received = self.received.clone();
        let target = self.forward_to.lock().ok().and_then(|t| t.clone());
        let mut options = ListenOptions::forwarding_to(target);
        options.forward_timeout = Some(Duration::from_secs(10));
        tokio::spawn(async move {
            // A gateway that is not up yet is waited for as a dropped stream
            // is; only a refused key or request stops the console's listener.
            let mut attempt = 1;
            let (handle, mut updates) = loop {
                let _ = tx.send(Msg::Stream(StreamUpdate::Connecting { attempt }));
                match listen::start(client.clone(), api_key.clone(), options.clone()).await {
                    Ok(started) => break started,
                    Err(error) if error.is_transient() => {
                        let wait = options.backoff.delay(attempt);
                        let sent = tx.send(Msg::Stream(StreamUpdate::Reconnecting {
                            in_ms: wait.as_millis() as u64,
                            attempt,
                            error: error.to_string(),
                        }));
                        if sent.is_err() {
                            return;
                        }
                        tokio::time::sleep(wait).await;
                        attempt = attempt.saturating_add(1);
                    }
                    Err(error) => {
                        let _ = tx.send(Msg::Stream(StreamUpdate::Offline {
                            error: error.to_string(),
                        }));
                        return;
                    }
                }
            };
            if let Ok(mut slot) = listen_slot.lock() {
                *slot = Some(handle);
            }
            while let Some(update) = updates.recv().await {
                // Only what an edited replay needs, bounded like the console's store.
                if let ListenUpdate::Event(event) = &update
                    && let Ok(mut kept) = received.lock()
                {
                    if kept.len() >= 10_000 {
                        kept.clear();
                    }
                    kept.insert(event.id.clone(), event.clone());
                }
                if let Some(msg) = translate(update)
                    && tx.send(Msg::Stream(msg)).is_err()
                {
                    break;
                }
            }
            let _ = tx.send(Msg::Stream(StreamUpdate::Offline {
                error: "the listener stopped".into(),
            }));
        });
    }
}

fn machine_name() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let host = if host.is_empty() {
        "unknown-host".to_owned()
    } else {
        host
    };
    format!("micro-console@{host}")
}

/// The listen core's report in the console's terms.
pub fn translate(update: ListenUpdate) -> Option<StreamUpdate> {
    Some(match update {
        ListenUpdate::Stream(listen::StreamState::Connecting { attempt }) => {
            StreamUpdate::Connecting { attempt }
        }
        ListenUpdate::Stream(listen::StreamState::Live { replayed }) => StreamUpdate::Live { replayed },
        ListenUpdate::Stream(listen::StreamState::Reconnecting { in_, attempt, reason }) => {
            StreamUpdate::Reconnecting {
                in_ms: in_.as_millis() as u64,
                attempt,
                error: reason,
            }
        }
        ListenUpdate::Stream(listen::StreamState::Stopped { reason, .. }) => {
            StreamUpdate::Offline { error: reason }
        }
        ListenUpdate::Ready { .. } => return None,
        ListenUpdate::Event(received) => {
            let event: contract::events::Event = serde_json::from_slice(&received.raw).ok()?;
            StreamUpdate::Event {
                event: Box::new(event),
                raw: String::from_utf8_lossy(&received.raw).into_owned(),
                resend: received.resent,
            }
        }
        ListenUpdate::Delivery(report) => {
            let (status, latency_ms, response) = match &report.outcome {
                Ok(answer) => (
                    Some(answer.status),
                    answer.latency.as_millis() as u32,
                    answer.body_excerpt.clone(),
                ),
                Err(error) => (None, 0, error.clone()),
            };
            StreamUpdate::Delivered {
                event_id: report.event_id.clone(),
                attempt: Attempt {
                    at_ms: chrono::Utc::now().timestamp_millis(),
                    url: report.url.to_string(),
                    status,
                    latency_ms,
                    response,
                    headers: report.request_headers.clone(),
                    replay: report.replay,
                },
            }
        }
        ListenUpdate::Control(control) => StreamUpdate::Forwarding {
            url: control.target.map(|u| u.to_string()),
        },
    })
}

/// Puts `text` on the clipboard with OSC 52, which works over SSH and in tmux.
pub fn copy(text: &str) -> Result<(), String> {
    use crossterm::clipboard::CopyToClipboard;
    let mut out = std::io::stdout();
    crossterm::execute!(out, CopyToClipboard::to_clipboard_from(text))
        .map_err(|e| format!("copy failed: {e}"))?;
    out.flush().map_err(|e| format!("copy failed: {e}"))
}
