//! The platform as separate processes: a PostgreSQL and a Redis of the
//! run's own (never the machine's shared ones), and each service as the
//! binary it ships as, configured through the environment as in production.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::relay::Relay;

/// How often a readiness probe is repeated until its deadline.
const POLL: Duration = Duration::from_millis(50);
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A port nobody listens on right now. Released at once, so another process
/// could take it before ours binds; on a loopback of our own that does not
/// happen in practice, and a clash fails start-up loudly.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn log_file(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

fn mark(path: &Path, what: &str) {
    if let Ok(mut file) = log_file(path) {
        let _ = writeln!(file, "---- micro-chaos: {what} ----");
    }
}

/// The last lines of a log, for an error message.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

fn send_signal(child: &Child, signal: Signal) -> anyhow::Result<()> {
    let pid = child.id().context("the process has already exited")?;
    let pid = i32::try_from(pid).context("a process id beyond i32")?;
    nix::sys::signal::kill(Pid::from_raw(pid), signal).with_context(|| format!("sending {signal}"))
}

/// Waits for a child to exit, killing it after `grace`.
async fn reap(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = child.start_kill();
            child.wait().await.ok()
        }
    }
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: the newest of
/// Debian's versioned directories, else wherever `initdb` on PATH really is.
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let initdb = on_path("initdb")
        .context("no PostgreSQL server binaries: neither /usr/lib/postgresql/*/bin nor initdb on PATH")?;
    let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
    real.parent()
        .map(Path::to_path_buf)
        .context("initdb has no directory")
}

/// A PostgreSQL cluster in the run's directory, on a port of its own, with
/// its socket in that directory too. initdb refuses to run as root, so as
/// root the server runs as the `postgres` OS user.
pub struct Postgres {
    bin: PathBuf,
    base: PathBuf,
    data: PathBuf,
    sockets: PathBuf,
    pub port: u16,
    log: PathBuf,
    /// Runs as this OS user, when we are root.
    user: Option<String>,
    child: Option<Child>,
}

impl Postgres {
    pub async fn create(root: &Path, logs: &Path) -> anyhow::Result<Self> {
        let bin = postgres_bin()?;
        let base = root.join("postgres");
        let sockets = base.join("sockets");
        std::fs::create_dir_all(&sockets).with_context(|| format!("creating {}", sockets.display()))?;
        let user = if nix::unistd::geteuid().is_root() {
            let name = "postgres";
            let account = nix::unistd::User::from_name(name)
                .context("looking up the postgres user")?
                .context("running as root, where initdb refuses to run, and there is no postgres user to run it as")?;
            for dir in [&base, &sockets] {
                std::os::unix::fs::chown(dir, Some(account.uid.as_raw()), Some(account.gid.as_raw()))
                    .with_context(|| format!("handing {} to postgres", dir.display()))?;
            }
            // The run's directory is private to its creator; postgres must
            // reach its own directory inside it, and nothing else is secret.
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
            Some(name.to_owned())
        } else {
            None
        };
        let mut postgres = Self {
            data: base.join("data"),
            bin,
            base,
            sockets,
            port: free_port()?,
            log: logs.join("postgres.log"),
            user,
            child: None,
        };
        postgres.initdb().await?;
        postgres.start()?;
        Ok(postgres)
    }

