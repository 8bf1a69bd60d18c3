//! Requests parsed into types before any logic runs, and the state machine.

mod amount;
mod email;
mod fee;
mod idempotency_key;
mod metadata;
mod payment_method;
mod status;

pub use amount::{Amount, AmountError};
pub use email::{CustomerEmail, EmailError};
pub use fee::{FeeSchedule, FeeScheduleError};
pub use idempotency_key::{IdempotencyKey, IdempotencyKeyError};
pub use metadata::{Description, DescriptionError, Metadata, MetadataError};
pub use payment_method::{TestPaymentMethod, UnknownPaymentMethod};
pub use status::{Action, allowed, transition};
