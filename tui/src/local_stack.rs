//! A local platform for the console: when `micro` opens on the default
//! gateway and nothing answers there, it can start a sibling `micro-stack`
//! process, wait until its services are ready, and stop it on the way out.
//!
//! The binary is spawned, never linked: the client carries no server code.
//! Its output goes to a log file ([`log_path`]); it is stopped with SIGTERM,
//! then killed if it has not exited after [`STOP_GRACE`].

use std::ffi::OsStr;
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{ConsoleArgs, Global};
use crate::exit::{CliError, CliResult};
use crate::session::Invocation;

pub const BINARY: &str = "micro-stack";
/// What to run when the binary is missing.
pub const BUILD_HINT: &str = "cargo build --release --bin micro-stack";
/// A cold start creates three databases and runs their migrations.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopped platform has to finish its requests and close its pools.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(200);
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the console does about a platform before it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Open the console as it is: it waits for the gateway on its own.
    Leave,
    /// Ask on the terminal, then start it if the answer is yes.
    Ask,
    Start,
}

/// What the choice depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Situation {
    /// `--gateway`, `MICRO_GATEWAY` or the config file named one.
    pub gateway_configured: bool,
    /// Standard input is a terminal: someone can answer.
    pub interactive: bool,
    pub start_stack: bool,
    pub no_start_stack: bool,
}

impl Situation {
    /// Whether it is worth asking the gateway at all.
    pub fn may_start(&self) -> bool {
        !self.no_start_stack && (self.start_stack || (self.interactive && !self.gateway_configured))
    }

    /// The plan, once it is known whether something answers at the gateway.
    pub fn plan(&self, answers: bool) -> Plan {
        if !self.may_start() || answers {
            Plan::Leave
        } else if self.start_stack {
            Plan::Start
        } else {
            Plan::Ask
        }
    }
}

/// `micro-stack` next to the running `micro` (how cargo lays out a target
/// directory, and how an archive unpacks), else the first one on `path`.
pub fn find_binary(current_exe: Option<&Path>, path: Option<&OsStr>) -> Option<PathBuf> {
    let name = format!("{BINARY}{}", std::env::consts::EXE_SUFFIX);
    let sibling = current_exe.and_then(Path::parent).map(|dir| dir.join(&name));
    let on_path = path
        .map(std::env::split_paths)
        .into_iter()
        .flatten()
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(&name));
    sibling
        .into_iter()
        .chain(on_path)
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    let Ok(metadata) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        metadata.is_file()
    }
}

/// Where a started platform's output goes: the platform's state directory
/// (`~/.local/state/micro/micro-stack.log` on Linux), else its local data
/// directory, else the temporary directory.
pub fn log_path() -> PathBuf {
    let dirs = directories::ProjectDirs::from("", "", "micro");
    let dir = dirs
        .as_ref()
        .and_then(|d| d.state_dir().map(Path::to_path_buf))
        .or_else(|| dirs.as_ref().map(|d| d.data_local_dir().to_path_buf()))
        .unwrap_or_else(std::env::temp_dir);
    dir.join("micro-stack.log")
}

/// Where each of the four services listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Services {
    pub gateway: SocketAddr,
    pub auth: SocketAddr,
    pub payments: SocketAddr,
    pub ledger: SocketAddr,
}

impl Services {
    /// The gateway where the console looks for it; the others where
    /// `micro-stack` would put them (`AUTH_ADDR`... or 8081-8083).
    pub fn for_gateway(gateway: SocketAddr) -> Self {
        let from_env = |name: &str, port: u16| {
            std::env::var(name)
                .ok()
                .and_then(|value| value.parse().ok())
                .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        };
        Self {
            gateway,
            auth: from_env("AUTH_ADDR", 8081),
            payments: from_env("PAYMENTS_ADDR", 8082),
            ledger: from_env("LEDGER_ADDR", 8083),
        }
    }

