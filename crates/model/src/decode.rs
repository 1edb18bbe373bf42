//! Decoding audit events from whatever shape they come in.
//!
//! One entry point per kind of input, both taking a callback that sees each event, or the
//! reason a record was skipped:
//!
//! - [`decode_slice`] for bytes in memory;
//! - [`decode_reader`] for a stream, read in chunks so a multi-gigabyte `audit.log` never has to
//!   fit in memory.
//!
//! The shape is recognised, not configured:
//!
//! - **JSON lines** (`audit.log`, the usual case): each line is an event, and may also be an
//!   `EventList` or an array of events (webhook bodies dumped one per line);
//! - **a whole document**: one event (pretty-printed or not), an `EventList`, a JSON array, or
//!   several of those concatenated.
//!
//! A bad record never stops the input: the callback gets a [`DecodeError`] naming its line (and
//! item, inside a list), the kind of problem and a message, and decoding carries on with the next
//! line. [`Stats`] counts what was read and skipped.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::ops::ControlFlow;

use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::Event;

/// One decoded event and where it came from.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// 1-based line where the record (or the list holding it) starts.
    pub line: u64,
    /// 0-based index inside an `EventList` or array; `None` for a top-level event.
    pub item: Option<usize>,
    /// The event's bytes exactly as they were in the input.
    pub raw: &'a str,
    /// The parsed event, borrowing from `raw`.
    pub event: Event<'a>,
}

/// Why a record was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// Not valid JSON.
    Syntax,
    /// The record ends before the JSON value does: cut short.
    Truncated,
    /// Valid JSON, but a field has the wrong type or value (`"code":"200"`, an unknown level...).
    InvalidField,
    /// Valid JSON that is not an audit event (another kind, or another tool's envelope).
    NotAnEvent,
    /// An `audit.k8s.io` version this tool does not read.
    UnsupportedVersion,
    /// Bytes that are not UTF-8.
    Encoding,
}

impl ErrorKind {
    /// A short name for summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "malformed JSON",
            ErrorKind::Truncated => "truncated record",
            ErrorKind::InvalidField => "invalid field",
            ErrorKind::NotAnEvent => "not an audit event",
            ErrorKind::UnsupportedVersion => "unsupported apiVersion",
            ErrorKind::Encoding => "not UTF-8",
        }
    }
}

/// A record that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// 1-based line of the record (or of the list holding it).
    pub line: u64,
    /// 1-based column of the problem within the line, when known.
    pub column: Option<u64>,
    /// 0-based item index inside an `EventList` or array.
    pub item: Option<usize>,
    /// The kind of problem.
    pub kind: ErrorKind,
    /// What is wrong, naming the field when there is one.
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(c) = self.column {
            write!(f, ", column {c}")?;
        }
        if let Some(i) = self.item {
            write!(f, ", item {i}")?;
        }
        write!(f, ": {}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    /// `file:line[:column][ item N]: kind: message`, the form editors and terminals link.
    pub fn render(&self, file: &str) -> String {
        let mut s = format!("{file}:{}", self.line);
        if let Some(c) = self.column {
            s.push_str(&format!(":{c}"));
        }
        if let Some(i) = self.item {
            s.push_str(&format!(" (item {i})"));
        }
        format!("{s}: {}: {}", self.kind.as_str(), self.message)
    }
}

/// What a decode read and skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events decoded.
    pub events: u64,
    /// `EventList`s and arrays expanded.
    pub lists: u64,
    /// Bytes of input read.
    pub bytes: u64,
    /// Skipped records, by reason.
    pub skipped: BTreeMap<ErrorKind, u64>,
}

