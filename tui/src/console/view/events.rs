//! The Events tab: the live list (only the visible window is laid out) and
//! the selected event's JSON, headers and delivery attempts.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, Wrap};

use crate::console::state::State;
use crate::console::store::{Delivery, EventRow};
use crate::console::update::scroll;

use super::{block, json, layout, short, status_color, time_ms};

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let (list, detail) = layout::split(area);
    render_list(state, frame, list);
    render_detail(state, frame, detail);
}

fn delivery_cells(delivery: Delivery) -> (Span<'static>, Span<'static>) {
    match delivery {
        Delivery::NotForwarded => (Span::raw("  —"), Span::raw("    —")),
        Delivery::Held => (
            Span::styled(" held", Style::new().fg(Color::Yellow)),
            Span::raw(""),
        ),
        Delivery::Sending => (Span::styled("  …", Style::new().fg(Color::Cyan)), Span::raw("")),
        Delivery::Answered { status, latency_ms } => (
            Span::styled(
                format!("{status:>4}"),
                Style::new().fg(status_color(status)).bold(),
            ),
            Span::raw(format!("{latency_ms:>5}ms")),
        ),
        Delivery::Failed { latency_ms } => (
            Span::styled(" err", Style::new().fg(Color::Red).bold()),
            Span::raw(format!("{latency_ms:>5}ms")),
        ),
    }
}

fn row(event: &EventRow, id_width: usize) -> Row<'static> {
    let (status, latency) = delivery_cells(event.delivery);
    let kind_style = match event.kind {
        contract::events::EventType::PaymentFailed => Style::new().fg(Color::Red),
        contract::events::EventType::PaymentSucceeded => Style::new().fg(Color::Green),
        contract::events::EventType::PaymentRefunded | contract::events::EventType::PaymentCanceled => {
            Style::new().fg(Color::Yellow)
        }
        contract::events::EventType::PaymentCreated => Style::new(),
    };
    let mut kind = event.kind.as_str().to_owned();
    if event.resend {
        kind.push('*');
    }
    Row::new(vec![
        Span::raw(time_ms(event.created_ms)).dim(),
        Span::styled(kind, kind_style),
        Span::raw(short(&event.id, id_width)),
        status,
        latency,
    ])
}

fn render_list(state: &State, frame: &mut Frame, area: Rect) {
    let len = state.event_view_len();
    let mut title = vec![Span::raw(format!(
        " Events ({} · {} dropped",
        thousands(len as u64),
        thousands(state.store.dropped)
    ))];
    if let Some(paused_at) = state.events.paused_at {
        let held = state.store.next_seq().saturating_sub(paused_at);
        title.push(Span::styled(
            format!(" · paused, {} new", thousands(held)),
            Style::new().fg(Color::Yellow).bold(),
        ));
    }
    if !state.events.filter.is_empty() {
        title.push(Span::styled(
            format!(" · /{}", state.events.filter),
            Style::new().fg(Color::Cyan),
        ));
    }
    title.push(Span::raw(") "));
    let outer = block(Line::from(title), true);
    let rows_area = layout::list_rows(area);
    frame.render_widget(outer, area);
    let inner = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(2),
        ..rows_area
    };
    if len == 0 {
        let text = if state.store.is_empty() {
            match &state.forward_to {
                Some(_) => " waiting for events… (micro trigger payment.succeeded, or n on Payments)",
                None => " waiting for events… f sets where to forward them",
            }
        } else {
            " no event matches the filter (esc clears it)"
        };
        frame.render_widget(Paragraph::new(text).dim().wrap(Wrap { trim: false }), inner);
        return;
    }
    let page = usize::from(rows_area.height).max(1);
    let selected_seq = state.selected_event();
    let selected = selected_seq.and_then(|s| state.event_index(s)).unwrap_or(0);
    let offset = scroll(state.events.offset.min(len.saturating_sub(1)), selected, page);
    let id_width = usize::from(inner.width)
        .saturating_sub(12 + 1 + 18 + 1 + 4 + 1 + 7 + 1)
        .clamp(8, 32);
    let rows: Vec<Row> = (offset..(offset + page).min(len))
        .filter_map(|i| state.event_at(i))
        .filter_map(|seq| state.store.get(seq))
        .map(|event| {
            let r = row(event, id_width);
            if Some(event.seq) == selected_seq {
                r.style(super::selected_row())
            } else {
                r
            }
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(18),
            Constraint::Length(id_width as u16),
            Constraint::Length(4),
            Constraint::Length(7),
        ],
    )
    .header(Row::new(vec!["time", "type", "id", "code", "latency"]).style(Style::new().bold().dim()));
    frame.render_widget(table, inner);
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn render_detail(state: &State, frame: &mut Frame, area: Rect) {
    let Some(seq) = state.selected_event() else {
        frame.render_widget(
            Paragraph::new(" the selected event's payload, headers and deliveries show here")
                .dim()
                .block(block(" detail ", false)),
            area,
        );
        return;
    };
    let Some(row) = state.store.get(seq) else {
        return;
    };
    let body = state.store.body(seq);
    let attempts = body.map_or(0, |b| b.attempts.len());
    let delivery_height = if attempts == 0 {
        3
    } else {
        (area.height / 2).max(4)
    };
    let [top, bottom] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(delivery_height)]).areas(area);
    let title = format!(" {} {} ", row.id, row.kind);
    let payload = match body {
        Some(body) => match serde_json::from_str::<serde_json::Value>(&body.raw) {
            Ok(value) => json::lines(&value),
            Err(_) => body.raw.lines().map(|l| Line::raw(l.to_owned())).collect(),
        },
        None => vec![Line::from(
            " the body was dropped to keep memory bounded; the row stays".dim(),
        )],
    };
    frame.render_widget(Paragraph::new(payload).block(block(title, false)), top);

    let mut lines = Vec::new();
    match body {
        Some(body) if !body.attempts.is_empty() => {
            for attempt in body.attempts.iter().rev() {
                let (status, latency) = match attempt.status {
                    Some(s) => (
                        Span::styled(format!("{s}"), Style::new().fg(status_color(s)).bold()),
                        format!("{}ms", attempt.latency_ms),
                    ),
                    None => (
                        Span::styled("no answer", Style::new().fg(Color::Red).bold()),
                        format!("{}ms", attempt.latency_ms),
                    ),
                };
                let kind = if attempt.replay { "replay" } else { "forward" };
                lines.push(Line::from(vec![
                    Span::raw(time_ms(attempt.at_ms)).dim(),
                    Span::raw(format!("  {kind} POST {}  ", attempt.url)),
                    status,
                    Span::raw(format!("  {latency}")),
                ]));
                let response: String = attempt.response.chars().filter(|c| !c.is_control()).collect();
                if !response.is_empty() {
                    lines.push(Line::from(vec![
                        Span::raw("  ← "),
                        Span::styled(response, Style::new().fg(Color::Gray)),
                    ]));
                }
                for (name, value) in &attempt.headers {
                    lines.push(Line::from(vec![
                        Span::styled(format!("  {name}: "), Style::new().fg(Color::Cyan)),
                        Span::raw(value.clone()),
                    ]));
                }
            }
        }
        _ => lines.push(Line::from(match row.delivery {
            Delivery::NotForwarded => " not forwarded: f sets a URL, r replays".dim(),
            Delivery::Held => " held while paused (p resumes)".dim(),
            _ => " no delivery yet".dim(),
        })),
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(format!(" Deliveries ({attempts}) "), false)),
        bottom,
    );
}
