//! A typed async client for Micro's public gateway API.
//!
//! Session routes (`/auth/me`, `/auth/api-keys`) take the access token from
//! `login`; `/v1` routes take an API key. Every POST carries an
//! `Idempotency-Key` (a fresh UUID unless the caller names one), and every
//! answer reports the rate-limit headers in [`Reply::rate_limit`]. Calls are
//! retried only where that is safe: GETs, and POSTs the server deduplicates
//! by their key, on network errors, 502, 503 and 429 with `Retry-After`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), client::ClientError> {
//! let api = client::Client::new("https://api.example.com")?;
//! let payments = api.list_payments("sk_test_...", &Default::default()).await?;
//! for payment in &payments.data {
//!     println!("{} {}", payment.id, payment.amount);
//! }
//! # Ok(()) }
//! ```

mod error;
mod rate_limit;
mod stream;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use contract::List;
use contract::auth::{
    ApiKey, CreateApiKeyRequest, CreatedApiKey, Credentials, RefreshRequest, RevokedApiKey, TokenPair, User,
    WebhookSecret,
};
use contract::events::Event;
use contract::ledger::{Account, AccountEntry, PostTransactionRequest, Transaction};
use contract::list::PageParams;
use contract::payments::{
    ConfirmPaymentRequest, CreatePaymentRequest, CreateRefundRequest, IDEMPOTENCY_KEY_HEADER,
    IDEMPOTENT_REPLAYED_HEADER, ListEventsParams, ListPaymentsParams, Payment, Refund,
};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

pub use error::ClientError;
pub use rate_limit::RateLimit;
pub use stream::{EventStream, Frame, StreamOptions};

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// An answer and what its headers said.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    pub value: T,
    pub status: u16,
    pub rate_limit: Option<RateLimit>,
    /// True when the server replayed a stored answer for the idempotency key.
    pub replayed: bool,
}

impl<T> Reply<T> {
    pub fn into_value(self) -> T {
        self.value
    }
}

impl<T> std::ops::Deref for Reply<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// How often and how long a safe call is tried again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub first_delay: Duration,
    /// The longest wait between attempts, `Retry-After` included: a longer
    /// `Retry-After` ends the retries and returns the 429.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    pub fn none() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }
}

/// Installs the process-wide TLS crypto provider once; rustls refuses to
/// pick one itself when more than one could be compiled in.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The gateway at one base URL. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    retry: RetryPolicy,
    last_rate_limit: Arc<Mutex<Option<RateLimit>>>,
}

enum Auth<'a> {
    None,
    Bearer(&'a str),
}

/// Whether a POST may be sent twice: only where the server deduplicates it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Safety {
    Safe,
    /// Retried only when the request never left (connection refused).
    Once,
}

impl Client {
    pub fn new(base: &str) -> Result<Self> {
        Self::with_timeout(base, Duration::from_secs(30))
    }