impl Stats {
    /// How many records were skipped in all.
    pub fn skipped(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Adds another input's counts to these.
    pub fn merge(&mut self, other: &Stats) {
        self.events += other.events;
        self.lists += other.lists;
        self.bytes += other.bytes;
        for (k, v) in &other.skipped {
            *self.skipped.entry(*k).or_default() += v;
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} events", self.events)?;
        if self.skipped() > 0 {
            write!(f, ", {} records skipped (", self.skipped())?;
            for (i, (k, v)) in self.skipped.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v} {}", k.as_str())?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// From byte `at` (the start of line `line`), the next line that starts a top-level JSON value
/// (`{` or `[`): its byte offset and line number.
pub(crate) fn next_value_start(text: &[u8], mut at: usize, mut line: u64) -> Option<(usize, u64)> {
    while at < text.len() {
        if text[at] == b'{' || text[at] == b'[' {
            return Some((at, line));
        }
        let n = memchr::memchr(b'\n', &text[at..])?;
        at += n + 1;
        line += 1;
    }
    None
}

/// Decodes every event in `data`, calling `f` with each event or skipped record.
/// `f` can stop the decode early by returning `ControlFlow::Break`.
pub fn decode_slice<'a, F>(data: &'a [u8], mut f: F) -> Stats
where
    F: FnMut(Result<Record<'a>, DecodeError>) -> ControlFlow<()>,
{
    let mut d = Decoder {
        stats: Stats::default(),
        line: 0,
    };
    d.stats.bytes = data.len() as u64;
    if is_json_lines(data) {
        let _ = d.lines(data, true, &mut f);
    } else {
        let _ = d.document(data, &mut f);
    }
    d.stats
}

/// Decodes every event read from `r`, calling `f` as [`decode_slice`] does.
///
/// JSON lines are read in chunks of a few megabytes; any other shape (a pretty-printed
/// document, an array) is read whole first.
pub fn decode_reader<R, F>(mut r: R, mut f: F) -> io::Result<Stats>
where
    R: Read,
    F: for<'b> FnMut(Result<Record<'b>, DecodeError>) -> ControlFlow<()>,
{
    const CHUNK: usize = 4 << 20;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut eof = false;
    // Read until the first line is complete (or the input ends), to recognise the shape.
    loop {
        let first = buf.iter().position(|b| !b.is_ascii_whitespace());
        if let Some(p) = first
            && memchr::memchr(b'\n', &buf[p..]).is_some()
        {
            break;
        }
        if eof {
            break;
        }
        eof = fill(&mut r, &mut buf, CHUNK)?;
    }
    let mut d = Decoder {
        stats: Stats::default(),
        line: 0,
    };
    if !is_json_lines(&buf) {
        if !eof {
            r.read_to_end(&mut buf)?;
        }
        d.stats.bytes = buf.len() as u64;
        let _ = d.document(&buf, &mut f);
        return Ok(d.stats);
    }
    let mut start = 0usize;
    loop {
        // Decode the complete lines in buf[start..].
        let end = match memchr::memrchr(b'\n', &buf[start..]) {
            Some(p) => start + p + 1,
            None => start,
        };
        if end > start || eof {
            let stop_at = if eof { buf.len() } else { end };
            d.stats.bytes += (stop_at - start) as u64;
            if d.lines(&buf[start..stop_at], eof, &mut f).is_break() || eof {
                return Ok(d.stats);
            }
            start = stop_at;
        }
        // Keep the partial line, refill.
        buf.drain(..start);
        start = 0;
        eof = fill(&mut r, &mut buf, CHUNK)?;
    }
}

fn fill<R: Read>(r: &mut R, buf: &mut Vec<u8>, chunk: usize) -> io::Result<bool> {
    let old = buf.len();
    buf.resize(old + chunk, 0);
    let mut n = old;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => {
                buf.truncate(n);
                return Ok(true);
            }
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(n);
                return Err(e);
            }
        }
        if n > old {
            break;
        }
    }
    buf.truncate(n);
    Ok(false)
}

/// JSON lines when the first non-blank line is a complete JSON object or array on its own.
pub(crate) fn is_json_lines(data: &[u8]) -> bool {
    let Some(p) = data.iter().position(|b| !b.is_ascii_whitespace()) else {
        return true; // empty input: nothing to decode either way
    };
    if data[p] != b'{' && data[p] != b'[' {
        return true; // garbage: report it line by line
    }
    let end = memchr::memchr(b'\n', &data[p..]).map_or(data.len(), |e| p + e);
    match simdutf8::compat::from_utf8(&data[p..end]) {
        Ok(line) => serde_json::from_str::<IgnoredAny>(line.trim_end()).is_ok(),
        Err(_) => true,
    }
}

