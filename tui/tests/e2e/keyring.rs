//! The real credential stores: the kernel keyring, and the Secret Service
//! of a gnome-keyring-daemon on a private session bus.

use micro::credentials::{Backend, Store, StoreOptions};

use crate::support::{Env, PASSWORD, developer, micro_binary, run};

#[tokio::test]
async fn the_kernel_keyring_keeps_the_login() {
    let env = Env::start().await;
    let options = StoreOptions {
        forced: Some(Backend::Keyutils),
        insecure_storage: false,
        dir: env.config.path().to_path_buf(),
    };
    if let Err(e) = Store::for_saving(&options).await {
        eprintln!("SKIPPED the kernel keyring test: keyutils is not usable here ({e})");
        return;
    }
    developer(&env.client, "ada@example.com").await;
    let mut login = env.micro(&["login", "--email", "ada@example.com", "--password-stdin"]);
    login.env("MICRO_KEYRING", "keyutils");
    let login = run(login, Some(&format!("{PASSWORD}\n"))).await;
    assert_eq!(login.code, 0, "{login:?}");
    assert!(login.stdout.contains("kernel keyring"), "{}", login.stdout);
    assert!(!env.config.path().join("credentials.json").exists());

    let account = format!("default@{}", env.stack.gateway_url());
    let (store, stored) = Store::find(&options, &account)
        .await
        .expect("the keyring answers")
        .expect("the login is in the kernel keyring");
    assert_eq!(store.backend(), Backend::Keyutils);
    assert_eq!(stored.email, "ada@example.com");

    let mut whoami = env.micro(&["whoami", "--format", "json"]);
    whoami.env("MICRO_KEYRING", "keyutils");
    let whoami = run(whoami, None).await;
    assert_eq!(whoami.code, 0, "{whoami:?}");
    let who: serde_json::Value = serde_json::from_str(&whoami.stdout).expect("json");
    assert_eq!(who["keyring"], "keyutils");

    let mut logout = env.micro(&["logout"]);
    logout.env("MICRO_KEYRING", "keyutils");
    let logout = run(logout, None).await;
    assert_eq!(logout.code, 0, "{logout:?}");
    assert!(Store::find(&options, &account).await.expect("answers").is_none());
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

#[tokio::test]
async fn the_secret_service_keeps_the_login_when_a_session_bus_offers_one() {
    let missing: Vec<&str> = ["dbus-run-session", "gnome-keyring-daemon"]
        .into_iter()
        .filter(|p| !on_path(p))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "SKIPPED the Secret Service test: {} not installed (Debian: dbus, gnome-keyring; see scripts/test-secret-service)",
            missing.join(", ")
        );
        return;
    }
    let env = Env::start().await;
    developer(&env.client, "ada@example.com").await;
    // One private bus for the daemon and every micro call; no MICRO_KEYRING,
    // so this also checks that the Secret Service is preferred when present.
    let script = format!(
        r#"set -e
printf 'unlock-password' | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null
printf '{PASSWORD}\n' | "$MICRO" login --email ada@example.com --password-stdin
"$MICRO" whoami --format json
"$MICRO" logout
if "$MICRO" whoami >/dev/null 2>&1; then echo "still logged in"; exit 9; fi
"#
    );
    let mut shell = tokio::process::Command::new("dbus-run-session");
    shell
        .args(["--", "sh", "-c", &script])
        .env("MICRO", micro_binary())
        .env("MICRO_GATEWAY", env.stack.gateway_url())
        .env("MICRO_CONFIG_DIR", env.config.path())
        .env_remove("MICRO_KEYRING")
        .env_remove("MICRO_API_KEY")
        .env("HOME", env.config.path())
        .env("XDG_DATA_HOME", env.config.path().join("data"))
        .env("XDG_RUNTIME_DIR", env.config.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let output = run(shell, None).await;
    assert_eq!(output.code, 0, "{output:?}");
    assert!(output.stdout.contains("Secret Service"), "{}", output.stdout);
    assert!(
        output.stdout.contains("\"keyring\": \"secret-service\""),
        "{}",
        output.stdout
    );
    assert!(output.stderr.contains("Logged out"), "{}", output.stderr);
}
