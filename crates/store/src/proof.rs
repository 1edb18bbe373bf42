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
use std::ops::ControlFlow;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manifest::unhex;
use crate::merkle::{Frontier, Hash, hex, leaf_hash, retention_edge, verify_inclusion};
use crate::note::{self, Checkpoint, Keys};
use crate::record::StoredRecord;
use crate::snapshot::Snapshot;

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

/// Tree edges known without reading records: the right edge after each segment, and at the
/// retention boundary (from the last signed retention record).
fn known_edges(snap: &Snapshot, keys: &Keys) -> Result<Vec<Frontier>> {
    let mut out = Vec::new();
    for s in snap.segments() {
        let hashes: Option<Vec<Hash>> = s.frontier_after.iter().map(|h| unhex(h)).collect();
        if let Some(h) = hashes
            && let Ok(f) = Frontier::from_parts(s.last_leaf + 1, h)
        {
            out.push(f);
        }
    }
    if let Some(body) = note::signed_bodies(&snap.layout().retention(), keys)?.last()
        && let Ok(f) = retention_edge(body)
    {
        out.push(f);
    }
    Ok(out)
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
pub fn prove(dir: &Path, leaf: u64, mut progress: impl FnMut(u64)) -> Result<Proof> {
    let (keys, note, cp) = {
        let first = Snapshot::open(dir)?;
        let layout = first.layout();
        let pem_path = layout.public_key();
        let pem = fs::read_to_string(&pem_path).map_err(|e| Error::io(&pem_path, e))?;
        let keys = Keys::verifier(first.origin().to_string(), &pem)
            .map_err(|e| Error::damaged(&pem_path, e))?;
        let cp_path = layout.checkpoints();
        let (note, cp) = note::last_checkpoint(&cp_path, &keys)?.ok_or_else(|| {
            Error::Invalid(format!("{}: no signed checkpoint yet", cp_path.display()))
        })?;
        (keys, note, cp)
    };
    // The records come from a snapshot taken after the checkpoint was read: a checkpoint is
    // signed over durable leaves only, so this one holds every leaf it covers, whatever the
    // writer sealed or rotated meanwhile.
    let snap = Snapshot::open(dir)?;
    let layout = snap.layout();
    if leaf < snap.pruned() {
        return Err(Error::Invalid(format!(
            "leaf {leaf} was removed by retention (leaves below {} are gone)",
            snap.pruned()
        )));
    }
    if leaf >= cp.size {
        return Err(Error::Invalid(format!(
            "leaf {leaf} is not covered by the latest checkpoint yet (tree size {}); \
             a checkpoint is signed within a second while the store is open",
            cp.size
        )));
    }
    let mut ranges = Vec::new();
    path_ranges(leaf, 0, cp.size, &mut ranges);
    let edges = known_edges(&snap, &keys)?;
    let mut roots: Vec<Option<Hash>> = ranges.iter().map(|r| from_edges(&edges, *r)).collect();
    // Everything else from the records: one frontier per missing range.
    let mut open: Vec<(usize, Frontier)> = Vec::new();
    for (i, r) in ranges.iter().enumerate() {
        if roots[i].is_some() {
            continue;
        }
        if r.start < snap.pruned() {
            // A range straddling the retention boundary: start from the recorded edge.
            let f = edges
                .iter()
                .find(|f| f.size() == snap.pruned())
                .ok_or_else(|| {
                    Error::damaged(
                        &layout.retention(),
                        "the retention boundary's tree edge is not recorded",
                    )
                })?;
            let mut at = 0u64;
            let mut inside = Vec::new();
            for h in f.hashes() {
                let span = 1u64 << (63 - (f.size() - at).leading_zeros());
                if at >= r.start {
                    inside.push(h);
                }
                at += span;
            }
            let f = Frontier::from_parts(f.size() - r.start, inside)
                .map_err(|e| Error::damaged(&layout.retention(), e))?;
            open.push((i, f));
        } else {
            open.push((i, Frontier::new()));
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
    let mut buf = Vec::new();
    snap.records(lo, hi, |index, rec| {
        buf.clear();
        rec.encode(&mut buf);
        if index == leaf {
            record = Some(buf.clone());
        }
        let h = leaf_hash(&buf);
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
        ControlFlow::Continue(())
    })?;
    progress(read);
    let not_stored =
        |what: String| Error::damaged(&layout.root, format!("{what}: run `kaudit verify`"));
    for (i, f) in open {
        let r = ranges[i];
        if r.start + f.size() != r.end {
            return Err(not_stored(format!(
                "leaves {}-{} are not all stored (found {})",
                r.start,
                r.end - 1,
                f.size()
            )));
        }
        roots[i] = Some(f.root());
    }
    let record = record.ok_or_else(|| not_stored(format!("leaf {leaf} is not stored")))?;
    let path: Vec<Hash> = roots.into_iter().map(|h| h.expect("every range")).collect();
    verify_inclusion(&record, leaf, cp.size, &cp.root, &path).map_err(|e| {
        not_stored(format!(
            "the stored data does not match the checkpoint: {e}"
        ))
    })?;
    let rec = StoredRecord::decode(&record).map_err(|e| not_stored(format!("leaf {leaf}: {e}")))?;
    Ok(Proof {
        format: FORMAT.to_string(),
        origin: cp.origin.clone(),
        leaf_index: leaf,
        record: B64.encode(&record),
        received: kaudit_model::MicroTime(rec.received).to_string(),
        cluster: rec.cluster.to_string(),
        event: serde_json::value::RawValue::from_string(rec.event.to_string())
            .map_err(|e| not_stored(format!("leaf {leaf}: the stored event is not JSON: {e}")))?,
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
pub fn check(p: &Proof, key: &str) -> Result<Checked> {
    check_proof(p, key).map_err(Error::Invalid)
}

fn check_proof(p: &Proof, key: &str) -> std::result::Result<Checked, String> {
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
        .collect::<std::result::Result<_, _>>()?;
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
