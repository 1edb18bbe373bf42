//! `kaudit policy eval`: the decision a policy takes for each event (or request-attribute
//! record).

use std::io::{self, BufRead, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use kaudit_model::Text;
use kaudit_policy::{Attributes, Decision, User};

use super::{VersionArg, require_valid};
use crate::input;
use crate::table::Table;

#[derive(Args)]
pub struct EvalArgs {
    /// The policy file.
    policy: String,
    /// Audit events: audit.log lines, EventLists, JSON arrays or single events, or cloud
    /// exports; plain or gzipped. `-` (or none given) is standard input.
    files: Vec<PathBuf>,
    #[command(flatten)]
    input: input::InputFormat,
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

pub fn eval(a: EvalArgs) -> Result<ExitCode> {
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
        let stdin = [PathBuf::from(kaudit_ingest::input::STDIN)];
        let files: &[PathBuf] = if a.files.is_empty() { &stdin } else { &a.files };
        for path in files {
            let name = kaudit_ingest::input::display_name(path);
            let disk = std::rc::Rc::new(std::cell::Cell::new(0));
            let r = io::BufReader::new(
                kaudit_ingest::input::open(path, disk).map_err(|e| anyhow::anyhow!(e))?,
            );
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
        let stats = input::for_each_event(&a.files, a.input.format, |name, rec| {
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
