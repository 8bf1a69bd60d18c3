//! The update function, key by key: what each key does to the state and
//! which commands it asks the runtime to run.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use micro::console::fixtures;
use micro::console::keymap::{self, Action};
use micro::console::msg::{ApiReply, Msg, StreamUpdate};
use micro::console::state::{Confirm, Load, Modal, PromptKind, Screen, State, StreamState, Tab};
use micro::console::store::Delivery;
use micro::console::update::{Command, parse_amount, update};

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn typed(state: &mut State, text: &str) {
    for c in text.chars() {
        update(state, key(c));
    }
}

fn events(n: u64) -> State {
    fixtures::with_events(fixtures::logged_in(120, 32, Tab::Events), n)
}

#[test]
fn tabs_switch_by_number_tab_and_jump_and_load_once() {
    let mut state = fixtures::logged_in(80, 24, Tab::Events);
    assert_eq!(update(&mut state, key('2')), vec![Command::LoadPayments]);
    assert_eq!(state.tab, Tab::Payments);
    assert_eq!(state.payments.list, Load::Loading);
    assert_eq!(
        update(&mut state, code(KeyCode::Tab)),
        vec![Command::LoadAccounts]
    );
    assert_eq!(state.tab, Tab::Ledger);
    assert_eq!(
        update(&mut state, code(KeyCode::Tab)),
        vec![Command::LoadKeys, Command::LoadSecret]
    );
    assert_eq!(update(&mut state, code(KeyCode::Tab)), vec![]);
    assert_eq!(state.tab, Tab::Events);
    // Already loading: going back does not ask again.
    assert_eq!(update(&mut state, key('2')), vec![]);
    update(&mut state, key(':'));
    typed(&mut state, "ledger");
    update(&mut state, code(KeyCode::Enter));
    assert_eq!(state.tab, Tab::Ledger);
    update(&mut state, key(':'));
    typed(&mut state, "nope");
    update(&mut state, code(KeyCode::Enter));
    assert_eq!(state.tab, Tab::Ledger);
    assert!(state.flash.as_ref().is_some_and(|(_, t)| t.contains("nope")));
}

#[test]
fn quit_keys_quit_and_ctrl_c_works_everywhere() {
    let mut state = fixtures::logged_in(80, 24, Tab::Events);
    assert_eq!(update(&mut state, key('q')), vec![Command::Quit]);
    assert!(state.quit);
    let mut login = State::new("http://x", "default");
    // `q` is text in the login form, ctrl-c is not.
    assert_eq!(update(&mut login, key('q')), vec![]);
    assert_eq!(update(&mut login, ctrl('c')), vec![Command::Quit]);
}

#[test]
fn help_opens_and_any_key_closes_it_without_acting() {
    let mut state = fixtures::logged_in(80, 24, Tab::Events);
    update(&mut state, key('?'));
    assert_eq!(state.modal, Modal::Help);
    assert_eq!(update(&mut state, key('q')), vec![]);
    assert_eq!(state.modal, Modal::None);
    assert!(!state.quit);
}

#[test]
fn every_key_in_the_help_does_what_the_help_says() {
    for tab in Tab::ALL {
        for binding in keymap::for_tab(tab).iter().chain(keymap::GLOBAL) {
            for k in binding.keys {
                let mods = if k.ctrl {
                    KeyModifiers::CONTROL
                } else {
                    KeyModifiers::NONE
                };
                let event = KeyEvent::new(k.code, mods);
                let found = keymap::lookup(tab, &event);
                // A tab's own binding may shadow a global one with the same key.
                let own = keymap::for_tab(tab)
                    .iter()
                    .find(|b| b.keys.iter().any(|x| x.code == k.code && x.ctrl == k.ctrl));
                let expected = own.map_or(binding.action, |b| b.action);
                assert_eq!(found, Some(expected), "{tab:?} {}", binding.label);
            }
        }
    }
}

#[test]
fn vim_keys_and_arrows_move_the_event_selection_newest_first() {
    let mut state = events(50);
    assert_eq!(state.selected_event(), Some(49), "follows the newest");
    update(&mut state, key('j'));
    update(&mut state, code(KeyCode::Down));
    assert_eq!(state.selected_event(), Some(47));
    update(&mut state, key('k'));
    assert_eq!(state.selected_event(), Some(48));
    update(&mut state, key('G'));
    assert_eq!(state.selected_event(), Some(0));
    update(&mut state, key('g'));
    assert_eq!(state.selected_event(), Some(49));
    assert_eq!(state.events.selected, None);
    update(&mut state, ctrl('d'));
    let page = micro::console::view::layout::page_size(120, 32, Tab::Events) as u64;
    assert_eq!(state.selected_event(), Some(49 - page));
    // A selected event stays selected while new ones arrive.
    update(&mut state, Msg::Stream(fixtures::stream_event(50)));
    assert_eq!(state.selected_event(), Some(49 - page));
}

