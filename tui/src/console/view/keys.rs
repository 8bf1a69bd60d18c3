//! The Keys tab: API keys, and the webhook signing secret.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};

use crate::console::state::{Load, State};

use super::{block, date_time, load_placeholder};

/// A secret shown by its first and last characters only.
pub fn masked(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 12 {
        return "•".repeat(chars.len());
    }
    let head: String = chars[..10].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}••••••••{tail}")
}

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let [list_area, secret_area] = Layout::vertical([Constraint::Min(4), Constraint::Length(4)]).areas(area);
    let keys = state.keys.list.loaded().map(Vec::as_slice).unwrap_or_default();
    let outer = block(format!(" API keys ({}) ", keys.len()), true);
    let inner = outer.inner(list_area);
    frame.render_widget(outer, list_area);
    if let Some(placeholder) = load_placeholder(state, &state.keys.list, keys.is_empty(), "keys") {
        frame.render_widget(placeholder, inner);
    } else {
        let page = usize::from(inner.height.saturating_sub(1)).max(1);
        let offset = if state.keys.selected >= page {
            state.keys.selected + 1 - page
        } else {
            0
        };
        let rows: Vec<Row> = keys
            .iter()
            .enumerate()
            .skip(offset)
            .take(page)
            .map(|(i, k)| {
                let status = match k.revoked_at {
                    Some(at) => {
                        Span::styled(format!("revoked {}", date_time(&at)), Style::new().fg(Color::Red))
                    }
                    None => Span::styled("active", Style::new().fg(Color::Green)),
                };
                let row = Row::new(vec![
                    Span::raw(k.name.clone()),
                    Span::raw(format!("{}…", k.prefix)),
                    Span::raw(date_time(&k.created_at)).dim(),
                    Span::raw(
                        k.last_used_at
                            .as_ref()
                            .map_or_else(|| "never".to_owned(), date_time),
                    )
                    .dim(),
                    status,
                ]);
                if i == state.keys.selected {
                    row.style(super::selected_row())
                } else {
                    row
                }
            })
            .collect();
        let table = Table::new(
            rows,
            [
                Constraint::Min(10),
                Constraint::Length(16),
                Constraint::Length(19),
                Constraint::Length(19),
                Constraint::Min(8),
            ],
        )
        .header(
            Row::new(vec!["name", "key", "created", "last used", "status"]).style(Style::new().bold().dim()),
        );
        frame.render_widget(table, inner);
    }
    let outer = block(" webhook signing secret ", false);
    let inner = outer.inner(secret_area);
    frame.render_widget(outer, secret_area);
    let text = match &state.keys.secret {
        Load::Loaded(secret) => vec![
            Line::from(vec![
                Span::raw(" "),
                Span::styled(masked(secret), Style::new().bold()),
            ]),
            Line::from(" s copies it · o rolls it (the old one stops verifying)".dim()),
        ],
        other => match load_placeholder(state, other, false, "the secret") {
            Some(_) if matches!(other, Load::Loading) => {
                vec![Line::from(format!(" {} loading…", state.spinner_char()))]
            }
            Some(_) => match other {
                Load::Error(e) => vec![Line::from(Span::styled(
                    format!(" {e}"),
                    Style::new().fg(Color::Red),
                ))],
                _ => vec![Line::from(" not loaded yet".dim())],
            },
            None => Vec::new(),
        },
    };
    frame.render_widget(Paragraph::new(text), inner);
}
