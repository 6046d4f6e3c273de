//! Starting a runtime process: its output pipes, network, limit groups, sandbox and the
//! descriptors it inherits at fixed numbers.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use sylph_model::Runtime as RuntimeId;
use tokio::net::TcpListener;

use super::{Family, Inner};
use crate::netns::{InstanceNet, RUNTIME_API_ADDR};
use crate::{InstanceConfig, StartError};

/// Lambda's limit on open files per execution environment.
const MAX_OPEN_FILES: libc::rlim_t = 1024;

/// A started process, not yet an instance of any particular function. Dropping it kills the
/// process (`kill_on_drop`).
/// What [`Inner::spawn_process`] starts.
pub(super) struct ProcessSpec<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    /// The whole environment it starts with.
    pub env: &'a BTreeMap<String, String>,
    pub cwd: &'a Path,
    /// Where it gets the frame channel, if it gets one.
    pub channel: ChannelAt,
    pub runtime_api: Option<TcpListener>,
    pub net: Option<InstanceNet>,
    /// The function's name, for messages.
    pub label: &'a str,
    pub memory_mb: u32,
    pub tmp_mb: u32,
    /// Folders it sees inside the sandbox beyond the system's.
    pub visible: &'a [PathBuf],
    /// (host path, path inside the sandbox) bound read-only elsewhere: layers under `/opt`.
    pub mounts: &'a [(PathBuf, PathBuf)],
    /// Started ahead of demand: it runs at the lowest CPU priority until it becomes a function,
    /// so that filling the pool never slows the invocations being served.
    pub background: bool,
}

/// Where a runtime process finds its end of the frame channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChannelAt {
    /// No channel: it speaks the HTTP Runtime API.
    None,
    /// At fd 3, named by `SYLPH_RUNTIME_FD` (Sylph's Node.js and Python bootstraps).
    RuntimeFd,
    /// As its standard input: Sylph's Java launcher (Java has no way to open an inherited
    /// socket by number, but reads and writes its standard input as plain descriptor 0).
    Stdin,
}

/// The nice value of runtimes started ahead of demand.
pub(super) const BACKGROUND_NICE: i32 = 19;

/// Whether this process may lower nice values again: CAP_SYS_NICE in its effective set (root
/// in a container often lacks it), or an RLIMIT_NICE that allows nice 0.
fn can_raise_priority() -> bool {
    const CAP_SYS_NICE: u32 = 23;
    let has_cap = std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .is_some_and(|caps| caps & (1 << CAP_SYS_NICE) != 0)
    });
    // SAFETY: a plain query of our own limits.
    has_cap
        || unsafe {
            let mut limit = std::mem::zeroed::<libc::rlimit>();
            libc::getrlimit(libc::RLIMIT_NICE, &mut limit) == 0 && limit.rlim_cur >= 20
        }
}

pub(super) struct Spawned {
    pub(super) child: tokio::process::Child,
    pub(super) pid: u32,
    pub(super) out_r: std::os::fd::OwnedFd,
    pub(super) err_r: std::os::fd::OwnedFd,
    pub(super) channel: Option<std::os::unix::net::UnixStream>,
    /// The HTTP Runtime API listener, for runtimes that do not use the frame channel.
    pub(super) runtime_api: Option<TcpListener>,
    /// The instance's own network namespace, with Sylph's API listener inside it.
    pub(super) net: Option<InstanceNet>,
    pub(super) spawned_at: Instant,
    /// The limit groups the process was started in.
    pub(super) memory: Option<crate::limits::InstanceGroup>,
    pub(super) pids: Option<crate::limits::InstanceGroup>,
    pub(super) freezer: Option<crate::limits::InstanceGroup>,
    /// The package a pre-started JVM preloaded; only its functions may take it.
    pub(super) java_code: Option<PathBuf>,
}

impl Inner {
    /// The instance's network: its own namespace when isolated, with an HTTP Runtime API
    /// listener when `http_api`; and the address the runtime is told (AWS_LAMBDA_RUNTIME_API).
    pub(super) async fn network(
        &self,
        http_api: bool,
    ) -> Result<(Option<InstanceNet>, Option<TcpListener>, String), StartError> {
        if self.isolated_network {
            // Creating a namespace, its routes and slirp4netns blocks for milliseconds: off the
            // async workers, or a burst of starts (and pool refills) stalls every request.
            let port = self.sylph_api_port.get().copied();
            let outbound = self.outbound.get().cloned();
            let mut net = tokio::task::spawn_blocking(move || InstanceNet::create(http_api, port, outbound.as_ref()))
                .await
                .map_err(|e| StartError::Listen(std::io::Error::other(e)))?
                .map_err(StartError::Listen)?;
            let listener = net
                .runtime_api
                .take()
                .map(TcpListener::from_std)
                .transpose()
                .map_err(StartError::Listen)?;
            return Ok((Some(net), listener, RUNTIME_API_ADDR.to_string()));
        }
        if http_api {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(StartError::Listen)?;
            let addr = listener.local_addr().map_err(StartError::Listen)?.to_string();
            return Ok((None, Some(listener), addr));
        }
        // Frame-channel runtimes never use HTTP; the variable is set as Lambda sets it.
        Ok((None, None, RUNTIME_API_ADDR.to_string()))
    }

