//! `sylph invoke local`: one invocation through the same runtime path as `sylph dev`.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use clap::Args;
use sylph_invoker::{InvokeRequest, InvokeResult, Invoker, Pool, PoolConfig};
use sylph_runtime::ProcessRuntime;
use sylph_telemetry::TerminalSink;

use crate::options::{load_service, runtime_dir};
use crate::ServiceArgs;

#[derive(Args)]
pub struct InvokeLocalArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// The function's key under `functions:` (or its deployed name).
    #[arg(long, short = 'f')]
    function: String,
    /// The event, as JSON (text that is not JSON is passed as a string).
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
    let raw_text = match (&args.data, &args.path) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(p)) => Some(std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?),
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

    let sink: Arc<dyn sylph_telemetry::LogSink> = Arc::new(TerminalSink { stderr: true });
    let sandbox = crate::options::sandbox(args.unsandboxed, &service, true)?;
    let runtime = ProcessRuntime::new(sink.clone(), runtime_dir(), Vec::new(), sandbox)
        .context("cannot write the runtime clients")?;
    crate::options::start_guard(&runtime);
    if runtime.network_isolated() && crate::options::outbound_allowed(&service) {
        if let Err(why) = runtime.allow_outbound() {
            eprintln!("network: no outbound traffic: {why}");
        }
    }
    let pool = Pool::new(
        &service,
        Arc::new(runtime),
        sink,
        PoolConfig {
            extra_env,
            ..PoolConfig::default()
        },
    );
    let response = pool
        .invoke(
            &args.function,
            InvokeRequest {
                payload,
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
