//! Deduplication with little memory: long-running requests (watches) finishing long after
//! they started, retries of old batches, a restart in between. The answer is always exact;
//! the point is also how much it costs (cold row groups read).

use std::time::Duration;

use kaudit_model::Stage;
use kaudit_store::{Incoming, Options, Store};

fn opts() -> Options {
    Options {
        seal_rows: 1000,
        checkpoint_every: Duration::ZERO,
        row_group_rows: 250,
        dedup_hot_rows: 1000,
    }
}

/// Event `n` of request `req` at stage `stage`; requests start one per 10 ms.
fn event(req: u64, stage: &str) -> (String, String, Option<Stage>, i64) {
    let t = 1_772_323_200_000_000 + req as i64 * 10_000;
    let id = format!("00000000-0000-4000-8000-{req:012}");
    let secs = (t / 1_000_000) % 86_400;
    let raw = format!(
        r#"{{"level":"Metadata","auditID":"{id}","stage":"{stage}","requestURI":"/api/v1/pods?watch=true","verb":"watch","user":{{"username":"u"}},"requestReceivedTimestamp":"2026-03-01T{:02}:{:02}:{:02}.{:06}Z"}}"#,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        t % 1_000_000
    );
    (raw, id, stage.parse().ok(), t)
}

fn append(s: &mut Store, evs: &[(String, String, Option<Stage>, i64)]) -> (u64, u64) {
    let inc: Vec<Incoming<'_>> = evs
        .iter()
        .map(|(raw, id, stage, t)| Incoming {
            received: 0,
            cluster: "c",
            raw,
            audit_id: id,
            stage: *stage,
            time: Some(*t),
            // Without its columns: the store parses `raw` for them.
            row: None,
        })
        .collect();
    let a = s.append(&inc).unwrap();
    (a.stored, a.duplicates)
}

#[test]
fn watches_finish_late_without_reading_cold_row_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut s = Store::open(&dir, opts()).unwrap();
    // 200 watches start; then 20,000 short requests (start and finish together) push them far
    // out of the hot window; then the watches finish, and a retry of an old batch arrives.
    let starts: Vec<_> = (0..200).map(|r| event(r, "ResponseStarted")).collect();
    assert_eq!(append(&mut s, &starts), (200, 0));
    for chunk in (200..20_200u64).collect::<Vec<_>>().chunks(500) {
        let evs: Vec<_> = chunk
            .iter()
            .flat_map(|&r| [event(r, "ResponseStarted"), event(r, "ResponseComplete")])
            .collect();
        append(&mut s, &evs);
    }
    s.seal().unwrap();
    let (_, cold, _, loads0) = s.dedup_stats();
    assert!(cold > 100, "{cold} cold row groups");
    // New requests in the same minutes as cold row groups are ruled out by Bloom filters.
    // (40,400 events stored; without them every one would search its minute's row groups.)
    // The false positives vary with the random key seed: 60 to 160 row groups in runs here,
    // so the bound is 1% of the events (it was 100, which failed about a third of runs).
    assert!(
        loads0 < 404,
        "{loads0} cold row groups read while storing new requests"
    );
    let ends: Vec<_> = (0..200).map(|r| event(r, "ResponseComplete")).collect();
    assert_eq!(append(&mut s, &ends), (200, 0));
    let (_, _, _, loads1) = s.dedup_stats();
    assert_eq!(
        loads1, loads0,
        "finishing open requests read cold row groups"
    );
    // Retries: the watches' starts again, and an old batch of short requests.
    assert_eq!(append(&mut s, &starts), (0, 200));
    assert_eq!(append(&mut s, &ends), (0, 200));
    let old: Vec<_> = (300..400u64)
        .flat_map(|r| [event(r, "ResponseStarted"), event(r, "ResponseComplete")])
        .collect();
    assert_eq!(append(&mut s, &old), (0, 200));
    s.close().unwrap();

    // After a restart nothing is hot but the newest rows: still exact.
    let mut s = Store::open(&dir, opts()).unwrap();
    assert_eq!(append(&mut s, &starts), (0, 200));
    assert_eq!(append(&mut s, &ends), (0, 200));
    assert_eq!(append(&mut s, &old), (0, 200));
    // Watches started before the restart and finishing after it.
    let late: Vec<_> = (20_300..20_350u64)
        .map(|r| event(r, "ResponseStarted"))
        .collect();
    assert_eq!(append(&mut s, &late), (50, 0));
    s.close().unwrap();
    let mut s = Store::open(&dir, opts()).unwrap();
    let more: Vec<_> = (30_000..33_000u64)
        .flat_map(|r| [event(r, "ResponseStarted"), event(r, "ResponseComplete")])
        .collect();
    for c in more.chunks(1000) {
        append(&mut s, c);
    }
    s.seal().unwrap();
    let late_end: Vec<_> = (20_300..20_350u64)
        .map(|r| event(r, "ResponseComplete"))
        .collect();
    assert_eq!(append(&mut s, &late_end), (50, 0));
    assert_eq!(append(&mut s, &late), (0, 50));
    s.close().unwrap();
}

/// Stages out of order: a request's ResponseComplete goes cold before its ResponseStarted
/// arrives and goes cold too (the request then looks open); a retried ResponseComplete is
/// still a duplicate. (The crash test found this.)
#[test]
fn a_completion_that_went_cold_first_is_still_known() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Store::open(&tmp.path().join("data"), opts()).unwrap();
    let filler = |s: &mut Store, from: u64| {
        let evs: Vec<_> = (from..from + 3000)
            .flat_map(|r| [event(r, "ResponseStarted"), event(r, "ResponseComplete")])
            .collect();
        for c in evs.chunks(1000) {
            append(s, c);
        }
    };
    let ends: Vec<_> = (0..50).map(|r| event(r, "ResponseComplete")).collect();
    let starts: Vec<_> = (0..50).map(|r| event(r, "ResponseStarted")).collect();
    assert_eq!(append(&mut s, &ends), (50, 0));
    filler(&mut s, 1000);
    assert_eq!(append(&mut s, &starts), (50, 0));
    filler(&mut s, 10_000);
    s.seal().unwrap();
    assert_eq!(
        append(&mut s, &ends),
        (0, 50),
        "a retried completion stored twice"
    );
    assert_eq!(append(&mut s, &starts), (0, 50));
    s.close().unwrap();
}
