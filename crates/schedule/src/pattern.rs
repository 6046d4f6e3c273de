//! EventBridge event patterns, as Lambda's event filtering (`filterPatterns`) applies them:
//! an object of fields, each either a nested pattern or a list of matchers, any of which may
//! match — literal values, `prefix`, `suffix`, `equals-ignore-case`, `anything-but`,
//! `numeric` ranges and `exists`. A field whose value is a list matches when any element does.

use serde_json::Value;

use crate::{err, ScheduleError};

/// A checked pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern(Value);

impl Pattern {
    pub fn parse(value: &Value) -> Result<Pattern, ScheduleError> {
        check(value, "", 0)?;
        Ok(Pattern(value.clone()))
    }

    pub fn matches(&self, event: &Value) -> bool {
        object_matches(&self.0, Some(event))
    }
}

fn check(pattern: &Value, at: &str, depth: usize) -> Result<(), ScheduleError> {
    if depth > 32 {
        return err("the pattern is nested too deeply");
    }
    let Value::Object(fields) = pattern else {
        return err(format!("a pattern{} must be an object of fields", place(at)));
    };
    for (key, v) in fields {
        let here = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        match v {
            Value::Object(_) => check(v, &here, depth + 1)?,
            Value::Array(matchers) => {
                for m in matchers {
                    check_matcher(m, &here)?;
                }
            }
            _ => {
                return err(format!(
                    "`{here}` must be a list of values or matchers, like [\"a\"] or [{{\"prefix\": \"a\"}}]"
                ))
            }
        }
    }
    Ok(())
}

fn place(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!(" at `{at}`")
    }
}

fn check_matcher(m: &Value, at: &str) -> Result<(), ScheduleError> {
    let Value::Object(map) = m else { return Ok(()) };
    let [(kind, arg)] = map.iter().collect::<Vec<_>>()[..] else {
        return err(format!(
            "a matcher in `{at}` must have exactly one key, like {{\"prefix\": \"a\"}}"
        ));
    };
    let ok = match kind.as_str() {
        "prefix" | "suffix" | "equals-ignore-case" => arg.is_string(),
        "exists" => arg.is_boolean(),
        "anything-but" => match arg {
            Value::Object(inner) => inner.len() == 1 && inner.get("prefix").is_some_and(Value::is_string),
            Value::Array(values) => values.iter().all(|v| v.is_string() || v.is_number()),
            v => v.is_string() || v.is_number(),
        },
        "numeric" => numeric_ranges(arg).is_some(),
        _ => {
            return err(format!(
                "`{kind}` in `{at}` is not a matcher Sylph knows: use prefix, suffix, equals-ignore-case, anything-but, numeric or exists"
            ))
        }
    };
    if ok {
        Ok(())
    } else {
        err(format!(
            "the `{kind}` matcher in `{at}` has a value it does not take: {arg}"
        ))
    }
}

/// `[">", 0, "<=", 5]` as (operator, bound) pairs.
fn numeric_ranges(arg: &Value) -> Option<Vec<(&str, f64)>> {
    let items = arg.as_array()?;
    if items.is_empty() || items.len() % 2 != 0 {
        return None;
    }
    items
        .chunks(2)
        .map(|pair| {
            let op = pair[0]
                .as_str()
                .filter(|op| matches!(*op, "=" | "<" | "<=" | ">" | ">="))?;
            Some((op, pair[1].as_f64()?))
        })
        .collect()
}

fn object_matches(pattern: &Value, event: Option<&Value>) -> bool {
    let Value::Object(fields) = pattern else { return false };
    fields.iter().all(|(key, p)| {
        let value = event.and_then(|e| e.get(key));
        match p {
            Value::Object(_) => object_matches(p, value),
            Value::Array(matchers) => matchers.iter().any(|m| matcher_matches(m, value)),
            _ => false,
        }
    })
}

fn matcher_matches(m: &Value, value: Option<&Value>) -> bool {
    if let Value::Object(map) = m {
        if let Some(exists) = map.get("exists").and_then(Value::as_bool) {
            return value.is_some() == exists;
        }
    }
    match value {
        None => false,
        // A list matches when any element does.
        Some(Value::Array(items)) => items.iter().any(|v| one_matches(m, v)),
        Some(v) => one_matches(m, v),
    }
}

