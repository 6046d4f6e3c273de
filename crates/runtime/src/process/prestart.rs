//! Runtime processes started ahead of demand: a Node.js or Python runtime that has loaded what
//! every function of its language loads (the AWS SDK), or a JVM that has warmed up AWS's Java
//! runtime client (see `java.rs`), waiting to be told which function it is.
//! A cold start takes one that is ready, so only the function's own code loads. The pool per
//! language is refilled after every cold start, sized to recent bursts, and emptied after the
//! keep-warm window without traffic.

use std::collections::HashMap;
use std::os::fd::AsRawFd as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::spawn::{ChannelAt, ProcessSpec, Spawned};
use super::{Family, Inner, ProcessRuntime};
use crate::frame::Frame;
use crate::netns::RUNTIME_API_ADDR;
use crate::{Instance, InstanceConfig, StartError, StartKind};

/// The bytes of a [`Frame::Ready`]: the only frame a pre-started runtime sends before `Start`.
const READY: [u8; 5] = [1, 0, 0, 0, b'W'];

/// Whether a pre-started runtime has sent its `Ready` frame (preloading finished), without
/// consuming it.
fn preloaded(channel: &std::os::unix::net::UnixStream) -> bool {
    let mut buf = [0u8; READY.len()];
    // SAFETY: a non-blocking peek into our own buffer on a socket we own.
    let n = unsafe {
        libc::recv(
            channel.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n == READY.len() as isize && buf == READY
}

/// Whether a pre-started runtime has finished preloading; consumes its `W` frame if so.
fn preload_done(channel: &mut std::os::unix::net::UnixStream) -> bool {
    let ready = preloaded(channel);
    if ready {
        let mut buf = [0u8; READY.len()];
        let _ = std::io::Read::read_exact(channel, &mut buf);
    }
    ready
}

/// Pre-started runtime processes per language, and how many to keep.
#[derive(Default)]
pub(super) struct WarmPool {
    ready: HashMap<Family, Vec<Spawned>>,
    /// Being started right now, so that a refill never starts more than the target.
    starting: HashMap<Family, usize>,
    /// How many to keep, at least (`--prewarm`).
    target: HashMap<Family, usize>,
    /// Recent demand: cold starts per language, to size the pool for bursts.
    demand: HashMap<Family, Demand>,
    last_used: Option<Instant>,
    /// Start them at normal priority, not nice 19: a new version warming up before it takes
    /// over a service's traffic (see [`ProcessRuntime::warm_up`]).
    foreground: bool,
}

/// The largest burst of cold starts of one language seen lately, so that the pool is refilled
/// to meet the next one: 8 cold starts at once are served by 8 pre-started runtimes the next
/// time. The peak fades after [`Demand::MEMORY`]; the pool never grows past [`MAX_STANDBY`].
#[derive(Default)]
struct Demand {
    arrivals: std::collections::VecDeque<Instant>,
    peak: usize,
    peak_at: Option<Instant>,
}

/// How long a pre-started runtime may take to finish preloading before it is given up: a JVM
/// preloads the service's own package, whose code could hang.
const PRELOAD_LIMIT: Duration = Duration::from_secs(60);

/// The most pre-started runtimes kept per language, whatever the demand: what idle may cost.
const MAX_STANDBY: usize = 8;

impl Demand {
    /// Cold starts this close together count as one burst.
    const BURST: Duration = Duration::from_secs(2);
    /// How long a burst is remembered.
    const MEMORY: Duration = Duration::from_secs(60);

    fn record(&mut self, now: Instant) {
        while self
            .arrivals
            .front()
            .is_some_and(|t| now.duration_since(*t) > Self::BURST)
        {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back(now);
        let burst = self.arrivals.len();
        if burst >= self.peak || self.peak_at.is_none_or(|t| now.duration_since(t) > Self::MEMORY) {
            self.peak = burst;
            self.peak_at = Some(now);
        }
    }

    /// The recent peak, or 0 once it has faded.
    fn recent_peak(&self, now: Instant) -> usize {
        match self.peak_at {
            Some(t) if now.duration_since(t) <= Self::MEMORY => self.peak,
            _ => 0,
        }
    }
}

impl ProcessRuntime {
    /// Keep `count` runtime processes of `family` started ahead of demand, so that a cold start
    /// only loads the function's code. They are stopped after `idle` without use (and started
    /// again on the next cold start), so a quiet service holds no process.
    pub fn prewarm(&self, family: Family, count: usize, idle: Duration) {
        {
            let mut w = self.inner.warm.lock().unwrap_or_else(|e| e.into_inner());
            w.target.insert(family, count);
            // Keep-warm counts from now: without this, a service not called within the first
            // check period (5 s) lost its pre-started runtimes for good.
            w.last_used.get_or_insert_with(Instant::now);
        }
        Inner::replenish(&self.inner, family);
        let weak = Arc::downgrade(&self.inner);
        let period = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(inner) = weak.upgrade() else { break };
                let expired: Vec<Spawned> = {
                    let mut w = inner.warm.lock().unwrap_or_else(|e| e.into_inner());
                    let quiet = w.last_used.is_none_or(|t| t.elapsed() >= idle);
                    if quiet {
                        w.ready.get_mut(&family).map(std::mem::take).unwrap_or_default()
                    } else {
                        Vec::new()
                    }
                };
                drop(expired);
            }
        });
    }

    /// Have `count` runtimes of `family` ready now, started at normal priority (a version
    /// about to take over traffic, which would otherwise meet it with a burst of cold starts).
    /// [`ProcessRuntime::settle`] goes back to the usual pool.
    pub fn warm_up(&self, family: Family, count: usize) {
        {
            let mut w = self.inner.warm.lock().unwrap_or_else(|e| e.into_inner());
            w.target.insert(family, count.min(MAX_STANDBY));
            w.foreground = true;
            w.last_used = Some(Instant::now());
        }
        Inner::replenish(&self.inner, family);
    }

    /// Back to `count` pre-started runtimes of `family`, loaded in the background.
    pub fn settle(&self, family: Family, count: usize) {
        let mut w = self.inner.warm.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(target) = w.target.get_mut(&family) {
            *target = count;
        }
        w.foreground = false;
    }

    /// Pre-started runtimes of `family` that have finished loading.
    pub fn preloaded(&self, family: Family) -> usize {
        let w = self.inner.warm.lock().unwrap_or_else(|e| e.into_inner());
        w.ready.get(&family).map_or(0, |list| {
            list.iter()
                .filter(|s| s.channel.as_ref().is_some_and(preloaded))
                .count()
        })
    }

    /// Stop every pre-started runtime and start no more (a retired version of a service).
    pub fn stop_prewarmed(&self) {
        let stopped = {
            let mut w = self.inner.warm.lock().unwrap_or_else(|e| e.into_inner());
            w.target.clear();
            std::mem::take(&mut w.ready)
        };
        drop(stopped);
    }

    /// Pre-started processes of `family` ready right now.
    pub fn prewarmed(&self, family: Family) -> usize {
        self.inner
            .warm
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ready
            .get(&family)
            .map_or(0, Vec::len)
    }
}

