//! Reading a function's stdout/stderr: every line goes to the log sink tagged with the function
//! and the request being served, and, when asked, is kept for the caller (`Tail` logs).
//!
//! The pipes are read with non-blocking reads under the same lock that [`LogCapture::sync`]
//! takes. A runtime writes its output before it posts the response, so once the response has
//! arrived, "lock held and nothing left in the pipe" means every line of the invocation has been
//! seen — no sleeping or guessing at the end of an invocation.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use sylph_telemetry::LogSink;
use tokio::io::unix::AsyncFd;

/// Output kept per invocation is capped so a chatty function cannot exhaust memory.
pub const MAX_CAPTURE_BYTES: usize = 1 << 20;
/// A single line longer than this is cut into pieces.
const MAX_LINE_BYTES: usize = 256 * 1024;
/// Output per invocation that reaches the log; the rest is read and dropped, so a function that
/// floods stdout cannot flood the terminal (or stall on a full pipe).
pub const MAX_LOG_BYTES_PER_INVOCATION: usize = 1 << 20;

pub(crate) struct LogCapture {
    function: String,
    sink: Arc<dyn LogSink>,
    state: Mutex<State>,
    fds: Mutex<Vec<i32>>,
}

#[derive(Default)]
struct State {
    request_id: Option<Arc<str>>,
    buffer: Option<Vec<u8>>,
    /// Bytes logged since the invocation began, and whether the cap was announced.
    logged: usize,
    capped: bool,
}

impl LogCapture {
    pub fn new(function: String, sink: Arc<dyn LogSink>) -> Arc<LogCapture> {
        Arc::new(LogCapture {
            function,
            sink,
            state: Mutex::default(),
            fds: Mutex::default(),
        })
    }

    /// Tag following output with `request_id`, keeping it if `capture`.
    pub fn begin(&self, request_id: Arc<str>, capture: bool) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.request_id = Some(request_id);
        st.buffer = capture.then(Vec::new);
        st.logged = 0;
        st.capped = false;
    }

    /// Wait until everything already written to the pipes has been read, then stop tagging
    /// and return what was kept.
    pub async fn finish(&self) -> Option<Vec<u8>> {
        // Bounded: a process that keeps writing must not hold the invocation open forever.
        for _ in 0..1000 {
            {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if self.pending_bytes() == 0 {
                    st.request_id = None;
                    return st.buffer.take();
                }
            }
            tokio::task::yield_now().await;
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.request_id = None;
        st.buffer.take()
    }

    fn pending_bytes(&self) -> usize {
        let fds = self.fds.lock().unwrap_or_else(|e| e.into_inner());
        fds.iter()
            .map(|fd| {
                let mut n: libc::c_int = 0;
                // SAFETY: FIONREAD writes one c_int through the pointer; the fd stays open while
                // it is listed (readers remove it before closing).
                let rc = unsafe { libc::ioctl(*fd, libc::FIONREAD, &mut n) };
                if rc == 0 {
                    n.max(0) as usize
                } else {
                    0
                }
            })
            .sum()
    }

    /// Start watching one pipe; the returned future reads it until it closes. The pipe is
    /// registered before this returns, so [`finish`](Self::finish) never misses its bytes.
    pub fn attach(self: &Arc<Self>, fd: OwnedFd) -> io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
        let raw = fd.as_raw_fd();
        set_nonblocking(raw)?;
        // SAFETY: we own `fd` outright (moved in) and nothing else registers or closes it.
        let async_fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        self.fds.lock().unwrap_or_else(|e| e.into_inner()).push(raw);
        Ok(Arc::clone(self).read_pipe(async_fd))
    }

    async fn read_pipe(self: Arc<Self>, async_fd: AsyncFd<OwnedFd>) {
        let raw = async_fd.as_raw_fd();
        let mut partial: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        'outer: loop {
            let Ok(mut guard) = async_fd.readable().await else {
                break;
            };
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                // SAFETY: reading into a buffer we own, of the length we pass.
                let n = unsafe { libc::read(raw, buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 {
                    self.consume(&mut st, &mut partial, &buf[..n as usize]);
                    continue;
                }
                if n == 0 {
                    break 'outer;
                }
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        break;
                    }
                    io::ErrorKind::Interrupted => continue,
                    _ => break 'outer,
                }
            }
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !partial.is_empty() {
            let line = std::mem::take(&mut partial);
            self.emit(&mut st, &line);
        }
        self.fds.lock().unwrap_or_else(|e| e.into_inner()).retain(|f| *f != raw);
    }

    fn consume(&self, st: &mut State, partial: &mut Vec<u8>, mut data: &[u8]) {
        while let Some(pos) = data.iter().position(|b| *b == b'\n') {
            if partial.is_empty() {
                self.emit(st, &data[..pos]);
            } else {
                partial.extend_from_slice(&data[..pos]);
                let line = std::mem::take(partial);
                self.emit(st, &line);
            }
            data = &data[pos + 1..];
        }
        partial.extend_from_slice(data);
        if partial.len() > MAX_LINE_BYTES {
            let line = std::mem::take(partial);
            self.emit(st, &line);
        }
    }

    fn emit(&self, st: &mut State, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        st.logged += line.len() + 1;
        if st.logged > MAX_LOG_BYTES_PER_INVOCATION {
            if !st.capped {
                st.capped = true;
                let notice = format!(
                    "log output over {} MB in this invocation; the rest of it is dropped",
                    MAX_LOG_BYTES_PER_INVOCATION >> 20
                );
                self.sink.line(&self.function, st.request_id.as_deref(), &notice);
            }
            return;
        }
        let text = String::from_utf8_lossy(line);
        self.sink.line(&self.function, st.request_id.as_deref(), &text);
        if let Some(buf) = st.buffer.as_mut() {
            if buf.len() + line.len() < MAX_CAPTURE_BYTES {
                buf.extend_from_slice(line);
                buf.push(b'\n');
            }
        }
    }
}

fn set_nonblocking(fd: i32) -> io::Result<()> {
    // SAFETY: plain fcntl calls on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
