//! The first-run login form, and what to do when the keyring fails.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::console::state::{Input, KeyringProblem, LoginForm, State};

use super::{block, centered, clear};

fn field(label: &str, value: String, focused: bool) -> Line<'static> {
    let style = if focused {
        Style::new().fg(Color::Cyan).bold()
    } else {
        Style::new()
    };
    let cursor = if focused { "▏" } else { "" };
    Line::from(vec![
        Span::styled(format!(" {label:<10}"), style),
        Span::raw(format!("{value}{cursor}")),
    ])
}

pub fn shown(input: &Input) -> String {
    input.value.clone()
}

pub fn render(state: &State, form: &LoginForm, frame: &mut Frame, area: Rect) {
    let popup = centered(area, 64, 14);
    clear(frame, popup);
    let title = if form.register {
        " micro · create an account "
    } else {
        " micro · log in "
    };
    let mut lines = vec![
        Line::from(format!(" gateway   {}", state.gateway).dim()),
        Line::raw(""),
        field("email", shown(&form.email), !form.focus_password),
        field(
            "password",
            "•".repeat(form.password.value.chars().count()),
            form.focus_password,
        ),
        Line::raw(""),
    ];
    if form.busy {
        let doing = if form.register {
            "creating the account"
        } else {
            "logging in"
        };
        lines.push(Line::from(Span::styled(
            format!(" {} {doing}, then a key for this machine…", state.spinner_char()),
            Style::new().fg(Color::Cyan),
        )));
    } else if let Some(error) = &form.error {
        lines.push(Line::from(Span::styled(
            format!(" {error}"),
            Style::new().fg(Color::Red).bold(),
        )));
    } else {
        lines.push(Line::raw(""));
    }
    lines.push(Line::raw(""));
    let switch = if form.register {
        "ctrl-n log in instead"
    } else {
        "ctrl-n create an account instead"
    };
    // Two short lines rather than one that wraps without its margin.
    lines.push(Line::from(" enter next/submit · tab switch field".dim()));
    lines.push(Line::from(format!(" {switch} · ctrl-c quit").dim()));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(title, true)),
        popup,
    );
}

pub fn keyring(_state: &State, problem: &KeyringProblem, frame: &mut Frame, area: Rect) {
    let popup = centered(area, 72, 14);
    clear(frame, popup);
    // The margin is the block's padding, not a leading space, so that a
    // long keyring error keeps it on the lines it wraps onto.
    let mut lines = vec![
        Line::from(format!("Logged in as {}, and a key was created,", problem.email)),
        Line::from("but the OS keyring could not store it:"),
        Line::from(Span::styled(problem.error.clone(), Style::new().fg(Color::Red))),
        Line::raw(""),
        Line::from(vec![
            Span::styled("f ", Style::new().bold()),
            Span::raw("store it in a file readable only by you (0600)"),
        ]),
        Line::from(vec![
            Span::styled("c ", Style::new().bold()),
            Span::raw("continue without storing (this session only)"),
        ]),
        Line::from(vec![Span::styled("q ", Style::new().bold()), Span::raw("quit")]),
    ];
    if let Some(Err(error)) = &problem.file_result {
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(
            format!("the file failed too: {error}"),
            Style::new().fg(Color::Red),
        )));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(" keyring unavailable ", true).padding(ratatui::widgets::Padding::horizontal(1))),
        popup,
    );
}
