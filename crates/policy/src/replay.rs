//! Replaying recorded traffic through a policy: what it would keep, drop and cost.
//!
//! For each recorded event the policy's [`Decision`] says whether the event would exist (its
//! level is not None and its stage is not omitted) and how large it would be: the recorded
//! bytes, less `requestObject` below level Request, less `responseObject` below
//! RequestResponse, less `metadata.managedFields` when omitted, with the level name changed.
//! A log recorded at a lower level than the policy asks cannot show the bodies the policy would
//! add: such events are counted as *understated*.

use std::collections::BTreeMap;

use kaudit_model::{Event, Level, Stage};
use serde::Serialize;

use crate::attrs::Attributes;
use crate::eval::Decision;

/// A number of events and their bytes (each event's JSON line with its newline).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Events.
    pub events: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Counts {
    fn add(&mut self, bytes: u64) {
        self.events += 1;
        self.bytes += bytes;
    }
    fn merge(&mut self, o: Counts) {
        self.events += o.events;
        self.bytes += o.bytes;
    }
}

/// What happens to one recorded event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes the policy would write for it (0 when dropped).
    pub bytes: u64,
    /// Whether it would be written at all.
    pub kept: bool,
    /// Dropped because its stage is omitted (rather than because of level None).
    pub stage_omitted: bool,
    /// The policy wants bodies the recorded event does not have.
    pub understated: bool,
}

const REQ_KEY: u64 = ",\"requestObject\":".len() as u64;
const RESP_KEY: u64 = ",\"responseObject\":".len() as u64;

/// What the decision `d` does to the recorded event `ev`, whose line is `raw_len` bytes long.
pub fn outcome(ev: &Event<'_>, raw_len: usize, d: &Decision) -> Outcome {
    let stage = ev.stage.unwrap_or(Stage::ResponseComplete);
    if d.level == Level::None {
        return Outcome {
            bytes: 0,
            kept: false,
            stage_omitted: false,
            understated: false,
        };
    }
    if d.omit_stages.contains(stage) {
        return Outcome {
            bytes: 0,
            kept: false,
            stage_omitted: true,
            understated: false,
        };
    }
    let mut bytes = raw_len as i64 + 1;
    if let Some(l) = ev.level {
        bytes += d.level.as_str().len() as i64 - l.as_str().len() as i64;
    }
    let body = |raw: &serde_json::value::RawValue, key: u64| -> i64 {
        let mut n = raw.get().len() as i64;
        if d.omit_managed_fields && raw.get().contains("\"managedFields\"") {
            n = without_managed_fields(raw.get()).unwrap_or(n);
        }
        n + key as i64
    };
    let mut understated = false;
    match ev.request_object {
        Some(r) if d.level < Level::Request => bytes -= body(r, REQ_KEY),
        Some(r) if d.omit_managed_fields => {
            bytes -= r.get().len() as i64 + REQ_KEY as i64 - body(r, REQ_KEY)
        }
        None if d.level >= Level::Request
            && ev.level.is_some_and(|l| l < Level::Request)
            && has_request_body(ev) =>
        {
            understated = true
        }
        _ => {}
    }
    match ev.response_object {
        Some(r) if d.level < Level::RequestResponse => bytes -= body(r, RESP_KEY),
        Some(r) if d.omit_managed_fields => {
            bytes -= r.get().len() as i64 + RESP_KEY as i64 - body(r, RESP_KEY)
        }
        None if d.level == Level::RequestResponse
            && ev.level.is_some_and(|l| l < Level::RequestResponse)
            && stage != Stage::ResponseStarted =>
        {
            understated = true
        }
        _ => {}
    }
    Outcome {
        bytes: bytes.max(0) as u64,
        kept: true,
        stage_omitted: false,
        understated,
    }
}

fn has_request_body(ev: &Event<'_>) -> bool {
    matches!(ev.verb.as_str(), "create" | "update" | "patch")
        && ev.stage != Some(Stage::RequestReceived)
}

/// The compact length of a body with `metadata.managedFields` removed (and from list items).
fn without_managed_fields(raw: &str) -> Option<i64> {
    let mut v: serde_json::Value = serde_json::from_str(raw).ok()?;
    fn strip(v: &mut serde_json::Value) {
        if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            m.remove("managedFields");
        }
        if let Some(items) = v.get_mut("items").and_then(|i| i.as_array_mut()) {
            items.iter_mut().for_each(strip);
        }
        if let Some(rows) = v.get_mut("rows").and_then(|i| i.as_array_mut()) {
            for r in rows {
                if let Some(o) = r.get_mut("object") {
                    strip(o);
                }
            }
        }
    }
    strip(&mut v);
    Some(serde_json::to_string(&v).ok()?.len() as i64)
}

