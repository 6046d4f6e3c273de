//! Java functions: a JDK of this machine runs AWS's Java runtime interface client (the RIC,
//! `aws-lambda-java-runtime-interface-client`, installed with `aws-lambda-java-core` and
//! `aws-lambda-java-events` by `scripts/install-runtimes` into `$SYLPH_HOME/runtime/java`), which
//! loads the function's classes from its unpacked jar or zip and speaks the HTTP Runtime API.
//!
//! Which JDK serves a runtime id: one of exactly its version if installed (under
//! `/usr/lib/jvm`, `$JAVA_HOME`, or the `java` on `PATH`), else the oldest newer one (Java runs
//! the bytecode of older versions: `java11` runs on 17), else none (the function is refused
//! with what to install).
//!
//! The JVM cannot see the memory cgroup from inside the sandbox, so the heap is sized from
//! memorySize as AWS sizes it: 85 % heap, 10 % metaspace, 5 % code cache, serial GC, tiered
//! compilation stopped at C1 (AWS's defaults for Java 17 and later).

use std::path::{Path, PathBuf};

use sylph_model::Runtime as RuntimeId;

use super::{Inner, Interpreter};
use crate::{InstanceConfig, StartError};

/// The RIC's entry point; the handler (`package.Class::method` or `package.Class`) is its first
/// argument.
pub(super) const RIC_MAIN: &str = "com.amazonaws.services.lambda.runtime.api.client.AWSLambda";

/// Where the RIC extracts its native Runtime API client unless told where an extracted copy is
/// (`/tmp/.libaws-lambda-jni.so` on every start otherwise).
const JNI_PROPERTY: &str = "com.amazonaws.services.lambda.runtime.api.client.runtimeapi.NativeClient.JNI";

/// Lambda's limit on a function's unzipped code.
const MAX_UNPACKED_BYTES: u64 = 250 * 1024 * 1024;

/// Entries a package may hold: the byte limit alone lets millions of empty files through.
const MAX_ENTRIES: usize = 100_000;

/// A JDK installed on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jdk {
    /// `JAVA_HOME`: `bin/java` is in it.
    pub home: PathBuf,
    /// The feature release: 8, 11, 17, 21, 25.
    pub major: u32,
    /// As its `release` file says: `17.0.15`, `1.8.0_392`.
    pub version: String,
}

impl Jdk {
    pub fn java(&self) -> PathBuf {
        self.home.join("bin/java")
    }
}

/// The Java version a runtime id names: `java8.al2` → 8, `java17` → 17.
pub(super) fn wanted_major(id: &str) -> Option<u32> {
    let rest = id.strip_prefix("java")?;
    rest.split('.').next()?.parse().ok()
}

/// `JAVA_VERSION="17.0.15"` → (17, `17.0.15`); `1.8.0_392` → 8.
fn parse_release(text: &str) -> Option<(u32, String)> {
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("JAVA_VERSION="))?
        .trim()
        .trim_matches('"')
        .to_owned();
    let mut parts = version.split(['.', '_', '-', '+']);
    let first: u32 = parts.next()?.parse().ok()?;
    let major = if first == 1 { parts.next()?.parse().ok()? } else { first };
    Some((major, version))
}

pub(super) fn jdk_at(home: &Path) -> Option<Jdk> {
    let home = home.canonicalize().ok()?;
    if !home.join("bin/java").is_file() {
        return None;
    }
    let (major, version) = parse_release(&std::fs::read_to_string(home.join("release")).ok()?)?;
    Some(Jdk { home, major, version })
}

/// The JDKs of this machine: `$JAVA_HOME`, the one `java` on `PATH` belongs to, and every one
/// under `/usr/lib/jvm`, each once.
pub(super) fn installed() -> Vec<Jdk> {
    let mut homes: Vec<PathBuf> = Vec::new();
    if let Some(h) = std::env::var_os("JAVA_HOME") {
        homes.push(PathBuf::from(h));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("java"))
        .find(|p| p.is_file());
    if let Some(java) = on_path.and_then(|p| p.canonicalize().ok()) {
        // `<home>/bin/java`
        homes.extend(java.parent().and_then(Path::parent).map(Path::to_path_buf));
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/jvm") {
        let mut found: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        found.sort();
        homes.extend(found);
    }
    let mut out: Vec<Jdk> = Vec::new();
    for home in homes {
        if let Some(jdk) = jdk_at(&home) {
            if !out.iter().any(|j| j.home == jdk.home) {
                out.push(jdk);
            }
        }
    }
    out
}