struct Decoder {
    stats: Stats,
    line: u64,
}

type Sink<'f, 'a> = dyn FnMut(Result<Record<'a>, DecodeError>) -> ControlFlow<()> + 'f;

impl Decoder {
    fn skip<'a>(&mut self, e: DecodeError, f: &mut Sink<'_, 'a>) -> ControlFlow<()> {
        *self.stats.skipped.entry(e.kind).or_default() += 1;
        f(Err(e))
    }

    /// Each line one JSON value. `last` says the final line may lack its newline.
    fn lines<'a>(&mut self, data: &'a [u8], last: bool, f: &mut Sink<'_, 'a>) -> ControlFlow<()> {
        let mut pos = 0;
        while pos < data.len() {
            let (line, next, has_nl) = match memchr::memchr(b'\n', &data[pos..]) {
                Some(e) => (&data[pos..pos + e], pos + e + 1, true),
                None => (&data[pos..], data.len(), false),
            };
            pos = next;
            self.line += 1;
            let line = trim_ascii(line);
            if line.is_empty() {
                continue;
            }
            let text = match simdutf8::compat::from_utf8(line) {
                Ok(t) => t,
                Err(e) => {
                    let err = DecodeError {
                        line: self.line,
                        column: Some(e.valid_up_to() as u64 + 1),
                        item: None,
                        kind: ErrorKind::Encoding,
                        message: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                    };
                    self.skip(err, f)?;
                    continue;
                }
            };
            let missing_newline = last && !has_nl;
            self.value(text, self.line, missing_newline, f)?;
        }
        ControlFlow::Continue(())
    }

    /// A whole document: one or more JSON values, each possibly spanning lines.
    fn document<'a>(&mut self, data: &'a [u8], f: &mut Sink<'_, 'a>) -> ControlFlow<()> {
        let text = match simdutf8::compat::from_utf8(data) {
            Ok(t) => t,
            Err(e) => {
                let line = 1 + memchr::memchr_iter(b'\n', &data[..e.valid_up_to()]).count() as u64;
                let err = DecodeError {
                    line,
                    column: None,
                    item: None,
                    kind: ErrorKind::Encoding,
                    message: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                };
                return self.skip(err, f);
            }
        };
        let mut base = 0usize; // byte offset where the current stream starts
        let mut base_line = 1u64;
        'restart: loop {
            let mut stream =
                serde_json::Deserializer::from_str(&text[base..]).into_iter::<&RawValue>();
            let mut counted_to = 0usize; // offset within the stream up to which lines are counted
            let mut line = base_line;
            loop {
                let start = stream.byte_offset();
                match stream.next() {
                    None => return ControlFlow::Continue(()),
                    Some(Ok(raw)) => {
                        // The value starts after any whitespace at `start`.
                        let ws =
                            text[base + start..].len() - text[base + start..].trim_start().len();
                        let vstart = start + ws;
                        line += count_nl(&text.as_bytes()[base + counted_to..base + vstart]);
                        counted_to = vstart;
                        self.value(raw.get(), line, false, f)?;
                    }
                    Some(Err(e)) => {
                        let eline = base_line + e.line() as u64 - 1;
                        let kind = if e.is_eof() {
                            ErrorKind::Truncated
                        } else {
                            ErrorKind::Syntax
                        };
                        let err = DecodeError {
                            line: eline,
                            column: Some(e.column() as u64),
                            item: None,
                            kind,
                            message: strip_position(&e),
                        };
                        self.skip(err, f)?;
                        // Resume at the next line that starts a top-level value.
                        let off = nth_line_offset(&text.as_bytes()[base..], e.line());
                        if let Some((b, l)) =
                            next_value_start(text.as_bytes(), base + off, eline + 1)
                        {
                            base = b;
                            base_line = l;
                            continue 'restart;
                        }
                        return ControlFlow::Continue(());
                    }
                }
            }
        }
    }

    /// One JSON value: an event, an EventList, or an array of events.
    fn value<'a>(
        &mut self,
        raw: &'a str,
        line: u64,
        unterminated: bool,
        f: &mut Sink<'_, 'a>,
    ) -> ControlFlow<()> {
        if raw.starts_with('[') {
            return match serde_json::from_str::<Vec<&'a RawValue>>(raw) {
                Ok(items) => {
                    self.stats.lists += 1;
                    for (i, item) in items.into_iter().enumerate() {
                        self.event(item.get(), line, Some(i), false, f)?;
                    }
                    ControlFlow::Continue(())
                }
                Err(e) => self.skip(json_error(&e, raw, line, None, unterminated), f),
            };
        }
        self.event(raw, line, None, unterminated, f)
    }

    fn event<'a>(
        &mut self,
        raw: &'a str,
        line: u64,
        item: Option<usize>,
        unterminated: bool,
        f: &mut Sink<'_, 'a>,
    ) -> ControlFlow<()> {
        let ev: Event<'a> = match serde_json::from_str(raw) {
            Ok(ev) => ev,
            Err(e) => return self.skip(json_error(&e, raw, line, item, unterminated), f),
        };
        let err = |kind, message: String| DecodeError {
            line,
            column: None,
            item,
            kind,
            message,
        };
        if ev.kind.as_ref().is_some_and(|k| k == "EventList")
            || (ev.kind.is_none() && ev.items.is_some())
        {
            if item.is_some() {
                return self.skip(
                    err(ErrorKind::NotAnEvent, "an EventList inside a list".into()),
                    f,
                );
            }
            if let Some(v) = &ev.api_version
                && let Err((kind, m)) = check_api_version(v)
            {
                return self.skip(err(kind, m), f);
            }
            let items = ev.items.map(|r| r.get()).unwrap_or("[]");
            return match serde_json::from_str::<Vec<&'a RawValue>>(items) {
                Ok(list) => {
                    self.stats.lists += 1;
                    for (i, it) in list.into_iter().enumerate() {
                        self.event(it.get(), line, Some(i), false, f)?;
                    }
                    ControlFlow::Continue(())
                }
                Err(e) => self.skip(
                    err(
                        ErrorKind::InvalidField,
                        format!("items: {}", strip_position(&e)),
                    ),
                    f,
                ),
            };
        }
        if let Some(k) = &ev.kind
            && k != "Event"
        {
            return self.skip(
                err(
                    ErrorKind::NotAnEvent,
                    format!("kind {:?} is not an audit Event", k.as_str()),
                ),
                f,
            );
        }
        if let Some(v) = &ev.api_version
            && let Err((kind, m)) = check_api_version(v)
        {
            return self.skip(err(kind, m), f);
        }
        if ev.kind.is_none() && ev.api_version.is_none() && ev.looks_empty() {
            return self.skip(err(ErrorKind::NotAnEvent, foreign_shape(raw)), f);
        }
        self.stats.events += 1;
        f(Ok(Record {
            line,
            item,
            raw,
            event: ev,
        }))
    }
}

