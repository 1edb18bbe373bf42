//! Building a segment's columns row by row ([`Builder`]), with each row group's term sets.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Int32Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};

use super::{DATA_PAGE_ROWS, MAX_COUNTED, ROW_GROUP, RowGroupTerms, minute, schema};
use crate::record::StoredRecord;
use crate::row::Row;

/// Term sets larger than this are not kept (the row group cannot be skipped on that column).
const MAX_TERMS: usize = 64;

/// Minute ranges kept per row group at most.
const MAX_MINUTE_RANGES: usize = 64;

const TERM_COLUMNS: [&str; 6] = ["verb", "resource", "namespace", "user", "cluster", "stage"];

/// Accumulates rows and writes them as one segment.
pub struct Builder {
    leaf: UInt64Builder,
    received: TimestampMicrosecondBuilder,
    cluster: StringBuilder,
    time: TimestampMicrosecondBuilder,
    stage_time: TimestampMicrosecondBuilder,
    audit_id: StringBuilder,
    stage: StringBuilder,
    level: StringBuilder,
    verb: StringBuilder,
    user: StringBuilder,
    groups: ListBuilder<StringBuilder>,
    impersonated_user: StringBuilder,
    source_ip: StringBuilder,
    user_agent: StringBuilder,
    namespace: StringBuilder,
    api_group: StringBuilder,
    api_version: StringBuilder,
    resource: StringBuilder,
    subresource: StringBuilder,
    name: StringBuilder,
    code: Int32Builder,
    decision: StringBuilder,
    reason: StringBuilder,
    request_uri: StringBuilder,
    first: BooleanBuilder,
    event: StringBuilder,
    rows: usize,
    group_rows: usize,
    groups_terms: Vec<RowGroupTerms>,
    cur_terms: [Terms; 6],
    cur_users: Counts,
    cur_rows: u64,
    cur_min: Option<i64>,
    cur_max: Option<i64>,
    cur_minutes: BTreeSet<i64>,
    cur_last_minute: i64,
    cur_untimed: bool,
}

/// The distinct values of one column in the current row group, up to [`MAX_TERMS`]: a short
/// list, not a hash set. Nearly every row repeats a value already listed, and these values are
/// short: finding it by its hash and one inlined comparison costs less than a hash set's calls
/// to `memcmp` (they were 2% of an import).
#[derive(Default)]
struct Terms {
    /// (hash, value), in the order first seen.
    vals: Vec<(u64, Box<str>)>,
    /// Where the previous row's value is in `vals` (consecutive rows often repeat it).
    last: usize,
    overflow: bool,
}

/// The hash `Terms` finds values by (fixed: the list is scanned, never probed).
fn term_hash(v: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0).hash_one(v)
}

/// String equality without a call for short strings (word by word).
#[inline]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    let word = |c: &[u8]| u64::from_ne_bytes(c.try_into().expect("8 bytes"));
    for (p, q) in (&mut x).zip(&mut y) {
        if word(p) != word(q) {
            return false;
        }
    }
    x.remainder().iter().zip(y.remainder()).all(|(p, q)| p == q)
}

impl Terms {
    fn note(&mut self, v: &str) {
        if self.overflow || self.vals.get(self.last).is_some_and(|(_, l)| same(l, v)) {
            return;
        }
        let h = term_hash(v);
        if let Some(i) = self.vals.iter().position(|(k, l)| *k == h && same(l, v)) {
            self.last = i;
        } else if self.vals.len() >= MAX_TERMS {
            self.overflow = true;
            self.vals = Vec::new();
        } else {
            self.last = self.vals.len();
            self.vals.push((h, v.into()));
        }
    }

    /// The sorted values (`None` after an overflow), and a fresh start for the next row group.
    fn take(&mut self) -> Option<Vec<String>> {
        let overflow = std::mem::take(&mut self.overflow);
        self.last = 0;
        let mut values: Vec<String> = self.vals.drain(..).map(|(_, v)| String::from(v)).collect();
        if overflow {
            return None;
        }
        values.sort_unstable();
        Some(values)
    }
}

/// How many times each value of a column was seen in the current row group, up to
/// [`MAX_COUNTED`] distinct values.
#[derive(Default)]
struct Counts {
    map: HashMap<Box<str>, u64, foldhash::fast::FixedState>,
    overflow: bool,
}

impl Counts {
    fn count(&mut self, v: &str) {
        if self.overflow {
            return;
        }
        if let Some(n) = self.map.get_mut(v) {
            *n += 1;
        } else if self.map.len() >= MAX_COUNTED {
            self.overflow = true;
            self.map = HashMap::default();
        } else {
            self.map.insert(v.into(), 1);
        }
    }

    /// The counts, by value (`None` after an overflow), and a fresh start.
    fn take(&mut self) -> Option<Vec<(String, u64)>> {
        let map = std::mem::take(&mut self.map);
        if std::mem::take(&mut self.overflow) {
            return None;
        }
        let mut v: Vec<(String, u64)> = map.into_iter().map(|(k, n)| (k.into(), n)).collect();
        v.sort_unstable();
        Some(v)
    }
}