/// The JDK that serves Java `want`: exactly that version, else the oldest newer one.
pub(super) fn choose(jdks: &[Jdk], want: u32) -> Option<&Jdk> {
    jdks.iter()
        .filter(|j| j.major >= want)
        .min_by_key(|j| (j.major, std::cmp::Reverse(j.version.clone())))
}

/// What a JDK needs inside the sandbox beyond the system folders: its home when it lives
/// elsewhere, and the folders its symbolic links point into outside it (Debian's JDKs keep
/// their configuration in `/etc/java-NN-openjdk`; without it the JVM cannot start).
pub(super) fn sandbox_dirs(jdk: &Jdk) -> Vec<PathBuf> {
    let mut out = vec![jdk.home.clone()];
    let mut stack = vec![jdk.home.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                stack.push(e.path());
            } else if kind.is_symlink() {
                let Ok(target) = e.path().canonicalize() else { continue };
                if target.starts_with(&jdk.home) {
                    continue;
                }
                let folder = if target.is_dir() {
                    target
                } else {
                    target.parent().map(Path::to_path_buf).unwrap_or(target)
                };
                out.push(folder);
            }
        }
    }
    out.sort();
    out.dedup();
    // A folder inside another one already listed adds nothing.
    let all = out.clone();
    out.retain(|d| !all.iter().any(|o| o != d && d.starts_with(o)));
    crate::sandbox::interpreter_dirs(&out)
}

/// The JVM's options for a function of `memory_mb` on a JDK of `major`, and the RIC's jars.
/// Heap flags are given because the sandboxed JVM sizes its heap from the host's memory.
pub(super) fn jvm_args(major: u32, memory_mb: u32, java_dir: &Path) -> Vec<String> {
    let kb = u64::from(memory_mb) * 1024;
    let mut args = vec![
        format!("-XX:MaxHeapSize={}k", kb * 85 / 100),
        format!("-XX:MaxMetaspaceSize={}k", kb * 10 / 100),
        format!("-XX:ReservedCodeCacheSize={}k", (kb * 5 / 100).max(2496)),
        "-XX:+UseSerialGC".to_owned(),
        "-XX:+TieredCompilation".to_owned(),
        "-XX:TieredStopAtLevel=1".to_owned(),
        "-Xshare:auto".to_owned(),
        // Lambda's JVMs prefer IPv4 (the Runtime API and most endpoints are IPv4).
        "-Djava.net.preferIPv4Stack=true".to_owned(),
    ];
    let jni = java_dir.join("jni/libaws-lambda-jni.so");
    if jni.is_file() {
        args.push(format!("-D{JNI_PROPERTY}={}", jni.display()));
    }
    if major >= 22 {
        // The RIC loads its native client through JNI; 22 and later warn about it otherwise.
        args.push("--enable-native-access=ALL-UNNAMED".to_owned());
    }
    args.push("-cp".to_owned());
    args.push(format!("{}/*", java_dir.join("lib").display()));
    args
}

/// Why a function's code could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub(super) enum UnpackError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a jar or zip: {source}")]
    NotZip {
        path: PathBuf,
        source: zip::result::ZipError,
    },
    #[error("{path} holds an entry `{entry}` that would land outside its folder")]
    Escapes { path: PathBuf, entry: String },
    #[error("{path} unpacks to more than Lambda's 250 MB of code")]
    TooLarge { path: PathBuf },
    #[error("{path} holds more than {MAX_ENTRIES} files")]
    TooManyEntries { path: PathBuf },
    #[error("cannot write the unpacked code to {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// The folder holding the unpacked contents of `artifact` (a jar or zip), under `cache`: made
