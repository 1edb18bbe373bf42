//! Segments built while appending ("live", from the rows of the parsed events) are the same,
//! byte for byte, as segments built by reading the WAL back and parsing it again, on
//! generated traffic and on every real captured sample; and the live path is the one taken
//! whenever this process filled a WAL file from its start.

use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;

use kaudit_model::{Event, decode};
use kaudit_store::{Incoming, Options, Store};

fn traffic(n: u64) -> Vec<u8> {
    common::traffic(n, 5)
}

/// Every JSON lines file of the real samples under `test_data/events`, in name order.
fn samples() -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_none_or(|x| x != "expected") {
                out.push(p);
            }
        }
    }
    let root = kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../../test_data/events");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| (p.display().to_string(), fs::read(&p).unwrap()))
        .collect()
}

fn opts() -> Options {
    Options {
        seal_rows: 700,
        checkpoint_every: Duration::from_secs(3600),
        row_group_rows: 256,
        dedup_hot_rows: 100_000,
    }
}

/// The events of every input, as (cluster, raw, parsed).
fn events<'a>(inputs: &'a [(String, Vec<u8>)]) -> Vec<(usize, &'a str, Event<'a>)> {
    let mut out = Vec::new();
    for (i, (_, data)) in inputs.iter().enumerate() {
        decode::decode_slice(data, |r| {
            if let Ok(r) = r {
                out.push((i, r.raw, r.event));
            }
            ControlFlow::Continue(())
        });
    }
    out
}

/// The batches every store gets: 97 events each (so WAL files end mid-batch), every third
/// event without its row (the store parses it then).
fn batches<'a>(
    evs: &'a [(usize, &'a str, Event<'a>)],
    clusters: &'a [String],
) -> Vec<Vec<Incoming<'a>>> {
    evs.chunks(97)
        .map(|c| {
            c.iter()
                .enumerate()
                .map(|(k, (i, raw, e))| {
                    let mut inc =
                        Incoming::new(1_772_323_200_000_000 + k as i64, &clusters[*i], raw, e);
                    if k % 3 == 0 {
                        inc.row = None;
                    }
                    inc
                })
                .collect()
        })
        .collect()
}

/// Two stores hold the same segment files, byte for byte, listed alike in their manifests.
fn assert_same_segments(a: &Path, b: &Path, what: &str) {
    let (x, y) = (segment_files(a), segment_files(b));
    assert_eq!(
        x.iter().map(|f| &f.0).collect::<Vec<_>>(),
        y.iter().map(|f| &f.0).collect::<Vec<_>>(),
        "{what}"
    );
    for ((file, p), (_, q)) in x.iter().zip(&y) {
        assert!(p == q, "{file} differs between {what}");
    }
    let manifest = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(d.join("manifest.json")).unwrap()).unwrap()
    };
    assert_eq!(manifest(a)["segments"], manifest(b)["segments"], "{what}");
}

fn segment_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn live_segments_equal_segments_read_back() {
    let mut inputs = vec![("generated".to_string(), traffic(3000))];
    inputs.extend(samples());
    assert!(inputs.len() > 50, "the real samples are found");
    let clusters: Vec<String> = (0..inputs.len()).map(|i| format!("c{}", i % 3)).collect();
    let evs = events(&inputs);
    let batches = batches(&evs, &clusters);
    let tmp = tempfile::tempdir().unwrap();

    // Live: one process appends everything.
    let live = tmp.path().join("live");
    let mut s = Store::open(&live, opts()).unwrap();
    for b in &batches {
        s.append(b).unwrap();
    }
    s.seal().unwrap();
    let (built, read_back) = s.seal_counts();
    assert!(built >= 4, "{built} segments built while appending");
    assert_eq!(read_back, 0, "no segment read back");
    s.close().unwrap();

    // Read back: the same appends, each by a new process (the store is reopened), so no WAL
    // file is filled by one process from its start. Same keys, so the same origin.
    let back = tmp.path().join("back");
    fs::create_dir_all(back.join("keys")).unwrap();
    for e in fs::read_dir(live.join("keys")).unwrap() {
        let p = e.unwrap().path();
        fs::copy(&p, back.join("keys").join(p.file_name().unwrap())).unwrap();
    }
    let mut read_back = 0;
    for b in &batches {
        let mut s = Store::open(&back, opts()).unwrap();
        s.append(b).unwrap();
        s.poll_seals(true).unwrap();
        read_back += s.seal_counts().1;
        assert_eq!(s.seal_counts().0, 0);
        s.close().unwrap();
    }
    let mut s = Store::open(&back, opts()).unwrap();
    s.seal().unwrap();
    read_back += s.seal_counts().1;
    s.close().unwrap();
    assert_eq!(read_back, built, "every segment read back");

    assert_same_segments(&live, &back, "the live and the read-back store");
    kaudit_store::verify::verify(&live, None).unwrap();
}

