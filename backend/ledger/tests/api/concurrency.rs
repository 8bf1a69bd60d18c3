//! Many callers at once, through the real HTTP router: nothing lost, nothing
//! doubled, no deadlock or conflict surfacing to a caller, and the books
//! consistent afterwards.

use std::collections::HashMap;
use std::sync::Arc;

use contract::ledger::{AccountType, Direction};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestLedger, assert_books_consistent, assert_trial_balance_zero, stamped_fee, user};

const TASKS: usize = 16;

#[derive(Debug, Clone)]
struct Posted {
    reference: String,
    to: usize,
    from: usize,
    amount: i64,
    transaction_id: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transfers_lose_nothing_and_double_nothing() {
    const TRANSFERS_PER_TASK: usize = 200;
    let ledger = Arc::new(TestLedger::start().await);
    let ada = user("usr_ada");
    // A handful of accounts, so that nearly every posting contends with others.
    let chart = [
        ("cash", AccountType::Asset, "usd"),
        ("bank", AccountType::Asset, "usd"),
        ("loan", AccountType::Liability, "usd"),
        ("capital", AccountType::Equity, "usd"),
        ("sales", AccountType::Revenue, "usd"),
        ("rent", AccountType::Expense, "usd"),
        ("euro cash", AccountType::Asset, "eur"),
        ("euro sales", AccountType::Revenue, "eur"),
    ];
    let mut ids = Vec::new();
    for (name, kind, currency) in chart {
        ids.push(ledger.create_account(&ada, name, kind.as_str(), currency).await);
    }
    let ids = Arc::new(ids);

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let ledger = ledger.clone();
        let ids = ids.clone();
        let ada = ada.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(task as u64);
            let mut posted: Vec<Posted> = Vec::new();
            for i in 0..TRANSFERS_PER_TASK {
                // Now and then, resend an earlier posting as a client retry would.
                if i % 10 == 9 {
                    let earlier = posted[rng.gen_range(0..posted.len())].clone();
                    let (status, body) = ledger
                        .transfer(
                            &ada,
                            &earlier.reference,
                            &ids[earlier.to],
                            &ids[earlier.from],
                            earlier.amount,
                        )
                        .await;
                    assert_eq!(status, StatusCode::OK, "a retry of {}: {body}", earlier.reference);
                    assert_eq!(body["id"], earlier.transaction_id.as_str());
                }
                let (to, from) = if rng.gen_bool(0.85) {
                    let to = rng.gen_range(0..6);
                    (to, (to + rng.gen_range(1..6)) % 6)
                } else {
                    let to = rng.gen_range(6..8);
                    (to, 6 + (to - 5) % 2)
                };
                let amount = rng.gen_range(1..=10_000);
                let reference = format!("t{task}-{i}");
                let (status, body) = ledger
                    .transfer(&ada, &reference, &ids[to], &ids[from], amount)
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{reference}: {body}");
                posted.push(Posted {
                    reference,
                    to,
                    from,
                    amount,
                    transaction_id: body["id"].as_str().expect("id").to_owned(),
                });
            }
            posted
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("no caller saw an error"));
    }
    assert_eq!(all.len(), TASKS * TRANSFERS_PER_TASK);

    let mut expected_balance = [0i64; 8];
    let mut expected_entries = [0i64; 8];
    let mut volume: HashMap<&str, i64> = HashMap::new();
    for p in &all {
        expected_balance[p.to] += chart[p.to].1.balance_change(Direction::Debit, p.amount);
        expected_balance[p.from] += chart[p.from].1.balance_change(Direction::Credit, p.amount);
        expected_entries[p.to] += 1;
        expected_entries[p.from] += 1;
        *volume.entry(chart[p.to].2).or_default() += p.amount;
    }
    for (index, id) in ids.iter().enumerate() {
        let account = ledger.account(&ada, id).await;
        assert_eq!(account["balance"], expected_balance[index], "{account}");
        assert_eq!(account["entry_count"], expected_entries[index], "{account}");
    }
    let pool = ledger.pool().await;
    assert_books_consistent(&pool).await;

    let lines = ledger.trial_balance().await;
    assert_trial_balance_zero(&lines);
    assert_eq!(
        lines,
        json!([
            {"currency": "eur", "debits": volume["eur"], "credits": volume["eur"]},
            {"currency": "usd", "debits": volume["usd"], "credits": volume["usd"]},
        ])
    );

    let (transactions, references): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT reference) FROM transactions")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(transactions as usize, all.len());
    assert_eq!(references, transactions, "a reference was recorded twice");
    let ids_by_reference: HashMap<String, String> = sqlx::query_as("SELECT reference, id FROM transactions")
        .fetch_all(&pool)
        .await
        .expect("references")
        .into_iter()
        .collect();
    for p in &all {
        assert_eq!(ids_by_reference.get(&p.reference), Some(&p.transaction_id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_payment_postings_hit_the_hot_accounts_exactly_once() {
    const PAYMENTS: usize = 240;
    let ledger = Arc::new(TestLedger::start().await);
    let merchants = ["usr_m1", "usr_m2", "usr_m3"];
    let postings: Vec<Value> = (0..PAYMENTS)
        .map(|i| {
            crate::helpers::payment_posting(
                &format!("pay_{i}"),
                merchants[i % merchants.len()],
                100 + (i as i64 * 7919) % 50_000,
                "usd",
            )
        })
        .chain((0..PAYMENTS).step_by(4).map(|i| {
            json!({
                "reference": format!("re_{i}"),
                "merchant_id": merchants[i % merchants.len()],
                "kind": "refund",
                "amount": 50,
                "currency": "usd",
            })
        }))
        .collect();
    let postings = Arc::new(postings);
    // Tasks t and t + 8 send the same postings in the same order, so every
    // reference is posted twice at nearly the same moment.
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let ledger = ledger.clone();
        let postings = postings.clone();
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for posting in postings.iter().skip(task % 8).step_by(8) {
                let (status, body) = ledger.payment_posting(posting.clone()).await;
                assert!(
                    status == StatusCode::CREATED || status == StatusCode::OK,
                    "{posting}: {status} {body}"
                );
                answers.push((
                    posting["reference"].as_str().expect("reference").to_owned(),
                    status,
                    body["id"].as_str().expect("id").to_owned(),
                ));
            }
            answers
        }));
    }
    let mut by_reference: HashMap<String, Vec<(StatusCode, String)>> = HashMap::new();
    for task in tasks {
        for (reference, status, id) in task.await.expect("no caller saw an error") {
            by_reference.entry(reference).or_default().push((status, id));
        }
    }
    assert_eq!(by_reference.len(), postings.len());
    for (reference, answers) in &by_reference {
        assert_eq!(answers.len(), 2, "{reference}");
        let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
        assert_eq!(created, 1, "{reference}: {answers:?}");
        assert_eq!(answers[0].1, answers[1].1, "{reference}: two transactions");
    }

    let mut owed: HashMap<&str, i64> = HashMap::new();
    let (mut collected, mut fee_revenue) = (0i64, 0i64);
    for posting in postings.iter() {
        let amount = posting["amount"].as_i64().expect("amount");
        let merchant = posting["merchant_id"].as_str().expect("merchant");
        if posting["kind"] == "payment" {
            let fee = stamped_fee(amount);
            collected += amount;
            fee_revenue += fee;
            *owed.entry(merchant).or_default() += amount - fee;
        } else {
            collected -= amount;
            *owed.entry(merchant).or_default() -= amount;
        }
    }
    let pool = ledger.pool().await;
    let balances: HashMap<String, i64> = sqlx::query_as(
        "SELECT coalesce(a.owner_id, a.system_role), b.balance
         FROM accounts a JOIN account_balances b ON b.account_id = a.id WHERE a.currency = 'usd'",
    )
    .fetch_all(&pool)
    .await
    .expect("balances")
    .into_iter()
    .collect();
    assert_eq!(balances["platform_clearing"], collected);
    assert_eq!(balances["platform_fee_revenue"], fee_revenue);
    for merchant in merchants {
        assert_eq!(balances[merchant], owed[merchant], "{merchant}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM transactions")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(count as usize, postings.len());
    assert_books_consistent(&pool).await;
    assert_trial_balance_zero(&ledger.trial_balance().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_withdrawals_never_overdraw_a_guarded_account() {
    const ATTEMPTS_PER_TASK: usize = 10;
    let ledger = Arc::new(TestLedger::start().await);
    let ada = user("usr_ada");
    let (wallet, _capital) = ledger.funded_wallet(&ada, 1_000).await;
    let spend = ledger.create_account(&ada, "spend", "expense", "usd").await;

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (ledger, ada, wallet, spend) = (ledger.clone(), ada.clone(), wallet.clone(), spend.clone());
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0;
            for i in 0..ATTEMPTS_PER_TASK {
                let (status, body) = ledger
                    .transfer(&ada, &format!("w{task}-{i}"), &spend, &wallet, 10)
                    .await;
                match status {
                    StatusCode::CREATED => accepted += 1,
                    StatusCode::UNPROCESSABLE_ENTITY => {
                        assert_eq!(body["error"]["code"], "insufficient_funds")
                    }
                    other => panic!("{other}: {body}"),
                }
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await.expect("task");
    }
    assert_eq!(accepted, 100, "exactly the funded withdrawals go through");
    let account = ledger.account(&ada, &wallet).await;
    assert_eq!(account["balance"], 0);
    assert_eq!(account["entry_count"], 101);
    assert_books_consistent(&ledger.pool().await).await;
}

/// A posting chosen as a deadlock victim by PostgreSQL is retried by the
/// service, and the caller only sees its success. Postings never deadlock
/// each other (they lock in one order), so the test provokes one with a
/// hand-held lock taken against that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_victim_is_retried_inside_the_service() {
    let ledger = Arc::new(TestLedger::start().await);
    let ada = user("usr_ada");
    // Ids sort by creation: the posting locks `first`, then `second`.
    let first = ledger.create_account(&ada, "first", "asset", "usd").await;
    let second = ledger.create_account(&ada, "second", "asset", "usd").await;
    let pool = ledger.pool().await;
    let mut blocker = pool.begin().await.expect("begin");
    lock_balance(&mut blocker, &second).await;

    let posting = {
        let (ledger, ada, first, second) = (ledger.clone(), ada.clone(), first.clone(), second.clone());
        tokio::spawn(async move { ledger.transfer(&ada, "victim", &first, &second, 10).await })
    };
    // Wait until the posting holds `first` and waits for `second`...
    assert!(
        sessions_wait_for_locks(&pool, 1).await,
        "the posting never waited for the held lock"
    );
    // ...then close the cycle. PostgreSQL aborts the posting, which waited first.
    lock_balance(&mut blocker, &first).await;
    blocker.commit().await.expect("commit");

    let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(20), posting)
        .await
        .expect("the posting finishes")
        .expect("task");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(ledger.balance(&ada, &first).await, 10);
    assert_eq!(ledger.balance(&ada, &second).await, -10);
    assert_books_consistent(&pool).await;
}

