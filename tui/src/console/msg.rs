//! Everything that can happen to the console, as one message type: terminal
//! input, stream updates, API replies and the clock.

use contract::auth::ApiKey;
use contract::events::Event;
use contract::ledger::{Account, AccountEntry, Transaction};
use contract::payments::{Payment, Refund};
use crossterm::event::{KeyEvent, MouseEvent};

use super::store::Attempt;

/// What the listen core reports, in the console's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamUpdate {
    Connecting {
        attempt: u32,
    },
    /// Connected; `replayed` missed events came first.
    Live {
        replayed: u64,
    },
    Reconnecting {
        in_ms: u64,
        attempt: u32,
        error: String,
    },
    /// Gave up, or the key was refused; no more reconnects.
    Offline {
        error: String,
    },
    Event {
        event: Box<Event>,
        raw: String,
        resend: bool,
    },
    /// A forward or replay of an event finished.
    Delivered {
        event_id: String,
        attempt: Attempt,
    },
    /// The forward target in force (after `f`), or none.
    Forwarding {
        url: Option<String>,
    },
}

/// A payment with what happened to it.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentDetail {
    pub payment: Payment,
    pub refunds: Vec<Refund>,
}

/// A page of an account's entries.
#[derive(Debug, Clone, PartialEq)]
pub struct EntriesPage {
    pub entries: Vec<AccountEntry>,
    pub has_more: bool,
}

/// The answer to a call made for the console; errors are already the text a person reads.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiReply {
    LoggedIn {
        email: String,
        api_key: String,
        /// Where the key was stored, or why it could not be.
        stored: Result<String, String>,
    },
    LoginFailed(String),
    /// The key was written to the file fallback the user opted into.
    StoredInFile(Result<String, String>),
    Payments(Result<Vec<Payment>, String>),
    PaymentDetail(Result<PaymentDetail, String>),
    /// A create, confirm, cancel or refund finished.
    PaymentAction {
        what: String,
        result: Result<Payment, String>,
    },
    Accounts(Result<Vec<Account>, String>),
    Entries {
        account_id: String,
        result: Result<EntriesPage, String>,
    },
    Transaction(Result<Transaction, String>),
    Keys(Result<Vec<ApiKey>, String>),
    KeyCreated(Result<super::state::NewKey, String>),
    KeyRevoked(Result<String, String>),
    WebhookSecret(Result<String, String>),
    Resent(Result<String, String>),
    /// Whatever else finished: a copy, an editor session.
    Done(Result<String, String>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// The clock, in milliseconds of a monotonic clock.
    Tick(u64),
    Stream(StreamUpdate),
    Api(ApiReply),
    /// The remaining and total requests of the rate limit window.
    RateLimit {
        remaining: u32,
        limit: u32,
    },
}
