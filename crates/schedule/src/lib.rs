//! Schedule expressions as Amazon EventBridge reads them — `rate(5 minutes)`, the six-field
//! `cron(0 12 ? * MON-FRI *)`, and EventBridge Scheduler's one-time `at(2026-01-01T09:00:00)` —
//! and when each next fires, in UTC or a named time zone; the JSONPath and templates that
//! shape what a tick delivers; and EventBridge's event patterns (`filterPatterns`). Pure computation on Unix milliseconds: it knows nothing of
//! functions, storage or clocks (callers pass the time in).

mod cron;
pub mod json_path;
pub mod pattern;

use std::time::Duration;

pub use cron::Cron;

/// Why an expression or a time zone was refused; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, ScheduleError> {
    Err(ScheduleError(message.into()))
}

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// `rate(n unit)`: every `n` minutes, hours or days, counted from when the schedule began.
    Rate(Duration),
    Cron(Cron),
    /// `at(yyyy-mm-ddThh:mm:ss)`: once, at that wall-clock time (EventBridge Scheduler only).
    At(jiff::civil::DateTime),
}

impl Expression {
    /// Parse `rate(…)`, `cron(…)` or (with `allow_at`) `at(…)`.
    pub fn parse(text: &str, allow_at: bool) -> Result<Expression, ScheduleError> {
        let text = text.trim();
        let inner = |prefix: &str| {
            text.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
                .map(str::trim)
        };
        if let Some(body) = inner("rate(") {
            return rate(body).map(Expression::Rate);
        }
        if let Some(body) = inner("cron(") {
            return Cron::parse(body).map(Expression::Cron);
        }
        if let Some(body) = inner("at(") {
            if !allow_at {
                return err("at(…) one-time schedules need `method: scheduler`");
            }
            return body
                .parse::<jiff::civil::DateTime>()
                .ok()
                .filter(|_| body.len() == 19)
                .map(Expression::At)
                .ok_or_else(|| ScheduleError(format!("`at({body})` is not a time like at(2026-01-31T09:30:00)")));
        }
        err(format!(
            "`{text}` is not a schedule expression: write rate(5 minutes), cron(0 12 * * ? *){}",
            if allow_at { " or at(2026-01-31T09:30:00)" } else { "" }
        ))
    }
}

/// `n unit`, where AWS wants the unit singular for 1 and plural otherwise.
fn rate(body: &str) -> Result<Duration, ScheduleError> {
    let usage = "write rate(1 minute), rate(5 minutes), rate(1 hour) or rate(2 days)";
    let mut parts = body.split_whitespace();
    let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return err(format!("`rate({body})` needs a number and a unit: {usage}"));
    };
    let n: u64 = match n.parse() {
        Ok(n) if n > 0 => n,
        _ => return err(format!("`{n}` in rate({body}) is not a whole number above 0: {usage}")),
    };
    let (singular, seconds) = match unit.trim_end_matches('s') {
        "minute" => ("minute", 60),
        "hour" => ("hour", 3600),
        "day" => ("day", 86_400),
        _ => return err(format!("`{unit}` in rate({body}) is not a unit: {usage}")),
    };
    let plural = unit.ends_with('s');
    if (n == 1) == plural {
        let want = if n == 1 {
            singular.to_owned()
        } else {
            format!("{singular}s")
        };
        return err(format!("rate({body}): write `{n} {want}` (AWS refuses `{n} {unit}`)"));
    }
    match n.checked_mul(seconds) {
        // EventBridge's limit is far below this; it only keeps the arithmetic in range.
        Some(s) if s <= 100 * 365 * 86_400 => Ok(Duration::from_secs(s)),
        _ => err(format!("rate({body}) is too long")),
    }
}

/// An expression with the time zone its wall-clock fields are read in.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub expression: Expression,
    zone: jiff::tz::TimeZone,
}

/// A named IANA time zone (`Europe/Paris`), or UTC.
pub fn time_zone(name: Option<&str>) -> Result<jiff::tz::TimeZone, ScheduleError> {
    match name {
        None => Ok(jiff::tz::TimeZone::UTC),
        Some(name) => jiff::tz::TimeZone::get(name).map_err(|_| {
            ScheduleError(format!(
                "`{name}` is not a time zone name like Europe/Paris or America/New_York"
            ))
        }),
    }
}

impl Schedule {
    /// `text` read in `timezone` (UTC when `None`); `at(…)` only where `allow_at`.
    pub fn parse(text: &str, timezone: Option<&str>, allow_at: bool) -> Result<Schedule, ScheduleError> {
        Ok(Schedule {
            expression: Expression::parse(text, allow_at)?,
            zone: time_zone(timezone)?,
        })
    }

    /// The first time it fires strictly after `after_ms` (Unix milliseconds), or `None` if it
    /// never fires again. A rate counts its periods from `began_ms`.
    pub fn next_after(&self, after_ms: i64, began_ms: i64) -> Option<i64> {
        match &self.expression {
            Expression::Rate(period) => {
                let period = i64::try_from(period.as_millis()).ok()?;
                let periods = if after_ms < began_ms {
                    0
                } else {
                    (after_ms - began_ms) / period + 1
                };
                Some(began_ms + periods * period)
            }
            Expression::Cron(cron) => {
                let after = jiff::Timestamp::from_millisecond(after_ms).ok()?;
                cron.next_after(after, &self.zone).map(|t| t.as_millisecond())
            }
            Expression::At(when) => {
                let at = self.zone.to_ambiguous_timestamp(*when).compatible().ok()?;
                let ms = at.as_millisecond();
                (ms > after_ms).then_some(ms)
            }
        }
    }

    /// `ms` as an RFC 3339 time in this schedule's zone, for messages.
    pub fn show(&self, ms: i64) -> String {
        match jiff::Timestamp::from_millisecond(ms) {
            Ok(t) => {
                let zoned = t.to_zoned_datetime(self.zone.clone());
                if self.zone == jiff::tz::TimeZone::UTC {
                    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
                } else {
                    zoned.strftime("%Y-%m-%dT%H:%M:%S%:z [%Q]").to_string()
                }
            }
            Err(_) => ms.to_string(),
        }
    }
}

/// `ms` as UTC with second precision, the way EventBridge writes an event's `time`.
pub fn utc_seconds(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms.div_euclid(1000) * 1000) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests;
