//! The one thread that owns the store: appends with group commit (every batch waiting when
//! the disk becomes free goes into one write and one fsync), and does the housekeeping
//! (checkpoints when idle, sealing quiet WAL files, retention).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kaudit_model::now_micros;
use kaudit_model::sink::Sink;
use kaudit_store::{Appended, Batch, Store};
use tokio::sync::oneshot;

use crate::metrics::Metrics;

/// Events per group commit at most (a group is one write and one fsync).
const GROUP_EVENTS: usize = 8_192;

pub struct Job {
    pub batch: Batch,
    pub reply: oneshot::Sender<Result<Appended, kaudit_store::Error>>,
    /// Bytes counted in `queued` for this job.
    pub bytes: u64,
}

enum Msg {
    Append(Job),
    Stop,
}

/// Housekeeping settings.
#[derive(Clone, Debug)]
pub struct Housekeeping {
    pub seal_every: Duration,
    pub checkpoint_every: Duration,
    pub retention_every: Duration,
    pub max_age: Option<Duration>,
    pub max_bytes: Option<u64>,
}

/// A handle to the writer thread (cheap to clone).
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
    /// Bytes of bodies submitted and not yet answered.
    pub queued: Arc<AtomicU64>,
    /// Set when sealing falls behind (several WAL files waiting): new webhook bodies are
    /// told to come back later.
    pub behind: Arc<AtomicBool>,
    /// Cleared when the thread ends, however it ends (`/readyz` then says 503).
    pub alive: Arc<AtomicBool>,
    /// The store's size as of the last durable append (what live detection may read).
    pub committed: Arc<AtomicU64>,
}