    /// The program and arguments of a new instance.
    pub(super) fn command_for(&self, config: &InstanceConfig) -> Result<(PathBuf, Vec<String>), StartError> {
        let f = &config.function;
        Ok(match &f.runtime {
            RuntimeId::Node(_) => self.program_for(&f.runtime, Family::Node),
            RuntimeId::Python(_) => self.program_for(&f.runtime, Family::Python),
            RuntimeId::Provided(_) => (provided_bootstrap(config)?, Vec::new()),
            RuntimeId::Java(_) => self.java_command(config)?,
            RuntimeId::Wasm(_) => {
                return Err(StartError::Package {
                    function: f.name.clone(),
                    reason: "a wasi-http component runs in the WebAssembly runtime, not as a process".to_owned(),
                })
            }
        })
    }

    /// Start a process: its output pipes, its Runtime API listener and (for Sylph's own
    /// bootstraps) its frame channel.
    pub(super) async fn spawn_process(&self, spec: ProcessSpec<'_>) -> Result<Spawned, StartError> {
        let ProcessSpec {
            program,
            args,
            env,
            cwd,
            channel,
            runtime_api,
            net,
            label,
            memory_mb,
            tmp_mb,
            visible,
            mounts,
            background,
        } = spec;
        let memory = self.limit_group(self.memory.as_ref(), memory_mb, label);
        let pids = self.limit_group(self.pids.as_ref(), 0, label);
        let freezer = self.limit_group(self.freezer.as_ref(), 0, label);
        let groups: Vec<&crate::limits::InstanceGroup> =
            memory.iter().chain(pids.iter()).chain(freezer.iter()).collect();
        // Only where the priority can be raised again when the process becomes a function:
        // that takes CAP_SYS_NICE, and a group listing every thread of the process tree.
        let background = background && !groups.is_empty() && can_raise_priority();
        let spawn_err = |source| StartError::Spawn {
            function: label.to_owned(),
            program: program.display().to_string(),
            source,
        };
        let (out_r, out_w) = std::io::pipe().map_err(spawn_err)?;
        let (err_r, err_w) = std::io::pipe().map_err(spawn_err)?;
        // Sylph's own bootstraps talk over a socketpair (fd 3) instead of HTTP: see pipe.rs.
        let channel_at = channel;
        let channel = if channel != ChannelAt::None {
            Some(std::os::unix::net::UnixStream::pair().map_err(spawn_err)?)
        } else {
            None
        };
        let child_fd = channel.as_ref().map(|(_, child)| child.as_raw_fd());
        let procs: Vec<std::ffi::CString> = groups.iter().map(|g| g.procs.clone()).collect();
        let seccomp = match &self.sandbox {
            // Fail closed: no instance starts without its filters.
            Some(_) => crate::sandbox::seccomp_programs().map_err(spawn_err)?,
            None => Vec::new(),
        };
        // Descriptors the child gets at fixed numbers: (ours, theirs). At most four: the frame
        // channel and three seccomp filters; a fixed array, as nothing may allocate after fork.
        let mut inherited = [(-1, -1); 4];
        if let Some(fd) = child_fd {
            let theirs = match channel_at {
                ChannelAt::Stdin => 0,
                _ => crate::pipe::RUNTIME_FD,
            };
            inherited[0] = (fd, theirs);
        }
        for (i, f) in seccomp.iter().take(3).enumerate() {
            inherited[1 + i] = (f.as_raw_fd(), crate::sandbox::FIRST_SECCOMP_FD + i as i32);
        }
        let seccomp_filters = seccomp.len().min(3);
        let netns_fd = net.as_ref().map(InstanceNet::namespace_fd);
        let (program, args): (PathBuf, Vec<String>) = match &self.sandbox {
            Some(sb) => {
                let mut seen: Vec<&Path> = visible.iter().map(PathBuf::as_path).collect();
                // The working folder (the service) and the program itself (a `provided`
                // bootstrap may live in a build folder); never `/` or `/tmp`, which would
                // expose the host's.
                for p in [cwd, program] {
                    if p != Path::new("/") && p != Path::new("/tmp") {
                        seen.push(p);
                    }
                }
                let resolv_conf = self.outbound.get().map(|_| self.bootstrap_dir.join("resolv.conf"));
                sb.wrap(
                    program,
                    args,
                    cwd,
                    &seen,
                    mounts,
                    seccomp_filters,
                    tmp_mb,
                    resolv_conf.as_deref(),
                )
            }
            None => (program.to_path_buf(), args.to_vec()),
        };
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&args)
            .current_dir(cwd)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(out_w)
            .stderr(err_w)
            .process_group(0)
            .kill_on_drop(true);
        if channel_at == ChannelAt::RuntimeFd {
            cmd.env("SYLPH_RUNTIME_FD", crate::pipe::RUNTIME_FD.to_string());
        }
        let sandboxed = self.sandbox.is_some();
        // SAFETY: prctl, setns, setrlimit and dup2 are async-signal-safe and touch no memory of
        // the parent.
        let sylph_pid = std::process::id() as libc::pid_t;
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // Sylph may have exited between the fork and the line above, in which case no
                // signal will ever come: do not start at all (this left orphans when Sylph was
                // stopped while pre-started runtimes were being spawned).
                if libc::getppid() != sylph_pid {
                    return Err(std::io::Error::other("sylph has exited"));
                }
                if background {
                    // Inherited by every thread and process the runtime starts.
                    libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE);
                }
                if let Some(fd) = netns_fd {
                    // The instance's own network, before bubblewrap builds the rest.
                    crate::netns::join_from_child(fd)?;
                }
                for p in &procs {
                    // Join the limit groups before exec, so everything the runtime does counts.
                    crate::limits::join_from_child(p)?;
                }
                // Move each inherited descriptor out of the way first (to 100 and up), so that
                // placing one at its number never closes another still to be placed.
                let mut moved = [-1; 4];
                for (i, (ours, _)) in inherited.iter().enumerate() {
                    if *ours >= 0 {
                        moved[i] = libc::fcntl(*ours, libc::F_DUPFD_CLOEXEC, 100);
                        if moved[i] < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                }
                for (i, (_, theirs)) in inherited.iter().enumerate() {
                    // dup2 clears close-on-exec on the new descriptor, so the child inherits it
                    // (bubblewrap reads the seccomp filters; the runtime keeps the channel).
                    if moved[i] >= 0 && libc::dup2(moved[i], *theirs) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if sandboxed {
                    // Lambda's limit on open files, for the runtime and everything it starts.
                    // Last: the moves above may need descriptors past it (a busy Sylph holds
                    // many); those copies are close-on-exec and gone once bubblewrap starts.
                    let files = libc::rlimit {
                        rlim_cur: MAX_OPEN_FILES,
                        rlim_max: MAX_OPEN_FILES,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &files) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let spawned_at = Instant::now();
        let child = cmd.spawn().map_err(spawn_err)?;
        // Drop our copies of the pipes' write ends so the readers see EOF when the child exits.
        drop(cmd);
        drop(seccomp);
        let pid = child.id().unwrap_or(0);
        let channel = channel.map(|(ours, theirs)| {
            drop(theirs);
            ours
        });
        Ok(Spawned {
            child,
            pid,
            out_r: out_r.into(),
            err_r: err_r.into(),
            channel,
            runtime_api,
            net,
            spawned_at,
            memory,
            pids,
            freezer,
            java_code: None,
        })
    }

    pub(super) fn limit_group(
        &self,
        cgroups: Option<&crate::limits::Cgroups>,
        limit_mb: u32,
        label: &str,
    ) -> Option<crate::limits::InstanceGroup> {
        match cgroups?.create(limit_mb) {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::warn!(function = %label, "limit not applied: {e}");
                None
            }
        }
    }
}

