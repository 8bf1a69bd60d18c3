//! The verdicts on a recorded run: pure functions of what the receiver got,
//! what the load clients saw, and what the databases hold, so that each rule
//! can be tested on a made-up record.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::time::Duration;

/// An event as the webhook receiver got it, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// Whose listener forwarded it (the receiver's path says).
    pub owner: usize,
    pub id: String,
    pub sequence: i64,
    pub event_type: String,
    /// The payment (or refund) the event is about.
    pub object_id: String,
    /// Since the start of the run.
    pub at: Duration,
}

/// An event the payments database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub owner: usize,
    pub id: String,
    pub sequence: i64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EventCheck {
    pub expected: usize,
    /// Expected events that reached their owner's listener.
    pub received: usize,
    /// Deliveries of an event that had already arrived.
    pub duplicated: usize,
    pub missing: Vec<String>,
    /// An event delivered after a later one of the same owner.
    pub misordered: Vec<String>,
    /// Delivered to another owner's listener, or unknown to payments.
    pub misdelivered: Vec<String>,
    /// Events of an earlier phase, already reported missing, that came now.
    pub late: usize,
}

impl EventCheck {
    pub fn passed(&self) -> bool {
        self.duplicated == 0
            && self.missing.is_empty()
            && self.misordered.is_empty()
            && self.misdelivered.is_empty()
    }
}

/// Judges the arrivals from `history[from..]` (the phase) against the
/// events the phase created, `expected`. `known` maps every event payments
/// ever stored to its owner; `history[..from]` is what arrived before, so a
/// repeat of an earlier event counts as a duplicate and an older sequence
/// after a newer one as misordered, across phases.
pub fn check_events(
    expected: &[StoredEvent],
    known: &HashMap<String, usize>,
    history: &[Arrival],
    from: usize,
) -> EventCheck {
    let from = from.min(history.len());
    let mut check = EventCheck {
        expected: expected.len(),
        ..EventCheck::default()
    };
    let mut seen: HashSet<&str> = HashSet::new();
    // The highest sequence delivered so far, per owner.
    let mut newest: HashMap<usize, i64> = HashMap::new();
    for arrival in &history[..from] {
        if seen.insert(&arrival.id) {
            let latest = newest.entry(arrival.owner).or_insert(arrival.sequence);
            *latest = (*latest).max(arrival.sequence);
        }
    }
    let wanted: HashSet<&str> = expected.iter().map(|e| e.id.as_str()).collect();
    for arrival in &history[from..] {
        if !seen.insert(&arrival.id) {
            check.duplicated += 1;
            continue;
        }
        match known.get(&arrival.id) {
            None => check.misdelivered.push(format!(
                "{} (sequence {}) reached owner {}'s listener but payments never stored it",
                arrival.id, arrival.sequence, arrival.owner
            )),
            Some(&owner) if owner != arrival.owner => check.misdelivered.push(format!(
                "{} of owner {owner} reached owner {}'s listener",
                arrival.id, arrival.owner
            )),
            Some(_) => {}
        }
        let latest = newest.entry(arrival.owner).or_insert(i64::MIN);
        if arrival.sequence <= *latest {
            check.misordered.push(format!(
                "owner {}: {} (sequence {}) arrived after sequence {}",
                arrival.owner, arrival.id, arrival.sequence, *latest
            ));
        }
        *latest = (*latest).max(arrival.sequence);
        if wanted.contains(arrival.id.as_str()) {
            check.received += 1;
        } else if known.contains_key(&arrival.id) {
            check.late += 1;
        }
    }
    let arrived: HashSet<&str> = history.iter().map(|a| a.id.as_str()).collect();
    check.missing = expected
        .iter()
        .filter(|e| !arrived.contains(e.id.as_str()))
        .map(|e| format!("owner {}: {} (sequence {})", e.owner, e.id, e.sequence))
        .collect();
    check
}

/// What payments owes the ledger: a succeeded payment's amount, or a refund's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwedPosting {
    /// The payment or refund id: the posting's reference.
    pub reference: String,
    pub amount: i64,
    pub currency: String,
}

/// What the ledger recorded under one of payments' references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerPosting {
    pub reference: String,
    pub transactions: i64,
    /// The sum of the debit entries: the gross amount moved.
    pub debited: i64,
    /// Every currency among the entries, sorted.
    pub currencies: Vec<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PostingCheck {
    pub expected: usize,
    /// Expected references the ledger recorded, once or more.
    pub made: usize,
    pub missing: Vec<String>,
    pub duplicated: Vec<String>,
    /// Recorded with another amount or currency than payments owed.
    pub wrong: Vec<String>,
    /// Recorded under a reference that payments never owed.
    pub unexpected: Vec<String>,
}

