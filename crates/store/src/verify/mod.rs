//! `kaudit verify`: recompute everything from the stored bytes.
//!
//! Walks the retention records, the sealed segments and the WAL in leaf order (through one
//! [`Snapshot`]), recomputing every leaf hash and the Merkle root at each signed checkpoint's
//! size, and deriving again from the stored events everything queries answer from (typed
//! columns, the manifest's index, footer counts: [`derive`]). Reports the first place the
//! data and the signed history disagree.

mod derive;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::ops::ControlFlow;
use std::path::Path;

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::manifest::Manifest;
use crate::merkle::{Frontier, Hash, hex, leaf_hash, retention_edge};
use crate::note::{self, Checkpoint, Keys};
use crate::segment;
use crate::snapshot::{Snapshot, WalPos};
use crate::wal;

/// What verification found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Events recomputed from the data.
    pub events: u64,
    pub segments: usize,
    pub wal_records: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: usize,
    /// Checkpoints older than the retention boundary (signature checked, root no longer
    /// recomputable).
    pub expired_checkpoints: usize,
    /// Leaves removed by retention, as recorded in signed retention notes.
    pub pruned: u64,
    pub retention_records: usize,
    /// The largest tree size whose signed checkpoint matched the data.
    pub verified_size: u64,
    /// The tree size and root after the last leaf.
    pub size: u64,
    pub root: Option<Hash>,
    /// Problems that do not mean tampering (a torn, unacknowledged WAL tail).
    pub warnings: Vec<String>,
    /// The first problem found; `None` when everything is intact.
    pub failure: Option<Failure>,
}

/// The first problem `verify` found: what kind, and where (the message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: Found,
    pub message: String,
}

/// The kinds of problem `verify` finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// A signed note (a checkpoint or a retention record) is unreadable, not signed by the
    /// key, of another log, or contradicts another.
    Note,
    /// The manifest disagrees with the signed retention records, or with what the segments'
    /// events say (rows, time ranges, minutes, term sets, the tree's edges).
    Manifest,
    /// A segment is missing, unreadable, reordered, replaced, cut, or differs from the file
    /// that was sealed.
    Segment,
    /// A WAL file is altered, cut, missing or misplaced.
    Wal,
    /// The data does not match a signed checkpoint: an event was altered, removed or
    /// reordered.
    Mismatch,
    /// Fewer events are present than a signed checkpoint covers.
    Truncated,
    /// A typed column (or a count in a segment's footer) is not what the stored event says:
    /// queries answer from these columns.
    Column,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn fail<T>(kind: Found, message: impl Into<String>) -> std::result::Result<T, Failure> {
    Err(Failure {
        kind,
        message: message.into(),
    })
}

/// Damage a read ran into, as what it means for verification.
fn found(kind: Found) -> impl Fn(Error) -> Failure {
    move |e| Failure {
        kind,
        message: e.to_string(),
    }
}

/// Verifies the data directory at `dir`. `key` is an independently held public key (PEM or
/// note verifier key); without it the key in the data directory is used. `Err` means the
/// directory could not be read at all; what is wrong with what is stored is in
/// [`Report::failure`].
pub fn verify(dir: &Path, key: Option<&str>) -> Result<Report> {
    let layout = Layout::new(dir);
    if !layout.manifest().exists() {
        return Err(Error::NotAStore {
            dir: dir.to_path_buf(),
        });
    }
    let mut attempt = 0;
    loop {
        // Retention run by a live writer while this reads (it signs a retention record, saves
        // the manifest, removes the oldest segments) can make an honest store look damaged:
        // when what failed was read while the retention boundary moved, look again from the
        // start. Each look must pass on its own.
        let pruned_before = current_pruned(&layout);
        let r = verify_once(dir, &layout, key)?;
        attempt += 1;
        if r.failure.is_some() && attempt < 3 && current_pruned(&layout) != pruned_before {
            continue;
        }
        return Ok(r);
    }
}

/// The retention boundary the manifest gives now (`None` when it cannot be read).
fn current_pruned(layout: &Layout) -> Option<u64> {
    Manifest::load(&layout.manifest())
        .ok()
        .map(|m| m.pruned_size)
}

