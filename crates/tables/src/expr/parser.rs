//! Recursive-descent parser for the expression languages. Precedence, lowest first:
//! OR, AND, NOT, then comparisons / BETWEEN / IN / functions, with parentheses overriding.

use crate::error::DbError;
use crate::expr::lexer::{near, syntax, tokenize, Spanned, Token};
use crate::expr::reserved::is_reserved;
use crate::expr::{Comparator, Condition, ExprKind, Operand, Path, PathElem, SetValue, Substitutions, UpdateAction};
use crate::value::Value;

pub struct Parser<'s, 'a> {
    text: &'s str,
    tokens: Vec<Spanned>,
    pos: usize,
    kind: ExprKind,
    subs: &'s Substitutions<'a>,
    /// How many parentheses, `NOT`s and nested function calls enclose the current token.
    depth: usize,
    /// The token positions of the last parenthesized condition's `(` and `)`: one directly
    /// inside another is redundant, which DynamoDB refuses.
    last_parens: Option<(usize, usize)>,
}

const MAX_EXPRESSION_BYTES: usize = 4096;

/// The deepest nesting the parser follows. The parser, the evaluator and the drop of the tree
/// all recurse once per level, and input decides the depth: without a bound, ~1,500 nested
/// parentheses in a 4 KB expression overflowed a thread's stack and aborted the server.
pub const MAX_NESTING: usize = 64;

impl<'s, 'a> Parser<'s, 'a> {
    pub fn new(text: &'s str, kind: ExprKind, subs: &'s Substitutions<'a>) -> Result<Parser<'s, 'a>, DbError> {
        let label = kind.label();
        if text.trim().is_empty() {
            return Err(DbError::validation(format!(
                "Invalid {label}: The expression can not be empty;"
            )));
        }
        if text.len() > MAX_EXPRESSION_BYTES {
            return Err(DbError::validation(format!(
                "Invalid {label}: Expression size has exceeded the maximum allowed size; expression size: {}",
                text.len()
            )));
        }
        Ok(Parser {
            text,
            tokens: tokenize(text, label)?,
            pos: 0,
            kind,
            subs,
            depth: 0,
            last_parens: None,
        })
    }

