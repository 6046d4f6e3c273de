//! What one instance's store holds: its WASI context (environment, output), its wasi:http
//! context and the hooks that decide where its outgoing requests may go, and its memory limit.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use sylph_runtime::{MAX_CAPTURE_BYTES, MAX_LOG_BYTES_PER_INVOCATION};
use sylph_telemetry::LogSink;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::outbound::Outbound;

pub struct State {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub outbound: Outbound,
    pub memory: MemoryLimit,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// memorySize as the instance's limit on linear memory, all of its memories together; a
/// `memory.grow` past it fails (the guest's allocator then reports it, usually by trapping).
pub struct MemoryLimit {
    pub limit: usize,
    pub used: usize,
    pub peak: usize,
    /// Set when a grow was refused: a trap that follows is the function running out of memory.
    pub refused: bool,
    /// The last grow allowed, undone if wasmtime then fails it (a memory's own maximum).
    granted: usize,
}

impl MemoryLimit {
    pub fn new(memory_mb: u32) -> MemoryLimit {
        MemoryLimit {
            limit: usize::try_from(u64::from(memory_mb) * 1024 * 1024).unwrap_or(usize::MAX),
            used: 0,
            peak: 0,
            refused: false,
            granted: 0,
        }
    }
}

impl MemoryLimit {
    pub fn limit_mb(&self) -> u32 {
        (self.limit / (1024 * 1024)) as u32
    }
}

impl wasmtime::ResourceLimiter for MemoryLimit {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let total = (self.used - current.min(self.used)).saturating_add(desired);
        if total > self.limit {
            self.refused = true;
            return Ok(false);
        }
        self.granted = total - self.used.min(total);
        self.used = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.used -= self.granted.min(self.used);
        self.granted = 0;
        Ok(())
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far past any real program.
        Ok(desired <= 1_000_000)
    }
}

/// The guest's stdout and stderr: each line goes to the function's log with the request it was
/// written during, as a process function's output does, and into the invocation's captured
/// output when the caller asked for it (`X-Amz-Log-Type: Tail`).
#[derive(Clone)]
pub struct LogStream {
    shared: Arc<LogShared>,
}

struct LogShared {
    function: String,
    sink: Arc<dyn LogSink>,
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    request_id: Option<Arc<str>>,
    partial: Vec<u8>,
    captured: Option<Vec<u8>>,
    /// Bytes logged in this invocation; past the cap the rest is dropped, as for processes.
    logged: usize,
    capped: bool,
}

/// A line longer than this is written out in pieces (a guest printing without newlines).
const MAX_LINE: usize = 256 * 1024;

impl LogStream {
    pub fn new(function: String, sink: Arc<dyn LogSink>) -> LogStream {
        LogStream {
            shared: Arc::new(LogShared {
                function,
                sink,
                state: Mutex::new(LogState::default()),
            }),
        }
    }

    /// Lines written from now on belong to `request_id`.
    pub fn begin(&self, request_id: Arc<str>, capture: bool) {
        let mut state = self.lock();
        state.request_id = Some(request_id);
        state.captured = capture.then(Vec::new);
        state.logged = 0;
        state.capped = false;
    }

    /// The invocation is over: write out an unfinished line, and return what was captured.
    pub fn end(&self) -> Option<Vec<u8>> {
        let mut state = self.lock();
        if !state.partial.is_empty() {
            let line = std::mem::take(&mut state.partial);
            self.emit(&mut state, &line);
        }
        state.captured.take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, state: &mut LogState, line: &[u8]) {
        state.logged += line.len() + 1;
        if state.logged > MAX_LOG_BYTES_PER_INVOCATION {
            if !state.capped {
                state.capped = true;
                let notice = format!(
                    "log output over {} MB in this invocation; the rest of it is dropped",
                    MAX_LOG_BYTES_PER_INVOCATION >> 20
                );
                self.shared
                    .sink
                    .line(&self.shared.function, state.request_id.as_deref(), &notice);
            }
            return;
        }
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        self.shared
            .sink
            .line(&self.shared.function, state.request_id.as_deref(), text);
        if let Some(captured) = state
            .captured
            .as_mut()
            .filter(|c| c.len() + text.len() < MAX_CAPTURE_BYTES)
        {
            captured.extend_from_slice(text.as_bytes());
            captured.push(b'\n');
        }
    }

    fn write(&self, buf: &[u8]) {
        let mut state = self.lock();
        let mut rest = buf;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(pos);
            if state.partial.is_empty() {
                self.emit(&mut state, head);
            } else {
                let mut line = std::mem::take(&mut state.partial);
                line.extend_from_slice(head);
                self.emit(&mut state, &line);
            }
            rest = &tail[1..];
        }
        state.partial.extend_from_slice(rest);
        if state.partial.len() > MAX_LINE {
            let line = std::mem::take(&mut state.partial);
            self.emit(&mut state, &line);
        }
    }
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl wasmtime_wasi::cli::IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}
