//! The order of a rotated audit.log set.
//!
//! kube-apiserver (lumberjack) renames the full log to `<name>-<UTC time>.<ext>`, with the
//! time as `2006-01-02T15-04-05.000`, optionally gzipped later (`.gz`), and starts a new
//! `<name>.<ext>`. So the backups, oldest first, then the live file hold the events in order.

use std::path::{Path, PathBuf};

/// A file's place in its rotation set: (set name, backup time or `None` for the live file).
fn key(p: &Path) -> Option<(String, Option<String>)> {
    let name = p.file_name()?.to_str()?;
    let name = name.strip_suffix(".gz").unwrap_or(name);
    let dir = p
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    // A backup: <base>-YYYY-MM-DDTHH-MM-SS.mmm<ext>; the time part is 23 characters. The
    // extension is whatever follows the time (none when the log had none).
    let b = name.as_bytes();
    for start in (0..name.len().saturating_sub(23)).rev() {
        if b[start] == b'-'
            && start > 0
            && name
                .get(start + 1..start + 24)
                .is_some_and(is_lumberjack_time)
            && name.is_char_boundary(start + 24)
        {
            let ext = &name[start + 24..];
            if ext.is_empty() || (ext.starts_with('.') && !ext[1..].contains('.')) {
                let base = &name[..start];
                return Some((
                    format!("{dir}/{base}{ext}"),
                    Some(name[start + 1..start + 24].to_string()),
                ));
            }
        }
    }
    Some((format!("{dir}/{name}"), None))
}

fn is_lumberjack_time(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 23
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 | 13 | 16 => *c == b'-',
            10 => *c == b'T',
            19 => *c == b'.',
            _ => c.is_ascii_digit(),
        })
}

/// Orders `paths` so that each rotation set reads oldest backup first and its live file last.
/// Sets keep the position of their first member; other files keep their order.
pub fn order(paths: &[PathBuf]) -> Vec<PathBuf> {
    let keys: Vec<Option<(String, Option<String>)>> = paths.iter().map(|p| key(p)).collect();
    let mut out: Vec<PathBuf> = Vec::with_capacity(paths.len());
    let mut done = vec![false; paths.len()];
    for i in 0..paths.len() {
        if done[i] {
            continue;
        }
        let Some((set, _)) = &keys[i] else {
            out.push(paths[i].clone());
            continue;
        };
        let mut members: Vec<usize> = (i..paths.len())
            .filter(|&j| !done[j] && keys[j].as_ref().is_some_and(|(s, _)| s == set))
            .collect();
        // Backups by time (the names sort chronologically), then the live file.
        members.sort_by(|&a, &b| {
            let ta = &keys[a].as_ref().unwrap().1;
            let tb = &keys[b].as_ref().unwrap().1;
            match (ta, tb) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.cmp(&b),
            }
        });
        for j in members {
            done[j] = true;
            out.push(paths[j].clone());
        }
    }
    out
}

/// The backups of the live file `live` (`audit-<time>.log`, plain or gzipped), oldest first.
/// When a backup exists both plain and gzipped (lumberjack is compressing it), the plain one
/// is listed: the `.gz` may still be partial.
pub fn backups(live: &Path) -> std::io::Result<Vec<PathBuf>> {
    let Some((set, None)) = key(live) else {
        return Ok(Vec::new());
    };
    let dir = match live.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(&dir)? {
        let p = e?.path();
        let p = if live.parent().is_some_and(|d| d.as_os_str().is_empty()) {
            PathBuf::from(p.file_name().unwrap_or_default())
        } else {
            p
        };
        if let Some((s, Some(t))) = key(&p)
            && s == set
        {
            found.push((t, p));
        }
    }
    found.sort();
    let mut out: Vec<PathBuf> = Vec::new();
    for (i, (t, p)) in found.iter().enumerate() {
        let gz = p.extension().is_some_and(|x| x == "gz");
        let twin = found
            .iter()
            .enumerate()
            .any(|(j, (u, q))| j != i && u == t && q.extension().is_some_and(|x| x == "gz") != gz);
        if gz && twin {
            continue;
        }
        out.push(p.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_sets_read_oldest_first_live_last() {
        let p = |s: &str| PathBuf::from(s);
        let given = [
            p("/var/log/kubernetes/audit.log"),
            p("/var/log/kubernetes/audit-2026-03-02T10-00-00.000.log.gz"),
            p("/other/events.json"),
            p("/var/log/kubernetes/audit-2026-03-01T09-59-59.999.log"),
            p("/var/log/kubernetes/audit-2026-03-02T09-00-00.500.log.gz"),
            p("/var/log/kubernetes/kube-apiserver-audit.log"),
        ];
        let want = [
            p("/var/log/kubernetes/audit-2026-03-01T09-59-59.999.log"),
            p("/var/log/kubernetes/audit-2026-03-02T09-00-00.500.log.gz"),
            p("/var/log/kubernetes/audit-2026-03-02T10-00-00.000.log.gz"),
            p("/var/log/kubernetes/audit.log"),
            p("/other/events.json"),
            p("/var/log/kubernetes/kube-apiserver-audit.log"),
        ];
        assert_eq!(order(&given), want);
        // Without an extension (lumberjack keeps none then).
        let given = [p("d/audit"), p("d/audit-2026-03-01T00-00-00.000")];
        assert_eq!(
            order(&given),
            [p("d/audit-2026-03-01T00-00-00.000"), p("d/audit")]
        );
    }
}
