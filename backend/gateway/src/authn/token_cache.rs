//! Internal tokens, reused while fresh: minting one (JSON, base64, HMAC) on
//! every forwarded request is measurable work on the gateway's hot path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use platform::internal_token::{Caller, InternalTokens};

use crate::authn::key_cache::Principal;

/// The caller a service sees for a user the gateway authenticated: with an
/// API key when the principal came from one, else with a session.
pub fn user_caller(principal: &Principal) -> Caller {
    match &principal.key_id {
        Some(key_id) => Caller::api_key(principal.user_id.clone(), key_id.clone()),
        None => Caller::session(principal.user_id.clone()),
    }
}

/// Tokens live 60 s; reusing one for 20 s leaves 40 s for the call.
const REUSE_FOR: Duration = Duration::from_secs(20);
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub struct TokenCache {
    tokens: InternalTokens,
    /// Kept as header values, which clone without copying, since a header
    /// is all a token is ever used as.
    minted: Mutex<HashMap<Caller, (HeaderValue, Instant)>>,
}

impl TokenCache {
    pub fn new(tokens: InternalTokens) -> Self {
        Self {
            tokens,
            minted: Mutex::new(HashMap::new()),
        }
    }

    pub fn token_for(&self, caller: &Caller) -> HeaderValue {
        let mut minted = self
            .minted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((token, at)) = minted.get(caller)
            && at.elapsed() < REUSE_FOR
        {
            return token.clone();
        }
        if minted.len() >= MAX_ENTRIES {
            minted.retain(|_, (_, at)| at.elapsed() < REUSE_FOR);
        }
        let token = match HeaderValue::try_from(self.tokens.mint(caller)) {
            Ok(token) => token,
            // A token is base64url and dots; should one ever not be a valid
            // header, the service refuses the empty one sent instead.
            Err(e) => {
                tracing::error!(error = %e, "a minted internal token is not a valid header value");
                return HeaderValue::from_static("");
            }
        };
        minted.insert(caller.clone(), (token.clone(), Instant::now()));
        token
    }
}

#[cfg(test)]
mod tests {
    use platform::internal_token::Service;
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn reuses_a_users_token_and_keeps_callers_apart() {
        let tokens = InternalTokens::new(&SecretString::from("a-secret-long-enough-for-tests".to_owned()));
        let cache = TokenCache::new(tokens.clone());
        let ada = Caller::session("usr_ada");
        let adas_key = Caller::api_key("usr_ada", "key_ada");
        let bob = Caller::session("usr_bob");
        let gateway = Caller::Service(Service::Gateway);
        assert_eq!(cache.token_for(&ada), cache.token_for(&ada));
        for caller in [&ada, &adas_key, &bob, &gateway] {
            let token = cache.token_for(caller);
            let token = token.to_str().expect("a token is text");
            assert_eq!(&tokens.verify(token).expect("valid"), caller);
        }
    }
}
