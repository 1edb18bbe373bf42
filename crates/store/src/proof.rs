//! Inclusion proofs: one stored event, shown to be in a signed checkpoint's tree.
//!
//! A proof is self-contained JSON: the exact stored record (base64), its leaf index, the
//! audit path of RFC 6962 §2.1.1, and the signed checkpoint note. Anyone with the store's
//! public key can check it ([`check`]) without the data directory.
//!
//! Building the path needs the roots of about log2(n) leaf ranges. Ranges left of the leaf
//! are complete, aligned subtrees: they are taken from the tree edges recorded at segment
//! boundaries and at the retention boundary when one holds them; the rest are recomputed
//! from the stored records of the segments (and WAL) that cover them.

use std::fs;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::manifest::{Manifest, unhex};
use crate::merkle::{Frontier, Hash, hex, leaf_hash, retention_edge, verify_inclusion};
use crate::note::{Checkpoint, Keys};
use crate::record::StoredRecord;
use crate::{CheckpointLine, Layout, segment, wal};

/// The proof format's name and version.
pub const FORMAT: &str = "kaudit-inclusion-proof/v1";

/// An inclusion proof for one stored event.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Proof {
    pub format: String,
    /// The log (store) the checkpoint names.
    pub origin: String,
    /// The event's position in the log.
    pub leaf_index: u64,
    /// The stored record exactly as hashed (version, receive time, cluster, event bytes).
    pub record: String,
    /// For people: the record's parts.
    pub received: String,
    pub cluster: String,
    pub event: Box<serde_json::value::RawValue>,
    /// The checkpoint's tree.
    pub tree_size: u64,
    pub root: String,
    /// Sibling hashes from the leaf up (hex).
    pub path: Vec<String>,
    /// The signed checkpoint note (C2SP signed-note text).
    pub checkpoint: String,
}

/// A leaf range whose root is one step of the path.
#[derive(Clone, Copy, Debug)]
struct Range {
    start: u64,
    end: u64,
}

/// The ranges of `PATH(m, D[start..end])`, from the leaf up.
fn path_ranges(m: u64, start: u64, end: u64, out: &mut Vec<Range>) {
    let n = end - start;
    if n <= 1 {
        return;
    }
    let k = 1u64 << (63 - (n - 1).leading_zeros());
    if m - start < k {
        path_ranges(m, start, start + k, out);
        out.push(Range {
            start: start + k,
            end,
        });
    } else {
        path_ranges(m, start + k, end, out);
        out.push(Range {
            start,
            end: start + k,
        });
    }
}

/// Tree edges known without reading records: (size, frontier hashes).
fn known_edges(layout: &Layout, manifest: &Manifest, keys: &Keys) -> Vec<Frontier> {
    let mut out = Vec::new();
    for s in &manifest.segments {
        let hashes: Option<Vec<Hash>> = s.frontier_after.iter().map(|h| unhex(h)).collect();
        if let Some(h) = hashes
            && let Ok(f) = Frontier::from_parts(s.last_leaf + 1, h)
        {
            out.push(f);
        }
    }
    // The retention boundary's edge, from the last signed retention record.
    if let Ok(text) = fs::read_to_string(layout.retention())
        && let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty())
        && let Ok(l) = serde_json::from_str::<CheckpointLine>(line)
        && let Ok(body) = keys.open(&l.note)
        && let Ok(f) = retention_edge(body)
    {
        out.push(f);
    }
    out
}

/// The subtree `[start, end)` (complete and aligned) if the edge at some known size holds it.
fn from_edges(edges: &[Frontier], r: Range) -> Option<Hash> {
    for f in edges {
        let size = f.size();
        if size < r.end {
            continue;
        }
        // The edge at `size` is the binary decomposition of `size`, largest subtree first.
        let mut at = 0u64;
        for h in f.hashes() {
            let span = 1u64 << (63 - (size - at).leading_zeros());
            if at == r.start && at + span == r.end {
                return Some(h);
            }
            at += span;
        }
    }
    None
}

