//! EventBridge's six-field cron: `minutes hours day-of-month month day-of-week year`.
//!
//! Fields take `,` lists, `-` ranges, `*`, and `/` steps; day-of-month also takes `L` (last
//! day), `W` (`15W`: the weekday nearest the 15th; `LW`: the last weekday) and day-of-week
//! `L` (`5L`: the last Thursday), `#` (`2#1`: the first Monday) and names (SUN-SAT, 1 = SUN).
//! One of the two day fields must be `?`: AWS refuses an expression that sets both.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::{err, ScheduleError};

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const FIRST_YEAR: i16 = 1970;
const LAST_YEAR: i16 = 2199;

/// A parsed cron expression. Each set is indexed by the field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    months: Vec<bool>,
    /// Index `year - 1970`.
    years: Vec<bool>,
    days: DayRule,
}

/// Which days of a month match: exactly one of the day fields says it, the other is `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DayRule {
    /// Day-of-month values (index 1..=31); `*` sets them all.
    MonthDays(Vec<bool>),
    /// `L`: the month's last day.
    LastDay,
    /// `LW`: the month's last weekday (Monday to Friday).
    LastWeekday,
    /// `15W`: the weekday nearest the 15th, within the month.
    NearestWeekday(i8),
    /// Day-of-week values (index 1 = Sunday ..= 7 = Saturday).
    WeekDays(Vec<bool>),
    /// `5L`: the last such weekday of the month.
    LastOf(Weekday),
    /// `2#1`: the first Monday.
    Nth(Weekday, i8),
}

impl Cron {
    pub fn parse(body: &str) -> Result<Cron, ScheduleError> {
        let fields: Vec<&str> = body.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = fields[..] else {
            return err(format!(
                "cron({body}) has {} fields; AWS cron has six: minutes hours day-of-month month day-of-week year, as in cron(0 12 * * ? *)",
                fields.len()
            ));
        };
        let days = match (dom, dow) {
            ("?", "?") => return err(format!("cron({body}): only one of day-of-month and day-of-week may be `?`")),
            ("?", dow) => day_of_week(dow)?,
            (dom, "?") => day_of_month(dom)?,
            _ => {
                return err(format!(
                    "cron({body}): day-of-month `{dom}` and day-of-week `{dow}` are both set; AWS needs `?` in one of them, as in cron(0 12 * * ? *) or cron(0 12 ? * MON *)"
                ))
            }
        };
        Ok(Cron {
            minutes: set(minutes, "minutes", 0, 59, &[])?,
            hours: set(hours, "hours", 0, 23, &[])?,
            months: set(month, "month", 1, 12, &MONTHS)?,
            years: set(year, "year", FIRST_YEAR as u32, LAST_YEAR as u32, &[])?.split_off(FIRST_YEAR as usize),
            days,
        })
    }

