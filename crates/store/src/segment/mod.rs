//! Sealed segments: standard Parquet files, one row per stored event.
//!
//! Schema version 1 (documented in `docs/store-format.md`): typed columns for what people
//! filter and group on, plus the stored record itself (`received`, `cluster`, `event`), from
//! which the Merkle leaf is recomputed. Written to a temporary name, fsync'd, then renamed.

mod build;
mod read;
mod write;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

pub(crate) use build::Builder;
pub(crate) use read::Reader;
pub(crate) use write::{PageWriter, SegmentWriter};

/// The version of the segment schema written now.
pub const SCHEMA_VERSION: u32 = 1;
/// Rows per Parquet row group (and per term-set entry in the manifest), by default.
pub const ROW_GROUP: usize = 65_536;
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
    /// Requests (rows that are the first stored stage of their request) per user, when
    /// there are at most [`MAX_COUNTED`] users: written into the segment's footer
    /// ([`REQUESTS_BY_USER`]), not the manifest.
    #[serde(skip)]
    pub requests_by_user: Option<Vec<(String, u64)>>,
}

/// Distinct users counted per row group at most (beyond, the group's users are counted by
/// reading it).
pub const MAX_COUNTED: usize = 4096;

/// The footer key of the requests per user of each row group: a JSON array with, per row
/// group, `[[user, requests], ...]` or `null`.
pub const REQUESTS_BY_USER: &str = "kaudit.requests_by_user";

/// The minute (since the epoch) of a request time: the unit row groups record their request
/// times in ([`RowGroupTerms::minutes`]) and deduplication finds cold row groups by.
pub fn minute(t: i64) -> i64 {
    t.div_euclid(60_000_000)
}

/// Rows per data page at most: small enough for page skipping when a query selects few rows.
const DATA_PAGE_ROWS: usize = 8192;

/// The size and SHA-256 of a file, read in chunks (segments can be large).
pub fn file_digest(path: &Path) -> std::io::Result<(u64, [u8; 32])> {
    digest(File::open(path)?)
}

/// The number of bytes `f` yields and their SHA-256, read in chunks.
pub fn digest(mut f: impl std::io::Read) -> std::io::Result<(u64, [u8; 32])> {
    use sha2::Digest;
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

/// A column of a batch by name, as its concrete type.
pub fn col<'b, T: 'static>(b: &'b RecordBatch, name: &str) -> Result<&'b T, String> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| format!("column {name} is missing or has the wrong type"))
}