/// once per version of the file (its path, size and modification time name the folder), as
/// Lambda unzips a function's package once per deployment.
pub(super) fn unpacked(artifact: &Path, cache: &Path) -> Result<PathBuf, UnpackError> {
    let read_err = |source| UnpackError::Read {
        path: artifact.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(artifact).map_err(read_err)?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let key = {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        artifact.hash(&mut h);
        meta.len().hash(&mut h);
        modified.hash(&mut h);
        h.finish()
    };
    let stem = artifact.file_stem().map_or("code".into(), |s| s.to_string_lossy());
    let dest = cache.join(format!("{stem}-{key:016x}"));
    if dest.is_dir() {
        return Ok(dest);
    }
    // Unpacked beside its final name and renamed into place, so that concurrent cold starts
    // never see half a folder.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = cache.join(format!(".{stem}-{key:016x}.{}.{n}", std::process::id()));
    let result = extract(artifact, &tmp);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if std::fs::rename(&tmp, &dest).is_err() {
        // Another start unpacked the same version first.
        let _ = std::fs::remove_dir_all(&tmp);
        if !dest.is_dir() {
            return Err(UnpackError::Write {
                path: dest,
                source: std::io::Error::other("rename failed"),
            });
        }
    }
    Ok(dest)
}

fn extract(artifact: &Path, into: &Path) -> Result<(), UnpackError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| UnpackError::Write { path, source }
    };
    let file = std::fs::File::open(artifact).map_err(|source| UnpackError::Read {
        path: artifact.to_path_buf(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|source| UnpackError::NotZip {
        path: artifact.to_path_buf(),
        source,
    })?;
    if archive.len() > MAX_ENTRIES {
        return Err(UnpackError::TooManyEntries {
            path: artifact.to_path_buf(),
        });
    }
    std::fs::create_dir_all(into).map_err(write_err(into))?;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|source| UnpackError::NotZip {
            path: artifact.to_path_buf(),
            source,
        })?;
        let Some(relative) = entry.enclosed_name() else {
            return Err(UnpackError::Escapes {
                path: artifact.to_path_buf(),
                entry: entry.name().map(String::from).unwrap_or_else(|_| "?".to_owned()),
            });
        };
        let target = into.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(write_err(&target))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        let mut out = std::fs::File::create(&target).map_err(write_err(&target))?;
        // Count what is written, not what the entry claims: a zip bomb lies about its size.
        let budget = MAX_UNPACKED_BYTES - total;
        let written =
            std::io::copy(&mut std::io::Read::take(&mut entry, budget + 1), &mut out).map_err(write_err(&target))?;
        total += written;
        if total > MAX_UNPACKED_BYTES {
            return Err(UnpackError::TooLarge {
                path: artifact.to_path_buf(),
            });
        }
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt as _;
            // Executable bits kept (native helpers in a package), nothing else.
            let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644 | (mode & 0o111)));
        }
    }
    Ok(())
}

impl Inner {
    fn jdks(&self) -> &[Jdk] {
        self.jdks.get_or_init(installed)
    }

    /// The JDK that serves `runtime` (a Java runtime id), if this machine has one.
    pub(super) fn jdk_for(&self, runtime: &RuntimeId) -> Option<Jdk> {
        choose(self.jdks(), wanted_major(runtime.id())?).cloned()
    }

    /// The JDK of `runtime`, as the start-up lines describe interpreters.
    pub(super) fn jdk_interpreter(&self, runtime: &RuntimeId) -> Option<Interpreter> {
        let want = wanted_major(runtime.id())?;
        let Some(jdk) = self.jdk_for(runtime) else {
            return Some(Interpreter {
                path: PathBuf::from("java"),
                version: None,
                exact: false,
                note: Some(format!(
                    "no JDK {want} or newer is installed: its functions cannot start"
                )),
            });
        };
        Some(Interpreter {
            path: jdk.java(),
            version: Some(format!("Java {}", jdk.version)),
            exact: jdk.major == want,
            note: None,
        })
    }

    /// What `jdk` needs inside the sandbox (cached per JDK).
    pub(super) fn jdk_sandbox_dirs(&self, jdk: &Jdk) -> Vec<PathBuf> {
        let mut cache = self.jdk_dirs.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(jdk.home.clone())
            .or_insert_with(|| sandbox_dirs(jdk))
            .clone()
    }

    /// The runtime client's folder, if it is installed.
    pub(super) fn java_runtime_dir(&self, function: &str) -> Result<&Path, StartError> {
        let dir = self.java_dir.get().map(PathBuf::as_path);
        match dir {
            Some(d) if has_runtime_client(d) => Ok(d),
            _ => Err(StartError::NotFound {
                function: function.to_owned(),
                what: "AWS's Java runtime interface client".to_owned(),
                help: "run scripts/install-runtimes, which fetches it from Maven Central".to_owned(),
            }),
        }
    }

