//! The soak, bounded to run with every test: the same concurrent workload and
//! invariant checks as `ledger-soak`, on 1,000 postings. And a model of the
//! ledger's rules (idempotent references, reversals once and never of a
//! reversal, the overdraft guard) that random sequences of requests must
//! agree with, answer by answer.

use std::collections::HashMap;
use std::time::Instant;

use contract::ledger::{AccountType, Direction};
use ledger::soak::{SoakConfig, run};
use platform::internal_token::Caller;
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestLedger, assert_books_consistent, code, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bounded_soak_breaks_no_rule() {
    let ledger = TestLedger::start().await;
    let config = SoakConfig {
        postings: 1_000,
        clients: 8,
        seed: 20_260_801,
    };
    let started = Instant::now();
    let report = run(&ledger.base, ledger.tokens.clone(), &ledger.pool().await, &config)
        .await
        .expect("the soak runs");
    println!(
        "{report}in {:.1} s with setup and checks",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(report.violations(), 0, "{report}");
    assert_eq!(report.stats.attempted, 1_000, "{report}");
    assert_eq!(report.stats.skipped, 0, "{report}");
    // The workload reached every rule, not only the happy path.
    for reason in [
        "insufficient_funds",
        "already_reversed",
        "reversal_not_reversible",
        "reference_reused",
    ] {
        assert!(
            report.stats.refused.get(reason).copied().unwrap_or_default() > 0,
            "no {reason}:\n{report}"
        );
    }
    assert!(
        report.stats.replayed > 0 && report.stats.reversals_created > 0,
        "{report}"
    );
}

/// The accounts of one case: two guarded, on either normal side.
const ACCOUNTS: [(&str, AccountType, bool); 5] = [
    ("wallet", AccountType::Asset, true),
    ("cash", AccountType::Asset, false),
    ("card", AccountType::Liability, true),
    ("sales", AccountType::Revenue, false),
    ("rent", AccountType::Expense, false),
];
const WALLET: usize = 0;
const CASH: usize = 1;
const CARD: usize = 2;
const RENT: usize = 4;

#[derive(Debug, Clone)]
enum Step {
    /// Debit `to`, credit `from`, under a new reference or one of a few shared ones.
    Post {
        reference: Option<u8>,
        to: usize,
        from: usize,
        amount: i64,
    },
    /// Takes what a guarded account holds plus `excess` out of it (0: exactly all of it).
    Drain {
        reference: Option<u8>,
        wallet: bool,
        excess: i64,
    },
    /// Sends the n-th earlier posting request again (modulo how many), unchanged.
    Retry(usize),
    /// Reverses the n-th recorded transaction (modulo how many; it may be a
    /// reversal), under the default reference or a shared one.
    Reverse { pick: usize, reference: Option<u8> },
}

fn reference() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![3 => Just(None), 1 => (0u8..4).prop_map(Some)]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (reference(), 0usize..5, 1usize..5, 1i64..=5_000).prop_map(|(reference, to, offset, amount)| {
            Step::Post { reference, to, from: (to + offset) % 5, amount }
        }),
        2 => (reference(), any::<bool>(), 0i64..=100)
            .prop_map(|(reference, wallet, excess)| Step::Drain { reference, wallet, excess }),
        2 => any::<usize>().prop_map(Step::Retry),
        4 => (any::<usize>(), prop_oneof![Just(None), (0u8..4).prop_map(Some)])
            .prop_map(|(pick, reference)| Step::Reverse { pick, reference }),
    ]
}

type Legs = Vec<(usize, Direction, i64)>;

/// What makes two requests under one reference the same request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fingerprint {
    Posting(Legs),
    Reversal(usize),
}

