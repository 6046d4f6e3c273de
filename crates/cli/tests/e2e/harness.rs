//! Starting `sylph dev` on a free port, talking HTTP/1.1 to it, and stopping it cleanly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn example(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

pub fn sylph() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sylph"));
    // Keep each test's runtime clients apart from the user's cache.
    cmd.env("XDG_CACHE_HOME", std::env::temp_dir().join("sylph-e2e-cache"));
    cmd
}

/// The target folder this test binary was built into (…/target/debug).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// Collect a started sylph's stdout and stderr, and wait (at most `limit`) for its
/// `listening on URL` line; the URL and the output so far (still growing).
fn wait_until_listening(child: &mut Child, what: &str, limit: Duration) -> (String, Arc<Mutex<String>>) {
    let output = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out = output.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_owned());
            }
            let mut o = out.lock().unwrap();
            o.push_str(&line);
            o.push('\n');
        }
    });
    let err = output.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut o = err.lock().unwrap();
            o.push_str(&line);
            o.push('\n');
        }
    });
    match rx.recv_timeout(limit) {
        Ok(url) => (url, output),
        Err(_) => {
            let _ = child.kill();
            panic!("{what} did not start; output:\n{}", output.lock().unwrap());
        }
    }
}

pub struct Dev {
    child: Child,
    pub base: String,
    output: Arc<Mutex<String>>,
}

impl Dev {
    pub fn start(config: &Path) -> Dev {
        Dev::start_with(config, &[], &[])
    }

    pub fn start_with(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Dev {
        let mut cmd = sylph();
        cmd.arg("dev")
            .arg("--config")
            .arg(config)
            .args(["--port", "0"])
            .args(args);
        // Tests run in parallel: each server gets its own table store unless the test picks one.
        if !args.contains(&"--data-dir") {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("sylph-e2e-dev-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            cmd.arg("--data-dir").arg(dir);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sylph dev");
        // Generous: a Rust service is built (incrementally) before the server starts.
        let (base, output) = wait_until_listening(&mut child, "sylph dev", Duration::from_secs(600));
        Dev { child, base, output }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Wait (bounded) until the server's output contains `needle`.
    pub fn wait_for_output(&self, needle: &str) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if self.output().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Wait up to `limit` until the server's output contains `needle`.
    pub fn wait_for_output_within(&self, needle: &str, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.output().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// SIGKILL: no chance to clean up or flush anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Wait (bounded) until `needle` occurs `n` times in the server's output; returns the count.
    pub fn wait_for_count(&self, needle: &str, n: usize) -> usize {
        let start = Instant::now();
        loop {
            let count = self.output().matches(needle).count();
            if count >= n || start.elapsed() > Duration::from_secs(10) {
                return count;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait (bounded) until an invocation of `function` is running, as the metrics report it.
    pub fn wait_in_flight(&self, function: &str) {
        let line = format!("sylph_concurrent_executions{{function=\"{function}\"}} 1");
        let start = Instant::now();
        while !self.get("/_sylph/metrics").text().lines().any(|l| l == line) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{function} never started running"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str) -> Response {
        request(&self.base, "GET", path, &[], b"")
    }

    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        request(&self.base, method, path, headers, body)
    }

    /// Invoke `function` through the Invoke API with `event`; its JSON result, which must be
    /// a success (not a function error).
    pub fn invoke_ok(&self, function: &str, event: &serde_json::Value) -> serde_json::Value {
        let r = self.send(
            "POST",
            &format!("/2015-03-31/functions/{function}/invocations"),
            &[],
            event.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.header("x-amz-function-error").is_none(), "{}", r.text());
        r.json()
    }

    /// SIGTERM, and wait for the process to exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc_kill(self.child.id() as i32, 15);
        }
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                panic!("sylph dev did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A minimal HTTP/1.1 client: one request per connection, read to EOF.
pub fn request(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let authority = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(authority).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {authority}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(&raw[split + 4..])
    } else {
        raw[split + 4..].to_vec()
    };
    Response { status, headers, body }
}

/// A `Transfer-Encoding: chunked` body, decoded.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).expect("a hex chunk size");
        raw = &raw[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// The value of the Prometheus sample whose line starts with `line_start`.
pub fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {line_start} in:\n{text}"))
}

/// A running `sylph server` with its own data folder, and the admin key it made.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub data: PathBuf,
    pub admin_key: String,
    output: Arc<Mutex<String>>,
}

impl Server {
    /// A new server on a new data folder.
    pub fn start_fresh(name: &str) -> Server {
        let data = std::env::temp_dir().join(format!("sylph-e2e-server-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        Server::start(&data, None)
    }

    /// A server on `data` (made by an earlier one, whose admin key is `key`).
    pub fn start(data: &Path, key: Option<&str>) -> Server {
        Server::start_with(data, key, &[])
    }

    pub fn start_with(data: &Path, key: Option<&str>, args: &[&str]) -> Server {
        let mut child = sylph()
            .arg("server")
            .arg("--data-dir")
            .arg(data)
            .args(["--port", "0", "--prewarm", "1", "--drain-timeout", "10"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sylph server");
        let (base, output) = wait_until_listening(&mut child, "sylph server", Duration::from_secs(120));
        let admin_key = match key {
            Some(k) => k.to_owned(),
            None => {
                let text = output.lock().unwrap().clone();
                text.split_whitespace()
                    .skip_while(|w| *w != "--key")
                    .nth(1)
                    .unwrap_or_else(|| panic!("no admin key printed:\n{text}"))
                    .to_owned()
            }
        };
        Server {
            child,
            base,
            data: data.to_owned(),
            admin_key,
            output,
        }
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Run `sylph ARGS --server URL --key KEY`; (success, stdout, stderr).
    pub fn cli(&self, key: &str, args: &[&str]) -> (bool, String, String) {
        self.cli_env(key, args, &[])
    }

    /// [`Server::cli`] with extra environment.
    pub fn cli_env(&self, key: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let out = sylph()
            .envs(env.iter().copied())
            .args(args)
            .args(["--server", &self.base, "--key", key])
            .output()
            .expect("run sylph");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Deploy the service whose manifest is `config` with `key`; its `info` as JSON.
    pub fn deploy(&self, key: &str, config: &Path) -> serde_json::Value {
        let (ok, stdout, stderr) = self.cli(key, &["deploy", "--json", "--config", config.to_str().unwrap()]);
        assert!(ok, "deploy failed:\n{stdout}\n{stderr}\nserver:\n{}", self.output());
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("deploy printed no JSON ({e}):\n{stdout}"))
    }

    /// A request to a deployed API by path (`/apis/{api_id}{path}`).
    pub fn api(&self, api_id: &str, method: &str, path: &str, body: &[u8]) -> Response {
        request(&self.base, method, &format!("/apis/{api_id}{path}"), &[], body)
    }

    /// An admin API call with `key`.
    pub fn admin(&self, key: &str, method: &str, path: &str, body: &[u8]) -> Response {
        let auth = format!("Bearer {key}");
        request(&self.base, method, path, &[("Authorization", &auth)], body)
    }

    /// SIGTERM, and wait for the exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc_kill(self.child.id() as i32, 15);
        }
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                panic!("sylph server did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to clean up or flush anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}
