//! What one phase found, and the table of a run.

use std::fmt::Write;
use std::time::Duration;

use crate::check::{EventCheck, PostingCheck, RequestCheck};
use crate::faults::Fault;

pub struct PhaseReport {
    pub fault: Fault,
    pub requests: RequestCheck,
    pub events: EventCheck,
    pub postings: PostingCheck,
    /// From the end of the fault to every service ready and every owner's
    /// fresh payment event delivered; or why that did not happen.
    pub recovery: Result<Duration, String>,
    /// From the end of the load to an empty backlog, if it emptied in time.
    pub drain: Option<Duration>,
    /// Everything else that went wrong: lost writes, an unbalanced ledger,
    /// abandoned requests, listeners that died, dead letters.
    pub problems: Vec<String>,
    /// Worth knowing, not a failure.
    pub notes: Vec<String>,
    pub elapsed: Duration,
}

impl PhaseReport {
    pub fn passed(&self) -> bool {
        self.requests.passed()
            && self.events.passed()
            && self.postings.passed()
            && self.recovery.is_ok()
            && self.problems.is_empty()
    }

    /// Every violation, one line each.
    pub fn violations(&self) -> Vec<String> {
        let listed = [
            ("unexpected answer", &self.requests.unexpected),
            ("event missing", &self.events.missing),
            ("event misordered", &self.events.misordered),
            ("event misdelivered", &self.events.misdelivered),
            ("posting missing", &self.postings.missing),
            ("posting duplicated", &self.postings.duplicated),
            ("posting wrong", &self.postings.wrong),
            ("posting unexpected", &self.postings.unexpected),
        ];
        let mut lines: Vec<String> = listed
            .iter()
            .flat_map(|(what, items)| items.iter().map(move |item| format!("{what}: {item}")))
            .collect();
        if self.events.duplicated > 0 {
            lines.push(format!("events duplicated: {}", self.events.duplicated));
        }
        if let Err(why) = &self.recovery {
            lines.push(format!("not recovered: {why}"));
        }
        lines.extend(self.problems.iter().cloned());
        lines
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

/// The run as a Markdown table, as docs/reliability.md shows it.
pub fn table(reports: &[PhaseReport]) -> String {
    let header = [
        "fault",
        "requests sent",
        "503 / conn. errors",
        "slowest answer",
        "events expected / received / duplicated",
        "postings expected / made",
        "recovery",
        "drain",
        "result",
    ];
    let rows: Vec<[String; 9]> = reports
        .iter()
        .map(|r| {
            [
                r.fault.name().to_owned(),
                r.requests.sent.to_string(),
                format!("{} / {}", r.requests.unavailable, r.requests.connection_errors),
                seconds(r.requests.slowest),
                format!(
                    "{} / {} / {}",
                    r.events.expected, r.events.received, r.events.duplicated
                ),
                format!("{} / {}", r.postings.expected, r.postings.made),
                r.recovery
                    .as_ref()
                    .map_or_else(|_| "none".to_owned(), |d| seconds(*d)),
                r.drain.map_or_else(|| "timed out".to_owned(), seconds),
                if r.passed() { "ok" } else { "FAILED" }.to_owned(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|row| row[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, cells: &[&str]| {
        out.push('|');
        for (i, cell) in cells.iter().enumerate() {
            // Names left, numbers right, as they read best.
            if i == 0 {
                let _ = write!(out, " {cell:<w$} |", w = widths[i]);
            } else {
                let _ = write!(out, " {cell:>w$} |", w = widths[i]);
            }
        }
        out.push('\n');
    };
    line(&mut out, &header);
    out.push('|');
    for (i, width) in widths.iter().enumerate() {
        let dashes = "-".repeat(*width);
        if i == 0 {
            let _ = write!(out, " {dashes} |");
        } else {
            let _ = write!(out, " {}: |", &dashes[1..]);
        }
    }
    out.push('\n');
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(fault: Fault, missing: Vec<String>) -> PhaseReport {
        PhaseReport {
            fault,
            requests: RequestCheck {
                sent: 120,
                unavailable: 3,
                connection_errors: 4,
                slowest: Duration::from_millis(1200),
                unexpected: Vec::new(),
            },
            events: EventCheck {
                expected: 10,
                received: 10 - missing.len(),
                missing,
                ..EventCheck::default()
            },
            postings: PostingCheck {
                expected: 5,
                made: 5,
                ..PostingCheck::default()
            },
            recovery: Ok(Duration::from_millis(1500)),
            drain: Some(Duration::from_millis(200)),
            problems: Vec::new(),
            notes: Vec::new(),
            elapsed: Duration::from_secs(10),
        }
    }

    #[test]
    fn the_table_has_a_row_per_fault_and_says_which_failed() {
        let reports = [
            report(Fault::RedisRestart, Vec::new()),
            report(Fault::LedgerStop, vec!["owner 0: evt_x (sequence 3)".into()]),
        ];
        let table = table(&reports);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(
            lines[2].starts_with("| redis-restart ") && lines[2].ends_with(" ok |"),
            "{table}"
        );
        assert!(
            lines[3].contains("10 / 9 / 0") && lines[3].ends_with(" FAILED |"),
            "{table}"
        );
        assert!(
            lines[2].contains("1.50 s") && lines[2].contains("3 / 4"),
            "{table}"
        );
        assert!(lines[2].contains("1.20 s"), "{table}");
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{table}");
        assert_eq!(
            reports[1].violations(),
            vec!["event missing: owner 0: evt_x (sequence 3)".to_owned()]
        );
    }
}
