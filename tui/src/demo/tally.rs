//! What the demo expects from what it triggered, and how what arrived
//! measures up: each expected event exactly once, with a verified signature,
//! and nothing else.

use std::collections::HashMap;
use std::time::Duration;

use contract::events::EventType;
use contract::payments::PaymentStatus;
use serde::Serialize;

use super::receiver::Arrival;
use crate::trigger::Triggered;

/// One event the triggers made happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expected {
    #[serde(rename = "type")]
    pub kind: EventType,
    pub payment_id: String,
}

/// The events `made` produced, read off the objects as they ended: every
/// payment was created; a succeeded, failed or canceled one says so; a
/// refund was made of a payment that had succeeded.
pub fn expected(made: &[Triggered]) -> Vec<Expected> {
    let mut all = Vec::new();
    for triggered in made {
        let payment = &triggered.payment;
        let mut push = |kind| {
            all.push(Expected {
                kind,
                payment_id: payment.id.clone(),
            })
        };
        push(EventType::PaymentCreated);
        match payment.status {
            PaymentStatus::Succeeded => push(EventType::PaymentSucceeded),
            PaymentStatus::Failed => push(EventType::PaymentFailed),
            PaymentStatus::Canceled => push(EventType::PaymentCanceled),
            PaymentStatus::RequiresConfirmation | PaymentStatus::Processing => {}
        }
        if triggered.refund.is_some() {
            push(EventType::PaymentRefunded);
        }
    }
    all
}

/// How `micro listen` saw its delivery of one event (the last attempt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub status: Option<u16>,
    #[serde(serialize_with = "millis")]
    pub latency: Duration,
    pub error: Option<String>,
}

fn millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64() * 1000.0)
}

/// One expected event and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub expected: Expected,
    pub event_id: Option<String>,
    /// How many requests carried it.
    pub arrivals: usize,
    /// The first arrival's signature check; `None` when it did not arrive.
    pub verified: Option<bool>,
    /// Why it did not verify.
    pub signature_error: Option<String>,
    pub delivery: Option<Delivery>,
    /// From the event's creation to its arrival at the receiver.
    #[serde(serialize_with = "optional_millis")]
    pub end_to_end: Option<Duration>,
}