    /// The command of a Java function's instance (its code, unpacked by [`Inner::java_code`],
    /// is its working folder).
    pub(super) fn java_command(&self, config: &InstanceConfig) -> Result<(PathBuf, Vec<String>), StartError> {
        let f = &config.function;
        let java_dir = self.java_runtime_dir(&f.name)?;
        let want = wanted_major(f.runtime.id()).unwrap_or(8);
        let jdk = self.jdk_for(&f.runtime).ok_or_else(|| StartError::NotFound {
            function: f.name.clone(),
            what: format!("a JDK for {} (Java {want} or newer)", f.runtime.id()),
            help: format!(
                "install one (apt-get install openjdk-{}-jre-headless) or set JAVA_HOME",
                want.max(17)
            ),
        })?;
        let mut args = jvm_args(jdk.major, f.memory_mb, java_dir);
        args.push(RIC_MAIN.to_owned());
        args.push(f.handler.clone());
        Ok((jdk.java(), args))
    }

    /// Where packages are unpacked: beside Sylph's runtime folder, not in it. Every sandbox
    /// sees the runtime folder; a package is bound only into the sandboxes of its functions.
    fn java_code_cache(&self) -> PathBuf {
        self.bootstrap_dir.with_file_name("java-code")
    }

    /// The folder of a Java function's classes: `package.artifact` unpacked (a jar or zip), or
    /// the folder it names. Blocks (unpacking): call it off the async workers.
    pub(super) fn java_code(&self, config: &InstanceConfig) -> Result<PathBuf, StartError> {
        let f = &config.function;
        let Some(artifact) = &f.artifact else {
            return Err(StartError::NotFound {
                function: f.name.clone(),
                what: "its code (package.artifact)".to_owned(),
                help: "set package.artifact to the jar or zip the build makes (for example target/app.jar)".to_owned(),
            });
        };
        if artifact.is_dir() {
            return Ok(artifact.clone());
        }
        if !artifact.is_file() {
            return Err(StartError::NotFound {
                function: f.name.clone(),
                what: format!("its package {}", artifact.display()),
                help: "build it (mvn package) or point package.artifact at it".to_owned(),
            });
        }
        unpacked(artifact, &self.java_code_cache()).map_err(|e| StartError::Package {
            function: f.name.clone(),
            reason: e.to_string(),
        })
    }
}

impl Inner {
    /// The command of a pre-started JVM: the JDK of the service's most common Java runtime id,
    /// sized for its most common memorySize, running Sylph's launcher (see `runtime/java`),
    /// which warms up the runtime client and waits for its function.
    /// `None` where no JVM can be pre-started: no JDK 11 or newer for the service's Java id (the
    /// launcher is built for 11 and opens a module), or no runtime client or launcher installed.
    pub(super) fn java_prestart_command(&self) -> Option<&(PathBuf, Vec<String>)> {
        // Decided once: the preferences are set before anything is pre-started.
        self.java_prestart
            .get_or_init(|| self.decide_java_prestart_command())
            .as_ref()
    }

