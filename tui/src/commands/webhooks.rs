//! `micro webhooks secret|roll`.

use super::show;
use crate::cli::{Format, WebhooksCommand};
use crate::exit::{CliResult, OK};
use crate::session::{Invocation, Session};

pub async fn run(context: &Invocation, command: WebhooksCommand, format: Format) -> CliResult<u8> {
    let session = Session::open(context).await?;
    let secret = match command {
        WebhooksCommand::Secret => session.client.webhook_secret(&session.api_key).await?,
        WebhooksCommand::Roll => session.client.roll_webhook_secret(&session.api_key).await?,
    }
    .into_value();
    show(format, &secret, |s| format!("{}\n", s.secret));
    Ok(OK)
}
