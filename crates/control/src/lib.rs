//! The control plane's state for `sylph server`: deployed services, their versions and aliases
//! ([`store`]), access keys ([`keys`]), uploaded code ([`blobs`]), and what a service's package
//! holds ([`package`], shared by `sylph deploy` and the server). The admin API's request and
//! response bodies are [`api`].
//!
//! Everything the server keeps sits behind the narrow traits [`store::ControlStore`] and
//! [`blobs::BlobStore`]; the embedded implementations (redb, and a content-addressed folder)
//! are the default, so that several servers can later share an external database instead.
//! This crate knows nothing of HTTP or processes.

pub mod api;
pub mod blobs;
pub mod keys;
pub mod package;
pub mod store;

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) use sylph_telemetry::random_chars;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}
