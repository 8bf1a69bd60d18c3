//! `register`, `login`, `logout`, `whoami`.

use std::io::BufRead;

use contract::auth::Credentials;
use serde_json::json;

use super::{print, show};
use crate::cli::{Format, LoginArgs};
use crate::credentials::{Store, StoredLogin};
use crate::exit::{CliError, CliResult, OK};
use crate::output::fields;
use crate::session::{Invocation, KeySource, Session, announce};

fn read_line(prompt: &str) -> CliResult<String> {
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn password_from_stdin() -> CliResult<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(CliError::Usage(
            "--password-stdin: standard input held no password".into(),
        ));
    }
    Ok(password)
}

fn prompt_password(prompt: &str) -> CliResult<String> {
    rpassword::prompt_password(prompt).map_err(|e| {
        CliError::Usage(format!(
            "cannot read a password from the terminal ({e}): use --password-stdin"
        ))
    })
}

/// Email and password from the flags, stdin or the terminal.
fn credentials(args: &LoginArgs, confirm: bool) -> CliResult<Credentials> {
    let email = match &args.email {
        Some(email) => email.clone(),
        None if args.password_stdin => {
            return Err(CliError::Usage("--password-stdin needs --email".into()));
        }
        None => read_line("Email: ")?,
    };
    let password = if args.password_stdin {
        password_from_stdin()?
    } else {
        let password = prompt_password("Password: ")?;
        if confirm && prompt_password("Password again: ")? != password {
            return Err(CliError::Usage("the passwords differ".into()));
        }
        password
    };
    Ok(Credentials { email, password })
}

fn machine_name() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let host = if host.is_empty() {
        "unknown-host".to_owned()
    } else {
        host
    };
    format!("micro-cli@{host}")
}

pub async fn register(context: &Invocation, args: LoginArgs, format: Format) -> CliResult<u8> {
    let credentials = credentials(&args, true)?;
    let client = context.client()?;
    let user = client.register(&credentials).await?.into_value();
    if format == Format::Text {
        eprintln!("Registered {} ({}).", user.email, user.id);
    }
    finish_login(context, credentials, format).await
}

pub async fn login(context: &Invocation, args: LoginArgs, format: Format) -> CliResult<u8> {
    let credentials = credentials(&args, false)?;
    finish_login(context, credentials, format).await
}

async fn finish_login(context: &Invocation, credentials: Credentials, format: Format) -> CliResult<u8> {
    let options = context.store_options()?;
    let account = context.target.account();
    // Pick the store before creating anything on the server, so that a
    // missing keyring leaves no orphaned key behind.
    let store = Store::for_saving(&options).await?;
    announce(&store, &context.config_dir);
    let previous = Store::find(&options, &account).await.ok().flatten();
    let client = context.client()?;
    let tokens = client.login(&credentials).await?.into_value();
    let user = client.me(&tokens.access_token).await?.into_value();
    let key = client
        .create_api_key(&tokens.access_token, &machine_name())
        .await?
        .into_value();
    let login = StoredLogin {
        email: user.email.clone(),
        user_id: user.id.clone(),
        api_key: key.key.clone(),
        api_key_id: key.id.clone(),
        api_key_prefix: key.prefix.clone(),
        refresh_token: tokens.refresh_token,
    };
    store.set(&account, &login).await?;
    if let Some((old_store, old)) = previous {
        // The key this machine used before is no longer needed anywhere.
        if old.api_key_id != key.id {
            let _ = client.revoke_api_key(&tokens.access_token, &old.api_key_id).await;
        }
        if old_store.backend() != store.backend() {
            let _ = old_store.delete(&account).await;
        }
    }
    let value = json!({
        "user": user,
        "gateway": context.target.gateway,
        "profile": context.target.profile,
        "keyring": store.backend().name(),
        "key_prefix": key.prefix,
        "key_id": key.id,
        "key_name": key.name,
    });
    show(format, &value, |_| {
        format!(
            "Logged in as {} to {} (profile {}).\nAPI key {}… ({}) is kept in the {}.\n",
            user.email,
            context.target.gateway,
            context.target.profile,
            key.prefix,
            key.name,
            store.backend().describe()
        )
    });
    Ok(OK)
}

pub async fn logout(context: &Invocation) -> CliResult<u8> {
    let account = context.target.account();
    let options = context.store_options()?;
    let Some((store, login)) = Store::find(&options, &account).await? else {
        return Err(context.not_logged_in());
    };
    announce(&store, &context.config_dir);
    let mut session = Session::open(&Invocation {
        api_key: None,
        ..context.clone()
    })
    .await?;
    let revoked = match session.access_token().await {
        Ok(token) => session
            .client
            .revoke_api_key(&token, &login.api_key_id)
            .await
            .map(|_| ()),
        Err(e) => Err(client::ClientError::Network(e.message())),
    };
    store.delete(&account).await?;
    match revoked {
        Ok(()) => eprintln!(
            "Logged out of {} (profile {}): key {}… revoked and removed from the {}.",
            context.target.gateway,
            context.target.profile,
            login.api_key_prefix,
            store.backend().describe()
        ),
        Err(e) => eprintln!(
            "Removed the local login, but the key {}… could not be revoked on the server ({e}); revoke it with `micro keys revoke {}`.",
            login.api_key_prefix, login.api_key_id
        ),
    }
    Ok(OK)
}

pub async fn whoami(context: &Invocation, format: Format) -> CliResult<u8> {
    let mut session = Session::open(context).await?;
    let (keyring, prefix) = match session.source {
        KeySource::Given => (
            "given (--api-key or MICRO_API_KEY)".to_owned(),
            key_prefix(&session.api_key),
        ),
        KeySource::Stored(backend) => (
            backend.name().to_owned(),
            session
                .stored()
                .map(|login| login.api_key_prefix.clone())
                .unwrap_or_default(),
        ),
    };
    let user = match (session.source, session.stored().is_some()) {
        (KeySource::Stored(_), true) => {
            let token = session.access_token().await?;
            Some(session.client.me(&token).await?.into_value())
        }
        _ => {
            // Only a key: check that it works, without a session to ask who it is.
            session.client.webhook_secret(&session.api_key).await?;
            None
        }
    };
    let value = json!({
        "user": user,
        "gateway": context.target.gateway,
        "profile": context.target.profile,
        "keyring": keyring,
        "key_prefix": prefix,
    });
    show(format, &value, |_| {
        fields(&[
            (
                "User",
                user.as_ref()
                    .map(|u| format!("{} ({})", u.email, u.id))
                    .unwrap_or_else(|| "(unknown: only an API key was given)".into()),
            ),
            ("Gateway", context.target.gateway.clone()),
            ("Profile", context.target.profile.clone()),
            ("Key kept in", keyring.clone()),
            ("Key prefix", format!("{prefix}…")),
        ])
    });
    let _ = print;
    Ok(OK)
}

/// What is safe to show of a key: its fixed prefix and four more characters.
fn key_prefix(key: &str) -> String {
    let shown = contract::auth::API_KEY_PREFIX.len() + 4;
    key.chars().take(shown).collect()
}
