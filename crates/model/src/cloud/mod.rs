//! Audit events as the managed clouds export them: EKS (CloudWatch Logs), GKE (Cloud Logging) and
//! AKS (Azure diagnostic records).
//!
//! [`decode_as`] reads one of these exports and hands each embedded audit event to the callback
//! as a [`Record`], exactly as [`decode::decode_slice`] does for plain Kubernetes input:
//!
//! - **EKS**: the CloudWatch log event's `message` is the kube-apiserver Event as a JSON string;
//!   the record's `raw` is that string unescaped, byte for byte. Read from `aws logs
//!   filter-log-events` / `get-log-events` output, subscription-filter payloads (decompressed; one
//!   or several concatenated `DATA_MESSAGE` documents), CloudWatch export-task lines
//!   (`<timestamp> <message>`), Logs Insights results, single CloudWatch events, and plain
//!   messages one per line (Firehose message extraction). Streams other than
//!   `kube-apiserver-audit-*` and `CONTROL_MESSAGE`s are skipped as not audit events; a message
//!   EKS cut short (`[Truncated...]`) is reported as [`ErrorKind::Truncated`] with its auditID.
//! - **GKE**: a Cloud Audit Logs `LogEntry` with `protoPayload.serviceName` `k8s.io` is mapped
//!   back to an `audit.k8s.io/v1` Event (see the notes below) and encoded as
//!   kube-apiserver would ([`crate::encode::write_event`]); that JSON is the record's `raw`.
//!   Read from `gcloud logging read --format=json` arrays, REST `entries.list` pages, single or
//!   newline-delimited LogEntries, Pub/Sub push envelopes and pulled messages (`data` in base64,
//!   decoded here).
//! - **AKS**: a diagnostic record of category `kube-audit` or `kube-audit-admin` carries the
//!   Event in `properties.log`, as a JSON string (the usual case; `raw` is it unescaped) or an
//!   object (`raw` is its bytes in the input). Read from Event Hub bodies (`{"records":[...]}`)
//!   and storage-account `PT1H.json` lines. Other categories (klog text of `kube-apiserver`,
//!   `guard` decisions...) are skipped as not audit events; a `properties.log` cut short is
//!   [`ErrorKind::Truncated`].
//!
//! In every format a plain Kubernetes audit event (or `EventList`) found where a cloud record
//! was expected is passed through as it is.
//!
//! GKE events are reconstructions: GKE keeps no stage, level, groups, request URI or receive
//! time. The mapping sets `stage` `ResponseComplete`, `level` from the bodies present,
//! `requestURI` rebuilt from `resourceName`, both timestamps from the entry's `timestamp`, the HTTP
//! code from a `Status` response or else from `protoPayload.status.code` (a google.rpc.Code), and
//! keeps what has no Event field as annotations: `kaudit.io/source: gke`, and
//! `gke.kaudit.io/{resource-name, log, cluster-name, location, project-id, authorization-info,
//! receive-timestamp, status-code}`.
//!
//! Compression is the caller's: gunzip files (S3 objects, Firehose deliveries; multi-member gzip
//! included) before calling. Base64 inside a record (Pub/Sub `data`) is decoded here; base64 of
//! gzip (Lambda `awslogs.data`, Firehose HTTP `records[].data`) is reported, not decompressed.

use std::fmt;
use std::ops::ControlFlow;
use std::str::FromStr;

use serde_json::value::RawValue;

use crate::decode::{self, DecodeError, ErrorKind, Record, Stats};

mod aks;
mod b64;
mod eks;
mod gke;
mod obj;
mod sniff;

use obj::{Obj, json_type, preview, recovered};

/// The shape of an input: plain Kubernetes audit events, or a managed cloud's export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Recognise the shape from the first record ([`detect`]).
    Auto,
    /// kube-apiserver's own output: audit.log lines, `EventList`s, arrays ([`decode::decode_slice`]).
    K8s,
    /// Amazon EKS audit logs from CloudWatch Logs.
    Eks,
    /// GKE audit logs from Cloud Logging (Cloud Audit Logs `LogEntry`s).
    Gke,
    /// AKS `kube-audit` / `kube-audit-admin` diagnostic records.
    Aks,
}

impl Format {
    /// Every format, in CLI order.
    pub const ALL: [Format; 5] = [
        Format::Auto,
        Format::K8s,
        Format::Eks,
        Format::Gke,
        Format::Aks,
    ];

