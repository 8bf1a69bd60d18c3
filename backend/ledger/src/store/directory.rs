//! What a posting needs to know about an account before it is applied: its
//! owner, currency and whether the payments chart owns it. None of these ever
//! change (the database refuses it), so once read they are remembered, and a
//! posting to known accounts costs a single round trip to PostgreSQL.

use std::collections::HashMap;
use std::sync::Mutex;

use sqlx::PgPool;

/// Past this many remembered accounts the memory is dropped and refilled on demand.
const MAX_REMEMBERED: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub owner_id: Option<String>,
    pub currency: String,
    pub system_role: Option<String>,
}

#[derive(Debug, Default)]
pub struct Directory {
    known: Mutex<HashMap<String, AccountInfo>>,
}

impl Directory {
    /// The accounts among `ids` that exist.
    pub async fn lookup(
        &self,
        db: &PgPool,
        ids: &[&str],
    ) -> Result<HashMap<String, AccountInfo>, sqlx::Error> {
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let known = self.lock();
            for id in ids {
                match known.get(*id) {
                    Some(info) => {
                        found.insert((*id).to_owned(), info.clone());
                    }
                    None => missing.push(*id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let rows: Vec<(String, Option<String>, String, Option<String>)> =
            sqlx::query_as("SELECT id, owner_id, currency, system_role FROM accounts WHERE id = ANY($1)")
                .bind(&missing)
                .fetch_all(db)
                .await?;
        let mut known = self.lock();
        if known.len() + rows.len() > MAX_REMEMBERED {
            known.clear();
        }
        for (id, owner_id, currency, system_role) in rows {
            let info = AccountInfo {
                owner_id,
                currency,
                system_role,
            };
            known.insert(id.clone(), info.clone());
            found.insert(id, info);
        }
        Ok(found)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, AccountInfo>> {
        // The map holds only facts that never change; a panic elsewhere cannot leave it wrong.
        self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
