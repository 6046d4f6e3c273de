//! Building Java functions with Maven. The Serverless Framework deploys the jar a developer
//! built beforehand (`mvn package`, named by `package.artifact`); Sylph builds it itself when it
//! is missing or older than its sources, as it builds Rust functions with cargo.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{bail, Context as _};
use sylph_model::{Runtime, Service};

/// Whether the service has Java functions and a Maven project to build them from.
pub fn is_java_service(service: &Service) -> bool {
    service.root.join("pom.xml").is_file() && service.functions.iter().any(|f| matches!(f.runtime, Runtime::Java(_)))
}

/// The newest modification time among the project's sources: `pom.xml` and `src/`.
fn newest_source(root: &Path) -> Option<SystemTime> {
    let mut newest = std::fs::metadata(root.join("pom.xml")).and_then(|m| m.modified()).ok();
    let mut stack = vec![root.join("src")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if let Ok(t) = meta.modified() {
                newest = newest.max(Some(t));
            }
        }
    }
    newest
}

/// The packages of the service's Java functions that are missing or older than the sources.
pub fn stale_artifacts(service: &Service) -> Vec<PathBuf> {
    let newest = newest_source(&service.root);
    let mut out: Vec<PathBuf> = Vec::new();
    for f in service
        .functions
        .iter()
        .filter(|f| matches!(f.runtime, Runtime::Java(_)))
    {
        let Some(artifact) = &f.artifact else { continue };
        let built = std::fs::metadata(artifact).and_then(|m| m.modified()).ok();
        let stale = match (built, newest) {
            (None, _) => true,
            (Some(b), Some(n)) => b < n,
            (Some(_), None) => false,
        };
        if stale && !out.contains(artifact) {
            out.push(artifact.clone());
        }
    }
    out
}

/// `mvn package` in the service folder when a Java function's package is missing or older than
/// its sources; an error naming what is wrong when the build fails or makes no package.
pub fn build_java_if_stale(service: &Service) -> anyhow::Result<()> {
    if !is_java_service(service) {
        return Ok(());
    }
    let stale = stale_artifacts(service);
    if stale.is_empty() {
        return Ok(());
    }
    build_java(service)?;
    for artifact in stale {
        if !artifact.is_file() {
            bail!(
                "mvn package did not make {} (named by package.artifact); check the pom's finalName",
                artifact.display()
            );
        }
    }
    Ok(())
}

/// `mvn -q -B package -DskipTests` in the service folder, its output on stderr (`sylph invoke
/// local` keeps stdout for the function's result).
pub fn build_java(service: &Service) -> anyhow::Result<()> {
    eprintln!("building Java functions: mvn package (in {})", service.root.display());
    let stdout = std::os::fd::AsFd::as_fd(&std::io::stderr())
        .try_clone_to_owned()
        .context("cannot pass stderr to mvn")?;
    let mut mvn = Command::new("mvn");
    mvn.args(["-q", "-B", "-Dstyle.color=never", "package", "-DskipTests"])
        .current_dir(&service.root)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::inherit());
    crate::watch::die_with_sylph(&mut mvn);
    let status = mvn
        .status()
        .context("cannot run mvn (install Maven: apt-get install maven)")?;
    if !status.success() {
        bail!("mvn package failed in {}", service.root.display());
    }
    Ok(())
}
