//! Per-instance limits with the kernel's cgroups: each instance gets its own memory group whose
//! limit is the function's memorySize (a function over it is killed by the OOM killer — alone —
//! and its invocation fails with an error naming the limit), and its own pids group, so a fork
//! bomb stops at Lambda's 1024 processes and threads instead of taking the host down.
//!
//! Uses cgroup v1 controllers (`N:memory:/path` in /proc/self/cgroup) or cgroup v2 (`0::/path`
//! with the controller delegated), whichever the host lets Sylph write; where neither is
//! writable, the limit is reported as not enforced at start.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    V1,
    V2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    Memory,
    Pids,
    /// cgroup v1's freezer; under v2 every group has `cgroup.freeze` (the memory group is used).
    Freezer,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Freezer => "freezer",
        }
    }
}

/// Lambda's limit on processes and threads per execution environment.
pub const MAX_PROCESSES: u32 = 1024;

/// Where instance groups of one controller are created.
#[derive(Debug, Clone)]
pub struct Cgroups {
    controller: Controller,
    mode: Mode,
    parent: PathBuf,
}

/// One instance's group; removed (once empty) when dropped.
#[derive(Debug)]
pub struct InstanceGroup {
    controller: Controller,
    mode: Mode,
    path: PathBuf,
    /// `cgroup.procs` as a C string, written by the child itself before it execs.
    pub procs: CString,
    pub limit_mb: u32,
    /// Freezes and thaws the group (v1's freezer groups, every v2 group).
    freeze: Option<Arc<FreezeSwitch>>,
    /// The memory controller's high-water mark file, kept open: it is read after every
    /// invocation (REPORT's Max Memory Used), one `pread` instead of a path lookup and open.
    peak: Option<std::fs::File>,
}

/// Freezes and thaws one group's processes through its control file (`freezer.state` on v1,
/// `cgroup.freeze` on v2), kept open. Lambda freezes an execution environment between
/// invocations, so that background work makes no progress while nobody pays for it. Here the
/// freeze comes [`FreezeSwitch::GRACE`] after an invocation ends, unless the next one has
/// started by then: under steady traffic an instance is never frozen and thawed (each is a
/// write, and the kernel wakes every thread of the instance), and the answer never waits
/// for the freeze.
#[derive(Debug)]
pub struct FreezeSwitch {
    file: std::fs::File,
    mode: Mode,
    state: Mutex<SwitchState>,
}

#[derive(Debug, Default)]
struct SwitchState {
    frozen: bool,
    /// Bumped by every thaw: a pending freeze from before it is void.
    generation: u64,
}

impl FreezeSwitch {
    /// How long after an invocation an idle instance is frozen.
    pub const GRACE: std::time::Duration = std::time::Duration::from_millis(2);

    fn write(&self, frozen: bool) -> std::io::Result<()> {
        let value: &[u8] = match (self.mode, frozen) {
            (Mode::V1, true) => b"FROZEN",
            (Mode::V1, false) => b"THAWED",
            (Mode::V2, true) => b"1",
            (Mode::V2, false) => b"0",
        };
        std::os::unix::fs::FileExt::write_all_at(&self.file, value, 0)
    }

    /// Resume the group now if it is frozen (before an invocation, or so that a kill takes
    /// effect), and cancel a freeze still pending.
    pub fn thaw(&self) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.generation += 1;
        if state.frozen {
            self.write(false)?;
            state.frozen = false;
        }
        Ok(())
    }

    /// Freeze the group [`FreezeSwitch::GRACE`] from now, unless [`FreezeSwitch::thaw`] is
    /// called first. Needs a tokio runtime.
    pub fn freeze_soon(self: &Arc<Self>) {
        let generation = self.state.lock().unwrap_or_else(|e| e.into_inner()).generation;
        let switch = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Self::GRACE).await;
            let mut state = switch.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.generation != generation || state.frozen {
                return;
            }
            match switch.write(true) {
                Ok(()) => state.frozen = true,
                Err(e) => tracing::warn!("cannot freeze an idle instance: {e}"),
            }
        });
    }
}

