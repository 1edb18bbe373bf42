//! The paths inside a data directory (see the crate documentation for what each holds).

use std::path::{Path, PathBuf};

/// The paths inside a data directory.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            root: dir.to_path_buf(),
        }
    }
    pub fn wal(&self) -> PathBuf {
        self.root.join("wal")
    }
    pub fn segments(&self) -> PathBuf {
        self.root.join("segments")
    }
    pub fn keys(&self) -> PathBuf {
        self.root.join("keys")
    }
    pub fn public_key(&self) -> PathBuf {
        self.keys().join("signing.pub")
    }
    pub fn manifest(&self) -> PathBuf {
        self.root.join("manifest.json")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints.jsonl")
    }
    pub fn retention(&self) -> PathBuf {
        self.root.join("retention.jsonl")
    }
    pub fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }
}
