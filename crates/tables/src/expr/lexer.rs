//! Tokens of the expression languages.

use crate::error::DbError;

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// A bare attribute name or keyword (`status`, `AND`, `attribute_exists`).
    Ident(String),
    /// `#name`.
    NameRef(String),
    /// `:value`.
    ValueRef(String),
    Number(usize),
    Dot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
}

/// A token and where it starts in the expression (byte offset).
pub type Spanned = (Token, usize);

pub fn tokenize(text: &str, label: &str) -> Result<Vec<Spanned>, DbError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let single = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'.' => Some(Token::Dot),
            b'[' => Some(Token::LBracket),
            b']' => Some(Token::RBracket),
            b'(' => Some(Token::LParen),
            b')' => Some(Token::RParen),
            b',' => Some(Token::Comma),
            b'=' => Some(Token::Eq),
            b'+' => Some(Token::Plus),
            b'-' => Some(Token::Minus),
            _ => None,
        };
        if let Some(t) = single {
            out.push((t, start));
            i += 1;
            continue;
        }
        match c {
            b'<' => {
                let (t, n) = match bytes.get(i + 1) {
                    Some(b'=') => (Token::Le, 2),
                    Some(b'>') => (Token::Ne, 2),
                    _ => (Token::Lt, 1),
                };
                out.push((t, start));
                i += n;
            }
            b'>' => {
                let (t, n) = if bytes.get(i + 1) == Some(&b'=') {
                    (Token::Ge, 2)
                } else {
                    (Token::Gt, 1)
                };
                out.push((t, start));
                i += n;
            }
            b'#' | b':' => {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                if i == start + 1 {
                    return Err(syntax(label, &text[start..start + 1], text));
                }
                let word = text[start..i].to_owned();
                out.push((
                    if c == b'#' {
                        Token::NameRef(word)
                    } else {
                        Token::ValueRef(word)
                    },
                    start,
                ));
            }
            b'0'..=b'9' => {
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let n = text[start..i]
                    .parse()
                    .map_err(|_| syntax(label, &text[start..i], text))?;
                out.push((Token::Number(n), start));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push((Token::Ident(text[start..i].to_owned()), start));
            }
            _ => {
                let ch = text[start..].chars().next().unwrap_or('?');
                return Err(DbError::validation(format!(
                    "Invalid {label}: Invalid character encountered; character: \"{ch}\", near: \"{}\"",
                    near(text, start)
                )));
            }
        }
    }
    Ok(out)
}

pub fn near(text: &str, at: usize) -> String {
    let start = text[..at].char_indices().rev().nth(10).map(|(i, _)| i).unwrap_or(0);
    let end = text[at..]
        .char_indices()
        .nth(12)
        .map(|(i, _)| at + i)
        .unwrap_or(text.len());
    text[start..end].to_owned()
}

pub fn syntax(label: &str, token: &str, near_text: &str) -> DbError {
    DbError::validation(format!(
        "Invalid {label}: Syntax error; token: \"{token}\", near: \"{near_text}\""
    ))
}