fn verify_once(dir: &Path, layout: &Layout, key: Option<&str>) -> Result<Report> {
    // Checkpoints are read before the manifest: a writer lists a segment before it signs a
    // checkpoint covering it (a bulk load), so read in this order the two never disagree
    // falsely while it runs.
    let checkpoints = note::read_text(&layout.checkpoints())?;
    let mut r = Report::default();
    // Taken as found: a WAL that does not continue where the segments end is reported (file
    // and leaves) after everything before it is checked. A manifest that cannot be read is
    // an error: there is nothing to verify against.
    let snap = Snapshot::open_as_found(dir)?;
    let keys = match key {
        Some(k) => Keys::verifier(snap.origin().to_string(), k).map_err(Error::Invalid)?,
        None => {
            let path = layout.public_key();
            let pem = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            Keys::verifier(snap.origin().to_string(), &pem).map_err(|e| Error::damaged(&path, e))?
        }
    };
    if let Err(f) = run(&snap, &keys, &checkpoints, &mut r) {
        r.failure = Some(f);
    }
    Ok(r)
}

/// The signed notes of `text` (the file at `path`), one per line, with their line numbers.
fn read_notes(
    path: &Path,
    text: &str,
    keys: &Keys,
    what: &str,
    warnings: &mut Vec<String>,
) -> std::result::Result<Vec<(usize, String)>, Failure> {
    let mut out = Vec::new();
    let lines = text.lines().count();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", path.display(), i + 1);
        let l: note::Line = match serde_json::from_str(line) {
            Ok(l) => l,
            // An unfinished last line: a write cut by a crash or power loss (opening the
            // store cuts it). Not a note, so nothing it vouched for is lost.
            Err(_) if i + 1 == lines && !text.ends_with('\n') => {
                warnings.push(format!(
                    "{at}: an unfinished last line ({} bytes), a write cut by a crash; ignored \
                     (opening the store cuts it)",
                    line.len()
                ));
                continue;
            }
            Err(e) => return fail(Found::Note, format!("{at}: {what} is not readable: {e}")),
        };
        match keys.open(&l.note) {
            Ok(body) => out.push((i + 1, body.to_string())),
            Err(e) => return fail(Found::Note, format!("{at}: {what}: {e}")),
        }
    }
    Ok(out)
}

/// The signed checkpoints by tree size, checked against each other.
fn checkpoints(
    path: &Path,
    text: &str,
    origin: &str,
    keys: &Keys,
    warnings: &mut Vec<String>,
) -> std::result::Result<BTreeMap<u64, (usize, Checkpoint)>, Failure> {
    let mut out: BTreeMap<u64, (usize, Checkpoint)> = BTreeMap::new();
    let mut last_size = 0;
    for (line, body) in read_notes(path, text, keys, "checkpoint", warnings)? {
        let at = format!("{}:{line}", path.display());
        let cp = match Checkpoint::parse(&body) {
            Ok(cp) => cp,
            Err(e) => return fail(Found::Note, format!("{at}: {e}")),
        };
        if cp.origin != origin {
            return fail(
                Found::Note,
                format!(
                    "{at}: checkpoint of log {:?}, this store is {origin:?}",
                    cp.origin
                ),
            );
        }
        if cp.size < last_size {
            return fail(
                Found::Note,
                format!(
                    "{at}: checkpoint size {} is smaller than an earlier one ({last_size}): \
                     checkpoints reordered",
                    cp.size
                ),
            );
        }
        last_size = cp.size;
        if let Some((l0, prev)) = out.get(&cp.size)
            && prev.root != cp.root
        {
            return fail(
                Found::Note,
                format!(
                    "{at}: two signed checkpoints of size {} disagree (line {l0}): the log was \
                     rewritten",
                    cp.size
                ),
            );
        }
        out.insert(cp.size, (line, cp));
    }
    Ok(out)
}

