//! `sylph-bench server`: `sylph server` with `sylph deploy`, on the Todo example, in one run:
//! the deploy time (first deploy, then after a one-file change), the failed requests of a load
//! that runs while three new versions are deployed, and requests/s through the server beside
//! `sylph dev` serving the same service on the same machine.
//!
//! Usage: sylph-bench server --sylph PATH --repo PATH [--seconds N] [--clients N]

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::Full;

use crate::todo::{get_todo, post_todo, seed};
use crate::{load, print_comparison, Row};

/// How long the load runs while three versions are deployed (each deploy under load waits
/// for the new version to warm up, about 2.5 s here).
const UNDER_LOAD: Duration = Duration::from_secs(15);

pub struct Options {
    sylph: PathBuf,
    repo: PathBuf,
    seconds: u64,
    clients: usize,
}

impl Options {
    pub fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
        let mut o = Options {
            sylph: PathBuf::new(),
            repo: PathBuf::new(),
            seconds: 10,
            clients: 8,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--sylph" => o.sylph = PathBuf::from(value()?),
                "--repo" => o.repo = PathBuf::from(value()?),
                "--seconds" => o.seconds = value()?.parse()?,
                "--clients" => o.clients = value()?.parse()?,
                other => bail!("unknown flag {other}"),
            }
        }
        Ok(o)
    }
}

/// A `sylph server` (its process group stopped on drop) and its admin key.
struct Platform {
    _server: crate::Server,
    base: String,
    addr: SocketAddr,
    key: String,
}

