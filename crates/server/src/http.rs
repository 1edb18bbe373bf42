//! The HTTP surface: the audit webhook, the query API, health and metrics. Handlers only
//! translate: the protocol is `kaudit_ingest::webhook`, storage the writer, queries
//! `kaudit_query`.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use kaudit_model::now_micros;
use kaudit_query::ask::{self, Answer};
use kaudit_query::exec::{self, Query as StoreQuery};
use kaudit_query::filter;
use kaudit_query::rows::Rows;
use kaudit_store::Batch;
use serde::Deserialize;

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
        .route(webhook_path, post(webhook))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/query", get(query))
        .route("/api/v1/ask/{question}", get(ask_question))
        .route("/api/v1/alerts", get(alerts))
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

async fn webhook(State(s): State<Arc<AppState>>, req: Request) -> Response {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let conn = parts.extensions.get::<Conn>();
    let Some(cluster) = s.cluster(conn, &parts.headers) else {
        s.reject("", StatusCode::UNAUTHORIZED);
        let mut r = text(
            StatusCode::UNAUTHORIZED,
            "authenticate with a client certificate or a bearer token this server knows",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    };
    let refuse = |status: StatusCode, msg: &str| {
        s.reject(&cluster, status);
        text(status, msg)
    };
    let Some(writer) = s
        .writer
        .get()
        .filter(|w| s.ready.load(Ordering::Relaxed) && w.alive.load(Ordering::Relaxed))
    else {
        s.reject(&cluster, StatusCode::SERVICE_UNAVAILABLE);
        return retry(
            StatusCode::SERVICE_UNAVAILABLE,
            s.retry_after,
            "starting up or shutting down",
        );
    };
    let ctype = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ctype.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Content-Type {ctype:?}: expected application/json"),
        );
    }
    let gzip = match parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        None | Some("identity") => false,
        Some("gzip") => true,
        Some(e) => {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("Content-Encoding {e:?}: only gzip or none"),
            );
        }
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.max_body) {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("body above the {} byte limit", s.max_body),
        );
    }
    let queued = writer.queued.load(Ordering::Relaxed);
    if queued + declared.unwrap_or(0) > s.max_queued || writer.behind.load(Ordering::Relaxed) {
        s.reject(&cluster, StatusCode::TOO_MANY_REQUESTS);
        return retry(
            StatusCode::TOO_MANY_REQUESTS,
            s.retry_after,
            "the disk is behind: retry later",
        );
    }
    let body = match read_limited(body, s.max_body).await {
        Ok(b) => b,
        Err(status) => {
            return refuse(
                status,
                &if status == StatusCode::PAYLOAD_TOO_LARGE {
                    format!("body above the {} byte limit", s.max_body)
                } else {
                    "the body could not be read".to_string()
                },
            );
        }
    };
    let max_body = s.max_body;
    let cl = cluster.clone();
    let parsed = tokio::task::spawn_blocking(move || -> Result<Batch, (StatusCode, String)> {
        let owned;
        let bytes: &[u8] = if gzip {
            let mut out = Vec::new();
            let mut d = flate2::read::GzDecoder::new(&body[..]).take(max_body + 1);
            d.read_to_end(&mut out).map_err(|e| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("the gzip body does not decompress: {e}"),
                )
            })?;
            if out.len() as u64 > max_body {
                return Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("decompressed body above the {max_body} byte limit"),
                ));
            }
            owned = out;
            &owned
        } else {
            &body
        };
        let recs = kaudit_ingest::webhook::parse(bytes)
            .map_err(|r| (StatusCode::BAD_REQUEST, r.reason))?;
        let mut b = Batch::new(&cl, now_micros());
        for r in &recs {
            b.push(r.raw, &r.event);
        }
        Ok(b)
    })
    .await;
    let batch = match parsed {
        Ok(Ok(b)) => b,
        Ok(Err((status, why))) => return refuse(status, &why),
        Err(_) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "parsing failed"),
    };
    let n = batch.len() as u64;
    s.metrics
        .received
        .get_or_create(&Metrics::cluster(&cluster))
        .inc_by(n);
    if n == 0 {
        return json(
            StatusCode::OK,
            &serde_json::json!({"stored": 0, "duplicates": 0}),
        );
    }
    let bytes = batch.bytes() as u64;
    match writer.submit(batch, bytes).await {
        Ok(Ok(a)) => {
            s.metrics.ack_seconds.observe(start.elapsed().as_secs_f64());
            json(
                StatusCode::OK,
                &serde_json::json!({"stored": a.stored, "duplicates": a.duplicates}),
            )
        }
        Ok(Err(e)) => {
            s.reject(&cluster, StatusCode::SERVICE_UNAVAILABLE);
            retry(
                StatusCode::SERVICE_UNAVAILABLE,
                s.retry_after,
                &format!("not stored: {e}"),
            )
        }
        Err(_) => {
            s.reject(&cluster, StatusCode::SERVICE_UNAVAILABLE);
            retry(
                StatusCode::SERVICE_UNAVAILABLE,
                s.retry_after,
                "not stored: shutting down",
            )
        }
    }
}

