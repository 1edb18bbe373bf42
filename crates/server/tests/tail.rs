//! The tailer against what happens to a live audit.log: lumberjack rotation (rename, new file,
//! later gzip), logrotate's copy-truncate, lines written in pieces, and the tailer stopped and
//! restarted (including while the file it was in got rotated and gzipped). Every line the
//! writer finished is stored exactly once: the tailer writes through the server's writer
//! thread into a real store, as `kaudit serve` runs it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kaudit_gen::{Config, generate};
use kaudit_ingest::tail::{self, Tailer};
use kaudit_model::MicroTime;
use kaudit_model::sink::{Appended, Sink};
use kaudit_server::metrics::Metrics;
use kaudit_server::writer::{Housekeeping, Writer, WriterSink};
use kaudit_store::{Options, Store};

/// The server's writer thread over a store in `dir/data`.
struct Storing {
    writer: Writer,
    thread: std::thread::JoinHandle<Result<(), String>>,
    /// How long each commit takes longer (a slow disk), when a test asks for it.
    delay: Arc<Mutex<Duration>>,
}

/// The sink a tailer writes into: the server's, behind an optional delay.
struct Slow {
    inner: WriterSink,
    delay: Arc<Mutex<Duration>>,
}

impl Sink for Slow {
    fn max_event(&self) -> usize {
        self.inner.max_event()
    }
    fn push(&mut self, raw: &str, event: &kaudit_model::Event<'_>) -> Result<(), String> {
        self.inner.push(raw, event)
    }
    fn pending(&self) -> usize {
        self.inner.pending()
    }
    fn commit(&mut self) -> Result<Appended, String> {
        let delay = *self.delay.lock().unwrap();
        std::thread::sleep(delay);
        self.inner.commit()
    }
}

fn storing(dir: &Path) -> Storing {
    let store = Store::open(&dir.join("data"), Options::default()).unwrap();
    let hk = Housekeeping {
        seal_every: Duration::from_secs(3600),
        checkpoint_every: Duration::from_secs(1),
        retention_every: Duration::from_secs(3600),
        max_age: None,
        max_bytes: None,
    };
    let (writer, thread) = Writer::start(
        store,
        hk,
        Arc::new(Metrics::new()),
        Arc::new(|m: &str| eprintln!("writer: {m}")),
    );
    Storing {
        writer,
        thread,
        delay: Arc::new(Mutex::new(Duration::ZERO)),
    }
}

impl Storing {
    fn sink(&self) -> Slow {
        Slow {
            inner: WriterSink::new(self.writer.clone(), "prod"),
            delay: self.delay.clone(),
        }
    }

    fn stored(&self) -> u64 {
        self.writer.committed.load(Ordering::Acquire)
    }

    /// Stops the writer (closing the store) and returns how many events it holds.
    fn close(self) -> u64 {
        let n = self.stored();
        self.writer.stop();
        self.thread.join().unwrap().unwrap();
        n
    }
}

fn lines(n: u64) -> Vec<String> {
    let start = MicroTime::parse("2026-03-01T00:00:00Z").unwrap();
    let cfg = Config::recipe(n, start, 600 * 1_000_000, 5, 2);
    let mut out = Vec::new();
    generate(&cfg, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| format!("{l}\n"))
        .collect()
}

