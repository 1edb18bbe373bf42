//! What opening a store repairs after a crash ([`Recovery`]): unfinished notes lines, files an
//! interrupted seal or retention left, a torn WAL tail, WAL files left unsealed; and reading
//! the WAL back (the tree's right edge and the dedup keys of what it holds).

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use kaudit_model::Stage;

use super::seal::Pending;
use crate::dedup::{Dedup, stage_bit};
use crate::error::{Error, Result, io_err};
use crate::layout::Layout;
use crate::manifest::{Manifest, unhex};
use crate::merkle::{Frontier, leaf_hash};
use crate::note::{self, Keys};
use crate::record::StoredRecord;
use crate::segment;
use crate::wal;

/// What opening found and repaired.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// A torn tail cut from the last WAL file: (file, bytes cut, why).
    pub torn_tail: Option<(PathBuf, u64, String)>,
    /// Complete WAL files found unsealed on open (an interrupted seal), sealed again.
    pub sealed_on_open: usize,
    /// An unfinished last line cut from `checkpoints.jsonl` or `retention.jsonl` (a write
    /// cut by a crash or power loss; it was never a complete signed note): (file, bytes cut).
    pub torn_notes: Vec<(PathBuf, u64)>,
    /// Segment files an interrupted seal or retention left, removed (see
    /// [`remove_leftovers`]).
    pub removed_leftovers: Vec<PathBuf>,
}

impl Recovery {
    /// What was repaired, one sentence each, for the log or the terminal.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((p, n, why)) = &self.torn_tail {
            out.push(format!(
                "recovered: cut {n} bytes of an unacknowledged write from {} ({why})",
                p.display()
            ));
        }
        for (p, n) in &self.torn_notes {
            out.push(format!(
                "recovered: cut an unfinished last line ({n} bytes) from {}",
                p.display()
            ));
        }
        for p in &self.removed_leftovers {
            out.push(format!(
                "recovered: removed {}, left by an interrupted seal or retention",
                p.display()
            ));
        }
        if self.sealed_on_open > 0 {
            out.push(format!(
                "recovered: sealing {} WAL file(s) left unsealed",
                self.sealed_on_open
            ));
        }
        out
    }
}

impl Recovery {
    /// Before the WAL is read: ends unfinished notes lines, removes temporary files, segment
    /// files an interrupted seal or retention left (when provably safe), and WAL files wholly
    /// below the sealed size (sealed, their deletion interrupted).
    pub(super) fn clean_up(
        &mut self,
        layout: &Layout,
        keys: &Keys,
        manifest: &Manifest,
    ) -> Result<()> {
        for p in [layout.checkpoints(), layout.retention()] {
            let cut = end_torn_line(&p)?;
            if cut > 0 {
                self.torn_notes.push((p, cut));
            }
        }
        self.removed_leftovers = remove_leftovers(layout, keys, manifest)?;
        let dir = layout.wal();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let p = e.map_err(io_err(&dir))?.path();
            if p.extension().is_some_and(|x| x == "tmp") {
                fs::remove_file(&p).map_err(io_err(&p))?;
            }
        }
        for (first, p) in wal::list(&dir).map_err(io_err(&dir))? {
            if first < manifest.sealed_size {
                fs::remove_file(&p).map_err(io_err(&p))?;
            }
        }
        Ok(())
    }
}

/// What the WAL holds, read back on open.
pub(super) struct Wal {
    /// The last WAL file, open for appending after its last valid frame.
    pub writer: wal::Writer,
    /// Its records.
    pub rows: u64,
    /// The tree's right edge after the last record.
    pub frontier: Frontier,
    /// The complete WAL files before it, to be sealed.
    pub pending: VecDeque<Pending>,
}

