//! Reading stored events in leaf order while the store is being written: what live
//! detection uses to see every stored event exactly once, from a position it persists.
//!
//! A [`Follower`] reads through a [`Snapshot`]: sealed segments (only the row groups it
//! needs), then the WAL files, remembering where it stopped in the WAL so that following a
//! growing file costs only the new bytes. When it runs past what its snapshot holds (a new
//! WAL file began), or retention removed a segment before it was read, it takes a new
//! snapshot and goes on from the same leaf.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::record::StoredRecord;
use crate::snapshot::{Snapshot, WalPos};

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

/// Reads a data directory's events in leaf order, from a position.
pub struct Follower {
    dir: PathBuf,
    next: u64,
    /// The snapshot being read, and where reading stopped in its WAL (once it got there).
    view: Option<(Snapshot, Option<WalPos>)>,
}

impl Follower {
    /// A follower whose next leaf is `next`.
    pub fn new(dir: &Path, next: u64) -> Follower {
        Follower {
            dir: dir.to_path_buf(),
            next,
            view: None,
        }
    }

    /// The next leaf to be read.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Reads the records of leaves `next..to` that are stored, at most `max` of them, calling
    /// `f(leaf, record)` in leaf order. `to` should be a size the store has made durable;
    /// leaves past the end of what is stored are simply not there yet.
    pub fn read(
        &mut self,
        to: u64,
        max: u64,
        mut f: impl FnMut(u64, StoredRecord<'_>),
    ) -> Result<Progress> {
        let mut p = Progress::default();
        let mut tries = 0;
        // A snapshot is kept between calls only while reading the WAL (to go on from the byte
        // where it stopped); in the segments, each call looks afresh, so retention is noticed
        // and the removed files are not held open.
        if self.view.as_ref().is_some_and(|(_, at)| at.is_none()) {
            self.view = None;
        }
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
                Step::Raced => {
                    // A seal or retention changed the files under the snapshot: look again.
                    self.view = None;
                    tries += 1;
                    if tries > 20 {
                        return Err(Error::damaged(
                            &self.dir.join("wal"),
                            format!(
                                "the log does not continue from leaf {} (run `kaudit verify`)",
                                self.next
                            ),
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
    ) -> Result<Step> {
        if self.view.is_none() {
            self.view = Some((Snapshot::open(&self.dir)?, None));
        }
        let (snap, at) = self.view.as_mut().expect("a snapshot was just taken");
        let mut n = 0;
        let mut passed: Option<(u64, u64)> = None;
        let read = snap.records_at(self.next, to, *at, &mut |leaf, rec| {
            f(leaf, rec);
            passed = Some((passed.map_or(leaf, |(first, _)| first), leaf));
            n += 1;
            if n < max {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        });
        let (r, pos) = match read {
            Ok(x) => x,
            Err(e) => {
                // The records handed on before the error are done with: the next step goes on
                // after them, with a new snapshot (and meets the error again if it lasts).
                if let Some((first, last)) = passed {
                    p.read += n;
                    // Leaves before the first one read were removed by retention.
                    p.pruned += first - self.next;
                    self.next = last + 1;
                    self.view = None;
                    return Ok(Step::More);
                }
                // A segment removed by retention before it was opened.
                if e.is_not_found() {
                    return Ok(Step::Raced);
                }
                return Err(e);
            }
        };
        if pos.is_some() {
            // In the WAL now: the segment files read on the way are not needed again.
            snap.release_segments();
        }
        p.read += r.read;
        p.pruned += r.pruned;
        p.undecodable += r.undecodable;
        let moved = r.next > self.next;
        self.next = r.next;
        *at = pos;
        if moved {
            Ok(Step::More)
        } else {
            // Nothing more in this snapshot, but not at `to`: a new WAL file began (or a seal
            // removed what it would have read). Look again.
            Ok(Step::Raced)
        }
    }
}

enum Step {
    More,
    Raced,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{append, sealed_by_50};
    use crate::{Options, Store};
    use kaudit_model::Event;

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
        assert!(s.segments().len() >= 2, "segments were read");
        let mut g = Follower::new(dir.path(), 150);
        let (got, _) = users(&mut g, 160, 1000);
        assert_eq!(got.first().unwrap().0, 150);
        assert_eq!(got.len(), 10);
        s.close().unwrap();
    }

    #[test]
    fn leaves_removed_by_retention_are_counted_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sealed_by_50(dir.path(), 4);
        assert!(s.segments().len() >= 3);
        let mut f = Follower::new(dir.path(), 10);
        let (got, _) = users(&mut f, s.size(), 5);
        assert_eq!(got[0].0, 10);
        // Retention removes the oldest segments (keep about one segment's bytes).
        let one = s.segments().last().unwrap().bytes;
        let removed = s.retain(None, Some(one), i64::MAX).unwrap();
        assert!(!removed.is_empty());
        let first = s.segments().first().unwrap().first_leaf;
        let at = f.next();
        let (got, p) = users(&mut f, s.size(), 1000);
        assert_eq!(p.pruned, first - at, "{p:?}");
        assert_eq!(got.first().unwrap().0, first);
        assert_eq!(got.last().unwrap().0, s.size() - 1);
        assert_eq!(got.len() as u64, s.size() - first);
        s.close().unwrap();
    }

    #[test]
    fn records_handed_on_before_an_error_are_not_handed_on_again() {
        let dir = tempfile::tempdir().unwrap();
        let s = sealed_by_50(dir.path(), 3);
        assert!(s.segments().len() >= 2);
        // The second segment is damaged on disk.
        let second = dir.path().join("segments").join(&s.segments()[1].file);
        let len = std::fs::metadata(&second).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&second)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let mut f = Follower::new(dir.path(), 0);
        let (got, p) = users(&mut f, s.size(), 1000);
        assert_eq!(got.len() as u64, s.segments()[0].last_leaf + 1);
        assert_eq!(p.read, got.len() as u64);
        assert_eq!(
            f.next(),
            got.len() as u64,
            "it goes on after what it handed on"
        );
        // The damage is reported, and nothing is handed on twice.
        let mut again = 0;
        let e = f.read(s.size(), 1000, |_, _| again += 1).unwrap_err();
        assert_eq!(again, 0);
        assert!(e.to_string().contains(&s.segments()[1].file), "{e}");
        s.close().unwrap();
    }
}