impl Inner {
    /// Make a ready pre-started runtime of the function's language this function: no process
    /// start, and what every function loads (the AWS SDK) is already loaded. `None` when there
    /// is none ready (or the function needs what a pre-started runtime lacks): start anew.
    /// `java_code` is a Java function's unpacked package.
    pub(super) fn start_prewarmed(
        self: &Arc<Self>,
        config: &Arc<InstanceConfig>,
        java_code: Option<&std::path::Path>,
    ) -> Option<Box<dyn Instance>> {
        // Pre-started runtimes have the default /tmp and an empty /opt; a function with another
        // size or with layers starts anew.
        if config.function.ephemeral_mb != crate::sandbox::TMP_MB || !config.function.layers.is_empty() {
            return None;
        }
        let family = Family::of(&config.function.runtime)?;
        // Pre-started runtimes run one interpreter per language (for Java, one JDK and one heap
        // size): only its functions take them.
        let (code, current) = if family == Family::Java {
            if !self.takes_prestarted_jvm(config) {
                return None;
            }
            // The package the pool preloads now (already unpacked, unless just rebuilt).
            (Some(java_code?.to_path_buf()), self.java_prestart_code())
        } else {
            if self.program_for(&config.function.runtime, family).0 != self.family_command(family).0 {
                return None;
            }
            (None, None)
        };
        let taken = self.take_warm(family, code.as_deref(), current.as_deref());
        // Taken or not, refill: a cold start that found none (after the pool expired, or while
        // it was still loading) is the sign the next one will want one too.
        Inner::replenish(self, family);
        let mut warm = taken?;
        let credentials = self.credentials.get().map(|i| i.issue(&config.function));
        // The address it was started with: its own namespace's, or its listener on the host.
        let api_addr = match (&warm.net, &warm.runtime_api) {
            (None, Some(listener)) => listener.local_addr().ok()?.to_string(),
            _ => RUNTIME_API_ADDR.to_string(),
        };
        let mut env = self.environment(config, &api_addr, credentials.as_ref());
        if let Some(code) = &code {
            env.insert("LAMBDA_TASK_ROOT".to_owned(), code.to_string_lossy().into_owned());
        }
        let cwd = code.as_deref().unwrap_or(&config.root);
        let spec = serde_json::json!({"env": env, "cwd": cwd}).to_string();
        let frame = Frame::Start { spec: spec.as_bytes() }.to_bytes();
        // The process tree already lives in its own groups: give it the function's limit.
        if let Some(g) = warm.memory.as_mut() {
            if let Err(e) = g.set_limit_mb(config.function.memory_mb) {
                tracing::warn!("cannot apply the memory limit to a pre-started runtime: {e}");
            }
        }
        // It was loading in the background, at the lowest priority: now it serves requests at
        // Sylph's own priority. One that cannot be raised is not used (a plain cold start).
        // SAFETY: getpriority of this process; a nice value, never an error for ourselves.
        let own = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        if let Some(g) = warm.pids.as_ref().or(warm.memory.as_ref()).or(warm.freezer.as_ref()) {
            if let Err(e) = g.set_priority(own) {
                tracing::warn!("cannot raise a pre-started runtime's priority: {e}");
                return None;
            }
        }
        let sent = warm
            .channel
            .as_mut()
            .is_some_and(|c| std::io::Write::write_all(c, &frame).is_ok());
        if !sent {
            return None;
        }
        if family == Family::Java {
            // From here the runtime client speaks the HTTP Runtime API; the channel is done.
            warm.channel = None;
        }
        warm.spawned_at = Instant::now();
        Some(self.assemble(config.clone(), warm, StartKind::Prewarmed, credentials))
    }

