//! Gateway benchmark: an authenticated GET through the gateway beside nginx
//! doing a plain `proxy_pass` to the same upstream, and beside the upstream
//! called directly, all with the same wrk load; then the time from a
//! payment's confirm to its event frame on a stream, beside a raw Redis
//! PUBLISH-to-subscriber round trip. Run with `scripts/bench-gateway`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use platform::internal_token::{Caller, HEADER, InternalTokens};
use stack::testing::TestStack;

const UPSTREAM_PATH: &str = "/v1/webhooks/secret";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = env_number("BENCH_SECONDS", 10);
    let connections = env_number("BENCH_CONNECTIONS", 64);
    let events = env_number("BENCH_EVENTS", 1000) as usize;
    let stack = TestStack::start_with(|c| {
        c.gateway.rate_limit_per_minute = u32::MAX / 2;
        c.auth.bcrypt_cost = 10;
    })
    .await;
    let gateway = stack.gateway_url();
    let api = client::Client::new(&gateway)?;
    let developer = developer(&api).await?;
    let auth = format!("http://{}", stack.stack.auth);

    // nginx and the direct run present a fixed internal token, as the
    // gateway would mint one; tokens live 60 s, so each run mints afresh.
    let tokens = InternalTokens::new(&stack.config.gateway.internal_token_secret);
    let caller = Caller::session(developer.user_id.clone());
    let work = std::env::temp_dir().join(format!("micro-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;

    println!(
        "# Authenticated GET {UPSTREAM_PATH}: wrk -t2 -c{connections} -d{seconds}s, same upstream (auth)"
    );
    let direct = wrk(
        &format!("{auth}{UPSTREAM_PATH}"),
        &format!("{HEADER}: {}", tokens.mint(&caller)),
        connections,
        seconds,
    )?;
    let nginx_port = free_port()?;
    let mut nginx = Nginx::start(&work, nginx_port, stack.stack.auth.port(), &tokens.mint(&caller))?;
    wait_for_port(nginx_port).await?;
    let proxied = wrk(
        &format!("http://127.0.0.1:{nginx_port}{UPSTREAM_PATH}"),
        "x-bench: nginx",
        connections,
        seconds,
    );
    nginx.stop();
    let proxied = proxied?;
    let own_runtime = GatewayOnItsOwnThreads::start(stack.stack.config.gateway.clone())?;
    let through_gateway = wrk(
        &format!("http://{}{UPSTREAM_PATH}", own_runtime.addr),
        &format!("Authorization: Bearer {}", developer.api_key),
        connections,
        seconds,
    );
    own_runtime.stop();
    let through_gateway = through_gateway?;
    println!(
        "{:<22} {:>12} {:>10} {:>10}",
        "target", "requests/s", "p50 ms", "p99 ms"
    );
    for (name, run) in [
        ("upstream direct", &direct),
        ("nginx proxy_pass", &proxied),
        ("gateway", &through_gateway),
    ] {
        println!(
            "{name:<22} {:>12.0} {:>10.2} {:>10.2}",
            run.rps, run.p50_ms, run.p99_ms
        );
    }
    println!(
        "ratio gateway/nginx (requests/s): {:.2}  (goal >= 1.0)",
        through_gateway.rps / proxied.rps
    );
    println!(
        "gateway added latency over direct: p50 {:+.2} ms, p99 {:+.2} ms",
        through_gateway.p50_ms - direct.p50_ms,
        through_gateway.p99_ms - direct.p99_ms
    );

    println!();
    println!("# Confirm -> event frame on a connected stream, {events} payments, one at a time");
    let stream_latencies = confirm_to_frame(&api, &developer, events).await?;
    let redis_latencies = redis_round_trips(&stack, events).await?;
    println!("{:<30} {:>10} {:>10}", "path", "p50 ms", "p99 ms");
    for (name, mut samples) in [
        ("confirm -> stream frame", stream_latencies),
        ("redis PUBLISH -> subscriber", redis_latencies),
    ] {
        samples.sort_by(f64::total_cmp);
        println!(
            "{name:<30} {:>10.3} {:>10.3}",
            percentile(&samples, 0.50),
            percentile(&samples, 0.99)
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// The gateway as its own binary runs it: on a runtime of its own, one
/// worker thread per core, apart from the threads of the upstream it
/// forwards to, as nginx's worker processes are. (The stack's own gateway
/// shares one runtime with all four services.)
struct GatewayOnItsOwnThreads {
    addr: std::net::SocketAddr,
    shutdown: tokio_util::sync::CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

impl GatewayOnItsOwnThreads {
    fn start(config: gateway::GatewaySettings) -> anyhow::Result<Self> {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let (started, addr) = std::sync::mpsc::channel();
        let thread = std::thread::spawn({
            let shutdown = shutdown.clone();
            move || {
                let serve = async {
                    let listener = platform::http::bind("127.0.0.1:0".parse()?).await?;
                    let server = gateway::build(&config, listener, shutdown).await?;
                    let _ = started.send(Ok(server.local_addr));
                    server.task.await??;
                    anyhow::Ok(())
                };
                let served = tokio::runtime::Builder::new_multi_thread()
                    // Named apart from the stack's workers, for `perf --comm`.
                    .thread_name("gateway-worker")
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)
                    .and_then(|runtime| runtime.block_on(serve));
                if let Err(e) = served {
                    let _ = started.send(Err(e));
                }
            }
        });
        let addr = addr
            .recv_timeout(Duration::from_secs(10))
            .context("the gateway on its own runtime did not start")??;
        Ok(Self {
            addr,
            shutdown,
            thread,
        })
    }

    fn stop(self) {
        self.shutdown.cancel();
        let _ = self.thread.join();
    }
}

struct Developer {
    user_id: String,
    api_key: String,
}

async fn developer(api: &client::Client) -> anyhow::Result<Developer> {
    let credentials = contract::auth::Credentials {
        email: "bench@example.com".into(),
        password: "benchmark password".into(),
    };
    let user = api.register(&credentials).await?.value;
    let session = api.login(&credentials).await?.value;
    let key = api.create_api_key(&session.access_token, "bench").await?.value;
    Ok(Developer {
        user_id: user.id,
        api_key: key.key,
    })
}

struct WrkRun {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn wrk(url: &str, header: &str, connections: u64, seconds: u64) -> anyhow::Result<WrkRun> {
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-H",
            header,
            url,
        ])
        .output()
        .context("wrk is needed: apt-get install wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || text.contains("Non-2xx") {
        bail!("wrk against {url} failed or saw errors:\n{text}");
    }
    let field = |prefix: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(prefix).map(str::trim).map(str::to_owned))
    };
    let rps = field("Requests/sec:").context("no Requests/sec")?.parse()?;
    let p50_ms = duration_ms(&field("50%").context("no p50")?)?;
    let p99_ms = duration_ms(&field("99%").context("no p99")?)?;
    Ok(WrkRun { rps, p50_ms, p99_ms })
}

fn duration_ms(text: &str) -> anyhow::Result<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        bail!("unknown duration {text:?}")
    };
    Ok(number.parse::<f64>()? * factor)
}

