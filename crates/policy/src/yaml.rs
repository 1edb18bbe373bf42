//! A YAML document as a tree of nodes that remember where they are in the file.
//!
//! kube-apiserver reads policy files with `sigs.k8s.io/yaml`: YAML (parsed by a fork of
//! go-yaml v2, so YAML 1.1 scalars) converted to JSON, then decoded. This module gives the
//! loader the same view, with line and column on every node and key so every problem can be
//! pointed at: plain scalars are resolved as go-yaml v2 resolves them (`yes`/`on` are booleans,
//! `0x1F` is an integer, `~` is null), quoted ones are strings, and anchors and aliases are
//! expanded (with a cap against alias bombs). Only the first document of a stream is used, as
//! go-yaml's `Unmarshal` does; later ones are reported.

use std::borrow::Cow;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A 1-based line and column in the policy file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column (in characters).
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A YAML node.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// What it is.
    pub value: Value,
}

/// The resolved value of a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `~`, `null`, or nothing.
    Null,
    /// A YAML 1.1 boolean (`true`, `yes`, `on`, ...).
    Bool(bool),
    /// An integer; the text is kept as go-yaml would print it back into a string field.
    Int(String),
    /// A float; the text is kept as Go's `FormatFloat(f, 'g', -1, 32)` would print it.
    Float(String),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order, duplicates included.
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// How to name this kind of value in a message.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The scalar as a string, as sigs.k8s.io/yaml coerces scalars into a string field.
    pub fn as_coerced_str(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Str(s) | Value::Int(s) | Value::Float(s) => Some(Cow::Borrowed(s)),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            _ => None,
        }
    }
}

/// A mapping key.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    /// The key as JSON would see it (non-string keys are stringified as go-yaml does).
    pub name: String,
    /// Where the key is.
    pub pos: Pos,
}

/// The result of reading a YAML stream.
#[derive(Debug)]
pub struct Document {
    /// The first document's root node; `None` when the stream has no document (an empty file,
    /// or only comments).
    pub root: Option<Node>,
    /// How many documents follow the first one (they are ignored, as kube-apiserver ignores them).
    pub extra_documents: usize,
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

/// Nodes an alias expansion may create before the document is refused (alias bombs).
const MAX_NODES: usize = 1_000_000;

/// Parses `text`.
pub fn parse(text: &str) -> Result<Document, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut b = Builder {
        anchors: Vec::new(),
        stack: Vec::new(),
        nodes: 0,
        docs: Vec::new(),
    };
    for ev in &mut parser {
        let (ev, span) = ev.map_err(|e| SyntaxError {
            pos: Pos {
                line: e.marker().line() as u32,
                col: e.marker().col() as u32 + 1,
            },
            message: e.info().to_string(),
        })?;
        b.event(ev, span)?;
    }
    let mut docs = b.docs.into_iter();
    let root = docs.next().flatten();
    Ok(Document {
        root,
        extra_documents: docs.count(),
    })
}

enum Frame {
    Seq(Pos, usize, Vec<Node>),
    Map(Pos, usize, Vec<(Key, Node)>, Option<Key>),
    Doc(Option<Node>),
}

struct Builder {
    anchors: Vec<(usize, Node)>,
    stack: Vec<Frame>,
    nodes: usize,
    docs: Vec<Option<Node>>,
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line() as u32,
        col: span.start.col() as u32 + 1,
    }
}

impl Builder {
    fn event(&mut self, ev: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        let pos = pos_of(&span);
        match ev {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            Event::DocumentStart(_) => self.stack.push(Frame::Doc(None)),
            Event::DocumentEnd => {
                if let Some(Frame::Doc(root)) = self.stack.pop() {
                    self.docs.push(root);
                }
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(pos, anchor, Vec::new())),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(pos, anchor, Vec::new(), None))
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(p, anchor, items)) = self.stack.pop() {
                    self.finish(
                        Node {
                            pos: p,
                            value: Value::Seq(items),
                        },
                        anchor,
                    )?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(p, anchor, items, _)) = self.stack.pop() {
                    self.finish(
                        Node {
                            pos: p,
                            value: Value::Map(items),
                        },
                        anchor,
                    )?;
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                let value = resolve(&text, style, tag.as_deref());
                self.finish(Node { pos, value }, anchor)?;
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(a, _)| *a == id)
                    .map(|(_, n)| n.clone())
                    .ok_or_else(|| SyntaxError {
                        pos,
                        message: "alias to an unknown anchor".into(),
                    })?;
                self.nodes += count(&node);
                if self.nodes > MAX_NODES {
                    return Err(SyntaxError {
                        pos,
                        message: format!("aliases expand to more than {MAX_NODES} nodes"),
                    });
                }
                self.push(Node { pos, ..node });
            }
        }
        Ok(())
    }

    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        self.nodes += 1;
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
        self.push(node);
        Ok(())
    }

    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, items, key)) => match key.take() {
                None => {
                    *key = Some(Key {
                        name: key_name(&node.value),
                        pos: node.pos,
                    })
                }
                Some(k) => items.push((k, node)),
            },
            Some(Frame::Doc(root)) => *root = Some(node),
            None => {}
        }
    }
}

