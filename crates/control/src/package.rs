//! What a deployed service's package holds, as the Serverless Framework decides it: every file
//! under the service folder except the default excludes (`.git`, `.serverless`, `.DS_Store`,
//! `npm-debug.log`, dotenv files, and Sylph's own `.sylph` data), then `package.patterns` in
//! order (`!pattern` removes what matches, `pattern` adds it back), with Lambda's 250 MB
//! unzipped limit. Both `sylph deploy` (to list and hash) and the server (to check what it is
//! sent) use it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Lambda's limit on a function's unzipped code.
pub const MAX_UNZIPPED_BYTES: u64 = 250 * 1024 * 1024;

/// One file of a package, as the server is told of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative, `/`-separated, no `.` or `..` parts.
    pub path: String,
    /// SHA-256 of the content, lower-case hex.
    pub hash: String,
    pub size: u64,
    pub executable: bool,
}

/// A file found for the package.
#[derive(Debug, Clone)]
pub struct Listed {
    pub absolute: PathBuf,
    pub relative: String,
    pub size: u64,
    pub executable: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("the package is {size} bytes unzipped, over Lambda's limit of {limit} bytes (250 MB); exclude what the functions do not need with package.patterns (`!path/**`)", limit = MAX_UNZIPPED_BYTES)]
    TooLarge { size: u64 },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0:?} is not a path a package may hold (it must be relative, without `.` or `..` parts)")]
    BadPath(String),
}

/// What the Framework leaves out unless a pattern names it.
fn excluded_by_default(relative: &str) -> bool {
    let first = relative.split('/').next().unwrap_or(relative);
    let name = relative.rsplit('/').next().unwrap_or(relative);
    matches!(first, ".git" | ".serverless" | ".serverless_plugins" | ".sylph")
        || matches!(name, ".DS_Store" | "npm-debug.log" | ".gitignore")
        // Dotenv files at the top: the Framework reads them into the environment.
        || (first == name && (name == ".env" || name.starts_with(".env.")))
}

/// The files of the service in `root`, sorted by path.
pub fn list(root: &Path, patterns: &[String]) -> Result<Vec<Listed>, PackageError> {
    let mut all = Vec::new();
    walk(root, root, &mut all)?;
    let mut files: Vec<Listed> = all
        .into_iter()
        .filter(|f| {
            let mut keep = !excluded_by_default(&f.relative);
            for p in patterns {
                match p.strip_prefix('!') {
                    Some(neg) if glob_match(neg, &f.relative) => keep = false,
                    None if glob_match(p, &f.relative) => keep = true,
                    _ => {}
                }
            }
            keep
        })
        .collect();
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    let size: u64 = files.iter().map(|f| f.size).sum();
    if size > MAX_UNZIPPED_BYTES {
        return Err(PackageError::TooLarge { size });
    }
    Ok(files)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Listed>) -> Result<(), PackageError> {
    let read_err = |path: &Path, source| PackageError::Read {
        path: path.display().to_string(),
        source,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| read_err(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| read_err(dir, e))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|e| read_err(&path, e))?;
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        if file_type.is_dir() {
            // Skipped whole, without reading them: they can be large (.git) and are never sent.
            if matches!(relative.as_str(), ".git" | ".sylph" | ".serverless") {
                continue;
            }
            walk(root, &path, out)?;
            continue;
        }
        // Symbolic links are followed to files (as zip tools do); links to folders are not, so
        // a loop cannot make the walk endless.
        let meta = std::fs::metadata(&path).map_err(|e| read_err(&path, e))?;
        if !meta.is_file() {
            continue;
        }
        use std::os::unix::fs::PermissionsExt as _;
        out.push(Listed {
            absolute: path,
            relative,
            size: meta.len(),
            executable: meta.permissions().mode() & 0o111 != 0,
        });
    }
    Ok(())
}

/// Whether `path` is a relative path a package may hold.
pub fn check_path(path: &str) -> Result<(), PackageError> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if ok {
        Ok(())
    } else {
        Err(PackageError::BadPath(path.chars().take(200).collect()))
    }
}

/// Glob matching as `package.patterns` uses it: `*` and `?` within one path part, `**` across
/// parts, and a plain folder name (or `folder/`) matching everything under it.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
    let pattern = pattern.trim_end_matches('/');
    if !pattern.contains(['*', '?']) {
        return path == pattern || path.strip_prefix(pattern).is_some_and(|rest| rest.starts_with('/'));
    }
    let pat: Vec<&str> = pattern.split('/').collect();
    let parts: Vec<&str> = path.split('/').collect();
    match_parts(&pat, &parts)
}

fn match_parts(pat: &[&str], parts: &[&str]) -> bool {
    match pat.split_first() {
        None => parts.is_empty(),
        Some((&"**", rest)) => (0..=parts.len()).any(|skip| match_parts(rest, &parts[skip..])),
        Some((first, rest)) => match parts.split_first() {
            Some((part, tail)) => match_part(first.as_bytes(), part.as_bytes()) && match_parts(rest, tail),
            None => false,
        },
    }
}

fn match_part(pat: &[u8], s: &[u8]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|skip| match_part(rest, &s[skip..])),
        Some((b'?', rest)) => !s.is_empty() && match_part(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && match_part(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_package_patterns() {
        assert!(glob_match("src/**", "src/a/b.js"));
        assert!(glob_match("**/*.test.js", "a/b/c.test.js"));
        assert!(glob_match("**/*.test.js", "c.test.js"));
        assert!(!glob_match("*.js", "a/b.js"));
        assert!(glob_match("*.js", "b.js"));
        assert!(glob_match("scripts", "scripts/deploy.sh"));
        assert!(!glob_match("scripts", "scripts2/x"));
        assert!(glob_match("node_modules/**", "node_modules/x/index.js"));
        assert!(glob_match("?.md", "a.md"));
        assert!(!glob_match("?.md", "ab.md"));
    }

    #[test]
    fn the_package_follows_the_default_excludes_and_patterns_in_order() {
        let root = std::env::temp_dir().join(format!("sylph-package-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for f in [
            "handler.js",
            ".env",
            ".env.local",
            ".git/config",
            ".sylph/tables/x",
            "secrets/key.pem",
            "test/a.test.js",
            "lib/util.js",
            "public/.env.example",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        let names = |patterns: &[&str]| -> Vec<String> {
            let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
            list(&root, &patterns)
                .unwrap()
                .into_iter()
                .map(|l| l.relative)
                .collect()
        };
        assert_eq!(
            names(&[]),
            [
                "handler.js",
                "lib/util.js",
                "public/.env.example",
                "secrets/key.pem",
                "test/a.test.js"
            ]
        );
        assert_eq!(
            names(&["!secrets/**", "!test/**", "test/a.test.js", ".env"]),
            [
                ".env",
                "handler.js",
                "lib/util.js",
                "public/.env.example",
                "test/a.test.js"
            ]
        );
        for bad in ["/etc/passwd", "../x", "a/../../b", "a//b", "./a", ""] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        assert!(check_path("a/b.js").is_ok());
        let _ = std::fs::remove_dir_all(&root);
    }
}
