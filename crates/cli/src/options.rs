//! Loading the service with the options the user gave, and where Sylph keeps its files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use sylph_manifest::{Context, Loaded};

use crate::ServiceArgs;

/// Every long flag of `command` and its subcommands: what Sylph itself understands. Any other
/// `--name value` becomes `${opt:name}`, as the Serverless Framework allows.
pub fn known_flags(command: &clap::Command) -> Vec<String> {
    let mut out: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    out.extend(["help".to_owned(), "version".to_owned(), "contextPath".to_owned()]);
    for sub in command.get_subcommands() {
        out.extend(known_flags(sub));
    }
    out.sort();
    out.dedup();
    out
}

/// Take unknown `--name value` / `--name=value` flags (not in `known`) out of `args`.
pub fn split_extra_options(args: Vec<String>, known: &[String]) -> (Vec<String>, HashMap<String, String>) {
    let mut kept = Vec::with_capacity(args.len());
    let mut extra = HashMap::new();
    let mut iter = args.into_iter().peekable();
    while let Some(arg) = iter.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            kept.push(arg);
            continue;
        };
        let (name, inline_value) = match flag.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (flag.to_owned(), None),
        };
        if name.is_empty() || known.contains(&name) {
            kept.push(arg);
            continue;
        }
        let value = match inline_value {
            Some(v) => v,
            None => match iter.peek() {
                Some(next) if !next.starts_with('-') => iter.next().unwrap_or_default(),
                _ => "true".to_owned(),
            },
        };
        extra.insert(name, value);
    }
    (kept, extra)
}

/// Find and load `serverless.yml` with the CLI options and the process environment.
pub fn load_service(args: &ServiceArgs, extra: &HashMap<String, String>) -> anyhow::Result<Loaded> {
    let path = match &args.config {
        Some(p) => p.clone(),
        None => find_manifest(Path::new("."))?,
    };
    let path = if path.is_dir() { find_manifest(&path)? } else { path };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let service_dir = dir
        .canonicalize()
        .with_context(|| format!("cannot open {}", dir.display()))?;
    let mut options = extra.clone();
    if let Some(s) = &args.stage {
        options.insert("stage".into(), s.clone());
    }
    if let Some(r) = &args.region {
        options.insert("region".into(), r.clone());
    }
    let params = sylph_manifest::Params::load(args.params_file.as_deref(), &service_dir, &args.params)?;
    // `.env.<stage>` then `.env`, as the Framework loads them: they never override the real
    // environment, and the first file to set a variable wins.
    let stage = options.get("stage").map_or("dev", String::as_str);
    let mut dotenv: Vec<(String, String)> = Vec::new();
    for name in [format!(".env.{stage}"), ".env".to_owned()] {
        if let Ok(text) = std::fs::read_to_string(service_dir.join(&name)) {
            for (key, value) in parse_dotenv(&text) {
                if !dotenv.iter().any(|(k, _)| *k == key) {
                    dotenv.push((key, value));
                }
            }
        }
    }
    let mut env: HashMap<String, String> = std::env::vars().collect();
    for (key, value) in &dotenv {
        env.entry(key.clone()).or_insert_with(|| value.clone());
    }
    let ctx = Context {
        options,
        env,
        service_dir,
        params,
        dotenv,
    };
    Ok(sylph_manifest::load(&path, &ctx)?)
}

/// `KEY=value` lines of a `.env` file: `#` comments, `export ` prefixes, and values in single
/// or double quotes (double quotes with `\n` escapes) as dotenv reads them.
fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let value = value.trim();
        let value = if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            inner.replace("\\n", "\n")
        } else if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            inner.to_owned()
        } else {
            // An unquoted value ends at a comment.
            value.split(" #").next().unwrap_or("").trim().to_owned()
        };
        out.push((key.to_owned(), value));
    }
    out
}

fn find_manifest(dir: &Path) -> anyhow::Result<PathBuf> {
    for name in ["serverless.yml", "serverless.yaml", "serverless.json"] {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "no serverless.yml in {}; run sylph in the service's folder or pass --config PATH",
        dir.canonicalize().unwrap_or_else(|_| dir.to_owned()).display()
    )
}

