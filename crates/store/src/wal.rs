//! The write-ahead log: numbered files of framed, checksummed records.
//!
//! ```text
//! file  = "KAUDITWAL1\n" (11 bytes), u64 first leaf index (LE), frame*
//! frame = u32 payload length (LE), u32 CRC-32C of flags and payload (LE), u8 flags,
//!         payload (a StoredRecord)
//! flags = bit 0: the first stored stage of its request (derived; used for request counts)
//! ```
//! Files are named by their first leaf index (`00000000000000000000.wal`). A batch is written
//! with one `write` and made durable with one `fdatasync` (group commit). After a crash the
//! last file may end in a partial frame: [`scan`] reports where the valid frames end, and the
//! store truncates there before appending again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::pread::Shared;

pub const MAGIC: &[u8; 11] = b"KAUDITWAL1\n";
pub const HEADER: u64 = 11 + 8;
const FRAME: usize = 9;
/// No single record may be larger than this (kube-apiserver's own request limit is 3 MiB,
/// its webhook batches 10 MiB).
pub const MAX_RECORD: usize = 64 << 20;

/// The path of the WAL file starting at `first`.
pub fn file_name(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.wal"))
}

/// The WAL files in `dir`, by first leaf index.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name.strip_suffix(".wal")
            && let Ok(first) = n.parse::<u64>()
        {
            out.push((first, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Bytes before a frame's payload: length (u32), CRC-32C (u32), flags (u8).
const FRAME_HEADER: usize = 9;

/// Starts a frame at the end of `buf`, whose payload the caller then appends (so it is
/// written in place, not copied); returns where the frame starts, for [`end_frame`].
pub fn begin_frame(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_HEADER]);
    start
}

/// The payload of the frame begun at `start`: everything appended to `buf` since.
pub fn frame_payload(buf: &[u8], start: usize) -> &[u8] {
    &buf[start + FRAME_HEADER..]
}

/// Completes the frame begun at `start`: its header now covers the payload appended since.
pub fn end_frame(flags: u8, buf: &mut [u8], start: usize) {
    let payload = frame_payload(buf, start);
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[flags]), payload).to_le_bytes();
    let h = &mut buf[start..start + FRAME_HEADER];
    h[..4].copy_from_slice(&len);
    h[4..8].copy_from_slice(&crc);
    h[8] = flags;
}

/// Flag bit: the first stored stage of its request.
pub const FIRST: u8 = 1;

/// Where and why a WAL file stops being valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset of the first bad frame.
    pub offset: u64,
    /// Index of the record that frame would hold (0-based from where the scan started).
    pub record: u64,
    /// What is wrong.
    pub what: String,
}

/// What a WAL file holds.
#[derive(Debug)]
pub struct Scan {
    /// The first leaf index, from the header.
    pub first: u64,
    /// Where valid frames end.
    pub valid_len: u64,
    /// Why reading stopped before the end of the file, if it did.
    pub damage: Option<Damage>,
}

/// Reads a WAL file, calling `f` with each valid record (flags, payload); stops at the first
/// bad frame. Streams: memory holds one record at a time, whatever the file's size.
pub fn scan(path: &Path, mut f: impl FnMut(u8, &[u8])) -> io::Result<Scan> {
    scan_file(&Shared::open(path)?, HEADER, |flags, payload| {
        f(flags, payload);
        true
    })
}

