//! Standard Webhooks signatures: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed
//! with the base64-decoded part of the user's `whsec_` secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::WEBHOOK_SECRET_PREFIX;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// How far a timestamp may be from now before a receiver should refuse it.
pub const TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the signing secret must start with {WEBHOOK_SECRET_PREFIX} and hold base64")]
    MalformedSecret,
    #[error("no signature matches")]
    Mismatch,
    #[error("the timestamp is outside the tolerance")]
    StaleTimestamp,
}

fn secret_bytes(secret: &str) -> Result<Vec<u8>, SignatureError> {
    let encoded = secret.strip_prefix(WEBHOOK_SECRET_PREFIX).unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .map_err(|_| SignatureError::MalformedSecret)
}

fn mac(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<Hmac<Sha256>, SignatureError> {
    let key = secret_bytes(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SignatureError::MalformedSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// The `webhook-signature` header value for one delivery.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
    let tag = mac(secret, id, timestamp, body)?.finalize().into_bytes();
    Ok(format!("v1,{}", STANDARD.encode(tag)))
}

/// Checks a `webhook-signature` header (space-separated `v1,<sig>` values) in
/// constant time, and the timestamp against `now`.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    signature_header: &str,
    now: i64,
) -> Result<(), SignatureError> {
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::StaleTimestamp);
    }
    for candidate in signature_header.split_whitespace() {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(tag) = STANDARD.decode(encoded) else {
            continue;
        };
        if mac(secret, id, timestamp, body)?.verify_slice(&tag).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn matches_the_specification_example() {
        let signature = sign(SECRET, ID, TIMESTAMP, BODY).expect("valid secret");
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn verifies_and_refuses() {
        let signature = sign(SECRET, ID, TIMESTAMP, BODY).expect("valid secret");
        let header = format!("v1,bm90IGl0 {signature}");
        assert_eq!(
            verify(SECRET, ID, TIMESTAMP, BODY, &header, TIMESTAMP + 10),
            Ok(())
        );
        assert_eq!(
            verify(SECRET, ID, TIMESTAMP, b"{}", &header, TIMESTAMP),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, ID, TIMESTAMP, BODY, &header, TIMESTAMP + 301),
            Err(SignatureError::StaleTimestamp)
        );
    }
}
