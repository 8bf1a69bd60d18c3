use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chaos::limits::LimitSettings;
use chaos::{Fault, Options, Settings};
use clap::Parser;

/// Runs the platform as separate processes (its own PostgreSQL and Redis,
/// auth, payments, ledger and two gateway replicas), injects each fault
/// under a load of payments with a `micro listen` per owner, and checks
/// that no event was lost, duplicated or misordered, that every payment and
/// refund was posted exactly once, and that only 503s (or refused
/// connections) were seen, and only during the outage. Exits 1 on any
/// violation.
#[derive(Debug, Parser)]
#[command(name = "micro-chaos")]
struct Args {
    /// A bounded run for CI: a smaller load and shorter outages.
    #[arg(long)]
    quick: bool,
    /// Instead of the faults, the limits: many streams held open on one
    /// gateway (memory per stream, every event in order on each), then
    /// floods of invalid API keys (how often auth is asked).
    #[arg(long)]
    limits: bool,
    /// Streams the limits run holds open [default: 2000, quick 400].
    #[arg(long, requires = "limits")]
    streams: Option<usize>,
    /// Faults to inject, comma-separated, in order: redis-restart,
    /// postgres-restart, payments-kill, gateway-kill, ledger-stop,
    /// redis-partition, payments-crash (or 1-7) [default: all].
    #[arg(long, value_delimiter = ',')]
    faults: Vec<Fault>,
    /// Where micro-gateway, micro-auth, micro-payments, micro-ledger and micro are
    /// [default: the directory micro-chaos is in].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Keep the logs (and the database's files) after a passing run too.
    #[arg(long)]
    keep_logs: bool,
    /// How long micro-ledger stays stopped [default: 30, quick 5].
    #[arg(long, value_name = "SECONDS")]
    ledger_stop_secs: Option<f64>,
    /// How long the gateway-Redis relay stalls [default: 20, quick 6].
    #[arg(long, value_name = "SECONDS")]
    stall_secs: Option<f64>,
    /// How long a restarted or killed process stays down [default: 5, quick 2].
    #[arg(long, value_name = "SECONDS")]
    down_secs: Option<f64>,
    /// Concurrent load clients [default: 6, quick 4].
    #[arg(long)]
    clients: Option<usize>,
    /// Accounts paid into, each with its own listener [default: 4, quick 3].
    #[arg(long)]
    owners: Option<usize>,
}

fn seconds(value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|e| anyhow::anyhow!("{value} seconds: {e}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if args.limits {
        let mut settings = if args.quick {
            LimitSettings::quick()
        } else {
            LimitSettings::full()
        };
        if let Some(streams) = args.streams {
            settings.streams = streams.max(1);
        }
        if let Some(owners) = args.owners {
            settings.owners = owners.max(1);
        }
        let binaries = chaos::cluster::Binaries::locate(args.bin_dir)?;
        let passed = chaos::limits::run(&binaries, &settings, args.keep_logs).await?;
        return Ok(if passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let mut settings = if args.quick {
        Settings::quick()
    } else {
        Settings::full()
    };
    if let Some(value) = args.ledger_stop_secs {
        settings.ledger_stop = seconds(value)?;
    }
    if let Some(value) = args.stall_secs {
        settings.stall = seconds(value)?;
    }
    if let Some(value) = args.down_secs {
        settings.down = seconds(value)?;
    }
    if let Some(clients) = args.clients {
        settings.clients = clients.max(1);
    }
    if let Some(owners) = args.owners {
        settings.owners = owners.max(1);
    }
    let faults = if args.faults.is_empty() {
        Fault::ALL.to_vec()
    } else {
        args.faults
    };
    let passed = chaos::run(Options {
        faults,
        settings,
        bin_dir: args.bin_dir,
        keep_logs: args.keep_logs,
    })
    .await?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
