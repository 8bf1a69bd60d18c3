//! The console's whole state. Views read it, `update` alone changes it.

use contract::auth::ApiKey;
use contract::ledger::{Account, Transaction};
use contract::payments::Payment;

use super::msg::{EntriesPage, PaymentDetail};
use super::store::EventStore;

/// A value fetched from the server.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Load<T> {
    #[default]
    Idle,
    Loading,
    Loaded(T),
    Error(String),
}

impl<T> Load<T> {
    pub fn loaded(&self) -> Option<&T> {
        match self {
            Self::Loaded(value) => Some(value),
            _ => None,
        }
    }

    pub fn is_loading(&self) -> bool {
        matches!(self, Self::Loading)
    }
}

impl<T, E: std::fmt::Display> From<Result<T, E>> for Load<T> {
    fn from(result: Result<T, E>) -> Self {
        match result {
            Ok(value) => Self::Loaded(value),
            Err(error) => Self::Error(error.to_string()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    Events,
    Payments,
    Ledger,
    Keys,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Events, Tab::Payments, Tab::Ledger, Tab::Keys];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Events => "Events",
            Tab::Payments => "Payments",
            Tab::Ledger => "Ledger",
            Tab::Keys => "Keys",
        }
    }

    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    pub fn parse(name: &str) -> Option<Tab> {
        let name = name.trim().to_ascii_lowercase();
        Tab::ALL.into_iter().find(|t| {
            let title = t.title().to_ascii_lowercase();
            !name.is_empty() && title.starts_with(&name)
        })
    }
}

/// A single line of text being typed, with a cursor (in chars).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Input {
    pub value: String,
    pub cursor: usize,
    /// The value is a suggestion, as if selected: the first character typed
    /// (or a backspace) replaces it instead of adding to it.
    pub suggested: bool,
}

impl Input {
    pub fn new(value: &str) -> Self {
        Self {
            value: value.to_owned(),
            cursor: value.chars().count(),
            suggested: false,
        }
    }

    /// A pre-filled value that typing replaces and Enter accepts.
    pub fn suggesting(value: &str) -> Self {
        Self {
            suggested: true,
            ..Self::new(value)
        }
    }

    fn take_suggestion(&mut self) -> bool {
        let was = std::mem::take(&mut self.suggested);
        if was {
            self.value.clear();
            self.cursor = 0;
        }
        was
    }

    fn byte_at(&self, cursor: usize) -> usize {
        self.value
            .char_indices()
            .nth(cursor)
            .map_or(self.value.len(), |(i, _)| i)
    }

    pub fn insert(&mut self, c: char) {
        self.take_suggestion();
        let at = self.byte_at(self.cursor);
        self.value.insert(at, c);
        self.cursor += 1;
    }

