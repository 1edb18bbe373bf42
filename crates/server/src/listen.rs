//! The listener: TLS (with the client's certificate name), HTTP/1.1 and HTTP/2 on every
//! connection, at most [`MAX_CONNECTIONS`] at once, and a graceful drain on shutdown.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::Config;
use crate::http::Conn;
use crate::tls;

/// Open connections at most; more are closed on accept.
const MAX_CONNECTIONS: usize = 1024;

/// The TLS acceptor the configuration asks for (`None`: plain HTTP): the given certificate
/// and key, or the generated ones (checking client certificates against the generated CA).
pub(crate) fn acceptor(cfg: &Config) -> Result<Option<TlsAcceptor>, String> {
    if !cfg.tls.enabled {
        return Ok(None);
    }
    let (cert, key, client_ca) = match (&cfg.tls.cert, &cfg.tls.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), cfg.tls.client_ca.clone()),
        (None, None) => {
            let g = tls::ensure_generated(&cfg.data, &cfg.tls.hosts)?;
            let ca = cfg.tls.client_ca.clone().unwrap_or(g.ca());
            (g.server(), g.server_key(), Some(ca))
        }
        _ => return Err("tls: give both cert and key, or neither".into()),
    };
    Ok(Some(TlsAcceptor::from(tls::server_config(
        &cert,
        &key,
        client_ca.as_deref(),
    )?)))
}

/// Accepts connections until `stop` changes, serving each on its own task; returns the
/// handle that drains them.
pub(crate) fn accept(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<GracefulShutdown> {
    let graceful = GracefulShutdown::new();
    let conns = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let (sock, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(_) => { tokio::time::sleep(Duration::from_millis(50)).await; continue; }
                },
                _ = stop.changed() => break,
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
            tokio::spawn(async move {
                let _permit = permit;
                let Some(acc) = tls else {
                    let conn = Conn {
                        peer,
                        client_cn: None,
                    };
                    return serve_conn(TokioIo::new(sock), conn, router, watcher).await;
                };
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
                let conn = Conn { peer, client_cn };
                serve_conn(TokioIo::new(stream), conn, router, watcher).await;
            });
        }
        graceful
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
