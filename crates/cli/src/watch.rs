//! Code reload for `sylph dev`: notice changed function code and make new instances load it,
//! building Rust (`provided.*`) functions with cargo first, as cargo-lambda would, and Java
//! functions with Maven (see `maven.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _};
use sylph_invoker::Pool;
use sylph_model::{Runtime, Service};

/// Folders that are never function code (dependencies, build output, Sylph's own data).
const SKIP: &[&str] = &[
    "node_modules",
    "target",
    ".sylph",
    ".git",
    ".serverless",
    "__pycache__",
    ".esbuild",
];

/// Path → (modified time, size) for every file under `root` worth watching.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (SystemTime, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if !SKIP.contains(&name.as_ref()) {
                    stack.push(entry.path());
                }
            } else if meta.is_file() {
                out.insert(
                    entry.path(),
                    (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len()),
                );
            }
        }
    }
    out
}

/// Whether the service has Rust functions that Sylph builds itself: `provided.*` binaries, or
/// `wasi-http` components named by crate rather than by a `.wasm` path.
pub fn is_rust_service(service: &Service) -> bool {
    service.root.join("Cargo.toml").is_file()
        && service
            .functions
            .iter()
            .any(|f| matches!(f.runtime, Runtime::Provided(_)) || builds_component(f))
}

/// A `wasi-http` function whose handler names the crate that builds its component (a handler
/// ending in `.wasm` is a component built some other way).
fn builds_component(f: &sylph_model::Function) -> bool {
    matches!(f.runtime, Runtime::Wasm(_)) && !f.handler.ends_with(".wasm")
}

