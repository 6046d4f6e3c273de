//! `sylph`: the command line. Glue only — argument parsing, wiring the crates together and
//! printing; the work happens in the library crates.

mod access;
mod bundle;
mod client;
mod dev;
mod events;
mod host;
mod invoke_local;
mod maven;
mod options;
mod remote;
mod server;
mod tables;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory as _, Parser, Subcommand};

// The request path allocates many small, short-lived buffers (HTTP heads, JSON, items) on
// several threads; mimalloc's thread-local free lists beat glibc's malloc there (measured with
// bench/tables.sh and bench/http-hello.sh: see the tables issue's closing note).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sylph",
    version,
    about = "Run Serverless Framework services the way AWS Lambda runs them: locally (dev) or on your own platform (server, deploy)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the service in this folder: its HTTP events and the Lambda Invoke API.
    Dev(dev::DevArgs),
    /// Serve only the DynamoDB-compatible table API (a local DynamoDB).
    Tables(tables::TablesArgs),
    /// Invoke a deployed function (`-f F`), or run one here (`invoke local`).
    #[command(args_conflicts_with_subcommands = true)]
    Invoke {
        #[command(subcommand)]
        how: Option<InvokeCommand>,
        #[command(flatten)]
        remote: remote::RemoteInvokeArgs,
    },
    /// Run the platform: a long-running server that services are deployed to.
    Server(server::ServerArgs),
    /// Deploy the service in this folder to a sylph server (a new version, switched to atomically).
    Deploy(remote::DeployArgs),
    /// Show a deployed service: endpoints, functions, versions, tables.
    Info(remote::InfoArgs),
    /// Serve an earlier version of a deployed service again.
    Rollback(remote::RollbackArgs),
    /// Remove a deployed service (and its tables, unless DeletionPolicy: Retain).
    Remove(remote::RemoveArgs),
    /// Show a deployed function's logs (START/END/REPORT and its output).
    Logs(remote::LogsArgs),
    /// Show a deployed service's invocations, errors, throttles, cold starts, durations.
    Metrics(remote::MetricsArgs),
    /// Manage a deployed service's aliases (weighted: canary deploys).
    Alias {
        #[command(subcommand)]
        command: remote::AliasCommand,
    },
    /// Manage the keys of a sylph server.
    Keys {
        #[command(subcommand)]
        command: remote::KeysCommand,
    },
    /// Set up this machine's access to a sylph server.
    Config {
        #[command(subcommand)]
        command: remote::ConfigCommand,
    },
}

#[derive(Subcommand)]
enum InvokeCommand {
    /// Run one invocation of a function through the same runtime path as `sylph dev`.
    Local(invoke_local::InvokeLocalArgs),
}

/// Options every command that reads `serverless.yml` takes.
#[derive(Args, Debug, Clone)]
pub struct ServiceArgs {
    /// Path to serverless.yml (default: ./serverless.yml, .yaml or .json).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// The stage, for ${opt:stage} and ${sls:stage} (default: provider.stage or dev).
    #[arg(long, short = 's')]
    pub stage: Option<String>,
    /// The region, for ${opt:region} and ${aws:region} (default: provider.region or us-east-1).
    #[arg(long, short = 'r')]
    pub region: Option<String>,
    /// A value for a variable AWS resolves when deploying (repeatable): NAME=VALUE for
    /// ${param:NAME}, or SOURCE:ADDRESS=VALUE (ssm:/path=…, cf:stack.Output=…, ImportValue:name=…).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// The parameters file (default: sylph.params.yml beside serverless.yml, if there is one).
    #[arg(long, value_name = "FILE")]
    pub params_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some(options::GUARD_COMMAND) {
        let dirs: Vec<PathBuf> = raw[2..].iter().map(PathBuf::from).collect();
        sylph_runtime::limits::guard_main(&dirs);
        return ExitCode::SUCCESS;
    }
    let (args, extra_options) = options::split_extra_options(raw, &options::known_flags(&Cli::command()));
    let cli = Cli::parse_from(args);
    let level = match std::env::var("SYLPH_LOG").as_deref() {
        Ok("trace") => tracing::Level::TRACE,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("warn") => tracing::Level::WARN,
        Ok("error") => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        // Colour codes only for a terminal, not in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Dev(args) => dev::run(args, extra_options).await,
            Command::Tables(args) => tables::run(args).await,
            Command::Invoke {
                how: Some(InvokeCommand::Local(args)),
                ..
            } => invoke_local::run(args, extra_options).await,
            Command::Invoke { how: None, remote } => remote::invoke(remote, extra_options).await,
            Command::Server(args) => server::run(args).await,
            Command::Deploy(args) => remote::deploy(args, extra_options).await,
            Command::Info(args) => remote::info(args, extra_options).await,
            Command::Rollback(args) => remote::rollback(args, extra_options).await,
            Command::Remove(args) => remote::remove(args, extra_options).await,
            Command::Keys { command } => remote::keys(command).await,
            Command::Alias { command } => remote::alias(command, extra_options).await,
            Command::Logs(args) => remote::logs(args, extra_options).await,
            Command::Metrics(args) => remote::metrics(args, extra_options).await,
            Command::Config { command } => remote::config(command),
        }
    });
    // Dropping the runtime drops every in-flight invocation, which stops its instance.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
