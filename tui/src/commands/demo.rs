//! `micro demo`: the platform end to end in one command. A throwaway
//! account (its secrets only in memory), a local receiver that verifies
//! signatures, the listen core forwarding to it, one payment of each
//! outcome and a refund, then a check that every event they produced
//! arrived exactly once, signed, and that the ledger moved by what the
//! payments say. The key is revoked whatever happened.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use client::Client;
use contract::auth::Credentials;
use contract::events::EventType;
use contract::ledger::Account;
use contract::list::PageParams;
use contract::payments::PaymentStatus;
use rand::Rng;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedReceiver;

use super::print;
use crate::cli::{DemoArgs, Format};
use crate::demo::receiver::{Arrival, Receiver};
use crate::demo::tally::{self, Delivery, Expected, Tally};
use crate::exit::{CliError, CliResult, INCOMPLETE, OK};
use crate::listen::{self, ListenOptions, ListenUpdate, StreamState};
use crate::output::{Align, Table, money};
use crate::session::Invocation;
use crate::trigger::{Triggered, trigger};

/// What is triggered, in this order: one payment of each outcome, and a
/// payment that succeeds and is refunded.
const TRIGGERS: [EventType; 4] = [
    EventType::PaymentSucceeded,
    EventType::PaymentFailed,
    EventType::PaymentCanceled,
    EventType::PaymentRefunded,
];
/// After everything expected arrived, how long to keep listening for a
/// duplicate before calling it exactly once.
const SETTLE: Duration = Duration::from_millis(500);
/// How often the ledger is asked whether the postings landed.
const LEDGER_POLL: Duration = Duration::from_millis(200);
const KEY_NAME: &str = "micro-demo";

/// Progress for people: stdout with text output, stderr with JSON output
/// (stdout then holds only the report).
struct Out {
    format: Format,
}

impl Out {
    fn say(&self, text: &str) {
        match self.format {
            Format::Text => print(&format!("{text}\n")),
            Format::Json => eprintln!("{text}"),
        }
    }

    fn step(&self, number: u32, title: &str) {
        self.say(&format!("\n{number}. {title}"));
    }

    fn table(&self, table: &Table) {
        let text: String = table
            .render()
            .lines()
            .map(|line| format!("   {line}\n"))
            .collect();
        match self.format {
            Format::Text => print(&text),
            Format::Json => eprint!("{text}"),
        }
    }
}

/// The throwaway account: nothing of it is written anywhere.
struct DemoAccount {
    email: String,
    access_token: String,
    refresh_token: String,
    api_key: String,
    key_id: String,
    key_prefix: String,
}

