//! `sylph-bench events`: messages per second through SendMessageBatch → `sqs` event → handler
//! (until the queue is empty: every message delivered and deleted), under `sylph dev` and under
//! what a user would otherwise run locally — serverless-offline with serverless-offline-sqs
//! polling a moto server (PyPI `moto[server]`) — in one run; and the latency from a table
//! write to its `stream` handler (p50/p99) under `sylph dev` (serverless-offline runs no
//! stream events, so it has no figure there).
//!
//! Two peers, each behind serverless-offline-sqs: moto, and ElasticMQ (the Scala SQS server,
//! from Maven Central: `--elasticmq-lib` names the folder of its jars).
//!
//! Durability differs and is printed with the figures: Sylph fsyncs every accepted message
//! (group commit) before SendMessage answers; moto and ElasticMQ (as run here) keep their
//! queues in memory.
//!
//! Usage: sylph-bench events --sylph PATH --dir bench/events [--elasticmq-lib DIR]
//!        [--messages N] [--senders N] [--writes N] [--skip-peer]

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};

use crate::{free_port, send_once, Server};

pub struct Options {
    sylph: PathBuf,
    dir: PathBuf,
    messages: usize,
    senders: usize,
    writes: usize,
    skip_peer: bool,
    elasticmq_lib: Option<PathBuf>,
}

impl Options {
    pub fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
        let mut o = Options {
            sylph: PathBuf::new(),
            dir: PathBuf::new(),
            messages: 1000,
            senders: 4,
            writes: 300,
            skip_peer: false,
            elasticmq_lib: None,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--sylph" => o.sylph = PathBuf::from(value()?),
                "--dir" => o.dir = PathBuf::from(value()?),
                "--messages" => o.messages = value()?.parse()?,
                "--senders" => o.senders = value()?.parse()?,
                "--writes" => o.writes = value()?.parse()?,
                "--skip-peer" => o.skip_peer = true,
                "--elasticmq-lib" => o.elasticmq_lib = Some(PathBuf::from(value()?)),
                other => bail!("unknown flag {other}"),
            }
        }
        o.sylph = o.sylph.canonicalize().context("--sylph")?;
        o.dir = o.dir.canonicalize().context("--dir")?;
        Ok(o)
    }
}

/// A started server whose standard output is kept (the stream handler prints its lags).
fn spawn_capturing(mut cmd: Command) -> anyhow::Result<(Server, Arc<Mutex<String>>)> {
    use std::os::unix::process::CommandExt as _;
    cmd.stdout(Stdio::piped()).stderr(Stdio::null()).process_group(0);
    let mut child = cmd.spawn().context("start server")?;
    let stdout = child.stdout.take().context("stdout")?;
    let output = Arc::new(Mutex::new(String::new()));
    let sink = output.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let mut out = sink.lock().unwrap_or_else(|e| e.into_inner());
            out.push_str(&line);
            out.push('\n');
        }
    });
    Ok((Server::from_child(child), output))
}

