//! The rules PostgreSQL itself enforces, tried with hand-written SQL that
//! bypasses the service: each attempt must be refused and change nothing.

use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{TestLedger, assert_books_consistent, user};

/// A ledger with two of Ada's accounts and one committed transfer of 100.
async fn books() -> (TestLedger, PgPool, String, String, String) {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let cash = ledger.create_account(&ada, "cash", "asset", "usd").await;
    let sales = ledger.create_account(&ada, "sales", "revenue", "usd").await;
    let (status, txn) = ledger.transfer(&ada, "sale", &cash, &sales, 100).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{txn}");
    let txn = txn["id"].as_str().expect("id").to_owned();
    let pool = ledger.pool().await;
    (ledger, pool, cash, sales, txn)
}

/// Runs `statements` in one database transaction and returns the error that
/// stopped it (at a statement or at commit).
async fn refused(pool: &PgPool, statements: &[&str]) -> String {
    let mut tx = pool.begin().await.expect("begin");
    for statement in statements {
        if let Err(e) = sqlx::query(statement).execute(&mut *tx).await {
            return e.to_string();
        }
    }
    match tx.commit().await {
        Ok(()) => panic!("the database accepted {statements:?}"),
        Err(e) => e.to_string(),
    }
}

fn entry(id: &str, txn: &str, position: i32, account: &str, direction: &str, amount: i64) -> String {
    format!(
        "INSERT INTO entries (id, transaction_id, position, account_id, direction, amount, currency, entry_number, balance_after)
         VALUES ('{id}', '{txn}', {position}, '{account}', '{direction}', {amount}, 'usd', 1000 + {position}, 0)"
    )
}

fn transaction(id: &str, reverses: Option<&str>) -> String {
    transaction_of(id, reverses, 2)
}

fn transaction_of(id: &str, reverses: Option<&str>, entry_count: i32) -> String {
    let reverses = reverses.map(|r| format!("'{r}'")).unwrap_or("NULL".into());
    format!(
        "INSERT INTO transactions (id, poster, reference, request, reverses, entry_count)
         VALUES ('{id}', 'usr_ada', '{id}', '{{}}', {reverses}, {entry_count})"
    )
}

#[tokio::test]
async fn entries_and_transactions_cannot_be_changed_or_removed() {
    let (_ledger, pool, _, _, txn) = books().await;
    for statement in [
        "UPDATE entries SET amount = amount + 1".to_owned(),
        "DELETE FROM entries".to_owned(),
        "TRUNCATE entries".to_owned(),
        format!("UPDATE transactions SET description = 'edited' WHERE id = '{txn}'"),
        format!("DELETE FROM transactions WHERE id = '{txn}'"),
        "TRUNCATE transactions CASCADE".to_owned(),
        "DELETE FROM accounts".to_owned(),
        "UPDATE accounts SET currency = 'eur'".to_owned(),
        "UPDATE accounts SET owner_id = 'usr_mallory'".to_owned(),
        "UPDATE account_balances SET entry_count = 0".to_owned(),
        "UPDATE account_balances SET balance = balance + 1".to_owned(),
        "DELETE FROM account_balances".to_owned(),
        "TRUNCATE account_balances".to_owned(),
    ] {
        let error = refused(&pool, &[&statement]).await;
        assert!(error.contains("append-only"), "{statement}: {error}");
    }
    let (entries, amount): (i64, i64) = sqlx::query_as("SELECT count(*), sum(amount)::BIGINT FROM entries")
        .fetch_one(&pool)
        .await
        .expect("entries");
    assert_eq!((entries, amount), (2, 200));
    assert_books_consistent(&pool).await;
}

