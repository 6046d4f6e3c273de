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
/// local` keeps stdout for the function's result). Quiet Maven prints little besides errors;
/// Debian's Maven 3.8 adds colour resets to it even with `-B`, which are taken out.
pub fn build_java(service: &Service) -> anyhow::Result<()> {
    eprintln!("building Java functions: mvn package (in {})", service.root.display());
    let mut mvn = Command::new("mvn");
    mvn.args(["-q", "-B", "-Dstyle.color=never", "package", "-DskipTests"])
        .current_dir(&service.root)
        .stdin(Stdio::null());
    crate::watch::die_with_sylph(&mut mvn);
    let output = mvn
        .output()
        .context("cannot run mvn (install Maven: apt-get install maven)")?;
    for text in [&output.stdout, &output.stderr] {
        let text = without_colour(&String::from_utf8_lossy(text));
        if !text.trim().is_empty() {
            eprint!("{text}");
        }
    }
    if !output.status.success() {
        bail!("mvn package failed in {}", service.root.display());
    }
    Ok(())
}

/// `text` without ANSI colour sequences (`ESC [ … m`).
fn without_colour(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match after.find(|c: char| !(c.is_ascii_digit() || c == ';')) {
            Some(end) if after[end..].starts_with('m') => rest = &after[end + 1..],
            _ => {
                out.push_str("\x1b[");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_sequences_are_taken_out_and_the_rest_kept() {
        assert_eq!(super::without_colour("\x1b[0m\x1b[0m"), "");
        assert_eq!(
            super::without_colour("\x1b[1;31m[ERROR]\x1b[m broken\n"),
            "[ERROR] broken\n"
        );
        assert_eq!(super::without_colour("a \x1b[2J b"), "a \x1b[2J b");
    }
}
