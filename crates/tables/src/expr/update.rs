//! Applying an update expression (SET, REMOVE, ADD, DELETE) to an item.
//!
//! As in DynamoDB, every operand is read from the item as it was before the update; the
//! actions are then applied in order.

use crate::error::DbError;
use crate::expr::eval::get_path;
use crate::expr::parser::check_overlaps;
use crate::expr::{Operand, Path, PathElem, SetValue, UpdateAction};
use crate::value::{Item, Value};

pub struct UpdateOutcome {
    pub item: Item,
    /// The paths the update wrote (for UPDATED_OLD / UPDATED_NEW, which return just those).
    pub updated: Vec<Path>,
}

fn wrong_type() -> DbError {
    DbError::validation("An operand in the update expression has an incorrect data type")
}

fn invalid_path() -> DbError {
    DbError::validation("The document path provided in the update expression is invalid for update")
}

fn action_path(a: &UpdateAction) -> &Path {
    match a {
        UpdateAction::Set(p, _) | UpdateAction::Remove(p) | UpdateAction::Add(p, _) | UpdateAction::Delete(p, _) => p,
    }
}

/// The checks that need no item: no two paths overlap, no key attribute is touched.
pub fn check_update_paths(actions: &[UpdateAction], key_names: &[&str]) -> Result<(), DbError> {
    let paths: Vec<Path> = actions.iter().map(|a| action_path(a).clone()).collect();
    check_overlaps(&paths, "UpdateExpression")?;
    for p in &paths {
        if let PathElem::Name(top) = &p[0] {
            if key_names.contains(&top.as_str()) {
                return Err(DbError::validation(format!(
                    "One or more parameter values were invalid: Cannot update attribute {top}. This attribute is part of the key"
                )));
            }
        }
    }
    Ok(())
}

pub fn apply_update(old: &Item, actions: &[UpdateAction], key_names: &[&str]) -> Result<UpdateOutcome, DbError> {
    check_update_paths(actions, key_names)?;
    // Operands are evaluated against the old item, before any action is applied.
    let mut resolved: Vec<(usize, Value)> = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        match a {
            UpdateAction::Set(_, v) => resolved.push((i, eval_set(v, old)?)),
            UpdateAction::Add(_, Operand::Value(v)) | UpdateAction::Delete(_, Operand::Value(v)) => {
                resolved.push((i, v.clone()))
            }
            _ => {}
        }
    }
    let mut item = old.clone();
    let updated = actions.iter().map(|a| action_path(a).clone()).collect();
    for (i, a) in actions.iter().enumerate() {
        let path = action_path(a);
        let value = resolved.iter().find(|(j, _)| *j == i).map(|(_, v)| v.clone());
        match a {
            UpdateAction::Set(..) => set_path(&mut item, path, value.unwrap_or(Value::Null))?,
            UpdateAction::Remove(_) => remove_path(&mut item, path)?,
            UpdateAction::Add(..) => {
                let add = value.ok_or_else(wrong_type)?;
                let new = match (get_path(&item, path), &add) {
                    (None, Value::N(_) | Value::SS(_) | Value::NS(_) | Value::BS(_) | Value::L(_)) => add.clone(),
                    (Some(Value::L(a)), Value::L(b)) => Value::L(a.iter().chain(b).cloned().collect()),
                    (None, _) => return Err(wrong_type()),
                    (Some(Value::N(a)), Value::N(b)) => {
                        Value::N(a.add(b).map_err(|e| DbError::validation(e.to_string()))?)
                    }
                    (Some(Value::SS(a)), Value::SS(b)) => Value::SS(union(a, b)),
                    (Some(Value::NS(a)), Value::NS(b)) => Value::NS(union(a, b)),
                    (Some(Value::BS(a)), Value::BS(b)) => Value::BS(union(a, b)),
                    _ => return Err(wrong_type()),
                };
                set_path(&mut item, path, new)?;
            }
            UpdateAction::Delete(..) => {
                let del = value.ok_or_else(wrong_type)?;
                let new = match (get_path(&item, path), &del) {
                    (None, Value::SS(_) | Value::NS(_) | Value::BS(_)) => continue,
                    (Some(Value::SS(a)), Value::SS(b)) => difference(a, b).map(Value::SS),
                    (Some(Value::NS(a)), Value::NS(b)) => difference(a, b).map(Value::NS),
                    (Some(Value::BS(a)), Value::BS(b)) => difference(a, b).map(Value::BS),
                    _ => return Err(wrong_type()),
                };
                match new {
                    Some(v) => set_path(&mut item, path, v)?,
                    None => remove_path(&mut item, path)?,
                }
            }
        }
    }
    Ok(UpdateOutcome { item, updated })
}