fn start_server(o: &Options, data: &Path, extra: &[&str]) -> anyhow::Result<Platform> {
    use std::os::unix::process::CommandExt as _;
    let mut child = Command::new(&o.sylph)
        .args(["server", "--quiet", "--port", "0", "--data-dir"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("start sylph server")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut key = None;
    let mut base = None;
    let mut lines = std::io::BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(k) = line.split_whitespace().skip_while(|w| *w != "--key").nth(1) {
            key = Some(k.to_owned());
        }
        if let Some(url) = line.strip_prefix("listening on ") {
            base = Some(url.to_owned());
            break;
        }
    }
    // Keep reading what it prints (each deploy's timings), so its output never blocks.
    std::thread::spawn(move || lines.for_each(drop));
    let base = base.context("the server did not start")?;
    let addr: SocketAddr = base.trim_start_matches("http://").parse()?;
    Ok(Platform {
        _server: crate::Server::from_child(child),
        base,
        addr,
        key: key.context("no admin key printed")?,
    })
}

/// `sylph deploy --json` of the service in `dir`; its wall time and the API id.
fn deploy(o: &Options, p: &Platform, dir: &Path) -> anyhow::Result<(Duration, String)> {
    let started = Instant::now();
    let out = Command::new(&o.sylph)
        .args(["deploy", "--json", "--server", &p.base, "--key", &p.key])
        .current_dir(dir)
        .output()?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!("deploy failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let info: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok((took, info["api_id"].as_str().unwrap_or_default().to_owned()))
}

/// Change one file of the Todo example (a comment in list.js), as an edit would.
fn touch_list(dir: &Path, n: usize) -> anyhow::Result<()> {
    let path = dir.join("todos/list.js");
    let mut text = std::fs::read_to_string(&path)?;
    text.push_str(&format!("// edit {n}\n"));
    std::fs::write(path, text)?;
    Ok(())
}

/// Warm the service up at `o.clients`, then load it for [`UNDER_LOAD`] while deploying three
/// new versions; the load's result and each deploy's wall time.
async fn deploys_under_load(
    o: &Options,
    p: &Platform,
    service: &Path,
    prefix: &str,
) -> anyhow::Result<(crate::LoadResult, Vec<Duration>)> {
    let ids = Arc::new(seed(p.addr, prefix, 20).await?);
    let make = get_todo(p.addr, prefix, ids);
    load(p.addr, make.clone(), o.clients, Duration::from_secs(3)).await?;
    let (o_sylph, base, key, dir) = (o.sylph.clone(), p.base.clone(), p.key.clone(), service.to_owned());
    let deploys = std::thread::spawn(move || -> anyhow::Result<Vec<Duration>> {
        let mut took = Vec::new();
        for n in 1..=3 {
            std::thread::sleep(Duration::from_millis(1500));
            touch_list(&dir, 100 + n)?;
            let started = Instant::now();
            let out = Command::new(&o_sylph)
                .args(["deploy", "--json", "--server", &base, "--key", &key])
                .current_dir(&dir)
                .output()?;
            if !out.status.success() {
                bail!("deploy under load failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            took.push(started.elapsed());
        }
        Ok(took)
    });
    let result = load(p.addr, make, o.clients, UNDER_LOAD).await?;
    let took = deploys
        .join()
        .map_err(|_| anyhow::anyhow!("deploy thread panicked"))??;
    Ok((result, took))
}

async fn throughput(
    name: &'static str,
    addr: SocketAddr,
    prefix: &str,
    o: &Options,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let ids = Arc::new(seed(addr, prefix, 50).await?);
    let warm = Duration::from_secs(3);
    load(addr, get_todo(addr, prefix, ids.clone()), o.clients, warm).await?;
    load(addr, post_todo(addr, prefix), o.clients, warm).await?;
    let seconds = Duration::from_secs(o.seconds);
    let case = format!("GET, {} clients", o.clients);
    let result = load(addr, get_todo(addr, prefix, ids), o.clients, seconds).await?;
    eprintln!("  {name:<12} {case:<16} {:>8.0} req/s", result.rps());
    rows.push(Row {
        server: name,
        case,
        result,
    });
    let case = format!("POST, {} clients", o.clients);
    let result = load(addr, post_todo(addr, prefix), o.clients, seconds).await?;
    eprintln!("  {name:<12} {case:<16} {:>8.0} req/s", result.rps());
    rows.push(Row {
        server: name,
        case,
        result,
    });
    Ok(())
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let work = std::env::temp_dir().join(format!("sylph-bench-server-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let service = work.join("todo");
    crate::todo::copy_dir(&o.repo.join("examples/todo"), &service)?;
    let platform = start_server(&o, &work.join("data"), &[])?;

    // Deploy times: the first deploy uploads everything; after a one-file change, one file.
    let (first, api) = deploy(&o, &platform, &service)?;
    touch_list(&service, 0)?;
    let (changed, _) = deploy(&o, &platform, &service)?;
    let (unchanged, _) = deploy(&o, &platform, &service)?;
    let prefix = format!("/apis/{api}");

    // A load while three new versions are deployed, with the new version warmed up before
    // each switch (the default) and without: every failed request is counted.
    let warmed = deploys_under_load(&o, &platform, &service, &prefix).await?;
    let cold_platform = start_server(&o, &work.join("data-no-warm-up"), &["--no-warm-up"])?;
    let cold_service = work.join("todo-cold");
    crate::todo::copy_dir(&o.repo.join("examples/todo"), &cold_service)?;
    let (_, cold_api) = deploy(&o, &cold_platform, &cold_service)?;
    let cold = deploys_under_load(&o, &cold_platform, &cold_service, &format!("/apis/{cold_api}")).await?;
    drop(cold_platform);

    // Requests/s through the server, then `sylph dev` on the same service.
    let mut rows = Vec::new();
    throughput("sylph server", platform.addr, &prefix, &o, &mut rows).await?;
    drop(platform);
    let port = crate::free_port();
    let mut cmd = Command::new(&o.sylph);
    cmd.args([
        "dev",
        "--quiet",
        "--no-reload",
        "--port",
        &port.to_string(),
        "--data-dir",
    ])
    .arg(work.join("dev-data"))
    .current_dir(&service);
    let _dev = crate::spawn(cmd)?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while crate::send_once(
        addr,
        hyper::Request::get("/dev/todos")
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))?,
    )
    .await
    .map(|r| r.0 != 200)
    .unwrap_or(true)
    {
        if Instant::now() > deadline {
            bail!("sylph dev did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    throughput("sylph dev", addr, "", &o, &mut rows).await?;

    println!();
    println!("## Deploying the Todo example to sylph server");
    println!();
    println!("| deploy | wall time |");
    println!("|---|---:|");
    println!("| first (11 files uploaded) | {:.0} ms |", first.as_secs_f64() * 1000.0);
    println!(
        "| after a one-file change (1 file uploaded) | {:.0} ms |",
        changed.as_secs_f64() * 1000.0
    );
    println!(
        "| nothing changed (0 files uploaded) | {:.0} ms |",
        unchanged.as_secs_f64() * 1000.0
    );
    for (label, (_, took)) in [("warmed up", &warmed), ("no warm-up", &cold)] {
        for (i, d) in took.iter().enumerate() {
            println!(
                "| under load, {label}, #{} | {:.0} ms |",
                i + 1,
                d.as_secs_f64() * 1000.0
            );
        }
    }
    println!();
    println!(
        "Deploy under load: GET at {} clients for {} s (after the instances are warm) while 3 versions are deployed:",
        o.clients,
        UNDER_LOAD.as_secs()
    );
    println!();
    println!("| switch | requests | failed | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, (r, _)) in [
        ("new version warmed up first (default)", &warmed),
        ("no warm-up (--no-warm-up)", &cold),
    ] {
        println!(
            "| {label} | {} | **{}** | {:.1} | {:.1} | {:.1} |",
            r.requests(),
            r.errors,
            r.percentile_ms(0.5),
            r.percentile_ms(0.99),
            r.percentile_ms(1.0)
        );
    }
    println!();
    print_comparison("case", "sylph dev", &rows);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}
