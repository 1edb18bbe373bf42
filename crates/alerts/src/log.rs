//! The alert log: every alert stored, once, durably, in the order it was raised.
//!
//! ```text
//! <data>/alerts/log/<first seq, 20 digits>.jsonl   one StoredAlert per line
//! ```
//! Appends are written and fsync'd before they are acknowledged; a file is closed at
//! [`MAX_FILE`] bytes and the next one starts. After a crash a torn last line is cut. An
//! alert already stored (same cluster, rule, auditID and group) is not stored again, so
//! re-evaluating events after a restart does not repeat alerts. Readers follow the files
//! from a sequence number, which is how each sink keeps its own durable queue.

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::hash::BuildHasher;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use foldhash::fast::FixedState;
use kaudit_detect::Alert;
use kaudit_model::durable;
use serde::{Deserialize, Serialize};

/// A log file is closed at about this size and the next one begun.
pub const MAX_FILE: u64 = 64 << 20;
/// Alert keys remembered for deduplication (the most recent ones).
const DEDUP_KEYS: usize = 1 << 20;

/// An alert as stored: its place in the log and when it was stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StoredAlert {
    /// Position in the log, from 0, without gaps.
    pub seq: u64,
    /// When it was stored (RFC 3339); throttling counts in this time.
    pub stored: String,
    #[serde(flatten)]
    pub alert: Alert,
}

impl StoredAlert {
    /// `stored` in microseconds since the epoch (0 if unreadable).
    pub fn stored_micros(&self) -> i64 {
        kaudit_model::MicroTime::parse(&self.stored)
            .map(|t| t.micros())
            .unwrap_or(0)
    }

    /// The event's time in microseconds since the epoch (0 if unreadable).
    pub fn time_micros(&self) -> i64 {
        kaudit_model::MicroTime::parse(&self.alert.time)
            .map(|t| t.micros())
            .unwrap_or(0)
    }
}

/// The directory of log files under an alerts directory.
pub fn log_dir(alerts: &Path) -> PathBuf {
    alerts.join("log")
}

fn file_name(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.jsonl"))
}

