//! `kaudit policy …`: check, eval, lint, simulate, diff, init.

use std::io::{self, BufRead, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use kaudit_model::Text;
use kaudit_policy::{
    Attributes, Decision, Evaluator, K8sVersion, LoadOptions, Loaded, Severity, User, load,
};

use crate::input;
use crate::table::Table;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Load and validate a policy exactly as kube-apiserver does at start-up.
    ///
    /// Exit status 0 when kube-apiserver would start with the policy, 1 when it would refuse
    /// it. Every problem is listed with file:line:column and its field path; keys that
    /// kube-apiserver silently drops are warnings that say which rule they widen.
    Check(CheckArgs),
    /// Print the decision a policy takes for each audit event (or request-attribute record).
    Eval(EvalArgs),
    /// Find what a policy gets wrong that kube-apiserver accepts: shadowed rules, missing
    /// coverage, noise, secrets in the log.
    ///
    /// Exit status: 0 when nothing is worse than info, 1 for warnings, 2 for errors (a policy
    /// kube-apiserver would refuse).
    Lint(LintArgs),
    /// Print a ready-made policy.
    Init(InitArgs),
    /// Replay recorded audit logs through a policy: what it would keep, drop and cost, per
    /// level and per rule.
    Simulate(SimulateArgs),
    /// Compare two policies on recorded traffic: what the new one would stop or start
    /// recording, grouped by user, verb and resource.
    Diff(DiffArgs),
}

