//! Fixed fake data for the snapshot tests and the benchmark, so that every
//! frame they draw is the same from run to run.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use contract::auth::ApiKey;
use contract::events::{Event, EventData, EventType};
use contract::ledger::{Account, AccountEntry, AccountType, Direction, Entry, Transaction};
use contract::payments::{Payment, PaymentStatus};

use super::msg::{EntriesPage, PaymentDetail, StreamUpdate};
use super::state::{Load, Screen, State, StreamState, Tab};
use super::store::Attempt;
use super::update::update;

pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_764_000_000 + seconds, 0)
        .single()
        .unwrap_or_default()
}

pub fn payment(n: u64, status: PaymentStatus) -> Payment {
    let currency = ["usd", "eur", "jpy", "kwd"][(n % 4) as usize];
    Payment {
        id: format!("pay_01JFAKE{n:010}"),
        object: "payment".into(),
        amount: 2500 + n as i64 * 137,
        amount_refunded: 0,
        fee: None,
        currency: currency.into(),
        status,
        description: Some(format!("order {n}")),
        metadata: BTreeMap::new(),
        customer_email: None,
        payment_method: (status != PaymentStatus::RequiresConfirmation).then(|| "pm_card_visa".to_owned()),
        failure_code: None,
        failure_message: (status == PaymentStatus::Failed).then(|| "Your card was declined.".to_owned()),
        ledger_transaction_id: (status == PaymentStatus::Succeeded).then(|| format!("txn_01JFAKE{n:010}")),
        created_at: at(n as i64 * 7),
    }
}

pub fn event(n: u64) -> Event {
    let kind = EventType::ALL[(n % 5) as usize];
    let status = match kind {
        EventType::PaymentSucceeded | EventType::PaymentRefunded => PaymentStatus::Succeeded,
        EventType::PaymentFailed => PaymentStatus::Failed,
        EventType::PaymentCanceled => PaymentStatus::Canceled,
        EventType::PaymentCreated => PaymentStatus::RequiresConfirmation,
    };
    let object = serde_json::to_value(payment(n / 5, status)).unwrap_or_default();
    Event {
        id: format!("evt_01JFAKE{n:010}"),
        object: "event".into(),
        kind,
        sequence: n as i64 + 1,
        created_at: at(n as i64),
        data: EventData { object },
    }
}

pub fn stream_event(n: u64) -> StreamUpdate {
    let event = event(n);
    let raw = serde_json::to_string(&event).unwrap_or_default();
    StreamUpdate::Event {
        event: Box::new(event),
        raw,
        resend: false,
    }
}

pub fn attempt(n: u64, status: Option<u16>, replay: bool) -> Attempt {
    Attempt {
        at_ms: at(n as i64).timestamp_millis() + 12,
        url: "http://localhost:4242/webhook".into(),
        status,
        latency_ms: 9 + (n % 7) as u32,
        response: match status {
            Some(200) => "{\"received\":true}".into(),
            Some(_) => "internal error: handler panicked".into(),
            None => "connection refused".into(),
        },
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("webhook-id".into(), format!("evt_01JFAKE{n:010}")),
            ("webhook-timestamp".into(), "1764000000".into()),
            (
                "webhook-signature".into(),
                "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=".into(),
            ),
        ],
        replay,
    }
}

/// A logged-in console of `width` x `height` on `tab`, nothing loaded.
pub fn logged_in(width: u16, height: u16, tab: Tab) -> State {
    let mut state = State::new("http://127.0.0.1:8080", "default");
    state.screen = Screen::Main;
    state.email = Some("dev@example.com".into());
    state.stream = StreamState::Live;
    state.forward_to = Some("http://localhost:4242/webhook".into());
    state.rate_limit = Some((97, 100));
    state.width = width;
    state.height = height;
    state.tab = tab;
    state
}

/// `n` events on the stream, the newest few delivered with assorted results.
pub fn with_events(mut state: State, n: u64) -> State {
    for i in 0..n {
        update(&mut state, super::msg::Msg::Stream(stream_event(i)));
    }
    for i in n.saturating_sub(6)..n {
        let status = match i % 3 {
            0 => Some(200),
            1 => Some(500),
            _ => None,
        };
        let id = format!("evt_01JFAKE{i:010}");
        update(
            &mut state,
            super::msg::Msg::Stream(StreamUpdate::Delivered {
                event_id: id,
                attempt: attempt(i, status, false),
            }),
        );
    }
    state.flash = None;
    state
}

