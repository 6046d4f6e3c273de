//! DynamoDB's expression languages: condition and filter expressions, key conditions, update
//! expressions and projections — parsed into an AST with names and values substituted, then
//! evaluated against items.

mod eval;
mod lexer;
mod parser;
mod reserved;
pub(crate) mod types;
mod update;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};

use crate::error::DbError;
use crate::value::Value;

pub use eval::{get_path, matches, project, project_leaves};
pub use update::{apply_update, check_update_paths, UpdateOutcome};

/// One element of a document path: `a`, `.b`, `[3]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathElem {
    Name(String),
    Index(usize),
}

pub type Path = Vec<PathElem>;

pub fn path_to_string(path: &Path) -> String {
    let mut s = String::new();
    for (i, e) in path.iter().enumerate() {
        match e {
            PathElem::Name(n) => {
                if i > 0 {
                    s.push('.');
                }
                s.push_str(n);
            }
            PathElem::Index(n) => s.push_str(&format!("[{n}]")),
        }
    }
    s
}

/// A path as DynamoDB shows it in messages: `[a, b, [1]]`.
pub(crate) fn path_display(p: &Path) -> String {
    let parts: Vec<String> = p
        .iter()
        .map(|e| match e {
            PathElem::Name(n) => n.clone(),
            PathElem::Index(i) => format!("[{i}]"),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Path(Path),
    Value(Value),
    /// `size(path)`.
    Size(Path),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare(Operand, Comparator, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    AttributeExists(Path),
    AttributeNotExists(Path),
    AttributeType(Path, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
}

/// The right-hand side of a SET action.
#[derive(Debug, Clone, PartialEq)]
pub enum SetValue {
    Operand(Operand),
    IfNotExists(Path, Box<SetValue>),
    ListAppend(Box<SetValue>, Box<SetValue>),
    Plus(Box<SetValue>, Box<SetValue>),
    Minus(Box<SetValue>, Box<SetValue>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum UpdateAction {
    Set(Path, SetValue),
    Remove(Path),
    Add(Path, Operand),
    Delete(Path, Operand),
}

/// The top-level attribute names a condition reads (into `out`).
pub fn top_level_names<'c>(c: &'c Condition, out: &mut Vec<&'c str>) {
    let operand = |o: &'c Operand, out: &mut Vec<&'c str>| match o {
        Operand::Path(p) | Operand::Size(p) => {
            if let Some(PathElem::Name(n)) = p.first() {
                out.push(n);
            }
        }
        Operand::Value(_) => {}
    };
    match c {
        Condition::Compare(a, _, b) | Condition::BeginsWith(a, b) | Condition::Contains(a, b) => {
            operand(a, out);
            operand(b, out);
        }
        Condition::Between(a, b, d) => {
            for o in [a, b, d] {
                operand(o, out);
            }
        }
        Condition::In(a, list) => {
            operand(a, out);
            for o in list {
                operand(o, out);
            }
        }
        Condition::And(a, b) | Condition::Or(a, b) => {
            top_level_names(a, out);
            top_level_names(b, out);
        }
        Condition::Not(a) => top_level_names(a, out),
        Condition::AttributeExists(p) | Condition::AttributeNotExists(p) | Condition::AttributeType(p, _) => {
            if let Some(PathElem::Name(n)) = p.first() {
                out.push(n);
            }
        }
    }
}

/// ExpressionAttributeNames and ExpressionAttributeValues of one request, with the record of
/// which were used (unused ones are an error, as in DynamoDB).
pub struct Substitutions<'a> {
    names: Option<&'a Map<String, Json>>,
    /// Parsed once, when the request is: DynamoDB checks every value, used or not.
    values: Option<BTreeMap<&'a str, Value>>,
    used_names: RefCell<BTreeSet<String>>,
    used_values: RefCell<BTreeSet<String>>,
}

impl<'a> Substitutions<'a> {
    pub fn new(request: &'a Json) -> Result<Substitutions<'a>, DbError> {
        let names = match request.get("ExpressionAttributeNames") {
            None | Some(Json::Null) => None,
            Some(Json::Object(m)) => Some(m),
            Some(_) => return Err(DbError::serialization("ExpressionAttributeNames must be a map")),
        };
        let values = match request.get("ExpressionAttributeValues") {
            None | Some(Json::Null) => None,
            Some(Json::Object(m)) => Some(m),
            Some(_) => return Err(DbError::serialization("ExpressionAttributeValues must be a map")),
        };
        if names.is_some_and(|m| m.is_empty()) {
            return Err(DbError::validation("ExpressionAttributeNames must not be empty"));
        }
        if values.is_some_and(|m| m.is_empty()) {
            return Err(DbError::validation("ExpressionAttributeValues must not be empty"));
        }
        // Every value is checked, used or not, and a bad one is named by its key.
        let values = match values {
            None => None,
            Some(m) => {
                let mut parsed = BTreeMap::new();
                for (alias, v) in m {
                    let value = Value::from_json(v).map_err(|e| {
                        DbError::new(
                            e.kind,
                            format!(
                                "ExpressionAttributeValues contains invalid value: {} for key {alias}",
                                e.message
                            ),
                        )
                    })?;
                    parsed.insert(alias.as_str(), value);
                }
                Some(parsed)
            }
        };
        for (alias, n) in names.into_iter().flatten() {
            if n.as_str() == Some("") {
                return Err(DbError::validation(format!(
                    "ExpressionAttributeNames contains invalid value: Empty attribute name for key {alias}"
                )));
            }
        }
        Ok(Substitutions {
            names,
            values,
            used_names: RefCell::default(),
            used_values: RefCell::default(),
        })
    }

    /// The attribute name behind `#alias`; the error text goes after "Invalid <Expression>: ".
    pub(crate) fn name(&self, alias: &str) -> Result<String, String> {
        match self.names.and_then(|m| m.get(alias)).and_then(Json::as_str) {
            Some(n) => {
                self.used_names.borrow_mut().insert(alias.to_owned());
                Ok(n.to_owned())
            }
            None => Err(format!(
                "An expression attribute name used in the document path is not defined; attribute name: {alias}"
            )),
        }
    }

    /// The value behind `:alias`.
    pub(crate) fn value(&self, alias: &str) -> Result<Result<Value, DbError>, String> {
        match self.values.as_ref().and_then(|m| m.get(alias)) {
            Some(v) => {
                self.used_values.borrow_mut().insert(alias.to_owned());
                Ok(Ok(v.clone()))
            }
            None => Err(format!(
                "An expression attribute value used in expression is not defined; attribute value: {alias}"
            )),
        }
    }

    /// Call after every expression of the request has been parsed.
    pub fn check_all_used(&self) -> Result<(), DbError> {
        if let Some(names) = self.names {
            let unused: Vec<&str> = names
                .keys()
                .filter(|k| !self.used_names.borrow().contains(*k))
                .map(String::as_str)
                .collect();
            if !unused.is_empty() {
                return Err(DbError::validation(format!(
                    "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                    unused.join(", ")
                )));
            }
        }
        if let Some(values) = &self.values {
            let unused: Vec<&str> = values
                .keys()
                .filter(|k| !self.used_values.borrow().contains(**k))
                .copied()
                .collect();
            if !unused.is_empty() {
                return Err(DbError::validation(format!(
                    "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                    unused.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// Which request parameter an expression came from (used in error messages).
#[derive(Debug, Clone, Copy)]
pub enum ExprKind {
    Condition,
    Filter,
    KeyCondition,
    Update,
    Projection,
}

impl ExprKind {
    pub fn label(self) -> &'static str {
        match self {
            ExprKind::Condition => "ConditionExpression",
            ExprKind::Filter => "FilterExpression",
            ExprKind::KeyCondition => "KeyConditionExpression",
            ExprKind::Update => "UpdateExpression",
            ExprKind::Projection => "ProjectionExpression",
        }
    }
}

pub fn parse_condition(text: &str, kind: ExprKind, subs: &Substitutions<'_>) -> Result<Condition, DbError> {
    parser::Parser::new(text, kind, subs)?.condition_expression()
}

pub fn parse_update(text: &str, subs: &Substitutions<'_>) -> Result<Vec<UpdateAction>, DbError> {
    parser::Parser::new(text, ExprKind::Update, subs)?.update_expression()
}

pub fn parse_projection(text: &str, subs: &Substitutions<'_>) -> Result<Vec<Path>, DbError> {
    parser::Parser::new(text, ExprKind::Projection, subs)?.projection_expression()
}

#[cfg(test)]
mod tests;
