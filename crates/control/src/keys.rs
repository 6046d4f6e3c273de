//! Access keys: who may deploy and manage which services, and sign calls to the table and
//! Invoke APIs.
//!
//! A key is an AWS-style pair: an access key id (`SYLK…`, 20 characters) and a 40-character
//! secret. The AWS SDKs sign with the pair (SigV4), and `sylph` sends it to the admin API.
//! SigV4 needs the server to know each secret, so a stored hash cannot work; instead no secret
//! is stored at all: each is derived from the server's master key and the key's id (HMAC), so
//! the control store (and any backup or shared database holding it) contains no secret, and a
//! revoked key's record stops it. The master key is one 0600 file in the data folder.

use std::io::Write as _;
use std::path::Path;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// One access key as the control store keeps it (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub id: String,
    /// What it is for (`ci`, `alice`), for `sylph keys list`.
    pub name: String,
    pub scope: Scope,
    /// May manage keys (`sylph keys`); the first key a server makes is one.
    pub admin: bool,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds; a revoked key is refused everywhere.
    pub revoked: Option<u64>,
}

/// Which services a key may deploy, manage and call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    All,
    /// Service names (`service:` of the manifest), every stage of each.
    Services(Vec<String>),
}

impl Key {
    pub fn is_live(&self) -> bool {
        self.revoked.is_none()
    }

    /// Whether this key may act on the service named `service`.
    pub fn allows(&self, service: &str) -> bool {
        self.is_live()
            && match &self.scope {
                Scope::All => true,
                Scope::Services(names) => names.iter().any(|n| n == service),
            }
    }

    /// A new key's record (its secret comes from [`MasterKey::secret`]).
    pub fn new(name: &str, scope: Scope, admin: bool) -> Key {
        Key {
            id: format!("SYLK{}", crate::random_chars(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")),
            name: name.to_owned(),
            scope,
            admin,
            created: crate::now_secs(),
            revoked: None,
        }
    }
}

/// Why the master key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("cannot read the master key {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write the master key {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("the master key {path} is damaged: it should hold 32 bytes, it holds {len}")]
    Damaged { path: String, len: usize },
}

/// The server's secret from which every key's secret is derived.
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// Read `path`, or create it (32 random bytes, mode 0600, synced) if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, MasterKeyError> {
        let shown = || path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| MasterKeyError::Damaged {
                    path: shown(),
                    len: bytes.len(),
                })?;
                return Ok(MasterKey(key));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(MasterKeyError::Read { path: shown(), source }),
        }
        let mut key = [0u8; 32];
        sylph_telemetry::fill_random(&mut key);
        write_private_file(path, &key).map_err(|source| MasterKeyError::Write { path: shown(), source })?;
        Ok(MasterKey(key))
    }

    /// The secret of the key `id`: 40 characters of the alphabet AWS secrets use.
    pub fn secret(&self, id: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::with_capacity(40);
        for block in 0u8..2 {
            let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
            mac.update(b"sylph access key secret\0");
            mac.update(&[block]);
            mac.update(id.as_bytes());
            for b in mac.finalize().into_bytes() {
                if out.len() < 40 {
                    out.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
                }
            }
        }
        out
    }

    /// Whether `secret` is the secret of key `id`, compared in constant time.
    pub fn verify(&self, id: &str, secret: &str) -> bool {
        let expected = self.secret(id);
        if expected.len() != secret.len() {
            return false;
        }
        expected
            .bytes()
            .zip(secret.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// Write `bytes` to `path` readable by its owner only (0600), whole or not at all: a
/// temporary file, synced, renamed into place, and the folder synced. For secrets: the master
/// key, and `sylph`'s credentials file.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Split `ID:SECRET` (how `sylph` passes a key around).
pub fn split_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.trim().split_once(':')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_stable_per_server_and_differ_between_servers() {
        let dir = std::env::temp_dir().join(format!("sylph-master-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master.key");
        let a = MasterKey::load_or_create(&path).unwrap();
        let again = MasterKey::load_or_create(&path).unwrap();
        let s = a.secret("SYLKAAAA");
        assert_eq!(s.len(), 40);
        assert_eq!(s, again.secret("SYLKAAAA"));
        assert_ne!(s, a.secret("SYLKAAAB"));
        assert!(a.verify("SYLKAAAA", &s));
        assert!(!a.verify("SYLKAAAB", &s));
        assert!(!a.verify("SYLKAAAA", &s[..39]));
        let other = MasterKey::load_or_create(&dir.join("other.key")).unwrap();
        assert_ne!(s, other.secret("SYLKAAAA"));
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            MasterKey::load_or_create(&path),
            Err(MasterKeyError::Damaged { len: 5, .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn scope_limits_services_and_revocation_stops_everything() {
        let mut k = Key::new("ci", Scope::Services(vec!["todo".into()]), false);
        assert!(k.id.starts_with("SYLK") && k.id.len() == 20);
        assert!(k.allows("todo"));
        assert!(!k.allows("shop"));
        k.revoked = Some(1);
        assert!(!k.allows("todo"));
        let all = Key::new("ops", Scope::All, true);
        assert!(all.allows("anything"));
        assert_eq!(split_token("SYLK1:abc"), Some(("SYLK1", "abc")));
        assert_eq!(split_token("SYLK1"), None);
        assert_eq!(split_token(":abc"), None);
    }
}
