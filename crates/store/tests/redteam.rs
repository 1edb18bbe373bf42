//! An insider with write access to the data directory, attack by attack: each edit is made
//! the way an attacker would make it (segments rewritten with the arrow and parquet crates,
//! the manifest fixed up to match), and `verify` must fail naming the place.

use std::fs;
use std::path::Path;
use std::sync::Arc;

mod common;

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use common::{Fixture, failure, fixture};
use kaudit_store::verify::{self, Found};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::Value;

fn manifest(dir: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

fn save_manifest(dir: &Path, m: &Value) {
    fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(m).unwrap(),
    )
    .unwrap();
}

/// The manifest entry of the segment holding leaf `leaf`, and its index.
fn entry_of(m: &Value, leaf: u64) -> usize {
    m["segments"]
        .as_array()
        .unwrap()
        .iter()
        .position(|s| {
            s["first_leaf"].as_u64().unwrap() <= leaf && leaf <= s["last_leaf"].as_u64().unwrap()
        })
        .unwrap()
}

/// Rewrites segment `i` with `edit` applied to every batch, keeping its footer's key-values
/// and row groups, then puts the new file's size and SHA-256 into the manifest (as an
/// attacker would, so only a derivation from the events can tell).
fn rewrite_segment(f: &Fixture, i: usize, edit: impl Fn(RecordBatch) -> RecordBatch) {
    let mut m = manifest(&f.dir);
    let name = m["segments"][i]["file"].as_str().unwrap().to_string();
    let path = f.dir.join("segments").join(&name);
    let file = fs::File::open(&path).unwrap();
    let b = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let meta = b.metadata().clone();
    let group_rows = meta.row_group(0).num_rows() as usize;
    let kv = meta.file_metadata().key_value_metadata().cloned();
    let schema = b.schema().clone();
    let batches: Vec<RecordBatch> = b.build().unwrap().map(|r| edit(r.unwrap())).collect();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap()))
        .set_max_row_group_row_count(Some(group_rows))
        .set_key_value_metadata(kv)
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema, Some(props)).unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
    fs::write(&path, &out).unwrap();
    let digest = {
        use sha2::Digest;
        kaudit_model::text::hex(&sha2::Sha256::digest(&out))
    };
    m["segments"][i]["sha256"] = digest.into();
    m["segments"][i]["bytes"] = (out.len() as u64).into();
    save_manifest(&f.dir, &m);
}

/// `batch` with column `name` replaced by `f(column)`.
fn with_column(batch: RecordBatch, name: &str, f: impl Fn(&ArrayRef) -> ArrayRef) -> RecordBatch {
    let i = batch.schema().index_of(name).unwrap();
    let mut cols = batch.columns().to_vec();
    cols[i] = f(&cols[i]);
    RecordBatch::try_new(batch.schema(), cols).unwrap()
}

/// A string column with `from` replaced by `to` wherever it occurs.
fn replace_strings(c: &ArrayRef, from: &str, to: &str) -> ArrayRef {
    let s = c.as_any().downcast_ref::<StringArray>().unwrap();
    Arc::new(
        s.iter()
            .map(|v| {
                v.map(|v| {
                    if v == from {
                        to.to_string()
                    } else {
                        v.to_string()
                    }
                })
            })
            .collect::<StringArray>(),
    )
}

#[test]
fn rewritten_typed_columns_are_caught_though_the_events_are_untouched() {
    type Edit = Box<dyn Fn(&ArrayRef) -> ArrayRef>;
    let edits: Vec<(&str, Edit)> = vec![
        // Secret reads shown as config map reads.
        (
            "resource",
            Box::new(|c| replace_strings(c, "secrets", "configmaps")),
        ),
        // Someone else did it.
        (
            "user",
            Box::new(|c| {
                let s = c.as_any().downcast_ref::<StringArray>().unwrap();
                let first = s.value(0).to_string();
                replace_strings(c, &first, "system:kube-scheduler")
            }),
        ),
        // A denied request shown as allowed (every code 200).
        (
            "code",
            Box::new(|c| {
                let n = c.len();
                Arc::new(arrow_array::Int32Array::from(vec![200; n]))
            }),
        ),
        // Another time.
        (
            "time",
            Box::new(|c| {
                let t = c
                    .as_any()
                    .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
                    .unwrap();
                Arc::new(
                    t.iter()
                        .map(|v| v.map(|v| v - 86_400_000_000))
                        .collect::<arrow_array::TimestampMicrosecondArray>()
                        .with_timezone("UTC"),
                )
            }),
        ),
        // Another request.
        (
            "audit_id",
            Box::new(|c| {
                let s = c.as_any().downcast_ref::<StringArray>().unwrap();
                let first = s.value(0).to_string();
                replace_strings(c, &first, "00000000-0000-0000-0000-000000000000")
            }),
        ),
        // Requests hidden from counts.
        (
            "first",
            Box::new(|c| {
                let n = c.len();
                Arc::new(BooleanArray::from(vec![false; n]))
            }),
        ),
    ];
    for (column, edit) in edits {
        let f = fixture();
        rewrite_segment(&f, 1, |b| with_column(b, column, &edit));
        let e = failure(&f.dir);
        let name = manifest(&f.dir)["segments"][1]["file"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            e.kind == Found::Column
                && e.message.contains(&name)
                && e.message.contains(&format!("column {column} ")),
            "{column}: {e:?}"
        );
    }
}

