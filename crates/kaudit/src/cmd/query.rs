//! `kaudit query` and `kaudit ask`: investigations over the data directory.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use clap::{Args, ValueEnum};
use kaudit_model::MicroTime;
use kaudit_model::{now_micros, units};
use kaudit_query::ask::{self, Answer, QUESTIONS};
use kaudit_query::exec::{Query, RowRef, Rows, Scanned, run};
use kaudit_query::filter::{self, Filter};

use crate::cmd::store::DataArg;
use crate::table::Table;

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutFormat {
    /// Columns for people.
    Table,
    /// A JSON array of the stored events.
    Json,
    /// The stored events themselves, one per line (the original JSON).
    Ndjson,
    /// The table's columns as CSV.
    Csv,
}

#[derive(Args)]
pub struct Common {
    #[command(flatten)]
    data: DataArg,
    /// Only events at or after this time: a duration back from now (24h, 7d) or RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// Only events before this time: a duration back from now or RFC 3339.
    #[arg(long)]
    until: Option<String>,
    /// Only this cluster.
    #[arg(long)]
    cluster: Option<String>,
    /// Show at most this many (the most recent); 0 for all.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    format: OutFormat,
    /// Print how much was read and skipped, and how long it took, on stderr.
    #[arg(long)]
    stats: bool,
}

#[derive(Args)]
#[command(after_help = "FILTER examples:
  kaudit query 'user=jane@example.com verb=get,list resource=secrets ns=production'
  kaudit query 'code>=400 ip=10.0.0.0/8 ua~kubectl since=24h'
  kaudit query 'resource=pods/exec,pods/attach user!=system:*'
  kaudit query 'verb=delete ns=prod-* since=2026-01-01T00:00:00Z' --format ndjson
Fields: user group verb resource subresource ns name code ip ua cluster stage level apigroup uri
decision reason id as; operators = != ~ !~ > >= < <=; since= until=. See docs/query.md.")]
pub struct QueryArgs {
    /// The filter: terms like user=jane verb=get,list resource=secrets code>=400 since=24h.
    #[arg(default_value = "")]
    filter: String,
    /// Every stage event (RequestReceived, ResponseStarted, ...), not one per request.
    #[arg(long)]
    stages: bool,
    #[command(flatten)]
    common: Common,
}

fn with_times(mut f: Filter, c: &Common, now: i64) -> Result<Filter> {
    if let Some(s) = &c.since {
        f.since = Some(units::time(s, now).map_err(|e| anyhow!("--since {e}"))?);
    }
    if let Some(s) = &c.until {
        f.until = Some(units::time(s, now).map_err(|e| anyhow!("--until {e}"))?);
    }
    Ok(f)
}

pub fn query(a: QueryArgs) -> Result<ExitCode> {
    let now = now_micros();
    let t = Instant::now();
    let f = filter::parse(&a.filter, now).map_err(|e| anyhow!("filter: {e}"))?;
    let f = with_times(f, &a.common, now)?;
    let c = &a.common;
    let q = Query {
        filters: vec![f],
        stages: a.stages,
        cluster: c.cluster.clone(),
        with_event: matches!(c.format, OutFormat::Json | OutFormat::Ndjson),
        limit: (c.limit > 0).then_some(c.limit),
    };
    let (rows, st) = run(&c.data.data, &q).map_err(|e| anyhow!(e))?;
    if c.stats {
        stats(rows.total(), &st, t);
    }
    print_rows(rows, c)
}

fn stats(total: usize, st: &Scanned, t: Instant) {
    eprintln!(
        "{total} requests from {} matching rows; filtered {} rows in {} row groups ({} skipped by \
         time or term sets, {} WAL rows) on {} threads; {} audit IDs read; {:.1} ms",
        st.rows_matched,
        st.rows_read,
        st.row_groups_read,
        st.row_groups_skipped,
        st.wal_rows,
        st.threads,
        st.ids_read,
        t.elapsed().as_secs_f64() * 1e3
    );
}

fn time_str(t: Option<i64>) -> String {
    t.map(|t| MicroTime(t).to_string()).unwrap_or_default()
}

