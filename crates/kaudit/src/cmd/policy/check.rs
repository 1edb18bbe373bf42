//! `kaudit policy check`, `lint` and `init`: a policy file on its own.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use kaudit_policy::Severity;

use super::{VersionArg, read_policy};

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

pub fn check(a: CheckArgs) -> Result<ExitCode> {
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

pub fn lint(a: LintArgs) -> Result<ExitCode> {
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

pub fn init(a: InitArgs) -> Result<ExitCode> {
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
