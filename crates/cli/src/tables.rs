//! `sylph tables`: the table API alone, for people who just want a local DynamoDB.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use sylph_gateway::Gateway;
use sylph_invoker::{Pool, PoolConfig};
use sylph_runtime::{BoxFuture, Instance, InstanceConfig, Runtime, StartError};
use tokio::net::TcpListener;

use crate::dev::{open_tables, shutdown_signal};

#[derive(Args)]
pub struct TablesArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, short = 'p', default_value_t = 8000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Where table data is kept.
    #[arg(long, default_value = ".sylph/tables")]
    data_dir: PathBuf,
    /// The region reported in table ARNs.
    #[arg(long, short = 'r', default_value = "us-east-1")]
    region: String,
    /// Start with empty tables.
    #[arg(long)]
    reset: bool,
    /// Also answer requests whose Host header is this name (repeatable), e.g. the name other
    /// containers use for this one. By default only the listening address and loopback names
    /// are answered, which stops DNS rebinding.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
}

pub async fn run(args: TablesArgs) -> anyhow::Result<ExitCode> {
    let tables = open_tables(&args.data_dir, &args.region, args.reset)?;
    tables.spawn_ttl_reaper();
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    // No functions: an empty service behind the same gateway.
    let service = sylph_model::Service {
        name: "tables".into(),
        stage: "local".into(),
        region: args.region.clone(),
        root: std::env::current_dir()?,
        functions: Vec::new(),
        http_api_cors: None,
        resources: serde_json::Value::Null,
        custom: serde_json::Value::Null,
        package_patterns: Vec::new(),
        tables: Vec::new(),
        queues: Vec::new(),
        api_keys: Vec::new(),
        usage_plans: Vec::new(),
        node_build: None,
        python_requirements: None,
        websocket_route_selection: Vec::new(),
    };
    let sink: Arc<dyn sylph_telemetry::LogSink> = Arc::new(sylph_telemetry::NullSink);
    let pool = Pool::new(&service, Arc::new(NoFunctions), sink, PoolConfig::default());
    let gateway = Gateway::new(&service, pool, Some(sylph_gateway::TableApi::Local(tables)), None, None);
    println!("sylph tables: DynamoDB API, data in {}", args.data_dir.display());
    if !addr.ip().is_loopback() {
        println!(
            "warning: listening on {}: the table API is open to the network, without authentication",
            addr.ip()
        );
    }
    sylph_gateway::raise_open_file_limit();
    println!("listening on http://{addr}");
    let hosts = sylph_gateway::HostPolicy::new(addr.ip(), &args.allow_hosts);
    sylph_gateway::serve(
        listener,
        gateway,
        sylph_gateway::ConnectionLimits::default(),
        hosts,
        None,
        shutdown_signal(),
    )
    .await;
    Ok(ExitCode::SUCCESS)
}

/// `sylph tables` serves no functions: a runtime that starts nothing (and so creates no
/// instance groups or namespaces on the host).
struct NoFunctions;

impl Runtime for NoFunctions {
    fn start(&self, config: Arc<InstanceConfig>) -> BoxFuture<'static, Result<Box<dyn Instance>, StartError>> {
        let function = config.function.name.clone();
        Box::pin(async move {
            Err(StartError::NotFound {
                function,
                what: "a runtime".into(),
                help: "`sylph tables` serves tables only; run functions with `sylph dev`".into(),
            })
        })
    }
}
