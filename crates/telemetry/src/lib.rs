//! Telemetry shared by every part of Sylph: where function output and invocation records go,
//! Lambda's START / END / REPORT lines, request ids, and the timestamp formats AWS uses.
//!
//! It knows nothing of runtimes, HTTP or YAML; other crates call it to say what happened.

pub mod logstore;
pub mod metrics;

use std::fmt;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `n` characters drawn uniformly from `alphabet` (whose length divides 256), from the
/// kernel's random source: access keys, secrets, ids.
pub fn random_chars(n: usize, alphabet: &[u8]) -> String {
    debug_assert!(256 % alphabet.len() == 0);
    let mut bytes = vec![0u8; n];
    fill_random(&mut bytes);
    bytes
        .iter()
        .map(|b| alphabet[usize::from(*b) % alphabet.len()] as char)
        .collect()
}

/// Milliseconds since the Unix epoch (0 on a clock set before it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Where function output and invocation records are written.
///
/// Called from reader tasks and the request path, so implementations must not block for long.
pub trait LogSink: Send + Sync + 'static {
    /// One line of a function's stdout/stderr (without the newline), or a platform line such as
    /// START/END/REPORT. `request_id` is the invocation the instance was serving, if any.
    fn line(&self, function: &str, request_id: Option<&str>, text: &str);
}

/// Writes `[function] [request-id] text` lines to the terminal.
#[derive(Debug, Default)]
pub struct TerminalSink {
    /// Write to stderr instead of stdout (when stdout carries a result, as in `invoke local`).
    pub stderr: bool,
}

impl TerminalSink {
    fn write(out: &mut dyn Write, function: &str, request_id: Option<&str>, text: &str) {
        // Lambda's runtimes keep a multi-line message on one line, its newlines written as \r,
        // which a terminal would print over each other: show them as indented lines.
        let text: std::borrow::Cow<str> = if text.contains('\r') {
            text.replace('\r', "\n    ").into()
        } else {
            text.into()
        };
        let text = text.as_ref();
        let _ = match request_id {
            Some(id) if !text.contains(id) => writeln!(out, "[{function}] [{id}] {text}"),
            _ => writeln!(out, "[{function}] {text}"),
        };
    }
}

impl LogSink for TerminalSink {
    fn line(&self, function: &str, request_id: Option<&str>, text: &str) {
        if self.stderr {
            Self::write(&mut std::io::stderr().lock(), function, request_id, text);
        } else {
            Self::write(&mut std::io::stdout().lock(), function, request_id, text);
        }
    }
}

/// Discards everything (benchmarks of the platform itself, tests that check other output).
#[derive(Debug, Default)]
pub struct NullSink;

impl LogSink for NullSink {
    fn line(&self, _: &str, _: Option<&str>, _: &str) {}
}

/// Lambda's `REPORT` line for one invocation.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    pub request_id: &'a str,
    pub duration: Duration,
    pub memory_size_mb: u32,
    pub max_memory_used_mb: u64,
    /// Set on a cold start: how long the runtime took to become ready.
    pub init_duration: Option<Duration>,
}

impl Report<'_> {
    /// Lambda bills whole milliseconds, rounding up.
    pub fn billed_ms(&self) -> u128 {
        let micros = self.duration.as_micros();
        micros.div_ceil(1000).max(1)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            self.request_id,
            self.duration.as_secs_f64() * 1000.0,
            self.billed_ms(),
            self.memory_size_mb,
            self.max_memory_used_mb,
        )?;
        if let Some(init) = self.init_duration {
            write!(f, "\tInit Duration: {:.2} ms", init.as_secs_f64() * 1000.0)?;
        }
        Ok(())
    }
}

/// Lambda's JSON `platform.start` record (the JSON log format) for one invocation, at `time`.
/// Its fields are ids, an ARN and a version: nothing to escape.
pub fn platform_start_record(time: &str, request_id: &str, function_arn: &str, version: &str) -> String {
    format!(
        "{{\"time\":\"{time}\",\"type\":\"platform.start\",\"record\":{{\"requestId\":\"{request_id}\",\"functionArn\":\"{function_arn}\",\"version\":\"{version}\"}}}}"
    )
}