/// The log files, by first sequence number.
pub fn list(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in rd {
        let e = e?;
        let name = e.file_name();
        if let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push((first, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn key(h: &FixedState, a: &Alert) -> u64 {
    h.hash_one((&a.cluster, &a.rule, &a.audit_id, &a.group))
}

/// What [`AlertLog::open`] found and repaired.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// Bytes of a torn last line cut from the last file.
    pub torn_bytes: u64,
    pub file: Option<PathBuf>,
}

/// The log, open for appending (one writer per data directory: the server's detector).
pub struct AlertLog {
    dir: PathBuf,
    file: File,
    file_len: u64,
    /// The first seq of the file being appended to.
    first: u64,
    next: u64,
    hasher: FixedState,
    keys: HashSet<u64>,
    order: VecDeque<u64>,
    buf: Vec<u8>,
    max_file: u64,
    /// Set when a failed append could not be cut off: no more appends until reopened.
    broken: Option<String>,
    pub recovered: Recovered,
}

impl AlertLog {
    /// Opens (creating) the log in `alerts/log/`; cuts a torn last line.
    pub fn open(alerts: &Path) -> Result<AlertLog, String> {
        let dir = log_dir(alerts);
        let err = |p: &Path, e: io::Error| format!("{}: {e}", p.display());
        durable::create_dir_all(&dir).map_err(|e| err(&dir, e))?;
        let files = list(&dir).map_err(|e| err(&dir, e))?;
        let hasher = FixedState::with_seed(0x616c_6572);
        let mut recovered = Recovered::default();
        let (first, file, file_len, next, last_keys) = match files.last() {
            None => (0, create(&dir, 0)?, 0, 0, Vec::new()),
            Some((first, path)) => {
                // Appending (O_APPEND): after a failed write is cut off, the next write goes
                // to the new end, never past it.
                let mut f = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| err(path, e))?;
                let mut text = Vec::new();
                f.read_to_end(&mut text).map_err(|e| err(path, e))?;
                // Cut a torn last line (a crash mid-append: never acknowledged).
                let good = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                if good < text.len() {
                    f.set_len(good as u64).map_err(|e| err(path, e))?;
                    f.sync_all().map_err(|e| err(path, e))?;
                    recovered = Recovered {
                        torn_bytes: (text.len() - good) as u64,
                        file: Some(path.clone()),
                    };
                }
                // The next seq, and this file's keys, from its complete lines.
                let mut next = *first;
                let mut keys = Vec::new();
                for (i, line) in text[..good].split(|b| *b == b'\n').enumerate() {
                    if line.is_empty() {
                        continue;
                    }
                    let at = |e: String| format!("{}: line {}: {e}", path.display(), i + 1);
                    let a: StoredAlert =
                        serde_json::from_slice(line).map_err(|e| at(e.to_string()))?;
                    if a.seq != next {
                        return Err(at(format!("seq {} where {next} was expected", a.seq)));
                    }
                    keys.push(key(&hasher, &a.alert));
                    next += 1;
                }
                (*first, f, good as u64, next, keys)
            }
        };
        // The keys of the most recent alerts, newest first: the last file's, then older ones'.
        let mut recent = last_keys;
        recent.reverse();
        for (_, p) in files.iter().rev().skip(1) {
            if recent.len() >= DEDUP_KEYS {
                break;
            }
            let mut keys = Vec::new();
            read_file(p, 0, &mut |a: StoredAlert| {
                keys.push(key(&hasher, &a.alert));
                Next::More
            })?;
            recent.extend(keys.into_iter().rev());
        }
        recent.truncate(DEDUP_KEYS);
        let mut log = AlertLog {
            dir,
            file,
            file_len,
            first,
            next,
            hasher,
            keys: HashSet::new(),
            order: VecDeque::new(),
            buf: Vec::new(),
            max_file: MAX_FILE,
            broken: None,
            recovered,
        };
        for k in recent.into_iter().rev() {
            log.remember(k);
        }
        Ok(log)
    }

    fn remember(&mut self, k: u64) {
        if self.keys.insert(k) {
            self.order.push_back(k);
            if self.order.len() > DEDUP_KEYS
                && let Some(old) = self.order.pop_front()
            {
                self.keys.remove(&old);
            }
        }
    }

    /// Starts a new file once the current one reaches `bytes` (default [`MAX_FILE`]).
    pub fn set_max_file(&mut self, bytes: u64) {
        self.max_file = bytes.max(1);
    }

    /// The sequence number the next alert gets (= alerts stored so far).
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Stores `alerts` durably (one write, one fsync), skipping those already stored;
    /// `now` is the storing time in microseconds. Returns what was stored, with seqs.
    pub fn append(&mut self, alerts: &[Alert], now: i64) -> Result<Vec<StoredAlert>, String> {
        if let Some(b) = &self.broken {
            return Err(b.clone());
        }
        let stored = kaudit_model::MicroTime(now).to_string();
        let mut out = Vec::new();
        let mut batch_keys = Vec::new();
        self.buf.clear();
        for a in alerts {
            let k = key(&self.hasher, a);
            if self.keys.contains(&k) || batch_keys.contains(&k) {
                continue;
            }
            batch_keys.push(k);
            let s = StoredAlert {
                seq: self.next + out.len() as u64,
                stored: stored.clone(),
                alert: a.clone(),
            };
            serde_json::to_writer(&mut self.buf, &s).map_err(|e| e.to_string())?;
            self.buf.push(b'\n');
            out.push(s);
        }
        if out.is_empty() {
            return Ok(out);
        }
        if self.file_len >= self.max_file {
            self.file = create(&self.dir, self.next)?;
            self.file_len = 0;
            self.first = self.next;
        }
        let path = file_name(&self.dir, self.first);
        let w = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = w {
            // Nothing is acknowledged: cut whatever part was written, so the file stays a
            // sequence of whole lines and the seqs are given again.
            if let Err(e2) = self
                .file
                .set_len(self.file_len)
                .and_then(|()| self.file.sync_all())
            {
                self.broken = Some(format!(
                    "{}: a failed append could not be cut off ({e2}); reopen the log",
                    path.display()
                ));
            }
            return Err(format!("{}: {e}", path.display()));
        }
        self.file_len += self.buf.len() as u64;
        self.next += out.len() as u64;
        for k in batch_keys {
            self.remember(k);
        }
        Ok(out)
    }
}

/// Creates the log file starting at `first`, durably (its directory entry too).
fn create(dir: &Path, first: u64) -> Result<File, String> {
    let p = file_name(dir, first);
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(&p)
        .map_err(|e| format!("{}: {e}", p.display()))?;
    durable::sync_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(f)
}

/// Reads whole lines of `path` from byte `offset`, calling `f` until it returns false;
/// returns the offset after the last line consumed. A last line without its newline (being
/// written) is left for later.
/// What a [`read_file`] callback wants next.
enum Next {
    More,
    /// Stop after this line.
    After,
    /// Stop before this line (it is left for the next read).
    Before,
}

fn read_file(
    path: &Path,
    offset: u64,
    f: &mut dyn FnMut(StoredAlert) -> Next,
) -> Result<u64, String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut file = File::open(path).map_err(|e| err(&e))?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| err(&e))?;
    let mut r = BufReader::with_capacity(1 << 16, file);
    let mut pos = offset;
    let mut lines = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).map_err(|e| err(&e))?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(pos);
        }
        lines += 1;
        let a: StoredAlert = serde_json::from_slice(&line[..n - 1]).map_err(|e| {
            let at = if offset == 0 {
                format!("line {lines}")
            } else {
                format!("byte {pos}")
            };
            format!("{}: {at}: {e}", path.display())
        })?;
        match f(a) {
            Next::More => pos += n as u64,
            Next::After => return Ok(pos + n as u64),
            Next::Before => return Ok(pos),
        }
    }
}