#[test]
fn the_filter_matches_type_or_id_and_esc_clears_it() {
    let mut state = events(20);
    update(&mut state, key('/'));
    assert!(matches!(&state.modal, Modal::Prompt(p) if p.kind == PromptKind::Filter));
    typed(&mut state, "refunded");
    update(&mut state, code(KeyCode::Enter));
    assert_eq!(state.event_view_len(), 4);
    let seq = state.selected_event().expect("a match");
    assert_eq!(
        state.store.get(seq).map(|r| r.kind.as_str()),
        Some("payment.refunded")
    );
    // New matching events join the filtered view.
    update(&mut state, Msg::Stream(fixtures::stream_event(24)));
    assert_eq!(state.event_view_len(), 5);
    update(&mut state, key('/'));
    for _ in 0.."refunded".len() {
        update(&mut state, code(KeyCode::Backspace));
    }
    typed(&mut state, "0000000003");
    update(&mut state, code(KeyCode::Enter));
    assert_eq!(state.event_view_len(), 1);
    update(&mut state, code(KeyCode::Esc));
    assert_eq!(state.event_view_len(), 21);
}

#[test]
fn pause_freezes_the_view_counts_arrivals_and_resumes() {
    let mut state = events(10);
    assert_eq!(update(&mut state, key('p')), vec![Command::SetPaused(true)]);
    for n in 10..15 {
        update(&mut state, Msg::Stream(fixtures::stream_event(n)));
    }
    assert_eq!(state.event_view_len(), 10);
    assert_eq!(state.store.len(), 15);
    assert_eq!(state.store.get(14).map(|r| r.delivery), Some(Delivery::Held));
    assert_eq!(update(&mut state, key('p')), vec![Command::SetPaused(false)]);
    assert_eq!(state.event_view_len(), 15);
}

#[test]
fn typing_a_forward_url_replaces_the_one_offered() {
    let mut state = events(1);
    state.forward_to = None;
    update(&mut state, key('f'));
    assert!(matches!(&state.modal, Modal::Prompt(p) if p.input.value.starts_with("http://")));
    typed(&mut state, "http://127.0.0.1:4242/hook");
    assert_eq!(
        update(&mut state, code(KeyCode::Enter)),
        vec![Command::SetForward(Some("http://127.0.0.1:4242/hook".into()))]
    );
    // Enter alone accepts the suggestion; moving the cursor keeps it to edit.
    let mut state = events(1);
    state.forward_to = Some("http://localhost:3000/a".into());
    update(&mut state, key('f'));
    update(&mut state, code(KeyCode::End));
    typed(&mut state, "b");
    assert_eq!(
        update(&mut state, code(KeyCode::Enter)),
        vec![Command::SetForward(Some("http://localhost:3000/ab".into()))]
    );
}

#[test]
fn forward_replay_edit_resend_and_copy() {
    let mut state = events(5);
    state.forward_to = None;
    assert_eq!(update(&mut state, key('r')), vec![]);
    assert!(
        state
            .flash
            .as_ref()
            .is_some_and(|(_, t)| t.contains("forward URL"))
    );
    update(&mut state, key('f'));
    for _ in 0..40 {
        update(&mut state, code(KeyCode::Backspace));
    }
    typed(&mut state, "localhost:9");
    update(&mut state, code(KeyCode::Enter));
    assert!(
        matches!(&state.modal, Modal::Prompt(p) if p.error.is_some()),
        "a URL needs its scheme"
    );
    update(&mut state, code(KeyCode::Home));
    typed(&mut state, "http://");
    assert_eq!(
        update(&mut state, code(KeyCode::Enter)),
        vec![Command::SetForward(Some("http://localhost:9".into()))]
    );
    let (id, body) = {
        let seq = state.selected_event().expect("selected");
        (
            state.store.get(seq).expect("row").id.to_string(),
            state.store.body(seq).expect("body").raw.clone(),
        )
    };
    assert_eq!(
        update(&mut state, key('r')),
        vec![Command::Replay {
            event_id: id.clone(),
            body: body.clone()
        }]
    );
    assert_eq!(state.busy, 1);
    update(
        &mut state,
        Msg::Stream(StreamUpdate::Delivered {
            event_id: id.clone(),
            attempt: fixtures::attempt(4, Some(200), true),
        }),
    );
    assert_eq!(state.busy, 0);
    assert!(state.flash.as_ref().is_some_and(|(_, t)| t.contains("200")));
    assert_eq!(
        update(&mut state, key('e')),
        vec![Command::EditReplay {
            event_id: id.clone(),
            body: body.clone()
        }]
    );
    assert_eq!(update(&mut state, key('R')), vec![Command::Resend(id.clone())]);
    update(&mut state, key('y'));
    assert_eq!(state.modal, Modal::CopyMenu);
    assert_eq!(update(&mut state, key('i')), vec![Command::Copy(id.clone())]);
    update(&mut state, key('y'));
    assert_eq!(update(&mut state, key('p')), vec![Command::Copy(body.clone())]);
    update(&mut state, key('y'));
    let curl = update(&mut state, key('c'));
    assert!(
        matches!(&curl[..], [Command::Copy(c)] if c.starts_with("curl -X POST 'http://localhost:9'") && c.contains(&id))
    );
}

