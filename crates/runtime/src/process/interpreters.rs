//! Which interpreter serves a runtime id. The machine's default `node` / `python3` serves every
//! id of its language, unless an interpreter of exactly the version an id names is installed
//! where version managers put them (pyenv: `$PYENV_ROOT/versions/3.X.*`, nvm:
//! `$NVM_DIR/versions/node/vNN.*`) or beside the system's (`/usr/bin/python3.X`) and it can load
//! the AWS SDK Sylph provides: a `python3.8` service whose pinned packages need 3.8 then runs
//! on 3.8. The SDK for one Python version may sit beside the default one's folder as
//! `<folder>-3.X` (boto3 dropped old Pythons; `scripts/install-runtimes` installs one per
//! version it finds).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sylph_model::Runtime as RuntimeId;

use super::Family;

/// The version a runtime id names, as interpreters report it: `3.8`, `16`.
pub(super) fn wanted(runtime: &RuntimeId) -> Option<(Family, String)> {
    match runtime {
        RuntimeId::Python(id) => Some((Family::Python, id.strip_prefix("python")?.to_owned())),
        RuntimeId::Node(id) => Some((Family::Node, id.strip_prefix("nodejs")?.split('.').next()?.to_owned())),
        // A JDK is chosen by its `release` file (see `java.rs`), not by `--version`.
        RuntimeId::Provided(_) | RuntimeId::Java(_) | RuntimeId::Wasm(_) => None,
    }
}

/// `Python 3.11.7` → `3.11`, `v20.11.1` → `20`: the part a runtime id names.
pub(super) fn short_version(family: Family, reported: &str) -> String {
    match family {
        Family::Python => reported
            .trim_start_matches("Python ")
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join("."),
        Family::Node => reported
            .trim_start_matches('v')
            .split('.')
            .next()
            .unwrap_or("")
            .to_owned(),
        Family::Java => reported.to_owned(),
    }
}

/// What `program --version` says, trimmed (`Python 3.11.7`, `v20.11.1`).
pub(super) fn reported_version(program: &Path) -> Option<String> {
    let out = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    // Python 2 and old 3s print their version on stderr.
    let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
    Some(String::from_utf8_lossy(&text).trim().to_owned())
}

/// An interpreter of exactly `version` installed on this machine, if there is one.
pub(super) fn find_exact(family: Family, version: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match family {
        Family::Python => {
            let root = std::env::var_os("PYENV_ROOT")
                .map(PathBuf::from)
                .or_else(|| home.map(|h| h.join(".pyenv")))?;
            let program = format!("python{version}");
            newest_under(
                &root.join("versions"),
                &format!("{version}."),
                &format!("bin/{program}"),
            )
            .or_else(|| {
                ["/usr/local/bin", "/usr/bin"]
                    .iter()
                    .map(|d| Path::new(d).join(&program))
                    .find(|p| p.is_file())
            })
        }
        Family::Node => {
            let root = std::env::var_os("NVM_DIR")
                .map(PathBuf::from)
                .or_else(|| home.map(|h| h.join(".nvm")))?;
            newest_under(&root.join("versions/node"), &format!("v{version}."), "bin/node")
        }
        // JDKs are found by their `release` files (see `java.rs`).
        Family::Java => None,
    }
}

/// In `dir`, the entry named `prefix…` with the highest version that has `file` in it.
fn newest_under(dir: &Path, prefix: &str, file: &str) -> Option<PathBuf> {
    let mut found: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix(prefix)?;
            // `3.8.18`, not `3.8.18-debug` or `3.8-dev`: a plain release only.
            let patch: Vec<u32> = rest.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
            let program = e.path().join(file);
            program.is_file().then_some((patch, program))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// Whether `program` loads the AWS SDK found on `search_path` (`PYTHONPATH` / `NODE_PATH`).
pub(super) fn loads_sdk(family: Family, program: &Path, search_path: Option<&str>) -> bool {
    let mut cmd = Command::new(program);
    match family {
        Family::Python => {
            cmd.args(["-c", "import boto3"]);
            if let Some(p) = search_path {
                cmd.env("PYTHONPATH", p);
            }
        }
        Family::Node => {
            cmd.args(["-e", "require('aws-sdk/global')"]);
            if let Some(p) = search_path {
                cmd.env("NODE_PATH", p);
            }
        }
        // AWS's Java runtimes provide no SDK: functions bundle it.
        Family::Java => return true,
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_plain_release_of_a_version_is_found() {
        let dir = std::env::temp_dir().join(format!("sylph-interp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for v in ["3.8.9", "3.8.18", "3.8.20-debug", "3.80.1", "3.9.1"] {
            let bin = dir.join(v).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("python3.8"), "").unwrap();
        }
        assert_eq!(
            newest_under(&dir, "3.8.", "bin/python3.8"),
            Some(dir.join("3.8.18/bin/python3.8"))
        );
        assert_eq!(newest_under(&dir, "3.7.", "bin/python3.7"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn versions_shorten_to_what_runtime_ids_name() {
        assert_eq!(short_version(Family::Python, "Python 3.11.7"), "3.11");
        assert_eq!(short_version(Family::Node, "v20.11.1"), "20");
        assert_eq!(
            wanted(&RuntimeId::Node("nodejs16.x".into())),
            Some((Family::Node, "16".into()))
        );
        assert_eq!(
            wanted(&RuntimeId::Python("python3.8".into())),
            Some((Family::Python, "3.8".into()))
        );
    }
}