    /// The first matching minute strictly after `after`, its wall-clock fields read in `zone`.
    /// A wall-clock time that a daylight-saving change skips fires at the same offset after
    /// the change (02:30 becomes 03:30); one that happens twice fires the first time.
    pub fn next_after(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        let start = zone.to_datetime(after);
        let mut date = start.date();
        // The minute after `after`, as a wall-clock time; earlier times that day are passed.
        let mut from = (start.hour(), start.minute() + 1);
        while date.year() <= LAST_YEAR {
            let year_ok = date.year() >= FIRST_YEAR && self.years[(date.year() - FIRST_YEAR) as usize];
            if !year_ok {
                date = Date::new(date.year() + 1, 1, 1).ok()?;
                from = (0, 0);
                continue;
            }
            if !self.months[date.month() as usize] {
                date = date.first_of_month().checked_add(jiff::Span::new().months(1)).ok()?;
                from = (0, 0);
                continue;
            }
            if self.day_matches(date) {
                for hour in (from.0..24).filter(|&h| self.hours[h as usize]) {
                    let first_minute = if hour == from.0 { from.1 } else { 0 };
                    for minute in (first_minute..60).filter(|&m| self.minutes[m as usize]) {
                        let wall = DateTime::new(date.year(), date.month(), date.day(), hour, minute, 0, 0).ok()?;
                        let at = zone.to_ambiguous_timestamp(wall).compatible().ok()?;
                        if at > after {
                            return Some(at);
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
            from = (0, 0);
        }
        None
    }

    fn day_matches(&self, date: Date) -> bool {
        let last = date.last_of_month();
        match &self.days {
            DayRule::MonthDays(days) => days[date.day() as usize],
            DayRule::LastDay => date == last,
            DayRule::LastWeekday => date == weekday_on_or_before(last),
            DayRule::NearestWeekday(day) => {
                let Ok(target) = Date::new(date.year(), date.month(), (*day).min(last.day())) else {
                    return false;
                };
                date == nearest_weekday(target)
            }
            DayRule::WeekDays(days) => days[date.weekday().to_sunday_one_offset() as usize],
            DayRule::LastOf(weekday) => date.weekday() == *weekday && date.day() + 7 > last.day(),
            DayRule::Nth(weekday, n) => date.weekday() == *weekday && (date.day() - 1) / 7 + 1 == *n,
        }
    }
}

fn is_weekend(d: Date) -> bool {
    matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

fn weekday_on_or_before(mut d: Date) -> Date {
    while is_weekend(d) {
        d = d.yesterday().unwrap_or(d);
    }
    d
}

/// The weekday nearest `d` without leaving its month (Quartz's `W`).
fn nearest_weekday(d: Date) -> Date {
    match d.weekday() {
        Weekday::Saturday if d.day() == 1 => d.checked_add(jiff::Span::new().days(2)).unwrap_or(d),
        Weekday::Saturday => d.yesterday().unwrap_or(d),
        Weekday::Sunday if d == d.last_of_month() => d.checked_sub(jiff::Span::new().days(2)).unwrap_or(d),
        Weekday::Sunday => d.tomorrow().unwrap_or(d),
        _ => d,
    }
}

fn day_of_month(field: &str) -> Result<DayRule, ScheduleError> {
    match field {
        "L" => return Ok(DayRule::LastDay),
        "LW" => return Ok(DayRule::LastWeekday),
        _ => {}
    }
    if let Some(day) = field.strip_suffix('W') {
        let n = number(day, "day-of-month", 1, 31, &[])?;
        return Ok(DayRule::NearestWeekday(n as i8));
    }
    Ok(DayRule::MonthDays(set(field, "day-of-month", 1, 31, &[])?))
}

fn day_of_week(field: &str) -> Result<DayRule, ScheduleError> {
    let weekday = |text: &str| -> Result<Weekday, ScheduleError> {
        let n = number(text, "day-of-week", 1, 7, &DAYS)?;
        Ok(Weekday::from_sunday_one_offset(n as i8).expect("1..=7 was checked"))
    };
    if field == "L" {
        return Ok(DayRule::WeekDays(set("7", "day-of-week", 1, 7, &DAYS)?));
    }
    if let Some(day) = field.strip_suffix('L') {
        return Ok(DayRule::LastOf(weekday(day)?));
    }
    if let Some((day, nth)) = field.split_once('#') {
        let n = number(nth, "the week number after #", 1, 5, &[])?;
        return Ok(DayRule::Nth(weekday(day)?, n as i8));
    }
    Ok(DayRule::WeekDays(set(field, "day-of-week", 1, 7, &DAYS)?))
}

/// A field of `,`-separated parts, each `*`, `v`, `a-b`, with an optional `/step`; the set is
/// indexed by value (so it has `max + 1` entries).
fn set(field: &str, name: &str, min: u32, max: u32, names: &[&str]) -> Result<Vec<bool>, ScheduleError> {
    let mut out = vec![false; max as usize + 1];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, number(step, name, 1, max.max(1), &[])?),
            None => (part, 1),
        };
        let (first, last) = match range {
            "*" => (min, max),
            range => match range.split_once('-') {
                Some((a, b)) => (number(a, name, min, max, names)?, number(b, name, min, max, names)?),
                // `5/15` runs from 5 to the end of the field.
                None if step > 1 || part.contains('/') => (number(range, name, min, max, names)?, max),
                None => {
                    let v = number(range, name, min, max, names)?;
                    (v, v)
                }
            },
        };
        // A range may wrap (`FRI-MON`, `22-2`), as in Quartz.
        let span = if last >= first {
            last - first
        } else {
            last + (max - min + 1) - first
        };
        for i in (0..=span).step_by(step as usize) {
            let mut v = first + i;
            if v > max {
                v -= max - min + 1;
            }
            out[v as usize] = true;
        }
    }
    Ok(out)
}

/// One value: a number in `min..=max`, or a name from `names` (which start at `min`).
fn number(text: &str, name: &str, min: u32, max: u32, names: &[&str]) -> Result<u32, ScheduleError> {
    let upper = text.to_ascii_uppercase();
    if let Some(i) = names.iter().position(|n| *n == upper) {
        return Ok(min + i as u32);
    }
    match text.parse::<u32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => {
            let names = if names.is_empty() {
                String::new()
            } else {
                format!(" or {}-{}", names[0], names[names.len() - 1])
            };
            err(format!("`{text}` in the {name} field is not {min}-{max}{names}"))
        }
    }
}