fn one_matches(m: &Value, v: &Value) -> bool {
    match m {
        Value::Object(map) => {
            let Some((kind, arg)) = map.iter().next() else {
                return false;
            };
            match kind.as_str() {
                "prefix" => matches!((v, arg), (Value::String(s), Value::String(p)) if s.starts_with(p.as_str())),
                "suffix" => matches!((v, arg), (Value::String(s), Value::String(p)) if s.ends_with(p.as_str())),
                "equals-ignore-case" => {
                    matches!((v, arg), (Value::String(s), Value::String(p)) if s.eq_ignore_ascii_case(p))
                }
                "anything-but" => match arg {
                    Value::Object(inner) => match (v, inner.get("prefix")) {
                        (Value::String(s), Some(Value::String(p))) => !s.starts_with(p.as_str()),
                        _ => false,
                    },
                    Value::Array(values) => !values.iter().any(|x| equal(x, v)),
                    x => !equal(x, v),
                },
                "numeric" => match (v.as_f64(), numeric_ranges(arg)) {
                    (Some(n), Some(ranges)) => ranges.iter().all(|(op, bound)| match *op {
                        "=" => n == *bound,
                        "<" => n < *bound,
                        "<=" => n <= *bound,
                        ">" => n > *bound,
                        _ => n >= *bound,
                    }),
                    _ => false,
                },
                _ => false,
            }
        }
        literal => equal(literal, v),
    }
}

/// Literal equality; numbers compare by value (`5` matches `5.0`).
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Pattern {
        Pattern::parse(&v).unwrap()
    }

    #[test]
    fn matchers_behave_as_eventbridge_documents() {
        let order = json!({"body": {"kind": "order", "total": 42, "tags": ["rush", "gift"], "city": "Paris"}});
        assert!(p(json!({"body": {"kind": ["order"]}})).matches(&order));
        assert!(!p(json!({"body": {"kind": ["refund"]}})).matches(&order));
        assert!(p(json!({"body": {"city": [{"prefix": "Par"}]}})).matches(&order));
        assert!(p(json!({"body": {"city": [{"suffix": "ris"}]}})).matches(&order));
        assert!(p(json!({"body": {"city": [{"equals-ignore-case": "PARIS"}]}})).matches(&order));
        assert!(p(json!({"body": {"kind": [{"anything-but": ["refund", "void"]}]}})).matches(&order));
        assert!(!p(json!({"body": {"kind": [{"anything-but": "order"}]}})).matches(&order));
        assert!(!p(json!({"body": {"city": [{"anything-but": {"prefix": "Pa"}}]}})).matches(&order));
        assert!(p(json!({"body": {"total": [{"numeric": [">", 10, "<=", 42]}]}})).matches(&order));
        assert!(!p(json!({"body": {"total": [{"numeric": ["<", 10]}]}})).matches(&order));
        assert!(p(json!({"body": {"total": [42.0]}})).matches(&order));
        assert!(
            p(json!({"body": {"tags": ["gift"]}})).matches(&order),
            "any element of a list"
        );
        assert!(p(json!({"body": {"coupon": [{"exists": false}]}})).matches(&order));
        assert!(!p(json!({"body": {"coupon": [{"exists": true}]}})).matches(&order));
        // Every field must match.
        assert!(!p(json!({"body": {"kind": ["order"], "city": ["Lyon"]}})).matches(&order));
    }

    #[test]
    fn malformed_patterns_are_refused_with_where() {
        for (bad, needle) in [
            (json!(["x"]), "object of fields"),
            (json!({"body": {"kind": "order"}}), "`body.kind` must be a list"),
            (json!({"body": {"n": [{"numeric": [">"]}]}}), "numeric"),
            (json!({"body": {"n": [{"wildcard": "a*"}]}}), "`wildcard` in `body.n`"),
            (
                json!({"body": {"n": [{"prefix": "a", "suffix": "b"}]}}),
                "exactly one key",
            ),
        ] {
            let e = Pattern::parse(&bad).unwrap_err();
            assert!(e.0.contains(needle), "{bad}: {e}");
        }
    }
}