/// The whole body, or 413 past `max` bytes.
async fn read_limited(body: Body, max: u64) -> Result<Bytes, StatusCode> {
    let limited = http_body_util::Limited::new(body, max as usize);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(StatusCode::PAYLOAD_TOO_LARGE)
            } else {
                Err(StatusCode::BAD_REQUEST)
            }
        }
    }
}

/// The query API is for readers: a listed API token, or (when none is listed) loopback.
/// `Some(refusal)` when the caller is not one.
fn refuse_reader(s: &AppState, conn: Option<&Conn>, h: &HeaderMap) -> Option<Response> {
    if s.api_tokens.is_empty() {
        if conn.is_some_and(|c| c.peer.ip().is_loopback()) {
            return None;
        }
        return Some(text(
            StatusCode::FORBIDDEN,
            "queries are answered on loopback only (list api.tokens to allow others)",
        ));
    }
    match bearer(h) {
        Some(t) if s.api_tokens.iter().any(|k| same(k, t)) => None,
        _ => {
            let mut r = text(StatusCode::UNAUTHORIZED, "an API bearer token is required");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Some(r)
        }
    }
}

#[derive(Deserialize)]
struct QueryParams {
    #[serde(default)]
    filter: String,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default = "default_limit")]
    limit: usize,
    #[serde(default)]
    stages: bool,
    #[serde(default)]
    events: bool,
    #[serde(default)]
    arg: Option<String>,
    #[serde(default)]
    bucket: Option<String>,
}

fn default_limit() -> usize {
    100
}

fn rows_json(rows: &Rows, events: bool) -> serde_json::Value {
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut v = serde_json::json!({
                "time": r.time.map(|t| {
                    let mut b = Vec::new();
                    kaudit_model::MicroTime(t).write_to(&mut b);
                    String::from_utf8_lossy(&b).into_owned()
                }),
                "cluster": r.cluster, "audit_id": r.audit_id, "stage": r.stage,
                "user": r.user, "verb": r.verb, "resource": r.resource,
                "subresource": r.subresource, "namespace": r.namespace, "name": r.name,
                "code": r.code, "source_ip": r.source_ip, "user_agent": r.user_agent,
                "request_uri": r.request_uri, "leaf": r.leaf,
            });
            if events && let Some(e) = r.event {
                v["event"] = serde_json::from_str(e).unwrap_or(serde_json::Value::Null);
            }
            v
        })
        .collect();
    serde_json::json!({"total": rows.total(), "rows": list})
}

fn bad_request(e: String) -> Response {
    json(StatusCode::BAD_REQUEST, &serde_json::json!({"error": e}))
}

async fn query(
    State(s): State<Arc<AppState>>,
    Query(p): Query<QueryParams>,
    req: Request,
) -> Response {
    if let Some(r) = refuse_reader(&s, req.extensions().get::<Conn>(), req.headers()) {
        return r;
    }
    let now = now_micros();
    let f = match filter::parse(&p.filter, now) {
        Ok(f) => f,
        Err(e) => return bad_request(format!("filter: {e}")),
    };
    let data = s.data.clone();
    let r = tokio::task::spawn_blocking(move || {
        let mut q = StoreQuery::new(f);
        q.cluster = p.cluster;
        q.stages = p.stages;
        q.with_event = p.events;
        q.limit = (p.limit > 0).then_some(p.limit);
        exec::run(&data, &q).map(|(rows, _)| rows_json(&rows, p.events))
    })
    .await;
    match r {
        Ok(Ok(v)) => json(StatusCode::OK, &v),
        Ok(Err(e)) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"error": e}),
        ),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "query failed"),
    }
}

