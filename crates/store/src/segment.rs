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
use kaudit_model::Event;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::record::StoredRecord;

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
    cur_terms: [BTreeSet<String>; 6],
    cur_overflow: [bool; 6],
    cur_rows: u64,
    cur_min: Option<i64>,
    cur_max: Option<i64>,
    cur_minutes: BTreeSet<i64>,
    cur_last_minute: i64,
    cur_untimed: bool,
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
            cur_overflow: [false; 6],
            cur_rows: 0,
            cur_min: None,
            cur_max: None,
            cur_minutes: BTreeSet::new(),
            cur_last_minute: i64::MIN,
            cur_untimed: false,
        }
    }

    /// The number of rows added.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Adds one stored record with its parsed event. `first` says whether it is the first
    /// stored stage of its request.
    pub fn push(&mut self, leaf: u64, rec: &StoredRecord<'_>, e: &Event<'_>, first: bool) {
        self.leaf.append_value(leaf);
        self.received.append_value(rec.received);
        self.cluster.append_value(rec.cluster);
        let t = e.request_received_timestamp.map(|t| t.micros());
        self.time.append_option(t);
        self.stage_time
            .append_option(e.stage_timestamp.map(|t| t.micros()));
        self.audit_id.append_value(e.audit_id.as_str());
        let stage = e.stage.map_or("", |s| s.as_str());
        self.stage.append_value(stage);
        self.level.append_value(e.level.map_or("", |l| l.as_str()));
        self.verb.append_value(e.verb.as_str());
        self.user.append_value(e.user.username.as_str());
        for g in &e.user.groups {
            self.groups.values().append_value(g.as_str());
        }
        self.groups.append(true);
        match &e.impersonated_user {
            Some(u) => opt(&mut self.impersonated_user, u.username.as_str()),
            None => self.impersonated_user.append_null(),
        }
        opt(
            &mut self.source_ip,
            e.source_ips.first().map_or("", |s| s.as_str()),
        );
        opt(&mut self.user_agent, e.user_agent.as_str());
        let (ns, grp, ver, res, sub, name) = match &e.object_ref {
            Some(o) => (
                o.namespace.as_str(),
                o.api_group.as_str(),
                o.api_version.as_str(),
                o.resource.as_str(),
                o.subresource.as_str(),
                o.name.as_str(),
            ),
            None => ("", "", "", "", "", ""),
        };
        opt(&mut self.namespace, ns);
        // The core group is "" in objectRef: stored as "" (not null) for resource requests.
        if e.object_ref.is_some() {
            self.api_group.append_value(grp);
        } else {
            self.api_group.append_null();
        }
        opt(&mut self.api_version, ver);
        opt(&mut self.resource, res);
        opt(&mut self.subresource, sub);
        opt(&mut self.name, name);
        self.code.append_option(e.code());
        opt(
            &mut self.decision,
            e.annotations
                .get("authorization.k8s.io/decision")
                .unwrap_or(""),
        );
        opt(
            &mut self.reason,
            e.annotations
                .get("authorization.k8s.io/reason")
                .unwrap_or(""),
        );
        self.request_uri.append_value(e.request_uri.as_str());
        self.first.append_value(first);
        self.event.append_value(rec.event);
        self.rows += 1;

        let vals = [
            e.verb.as_str(),
            res,
            ns,
            e.user.username.as_str(),
            rec.cluster,
            stage,
        ];
        for (i, v) in vals.iter().enumerate() {
            if !self.cur_overflow[i] && !self.cur_terms[i].contains(*v) {
                if self.cur_terms[i].len() >= MAX_TERMS {
                    self.cur_overflow[i] = true;
                    self.cur_terms[i].clear();
                } else {
                    self.cur_terms[i].insert(v.to_string());
                }
            }
        }
        match t {
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
        for (i, col) in TERM_COLUMNS.iter().enumerate() {
            if !self.cur_overflow[i] {
                g.terms.insert(
                    col.to_string(),
                    std::mem::take(&mut self.cur_terms[i]).into_iter().collect(),
                );
            }
            self.cur_terms[i].clear();
            self.cur_overflow[i] = false;
        }
        self.cur_rows = 0;
        self.groups_terms.push(g);
    }

    /// Builds the Arrow batch (for the in-memory tail) without consuming the builder's terms.
    pub fn finish_batch(&mut self) -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.leaf.finish()),
            Arc::new(self.received.finish()),
            Arc::new(self.cluster.finish()),
            Arc::new(self.time.finish()),
            Arc::new(self.stage_time.finish()),
            Arc::new(self.audit_id.finish()),
            Arc::new(self.stage.finish()),
            Arc::new(self.level.finish()),
            Arc::new(self.verb.finish()),
            Arc::new(self.user.finish()),
            Arc::new(self.groups.finish()),
            Arc::new(self.impersonated_user.finish()),
            Arc::new(self.source_ip.finish()),
            Arc::new(self.user_agent.finish()),
            Arc::new(self.namespace.finish()),
            Arc::new(self.api_group.finish()),
            Arc::new(self.api_version.finish()),
            Arc::new(self.resource.finish()),
            Arc::new(self.subresource.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.code.finish()),
            Arc::new(self.decision.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.request_uri.finish()),
            Arc::new(self.first.finish()),
            Arc::new(self.event.finish()),
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
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()))
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
    b.build()
}