fn union<T: Clone + PartialEq>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out = a.to_vec();
    for x in b {
        if !out.contains(x) {
            out.push(x.clone());
        }
    }
    out
}

/// `None` when nothing is left (the attribute is then removed).
fn difference<T: Clone + PartialEq>(a: &[T], b: &[T]) -> Option<Vec<T>> {
    let out: Vec<T> = a.iter().filter(|x| !b.contains(x)).cloned().collect();
    (!out.is_empty()).then_some(out)
}

fn eval_set(v: &SetValue, item: &Item) -> Result<Value, DbError> {
    Ok(match v {
        SetValue::Operand(Operand::Value(v)) => v.clone(),
        SetValue::Operand(Operand::Path(p)) => get_path(item, p).cloned().ok_or_else(|| {
            DbError::validation("The provided expression refers to an attribute that does not exist in the item")
        })?,
        SetValue::Operand(Operand::Size(_)) => return Err(wrong_type()),
        SetValue::IfNotExists(p, default) => match get_path(item, p) {
            Some(v) => v.clone(),
            None => eval_set(default, item)?,
        },
        SetValue::ListAppend(a, b) => match (eval_set(a, item)?, eval_set(b, item)?) {
            (Value::L(mut a), Value::L(b)) => {
                a.extend(b);
                Value::L(a)
            }
            _ => return Err(wrong_type()),
        },
        SetValue::Plus(a, b) | SetValue::Minus(a, b) => match (eval_set(a, item)?, eval_set(b, item)?) {
            (Value::N(x), Value::N(y)) => {
                let r = if matches!(v, SetValue::Plus(..)) {
                    x.add(&y)
                } else {
                    x.sub(&y)
                };
                Value::N(r.map_err(|e| DbError::validation(e.to_string()))?)
            }
            _ => return Err(wrong_type()),
        },
    })
}

/// The container that holds the last element of `path`.
fn parent_mut<'i>(item: &'i mut Item, path: &Path) -> Result<Option<&'i mut Value>, DbError> {
    if path.len() == 1 {
        return Ok(None);
    }
    let PathElem::Name(top) = &path[0] else {
        return Err(invalid_path());
    };
    let mut cur = item.get_mut(top).ok_or_else(invalid_path)?;
    for e in &path[1..path.len() - 1] {
        cur = match (e, cur) {
            (PathElem::Name(n), Value::M(m)) => m.get_mut(n).ok_or_else(invalid_path)?,
            (PathElem::Index(i), Value::L(l)) => l.get_mut(*i).ok_or_else(invalid_path)?,
            _ => return Err(invalid_path()),
        };
    }
    Ok(Some(cur))
}

fn set_path(item: &mut Item, path: &Path, value: Value) -> Result<(), DbError> {
    let last = &path[path.len() - 1];
    match (parent_mut(item, path)?, last) {
        (None, PathElem::Name(n)) => {
            item.insert(n.clone(), value);
        }
        (Some(Value::M(m)), PathElem::Name(n)) => {
            m.insert(n.clone(), value);
        }
        (Some(Value::L(l)), PathElem::Index(i)) => {
            if *i < l.len() {
                l[*i] = value;
            } else {
                l.push(value);
            }
        }
        _ => return Err(invalid_path()),
    }
    Ok(())
}

fn remove_path(item: &mut Item, path: &Path) -> Result<(), DbError> {
    let last = &path[path.len() - 1];
    match (parent_mut(item, path), last) {
        (Ok(None), PathElem::Name(n)) => {
            item.remove(n);
        }
        (Ok(Some(Value::M(m))), PathElem::Name(n)) => {
            m.remove(n);
        }
        (Ok(Some(Value::L(l))), PathElem::Index(i)) => {
            if *i < l.len() {
                l.remove(*i);
            }
        }
        // Removing something under a path that does not exist changes nothing.
        (Err(_), _) => {}
        _ => return Err(invalid_path()),
    }
    Ok(())
}
