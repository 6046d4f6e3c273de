//! `${...}` variable resolution, as the Serverless Framework v3/v4 does it for the sources that
//! make sense on one machine: `self`, `opt`, `env`, `sls`, `file(...)` and `aws`.
//!
//! Resolution is lazy and path-driven: resolving `${self:custom.table}` first resolves what lies
//! on the way to `custom.table` (which may itself come from a variable), then the target. A path
//! being resolved is kept on a stack so that cycles are reported instead of overflowing.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sylph_model::LOCAL_ACCOUNT_ID;

use crate::error::Problem;
use crate::yaml::{self, Mark, Node, Value};

/// Everything variables can read from outside the file.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// CLI options (`--stage`, `--region` and any other `--name value`), for `${opt:...}`.
    pub options: HashMap<String, String>,
    /// The environment, for `${env:...}`.
    pub env: HashMap<String, String>,
    /// The folder holding the manifest; `${file(...)}` paths are relative to it.
    pub service_dir: PathBuf,
    /// Values for the sources AWS resolves (`${ssm:…}`, `${param:…}`, …).
    pub params: crate::params::Params,
    /// What `.env` files beside the manifest set (also in `env` when the environment does not
    /// set them itself): serverless-dotenv-plugin hands them to every function.
    pub dotenv: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

pub(crate) fn path_string(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

/// Sources that exist on AWS but cannot be read on a local machine. A variable from one of
/// them counts as missing, so a fallback (`${ssm:/x, 'local'}`) still works.
pub(crate) const REMOTE_SOURCES: &[&str] = &[
    "ssm",
    "cf",
    "s3",
    "param",
    "secretsmanager",
    "terraform",
    "git",
    "construct",
];

pub(crate) struct Resolver<'a> {
    pub root: Node,
    ctx: &'a Context,
    in_progress: Vec<Vec<Seg>>,
    /// Strings being resolved right now, one inside another; bounded by [`MAX_VARIABLE_DEPTH`].
    depth: usize,
    /// What resolution has produced so far (bytes of text, one per value copied); bounded by
    /// [`MAX_RESOLVED_BYTES`].
    produced: usize,
}

/// How much variables may produce in all. `s1: ${self:s0}${self:s0}`, `s2: ${self:s1}${self:s1}`,
/// … doubles at each step: 35 lines would ask for gigabytes.
pub const MAX_RESOLVED_BYTES: usize = 16 * 1024 * 1024;

/// How many variables may be resolved one inside another (`a: ${self:b}`, `b: ${self:c}`, …, or
/// `${${${…}}}`). Each level recurses; a chain of 5,000 overflowed the stack with no message.
pub const MAX_VARIABLE_DEPTH: usize = 50;

/// Why a single fallback item produced nothing; reported when no item resolves.
struct Missing(String);

