//! The query API: `/api/v1/query`, `/api/v1/ask/{question}`, `/api/v1/alerts`, for readers
//! with an API token (or from loopback when none is configured). Queries run on blocking
//! threads through `kaudit_query`.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use kaudit_model::now_micros;
use kaudit_query::ask::{self, Answer};
use kaudit_query::exec::{self, Query as StoreQuery};
use kaudit_query::filter;
use kaudit_query::rows::Rows;
use serde::Deserialize;

use super::{AppState, Conn, bearer, json, same, text};

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
pub(super) struct QueryParams {
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
                "time": r.time.map(|t| kaudit_model::MicroTime(t).to_string()),
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

pub(super) async fn query(
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

pub(super) async fn ask_question(
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
        Some(b) => match kaudit_model::units::duration_micros(b) {
            Ok(d) => Some(d),
            Err(e) => return bad_request(format!("bucket: {e}")),
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
pub(super) struct AlertParams {
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
pub(super) async fn alerts(
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
            match kaudit_model::units::time(v, now) {
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
