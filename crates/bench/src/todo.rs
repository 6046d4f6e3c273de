//! `sylph-bench todo`: the Todo service's `GET /dev/todos/{id}` and `POST /dev/todos` under
//! `sylph dev` (the Node.js and the Rust example) and under serverless-offline
//! (`--useInProcess`) with dynalite serving the Node.js example, in the same run, at several
//! client counts. For each run it also prints where the CPU went (the server, its function
//! processes, the load generator) per request; then the ceiling (the same handlers and SDK
//! calls in a loop in one plain Node.js process against Sylph's table API, no gateway) and how
//! each server scales from one core to two (`taskset`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::Full;

use crate::{free_port, load, print_comparison, send_once, spawn, tables, LoadResult, MakeRequest, Row, Server};

pub struct Options {
    sylph: PathBuf,
    repo: PathBuf,
    seconds: u64,
    concurrency: Vec<usize>,
    /// Skip the one-core runs.
    skip_taskset: bool,
    /// Traffic before measuring each server: V8 needs thousands of calls per instance before
    /// aws-sdk v2's request path is optimized, and each instance (like each process of
    /// serverless-offline) warms up on its own.
    warmup: u64,
}

impl Options {
    pub fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
        let mut o = Options {
            sylph: PathBuf::new(),
            repo: PathBuf::from("."),
            seconds: 5,
            concurrency: vec![1, 8, 64],
            skip_taskset: false,
            warmup: 15,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--sylph" => o.sylph = PathBuf::from(value()?).canonicalize()?,
                "--repo" => o.repo = PathBuf::from(value()?).canonicalize()?,
                "--seconds" => o.seconds = value()?.parse()?,
                "--concurrency" => {
                    o.concurrency = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?;
                }
                "--skip-taskset" => o.skip_taskset = true,
                "--warmup" => o.warmup = value()?.parse()?,
                other => bail!("unknown flag {other}"),
            }
        }
        Ok(o)
    }
}

async fn send(addr: SocketAddr, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))?;
    let (status, _, text) = send_once(addr, req).await?;
    Ok((status.as_u16(), String::from_utf8_lossy(&text).into_owned()))
}