/// Where `scripts/install` puts the AWS SDKs that functions get without bundling them
/// (`$SYLPH_HOME`, default `~/.local/share/sylph`).
pub fn sylph_home() -> PathBuf {
    std::env::var_os("SYLPH_HOME").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(".local/share/sylph")
    })
}

/// The process runtime, with the runtime clients Sylph writes and those `scripts/install-runtimes`
/// installed (AWS's Java runtime client).
pub fn process_runtime(
    sink: std::sync::Arc<dyn sylph_telemetry::LogSink>,
    base_env: Vec<(String, String)>,
    sandbox: Option<sylph_runtime::sandbox::Sandbox>,
) -> anyhow::Result<sylph_runtime::ProcessRuntime> {
    let runtime = sylph_runtime::ProcessRuntime::new(sink, runtime_dir(), base_env, sandbox)
        .context("cannot write the runtime clients")?;
    runtime.use_java_runtime(sylph_home().join("runtime/java"));
    Ok(runtime)
}

/// The environment every function gets so that the AWS SDKs reach this server by themselves.
pub fn function_endpoint_env(base_url: &str) -> Vec<(String, String)> {
    let home = sylph_home();
    let mut env = vec![
        ("AWS_ENDPOINT_URL".to_owned(), base_url.to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), base_url.to_owned()),
        ("AWS_ENDPOINT_URL_LAMBDA".to_owned(), base_url.to_owned()),
        // aws-sdk v2 opens a new connection per call unless told otherwise; AWS recommends this
        // setting for every Lambda function using it (v3 keeps connections alive by default).
        ("AWS_NODEJS_CONNECTION_REUSE_ENABLED".to_owned(), "1".to_owned()),
        // aws-sdk v2 prints an end-of-support notice when loaded; in a local log it is noise.
        (
            "AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE".to_owned(),
            "1".to_owned(),
        ),
    ];
    // Lambda's runtimes ship the AWS SDKs on NODE_PATH / sys.path; so does Sylph.
    let node = home.join("runtime/node/node_modules");
    if node.is_dir() {
        env.push(("NODE_PATH".to_owned(), node.to_string_lossy().into_owned()));
    }
    let python = home.join("runtime/python");
    if python.is_dir() {
        env.push(("PYTHONPATH".to_owned(), python.to_string_lossy().into_owned()));
    }
    env
}

/// The sandbox for functions of the service in `root`; an error (with what to do) where the
/// host cannot sandbox, unless running unsandboxed was asked for. `say` gets the line saying
/// which.
pub fn sandbox(
    unsandboxed: bool,
    service: &sylph_model::Service,
    say: &mut dyn FnMut(String),
) -> anyhow::Result<Option<sylph_runtime::sandbox::Sandbox>> {
    if unsandboxed {
        say("sandbox: off (--unsandboxed): functions run with the same access as sylph".to_owned());
        return Ok(None);
    }
    // The service's folder is shared by every instance: pre-started runtimes become one of
    // its functions without a new sandbox.
    let shared = vec![service.root.clone(), runtime_dir(), sylph_home().join("runtime")];
    let hidden = sylph_runtime::sandbox::unpackaged(&service.root, &service.package_patterns);
    match sylph_runtime::sandbox::Sandbox::detect(shared, hidden, &runtime_dir()) {
        Ok(s) => {
            say(format!("sandbox: {}", s.describe()));
            Ok(Some(s))
        }
        Err(why) => bail!(
            "cannot sandbox functions on this host: {why}\n  help: install bubblewrap (apt-get install bubblewrap), or pass --unsandboxed to run functions without isolation"
        ),
    }
}

/// Start the guard that stops whatever Sylph's instance groups still hold once this process
/// ends, however it ends (see `sylph_runtime::limits::guard_main`). Its pipe is kept open for
/// the life of this process.
pub fn start_guard() {
    use std::os::unix::process::CommandExt as _;
    // Every group folder this process may create, before any exists: a kill at any moment of
    // start-up leaves nothing behind.
    let dirs = sylph_runtime::limits::planned_group_dirs();
    if dirs.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    // Close-on-exec on our end: no instance may hold it open, or the guard would wait on them.
    let Ok((read, write)) = std::io::pipe() else { return };
    let started = std::process::Command::new(exe)
        .arg(GUARD_COMMAND)
        .args(&dirs)
        .stdin(read)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn();
    match started {
        // Never closed while this process lives; it closes when the process ends.
        Ok(_) => std::mem::forget(write),
        Err(e) => tracing::warn!("cannot start the clean-up guard: {e}"),
    }
}

