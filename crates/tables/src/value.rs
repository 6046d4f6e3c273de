//! DynamoDB attribute values and their JSON wire form (`{"S": "x"}`, `{"N": "1"}`, …).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value as Json};

use crate::error::DbError;
use crate::number::Number;

/// An item: attribute name → value.
pub type Item = BTreeMap<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    S(String),
    N(Number),
    B(Vec<u8>),
    /// Sets keep insertion order on the wire; equality ignores order.
    SS(Vec<String>),
    NS(Vec<Number>),
    BS(Vec<Vec<u8>>),
    M(BTreeMap<String, Value>),
    L(Vec<Value>),
    Null,
    Bool(bool),
}

/// Maps and lists nest at most this deep (DynamoDB's limit).
pub const MAX_DEPTH: usize = 32;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::S(_) => "S",
            Value::N(_) => "N",
            Value::B(_) => "B",
            Value::SS(_) => "SS",
            Value::NS(_) => "NS",
            Value::BS(_) => "BS",
            Value::M(_) => "M",
            Value::L(_) => "L",
            Value::Null => "NULL",
            Value::Bool(_) => "BOOL",
        }
    }

    /// Equality as DynamoDB compares: sets regardless of order.
    pub fn same(&self, other: &Value) -> bool {
        fn set_eq<T: PartialEq>(a: &[T], b: &[T]) -> bool {
            a.len() == b.len() && a.iter().all(|x| b.contains(x))
        }
        match (self, other) {
            (Value::SS(a), Value::SS(b)) => set_eq(a, b),
            (Value::NS(a), Value::NS(b)) => set_eq(a, b),
            (Value::BS(a), Value::BS(b)) => set_eq(a, b),
            (Value::L(a), Value::L(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y)),
            (Value::M(a), Value::M(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| v.same(w)))
            }
            _ => self == other,
        }
    }

    /// Parse one `{"T": …}` value.
    pub fn from_json(json: &Json) -> Result<Value, DbError> {
        Value::from_json_depth(json, 0)
    }

    fn from_json_depth(json: &Json, depth: usize) -> Result<Value, DbError> {
        if depth > MAX_DEPTH {
            return Err(DbError::validation("Nesting Levels have exceeded supported limits"));
        }
        let Json::Object(obj) = json else {
            return Err(DbError::serialization(
                "Unexpected value type in payload: an AttributeValue must be an object",
            ));
        };
        let mut set = obj.iter().filter(|(_, v)| !v.is_null());
        let (Some((tag, v)), None) = (set.next(), set.next()) else {
            let n = obj.iter().filter(|(_, v)| !v.is_null()).count();
            return Err(DbError::validation(if n == 0 {
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
            } else {
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
            }));
        };
        let bad = |what: &str| DbError::serialization(format!("Unexpected value type for {what}"));
        let number = |j: &Json| -> Result<Number, DbError> {
            let s = j.as_str().ok_or_else(|| bad("N"))?;
            Number::parse(s).map_err(|e| DbError::validation(e.to_string()))
        };
        let binary = |j: &Json| -> Result<Vec<u8>, DbError> {
            let s = j.as_str().ok_or_else(|| bad("B"))?;
            b64().decode(s).map_err(|_| {
                DbError::serialization(
                    "Base64 encoded length is expected a multiple of 4 bytes but found: invalid binary value",
                )
            })
        };
        let list =
            |j: &Json, what: &str| -> Result<Vec<Json>, DbError> { j.as_array().cloned().ok_or_else(|| bad(what)) };
        Ok(match tag.as_str() {
            "S" => Value::S(v.as_str().ok_or_else(|| bad("S"))?.to_owned()),
            "N" => Value::N(number(v)?),
            "B" => Value::B(binary(v)?),
            "BOOL" => Value::Bool(v.as_bool().ok_or_else(|| bad("BOOL"))?),
            "NULL" => {
                if v.as_bool() != Some(true) {
                    return Err(DbError::validation("One or more parameter values were invalid: Null attribute value types must have the value of true"));
                }
                Value::Null
            }
            "SS" => {
                let items = list(v, "SS")?;
                let mut out: Vec<String> = Vec::with_capacity(items.len());
                for i in &items {
                    out.push(i.as_str().ok_or_else(|| bad("SS"))?.to_owned());
                }
                check_set(&out, "string")?;
                Value::SS(out)
            }
            "NS" => {
                let items = list(v, "NS")?;
                let out = items.iter().map(number).collect::<Result<Vec<_>, _>>()?;
                check_set(&out, "number")?;
                Value::NS(out)
            }
            "BS" => {
                let items = list(v, "BS")?;
                let out = items.iter().map(binary).collect::<Result<Vec<_>, _>>()?;
                check_set(&out, "binary")?;
                Value::BS(out)
            }
            "L" => Value::L(
                list(v, "L")?
                    .iter()
                    .map(|i| Value::from_json_depth(i, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            "M" => {
                let obj = v.as_object().ok_or_else(|| bad("M"))?;
                let mut m = BTreeMap::new();
                for (k, v) in obj {
                    m.insert(k.clone(), Value::from_json_depth(v, depth + 1)?);
                }
                Value::M(m)
            }
            other => {
                return Err(DbError::serialization(format!("Unknown AttributeValue type {other}")));
            }
        })
    }

    pub fn to_json(&self) -> Json {
        let mut o = Map::with_capacity(1);
        let (k, v) = match self {
            Value::S(s) => ("S", Json::String(s.clone())),
            Value::N(n) => ("N", Json::String(n.to_string())),
            Value::B(b) => ("B", Json::String(b64().encode(b))),
            Value::SS(s) => ("SS", Json::Array(s.iter().cloned().map(Json::String).collect())),
            Value::NS(s) => (
                "NS",
                Json::Array(s.iter().map(|n| Json::String(n.to_string())).collect()),
            ),
            Value::BS(s) => (
                "BS",
                Json::Array(s.iter().map(|b| Json::String(b64().encode(b))).collect()),
            ),
            Value::M(m) => (
                "M",
                Json::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            ),
            Value::L(l) => ("L", Json::Array(l.iter().map(Value::to_json).collect())),
            Value::Null => ("NULL", Json::Bool(true)),
            Value::Bool(b) => ("BOOL", Json::Bool(*b)),
        };
        o.insert(k.to_owned(), v);
        Json::Object(o)
    }

    /// What the expression function `size()` answers: a string's characters, a binary's bytes,
    /// a set's, list's or map's elements; `None` for the types it does not take.
    pub fn function_size(&self) -> Option<usize> {
        Some(match self {
            Value::S(s) => s.chars().count(),
            Value::B(b) => b.len(),
            Value::SS(s) => s.len(),
            Value::NS(s) => s.len(),
            Value::BS(s) => s.len(),
            Value::L(l) => l.len(),
            Value::M(m) => m.len(),
            Value::N(_) | Value::Null | Value::Bool(_) => return None,
        })
    }

    /// Bytes this value counts for in DynamoDB's item size.
    pub fn size(&self) -> usize {
        match self {
            Value::S(s) => s.len(),
            Value::N(n) => number_size(n),
            Value::B(b) => b.len(),
            Value::SS(s) => s.iter().map(String::len).sum(),
            Value::NS(s) => s.iter().map(number_size).sum(),
            Value::BS(s) => s.iter().map(Vec::len).sum(),
            Value::M(m) => 3 + m.iter().map(|(k, v)| k.len() + v.size() + 1).sum::<usize>(),
            Value::L(l) => 3 + l.iter().map(|v| v.size() + 1).sum::<usize>(),
            Value::Null | Value::Bool(_) => 1,
        }
    }
}

fn number_size(n: &Number) -> usize {
    let (digits, _) = n.digits_and_adjusted_exponent();
    digits.len().div_ceil(2) + 1
}

fn check_set<T: PartialEq + std::fmt::Debug>(items: &[T], kind: &str) -> Result<(), DbError> {
    if items.is_empty() {
        return Err(DbError::validation(format!(
            "One or more parameter values were invalid: An {kind} set  may not be empty"
        )));
    }
    for (i, a) in items.iter().enumerate() {
        if items[..i].contains(a) {
            return Err(DbError::validation(
                "One or more parameter values were invalid: Input collection contains duplicates",
            ));
        }
    }
    Ok(())
}

/// Parse `{"name": {"S": …}, …}`.
pub fn item_from_json(json: &Json) -> Result<Item, DbError> {
    let obj = json
        .as_object()
        .ok_or_else(|| DbError::serialization("Unexpected value type in payload: expected an item map"))?;
    let mut item = Item::new();
    for (k, v) in obj {
        if k.len() > MAX_NAME_BYTES {
            return Err(DbError::validation(format!(
                "One or more parameter values were invalid: Attribute name is too large, must be less than {} bytes",
                MAX_NAME_BYTES + 1
            )));
        }
        item.insert(k.clone(), Value::from_json(v)?);
    }
    Ok(item)
}

pub fn item_to_json(item: &Item) -> Json {
    Json::Object(item.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// DynamoDB's size of an item: attribute names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

/// The longest attribute name (64 KB less one byte).
pub const MAX_NAME_BYTES: usize = 65535;

/// The 400 KB item limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_every_type() {
        let j = json!({
            "s": {"S": ""}, "n": {"N": "1.50"}, "b": {"B": "AAEC"}, "ss": {"SS": ["a", "b"]},
            "ns": {"NS": ["1", "2"]}, "bs": {"BS": ["AA=="]}, "m": {"M": {"x": {"NULL": true}}},
            "l": {"L": [{"BOOL": false}, {"N": "-3"}]}
        });
        let item = item_from_json(&j).unwrap();
        let back = item_to_json(&item);
        assert_eq!(back["n"], json!({"N": "1.5"}));
        assert_eq!(back["b"], json!({"B": "AAEC"}));
        assert_eq!(back["m"], json!({"M": {"x": {"NULL": true}}}));
        assert_eq!(item_from_json(&back).unwrap(), item);
    }

    #[test]
    fn rejects_malformed_values() {
        assert!(Value::from_json(&json!({})).is_err());
        assert!(Value::from_json(&json!({"S": "a", "N": "1"})).is_err());
        assert!(Value::from_json(&json!({"SS": []})).is_err());
        assert!(Value::from_json(&json!({"SS": ["a", "a"]})).is_err());
        assert!(Value::from_json(&json!({"NULL": false})).is_err());
        assert!(Value::from_json(&json!({"N": "x"})).is_err());
        assert!(Value::from_json(&json!({"Q": "x"})).is_err());
        let mut deep = json!({"S": "x"});
        for _ in 0..40 {
            deep = json!({"L": [deep]});
        }
        assert!(Value::from_json(&deep).is_err());
    }

    #[test]
    fn sets_compare_without_order() {
        let a = Value::SS(vec!["a".into(), "b".into()]);
        let b = Value::SS(vec!["b".into(), "a".into()]);
        assert!(a.same(&b));
    }
}
