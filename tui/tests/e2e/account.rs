//! register, login, whoami, logout, and what the exit codes say.

use crate::support::{Env, PASSWORD, developer, run};

#[tokio::test]
async fn login_whoami_logout_with_the_opt_in_file_store() {
    let env = Env::start().await;
    developer(&env.client, "ada@example.com").await;

    // Without the opt-in, the file store is refused and nothing is created.
    let refused = run(
        env.micro(&["login", "--email", "ada@example.com", "--password-stdin"]),
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert_eq!(refused.code, 5, "{refused:?}");
    assert!(
        refused.stderr.contains("--insecure-storage"),
        "{}",
        refused.stderr
    );

    let login = run(
        env.micro(&[
            "login",
            "--email",
            "ada@example.com",
            "--password-stdin",
            "--insecure-storage",
        ]),
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert_eq!(login.code, 0, "{login:?}");
    assert!(
        login.stderr.contains("unencrypted"),
        "announced: {}",
        login.stderr
    );
    let file = env.config.path().join("credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("the file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let whoami = env.run(&["whoami", "--format", "json"]).await;
    assert_eq!(whoami.code, 0, "{whoami:?}");
    assert!(whoami.stderr.contains("unencrypted"), "announced on every use");
    let who: serde_json::Value = serde_json::from_str(&whoami.stdout).expect("json");
    assert_eq!(who["user"]["email"], "ada@example.com");
    assert_eq!(who["keyring"], "file");
    assert_eq!(who["profile"], "default");
    let prefix = who["key_prefix"].as_str().expect("prefix");
    assert!(prefix.starts_with("sk_test_"));
    assert!(
        !whoami.stdout.contains(&crate::support::stored_key(&env)),
        "never the whole key"
    );

    // The session is refreshed without asking: the key list needs it.
    let keys = env.run(&["keys", "list"]).await;
    assert_eq!(keys.code, 0, "{keys:?}");
    assert!(keys.stdout.contains("micro-cli@"), "{}", keys.stdout);

    let key = crate::support::stored_key(&env);
    let logout = env.run(&["logout"]).await;
    assert_eq!(logout.code, 0, "{logout:?}");
    let after = env.run(&["whoami"]).await;
    assert_eq!(after.code, 2, "{after:?}");
    assert!(after.stderr.contains("micro login"), "{}", after.stderr);
    // The key was revoked on the server too.
    let refused = env.client.webhook_secret(&key).await.expect_err("revoked");
    assert!(refused.is_unauthorized(), "{refused}");
}

#[tokio::test]
async fn exit_codes_tell_usage_login_api_and_network_apart() {
    let env = Env::start().await;
    let ada = developer(&env.client, "ada@example.com").await;

    let usage = env.run(&["payments", "list", "--limit", "many"]).await;
    assert_eq!(usage.code, 1, "{usage:?}");
    let not_logged_in = env.run(&["payments", "list"]).await;
    assert_eq!(not_logged_in.code, 2, "{not_logged_in:?}");

    let mut api = env.micro(&["payments", "get", "pay_doesnotexist"]);
    api.env("MICRO_API_KEY", &ada.api_key);
    let api = run(api, None).await;
    assert_eq!(api.code, 3, "{api:?}");
    assert!(api.stderr.starts_with("micro: "), "{}", api.stderr);

    let mut network = env.micro(&["payments", "list"]);
    network
        .env("MICRO_API_KEY", &ada.api_key)
        .env("MICRO_GATEWAY", "http://127.0.0.1:9");
    let network = run(network, None).await;
    assert_eq!(network.code, 4, "{network:?}");

    let mut bad_key = env.micro(&["payments", "list"]);
    bad_key.env("MICRO_API_KEY", "sk_test_nottherightone");
    let bad_key = run(bad_key, None).await;
    assert_eq!(bad_key.code, 2, "{bad_key:?}");
}
