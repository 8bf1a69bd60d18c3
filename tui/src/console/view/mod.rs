//! Every screen as a pure function of the state: `render` only reads.

pub mod events;
pub mod help;
pub mod json;
pub mod keys;
pub mod layout;
pub mod ledger;
pub mod login;
pub mod payments;
pub mod prompt;
pub mod status;

use chrono::{Local, TimeZone};
use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

use super::state::{Level, Load, Modal, Screen, State, Tab};

pub fn render(state: &State, frame: &mut Frame) {
    let area = frame.area();
    match &state.screen {
        Screen::Login(form) => login::render(state, form, frame, area),
        Screen::Keyring(problem) => login::keyring(state, problem, frame, area),
        Screen::Main => {
            let areas = layout::areas(area);
            status::render(state, frame, areas.status);
            tabs(state, frame, areas.tabs);
            match state.tab {
                Tab::Events => events::render(state, frame, areas.body),
                Tab::Payments => payments::render(state, frame, areas.body),
                Tab::Ledger => ledger::render(state, frame, areas.body),
                Tab::Keys => keys::render(state, frame, areas.body),
            }
            status::hint(state, frame, areas.hint);
            match &state.modal {
                Modal::None => {}
                Modal::Help => help::render(state, frame, areas.body),
                modal => prompt::render(state, modal, frame, area),
            }
        }
    }
    if state.no_color {
        strip_colors(frame);
    }
}

/// The selected row of every list. A background rather than reverse video,
/// so that a status coloured in its cell stays readable on the selection.
pub fn selected_row() -> Style {
    Style::new().bg(Color::DarkGray).add_modifier(Modifier::BOLD)
}

/// NO_COLOR: keep bold and reverse, drop every colour; what stood out by its
/// background (the selection, the status line) stands out reversed.
fn strip_colors(frame: &mut Frame) {
    for cell in frame.buffer_mut().content.iter_mut() {
        if cell.bg != Color::Reset {
            cell.modifier.insert(Modifier::REVERSED);
        }
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
    }
}

fn tabs(state: &State, frame: &mut Frame, area: Rect) {
    let mut spans = vec![Span::raw(" ")];
    for tab in Tab::ALL {
        let label = layout::tab_label(tab);
        if tab == state.tab {
            spans.push(Span::styled(
                label,
                Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            ));
        } else {
            spans.push(Span::raw(label));
        }
        spans.push(Span::raw(" "));
    }
    let help = " ? help  q quit ";
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let room = usize::from(area.width).saturating_sub(used);
    if room > help.len() {
        spans.push(Span::raw(" ".repeat(room - help.len())));
        spans.push(Span::styled(help, Style::new().dim()));
    }
    frame.render_widget(Line::from(spans), area);
}

pub fn block(title: impl Into<Line<'static>>, focused: bool) -> Block<'static> {
    let block = Block::bordered().border_type(BorderType::Plain).title(title);
    if focused {
        block.border_style(Style::new().fg(Color::Cyan))
    } else {
        block
    }
}

/// Local wall-clock time of a Unix-millisecond instant, to the millisecond.
pub fn time_ms(ms: i64) -> String {
    match Local.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%H:%M:%S%.3f").to_string(),
        None => "--:--:--.---".into(),
    }
}

pub fn date_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An id cut to `width` with an ellipsis, keeping its prefix readable.
pub fn short(id: &str, width: usize) -> String {
    if id.chars().count() <= width {
        id.to_owned()
    } else {
        let mut s: String = id.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

pub fn status_color(status: u16) -> Color {
    match status {
        200..=299 => Color::Green,
        300..=399 => Color::Yellow,
        _ => Color::Red,
    }
}

pub fn level_style(level: Level) -> Style {
    match level {
        Level::Info => Style::new(),
        Level::Good => Style::new().fg(Color::Green),
        Level::Bad => Style::new().fg(Color::Red).bold(),
    }
}

/// The body of a box that is loading, failed or empty; `None` when loaded with rows.
pub fn load_placeholder<T>(
    state: &State,
    load: &Load<T>,
    empty: bool,
    what: &str,
) -> Option<Paragraph<'static>> {
    match load {
        Load::Idle => Some(Paragraph::new(
            Line::from(format!(" {what}: not loaded yet")).dim(),
        )),
        Load::Loading => Some(Paragraph::new(Line::from(vec![
            Span::styled(
                format!(" {} ", state.spinner_char()),
                Style::new().fg(Color::Cyan),
            ),
            Span::raw(format!("loading {what}…")),
        ]))),
        Load::Error(error) => Some(
            Paragraph::new(vec![
                Line::from(Span::styled(
                    format!(" could not load {what}"),
                    Style::new().fg(Color::Red).bold(),
                )),
                Line::from(format!(" {error}")),
                Line::from(" ctrl-r to try again".dim()),
            ])
            .wrap(ratatui::widgets::Wrap { trim: false }),
        ),
        Load::Loaded(_) if empty => Some(Paragraph::new(Line::from(format!(" no {what} yet")).dim())),
        Load::Loaded(_) => None,
    }
}

/// A box of `width` x `height` in the middle of `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}

pub fn clear(frame: &mut Frame, area: Rect) {
    frame.render_widget(Clear, area);
}
