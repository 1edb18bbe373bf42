//! Durations and sizes as people write them in configuration (`90s`, `16M`).

use std::time::Duration;

/// `90s`, `200ms`, `30m`, `24h`, `7d`.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit (200ms, 90s, 30m, 24h, 7d)"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86_400),
        _ => return Err(format!("{s:?}: the unit must be ms, s, m, h or d")),
    })
}

/// `512`, `64K`, `16M`, `50G`, `1T` (powers of 1024; a trailing `i`/`iB`/`B` is allowed).
pub fn size(s: &str) -> Result<u64, String> {
    let t = s.trim().trim_end_matches('B').trim_end_matches('i');
    let (n, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    n.trim()
        .parse::<u64>()
        .map(|v| v * mult)
        .map_err(|_| format!("{s:?}: expected a size like 512, 64K, 16M or 50G"))
}
