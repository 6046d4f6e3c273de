//! Function logs kept on disk for `sylph logs`: every line a function writes and every START /
//! END / REPORT, per function, with its time and request id. Retention is bounded by size:
//! each function has a current file and a previous one, and when the current one passes half
//! the limit it becomes the previous one (the oldest half is dropped). Lines are written as
//! they come (one `write` each, not synced: logs, like CloudWatch's agent, are best effort on a
//! crash); reads scan both files.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One stored line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLine {
    /// Unix milliseconds.
    pub time_ms: u64,
    pub request_id: Option<String>,
    pub text: String,
}

/// Where function logs are kept: the narrow boundary `sylph server` uses, so that a shared
/// store can replace the files later. [`FileLogs`] is the default.
pub trait LogStore: Send + Sync {
    /// Append one line for `function` (its deployed name).
    fn append(&self, function: &str, request_id: Option<&str>, text: &str);
    /// Lines of `function` from `since_ms` on that contain `filter` (or are of that request),
    /// oldest first, at most `limit` (the newest ones when there are more).
    fn read(&self, function: &str, since_ms: u64, filter: Option<&str>, limit: usize) -> Vec<StoredLine>;
    /// Forget `function`'s logs (its service was removed).
    fn remove(&self, function: &str);
}

/// Logs in files: per function a current and a previous file.
pub struct FileLogs {
    dir: PathBuf,
    /// Bytes kept per function, at most (both files together).
    limit: u64,
    open: Mutex<HashMap<String, (File, u64)>>,
}

/// Function names become file names: anything but `[A-Za-z0-9._-]` is replaced.
fn file_stem(function: &str) -> String {
    function
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

use crate::unix_ms as now_ms;

impl FileLogs {
    pub fn open(dir: &Path, limit_bytes: u64) -> std::io::Result<FileLogs> {
        std::fs::create_dir_all(dir)?;
        Ok(FileLogs {
            dir: dir.to_owned(),
            limit: limit_bytes.max(2048),
            open: Mutex::new(HashMap::new()),
        })
    }

    fn paths(&self, function: &str) -> (PathBuf, PathBuf) {
        let stem = file_stem(function);
        (
            self.dir.join(format!("{stem}.log")),
            self.dir.join(format!("{stem}.1.log")),
        )
    }
}

impl LogStore for FileLogs {
    fn append(&self, function: &str, request_id: Option<&str>, text: &str) {
        let mut line = format!("{}\t{}\t", now_ms(), request_id.unwrap_or("-"));
        // One stored line per line written: tabs and newlines inside stay readable.
        line.extend(text.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }));
        line.push('\n');
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if !open.contains_key(function) {
            let (current, _) = self.paths(function);
            let Ok(file) = OpenOptions::new().create(true).append(true).open(&current) else {
                return;
            };
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            open.insert(function.to_owned(), (file, size));
        }
        let Some((file, size)) = open.get_mut(function) else {
            return;
        };
        if file.write_all(line.as_bytes()).is_ok() {
            *size += line.len() as u64;
        }
        if *size > self.limit / 2 {
            let (current, previous) = self.paths(function);
            let _ = std::fs::rename(&current, &previous);
            open.remove(function);
        }
    }

    fn read(&self, function: &str, since_ms: u64, filter: Option<&str>, limit: usize) -> Vec<StoredLine> {
        let (current, previous) = self.paths(function);
        let mut out = Vec::new();
        for path in [previous, current] {
            let Ok(file) = File::open(&path) else { continue };
            for line in BufReader::new(file).lines().map_while(Result::ok) {
                let mut parts = line.splitn(3, '\t');
                let (Some(time), Some(id), Some(text)) = (parts.next(), parts.next(), parts.next()) else {
                    continue;
                };
                let Ok(time_ms) = time.parse::<u64>() else { continue };
                if time_ms < since_ms || filter.is_some_and(|f| !text.contains(f) && id != f) {
                    continue;
                }
                out.push(StoredLine {
                    time_ms,
                    request_id: (id != "-").then(|| id.to_owned()),
                    text: text.to_owned(),
                });
            }
        }
        if out.len() > limit {
            out.drain(..out.len() - limit);
        }
        out
    }

    fn remove(&self, function: &str) {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).remove(function);
        let (current, previous) = self.paths(function);
        let _ = std::fs::remove_file(current);
        let _ = std::fs::remove_file(previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept_per_function_filtered_and_bounded() {
        let dir = std::env::temp_dir().join(format!("sylph-logstore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = FileLogs::open(&dir, 64 * 1024).unwrap();
        store.append("svc-dev-a", Some("r1"), "START RequestId: r1 Version: 1");
        store.append("svc-dev-a", Some("r1"), "hello\nworld");
        store.append("svc-dev-b", None, "other function");
        let a = store.read("svc-dev-a", 0, None, 100);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].text, "hello world");
        assert_eq!(a[1].request_id.as_deref(), Some("r1"));
        assert_eq!(store.read("svc-dev-a", 0, Some("hello"), 100).len(), 1);
        assert_eq!(store.read("svc-dev-a", 0, Some("r1"), 100).len(), 2);
        assert!(store.read("svc-dev-a", now_ms() + 60_000, None, 100).is_empty());
        // Far more than the limit is written; what is kept stays within it, newest last.
        for i in 0..5000 {
            store.append("svc-dev-a", None, &format!("line {i} {}", "x".repeat(40)));
        }
        let kept: u64 = ["svc-dev-a.log", "svc-dev-a.1.log"]
            .iter()
            .map(|f| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0))
            .sum();
        assert!(kept <= 64 * 1024 + 200, "{kept}");
        let last = store.read("svc-dev-a", 0, None, 1);
        assert!(last[0].text.starts_with("line 4999 "), "{:?}", last);
        store.remove("svc-dev-a");
        assert!(store.read("svc-dev-a", 0, None, 100).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