fn append(p: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn gzip(p: &Path) -> PathBuf {
    let gz = PathBuf::from(format!("{}.gz", p.display()));
    let mut e = flate2::write::GzEncoder::new(
        fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    e.write_all(&fs::read(p).unwrap()).unwrap();
    e.finish().unwrap();
    fs::remove_file(p).unwrap();
    gz
}

struct Running {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(Tailer, Result<(), String>)>,
}

fn start(mut t: Tailer, storing: &Storing) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let mut sink = storing.sink();
    let handle = std::thread::spawn(move || {
        let r = t.run(&mut sink, &s);
        (t, r)
    });
    Running { stop, handle }
}

fn stop(r: Running) -> Tailer {
    r.stop.store(true, Ordering::Relaxed);
    let (t, res) = r.handle.join().unwrap();
    res.unwrap();
    t
}

fn wait_for(storing: &Storing, n: u64) {
    let t = Instant::now();
    while storing.stored() < n {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "stored {} of {n}",
            storing.stored()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn tailer(dir: &Path, log: &Path) -> Tailer {
    Tailer::new(
        tail::Config {
            path: log.to_path_buf(),
            poll: Duration::from_millis(5),
        },
        &dir.join("tail"),
        Box::new(|m| eprintln!("tailer: {m}")),
    )
}

#[test]
fn every_line_once_through_rotation_truncation_and_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    let live = logs.join("audit.log");
    let all = lines(1200);
    let mut chunks = all.chunks(100);
    let mut next = || chunks.next().unwrap().concat();
    let sink = storing(dir);

    // Lines before the tailer starts, and one written in two pieces.
    append(&live, &next());
    let run = start(tailer(dir, &live), &sink);
    wait_for(&sink, 100);
    let piece = next();
    let (a, b) = piece.split_at(piece.len() / 2 + 7);
    append(&live, a);
    std::thread::sleep(Duration::from_millis(30));
    append(&live, b);
    wait_for(&sink, 200);

    // Lumberjack: rename, new file; then the backup is gzipped.
    append(&live, &next());
    let b1 = logs.join("audit-2026-03-01T00-05-00.000.log");
    fs::rename(&live, &b1).unwrap();
    append(&live, &next());
    wait_for(&sink, 400);
    gzip(&b1);

    // Stopped; meanwhile the file it was in is rotated twice and the first backup gzipped.
    let t = stop(run);
    assert_eq!(
        t.position().unwrap().offset,
        fs::metadata(&live).unwrap().len()
    );
    append(&live, &next());
    let b2 = logs.join("audit-2026-03-01T00-06-00.000.log");
    fs::rename(&live, &b2).unwrap();
    append(&live, &next());
    let b3 = logs.join("audit-2026-03-01T00-07-00.000.log");
    fs::rename(&live, &b3).unwrap();
    gzip(&b2);
    append(&live, &next());
    let run = start(tailer(dir, &live), &sink);
    wait_for(&sink, 700);

    // logrotate copytruncate: copy, truncate in place, go on writing.
    append(&live, &next());
    wait_for(&sink, 800);
    let extra = next();
    append(&live, &extra);
    // The copy is taken before the tailer has necessarily read the last lines.
    fs::copy(&live, logs.join("audit.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&live)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&live, &next());
    wait_for(&sink, 1000);

    // A restart with nothing changed, then the rest.
    let t = stop(run);
    let _ = t;
    append(&live, &next());
    let run = start(tailer(dir, &live), &sink);
    append(&live, &next());
    wait_for(&sink, 1200);
    std::thread::sleep(Duration::from_millis(50));
    let t = stop(run);
    assert_eq!(t.stats.malformed.load(Ordering::Relaxed), 0);

    assert_eq!(sink.close(), 1200, "every line exactly once");
    let r = kaudit_store::verify::verify(&dir.join("data"), None).unwrap();
    assert_eq!((r.failure, r.events), (None, 1200));
}

/// The log rotates twice while the tailer is busy storing a batch (a slow disk): the file
/// between the two rotations is read too.
#[test]
fn two_rotations_while_busy_skip_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let logs = dir.join("logs");
    fs::create_dir_all(&logs).unwrap();
    let live = logs.join("audit.log");
    let all = lines(400);
    let sink = storing(dir);
    append(&live, &all[..100].concat());
    let run = start(tailer(dir, &live), &sink);
    wait_for(&sink, 100);
    *sink.delay.lock().unwrap() = Duration::from_millis(400);
    append(&live, &all[100..200].concat());
    std::thread::sleep(Duration::from_millis(100)); // it is now inside the slow append
    fs::rename(&live, logs.join("audit-2026-03-01T00-05-00.000.log")).unwrap();
    append(&live, &all[200..300].concat());
    fs::rename(&live, logs.join("audit-2026-03-01T00-06-00.000.log")).unwrap();
    append(&live, &all[300..].concat());
    *sink.delay.lock().unwrap() = Duration::ZERO;
    wait_for(&sink, 400);
    let t = stop(run);
    assert_eq!(t.stats.malformed.load(Ordering::Relaxed), 0);
    assert_eq!(sink.close(), 400);
}
