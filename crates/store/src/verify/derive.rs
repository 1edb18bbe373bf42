//! What queries answer from, derived again from the stored events and compared with what is
//! stored: every typed column of every row (with the writer's own [`Row::from_event`] and
//! [`Builder`]), the `first` flag (from the requests stored before), each row group's entry in
//! the manifest (rows, time range, minutes, term sets) and the requests per user in the
//! segment's footer, and the segment's own entry (rows, bytes, time range, origin).
//!
//! The leaf hashes cover only the stored records (`received`, `cluster`, `event`): without
//! this, a typed column or a manifest entry rewritten on disk would steer every query while
//! the tree still matched its checkpoints.

use std::collections::HashSet;

use arrow_array::{Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array};
use kaudit_model::Event;

use super::{Failure, Found, fail};
use crate::dedup::request_key;
use crate::manifest::SegmentMeta;
use crate::record::StoredRecord;
use crate::row::Row;
use crate::segment::{self, Builder, Reader, RowGroupTerms, col};

/// The hasher of request keys here (any fixed one: the keys never leave this pass).
type KeyState = foldhash::quality::FixedState;

/// The derivation's state across segments, in leaf order.
pub(super) struct Derive {
    /// The requests (cluster, audit ID, request time) stored so far: a row is the `first` of
    /// its request when its key is not here yet.
    seen: HashSet<u64, foldhash::fast::FixedState>,
    keys: KeyState,
    /// Requests received at or before this time may have had stages removed by retention
    /// (so a row not marked `first` may be right although no earlier stage is left). `None`:
    /// retention removed nothing.
    removed_until: Option<i64>,
    /// The store's origin, which every segment's footer names.
    origin: String,
}

impl Derive {
    pub fn new(origin: &str, removed_until: Option<i64>) -> Derive {
        Derive {
            seen: HashSet::default(),
            keys: KeyState::with_seed(0x6b61_7564_6974_0001),
            removed_until,
            origin: origin.to_string(),
        }
    }

    /// Checks that segment `s` (open in `reader`) is one of this store's, where the manifest
    /// lists it, with the row groups it lists.
    pub fn identify(&self, reader: &Reader, s: &SegmentMeta) -> Result<(), Failure> {
        let file = &s.file;
        let footer = |k: &str| reader.key_value(k).unwrap_or("(none)").to_string();
        if footer("kaudit.origin") != self.origin {
            return fail(
                Found::Segment,
                format!(
                    "segment {file} was written by log {:?}, this store is {:?}: a segment of \
                     another store",
                    footer("kaudit.origin"),
                    self.origin
                ),
            );
        }
        if footer("kaudit.schema") != segment::SCHEMA_VERSION.to_string() {
            return fail(
                Found::Segment,
                format!(
                    "segment {file}: schema version {} (this kaudit reads {})",
                    footer("kaudit.schema"),
                    segment::SCHEMA_VERSION
                ),
            );
        }
        if segment::leaves_of(file) != Some((s.first_leaf, s.last_leaf)) {
            return fail(
                Found::Manifest,
                format!(
                    "manifest.json: segment {file} is listed for leaves {}-{}",
                    s.first_leaf, s.last_leaf
                ),
            );
        }
        let groups = reader.row_groups();
        if s.row_groups.len() != groups {
            return fail(
                Found::Manifest,
                format!(
                    "manifest.json: segment {file} is listed with {} row groups, the file has \
                     {groups}",
                    s.row_groups.len()
                ),
            );
        }
        Ok(())
    }