#[derive(Args)]
pub struct SimulateArgs {
    /// The policy file.
    policy: String,
    /// Recorded audit logs (audit.log lines, EventLists, arrays; plain or gzipped).
    #[arg(required = true)]
    logs: Vec<String>,
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
    /// Recorded audit logs.
    #[arg(required = true)]
    logs: Vec<String>,
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

#[derive(Args)]
pub struct LintArgs {
    /// The policy file.
    policy: String,
    #[command(flatten)]
    k8s: VersionArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    format: LintFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LintFormat {
    /// One finding per paragraph: location, severity, code, message, fix.
    Text,
    /// A JSON array of {severity, code, rule, message}.
    Json,
}

#[derive(Args)]
pub struct InitArgs {
    /// The profile to print; `--list` shows them all.
    #[arg(long, default_value = "hardened", required_unless_present = "list")]
    profile: String,
    /// List the profiles.
    #[arg(long)]
    list: bool,
}

#[derive(Args)]
pub struct VersionArg {
    /// Behave like this kube-apiserver release (1.12 and later).
    #[arg(long = "k8s-version", value_name = "VERSION", default_value = "1.28", value_parser = parse_version)]
    pub k8s: K8sVersion,
}

fn parse_version(s: &str) -> Result<K8sVersion, String> {
    s.parse()
}

#[derive(Args)]
pub struct CheckArgs {
    /// The policy file (YAML or JSON).
    policy: String,
    #[command(flatten)]
    k8s: VersionArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    format: CheckFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum CheckFormat {
    /// file:line:col: severity: path: message
    Text,
    /// A JSON array of {severity, code, path, line, column, message}.
    Json,
}

#[derive(Args)]
pub struct EvalArgs {
    /// The policy file.
    policy: String,
    /// Audit events: audit.log lines, EventLists, JSON arrays or single events, plain or
    /// gzipped. Standard input when none is given.
    files: Vec<String>,
    /// Read request-attribute records (one JSON object per line: user, groups, verb,
    /// namespace, apiGroup, apiVersion, resource, subresource, name, path, resourceRequest)
    /// instead of audit events.
    #[arg(long)]
    attributes: bool,
    /// Output format [default: table on a terminal, ndjson otherwise].
    #[arg(long, value_enum)]
    format: Option<EvalFormat>,
    #[command(flatten)]
    k8s: VersionArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum EvalFormat {
    /// One JSON object per input: level, omitStages, omitManagedFields, rule.
    Ndjson,
    /// A table for people.
    Table,
}

pub fn run(cmd: PolicyCommand) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Check(a) => check(a),
        PolicyCommand::Eval(a) => eval(a),
        PolicyCommand::Lint(a) => lint(a),
        PolicyCommand::Init(a) => init(a),
        PolicyCommand::Simulate(a) => simulate(a),
        PolicyCommand::Diff(a) => diff(a),
    }
}

/// Reads and loads a policy file.
pub fn read_policy(path: &str, version: K8sVersion) -> Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read policy file {path}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{path}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(load(&text, &LoadOptions { version }))
}

/// Loads a policy that must be valid for the command to go on; prints its problems.
pub fn require_valid(path: &str, version: K8sVersion) -> Result<(Loaded, Evaluator)> {
    let loaded = read_policy(path, version)?;
    for d in &loaded.diagnostics {
        eprintln!("{}", d.render(path));
    }
    if !loaded.is_valid() {
        bail!(
            "{path}: kube-apiserver {version} would refuse this policy (see `kaudit policy check {path}`)"
        );
    }
    let ev = Evaluator::new(&loaded.policy, version).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    Ok((loaded, ev))
}

fn check(a: CheckArgs) -> Result<ExitCode> {
    let version = a.k8s.k8s;
    let loaded = read_policy(&a.policy, version)?;
    let mut out = BufWriter::new(io::stdout().lock());
    match a.format {
        CheckFormat::Json => {
            let items: Vec<serde_json::Value> = loaded
                .diagnostics
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "severity": d.severity, "code": d.code, "path": d.path,
                        "line": d.pos.map(|p| p.line), "column": d.pos.map(|p| p.col), "message": d.message,
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &items)?;
            writeln!(out)?;
        }
        CheckFormat::Text => {
            for d in &loaded.diagnostics {
                writeln!(out, "{}", d.render(&a.policy))?;
            }
            let errors = loaded
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            let warnings = loaded
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Warning)
                .count();
            let warn = match warnings {
                0 => String::new(),
                1 => ", 1 warning".to_string(),
                n => format!(", {n} warnings"),
            };
            if errors == 0 {
                let n = loaded.policy.rules.len();
                writeln!(
                    out,
                    "{}: ok: kube-apiserver {version} would start with this policy ({n} rule{}{warn})",
                    a.policy,
                    if n == 1 { "" } else { "s" }
                )?;
            } else {
                writeln!(
                    out,
                    "{}: kube-apiserver {version} would refuse to start with this policy: {errors} error{}{warn}",
                    a.policy,
                    if errors == 1 { "" } else { "s" }
                )?;
            }
        }
    }
    out.flush()?;
    Ok(if loaded.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A request-attribute record, shaped like the `request` objects of the conformance vectors.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AttrRecord {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    verb: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    api_group: String,
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    subresource: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    resource_request: Option<bool>,
}

struct Output {
    out: BufWriter<io::StdoutLock<'static>>,
    table: Option<Table>,
}

impl Output {
    fn emit(&mut self, d: &Decision, where_: String, a: &Attributes<'_>) -> Result<()> {
        match &mut self.table {
            None => {
                serde_json::to_writer(&mut self.out, d)?;
                self.out.write_all(b"\n")?;
            }
            Some(t) => {
                let user = a
                    .user
                    .as_ref()
                    .map_or("(unauthenticated)".to_string(), |u| u.name.to_string());
                t.row(vec![
                    where_,
                    user,
                    a.verb.to_string(),
                    describe(a),
                    d.level.to_string(),
                    d.omit_stages
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    d.rule.map_or("-".into(), |r| r.to_string()),
                ]);
            }
        }
        Ok(())
    }
}

/// `pods/exec prod/web-0`, or the URL path of a non-resource request.
pub fn describe(a: &Attributes<'_>) -> String {
    if !a.resource_request {
        return a.path.to_string();
    }
    let mut s = String::new();
    if !a.api_group.is_empty() {
        s.push_str(&a.api_group);
        s.push('/');
    }
    s.push_str(&a.resource);
    if !a.subresource.is_empty() {
        s.push('/');
        s.push_str(&a.subresource);
    }
    match (a.namespace.is_empty(), a.name.is_empty()) {
        (true, true) => {}
        (false, true) => s.push_str(&format!(" {}/", a.namespace)),
        (true, false) => s.push_str(&format!(" {}", a.name)),
        (false, false) => s.push_str(&format!(" {}/{}", a.namespace, a.name)),
    }
    s
}

fn eval(a: EvalArgs) -> Result<ExitCode> {
    let version = a.k8s.k8s;
    let (_, ev) = require_valid(&a.policy, version)?;
    let table = match a.format {
        Some(EvalFormat::Table) => true,
        Some(EvalFormat::Ndjson) => false,
        None => io::stdout().is_terminal(),
    };
    let mut o = Output {
        out: BufWriter::with_capacity(1 << 16, io::stdout().lock()),
        table: table.then(|| {
            Table::new(&[
                "INPUT",
                "USER",
                "VERB",
                "REQUEST",
                "LEVEL",
                "OMIT STAGES",
                ">RULE",
            ])
        }),
    };
    let mut bad = 0u64;
    if a.attributes {
        let stdin = ["-".to_string()];
        let files: &[String] = if a.files.is_empty() { &stdin } else { &a.files };
        for path in files {
            let name = if path == "-" {
                "<stdin>"
            } else {
                path.as_str()
            };
            let r = io::BufReader::new(input::open(path)?);
            for (i, line) in r.lines().enumerate() {
                let line = line.with_context(|| format!("cannot read {name}"))?;
                if line.trim().is_empty() {
                    continue;
                }
                let rec: AttrRecord = match serde_json::from_str(&line) {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("{name}:{}: invalid attribute record: {e}", i + 1);
                        bad += 1;
                        continue;
                    }
                };
                let groups: Vec<Text<'_>> = rec.groups.iter().map(|g| Text::borrowed(g)).collect();
                let attrs = Attributes {
                    user: rec.user.as_deref().map(|u| User {
                        name: u,
                        groups: &groups,
                    }),
                    verb: rec.verb.as_str().into(),
                    namespace: rec.namespace.as_str().into(),
                    api_group: rec.api_group.as_str().into(),
                    api_version: rec.api_version.as_str().into(),
                    resource: rec.resource.as_str().into(),
                    subresource: rec.subresource.as_str().into(),
                    name: rec.name.as_str().into(),
                    path: rec.path.as_str().into(),
                    resource_request: rec.resource_request.unwrap_or(!rec.resource.is_empty()),
                };
                let d = ev.evaluate(&attrs);
                o.emit(&d, format!("{name}:{}", i + 1), &attrs)?;
            }
        }
    } else {
        let stats = input::for_each_event(&a.files, |name, rec| {
            let attrs = Attributes::from_event(&rec.event);
            let d = ev.evaluate(&attrs);
            let at = match rec.item {
                Some(i) => format!("{name}:{}[{i}]", rec.line),
                None => format!("{name}:{}", rec.line),
            };
            o.emit(&d, at, &attrs)
        })?;
        bad += stats.skipped();
    }
    if let Some(t) = &o.table {
        t.write(&mut o.out)?;
    }
    o.out.flush()?;
    if bad > 0 {
        eprintln!("kaudit: {bad} input record(s) skipped");
    }
    Ok(ExitCode::SUCCESS)
}

