//! `kaudit policy …`: check, eval, lint, simulate, diff, init.

mod check;
mod eval;
mod replay;

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use kaudit_policy::{Evaluator, K8sVersion, LoadOptions, Loaded, load};

pub use check::{CheckArgs, InitArgs, LintArgs};
pub use eval::EvalArgs;
pub use replay::{DiffArgs, SimulateArgs};

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
pub struct VersionArg {
    /// Behave like this kube-apiserver release (1.12 and later).
    #[arg(long = "k8s-version", value_name = "VERSION", default_value = "1.28", value_parser = parse_version)]
    pub k8s: K8sVersion,
}

fn parse_version(s: &str) -> Result<K8sVersion, String> {
    s.parse()
}

pub fn run(cmd: PolicyCommand) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Check(a) => check::check(a),
        PolicyCommand::Eval(a) => eval::eval(a),
        PolicyCommand::Lint(a) => check::lint(a),
        PolicyCommand::Init(a) => check::init(a),
        PolicyCommand::Simulate(a) => replay::simulate(a),
        PolicyCommand::Diff(a) => replay::diff(a),
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
