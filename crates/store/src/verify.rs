//! `kaudit verify`: recompute everything from the stored bytes.
//!
//! Walks the retention records, the sealed segments and the WAL in leaf order, recomputing
//! every leaf hash and the Merkle root at each signed checkpoint's size. Reports the first
//! place the data and the signed history disagree.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::manifest::Manifest;
use crate::merkle::{Frontier, Hash, hex, leaf_hash, retention_edge};
use crate::note::{Checkpoint, Keys};
use crate::segment;
use crate::store::{CheckpointLine, Layout};
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
    pub failure: Option<String>,
}

/// Verifies the data directory at `dir`. `key` is an independently held public key (PEM or
/// note verifier key); without it the key in the data directory is used.
pub fn verify(dir: &Path, key: Option<&str>) -> Result<Report, String> {
    let layout = Layout {
        root: dir.to_path_buf(),
    };
    if !layout.manifest().exists() {
        return Err(format!(
            "{}: not a kaudit data directory (no manifest.json)",
            dir.display()
        ));
    }
    // Checkpoints are read before the manifest: a writer lists a segment before it signs a
    // checkpoint covering it (a bulk load), so read in this order the two never disagree
    // falsely while it runs.
    let checkpoints = read_text(&layout.checkpoints())?;
    let manifest = Manifest::load(&layout.manifest()).map_err(|e| e.to_string())?;
    let keys = match key {
        Some(k) => Keys::verifier(manifest.origin.clone(), k)?,
        None => {
            let pem = fs::read_to_string(layout.keys().join("signing.pub"))
                .map_err(|e| format!("{}: {e}", layout.keys().join("signing.pub").display()))?;
            Keys::verifier(manifest.origin.clone(), &pem)?
        }
    };
    let mut r = Report::default();
    match run(&layout, &manifest, &keys, &checkpoints, &mut r) {
        Ok(()) => {}
        Err(e) => r.failure = Some(e),
    }
    Ok(r)
}

