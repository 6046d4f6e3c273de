//! The sandbox every instance runs in, built with bubblewrap (`bwrap`): new mount, PID, IPC,
//! UTS and user namespaces; the user `nobody` with no capabilities and no new privileges; a
//! filesystem of only what the function needs, all read-only (system libraries, a few files of
//! `/etc`, the runtime, the service's code), a private size-capped `/tmp`; and a seccomp filter
//! that refuses the system calls a function has no business making (mounting, loading kernel
//! modules, tracing other processes, new namespaces, io_uring, …). The network namespace is
//! made by Sylph itself (see `netns.rs`) and joined before bubblewrap starts.
//!
//! Why bubblewrap: it is small, audited, packaged everywhere, used by Flatpak for exactly this,
//! and does the namespace and mount setup in a separate short-lived process, so Sylph needs no
//! privileged code of its own. See docs/SANDBOX.md.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Lambda's default `/tmp` size (`ephemeralStorageSize` changes it per function).
pub const TMP_MB: u32 = 512;
/// Where bubblewrap finds the seccomp programs: descriptors 4, 5, 6, …
pub const FIRST_SECCOMP_FD: i32 = 4;

/// Parts of `/etc` a runtime needs (name resolution, TLS roots, users, time zone).
const ETC: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/localtime",
    // Certificates only: /etc/ssl/private holds the host's TLS keys.
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/ca-certificates",
    "/etc/ld.so.cache",
    "/etc/alternatives",
    "/etc/mime.types",
];

/// System directories, bound read-only where they exist.
const SYSTEM: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// Device nodes a runtime uses; bound read-write from the host's (they are shared, stateless).
const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];

/// What Lambda's package of a service never holds (the Serverless Framework's default
/// excludes, plus what Sylph or a developer keeps beside the code): hidden from functions.
const NEVER_PACKAGED: &[&str] = &[".git", ".serverless", ".serverless_plugins", ".sylph", ".DS_Store"];

#[derive(Debug, Clone)]
pub struct Sandbox {
    bwrap: PathBuf,
    version: String,
    /// Paths every instance sees read-only (runtime clients, the AWS SDKs Sylph provides).
    shared: Vec<PathBuf>,
    /// Paths inside visible folders that are replaced by an empty folder or file (see
    /// [`unpackaged`]).
    hidden: Vec<PathBuf>,
    /// An empty folder and an empty file, bound over hidden paths.
    empty_dir: PathBuf,
    empty_file: PathBuf,
}

impl Sandbox {
    /// Find bubblewrap and check that it can build a sandbox on this host. `scratch` is a
    /// folder of Sylph's own where it keeps the empty folder and file it binds over `hidden`.
    pub fn detect(shared: Vec<PathBuf>, hidden: Vec<PathBuf>, scratch: &Path) -> Result<Sandbox, String> {
        let bwrap = ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or("bubblewrap (bwrap) is not installed")?;
        let version = std::process::Command::new(&bwrap)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let empty_dir = scratch.join("empty");
        let empty_file = scratch.join("empty-file");
        std::fs::create_dir_all(&empty_dir)
            .and_then(|()| std::fs::write(&empty_file, b""))
            .map_err(|e| format!("cannot write {}: {e}", scratch.display()))?;
        let sandbox = Sandbox {
            bwrap,
            version,
            shared,
            hidden,
            empty_dir,
            empty_file,
        };
        let (program, args) = sandbox.wrap(Path::new("/bin/true"), &[], Path::new("/"), &[], &[], 0, TMP_MB, None);
        let ok = std::process::Command::new(program)
            .args(args)
            .stderr(std::process::Stdio::piped())
            .output()
            .map_err(|e| e.to_string())?;
        if !ok.status.success() {
            return Err(format!(
                "bubblewrap cannot create namespaces here: {}",
                String::from_utf8_lossy(&ok.stderr).trim()
            ));
        }
        Ok(sandbox)
    }

