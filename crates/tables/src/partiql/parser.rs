//! The PartiQL statements DynamoDB accepts — SELECT, INSERT, UPDATE, DELETE — parsed into
//! the same condition and update trees as the expression languages, with `?` parameters and
//! literals already turned into values. Nesting is bounded as in the expression parser.

use std::collections::BTreeMap;

use crate::error::DbError;
use crate::expr::{Comparator, Condition, Operand, Path, PathElem, SetValue, UpdateAction};
use crate::number::Number;
use crate::value::Value;

/// The longest statement DynamoDB accepts (8 KB).
const MAX_STATEMENT_BYTES: usize = 8192;
/// The deepest nesting followed (parentheses, NOT, nested literals): the parser, the evaluator
/// and the drop of the tree all recurse once per level.
const MAX_NESTING: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A bare word (keyword or attribute name), as written.
    Word(String),
    /// A `"quoted"` identifier.
    Quoted(String),
    /// A `'string'` literal.
    Str(String),
    Num(String),
    Param,
    Star,
    Dot,
    Comma,
    Colon,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    /// `<<`
    LBag,
    /// `>>`
    RBag,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
}

fn malformed(detail: impl std::fmt::Display) -> DbError {
    DbError::validation(format!("Statement wasn't well formed, can't be processed: {detail}"))
}

fn tokenize(text: &str) -> Result<Vec<Tok>, DbError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let (tok, len) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '-' if next == Some('-') => {
                // A comment to the end of the line.
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '*' => (Tok::Star, 1),
            '.' => (Tok::Dot, 1),
            ',' => (Tok::Comma, 1),
            ':' => (Tok::Colon, 1),
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBracket, 1),
            ']' => (Tok::RBracket, 1),
            '{' => (Tok::LBrace, 1),
            '}' => (Tok::RBrace, 1),
            '?' => (Tok::Param, 1),
            '+' => (Tok::Plus, 1),
            '-' => (Tok::Minus, 1),
            '=' => (Tok::Eq, 1),
            '!' if next == Some('=') => (Tok::Ne, 2),
            '<' if next == Some('<') => (Tok::LBag, 2),
            '<' if next == Some('>') => (Tok::Ne, 2),
            '<' if next == Some('=') => (Tok::Le, 2),
            '<' => (Tok::Lt, 1),
            '>' if next == Some('>') => (Tok::RBag, 2),
            '>' if next == Some('=') => (Tok::Ge, 2),
            '>' => (Tok::Gt, 1),
            '\'' | '"' => {
                // Quotes are escaped by doubling them.
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(malformed(format!("unterminated quote starting at {}", i + 1))),
                        Some(&q) if q == c && chars.get(j + 1) == Some(&c) => {
                            s.push(c);
                            j += 2;
                        }
                        Some(&q) if q == c => break,
                        Some(&other) => {
                            s.push(other);
                            j += 1;
                        }
                    }
                }
                let tok = if c == '\'' { Tok::Str(s) } else { Tok::Quoted(s) };
                (tok, j + 1 - i)
            }
            c if c.is_ascii_digit() => {
                let mut j = i;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '.') {
                    // An exponent's sign belongs to the number.
                    j += 1;
                    if matches!(chars[j - 1], 'e' | 'E') && matches!(chars.get(j), Some('+' | '-')) {
                        j += 1;
                    }
                }
                (Tok::Num(chars[i..j].iter().collect()), j - i)
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut j = i;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == '$') {
                    j += 1;
                }
                (Tok::Word(chars[i..j].iter().collect()), j - i)
            }
            other => return Err(malformed(format!("Unexpected character: {other}"))),
        };
        out.push(tok);
        i += len;
    }
    Ok(out)
}

/// A table, or an index of it (`"table"."index"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub table: String,
    pub index: Option<String>,
}