    pub fn backspace(&mut self) {
        if self.take_suggestion() {
            return;
        }
        if self.cursor > 0 {
            self.cursor -= 1;
            let at = self.byte_at(self.cursor);
            self.value.remove(at);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.value.chars().count() {
            let at = self.byte_at(self.cursor);
            self.value.remove(at);
        }
    }

    pub fn left(&mut self) {
        self.suggested = false;
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.suggested = false;
        self.cursor = (self.cursor + 1).min(self.value.chars().count());
    }

    pub fn home(&mut self) {
        self.suggested = false;
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.suggested = false;
        self.cursor = self.value.chars().count();
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoginForm {
    pub email: Input,
    pub password: Input,
    pub focus_password: bool,
    /// Create an account instead of logging in.
    pub register: bool,
    pub busy: bool,
    pub error: Option<String>,
}

/// The keyring refused the key: what to do with it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyringProblem {
    pub email: String,
    pub api_key: String,
    pub error: String,
    pub file_result: Option<Result<String, String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    Login(LoginForm),
    Keyring(KeyringProblem),
    Main,
}

/// A one-line question at the bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    ForwardTo,
    Filter,
    Jump,
    RefundAmount,
    KeyName,
}

impl PromptKind {
    pub fn label(self) -> &'static str {
        match self {
            PromptKind::ForwardTo => "forward to URL (empty: stop forwarding)",
            PromptKind::Filter => "filter",
            PromptKind::Jump => ":",
            PromptKind::RefundAmount => "refund amount (empty: the rest)",
            PromptKind::KeyName => "name of the new key",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub kind: PromptKind,
    pub input: Input,
    pub error: Option<String>,
}

/// What a yes/no question is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    CancelPayment(String),
    RevokeKey(String),
    RollSecret,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewPaymentForm {
    pub amount: Input,
    pub currency: Input,
    /// Index into the test payment methods.
    pub method: usize,
    /// 0 amount, 1 currency, 2 method.
    pub field: usize,
    pub error: Option<String>,
}

impl Default for NewPaymentForm {
    fn default() -> Self {
        Self {
            amount: Input::new("25.00"),
            currency: Input::new("usd"),
            method: 0,
            field: 0,
            error: None,
        }
    }
}

/// A key just created, with the secret the server shows only once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub id: String,
    pub name: String,
    pub key: String,
}

impl From<contract::auth::CreatedApiKey> for NewKey {
    fn from(created: contract::auth::CreatedApiKey) -> Self {
        Self {
            id: created.id,
            name: created.name,
            key: created.key,
        }
    }
}

/// Whatever sits over the tab and takes the keys first.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Modal {
    #[default]
    None,
    Help,
    Prompt(Prompt),
    Confirm(Confirm),
    NewPayment(NewPaymentForm),
    /// `y` on an event: id, payload or curl.
    CopyMenu,
    /// A new key's secret, shown this once.
    NewKey(NewKey),
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamState {
    /// Not started: no key yet.
    Off,
    Connecting {
        attempt: u32,
    },
    Live,
    Reconnecting {
        at_ms: u64,
        attempt: u32,
        error: String,
    },
    Offline {
        error: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Good,
    Bad,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventsTab {
    /// The selected row's sequence number; `None` follows the newest.
    pub selected: Option<u64>,
    /// Index of the first visible row in the (newest-first) view.
    pub offset: usize,
    /// Lowercase substring matched against type and id.
    pub filter: String,
    /// Sequence numbers matching the filter, oldest first; only kept while filtering.
    pub matches: Vec<u64>,
    /// While paused: the first sequence number not shown.
    pub paused_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PaymentsTab {
    pub list: Load<Vec<Payment>>,
    pub selected: usize,
    pub offset: usize,
    pub filter: String,
    pub detail: Load<PaymentDetail>,
    /// The test method chosen for payments created here, used by `enter`.
    pub methods: std::collections::HashMap<String, String>,
    /// The method of the payment being created.
    pub pending_method: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EntriesView {
    pub account: Account,
    pub page: Load<EntriesPage>,
    /// The `starting_after` of each page before this one.
    pub cursors: Vec<String>,
    pub selected: usize,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LedgerTab {
    pub accounts: Load<Vec<Account>>,
    pub selected: usize,
    pub entries: Option<EntriesView>,
    pub transaction: Option<Load<Transaction>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeysTab {
    pub list: Load<Vec<ApiKey>>,
    pub selected: usize,
    pub secret: Load<String>,
}

#[derive(Debug, Clone)]
pub struct State {
    pub screen: Screen,
    pub tab: Tab,
    pub modal: Modal,
    pub email: Option<String>,
    pub gateway: String,
    pub profile: String,
    pub stream: StreamState,
    pub forward_to: Option<String>,
    pub rate_limit: Option<(u32, u32)>,
    pub events: EventsTab,
    pub store: EventStore,
    pub payments: PaymentsTab,
    pub ledger: LedgerTab,
    pub keys: KeysTab,
    /// The last action's outcome, shown in the hint line.
    pub flash: Option<(Level, String)>,
    /// Calls in flight started by an action (not loads, which show their own spinner).
    pub busy: u32,
    pub width: u16,
    pub height: u16,
    /// Monotonic milliseconds, from the last tick.
    pub now_ms: u64,
    pub spinner: usize,
    /// Arrival times of recent events (monotonic ms), for ev/s.
    pub arrivals: std::collections::VecDeque<u64>,
    pub rate: f64,
    pub no_color: bool,
    pub quit: bool,
    /// Something visible changed since the last frame.
    pub dirty: bool,
}

impl State {
    pub fn new(gateway: &str, profile: &str) -> Self {
        Self {
            screen: Screen::Login(LoginForm::default()),
            tab: Tab::Events,
            modal: Modal::None,
            email: None,
            gateway: gateway.to_owned(),
            profile: profile.to_owned(),
            stream: StreamState::Off,
            forward_to: None,
            rate_limit: None,
            events: EventsTab::default(),
            store: EventStore::default(),
            payments: PaymentsTab::default(),
            ledger: LedgerTab::default(),
            keys: KeysTab::default(),
            flash: None,
            busy: 0,
            width: 80,
            height: 24,
            now_ms: 0,
            spinner: 0,
            arrivals: std::collections::VecDeque::new(),
            rate: 0.0,
            no_color: false,
            quit: false,
            dirty: true,
        }
    }

    /// True when something is being waited for, so the spinner turns.
    pub fn waiting(&self) -> bool {
        self.busy > 0
            || matches!(&self.screen, Screen::Login(form) if form.busy)
            || self.payments.list.is_loading()
            || self.payments.detail.is_loading()
            || self.ledger.accounts.is_loading()
            || self.ledger.entries.as_ref().is_some_and(|e| e.page.is_loading())
            || self.ledger.transaction.as_ref().is_some_and(Load::is_loading)
            || self.keys.list.is_loading()
            || self.keys.secret.is_loading()
            || matches!(self.stream, StreamState::Connecting { .. })
    }

    pub fn spinner_char(&self) -> char {
        const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        FRAMES[self.spinner % FRAMES.len()]
    }

    /// Number of rows in the events view (filter and pause applied).
    pub fn event_view_len(&self) -> usize {
        let end = self.events.paused_at.unwrap_or(u64::MAX);
        if self.events.filter.is_empty() {
            let first = self.store.first_seq();
            let last = self.store.next_seq().min(end);
            last.saturating_sub(first) as usize
        } else {
            self.events.matches.partition_point(|seq| *seq < end)
        }
    }

    /// The sequence number of the row at `index` of the newest-first view.
    pub fn event_at(&self, index: usize) -> Option<u64> {
        let len = self.event_view_len();
        if index >= len {
            return None;
        }
        let from_oldest = len - 1 - index;
        if self.events.filter.is_empty() {
            Some(self.store.first_seq() + from_oldest as u64)
        } else {
            let dropped_matches = self
                .events
                .matches
                .partition_point(|seq| *seq < self.store.first_seq());
            self.events.matches.get(dropped_matches + from_oldest).copied()
        }
    }

    /// Where `seq` sits in the newest-first view.
    pub fn event_index(&self, seq: u64) -> Option<usize> {
        let len = self.event_view_len();
        let end = self.events.paused_at.unwrap_or(u64::MAX);
        if seq < self.store.first_seq() || seq >= self.store.next_seq() || seq >= end {
            return None;
        }
        if self.events.filter.is_empty() {
            let from_oldest = (seq - self.store.first_seq()) as usize;
            Some(len - 1 - from_oldest)
        } else {
            let first = self
                .events
                .matches
                .partition_point(|s| *s < self.store.first_seq());
            let pos = self.events.matches.binary_search(&seq).ok()?;
            Some(len - 1 - (pos - first))
        }
    }

    /// The selected event's sequence number: the chosen one, else the newest shown.
    pub fn selected_event(&self) -> Option<u64> {
        match self.events.selected {
            Some(seq) if self.event_index(seq).is_some() => Some(seq),
            _ => self.event_at(0),
        }
    }

    /// Payments passing the filter, in list order.
    pub fn visible_payments(&self) -> Vec<&Payment> {
        let Some(list) = self.payments.list.loaded() else {
            return Vec::new();
        };
        let filter = self.payments.filter.to_ascii_lowercase();
        list.iter()
            .filter(|p| {
                filter.is_empty()
                    || p.id.to_ascii_lowercase().contains(&filter)
                    || p.status.as_str().contains(&filter)
            })
            .collect()
    }

    pub fn selected_payment(&self) -> Option<&Payment> {
        self.visible_payments().get(self.payments.selected).copied()
    }
}
