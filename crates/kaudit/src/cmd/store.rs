//! `kaudit import`, `kaudit verify`, `kaudit keys`, `kaudit retain`: the data directory.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use kaudit_ingest::import;
use kaudit_store::merkle::hex;
use kaudit_store::{Loader, Options, Store, verify};

/// Where the data directory is.
#[derive(Args, Clone)]
pub struct DataArg {
    /// The data directory.
    #[arg(long, env = "KAUDIT_DATA", default_value = "./kaudit-data")]
    pub data: PathBuf,
}

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    data: DataArg,
    /// The cluster these events come from (stored with each event; dedup is per cluster).
    #[arg(long, default_value = "default")]
    cluster: String,
    /// The input shape: auto (recognised per file), k8s (audit.log lines, EventLists,
    /// arrays), eks (CloudWatch exports and subscription payloads), gke (Cloud Logging
    /// entries, Pub/Sub envelopes), aks (diagnostic records).
    #[arg(long, default_value = "auto")]
    format: kaudit_model::cloud::Format,
    /// Audit log files: audit.log and its rotated backups (plain or gzip), EventLists, arrays,
    /// cloud exports.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// No progress bar, even on a terminal.
    #[arg(long, short)]
    quiet: bool,
    /// Events per segment. A file import is durable a segment at a time: smaller segments
    /// lose less to a crash (importing again adds what was lost) but compress and query a
    /// little worse.
    #[arg(long, default_value_t = Options::default().seal_rows, value_parser = clap::value_parser!(u64).range(1000..))]
    segment_events: u64,
}

pub fn import(a: ImportArgs) -> Result<ExitCode> {
    let t = Instant::now();
    let opts = Options {
        seal_rows: a.segment_events,
        ..Options::default()
    };
    let mut store = Store::open(&a.data.data, opts).map_err(|e| anyhow!(e))?;
    for m in store.recovery().messages() {
        eprintln!("kaudit: {m}");
    }
    let bar = (!a.quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {msg} ({eta} left)",
            )
            .unwrap(),
        );
        b
    });
    let mut sink = Loader::new(&mut store, &a.cluster);
    let files = import::import(&mut sink, &a.files, a.format, |p| {
        if let Some(b) = &bar {
            b.set_length(p.total);
            b.set_position(p.bytes);
            let secs = t.elapsed().as_secs_f64().max(1e-3);
            b.set_message(format!(
                "{} events, {:.0} events/s",
                p.events,
                p.events as f64 / secs
            ));
        }
    });
    drop(sink);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let files = match files {
        Ok(f) => f,
        Err(e) => {
            // What was stored before the failure stays stored and signed.
            let done = store.size();
            store.close().map_err(|e| anyhow!(e))?;
            bail!("{e} (the store holds {done} events; importing again skips what is there)");
        }
    };
    // A bulk import ends sealed: columnar, compressed, queryable by any Parquet tool.
    store.seal().map_err(|e| anyhow!(e))?;
    store.close().map_err(|e| anyhow!(e))?;
    let secs = t.elapsed().as_secs_f64();
    let (mut events, mut stored, mut dups, mut bytes) = (0, 0, 0, 0);
    let mut skipped = std::collections::BTreeMap::new();
    for f in &files {
        for r in &f.reported {
            eprintln!("{r}");
        }
        let n: u64 = f.skipped.values().sum();
        if n as usize > f.reported.len() {
            eprintln!(
                "{}: {} more skipped records not shown",
                f.path.display(),
                n as usize - f.reported.len()
            );
        }
        for (k, v) in &f.skipped {
            *skipped.entry(*k).or_insert(0u64) += v;
        }
        events += f.events;
        stored += f.stored;
        dups += f.duplicates;
        bytes += f.bytes;
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "imported {stored} events from {} files ({:.1} MB in {secs:.1}s, {:.0} MB/s, {:.0} events/s) into {} for cluster {:?}",
        files.len(),
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs.max(1e-6),
        events as f64 / secs.max(1e-6),
        a.data.data.display(),
        a.cluster
    )?;
    writeln!(
        out,
        "  duplicates skipped (already stored: same cluster, auditID, request time and stage): {dups}"
    )?;
    let truncated = skipped
        .get(&kaudit_model::decode::ErrorKind::Truncated)
        .copied()
        .unwrap_or(0);
    writeln!(out, "  truncated records: {truncated}")?;
    let malformed: u64 = skipped.values().sum::<u64>() - truncated;
    write!(out, "  other records skipped: {malformed}")?;
    if malformed > 0 {
        let parts: Vec<String> = skipped
            .iter()
            .filter(|(k, _)| **k != kaudit_model::decode::ErrorKind::Truncated)
            .map(|(k, v)| format!("{v} {}", k.as_str()))
            .collect();
        write!(out, " ({})", parts.join(", "))?;
    }
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    data: DataArg,
    /// A public key held apart from the data directory (PEM, or a note verifier key): proves
    /// the checkpoints were signed by it, not by a key an intruder put in `keys/`.
    #[arg(long)]
    key: Option<PathBuf>,
}

