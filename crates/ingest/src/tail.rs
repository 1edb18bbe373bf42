//! Following a live `audit.log` through rotation, copy-truncate and restarts.
//!
//! kube-apiserver writes whole lines, one `write` per event, to its log; lumberjack rotates by
//! renaming the file to `<name>-<UTC time><ext>` and creating a new one, and may gzip the
//! backup later; logrotate's `copytruncate` copies the file and truncates it in place.
//!
//! The tailer keeps the file it reads open, so a renamed (or deleted, or gzipped) file is read
//! to its end before the new one is started. Its position, `(inode, offset, fingerprint of
//! the file's first bytes)`, is written after every batch the sink made durable. On restart
//! it finds the file again: the live file if it is the same one, else the backup with that
//! inode, else the backup (plain or gzipped) that begins with the same bytes; reads the rest
//! of it and every newer backup, then the live file. A crash between a durable append and the
//! position write re-reads at most that batch, and the store's deduplication drops it, so
//! every line is stored once.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kaudit_model::decode::{self, ErrorKind};
use kaudit_model::sink::Sink;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::rotation;

/// Bytes fingerprinted at the start of a file.
const FINGERPRINT: usize = 1024;

/// What to follow.
#[derive(Clone, Debug)]
pub struct Config {
    pub path: PathBuf,
    /// How often to look for new lines when there are none.
    pub poll: Duration,
}

/// Counters a tailer keeps (shared with the server's metrics).
#[derive(Debug, Default)]
pub struct Stats {
    pub lines: AtomicU64,
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub malformed: AtomicU64,
    /// Bytes of the file being read not yet read.
    pub lag_bytes: AtomicU64,
    pub rotations: AtomicU64,
    pub truncations: AtomicU64,
}

/// The committed position.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Position {
    pub path: PathBuf,
    pub inode: u64,
    pub offset: u64,
    /// SHA-256 (hex) of the file's first `fingerprint_len` bytes.
    pub fingerprint: String,
    pub fingerprint_len: u64,
}

/// The file being read.
struct Current {
    file: File,
    /// A backup (finished: read to its end, then move on) or the live file.
    backup: bool,
    inode: u64,
    offset: u64,
    fingerprint: String,
    fingerprint_len: u64,
    /// A gzipped backup is read through a decoder (and never resumed mid-way from disk).
    gz: Option<Box<dyn Read + Send>>,
}

/// Where a [`Tailer::run`] is: the files still to read, the one being read, and the bytes of a
/// line not ended yet.
struct Reading {
    queue: Vec<PathBuf>,
    /// Where to start the next file opened (a resumed position, or a copy-truncate's).
    first_offset: Option<u64>,
    cur: Option<Current>,
    buf: Vec<u8>,
    pending: Vec<u8>,
    /// Inside a line too long to keep.
    skipping: bool,
    /// The longest line taken (the sink refuses larger events).
    max_line: usize,
}

/// A tailer; [`Tailer::run`] follows until told to stop.
pub struct Tailer {
    cfg: Config,
    state: PathBuf,
    pub stats: Arc<Stats>,
    /// Reported problems (gaps, malformed lines), for the server log.
    log: Box<dyn Fn(&str) + Send>,
}

fn digest(b: &[u8]) -> String {
    kaudit_model::text::hex(&Sha256::digest(b))
}

/// The fingerprint of what `r` begins with (up to [`FINGERPRINT`] bytes).
fn head(r: &mut impl Read) -> io::Result<(String, u64)> {
    let mut buf = Vec::with_capacity(FINGERPRINT);
    r.take(FINGERPRINT as u64).read_to_end(&mut buf)?;
    Ok((digest(&buf), buf.len() as u64))
}

