//! `kaudit policy simulate` and `diff`: recorded traffic replayed through policies.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use kaudit_policy::Attributes;

use super::{VersionArg, require_valid};
use crate::input;
use crate::table::Table;

#[derive(Args)]
pub struct SimulateArgs {
    /// The policy file.
    policy: String,
    /// Recorded audit logs (audit.log lines, EventLists, arrays, cloud exports; plain or
    /// gzipped; `-` is standard input).
    #[arg(required = true)]
    logs: Vec<PathBuf>,
    #[command(flatten)]
    input: input::InputFormat,
    #[command(flatten)]
    k8s: VersionArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
}

#[derive(Args)]
pub struct DiffArgs {
    /// The current policy.
    old: String,
    /// The proposed policy.
    new: String,
    /// Recorded audit logs (as for `simulate`).
    #[arg(required = true)]
    logs: Vec<PathBuf>,
    #[command(flatten)]
    input: input::InputFormat,
    /// How many groups to list in each section.
    #[arg(long, default_value_t = 20)]
    top: usize,
    #[command(flatten)]
    k8s: VersionArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ReportFormat {
    /// Tables for people.
    Table,
    /// The whole report as one JSON object.
    Json,
}

fn human_bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

fn rule_summary(r: &kaudit_policy::PolicyRule) -> String {
    let mut parts = Vec::new();
    if !r.users.is_empty() {
        parts.push(format!("users={}", r.users.join(",")));
    }
    if !r.user_groups.is_empty() {
        parts.push(format!("groups={}", r.user_groups.join(",")));
    }
    if !r.verbs.is_empty() {
        parts.push(format!("verbs={}", r.verbs.join(",")));
    }
    if !r.namespaces.is_empty() {
        parts.push(format!("ns={}", r.namespaces.join(",")));
    }
    for g in &r.resources {
        let grp = if g.group.is_empty() {
            "core".to_string()
        } else {
            g.group.clone()
        };
        if g.resources.is_empty() {
            parts.push(format!("{grp}/*"));
        } else {
            parts.push(format!("{grp}:{}", g.resources.join(",")));
        }
    }
    if !r.non_resource_urls.is_empty() {
        parts.push(r.non_resource_urls.join(","));
    }
    let s = if parts.is_empty() {
        "(everything)".to_string()
    } else {
        parts.join(" ")
    };
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(59).collect::<String>())
    } else {
        s
    }
}

