//! The tailers: one thread per followed `audit.log`, writing through the writer thread
//! ([`WriterSink`]) and publishing their counters as metrics.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use kaudit_ingest::tail::{self, Tailer};

use crate::Log;
use crate::config::Tail;
use crate::metrics::{Metrics, PathLabel};
use crate::writer::{Writer, WriterSink};

/// Running tailers.
pub(crate) struct Tailers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Tailers {
    /// Starts a tailer per entry of `tails`, keeping positions in `<data>/tail/`.
    pub fn start(
        tails: &[Tail],
        data: &Path,
        writer: &Writer,
        metrics: &Arc<Metrics>,
        log: &Log,
    ) -> Tailers {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = tails
            .iter()
            .map(|t| {
                let l = log.clone();
                let tailer = Tailer::new(
                    tail::Config {
                        path: t.path.clone(),
                        poll: t.poll,
                    },
                    &data.join("tail"),
                    Box::new(move |m| l(m)),
                );
                let sink = WriterSink::new(writer.clone(), &t.cluster);
                let label = PathLabel {
                    path: t.path.display().to_string(),
                };
                let (stop, metrics, log) = (stop.clone(), metrics.clone(), log.clone());
                std::thread::spawn(move || follow(tailer, sink, &stop, &metrics, &label, &log))
            })
            .collect();
        Tailers { stop, threads }
    }

    /// Stops them and waits until they have.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// One tailer's thread: runs it until `stop`, starting again (from its committed position)
/// after a sink error, and publishes its counters.
fn follow(
    mut tailer: Tailer,
    mut sink: WriterSink,
    stop: &AtomicBool,
    m: &Metrics,
    label: &PathLabel,
    log: &Log,
) {
    let stats = tailer.stats.clone();
    let mut reported = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        // `run` returns on a sink error (the disk): wait, then go on from the committed
        // position.
        if let Err(e) = tailer.run(&mut sink, stop) {
            log(&format!("tail {}: {e} (retrying)", label.path));
            std::thread::sleep(Duration::from_secs(1));
        }
        let lines = stats.lines.load(Ordering::Relaxed);
        let bad = stats.malformed.load(Ordering::Relaxed);
        m.tail_lines.get_or_create(label).inc_by(lines - reported.0);
        m.tail_malformed
            .get_or_create(label)
            .inc_by(bad - reported.1);
        m.tail_lag_bytes
            .get_or_create(label)
            .set(stats.lag_bytes.load(Ordering::Relaxed));
        reported = (lines, bad);
    }
}
