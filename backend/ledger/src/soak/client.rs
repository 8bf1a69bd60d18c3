//! One client of the soak: runs its plan through the HTTP API, judges every
//! answer against what the ledger had accepted from it before, and keeps the
//! transactions it saw accepted for the comparison with the database.

use std::sync::Arc;

use contract::ledger::Direction;
use platform::internal_token::{Caller, HEADER, InternalTokens};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::plan::{Op, PlannedLeg, Slot, guarded_legs};
use super::{ModelTransaction, Stats};

/// Unexpected answers a client describes in full; the rest are only counted.
const PROBLEMS_KEPT: usize = 10;

pub(super) struct Http {
    pub base: String,
    pub client: reqwest::Client,
    pub tokens: InternalTokens,
}

/// What came back for one request.
#[derive(Debug, Clone)]
pub(super) enum Answer {
    Http { status: u16, body: Value },
    Failed(String),
}

impl Answer {
    pub(super) fn status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } => Some(*status),
            Self::Failed(_) => None,
        }
    }

    pub(super) fn body(&self) -> &Value {
        match self {
            Self::Http { body, .. } => body,
            Self::Failed(_) => &Value::Null,
        }
    }

    fn code(&self) -> Option<&str> {
        self.body()["error"]["code"].as_str()
    }

    fn is(&self, status: u16, code: &str) -> bool {
        self.status() == Some(status) && self.code() == Some(code)
    }

    fn describe(&self) -> String {
        match self {
            Self::Http { status, body } => format!("{status} {body}"),
            Self::Failed(error) => format!("no answer: {error}"),
        }
    }
}

impl Http {
    pub(super) async fn post(&self, caller: &Caller, path: &str, body: &Value) -> Answer {
        let sent = self
            .client
            .post(format!("{}{path}", self.base))
            .header(HEADER, self.tokens.mint(caller))
            .json(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return Answer::Failed(e.to_string()),
        };
        let status = response.status().as_u16();
        match response.text().await {
            Ok(text) => Answer::Http {
                status,
                body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
            },
            Err(e) => Answer::Failed(e.to_string()),
        }
    }
}

/// The accounts one client posts to, and what it needs to know about others.
pub(super) struct Desk {
    pub user: String,
    pub caller: Caller,
    /// Starts every reference. Clients of different users share prefixes, so
    /// the same reference is used under two posters, as it may be.
    pub prefix: String,
    pub chart: Arc<Vec<String>>,
    pub pool: String,
    pub wallet: String,
    pub deposits: String,
    /// The most the shared pool can ever hold.
    pub pool_capacity: i64,
}

/// What a client brings back.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub stats: Stats,
    pub accepted: Vec<ModelTransaction>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Leg {
    slot: Slot,
    account: String,
    direction: Direction,
    amount: i64,
}

/// The legs of a reversal: each leg of the original on the other side.
fn mirrored(legs: &[Leg]) -> Vec<Leg> {
    legs.iter()
        .map(|leg| Leg {
            direction: leg.direction.opposite(),
            ..leg.clone()
        })
        .collect()
}

