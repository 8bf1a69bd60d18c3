//! `update(state, msg) -> commands`: the only place the state changes. It is
//! synchronous and does no I/O; what needs the network or the terminal comes
//! back as a `Command` for the runtime to run.

use contract::money::Currency;
use contract::payments::TEST_PAYMENT_METHODS;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};

use super::keymap::{self, Action};
use super::msg::{ApiReply, Msg, StreamUpdate};
use super::state::{
    Confirm, EntriesView, Input, KeyringProblem, Level, Load, LoginForm, Modal, NewPaymentForm, Prompt,
    PromptKind, Screen, State, StreamState, Tab,
};
use super::store::Delivery;
use super::view::layout;

/// Work for the runtime; each one ends in messages sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Login {
        email: String,
        password: String,
        register: bool,
    },
    StoreInFile {
        email: String,
        api_key: String,
    },
    /// Logged in with this key: start the stream and the API client.
    Start {
        email: String,
        api_key: String,
    },
    LoadPayments,
    LoadPaymentDetail(String),
    CreatePayment {
        amount: i64,
        currency: String,
        method: String,
    },
    ConfirmPayment {
        id: String,
        method: String,
    },
    CancelPayment(String),
    Refund {
        id: String,
        amount: Option<i64>,
    },
    LoadAccounts,
    LoadEntries {
        account_id: String,
        starting_after: Option<String>,
    },
    LoadTransaction(String),
    LoadKeys,
    CreateKey(String),
    RevokeKey(String),
    LoadSecret,
    RollSecret,
    CopySecret,
    SetForward(Option<String>),
    SetPaused(bool),
    Replay {
        event_id: String,
        body: String,
    },
    EditReplay {
        event_id: String,
        body: String,
    },
    Resend(String),
    Copy(String),
    Quit,
}

/// The ev/s window.
const RATE_WINDOW_MS: u64 = 10_000;
/// At most this many arrival times are kept for ev/s.
const RATE_SAMPLES: usize = 10_000;

pub fn update(state: &mut State, msg: Msg) -> Vec<Command> {
    match msg {
        Msg::Tick(now) => {
            tick(state, now);
            Vec::new()
        }
        Msg::Resize(width, height) => {
            state.width = width;
            state.height = height;
            state.dirty = true;
            Vec::new()
        }
        Msg::Key(key) => {
            if key.kind == KeyEventKind::Release {
                return Vec::new();
            }
            state.dirty = true;
            on_key(state, key)
        }
        Msg::Mouse(mouse) => on_mouse(state, mouse),
        Msg::Stream(update) => {
            state.dirty = true;
            on_stream(state, update);
            Vec::new()
        }
        Msg::Api(reply) => {
            state.dirty = true;
            on_api(state, reply)
        }
        Msg::RateLimit { remaining, limit } => {
            if state.rate_limit != Some((remaining, limit)) {
                state.rate_limit = Some((remaining, limit));
                state.dirty = true;
            }
            Vec::new()
        }
    }
}

/// What to do once logged in, whether from the form or from stored credentials.
pub fn start(state: &mut State, email: String, api_key: String) -> Vec<Command> {
    state.screen = Screen::Main;
    state.email = Some(email.clone());
    state.stream = StreamState::Connecting { attempt: 1 };
    state.dirty = true;
    let mut commands = vec![Command::Start { email, api_key }];
    let tab = state.tab;
    commands.extend(enter_tab(state, tab));
    commands
}

fn tick(state: &mut State, now: u64) {
    let before = (state.spinner, format_rate(state.rate), reconnect_secs(state));
    state.now_ms = now;
    if state.waiting() {
        state.spinner = state.spinner.wrapping_add(1);
    }
    while state
        .arrivals
        .front()
        .is_some_and(|t| now.saturating_sub(*t) > RATE_WINDOW_MS)
    {
        state.arrivals.pop_front();
    }
    state.rate = state.arrivals.len() as f64 * 1000.0 / RATE_WINDOW_MS as f64;
    let after = (state.spinner, format_rate(state.rate), reconnect_secs(state));
    if before != after {
        state.dirty = true;
    }
}

pub fn format_rate(rate: f64) -> String {
    format!("{rate:.1}")
}

/// Seconds left before the next reconnect, as the status line shows them.
pub fn reconnect_secs(state: &State) -> Option<u64> {
    match &state.stream {
        StreamState::Reconnecting { at_ms, .. } => Some(at_ms.saturating_sub(state.now_ms).div_ceil(1000)),
        _ => None,
    }
}

fn flash(state: &mut State, level: Level, text: impl Into<String>) {
    state.flash = Some((level, text.into()));
}