/// Requests to reverse one transaction under the same reference, sent at the
/// same moment, make one reversal, and every other request answers it (200).
/// They used to race past the reference check together, and the losers met
/// the winner on the one-reversal-per-transaction index instead: 409
/// `already_reversed` for what was a retry. The ledger runs two writers, as
/// two ledger processes would, and a held table lock lines the twins up: one
/// for each writer, so that two sessions start their insert at the same
/// instant, and the rest queued behind them, to be written together once the
/// lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_reversals_under_one_reference_are_one_reversal() {
    const ROUNDS: usize = 20;
    const TWINS: usize = 4;
    const WRITERS: usize = 2;
    let ledger = Arc::new(TestLedger::start_with(|c| c.posting_writers = WRITERS).await);
    let ada = user("usr_ada");
    let cash = ledger.create_account(&ada, "cash", "asset", "usd").await;
    let sales = ledger.create_account(&ada, "sales", "revenue", "usd").await;
    let pool = ledger.pool().await;
    for round in 0..ROUNDS {
        let (status, original) = ledger
            .transfer(&ada, &format!("sale-{round}"), &cash, &sales, 100)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{original}");
        let path = format!(
            "/v1/ledger/transactions/{}/reverse",
            original["id"].as_str().expect("id")
        );
        let mut blocker = pool.begin().await.expect("begin");
        sqlx::query("LOCK TABLE transactions IN SHARE MODE")
            .execute(&mut *blocker)
            .await
            .expect("hold back inserts");
        let reverse = || {
            let (ledger, ada, path) = (ledger.clone(), ada.clone(), path.clone());
            tokio::spawn(async move { ledger.post(&path, &ada, json!({})).await })
        };
        let mut twins = Vec::new();
        for writer in 1..=WRITERS {
            twins.push(reverse());
            assert!(
                sessions_wait_for_locks(&pool, writer).await,
                "round {round}: reversal {writer} never waited for the table lock"
            );
        }
        twins.extend((WRITERS..TWINS).map(|_| reverse()));
        assert!(
            ledger.postings_come_to_wait(TWINS - WRITERS).await,
            "round {round}: the other reversals never queued behind the writers"
        );
        blocker.commit().await.expect("release");

        let mut answers = Vec::new();
        for twin in twins {
            answers.push(twin.await.expect("task"));
        }
        let created: Vec<&Value> = answers
            .iter()
            .filter(|(status, _)| *status == StatusCode::CREATED)
            .map(|(_, body)| body)
            .collect();
        assert_eq!(created.len(), 1, "round {round}: {answers:?}");
        for (status, body) in &answers {
            assert!(
                *status == StatusCode::CREATED || *status == StatusCode::OK,
                "round {round}: {status} {body}"
            );
            assert_eq!(body, created[0], "round {round}");
        }
    }
    assert_eq!(ledger.balance(&ada, &cash).await, 0);
    assert_books_consistent(&pool).await;
}

