//! The invariants, read straight from the database after the run, and the
//! comparison of the books with what the clients saw accepted.

use std::collections::{BTreeMap, HashMap};

use contract::ledger::AccountType;
use sqlx::PgPool;

use super::ModelTransaction;

/// Offending rows a failed check names; the rest are only counted.
const EXAMPLES: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub offending: u64,
    pub examples: Vec<String>,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.offending == 0
    }

    fn new(name: &'static str, offences: Vec<String>) -> Self {
        Self {
            name,
            offending: offences.len() as u64,
            examples: offences.into_iter().take(EXAMPLES).collect(),
        }
    }
}

/// Each check is one query returning the rows that break it.
const SQL_CHECKS: [(&str, &str); 8] = [
    (
        "every balance and entry count equals its entries (signed on the normal side)",
        "SELECT b.account_id, b.balance, coalesce(s.total, 0)::BIGINT, b.entry_count, coalesce(s.n, 0)
         FROM account_balances b LEFT JOIN (
             SELECT e.account_id, count(*) AS n,
                    sum(CASE WHEN (a.type IN ('asset', 'expense')) = (e.direction = 'debit')
                             THEN e.amount ELSE -e.amount END) AS total
             FROM entries e JOIN accounts a ON a.id = e.account_id GROUP BY e.account_id
         ) s ON s.account_id = b.account_id
         WHERE b.balance <> coalesce(s.total, 0) OR b.entry_count <> coalesce(s.n, 0)
         UNION ALL
         SELECT a.id, 0, 0, 0, 0 FROM accounts a
         WHERE NOT EXISTS (SELECT 1 FROM account_balances b WHERE b.account_id = a.id)",
    ),
    (
        "every statement runs 1, 2, 3, ... with each balance_after the one before plus the entry",
        "SELECT account_id, entry_number, balance_after, before + change FROM (
             SELECT e.account_id, e.entry_number, e.balance_after,
                    lag(e.balance_after, 1, 0::BIGINT) OVER w AS before,
                    row_number() OVER w AS expected_number,
                    CASE WHEN (a.type IN ('asset', 'expense')) = (e.direction = 'debit')
                         THEN e.amount ELSE -e.amount END AS change
             FROM entries e JOIN accounts a ON a.id = e.account_id
             WINDOW w AS (PARTITION BY e.account_id ORDER BY e.entry_number)
         ) s WHERE balance_after <> before + change OR entry_number <> expected_number",
    ),
    (
        "every version counts the transactions that touched the account",
        "SELECT b.account_id, b.version, coalesce(s.n, 0) FROM account_balances b LEFT JOIN (
             SELECT account_id, count(DISTINCT transaction_id) AS n FROM entries GROUP BY account_id
         ) s ON s.account_id = b.account_id
         WHERE b.version <> coalesce(s.n, 0)",
    ),
    (
        "every transaction has its declared entries (at least two) and balances per currency",
        "SELECT t.id, t.entry_count::BIGINT, count(e.id), NULL::TEXT FROM transactions t
         LEFT JOIN entries e ON e.transaction_id = t.id
         GROUP BY t.id, t.entry_count HAVING count(e.id) <> t.entry_count OR count(e.id) < 2
         UNION ALL
         SELECT transaction_id, 0, 0, currency FROM entries GROUP BY transaction_id, currency
         HAVING sum(CASE direction WHEN 'debit' THEN amount ELSE -amount END) <> 0",
    ),
    (
        "the trial balance is zero in each currency",
        "SELECT currency, sum(CASE direction WHEN 'debit' THEN amount ELSE -amount END)::BIGINT
         FROM entries GROUP BY currency
         HAVING sum(CASE direction WHEN 'debit' THEN amount ELSE -amount END) <> 0",
    ),
    (
        "no (poster, reference) is recorded twice",
        "SELECT poster, reference, count(*) FROM transactions GROUP BY poster, reference HAVING count(*) > 1",
    ),
    (
        "no guarded account is or ever was negative",
        "SELECT account_id, balance, 0::BIGINT FROM account_balances
         WHERE must_not_go_negative AND balance < 0
         UNION ALL
         SELECT e.account_id, e.balance_after, e.entry_number FROM entries e
         JOIN accounts a ON a.id = e.account_id
         WHERE a.must_not_go_negative AND e.balance_after < 0",
    ),
    (
        "every reversal mirrors its original, by the same poster, once; no reversal is reversed",
        "SELECT r.id, r.reverses FROM transactions r LEFT JOIN transactions o ON o.id = r.reverses
         WHERE r.reverses IS NOT NULL AND (o.id IS NULL OR o.reverses IS NOT NULL OR o.poster <> r.poster
             OR EXISTS (
                 (SELECT account_id, direction, amount, currency FROM entries WHERE transaction_id = r.id
                  EXCEPT ALL
                  SELECT account_id, CASE direction WHEN 'debit' THEN 'credit' ELSE 'debit' END, amount, currency
                  FROM entries WHERE transaction_id = r.reverses)
                 UNION ALL
                 (SELECT account_id, CASE direction WHEN 'debit' THEN 'credit' ELSE 'debit' END, amount, currency
                  FROM entries WHERE transaction_id = r.reverses
                  EXCEPT ALL
                  SELECT account_id, direction, amount, currency FROM entries WHERE transaction_id = r.id)))
         UNION ALL
         SELECT reverses, count(*)::TEXT FROM transactions WHERE reverses IS NOT NULL
         GROUP BY reverses HAVING count(*) > 1",
    ),
];

