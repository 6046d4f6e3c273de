//! `sylph-bench wasm`: WebAssembly functions (`runtime: wasi-http`) under `sylph dev`, side by
//! side in one run with `wasmtime serve` on the same component file and a bare axum hello
//! server; then the Todo service's `GET /dev/todos/{id}` as a component against
//! serverless-offline (`--useInProcess`) + dynalite serving the Node.js Todo example.
//!
//! Prints: the cold start (the first request to each of many functions never instantiated,
//! through the Invoke API, and the instantiation alone as Sylph reports it, its Init
//! Duration); warm requests/s with p50/p99 at each client count, with each server's ratio to
//! the bare axum server (hello) or to serverless-offline (Todo GET).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::Full;

use crate::{free_port, load, print_comparison, send_once, spawn, LoadResult, Row, Server};

pub struct Options {
    sylph: PathBuf,
    repo: PathBuf,
    wasmtime: PathBuf,
    axum: PathBuf,
    component: PathBuf,
    seconds: u64,
    concurrency: Vec<usize>,
    /// Functions whose first request is measured.
    functions: usize,
    skip_offline: bool,
}

impl Options {
    pub fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
        let mut o = Options {
            sylph: PathBuf::new(),
            repo: PathBuf::from("."),
            wasmtime: PathBuf::new(),
            axum: PathBuf::new(),
            component: PathBuf::new(),
            seconds: 5,
            concurrency: vec![1, 8, 64],
            functions: 40,
            skip_offline: false,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--sylph" => o.sylph = PathBuf::from(value()?).canonicalize()?,
                "--repo" => o.repo = PathBuf::from(value()?).canonicalize()?,
                "--wasmtime" => o.wasmtime = PathBuf::from(value()?).canonicalize()?,
                "--axum" => o.axum = PathBuf::from(value()?).canonicalize()?,
                "--component" => o.component = PathBuf::from(value()?).canonicalize()?,
                "--seconds" => o.seconds = value()?.parse()?,
                "--functions" => o.functions = value()?.parse()?,
                "--concurrency" => {
                    o.concurrency = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?;
                }
                "--skip-offline" => o.skip_offline = true,
                other => bail!("unknown flag {other}"),
            }
        }
        Ok(o)
    }
}

async fn wait_ok(addr: SocketAddr, path: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        let req = hyper::Request::get(path)
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))?;
        if let Ok((status, ..)) = send_once(addr, req).await {
            if status == 200 {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("{addr}{path} never answered 200")
}

fn get(addr: SocketAddr, path: &'static str) -> crate::MakeRequest {
    Arc::new(move |_| {
        hyper::Request::get(path)
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))
            .expect("valid request")
    })
}

async fn measure_hello(name: &'static str, addr: SocketAddr, o: &Options, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let max_c = o.concurrency.iter().copied().max().unwrap_or(1);
    load(addr, get(addr, "/hello"), max_c, Duration::from_secs(1)).await?;
    for &c in &o.concurrency {
        let result = load(addr, get(addr, "/hello"), c, Duration::from_secs(o.seconds)).await?;
        report(name, c, &result);
        rows.push(Row {
            server: name,
            case: format!("hello, {c} clients"),
            result,
        });
    }
    Ok(())
}

fn report(name: &str, c: usize, result: &LoadResult) {
    eprintln!(
        "  {name:<34} c={c:<3} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms  errors {}",
        result.rps(),
        result.percentile_ms(0.5),
        result.percentile_ms(0.99),
        result.errors
    );
}

/// A service of `n` cold functions and a `hello` route, all on the component.
fn hello_service(o: &Options) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("sylph-bench-wasm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let wasm = o.component.display();
    let mut yml = format!(
        "service: wasmbench\nprovider:\n  name: aws\n  runtime: wasi-http\nfunctions:\n  hello:\n    handler: {wasm}\n    events:\n      - httpApi: 'GET /hello'\n"
    );
    for i in 0..o.functions {
        yml.push_str(&format!("  cold{i}:\n    handler: {wasm}\n"));
    }
    std::fs::write(dir.join("serverless.yml"), yml)?;
    Ok(dir)
}

fn sylph_dev(o: &Options, dir: &Path, port: u16, data: &Path, env: &[(&str, &Path)]) -> anyhow::Result<Server> {
    let mut cmd = Command::new(&o.sylph);
    cmd.args([
        "dev",
        "--quiet",
        "--no-reload",
        "--reset",
        "--port",
        &port.to_string(),
        "--data-dir",
    ])
    .arg(data)
    .current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    spawn(cmd)
}

