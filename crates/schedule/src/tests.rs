use super::*;

fn ms(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn next(expr: &str, zone: Option<&str>, after: &str) -> String {
    let s = Schedule::parse(expr, zone, true).unwrap();
    utc_seconds(s.next_after(ms(after), 0).expect("fires again"))
}

/// The next `n` times after `after`.
fn times(expr: &str, after: &str, n: usize) -> Vec<String> {
    let s = Schedule::parse(expr, None, false).unwrap();
    let mut t = ms(after);
    (0..n)
        .map(|_| {
            t = s.next_after(t, 0).unwrap();
            utc_seconds(t)
        })
        .collect()
}

// The examples in EventBridge's documentation of cron expressions, from Sunday 2026-11-29.
#[test]
fn awss_documented_examples() {
    const SUNDAY: &str = "2026-11-29T11:00:00Z";
    // 10:15 AM (UTC) every day.
    assert_eq!(next("cron(0 10 * * ? *)", None, SUNDAY), "2026-11-30T10:00:00Z");
    // 12:15 PM (UTC) every day.
    assert_eq!(next("cron(15 12 * * ? *)", None, SUNDAY), "2026-11-29T12:15:00Z");
    // 6:00 PM Monday through Friday.
    assert_eq!(next("cron(0 18 ? * MON-FRI *)", None, SUNDAY), "2026-11-30T18:00:00Z");
    // 8:00 AM on the first day of the month.
    assert_eq!(next("cron(0 8 1 * ? *)", None, SUNDAY), "2026-12-01T08:00:00Z");
    // Every 15 minutes.
    assert_eq!(
        times("cron(0/15 * * * ? *)", "2026-11-29T11:07:00Z", 3),
        ["2026-11-29T11:15:00Z", "2026-11-29T11:30:00Z", "2026-11-29T11:45:00Z"]
    );
    // Every 10 minutes Monday through Friday: Friday night runs on to Monday.
    assert_eq!(
        times("cron(0/10 * ? * MON-FRI *)", "2026-11-27T23:45:00Z", 2),
        ["2026-11-27T23:50:00Z", "2026-11-30T00:00:00Z"]
    );
    // Every 5 minutes Monday through Friday between 8:00 AM and 5:55 PM.
    assert_eq!(
        times("cron(0/5 8-17 ? * MON-FRI *)", "2026-11-30T17:50:00Z", 2),
        ["2026-11-30T17:55:00Z", "2026-12-01T08:00:00Z"]
    );
    // 9:00 AM on the first Monday of each month.
    assert_eq!(next("cron(0 9 ? * 2#1 *)", None, SUNDAY), "2026-12-07T09:00:00Z");
}

#[test]
fn last_nearest_and_nth_days() {
    // L: the last day of February.
    assert_eq!(
        next("cron(0 0 L * ? *)", None, "2027-02-01T00:00:00Z"),
        "2027-02-28T00:00:00Z"
    );
    // LW: 31 January 2027 is a Sunday, so the last weekday is Friday the 29th.
    assert_eq!(
        next("cron(0 12 LW * ? *)", None, "2027-01-01T00:00:00Z"),
        "2027-01-29T12:00:00Z"
    );
    // 1W: 1 May 2027 is a Saturday; the nearest weekday in May is Monday the 3rd.
    assert_eq!(
        next("cron(0 0 1W * ? *)", None, "2027-04-15T00:00:00Z"),
        "2027-05-03T00:00:00Z"
    );
    // 5L: the last Thursday; November's (the 26th) has passed, December's is the 31st.
    assert_eq!(
        next("cron(0 0 ? * 5L *)", None, "2026-11-29T00:00:00Z"),
        "2026-12-31T00:00:00Z"
    );
    // Lists, names, wrapping ranges and a year.
    assert_eq!(
        next("cron(30 6 ? * SAT-SUN 2027)", None, "2026-11-29T00:00:00Z"),
        "2027-01-02T06:30:00Z"
    );
    assert_eq!(
        next("cron(0 0 1,15 JAN,jul ? *)", None, "2027-01-02T00:00:00Z"),
        "2027-01-15T00:00:00Z"
    );
    // A year that has passed never fires.
    assert_eq!(
        Schedule::parse("cron(0 0 * * ? 2020)", None, false)
            .unwrap()
            .next_after(ms("2026-01-01T00:00:00Z"), 0),
        None
    );
}

#[test]
fn time_zones_and_daylight_saving() {
    // 9:00 in New York is 14:00 UTC in winter.
    assert_eq!(
        next("cron(0 9 * * ? *)", Some("America/New_York"), "2026-11-29T11:00:00Z"),
        "2026-11-29T14:00:00Z"
    );
    // 02:30 does not exist on 14 March 2027 there: it fires at 03:30 EDT (07:30 UTC).
    assert_eq!(
        next("cron(30 2 * * ? *)", Some("America/New_York"), "2027-03-14T05:00:00Z"),
        "2027-03-14T07:30:00Z"
    );
    let err = Schedule::parse("rate(1 hour)", Some("Mars/Olympus"), false).unwrap_err();
    assert!(err.0.contains("Mars/Olympus"), "{err}");
}

#[test]
fn rates_count_from_their_start_and_at_fires_once() {
    let five = Schedule::parse("rate(5 minutes)", None, false).unwrap();
    let began = ms("2026-11-29T11:00:00Z");
    assert_eq!(five.next_after(began, began), Some(began + 300_000));
    assert_eq!(five.next_after(began + 299_999, began), Some(began + 300_000));
    assert_eq!(five.next_after(began + 300_000, began), Some(began + 600_000));
    assert_eq!(
        Schedule::parse("rate(1 day)", None, false).unwrap().expression,
        Expression::Rate(Duration::from_secs(86_400))
    );
    let once = Schedule::parse("at(2027-01-31T09:30:00)", Some("Europe/Paris"), true).unwrap();
    assert_eq!(utc_seconds(once.next_after(began, 0).unwrap()), "2027-01-31T08:30:00Z");
    assert_eq!(once.next_after(ms("2027-02-01T00:00:00Z"), 0), None);
}

#[test]
fn mistakes_are_named() {
    let refused = |expr: &str, needle: &str| {
        let e = Schedule::parse(expr, None, false).unwrap_err();
        assert!(e.0.contains(needle), "{expr}: {e}");
    };
    refused("rate(1 minutes)", "write `1 minute`");
    refused("rate(5 minute)", "write `5 minutes`");
    refused("rate(0 minutes)", "above 0");
    refused("rate(5 weeks)", "not a unit");
    refused("cron(0 12 * * *)", "has 5 fields");
    refused("cron(0 12 * * MON *)", "both set");
    refused("cron(0 12 ? * ? *)", "only one");
    refused("cron(61 12 * * ? *)", "`61` in the minutes field is not 0-59");
    refused("cron(0 12 ? * FUNDAY *)", "SUN-SAT");
    refused("cron(0 12 ? * 2#6 *)", "week number");
    refused("at(2027-01-31T09:30:00)", "method: scheduler");
    refused("every day", "not a schedule expression");
}
