//! The commands that manage services on a `sylph server`: `config credentials`, `keys`,
//! `deploy`, `info`, `invoke`, `rollback`, `alias`, `remove`. Glue: they read the manifest,
//! package, and call the admin API; the server does the work.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use clap::{Args, Subcommand};
use sylph_control::api;
use sylph_control::package::FileEntry;

use crate::client::{Client, ServerOptions};
use crate::ServiceArgs;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Save a server's URL and a key as a profile, for every later command.
    Credentials {
        #[arg(long)]
        server: String,
        /// ID:SECRET, as the server or `sylph keys create` printed it.
        #[arg(long)]
        key: String,
        #[arg(long, default_value = "default")]
        profile: String,
        /// A CA certificate (PEM) to trust for this https:// server.
        #[arg(long)]
        ca: Option<std::path::PathBuf>,
    },
}

pub fn config(cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Credentials {
            server,
            key,
            profile,
            ca,
        } => {
            if sylph_control::keys::split_token(&key).is_none() {
                bail!("--key must be ID:SECRET");
            }
            let path = crate::client::write_profile(&profile, &server, &key, ca.as_deref())?;
            println!("saved profile {profile} ({server}) in {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make a key; its secret is shown once.
    Create {
        /// What it is for.
        #[arg(long)]
        name: String,
        /// A service it may deploy, manage and call (repeatable; none: every service).
        #[arg(long = "service")]
        services: Vec<String>,
        /// It may also manage keys.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        server: ServerOptions,
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        server: ServerOptions,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: it is refused everywhere from now on.
    Revoke {
        id: String,
        #[command(flatten)]
        server: ServerOptions,
    },
}

pub async fn keys(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Create {
            name,
            services,
            admin,
            server,
            json,
        } => {
            let client = Client::from_options(&server)?;
            let made: api::CreatedKey = client
                .json(
                    "POST",
                    "/_sylph/admin/keys",
                    Some(&api::CreateKey { name, services, admin }),
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&made)?);
            } else {
                println!("key {} made (its secret is shown only now):", made.id);
                println!();
                println!("  sylph:   --key {}:{}", made.id, made.secret);
                println!(
                    "  AWS SDKs: AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}",
                    made.id, made.secret
                );
            }
        }
        KeysCommand::List { server, json } => {
            let client = Client::from_options(&server)?;
            let keys: Vec<sylph_control::keys::Key> = client.json("GET", "/_sylph/admin/keys", None::<&()>).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                for k in keys {
                    let scope = match &k.scope {
                        sylph_control::keys::Scope::All => "all services".to_owned(),
                        sylph_control::keys::Scope::Services(s) => s.join(", "),
                    };
                    let state = if k.revoked.is_some() { "revoked" } else { "live" };
                    let admin = if k.admin { ", admin" } else { "" };
                    println!("{}  {:<16} {state}{admin}  {scope}", k.id, k.name);
                }
            }
        }
        KeysCommand::Revoke { id, server } => {
            let client = Client::from_options(&server)?;
            let k: sylph_control::keys::Key = client
                .json("DELETE", &format!("/_sylph/admin/keys/{id}"), None::<&()>)
                .await?;
            println!("key {} ({}) revoked", k.id, k.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct DeployArgs {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    server: ServerOptions,
    #[arg(long)]
    json: bool,
}

/// Progress on stderr: one line rewritten in place on a terminal, a line per step otherwise.
struct Progress {
    tty: bool,
}

impl Progress {
    fn show(&self, what: &str, done: u64, total: u64, unit: &str) {
        if self.tty {
            let width = 24usize;
            let filled = (done * width as u64).checked_div(total).unwrap_or(width as u64) as usize;
            eprint!(
                "\r{what:<11} [{}{}] {done}/{total} {unit}   ",
                "#".repeat(filled),
                " ".repeat(width - filled.min(width))
            );
            if done == total {
                eprintln!();
            }
        } else if done == total {
            eprintln!("{what} {done}/{total} {unit}");
        }
    }
}

pub async fn deploy(args: DeployArgs, extra: HashMap<String, String>) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let client = Client::from_options(&args.server)?;
    let loaded = crate::options::load_service(&args.service, &extra)?;
    let mut service = loaded.service;
    for notice in &loaded.notices {
        eprintln!("notice: {notice}");
    }
    let rust = crate::watch::is_rust_service(&service);
    if rust {
        crate::watch::build_rust(&mut service)?;
    }
    crate::maven::build_java_if_stale(&service)?;
    // Built handlers live under .esbuild/.build, which is packaged like any other folder.
    crate::bundle::build_node(&mut service)?;
    let progress = Progress {
        tty: std::io::stderr().is_terminal(),
    };
    let root = service.root.clone();
    let mut patterns = service.package_patterns.clone();
    if rust {
        // The build folder is not code: the binaries are added below.
        patterns.insert(0, "!target/**".to_owned());
    }
    let listed = sylph_control::package::list(&root, &patterns)?;
    // Artifacts (a `provided` function's binary) go into the package at a path of their own.
    let mut extra_files = Vec::new();
    for f in &mut service.functions {
        let Some(artifact) = f.artifact.clone() else { continue };
        let artifact = if artifact.is_absolute() {
            artifact
        } else {
            root.join(artifact)
        };
        match artifact.strip_prefix(&root) {
            Ok(rel) if !rust || !rel.starts_with("target") => f.artifact = Some(rel.to_owned()),
            _ => {
                if !artifact.is_file() {
                    bail!(
                        "functions.{}: its artifact {} is not a file (a folder outside the service is not supported)",
                        f.key,
                        artifact.display()
                    );
                }
                let rel = format!(".sylph-artifacts/{}/bootstrap", f.key);
                extra_files.push((artifact.clone(), rel.clone()));
                f.artifact = Some(rel.into());
            }
        }
    }
    // Layers travel inside the code, as paths relative to it.
    for f in &mut service.functions {
        for layer in &mut f.layers {
            match layer.strip_prefix(&root) {
                Ok(rel) => *layer = rel.to_owned(),
                Err(_) => bail!(
                    "functions.{}: layer folder {} is outside the service, so it cannot be deployed",
                    f.key,
                    layer.display()
                ),
            }
        }
    }
    let mut sources: Vec<(std::path::PathBuf, String, bool)> = listed
        .iter()
        .map(|l| (l.absolute.clone(), l.relative.clone(), l.executable))
        .collect();
    sources.extend(extra_files.into_iter().map(|(abs, rel)| (abs, rel, true)));
    let total_files = sources.len() as u64;
    let mut files = Vec::with_capacity(sources.len());
    let mut by_hash: HashMap<String, std::path::PathBuf> = HashMap::new();
    let mut bytes = 0u64;
    for (i, (abs, rel, executable)) in sources.iter().enumerate() {
        let hash = sylph_control::blobs::hash_file(abs).with_context(|| format!("cannot read {}", abs.display()))?;
        let size = std::fs::metadata(abs)?.len();
        bytes += size;
        by_hash.entry(hash.clone()).or_insert_with(|| abs.clone());
        files.push(FileEntry {
            path: rel.clone(),
            hash,
            size,
            executable: *executable,
        });
        progress.show("packaging", i as u64 + 1, total_files, "files");
    }
    if bytes > sylph_control::package::MAX_UNZIPPED_BYTES {
        bail!("{}", sylph_control::package::PackageError::TooLarge { size: bytes });
    }
    let missing: api::MissingBlobs = client
        .json(
            "POST",
            "/_sylph/admin/blobs/missing",
            Some(&api::MissingBlobs {
                hashes: by_hash.keys().cloned().collect(),
            }),
        )
        .await?;
    let to_send = missing.hashes.len() as u64;
    let mut sent_bytes = 0u64;
    for (i, hash) in missing.hashes.iter().enumerate() {
        let Some(path) = by_hash.get(hash) else {
            bail!("the server asked for a file this package does not have");
        };
        let content = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        sent_bytes += content.len() as u64;
        let (status, answer) = client
            .call(
                "PUT",
                &format!("/_sylph/admin/blobs/{hash}"),
                Bytes::from(content),
                "application/octet-stream",
            )
            .await?;
        if status != 200 {
            bail!(
                "uploading {} failed ({status}): {}; the running version is untouched",
                path.display(),
                String::from_utf8_lossy(&answer)
            );
        }
        progress.show("uploading", i as u64 + 1, to_send, "files");
    }
    if to_send == 0 {
        eprintln!("uploading: nothing changed since the server last saw these files");
    }
    let name = service.name.clone();
    let stage = service.stage.clone();
    service.root = std::path::PathBuf::new();
    let info: api::ServiceInfo = client
        .json(
            "POST",
            &format!("/_sylph/admin/services/{name}/{stage}/deploy"),
            Some(&api::DeployRequest { service, files }),
        )
        .await
        .map_err(|e| anyhow::anyhow!("deploy failed, the running version is untouched: {e}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "✔ Service deployed to {} as version {} ({:.1}s; {} of {} files uploaded, {} KB)",
        client.server,
        info.version,
        started.elapsed().as_secs_f64(),
        to_send,
        by_hash.len(),
        sent_bytes / 1024
    );
    println!();
    print_info(&info);
    if let Some(live) = info
        .aliases
        .iter()
        .find(|a| a.name == "live" && a.version != info.version)
    {
        println!();
        println!(
            "note: alias live still sends the service's traffic to version {}; `sylph alias set live --version {} --weight {}=0.1` starts a canary, `sylph alias set live --version {}` switches all of it",
            live.version, live.version, info.version, info.version
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_info(info: &api::ServiceInfo) {
    println!("service: {}", info.name);
    println!("stage: {}", info.stage);
    println!("region: {}", info.region);
    println!("version: {} (versions: {:?})", info.version, info.versions);
    println!("api id: {}", info.api_id);
    println!("endpoints:");
    for r in &info.routes {
        println!("  {:<7} - {}  ({})", r.method, r.url, r.function);
    }
    println!("  (also at {}/…)", info.endpoints[0]);
    println!("functions:");
    for f in &info.functions {
        println!(
            "  {}: {} ({}, {} MB, {} s)",
            f.key, f.name, f.runtime, f.memory_mb, f.timeout_secs
        );
    }
    if !info.tables.is_empty() {
        println!("tables: {}", info.tables.join(", "));
    }
    for a in &info.aliases {
        match a.additional {
            Some((v, w)) => println!(
                "alias {}: version {} ({:.0}% to version {v})",
                a.name,
                a.version,
                w * 100.0
            ),
            None => println!("alias {}: version {}", a.name, a.version),
        }
    }
}

/// Which service a command acts on: the manifest's name and stage, or `--name`/`--stage`.
#[derive(Args, Debug, Clone)]
pub struct Target {
    #[command(flatten)]
    service: ServiceArgs,
    /// The service's name (default: `service:` of serverless.yml in this folder).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    server: ServerOptions,
}

impl Target {
    fn resolve(&self, extra: &HashMap<String, String>) -> anyhow::Result<(Client, String, String)> {
        let client = Client::from_options(&self.server)?;
        if let Some(name) = &self.name {
            let stage = self.service.stage.clone().unwrap_or_else(|| "dev".to_owned());
            return Ok((client, name.clone(), stage));
        }
        let loaded = crate::options::load_service(&self.service, extra)
            .context("cannot tell which service (pass --name NAME --stage STAGE, or run in the service's folder)")?;
        Ok((client, loaded.service.name, loaded.service.stage))
    }
}

#[derive(Args)]
pub struct InfoArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long)]
    json: bool,
}

pub async fn info(args: InfoArgs, extra: HashMap<String, String>) -> anyhow::Result<ExitCode> {
    let (client, name, stage) = args.target.resolve(&extra)?;
    let info: api::ServiceInfo = client
        .json("GET", &format!("/_sylph/admin/services/{name}/{stage}"), None::<&()>)
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print_info(&info);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct RemoteInvokeArgs {
    /// The function (its key under `functions:`, or its deployed name).
    #[arg(long, short = 'f')]
    function: Option<String>,
    /// The event, as JSON.
    #[arg(long, short = 'd')]
    data: Option<String>,
    /// A file holding the event.
    #[arg(long, short = 'p')]
    path: Option<std::path::PathBuf>,
    /// Print the invocation's log (START … REPORT) too.
    #[arg(long, short = 'l')]
    log: bool,
    /// `RequestResponse` (default) or `Event` (queued; answers at once).
    #[arg(long = "type", short = 't')]
    invocation_type: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

pub async fn invoke(args: RemoteInvokeArgs, extra: HashMap<String, String>) -> anyhow::Result<ExitCode> {
    let Some(function) = args.function.clone() else {
        bail!("which function? pass -f FUNCTION (or use `sylph invoke local` to run it here)");
    };
    let payload = match (&args.data, &args.path) {
        (Some(d), _) => d.clone(),
        (None, Some(p)) => std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        (None, None) => "{}".to_owned(),
    };
    if serde_json::from_str::<serde_json::Value>(&payload).is_err() {
        bail!("the event is not JSON");
    }
    let (client, name, stage) = args.target.resolve(&extra)?;
    let answer: api::InvokeResponse = client
        .json(
            "POST",
            &format!("/_sylph/admin/services/{name}/{stage}/invoke"),
            Some(&api::InvokeRequest {
                function,
                payload,
                invocation_type: args.invocation_type.clone(),
            }),
        )
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        if args.log && !answer.log.is_empty() {
            eprint!("{}", answer.log);
        }
        if answer.status == 202 {
            println!("queued (Event invocation)");
        } else {
            match serde_json::from_str::<serde_json::Value>(&answer.payload) {
                Ok(v) => println!("{}", serde_json::to_string_pretty(&v)?),
                Err(_) => println!("{}", answer.payload),
            }
        }
    }
    Ok(if answer.function_error.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Args)]
pub struct RollbackArgs {
    /// The version to serve (default: the one before the serving version).
    #[arg(long)]
    version: Option<u32>,
    #[command(flatten)]
    target: Target,
    #[arg(long)]
    json: bool,
}

pub async fn rollback(args: RollbackArgs, extra: HashMap<String, String>) -> anyhow::Result<ExitCode> {
    let (client, name, stage) = args.target.resolve(&extra)?;
    let info: api::ServiceInfo = client
        .json(
            "POST",
            &format!("/_sylph/admin/services/{name}/{stage}/rollback"),
            Some(&api::RollbackRequest { version: args.version }),
        )
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("{name} (stage {stage}) now serves version {}", info.version);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long)]
    json: bool,
}

pub async fn remove(args: RemoveArgs, extra: HashMap<String, String>) -> anyhow::Result<ExitCode> {
    let (client, name, stage) = args.target.resolve(&extra)?;
    let answer: serde_json::Value = client
        .json("DELETE", &format!("/_sylph/admin/services/{name}/{stage}"), None::<&()>)
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        for line in answer["removed"].as_array().into_iter().flatten() {
            println!("{}", line.as_str().unwrap_or(""));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum AliasCommand {
    /// Point an alias at a version, optionally sending a share of its traffic to another
    /// (`--weight 8=0.1`: 10% to version 8). The alias `live`, once set, is what the
    /// service's HTTP routes and unqualified invocations follow: a canary deploy.
    Set {
        /// The alias (`live` steers the service's traffic).
        alias: String,
        #[arg(long)]
        version: u32,
        /// VERSION=SHARE, the share between 0 and 1.
        #[arg(long)]
        weight: Option<String>,
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        json: bool,
    },
}

pub async fn alias(cmd: AliasCommand, extra: HashMap<String, String>) -> anyhow::Result<ExitCode> {
    let AliasCommand::Set {
        alias,
        version,
        weight,
        target,
        json,
    } = cmd;
    let additional = match weight {
        None => None,
        Some(w) => {
            let parsed = w
                .split_once('=')
                .and_then(|(v, share)| Some((v.trim().parse::<u32>().ok()?, share.trim().parse::<f64>().ok()?)));
            match parsed {
                Some(p) => Some(p),
                None => bail!("--weight must be VERSION=SHARE, like 8=0.1"),
            }
        }
    };
    let (client, name, stage) = target.resolve(&extra)?;
    let info: api::ServiceInfo = client
        .json(
            "PUT",
            &format!("/_sylph/admin/services/{name}/{stage}/aliases/{alias}"),
            Some(&api::AliasRequest { version, additional }),
        )
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        match additional {
            Some((v, w)) => println!(
                "alias {alias} of {name} (stage {stage}): version {version}, {:.1}% to version {v}",
                w * 100.0
            ),
            None => println!("alias {alias} of {name} (stage {stage}): version {version}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `10m`, `1h`, `30s`, `2d` ago, or Unix milliseconds: the start of a window, in Unix ms.
fn parse_start_time(text: &str) -> anyhow::Result<u64> {
    let now = sylph_telemetry::unix_ms();
    let text = text.trim();
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let Some(unit_at) = text.char_indices().last().map(|(i, _)| i) else {
        bail!("--startTime is empty: use 30s, 10m, 1h, 2d, or Unix milliseconds");
    };
    let (number, unit) = text.split_at(unit_at);
    let n: u64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("--startTime {text:?}: use 30s, 10m, 1h, 2d, or Unix milliseconds"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => bail!("--startTime {text:?}: use 30s, 10m, 1h, 2d, or Unix milliseconds"),
    };
    Ok(now.saturating_sub(secs.saturating_mul(1000)))
}

#[derive(Args)]
pub struct LogsArgs {
    /// The function (its key under `functions:`, or its deployed name).
    #[arg(long, short = 'f')]
    function: String,
    /// Keep printing new lines as they come.
    #[arg(long, short = 't')]
    tail: bool,
    /// Lines from this long ago on (30s, 10m, 1h, 2d) or since Unix ms. Default: 10m.
    #[arg(long = "startTime")]
    start_time: Option<String>,
    /// Only lines containing this text (or of this request id).
    #[arg(long)]
    filter: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

pub async fn logs(args: LogsArgs, extra: HashMap<String, String>) -> anyhow::Result<ExitCode> {
    let (client, name, stage) = args.target.resolve(&extra)?;
    let mut since = parse_start_time(args.start_time.as_deref().unwrap_or("10m"))?;
    let mut printed_at_since: Vec<api::LogLine> = Vec::new();
    loop {
        let mut path = format!(
            "/_sylph/admin/services/{name}/{stage}/logs?function={}&since={since}",
            percent_encoding::utf8_percent_encode(&args.function, percent_encoding::NON_ALPHANUMERIC)
        );
        if let Some(f) = &args.filter {
            path.push_str(&format!(
                "&filter={}",
                percent_encoding::utf8_percent_encode(f, percent_encoding::NON_ALPHANUMERIC)
            ));
        }
        let answer: api::LogsResponse = client.json("GET", &path, None::<&()>).await?;
        let fresh: Vec<api::LogLine> = answer
            .lines
            .into_iter()
            .filter(|l| !printed_at_since.contains(l))
            .collect();
        for line in &fresh {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"time_ms": line.time_ms, "request_id": line.request_id, "text": line.text})
                );
            } else {
                let time = sylph_telemetry::UtcTime::from_system(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(line.time_ms),
                );
                println!("{}\t{}", time.iso8601(), line.text);
            }
        }
        if !args.tail {
            return Ok(ExitCode::SUCCESS);
        }
        // Continue from the newest line seen; lines of that same millisecond are remembered
        // so that none is printed twice.
        if let Some(last) = fresh.last() {
            if last.time_ms != since {
                printed_at_since.clear();
            }
            since = last.time_ms;
            printed_at_since.extend(fresh.into_iter().filter(|l| l.time_ms == since));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[derive(Args)]
pub struct MetricsArgs {
    /// One function (default: every function of the service).
    #[arg(long, short = 'f')]
    function: Option<String>,
    /// The window: from this long ago (30s, 10m, 1h; the server keeps 6 hours). Default: 1h.
    #[arg(long = "startTime")]
    start_time: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

pub async fn metrics(args: MetricsArgs, extra: HashMap<String, String>) -> anyhow::Result<ExitCode> {
    let (client, name, stage) = args.target.resolve(&extra)?;
    let since = parse_start_time(args.start_time.as_deref().unwrap_or("1h"))?;
    let mut path = format!("/_sylph/admin/services/{name}/{stage}/metrics?since={since}");
    if let Some(f) = &args.function {
        path.push_str(&format!(
            "&function={}",
            percent_encoding::utf8_percent_encode(f, percent_encoding::NON_ALPHANUMERIC)
        ));
    }
    let answer: api::MetricsResponse = client.json("GET", &path, None::<&()>).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"));
    println!(
        "{:<16} {:>11} {:>7} {:>9} {:>11} {:>10} {:>10} {:>11}",
        "function", "invocations", "errors", "throttles", "cold starts", "p50", "p99", "concurrency"
    );
    for f in &answer.functions {
        println!(
            "{:<16} {:>11} {:>7} {:>9} {:>11} {:>10} {:>10} {:>11}",
            f.function,
            f.invocations,
            f.errors,
            f.throttles,
            f.cold_starts,
            ms(f.p50_ms),
            ms(f.p99_ms),
            f.max_concurrency
        );
    }
    Ok(ExitCode::SUCCESS)
}
