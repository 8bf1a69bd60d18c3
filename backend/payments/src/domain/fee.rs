//! The platform's fee on a payment: `FEE_BASIS_POINTS` of the amount, rounded
//! half to even (banker's rounding, so that ties do not always favour one
//! side), plus a fixed part, and never more than the amount itself.
//!
//! The fixed part is set in hundredths of a major unit (`FEE_FIXED_CENTS`,
//! 30 = 0.30) and converted to each currency's minor unit by its ISO 4217
//! exponent: 30 cents of usd, 0 yen (0.30 JPY rounds to nothing), 300 fils
//! of kwd. The fee is decided once, when a payment succeeds, and stored.

use contract::money::Currency;

use super::Amount;

const BASIS_POINTS_PER_UNIT: i128 = 10_000;
/// The fixed part is configured in hundredths of a major unit.
const FIXED_PART_EXPONENT: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeSchedule {
    basis_points: i64,
    fixed_cents: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FeeScheduleError {
    #[error("FEE_BASIS_POINTS must be from 0 to 10000, not {0}")]
    BasisPoints(i64),
    #[error("FEE_FIXED_CENTS must be from 0 to {max}, not {0}", max = MAX_FIXED_CENTS)]
    Fixed(i64),
}

/// 10,000 major units: far above any real fixed fee, far from overflow.
const MAX_FIXED_CENTS: i64 = 1_000_000;

impl FeeSchedule {
    pub fn new(basis_points: i64, fixed_cents: i64) -> Result<Self, FeeScheduleError> {
        if !(0..=10_000).contains(&basis_points) {
            return Err(FeeScheduleError::BasisPoints(basis_points));
        }
        if !(0..=MAX_FIXED_CENTS).contains(&fixed_cents) {
            return Err(FeeScheduleError::Fixed(fixed_cents));
        }
        Ok(Self {
            basis_points,
            fixed_cents,
        })
    }

    /// The fixed part in `currency`'s minor unit, rounded half to even.
    pub fn fixed_minor(&self, currency: Currency) -> i64 {
        let exponent = currency.exponent();
        let fixed = i128::from(self.fixed_cents);
        let minor = if exponent >= FIXED_PART_EXPONENT {
            fixed * 10i128.pow(exponent - FIXED_PART_EXPONENT)
        } else {
            round_half_even_div(fixed, 10i128.pow(FIXED_PART_EXPONENT - exponent))
        };
        // At most MAX_FIXED_CENTS * 10^(exponent - 2): fits comfortably.
        i64::try_from(minor).unwrap_or(i64::MAX)
    }

    /// The fee on a payment of `amount` in `currency`; from 0 to `amount` inclusive.
    pub fn fee(&self, amount: Amount, currency: Currency) -> i64 {
        let proportional = round_half_even_div(
            i128::from(amount.get()) * i128::from(self.basis_points),
            BASIS_POINTS_PER_UNIT,
        );
        let fee = proportional + i128::from(self.fixed_minor(currency));
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
    use contract::money::CURRENCIES;
    use contract::payments::MAX_AMOUNT;
    use proptest::prelude::*;

    use super::*;

    fn amount(value: i64) -> Amount {
        Amount::parse(value).expect("a valid amount")
    }

    fn currency(code: &str) -> Currency {
        Currency::parse(code).expect("a supported currency")
    }

    #[test]
    fn the_default_schedule_is_two_point_nine_percent_plus_thirty_cents() {
        let fees = FeeSchedule::new(290, 30).expect("valid");
        let usd = currency("usd");
        assert_eq!(fees.fee(amount(10_000), usd), 320);
        assert_eq!(fees.fee(amount(2_000), usd), 88);
        // 2.9% of 50 is 1.45: rounds to 1, plus 30.
        assert_eq!(fees.fee(amount(50), usd), 31);
        // Never more than the payment itself.
        assert_eq!(fees.fee(amount(20), usd), 20);
        assert_eq!(fees.fee(amount(1), usd), 1);
    }

    #[test]
    fn the_fixed_part_follows_the_currency_exponent() {
        let fees = FeeSchedule::new(290, 30).expect("valid");
        assert_eq!(fees.fixed_minor(currency("usd")), 30);
        assert_eq!(fees.fixed_minor(currency("eur")), 30);
        // 0.30 JPY is no yen at all, not 30 yen.
        assert_eq!(fees.fixed_minor(currency("jpy")), 0);
        assert_eq!(fees.fixed_minor(currency("krw")), 0);
        assert_eq!(fees.fixed_minor(currency("kwd")), 300);
        assert_eq!(fees.fixed_minor(currency("bhd")), 300);
        // 2.9% of 1000 yen is 29 yen, and no fixed part.
        assert_eq!(fees.fee(amount(1_000), currency("jpy")), 29);
        // 2.9% of 10.000 KWD is 0.290, plus 0.300.
        assert_eq!(fees.fee(amount(10_000), currency("kwd")), 590);
        // A fixed part of 1.50 is 2 yen (1.5 rounds to even), 2.50 is 2 yen.
        assert_eq!(
            FeeSchedule::new(0, 150)
                .expect("valid")
                .fixed_minor(currency("jpy")),
            2
        );
        assert_eq!(
            FeeSchedule::new(0, 250)
                .expect("valid")
                .fixed_minor(currency("jpy")),
            2
        );
        assert_eq!(
            FeeSchedule::new(0, 251)
                .expect("valid")
                .fixed_minor(currency("jpy")),
            3
        );
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
        let usd = currency("usd");
        assert_eq!(one_percent.fee(amount(50), usd), 0);
        assert_eq!(one_percent.fee(amount(150), usd), 2);
        assert_eq!(one_percent.fee(amount(250), usd), 2);
    }

    #[test]
    fn refuses_impossible_schedules() {
        assert!(FeeSchedule::new(-1, 0).is_err());
        assert!(FeeSchedule::new(10_001, 0).is_err());
        assert!(FeeSchedule::new(290, -30).is_err());
        assert!(FeeSchedule::new(290, MAX_FIXED_CENTS + 1).is_err());
    }

    proptest! {
        #[test]
        fn the_fee_is_within_half_a_unit_of_exact_and_never_above_the_amount(
            value in 1..=MAX_AMOUNT,
            basis_points in 0i64..=10_000,
            fixed in 0i64..=1_000,
            index in 0..CURRENCIES.len(),
        ) {
            let currency = currency(CURRENCIES[index].0);
            let fees = FeeSchedule::new(basis_points, fixed).expect("valid");
            let fee = fees.fee(amount(value), currency);
            let fixed_minor = fees.fixed_minor(currency);
            prop_assert!(fee >= 0);
            prop_assert!(fee <= value);
            let exact_times_10000 = i128::from(value) * i128::from(basis_points);
            let proportional = i128::from(fee) - i128::from(fixed_minor);
            if fee < value {
                // Not capped: the proportional part is the exact fee rounded half to even.
                let error = proportional * 10_000 - exact_times_10000;
                prop_assert!(error.abs() <= 5_000, "off by more than half a unit: {error}");
                if error.abs() == 5_000 {
                    prop_assert_eq!(proportional % 2, 0, "a tie must round to even");
                }
            } else {
                // Capped: the uncapped fee would have reached the amount.
                let uncapped = round_half_even_div(exact_times_10000, 10_000) + i128::from(fixed_minor);
                prop_assert!(uncapped >= i128::from(value));
            }
        }

        #[test]
        fn the_fixed_part_is_the_configured_major_amount_to_within_half_a_minor_unit(
            fixed in 0i64..=MAX_FIXED_CENTS,
            index in 0..CURRENCIES.len(),
        ) {
            let currency = currency(CURRENCIES[index].0);
            let minor = FeeSchedule::new(0, fixed).expect("valid").fixed_minor(currency);
            // Compare minor / 10^e with fixed / 100 on integers: minor * 100 vs fixed * 10^e.
            let scale = 10i128.pow(currency.exponent());
            let error = i128::from(minor) * 100 - i128::from(fixed) * scale;
            prop_assert!(2 * error.abs() <= 100, "{minor} minor units for {fixed} cents of {currency}");
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