/// What an answer must be.
#[derive(Debug, Clone)]
enum Expect {
    Created,
    /// 200 with exactly the body first answered.
    Replayed(Value),
    Refused(u16, &'static str),
    /// Only for the shared pool: whether a withdrawal fits depends on what the
    /// other clients did in the meantime.
    CreatedOrOverdraft,
}

const OVERDRAFT: Expect = Expect::Refused(422, "insufficient_funds");

#[derive(Debug)]
enum State {
    Nothing,
    Posting(Posting),
    /// The reversal the operation made, if it made one.
    Reversing(Option<String>),
}

#[derive(Debug)]
struct Posting {
    reference: String,
    body: Value,
    legs: Vec<Leg>,
    /// The 201 answer, once the ledger took it.
    accepted: Option<Value>,
    reversal: Option<Reversal>,
}

#[derive(Debug, Clone)]
struct Reversal {
    reference: String,
    answer: Value,
}

struct Client {
    http: Arc<Http>,
    desk: Desk,
    /// The balances of the client's own guarded accounts: nobody else moves them.
    wallet: i64,
    deposits: i64,
    states: Vec<State>,
    last_reversal: Option<String>,
    outcome: Outcome,
}

pub(super) async fn run(http: Arc<Http>, desk: Desk, plan: Vec<Op>) -> Outcome {
    let mut client = Client {
        http,
        desk,
        wallet: 0,
        deposits: 0,
        states: Vec::with_capacity(plan.len()),
        last_reversal: None,
        outcome: Outcome::default(),
    };
    for (index, op) in plan.iter().enumerate() {
        let state = client.step(index, op).await;
        client.states.push(state);
    }
    client.outcome
}

fn reverse_path(id: &str) -> String {
    format!("/v1/ledger/transactions/{id}/reverse")
}

fn id_of(answer: &Value) -> &str {
    answer["id"].as_str().unwrap_or_default()
}

impl Client {
    async fn step(&mut self, index: usize, op: &Op) -> State {
        match op {
            Op::Post { legs, copies } => {
                let legs = self.resolve(legs);
                self.post_new(index, legs, *copies).await
            }
            Op::Overdraft { slot, excess } => {
                let held = match slot {
                    Slot::Wallet => self.wallet,
                    Slot::Deposits => self.deposits,
                    Slot::Pool | Slot::Chart(_) => self.desk.pool_capacity,
                };
                self.outcome.stats.overdrafts += 1;
                let legs = self.resolve(&guarded_legs(*slot, held + excess, false));
                self.post_new(index, legs, 1).await
            }
            Op::Reverse {
                target,
                fresh_reference,
            } => {
                let reference = fresh_reference.then(|| format!("{}-{index}-undo", self.desk.prefix));
                self.reverse(*target, reference).await
            }
            Op::ReverseTwice {
                target,
                same_reference,
            } => self.reverse_twice(index, *target, *same_reference).await,
            Op::ReverseReversal { target } => {
                let made = match &self.states[*target] {
                    State::Reversing(Some(id)) => Some(id.clone()),
                    _ => None,
                };
                self.reverse_reversal(made.or_else(|| self.last_reversal.clone()))
                    .await;
                State::Nothing
            }
            Op::Retry { target } => {
                self.retry(*target).await;
                State::Nothing
            }
            Op::Reuse { target } => {
                self.reuse(*target).await;
                State::Nothing
            }
        }
    }

    fn resolve(&self, legs: &[PlannedLeg]) -> Vec<Leg> {
        legs.iter()
            .map(|leg| Leg {
                slot: leg.slot,
                account: match leg.slot {
                    Slot::Chart(index) => self.desk.chart[index].clone(),
                    Slot::Pool => self.desk.pool.clone(),
                    Slot::Wallet => self.desk.wallet.clone(),
                    Slot::Deposits => self.desk.deposits.clone(),
                },
                direction: leg.direction,
                amount: leg.amount,
            })
            .collect()
    }

    /// What the ledger must answer to a new posting of `legs`, from the
    /// guarded balances as this client knows them.
    fn expect_new(&self, legs: &[Leg]) -> Expect {
        let (mut wallet, mut deposits, mut pool) = (self.wallet, self.deposits, 0);
        for leg in legs {
            let change = leg.slot.kind().balance_change(leg.direction, leg.amount);
            match leg.slot {
                Slot::Wallet => wallet += change,
                Slot::Deposits => deposits += change,
                Slot::Pool => pool += change,
                Slot::Chart(_) => {}
            }
        }
        if wallet < 0 || deposits < 0 || -pool > self.desk.pool_capacity {
            OVERDRAFT
        } else if pool < 0 {
            Expect::CreatedOrOverdraft
        } else {
            Expect::Created
        }
    }

    fn apply(&mut self, legs: &[Leg]) {
        for leg in legs {
            let change = leg.slot.kind().balance_change(leg.direction, leg.amount);
            match leg.slot {
                Slot::Wallet => self.wallet += change,
                Slot::Deposits => self.deposits += change,
                _ => {}
            }
        }
    }