/// The tree's right edge at the retention boundary, from the signed retention records.
/// Also returns the latest request time of what they removed (`None`: nothing removed;
/// `i64::MAX` when a record does not say, as those written before it was recorded).
fn retention(
    layout: &Layout,
    keys: &Keys,
    r: &mut Report,
) -> std::result::Result<(Frontier, Option<i64>), Failure> {
    let path = layout.retention();
    let text = note::read_text(&path).map_err(found(Found::Note))?;
    let mut frontier = Frontier::new();
    let mut newest = None;
    for (line, body) in read_notes(&path, &text, keys, "retention record", &mut r.warnings)? {
        r.retention_records += 1;
        for l in body.lines().filter(|l| l.starts_with("removed ")) {
            let t = l
                .split_once(" newest ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .and_then(kaudit_model::MicroTime::parse)
                .map_or(i64::MAX, |t| t.micros());
            newest = Some(newest.map_or(t, |n: i64| n.max(t)));
        }
        let at = format!("{}:{line}", path.display());
        let edge = match retention_edge(&body) {
            Ok(e) => e,
            Err(e) => return fail(Found::Note, format!("{at}: {e}")),
        };
        if edge.size() < frontier.size() {
            return fail(
                Found::Note,
                format!("{at}: retention prefix {} goes backwards", edge.size()),
            );
        }
        frontier = edge;
    }
    Ok((frontier, newest))
}

/// Recomputes the tree leaf by leaf, checking it against the signed checkpoints.
struct Tree<'a> {
    frontier: Frontier,
    checkpoints: &'a BTreeMap<u64, (usize, Checkpoint)>,
    cp_path: &'a Path,
}

impl Tree<'_> {
    /// After a leaf (or at the retention boundary): the checkpoint of this size, if any, must
    /// match. `place` says where the leaf is, for the message.
    fn check(
        &self,
        r: &mut Report,
        place: &dyn Fn() -> String,
    ) -> std::result::Result<(), Failure> {
        let size = self.frontier.size();
        if let Some((line, cp)) = self.checkpoints.get(&size) {
            if cp.root != self.frontier.root() {
                return fail(
                    Found::Mismatch,
                    format!(
                        "{}: the data does not match the checkpoint signed at {} ({}:{line}, \
                         tree size {size}): an event in leaves {}-{} was altered, removed or \
                         reordered since (the checkpoint of size {} matched)",
                        place(),
                        kaudit_model::MicroTime(cp.time),
                        self.cp_path.display(),
                        r.verified_size,
                        size - 1,
                        r.verified_size
                    ),
                );
            }
            r.checkpoints += 1;
            r.verified_size = size;
        }
        Ok(())
    }

    fn push(
        &mut self,
        record: &[u8],
        r: &mut Report,
        place: &dyn Fn() -> String,
    ) -> std::result::Result<(), Failure> {
        self.frontier.push(leaf_hash(record));
        r.events += 1;
        self.check(r, place)
    }
}

fn run(
    snap: &Snapshot,
    keys: &Keys,
    checkpoints_text: &str,
    r: &mut Report,
) -> std::result::Result<(), Failure> {
    let layout = snap.layout();
    let cp_path = layout.checkpoints();
    let checkpoints = checkpoints(
        &cp_path,
        checkpoints_text,
        snap.origin(),
        keys,
        &mut r.warnings,
    )?;
    let (frontier, removed_until) = retention(layout, keys, r)?;
    r.pruned = frontier.size();
    if snap.pruned() != r.pruned {
        return fail(
            Found::Manifest,
            format!(
                "manifest.json says leaves below {} were removed by retention, but the signed \
                 retention records account for {}",
                snap.pruned(),
                r.pruned
            ),
        );
    }
    // Checkpoints below the retention boundary can no longer be recomputed, except the one
    // exactly at it (the retention record carries that tree's right edge).
    r.expired_checkpoints = checkpoints.range(..r.pruned).count();
    r.verified_size = r.pruned;
    let mut tree = Tree {
        frontier,
        checkpoints: &checkpoints,
        cp_path: &cp_path,
    };
    if r.pruned > 0 {
        tree.check(r, &|| "retention boundary".to_string())?;
    }
    let mut derive = derive::Derive::new(snap.origin(), removed_until);
    segments(snap, &mut tree, &mut derive, r)?;
    wal_tail(snap, &mut tree, &checkpoints, r)?;
    r.size = tree.frontier.size();
    r.root = Some(tree.frontier.root());
    if let Some((line, cp)) = checkpoints.range(r.size + 1..).next().map(|(_, v)| v) {
        return fail(
            Found::Truncated,
            format!(
                "truncated: the checkpoint signed at {} ({}:{line}) covers {} events, but only \
                 {} are present (the first missing is leaf {})",
                kaudit_model::MicroTime(cp.time),
                cp_path.display(),
                cp.size,
                r.size,
                r.size
            ),
        );
    }
    Ok(())
}

