//! `sylph`: the command line. Glue only — argument parsing, wiring the crates together and
//! printing; the work happens in the library crates.

mod dev;
mod invoke_local;
mod options;
mod tables;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

// The request path allocates many small, short-lived buffers (HTTP heads, JSON, items) on
// several threads; mimalloc's thread-local free lists beat glibc's malloc there (measured with
// bench/tables.sh and bench/http-hello.sh: see the tables issue's closing note).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sylph",
    version,
    about = "Run Serverless Framework services locally, the way AWS Lambda runs them"
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
    /// Invoke a function.
    Invoke {
        #[command(subcommand)]
        how: InvokeCommand,
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
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some(options::GUARD_COMMAND) {
        let dirs: Vec<PathBuf> = raw[2..].iter().map(PathBuf::from).collect();
        sylph_runtime::limits::guard_main(&dirs);
        return ExitCode::SUCCESS;
    }
    let (args, extra_options) = options::split_extra_options(raw);
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
                how: InvokeCommand::Local(args),
            } => invoke_local::run(args, extra_options).await,
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
