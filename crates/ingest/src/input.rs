//! Reading what users name: a file (plain or gzip, recognised by its first bytes) or standard
//! input (`-`), as a Kubernetes audit log (JSON lines, EventLists, arrays, single or pretty
//! events) or a managed cloud's export (EKS, GKE, AKS), its shape recognised from its start or
//! as told. The one reader behind every command that takes audit events.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::path::Path;

use kaudit_model::cloud::{self, Format};
use kaudit_model::decode::{self, DecodeError, Record};

/// The name that means standard input.
pub const STDIN: &str = "-";

/// Whether `path` names standard input.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == STDIN
}

/// How an input is named in messages: its path, or `<stdin>`.
pub fn display_name(path: &Path) -> String {
    if is_stdin(path) {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

/// Opens an input (`-` is standard input), gunzipping it when it starts with gzip's magic
/// bytes. `disk` counts the bytes read before decompression (for progress).
pub fn open(path: &Path, disk: std::rc::Rc<std::cell::Cell<u64>>) -> Result<Box<dyn Read>, String> {
    let name = display_name(path);
    let raw: Box<dyn Read> = if is_stdin(path) {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(path).map_err(|e| format!("{name}: {e}"))?)
    };
    let mut r = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: raw,
            n: disk,
        },
    );
    let gz = r
        .fill_buf()
        .map_err(|e| format!("{name}: {e}"))?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else {
        Box::new(r)
    })
}

/// Reads one input (see the module documentation), calling `cb` with each record or decoding
/// error until it breaks. A Kubernetes audit log is streamed; cloud exports are read whole.
pub fn read(
    path: &Path,
    format: Format,
    disk: std::rc::Rc<std::cell::Cell<u64>>,
    cb: &mut dyn FnMut(Result<Record<'_>, DecodeError>) -> ControlFlow<()>,
) -> Result<decode::Stats, String> {
    let name = display_name(path);
    let mut reader = open(path, disk)?;
    let mut head = Vec::new();
    (&mut reader)
        .take(1 << 20)
        .read_to_end(&mut head)
        .map_err(|e| format!("{name}: {e}"))?;
    let format = match format {
        Format::Auto => cloud::detect(&head),
        f => f,
    };
    if format == Format::K8s {
        decode::decode_reader(io::Cursor::new(head).chain(reader), cb)
            .map_err(|e| format!("{name}: {e}"))
    } else {
        let mut all = head;
        reader
            .read_to_end(&mut all)
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(cloud::decode_as(&all, format, cb))
    }
}

/// Whether an input can be read again after a crash: a regular file that is not deleted (not
/// standard input, a pipe or a device, nor a deleted file such as a shell's here-document
/// behind `/dev/stdin`).
pub fn rereadable(path: &Path) -> bool {
    if is_stdin(path) {
        return false;
    }
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        m.is_file() && m.nlink() > 0
    }
    #[cfg(not(unix))]
    {
        m.is_file()
    }
}

/// Counts the bytes read from the input (before decompression), for progress.
struct Counting<R> {
    inner: R,
    n: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.set(self.n.get() + k as u64);
        Ok(k)
    }
}