impl<'a> Resolver<'a> {
    pub fn new(root: Node, ctx: &'a Context) -> Resolver<'a> {
        Resolver {
            root,
            ctx,
            in_progress: Vec::new(),
            depth: 0,
            produced: 0,
        }
    }

    fn node(&self, path: &[Seg]) -> Option<&Node> {
        let mut cur = &self.root;
        for seg in path {
            cur = match (seg, &cur.value) {
                (Seg::Key(k), Value::Map(_)) => cur.get(k)?,
                (Seg::Index(i), Value::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    fn node_mut(&mut self, path: &[Seg]) -> Option<&mut Node> {
        let mut cur = &mut self.root;
        for seg in path {
            cur = match seg {
                Seg::Key(k) => cur.get_mut(k)?,
                Seg::Index(i) => match &mut cur.value {
                    Value::Seq(items) => items.get_mut(*i)?,
                    _ => return None,
                },
            };
        }
        Some(cur)
    }

    /// Resolve every variable in the subtree at `path`.
    pub fn resolve_deep(&mut self, path: &mut Vec<Seg>) -> Result<(), Problem> {
        self.resolve_shallow(path)?;
        let children: Vec<Seg> = match self.node(path).map(|n| &n.value) {
            Some(Value::Map(entries)) => entries.iter().map(|(k, _)| Seg::Key(k.clone())).collect(),
            Some(Value::Seq(items)) => (0..items.len()).map(Seg::Index).collect(),
            _ => return Ok(()),
        };
        for child in children {
            path.push(child);
            let result = self.resolve_deep(path);
            path.pop();
            result?;
        }
        Ok(())
    }

    /// Resolve the node at `path` itself if it is a string holding variables.
    fn resolve_shallow(&mut self, path: &[Seg]) -> Result<(), Problem> {
        let Some(node) = self.node(path) else { return Ok(()) };
        let Value::Str(text) = &node.value else { return Ok(()) };
        if node.resolved || !text.contains("${") {
            return Ok(());
        }
        if self.in_progress.iter().any(|p| p == path) {
            return Err(
                Problem::new(node.mark, path_string(path), "circular variable reference")
                    .help("a variable here refers, directly or through others, back to this value"),
            );
        }
        let (text, mark) = (text.clone(), node.mark);
        self.in_progress.push(path.to_vec());
        let result = self.resolve_string(&text, mark, path);
        self.in_progress.pop();
        let mut value = result?;
        value.resolved = true;
        if let Some(slot) = self.node_mut(path) {
            *slot = value;
        }
        Ok(())
    }

    /// Resolve `path` (walking through values that are themselves variables) and return a
    /// fully resolved copy, or `None` if nothing is there.
    fn lookup(&mut self, path: &[Seg]) -> Result<Option<Node>, Problem> {
        for depth in 0..path.len() {
            self.resolve_shallow(&path[..depth])?;
            if self.node(&path[..=depth]).is_none() {
                return Ok(None);
            }
        }
        let mut owned = path.to_vec();
        self.resolve_deep(&mut owned)?;
        let Some(node) = self.node(path) else { return Ok(None) };
        let weight = weight(node);
        let mark = node.mark;
        self.charge(weight, mark, path)?;
        Ok(self.node(path).cloned())
    }

    /// Count `amount` more produced, failing past [`MAX_RESOLVED_BYTES`].
    fn charge(&mut self, amount: usize, mark: Mark, path: &[Seg]) -> Result<(), Problem> {
        self.produced = self.produced.saturating_add(amount);
        if self.produced > MAX_RESOLVED_BYTES {
            return Err(Problem::new(
                mark,
                path_string(path),
                format!("variables expand to more than {} MB", MAX_RESOLVED_BYTES >> 20),
            )
            .help("a variable that repeats another, which repeats another, grows exponentially"));
        }
        Ok(())
    }

    /// Resolve a string that contains `${...}`. A string that is exactly one variable takes the
    /// variable's value with its type (a number, a mapping, …); otherwise the pieces are joined.
    fn resolve_string(&mut self, text: &str, mark: Mark, path: &[Seg]) -> Result<Node, Problem> {
        if self.depth >= MAX_VARIABLE_DEPTH {
            return Err(Problem::new(
                mark,
                path_string(path),
                format!("variables refer to variables more than {MAX_VARIABLE_DEPTH} levels deep"),
            )
            .help("point the variable at its final value instead of through a long chain"));
        }
        self.depth += 1;
        let result = self.resolve_string_within_depth(text, mark, path);
        self.depth -= 1;
        result
    }

    fn resolve_string_within_depth(&mut self, text: &str, mark: Mark, path: &[Seg]) -> Result<Node, Problem> {
        let mut parts = split_variables(text).map_err(|m| Problem::new(mark, path_string(path), m))?;
        if path.iter().any(|s| matches!(s, Seg::Key(k) if k == "Fn::Sub")) {
            // `${AWS::Region}` and `${Table.Arn}` inside `Fn::Sub` belong to CloudFormation.
            for part in &mut parts {
                if let Part::Var(inner) = part {
                    if is_cloudformation_reference(inner) {
                        *part = Part::Lit(format!("${{{inner}}}"));
                    }
                }
            }
            if parts.iter().all(|p| matches!(p, Part::Lit(_))) {
                let text: String = parts
                    .iter()
                    .map(|p| match p {
                        Part::Lit(s) | Part::Var(s) => s.as_str(),
                    })
                    .collect();
                return Ok(Node::new(Value::Str(text), mark));
            }
        }
        if let [Part::Var(inner)] = parts.as_slice() {
            return self.resolve_variable(inner, mark, path);
        }
        let mut out = String::with_capacity(text.len());
        for part in parts {
            match part {
                Part::Lit(s) => out.push_str(&s),
                Part::Var(inner) => {
                    let value = self.resolve_variable(&inner, mark, path)?;
                    match value.value {
                        Value::Str(s) => out.push_str(&s),
                        Value::Int(i) => {
                            let _ = write!(out, "{i}");
                        }
                        Value::Float(f) => {
                            let _ = write!(out, "{f}");
                        }
                        Value::Bool(b) => {
                            let _ = write!(out, "{b}");
                        }
                        other => {
                            return Err(Problem::new(
                                mark,
                                path_string(path),
                                format!("`${{{inner}}}` is {} and cannot be part of a string", other.kind()),
                            )
                            .help("use the variable as the whole value, or point it at a string"))
                        }
                    }
                }
            }
        }
        self.charge(out.len(), mark, path)?;
        Ok(Node::new(Value::Str(out), mark))
    }

    /// Resolve the inside of one `${...}`, trying comma-separated fallbacks in order.
    fn resolve_variable(&mut self, inner: &str, mark: Mark, path: &[Seg]) -> Result<Node, Problem> {
        let items = split_fallbacks(inner);
        let mut last_missing = None;
        for item in &items {
            let item = item.trim();
            // Nested variables in one item are resolved only when that item is tried.
            let item_text = if item.contains("${") {
                match self.resolve_string(item, mark, path)?.value {
                    Value::Str(s) => s,
                    other => {
                        return Err(Problem::new(
                            mark,
                            path_string(path),
                            format!(
                                "nested variable in `${{{inner}}}` is {}, expected a string",
                                other.kind()
                            ),
                        ))
                    }
                }
            } else {
                item.to_owned()
            };
            match self.resolve_item(&item_text, mark, path)? {
                Ok(node) if node.value != Value::Null => return Ok(node),
                Ok(_) => last_missing = Some(Missing(format!("`{item_text}` is null"))),
                Err(missing) => last_missing = Some(missing),
            }
        }
        let reason = last_missing.map(|m| m.0).unwrap_or_default();
        Err(Problem::new(
            mark,
            path_string(path),
            format!("cannot resolve variable `${{{inner}}}`: {reason}"),
        )
        .help(format!(
            "set the value it refers to, or add a fallback: `${{{}, 'default'}}`",
            items.first().map(|s| s.trim()).unwrap_or(inner)
        )))
    }

    /// Resolve one fallback item: a literal or a `source:address` reference.
    fn resolve_item(&mut self, item: &str, mark: Mark, path: &[Seg]) -> Result<Result<Node, Missing>, Problem> {
        let lit = |v: Value| Ok(Ok(Node::new(v, mark)));
        if let Some(s) = unquote(item) {
            return lit(Value::Str(s.to_owned()));
        }
        match item {
            "true" => return lit(Value::Bool(true)),
            "false" => return lit(Value::Bool(false)),
            "null" => return lit(Value::Null),
            _ => {}
        }
        if let Ok(i) = item.parse::<i64>() {
            return lit(Value::Int(i));
        }
        if let Ok(f) = item.parse::<f64>() {
            return lit(Value::Float(f));
        }
        let problem = |message: String| Problem::new(mark, path_string(path), message);

        if let Some(rest) = item.strip_prefix("file(") {
            let Some((file, address)) = rest.split_once(')') else {
                return Err(problem(format!("`{item}` is missing the closing `)`")));
            };
            let address = address.strip_prefix(':').unwrap_or(address);
            return self.resolve_file(file.trim(), address.trim(), mark, path);
        }
        let Some((source, address)) = item.split_once(':') else {
            return Err(
                problem(format!("`{item}` is not a variable: expected `source:address`"))
                    .help("known sources: self, opt, env, sls, file(...), aws; quote literal strings"),
            );
        };
        let address = address.trim();
        match source.trim() {
            "self" => {
                let segs = address_segments(address);
                Ok(self
                    .lookup(&segs)?
                    .ok_or_else(|| Missing(format!("`{address}` is not set in this file"))))
            }
            "opt" => Ok(self
                .option(address)
                .map(|v| Node::new(Value::Str(v), mark))
                .ok_or_else(|| Missing(format!("no `--{address}` option was given")))),
            "env" => Ok(self
                .ctx
                .env
                .get(address)
                .map(|v| Node::new(Value::Str(v.clone()), mark))
                .ok_or_else(|| Missing(format!("environment variable `{address}` is not set")))),
            "sls" => {
                match address {
                    "stage" => Ok(Ok(Node::new(Value::Str(self.stage()?), mark))),
                    "instanceId" => Ok(Ok(Node::new(Value::Str(instance_id()), mark))),
                    other => Err(problem(format!("unknown `sls` variable `{other}`"))
                        .help("known: ${sls:stage}, ${sls:instanceId}")),
                }
            }
            "aws" => {
                match address {
                    "region" => Ok(Ok(Node::new(Value::Str(self.region()?), mark))),
                    "accountId" => Ok(Ok(Node::new(Value::Str(LOCAL_ACCOUNT_ID.into()), mark))),
                    other => Err(problem(format!("unknown `aws` variable `{other}`"))
                        .help("known: ${aws:region}, ${aws:accountId}")),
                }
            }
            remote if REMOTE_SOURCES.contains(&remote) => {
                // `${ssm:/path~true}`: the Framework's old "decrypt" suffix.
                let address = address
                    .strip_suffix("~true")
                    .or_else(|| address.strip_suffix("~false"))
                    .unwrap_or(address);
                if let Some(v) = self.ctx.params.get(remote, address) {
                    return Ok(Ok(Node::new(Value::Str(v.to_owned()), mark)));
                }
                if remote == "param" {
                    if let Some(node) = self.stage_param(address)? {
                        return Ok(Ok(node));
                    }
                }
                Ok(Err(Missing(format!(
                    "the `{remote}` source is resolved by AWS when deploying; {}",
                    self.ctx.params.how_to_set(remote, address)
                ))))
            }
            other => Err(problem(format!("unknown variable source `{other}` in `${{{item}}}`"))
                .help("known sources: self, opt, env, sls, file(...), aws")),
        }
    }

    /// `${param:NAME}` from the manifest itself: `params.<stage>.NAME`, then
    /// `params.default.NAME` (Framework v3/v4), or the same under `stages:` (v4).
    fn stage_param(&mut self, name: &str) -> Result<Option<Node>, Problem> {
        let stage = self.stage()?;
        for (top, inner) in [("params", None), ("stages", Some("params"))] {
            for group in [stage.as_str(), "default"] {
                let mut path = vec![Seg::Key(top.into()), Seg::Key(group.into())];
                if let Some(inner) = inner {
                    path.push(Seg::Key(inner.into()));
                }
                path.push(Seg::Key(name.into()));
                if let Some(node) = self.lookup(&path)? {
                    if node.value != Value::Null {
                        return Ok(Some(node));
                    }
                }
            }
        }
        Ok(None)
    }

    fn option(&self, name: &str) -> Option<String> {
        self.ctx.options.get(name).cloned()
    }

    /// `${sls:stage}`: the `--stage` option, else `provider.stage` (which defaults to `dev`).
    pub fn stage(&mut self) -> Result<String, Problem> {
        self.option_or_provider("stage", "dev")
    }

    /// `${aws:region}`: the `--region` option, else `provider.region` (default `us-east-1`).
    pub fn region(&mut self) -> Result<String, Problem> {
        self.option_or_provider("region", "us-east-1")
    }

    fn option_or_provider(&mut self, key: &str, default: &str) -> Result<String, Problem> {
        if let Some(v) = self.option(key) {
            return Ok(v);
        }
        let path = [Seg::Key("provider".into()), Seg::Key(key.into())];
        Ok(match self.lookup(&path)?.map(|n| n.value) {
            Some(Value::Str(s)) => s,
            _ => default.to_owned(),
        })
    }

    fn resolve_file(
        &mut self,
        file: &str,
        address: &str,
        mark: Mark,
        path: &[Seg],
    ) -> Result<Result<Node, Missing>, Problem> {
        let file = unquote(file).unwrap_or(file);
        let full = self.ctx.service_dir.join(file);
        let problem = |message: String| Problem::new(mark, path_string(path), message);
        let ext = Path::new(file).extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "js" | "cjs" | "mjs" | "ts") {
            return Err(
                problem(format!("`${{file({file})}}`: JavaScript files are not run by sylph"))
                    .help("put the values in a .yml or .json file, or give them with ${env:…} or --param"),
            );
        }
        if std::fs::metadata(&full).is_ok_and(|m| m.len() > MAX_RESOLVED_BYTES as u64) {
            return Err(problem(format!(
                "`{file}` is larger than {} MB",
                MAX_RESOLVED_BYTES >> 20
            )));
        }
        let text = match std::fs::read_to_string(&full) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Err(Missing(format!("file `{file}` does not exist"))))
            }
            Err(e) => return Err(problem(format!("cannot read `{file}`: {e}"))),
        };
        // Any other file is its text, as the Framework reads it (a key, a certificate, a query).
        if !matches!(ext, "yml" | "yaml" | "json") {
            if !address.is_empty() {
                return Err(problem(format!(
                    "`${{file({file}):{address}}}`: `{file}` is read as plain text, which has no `{address}`"
                ))
                .help("address values only in .yml, .yaml or .json files"));
            }
            return Ok(Ok(Node::new(Value::Str(text), mark)));
        }
        let mut doc = match ext {
            "yml" | "yaml" => yaml::parse(&text)
                .map_err(|e| problem(format!("`{file}` line {}:{}: {}", e.mark.line, e.mark.col, e.message)))?,
            _ => {
                let json: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| problem(format!("`{file}` is not valid JSON: {e}")))?;
                Node::from_json(&json, mark)
            }
        };
        doc.remark(mark);
        let mut target = &doc;
        for seg in address_segments(address) {
            let next = match (&seg, &target.value) {
                (Seg::Key(k), _) => target.get(k),
                (Seg::Index(i), Value::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => target = n,
                None => return Ok(Err(Missing(format!("`{address}` is not set in `{file}`")))),
            }
        }
        Ok(Ok(target.clone()))
    }
}

/// `AWS::Region`, `MyTable`, `MyTable.Arn`, `!Literal`: names `Fn::Sub` substitutes itself.
/// What copying `node` costs: one per value and the bytes of its text.
fn weight(node: &Node) -> usize {
    match &node.value {
        Value::Str(s) => 1 + s.len(),
        Value::Seq(items) => items.iter().fold(1, |acc, n| acc.saturating_add(weight(n))),
        Value::Map(entries) => entries
            .iter()
            .fold(1, |acc, (k, n)| acc.saturating_add(k.len() + weight(n))),
        _ => 1,
    }
}

fn is_cloudformation_reference(inner: &str) -> bool {
    let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
    if inner.starts_with('!') {
        return true;
    }
    if let Some((a, b)) = inner.split_once("::") {
        return ident(a) && ident(b);
    }
    match inner.split_once('.') {
        Some((a, b)) => ident(a) && ident(b),
        None => ident(inner),
    }
}

fn address_segments(address: &str) -> Vec<Seg> {
    if address.is_empty() {
        return Vec::new();
    }
    address
        .split('.')
        .map(|s| match s.parse::<usize>() {
            Ok(i) => Seg::Index(i),
            Err(_) => Seg::Key(s.to_owned()),
        })
        .collect()
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    if s.len() >= 2 && ((s.starts_with('\'') && s.ends_with('\'')) || (s.starts_with('"') && s.ends_with('"'))) {
        Some(&s[1..s.len() - 1])
    } else {
        None
    }
}

fn instance_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}", nanos ^ u128::from(std::process::id()))
}