fn on_stream(state: &mut State, update: StreamUpdate) {
    match update {
        StreamUpdate::Connecting { attempt } => state.stream = StreamState::Connecting { attempt },
        StreamUpdate::Live { .. } => state.stream = StreamState::Live,
        StreamUpdate::Reconnecting {
            in_ms,
            attempt,
            error,
        } => {
            state.stream = StreamState::Reconnecting {
                at_ms: state.now_ms + in_ms,
                attempt,
                error,
            }
        }
        StreamUpdate::Offline { error } => state.stream = StreamState::Offline { error },
        StreamUpdate::Event { event, raw, resend } => {
            let delivery = if state.forward_to.is_none() {
                Delivery::NotForwarded
            } else if state.events.paused_at.is_some() {
                Delivery::Held
            } else {
                Delivery::Sending
            };
            let seq = state.store.push(&event, raw, resend, delivery);
            if !state.events.filter.is_empty() {
                let first = state.store.first_seq();
                if state.events.matches.first().is_some_and(|s| *s < first) {
                    let gone = state.events.matches.partition_point(|s| *s < first);
                    state.events.matches.drain(..gone);
                }
                if let Some(row) = state.store.get(seq)
                    && row_matches(&state.events.filter, &row.id, row.kind.as_str())
                {
                    state.events.matches.push(seq);
                }
            }
            state.arrivals.push_back(state.now_ms);
            if state.arrivals.len() > RATE_SAMPLES {
                state.arrivals.pop_front();
            }
        }
        StreamUpdate::Delivered { event_id, attempt } => {
            if let Some(seq) = state.store.find(&event_id) {
                if attempt.replay {
                    let text = match attempt.status {
                        Some(status) => format!("replayed {event_id}: {status} in {} ms", attempt.latency_ms),
                        None => format!("replay of {event_id} failed: {}", attempt.response),
                    };
                    let level = if attempt.status.is_some_and(|s| (200..300).contains(&s)) {
                        Level::Good
                    } else {
                        Level::Bad
                    };
                    state.busy = state.busy.saturating_sub(1);
                    flash(state, level, text);
                }
                state.store.add_attempt(seq, attempt);
            }
        }
        StreamUpdate::Forwarding { url } => {
            state.forward_to = url;
        }
    }
}

fn row_matches(filter: &str, id: &str, kind: &str) -> bool {
    id.to_ascii_lowercase().contains(filter) || kind.contains(filter)
}

fn set_event_filter(state: &mut State, filter: &str) {
    state.events.filter = filter.trim().to_ascii_lowercase();
    state.events.matches.clear();
    if !state.events.filter.is_empty() {
        let filter = state.events.filter.clone();
        state.events.matches = state
            .store
            .iter()
            .filter(|row| row_matches(&filter, &row.id, row.kind.as_str()))
            .map(|row| row.seq)
            .collect();
    }
    state.events.selected = None;
    state.events.offset = 0;
}