    /// In the order the stack brings them up.
    pub fn named(&self) -> [(&'static str, SocketAddr); 4] {
        [
            ("auth", self.auth),
            ("ledger", self.ledger),
            ("payments", self.payments),
            ("gateway", self.gateway),
        ]
    }

    /// The environment that puts `micro-stack` there.
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("GATEWAY_ADDR", self.gateway.to_string()),
            ("AUTH_ADDR", self.auth.to_string()),
            ("PAYMENTS_ADDR", self.payments.to_string()),
            ("LEDGER_ADDR", self.ledger.to_string()),
        ]
    }
}

/// The loopback address a local gateway URL names; `None` for anything a
/// local `micro-stack` could not serve.
pub fn loopback_addr(gateway: &str) -> Option<SocketAddr> {
    let url = url::Url::parse(gateway).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let ip = match url.host()? {
        url::Host::Domain("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        url::Host::Domain(_) => return None,
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
    };
    ip.is_loopback()
        .then(|| SocketAddr::new(ip, url.port_or_known_default().unwrap_or(80)))
}

/// Whether anything answers HTTP at `gateway` (any status counts).
pub async fn answers(gateway: &str) -> bool {
    let Ok(http) = reqwest::Client::builder().timeout(PROBE_TIMEOUT).build() else {
        return false;
    };
    http.get(format!("{}/healthz", gateway.trim_end_matches('/')))
        .send()
        .await
        .is_ok()
}

async fn ready(http: &reqwest::Client, addr: SocketAddr) -> bool {
    matches!(
        http.get(format!("http://{addr}/readyz")).send().await,
        Ok(response) if response.status().is_success()
    )
}

/// A `micro-stack` this process started. Dropping it stops it, so an
/// early return or a panic that unwinds does not leave it running.
#[derive(Debug)]
pub struct LocalStack {
    child: Option<Child>,
    pub services: Services,
    pub log: PathBuf,
    pub grace: Duration,
}

impl LocalStack {
    /// Starts `binary` on `services`' addresses, its output in `log` (one
    /// run per file), with `env` added to the environment it inherits.
    pub fn spawn(
        binary: &Path,
        services: Services,
        log: &Path,
        env: &[(String, String)],
    ) -> std::io::Result<Self> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::File::create(log)?;
        writeln!(
            file,
            "--- {} started by micro at {} ---",
            binary.display(),
            chrono::Utc::now().to_rfc3339()
        )?;
        let child = std::process::Command::new(binary)
            .envs(services.env())
            // A log file is no terminal: no colour codes in it.
            .env("NO_COLOR", "1")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            // It must not read the keys meant for the console.
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        Ok(Self {
            child: Some(child),
            services,
            log: log.to_path_buf(),
            grace: STOP_GRACE,
        })
    }

    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Polls every service's `/readyz` until all four answer 200, telling
    /// `progress` which are up each time that changes. Fails when the
    /// process exits first or `timeout` passes.
    pub async fn wait_ready(
        &mut self,
        timeout: Duration,
        mut progress: impl FnMut(&[(&'static str, bool)], Duration),
    ) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(PROBE_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        let mut up: Vec<(&'static str, bool)> =
            self.services.named().iter().map(|(n, _)| (*n, false)).collect();
        progress(&up, started.elapsed());
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("{BINARY} exited ({status}) before it was ready"));
            }
            let checks = self
                .services
                .named()
                .into_iter()
                .zip(up.iter().map(|(_, is_up)| *is_up))
                .map(|((_, addr), is_up)| {
                    let http = http.clone();
                    async move { is_up || ready(&http, addr).await }
                });
            let now: Vec<bool> = futures::future::join_all(checks).await;
            let changed = now.iter().zip(&up).any(|(now, (_, was))| now != was);
            for ((_, is_up), now) in up.iter_mut().zip(now) {
                *is_up = now;
            }
            if changed {
                progress(&up, started.elapsed());
            }
            if up.iter().all(|(_, is_up)| *is_up) {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                let waiting: Vec<&str> = up.iter().filter(|(_, u)| !u).map(|(n, _)| *n).collect();
                return Err(format!(
                    "{BINARY} was not ready within {} s (still waiting for {})",
                    timeout.as_secs(),
                    waiting.join(", ")
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGTERM, up to [`LocalStack::grace`] to exit, then SIGKILL. Returns
    /// how it ended; `None` when it was already stopped.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if terminate(&child) {
            let deadline = Instant::now() + self.grace;
            while Instant::now() < deadline {
                match child.try_wait() {
                    Ok(Some(status)) => return Some(status),
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    Err(_) => break,
                }
            }
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// The last `lines` lines of the log, for a start that failed.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(unix)]
fn terminate(child: &Child) -> bool {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    i32::try_from(child.id()).is_ok_and(|pid| kill(Pid::from_raw(pid), Signal::SIGTERM).is_ok())
}

#[cfg(not(unix))]
fn terminate(_child: &Child) -> bool {
    false
}

/// The console's start: decides, asks if it should, starts and waits.
/// `Ok(None)` when the console opens without a platform of its own.
pub async fn prepare(
    global: &Global,
    console: ConsoleArgs,
    context: &Invocation,
) -> CliResult<Option<LocalStack>> {
    let situation = Situation {
        gateway_configured: global.gateway.is_some() || context.settings.gateway.is_some(),
        interactive: std::io::stdin().is_terminal(),
        start_stack: console.start_stack,
        no_start_stack: console.no_start_stack,
    };
    if !situation.may_start() {
        return Ok(None);
    }
    let gateway = context.target.gateway.clone();
    let Some(addr) = loopback_addr(&gateway) else {
        if situation.start_stack {
            return Err(CliError::Usage(format!(
                "--start-stack starts a platform on this machine, but the gateway is {gateway}: \
                 use an http:// URL on a loopback address"
            )));
        }
        return Ok(None);
    };
    match situation.plan(answers(&gateway).await) {
        Plan::Leave => {
            if situation.start_stack {
                eprintln!("micro: a platform already answers at {gateway}; using it");
            }
            return Ok(None);
        }
        Plan::Ask => {
            let question =
                format!("No Micro platform answers at {gateway}. Start a local one with {BINARY}? [Y/n] ");
            if !ask(question).await? {
                return Ok(None);
            }
        }
        Plan::Start => {}
    }
    let exe = std::env::current_exe().ok();
    let Some(binary) = find_binary(exe.as_deref(), std::env::var_os("PATH").as_deref()) else {
        let beside = exe
            .as_deref()
            .and_then(Path::parent)
            .map_or_else(|| "micro".to_owned(), |dir| dir.display().to_string());
        return Err(CliError::NoStack(format!(
            "{BINARY} is neither next to micro (in {beside}) nor on PATH. Build it from the Micro \
             source tree with\n\n    {BUILD_HINT}\n\nthen run micro again from the same target directory \
             (cargo run --release --bin micro), or start {BINARY} yourself in another terminal."
        )));
    };
    let log = log_path();
    eprintln!(
        "Starting {} on {addr}; its output goes to {}",
        binary.display(),
        log.display()
    );
    let mut stack = LocalStack::spawn(&binary, Services::for_gateway(addr), &log, &[])
        .map_err(|e| CliError::NoStack(format!("cannot start {}: {e}", binary.display())))?;
    let tty = std::io::stderr().is_terminal();
    let shown = |up: &[(&'static str, bool)], elapsed: Duration| {
        let states: Vec<String> = up
            .iter()
            .map(|(name, is_up)| format!("{name} {}", if *is_up { "up" } else { "starting" }))
            .collect();
        let line = format!(
            "Waiting for the platform: {} ({:.1} s)",
            states.join(", "),
            elapsed.as_secs_f64()
        );
        if tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    };
    let outcome = tokio::select! {
        outcome = stack.wait_ready(READY_TIMEOUT, shown) => outcome,
        () = interrupted() => Err("interrupted".to_owned()),
    };
    if tty {
        eprintln!();
    }
    match outcome {
        Ok(()) => {
            eprintln!("The platform is ready at {gateway}.");
            Ok(Some(stack))
        }
        Err(reason) => {
            stack.stop();
            let tail = stack.log_tail(15);
            Err(CliError::NoStack(format!(
                "{reason}; it is stopped. The end of {}:\n{tail}",
                stack.log.display()
            )))
        }
    }
}

async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A yes/no question on the terminal; Enter means yes, end of input no.
async fn ask(question: String) -> CliResult<bool> {
    let answer = tokio::task::spawn_blocking(move || {
        eprint!("{question}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|read| (read, line))
    })
    .await
    .map_err(|e| CliError::Other(e.to_string()))??;
    Ok(match answer {
        (0, _) => false,
        (_, line) => is_yes(&line),
    })
}

pub fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "" | "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn situation() -> Situation {
        Situation {
            gateway_configured: false,
            interactive: true,
            start_stack: false,
            no_start_stack: false,
        }
    }

    #[test]
    fn it_offers_only_on_the_default_gateway_at_a_terminal_when_nothing_answers() {
        assert_eq!(situation().plan(false), Plan::Ask);
        assert_eq!(situation().plan(true), Plan::Leave, "something answers");
        let configured = Situation {
            gateway_configured: true,
            ..situation()
        };
        assert!(!configured.may_start());
        assert_eq!(configured.plan(false), Plan::Leave);
        let piped = Situation {
            interactive: false,
            ..situation()
        };
        assert_eq!(piped.plan(false), Plan::Leave, "nobody to ask");
        let refused = Situation {
            no_start_stack: true,
            ..situation()
        };
        assert_eq!(refused.plan(false), Plan::Leave);
    }

    #[test]
    fn start_stack_starts_without_asking_but_not_over_a_running_one() {
        for (configured, interactive) in [(false, true), (true, true), (false, false), (true, false)] {
            let start = Situation {
                gateway_configured: configured,
                interactive,
                start_stack: true,
                no_start_stack: false,
            };
            assert_eq!(start.plan(false), Plan::Start);
            assert_eq!(start.plan(true), Plan::Leave);
        }
    }

    #[test]
    fn answers_are_yes_by_default() {
        for yes in ["", "\n", "y", "Y\n", "yes", " YES "] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["n", "N\n", "no", "nope", "q"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }

    #[test]
    fn only_loopback_http_gateways_can_be_started_here() {
        assert_eq!(
            loopback_addr("http://127.0.0.1:8080"),
            Some("127.0.0.1:8080".parse().expect("addr"))
        );
        assert_eq!(
            loopback_addr("http://localhost"),
            Some("127.0.0.1:80".parse().expect("addr"))
        );
        assert_eq!(
            loopback_addr("http://[::1]:9000"),
            Some("[::1]:9000".parse().expect("addr"))
        );
        assert_eq!(loopback_addr("https://127.0.0.1:8080"), None);
        assert_eq!(loopback_addr("http://api.example.com:8080"), None);
        assert_eq!(loopback_addr("http://10.0.0.1:8080"), None);
    }

    fn executable(path: &Path) {
        std::fs::write(path, "#!/bin/sh\n").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }

    #[test]
    fn the_sibling_wins_then_path_in_order() {
        let root = tempfile::tempdir().expect("tempdir");
        let [release, bin_a, bin_b] = ["release", "a", "b"].map(|d| {
            let dir = root.path().join(d);
            std::fs::create_dir_all(&dir).expect("mkdir");
            dir
        });
        let name = format!("{BINARY}{}", std::env::consts::EXE_SUFFIX);
        let micro = release.join("micro");
        let path = std::env::join_paths([&bin_a, &bin_b]).expect("PATH");

        assert_eq!(find_binary(Some(&micro), Some(&path)), None, "nowhere yet");
        executable(&bin_b.join(&name));
        assert_eq!(find_binary(Some(&micro), Some(&path)), Some(bin_b.join(&name)));
        executable(&bin_a.join(&name));
        assert_eq!(
            find_binary(Some(&micro), Some(&path)),
            Some(bin_a.join(&name)),
            "PATH order"
        );
        executable(&release.join(&name));
        assert_eq!(
            find_binary(Some(&micro), Some(&path)),
            Some(release.join(&name)),
            "the sibling first"
        );
        assert_eq!(find_binary(None, None), None);

        #[cfg(unix)]
        {
            // A file that cannot be run is not a candidate.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(release.join(&name), std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
            assert_eq!(find_binary(Some(&micro), Some(&path)), Some(bin_a.join(&name)));
        }
    }
}