/// [`scan`] of an open file, starting at byte `offset` (a frame boundary an earlier scan
/// returned as `valid_len`, or [`HEADER`]), up to the file's current end, stopping after the
/// frame for which `f` returns false: `valid_len` is then where the next frame starts.
/// Followers use it to go on where they stopped instead of reading the file again.
pub fn scan_file(
    file: &Shared,
    offset: u64,
    mut f: impl FnMut(u8, &[u8]) -> bool,
) -> io::Result<Scan> {
    let size = file.current_len()?;
    let mut header = [0u8; HEADER as usize];
    if size < HEADER || file.read_exact_at(&mut header, 0).is_err() || &header[..11] != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: not a kaudit WAL file (bad header)",
                file.path().display()
            ),
        ));
    }
    let first = u64::from_le_bytes(header[11..19].try_into().unwrap());
    let mut pos = offset.max(HEADER);
    let mut r = io::BufReader::with_capacity(1 << 20, file.reader_at(pos));
    let mut n = 0u64;
    let mut damage = None;
    let mut payload = Vec::new();
    while pos < size {
        let bad = |what: String| Damage {
            offset: pos,
            record: n,
            what,
        };
        let left = size - pos;
        if left < FRAME as u64 {
            damage = Some(bad(format!("{left} trailing bytes, a cut frame header")));
            break;
        }
        let mut h = [0u8; FRAME];
        r.read_exact(&mut h)?;
        let len = u32::from_le_bytes(h[0..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(h[4..8].try_into().unwrap());
        let flags = h[8];
        if len > MAX_RECORD {
            damage = Some(bad(format!("frame length {len} is impossible")));
            break;
        }
        if left - (FRAME as u64) < len as u64 {
            damage = Some(bad(format!(
                "frame of {len} bytes cut after {} bytes",
                left - FRAME as u64
            )));
            break;
        }
        payload.resize(len, 0);
        r.read_exact(&mut payload)?;
        if crc32c::crc32c_append(crc32c::crc32c(&[flags]), &payload) != crc {
            damage = Some(bad("checksum mismatch".into()));
            break;
        }
        let more = f(flags, &payload);
        n += 1;
        pos += (FRAME + len) as u64;
        if !more {
            break;
        }
    }
    Ok(Scan {
        first,
        valid_len: pos,
        damage,
    })
}

/// An open WAL file being appended to.
pub struct Writer {
    file: File,
    pub path: PathBuf,
    pub first: u64,
    pub len: u64,
}

impl Writer {
    /// Creates a new WAL file for leaves from `first`, durably (the directory entry too).
    pub fn create(dir: &Path, first: u64) -> io::Result<Writer> {
        let path = file_name(dir, first);
        // Header written and synced under a temporary name, then renamed: a failure (disk
        // full) or crash never leaves a headerless or half-made file under the real name.
        let tmp = path.with_extension("wal.tmp");
        let made = (|| {
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&tmp)?;
            file.write_all(MAGIC)?;
            file.write_all(&first.to_le_bytes())?;
            file.sync_all()?;
            if path.exists() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists", path.display()),
                ));
            }
            fs::rename(&tmp, &path)?;
            kaudit_model::durable::sync_dir(dir)?;
            Ok(file)
        })();
        let mut file = match made {
            Ok(f) => f,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        file.seek(SeekFrom::Start(HEADER))?;
        Ok(Writer {
            file,
            path,
            first,
            len: HEADER,
        })
    }

    /// Opens an existing file for appending after its last valid frame, cutting off a torn tail.
    pub fn reopen(path: &Path, first: u64, valid_len: u64) -> io::Result<Writer> {
        let mut file = OpenOptions::new().write(true).open(path)?;
        if file.metadata()?.len() != valid_len {
            file.set_len(valid_len)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::Start(valid_len))?;
        Ok(Writer {
            file,
            path: path.to_path_buf(),
            first,
            len: valid_len,
        })
    }

    /// Writes framed records and makes them durable. On error the file is cut back to where it
    /// was, so a failed batch leaves nothing behind.
    pub fn append_durable(&mut self, frames: &[u8]) -> io::Result<()> {
        let r = self
            .file
            .write_all(frames)
            .and_then(|_| self.file.sync_data());
        match r {
            Ok(()) => {
                self.len += frames.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                let _ = self.file.seek(SeekFrom::Start(self.len));
                Err(e)
            }
        }
    }
}