/// The sealed segments, in manifest order; every file present must be listed and vice versa.
fn segments(
    snap: &Snapshot,
    tree: &mut Tree<'_>,
    derive: &mut derive::Derive,
    r: &mut Report,
) -> std::result::Result<(), Failure> {
    let seg_dir = snap.layout().segments();
    let mut on_disk: Vec<String> = fs::read_dir(&seg_dir)
        .map_err(|e| Error::io(&seg_dir, e))
        .map_err(found(Found::Segment))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    on_disk.sort();
    for (i, s) in snap.segments().iter().enumerate() {
        if s.first_leaf != tree.frontier.size() {
            return fail(
                Found::Segment,
                format!(
                    "segment {} starts at leaf {}, but the previous data ends at leaf {}: a \
                     segment is missing",
                    s.file,
                    s.first_leaf,
                    tree.frontier.size()
                ),
            );
        }
        let unreadable = |e: &dyn fmt::Display| Failure {
            kind: Found::Segment,
            message: format!("segment {}: unreadable, altered or truncated: {e}", s.file),
        };
        let reader = match snap.reader(i) {
            Ok(rd) => rd,
            Err(e) if e.is_not_found() => {
                return fail(
                    Found::Segment,
                    format!(
                        "segment {} (leaves {}-{}) is missing",
                        s.file, s.first_leaf, s.last_leaf
                    ),
                );
            }
            Err(e) => return Err(unreadable(&e)),
        };
        derive.identify(reader, s)?;
        let (size, digest) =
            segment::digest(reader.file().reader_at(0)).map_err(|e| unreadable(&e))?;
        let first: Option<u64> = reader
            .key_value("kaudit.first_leaf")
            .and_then(|v| v.parse().ok());
        if first != Some(s.first_leaf) {
            return fail(
                Found::Segment,
                format!(
                    "segment {} holds leaves from {}, but belongs at leaf {}: segments were \
                     reordered or replaced",
                    s.file,
                    first.map_or("?".into(), |f| f.to_string()),
                    s.first_leaf
                ),
            );
        }
        let mut expected = s.first_leaf;
        let mut failure = None;
        let mut buf = Vec::new();
        reader
            .records(None, |leaf, rec| {
                if leaf != expected {
                    failure = Some(Failure {
                        kind: Found::Segment,
                        message: format!(
                            "segment {}: row for leaf {leaf} where leaf {expected} belongs: \
                             records reordered or removed",
                            s.file
                        ),
                    });
                    return Ok(false);
                }
                buf.clear();
                rec.encode(&mut buf);
                expected += 1;
                if let Err(f) = tree.push(&buf, r, &|| format!("segment {} (leaf {leaf})", s.file))
                {
                    failure = Some(f);
                    return Ok(false);
                }
                Ok(true)
            })
            .map_err(|e| unreadable(&e))?;
        if let Some(f) = failure {
            return Err(f);
        }
        if expected != s.last_leaf + 1 {
            return fail(
                Found::Segment,
                format!(
                    "segment {} ends at leaf {}, the manifest says {}: records removed",
                    s.file,
                    expected as i64 - 1,
                    s.last_leaf
                ),
            );
        }
        if hex(&digest) != s.sha256 {
            // The records recompute (no checkpoint caught it), yet the file changed: say so.
            return fail(
                Found::Segment,
                format!(
                    "segment {}: the file differs from the SHA-256 recorded when it was sealed",
                    s.file
                ),
            );
        }
        if s.bytes != size {
            return fail(
                Found::Manifest,
                format!(
                    "manifest.json: segment {} is listed with {} bytes, the file has {size}",
                    s.file, s.bytes
                ),
            );
        }
        let edge: Vec<String> = tree.frontier.hashes().iter().map(|h| hex(h)).collect();
        if s.frontier_after != edge {
            return fail(
                Found::Manifest,
                format!(
                    "manifest.json: segment {}: frontier_after is not the tree's edge after leaf {} (retention would record a wrong edge)",
                    s.file, s.last_leaf
                ),
            );
        }
        derive.segment(reader, s)?;
        r.segments += 1;
        on_disk.retain(|n| n != &s.file);
    }
    for extra in &on_disk {
        r.warnings.push(format!(
            "segments/{extra} is not in the manifest (not verified, not queried)"
        ));
    }
    Ok(())
}

