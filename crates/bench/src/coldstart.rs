//! `sylph-bench coldstart`: cold-start latency (request arrival to response) for a Node.js
//! function that requires aws-sdk v2, a Python function that imports boto3, a Rust
//! `provided.al2023` function and (with `--java-package`) a Java 17 function that builds a
//! DynamoDB client — with and without pre-started runtimes — next to the bare process start of
//! `node -e 0`, `python3 -c 0` and `java -version`, plus the warm invocation latency. Then the
//! sequences a user lives through, each sample a cold start of a function not called before:
//! after 10 s and 60 s of quiet, the second function right after the first, after a code
//! reload, and bursts of 8 at once; with how many of them a pre-started runtime served (from
//! the metrics).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::{free_port, spawn, Server};

pub struct Options {
    sylph: PathBuf,
    rust_bootstrap: PathBuf,
    samples: usize,
    /// Samples of the 60 s-quiet sequence (each costs a minute).
    long_samples: usize,
    /// The Java function's package (bench/java, built with Maven): Java rows when given.
    java_package: Option<PathBuf>,
    /// Only the Java rows (with their `java -version` baseline).
    java_only: bool,
}

impl Options {
    pub fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
        let mut o = Options {
            sylph: PathBuf::new(),
            rust_bootstrap: PathBuf::new(),
            samples: 20,
            long_samples: 20,
            java_package: None,
            java_only: false,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--sylph" => o.sylph = PathBuf::from(value()?).canonicalize()?,
                "--rust-bootstrap" => o.rust_bootstrap = PathBuf::from(value()?).canonicalize()?,
                "--samples" => o.samples = value()?.parse()?,
                "--long-samples" => o.long_samples = value()?.parse()?,
                "--java-only" => o.java_only = true,
                "--java-package" => o.java_package = Some(PathBuf::from(value()?).canonicalize()?),
                other => bail!("unknown flag {other}"),
            }
        }
        Ok(o)
    }
}

pub(crate) async fn invoke(addr: SocketAddr, function: &str) -> anyhow::Result<Duration> {
    let (took, status, function_error, body) = invoke_raw(addr, function).await?;
    if status != 200 || function_error {
        bail!("{function}: {status} {body}");
    }
    Ok(took)
}

