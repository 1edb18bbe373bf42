//! Replacing a small file so that a crash leaves either the old content or the new, never a
//! mix: write a temporary file beside it, fsync it, rename it over the old one, fsync the
//! directory. The one way every crate saves state (the store's manifest, the tailer's position,
//! the detector's and the sinks' cursors).
//!
//! (The one place this crate writes files: it sits lowest in the stack, so every crate that
//! saves state shares this.)

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Replaces the file at `path` with `data`, durably (see the module documentation). Creates
/// the file's directory (durably) if it does not exist. On error the old file is untouched and
/// no temporary file is left.
pub fn replace(path: &Path, data: &[u8]) -> io::Result<()> {
    write(path, data, false)
}

/// [`replace`], for a secret (a private key, a token): the file is readable by its owner
/// only (mode 0600) from the moment it exists.
pub fn replace_private(path: &Path, data: &[u8]) -> io::Result<()> {
    write(path, data, true)
}

fn write(path: &Path, data: &[u8], private: bool) -> io::Result<()> {
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
    // A temporary file left by a crash keeps its mode when opened again: start afresh.
    let _ = fs::remove_file(tmp);
    let written = (|| {
        let mut o = OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = o.open(tmp)?;
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
        // A secret is never readable by others, even while it is being written.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = dir.join("a/key");
            fs::write(dir.join("a/key.tmp"), "left by a crash").unwrap();
            replace_private(&key, b"secret").unwrap();
            assert_eq!(fs::read(&key).unwrap(), b"secret");
            let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