pub(super) fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("signal: {sig} ({})", signal_name(sig)),
        _ => "unknown exit status".to_owned(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => "killed",
        libc::SIGSEGV => "segmentation fault",
        libc::SIGABRT => "aborted",
        libc::SIGTERM => "terminated",
        _ => "signal",
    }
}

/// Where a `provided.*` function's executable `bootstrap` is.
fn provided_bootstrap(config: &InstanceConfig) -> Result<PathBuf, StartError> {
    let f = &config.function;
    let mut candidates = Vec::new();
    if let Some(artifact) = &f.artifact {
        if artifact.is_dir() {
            candidates.push(artifact.join("bootstrap"));
        } else {
            candidates.push(artifact.clone());
        }
    }
    candidates.push(config.root.join("bootstrap"));
    candidates.push(config.root.join("target/lambda").join(&f.key).join("bootstrap"));
    if let Some(found) = candidates.iter().find(|p| is_executable(p)) {
        return Ok(found.clone());
    }
    if let Some(zip) = candidates.iter().find(|p| p.extension().is_some_and(|e| e == "zip")) {
        return Err(StartError::NotFound {
            function: f.name.clone(),
            what: format!("an unpacked bootstrap ({} is a zip)", zip.display()),
            help: "point package.artifact at the folder or the bootstrap file itself".into(),
        });
    }
    Err(StartError::NotFound {
        function: f.name.clone(),
        what: format!(
            "an executable `bootstrap` (looked at {})",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        help: "build it (for example with `cargo lambda build`) or set package.artifact to it".into(),
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