    /// Checks segment `s` (open in `reader`, identified) against its events.
    pub fn segment(&mut self, reader: &Reader, s: &SegmentMeta) -> Result<(), Failure> {
        let file = &s.file;
        if reader.requests_by_user_unreadable() {
            return fail(
                Found::Column,
                format!("segment {file}: the requests per user in its footer are unreadable"),
            );
        }
        let counted_in_footer = reader.key_value(segment::REQUESTS_BY_USER).is_some();
        let mut rows = 0;
        let (mut min, mut max) = (None::<i64>, None::<i64>);
        for (rg, listed) in s.row_groups.iter().enumerate() {
            let derived = self.row_group(reader, file, rg)?;
            let place = format!("manifest.json: segment {file}, row group {rg}");
            compare_group(&place, listed, &derived)?;
            if counted_in_footer
                && reader.requests_by_user(rg) != derived.requests_by_user.as_deref()
            {
                return fail(
                    Found::Column,
                    format!(
                        "segment {file}, row group {rg}: the requests per user in its footer \
                         are not what its events say (top users would be misreported)"
                    ),
                );
            }
            rows += derived.rows;
            min = min_opt(min, derived.min_time);
            max = max_opt(max, derived.max_time);
        }
        let field = |name: &str, listed: String, derived: String| {
            fail::<()>(
                Found::Manifest,
                format!(
                    "manifest.json: segment {file}: {name} is {listed}, its events say {derived}"
                ),
            )
        };
        if s.rows != rows {
            field("rows", s.rows.to_string(), rows.to_string())?;
        }
        if s.min_time != min {
            field("min_time", show(s.min_time), show(min))?;
        }
        if s.max_time != max {
            field("max_time", show(s.max_time), show(max))?;
        }
        Ok(())
    }

    /// Derives row group `rg` again from its events, comparing every typed column batch by
    /// batch; returns what the writer would have recorded for it.
    fn row_group(
        &mut self,
        reader: &Reader,
        file: &str,
        rg: usize,
    ) -> Result<RowGroupTerms, Failure> {
        let want = reader.row_group_rows(rg);
        let mut b = Builder::with_group_rows(want as usize);
        let mut failure = None;
        let mut rows = 0u64;
        let unreadable = |e: &dyn std::fmt::Display| Failure {
            kind: Found::Segment,
            message: format!("segment {file}: unreadable, altered or truncated: {e}"),
        };
        reader
            .row_group_as_written(rg, |got| {
                rows += got.num_rows() as u64;
                if let Err(f) = self.batch(&mut b, &got, file, rg) {
                    failure = Some(f);
                    return Ok(false);
                }
                Ok(true)
            })
            .map_err(|e| unreadable(&e))?;
        if let Some(f) = failure {
            return Err(f);
        }
        if rows != want {
            return Err(unreadable(&format!(
                "row group {rg} holds {rows} rows, its footer says {want}"
            )));
        }
        let (rest, mut terms) = b.finish();
        debug_assert!(rest.is_none());
        Ok(terms.pop().unwrap_or_default())
    }

