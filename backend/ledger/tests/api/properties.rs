//! Property: whatever sequence of postings and reversals a user makes, each
//! account's balance is the signed sum of its entries, the statement's last
//! running balance is the balance, and the books stay consistent.

use contract::ledger::{AccountType, Direction};
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestLedger, assert_books_consistent, user};

const KINDS: [AccountType; 4] = [
    AccountType::Asset,
    AccountType::Liability,
    AccountType::Revenue,
    AccountType::Expense,
];

#[derive(Debug, Clone)]
enum Step {
    Transfer {
        to: usize,
        from: usize,
        amount: i64,
    },
    /// Reverse the n-th earlier transfer (modulo how many there are).
    Reverse(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0usize..4, 1usize..4, 1i64..=1_000_000)
            .prop_map(|(to, offset, amount)| Step::Transfer { to, from: (to + offset) % 4, amount }),
        1 => any::<usize>().prop_map(Step::Reverse),
    ]
}

async fn statement(
    ledger: &TestLedger,
    owner: &platform::internal_token::Caller,
    account: &str,
) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut path = format!("/v1/ledger/accounts/{account}/entries?limit=100");
    loop {
        let (status, page) = ledger.get(&path, owner).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let data = page["data"].as_array().expect("data").clone();
        entries.extend(data.iter().cloned());
        if !page["has_more"].as_bool().expect("has_more") {
            return entries;
        }
        let last = data.last().expect("entries")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        path = format!("/v1/ledger/accounts/{account}/entries?limit=100&starting_after={last}");
    }
}

#[test]
fn balances_are_the_sum_of_their_entries() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let ledger = runtime.block_on(TestLedger::start());
    proptest!(ProptestConfig::with_cases(12), |(steps in proptest::collection::vec(step(), 1..25))| {
        let owner = user(&format!("usr_{}", platform::testing::unique_suffix()));
        runtime.block_on(async {
            let mut accounts = Vec::new();
            for (i, kind) in KINDS.iter().enumerate() {
                accounts.push(ledger.create_account(&owner, &format!("a{i}"), kind.as_str(), "usd").await);
            }
            let mut expected = [0i64; 4];
            let mut transfers: Vec<(String, usize, usize, i64, bool)> = Vec::new();
            for (n, step) in steps.iter().enumerate() {
                match *step {
                    Step::Transfer { to, from, amount } => {
                        let (status, body) = ledger
                            .transfer(&owner, &format!("s{n}"), &accounts[to], &accounts[from], amount)
                            .await;
                        assert_eq!(status, StatusCode::CREATED, "{body}");
                        expected[to] += KINDS[to].balance_change(Direction::Debit, amount);
                        expected[from] += KINDS[from].balance_change(Direction::Credit, amount);
                        transfers.push((body["id"].as_str().expect("id").to_owned(), to, from, amount, false));
                    }
                    Step::Reverse(pick) if !transfers.is_empty() => {
                        let index = pick % transfers.len();
                        let (id, to, from, amount, reversed) = transfers[index].clone();
                        let (status, body) = ledger
                            .post(&format!("/v1/ledger/transactions/{id}/reverse"), &owner, serde_json::json!({}))
                            .await;
                        // Reversing again answers the same reversal and changes nothing.
                        let wanted = if reversed { StatusCode::OK } else { StatusCode::CREATED };
                        assert_eq!(status, wanted, "{body}");
                        if !reversed {
                            expected[to] -= KINDS[to].balance_change(Direction::Debit, amount);
                            expected[from] -= KINDS[from].balance_change(Direction::Credit, amount);
                            transfers[index].4 = true;
                        }
                    }
                    Step::Reverse(_) => {}
                }
            }
            for (index, account) in accounts.iter().enumerate() {
                let balance = ledger.balance(&owner, account).await;
                assert_eq!(balance, expected[index]);
                let entries = statement(&ledger, &owner, account).await;
                let sum: i64 = entries
                    .iter()
                    .map(|e| {
                        let direction = if e["direction"] == "debit" { Direction::Debit } else { Direction::Credit };
                        KINDS[index].balance_change(direction, e["amount"].as_i64().expect("amount"))
                    })
                    .sum();
                assert_eq!(balance, sum, "balance against the sum of entries");
                let newest = entries.first().map(|e| e["balance_after"].as_i64().expect("balance_after"));
                assert_eq!(newest.unwrap_or(0), balance);
            }
        });
    });
    runtime.block_on(async {
        assert_books_consistent(&ledger.pool().await).await;
    });
    drop(ledger);
}