/// A file's text; empty if there is no such file.
fn read_text(path: &Path) -> Result<String, String> {
    // Lossy: a write cut by a crash can end inside a character (the line then fails to
    // parse, and is reported as what it is).
    match fs::read(path) {
        Ok(t) => Ok(String::from_utf8(t)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The signed notes of `text` (the file at `path`), one per line.
fn read_notes(
    path: &Path,
    text: &str,
    keys: &Keys,
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<(usize, String)>, String> {
    let mut out = Vec::new();
    let lines = text.lines().count();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", path.display(), i + 1);
        let l: CheckpointLine = match serde_json::from_str(line) {
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
            Err(e) => return Err(format!("{at}: {what} is not readable: {e}")),
        };
        let body = keys
            .open(&l.note)
            .map_err(|e| format!("{at}: {what}: {e}"))?;
        out.push((i + 1, body.to_string()));
    }
    Ok(out)
}

fn run(
    layout: &Layout,
    manifest: &Manifest,
    keys: &Keys,
    checkpoints_text: &str,
    r: &mut Report,
) -> Result<(), String> {
    // Signed history: checkpoints and retention records.
    let cp_path = layout.checkpoints();
    let mut checkpoints: BTreeMap<u64, (usize, Checkpoint)> = BTreeMap::new();
    let mut last_size = 0;
    for (line, body) in read_notes(
        &cp_path,
        checkpoints_text,
        keys,
        "checkpoint",
        &mut r.warnings,
    )? {
        let cp =
            Checkpoint::parse(&body).map_err(|e| format!("{}:{line}: {e}", cp_path.display()))?;
        if cp.origin != manifest.origin {
            return Err(format!(
                "{}:{line}: checkpoint of log {:?}, this store is {:?}",
                cp_path.display(),
                cp.origin,
                manifest.origin
            ));
        }
        if cp.size < last_size {
            return Err(format!(
                "{}:{line}: checkpoint size {} is smaller than an earlier one ({last_size}): \
                 checkpoints reordered",
                cp_path.display(),
                cp.size
            ));
        }
        last_size = cp.size;
        if let Some((l0, prev)) = checkpoints.get(&cp.size)
            && prev.root != cp.root
        {
            return Err(format!(
                "{}:{line}: two signed checkpoints of size {} disagree (line {l0}): the log was \
                 rewritten",
                cp_path.display(),
                cp.size
            ));
        }
        checkpoints.insert(cp.size, (line, cp));
    }
    let ret_path = layout.retention();
    let mut frontier = Frontier::new();
    for (line, body) in read_notes(
        &ret_path,
        &read_text(&ret_path)?,
        keys,
        "retention record",
        &mut r.warnings,
    )? {
        r.retention_records += 1;
        let at = format!("{}:{line}", ret_path.display());
        let edge = retention_edge(&body).map_err(|e| format!("{at}: {e}"))?;
        if edge.size() < frontier.size() {
            return Err(format!(
                "{at}: retention prefix {} goes backwards",
                edge.size()
            ));
        }
        frontier = edge;
    }
    r.pruned = frontier.size();
    if manifest.pruned_size != r.pruned {
        return Err(format!(
            "manifest.json says leaves below {} were removed by retention, but the signed \
             retention records account for {}",
            manifest.pruned_size, r.pruned
        ));
    }
    // Checkpoints below the retention boundary can no longer be recomputed, except the one
    // exactly at it (the retention record carries that tree's right edge).
    let check = |f: &Frontier, r: &mut Report, place: &dyn Fn() -> String| -> Result<(), String> {
        let size = f.size();
        if let Some((line, cp)) = checkpoints.get(&size) {
            if cp.root != f.root() {
                return Err(format!(
                    "{}: the data does not match the checkpoint signed at {} \
                     ({}:{line}, tree size {size}): an event in leaves {}-{} was altered, \
                     removed or reordered since (the checkpoint of size {} matched)",
                    place(),
                    time_str(cp.time),
                    cp_path.display(),
                    r.verified_size,
                    size - 1,
                    r.verified_size
                ));
            }
            r.checkpoints += 1;
            r.verified_size = size;
        }
        Ok(())
    };
    r.expired_checkpoints = checkpoints.range(..r.pruned).count();
    r.verified_size = r.pruned;
    if r.pruned > 0 {
        check(&frontier, r, &|| "retention boundary".to_string())?;
    }
    // Sealed segments, in manifest order; every file present must be listed and vice versa.
    let seg_dir = layout.segments();
    let mut on_disk: Vec<String> = fs::read_dir(&seg_dir)
        .map_err(|e| format!("{}: {e}", seg_dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    on_disk.sort();
    for s in &manifest.segments {
        let path = seg_dir.join(&s.file);
        if s.first_leaf != frontier.size() {
            return Err(format!(
                "segment {} starts at leaf {}, but the previous data ends at leaf {}: a segment \
                 is missing",
                s.file,
                s.first_leaf,
                frontier.size()
            ));
        }
        if !path.exists() {
            return Err(format!(
                "segment {} (leaves {}-{}) is missing",
                s.file, s.first_leaf, s.last_leaf
            ));
        }
        let (_, digest) =
            segment::file_digest(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let digest_ok = hex(&digest) == s.sha256;
        let meta = segment::metadata(&path)
            .map_err(|e| format!("segment {}: unreadable, altered or truncated: {e}", s.file))?;
        let first: Option<u64> = meta.get("kaudit.first_leaf").and_then(|v| v.parse().ok());
        if first != Some(s.first_leaf) {
            return Err(format!(
                "segment {} holds leaves from {}, but belongs at leaf {}: segments were \
                 reordered or replaced",
                s.file,
                first.map_or("?".into(), |f| f.to_string()),
                s.first_leaf
            ));
        }
        let mut expected = s.first_leaf;
        segment::records(&path, |leaf, rec| {
            if leaf != expected {
                return Err(format!(
                    "segment {}: row for leaf {leaf} where leaf {expected} belongs: records \
                     reordered or removed",
                    s.file
                ));
            }
            let mut b = Vec::new();
            rec.encode(&mut b);
            frontier.push(leaf_hash(&b));
            expected += 1;
            r.events += 1;
            check(&frontier, r, &|| {
                format!("segment {} (leaf {leaf})", s.file)
            })
        })
        .map_err(|e| {
            if e.starts_with("segment ") {
                e
            } else {
                format!("segment {}: unreadable, altered or truncated: {e}", s.file)
            }
        })?;
        if expected != s.last_leaf + 1 {
            return Err(format!(
                "segment {} ends at leaf {}, the manifest says {}: records removed",
                s.file,
                expected as i64 - 1,
                s.last_leaf
            ));
        }
        if !digest_ok {
            // The records recompute (no checkpoint caught it), yet the file changed: say so.
            return Err(format!(
                "segment {}: the file differs from the SHA-256 recorded when it was sealed",
                s.file
            ));
        }
        r.segments += 1;
        on_disk.retain(|n| n != &s.file);
    }
    for extra in &on_disk {
        r.warnings.push(format!(
            "segments/{extra} is not in the manifest (not verified, not queried)"
        ));
    }
    // The WAL tail.
    let wal_files =
        wal::list(&layout.wal()).map_err(|e| format!("{}: {e}", layout.wal().display()))?;
    let last_signed = checkpoints.keys().next_back().copied().unwrap_or(0);
    let n = wal_files.len();
    for (i, (first, path)) in wal_files.into_iter().enumerate() {
        if first < frontier.size() && first < manifest.sealed_size {
            // Already sealed; left by an interrupted seal. Skipped like the store does.
            continue;
        }
        if first != frontier.size() {
            return Err(format!(
                "{} starts at leaf {first}, but the data before it ends at leaf {}: WAL \
                 records are missing",
                path.display(),
                frontier.size()
            ));
        }
        let mut failure = None;
        let scan = wal::scan(&path, |_, payload| {
            if failure.is_some() {
                return;
            }
            frontier.push(leaf_hash(payload));
            r.events += 1;
            r.wal_records += 1;
            let leaf = frontier.size() - 1;
            if let Err(e) = check(&frontier, r, &|| {
                format!("{} (leaf {leaf})", path.display())
            }) {
                failure = Some(e);
            }
        })
        .map_err(|e| e.to_string())?;
        if let Some(e) = failure {
            return Err(e);
        }
        if let Some(d) = scan.damage {
            let leaf = first + d.record;
            if i + 1 < n || last_signed > leaf {
                return Err(format!(
                    "{}: record {} (leaf {leaf}) at byte {}: {}: the WAL was altered or \
                     truncated",
                    path.display(),
                    d.record,
                    d.offset,
                    d.what
                ));
            }
            r.warnings.push(format!(
                "{}: torn tail at byte {} ({}): an unacknowledged write cut by a crash; it is \
                 removed when the store is next opened",
                path.display(),
                d.offset,
                d.what
            ));
        }
    }
    r.size = frontier.size();
    r.root = Some(frontier.root());
    if let Some((line, cp)) = checkpoints.range(r.size + 1..).next().map(|(_, v)| v) {
        return Err(format!(
            "truncated: the checkpoint signed at {} ({}:{line}) covers {} events, but only {} \
             are present (the first missing is leaf {})",
            time_str(cp.time),
            cp_path.display(),
            cp.size,
            r.size,
            r.size
        ));
    }
    Ok(())
}

fn time_str(micros: i64) -> String {
    let mut t = Vec::new();
    kaudit_model::MicroTime(micros).write_to(&mut t);
    String::from_utf8_lossy(&t).into_owned()
}