    pub fn describe(&self) -> String {
        format!(
            "{} (mount, PID, IPC, UTS and user namespaces; new session; user nobody; read-only code; private /tmp and /dev/shm of {} MB together (ephemeralStorageSize); seccomp)",
            self.version,
            TMP_MB
        )
    }

    /// The command that runs `program` inside the sandbox, seeing `visible` read-only.
    #[allow(clippy::too_many_arguments)]
    pub fn wrap(
        &self,
        program: &Path,
        args: &[String],
        cwd: &Path,
        visible: &[&Path],
        mounts: &[(PathBuf, PathBuf)],
        seccomp_filters: usize,
        tmp_mb: u32,
        resolv_conf: Option<&Path>,
    ) -> (PathBuf, Vec<String>) {
        let mut a: Vec<String> = [
            "--die-with-parent",
            // No controlling terminal: a function cannot push input into Sylph's terminal
            // (TIOCSTI) or receive its job-control signals.
            "--new-session",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-user",
            "--uid",
            "65534",
            "--gid",
            "65534",
            "--cap-drop",
            "ALL",
            "--hostname",
            "sylph",
            "--proc",
            "/proc",
            "--size",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        a.push((u64::from(tmp_mb) << 20).to_string());
        a.extend(["--tmpfs".to_owned(), "/tmp".to_owned()]);
        let mut args_for = |flag: &str, from: &Path, to: &Path| {
            a.extend([
                flag.to_owned(),
                from.to_string_lossy().into_owned(),
                to.to_string_lossy().into_owned(),
            ]);
        };
        // A /dev of device nodes only. bubblewrap's own `--dev` is a writable, host-sized
        // tmpfs whose /dev/shm escapes the /tmp budget; here /dev/shm is /tmp itself.
        for dev in DEVICES {
            args_for("--dev-bind-try", Path::new(dev), Path::new(dev));
        }
        for (target, link) in [
            ("/tmp", "/dev/shm"),
            ("/proc/self/fd", "/dev/fd"),
            ("/proc/self/fd/0", "/dev/stdin"),
            ("/proc/self/fd/1", "/dev/stdout"),
            ("/proc/self/fd/2", "/dev/stderr"),
        ] {
            args_for("--symlink", Path::new(target), Path::new(link));
        }
        for p in SYSTEM.iter().chain(ETC) {
            args_for("--ro-bind-try", Path::new(p), Path::new(p));
        }
        if let Some(file) = resolv_conf {
            // The instance's own resolver (the host's may be on its loopback, out of reach).
            args_for("--ro-bind", file, Path::new("/etc/resolv.conf"));
        }
        for p in self.shared.iter().map(PathBuf::as_path).chain(visible.iter().copied()) {
            args_for("--ro-bind-try", p, p);
        }
        for (from, to) in mounts {
            args_for("--ro-bind", from, to);
        }
        for p in &self.hidden {
            if visible
                .iter()
                .copied()
                .chain(self.shared.iter().map(PathBuf::as_path))
                .any(|v| p.starts_with(v))
            {
                let empty = if p.is_dir() { &self.empty_dir } else { &self.empty_file };
                args_for("--ro-bind-try", empty, p);
            }
        }
        // Nothing outside /tmp is writable, not even the sandbox's own root (with /dev in it).
        a.extend(["--remount-ro".to_owned(), "/".to_owned()]);
        for i in 0..seccomp_filters as i32 {
            a.extend(["--add-seccomp-fd".to_owned(), (FIRST_SECCOMP_FD + i).to_string()]);
        }
        a.extend([
            "--chdir".to_owned(),
            cwd.to_string_lossy().into_owned(),
            "--".to_owned(),
        ]);
        a.push(program.to_string_lossy().into_owned());
        a.extend(args.iter().cloned());
        (self.bwrap.clone(), a)
    }
}

/// What in the service folder `root` Lambda's package would not hold, and so no function may
/// read: the Serverless Framework's default excludes (`.git`, `.serverless`, …), Sylph's own
/// data (`.sylph`, with the tables), dotenv files (`.env`, `.env.*`: the Framework loads them
/// into the environment, it does not package them) unless `package.patterns` includes them
/// by name, and top-level paths that `package.patterns` excludes by name (`!secrets.json`,
/// `!scripts/**`).
pub fn unpackaged(root: &Path, patterns: &[String]) -> Vec<PathBuf> {
    let top_level = |pattern: &str| -> Option<String> {
        let name = pattern.trim_end_matches("/**").trim_end_matches('/');
        let plain = !name.is_empty() && !name.contains(['*', '?', '[', '{', '/']) && name != "." && name != "..";
        plain.then(|| name.to_owned())
    };
    let included: Vec<String> = patterns
        .iter()
        .filter(|p| !p.starts_with('!'))
        .filter_map(|p| top_level(p))
        .collect();
    let excluded: Vec<String> = patterns
        .iter()
        .filter_map(|p| p.strip_prefix('!'))
        .filter_map(top_level)
        .collect();
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dotenv = name == ".env" || name.starts_with(".env.");
        let hide = NEVER_PACKAGED.contains(&name.as_str())
            || (dotenv && !included.contains(&name))
            || excluded.contains(&name);
        if hide {
            out.push(root.join(name));
        }
    }
    out.sort();
    out
}