    /// A client whose requests give up after `timeout`.
    pub fn with_timeout(base: &str, timeout: Duration) -> Result<Self> {
        install_crypto_provider();
        let mut base = Url::parse(base).map_err(|e| ClientError::InvalidUrl(format!("{base}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ClientError::InvalidUrl(format!(
                "{base}: use http:// or https://"
            )));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("micro/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Network(e.to_string()))?;
        Ok(Self {
            http,
            base,
            retry: RetryPolicy::default(),
            last_rate_limit: Arc::new(Mutex::new(None)),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The rate limit the most recent answer of any call reported.
    pub fn last_rate_limit(&self) -> Option<RateLimit> {
        self.last_rate_limit.lock().ok().and_then(|guard| *guard)
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ClientError::InvalidUrl(format!("{path}: {e}")))
    }

    // One private entry point for every route; a parameter struct would only rename these.
    #[allow(clippy::too_many_arguments)]
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        query: Option<&(dyn ErasedQuery + Sync)>,
        body: Option<&B>,
        idempotency_key: Option<&str>,
        safety: Safety,
    ) -> Result<Reply<T>> {
        let url = self.url(path)?;
        let is_get = method == Method::GET;
        let key = if method == Method::POST {
            Some(idempotency_key.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned))
        } else {
            None
        };
        let body_bytes = match body {
            Some(body) => Some(serde_json::to_vec(body).map_err(|e| ClientError::Decode {
                status: 0,
                message: format!("encoding the request: {e}"),
            })?),
            None => None,
        };
        let mut attempt = 1;
        loop {
            let mut request = self.http.request(method.clone(), url.clone());
            if let Auth::Bearer(token) = auth {
                request = request.bearer_auth(token);
            }
            if let Some(query) = query {
                request = request.query(&query.pairs());
            }
            if let Some(key) = &key {
                request = request.header(IDEMPOTENCY_KEY_HEADER, key);
            }
            if let Some(bytes) = &body_bytes {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.clone());
            }
            let retry_in = |after: Option<u64>| -> Option<Duration> {
                if attempt >= self.retry.attempts {
                    return None;
                }
                let backoff = self.retry.first_delay * 2u32.saturating_pow(attempt - 1);
                let wait = after.map_or(backoff, Duration::from_secs);
                (wait <= self.retry.max_delay).then_some(wait)
            };
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => {
                    let may_retry = is_get || safety == Safety::Safe || e.is_connect();
                    if let Some(wait) = retry_in(None).filter(|_| may_retry) {
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(ClientError::Network(error_chain(&e)));
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let rate_limit = RateLimit::from_headers(&headers);
            if let (Some(limit), Ok(mut last)) = (rate_limit, self.last_rate_limit.lock()) {
                *last = Some(limit);
            }
            let replayed = headers.contains_key(IDEMPOTENT_REPLAYED_HEADER);
            let bytes = match response.bytes().await {
                Ok(bytes) => bytes,
                Err(e) => return Err(ClientError::Network(error_chain(&e))),
            };
            if (200..300).contains(&status) {
                let value = serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
                    status,
                    message: e.to_string(),
                })?;
                return Ok(Reply {
                    value,
                    status,
                    rate_limit,
                    replayed,
                });
            }
            let retryable_status = match status {
                502 | 503 => true,
                429 => rate_limit::retry_after(&headers).is_some(),
                _ => false,
            };
            if retryable_status && (is_get || safety == Safety::Safe) {
                let after = rate_limit::retry_after(&headers);
                if let Some(wait) = retry_in(after) {
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
            }
            return Err(error::from_answer(status, &bytes, rate_limit));
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
        query: Option<&(dyn ErasedQuery + Sync)>,
    ) -> Result<Reply<T>> {
        self.call::<(), T>(
            Method::GET,
            path,
            Auth::Bearer(token),
            query,
            None,
            None,
            Safety::Safe,
        )
        .await
    }

    // ---- auth: by address ----

    /// `POST /auth/register`.
    pub async fn register(&self, credentials: &Credentials) -> Result<Reply<User>> {
        self.call(
            Method::POST,
            "/auth/register",
            Auth::None,
            None,
            Some(credentials),
            None,
            Safety::Once,
        )
        .await
    }

    /// `POST /auth/login`: a session (access and refresh tokens).
    pub async fn login(&self, credentials: &Credentials) -> Result<Reply<TokenPair>> {
        self.call(
            Method::POST,
            "/auth/login",
            Auth::None,
            None,
            Some(credentials),
            None,
            Safety::Once,
        )
        .await
    }

    /// `POST /auth/refresh`: a new session for a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Reply<TokenPair>> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        self.call(
            Method::POST,
            "/auth/refresh",
            Auth::None,
            None,
            Some(&body),
            None,
            Safety::Once,
        )
        .await
    }

    // ---- auth: with the session's access token ----

    /// `GET /auth/me`.
    pub async fn me(&self, access_token: &str) -> Result<Reply<User>> {
        self.get("/auth/me", access_token, None).await
    }

    /// `POST /auth/api-keys`: the only answer that shows the key's secret.
    pub async fn create_api_key(&self, access_token: &str, name: &str) -> Result<Reply<CreatedApiKey>> {
        let body = CreateApiKeyRequest {
            name: name.to_owned(),
        };
        self.call(
            Method::POST,
            "/auth/api-keys",
            Auth::Bearer(access_token),
            None,
            Some(&body),
            None,
            Safety::Once,
        )
        .await
    }