async fn sqs(addr: SocketAddr, op: &str, body: &Value) -> anyhow::Result<Value> {
    let req = hyper::Request::post("/")
        .header("host", addr.to_string())
        .header("x-amz-target", format!("AmazonSQS.{op}"))
        .header("content-type", "application/x-amz-json-1.0")
        // moto picks the service by the credential scope (it checks no signature; Sylph's
        // public port takes the developer's own tools' calls unchecked too).
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(Full::new(Bytes::from(body.to_string())))?;
    let (status, _, bytes) = send_once(addr, req).await?;
    if status != 200 {
        bail!("{op}: {status} {}", String::from_utf8_lossy(&bytes));
    }
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn wait_for_queue(addr: SocketAddr, name: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(v) = sqs(addr, "GetQueueUrl", &json!({"QueueName": name})).await {
            if let Some(url) = v["QueueUrl"].as_str() {
                return Ok(url.to_owned());
            }
        }
        if Instant::now() > deadline {
            bail!("queue {name} never appeared at {addr}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Messages in the queue, visible or in flight.
async fn depth(addr: SocketAddr, url: &str) -> anyhow::Result<u64> {
    let v = sqs(
        addr,
        "GetQueueAttributes",
        &json!({"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]}),
    )
    .await?;
    let n = |k: &str| {
        v["Attributes"][k]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(n("ApproximateNumberOfMessages") + n("ApproximateNumberOfMessagesNotVisible"))
}

struct Flow {
    /// Messages per second accepted by SendMessageBatch.
    accepted: f64,
    /// Messages per second through the whole path (queue empty again).
    delivered: f64,
}

/// Send `messages` in batches of ten from `senders` clients; time until all are accepted and
/// until the queue is empty.
async fn flow(addr: SocketAddr, url: &str, messages: usize, senders: usize) -> anyhow::Result<Flow> {
    let batches = messages.div_ceil(10);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (next, url) = (next.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if b >= batches {
                    return Ok::<(), anyhow::Error>(());
                }
                let entries: Vec<Value> = (0..10)
                    .map(|i| json!({"Id": format!("m{i}"), "MessageBody": format!("{{\"batch\":{b},\"n\":{i}}}")}))
                    .collect();
                let answer = sqs(addr, "SendMessageBatch", &json!({"QueueUrl": url, "Entries": entries})).await?;
                if answer["Failed"].as_array().is_some_and(|f| !f.is_empty()) {
                    bail!("messages refused: {answer}");
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let accepted = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left = depth(addr, url).await?;
        if left == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the queue did not empty within 300 s ({left} messages left)");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = (batches * 10) as f64;
    Ok(Flow {
        accepted: total / accepted.as_secs_f64(),
        delivered: total / start.elapsed().as_secs_f64(),
    })
}

/// Write `writes` items one after another (each carrying the writer's clock), and read the
/// handler's lags from the server's output.
async fn stream_lags(addr: SocketAddr, output: &Mutex<String>, writes: usize) -> anyhow::Result<Vec<f64>> {
    for i in 0..writes {
        let sent = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis();
        let body = json!({"TableName": "evbench-items", "Item": {"pk": {"S": format!("k{i}")}, "sent": {"N": sent.to_string()}}});
        let req = hyper::Request::post("/")
            .header("host", addr.to_string())
            .header("x-amz-target", "DynamoDB_20120810.PutItem")
            .header("content-type", "application/x-amz-json-1.0")
            .body(Full::new(Bytes::from(body.to_string())))?;
        let (status, _, bytes) = send_once(addr, req).await?;
        if status != 200 {
            bail!("PutItem: {status} {}", String::from_utf8_lossy(&bytes));
        }
        // Spaced out, so each write's latency is its own and not a queue behind the others.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lags: Vec<f64> = output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lines()
            .filter_map(|l| l.split_once("LAG ").and_then(|(_, v)| v.trim().parse().ok()))
            .collect();
        if lags.len() >= writes {
            return Ok(lags);
        }
        if Instant::now() > deadline {
            bail!("only {} of {writes} stream records reached the handler", lags.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The flow through serverless-offline + serverless-offline-sqs polling the SQS server on
/// `sqs_port` (which makes the queue at start).
async fn peer_flow(o: &Options, sqs_port: u16) -> anyhow::Result<Flow> {
    let sqs_addr: SocketAddr = ([127, 0, 0, 1], sqs_port).into();
    let mut offline = crate::offline_command(&o.dir, free_port(), free_port());
    offline.env("SQS_ENDPOINT", format!("http://127.0.0.1:{sqs_port}"));
    let _offline = crate::spawn(offline)?;
    let url = wait_for_queue(sqs_addr, "evbench-jobs").await?;
    flow(sqs_addr, &url, 100, 1).await?;
    eprintln!("  warmed up; {} messages ...", o.messages);
    flow(sqs_addr, &url, o.messages, o.senders).await
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    // sylph dev.
    eprintln!("sylph dev ...");
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let data = std::env::temp_dir().join(format!("sylph-bench-events-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut cmd = Command::new(&o.sylph);
    cmd.args(["dev", "--port", &port.to_string(), "--data-dir"])
        .arg(&data)
        .current_dir(&o.dir);
    let (server, output) = spawn_capturing(cmd)?;
    let url = wait_for_queue(addr, "evbench-jobs").await?;
    // One small round first: cold starts are not what this measures.
    flow(addr, &url, 100, 1).await?;
    let sylph = flow(addr, &url, o.messages, o.senders).await?;
    stream_lags(addr, &output, 20).await?;
    output.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let mut lags = stream_lags(addr, &output, o.writes).await?;
    lags.sort_by(f64::total_cmp);
    drop(server);
    let _ = std::fs::remove_dir_all(&data);

    let mut peers: Vec<(&str, Flow)> = Vec::new();
    if !o.skip_peer {
        eprintln!("serverless-offline + serverless-offline-sqs + moto ...");
        let port = free_port();
        let mut moto = Command::new("moto_server");
        moto.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let moto = crate::spawn(moto).context("moto_server (pip install 'moto[server]')")?;
        peers.push(("serverless-offline-sqs + moto", peer_flow(&o, port).await?));
        drop(moto);
        if let Some(lib) = &o.elasticmq_lib {
            eprintln!("serverless-offline + serverless-offline-sqs + ElasticMQ ...");
            let port = free_port();
            let conf = std::env::temp_dir().join(format!("sylph-bench-elasticmq-{}.conf", std::process::id()));
            std::fs::write(
                &conf,
                format!(
                    "include classpath(\"application.conf\")\nnode-address {{ protocol = http, host = 127.0.0.1, port = {port}, context-path = \"\" }}\nrest-sqs {{ enabled = true, bind-port = {port}, bind-hostname = \"127.0.0.1\", sqs-limits = strict }}\nrest-stats {{ enabled = false }}\n"
                ),
            )?;
            let mut java = Command::new("java");
            java.arg(format!("-Dconfig.file={}", conf.display()))
                .arg("-cp")
                .arg(format!("{}/*", lib.display()))
                .arg("org.elasticmq.server.Main");
            let elasticmq = crate::spawn(java).context("java (ElasticMQ)")?;
            peers.push(("serverless-offline-sqs + ElasticMQ", peer_flow(&o, port).await?));
            drop(elasticmq);
            let _ = std::fs::remove_file(&conf);
        }
    }

    println!();
    println!(
        "SendMessageBatch → sqs event (batches of 10) → handler: {} messages from {} clients, until the queue is empty",
        o.messages, o.senders
    );
    println!();
    println!("  {:<44} {:>16} {:>20}", "", "accepted msgs/s", "end to end msgs/s");
    println!(
        "  {:<44} {:>16.0} {:>20.0}",
        "sylph dev (each message fsynced)", sylph.accepted, sylph.delivered
    );
    for (name, p) in &peers {
        println!(
            "  {:<44} {:>16.0} {:>20.0}",
            format!("{name} (in memory)"),
            p.accepted,
            p.delivered
        );
    }
    for (name, p) in &peers {
        println!(
            "  {:<44} {:>15.1}x {:>19.1}x",
            format!("sylph dev / {name}"),
            sylph.accepted / p.accepted,
            sylph.delivered / p.delivered
        );
    }
    println!();
    println!(
        "Table write → stream handler, {} writes 10 ms apart (sylph dev; serverless-offline runs no stream events)",
        o.writes
    );
    println!(
        "  p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}