    /// Ready pre-started runtimes per language, for the metrics.
    pub(super) fn standby(&self) -> Vec<(&'static str, usize)> {
        let w = self.warm.lock().unwrap_or_else(|e| e.into_inner());
        [
            (Family::Node, "nodejs"),
            (Family::Python, "python"),
            (Family::Java, "java"),
        ]
        .into_iter()
        .filter(|(f, _)| w.target.contains_key(f))
        .map(|(f, name)| {
            let ready = w.ready.get(&f).map_or(0, |list| {
                list.iter()
                    .filter(|s| s.channel.as_ref().is_some_and(preloaded))
                    .count()
            });
            (name, ready)
        })
        .collect()
    }

    /// A pre-started runtime that has finished preloading, if one is ready now. One still
    /// loading is left to finish: a plain cold start beats waiting for it; one that has not
    /// finished in [`PRELOAD_LIMIT`] is stopped. For Java, `code` is the function's package and
    /// `current` the one the pool preloads now: a JVM that preloaded another package is not
    /// this function's, and one that preloaded an older version of it (before a rebuild) is
    /// stopped.
    fn take_warm(
        &self,
        family: Family,
        code: Option<&std::path::Path>,
        current: Option<&std::path::Path>,
    ) -> Option<Spawned> {
        let mut w = self.warm.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        w.last_used = Some(now);
        w.demand.entry(family).or_default().record(now);
        let list = w.ready.get_mut(&family)?;
        let mut i = 0;
        while i < list.len() {
            if !matches!(list[i].child.try_wait(), Ok(None)) {
                list.remove(i);
                continue;
            }
            if let Some(preloaded) = list[i].java_code.as_deref() {
                if Some(preloaded) != current {
                    list.remove(i);
                    continue;
                }
                if Some(preloaded) != code {
                    i += 1;
                    continue;
                }
            }
            if list[i].channel.as_mut().is_some_and(preload_done) {
                return Some(list.remove(i));
            }
            if list[i].spawned_at.elapsed() > PRELOAD_LIMIT {
                list.remove(i);
                continue;
            }
            i += 1;
        }
        None
    }

