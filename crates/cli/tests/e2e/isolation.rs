//! Attacks a function must not get away with, each written as the attack: reading the home
//! folder or files the package never holds, reaching the host's loopback services, a
//! link-local address or another instance's Runtime API, filling /dev/shm past the /tmp
//! budget, opening more files than Lambda allows, talking to a terminal, using io_uring, and
//! running in the background between invocations.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Dev;

/// Python probes: each returns what an attacker would learn or do.
const PROBE: &str = r#"import ctypes, errno, os, socket, subprocess, sys, time

def attempt(f):
    try:
        r = f()
        return "allowed" if r is None else r
    except OSError as e:
        return errno.errorcode.get(e.errno, type(e).__name__)

def read(path):
    with open(path) as f:
        return "read:" + f.read()

def connect(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
        return "connected"
    finally:
        s.close()

def greeted(host, port):
    # A user-mode stack may accept a connection before the far end does: only the far end's
    # greeting proves the path.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port))
        return "greeted" if s.recv(2) == b"hi" else "no greeting"
    finally:
        s.close()

def listening_ports():
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if fields[3] == "0A":  # LISTEN
                        ports.append(int(fields[1].split(":")[1], 16))
        except OSError:
            pass
    return sorted(set(ports))

def files(event, context):
    return {name: attempt(lambda p=path: read(p)) for name, path in event["paths"].items()}

def network(event, context):
    out = {"host_loopback": attempt(lambda: connect("127.0.0.1", event["host_port"]))}
    if event.get("link_local"):
        out["link_local"] = attempt(lambda: greeted(event["link_local"], event["link_local_port"]))
        out["routable"] = attempt(lambda: greeted(event["routable"], event["link_local_port"]))
        # A service of the host's listening on all interfaces, through one of the host's addresses.
        out["host_address"] = attempt(lambda: connect(event["host_address"], event["host_any_port"]))
    out["runtime_api_9001"] = attempt(lambda: connect("127.0.0.1", 9001))
    ports = listening_ports()
    out["listening"] = ports
    # Every port this instance can see listening: anything but Sylph's API is a way out.
    out["reached"] = [p for p in ports if attempt(lambda p=p: connect("127.0.0.1", p)) == "connected"]
    return out

def limits(event, context):
    out = {}
    def fill_shm():
        with open("/dev/shm/fill", "wb") as f:
            chunk = b"\0" * (1 << 20)
            for _ in range(600):
                f.write(chunk)
    out["shm_600mb"] = attempt(fill_shm)
    try:
        os.remove("/dev/shm/fill")
    except OSError:
        pass
    opened = []
    def open_many():
        for _ in range(2000):
            opened.append(open("/dev/null"))
    out["open_2000"] = attempt(open_many)
    out["opened"] = len(opened)
    for f in opened:
        f.close()
    # A session made inside the sandbox has a leader the instance can see (pid 1 or itself);
    # one inherited from Sylph (with its terminal) has a leader outside: getsid says 0.
    out["own_session"] = os.getsid(0) != 0
    out["tty"] = attempt(lambda: os.close(os.open("/dev/tty", os.O_RDWR)))
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)
    rc = libc.syscall(425, 8, params)  # io_uring_setup
    out["io_uring"] = "allowed" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
    return out

TICKER = []

def ticker(event, context):
    # A background process that counts, as a function that "keeps working" after returning.
    if not TICKER:
        TICKER.append(subprocess.Popen([sys.executable, "-c",
            "import time\nn = 0\nwhile True:\n    n += 1\n    open('/tmp/ticks', 'w').write(str(n))\n    time.sleep(0.01)\n"]))
        while not os.path.exists("/tmp/ticks"):
            time.sleep(0.01)
        time.sleep(0.2)
    return {"ticks": ticks(), "pid": os.getpid()}

def hello(event, context):
    return "hello"

def ticks():
    for _ in range(100):
        try:
            return int(open("/tmp/ticks").read())
        except ValueError:
            time.sleep(0.001)
    return -1
"#;

