//! `sylph dev`: serve one service from its folder.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use sylph_gateway::Gateway;
use sylph_invoker::{Pool, PoolConfig};
use sylph_model::ApiKind;
use sylph_runtime::ProcessRuntime;
use sylph_telemetry::TerminalSink;
use tokio::net::TcpListener;

use crate::options::{load_service, runtime_dir};
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
}

pub async fn run(args: DevArgs, extra: HashMap<String, String>) -> anyhow::Result<ExitCode> {
    let loaded = load_service(&args.service, &extra)?;
    let service = loaded.service;
    for notice in &loaded.notices {
        println!("notice: {notice}");
    }
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");

    let sink: Arc<dyn sylph_telemetry::LogSink> = if args.quiet {
        Arc::new(sylph_telemetry::NullSink)
    } else {
        Arc::new(TerminalSink::default())
    };
    // Functions that call the Lambda API (to invoke each other) reach this server.
    let base_env = vec![("AWS_ENDPOINT_URL_LAMBDA".to_owned(), base_url.clone())];
    let runtime = ProcessRuntime::new(sink.clone(), runtime_dir(), base_env)
        .context("cannot write the runtime clients")?;
    let pool = Pool::new(
        &service,
        Arc::new(runtime),
        sink,
        PoolConfig { keep_warm: Duration::from_secs(args.keep_warm.max(1)), extra_env: Vec::new() },
    );
    let gateway = Gateway::new(&service, pool.clone());

    println!("sylph dev: service {} (stage {}, region {})", service.name, service.stage, service.region);
    println!();
    let routes = gateway.router().routes();
    let width = routes.iter().map(|r| r.resource.len() + service.stage.len() + 1).max().unwrap_or(0) + base_url.len() + 2;
    for r in routes {
        let method = r.method.as_deref().unwrap_or("ANY");
        let url = match r.api {
            ApiKind::Rest => format!("{base_url}/{}{}", service.stage, r.resource),
            ApiKind::Http => format!("{base_url}{}", r.resource),
        };
        let function = service.functions.iter().find(|f| f.name == r.function).map(|f| f.key.as_str()).unwrap_or("");
        println!("  {method:<7} {url:<width$} {function}");
    }
    println!("  {:<7} {:<width$} Lambda Invoke API", "POST", format!("{base_url}/2015-03-31/functions/{{name}}/invocations"));
    println!();
    println!("listening on {base_url}");

    sylph_gateway::serve(listener, gateway, shutdown_signal()).await;
    println!("shutting down");
    pool.shutdown();
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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
