//! A run: the platform started, owners registered, a listener each, then one
//! phase per fault (load, fault, recovery, drain, checks) and the table.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;

use crate::check::{self, StoredEvent};
use crate::cluster::{self, Binaries, Platform};
use crate::db;
use crate::faults::{Fault, Settings};
use crate::listeners::Listener;
use crate::load::{self, Api, Load, Owner};
use crate::receiver::Receiver;
use crate::report::{self, PhaseReport};

/// How long after recovery a 503 or a failed connection still counts as
/// part of the outage: a request sent just before the last replica turned
/// ready may be answered just after.
const GRACE: Duration = Duration::from_secs(1);
const DRAIN_POLL: Duration = Duration::from_millis(200);
const CRASH_POLL: Duration = Duration::from_millis(20);

pub struct Options {
    pub faults: Vec<Fault>,
    pub settings: Settings,
    pub bin_dir: Option<PathBuf>,
    pub keep_logs: bool,
}

/// Runs every fault; true when all passed. The run's directory (logs, the
/// database's files) is removed afterwards unless something failed or
/// `keep_logs` asks otherwise.
pub async fn run(options: Options) -> anyhow::Result<bool> {
    let binaries = Binaries::locate(options.bin_dir.clone())?;
    let dir = tempfile::Builder::new()
        .prefix("micro-chaos-")
        .tempdir()
        .context("creating the run's directory")?;
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    println!(
        "micro-chaos: {} with binaries from {}; logs in {}",
        options
            .faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", "),
        binaries.dir.display(),
        logs.display()
    );
    let started = Instant::now();
    let outcome = run_in(&options, &binaries, dir.path(), &logs).await;
    let passed = matches!(outcome, Ok(true));
    // An error is printed by main, as every binary's is.
    if outcome.is_ok() {
        println!(
            "micro-chaos: {} in {:.0} s",
            if passed { "passed" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
    }
    if passed && !options.keep_logs {
        drop(dir);
    } else {
        let kept = dir.keep();
        println!(
            "micro-chaos: service, listener and database logs kept in {}",
            kept.join("logs").display()
        );
    }
    outcome
}

async fn run_in(options: &Options, binaries: &Binaries, root: &Path, logs: &Path) -> anyhow::Result<bool> {
    let mut run = Run::start(options.settings.clone(), binaries, root, logs).await?;
    let outcome = tokio::select! {
        outcome = run.faults(&options.faults) => outcome,
        signal = tokio::signal::ctrl_c() => {
            signal.context("waiting for Ctrl-C")?;
            Err(anyhow::anyhow!("interrupted"))
        }
    };
    run.stop().await;
    let reports = outcome?;
    println!("\n{}", report::table(&reports));
    for report in &reports {
        for note in &report.notes {
            println!("{}: note: {note}", report.fault);
        }
    }
    let mut passed = true;
    for report in &reports {
        let violations = report.violations();
        if !violations.is_empty() {
            passed = false;
            println!("{} FAILED:", report.fault);
            for line in violations.iter().take(30) {
                println!("  {line}");
            }
            if violations.len() > 30 {
                println!("  ... and {} more", violations.len() - 30);
            }
        }
    }
    Ok(passed)
}

/// Everything around the platform: the receiver, the owners with a
/// listener each, and the connections the checks read the databases with.
struct Clients {
    receiver: Receiver,
    owners: Vec<Owner>,
    listeners: Vec<Listener>,
    payments_db: PgPool,
    ledger_db: PgPool,
}

impl Clients {
    async fn start(
        settings: &Settings,
        platform: &Platform,
        binaries: &Binaries,
        clock: Instant,
        root: &Path,
        logs: &Path,
    ) -> anyhow::Result<Self> {
        let receiver = Receiver::start(clock)
            .await
            .context("starting the webhook receiver")?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let mut owners = Vec::new();
        for index in 0..settings.owners {
            let gateway = platform.gateways[index % 2].url();
            owners.push(load::register(&http, &gateway, index, &run_id[..8]).await?);
        }
        let mut listeners = Vec::new();
        for owner in &owners {
            let gateway = owner.index % 2;
            listeners.push(
                Listener::start(
                    &binaries.path("micro"),
                    owner,
                    (gateway, &platform.gateways[gateway].url()),
                    &receiver.url(owner.index),
                    &root.join(format!("micro-{}", owner.index)),
                    logs.join(format!("listen-{}.log", owner.index)),
                    settings.ready_deadline,
                )
                .await?,
            );
        }
        Ok(Self {
            payments_db: db::pool(&platform.postgres.url("micro_payments")).await?,
            ledger_db: db::pool(&platform.postgres.url("micro_ledger")).await?,
            receiver,
            owners,
            listeners,
        })
    }
}

/// What the checks after a phase found.
struct Judged {
    events: check::EventCheck,
    postings: check::PostingCheck,
    problems: Vec<String>,
    notes: Vec<String>,
}

struct Run {
    settings: Settings,
    clock: Instant,
    platform: Platform,
    receiver: Receiver,
    owners: Arc<Vec<Owner>>,
    listeners: Vec<Listener>,
    payments_db: PgPool,
    ledger_db: PgPool,
    readiness: reqwest::Client,
    /// Every event id payments stored, with its owner's index.
    known: HashMap<String, usize>,
    /// Events and posting references an earlier phase already judged.
    judged_events: HashSet<String>,
    judged_postings: HashSet<String>,
    /// Failed deliveries per listener at the start of the phase.
    failed_deliveries: Vec<usize>,
    /// What the fault itself found, for the phase's checks to report.
    fault_problems: Vec<String>,
    fault_notes: Vec<String>,
}

impl Run {
    async fn start(
        settings: Settings,
        binaries: &Binaries,
        root: &Path,
        logs: &Path,
    ) -> anyhow::Result<Self> {
        let clock = Instant::now();
        let mut platform = Platform::start(root, logs, binaries, settings.ready_deadline, &[]).await?;
        println!(
            "micro-chaos: platform ready in {:.1} s (postgres :{}, redis :{}, relay {}, gateways {} and {})",
            clock.elapsed().as_secs_f64(),
            platform.postgres.port,
            platform.redis.port,
            platform.relay.addr(),
            platform.gateways[0].addr,
            platform.gateways[1].addr
        );
        let clients = Clients::start(&settings, &platform, binaries, clock, root, logs).await;
        let clients = match clients {
            Ok(clients) => clients,
            Err(e) => {
                platform.stop().await;
                return Err(e);
            }
        };
        println!(
            "micro-chaos: {} owners registered, a listener each (owners 0, 2, .. on gateway 0; 1, 3, .. on gateway 1)",
            clients.owners.len()
        );
        Ok(Self {
            failed_deliveries: vec![0; clients.listeners.len()],
            settings,
            clock,
            platform,
            receiver: clients.receiver,
            owners: Arc::new(clients.owners),
            listeners: clients.listeners,
            payments_db: clients.payments_db,
            ledger_db: clients.ledger_db,
            readiness: cluster::readiness_client()?,
            known: HashMap::new(),
            judged_events: HashSet::new(),
            judged_postings: HashSet::new(),
            fault_problems: Vec::new(),
            fault_notes: Vec::new(),
        })
    }

    async fn faults(&mut self, faults: &[Fault]) -> anyhow::Result<Vec<PhaseReport>> {
        let mut reports = Vec::new();
        for &fault in faults {
            println!("micro-chaos: {fault}: {}", fault.describe(&self.settings));
            let report = self.phase(fault).await?;
            println!(
                "micro-chaos: {fault}: {} in {:.1} s ({} requests, {} events, {} postings, recovery {})",
                if report.passed() { "ok" } else { "FAILED" },
                report.elapsed.as_secs_f64(),
                report.requests.sent,
                report.events.expected,
                report.postings.expected,
                report
                    .recovery
                    .as_ref()
                    .map_or_else(|e| format!("none: {e}"), |d| format!("{:.2} s", d.as_secs_f64()))
            );
            let recovered = report.recovery.is_ok();
            reports.push(report);
            // A platform that did not come back would fail every later
            // phase for this phase's reason.
            if !recovered {
                break;
            }
        }
        Ok(reports)
    }

    fn now(&self) -> Duration {
        self.clock.elapsed()
    }

    fn gateway_urls(&self) -> [String; 2] {
        [self.platform.gateways[0].url(), self.platform.gateways[1].url()]
    }

    async fn phase(&mut self, fault: Fault) -> anyhow::Result<PhaseReport> {
        let began = Instant::now();
        let from = self.receiver.count();
        let api = Api::new(self.gateway_urls(), self.clock, self.settings.retry_for)?;
        let load = Load::start(&api, &self.owners, self.settings.clients, self.settings.think);
        tokio::time::sleep(self.settings.warmup).await;

        let fault_started = self.now();
        self.inject(fault).await?;
        let recovery = self.recover(fault, &api).await;
        let recovered = self.now();
        tokio::time::sleep(self.settings.after).await;
        load.stop().await;
        let drain = self.drain().await?;
        let record = api.take();

        let outage = match &recovery {
            Ok(_) => fault_started..recovered + GRACE,
            Err(_) => fault_started..self.now(),
        };
        let requests = check::check_requests(&record.sent, outage);
        let Judged {
            events,
            postings,
            mut problems,
            notes,
        } = self.judge(from, &record).await?;
        problems.extend(record.abandoned.iter().map(|a| format!("gave up: {a}")));
        Ok(PhaseReport {
            fault,
            requests,
            events,
            postings,
            recovery,
            drain,
            problems,
            notes,
            elapsed: began.elapsed(),
        })
    }

    /// Does the damage and undoes it; returns when the faulted part has been
    /// restarted (or continued, or reconnected), not when it is ready again.
    async fn inject(&mut self, fault: Fault) -> anyhow::Result<()> {
        if fault == Fault::PaymentsCrash {
            return self.crash_at_each_point().await;
        }
        let platform = &mut self.platform;
        let settings = &self.settings;
        match fault {
            Fault::RedisRestart => {
                platform.redis.stop().await?;
                tokio::time::sleep(settings.down).await;
                platform.redis.start()?;
            }
            Fault::PostgresRestart => {
                platform.postgres.stop().await?;
                tokio::time::sleep(settings.down).await;
                platform.postgres.start()?;
            }
            Fault::PaymentsKill => {
                platform.payments.kill().await?;
                tokio::time::sleep(settings.down).await;
                platform.payments.start()?;
            }
            Fault::GatewayKill => {
                platform.gateways[0].kill().await?;
                tokio::time::sleep(settings.down).await;
                platform.gateways[0].start()?;
            }
            Fault::LedgerStop => {
                platform.ledger.pause()?;
                tokio::time::sleep(settings.ledger_stop).await;
                platform.ledger.resume()?;
            }
            Fault::RedisPartition => {
                platform.relay.stall();
                tokio::time::sleep(settings.stall).await;
                platform.relay.resume();
            }
            Fault::PaymentsCrash => unreachable!("handled above"),
        }
        Ok(())
    }

    /// For each failpoint in turn: micro-payments stopped, started armed at
    /// that point, left to die there under the load, the payments database
    /// read for anything half-written while nothing can change it, and
    /// micro-payments started again unarmed. The load's clients retry what
    /// broke under the same keys, and the phase's checks judge the answers
    /// they got against what was stored.
    async fn crash_at_each_point(&mut self) -> anyhow::Result<()> {
        for point in payments::failpoints::ALL {
            let payments = &mut self.platform.payments;
            payments.terminate().await;
            payments.start_with(&[("FAILPOINTS", format!("{point}=return"))])?;
            let armed = Instant::now();
            let died = loop {
                if let Some(status) = payments.exited() {
                    break Some(status);
                }
                if armed.elapsed() >= self.settings.crash_deadline {
                    break None;
                }
                tokio::time::sleep(CRASH_POLL).await;
            };
            match died {
                None => {
                    self.fault_problems.push(format!(
                        "micro-payments armed at {point} did not die there within {:?}; \
                         was it built with --features payments/failpoints?",
                        self.settings.crash_deadline
                    ));
                    payments.terminate().await;
                }
                Some(status) if status.signal() != Some(nix::libc::SIGABRT) => {
                    self.fault_problems.push(format!(
                        "micro-payments armed at {point} exited otherwise ({status}):\n{}",
                        cluster::tail(&payments.log, 20)
                    ));
                }
                Some(_) => {
                    let footprints = db::footprints(&self.payments_db).await?;
                    let half = check::half_written(&footprints);
                    if half.is_empty() {
                        self.fault_notes.push(format!(
                            "{point}: died {:.1} s after start; {} payments, none half-written",
                            armed.elapsed().as_secs_f64(),
                            footprints.len()
                        ));
                    }
                    self.fault_problems.extend(
                        half.into_iter()
                            .map(|h| format!("half-written after dying at {point}: {h}")),
                    );
                }
            }
            self.platform.payments.start()?;
            cluster::wait_ready(
                &self.readiness,
                &mut [&mut self.platform.payments],
                self.settings.ready_deadline,
            )
            .await?;
        }
        Ok(())
    }

    /// Time from the end of the fault until every service is ready and a
    /// fresh payment of every owner has had its event delivered.
    async fn recover(&mut self, fault: Fault, api: &Api) -> Result<Duration, String> {
        let started = Instant::now();
        let deadline = self.settings.recovery_deadline;
        let store = match fault {
            Fault::RedisRestart => self.platform.redis.wait_ready(deadline).await,
            Fault::PostgresRestart => self.platform.postgres.wait_ready(deadline).await,
            _ => Ok(()),
        };
        store.map_err(|e| format!("{e:#}"))?;
        let mut services = self.platform.services();
        cluster::wait_ready(&self.readiness, &mut services, deadline)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let mut probes = Vec::new();
        for owner in self.owners.iter() {
            let id = api
                .create("probe", owner, owner.index % 2, 100, "usd")
                .await
                .ok_or_else(|| format!("no probe payment could be created for owner {}", owner.index))?;
            probes.push(id);
        }
        let left = deadline.saturating_sub(started.elapsed());
        let delivered = self
            .receiver
            .wait_until(left, |arrivals| {
                probes.iter().all(|id| {
                    arrivals
                        .iter()
                        .any(|a| &a.object_id == id && a.event_type == "payment.created")
                })
            })
            .await;
        if !delivered {
            return Err(format!(
                "a fresh payment's event did not reach every owner's listener within {deadline:?}"
            ));
        }
        Ok(started.elapsed())
    }

    /// Waits until every event payments stored has reached a listener and
    /// the ledger holds every posting payments owes; `None` if that did not
    /// happen within the deadline (the checks then say what is missing).
    /// Payments' own outbox may still show postings as unposted after that:
    /// a worker that could not record an answer leaves its lease to expire.
    async fn drain(&self) -> anyhow::Result<Option<Duration>> {
        let started = Instant::now();
        loop {
            if self.drained().await? {
                return Ok(Some(started.elapsed()));
            }
            if started.elapsed() >= self.settings.drain_deadline {
                return Ok(None);
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
    }

    async fn drained(&self) -> anyhow::Result<bool> {
        if db::backlog(&self.payments_db).await?.unpublished > 0 {
            return Ok(false);
        }
        let arrived: HashSet<String> = self.receiver.arrivals().into_iter().map(|a| a.id).collect();
        if !db::events(&self.payments_db)
            .await?
            .iter()
            .all(|(_, id, _)| arrived.contains(id))
        {
            return Ok(false);
        }
        let posted: HashSet<String> = db::postings(&self.ledger_db)
            .await?
            .into_iter()
            .map(|p| p.reference)
            .collect();
        Ok(db::owed(&self.payments_db)
            .await?
            .iter()
            .all(|o| posted.contains(&o.reference)))
    }

    /// The checks after a phase; events and postings judged once, in the
    /// phase that created them.
    async fn judge(&mut self, from: usize, record: &load::Record) -> anyhow::Result<Judged> {
        let owner_index: HashMap<&str, usize> = self
            .owners
            .iter()
            .map(|o| (o.user_id.as_str(), o.index))
            .collect();
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        let mut expected = Vec::new();
        for (owner_id, id, sequence) in db::events(&self.payments_db).await? {
            let Some(&owner) = owner_index.get(owner_id.as_str()) else {
                problems.push(format!(
                    "event {id} belongs to {owner_id}, who is none of the run's owners"
                ));
                continue;
            };
            self.known.insert(id.clone(), owner);
            if self.judged_events.insert(id.clone()) {
                expected.push(StoredEvent { owner, id, sequence });
            }
        }
        let history = self.receiver.arrivals();
        let events = check::check_events(&expected, &self.known, &history, from);

        let owed = db::owed(&self.payments_db).await?;
        let all_owed: HashSet<String> = owed.iter().map(|o| o.reference.clone()).collect();
        let expected_postings: Vec<_> = owed
            .into_iter()
            .filter(|o| !self.judged_postings.contains(&o.reference))
            .collect();
        let recorded: Vec<_> = db::postings(&self.ledger_db)
            .await?
            .into_iter()
            .filter(|p| !self.judged_postings.contains(&p.reference))
            .collect();
        let postings = check::check_postings(&expected_postings, &all_owed, &recorded);
        self.judged_postings
            .extend(expected_postings.into_iter().map(|o| o.reference));
        self.judged_postings
            .extend(recorded.into_iter().map(|p| p.reference));

        problems.extend(
            check::unbalanced(&db::trial_balance(&self.ledger_db).await?)
                .into_iter()
                .map(|c| format!("trial balance not zero: {c}")),
        );
        let (payments, refunds) = db::stored_payments(&self.payments_db).await?;
        problems.extend(
            check::lost_writes(&record.acknowledged, &payments, &refunds)
                .into_iter()
                .map(|l| format!("acknowledged write lost: {l}")),
        );
        let footprints = db::footprints(&self.payments_db).await?;
        problems.extend(
            check::half_written(&footprints)
                .into_iter()
                .map(|h| format!("half-written: {h}")),
        );
        problems.extend(
            check::answers_disagree(&record.acknowledged.confirms, &footprints)
                .into_iter()
                .map(|d| format!("answer disagrees with the database: {d}")),
        );
        let replayed = record.acknowledged.confirms.iter().filter(|c| c.replayed).count();
        if replayed > 0 {
            notes.push(format!(
                "{replayed} confirms answered from their stored answer after a retry (Idempotent-Replayed), \
                 each checked against the stored payment"
            ));
        }
        problems.append(&mut self.fault_problems);
        notes.append(&mut self.fault_notes);
        let backlog = db::backlog(&self.payments_db).await?;
        if backlog.unposted > 0 {
            notes.push(format!(
                "{} postings in the ledger still unmarked in payments' outbox: leased by a worker that \
                 lost its answer to a kill or a database restart, they are marked once the lease expires",
                backlog.unposted
            ));
        }
        if backlog.dead_lettered > 0 {
            problems.push(format!("{} ledger postings dead-lettered", backlog.dead_lettered));
        }
        if backlog.quarantined > 0 {
            problems.push(format!("{} events quarantined", backlog.quarantined));
        }
        for malformed in self.receiver.malformed() {
            problems.push(format!("a delivery that is not an event: {malformed}"));
        }
        for (listener, seen) in self.listeners.iter_mut().zip(self.failed_deliveries.iter_mut()) {
            if let Some(status) = listener.exited() {
                problems.push(format!(
                    "micro listen for owner {} exited ({status}); see {}",
                    listener.owner,
                    listener.log.display()
                ));
            }
            let failed = listener.failed_deliveries();
            if failed > *seen {
                problems.push(format!(
                    "micro listen for owner {}: {} deliveries to the receiver failed",
                    listener.owner,
                    failed - *seen
                ));
            }
            *seen = failed;
        }
        for service in self.platform.services() {
            if let Some(status) = service.exited() {
                problems.push(format!("{} exited by itself ({status})", service.name));
            }
        }
        Ok(Judged {
            events,
            postings,
            problems,
            notes,
        })
    }

    async fn stop(&mut self) {
        let reconnects: Vec<String> = self
            .listeners
            .iter()
            .map(|l| format!("owner {} (gateway {}): {}", l.owner, l.gateway, l.reconnects()))
            .collect();
        println!("micro-chaos: listener reconnects: {}", reconnects.join(", "));
        for listener in self.listeners.drain(..) {
            listener.stop().await;
        }
        self.payments_db.close().await;
        self.ledger_db.close().await;
        self.platform.stop().await;
    }
}
