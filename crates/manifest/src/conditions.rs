//! CloudFormation `Conditions` in `resources:`: each condition is evaluated once (`Fn::Equals`,
//! `Fn::Not`, `Fn::And`, `Fn::Or`, `Condition`), resources and outputs whose `Condition` is
//! false are dropped, and every `Fn::If` is replaced by the branch its condition picks
//! (`Ref: AWS::NoValue` removing the property), as CloudFormation does before creating
//! anything. Operands are the manifest's values once variables are resolved, or pseudo
//! parameters (`AWS::Region`, …).

use std::collections::HashMap;

use serde_json::Value;
use sylph_model::LOCAL_ACCOUNT_ID;

/// How deep conditions may refer to conditions, and values nest, before it is an error.
const MAX_DEPTH: u32 = 32;

/// Why `resources:` cannot be used.
pub(crate) struct ConditionError {
    /// Where, as a document path (`resources.Conditions.IsProd`).
    pub path: String,
    pub message: String,
}

/// Evaluate `resources.Conditions` and apply them to `Resources` and `Outputs`; the values of
/// the conditions, for `Fn::If` elsewhere (a function's environment).
pub(crate) fn apply(resources: &mut Value, region: &str, stack: &str) -> Result<HashMap<String, bool>, ConditionError> {
    let definitions = resources
        .get("Conditions")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut eval = Evaluator {
        definitions: &definitions,
        values: HashMap::new(),
        region,
        stack,
    };
    for name in definitions.keys() {
        eval.condition(name, 0)?;
    }
    let values = eval.values;
    for section in ["Resources", "Outputs"] {
        let Some(Value::Object(entries)) = resources.get_mut(section) else {
            continue;
        };
        let mut dropped = Vec::new();
        for (id, entry) in entries.iter() {
            if let Some(name) = entry.get("Condition").and_then(Value::as_str) {
                match values.get(name) {
                    Some(true) => {}
                    Some(false) => dropped.push(id.clone()),
                    None => {
                        return Err(ConditionError {
                            path: format!("resources.{section}.{id}.Condition"),
                            message: format!("condition `{name}` is not defined under resources.Conditions"),
                        })
                    }
                }
            }
        }
        for id in dropped {
            entries.remove(&id);
        }
        for (id, entry) in entries.iter_mut() {
            pick_branches(entry, &values, &format!("resources.{section}.{id}"), 0)?;
        }
    }
    Ok(values)
}

struct Evaluator<'a> {
    definitions: &'a serde_json::Map<String, Value>,
    values: HashMap<String, bool>,
    region: &'a str,
    stack: &'a str,
}

