//! Live detection: a thread that follows the store (every event once, in leaf order, from a
//! saved position), runs the rule set, and stores the alerts in the alert log, from which
//! each sink's thread delivers them.
//!
//! It reads what the writer has made durable, so it never holds up ingestion: when it
//! falls behind, events wait on disk (`kaudit_detect_lag_events` says how many). Its
//! position and the rules' state (windows, what first-seen rules learned) are saved to
//! `<data>/alerts/detector.json` after the alerts they produced are durable; after a crash
//! it goes back to the saved position and state, and the alerts it raises again are the same
//! ones, which the alert log does not store twice.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kaudit_alerts::{AlertLog, Delivery};
use kaudit_detect::{Engine, EngineState, RuleSet};
use kaudit_model::Event;
use kaudit_store::follow::Follower;
use serde::{Deserialize, Serialize};

use crate::Log;
use crate::config::Detect;
use crate::metrics::{AlertLabel, Metrics, SinkLabel};

/// Events read per step at most (memory is one step's alerts and one row group).
const STEP: u64 = 4096;

#[derive(Serialize, Deserialize)]
struct Saved {
    /// The next leaf to evaluate.
    next: u64,
    engine: EngineState,
}

fn saved_path(data: &Path) -> PathBuf {
    data.join("alerts").join("detector.json")
}

fn save(path: &Path, s: &Saved) -> Result<(), String> {
    let body = serde_json::to_vec(s).map_err(|e| e.to_string())?;
    kaudit_model::durable::replace(path, &body).map_err(|e| format!("{}: {e}", path.display()))
}

/// Loads the configured rules.
pub fn rules(cfg: &Detect) -> Result<RuleSet, String> {
    let mut set = kaudit_detect::load_paths(&cfg.rules, cfg.builtin)
        .map_err(|e| format!("detect.rules: {e}"))?;
    set.enable(&cfg.enable)
        .map_err(|e| format!("detect.enable: {e}"))?;
    Ok(set)
}

/// The running detector and its sinks.
pub struct Detector {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
    delivery: Delivery,
}

/// The alert log opened, the saved state read and the sinks started: everything that can
/// be refused, done before the server listens.
pub struct Prepared {
    data: PathBuf,
    alert_log: AlertLog,
    saved: Option<Saved>,
    delivery: Delivery,
    rules: RuleSet,
    from_start: bool,
    min_severity: kaudit_detect::Severity,
    save_every: Duration,
    sinks: usize,
}

