//! Files read by position (`pread`), never by a shared seek offset: threads share one open
//! descriptor safely, and a file a reader holds open stays readable after a seal or retention
//! removes its name (what makes a [`crate::Snapshot`] consistent).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parquet::file::reader::{ChunkReader, Length};

/// An open file and its length when it was opened.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    file: Arc<File>,
    len: u64,
    path: Arc<PathBuf>,
}

impl Shared {
    pub fn open(path: &Path) -> io::Result<Shared> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Shared {
            file: Arc::new(file),
            len,
            path: Arc::new(path.to_path_buf()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its length now (a WAL file being appended to grows).
    pub fn current_len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// A reader from byte `pos`.
    pub fn reader_at(&self, pos: u64) -> At {
        At {
            file: self.file.clone(),
            pos,
        }
    }

    /// `buf.len()` bytes from byte `pos`.
    pub fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, pos)
    }
}

/// A reader of a [`Shared`] file from a position of its own.
pub(crate) struct At {
    file: Arc<File>,
    pos: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Length for Shared {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Shared {
    type T = io::BufReader<At>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(io::BufReader::with_capacity(
            64 << 10,
            self.reader_at(start),
        ))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let mut buf = vec![0u8; length];
        self.file.read_exact_at(&mut buf, start)?;
        Ok(buf.into())
    }
}
