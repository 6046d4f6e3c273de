//! A started process wired up as an instance of one function, and one invocation on it: hand
//! the invocation over (frame channel or HTTP Runtime API), wait for the answer within the
//! init limit and the function's timeout, freeze the instance until the next one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::spawn::{describe_exit, Spawned};
use super::{ApiHandler, ConnectionPermit, Inner, InstanceCredentials, MAX_INSTANCE_CONNECTIONS};
use crate::api::{self, ApiState, Pending, Reply, Status};
use crate::logs::LogCapture;
use crate::netns::InstanceNet;
use crate::{BoxFuture, Completed, Failure, Instance, InstanceConfig, Invocation, Outcome, StartKind, INIT_TIMEOUT};

impl Inner {
    /// Wire a started process up as an instance of `config`'s function.
    pub(super) fn assemble(
        &self,
        config: Arc<InstanceConfig>,
        spawned: Spawned,
        start: StartKind,
        credentials: Option<InstanceCredentials>,
    ) -> Box<dyn Instance> {
        let Spawned {
            mut child,
            pid,
            out_r,
            err_r,
            channel,
            runtime_api,
            net,
            spawned_at,
            memory,
            pids,
            freezer,
            java_code: _,
        } = spawned;
        let logs = LogCapture::new(config.function.key.clone(), self.sink.clone());
        for fd in [out_r, err_r] {
            // Readers end by themselves at EOF, after draining what a dying process wrote.
            if let Ok(reader) = logs.attach(fd) {
                tokio::spawn(reader);
            }
        }
        let mut tasks = Vec::with_capacity(4);
        let mut net = net;
        if let Some(listener) = net.as_mut().and_then(|n| n.sylph_api.take()) {
            match TcpListener::from_std(listener) {
                Ok(listener) => tasks.push(tokio::spawn(serve_sylph_api(
                    listener,
                    self.sylph_api_handler.get().cloned(),
                    credentials.as_ref().map(|c| c.access_key_id.clone()),
                ))),
                Err(e) => tracing::error!("Sylph's API unavailable to an instance: {e}"),
            }
        }

        let (tx, rx) = mpsc::channel::<Pending>(1);
        let (status_tx, status_rx) = watch::channel(Status::Running);
        let state = Arc::new(ApiState {
            function_arn: HeaderValue::from_str(&config.function.arn(&config.region))
                .unwrap_or_else(|_| HeaderValue::from_static("arn:aws:lambda:::function:invalid")),
            next: tokio::sync::Mutex::new(rx),
            current: Mutex::new(None),
            ready_at: Mutex::new(None),
            status: status_tx,
        });
        // Sylph's own bootstraps use the frame channel only: no HTTP Runtime API is served for
        // them, so no other local process can take their invocations.
        let mut channel_closed = None;
        match channel {
            Some(ours) => {
                let (closed_tx, closed_rx) = oneshot::channel::<()>();
                channel_closed = Some(closed_rx);
                let serve_state = state.clone();
                match ours
                    .set_nonblocking(true)
                    .and_then(|()| tokio::net::UnixStream::from_std(ours))
                {
                    Ok(stream) => tasks.push(tokio::spawn(async move {
                        crate::pipe::serve(stream, serve_state).await;
                        let _ = closed_tx.send(());
                    })),
                    Err(e) => tracing::error!("runtime channel unavailable: {e}"),
                }
            }
            None => match runtime_api {
                Some(listener) => tasks.push(tokio::spawn(serve_api(listener, state.clone()))),
                None => tracing::error!("an HTTP runtime without a Runtime API listener"),
            },
        }
        let watcher_state = state.clone();
        let reaped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher_reaped = reaped.clone();
        tasks.push(tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(s) => describe_exit(s),
                Err(e) => format!("wait failed: {e}"),
            };
            // The pid may be reused from now on: never signal it again.
            watcher_reaped.store(true, std::sync::atomic::Ordering::SeqCst);
            // A runtime that wrote its answer (or init error) and exited: let the channel
            // deliver that frame before the exit is published.
            if let Some(closed) = channel_closed {
                let _ = tokio::time::timeout(Duration::from_millis(200), closed).await;
            }
            watcher_state.status.send_if_modified(|cur| {
                if *cur == Status::Running {
                    *cur = Status::Exited(status);
                    true
                } else {
                    false
                }
            });
        }));

        Box::new(ProcessInstance {
            config,
            pid,
            state,
            tx,
            status: status_rx,
            spawned_at,
            start,
            invoked: false,
            healthy: true,
            logs,
            tasks,
            memory,
            _pids: pids,
            freezer,
            _credentials: credentials,
            net,
            reaped,
        })
    }
}