impl Report<'_> {
    /// The same as Lambda's JSON `platform.report` record (the JSON log format), at `time`.
    pub fn json_record(&self, status: &str, time: &str) -> String {
        let mut metrics = format!(
            "{{\"durationMs\":{:.3},\"billedDurationMs\":{},\"memorySizeMB\":{},\"maxMemoryUsedMB\":{}",
            self.duration.as_secs_f64() * 1000.0,
            self.billed_ms(),
            self.memory_size_mb,
            self.max_memory_used_mb,
        );
        if let Some(init) = self.init_duration {
            metrics.push_str(&format!(",\"initDurationMs\":{:.3}", init.as_secs_f64() * 1000.0));
        }
        metrics.push('}');
        format!(
            "{{\"time\":\"{time}\",\"type\":\"platform.report\",\"record\":{{\"requestId\":\"{}\",\"metrics\":{metrics},\"status\":\"{status}\"}}}}",
            self.request_id
        )
    }
}

/// A random version 4 UUID, as Lambda uses for request ids.
///
/// The bits come from the kernel's CSPRNG (`getrandom`): request ids reach function code and
/// clients, and an id one can predict (the clock-and-pid mix used before) lets one instance
/// guess another's invocation ids. One system call costs well under a microsecond.
pub fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    bytes[6] = (bytes[6] & 0x0F) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3F) | 0x80; // RFC 4122 variant
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xF)] as char);
    }
    out
}

/// Fill `buf` from the kernel's random source. Panics only if the kernel has none (Linux
/// before 3.17), where nothing else in Sylph would run either.
pub fn fill_random(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: writing into the rest of our own buffer.
        let n = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            assert!(err.kind() == std::io::ErrorKind::Interrupted, "getrandom failed: {err}");
            continue;
        }
        filled += n as usize;
    }
}

/// A point in time broken into UTC calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
    pub epoch_millis: u64,
}

impl UtcTime {
    pub fn now() -> UtcTime {
        UtcTime::from_system(SystemTime::now())
    }

    pub fn from_system(t: SystemTime) -> UtcTime {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs() as i64;
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        UtcTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            millis: since.subsec_millis(),
            epoch_millis: since.as_millis() as u64,
        }
    }

    /// `09/Apr/2015:12:34:56 +0000`, API Gateway's `requestContext.requestTime`.
    pub fn clf(&self) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
            self.day,
            MONTHS[(self.month - 1) as usize],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }

    /// `2015/04/09`, the date part of a Lambda log stream name.
    pub fn slash_date(&self) -> String {
        format!("{}/{:02}/{:02}", self.year, self.month, self.day)
    }

    /// `20150409T123456Z`, SigV4's `X-Amz-Date`.
    pub fn amz_date(&self) -> String {
        format!(
            "{}{:02}{:02}T{:02}{:02}{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `2015-04-09T12:34:56.789Z`.
    pub fn iso8601(&self) -> String {
        format!(
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_line_matches_lambda() {
        let r = Report {
            request_id: "abc",
            duration: Duration::from_micros(12_345),
            memory_size_mb: 1024,
            max_memory_used_mb: 40,
            init_duration: Some(Duration::from_micros(150_500)),
        };
        assert_eq!(
            r.to_string(),
            "REPORT RequestId: abc\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 1024 MB\tMax Memory Used: 40 MB\tInit Duration: 150.50 ms"
        );
    }

    #[test]
    fn request_ids_are_uuid_shaped_and_distinct() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        let distinct: std::collections::HashSet<String> = (0..1000).map(|_| new_request_id()).collect();
        assert_eq!(distinct.len(), 1000);
    }

    #[test]
    fn calendar_conversion() {
        let t = UtcTime::from_system(UNIX_EPOCH + Duration::from_millis(1_428_582_896_789));
        assert_eq!(t.iso8601(), "2015-04-09T12:34:56.789Z");
        assert_eq!(t.clf(), "09/Apr/2015:12:34:56 +0000");
        assert_eq!(t.slash_date(), "2015/04/09");
    }
}
