//! `micro events list|get|resend`.

use contract::events::Event;
use contract::payments::{EventFilter, ListEventsParams};

use super::{list_text, show};
use crate::cli::{EventsCommand, Format};
use crate::exit::{CliResult, OK};
use crate::output::{Align, Table, fields, time};
use crate::session::{Invocation, Session};

fn object_id(event: &Event) -> String {
    event.data.object["id"].as_str().unwrap_or("-").to_owned()
}

pub fn table(events: &[Event]) -> Table {
    let mut table = Table::new(&[
        ("ID", Align::Left),
        ("TYPE", Align::Left),
        ("SEQ", Align::Right),
        ("OBJECT", Align::Left),
        ("CREATED", Align::Left),
    ]);
    for e in events {
        table.row(vec![
            e.id.clone(),
            e.kind.to_string(),
            e.sequence.to_string(),
            object_id(e),
            time(&e.created_at),
        ]);
    }
    table
}

fn details(e: &Event) -> String {
    let mut text = fields(&[
        ("id", e.id.clone()),
        ("type", e.kind.to_string()),
        ("sequence", e.sequence.to_string()),
        ("created", time(&e.created_at)),
    ]);
    text.push_str(&serde_json::to_string_pretty(&e.data.object).unwrap_or_default());
    text.push('\n');
    text
}

pub async fn run(context: &Invocation, command: EventsCommand, format: Format) -> CliResult<u8> {
    let session = Session::open(context).await?;
    let (client, key) = (&session.client, session.api_key.as_str());
    match command {
        EventsCommand::List { page, kind } => {
            let params = ListEventsParams {
                page: contract::list::PageParams {
                    limit: page.limit,
                    starting_after: page.starting_after,
                },
                filter: EventFilter { kind },
            };
            let list = client.list_events(key, &params).await?.into_value();
            show(format, &list, |l| {
                list_text(&table(&l.data), l.has_more, l.data.last().map(|e| e.id.as_str()))
            });
        }
        EventsCommand::Get { id } => {
            let event = client.event(key, &id).await?.into_value();
            show(format, &event, details);
        }
        EventsCommand::Resend { id, idempotency } => {
            let event = client
                .resend_event(key, &id, idempotency.idempotency_key.as_deref())
                .await?
                .into_value();
            show(format, &event, |e| format!("Resent {} ({})\n", e.id, e.kind));
        }
    }
    Ok(OK)
}