pub fn payments(state: &mut State) {
    let statuses = [
        PaymentStatus::Succeeded,
        PaymentStatus::RequiresConfirmation,
        PaymentStatus::Failed,
        PaymentStatus::Canceled,
        PaymentStatus::Succeeded,
        PaymentStatus::Processing,
    ];
    let list: Vec<Payment> = (0..12).map(|n| payment(n, statuses[(n % 6) as usize])).collect();
    let mut first = list[0].clone();
    first.amount_refunded = 500;
    state.payments.detail = Load::Loaded(PaymentDetail {
        payment: first.clone(),
        refunds: vec![contract::payments::Refund {
            id: "re_01JFAKE0000000001".into(),
            object: "refund".into(),
            payment: first.id.clone(),
            amount: 500,
            currency: first.currency.clone(),
            status: contract::payments::RefundStatus::Succeeded,
            ledger_transaction_id: None,
            created_at: at(100),
        }],
    });
    let mut list = list;
    list[0] = first;
    state.payments.list = Load::Loaded(list);
}

pub fn account(n: u64, name: &str, kind: AccountType, currency: &str, balance: i64) -> Account {
    Account {
        id: format!("acct_01JFAKE{n:010}"),
        object: "ledger_account".into(),
        owner_id: Some("usr_01JFAKE".into()),
        name: name.into(),
        kind,
        currency: currency.into(),
        balance,
        entry_count: 3 + n as i64,
        version: 1,
        must_not_go_negative: false,
        metadata: BTreeMap::new(),
        created_at: at(0),
    }
}

pub fn accounts() -> Vec<Account> {
    vec![
        account(1, "balance:usd", AccountType::Liability, "usd", 1_234_567),
        account(2, "balance:eur", AccountType::Liability, "eur", 98_700),
        account(3, "balance:jpy", AccountType::Liability, "jpy", 50_000),
        account(4, "fees:usd", AccountType::Expense, "usd", 37_000),
    ]
}

pub fn entries() -> EntriesPage {
    let mut balance = 0;
    let entries = (0..8)
        .map(|n| {
            let (direction, amount) = if n % 3 == 2 {
                (Direction::Debit, 500)
            } else {
                (Direction::Credit, 2500 + n * 100)
            };
            balance += if direction == Direction::Credit {
                amount
            } else {
                -amount
            };
            AccountEntry {
                id: format!("ent_01JFAKE{n:010}"),
                object: "ledger_entry".into(),
                transaction_id: format!("txn_01JFAKE{n:010}"),
                account_id: "acct_01JFAKE0000000001".into(),
                direction,
                amount,
                currency: "usd".into(),
                balance_after: balance,
                posted_at: at(n * 60),
                description: Some(
                    if direction == Direction::Debit {
                        "refund"
                    } else {
                        "payment"
                    }
                    .into(),
                ),
            }
        })
        .collect();
    EntriesPage {
        entries,
        has_more: true,
    }
}

pub fn transaction() -> Transaction {
    Transaction {
        id: "txn_01JFAKE0000000001".into(),
        object: "ledger_transaction".into(),
        reference: "pay_01JFAKE0000000001".into(),
        description: Some("payment pay_01JFAKE0000000001".into()),
        metadata: BTreeMap::new(),
        reverses: None,
        posted_at: at(60),
        entries: vec![
            Entry {
                id: "ent_a".into(),
                account_id: "acct_01JFAKE0000000009".into(),
                direction: Direction::Debit,
                amount: 2600,
                currency: "usd".into(),
            },
            Entry {
                id: "ent_b".into(),
                account_id: "acct_01JFAKE0000000001".into(),
                direction: Direction::Credit,
                amount: 2500,
                currency: "usd".into(),
            },
            Entry {
                id: "ent_c".into(),
                account_id: "acct_01JFAKE0000000004".into(),
                direction: Direction::Credit,
                amount: 100,
                currency: "usd".into(),
            },
        ],
    }
}

pub fn keys() -> Vec<ApiKey> {
    vec![
        ApiKey {
            id: "key_01JFAKE0000000001".into(),
            name: "micro-cli@laptop".into(),
            prefix: "sk_test_AbCd".into(),
            created_at: at(0),
            last_used_at: Some(at(3600)),
            revoked_at: None,
        },
        ApiKey {
            id: "key_01JFAKE0000000002".into(),
            name: "ci".into(),
            prefix: "sk_test_EfGh".into(),
            created_at: at(60),
            last_used_at: None,
            revoked_at: Some(at(7200)),
        },
    ]
}
