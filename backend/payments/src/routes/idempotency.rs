//! Stripe's `Idempotency-Key`, kept in PostgreSQL with the effect it guards.
//!
//! A POST runs in one transaction that first takes a transaction-scoped
//! advisory lock on (owner, key): a second request with the key while the
//! first is running fails to take it and gets 409. With the lock, the
//! request looks for a stored answer: the same fingerprint (method, path,
//! body) replays it byte for byte, another fingerprint is a 422. Otherwise the
//! request runs and its answer is inserted in the same transaction as its
//! effect, so there is no moment at which one committed and not the other. A
//! server error rolls the transaction back, which also releases the key.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use contract::payments::{IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER};
use platform::db::ResultExt;
use platform::error::ApiError;
use platform::internal_token::UserCaller;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::domain::IdempotencyKey;
use crate::failpoints;
use crate::store;
use crate::{AppState, PaymentsError};

/// How long answers are kept, at least: Stripe's 24 hours.
pub const RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// An authenticated POST with its optional key, its fingerprint and its raw body.
pub struct IdempotentPost {
    pub owner_id: String,
    key: Option<IdempotencyKey>,
    method: String,
    path: String,
    body_hash: Vec<u8>,
    body: Bytes,
    json_content_type: bool,
}

impl FromRequest<AppState> for IdempotentPost {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let caller =
            <UserCaller as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        let key = parts
            .headers
            .get(IDEMPOTENCY_KEY_HEADER)
            .map(|value| IdempotencyKey::parse(value.as_bytes()))
            .transpose()
            .map_err(|e| PaymentsError::from(e).into_response())?;
        let json_content_type = platform::error::has_json_content_type(&parts.headers);
        let method = parts.method.clone();
        let path = parts.uri.path().to_owned();
        let request = Request::from_parts(parts, body);
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|_| PaymentsError::Body(platform::error::body_too_large()).into_response())?;
        Ok(Self {
            owner_id: caller.user_id,
            key,
            body_hash: body_hash(&body),
            method: method.to_string(),
            path,
            body,
            json_content_type,
        })
    }
}

/// SHA-256 of the body's JSON in a canonical form (keys sorted, no spacing),
/// so that a client re-serialising the same request is not told it changed.
/// A body that is not JSON is hashed as it is.
fn body_hash(body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => canonical(&value, &mut hasher),
        Err(_) if body.iter().all(u8::is_ascii_whitespace) => hasher.update(b"{}"),
        Err(_) => {
            hasher.update(b"raw:");
            hasher.update(body);
        }
    }
    hasher.finalize().to_vec()
}

fn canonical(value: &serde_json::Value, out: &mut Sha256) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.update(b"{");
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.update(b",");
                }
                out.update(serde_json::Value::String(key.clone()).to_string().as_bytes());
                out.update(b":");
                canonical(value, out);
            }
            out.update(b"}");
        }
        serde_json::Value::Array(items) => {
            out.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.update(b",");
                }
                canonical(item, out);
            }
            out.update(b"]");
        }
        scalar => out.update(scalar.to_string().as_bytes()),
    }
}

