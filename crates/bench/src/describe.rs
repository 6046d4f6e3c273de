//! `sylph-bench describe-table`: DescribeTable's latency as a table grows from 1,000 to
//! 1,000,000 items, on `sylph tables` and on Dynoxide (SQLite) in the same run, beside the time
//! of counting the items with a full Scan (`Select: COUNT`, paged) — what every DescribeTable
//! cost before Sylph kept its statistics with each write.
//!
//! Each server's table is filled with BatchWriteItem (25 items a request, 8 clients) up to
//! each size in turn; at each size DescribeTable is called back to back on one connection for
//! `--seconds` and its p50 / p99 are printed with the ItemCount it answered.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::tables::{call, ddb_request, dynoxide_command, wait_ready};
use crate::{free_port, load, spawn};

pub struct Options {
    sylph: PathBuf,
    dynoxide: Option<PathBuf>,
    sizes: Vec<u64>,
    seconds: u64,
}

impl Options {
    pub fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
        let mut o = Options {
            sylph: PathBuf::new(),
            dynoxide: None,
            sizes: vec![1_000, 10_000, 100_000, 1_000_000],
            seconds: 2,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--sylph" => o.sylph = PathBuf::from(value()?).canonicalize()?,
                "--dynoxide" => o.dynoxide = Some(PathBuf::from(value()?).canonicalize()?),
                "--sizes" => o.sizes = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?,
                "--seconds" => o.seconds = value()?.parse()?,
                other => bail!("unknown flag {other}"),
            }
        }
        Ok(o)
    }
}

const TABLE: &str = r#"{"TableName":"grow","BillingMode":"PAY_PER_REQUEST",
    "KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}],
    "AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"N"}]}"#;

