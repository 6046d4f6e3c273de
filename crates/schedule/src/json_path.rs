//! The JSONPath that EventBridge's `inputPath` and `inputPathsMap` take, in the subset rules
//! use: `$`, `$.detail.name`, `$.resources[0]`, `$['detail-type']`.

use crate::{err, ScheduleError};

/// One step down into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Vec<Step>);

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, ScheduleError> {
        let refuse = || {
            err(format!(
                "`{text}` is not a JSONPath Sylph reads: write $, $.detail.name, $.resources[0] or $['detail-type']"
            ))
        };
        let Some(mut rest) = text.strip_prefix('$') else {
            return refuse();
        };
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                if end == 0 {
                    return refuse();
                }
                steps.push(Step::Key(after[..end].to_owned()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix("['") {
                let Some(end) = after.find("']") else {
                    return refuse();
                };
                steps.push(Step::Key(after[..end].to_owned()));
                rest = &after[end + 2..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let Some(end) = after.find(']') else {
                    return refuse();
                };
                let Ok(i) = after[..end].parse() else {
                    return refuse();
                };
                steps.push(Step::Index(i));
                rest = &after[end + 1..];
            } else {
                return refuse();
            }
        }
        Ok(JsonPath(steps))
    }

    /// The value at this path in `value`, if there is one.
    pub fn find<'a>(&self, value: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        self.0.iter().try_fold(value, |v, step| match step {
            Step::Key(k) => v.get(k),
            Step::Index(i) => v.get(i),
        })
    }
}

/// The longest placeholder name looked for.
const MAX_PLACEHOLDER: usize = 256;

/// Fill an `inputTemplate`: each `<name>` becomes the value picked for `name`. Inside a JSON
/// string a picked string goes in as its text; elsewhere every value goes in as JSON, and one
/// that was not found as `null` (outside a string) or nothing (inside one), as EventBridge does.
pub fn fill_template(template: &str, value_of: impl Fn(&str) -> Option<serde_json::Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            // A placeholder name is short: look for its `>` nearby only, so a template of many
            // `<` costs linear time, not quadratic.
            let limit = rest
                .char_indices()
                .nth(MAX_PLACEHOLDER + 2)
                .map_or(rest.len(), |(i, _)| i);
            let window = &rest[..limit];
            if let Some(end) = window.find('>') {
                let name = &rest[1..end];
                let is_name = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
                if is_name {
                    let found = value_of(name);
                    match (found, in_string) {
                        (Some(serde_json::Value::String(s)), true) => {
                            // Escaped as JSON, without the quotes the template already has.
                            let quoted = serde_json::Value::String(s).to_string();
                            out.push_str(&quoted[1..quoted.len() - 1]);
                        }
                        (Some(v), true) => {
                            let text = v.to_string();
                            let quoted = serde_json::Value::String(text).to_string();
                            out.push_str(&quoted[1..quoted.len() - 1]);
                        }
                        (Some(v), false) => out.push_str(&v.to_string()),
                        (None, true) => {}
                        (None, false) => out.push_str("null"),
                    }
                    rest = &rest[end + 1..];
                    escaped = false;
                    continue;
                }
            }
        }
        match c {
            '\\' if in_string => escaped = !escaped,
            '"' if !escaped => in_string = !in_string,
            _ => escaped = false,
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_pick_what_eventbridge_picks() {
        let event = json!({"detail-type": "Scheduled Event", "resources": ["arn:x"], "detail": {"a": {"b": 1}}});
        let at = |p: &str| JsonPath::parse(p).unwrap().find(&event).cloned();
        assert_eq!(at("$"), Some(event.clone()));
        assert_eq!(at("$.detail.a.b"), Some(json!(1)));
        assert_eq!(at("$.resources[0]"), Some(json!("arn:x")));
        assert_eq!(at("$['detail-type']"), Some(json!("Scheduled Event")));
        assert_eq!(at("$.missing.x"), None);
        for bad in ["detail", "$..x", "$.a[x]", "$['a'", "$x"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_quote_like_eventbridge() {
        let values = |name: &str| match name {
            "time" => Some(json!("2026-11-29T11:00:00Z")),
            "n" => Some(json!(3)),
            "quote" => Some(json!("say \"hi\"")),
            _ => None,
        };
        assert_eq!(
            fill_template(r#"{"at": "<time>", "n": <n>, "t": <time>, "gone": <none>}"#, values),
            r#"{"at": "2026-11-29T11:00:00Z", "n": 3, "t": "2026-11-29T11:00:00Z", "gone": null}"#
        );
        assert_eq!(
            fill_template(r#""<quote> at <time>""#, values),
            r#""say \"hi\" at 2026-11-29T11:00:00Z""#
        );
        // Not a placeholder: left alone.
        assert_eq!(fill_template("a < b > c", values), "a < b > c");
        // Many `<`, and characters of several bytes: linear, and no split character.
        let hostile = "<é".repeat(100_000);
        assert_eq!(fill_template(&hostile, values), hostile);
    }
}
