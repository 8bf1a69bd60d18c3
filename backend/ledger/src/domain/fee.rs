//! The platform's fee on a payment: `FEE_BASIS_POINTS` of the amount, rounded
//! half to even (banker's rounding, so that ties do not always favour one
//! side), plus `FEE_FIXED_MINOR`, and never more than the amount itself.

use super::Amount;

const BASIS_POINTS_PER_UNIT: i128 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeSchedule {
    basis_points: i64,
    fixed_minor: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FeeScheduleError {
    #[error("FEE_BASIS_POINTS must be from 0 to 10000, not {0}")]
    BasisPoints(i64),
    #[error("FEE_FIXED_MINOR must be from 0 to {max}, not {0}", max = super::MAX_AMOUNT)]
    Fixed(i64),
}

impl FeeSchedule {
    pub fn new(basis_points: i64, fixed_minor: i64) -> Result<Self, FeeScheduleError> {
        if !(0..=10_000).contains(&basis_points) {
            return Err(FeeScheduleError::BasisPoints(basis_points));
        }
        if !(0..=super::MAX_AMOUNT).contains(&fixed_minor) {
            return Err(FeeScheduleError::Fixed(fixed_minor));
        }
        Ok(Self {
            basis_points,
            fixed_minor,
        })
    }

    /// The fee on a payment of `amount`; from 0 to `amount` inclusive.
    pub fn fee(&self, amount: Amount) -> i64 {
        let proportional = round_half_even_div(
            i128::from(amount.get()) * i128::from(self.basis_points),
            BASIS_POINTS_PER_UNIT,
        );
        let fee = proportional + i128::from(self.fixed_minor);
        // Bounded by the amount, so the conversion back cannot fail.
        i64::try_from(fee.min(i128::from(amount.get()))).unwrap_or(amount.get())
    }
}

/// `numerator / denominator` rounded to the nearest integer, ties to the even
/// one. Both must be positive or zero (the denominator positive).
pub fn round_half_even_div(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator / denominator;
    let twice_remainder = 2 * (numerator % denominator);
    if twice_remainder > denominator || (twice_remainder == denominator && quotient % 2 == 1) {
        quotient + 1
    } else {
        quotient
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::MAX_AMOUNT;

    fn amount(value: i64) -> Amount {
        Amount::parse(value).expect("a valid amount")
    }

    #[test]
    fn the_default_schedule_is_two_point_nine_percent_plus_thirty() {
        let fees = FeeSchedule::new(290, 30).expect("valid");
        assert_eq!(fees.fee(amount(10_000)), 320);
        assert_eq!(fees.fee(amount(2_000)), 88);
        // 2.9% of 50 is 1.45: rounds to 1, plus 30.
        assert_eq!(fees.fee(amount(50)), 31);
        // Never more than the payment itself.
        assert_eq!(fees.fee(amount(20)), 20);
        assert_eq!(fees.fee(amount(1)), 1);
    }

    #[test]
    fn ties_round_to_even() {
        assert_eq!(round_half_even_div(5, 10), 0);
        assert_eq!(round_half_even_div(15, 10), 2);
        assert_eq!(round_half_even_div(25, 10), 2);
        assert_eq!(round_half_even_div(35, 10), 4);
        assert_eq!(round_half_even_div(26, 10), 3);
        assert_eq!(round_half_even_div(24, 10), 2);
        // 1% of 50 is 0.5 -> 0; of 150 is 1.5 -> 2; of 250 is 2.5 -> 2.
        let one_percent = FeeSchedule::new(100, 0).expect("valid");
        assert_eq!(one_percent.fee(amount(50)), 0);
        assert_eq!(one_percent.fee(amount(150)), 2);
        assert_eq!(one_percent.fee(amount(250)), 2);
    }

    #[test]
    fn refuses_impossible_schedules() {
        assert!(FeeSchedule::new(-1, 0).is_err());
        assert!(FeeSchedule::new(10_001, 0).is_err());
        assert!(FeeSchedule::new(290, -30).is_err());
    }

    proptest! {
        #[test]
        fn the_fee_is_within_half_a_unit_of_exact_and_never_above_the_amount(
            value in 1..=MAX_AMOUNT,
            basis_points in 0i64..=10_000,
            fixed in 0i64..=1_000,
        ) {
            let fees = FeeSchedule::new(basis_points, fixed).expect("valid");
            let fee = fees.fee(amount(value));
            prop_assert!(fee >= 0);
            prop_assert!(fee <= value);
            let exact_times_10000 = i128::from(value) * i128::from(basis_points);
            let proportional = i128::from(fee) - i128::from(fixed);
            if fee < value {
                // Not capped: the proportional part is the exact fee rounded half to even.
                let error = proportional * 10_000 - exact_times_10000;
                prop_assert!(error.abs() <= 5_000, "off by more than half a unit: {error}");
                if error.abs() == 5_000 {
                    prop_assert_eq!(proportional % 2, 0, "a tie must round to even");
                }
            } else {
                // Capped: the uncapped fee would have reached the amount.
                let uncapped = round_half_even_div(exact_times_10000, 10_000) + i128::from(fixed);
                prop_assert!(uncapped >= i128::from(value));
            }
        }

        #[test]
        fn rounding_matches_a_reference_computed_from_the_remainder(
            numerator in 0i128..=1_000_000_000_000_000,
            denominator in 1i128..=100_000,
        ) {
            let rounded = round_half_even_div(numerator, denominator);
            // Compare against rounding done on doubled integers: 2n vs (2q+1)d.
            let low = numerator / denominator;
            let expected = match (2 * numerator).cmp(&((2 * low + 1) * denominator)) {
                std::cmp::Ordering::Less => low,
                std::cmp::Ordering::Greater => low + 1,
                std::cmp::Ordering::Equal => if low % 2 == 0 { low } else { low + 1 },
            };
            prop_assert_eq!(rounded, expected);
        }
    }
}