    /// `GET /auth/api-keys`.
    pub async fn list_api_keys(&self, access_token: &str, page: &PageParams) -> Result<Reply<List<ApiKey>>> {
        self.get("/auth/api-keys", access_token, Some(page)).await
    }

    /// `DELETE /auth/api-keys/{id}`.
    pub async fn revoke_api_key(&self, access_token: &str, key_id: &str) -> Result<Reply<RevokedApiKey>> {
        let path = format!("/auth/api-keys/{}", segment(key_id));
        self.call::<(), _>(
            Method::DELETE,
            &path,
            Auth::Bearer(access_token),
            None,
            None,
            None,
            Safety::Safe,
        )
        .await
    }

    // ---- /v1 with an API key ----

    /// `GET /v1/webhooks/secret`: the `whsec_` secret deliveries are signed with.
    pub async fn webhook_secret(&self, api_key: &str) -> Result<Reply<WebhookSecret>> {
        self.get("/v1/webhooks/secret", api_key, None).await
    }

    /// `POST /v1/webhooks/secret/roll`: a new secret; the old one stops working.
    pub async fn roll_webhook_secret(&self, api_key: &str) -> Result<Reply<WebhookSecret>> {
        self.call::<(), _>(
            Method::POST,
            "/v1/webhooks/secret/roll",
            Auth::Bearer(api_key),
            None,
            None,
            None,
            Safety::Once,
        )
        .await
    }

