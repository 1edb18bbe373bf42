//! The store and `verify` against exactly the edits an attacker (or a crash) makes: each
//! tampering is caught and named; legitimate retention and a torn, unacknowledged tail pass.

use std::fs;
use std::path::Path;

mod common;

use common::{failure, fixture, flip, import, opts, segments, traffic_of as traffic, wal_file};
use kaudit_model::now_micros;
use kaudit_store::verify::{self, Found};
use kaudit_store::{Error, Store};

#[test]
fn intact_store_verifies() {
    let f = fixture();
    let r = verify::verify(&f.dir, None).unwrap();
    assert_eq!(r.failure, None);
    assert_eq!((r.events, r.segments, r.wal_records), (4600, 4, 600));
    assert!(r.checkpoints >= 19, "{r:?}");
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // Reopening and importing the same traffic again adds nothing.
    let mut s = Store::open(&f.dir, opts()).unwrap();
    assert_eq!(import(&mut s, &traffic(4600)), (0, 4600));
    s.close().unwrap();
    assert_eq!(verify::verify(&f.dir, None).unwrap().events, 4600);
}

#[test]
fn one_flipped_byte_anywhere_in_a_segment_is_caught() {
    let f = fixture();
    let seg = segments(&f.dir)[1].clone();
    let len = fs::metadata(&seg).unwrap().len() as usize;
    // Header magic, early pages, the middle, late pages, the footer.
    for at in [1, 200, len / 3, len / 2, len * 3 / 4, len - 200, len - 6] {
        let backup = fs::read(&seg).unwrap();
        flip(&seg, at);
        let e = failure(&f.dir);
        assert!(
            matches!(e.kind, Found::Segment | Found::Mismatch)
                && e.message
                    .contains(seg.file_name().unwrap().to_str().unwrap()),
            "byte {at}: {e:?}"
        );
        fs::write(&seg, backup).unwrap();
    }
    assert_eq!(verify::verify(&f.dir, None).unwrap().failure, None);
}

#[test]
fn altered_counts_in_a_footer_are_caught_even_with_the_manifest_fixed_up() {
    // `ask top-users` answers from each row group's requests per user in the segment footer.
    // An insider who edits a count and writes the file's new SHA-256 into the (unsigned)
    // manifest must still be caught: verify recounts them from the rows.
    let f = fixture();
    let seg = segments(&f.dir)[1].clone();
    let mut b = fs::read(&seg).unwrap();
    let key = b"kaudit.requests_by_user";
    let at = b
        .windows(key.len())
        .position(|w| w == key)
        .expect("the footer key")
        + key.len();
    // The first count: a digit after `",`.
    let d = (at..b.len() - 2)
        .find(|&i| b[i] == b'"' && b[i + 1] == b',' && b[i + 2].is_ascii_digit())
        .expect("a count")
        + 2;
    b[d] = if b[d] == b'9' { b'8' } else { b'9' };
    fs::write(&seg, &b).unwrap();
    let name = seg.file_name().unwrap().to_str().unwrap().to_string();
    let e = failure(&f.dir);
    assert!(
        e.kind == Found::Segment && e.message.contains("SHA-256"),
        "{e:?}"
    );
    let digest = {
        use sha2::Digest;
        kaudit_model::text::hex(&sha2::Sha256::digest(&b))
    };
    let mp = f.dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&fs::read_to_string(&mp).unwrap()).unwrap();
    for s in m["segments"].as_array_mut().unwrap() {
        if s["file"] == name.as_str() {
            s["sha256"] = digest.clone().into();
        }
    }
    fs::write(&mp, serde_json::to_string(&m).unwrap()).unwrap();
    let e = failure(&f.dir);
    assert!(
        e.kind == Found::Column
            && e.message.contains(&name)
            && e.message.contains("requests per user"),
        "{e:?}"
    );
}

#[test]
fn one_flipped_byte_in_the_wal_is_caught() {
    let f = fixture();
    let wal = wal_file(&f.dir);
    let len = fs::metadata(&wal).unwrap().len() as usize;
    for at in [30, len / 2, len - 10] {
        let backup = fs::read(&wal).unwrap();
        flip(&wal, at);
        let e = failure(&f.dir);
        let name = wal.file_name().unwrap().to_str().unwrap();
        assert!(
            e.kind == Found::Wal
                && e.message.contains(name)
                && e.message.contains("the WAL was altered or truncated"),
            "byte {at}: {e:?}"
        );
        fs::write(&wal, backup).unwrap();
    }
}

