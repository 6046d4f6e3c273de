//! A YAML tree that remembers where every value came from.
//!
//! Off-the-shelf YAML loaders drop positions and custom tags, and Sylph needs both: every
//! error names file:line:col, and CloudFormation short forms (`!Ref`, `!GetAtt`, …) must survive
//! as data. So we build our own tree from the parser's event stream.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based position in the source file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mark {
    pub line: usize,
    pub col: usize,
}

impl From<Marker> for Mark {
    fn from(m: Marker) -> Mark {
        // yaml-rust2 reports 1-based lines and 0-based columns.
        Mark {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub mark: Mark,
    /// Set once a string has been through variable resolution, so that an escaped `\${`
    /// that became a literal `${` is never resolved a second time.
    pub resolved: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order; keys are always strings (other scalars are stringified).
    Map(Vec<(String, Node)>),
}

impl Node {
    pub fn new(value: Value, mark: Mark) -> Node {
        Node {
            value,
            mark,
            resolved: false,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short noun for error messages ("a string", "a list", …).
    pub fn kind(&self) -> &'static str {
        self.value.kind()
    }

    /// Convert to JSON; CloudFormation short forms are already long-form maps here.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(entries.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    /// Build a tree from JSON (used for values that come from `${file(x.json)}`).
    pub fn from_json(json: &serde_json::Value, mark: Mark) -> Node {
        use serde_json::Value as J;
        let value = match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::Str(s.clone()),
            J::Array(items) => Value::Seq(items.iter().map(|i| Node::from_json(i, mark)).collect()),
            J::Object(map) => Value::Map(map.iter().map(|(k, v)| (k.clone(), Node::from_json(v, mark))).collect()),
        };
        Node::new(value, mark)
    }

    /// Move every position in this subtree to `mark` (used when a value is imported from
    /// another file, so errors point at the `${file(...)}` that brought it in).
    pub fn remark(&mut self, mark: Mark) {
        self.mark = mark;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.remark(mark)),
            Value::Map(entries) => entries.iter_mut().for_each(|(_, n)| n.remark(mark)),
            _ => {}
        }
    }
}

impl Value {
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub mark: Mark,
    pub message: String,
}

/// The largest manifest read (a real `serverless.yml` is a few kilobytes).
pub const MAX_SOURCE_BYTES: usize = 4 * 1024 * 1024;
/// The most values a document may hold once aliases are expanded. Aliases copy what they
/// point at, so a few lines of nested aliases (an "alias bomb") can stand for billions of
/// values; a real manifest holds a few thousand.
pub const MAX_NODES: usize = 200_000;
/// The deepest nesting of mappings and sequences. Everything downstream walks the tree
/// recursively, so input must not decide an unbounded depth.
pub const MAX_DEPTH: usize = 64;

/// Parse one YAML document. An empty document is `Null`.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(SyntaxError {
            mark: Mark { line: 1, col: 1 },
            message: format!(
                "the file is {} bytes; the most Sylph reads is {MAX_SOURCE_BYTES}",
                source.len()
            ),
        });
    }
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(source);
    parser.load(&mut builder, false).map_err(|e| SyntaxError {
        mark: Mark::from(*e.marker()),
        message: e.info().to_owned(),
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder
        .root
        .unwrap_or_else(|| Node::new(Value::Null, Mark { line: 1, col: 1 })))
}

