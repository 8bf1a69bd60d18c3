//! Prompts, confirmations and small forms drawn over the tab.

use contract::payments::TEST_PAYMENT_METHODS;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::console::state::{Confirm, Input, Modal, NewPaymentForm, State};

use super::{block, centered, clear};

fn with_cursor(input: &Input) -> Vec<Span<'static>> {
    let before: String = input.value.chars().take(input.cursor).collect();
    let at: String = input.value.chars().skip(input.cursor).take(1).collect();
    let after: String = input.value.chars().skip(input.cursor + 1).collect();
    vec![
        Span::raw(before),
        Span::styled(
            if at.is_empty() { " ".into() } else { at },
            Style::new().reversed(),
        ),
        Span::raw(after),
    ]
}

pub fn render(state: &State, modal: &Modal, frame: &mut Frame, area: Rect) {
    match modal {
        Modal::Prompt(prompt) => {
            let bottom = Rect {
                y: area.bottom().saturating_sub(3),
                height: 3.min(area.height),
                ..area
            };
            clear(frame, bottom);
            let mut spans = vec![Span::styled(
                format!(" {} ", prompt.kind.label()),
                Style::new().bold(),
            )];
            spans.extend(with_cursor(&prompt.input));
            let mut lines = vec![Line::from(spans)];
            if let Some(error) = &prompt.error {
                lines = vec![
                    lines.remove(0),
                    Line::from(Span::styled(format!(" {error}"), Style::new().fg(Color::Red))),
                ];
            }
            frame.render_widget(
                Paragraph::new(lines).block(block(" enter ok · esc cancel ", true)),
                bottom,
            );
        }
        Modal::Confirm(what) => {
            let text = match what {
                Confirm::CancelPayment(id) => format!("Cancel payment {id}?"),
                Confirm::RevokeKey(id) => format!("Revoke key {id}? Programs using it stop working."),
                Confirm::RollSecret => "Roll the webhook signing secret? The old one stops verifying.".into(),
            };
            let popup = centered(area, 60, 6);
            clear(frame, popup);
            frame.render_widget(
                Paragraph::new(vec![
                    Line::from(format!(" {text}")),
                    Line::raw(""),
                    Line::from(" y yes · n no".bold()),
                ])
                .wrap(Wrap { trim: false })
                .block(block(" confirm ", true)),
                popup,
            );
        }
        Modal::NewPayment(form) => new_payment(state, form, frame, area),
        Modal::CopyMenu => {
            let popup = centered(area, 40, 6);
            clear(frame, popup);
            frame.render_widget(
                Paragraph::new(vec![
                    Line::from(vec![
                        Span::styled(" i ", Style::new().bold()),
                        Span::raw("the event id"),
                    ]),
                    Line::from(vec![
                        Span::styled(" p ", Style::new().bold()),
                        Span::raw("the payload"),
                    ]),
                    Line::from(vec![
                        Span::styled(" c ", Style::new().bold()),
                        Span::raw("a curl command"),
                    ]),
                ])
                .block(block(" copy ", true)),
                popup,
            );
        }
        Modal::NewKey(created) => {
            let popup = centered(area, 76, 8);
            clear(frame, popup);
            frame.render_widget(
                Paragraph::new(vec![
                    Line::from(format!(
                        " Key {} ({}) created. Its secret, shown this once:",
                        created.name, created.id
                    )),
                    Line::raw(""),
                    Line::from(Span::styled(
                        format!(" {}", created.key),
                        Style::new().fg(Color::Yellow).bold(),
                    )),
                    Line::raw(""),
                    Line::from(" y copy · esc close (it cannot be shown again)".dim()),
                ])
                .wrap(Wrap { trim: false })
                .block(block(" new API key ", true)),
                popup,
            );
        }
        Modal::None | Modal::Help => {}
    }
}

fn new_payment(_state: &State, form: &NewPaymentForm, frame: &mut Frame, area: Rect) {
    let popup = centered(area, 60, 10);
    clear(frame, popup);
    let label = |i: usize, name: &str| {
        let style = if form.field == i {
            Style::new().fg(Color::Cyan).bold()
        } else {
            Style::new()
        };
        Span::styled(format!(" {name:<10}"), style)
    };
    let field = |i: usize, input: &Input| {
        if form.field == i {
            with_cursor(input)
        } else {
            vec![Span::raw(input.value.clone())]
        }
    };
    let mut amount = vec![label(0, "amount")];
    amount.extend(field(0, &form.amount));
    let mut currency = vec![label(1, "currency")];
    currency.extend(field(1, &form.currency));
    let (method, outcome) = TEST_PAYMENT_METHODS[form.method % TEST_PAYMENT_METHODS.len()];
    let outcome = match outcome {
        None => "succeeds".to_owned(),
        Some(code) => format!("fails: {}", code.as_str()),
    };
    let mut lines = vec![
        Line::from(amount),
        Line::from(currency),
        Line::from(vec![
            label(2, "method"),
            Span::raw(format!("‹ {method} › ")),
            Span::raw(format!("({outcome})")).dim(),
        ]),
        Line::raw(""),
    ];
    if let Some(error) = &form.error {
        lines.push(Line::from(Span::styled(
            format!(" {error}"),
            Style::new().fg(Color::Red),
        )));
    } else {
        lines.push(Line::raw(""));
    }
    lines.push(Line::from(
        " tab next field · ←/→ method · enter create · esc cancel".dim(),
    ));
    lines.push(Line::from(
        " then enter on the list confirms it with this method".dim(),
    ));
    frame.render_widget(
        Paragraph::new(lines).block(block(" new test payment ", true)),
        popup,
    );
}
