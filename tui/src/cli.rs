//! The command line, as clap reads it.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The Micro developer console: live webhook events, payments and the ledger
/// in your terminal, and subcommands for scripts.
#[derive(Debug, Parser)]
#[command(name = "micro", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(flatten)]
    pub console: ConsoleArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

pub const EXIT_CODES: &str = "Exit codes: 0 ok, 1 usage, 2 not logged in or key refused, 3 API error, \
4 network (or listen gave up reconnecting), 5 no credential store, 6 other, \
7 demo incomplete, 8 local platform did not start.";

/// How the console treats a gateway that does not answer.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct ConsoleArgs {
    /// Console only: start a local micro-stack when nothing answers at the gateway, without asking.
    #[arg(long, conflicts_with = "no_start_stack")]
    pub start_stack: bool,
    /// Console only: never offer to start a local micro-stack.
    #[arg(long)]
    pub no_start_stack: bool,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Where the Micro gateway listens [default: from config.toml, else http://127.0.0.1:8080].
    #[arg(long, env = "MICRO_GATEWAY", global = true)]
    pub gateway: Option<String>,
    /// Which stored login to use [default: default].
    #[arg(long, env = "MICRO_PROFILE", global = true)]
    pub profile: Option<String>,
    /// Use this API key instead of the stored one.
    #[arg(long, env = "MICRO_API_KEY", global = true, hide_env_values = true)]
    pub api_key: Option<String>,
    /// Allow keeping credentials in a 0600 file when no keyring is available.
    #[arg(long, global = true)]
    pub insecure_storage: bool,
    /// Output format [default: text on a terminal; json for `listen` when stdout is not one].
    #[arg(long, value_enum, global = true)]
    pub format: Option<Format>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an account, then log in as `micro login` does.
    Register(LoginArgs),
    /// Log in, create an API key named after this machine and keep it in the OS keyring.
    Login(LoginArgs),
    /// Revoke this machine's API key on the server and forget it locally.
    Logout,
    /// Show the user, gateway, profile, where the key is kept and its prefix.
    Whoami,
    /// Stream events and forward each one, signed, to a local URL.
    Listen(ListenArgs),
    /// Create and drive the objects that produce an event, e.g. `payment.succeeded`.
    Trigger(TriggerArgs),
    /// Payments: list, get, create, confirm, cancel, refund.
    #[command(subcommand)]
    Payments(PaymentsCommand),
    /// Events: list, get, resend.
    #[command(subcommand)]
    Events(EventsCommand),
    /// The ledger: accounts, entries, transactions.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// API keys: list, create, revoke.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The webhook signing secret: show or roll.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Run payments end to end on a throwaway account and check every webhook arrives, signed.
    Demo(DemoArgs),
    /// Print a shell completion script, e.g. `micro completions bash > /etc/bash_completion.d/micro`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The account's email; asked when absent.
    #[arg(long)]
    pub email: Option<String>,
    /// Read the password from standard input (one line) instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Forward each event to this URL, e.g. http://localhost:4242/webhook.
    #[arg(long, value_name = "URL")]
    pub forward_to: Option<String>,
    /// Only these event types, comma-separated (e.g. payment.succeeded,payment.failed).
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub events: Vec<String>,
    /// An extra header on every delivery, "Name: value"; repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Seconds to wait for the local server; 0 waits forever (breakpoint debugging) [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub forward_timeout: Option<u64>,
    /// Try a failed delivery this many more times, with backoff [default: 0].
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Print the webhook signing secret and exit.
    #[arg(long)]
    pub print_secret: bool,
    /// Back-fill missed events first: `last` (after the last one processed here) or an event id.
    #[arg(long, value_name = "last|EVENT_ID")]
    pub since: Option<String>,
    /// Give up (exit 4) after this many failed reconnects in a row [default: never].
    #[arg(long, value_name = "N")]
    pub max_reconnects: Option<u32>,
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// payment.created, payment.succeeded, payment.failed, payment.canceled or payment.refunded.
    pub event: String,
    /// In the currency's minor unit (cents for usd).
    #[arg(long, default_value_t = 2000)]
    pub amount: i64,
    #[arg(long, default_value = "usd")]
    pub currency: String,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seconds to wait for the stream, for the events and for the ledger, each.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
    /// Each payment's amount, in the currency's minor unit.
    #[arg(long, default_value_t = 2000)]
    pub amount: i64,
    /// The payments' currency, an ISO 4217 code.
    #[arg(long, default_value = "usd")]
    pub currency: String,
}

#[derive(Debug, Args)]
pub struct PageArgs {
    /// At most this many (1-100).
    #[arg(long)]
    pub limit: Option<i64>,
    /// The id after which the page starts.
    #[arg(long)]
    pub starting_after: Option<String>,
}

#[derive(Debug, Args)]
pub struct IdempotencyArgs {
    /// Reuse a key to make a retried request safe [default: a fresh UUID].
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PaymentsCommand {
    /// List payments, newest first.
    List {
        #[command(flatten)]
        page: PageArgs,
        /// Only payments in this status, e.g. succeeded.
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one payment.
    Get { id: String },
    /// Create a payment that requires confirmation.
    Create {
        /// In the currency's minor unit (cents for usd).
        #[arg(long)]
        amount: i64,
        #[arg(long, default_value = "usd")]
        currency: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        customer_email: Option<String>,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
    },
    /// Confirm a payment with a test payment method.
    Confirm {
        id: String,
        /// pm_card_visa succeeds; pm_card_chargeDeclined fails.
        #[arg(long, default_value = "pm_card_visa")]
        payment_method: String,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
    },
    /// Cancel a payment that was not confirmed.
    Cancel {
        id: String,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
    },
    /// Refund a succeeded payment, all of what is left or --amount.
    Refund {
        id: String,
        #[arg(long)]
        amount: Option<i64>,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List events, newest first.
    List {
        #[command(flatten)]
        page: PageArgs,
        /// Only events of this type, e.g. payment.succeeded.
        #[arg(long = "type")]
        kind: Option<String>,
    },
    /// Show one event with its payload.
    Get { id: String },
    /// Send an event again; listeners get it marked as resent.
    Resend {
        id: String,
        #[command(flatten)]
        idempotency: IdempotencyArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Your ledger accounts and their balances.
    Accounts {
        #[command(flatten)]
        page: PageArgs,
    },
    /// An account's entries, newest first, with the balance each left.
    Entries {
        account_id: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One transaction and its entries.
    Transaction { id: String },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Your API keys (prefixes only).
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Create a key; its secret is shown once.
    Create { name: String },
    /// Revoke a key by id.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Show the webhook signing secret.
    Secret,
    /// Replace the signing secret; the old one stops working at once.
    Roll,
}
