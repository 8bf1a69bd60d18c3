//! `micro keys list|create|revoke`: these use the login session, not the key.

use contract::auth::ApiKey;

use super::{list_text, page, show};
use crate::cli::{Format, KeysCommand};
use crate::exit::{CliResult, OK};
use crate::output::{Align, Table, fields, time};
use crate::session::{Invocation, Session};

pub fn table(keys: &[ApiKey]) -> Table {
    let mut table = Table::new(&[
        ("ID", Align::Left),
        ("NAME", Align::Left),
        ("PREFIX", Align::Left),
        ("CREATED", Align::Left),
        ("LAST USED", Align::Left),
        ("REVOKED", Align::Left),
    ]);
    for k in keys {
        table.row(vec![
            k.id.clone(),
            k.name.clone(),
            format!("{}…", k.prefix),
            time(&k.created_at),
            k.last_used_at.as_ref().map(time).unwrap_or_else(|| "-".into()),
            k.revoked_at.as_ref().map(time).unwrap_or_else(|| "-".into()),
        ]);
    }
    table
}

pub async fn run(context: &Invocation, command: KeysCommand, format: Format) -> CliResult<u8> {
    let mut session = Session::open(context).await?;
    let token = session.access_token().await?;
    let client = &session.client;
    match command {
        KeysCommand::List { page: args } => {
            let list = client.list_api_keys(&token, &page(&args)).await?.into_value();
            show(format, &list, |l| {
                list_text(&table(&l.data), l.has_more, l.data.last().map(|k| k.id.as_str()))
            });
        }
        KeysCommand::Create { name } => {
            let key = client.create_api_key(&token, &name).await?.into_value();
            show(format, &key, |k| {
                fields(&[
                    ("id", k.id.clone()),
                    ("name", k.name.clone()),
                    ("key", k.key.clone()),
                    ("created", time(&k.created_at)),
                ]) + "The key is shown only this once.\n"
            });
        }
        KeysCommand::Revoke { id } => {
            let revoked = client.revoke_api_key(&token, &id).await?.into_value();
            show(format, &revoked, |r| {
                format!("Revoked {} at {}\n", r.id, time(&r.revoked_at))
            });
        }
    }
    Ok(OK)
}