pub fn verify(a: VerifyArgs) -> Result<ExitCode> {
    let key = match &a.key {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?),
        None => None,
    };
    let t = Instant::now();
    let r = verify::verify(&a.data.data, key.as_deref()).map_err(|e| anyhow!(e))?;
    let mut out = std::io::stdout().lock();
    for w in &r.warnings {
        eprintln!("kaudit: warning: {w}");
    }
    if let Some(f) = &r.failure {
        writeln!(out, "FAILED: {f}")?;
        writeln!(
            out,
            "  checked before the failure: {} events, {} segments, {} checkpoints",
            r.events, r.segments, r.checkpoints
        )?;
        return Ok(ExitCode::from(1));
    }
    writeln!(
        out,
        "OK: {} events recomputed from the stored bytes ({} in {} sealed segments, {} in the WAL) in {:.1}s",
        r.events,
        r.events - r.wal_records,
        r.segments,
        r.wal_records,
        t.elapsed().as_secs_f64()
    )?;
    writeln!(
        out,
        "  tree size {}, root {}",
        r.size,
        r.root.map(|h| hex(&h)).unwrap_or_default()
    )?;
    writeln!(
        out,
        "  {} signed checkpoints match the data{}",
        r.checkpoints,
        if a.key.is_some() {
            " (signatures checked against the key given)"
        } else {
            " (signatures checked against keys/signing.pub; pass --key for an independent check)"
        }
    )?;
    if r.retention_records > 0 {
        writeln!(
            out,
            "  retention: {} events removed under {} signed records; {} older checkpoints predate the boundary",
            r.pruned, r.retention_records, r.expired_checkpoints
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Print the public key that signs this store's checkpoints (keep a copy elsewhere).
    Export {
        #[command(flatten)]
        data: DataArg,
        /// `pem` (SPKI) or `note` (a C2SP note verifier key).
        #[arg(long, default_value = "pem", value_parser = ["pem", "note"])]
        format: String,
    },
}

pub fn keys(c: KeysCommand) -> Result<ExitCode> {
    match c {
        KeysCommand::Export { data, format } => {
            let dir = data.data.join("keys");
            if !dir.join("signing.pub").exists() {
                bail!(
                    "{}: no keys here (is this a kaudit data directory?)",
                    dir.display()
                );
            }
            let origin = std::fs::read_to_string(dir.join("origin"))?
                .trim()
                .to_string();
            let pem = std::fs::read_to_string(dir.join("signing.pub"))?;
            let k = kaudit_store::note::Keys::verifier(origin, &pem).map_err(|e| anyhow!(e))?;
            if format == "pem" {
                print!("{}", k.public_pem());
            } else {
                println!("{}", k.verifier_key());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Args)]
pub struct RetainArgs {
    #[command(flatten)]
    data: DataArg,
    /// Remove sealed segments whose newest event is older than this (30d, 12h).
    #[arg(long, value_parser = kaudit_model::units::duration)]
    max_age: Option<Duration>,
    /// Remove the oldest sealed segments while all segments together exceed this many bytes
    /// (suffixes K, M, G, T).
    #[arg(long, value_parser = kaudit_model::units::size)]
    max_size: Option<u64>,
}

pub fn retain(a: RetainArgs) -> Result<ExitCode> {
    if a.max_age.is_none() && a.max_size.is_none() {
        bail!("say what to keep: --max-age, --max-size or both");
    }
    let mut store = Store::open(&a.data.data, Options::default()).map_err(|e| anyhow!(e))?;
    for m in store.recovery().messages() {
        eprintln!("kaudit: {m}");
    }
    let removed = store
        .retain(a.max_age, a.max_size, kaudit_model::now_micros())
        .map_err(|e| anyhow!(e))?;
    store.close().map_err(|e| anyhow!(e))?;
    if removed.is_empty() {
        println!("nothing to remove");
    }
    for s in removed {
        println!(
            "removed {} ({} events, {} bytes); recorded and signed in retention.jsonl",
            s.file, s.rows, s.bytes
        );
    }
    Ok(ExitCode::SUCCESS)
}
