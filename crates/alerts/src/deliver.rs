//! Delivery: one thread per sink, each following the alert log from its own cursor
//! (`<data>/alerts/sinks/<name>.json`, saved with the sink's throttling state after every
//! delivered batch). A failed delivery is retried with exponential backoff (`retry_min`, 1 s, doubling to `retry_max`,
//! 5 min, with jitter; a receiver's Retry-After is honoured) until it succeeds: the alerts
//! wait in the log, so an unreachable sink falls behind without slowing anything else and
//! without losing an alert. Delivery is at least once: after a crash, a batch that was sent
//! but not yet recorded is sent again.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::log::LogReader;
use crate::sink::{self, Item, SinkConfig};
use crate::throttle::{Throttle, ThrottleConfig};

/// Where messages go.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// Items per delivery attempt.
const BATCH: usize = 100;

/// Counters of one sink, for `/metrics` and `kaudit alerts --sinks`.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub name: String,
    /// Alerts delivered.
    pub delivered: AtomicU64,
    /// Summaries of throttled windows delivered.
    pub summaries: AtomicU64,
    /// Alerts withheld by throttling (counted in a summary).
    pub suppressed: AtomicU64,
    /// Alerts this sink does not take (severity or rule filters).
    pub filtered: AtomicU64,
    /// Failed delivery attempts.
    pub failures: AtomicU64,
    /// The cursor: every alert before this seq has been handled.
    pub next: AtomicU64,
    /// The last failure, cleared on success.
    pub last_error: Mutex<Option<String>>,
}

/// The newest alert seq, published by the log's writer and waited on by the sinks.
#[derive(Default)]
pub struct Notify {
    next: Mutex<u64>,
    cv: Condvar,
}

impl Notify {
    pub fn publish(&self, next: u64) {
        let mut n = self.next.lock().expect("notify lock");
        if next > *n {
            *n = next;
            self.cv.notify_all();
        }
    }

    /// Waits until the log holds more than `seen` alerts, or `timeout`.
    fn wait(&self, seen: u64, timeout: Duration) {
        let n = self.next.lock().expect("notify lock");
        let _ = self
            .cv
            .wait_timeout_while(n, timeout, |n| *n <= seen)
            .expect("notify lock");
    }

    /// The newest published count: alerts below it are durable.
    pub fn current(&self) -> u64 {
        *self.next.lock().expect("notify lock")
    }

    fn wake(&self) {
        self.cv.notify_all();
    }
}

/// A sink's saved position.
#[derive(Serialize, Deserialize, Default)]
struct State {
    next: u64,
    #[serde(default)]
    throttle: Throttle,
}

fn state_path(alerts: &Path, name: &str) -> PathBuf {
    alerts.join("sinks").join(format!("{name}.json"))
}

fn save_state(path: &Path, s: &State) -> Result<(), String> {
    let body = serde_json::to_vec(s).map_err(|e| e.to_string())?;
    kaudit_model::durable::replace(path, &body).map_err(|e| format!("{}: {e}", path.display()))
}

/// Where a sink is, as its cursor file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub name: String,
    /// Every alert before this seq has been handled.
    pub next: u64,
    /// Throttling windows open.
    pub throttle_groups: usize,
}

