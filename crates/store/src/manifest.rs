//! `manifest.json`: the list of sealed segments and the tree state at the seal boundary.
//! Replaced atomically (write a temporary file, fsync, rename, fsync the directory).
//! It is an index, not evidence: `verify` recomputes everything it says from the data.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::segment::RowGroupTerms;

/// One sealed segment.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SegmentMeta {
    /// File name inside `segments/`.
    pub file: String,
    pub first_leaf: u64,
    pub last_leaf: u64,
    pub rows: u64,
    pub bytes: u64,
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
    /// Per row group: rows, time range and small term sets, to skip what cannot match.
    pub row_groups: Vec<RowGroupTerms>,
    /// The tree's right edge after this segment's last leaf, hex hashes (what retention
    /// records when it removes the segments up to this one).
    pub frontier_after: Vec<String>,
}

/// The data directory's index.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Format of the data directory.
    pub format: u32,
    /// The log's origin (also in `keys/origin` and every checkpoint).
    pub origin: String,
    /// Sealed segments in leaf order.
    pub segments: Vec<SegmentMeta>,
    /// Leaves below this index are in segments (or were removed by retention).
    pub sealed_size: u64,
    /// The tree's right edge at `sealed_size`, hex hashes.
    pub sealed_frontier: Vec<String>,
    /// Leaves below this index were removed by retention (see `retention.jsonl`).
    pub pruned_size: u64,
}

impl Manifest {
    pub fn new(origin: String) -> Manifest {
        Manifest {
            format: 1,
            origin,
            segments: Vec::new(),
            sealed_size: 0,
            sealed_frontier: Vec::new(),
            pruned_size: 0,
        }
    }

    pub fn load(path: &Path) -> Result<Manifest> {
        let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::damaged(path, e.to_string()))
    }

    /// Replaces the manifest at `path` atomically (see `kaudit_model::durable`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("manifest serializes");
        text.push('\n');
        kaudit_model::durable::replace(path, text.as_bytes()).map_err(|e| Error::io(path, e))
    }
}

/// Parses hex into a hash.
pub fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