/// Where Lambda extracts layers.
pub const LAYERS_DIR: &str = "/opt";

/// How deep layers are merged before a later layer's folder simply replaces an earlier one's.
const MAX_LAYER_MERGE_DEPTH: usize = 8;

/// Binds that make `/opt` look as Lambda makes it from `layers` (in order): the union of their
/// contents, a later layer's file replacing an earlier one's. Folders present in several
/// layers are merged entry by entry; every other entry is bound whole.
pub fn layer_mounts(layers: &[PathBuf]) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let dirs: Vec<PathBuf> = layers.iter().filter(|l| l.is_dir()).cloned().collect();
    merge_layers(&dirs, Path::new(LAYERS_DIR), 0, &mut out);
    out
}

fn merge_layers(dirs: &[PathBuf], to: &Path, depth: usize, out: &mut Vec<(PathBuf, PathBuf)>) {
    match dirs {
        [] => {}
        [only] => out.push((only.clone(), to.to_owned())),
        _ if depth >= MAX_LAYER_MERGE_DEPTH => out.push((dirs[dirs.len() - 1].clone(), to.to_owned())),
        _ => {
            // Names in the order first seen, each with the layers that have it.
            let mut names: Vec<(std::ffi::OsString, Vec<PathBuf>)> = Vec::new();
            for dir in dirs {
                let Ok(entries) = std::fs::read_dir(dir) else { continue };
                let mut listed: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
                listed.sort();
                for name in listed {
                    let path = dir.join(&name);
                    match names.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, sources)) => sources.push(path),
                        None => names.push((name, vec![path])),
                    }
                }
            }
            for (name, sources) in names {
                let target = to.join(&name);
                // A file (or a folder replacing a file) in a later layer wins outright.
                let last = &sources[sources.len() - 1];
                let folders: Vec<PathBuf> = if last.is_dir() {
                    let start = sources.iter().rposition(|s| !s.is_dir()).map_or(0, |i| i + 1);
                    sources[start..].to_vec()
                } else {
                    vec![last.clone()]
                };
                merge_layers(&folders, &target, depth + 1, out);
            }
        }
    }
}

