//! `micro ledger accounts|entries|transaction`.

use contract::ledger::{Account, AccountEntry, Transaction};

use super::{list_text, page, show};
use crate::cli::{Format, LedgerCommand};
use crate::exit::{CliResult, OK};
use crate::output::{Align, Table, fields, money, optional, time};
use crate::session::{Invocation, Session};

pub fn accounts_table(accounts: &[Account]) -> Table {
    let mut table = Table::new(&[
        ("ID", Align::Left),
        ("NAME", Align::Left),
        ("TYPE", Align::Left),
        ("BALANCE", Align::Right),
        ("ENTRIES", Align::Right),
    ]);
    for a in accounts {
        table.row(vec![
            a.id.clone(),
            a.name.clone(),
            a.kind.as_str().to_owned(),
            money(a.balance, &a.currency),
            a.entry_count.to_string(),
        ]);
    }
    table
}

pub fn entries_table(entries: &[AccountEntry]) -> Table {
    let mut table = Table::new(&[
        ("ID", Align::Left),
        ("TRANSACTION", Align::Left),
        ("DIRECTION", Align::Left),
        ("AMOUNT", Align::Right),
        ("BALANCE AFTER", Align::Right),
        ("POSTED", Align::Left),
    ]);
    for e in entries {
        table.row(vec![
            e.id.clone(),
            e.transaction_id.clone(),
            e.direction.as_str().to_owned(),
            money(e.amount, &e.currency),
            money(e.balance_after, &e.currency),
            time(&e.posted_at),
        ]);
    }
    table
}

fn transaction_text(t: &Transaction) -> String {
    let mut text = fields(&[
        ("id", t.id.clone()),
        ("reference", t.reference.clone()),
        ("description", optional(t.description.as_deref())),
        ("reverses", optional(t.reverses.as_deref())),
        ("posted", time(&t.posted_at)),
    ]);
    let mut table = Table::new(&[
        ("ENTRY", Align::Left),
        ("ACCOUNT", Align::Left),
        ("DEBIT", Align::Right),
        ("CREDIT", Align::Right),
    ]);
    for e in &t.entries {
        let amount = money(e.amount, &e.currency);
        let (debit, credit) = match e.direction {
            contract::ledger::Direction::Debit => (amount, String::new()),
            contract::ledger::Direction::Credit => (String::new(), amount),
        };
        table.row(vec![e.id.clone(), e.account_id.clone(), debit, credit]);
    }
    text.push('\n');
    text.push_str(&table.render());
    text
}

pub async fn run(context: &Invocation, command: LedgerCommand, format: Format) -> CliResult<u8> {
    let session = Session::open(context).await?;
    let (client, key) = (&session.client, session.api_key.as_str());
    match command {
        LedgerCommand::Accounts { page: args } => {
            let list = client.ledger_accounts(key, &page(&args)).await?.into_value();
            show(format, &list, |l| {
                list_text(
                    &accounts_table(&l.data),
                    l.has_more,
                    l.data.last().map(|a| a.id.as_str()),
                )
            });
        }
        LedgerCommand::Entries {
            account_id,
            page: args,
        } => {
            let list = client
                .ledger_entries(key, &account_id, &page(&args))
                .await?
                .into_value();
            show(format, &list, |l| {
                list_text(
                    &entries_table(&l.data),
                    l.has_more,
                    l.data.last().map(|e| e.id.as_str()),
                )
            });
        }
        LedgerCommand::Transaction { id } => {
            let transaction = client.ledger_transaction(key, &id).await?.into_value();
            show(format, &transaction, transaction_text);
        }
    }
    Ok(OK)
}
