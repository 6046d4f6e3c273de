//! `sylph-bench tables`: PutItem, GetItem and Query requests/s with p50/p99 over HTTP against
//! `sylph tables` (durable: an fsynced group commit before each answer), Dynoxide (Rust on
//! SQLite, file-backed: WAL with synchronous=FULL, one fsync per write) and dynalite (LevelDB in
//! memory: nothing survives) in the same run, then the kill -9 durability count.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::{free_port, load, print_comparison, send_once, spawn, MakeRequest, Row, Server};

pub struct Options {
    sylph: PathBuf,
    dynalite: PathBuf,
    /// The `dynoxide` binary (crate `dynoxide-rs`); skipped when not given.
    dynoxide: Option<PathBuf>,
    seconds: u64,
    concurrency: usize,
}

impl Options {
    pub fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
        let mut o = Options {
            sylph: PathBuf::new(),
            dynalite: PathBuf::new(),
            dynoxide: None,
            seconds: 5,
            concurrency: 16,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--sylph" => o.sylph = PathBuf::from(value()?).canonicalize()?,
                "--dynalite" => o.dynalite = PathBuf::from(value()?).canonicalize()?,
                "--dynoxide" => o.dynoxide = Some(PathBuf::from(value()?).canonicalize()?),
                "--seconds" => o.seconds = value()?.parse()?,
                "--concurrency" => o.concurrency = value()?.parse()?,
                other => bail!("unknown flag {other}"),
            }
        }
        Ok(o)
    }
}

