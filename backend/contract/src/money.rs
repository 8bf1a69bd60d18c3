//! Money is an integer count of a currency's minor unit, never a float.

use serde::{Deserialize, Serialize};

/// The currencies the platform accepts, with the number of decimals of their
/// minor unit (ISO 4217 exponent).
pub const CURRENCIES: &[(&str, u32)] = &[
    ("aud", 2),
    ("bhd", 3),
    ("cad", 2),
    ("chf", 2),
    ("dkk", 2),
    ("eur", 2),
    ("gbp", 2),
    ("jpy", 0),
    ("krw", 0),
    ("kwd", 3),
    ("nok", 2),
    ("sek", 2),
    ("usd", 2),
];

/// A supported ISO 4217 code, lower-cased as Stripe writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(&'static str);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a supported ISO 4217 currency code")]
pub struct UnknownCurrency(pub String);

impl Currency {
    pub fn parse(code: &str) -> Result<Self, UnknownCurrency> {
        let lower = code.trim().to_ascii_lowercase();
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == lower)
            .map(|(c, _)| Self(c))
            .ok_or_else(|| UnknownCurrency(code.to_owned()))
    }

    pub fn code(&self) -> &'static str {
        self.0
    }

    pub fn exponent(&self) -> u32 {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == self.0)
            .map(|(_, e)| *e)
            .unwrap_or(2)
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl TryFrom<String> for Currency {
    type Error = UnknownCurrency;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.0.to_owned()
    }
}

/// Renders minor units for people: `1234 usd` is `12.34 USD`, `500 jpy` is `500 JPY`.
pub fn format_minor(amount: i64, currency: Currency) -> String {
    let exponent = currency.exponent();
    let code = currency.code().to_ascii_uppercase();
    if exponent == 0 {
        return format!("{amount} {code}");
    }
    let scale = 10_i64.pow(exponent);
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    let scale = scale as u64;
    format!(
        "{sign}{}.{:0width$} {code}",
        abs / scale,
        abs % scale,
        width = exponent as usize
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_case_insensitively_and_knows_exponents() {
        assert_eq!(Currency::parse("USD").expect("usd").code(), "usd");
        assert_eq!(Currency::parse("jpy").expect("jpy").exponent(), 0);
        assert_eq!(Currency::parse("kwd").expect("kwd").exponent(), 3);
        assert!(Currency::parse("xxx").is_err());
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn formats_minor_units() {
        let usd = Currency::parse("usd").expect("usd");
        assert_eq!(format_minor(1234, usd), "12.34 USD");
        assert_eq!(format_minor(-5, usd), "-0.05 USD");
        assert_eq!(format_minor(500, Currency::parse("jpy").expect("jpy")), "500 JPY");
        assert_eq!(
            format_minor(1001, Currency::parse("kwd").expect("kwd")),
            "1.001 KWD"
        );
    }

    proptest! {
        #[test]
        fn formatting_round_trips_through_the_digits(amount in any::<i64>()) {
            let usd = Currency::parse("usd").expect("usd");
            let text = format_minor(amount, usd);
            let digits: String = text.chars().filter(|c| c.is_ascii_digit() || *c == '-').collect();
            prop_assert_eq!(digits.parse::<i128>().ok(), Some(amount as i128));
        }
    }
}
