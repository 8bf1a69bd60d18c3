//! Human output: aligned tables, money by its currency's exponent, times in
//! UTC. Machine output: the API's JSON, pretty-printed.

use chrono::{DateTime, Utc};
use contract::money::{Currency, format_minor};
use serde::Serialize;

/// `1234 usd` as `12.34 USD`; an unknown code keeps the minor units.
pub fn money(amount: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(currency) => format_minor(amount, currency),
        Err(_) => format!("{amount} {}", currency.to_ascii_uppercase()),
    }
}

pub fn time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn optional(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Columns sized to their widest cell, two spaces apart.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<&'static str>,
    aligns: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Headers with their alignment; money and counts are right-aligned.
    pub fn new(columns: &[(&'static str, Align)]) -> Self {
        Self {
            headers: columns.iter().map(|(h, _)| *h).collect(),
            aligns: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) -> &mut Self {
        self.rows.push(cells);
        self
    }

    pub fn render(&self) -> String {
        let width = |i: usize| {
            self.rows
                .iter()
                .filter_map(|row| row.get(i))
                .map(|cell| cell.chars().count())
                .chain(std::iter::once(self.headers[i].len()))
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.headers.len()).map(width).collect();
        let line = |cells: Vec<&str>| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                let last = i + 1 == cells.len();
                if i > 0 {
                    out.push_str("  ");
                }
                match self.aligns[i] {
                    Align::Right => {
                        out.push_str(&" ".repeat(pad));
                        out.push_str(cell);
                    }
                    Align::Left => {
                        out.push_str(cell);
                        if !last {
                            out.push_str(&" ".repeat(pad));
                        }
                    }
                }
            }
            out.trim_end().to_owned() + "\n"
        };
        let mut out = line(self.headers.clone());
        for row in &self.rows {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
        }
        out
    }
}

/// Key/value lines for one object, keys aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs.iter().map(|(k, v)| format!("{k:<width$}  {v}\n")).collect()
}

pub fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")) + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_uses_the_exponent_and_tables_align() {
        assert_eq!(money(1234, "usd"), "12.34 USD");
        assert_eq!(money(500, "jpy"), "500 JPY");
        assert_eq!(money(1001, "kwd"), "1.001 KWD");
        assert_eq!(money(7, "xyz"), "7 XYZ");
        let mut table = Table::new(&[
            ("ID", Align::Left),
            ("AMOUNT", Align::Right),
            ("STATUS", Align::Left),
        ]);
        table.row(vec!["pay_1".into(), "12.34 USD".into(), "succeeded".into()]);
        table.row(vec!["pay_22".into(), "500 JPY".into(), "failed".into()]);
        assert_eq!(
            table.render(),
            "ID         AMOUNT  STATUS\npay_1   12.34 USD  succeeded\npay_22    500 JPY  failed\n"
        );
    }
}