#[tokio::test]
async fn a_transaction_commits_only_whole_and_balanced() {
    let (_ledger, pool, cash, sales, txn) = books().await;
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                transaction("txn_unbalanced", None),
                entry("ent_u1", "txn_unbalanced", 0, &cash, "debit", 50),
                entry("ent_u2", "txn_unbalanced", 1, &sales, "credit", 40),
            ],
            "does not balance",
        ),
        (vec![transaction("txn_empty", None)], "has 0 of its 2 entries"),
        (
            vec![
                transaction("txn_single", None),
                entry("ent_s1", "txn_single", 0, &cash, "debit", 50),
            ],
            "has 1 of its 2 entries",
        ),
        (
            vec![
                transaction_of("txn_one", None, 1),
                entry("ent_o1", "txn_one", 0, &cash, "debit", 50),
            ],
            "transactions_entry_count",
        ),
        (
            // A balanced pair added to a committed transaction.
            vec![
                entry("ent_late1", &txn, 5, &cash, "debit", 10),
                entry("ent_late2", &txn, 6, &sales, "credit", 10),
            ],
            "which this database transaction did not create",
        ),
        (
            // Checking early does not open a window for more entries.
            vec![
                transaction("txn_early", None),
                entry("ent_e1", "txn_early", 0, &cash, "debit", 5),
                entry("ent_e2", "txn_early", 1, &sales, "credit", 5),
                "SET CONSTRAINTS ALL IMMEDIATE".to_owned(),
                entry("ent_e3", "txn_early", 2, &cash, "debit", 5),
            ],
            "position 2 is not one of them",
        ),
        (
            // Checked early, a transaction still missing an entry is refused.
            vec![
                transaction_of("txn_partial", None, 3),
                entry("ent_p1", "txn_partial", 0, &cash, "debit", 5),
                entry("ent_p2", "txn_partial", 1, &sales, "credit", 5),
                "SET CONSTRAINTS ALL IMMEDIATE".to_owned(),
            ],
            "has 2 of its 3 entries",
        ),
        (
            vec![
                transaction("txn_zero", None),
                entry("ent_z1", "txn_zero", 0, &cash, "debit", 0),
                entry("ent_z2", "txn_zero", 1, &sales, "credit", 0),
            ],
            "entries_amount_positive",
        ),
        (
            vec![
                transaction("txn_neg", None),
                entry("ent_n1", "txn_neg", 0, &cash, "debit", -5),
                entry("ent_n2", "txn_neg", 1, &sales, "credit", -5),
            ],
            "entries_amount_positive",
        ),
        (
            vec![
                transaction("txn_fx", None),
                entry("ent_f1", "txn_fx", 0, &cash, "debit", 5).replace("'usd'", "'eur'"),
                entry("ent_f2", "txn_fx", 1, &sales, "credit", 5).replace("'usd'", "'eur'"),
            ],
            "is in eur, but account",
        ),
        (
            vec![
                transaction("txn_ghost", None),
                entry("ent_g1", "txn_ghost", 0, "acct_ghost", "debit", 5),
                entry("ent_g2", "txn_ghost", 1, &sales, "credit", 5),
            ],
            "which does not exist",
        ),
    ];
    for (statements, expected) in cases {
        let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
        let error = refused(&pool, &statements).await;
        assert!(error.contains(expected), "{statements:?}: {error}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM transactions")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(count, 1);

    // The same statements, balanced, are accepted: the refusals above were for cause.
    let mut tx = pool.begin().await.expect("begin");
    for statement in [
        transaction("txn_manual", None),
        entry("ent_m1", "txn_manual", 0, &cash, "debit", 5),
        entry("ent_m2", "txn_manual", 1, &sales, "credit", 5),
    ] {
        sqlx::query(&statement).execute(&mut *tx).await.expect(&statement);
    }
    tx.commit().await.expect("a balanced transaction commits");
}

