//! Help texts and tables as snapshots, and the scriptable subcommands
//! against the stack with ids and times redacted.

use clap::CommandFactory;
use contract::events::EventType;
use micro::cli::Cli;

use crate::support::{Env, developer, run};

fn help(path: &[&str]) -> String {
    let mut command = Cli::command();
    command.build();
    let mut current = &mut command;
    for name in path {
        current = current.find_subcommand_mut(name).expect("a subcommand");
    }
    current.render_help().to_string()
}

#[test]
fn help_texts() {
    insta::assert_snapshot!("help", help(&[]));
    insta::assert_snapshot!("help_listen", help(&["listen"]));
    insta::assert_snapshot!("help_login", help(&["login"]));
    insta::assert_snapshot!("help_payments", help(&["payments"]));
    insta::assert_snapshot!("help_trigger", help(&["trigger"]));
    insta::assert_snapshot!("help_demo", help(&["demo"]));
}

fn redacted() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\b(pay|evt|re|acct|txn|ent|key|usr)_[0-9A-Za-z]+", "${1}_[id]");
    settings.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[time]");
    settings
}

#[tokio::test]
async fn tables_for_payments_events_and_the_ledger() {
    let env = Env::start().await;
    let ada = developer(&env.client, "ada@example.com").await;
    for (kind, amount, currency) in [
        (EventType::PaymentSucceeded, "1234", "usd"),
        (EventType::PaymentRefunded, "500", "jpy"),
        (EventType::PaymentFailed, "1001", "kwd"),
    ] {
        let mut trigger = env.micro(&[
            "trigger",
            kind.as_str(),
            "--amount",
            amount,
            "--currency",
            currency,
        ]);
        trigger.env("MICRO_API_KEY", &ada.api_key);
        let output = run(trigger, None).await;
        assert_eq!(output.code, 0, "{output:?}");
    }
    // The ledger postings follow the payments from a worker: the table is
    // taken once the three that touch ada's balances (the usd payment, the
    // jpy payment and its refund) landed.
    let page = contract::list::PageParams {
        limit: Some(100),
        starting_after: None,
    };
    let deadline = std::time::Instant::now() + crate::support::WAIT;
    loop {
        let accounts = env
            .client
            .ledger_accounts(&ada.api_key, &page)
            .await
            .expect("accounts")
            .into_value()
            .data;
        if accounts.iter().map(|a| a.entry_count).sum::<i64>() == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the postings did not land: {accounts:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let table = |args: &'static [&'static str]| {
        let mut command = env.micro(args);
        command.env("MICRO_API_KEY", &ada.api_key);
        run(command, None)
    };
    let payments = table(&["payments", "list"]).await;
    assert_eq!(payments.code, 0, "{payments:?}");
    let events = table(&["events", "list", "--limit", "3"]).await;
    assert_eq!(events.code, 0, "{events:?}");
    let accounts = table(&["ledger", "accounts"]).await;
    assert_eq!(accounts.code, 0, "{accounts:?}");
    redacted().bind(|| {
        insta::assert_snapshot!("payments_list", payments.stdout);
        insta::assert_snapshot!("events_list", events.stdout);
        insta::assert_snapshot!("ledger_accounts", accounts.stdout);
    });

    // JSON is the API's JSON.
    let json = table(&["payments", "list", "--format", "json"]).await;
    let list: contract::List<contract::payments::Payment> =
        serde_json::from_str(&json.stdout).expect("a list");
    assert_eq!(list.data.len(), 3);
}

#[test]
fn completions_are_generated() {
    let output = std::process::Command::new(crate::support::micro_binary())
        .args(["completions", "bash"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(0));
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(script.contains("_micro()"), "{script}");
}
