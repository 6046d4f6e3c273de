//! The JSON events carry: what a schedule's tick delivers, and the record a destination gets.

use serde_json::{json, Value};
use sylph_model::{ScheduleEvent, ScheduleInput, LOCAL_ACCOUNT_ID};
use sylph_schedule::json_path::{fill_template, JsonPath};

/// What `schedule` delivers for the tick at `tick_ms`: EventBridge's `Scheduled Event` (or
/// `{}` from the scheduler), or what `input`, `inputPath` or `inputTransformer` make of it.
pub fn scheduled_event(schedule: &ScheduleEvent, region: &str, tick_ms: i64) -> String {
    let event = if schedule.scheduler {
        json!({})
    } else {
        json!({
            "version": "0",
            "id": sylph_telemetry::new_request_id(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": LOCAL_ACCOUNT_ID,
            "time": sylph_schedule::utc_seconds(tick_ms),
            "region": region,
            "resources": [format!("arn:aws:events:{region}:{LOCAL_ACCOUNT_ID}:rule/{}", schedule.name)],
            "detail": {}
        })
    };
    match &schedule.input {
        ScheduleInput::Event => event.to_string(),
        ScheduleInput::Constant(value) => value.to_string(),
        ScheduleInput::Path(path) => match JsonPath::parse(path) {
            Ok(p) => p.find(&event).cloned().unwrap_or(Value::Null).to_string(),
            Err(_) => "null".to_owned(),
        },
        ScheduleInput::Transformer { paths, template } => fill_template(template, |name| {
            let path = JsonPath::parse(paths.get(name)?).ok()?;
            path.find(&event).cloned()
        }),
    }
}

/// Why a destination record was sent (Lambda's `requestContext.condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Success => "Success",
            Condition::RetriesExhausted => "RetriesExhausted",
            Condition::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

/// What the last run answered, for a destination record.
pub struct LastRun<'a> {
    pub request_id: &'a str,
    /// The function's result, or Lambda's error payload.
    pub response: &'a [u8],
    pub failed: bool,
}

/// The record an `onSuccess` / `onFailure` destination receives, shaped as Lambda's.
pub fn destination_record(
    function_arn: &str,
    version: Option<u32>,
    condition: Condition,
    invocations: u32,
    request_payload: &str,
    last: Option<LastRun<'_>>,
) -> String {
    // Either side may not be JSON (a function may answer anything): then it goes as a string.
    let as_json = |bytes: &[u8]| {
        serde_json::from_slice::<Value>(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
    };
    let executed = version.map_or_else(|| "$LATEST".to_owned(), |v| v.to_string());
    let mut record = json!({
        "version": "1.0",
        "timestamp": sylph_telemetry::UtcTime::now().iso8601(),
        "requestContext": {
            "requestId": last.as_ref().map_or("", |l| l.request_id),
            "functionArn": format!("{function_arn}:{executed}"),
            "condition": condition.as_str(),
            "approximateInvokeCount": invocations,
        },
        "requestPayload": as_json(request_payload.as_bytes()),
    });
    if let Some(last) = last {
        let mut context = json!({"statusCode": 200, "executedVersion": executed});
        if last.failed {
            context["functionError"] = json!("Unhandled");
        }
        record["responseContext"] = context;
        record["responsePayload"] = as_json(last.response);
    }
    record.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(input: ScheduleInput, scheduler: bool) -> ScheduleEvent {
        ScheduleEvent {
            expression: "rate(1 minute)".into(),
            name: "svc-dev-f-schedule-1".into(),
            enabled: true,
            scheduler,
            timezone: None,
            input,
        }
    }

    #[test]
    fn a_tick_is_an_eventbridge_scheduled_event() {
        let tick = 1_795_000_000_123;
        let event: Value = serde_json::from_str(&scheduled_event(
            &schedule(ScheduleInput::Event, false),
            "eu-west-1",
            tick,
        ))
        .unwrap();
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(event["source"], "aws.events");
        assert_eq!(event["time"], sylph_schedule::utc_seconds(tick));
        assert_eq!(
            event["resources"][0],
            "arn:aws:events:eu-west-1:000000000000:rule/svc-dev-f-schedule-1"
        );
        assert_eq!(event["detail"], json!({}));
        assert_eq!(event["id"].as_str().unwrap().len(), 36);
        let path = scheduled_event(
            &schedule(ScheduleInput::Path("$.region".into()), false),
            "eu-west-1",
            tick,
        );
        assert_eq!(path, "\"eu-west-1\"");
        let transformed = scheduled_event(
            &schedule(
                ScheduleInput::Transformer {
                    paths: [("when".to_owned(), "$.time".to_owned())].into(),
                    template: r#"{"at": <when>}"#.into(),
                },
                false,
            ),
            "eu-west-1",
            tick,
        );
        assert_eq!(
            transformed,
            format!(r#"{{"at": "{}"}}"#, sylph_schedule::utc_seconds(tick))
        );
        assert_eq!(
            scheduled_event(&schedule(ScheduleInput::Event, true), "eu-west-1", tick),
            "{}"
        );
    }

    #[test]
    fn a_failure_record_carries_the_error() {
        let record = destination_record(
            "arn:aws:lambda:us-east-1:000000000000:function:svc-dev-f",
            None,
            Condition::RetriesExhausted,
            3,
            r#"{"order": 7}"#,
            Some(LastRun {
                request_id: "r-1",
                response: br#"{"errorType":"Error","errorMessage":"boom"}"#,
                failed: true,
            }),
        );
        let record: Value = serde_json::from_str(&record).unwrap();
        assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
        assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(
            record["requestContext"]["functionArn"],
            "arn:aws:lambda:us-east-1:000000000000:function:svc-dev-f:$LATEST"
        );
        assert_eq!(record["requestPayload"]["order"], 7);
        assert_eq!(record["responseContext"]["functionError"], "Unhandled");
        assert_eq!(record["responsePayload"]["errorMessage"], "boom");
    }
}