pub(super) async fn run(
    db: &PgPool,
    accepted: &[ModelTransaction],
    kinds: &HashMap<String, AccountType>,
) -> Result<Vec<Check>, sqlx::Error> {
    let mut checks = book_checks(db).await?;
    checks.push(transactions_as_accepted(db, accepted).await?);
    checks.push(balances_as_accepted(db, accepted, kinds).await?);
    Ok(checks)
}

/// The rules the books obey whatever was posted, each read from the
/// database itself; the API tests assert them after their runs too.
pub async fn book_checks(db: &PgPool) -> Result<Vec<Check>, sqlx::Error> {
    let mut checks = Vec::with_capacity(SQL_CHECKS.len());
    for (name, sql) in SQL_CHECKS {
        let rows = sqlx::query(sql).fetch_all(db).await?;
        checks.push(Check::new(name, rows.iter().map(describe_row).collect()));
    }
    Ok(checks)
}

/// A row's columns as text, whatever their types.
fn describe_row(row: &sqlx::postgres::PgRow) -> String {
    use sqlx::Row;
    let columns: Vec<String> = (0..row.len())
        .map(|i| {
            let text = row
                .try_get::<Option<String>, _>(i)
                .or_else(|_| row.try_get::<Option<i64>, _>(i).map(|n| n.map(|n| n.to_string())));
            match text {
                Ok(Some(text)) => text,
                Ok(None) => "null".to_owned(),
                Err(_) => "?".to_owned(),
            }
        })
        .collect();
    format!("({})", columns.join(", "))
}

type Legs = Vec<(String, String, i64)>;

/// The database holds exactly the transactions the clients saw accepted:
/// the same ids, posters, references, originals and legs.
async fn transactions_as_accepted(db: &PgPool, accepted: &[ModelTransaction]) -> Result<Check, sqlx::Error> {
    let stored: Vec<(String, String, String, Option<String>)> =
        sqlx::query_as("SELECT id, poster, reference, reverses FROM transactions")
            .fetch_all(db)
            .await?;
    let entries: Vec<(String, String, String, i64)> =
        sqlx::query_as("SELECT transaction_id, account_id, direction, amount FROM entries")
            .fetch_all(db)
            .await?;
    let mut legs: HashMap<String, Legs> = HashMap::new();
    for (transaction, account, direction, amount) in entries {
        legs.entry(transaction)
            .or_default()
            .push((account, direction, amount));
    }
    let mut stored: HashMap<String, (String, String, Option<String>, Legs)> = stored
        .into_iter()
        .map(|(id, poster, reference, reverses)| {
            let mut legs = legs.remove(&id).unwrap_or_default();
            legs.sort();
            (id, (poster, reference, reverses, legs))
        })
        .collect();
    let mut offences = Vec::new();
    for model in accepted {
        let mut expected: Legs = model
            .legs
            .iter()
            .map(|(account, direction, amount)| (account.clone(), direction.as_str().to_owned(), *amount))
            .collect();
        expected.sort();
        match stored.remove(&model.id) {
            None => offences.push(format!(
                "accepted {} ({}) is not in the database",
                model.id, model.reference
            )),
            Some((poster, reference, reverses, legs)) => {
                if (&poster, &reference, &reverses, &legs)
                    != (&model.poster, &model.reference, &model.reverses, &expected)
                {
                    offences.push(format!(
                        "{} is stored as {poster} {reference} reversing {reverses:?} with {legs:?}, \
                         but was accepted as {} {} reversing {:?} with {expected:?}",
                        model.id, model.poster, model.reference, model.reverses
                    ));
                }
            }
        }
    }
    for (id, (poster, reference, ..)) in stored {
        offences.push(format!(
            "{id} ({poster} {reference}) is in the database, but no client saw it accepted"
        ));
    }
    Ok(Check::new(
        "the database holds exactly the transactions the clients saw accepted",
        offences,
    ))
}

/// Each account's balance and entry count are what the accepted transactions make them.
async fn balances_as_accepted(
    db: &PgPool,
    accepted: &[ModelTransaction],
    kinds: &HashMap<String, AccountType>,
) -> Result<Check, sqlx::Error> {
    let mut expected: BTreeMap<&str, (i64, i64)> = kinds.keys().map(|id| (id.as_str(), (0, 0))).collect();
    let mut offences = Vec::new();
    for (account, direction, amount) in accepted.iter().flat_map(|t| &t.legs) {
        let Some(kind) = kinds.get(account) else {
            offences.push(format!("a leg names {account}, which the soak did not create"));
            continue;
        };
        let (balance, count) = expected.entry(account).or_default();
        *balance += kind.balance_change(*direction, *amount);
        *count += 1;
    }
    let stored: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT account_id, balance, entry_count FROM account_balances")
            .fetch_all(db)
            .await?;
    for (account, balance, count) in &stored {
        let wanted = expected.remove(account.as_str()).unwrap_or_default();
        if (*balance, *count) != wanted {
            offences.push(format!(
                "{account}: balance {balance} over {count} entries, the accepted postings make {} over {}",
                wanted.0, wanted.1
            ));
        }
    }
    for account in expected.keys() {
        offences.push(format!("{account} has no balance in the database"));
    }
    Ok(Check::new(
        "every balance is what the accepted postings make it",
        offences,
    ))
}
