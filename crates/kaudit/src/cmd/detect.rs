//! `kaudit detect` (rules over files) and `kaudit rules` (list, test).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use kaudit_detect::{Engine, RuleSet, Severity, testing};

use crate::table::Table;

/// Which rules to run.
#[derive(Args, Clone)]
pub struct RulesArg {
    /// Rule files or directories (kaudit rules, Sigma rules for Kubernetes audit), loaded after
    /// the built-in pack: they add rules, append to its lists, override its rules by id.
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Do not load the built-in pack.
    #[arg(long)]
    pub no_builtin: bool,
    /// Also run these rules that are off by default (ids; `all` for every rule).
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub enable: Vec<String>,
}

impl RulesArg {
    pub fn load(&self) -> Result<RuleSet> {
        let mut set =
            kaudit_detect::load_paths(&self.rules, !self.no_builtin).map_err(|e| anyhow!(e))?;
        set.enable(&self.enable)
            .map_err(|e| anyhow!("--enable {e}"))?;
        for s in &set.skipped {
            eprintln!("kaudit: skipped {s}");
        }
        Ok(set)
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum AlertFormat {
    Table,
    Json,
    Ndjson,
}

#[derive(Args)]
pub struct DetectArgs {
    #[command(flatten)]
    rules: RulesArg,
    /// The input shape (as for import): auto, k8s, eks, gke, aks.
    #[arg(long, default_value = "auto")]
    format: kaudit_model::cloud::Format,
    /// The cluster name put on alerts.
    #[arg(long, default_value = "")]
    cluster: String,
    /// How to print alerts.
    #[arg(long, value_enum, default_value_t = AlertFormat::Table)]
    output: AlertFormat,
    /// Only report alerts of at least this severity (info, low, medium, high, critical).
    #[arg(long, value_parser = |s: &str| Severity::parse(s))]
    min_severity: Option<Severity>,
    /// Audit logs, rotated sets, EventLists, cloud exports: anything `kaudit import` reads.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Prints alerts as they come (ndjson), or gathers them (a table, a JSON array).
struct Emitter<W: Write> {
    out: W,
    format: AlertFormat,
    min: Option<Severity>,
    cluster: String,
    table: Table,
    json: Vec<kaudit_detect::Alert>,
    printed: u64,
    error: Option<std::io::Error>,
}

impl<W: Write> Emitter<W> {
    fn emit(&mut self, mut al: kaudit_detect::Alert) {
        if self.min.is_some_and(|m| al.severity < m) || self.error.is_some() {
            return;
        }
        al.cluster.clone_from(&self.cluster);
        self.printed += 1;
        match self.format {
            AlertFormat::Table => self.table.row(vec![
                al.time,
                al.severity.to_string(),
                al.rule,
                al.user,
                al.verb,
                al.resource,
                if al.namespace.is_empty() {
                    al.name
                } else {
                    format!("{}/{}", al.namespace, al.name)
                },
                al.message,
            ]),
            AlertFormat::Json => self.json.push(al),
            AlertFormat::Ndjson => {
                let r = serde_json::to_writer(&mut self.out, &al)
                    .map_err(std::io::Error::from)
                    .and_then(|()| self.out.write_all(b"\n"));
                if let Err(e) = r {
                    self.error = Some(e);
                }
            }
        }
    }

    fn finish(mut self) -> Result<u64> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        match self.format {
            AlertFormat::Table if self.printed > 0 => self.table.write(&mut self.out)?,
            AlertFormat::Json => {
                serde_json::to_writer_pretty(&mut self.out, &self.json)?;
                self.out.write_all(b"\n")?;
            }
            _ => {}
        }
        self.out.flush()?;
        Ok(self.printed)
    }
}

pub fn detect(a: DetectArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let set = Arc::new(a.rules.load()?);
    let enabled = set.rules.iter().filter(|r| r.enabled).count();
    let mut engine = Engine::new(set.clone());
    let mut alerts = Vec::new();
    let mut bodies = 0u64;
    let mut em = Emitter {
        out: std::io::stdout().lock(),
        format: a.output,
        min: a.min_severity,
        cluster: a.cluster.clone(),
        table: Table::new(&[
            "TIME",
            "SEVERITY",
            "RULE",
            "USER",
            "VERB",
            "RESOURCE",
            "NAMESPACE/NAME",
            "MESSAGE",
        ]),
        json: Vec::new(),
        printed: 0,
        error: None,
    };
    let stats = crate::input::for_each_event(&a.files, a.format, |_, rec| {
        if rec.event.request_object.is_some() {
            bodies += 1;
        }
        engine.process(&rec.event, rec.raw, &mut alerts);
        for al in alerts.drain(..) {
            em.emit(al);
        }
        match em.error.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    })?;
    let printed = em.finish()?;
    let st = engine.stats;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "kaudit: {} events ({:.1} MB) through {enabled} rules in {secs:.2} s ({:.0} events/s): {printed} alerts{}",
        st.events,
        stats.bytes as f64 / 1e6,
        st.events as f64 / secs.max(1e-9),
        if stats.skipped.is_empty() {
            String::new()
        } else {
            format!(
                "; skipped {}",
                stats
                    .skipped
                    .iter()
                    .map(|(k, n)| format!("{n} {}", k.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let need_bodies = set
        .rules
        .iter()
        .filter(|r| r.enabled && r.level > kaudit_model::Level::Metadata)
        .count();
    if st.events > 0 && bodies == 0 && need_bodies > 0 {
        eprintln!(
            "kaudit: warning: no event carried a request body (audit level Metadata), so {need_bodies} rules that read bodies could not match; log pods, RBAC, services and configmaps at level Request or above"
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum RulesCommand {
    /// List the rules: id, severity, level needed, on/off, ATT&CK, title.
    List {
        #[command(flatten)]
        rules: RulesArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run every rule against its own test events; exit 1 when any test fails.
    Test {
        #[command(flatten)]
        rules: RulesArg,
        /// Print every test, not only failures.
        #[arg(long, short)]
        verbose: bool,
    },
}

pub fn rules(c: RulesCommand) -> Result<ExitCode> {
    match c {
        RulesCommand::List { rules, json } => {
            let set = rules.load()?;
            let mut out = std::io::stdout().lock();
            if json {
                let v: Vec<_> = set
                    .rules
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "id": r.id, "title": r.title, "severity": r.severity, "enabled": r.enabled,
                            "level": r.level.as_str(), "mitre": r.mitre, "source": r.source,
                            "sigma": r.sigma, "description": r.description, "tests": r.tests.len(),
                        })
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut out, &v)?;
                writeln!(out)?;
            } else {
                let mut t = Table::new(&["ID", "SEVERITY", "LEVEL", "ON", "ATT&CK", "TITLE"]);
                for r in &set.rules {
                    t.row(vec![
                        r.id.clone(),
                        r.severity.to_string(),
                        r.level.to_string(),
                        if r.enabled { "yes" } else { "no" }.into(),
                        r.mitre.join(","),
                        r.title.clone(),
                    ]);
                }
                t.write(&mut out)?;
                let on = set.rules.iter().filter(|r| r.enabled).count();
                eprintln!(
                    "{} rules ({on} on) from {} files",
                    set.rules.len(),
                    set.sources.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RulesCommand::Test { rules, verbose } => {
            let set = rules.load()?;
            let outcomes = testing::run(&set);
            let mut failed = 0;
            for o in &outcomes {
                if !o.passed() {
                    failed += 1;
                }
                if !o.passed() || verbose {
                    println!(
                        "{} {} / {}: expected {} alert(s), got {}{}",
                        if o.passed() { "ok  " } else { "FAIL" },
                        o.rule,
                        o.test,
                        o.expected,
                        o.got,
                        o.error
                            .as_deref()
                            .map(|e| format!(" — {e}"))
                            .unwrap_or_default()
                    );
                }
            }
            let untested: Vec<&str> = set
                .rules
                .iter()
                .filter(|r| {
                    !r.tests.iter().any(|t| t.alerts > 0) || !r.tests.iter().any(|t| t.alerts == 0)
                })
                .map(|r| r.id.as_str())
                .collect();
            println!(
                "{} tests of {} rules: {} passed, {failed} failed",
                outcomes.len(),
                set.rules.len(),
                outcomes.len() - failed
            );
            if !untested.is_empty() {
                println!(
                    "{} rules lack a test that alerts or one that must not: {}",
                    untested.len(),
                    untested.join(", ")
                );
            }
            Ok(if failed > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