/// The positions of every sink that has run on this alerts directory, by name.
pub fn positions(alerts: &Path) -> Result<Vec<Position>, String> {
    let dir = alerts.join("sinks");
    let rd = match std::fs::read_dir(&dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for e in rd {
        let p = e.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let Some(name) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let b = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let s: State = serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", p.display()))?;
        out.push(Position {
            name: name.to_string(),
            next: s.next,
            throttle_groups: s.throttle.groups(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The running sinks.
pub struct Delivery {
    stop: Arc<AtomicBool>,
    pub notify: Arc<Notify>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pub stats: Vec<Arc<SinkStats>>,
}

impl Delivery {
    /// Starts a thread per sink. A sink seen for the first time starts at `log_next` (the
    /// alerts stored from now on), not at the beginning of history.
    pub fn start(
        alerts: &Path,
        sinks: &[SinkConfig],
        default_throttle: &ThrottleConfig,
        log_next: u64,
        log: Log,
    ) -> Result<Delivery, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let notify = Arc::new(Notify::default());
        notify.publish(log_next);
        let mut names = std::collections::HashSet::new();
        let mut prepared = Vec::new();
        for (i, cfg) in sinks.iter().enumerate() {
            let at = |e: String| format!("detect.sinks[{i}] ({}): {e}", cfg.name);
            if !names.insert(cfg.name.clone()) {
                return Err(at("another sink has this name".into()));
            }
            let sink = sink::build(cfg).map_err(at)?;
            let mut throttle =
                Throttle::new(cfg.throttle.as_ref().unwrap_or(default_throttle)).map_err(at)?;
            let path = state_path(alerts, &cfg.name);
            let state = match std::fs::read(&path) {
                Ok(b) => {
                    let mut s = serde_json::from_slice::<State>(&b)
                        .map_err(|e| at(format!("{}: {e}", path.display())))?;
                    if s.next > log_next {
                        // The log lost its end (a crash before its last fsync): the alerts
                        // stored again under those numbers are this sink's too.
                        log(&format!(
                            "sink {}: its position {} is past the end of the alert log ({log_next}); going on from there",
                            cfg.name, s.next
                        ));
                        s.next = log_next;
                    }
                    s
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Recorded at once, so that alerts it fails to deliver before its first
                    // success are still its own after a restart.
                    let s = State {
                        next: log_next,
                        throttle: Throttle::default(),
                    };
                    save_state(&path, &s).map_err(at)?;
                    s
                }
                Err(e) => return Err(at(format!("{}: {e}", path.display()))),
            };
            throttle.restore(state.throttle);
            let stats = Arc::new(SinkStats {
                name: cfg.name.clone(),
                next: AtomicU64::new(state.next),
                ..SinkStats::default()
            });
            prepared.push((cfg.clone(), sink, throttle, state.next, path, stats));
        }
        let mut threads = Vec::new();
        let mut all_stats = Vec::new();
        for (cfg, sink, throttle, next, path, stats) in prepared {
            all_stats.push(stats.clone());
            let retry = (cfg.retry_min, cfg.retry_max);
            let w = Worker {
                cfg,
                retry,
                sink,
                throttle,
                reader: LogReader::new(alerts, next),
                path,
                stats,
                stop: stop.clone(),
                notify: notify.clone(),
                log: log.clone(),
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("kaudit-sink-{}", w.cfg.name))
                    .spawn(move || w.run())
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok(Delivery {
            stop,
            notify,
            threads,
            stats: all_stats,
        })
    }

    /// Stops the threads (a delivery in flight finishes or times out first).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.notify.wake();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

struct Worker {
    cfg: SinkConfig,
    retry: (Duration, Duration),
    sink: Box<dyn sink::Sink>,
    throttle: Throttle,
    reader: LogReader,
    path: PathBuf,
    stats: Arc<SinkStats>,
    stop: Arc<AtomicBool>,
    notify: Arc<Notify>,
    log: Log,
}

impl Worker {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps up to `d`, waking early to stop.
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopping() {
            let now = Instant::now();
            if now >= end {
                break;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(100)));
        }
    }

    fn save(&self) {
        let s = State {
            next: self.reader.next(),
            throttle: self.throttle.clone(),
        };
        if let Err(e) = save_state(&self.path, &s) {
            (self.log)(&format!("sink {}: saving its position: {e}", self.cfg.name));
        }
        self.stats.next.store(s.next, Ordering::Relaxed);
    }

    /// Reads more alerts from the log into `pending` (through filters and throttling).
    fn fill(&mut self, pending: &mut VecDeque<Item>) -> Result<bool, String> {
        let batch = self.reader.read_until(BATCH, self.notify.current())?;
        let mut sums = Vec::new();
        let read = !batch.is_empty();
        for a in batch {
            if !self.cfg.wants(&a) {
                self.stats.filtered.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let admit = self.throttle.admit(&a, &mut sums);
            pending.extend(sums.drain(..).map(Item::Summary));
            if admit {
                pending.push_back(Item::Alert(a));
            } else {
                self.stats.suppressed.fetch_add(1, Ordering::Relaxed);
            }
        }
        if !read {
            self.throttle.expire(kaudit_model::now_micros(), &mut sums);
            pending.extend(sums.drain(..).map(Item::Summary));
        }
        Ok(read)
    }

    fn run(mut self) {
        let mut pending: VecDeque<Item> = VecDeque::new();
        let mut failures = 0u32;
        let mut dirty = false;
        while !self.stopping() {
            if pending.is_empty() {
                match self.fill(&mut pending) {
                    Ok(read) => dirty |= read,
                    Err(e) => {
                        (self.log)(&format!("sink {}: reading alerts: {e}", self.cfg.name));
                        self.sleep(Duration::from_secs(10));
                        continue;
                    }
                }
                if pending.is_empty() {
                    if dirty {
                        // Everything read was filtered or throttled: remember that.
                        self.save();
                        dirty = false;
                    }
                    self.notify.wait(self.reader.next(), Duration::from_secs(1));
                    continue;
                }
            }
            let items: Vec<Item> = pending.iter().take(BATCH).cloned().collect();
            match self.sink.send(&items, &self.stop) {
                Ok(()) => {
                    self.count(&items);
                    pending.drain(..items.len());
                    if failures > 0 {
                        (self.log)(&format!(
                            "sink {}: delivering again after {failures} failed attempt(s)",
                            self.cfg.name
                        ));
                        *self.stats.last_error.lock().expect("stats lock") = None;
                    }
                    failures = 0;
                    if pending.is_empty() {
                        self.save();
                        dirty = false;
                    }
                }
                Err(e) => {
                    let done = e.delivered.min(items.len());
                    self.count(&items[..done]);
                    pending.drain(..done);
                    if self.stopping() {
                        break;
                    }
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    let wait = backoff(self.retry, failures, e.retry_after);
                    if failures == 0 || failures.is_power_of_two() {
                        (self.log)(&format!(
                            "sink {}: delivery failed ({}); retrying in {:.1}s, {} alert(s) waiting",
                            self.cfg.name,
                            e.message,
                            wait.as_secs_f64(),
                            pending.len()
                        ));
                    }
                    *self.stats.last_error.lock().expect("stats lock") = Some(e.message);
                    failures = failures.saturating_add(1);
                    self.sleep(wait);
                }
            }
        }
        if pending.is_empty() && dirty {
            self.save();
        }
    }

    fn count(&self, items: &[Item]) {
        for i in items {
            match i {
                Item::Alert(_) => self.stats.delivered.fetch_add(1, Ordering::Relaxed),
                Item::Summary(_) => self.stats.summaries.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}

/// `min` doubling to `max`, ±20% jitter; at least what the receiver asked for (up to 1 h).
fn backoff(
    (min, max): (Duration, Duration),
    failures: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let base = min.saturating_mul(1u32 << failures.min(16)).min(max);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.8 + 0.4 * (nanos % 1000) as f64 / 1000.0;
    let d = base.mul_f64(jitter);
    match retry_after {
        Some(r) => d.max(r.min(Duration::from_secs(3600))),
        None => d,
    }
}