/// The hidden command the guard runs as.
pub const GUARD_COMMAND: &str = "__guard";

/// Where the embedded runtime clients are written.
/// Where compiled WebAssembly components are kept between runs (beside the runtime folder).
pub fn wasm_code_cache() -> PathBuf {
    runtime_dir().with_file_name("wasm-code")
}

pub fn runtime_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("sylph")
        .join(format!("runtime-{}", env!("CARGO_PKG_VERSION")))
}

/// Issues instance credentials from the identity registry.
pub struct Issuer(pub std::sync::Arc<sylph_iam::Registry>);

impl sylph_runtime::CredentialIssuer for Issuer {
    fn issue(&self, function: &sylph_model::Function) -> sylph_runtime::InstanceCredentials {
        let issued = self.0.issue(function);
        sylph_runtime::InstanceCredentials {
            access_key_id: issued.access_key_id.clone(),
            secret_access_key: issued.secret_access_key.clone(),
            session_token: issued.session_token.clone(),
            lease: Box::new(issued),
        }
    }
}

/// Whether the service's functions may reach the outside world (`custom.sylph.outbound`,
/// default true, as on Lambda).
pub fn outbound_allowed(service: &sylph_model::Service) -> bool {
    service
        .custom
        .get("sylph")
        .and_then(|s| s.get("outbound"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(true)
}

/// The file a running `sylph dev` keeps in its table folder: which process serves those tables,
/// on which port. Removed when it stops; one whose process is gone is ignored.
pub struct DevMarker(PathBuf);

const DEV_MARKER: &str = "sylph-dev.json";

impl DevMarker {
    pub fn write(data_dir: &Path, port: u16) -> Option<DevMarker> {
        let path = data_dir.join(DEV_MARKER);
        let text = serde_json::json!({ "pid": std::process::id(), "port": port }).to_string();
        std::fs::write(&path, text).ok()?;
        Some(DevMarker(path))
    }

    /// The port of the `sylph dev` serving the tables in `data_dir`, if one is running.
    pub fn running(data_dir: &Path) -> Option<(u32, u16)> {
        let text = std::fs::read_to_string(data_dir.join(DEV_MARKER)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let pid = u32::try_from(v.get("pid")?.as_u64()?).ok()?;
        let port = u16::try_from(v.get("port")?.as_u64()?).ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let is_sylph = cmdline.windows(5).any(|w| w == b"sylph") && cmdline.windows(3).any(|w| w == b"dev");
        is_sylph.then_some((pid, port))
    }
}

impl Drop for DevMarker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn unknown_flags_become_options() {
        let args = [
            "sylph",
            "dev",
            "--port",
            "0",
            "--table-suffix",
            "x",
            "--flag",
            "--stage=qa",
            "--color=red",
        ]
        .map(String::from)
        .to_vec();
        let known = known_flags(&crate::Cli::command());
        assert!(known.iter().any(|k| k == "server") && known.iter().any(|k| k == "keep-warm"));
        let (kept, extra) = split_extra_options(args, &known);
        assert_eq!(kept, ["sylph", "dev", "--port", "0", "--stage=qa"]);
        assert_eq!(extra.get("table-suffix").map(String::as_str), Some("x"));
        assert_eq!(extra.get("flag").map(String::as_str), Some("true"));
        assert_eq!(extra.get("color").map(String::as_str), Some("red"));
    }
}

#[cfg(test)]
mod dotenv_tests {
    use super::parse_dotenv;

    #[test]
    fn dotenv_lines_parse_as_dotenv_reads_them() {
        let text = "# comment\nA=1\nexport B = two words \nC=\"line\\nbreak\"\nD='single # kept'\nE=x # note\nbad line\n=no key\n";
        let got = parse_dotenv(text);
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "line\nbreak"),
            ("D", "single # kept"),
            ("E", "x"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }
}
