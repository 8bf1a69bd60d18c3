//! What each client will do, drawn from the seed before anything runs, so a
//! run can be repeated. Operations name earlier operations of the same client
//! by index; what each answer should be is decided only when it runs, from
//! what the ledger had accepted by then.

use contract::ledger::{AccountType, Direction};
use rand::distributions::{Distribution, WeightedIndex};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Every user's chart: (name, type, currency). Few accounts, so that
/// concurrent postings keep meeting on the same rows.
pub(super) const CHART: [(&str, AccountType, &str); 12] = [
    ("cash", AccountType::Asset, "usd"),
    ("bank", AccountType::Asset, "usd"),
    ("card", AccountType::Liability, "usd"),
    ("loan", AccountType::Liability, "usd"),
    ("capital", AccountType::Equity, "usd"),
    ("sales", AccountType::Revenue, "usd"),
    ("fees", AccountType::Expense, "usd"),
    ("rent", AccountType::Expense, "usd"),
    ("euro cash", AccountType::Asset, "eur"),
    ("euro payable", AccountType::Liability, "eur"),
    ("euro sales", AccountType::Revenue, "eur"),
    ("euro costs", AccountType::Expense, "eur"),
];
const USD: [usize; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
const EUR: [usize; 4] = [8, 9, 10, 11];
const CAPITAL: usize = 4;
const SALES: usize = 5;
const FEES: usize = 6;
const RENT: usize = 7;
const EURO_CASH: usize = 8;

/// Where a leg goes. Guarded accounts come in two kinds: a pool each user's
/// clients share (whose refusals depend on how the clients interleave), and a
/// wallet and a deposit account per client that only that client touches (so
/// the client knows their balances exactly and every answer is predictable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    Chart(usize),
    /// A guarded USD asset shared by the user's clients.
    Pool,
    /// The client's own guarded USD asset.
    Wallet,
    /// The client's own guarded EUR liability.
    Deposits,
}