/// Reads the WAL files (after [`Recovery::clean_up`]): every record's leaf hash and dedup key;
/// complete files an interrupted (or background) seal left become pending seals; a torn tail
/// of the last file is cut, unless a signed checkpoint covers it (then it is damage, not a
/// torn write, and nothing is cut).
pub(super) fn read_wal(
    layout: &Layout,
    keys: &Keys,
    manifest: &Manifest,
    dedup: &mut Dedup,
    recovery: &mut Recovery,
) -> Result<Wal> {
    let m = layout.manifest();
    let hashes = manifest
        .sealed_frontier
        .iter()
        .map(|h| unhex(h).ok_or_else(|| Error::damaged(&m, format!("bad hash {h:?}"))))
        .collect::<Result<Vec<_>>>()?;
    let mut frontier = Frontier::from_parts(manifest.sealed_size, hashes)
        .map_err(|e| Error::damaged(&m, format!("sealed_frontier: {e}")))?;
    let files = wal::list(&layout.wal()).map_err(io_err(&layout.wal()))?;
    let n = files.len();
    let mut pending = VecDeque::new();
    let mut last: Option<(u64, PathBuf, u64, u64)> = None;
    for (i, (first, path)) in files.into_iter().enumerate() {
        if first != frontier.size() {
            return Err(Error::damaged(
                &path,
                format!(
                    "starts at leaf {first}, but the log so far ends at {}: a WAL file is \
                     missing or misplaced (run `kaudit verify`)",
                    frontier.size()
                ),
            ));
        }
        dedup.start_wal(first);
        let mut rows = 0;
        let scan = wal::scan(&path, |_, payload| {
            frontier.push(leaf_hash(payload));
            rows += 1;
            if let Ok(r) = StoredRecord::decode(payload) {
                note_seen(dedup, r.cluster, r.event);
            }
        })
        .map_err(io_err(&path))?;
        if let Some(d) = scan.damage {
            if i + 1 < n {
                return Err(Error::damaged(
                    &path,
                    format!(
                        "record {} at byte {}: {} (not the last WAL file, so not a torn write: \
                         run `kaudit verify`)",
                        d.record, d.offset, d.what
                    ),
                ));
            }
            let len = fs::metadata(&path).map_err(io_err(&path))?.len();
            recovery.torn_tail = Some((path.clone(), len - scan.valid_len, d.what));
        }
        if i + 1 < n {
            // A complete file an interrupted (or background) seal left behind.
            pending.push_back(Pending {
                first,
                last: frontier.size() - 1,
                path: Some(path),
                frontier_after: frontier.hashes().to_vec(),
                live: None,
            });
            recovery.sealed_on_open += 1;
        } else {
            last = Some((first, path, scan.valid_len, rows));
        }
    }
    // A checkpoint is signed only after the WAL is fsync'd: leaves it covers were durable.
    // If the WAL now ends before them, the damage is not a torn write, and cutting it would
    // destroy acknowledged events.
    if let Some((p, _, why)) = &recovery.torn_tail {
        let signed =
            note::latest_checkpoint(&layout.checkpoints(), keys)?.map_or(0, |(_, c)| c.size);
        if signed > frontier.size() {
            return Err(Error::damaged(
                p,
                format!(
                    "damaged at leaf {} ({why}), but a signed checkpoint covers {signed} \
                     leaves: acknowledged events are damaged, not a torn write; nothing was \
                     cut (run `kaudit verify`)",
                    frontier.size()
                ),
            ));
        }
    }
    let (writer, rows) = match last {
        Some((first, path, valid, rows)) => (
            wal::Writer::reopen(&path, first, valid).map_err(io_err(&path))?,
            rows,
        ),
        None => {
            dedup.start_wal(frontier.size());
            (
                wal::Writer::create(&layout.wal(), frontier.size())
                    .map_err(io_err(&layout.wal()))?,
                0,
            )
        }
    };
    Ok(Wal {
        writer,
        rows,
        frontier,
        pending,
    })
}