impl Evaluator<'_> {
    fn condition(&mut self, name: &str, depth: u32) -> Result<bool, ConditionError> {
        if let Some(v) = self.values.get(name) {
            return Ok(*v);
        }
        let path = format!("resources.Conditions.{name}");
        let Some(expr) = self.definitions.get(name) else {
            return Err(ConditionError {
                path,
                message: format!("condition `{name}` is not defined"),
            });
        };
        if depth > MAX_DEPTH {
            return Err(ConditionError {
                path,
                message: "conditions refer to each other in a loop (or nest too deeply)".into(),
            });
        }
        let value = self.boolean(expr, &path, depth + 1)?;
        self.values.insert(name.to_owned(), value);
        Ok(value)
    }

    fn boolean(&mut self, expr: &Value, path: &str, depth: u32) -> Result<bool, ConditionError> {
        let fail = |message: String| ConditionError {
            path: path.to_owned(),
            message,
        };
        let Some((func, arg)) = expr.as_object().filter(|m| m.len() == 1).and_then(|m| m.iter().next()) else {
            return Err(fail(
                "expected a condition function (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition)".into(),
            ));
        };
        let list = || arg.as_array().cloned().unwrap_or_default();
        match func.as_str() {
            "Fn::Equals" => match list().as_slice() {
                [a, b] => Ok(self.scalar(a, path)? == self.scalar(b, path)?),
                _ => Err(fail("Fn::Equals takes a list of two values".into())),
            },
            "Fn::Not" => match list().as_slice() {
                [inner] => Ok(!self.boolean(inner, path, depth + 1)?),
                _ => Err(fail("Fn::Not takes a list of one condition".into())),
            },
            "Fn::And" | "Fn::Or" => {
                let items = list();
                if !(2..=10).contains(&items.len()) {
                    return Err(fail(format!("{func} takes 2 to 10 conditions")));
                }
                let mut results = Vec::with_capacity(items.len());
                for item in &items {
                    results.push(self.boolean(item, path, depth + 1)?);
                }
                Ok(if func == "Fn::And" {
                    results.iter().all(|b| *b)
                } else {
                    results.iter().any(|b| *b)
                })
            }
            "Condition" => match arg.as_str() {
                Some(name) => self.condition(name, depth + 1),
                None => Err(fail("`Condition` names a condition".into())),
            },
            other => Err(fail(format!("`{other}` is not a condition function"))),
        }
    }

    /// An operand of `Fn::Equals`: a plain value, or a pseudo parameter.
    fn scalar(&self, v: &Value, path: &str) -> Result<String, ConditionError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Object(m) if m.len() == 1 && m.contains_key("Ref") => match m["Ref"].as_str() {
                Some("AWS::Region") => Ok(self.region.to_owned()),
                Some("AWS::AccountId") => Ok(LOCAL_ACCOUNT_ID.to_owned()),
                Some("AWS::StackName") => Ok(self.stack.to_owned()),
                Some("AWS::Partition") => Ok("aws".to_owned()),
                other => Err(ConditionError {
                    path: path.to_owned(),
                    message: format!(
                        "Fn::Equals compares values known before deploying; `Ref: {}` is not one",
                        other.unwrap_or("?")
                    ),
                }),
            },
            other => Err(ConditionError {
                path: path.to_owned(),
                message: format!("Fn::Equals cannot compare {other}"),
            }),
        }
    }
}

/// Replace every `Fn::If` under `value` with the branch its condition picks.
fn pick_branches(
    value: &mut Value,
    conditions: &HashMap<String, bool>,
    path: &str,
    depth: u32,
) -> Result<(), ConditionError> {
    if depth > MAX_DEPTH * 4 {
        return Ok(());
    }
    if let Some(chosen) = chosen_branch(value, conditions, path)? {
        *value = chosen;
        return pick_branches(value, conditions, path, depth + 1);
    }
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_path = format!("{path}.{key}");
                if let Some(child) = map.get_mut(&key) {
                    pick_branches(child, conditions, &child_path, depth + 1)?;
                    if is_no_value(child) {
                        map.remove(&key);
                    }
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                pick_branches(item, conditions, &format!("{path}[{i}]"), depth + 1)?;
            }
            items.retain(|i| !is_no_value(i));
        }
        _ => {}
    }
    Ok(())
}

/// The branch of an `Fn::If` (`None` if `value` is not one).
pub(crate) fn chosen_branch(
    value: &Value,
    conditions: &HashMap<String, bool>,
    path: &str,
) -> Result<Option<Value>, ConditionError> {
    let Some(args) = value.as_object().filter(|m| m.len() == 1).and_then(|m| m.get("Fn::If")) else {
        return Ok(None);
    };
    let fail = |message: String| ConditionError {
        path: path.to_owned(),
        message,
    };
    let [name, then, otherwise] = args.as_array().map(Vec::as_slice).unwrap_or_default() else {
        return Err(fail("Fn::If takes [condition, value if true, value if false]".into()));
    };
    let name = name
        .as_str()
        .ok_or_else(|| fail("Fn::If names its condition first".into()))?;
    match conditions.get(name) {
        Some(true) => Ok(Some(then.clone())),
        Some(false) => Ok(Some(otherwise.clone())),
        None => Err(fail(format!(
            "condition `{name}` is not defined under resources.Conditions"
        ))),
    }
}

fn is_no_value(v: &Value) -> bool {
    v.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue") && v.as_object().is_some_and(|m| m.len() == 1)
}
