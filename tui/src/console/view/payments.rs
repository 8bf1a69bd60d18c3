//! The Payments tab: the list, and the selected payment with its refunds and events.

use contract::money::{Currency, format_minor};
use contract::payments::{Payment, PaymentStatus};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, Wrap};

use crate::console::state::{Load, State};
use crate::console::update::scroll;

use super::{block, date_time, layout, load_placeholder, short, time_ms};

pub fn money(amount: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(c) => format_minor(amount, c),
        Err(_) => format!("{amount} {}", currency.to_ascii_uppercase()),
    }
}

pub fn status_style(status: PaymentStatus) -> Style {
    match status {
        PaymentStatus::Succeeded => Style::new().fg(Color::Green),
        PaymentStatus::Failed => Style::new().fg(Color::Red),
        PaymentStatus::Canceled => Style::new().fg(Color::DarkGray),
        PaymentStatus::Processing => Style::new().fg(Color::Cyan),
        PaymentStatus::RequiresConfirmation => Style::new().fg(Color::Yellow),
    }
}

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    let (list, detail) = layout::split(area);
    let payments = state.visible_payments();
    let mut title = format!(" Payments ({}", payments.len());
    if !state.payments.filter.is_empty() {
        title.push_str(&format!(" · /{}", state.payments.filter));
    }
    title.push_str(") ");
    let outer = block(title, true);
    let inner = outer.inner(list);
    frame.render_widget(outer, list);
    if let Some(placeholder) = load_placeholder(state, &state.payments.list, payments.is_empty(), "payments")
    {
        frame.render_widget(placeholder, inner);
    } else {
        let page = usize::from(layout::list_rows(list).height).max(1);
        let selected = state.payments.selected;
        let offset = scroll(state.payments.offset, selected, page);
        let id_width = usize::from(inner.width)
            .saturating_sub(21 + 16 + 19 + 3)
            .clamp(8, 30);
        let rows: Vec<Row> = payments
            .iter()
            .enumerate()
            .skip(offset)
            .take(page)
            .map(|(i, p)| {
                let row = Row::new(vec![
                    Span::raw(short(&p.id, id_width)),
                    Span::styled(p.status.as_str(), status_style(p.status)),
                    Span::raw(format!("{:>16}", money(p.amount, &p.currency))),
                    Span::raw(date_time(&p.created_at)).dim(),
                ]);
                if i == selected {
                    row.style(super::selected_row())
                } else {
                    row
                }
            })
            .collect();
        let table = Table::new(
            rows,
            [
                Constraint::Length(id_width as u16),
                Constraint::Length(21),
                Constraint::Length(16),
                Constraint::Length(19),
            ],
        )
        .header(
            Row::new(vec!["id", "status", "          amount", "created"]).style(Style::new().bold().dim()),
        );
        frame.render_widget(table, inner);
    }
    render_detail(state, frame, detail);
}

fn field(name: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!(" {name:<14}"), Style::new().fg(Color::Cyan)),
        Span::raw(value.into()),
    ])
}

fn render_detail(state: &State, frame: &mut Frame, area: Rect) {
    let outer = block(" detail ", false);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let Some(payment) = state.selected_payment() else {
        frame.render_widget(Paragraph::new(" n creates a test payment").dim(), inner);
        return;
    };
    let mut lines = summary(payment);
    lines.push(Line::raw(""));
    lines.push(Line::from(" refunds".bold()));
    match &state.payments.detail {
        Load::Loaded(detail) if detail.payment.id == payment.id => {
            if detail.refunds.is_empty() {
                lines.push(Line::from("  none".dim()));
            }
            for refund in &detail.refunds {
                lines.push(Line::from(format!(
                    "  {}  {}  {}",
                    short(&refund.id, 24),
                    money(refund.amount, &refund.currency),
                    date_time(&refund.created_at)
                )));
            }
        }
        Load::Loading => lines.push(Line::from(format!("  {} loading…", state.spinner_char()))),
        Load::Error(error) => lines.push(Line::from(Span::styled(
            format!("  {error}"),
            Style::new().fg(Color::Red),
        ))),
        _ => lines.push(Line::from("  none".dim())),
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(" events (this session)".bold()));
    let mut any = false;
    for row in state
        .store
        .iter()
        .rev()
        .filter(|r| *r.object_id == *payment.id)
        .take(20)
    {
        any = true;
        lines.push(Line::from(vec![
            Span::raw(format!("  {}  ", time_ms(row.created_ms))).dim(),
            Span::raw(format!("{:<18} ", row.kind.as_str())),
            Span::raw(short(&row.id, 28)),
        ]));
    }
    if !any {
        lines.push(Line::from("  none seen on the stream yet".dim()));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

fn summary(payment: &Payment) -> Vec<Line<'static>> {
    let mut lines = vec![
        field("id", payment.id.clone()),
        Line::from(vec![
            Span::styled(format!(" {:<14}", "status"), Style::new().fg(Color::Cyan)),
            Span::styled(payment.status.as_str(), status_style(payment.status).bold()),
        ]),
        field("amount", money(payment.amount, &payment.currency)),
        field("refunded", money(payment.amount_refunded, &payment.currency)),
        field("created", date_time(&payment.created_at)),
    ];
    if let Some(method) = &payment.payment_method {
        lines.push(field("method", method.clone()));
    }
    if let Some(message) = &payment.failure_message {
        lines.push(Line::from(vec![
            Span::styled(format!(" {:<14}", "failure"), Style::new().fg(Color::Cyan)),
            Span::styled(message.clone(), Style::new().fg(Color::Red)),
        ]));
    }
    if let Some(txn) = &payment.ledger_transaction_id {
        lines.push(field("ledger txn", txn.clone()));
    }
    lines
}