fn count(n: &Node) -> usize {
    1 + match &n.value {
        Value::Seq(v) => v.iter().map(count).sum(),
        Value::Map(v) => v.iter().map(|(_, n)| count(n)).sum(),
        _ => 0,
    }
}

/// The JSON key a YAML key becomes in sigs.k8s.io/yaml.
fn key_name(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(s) | Value::Float(s) | Value::Str(s) => s.clone(),
        Value::Seq(_) | Value::Map(_) => "<complex key>".into(),
    }
}

/// go-yaml v2's resolution of a scalar.
fn resolve(text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("tag:yaml.org,2002:str" | "!!str") => return Value::Str(text.to_string()),
        Some("tag:yaml.org,2002:null" | "!!null") => return Value::Null,
        _ => {}
    }
    if style != ScalarStyle::Plain {
        return Value::Str(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float("+Inf".into());
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float("-Inf".into()),
        ".nan" | ".NaN" | ".NAN" => return Value::Float("NaN".into()),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.' {
        let plain = text.replace('_', "");
        if let Some(i) = go_parse_int(&plain) {
            return Value::Int(i.to_string());
        }
        if is_yaml_float(&plain)
            && let Ok(f) = plain.parse::<f64>()
        {
            // Go prints with FormatFloat(f, 'g', -1, 32) when coercing to a string.
            return Value::Float(format_go_float32(f));
        }
    }
    Value::Str(text.to_string())
}

/// `strconv.ParseInt(s, 0, 64)`, plus go-yaml's `0b`/`-0b` forms.
fn go_parse_int(s: &str) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (radix, digits) =
        if let Some(r) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, r)
        } else if let Some(r) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
            (2, r)
        } else if let Some(r) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
            (8, r)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i128::from_str_radix(digits, radix).ok()?;
    let v = if neg { -v } else { v };
    (v >= i64::MIN as i128 && v <= u64::MAX as i128).then_some(v)
}

/// go-yaml v2's float pattern: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > s
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    } else {
        if !digits(&mut i) {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

fn format_go_float32(f: f64) -> String {
    let f = f as f32;
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Shortest representation that round-trips as f32, as Go's 'g' with precision -1.
    let s = format!("{f}");
    let exp = if f == 0.0 {
        0
    } else {
        f.abs().log10().floor() as i32
    };
    if !(-4..6).contains(&exp) {
        let e = format!("{f:e}");
        // Go writes e+06 style exponents with at least two digits.
        if let Some((m, x)) = e.split_once('e') {
            let (sign, digits) = if let Some(d) = x.strip_prefix('-') {
                ('-', d)
            } else {
                ('+', x)
            };
            return format!("{m}e{sign}{digits:0>2}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(t: &str) -> Value {
        parse(t).unwrap().root.unwrap().value
    }

    #[test]
    fn resolves_scalars_as_go_yaml_v2() {
        let Value::Seq(items) =
            root("[yes, 'yes', ~, 0x1F, 010, 1_000, 1.5, .5, 1e3, abc, '', -0b11, 1.0.0]")
        else {
            panic!()
        };
        let got: Vec<Value> = items.into_iter().map(|n| n.value).collect();
        assert_eq!(
            got,
            vec![
                Value::Bool(true),
                Value::Str("yes".into()),
                Value::Null,
                Value::Int("31".into()),
                Value::Int("8".into()),
                Value::Int("1000".into()),
                Value::Float("1.5".into()),
                Value::Float("0.5".into()),
                Value::Float("1000".into()),
                Value::Str("abc".into()),
                Value::Str("".into()),
                Value::Int("-3".into()),
                Value::Str("1.0.0".into()),
            ]
        );
    }

    #[test]
    fn keeps_positions_and_duplicate_keys() {
        let Value::Map(m) = root("a: 1\nb:\n  - x\na: 2\n") else {
            panic!()
        };
        let keys: Vec<(String, Pos)> = m.iter().map(|(k, _)| (k.name.clone(), k.pos)).collect();
        assert_eq!(
            keys,
            vec![
                ("a".into(), Pos { line: 1, col: 1 }),
                ("b".into(), Pos { line: 2, col: 1 }),
                ("a".into(), Pos { line: 4, col: 1 })
            ]
        );
        let Value::Seq(s) = &m[1].1.value else {
            panic!()
        };
        assert_eq!(s[0].pos, Pos { line: 3, col: 5 });
    }

    #[test]
    fn empty_streams_and_extra_documents() {
        assert_eq!(parse("").unwrap().root, None);
        assert_eq!(parse("# only a comment\n").unwrap().root, None);
        let d = parse("a: 1\n---\nb: 2\n---\nc: 3\n").unwrap();
        assert_eq!(d.extra_documents, 2);
    }

    #[test]
    fn aliases_expand_and_bombs_are_refused() {
        let Value::Map(m) = root("x: &v [a, b]\ny: *v\n") else {
            panic!()
        };
        assert_eq!(m[1].1.value, m[0].1.value);
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            bomb.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n", p = i - 1));
        }
        assert!(parse(&bomb).unwrap_err().message.contains("aliases expand"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("rules:\n  - level: None\n   bad: [\n").unwrap_err();
        assert!(e.pos.line >= 2, "{e:?}");
    }
}
