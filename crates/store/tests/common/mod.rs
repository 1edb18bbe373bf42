//! Helpers shared by the store's integration tests.

#![allow(dead_code)] // each test binary uses some of these

use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kaudit_gen::{Config, generate};
use kaudit_model::{MicroTime, decode};
use kaudit_store::verify::{self, Failure};
use kaudit_store::{Incoming, Options, Store};

/// `n` generated events (recipe profile, one hour of a 3-node cluster from 2026-03-01) as an
/// audit.log.
pub fn traffic(n: u64, seed: u64) -> Vec<u8> {
    let start = MicroTime::parse("2026-03-01T00:00:00Z").unwrap();
    let cfg = Config::recipe(n, start, 3600 * 1_000_000, seed, 3);
    let mut out = Vec::new();
    generate(&cfg, &mut out).unwrap();
    out
}

/// The fixture's traffic: `n` generated events, seed 11.
pub fn traffic_of(n: u64) -> Vec<u8> {
    traffic(n, 11)
}

pub fn opts() -> Options {
    Options {
        seal_rows: 1000,
        checkpoint_every: Duration::ZERO,
        // Several row groups per segment.
        row_group_rows: 300,
        dedup_hot_rows: 0,
    }
}

/// Appends every event of `data` in batches of 250; returns (stored, duplicates).
pub fn import(store: &mut Store, data: &[u8]) -> (u64, u64) {
    let mut batch = Vec::new();
    decode::decode_slice(data, |r| {
        let r = r.unwrap();
        batch.push((r.raw, r.event));
        ControlFlow::Continue(())
    });
    let (mut s, mut d) = (0, 0);
    for chunk in batch.chunks(250) {
        let inc: Vec<Incoming<'_>> = chunk
            .iter()
            .map(|(raw, e)| Incoming::new(1_772_323_200_000_000, "prod", raw, e))
            .collect();
        let a = store.append(&inc).unwrap();
        s += a.stored;
        d += a.duplicates;
    }
    (s, d)
}

pub struct Fixture {
    pub _tmp: tempfile::TempDir,
    pub dir: PathBuf,
}

/// 4,600 events: four sealed segments of 1,000 and 600 in the WAL.
pub fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut s = Store::open(&dir, opts()).unwrap();
    let (stored, dups) = import(&mut s, &traffic_of(4600));
    assert_eq!((stored, dups), (4600, 0));
    s.close().unwrap();
    Fixture { _tmp: tmp, dir }
}

pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

pub fn wal_file(dir: &Path) -> PathBuf {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v.pop().unwrap()
}

pub fn failure(dir: &Path) -> Failure {
    let r = verify::verify(dir, None).unwrap();
    let dbg = format!("{r:?}");
    r.failure
        .unwrap_or_else(|| panic!("tampering not caught: {dbg}"))
}

pub fn flip(path: &Path, at: usize) {
    let mut b = fs::read(path).unwrap();
    b[at] ^= 0x20;
    fs::write(path, b).unwrap();
}
