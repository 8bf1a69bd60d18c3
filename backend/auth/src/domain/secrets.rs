//! The random secrets auth hands out, and how they are stored.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use contract::auth::{API_KEY_PREFIX, WEBHOOK_SECRET_PREFIX};
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

const LOOKUP_ID_LEN: usize = 16;
const KEY_SECRET_LEN: usize = 32;

fn alphanumeric(len: usize) -> String {
    OsRng
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A new API key: `sk_test_`, a public lookup id, then a 32-character secret
/// (about 190 bits). The lookup id finds the row; the hash proves the secret.
pub struct NewApiKey {
    pub plaintext: String,
    pub lookup_id: String,
    pub prefix: String,
}

impl NewApiKey {
    pub fn generate() -> Self {
        let lookup_id = alphanumeric(LOOKUP_ID_LEN);
        let plaintext = format!("{API_KEY_PREFIX}{lookup_id}{}", alphanumeric(KEY_SECRET_LEN));
        let prefix = format!("{API_KEY_PREFIX}{}", &lookup_id[..8]);
        Self {
            plaintext,
            lookup_id,
            prefix,
        }
    }
}

/// The lookup id of a well-formed key, or `None` for anything else.
pub fn api_key_lookup_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(API_KEY_PREFIX)?;
    (rest.len() == LOOKUP_ID_LEN + KEY_SECRET_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| &rest[..LOOKUP_ID_LEN])
}

/// Keys are stored as HMAC-SHA256 under a server secret, not bcrypt: the
/// secret is random with ~190 bits, so a slow hash adds no protection, and a
/// keyed hash means a stolen table is useless without the server secret.
pub fn api_key_hash(server_secret: &str, key: &str) -> Vec<u8> {
    let mut mac = match Hmac::<Sha256>::new_from_slice(server_secret.as_bytes()) {
        Ok(mac) => mac,
        Err(e) => unreachable!("HMAC takes keys of any length: {e}"),
    };
    mac.update(key.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A refresh token and the hash it is stored under. The token is 256 random
/// bits, so an unkeyed SHA-256 is enough.
pub fn new_refresh_token() -> (String, Vec<u8>) {
    let bytes: [u8; 32] = OsRng.r#gen();
    let token = format!("rt_{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = refresh_token_hash(&token);
    (token, hash)
}

pub fn refresh_token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// `whsec_` and 32 random bytes in base64, as Standard Webhooks expects.
pub fn new_webhook_secret() -> String {
    let bytes: [u8; 32] = OsRng.r#gen();
    format!("{WEBHOOK_SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_to_their_lookup_id() {
        let key = NewApiKey::generate();
        assert_eq!(api_key_lookup_id(&key.plaintext), Some(key.lookup_id.as_str()));
        assert!(key.plaintext.starts_with(&key.prefix));
        assert_eq!(key.plaintext.len(), API_KEY_PREFIX.len() + 48);
    }

    #[test]
    fn malformed_keys_have_no_lookup_id() {
        for bad in [
            "",
            "sk_test_",
            "sk_live_abc",
            "sk_test_short",
            &format!("sk_test_{}", "!".repeat(48)),
        ] {
            assert_eq!(api_key_lookup_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hashes_depend_on_the_server_secret() {
        assert_ne!(
            api_key_hash("one-secret", "sk_test_x"),
            api_key_hash("two-secret", "sk_test_x")
        );
    }

    #[test]
    fn webhook_secrets_carry_24_or_more_random_bytes() {
        let secret = new_webhook_secret();
        let raw = STANDARD
            .decode(secret.trim_start_matches(WEBHOOK_SECRET_PREFIX))
            .expect("base64");
        assert!(raw.len() >= 24);
    }
}
