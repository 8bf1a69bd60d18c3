//! `micro trigger <event-type>`.

use contract::events::EventType;

use super::show;
use crate::cli::{Format, TriggerArgs};
use crate::exit::{CliError, CliResult, OK};
use crate::output::money;
use crate::session::{Invocation, Session};

pub async fn run(context: &Invocation, args: TriggerArgs, format: Format) -> CliResult<u8> {
    let kind = EventType::parse(&args.event).ok_or_else(|| {
        let known: Vec<&str> = EventType::ALL.iter().map(EventType::as_str).collect();
        CliError::Usage(format!(
            "unknown event type {:?}; known: {}",
            args.event,
            known.join(", ")
        ))
    })?;
    let session = Session::open(context).await?;
    let made = crate::trigger::trigger(
        &session.client,
        &session.api_key,
        kind,
        args.amount,
        &args.currency,
    )
    .await?;
    show(format, &made, |made| {
        let payment = &made.payment;
        let mut text = format!(
            "Triggered {kind}\npayment  {}  {}  {}\n",
            payment.id,
            money(payment.amount, &payment.currency),
            payment.status
        );
        if let Some(refund) = &made.refund {
            text.push_str(&format!(
                "refund   {}  {}\n",
                refund.id,
                money(refund.amount, &refund.currency)
            ));
        }
        text
    });
    Ok(OK)
}