    /// Derives the rows of `got` from their events into `b` and compares the two.
    fn batch(
        &mut self,
        b: &mut Builder,
        got: &RecordBatch,
        file: &str,
        rg: usize,
    ) -> Result<(), Failure> {
        let at = |leaf: u64| format!("segment {file}, row group {rg}, leaf {leaf}");
        let bad = |e: String| Failure {
            kind: Found::Segment,
            message: format!("segment {file}, row group {rg}: {e}"),
        };
        let leaf = col::<UInt64Array>(got, "leaf").map_err(bad)?;
        let received = col::<TimestampMicrosecondArray>(got, "received").map_err(bad)?;
        let cluster = col::<StringArray>(got, "cluster").map_err(bad)?;
        let event = col::<StringArray>(got, "event").map_err(bad)?;
        let first = got
            .column_by_name("first")
            .and_then(|c| c.as_any().downcast_ref::<arrow_array::BooleanArray>())
            .ok_or_else(|| bad("column first is missing or has the wrong type".into()))?;
        for i in 0..got.num_rows() {
            let rec = StoredRecord {
                received: received.value(i),
                cluster: cluster.value(i),
                event: event.value(i),
            };
            let e: Event<'_> = serde_json::from_str(rec.event).map_err(|e| Failure {
                kind: Found::Column,
                message: format!(
                    "{}: the stored event does not parse: {e}",
                    at(leaf.value(i))
                ),
            })?;
            let row = Row::from_event(&e);
            let is_first = if row.audit_id.is_empty() {
                true
            } else {
                self.seen
                    .insert(request_key(&self.keys, rec.cluster, row.audit_id, row.time))
            };
            // An earlier stage of this request may have been in what retention removed.
            let stored_first = first.is_valid(i) && first.value(i);
            let first_ok = stored_first == is_first
                || (is_first
                    && !stored_first
                    && self
                        .removed_until
                        .is_some_and(|until| row.time.is_none_or(|t| t <= until)));
            b.push(
                leaf.value(i),
                &rec,
                &row,
                if first_ok { stored_first } else { is_first },
            );
        }
        let derived = b.finish_batch();
        for (j, field) in got.schema().fields().iter().enumerate() {
            let name = field.name();
            let Some(want) = derived.column_by_name(name) else {
                return Err(bad(format!("column {name} is not in the segment schema")));
            };
            let have = got.column(j);
            if have.to_data() == want.to_data() {
                continue;
            }
            let row = (0..got.num_rows())
                .find(|&r| have.slice(r, 1).to_data() != want.slice(r, 1).to_data())
                .unwrap_or(0);
            return fail(
                Found::Column,
                format!(
                    "{}: column {name} holds {}, its event says {}: the typed columns were \
                     rewritten (queries would answer from them)",
                    at(leaf.value(row)),
                    value(have.as_ref(), row),
                    value(want.as_ref(), row),
                ),
            );
        }
        Ok(())
    }
}

/// A row group's manifest entry against the one derived from its events, naming the first
/// field that differs.
fn compare_group(
    place: &str,
    listed: &RowGroupTerms,
    derived: &RowGroupTerms,
) -> Result<(), Failure> {
    let differs = |what: &str, l: String, d: String| {
        fail::<()>(
            Found::Manifest,
            format!("{place}: {what} is {l}, its events say {d} (queries would skip or miss rows)"),
        )
    };
    if listed.rows != derived.rows {
        differs("rows", listed.rows.to_string(), derived.rows.to_string())?;
    }
    if listed.min_time != derived.min_time {
        differs("min_time", show(listed.min_time), show(derived.min_time))?;
    }
    if listed.max_time != derived.max_time {
        differs("max_time", show(listed.max_time), show(derived.max_time))?;
    }
    if listed.minutes != derived.minutes {
        differs(
            "minutes",
            format!("{:?}", listed.minutes),
            format!("{:?}", derived.minutes),
        )?;
    }
    if listed.untimed != derived.untimed {
        differs(
            "untimed",
            listed.untimed.to_string(),
            derived.untimed.to_string(),
        )?;
    }
    let columns = listed.terms.keys().chain(derived.terms.keys());
    for c in columns {
        let (l, d) = (listed.terms.get(c), derived.terms.get(c));
        if l != d {
            differs(&format!("the term set of {c}"), terms(l), terms(d))?;
        }
    }
    Ok(())
}

fn terms(t: Option<&Vec<String>>) -> String {
    match t {
        None => "absent (too many values)".into(),
        Some(v) if v.len() > 8 => format!("{:?}… ({} values)", &v[..8], v.len()),
        Some(v) => format!("{v:?}"),
    }
}

fn show(t: Option<i64>) -> String {
    t.map_or("none".into(), |t| kaudit_model::MicroTime(t).to_string())
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// One value of a column, short, for a message.
fn value(a: &dyn Array, row: usize) -> String {
    let s = format!("{:?}", a.slice(row, 1));
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let s = s.split_once('[').map_or(s.as_str(), |(_, rest)| {
        rest.trim_end_matches(']').trim().trim_end_matches(',')
    });
    let s = s.to_string();
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(120).collect::<String>())
    } else {
        s
    }
}