    fn accept(&mut self, answer: &Value, reference: &str, legs: &[Leg], reverses: Option<&str>) {
        self.apply(legs);
        self.outcome.accepted.push(ModelTransaction {
            id: id_of(answer).to_owned(),
            poster: self.desk.user.clone(),
            reference: reference.to_owned(),
            reverses: reverses.map(str::to_owned),
            legs: legs
                .iter()
                .map(|leg| (leg.account.clone(), leg.direction, leg.amount))
                .collect(),
        });
    }

    fn problem(&mut self, what: String) {
        self.outcome.stats.unexpected += 1;
        if self.outcome.problems.len() < PROBLEMS_KEPT {
            self.outcome.problems.push(what);
        }
    }

    /// Counts the answer; true when it is what `expect` allows.
    fn judge(&mut self, what: &str, expect: &Expect, answer: &Answer) -> bool {
        self.outcome.stats.count(answer);
        let fine = match expect {
            Expect::Created => answer.status() == Some(201),
            Expect::Replayed(first) => answer.status() == Some(200) && answer.body() == first,
            Expect::Refused(status, code) => answer.is(*status, code),
            Expect::CreatedOrOverdraft => {
                answer.status() == Some(201) || answer.is(422, "insufficient_funds")
            }
        };
        if !fine {
            self.problem(format!("{what}: expected {expect:?}, got {}", answer.describe()));
        }
        fine
    }

    async fn send_together(&self, requests: Vec<(String, Value)>) -> Vec<Answer> {
        let mut set = JoinSet::new();
        for (position, (path, body)) in requests.into_iter().enumerate() {
            let (http, caller) = (self.http.clone(), self.desk.caller.clone());
            set.spawn(async move { (position, http.post(&caller, &path, &body).await) });
        }
        let mut answers = Vec::new();
        while let Some(joined) = set.join_next().await {
            answers
                .push(joined.unwrap_or_else(|e| (usize::MAX, Answer::Failed(format!("request task: {e}")))));
        }
        answers.sort_by_key(|(position, _)| *position);
        answers.into_iter().map(|(_, answer)| answer).collect()
    }

    async fn post_new(&mut self, index: usize, legs: Vec<Leg>, copies: usize) -> State {
        let reference = format!("{}-{index}", self.desk.prefix);
        let body = json!({
            "reference": reference,
            "description": format!("soak operation {index}"),
            "entries": legs.iter().map(|leg| json!({
                "account_id": leg.account, "direction": leg.direction, "amount": leg.amount,
            })).collect::<Vec<_>>(),
        });
        let expect = self.expect_new(&legs);
        let what = format!("posting {reference}");
        let mut accepted = None;
        if copies == 1 {
            let answer = self
                .http
                .post(&self.desk.caller, "/v1/ledger/transactions", &body)
                .await;
            if self.judge(&what, &expect, &answer) && answer.status() == Some(201) {
                accepted = Some(answer.body().clone());
            }
        } else {
            self.outcome.stats.concurrent_copies += copies as u64 - 1;
            let requests = vec![("/v1/ledger/transactions".to_owned(), body.clone()); copies];
            let answers = self.send_together(requests).await;
            // Exactly one copy is taken; the others get it back, byte for byte.
            let created: Vec<usize> = (0..copies)
                .filter(|i| answers[*i].status() == Some(201))
                .collect();
            match (&expect, created.as_slice()) {
                (Expect::Created | Expect::CreatedOrOverdraft, [winner]) => {
                    let first = answers[*winner].body().clone();
                    for (position, answer) in answers.iter().enumerate() {
                        let expect = if position == *winner {
                            Expect::Created
                        } else {
                            Expect::Replayed(first.clone())
                        };
                        self.judge(&what, &expect, answer);
                    }
                    accepted = Some(first);
                }
                (Expect::Refused(..) | Expect::CreatedOrOverdraft, []) => {
                    for answer in &answers {
                        self.judge(&what, &expect, answer);
                    }
                }
                _ => {
                    for answer in &answers {
                        self.outcome.stats.count(answer);
                    }
                    let got: Vec<String> = answers.iter().map(Answer::describe).collect();
                    self.problem(format!(
                        "{what} sent {copies} times at once (expected {expect:?}): \
                         wanted one 201 and the rest 200 with its body, got {got:?}"
                    ));
                }
            }
        }
        if let Some(answer) = &accepted {
            self.accept(answer, &reference, &legs, None);
        }
        State::Posting(Posting {
            reference,
            body,
            legs,
            accepted,
            reversal: None,
        })
    }

