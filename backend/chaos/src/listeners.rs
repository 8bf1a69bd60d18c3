//! One real `micro listen --forward-to <receiver> --format json` per owner,
//! as a developer runs it: the client's reconnects, resumes and forwarding
//! are part of what a fault tests.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use crate::cluster::tail;
use crate::load::Owner;

pub struct Listener {
    pub owner: usize,
    pub gateway: usize,
    child: Child,
    pub log: PathBuf,
    /// Deliveries the receiver did not answer with a 2xx.
    failed_deliveries: Arc<AtomicUsize>,
    /// "reconnecting" lines: how often the stream dropped.
    reconnects: Arc<AtomicUsize>,
}

/// Copies a child's lines into its log, and reports the lines that matter.
fn watch_lines(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    label: &'static str,
    log: mpsc::UnboundedSender<String>,
    mut on_line: impl FnMut(&str) + Send + 'static,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            on_line(&line);
            let _ = log.send(format!("{label} {line}\n"));
        }
    });
}

impl Listener {
    /// Starts the listener and waits until it says it is ready (its stream
    /// is live), or fails with its output.
    /// `gateway` is the replica's number and URL; `config` the listener's
    /// own configuration directory.
    pub async fn start(
        micro: &Path,
        owner: &Owner,
        (gateway, gateway_url): (usize, &str),
        forward_to: &str,
        config: &Path,
        log: PathBuf,
        deadline: Duration,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(config)?;
        let mut command = Command::new(micro);
        command.env_clear();
        for name in ["PATH", "HOME", "LANG"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        let mut child = command
            .args(["listen", "--forward-to", forward_to, "--format", "json"])
            .env("MICRO_GATEWAY", gateway_url)
            .env("MICRO_API_KEY", &owner.api_key)
            // Its own settings and state, and no keyring: nothing of the
            // developer's is read or written.
            .env("MICRO_CONFIG_DIR", config)
            .env("MICRO_KEYRING", "file")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", micro.display()))?;

        let (lines, mut to_log) = mpsc::unbounded_channel::<String>();
        let mut file = tokio::fs::File::create(&log).await?;
        tokio::spawn(async move {
            while let Some(line) = to_log.recv().await {
                let _ = file.write_all(line.as_bytes()).await;
            }
        });
        let failed_deliveries = Arc::new(AtomicUsize::new(0));
        let reconnects = Arc::new(AtomicUsize::new(0));
        let (ready, is_ready) = oneshot::channel();
        let mut ready = Some(ready);
        let stdout = child.stdout.take().context("listener stdout")?;
        let stderr = child.stderr.take().context("listener stderr")?;
        let failed = failed_deliveries.clone();
        watch_lines(stdout, "out", lines.clone(), move |line| {
            let parsed: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            if parsed["type"] == "delivery" && parsed["ok"] != true {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        });
        let dropped = reconnects.clone();
        watch_lines(stderr, "err", lines, move |line| {
            if line.starts_with("Ready!")
                && let Some(ready) = ready.take()
            {
                let _ = ready.send(());
            }
            if line.starts_with("reconnecting") {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        });
        let mut listener = Self {
            owner: owner.index,
            gateway,
            child,
            log,
            failed_deliveries,
            reconnects,
        };
        tokio::select! {
            result = tokio::time::timeout(deadline, is_ready) => {
                if !matches!(result, Ok(Ok(()))) {
                    bail!("micro listen for owner {} was not ready within {deadline:?}:\n{}", owner.index, tail(&listener.log, 10));
                }
            }
            status = listener.child.wait() => {
                bail!("micro listen for owner {} exited ({:?}):\n{}", owner.index, status.ok(), tail(&listener.log, 10));
            }
        }
        Ok(listener)
    }

    pub fn failed_deliveries(&self) -> usize {
        self.failed_deliveries.load(Ordering::Relaxed)
    }

    pub fn reconnects(&self) -> usize {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Set when the listener has given up and exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Ctrl-C, as a developer stops it.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id().and_then(|pid| i32::try_from(pid).ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGINT);
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
