//! `kaudit gen`: write realistic audit traffic.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use kaudit_gen::{Config, Format, generate};
use kaudit_model::MicroTime;
use kaudit_policy::{Evaluator, LoadOptions, load};

use crate::cmd::policy::{VersionArg, require_valid};

#[derive(Args)]
pub struct GenArgs {
    /// How many events to write.
    #[arg(long, short = 'n', default_value_t = 100_000)]
    events: u64,
    /// How much time the traffic spans: 90s, 30m, 24h, 7d.
    #[arg(long, default_value = "1h", value_parser = kaudit_model::units::duration_micros)]
    span: i64,
    /// When it starts (RFC 3339).
    #[arg(long, default_value = "2026-01-01T00:00:00Z", value_parser = parse_time)]
    start: MicroTime,
    /// The random seed: the same seed and options give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker nodes in the fake cluster.
    #[arg(long, default_value_t = 12)]
    nodes: u32,
    /// Output shape.
    #[arg(long, value_enum, default_value_t = GenFormat::Log)]
    format: GenFormat,
    /// Events per EventList (with --format eventlist); kube-apiserver sends at most 400.
    #[arg(long, default_value_t = 400)]
    batch: usize,
    /// The audit policy deciding levels and stages (default: the built-in "recipe" profile).
    #[arg(long, conflicts_with = "profile")]
    policy: Option<String>,
    /// A built-in policy profile (see `kaudit policy init --list`).
    #[arg(long)]
    profile: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o')]
    out: Option<String>,
    #[command(flatten)]
    k8s: VersionArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum GenFormat {
    /// audit.log: one event per line.
    Log,
    /// Webhook bodies: one EventList per line.
    Eventlist,
}

fn parse_time(s: &str) -> Result<MicroTime, String> {
    MicroTime::parse(s)
        .ok_or_else(|| format!("invalid time {s:?}: expected RFC 3339, like 2026-01-01T00:00:00Z"))
}

pub fn run(a: GenArgs) -> Result<ExitCode> {
    let version = a.k8s.k8s;
    let policy: Evaluator = match (&a.policy, &a.profile) {
        (Some(path), _) => require_valid(path, version)?.1,
        (None, p) => {
            let name = p.as_deref().unwrap_or("recipe");
            let Some(prof) = kaudit_policy::profiles::profile(name) else {
                bail!("no profile {name:?} (see `kaudit policy init --list`)")
            };
            let loaded = load(prof.text, &LoadOptions { version });
            Evaluator::new(&loaded.policy, version)
                .map_err(|e| anyhow::anyhow!("profile {name}: {e}"))?
        }
    };
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let cfg = Config {
        events: a.events,
        start: a.start,
        span_micros: a.span,
        seed: a.seed,
        nodes: a.nodes,
        format: match a.format {
            GenFormat::Log => Format::Lines,
            GenFormat::Eventlist => Format::EventList(a.batch),
        },
        policy,
    };
    let t = Instant::now();
    let summary = match &a.out {
        Some(path) => {
            let f = File::create(path).with_context(|| format!("cannot create {path}"))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            let s = generate(&cfg, &mut w).with_context(|| format!("cannot write {path}"))?;
            w.flush()?;
            s
        }
        None => {
            let mut w = BufWriter::with_capacity(1 << 20, io::stdout().lock());
            let s = generate(&cfg, &mut w)?;
            w.flush()?;
            s
        }
    };
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "kaudit gen: {} events from {} requests, {:.1} MB in {:.2}s ({:.0} events/s)",
        summary.events,
        summary.requests,
        summary.bytes as f64 / 1e6,
        secs,
        summary.events as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