    /// A command for one of PostgreSQL's programs, as the right user.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = match &self.user {
            None => Command::new(path),
            // setpriv executes the program in its own process, so the pid we
            // hold is the server's; runuser would stand in between.
            Some(user) if on_path("setpriv").is_some() => {
                let mut command = Command::new("setpriv");
                command
                    .args(["--reuid", user, "--regid", user, "--init-groups", "--"])
                    .arg(path);
                command
            }
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(path);
                command
            }
        };
        command.current_dir(&self.base).stdin(Stdio::null());
        command
    }

    async fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let log = log_file(&self.log)?;
        let status = self
            .command(program)
            .args(args)
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .await
            .with_context(|| format!("running {program}"))?;
        if !status.success() {
            bail!("{program} failed ({status}):\n{}", tail(&self.log, 15));
        }
        Ok(())
    }

    async fn initdb(&self) -> anyhow::Result<()> {
        let data = self.data.to_string_lossy().into_owned();
        self.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
        )
        .await
    }

    pub fn start(&mut self) -> anyhow::Result<()> {
        mark(&self.log, "starting postgres");
        let log = log_file(&self.log)?;
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.sockets.display()))
            // A killed process loses nothing the kernel already has; only a
            // machine crash would, and this cluster does not outlive the run.
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=200", "-c", "shared_buffers=64MB"])
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting postgres")?;
        self.child = Some(child);
        Ok(())
    }

    /// A fast shutdown, as `pg_ctl restart -m fast` does: sessions are ended,
    /// the server checkpoints and exits.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        mark(&self.log, "stopping postgres (fast)");
        let data = self.data.to_string_lossy().into_owned();
        let stopped = self
            .run("pg_ctl", &["stop", "-D", &data, "-m", "fast", "-w", "-t", "60"])
            .await;
        if let Some(mut child) = self.child.take() {
            reap(&mut child, STOP_GRACE).await;
        }
        stopped
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub async fn wait_ready(&mut self, deadline: Duration) -> anyhow::Result<()> {
        use sqlx::Connection;
        let url = self.url("postgres");
        let accepts = || async {
            match sqlx::PgConnection::connect(&url).await {
                Ok(connection) => {
                    let _ = connection.close().await;
                    true
                }
                Err(_) => false,
            }
        };
        wait_for_server(
            "postgres",
            "accept connections",
            &mut self.child,
            &self.log,
            deadline,
            accepts,
        )
        .await
    }
}

/// A Redis server on a port of its own, keeping nothing on disk: a restart
/// forgets every counter and every subscriber, the harshest kind.
pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Redis {
    pub fn create(root: &Path, logs: &Path) -> anyhow::Result<Self> {
        let dir = root.join("redis");
        std::fs::create_dir_all(&dir)?;
        let mut redis = Self {
            port: free_port()?,
            dir,
            log: logs.join("redis.log"),
            child: None,
        };
        redis.start()?;
        Ok(redis)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn start(&mut self) -> anyhow::Result<()> {
        mark(&self.log, "starting redis");
        let program = on_path("redis-server").context("redis-server is not on PATH")?;
        let log = log_file(&self.log)?;
        let child = Command::new(program)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server")?;
        self.child = Some(child);
        Ok(())
    }

    pub async fn stop(&mut self) -> anyhow::Result<()> {
        mark(&self.log, "stopping redis");
        if let Some(mut child) = self.child.take() {
            send_signal(&child, Signal::SIGTERM)?;
            reap(&mut child, STOP_GRACE).await;
        }
        Ok(())
    }

    pub async fn wait_ready(&mut self, deadline: Duration) -> anyhow::Result<()> {
        let addr = self.addr();
        wait_for_server(
            "redis",
            "answer PING",
            &mut self.child,
            &self.log,
            deadline,
            || ping(addr),
        )
        .await
    }
}

/// Polls `ready` until it holds, failing early with the end of the log when
/// the server's process exits, or at the deadline.
async fn wait_for_server<Ready, Probe>(
    name: &str,
    what: &str,
    child: &mut Option<Child>,
    log: &Path,
    deadline: Duration,
    ready: Ready,
) -> anyhow::Result<()>
where
    Ready: Fn() -> Probe,
    Probe: std::future::Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    loop {
        if ready().await {
            return Ok(());
        }
        if let Some(child) = child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            bail!("{name} exited ({status}):\n{}", tail(log, 15));
        }
        if Instant::now() >= until {
            bail!("{name} did not {what} within {deadline:?}:\n{}", tail(log, 15));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn ping(addr: SocketAddr) -> bool {
    let attempt = async {
        let mut socket = tokio::net::TcpStream::connect(addr).await.ok()?;
        socket.write_all(b"PING\r\n").await.ok()?;
        let mut answer = [0u8; 7];
        socket.read_exact(&mut answer).await.ok()?;
        Some(&answer == b"+PONG\r\n")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), attempt).await,
        Ok(Some(true))
    )
}

