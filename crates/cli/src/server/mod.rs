//! `sylph server`: a long-running provider that services are deployed to. One data folder
//! holds everything it keeps (control store, master key, uploaded code, each version's code
//! folder, tables); a restart or a kill loses no deployed service, version or table item.

mod admin;
mod front;
mod platform;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio::net::TcpListener;

#[derive(Args)]
pub struct ServerArgs {
    /// The folder holding everything the server keeps.
    #[arg(long, default_value = "/var/lib/sylph")]
    data_dir: PathBuf,
    /// Port to listen on (0 picks a free one).
    #[arg(long, short = 'p', default_value_t = 8080)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Deployed APIs answer at `{api-id}.{domain}` (and always at `/apis/{api-id}/`).
    /// `localhost` works with no DNS set-up: browsers and curl resolve `*.localhost` to
    /// loopback.
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// The URL clients use to reach this server, for the endpoints it prints (default: the
    /// listening address).
    #[arg(long)]
    public_url: Option<String>,
    /// Seconds an idle function instance is kept warm before it is stopped.
    #[arg(long, default_value_t = 300)]
    keep_warm: u64,
    /// In-flight invocations per service (default: twice the CPU count).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Seconds an invocation waits for a free slot before it is throttled.
    #[arg(long, default_value_t = 5)]
    queue_timeout: u64,
    /// Runtime processes per language started ahead of demand, per service (0: none).
    #[arg(long, default_value_t = 1)]
    prewarm: usize,
    /// Run functions without the sandbox (only where the host cannot build one).
    #[arg(long)]
    unsandboxed: bool,
    /// Refuse calls into Sylph from functions whose service declares no IAM statements.
    #[arg(long)]
    strict_iam: bool,
    /// Also answer requests whose Host header is this name (repeatable; `*.example.com`
    /// allows every name under it).
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
    /// Connections open at once; past it new clients get 503.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Do not print function output and START/END/REPORT lines.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Log bytes kept per function (MB); the oldest half goes when it is reached.
    #[arg(long, default_value_t = 16)]
    log_retention_mb: u64,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Switch to a new version without first starting as many runtimes as the serving one
    /// has instances (it then meets its traffic with cold starts): for measurements only.
    #[arg(long)]
    no_warm_up: bool,
    /// Seconds to let requests in flight finish after SIGTERM before stopping.
    #[arg(long, default_value_t = 30)]
    drain_timeout: u64,
    #[command(flatten)]
    events: crate::events::EventArgs,
}