/// What an UPDATE or DELETE returns (`RETURNING ALL OLD *` and so on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returning {
    None,
    AllOld,
    ModifiedOld,
    AllNew,
    ModifiedNew,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Select {
        target: Target,
        /// `None` for `*`.
        projection: Option<Vec<Path>>,
        filter: Option<Condition>,
        /// `ORDER BY`: only a key attribute of the target (checked when the target is known).
        order_by: Option<Path>,
        descending: bool,
    },
    Insert {
        target: Target,
        item: BTreeMap<String, Value>,
    },
    Update {
        target: Target,
        actions: Vec<UpdateAction>,
        filter: Condition,
        returning: Returning,
    },
    Delete {
        target: Target,
        filter: Condition,
        returning: Returning,
    },
}

impl Statement {
    pub fn target(&self) -> &Target {
        match self {
            Statement::Select { target, .. }
            | Statement::Insert { target, .. }
            | Statement::Update { target, .. }
            | Statement::Delete { target, .. } => target,
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, Statement::Select { .. })
    }
}

/// Parse `text` with its `?` parameters (DynamoDB JSON values, in order).
pub fn parse(text: &str, params: &[Value]) -> Result<Statement, DbError> {
    if text.trim().is_empty() {
        return Err(DbError::validation(
            "1 validation error detected: Value '' at 'statement' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    if text.len() > MAX_STATEMENT_BYTES {
        return Err(DbError::validation(format!(
            "1 validation error detected: Value at 'statement' failed to satisfy constraint: Member must have length less than or equal to {MAX_STATEMENT_BYTES}"
        )));
    }
    let mut p = Parser {
        toks: tokenize(text)?,
        pos: 0,
        params,
        used: 0,
        depth: 0,
    };
    let statement = p.statement()?;
    if p.pos < p.toks.len() {
        return Err(p.unexpected());
    }
    if p.used != params.len() {
        return Err(DbError::validation(
            "Number of parameters in request and statement don't match.",
        ));
    }
    Ok(statement)
}

struct Parser<'p> {
    toks: Vec<Tok>,
    pos: usize,
    params: &'p [Value],
    used: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n)
    }

    fn unexpected(&self) -> DbError {
        match self.peek() {
            None => malformed("Unexpected end of statement"),
            Some(Tok::Word(w)) if is_keyword(w) => malformed(format!("Unexpected keyword: {}", w.to_ascii_uppercase())),
            Some(t) => malformed(format!("Unexpected token: {}", describe(t))),
        }
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Tok) -> Result<(), DbError> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.is_word(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_word(&mut self, word: &str) -> Result<(), DbError> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn descend(&mut self) -> Result<(), DbError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(malformed(format!(
                "the statement is nested too deeply; the maximum nesting level is {MAX_NESTING}"
            )));
        }
        Ok(())
    }

    fn ascend(&mut self) {
        self.depth -= 1;
    }

    fn param(&mut self) -> Result<Value, DbError> {
        let v = self
            .params
            .get(self.used)
            .cloned()
            .ok_or_else(|| DbError::validation("Number of parameters in request and statement don't match."))?;
        self.used += 1;
        Ok(v)
    }

    fn statement(&mut self) -> Result<Statement, DbError> {
        if self.eat_word("SELECT") {
            self.select()
        } else if self.eat_word("INSERT") {
            self.insert()
        } else if self.eat_word("UPDATE") {
            self.update()
        } else if self.eat_word("DELETE") {
            self.delete()
        } else if self.peek().is_none() {
            Err(malformed("Unexpected end of statement"))
        } else {
            Err(self.unexpected())
        }
    }

    fn name(&mut self) -> Result<String, DbError> {
        match self.peek().cloned() {
            Some(Tok::Quoted(s)) => {
                self.pos += 1;
                Ok(s)
            }
            Some(Tok::Word(w)) if !is_keyword(&w) => {
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn target(&mut self) -> Result<Target, DbError> {
        let table = self.name()?;
        let index = if self.eat(&Tok::Dot) { Some(self.name()?) } else { None };
        Ok(Target { table, index })
    }

    fn select(&mut self) -> Result<Statement, DbError> {
        let projection = if self.eat(&Tok::Star) {
            None
        } else {
            let mut paths = vec![self.path()?];
            while self.eat(&Tok::Comma) {
                paths.push(self.path()?);
            }
            Some(paths)
        };
        self.expect_word("FROM")?;
        let target = self.target()?;
        let filter = if self.eat_word("WHERE") { Some(self.or()?) } else { None };
        let mut order_by = None;
        let mut descending = false;
        if self.eat_word("ORDER") {
            self.expect_word("BY")?;
            order_by = Some(self.path()?);
            if self.eat_word("DESC") {
                descending = true;
            } else {
                self.eat_word("ASC");
            }
        }
        Ok(Statement::Select {
            target,
            projection,
            filter,
            order_by,
            descending,
        })
    }

    fn insert(&mut self) -> Result<Statement, DbError> {
        self.expect_word("INTO")?;
        let target = self.target()?;
        self.expect_word("VALUE")?;
        let item = match self.value()? {
            Value::M(m) => m,
            _ => {
                return Err(malformed(
                    "INSERT takes one item, written as a tuple: {'attribute': value, ...}",
                ))
            }
        };
        Ok(Statement::Insert { target, item })
    }

    fn update(&mut self) -> Result<Statement, DbError> {
        let target = self.target()?;
        let mut actions = Vec::new();
        loop {
            if self.eat_word("SET") {
                actions.push(self.set_action()?);
            } else if self.eat_word("REMOVE") {
                actions.push(UpdateAction::Remove(self.path()?));
            } else {
                break;
            }
            // `SET a = 1, b = 2` is the same as `SET a = 1 SET b = 2`.
            while self.eat(&Tok::Comma) {
                match actions.last() {
                    Some(UpdateAction::Remove(_)) => actions.push(UpdateAction::Remove(self.path()?)),
                    _ => actions.push(self.set_action()?),
                }
            }
        }
        if actions.is_empty() {
            return Err(self.unexpected());
        }
        self.expect_word("WHERE")?;
        let filter = self.or()?;
        let returning = self.returning()?;
        Ok(Statement::Update {
            target,
            actions,
            filter,
            returning,
        })
    }

    fn delete(&mut self) -> Result<Statement, DbError> {
        self.expect_word("FROM")?;
        let target = self.target()?;
        self.expect_word("WHERE")?;
        let filter = self.or()?;
        let returning = self.returning()?;
        Ok(Statement::Delete {
            target,
            filter,
            returning,
        })
    }

    fn returning(&mut self) -> Result<Returning, DbError> {
        if !self.eat_word("RETURNING") {
            return Ok(Returning::None);
        }
        let all = if self.eat_word("ALL") {
            true
        } else {
            self.expect_word("MODIFIED")?;
            false
        };
        let old = if self.eat_word("OLD") {
            true
        } else {
            self.expect_word("NEW")?;
            false
        };
        self.expect(&Tok::Star)?;
        Ok(match (all, old) {
            (true, true) => Returning::AllOld,
            (false, true) => Returning::ModifiedOld,
            (true, false) => Returning::AllNew,
            (false, false) => Returning::ModifiedNew,
        })
    }

    // ---- conditions ---------------------------------------------------------------------

    fn or(&mut self) -> Result<Condition, DbError> {
        let mut left = self.and()?;
        while self.eat_word("OR") {
            left = Condition::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, DbError> {
        let mut left = self.not()?;
        while self.eat_word("AND") {
            left = Condition::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Condition, DbError> {
        if self.eat_word("NOT") {
            self.descend()?;
            let inner = self.not()?;
            self.ascend();
            return Ok(Condition::Not(Box::new(inner)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Condition, DbError> {
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            self.descend()?;
            let c = self.or()?;
            self.ascend();
            self.expect(&Tok::RParen)?;
            return Ok(c);
        }
        if let (Some(Tok::Word(w)), Some(Tok::LParen)) = (self.peek(), self.peek_at(1)) {
            let name = w.to_ascii_lowercase();
            if matches!(name.as_str(), "begins_with" | "contains" | "attribute_type") {
                self.pos += 2;
                let path = self.path()?;
                self.expect(&Tok::Comma)?;
                let v = Operand::Value(self.value()?);
                let c = match name.as_str() {
                    "begins_with" => Condition::BeginsWith(Operand::Path(path), v),
                    "contains" => Condition::Contains(Operand::Path(path), v),
                    _ => Condition::AttributeType(path, v),
                };
                self.expect(&Tok::RParen)?;
                return checked(c);
            }
            if name != "size" {
                return Err(DbError::validation(format!("Unrecognized function: {w}")));
            }
        }
        let left = self.operand()?;
        if self.eat_word("IS") {
            let negated = self.eat_word("NOT");
            let c = if self.eat_word("MISSING") {
                Condition::AttributeNotExists(operand_path(&left)?)
            } else if self.eat_word("NULL") {
                Condition::AttributeType(operand_path(&left)?, Operand::Value(Value::S("NULL".into())))
            } else {
                return Err(self.unexpected());
            };
            return Ok(if negated { Condition::Not(Box::new(c)) } else { c });
        }
        if self.eat_word("BETWEEN") {
            let low = self.operand()?;
            self.expect_word("AND")?;
            let high = self.operand()?;
            return checked(Condition::Between(left, low, high));
        }
        if self.eat_word("IN") {
            let close = if self.eat(&Tok::LBracket) {
                Tok::RBracket
            } else {
                self.expect(&Tok::LParen)?;
                Tok::RParen
            };
            let mut list = vec![self.operand()?];
            while self.eat(&Tok::Comma) {
                list.push(self.operand()?);
            }
            self.expect(&close)?;
            if list.len() > 100 {
                return Err(malformed("the IN operator takes at most 100 values"));
            }
            return Ok(Condition::In(left, list));
        }
        let cmp = match self.peek() {
            Some(Tok::Eq) => Comparator::Eq,
            Some(Tok::Ne) => Comparator::Ne,
            Some(Tok::Lt) => Comparator::Lt,
            Some(Tok::Le) => Comparator::Le,
            Some(Tok::Gt) => Comparator::Gt,
            Some(Tok::Ge) => Comparator::Ge,
            _ => return Err(self.unexpected()),
        };
        self.pos += 1;
        let right = self.operand()?;
        checked(Condition::Compare(left, cmp, right))
    }

    fn operand(&mut self) -> Result<Operand, DbError> {
        if let (Some(Tok::Word(w)), Some(Tok::LParen)) = (self.peek(), self.peek_at(1)) {
            if w.eq_ignore_ascii_case("size") {
                self.pos += 2;
                let p = self.path()?;
                self.expect(&Tok::RParen)?;
                return Ok(Operand::Size(p));
            }
        }
        match self.peek() {
            Some(Tok::Word(w)) if !is_literal_word(w) => Ok(Operand::Path(self.path()?)),
            Some(Tok::Quoted(_)) => Ok(Operand::Path(self.path()?)),
            _ => Ok(Operand::Value(self.value()?)),
        }
    }

    fn path(&mut self) -> Result<Path, DbError> {
        let mut path = vec![PathElem::Name(self.name()?)];
        loop {
            if self.eat(&Tok::Dot) {
                path.push(PathElem::Name(self.name()?));
            } else if self.eat(&Tok::LBracket) {
                match self.peek().cloned() {
                    Some(Tok::Num(n)) => {
                        self.pos += 1;
                        let i = n.parse().map_err(|_| malformed(format!("Invalid list index: {n}")))?;
                        path.push(PathElem::Index(i));
                    }
                    Some(Tok::Str(s)) => {
                        self.pos += 1;
                        path.push(PathElem::Name(s));
                    }
                    _ => return Err(self.unexpected()),
                }
                self.expect(&Tok::RBracket)?;
            } else {
                break;
            }
        }
        if path.len() > 32 {
            return Err(malformed("the document path has too many nesting levels"));
        }
        Ok(path)
    }

    /// `path = value`, or `path = set_add(path, <<…>>)` / `set_delete(…)` (ADD and DELETE of
    /// the expression language).
    fn set_action(&mut self) -> Result<UpdateAction, DbError> {
        let path = self.path()?;
        self.expect(&Tok::Eq)?;
        if let (Some(Tok::Word(w)), Some(Tok::LParen)) = (self.peek(), self.peek_at(1)) {
            let add = w.eq_ignore_ascii_case("set_add");
            if add || w.eq_ignore_ascii_case("set_delete") {
                self.pos += 2;
                let of = self.path()?;
                if of != path {
                    return Err(malformed(
                        "set_add and set_delete change the attribute they are assigned to",
                    ));
                }
                self.expect(&Tok::Comma)?;
                let v = Operand::Value(self.value()?);
                self.expect(&Tok::RParen)?;
                return Ok(if add {
                    UpdateAction::Add(path, v)
                } else {
                    UpdateAction::Delete(path, v)
                });
            }
        }
        Ok(UpdateAction::Set(path, self.set_value()?))
    }

    /// The right side of `SET path = …`.
    fn set_value(&mut self) -> Result<SetValue, DbError> {
        let left = self.set_operand()?;
        if self.eat(&Tok::Plus) {
            return Ok(SetValue::Plus(Box::new(left), Box::new(self.set_operand()?)));
        }
        if self.eat(&Tok::Minus) {
            return Ok(SetValue::Minus(Box::new(left), Box::new(self.set_operand()?)));
        }
        Ok(left)
    }

    fn set_operand(&mut self) -> Result<SetValue, DbError> {
        if let (Some(Tok::Word(w)), Some(Tok::LParen)) = (self.peek(), self.peek_at(1)) {
            let name = w.to_ascii_lowercase();
            if name == "list_append" || name == "if_not_exists" {
                self.pos += 2;
                self.descend()?;
                let v = if name == "list_append" {
                    let a = self.set_value()?;
                    self.expect(&Tok::Comma)?;
                    SetValue::ListAppend(Box::new(a), Box::new(self.set_value()?))
                } else {
                    let p = self.path()?;
                    self.expect(&Tok::Comma)?;
                    SetValue::IfNotExists(p, Box::new(self.set_value()?))
                };
                self.ascend();
                self.expect(&Tok::RParen)?;
                return Ok(v);
            }
            return Err(DbError::validation(format!("Unrecognized function: {w}")));
        }
        Ok(SetValue::Operand(self.operand()?))
    }

    // ---- literals -----------------------------------------------------------------------

    fn value(&mut self) -> Result<Value, DbError> {
        let Some(tok) = self.peek().cloned() else {
            return Err(self.unexpected());
        };
        self.pos += 1;
        Ok(match tok {
            Tok::Param => self.param()?,
            Tok::Str(s) => Value::S(s),
            Tok::Num(n) => Value::N(number(&n)?),
            Tok::Minus => match self.peek().cloned() {
                Some(Tok::Num(n)) => {
                    self.pos += 1;
                    Value::N(number(&format!("-{n}"))?)
                }
                _ => return Err(self.unexpected()),
            },
            Tok::Word(w) if w.eq_ignore_ascii_case("TRUE") => Value::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("FALSE") => Value::Bool(false),
            Tok::Word(w) if w.eq_ignore_ascii_case("NULL") => Value::Null,
            Tok::LBracket => {
                self.descend()?;
                let mut list = Vec::new();
                if !self.eat(&Tok::RBracket) {
                    loop {
                        list.push(self.value()?);
                        if !self.eat(&Tok::Comma) {
                            break;
                        }
                    }
                    self.expect(&Tok::RBracket)?;
                }
                self.ascend();
                Value::L(list)
            }
            Tok::LBrace => {
                self.descend()?;
                let mut map = BTreeMap::new();
                if !self.eat(&Tok::RBrace) {
                    loop {
                        let key = match self.peek().cloned() {
                            Some(Tok::Str(s)) => {
                                self.pos += 1;
                                s
                            }
                            Some(Tok::Param) => {
                                self.pos += 1;
                                match self.param()? {
                                    Value::S(s) => s,
                                    _ => return Err(malformed("a tuple's attribute names must be strings")),
                                }
                            }
                            _ => return Err(self.unexpected()),
                        };
                        self.expect(&Tok::Colon)?;
                        let v = self.value()?;
                        if map.insert(key.clone(), v).is_some() {
                            return Err(malformed(format!("Duplicate attribute name in a tuple: {key}")));
                        }
                        if !self.eat(&Tok::Comma) {
                            break;
                        }
                    }
                    self.expect(&Tok::RBrace)?;
                }
                self.ascend();
                Value::M(map)
            }
            Tok::LBag => {
                // Members are scalars, but a nested literal is parsed before it is refused:
                // the nesting limit applies here too.
                self.descend()?;
                let mut members = Vec::new();
                loop {
                    members.push(self.value()?);
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
                self.ascend();
                self.expect(&Tok::RBag)?;
                set_of(members)?
            }
            _ => {
                self.pos -= 1;
                return Err(self.unexpected());
            }
        })
    }
}

/// The constant operand types DynamoDB refuses, as in the expression languages.
fn checked(c: Condition) -> Result<Condition, DbError> {
    crate::expr::types::check_condition(&c).map_err(DbError::validation)?;
    Ok(c)
}

fn number(text: &str) -> Result<Number, DbError> {
    Number::parse(text).map_err(|e| DbError::validation(e.to_string()))
}

/// `<<…>>`: a set of strings, numbers or binaries, all of one type and without duplicates.
fn set_of(members: Vec<Value>) -> Result<Value, DbError> {
    let mixed = || malformed("a set's members must all be strings, all numbers or all binaries");
    let set = match members.first() {
        Some(Value::S(_)) => Value::SS(
            members
                .into_iter()
                .map(|v| if let Value::S(s) = v { Ok(s) } else { Err(mixed()) })
                .collect::<Result<_, _>>()?,
        ),
        Some(Value::N(_)) => Value::NS(
            members
                .into_iter()
                .map(|v| if let Value::N(n) = v { Ok(n) } else { Err(mixed()) })
                .collect::<Result<_, _>>()?,
        ),
        Some(Value::B(_)) => Value::BS(
            members
                .into_iter()
                .map(|v| if let Value::B(b) = v { Ok(b) } else { Err(mixed()) })
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err(mixed()),
    };
    let duplicates = match &set {
        Value::SS(s) => s.iter().enumerate().any(|(i, x)| s[..i].contains(x)),
        Value::NS(s) => s.iter().enumerate().any(|(i, x)| s[..i].contains(x)),
        Value::BS(s) => s.iter().enumerate().any(|(i, x)| s[..i].contains(x)),
        _ => false,
    };
    if duplicates {
        return Err(DbError::validation(
            "One or more parameter values were invalid: Input collection contains duplicates",
        ));
    }
    Ok(set)
}

fn operand_path(o: &Operand) -> Result<Path, DbError> {
    match o {
        Operand::Path(p) => Ok(p.clone()),
        _ => Err(malformed("IS MISSING and IS NULL apply to an attribute")),
    }
}

fn is_literal_word(w: &str) -> bool {
    ["TRUE", "FALSE", "NULL", "MISSING"]
        .iter()
        .any(|k| w.eq_ignore_ascii_case(k))
}

fn is_keyword(w: &str) -> bool {
    [
        "SELECT",
        "FROM",
        "WHERE",
        "INSERT",
        "INTO",
        "VALUE",
        "UPDATE",
        "SET",
        "REMOVE",
        "DELETE",
        "AND",
        "OR",
        "NOT",
        "BETWEEN",
        "IN",
        "IS",
        "ORDER",
        "BY",
        "RETURNING",
        "TRUE",
        "FALSE",
        "NULL",
        "MISSING",
    ]
    .iter()
    .any(|k| w.eq_ignore_ascii_case(k))
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) | Tok::Num(w) => w.clone(),
        Tok::Quoted(s) => format!("\"{s}\""),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Param => "?".into(),
        Tok::Star => "*".into(),
        Tok::Dot => ".".into(),
        Tok::Comma => ",".into(),
        Tok::Colon => ":".into(),
        Tok::LParen => "(".into(),
        Tok::RParen => ")".into(),
        Tok::LBracket => "[".into(),
        Tok::RBracket => "]".into(),
        Tok::LBrace => "{".into(),
        Tok::RBrace => "}".into(),
        Tok::LBag => "<<".into(),
        Tok::RBag => ">>".into(),
        Tok::Eq => "=".into(),
        Tok::Ne => "<>".into(),
        Tok::Lt => "<".into(),
        Tok::Le => "<=".into(),
        Tok::Gt => ">".into(),
        Tok::Ge => ">=".into(),
        Tok::Plus => "+".into(),
        Tok::Minus => "-".into(),
    }
}
