//! `kaudit serve`: one process receiving kube-apiserver's audit webhook and following
//! audit.log files, storing durably (an acknowledgement means fsync'd), applying retention,
//! and answering queries, health checks and metrics over HTTPS.
//!
//! ```text
//! TLS listener ─► http (auth → webhook protocol → Batch) ─┐
//! tailer threads ──────────────────────────────────────────┼─► writer thread (group commit) ─► store
//! http query API ─► kaudit_query (reads the store through a snapshot)
//! ```

pub mod auth;
pub mod config;
pub mod detector;
pub mod http;
mod listen;
pub mod metrics;
mod tailers;
pub mod tls;
pub mod writer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper_util::server::graceful::GracefulShutdown;
use kaudit_store::{Options, Store};
use tokio::net::TcpListener;

pub use config::Config;

use crate::detector::Prepared;
use crate::http::AppState;
use crate::metrics::Metrics;
use crate::tailers::Tailers;
use crate::writer::{Housekeeping, Writer};

/// Where messages go (stderr for the binary, captured in tests).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: tokio::sync::watch::Sender<bool>,
    done: tokio::task::JoinHandle<Result<(), String>>,
}

impl Server {
    /// Whether the store is open and events are accepted.
    pub fn ready(&self) -> bool {
        self.state.ready.load(Ordering::Relaxed)
    }

    /// Stops accepting, drains in-flight requests (up to 30 s), stops the tailers, and
    /// closes the store after the last queued batch.
    pub async fn shutdown(self) -> Result<(), String> {
        let _ = self.shutdown.send(true);
        self.done.await.map_err(|e| e.to_string())?
    }
}

/// Binds the listener and starts everything on the current Tokio runtime; the store is
/// opened (and recovered) in the background, and `/readyz` says when it is ready.
pub async fn start(cfg: Config, log: Log) -> Result<Server, String> {
    std::fs::create_dir_all(&cfg.data).map_err(|e| format!("{}: {e}", cfg.data.display()))?;
    let tls = listen::acceptor(&cfg)?;
    if cfg.clusters.is_empty() {
        // The generated token (and client certificate) are the credentials then, whatever
        // serves TLS.
        tls::ensure_generated(&cfg.data, &cfg.tls.hosts)?;
    }
    let (tokens, cns) = auth::credentials(&cfg)?;
    // Detection (rules, the alert log, the saved position, the sinks) is checked before
    // anything listens: the server does not run without the detections asked for.
    let prepared = if cfg.detect.enabled {
        let rules = detector::rules(&cfg.detect)?;
        Some(detector::Detector::prepare(
            &cfg.data,
            &cfg.detect,
            rules,
            log.clone(),
        )?)
    } else {
        None
    };
    let listener = match TcpListener::bind(&cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            if let Some(p) = prepared {
                p.abandon();
            }
            return Err(format!("listen {}: {e}", cfg.listen));
        }
    };
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let metrics = Arc::new(Metrics::new());
    let state = Arc::new(AppState {
        data: cfg.data.clone(),
        writer: OnceLock::new(),
        ready: AtomicBool::new(false),
        metrics: metrics.clone(),
        tokens,
        cns,
        api_tokens: cfg.api.tokens.clone(),
        max_body: cfg.webhook.max_body,
        max_queued: cfg.webhook.max_queued,
        retry_after: cfg.webhook.retry_after_secs,
    });
    let router = http::router(state.clone(), &cfg.webhook.path);
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let accept = listen::accept(listener, tls, router, shutdown_rx.clone());
    let done = tokio::spawn(run_store(StoreTask {
        cfg,
        state: state.clone(),
        metrics,
        prepared,
        accept,
        shutdown: shutdown_rx,
        log,
    }));
    Ok(Server {
        addr,
        state,
        shutdown,
        done,
    })
}

/// What the background task that owns the store needs.
struct StoreTask {
    cfg: Config,
    state: Arc<AppState>,
    metrics: Arc<Metrics>,
    prepared: Option<Prepared>,
    accept: tokio::task::JoinHandle<GracefulShutdown>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    log: Log,
}

/// Opens the store (recovery can take a while), then runs the writer thread, live detection
/// and the tailers until shutdown; then drains in-flight requests, stops the tailers, closes
/// the store after the last queued batch, and lets detection catch up.
async fn run_store(t: StoreTask) -> Result<(), String> {
    let StoreTask {
        cfg,
        state,
        metrics,
        prepared,
        accept,
        mut shutdown,
        log,
    } = t;
    let store_opts = Options {
        seal_rows: cfg.store.seal_rows,
        checkpoint_every: cfg.store.checkpoint_every,
        dedup_hot_rows: cfg.store.dedup_hot_rows,
        ..Options::default()
    };
    let hk = Housekeeping {
        seal_every: cfg.store.seal_every,
        checkpoint_every: cfg.store.checkpoint_every,
        retention_every: cfg.retention.every,
        max_age: cfg.retention.max_age,
        max_bytes: cfg.retention.max_size,
    };
    let data = cfg.data.clone();
    let opened = tokio::task::spawn_blocking(move || Store::open(&data, store_opts))
        .await
        .map_err(|e| e.to_string())?;
    let store = match opened {
        Ok(s) => s,
        Err(e) => {
            log(&format!("opening the store: {e}"));
            if let Some(p) = prepared {
                let _ = tokio::task::spawn_blocking(move || p.abandon()).await;
            }
            let _ = accept.await;
            return Err(e.to_string());
        }
    };
    for m in store.recovery().messages() {
        log(&m);
    }
    let size = store.size();
    let (writer, writer_thread) = Writer::start(store, hk, metrics.clone(), log.clone());
    let _ = state.writer.set(writer.clone());
    let detector = prepared.and_then(|p| {
        p.start(writer.committed.clone(), metrics.clone(), log.clone())
            .map_err(|e| {
                // Ingestion goes on; the events wait on disk for detection.
                log(&format!("detect: not started: {e}"))
            })
            .ok()
    });
    let tailers = Tailers::start(&cfg.tail, &state.data, &writer, &metrics, &log);
    metrics.ready.set(1);
    state.ready.store(true, Ordering::Relaxed);
    log(&format!("ready: {size} events stored"));
    let _ = shutdown.wait_for(|s| *s).await;
    // Shutting down: refuse new work, drain.
    state.ready.store(false, Ordering::Relaxed);
    metrics.ready.set(0);
    let graceful = accept.await.map_err(|e| e.to_string())?;
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
    tokio::task::spawn_blocking(move || {
        tailers.stop();
        writer.stop();
        let r = writer_thread
            .join()
            .map_err(|_| "the writer thread panicked".to_string());
        // After the writer (however it ended): the detector evaluates everything stored
        // before it stops.
        if let Some(d) = detector {
            d.stop();
        }
        r?
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Runs until SIGINT or SIGTERM (the binary's `kaudit serve`).
pub fn run(cfg: Config, log: Log) -> Result<(), String> {
    // Few threads: two cores do the work, and every thread keeps its own allocator heap
    // (parsing and queries run on the blocking pool, so it is kept small too).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .thread_name("kaudit-http")
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let s = start(cfg, log.clone()).await?;
        log(&format!("listening on {}", s.addr));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| e.to_string())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        log("shutting down: draining in-flight batches");
        s.shutdown().await?;
        log("stopped");
        Ok(())
    })
}
