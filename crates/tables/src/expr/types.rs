//! The operand-type checks DynamoDB makes when it parses an expression: a constant of a type
//! an operator or function cannot take is a ValidationException before any item is read, even
//! when the table is empty (a document path of the wrong type only makes the condition false).
//! Each check returns the message that goes after "Invalid <Expression>: ".

use std::cmp::Ordering;

use super::eval::scalar_order;
use super::{Comparator, Condition, Operand, SetValue};
use crate::number::Number;
use crate::value::Value;

fn operand_type(function: &str, v: &Value) -> String {
    format!(
        "Incorrect operand type for operator or function; operator or function: {function}, operand type: {}",
        v.type_name()
    )
}

fn scalar(v: &Value) -> bool {
    matches!(v, Value::S(_) | Value::N(_) | Value::B(_))
}

/// How DynamoDB shows a constant in a message: `AttributeValue: {S:a}`.
fn shown(v: &Value) -> String {
    let text = match v {
        Value::S(s) => s.clone(),
        Value::N(n) => n.to_string(),
        other => other.to_json().to_string(),
    };
    format!("AttributeValue: {{{}:{text}}}", v.type_name())
}

/// An operator's first operand may not also be one of its others (`a = a`).
fn check_distinct(operator: &str, first: &Operand, rest: &[&Operand]) -> Result<(), String> {
    if let Operand::Path(p) = first {
        if rest.iter().any(|o| matches!(o, Operand::Path(q) if q == p)) {
            return Err(format!(
                "The first operand must be distinct from the remaining operands for this operator or function; operator: {operator}, first operand: {}",
                super::path_display(p)
            ));
        }
    }
    Ok(())
}

/// The constant operands of a condition node have types its operator takes, and its first
/// operand is not repeated.
pub fn check_condition(c: &Condition) -> Result<(), String> {
    match c {
        Condition::Compare(a, cmp, b) => {
            let symbol = match cmp {
                Comparator::Eq => "=",
                Comparator::Ne => "<>",
                Comparator::Lt => "<",
                Comparator::Le => "<=",
                Comparator::Gt => ">",
                Comparator::Ge => ">=",
            };
            check_distinct(symbol, a, &[b])?;
        }
        Condition::Between(x, lo, hi) => check_distinct("BETWEEN", x, &[lo, hi])?,
        Condition::BeginsWith(a, b) => check_distinct("begins_with", a, &[b])?,
        Condition::Contains(a, b) => check_distinct("contains", a, &[b])?,
        _ => {}
    }
    check_types(c)
}

fn check_types(c: &Condition) -> Result<(), String> {
    let constants = |ops: &[&Operand], function: &str, ok: fn(&Value) -> bool| -> Result<(), String> {
        for op in ops {
            if let Operand::Value(v) = op {
                if !ok(v) {
                    return Err(operand_type(function, v));
                }
            }
        }
        Ok(())
    };
    match c {
        Condition::Compare(a, cmp, b) => {
            let symbol = match cmp {
                Comparator::Lt => "<",
                Comparator::Le => "<=",
                Comparator::Gt => ">",
                Comparator::Ge => ">=",
                Comparator::Eq | Comparator::Ne => return Ok(()),
            };
            constants(&[a, b], symbol, scalar)
        }
        Condition::Between(x, lo, hi) => {
            constants(&[x, lo, hi], "BETWEEN", scalar)?;
            if let (Operand::Value(lo), Operand::Value(hi)) = (lo, hi) {
                match scalar_order(lo, hi) {
                    None => {
                        return Err(format!(
                            "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: {}, upper bound operand: {}",
                            shown(lo),
                            shown(hi)
                        ))
                    }
                    Some(Ordering::Greater) => {
                        return Err(format!(
                            "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: {}, upper bound operand: {}",
                            shown(lo),
                            shown(hi)
                        ))
                    }
                    _ => {}
                }
            }
            Ok(())
        }
        Condition::BeginsWith(a, b) => constants(&[a, b], "begins_with", |v| matches!(v, Value::S(_) | Value::B(_))),
        Condition::AttributeType(_, t) => constants(&[t], "attribute_type", |v| matches!(v, Value::S(_))),
        _ => Ok(()),
    }
}

/// `size(x)`: of a path, evaluated per item; of a constant, its size now (or the type error).
pub fn size_operand(arg: Operand) -> Result<Operand, String> {
    let n = match &arg {
        Operand::Path(_) => {
            let Operand::Path(p) = arg else {
                unreachable!("matched above")
            };
            return Ok(Operand::Size(p));
        }
        Operand::Size(_) => {
            return Err(
                "Incorrect operand type for operator or function; operator or function: size, operand type: N".into(),
            )
        }
        Operand::Value(v) => v.function_size().ok_or_else(|| operand_type("size", v))?,
    };
    Ok(Operand::Value(Value::N(
        Number::parse(&n.to_string()).unwrap_or(Number::ZERO),
    )))
}

/// The long type names of ADD and DELETE's messages.
fn long_type_name(v: &Value) -> &'static str {
    match v {
        Value::S(_) => "STRING",
        Value::N(_) => "NUMBER",
        Value::B(_) => "BINARY",
        Value::SS(_) => "STRING_SET",
        Value::NS(_) => "NUMBER_SET",
        Value::BS(_) => "BINARY_SET",
        Value::M(_) => "MAP",
        Value::L(_) => "LIST",
        Value::Null => "NULL",
        Value::Bool(_) => "BOOLEAN",
    }
}

/// ADD takes a number or a set; DELETE a set.
pub fn check_add_delete(action: &str, v: &Operand) -> Result<(), String> {
    let Operand::Value(v) = v else { return Ok(()) };
    let ok = match action {
        "ADD" => matches!(v, Value::N(_) | Value::SS(_) | Value::NS(_) | Value::BS(_)),
        _ => matches!(v, Value::SS(_) | Value::NS(_) | Value::BS(_)),
    };
    if ok {
        return Ok(());
    }
    Err(format!(
        "Incorrect operand type for operator or function; operator: {action}, operand type: {}, typeSet: ALLOWED_FOR_{action}_OPERAND",
        long_type_name(v)
    ))
}

/// `+`, `-` take numbers; list_append takes lists.
pub fn check_set_value(v: &SetValue) -> Result<(), String> {
    let constant = |s: &SetValue| match s {
        SetValue::Operand(Operand::Value(v)) => Some(v.clone()),
        _ => None,
    };
    match v {
        SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
            let symbol = if matches!(v, SetValue::Plus(..)) { "+" } else { "-" };
            for side in [a, b] {
                if let Some(c) = constant(side).filter(|c| !matches!(c, Value::N(_))) {
                    return Err(operand_type(symbol, &c));
                }
            }
            Ok(())
        }
        SetValue::ListAppend(a, b) => {
            for side in [a, b] {
                if let Some(c) = constant(side).filter(|c| !matches!(c, Value::L(_))) {
                    return Err(operand_type("list_append", &c));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
