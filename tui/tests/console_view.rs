//! Snapshots of every tab in its main states, at 80x24 and 160x48, drawn
//! with ratatui's TestBackend from fixed fake data; ids and times redacted.

use micro::console::fixtures;
use micro::console::msg::{Msg, StreamUpdate};
use micro::console::state::{
    Confirm, KeyringProblem, Load, LoginForm, Modal, NewPaymentForm, Screen, State, StreamState, Tab,
};
use micro::console::update::update;
use micro::console::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn draw(state: &State) -> String {
    let mut terminal = Terminal::new(TestBackend::new(state.width, state.height)).expect("terminal");
    terminal.draw(|frame| view::render(state, frame)).expect("draw");
    terminal.backend().to_string()
}

fn snap(name: &str, make: impl Fn(u16, u16) -> State) {
    for (width, height) in SIZES {
        let state = make(width, height);
        let screen = draw(&state);
        let mut settings = insta::Settings::clone_current();
        settings.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[datetime]");
        settings.add_filter(r"\d{2}:\d{2}:\d{2}\.\d{3}", "[time]");
        settings.add_filter(r"(evt|pay|txn|acct|key|re|ent|usr)_01JFAKE\w*", "${1}_[id]");
        settings.set_snapshot_suffix(format!("{width}x{height}"));
        settings.bind(|| insta::assert_snapshot!(name, screen));
    }
}

fn with_help(mut state: State) -> State {
    state.modal = Modal::Help;
    state
}

#[test]
fn events_tab() {
    snap("events_empty", |w, h| fixtures::logged_in(w, h, Tab::Events));
    snap("events_loading", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Events);
        state.stream = StreamState::Connecting { attempt: 1 };
        state
    });
    snap("events_loaded", |w, h| {
        fixtures::with_events(fixtures::logged_in(w, h, Tab::Events), 40)
    });
    snap("events_error", |w, h| {
        let mut state = fixtures::with_events(fixtures::logged_in(w, h, Tab::Events), 3);
        update(
            &mut state,
            Msg::Stream(StreamUpdate::Reconnecting {
                in_ms: 4000,
                attempt: 3,
                error: "connection refused".into(),
            }),
        );
        state
    });
    snap("events_help", |w, h| {
        with_help(fixtures::logged_in(w, h, Tab::Events))
    });
    snap("events_paused_filtered", |w, h| {
        let mut state = fixtures::with_events(fixtures::logged_in(w, h, Tab::Events), 20);
        state.events.paused_at = Some(15);
        update(&mut state, Msg::Key(key('/')));
        for c in "succ".chars() {
            update(&mut state, Msg::Key(key(c)));
        }
        update(&mut state, Msg::Key(code(crossterm::event::KeyCode::Enter)));
        state
    });
    snap("events_offline_no_color", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Events);
        state.no_color = true;
        state.forward_to = None;
        state.stream = StreamState::Offline {
            error: "the API key was refused (401)".into(),
        };
        state
    });
}

#[test]
fn payments_tab() {
    snap("payments_empty", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Payments);
        state.payments.list = Load::Loaded(Vec::new());
        state
    });
    snap("payments_loading", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Payments);
        state.payments.list = Load::Loading;
        state
    });
    snap("payments_loaded", |w, h| {
        let mut state = fixtures::with_events(fixtures::logged_in(w, h, Tab::Payments), 10);
        fixtures::payments(&mut state);
        state
    });
    snap("payments_error", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Payments);
        state.payments.list = Load::Error("the gateway did not answer: connection refused".into());
        state
    });
    snap("payments_help", |w, h| {
        with_help(fixtures::logged_in(w, h, Tab::Payments))
    });
    snap("payments_new", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Payments);
        fixtures::payments(&mut state);
        state.modal = Modal::NewPayment(NewPaymentForm::default());
        state
    });
    snap("payments_cancel", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Payments);
        fixtures::payments(&mut state);
        state.modal = Modal::Confirm(Confirm::CancelPayment("pay_01JFAKE0000000001".into()));
        state
    });
}

