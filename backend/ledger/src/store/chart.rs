//! The chart of accounts payments posts to. Per currency, the platform has a
//! clearing account (an asset: money collected from cards, not yet paid out)
//! and a fee revenue account; per merchant and currency, a balance account (a
//! liability: what the platform owes the merchant). Each is created on first
//! use, race-free through a unique index, and remembered: an account's id
//! never changes once it exists.

use std::collections::HashMap;
use std::sync::Mutex;

use contract::ledger::AccountType;
use contract::money::Currency;
use sqlx::PgPool;

/// Past this many remembered ids the memory is dropped and refilled on demand.
const MAX_REMEMBERED: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    MerchantBalance,
    PlatformClearing,
    PlatformFeeRevenue,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::MerchantBalance => "merchant_balance",
            Self::PlatformClearing => "platform_clearing",
            Self::PlatformFeeRevenue => "platform_fee_revenue",
        }
    }

    fn account_name(&self) -> &'static str {
        match self {
            Self::MerchantBalance => "balance",
            Self::PlatformClearing => "clearing",
            Self::PlatformFeeRevenue => "fee revenue",
        }
    }

    fn account_type(&self) -> AccountType {
        match self {
            Self::MerchantBalance => AccountType::Liability,
            Self::PlatformClearing => AccountType::Asset,
            Self::PlatformFeeRevenue => AccountType::Revenue,
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [
            Self::MerchantBalance,
            Self::PlatformClearing,
            Self::PlatformFeeRevenue,
        ]
        .into_iter()
        .find(|role| role.as_str() == name)
    }
}

/// The three accounts a payment or refund in one currency touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentAccounts {
    pub merchant_balance: String,
    pub clearing: String,
    pub fee_revenue: String,
}

type Key = (Option<String>, Currency, Role);

#[derive(Debug, Default)]
pub struct Chart {
    known: Mutex<HashMap<Key, String>>,
}

impl Chart {
    pub async fn payment_accounts(
        &self,
        db: &PgPool,
        merchant_id: &str,
        currency: Currency,
    ) -> Result<PaymentAccounts, sqlx::Error> {
        if let Some(accounts) = self.remembered(merchant_id, currency) {
            return Ok(accounts);
        }
        let wanted = [
            (Some(merchant_id.to_owned()), Role::MerchantBalance),
            (None, Role::PlatformClearing),
            (None, Role::PlatformFeeRevenue),
        ];
        let ids: Vec<String> = wanted
            .iter()
            .map(|_| platform::ids::new_id(contract::ids::ACCOUNT))
            .collect();
        let owners: Vec<Option<String>> = wanted.iter().map(|(owner, _)| owner.clone()).collect();
        let names: Vec<&str> = wanted.iter().map(|(_, role)| role.account_name()).collect();
        let types: Vec<&str> = wanted
            .iter()
            .map(|(_, role)| role.account_type().as_str())
            .collect();
        let roles: Vec<&str> = wanted.iter().map(|(_, role)| role.as_str()).collect();
        sqlx::query(
            "WITH created AS (
                 INSERT INTO accounts (id, owner_id, name, type, currency, system_role)
                 SELECT id, owner_id, name, type, $5, system_role
                   FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $6::TEXT[])
                        AS wanted (id, owner_id, name, type, system_role)
                 ON CONFLICT (owner_id, currency, system_role) WHERE system_role IS NOT NULL DO NOTHING
                 RETURNING id, type, must_not_go_negative
             )
             INSERT INTO account_balances (account_id, type, must_not_go_negative)
             SELECT id, type, must_not_go_negative FROM created",
        )
        .bind(&ids)
        .bind(&owners)
        .bind(&names)
        .bind(&types)
        .bind(currency.code())
        .bind(&roles)
        .execute(db)
        .await?;
        let rows: Vec<(String, Option<String>, String)> = sqlx::query_as(
            "SELECT id, owner_id, system_role FROM accounts
             WHERE currency = $1 AND system_role IS NOT NULL AND (owner_id IS NULL OR owner_id = $2)",
        )
        .bind(currency.code())
        .bind(merchant_id)
        .fetch_all(db)
        .await?;
        {
            let mut known = self.lock();
            if known.len() + rows.len() > MAX_REMEMBERED {
                known.clear();
            }
            for (id, owner, role) in rows {
                if let Some(role) = Role::parse(&role) {
                    known.insert((owner, currency, role), id);
                }
            }
        }
        self.remembered(merchant_id, currency)
            .ok_or_else(|| sqlx::Error::RowNotFound)
    }

    fn remembered(&self, merchant_id: &str, currency: Currency) -> Option<PaymentAccounts> {
        let known = self.lock();
        let get = |owner: Option<&str>, role| known.get(&(owner.map(str::to_owned), currency, role)).cloned();
        Some(PaymentAccounts {
            merchant_balance: get(Some(merchant_id), Role::MerchantBalance)?,
            clearing: get(None, Role::PlatformClearing)?,
            fee_revenue: get(None, Role::PlatformFeeRevenue)?,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, String>> {
        // The map holds only ids that exist; a panic elsewhere cannot leave it wrong.
        self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