/// Build the service's Rust functions: `provided.*` ones with `cargo build --release`, each
/// pointed at the binary named like its handler (or the only binary, or one named
/// `bootstrap`), and `wasi-http` ones with `cargo build --release --target wasm32-wasip2`,
/// each pointed at the component of the library named like its handler (or the only one).
pub fn build_rust(service: &mut Service) -> anyhow::Result<()> {
    if service.functions.iter().any(builds_component) {
        build_components(service)?;
    }
    if !service
        .functions
        .iter()
        .any(|f| matches!(f.runtime, Runtime::Provided(_)))
    {
        return Ok(());
    }
    // On stderr: `sylph invoke local` keeps stdout for the function's result.
    eprintln!(
        "building Rust functions: cargo build --release (in {})",
        service.root.display()
    );
    let mut bins: BTreeMap<String, PathBuf> = BTreeMap::new();
    for msg in cargo_artifacts(&service.root, &["--bins"], "cargo build failed")? {
        if let (Some(exe), Some(name)) = (msg["executable"].as_str(), msg["target"]["name"].as_str()) {
            bins.insert(name.to_owned(), PathBuf::from(exe));
        }
    }
    for f in service
        .functions
        .iter_mut()
        .filter(|f| matches!(f.runtime, Runtime::Provided(_)))
    {
        let found = bins
            .get(&f.handler)
            .or_else(|| bins.get(&f.key))
            .or_else(|| bins.get("bootstrap"))
            .or_else(|| if bins.len() == 1 { bins.values().next() } else { None });
        match found {
            Some(exe) => f.artifact = Some(exe.clone()),
            None => bail!(
                "function {}: no binary named `{}` (or `{}`) was built; binaries: {}",
                f.key,
                f.handler,
                f.key,
                bins.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }
    Ok(())
}

/// `cargo build --release ARGS` in `root`: the `compiler-artifact` messages it printed.
fn cargo_artifacts(root: &Path, args: &[&str], failed: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut cargo = Command::new("cargo");
    cargo
        .args(["build", "--release", "--message-format=json-render-diagnostics"])
        .args(args)
        .current_dir(root)
        .stderr(Stdio::inherit());
    die_with_sylph(&mut cargo);
    let output = cargo.output().context("cannot run cargo")?;
    if !output.status.success() {
        bail!("{failed} in {}", root.display());
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .collect())
}

/// The Rust target WebAssembly components are built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

fn build_components(service: &mut Service) -> anyhow::Result<()> {
    eprintln!(
        "building WebAssembly components: cargo build --release --target {WASM_TARGET} (in {})",
        service.root.display()
    );
    let failed = format!(
        "cargo build --target {WASM_TARGET} failed (is the target installed? `rustup target add {WASM_TARGET}`)"
    );
    let mut components: BTreeMap<String, PathBuf> = BTreeMap::new();
    for msg in cargo_artifacts(&service.root, &["--lib", "--target", WASM_TARGET], &failed)? {
        let (Some(name), Some(files)) = (msg["target"]["name"].as_str(), msg["filenames"].as_array()) else {
            continue;
        };
        if let Some(wasm) = files.iter().filter_map(|f| f.as_str()).find(|f| f.ends_with(".wasm")) {
            components.insert(name.replace('-', "_"), PathBuf::from(wasm));
        }
    }
    for f in service.functions.iter_mut().filter(|f| builds_component(f)) {
        let found = components.get(&f.handler.replace('-', "_")).or_else(|| {
            if components.len() == 1 {
                components.values().next()
            } else {
                None
            }
        });
        match found {
            Some(wasm) => f.artifact = Some(wasm.clone()),
            None => bail!(
                "function {}: no component of a library named `{}` was built (a `cdylib` crate); components: {}",
                f.key,
                f.handler,
                components.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }
    Ok(())
}

/// A build must not outlive a Sylph stopped during it (SIGTERM lets cargo and Maven stop their
/// jobs); the parent-death signal belongs to the calling thread, which waits for the build.
pub fn die_with_sylph(build: &mut Command) {
    let sylph_pid = std::process::id() as libc::pid_t;
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the parent.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(build, move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            if libc::getppid() != sylph_pid {
                return Err(std::io::Error::other("sylph has exited"));
            }
            Ok(())
        });
    }
}

/// Poll the service folder; on a change, rebuild if needed and reload the pool.
pub fn spawn(mut service: Service, pool: Arc<Pool>, node_builder: Option<crate::bundle::NodeBuilder>) {
    let rust = is_rust_service(&service);
    let java = crate::maven::is_java_service(&service);
    tokio::task::spawn_blocking(move || {
        let mut last = snapshot(&service.root);
        loop {
            std::thread::sleep(Duration::from_millis(400));
            let now = snapshot(&service.root);
            if now == last {
                continue;
            }
            let changed: Vec<&PathBuf> = now
                .iter()
                .filter(|(p, v)| last.get(*p) != Some(*v))
                .map(|(p, _)| p)
                .chain(last.keys().filter(|p| !now.contains_key(*p)))
                .collect();
            let names: Vec<String> = changed
                .iter()
                .take(3)
                .map(|p| p.strip_prefix(&service.root).unwrap_or(p).display().to_string())
                .collect();
            println!("code changed ({}); new instances will load it", names.join(", "));
            let needs_build = rust
                && changed.iter().any(|p| {
                    p.extension().is_some_and(|e| e == "rs")
                        || p.file_name().is_some_and(|n| n == "Cargo.toml" || n == "Cargo.lock")
                });
            if needs_build {
                if let Err(e) = build_rust(&mut service) {
                    println!("rebuild failed, keeping the running code: {e:#}");
                    last = now;
                    continue;
                }
            }
            // Everything under src/ goes into the package (resources too), as maven.rs counts it.
            let needs_java_build = java
                && changed
                    .iter()
                    .any(|p| p.starts_with(service.root.join("src")) || p.file_name().is_some_and(|n| n == "pom.xml"));
            if needs_java_build {
                if let Err(e) = crate::maven::build_java(&service) {
                    println!("rebuild failed, keeping the running code: {e:#}");
                    last = now;
                    continue;
                }
            }
            if let Some(builder) = &node_builder {
                println!("rebuilding the Node.js handlers with esbuild");
                if let Err(e) = builder.rebuild() {
                    println!("rebuild failed, keeping the running code: {e:#}");
                    last = now;
                    continue;
                }
            }
            pool.reload();
            last = snapshot(&service.root);
        }
    });
}