enum Frame {
    Seq {
        items: Vec<Node>,
        mark: Mark,
        anchor: usize,
        tag: Option<Tag>,
        /// Values inside, aliases expanded.
        size: usize,
        /// Levels of nesting inside, aliases expanded.
        height: usize,
    },
    Map {
        entries: Vec<(String, Node)>,
        key: Option<String>,
        /// Where each key of `entries` was written, for the duplicate-key error.
        key_marks: Vec<Mark>,
        mark: Mark,
        anchor: usize,
        tag: Option<Tag>,
        size: usize,
        height: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Each anchored node with its size (values inside it) and height (levels of nesting
    /// inside it), aliases expanded.
    anchors: HashMap<usize, (Node, usize, usize)>,
    root: Option<Node>,
    error: Option<SyntaxError>,
    /// Values built so far, aliases expanded; bounded by [`MAX_NODES`].
    nodes: usize,
}

impl Builder {
    /// Add a finished node of `size` values and `height` levels to its parent.
    fn push_node(&mut self, node: Node, anchor: usize, size: usize, height: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size, height));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq {
                items,
                size: total,
                height: inner,
                ..
            }) => {
                *total += size;
                *inner = (*inner).max(height + 1);
                items.push(node)
            }
            Some(Frame::Map {
                entries,
                key,
                key_marks,
                size: total,
                height: inner,
                ..
            }) => {
                *total += size;
                *inner = (*inner).max(height + 1);
                match key.take() {
                    None => {
                        key_marks.push(node.mark);
                        *key = Some(key_string(&node))
                    }
                    Some(k) => entries.push((k, node)),
                }
            }
        }
    }

    /// Count `size` more values, failing once the document holds more than [`MAX_NODES`].
    fn grow(&mut self, mark: Mark, size: usize) -> bool {
        self.nodes = self.nodes.saturating_add(size);
        if self.nodes > MAX_NODES {
            self.fail(
                mark,
                format!("the document expands to more than {MAX_NODES} values (aliases are copied where they are used; is this an alias bomb?)"),
            );
            return false;
        }
        true
    }

    fn fail(&mut self, mark: Mark, message: String) {
        if self.error.is_none() {
            self.error = Some(SyntaxError { mark, message });
        }
    }

    fn open(&mut self, mark: Mark, frame: Frame) {
        if self.stack.len() >= MAX_DEPTH {
            return self.fail(
                mark,
                format!("mappings and sequences nest more than {MAX_DEPTH} levels deep"),
            );
        }
        if self.grow(mark, 1) {
            self.stack.push(frame);
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, marker: Marker) {
        let mark = Mark::from(marker);
        // After the first error nothing more is built: the error is what the user sees, and an
        // alias bomb must not go on expanding.
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let value = scalar_value(text, style, tag.as_ref());
                let node = match apply_tag(Node::new(value, mark), tag.as_ref()) {
                    Ok(node) => node,
                    Err(message) => return self.fail(mark, message),
                };
                if self.grow(mark, 1) {
                    self.push_node(node, anchor, 1, 0);
                }
            }
            Event::SequenceStart(anchor, tag) => self.open(
                mark,
                Frame::Seq {
                    items: Vec::new(),
                    mark,
                    anchor,
                    tag,
                    size: 1,
                    height: 1,
                },
            ),
            Event::MappingStart(anchor, tag) => self.open(
                mark,
                Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    key_marks: Vec::new(),
                    mark,
                    anchor,
                    tag,
                    size: 1,
                    height: 1,
                },
            ),
            Event::SequenceEnd => {
                if let Some(Frame::Seq {
                    items,
                    mark,
                    anchor,
                    tag,
                    size,
                    height,
                }) = self.stack.pop()
                {
                    match apply_tag(Node::new(Value::Seq(items), mark), tag.as_ref()) {
                        Ok(node) => self.push_node(node, anchor, size, height),
                        Err(message) => self.fail(mark, message),
                    }
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    entries,
                    key_marks,
                    mark,
                    anchor,
                    tag,
                    size,
                    height,
                    ..
                }) = self.stack.pop()
                {
                    // YAML forbids a key twice in one mapping, and the Framework refuses it;
                    // silently keeping one of the two would run something the user did not see.
                    if let Some((first, second)) = first_duplicate(&entries) {
                        let (at, was) = (key_marks.get(second), key_marks.get(first));
                        return self.fail(
                            at.copied().unwrap_or(mark),
                            format!(
                                "duplicate key `{}` (first written at line {})",
                                entries[second].0,
                                was.map_or(0, |m| m.line)
                            ),
                        );
                    }
                    let entries = apply_merge_keys(entries);
                    match apply_tag(Node::new(Value::Map(entries), mark), tag.as_ref()) {
                        Ok(node) => self.push_node(node, anchor, size, height),
                        Err(message) => self.fail(mark, message),
                    }
                }
            }
            Event::Alias(id) => {
                let Some((size, height)) = self.anchors.get(&id).map(|(_, size, height)| (*size, *height)) else {
                    return self.fail(mark, "alias to an unknown anchor".into());
                };
                // A copy lands at its full height: nesting aliases in aliases must not get past
                // the depth limit.
                if self.stack.len() + height > MAX_DEPTH {
                    return self.fail(
                        mark,
                        format!("mappings and sequences nest more than {MAX_DEPTH} levels deep (through aliases)"),
                    );
                }
                // Count before copying: the copy is what would exhaust memory.
                if self.grow(mark, size) {
                    let node = self.anchors[&id].0.clone();
                    self.push_node(node, 0, size, height);
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {}
        }
    }
}

fn key_string(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Seq(_) | Value::Map(_) => serde_json::to_string(&node.to_json()).unwrap_or_default(),
    }
}

/// The first key written twice: (index of its first entry, index of the second). Sorting
/// keeps a mapping with many keys linear-logarithmic rather than quadratic.
fn first_duplicate(entries: &[(String, Node)]) -> Option<(usize, usize)> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|a, b| entries[*a].0.cmp(&entries[*b].0).then(a.cmp(b)));
    order
        .windows(2)
        .filter(|w| entries[w[0]].0 == entries[w[1]].0 && entries[w[0]].0 != "<<")
        .map(|w| (w[0], w[1]))
        .min_by_key(|(_, second)| *second)
}

/// `<<: *base` merges the entries of `base` that the mapping does not set itself.
fn apply_merge_keys(entries: Vec<(String, Node)>) -> Vec<(String, Node)> {
    if !entries.iter().any(|(k, _)| k == "<<") {
        return entries;
    }
    let mut own: Vec<(String, Node)> = Vec::with_capacity(entries.len());
    let mut merged: Vec<Node> = Vec::new();
    for (k, v) in entries {
        if k == "<<" {
            match v.value {
                Value::Seq(items) => merged.extend(items),
                _ => merged.push(v),
            }
        } else {
            own.push((k, v));
        }
    }
    for source in merged {
        if let Value::Map(src) = source.value {
            for (k, v) in src {
                if !own.iter().any(|(ok, _)| *ok == k) {
                    own.push((k, v));
                }
            }
        }
    }
    own
}

