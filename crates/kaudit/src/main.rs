//! `kaudit`: the command line. Glue only: parse flags, call the library crates, print, and
//! choose the exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cmd;
mod input;
mod table;

/// The Kubernetes audit trail, in one binary.
#[derive(Parser)]
#[command(name = "kaudit", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check, evaluate, lint and replay audit policies (audit.k8s.io/v1 Policy).
    #[command(subcommand)]
    Policy(cmd::policy::PolicyCommand),
    /// Generate realistic audit traffic from a fake cluster (seeded, deterministic).
    Gen(cmd::generate::GenArgs),
    /// Import audit logs into the data directory (deduplicated, so an interrupted import is
    /// simply run again; rotated sets in order).
    Import(cmd::store::ImportArgs),
    /// Recompute the data directory's Merkle tree from the stored bytes and check every
    /// signed checkpoint. Exit 1 names the first altered, missing, reordered or cut record.
    Verify(cmd::store::VerifyArgs),
    /// Prove that an event is stored unaltered: its inclusion in a signed checkpoint, as a
    /// self-contained proof anyone with the public key can check (--check).
    Prove(cmd::prove::ProveArgs),
    /// The key that signs this store's checkpoints.
    #[command(subcommand)]
    Keys(cmd::store::KeysCommand),
    /// Find events in the data directory with a filter (user=jane verb=delete since=24h ...).
    Query(cmd::query::QueryArgs),
    /// Ready investigations: secrets, exec, failed-auth, denied, deletions, top-users, ...
    Ask(cmd::query::AskArgs),
    /// Remove old sealed segments (by age or total size), recording what went, signed.
    Retain(cmd::store::RetainArgs),
    /// Receive kube-apiserver's audit webhook and follow audit.log files, durably; answer
    /// queries over HTTPS; /healthz, /readyz, /metrics.
    Serve(cmd::serve::ServeArgs),
    /// Print what to do on a platform to send its audit events here (policy, flags, the
    /// webhook kubeconfig with this server's CA and credentials; for EKS, GKE and AKS, the
    /// export and import commands).
    Setup(cmd::serve::SetupArgs),
    /// Run detection rules (the built-in pack, your rules, Sigma rules) over audit logs and
    /// print the alerts.
    Detect(cmd::detect::DetectArgs),
    /// The detection rules: list them, or run each against its own test events.
    #[command(subcommand)]
    Rules(cmd::detect::RulesCommand),
    /// The alerts `kaudit serve` raised and stored (filter, follow), and each sink's backlog.
    Alerts(cmd::alerts::AlertsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(c) => cmd::policy::run(c),
        Command::Gen(a) => cmd::generate::run(a),
        Command::Import(a) => cmd::store::import(a),
        Command::Verify(a) => cmd::store::verify(a),
        Command::Prove(a) => cmd::prove::prove(a),
        Command::Keys(c) => cmd::store::keys(c),
        Command::Retain(a) => cmd::store::retain(a),
        Command::Query(a) => cmd::query::query(a),
        Command::Ask(a) => cmd::query::ask(a),
        Command::Serve(a) => cmd::serve::serve(a),
        Command::Setup(a) => cmd::serve::setup(a),
        Command::Detect(a) => cmd::detect::detect(a),
        Command::Rules(c) => cmd::detect::rules(c),
        Command::Alerts(a) => cmd::alerts::alerts(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`kaudit ... | head`) is not an error.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let _ = std::io::stdout().flush();
            eprintln!("kaudit: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every command's arguments are well formed (clap checks a command only when it runs).
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