fn on_api(state: &mut State, reply: ApiReply) -> Vec<Command> {
    match reply {
        ApiReply::LoggedIn {
            email,
            api_key,
            stored,
        } => match stored {
            Ok(_) => start(state, email, api_key),
            Err(error) => {
                state.screen = Screen::Keyring(KeyringProblem {
                    email,
                    api_key,
                    error,
                    file_result: None,
                });
                Vec::new()
            }
        },
        ApiReply::LoginFailed(error) => {
            if let Screen::Login(form) = &mut state.screen {
                form.busy = false;
                form.error = Some(error);
            }
            Vec::new()
        }
        ApiReply::StoredInFile(result) => {
            if let Screen::Keyring(problem) = &mut state.screen {
                if result.is_ok() {
                    let (email, key) = (problem.email.clone(), problem.api_key.clone());
                    let where_ = result.clone().unwrap_or_default();
                    let commands = start(state, email, key);
                    flash(state, Level::Good, format!("key stored in {where_}"));
                    return commands;
                }
                problem.file_result = Some(result);
            }
            Vec::new()
        }
        ApiReply::Payments(result) => {
            state.payments.list = result.into();
            clamp_payments(state);
            payment_detail(state)
        }
        ApiReply::PaymentDetail(result) => {
            let wanted = state.selected_payment().map(|p| p.id.clone());
            let fits = match &result {
                Ok(detail) => wanted.as_deref() == Some(detail.payment.id.as_str()),
                Err(_) => true,
            };
            if fits {
                state.payments.detail = result.into();
            }
            Vec::new()
        }
        ApiReply::PaymentAction { what, result } => {
            state.busy = state.busy.saturating_sub(1);
            match result {
                Ok(payment) => {
                    let created = what == "created";
                    if let Some(method) = state.payments.pending_method.take_if(|_| created) {
                        state.payments.methods.insert(payment.id.clone(), method);
                    }
                    flash(
                        state,
                        Level::Good,
                        format!("{what} {}: {}", payment.id, payment.status),
                    );
                    if let Load::Loaded(list) = &mut state.payments.list {
                        match list.iter_mut().find(|p| p.id == payment.id) {
                            Some(existing) => *existing = payment.clone(),
                            None => {
                                list.insert(0, payment.clone());
                                state.payments.selected = 0;
                            }
                        }
                    }
                    payment_detail(state)
                }
                Err(error) => {
                    flash(state, Level::Bad, format!("{what} failed: {error}"));
                    Vec::new()
                }
            }
        }
        ApiReply::Accounts(result) => {
            state.ledger.accounts = result.into();
            let len = state.ledger.accounts.loaded().map_or(0, Vec::len);
            state.ledger.selected = state.ledger.selected.min(len.saturating_sub(1));
            Vec::new()
        }
        ApiReply::Entries { account_id, result } => {
            if let Some(view) = &mut state.ledger.entries
                && view.account.id == account_id
            {
                view.page = result.into();
                view.selected = 0;
            }
            Vec::new()
        }
        ApiReply::Transaction(result) => {
            if state.ledger.transaction.is_some() {
                state.ledger.transaction = Some(result.into());
            }
            Vec::new()
        }
        ApiReply::Keys(result) => {
            state.keys.list = result.into();
            let len = state.keys.list.loaded().map_or(0, Vec::len);
            state.keys.selected = state.keys.selected.min(len.saturating_sub(1));
            Vec::new()
        }
        ApiReply::KeyCreated(result) => {
            state.busy = state.busy.saturating_sub(1);
            match result {
                Ok(created) => {
                    state.modal = Modal::NewKey(created);
                    vec![Command::LoadKeys]
                }
                Err(error) => {
                    flash(state, Level::Bad, format!("creating the key failed: {error}"));
                    Vec::new()
                }
            }
        }
        ApiReply::KeyRevoked(result) => {
            state.busy = state.busy.saturating_sub(1);
            match result {
                Ok(id) => {
                    flash(state, Level::Good, format!("revoked {id}"));
                    vec![Command::LoadKeys]
                }
                Err(error) => {
                    flash(state, Level::Bad, format!("revoking failed: {error}"));
                    Vec::new()
                }
            }
        }
        ApiReply::WebhookSecret(result) => {
            state.keys.secret = result.into();
            Vec::new()
        }
        ApiReply::Resent(result) => {
            state.busy = state.busy.saturating_sub(1);
            match result {
                Ok(id) => flash(state, Level::Good, format!("the server resends {id}")),
                Err(error) => flash(state, Level::Bad, format!("resend failed: {error}")),
            }
            Vec::new()
        }
        ApiReply::Done(result) => {
            match result {
                Ok(text) => flash(state, Level::Info, text),
                Err(error) => flash(state, Level::Bad, error),
            }
            Vec::new()
        }
    }
}

fn is_ctrl_c(key: &KeyEvent) -> bool {
    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL)
}

fn on_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
    if is_ctrl_c(&key) {
        state.quit = true;
        return vec![Command::Quit];
    }
    match &mut state.screen {
        Screen::Login(form) => login_key(form, key),
        Screen::Keyring(problem) => match key.code {
            KeyCode::Char('f') => vec![Command::StoreInFile {
                email: problem.email.clone(),
                api_key: problem.api_key.clone(),
            }],
            KeyCode::Char('c') | KeyCode::Enter => {
                let (email, api_key) = (problem.email.clone(), problem.api_key.clone());
                let commands = start(state, email, api_key);
                flash(state, Level::Info, "the key is kept for this session only");
                commands
            }
            KeyCode::Char('q') | KeyCode::Esc => {
                state.quit = true;
                vec![Command::Quit]
            }
            _ => Vec::new(),
        },
        Screen::Main => main_key(state, key),
    }
}

/// Typing into a line: true when the key was text editing.
fn edit(input: &mut Input, key: &KeyEvent) -> bool {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return false;
    }
    match key.code {
        KeyCode::Char(c) => input.insert(c),
        KeyCode::Backspace => input.backspace(),
        KeyCode::Delete => input.delete(),
        KeyCode::Left => input.left(),
        KeyCode::Right => input.right(),
        KeyCode::Home => input.home(),
        KeyCode::End => input.end(),
        _ => return false,
    }
    true
}

fn login_key(form: &mut LoginForm, key: KeyEvent) -> Vec<Command> {
    if form.busy {
        return Vec::new();
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('n') if ctrl => {
            form.register = !form.register;
            form.error = None;
        }
        KeyCode::Tab | KeyCode::Down | KeyCode::Up | KeyCode::BackTab => {
            form.focus_password = !form.focus_password;
        }
        KeyCode::Enter if !form.focus_password => form.focus_password = true,
        KeyCode::Enter => {
            let email = form.email.value.trim().to_owned();
            if email.is_empty() || !email.contains('@') {
                form.error = Some("enter the email address you log in with".into());
                form.focus_password = false;
                return Vec::new();
            }
            if form.password.value.is_empty() {
                form.error = Some("enter your password".into());
                return Vec::new();
            }
            form.busy = true;
            form.error = None;
            return vec![Command::Login {
                email,
                password: form.password.value.clone(),
                register: form.register,
            }];
        }
        _ => {
            let input = if form.focus_password {
                &mut form.password
            } else {
                &mut form.email
            };
            edit(input, &key);
        }
    }
    Vec::new()
}

