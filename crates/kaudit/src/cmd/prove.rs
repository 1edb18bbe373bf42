//! `kaudit prove`: inclusion proofs for single events, and checking them.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use kaudit_query::exec::{Query, run};
use kaudit_query::filter;
use kaudit_store::proof::{self, Proof};

use crate::cmd::store::DataArg;

#[derive(Args)]
#[command(after_help = "Examples:
  kaudit prove 6a1c3a0e-8d8e-4b8f-9f0e-1e2d3c4b5a69 --out proof.jsonl
  kaudit prove --check proof.jsonl --key kaudit-signing.pub")]
pub struct ProveArgs {
    #[command(flatten)]
    data: DataArg,
    /// The event's audit ID; every stored stage of it is proven unless --stage is given.
    #[arg(required_unless_present = "check")]
    audit_id: Option<String>,
    /// Only this stage (RequestReceived, ResponseStarted, ResponseComplete, Panic).
    #[arg(long)]
    stage: Option<String>,
    /// Only events of this cluster.
    #[arg(long)]
    cluster: Option<String>,
    /// Write the proofs here (JSON Lines, one proof per event) instead of to stdout.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Check the proofs in FILE (JSON Lines, or one JSON proof) instead of making them.
    #[arg(long, value_name = "FILE", conflicts_with = "audit_id")]
    check: Option<PathBuf>,
    /// With --check: the public key (PEM, or a note verifier key) held apart from the data.
    /// Without it, the data directory's key is used.
    #[arg(long)]
    key: Option<PathBuf>,
}

pub fn prove(a: ProveArgs) -> Result<ExitCode> {
    if let Some(file) = &a.check {
        return check(&a, file);
    }
    let id = a.audit_id.as_deref().expect("clap requires it");
    let mut text = format!("id=\"{}\"", id.replace('"', ""));
    if let Some(s) = &a.stage {
        text.push_str(&format!(" stage={s}"));
    }
    let q = Query {
        filters: vec![filter::parse(&text, 0).map_err(|e| anyhow!("{e}"))?],
        stages: true,
        cluster: a.cluster.clone(),
        ..Default::default()
    };
    let (rows, _) = run(&a.data.data, &q).map_err(|e| anyhow!(e))?;
    if rows.is_empty() {
        bail!(
            "no stored event has audit ID {id:?}{}",
            match &a.stage {
                Some(s) => format!(" at stage {s}"),
                None => String::new(),
            }
        );
    }
    let tty = std::io::stderr().is_terminal();
    let mut lines = Vec::new();
    for r in rows.iter() {
        let p = proof::prove(&a.data.data, r.leaf, |n| {
            if tty {
                eprint!("\rleaf {}: {n} records hashed", r.leaf);
            }
        })
        .map_err(|e| anyhow!(e))?;
        if tty {
            eprintln!();
        }
        eprintln!(
            "leaf {} ({} {} of {}): in the checkpoint of tree size {}, path of {} hashes",
            r.leaf,
            r.stage,
            r.audit_id,
            if r.cluster.is_empty() { "-" } else { r.cluster },
            p.tree_size,
            p.path.len()
        );
        lines.push(serde_json::to_string(&p)?);
    }
    let body = lines.join("\n") + "\n";
    match &a.out {
        Some(path) => std::fs::write(path, body).with_context(|| format!("{}", path.display()))?,
        None => std::io::stdout().lock().write_all(body.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

fn check(a: &ProveArgs, file: &PathBuf) -> Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("{}", file.display()))?;
    let key = match &a.key {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?,
        None => {
            let p = a.data.data.join("keys/signing.pub");
            std::fs::read_to_string(&p)
                .with_context(|| format!("{}: give the public key with --key", p.display()))?
        }
    };
    let proofs: Vec<(usize, Proof)> =
        if text.trim_start().starts_with('{') && serde_json::from_str::<Proof>(&text).is_ok() {
            vec![(1, serde_json::from_str(&text)?)]
        } else {
            let mut v = Vec::new();
            for (i, l) in text.lines().enumerate() {
                if l.trim().is_empty() {
                    continue;
                }
                let p: Proof = serde_json::from_str(l)
                    .map_err(|e| anyhow!("{}:{}: not a proof: {e}", file.display(), i + 1))?;
                v.push((i + 1, p));
            }
            v
        };
    if proofs.is_empty() {
        bail!("{}: no proofs in it", file.display());
    }
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for (line, p) in &proofs {
        match proof::check(p, &key) {
            Ok(c) => {
                let e: serde_json::Value = serde_json::from_str(p.event.get()).unwrap_or_default();
                let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
                writeln!(
                    out,
                    "OK {}:{line}: leaf {} ({} {} {} by {}, received {}) is in {}'s tree of size {} signed at {}",
                    file.display(),
                    c.leaf_index,
                    s(&e["stage"]),
                    s(&e["verb"]),
                    s(&e["requestURI"]),
                    s(&e["user"]["username"]),
                    p.received,
                    c.checkpoint.origin,
                    c.checkpoint.size,
                    kaudit_model::MicroTime(c.checkpoint.time)
                )?;
            }
            Err(e) => {
                failed += 1;
                writeln!(out, "FAILED {}:{line}: {e}", file.display())?;
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
