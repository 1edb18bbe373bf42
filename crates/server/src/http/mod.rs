//! The HTTP surface: the audit webhook ([`webhook`]), the query API ([`api`]), health and
//! metrics. Handlers only translate: the protocol is `kaudit_ingest::webhook`, storage the
//! writer, queries `kaudit_query`.

mod api;
mod webhook;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::metrics::{Metrics, RejectLabel};
use crate::writer::Writer;

/// Who is on the other end of a connection (put into every request's extensions).
#[derive(Clone, Debug)]
pub struct Conn {
    pub peer: SocketAddr,
    /// The Common Name of a verified client certificate.
    pub client_cn: Option<String>,
}

/// What the handlers share.
pub struct AppState {
    pub data: std::path::PathBuf,
    pub writer: OnceLock<Writer>,
    pub ready: AtomicBool,
    pub metrics: Arc<Metrics>,
    /// Bearer token -> cluster.
    pub tokens: HashMap<String, String>,
    /// Client certificate CN -> cluster.
    pub cns: HashMap<String, String>,
    pub api_tokens: Vec<String>,
    pub max_body: u64,
    pub max_queued: u64,
    pub retry_after: u64,
}

pub fn router(state: Arc<AppState>, webhook_path: &str) -> Router {
    Router::new()
        .route(webhook_path, post(webhook::webhook))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/query", get(api::query))
        .route("/api/v1/ask/{question}", get(api::ask_question))
        .route("/api/v1/alerts", get(api::alerts))
        .with_state(state)
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut m = msg.into();
    m.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        m,
    )
        .into_response()
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string() + "\n",
    )
        .into_response()
}

fn retry(status: StatusCode, secs: u64, msg: &str) -> Response {
    let mut r = text(status, msg);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    let writer_alive = s
        .writer
        .get()
        .is_some_and(|w| w.alive.load(Ordering::Relaxed));
    if s.ready.load(Ordering::Relaxed) && writer_alive {
        text(StatusCode::OK, "ready")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

fn bearer(h: &HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Constant-time comparison, so a token cannot be guessed byte by byte from timings.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

impl AppState {
    /// The cluster a webhook request speaks for: its client certificate, else its token.
    fn cluster(&self, conn: Option<&Conn>, h: &HeaderMap) -> Option<String> {
        if let Some(cn) = conn.and_then(|c| c.client_cn.as_ref())
            && let Some(c) = self.cns.get(cn)
        {
            return Some(c.clone());
        }
        let t = bearer(h)?;
        self.tokens
            .iter()
            .find(|(k, _)| same(k, t))
            .map(|(_, c)| c.clone())
    }

    fn reject(&self, cluster: &str, status: StatusCode) {
        self.metrics
            .rejected
            .get_or_create(&RejectLabel {
                cluster: cluster.to_string(),
                code: status.as_u16().to_string(),
            })
            .inc();
    }
}