async fn serve_api(listener: TcpListener, state: Arc<ApiState>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, most likely: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| api::handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Hand each connection function code opens to Sylph's APIs to `handler`.
async fn serve_sylph_api(listener: TcpListener, handler: Option<ApiHandler>, access_key: Option<Arc<str>>) {
    let places = Arc::new(tokio::sync::Semaphore::new(MAX_INSTANCE_CONNECTIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        match (&handler, places.clone().try_acquire_owned()) {
            (Some(h), Ok(permit)) => h(stream, access_key.clone(), ConnectionPermit(permit)),
            _ => drop(stream),
        }
    }
}

struct ProcessInstance {
    config: Arc<InstanceConfig>,
    pid: u32,
    state: Arc<ApiState>,
    tx: mpsc::Sender<Pending>,
    status: watch::Receiver<Status>,
    spawned_at: Instant,
    start: StartKind,
    invoked: bool,
    healthy: bool,
    logs: Arc<LogCapture>,
    tasks: Vec<JoinHandle<()>>,
    memory: Option<crate::limits::InstanceGroup>,
    /// Held for its lifetime: dropping it removes the (then empty) group.
    _pids: Option<crate::limits::InstanceGroup>,
    /// The group that freezes the instance between invocations (v1's freezer group).
    freezer: Option<crate::limits::InstanceGroup>,
    /// The instance's credentials, revoked when it goes.
    _credentials: Option<InstanceCredentials>,
    /// Its network namespace (and slirp4netns, for outbound traffic), kept for its lifetime.
    net: Option<InstanceNet>,
    /// Set once the process has been reaped, after which its pid may belong to someone else.
    reaped: Arc<std::sync::atomic::AtomicBool>,
}

impl ProcessInstance {
    /// What freezes the instance's processes together: v1's freezer group, or the v2 group.
    fn freeze_switch(&self) -> Option<&Arc<crate::limits::FreezeSwitch>> {
        self.freezer
            .as_ref()
            .or(self.memory.as_ref())
            .and_then(|g| g.freeze_switch())
    }

    /// Thaw the instance for an invocation (or a kill); cancels a freeze still pending.
    /// Returns whether it is now free to run.
    fn thaw(&self) -> bool {
        let Some(switch) = self.freeze_switch() else {
            return true;
        };
        match switch.thaw() {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(function = %self.config.function.name, "cannot thaw the instance: {e}");
                false
            }
        }
    }

    fn kill(&self) {
        // A frozen process does not act on SIGKILL (cgroup v1) until thawed: try twice.
        if !self.thaw() {
            self.thaw();
        }
        if self.pid > 1 && !self.reaped.load(std::sync::atomic::Ordering::SeqCst) {
            // SAFETY: signalling our own child's process group.
            unsafe {
                libc::kill(-(self.pid as i32), libc::SIGKILL);
            }
        }
    }

    /// Resolves when the process has died or reported an init error.
    async fn died(status: &mut watch::Receiver<Status>) -> Failure {
        let st = match status.wait_for(|s| *s != Status::Running).await {
            Ok(s) => s.clone(),
            Err(_) => Status::Exited("instance stopped".into()),
        };
        match st {
            Status::InitFailed { error_type, body } => Failure::InitError { error_type, body },
            Status::Exited(how) => Failure::Exited(how),
            Status::Running => Failure::Unavailable("instance stopped".into()),
        }
    }

    fn max_memory_mb(&self) -> u64 {
        if let Some(peak) = self.memory.as_ref().and_then(|g| g.peak_mb()) {
            return peak;
        }
        let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", self.pid)) else {
            return 0;
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb.div_ceil(1024))
            .unwrap_or(0)
    }

    async fn run(&mut self, inv: Invocation) -> Completed {
        let first = !self.invoked;
        self.invoked = true;
        if !self.thaw() {
            // A frozen instance would never take the invocation; a warm one that cannot be
            // thawed is unavailable (the invoker runs the invocation on a new instance).
            let failure = Failure::Unavailable("the instance could not be thawed".into());
            return self.fail(failure, Instant::now(), first).await;
        }
        if first {
            if let Some(net) = &mut self.net {
                // slirp4netns starts beside the runtime; the handler gets a working network.
                if !net.outbound_ready().await {
                    tracing::warn!(function = %self.config.function.name, "outbound network not available for this instance");
                }
            }
        }
        let timeout = self.config.function.timeout;
        let (dispatched_tx, dispatched_rx) = oneshot::channel();
        let (reply_tx, reply_rx) = oneshot::channel();
        self.logs.begin(inv.request_id.clone(), inv.capture_logs);
        let pending = Pending {
            request_id: inv.request_id.clone(),
            payload: inv.payload,
            client_context: inv.client_context,
            cognito_identity: inv.cognito_identity,
            timeout_ms: timeout.as_millis() as u64,
            dispatched: dispatched_tx,
            reply: reply_tx,
        };
        let start = Instant::now();
        if self.tx.send(pending).await.is_err() {
            return self
                .fail(Failure::Unavailable("the instance has stopped".into()), start, first)
                .await;
        }

        // Phase 1: the runtime picks the invocation up (immediately when warm; after its init
        // when cold, which Lambda bounds separately from the function's timeout).
        let mut status = self.status.clone();
        let dispatched_at = tokio::select! {
            biased;
            d = dispatched_rx => match d {
                Ok(at) => at,
                Err(_) => return self.fail(Failure::Unavailable("the instance has stopped".into()), start, first).await,
            },
            failure = Self::died(&mut status) => {
                // A warm instance that died before taking the invocation never ran it.
                let failure = if first { failure } else { Failure::Unavailable(format!("the instance had stopped: {failure:?}")) };
                return self.fail(failure, start, first).await;
            }
            _ = tokio::time::sleep(INIT_TIMEOUT) => return self.fail(Failure::InitTimeout, start, first).await,
        };

        // Phase 2: the function runs, bounded by its timeout.
        let deadline = tokio::time::Instant::from_std(dispatched_at + timeout);
        let reply = tokio::select! {
            biased;
            r = reply_rx => r.ok(),
            failure = Self::died(&mut status) => return self.fail(failure, dispatched_at, first).await,
            _ = tokio::time::sleep_until(deadline) => return self.fail(Failure::Timeout(timeout), dispatched_at, first).await,
        };
        let duration = dispatched_at.elapsed();
        let outcome = match reply {
            Some(Reply::Response(body)) => Outcome::Response(body),
            Some(Reply::Error { error_type, body }) => Outcome::FunctionError { error_type, body },
            Some(Reply::TooLarge) => {
                self.healthy = false;
                self.kill();
                Outcome::InstanceFailed(Failure::ResponseTooLarge)
            }
            None => {
                self.healthy = false;
                Outcome::InstanceFailed(Failure::Unavailable("the runtime dropped the invocation".into()))
            }
        };
        let completed = Completed {
            outcome,
            duration,
            init_duration: if first { self.init_duration() } else { None },
            start: if first { self.start } else { StartKind::Warm },
            max_memory_mb: self.max_memory_mb(),
            logs: self.logs.finish().await,
        };
        if self.healthy {
            // Nothing runs between invocations: background work waits for the next one.
            if let Some(switch) = self.freeze_switch() {
                switch.freeze_soon();
            }
        }
        completed
    }

    fn init_duration(&self) -> Option<Duration> {
        let ready = *self.state.ready_at.lock().unwrap_or_else(|e| e.into_inner());
        ready.map(|r| r.saturating_duration_since(self.spawned_at))
    }

    async fn fail(&mut self, failure: Failure, since: Instant, first: bool) -> Completed {
        self.healthy = false;
        // A process killed by the kernel for its memory group's limit: say so.
        let failure = match (&failure, &self.memory) {
            (Failure::Exited(_), Some(g)) if g.hit_limit() => Failure::OutOfMemory(g.limit_mb),
            _ => failure,
        };
        let max_memory_mb = self.max_memory_mb();
        self.kill();
        // Give the output readers a moment to drain what the process wrote before it died.
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            let mut status = self.status.clone();
            let _ = status.wait_for(|s| matches!(s, Status::Exited(_))).await;
        })
        .await;
        Completed {
            outcome: Outcome::InstanceFailed(failure),
            duration: since.elapsed(),
            init_duration: if first { self.init_duration() } else { None },
            start: if first { self.start } else { StartKind::Warm },
            max_memory_mb,
            logs: self.logs.finish().await,
        }
    }
}

impl Instance for ProcessInstance {
    fn invoke(&mut self, invocation: Invocation) -> BoxFuture<'_, Completed> {
        Box::pin(self.run(invocation))
    }

    fn is_healthy(&self) -> bool {
        self.healthy && *self.status.borrow() == Status::Running
    }

    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }
}

impl Drop for ProcessInstance {
    fn drop(&mut self) {
        self.kill();
        // The Runtime API server and the exit watcher (which owns the child) stop with us.
        for task in &self.tasks {
            task.abort();
        }
    }
}