fn check_api_version(v: &str) -> Result<(), (ErrorKind, String)> {
    match v {
        "audit.k8s.io/v1" | "audit.k8s.io/v1beta1" | "audit.k8s.io/v1alpha1" => Ok(()),
        v if v.starts_with("audit.k8s.io/") => Err((
            ErrorKind::UnsupportedVersion,
            format!(
                "apiVersion {v:?} is not one this tool reads (audit.k8s.io/v1, v1beta1, v1alpha1)"
            ),
        )),
        v => Err((
            ErrorKind::NotAnEvent,
            format!("apiVersion {v:?} is not audit.k8s.io"),
        )),
    }
}

/// Names the shape of a JSON object that is not an audit event, to say what it is.
fn foreign_shape(raw: &str) -> String {
    let keys: Vec<String> = serde_json::from_str::<BTreeMap<String, IgnoredAny>>(raw)
        .map(|m| m.into_keys().collect())
        .unwrap_or_default();
    let has = |k: &str| keys.iter().any(|x| x == k);
    let what = if has("protoPayload") || has("logName") {
        "looks like a GKE Cloud Logging entry (LogEntry with protoPayload), not a Kubernetes audit event"
    } else if has("properties") && (has("category") || has("operationName")) {
        "looks like an Azure (AKS) diagnostic record, not a Kubernetes audit event"
    } else if has("logEvents")
        || has("logStreamName")
        || has("@message")
        || (has("message") && has("timestamp") && has("logStream"))
    {
        "looks like an AWS CloudWatch (EKS) export, not a Kubernetes audit event"
    } else if has("p_log_type") || has("log") && has("rule_id") {
        "looks like another tool's wrapper around a record, not a Kubernetes audit event"
    } else {
        let shown: Vec<&str> = keys.iter().take(6).map(String::as_str).collect();
        return if shown.is_empty() {
            "an empty object is not an audit event (no auditID, stage, verb or requestURI)".into()
        } else {
            format!(
                "no auditID, stage, verb or requestURI (keys: {})",
                shown.join(", ")
            )
        };
    };
    what.to_string()
}

