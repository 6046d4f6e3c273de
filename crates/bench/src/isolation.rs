//! `sylph-bench isolation`: what isolation costs. The same service under four set-ups, side by
//! side in one run:
//!
//! - everything on: a network namespace per instance, slirp4netns for outbound traffic, per-instance
//!   credentials with SigV4 and IAM checked on every table call (the default);
//! - no outbound network (`custom.sylph.outbound: false`): the namespace without slirp4netns;
//! - `--host-network`: no namespace (and so no slirp4netns), signatures still checked;
//! - `--host-network --no-iam`: neither, as Sylph was before isolation.
//!
//! For each: cold starts of a Rust `provided.al2023` function (a new process and, when on, a new
//! namespace and slirp4netns) and of a Node.js function served by a pre-started runtime, and warm
//! calls of a Node.js function that reads a table item with aws-sdk v2 (a signed call checked
//! against its role when IAM is on).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::coldstart::{invoke, percentile};
use crate::{free_port, spawn, Server};

pub struct Options {
    sylph: PathBuf,
    rust_bootstrap: PathBuf,
    samples: usize,
    warm_calls: usize,
}

impl Options {
    pub fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
        let mut o = Options {
            sylph: PathBuf::new(),
            rust_bootstrap: PathBuf::new(),
            samples: 20,
            warm_calls: 500,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--sylph" => o.sylph = PathBuf::from(value()?).canonicalize()?,
                "--rust-bootstrap" => o.rust_bootstrap = PathBuf::from(value()?).canonicalize()?,
                "--samples" => o.samples = value()?.parse()?,
                "--warm-calls" => o.warm_calls = value()?.parse()?,
                other => bail!("unknown flag {other}"),
            }
        }
        Ok(o)
    }
}

fn write_service(dir: &Path, o: &Options, outbound: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut yml = String::from(
        "service: isolation\nprovider:\n  runtime: nodejs20.x\n  memorySize: 256\n  iam:\n    role:\n      statements:\n        - Effect: Allow\n          Action: dynamodb:GetItem\n          Resource: !GetAtt Items.Arn\n",
    );
    if !outbound {
        yml.push_str("custom:\n  sylph:\n    outbound: false\n");
    }
    yml.push_str("functions:\n  warm:\n    handler: node.hello\n  get:\n    handler: node.get\n");
    for i in 0..o.samples {
        yml.push_str(&format!("  node{i}:\n    handler: node.hello\n"));
        yml.push_str(&format!(
            "  rust{i}:\n    handler: bootstrap\n    runtime: provided.al2023\n    package:\n      artifact: {}\n",
            o.rust_bootstrap.display()
        ));
    }
    yml.push_str("resources:\n  Resources:\n    Items:\n      Type: AWS::DynamoDB::Table\n      Properties:\n        TableName: items\n        BillingMode: PAY_PER_REQUEST\n        AttributeDefinitions:\n          - {AttributeName: id, AttributeType: S}\n        KeySchema:\n          - {AttributeName: id, KeyType: HASH}\n");
    std::fs::write(dir.join("serverless.yml"), yml)?;
    std::fs::write(
        dir.join("node.js"),
        "const AWS = require('aws-sdk');\nconst db = new AWS.DynamoDB.DocumentClient();\nexports.hello = async () => ({ ok: typeof AWS.DynamoDB });\nexports.get = async () => { const r = await db.get({ TableName: 'items', Key: { id: 'x' } }).promise(); return { found: !!r.Item }; };\n",
    )?;
    Ok(())
}

struct Setup {
    label: &'static str,
    outbound: bool,
    flags: &'static [&'static str],
}

const SETUPS: &[Setup] = &[
    Setup {
        label: "namespace + slirp4netns + SigV4/IAM (default)",
        outbound: true,
        flags: &[],
    },
    Setup {
        label: "namespace, no outbound, SigV4/IAM",
        outbound: false,
        flags: &[],
    },
    Setup {
        label: "host network, SigV4/IAM",
        outbound: true,
        flags: &["--host-network"],
    },
    Setup {
        label: "host network, no IAM (no isolation)",
        outbound: true,
        flags: &["--host-network", "--no-iam"],
    },
];

async fn start(o: &Options, dir: &Path, flags: &[&str]) -> anyhow::Result<(Server, SocketAddr, PathBuf)> {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let data = std::env::temp_dir().join(format!("sylph-bench-isolation-data-{}-{port}", std::process::id()));
    let mut cmd = Command::new(&o.sylph);
    cmd.args([
        "dev",
        "--quiet",
        "--no-reload",
        "--prewarm",
        "2",
        "--port",
        &port.to_string(),
        "--data-dir",
    ])
    .arg(&data)
    .args(flags)
    .current_dir(dir);
    let server = spawn(cmd)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while invoke(addr, "warm").await.is_err() {
        if Instant::now() > deadline {
            bail!("sylph dev did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((server, addr, data))
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let root = std::env::temp_dir().join(format!("sylph-bench-isolation-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut results: Vec<(&'static str, [Vec<Duration>; 3])> = Vec::new();
    for setup in SETUPS {
        eprintln!("{} ...", setup.label);
        let dir = root.join(if setup.outbound { "outbound" } else { "closed" });
        write_service(&dir, &o, setup.outbound)?;
        let (server, addr, data) = start(&o, &dir, setup.flags).await?;
        let mut rust = Vec::with_capacity(o.samples);
        let mut node = Vec::with_capacity(o.samples);
        for i in 0..o.samples {
            // Let pre-started runtimes refill between cold starts, as between arrivals.
            tokio::time::sleep(Duration::from_millis(300)).await;
            rust.push(invoke(addr, &format!("rust{i}")).await?);
            tokio::time::sleep(Duration::from_millis(300)).await;
            node.push(invoke(addr, &format!("node{i}")).await?);
        }
        invoke(addr, "get").await?;
        let mut get = Vec::with_capacity(o.warm_calls);
        for _ in 0..o.warm_calls {
            get.push(invoke(addr, "get").await?);
        }
        drop(server);
        let _ = std::fs::remove_dir_all(&data);
        results.push((setup.label, [rust, node, get]));
    }
    let _ = std::fs::remove_dir_all(&root);

    println!();
    println!(
        "Request arrival to response (Lambda Invoke API); cold starts: {} samples, warm: {} calls",
        o.samples, o.warm_calls
    );
    println!();
    println!("| set-up | Rust cold p50 / p99 ms | Node.js pre-started cold p50 / p99 ms | warm GetItem call p50 / p99 ms | warm p50 vs no isolation |");
    println!("|---|---:|---:|---:|---:|");
    let baseline = results
        .last()
        .map(|(_, r)| percentile(&mut r[2].clone(), 0.5))
        .unwrap_or(1.0);
    for (label, mut r) in results {
        let cells: Vec<String> = r
            .iter_mut()
            .map(|v| format!("{:.1} / {:.1}", percentile(v, 0.5), percentile(v, 0.99)))
            .collect();
        let ratio = percentile(&mut r[2], 0.5) / baseline;
        println!("| {label} | {} | {} | {} | {ratio:.2}x |", cells[0], cells[1], cells[2]);
    }
    Ok(())
}
