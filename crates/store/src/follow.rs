//! Reading stored events in leaf order while the store is being written: what live
//! detection uses to see every stored event exactly once, from a position it persists.
//!
//! A [`Follower`] reads sealed segments (only the row groups it needs) and then the WAL
//! files, remembering where it stopped in the current WAL file so that following a growing
//! file costs only the new bytes. A seal that finishes meanwhile (the WAL file is deleted once
//! its segment is listed) or retention (segments removed) is noticed and handled: the
//! manifest is read again and reading goes on from the same leaf.

use std::path::{Path, PathBuf};

use arrow_array::{StringArray, TimestampMicrosecondArray, UInt64Array};

use crate::manifest::Manifest;
use crate::record::StoredRecord;
use crate::segment;
use crate::store::Layout;
use crate::wal;

/// What one [`Follower::read`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Records passed to the callback.
    pub read: u64,
    /// Leaves that could not be read because retention removed them first.
    pub pruned: u64,
    /// WAL records passed over because they do not decode (`kaudit verify` names them).
    pub undecodable: u64,
}

/// Where a follower is in the current WAL file.
#[derive(Clone, Debug)]
struct WalPos {
    first: u64,
    path: PathBuf,
    /// The byte offset of the frame of leaf `leaf`.
    offset: u64,
    leaf: u64,
}

/// Reads a data directory's events in leaf order, from a position.
pub struct Follower {
    layout: Layout,
    next: u64,
    wal: Option<WalPos>,
}

impl Follower {
    /// A follower whose next leaf is `next`.
    pub fn new(dir: &Path, next: u64) -> Follower {
        Follower {
            layout: Layout {
                root: dir.to_path_buf(),
            },
            next,
            wal: None,
        }
    }

    /// The next leaf to be read.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Reads the records of leaves `next..to` that are stored, at most about `max` of them
    /// (a row group of a segment is read whole), calling `f(leaf, record)` in leaf order.
    /// `to` should be a size the store has made durable; leaves past the end of what is
    /// stored are simply not there yet.
    pub fn read(
        &mut self,
        to: u64,
        max: u64,
        mut f: impl FnMut(u64, StoredRecord<'_>),
    ) -> Result<Progress, String> {
        let mut p = Progress::default();
        let mut tries = 0;
        while self.next < to && p.read < max {
            let before = (self.next, p.read);
            let step = match self.step(to, max - p.read, &mut p, &mut f) {
                Ok(s) => s,
                // What was read before the error is returned; the next call meets the error
                // again (or not, if it was passing).
                Err(_) if p.read > 0 || p.pruned > 0 => return Ok(p),
                Err(e) => return Err(e),
            };
            match step {
                Step::More => {}
                Step::Done => break,
                Step::Raced => {
                    // A seal or retention changed the files under us: look again.
                    self.wal = None;
                    tries += 1;
                    if tries > 20 {
                        return Err(format!(
                            "{}: the WAL does not continue from leaf {} (run `kaudit verify`)",
                            self.layout.wal().display(),
                            self.next
                        ));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5 * tries));
                }
            }
            if (self.next, p.read) != before {
                tries = 0;
            }
        }
        Ok(p)
    }

