//! `POST /audit`: kube-apiserver's audit webhook, as a pipeline of checks: who is sending
//! (client certificate or token), the headers, room on the disk, the body (size, gzip), the
//! protocol (`kaudit_ingest::webhook`, on a blocking thread), then the writer. A 200 only
//! after the writer says the batch is fsync'd.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use kaudit_model::now_micros;
use kaudit_store::Batch;

use super::{AppState, Conn, json, retry, text};
use crate::metrics::Metrics;
use crate::writer::Writer;

/// A refusal: its status and why.
type Refusal = (StatusCode, String);

pub(super) async fn webhook(State(s): State<Arc<AppState>>, req: Request) -> Response {
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
    let refuse = |(status, msg): Refusal| {
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
    let (gzip, declared) = match headers(&parts.headers, s.max_body) {
        Ok(h) => h,
        Err(r) => return refuse(r),
    };
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
        Err(r) => return refuse(r),
    };
    let (max_body, cl) = (s.max_body, cluster.clone());
    let batch = match tokio::task::spawn_blocking(move || parse(&body, gzip, max_body, &cl)).await {
        Ok(Ok(b)) => b,
        Ok(Err(r)) => return refuse(r),
        Err(_) => {
            return refuse((StatusCode::INTERNAL_SERVER_ERROR, "parsing failed".into()));
        }
    };
    store(&s, writer, &cluster, batch, start).await
}

/// The headers: JSON (`Content-Type`), plain or gzip (`Content-Encoding`; returned as
/// `true` for gzip), and the declared length (refused above `max_body`).
fn headers(h: &HeaderMap, max_body: u64) -> Result<(bool, Option<u64>), Refusal> {
    let value = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let ctype = value(header::CONTENT_TYPE).unwrap_or("");
    let mime = ctype.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {ctype:?}: expected application/json"),
        ));
    }
    let gzip = match value(header::CONTENT_ENCODING) {
        None | Some("identity") => false,
        Some("gzip") => true,
        Some(e) => {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding {e:?}: only gzip or none"),
            ));
        }
    };
    let declared = value(header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return Err(too_large(max_body, ""));
    }
    Ok((gzip, declared))
}

fn too_large(max: u64, what: &str) -> Refusal {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("{what}body above the {max} byte limit"),
    )
}

/// The whole body, or 413 past `max` bytes.
async fn read_limited(body: Body, max: u64) -> Result<Bytes, Refusal> {
    let limited = http_body_util::Limited::new(body, max as usize);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large(max, ""))
        }
        Err(_) => Err((StatusCode::BAD_REQUEST, "the body could not be read".into())),
    }
}

/// The body (gunzipped, still at most `max_body` bytes) as a batch for `cluster`, or why it
/// is refused (`kaudit_ingest::webhook`: a batch is taken whole or not at all).
fn parse(body: &[u8], gzip: bool, max_body: u64, cluster: &str) -> Result<Batch, Refusal> {
    let owned;
    let bytes: &[u8] = if gzip {
        let mut out = Vec::new();
        let mut d = flate2::read::GzDecoder::new(body).take(max_body + 1);
        d.read_to_end(&mut out).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("the gzip body does not decompress: {e}"),
            )
        })?;
        if out.len() as u64 > max_body {
            return Err(too_large(max_body, "decompressed "));
        }
        owned = out;
        &owned
    } else {
        body
    };
    let recs =
        kaudit_ingest::webhook::parse(bytes).map_err(|r| (StatusCode::BAD_REQUEST, r.reason))?;
    let mut b = Batch::new(cluster, now_micros());
    for r in &recs {
        b.push(r.raw, &r.event);
    }
    Ok(b)
}

/// Hands the batch to the writer and answers once it is durable (200 with what was stored),
/// or failed (503: kube-apiserver retries).
async fn store(
    s: &AppState,
    writer: &Writer,
    cluster: &str,
    batch: Batch,
    start: Instant,
) -> Response {
    let n = batch.len() as u64;
    s.metrics
        .received
        .get_or_create(&Metrics::cluster(cluster))
        .inc_by(n);
    if n == 0 {
        return json(
            StatusCode::OK,
            &serde_json::json!({"stored": 0, "duplicates": 0}),
        );
    }
    let bytes = batch.bytes() as u64;
    let why = match writer.submit(batch, bytes).await {
        Ok(Ok(a)) => {
            s.metrics.ack_seconds.observe(start.elapsed().as_secs_f64());
            return json(
                StatusCode::OK,
                &serde_json::json!({"stored": a.stored, "duplicates": a.duplicates}),
            );
        }
        Ok(Err(e)) => format!("not stored: {e}"),
        Err(_) => "not stored: shutting down".to_string(),
    };
    s.reject(cluster, StatusCode::SERVICE_UNAVAILABLE);
    retry(StatusCode::SERVICE_UNAVAILABLE, s.retry_after, &why)
}