#[test]
fn one_writer_at_a_time() {
    let f = fixture();
    let s = Store::open(&f.dir, opts()).unwrap();
    let e = Store::open(&f.dir, opts()).err().unwrap();
    assert!(
        matches!(&e, Error::Locked { dir } if dir == &f.dir),
        "{e:?}"
    );
    assert!(e.to_string().contains("another kaudit process"), "{e}");
    s.close().unwrap();
    Store::open(&f.dir, opts()).unwrap().close().unwrap();
}

#[test]
fn a_deleted_segment_is_caught() {
    let f = fixture();
    fs::remove_file(&segments(&f.dir)[2]).unwrap();
    let e = failure(&f.dir);
    assert_eq!(e.kind, Found::Segment, "{e:?}");
    assert!(e.message.contains("missing"), "{e}");
}

#[test]
fn swapped_segments_are_caught() {
    let f = fixture();
    let s = segments(&f.dir);
    let tmp = f.dir.join("swap");
    fs::rename(&s[0], &tmp).unwrap();
    fs::rename(&s[1], &s[0]).unwrap();
    fs::rename(&tmp, &s[1]).unwrap();
    let e = failure(&f.dir);
    assert_eq!(e.kind, Found::Segment, "{e:?}");
    assert!(e.message.contains("reordered"), "{e}");
}

#[test]
fn a_truncated_wal_is_caught() {
    let f = fixture();
    let wal = wal_file(&f.dir);
    let len = fs::metadata(&wal).unwrap().len();
    for cut in [len / 2, len - 1] {
        let backup = fs::read(&wal).unwrap();
        let file = fs::OpenOptions::new().write(true).open(&wal).unwrap();
        file.set_len(cut).unwrap();
        drop(file);
        let e = failure(&f.dir);
        assert_eq!(e.kind, Found::Wal, "cut at {cut}: {e:?}");
        assert!(e.message.contains("truncated"), "cut at {cut}: {e}");
        fs::write(&wal, backup).unwrap();
    }
    // A whole WAL file deleted: the signed checkpoints still cover its events.
    fs::remove_file(&wal).unwrap();
    let e = failure(&f.dir);
    assert_eq!(e.kind, Found::Truncated, "{e:?}");
    assert!(e.message.contains("truncated"), "{e}");
}

#[test]
fn a_forged_checkpoint_is_caught() {
    let f = fixture();
    let p = f.dir.join("checkpoints.jsonl");
    let text = fs::read_to_string(&p).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Change the tree size inside a signed note.
    let forged = lines[3].replacen("\\n", "\\n9", 1);
    let mut edited = lines.clone();
    edited[3] = &forged;
    fs::write(&p, edited.join("\n") + "\n").unwrap();
    let e = failure(&f.dir);
    assert_eq!(e.kind, Found::Note, "{e:?}");
    assert!(
        e.message.contains("forged") && e.message.contains(":4"),
        "{e}"
    );
    // A proof vouches for the last checkpoint: a forged one there is an error, not skipped.
    let last = lines.len() - 1;
    let mut edited = lines.clone();
    let forged_last = lines[last].replacen("\\n", "\\n9", 1);
    edited[last] = &forged_last;
    fs::write(&p, edited.join("\n") + "\n").unwrap();
    let e = kaudit_store::proof::prove(&f.dir, 5, |_| {}).unwrap_err();
    assert!(
        e.to_string().contains(&format!("line {}", last + 1)) && e.to_string().contains("forged"),
        "{e}"
    );
    // An unfinished last line (a write cut by a crash) is passed over.
    fs::write(&p, format!("{text}{{\"note\":\"kaudit")).unwrap();
    prove_and_check(&f.dir, 5);
    // A checkpoint signed by another key.
    let other = tempfile::tempdir().unwrap();
    let mut s = Store::open(other.path(), opts()).unwrap();
    import(&mut s, &traffic(10));
    s.close().unwrap();
    let foreign = fs::read_to_string(other.path().join("checkpoints.jsonl")).unwrap();
    fs::write(&p, format!("{text}{foreign}")).unwrap();
    let e = failure(&f.dir);
    assert!(
        e.kind == Found::Note && e.message.contains("no signature by"),
        "{e:?}"
    );
    // Verifying against an independently held key catches a replaced key pair too.
    fs::write(&p, &text).unwrap();
    let held = fs::read_to_string(other.path().join("keys/signing.pub")).unwrap();
    let r = verify::verify(&f.dir, Some(&held)).unwrap();
    let e = r.failure.unwrap();
    assert!(
        e.kind == Found::Note && e.message.contains("no signature by"),
        "{e:?}"
    );
}

