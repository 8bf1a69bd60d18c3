//! The ledger's wire types: accounts with their balances, transactions and
//! their entries, and what payments posts for a payment or a refund.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The id prefix of an entry (one leg of a transaction).
pub const ENTRY_ID_PREFIX: &str = "ent";

/// Free-form string pairs a caller attaches to an object; kept sorted by key
/// so that the same object always renders to the same bytes.
pub type Metadata = BTreeMap<String, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    Asset,
    Liability,
    Equity,
    Revenue,
    Expense,
}

impl AccountType {
    pub const ALL: [AccountType; 5] = [
        Self::Asset,
        Self::Liability,
        Self::Equity,
        Self::Revenue,
        Self::Expense,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Asset => "asset",
            Self::Liability => "liability",
            Self::Equity => "equity",
            Self::Revenue => "revenue",
            Self::Expense => "expense",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The side on which the account's balance grows: debits for assets and
    /// expenses, credits for liabilities, equity and revenue.
    pub fn normal_side(&self) -> Direction {
        match self {
            Self::Asset | Self::Expense => Direction::Debit,
            Self::Liability | Self::Equity | Self::Revenue => Direction::Credit,
        }
    }

    /// What an entry of `amount` on `direction` does to the account's balance.
    pub fn balance_change(&self, direction: Direction, amount: i64) -> i64 {
        if direction == self.normal_side() {
            amount
        } else {
            -amount
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Debit,
    Credit,
}

impl Direction {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Debit => "debit",
            Self::Credit => "credit",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "debit" => Some(Self::Debit),
            "credit" => Some(Self::Credit),
            _ => None,
        }
    }

    pub fn opposite(&self) -> Self {
        match self {
            Self::Debit => Self::Credit,
            Self::Credit => Self::Debit,
        }
    }
}

/// `{id: "acct_...", object: "ledger_account", ...}`. `balance` is signed on
/// the account's normal side: debits - credits for assets and expenses,
/// credits - debits for liabilities, equity and revenue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Account {
    pub id: String,
    pub object: String,
    /// The user the account belongs to; null for the platform's own accounts.
    pub owner_id: Option<String>,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AccountType,
    pub currency: String,
    pub balance: i64,
    pub entry_count: i64,
    /// Increases by one with every transaction that touches the account.
    pub version: i64,
    pub must_not_go_negative: bool,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
}

impl Account {
    pub const OBJECT: &'static str = "ledger_account";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Request bodies refuse fields they do not know, as payments' do: a
// misspelt `descripton` or an `entries[].currency` the ledger does not take
// is an error, not a posting made without it.
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AccountType,
    /// A supported ISO 4217 code, lower case.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^(aud|bhd|cad|chf|dkk|eur|gbp|jpy|krw|kwd|nok|sek|usd)$")
    )]
    pub currency: String,
    /// Refuse any posting that would take the balance below zero (assets and
    /// liabilities only).
    #[serde(default)]
    pub must_not_go_negative: bool,
    #[serde(default)]
    pub metadata: Metadata,
}

/// One leg of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entry {
    pub id: String,
    pub account_id: String,
    pub direction: Direction,
    pub amount: i64,
    pub currency: String,
}

/// `{id: "txn_...", object: "ledger_transaction", ...}`: balanced per currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transaction {
    pub id: String,
    pub object: String,
    /// The poster's idempotency reference: a second posting with it is the same posting.
    pub reference: String,
    pub description: Option<String>,
    pub metadata: Metadata,
    /// The transaction this one reverses.
    pub reverses: Option<String>,
    pub posted_at: DateTime<Utc>,
    pub entries: Vec<Entry>,
}

impl Transaction {
    pub const OBJECT: &'static str = "ledger_transaction";
}

/// An entry as an account's statement shows it, with the balance it left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountEntry {
    pub id: String,
    pub object: String,
    pub transaction_id: String,
    pub account_id: String,
    pub direction: Direction,
    pub amount: i64,
    pub currency: String,
    /// The account's balance right after this entry.
    pub balance_after: i64,
    pub posted_at: DateTime<Utc>,
    pub description: Option<String>,
}

impl AccountEntry {
    pub const OBJECT: &'static str = "ledger_entry";
}

/// A manual journal entry between the caller's own accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PostTransactionRequest {
    /// Idempotency reference, unique per owner.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub reference: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    /// Debits and credits that balance per currency.
    #[cfg_attr(feature = "openapi", schema(min_items = 2))]
    pub entries: Vec<PostEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PostEntry {
    pub account_id: String,
    pub direction: Direction,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000_000_000_i64))]
    pub amount: i64,
}

/// The body of `POST /v1/ledger/transactions/{id}/reverse`; may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReverseTransactionRequest {
    /// Defaults to `reversal:<transaction id>`.
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// The error codes of the ledger's routes, beside the shared ones in [`crate::error::codes`].
pub mod codes {
    pub const INVALID_AMOUNT: &str = "invalid_amount";
    pub const INVALID_REFERENCE: &str = "invalid_reference";
    pub const INVALID_NAME: &str = "invalid_name";
    pub const INVALID_DESCRIPTION: &str = "invalid_description";
    pub const INVALID_METADATA: &str = "invalid_metadata";
    pub const INVALID_CURRENCY: &str = "invalid_currency";
    pub const INVALID_MERCHANT_ID: &str = "invalid_merchant_id";
    pub const INVALID_FEE: &str = "invalid_fee";
    pub const INVALID_OVERDRAFT_GUARD: &str = "invalid_overdraft_guard";
    pub const INVALID_ENTRIES: &str = "invalid_entries";
    pub const TRANSACTION_UNBALANCED: &str = "transaction_unbalanced";
    /// A batch of postings with none, or more than a call may carry.
    pub const INVALID_BATCH: &str = "invalid_batch";
    pub const INVALID_CURSOR: &str = "invalid_cursor";
    /// An account of the payments chart, which moves only with payments and refunds.
    pub const ACCOUNT_NOT_POSTABLE: &str = "account_not_postable";
    /// A reference already used for a different posting.
    pub const REFERENCE_REUSED: &str = "reference_reused";
    pub const ALREADY_REVERSED: &str = "already_reversed";
    pub const NOT_REVERSIBLE: &str = "not_reversible";
    pub const REVERSAL_NOT_REVERSIBLE: &str = "reversal_not_reversible";
    pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
    /// Postings kept conflicting; retry with the same reference.
    pub const LEDGER_BUSY: &str = "ledger_busy";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balances_grow_on_the_normal_side() {
        assert_eq!(AccountType::Asset.balance_change(Direction::Debit, 5), 5);
        assert_eq!(AccountType::Asset.balance_change(Direction::Credit, 5), -5);
        assert_eq!(AccountType::Liability.balance_change(Direction::Credit, 5), 5);
        assert_eq!(AccountType::Revenue.balance_change(Direction::Debit, 5), -5);
        assert_eq!(AccountType::Expense.balance_change(Direction::Debit, 5), 5);
        assert_eq!(AccountType::Equity.balance_change(Direction::Credit, 5), 5);
    }

    #[test]
    fn wire_names_are_snake_case() {
        assert_eq!(
            serde_json::from_str::<Direction>("\"debit\"").expect("debit"),
            Direction::Debit
        );
        for kind in AccountType::ALL {
            assert_eq!(AccountType::parse(kind.as_str()), Some(kind));
        }
    }
}
