//! Creates and drives the objects that make an event happen.

use client::{Client, ClientError};
use contract::events::EventType;
use contract::payments::{CreatePaymentRequest, Payment, Refund};
use serde::Serialize;

/// The test card that succeeds, and the one that is declined.
pub const SUCCEEDING_CARD: &str = "pm_card_visa";
pub const DECLINED_CARD: &str = "pm_card_chargeDeclined";

/// What a trigger made: the payment as it ended, and the refund if any.
#[derive(Debug, Clone, Serialize)]
pub struct Triggered {
    pub payment: Payment,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund: Option<Refund>,
}

/// Produces one `kind` event (and the `payment.created` before it).
pub async fn trigger(
    client: &Client,
    api_key: &str,
    kind: EventType,
    amount: i64,
    currency: &str,
) -> Result<Triggered, ClientError> {
    let request = CreatePaymentRequest {
        amount,
        currency: currency.to_owned(),
        description: Some(format!("micro trigger {kind}")),
        ..Default::default()
    };
    let mut payment = client.create_payment(api_key, &request, None).await?.into_value();
    let mut refund = None;
    match kind {
        EventType::PaymentCreated => {}
        EventType::PaymentSucceeded => {
            payment = client
                .confirm_payment(api_key, &payment.id, SUCCEEDING_CARD, None)
                .await?
                .into_value();
        }
        EventType::PaymentFailed => {
            payment = client
                .confirm_payment(api_key, &payment.id, DECLINED_CARD, None)
                .await?
                .into_value();
        }
        EventType::PaymentCanceled => {
            payment = client
                .cancel_payment(api_key, &payment.id, None)
                .await?
                .into_value();
        }
        EventType::PaymentRefunded => {
            client
                .confirm_payment(api_key, &payment.id, SUCCEEDING_CARD, None)
                .await?;
            refund = Some(
                client
                    .refund_payment(api_key, &payment.id, None, None)
                    .await?
                    .into_value(),
            );
            payment = client.payment(api_key, &payment.id).await?.into_value();
        }
    }
    Ok(Triggered { payment, refund })
}
