//! Uploaded code, content-addressed: each file of a package is stored once under its SHA-256,
//! so a deploy uploads only files the server has never seen, and every version's code folder
//! is made of hard links to them.
//!
//! An upload is written to a temporary file, hashed as it arrives, checked against the hash
//! it claims, synced and only then renamed into place: a server killed mid-upload keeps no
//! partial blob (the temporary files are removed at the next start).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("{0:?} is not a SHA-256 (64 lower-case hex digits)")]
    BadHash(String),
    #[error("the upload's content hashes to {actual}, not {expected}")]
    Mismatch { expected: String, actual: String },
    #[error("no uploaded file has hash {0}")]
    Missing(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where uploaded files live.
pub trait BlobStore: Send + Sync {
    fn contains(&self, hash: &str) -> bool;
    /// Start receiving a file.
    fn begin(&self) -> Result<Box<dyn BlobUpload>, BlobError>;
    /// Put the file `hash` at `dest` (read-only; executable if asked), for a version's code.
    fn materialize(&self, hash: &str, dest: &Path, executable: bool) -> Result<(), BlobError>;
}

/// One file being received.
pub trait BlobUpload: Send {
    fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError>;
    /// Keep the file if its content hashes to `expected`; returns its size.
    fn finish(self: Box<Self>, expected: &str) -> Result<u64, BlobError>;
}

/// Blobs in a folder: `blobs/ab/abcdef…` (and `…x`, an executable copy, when one is needed).
pub struct FsBlobs {
    dir: PathBuf,
    staging: PathBuf,
}

pub fn check_hash(hash: &str) -> Result<(), BlobError> {
    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(BlobError::BadHash(hash.chars().take(80).collect()))
    }
}

impl FsBlobs {
    /// Blobs under `dir`, uploads staged in `staging` (emptied now: what is there is left
    /// from uploads a stopped server never finished).
    pub fn open(dir: &Path, staging: &Path) -> Result<FsBlobs, BlobError> {
        std::fs::create_dir_all(dir)?;
        let _ = std::fs::remove_dir_all(staging);
        std::fs::create_dir_all(staging)?;
        Ok(FsBlobs {
            dir: dir.to_owned(),
            staging: staging.to_owned(),
        })
    }

    fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(&hash[..2]).join(hash)
    }
}

impl BlobStore for FsBlobs {
    fn contains(&self, hash: &str) -> bool {
        check_hash(hash).is_ok() && self.path(hash).is_file()
    }

    fn begin(&self) -> Result<Box<dyn BlobUpload>, BlobError> {
        let name = format!(
            "upload-{}",
            crate::random_chars(16, b"abcdefghijklmnopqrstuvwxyz234567")
        );
        let path = self.staging.join(name);
        let file = std::fs::File::create(&path)?;
        Ok(Box::new(FsUpload {
            file: Some(file),
            path,
            hasher: Sha256::new(),
            size: 0,
            blobs: self.dir.clone(),
        }))
    }

    fn materialize(&self, hash: &str, dest: &Path, executable: bool) -> Result<(), BlobError> {
        check_hash(hash)?;
        let plain = self.path(hash);
        if !plain.is_file() {
            return Err(BlobError::Missing(hash.to_owned()));
        }
        let source = if executable {
            // Hard links share their mode: executables link to their own copy.
            let exe = plain.with_extension("x");
            if !exe.is_file() {
                use std::os::unix::fs::PermissionsExt as _;
                // A name of its own (two deploys may want the same copy at once), synced
                // before it is renamed into place (a crash must not leave a broken bootstrap
                // that later deploys would reuse).
                let tmp = self.staging.join(format!(
                    "{hash}.x.{}",
                    crate::random_chars(12, b"abcdefghijklmnopqrstuvwxyz234567")
                ));
                std::fs::copy(&plain, &tmp)?;
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555))?;
                std::fs::File::open(&tmp)?.sync_all()?;
                std::fs::rename(&tmp, &exe)?;
            }
            exe
        } else {
            plain
        };
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::hard_link(&source, dest).is_err() {
            std::fs::copy(&source, dest)?;
        }
        Ok(())
    }
}

struct FsUpload {
    file: Option<std::fs::File>,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
    blobs: PathBuf,
}

impl BlobUpload for FsUpload {
    fn write(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file.as_mut().expect("open until finished").write_all(chunk)?;
        Ok(())
    }

    fn finish(mut self: Box<Self>, expected: &str) -> Result<u64, BlobError> {
        check_hash(expected)?;
        let actual = crate::hex(&std::mem::take(&mut self.hasher).finalize());
        if actual != expected {
            return Err(BlobError::Mismatch {
                expected: expected.to_owned(),
                actual,
            });
        }
        let file = self.file.take().expect("open until finished");
        file.sync_all()?;
        drop(file);
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o444))?;
        let dir = self.blobs.join(&expected[..2]);
        std::fs::create_dir_all(&dir)?;
        std::fs::rename(&self.path, dir.join(expected))?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(self.size)
    }
}

impl Drop for FsUpload {
    fn drop(&mut self) {
        // Unfinished or refused: nothing of it is kept.
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// SHA-256 of a file, as lower-case hex.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(crate::hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_is_kept_only_when_its_hash_matches() {
        let root = std::env::temp_dir().join(format!("sylph-blobs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let blobs = FsBlobs::open(&root.join("blobs"), &root.join("staging")).unwrap();
        let good = crate::hex(&Sha256::digest(b"hello"));
        let mut up = blobs.begin().unwrap();
        up.write(b"hel").unwrap();
        up.write(b"lo").unwrap();
        assert_eq!(up.finish(&good).unwrap(), 5);
        assert!(blobs.contains(&good));

        let wrong = crate::hex(&Sha256::digest(b"other"));
        let mut up = blobs.begin().unwrap();
        up.write(b"tampered").unwrap();
        assert!(matches!(up.finish(&wrong), Err(BlobError::Mismatch { .. })));
        assert!(!blobs.contains(&wrong));
        // Nothing is left staged by a refused or abandoned upload.
        let mut abandoned = blobs.begin().unwrap();
        abandoned.write(b"half").unwrap();
        drop(abandoned);
        assert_eq!(std::fs::read_dir(root.join("staging")).unwrap().count(), 0);

        for bad in ["../../etc/passwd", "ABC", &good.to_uppercase()] {
            assert!(matches!(check_hash(bad), Err(BlobError::BadHash(_))), "{bad}");
            assert!(!blobs.contains(bad));
        }
        let dest = root.join("code/v1/bin/tool");
        blobs.materialize(&good, &dest, true).unwrap();
        blobs.materialize(&good, &root.join("code/v1/readme"), false).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o555);
        assert_eq!(
            std::fs::metadata(root.join("code/v1/readme"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o444
        );
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert!(matches!(
            blobs.materialize(&wrong, &root.join("x"), false),
            Err(BlobError::Missing(_))
        ));
        let _ = std::fs::remove_dir_all(&root);
    }
}
