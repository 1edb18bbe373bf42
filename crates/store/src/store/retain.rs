//! Retention: whole segments, oldest first, by age or total size; what is removed is recorded
//! in `retention.jsonl`, signed, before anything is removed.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::time::Duration;

use super::Store;
use crate::error::{Result, io_err};
use crate::manifest::SegmentMeta;
use crate::note;

impl Store {
    /// Removes whole segments, oldest first, while they are older than `max_age` (by their
    /// newest event) or the segments together exceed `max_bytes`. Records what it removed in
    /// `retention.jsonl`, signed, before removing anything.
    pub fn retain(
        &mut self,
        max_age: Option<Duration>,
        max_bytes: Option<u64>,
        now: i64,
    ) -> Result<Vec<SegmentMeta>> {
        let mut total: u64 = self.manifest.segments.iter().map(|s| s.bytes).sum();
        let mut n = 0;
        let mut reasons = Vec::new();
        for s in &self.manifest.segments {
            let old =
                max_age.is_some_and(|a| s.max_time.is_some_and(|t| t < now - a.as_micros() as i64));
            let big = max_bytes.is_some_and(|m| total > m);
            if !old && !big {
                break;
            }
            reasons.push(if old {
                format!("older than {}s", max_age.unwrap().as_secs())
            } else {
                format!("over {} bytes", max_bytes.unwrap())
            });
            total -= s.bytes;
            n += 1;
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let removed: Vec<SegmentMeta> = self.manifest.segments[..n].to_vec();
        let last = removed.last().unwrap();
        let prefix = last.last_leaf + 1;
        let mut body = format!("kaudit-retention/{}\n", self.keys.origin);
        for (s, why) in removed.iter().zip(&reasons) {
            // `newest`: its latest request time (what `verify` needs to tell a request whose
            // first stage was removed from a `first` flag rewritten).
            let newest = s.max_time.map_or(String::new(), |t| {
                format!(" newest {}", kaudit_model::MicroTime(t))
            });
            body.push_str(&format!(
                "removed {} leaves {}-{} rows {} sha256 {}{newest} ({why})\n",
                s.file, s.first_leaf, s.last_leaf, s.rows, s.sha256
            ));
        }
        body.push_str(&format!("prefix {prefix}\n"));
        body.push_str(&format!("frontier {}\n", last.frontier_after.join(" ")));
        body.push_str(&format!("time {}\n", kaudit_model::MicroTime(now)));
        let note = self.keys.sign(&body);
        let line = note::Line::to_line(note);
        let p = self.layout.retention();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(io_err(&p))?;
        f.write_all(line.as_bytes()).map_err(io_err(&p))?;
        f.sync_all().map_err(io_err(&p))?;
        // The new manifest is saved before anything in memory changes: a failed save leaves
        // the store as it was (the signed record of a removal not done is harmless: `verify`
        // checks the segments listed).
        let mut m = self.manifest.clone();
        m.segments.drain(..n);
        m.pruned_size = prefix;
        m.save(&self.layout.manifest())?;
        self.manifest = m;
        self.dedup.retained(prefix);
        for s in &removed {
            let p = self.layout.segments().join(&s.file);
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
        Ok(removed)
    }
}