/// Ends an unfinished last line (no newline after it) of a file of signed notes, as a crash or
/// power loss can leave it: one that is a whole note gets its newline; anything else was never
/// a complete note and is cut (a line appended after it would make both unreadable).
/// Returns the bytes cut.
fn end_torn_line(path: &Path) -> Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(path, e)),
    };
    let len = f.metadata().map_err(io_err(path))?.len();
    // Back from the end, a block at a time, to the last newline.
    let mut end = len;
    let mut buf = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start)).map_err(io_err(path))?;
        f.read_exact(chunk).map_err(io_err(path))?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            end = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if end == len {
        return Ok(0);
    }
    let mut tail = Vec::new();
    f.seek(SeekFrom::Start(end)).map_err(io_err(path))?;
    f.read_to_end(&mut tail).map_err(io_err(path))?;
    if serde_json::from_slice::<note::Line>(&tail).is_ok() {
        f.seek(SeekFrom::End(0)).map_err(io_err(path))?;
        f.write_all(b"\n").map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))?;
        return Ok(0);
    }
    f.set_len(end).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))?;
    Ok(len - end)
}

/// Removes what an interrupted seal or retention left in `segments/`, and returns the
/// segment files removed. Temporary files go. A segment file the manifest does not list goes
/// only when that is provably safe, since the manifest is not signed (an older copy put back
/// must not cost the segments it does not know):
/// - past the sealed size, when its events are still in the WAL (a WAL file starts where it
///   does: the seal is done again) or no signed checkpoint reaches it (a bulk load signs one
///   only after the manifest lists the segment: its events are loaded again);
/// - below the retained boundary, when a signed retention record names it (retention saves
///   the manifest before deleting files).
///
/// Any other unlisted file stays, for `verify` to report.
fn remove_leftovers(layout: &Layout, keys: &Keys, manifest: &Manifest) -> Result<Vec<PathBuf>> {
    let dir = layout.segments();
    let mut candidates = Vec::new();
    for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
        let p = e.map_err(io_err(&dir))?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match segment::leaves_of(&name) {
            Some(leaves) if !manifest.segments.iter().any(|s| s.file == name) => {
                candidates.push((p, name, leaves))
            }
            Some(_) => {}
            None if p.extension().is_some_and(|x| x == "tmp") => {
                fs::remove_file(&p).map_err(io_err(&p))?;
            }
            None => {}
        }
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let wal_starts: Vec<u64> = wal::list(&layout.wal())
        .map_err(io_err(&layout.wal()))?
        .into_iter()
        .map(|(first, _)| first)
        .collect();
    let signed = note::latest_checkpoint(&layout.checkpoints(), keys)?.map_or(0, |(_, c)| c.size);
    let retired = signed_removals(layout, keys)?;
    let mut removed = Vec::new();
    for (p, name, (first, last)) in candidates {
        let unsealed =
            first >= manifest.sealed_size && (wal_starts.contains(&first) || signed <= first);
        let retained = last < manifest.pruned_size && retired.contains(&name);
        if unsealed || retained {
            fs::remove_file(&p).map_err(io_err(&p))?;
            removed.push(p);
        }
    }
    Ok(removed)
}

/// The segment files signed retention records say were removed.
fn signed_removals(layout: &Layout, keys: &Keys) -> Result<std::collections::HashSet<String>> {
    Ok(note::signed_bodies(&layout.retention(), keys)?
        .iter()
        .flat_map(|body| {
            body.lines()
                .filter_map(|l| l.strip_prefix("removed ")?.split(' ').next())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect())
}

fn note_seen(dedup: &mut Dedup, cluster: &str, event: &str) {
    #[derive(serde::Deserialize)]
    struct Key<'a> {
        #[serde(rename = "auditID", borrow, default)]
        audit_id: std::borrow::Cow<'a, str>,
        #[serde(default)]
        stage: Option<Stage>,
        #[serde(rename = "requestReceivedTimestamp", default)]
        time: Option<kaudit_model::MicroTime>,
    }
    if let Ok(k) = serde_json::from_str::<Key<'_>>(event)
        && !k.audit_id.is_empty()
    {
        let key = dedup.key(cluster, &k.audit_id, k.time.map(|t| t.micros()));
        dedup.note(key, stage_bit(k.stage));
    }
}