#[test]
fn the_stream_state_follows_the_listen_core() {
    let mut state = fixtures::logged_in(80, 24, Tab::Events);
    update(&mut state, Msg::Tick(1000));
    update(
        &mut state,
        Msg::Stream(StreamUpdate::Reconnecting {
            in_ms: 5000,
            attempt: 2,
            error: "reset".into(),
        }),
    );
    assert_eq!(micro::console::update::reconnect_secs(&state), Some(5));
    state.dirty = false;
    update(&mut state, Msg::Tick(2100));
    assert!(state.dirty, "the countdown changed");
    assert_eq!(micro::console::update::reconnect_secs(&state), Some(4));
    update(&mut state, Msg::Stream(StreamUpdate::Live { replayed: 3 }));
    assert_eq!(state.stream, StreamState::Live);
    state.dirty = false;
    update(&mut state, Msg::Tick(2200));
    assert!(!state.dirty, "an idle tick draws nothing");
}

#[test]
fn events_per_second_counts_the_last_ten_seconds() {
    let mut state = fixtures::logged_in(80, 24, Tab::Events);
    update(&mut state, Msg::Tick(10_000));
    for n in 0..30 {
        update(&mut state, Msg::Stream(fixtures::stream_event(n)));
    }
    update(&mut state, Msg::Tick(10_500));
    assert!((state.rate - 3.0).abs() < 1e-9);
    update(&mut state, Msg::Tick(21_000));
    assert_eq!(state.rate, 0.0);
}

#[test]
fn the_store_keeps_a_hundred_thousand_and_counts_the_dropped() {
    let state = events(100_050);
    assert_eq!(state.store.len(), 100_000);
    assert_eq!(state.store.dropped, 50);
    assert_eq!(state.event_view_len(), 100_000);
    assert_eq!(state.selected_event(), Some(100_049));
}

#[test]
fn login_form_validates_switches_and_submits() {
    let mut state = State::new("http://x", "default");
    update(&mut state, code(KeyCode::Enter));
    update(&mut state, code(KeyCode::Enter));
    assert!(matches!(&state.screen, Screen::Login(f) if f.error.is_some()));
    typed(&mut state, "dev@example.com");
    update(&mut state, code(KeyCode::Tab));
    typed(&mut state, "s3cret!");
    update(&mut state, ctrl('n'));
    let commands = update(&mut state, code(KeyCode::Enter));
    assert_eq!(
        commands,
        vec![Command::Login {
            email: "dev@example.com".into(),
            password: "s3cret!".into(),
            register: true
        }]
    );
    update(
        &mut state,
        Msg::Api(ApiReply::LoginFailed("email already registered".into())),
    );
    assert!(
        matches!(&state.screen, Screen::Login(f) if !f.busy && f.error.as_deref() == Some("email already registered"))
    );
    update(&mut state, code(KeyCode::Enter));
    let commands = update(
        &mut state,
        Msg::Api(ApiReply::LoggedIn {
            email: "dev@example.com".into(),
            api_key: "sk_test_k".into(),
            stored: Ok("keyring".into()),
        }),
    );
    assert_eq!(state.screen, Screen::Main);
    assert_eq!(
        commands[0],
        Command::Start {
            email: "dev@example.com".into(),
            api_key: "sk_test_k".into()
        }
    );
}