fn main_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
    match std::mem::take(&mut state.modal) {
        Modal::None => {}
        Modal::Help => {
            // Any key closes the help; `q` should not quit from under it.
            return Vec::new();
        }
        Modal::Prompt(mut prompt) => {
            return match key.code {
                KeyCode::Esc => Vec::new(),
                KeyCode::Enter => submit_prompt(state, prompt),
                _ => {
                    edit(&mut prompt.input, &key);
                    prompt.error = None;
                    if prompt.kind == PromptKind::Filter {
                        live_filter(state, &prompt.input.value);
                    }
                    state.modal = Modal::Prompt(prompt);
                    Vec::new()
                }
            };
        }
        Modal::Confirm(what) => {
            return match key.code {
                KeyCode::Char('y') | KeyCode::Enter => confirmed(state, what),
                KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => Vec::new(),
                _ => {
                    state.modal = Modal::Confirm(what);
                    Vec::new()
                }
            };
        }
        Modal::NewPayment(form) => return new_payment_key(state, form, key),
        Modal::CopyMenu => return copy_event(state, key.code),
        Modal::NewKey(created) => {
            return match key.code {
                KeyCode::Char('y') | KeyCode::Char('c') => {
                    let key_text = created.key.clone();
                    state.modal = Modal::NewKey(created);
                    vec![Command::Copy(key_text)]
                }
                KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => Vec::new(),
                _ => {
                    state.modal = Modal::NewKey(created);
                    Vec::new()
                }
            };
        }
    }
    match keymap::lookup(state.tab, &key) {
        Some(action) => act(state, action),
        None => Vec::new(),
    }
}

fn live_filter(state: &mut State, text: &str) {
    match state.tab {
        Tab::Events => set_event_filter(state, text),
        Tab::Payments => {
            state.payments.filter = text.trim().to_owned();
            state.payments.selected = 0;
            state.payments.offset = 0;
        }
        Tab::Ledger | Tab::Keys => {}
    }
}

fn prompt(state: &mut State, kind: PromptKind, value: &str) {
    state.modal = Modal::Prompt(Prompt {
        kind,
        input: Input::new(value),
        error: None,
    });
}