    /// `POST /v1/payments`.
    pub async fn create_payment(
        &self,
        api_key: &str,
        request: &CreatePaymentRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Reply<Payment>> {
        self.call(
            Method::POST,
            "/v1/payments",
            Auth::Bearer(api_key),
            None,
            Some(request),
            idempotency_key,
            Safety::Safe,
        )
        .await
    }

    /// `GET /v1/payments/{id}`.
    pub async fn payment(&self, api_key: &str, id: &str) -> Result<Reply<Payment>> {
        self.get(&format!("/v1/payments/{}", segment(id)), api_key, None)
            .await
    }

    /// `GET /v1/payments`.
    pub async fn list_payments(
        &self,
        api_key: &str,
        params: &ListPaymentsParams,
    ) -> Result<Reply<List<Payment>>> {
        self.get("/v1/payments", api_key, Some(params)).await
    }

    /// `POST /v1/payments/{id}/confirm` with a test payment method.
    pub async fn confirm_payment(
        &self,
        api_key: &str,
        id: &str,
        payment_method: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Reply<Payment>> {
        let body = ConfirmPaymentRequest {
            payment_method: payment_method.to_owned(),
        };
        self.call(
            Method::POST,
            &format!("/v1/payments/{}/confirm", segment(id)),
            Auth::Bearer(api_key),
            None,
            Some(&body),
            idempotency_key,
            Safety::Safe,
        )
        .await
    }

    /// `POST /v1/payments/{id}/cancel`.
    pub async fn cancel_payment(
        &self,
        api_key: &str,
        id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Reply<Payment>> {
        self.call::<(), _>(
            Method::POST,
            &format!("/v1/payments/{}/cancel", segment(id)),
            Auth::Bearer(api_key),
            None,
            None,
            idempotency_key,
            Safety::Safe,
        )
        .await
    }

    /// `GET /v1/payments/{id}/refunds`.
    pub async fn list_refunds(&self, api_key: &str, id: &str) -> Result<Reply<List<Refund>>> {
        self.get(&format!("/v1/payments/{}/refunds", segment(id)), api_key, None)
            .await
    }

    /// `POST /v1/payments/{id}/refunds`; `amount: None` refunds what is left.
    pub async fn refund_payment(
        &self,
        api_key: &str,
        id: &str,
        amount: Option<i64>,
        idempotency_key: Option<&str>,
    ) -> Result<Reply<Refund>> {
        let body = CreateRefundRequest { amount };
        self.call(
            Method::POST,
            &format!("/v1/payments/{}/refunds", segment(id)),
            Auth::Bearer(api_key),
            None,
            Some(&body),
            idempotency_key,
            Safety::Safe,
        )
        .await
    }

    /// `GET /v1/events`.
    pub async fn list_events(&self, api_key: &str, params: &ListEventsParams) -> Result<Reply<List<Event>>> {
        self.get("/v1/events", api_key, Some(params)).await
    }

    /// `GET /v1/events/{id}`.
    pub async fn event(&self, api_key: &str, id: &str) -> Result<Reply<Event>> {
        self.get(&format!("/v1/events/{}", segment(id)), api_key, None)
            .await
    }

    /// `POST /v1/events/{id}/resend`: the event goes out again, marked resent.
    pub async fn resend_event(
        &self,
        api_key: &str,
        id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Reply<Event>> {
        self.call::<(), _>(
            Method::POST,
            &format!("/v1/events/{}/resend", segment(id)),
            Auth::Bearer(api_key),
            None,
            None,
            idempotency_key,
            Safety::Safe,
        )
        .await
    }

    /// `GET /v1/ledger/accounts`.
    pub async fn ledger_accounts(&self, api_key: &str, page: &PageParams) -> Result<Reply<List<Account>>> {
        self.get("/v1/ledger/accounts", api_key, Some(page)).await
    }

    /// `GET /v1/ledger/accounts/{id}`.
    pub async fn ledger_account(&self, api_key: &str, id: &str) -> Result<Reply<Account>> {
        self.get(&format!("/v1/ledger/accounts/{}", segment(id)), api_key, None)
            .await
    }

    /// `GET /v1/ledger/accounts/{id}/entries`: the account's statement.
    pub async fn ledger_entries(
        &self,
        api_key: &str,
        account_id: &str,
        page: &PageParams,
    ) -> Result<Reply<List<AccountEntry>>> {
        self.get(
            &format!("/v1/ledger/accounts/{}/entries", segment(account_id)),
            api_key,
            Some(page),
        )
        .await
    }

    /// `GET /v1/ledger/transactions/{id}`.
    pub async fn ledger_transaction(&self, api_key: &str, id: &str) -> Result<Reply<Transaction>> {
        self.get(&format!("/v1/ledger/transactions/{}", segment(id)), api_key, None)
            .await
    }

    /// `POST /v1/ledger/transactions`: deduplicated by its `reference`.
    pub async fn post_ledger_transaction(
        &self,
        api_key: &str,
        request: &PostTransactionRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Reply<Transaction>> {
        self.call(
            Method::POST,
            "/v1/ledger/transactions",
            Auth::Bearer(api_key),
            None,
            Some(request),
            idempotency_key,
            Safety::Safe,
        )
        .await
    }
}

/// Query parameters as name/value pairs, so that one `call` takes any of
/// the contract's parameter structs.
trait ErasedQuery {
    fn pairs(&self) -> Vec<(&'static str, String)>;
}

impl ErasedQuery for PageParams {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if let Some(after) = &self.starting_after {
            pairs.push(("starting_after", after.clone()));
        }
        pairs
    }
}

impl ErasedQuery for ListPaymentsParams {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = self.page.pairs();
        if let Some(status) = &self.filter.status {
            pairs.push(("status", status.clone()));
        }
        pairs
    }
}

impl ErasedQuery for ListEventsParams {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = self.page.pairs();
        if let Some(kind) = &self.filter.kind {
            pairs.push(("type", kind.clone()));
        }
        pairs
    }
}

/// An id as one path segment: ids are ASCII alphanumerics and `_`, anything
/// else is escaped so that it cannot walk to another route.
fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_leave_their_segment() {
        assert_eq!(segment("pay_01abc"), "pay_01abc");
        assert_eq!(segment("../admin"), "%2E%2E%2Fadmin");
    }

    #[test]
    fn base_urls_keep_their_path() {
        let client = Client::new("https://gw.example.com/micro").expect("valid");
        assert_eq!(
            client.url("/v1/payments").expect("joins").as_str(),
            "https://gw.example.com/micro/v1/payments"
        );
        assert!(Client::new("ftp://x").is_err());
    }
}
