//! The Ledger tab: accounts with balances and a totals line; an account's
//! entries with the running balance; a transaction's entries.

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};

use crate::console::state::{Load, State};

use super::payments::money;
use super::{block, date_time, load_placeholder, short};

fn selected_style(row: Row<'static>, on: bool) -> Row<'static> {
    if on { row.style(super::selected_row()) } else { row }
}

fn window(selected: usize, len: usize, page: usize) -> usize {
    if selected >= page {
        (selected + 1 - page).min(len)
    } else {
        0
    }
}

pub fn render(state: &State, frame: &mut Frame, area: Rect) {
    if let Some(txn) = &state.ledger.transaction {
        return transaction(state, txn, frame, area);
    }
    if state.ledger.entries.is_some() {
        return entries(state, frame, area);
    }
    let accounts = state
        .ledger
        .accounts
        .loaded()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let outer = block(format!(" Ledger · accounts ({}) ", accounts.len()), true);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    if let Some(placeholder) =
        load_placeholder(state, &state.ledger.accounts, accounts.is_empty(), "accounts")
    {
        frame.render_widget(placeholder, inner);
        return;
    }
    let [table_area, totals_area] =
        Layout::vertical([Constraint::Min(2), Constraint::Length(1)]).areas(inner);
    let page = usize::from(table_area.height.saturating_sub(1)).max(1);
    let offset = window(state.ledger.selected, accounts.len(), page);
    let rows: Vec<Row> = accounts
        .iter()
        .enumerate()
        .skip(offset)
        .take(page)
        .map(|(i, a)| {
            selected_style(
                Row::new(vec![
                    Span::raw(a.name.clone()),
                    Span::raw(a.kind.as_str()),
                    Span::raw(a.currency.to_ascii_uppercase()),
                    Span::raw(format!("{:>18}", money(a.balance, &a.currency))).bold(),
                    Span::raw(format!("{:>7}", a.entry_count)),
                    Span::raw(short(&a.id, 30)).dim(),
                ]),
                i == state.ledger.selected,
            )
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Min(12),
            Constraint::Length(9),
            Constraint::Length(4),
            Constraint::Length(18),
            Constraint::Length(7),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(vec!["name", "type", "cur", "           balance", "entries", "id"])
            .style(Style::new().bold().dim()),
    );
    frame.render_widget(table, table_area);
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for a in accounts {
        *totals.entry(a.currency.clone()).or_default() += a.balance;
    }
    let mut spans = vec![Span::styled(" totals ", Style::new().bold())];
    for (currency, sum) in totals {
        spans.push(Span::raw(format!(" {} ", money(sum, &currency))));
        spans.push(Span::raw("·").dim());
    }
    spans.pop();
    frame.render_widget(Line::from(spans), totals_area);
}

fn entries(state: &State, frame: &mut Frame, area: Rect) {
    let Some(view) = &state.ledger.entries else {
        return;
    };
    let page_no = view.cursors.len() + 1;
    let title = format!(
        " Ledger › {} ({}) · balance {} · page {page_no} ",
        view.account.name,
        view.account.kind.as_str(),
        money(view.account.balance, &view.account.currency)
    );
    let outer = block(title, true);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let empty = view.page.loaded().is_none_or(|p| p.entries.is_empty());
    if let Some(placeholder) = load_placeholder(state, &view.page, empty, "entries") {
        frame.render_widget(placeholder, inner);
        return;
    }
    let Some(page) = view.page.loaded() else {
        return;
    };
    let [table_area, foot] = Layout::vertical([Constraint::Min(2), Constraint::Length(1)]).areas(inner);
    let rows_fit = usize::from(table_area.height.saturating_sub(1)).max(1);
    let offset = window(view.selected, page.entries.len(), rows_fit);
    let rows: Vec<Row> = page
        .entries
        .iter()
        .enumerate()
        .skip(offset)
        .take(rows_fit)
        .map(|(i, e)| {
            let (debit, credit) = match e.direction {
                contract::ledger::Direction::Debit => (money(e.amount, &e.currency), String::new()),
                contract::ledger::Direction::Credit => (String::new(), money(e.amount, &e.currency)),
            };
            selected_style(
                Row::new(vec![
                    Span::raw(date_time(&e.posted_at)).dim(),
                    Span::raw(format!("{debit:>16}")),
                    Span::raw(format!("{credit:>16}")),
                    Span::raw(format!("{:>16}", money(e.balance_after, &e.currency))).bold(),
                    Span::raw(short(&e.transaction_id, 30)),
                    Span::raw(e.description.clone().unwrap_or_default()).dim(),
                ]),
                i == view.selected,
            )
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(19),
            Constraint::Length(16),
            Constraint::Length(16),
            Constraint::Length(16),
            Constraint::Length(30),
            Constraint::Min(0),
        ],
    )
    .header(
        Row::new(vec![
            "posted",
            "           debit",
            "          credit",
            "         balance",
            "transaction",
            "description",
        ])
        .style(Style::new().bold().dim()),
    );
    frame.render_widget(table, table_area);
    let more = if page.has_more { "n/pgdn next page · " } else { "" };
    let back = if view.cursors.is_empty() {
        ""
    } else {
        "pgup previous · "
    };
    frame.render_widget(
        Line::from(format!(
            " {} entries · {more}{back}enter transaction · esc back",
            page.entries.len()
        ))
        .dim(),
        foot,
    );
}

fn transaction(state: &State, txn: &Load<contract::ledger::Transaction>, frame: &mut Frame, area: Rect) {
    let outer = block(" Ledger › transaction ", true);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let empty = txn.loaded().is_none_or(|t| t.entries.is_empty());
    if let Some(placeholder) = load_placeholder(state, txn, empty, "the transaction") {
        frame.render_widget(placeholder, inner);
        return;
    }
    let Some(t) = txn.loaded() else {
        return;
    };
    let account_name = |id: &str| {
        state
            .ledger
            .accounts
            .loaded()
            .and_then(|a| a.iter().find(|a| a.id == id))
            .map_or_else(|| short(id, 30), |a| a.name.clone())
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(" id          ", Style::new().fg(Color::Cyan)),
            Span::raw(t.id.clone()),
        ]),
        Line::from(vec![
            Span::styled(" reference   ", Style::new().fg(Color::Cyan)),
            Span::raw(t.reference.clone()),
        ]),
        Line::from(vec![
            Span::styled(" posted      ", Style::new().fg(Color::Cyan)),
            Span::raw(date_time(&t.posted_at)),
        ]),
        Line::from(vec![
            Span::styled(" description ", Style::new().fg(Color::Cyan)),
            Span::raw(t.description.clone().unwrap_or_default()),
        ]),
        Line::raw(""),
        Line::from(format!(" {:<30} {:>16} {:>16}", "account", "debit", "credit").bold()),
    ];
    let mut debits: BTreeMap<String, i64> = BTreeMap::new();
    let mut credits: BTreeMap<String, i64> = BTreeMap::new();
    for e in &t.entries {
        let (d, c) = match e.direction {
            contract::ledger::Direction::Debit => {
                *debits.entry(e.currency.clone()).or_default() += e.amount;
                (money(e.amount, &e.currency), String::new())
            }
            contract::ledger::Direction::Credit => {
                *credits.entry(e.currency.clone()).or_default() += e.amount;
                (String::new(), money(e.amount, &e.currency))
            }
        };
        lines.push(Line::from(format!(
            " {:<30} {d:>16} {c:>16}",
            short(&account_name(&e.account_id), 30)
        )));
    }
    for (currency, d) in &debits {
        let c = credits.get(currency).copied().unwrap_or(0);
        lines.push(Line::from(
            format!(
                " {:<30} {:>16} {:>16}",
                "total",
                money(*d, currency),
                money(c, currency)
            )
            .bold(),
        ));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
