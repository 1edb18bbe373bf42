//! Sealed segments: standard Parquet files, one row per stored event.
//!
//! Schema version 1 (documented in `docs/store-format.md`): typed columns for what people
//! filter and group on, plus the stored record itself (`received`, `cluster`, `event`), from
//! which the Merkle leaf is recomputed. Written to a temporary name, fsync'd, then renamed.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Int32Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
    UInt64Builder,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::record::StoredRecord;
use crate::row::Row;

/// The version of the segment schema written now.
pub const SCHEMA_VERSION: u32 = 1;
/// Rows per Parquet row group (and per term-set entry in the manifest), by default.
pub const ROW_GROUP: usize = 65_536;
/// Term sets larger than this are not kept (the row group cannot be skipped on that column).
const MAX_TERMS: usize = 64;

/// The columns, in order.
pub fn schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let o = |n: &str| Field::new(n, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new("leaf", DataType::UInt64, false),
        Field::new("received", ts(), false),
        s("cluster"),
        Field::new("time", ts(), true),
        Field::new("stage_time", ts(), true),
        s("audit_id"),
        s("stage"),
        s("level"),
        s("verb"),
        s("user"),
        Field::new(
            "groups",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        o("impersonated_user"),
        o("source_ip"),
        o("user_agent"),
        o("namespace"),
        o("api_group"),
        o("api_version"),
        o("resource"),
        o("subresource"),
        o("name"),
        Field::new("code", DataType::Int32, true),
        o("decision"),
        o("reason"),
        s("request_uri"),
        Field::new("first", DataType::Boolean, false),
        s("event"),
    ]))
}

/// Distinct values of a column in one row group, when there are few.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RowGroupTerms {
    pub rows: u64,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
    /// Column name -> its distinct values (absent: too many to list).
    pub terms: std::collections::BTreeMap<String, Vec<String>>,
    /// The minutes (since the epoch) the request times fall in, as inclusive ranges (absent:
    /// too scattered to list; then `min_time..=max_time` is all that is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<Vec<(i64, i64)>>,
    /// Some rows have no request time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub untimed: bool,
}

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

    /// The number of rows added since the last batch was taken.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was added.
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
        match r.time {
            Some(t) => {
                self.cur_min = Some(self.cur_min.map_or(t, |m| m.min(t)));
                self.cur_max = Some(self.cur_max.map_or(t, |m| m.max(t)));
                let m = crate::dedup::minute(t);
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

/// The Parquet writer settings for segments: zstd, row groups aligned with the term sets,
/// delta encoding for the ordered integer columns, no dictionary for unique strings.
fn writer_properties(first_leaf: u64, origin: &str, group_rows: usize) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap()))
        .set_max_row_group_row_count(Some(group_rows))
        .set_data_page_row_count_limit(DATA_PAGE_ROWS)
        .set_created_by(format!("kaudit {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![
            KeyValue::new("kaudit.schema".into(), SCHEMA_VERSION.to_string()),
            KeyValue::new("kaudit.first_leaf".into(), first_leaf.to_string()),
            KeyValue::new("kaudit.origin".into(), origin.to_string()),
        ]));
    for c in ["leaf", "received", "time", "stage_time"] {
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(c), false)
            .set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED);
    }
    for c in ["audit_id", "event"] {
        b = b.set_column_dictionary_enabled(ColumnPath::from(c), false);
    }
    // The event column is most of the bytes and of the compression time: level 1 measured
    // about 5% less import CPU than level 3 and no bigger (1 M generated events: 118.0 MB
    // against 119.6 MB of segments).
    b = b.set_column_compression(
        ColumnPath::from("event"),
        Compression::ZSTD(ZstdLevel::try_new(1).unwrap()),
    );
    // Minimum and maximum statistics let a reader skip a row group or page whose range cannot
    // match. Audit traffic interleaves users, groups, source addresses and object names in
    // every row group (a range spans nearly everything), and whole events, random IDs, URIs,
    // user agents and reasons help no one. Comparing them (long common prefixes such as
    // `system:serviceaccount:`) cost 4% of an import for the last five, 1.5% more for the
    // first four. Times, codes, clusters, verbs, resources, namespaces and the other short
    // columns keep theirs.
    let no_stats = [
        "event",
        "audit_id",
        "request_uri",
        "user_agent",
        "reason",
        "user",
        "impersonated_user",
        "source_ip",
        "name",
    ];
    for c in no_stats {
        b = b.set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::None);
    }
    b = b.set_column_statistics_enabled(
        ColumnPath::new(vec!["groups".into(), "list".into(), "item".into()]),
        EnabledStatistics::None,
    );
    b.build()
}

/// Rows per data page at most: small enough for page skipping when a query selects few rows.
const DATA_PAGE_ROWS: usize = 8192;
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