/// Write items `from..to` (their numbers make their keys) with BatchWriteItem.
async fn fill(addr: SocketAddr, from: u64, to: u64) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(from));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            loop {
                let first = next.fetch_add(25, Ordering::Relaxed);
                if first >= to {
                    return Ok::<(), anyhow::Error>(());
                }
                let puts: Vec<String> = (first..(first + 25).min(to))
                    .map(|n| {
                        format!(
                            r#"{{"PutRequest":{{"Item":{{"pk":{{"S":"p{}"}},"sk":{{"N":"{n}"}},"text":{{"S":"a todo item with some text"}},"done":{{"BOOL":false}}}}}}}}"#,
                            n % 1000
                        )
                    })
                    .collect();
                let body = format!(r#"{{"RequestItems":{{"grow":[{}]}}}}"#, puts.join(","));
                let res = sender.send_request(ddb_request(addr, "BatchWriteItem", body)).await?;
                let status = res.status();
                let text = res.into_body().collect().await?.to_bytes();
                if status != 200 || !text.starts_with(br#"{"UnprocessedItems":{}"#) {
                    bail!("BatchWriteItem: {status} {}", String::from_utf8_lossy(&text));
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Count the items with a full Scan (`Select: COUNT`), page by page, as the old DescribeTable
/// did inside the server.
async fn scan_count(addr: SocketAddr) -> anyhow::Result<(u64, Duration)> {
    let start = Instant::now();
    let mut total = 0;
    let mut start_key: Option<serde_json::Value> = None;
    loop {
        let mut body = serde_json::json!({"TableName": "grow", "Select": "COUNT"});
        if let Some(k) = start_key.take() {
            body["ExclusiveStartKey"] = k;
        }
        let (status, text) = call(addr, "Scan", body.to_string()).await?;
        if status != 200 {
            bail!("Scan: {status} {text}");
        }
        let page: serde_json::Value = serde_json::from_str(&text)?;
        total += page["Count"].as_u64().unwrap_or(0);
        match page.get("LastEvaluatedKey") {
            Some(k) => start_key = Some(k.clone()),
            None => return Ok((total, start.elapsed())),
        }
    }
}

struct Sample {
    items: u64,
    p50_ms: f64,
    p99_ms: f64,
    reported: u64,
    scan: Option<(u64, Duration)>,
}

async fn measure(name: &str, addr: SocketAddr, o: &Options, with_scan: bool) -> anyhow::Result<Vec<Sample>> {
    wait_ready(addr).await?;
    let (status, text) = call(addr, "CreateTable", TABLE.into()).await?;
    if status != 200 {
        bail!("CreateTable: {status} {text}");
    }
    let mut written = 0;
    let mut samples = Vec::new();
    for &size in &o.sizes {
        let t = Instant::now();
        fill(addr, written, size).await?;
        written = size;
        eprintln!("  {name}: {size} items written in {:.1} s", t.elapsed().as_secs_f64());
        let describe: crate::MakeRequest =
            Arc::new(move |_| ddb_request(addr, "DescribeTable", r#"{"TableName":"grow"}"#.into()));
        let result = load(addr, describe, 1, Duration::from_secs(o.seconds)).await?;
        let (_, text) = call(addr, "DescribeTable", r#"{"TableName":"grow"}"#.into()).await?;
        let reported = serde_json::from_str::<serde_json::Value>(&text)?["Table"]["ItemCount"]
            .as_u64()
            .unwrap_or(0);
        let scan = if with_scan { Some(scan_count(addr).await?) } else { None };
        samples.push(Sample {
            items: size,
            p50_ms: result.percentile_ms(0.5),
            p99_ms: result.percentile_ms(0.99),
            reported,
            scan,
        });
    }
    Ok(samples)
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    eprintln!("sylph tables (durable) ...");
    let data = std::env::temp_dir().join(format!("sylph-bench-describe-{}", std::process::id()));
    let port = free_port();
    let mut cmd = Command::new(&o.sylph);
    cmd.args(["tables", "--reset", "--port", &port.to_string(), "--data-dir"])
        .arg(&data);
    let server = spawn(cmd)?;
    let sylph = measure("sylph tables", ([127, 0, 0, 1], port).into(), &o, true).await?;
    drop(server);
    let _ = std::fs::remove_dir_all(&data);

    let mut dynoxide = None;
    if let Some(bin) = &o.dynoxide {
        eprintln!("Dynoxide (SQLite file) ...");
        let data = std::env::temp_dir().join(format!("sylph-bench-describe-dynoxide-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data)?;
        let port = free_port();
        let server = spawn(dynoxide_command(bin, port, &data.join("bench.db")))?;
        dynoxide = Some(measure("Dynoxide", ([127, 0, 0, 1], port).into(), &o, false).await?);
        drop(server);
        let _ = std::fs::remove_dir_all(&data);
    }

    println!();
    println!(
        "DescribeTable as the table grows (one client, {} s per size)",
        o.seconds
    );
    println!();
    println!("| items | sylph p50 ms | sylph p99 ms | sylph ItemCount | Dynoxide p50 ms | Dynoxide ItemCount | full Scan COUNT on sylph (the old DescribeTable) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (i, s) in sylph.iter().enumerate() {
        let d = dynoxide.as_ref().and_then(|d| d.get(i));
        let (scan_count, scan_time) = s.scan.unwrap_or_default();
        println!(
            "| {} | {:.3} | {:.3} | {} | {} | {} | {:.1} ms ({scan_count} items) |",
            s.items,
            s.p50_ms,
            s.p99_ms,
            s.reported,
            d.map(|d| format!("{:.3}", d.p50_ms)).unwrap_or_else(|| "-".into()),
            d.map(|d| d.reported.to_string()).unwrap_or_else(|| "-".into()),
            scan_time.as_secs_f64() * 1000.0
        );
    }
    if let (Some(first), Some(last)) = (sylph.first(), sylph.last()) {
        println!();
        println!(
            "sylph DescribeTable p50 at {} items / at {} items: {:.2}x",
            last.items,
            first.items,
            last.p50_ms / first.p50_ms
        );
    }
    Ok(())
}