    fn decide_java_prestart_command(&self) -> Option<(PathBuf, Vec<String>)> {
        let runtime = self
            .preferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&super::Family::Java)
            .cloned()
            .unwrap_or_else(|| RuntimeId::Java("java17".to_owned()));
        let jdk = self.jdk_for(&runtime).filter(|j| j.major >= 11)?;
        let dir = self.java_dir.get().filter(|d| d.join(LAUNCHER_JAR).is_file())?;
        let memory_mb = self.java_prestart_mb.load(std::sync::atomic::Ordering::Relaxed);
        let mut args = jvm_args(jdk.major, memory_mb, dir);
        prestart_args(&mut args, dir);
        Some((jdk.java(), args))
    }

    /// The package pre-started JVMs preload now, unpacked: a rebuilt package is a new folder.
    /// A folder artifact is not preloaded (its classes change in place). Blocks (unpacking).
    pub(super) fn java_prestart_code(&self) -> Option<PathBuf> {
        let artifact = self
            .java_prestart_package
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        if !artifact.is_file() {
            return None;
        }
        unpacked(&artifact, &self.java_code_cache()).ok()
    }

    /// The command of a new pre-started JVM with the service's most common Java package on its
    /// class path and named for preloading (unpacked now: a rebuilt package gives new JVMs the
    /// new version), and that package's folder.
    pub(super) fn java_prestart_for_package(&self) -> Result<(PathBuf, Vec<String>, Option<PathBuf>), StartError> {
        let Some((program, args)) = self.java_prestart_command() else {
            return Err(StartError::NotFound {
                function: "pre-started JVM".to_owned(),
                what: "a JDK 11 or newer with AWS's Java runtime client and Sylph's launcher".to_owned(),
                help: "run scripts/install-runtimes (Java functions start cold meanwhile)".to_owned(),
            });
        };
        let (program, mut args) = (program.clone(), args.clone());
        let code = self.java_prestart_code();
        if let Some(dir) = &code {
            with_package(&mut args, dir);
        }
        Ok((program, args, code))
    }

    /// Whether a function can become a pre-started JVM: the same JDK and the same heap size,
    /// and a runtime client with Sylph's launcher installed.
    pub(super) fn takes_prestarted_jvm(&self, config: &InstanceConfig) -> bool {
        let f = &config.function;
        // Options the JVM reads when it starts would be ignored by one already running.
        if JVM_OPTION_VARIABLES.iter().any(|v| f.environment.contains_key(*v)) {
            return false;
        }
        let same_size = f.memory_mb == self.java_prestart_mb.load(std::sync::atomic::Ordering::Relaxed);
        same_size
            && self.jdk_for(&f.runtime).is_some_and(|j| {
                self.java_prestart_command()
                    .is_some_and(|(program, _)| *program == j.java())
            })
    }
}

/// The launcher's jar joins the class path, and the launcher is the main class: it installs
/// the function's environment, which the JVM otherwise keeps read-only, hence the opens.
fn prestart_args(args: &mut Vec<String>, dir: &Path) {
    if let Some(cp) = args.last_mut() {
        cp.push(':');
        cp.push_str(&dir.join(LAUNCHER_JAR).to_string_lossy());
    }
    let at = args.len() - 2;
    args.insert(at, "java.base/java.lang=ALL-UNNAMED".to_owned());
    args.insert(at, "--add-opens".to_owned());
    // The events library warms up in a throwaway class loader, off the class path.
    let warmup = ["aws-lambda-java-events", "joda-time"]
        .iter()
        .filter_map(|prefix| jar_starting_with(&dir.join("warmup"), prefix))
        .map(|p| p.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(":");
    args.insert(at, format!("-Dsylph.warmup.classpath={warmup}"));
    args.push(LAUNCHER_MAIN.to_owned());
}

/// The package's classes and jars join the class path of a pre-started JVM, and the launcher
/// preloads them: the AWS SDK a function bundles is most of its cold start. `args` end with
/// `-cp`, the class path and the main class.
fn with_package(args: &mut Vec<String>, dir: &Path) {
    if args.len() < 3 {
        return;
    }
    let cp = args.len() - 2;
    let d = dir.display();
    args[cp].push_str(&format!(":{d}:{d}/lib/*"));
    args.insert(cp - 1, format!("-Dsylph.preload={d}"));
}

/// The first jar in `dir` whose name starts with `prefix`.
fn jar_starting_with(dir: &Path, prefix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).find(|p| {
        p.extension().is_some_and(|e| e == "jar")
            && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix))
    })
}

/// Variables the JVM reads at its start (extra options): a function that sets one starts its
/// own JVM.
const JVM_OPTION_VARIABLES: &[&str] = &["JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS"];

/// Sylph's launcher for pre-started JVMs (`runtime/java/launcher`), built by
/// `scripts/install-runtimes`.
const LAUNCHER_JAR: &str = "launcher/sylph-java-launcher.jar";
const LAUNCHER_MAIN: &str = "dev.sylph.launcher.Launcher";