#[test]
fn retention_verifies_and_later_deletions_do_not() {
    let f = fixture();
    let mut s = Store::open(&f.dir, opts()).unwrap();
    let removed = s.retain(None, Some(3 * 60_000), now_micros()).unwrap();
    assert!(!removed.is_empty(), "nothing removed");
    s.close().unwrap();
    let r = verify::verify(&f.dir, None).unwrap();
    assert_eq!(r.failure, None, "{r:?}");
    assert_eq!(r.pruned, removed.last().unwrap().last_leaf + 1);
    assert!(r.expired_checkpoints > 0);
    assert_eq!(r.events + r.pruned, 4600);
    // Deleting the next segment by hand is not retention.
    let next = segments(&f.dir)[0].clone();
    fs::remove_file(next).unwrap();
    let e = failure(&f.dir);
    assert!(
        e.kind == Found::Segment && e.message.contains("missing"),
        "{e:?}"
    );
}

#[test]
fn a_torn_tail_passes_and_is_cut_on_open() {
    let f = fixture();
    let wal = wal_file(&f.dir);
    let mut b = fs::read(&wal).unwrap();
    let clean = b.len();
    b.extend_from_slice(&[200, 1, 0, 0, 9, 9]); // half a frame header and nothing more
    fs::write(&wal, &b).unwrap();
    let r = verify::verify(&f.dir, None).unwrap();
    assert_eq!(r.failure, None);
    assert!(r.warnings[0].contains("torn tail"), "{:?}", r.warnings);
    let mut s = Store::open(&f.dir, opts()).unwrap();
    assert!(s.recovery().torn_tail.is_some());
    assert_eq!(fs::metadata(&wal).unwrap().len() as usize, clean);
    // Nothing stored was lost: all of it is recognised again; new events go on.
    assert_eq!(import(&mut s, &traffic(4600)), (0, 4600));
    assert_eq!(import(&mut s, &traffic(100)), (100, 0));
    s.close().unwrap();
    let r = verify::verify(&f.dir, None).unwrap();
    assert_eq!((r.failure, r.events), (None, 4700));
}

/// Proves `leaf` and checks the proof with the store's own public key.
fn prove_and_check(dir: &Path, leaf: u64) -> kaudit_store::proof::Proof {
    let p = kaudit_store::proof::prove(dir, leaf, |_| {}).unwrap();
    let key = fs::read_to_string(dir.join("keys/signing.pub")).unwrap();
    let c = kaudit_store::proof::check(&p, &key).unwrap_or_else(|e| panic!("leaf {leaf}: {e}"));
    assert_eq!(c.leaf_index, leaf);
    assert_eq!(c.checkpoint.size, 4600);
    p
}

#[test]
fn inclusion_proofs_check_and_forgeries_do_not() {
    let f = fixture();
    // Leaves at segment starts and ends, inside segments, in the WAL, and the last one.
    for leaf in [
        0, 1, 299, 300, 999, 1000, 1777, 2047, 2048, 3999, 4000, 4321, 4599,
    ] {
        prove_and_check(&f.dir, leaf);
    }
    let p = prove_and_check(&f.dir, 1234);
    let key = fs::read_to_string(f.dir.join("keys/signing.pub")).unwrap();
    // The proof is self-contained: it checks with the data directory gone.
    let moved = f.dir.with_file_name("elsewhere");
    fs::rename(&f.dir, &moved).unwrap();
    assert!(kaudit_store::proof::check(&p, &key).is_ok());
    fs::rename(&moved, &f.dir).unwrap();
    // Another event's bytes, a changed path, another leaf index, a foreign key: all refused.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut forged = p.clone();
    let mut rec = b64.decode(&forged.record).unwrap();
    let at = rec.len() - 3;
    rec[at] ^= 1;
    forged.record = b64.encode(&rec);
    assert!(kaudit_store::proof::check(&forged, &key).is_err());
    let mut forged = p.clone();
    forged.path[3] = "00".repeat(32);
    assert!(kaudit_store::proof::check(&forged, &key).is_err());
    let mut forged = p.clone();
    forged.leaf_index += 1;
    assert!(kaudit_store::proof::check(&forged, &key).is_err());
    let other = fixture();
    let foreign = fs::read_to_string(other.dir.join("keys/signing.pub")).unwrap();
    assert!(kaudit_store::proof::check(&p, &foreign).is_err());
    // A leaf past the latest checkpoint has no proof yet.
    assert!(kaudit_store::proof::prove(&f.dir, 4600, |_| {}).is_err());
}

