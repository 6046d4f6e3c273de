//! `sylph dev`: serve one service from its folder.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use sylph_model::{ApiKind, RouteAuthorizer};
use sylph_telemetry::TerminalSink;
use tokio::net::TcpListener;

use crate::options::load_service;
use crate::ServiceArgs;

#[derive(Args)]
pub struct DevArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// Port to listen on (0 picks a free one).
    #[arg(long, short = 'p', default_value_t = 3000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Seconds an idle function instance is kept warm before it is stopped.
    #[arg(long, default_value_t = 300)]
    keep_warm: u64,
    /// Do not print function output and START/END/REPORT lines.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Where table data and queued asynchronous events are kept (default: .sylph/tables in
    /// the service's folder).
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
    /// Start with empty tables and no queued events: delete what earlier runs kept.
    #[arg(long)]
    reset: bool,
    /// In-flight invocations (and so instances) across all functions, like Lambda's account
    /// concurrency limit. Default: twice the CPU count — on one machine, more simultaneous
    /// instances than that only add contention (see the benchmarks).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Seconds an invocation waits for a free slot under a concurrency limit before it is
    /// throttled (TooManyRequestsException).
    #[arg(long, default_value_t = 5)]
    queue_timeout: u64,
    /// Runtime processes per language (Node.js, Python) started ahead of demand, so a cold
    /// start only loads the function's code (0 turns this off). After a burst of cold starts
    /// the pool grows to the burst's size for a minute (at most 8). They stop after
    /// --keep-warm seconds without traffic, like idle instances.
    #[arg(long, default_value_t = 2)]
    prewarm: usize,
    /// Run functions without the sandbox (only where the host cannot build one).
    #[arg(long)]
    unsandboxed: bool,
    /// Do not watch the service folder for code changes.
    #[arg(long)]
    no_reload: bool,
    /// Also answer requests whose Host header is this name (repeatable). By default only the
    /// listening address and loopback names are answered, which stops DNS rebinding.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
    /// Connections open at once; past it new clients get 503. Default: half the open-file limit.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers (and then its body) before its
    /// connection is closed (or answered 408).
    #[arg(long, default_value_t = 10)]
    header_timeout: u64,
    /// Seconds a connection may stay idle (no request in flight) before it is closed.
    #[arg(long, default_value_t = 60)]
    idle_timeout: u64,
    /// Refuse calls into Sylph from functions whose service declares no IAM statements
    /// (by default they are allowed, with a warning naming what they used).
    #[arg(long)]
    strict_iam: bool,
    /// Run instances in the host's network instead of their own namespaces. Functions can
    /// then reach every service on this machine: for measurements and for hosts that cannot
    /// create network namespaces only.
    #[arg(long)]
    host_network: bool,
    /// Issue no credentials and check no signatures or IAM statements (functions get
    /// placeholder credentials and every call into Sylph is allowed): for measurements only.
    #[arg(long)]
    no_iam: bool,
    /// A JSON object handed to functions as `requestContext.authorizer` on routes whose
    /// authorizer is defined outside this service (an ARN, a user pool), which cannot run here.
    #[arg(long, value_name = "FILE")]
    authorizer_context: Option<std::path::PathBuf>,
    /// A JWKS file (the keys of your identity provider) that JWT and Cognito authorizers
    /// check tokens with, instead of fetching the issuer's keys: for offline use.
    #[arg(long, value_name = "FILE")]
    jwks: Option<std::path::PathBuf>,
    /// The Cognito identity id that `aws_iam` requests signed with your own keys stand for
    /// (`requestContext.identity.cognitoIdentityId`), as an identity pool's credentials would.
    #[arg(long, value_name = "ID")]
    cognito_identity_id: Option<String>,
    #[command(flatten)]
    events: crate::events::EventArgs,
}