#[derive(Debug)]
struct Recorded {
    fingerprint: Fingerprint,
    legs: Legs,
    reverses: Option<usize>,
    reversed: bool,
    /// The ledger's id for it, learnt from its 201.
    id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    Created,
    /// 200 with the recorded transaction of this index.
    Replayed(usize),
    Refused(StatusCode, &'static str),
}

/// The ledger's rules for one user's postings, one request at a time.
#[derive(Debug, Default)]
struct Model {
    balances: [i64; 5],
    counts: [i64; 5],
    recorded: Vec<Recorded>,
    by_reference: HashMap<String, usize>,
}

impl Model {
    fn post(&self, reference: &str, legs: &Legs) -> Expected {
        if let Some(&index) = self.by_reference.get(reference) {
            return self.replay_or_conflict(index, &Fingerprint::Posting(legs.clone()));
        }
        self.within_guards(legs)
    }

    fn reverse(&self, target: usize, reference: &str) -> Expected {
        let original = &self.recorded[target];
        if original.reverses.is_some() {
            return Expected::Refused(StatusCode::BAD_REQUEST, "reversal_not_reversible");
        }
        if let Some(&index) = self.by_reference.get(reference) {
            return self.replay_or_conflict(index, &Fingerprint::Reversal(target));
        }
        if original.reversed {
            return Expected::Refused(StatusCode::CONFLICT, "already_reversed");
        }
        self.within_guards(&mirror(&original.legs))
    }

    fn replay_or_conflict(&self, index: usize, fingerprint: &Fingerprint) -> Expected {
        if self.recorded[index].fingerprint == *fingerprint {
            Expected::Replayed(index)
        } else {
            Expected::Refused(StatusCode::CONFLICT, "reference_reused")
        }
    }

    fn within_guards(&self, legs: &Legs) -> Expected {
        let mut balances = self.balances;
        for (account, direction, amount) in legs {
            balances[*account] += ACCOUNTS[*account].1.balance_change(*direction, *amount);
        }
        let overdrawn = (0..5).any(|a| ACCOUNTS[a].2 && balances[a] < 0);
        if overdrawn {
            Expected::Refused(StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds")
        } else {
            Expected::Created
        }
    }

    fn record(&mut self, reference: &str, fingerprint: Fingerprint, legs: Legs, id: String) {
        for (account, direction, amount) in &legs {
            self.balances[*account] += ACCOUNTS[*account].1.balance_change(*direction, *amount);
            self.counts[*account] += 1;
        }
        let reverses = match fingerprint {
            Fingerprint::Reversal(target) => {
                self.recorded[target].reversed = true;
                Some(target)
            }
            Fingerprint::Posting(_) => None,
        };
        self.by_reference
            .insert(reference.to_owned(), self.recorded.len());
        self.recorded.push(Recorded {
            fingerprint,
            legs,
            reverses,
            reversed: false,
            id,
        });
    }
}

fn mirror(legs: &Legs) -> Legs {
    legs.iter().map(|(a, d, n)| (*a, d.opposite(), *n)).collect()
}

/// One case: a fresh user and accounts in the shared database.
struct Case<'a> {
    ledger: &'a TestLedger,
    owner: Caller,
    accounts: Vec<String>,
    model: Model,
    /// Posting requests sent so far, for retries: (reference, legs).
    sent: Vec<(String, Legs)>,
}

impl Case<'_> {
    async fn send_posting(&mut self, reference: String, legs: Legs) {
        let expected = self.model.post(&reference, &legs);
        let entries: Vec<Value> = legs
            .iter()
            .map(|(a, d, n)| json!({"account_id": self.accounts[*a], "direction": d, "amount": n}))
            .collect();
        let (status, body) = self
            .ledger
            .post(
                "/v1/ledger/transactions",
                &self.owner,
                json!({"reference": reference, "entries": entries}),
            )
            .await;
        self.agree(&expected, status, &body, &format!("posting {reference} {legs:?}"));
        if expected == Expected::Created {
            let id = body["id"].as_str().expect("an id").to_owned();
            self.model
                .record(&reference, Fingerprint::Posting(legs.clone()), legs.clone(), id);
        }
        self.sent.push((reference, legs));
    }