impl IdempotentPost {
    /// The body as `T`. An empty body reads as `{}` for routes whose fields
    /// are all optional; errors read as the shared JSON extractor's do.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PaymentsError> {
        let empty = self.body.iter().all(u8::is_ascii_whitespace);
        if !empty && !self.json_content_type {
            return Err(PaymentsError::Body(platform::error::unsupported_media_type()));
        }
        let bytes: &[u8] = if empty { b"{}" } else { &self.body };
        platform::error::refuse_nul(bytes).map_err(PaymentsError::Body)?;
        serde_json::from_slice(bytes).map_err(|e| {
            let code = match e.classify() {
                serde_json::error::Category::Data => contract::error::codes::INVALID_BODY,
                _ => contract::error::codes::INVALID_JSON,
            };
            PaymentsError::Body(ApiError::invalid(code, format!("the body is not valid: {e}")))
        })
    }

    /// Opens the request's transaction and, with a key, claims it: either
    /// the request runs in the transaction, or an earlier answer is replayed.
    pub async fn begin(&self, db: &PgPool) -> Result<KeyClaim, PaymentsError> {
        let mut tx = db.begin().await?;
        let Some(key) = &self.key else {
            return Ok(KeyClaim::Run(tx));
        };
        let claimed = self.claim(&mut tx, key).await;
        if matches!(claimed, Ok(None)) {
            return Ok(KeyClaim::Run(tx));
        }
        // A dropped transaction is rolled back only when its connection is
        // next used, and until then it holds the key's lock: a client
        // retrying at once would be told 409.
        let _ = tx.rollback().await;
        match claimed? {
            Some(stored) => Ok(KeyClaim::Replay(stored)),
            None => Err(PaymentsError::IdempotencyKeyInUse),
        }
    }

    async fn claim(
        &self,
        conn: &mut PgConnection,
        key: &IdempotencyKey,
    ) -> Result<Option<StoredResponse>, PaymentsError> {
        let claim = store::claim_idempotency_key(&mut *conn, &self.owner_id, key.as_str()).await?;
        if !claim.locked {
            return Err(PaymentsError::IdempotencyKeyInUse);
        }
        let (Some(method), Some(path), Some(hash), Some(status), Some(body)) = (
            claim.method,
            claim.path,
            claim.body_hash,
            claim.response_status,
            claim.response_body,
        ) else {
            return Ok(None);
        };
        if method != self.method || path != self.path || hash != self.body_hash {
            return Err(PaymentsError::IdempotencyKeyReused { method, path });
        }
        let status = u16::try_from(status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::OK);
        Ok(Some(StoredResponse {
            status,
            body: body.into(),
            replayed: true,
        }))
    }

    /// The answer to give, serialised once: stored with the change it answers
    /// (see `stored`) and sent as it was stored.
    pub fn answer<T: Serialize>(&self, status: StatusCode, value: &T) -> Result<Answer, PaymentsError> {
        Ok(Answer {
            status,
            body: Bytes::from(serde_json::to_vec(value)?),
        })
    }

    /// What to keep under the request's key for `answer`; nothing without a key.
    pub fn stored<'a>(&'a self, answer: &'a Answer) -> Option<store::StoredAnswer<'a>> {
        self.key.as_ref().map(|key| store::StoredAnswer {
            owner_id: &self.owner_id,
            key: key.as_str(),
            method: &self.method,
            path: &self.path,
            body_hash: &self.body_hash,
            status: answer.status.as_u16() as i16,
            body: answer.body.as_ref(),
        })
    }

    /// Ends the request: an answer that came from running it is stored under
    /// the key and committed with the effect; a refusal of the request's
    /// shape or a server error is not stored, and the transaction rolls back.
    pub async fn finish<T: Serialize>(
        &self,
        tx: Transaction<'static, Postgres>,
        outcome: Result<(StatusCode, T), PaymentsError>,
    ) -> Result<Response, PaymentsError> {
        let outcome = outcome.and_then(|(status, value)| self.answer(status, &value));
        self.conclude(tx, outcome, AnswerStored::NotYet).await
    }

    /// As `finish`, for a change whose own statement stored its answer
    /// (one round trip fewer).
    pub async fn finish_stored(
        &self,
        tx: Transaction<'static, Postgres>,
        outcome: Result<Answer, PaymentsError>,
    ) -> Result<Response, PaymentsError> {
        self.conclude(tx, outcome, AnswerStored::WithTheChange).await
    }

    async fn conclude(
        &self,
        mut tx: Transaction<'static, Postgres>,
        outcome: Result<Answer, PaymentsError>,
        stored: AnswerStored,
    ) -> Result<Response, PaymentsError> {
        let (answer, stored) = match outcome {
            Ok(answer) => (answer, stored),
            Err(e) if e.is_outcome() => {
                let error = e.to_api_error();
                let answer = Answer {
                    status: error.status,
                    body: Bytes::from(serde_json::to_vec(&error.body)?),
                };
                (answer, AnswerStored::NotYet)
            }
            Err(e) => {
                // Release the key's lock now, not whenever the pool next
                // uses this connection.
                let _ = tx.rollback().await;
                return Err(e);
            }
        };
        if stored == AnswerStored::NotYet
            && let Some(kept) = self.stored(&answer)
        {
            answered(store::store_answer(&mut tx, &kept).await)?;
        }
        let Answer { status, body } = answer;
        // Every POST ends here; the crash points name a confirm's steps.
        let confirming = cfg!(feature = "failpoints") && self.path.ends_with("/confirm");
        if confirming {
            failpoints::die_at(failpoints::CONFIRM_ANSWER_STORED);
        }
        tx.commit().await?;
        if confirming {
            failpoints::die_at(failpoints::CONFIRM_COMMITTED);
        }
        Ok(StoredResponse {
            status,
            body,
            replayed: false,
        }
        .into_response())
    }
}

/// The result of a statement that stored an answer under the request's key.
/// A first request under the same key that committed after this one's claim
/// looked (see `claim`) makes it collide: 409, as for a key in use.
pub fn answered<T>(result: sqlx::Result<T>) -> Result<T, PaymentsError> {
    result.on_constraint(store::IDEMPOTENCY_KEYS_PKEY, |_| {
        PaymentsError::IdempotencyKeyInUse
    })
}

/// An answer, serialised.
pub struct Answer {
    status: StatusCode,
    body: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnswerStored {
    NotYet,
    WithTheChange,
}

/// What claiming a request's key decided: run it in this transaction, or
/// answer with what an earlier request under the same key was answered.
pub enum KeyClaim {
    Run(Transaction<'static, Postgres>),
    Replay(StoredResponse),
}

pub struct StoredResponse {
    status: StatusCode,
    body: Bytes,
    replayed: bool,
}

impl IntoResponse for StoredResponse {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.replayed {
            headers.insert(IDEMPOTENT_REPLAYED_HEADER, HeaderValue::from_static("true"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_ignores_layout_but_not_content() {
        let a = body_hash(br#"{"amount": 100, "currency": "usd", "metadata": {"a": "1", "b": "2"}}"#);
        let b = body_hash(br#"{"metadata":{"b":"2","a":"1"},"currency":"usd","amount":100}"#);
        let c = body_hash(br#"{"amount": 101, "currency": "usd", "metadata": {"a": "1", "b": "2"}}"#);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(body_hash(b""), body_hash(b"{}"));
        assert_ne!(body_hash(b"not json"), body_hash(b"not json!"));
    }
}