#[tokio::test]
async fn a_reversal_mirrors_its_original_and_happens_once() {
    let (ledger, pool, cash, sales, txn) = books().await;
    let not_a_mirror = [
        transaction("txn_rev_bad", Some(&txn)),
        entry("ent_r1", "txn_rev_bad", 0, &cash, "credit", 60),
        entry("ent_r2", "txn_rev_bad", 1, &sales, "debit", 60),
    ];
    let statements: Vec<&str> = not_a_mirror.iter().map(String::as_str).collect();
    let error = refused(&pool, &statements).await;
    assert!(error.contains("does not mirror"), "{error}");

    let (status, reversal) = ledger
        .post(
            &format!("/v1/ledger/transactions/{txn}/reverse"),
            &user("usr_ada"),
            json!({}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{reversal}");
    let second = [
        transaction("txn_rev_2", Some(&txn)),
        entry("ent_r3", "txn_rev_2", 0, &cash, "credit", 100),
        entry("ent_r4", "txn_rev_2", 1, &sales, "debit", 100),
    ];
    let statements: Vec<&str> = second.iter().map(String::as_str).collect();
    let error = refused(&pool, &statements).await;
    assert!(error.contains("transactions_reverses_key"), "{error}");

    let reversal = reversal["id"].as_str().expect("id");
    let undo = [
        transaction("txn_rev_rev", Some(reversal)),
        entry("ent_r5", "txn_rev_rev", 0, &cash, "debit", 100),
        entry("ent_r6", "txn_rev_rev", 1, &sales, "credit", 100),
    ];
    let statements: Vec<&str> = undo.iter().map(String::as_str).collect();
    let error = refused(&pool, &statements).await;
    assert!(error.contains("cannot be reversed"), "{error}");
    assert_books_consistent(&pool).await;
}

#[tokio::test]
async fn a_guarded_balance_cannot_be_set_below_zero() {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let wallet = ledger
        .create_account_with(
            &ada,
            json!({"name": "wallet", "type": "liability", "currency": "usd", "must_not_go_negative": true}),
        )
        .await;
    let pool = ledger.pool().await;
    let error = refused(
        &pool,
        &[&format!(
            "UPDATE account_balances SET balance = -1, version = version + 1 WHERE account_id = '{wallet}'"
        )],
    )
    .await;
    assert!(error.contains("account_balances_overdraft"), "{error}");
    // The copy of the account's facts that postings read cannot drift from the account.
    let error = refused(
        &pool,
        &[&format!(
            "UPDATE account_balances SET must_not_go_negative = false, version = version + 1
             WHERE account_id = '{wallet}'"
        )],
    )
    .await;
    assert!(error.contains("account_balances_account_fkey"), "{error}");
    let error = refused(
        &pool,
        &["INSERT INTO accounts (id, owner_id, name, type, currency) VALUES ('acct_y', 'usr_ada', 'y', 'asset', 'usd')"],
    )
    .await;
    assert!(error.contains("has no balance row"), "{error}");
    let error = refused(
        &pool,
        &["INSERT INTO accounts (id, owner_id, name, type, currency, must_not_go_negative) VALUES ('acct_x', 'usr_ada', 'x', 'revenue', 'usd', true)"],
    )
    .await;
    assert!(error.contains("accounts_guard_on_balance_sheet"), "{error}");
}

/// One call of `ledger_post_batch` is one commit, but each posting in it is
/// refused alone: an overdraft, and an unbalanced journal (caught by the
/// commit-time check, which the batch runs at the end of each posting),
/// leave the postings around them committed.
#[tokio::test]
async fn a_refused_posting_in_a_batch_leaves_the_others_posted() {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let (wallet, capital) = ledger.funded_wallet(&ada, 100).await;
    let pool = ledger.pool().await;

    // Spend 60, 60 (one too many), 40; then a journal whose debits exceed its credits.
    type Row = (i32, Option<String>, Option<String>, Option<String>);
    let mut tx = counting_pl_calls(&pool).await;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT ordinal, txn_id, error_code, error_constraint FROM ledger_post_batch(
             ARRAY['txn_b1', 'txn_b2', 'txn_b3', 'txn_b4'], ARRAY['usr_ada', 'usr_ada', 'usr_ada', 'usr_ada'],
             ARRAY['b1', 'b2', 'b3', 'b4'], ARRAY['{}', '{}', '{}', '{}']::JSONB[], ARRAY[NULL, NULL, NULL, NULL]::TEXT[],
             ARRAY['{}', '{}', '{}', '{}']::JSONB[], ARRAY[NULL, NULL, NULL, NULL]::TEXT[], ARRAY[2, 2, 2, 2],
             ARRAY['ent_b1', 'ent_b2', 'ent_b3', 'ent_b4', 'ent_b5', 'ent_b6', 'ent_b7', 'ent_b8'],
             ARRAY[$1, $2, $1, $2, $1, $2, $1, $1],
             ARRAY['debit', 'credit', 'debit', 'credit', 'debit', 'credit', 'debit', 'credit'],
             ARRAY[60, 60, 60, 60, 40, 40, 10, 9]::BIGINT[],
             ARRAY['usd', 'usd', 'usd', 'usd', 'usd', 'usd', 'usd', 'usd'])
         ORDER BY ordinal",
    )
    .bind(&capital)
    .bind(&wallet)
    .fetch_all(&mut *tx)
    .await
    .expect("the batch runs");
    assert!(
        one_by_one_calls(&mut tx).await > 0,
        "a batch with refusals is posted one posting at a time"
    );
    tx.commit().await.expect("the batch commits");
    assert_eq!(
        rows,
        vec![
            (1, Some("txn_b1".to_owned()), None, None),
            (
                2,
                None,
                Some("23514".to_owned()),
                Some("account_balances_overdraft".to_owned())
            ),
            (3, Some("txn_b3".to_owned()), None, None),
            (
                4,
                None,
                Some("23514".to_owned()),
                Some("transactions_balanced".to_owned())
            ),
        ]
    );
    let posted: Vec<String> =
        sqlx::query_scalar("SELECT reference FROM transactions WHERE reference LIKE 'b%' ORDER BY reference")
            .fetch_all(&pool)
            .await
            .expect("references");
    assert_eq!(posted, vec!["b1", "b3"]);
    assert_eq!(ledger.balance(&ada, &wallet).await, 0);
    assert_eq!(ledger.account(&ada, &wallet).await["entry_count"], 3);
    assert_books_consistent(&pool).await;
}

/// A batch the database can take whole is written as a set, without a call
/// of `ledger_post_each` (the posting-by-posting fallback), and its entries
/// are numbered and carry balances exactly as if its postings had been
/// posted one after another: an account twice in one posting, an account in
/// several postings, and a replay of a reference posted before the batch.
#[tokio::test]
async fn a_batch_written_as_a_set_numbers_entries_as_one_posting_after_another() {
    let ledger = TestLedger::start().await;
    let ada = user("usr_ada");
    let cash = ledger.create_account(&ada, "cash", "asset", "usd").await;
    let sales = ledger.create_account(&ada, "sales", "revenue", "usd").await;
    let bank = ledger.create_account(&ada, "bank", "asset", "usd").await;
    let (status, earlier) = ledger.transfer(&ada, "r0", &cash, &sales, 1).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{earlier}");
    let pool = ledger.pool().await;

    type Row = (i32, Option<String>, Option<bool>, Option<String>);
    let mut tx = counting_pl_calls(&pool).await;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT ordinal, txn_id, was_created, error_code FROM ledger_post_batch(
             ARRAY['txn_r0_again', 'txn_s1', 'txn_s2', 'txn_s3'], ARRAY['usr_ada', 'usr_ada', 'usr_ada', 'usr_ada'],
             ARRAY['r0', 's1', 's2', 's3'], ARRAY[$4::JSONB, '{}', '{}', '{}'], ARRAY[NULL, NULL, NULL, NULL]::TEXT[],
             ARRAY['{}', '{}', '{}', '{}']::JSONB[], ARRAY[NULL, NULL, NULL, NULL]::TEXT[], ARRAY[2, 2, 2, 3],
             ARRAY['ent_r0a', 'ent_r0b', 'ent_s1a', 'ent_s1b', 'ent_s2a', 'ent_s2b', 'ent_s3a', 'ent_s3b', 'ent_s3c'],
             ARRAY[$1, $2, $1, $2, $3, $1, $1, $1, $2],
             ARRAY['debit', 'credit', 'debit', 'credit', 'debit', 'credit', 'debit', 'debit', 'credit'],
             ARRAY[1, 1, 100, 100, 30, 30, 10, 5, 15]::BIGINT[],
             ARRAY['usd', 'usd', 'usd', 'usd', 'usd', 'usd', 'usd', 'usd', 'usd'])
         ORDER BY ordinal",
    )
    .bind(&cash)
    .bind(&sales)
    .bind(&bank)
    .bind(json!({}).to_string())
    .fetch_all(&mut *tx)
    .await
    .expect("the batch runs");
    assert_eq!(one_by_one_calls(&mut tx).await, 0, "written as a set");
    tx.commit().await.expect("the batch commits");
    let earlier_id = earlier["id"].as_str().expect("id").to_owned();
    assert_eq!(
        rows,
        vec![
            (1, Some(earlier_id), Some(false), None),
            (2, Some("txn_s1".to_owned()), Some(true), None),
            (3, Some("txn_s2".to_owned()), Some(true), None),
            (4, Some("txn_s3".to_owned()), Some(true), None),
        ]
    );

    type EntryRow = (String, String, i16, i64, i64);
    let entries: Vec<EntryRow> = sqlx::query_as(
        "SELECT id, transaction_id, position, entry_number, balance_after FROM entries
          WHERE transaction_id LIKE 'txn_s%' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("entries");
    let entry = |id: &str, txn: &str, position: i16, number: i64, after: i64| {
        (id.to_owned(), txn.to_owned(), position, number, after)
    };
    assert_eq!(
        entries,
        vec![
            entry("ent_s1a", "txn_s1", 0, 2, 101),
            entry("ent_s1b", "txn_s1", 1, 2, 101),
            entry("ent_s2a", "txn_s2", 0, 1, 30),
            entry("ent_s2b", "txn_s2", 1, 3, 71),
            entry("ent_s3a", "txn_s3", 0, 4, 81),
            entry("ent_s3b", "txn_s3", 1, 5, 86),
            entry("ent_s3c", "txn_s3", 2, 3, 116),
        ]
    );
    type BalanceRow = (i64, i64, i64);
    let balance = |account: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, BalanceRow>(
                "SELECT balance, entry_count, version FROM account_balances WHERE account_id = $1",
            )
            .bind(account)
            .fetch_one(&pool)
            .await
            .expect("balance")
        }
    };
    assert_eq!(balance(cash).await, (86, 5, 4));
    assert_eq!(balance(sales).await, (116, 3, 3));
    assert_eq!(balance(bank).await, (30, 1, 1));
    assert_books_consistent(&pool).await;
}

/// A transaction whose PL/pgSQL function calls are counted, for
/// [`one_by_one_calls`].
async fn counting_pl_calls(pool: &PgPool) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("SET LOCAL track_functions = 'pl'")
        .execute(&mut *tx)
        .await
        .expect("count function calls");
    tx
}

/// How many times this transaction fell back to posting a batch one posting
/// at a time.
async fn one_by_one_calls(tx: &mut sqlx::Transaction<'static, sqlx::Postgres>) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(calls), 0)::BIGINT FROM pg_stat_xact_user_functions WHERE funcname = 'ledger_post_each'",
    )
    .fetch_one(&mut **tx)
    .await
    .expect("function calls")
}