    async fn send_reversal(&mut self, target: usize, reference: Option<String>) {
        let id = self.model.recorded[target].id.clone();
        let key = reference.clone().unwrap_or_else(|| format!("reversal:{id}"));
        let expected = self.model.reverse(target, &key);
        let body = match &reference {
            Some(reference) => json!({"reference": reference}),
            None => json!({}),
        };
        let (status, answer) = self
            .ledger
            .post(
                &format!("/v1/ledger/transactions/{id}/reverse"),
                &self.owner,
                body,
            )
            .await;
        self.agree(
            &expected,
            status,
            &answer,
            &format!("reversal of #{target} under {key}"),
        );
        if expected == Expected::Created {
            let legs = mirror(&self.model.recorded[target].legs);
            let reversal = answer["id"].as_str().expect("an id").to_owned();
            self.model
                .record(&key, Fingerprint::Reversal(target), legs, reversal);
        }
    }

    fn agree(&self, expected: &Expected, status: StatusCode, body: &Value, what: &str) {
        match expected {
            Expected::Created => assert_eq!(status, StatusCode::CREATED, "{what}: {body}"),
            Expected::Replayed(index) => {
                assert_eq!(status, StatusCode::OK, "{what}: {body}");
                assert_eq!(body["id"], self.model.recorded[*index].id, "{what}");
            }
            Expected::Refused(wanted, wanted_code) => {
                assert_eq!((status, code(body)), (*wanted, *wanted_code), "{what}: {body}");
            }
        }
    }
}

fn shared_reference(slot: u8) -> String {
    format!("shared-{slot}")
}

#[test]
fn the_ledger_answers_as_a_model_of_its_rules() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let ledger = runtime.block_on(TestLedger::start());
    proptest!(ProptestConfig::with_cases(16), |(steps in proptest::collection::vec(step(), 5..=30))| {
        runtime.block_on(async {
            let owner = user(&format!("usr_{}", platform::testing::unique_suffix()));
            let mut accounts = Vec::new();
            for (name, kind, guarded) in ACCOUNTS {
                let body = json!({"name": name, "type": kind, "currency": "usd", "must_not_go_negative": guarded});
                accounts.push(ledger.create_account_with(&owner, body).await);
            }
            let mut case = Case { ledger: &ledger, owner, accounts, model: Model::default(), sent: Vec::new() };
            for (n, step) in steps.into_iter().enumerate() {
                let reference = |slot: Option<u8>| slot.map_or_else(|| format!("step-{n}"), shared_reference);
                match step {
                    Step::Post { reference: slot, to, from, amount } => {
                        let legs = vec![(to, Direction::Debit, amount), (from, Direction::Credit, amount)];
                        case.send_posting(reference(slot), legs).await;
                    }
                    Step::Drain { reference: slot, wallet, excess } => {
                        let legs = if wallet {
                            let amount = case.model.balances[WALLET] + excess;
                            vec![(WALLET, Direction::Credit, amount), (RENT, Direction::Debit, amount)]
                        } else {
                            let amount = case.model.balances[CARD] + excess;
                            vec![(CARD, Direction::Debit, amount), (CASH, Direction::Credit, amount)]
                        };
                        // Draining an empty account exactly is a zero amount, refused before any rule.
                        if legs[0].2 > 0 {
                            case.send_posting(reference(slot), legs).await;
                        }
                    }
                    Step::Retry(pick) if !case.sent.is_empty() => {
                        let (reference, legs) = case.sent[pick % case.sent.len()].clone();
                        case.send_posting(reference, legs).await;
                    }
                    Step::Reverse { pick, reference: slot } if !case.model.recorded.is_empty() => {
                        let target = pick % case.model.recorded.len();
                        case.send_reversal(target, slot.map(shared_reference)).await;
                    }
                    Step::Retry(_) | Step::Reverse { .. } => {}
                }
            }
            for (index, id) in case.accounts.iter().enumerate() {
                let account = ledger.account(&case.owner, id).await;
                assert_eq!(account["balance"], case.model.balances[index], "{account}");
                assert_eq!(account["entry_count"], case.model.counts[index], "{account}");
            }
        });
    });
    runtime.block_on(async {
        assert_books_consistent(&ledger.pool().await).await;
    });
    drop(ledger);
}