/// nginx for the comparison: a master and its workers, all of which must be
/// gone when the benchmark ends, however it ends.
struct Nginx {
    child: Child,
    config: PathBuf,
    work: PathBuf,
}

/// How long nginx's graceful quit may take before its processes are killed.
const NGINX_QUIT_DEADLINE: Duration = Duration::from_secs(10);

impl Nginx {
    fn start(work: &Path, port: u16, upstream_port: u16, internal_token: &str) -> anyhow::Result<Self> {
        let config: PathBuf = work.join("nginx.conf");
        std::fs::write(
            &config,
            format!(
                "worker_processes 2;
error_log {work}/error.log;
pid {work}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work};
  proxy_temp_path {work};
  upstream upstream {{ server 127.0.0.1:{upstream_port}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header {HEADER} \"{internal_token}\";
    }}
  }}
}}
",
                work = work.display()
            ),
        )?;
        let child = Command::new("nginx")
            .args(Self::args(work, &config))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("nginx is needed: apt-get install nginx-light")?;
        Ok(Self {
            child,
            config,
            work: work.to_owned(),
        })
    }

    fn args(work: &Path, config: &Path) -> [String; 4] {
        [
            "-p".into(),
            work.display().to_string(),
            "-c".into(),
            config.display().to_string(),
        ]
    }

    /// Stops nginx with its own quit signal, which lets the master wait for
    /// its workers; killing only the master (what `Child::kill` does) would
    /// leave the workers listening. Whatever has not ended by the deadline is
    /// killed, workers first.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let workers = self.workers();
        let _ = Command::new("nginx")
            .args(Self::args(&self.work, &self.config))
            .args(["-s", "quit"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + NGINX_QUIT_DEADLINE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) && !workers.iter().any(|pid| alive(*pid)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in &workers {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The master's worker processes, as Linux lists its children.
    fn workers(&self) -> Vec<u32> {
        let pid = self.child.id();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .map(|list| list.split_whitespace().filter_map(|p| p.parse().ok()).collect())
            .unwrap_or_default()
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_for_port(port: u16) -> anyhow::Result<()> {
    let ready = platform::testing::eventually(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    ready.context("nginx did not start listening")
}

async fn confirm_to_frame(
    api: &client::Client,
    developer: &Developer,
    count: usize,
) -> anyhow::Result<Vec<f64>> {
    let options = client::StreamOptions {
        types: vec![contract::events::EventType::PaymentSucceeded],
        ..Default::default()
    };
    let mut stream = api.open_stream(&developer.api_key, &options).await?;
    let order = contract::payments::CreatePaymentRequest {
        amount: 1000,
        currency: "usd".into(),
        description: None,
        metadata: None,
        customer_email: None,
    };
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let payment = api.create_payment(&developer.api_key, &order, None).await?.value;
        let started = Instant::now();
        api.confirm_payment(&developer.api_key, &payment.id, "pm_card_visa", None)
            .await?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .context("no event frame within 10 s")?
                .context("the stream closed")??;
            if let client::Frame::Event { event, .. } = frame
                && event.data.object["id"] == payment.id.as_str()
            {
                break;
            }
        }
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

async fn redis_round_trips(stack: &TestStack, count: usize) -> anyhow::Result<Vec<f64>> {
    let client = redis::Client::open(stack.config.gateway.redis.url.as_str())?;
    let mut subscriber = client.get_async_pubsub().await?;
    let channel = format!("{}bench-round-trip", stack.config.gateway.redis.prefix);
    subscriber.subscribe(&channel).await?;
    let mut messages = subscriber.on_message();
    let mut publisher = client.get_multiplexed_async_connection().await?;
    let mut latencies = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(i)
            .query_async(&mut publisher)
            .await?;
        messages.next().await.context("the subscription closed")?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
