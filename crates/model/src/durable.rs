//! Replacing a small file so that a crash leaves either the old content or the new, never a
//! mix: write a temporary file beside it, fsync it, rename it over the old one, fsync the
//! directory. The one way every crate saves state (the store's manifest, the tailer's position,
//! the detector's and the sinks' cursors).
//!
//! (The one place this crate writes files: it sits lowest in the stack, so every crate that
//! saves state shares this.)

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Replaces the file at `path` with `data`, durably (see the module documentation). Creates
/// the file's directory (durably) if it does not exist. On error the old file is untouched and
/// no temporary file is left.
pub fn replace(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.exists() {
        create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    let written = (|| {
        let mut f = File::create(tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// `fsync` of a directory, so an entry created, renamed or removed in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `create_dir_all`, then an `fsync` of every directory it created and of the one above them,
/// so the new directories survive a crash.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut d = Some(dir);
    while let Some(p) = d {
        if p.as_os_str().is_empty() || p.exists() {
            break;
        }
        missing.push(p);
        d = p.parent();
    }
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    for p in &missing {
        sync_dir(p)?;
    }
    match missing.last().and_then(|p| p.parent()) {
        Some(up) if !up.as_os_str().is_empty() => sync_dir(up),
        _ => sync_dir(Path::new(".")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("kaudit-durable-{}", std::process::id()));
        let p = dir.join("a/b/state.json");
        replace(&p, b"one").unwrap();
        replace(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
        // A directory in the way: the error is reported and the old file stays.
        let blocked = dir.join("a/b/blocked");
        fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(replace(&blocked, b"three").is_err());
        assert!(!dir.join("a/b/blocked.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