    /// The CLI name: `auto`, `k8s`, `eks`, `gke` or `aks`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::K8s => "k8s",
            Format::Eks => "eks",
            Format::Gke => "gke",
            Format::Aks => "aks",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;
    /// The CLI names, case-insensitively.
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown input format {s:?} (expected auto, k8s, eks, gke or aks)")
            })
    }
}

/// Recognises the format of `data` from its first record (or the first item of its first
/// list). Plain audit events, `EventList`s, arrays of events and anything unrecognised are
/// [`Format::K8s`]; never returns [`Format::Auto`].
pub fn detect(data: &[u8]) -> Format {
    sniff::detect(data)
}

/// Decodes every audit event in `data` read as `format`, calling `f` with each event or skipped
/// record; `f` can stop early by returning `ControlFlow::Break`.
///
/// [`Format::K8s`] is [`decode::decode_slice`]; [`Format::Auto`] decodes as [`detect`] says. For
/// the clouds, `line` is the 1-based line where the enclosing cloud record starts (the
/// CloudWatch event, the LogEntry, the Pub/Sub message, the Azure record) and `item` its index in
/// the list holding it, if any.
pub fn decode_as<F>(data: &[u8], format: Format, mut f: F) -> Stats
where
    F: for<'b> FnMut(Result<Record<'b>, DecodeError>) -> ControlFlow<()>,
{
    let format = match format {
        Format::Auto => detect(data),
        f => f,
    };
    if format == Format::K8s || format == Format::Auto {
        return decode::decode_slice(data, f);
    }
    let mut d = Cloud {
        data,
        format,
        stats: Stats {
            bytes: data.len() as u64,
            ..Stats::default()
        },
        nl_pos: 0,
        nl_line: 1,
    };
    if decode::is_json_lines(data) {
        let _ = d.lines(&mut f);
    } else {
        let _ = d.document(&mut f);
    }
    d.stats
}

type Sink<'f> = dyn for<'b> FnMut(Result<Record<'b>, DecodeError>) -> ControlFlow<()> + 'f;

/// Where a cloud record sits in the input.
#[derive(Clone, Copy, Debug)]
struct At {
    line: u64,
    item: Option<usize>,
}

/// How an embedded event may have been cut.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// An EKS CloudWatch message (`[Truncated...]`).
    Eks,
    /// An AKS `properties.log` (cut at about 16 KiB).
    Aks,
    /// A plain event in the input.
    None,
}

const EKS_TRUNCATED: &str = "[Truncated...]";

struct Cloud<'d> {
    data: &'d [u8],
    format: Format,
    stats: Stats,
    /// Line counting cache for [`Cloud::line_of`].
    nl_pos: usize,
    nl_line: u64,
}

impl<'d> Cloud<'d> {
    /// The 1-based line of `data` where `s` starts, or `fallback` when `s` is not part of `data`
    /// (a string unescaped or decoded from it).
    fn line_of(&mut self, s: &str, fallback: u64) -> u64 {
        let base = self.data.as_ptr() as usize;
        let p = s.as_ptr() as usize;
        if p < base || p >= base + self.data.len() {
            return fallback;
        }
        let off = p - base;
        if off < self.nl_pos {
            self.nl_pos = 0;
            self.nl_line = 1;
        }
        self.nl_line += decode::count_nl(&self.data[self.nl_pos..off]);
        self.nl_pos = off;
        self.nl_line
    }

    /// Where the element `s` of a list at `outer` sits.
    fn at_item(&mut self, s: &str, outer: At, i: usize) -> At {
        At {
            line: self.line_of(s, outer.line),
            item: Some(i),
        }
    }

    fn skip(
        &mut self,
        at: At,
        kind: ErrorKind,
        message: String,
        f: &mut Sink<'_>,
    ) -> ControlFlow<()> {
        *self.stats.skipped.entry(kind).or_default() += 1;
        f(Err(DecodeError {
            line: at.line,
            column: None,
            item: at.item,
            kind,
            message,
        }))
    }