/// Follows the log from a sequence number, remembering where it is in the current file.
pub struct LogReader {
    dir: PathBuf,
    next: u64,
    pos: Option<(PathBuf, u64, u64)>,
}

impl LogReader {
    pub fn new(alerts: &Path, next: u64) -> LogReader {
        LogReader {
            dir: log_dir(alerts),
            next,
            pos: None,
        }
    }

    /// The next seq to be read.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Reads up to `max` alerts from `next` on.
    pub fn read(&mut self, max: usize) -> Result<Vec<StoredAlert>, String> {
        self.read_until(max, u64::MAX)
    }

    /// Reads up to `max` alerts from `next` on, below seq `limit` (what the writer has
    /// reported durable: a line written but not yet fsync'd is not read).
    pub fn read_until(&mut self, max: usize, limit: u64) -> Result<Vec<StoredAlert>, String> {
        let mut out = Vec::new();
        let list_err = |e: io::Error| format!("{}: {e}", self.dir.display());
        while out.len() < max && self.next < limit {
            let (path, offset, at) = match self.pos.clone() {
                Some(p) if p.2 == self.next => p,
                _ => {
                    let files = list(&self.dir).map_err(list_err)?;
                    match files.into_iter().rev().find(|(f, _)| *f <= self.next) {
                        Some((f, p)) => (p, 0, f),
                        None => return Ok(out),
                    }
                }
            };
            let want = self.next;
            let mut at_seq = at;
            let end = read_file(&path, offset, &mut |a| {
                if a.seq >= limit {
                    return Next::Before;
                }
                at_seq = a.seq + 1;
                if a.seq >= want {
                    out.push(a);
                }
                if out.len() < max {
                    Next::More
                } else {
                    Next::After
                }
            })?;
            self.next = self.next.max(at_seq);
            self.pos = Some((path.clone(), end, at_seq));
            if out.len() >= max {
                break;
            }
            // At the end of this file: a newer one may begin where it ends.
            let files = list(&self.dir).map_err(list_err)?;
            match files.into_iter().find(|(f, _)| *f == self.next) {
                Some((_, p)) if p != path => self.pos = Some((p, 0, self.next)),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// Reads every stored alert in order, calling `f` until it returns false.
pub fn scan(alerts: &Path, f: &mut dyn FnMut(StoredAlert) -> bool) -> Result<(), String> {
    let dir = log_dir(alerts);
    let files = list(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut more = true;
    for (_, p) in files {
        read_file(&p, 0, &mut |a| {
            more = f(a);
            if more { Next::More } else { Next::After }
        })?;
        if !more {
            break;
        }
    }
    Ok(())
}

/// The seq the next stored alert will get (= how many are stored), from the last file.
pub fn end(alerts: &Path) -> Result<u64, String> {
    let dir = log_dir(alerts);
    let files = list(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let Some((first, path)) = files.last() else {
        return Ok(0);
    };
    let mut next = *first;
    read_file(path, 0, &mut |a| {
        next = a.seq + 1;
        Next::More
    })?;
    Ok(next)
}