/// The WAL after the segments.
fn wal_tail(
    snap: &Snapshot,
    tree: &mut Tree<'_>,
    checkpoints: &BTreeMap<u64, (usize, Checkpoint)>,
    r: &mut Report,
) -> std::result::Result<(), Failure> {
    if tree.frontier.size() != snap.sealed() {
        return fail(
            Found::Segment,
            format!(
                "the segments end at leaf {}, but manifest.json says {} are sealed: a segment is \
                 missing",
                tree.frontier.size(),
                snap.sealed()
            ),
        );
    }
    let edge: Vec<String> = tree.frontier.hashes().iter().map(|h| hex(h)).collect();
    if snap.sealed_frontier() != edge.as_slice() {
        return fail(
            Found::Manifest,
            format!(
                "manifest.json: sealed_frontier is not the tree's edge at leaf {} (the next \
                 checkpoint would be signed over a wrong tree)",
                snap.sealed()
            ),
        );
    }
    let last_signed = checkpoints.keys().next_back().copied().unwrap_or(0);
    let files = snap.wal_files();
    let mut failure = None;
    let start = WalPos {
        file: 0,
        offset: wal::HEADER,
        leaf: snap.sealed(),
    };
    let end = snap
        .scan_wal(start, u64::MAX, |leaf, _, payload| {
            r.wal_records += 1;
            let file = files.iter().rev().find(|w| w.first <= leaf);
            let place = || {
                let p = file.map_or(String::from("wal"), |w| w.file.path().display().to_string());
                format!("{p} (leaf {leaf})")
            };
            match tree.push(payload, r, &place) {
                Ok(()) => ControlFlow::Continue(()),
                Err(f) => {
                    failure = Some(f);
                    ControlFlow::Break(())
                }
            }
        })
        .map_err(found(Found::Wal))?;
    if let Some(f) = failure {
        return Err(f);
    }
    if let Some(d) = end.damage {
        let path = files[end.pos.file].file.path();
        let leaf = end.pos.leaf;
        if !end.last || last_signed > leaf {
            return fail(
                Found::Wal,
                format!(
                    "{}: record {} (leaf {leaf}) at byte {}: {}: the WAL was altered or \
                     truncated",
                    path.display(),
                    leaf - files[end.pos.file].first,
                    d.offset,
                    d.what
                ),
            );
        }
        r.warnings.push(format!(
            "{}: torn tail at byte {} ({}): an unacknowledged write cut by a crash; it is \
             removed when the store is next opened",
            path.display(),
            d.offset,
            d.what
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::tests::wal_in_files;

    #[test]
    fn a_missing_wal_file_is_found_with_the_files_and_leaves_either_side() {
        let dir = tempfile::tempdir().unwrap();
        let files = wal_in_files(dir.path(), 100, &[40, 70]);
        assert!(verify(dir.path(), None).unwrap().failure.is_none());
        // The middle file: the next one starts past where the first ends.
        fs::remove_file(&files[1].0).unwrap();
        let f = verify(dir.path(), None).unwrap().failure.unwrap();
        assert_eq!(f.kind, Found::Wal, "{}", f.message);
        let third = files[2].0.display().to_string();
        assert!(
            f.message.contains(&third)
                && f.message.contains("starts at leaf 70")
                && f.message.contains("ends at leaf 40"),
            "{}",
            f.message
        );
        // The first file: the WAL does not start where the (no) segments end. Queries refuse
        // to read it; verify says where.
        fs::remove_file(&files[0].0).unwrap();
        let e = Snapshot::open(dir.path()).err().unwrap();
        assert!(matches!(e, Error::Damaged { .. }), "{e}");
        let second = files[2].0.display().to_string();
        assert!(
            e.to_string().contains(&second) && e.to_string().contains("starts at leaf 70"),
            "{e}"
        );
        let f = verify(dir.path(), None).unwrap().failure.unwrap();
        assert_eq!(f.kind, Found::Wal, "{}", f.message);
        assert!(f.message.contains("ends at leaf 0"), "{}", f.message);
    }

    #[test]
    fn an_unreadable_manifest_is_an_error_not_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        wal_in_files(dir.path(), 10, &[]);
        fs::write(dir.path().join("manifest.json"), "{ not json").unwrap();
        let e = verify(dir.path(), None).unwrap_err();
        assert!(e.to_string().contains("manifest.json"), "{e}");
    }
}