#[test]
fn a_failing_keyring_offers_the_file_or_the_session() {
    let mut state = State::new("http://x", "default");
    update(
        &mut state,
        Msg::Api(ApiReply::LoggedIn {
            email: "dev@example.com".into(),
            api_key: "sk_test_k".into(),
            stored: Err("no Secret Service".into()),
        }),
    );
    assert!(matches!(state.screen, Screen::Keyring(_)));
    assert_eq!(
        update(&mut state, key('f')),
        vec![Command::StoreInFile {
            email: "dev@example.com".into(),
            api_key: "sk_test_k".into()
        }]
    );
    update(
        &mut state,
        Msg::Api(ApiReply::StoredInFile(Err("read-only file system".into()))),
    );
    assert!(matches!(&state.screen, Screen::Keyring(p) if p.file_result.is_some()));
    let commands = update(&mut state, key('c'));
    assert_eq!(state.screen, Screen::Main);
    assert!(matches!(commands[0], Command::Start { .. }));
}

#[test]
fn payments_new_confirm_cancel_refund() {
    let mut state = fixtures::logged_in(120, 32, Tab::Payments);
    fixtures::payments(&mut state);
    update(&mut state, key('n'));
    assert!(matches!(state.modal, Modal::NewPayment(_)));
    for _ in 0..5 {
        update(&mut state, code(KeyCode::Backspace));
    }
    typed(&mut state, "12.345");
    update(&mut state, code(KeyCode::Enter));
    assert!(
        matches!(&state.modal, Modal::NewPayment(f) if f.error.is_some()),
        "usd has two decimals"
    );
    update(&mut state, code(KeyCode::Backspace));
    update(&mut state, code(KeyCode::Tab));
    update(&mut state, code(KeyCode::Tab));
    update(&mut state, code(KeyCode::Right));
    update(&mut state, code(KeyCode::Right));
    update(&mut state, code(KeyCode::Right));
    let commands = update(&mut state, code(KeyCode::Enter));
    assert_eq!(
        commands,
        vec![Command::CreatePayment {
            amount: 1234,
            currency: "usd".into(),
            method: "pm_card_chargeDeclined".into()
        }]
    );
    let mut created = fixtures::payment(99, contract::payments::PaymentStatus::RequiresConfirmation);
    created.currency = "usd".into();
    update(
        &mut state,
        Msg::Api(ApiReply::PaymentAction {
            what: "created".into(),
            result: Ok(created.clone()),
        }),
    );
    assert_eq!(
        state.selected_payment().map(|p| p.id.clone()),
        Some(created.id.clone())
    );
    assert_eq!(
        update(&mut state, code(KeyCode::Enter)),
        vec![Command::ConfirmPayment {
            id: created.id.clone(),
            method: "pm_card_chargeDeclined".into()
        }]
    );
    update(&mut state, key('x'));
    assert_eq!(
        state.modal,
        Modal::Confirm(Confirm::CancelPayment(created.id.clone()))
    );
    assert_eq!(
        update(&mut state, key('y')),
        vec![Command::CancelPayment(created.id.clone())]
    );
    update(&mut state, key('f'));
    typed(&mut state, "5");
    assert_eq!(
        update(&mut state, code(KeyCode::Enter)),
        vec![Command::Refund {
            id: created.id.clone(),
            amount: Some(500)
        }]
    );
    update(
        &mut state,
        Msg::Api(ApiReply::PaymentAction {
            what: "refund".into(),
            result: Err("payment_not_refundable".into()),
        }),
    );
    assert!(
        state
            .flash
            .as_ref()
            .is_some_and(|(_, t)| t.contains("payment_not_refundable"))
    );
}

#[test]
fn ledger_drills_into_entries_pages_and_a_transaction_and_back() {
    let mut state = fixtures::logged_in(120, 32, Tab::Ledger);
    state.ledger.accounts = Load::Loaded(fixtures::accounts());
    let account = "acct_01JFAKE0000000001".to_owned();
    assert_eq!(
        update(&mut state, code(KeyCode::Enter)),
        vec![Command::LoadEntries {
            account_id: account.clone(),
            starting_after: None
        }]
    );
    update(
        &mut state,
        Msg::Api(ApiReply::Entries {
            account_id: account.clone(),
            result: Ok(fixtures::entries()),
        }),
    );
    assert_eq!(
        update(&mut state, key('n')),
        vec![Command::LoadEntries {
            account_id: account.clone(),
            starting_after: Some("ent_01JFAKE0000000007".into())
        }]
    );
    update(
        &mut state,
        Msg::Api(ApiReply::Entries {
            account_id: account.clone(),
            result: Ok(fixtures::entries()),
        }),
    );
    assert_eq!(
        update(&mut state, code(KeyCode::PageUp)),
        vec![Command::LoadEntries {
            account_id: account.clone(),
            starting_after: None
        }]
    );
    update(
        &mut state,
        Msg::Api(ApiReply::Entries {
            account_id: account.clone(),
            result: Ok(fixtures::entries()),
        }),
    );
    update(&mut state, key('j'));
    assert_eq!(
        update(&mut state, code(KeyCode::Enter)),
        vec![Command::LoadTransaction("txn_01JFAKE0000000001".into())]
    );
    update(&mut state, code(KeyCode::Esc));
    assert!(state.ledger.transaction.is_none() && state.ledger.entries.is_some());
    update(&mut state, code(KeyCode::Esc));
    assert!(state.ledger.entries.is_none());
}