/// Whether the file at `p` begins with the bytes fingerprinted in `pos`.
fn begins_like(p: &Path, pos: &Position) -> bool {
    let Ok(f) = File::open(p) else { return false };
    let mut r: Box<dyn Read> = if p.extension().is_some_and(|x| x == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(f)))
    } else {
        Box::new(f)
    };
    let mut buf = Vec::new();
    if (&mut r)
        .take(pos.fingerprint_len)
        .read_to_end(&mut buf)
        .is_err()
    {
        return false;
    }
    buf.len() as u64 == pos.fingerprint_len && digest(&buf) == pos.fingerprint
}

/// Files beside `live` that are not lumberjack backups but may hold its earlier lines:
/// logrotate's copies (`audit.log.1`, `audit.log-20260301`, `.gz` or not). Unordered.
fn copies(live: &Path) -> io::Result<Vec<PathBuf>> {
    let ordered = rotation::backups(live)?;
    let mut out = Vec::new();
    let Some(name) = live.file_name().and_then(|n| n.to_str()) else {
        return Ok(out);
    };
    let dir = live.parent().filter(|d| !d.as_os_str().is_empty());
    for e in fs::read_dir(dir.unwrap_or(Path::new(".")))? {
        let e = e?;
        let n = e.file_name();
        let Some(n) = n.to_str() else { continue };
        if n != name && n.starts_with(name) && !n.ends_with(".tmp") {
            let p = match dir {
                Some(d) => d.join(n),
                None => PathBuf::from(n),
            };
            if !ordered.contains(&p) && e.file_type().is_ok_and(|t| t.is_file()) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// Which of `files` is the one `pos` was read from: a plain file with its inode that still
/// begins with its bytes, else (when a fingerprint was taken) any file, plain or gzipped,
/// beginning with them.
fn find(files: &[PathBuf], pos: &Position) -> Option<usize> {
    files
        .iter()
        .position(|b| {
            b.extension().is_none_or(|x| x != "gz")
                && fs::metadata(b).is_ok_and(|m| m.ino() == pos.inode)
                && begins_like(b, pos)
        })
        .or_else(|| {
            (pos.fingerprint_len > 0)
                .then(|| files.iter().position(|b| begins_like(b, pos)))
                .flatten()
        })
}

impl Tailer {
    /// A tailer for `cfg`, keeping its position in `state_dir`.
    pub fn new(cfg: Config, state_dir: &Path, log: Box<dyn Fn(&str) + Send>) -> Tailer {
        let name: String = cfg
            .path
            .display()
            .to_string()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Tailer {
            state: state_dir.join(format!("{name}.json")),
            cfg,
            stats: Arc::new(Stats::default()),
            log,
        }
    }

    /// The committed position, if any.
    pub fn position(&self) -> Option<Position> {
        let text = fs::read_to_string(&self.state).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn commit(&self, cur: &Current) -> io::Result<()> {
        let pos = Position {
            path: self.cfg.path.clone(),
            inode: cur.inode,
            offset: cur.offset,
            fingerprint: cur.fingerprint.clone(),
            fingerprint_len: cur.fingerprint_len,
        };
        let text = serde_json::to_string(&pos).expect("a position serializes");
        kaudit_model::durable::replace(&self.state, text.as_bytes())
    }

    fn open(&self, p: &Path, backup: bool, offset: u64) -> io::Result<Current> {
        let mut file = File::open(p)?;
        let inode = file.metadata()?.ino();
        let gz = p.extension().is_some_and(|x| x == "gz");
        let (fingerprint, fingerprint_len) = if gz {
            head(&mut flate2::read::MultiGzDecoder::new(BufReader::new(
                File::open(p)?,
            )))?
        } else {
            head(&mut file)?
        };
        let mut cur = Current {
            file,
            backup,
            inode,
            offset: 0,
            fingerprint,
            fingerprint_len,
            gz: None,
        };
        if gz {
            let mut d: Box<dyn Read + Send> = Box::new(flate2::read::MultiGzDecoder::new(
                BufReader::new(File::open(p)?),
            ));
            io::copy(&mut (&mut d).take(offset), &mut io::sink())?;
            cur.gz = Some(d);
        } else {
            cur.file.seek(SeekFrom::Start(offset))?;
        }
        cur.offset = offset;
        Ok(cur)
    }

    /// Where to start: the files to read, in order, the first from an offset.
    fn resume(&self) -> io::Result<(Vec<PathBuf>, u64)> {
        let live = &self.cfg.path;
        let Some(pos) = self.position() else {
            return Ok((vec![live.clone()], 0));
        };
        if let Ok(m) = fs::metadata(live)
            && m.ino() == pos.inode
            && begins_like(live, &pos)
            && m.len() >= pos.offset
        {
            return Ok((vec![live.clone()], pos.offset));
        }
        let backups = rotation::backups(live)?;
        if let Some(i) = find(&backups, &pos) {
            let mut files = backups[i..].to_vec();
            files.push(live.clone());
            return Ok((files, pos.offset));
        }
        // A logrotate copy: it, then the live file.
        let copies = copies(live)?;
        if let Some(i) = find(&copies, &pos) {
            return Ok((vec![copies[i].clone(), live.clone()], pos.offset));
        }
        (self.log)(&format!(
            "{}: the file read up to byte {} is gone (not the live file, not a backup beside \
             it): reading the live file from its start; events in between may be missing",
            live.display(),
            pos.offset
        ));
        Ok((vec![live.clone()], 0))
    }

    /// What to read after the file `pos` describes (finished): the backups rotated after it,
    /// oldest first, then the live file. Listed afresh, so rotations that happened while it
    /// was being read are not skipped.
    fn following(&self, pos: &Position) -> Vec<PathBuf> {
        let live = self.cfg.path.clone();
        let backups = rotation::backups(&live).unwrap_or_default();
        let mut out = match find(&backups, pos) {
            Some(i) => backups[i + 1..].to_vec(),
            None => Vec::new(),
        };
        out.push(live);
        out
    }

    /// Follows the file until `stop` is set, writing into `sink` (committing after every read
    /// of whole lines, then the position). Returns on a sink error (after which the caller may
    /// start again: nothing past the committed position is lost).
    pub fn run(&mut self, sink: &mut dyn Sink, stop: &AtomicBool) -> Result<(), String> {
        let name = self.cfg.path.display().to_string();
        let (queue, offset) = self.resume().map_err(|e| format!("{name}: {e}"))?;
        let mut r = Reading {
            queue,
            first_offset: Some(offset),
            cur: None,
            buf: Vec::with_capacity(1 << 20),
            pending: Vec::new(),
            skipping: false,
            max_line: sink.max_event(),
        };
        while !stop.load(Ordering::Relaxed) {
            if r.cur.is_none() && !self.open_next(&mut r)? {
                std::thread::sleep(self.cfg.poll);
                continue;
            }
            if !self.read_more(&mut r, sink)? {
                self.at_end(&mut r, sink)?;
            }
        }
        Ok(())
    }

    /// Opens the next file to read (the live file when nothing else is queued); `false` when
    /// it is not there (yet).
    fn open_next(&self, r: &mut Reading) -> Result<bool, String> {
        let live = &self.cfg.path;
        if r.queue.is_empty() {
            r.queue.push(live.clone());
        }
        let p = r.queue.remove(0);
        let backup = !r.queue.is_empty() || &p != live;
        let offset = r.first_offset.take().unwrap_or(0);
        match self.open(&p, backup, offset) {
            Ok(c) => {
                r.pending.clear();
                r.skipping = false;
                r.cur = Some(c);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let gz = PathBuf::from(format!("{}.gz", p.display()));
                if &p != live && gz.exists() {
                    // Compressed meanwhile: the same lines, gzipped.
                    r.queue.insert(0, gz);
                    r.first_offset = Some(offset);
                    return self.open_next(r);
                }
                if &p != live {
                    (self.log)(&format!("{}: vanished before it was read", p.display()));
                }
                Ok(false)
            }
            Err(e) => Err(format!("{}: {e}", p.display())),
        }
    }

    /// Reads what the current file holds now and hands its whole lines to `sink` (a line too
    /// long to keep is skipped and logged); `false` at the end of what is there.
    fn read_more(&self, r: &mut Reading, sink: &mut dyn Sink) -> Result<bool, String> {
        let name = self.cfg.path.display().to_string();
        let c = r.cur.as_mut().expect("a file is open");
        r.buf.clear();
        let n = match &mut c.gz {
            Some(d) => d.take(4 << 20).read_to_end(&mut r.buf),
            None => (&mut c.file).take(4 << 20).read_to_end(&mut r.buf),
        }
        .map_err(|e| format!("{name}: {e}"))?;
        if n == 0 {
            return Ok(false);
        }
        if r.skipping {
            // Inside a line too long to keep: drop bytes up to its end.
            match r.buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    c.offset += i as u64 + 1;
                    r.buf.drain(..=i);
                    r.skipping = false;
                }
                None => {
                    c.offset += r.buf.len() as u64;
                    return Ok(true);
                }
            }
        }
        r.pending.extend_from_slice(&r.buf);
        // Whole lines only; a partial line waits for its end.
        if let Some(end) = r.pending.iter().rposition(|&b| b == b'\n').map(|i| i + 1) {
            self.lines(&r.pending[..end], sink)?;
            c.offset += end as u64;
            r.pending.drain(..end);
            self.flush(sink, c)?;
        }
        if r.pending.len() > r.max_line {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            (self.log)(&format!(
                "{name}: byte {}: a line longer than {} bytes: skipped",
                c.offset, r.max_line
            ));
            c.offset += r.pending.len() as u64;
            r.pending.clear();
            r.skipping = true;
        }
        // Before the file holds FINGERPRINT bytes, its fingerprint grows with it.
        if c.fingerprint_len < FINGERPRINT as u64 && c.gz.is_none() {
            use std::os::unix::fs::FileExt;
            let mut h = vec![0u8; FINGERPRINT];
            let mut got = 0;
            while got < FINGERPRINT {
                match c.file.read_at(&mut h[got..], got as u64) {
                    Ok(0) => break,
                    Ok(k) => got += k,
                    Err(e) => return Err(format!("{name}: {e}")),
                }
            }
            c.fingerprint = digest(&h[..got]);
            c.fingerprint_len = got as u64;
        }
        Ok(true)
    }

    /// At the end of what the current file holds: a backup is done (on to what follows it);
    /// the live file is waited on, unless it was truncated in place (copy-truncate) or
    /// renamed away (rotated).
    fn at_end(&self, r: &mut Reading, sink: &mut dyn Sink) -> Result<(), String> {
        let live = &self.cfg.path;
        let c = r.cur.as_mut().expect("a file is open");
        if c.backup {
            if !r.pending.is_empty() {
                self.partial(&r.pending, c.offset);
                r.pending.clear();
            }
            r.queue = self.following(&self.pos(c));
            r.cur = None;
            return Ok(());
        }
        match fs::metadata(live) {
            Ok(m) if m.ino() == c.inode => {
                let size = m.len();
                if size < c.offset + r.pending.len() as u64 || !begins_like(live, &self.pos(c)) {
                    self.truncated(r);
                    return Ok(());
                }
                self.stats
                    .lag_bytes
                    .store(size.saturating_sub(c.offset), Ordering::Relaxed);
                std::thread::sleep(self.cfg.poll);
            }
            Ok(_) => self.rotated(r, sink)?,
            Err(_) => std::thread::sleep(self.cfg.poll),
        }
        Ok(())
    }

    /// Copy-truncate: the rest of what was being read is in the copy beside the live file
    /// (the one that begins like it), then the live file from its start.
    fn truncated(&self, r: &mut Reading) {
        let live = &self.cfg.path;
        let name = live.display();
        let c = r.cur.take().expect("a file is open");
        self.stats.truncations.fetch_add(1, Ordering::Relaxed);
        let pos = self.pos(&c);
        let copy = copies(live)
            .unwrap_or_default()
            .into_iter()
            .find(|b| pos.fingerprint_len > 0 && begins_like(b, &pos));
        let at = c.offset;
        r.pending.clear();
        match copy {
            Some(b) => {
                r.queue = vec![b, live.clone()];
                r.first_offset = Some(at);
            }
            None => {
                if at > 0 {
                    (self.log)(&format!(
                        "{name}: truncated in place after byte {at} and no copy beside it \
                         begins like it: reading it from its start"
                    ));
                }
                r.queue = vec![live.clone()];
            }
        }
    }

    /// Renamed away (rotated) and a new file is there: the one being read is complete once
    /// read to its end, which it now is, unless the writer still had it open. It is read once
    /// more to be sure; then on to the backups after it and the live file.
    fn rotated(&self, r: &mut Reading, sink: &mut dyn Sink) -> Result<(), String> {
        let name = self.cfg.path.display().to_string();
        let mut c = r.cur.take().expect("a file is open");
        let mut more = Vec::new();
        c.file
            .read_to_end(&mut more)
            .map_err(|e| format!("{name}: {e}"))?;
        if !more.is_empty() {
            r.pending.extend_from_slice(&more);
            let end = r
                .pending
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            self.lines(&r.pending[..end], sink)?;
            c.offset += end as u64;
            r.pending.drain(..end);
            self.flush(sink, &c)?;
        }
        if !r.pending.is_empty() {
            self.partial(&r.pending, c.offset);
            r.pending.clear();
        }
        self.stats.rotations.fetch_add(1, Ordering::Relaxed);
        r.queue = self.following(&self.pos(&c));
        Ok(())
    }

    fn pos(&self, c: &Current) -> Position {
        Position {
            path: self.cfg.path.clone(),
            inode: c.inode,
            offset: c.offset,
            fingerprint: c.fingerprint.clone(),
            fingerprint_len: c.fingerprint_len,
        }
    }

    fn partial(&self, rest: &[u8], offset: u64) {
        self.stats.malformed.fetch_add(1, Ordering::Relaxed);
        (self.log)(&format!(
            "{}: byte {offset}: the file ends inside a line ({} bytes without a newline): \
             skipped as truncated",
            self.cfg.path.display(),
            rest.len()
        ));
    }

    /// Decodes whole lines into `sink`.
    fn lines(&self, text: &[u8], sink: &mut dyn Sink) -> Result<(), String> {
        let stats = &self.stats;
        let log = &self.log;
        let name = self.cfg.path.display().to_string();
        let max = sink.max_event();
        let mut failed = None;
        decode::decode_slice(text, |r| {
            stats.lines.fetch_add(1, Ordering::Relaxed);
            match r {
                Ok(rec) if rec.raw.len() > max => {
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                    log(&format!(
                        "{name}:{}: an event of {} bytes, above the store's limit: skipped",
                        rec.line,
                        rec.raw.len()
                    ));
                }
                Ok(rec) => {
                    if let Err(e) = sink.push(rec.raw, &rec.event) {
                        failed = Some(e);
                        return ControlFlow::Break(());
                    }
                }
                Err(e) => {
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                    if e.kind != ErrorKind::Truncated
                        || stats.malformed.load(Ordering::Relaxed) < 100
                    {
                        log(&e.render(&name));
                    }
                }
            }
            ControlFlow::Continue(())
        });
        failed.map_or(Ok(()), Err)
    }

    /// Commits what the sink holds (if anything), then the position it reaches.
    fn flush(&self, sink: &mut dyn Sink, c: &Current) -> Result<(), String> {
        if sink.pending() > 0 {
            let r = sink.commit()?;
            self.stats.stored.fetch_add(r.stored, Ordering::Relaxed);
            self.stats
                .duplicates
                .fetch_add(r.duplicates, Ordering::Relaxed);
        }
        self.commit(c)
            .map_err(|e| format!("{}: {e}", self.state.display()))
    }
}
