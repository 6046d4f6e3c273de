//! The one wasmtime engine of the process, its linker, and compiled components.
//!
//! One engine serves every WebAssembly function of every service: compiled code and the
//! pooling allocator's slots are per engine. It is configured for serving: asynchronous calls
//! (a guest that waits on I/O releases its thread), epoch interruption (a guest that computes
//! yields its thread every tick and can be stopped), and, where the host allows the address
//! space it reserves, the pooling allocator with copy-on-write memory images, so that an
//! instance costs a few microseconds to create.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::state::State;

/// How often the epoch advances: the longest a computing guest keeps a thread before it
/// yields, and the granularity of timeouts inside a guest.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Instances alive at once in the pooling allocator (idle warm ones included), across every
/// function. Past it an instance cannot start until one is dropped.
const POOLED_INSTANCES: u32 = 1000;

/// The largest linear memory a guest may have: wasm32's 4 GiB. Each function's memorySize is
/// its own, lower, limit (a store limiter).
const MAX_MEMORY: usize = 4 << 30;

pub struct Host {
    pub engine: Engine,
    pub linker: Linker<State>,
    /// How instances are allocated, for the start-up line.
    pub allocation: String,
}

/// The process's engine, made on first use. An error says why WebAssembly cannot run here.
pub fn host() -> Result<&'static Host, String> {
    static HOST: OnceLock<Result<Host, String>> = OnceLock::new();
    HOST.get_or_init(|| {
        let (engine, allocation) = match Engine::new(&config(true)) {
            Ok(engine) => (
                engine,
                "the pooling allocator with copy-on-write memory images".to_owned(),
            ),
            // Reserving the pool's address space can be refused (a `ulimit -v`, a 32-bit
            // host): instances are then allocated one by one, still with memory images.
            Err(why) => (
                Engine::new(&config(false)).map_err(|e| format!("wasmtime cannot start: {e}"))?,
                format!("on-demand allocation (the pooling allocator is unavailable: {why})"),
            ),
        };
        let mut linker = Linker::new(&engine);
        // The whole of WASI 0.2's command world, so that components built with a language's
        // standard library link; what they may touch is the context's to grant: no preopened
        // folders, no sockets, no name lookups (`state.rs`).
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| e.to_string())?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| e.to_string())?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("sylph-wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| format!("cannot start the epoch thread: {e}"))?;
        Ok(Host {
            engine,
            linker,
            allocation,
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn config(pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    config.memory_init_cow(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOLED_INSTANCES);
        // A component made by a language toolchain holds a few core instances (the program,
        // WASI's adapter, shims), each with at most a memory and a table or two.
        pool.total_core_instances(POOLED_INSTANCES * 4);
        pool.total_memories(POOLED_INSTANCES * 2);
        pool.total_tables(POOLED_INSTANCES * 4);
        pool.total_stacks(POOLED_INSTANCES);
        pool.max_memory_size(MAX_MEMORY);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// A component ready to instantiate, with what identifies the file it came from.
pub struct Prepared {
    pub pre: ProxyPre<State>,
    /// Whether it was compiled now, or read from the compiled-code cache.
    pub compiled: bool,
    /// How long compiling or reading it took.
    pub took: std::time::Duration,
}

type Cell = Arc<tokio::sync::OnceCell<Arc<Prepared>>>;

/// Components by file (path, size and modification time: a rebuilt file is a new version) and
/// by content (the functions of a deployed version each have their own copy of one component),
/// each compiled once however many functions, instances and requests ask for it at once.
#[derive(Default)]
pub struct Components {
    by_file: Mutex<HashMap<(PathBuf, u64, SystemTime), Cell>>,
    by_content: Mutex<HashMap<[u8; 32], Cell>>,
}

impl Components {
    /// The prepared component of `path`: from memory, else from the compiled-code cache in
    /// `cache`, else compiled now (on the blocking pool: it takes milliseconds to seconds)
    /// and written to the cache for the next start.
    pub async fn get(&self, path: &Path, cache: &Path) -> Result<Arc<Prepared>, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let key = (
            path.to_path_buf(),
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let cell = {
            let mut by_file = self.by_file.lock().unwrap_or_else(|e| e.into_inner());
            // A rebuilt file replaces its older versions: their code is not needed again,
            // unless another file has the same content or an instance still runs it.
            let before = by_file.len();
            by_file.retain(|(p, len, modified), _| p != path || (*len, *modified) == (key.1, key.2));
            if by_file.len() != before {
                let mut by_content = self.by_content.lock().unwrap_or_else(|e| e.into_inner());
                by_content.retain(|_, c| c.get().is_none_or(|p| Arc::strong_count(p) > 1));
            }
            by_file.entry(key).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let read = path.to_path_buf();
            let bytes = tokio::task::spawn_blocking(move || std::fs::read(&read))
                .await
                .map_err(|e| format!("reading the component failed: {e}"))?
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            let same_content = {
                let mut by_content = self.by_content.lock().unwrap_or_else(|e| e.into_inner());
                by_content.entry(digest).or_default().clone()
            };
            same_content
                .get_or_try_init(|| {
                    let (path, cache) = (path.to_path_buf(), cache.to_path_buf());
                    async move {
                        tokio::task::spawn_blocking(move || prepare(&path, &bytes, &digest, &cache))
                            .await
                            .map_err(|e| format!("compiling the component failed: {e}"))?
                    }
                })
                .await
                .cloned()
        })
        .await
        .cloned()
    }
}

fn prepare(path: &Path, bytes: &[u8], digest: &[u8; 32], cache: &Path) -> Result<Arc<Prepared>, String> {
    let began = std::time::Instant::now();
    let host = host()?;
    let cached = cache.join(cache_name(&host.engine, digest));
    // SAFETY: the file was written by `Component::serialize` of this same engine configuration
    // (its name carries the engine's compatibility hash) into Sylph's own cache folder;
    // wasmtime checks its header and refuses a file of another version or configuration.
    let from_cache = cached
        .is_file()
        .then(|| unsafe { Component::deserialize_file(&host.engine, &cached) }.ok())
        .flatten();
    let (component, compiled) = match from_cache {
        Some(c) => (c, false),
        None => {
            let component = Component::from_binary(&host.engine, bytes).map_err(|e| {
                format!(
                    "{} is not a WebAssembly component wasmtime can compile: {e:#}",
                    path.display()
                )
            })?;
            // Best effort: a cache that cannot be written costs the next start a compile.
            if let Ok(serialized) = component.serialize() {
                let _ = write_atomically(&cached, &serialized);
            }
            (component, true)
        }
    };
    let instance_pre = host.linker.instantiate_pre(&component).map_err(|e| {
        format!(
            "{} cannot be linked: it imports something outside WASI 0.2 and wasi:http: {e:#}",
            path.display()
        )
    })?;
    let pre = ProxyPre::new(instance_pre).map_err(|e| {
        format!(
            "{} does not export wasi:http/incoming-handler (the wasi:http/proxy world): {e:#}",
            path.display()
        )
    })?;
    Ok(Arc::new(Prepared {
        pre,
        compiled,
        took: began.elapsed(),
    }))
}

/// `<sha-256 of the component>-<engine compatibility hash>.cwasm`.
fn cache_name(engine: &Engine, digest: &[u8; 32]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}-{:016x}.cwasm", hasher.finish())
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Two compiles of one component (two paths, two requests) never share a temporary file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}