#[test]
fn a_live_segment_is_dropped_when_the_process_stops_and_read_back_later() {
    let data = traffic(1500);
    let inputs = vec![("generated".to_string(), data)];
    let clusters = vec!["prod".to_string()];
    let evs = events(&inputs);
    let batches = batches(&evs, &clusters);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let half = batches.len() / 2;
    {
        let mut s = Store::open(&dir, opts()).unwrap();
        for b in &batches[..half] {
            s.append(b).unwrap();
        }
        // Stopped without sealing the current WAL file: its live segment is abandoned.
        drop(s);
    }
    let tmp_files: Vec<_> = fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tmp"))
        .collect();
    assert!(tmp_files.is_empty(), "{tmp_files:?} left behind");
    let mut s = Store::open(&dir, opts()).unwrap();
    for b in &batches[half..] {
        s.append(b).unwrap();
    }
    s.seal().unwrap();
    let (built, read_back) = s.seal_counts();
    assert!(
        read_back >= 1,
        "the WAL file started before the restart is read back"
    );
    assert!(built >= 1, "later WAL files are built live");
    s.close().unwrap();
    let r = kaudit_store::verify::verify(&dir, None).unwrap();
    assert_eq!(r.events, evs.len() as u64);
}

/// The length of each WAL file under `dir`.
fn wal_sizes(dir: &Path) -> Vec<u64> {
    let mut v: Vec<_> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    v.sort();
    v
}

#[test]
fn a_bulk_load_writes_the_same_segments_without_the_wal() {
    let mut inputs = vec![("generated".to_string(), traffic(2500))];
    inputs.extend(samples());
    let clusters: Vec<String> = (0..inputs.len()).map(|i| format!("c{}", i % 3)).collect();
    let evs = events(&inputs);
    let batches = batches(&evs, &clusters);
    // Eight batches a segment: appending batches and pushing events one by one then seal
    // segments at the same leaves.
    let opts = Options {
        seal_rows: 8 * 97,
        ..opts()
    };
    let tmp = tempfile::tempdir().unwrap();

    let wal = tmp.path().join("wal");
    let mut s = Store::open(&wal, opts.clone()).unwrap();
    for b in &batches {
        s.append(b).unwrap();
    }
    s.seal().unwrap();
    s.close().unwrap();
    let stored = s_counts(&wal);

    // In bulk: whole batches, then one event at a time; same keys, so the same origin.
    for (name, by_event) in [("bulk", false), ("bulk-events", true)] {
        let bulk = tmp.path().join(name);
        fs::create_dir_all(bulk.join("keys")).unwrap();
        for e in fs::read_dir(wal.join("keys")).unwrap() {
            let p = e.unwrap().path();
            fs::copy(&p, bulk.join("keys").join(p.file_name().unwrap())).unwrap();
        }
        let mut s = Store::open(&bulk, opts.clone()).unwrap();
        s.begin_bulk().unwrap();
        let empty = wal_sizes(&bulk);
        assert_eq!(empty.len(), 1);
        let (mut n, mut dups) = (0, 0);
        for b in &batches {
            if by_event {
                for inc in b {
                    match s.push_bulk(inc).unwrap() {
                        true => n += 1,
                        false => dups += 1,
                    }
                }
            } else {
                let a = s.append(b).unwrap();
                n += a.stored;
                dups += a.duplicates;
            }
        }
        assert_eq!(
            wal_sizes(&bulk),
            empty,
            "{name}: nothing written to the WAL"
        );
        s.poll_seals(true).unwrap();
        assert!(
            s.seal_counts().0 >= 3,
            "{name}: segments sealed during the load"
        );
        s.close().unwrap();
        // (The samples repeat an event or two: every store skips the same duplicates.)
        assert_eq!((n, n + dups), (stored, evs.len() as u64), "{name}");
        assert_eq!(s_counts(&bulk), stored, "{name}");

        assert_same_segments(&wal, &bulk, &format!("the WAL and the {name} store"));
    }
    let mut s = Store::open(&tmp.path().join("wal"), opts).unwrap();
    assert!(
        s.push_bulk(&batches[0][0]).is_err(),
        "pushing needs a bulk load"
    );
}

