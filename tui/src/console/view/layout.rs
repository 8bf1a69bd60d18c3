//! Where things go on screen. `update` uses the same geometry for mouse
//! clicks and page sizes, so both always agree.

use ratatui::layout::{Constraint, Direction, Layout, Rect};

use crate::console::state::Tab;

pub struct Areas {
    pub status: Rect,
    pub tabs: Rect,
    pub body: Rect,
    pub hint: Rect,
}

pub fn areas(area: Rect) -> Areas {
    let [status, tabs, body, hint] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    Areas {
        status,
        tabs,
        body,
        hint,
    }
}

/// The list and the detail pane of a tab: side by side when wide, else stacked.
pub fn split(body: Rect) -> (Rect, Rect) {
    let wide = body.width >= 120;
    let direction = if wide {
        Direction::Horizontal
    } else {
        Direction::Vertical
    };
    let share = if wide { 50 } else { 45 };
    let [list, detail] = Layout::default()
        .direction(direction)
        .constraints([Constraint::Percentage(share), Constraint::Percentage(100 - share)])
        .areas(body);
    (list, detail)
}

/// The rows a list shows inside its box, below its header row.
pub fn list_rows(list: Rect) -> Rect {
    Rect {
        x: list.x + 1,
        y: list.y + 2,
        width: list.width.saturating_sub(2),
        height: list.height.saturating_sub(3),
    }
}

/// The list box of a tab in a terminal of this size.
pub fn list_area(width: u16, height: u16, tab: Tab) -> Rect {
    let body = areas(Rect::new(0, 0, width, height)).body;
    match tab {
        Tab::Events | Tab::Payments => split(body).0,
        Tab::Ledger | Tab::Keys => body,
    }
}

/// How many rows of a tab's list fit on screen.
pub fn page_size(width: u16, height: u16, tab: Tab) -> usize {
    usize::from(list_rows(list_area(width, height, tab)).height).max(1)
}

/// The tab under column `x` of the tab bar.
pub fn tab_at(x: u16) -> Option<Tab> {
    let mut start = 1;
    for tab in Tab::ALL {
        let end = start + tab_label(tab).chars().count() as u16;
        if x >= start && x < end {
            return Some(tab);
        }
        start = end + 1;
    }
    None
}

pub fn tab_label(tab: Tab) -> String {
    format!(" {} {} ", tab.index() + 1, tab.title())
}