pub async fn run(args: DevArgs, extra: HashMap<String, String>) -> anyhow::Result<ExitCode> {
    let loaded = load_service(&args.service, &extra)?;
    let mut service = loaded.service;
    for notice in &loaded.notices {
        println!("notice: {notice}");
    }
    if crate::watch::is_rust_service(&service) {
        crate::watch::build_rust(&mut service)?;
    }
    crate::maven::build_java_if_stale(&service)?;
    let node_builder = crate::bundle::build_node(&mut service)?;
    crate::bundle::install_python_requirements(&mut service)?;
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    if !addr.ip().is_loopback() {
        println!(
            "warning: listening on {}: every API (functions, tables, Invoke, metrics) is open to the network, without authentication",
            addr.ip()
        );
    }
    sylph_gateway::raise_open_file_limit();

    let sink: Arc<dyn sylph_telemetry::LogSink> = if args.quiet {
        Arc::new(sylph_telemetry::NullSink)
    } else {
        Arc::new(TerminalSink::default())
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| service.root.join(".sylph/tables"));
    let tables = open_tables(&data_dir, &service.region, args.reset)?;
    for t in &service.tables {
        let outcome = tables.provision(&t.name, &t.properties).await.map_err(|e| {
            anyhow::anyhow!(
                "resources.Resources.{}: cannot create table {}: {e}",
                t.logical_id,
                t.name
            )
        })?;
        let what = match outcome {
            sylph_tables::provision::Provisioned::Created => "created",
            sylph_tables::provision::Provisioned::Existing => "kept (existing data)",
        };
        println!("table {} {what}", t.name);
    }
    tables.spawn_ttl_reaper();
    // Lets `sylph invoke local` of the same service use this server's tables.
    let marker = crate::options::DevMarker::write(&data_dir, addr.port());

    let settings = crate::host::HostSettings {
        keep_warm: Duration::from_secs(args.keep_warm.max(1)),
        concurrency: args.concurrency.unwrap_or_else(crate::host::default_concurrency).max(1),
        queue_timeout: Duration::from_secs(args.queue_timeout),
        prewarm: args.prewarm,
        unsandboxed: args.unsandboxed,
        host_network: args.host_network,
        no_iam: args.no_iam,
        strict_iam: args.strict_iam,
        port: addr.port(),
        version: None,
        host_url: crate::host::host_url("http", addr),
    };
    crate::options::start_guard();
    let hosted = crate::host::host_service(&service, tables.clone(), sink, &settings, &mut |line| {
        println!("{line}")
    })?;
    let (pool, gateway) = (hosted.pool.clone(), hosted.gateway.clone());
    let (access, access_lines) = crate::access::settings(
        &service,
        &data_dir,
        args.authorizer_context.as_deref(),
        args.jwks.as_deref(),
        true,
        args.cognito_identity_id.as_deref(),
    )?;
    gateway.set_access(access).map_err(|e| anyhow::anyhow!("--jwks: {e}"))?;
    if !args.no_reload {
        crate::watch::spawn(service.clone(), pool.clone(), node_builder);
    }
    // Event invocations and schedule ticks: kept beside the tables, run through the pool.
    let queue = crate::events::open_queue(
        &data_dir.join("events.redb"),
        Arc::new(DevFunctions(pool.clone())),
        &args.events,
        &service.region,
        settings.concurrency,
    )?;
    gateway.set_event_queue(Arc::new(crate::events::GatewayEvents {
        queue: queue.clone(),
        service: service.name.clone(),
        stage: service.stage.clone(),
        version: None,
    }));
    // Queues: the SQS API on the same port, and the `sqs` events that poll them.
    let queues = sylph_queues::Queues::open(&data_dir.join("queues"), &service.region).with_context(|| {
        format!(
            "cannot open the queue store in {} (is another sylph using it?)",
            data_dir.join("queues").display()
        )
    })?;
    for line in crate::events::provision_queues(&queues, &service).await? {
        println!("{line}");
    }
    gateway.set_queues(queues.clone());
    queue.set_queues(queues.clone());
    let sqs = sylph_events::sqs::SqsSources::new(
        queues.clone(),
        Arc::new(DevFunctions(pool.clone())),
        settings.concurrency,
    );
    let mut source_lines = sqs.set_service(&service, None);
    // Table streams, read in order by `stream` events.
    let streams = sylph_events::streams::StreamSources::new(
        tables,
        Arc::new(DevFunctions(pool.clone())),
        queue.store().clone(),
        Some(queues),
    );
    source_lines.extend(streams.set_service(&service, None));
    gateway.add_metrics(Arc::new(crate::events::SourceMetrics {
        queue: queue.clone(),
        sqs: sqs.clone(),
        streams: streams.clone(),
    }));
    let resumed = queue.resume().context("cannot read the queued events")?;
    if resumed > 0 {
        println!("events: {resumed} asynchronous events accepted before the last stop will run now");
    }
    let scheduler = sylph_events::schedules::Scheduler::new(queue.clone());
    let upcoming = scheduler
        .set_service(&service, None)
        .context("cannot read the schedules' state")?;
    tokio::spawn(scheduler.run());

    println!(
        "sylph dev: service {} (stage {}, region {})",
        service.name, service.stage, service.region
    );
    println!();
    let routes = gateway.router().routes();
    let width = routes
        .iter()
        .map(|r| r.resource.len() + service.stage.len() + 1)
        .max()
        .unwrap_or(0)
        + base_url.len()
        + 2;
    for r in routes {
        let method = r.method.as_deref().unwrap_or("ANY");
        let url = match r.api {
            ApiKind::Rest => format!("{base_url}/{}{}", service.stage, r.resource),
            ApiKind::Http => format!("{base_url}{}", r.resource),
        };
        let function = service
            .functions
            .iter()
            .find(|f| f.name == r.function)
            .map(|f| f.key.as_str())
            .unwrap_or("");
        let mut guards = Vec::new();
        match r.auth.as_ref().map(|a| &a.authorizer) {
            Some(RouteAuthorizer::Function(f)) => guards.push(format!("authorizer {}", f.name)),
            Some(RouteAuthorizer::External { reference }) => {
                guards.push(format!("authorizer {reference} (not run here)"))
            }
            Some(RouteAuthorizer::Iam) => guards.push("aws_iam".to_owned()),
            Some(RouteAuthorizer::Jwt(j)) => guards.push(format!("jwt {}", j.issuer)),
            None => {}
        }
        if r.private {
            guards.push("api key".to_owned());
        }
        if guards.is_empty() {
            println!("  {method:<7} {url:<width$} {function}");
        } else {
            println!("  {method:<7} {url:<width$} {function} [{}]", guards.join(", "));
        }
    }
    for (route, function) in gateway.websocket_routes() {
        let function = service
            .functions
            .iter()
            .find(|f| f.name == function)
            .map(|f| f.key.as_str())
            .unwrap_or("");
        let url = format!("{}/{}", base_url.replacen("http://", "ws://", 1), service.stage);
        println!("  {:<7} {url:<width$} {function} ({route})", "WS");
    }
    println!(
        "  {:<7} {:<width$} Lambda Invoke API",
        "POST",
        format!("{base_url}/2015-03-31/functions/{{name}}/invocations")
    );
    println!(
        "  {:<7} {:<width$} DynamoDB API (X-Amz-Target: DynamoDB_20120810.*)",
        "POST",
        format!("{base_url}/")
    );
    println!(
        "  {:<7} {:<width$} Prometheus metrics",
        "GET",
        format!("{base_url}{}", sylph_gateway::METRICS_PATH)
    );
    crate::events::print_schedules(&upcoming);
    for line in &source_lines {
        println!("  {line}");
    }
    println!(
        "  {:<7} {:<width$} SQS API (X-Amz-Target: AmazonSQS.*; queues at {base_url}/000000000000/{{name}})",
        "POST",
        format!("{base_url}/")
    );
    for line in &access_lines {
        println!("  {line}");
    }
    println!();
    println!("listening on {base_url}");

    let defaults = sylph_gateway::ConnectionLimits::default();
    let limits = sylph_gateway::ConnectionLimits {
        max_connections: args.max_connections.unwrap_or(defaults.max_connections).max(1),
        header_timeout: Duration::from_secs(args.header_timeout.max(1)),
        idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
    };
    let hosts = sylph_gateway::HostPolicy::new(addr.ip(), &args.allow_hosts);
    sylph_gateway::serve(listener, gateway, limits, hosts, None, shutdown_signal()).await;
    println!("shutting down");
    drop(marker);
    hosted.shutdown();
    Ok(ExitCode::SUCCESS)
}

/// `sylph dev`'s one service, for the event sources.
struct DevFunctions(Arc<sylph_invoker::Pool>);

impl sylph_events::Functions for DevFunctions {
    fn find(&self, target: &sylph_events::Target) -> sylph_events::Lookup {
        use sylph_invoker::Invoker as _;
        if self.0.function(&target.function).is_some() {
            sylph_events::Lookup::Found(self.0.clone())
        } else {
            sylph_events::Lookup::Gone
        }
    }
}

/// Open the table store in `dir`, emptied first if `reset`.
pub fn open_tables(dir: &std::path::Path, region: &str, reset: bool) -> anyhow::Result<sylph_tables::Tables> {
    if reset && dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot reset {}", dir.display()))?;
    }
    sylph_tables::Tables::open(dir, region).with_context(|| {
        format!(
            "cannot open the table store in {} (is another sylph using it? stop it, or pass --data-dir)",
            dir.display()
        )
    })
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
