//! Reading a segment file ([`Reader`]): its footer once, then row groups column by column, for
//! queries (dictionary columns, row selections), for stored records in leaf order (followers,
//! proofs, `verify`) and for deduplication keys.

use std::path::Path;
use std::sync::OnceLock;

use arrow_array::{
    BooleanArray, RecordBatch, RecordBatchReader, StringArray, TimestampMicrosecondArray,
    UInt64Array,
};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::file::metadata::PageIndexPolicy;

use super::{REQUESTS_BY_USER, col, reader_schema};
use crate::error::{Error, Result};
use crate::pread::Shared;
use crate::record::StoredRecord;

/// Rows per batch when streaming records.
const STREAM_BATCH: usize = 8192;

/// An open segment: the footer and page offsets are read once; then row groups are read column
/// by column, optionally only the selected rows (pages holding none of them are not decoded).
/// The file is read by position, so threads share one reader.
pub(crate) struct Reader {
    /// With [`reader_schema`]: low-cardinality columns as dictionaries.
    meta: ArrowReaderMetadata,
    file: Shared,
    /// The row groups' requests per user from the footer, parsed on first use.
    requests_by_user: OnceLock<RequestsByUser>,
}

/// Per row group, the requests per user (`None`: not counted).
/// Requests per user, by user.
pub(crate) type UserCounts = Vec<(String, u64)>;

pub(crate) type RequestsByUser = Option<Vec<Option<UserCounts>>>;

impl Reader {
    /// Opens the segment at `path`.
    pub fn open(path: &Path) -> Result<Reader> {
        let file = Shared::open(path).map_err(|e| Error::io(path, e))?;
        Reader::of(file)
    }

    /// Reads the footer of an open segment file.
    pub fn of(file: Shared) -> Result<Reader> {
        let opts = ArrowReaderOptions::new()
            .with_schema(reader_schema())
            .with_offset_index_policy(PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load(&file, opts).map_err(|e| damaged(&file, e))?;
        Ok(Reader {
            meta,
            file,
            requests_by_user: OnceLock::new(),
        })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The open file.
    pub fn file(&self) -> &Shared {
        &self.file
    }

    /// The number of row groups.
    pub fn row_groups(&self) -> usize {
        self.meta.metadata().num_row_groups()
    }

    /// The value of a key in the file's key-value metadata.
    pub fn key_value(&self, key: &str) -> Option<&str> {
        self.meta
            .metadata()
            .file_metadata()
            .key_value_metadata()?
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_deref())
    }

    /// The requests per user of row group `rg`, from the footer, when the segment's writer
    /// counted them (older segments did not; a group with too many users is not counted).
    pub fn requests_by_user(&self, rg: usize) -> Option<&[(String, u64)]> {
        self.all_requests_by_user()?.get(rg)?.as_deref()
    }

    fn all_requests_by_user(&self) -> Option<&[Option<UserCounts>]> {
        self.requests_by_user
            .get_or_init(|| {
                let v: Vec<Option<UserCounts>> =
                    serde_json::from_str(self.key_value(REQUESTS_BY_USER)?).ok()?;
                (v.len() == self.row_groups()).then_some(v)
            })
            .as_deref()
    }

    /// Whether the footer's requests per user are there but unreadable (or for another number
    /// of row groups): `verify` reports it; queries count such groups by reading them.
    pub fn requests_by_user_unreadable(&self) -> bool {
        self.key_value(REQUESTS_BY_USER).is_some() && self.all_requests_by_user().is_none()
    }

    /// Reads `columns` of row group `rg`; with `selection`, only the rows marked true (the
    /// batch then holds just those, in order).
    pub fn read(
        &self,
        rg: usize,
        columns: &[&str],
        selection: Option<&[bool]>,
    ) -> Result<RecordBatch> {
        let err = |e: &dyn std::fmt::Display| {
            Error::damaged(self.file.path(), format!("row group {rg}: {e}"))
        };
        let b = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.file.clone(),
            self.meta.clone(),
        );
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
        let schema = reader.schema();
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

    /// Every column of row group `rg` as written (plain strings, no dictionaries), in
    /// batches of a few thousand rows: what `verify` compares with the columns it derives
    /// again from the stored events.
    pub fn row_group_as_written(
        &self,
        rg: usize,
        f: impl FnMut(RecordBatch) -> Result<bool>,
    ) -> Result<()> {
        let all: Vec<String> = super::schema()
            .fields()
            .iter()
            .map(|c| c.name().clone())
            .collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        self.stream(&all, Some(vec![rg]), f)
    }

    /// The number of rows of row group `rg`, as its footer says.
    pub fn row_group_rows(&self, rg: usize) -> u64 {
        self.meta.metadata().row_group(rg).num_rows().max(0) as u64
    }

    /// Streams `columns` (plain strings, no dictionaries) of the row groups `groups` (all
    /// when `None`), a few thousand rows at a time, while `f` returns true.
    fn stream(
        &self,
        columns: &[&str],
        groups: Option<Vec<usize>>,
        mut f: impl FnMut(RecordBatch) -> Result<bool>,
    ) -> Result<()> {
        let meta = ArrowReaderMetadata::try_new(self.meta.metadata().clone(), Default::default())
            .map_err(|e| damaged(&self.file, e))?;
        let b = ParquetRecordBatchReaderBuilder::new_with_metadata(self.file.clone(), meta);
        let mask = ProjectionMask::columns(b.parquet_schema(), columns.iter().copied());
        let mut b = b.with_projection(mask).with_batch_size(STREAM_BATCH);
        if let Some(g) = groups {
            b = b.with_row_groups(g);
        }
        for batch in b.build().map_err(|e| damaged(&self.file, e))? {
            if !f(batch.map_err(|e| damaged(&self.file, e))?)? {
                break;
            }
        }
        Ok(())
    }

    /// The stored records of row groups `groups` (all when `None`) in order: (leaf, record).
    /// Stops early, without an error, when `f` returns false.
    pub fn records(
        &self,
        groups: Option<Vec<usize>>,
        mut f: impl FnMut(u64, StoredRecord<'_>) -> Result<bool>,
    ) -> Result<()> {
        self.stream(&["leaf", "received", "cluster", "event"], groups, |b| {
            let c = |e: String| Error::damaged(self.file.path(), e);
            let leaf = col::<UInt64Array>(&b, "leaf").map_err(c)?;
            let rec = col::<TimestampMicrosecondArray>(&b, "received").map_err(c)?;
            let cl = col::<StringArray>(&b, "cluster").map_err(c)?;
            let ev = col::<StringArray>(&b, "event").map_err(c)?;
            for i in 0..b.num_rows() {
                let r = StoredRecord {
                    received: rec.value(i),
                    cluster: cl.value(i),
                    event: ev.value(i),
                };
                if !f(leaf.value(i), r)? {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }
}

fn damaged(file: &Shared, e: impl std::fmt::Display) -> Error {
    Error::damaged(file.path(), e.to_string())
}