    /// JSON lines: each line one cloud record (or list of them). EKS lines may also be
    /// `<timestamp> <message>` (CloudWatch export tasks) or a bare message.
    fn lines(&mut self, f: &mut Sink<'_>) -> ControlFlow<()> {
        let data = self.data;
        let mut pos = 0;
        let mut lineno = 0u64;
        while pos < data.len() {
            let (line, next, has_nl) = match memchr::memchr(b'\n', &data[pos..]) {
                Some(e) => (&data[pos..pos + e], pos + e + 1, true),
                None => (&data[pos..], data.len(), false),
            };
            pos = next;
            lineno += 1;
            let line = decode::trim_ascii(line);
            if line.is_empty() {
                continue;
            }
            let at = At {
                line: lineno,
                item: None,
            };
            let mut text = match std::str::from_utf8(line) {
                Ok(t) => t,
                Err(e) => {
                    *self.stats.skipped.entry(ErrorKind::Encoding).or_default() += 1;
                    f(Err(DecodeError {
                        line: lineno,
                        column: Some(e.valid_up_to() as u64 + 1),
                        item: None,
                        kind: ErrorKind::Encoding,
                        message: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                    }))?;
                    continue;
                }
            };
            if self.format == Format::Eks
                && let Some(rest) = eks::strip_export_prefix(text)
            {
                text = rest;
                if !text.starts_with(['{', '[']) || text.ends_with(EKS_TRUNCATED) {
                    // An export line holds the message text itself.
                    self.embedded(text, at, Cut::Eks, "message", f)?;
                    continue;
                }
            }
            match serde_json::from_str::<&RawValue>(text) {
                Ok(v) => self.value(v.get(), at, f)?,
                Err(_) if self.format == Format::Eks => {
                    // A bare CloudWatch message per line (Firehose message extraction): report
                    // EKS truncation and klog text as such.
                    self.embedded(text, at, Cut::Eks, "", f)?
                }
                Err(e) => {
                    let err = decode::json_error(&e, text, lineno, None, !has_nl);
                    let kind = err.kind;
                    *self.stats.skipped.entry(kind).or_default() += 1;
                    f(Err(err))?;
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// A whole document: one or more JSON values (pretty-printed, or concatenated with no
    /// separator, as Firehose writes subscription payloads to S3).
    fn document(&mut self, f: &mut Sink<'_>) -> ControlFlow<()> {
        let data = self.data;
        let text = match std::str::from_utf8(data) {
            Ok(t) => t,
            Err(e) => {
                let line = 1 + decode::count_nl(&data[..e.valid_up_to()]);
                let at = At { line, item: None };
                return self.skip(
                    at,
                    ErrorKind::Encoding,
                    format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                    f,
                );
            }
        };
        let mut base = 0usize;
        let mut base_line = 1u64;
        'restart: loop {
            let mut stream =
                serde_json::Deserializer::from_str(&text[base..]).into_iter::<&RawValue>();
            loop {
                match stream.next() {
                    None => return ControlFlow::Continue(()),
                    Some(Ok(raw)) => {
                        let at = At {
                            line: self.line_of(raw.get(), base_line),
                            item: None,
                        };
                        self.value(raw.get(), at, f)?;
                    }
                    Some(Err(e)) => {
                        let eline = base_line + e.line() as u64 - 1;
                        let kind = if e.is_eof() {
                            ErrorKind::Truncated
                        } else {
                            ErrorKind::Syntax
                        };
                        *self.stats.skipped.entry(kind).or_default() += 1;
                        f(Err(DecodeError {
                            line: eline,
                            column: Some(e.column() as u64),
                            item: None,
                            kind,
                            message: decode::strip_position(&e),
                        }))?;
                        // Resume at the next line that starts a top-level value.
                        let off = decode::nth_line_offset(&text.as_bytes()[base..], e.line());
                        if let Some((b, l)) =
                            decode::next_value_start(text.as_bytes(), base + off, eline + 1)
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

    /// One top-level JSON value: a record, or an array of records.
    fn value(&mut self, v: &str, at: At, f: &mut Sink<'_>) -> ControlFlow<()> {
        if v.starts_with('[') && !(self.format == Format::Eks && eks::is_insights_row(v)) {
            let items: Vec<&RawValue> = match serde_json::from_str(v) {
                Ok(items) => items,
                Err(e) => {
                    return self.skip(at, ErrorKind::Syntax, decode::strip_position(&e), f);
                }
            };
            self.stats.lists += 1;
            for (i, item) in items.into_iter().enumerate() {
                let at = self.at_item(item.get(), at, i);
                self.record(item.get(), at, f)?;
            }
            return ControlFlow::Continue(());
        }
        self.record(v, at, f)
    }

    /// One cloud record (or an envelope holding several).
    fn record(&mut self, v: &str, at: At, f: &mut Sink<'_>) -> ControlFlow<()> {
        match self.format {
            Format::Eks => self.eks(v, at, f),
            Format::Gke => self.gke(v, at, f),
            Format::Aks => self.aks(v, at, f),
            Format::K8s | Format::Auto => self.embedded(v, at, Cut::None, "", f),
        }
    }

    /// Expands the JSON array `list` (the value of `field` in the record at `at`), calling `each`
    /// with every element and where it sits.
    fn list<'v>(
        &mut self,
        list: &'v RawValue,
        field: &str,
        at: At,
        f: &mut Sink<'_>,
        mut each: impl FnMut(&mut Self, &'v str, At, &mut Sink<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let items: Vec<&'v RawValue> = match serde_json::from_str(list.get()) {
            Ok(items) => items,
            Err(e) => {
                return self.skip(
                    at,
                    ErrorKind::InvalidField,
                    format!("{field}: {}", decode::strip_position(&e)),
                    f,
                );
            }
        };
        self.stats.lists += 1;
        for (i, item) in items.into_iter().enumerate() {
            let at = self.at_item(item.get(), at, i);
            each(self, item.get(), at, f)?;
        }
        ControlFlow::Continue(())
    }

    /// An audit event found inside a cloud record (`field` names where, empty for a plain
    /// event in the input), decoded as kube-apiserver output with `raw` = `text`.
    fn embedded(
        &mut self,
        text: &str,
        at: At,
        cut: Cut,
        field: &str,
        f: &mut Sink<'_>,
    ) -> ControlFlow<()> {
        let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let prefix = if field.is_empty() {
            String::new()
        } else {
            format!("{field}: ")
        };
        if cut == Cut::Eks && t.ends_with(EKS_TRUNCATED) {
            let n = t.len() - EKS_TRUNCATED.len();
            return self.skip(
                at,
                ErrorKind::Truncated,
                format!(
                    "{prefix}EKS truncated this audit event after {n} bytes (the message ends with \"{EKS_TRUNCATED}\"; CloudWatch caps log events); {}",
                    recovered(t)
                ),
                f,
            );
        }
        if !t.starts_with(['{', '[']) {
            let what = match cut {
                Cut::Eks => " (klog text from a non-audit stream?)",
                Cut::Aks => " (klog text?)",
                Cut::None => "",
            };
            return self.skip(
                at,
                ErrorKind::NotAnEvent,
                format!("{prefix}{} is not JSON{what}", preview(t)),
                f,
            );
        }
        let mut broke = false;
        let inner = decode::decode_slice(t.as_bytes(), |r| {
            let r = match r {
                Ok(mut rec) => {
                    rec.line = at.line;
                    rec.item = at.item.or(rec.item);
                    Ok(rec)
                }
                Err(mut e) => {
                    e.line = at.line;
                    e.item = at.item.or(e.item);
                    if e.kind == ErrorKind::Truncated {
                        let n = t.len();
                        e.message = match cut {
                            Cut::Eks => format!(
                                "{prefix}the audit event is cut short after {n} bytes; {}",
                                recovered(t)
                            ),
                            Cut::Aks => format!(
                                "{prefix}AKS truncated this audit event after {n} bytes (large events are cut at about 16 KiB); {}",
                                recovered(t)
                            ),
                            Cut::None => format!("{}; {}", e.message, recovered(t)),
                        };
                        e.column = None;
                    } else if !field.is_empty() {
                        e.message = match e.column.take() {
                            Some(c) => {
                                format!("{prefix}{} (column {c} of the embedded event)", e.message)
                            }
                            None => format!("{prefix}{}", e.message),
                        };
                    }
                    Err(e)
                }
            };
            let flow = f(r);
            broke |= flow.is_break();
            flow
        });
        self.stats.events += inner.events;
        self.stats.lists += inner.lists;
        for (k, v) in inner.skipped {
            *self.stats.skipped.entry(k).or_default() += v;
        }
        if broke {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

#[cfg(test)]
mod tests;
