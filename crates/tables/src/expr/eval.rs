//! Evaluating conditions and projections against an item.

use std::cmp::Ordering;

use crate::expr::{Comparator, Condition, Operand, Path, PathElem};
use crate::number::Number;
use crate::value::{Item, Value};

/// The value at `path`, if there is one.
pub fn get_path<'i>(item: &'i Item, path: &Path) -> Option<&'i Value> {
    let mut elems = path.iter();
    let mut cur = match elems.next()? {
        PathElem::Name(n) => item.get(n)?,
        PathElem::Index(_) => return None,
    };
    for e in elems {
        cur = match (e, cur) {
            (PathElem::Name(n), Value::M(m)) => m.get(n)?,
            (PathElem::Index(i), Value::L(l)) => l.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn operand<'i>(op: &'i Operand, item: &'i Item) -> Option<std::borrow::Cow<'i, Value>> {
    use std::borrow::Cow;
    match op {
        Operand::Value(v) => Some(Cow::Borrowed(v)),
        Operand::Path(p) => get_path(item, p).map(Cow::Borrowed),
        Operand::Size(p) => {
            let n = get_path(item, p)?.function_size()?;
            Some(Cow::Owned(Value::N(
                Number::parse(&n.to_string()).unwrap_or(Number::ZERO),
            )))
        }
    }
}

/// Order of two scalars of the same comparable type (N, S, B); `None` otherwise.
pub fn scalar_order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::N(x), Value::N(y)) => Some(x.cmp(y)),
        (Value::S(x), Value::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::B(x), Value::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

pub fn matches(cond: &Condition, item: &Item) -> bool {
    match cond {
        Condition::And(a, b) => matches(a, item) && matches(b, item),
        Condition::Or(a, b) => matches(a, item) || matches(b, item),
        Condition::Not(c) => !matches(c, item),
        Condition::AttributeExists(p) => get_path(item, p).is_some(),
        Condition::AttributeNotExists(p) => get_path(item, p).is_none(),
        Condition::AttributeType(p, t) => match (get_path(item, p), operand(t, item)) {
            (Some(v), Some(t)) => matches!(&*t, Value::S(name) if name == v.type_name()),
            _ => false,
        },
        Condition::BeginsWith(a, b) => match (operand(a, item), operand(b, item)) {
            (Some(a), Some(b)) => match (&*a, &*b) {
                (Value::S(x), Value::S(y)) => x.starts_with(y.as_str()),
                (Value::B(x), Value::B(y)) => x.starts_with(y),
                _ => false,
            },
            _ => false,
        },
        Condition::Contains(a, b) => match (operand(a, item), operand(b, item)) {
            (Some(a), Some(b)) => match (&*a, &*b) {
                (Value::S(x), Value::S(y)) => x.contains(y.as_str()),
                (Value::SS(x), Value::S(y)) => x.contains(y),
                (Value::NS(x), Value::N(y)) => x.contains(y),
                (Value::BS(x), Value::B(y)) => x.contains(y),
                (Value::L(x), y) => x.iter().any(|e| e.same(y)),
                _ => false,
            },
            _ => false,
        },
        Condition::Between(x, lo, hi) => match (operand(x, item), operand(lo, item), operand(hi, item)) {
            (Some(x), Some(lo), Some(hi)) => {
                matches!(scalar_order(&x, &lo), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(scalar_order(&x, &hi), Some(Ordering::Less | Ordering::Equal))
            }
            _ => false,
        },
        Condition::In(x, list) => match operand(x, item) {
            Some(x) => list.iter().any(|o| operand(o, item).is_some_and(|v| v.same(&x))),
            None => false,
        },
        Condition::Compare(a, cmp, b) => {
            let (a, b) = (operand(a, item), operand(b, item));
            match cmp {
                Comparator::Eq => matches!((a, b), (Some(a), Some(b)) if a.same(&b)),
                Comparator::Ne => match (a, b) {
                    (Some(a), Some(b)) => !a.same(&b),
                    _ => true,
                },
                _ => {
                    let (Some(a), Some(b)) = (a, b) else { return false };
                    let Some(ord) = scalar_order(&a, &b) else { return false };
                    match cmp {
                        Comparator::Lt => ord == Ordering::Less,
                        Comparator::Le => ord != Ordering::Greater,
                        Comparator::Gt => ord == Ordering::Greater,
                        Comparator::Ge => ord != Ordering::Less,
                        Comparator::Eq | Comparator::Ne => unreachable!("handled above"),
                    }
                }
            }
        }
    }
}

/// Keep only `paths` of `item`, nested structure preserved (list elements in index order).
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut out = Item::new();
    let mut sorted: Vec<&Path> = paths.iter().collect();
    sorted.sort();
    for path in sorted {
        let Some(v) = get_path(item, path) else { continue };
        let PathElem::Name(top) = &path[0] else { continue };
        if path.len() == 1 {
            out.insert(top.clone(), v.clone());
            continue;
        }
        // Build the skeleton along the path, then place the value.
        let skeleton = match &path[1] {
            PathElem::Name(_) => Value::M(Default::default()),
            PathElem::Index(_) => Value::L(Vec::new()),
        };
        let mut cur = out.entry(top.clone()).or_insert(skeleton);
        for (i, e) in path[1..].iter().enumerate() {
            let last = i + 2 == path.len();
            let next_skeleton = || match path.get(i + 2) {
                Some(PathElem::Name(_)) => Value::M(Default::default()),
                Some(PathElem::Index(_)) => Value::L(Vec::new()),
                None => Value::Null,
            };
            cur = match (e, cur) {
                (PathElem::Name(n), Value::M(m)) => {
                    if last {
                        m.insert(n.clone(), v.clone());
                        break;
                    }
                    m.entry(n.clone()).or_insert_with(next_skeleton)
                }
                (PathElem::Index(_), Value::L(l)) => {
                    if last {
                        l.push(v.clone());
                        break;
                    }
                    l.push(next_skeleton());
                    let len = l.len();
                    &mut l[len - 1]
                }
                _ => break,
            };
        }
    }
    out
}

/// Each of `paths`' values under the path's last attribute name (PartiQL's SELECT list).
pub fn project_leaves(item: &Item, paths: &[Path]) -> Item {
    let mut out = Item::new();
    for path in paths {
        let name = path.iter().rev().find_map(|e| match e {
            PathElem::Name(n) => Some(n),
            PathElem::Index(_) => None,
        });
        if let (Some(name), Some(v)) = (name, get_path(item, path)) {
            out.insert(name.clone(), v.clone());
        }
    }
    out
}
