//! Writing a segment file: the Parquet settings, page by page ([`PageWriter`], fed by the
//! sealing thread) or row by row ([`SegmentWriter`], when a WAL file is read back).

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{Builder, DATA_PAGE_ROWS, REQUESTS_BY_USER, RowGroupTerms, SCHEMA_VERSION, schema};
use crate::error::{Error, Result};
use crate::record::StoredRecord;
use crate::row::Row;

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
    ) -> Result<PageWriter> {
        let err = |e: &dyn std::fmt::Display| write_err(tmp, e);
        let file = File::create(tmp).map_err(|e| Error::io(tmp, e))?;
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
    pub fn write(&mut self, batch: &RecordBatch, end_group: bool) -> Result<()> {
        let err = |e: &dyn std::fmt::Display| write_err(&self.tmp, e);
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

    /// Writes the footer (with the row groups' requests per user), syncs, and renames the file
    /// to `path`.
    pub fn finish(mut self, path: &Path, groups: &[RowGroupTerms]) -> Result<()> {
        let err = |e: &dyn std::fmt::Display| write_err(&self.tmp, e);
        let mut w = self.w.take().ok_or_else(|| err(&"already finished"))?;
        let counts: Vec<Option<&Vec<(String, u64)>>> =
            groups.iter().map(|g| g.requests_by_user.as_ref()).collect();
        let counts = serde_json::to_string(&counts).expect("counts serialize");
        w.append_key_value_metadata(KeyValue::new(REQUESTS_BY_USER.into(), counts));
        let done = w
            .into_inner()
            .map_err(|e| err(&e))
            .and_then(|f| f.sync_all().map_err(|e| Error::io(&self.tmp, e)))
            .and_then(|()| fs::rename(&self.tmp, path).map_err(|e| Error::io(&self.tmp, e)));
        if done.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        done?;
        if let Some(dir) = path.parent() {
            kaudit_model::durable::sync_dir(dir).map_err(|e| Error::io(dir, e))?;
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
    ) -> Result<SegmentWriter> {
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

    /// Adds one stored record (see [`Builder::push`]); a full page is encoded and compressed
    /// right away, and a full row group written out.
    pub fn push(
        &mut self,
        leaf: u64,
        rec: &StoredRecord<'_>,
        r: &Row<'_>,
        first: bool,
    ) -> Result<()> {
        self.b.push(leaf, rec, r, first);
        match self.b.take_page() {
            Some((batch, end)) => self.w.write(&batch, end),
            None => Ok(()),
        }
    }

    /// Writes the last row group and the footer, syncs, and renames the file into place;
    /// returns the per-row-group term sets.
    pub fn finish(mut self) -> Result<Vec<RowGroupTerms>> {
        let (batch, terms) = self.b.finish();
        if let Some(batch) = batch {
            self.w.write(&batch, true)?;
        }
        self.w.finish(&self.path, &terms)?;
        Ok(terms)
    }
}

/// A failure writing the segment at `path`: an I/O error as itself (a full disk, a file size
/// limit), anything else (the Parquet encoder) as damage.
fn write_err(path: &Path, e: &dyn std::fmt::Display) -> Error {
    Error::damaged(path, e.to_string())
}
