//! `kaudit`: the command line. Glue only: parse flags, call the library crates, print, and
//! choose the exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(c) => cmd::policy::run(c),
        Command::Gen(a) => cmd::generate::run(a),
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
