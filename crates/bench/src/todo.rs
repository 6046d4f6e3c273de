//! `sylph-bench todo`: the Todo service's `GET /dev/todos/{id}` and `POST /dev/todos` under
//! `sylph dev` (the Node.js and the Rust example) and under serverless-offline
//! (`--useInProcess`) with dynalite serving the Node.js example, in the same run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::Full;

use crate::{free_port, load, print_comparison, send_once, spawn, tables, MakeRequest, Row, Server};

pub struct Options {
    sylph: PathBuf,
    repo: PathBuf,
    seconds: u64,
    concurrency: usize,
}

impl Options {
    pub fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
        let mut o = Options {
            sylph: PathBuf::new(),
            repo: PathBuf::from("."),
            seconds: 5,
            concurrency: 8,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--sylph" => o.sylph = PathBuf::from(value()?).canonicalize()?,
                "--repo" => o.repo = PathBuf::from(value()?).canonicalize()?,
                "--seconds" => o.seconds = value()?.parse()?,
                "--concurrency" => o.concurrency = value()?.parse()?,
                other => bail!("unknown flag {other}"),
            }
        }
        Ok(o)
    }
}

async fn send(addr: SocketAddr, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))?;
    let (status, _, text) = send_once(addr, req).await?;
    Ok((status.as_u16(), String::from_utf8_lossy(&text).into_owned()))
}

async fn wait_for(addr: SocketAddr, path: &str, started: Instant) -> anyhow::Result<Duration> {
    let deadline = started + Duration::from_secs(300);
    while Instant::now() < deadline {
        if let Ok((200, _)) = send(addr, "GET", path, "").await {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("{addr}{path} never answered 200")
}

/// Create `n` todos and return their ids.
async fn seed(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let (status, body) = send(addr, "POST", "/dev/todos", &format!(r#"{{"text":"seed {i}"}}"#)).await?;
        if status != 200 {
            bail!("seeding failed: {status} {body}");
        }
        let id = body
            .split("\"id\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .context("no id in the answer")?;
        ids.push(id.to_owned());
    }
    Ok(ids)
}

fn get_todo(addr: SocketAddr, ids: Arc<Vec<String>>) -> MakeRequest {
    Arc::new(move |n| {
        let id = &ids[(n as usize) % ids.len()];
        hyper::Request::get(format!("/dev/todos/{id}"))
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))
            .expect("valid request")
    })
}

fn post_todo(addr: SocketAddr) -> MakeRequest {
    Arc::new(move |n| {
        hyper::Request::post("/dev/todos")
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(format!(r#"{{"text":"todo number {n}"}}"#))))
            .expect("valid request")
    })
}

async fn measure(name: &'static str, addr: SocketAddr, o: &Options, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let ids = Arc::new(seed(addr, 50).await?);
    let d = Duration::from_secs(o.seconds);
    // Warm up: start the instances this concurrency needs.
    load(addr, get_todo(addr, ids.clone()), o.concurrency, Duration::from_secs(1)).await?;
    let get = load(addr, get_todo(addr, ids.clone()), o.concurrency, d).await?;
    eprintln!("  {name:<32} GET  {:>8.0} req/s", get.rps());
    rows.push(Row {
        server: name,
        case: "GET /dev/todos/{id}".into(),
        result: get,
    });
    let post = load(addr, post_todo(addr), o.concurrency, d).await?;
    eprintln!("  {name:<32} POST {:>8.0} req/s", post.rps());
    rows.push(Row {
        server: name,
        case: "POST /dev/todos".into(),
        result: post,
    });
    Ok(())
}

fn sylph_dev(o: &Options, dir: &Path, port: u16, data: &Path) -> anyhow::Result<Server> {
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
    spawn(cmd)
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let data = std::env::temp_dir().join(format!("sylph-bench-todo-{}", std::process::id()));
    for (name, example) in [
        ("sylph dev (Node.js example)", "examples/todo"),
        ("sylph dev (Rust example)", "examples/todo-rust"),
    ] {
        eprintln!("{name} ...");
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let server = sylph_dev(&o, &o.repo.join(example), port, &data)?;
        wait_for(addr, "/dev/todos", Instant::now()).await?;
        measure(name, addr, &o, &mut rows).await?;
        drop(server);
        let _ = std::fs::remove_dir_all(&data);
    }

    eprintln!("serverless-offline --useInProcess + dynalite ...");
    let bench = o.repo.join("bench/hello");
    let dynalite_port = free_port();
    let mut cmd = Command::new("node");
    cmd.arg(bench.join("node_modules/dynalite/cli.js"))
        .args(["--port", &dynalite_port.to_string()]);
    let dynalite = spawn(cmd)?;
    // The same service, with the serverless-offline plugin and the benchmark's node_modules.
    let service = std::env::temp_dir().join(format!("sylph-bench-todo-offline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&service);
    copy_dir(&o.repo.join("examples/todo"), &service)?;
    let yml = std::fs::read_to_string(service.join("serverless.yml"))?;
    std::fs::write(
        service.join("serverless.yml"),
        format!("plugins:\n  - serverless-offline\n{yml}"),
    )?;
    std::os::unix::fs::symlink(bench.join("node_modules"), service.join("node_modules"))?;
    let endpoint = format!("http://127.0.0.1:{dynalite_port}");
    create_dynalite_table(([127, 0, 0, 1], dynalite_port).into()).await?;
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = Command::new(bench.join("node_modules/.bin/serverless"));
    // Serverless Framework v3 needs the stage spelled out for `${opt:stage, self:provider.stage}`
    // when the file sets none (Sylph applies the default).
    cmd.args([
        "offline",
        "start",
        "--stage",
        "dev",
        "--useInProcess",
        "--noTimeout",
        "--host",
        "127.0.0.1",
        "--httpPort",
        &port.to_string(),
    ])
    .args(["--lambdaPort", &free_port().to_string()])
    .env("SLS_TELEMETRY_DISABLED", "1")
    .env("SLS_NOTIFICATIONS_MODE", "off")
    .env("BENCH_DYNAMODB_ENDPOINT", &endpoint)
    .env(
        "NODE_OPTIONS",
        format!(
            "--require {}",
            o.repo.join("bench/offline-dynamodb-endpoint.js").display()
        ),
    )
    .current_dir(&service);
    let offline = spawn(cmd)?;
    wait_for(addr, "/dev/todos", Instant::now()).await?;
    measure("serverless-offline + dynalite", addr, &o, &mut rows).await?;
    drop(offline);
    drop(dynalite);
    let _ = std::fs::remove_dir_all(&service);

    println!();
    println!("Todo service, {} clients, {} s per route", o.concurrency, o.seconds);
    println!();
    print_comparison("route", "serverless-offline", &rows);
    Ok(())
}

async fn create_dynalite_table(addr: SocketAddr) -> anyhow::Result<()> {
    let body = r#"{"TableName":"todo-dev","BillingMode":"PAY_PER_REQUEST","KeySchema":[{"AttributeName":"id","KeyType":"HASH"}],"AttributeDefinitions":[{"AttributeName":"id","AttributeType":"S"}]}"#;
    tables::wait_ready(addr).await?;
    let (status, text) = tables::call(addr, "CreateTable", body.into()).await?;
    if status != 200 {
        bail!("dynalite CreateTable: {status} {text}");
    }
    // dynalite makes the table ACTIVE after a short delay.
    tokio::time::sleep(Duration::from_millis(800)).await;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "node_modules" || name == ".sylph" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type()?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}
