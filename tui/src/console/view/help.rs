//! The `?` overlay, written from the keymap of the current tab.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::console::keymap::{self, Binding};
use crate::console::state::State;

use super::{block, centered, clear};

fn lines(title: &str, bindings: &[Binding], out: &mut Vec<Line<'static>>) {
    out.push(Line::from(Span::styled(
        title.to_owned(),
        Style::new().add_modifier(ratatui::style::Modifier::BOLD | ratatui::style::Modifier::UNDERLINED),
    )));
    for binding in bindings {
        out.push(Line::from(vec![
            Span::styled(format!("  {:<12}", binding.label), Style::new().bold()),
            Span::raw(binding.help),
        ]));
    }
}

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let mut left = Vec::new();
    lines(
        &format!("{} tab", state.tab.title()),
        keymap::for_tab(state.tab),
        &mut left,
    );
    let mut right = Vec::new();
    lines("everywhere", keymap::GLOBAL, &mut right);
    let wide = area.width >= 110;
    let (width, height) = if wide {
        (area.width.min(120), (left.len().max(right.len()) + 2) as u16)
    } else {
        left.push(Line::raw(""));
        left.append(&mut right);
        (area.width.min(76), (left.len() + 2) as u16)
    };
    let popup = centered(area, width, height);
    clear(frame, popup);
    let outer = block(" help · any key closes ", true);
    let inner = outer.inner(popup);
    frame.render_widget(outer, popup);
    if wide {
        let half = inner.width / 2;
        let (l, r) = (
            Rect { width: half, ..inner },
            Rect {
                x: inner.x + half,
                width: inner.width - half,
                ..inner
            },
        );
        frame.render_widget(Paragraph::new(left), l);
        frame.render_widget(Paragraph::new(right), r);
    } else {
        frame.render_widget(Paragraph::new(left).scroll((0, 0)), inner);
    }
}