impl PostingCheck {
    pub fn passed(&self) -> bool {
        self.missing.is_empty()
            && self.duplicated.is_empty()
            && self.wrong.is_empty()
            && self.unexpected.is_empty()
    }
}

/// `expected` is what the phase owes, `owed` every reference payments ever
/// owed, and `recorded` what the ledger holds that no earlier phase judged.
pub fn check_postings(
    expected: &[OwedPosting],
    owed: &HashSet<String>,
    recorded: &[LedgerPosting],
) -> PostingCheck {
    let by_reference: HashMap<&str, &LedgerPosting> =
        recorded.iter().map(|p| (p.reference.as_str(), p)).collect();
    let mut check = PostingCheck {
        expected: expected.len(),
        ..PostingCheck::default()
    };
    for owed in expected {
        let Some(posting) = by_reference.get(owed.reference.as_str()) else {
            check
                .missing
                .push(format!("{} ({} {})", owed.reference, owed.amount, owed.currency));
            continue;
        };
        check.made += 1;
        if posting.transactions != 1 {
            check.duplicated.push(format!(
                "{} posted {} times",
                owed.reference, posting.transactions
            ));
        }
        if posting.debited != owed.amount || posting.currencies != [owed.currency.clone()] {
            check.wrong.push(format!(
                "{}: owed {} {}, the ledger moved {} {}",
                owed.reference,
                owed.amount,
                owed.currency,
                posting.debited,
                posting.currencies.join("+")
            ));
        }
    }
    check.unexpected = recorded
        .iter()
        .filter(|p| !owed.contains(&p.reference))
        .map(|p| format!("{} ({} transactions)", p.reference, p.transactions))
        .collect();
    check
}

/// Debits and credits per currency over every entry of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyTotals {
    pub currency: String,
    pub debits: i64,
    pub credits: i64,
}

/// The currencies whose debits and credits differ.
pub fn unbalanced(totals: &[CurrencyTotals]) -> Vec<String> {
    totals
        .iter()
        .filter(|t| t.debits != t.credits)
        .map(|t| format!("{}: debits {} != credits {}", t.currency, t.debits, t.credits))
        .collect()
}

/// How one HTTP request of the load ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The status and the error body's `code`, if any.
    Status(u16, Option<String>),
    /// Nobody listened: the process is down.
    Refused,
    /// The connection broke before a whole answer came.
    Broken(String),
    TimedOut,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Status(200..=299, _))
    }

    /// Worth sending again with the same idempotency key.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status(status, _) => *status == 409 || *status == 429 || *status >= 500,
            Self::Refused | Self::Broken(_) | Self::TimedOut => true,
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(status, Some(code)) => write!(f, "{status} {code}"),
            Self::Status(status, None) => write!(f, "{status}"),
            Self::Refused => f.write_str("connection refused"),
            Self::Broken(why) => write!(f, "connection broken ({why})"),
            Self::TimedOut => f.write_str("timed out"),
        }
    }
}

/// One request the load sent, and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Since the start of the run.
    pub started: Duration,
    pub ended: Duration,
    /// Which gateway replica, 0 or 1.
    pub gateway: usize,
    pub what: &'static str,
    pub answer: Answer,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestCheck {
    pub sent: usize,
    /// 503s inside the outage window.
    pub unavailable: usize,
    /// Refused, broken and timed-out connections inside the outage window.
    pub connection_errors: usize,
    /// The longest a request waited for its answer (or its failure).
    pub slowest: Duration,
    pub unexpected: Vec<String>,
}

impl RequestCheck {
    pub fn passed(&self) -> bool {
        self.unexpected.is_empty()
    }
}

