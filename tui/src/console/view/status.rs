//! The status line (who, where, the stream, the forward target, ev/s, rate
//! limit; never blank) and the hint line under the tab.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};

use crate::console::keymap;
use crate::console::state::{State, StreamState};
use crate::console::update::{format_rate, reconnect_secs};

use super::{level_style, short};

pub fn stream_text(state: &State) -> (String, Color) {
    match &state.stream {
        StreamState::Off => ("○ not connected".into(), Color::DarkGray),
        StreamState::Connecting { attempt } if *attempt <= 1 => {
            (format!("{} connecting", state.spinner_char()), Color::Yellow)
        }
        StreamState::Connecting { attempt } => (
            format!("{} connecting (attempt {attempt})", state.spinner_char()),
            Color::Yellow,
        ),
        StreamState::Live if state.events.paused_at.is_some() => ("‖ paused".into(), Color::Yellow),
        StreamState::Live => ("● live".into(), Color::Green),
        StreamState::Reconnecting { attempt, error, .. } => (
            format!(
                "↻ reconnecting in {}s (attempt {attempt}): {error}",
                reconnect_secs(state).unwrap_or(0)
            ),
            Color::Yellow,
        ),
        StreamState::Offline { error } => (format!("✕ offline: {error}"), Color::Red),
    }
}

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let who = state.email.clone().unwrap_or_else(|| "not logged in".into());
    let (stream, color) = stream_text(state);
    let forward = match &state.forward_to {
        Some(url) => format!("→ {url}"),
        None => "→ not forwarding (f)".into(),
    };
    let limit = match state.rate_limit {
        Some((left, total)) => format!("{left}/{total} req"),
        None => "–/– req".into(),
    };
    let base = Style::new().bg(Color::Blue).fg(Color::White);
    // Segments with the order in which they give way on a narrow line; the
    // name, the user and the stream state always stay.
    let mut segments: Vec<(u8, Span<'static>)> = vec![
        (0, Span::styled(" micro ", base.add_modifier(Modifier::BOLD))),
        (0, Span::styled(format!(" {who}"), base)),
        (5, Span::styled(format!(" @ {}", state.gateway), base)),
        (
            0,
            Span::styled(
                format!("   {stream}"),
                base.fg(color).add_modifier(Modifier::BOLD),
            ),
        ),
        (4, Span::styled(format!("   {forward}"), base)),
        (
            2,
            Span::styled(format!("   {} ev/s", format_rate(state.rate)), base),
        ),
        (3, Span::styled(format!("   {limit} "), base)),
    ];
    let width = usize::from(area.width);
    let total = |segments: &Vec<(u8, Span<'static>)>| segments.iter().map(|(_, s)| s.width()).sum::<usize>();
    while total(&segments) > width {
        let Some(worst) = segments
            .iter()
            .enumerate()
            .filter(|(_, (p, _))| *p > 0)
            .max_by_key(|(_, (p, _))| *p)
            .map(|(i, _)| i)
        else {
            break;
        };
        segments.remove(worst);
    }
    let mut spans: Vec<Span<'static>> = segments.into_iter().map(|(_, s)| s).collect();
    let used: usize = spans.iter().map(Span::width).sum();
    if used > width {
        // Only the stream state can be long (its last error): cut it.
        if let Some(last) = spans.last_mut() {
            let keep = last.width().saturating_sub(used - width);
            *last = Span::styled(short(&last.content, keep), last.style);
        }
    } else {
        spans.push(Span::styled(" ".repeat(width - used), base));
    }
    frame.render_widget(Line::from(spans), area);
}

pub fn hint(state: &State, frame: &mut Frame, area: Rect) {
    if let Some((level, text)) = &state.flash {
        let mut spans = Vec::new();
        if state.busy > 0 {
            spans.push(Span::styled(
                format!(" {} ", state.spinner_char()),
                Style::new().fg(Color::Cyan),
            ));
        } else {
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(text.clone(), level_style(*level)));
        frame.render_widget(Line::from(spans), area);
        return;
    }
    let mut spans = vec![Span::raw(" ")];
    for binding in keymap::for_tab(state.tab) {
        if let Some(hint) = binding.hint {
            spans.push(Span::styled(binding.label, Style::new().bold()));
            spans.push(Span::raw(format!(" {hint}  ")));
        }
    }
    spans.push(Span::styled("?", Style::new().bold()));
    spans.push(Span::raw(" help").dim());
    frame.render_widget(Line::from(spans), area);
}
