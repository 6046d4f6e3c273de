//! `sylph-bench http-hello`: a trivial Node.js handler behind an `http` event, under `sylph dev`
//! and under serverless-offline (`--useInProcess`) in the same run. Prints, for each server and
//! concurrency level, requests/s with p50/p99 latency, and the time from starting the server
//! to its first successful response. Ratios matter more than absolute numbers: the machine is
//! shared and noisy.
//!
//! Usage: sylph-bench http-hello --sylph PATH --dir SERVICE_DIR [--seconds N] [--concurrency 1,8,64]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod coldstart;
mod describe;
mod events;
mod isolation;
mod server;
mod storage;
mod tables;
mod todo;
mod wasm;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpStream;

struct Options {
    sylph: PathBuf,
    dir: PathBuf,
    seconds: u64,
    concurrency: Vec<usize>,
    skip_offline: bool,
    /// Extra arguments for `sylph dev` (for experiments such as `--concurrency 2`).
    sylph_args: Vec<String>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut o = Options {
        sylph: PathBuf::new(),
        dir: PathBuf::new(),
        seconds: 5,
        concurrency: vec![1, 8, 64],
        skip_offline: false,
        sylph_args: Vec::new(),
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--sylph" => o.sylph = PathBuf::from(value()?),
            "--dir" => o.dir = PathBuf::from(value()?),
            "--seconds" => o.seconds = value()?.parse()?,
            "--concurrency" => {
                o.concurrency = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            "--skip-offline" => o.skip_offline = true,
            "--sylph-args" => o.sylph_args = value()?.split_whitespace().map(String::from).collect(),
            other => bail!("unknown flag {other}"),
        }
    }
    o.sylph = o
        .sylph
        .canonicalize()
        .with_context(|| format!("--sylph {}", o.sylph.display()))?;
    o.dir = o
        .dir
        .canonicalize()
        .with_context(|| format!("--dir {}", o.dir.display()))?;
    Ok(o)
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(3999)
}

/// A server under test, stopped (with its process group) on drop.
pub(crate) struct Server {
    child: Child,
}

impl Server {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL the server's process group and reap it.
    pub(crate) fn child_kill(&mut self) -> std::io::Result<()> {
        self.signal_group(libc::SIGKILL);
        self.child.wait().map(|_| ())
    }

