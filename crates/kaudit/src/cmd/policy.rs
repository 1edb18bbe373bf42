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