/// One Invoke API call on a new connection: latency, status, whether the function failed, body.
async fn invoke_raw(addr: SocketAddr, function: &str) -> anyhow::Result<(Duration, u16, bool, String)> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::post(format!("/2015-03-31/functions/{function}/invocations"))
        .header("host", addr.to_string())
        .body(Full::new(Bytes::from_static(b"{}")))?;
    let t = Instant::now();
    let res = sender.send_request(req).await?;
    let status = res.status().as_u16();
    let function_error = res.headers().contains_key("x-amz-function-error");
    let body = res.into_body().collect().await?.to_bytes();
    Ok((
        t.elapsed(),
        status,
        function_error,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

pub(crate) fn percentile(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

fn write_service(dir: &Path, n: usize, rust_bootstrap: &Path, java_package: Option<&Path>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut yml = String::from("service: coldstart\nprovider:\n  runtime: nodejs20.x\n  memorySize: 256\nfunctions:\n");
    for i in 0..n {
        yml.push_str(&format!("  node{i}:\n    handler: node.handler\n"));
        yml.push_str(&format!(
            "  python{i}:\n    handler: py.handler\n    runtime: python3.12\n"
        ));
        yml.push_str(&format!(
            "  rust{i}:\n    handler: bootstrap\n    runtime: provided.al2023\n    package:\n      artifact: {}\n",
            rust_bootstrap.display()
        ));
    }
    yml.push_str("  warm:\n    handler: node.handler\n");
    if let Some(package) = java_package {
        // One memorySize for every function: pre-started JVMs are sized for it.
        let functions = (0..n)
            .flat_map(|i| [(format!("java{i}"), "ListTables"), (format!("javahello{i}"), "Hello")])
            .chain([("warmjava".to_owned(), "ListTables")]);
        for (name, class) in functions {
            yml.push_str(&format!(
                "  {name}:\n    handler: bench.{class}\n    runtime: java17\n    package:\n      artifact: {}\n",
                package.display()
            ));
        }
    }
    // The sequences: functions called once each.
    for prefix in ["quiet", "second", "minute", "minutesecond", "burst"] {
        for i in 0..n.max(32) {
            yml.push_str(&format!("  {prefix}node{i}:\n    handler: node.handler\n"));
            yml.push_str(&format!(
                "  {prefix}python{i}:\n    handler: py.handler\n    runtime: python3.12\n"
            ));
        }
    }
    yml.push_str("  reloaded:\n    handler: reloaded.handler\n");
    std::fs::write(dir.join("reloaded.js"), reloaded_source(0))?;
    std::fs::write(dir.join("serverless.yml"), yml)?;
    std::fs::write(
        dir.join("node.js"),
        "const AWS = require('aws-sdk');\nexports.handler = async () => ({ ok: typeof AWS.DynamoDB });\n",
    )?;
    std::fs::write(
        dir.join("py.py"),
        "import boto3\n\ndef handler(event, context):\n    return {'ok': boto3.__name__}\n",
    )?;
    Ok(())
}

fn reloaded_source(round: usize) -> String {
    format!("const AWS = require('aws-sdk');\nexports.handler = async () => ({{ round: {round}, ok: typeof AWS.DynamoDB }});\n")
}

/// The server's metrics, as text.
async fn metrics(addr: SocketAddr) -> anyhow::Result<String> {
    let req = hyper::Request::get("/_sylph/metrics")
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))?;
    let (_, _, body) = crate::send_once(addr, req).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Cold starts a pre-started runtime served so far, over every function.
async fn prewarmed_total(addr: SocketAddr) -> anyhow::Result<f64> {
    Ok(metrics(addr)
        .await?
        .lines()
        .filter(|l| l.starts_with("sylph_starts_total{") && l.contains("kind=\"prewarmed\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// One sequence's samples, and how many of them a pre-started runtime served.
struct Sequence {
    label: String,
    samples: Vec<Duration>,
    prewarmed: usize,
}

/// The sequences a user lives through, on one `sylph dev` with the default pool (2 per
/// language, growing with bursts) and code reloading on.
async fn sequences(o: &Options, dir: &Path) -> anyhow::Result<Vec<Sequence>> {
    let data = std::env::temp_dir().join(format!("sylph-bench-seq-{}", std::process::id()));
    // 8 at once need 8 slots (the default platform limit is twice the cores).
    let (server, addr) = start_dev(o, dir, &["--reload", "--concurrency", "16"], &data).await?;
    let mut out = Vec::new();
    // Each sample: a cold start, then the metrics say whether a pre-started runtime served it.
    async fn sample(addr: SocketAddr, function: &str, seq: &mut Sequence) -> anyhow::Result<()> {
        let before = prewarmed_total(addr).await?;
        seq.samples.push(invoke(addr, function).await?);
        if prewarmed_total(addr).await? > before {
            seq.prewarmed += 1;
        }
        Ok(())
    }
    let new = |label: &str| Sequence {
        label: label.to_owned(),
        samples: Vec::new(),
        prewarmed: 0,
    };

    for (quiet, prefix, rounds) in [(10u64, "quiet", o.samples), (60, "minute", o.long_samples)] {
        eprintln!(
            "  {rounds} rounds of {quiet} s quiet, then a cold start of two Node.js and two Python functions ..."
        );
        let mut node = new(&format!("Node.js (aws-sdk v2): first function after {quiet} s quiet"));
        let mut python = new(&format!("Python (boto3): first function after {quiet} s quiet"));
        let mut node2 = new(&format!(
            "Node.js (aws-sdk v2): a second function right after (after {quiet} s quiet)"
        ));
        let mut python2 = new(&format!(
            "Python (boto3): a second function right after (after {quiet} s quiet)"
        ));
        for r in 0..rounds {
            tokio::time::sleep(Duration::from_secs(quiet)).await;
            sample(addr, &format!("{prefix}node{r}"), &mut node).await?;
            sample(addr, &format!("{prefix}python{r}"), &mut python).await?;
            // "second" functions: the next cold start comes right after, before any refill.
            let second = if prefix == "quiet" { "second" } else { "minutesecond" };
            sample(addr, &format!("{second}node{r}"), &mut node2).await?;
            sample(addr, &format!("{second}python{r}"), &mut python2).await?;
        }
        out.extend([node, python, node2, python2]);
    }

    eprintln!("  {} code reloads, each followed by a cold start ...", o.samples);
    let mut reload = new("Node.js (aws-sdk v2): the first call after a code reload");
    // The sequences above just drew on the pool: let it refill, as it would between edits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for r in 1..=o.samples {
        std::fs::write(dir.join("reloaded.js"), reloaded_source(r))?;
        // Wait for the reload to take effect: the function answers with the new round.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let before = prewarmed_total(addr).await?;
            let took = invoke_body(addr, "reloaded").await?;
            if took.1.contains(&format!("\"round\":{r}")) {
                reload.samples.push(took.0);
                if prewarmed_total(addr).await? > before {
                    reload.prewarmed += 1;
                }
                break;
            }
            if Instant::now() > deadline {
                bail!("the code reload never took effect");
            }
        }
        // Let the pool refill, as between edits.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    out.push(reload);

    eprintln!("  bursts of 8 cold starts at once ...");
    let mut first_burst = new("Node.js (aws-sdk v2): 8 cold starts at once, the first burst");
    let mut later_bursts = new("Node.js (aws-sdk v2): 8 cold starts at once, later bursts");
    for b in 0..4 {
        let before = prewarmed_total(addr).await?;
        let calls: Vec<_> = (0..8)
            .map(|k| tokio::spawn(async move { invoke(addr, &format!("burstnode{}", b * 8 + k)).await }))
            .collect();
        let seq = if b == 0 { &mut first_burst } else { &mut later_bursts };
        for c in calls {
            seq.samples.push(c.await??);
        }
        seq.prewarmed += (prewarmed_total(addr).await? - before) as usize;
        // The pool grows to the burst in the background.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    out.extend([first_burst, later_bursts]);
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    Ok(out)
}

/// Invoke and return the latency and the body.
async fn invoke_body(addr: SocketAddr, function: &str) -> anyhow::Result<(Duration, String)> {
    let (took, _, _, body) = invoke_raw(addr, function).await?;
    Ok((took, body))
}

/// `sylph dev` on `dir` with `extra` flags, once it answers; stops with the returned guard.
async fn start_dev(o: &Options, dir: &Path, extra: &[&str], data: &Path) -> anyhow::Result<(Server, SocketAddr)> {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = Command::new(&o.sylph);
    cmd.args(["dev", "--quiet", "--port", &port.to_string(), "--data-dir"])
        .arg(data)
        .args(if extra.contains(&"--reload") {
            &[][..]
        } else {
            &["--no-reload"][..]
        })
        .args(extra.iter().filter(|a| **a != "--reload"))
        .current_dir(dir);
    let server = spawn(cmd)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while invoke(addr, "warm").await.is_err() {
        if Instant::now() > deadline {
            bail!("sylph dev did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((server, addr))
}

/// Cold starts of `prefix0..n` with `prewarm` pre-started runtimes per language.
async fn cold(o: &Options, dir: &Path, prewarm: usize, prefix: &str) -> anyhow::Result<Vec<Duration>> {
    let data = std::env::temp_dir().join(format!("sylph-bench-cold-{}-{prewarm}", std::process::id()));
    let (server, addr) = start_dev(o, dir, &["--prewarm", &prewarm.to_string()], &data).await?;
    let mut out = Vec::with_capacity(o.samples);
    for i in 0..o.samples {
        // Let the pre-started pool refill between cold starts, as it would between arrivals.
        tokio::time::sleep(Duration::from_millis(400)).await;
        out.push(invoke(addr, &format!("{prefix}{i}")).await?);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    Ok(out)
}

/// Cold starts of `java0..n`, each once a pre-started JVM is ready (with `prewarm` > 0): a JVM
/// warms up for about a second, so back-to-back arrivals would measure the pool's refill
/// instead. Also how many a pre-started JVM served.
async fn cold_java(o: &Options, dir: &Path, prewarm: usize, prefix: &str) -> anyhow::Result<(Vec<Duration>, usize)> {
    let data = std::env::temp_dir().join(format!("sylph-bench-java-{}-{prewarm}", std::process::id()));
    let (server, addr) = start_dev(o, dir, &["--prewarm", &prewarm.to_string()], &data).await?;
    let mut out = Vec::with_capacity(o.samples);
    let mut served = 0;
    for i in 0..o.samples {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while prewarm > 0 && java_standby(addr).await? < 1.0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let before = prewarmed_total(addr).await?;
        out.push(invoke(addr, &format!("{prefix}{i}")).await?);
        if prewarmed_total(addr).await? > before {
            served += 1;
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    Ok((out, served))
}

/// Pre-started JVMs ready now, from the metrics.
async fn java_standby(addr: SocketAddr) -> anyhow::Result<f64> {
    Ok(metrics(addr)
        .await?
        .lines()
        .find_map(|l| l.strip_prefix("sylph_prestarted_runtimes{language=\"java\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0))
}

/// Warm invocations of `function` (after one cold start, not counted).
async fn warm(o: &Options, dir: &Path, function: &str, count: usize) -> anyhow::Result<Vec<Duration>> {
    let data = std::env::temp_dir().join(format!("sylph-bench-warm-{}", std::process::id()));
    let (server, addr) = start_dev(o, dir, &[], &data).await?;
    invoke(addr, function).await?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(invoke(addr, function).await?);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    Ok(out)
}

fn process_start(program: &str, args: &[&str], samples: usize) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let status = Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            bail!("{program} failed");
        }
        out.push(t.elapsed());
    }
    Ok(out)
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("sylph-bench-coldstart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    write_service(
        &dir,
        o.samples.max(o.long_samples),
        &o.rust_bootstrap,
        o.java_package.as_deref(),
    )?;
    let mut rows: Vec<(String, Vec<Duration>)> = Vec::new();
    if o.java_only && o.java_package.is_none() {
        bail!("--java-only needs --java-package");
    }
    let languages: &[(&str, &str)] = if o.java_only {
        &[]
    } else {
        &[
            ("Node.js, requires aws-sdk v2", "node"),
            ("Python, imports boto3", "python"),
            ("Rust provided.al2023 (lambda_runtime)", "rust"),
        ]
    };
    for &(label, prefix) in languages {
        eprintln!("{label} ...");
        rows.push((
            format!("{label}: cold start, no pre-started runtime"),
            cold(&o, &dir, 0, prefix).await?,
        ));
        if prefix != "rust" {
            rows.push((
                format!("{label}: cold start from a pre-started runtime"),
                cold(&o, &dir, 2, prefix).await?,
            ));
        }
    }
    let mut notes = Vec::new();
    if o.java_package.is_some() {
        for (label, prefix) in [
            (
                "Java 17, builds a DynamoDB client (AWS SDK for Java v2) and lists the tables",
                "java",
            ),
            ("Java 17, a handler using no SDK", "javahello"),
        ] {
            eprintln!("{label} ...");
            rows.push((
                format!("{label}: cold start, no pre-started JVM"),
                cold_java(&o, &dir, 0, prefix).await?.0,
            ));
            let (samples, served) = cold_java(&o, &dir, 2, prefix).await?;
            notes.push(format!(
                "{label}: {served} of {} cold starts served by a pre-started JVM",
                samples.len()
            ));
            rows.push((format!("{label}: cold start from a pre-started JVM"), samples));
        }
        let label = "Java 17, builds a DynamoDB client (AWS SDK for Java v2) and lists the tables";
        rows.push((
            format!("{label}: warm invocation"),
            warm(&o, &dir, "warmjava", 200).await?,
        ));
        rows.push((
            "baseline: `java -version` process start".into(),
            process_start("java", &["-version"], o.samples)?,
        ));
    }
    let mut sequences_run = Vec::new();
    if !o.java_only {
        eprintln!("warm invocations ...");
        rows.push((
            "Node.js: warm invocation (Invoke API round trip)".into(),
            warm(&o, &dir, "warm", 1000).await?,
        ));
        rows.push((
            "baseline: `node -e 0` process start".into(),
            process_start("node", &["-e", "0"], o.samples)?,
        ));
        rows.push((
            "baseline: `python3 -c 0` process start".into(),
            process_start("python3", &["-c", "0"], o.samples)?,
        ));
        eprintln!("sequences ...");
        sequences_run = sequences(&o, &dir).await?;
    }
    let sequences = sequences_run;
    let _ = std::fs::remove_dir_all(&dir);

    println!();
    println!(
        "Request arrival to response (Lambda Invoke API), {} samples each",
        o.samples
    );
    println!();
    println!("| what | p50 ms | p99 ms |");
    println!("|---|---:|---:|");
    for (label, mut v) in rows {
        let (p50, p99) = (percentile(&mut v, 0.5), percentile(&mut v, 0.99));
        println!("| {label} | {p50:.1} | {p99:.1} |");
    }
    for note in notes {
        println!();
        println!("{note}");
    }
    println!();
    println!("Cold starts in the sequences a user lives through (each a function not called before), request arrival to response");
    println!();
    println!("| sequence | samples | served by a pre-started runtime | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|");
    for mut seq in sequences {
        let n = seq.samples.len();
        if n == 0 {
            continue;
        }
        let (p50, p99) = (percentile(&mut seq.samples, 0.5), percentile(&mut seq.samples, 0.99));
        println!("| {} | {n} | {} | {p50:.1} | {p99:.1} |", seq.label, seq.prewarmed);
    }
    Ok(())
}