impl Cgroups {
    /// Find a writable cgroup parent of `controller` for this process, if the host has one.
    pub fn detect(controller: Controller) -> Option<Cgroups> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let name = controller.name();
        // cgroup v1: a hierarchy with the controller.
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            if controllers.split(',').any(|c| c == name) {
                let base = Path::new("/sys/fs/cgroup")
                    .join(name)
                    .join(path.trim_start_matches('/'));
                if let Some(c) = Cgroups::probe(controller, Mode::V1, base) {
                    return Some(c);
                }
            }
        }
        // cgroup v2: the unified hierarchy, if memory can be delegated to children there.
        for line in own.lines() {
            if let Some(path) = line.strip_prefix("0::") {
                for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                    let base = Path::new(root).join(path.trim_start_matches('/'));
                    let controllers = std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
                    if controllers.split_whitespace().any(|c| c == name) {
                        if let Some(c) = Cgroups::probe(controller, Mode::V2, base) {
                            return Some(c);
                        }
                    }
                }
            }
        }
        None
    }

    /// Can we make a child group with a memory limit under `base`?
    fn probe(controller: Controller, mode: Mode, base: PathBuf) -> Option<Cgroups> {
        remove_stale(&base);
        let parent = base.join(format!("sylph-{}", std::process::id()));
        std::fs::create_dir_all(&parent).ok()?;
        if mode == Mode::V2 {
            // Children of `parent` may only use the controller if `parent` delegates it. In v2 a
            // process is in exactly one group, so the memory group also carries pids.max.
            std::fs::write(parent.join("cgroup.subtree_control"), format!("+{}", controller.name())).ok()?;
            if controller == Controller::Memory {
                let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+pids");
            }
        }
        let probe = Cgroups::holding(controller, mode, parent);
        let group = probe.create(128).ok()?;
        drop(group);
        Some(probe)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The folder this Sylph's instance groups live in (`…/sylph-<pid>`).
    pub fn parent(&self) -> &Path {
        &self.parent
    }

    pub fn describe(&self) -> String {
        let v = match self.mode {
            Mode::V1 => "cgroup v1",
            Mode::V2 => "cgroup v2",
        };
        format!("{v} {} controller ({})", self.controller.name(), self.parent.display())
    }

    /// A new group limited to `limit_mb` (memory) or [`MAX_PROCESSES`] (pids).
    pub fn create(&self, limit_mb: u32) -> std::io::Result<InstanceGroup> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = self.parent.join(format!("i{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir(&path)?;
        let bytes = u64::from(limit_mb) * 1024 * 1024;
        let result = match (self.controller, self.mode) {
            (Controller::Pids, _) => std::fs::write(path.join("pids.max"), MAX_PROCESSES.to_string()),
            (Controller::Freezer, _) => Ok(()),
            (Controller::Memory, Mode::V1) => {
                // Charges follow a process moved in after it started (pre-started runtimes).
                let _ = std::fs::write(path.join("memory.move_charge_at_immigrate"), "3");
                std::fs::write(path.join("memory.limit_in_bytes"), bytes.to_string()).and_then(|()| {
                    // Without this a function could spill into swap instead of being stopped.
                    let _ = std::fs::write(path.join("memory.memsw.limit_in_bytes"), bytes.to_string());
                    Ok(())
                })
            }
            (Controller::Memory, Mode::V2) => {
                std::fs::write(path.join("memory.max"), bytes.to_string()).and_then(|()| {
                    let _ = std::fs::write(path.join("memory.swap.max"), "0");
                    // Where pids is delegated too, the same (only) group caps processes.
                    let _ = std::fs::write(path.join("pids.max"), MAX_PROCESSES.to_string());
                    Ok(())
                })
            }
        };
        if let Err(e) = result {
            let _ = std::fs::remove_dir(&path);
            return Err(e);
        }
        let procs =
            CString::new(path.join("cgroup.procs").to_string_lossy().into_owned()).map_err(std::io::Error::other)?;
        let freeze_file = match (self.controller, self.mode) {
            (Controller::Freezer, Mode::V1) => Some("freezer.state"),
            (_, Mode::V2) => Some("cgroup.freeze"),
            _ => None,
        };
        let freeze = freeze_file
            .and_then(|f| std::fs::OpenOptions::new().write(true).open(path.join(f)).ok())
            .map(|file| {
                Arc::new(FreezeSwitch {
                    file,
                    mode: self.mode,
                    state: Mutex::default(),
                })
            });
        let peak_file = match (self.controller, self.mode) {
            (Controller::Memory, Mode::V1) => Some("memory.max_usage_in_bytes"),
            (Controller::Memory, Mode::V2) => Some("memory.peak"),
            _ => None,
        };
        let peak = peak_file.and_then(|f| std::fs::File::open(path.join(f)).ok());
        Ok(InstanceGroup {
            controller: self.controller,
            mode: self.mode,
            path,
            procs,
            limit_mb,
            freeze,
            peak,
        })
    }
}

impl InstanceGroup {
    /// Whether this group can stop and resume its processes: v1's freezer groups, and every
    /// v2 group (`cgroup.freeze`).
    pub fn can_freeze(&self) -> bool {
        matches!(
            (self.controller, self.mode),
            (Controller::Freezer, Mode::V1) | (_, Mode::V2)
        )
    }

    /// Set the nice value of every thread in the group (a pre-started runtime becoming a
    /// function leaves the background priority it loaded at). Passes repeat until one finds no
    /// thread it had not set, so that a thread started meanwhile is not left behind.
    pub fn set_priority(&self, nice: i32) -> std::io::Result<()> {
        let threads = match self.mode {
            Mode::V1 => "tasks",
            Mode::V2 => "cgroup.threads",
        };
        let mut done = std::collections::HashSet::new();
        for _ in 0..4 {
            let list = std::fs::read_to_string(self.path.join(threads))?;
            let mut new = false;
            for tid in list.split_whitespace().filter_map(|t| t.parse::<libc::id_t>().ok()) {
                if !done.insert(tid) {
                    continue;
                }
                new = true;
                // SAFETY: setpriority on a thread id of our own instance's group.
                if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } != 0 {
                    let e = std::io::Error::last_os_error();
                    // A thread that exited meanwhile is no error.
                    if e.raw_os_error() != Some(libc::ESRCH) {
                        return Err(e);
                    }
                }
            }
            if !new {
                return Ok(());
            }
        }
        Ok(())
    }

    /// What freezes and thaws the group, where it can.
    pub fn freeze_switch(&self) -> Option<&Arc<FreezeSwitch>> {
        self.freeze.as_ref()
    }

    /// Change a memory group's limit (a pre-started runtime becoming a function).
    pub fn set_limit_mb(&mut self, limit_mb: u32) -> std::io::Result<()> {
        if self.controller != Controller::Memory {
            return Ok(());
        }
        let bytes = (u64::from(limit_mb) * 1024 * 1024).to_string();
        match self.mode {
            Mode::V1 => {
                // memsw must stay >= the memory limit: lower memory first when shrinking.
                std::fs::write(self.path.join("memory.limit_in_bytes"), &bytes)?;
                let _ = std::fs::write(self.path.join("memory.memsw.limit_in_bytes"), &bytes);
            }
            Mode::V2 => std::fs::write(self.path.join("memory.max"), &bytes)?,
        }
        self.limit_mb = limit_mb;
        Ok(())
    }

    /// Whether the kernel had to stop something in this group for going over its limit.
    pub fn hit_limit(&self) -> bool {
        if self.controller != Controller::Memory {
            return false;
        }
        match self.mode {
            Mode::V1 => {
                let oom_kills = std::fs::read_to_string(self.path.join("memory.oom_control"))
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                // Only a kill counts: failcnt also rises when the kernel merely reclaims cache.
                oom_kills > 0
            }
            Mode::V2 => std::fs::read_to_string(self.path.join("memory.events"))
                .unwrap_or_default()
                .lines()
                .any(|l| l.strip_prefix("oom_kill ").is_some_and(|v| v.trim() != "0")),
        }
    }

    /// Peak memory of the group, in MB: the controller's high-water mark, or (for a runtime
    /// moved in after it started, whose earlier pages the mark misses) the largest resident
    /// high-water mark of its processes.
    pub fn peak_mb(&self) -> Option<u64> {
        if self.controller != Controller::Memory {
            return None;
        }
        // One small read on the request path; the process scan only when the mark has nothing.
        let group = self.peak.as_ref().map_or(0, |file| {
            let mut buf = [0u8; 32];
            std::os::unix::fs::FileExt::read_at(file, &mut buf, 0)
                .ok()
                .and_then(|n| std::str::from_utf8(&buf[..n]).ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        });
        if group > 0 {
            return Some(group.div_ceil(1024 * 1024));
        }
        let procs = std::fs::read_to_string(self.path.join("cgroup.procs")).unwrap_or_default();
        let hwm = procs
            .split_whitespace()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .filter_map(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .max()
            .unwrap_or(0)
            * 1024;
        let bytes = group.max(hwm);
        (bytes > 0).then(|| bytes.div_ceil(1024 * 1024))
    }
}

impl Drop for InstanceGroup {
    fn drop(&mut self) {
        // Close the control files before the group goes.
        drop(self.freeze.take());
        drop(self.peak.take());
        // A group can only be removed once its processes are gone, which takes the kernel a
        // moment after the kill: retry briefly off the caller's thread.
        if std::fs::remove_dir(&self.path).is_err() {
            let path = std::mem::take(&mut self.path);
            std::thread::spawn(move || {
                for _ in 0..100 {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    if std::fs::remove_dir(&path).is_ok() || !path.exists() {
                        break;
                    }
                }
            });
        }
    }
}

impl Cgroups {
    /// Remove leftover groups whose processes are gone (at shutdown).
    fn sweep(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.parent) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
    }
}

/// How many `Cgroups` of this process use each parent folder. `sylph server` runs a process
/// runtime per service version, all in one `sylph-<pid>` folder: only the last one to go may
/// sweep it and remove it, or a retired version would pull the folder from under the ones
/// still serving.
static PARENT_USERS: std::sync::Mutex<Vec<(PathBuf, usize)>> = std::sync::Mutex::new(Vec::new());

impl Cgroups {
    fn holding(controller: Controller, mode: Mode, parent: PathBuf) -> Cgroups {
        let mut users = PARENT_USERS.lock().unwrap_or_else(|e| e.into_inner());
        match users.iter_mut().find(|(p, _)| *p == parent) {
            Some((_, n)) => *n += 1,
            None => users.push((parent.clone(), 1)),
        }
        Cgroups {
            controller,
            mode,
            parent,
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        let last = {
            let mut users = PARENT_USERS.lock().unwrap_or_else(|e| e.into_inner());
            match users.iter().position(|(p, _)| *p == self.parent) {
                Some(i) if users[i].1 > 1 => {
                    users[i].1 -= 1;
                    false
                }
                Some(i) => {
                    users.swap_remove(i);
                    true
                }
                None => true,
            }
        };
        if last {
            self.sweep();
            let _ = std::fs::remove_dir(&self.parent);
        }
    }
}

/// Remove the (empty) groups of earlier Sylph processes that are gone, e.g. after a `kill -9`.
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("sylph-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let groups = clean_up_after(&[e.path()]);
        tracing::info!(
            "cleaned up after sylph {pid}, which is gone: {} and {groups} instance groups in it",
            e.path().display()
        );
    }
}

/// Stop what a dead Sylph left in one of its instance groups. An instance frozen between
/// invocations when Sylph was killed cannot act on its parent-death signal until it is thawed:
/// thaw it, and kill whatever is in the group.
fn stop_leftovers(group: &Path) {
    let _ = std::fs::write(group.join("freezer.state"), "THAWED");
    let _ = std::fs::write(group.join("cgroup.freeze"), "0");
    let procs = std::fs::read_to_string(group.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
        // SAFETY: signalling a process found in a group of Sylph's own, whose owner is gone.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// How long clean-up after a dead Sylph keeps trying to empty and remove one group. Removal
/// succeeds only once the kernel has finished every process in it, which on a loaded machine
/// takes far longer than the kill: a process that was starting (forking, being frozen) when the
/// group was read may also join after it.
const REMOVAL_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Remove a group of a dead Sylph, stopping what is still in it until the removal succeeds or
/// `deadline` passes.
fn remove_group(group: &Path, deadline: std::time::Instant) {
    loop {
        match std::fs::remove_dir(group) {
            // Busy: processes are still in it, or still being finished by the kernel.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
            _ => return,
        }
        if std::time::Instant::now() > deadline {
            return;
        }
        stop_leftovers(group);
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The instance groups inside one `sylph-<pid>` folder.
fn instance_groups(dir: &Path) -> Vec<PathBuf> {
    let Ok(children) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    children
        .flatten()
        .filter(|c| c.file_type().is_ok_and(|t| t.is_dir()))
        .map(|c| c.path())
        .collect()
}

/// Stop every process in the instance groups of a dead Sylph's folders, then remove the groups
/// and the folders. Everything is stopped before anything is waited on, so that one slow group
/// does not leave the others' processes running meanwhile. Returns how many instance groups
/// there were.
fn clean_up_after(dirs: &[PathBuf]) -> usize {
    let groups: Vec<PathBuf> = dirs.iter().flat_map(|d| instance_groups(d)).collect();
    for group in &groups {
        stop_leftovers(group);
    }
    let deadline = std::time::Instant::now() + REMOVAL_PATIENCE;
    for group in &groups {
        remove_group(group, deadline);
    }
    for dir in dirs {
        // A group created while the folder was being read is emptied here too.
        for group in instance_groups(dir) {
            remove_group(&group, deadline);
        }
        let _ = std::fs::remove_dir(dir);
    }
    groups.len()
}

/// Every folder [`Cgroups::detect`] may create for this process (`…/sylph-<pid>`, freezer
/// first), worked out without creating any: the clean-up guard is started with them before
/// they exist, so that no moment of start-up leaves a group behind if Sylph is killed.
pub fn planned_group_dirs() -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let leaf = format!("sylph-{}", std::process::id());
    let mut dirs: Vec<PathBuf> = Vec::new();
    for controller in [Controller::Freezer, Controller::Memory, Controller::Pids] {
        let name = controller.name();
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if controllers.split(',').any(|c| c == name) {
                dirs.push(
                    Path::new("/sys/fs/cgroup")
                        .join(name)
                        .join(path.trim_start_matches('/'))
                        .join(&leaf),
                );
            }
        }
    }
    for line in own.lines() {
        if let Some(path) = line.strip_prefix("0::") {
            for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                dirs.push(Path::new(root).join(path.trim_start_matches('/')).join(&leaf));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// The guard: a small process Sylph starts once, which lives until Sylph's end of its standard
/// input closes — however Sylph ends, `kill -9` included — and then stops every process left in
/// Sylph's instance groups (thawing frozen ones first) and removes the groups. Without it, a
/// killed Sylph left frozen instances behind for good, and empty groups until the next start.
/// `group_dirs` are the `sylph-<pid>` folders, freezer first.
pub fn guard_main(group_dirs: &[PathBuf]) {
    // Ctrl-C and SIGTERM reach Sylph's whole process group: outlive them to clean up after it.
    // SAFETY: setting signal dispositions of this single-threaded process.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    let mut buf = [0u8; 64];
    loop {
        match std::io::Read::read(&mut std::io::stdin(), &mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    clean_up_after(group_dirs);
}

/// Write the calling process's pid to `procs`; safe to call between fork and exec (no
/// allocation, only open/write/close).
///
/// # Safety
/// Must only be called in a `pre_exec` hook (a freshly forked child).
pub unsafe fn join_from_child(procs: &CString) -> std::io::Result<()> {
    let mut buf = [0u8; 24];
    // SAFETY (caller): getpid, open, write and close are async-signal-safe.
    let mut pid = unsafe { libc::getpid() } as u64;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (pid % 10) as u8;
        pid /= 10;
        if pid == 0 {
            break;
        }
    }
    let fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let n = unsafe { libc::write(fd, buf[i..].as_ptr().cast(), buf.len() - i) };
    unsafe { libc::close(fd) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
