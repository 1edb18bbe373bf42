//! `kaudit serve`: one process receiving kube-apiserver's audit webhook and following
//! audit.log files, storing durably (an acknowledgement means fsync'd), applying retention,
//! and answering queries, health checks and metrics over HTTPS.
//!
//! ```text
//! TLS listener ─► http (auth → webhook protocol → Batch) ─┐
//! tailer threads ──────────────────────────────────────────┼─► writer thread (group commit) ─► store
//! http query API ─► kaudit_query (reads the data directory directly)
//! ```

pub mod config;
pub mod detector;
pub mod http;
pub mod metrics;
pub mod tls;
pub mod writer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use kaudit_ingest::tail::{self, Tailer};
use kaudit_store::{Options, Store};
use tokio::net::TcpListener;
use tower::ServiceExt;

pub use config::Config;

use crate::http::{AppState, Conn};
use crate::metrics::{Metrics, PathLabel};
use crate::writer::{Housekeeping, Writer, WriterSink};

/// Open connections at most; more are closed on accept.
const MAX_CONNECTIONS: usize = 1024;

/// Where messages go (stderr for the binary, captured in tests).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// Bearer token -> cluster, and client certificate CN -> cluster.
pub type Credentials = (HashMap<String, String>, HashMap<String, String>);