#[test]
fn ledger_tab() {
    snap("ledger_empty", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Ledger);
        state.ledger.accounts = Load::Loaded(Vec::new());
        state
    });
    snap("ledger_loading", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Ledger);
        state.ledger.accounts = Load::Loading;
        state
    });
    snap("ledger_loaded", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Ledger);
        state.ledger.accounts = Load::Loaded(fixtures::accounts());
        state
    });
    snap("ledger_error", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Ledger);
        state.ledger.accounts = Load::Error("rate limited: try again in 12 s".into());
        state
    });
    snap("ledger_help", |w, h| {
        with_help(fixtures::logged_in(w, h, Tab::Ledger))
    });
    snap("ledger_entries", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Ledger);
        state.ledger.accounts = Load::Loaded(fixtures::accounts());
        update(&mut state, Msg::Key(code(crossterm::event::KeyCode::Enter)));
        update(
            &mut state,
            Msg::Api(micro::console::msg::ApiReply::Entries {
                account_id: "acct_01JFAKE0000000001".into(),
                result: Ok(fixtures::entries()),
            }),
        );
        state
    });
    snap("ledger_transaction", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Ledger);
        state.ledger.accounts = Load::Loaded(fixtures::accounts());
        update(&mut state, Msg::Key(code(crossterm::event::KeyCode::Enter)));
        update(
            &mut state,
            Msg::Api(micro::console::msg::ApiReply::Entries {
                account_id: "acct_01JFAKE0000000001".into(),
                result: Ok(fixtures::entries()),
            }),
        );
        update(&mut state, Msg::Key(code(crossterm::event::KeyCode::Enter)));
        update(
            &mut state,
            Msg::Api(micro::console::msg::ApiReply::Transaction(Ok(
                fixtures::transaction(),
            ))),
        );
        state
    });
}

#[test]
fn keys_tab() {
    snap("keys_empty", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Keys);
        state.keys.list = Load::Loaded(Vec::new());
        state.keys.secret = Load::Loaded("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        state
    });
    snap("keys_loading", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Keys);
        state.keys.list = Load::Loading;
        state.keys.secret = Load::Loading;
        state
    });
    snap("keys_loaded", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Keys);
        state.keys.list = Load::Loaded(fixtures::keys());
        state.keys.secret = Load::Loaded("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        state
    });
    snap("keys_error", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Keys);
        state.keys.list = Load::Error("the session expired: log in again".into());
        state.keys.secret = Load::Error("the gateway did not answer".into());
        state
    });
    snap("keys_help", |w, h| {
        with_help(fixtures::logged_in(w, h, Tab::Keys))
    });
    snap("keys_created", |w, h| {
        let mut state = fixtures::logged_in(w, h, Tab::Keys);
        state.keys.list = Load::Loaded(fixtures::keys());
        state.modal = Modal::NewKey(micro::console::state::NewKey {
            id: "key_01JFAKE0000000003".into(),
            name: "console".into(),
            key: "sk_test_0123456789abcdefghijklmnopqrstuv".into(),
        });
        state
    });
}

#[test]
fn login_screens() {
    snap("login_empty", |w, h| {
        let mut state = State::new("http://127.0.0.1:8080", "default");
        state.width = w;
        state.height = h;
        state
    });
    snap("login_error", |w, h| {
        let mut state = State::new("http://127.0.0.1:8080", "default");
        state.width = w;
        state.height = h;
        let mut form = LoginForm {
            focus_password: true,
            error: Some("wrong email or password".into()),
            ..LoginForm::default()
        };
        form.email = micro::console::state::Input::new("dev@example.com");
        form.password = micro::console::state::Input::new("hunter22");
        state.screen = Screen::Login(form);
        state
    });
    snap("login_register_busy", |w, h| {
        let mut state = State::new("http://127.0.0.1:8080", "default");
        state.width = w;
        state.height = h;
        state.screen = Screen::Login(LoginForm {
            email: micro::console::state::Input::new("dev@example.com"),
            password: micro::console::state::Input::new("hunter22"),
            register: true,
            busy: true,
            ..LoginForm::default()
        });
        state
    });
    snap("keyring_failed", |w, h| {
        let mut state = State::new("http://127.0.0.1:8080", "default");
        state.width = w;
        state.height = h;
        state.screen = Screen::Keyring(KeyringProblem {
            email: "dev@example.com".into(),
            api_key: "sk_test_x".into(),
            // Long enough to wrap at 80 columns, where the wrapped part
            // must keep the dialog's margin.
            error: "org.freedesktop.secrets is not provided by any service on this session's D-Bus".into(),
            file_result: None,
        });
        state
    });
}

/// The status line is never blank and always names the user, at any width.
#[test]
fn status_line_is_never_blank() {
    for width in [44, 60, 80, 120, 200] {
        let mut state = fixtures::logged_in(width, 24, Tab::Events);
        state.stream = StreamState::Reconnecting {
            at_ms: 3000,
            attempt: 2,
            error: "connection reset by peer".into(),
        };
        let screen = draw(&state);
        let first = screen.lines().next().expect("a first line");
        assert!(first.contains("micro"), "{first}");
        assert!(first.contains("dev@example.com"), "{first}");
        assert!(first.contains("reconnecting"), "width {width}: {first}");
    }
}

fn key(c: char) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char(c),
        crossterm::event::KeyModifiers::NONE,
    )
}

fn code(code: crossterm::event::KeyCode) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::new(code, crossterm::event::KeyModifiers::NONE)
}