/// Builds the proof that leaf `leaf` is in the tree of the latest checkpoint covering it.
/// `progress` is told how many records were read for the ranges not otherwise known.
pub fn prove(dir: &Path, leaf: u64, mut progress: impl FnMut(u64)) -> Result<Proof, String> {
    let layout = Layout {
        root: dir.to_path_buf(),
    };
    let manifest = Manifest::load(&layout.manifest())
        .map_err(|e| format!("{}: {e}", layout.manifest().display()))?;
    let pem_path = layout.keys().join("signing.pub");
    let pem = fs::read_to_string(&pem_path).map_err(|e| format!("{}: {e}", pem_path.display()))?;
    let keys = Keys::verifier(manifest.origin.clone(), &pem)?;
    if leaf < manifest.pruned_size {
        return Err(format!(
            "leaf {leaf} was removed by retention (leaves below {} are gone)",
            manifest.pruned_size
        ));
    }
    // The latest signed checkpoint.
    let cp_path = layout.checkpoints();
    let text = fs::read_to_string(&cp_path).map_err(|e| format!("{}: {e}", cp_path.display()))?;
    let note = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(serde_json::from_str::<CheckpointLine>)
        .ok_or_else(|| format!("{}: no checkpoint yet", cp_path.display()))?
        .map_err(|e| format!("{}: last line: {e}", cp_path.display()))?
        .note;
    let cp = Checkpoint::parse(keys.open(&note)?)?;
    if leaf >= cp.size {
        return Err(format!(
            "leaf {leaf} is not covered by the latest checkpoint yet (tree size {}); \
             a checkpoint is signed within a second while the store is open",
            cp.size
        ));
    }
    let mut ranges = Vec::new();
    path_ranges(leaf, 0, cp.size, &mut ranges);
    let edges = known_edges(&layout, &manifest, &keys);
    let mut roots: Vec<Option<Hash>> = ranges.iter().map(|r| from_edges(&edges, *r)).collect();
    // Everything else from the records: one frontier per missing range.
    let mut open: Vec<(usize, Frontier)> = Vec::new();
    for (i, r) in ranges.iter().enumerate() {
        if roots[i].is_none() {
            if r.start < manifest.pruned_size {
                // A range straddling the retention boundary: start from the recorded edge.
                let f = edges
                    .iter()
                    .find(|f| f.size() == manifest.pruned_size)
                    .ok_or("the retention boundary's tree edge is not recorded")?;
                let mut at = 0u64;
                let mut inside = Vec::new();
                for h in f.hashes() {
                    let span = 1u64 << (63 - (f.size() - at).leading_zeros());
                    if at >= r.start {
                        inside.push(h);
                    }
                    at += span;
                }
                open.push((i, Frontier::from_parts(f.size() - r.start, inside)?));
            } else {
                open.push((i, Frontier::new()));
            }
        }
    }
    let lo = open
        .iter()
        .map(|(i, f)| ranges[*i].start + f.size())
        .min()
        .unwrap_or(leaf)
        .min(leaf);
    let hi = open
        .iter()
        .map(|(i, _)| ranges[*i].end)
        .max()
        .unwrap_or(leaf + 1)
        .max(leaf + 1);
    let mut record: Option<Vec<u8>> = None;
    let mut read = 0u64;
    let mut feed = |index: u64, bytes: &[u8]| {
        if index == leaf {
            record = Some(bytes.to_vec());
        }
        let h = leaf_hash(bytes);
        for (i, f) in open.iter_mut() {
            let r = ranges[*i];
            if index >= r.start && index < r.end && r.start + f.size() == index {
                f.push(h);
            }
        }
        read += 1;
        if read.is_multiple_of(65_536) {
            progress(read);
        }
    };
    let mut buf = Vec::new();
    for s in &manifest.segments {
        if s.last_leaf < lo || s.first_leaf >= hi {
            continue;
        }
        let path = layout.segments().join(&s.file);
        segment::records(&path, |index, rec| {
            if index >= lo && index < hi {
                buf.clear();
                rec.encode(&mut buf);
                feed(index, &buf);
            }
            Ok(())
        })?;
    }
    if hi > manifest.sealed_size {
        for (first, path) in wal::list(&layout.wal()).map_err(|e| e.to_string())? {
            if first < manifest.sealed_size {
                continue;
            }
            let mut index = first;
            wal::scan(&path, |_, payload| {
                if index >= lo && index < hi {
                    feed(index, payload);
                }
                index += 1;
            })
            .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    progress(read);
    for (i, f) in open {
        let r = ranges[i];
        if r.start + f.size() != r.end {
            return Err(format!(
                "leaves {}-{} are not all stored (found {}): run kaudit verify",
                r.start,
                r.end - 1,
                f.size()
            ));
        }
        roots[i] = Some(f.root());
    }
    let record = record.ok_or_else(|| format!("leaf {leaf} is not stored: run kaudit verify"))?;
    let path: Vec<Hash> = roots.into_iter().map(|h| h.expect("every range")).collect();
    verify_inclusion(&record, leaf, cp.size, &cp.root, &path)
        .map_err(|e| format!("the stored data does not match the checkpoint: {e}"))?;
    let rec = StoredRecord::decode(&record)?;
    let mut received = Vec::new();
    kaudit_model::MicroTime(rec.received).write_to(&mut received);
    Ok(Proof {
        format: FORMAT.to_string(),
        origin: cp.origin.clone(),
        leaf_index: leaf,
        record: B64.encode(&record),
        received: String::from_utf8_lossy(&received).into_owned(),
        cluster: rec.cluster.to_string(),
        event: serde_json::value::RawValue::from_string(rec.event.to_string())
            .map_err(|e| format!("leaf {leaf}: the stored event is not JSON: {e}"))?,
        tree_size: cp.size,
        root: hex(&cp.root),
        path: path.iter().map(|h| hex(h)).collect(),
        checkpoint: note,
    })
}

/// What a checked proof establishes.
#[derive(Clone, Debug)]
pub struct Checked {
    pub checkpoint: Checkpoint,
    pub leaf_index: u64,
    pub cluster: String,
    pub received: i64,
}

/// Checks a proof with a public key (PEM or note verifier key): the checkpoint's signature,
/// that the record is the shown event, and that the path leads from it to the signed root.
pub fn check(p: &Proof, key: &str) -> Result<Checked, String> {
    if p.format != FORMAT {
        return Err(format!("format {:?}: expected {FORMAT:?}", p.format));
    }
    let keys = Keys::verifier(p.origin.clone(), key)?;
    let cp = Checkpoint::parse(keys.open(&p.checkpoint)?)?;
    if cp.origin != p.origin || cp.size != p.tree_size || hex(&cp.root) != p.root {
        return Err("the proof's tree does not match its signed checkpoint".into());
    }
    let record = B64
        .decode(&p.record)
        .map_err(|e| format!("record: not base64: {e}"))?;
    let rec = StoredRecord::decode(&record).map_err(|e| format!("record: {e}"))?;
    if rec.event != p.event.get() || rec.cluster != p.cluster {
        return Err("the shown event or cluster is not the proven record".into());
    }
    let path: Vec<Hash> = p
        .path
        .iter()
        .map(|h| unhex(h).ok_or_else(|| format!("path: {h:?} is not a SHA-256 hex hash")))
        .collect::<Result<_, _>>()?;
    verify_inclusion(&record, p.leaf_index, cp.size, &cp.root, &path)?;
    Ok(Checked {
        leaf_index: p.leaf_index,
        cluster: rec.cluster.to_string(),
        received: rec.received,
        checkpoint: cp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{inclusion_path, subtree_root};

    #[test]
    fn ranges_give_the_rfc_6962_path() {
        let all: Vec<Hash> = (0..70u64).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        // The tree edge at every size, once.
        let mut edges = vec![Frontier::new()];
        for l in &all {
            let mut f = edges.last().unwrap().clone();
            f.push(*l);
            edges.push(f);
        }
        for n in 1..70u64 {
            let leaves = &all[..n as usize];
            for m in 0..n {
                let mut ranges = Vec::new();
                path_ranges(m, 0, n, &mut ranges);
                let got: Vec<Hash> = ranges
                    .iter()
                    .map(|r| subtree_root(&leaves[r.start as usize..r.end as usize]))
                    .collect();
                assert_eq!(got, inclusion_path(leaves, m as usize), "n={n} m={m}");
                // Left ranges held by an edge are found there, with the same root.
                for (r, want) in ranges.iter().zip(&got) {
                    for size in r.end..=n {
                        if let Some(h) = from_edges(&edges[size as usize..=size as usize], *r) {
                            assert_eq!(&h, want, "n={n} m={m} edge at {size}");
                        }
                    }
                }
            }
        }
    }
}