/// The first request to each cold function (an HTTP API event through the Invoke API), and
/// the instantiation time Sylph measured for it (its Init Duration), in ms.
async fn cold_starts(addr: SocketAddr, o: &Options) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let event = r#"{"version":"2.0","rawPath":"/hello","rawQueryString":"","headers":{"host":"bench"},"requestContext":{"http":{"method":"GET"}}}"#;
    let mut first = Vec::with_capacity(o.functions);
    for i in 0..o.functions {
        let req = hyper::Request::post(format!("/2015-03-31/functions/cold{i}/invocations"))
            .header("host", addr.to_string())
            .body(Full::new(Bytes::from_static(event.as_bytes())))?;
        let started = Instant::now();
        let (status, _, body) = send_once(addr, req).await?;
        let took = started.elapsed();
        if status != 200 || !body.starts_with(b"{\"statusCode\":200") {
            bail!("cold{i}: {status} {}", String::from_utf8_lossy(&body));
        }
        first.push(took.as_secs_f64() * 1000.0);
    }
    let req = hyper::Request::get("/_sylph/metrics")
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))?;
    let (_, _, metrics) = send_once(addr, req).await?;
    let metrics = String::from_utf8_lossy(&metrics);
    let mut init = Vec::new();
    for i in 0..o.functions {
        let sum = format!("sylph_init_duration_seconds_sum{{function=\"cold{i}\"}} ");
        if let Some(v) = metrics.lines().find_map(|l| l.strip_prefix(&sum)) {
            init.push(v.trim().parse::<f64>()? * 1000.0);
        }
    }
    Ok((first, init))
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len().max(1) - 1) as f64 * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let data = std::env::temp_dir().join(format!("sylph-bench-wasm-data-{}", std::process::id()));

    eprintln!("bare axum hello server ...");
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = Command::new(&o.axum);
    cmd.arg(addr.to_string());
    let axum = spawn(cmd)?;
    wait_ok(addr, "/hello").await?;
    measure_hello("bare axum (no WebAssembly)", addr, &o, &mut rows).await?;
    drop(axum);

    for (name, extra) in [
        ("wasmtime serve (new instance each)", &[][..]),
        ("wasmtime serve, pooling allocator", &["-O", "pooling-allocator=y"][..]),
        (
            "wasmtime serve, pooling + reuse",
            &["-O", "pooling-allocator=y", "--max-instance-reuse-count", "1000000"][..],
        ),
    ] {
        eprintln!("{name} ...");
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = Command::new(&o.wasmtime);
        cmd.args(["serve", "-S", "cli"])
            .args(extra)
            .arg("--addr")
            .arg(addr.to_string())
            .arg(&o.component);
        let served = spawn(cmd)?;
        wait_ok(addr, "/hello").await?;
        measure_hello(name, addr, &o, &mut rows).await?;
        drop(served);
    }

    eprintln!("sylph dev (wasi-http) ...");
    let dir = hello_service(&o)?;
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let server = sylph_dev(&o, &dir, port, &data, &[])?;
    wait_ok(addr, "/hello").await?;
    // The other functions' components are ready too (compiled once, or read from the cache).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (first, init) = cold_starts(addr, &o).await?;
    measure_hello("sylph dev (wasi-http)", addr, &o, &mut rows).await?;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&data);

    println!(
        "## Cold start: the first request to each of {} functions never instantiated",
        o.functions
    );
    println!();
    println!("| measure | p50 ms | p90 ms | max ms |");
    println!("|---|---:|---:|---:|");
    println!(
        "| first response (Invoke API round trip on a new connection) | {:.3} | {:.3} | {:.3} |",
        percentile(&first, 0.5),
        percentile(&first, 0.9),
        percentile(&first, 1.0)
    );
    println!(
        "| instantiation alone (Init Duration) | {:.3} | {:.3} | {:.3} |",
        percentile(&init, 0.5),
        percentile(&init, 0.9),
        percentile(&init, 1.0)
    );
    println!();
    println!("## Hello component, warm (same .wasm file for wasmtime serve and Sylph)");
    println!();
    print_comparison("case", "bare axum", &rows);
    println!();

    let mut todo_rows = Vec::new();
    eprintln!("sylph dev (examples/todo-wasm) ...");
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let target = o.repo.join("target/todo-wasm");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|t| PathBuf::from(t).join("todo-wasm"))
        .unwrap_or(target);
    let server = sylph_dev(
        &o,
        &o.repo.join("examples/todo-wasm"),
        port,
        &data,
        &[("CARGO_TARGET_DIR", &target)],
    )?;
    wait_ok(addr, "/dev/todos").await?;
    let ids = Arc::new(crate::todo::seed(addr, "", 100).await?);
    measure_todo("sylph dev (todo-wasm)", addr, ids, &o, &mut todo_rows).await?;
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    if !o.skip_offline {
        eprintln!("serverless-offline --useInProcess + dynalite (examples/todo, Node.js) ...");
        let offline = crate::todo::start_offline(&o.repo, None).await?;
        let ids = Arc::new(crate::todo::seed(offline.addr, "", 100).await?);
        measure_todo("serverless-offline + dynalite", offline.addr, ids, &o, &mut todo_rows).await?;
        drop(offline);
    }
    println!("## Todo GET /dev/todos/{{id}}");
    println!();
    print_comparison("case", "serverless-offline", &todo_rows);
    Ok(())
}

async fn measure_todo(
    name: &'static str,
    addr: SocketAddr,
    ids: Arc<Vec<String>>,
    o: &Options,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let max_c = o.concurrency.iter().copied().max().unwrap_or(1);
    load(
        addr,
        crate::todo::get_todo(addr, "", ids.clone()),
        max_c,
        Duration::from_secs(2),
    )
    .await?;
    for &c in &o.concurrency {
        let result = load(
            addr,
            crate::todo::get_todo(addr, "", ids.clone()),
            c,
            Duration::from_secs(o.seconds),
        )
        .await?;
        report(name, c, &result);
        rows.push(Row {
            server: name,
            case: format!("GET, {c} clients"),
            result,
        });
    }
    Ok(())
}