fn ts_builder() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

fn opt(b: &mut StringBuilder, s: &str) {
    if s.is_empty() {
        b.append_null()
    } else {
        b.append_value(s)
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    pub fn new() -> Builder {
        Builder {
            leaf: UInt64Builder::new(),
            received: ts_builder(),
            cluster: StringBuilder::new(),
            time: ts_builder(),
            stage_time: ts_builder(),
            audit_id: StringBuilder::new(),
            stage: StringBuilder::new(),
            level: StringBuilder::new(),
            verb: StringBuilder::new(),
            user: StringBuilder::new(),
            groups: ListBuilder::new(StringBuilder::new()),
            impersonated_user: StringBuilder::new(),
            source_ip: StringBuilder::new(),
            user_agent: StringBuilder::new(),
            namespace: StringBuilder::new(),
            api_group: StringBuilder::new(),
            api_version: StringBuilder::new(),
            resource: StringBuilder::new(),
            subresource: StringBuilder::new(),
            name: StringBuilder::new(),
            code: Int32Builder::new(),
            decision: StringBuilder::new(),
            reason: StringBuilder::new(),
            request_uri: StringBuilder::new(),
            first: BooleanBuilder::new(),
            event: StringBuilder::new(),
            rows: 0,
            group_rows: ROW_GROUP,
            groups_terms: Vec::new(),
            cur_terms: Default::default(),
            cur_users: Counts::default(),
            cur_rows: 0,
            cur_min: None,
            cur_max: None,
            cur_minutes: BTreeSet::new(),
            cur_last_minute: i64::MIN,
            cur_untimed: false,
        }
    }

    /// A builder closing a row group every `group_rows` rows.
    pub fn with_group_rows(group_rows: usize) -> Builder {
        Builder {
            group_rows: group_rows.max(1),
            ..Builder::new()
        }
    }

    /// Whether no row was added since the last batch was taken.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds one stored record with its typed columns (taken from the parsed event, see
    /// [`Row::from_event`]). `first` says whether it is the first stored stage of its request.
    pub fn push(&mut self, leaf: u64, rec: &StoredRecord<'_>, r: &Row<'_>, first: bool) {
        self.leaf.append_value(leaf);
        self.received.append_value(rec.received);
        self.cluster.append_value(rec.cluster);
        self.time.append_option(r.time);
        self.stage_time.append_option(r.stage_time);
        self.audit_id.append_value(r.audit_id);
        self.stage.append_value(r.stage);
        self.level.append_value(r.level);
        self.verb.append_value(r.verb);
        self.user.append_value(r.user);
        for g in r.groups.iter() {
            self.groups.values().append_value(g);
        }
        self.groups.append(true);
        opt(&mut self.impersonated_user, r.impersonated_user);
        opt(&mut self.source_ip, r.source_ip);
        opt(&mut self.user_agent, r.user_agent);
        opt(&mut self.namespace, r.namespace);
        // The core group is "" in objectRef: stored as "" (not null) for resource requests.
        if r.object_ref {
            self.api_group.append_value(r.api_group);
        } else {
            self.api_group.append_null();
        }
        opt(&mut self.api_version, r.api_version);
        opt(&mut self.resource, r.resource);
        opt(&mut self.subresource, r.subresource);
        opt(&mut self.name, r.name);
        self.code.append_option(r.code);
        opt(&mut self.decision, r.decision);
        opt(&mut self.reason, r.reason);
        self.request_uri.append_value(r.request_uri);
        self.first.append_value(first);
        self.event.append_value(rec.event);
        self.rows += 1;

        let vals = [
            r.verb,
            r.resource,
            r.namespace,
            r.user,
            rec.cluster,
            r.stage,
        ];
        for (t, v) in self.cur_terms.iter_mut().zip(vals) {
            t.note(v);
        }
        if first {
            self.cur_users.count(r.user);
        }
        match r.time {
            Some(t) => {
                self.cur_min = Some(self.cur_min.map_or(t, |m| m.min(t)));
                self.cur_max = Some(self.cur_max.map_or(t, |m| m.max(t)));
                let m = minute(t);
                if m != self.cur_last_minute {
                    self.cur_last_minute = m;
                    self.cur_minutes.insert(m);
                }
            }
            None => self.cur_untimed = true,
        }
        self.cur_rows += 1;
        if self.cur_rows as usize == self.group_rows {
            self.close_group();
        }
    }

    fn close_group(&mut self) {
        if self.cur_rows == 0 {
            return;
        }
        let mut g = RowGroupTerms {
            rows: self.cur_rows,
            min_time: self.cur_min.take(),
            max_time: self.cur_max.take(),
            minutes: minute_ranges(&self.cur_minutes),
            untimed: std::mem::take(&mut self.cur_untimed),
            requests_by_user: self.cur_users.take(),
            ..Default::default()
        };
        self.cur_minutes.clear();
        self.cur_last_minute = i64::MIN;
        for (t, col) in self.cur_terms.iter_mut().zip(TERM_COLUMNS) {
            if let Some(values) = t.take() {
                g.terms.insert(col.to_string(), values);
            }
        }
        self.cur_rows = 0;
        self.groups_terms.push(g);
    }

    /// Builds the Arrow batch (for the in-memory tail) without consuming the builder's terms.
    pub fn finish_batch(&mut self) -> RecordBatch {
        self.finish_page(false)
    }

    /// Builds the Arrow batch of the rows added since the last one. With `reserve`, the
    /// string columns start the next batch with room for as much as this one held, so a
    /// segment's pages are not built by repeated doubling (and copying) of their buffers.
    fn finish_page(&mut self, reserve: bool) -> RecordBatch {
        let s = |b: &mut StringBuilder| -> ArrayRef {
            let (n, bytes) = (b.offsets_slice().len() - 1, b.values_slice().len());
            let a = Arc::new(b.finish());
            if reserve {
                *b = StringBuilder::with_capacity(n, bytes + bytes / 8);
            }
            a
        };
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.leaf.finish()),
            Arc::new(self.received.finish()),
            s(&mut self.cluster),
            Arc::new(self.time.finish()),
            Arc::new(self.stage_time.finish()),
            s(&mut self.audit_id),
            s(&mut self.stage),
            s(&mut self.level),
            s(&mut self.verb),
            s(&mut self.user),
            Arc::new(self.groups.finish()),
            s(&mut self.impersonated_user),
            s(&mut self.source_ip),
            s(&mut self.user_agent),
            s(&mut self.namespace),
            s(&mut self.api_group),
            s(&mut self.api_version),
            s(&mut self.resource),
            s(&mut self.subresource),
            s(&mut self.name),
            Arc::new(self.code.finish()),
            s(&mut self.decision),
            s(&mut self.reason),
            s(&mut self.request_uri),
            Arc::new(self.first.finish()),
            s(&mut self.event),
        ];
        self.rows = 0;
        RecordBatch::try_new(schema(), cols).expect("columns match the schema")
    }
}