/// Inside `outage` (a request overlapping it counts as inside), a 503 or a
/// failed connection is what an outage looks like; outside it neither is
/// acceptable, and no 5xx but 503 is acceptable anywhere. Of the 4xx, only
/// 409 (the same idempotency key still in flight, after a retry) and 429
/// are part of a healthy run: the load sends nothing a service should refuse.
pub fn check_requests(sent: &[Sent], outage: Range<Duration>) -> RequestCheck {
    let mut check = RequestCheck {
        sent: sent.len(),
        ..RequestCheck::default()
    };
    for request in sent {
        check.slowest = check.slowest.max(request.ended.saturating_sub(request.started));
        let inside = request.started < outage.end && request.ended >= outage.start;
        let fine = match &request.answer {
            Answer::Status(status, _) if *status < 400 => true,
            Answer::Status(409 | 429, _) => true,
            Answer::Status(503, _) if inside => {
                check.unavailable += 1;
                true
            }
            Answer::Refused | Answer::Broken(_) | Answer::TimedOut if inside => {
                check.connection_errors += 1;
                true
            }
            _ => false,
        };
        if !fine {
            check.unexpected.push(format!(
                "{} via gateway {} at {:.1}-{:.1} s: {}{}",
                request.what,
                request.gateway,
                request.started.as_secs_f64(),
                request.ended.as_secs_f64(),
                request.answer,
                if inside { "" } else { " (outside the outage)" }
            ));
        }
    }
    check
}

/// What the load clients were told succeeded.
#[derive(Debug, Default, Clone)]
pub struct Acknowledged {
    /// Payments answered 201.
    pub created: Vec<String>,
    /// Payments a confirm answered 200 with status `succeeded`.
    pub succeeded: Vec<String>,
    /// Refunds answered 201.
    pub refunds: Vec<String>,
    /// Every confirm answered 200, as the client saw it.
    pub confirms: Vec<ConfirmAnswer>,
}

/// A confirm's answer: the payment as the client was told it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmAnswer {
    pub id: String,
    pub status: String,
    pub fee: Option<i64>,
    /// Replayed from the stored answer (`Idempotent-Replayed: true`).
    pub replayed: bool,
}

/// A payment and the count of each thing its committed writes leave: an
/// event per change, a posting per success and refund, an answer stored
/// under the idempotency key of each request that made one.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Footprint {
    pub id: String,
    pub status: String,
    pub fee: Option<i64>,
    pub refunds: i64,
    pub created_events: i64,
    pub settled_events: i64,
    pub refunded_events: i64,
    pub payment_postings: i64,
    pub refund_postings: i64,
    pub create_answers: i64,
    pub confirm_answers: i64,
    pub refund_answers: i64,
}

/// Payments whose writes are there only in part: a payment settled
/// without its event, its posting or its confirm's answer, or the other
/// way round; a refund without its event, posting or answer. Every
/// request of the load carries an idempotency key, so every committed
/// request left exactly one answer.
pub fn half_written(footprints: &[Footprint]) -> Vec<String> {
    let mut found = Vec::new();
    for f in footprints {
        let settled = i64::from(matches!(f.status.as_str(), "succeeded" | "failed"));
        let paid = i64::from(f.status == "succeeded");
        let expected = [
            ("payment.created events", f.created_events, 1),
            ("answers to its create", f.create_answers, 1),
            ("succeeded or failed events", f.settled_events, settled),
            ("answers to its confirm", f.confirm_answers, settled),
            ("payment postings", f.payment_postings, paid),
            ("payment.refunded events", f.refunded_events, f.refunds),
            ("refund postings", f.refund_postings, f.refunds),
            ("answers to its refunds", f.refund_answers, f.refunds),
        ];
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(_, found, wanted)| found != wanted)
            .map(|(what, found, wanted)| format!("{found} {what}, not {wanted}"))
            .collect();
        if !wrong.is_empty() {
            found.push(format!(
                "{} ({}, {} refunds): {}",
                f.id,
                f.status,
                f.refunds,
                wrong.join(", ")
            ));
        }
    }
    found
}

/// Confirm answers that disagree with the payment as stored: a retry
/// under the same key must get the answer that was committed, whether it
/// ran the confirm or replayed it.
pub fn answers_disagree(confirms: &[ConfirmAnswer], footprints: &[Footprint]) -> Vec<String> {
    let stored: HashMap<&str, &Footprint> = footprints.iter().map(|f| (f.id.as_str(), f)).collect();
    confirms
        .iter()
        .filter_map(|answer| match stored.get(answer.id.as_str()) {
            Some(f) if f.status == answer.status && f.fee == answer.fee => None,
            Some(f) => Some(format!(
                "{}: the confirm{} answered {} with fee {:?}, stored {} with fee {:?}",
                answer.id,
                if answer.replayed { " (replayed)" } else { "" },
                answer.status,
                answer.fee,
                f.status,
                f.fee
            )),
            None => Some(format!("{}: confirmed, not in the database", answer.id)),
        })
        .collect()
}