    /// The posting an operation made, if it was accepted: (id, reference, legs).
    fn accepted_posting(&self, target: usize) -> Option<(String, Vec<Leg>)> {
        match &self.states[target] {
            State::Posting(Posting {
                accepted: Some(answer),
                legs,
                ..
            }) => Some((id_of(answer).to_owned(), legs.clone())),
            _ => None,
        }
    }

    fn reversal_of(&self, target: usize) -> Option<Reversal> {
        match &self.states[target] {
            State::Posting(posting) => posting.reversal.clone(),
            _ => None,
        }
    }

    fn note_reversal(
        &mut self,
        target: usize,
        original: &str,
        legs: &[Leg],
        reference: &str,
        answer: &Value,
    ) {
        let mirrored = mirrored(legs);
        self.accept(answer, reference, &mirrored, Some(original));
        self.outcome.stats.reversals_created += 1;
        self.last_reversal = Some(id_of(answer).to_owned());
        if let State::Posting(posting) = &mut self.states[target] {
            posting.reversal = Some(Reversal {
                reference: reference.to_owned(),
                answer: answer.clone(),
            });
        }
    }

    fn mirror_expectation(&self, legs: &[Leg]) -> Expect {
        let mirrored = mirrored(legs);
        self.expect_new(&mirrored)
    }

    /// The expectation for reversing `target` under `reference` once it has
    /// been reversed: the same reference answers that reversal, another is refused.
    fn expect_again(reversal: &Reversal, reference: &str) -> Expect {
        if reversal.reference == reference {
            Expect::Replayed(reversal.answer.clone())
        } else {
            Expect::Refused(409, "already_reversed")
        }
    }

    async fn reverse(&mut self, target: usize, fresh: Option<String>) -> State {
        let Some((original, legs)) = self.accepted_posting(target) else {
            self.outcome.stats.skipped += 1;
            return State::Reversing(None);
        };
        let reference = fresh.clone().unwrap_or_else(|| format!("reversal:{original}"));
        let body = match &fresh {
            Some(reference) => json!({"reference": reference}),
            None => json!({}),
        };
        let expect = match self.reversal_of(target) {
            Some(reversal) => {
                if reversal.reference == reference {
                    self.outcome.stats.retries += 1;
                }
                Self::expect_again(&reversal, &reference)
            }
            None => self.mirror_expectation(&legs),
        };
        self.outcome.stats.reversals += 1;
        let answer = self
            .http
            .post(&self.desk.caller, &reverse_path(&original), &body)
            .await;
        let what = format!("reversal of {original} under {reference}");
        if self.judge(&what, &expect, &answer) && answer.status() == Some(201) {
            self.note_reversal(target, &original, &legs, &reference, answer.body());
            return State::Reversing(Some(id_of(answer.body()).to_owned()));
        }
        State::Reversing(None)
    }

