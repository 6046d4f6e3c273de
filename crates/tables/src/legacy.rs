//! The legacy (pre-expression) parameters, translated into the expression AST: Expected,
//! KeyConditions, QueryFilter, ScanFilter (with ConditionalOperator), AttributeUpdates and
//! AttributesToGet.

use serde_json::{Map, Value as Json};

use crate::error::DbError;
use crate::expr::{Comparator, Condition, Operand, Path, PathElem, SetValue, UpdateAction};
use crate::value::Value;

fn path(name: &str) -> Path {
    vec![PathElem::Name(name.to_owned())]
}

fn values(spec: &Json) -> Result<Vec<Value>, DbError> {
    spec.get("AttributeValueList")
        .and_then(Json::as_array)
        .map(|a| a.iter().map(Value::from_json).collect())
        .unwrap_or_else(|| Ok(Vec::new()))
}

fn comparison(name: &str, op: &str, vals: Vec<Value>) -> Result<Condition, DbError> {
    let p = || Operand::Path(path(name));
    let want = |n: usize| -> Result<(), DbError> {
        if vals.len() == n {
            Ok(())
        } else {
            Err(DbError::validation(format!(
                "One or more parameter values were invalid: Invalid number of argument(s) for the {op} ComparisonOperator"
            )))
        }
    };
    let v = |i: usize| Operand::Value(vals[i].clone());
    let cmp = |c: Comparator| -> Result<Condition, DbError> {
        want(1)?;
        Ok(Condition::Compare(p(), c, v(0)))
    };
    Ok(match op {
        "EQ" => cmp(Comparator::Eq)?,
        "NE" => cmp(Comparator::Ne)?,
        "LT" => cmp(Comparator::Lt)?,
        "LE" => cmp(Comparator::Le)?,
        "GT" => cmp(Comparator::Gt)?,
        "GE" => cmp(Comparator::Ge)?,
        "NOT_NULL" => {
            want(0)?;
            Condition::AttributeExists(path(name))
        }
        "NULL" => {
            want(0)?;
            Condition::AttributeNotExists(path(name))
        }
        "CONTAINS" => {
            want(1)?;
            Condition::Contains(p(), v(0))
        }
        "NOT_CONTAINS" => {
            want(1)?;
            Condition::Not(Box::new(Condition::Contains(p(), v(0))))
        }
        "BEGINS_WITH" => {
            want(1)?;
            Condition::BeginsWith(p(), v(0))
        }
        "BETWEEN" => {
            want(2)?;
            Condition::Between(p(), v(0), v(1))
        }
        "IN" => {
            if vals.is_empty() {
                return Err(DbError::validation("One or more parameter values were invalid: Invalid number of argument(s) for the IN ComparisonOperator"));
            }
            Condition::In(p(), vals.into_iter().map(Operand::Value).collect())
        }
        other => return Err(DbError::validation(format!("Unknown ComparisonOperator: {other}"))),
    })
}

fn join(conds: Vec<Condition>, operator: Option<&str>) -> Option<Condition> {
    let or = operator == Some("OR");
    conds.into_iter().reduce(|a, b| {
        if or {
            Condition::Or(Box::new(a), Box::new(b))
        } else {
            Condition::And(Box::new(a), Box::new(b))
        }
    })
}

/// `Expected` of PutItem / UpdateItem / DeleteItem.
pub fn expected(map: &Map<String, Json>, operator: Option<&str>) -> Result<Option<Condition>, DbError> {
    let mut conds = Vec::with_capacity(map.len());
    for (name, spec) in map {
        let exists = spec.get("Exists").and_then(Json::as_bool);
        let value = spec.get("Value").map(Value::from_json).transpose()?;
        let cond = match (spec.get("ComparisonOperator").and_then(Json::as_str), exists, value) {
            (Some(op), _, _) => comparison(name, op, values(spec)?)?,
            (None, Some(false), None) => Condition::AttributeNotExists(path(name)),
            (None, Some(false), Some(_)) => {
                return Err(DbError::validation(format!(
                    "One or more parameter values were invalid: Value cannot be used when Exists is false for Attribute: {name}"
                )))
            }
            (None, _, Some(v)) => Condition::Compare(Operand::Path(path(name)), Comparator::Eq, Operand::Value(v)),
            (None, _, None) => {
                return Err(DbError::validation(format!(
                    "One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: {name}"
                )))
            }
        };
        conds.push(cond);
    }
    Ok(join(conds, operator))
}

/// `KeyConditions`, `QueryFilter` and `ScanFilter`.
pub fn conditions(map: &Map<String, Json>, operator: Option<&str>) -> Result<Option<Condition>, DbError> {
    let mut conds = Vec::with_capacity(map.len());
    for (name, spec) in map {
        let op = spec.get("ComparisonOperator").and_then(Json::as_str).unwrap_or("");
        conds.push(comparison(name, op, values(spec)?)?);
    }
    Ok(join(conds, operator))
}

/// `AttributeUpdates` of UpdateItem.
pub fn attribute_updates(map: &Map<String, Json>) -> Result<Vec<UpdateAction>, DbError> {
    let mut actions = Vec::with_capacity(map.len());
    for (name, spec) in map {
        let value = spec.get("Value").map(Value::from_json).transpose()?;
        let action = match (spec.get("Action").and_then(Json::as_str).unwrap_or("PUT"), value) {
            ("PUT", Some(v)) => UpdateAction::Set(path(name), SetValue::Operand(Operand::Value(v))),
            ("DELETE", None) => UpdateAction::Remove(path(name)),
            ("DELETE", Some(v)) => {
                if !matches!(v, Value::SS(_) | Value::NS(_) | Value::BS(_)) {
                    return Err(DbError::validation(format!(
                        "One or more parameter values were invalid: DELETE action with value is not supported for the type {}",
                        v.type_name()
                    )));
                }
                UpdateAction::Delete(path(name), Operand::Value(v))
            }
            ("ADD", Some(v)) => {
                // Unlike the ADD of update expressions, the legacy one also appends to lists.
                if !matches!(v, Value::N(_) | Value::SS(_) | Value::NS(_) | Value::BS(_) | Value::L(_)) {
                    return Err(DbError::validation(format!(
                        "One or more parameter values were invalid: ADD action is not supported for the type {}",
                        v.type_name()
                    )));
                }
                UpdateAction::Add(path(name), Operand::Value(v))
            }
            (_, None) => {
                return Err(DbError::validation(
                    "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified",
                ))
            }
            (other, _) => return Err(DbError::validation(format!("Unknown AttributeAction: {other}"))),
        };
        actions.push(action);
    }
    Ok(actions)
}

/// AttributesToGet: at least one name, none twice.
pub fn attributes_to_get(list: &[Json]) -> Result<Vec<Path>, DbError> {
    if list.is_empty() {
        return Err(DbError::validation(
            "1 validation error detected: Value '[]' at 'attributesToGet' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    let mut names: Vec<&str> = Vec::with_capacity(list.len());
    for v in list {
        let name = v
            .as_str()
            .ok_or_else(|| DbError::serialization("AttributesToGet must be a list of strings"))?;
        if names.contains(&name) {
            return Err(DbError::validation(format!(
                "One or more parameter values were invalid: Duplicate value in attribute name: {name}"
            )));
        }
        names.push(name);
    }
    Ok(names.into_iter().map(path).collect())
}
