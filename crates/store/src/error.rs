//! What can go wrong in the store, as a type: callers (and tests) tell the failures apart by
//! variant, and every message names the file (and where in it) that it concerns.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A store error.
#[derive(Clone, Debug)]
pub enum Error {
    /// Reading or writing a file failed (the disk, permissions, a full file system).
    Io {
        path: PathBuf,
        source: Arc<io::Error>,
    },
    /// Another process has the data directory open for writing.
    Locked { dir: PathBuf },
    /// The directory is not a kaudit data directory (no `manifest.json`).
    NotAStore { dir: PathBuf },
    /// An event the store does not take (an over-long event or cluster name, or not an audit
    /// event); nothing was changed.
    Refused(String),
    /// What is on disk is damaged or does not hang together (a WAL file that does not continue
    /// the log, an unreadable manifest or segment): the message says where; `kaudit verify`
    /// tells more. Nothing was changed.
    Damaged { path: PathBuf, message: String },
    /// A bulk load cannot go on: the segment it was building without the write-ahead log was
    /// lost. What was sealed before stays; loading the same input again adds the rest.
    BulkLost(String),
    /// The store's sealing thread has stopped.
    SealerStopped,
    /// A request the store cannot answer (not loading in bulk, a leaf not stored, ...).
    Invalid(String),
}

/// A store result.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: &Path, e: io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source: Arc::new(e),
        }
    }

    /// Damage found in the file at `path`.
    pub fn damaged(path: &Path, message: impl Into<String>) -> Error {
        Error::Damaged {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// Whether this is a missing file (a reader raced a seal or retention that removed it).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// `map_err` helper: an I/O error on `path`.
pub(crate) fn io_err(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Locked { dir } => write!(
                f,
                "{}: another kaudit process is writing to this data directory",
                dir.display()
            ),
            Error::NotAStore { dir } => write!(
                f,
                "{}: not a kaudit data directory (import something first: kaudit import --data {} FILES)",
                dir.display(),
                dir.display()
            ),
            Error::Refused(m) | Error::BulkLost(m) | Error::Invalid(m) => f.write_str(m),
            Error::Damaged { path, message } => write!(f, "{}: {message}", path.display()),
            Error::SealerStopped => f.write_str("the sealing thread has stopped"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}