/// One service process: its binary, its environment, its log (appended to
/// across restarts).
pub struct Service {
    pub name: &'static str,
    binary: PathBuf,
    env: Vec<(String, String)>,
    pub addr: SocketAddr,
    pub log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl Service {
    pub fn new(
        name: &'static str,
        binary: PathBuf,
        env: Vec<(String, String)>,
        addr: SocketAddr,
        logs: &Path,
    ) -> Self {
        Self {
            name,
            binary,
            env,
            addr,
            log: logs.join(format!("{name}.log")),
            child: None,
            paused: false,
        }
    }

    pub fn start(&mut self) -> anyhow::Result<()> {
        self.start_with(&[])
    }

    /// Starts with `extra` set on top of the service's own environment.
    pub fn start_with(&mut self, extra: &[(&str, String)]) -> anyhow::Result<()> {
        let with: Vec<String> = extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
        mark(
            &self.log,
            &format!(
                "starting {}{}{}",
                self.name,
                if with.is_empty() { "" } else { " with " },
                with.join(" ")
            ),
        );
        let log = log_file(&self.log)?;
        let mut command = Command::new(&self.binary);
        // Only what we set: nothing from the caller's shell (a GATEWAY_ADDR,
        // a DATABASE_URL) may point a service at the machine's shared stores.
        command.env_clear();
        for name in ["PATH", "HOME", "LANG", "TMPDIR"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        let child = command
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// `kill -9`: no shutdown, no flush, sockets closed by the kernel.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        mark(&self.log, &format!("kill -9 {}", self.name));
        if let Some(mut child) = self.child.take() {
            send_signal(&child, Signal::SIGKILL)?;
            let _ = child.wait().await;
        }
        Ok(())
    }

    /// SIGSTOP: the process holds its sockets and answers nothing.
    pub fn pause(&mut self) -> anyhow::Result<()> {
        mark(&self.log, &format!("SIGSTOP {}", self.name));
        let child = self.child.as_ref().context("not running")?;
        send_signal(child, Signal::SIGSTOP)?;
        self.paused = true;
        Ok(())
    }

    pub fn resume(&mut self) -> anyhow::Result<()> {
        let child = self.child.as_ref().context("not running")?;
        send_signal(child, Signal::SIGCONT)?;
        self.paused = false;
        mark(&self.log, &format!("SIGCONT {}", self.name));
        Ok(())
    }

    /// SIGTERM (after a SIGCONT, should it be stopped), then SIGKILL after a grace.
    pub async fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.paused {
                let _ = send_signal(&child, Signal::SIGCONT);
            }
            let _ = send_signal(&child, Signal::SIGTERM);
            reap(&mut child, STOP_GRACE).await;
        }
    }

    /// Set when the process has exited by itself.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }
}

/// What the run is made of.
pub struct Platform {
    pub postgres: Postgres,
    pub redis: Redis,
    /// Between gateway 1 and Redis.
    pub relay: Relay,
    pub auth: Service,
    pub payments: Service,
    pub ledger: Service,
    pub gateways: [Service; 2],
    /// Where each gateway serves `/metrics`.
    pub gateway_metrics: [SocketAddr; 2],
}

/// The binaries a run starts.
pub struct Binaries {
    pub dir: PathBuf,
}

impl Binaries {
    pub const NAMES: [&'static str; 5] = [
        "micro-gateway",
        "micro-auth",
        "micro-payments",
        "micro-ledger",
        "micro",
    ];