pub(crate) fn json_error(
    e: &serde_json::Error,
    raw: &str,
    line: u64,
    item: Option<usize>,
    unterminated: bool,
) -> DecodeError {
    let (kind, message, column) = if e.is_eof() {
        let m = if unterminated {
            "the input ends in the middle of this record (file cut short?)".to_string()
        } else {
            "the record is cut short (truncated)".to_string()
        };
        (ErrorKind::Truncated, m, None)
    } else if e.is_syntax() {
        (
            ErrorKind::Syntax,
            strip_position(e),
            Some(e.column() as u64),
        )
    } else {
        // A type or value problem: find which field, for a useful message.
        let mut de = serde_json::Deserializer::from_str(raw);
        let path = match serde_path_to_error::deserialize::<_, Event<'_>>(&mut de) {
            Err(pe) => pe.path().to_string(),
            Ok(_) => String::new(),
        };
        let m = strip_position(e);
        let m = if path.is_empty() || path == "." {
            m
        } else {
            format!("{path}: {m}")
        };
        (ErrorKind::InvalidField, m, None)
    };
    DecodeError {
        line: line
            + if item.is_none() {
                e.line().saturating_sub(1) as u64
            } else {
                0
            },
        column,
        item,
        kind,
        message,
    }
}

pub(crate) fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(p) => s[..p].to_string(),
        None => s,
    }
}

pub(crate) fn count_nl(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}

/// Offset of the start of 1-based line `n + 1` (the line after line `n`).
pub(crate) fn nth_line_offset(b: &[u8], n: usize) -> usize {
    memchr::memchr_iter(b'\n', b)
        .nth(n.saturating_sub(1))
        .map_or(b.len(), |p| p + 1)
}