impl Slot {
    pub(super) fn kind(self) -> AccountType {
        match self {
            Self::Chart(index) => CHART[index].1,
            Self::Pool | Self::Wallet => AccountType::Asset,
            Self::Deposits => AccountType::Liability,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PlannedLeg {
    pub slot: Slot,
    pub direction: Direction,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Op {
    /// A new posting, sent `copies` times at once under one reference.
    Post { legs: Vec<PlannedLeg>, copies: usize },
    /// Takes more out of a guarded account than it can hold: its balance plus
    /// `excess` for the client's own accounts, more than was ever paid into
    /// the pool for the pool.
    Overdraft { slot: Slot, excess: i64 },
    /// Reverses an earlier posting, under the default reference or a new one.
    Reverse { target: usize, fresh_reference: bool },
    /// Two reversals of one posting at once.
    ReverseTwice { target: usize, same_reference: bool },
    /// Tries to reverse the reversal an earlier `Reverse` made.
    ReverseReversal { target: usize },
    /// Sends an earlier posting again, body and reference unchanged.
    Retry { target: usize },
    /// An earlier posting's reference with a different body.
    Reuse { target: usize },
}

impl Op {
    /// Posting requests the operation sends.
    pub(super) fn requests(&self) -> usize {
        match self {
            Self::Post { copies, .. } => *copies,
            Self::ReverseTwice { .. } => 2,
            _ => 1,
        }
    }
}

/// The legs that move `amount` into a guarded slot (`fund`) or out of it,
/// against a hot account of the same currency.
pub(super) fn guarded_legs(slot: Slot, amount: i64, fund: bool) -> Vec<PlannedLeg> {
    let other = match (slot, fund) {
        (Slot::Wallet, true) => CAPITAL,
        (Slot::Wallet, false) => RENT,
        (Slot::Pool, true) => SALES,
        (Slot::Pool, false) => FEES,
        (Slot::Deposits | Slot::Chart(_), _) => EURO_CASH,
    };
    let growing = slot.kind().normal_side();
    let side = if fund { growing } else { growing.opposite() };
    vec![
        PlannedLeg {
            slot,
            direction: side,
            amount,
        },
        PlannedLeg {
            slot: Slot::Chart(other),
            direction: side.opposite(),
            amount,
        },
    ]
}

/// Whether a posting of these legs can only add to guarded balances: then
/// the ledger must accept it, and it makes a safe target for later operations.
fn never_refused(legs: &[PlannedLeg]) -> bool {
    legs.iter()
        .all(|leg| matches!(leg.slot, Slot::Chart(_)) || leg.direction == leg.slot.kind().normal_side())
}

fn touches_guard(legs: &[PlannedLeg]) -> bool {
    legs.iter().any(|leg| !matches!(leg.slot, Slot::Chart(_)))
}

/// 2 to 4 legs across distinct unguarded accounts, balanced per currency;
/// a 4-leg posting may move both currencies at once.
fn ordinary_legs(rng: &mut StdRng) -> Vec<PlannedLeg> {
    let leg = |index: usize, direction: Direction, amount: i64| PlannedLeg {
        slot: Slot::Chart(index),
        direction,
        amount,
    };
    let pick = |rng: &mut StdRng, from: &[usize], n: usize| -> Vec<usize> {
        from.choose_multiple(rng, n).copied().collect()
    };
    let currency: &[usize] = if rng.gen_bool(0.75) { &USD } else { &EUR };
    let mut legs = match rng.gen_range(2..=4) {
        2 => {
            let accounts = pick(rng, currency, 2);
            let amount = rng.gen_range(1..=100_000);
            vec![
                leg(accounts[0], Direction::Debit, amount),
                leg(accounts[1], Direction::Credit, amount),
            ]
        }
        3 => {
            let accounts = pick(rng, currency, 3);
            let total = rng.gen_range(2..=100_000);
            let part = rng.gen_range(1..total);
            let one = if rng.gen_bool(0.5) {
                Direction::Debit
            } else {
                Direction::Credit
            };
            vec![
                leg(accounts[0], one, total),
                leg(accounts[1], one.opposite(), part),
                leg(accounts[2], one.opposite(), total - part),
            ]
        }
        _ if rng.gen_bool(0.5) => {
            let usd = pick(rng, &USD, 2);
            let eur = pick(rng, &EUR, 2);
            let (dollars, euros) = (rng.gen_range(1..=100_000), rng.gen_range(1..=100_000));
            vec![
                leg(usd[0], Direction::Debit, dollars),
                leg(usd[1], Direction::Credit, dollars),
                leg(eur[0], Direction::Debit, euros),
                leg(eur[1], Direction::Credit, euros),
            ]
        }
        _ => {
            let accounts = pick(rng, currency, 4);
            let (first, second) = (rng.gen_range(1..=50_000), rng.gen_range(1..=50_000));
            let split = rng.gen_range(1..first + second);
            vec![
                leg(accounts[0], Direction::Debit, first),
                leg(accounts[1], Direction::Debit, second),
                leg(accounts[2], Direction::Credit, split),
                leg(accounts[3], Direction::Credit, first + second - split),
            ]
        }
    };
    legs.shuffle(rng);
    legs
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Post,
    Duplicate,
    Fund,
    Spend,
    PoolDeposit,
    PoolWithdrawal,
    Overdraft,
    PoolOverdraft,
    Reverse,
    ReverseTwice,
    ReverseReversal,
    Retry,
    Reuse,
}

const MIX: [(Kind, u32); 13] = [
    (Kind::Post, 44),
    (Kind::Duplicate, 5),
    (Kind::Fund, 6),
    (Kind::Spend, 6),
    (Kind::PoolDeposit, 4),
    (Kind::PoolWithdrawal, 4),
    (Kind::Overdraft, 3),
    (Kind::PoolOverdraft, 1),
    (Kind::Reverse, 9),
    (Kind::ReverseTwice, 3),
    (Kind::ReverseReversal, 2),
    (Kind::Retry, 8),
    (Kind::Reuse, 5),
];

/// One client's operations, sending `requests` posting requests in all.
pub(super) fn client_plan(seed: u64, client: usize, requests: usize) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed ^ (client as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mix = WeightedIndex::new(MIX.iter().map(|(_, weight)| weight)).expect("positive constant weights");
    let mut ops: Vec<Op> = Vec::new();
    // Postings the ledger must accept: targets for reversals and reuses.
    let mut safe: Vec<usize> = Vec::new();
    // Any posting: targets for retries.
    let mut postings: Vec<usize> = Vec::new();
    // Safe, unguarded postings not yet reversed: their first reversal must succeed.
    let mut unreversed: Vec<usize> = Vec::new();
    // Operations certain to have made a reversal.
    let mut reversals: Vec<usize> = Vec::new();
    let mut left = requests;
    while left > 0 {
        let index = ops.len();
        let op = match MIX[mix.sample(&mut rng)].0 {
            Kind::Duplicate if left >= 2 => Op::Post {
                legs: ordinary_legs(&mut rng),
                copies: rng.gen_range(2..=3).min(left),
            },
            Kind::Fund => guarded_post(own_slot(&mut rng), rng.gen_range(1_000..=50_000), true),
            Kind::Spend => guarded_post(own_slot(&mut rng), rng.gen_range(1..=30_000), false),
            Kind::PoolDeposit => guarded_post(Slot::Pool, rng.gen_range(1_000..=50_000), true),
            Kind::PoolWithdrawal => guarded_post(Slot::Pool, rng.gen_range(1..=60_000), false),
            Kind::Overdraft => Op::Overdraft {
                slot: own_slot(&mut rng),
                excess: rng.gen_range(1..=10_000),
            },
            Kind::PoolOverdraft => Op::Overdraft {
                slot: Slot::Pool,
                excess: rng.gen_range(1..=10_000),
            },
            Kind::Reverse if !safe.is_empty() => Op::Reverse {
                target: any(&mut rng, &safe),
                fresh_reference: rng.gen_bool(0.3),
            },
            Kind::ReverseTwice if left >= 2 && !safe.is_empty() => Op::ReverseTwice {
                target: any(&mut rng, &safe),
                same_reference: rng.gen_bool(0.5),
            },
            Kind::ReverseReversal if !reversals.is_empty() => Op::ReverseReversal {
                target: any(&mut rng, &reversals),
            },
            Kind::Retry if !postings.is_empty() => Op::Retry {
                target: any(&mut rng, &postings),
            },
            Kind::Reuse if !safe.is_empty() => Op::Reuse {
                target: any(&mut rng, &safe),
            },
            _ => Op::Post {
                legs: ordinary_legs(&mut rng),
                copies: 1,
            },
        };
        match &op {
            Op::Post { legs, .. } => {
                postings.push(index);
                if never_refused(legs) {
                    safe.push(index);
                    if !touches_guard(legs) {
                        unreversed.push(index);
                    }
                }
            }
            Op::Overdraft { .. } => postings.push(index),
            Op::Reverse { target, .. } | Op::ReverseTwice { target, .. } => {
                if let Some(at) = unreversed.iter().position(|t| t == target) {
                    unreversed.swap_remove(at);
                    reversals.push(index);
                }
            }
            _ => {}
        }
        left -= op.requests();
        ops.push(op);
    }
    ops
}

fn guarded_post(slot: Slot, amount: i64, fund: bool) -> Op {
    Op::Post {
        legs: guarded_legs(slot, amount, fund),
        copies: 1,
    }
}

/// One of `indices`, which is not empty.
fn any(rng: &mut StdRng, indices: &[usize]) -> usize {
    indices[rng.gen_range(0..indices.len())]
}

fn own_slot(rng: &mut StdRng) -> Slot {
    if rng.gen_bool(0.5) {
        Slot::Wallet
    } else {
        Slot::Deposits
    }
}

/// The most a pool can ever hold, given the plans of the clients sharing it:
/// everything they plan to pay in. A withdrawal above it must be refused
/// however the clients interleave.
pub(super) fn pool_capacity<'a>(plans: impl IntoIterator<Item = &'a Vec<Op>>) -> i64 {
    plans
        .into_iter()
        .flatten()
        .filter_map(|op| match op {
            Op::Post { legs, .. } => Some(legs),
            _ => None,
        })
        .flatten()
        .filter(|leg| leg.slot == Slot::Pool && leg.direction == Direction::Debit)
        .map(|leg| leg.amount)
        .sum()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_plan_sends_exactly_its_requests_and_is_repeatable() {
        for client in 0..4 {
            let plan = client_plan(7, client, 500);
            assert_eq!(plan.iter().map(Op::requests).sum::<usize>(), 500);
            assert_eq!(plan, client_plan(7, client, 500));
        }
        assert_ne!(client_plan(7, 0, 100), client_plan(8, 0, 100));
    }

    #[test]
    fn ordinary_postings_balance_per_currency_over_distinct_accounts() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..1_000 {
            let legs = ordinary_legs(&mut rng);
            assert!((2..=4).contains(&legs.len()));
            let mut net: BTreeMap<&str, i64> = BTreeMap::new();
            let mut accounts = Vec::new();
            for leg in &legs {
                let Slot::Chart(index) = leg.slot else {
                    panic!("an ordinary posting touched a guarded account: {legs:?}");
                };
                assert!(leg.amount > 0);
                accounts.push(index);
                let signed = if leg.direction == Direction::Debit {
                    leg.amount
                } else {
                    -leg.amount
                };
                *net.entry(CHART[index].2).or_default() += signed;
            }
            accounts.sort_unstable();
            accounts.dedup();
            assert_eq!(accounts.len(), legs.len(), "{legs:?}");
            assert!(net.values().all(|n| *n == 0), "{legs:?}");
        }
    }

    #[test]
    fn targets_point_backwards_at_the_right_kind_of_operation() {
        let plan = client_plan(3, 1, 5_000);
        for (index, op) in plan.iter().enumerate() {
            match op {
                Op::Reverse { target, .. } | Op::ReverseTwice { target, .. } | Op::Reuse { target } => {
                    assert!(*target < index);
                    let Op::Post { legs, .. } = &plan[*target] else {
                        panic!("{op:?} targets {:?}", plan[*target]);
                    };
                    assert!(never_refused(legs));
                }
                Op::Retry { target } => {
                    assert!(*target < index);
                    assert!(matches!(plan[*target], Op::Post { .. } | Op::Overdraft { .. }));
                }
                Op::ReverseReversal { target } => {
                    assert!(*target < index);
                    assert!(matches!(
                        plan[*target],
                        Op::Reverse { .. } | Op::ReverseTwice { .. }
                    ));
                }
                _ => {}
            }
        }
    }
}