/// Postings that arrive while the writer is busy are written together: one
/// database transaction for all of them, each with its own answer. The
/// writer is held on a locked balance, ten postings queue behind it, and
/// once the lock goes the ten share one transaction id, among them an
/// overdraft that is refused alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postings_that_wait_for_the_writer_commit_together_and_keep_their_own_answers() {
    const QUEUED: usize = 10;
    let ledger = Arc::new(TestLedger::start().await);
    let ada = user("usr_ada");
    let (wallet, _capital) = ledger.funded_wallet(&ada, 100).await;
    let spend = ledger.create_account(&ada, "spend", "expense", "usd").await;
    let pool = ledger.pool().await;
    let mut blocker = pool.begin().await.expect("begin");
    lock_balance(&mut blocker, &spend).await;

    let spend_from_wallet = |reference: String, amount: i64| {
        let (ledger, ada, wallet, spend) = (ledger.clone(), ada.clone(), wallet.clone(), spend.clone());
        tokio::spawn(async move { ledger.transfer(&ada, &reference, &spend, &wallet, amount).await })
    };
    let held = spend_from_wallet("held".into(), 10);
    assert!(
        sessions_wait_for_locks(&pool, 1).await,
        "the first posting never waited for the locked account"
    );
    // 9 x 10 spends the 90 left; 1,000 would overdraw the guarded wallet.
    let mut queued: Vec<_> = (0..QUEUED - 1)
        .map(|i| spend_from_wallet(format!("queued-{i}"), 10))
        .collect();
    queued.push(spend_from_wallet("overdraft".into(), 1_000));
    assert!(
        ledger.postings_come_to_wait(QUEUED).await,
        "the postings never queued behind the writer"
    );
    blocker.commit().await.expect("release");

    let (status, body) = held.await.expect("task");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut answers = Vec::new();
    for posting in queued {
        answers.push(posting.await.expect("task"));
    }
    let (overdraft, spent) = answers.split_last().expect("answers");
    assert_eq!(overdraft.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", overdraft.1);
    assert_eq!(overdraft.1["error"]["code"], "insufficient_funds");
    for (status, body) in spent {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
    }
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT xact_id::text) FROM transactions WHERE reference LIKE 'queued-%'",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(
        transactions, 1,
        "the queued postings were one database transaction"
    );
    assert_eq!(ledger.balance(&ada, &wallet).await, 0);
    assert_books_consistent(&pool).await;
}