#[derive(Debug, PartialEq)]
enum Part {
    Lit(String),
    Var(String),
}

/// Split a string into literal text and the insides of top-level `${...}`; `\${` is a literal.
fn split_variables(text: &str) -> Result<Vec<Part>, String> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && text[i + 1..].starts_with("${") {
            lit.push_str("${");
            i += 3;
            continue;
        }
        if text[i..].starts_with("${") {
            let start = i + 2;
            let mut depth = 1;
            let mut j = start;
            while j < bytes.len() {
                match bytes[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            if depth != 0 {
                return Err(format!("unterminated variable in `{text}`: missing `}}`"));
            }
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Var(text[start..j].to_owned()));
            i = j + 1;
            continue;
        }
        let ch = text[i..].chars().next().unwrap_or_default();
        lit.push(ch);
        i += ch.len_utf8();
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

/// Split `a, b, 'c, d'` at commas that are outside quotes, parentheses and nested `${}`.
fn split_fallbacks(inner: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let (mut depth, mut quote) = (0i32, None::<char>);
    for ch in inner.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(ch),
            (None, '{' | '(') => depth += 1,
            (None, '}' | ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                items.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    items.push(cur);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_variables_and_escapes() {
        assert_eq!(
            split_variables("a-${self:x}-\\${literal}").unwrap(),
            vec![
                Part::Lit("a-".into()),
                Part::Var("self:x".into()),
                Part::Lit("-${literal}".into())
            ]
        );
        assert_eq!(
            split_variables("${self:custom.${opt:stage}}").unwrap(),
            vec![Part::Var("self:custom.${opt:stage}".into())]
        );
        assert!(split_variables("${self:x").is_err());
    }

    #[test]
    fn splits_fallbacks_outside_quotes() {
        assert_eq!(
            split_fallbacks("opt:stage, 'a, b', ${env:X, 'y'}"),
            vec!["opt:stage", " 'a, b'", " ${env:X, 'y'}"]
        );
    }
}