/// Per-rule totals.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RuleCounts {
    /// Recorded events the rule decided.
    pub recorded: Counts,
    /// What the policy keeps of them.
    pub kept: Counts,
}

/// The result of replaying a corpus through one policy.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Simulation {
    /// The recorded events.
    pub recorded: Counts,
    /// Recorded events by recorded stage.
    pub recorded_stages: BTreeMap<String, u64>,
    /// Kept events by their new level.
    pub kept_by_level: BTreeMap<String, Counts>,
    /// Everything kept.
    pub kept: Counts,
    /// Dropped by level None (recorded bytes).
    pub dropped_level_none: Counts,
    /// Dropped because their stage is omitted (recorded bytes).
    pub dropped_stage: Counts,
    /// Per rule, by index.
    pub rules: Vec<RuleCounts>,
    /// Requests no rule matched.
    pub unmatched: RuleCounts,
    /// Events the policy wants bodies for that the recording lacks.
    pub understated: u64,
    /// When the recording has no RequestReceived events at all: how many this policy would
    /// add, estimated from the requests it keeps (one per request, no bodies).
    pub estimated_request_received: Option<Counts>,
    #[serde(skip)]
    rr_candidates: Counts,
}

impl Simulation {
    /// An empty simulation for a policy of `rules` rules.
    pub fn new(rules: usize) -> Simulation {
        Simulation {
            rules: vec![RuleCounts::default(); rules],
            ..Default::default()
        }
    }

    /// Accounts one recorded event and returns what happens to it.
    pub fn add(&mut self, ev: &Event<'_>, raw_len: usize, d: &Decision) -> Outcome {
        let o = outcome(ev, raw_len, d);
        let recorded = raw_len as u64 + 1;
        self.recorded.add(recorded);
        *self
            .recorded_stages
            .entry(ev.stage.map_or("(none)", |s| s.as_str()).to_string())
            .or_default() += 1;
        let rc = match d.rule {
            Some(i) => &mut self.rules[i],
            None => &mut self.unmatched,
        };
        rc.recorded.add(recorded);
        if o.kept {
            rc.kept.add(o.bytes);
            self.kept.add(o.bytes);
            self.kept_by_level
                .entry(d.level.as_str().to_string())
                .or_default()
                .add(o.bytes);
        } else if o.stage_omitted {
            self.dropped_stage.add(recorded);
        } else {
            self.dropped_level_none.add(recorded);
        }
        if o.understated {
            self.understated += 1;
        }
        if o.kept
            && matches!(ev.stage, Some(Stage::ResponseComplete | Stage::Panic))
            && d.records(Stage::RequestReceived)
        {
            let bodies = ev
                .request_object
                .map_or(0, |r| r.get().len() as u64 + REQ_KEY)
                + ev.response_object
                    .map_or(0, |r| r.get().len() as u64 + RESP_KEY);
            self.rr_candidates.add(o.bytes.saturating_sub(bodies));
        }
        o
    }

    /// Finishes the totals once every event was added.
    pub fn finish(&mut self) {
        let rr = self
            .recorded_stages
            .get("RequestReceived")
            .copied()
            .unwrap_or(0);
        self.estimated_request_received =
            (rr == 0 && self.rr_candidates.events > 0).then_some(self.rr_candidates);
    }
}

/// How a request is grouped in a diff: who, what verb, which resource or path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Group {
    /// User name, or `(unauthenticated)`.
    pub user: String,
    /// Verb.
    pub verb: String,
    /// `group/resource[/subresource]`, or the URL path.
    pub resource: String,
}

impl Group {
    /// The group of the request `a`.
    pub fn of(a: &Attributes<'_>) -> Group {
        let resource = if a.resource_request {
            let mut s = if a.api_group.is_empty() {
                a.resource.to_string()
            } else {
                format!("{}/{}", a.api_group, a.resource)
            };
            if !a.subresource.is_empty() {
                s = format!("{s}/{}", a.subresource);
            }
            s
        } else {
            a.path.to_string()
        };
        Group {
            user: a
                .user
                .as_ref()
                .map_or_else(|| "(unauthenticated)".to_string(), |u| u.name.to_string()),
            verb: a.verb.to_string(),
            resource,
        }
    }
}