fn resource(r: &RowRef<'_>) -> String {
    if !r.subresource.is_empty() {
        return format!("{}/{}", r.resource, r.subresource);
    }
    if r.resource.is_empty() {
        // A non-resource request: its path.
        return r.request_uri.split('?').next().unwrap_or("").to_string();
    }
    r.resource.to_string()
}

/// The columns people need: time, user, verb, resource, namespace, name, code, source IP.
fn cells(r: &RowRef<'_>) -> [String; 8] {
    [
        time_str(r.time),
        r.user.to_string(),
        r.verb.to_string(),
        resource(r),
        r.namespace.to_string(),
        r.name.to_string(),
        r.code.map(|c| c.to_string()).unwrap_or_default(),
        r.source_ip.to_string(),
    ]
}

fn csv(s: &str) -> String {
    let mut b = Vec::new();
    csv_field(&mut b, s).expect("writing to memory");
    String::from_utf8(b).expect("UTF-8 in, UTF-8 out")
}

/// Writes one CSV field (quoted when it must be).
fn csv_field(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    if s.contains([',', '"', '\n']) {
        write!(out, "\"{}\"", s.replace('"', "\"\""))
    } else {
        out.write_all(s.as_bytes())
    }
}

/// One CSV line, written without building intermediate strings (results can be large).
fn csv_line(out: &mut impl Write, r: &RowRef<'_>, time: &mut Vec<u8>) -> std::io::Result<()> {
    time.clear();
    if let Some(t) = r.time {
        MicroTime(t).write_to(time);
    }
    out.write_all(time)?;
    for s in [r.cluster, r.user, r.verb] {
        out.write_all(b",")?;
        csv_field(out, s)?;
    }
    out.write_all(b",")?;
    if r.subresource.is_empty() && !r.resource.is_empty() {
        csv_field(out, r.resource)?;
    } else {
        csv_field(out, &resource(r))?;
    }
    for s in [r.namespace, r.name] {
        out.write_all(b",")?;
        csv_field(out, s)?;
    }
    out.write_all(b",")?;
    if let Some(c) = r.code {
        write!(out, "{c}")?;
    }
    for s in [r.source_ip, r.user_agent, r.audit_id, r.stage] {
        out.write_all(b",")?;
        csv_field(out, s)?;
    }
    out.write_all(b"\n")
}