    fn signal_group(&self, signal: i32) {
        let pid = self.child.id() as i32;
        // Never signal pid 0 or -1 (our own group, or every process we may signal). Signal
        // through libc: procps-ng 4.0.2's `kill -SIG -PGID` misreads a negative pid.
        if pid > 1 {
            // SAFETY: a plain kill(2) on the server's own process group.
            unsafe {
                libc::kill(-pid, signal);
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.signal_group(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.signal_group(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Server {
    /// Own a server started elsewhere (in its own process group).
    pub(crate) fn from_child(child: Child) -> Server {
        Server { child }
    }
}

/// `serverless offline start --useInProcess` of the service in `dir` (its own node_modules),
/// quiet, on the given ports.
pub(crate) fn offline_command(dir: &std::path::Path, http_port: u16, lambda_port: u16) -> Command {
    let mut cmd = Command::new(dir.join("node_modules/.bin/serverless"));
    cmd.args([
        "offline",
        "start",
        "--useInProcess",
        "--noTimeout",
        "--host",
        "127.0.0.1",
        "--httpPort",
        &http_port.to_string(),
        "--lambdaPort",
        &lambda_port.to_string(),
    ])
    .env("SLS_TELEMETRY_DISABLED", "1")
    .env("SLS_NOTIFICATIONS_MODE", "off")
    .env("SLS_DEPRECATION_DISABLE", "*")
    .current_dir(dir);
    cmd
}

pub(crate) fn spawn(mut cmd: Command) -> anyhow::Result<Server> {
    use std::os::unix::process::CommandExt as _;
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
    Ok(Server {
        child: cmd.spawn().context("start server")?,
    })
}

/// One request on a new connection; the status, headers and whole body.
pub(crate) async fn send_once(
    addr: SocketAddr,
    req: hyper::Request<Full<Bytes>>,
) -> anyhow::Result<(hyper::StatusCode, hyper::HeaderMap, Bytes)> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let res = sender.send_request(req).await?;
    let (parts, body) = res.into_parts();
    Ok((parts.status, parts.headers, body.collect().await?.to_bytes()))
}

async fn get_once(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let req = hyper::Request::get(path)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))?;
    Ok(send_once(addr, req).await?.0.as_u16())
}

/// Poll until the first 200, from `started`; that is the time to first response.
async fn first_response(addr: SocketAddr, path: &str, started: Instant) -> anyhow::Result<Duration> {
    let deadline = started + Duration::from_secs(60);
    loop {
        if let Ok(200) = get_once(addr, path).await {
            return Ok(started.elapsed());
        }
        if Instant::now() > deadline {
            bail!("no successful response from {addr}{path} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub(crate) struct LoadResult {
    requests: usize,
    pub(crate) errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl LoadResult {
    pub(crate) fn requests(&self) -> usize {
        self.requests
    }

    pub(crate) fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let idx = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[idx] as f64 / 1000.0
    }
}

/// Builds the n-th request of a load run.
pub(crate) type MakeRequest = Arc<dyn Fn(u64) -> hyper::Request<Full<Bytes>> + Send + Sync>;

fn get_request(addr: SocketAddr, path: &'static str) -> MakeRequest {
    Arc::new(move |_| {
        hyper::Request::get(path)
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))
            .expect("valid request")
    })
}

/// `concurrency` keep-alive connections, each sending requests back to back for `duration`.
pub(crate) async fn load(
    addr: SocketAddr,
    make: MakeRequest,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let start = Instant::now();
    let end = start + duration;
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (make, counter) = (make.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(16_384);
            let mut errors = 0usize;
            'connect: while Instant::now() < end {
                let Ok(stream) = TcpStream::connect(addr).await else {
                    errors += 1;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await else {
                    errors += 1;
                    continue;
                };
                tokio::spawn(conn);
                while Instant::now() < end {
                    let req = make(counter.fetch_add(1, Ordering::Relaxed));
                    let t = Instant::now();
                    let ok = match sender.send_request(req).await {
                        Ok(res) => {
                            let ok = res.status() == 200;
                            ok && res.into_body().collect().await.is_ok()
                        }
                        Err(_) => false,
                    };
                    if ok {
                        latencies.push(t.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                        continue 'connect;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    all.sort_unstable();
    Ok(LoadResult {
        requests: all.len(),
        errors,
        elapsed,
        latencies_us: all,
    })
}

/// One measured case of a comparison: which server, and what (clients, operation, route).
pub(crate) struct Row {
    pub server: &'static str,
    pub case: String,
    pub result: LoadResult,
}

/// Print `rows` as a table, each with its ratio to the `baseline` server's row of the same case.
pub(crate) fn print_comparison(case_column: &str, baseline: &str, rows: &[Row]) {
    println!("| server | {case_column} | requests/s | p50 ms | p99 ms | errors | vs {baseline} |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for row in rows {
        let base = rows
            .iter()
            .find(|r| r.server.starts_with(baseline) && r.case == row.case);
        let ratio = base
            .map(|b| format!("{:.1}x", row.result.rps() / b.result.rps()))
            .unwrap_or_else(|| "-".into());
        println!(
            "| {} | {} | {:.0} | {:.3} | {:.3} | {} | {} |",
            row.server,
            row.case,
            row.result.rps(),
            row.result.percentile_ms(0.5),
            row.result.percentile_ms(0.99),
            row.result.errors,
            ratio
        );
    }
}

async fn measure(name: &'static str, addr: SocketAddr, o: &Options, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    const PATH: &str = "/dev/hello";
    // Warm up: start instances for the highest concurrency and let JITs settle.
    let max_c = o.concurrency.iter().copied().max().unwrap_or(1);
    load(addr, get_request(addr, PATH), max_c, Duration::from_secs(1)).await?;
    for &c in &o.concurrency {
        let result = load(addr, get_request(addr, PATH), c, Duration::from_secs(o.seconds)).await?;
        eprintln!(
            "  {name:<20} c={c:<3} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms  errors {}",
            result.rps(),
            result.percentile_ms(0.5),
            result.percentile_ms(0.99),
            result.errors
        );
        rows.push(Row {
            server: name,
            case: c.to_string(),
            result,
        });
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("http-hello") => http_hello(parse_args(args)?).await,
        Some("tables") => tables::run(tables::Options::parse(args)?).await,
        Some("describe-table") => describe::run(describe::Options::parse(args)?).await,
        Some("todo") => todo::run(todo::Options::parse(args)?).await,
        Some("coldstart") => coldstart::run(coldstart::Options::parse(args)?).await,
        Some("isolation") => isolation::run(isolation::Options::parse(args)?).await,
        Some("server") => server::run(server::Options::parse(args)?).await,
        Some("events") => events::run(events::Options::parse(args)?).await,
        Some("wasm") => wasm::run(wasm::Options::parse(args)?).await,
        Some("storage") => {
            let seconds = args.skip_while(|a| a != "--seconds").nth(1).map(|s| s.parse()).transpose()?.unwrap_or(3);
            tokio::task::spawn_blocking(move || storage::run(seconds)).await?
        }
        _ => bail!(
            "usage:\n  sylph-bench http-hello --sylph PATH --dir SERVICE_DIR [--seconds N] [--concurrency 1,8,64] [--skip-offline]\n  sylph-bench tables --sylph PATH --dynalite PATH [--dynoxide PATH] [--seconds N] [--concurrency N]\n  sylph-bench describe-table --sylph PATH [--dynoxide PATH] [--sizes 1000,10000,100000,1000000] [--seconds N]\n  sylph-bench storage [--seconds N]\n  sylph-bench todo --sylph PATH --repo PATH [--seconds N] [--warmup N] [--concurrency 1,8,64] [--skip-taskset]\n  sylph-bench coldstart --sylph PATH --rust-bootstrap PATH [--samples N] [--long-samples N]\n  sylph-bench isolation --sylph PATH --rust-bootstrap PATH [--samples N] [--warm-calls N]\n  sylph-bench server --sylph PATH --repo PATH [--seconds N] [--clients N]\n  sylph-bench events --sylph PATH --dir bench/events [--messages N] [--senders N] [--writes N] [--skip-peer]\n  sylph-bench wasm --sylph PATH --repo PATH --wasmtime PATH --axum PATH --component PATH [--seconds N] [--concurrency 1,8,64] [--functions N] [--skip-offline]"
        ),
    }
}

async fn http_hello(o: Options) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut first = Vec::new();

    eprintln!("sylph dev ...");
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = Command::new(&o.sylph);
    cmd.args(["dev", "--quiet", "--port", &port.to_string()])
        .args(&o.sylph_args)
        .current_dir(&o.dir);
    let started = Instant::now();
    let server = spawn(cmd)?;
    first.push(("sylph dev", first_response(addr, "/dev/hello", started).await?));
    measure("sylph dev", addr, &o, &mut rows).await?;
    drop(server);

    if !o.skip_offline {
        eprintln!("serverless-offline --useInProcess ...");
        let port = free_port();
        let lambda_port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let cmd = offline_command(&o.dir, port, lambda_port);
        let started = Instant::now();
        let server = spawn(cmd)?;
        first.push(("serverless-offline", first_response(addr, "/dev/hello", started).await?));
        measure("serverless-offline", addr, &o, &mut rows).await?;
        drop(server);
    }

    println!();
    println!(
        "Trivial Node.js handler behind an `http` event (GET /dev/hello), {} s per level",
        o.seconds
    );
    println!();
    print_comparison("clients", "serverless-offline", &rows);
    println!();
    println!("| server | time from start to first response |");
    println!("|---|---:|");
    for (name, d) in &first {
        println!("| {name} | {:.0} ms |", d.as_secs_f64() * 1000.0);
    }
    Ok(())
}
