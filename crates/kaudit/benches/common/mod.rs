//! What the benchmarks share: timing, and the `kaudit gen` corpus they run over.
#![allow(dead_code)] // each bench uses part of it

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kaudit_gen::{Config, generate};
use kaudit_model::MicroTime;

/// The fastest of `rounds` runs of `f`, and what the last run returned.
pub fn best_of<F: FnMut() -> u64>(rounds: usize, mut f: F) -> (Duration, u64) {
    let mut best = Duration::MAX;
    let mut out = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        out = black_box(f());
        best = best.min(t.elapsed());
    }
    (best, out)
}

/// `KAUDIT_BENCH_EVENTS` (default 500000) events of `kaudit gen` (seed 1, 12 nodes, 24 h,
/// levels and stages by the recipe profile) in a temporary audit.log, removed on drop.
pub struct Corpus {
    pub dir: PathBuf,
    pub path: PathBuf,
    pub data: Vec<u8>,
    pub events: u64,
    pub gen_secs: f64,
}

impl Corpus {
    pub fn generate(name: &str) -> Corpus {
        let events: u64 = std::env::var("KAUDIT_BENCH_EVENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500_000);
        let dir = std::env::temp_dir().join(format!("kaudit-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.log");
        let start = MicroTime::parse("2026-01-01T00:00:00Z").unwrap();
        let cfg = Config::recipe(events, start, 24 * 3600 * 1_000_000, 1, 12);
        let t = Instant::now();
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        generate(&cfg, &mut f).unwrap();
        f.flush().unwrap();
        drop(f);
        let gen_secs = t.elapsed().as_secs_f64();
        let data = std::fs::read(&path).unwrap();
        Corpus {
            dir,
            path,
            data,
            events,
            gen_secs,
        }
    }

    pub fn mb(&self) -> f64 {
        self.data.len() as f64 / 1e6
    }
}

impl Drop for Corpus {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}
