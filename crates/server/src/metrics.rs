//! Prometheus metrics (`GET /metrics`), with the official client's text encoding.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabel {
    pub cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabel {
    pub cluster: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PathLabel {
    pub path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabel {
    pub rule: String,
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabel {
    pub sink: String,
}

type GaugeU = Gauge<u64, AtomicU64>;

/// Every metric the server exports.
pub struct Metrics {
    pub registry: Registry,
    pub received: Family<ClusterLabel, Counter>,
    pub stored: Family<ClusterLabel, Counter>,
    pub duplicates: Family<ClusterLabel, Counter>,
    pub rejected: Family<RejectLabel, Counter>,
    pub ack_seconds: Histogram,
    pub queued_bytes: GaugeU,
    pub store_events: GaugeU,
    pub wal_bytes: GaugeU,
    pub segment_bytes: GaugeU,
    pub segments: GaugeU,
    pub pending_seals: GaugeU,
    pub dedup_hot_keys: GaugeU,
    pub tail_lag_bytes: Family<PathLabel, GaugeU>,
    pub tail_lines: Family<PathLabel, Counter>,
    pub tail_malformed: Family<PathLabel, Counter>,
    pub ready: GaugeU,
    pub detect_rules: GaugeU,
    pub detect_events: Counter,
    pub detect_lag: GaugeU,
    pub alerts: Family<AlertLabel, Counter>,
    pub alerts_deduplicated: Counter,
    pub sink_delivered: Family<SinkLabel, Counter>,
    pub sink_summaries: Family<SinkLabel, Counter>,
    pub sink_suppressed: Family<SinkLabel, Counter>,
    pub sink_filtered: Family<SinkLabel, Counter>,
    pub sink_failures: Family<SinkLabel, Counter>,
    pub sink_backlog: Family<SinkLabel, GaugeU>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("kaudit");
        let m = Metrics {
            received: Family::default(),
            stored: Family::default(),
            duplicates: Family::default(),
            rejected: Family::default(),
            ack_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            queued_bytes: GaugeU::default(),
            store_events: GaugeU::default(),
            wal_bytes: GaugeU::default(),
            segment_bytes: GaugeU::default(),
            segments: GaugeU::default(),
            pending_seals: GaugeU::default(),
            dedup_hot_keys: GaugeU::default(),
            tail_lag_bytes: Family::default(),
            tail_lines: Family::default(),
            tail_malformed: Family::default(),
            ready: GaugeU::default(),
            detect_rules: GaugeU::default(),
            detect_events: Counter::default(),
            detect_lag: GaugeU::default(),
            alerts: Family::default(),
            alerts_deduplicated: Counter::default(),
            sink_delivered: Family::default(),
            sink_summaries: Family::default(),
            sink_suppressed: Family::default(),
            sink_filtered: Family::default(),
            sink_failures: Family::default(),
            sink_backlog: Family::default(),
            registry: Registry::default(),
        };
        m.register_ingest(&mut r);
        m.register_store(&mut r);
        m.register_tailers(&mut r);
        m.register_detection(&mut r);
        Metrics { registry: r, ..m }
    }

    /// Receiving: events received, stored and deduplicated, refusals, acknowledgement time, bodies queued.
    fn register_ingest(&self, r: &mut Registry) {
        r.register(
            "events_received",
            "Events received (webhook and tailers), per cluster",
            self.received.clone(),
        );
        r.register(
            "events_stored",
            "Events made durable, per cluster",
            self.stored.clone(),
        );
        r.register(
            "events_deduplicated",
            "Events already stored (same cluster, auditID, request time and stage), skipped",
            self.duplicates.clone(),
        );
        r.register(
            "batches_rejected",
            "Webhook requests refused, per cluster (\"\" when unauthenticated) and HTTP status",
            self.rejected.clone(),
        );
        r.register(
            "batch_ack_seconds",
            "Time from a webhook request's arrival to its durable acknowledgement",
            self.ack_seconds.clone(),
        );
        r.register(
            "queued_bytes",
            "Webhook bodies received and waiting for the disk",
            self.queued_bytes.clone(),
        );
    }

    /// The store: events, WAL and segment bytes, seals waiting, dedup keys in memory.
    fn register_store(&self, r: &mut Registry) {
        r.register(
            "store_events",
            "Events in the store's tree (including those retention removed)",
            self.store_events.clone(),
        );
        r.register(
            "wal_bytes",
            "Bytes in write-ahead log files",
            self.wal_bytes.clone(),
        );
        r.register(
            "segment_bytes",
            "Bytes in sealed segments",
            self.segment_bytes.clone(),
        );
        r.register("segments", "Sealed segments", self.segments.clone());
        r.register(
            "pending_seals",
            "Complete WAL files waiting to be sealed",
            self.pending_seals.clone(),
        );
        r.register(
            "dedup_hot_keys",
            "Requests whose dedup keys are held in memory",
            self.dedup_hot_keys.clone(),
        );
    }

    /// Tailers, and readiness.
    fn register_tailers(&self, r: &mut Registry) {
        r.register(
            "tail_lag_bytes",
            "Bytes of a tailed file not yet read",
            self.tail_lag_bytes.clone(),
        );
        r.register(
            "tail_lines",
            "Lines read by a tailer",
            self.tail_lines.clone(),
        );
        r.register(
            "tail_malformed",
            "Lines a tailer could not decode (skipped and logged)",
            self.tail_malformed.clone(),
        );
        r.register(
            "ready",
            "1 when the store is open and events are accepted",
            self.ready.clone(),
        );
    }

    /// Live detection, stored alerts and their delivery by sinks.
    fn register_detection(&self, r: &mut Registry) {
        r.register(
            "detect_rules",
            "Detection rules running on stored events",
            self.detect_rules.clone(),
        );
        r.register(
            "detect_events",
            "Stored events evaluated by the detection rules",
            self.detect_events.clone(),
        );
        r.register(
            "detect_lag_events",
            "Stored events waiting to be evaluated",
            self.detect_lag.clone(),
        );
        r.register(
            "alerts",
            "Alerts stored, per rule and severity",
            self.alerts.clone(),
        );
        r.register(
            "alerts_deduplicated",
            "Alerts raised again (after a restart) and not stored twice",
            self.alerts_deduplicated.clone(),
        );
        r.register(
            "alert_deliveries",
            "Alerts delivered, per sink",
            self.sink_delivered.clone(),
        );
        r.register(
            "alert_summaries",
            "Summaries of throttled alerts delivered, per sink",
            self.sink_summaries.clone(),
        );
        r.register(
            "alerts_suppressed",
            "Alerts withheld by throttling (and counted in a summary), per sink",
            self.sink_suppressed.clone(),
        );
        r.register(
            "alerts_filtered",
            "Alerts a sink does not take (its severity or rule filter), per sink",
            self.sink_filtered.clone(),
        );
        r.register(
            "alert_delivery_failures",
            "Failed delivery attempts (retried with backoff), per sink",
            self.sink_failures.clone(),
        );
        r.register(
            "alert_sink_backlog",
            "Alerts stored and not yet handled by a sink",
            self.sink_backlog.clone(),
        );
    }

    pub fn encode(&self) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &self.registry)
            .expect("writing to a String");
        s
    }

    pub fn cluster(c: &str) -> ClusterLabel {
        ClusterLabel {
            cluster: c.to_string(),
        }
    }
}