fn random_alphanumeric(length: usize) -> String {
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

async fn create_account(client: &Client) -> CliResult<DemoAccount> {
    let credentials = Credentials {
        email: format!("demo-{}@example.com", random_alphanumeric(12).to_lowercase()),
        password: random_alphanumeric(32),
    };
    client.register(&credentials).await?;
    let tokens = client.login(&credentials).await?.into_value();
    let key = client
        .create_api_key(&tokens.access_token, KEY_NAME)
        .await?
        .into_value();
    Ok(DemoAccount {
        email: credentials.email,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        api_key: key.key,
        key_id: key.id,
        key_prefix: key.prefix,
    })
}

/// Balances by account id.
#[derive(Debug, Clone, Serialize)]
struct LedgerReport {
    before: Vec<Account>,
    after: Vec<Account>,
    /// What the succeeded payments, less their fees and refunds, add per currency.
    expected_change: BTreeMap<String, i64>,
    matched: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    passed: bool,
    gateway: String,
    email: String,
    api_key_prefix: String,
    receiver: String,
    triggered: Vec<Triggered>,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<Tally>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ledger: Option<LedgerReport>,
    problems: Vec<String>,
    api_key_revoked: bool,
    seconds: f64,
}

/// Everything the body of the demo found, however far it got.
#[derive(Default)]
struct Findings {
    triggered: Vec<Triggered>,
    events: Option<Tally>,
    ledger: Option<LedgerReport>,
    problems: Vec<String>,
}

pub async fn run(context: &Invocation, args: DemoArgs, format: Format) -> CliResult<u8> {
    if args.timeout == 0 {
        return Err(CliError::Usage("--timeout must be at least 1 second".into()));
    }
    if args.amount <= 0 {
        return Err(CliError::Usage("--amount must be positive".into()));
    }
    let started = Instant::now();
    let out = Out { format };
    let gateway = context.target.gateway.clone();
    let client = context.client()?;
    out.say(&format!("micro demo against {gateway}"));

    out.step(
        1,
        "A throwaway account (its password and key are kept in memory only)",
    );
    let account = create_account(&client).await?;
    out.say(&format!(
        "   registered {}, logged in, API key {}… ({})",
        account.email, account.key_prefix, account.key_id
    ));

    let result = with_account(&client, &account, &args, &out).await;
    let revoked = revoke(&client, &account).await;
    match &revoked {
        Ok(()) => out.say(&format!(
            "   API key {} revoked; the account {} is left unused",
            account.key_id, account.email
        )),
        Err(e) => out.say(&format!(
            "   could not revoke the API key {}: {e}",
            account.key_id
        )),
    }
    let (receiver, mut findings) = result?;
    if let Err(e) = &revoked {
        findings
            .problems
            .push(format!("the API key {} was not revoked: {e}", account.key_id));
    }
    let passed = findings.problems.is_empty();
    let report = Report {
        passed,
        gateway,
        email: account.email.clone(),
        api_key_prefix: account.key_prefix.clone(),
        receiver,
        triggered: findings.triggered,
        events: findings.events,
        ledger: findings.ledger,
        problems: findings.problems,
        api_key_revoked: revoked.is_ok(),
        seconds: started.elapsed().as_secs_f64(),
    };
    match format {
        Format::Json => print(&crate::output::json(&report)),
        Format::Text => {
            if passed {
                let expected = report.events.as_ref().map_or(0, |t| t.rows.len());
                out.say(&format!(
                    "\nPassed: all {expected} events arrived exactly once with a verified signature, \
                     and the ledger moved as the payments say ({:.1} s).",
                    report.seconds
                ));
            } else {
                out.say(&format!("\nFailed ({:.1} s):", report.seconds));
                for problem in &report.problems {
                    out.say(&format!("  - {problem}"));
                }
            }
        }
    }
    Ok(if passed { OK } else { INCOMPLETE })
}

/// A fresh session token for the key route, the one from login if the refresh fails.
async fn revoke(client: &Client, account: &DemoAccount) -> Result<(), String> {
    let token = match client.refresh(&account.refresh_token).await {
        Ok(pair) => pair.into_value().access_token,
        Err(_) => account.access_token.clone(),
    };
    client
        .revoke_api_key(&token, &account.key_id)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Steps 2 to 7; the receiver and the listener are stopped before it returns,
/// on every path. Returns the receiver's URL and what was found.
async fn with_account(
    client: &Client,
    account: &DemoAccount,
    args: &DemoArgs,
    out: &Out,
) -> CliResult<(String, Findings)> {
    let secret = client.webhook_secret(&account.api_key).await?.into_value().secret;
    out.step(2, "A local webhook receiver that verifies each signature");
    let mut receiver = Receiver::start(secret.clone()).await?;
    let url = receiver.url.to_string();
    out.say(&format!(
        "   {url}, checking Standard Webhooks signatures with {}…",
        secret.chars().take(12).collect::<String>()
    ));

    out.step(3, "micro listen, forwarding there");
    let options = ListenOptions {
        // One attempt: a second one would hide a failed first delivery.
        retries: 0,
        forward_timeout: Some(Duration::from_secs(10)),
        ..ListenOptions::forwarding_to(Some(receiver.url.clone()))
    };
    let (handle, mut updates) = match listen::start(client.clone(), account.api_key.clone(), options).await {
        Ok(started) => started,
        Err(e) => {
            receiver.stop().await;
            return Err(e.into());
        }
    };
    let timeout = Duration::from_secs(args.timeout);
    let mut body = Body {
        client,
        api_key: &account.api_key,
        args,
        out,
        timeout,
        updates: &mut updates,
        arrivals: &mut receiver.arrivals,
        deliveries: HashMap::new(),
        findings: Findings::default(),
    };
    let interrupted = tokio::select! {
        () = body.run() => false,
        () = ctrl_c() => true,
    };
    let mut findings = body.findings;
    if interrupted {
        findings.problems.push("interrupted (Ctrl-C)".into());
    }

    out.step(8, "Cleaning up");
    handle.shutdown();
    // The listener ends once its delivery in flight is done.
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        while updates.recv().await.is_some() {}
    })
    .await;
    receiver.stop().await;
    out.say("   listener and receiver stopped");
    Ok((url, findings))
}