fn service_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sylph-isolation-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("p.py"), PROBE).unwrap();
    dir
}

/// A file the test writes and removes again.
struct Canary(PathBuf);

impl Canary {
    fn new(path: PathBuf) -> Canary {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "secret").unwrap();
        Canary(path)
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The top-level home folder holding `path` (e.g. `~/.pyenv` for a pyenv interpreter).
fn home_folder_of(path: &Path) -> Option<PathBuf> {
    let home = PathBuf::from(std::env::var_os("HOME")?);
    let first = path.strip_prefix(&home).ok()?.components().next()?;
    Some(home.join(first))
}

#[test]
fn a_function_reads_nothing_but_its_package_and_runtime() {
    let dir = service_dir("files");
    std::fs::write(
        dir.join("serverless.yml"),
        "service: files\nprovider:\n  runtime: python3.12\npackage:\n  patterns:\n    - '!private.txt'\nfunctions:\n  files:\n    handler: p.files\n",
    )
    .unwrap();
    // What the package never holds: dotenv files, VCS data, Sylph's own data, excluded files.
    for (path, text) in [
        (".env", "DB_PASSWORD=hunter2"),
        (".git/config", "[remote] token"),
        (".sylph/tables/data", "table bytes"),
        ("private.txt", "excluded by package.patterns"),
        ("public.txt", "packaged"),
    ] {
        std::fs::create_dir_all(dir.join(path).parent().unwrap()).unwrap();
        std::fs::write(dir.join(path), text).unwrap();
    }
    let home = PathBuf::from(std::env::var("HOME").unwrap());
    let tag = std::process::id();
    let mut canaries = vec![
        Canary::new(home.join(format!(".sylph-canary-{tag}"))),
        // Where `cargo login` keeps its token.
        Canary::new(home.join(format!(".cargo/sylph-canary-{tag}"))),
    ];
    // Beside the interpreter that runs the function, but outside its installation.
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let python = PathBuf::from(String::from_utf8_lossy(&python.stdout).trim());
    if let Some(folder) = home_folder_of(&python) {
        canaries.push(Canary::new(folder.join(format!("sylph-canary-{tag}"))));
    }
    let mut paths = serde_json::Map::new();
    for (i, c) in canaries.iter().enumerate() {
        paths.insert(format!("canary{i}"), c.0.to_string_lossy().into());
    }
    for name in [".env", ".git/config", ".sylph/tables/data", "private.txt", "public.txt"] {
        paths.insert(name.to_owned(), dir.join(name).to_string_lossy().into());
    }

    let dev = Dev::start(&dir);
    let out = dev.invoke_ok("files", &serde_json::json!({ "paths": paths }));
    for i in 0..canaries.len() {
        assert_eq!(out[format!("canary{i}")], "ENOENT", "home folders are not there: {out}");
    }
    for hidden in [".env", ".git/config", ".sylph/tables/data", "private.txt"] {
        let seen = out[hidden].as_str().unwrap_or_default();
        assert!(
            seen == "read:" || seen == "ENOENT" || seen == "EISDIR",
            "{hidden} must not be readable: {out}"
        );
    }
    assert_eq!(out["public.txt"], "read:packaged", "{out}");
    drop(dev);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A network namespace made by the test, joined to the host by a veth pair, with a listener
/// on two addresses inside it: a link-local one (what a cloud metadata service looks like from
/// a host) and a routable one (the outside world, as far as a test may go).
struct LinkLocalHost {
    namespace: String,
    host_link: String,
    listener: Option<std::process::Child>,
    pub address: &'static str,
    pub routable: &'static str,
    pub port: u16,
}

impl LinkLocalHost {
    fn start() -> Option<LinkLocalHost> {
        let tag = std::process::id() % 100_000;
        let namespace = format!("sylph-ll-{tag}");
        let host_link = format!("syllh{tag}");
        let peer = format!("sylln{tag}");
        let ip = |args: &[&str]| Command::new("ip").args(args).status().is_ok_and(|s| s.success());
        if !ip(&["netns", "add", &namespace]) {
            return None;
        }
        let mut host = LinkLocalHost {
            namespace: namespace.clone(),
            host_link: host_link.clone(),
            listener: None,
            address: "169.254.77.2",
            routable: "198.18.77.2",
            port: 8077,
        };
        let ok = ip(&[
            "link", "add", &host_link, "type", "veth", "peer", "name", &peer, "netns", &namespace,
        ]) && ip(&["addr", "add", "169.254.77.1/24", "dev", &host_link])
            && ip(&["addr", "add", "198.18.77.1/24", "dev", &host_link])
            && ip(&["link", "set", &host_link, "up"])
            && ip(&["-n", &namespace, "addr", "add", "169.254.77.2/24", "dev", &peer])
            && ip(&["-n", &namespace, "addr", "add", "198.18.77.2/24", "dev", &peer])
            && ip(&["-n", &namespace, "link", "set", &peer, "up"])
            && ip(&["-n", &namespace, "link", "set", "lo", "up"]);
        if !ok {
            return None;
        }
        host.listener = Command::new("ip")
            .args(["netns", "exec", &namespace, "python3", "-c"])
            .arg(
                "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', 8077))\ns.listen(16)\nwhile True:\n    c = s.accept()[0]\n    c.sendall(b'hi')\n    c.close()\n",
            )
            .spawn()
            .ok();
        host.listener.is_some().then_some(host)
    }

    /// Whether the host itself reaches the listener (so a function on the host's network would).
    fn reachable_from_host(&self) -> bool {
        for _ in 0..100 {
            let addr = std::net::SocketAddr::from(([169, 254, 77, 2], self.port));
            if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)).is_ok() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }
}

impl Drop for LinkLocalHost {
    fn drop(&mut self) {
        if let Some(l) = &mut self.listener {
            let _ = l.kill();
            let _ = l.wait();
        }
        let _ = Command::new("ip").args(["link", "del", &self.host_link]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.namespace]).status();
    }
}