pub(crate) fn trim_ascii(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8]) -> (Vec<String>, Stats) {
        let mut out = vec![];
        let stats = decode_slice(data, |r| {
            out.push(match r {
                Ok(rec) => format!(
                    "ok line={} item={:?} id={}",
                    rec.line, rec.item, rec.event.audit_id
                ),
                Err(e) => format!("err {e}"),
            });
            ControlFlow::Continue(())
        });
        (out, stats)
    }

    fn run_reader(data: &[u8]) -> Vec<String> {
        let mut out = vec![];
        decode_reader(data, |r| {
            out.push(match r {
                Ok(rec) => format!(
                    "ok line={} item={:?} id={}",
                    rec.line, rec.item, rec.event.audit_id
                ),
                Err(e) => format!("err {e}"),
            });
            ControlFlow::Continue(())
        })
        .unwrap();
        out
    }

    const EV: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"@@","stage":"ResponseComplete","verb":"get"}"#;

    #[test]
    fn json_lines_with_bad_lines_in_between() {
        let data = format!(
            "{}\n\n{{\"auditID\": \n{}\n{{\"kind\":0}}\n{}",
            EV.replace("@@", "a"),
            EV.replace("@@", "b"),
            EV.replace("@@", "c").trim_end_matches('}')
        );
        let (out, stats) = run(data.as_bytes());
        assert_eq!(
            out,
            vec![
                "ok line=1 item=None id=a",
                "err line 3: truncated record: the record is cut short (truncated)",
                "ok line=4 item=None id=b",
                "err line 5: invalid field: kind: invalid type: integer `0`, expected a string",
                "err line 6: truncated record: the input ends in the middle of this record (file cut short?)",
            ]
        );
        assert_eq!(stats.events, 2);
        assert_eq!(stats.skipped(), 3);
        assert_eq!(run_reader(data.as_bytes()), out);
    }

    #[test]
    fn event_list_array_and_pretty_document() {
        let list = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{},{}]}}"#,
            EV.replace("@@", "x"),
            EV.replace("@@", "y")
        );
        let (out, _) = run(list.as_bytes());
        assert_eq!(
            out,
            vec!["ok line=1 item=Some(0) id=x", "ok line=1 item=Some(1) id=y"]
        );

        let pretty = "[\n  {\"auditID\": \"p\", \"stage\": \"ResponseComplete\"},\n  {\"auditID\": \"q\", \"verb\": \"list\"}\n]\n";
        let (out, _) = run(pretty.as_bytes());
        assert_eq!(
            out,
            vec!["ok line=1 item=Some(0) id=p", "ok line=1 item=Some(1) id=q"]
        );

        let doc = "{\n  \"kind\": \"Event\",\n  \"auditID\": \"d1\"\n}\n{\n  \"auditID\": \"d2\",\n  \"stage\": \"Panic\"\n}\n";
        let (out, _) = run(doc.as_bytes());
        assert_eq!(
            out,
            vec!["ok line=1 item=None id=d1", "ok line=5 item=None id=d2"]
        );
        assert_eq!(run_reader(doc.as_bytes()), out);
    }

    #[test]
    fn pretty_document_resumes_after_a_broken_value() {
        let doc = "{\n  \"auditID\": \"d1\",\n  \"verb\": get\n}\n{\n  \"auditID\": \"d2\",\n  \"verb\": \"get\"\n}\n";
        let (out, stats) = run(doc.as_bytes());
        assert_eq!(
            out,
            vec![
                "err line 3, column 11: malformed JSON: expected value",
                "ok line=5 item=None id=d2"
            ]
        );
        assert_eq!(stats.skipped(), 1);
    }

    #[test]
    fn foreign_records_are_named() {
        let (out, _) = run(
            br#"{"protoPayload":{"serviceName":"k8s.io"},"logName":"projects/p/logs/cloudaudit"}
{"kind":"Pod","apiVersion":"v1"}
{"apiVersion":"audit.k8s.io/v2","kind":"Event","auditID":"z"}
{}
"#,
        );
        assert_eq!(
            out,
            vec![
                "err line 1: not an audit event: looks like a GKE Cloud Logging entry (LogEntry with protoPayload), not a Kubernetes audit event",
                "err line 2: not an audit event: kind \"Pod\" is not an audit Event",
                "err line 3: unsupported apiVersion: apiVersion \"audit.k8s.io/v2\" is not one this tool reads (audit.k8s.io/v1, v1beta1, v1alpha1)",
                "err line 4: not an audit event: an empty object is not an audit event (no auditID, stage, verb or requestURI)",
            ]
        );
    }

    #[test]
    fn reader_handles_lines_across_chunk_boundaries() {
        let mut data = String::new();
        for i in 0..20_000 {
            data.push_str(&EV.replace("@@", &format!("id-{i}")));
            data.push('\n');
        }
        let out = run_reader(data.as_bytes());
        assert_eq!(out.len(), 20_000);
        assert_eq!(out[19_999], "ok line=20000 item=None id=id-19999");
    }
}