/// The difference two policies make on the same traffic.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Diff {
    /// The old policy's replay.
    pub old: Simulation,
    /// The new policy's replay.
    pub new: Simulation,
    /// Events the old policy writes and the new one does not (old bytes), by request group.
    pub no_longer_recorded: BTreeMap<Group, Counts>,
    /// Events the new policy writes and the old one does not (new bytes).
    pub newly_recorded: BTreeMap<Group, Counts>,
    /// Events both write, at a different level: (group, old level, new level) → new bytes.
    pub level_changed: BTreeMap<(Group, String, String), Counts>,
}

impl Diff {
    /// An empty diff.
    pub fn new(old_rules: usize, new_rules: usize) -> Diff {
        Diff {
            old: Simulation::new(old_rules),
            new: Simulation::new(new_rules),
            ..Default::default()
        }
    }

    /// Accounts one event under both decisions.
    pub fn add(
        &mut self,
        ev: &Event<'_>,
        raw_len: usize,
        a: &Attributes<'_>,
        old: &Decision,
        new: &Decision,
    ) {
        let o = self.old.add(ev, raw_len, old);
        let n = self.new.add(ev, raw_len, new);
        match (o.kept, n.kept) {
            (true, false) => self
                .no_longer_recorded
                .entry(Group::of(a))
                .or_default()
                .add(o.bytes),
            (false, true) => self
                .newly_recorded
                .entry(Group::of(a))
                .or_default()
                .add(n.bytes),
            (true, true) if old.level != new.level => self
                .level_changed
                .entry((Group::of(a), old.level.to_string(), new.level.to_string()))
                .or_default()
                .add(n.bytes),
            _ => {}
        }
    }

    /// Finishes both replays.
    pub fn finish(&mut self) {
        self.old.finish();
        self.new.finish();
    }
}

/// Totals of a grouping, largest first, top `n` and the rest summed.
pub fn top<K: Clone + Ord>(m: &BTreeMap<K, Counts>, n: usize) -> (Vec<(K, Counts)>, Counts) {
    let mut v: Vec<(K, Counts)> = m.iter().map(|(k, c)| (k.clone(), *c)).collect();
    v.sort_by(|a, b| {
        b.1.events
            .cmp(&a.1.events)
            .then(b.1.bytes.cmp(&a.1.bytes))
            .then(a.0.cmp(&b.0))
    });
    let mut rest = Counts::default();
    for (_, c) in v.iter().skip(n) {
        rest.merge(*c);
    }
    v.truncate(n);
    (v, rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaudit_model::StageSet;

    fn d(level: Level, omit: &[Stage], omf: bool) -> Decision {
        Decision {
            level,
            omit_stages: omit.iter().copied().collect::<StageSet>(),
            omit_managed_fields: omf,
            rule: Some(0),
        }
    }

    #[test]
    fn bytes_follow_the_level() {
        let line = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"a","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/d/configmaps","verb":"create","user":{"username":"u"},"objectRef":{"resource":"configmaps","namespace":"d","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestObject":{"kind":"ConfigMap","data":{"a":"b"}},"responseObject":{"kind":"ConfigMap","metadata":{"name":"x","managedFields":[{"manager":"kubectl"}]},"data":{"a":"b"}},"requestReceivedTimestamp":"2026-01-02T03:04:05.123456Z","stageTimestamp":"2026-01-02T03:04:05.130001Z"}"#;
        let ev: Event<'_> = serde_json::from_str(line).unwrap();
        let full = line.len() as u64 + 1;
        assert_eq!(
            outcome(&ev, line.len(), &d(Level::RequestResponse, &[], false)).bytes,
            full
        );
        // Re-encoding the event at the lower level gives exactly the computed size.
        for (level, strip_req, strip_resp) in
            [(Level::Metadata, true, true), (Level::Request, false, true)]
        {
            let mut e2 = ev.clone();
            e2.level = Some(level);
            if strip_req {
                e2.request_object = None;
            }
            if strip_resp {
                e2.response_object = None;
            }
            let mut out = Vec::new();
            kaudit_model::encode::write_event(&mut out, &e2, "audit.k8s.io/v1", true);
            assert_eq!(
                outcome(&ev, line.len(), &d(level, &[], false)).bytes,
                out.len() as u64 + 1,
                "{level}"
            );
        }
        let managed = outcome(&ev, line.len(), &d(Level::RequestResponse, &[], true)).bytes;
        assert_eq!(
            full - managed,
            r#","managedFields":[{"manager":"kubectl"}]"#.len() as u64
        );
        let o = outcome(
            &ev,
            line.len(),
            &d(Level::Metadata, &[Stage::ResponseComplete], false),
        );
        assert!(!o.kept && o.stage_omitted);
    }
}