/// The ports `pid` listens on in the host's network namespace.
fn host_listening_ports_of(pid: u32) -> Vec<u16> {
    let mut inodes = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            if let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
            {
                inodes.push(inode.to_owned());
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                let port = f[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports.sort_unstable();
    ports
}

#[test]
fn a_function_reaches_no_host_service_link_local_address_or_other_instance() {
    let dir = service_dir("network");
    // `ric` runs under the official client, which serves itself over the HTTP Runtime API.
    std::fs::create_dir_all(dir.join("ric")).unwrap();
    std::fs::write(
        dir.join("ric/bootstrap"),
        "#!/bin/sh\nexec python3 -m awslambdaric \"$_HANDLER\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        dir.join("ric/bootstrap"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: net\nprovider:\n  runtime: python3.12\nfunctions:\n  network:\n    handler: p.network\n  ric:\n    handler: p.hello\n    runtime: provided.al2023\n    package:\n      artifact: ric/bootstrap\n",
    )
    .unwrap();
    // A database on the host's loopback, say.
    let host_service = TcpListener::bind("127.0.0.1:0").unwrap();
    host_service.set_nonblocking(true).unwrap();
    let host_port = host_service.local_addr().unwrap().port();
    // One listening on every interface of the host.
    let host_any = TcpListener::bind("0.0.0.0:0").unwrap();
    host_any.set_nonblocking(true).unwrap();
    let link_local = LinkLocalHost::start();
    if let Some(ll) = &link_local {
        assert!(ll.reachable_from_host(), "the test's link-local listener is up");
    } else {
        eprintln!("note: cannot create a network namespace with `ip` here; link-local case skipped");
    }

    let dev = Dev::start(&dir);
    let port: u16 = dev.base.rsplit(':').next().unwrap().parse().unwrap();
    // An instance serving its Runtime API over HTTP is running while the probe looks around.
    let ric = dev.send("POST", "/2015-03-31/functions/ric/invocations", &[], b"{}");
    assert_eq!(ric.status, 200, "{}", ric.text());
    assert_eq!(
        host_listening_ports_of(dev.pid()),
        vec![port],
        "sylph listens on the host's network on its own port only (no Runtime API there)"
    );

    let mut event = serde_json::json!({ "host_port": host_port });
    if let Some(ll) = &link_local {
        event["link_local"] = ll.address.into();
        event["routable"] = ll.routable.into();
        event["host_address"] = "198.18.77.1".into();
        event["host_any_port"] = host_any.local_addr().unwrap().port().into();
        event["link_local_port"] = ll.port.into();
    }
    let out = dev.invoke_ok("network", &event);
    assert_ne!(out["host_loopback"], "connected", "{out}");
    assert!(
        host_service.accept().is_err(),
        "the host's loopback service was reached: {out}"
    );
    if link_local.is_some() {
        assert_ne!(out["link_local"], "greeted", "{out}");
        // The outside world stays reachable, as on Lambda (through pasta).
        assert_eq!(out["routable"], "greeted", "{out}");
        assert_ne!(out["host_address"], "connected", "{out}");
        assert!(
            host_any.accept().is_err(),
            "a host service was reached through a host address: {out}"
        );
    }
    assert_ne!(
        out["runtime_api_9001"], "connected",
        "another instance's Runtime API: {out}"
    );
    assert_eq!(
        out["listening"],
        serde_json::json!([port]),
        "only Sylph's API is visible from an instance: {out}"
    );
    assert_eq!(out["reached"], serde_json::json!([port]), "{out}");
    drop(dev);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lambdas_limits_hold_inside_an_instance() {
    let dir = service_dir("limits");
    std::fs::write(
        dir.join("serverless.yml"),
        "service: lim\nprovider:\n  runtime: python3.12\n  memorySize: 1024\n  timeout: 30\nfunctions:\n  limits:\n    handler: p.limits\n  roomy:\n    handler: p.limits\n    memorySize: 2048\n    ephemeralStorageSize: 1024\n",
    )
    .unwrap();
    let dev = Dev::start(&dir);
    let out = dev.invoke_ok("limits", &serde_json::json!({}));
    assert_eq!(
        out["shm_600mb"], "ENOSPC",
        "/dev/shm shares the 512 MB /tmp budget: {out}"
    );
    assert_eq!(out["open_2000"], "EMFILE", "{out}");
    assert!(out["opened"].as_u64().unwrap() < 1024, "{out}");
    assert_eq!(out["own_session"], true, "its own session: {out}");
    assert_ne!(out["tty"], "allowed", "no controlling terminal: {out}");
    assert_eq!(out["io_uring"], "EPERM", "{out}");
    // ephemeralStorageSize gives a function a bigger /tmp (tmpfs pages count toward its memory).
    let roomy = dev.invoke_ok("roomy", &serde_json::json!({}));
    assert_eq!(roomy["shm_600mb"], "allowed", "{roomy}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_instance_is_frozen_between_invocations() {
    let dir = service_dir("freeze");
    std::fs::write(
        dir.join("serverless.yml"),
        "service: frz\nprovider:\n  runtime: python3.12\nfunctions:\n  ticker:\n    handler: p.ticker\n",
    )
    .unwrap();
    let dev = Dev::start(&dir);
    assert!(dev.output().contains("frozen between invocations"), "{}", dev.output());
    // The first invocation starts a background counter (100 ticks a second) and returns.
    let first = dev.invoke_ok("ticker", &serde_json::json!({}));
    std::thread::sleep(std::time::Duration::from_secs(3));
    // The same instance again: while nobody invoked it, its counter must not have run.
    // Unfrozen it counts ~300 in those 3 s; a few ticks may land before the freeze takes hold.
    let second = dev.invoke_ok("ticker", &serde_json::json!({}));
    assert_eq!(first["pid"], second["pid"], "a warm instance: {first} {second}");
    let advanced = second["ticks"].as_i64().unwrap() - first["ticks"].as_i64().unwrap();
    assert!(
        advanced < 100,
        "the background process ran between invocations: {advanced} ticks"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