/// The credentials webhook senders present.
pub fn credentials(cfg: &Config) -> Result<Credentials, String> {
    let mut tokens = HashMap::new();
    let mut cns = HashMap::new();
    for c in &cfg.clusters {
        if let Some(t) = &c.token {
            tokens.insert(t.clone(), c.name.clone());
        }
        if let Some(f) = &c.token_file {
            let t = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            let t = t.lines().next().unwrap_or("").trim().to_string();
            if t.len() < 8 {
                return Err(format!(
                    "{}: the token must be at least 8 characters",
                    f.display()
                ));
            }
            tokens.insert(t, c.name.clone());
        }
        if let Some(cn) = &c.client_cn {
            cns.insert(cn.clone(), c.name.clone());
        }
    }
    if cfg.clusters.is_empty() {
        // The generated credentials, for the cluster "default".
        let g = tls::Generated::new(&cfg.data);
        if let Ok(t) = std::fs::read_to_string(g.token()) {
            tokens.insert(t.trim().to_string(), "default".into());
        }
        cns.insert(tls::CLIENT_CN.to_string(), "default".into());
    }
    Ok((tokens, cns))
}

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
    let tls = if cfg.tls.enabled {
        let (cert, key, client_ca) = match (&cfg.tls.cert, &cfg.tls.key) {
            (Some(c), Some(k)) => (c.clone(), k.clone(), cfg.tls.client_ca.clone()),
            (None, None) => {
                let g = tls::ensure_generated(&cfg.data, &cfg.tls.hosts)?;
                let ca = cfg.tls.client_ca.clone().unwrap_or(g.ca());
                (g.server(), g.server_key(), Some(ca))
            }
            _ => return Err("tls: give both cert and key, or neither".into()),
        };
        Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
            &cert,
            &key,
            client_ca.as_deref(),
        )?))
    } else {
        None
    };
    if cfg.clusters.is_empty() {
        // The generated token (and client certificate) are the credentials then, whatever
        // serves TLS.
        tls::ensure_generated(&cfg.data, &cfg.tls.hosts)?;
    }
    let (tokens, cns) = credentials(&cfg)?;
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
        max_body: config::size(&cfg.webhook.max_body)?,
        max_queued: config::size(&cfg.webhook.max_queued)?,
        retry_after: cfg.webhook.retry_after_secs,
    });
    let router = http::router(state.clone(), &cfg.webhook.path);
    let (shutdown, mut shutdown_rx) = tokio::sync::watch::channel(false);

    // Accepting connections.
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let accept_state = state.clone();
    let mut accept_stop = shutdown_rx.clone();
    let conns = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let accept = tokio::spawn(async move {
        loop {
            let (sock, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(_) => { tokio::time::sleep(Duration::from_millis(50)).await; continue; }
                },
                _ = accept_stop.changed() => break,
            };
            let Ok(permit) = conns.clone().try_acquire_owned() else {
                // Too many connections: this one is closed at once.
                drop(sock);
                continue;
            };
            let _ = sock.set_nodelay(true);
            let router = router.clone();
            let tls = tls.clone();
            let watcher = graceful.watcher();
            let _ = &accept_state;
            tokio::spawn(async move {
                let _permit = permit;
                match tls {
                    Some(acc) => {
                        let Ok(Ok(stream)) =
                            tokio::time::timeout(Duration::from_secs(10), acc.accept(sock)).await
                        else {
                            return; // failed handshake: a wrong or missing client CA, not TLS...
                        };
                        let client_cn = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(|c| tls::common_name(c));
                        serve_conn(
                            TokioIo::new(stream),
                            Conn { peer, client_cn },
                            router,
                            watcher,
                        )
                        .await;
                    }
                    None => {
                        let conn = Conn {
                            peer,
                            client_cn: None,
                        };
                        serve_conn(TokioIo::new(sock), conn, router, watcher).await;
                    }
                }
            });
        }
        graceful
    });

    // The store, opened in the background (recovery can take a while).
    let store_opts = Options {
        seal_rows: cfg.store.seal_rows,
        checkpoint_every: config::duration(&cfg.store.checkpoint_every)?,
        dedup_hot_rows: cfg.store.dedup_hot_rows,
        ..Options::default()
    };
    let hk = Housekeeping {
        seal_every: config::duration(&cfg.store.seal_every)?,
        checkpoint_every: config::duration(&cfg.store.checkpoint_every)?,
        retention_every: config::duration(&cfg.retention.every)?,
        max_age: cfg
            .retention
            .max_age
            .as_deref()
            .map(config::duration)
            .transpose()?,
        max_bytes: cfg
            .retention
            .max_size
            .as_deref()
            .map(config::size)
            .transpose()?,
    };
    let data = cfg.data.clone();
    let st = state.clone();
    let tails = cfg.tail.clone();
    let done = tokio::spawn(async move {
        let l = log.clone();
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
            l(&m);
        }
        let size = store.size();
        let (writer, writer_thread) = Writer::start(store, hk, metrics.clone(), l.clone());
        let _ = st.writer.set(writer.clone());
        let detector = match prepared {
            Some(p) => match p.start(writer.committed.clone(), metrics.clone(), l.clone()) {
                Ok(d) => Some(d),
                Err(e) => {
                    // Ingestion goes on; the events wait on disk for detection.
                    l(&format!("detect: not started: {e}"));
                    None
                }
            },
            None => None,
        };
        // Tailers, each on its own thread.
        let stop_tails = Arc::new(AtomicBool::new(false));
        let mut tail_threads = Vec::new();
        for t in tails {
            let poll = config::duration(&t.poll)?;
            let l2 = l.clone();
            let mut tailer = Tailer::new(
                tail::Config {
                    path: t.path.clone(),
                    poll,
                },
                &st.data.join("tail"),
                Box::new(move |m| l2(m)),
            );
            let mut sink = WriterSink::new(writer.clone(), &t.cluster);
            let stop = stop_tails.clone();
            let m = metrics.clone();
            let label = PathLabel {
                path: t.path.display().to_string(),
            };
            let l3 = l.clone();
            tail_threads.push(std::thread::spawn(move || {
                let stats = tailer.stats.clone();
                let mut reported = (0, 0);
                let publish = |reported: &mut (u64, u64)| {
                    let lines = stats.lines.load(Ordering::Relaxed);
                    let bad = stats.malformed.load(Ordering::Relaxed);
                    m.tail_lines
                        .get_or_create(&label)
                        .inc_by(lines - reported.0);
                    m.tail_malformed
                        .get_or_create(&label)
                        .inc_by(bad - reported.1);
                    m.tail_lag_bytes
                        .get_or_create(&label)
                        .set(stats.lag_bytes.load(Ordering::Relaxed));
                    *reported = (lines, bad);
                };
                while !stop.load(Ordering::Relaxed) {
                    // `run` returns on a sink error (the disk): wait, then go on from the
                    // committed position.
                    if let Err(e) = tailer.run(&mut sink, &stop) {
                        l3(&format!("tail {}: {e} (retrying)", label.path));
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    publish(&mut reported);
                }
            }));
        }
        metrics.ready.set(1);
        st.ready.store(true, Ordering::Relaxed);
        l(&format!("ready: {size} events stored"));
        let _ = shutdown_rx.wait_for(|s| *s).await;
        // Shutting down: refuse new work, drain.
        st.ready.store(false, Ordering::Relaxed);
        metrics.ready.set(0);
        let graceful = accept.await.map_err(|e| e.to_string())?;
        let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
        stop_tails.store(true, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            for t in tail_threads {
                let _ = t.join();
            }
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
    });
    Ok(Server {
        addr,
        state,
        shutdown,
        done,
    })
}

/// Serves HTTP/1.1 or HTTP/2 on one connection, telling every request who is connected.
async fn serve_conn<I>(
    io: TokioIo<I>,
    conn: Conn,
    router: axum::Router,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(conn.clone());
        router.clone().oneshot(req.map(axum::body::Body::new))
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // A client that never finishes its request headers is dropped.
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(60))
        .keep_alive_timeout(Duration::from_secs(20));
    let c = builder.serve_connection(io, svc).into_owned();
    let _ = watcher.watch(c).await;
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