async fn wait_for(addr: SocketAddr, path: &str, started: Instant) -> anyhow::Result<Duration> {
    let deadline = started + Duration::from_secs(300);
    while Instant::now() < deadline {
        if let Ok((200, _)) = send(addr, "GET", path, "").await {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("{addr}{path} never answered 200")
}

/// Create `n` todos and return their ids.
/// Create `n` todos through the API at `prefix` (`""` for `sylph dev`, `/apis/{id}` for a
/// `sylph server`) and return their ids.
pub(crate) async fn seed(addr: SocketAddr, prefix: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    let path = format!("{prefix}/dev/todos");
    for i in 0..n {
        let (status, body) = send(addr, "POST", &path, &format!(r#"{{"text":"seed {i}"}}"#)).await?;
        if status != 200 {
            bail!("seeding failed: {status} {body}");
        }
        let id = body
            .split("\"id\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .context("no id in the answer")?;
        ids.push(id.to_owned());
    }
    Ok(ids)
}

pub(crate) fn get_todo(addr: SocketAddr, prefix: &str, ids: Arc<Vec<String>>) -> MakeRequest {
    let prefix: Arc<str> = Arc::from(prefix);
    Arc::new(move |n| {
        let id = &ids[(n as usize) % ids.len()];
        hyper::Request::get(format!("{prefix}/dev/todos/{id}"))
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))
            .expect("valid request")
    })
}

pub(crate) fn post_todo(addr: SocketAddr, prefix: &str) -> MakeRequest {
    let path: Arc<str> = Arc::from(format!("{prefix}/dev/todos"));
    Arc::new(move |n| {
        hyper::Request::post(&*path)
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(format!(r#"{{"text":"todo number {n}"}}"#))))
            .expect("valid request")
    })
}

/// CPU time (ms) used so far by a process and its descendants: its own (all threads), and
/// its descendants' (live ones, plus those it has reaped).
#[derive(Clone, Copy, Default)]
struct Cpu {
    own_ms: f64,
    descendants_ms: f64,
}

fn cpu_of(root: u32) -> Cpu {
    let tick_ms = 1000.0 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // pid → (ppid, utime + stime, cutime + cstime) for every process.
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else { continue };
        let f: Vec<&str> = stat[close + 2..].split(' ').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // Fields after the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
        procs.push((pid, num(1) as u32, num(11) + num(12), num(13) + num(14)));
    }
    let mut cpu = Cpu::default();
    let mut family = vec![root];
    let mut i = 0;
    while i < family.len() {
        let parent = family[i];
        for &(pid, ppid, _, _) in &procs {
            if ppid == parent && !family.contains(&pid) {
                family.push(pid);
            }
        }
        i += 1;
    }
    for &(pid, _, own, reaped) in &procs {
        if pid == root {
            cpu.own_ms += own * tick_ms;
            cpu.descendants_ms += reaped * tick_ms;
        } else if family.contains(&pid) {
            cpu.descendants_ms += (own + reaped) * tick_ms;
        }
    }
    cpu
}

/// CPU (ms) this process (the load generator) has used so far.
fn own_cpu_ms() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct we own.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// Where one measured run's CPU went, per request.
pub(crate) struct CpuRow {
    server: &'static str,
    case: String,
    /// (what, ms per request)
    parts: Vec<(&'static str, f64)>,
}

/// The processes whose CPU a run counts: (label for the process itself, label for its
/// descendants, pid).
type Counted = Vec<(&'static str, &'static str, u32)>;

async fn measured_load(
    name: &'static str,
    case: String,
    addr: SocketAddr,
    make: MakeRequest,
    clients: usize,
    o: &Options,
    counted: &Counted,
    cpu_rows: &mut Vec<CpuRow>,
) -> anyhow::Result<LoadResult> {
    let before: Vec<Cpu> = counted.iter().map(|(_, _, pid)| cpu_of(*pid)).collect();
    let gen_before = own_cpu_ms();
    let result = load(addr, make, clients, Duration::from_secs(o.seconds)).await?;
    let gen = own_cpu_ms() - gen_before;
    let n = result.requests().max(1) as f64;
    let mut parts = Vec::new();
    for ((own_label, desc_label, pid), b) in counted.iter().zip(before) {
        let a = cpu_of(*pid);
        parts.push((*own_label, (a.own_ms - b.own_ms) / n));
        if !desc_label.is_empty() {
            parts.push((*desc_label, (a.descendants_ms - b.descendants_ms) / n));
        }
    }
    parts.push(("load generator", gen / n));
    eprintln!("  {name:<32} {case:<16} {:>8.0} req/s", result.rps());
    cpu_rows.push(CpuRow {
        server: name,
        case,
        parts,
    });
    Ok(result)
}

async fn measure(
    name: &'static str,
    addr: SocketAddr,
    o: &Options,
    counted: &Counted,
    rows: &mut Vec<Row>,
    cpu_rows: &mut Vec<CpuRow>,
) -> anyhow::Result<Arc<Vec<String>>> {
    let ids = Arc::new(seed(addr, "", 50).await?);
    // Warm up: start the instances the highest client count needs, and let JITs settle.
    let most = o.concurrency.iter().copied().max().unwrap_or(1);
    let half = Duration::from_secs(o.warmup.div_ceil(2));
    load(addr, get_todo(addr, "", ids.clone()), most, half).await?;
    load(addr, post_todo(addr, ""), most, half).await?;
    for &clients in &o.concurrency {
        let case = format!("GET, {clients} clients");
        let get = measured_load(
            name,
            case.clone(),
            addr,
            get_todo(addr, "", ids.clone()),
            clients,
            o,
            counted,
            cpu_rows,
        )
        .await?;
        rows.push(Row {
            server: name,
            case,
            result: get,
        });
        let case = format!("POST, {clients} clients");
        let post = measured_load(
            name,
            case.clone(),
            addr,
            post_todo(addr, ""),
            clients,
            o,
            counted,
            cpu_rows,
        )
        .await?;
        rows.push(Row {
            server: name,
            case,
            result: post,
        });
    }
    Ok(ids)
}

/// A command, pinned to `cpus` (a `taskset -c` list) when given.
fn pinned(program: &Path, cpus: Option<&str>) -> Command {
    match cpus {
        Some(list) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", list]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

fn sylph_dev(o: &Options, dir: &Path, port: u16, data: &Path, cpus: Option<&str>) -> anyhow::Result<Server> {
    let mut cmd = pinned(&o.sylph, cpus);
    cmd.args([
        "dev",
        "--quiet",
        "--no-reload",
        "--reset",
        "--port",
        &port.to_string(),
        "--data-dir",
    ])
    .arg(data)
    .current_dir(dir);
    spawn(cmd)
}

/// serverless-offline (`--useInProcess`) serving the Node.js Todo example against dynalite,
/// both pinned to `cpus` when given.
pub(crate) struct Offline {
    pub(crate) offline: Server,
    pub(crate) dynalite: Server,
    pub(crate) addr: SocketAddr,
    service: PathBuf,
}

impl Drop for Offline {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.service);
    }
}

pub(crate) async fn start_offline(repo: &Path, cpus: Option<&str>) -> anyhow::Result<Offline> {
    let bench = repo.join("bench/hello");
    let dynalite_port = free_port();
    let mut cmd = pinned(Path::new("node"), cpus);
    cmd.arg(bench.join("node_modules/dynalite/cli.js"))
        .args(["--port", &dynalite_port.to_string()]);
    let dynalite = spawn(cmd)?;
    // The same service, with the serverless-offline plugin and the benchmark's node_modules.
    let service = std::env::temp_dir().join(format!(
        "sylph-bench-todo-offline-{}-{}",
        std::process::id(),
        cpus.unwrap_or("all")
    ));
    let _ = std::fs::remove_dir_all(&service);
    copy_dir(&repo.join("examples/todo"), &service)?;
    let yml = std::fs::read_to_string(service.join("serverless.yml"))?;
    std::fs::write(
        service.join("serverless.yml"),
        format!("plugins:\n  - serverless-offline\n{yml}"),
    )?;
    std::os::unix::fs::symlink(bench.join("node_modules"), service.join("node_modules"))?;
    let endpoint = format!("http://127.0.0.1:{dynalite_port}");
    create_dynalite_table(([127, 0, 0, 1], dynalite_port).into()).await?;
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = pinned(&bench.join("node_modules/.bin/serverless"), cpus);
    // Serverless Framework v3 needs the stage spelled out for `${opt:stage, self:provider.stage}`
    // when the file sets none (Sylph applies the default).
    cmd.args([
        "offline",
        "start",
        "--stage",
        "dev",
        "--useInProcess",
        "--noTimeout",
        "--host",
        "127.0.0.1",
        "--httpPort",
        &port.to_string(),
    ])
    .args(["--lambdaPort", &free_port().to_string()])
    .env("SLS_TELEMETRY_DISABLED", "1")
    .env("SLS_NOTIFICATIONS_MODE", "off")
    .env("BENCH_DYNAMODB_ENDPOINT", &endpoint)
    .env(
        "NODE_OPTIONS",
        format!(
            "--require {}",
            repo.join("bench/offline-dynamodb-endpoint.js").display()
        ),
    )
    .current_dir(&service);
    let offline = spawn(cmd)?;
    wait_for(addr, "/dev/todos", Instant::now()).await?;
    Ok(Offline {
        offline,
        dynalite,
        addr,
        service,
    })
}

/// Where Sylph keeps the SDKs functions get (as `sylph dev` finds them).
fn sylph_node_path() -> PathBuf {
    std::env::var_os("SYLPH_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share/sylph"))
        .join("runtime/node/node_modules")
}

/// The ceiling: requests/s of the `get` and `create` handlers driven back to back in one
/// plain Node.js process against the table API at `addr`.
fn ceiling(o: &Options, addr: SocketAddr, ids: &[String]) -> anyhow::Result<(f64, f64)> {
    let out = Command::new("node")
        .arg(o.repo.join("bench/todo-ceiling.js"))
        .arg(format!("http://{addr}"))
        .arg("todo-dev")
        .arg(o.seconds.to_string())
        .arg(ids.join(","))
        .env("NODE_PATH", sylph_node_path())
        .output()
        .context("run node bench/todo-ceiling.js")?;
    if !out.status.success() {
        bail!("the ceiling run failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> anyhow::Result<f64> {
        let rest = text
            .split(&format!("\"{name}\":"))
            .nth(1)
            .with_context(|| format!("no {name} in {text}"))?;
        Ok(rest.split([',', '}']).next().unwrap_or_default().trim().parse()?)
    };
    Ok((field("get")?, field("post")?))
}

/// GET and POST at 8 clients on one server, for the one-core/two-core comparison.
async fn scaling_point(
    name: &'static str,
    addr: SocketAddr,
    o: &Options,
    counted: &Counted,
    cpu_rows: &mut Vec<CpuRow>,
) -> anyhow::Result<(f64, f64)> {
    let ids = Arc::new(seed(addr, "", 50).await?);
    let half = Duration::from_secs(o.warmup.div_ceil(2));
    load(addr, get_todo(addr, "", ids.clone()), 8, half).await?;
    load(addr, post_todo(addr, ""), 8, half).await?;
    let get = measured_load(
        name,
        "GET, 8 clients".into(),
        addr,
        get_todo(addr, "", ids),
        8,
        o,
        counted,
        cpu_rows,
    )
    .await?;
    let post = measured_load(
        name,
        "POST, 8 clients".into(),
        addr,
        post_todo(addr, ""),
        8,
        o,
        counted,
        cpu_rows,
    )
    .await?;
    Ok((get.rps(), post.rps()))
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut cpu_rows = Vec::new();
    let mut ceilings = None;
    let data = std::env::temp_dir().join(format!("sylph-bench-todo-{}", std::process::id()));
    for (name, example) in [
        ("sylph dev (Node.js example)", "examples/todo"),
        ("sylph dev (Rust example)", "examples/todo-rust"),
    ] {
        eprintln!("{name} ...");
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let server = sylph_dev(&o, &o.repo.join(example), port, &data, None)?;
        wait_for(addr, "/dev/todos", Instant::now()).await?;
        let counted = vec![("sylph", "function instances", server.pid())];
        let ids = measure(name, addr, &o, &counted, &mut rows, &mut cpu_rows).await?;
        if example == "examples/todo" {
            eprintln!("  the ceiling: the same handlers in one plain Node.js process ...");
            ceilings = Some(ceiling(&o, addr, &ids)?);
        }
        drop(server);
        let _ = std::fs::remove_dir_all(&data);
    }

    eprintln!("serverless-offline --useInProcess + dynalite ...");
    let offline = start_offline(&o.repo, None).await?;
    let counted = vec![
        ("serverless-offline", "", offline.offline.pid()),
        ("dynalite", "", offline.dynalite.pid()),
    ];
    measure(
        "serverless-offline + dynalite",
        offline.addr,
        &o,
        &counted,
        &mut rows,
        &mut cpu_rows,
    )
    .await?;
    drop(offline);

    // One core against two, for both.
    let mut scaling = Vec::new();
    if !o.skip_taskset {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let all = format!("0-{}", cores - 1);
        let mut scaling_rows = Vec::new();
        for (label, cpus) in [("1 core", "0"), ("all cores", all.as_str())] {
            eprintln!("sylph dev (Node.js example) on {label} ...");
            let port = free_port();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let server = sylph_dev(&o, &o.repo.join("examples/todo"), port, &data, Some(cpus))?;
            wait_for(addr, "/dev/todos", Instant::now()).await?;
            let counted = vec![("sylph", "function instances", server.pid())];
            let s = scaling_point("sylph dev (Node.js), taskset", addr, &o, &counted, &mut scaling_rows).await?;
            drop(server);
            let _ = std::fs::remove_dir_all(&data);
            eprintln!("serverless-offline + dynalite on {label} ...");
            let offline = start_offline(&o.repo, Some(cpus)).await?;
            let counted = vec![
                ("serverless-offline", "", offline.offline.pid()),
                ("dynalite", "", offline.dynalite.pid()),
            ];
            let f = scaling_point(
                "serverless-offline, taskset",
                offline.addr,
                &o,
                &counted,
                &mut scaling_rows,
            )
            .await?;
            drop(offline);
            scaling.push((label, cpus.to_owned(), s, f));
        }
    }

    println!();
    println!(
        "Todo service, {} s per run after {} s of warm-up traffic per server; clients keep one connection each",
        o.seconds, o.warmup
    );
    println!();
    print_comparison("case", "serverless-offline", &rows);
    println!();
    println!("Where the CPU went, ms per request (the whole machine's work for one request)");
    println!();
    println!("| server | case | CPU ms per request |");
    println!("|---|---|---|");
    for row in &cpu_rows {
        let total: f64 = row.parts.iter().map(|(_, ms)| ms).sum();
        let parts: Vec<String> = row.parts.iter().map(|(what, ms)| format!("{what} {ms:.3}")).collect();
        println!("| {} | {} | {total:.3} = {} |", row.server, row.case, parts.join(" + "));
    }
    if let Some((get, post)) = ceilings {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        println!();
        println!(
            "The ceiling: the same handlers and aws-sdk v2 calls back to back in one plain Node.js process against Sylph's table API (no gateway), times the {cores} cores functions may use"
        );
        println!();
        println!("| route | ceiling req/s (1 process) | × {cores} cores | best sylph dev (Node.js) req/s | share of ceiling × cores |");
        println!("|---|---:|---:|---:|---:|");
        for (route, one, prefix) in [("GET /dev/todos/{id}", get, "GET"), ("POST /dev/todos", post, "POST")] {
            let best = rows
                .iter()
                .filter(|r| r.server.contains("Node.js") && r.case.starts_with(prefix))
                .map(|r| r.result.rps())
                .fold(0.0, f64::max);
            println!(
                "| {route} | {one:.0} | {:.0} | {best:.0} | {:.0}% |",
                one * cores,
                100.0 * best / (one * cores)
            );
        }
    }
    if !scaling.is_empty() {
        println!();
        println!("One core against all: each server (and its table store) pinned with taskset, 8 clients");
        println!();
        println!("| server | route | 1 core req/s | all cores req/s | scaling |");
        println!("|---|---|---:|---:|---:|");
        let one = &scaling[0];
        let all = &scaling[scaling.len() - 1];
        for (server, pick) in [
            ("sylph dev (Node.js example)", 0usize),
            ("serverless-offline + dynalite", 1),
        ] {
            for (route, get) in [("GET", true), ("POST", false)] {
                let value = |point: &(&str, String, (f64, f64), (f64, f64))| {
                    let pair = if pick == 0 { point.2 } else { point.3 };
                    if get {
                        pair.0
                    } else {
                        pair.1
                    }
                };
                println!(
                    "| {server} | {route} | {:.0} | {:.0} | {:.2}x |",
                    value(one),
                    value(all),
                    value(all) / value(one)
                );
            }
        }
    }
    Ok(())
}

async fn create_dynalite_table(addr: SocketAddr) -> anyhow::Result<()> {
    let body = r#"{"TableName":"todo-dev","BillingMode":"PAY_PER_REQUEST","KeySchema":[{"AttributeName":"id","KeyType":"HASH"}],"AttributeDefinitions":[{"AttributeName":"id","AttributeType":"S"}]}"#;
    tables::wait_ready(addr).await?;
    let (status, text) = tables::call(addr, "CreateTable", body.into()).await?;
    if status != 200 {
        bail!("dynalite CreateTable: {status} {text}");
    }
    // dynalite makes the table ACTIVE after a short delay.
    tokio::time::sleep(Duration::from_millis(800)).await;
    Ok(())
}

pub(crate) fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "node_modules" || name == ".sylph" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type()?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}