    /// Start processes of `family` in the background until the target count is ready.
    fn replenish(this: &Arc<Inner>, family: Family) {
        let missing = {
            let mut w = this.warm.lock().unwrap_or_else(|e| e.into_inner());
            let base = w.target.get(&family).copied().unwrap_or(0);
            let peak = w.demand.get(&family).map_or(0, |d| d.recent_peak(Instant::now()));
            // Recent bursts raise the pool, up to what idle may cost; `--prewarm 0` keeps it off.
            let target = if base == 0 { 0 } else { base.max(peak.min(MAX_STANDBY)) };
            let have = w.ready.get(&family).map_or(0, Vec::len) + w.starting.get(&family).copied().unwrap_or(0);
            let missing = target.saturating_sub(have);
            *w.starting.entry(family).or_default() += missing;
            (missing, !w.foreground)
        };
        let (missing, background) = missing;
        for _ in 0..missing {
            let inner = this.clone();
            tokio::spawn(async move {
                let started = inner.spawn_generic(family, background).await;
                let mut w = inner.warm.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(n) = w.starting.get_mut(&family) {
                    *n = n.saturating_sub(1);
                }
                match started {
                    Ok(s) => w.ready.entry(family).or_default().push(s),
                    Err(e) => tracing::warn!("cannot pre-start a runtime: {e}"),
                }
            });
        }
    }

    /// A runtime process that preloads what every function of its language loads, then waits
    /// to be told which function it is.
    async fn spawn_generic(self: &Arc<Self>, family: Family, background: bool) -> Result<Spawned, StartError> {
        // A JVM's runtime client speaks HTTP once it knows its function: its listener now.
        let java = family == Family::Java;
        let (program, args, java_code) = if java {
            // Unpacking the package to preload blocks: off the async workers.
            let inner = self.clone();
            tokio::task::spawn_blocking(move || inner.java_prestart_for_package())
                .await
                .map_err(|e| StartError::Listen(std::io::Error::other(e)))??
        } else {
            let (program, args) = self.family_command(family);
            (program, args, None)
        };
        let (net, runtime_api, api_addr) = self.network(java).await?;
        let env = self.generic_environment(family, api_addr);
        let mut visible = self.visible_dirs(Some(family));
        // A JVM that preloads a package sees it (and starts in it, as its function will: Java
        // cannot change its working folder later).
        visible.extend(java_code.iter().cloned());
        let cwd = java_code.clone().unwrap_or_else(|| PathBuf::from("/"));
        let memory_mb = match family {
            // Its package's code runs in the warm-up: under the limit its functions will have.
            Family::Java => self.java_prestart_mb.load(std::sync::atomic::Ordering::Relaxed),
            _ => 10240,
        };
        self.spawn_process(ProcessSpec {
            program: &program,
            args: &args,
            env: &env,
            cwd: &cwd,
            channel: if java { ChannelAt::Stdin } else { ChannelAt::RuntimeFd },
            runtime_api,
            net,
            label: "pre-started runtime",
            memory_mb,
            tmp_mb: crate::sandbox::TMP_MB,
            visible: &visible,
            mounts: &[],
            background,
        })
        .await
        .map(|mut spawned| {
            spawned.java_code = java_code;
            spawned
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_bytes_are_the_ready_frame() {
        assert_eq!(Frame::Ready.to_bytes(), READY);
    }

    #[test]
    fn demand_remembers_the_largest_recent_burst_for_a_minute() {
        let t0 = Instant::now();
        let mut d = Demand::default();
        for _ in 0..8 {
            d.record(t0);
        }
        assert_eq!(d.recent_peak(t0), 8);
        // A trickle afterwards keeps the peak while it is remembered…
        d.record(t0 + Duration::from_secs(10));
        assert_eq!(d.recent_peak(t0 + Duration::from_secs(10)), 8);
        // …and then it fades.
        assert_eq!(d.recent_peak(t0 + Duration::from_secs(61)), 0);
        // Cold starts seconds apart are no burst.
        let mut trickle = Demand::default();
        for i in 0..5 {
            trickle.record(t0 + Duration::from_secs(3 * i));
        }
        assert_eq!(trickle.recent_peak(t0 + Duration::from_secs(12)), 1);
    }
}
