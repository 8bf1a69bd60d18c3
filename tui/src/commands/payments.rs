//! `micro payments list|get|create|confirm|cancel|refund`.

use contract::payments::{CreatePaymentRequest, ListPaymentsParams, Payment, PaymentFilter, Refund};

use super::{list_text, show};
use crate::cli::{Format, PaymentsCommand};
use crate::exit::{CliResult, OK};
use crate::output::{Align, Table, fields, money, optional, time};
use crate::session::{Invocation, Session};

pub fn table(payments: &[Payment]) -> Table {
    let mut table = Table::new(&[
        ("ID", Align::Left),
        ("AMOUNT", Align::Right),
        ("REFUNDED", Align::Right),
        ("STATUS", Align::Left),
        ("DESCRIPTION", Align::Left),
        ("CREATED", Align::Left),
    ]);
    for p in payments {
        table.row(vec![
            p.id.clone(),
            money(p.amount, &p.currency),
            money(p.amount_refunded, &p.currency),
            p.status.to_string(),
            optional(p.description.as_deref()),
            time(&p.created_at),
        ]);
    }
    table
}

pub fn details(p: &Payment) -> String {
    fields(&[
        ("id", p.id.clone()),
        ("amount", money(p.amount, &p.currency)),
        ("refunded", money(p.amount_refunded, &p.currency)),
        ("status", p.status.to_string()),
        ("description", optional(p.description.as_deref())),
        ("customer", optional(p.customer_email.as_deref())),
        ("method", optional(p.payment_method.as_deref())),
        (
            "failure",
            p.failure_code
                .map(|c| format!("{} ({})", c.as_str(), c.message()))
                .unwrap_or_else(|| "-".into()),
        ),
        ("ledger txn", optional(p.ledger_transaction_id.as_deref())),
        ("created", time(&p.created_at)),
    ])
}

fn refund_details(r: &Refund) -> String {
    fields(&[
        ("id", r.id.clone()),
        ("payment", r.payment.clone()),
        ("amount", money(r.amount, &r.currency)),
        ("ledger txn", optional(r.ledger_transaction_id.as_deref())),
        ("created", time(&r.created_at)),
    ])
}

pub async fn run(context: &Invocation, command: PaymentsCommand, format: Format) -> CliResult<u8> {
    let session = Session::open(context).await?;
    let (client, key) = (&session.client, session.api_key.as_str());
    match command {
        PaymentsCommand::List { page, status } => {
            let params = ListPaymentsParams {
                page: contract::list::PageParams {
                    limit: page.limit,
                    starting_after: page.starting_after,
                },
                filter: PaymentFilter { status },
            };
            let list = client.list_payments(key, &params).await?.into_value();
            show(format, &list, |l| {
                list_text(&table(&l.data), l.has_more, l.data.last().map(|p| p.id.as_str()))
            });
        }
        PaymentsCommand::Get { id } => {
            let payment = client.payment(key, &id).await?.into_value();
            show(format, &payment, details);
        }
        PaymentsCommand::Create {
            amount,
            currency,
            description,
            customer_email,
            idempotency,
        } => {
            let request = CreatePaymentRequest {
                amount,
                currency,
                description,
                metadata: None,
                customer_email,
            };
            let payment = client
                .create_payment(key, &request, idempotency.idempotency_key.as_deref())
                .await?
                .into_value();
            show(format, &payment, details);
        }
        PaymentsCommand::Confirm {
            id,
            payment_method,
            idempotency,
        } => {
            let payment = client
                .confirm_payment(key, &id, &payment_method, idempotency.idempotency_key.as_deref())
                .await?
                .into_value();
            show(format, &payment, details);
        }
        PaymentsCommand::Cancel { id, idempotency } => {
            let payment = client
                .cancel_payment(key, &id, idempotency.idempotency_key.as_deref())
                .await?
                .into_value();
            show(format, &payment, details);
        }
        PaymentsCommand::Refund {
            id,
            amount,
            idempotency,
        } => {
            let refund = client
                .refund_payment(key, &id, amount, idempotency.idempotency_key.as_deref())
                .await?
                .into_value();
            show(format, &refund, refund_details);
        }
    }
    Ok(OK)
}