/// Consecutive minutes merged into ranges; `None` when there are too many ranges.
fn minute_ranges(m: &BTreeSet<i64>) -> Option<Vec<(i64, i64)>> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &x in m {
        match out.last_mut() {
            Some((_, hi)) if *hi + 1 == x => *hi = x,
            _ => {
                if out.len() == MAX_MINUTE_RANGES {
                    return None;
                }
                out.push((x, x));
            }
        }
    }
    Some(out)
}

/// Event bytes handed to the Parquet writer at once at most: with large events (request and
/// response bodies) a batch of rows is cut sooner, so the memory it holds stays bounded.
const BATCH_EVENT_BYTES: usize = 4 << 20;

impl Builder {
    /// The rows added since the last page, as one Arrow batch, once there is a page's worth
    /// or a row group ended; the flag says the row group ended with it.
    pub fn take_page(&mut self) -> Option<(RecordBatch, bool)> {
        if self.cur_rows == 0 && self.rows > 0 {
            Some((self.finish_page(true), true))
        } else if self.rows >= DATA_PAGE_ROWS
            || self.event.values_slice().len() >= BATCH_EVENT_BYTES
        {
            Some((self.finish_page(true), false))
        } else {
            None
        }
    }

    /// Closes the last row group: its remaining rows as a batch (`None` when there are
    /// none), and the term sets of every row group.
    pub fn finish(&mut self) -> (Option<RecordBatch>, Vec<RowGroupTerms>) {
        self.close_group();
        let batch = (self.rows > 0).then(|| self.finish_page(false));
        (batch, std::mem::take(&mut self.groups_terms))
    }

    /// Rows added to the row groups so far.
    pub fn total_rows(&self) -> u64 {
        self.groups_terms.iter().map(|g| g.rows).sum::<u64>() + self.cur_rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_is_string_equality() {
        let base: String = ('a'..='z').chain('0'..='9').chain("αβγ".chars()).collect();
        for n in 0..base.len() {
            let Some(a) = base.get(..n) else { continue };
            assert!(same(a, a));
            for i in 0..n {
                let mut b = a.as_bytes().to_vec();
                b[i] ^= 1;
                if let Ok(b) = std::str::from_utf8(&b) {
                    assert!(!same(a, b), "{a:?} {b:?}");
                }
            }
            if let Some(shorter) = n.checked_sub(1).and_then(|m| base.get(..m)) {
                assert!(!same(a, shorter));
            }
        }
    }

    #[test]
    fn terms_are_the_distinct_values_until_too_many() {
        let mut t = Terms::default();
        for v in ["get", "list", "get", "get", "watch", "list", "", "get"] {
            t.note(v);
        }
        assert_eq!(t.take().unwrap(), ["", "get", "list", "watch"]);
        assert_eq!(t.take().unwrap(), Vec::<String>::new(), "a fresh start");
        for i in 0..MAX_TERMS {
            t.note(&format!("v{i}"));
            t.note(&format!("v{}", i / 2));
        }
        assert_eq!(t.take().unwrap().len(), MAX_TERMS);
        for i in 0..=MAX_TERMS {
            t.note(&format!("v{i}"));
        }
        assert_eq!(t.take(), None);
    }
}