    /// Enter one more level of nesting, refusing input nested deeper than [`MAX_NESTING`].
    /// Pair with [`Parser::ascend`].
    fn descend(&mut self) -> Result<(), DbError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.invalid(format!(
                "The expression is nested too deeply; the maximum nesting level is {MAX_NESTING}"
            )));
        }
        Ok(())
    }

    fn ascend(&mut self) {
        self.depth -= 1;
    }

    fn label(&self) -> &'static str {
        self.kind.label()
    }

    fn invalid(&self, message: impl AsRef<str>) -> DbError {
        DbError::validation(format!("Invalid {}: {}", self.label(), message.as_ref()))
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }

    /// A syntax error at the current token.
    fn unexpected(&self) -> DbError {
        match self.tokens.get(self.pos) {
            Some((_, at)) => {
                let end = self
                    .tokens
                    .get(self.pos + 1)
                    .map(|(_, e)| *e)
                    .unwrap_or(self.text.len());
                let token = self.text[*at..end].trim();
                syntax(self.label(), token, &near(self.text, *at))
            }
            None => {
                let at = self.tokens.last().map(|(_, a)| *a).unwrap_or(0);
                syntax(self.label(), "<EOF>", &near(self.text, at))
            }
        }
    }

    fn expect(&mut self, want: &Token) -> Result<(), DbError> {
        if self.peek() == Some(want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    fn finish<T>(&self, value: T) -> Result<T, DbError> {
        if self.at_end() {
            Ok(value)
        } else {
            Err(self.unexpected())
        }
    }

    // ---- conditions -------------------------------------------------------------------------

    pub fn condition_expression(mut self) -> Result<Condition, DbError> {
        let c = self.or()?;
        self.finish(c)
    }

    fn or(&mut self) -> Result<Condition, DbError> {
        let mut left = self.and()?;
        while self.keyword("OR") {
            self.pos += 1;
            let right = self.and()?;
            left = Condition::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Condition, DbError> {
        let mut left = self.not()?;
        while self.keyword("AND") {
            self.pos += 1;
            let right = self.not()?;
            left = Condition::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Condition, DbError> {
        if self.keyword("NOT") {
            self.pos += 1;
            self.descend()?;
            let inner = self.not()?;
            self.ascend();
            return Ok(Condition::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Condition, DbError> {
        if self.peek() == Some(&Token::LParen) {
            let open = self.pos;
            self.pos += 1;
            self.descend()?;
            let c = self.or()?;
            self.ascend();
            let close = self.pos;
            self.expect(&Token::RParen)?;
            if self.last_parens == Some((open + 1, close.saturating_sub(1))) {
                return Err(self.invalid("The expression has redundant parentheses;"));
            }
            self.last_parens = Some((open, close));
            return Ok(c);
        }
        if let Some(Token::Ident(name)) = self.peek() {
            if self.tokens.get(self.pos + 1).map(|(t, _)| t) == Some(&Token::LParen) {
                let name = name.clone();
                match name.as_str() {
                    "attribute_exists" | "attribute_not_exists" | "attribute_type" | "begins_with" | "contains" => {
                        return self.boolean_function(&name);
                    }
                    "size" => {}
                    other if is_function(other) => {
                        return Err(self.invalid(format!(
                            "The function is not allowed to be used this way in an expression; function: {other}"
                        )));
                    }
                    other => {
                        return Err(self.invalid(format!("Invalid function name; function: {other}")));
                    }
                }
            }
        }
        let left = self.operand()?;
        let cmp = match self.peek() {
            Some(Token::Eq) => Comparator::Eq,
            Some(Token::Ne) => Comparator::Ne,
            Some(Token::Lt) => Comparator::Lt,
            Some(Token::Le) => Comparator::Le,
            Some(Token::Gt) => Comparator::Gt,
            Some(Token::Ge) => Comparator::Ge,
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("BETWEEN") => {
                self.pos += 1;
                let low = self.operand()?;
                if !self.keyword("AND") {
                    return Err(self.unexpected());
                }
                self.pos += 1;
                let high = self.operand()?;
                let c = Condition::Between(left, low, high);
                super::types::check_condition(&c).map_err(|m| self.invalid(m))?;
                return Ok(c);
            }
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("IN") => {
                self.pos += 1;
                self.expect(&Token::LParen)?;
                let mut list = vec![self.operand()?];
                while self.peek() == Some(&Token::Comma) {
                    self.pos += 1;
                    list.push(self.operand()?);
                }
                self.expect(&Token::RParen)?;
                if list.len() > 100 {
                    return Err(
                        self.invalid("The IN operator is provided with too many operands; number of operands: 101")
                    );
                }
                return Ok(Condition::In(left, list));
            }
            _ => return Err(self.unexpected()),
        };
        self.pos += 1;
        let right = self.operand()?;
        let c = Condition::Compare(left, cmp, right);
        super::types::check_condition(&c).map_err(|m| self.invalid(m))?;
        Ok(c)
    }

    /// A function call's arguments: `(operand, …)`, with DynamoDB's check of their number.
    fn arguments(&mut self, name: &str, want: usize) -> Result<Vec<Operand>, DbError> {
        self.expect(&Token::LParen)?;
        self.descend()?;
        let mut args = vec![self.operand()?];
        while self.peek() == Some(&Token::Comma) {
            self.pos += 1;
            args.push(self.operand()?);
        }
        self.ascend();
        self.expect(&Token::RParen)?;
        if args.len() != want {
            return Err(self.invalid(format!(
                "Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {}",
                args.len()
            )));
        }
        Ok(args)
    }

    /// An argument that must be a document path.
    fn path_argument(&self, name: &str, arg: Operand) -> Result<Path, DbError> {
        match arg {
            Operand::Path(p) => Ok(p),
            _ => Err(self.invalid(format!(
                "Operator or function requires a document path; operator or function: {name}"
            ))),
        }
    }

    fn boolean_function(&mut self, name: &str) -> Result<Condition, DbError> {
        self.pos += 1; // the name
        let want = if name.starts_with("attribute_") && name != "attribute_type" {
            1
        } else {
            2
        };
        let mut args = self.arguments(name, want)?.into_iter();
        let mut next = || args.next().unwrap_or(Operand::Value(Value::Null));
        let c = match name {
            "attribute_exists" => Condition::AttributeExists(self.path_argument(name, next())?),
            "attribute_not_exists" => Condition::AttributeNotExists(self.path_argument(name, next())?),
            "attribute_type" => {
                let p = self.path_argument(name, next())?;
                let t = next();
                if let Operand::Value(Value::S(s)) = &t {
                    const TYPES: [&str; 10] = ["S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"];
                    if !TYPES.contains(&s.as_str()) {
                        return Err(self.invalid(format!(
                            "Invalid attribute type name found; type: {s}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
                        )));
                    }
                }
                Condition::AttributeType(p, t)
            }
            "begins_with" => Condition::BeginsWith(next(), next()),
            _ => Condition::Contains(next(), next()),
        };
        super::types::check_condition(&c).map_err(|m| self.invalid(m))?;
        Ok(c)
    }

    fn operand(&mut self) -> Result<Operand, DbError> {
        match self.peek().cloned() {
            Some(Token::ValueRef(alias)) => {
                self.pos += 1;
                let v = self.subs.value(&alias).map_err(|m| self.invalid(m))??;
                Ok(Operand::Value(v))
            }
            Some(Token::Ident(name)) if self.tokens.get(self.pos + 1).map(|(t, _)| t) == Some(&Token::LParen) => {
                if name != "size" {
                    if is_function(&name) {
                        return Err(self.invalid(format!(
                            "The function is not allowed to be used this way in an expression; function: {name}"
                        )));
                    }
                    return Err(self.invalid(format!("Invalid function name; function: {name}")));
                }
                self.pos += 1;
                let arg = self.arguments("size", 1)?.remove(0);
                super::types::size_operand(arg).map_err(|m| self.invalid(m))
            }
            Some(Token::Ident(_)) | Some(Token::NameRef(_)) => Ok(Operand::Path(self.path()?)),
            _ => Err(self.unexpected()),
        }
    }

    fn path(&mut self) -> Result<Path, DbError> {
        let mut path = vec![PathElem::Name(self.path_name()?)];
        loop {
            match self.peek() {
                Some(Token::Dot) => {
                    self.pos += 1;
                    path.push(PathElem::Name(self.path_name()?));
                }
                Some(Token::LBracket) => {
                    self.pos += 1;
                    match self.next() {
                        Some(Token::Number(n)) => path.push(PathElem::Index(n)),
                        _ => {
                            self.pos -= 1;
                            return Err(self.unexpected());
                        }
                    }
                    self.expect(&Token::RBracket)?;
                }
                _ => break,
            }
        }
        if path.len() > 32 {
            return Err(self.invalid("The document path has too many nesting levels; nesting levels: 33"));
        }
        Ok(path)
    }

    fn path_name(&mut self) -> Result<String, DbError> {
        match self.peek().cloned() {
            Some(Token::Ident(name)) => {
                if is_reserved(&name) {
                    return Err(self.invalid(format!(
                        "Attribute name is a reserved keyword; reserved keyword: {name}"
                    )));
                }
                self.pos += 1;
                Ok(name)
            }
            Some(Token::NameRef(alias)) => {
                self.pos += 1;
                self.subs.name(&alias).map_err(|m| self.invalid(m))
            }
            _ => Err(self.unexpected()),
        }
    }

    // ---- update expressions -----------------------------------------------------------------

    pub fn update_expression(mut self) -> Result<Vec<UpdateAction>, DbError> {
        let mut actions = Vec::new();
        let mut seen: Vec<&'static str> = Vec::new();
        while !self.at_end() {
            let clause = match self.peek() {
                Some(Token::Ident(w)) if w.eq_ignore_ascii_case("SET") => "SET",
                Some(Token::Ident(w)) if w.eq_ignore_ascii_case("REMOVE") => "REMOVE",
                Some(Token::Ident(w)) if w.eq_ignore_ascii_case("ADD") => "ADD",
                Some(Token::Ident(w)) if w.eq_ignore_ascii_case("DELETE") => "DELETE",
                _ => return Err(self.unexpected()),
            };
            if seen.contains(&clause) {
                return Err(self.invalid(format!(
                    "The \"{clause}\" section can only be used once in an update expression;"
                )));
            }
            seen.push(clause);
            self.pos += 1;
            loop {
                let action = match clause {
                    "SET" => {
                        let p = self.path()?;
                        self.expect(&Token::Eq)?;
                        UpdateAction::Set(p, self.set_value()?)
                    }
                    "REMOVE" => UpdateAction::Remove(self.path()?),
                    "ADD" => {
                        let p = self.path()?;
                        let v = self.value_operand()?;
                        super::types::check_add_delete("ADD", &v).map_err(|m| self.invalid(m))?;
                        UpdateAction::Add(p, v)
                    }
                    _ => {
                        let p = self.path()?;
                        let v = self.value_operand()?;
                        super::types::check_add_delete("DELETE", &v).map_err(|m| self.invalid(m))?;
                        UpdateAction::Delete(p, v)
                    }
                };
                actions.push(action);
                if self.peek() == Some(&Token::Comma) {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        Ok(actions)
    }

    fn value_operand(&mut self) -> Result<Operand, DbError> {
        match self.peek() {
            Some(Token::ValueRef(_)) => self.operand(),
            _ => Err(self.unexpected()),
        }
    }

    fn set_value(&mut self) -> Result<SetValue, DbError> {
        let left = self.set_operand()?;
        let v = match self.peek() {
            Some(Token::Plus) => {
                self.pos += 1;
                SetValue::Plus(Box::new(left), Box::new(self.set_operand()?))
            }
            Some(Token::Minus) => {
                self.pos += 1;
                SetValue::Minus(Box::new(left), Box::new(self.set_operand()?))
            }
            _ => left,
        };
        super::types::check_set_value(&v).map_err(|m| self.invalid(m))?;
        Ok(v)
    }

    fn set_operand(&mut self) -> Result<SetValue, DbError> {
        if let Some(Token::Ident(name)) = self.peek() {
            if self.tokens.get(self.pos + 1).map(|(t, _)| t) == Some(&Token::LParen) {
                let name = name.clone();
                self.pos += 2;
                self.descend()?;
                let v = match name.as_str() {
                    "if_not_exists" => {
                        let p = match self.peek() {
                            Some(Token::Ident(_)) | Some(Token::NameRef(_))
                                if self.tokens.get(self.pos + 1).map(|(t, _)| t) != Some(&Token::LParen) =>
                            {
                                self.path()?
                            }
                            _ => return Err(self.invalid(
                                "Operator or function requires a document path; operator or function: if_not_exists",
                            )),
                        };
                        self.expect(&Token::Comma)?;
                        SetValue::IfNotExists(p, Box::new(self.set_value()?))
                    }
                    "list_append" => {
                        let a = self.set_value()?;
                        self.expect(&Token::Comma)?;
                        SetValue::ListAppend(Box::new(a), Box::new(self.set_value()?))
                    }
                    other => {
                        return Err(self.invalid(format!("Invalid function name; function: {other}")));
                    }
                };
                self.ascend();
                self.expect(&Token::RParen)?;
                return Ok(v);
            }
        }
        Ok(SetValue::Operand(self.operand()?))
    }

    // ---- projections ------------------------------------------------------------------------

    pub fn projection_expression(mut self) -> Result<Vec<Path>, DbError> {
        let mut paths = vec![self.path()?];
        while self.peek() == Some(&Token::Comma) {
            self.pos += 1;
            paths.push(self.path()?);
        }
        check_overlaps(&paths, self.label())?;
        self.finish(paths)
    }
}

/// DynamoDB rejects two paths where one is a prefix of the other (they overlap), and two that
/// go on from the same place one as a map, the other as a list (they conflict).
pub fn check_overlaps(paths: &[Path], label: &str) -> Result<(), DbError> {
    for (i, a) in paths.iter().enumerate() {
        for b in &paths[i + 1..] {
            let common = a.iter().zip(b.iter()).take_while(|(x, y)| x == y).count();
            let problem = if common == a.len().min(b.len()) {
                "overlap"
            } else if matches!(
                (&a[common], &b[common]),
                (PathElem::Name(_), PathElem::Index(_)) | (PathElem::Index(_), PathElem::Name(_))
            ) {
                "conflict"
            } else {
                continue;
            };
            return Err(DbError::validation(format!(
                "Invalid {label}: Two document paths {problem} with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
                super::path_display(a),
                super::path_display(b)
            )));
        }
    }
    Ok(())
}

/// The functions of the expression languages (a name used where none is allowed gets its own
/// error, an unknown name another).
fn is_function(name: &str) -> bool {
    matches!(
        name,
        "attribute_exists"
            | "attribute_not_exists"
            | "attribute_type"
            | "begins_with"
            | "contains"
            | "size"
            | "if_not_exists"
            | "list_append"
    )
}
