//! Request parameters shared by several operations, each parsed and checked in one place:
//! expression substitutions, conditions, projections, enums, Limit, ReturnConsumedCapacity.
//! Each operation's own request type (in `items`, `query`, `batch`) is built from these.

use serde_json::{json, Value as Json};

use crate::error::DbError;
use crate::expr::{self, Condition, ExprKind, Path, Substitutions};
use crate::legacy;

pub(crate) fn str_param<'a>(req: &'a Json, name: &str) -> Option<&'a str> {
    req.get(name).and_then(Json::as_str)
}

fn present(req: &Json, name: &str) -> bool {
    req.get(name).is_some_and(|v| !v.is_null())
}

/// ExpressionAttributeNames/Values without any expression are an error in DynamoDB. For the
/// values, its message names the missing expressions (a projection only when it is the only
/// one the operation takes), as in `UpdateExpression and ConditionExpression are null`.
pub(crate) fn check_substitutions_need_expressions(req: &Json, expressions: &[&str]) -> Result<(), DbError> {
    if expressions.iter().any(|e| present(req, e)) {
        return Ok(());
    }
    if present(req, "ExpressionAttributeNames") {
        return Err(DbError::validation(
            "ExpressionAttributeNames can only be specified when using expressions",
        ));
    }
    if present(req, "ExpressionAttributeValues") {
        let mut named: Vec<&str> = expressions
            .iter()
            .copied()
            .filter(|e| *e != "ProjectionExpression")
            .collect();
        if named.is_empty() {
            named = expressions.to_vec();
        }
        let verb = if named.len() == 1 { "is" } else { "are" };
        return Err(DbError::validation(format!(
            "ExpressionAttributeValues can only be specified when using expressions: {} {verb} null",
            named.join(" and ")
        )));
    }
    Ok(())
}

/// Reject a mix of legacy and expression parameters.
pub(crate) fn check_no_mix(req: &Json, legacy_params: &[&str], expr_params: &[&str]) -> Result<(), DbError> {
    let named = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter(|n| present(req, n))
            .map(|n| n.to_string())
            .collect()
    };
    let (l, e) = (named(legacy_params), named(expr_params));
    if !l.is_empty() && !e.is_empty() {
        return Err(DbError::validation(format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
            l.join(", "),
            e.join(", ")
        )));
    }
    Ok(())
}

/// The condition of a write: ConditionExpression or legacy Expected.
pub(crate) fn write_condition(req: &Json, subs: &Substitutions<'_>) -> Result<Option<Condition>, DbError> {
    check_no_mix(
        req,
        &["Expected", "AttributeUpdates"],
        &["ConditionExpression", "UpdateExpression"],
    )?;
    if let Some(text) = str_param(req, "ConditionExpression") {
        return Ok(Some(expr::parse_condition(text, ExprKind::Condition, subs)?));
    }
    match req.get("Expected").and_then(Json::as_object) {
        Some(m) => legacy::expected(m, str_param(req, "ConditionalOperator")),
        None => Ok(None),
    }
}

/// ProjectionExpression or legacy AttributesToGet.
pub(crate) fn projection(req: &Json, subs: &Substitutions<'_>) -> Result<Option<Vec<Path>>, DbError> {
    check_no_mix(req, &["AttributesToGet"], &["ProjectionExpression"])?;
    if let Some(text) = str_param(req, "ProjectionExpression") {
        return Ok(Some(expr::parse_projection(text, subs)?));
    }
    match req.get("AttributesToGet") {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Array(a)) => legacy::attributes_to_get(a).map(Some),
        Some(_) => Err(DbError::serialization("AttributesToGet must be a list")),
    }
}

/// An enum parameter, `default` when absent.
pub(crate) fn enum_param<'a>(
    req: &'a Json,
    name: &str,
    allowed: &[&'a str],
    default: &'a str,
) -> Result<&'a str, DbError> {
    let v = str_param(req, name).unwrap_or(default);
    if allowed.contains(&v) {
        Ok(v)
    } else {
        Err(DbError::validation(format!(
            "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            name[..1].to_ascii_lowercase() + &name[1..],
            allowed.join(", ")
        )))
    }
}

/// `ReturnValuesOnConditionCheckFailure`: whether a failed condition returns the item.
pub(crate) fn old_on_fail(req: &Json) -> Result<bool, DbError> {
    Ok(enum_param(req, "ReturnValuesOnConditionCheckFailure", &["NONE", "ALL_OLD"], "NONE")? == "ALL_OLD")
}

/// Whether the answer reports consumed capacity (`ReturnConsumedCapacity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Capacity(bool);

impl Capacity {
    pub fn of(req: &Json) -> Result<Capacity, DbError> {
        let v = enum_param(req, "ReturnConsumedCapacity", &["INDEXES", "TOTAL", "NONE"], "NONE")?;
        Ok(Capacity(v != "NONE"))
    }

    /// Whether the answer reports it.
    pub fn wanted(self) -> bool {
        self.0
    }

    /// The `ConsumedCapacity` field, when asked for.
    pub fn report(self, table: &str, units: f64) -> Option<Json> {
        self.0.then(|| json!({"TableName": table, "CapacityUnits": units}))
    }
}

/// Query and Scan's `Limit`: 1 or more.
pub(crate) fn limit(req: &Json) -> Result<Option<usize>, DbError> {
    match req.get("Limit") {
        None | Some(Json::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 1 => Ok(Some(n as usize)),
            _ => Err(DbError::validation(format!(
                "1 validation error detected: Value '{v}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
            ))),
        },
    }
}