#[test]
fn keys_create_revoke_and_roll() {
    let mut state = fixtures::logged_in(120, 32, Tab::Keys);
    state.keys.list = Load::Loaded(fixtures::keys());
    state.keys.secret = Load::Loaded("whsec_abc".into());
    update(&mut state, key('n'));
    for _ in 0..10 {
        update(&mut state, code(KeyCode::Backspace));
    }
    typed(&mut state, "ci");
    assert_eq!(
        update(&mut state, code(KeyCode::Enter)),
        vec![Command::CreateKey("ci".into())]
    );
    let created = micro::console::state::NewKey {
        id: "key_new".into(),
        name: "ci".into(),
        key: "sk_test_secret".into(),
    };
    assert_eq!(
        update(&mut state, Msg::Api(ApiReply::KeyCreated(Ok(created)))),
        vec![Command::LoadKeys]
    );
    assert_eq!(
        update(&mut state, key('y')),
        vec![Command::Copy("sk_test_secret".into())]
    );
    update(&mut state, code(KeyCode::Esc));
    assert_eq!(state.modal, Modal::None);
    update(&mut state, key('d'));
    assert_eq!(
        state.modal,
        Modal::Confirm(Confirm::RevokeKey("key_01JFAKE0000000001".into()))
    );
    assert_eq!(update(&mut state, key('n')), vec![]);
    // The second key is revoked already: nothing to confirm.
    update(&mut state, key('j'));
    update(&mut state, key('d'));
    assert_eq!(state.modal, Modal::None);
    update(&mut state, key('o'));
    assert_eq!(update(&mut state, key('y')), vec![Command::RollSecret]);
    assert_eq!(update(&mut state, key('s')), vec![]);
    update(
        &mut state,
        Msg::Api(ApiReply::WebhookSecret(Ok("whsec_new".into()))),
    );
    assert_eq!(update(&mut state, key('s')), vec![Command::CopySecret]);
}

#[test]
fn the_mouse_selects_rows_scrolls_and_switches_tabs() {
    let mut state = events(30);
    let rows = micro::console::view::layout::list_rows(micro::console::view::layout::list_area(
        120,
        32,
        Tab::Events,
    ));
    let click = |row: u16, column: u16| {
        Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    update(&mut state, click(rows.y + 3, rows.x + 2));
    assert_eq!(state.selected_event(), Some(26));
    update(
        &mut state,
        Msg::Mouse(MouseEvent {
            kind: MouseEventKind::ScrollDown,
            column: 5,
            row: 5,
            modifiers: KeyModifiers::NONE,
        }),
    );
    assert_eq!(state.selected_event(), Some(23));
    let payments_x = micro::console::view::layout::tab_label(Tab::Events)
        .chars()
        .count() as u16
        + 3;
    assert_eq!(
        update(&mut state, click(1, payments_x)),
        vec![Command::LoadPayments]
    );
    assert_eq!(state.tab, Tab::Payments);
}

#[test]
fn amounts_are_read_in_the_currency_s_minor_unit() {
    assert_eq!(parse_amount("12.34", 2), Ok(1234));
    assert_eq!(parse_amount("12", 2), Ok(1200));
    assert_eq!(parse_amount(".5", 2), Ok(50));
    assert_eq!(parse_amount("500", 0), Ok(500));
    assert_eq!(parse_amount("1.001", 3), Ok(1001));
    assert!(parse_amount("1.5", 0).is_err());
    assert!(parse_amount("0", 2).is_err());
    assert!(parse_amount("-1", 2).is_err());
    assert!(parse_amount("1e3", 2).is_err());
    assert!(parse_amount("99999999999999999999", 2).is_err());
}

#[test]
fn resize_is_remembered_for_page_sizes() {
    let mut state = events(100);
    update(&mut state, Msg::Resize(80, 24));
    update(&mut state, ctrl('d'));
    let page = micro::console::view::layout::page_size(80, 24, Tab::Events) as u64;
    assert_eq!(state.selected_event(), Some(99 - page));
    let _ = Action::Quit;
}