/// Events in a store, as `kaudit verify` counts them (failing the test if it finds damage).
fn s_counts(dir: &Path) -> u64 {
    let r = kaudit_store::verify::verify(dir, None).unwrap();
    assert_eq!(r.failure, None, "{}", dir.display());
    r.events
}

/// The size the newest signed checkpoint covers.
fn signed(dir: &Path) -> u64 {
    let text = fs::read_to_string(dir.join("checkpoints.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            // The note's body: origin, size, root, time (one per line).
            v["note"].as_str()?.lines().nth(1)?.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn an_interrupted_bulk_load_keeps_its_sealed_segments_and_loads_the_rest_again() {
    let inputs = vec![("generated".to_string(), traffic(2500))];
    let clusters = vec!["prod".to_string()];
    let evs = events(&inputs);
    let batches = batches(&evs, &clusters);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let part = batches.len() * 3 / 5;
    let appended: u64 = batches[..part].iter().map(|b| b.len() as u64).sum();
    {
        let mut s = Store::open(&dir, opts()).unwrap();
        s.begin_bulk().unwrap();
        // A refused event (its cluster name is too long) changes nothing.
        let long = "x".repeat(70_000);
        let i = &batches[0][0];
        let bad = Incoming {
            cluster: &long,
            received: i.received,
            raw: i.raw,
            audit_id: i.audit_id,
            stage: i.stage,
            time: i.time,
            row: i.row,
        };
        let e = s.push_bulk(&bad).unwrap_err();
        assert!(
            matches!(&e, kaudit_store::Error::Refused(m) if m.contains("cluster name")),
            "{e:?}"
        );
        // As `kaudit import` loads: one event at a time.
        for inc in batches[..part].iter().flatten() {
            assert!(s.push_bulk(inc).unwrap());
        }
        // The segments already complete are sealed; then the process stops without closing:
        // the segment being built is lost, sealed ones stay.
        s.poll_seals(true).unwrap();
        drop(s);
    }
    let kept = s_counts(&dir);
    assert!(kept > 0 && kept < appended, "{kept} of {appended} kept");
    assert_eq!(kept % opts().seal_rows, 0, "whole segments only");
    assert!(signed(&dir) <= kept, "no checkpoint covers what was lost");
    assert!(
        signed(&dir) > 0,
        "checkpoints signed as segments were sealed"
    );
    let left: Vec<_> = fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?} left behind");

    // Loading everything again adds exactly what was lost.
    let mut s = Store::open(&dir, opts()).unwrap();
    s.begin_bulk().unwrap();
    let (mut stored, mut dups) = (0, 0);
    for b in &batches {
        let a = s.append(b).unwrap();
        stored += a.stored;
        dups += a.duplicates;
    }
    s.close().unwrap();
    assert_eq!(dups, kept);
    assert_eq!(stored + dups, evs.len() as u64);
    assert_eq!(s_counts(&dir), evs.len() as u64);
    assert_eq!(signed(&dir), evs.len() as u64);
    assert_eq!(wal_sizes(&dir).len(), 1, "the stale empty WAL file is gone");
    let wal: Vec<_> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        wal,
        [format!("{:020}.wal", evs.len())],
        "the WAL starts where the log ends"
    );
}

/// Segment files left by a process that stopped mid-seal (written, not yet listed) or
/// mid-retention (unlisted, not yet deleted) are removed when the store is opened again;
/// an unlisted file inside the stored range is left for `verify` to report.
#[test]
fn open_removes_what_an_interrupted_seal_or_retention_left() {
    let inputs = vec![("generated".to_string(), traffic(2500))];
    let clusters = vec!["prod".to_string()];
    let evs = events(&inputs);
    let batches = batches(&evs, &clusters);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let seg_dir = dir.join("segments");
    let mut s = Store::open(&dir, opts()).unwrap();
    for b in &batches {
        s.append(b).unwrap();
    }
    s.close().unwrap();
    let mut listed: Vec<(String, Vec<u8>)> = segment_files(&dir);
    assert!(listed.len() >= 3, "{} segments", listed.len());
    // Retention removes the oldest segment; a stop before its file was deleted leaves it.
    let mut s = Store::open(&dir, opts()).unwrap();
    let first_bytes = fs::metadata(seg_dir.join(&listed[0].0)).unwrap().len();
    let removed = s
        .retain(
            None,
            Some(listed_bytes(&seg_dir) - first_bytes),
            kaudit_model::now_micros(),
        )
        .unwrap();
    assert_eq!(removed.len(), 1);
    s.close().unwrap();
    let (old_name, old_bytes) = listed.remove(0);
    fs::write(seg_dir.join(&old_name), &old_bytes).unwrap();
    // A seal past the sealed size that was written but never listed.
    let total = evs.len() as u64;
    let unsealed = format!("{:020}-{:020}.parquet", total, total + 699);
    fs::write(seg_dir.join(&unsealed), &listed[0].1).unwrap();
    // An unlisted file inside the stored range: not a leftover of either.
    // Segment files are named `<first leaf>-<last leaf>.parquet` (docs/store-format.md).
    let (a, b) = listed[0]
        .0
        .trim_end_matches(".parquet")
        .split_once('-')
        .unwrap();
    let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
    let stray = format!("{:020}-{:020}.parquet", a + 1, b);
    fs::write(seg_dir.join(&stray), &listed[0].1).unwrap();
    let before = kaudit_store::verify::verify(&dir, None).unwrap();
    assert_eq!(before.warnings.len(), 3, "{:?}", before.warnings);

    let s = Store::open(&dir, opts()).unwrap();
    drop(s);
    let mut left: Vec<String> = segment_files(&dir).into_iter().map(|(n, _)| n).collect();
    left.sort();
    let mut expected: Vec<String> = listed.iter().map(|(n, _)| n.clone()).collect();
    expected.push(stray.clone());
    expected.sort();
    assert_eq!(left, expected);
    let r = kaudit_store::verify::verify(&dir, None).unwrap();
    assert_eq!(r.failure, None);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains(&stray), "{:?}", r.warnings);
}