    /// `dir`, or the directory micro-chaos itself was built into.
    pub fn locate(dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let dir = match dir {
            Some(dir) => dir,
            None => std::env::current_exe()
                .context("finding micro-chaos's own directory")?
                .parent()
                .map(Path::to_path_buf)
                .context("micro-chaos has no directory")?,
        };
        let missing: Vec<&str> = Self::NAMES
            .into_iter()
            .filter(|name| !dir.join(name).is_file())
            .collect();
        if !missing.is_empty() {
            bail!(
                "{} not found in {}: build them (scripts/chaos does) or pass --bin-dir",
                missing.join(", "),
                dir.display()
            );
        }
        Ok(Self { dir })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn secret() -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Platform {
    /// Starts PostgreSQL and Redis, then the services in the order they
    /// need each other, each one ready before the next; `overrides` are set
    /// for every service. What was started is stopped again if the rest
    /// fails.
    pub async fn start(
        root: &Path,
        logs: &Path,
        binaries: &Binaries,
        deadline: Duration,
        overrides: &[(&'static str, String)],
    ) -> anyhow::Result<Self> {
        let mut postgres = Postgres::create(root, logs).await?;
        let mut redis = match Redis::create(root, logs) {
            Ok(redis) => redis,
            Err(e) => {
                let _ = postgres.stop().await;
                return Err(e);
            }
        };
        match Self::start_services(&mut postgres, &mut redis, logs, binaries, deadline, overrides).await {
            Ok((relay, [auth, payments, ledger, gateway_0, gateway_1], gateway_metrics)) => Ok(Self {
                postgres,
                redis,
                relay,
                auth,
                payments,
                ledger,
                gateways: [gateway_0, gateway_1],
                gateway_metrics,
            }),
            Err(e) => {
                let _ = redis.stop().await;
                let _ = postgres.stop().await;
                Err(e)
            }
        }
    }

    /// The relay and auth, payments, ledger and both gateways, all ready.
    async fn start_services(
        postgres: &mut Postgres,
        redis: &mut Redis,
        logs: &Path,
        binaries: &Binaries,
        deadline: Duration,
        overrides: &[(&'static str, String)],
    ) -> anyhow::Result<(Relay, [Service; 5], [SocketAddr; 2])> {
        postgres.wait_ready(deadline).await?;
        redis.wait_ready(deadline).await?;
        let relay = Relay::start(redis.addr())
            .await
            .context("starting the Redis relay")?;

        let [auth, payments, ledger, gateway_0, gateway_1, metrics_0, metrics_1] = [(); 7]
            .map(|()| free_port().map(loopback))
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()?
            .try_into()
            .map_err(|_| anyhow::anyhow!("seven ports"))?;
        let mut common = vec![
            ("AUTH_DATABASE_URL", postgres.url("micro_auth")),
            ("PAYMENTS_DATABASE_URL", postgres.url("micro_payments")),
            ("LEDGER_DATABASE_URL", postgres.url("micro_ledger")),
            ("REDIS_URL", format!("redis://{}", redis.addr())),
            ("REDIS_PREFIX", "chaos:".to_owned()),
            // Secrets of the run's own: a release build refuses the development ones.
            ("JWT_SECRET", secret()),
            ("INTERNAL_TOKEN_SECRET", secret()),
            ("API_KEY_HASH_SECRET", secret()),
            ("AUTH_ADDR", auth.to_string()),
            ("PAYMENTS_ADDR", payments.to_string()),
            ("LEDGER_ADDR", ledger.to_string()),
            ("AUTH_URL", format!("http://{auth}")),
            ("PAYMENTS_URL", format!("http://{payments}")),
            ("LEDGER_URL", format!("http://{ledger}")),
            // The load is a few clients on a few keys, on purpose faster
            // than the production limits; what is under test is the outage.
            ("RATE_LIMIT_PER_MINUTE", "1000000".to_owned()),
            ("AUTH_RATE_LIMIT_PER_MINUTE", "10000".to_owned()),
            ("AUTH_FAILURES_PER_MINUTE", "10000".to_owned()),
            ("BCRYPT_COST", "4".to_owned()),
            ("LOG_FORMAT", "text".to_owned()),
            // The logs are files, read later: no colour codes in them.
            ("NO_COLOR", "1".to_owned()),
            ("GATEWAY_ADDR", gateway_0.to_string()),
            ("METRICS_ADDR", metrics_0.to_string()),
        ];
        common.retain(|(name, _)| !overrides.iter().any(|(n, _)| n == name));
        common.extend(overrides.iter().cloned());
        let env = |extra: &[(&str, String)]| -> Vec<(String, String)> {
            common
                .iter()
                .filter(|(name, _)| !extra.iter().any(|(n, _)| n == name))
                .chain(extra)
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect()
        };
        let mut auth = Service::new("auth", binaries.path("micro-auth"), env(&[]), auth, logs);
        let mut ledger = Service::new("ledger", binaries.path("micro-ledger"), env(&[]), ledger, logs);
        let mut payments = Service::new(
            "payments",
            binaries.path("micro-payments"),
            env(&[]),
            payments,
            logs,
        );
        let gateway_0 = Service::new(
            "gateway-0",
            binaries.path("micro-gateway"),
            env(&[]),
            gateway_0,
            logs,
        );
        let gateway_1 = Service::new(
            "gateway-1",
            binaries.path("micro-gateway"),
            env(&[
                ("GATEWAY_ADDR", gateway_1.to_string()),
                ("METRICS_ADDR", metrics_1.to_string()),
                ("REDIS_URL", format!("redis://{}", relay.addr())),
            ]),
            gateway_1,
            logs,
        );

        let http = readiness_client()?;
        auth.start()?;
        ledger.start()?;
        wait_ready(&http, &mut [&mut auth, &mut ledger], deadline).await?;
        payments.start()?;
        wait_ready(&http, &mut [&mut payments], deadline).await?;
        let mut gateways = [gateway_0, gateway_1];
        for gateway in &mut gateways {
            gateway.start()?;
        }
        let [g0, g1] = &mut gateways;
        wait_ready(&http, &mut [g0, g1], deadline).await?;
        let [gateway_0, gateway_1] = gateways;
        Ok((
            relay,
            [auth, payments, ledger, gateway_0, gateway_1],
            [metrics_0, metrics_1],
        ))
    }

    pub fn services(&mut self) -> [&mut Service; 5] {
        let [g0, g1] = &mut self.gateways;
        [&mut self.auth, &mut self.payments, &mut self.ledger, g0, g1]
    }

    /// Every service's log, for a failure message.
    pub fn logs(&self) -> Vec<PathBuf> {
        [
            &self.auth,
            &self.payments,
            &self.ledger,
            &self.gateways[0],
            &self.gateways[1],
        ]
        .iter()
        .map(|s| s.log.clone())
        .collect()
    }

    pub async fn stop(&mut self) {
        for service in self.services() {
            service.terminate().await;
        }
        let _ = self.redis.stop().await;
        let _ = self.postgres.stop().await;
    }
}

pub fn readiness_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .context("building an HTTP client")
}

/// Whether `/readyz` answers 200 now.
pub async fn is_ready(http: &reqwest::Client, service: &Service) -> bool {
    matches!(
        http.get(format!("{}/readyz", service.url())).send().await,
        Ok(response) if response.status() == reqwest::StatusCode::OK
    )
}

/// Polls every service's `/readyz` until all answer 200, or fails naming
/// the ones that did not, with the end of their logs.
pub async fn wait_ready(
    http: &reqwest::Client,
    services: &mut [&mut Service],
    deadline: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let mut waiting = Vec::new();
        for service in services.iter_mut() {
            if let Some(status) = service.exited() {
                bail!("{} exited ({status}):\n{}", service.name, tail(&service.log, 20));
            }
            if !is_ready(http, service).await {
                waiting.push(&**service);
            }
        }
        if waiting.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= deadline {
            let detail: Vec<String> = waiting
                .iter()
                .map(|s| format!("{} ({}):\n{}", s.name, s.log.display(), tail(&s.log, 10)))
                .collect();
            bail!("not ready within {deadline:?}: {}", detail.join("\n"));
        }
        tokio::time::sleep(POLL).await;
    }
}
