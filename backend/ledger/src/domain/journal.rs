//! A journal: the legs of one transaction, balanced per currency.

use std::collections::BTreeMap;

use contract::ledger::Direction;
use contract::money::Currency;

use super::{Amount, InputError};

pub(super) const MAX_LEGS: usize = 100;

/// One entry to post: the account (whose currency the caller has looked up),
/// the side, and a positive amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    pub account_id: String,
    pub direction: Direction,
    pub amount: Amount,
    pub currency: Currency,
}

/// Two to a hundred legs whose debits equal their credits in every currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    legs: Vec<Leg>,
}

impl Journal {
    pub fn new(legs: Vec<Leg>) -> Result<Self, InputError> {
        if !(2..=MAX_LEGS).contains(&legs.len()) {
            return Err(InputError::EntryCount { count: legs.len() });
        }
        let mut sums: BTreeMap<Currency, (i64, i64)> = BTreeMap::new();
        for leg in &legs {
            let (debits, credits) = sums.entry(leg.currency).or_default();
            // At most MAX_LEGS amounts of at most MAX_AMOUNT: no overflow.
            match leg.direction {
                Direction::Debit => *debits += leg.amount.get(),
                Direction::Credit => *credits += leg.amount.get(),
            }
        }
        if let Some((currency, (debits, credits))) = sums.into_iter().find(|(_, (d, c))| d != c) {
            return Err(InputError::Unbalanced {
                currency: currency.code().to_owned(),
                debits,
                credits,
            });
        }
        Ok(Self { legs })
    }

    pub fn legs(&self) -> &[Leg] {
        &self.legs
    }

    /// The journal that undoes this one: every leg on the other side.
    pub fn mirrored(&self) -> Self {
        let legs = self
            .legs
            .iter()
            .map(|leg| Leg {
                direction: leg.direction.opposite(),
                ..leg.clone()
            })
            .collect();
        Self { legs }
    }
}

#[cfg(test)]
mod tests {
    use contract::ledger::AccountType;
    use proptest::prelude::*;

    use super::*;

    fn leg(account: &str, direction: Direction, amount: i64, currency: &str) -> Leg {
        Leg {
            account_id: account.into(),
            direction,
            amount: Amount::parse(amount).expect("amount"),
            currency: Currency::parse(currency).expect("currency"),
        }
    }

    #[test]
    fn balances_per_currency() {
        let ok = Journal::new(vec![
            leg("a", Direction::Debit, 100, "usd"),
            leg("b", Direction::Credit, 60, "usd"),
            leg("c", Direction::Credit, 40, "usd"),
            leg("d", Direction::Debit, 7, "eur"),
            leg("e", Direction::Credit, 7, "eur"),
        ]);
        assert!(ok.is_ok());
        // Balanced in total but not per currency.
        let err = Journal::new(vec![
            leg("a", Direction::Debit, 100, "usd"),
            leg("b", Direction::Credit, 100, "eur"),
        ])
        .expect_err("unbalanced per currency");
        assert!(matches!(err, InputError::Unbalanced { .. }), "{err}");
        assert!(matches!(
            Journal::new(vec![leg("a", Direction::Debit, 1, "usd")]),
            Err(InputError::EntryCount { count: 1 })
        ));
    }

    #[test]
    fn the_mirror_undoes_the_journal() {
        let journal = Journal::new(vec![
            leg("a", Direction::Debit, 5, "usd"),
            leg("b", Direction::Credit, 5, "usd"),
        ])
        .expect("balanced");
        let mirror = journal.mirrored();
        assert_eq!(mirror.legs()[0].direction, Direction::Credit);
        assert_eq!(mirror.legs()[1].direction, Direction::Debit);
        assert_eq!(mirror.mirrored(), journal);
    }

    fn arbitrary_transfer() -> impl Strategy<Value = (usize, usize, i64)> {
        (0usize..4, 0usize..4, 1i64..=1_000_000)
    }

    proptest! {
        /// Whatever balanced journals are applied, with balances moved by
        /// `balance_change`, the balances over all accounts stay zero-sum on
        /// the debit side and each equals the signed sum of its legs.
        #[test]
        fn balances_are_the_sum_of_their_entries(transfers in proptest::collection::vec(arbitrary_transfer(), 1..50)) {
            let kinds = [AccountType::Asset, AccountType::Liability, AccountType::Revenue, AccountType::Expense];
            let mut balances = [0i64; 4];
            let mut history: Vec<Leg> = Vec::new();
            for (from, to, amount) in transfers {
                let journal = Journal::new(vec![
                    leg(&to.to_string(), Direction::Debit, amount, "usd"),
                    leg(&from.to_string(), Direction::Credit, amount, "usd"),
                ]).expect("a transfer balances");
                for leg in journal.legs() {
                    let index: usize = leg.account_id.parse().expect("index");
                    balances[index] += kinds[index].balance_change(leg.direction, leg.amount.get());
                    history.push(leg.clone());
                }
            }
            let mut debit_side = 0i64;
            for (index, kind) in kinds.iter().enumerate() {
                let from_entries: i64 = history.iter()
                    .filter(|l| l.account_id == index.to_string())
                    .map(|l| kind.balance_change(l.direction, l.amount.get()))
                    .sum();
                prop_assert_eq!(balances[index], from_entries);
                debit_side += match kind.normal_side() {
                    Direction::Debit => balances[index],
                    Direction::Credit => -balances[index],
                };
            }
            prop_assert_eq!(debit_side, 0);
        }
    }
}