/// Acknowledged writes that the payments database does not hold.
pub fn lost_writes(
    acknowledged: &Acknowledged,
    payments: &HashMap<String, String>,
    refunds: &HashSet<String>,
) -> Vec<String> {
    let mut lost = Vec::new();
    for id in &acknowledged.created {
        if !payments.contains_key(id) {
            lost.push(format!("{id}: created (201), not in the database"));
        }
    }
    for id in &acknowledged.succeeded {
        match payments.get(id).map(String::as_str) {
            Some("succeeded") => {}
            other => lost.push(format!("{id}: confirmed as succeeded, stored as {other:?}")),
        }
    }
    for id in &acknowledged.refunds {
        if !refunds.contains(id) {
            lost.push(format!("{id}: refunded (201), not in the database"));
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    fn footprint(status: &str, refunds: i64) -> Footprint {
        let settled = i64::from(status != "requires_confirmation");
        let paid = i64::from(status == "succeeded");
        Footprint {
            id: "pay_1".into(),
            status: status.into(),
            fee: (paid == 1).then_some(59),
            refunds,
            created_events: 1,
            settled_events: settled,
            refunded_events: refunds,
            payment_postings: paid,
            refund_postings: refunds,
            create_answers: 1,
            confirm_answers: settled,
            refund_answers: refunds,
        }
    }

    #[test]
    fn whole_writes_pass_and_any_missing_or_extra_part_is_named() {
        let whole = [
            footprint("requires_confirmation", 0),
            footprint("succeeded", 0),
            footprint("succeeded", 2),
            footprint("failed", 0),
        ];
        assert_eq!(half_written(&whole), Vec::<String>::new());

        let mut no_answer = footprint("succeeded", 0);
        no_answer.confirm_answers = 0;
        let mut no_posting = footprint("succeeded", 1);
        no_posting.refund_postings = 0;
        let mut event_without_change = footprint("requires_confirmation", 0);
        event_without_change.settled_events = 1;
        let found = half_written(&[no_answer, no_posting, event_without_change]);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].contains("0 answers to its confirm, not 1"),
            "{}",
            found[0]
        );
        assert!(found[1].contains("0 refund postings, not 1"), "{}", found[1]);
        assert!(
            found[2].contains("1 succeeded or failed events, not 0"),
            "{}",
            found[2]
        );
    }

    #[test]
    fn a_confirm_answer_must_match_the_stored_payment() {
        let stored = [footprint("succeeded", 0)];
        let answer = |status: &str, fee| ConfirmAnswer {
            id: "pay_1".into(),
            status: status.into(),
            fee,
            replayed: true,
        };
        assert!(answers_disagree(&[answer("succeeded", Some(59))], &stored).is_empty());
        assert_eq!(answers_disagree(&[answer("failed", None)], &stored).len(), 1);
        assert_eq!(
            answers_disagree(&[answer("succeeded", Some(60))], &stored).len(),
            1
        );
        let elsewhere = ConfirmAnswer {
            id: "pay_2".into(),
            ..answer("succeeded", Some(59))
        };
        assert_eq!(answers_disagree(&[elsewhere], &stored).len(), 1);
    }

    fn stored(owner: usize, sequence: i64) -> StoredEvent {
        StoredEvent {
            owner,
            id: format!("evt_{owner}_{sequence}"),
            sequence,
        }
    }

    fn arrival(owner: usize, sequence: i64) -> Arrival {
        Arrival {
            owner,
            id: format!("evt_{owner}_{sequence}"),
            sequence,
            event_type: "payment.created".into(),
            object_id: format!("pay_{owner}_{sequence}"),
            at: Duration::from_millis(sequence as u64),
        }
    }

    fn known(events: &[StoredEvent]) -> HashMap<String, usize> {
        events.iter().map(|e| (e.id.clone(), e.owner)).collect()
    }

    #[test]
    fn a_clean_phase_passes() {
        let expected: Vec<_> = (1..=3).flat_map(|s| [stored(0, s), stored(1, s)]).collect();
        let history: Vec<_> = (1..=3).flat_map(|s| [arrival(1, s), arrival(0, s)]).collect();
        let check = check_events(&expected, &known(&expected), &history, 0);
        assert!(check.passed(), "{check:?}");
        assert_eq!((check.expected, check.received, check.duplicated), (6, 6, 0));
    }

    #[test]
    fn duplicates_are_counted_within_the_phase_and_across_phases() {
        let earlier = [stored(0, 1), stored(0, 2)];
        let now = vec![stored(0, 3)];
        let all: Vec<_> = earlier.iter().chain(&now).cloned().collect();
        // Sequence 2 again (from the earlier phase), then 3 twice.
        let history = vec![
            arrival(0, 1),
            arrival(0, 2),
            arrival(0, 2),
            arrival(0, 3),
            arrival(0, 3),
        ];
        let check = check_events(&now, &known(&all), &history, 2);
        assert_eq!(check.duplicated, 2, "{check:?}");
        assert_eq!(check.received, 1);
        assert!(
            check.misordered.is_empty(),
            "a duplicate is not also misordered: {check:?}"
        );
        assert!(!check.passed());
    }

    #[test]
    fn an_older_sequence_after_a_newer_one_is_misordered() {
        let expected: Vec<_> = (1..=3).map(|s| stored(0, s)).collect();
        let history = vec![arrival(0, 1), arrival(0, 3), arrival(0, 2)];
        let check = check_events(&expected, &known(&expected), &history, 0);
        assert_eq!(check.misordered.len(), 1, "{check:?}");
        assert!(check.misordered[0].contains("evt_0_2"), "{check:?}");
        assert_eq!(check.received, 3);
        assert!(!check.passed());
        // Order is per owner: another owner's lower sequences interleave freely.
        let expected = vec![stored(0, 5), stored(1, 1)];
        let history = vec![arrival(0, 5), arrival(1, 1)];
        assert!(check_events(&expected, &known(&expected), &history, 0).passed());
    }

    #[test]
    fn an_order_broken_across_phases_is_misordered_too() {
        let earlier = [stored(0, 4)];
        let now = vec![stored(0, 3)];
        let all: Vec<_> = earlier.iter().chain(&now).cloned().collect();
        let history = vec![arrival(0, 4), arrival(0, 3)];
        let check = check_events(&now, &known(&all), &history, 1);
        assert_eq!(check.misordered.len(), 1, "{check:?}");
    }

    #[test]
    fn a_missing_event_is_named() {
        let expected: Vec<_> = (1..=3).map(|s| stored(2, s)).collect();
        let history = vec![arrival(2, 1), arrival(2, 3)];
        let check = check_events(&expected, &known(&expected), &history, 0);
        assert_eq!(check.missing, vec!["owner 2: evt_2_2 (sequence 2)".to_owned()]);
        assert_eq!(check.received, 2);
        assert!(check.misordered.is_empty());
        assert!(!check.passed());
    }

    #[test]
    fn an_event_at_the_wrong_listener_or_never_stored_is_misdelivered() {
        let expected = vec![stored(0, 1)];
        let mut wrong = arrival(0, 1);
        wrong.owner = 1;
        let invented = arrival(0, 9);
        let check = check_events(&expected, &known(&expected), &[wrong, invented], 0);
        assert_eq!(check.misdelivered.len(), 2, "{check:?}");
        assert!(!check.passed());
    }

    #[test]
    fn an_earlier_phases_missing_event_arriving_late_is_not_a_duplicate() {
        let earlier = [stored(0, 1)];
        let now = vec![stored(0, 2)];
        let all: Vec<_> = earlier.iter().chain(&now).cloned().collect();
        let history = vec![arrival(0, 1), arrival(0, 2)];
        // The earlier phase's window ended before sequence 1 came.
        let check = check_events(&now, &known(&all), &history, 0);
        assert_eq!((check.late, check.received, check.duplicated), (1, 1, 0));
        assert!(check.passed(), "{check:?}");
    }

    fn owed(reference: &str, amount: i64) -> OwedPosting {
        OwedPosting {
            reference: reference.into(),
            amount,
            currency: "usd".into(),
        }
    }

    fn posted(reference: &str, transactions: i64, debited: i64) -> LedgerPosting {
        LedgerPosting {
            reference: reference.into(),
            transactions,
            debited,
            currencies: vec!["usd".into()],
        }
    }

    #[test]
    fn postings_missing_doubled_wrong_or_unowed_are_found() {
        let expected = vec![
            owed("pay_a", 1000),
            owed("pay_b", 2000),
            owed("re_c", 300),
            owed("pay_d", 5),
        ];
        let all: HashSet<String> = expected.iter().map(|o| o.reference.clone()).collect();
        let recorded = vec![
            posted("pay_a", 1, 1000),
            posted("pay_b", 2, 2000),
            posted("re_c", 1, 299),
            posted("pay_x", 1, 42),
        ];
        let check = check_postings(&expected, &all, &recorded);
        assert_eq!((check.expected, check.made), (4, 3));
        assert_eq!(check.missing, vec!["pay_d (5 usd)".to_owned()]);
        assert_eq!(check.duplicated, vec!["pay_b posted 2 times".to_owned()]);
        assert_eq!(check.wrong.len(), 1, "{check:?}");
        assert!(check.wrong[0].starts_with("re_c"));
        assert_eq!(check.unexpected, vec!["pay_x (1 transactions)".to_owned()]);
        assert!(!check.passed());

        let right = vec![posted("pay_a", 1, 1000)];
        let check = check_postings(&expected[..1], &all, &right);
        assert!(check.passed(), "{check:?}");
    }

    #[test]
    fn a_posting_in_the_wrong_currency_is_wrong() {
        let mut eur = posted("pay_a", 1, 1000);
        eur.currencies = vec!["eur".into()];
        let all = HashSet::from(["pay_a".to_owned()]);
        let check = check_postings(&[owed("pay_a", 1000)], &all, &[eur]);
        assert_eq!(check.wrong.len(), 1);
    }

    #[test]
    fn the_trial_balance_names_unbalanced_currencies() {
        let totals = vec![
            CurrencyTotals {
                currency: "usd".into(),
                debits: 10,
                credits: 10,
            },
            CurrencyTotals {
                currency: "eur".into(),
                debits: 10,
                credits: 9,
            },
        ];
        assert_eq!(
            unbalanced(&totals),
            vec!["eur: debits 10 != credits 9".to_owned()]
        );
    }

    fn sent(at: u64, answer: Answer) -> Sent {
        Sent {
            started: Duration::from_secs(at),
            ended: Duration::from_secs(at) + Duration::from_millis(100),
            gateway: 0,
            what: "create",
            answer,
        }
    }

    #[test]
    fn outage_answers_pass_only_inside_the_window_and_other_5xx_never() {
        let outage = Duration::from_secs(10)..Duration::from_secs(20);
        let requests = vec![
            sent(5, Answer::Status(201, None)),
            sent(12, Answer::Status(503, Some("upstream_unavailable".into()))),
            sent(13, Answer::Refused),
            sent(14, Answer::Broken("reset".into())),
            sent(15, Answer::TimedOut),
            sent(16, Answer::Status(409, Some("idempotency_key_in_use".into()))),
        ];
        let check = check_requests(&requests, outage.clone());
        assert!(check.passed(), "{check:?}");
        assert_eq!(
            (check.sent, check.unavailable, check.connection_errors),
            (6, 1, 3)
        );
        assert_eq!(check.slowest, Duration::from_millis(100));

        let requests = vec![
            sent(12, Answer::Status(502, Some("bad_gateway".into()))),
            sent(13, Answer::Status(500, Some("internal_error".into()))),
            sent(25, Answer::Status(503, None)),
            sent(3, Answer::Refused),
            sent(15, Answer::Status(401, Some("invalid_api_key".into()))),
        ];
        let check = check_requests(&requests, outage);
        assert_eq!(check.unexpected.len(), 5, "{check:?}");
        assert!(check.unexpected[2].ends_with("(outside the outage)"));
    }

    #[test]
    fn a_request_that_straddles_the_window_counts_as_inside() {
        let outage = Duration::from_secs(10)..Duration::from_secs(20);
        let straddling = Sent {
            started: Duration::from_secs(9),
            ended: Duration::from_secs(11),
            ..sent(0, Answer::TimedOut)
        };
        assert!(check_requests(&[straddling], outage).passed());
    }

    #[test]
    fn acknowledged_writes_must_be_stored() {
        let acknowledged = Acknowledged {
            created: vec!["pay_a".into(), "pay_b".into()],
            succeeded: vec!["pay_a".into(), "pay_b".into()],
            refunds: vec!["re_a".into(), "re_b".into()],
            confirms: Vec::new(),
        };
        let payments = HashMap::from([
            ("pay_a".to_owned(), "succeeded".to_owned()),
            ("pay_b".to_owned(), "failed".to_owned()),
        ]);
        let refunds = HashSet::from(["re_a".to_owned()]);
        let lost = lost_writes(&acknowledged, &payments, &refunds);
        assert_eq!(lost.len(), 2, "{lost:?}");
        assert!(lost[0].starts_with("pay_b") && lost[1].starts_with("re_b"));
    }
}