    async fn reverse_twice(&mut self, index: usize, target: usize, same_reference: bool) -> State {
        let Some((original, legs)) = self.accepted_posting(target) else {
            self.outcome.stats.skipped += 2;
            return State::Reversing(None);
        };
        let references: Vec<String> = if same_reference {
            vec![format!("reversal:{original}"); 2]
        } else {
            vec![
                format!("{}-{index}-undo-a", self.desk.prefix),
                format!("{}-{index}-undo-b", self.desk.prefix),
            ]
        };
        let requests = references
            .iter()
            .map(|reference| {
                let body = if same_reference {
                    json!({})
                } else {
                    json!({"reference": reference})
                };
                (reverse_path(&original), body)
            })
            .collect();
        self.outcome.stats.reversals += 2;
        self.outcome.stats.concurrent_copies += 1;
        let before = self.reversal_of(target);
        let answers = self.send_together(requests).await;
        let what = format!("two reversals of {original} at once");
        if let Some(reversal) = before {
            for (answer, reference) in answers.iter().zip(&references) {
                self.judge(&what, &Self::expect_again(&reversal, reference), answer);
            }
            return State::Reversing(None);
        }
        let guard = self.mirror_expectation(&legs);
        let created: Vec<usize> = (0..2).filter(|i| answers[*i].status() == Some(201)).collect();
        let fine = match created.as_slice() {
            [] => {
                !matches!(guard, Expect::Created) && answers.iter().all(|a| a.is(422, "insufficient_funds"))
            }
            [winner] => {
                let other = &answers[1 - winner];
                let answered_alike = if same_reference {
                    other.status() == Some(200) && other.body() == answers[*winner].body()
                } else {
                    other.is(409, "already_reversed")
                };
                // In the shared pool the other may have run first and found it short.
                let found_short =
                    matches!(guard, Expect::CreatedOrOverdraft) && other.is(422, "insufficient_funds");
                !matches!(guard, Expect::Refused(..)) && (answered_alike || found_short)
            }
            _ => false,
        };
        for answer in &answers {
            self.outcome.stats.count(answer);
        }
        if !fine {
            let got: Vec<String> = answers.iter().map(Answer::describe).collect();
            let wanted = if same_reference {
                "one 201 and one 200 with its body"
            } else {
                "one 201 and one 409 already_reversed"
            };
            self.problem(format!(
                "{what} under {references:?} (guard: {guard:?}): expected {wanted}, got {got:?}"
            ));
        }
        if let [winner] = created.as_slice() {
            let answer = answers[*winner].body().clone();
            self.note_reversal(target, &original, &legs, &references[*winner], &answer);
            return State::Reversing(Some(id_of(&answer).to_owned()));
        }
        State::Reversing(None)
    }

    async fn reverse_reversal(&mut self, reversal: Option<String>) {
        let Some(reversal) = reversal else {
            self.outcome.stats.skipped += 1;
            return;
        };
        self.outcome.stats.reversals += 1;
        let answer = self
            .http
            .post(&self.desk.caller, &reverse_path(&reversal), &json!({}))
            .await;
        let what = format!("reversal of the reversal {reversal}");
        self.judge(&what, &Expect::Refused(400, "reversal_not_reversible"), &answer);
    }

    async fn retry(&mut self, target: usize) {
        let State::Posting(posting) = &self.states[target] else {
            self.outcome.stats.skipped += 1;
            return;
        };
        let (reference, body, legs) = (
            posting.reference.clone(),
            posting.body.clone(),
            posting.legs.clone(),
        );
        // A refused posting left nothing behind: sent again, it is a new attempt.
        let expect = match &posting.accepted {
            Some(answer) => Expect::Replayed(answer.clone()),
            None => self.expect_new(&legs),
        };
        self.outcome.stats.retries += 1;
        let answer = self
            .http
            .post(&self.desk.caller, "/v1/ledger/transactions", &body)
            .await;
        let what = format!("retry of {reference}");
        if self.judge(&what, &expect, &answer) && answer.status() == Some(201) {
            let accepted = answer.body().clone();
            self.accept(&accepted, &reference, &legs, None);
            if let State::Posting(posting) = &mut self.states[target] {
                posting.accepted = Some(accepted);
            }
        }
    }

    async fn reuse(&mut self, target: usize) {
        let State::Posting(
            posting @ Posting {
                accepted: Some(_), ..
            },
        ) = &self.states[target]
        else {
            self.outcome.stats.skipped += 1;
            return;
        };
        let reference = posting.reference.clone();
        let mut body = posting.body.clone();
        // Doubling every amount keeps the posting balanced but makes it another one.
        if let Some(entries) = body["entries"].as_array_mut() {
            for entry in entries {
                entry["amount"] = json!(entry["amount"].as_i64().unwrap_or_default() * 2);
            }
        }
        self.outcome.stats.reuses += 1;
        let answer = self
            .http
            .post(&self.desk.caller, "/v1/ledger/transactions", &body)
            .await;
        let what = format!("another posting under {reference}");
        self.judge(&what, &Expect::Refused(409, "reference_reused"), &answer);
    }
}