/// Resolves on Ctrl-C; never where signals cannot be caught.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

struct Body<'a> {
    client: &'a Client,
    api_key: &'a str,
    args: &'a DemoArgs,
    out: &'a Out,
    timeout: Duration,
    updates: &'a mut UnboundedReceiver<ListenUpdate>,
    arrivals: &'a mut UnboundedReceiver<Arrival>,
    deliveries: HashMap<String, Delivery>,
    findings: Findings,
}

impl Body<'_> {
    async fn run(&mut self) {
        if let Err(problem) = self.steps().await {
            self.findings.problems.push(problem);
        }
    }

    async fn steps(&mut self) -> Result<(), String> {
        self.stream_live().await?;

        self.out.step(4, "Ledger balances before");
        let before = self.accounts().await?;
        if before.is_empty() {
            self.out
                .say("   (no accounts yet: the first payment opens the balance account)");
        } else {
            self.out.table(&crate::commands::ledger::accounts_table(&before));
        }

        self.out.step(5, "One payment of each outcome, and a refund");
        for (number, kind) in TRIGGERS.into_iter().enumerate() {
            let made = trigger(
                self.client,
                self.api_key,
                kind,
                self.args.amount,
                &self.args.currency,
            )
            .await
            .map_err(|e| format!("triggering {kind} failed: {e}"))?;
            self.out.say(&format!("   #{} {}", number + 1, describe(&made)));
            self.findings.triggered.push(made);
        }

        let expected = tally::expected(&self.findings.triggered);
        self.out.step(
            6,
            &format!(
                "Waiting for {} events at the receiver (up to {} s)",
                expected.len(),
                self.timeout.as_secs()
            ),
        );
        let tally = self.collect(&expected).await;
        self.out.table(&events_table(&tally, &self.findings.triggered));
        self.out.say(
            "   DELIVERY: micro listen's POST to the receiver, answered; END TO END: from the event's creation to its arrival",
        );
        self.findings.problems.extend(tally.problems.iter().cloned());
        self.findings.events = Some(tally);

        self.out.step(7, "Ledger balances after");
        let ledger = self.ledger_after(before).await?;
        if !ledger.matched {
            self.findings.problems.push(format!(
                "the ledger did not move by {} within {} s",
                changes(&ledger.expected_change),
                self.timeout.as_secs()
            ));
        }
        self.findings.ledger = Some(ledger);
        Ok(())
    }

    /// Triggering before the stream is live would lose the events: a new
    /// account has no event to resume from.
    async fn stream_live(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut last = None;
        loop {
            tokio::select! {
                update = self.updates.recv() => match update {
                    Some(ListenUpdate::Stream(StreamState::Live { .. })) => {
                        self.out.say("   the event stream is live");
                        return Ok(());
                    }
                    Some(ListenUpdate::Stream(StreamState::Reconnecting { in_, attempt, reason })) => {
                        self.out.say(&format!(
                            "   stream: attempt {attempt} failed ({reason}); again in {:.1} s",
                            in_.as_secs_f64()
                        ));
                        last = Some(reason);
                    }
                    Some(ListenUpdate::Stream(StreamState::Stopped { reason, .. })) => {
                        return Err(format!("the event stream stopped: {reason}"));
                    }
                    Some(_) => {}
                    None => return Err("the listener stopped before the stream was live".into()),
                },
                () = tokio::time::sleep_until(deadline) => {
                    let last = last.map(|r| format!(" (last: {r})")).unwrap_or_default();
                    return Err(format!(
                        "the event stream did not come up within {} s{last}; nothing was triggered",
                        self.timeout.as_secs()
                    ));
                }
            }
        }
    }

    async fn accounts(&self) -> Result<Vec<Account>, String> {
        let page = PageParams {
            limit: Some(100),
            starting_after: None,
        };
        self.client
            .ledger_accounts(self.api_key, &page)
            .await
            .map(|list| list.into_value().data)
            .map_err(|e| format!("cannot list the ledger accounts: {e}"))
    }

    /// Arrivals and delivery reports until every expected event arrived and
    /// was reported, then [`SETTLE`] more for duplicates; or until the deadline.
    async fn collect(&mut self, expected: &[Expected]) -> Tally {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut arrivals: Vec<Arrival> = Vec::new();
        let mut settle_until: Option<tokio::time::Instant> = None;
        let mut listening = true;
        loop {
            let current = tally::tally(expected, &arrivals, &self.deliveries);
            if settle_until.is_none() && current.all_arrived() && current.all_reported() {
                settle_until = Some(tokio::time::Instant::now() + SETTLE);
            }
            let until = settle_until.map_or(deadline, |settle| settle.min(deadline));
            tokio::select! {
                arrival = self.arrivals.recv() => {
                    let Some(arrival) = arrival else { break };
                    let signature = match &arrival.verified {
                        Ok(()) => "signature verified".to_owned(),
                        Err(reason) => format!("signature NOT verified: {reason}"),
                    };
                    let (kind, id) = arrival.event.as_ref().map_or_else(
                        || ("(not an event)".to_owned(), arrival.webhook_id.clone()),
                        |e| (e.kind.to_string(), e.id.clone()),
                    );
                    arrivals.push(arrival);
                    let count = tally::tally(expected, &arrivals, &self.deliveries).arrived();
                    self.out.say(&format!(
                        "   [{count}/{}] {kind:<17} {id}  {signature}",
                        expected.len()
                    ));
                }
                update = self.updates.recv(), if listening => match update {
                    Some(ListenUpdate::Delivery(report)) => {
                        let (status, latency, error) = match &report.outcome {
                            Ok(answer) => (Some(answer.status), answer.latency, None),
                            Err(e) => (None, Duration::ZERO, Some(e.clone())),
                        };
                        self.deliveries.insert(report.event_id.clone(), Delivery { status, latency, error });
                    }
                    Some(ListenUpdate::Stream(StreamState::Reconnecting { reason, .. })) => {
                        self.out.say(&format!("   stream: reconnecting ({reason})"));
                    }
                    Some(_) => {}
                    None => listening = false,
                },
                () = tokio::time::sleep_until(until) => break,
            }
        }
        tally::tally(expected, &arrivals, &self.deliveries)
    }

    async fn ledger_after(&self, before: Vec<Account>) -> Result<LedgerReport, String> {
        let mut expected_change: BTreeMap<String, i64> = BTreeMap::new();
        for made in &self.findings.triggered {
            let payment = &made.payment;
            if payment.status == PaymentStatus::Succeeded {
                *expected_change.entry(payment.currency.clone()).or_default() +=
                    payment.amount - payment.fee.unwrap_or(0) - payment.amount_refunded;
            }
        }
        let totals = |accounts: &[Account]| {
            let mut sums: BTreeMap<String, i64> = BTreeMap::new();
            for account in accounts {
                *sums.entry(account.currency.clone()).or_default() += account.balance;
            }
            sums
        };
        let start = totals(&before);
        let moved = |after: &[Account]| {
            let end = totals(after);
            expected_change.iter().all(|(currency, change)| {
                end.get(currency).copied().unwrap_or(0) - start.get(currency).copied().unwrap_or(0) == *change
            })
        };
        // Payments posts to the ledger from a worker, so the balance follows
        // the payment by a moment.
        let deadline = Instant::now() + self.timeout;
        let mut after = self.accounts().await?;
        while !moved(&after) && Instant::now() < deadline {
            tokio::time::sleep(LEDGER_POLL).await;
            after = self.accounts().await?;
        }
        let matched = moved(&after);
        self.out.table(&balances_table(&before, &after));
        self.out.say(&format!(
            "   expected: {} (the succeeded payments less their fees and the refund){}",
            changes(&expected_change),
            if matched {
                ", and so it is"
            } else {
                ", but it is not"
            }
        ));
        Ok(LedgerReport {
            before,
            after,
            expected_change,
            matched,
        })
    }
}