impl Detector {
    /// Opens the alert log (cutting a torn last line), reads the detector's saved position
    /// and starts the sinks.
    pub fn prepare(
        data: &Path,
        cfg: &Detect,
        rules: RuleSet,
        log: Log,
    ) -> Result<Prepared, String> {
        let alerts_dir = data.join("alerts");
        let alert_log = AlertLog::open(&alerts_dir)?;
        if let Some(f) = &alert_log.recovered.file {
            log(&format!(
                "alerts: cut a torn line of {} bytes from {}",
                alert_log.recovered.torn_bytes,
                f.display()
            ));
        }
        let path = saved_path(data);
        let saved = match std::fs::read(&path) {
            Ok(b) => Some(serde_json::from_slice::<Saved>(&b).map_err(|e| {
                format!(
                    "{}: {e} (remove it to start detection afresh)",
                    path.display()
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let save_every = cfg.save_every;
        let l2 = log.clone();
        let delivery = Delivery::start(
            &alerts_dir,
            &cfg.sinks,
            &cfg.throttle,
            alert_log.next_seq(),
            Arc::new(move |m: &str| l2(m)),
        )?;
        Ok(Prepared {
            data: data.to_path_buf(),
            alert_log,
            saved,
            delivery,
            rules,
            from_start: cfg.from_start,
            min_severity: cfg.min_severity,
            save_every,
            sinks: cfg.sinks.len(),
        })
    }
}

impl Prepared {
    /// Starts following the store from the saved position (the first time: `committed`, the
    /// store's size, or 0 with `from_start`).
    pub fn start(
        self,
        committed: Arc<AtomicU64>,
        metrics: Arc<Metrics>,
        log: Log,
    ) -> Result<Detector, String> {
        let path = saved_path(&self.data);
        let rules = Arc::new(self.rules);
        let mut engine = Engine::new(rules.clone());
        let next = match self.saved {
            Some(s) => {
                engine.restore(s.engine);
                s.next
            }
            None => {
                let next = if self.from_start {
                    0
                } else {
                    committed.load(Ordering::Acquire)
                };
                let first = Saved {
                    next,
                    engine: engine.snapshot(),
                };
                if let Err(e) = save(&path, &first) {
                    self.delivery.stop();
                    return Err(e);
                }
                next
            }
        };
        let enabled = rules.rules.iter().filter(|r| r.enabled).count();
        metrics.detect_rules.set(enabled as u64);
        log(&format!(
            "detect: {enabled} rules on, from event {next}; {} sink(s)",
            self.sinks
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let run = Run {
            follower: Follower::new(&self.data, next),
            engine,
            alert_log: self.alert_log,
            unstored: Vec::new(),
            min_severity: self.min_severity,
            committed,
            metrics,
            log,
            path,
            save_every: self.save_every,
            stop: stop.clone(),
            notify: self.delivery.notify.clone(),
            stats: self.delivery.stats.clone(),
        };
        let thread = match std::thread::Builder::new()
            .name("kaudit-detect".into())
            .spawn(move || run.run())
        {
            Ok(t) => t,
            Err(e) => {
                self.delivery.stop();
                return Err(e.to_string());
            }
        };
        Ok(Detector {
            stop,
            thread,
            delivery: self.delivery,
        })
    }

    /// Stops the sinks (when the server does not get as far as starting detection).
    pub fn abandon(self) {
        self.delivery.stop();
    }
}

impl Detector {
    /// Evaluates what is left (for up to 10 s), saves the position, stops the sinks.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.delivery.stop();
    }
}

struct Run {
    follower: Follower,
    engine: Engine,
    alert_log: AlertLog,
    /// Alerts of events already evaluated that the log refused (a full disk): stored before
    /// anything else is read, and the position is not saved while any wait.
    unstored: Vec<kaudit_detect::Alert>,
    min_severity: kaudit_detect::Severity,
    committed: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    log: Log,
    path: PathBuf,
    save_every: Duration,
    stop: Arc<AtomicBool>,
    notify: Arc<kaudit_alerts::deliver::Notify>,
    stats: Vec<Arc<kaudit_alerts::SinkStats>>,
}

impl Run {
    fn run(mut self) {
        let mut saved_at = Instant::now();
        let mut saved_next = self.follower.next();
        let mut stop_deadline: Option<Instant> = None;
        let mut reported: Option<String> = None;
        let mut published = SinkCounters::default();
        loop {
            if self.stop.load(Ordering::Relaxed) && stop_deadline.is_none() {
                stop_deadline = Some(Instant::now() + Duration::from_secs(10));
            }
            let to = self.committed.load(Ordering::Acquire);
            let behind = to.saturating_sub(self.follower.next());
            self.metrics.detect_lag.set(behind);
            let mut progressed = false;
            if behind > 0 || !self.unstored.is_empty() {
                let r = self.step(to);
                self.metrics
                    .detect_lag
                    .set(to.saturating_sub(self.follower.next()));
                match r {
                    Ok(n) => {
                        progressed = n > 0;
                        if reported.take().is_some() {
                            (self.log)("detect: going on");
                        }
                    }
                    Err(e) => {
                        if reported.as_deref() != Some(&e) {
                            (self.log)(&format!("detect: {e} (retrying)"));
                            reported = Some(e);
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
            published.publish(&self.stats, &self.metrics, self.alert_log.next_seq());
            let done = stop_deadline.is_some_and(|d| {
                Instant::now() >= d
                    || self.follower.next() >= self.committed.load(Ordering::Acquire)
            });
            // Never past alerts not yet stored: after a crash they are raised again from here.
            let due = saved_next != self.follower.next() && saved_at.elapsed() >= self.save_every;
            if self.unstored.is_empty() && (due || done) {
                let s = Saved {
                    next: self.follower.next(),
                    engine: self.engine.snapshot(),
                };
                match save(&self.path, &s) {
                    Ok(()) => {
                        saved_next = s.next;
                        saved_at = Instant::now();
                    }
                    Err(e) => (self.log)(&format!("detect: saving the position: {e}")),
                }
            }
            if done {
                break;
            }
            if !progressed {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Evaluates up to [`STEP`] events and stores their alerts; returns the events read.
    fn step(&mut self, to: u64) -> Result<u64, String> {
        if !self.unstored.is_empty() {
            let waiting = std::mem::take(&mut self.unstored);
            self.store(waiting)?;
        }
        let mut alerts = Vec::new();
        let engine = &mut self.engine;
        let p = self
            .follower
            .read(to, STEP, |_, rec| {
                // Every stored event was decoded when it arrived; a record that no longer decodes
                // is for `kaudit verify` to report, not for the rules.
                if let Ok(e) = serde_json::from_str::<Event<'_>>(rec.event) {
                    let from = alerts.len();
                    engine.process(&e, rec.event, &mut alerts);
                    for a in &mut alerts[from..] {
                        a.cluster = rec.cluster.to_string();
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        if p.pruned > 0 {
            (self.log)(&format!(
                "detect: {} events were removed by retention before they could be evaluated",
                p.pruned
            ));
        }
        if p.undecodable > 0 {
            (self.log)(&format!(
                "detect: {} stored records could not be read and were passed over (run `kaudit verify`)",
                p.undecodable
            ));
        }
        let min = self.min_severity;
        alerts.retain(|a| a.severity >= min);
        let stored = self.store(alerts);
        self.metrics.detect_events.inc_by(p.read);
        stored?;
        Ok(p.read + p.pruned + p.undecodable)
    }

    /// Appends alerts to the log and wakes the sinks; on failure keeps them for the next try.
    fn store(&mut self, alerts: Vec<kaudit_detect::Alert>) -> Result<(), String> {
        if alerts.is_empty() {
            return Ok(());
        }
        let n = alerts.len() as u64;
        let stored = match self.alert_log.append(&alerts, kaudit_model::now_micros()) {
            Ok(s) => s,
            Err(e) => {
                self.unstored = alerts;
                return Err(format!("storing {n} alert(s): {e}"));
            }
        };
        self.metrics
            .alerts_deduplicated
            .inc_by(n - stored.len() as u64);
        for a in &stored {
            self.metrics
                .alerts
                .get_or_create(&AlertLabel {
                    rule: a.alert.rule.clone(),
                    severity: a.alert.severity.as_str().to_string(),
                })
                .inc();
        }
        self.notify.publish(self.alert_log.next_seq());
        Ok(())
    }
}

/// What was last copied from the sinks' counters into the metrics.
#[derive(Default)]
struct SinkCounters {
    last: std::collections::HashMap<String, [u64; 5]>,
}

impl SinkCounters {
    fn publish(&mut self, stats: &[Arc<kaudit_alerts::SinkStats>], m: &Metrics, log_next: u64) {
        for s in stats {
            let l = SinkLabel {
                sink: s.name.clone(),
            };
            let now = [
                s.delivered.load(Ordering::Relaxed),
                s.summaries.load(Ordering::Relaxed),
                s.suppressed.load(Ordering::Relaxed),
                s.filtered.load(Ordering::Relaxed),
                s.failures.load(Ordering::Relaxed),
            ];
            let last = self.last.entry(s.name.clone()).or_default();
            m.sink_delivered.get_or_create(&l).inc_by(now[0] - last[0]);
            m.sink_summaries.get_or_create(&l).inc_by(now[1] - last[1]);
            m.sink_suppressed.get_or_create(&l).inc_by(now[2] - last[2]);
            m.sink_filtered.get_or_create(&l).inc_by(now[3] - last[3]);
            m.sink_failures.get_or_create(&l).inc_by(now[4] - last[4]);
            *last = now;
            m.sink_backlog
                .get_or_create(&l)
                .set(log_next.saturating_sub(s.next.load(Ordering::Relaxed)));
        }
    }
}