#[test]
fn a_rewrite_that_changes_nothing_still_verifies() {
    // The attack helper itself: a segment written again as is passes (so the failures
    // above come from the edits, not from the rewriting).
    let f = fixture();
    rewrite_segment(&f, 1, |b| b);
    let r = verify::verify(&f.dir, None).unwrap();
    assert_eq!(r.failure, None, "{r:?}");
}

#[test]
fn an_edited_term_set_is_caught() {
    let f = fixture();
    let mut m = manifest(&f.dir);
    // Hide every secret read: drop "secrets" from each row group's resources.
    let mut edited = None;
    for (i, s) in m["segments"].as_array_mut().unwrap().iter_mut().enumerate() {
        for (g, rg) in s["row_groups"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            if let Some(v) = rg["terms"]["resource"].as_array_mut()
                && let Some(at) = v.iter().position(|x| x == "secrets")
            {
                v.remove(at);
                edited.get_or_insert((i, g));
            }
        }
    }
    let (i, g) = edited.expect("secret reads in the fixture");
    save_manifest(&f.dir, &m);
    let e = failure(&f.dir);
    let name = m["segments"][i]["file"].as_str().unwrap();
    assert!(
        e.kind == Found::Manifest
            && e.message.contains(name)
            && e.message.contains(&format!("row group {g}"))
            && e.message.contains("term set of resource"),
        "{e:?}"
    );
}

#[test]
fn moved_time_ranges_are_caught() {
    for (field, group) in [("max_time", true), ("min_time", true), ("max_time", false)] {
        let f = fixture();
        let mut m = manifest(&f.dir);
        let s = &mut m["segments"][2];
        let v = if group {
            &mut s["row_groups"][1][field]
        } else {
            &mut s[field]
        };
        let t = v.as_i64().unwrap();
        *v = (t - 3_600_000_000).into();
        save_manifest(&f.dir, &m);
        let e = failure(&f.dir);
        assert!(
            e.kind == Found::Manifest && e.message.contains(&format!("{field} is ")),
            "{field} (row group: {group}): {e:?}"
        );
    }
    // The minutes dedup and "since" use.
    let f = fixture();
    let mut m = manifest(&f.dir);
    m["segments"][0]["row_groups"][0]["minutes"] = serde_json::json!([[0, 1]]);
    save_manifest(&f.dir, &m);
    let e = failure(&f.dir);
    assert!(
        e.kind == Found::Manifest && e.message.contains("minutes is "),
        "{e:?}"
    );
}

#[test]
fn edited_tree_edges_in_the_manifest_are_caught() {
    let bogus = serde_json::json!(["00".repeat(32)]);
    let f = fixture();
    let mut m = manifest(&f.dir);
    m["sealed_frontier"] = bogus.clone();
    save_manifest(&f.dir, &m);
    let e = failure(&f.dir);
    assert!(
        e.kind == Found::Manifest && e.message.contains("sealed_frontier"),
        "{e:?}"
    );
    let f = fixture();
    let mut m = manifest(&f.dir);
    m["segments"][1]["frontier_after"] = bogus;
    save_manifest(&f.dir, &m);
    let e = failure(&f.dir);
    assert!(
        e.kind == Found::Manifest && e.message.contains("frontier_after"),
        "{e:?}"
    );
    // Rows and bytes.
    let f = fixture();
    let mut m = manifest(&f.dir);
    m["segments"][3]["row_groups"][0]["rows"] = 1.into();
    save_manifest(&f.dir, &m);
    let e = failure(&f.dir);
    assert!(
        e.kind == Found::Manifest && e.message.contains("rows is 1"),
        "{e:?}"
    );
}

#[test]
fn a_segment_of_another_store_is_caught_with_the_checkpoints_emptied() {
    let f = fixture();
    // Another store (another origin and key) over other traffic, the same shape.
    let other = tempfile::tempdir().unwrap();
    let mut s = kaudit_store::Store::open(other.path(), common::opts()).unwrap();
    common::import(&mut s, &common::traffic(4600, 99));
    s.close().unwrap();
    let theirs = manifest(other.path());
    let mut m = manifest(&f.dir);
    let i = entry_of(&m, 1500);
    assert_eq!(
        theirs["segments"][i]["first_leaf"],
        m["segments"][i]["first_leaf"]
    );
    let name = m["segments"][i]["file"].as_str().unwrap().to_string();
    fs::copy(
        other.path().join("segments").join(&name),
        f.dir.join("segments").join(&name),
    )
    .unwrap();
    m["segments"][i] = theirs["segments"][i].clone();
    save_manifest(&f.dir, &m);
    fs::write(f.dir.join("checkpoints.jsonl"), "").unwrap();
    let e = failure(&f.dir);
    assert!(
        e.kind == Found::Segment
            && e.message.contains(&name)
            && e.message.contains("another store"),
        "{e:?}"
    );
}