/// The folders an interpreter needs beyond the system folders: its installation prefix when it
/// lives elsewhere (pyenv, nvm, a virtualenv's base), never a whole home folder.
pub fn interpreter_dirs(prefixes: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in prefixes {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        // A prefix that *is* a home folder (or `/`) would expose everything in it.
        if p.as_os_str().is_empty() || p == Path::new("/") || home.as_deref() == Some(p.as_path()) {
            continue;
        }
        if p.is_dir() && !SYSTEM.iter().any(|s| p.starts_with(s)) && !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

/// The seccomp rules, as data: named system calls with a comment each, per architecture,
/// compiled by seccompiler (rust-vmm's, as Firecracker uses). Two filters, because a filter
/// has one action for its matches: `deny` answers EPERM, `clone3` answers ENOSYS.
#[cfg(target_arch = "x86_64")]
const RULES: Option<(&str, seccompiler::TargetArch)> =
    Some((include_str!("../seccomp/x86_64.json"), seccompiler::TargetArch::x86_64));
#[cfg(target_arch = "aarch64")]
const RULES: Option<(&str, seccompiler::TargetArch)> = Some((
    include_str!("../seccomp/aarch64.json"),
    seccompiler::TargetArch::aarch64,
));
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const RULES: Option<(&str, seccompiler::TargetArch)> = None;

/// The compiled filters (each a classic BPF program as bytes), built once.
fn compiled_filters() -> &'static [Vec<u8>] {
    static FILTERS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    FILTERS.get_or_init(|| {
        let Some((json, arch)) = RULES else { return Vec::new() };
        let map = match seccompiler::compile_from_json(json.as_bytes(), arch) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("the seccomp rules do not compile: {e:?}");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for name in ["deny", "clone3"] {
            if let Some(program) = map.get(name) {
                out.push(program_bytes(program.iter().map(|f| (f.code, f.jt, f.jf, f.k))));
            }
        }
        if cfg!(target_arch = "x86_64") {
            out.push(x32_guard());
        }
        out
    })
}

/// On x86_64, the x32 ABI reaches the same system calls under other numbers (bit 30 set),
/// which no named rule matches: refuse them all. Four instructions, written by hand.
fn x32_guard() -> Vec<u8> {
    const LD_W_ABS: u16 = 0x20;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_EPERM: u32 = 0x0005_0000 | 1;
    program_bytes(
        [
            (LD_W_ABS, 0, 0, 0),        // the system call number
            (JGE_K, 0, 1, 0x4000_0000), // x32: next, else skip one
            (RET_K, 0, 0, RET_EPERM),
            (RET_K, 0, 0, RET_ALLOW),
        ]
        .into_iter(),
    )
}

fn program_bytes(program: impl Iterator<Item = (u16, u8, u8, u32)>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (code, jt, jf, k) in program {
        bytes.extend_from_slice(&code.to_ne_bytes());
        bytes.push(jt);
        bytes.push(jf);
        bytes.extend_from_slice(&k.to_ne_bytes());
    }
    bytes
}

/// The seccomp filters, each in a new memory file for bubblewrap to read (one per start:
/// a shared file's read offset would be shared too). An error where any is missing: an
/// instance never starts without its filters.
pub fn seccomp_programs() -> std::io::Result<Vec<OwnedFd>> {
    let filters = compiled_filters();
    if filters.is_empty() {
        return Err(std::io::Error::other(
            "no seccomp filter for this architecture (x86_64 and aarch64 have one); run with --unsandboxed to go without",
        ));
    }
    let mut out = Vec::with_capacity(filters.len());
    for bytes in filters {
        // SAFETY: memfd_create with a static name; the fd is owned from here on.
        let fd = unsafe { libc::memfd_create(c"sylph-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor we own.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: writing our own buffer to our own fd, then rewinding it.
        let written = unsafe { libc::write(owned.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if written != bytes.len() as isize || unsafe { libc::lseek(owned.as_raw_fd(), 0, libc::SEEK_SET) } != 0 {
            return Err(std::io::Error::other("cannot write a seccomp filter"));
        }
        out.push(owned);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seccomp_rules_compile_for_every_architecture() {
        for (json, arch) in [
            (include_str!("../seccomp/x86_64.json"), seccompiler::TargetArch::x86_64),
            (
                include_str!("../seccomp/aarch64.json"),
                seccompiler::TargetArch::aarch64,
            ),
        ] {
            let map = seccompiler::compile_from_json(json.as_bytes(), arch).expect("rules compile");
            assert!(map.contains_key("deny") && map.contains_key("clone3"), "{arch:?}");
        }
        assert!(!compiled_filters().is_empty() || RULES.is_none());
    }
}