pub(crate) fn ddb_request(addr: SocketAddr, op: &str, body: String) -> hyper::Request<Full<Bytes>> {
    hyper::Request::post("/")
        .header("host", addr.to_string())
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
        // Both servers accept any signature; a plausible header keeps dynalite's checks happy.
        .header("authorization", "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
        .header("x-amz-date", "20260101T000000Z")
        .body(Full::new(Bytes::from(body)))
        .expect("valid request")
}

pub(crate) async fn call(addr: SocketAddr, op: &str, body: String) -> anyhow::Result<(u16, String)> {
    let (status, _, body) = send_once(addr, ddb_request(addr, op, body)).await?;
    Ok((status.as_u16(), String::from_utf8_lossy(&body).into_owned()))
}

pub(crate) async fn wait_ready(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok((200, _)) = call(addr, "ListTables", "{}".into()).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("{addr} did not answer ListTables")
}

async fn create_table(addr: SocketAddr) -> anyhow::Result<()> {
    let body = r#"{"TableName":"bench","BillingMode":"PAY_PER_REQUEST",
        "KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}],
        "AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"N"}]}"#;
    let (status, text) = call(addr, "CreateTable", body.into()).await?;
    if status != 200 {
        bail!("CreateTable: {status} {text}");
    }
    // dynalite creates tables asynchronously.
    for _ in 0..200 {
        let (_, text) = call(addr, "DescribeTable", r#"{"TableName":"bench"}"#.into()).await?;
        if text.contains("\"ACTIVE\"") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("table never became ACTIVE")
}

const PARTITIONS: u64 = 1000;

fn put(addr: SocketAddr) -> MakeRequest {
    Arc::new(move |n| {
        let body = format!(
            r#"{{"TableName":"bench","Item":{{"pk":{{"S":"p{}"}},"sk":{{"N":"{n}"}},"text":{{"S":"a todo item with some text"}},"checked":{{"BOOL":false}},"createdAt":{{"N":"1764000000000"}}}}}}"#,
            n % PARTITIONS
        );
        ddb_request(addr, "PutItem", body)
    })
}

fn get(addr: SocketAddr, written: u64) -> MakeRequest {
    Arc::new(move |n| {
        let m = (n.wrapping_mul(7919)) % written.max(1);
        let body = format!(
            r#"{{"TableName":"bench","Key":{{"pk":{{"S":"p{}"}},"sk":{{"N":"{m}"}}}}}}"#,
            m % PARTITIONS
        );
        ddb_request(addr, "GetItem", body)
    })
}

fn query(addr: SocketAddr) -> MakeRequest {
    Arc::new(move |n| {
        let body = format!(
            r#"{{"TableName":"bench","KeyConditionExpression":"pk = :p","ExpressionAttributeValues":{{":p":{{"S":"p{}"}}}},"Limit":10}}"#,
            n % PARTITIONS
        );
        ddb_request(addr, "Query", body)
    })
}

async fn measure(name: &'static str, addr: SocketAddr, o: &Options, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    wait_ready(addr).await?;
    create_table(addr).await?;
    let d = Duration::from_secs(o.seconds);
    let puts = load(addr, put(addr), o.concurrency, d).await?;
    let written = puts.requests as u64;
    eprintln!("  {name:<14} PutItem {:>8.0} req/s", puts.rps());
    rows.push(Row {
        server: name,
        case: "PutItem".into(),
        result: puts,
    });
    let gets = load(addr, get(addr, written), o.concurrency, d).await?;
    eprintln!("  {name:<14} GetItem {:>8.0} req/s", gets.rps());
    rows.push(Row {
        server: name,
        case: "GetItem".into(),
        result: gets,
    });
    let queries = load(addr, query(addr), o.concurrency, d).await?;
    eprintln!("  {name:<14} Query   {:>8.0} req/s", queries.rps());
    rows.push(Row {
        server: name,
        case: "Query".into(),
        result: queries,
    });
    Ok(())
}

/// Dynoxide serving one SQLite file on loopback.
pub(crate) fn dynoxide_command(bin: &std::path::Path, port: u16, db: &std::path::Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args([
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--log",
        "quiet",
        "--db-path",
    ])
    .arg(db);
    cmd
}

fn sylph_tables(o: &Options, port: u16, data: &std::path::Path, reset: bool) -> anyhow::Result<Server> {
    let mut cmd = Command::new(&o.sylph);
    cmd.args(["tables", "--port", &port.to_string(), "--data-dir"])
        .arg(data);
    if reset {
        cmd.arg("--reset");
    }
    spawn(cmd)
}

/// Write with `concurrency` clients, `kill -9` the server, restart it, count what survived.
async fn durability(o: &Options) -> anyhow::Result<(usize, usize)> {
    let data = std::env::temp_dir().join(format!("sylph-bench-durability-{}", std::process::id()));
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let server = sylph_tables(o, port, &data, true)?;
    wait_ready(addr).await?;
    create_table(addr).await?;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let counter = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency {
        let (acked, counter) = (acked.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(stream) = TcpStream::connect(addr).await else {
                return;
            };
            let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await else {
                return;
            };
            tokio::spawn(conn);
            loop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                match sender.send_request(put(addr)(n)).await {
                    Ok(res) if res.status() == 200 => acked.lock().expect("lock").push(n),
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // SIGKILL: no shutdown path runs.
    let mut server = server;
    let _ = server.child_kill();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().expect("lock").clone();
    let server = sylph_tables(o, port, &data, false)?;
    wait_ready(addr).await?;
    let mut found = 0;
    for n in &acked {
        let body = format!(
            r#"{{"TableName":"bench","Key":{{"pk":{{"S":"p{}"}},"sk":{{"N":"{n}"}}}}}}"#,
            n % PARTITIONS
        );
        let (status, text) = call(addr, "GetItem", body).await?;
        if status == 200 && text.contains("\"Item\"") {
            found += 1;
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    Ok((acked.len(), found))
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    eprintln!("sylph tables (durable, fsync per commit) ...");
    let data = std::env::temp_dir().join(format!("sylph-bench-tables-{}", std::process::id()));
    let port = free_port();
    let server = sylph_tables(&o, port, &data, true)?;
    measure("sylph tables", ([127, 0, 0, 1], port).into(), &o, &mut rows).await?;
    drop(server);
    let _ = std::fs::remove_dir_all(&data);

    if let Some(dynoxide) = &o.dynoxide {
        eprintln!("Dynoxide (SQLite file, WAL, synchronous=FULL) ...");
        let data = std::env::temp_dir().join(format!("sylph-bench-dynoxide-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data)?;
        let port = free_port();
        let server = spawn(dynoxide_command(dynoxide, port, &data.join("bench.db")))?;
        measure("Dynoxide", ([127, 0, 0, 1], port).into(), &o, &mut rows).await?;
        drop(server);
        let _ = std::fs::remove_dir_all(&data);
    }

    eprintln!("dynalite (in-memory) ...");
    let port = free_port();
    let mut cmd = Command::new("node");
    cmd.arg(&o.dynalite).args(["--port", &port.to_string()]);
    let server = spawn(cmd)?;
    measure("dynalite", ([127, 0, 0, 1], port).into(), &o, &mut rows).await?;
    drop(server);

    eprintln!("durability: kill -9 under write load ...");
    let (acked, found) = durability(&o).await?;

    println!();
    println!(
        "DynamoDB API over HTTP, {} clients, {} s per operation",
        o.concurrency, o.seconds
    );
    println!();
    print_comparison("operation", "dynalite", &rows);
    println!();
    println!("Durability: sylph tables answers a write after its group commit is fsynced; Dynoxide (file) after its SQLite WAL commit with synchronous=FULL (one fsync per write); dynalite keeps everything in memory.");
    println!(
        "kill -9 under load: {acked} writes acknowledged, {found} found after restart, {} lost",
        acked - found
    );
    Ok(())
}
