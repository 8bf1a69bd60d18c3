//! Events: what payments emits on every state change, what the gateway
//! streams, and what `micro` forwards to a developer's server.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventType {
    #[serde(rename = "payment.created")]
    PaymentCreated,
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded,
    #[serde(rename = "payment.failed")]
    PaymentFailed,
    #[serde(rename = "payment.canceled")]
    PaymentCanceled,
    #[serde(rename = "payment.refunded")]
    PaymentRefunded,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        Self::PaymentCreated,
        Self::PaymentSucceeded,
        Self::PaymentFailed,
        Self::PaymentCanceled,
        Self::PaymentRefunded,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::PaymentCreated => "payment.created",
            Self::PaymentSucceeded => "payment.succeeded",
            Self::PaymentFailed => "payment.failed",
            Self::PaymentCanceled => "payment.canceled",
            Self::PaymentRefunded => "payment.refunded",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{id: "evt_...", object: "event", type, sequence, created_at, data: {object}}`.
/// `sequence` increases by one per owner with every event, so a client can
/// tell a gap from a duplicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub id: String,
    pub object: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub sequence: i64,
    pub created_at: DateTime<Utc>,
    pub data: EventData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventData {
    /// The object as it was when the event happened.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub object: serde_json::Value,
}

/// A frame the gateway sends on `/v1/events/stream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamFrame {
    /// Sent once the gap since `last_event_id` is filled and live events follow.
    Ready {
        /// How many missed events were sent before this frame.
        replayed: u64,
    },
    Event {
        event: Event,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resend: bool,
    },
}