/// Clears `alive` when dropped: on return and on panic alike.
struct AliveGuard(Arc<AtomicBool>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl Writer {
    /// Starts the thread; it owns `store` until [`Writer::stop`].
    pub fn start(
        store: Store,
        hk: Housekeeping,
        metrics: Arc<Metrics>,
        log: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> (Writer, std::thread::JoinHandle<Result<(), String>>) {
        let (tx, rx) = mpsc::channel();
        let w = Writer {
            tx,
            queued: Arc::new(AtomicU64::new(0)),
            behind: Arc::new(AtomicBool::new(false)),
            alive: Arc::new(AtomicBool::new(true)),
            committed: Arc::new(AtomicU64::new(store.size())),
        };
        let alive = w.alive.clone();
        let shared = Shared {
            queued: w.queued.clone(),
            behind: w.behind.clone(),
            committed: w.committed.clone(),
        };
        let h = std::thread::Builder::new()
            .name("kaudit-writer".into())
            .spawn(move || {
                let _alive = AliveGuard(alive);
                run(store, rx, hk, metrics, shared, log)
            })
            .expect("spawning the writer thread");
        (w, h)
    }

    /// Queues a batch; the reply comes once it is durable (or failed).
    pub fn submit(
        &self,
        batch: Batch,
        bytes: u64,
    ) -> oneshot::Receiver<Result<Appended, kaudit_store::Error>> {
        let (reply, rx) = oneshot::channel();
        self.queued.fetch_add(bytes, Ordering::Relaxed);
        if let Err(mpsc::SendError(Msg::Append(job))) = self.tx.send(Msg::Append(Job {
            batch,
            reply,
            bytes,
        })) {
            self.queued.fetch_sub(job.bytes, Ordering::Relaxed);
            let _ = job.reply.send(Err(kaudit_store::Error::Invalid(
                "the server is shutting down".into(),
            )));
        }
        rx
    }

    /// Asks the thread to finish what is queued, close the store and end.
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

/// What the writer thread shares with its handles.
struct Shared {
    queued: Arc<AtomicU64>,
    behind: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
}

/// What the tailers write into: events are collected into a batch for one cluster, and each
/// commit hands the batch to the writer thread (moved, not copied) and waits until it is
/// durable.
pub struct WriterSink {
    writer: Writer,
    batch: Batch,
}

impl WriterSink {
    pub fn new(writer: Writer, cluster: &str) -> WriterSink {
        WriterSink {
            writer,
            batch: Batch::new(cluster, 0),
        }
    }
}

impl Sink for WriterSink {
    fn max_event(&self) -> usize {
        kaudit_store::max_event(&self.batch.cluster)
    }

    fn push(&mut self, raw: &str, event: &kaudit_model::Event<'_>) -> Result<(), String> {
        self.batch.push(raw, event);
        Ok(())
    }

    fn pending(&self) -> usize {
        self.batch.len()
    }

    fn commit(&mut self) -> Result<Appended, String> {
        if self.batch.is_empty() {
            return Ok(Appended::default());
        }
        let cluster = self.batch.cluster.clone();
        let mut batch = std::mem::replace(&mut self.batch, Batch::new(&cluster, 0));
        batch.received = now_micros();
        let bytes = batch.bytes() as u64;
        let rx = self.writer.submit(batch, bytes);
        rx.blocking_recv()
            .map_err(|_| "the writer stopped".to_string())?
            .map_err(|e| e.to_string())
    }
}

fn run(
    mut store: Store,
    rx: mpsc::Receiver<Msg>,
    hk: Housekeeping,
    metrics: Arc<Metrics>,
    Shared {
        queued,
        behind,
        committed,
    }: Shared,
    log: Arc<dyn Fn(&str) + Send + Sync>,
) -> Result<(), String> {
    let mut last_retention = Instant::now();
    let mut last_append = Instant::now();
    let mut wal_started: Option<Instant> = None;
    let mut stopping = false;
    let mut reported: Option<String> = None;
    gauges(&store, &metrics);
    while !stopping {
        let mut jobs = Vec::new();
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(Msg::Append(j)) => jobs.push(j),
            Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => stopping = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        // Group commit: everything else already waiting.
        let mut events: usize = jobs.iter().map(|j| j.batch.len()).sum();
        while events < GROUP_EVENTS {
            match rx.try_recv() {
                Ok(Msg::Append(j)) => {
                    events += j.batch.len();
                    jobs.push(j);
                }
                Ok(Msg::Stop) => stopping = true,
                Err(_) => break,
            }
        }
        if stopping {
            // Drain: whatever was queued before the stop is answered.
            while let Ok(Msg::Append(j)) = rx.try_recv() {
                jobs.push(j);
            }
        }
        if !jobs.is_empty() {
            let incoming: Vec<Vec<kaudit_store::Incoming<'_>>> =
                jobs.iter().map(|j| j.batch.incoming()).collect();
            let slices: Vec<&[kaudit_store::Incoming<'_>]> =
                incoming.iter().map(Vec::as_slice).collect();
            let results = store.append_group(&slices);
            committed.store(store.size(), Ordering::Release);
            drop(slices);
            drop(incoming);
            for (j, r) in jobs.into_iter().zip(results) {
                queued.fetch_sub(j.bytes, Ordering::Relaxed);
                let c = Metrics::cluster(&j.batch.cluster);
                if let Ok(a) = &r {
                    metrics.stored.get_or_create(&c).inc_by(a.stored);
                    metrics.duplicates.get_or_create(&c).inc_by(a.duplicates);
                    if a.stored > 0 && wal_started.is_none() {
                        wal_started = Some(Instant::now());
                    }
                }
                let _ = j.reply.send(r);
            }
            last_append = Instant::now();
        }
        // Housekeeping.
        let now = Instant::now();
        if store.wal_rows() == 0 {
            wal_started = None;
        }
        if wal_started.is_some_and(|t| now - t >= hk.seal_every)
            && let Err(e) = store.start_seal()
        {
            log(&format!("sealing: {e}"));
        }
        if now - last_append >= hk.checkpoint_every
            && let Err(e) = store.checkpoint()
        {
            log(&format!("checkpoint: {e}"));
        }
        if (hk.max_age.is_some() || hk.max_bytes.is_some())
            && now - last_retention >= hk.retention_every
        {
            last_retention = now;
            match store.retain(hk.max_age, hk.max_bytes, now_micros()) {
                Ok(removed) if !removed.is_empty() => log(&format!(
                    "retention removed {} segment(s), {} events",
                    removed.len(),
                    removed.iter().map(|s| s.rows).sum::<u64>()
                )),
                Ok(_) => {}
                Err(e) => log(&format!("retention: {e}")),
            }
        }
        let _ = store.poll_seals(false);
        let problem = store
            .seal_error()
            .or(store.housekeeping_error())
            .map(ToString::to_string);
        if problem != reported {
            match &problem {
                Some(p) => log(&format!("store: {p}")),
                None => log("store: recovered"),
            }
            reported = problem;
        }
        behind.store(store.pending_seals() >= 3, Ordering::Relaxed);
        gauges(&store, &metrics);
    }
    store.close().map_err(|e| e.to_string())
}

fn gauges(store: &Store, m: &Metrics) {
    let segments = store.segments();
    m.store_events.set(store.size());
    m.segments.set(segments.len() as u64);
    m.segment_bytes.set(segments.iter().map(|s| s.bytes).sum());
    m.wal_bytes.set(store.wal_bytes());
    m.pending_seals.set(store.pending_seals() as u64);
    m.dedup_hot_keys.set(store.dedup_stats().0 as u64);
}
