//! Reading the inputs users name on the command line: files (plain or gzip), or stdin.

use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Read};
use std::ops::ControlFlow;
use std::path::Path;

use anyhow::{Context, Result};
use kaudit_model::decode::{self, Record, Stats};

/// How many skipped records to name on stderr per input before only counting them.
const MAX_REPORTED: usize = 20;

/// Opens `path` (`-` is stdin), transparently gunzipping `.gz` or gzip-magic input.
pub fn open(path: &str) -> Result<Box<dyn Read>> {
    let raw: Box<dyn Read> = if path == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(Path::new(path)).with_context(|| format!("cannot open {path}"))?)
    };
    let mut r = BufReader::with_capacity(1 << 20, raw);
    let magic = io::BufRead::fill_buf(&mut r).with_context(|| format!("cannot read {path}"))?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(r)))
    } else {
        Ok(Box::new(r))
    }
}

/// Decodes the events of every input (stdin when `paths` is empty), calling `f` with each.
/// Skipped records are reported on stderr as `file:line: reason`, and a summary follows when
/// anything was skipped. Returns the combined statistics.
pub fn for_each_event<F>(paths: &[String], mut f: F) -> Result<Stats>
where
    F: for<'b> FnMut(&str, &Record<'b>) -> Result<()>,
{
    let stdin = ["-".to_string()];
    let paths: &[String] = if paths.is_empty() { &stdin } else { paths };
    if paths.iter().any(|p| p == "-") && io::stdin().is_terminal() {
        eprintln!("kaudit: reading audit events from the terminal (end with Ctrl-D)");
    }
    let mut total = Stats::default();
    for path in paths {
        let name = if path == "-" {
            "<stdin>"
        } else {
            path.as_str()
        };
        let reader = open(path)?;
        let mut reported = 0usize;
        let mut err: Option<anyhow::Error> = None;
        let stats = decode::decode_reader(reader, |item| match item {
            Ok(rec) => match f(name, &rec) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    err = Some(e);
                    ControlFlow::Break(())
                }
            },
            Err(e) => {
                if reported < MAX_REPORTED {
                    eprintln!("{}", e.render(name));
                } else if reported == MAX_REPORTED {
                    eprintln!("{name}: more records skipped; only counting them from here");
                }
                reported += 1;
                ControlFlow::Continue(())
            }
        })
        .with_context(|| format!("cannot read {name}"))?;
        if let Some(e) = err {
            return Err(e);
        }
        if stats.skipped() > 0 {
            eprintln!("{name}: {stats}");
        }
        total.merge(&stats);
    }
    Ok(total)
}