pub async fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    let data = args.data_dir.clone();
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create the data folder {}", data.display()))?;
    let store = sylph_control::store::RedbStore::open(&data.join("control.redb")).map_err(|e| {
        anyhow::anyhow!(
            "{e}\n  help: is another sylph server using {}? Stop it, or pass another --data-dir",
            data.display()
        )
    })?;
    let master = sylph_control::keys::MasterKey::load_or_create(&data.join("master.key"))?;
    let blobs = sylph_control::blobs::FsBlobs::open(&data.join("blobs"), &data.join("uploads"))
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", data.join("blobs").display()))?;
    let tables = crate::dev::open_tables(&data.join("tables"), "us-east-1", false)?;
    tables.spawn_ttl_reaper();

    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Arc::new(
            sylph_gateway::Tls::load(cert, key).map_err(|e| anyhow::anyhow!(e))?,
        )),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    let listen_url = format!("{scheme}://{addr}");
    let public_url = args.public_url.clone().unwrap_or_else(|| listen_url.clone());
    sylph_gateway::raise_open_file_limit();
    let logs = sylph_telemetry::logstore::FileLogs::open(
        &data.join("logs"),
        args.log_retention_mb.saturating_mul(1024 * 1024),
    )
    .with_context(|| format!("cannot open {}", data.join("logs").display()))?;
    let settings = crate::host::HostSettings {
        keep_warm: Duration::from_secs(args.keep_warm.max(1)),
        concurrency: args.concurrency.unwrap_or_else(crate::host::default_concurrency).max(1),
        queue_timeout: Duration::from_secs(args.queue_timeout),
        prewarm: args.prewarm,
        unsandboxed: args.unsandboxed,
        host_network: false,
        no_iam: false,
        strict_iam: args.strict_iam,
        port: addr.port(),
        version: None,
        // Functions that share the host's network (no namespaces) call the server itself.
        host_url: crate::host::host_url(scheme, addr),
    };
    crate::options::start_guard();
    let platform = platform::Platform::new(
        data.clone(),
        Arc::new(store),
        Arc::new(blobs),
        master,
        tables,
        settings,
        Arc::new(logs),
        !args.quiet,
        args.domain.to_ascii_lowercase(),
        public_url.clone(),
    )
    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if args.no_warm_up {
        platform.warm_up.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    if let Some((id, secret)) = platform
        .ensure_admin_key()
        .map_err(|e| anyhow::anyhow!("{}", e.message))?
    {
        println!("created the admin key (shown only now; keep it safe):");
        println!();
        println!("  sylph config credentials --server {public_url} --key {id}:{secret}");
        println!();
    }
    // Say once how functions are isolated (every service is run the same way).
    let probe = sylph_runtime::netns::probe();
    match (&probe, args.unsandboxed) {
        (_, true) => println!("sandbox: off (--unsandboxed): functions run with the same access as sylph"),
        (Ok(()), false) => println!("network: each instance has its own network namespace"),
        (Err(why), false) => println!("network: functions share the host's network: {why}"),
    }
    platform.start_events(&args.events)?;
    platform.load_all().await;
    if let Some(events) = platform.events() {
        let resumed = events.queue.resume().context("cannot read the queued events")?;
        if resumed > 0 {
            println!("events: {resumed} asynchronous events accepted before the last stop will run now");
        }
    }
    let sampler = Arc::downgrade(&platform);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(platform::SAMPLE_EVERY);
        loop {
            every.tick().await;
            let Some(platform) = sampler.upgrade() else { break };
            platform.sample_metrics();
        }
    });
    println!("data: {}", data.display());
    println!("admin API, Invoke API, table API: {public_url}");
    println!(
        "APIs: {} and {public_url}/apis/{{api-id}}/",
        platform.host_url("{api-id}")
    );
    println!("listening on {listen_url}");

    // The names clients use: every API under the domain, the domain itself, and the host of
    // --public-url (where `sylph` reaches the admin API).
    let mut names = args.allow_hosts.clone();
    names.push(format!("*.{}", args.domain));
    names.push(args.domain.clone());
    if let Some(host) = public_url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or(rest))
    {
        names.push(host.to_owned());
    }
    let hosts = sylph_gateway::HostPolicy::new(addr.ip(), &names);
    let defaults = sylph_gateway::ConnectionLimits::default();
    let limits = sylph_gateway::ConnectionLimits {
        max_connections: args.max_connections.unwrap_or(defaults.max_connections).max(1),
        ..defaults
    };
    let front = Arc::new(front::Front {
        platform: platform.clone(),
    });
    sylph_gateway::serve(listener, front, limits, hosts, tls, crate::dev::shutdown_signal()).await;
    println!("shutting down: letting requests in flight finish");
    drain(&platform, Duration::from_secs(args.drain_timeout)).await;
    Ok(ExitCode::SUCCESS)
}

/// Wait until no request is running on any service (each holds its version), or `limit`.
async fn drain(platform: &Arc<platform::Platform>, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let busy: usize = platform.all_live().iter().map(|l| l.in_flight()).sum();
        if busy == 0 || tokio::time::Instant::now() >= deadline {
            if busy > 0 {
                println!("{busy} request(s) still running after --drain-timeout; stopping them");
            } else {
                // The last handlers have returned; give their answers a moment to be written.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