fn listed_bytes(seg_dir: &Path) -> u64 {
    fs::read_dir(seg_dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// The manifest is not signed: an older copy put back must not make opening the store delete
/// the segments it does not list (signed checkpoints cover them, and no WAL holds them).
#[test]
fn an_older_manifest_put_back_costs_no_segment() {
    let inputs = vec![("generated".to_string(), traffic(2500))];
    let clusters = vec!["prod".to_string()];
    let evs = events(&inputs);
    let batches = batches(&evs, &clusters);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let half = batches.len() / 2;
    let mut s = Store::open(&dir, opts()).unwrap();
    for b in &batches[..half] {
        s.append(b).unwrap();
    }
    s.close().unwrap();
    let old = fs::read(dir.join("manifest.json")).unwrap();
    let mut s = Store::open(&dir, opts()).unwrap();
    for b in &batches[half..] {
        s.append(b).unwrap();
    }
    s.close().unwrap();
    let before = segment_files(&dir);
    fs::write(dir.join("manifest.json"), &old).unwrap();
    match Store::open(&dir, opts()) {
        Ok(s) => assert!(s.recovery().removed_leftovers.is_empty()),
        Err(e) => assert!(matches!(e, kaudit_store::Error::Damaged { .. }), "{e:?}"),
    }
    assert_eq!(
        segment_files(&dir),
        before,
        "every segment file is still there"
    );
    let r = kaudit_store::verify::verify(&dir, None).unwrap();
    assert!(r.failure.is_some(), "{r:?}");
}