fn scalar_value(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if style != TScalarStyle::Plain {
        return Value::Str(text);
    }
    if let Some(tag) = tag {
        // An explicit tag (`!!str 123`, `!Ref Foo`) makes the scalar a string.
        if !(tag.handle == "tag:yaml.org,2002:" && tag.suffix != "str") {
            return Value::Str(text);
        }
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Int(i);
        }
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Value::Int(i);
        }
    }
    let looks_numeric = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Int(i);
        }
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(text)
}

/// CloudFormation short-form tags and the functions they stand for.
const CFN_TAGS: &[(&str, &str)] = &[
    ("Ref", "Ref"),
    ("Condition", "Condition"),
    ("GetAtt", "Fn::GetAtt"),
    ("Sub", "Fn::Sub"),
    ("Join", "Fn::Join"),
    ("Select", "Fn::Select"),
    ("Split", "Fn::Split"),
    ("If", "Fn::If"),
    ("Equals", "Fn::Equals"),
    ("Not", "Fn::Not"),
    ("And", "Fn::And"),
    ("Or", "Fn::Or"),
    ("FindInMap", "Fn::FindInMap"),
    ("Base64", "Fn::Base64"),
    ("Cidr", "Fn::Cidr"),
    ("GetAZs", "Fn::GetAZs"),
    ("ImportValue", "Fn::ImportValue"),
    ("Transform", "Fn::Transform"),
];

/// Turn `!Ref X` into `{Ref: X}` (and so on), the long form CloudFormation also accepts.
fn apply_tag(node: Node, tag: Option<&Tag>) -> Result<Node, String> {
    let Some(tag) = tag else { return Ok(node) };
    if tag.handle != "!" {
        // Standard tags (`!!str`, `!!map`, …) were handled when typing the scalar.
        return Ok(node);
    }
    let Some((_, long)) = CFN_TAGS.iter().find(|(short, _)| *short == tag.suffix) else {
        return Err(format!(
            "unknown tag `!{}`; YAML tags here are CloudFormation intrinsics such as !Ref, !GetAtt, !Sub, !Join",
            tag.suffix
        ));
    };
    let mark = node.mark;
    let inner = match (&node.value, *long) {
        // `!GetAtt Table.Arn` is short for `Fn::GetAtt: [Table, Arn]`.
        (Value::Str(s), "Fn::GetAtt") => match s.split_once('.') {
            Some((res, attr)) => Node::new(
                Value::Seq(vec![
                    Node::new(Value::Str(res.to_owned()), mark),
                    Node::new(Value::Str(attr.to_owned()), mark),
                ]),
                mark,
            ),
            None => return Err(format!("`!GetAtt {s}` needs the form Resource.Attribute")),
        },
        _ => node,
    };
    Ok(Node::new(Value::Map(vec![((*long).to_owned(), inner)]), mark))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_typed_like_js_yaml() {
        let doc = parse("a: 1\nb: true\nc: '1'\nd: ~\ne: 1.5\nf: hello\ng: 0x10\n").unwrap();
        assert_eq!(doc.get("a").unwrap().value, Value::Int(1));
        assert_eq!(doc.get("b").unwrap().value, Value::Bool(true));
        assert_eq!(doc.get("c").unwrap().value, Value::Str("1".into()));
        assert_eq!(doc.get("d").unwrap().value, Value::Null);
        assert_eq!(doc.get("e").unwrap().value, Value::Float(1.5));
        assert_eq!(doc.get("f").unwrap().value, Value::Str("hello".into()));
        assert_eq!(doc.get("g").unwrap().value, Value::Int(16));
    }

    #[test]
    fn positions_are_one_based() {
        let doc = parse("a:\n  b: x\n").unwrap();
        let b = doc.get("a").unwrap().get("b").unwrap();
        assert_eq!(b.mark, Mark { line: 2, col: 6 });
    }

    #[test]
    fn cloudformation_short_forms_become_long_forms() {
        let doc = parse("a: !Ref Table\nb: !GetAtt Table.Arn\nc: !Join ['-', [x, y]]\n").unwrap();
        assert_eq!(doc.get("a").unwrap().to_json(), serde_json::json!({"Ref": "Table"}));
        assert_eq!(
            doc.get("b").unwrap().to_json(),
            serde_json::json!({"Fn::GetAtt": ["Table", "Arn"]})
        );
        assert_eq!(
            doc.get("c").unwrap().to_json(),
            serde_json::json!({"Fn::Join": ["-", ["x", "y"]]})
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let doc = parse("base: &b\n  x: 1\n  y: 2\nother:\n  <<: *b\n  y: 3\n").unwrap();
        assert_eq!(doc.get("other").unwrap().to_json(), serde_json::json!({"y": 3, "x": 1}));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.mark.line >= 1, "{err:?}");
    }
}
