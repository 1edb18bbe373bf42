//! Looking alerts up: `kaudit alerts` and `GET /api/v1/alerts`.

use std::collections::VecDeque;
use std::path::Path;

use kaudit_detect::Severity;

use crate::log::{self, StoredAlert};
use crate::sink::glob;

/// Which alerts; every field narrows.
#[derive(Clone, Debug, Default)]
pub struct AlertQuery {
    /// Rule id, `*` matching any run of characters (`k8s.exec.*`).
    pub rule: Option<String>,
    pub min_severity: Option<Severity>,
    /// Event time at or after (microseconds since the epoch).
    pub since: Option<i64>,
    /// Event time before.
    pub until: Option<i64>,
    pub user: Option<String>,
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    /// Alerts stored at or after this seq.
    pub after_seq: Option<u64>,
    /// The newest this many (default: all).
    pub limit: Option<usize>,
}

impl AlertQuery {
    pub fn matches(&self, a: &StoredAlert) -> bool {
        let al = &a.alert;
        if self.after_seq.is_some_and(|s| a.seq < s)
            || self.min_severity.is_some_and(|m| al.severity < m)
            || self.rule.as_deref().is_some_and(|r| !glob(r, &al.rule))
            || self.user.as_deref().is_some_and(|u| u != al.user)
            || self.cluster.as_deref().is_some_and(|c| c != al.cluster)
            || self.namespace.as_deref().is_some_and(|n| n != al.namespace)
        {
            return false;
        }
        if self.since.is_some() || self.until.is_some() {
            let t = a.time_micros();
            if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t >= u) {
                return false;
            }
        }
        true
    }
}

/// What [`run`] found.
#[derive(Debug, Default)]
pub struct Found {
    /// The matching alerts, oldest first (the newest `limit` of them).
    pub alerts: Vec<StoredAlert>,
    /// How many matched.
    pub total: u64,
    /// The seq after the last alert read (where following the log goes on).
    pub end: u64,
}

/// The alerts matching `q`.
pub fn run(alerts: &Path, q: &AlertQuery) -> Result<Found, String> {
    let mut out = VecDeque::new();
    let mut total = 0u64;
    let mut end = 0u64;
    if !log::log_dir(alerts).exists() {
        return Ok(Found::default());
    }
    log::scan(alerts, &mut |a| {
        end = a.seq + 1;
        if q.matches(&a) {
            total += 1;
            out.push_back(a);
            if q.limit.is_some_and(|l| out.len() > l) {
                out.pop_front();
            }
        }
        true
    })?;
    Ok(Found {
        alerts: out.into(),
        total,
        end,
    })
}