fn changes(by_currency: &BTreeMap<String, i64>) -> String {
    if by_currency.is_empty() {
        return "no change".into();
    }
    by_currency
        .iter()
        .map(|(currency, change)| signed_money(*change, currency))
        .collect::<Vec<_>>()
        .join(", ")
}

fn signed_money(amount: i64, currency: &str) -> String {
    if amount > 0 {
        format!("+{}", money(amount, currency))
    } else {
        money(amount, currency)
    }
}

fn describe(made: &Triggered) -> String {
    let payment = &made.payment;
    let mut text = format!(
        "{}  {}  {}",
        payment.id,
        money(payment.amount, &payment.currency),
        payment.status.as_str()
    );
    if let Some(code) = &payment.failure_code {
        text.push_str(&format!(" ({})", code.as_str()));
    }
    if let Some(fee) = payment.fee {
        text.push_str(&format!(", fee {}", money(fee, &payment.currency)));
    }
    if let Some(refund) = &made.refund {
        text.push_str(&format!(
            ", then refunded {} ({})",
            money(refund.amount, &refund.currency),
            refund.id
        ));
    }
    text
}

fn millis(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn events_table(tally: &Tally, made: &[Triggered]) -> Table {
    let mut table = Table::new(&[
        ("TYPE", Align::Left),
        ("#", Align::Left),
        ("EVENT", Align::Left),
        ("SIGNATURE", Align::Left),
        ("DELIVERY", Align::Right),
        ("END TO END", Align::Right),
    ]);
    for row in &tally.rows {
        let number = made
            .iter()
            .position(|m| m.payment.id == row.expected.payment_id)
            .map_or_else(|| "?".to_owned(), |i| format!("#{}", i + 1));
        let signature = match (row.verified, row.arrivals) {
            (None, _) => "missing".to_owned(),
            (Some(false), _) => "FAILED".to_owned(),
            (Some(true), 1) => "verified".to_owned(),
            (Some(true), n) => format!("verified, {n}x"),
        };
        let delivery = match &row.delivery {
            Some(Delivery {
                status: Some(status),
                latency,
                ..
            }) => format!("{status} in {}", millis(*latency)),
            Some(Delivery { error: Some(e), .. }) => e.clone(),
            Some(_) | None if row.arrivals > 0 => "not reported".to_owned(),
            _ => "-".to_owned(),
        };
        table.row(vec![
            row.expected.kind.to_string(),
            number,
            row.event_id.clone().unwrap_or_else(|| "-".into()),
            signature,
            delivery,
            row.end_to_end.map_or_else(|| "-".to_owned(), millis),
        ]);
    }
    table
}

fn balances_table(before: &[Account], after: &[Account]) -> Table {
    let mut table = Table::new(&[
        ("ACCOUNT", Align::Left),
        ("NAME", Align::Left),
        ("TYPE", Align::Left),
        ("BEFORE", Align::Right),
        ("AFTER", Align::Right),
        ("CHANGE", Align::Right),
    ]);
    for account in after {
        let was = before
            .iter()
            .find(|b| b.id == account.id)
            .map_or(0, |b| b.balance);
        table.row(vec![
            account.id.clone(),
            account.name.clone(),
            account.kind.as_str().to_owned(),
            money(was, &account.currency),
            money(account.balance, &account.currency),
            signed_money(account.balance - was, &account.currency),
        ]);
    }
    table
}
