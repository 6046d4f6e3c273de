//! `sylph invoke local`: one invocation through the same runtime path as `sylph dev`.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use clap::Args;
use sylph_gateway::{Gateway, TableApi};
use sylph_invoker::{InvokeRequest, InvokeResult, Invoker, Pool, PoolConfig};
use sylph_telemetry::TerminalSink;

use crate::options::load_service;
use crate::ServiceArgs;

#[derive(Args)]
pub struct InvokeLocalArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// The function's key under `functions:` (or its deployed name).
    #[arg(long, short = 'f')]
    function: String,
    /// The event, as JSON (text that is not JSON is passed as a string); `-` reads it from
    /// standard input, as does piped input when neither -d nor -p is given.
    #[arg(long, short = 'd', conflicts_with = "path")]
    data: Option<String>,
    /// A file holding the event as JSON.
    #[arg(long, short = 'p')]
    path: Option<PathBuf>,
    /// Extra environment for the function, as KEY=VALUE (repeatable).
    #[arg(long, short = 'e', value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Pass the data as a raw string, even if it is valid JSON.
    #[arg(long)]
    raw: bool,
    /// Run the function without the sandbox.
    #[arg(long)]
    unsandboxed: bool,
    /// A JSON file whose content the function gets as its context's client context.
    #[arg(long = "contextPath", short = 'x', value_name = "FILE")]
    context_path: Option<PathBuf>,
    /// The service's tables (default: .sylph/tables in the service's folder, as sylph dev).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub async fn run(args: InvokeLocalArgs, extra: HashMap<String, String>) -> anyhow::Result<ExitCode> {
    let loaded = load_service(&args.service, &extra)?;
    let service = loaded.service;
    for notice in &loaded.notices {
        eprintln!("notice: {notice}");
    }
    if service.function(&args.function).is_none() {
        let known: Vec<&str> = service.functions.iter().map(|f| f.key.as_str()).collect();
        bail!(
            "function `{}` is not in this service; functions: {}",
            args.function,
            known.join(", ")
        );
    }
    let stdin_piped = !std::io::IsTerminal::is_terminal(&std::io::stdin());
    let raw_text = match (&args.data, &args.path) {
        (Some(d), _) if d == "-" => Some(read_stdin()?),
        (Some(d), _) => Some(d.clone()),
        (None, Some(p)) => Some(std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?),
        (None, None) if stdin_piped => Some(read_stdin()?).filter(|t| !t.trim().is_empty()),
        (None, None) => None,
    };
    let payload = match raw_text {
        None => Bytes::from_static(b"{}"),
        Some(text) => {
            let parsed = serde_json::from_str::<serde_json::Value>(&text).ok();
            match (args.raw, parsed) {
                (false, Some(v)) => Bytes::from(serde_json::to_vec(&v)?),
                (false, None) if args.path.is_some() => {
                    bail!(
                        "{} is not valid JSON",
                        args.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
                    )
                }
                _ => Bytes::from(serde_json::to_vec(&serde_json::Value::String(text))?),
            }
        }
    };
    let mut extra_env = Vec::with_capacity(args.env.len());
    for kv in &args.env {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("-e {kv}: expected KEY=VALUE");
        };
        extra_env.push((k.to_owned(), v.to_owned()));
    }

    let client_context = match &args.context_path {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            serde_json::from_str::<serde_json::Value>(&text)
                .with_context(|| format!("{} is not valid JSON", p.display()))?;
            Some(text)
        }
        None => None,
    };
    let mut service = service;
    if crate::watch::is_rust_service(&service) {
        crate::watch::build_rust(&mut service)?;
    }
    crate::maven::build_java_if_stale(&service)?;
    crate::bundle::build_node(&mut service)?;
    crate::bundle::install_python_requirements(&mut service)?;

    // The function reaches tables as under sylph dev: those of the sylph dev running for this
    // service if there is one, otherwise the service's stored tables, served for this invocation.
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| service.root.join(".sylph/tables"));
    let sandbox = crate::options::sandbox(args.unsandboxed, &service, &mut |line| eprintln!("{line}"))?;
    let isolated = sandbox.is_some() && sylph_runtime::netns::probe().is_ok();
    let running_dev = crate::options::DevMarker::running(&data_dir);
    let tables = match running_dev {
        Some((pid, port)) => {
            eprintln!("tables: those of the sylph dev running for this service (pid {pid}, http://127.0.0.1:{port})");
            Some(TableApi::Relay(std::net::SocketAddr::from(([127, 0, 0, 1], port))))
        }
        None if service.tables.is_empty() => {
            eprintln!("tables: none (the service declares none under resources:)");
            None
        }
        None => {
            let tables = open_tables_waiting(&data_dir, &service.region).await?;
            for t in &service.tables {
                tables.provision(&t.name, &t.properties).await.map_err(|e| {
                    anyhow::anyhow!(
                        "resources.Resources.{}: cannot create table {}: {e}",
                        t.logical_id,
                        t.name
                    )
                })?;
            }
            eprintln!(
                "tables: {} (no sylph dev is running for this service)",
                data_dir.display()
            );
            Some(TableApi::Local(tables))
        }
    };
    // Functions call the table and Invoke APIs through a gateway of this process, which checks
    // their identity and IAM statements: in their own network namespace at 127.0.0.1:3000 (any
    // port would do there), without one on a free port of the host's loopback.
    let host_listener = if isolated {
        None
    } else {
        Some(tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?)
    };
    let api_port = match &host_listener {
        Some(l) => l.local_addr()?.port(),
        None => 3000,
    };
    let mut base_env = crate::options::function_endpoint_env(&format!("http://127.0.0.1:{api_port}"));
    base_env.push(("AWS_REGION".to_owned(), service.region.clone()));
    base_env.push(("AWS_DEFAULT_REGION".to_owned(), service.region.clone()));

    let sink: Arc<dyn sylph_telemetry::LogSink> = Arc::new(TerminalSink { stderr: true });
    crate::options::start_guard();
    let wasm = crate::host::wasm_runtime(&service, sink.clone(), &base_env, &mut |line| eprintln!("{line}"))?;
    let runtime = crate::options::process_runtime(sink.clone(), base_env, sandbox)?;
    if runtime.network_isolated() {
        runtime.serve_sylph_api_on(api_port);
    }
    let identities = sylph_iam::Registry::new();
    runtime.set_credential_issuer(Arc::new(crate::options::Issuer(identities.clone())));
    if let Some(wasm) = &wasm {
        wasm.set_credential_issuer(Arc::new(crate::options::Issuer(identities.clone())));
    }
    if runtime.network_isolated() && crate::options::outbound_allowed(&service) {
        if let Err(why) = runtime.allow_outbound() {
            eprintln!("network: no outbound traffic: {why}");
        }
    }
    let pool = Pool::new(
        &service,
        Arc::new(crate::host::Runtimes {
            process: runtime.clone(),
            wasm: wasm.clone(),
        }),
        sink,
        PoolConfig {
            extra_env,
            ..PoolConfig::default()
        },
    );
    let authorizer = Arc::new(sylph_iam::Authorizer::new(identities, false));
    let gateway = Gateway::new(&service, pool.clone(), tables, None, Some(authorizer));
    let api = gateway.clone();
    runtime.set_sylph_api_handler(Arc::new(move |stream, access_key, permit| {
        sylph_gateway::spawn_instance_connection(api.clone(), stream, access_key, permit)
    }));
    if let Some(wasm) = &wasm {
        let api = gateway.clone();
        wasm.set_sylph_api(Arc::new(move |stream, access_key| {
            sylph_gateway::spawn_instance_stream(api.clone(), stream, access_key)
        }));
    }
    if let Some(listener) = host_listener {
        let hosts = sylph_gateway::HostPolicy::new(std::net::IpAddr::from([127, 0, 0, 1]), &[]);
        tokio::spawn(sylph_gateway::serve(
            listener,
            gateway,
            sylph_gateway::ConnectionLimits::default(),
            hosts,
            None,
            std::future::pending(),
        ));
    }
    let response = pool
        .invoke(
            &args.function,
            InvokeRequest {
                payload,
                client_context,
                ..Default::default()
            },
        )
        .await
        .map_err(anyhow::Error::from)?;
    pool.shutdown();
    let (body, failed) = match &response.result {
        InvokeResult::Success(b) => (b, false),
        InvokeResult::Error { body, .. } => (body, true),
    };
    let pretty = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let mut out = std::io::stdout().lock();
    writeln!(out, "{pretty}")?;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn read_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
        .context("cannot read the event from standard input")?;
    Ok(text)
}

/// The table store, waiting a little if another `sylph invoke local` of the same service holds
/// it (the store takes one process at a time; an invocation holds it only while it runs).
async fn open_tables_waiting(dir: &std::path::Path, region: &str) -> anyhow::Result<sylph_tables::Tables> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match crate::dev::open_tables(dir, region, false) {
            Ok(t) => return Ok(t),
            Err(e) if std::time::Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}