async fn ask_question(
    State(s): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
    Query(p): Query<QueryParams>,
    req: Request,
) -> Response {
    if let Some(r) = refuse_reader(&s, req.extensions().get::<Conn>(), req.headers()) {
        return r;
    }
    let Some(q) = ask::question(&name) else {
        let names: Vec<&str> = ask::QUESTIONS.iter().map(|q| q.name).collect();
        return json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": format!("no question {name:?}"), "questions": names}),
        );
    };
    let now = now_micros();
    let extra = match filter::parse(&p.filter, now) {
        Ok(f) => f,
        Err(e) => return bad_request(format!("filter: {e}")),
    };
    let bucket = match &p.bucket {
        Some(b) => match filter::duration(b) {
            Some(d) => Some(d),
            None => return bad_request(format!("bucket {b:?}: not a duration")),
        },
        None => None,
    };
    let data = s.data.clone();
    let r = tokio::task::spawn_blocking(move || {
        let o = ask::AskOptions {
            extra,
            cluster: p.cluster.clone(),
            with_event: p.events,
            bucket,
            limit: (p.limit > 0).then_some(p.limit),
            now,
        };
        ask::ask(&data, q, p.arg.as_deref(), &o).map(|(a, _)| match a {
            Answer::Requests(rows) => rows_json(&rows, p.events),
            Answer::Counts(v) => serde_json::json!({"counts": v}),
            Answer::Series {
                bucket_micros,
                points,
            } => serde_json::json!({
                "bucket_seconds": bucket_micros / 1_000_000,
                "points": points.iter().map(|(t, c, d)| serde_json::json!({
                    "time": *t / 1_000_000, "creations": c, "deletions": d})).collect::<Vec<_>>(),
            }),
        })
    })
    .await;
    match r {
        Ok(Ok(v)) => json(StatusCode::OK, &v),
        Ok(Err(e)) => bad_request(e),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "question failed"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertParams {
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    min_severity: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    after_seq: Option<u64>,
    #[serde(default = "default_limit")]
    limit: usize,
}

/// Alerts per `/api/v1/alerts` answer at most.
const MAX_ALERTS: usize = 10_000;

/// `GET /api/v1/alerts`: stored alerts, oldest first (the newest `limit`, default 100).
async fn alerts(
    State(s): State<Arc<AppState>>,
    p: Result<Query<AlertParams>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> Response {
    if let Some(r) = refuse_reader(&s, req.extensions().get::<Conn>(), req.headers()) {
        return r;
    }
    let Query(p) = match p {
        Ok(p) => p,
        Err(e) => return bad_request(e.body_text()),
    };
    let now = now_micros();
    let mut q = kaudit_alerts::query::AlertQuery {
        rule: p.rule,
        user: p.user,
        cluster: p.cluster,
        namespace: p.namespace,
        after_seq: p.after_seq,
        // At most this many per answer (page with after_seq); 0 means the most.
        limit: Some(if p.limit == 0 {
            MAX_ALERTS
        } else {
            p.limit.min(MAX_ALERTS)
        }),
        ..Default::default()
    };
    if let Some(m) = &p.min_severity {
        match kaudit_detect::Severity::parse(m) {
            Ok(m) => q.min_severity = Some(m),
            Err(e) => return bad_request(format!("min_severity: {e}")),
        }
    }
    for (name, v, slot) in [
        ("since", &p.since, &mut q.since),
        ("until", &p.until, &mut q.until),
    ] {
        if let Some(v) = v {
            match kaudit_alerts::query::parse_time(v, now) {
                Ok(t) => *slot = Some(t),
                Err(e) => return bad_request(format!("{name}: {e}")),
            }
        }
    }
    let dir = s.data.join("alerts");
    let r = tokio::task::spawn_blocking(move || kaudit_alerts::query::run(&dir, &q)).await;
    match r {
        Ok(Ok(found)) => json(
            StatusCode::OK,
            &serde_json::json!({"total": found.total, "alerts": found.alerts}),
        ),
        Ok(Err(e)) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"error": e}),
        ),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "alerts query failed"),
    }
}
