//! `kaudit alerts`: the alerts `kaudit serve` stored (and where each sink is).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::Args;
use kaudit_alerts::query::{self, AlertQuery};
use kaudit_alerts::{LogReader, StoredAlert};
use kaudit_detect::Severity;

use crate::cmd::detect::AlertFormat;
use crate::cmd::store::DataArg;
use crate::table::Table;

#[derive(Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    data: DataArg,
    /// Only this rule (`*` matches any run of characters: `k8s.exec.*`).
    #[arg(long)]
    rule: Option<String>,
    /// Only alerts at least this severe (info, low, medium, high, critical).
    #[arg(long, value_parser = |s: &str| Severity::parse(s))]
    min_severity: Option<Severity>,
    /// Events at or after this time: a duration back from now (`24h`, `7d`) or RFC 3339.
    #[arg(long)]
    since: Option<String>,
    /// Events before this time (same forms as --since).
    #[arg(long)]
    until: Option<String>,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    cluster: Option<String>,
    #[arg(long)]
    namespace: Option<String>,
    /// The newest this many (0: all).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[arg(long, value_enum, default_value_t = AlertFormat::Table)]
    output: AlertFormat,
    /// Then keep printing new alerts as they are stored (one line each), until interrupted.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Show where each sink is instead: delivered up to which alert, how many wait.
    #[arg(long, conflicts_with_all = ["follow", "rule", "since", "until", "user", "cluster", "namespace"])]
    sinks: bool,
}

fn row(a: &StoredAlert) -> Vec<String> {
    let al = &a.alert;
    vec![
        a.seq.to_string(),
        al.time.clone(),
        al.severity.to_string(),
        al.rule.clone(),
        al.cluster.clone(),
        al.user.clone(),
        match (al.namespace.is_empty(), al.name.is_empty()) {
            (true, true) => al.resource.clone(),
            (true, false) => format!("{} {}", al.resource, al.name),
            _ => format!("{} {}/{}", al.resource, al.namespace, al.name),
        },
        al.message.clone(),
    ]
}

const HEADER: &[&str] = &[
    "SEQ", "TIME", "SEVERITY", "RULE", "CLUSTER", "USER", "OBJECT", "MESSAGE",
];

pub fn alerts(a: AlertsArgs) -> Result<ExitCode> {
    let dir = a.data.data.join("alerts");
    if !a.data.data.join("manifest.json").exists() {
        return Err(anyhow!(
            "{}: not a kaudit data directory",
            a.data.data.display()
        ));
    }
    if a.sinks {
        return sinks(&dir);
    }
    let now = kaudit_model::now_micros();
    let time = |s: &Option<String>, name: &str| {
        s.as_deref()
            .map(|v| kaudit_model::units::time(v, now).map_err(|e| anyhow!("--{name}: {e}")))
            .transpose()
    };
    let q = AlertQuery {
        rule: a.rule.clone(),
        min_severity: a.min_severity,
        since: time(&a.since, "since")?,
        until: time(&a.until, "until")?,
        user: a.user.clone(),
        cluster: a.cluster.clone(),
        namespace: a.namespace.clone(),
        after_seq: None,
        limit: (a.limit > 0).then_some(a.limit),
    };
    let found = query::run(&dir, &q).map_err(|e| anyhow!(e))?;
    let (list, total) = (&found.alerts, found.total);
    let mut out = std::io::stdout().lock();
    match a.output {
        AlertFormat::Table => {
            if !list.is_empty() {
                let mut t = Table::new(HEADER);
                for s in list {
                    t.row(row(s));
                }
                t.write(&mut out)?;
            }
        }
        AlertFormat::Json => {
            serde_json::to_writer_pretty(&mut out, list).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
        }
        AlertFormat::Ndjson => {
            for s in list {
                serde_json::to_writer(&mut out, s).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    if !a.follow {
        eprintln!(
            "kaudit: {} of {total} matching alert(s) shown{}",
            list.len(),
            if (list.len() as u64) < total {
                " (the newest; --limit 0 shows all)"
            } else {
                ""
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Follow: from where the query stopped reading.
    let mut reader = LogReader::new(&dir, found.end);
    let mut q2 = q.clone();
    q2.limit = None;
    loop {
        let batch = reader.read(1000).map_err(|e| anyhow!(e))?;
        for s in batch.iter().filter(|s| q2.matches(s)) {
            match a.output {
                AlertFormat::Table => writeln!(out, "{}", row(s).join("  "))?,
                _ => {
                    serde_json::to_writer(&mut out, s).map_err(std::io::Error::from)?;
                    out.write_all(b"\n")?;
                }
            }
        }
        out.flush()?;
        if batch.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn sinks(dir: &std::path::Path) -> Result<ExitCode> {
    let stored = kaudit_alerts::log::end(dir).map_err(|e| anyhow!(e))?;
    let mut t = Table::new(&["SINK", "HANDLED", "WAITING", "THROTTLE GROUPS"]);
    for p in kaudit_alerts::deliver::positions(dir).map_err(|e| anyhow!(e))? {
        t.row(vec![
            p.name,
            p.next.to_string(),
            stored.saturating_sub(p.next).to_string(),
            p.throttle_groups.to_string(),
        ]);
    }
    let mut out = std::io::stdout().lock();
    t.write(&mut out)?;
    writeln!(out, "{stored} alert(s) stored")?;
    Ok(ExitCode::SUCCESS)
}