pub fn act(state: &mut State, action: Action) -> Vec<Command> {
    let page = layout::page_size(state.width, state.height, state.tab);
    match action {
        Action::Quit => {
            state.quit = true;
            vec![Command::Quit]
        }
        Action::Help => {
            state.modal = Modal::Help;
            Vec::new()
        }
        Action::NextTab => {
            let next = Tab::ALL[(state.tab.index() + 1) % Tab::ALL.len()];
            enter_tab(state, next)
        }
        Action::PrevTab => {
            let prev = Tab::ALL[(state.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()];
            enter_tab(state, prev)
        }
        Action::GoTab(tab) => enter_tab(state, tab),
        Action::Jump => {
            prompt(state, PromptKind::Jump, "");
            Vec::new()
        }
        Action::Up => move_by(state, -1),
        Action::Down => move_by(state, 1),
        Action::PageUp => match state.tab {
            Tab::Ledger if state.ledger.entries.is_some() && state.ledger.transaction.is_none() => {
                entries_page(state, false)
            }
            _ => move_by(state, -(page as i64)),
        },
        Action::PageDown => match state.tab {
            Tab::Ledger if state.ledger.entries.is_some() && state.ledger.transaction.is_none() => {
                entries_page(state, true)
            }
            _ => move_by(state, page as i64),
        },
        Action::Top => move_by(state, i64::MIN / 2),
        Action::Bottom => move_by(state, i64::MAX / 2),
        Action::Back => back(state),
        Action::Reload => reload(state),
        Action::Filter => {
            let current = match state.tab {
                Tab::Events => state.events.filter.clone(),
                _ => state.payments.filter.clone(),
            };
            prompt(state, PromptKind::Filter, &current);
            Vec::new()
        }
        Action::ForwardTo => {
            let current = state
                .forward_to
                .clone()
                .unwrap_or_else(|| "http://localhost:4242/webhook".into());
            prompt(state, PromptKind::ForwardTo, &current);
            // Typing a URL replaces the one offered rather than appending to it.
            if let Modal::Prompt(open) = &mut state.modal {
                open.input = Input::suggesting(&current);
            }
            Vec::new()
        }
        Action::Replay | Action::EditReplay => {
            let Some((event_id, body)) = selected_body(state) else {
                flash(state, Level::Bad, "no event selected, or its body was dropped");
                return Vec::new();
            };
            if state.forward_to.is_none() {
                flash(state, Level::Bad, "set a forward URL first (f)");
                return Vec::new();
            }
            state.busy += 1;
            flash(state, Level::Info, format!("replaying {event_id}…"));
            if action == Action::Replay {
                vec![Command::Replay { event_id, body }]
            } else {
                vec![Command::EditReplay { event_id, body }]
            }
        }
        Action::Resend => {
            let Some(row) = state.selected_event().and_then(|seq| state.store.get(seq)) else {
                return Vec::new();
            };
            let id = row.id.to_string();
            state.busy += 1;
            flash(state, Level::Info, format!("asking the server to resend {id}…"));
            vec![Command::Resend(id)]
        }
        Action::Pause => match state.events.paused_at {
            Some(_) => {
                state.events.paused_at = None;
                flash(state, Level::Info, "resumed");
                vec![Command::SetPaused(false)]
            }
            None => {
                state.events.paused_at = Some(state.store.next_seq());
                flash(state, Level::Info, "paused: events are counted and held");
                vec![Command::SetPaused(true)]
            }
        },
        Action::Copy => match state.tab {
            Tab::Events => {
                if state.selected_event().is_some() {
                    state.modal = Modal::CopyMenu;
                }
                Vec::new()
            }
            Tab::Payments => {
                let id = state.selected_payment().map(|p| p.id.clone());
                copy_text(state, id)
            }
            Tab::Ledger => {
                let id = ledger_selected_id(state);
                copy_text(state, id)
            }
            Tab::Keys => {
                let id = state
                    .keys
                    .list
                    .loaded()
                    .and_then(|keys| keys.get(state.keys.selected))
                    .map(|k| k.id.clone());
                copy_text(state, id)
            }
        },
        Action::NewPayment => {
            state.modal = Modal::NewPayment(NewPaymentForm::default());
            Vec::new()
        }
        Action::Enter => enter(state),
        Action::CancelPayment => {
            if let Some(payment) = state.selected_payment() {
                state.modal = Modal::Confirm(Confirm::CancelPayment(payment.id.clone()));
            }
            Vec::new()
        }
        Action::Refund => {
            if state.selected_payment().is_some() {
                prompt(state, PromptKind::RefundAmount, "");
            }
            Vec::new()
        }
        Action::NewKey => {
            prompt(state, PromptKind::KeyName, "console");
            Vec::new()
        }
        Action::RevokeKey => {
            let key = state
                .keys
                .list
                .loaded()
                .and_then(|keys| keys.get(state.keys.selected))
                .filter(|k| k.revoked_at.is_none());
            if let Some(key) = key {
                state.modal = Modal::Confirm(Confirm::RevokeKey(key.id.clone()));
            }
            Vec::new()
        }
        Action::RollSecret => {
            state.modal = Modal::Confirm(Confirm::RollSecret);
            Vec::new()
        }
        Action::CopySecret => match &state.keys.secret {
            Load::Loaded(_) => vec![Command::CopySecret],
            _ => Vec::new(),
        },
    }
}

fn copy_text(state: &mut State, text: Option<String>) -> Vec<Command> {
    match text {
        Some(text) => vec![Command::Copy(text)],
        None => {
            flash(state, Level::Bad, "nothing selected");
            Vec::new()
        }
    }
}

fn selected_body(state: &State) -> Option<(String, String)> {
    let seq = state.selected_event()?;
    let row = state.store.get(seq)?;
    let body = state.store.body(seq)?;
    Some((row.id.to_string(), body.raw.clone()))
}

fn copy_event(state: &mut State, code: KeyCode) -> Vec<Command> {
    let Some((id, body)) = selected_body(state) else {
        return Vec::new();
    };
    let text = match code {
        KeyCode::Char('i') => id,
        KeyCode::Char('p') => body,
        KeyCode::Char('c') => curl_command(state.forward_to.as_deref(), &id, &body),
        _ => return Vec::new(),
    };
    vec![Command::Copy(text)]
}

/// A curl command that posts the payload as it was received; signing needs the
/// secret and a fresh timestamp, so the headers are left for `r` to add.
pub fn curl_command(target: Option<&str>, id: &str, body: &str) -> String {
    let target = target.unwrap_or("http://localhost:4242/webhook");
    let quoted = body.replace('\'', r"'\''");
    format!(
        "curl -X POST '{target}' -H 'content-type: application/json' -H 'webhook-id: {id}' --data '{quoted}'"
    )
}

fn ledger_selected_id(state: &State) -> Option<String> {
    if let Some(Load::Loaded(txn)) = &state.ledger.transaction {
        return Some(txn.id.clone());
    }
    if let Some(view) = &state.ledger.entries {
        return view
            .page
            .loaded()
            .and_then(|p| p.entries.get(view.selected))
            .map(|e| e.transaction_id.clone());
    }
    state
        .ledger
        .accounts
        .loaded()
        .and_then(|a| a.get(state.ledger.selected))
        .map(|a| a.id.clone())
}

pub fn enter_tab(state: &mut State, tab: Tab) -> Vec<Command> {
    state.tab = tab;
    match tab {
        Tab::Events => Vec::new(),
        Tab::Payments if matches!(state.payments.list, Load::Idle | Load::Error(_)) => {
            state.payments.list = Load::Loading;
            vec![Command::LoadPayments]
        }
        Tab::Ledger if matches!(state.ledger.accounts, Load::Idle | Load::Error(_)) => {
            state.ledger.accounts = Load::Loading;
            vec![Command::LoadAccounts]
        }
        Tab::Keys => {
            let mut commands = Vec::new();
            if matches!(state.keys.list, Load::Idle | Load::Error(_)) {
                state.keys.list = Load::Loading;
                commands.push(Command::LoadKeys);
            }
            if matches!(state.keys.secret, Load::Idle | Load::Error(_)) {
                state.keys.secret = Load::Loading;
                commands.push(Command::LoadSecret);
            }
            commands
        }
        _ => Vec::new(),
    }
}

fn reload(state: &mut State) -> Vec<Command> {
    match state.tab {
        Tab::Events => Vec::new(),
        Tab::Payments => {
            state.payments.list = Load::Loading;
            vec![Command::LoadPayments]
        }
        Tab::Ledger => {
            state.ledger.accounts = Load::Loading;
            state.ledger.entries = None;
            state.ledger.transaction = None;
            vec![Command::LoadAccounts]
        }
        Tab::Keys => {
            state.keys.list = Load::Loading;
            state.keys.secret = Load::Loading;
            vec![Command::LoadKeys, Command::LoadSecret]
        }
    }
}

fn clamp(index: usize, delta: i64, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    (index as i64).saturating_add(delta).clamp(0, len as i64 - 1) as usize
}

/// Keeps `selected` inside the window that starts at `offset`.
pub fn scroll(offset: usize, selected: usize, page: usize) -> usize {
    if selected < offset {
        selected
    } else if selected >= offset + page {
        selected + 1 - page
    } else {
        offset
    }
}

fn move_by(state: &mut State, delta: i64) -> Vec<Command> {
    let page = layout::page_size(state.width, state.height, state.tab);
    match state.tab {
        Tab::Events => {
            let len = state.event_view_len();
            let current = state
                .selected_event()
                .and_then(|seq| state.event_index(seq))
                .unwrap_or(0);
            let next = clamp(current, delta, len);
            state.events.selected = if next == 0 { None } else { state.event_at(next) };
            state.events.offset = scroll(state.events.offset, next, page);
            Vec::new()
        }
        Tab::Payments => {
            let len = state.visible_payments().len();
            let before = state.payments.selected;
            state.payments.selected = clamp(before, delta, len);
            state.payments.offset = scroll(state.payments.offset, state.payments.selected, page);
            if state.payments.selected != before {
                payment_detail(state)
            } else {
                Vec::new()
            }
        }
        Tab::Ledger => {
            if state.ledger.transaction.is_some() {
                return Vec::new();
            }
            if let Some(view) = &mut state.ledger.entries {
                let len = view.page.loaded().map_or(0, |p| p.entries.len());
                view.selected = clamp(view.selected, delta, len);
            } else {
                let len = state.ledger.accounts.loaded().map_or(0, Vec::len);
                state.ledger.selected = clamp(state.ledger.selected, delta, len);
            }
            Vec::new()
        }
        Tab::Keys => {
            let len = state.keys.list.loaded().map_or(0, Vec::len);
            state.keys.selected = clamp(state.keys.selected, delta, len);
            Vec::new()
        }
    }
}

fn clamp_payments(state: &mut State) {
    let len = state.visible_payments().len();
    state.payments.selected = state.payments.selected.min(len.saturating_sub(1));
}

/// The detail pane follows the selection; refunds are fetched only when there are some.
fn payment_detail(state: &mut State) -> Vec<Command> {
    let Some(payment) = state.selected_payment().cloned() else {
        state.payments.detail = Load::Idle;
        return Vec::new();
    };
    if payment.amount_refunded > 0 {
        state.payments.detail = Load::Loading;
        vec![Command::LoadPaymentDetail(payment.id)]
    } else {
        state.payments.detail = Load::Loaded(super::msg::PaymentDetail {
            payment,
            refunds: Vec::new(),
        });
        Vec::new()
    }
}

fn entries_page(state: &mut State, forward: bool) -> Vec<Command> {
    let Some(view) = &mut state.ledger.entries else {
        return Vec::new();
    };
    let starting_after = if forward {
        let Some(page) = view.page.loaded() else {
            return Vec::new();
        };
        if !page.has_more {
            return Vec::new();
        }
        let Some(last) = page.entries.last() else {
            return Vec::new();
        };
        let cursor = last.id.clone();
        view.cursors.push(cursor.clone());
        Some(cursor)
    } else {
        if view.cursors.pop().is_none() {
            return Vec::new();
        }
        view.cursors.last().cloned()
    };
    view.page = Load::Loading;
    vec![Command::LoadEntries {
        account_id: view.account.id.clone(),
        starting_after,
    }]
}

fn enter(state: &mut State) -> Vec<Command> {
    match state.tab {
        Tab::Events => Vec::new(),
        Tab::Payments => {
            let Some(payment) = state.selected_payment() else {
                return Vec::new();
            };
            let id = payment.id.clone();
            let method = state
                .payments
                .methods
                .get(&id)
                .cloned()
                .unwrap_or_else(|| TEST_PAYMENT_METHODS[0].0.to_owned());
            state.busy += 1;
            flash(state, Level::Info, format!("confirming {id} with {method}…"));
            vec![Command::ConfirmPayment { id, method }]
        }
        Tab::Ledger => {
            if state.ledger.transaction.is_some() {
                return Vec::new();
            }
            if let Some(view) = &state.ledger.entries {
                let txn = view
                    .page
                    .loaded()
                    .and_then(|p| p.entries.get(view.selected))
                    .map(|e| e.transaction_id.clone());
                return match txn {
                    Some(id) => {
                        state.ledger.transaction = Some(Load::Loading);
                        vec![Command::LoadTransaction(id)]
                    }
                    None => Vec::new(),
                };
            }
            let Some(account) = state
                .ledger
                .accounts
                .loaded()
                .and_then(|a| a.get(state.ledger.selected))
                .cloned()
            else {
                return Vec::new();
            };
            let account_id = account.id.clone();
            state.ledger.entries = Some(EntriesView {
                account,
                page: Load::Loading,
                cursors: Vec::new(),
                selected: 0,
            });
            vec![Command::LoadEntries {
                account_id,
                starting_after: None,
            }]
        }
        Tab::Keys => Vec::new(),
    }
}

fn back(state: &mut State) -> Vec<Command> {
    match state.tab {
        Tab::Ledger if state.ledger.transaction.is_some() => state.ledger.transaction = None,
        Tab::Ledger if state.ledger.entries.is_some() => state.ledger.entries = None,
        Tab::Events if !state.events.filter.is_empty() => set_event_filter(state, ""),
        Tab::Payments if !state.payments.filter.is_empty() => {
            state.payments.filter.clear();
            clamp_payments(state);
        }
        _ => state.flash = None,
    }
    Vec::new()
}

fn confirmed(state: &mut State, what: Confirm) -> Vec<Command> {
    state.busy += 1;
    match what {
        Confirm::CancelPayment(id) => {
            flash(state, Level::Info, format!("canceling {id}…"));
            vec![Command::CancelPayment(id)]
        }
        Confirm::RevokeKey(id) => {
            flash(state, Level::Info, format!("revoking {id}…"));
            vec![Command::RevokeKey(id)]
        }
        Confirm::RollSecret => {
            state.busy -= 1;
            state.keys.secret = Load::Loading;
            vec![Command::RollSecret]
        }
    }
}

/// Reads `12.34` in a currency with `exponent` decimals as minor units.
pub fn parse_amount(text: &str, exponent: u32) -> Result<i64, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not an amount with at most {exponent} decimals");
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return Err(bad());
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if fraction.len() > exponent as usize {
        return Err(bad());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let mut minor = whole.checked_mul(10_i64.pow(exponent)).ok_or_else(bad)?;
    if !fraction.is_empty() {
        let scale = 10_i64.pow(exponent - fraction.len() as u32);
        let part: i64 = fraction.parse().map_err(|_| bad())?;
        minor = minor.checked_add(part * scale).ok_or_else(bad)?;
    }
    if minor <= 0 {
        return Err("the amount must be more than zero".into());
    }
    Ok(minor)
}

fn submit_prompt(state: &mut State, mut prompt: Prompt) -> Vec<Command> {
    let value = prompt.input.value.trim().to_owned();
    match prompt.kind {
        PromptKind::Filter => {
            live_filter(state, &value);
            Vec::new()
        }
        PromptKind::Jump => {
            let name = value.trim_start_matches(':');
            if matches!(name, "q" | "quit") {
                state.quit = true;
                return vec![Command::Quit];
            }
            match Tab::parse(name) {
                Some(tab) => enter_tab(state, tab),
                None => {
                    flash(state, Level::Bad, format!("no such view: {name}"));
                    Vec::new()
                }
            }
        }
        PromptKind::ForwardTo => {
            if value.is_empty() {
                state.forward_to = None;
                flash(state, Level::Info, "forwarding stopped");
                return vec![Command::SetForward(None)];
            }
            if !(value.starts_with("http://") || value.starts_with("https://")) {
                prompt.error = Some("the URL must start with http:// or https://".into());
                state.modal = Modal::Prompt(prompt);
                return Vec::new();
            }
            state.forward_to = Some(value.clone());
            flash(state, Level::Info, format!("forwarding to {value}"));
            vec![Command::SetForward(Some(value))]
        }
        PromptKind::RefundAmount => {
            let Some(payment) = state.selected_payment().cloned() else {
                return Vec::new();
            };
            let amount = if value.is_empty() {
                None
            } else {
                let exponent = Currency::parse(&payment.currency).map_or(2, |c| c.exponent());
                match parse_amount(&value, exponent) {
                    Ok(amount) => Some(amount),
                    Err(error) => {
                        prompt.error = Some(error);
                        state.modal = Modal::Prompt(prompt);
                        return Vec::new();
                    }
                }
            };
            state.busy += 1;
            flash(state, Level::Info, format!("refunding {}…", payment.id));
            vec![Command::Refund {
                id: payment.id,
                amount,
            }]
        }
        PromptKind::KeyName => {
            let name = if value.is_empty() {
                "console".to_owned()
            } else {
                value
            };
            state.busy += 1;
            flash(state, Level::Info, format!("creating key {name}…"));
            vec![Command::CreateKey(name)]
        }
    }
}

fn new_payment_key(state: &mut State, mut form: NewPaymentForm, key: KeyEvent) -> Vec<Command> {
    match key.code {
        KeyCode::Esc => return Vec::new(),
        KeyCode::Tab | KeyCode::Down => form.field = (form.field + 1) % 3,
        KeyCode::BackTab | KeyCode::Up => form.field = (form.field + 2) % 3,
        KeyCode::Left | KeyCode::Char('h') if form.field == 2 => {
            form.method = (form.method + TEST_PAYMENT_METHODS.len() - 1) % TEST_PAYMENT_METHODS.len();
        }
        KeyCode::Right | KeyCode::Char('l') | KeyCode::Char(' ') if form.field == 2 => {
            form.method = (form.method + 1) % TEST_PAYMENT_METHODS.len();
        }
        KeyCode::Enter => {
            let currency = match Currency::parse(&form.currency.value) {
                Ok(c) => c,
                Err(error) => {
                    form.error = Some(error.to_string());
                    form.field = 1;
                    state.modal = Modal::NewPayment(form);
                    return Vec::new();
                }
            };
            let amount = match parse_amount(&form.amount.value, currency.exponent()) {
                Ok(a) => a,
                Err(error) => {
                    form.error = Some(error);
                    form.field = 0;
                    state.modal = Modal::NewPayment(form);
                    return Vec::new();
                }
            };
            let method = TEST_PAYMENT_METHODS[form.method % TEST_PAYMENT_METHODS.len()]
                .0
                .to_owned();
            state.busy += 1;
            state.payments.pending_method = Some(method.clone());
            flash(state, Level::Info, "creating the payment…");
            return vec![Command::CreatePayment {
                amount,
                currency: currency.code().to_owned(),
                method,
            }];
        }
        _ => {
            let input = match form.field {
                0 => Some(&mut form.amount),
                1 => Some(&mut form.currency),
                _ => None,
            };
            if let Some(input) = input {
                edit(input, &key);
                form.error = None;
            }
        }
    }
    state.modal = Modal::NewPayment(form);
    Vec::new()
}

fn on_mouse(state: &mut State, mouse: crossterm::event::MouseEvent) -> Vec<Command> {
    if state.screen != Screen::Main || state.modal != Modal::None {
        return Vec::new();
    }
    match mouse.kind {
        MouseEventKind::ScrollDown => {
            state.dirty = true;
            move_by(state, 3)
        }
        MouseEventKind::ScrollUp => {
            state.dirty = true;
            move_by(state, -3)
        }
        MouseEventKind::Down(_) => {
            state.dirty = true;
            if mouse.row == 1 {
                return match layout::tab_at(mouse.column) {
                    Some(tab) => enter_tab(state, tab),
                    None => Vec::new(),
                };
            }
            let rows = layout::list_rows(layout::list_area(state.width, state.height, state.tab));
            if mouse.row < rows.y
                || mouse.row >= rows.y + rows.height
                || mouse.column < rows.x
                || mouse.column >= rows.x + rows.width
            {
                return Vec::new();
            }
            let offset = match state.tab {
                Tab::Events => state.events.offset,
                Tab::Payments => state.payments.offset,
                _ => 0,
            };
            let target = offset + usize::from(mouse.row - rows.y);
            let current = match state.tab {
                Tab::Events => state
                    .selected_event()
                    .and_then(|seq| state.event_index(seq))
                    .unwrap_or(0),
                Tab::Payments => state.payments.selected,
                Tab::Ledger => state
                    .ledger
                    .entries
                    .as_ref()
                    .map_or(state.ledger.selected, |v| v.selected),
                Tab::Keys => state.keys.selected,
            };
            move_by(state, target as i64 - current as i64)
        }
        _ => Vec::new(),
    }
}