#[test]
fn proofs_after_retention() {
    let f = fixture();
    let mut s = Store::open(&f.dir, opts()).unwrap();
    let removed = s.retain(None, Some(3 * 60_000), now_micros()).unwrap();
    s.close().unwrap();
    let pruned = removed.last().unwrap().last_leaf + 1;
    // Leaves just past the boundary need subtrees that straddle it.
    for leaf in [pruned, pruned + 1, pruned + 517, 4599] {
        prove_and_check(&f.dir, leaf);
    }
    let e = kaudit_store::proof::prove(&f.dir, pruned - 1, |_| {}).unwrap_err();
    assert!(
        matches!(&e, Error::Invalid(m) if m.contains("removed by retention")),
        "{e:?}"
    );
}

/// With no sealed keys kept in memory, a re-import is recognised through the row groups'
/// request-time minutes, reading only row groups that can hold each event.
#[test]
fn reimport_is_deduplicated_from_cold_row_groups() {
    let f = fixture();
    let mut s = Store::open(&f.dir, opts()).unwrap();
    let groups: usize = s.segments().iter().map(|g| g.row_groups.len()).sum();
    let (hot, cold, _, loads) = s.dedup_stats();
    assert_eq!((cold, loads), (groups, 0));
    assert!(hot <= 600, "only the WAL's keys are hot: {hot}");
    assert_eq!(import(&mut s, &traffic(4600)), (0, 4600));
    let (_, _, _, loads) = s.dedup_stats();
    assert!(
        loads > 0 && loads as usize <= groups,
        "{loads} row group reads for {groups} groups"
    );
    // A request is known by cluster, audit ID and request time: the same IDs at other times
    // (traffic generated over the same hour at another rate) are other requests.
    assert_eq!(import(&mut s, &traffic(200)), (200, 0));
    s.close().unwrap();
}

/// A checkpoint line cut short by a crash or power loss (no newline after it) is not
/// tampering: `verify` passes with a warning, opening the store cuts it, and the checkpoints
/// signed after it are readable. Damage anywhere else in the file still fails.
#[test]
fn an_unfinished_checkpoint_line_passes_and_is_cut_on_open() {
    let f = fixture();
    let cp = f.dir.join("checkpoints.jsonl");
    let text = fs::read_to_string(&cp).unwrap();
    let last = text.lines().last().unwrap();
    // Cut inside a character (the signature line starts with an em dash), as a crash can.
    let cut = last.find('—').unwrap() + 1;
    let mut torn = text.clone().into_bytes();
    torn.extend_from_slice(&last.as_bytes()[..cut]);
    fs::write(&cp, &torn).unwrap();
    let r = verify::verify(&f.dir, None).unwrap();
    assert_eq!(r.failure, None);
    assert!(
        r.warnings[0].contains("unfinished last line"),
        "{:?}",
        r.warnings
    );

    let mut s = Store::open(&f.dir, opts()).unwrap();
    assert_eq!(s.recovery().torn_notes, vec![(cp.clone(), cut as u64)]);
    assert!(s.recovery().messages()[0].contains("unfinished last line"));
    assert_eq!(fs::read_to_string(&cp).unwrap(), text);
    assert_eq!(import(&mut s, &traffic(100)), (100, 0));
    s.close().unwrap();
    let r = verify::verify(&f.dir, None).unwrap();
    assert_eq!((r.failure, r.events), (None, 4700));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);

    // The same half line followed by a newline is a damaged note, not an unfinished write.
    let mut damaged = fs::read_to_string(&cp).unwrap();
    damaged.insert_str(0, &format!("{}\n", &last[..cut - 1]));
    fs::write(&cp, &damaged).unwrap();
    let e = failure(&f.dir);
    assert!(
        e.kind == Found::Note && e.message.contains("not readable"),
        "{e:?}"
    );
}

/// A whole checkpoint whose newline was lost is kept: opening the store ends the line.
#[test]
fn a_whole_last_checkpoint_without_its_newline_is_kept() {
    let f = fixture();
    let cp = f.dir.join("checkpoints.jsonl");
    let text = fs::read_to_string(&cp).unwrap();
    fs::write(&cp, text.trim_end_matches('\n')).unwrap();
    let r = verify::verify(&f.dir, None).unwrap();
    assert_eq!((r.failure, r.warnings.len()), (None, 0), "{:?}", r.warnings);
    let s = Store::open(&f.dir, opts()).unwrap();
    assert!(s.recovery().torn_notes.is_empty());
    drop(s);
    assert_eq!(fs::read_to_string(&cp).unwrap(), text);
}
