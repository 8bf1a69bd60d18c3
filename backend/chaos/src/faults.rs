//! The faults, and how long each part of a phase lasts.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Redis stopped and started again, empty.
    RedisRestart,
    /// PostgreSQL shut down (fast) and started again.
    PostgresRestart,
    /// micro-payments killed with SIGKILL, then started again.
    PaymentsKill,
    /// Gateway replica 0 killed with SIGKILL, then started again.
    GatewayKill,
    /// micro-ledger stopped with SIGSTOP, then continued.
    LedgerStop,
    /// The relay between gateway replica 1 and Redis stalls, sockets open.
    RedisPartition,
    /// micro-payments dies on the spot at each of its failpoints in turn
    /// (inside a confirm, in the publisher, in the posting worker).
    PaymentsCrash,
}

impl Fault {
    pub const ALL: [Self; 7] = [
        Self::RedisRestart,
        Self::PostgresRestart,
        Self::PaymentsKill,
        Self::GatewayKill,
        Self::LedgerStop,
        Self::RedisPartition,
        Self::PaymentsCrash,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::RedisRestart => "redis-restart",
            Self::PostgresRestart => "postgres-restart",
            Self::PaymentsKill => "payments-kill",
            Self::GatewayKill => "gateway-kill",
            Self::LedgerStop => "ledger-stop",
            Self::RedisPartition => "redis-partition",
            Self::PaymentsCrash => "payments-crash",
        }
    }

    /// What is done, with the settings' durations.
    pub fn describe(self, settings: &Settings) -> String {
        let secs = |d: Duration| format!("{} s", d.as_secs_f64());
        match self {
            Self::RedisRestart => format!(
                "Redis stopped (SIGTERM), down {}, started empty",
                secs(settings.down)
            ),
            Self::PostgresRestart => format!(
                "PostgreSQL shut down (fast), down {}, started again",
                secs(settings.down)
            ),
            Self::PaymentsKill => format!(
                "micro-payments kill -9, down {}, started again",
                secs(settings.down)
            ),
            Self::GatewayKill => format!("gateway 0 kill -9, down {}, started again", secs(settings.down)),
            Self::LedgerStop => format!(
                "micro-ledger SIGSTOP for {}, then SIGCONT",
                secs(settings.ledger_stop)
            ),
            Self::RedisPartition => format!(
                "gateway 1 <-> Redis relay stalled for {}, sockets kept open",
                secs(settings.stall)
            ),
            Self::PaymentsCrash => format!(
                "micro-payments armed at each of its {} failpoints in turn and left to die there \
                 (abort, as under kill -9), checked while down, started again",
                payments::failpoints::ALL.len()
            ),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = String;

    /// A fault's name, the first part of it (`redis`, `ledger`), or its
    /// number in the list, 1 to 7.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim().to_ascii_lowercase();
        if let Ok(number) = text.parse::<usize>() {
            return number
                .checked_sub(1)
                .and_then(|i| Self::ALL.get(i).copied())
                .ok_or_else(|| format!("fault numbers go from 1 to {}", Self::ALL.len()));
        }
        let alias = match text.as_str() {
            "redis" => Some(Self::RedisRestart),
            "postgres" | "postgresql" => Some(Self::PostgresRestart),
            "payments" => Some(Self::PaymentsKill),
            "gateway" => Some(Self::GatewayKill),
            "ledger" => Some(Self::LedgerStop),
            "partition" | "stall" => Some(Self::RedisPartition),
            "crash" => Some(Self::PaymentsCrash),
            _ => None,
        };
        alias
            .or_else(|| Self::ALL.into_iter().find(|f| f.name() == text))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown fault {text:?}; known: {} (or 1-{})",
                    names.join(", "),
                    Self::ALL.len()
                )
            })
    }
}

/// Sizes and durations of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub owners: usize,
    pub clients: usize,
    /// A client's pause between two payments.
    pub think: Duration,
    /// Load before the fault.
    pub warmup: Duration,
    /// Load after recovery.
    pub after: Duration,
    /// How long a restarted or killed process stays down.
    pub down: Duration,
    pub ledger_stop: Duration,
    pub stall: Duration,
    /// For the platform to start, and for each service to be ready again.
    pub ready_deadline: Duration,
    /// From the end of a fault to every owner's fresh event delivered.
    pub recovery_deadline: Duration,
    /// From the end of the load to every event delivered and posting made.
    /// Longer than payments' posting lease (60 s): a posting claimed by a
    /// worker killed before it reached the ledger is sent again only once
    /// that lease has expired.
    pub drain_deadline: Duration,
    /// How long a load client retries one request before giving it up.
    pub retry_for: Duration,
    /// For micro-payments, armed at a failpoint, to reach it under the load.
    pub crash_deadline: Duration,
}

impl Settings {
    pub fn full() -> Self {
        Self {
            owners: 4,
            clients: 6,
            think: Duration::ZERO,
            warmup: Duration::from_secs(5),
            after: Duration::from_secs(5),
            down: Duration::from_secs(5),
            ledger_stop: Duration::from_secs(30),
            stall: Duration::from_secs(20),
            ready_deadline: Duration::from_secs(60),
            recovery_deadline: Duration::from_secs(90),
            drain_deadline: Duration::from_secs(90),
            retry_for: Duration::from_secs(90),
            crash_deadline: Duration::from_secs(30),
        }
    }

    /// Bounded for CI: smaller load, shorter outages. The stall still
    /// outlasts the gateway's subscription deadline (3 s), so the lost
    /// subscription is noticed and recovered from, not merely waited out.
    pub fn quick() -> Self {
        Self {
            owners: 3,
            clients: 4,
            think: Duration::from_millis(20),
            warmup: Duration::from_secs(2),
            after: Duration::from_secs(2),
            down: Duration::from_secs(2),
            ledger_stop: Duration::from_secs(5),
            stall: Duration::from_secs(6),
            ready_deadline: Duration::from_secs(60),
            recovery_deadline: Duration::from_secs(60),
            drain_deadline: Duration::from_secs(75),
            retry_for: Duration::from_secs(60),
            crash_deadline: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_by_name_alias_and_number() {
        assert_eq!("redis-restart".parse(), Ok(Fault::RedisRestart));
        assert_eq!("Ledger".parse(), Ok(Fault::LedgerStop));
        assert_eq!("6".parse(), Ok(Fault::RedisPartition));
        assert_eq!("7".parse(), Ok(Fault::PaymentsCrash));
        assert_eq!("crash".parse(), Ok(Fault::PaymentsCrash));
        assert_eq!("1".parse(), Ok(Fault::RedisRestart));
        assert!("0".parse::<Fault>().is_err());
        assert!("8".parse::<Fault>().is_err());
        let error = "disk".parse::<Fault>().expect_err("unknown");
        assert!(error.contains("postgres-restart"), "{error}");
        for fault in Fault::ALL {
            assert_eq!(fault.name().parse(), Ok(fault));
        }
    }
}