fn print_rows(rows: Rows, c: &Common) -> Result<ExitCode> {
    let total = rows.total();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match c.format {
        OutFormat::Ndjson => {
            for r in rows.iter() {
                out.write_all(r.event.unwrap_or("{}").as_bytes())?;
                out.write_all(b"\n")?;
            }
        }
        OutFormat::Json => {
            writeln!(out, "[")?;
            let n = rows.len();
            for (i, r) in rows.iter().enumerate() {
                let sep = if i + 1 < n { "," } else { "" };
                writeln!(out, "{}{sep}", r.event.unwrap_or("{}"))?;
            }
            writeln!(out, "]")?;
        }
        OutFormat::Csv => {
            writeln!(
                out,
                "time,cluster,user,verb,resource,namespace,name,code,source_ip,user_agent,audit_id,stage"
            )?;
            let mut time = Vec::new();
            for r in rows.iter() {
                csv_line(&mut out, &r, &mut time)?;
            }
        }
        OutFormat::Table => {
            let mut t = Table::new(&[
                "TIME",
                "USER",
                "VERB",
                "RESOURCE",
                "NAMESPACE",
                "NAME",
                ">CODE",
                "SOURCE IP",
            ]);
            for r in rows.iter() {
                t.row(cells(&r).to_vec());
            }
            t.write(&mut out)?;
            if total > rows.len() {
                writeln!(
                    out,
                    "({} of {total} requests shown, the most recent; --limit 0 for all)",
                    rows.len()
                )?;
            } else {
                writeln!(out, "({total} requests)")?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct AskArgs {
    /// The question (run `kaudit ask list` to see them all).
    question: String,
    /// Its argument: a user for `user`, RESOURCE/NAMESPACE/NAME for `object`.
    arg: Option<String>,
    /// Narrow the question with a filter (same language as `kaudit query`).
    #[arg(long, default_value = "")]
    filter: String,
    /// Bucket size for time series (5m, 1h, 1d); chosen from the span when absent.
    #[arg(long)]
    bucket: Option<String>,
    #[command(flatten)]
    common: Common,
}

pub fn ask(a: AskArgs) -> Result<ExitCode> {
    if a.question == "list" {
        let mut t = Table::new(&["QUESTION", "ARGUMENT", "WHAT IT ANSWERS"]);
        for q in QUESTIONS {
            t.row(vec![
                q.name.into(),
                q.arg.unwrap_or("").into(),
                q.about.into(),
            ]);
        }
        t.write(&mut std::io::stdout().lock())?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(q) = ask::question(&a.question) else {
        let names: Vec<&str> = QUESTIONS.iter().map(|q| q.name).collect();
        bail!(
            "no question {:?}; ask one of: {}",
            a.question,
            names.join(", ")
        );
    };
    let now = now_micros();
    let extra = filter::parse(&a.filter, now).map_err(|e| anyhow!("--filter: {e}"))?;
    let extra = with_times(extra, &a.common, now)?;
    let bucket = match &a.bucket {
        Some(b) => Some(units::duration_micros(b).map_err(|e| anyhow!("--bucket {e}"))?),
        None => None,
    };
    let c = &a.common;
    let with_event = matches!(c.format, OutFormat::Json | OutFormat::Ndjson);
    let t = Instant::now();
    let opts = ask::AskOptions {
        extra,
        cluster: c.cluster.clone(),
        with_event,
        bucket,
        limit: (c.limit > 0).then_some(c.limit),
        now,
    };
    let (answer, st) =
        ask::ask(&c.data.data, q, a.arg.as_deref(), &opts).map_err(|e| anyhow!(e))?;
    if c.stats {
        let n = match &answer {
            Answer::Requests(r) => r.total(),
            Answer::Counts(v) => v.iter().map(|x| x.1 as usize).sum(),
            Answer::Series { points, .. } => points.iter().map(|p| (p.1 + p.2) as usize).sum(),
        };
        stats(n, &st, t);
    }
    let mut out = std::io::stdout().lock();
    match answer {
        Answer::Requests(rows) => return print_rows(rows, c),
        Answer::Counts(v) => {
            let v: Vec<_> = if c.limit > 0 {
                v.into_iter().take(c.limit).collect()
            } else {
                v
            };
            match c.format {
                OutFormat::Table => {
                    let mut t = Table::new(&["USER", ">REQUESTS"]);
                    for (u, n) in &v {
                        t.row(vec![u.clone(), n.to_string()]);
                    }
                    t.write(&mut out)?;
                }
                OutFormat::Csv => {
                    writeln!(out, "user,requests")?;
                    for (u, n) in &v {
                        writeln!(out, "{},{n}", csv(u))?;
                    }
                }
                _ => {
                    for (u, n) in &v {
                        writeln!(out, "{}", serde_json::json!({"user": u, "requests": n}))?;
                    }
                }
            }
        }
        Answer::Series {
            bucket_micros,
            points,
        } => match c.format {
            OutFormat::Table => {
                let mut t = Table::new(&["BUCKET START", ">CREATIONS", ">DELETIONS"]);
                for (k, cr, de) in &points {
                    t.row(vec![time_str(Some(*k)), cr.to_string(), de.to_string()]);
                }
                t.write(&mut out)?;
                writeln!(out, "(buckets of {} s)", bucket_micros / 1_000_000)?;
            }
            OutFormat::Csv => {
                writeln!(out, "bucket,creations,deletions")?;
                for (k, cr, de) in &points {
                    writeln!(out, "{},{cr},{de}", time_str(Some(*k)))?;
                }
            }
            _ => {
                let pts: Vec<_> = points
                    .iter()
                    .map(|(k, cr, de)| serde_json::json!({"t": time_str(Some(*k)), "creations": cr, "deletions": de}))
                    .collect();
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"bucketSeconds": bucket_micros / 1_000_000, "points": pts})
                )?;
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}