fn lint(a: LintArgs) -> Result<ExitCode> {
    let version = a.k8s.k8s;
    let loaded = read_policy(&a.policy, version)?;
    let findings = kaudit_policy::lint::lint(&loaded, version);
    let mut out = BufWriter::new(io::stdout().lock());
    match a.format {
        LintFormat::Json => {
            let items: Vec<serde_json::Value> = findings
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "severity": f.severity, "code": f.code, "rule": f.rule,
                        "message": format!("{} Fix: {}.", f.message, f.fix),
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &items)?;
            writeln!(out)?;
        }
        LintFormat::Text => {
            for f in &findings {
                let at = match f.rule.and_then(|r| loaded.policy.positions.rule(r)) {
                    Some(p) => format!("{}:{}:{}", a.policy, p.line, p.col),
                    None => a.policy.clone(),
                };
                let rule = f.rule.map(|r| format!(" [rule {r}]")).unwrap_or_default();
                writeln!(out, "{at}: {} {}{rule}: {}", f.severity, f.code, f.message)?;
                writeln!(out, "    fix: {}", f.fix)?;
            }
            let count = |s| findings.iter().filter(|f| f.severity == s).count();
            writeln!(
                out,
                "{}: {} error(s), {} warning(s), {} info",
                a.policy,
                count(Severity::Error),
                count(Severity::Warning),
                count(Severity::Info)
            )?;
        }
    }
    out.flush()?;
    Ok(match kaudit_policy::lint::worst(&findings) {
        Some(Severity::Error) => ExitCode::from(2),
        Some(Severity::Warning) => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

fn init(a: InitArgs) -> Result<ExitCode> {
    use kaudit_policy::profiles::{PROFILES, profile};
    let mut out = io::stdout().lock();
    if a.list {
        for p in PROFILES {
            writeln!(out, "{:<32} {}", p.name, p.summary)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(p) = profile(&a.profile) else {
        let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
        bail!(
            "no profile {:?}; the profiles are: {}",
            a.profile,
            names.join(", ")
        );
    };
    out.write_all(p.text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
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

fn simulate(a: SimulateArgs) -> Result<ExitCode> {
    let version = a.k8s.k8s;
    let (loaded, ev) = require_valid(&a.policy, version)?;
    let mut sim = kaudit_policy::replay::Simulation::new(ev.len());
    let stats = input::for_each_event(&a.logs, |_, rec| {
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

fn diff(a: DiffArgs) -> Result<ExitCode> {
    use kaudit_policy::replay::Diff;
    let version = a.k8s.k8s;
    let (_, old) = require_valid(&a.old, version)?;
    let (_, new) = require_valid(&a.new, version)?;
    let mut d = Diff::new(old.len(), new.len());
    let stats = input::for_each_event(&a.logs, |_, rec| {
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