    fn step(
        &mut self,
        to: u64,
        max: u64,
        p: &mut Progress,
        f: &mut impl FnMut(u64, StoredRecord<'_>),
    ) -> Result<Step, String> {
        if let Some(w) = self.wal.clone()
            && w.leaf == self.next
        {
            return self.read_wal(w, to, max, p, f);
        }
        let m = Manifest::load(&self.layout.manifest())
            .map_err(|e| format!("{}: {e}", self.layout.manifest().display()))?;
        if self.next < m.pruned_size {
            p.pruned += m.pruned_size - self.next;
            self.next = m.pruned_size;
        }
        if self.next < m.sealed_size {
            return self.read_segments(&m, to, max, p, f);
        }
        let files = wal::list(&self.layout.wal())
            .map_err(|e| format!("{}: {e}", self.layout.wal().display()))?;
        // The file holding `next`: the last one starting at or before it.
        let Some((first, path)) = files
            .into_iter()
            .rev()
            .find(|(first, _)| *first <= self.next)
        else {
            return Ok(Step::Raced);
        };
        if first < m.sealed_size {
            return Ok(Step::Raced);
        }
        let w = WalPos {
            first,
            path,
            offset: wal::HEADER,
            leaf: first,
        };
        self.read_wal(w, to, max, p, f)
    }

    fn read_segments(
        &mut self,
        m: &Manifest,
        to: u64,
        max: u64,
        p: &mut Progress,
        f: &mut impl FnMut(u64, StoredRecord<'_>),
    ) -> Result<Step, String> {
        let Some(s) = m.segments.iter().find(|s| s.last_leaf >= self.next) else {
            // Nothing listed holds `next` although it is below the sealed size: retention
            // removed it between reading the sizes and the list.
            return Ok(Step::Raced);
        };
        if s.first_leaf > self.next {
            p.pruned += s.first_leaf - self.next;
            self.next = s.first_leaf;
        }
        // The row groups from the one holding `next`, until `max` records or `to`.
        let mut groups = Vec::new();
        let mut at = s.first_leaf;
        let mut want = 0;
        for (i, g) in s.row_groups.iter().enumerate() {
            let end = at + g.rows;
            if end > self.next && at < to && want < max {
                groups.push(i);
                want += end - at.max(self.next);
            }
            at = end;
        }
        if groups.is_empty() {
            return Err(format!(
                "{}: the manifest lists no row group holding leaf {} (run `kaudit verify`)",
                self.layout.manifest().display(),
                self.next
            ));
        }
        let path = self.layout.segments().join(&s.file);
        let mut leaf_next = self.next;
        let r = segment::read(
            &path,
            &["leaf", "received", "cluster", "event"],
            Some(groups),
            |b| {
                let leaf = segment::col::<UInt64Array>(&b, "leaf")?;
                let rec = segment::col::<TimestampMicrosecondArray>(&b, "received")?;
                let cl = segment::col::<StringArray>(&b, "cluster")?;
                let ev = segment::col::<StringArray>(&b, "event")?;
                for i in 0..b.num_rows() {
                    let l = leaf.value(i);
                    if l < leaf_next || l >= to {
                        continue;
                    }
                    f(
                        l,
                        StoredRecord {
                            received: rec.value(i),
                            cluster: cl.value(i),
                            event: ev.value(i),
                        },
                    );
                    p.read += 1;
                    leaf_next = l + 1;
                }
                Ok(())
            },
        );
        // Whatever happened, the records handed on are done with.
        let moved = leaf_next > self.next;
        self.next = leaf_next;
        match r {
            Ok(()) if moved => Ok(Step::More),
            // The groups held none of the leaves wanted: the manifest is wrong.
            Ok(()) => Err(format!(
                "{}: leaf {} is not where the manifest says (run `kaudit verify`)",
                path.display(),
                self.next
            )),
            // Removed by retention meanwhile.
            Err(_) if !moved && !path.exists() => Ok(Step::Raced),
            Err(e) => Err(e),
        }
    }

    fn read_wal(
        &mut self,
        mut w: WalPos,
        to: u64,
        max: u64,
        p: &mut Progress,
        f: &mut impl FnMut(u64, StoredRecord<'_>),
    ) -> Result<Step, String> {
        if w.offset == wal::HEADER {
            // A file not read before: its header must agree with its name before any of its
            // records is handed on under a leaf number.
            match wal::first_leaf(&w.path) {
                Ok(first) if first == w.first => {}
                Ok(first) => {
                    return Err(format!(
                        "{}: its header says it starts at leaf {first} (run `kaudit verify`)",
                        w.path.display()
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Step::Raced),
                Err(e) => return Err(format!("{}: {e}", w.path.display())),
            }
        }
        let mut leaf = w.leaf;
        let want = self.next;
        let mut read = 0u64;
        let mut undecodable = 0u64;
        let scan = wal::scan_from(&w.path, w.offset, |_, payload| {
            if leaf >= want {
                match StoredRecord::decode(payload) {
                    Ok(r) => {
                        f(leaf, r);
                        read += 1;
                    }
                    // Passed over and counted; `kaudit verify` names it.
                    Err(_) => undecodable += 1,
                }
            }
            leaf += 1;
            leaf < to && read < max
        });
        // Whatever happened, the records handed on are done with.
        p.read += read;
        p.undecodable += undecodable;
        self.next = self.next.max(leaf);
        let scan = match scan {
            Ok(s) => s,
            Err(e) => {
                self.wal = None;
                if e.kind() == std::io::ErrorKind::NotFound && leaf == w.leaf {
                    return Ok(Step::Raced);
                }
                return Err(format!("{}: {e}", w.path.display()));
            }
        };
        w.offset = scan.valid_len;
        w.leaf = leaf;
        let moved = w.leaf > want || read > 0;
        self.wal = Some(w);
        if moved {
            Ok(Step::More)
        } else if leaf < to {
            // At the end of this file but not at `to`: the next file has begun (or a seal
            // removed this one); look at the directory again.
            self.wal = None;
            Ok(Step::Raced)
        } else {
            Ok(Step::Done)
        }
    }
}

enum Step {
    More,
    Done,
    Raced,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Incoming, Options, Store};
    use kaudit_model::Event;

    fn event(i: u64) -> String {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{i:08}-0000-0000-0000-000000000000","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{{"username":"u{i}"}},"requestReceivedTimestamp":"2026-01-01T00:00:00.000000Z","stageTimestamp":"2026-01-01T00:00:00.000000Z"}}"#
        )
    }

    fn append(s: &mut Store, from: u64, n: u64) {
        let raws: Vec<String> = (from..from + n).map(event).collect();
        let evs: Vec<Event<'_>> = raws
            .iter()
            .map(|r| serde_json::from_str(r).unwrap())
            .collect();
        let inc: Vec<Incoming<'_>> = raws
            .iter()
            .zip(&evs)
            .map(|(r, e)| Incoming::new(1, "c", r, e))
            .collect();
        s.append(&inc).unwrap();
    }

    fn users(f: &mut Follower, to: u64, max: u64) -> (Vec<(u64, String)>, Progress) {
        let mut out = Vec::new();
        let p = f
            .read(to, max, |leaf, r| {
                let e: Event<'_> = serde_json::from_str(r.event).unwrap();
                out.push((leaf, e.user.username.to_string()));
            })
            .unwrap();
        (out, p)
    }

    #[test]
    fn follows_across_seals_and_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            seal_rows: 100,
            ..Options::default()
        };
        let mut s = Store::open(dir.path(), opts).unwrap();
        let mut f = Follower::new(dir.path(), 0);
        let mut seen = Vec::new();
        for round in 0..7u64 {
            append(&mut s, round * 45, 45);
            let (got, _) = users(&mut f, s.size(), 30);
            seen.extend(got);
            if round % 3 == 2 {
                s.poll_seals(true).unwrap();
            }
        }
        // Catch up the rest, in small steps.
        loop {
            let (got, p) = users(&mut f, s.size(), 17);
            if p.read == 0 {
                break;
            }
            seen.extend(got);
        }
        assert_eq!(seen.len(), 315);
        for (i, (leaf, user)) in seen.iter().enumerate() {
            assert_eq!((*leaf, user.as_str()), (i as u64, format!("u{i}").as_str()));
        }
        // A new follower from the middle of a sealed segment reads from there.
        s.poll_seals(true).unwrap();
        assert!(s.manifest().segments.len() >= 2, "segments were read");
        let mut g = Follower::new(dir.path(), 150);
        let (got, _) = users(&mut g, 160, 1000);
        assert_eq!(got.first().unwrap().0, 150);
        assert_eq!(got.len(), 10);
        s.close().unwrap();
    }

    #[test]
    fn leaves_removed_by_retention_are_counted_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            seal_rows: 50,
            ..Options::default()
        };
        let mut s = Store::open(dir.path(), opts).unwrap();
        for i in 0..4 {
            append(&mut s, i * 50, 50);
        }
        s.poll_seals(true).unwrap();
        assert!(s.manifest().segments.len() >= 3);
        let mut f = Follower::new(dir.path(), 10);
        let (got, _) = users(&mut f, s.size(), 5);
        assert_eq!(got[0].0, 10);
        // Retention removes the oldest segments (keep about one segment's bytes).
        let one = s.manifest().segments.last().unwrap().bytes;
        let removed = s.retain(None, Some(one), i64::MAX).unwrap();
        assert!(!removed.is_empty());
        let first = s.manifest().segments.first().unwrap().first_leaf;
        let at = f.next();
        let (got, p) = users(&mut f, s.size(), 1000);
        assert_eq!(p.pruned, first - at, "{p:?}");
        assert_eq!(got.first().unwrap().0, first);
        assert_eq!(got.last().unwrap().0, s.size() - 1);
        assert_eq!(got.len() as u64, s.size() - first);
        s.close().unwrap();
    }
}
