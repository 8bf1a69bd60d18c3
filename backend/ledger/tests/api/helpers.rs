use ledger::LedgerSettings;
use platform::internal_token::{Caller, Service};
use platform::testing::{ServiceDatabase, TestService};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

pub struct TestLedger(TestService<LedgerSettings>);

impl std::ops::Deref for TestLedger {
    type Target = TestService<LedgerSettings>;
    fn deref(&self) -> &TestService<LedgerSettings> {
        &self.0
    }
}

impl TestLedger {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut LedgerSettings)) -> Self {
        Self(TestService::start(ServiceDatabase::Ledger, adjust, ledger::build).await)
    }

    pub async fn create_account(&self, owner: &Caller, name: &str, kind: &str, currency: &str) -> String {
        self.create_account_with(owner, json!({"name": name, "type": kind, "currency": currency}))
            .await
    }

    pub async fn create_account_with(&self, owner: &Caller, body: Value) -> String {
        let (status, body) = self.post("/v1/ledger/accounts", owner, body).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("an account id").to_owned()
    }

    /// A guarded wallet (`must_not_go_negative`) funded with `amount` from a
    /// capital account: answers the wallet and the capital account.
    pub async fn funded_wallet(&self, owner: &Caller, amount: i64) -> (String, String) {
        let wallet = self
            .create_account_with(
                owner,
                json!({"name": "wallet", "type": "asset", "currency": "usd", "must_not_go_negative": true}),
            )
            .await;
        let capital = self.create_account(owner, "capital", "equity", "usd").await;
        let (status, body) = self.transfer(owner, "fund", &wallet, &capital, amount).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (wallet, capital)
    }

    pub async fn account(&self, owner: &Caller, id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/ledger/accounts/{id}"), owner).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn balance(&self, owner: &Caller, id: &str) -> i64 {
        self.account(owner, id).await["balance"]
            .as_i64()
            .expect("a balance")
    }

    /// A two-legged manual posting: debit `to`, credit `from`.
    pub async fn transfer(
        &self,
        owner: &Caller,
        reference: &str,
        to: &str,
        from: &str,
        amount: i64,
    ) -> (StatusCode, Value) {
        self.post(
            "/v1/ledger/transactions",
            owner,
            json!({
                "reference": reference,
                "entries": [
                    {"account_id": to, "direction": "debit", "amount": amount},
                    {"account_id": from, "direction": "credit", "amount": amount},
                ],
            }),
        )
        .await
    }

    pub async fn trial_balance(&self) -> Value {
        let (status, body) = self.get("/internal/trial-balance", &ops()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn payment_posting(&self, body: Value) -> (StatusCode, Value) {
        self.post("/internal/payment-postings", &payments(), body).await
    }

    /// Whether exactly `count` postings come to wait in the group commit's
    /// queue within 10 s (its `ledger_postings_waiting` gauge): how a test
    /// knows requests are queued behind a writer it has blocked.
    pub async fn postings_come_to_wait(&self, count: usize) -> bool {
        platform::testing::eventually(std::time::Duration::from_secs(10), || async {
            (self.metric("ledger_postings_waiting").await == count as f64).then_some(())
        })
        .await
        .is_some()
    }
}

/// The fee payments stamps with its default schedule on a 2-decimal
/// currency: 2.9% rounded half to even, plus 30, at most the amount. The
/// ledger only checks the arithmetic; tests use realistic numbers.
pub fn stamped_fee(amount: i64) -> i64 {
    let (quotient, remainder) = (amount * 290 / 10_000, amount * 290 % 10_000);
    let rounded = if 2 * remainder > 10_000 || (2 * remainder == 10_000 && quotient % 2 == 1) {
        quotient + 1
    } else {
        quotient
    };
    (rounded + 30).min(amount)
}

/// A payment posting as payments sends it, with its stamped fee and net.
pub fn payment_posting(reference: &str, merchant_id: &str, amount: i64, currency: &str) -> Value {
    let fee = stamped_fee(amount);
    json!({
        "reference": reference, "merchant_id": merchant_id, "kind": "payment",
        "amount": amount, "currency": currency, "fee": fee, "net": amount - fee,
    })
}

/// A user calling with an API key, as on every `/v1/ledger` route.
pub fn user(id: &str) -> Caller {
    Caller::api_key(id, format!("key_{}", id.trim_start_matches("usr_")))
}

pub fn payments() -> Caller {
    Caller::Service(Service::Payments)
}

pub fn ops() -> Caller {
    Caller::Service(Service::Ops)
}

pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// Checks the books from the database itself (the soak's checks): every
/// account's balance and entry count equal what its entries say, its
/// statement runs without a gap, and debits equal credits per currency.
pub async fn assert_books_consistent(pool: &PgPool) {
    let failed: Vec<_> = ledger::soak::book_checks(pool)
        .await
        .expect("read the books")
        .into_iter()
        .filter(|check| !check.passed())
        .collect();
    assert!(failed.is_empty(), "the books break: {failed:#?}");
}

/// Every line of the trial balance has equal debits and credits.
pub fn assert_trial_balance_zero(lines: &Value) {
    for line in lines.as_array().expect("a list of lines") {
        assert_eq!(line["debits"], line["credits"], "{line}");
    }
}