/// A batch that the database refuses whole (here: it waits too long for one
/// locked account) is not every one of its postings' failure: each is tried
/// again on its own, the one that needs the locked account is answered busy
/// (503, to retry under its reference), and the other is posted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_refused_whole_is_tried_again_posting_by_posting() {
    let ledger = Arc::new(TestLedger::start().await);
    let ada = user("usr_ada");
    let [gate, locked, free, other] = ["gate", "locked", "free", "other"];
    let mut ids = HashMap::new();
    for name in [gate, locked, free, other] {
        ids.insert(name, ledger.create_account(&ada, name, "asset", "usd").await);
    }
    let pool = ledger.pool().await;
    let hold = |account: &str| {
        let (pool, account) = (pool.clone(), ids[account].clone());
        async move {
            let mut blocker = pool.begin().await.expect("begin");
            lock_balance(&mut blocker, &account).await;
            blocker
        }
    };
    let transfer = |reference: &'static str, to: &str, from: &str| {
        let (ledger, ada, to, from) = (ledger.clone(), ada.clone(), ids[to].clone(), ids[from].clone());
        tokio::spawn(async move { ledger.transfer(&ada, reference, &to, &from, 10).await })
    };
    let gate_blocker = hold(gate).await;
    let locked_blocker = hold(locked).await;
    // The writer waits at the gate while the batch queues behind it.
    let first = transfer("first", gate, other);
    assert!(
        sessions_wait_for_locks(&pool, 1).await,
        "the writer never waited at the gate"
    );
    let needs_locked = transfer("needs-locked", locked, other);
    let needs_nothing_held = transfer("needs-nothing-held", free, other);
    assert!(ledger.postings_come_to_wait(2).await, "the batch never queued");
    gate_blocker.commit().await.expect("open the gate");

    let (status, body) = first.await.expect("task");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = needs_locked.await.expect("task");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "ledger_busy");
    let (status, body) = needs_nothing_held.await.expect("task");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    locked_blocker.commit().await.expect("release");
    assert_eq!(ledger.balance(&ada, &ids[free]).await, 10);
    assert_eq!(ledger.balance(&ada, &ids[locked]).await, 0);
    assert_books_consistent(&pool).await;
}

/// Locks `account`'s balance row in `blocker` (a database transaction of
/// the test's own), as a posting would, until `blocker` ends.
async fn lock_balance(blocker: &mut sqlx::Transaction<'static, sqlx::Postgres>, account: &str) {
    sqlx::query("SELECT 1 FROM account_balances WHERE account_id = $1 FOR UPDATE")
        .bind(account)
        .execute(&mut **blocker)
        .await
        .expect("lock the balance");
}

/// Whether at least `count` sessions of this database come to wait for a
/// lock within 10 s: how a test knows its requests are queued behind one.
async fn sessions_wait_for_locks(pool: &sqlx::PgPool, count: usize) -> bool {
    platform::testing::eventually(std::time::Duration::from_secs(10), || {
        let pool = pool.clone();
        async move {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .ok()?;
            (waiting >= count as i64).then_some(())
        }
    })
    .await
    .is_some()
}