fn optional_millis<S: serde::Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => millis(duration, serializer),
        None => serializer.serialize_none(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Tally {
    pub rows: Vec<Row>,
    /// Requests that carried no expected event.
    pub unexpected: Vec<String>,
    /// Everything that keeps the demo from passing, for people.
    pub problems: Vec<String>,
}

impl Tally {
    pub fn arrived(&self) -> usize {
        self.rows.iter().filter(|row| row.arrivals > 0).count()
    }

    /// Every expected event came at least once.
    pub fn all_arrived(&self) -> bool {
        self.rows.iter().all(|row| row.arrivals > 0)
    }

    /// Every arrival has its delivery report from the listener.
    pub fn all_reported(&self) -> bool {
        self.rows
            .iter()
            .all(|row| row.arrivals == 0 || row.delivery.is_some())
    }

    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

pub fn tally(expected: &[Expected], arrivals: &[Arrival], deliveries: &HashMap<String, Delivery>) -> Tally {
    let mut rows: Vec<Row> = expected
        .iter()
        .map(|expected| Row {
            expected: expected.clone(),
            event_id: None,
            arrivals: 0,
            verified: None,
            signature_error: None,
            delivery: None,
            end_to_end: None,
        })
        .collect();
    let mut unexpected = Vec::new();
    let mut problems = Vec::new();
    for arrival in arrivals {
        let row = arrival.event.as_ref().and_then(|event| {
            rows.iter_mut().find(|row| {
                row.expected.kind == event.kind
                    && event.object_id.as_deref() == Some(row.expected.payment_id.as_str())
            })
        });
        let (Some(row), Some(event)) = (row, arrival.event.as_ref()) else {
            let what = match &arrival.event {
                Some(event) => format!("{} {}", event.kind, event.id),
                None => format!(
                    "a request that carried no event (webhook-id {:?})",
                    arrival.webhook_id
                ),
            };
            problems.push(format!("unexpected: {what}"));
            unexpected.push(what);
            continue;
        };
        row.arrivals += 1;
        if row.arrivals > 1 {
            if row.event_id.as_deref() != Some(event.id.as_str()) {
                problems.push(format!(
                    "{} of {} arrived as two events, {} and {}",
                    row.expected.kind,
                    row.expected.payment_id,
                    row.event_id.as_deref().unwrap_or("?"),
                    event.id
                ));
            }
            continue;
        }
        row.event_id = Some(event.id.clone());
        row.verified = Some(arrival.verified.is_ok());
        row.signature_error = arrival.verified.clone().err();
        row.delivery = deliveries.get(&event.id).cloned();
        row.end_to_end = (arrival.at - event.created_at).to_std().ok();
    }
    for row in &rows {
        let what = format!("{} of {}", row.expected.kind, row.expected.payment_id);
        match (row.verified, row.arrivals) {
            (None, _) => problems.push(format!("{what} did not arrive")),
            (Some(false), _) => problems.push(format!(
                "{what}: the signature did not verify: {}",
                row.signature_error.as_deref().unwrap_or("?")
            )),
            (Some(true), 1) => {}
            (Some(true), n) => problems.push(format!("{what} arrived {n} times")),
        }
    }
    Tally {
        rows,
        unexpected,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::demo::receiver::ArrivedEvent;

    fn arrival(id: &str, kind: EventType, payment: &str, verified: Result<(), String>) -> Arrival {
        Arrival {
            webhook_id: id.into(),
            event: Some(ArrivedEvent {
                id: id.into(),
                kind,
                object_id: Some(payment.into()),
                created_at: Utc::now(),
            }),
            verified,
            at: Utc::now(),
        }
    }

    fn expect(kind: EventType, payment: &str) -> Expected {
        Expected {
            kind,
            payment_id: payment.into(),
        }
    }

    #[test]
    fn each_once_and_verified_passes() {
        let expected = [
            expect(EventType::PaymentCreated, "pay_1"),
            expect(EventType::PaymentSucceeded, "pay_1"),
        ];
        let arrivals = [
            arrival("evt_1", EventType::PaymentCreated, "pay_1", Ok(())),
            arrival("evt_2", EventType::PaymentSucceeded, "pay_1", Ok(())),
        ];
        let deliveries = HashMap::from([(
            "evt_1".to_owned(),
            Delivery {
                status: Some(200),
                latency: Duration::from_millis(3),
                error: None,
            },
        )]);
        let tally = tally(&expected, &arrivals, &deliveries);
        assert!(tally.passed(), "{:?}", tally.problems);
        assert!(tally.all_arrived());
        assert!(!tally.all_reported(), "evt_2 has no delivery report yet");
        assert_eq!(tally.rows[0].delivery.as_ref().and_then(|d| d.status), Some(200));
    }

    #[test]
    fn missing_twice_unverified_and_unexpected_are_each_named() {
        let expected = [
            expect(EventType::PaymentCreated, "pay_1"),
            expect(EventType::PaymentFailed, "pay_1"),
            expect(EventType::PaymentCreated, "pay_2"),
            expect(EventType::PaymentCanceled, "pay_2"),
        ];
        let arrivals = [
            arrival("evt_1", EventType::PaymentCreated, "pay_1", Ok(())),
            arrival("evt_1", EventType::PaymentCreated, "pay_1", Ok(())),
            arrival(
                "evt_3",
                EventType::PaymentCreated,
                "pay_2",
                Err("mismatch".into()),
            ),
            arrival("evt_4", EventType::PaymentCanceled, "pay_2", Ok(())),
            arrival("evt_5", EventType::PaymentSucceeded, "pay_2", Ok(())),
        ];
        let tally = tally(&expected, &arrivals, &HashMap::new());
        assert!(!tally.passed());
        assert!(!tally.all_arrived());
        assert_eq!(tally.arrived(), 3);
        assert_eq!(
            tally.problems,
            vec![
                "unexpected: payment.succeeded evt_5".to_owned(),
                "payment.created of pay_1 arrived 2 times".to_owned(),
                "payment.failed of pay_1 did not arrive".to_owned(),
                "payment.created of pay_2: the signature did not verify: mismatch".to_owned(),
            ]
        );
        assert_eq!(tally.unexpected, vec!["payment.succeeded evt_5".to_owned()]);
    }

    #[test]
    fn what_each_trigger_is_expected_to_produce() {
        let payment = |id: &str, status| contract::payments::Payment {
            id: id.into(),
            object: "payment".into(),
            amount: 2000,
            amount_refunded: 0,
            currency: "usd".into(),
            status,
            description: None,
            metadata: Default::default(),
            customer_email: None,
            payment_method: None,
            failure_code: None,
            failure_message: None,
            ledger_transaction_id: None,
            fee: None,
            created_at: Utc::now(),
        };
        let refund = contract::payments::Refund {
            id: "re_1".into(),
            object: "refund".into(),
            payment: "pay_4".into(),
            amount: 2000,
            currency: "usd".into(),
            status: contract::payments::RefundStatus::Succeeded,
            ledger_transaction_id: None,
            created_at: Utc::now(),
        };
        let made = [
            Triggered {
                payment: payment("pay_1", PaymentStatus::Succeeded),
                refund: None,
            },
            Triggered {
                payment: payment("pay_2", PaymentStatus::Failed),
                refund: None,
            },
            Triggered {
                payment: payment("pay_3", PaymentStatus::Canceled),
                refund: None,
            },
            Triggered {
                payment: payment("pay_4", PaymentStatus::Succeeded),
                refund: Some(refund),
            },
        ];
        let kinds: Vec<(EventType, String)> = expected(&made)
            .into_iter()
            .map(|e| (e.kind, e.payment_id))
            .collect();
        use EventType::*;
        let want: Vec<(EventType, String)> = [
            (PaymentCreated, "pay_1"),
            (PaymentSucceeded, "pay_1"),
            (PaymentCreated, "pay_2"),
            (PaymentFailed, "pay_2"),
            (PaymentCreated, "pay_3"),
            (PaymentCanceled, "pay_3"),
            (PaymentCreated, "pay_4"),
            (PaymentSucceeded, "pay_4"),
            (PaymentRefunded, "pay_4"),
        ]
        .into_iter()
        .map(|(k, p)| (k, p.to_owned()))
        .collect();
        assert_eq!(kinds, want);
    }
}