/// Writes the pages a [`Builder`] yields into one segment file, row group by row group, so
/// memory holds one row group's compressed pages at most: to a temporary name, fsync'd,
/// then renamed into place by [`PageWriter::finish`]. Dropped unfinished, it removes its
/// temporary file.
pub struct PageWriter {
    w: Option<ArrowWriter<File>>,
    tmp: PathBuf,
    rows: u64,
}

impl PageWriter {
    /// Starts a segment at the temporary path `tmp`.
    pub fn create(
        tmp: &Path,
        first_leaf: u64,
        origin: &str,
        group_rows: usize,
    ) -> Result<PageWriter, String> {
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", tmp.display());
        let file = File::create(tmp).map_err(|e| err(&e))?;
        let props = writer_properties(first_leaf, origin, group_rows.max(1));
        let w = ArrowWriter::try_new(file, schema(), Some(props)).map_err(|e| err(&e))?;
        Ok(PageWriter {
            w: Some(w),
            tmp: tmp.to_path_buf(),
            rows: 0,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Encodes and compresses one page of rows; `end_group` closes the row group after it.
    pub fn write(&mut self, batch: &RecordBatch, end_group: bool) -> Result<(), String> {
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", self.tmp.display());
        let w = self.w.as_mut().ok_or_else(|| err(&"already finished"))?;
        if batch.num_rows() > 0 {
            w.write(batch).map_err(|e| err(&e))?;
            self.rows += batch.num_rows() as u64;
        }
        if end_group {
            w.flush().map_err(|e| err(&e))?;
        }
        Ok(())
    }

    /// Writes the footer, syncs, and renames the file to `path`.
    pub fn finish(mut self, path: &Path) -> Result<(), String> {
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", self.tmp.display());
        let w = self.w.take().ok_or_else(|| err(&"already finished"))?;
        let done = w
            .into_inner()
            .and_then(|f| Ok(f.sync_all()?))
            .map_err(|e| err(&e))
            .and_then(|()| fs::rename(&self.tmp, path).map_err(|e| err(&e)));
        if done.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        done?;
        if let Some(dir) = path.parent() {
            crate::wal::sync_dir(dir).map_err(|e| err(&e))?;
        }
        Ok(())
    }
}

impl Drop for PageWriter {
    fn drop(&mut self) {
        // An unfinished segment leaves no temporary file behind.
        if self.w.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A [`Builder`] and a [`PageWriter`] together: one segment written in one thread.
pub struct SegmentWriter {
    b: Builder,
    w: PageWriter,
    path: PathBuf,
}

impl SegmentWriter {
    /// Starts the segment that will be at `path`, with row groups of `group_rows` rows.
    pub fn create(
        path: &Path,
        first_leaf: u64,
        origin: &str,
        group_rows: usize,
    ) -> Result<SegmentWriter, String> {
        let w = PageWriter::create(
            &path.with_extension("parquet.tmp"),
            first_leaf,
            origin,
            group_rows,
        )?;
        Ok(SegmentWriter {
            b: Builder::with_group_rows(group_rows),
            w,
            path: path.to_path_buf(),
        })
    }

    /// The number of rows added.
    pub fn len(&self) -> u64 {
        self.b.total_rows()
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds one stored record (see [`Builder::push`]); a full page is encoded and compressed
    /// right away, and a full row group written out.
    pub fn push(
        &mut self,
        leaf: u64,
        rec: &StoredRecord<'_>,
        r: &Row<'_>,
        first: bool,
    ) -> Result<(), String> {
        self.b.push(leaf, rec, r, first);
        match self.b.take_page() {
            Some((batch, end)) => self.w.write(&batch, end),
            None => Ok(()),
        }
    }

    /// Writes the last row group and the footer, syncs, and renames the file into place;
    /// returns the per-row-group term sets.
    pub fn finish(mut self) -> Result<Vec<RowGroupTerms>, String> {
        let (batch, terms) = self.b.finish();
        if let Some(batch) = batch {
            self.w.write(&batch, true)?;
        }
        self.w.finish(&self.path)?;
        Ok(terms)
    }
}

/// The size and SHA-256 of a file, read in chunks (segments can be large).
pub fn file_digest(path: &Path) -> std::io::Result<(u64, [u8; 32])> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, h.finalize().into()))
}

/// The file name of a segment holding leaves `first..=last`.
pub fn file_name(dir: &Path, first: u64, last: u64) -> PathBuf {
    dir.join(format!("{first:020}-{last:020}.parquet"))
}

/// The leaves `(first, last)` a segment file name says it holds (the inverse of
/// [`file_name`]), or `None` for a name not of that form.
pub fn leaves_of(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".parquet")?;
    let (a, b) = stem.split_once('-')?;
    let digits = |x: &str| x.len() == 20 && x.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Opens a segment for reading the given columns (by name), all row groups or some.
pub fn read(
    path: &Path,
    columns: &[&str],
    row_groups: Option<Vec<usize>>,
    mut f: impl FnMut(RecordBatch) -> Result<(), String>,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = File::open(path).map_err(|e| err(&e))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| err(&e))?;
    let mask = ProjectionMask::columns(b.parquet_schema(), columns.iter().copied());
    let mut b = b.with_projection(mask).with_batch_size(8192);
    if let Some(g) = row_groups {
        b = b.with_row_groups(g);
    }
    for batch in b.build().map_err(|e| err(&e))? {
        f(batch.map_err(|e| err(&e))?)?;
    }
    Ok(())
}

/// Columns that [`Reader`] returns as dictionary arrays (`Dictionary(Int32, Utf8)`): few
/// distinct values, so a filter is decided once per distinct value rather than once per row.
pub const DICTIONARY_COLUMNS: &[&str] = &[
    "cluster",
    "stage",
    "level",
    "verb",
    "user",
    "impersonated_user",
    "source_ip",
    "user_agent",
    "namespace",
    "api_group",
    "api_version",
    "resource",
    "subresource",
    "decision",
    "reason",
];

/// The schema [`Reader`] returns: [`schema`] with [`DICTIONARY_COLUMNS`] as dictionaries.
pub fn reader_schema() -> SchemaRef {
    let fields: Vec<Field> = schema()
        .fields()
        .iter()
        .map(|f| {
            if DICTIONARY_COLUMNS.contains(&f.name().as_str()) {
                Field::new(
                    f.name(),
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                    f.is_nullable(),
                )
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// An open segment for queries: the footer and page offsets are read once; then row groups
/// are read column by column, optionally only the selected rows (pages holding none of them
/// are not decoded).
pub struct Reader {
    meta: ArrowReaderMetadata,
    path: PathBuf,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, String> {
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let file = File::open(path).map_err(|e| err(&e))?;
        let opts = ArrowReaderOptions::new()
            .with_schema(reader_schema())
            .with_offset_index_policy(PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load(&file, opts).map_err(|e| err(&e))?;
        Ok(Reader {
            meta,
            path: path.to_path_buf(),
        })
    }

    /// The number of row groups.
    pub fn row_groups(&self) -> usize {
        self.meta.metadata().num_row_groups()
    }

    /// Reads `columns` of row group `rg`; with `selection`, only the rows marked true (the
    /// batch then holds just those, in order).
    pub fn read(
        &self,
        rg: usize,
        columns: &[&str],
        selection: Option<&[bool]>,
    ) -> Result<RecordBatch, String> {
        let err =
            |e: &dyn std::fmt::Display| format!("{}: row group {rg}: {e}", self.path.display());
        // Its own descriptor: a cloned one would share the seek position with other threads.
        let file = File::open(&self.path).map_err(|e| err(&e))?;
        let b = ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.meta.clone());
        let mask = ProjectionMask::columns(b.parquet_schema(), columns.iter().copied());
        let mut b = b
            .with_projection(mask)
            .with_row_groups(vec![rg])
            .with_batch_size(self.meta.metadata().row_group(rg).num_rows().max(1) as usize);
        if let Some(sel) = selection {
            let filter = BooleanArray::from(sel.to_vec());
            b = b.with_row_selection(RowSelection::from_filters(&[filter]));
        }
        let reader = b.build().map_err(|e| err(&e))?;
        let schema = arrow_array::RecordBatchReader::schema(&reader);
        let mut batches = Vec::new();
        for batch in reader {
            batches.push(batch.map_err(|e| err(&e))?);
        }
        match batches.len() {
            0 => Ok(RecordBatch::new_empty(schema)),
            1 => Ok(batches.pop().unwrap()),
            _ => arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| err(&e)),
        }
    }
}

/// The key-value metadata of a segment.
pub fn metadata(path: &Path) -> Result<std::collections::BTreeMap<String, String>, String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = File::open(path).map_err(|e| err(&e))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| err(&e))?;
    let mut out = std::collections::BTreeMap::new();
    if let Some(kv) = b.metadata().file_metadata().key_value_metadata() {
        for k in kv {
            out.insert(k.key.clone(), k.value.clone().unwrap_or_default());
        }
    }
    Ok(out)
}

/// Reads the stored records of a segment in order: (leaf index, record).
pub fn records(
    path: &Path,
    mut f: impl FnMut(u64, StoredRecord<'_>) -> Result<(), String>,
) -> Result<(), String> {
    read(path, &["leaf", "received", "cluster", "event"], None, |b| {
        let leaf = col::<UInt64Array>(&b, "leaf")?;
        let rec = col::<TimestampMicrosecondArray>(&b, "received")?;
        let cl = col::<StringArray>(&b, "cluster")?;
        let ev = col::<StringArray>(&b, "event")?;
        for i in 0..b.num_rows() {
            f(
                leaf.value(i),
                StoredRecord {
                    received: rec.value(i),
                    cluster: cl.value(i),
                    event: ev.value(i),
                },
            )?;
        }
        Ok(())
    })
}

/// A column of a batch by name, as its concrete type.
pub fn col<'b, T: 'static>(b: &'b RecordBatch, name: &str) -> Result<&'b T, String> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| format!("column {name} is missing or has the wrong type"))
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