/// Rows per data page at most: small enough for page skipping when a query selects few rows.
const DATA_PAGE_ROWS: usize = 8192;

/// Writes one segment file row group by row group, so memory holds one row group at most:
/// to a temporary name, fsync'd, then renamed into place by [`SegmentWriter::finish`].
pub struct SegmentWriter {
    b: Builder,
    w: Option<ArrowWriter<File>>,
    tmp: PathBuf,
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
        let group_rows = group_rows.max(1);
        let tmp = path.with_extension("parquet.tmp");
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", tmp.display());
        let file = File::create(&tmp).map_err(|e| err(&e))?;
        let props = writer_properties(first_leaf, origin, group_rows);
        let w = ArrowWriter::try_new(file, schema(), Some(props)).map_err(|e| err(&e))?;
        let mut b = Builder::new();
        b.group_rows = group_rows;
        Ok(SegmentWriter {
            b,
            w: Some(w),
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// The number of rows added.
    pub fn len(&self) -> u64 {
        self.b.groups_terms.iter().map(|g| g.rows).sum::<u64>() + self.b.cur_rows
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds one stored record (see [`Builder::push`]); a full row group is written out.
    pub fn push(
        &mut self,
        leaf: u64,
        rec: &StoredRecord<'_>,
        e: &Event<'_>,
        first: bool,
    ) -> Result<(), String> {
        self.b.push(leaf, rec, e, first);
        if self.b.cur_rows == 0 {
            self.flush_group()?;
        } else if self.b.rows >= DATA_PAGE_ROWS {
            // Encoded and compressed now, a page at a time: memory holds the row group's
            // compressed pages, not its raw columns.
            self.write_rows()?;
        }
        Ok(())
    }

    fn write_rows(&mut self) -> Result<(), String> {
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", self.tmp.display());
        let batch = self.b.finish_batch();
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let w = self.w.as_mut().expect("open until finished");
        w.write(&batch).map_err(|e| err(&e))
    }

    fn flush_group(&mut self) -> Result<(), String> {
        self.write_rows()?;
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", self.tmp.display());
        let w = self.w.as_mut().expect("open until finished");
        w.flush().map_err(|e| err(&e))
    }

    /// Writes the last row group and the footer, syncs, and renames the file into place;
    /// returns the per-row-group term sets.
    pub fn finish(mut self) -> Result<Vec<RowGroupTerms>, String> {
        self.b.close_group();
        self.flush_group()?;
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", self.tmp.display());
        let w = self.w.take().expect("open until finished");
        let file = w.into_inner().map_err(|e| err(&e))?;
        file.sync_all().map_err(|e| err(&e))?;
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(|e| err(&e))?;
        if let Some(dir) = self.path.parent() {
            crate::wal::sync_dir(dir).map_err(|e| err(&e))?;
        }
        Ok(std::mem::take(&mut self.b.groups_terms))
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        // An unfinished segment leaves no temporary file behind.
        if self.tmp.exists() && !self.path.exists() {
            let _ = fs::remove_file(&self.tmp);
        }
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