pub fn simulate(a: SimulateArgs) -> Result<ExitCode> {
    let version = a.k8s.k8s;
    let (loaded, ev) = require_valid(&a.policy, version)?;
    let mut sim = kaudit_policy::replay::Simulation::new(ev.len());
    let stats = input::for_each_event(&a.logs, a.input.format, |_, rec| {
        let attrs = Attributes::from_event(&rec.event);
        let d = ev.evaluate(&attrs);
        sim.add(&rec.event, rec.raw.len(), &d);
        Ok(())
    })?;
    sim.finish();
    let mut out = BufWriter::new(io::stdout().lock());
    if a.format == ReportFormat::Json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({"policy": a.policy, "kubernetesVersion": version.to_string(), "skippedRecords": stats.skipped(), "simulation": sim}),
        )?;
        writeln!(out)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let rec = sim.recorded;
    writeln!(
        out,
        "Replayed {} recorded events ({}) through {} (kube-apiserver {version}).",
        rec.events,
        human_bytes(rec.bytes),
        a.policy
    )?;
    writeln!(out)?;
    let mut t = Table::new(&["OUTCOME", ">EVENTS", ">% EVENTS", ">BYTES", ">% BYTES"]);
    let row = |t: &mut Table, label: String, c: kaudit_policy::replay::Counts| {
        t.row(vec![
            label,
            c.events.to_string(),
            pct(c.events, rec.events),
            human_bytes(c.bytes),
            pct(c.bytes, rec.bytes),
        ]);
    };
    for level in ["Metadata", "Request", "RequestResponse"] {
        row(
            &mut t,
            format!("kept at {level}"),
            sim.kept_by_level.get(level).copied().unwrap_or_default(),
        );
    }
    let k = sim.kept;
    row(&mut t, "kept in all".into(), k);
    row(&mut t, "dropped: level None".into(), sim.dropped_level_none);
    row(&mut t, "dropped: stage omitted".into(), sim.dropped_stage);
    t.write(&mut out)?;
    writeln!(
        out,
        "(bytes: recorded sizes for dropped events, new sizes for kept ones; % of the {} recorded)",
        human_bytes(rec.bytes)
    )?;
    writeln!(out)?;
    let mut t = Table::new(&[
        ">RULE",
        "LEVEL",
        ">EVENTS",
        ">KEPT",
        ">KEPT BYTES",
        ">SHARE",
        "MATCHES",
    ]);
    for (i, rc) in sim.rules.iter().enumerate() {
        let r = &loaded.policy.rules[i];
        t.row(vec![
            i.to_string(),
            r.level.clone(),
            rc.recorded.events.to_string(),
            rc.kept.events.to_string(),
            human_bytes(rc.kept.bytes),
            pct(rc.kept.bytes, k.bytes),
            rule_summary(r),
        ]);
    }
    let u = &sim.unmatched;
    t.row(vec![
        "-".into(),
        "None".into(),
        u.recorded.events.to_string(),
        "0".into(),
        "0 B".into(),
        "-".into(),
        "(no rule matched)".into(),
    ]);
    t.write(&mut out)?;
    let unused: Vec<String> = sim
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.recorded.events == 0)
        .map(|(i, _)| i.to_string())
        .collect();
    if !unused.is_empty() {
        writeln!(
            out,
            "\nRules that decided no recorded request: {}",
            unused.join(", ")
        )?;
    }
    if sim.understated > 0 {
        writeln!(
            out,
            "\nNote: {} events were recorded at a lower level than this policy asks: their bodies are not in the logs, so kept bytes are understated.",
            sim.understated
        )?;
    }
    if let Some(rr) = sim.estimated_request_received {
        writeln!(
            out,
            "\nNote: the recording has no RequestReceived events, but this policy does not omit that stage: it would also write about {} of them (~{}), not counted above.",
            rr.events,
            human_bytes(rr.bytes)
        )?;
    }
    if stats.skipped() > 0 {
        writeln!(
            out,
            "\nNote: {} unreadable records were skipped (listed on stderr).",
            stats.skipped()
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn diff(a: DiffArgs) -> Result<ExitCode> {
    use kaudit_policy::replay::Diff;
    let version = a.k8s.k8s;
    let (_, old) = require_valid(&a.old, version)?;
    let (_, new) = require_valid(&a.new, version)?;
    let mut d = Diff::new(old.len(), new.len());
    let stats = input::for_each_event(&a.logs, a.input.format, |_, rec| {
        let attrs = Attributes::from_event(&rec.event);
        let (o, n) = (old.evaluate(&attrs), new.evaluate(&attrs));
        d.add(&rec.event, rec.raw.len(), &attrs, &o, &n);
        Ok(())
    })?;
    d.finish();
    let mut out = BufWriter::new(io::stdout().lock());
    if a.format == ReportFormat::Json {
        let lc: Vec<serde_json::Value> = d
            .level_changed
            .iter()
            .map(|((g, o, n), c)| serde_json::json!({"user": g.user, "verb": g.verb, "resource": g.resource, "oldLevel": o, "newLevel": n, "events": c.events, "bytes": c.bytes}))
            .collect();
        let groups = |m: &std::collections::BTreeMap<
            kaudit_policy::replay::Group,
            kaudit_policy::replay::Counts,
        >|
         -> Vec<serde_json::Value> {
            m.iter().map(|(g, c)| serde_json::json!({"user": g.user, "verb": g.verb, "resource": g.resource, "events": c.events, "bytes": c.bytes})).collect()
        };
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({
                "old": {"policy": a.old, "kept": d.old.kept}, "new": {"policy": a.new, "kept": d.new.kept},
                "recorded": d.old.recorded, "skippedRecords": stats.skipped(),
                "noLongerRecorded": groups(&d.no_longer_recorded), "newlyRecorded": groups(&d.newly_recorded), "levelChanged": lc,
            }),
        )?;
        writeln!(out)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let rec = d.old.recorded;
    writeln!(
        out,
        "Replayed {} recorded events ({}) through both policies (kube-apiserver {version}).\n",
        rec.events,
        human_bytes(rec.bytes)
    )?;
    let mut t = Table::new(&[
        "POLICY",
        ">KEPT EVENTS",
        ">KEPT BYTES",
        ">% OF RECORDED BYTES",
    ]);
    t.row(vec![
        format!("old: {}", a.old),
        d.old.kept.events.to_string(),
        human_bytes(d.old.kept.bytes),
        pct(d.old.kept.bytes, rec.bytes),
    ]);
    t.row(vec![
        format!("new: {}", a.new),
        d.new.kept.events.to_string(),
        human_bytes(d.new.kept.bytes),
        pct(d.new.kept.bytes, rec.bytes),
    ]);
    t.write(&mut out)?;
    for (title, m) in [
        (
            "No longer recorded by the new policy",
            &d.no_longer_recorded,
        ),
        ("Newly recorded by the new policy", &d.newly_recorded),
    ] {
        top_table(
            &mut out,
            title,
            m,
            a.top,
            &["USER", "VERB", "RESOURCE", ">EVENTS", ">BYTES"],
            |g| vec![g.user, g.verb, g.resource],
        )?;
    }
    top_table(
        &mut out,
        "Recorded by both at a different level",
        &d.level_changed,
        a.top,
        &[
            "USER",
            "VERB",
            "RESOURCE",
            "OLD",
            "NEW",
            ">EVENTS",
            ">NEW BYTES",
        ],
        |(g, o, n)| vec![g.user, g.verb, g.resource, o, n],
    )?;
    if d.new.understated > 0 {
        writeln!(
            out,
            "\nNote: {} events were recorded at a lower level than the new policy asks: their bodies are not in the logs, so new bytes are understated.",
            d.new.understated
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `title: N events`, then the `top` largest groups of `m` and an "(others)" row for the rest.
/// `cells` gives a group's leading columns; events and bytes follow.
fn top_table<K: Clone + Ord>(
    out: &mut impl Write,
    title: &str,
    m: &std::collections::BTreeMap<K, kaudit_policy::replay::Counts>,
    top: usize,
    header: &[&str],
    cells: impl Fn(K) -> Vec<String>,
) -> Result<()> {
    let total: u64 = m.values().map(|c| c.events).sum();
    writeln!(out, "\n{title}: {total} events")?;
    if total == 0 {
        return Ok(());
    }
    let (rows, rest) = kaudit_policy::replay::top(m, top);
    let mut t = Table::new(header);
    for (k, c) in rows {
        let mut row = cells(k);
        row.extend([c.events.to_string(), human_bytes(c.bytes)]);
        t.row(row);
    }
    if rest.events > 0 {
        let mut row = vec!["(others)".to_string()];
        row.resize(header.len() - 2, String::new());
        row.extend([rest.events.to_string(), human_bytes(rest.bytes)]);
        t.row(row);
    }
    t.write(out)?;
    Ok(())
}
