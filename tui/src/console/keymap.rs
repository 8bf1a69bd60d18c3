//! The keys, per tab. The same tables drive `update` and the `?` overlay, so
//! the help can never disagree with what a key does.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::state::Tab;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    NextTab,
    PrevTab,
    GoTab(Tab),
    Jump,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Enter,
    Back,
    Reload,
    Filter,
    ForwardTo,
    Replay,
    EditReplay,
    Resend,
    Pause,
    Copy,
    NewPayment,
    CancelPayment,
    Refund,
    NewKey,
    RevokeKey,
    RollSecret,
    CopySecret,
}

#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn k(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
    }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

const fn code(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [Key],
    /// How the keys are written in the help.
    pub label: &'static str,
    pub action: Action,
    pub help: &'static str,
    /// Shown in the one-line hint under the tab.
    pub hint: Option<&'static str>,
}

const fn b(
    keys: &'static [Key],
    label: &'static str,
    action: Action,
    help: &'static str,
    hint: Option<&'static str>,
) -> Binding {
    Binding {
        keys,
        label,
        action,
        help,
        hint,
    }
}

pub const GLOBAL: &[Binding] = &[
    b(
        &[k('q'), ctrl('c')],
        "q ctrl-c",
        Action::Quit,
        "quit",
        Some("quit"),
    ),
    b(&[k('?')], "?", Action::Help, "this help", Some("help")),
    b(&[code(KeyCode::Tab)], "tab", Action::NextTab, "next tab", None),
    b(
        &[code(KeyCode::BackTab)],
        "shift-tab",
        Action::PrevTab,
        "previous tab",
        None,
    ),
    b(&[k('1')], "1", Action::GoTab(Tab::Events), "events", None),
    b(&[k('2')], "2", Action::GoTab(Tab::Payments), "payments", None),
    b(&[k('3')], "3", Action::GoTab(Tab::Ledger), "ledger", None),
    b(&[k('4')], "4", Action::GoTab(Tab::Keys), "keys", None),
    b(
        &[k(':')],
        ":",
        Action::Jump,
        "jump: :events :payments :ledger :keys :quit",
        None,
    ),
    b(&[k('j'), code(KeyCode::Down)], "j ↓", Action::Down, "down", None),
    b(&[k('k'), code(KeyCode::Up)], "k ↑", Action::Up, "up", None),
    b(
        &[ctrl('d'), code(KeyCode::PageDown)],
        "ctrl-d pgdn",
        Action::PageDown,
        "page down",
        None,
    ),
    b(
        &[ctrl('u'), code(KeyCode::PageUp)],
        "ctrl-u pgup",
        Action::PageUp,
        "page up",
        None,
    ),
    b(&[k('g'), code(KeyCode::Home)], "g home", Action::Top, "top", None),
    b(
        &[k('G'), code(KeyCode::End)],
        "G end",
        Action::Bottom,
        "bottom",
        None,
    ),
    b(&[code(KeyCode::Esc)], "esc", Action::Back, "back, close", None),
    b(
        &[ctrl('r')],
        "ctrl-r",
        Action::Reload,
        "reload from the server",
        None,
    ),
];

pub const EVENTS: &[Binding] = &[
    b(
        &[k('f')],
        "f",
        Action::ForwardTo,
        "set or change the forward URL",
        Some("forward-to"),
    ),
    b(
        &[k('r')],
        "r",
        Action::Replay,
        "replay the event to it, signed anew",
        Some("replay"),
    ),
    b(
        &[k('e')],
        "e",
        Action::EditReplay,
        "edit the payload in $EDITOR, then replay",
        Some("edit+replay"),
    ),
    b(
        &[k('R')],
        "R",
        Action::Resend,
        "ask the server to resend the event",
        Some("resend"),
    ),
    b(
        &[k('/')],
        "/",
        Action::Filter,
        "filter by type or id",
        Some("filter"),
    ),
    b(
        &[k('p')],
        "p",
        Action::Pause,
        "pause or resume forwarding and the view",
        Some("pause"),
    ),
    b(
        &[k('y')],
        "y",
        Action::Copy,
        "copy the id, the payload or a curl command",
        Some("copy"),
    ),
];

pub const PAYMENTS: &[Binding] = &[
    b(
        &[k('n')],
        "n",
        Action::NewPayment,
        "new test payment",
        Some("new"),
    ),
    b(
        &[code(KeyCode::Enter)],
        "enter",
        Action::Enter,
        "confirm the payment",
        Some("confirm"),
    ),
    b(
        &[k('x')],
        "x",
        Action::CancelPayment,
        "cancel the payment",
        Some("cancel"),
    ),
    b(
        &[k('f')],
        "f",
        Action::Refund,
        "refund (asks the amount)",
        Some("refund"),
    ),
    b(
        &[k('/')],
        "/",
        Action::Filter,
        "filter by status or id",
        Some("filter"),
    ),
    b(&[k('y')], "y", Action::Copy, "copy the id", Some("copy")),
];

pub const LEDGER: &[Binding] = &[
    b(
        &[code(KeyCode::Enter), k('l')],
        "enter",
        Action::Enter,
        "entries, then the transaction",
        Some("open"),
    ),
    b(
        &[code(KeyCode::Backspace), k('h')],
        "bksp h",
        Action::Back,
        "back up a level",
        Some("back"),
    ),
    b(&[k('n')], "n", Action::PageDown, "next page of entries", None),
    b(&[k('y')], "y", Action::Copy, "copy the id", Some("copy")),
];

pub const KEYS: &[Binding] = &[
    b(
        &[k('n')],
        "n",
        Action::NewKey,
        "create a key (its secret is shown once)",
        Some("new key"),
    ),
    b(
        &[k('d')],
        "d",
        Action::RevokeKey,
        "revoke the key",
        Some("revoke"),
    ),
    b(
        &[k('o')],
        "o",
        Action::RollSecret,
        "roll the webhook signing secret",
        Some("roll secret"),
    ),
    b(
        &[k('s')],
        "s",
        Action::CopySecret,
        "copy the webhook signing secret",
        Some("copy secret"),
    ),
    b(&[k('y')], "y", Action::Copy, "copy the key id", Some("copy")),
];

pub fn for_tab(tab: Tab) -> &'static [Binding] {
    match tab {
        Tab::Events => EVENTS,
        Tab::Payments => PAYMENTS,
        Tab::Ledger => LEDGER,
        Tab::Keys => KEYS,
    }
}

fn matches(key: &Key, event: &KeyEvent) -> bool {
    let has_ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
    key.code == event.code && key.ctrl == has_ctrl
}

/// The action of a key on a tab: the tab's own keys first, then the global ones.
pub fn lookup(tab: Tab, event: &KeyEvent) -> Option<Action> {
    for_tab(tab)
        .iter()
        .chain(GLOBAL)
        .find(|binding| binding.keys.iter().any(|key| matches(key, event)))
        .map(|binding| binding.action)
}