/// Whether `dir` holds the runtime client's jar.
fn has_runtime_client(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("lib")).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("aws-lambda-java-runtime-interface-client")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_ids_name_their_java_version() {
        assert_eq!(wanted_major("java8.al2"), Some(8));
        assert_eq!(wanted_major("java17"), Some(17));
        assert_eq!(wanted_major("java21"), Some(21));
        assert_eq!(wanted_major("python3.12"), None);
    }

    #[test]
    fn release_files_give_the_feature_release() {
        assert_eq!(
            parse_release("IMPLEMENTOR=\"Debian\"\nJAVA_VERSION=\"17.0.15\"\n"),
            Some((17, "17.0.15".into()))
        );
        assert_eq!(
            parse_release("JAVA_VERSION=\"1.8.0_392\""),
            Some((8, "1.8.0_392".into()))
        );
        assert_eq!(parse_release("JAVA_VERSION=\"25\""), Some((25, "25".into())));
        assert_eq!(parse_release("NOTHING=1"), None);
    }

    #[test]
    fn the_exact_jdk_wins_then_the_oldest_newer_one() {
        let jdk = |major, version: &str| Jdk {
            home: PathBuf::from(format!("/jdk{major}")),
            major,
            version: version.into(),
        };
        let jdks = vec![jdk(25, "25"), jdk(17, "17.0.15"), jdk(21, "21.0.1")];
        assert_eq!(choose(&jdks, 17).map(|j| j.major), Some(17));
        assert_eq!(choose(&jdks, 11).map(|j| j.major), Some(17));
        assert_eq!(choose(&jdks, 8).map(|j| j.major), Some(17));
        assert_eq!(choose(&jdks, 21).map(|j| j.major), Some(21));
        assert_eq!(choose(&jdks[..2], 21).map(|j| j.major), Some(25));
        assert_eq!(choose(&jdks[1..2], 21), None);
    }

    #[test]
    fn heap_flags_follow_memory_size_as_on_aws() {
        let args = jvm_args(17, 512, Path::new("/rt/java"));
        assert!(args.contains(&"-XX:MaxHeapSize=445644k".to_owned()), "{args:?}");
        assert!(args.contains(&"-XX:MaxMetaspaceSize=52428k".to_owned()), "{args:?}");
        assert!(
            args.contains(&"-XX:ReservedCodeCacheSize=26214k".to_owned()),
            "{args:?}"
        );
        assert!(!args.iter().any(|a| a.starts_with("--enable-native-access")));
        assert!(jvm_args(25, 512, Path::new("/rt/java")).contains(&"--enable-native-access=ALL-UNNAMED".to_owned()));
        assert_eq!(args[args.len() - 2..], ["-cp".to_owned(), "/rt/java/lib/*".to_owned()]);
    }

    fn zip_of(path: &Path, entries: &[(&str, &[u8])]) {
        let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            std::io::Write::write_all(&mut w, data).unwrap();
        }
        w.finish().unwrap();
    }

    #[test]
    fn a_jar_unpacks_once_per_version_and_an_escaping_entry_is_refused() {
        let dir = std::env::temp_dir().join(format!("sylph-java-unpack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let jar = dir.join("fn.jar");
        zip_of(&jar, &[("a/B.class", b"cafe"), ("lib/dep.jar", b"jar")]);
        let cache = dir.join("cache");
        let first = unpacked(&jar, &cache).unwrap();
        assert_eq!(std::fs::read(first.join("a/B.class")).unwrap(), b"cafe");
        assert_eq!(unpacked(&jar, &cache).unwrap(), first);
        // A rebuilt jar (another size) is a new version.
        zip_of(&jar, &[("a/B.class", b"cafebabe")]);
        let second = unpacked(&jar, &cache).unwrap();
        assert_ne!(second, first);
        assert_eq!(std::fs::read(second.join("a/B.class")).unwrap(), b"cafebabe");
        // The attack: an entry named to be written outside the folder (zip slip).
        let evil = dir.join("evil.zip");
        zip_of(&evil, &[("../../escaped.txt", b"owned")]);
        let err = unpacked(&evil, &cache).unwrap_err();
        assert!(matches!(err, UnpackError::Escapes { .. }), "{err}");
        assert!(!dir.join("escaped.txt").exists() && !cache.join("../escaped.txt").exists());
        let not_zip = dir.join("plain.jar");
        std::fs::write(&not_zip, "hello").unwrap();
        assert!(matches!(unpacked(&not_zip, &cache), Err(UnpackError::NotZip { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
