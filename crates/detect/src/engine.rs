//! Running rules over a stream of events: one alert per rule per request (whichever stage
//! matches first), and the state of windowed rules (thresholds, distinct counts,
//! first-seen), kept in event time so offline and live runs agree.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::FixedState;
use kaudit_model::{Event, Stage};
use serde::{Deserialize, Serialize};

use crate::fields::{Ctx, Field};
use crate::rule::{Rule, RuleSet, Severity, Window};

/// One alert.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitre: Vec<String>,
    /// The event's time (`stageTimestamp`, else when the request was received), RFC 3339.
    pub time: String,
    #[serde(skip)]
    pub micros: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(rename = "auditID")]
    pub audit_id: String,
    pub stage: String,
    pub user: String,
    pub verb: String,
    /// `resource` or `resource/subresource`.
    pub resource: String,
    pub namespace: String,
    pub name: String,
    #[serde(rename = "sourceIP")]
    pub source_ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// For windowed rules: the group (`by` values) and how many events (or distinct values)
    /// reached the threshold.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

/// Counters, for `kaudit detect`'s summary and `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub alerts: u64,
    /// Matches suppressed because the same request already alerted for the rule.
    pub repeated: u64,
}

/// Bounds on rule state, so an adversary (or a big cluster) cannot grow it without end.
const MAX_OPEN: usize = 1 << 20;
const MAX_GROUPS: usize = 200_000;
/// How long (event time) a request that alerted at a non-final stage is remembered.
const OPEN_TTL: i64 = 6 * 3600 * 1_000_000;

enum State {
    None,
    Threshold(HashMap<String, VecDeque<i64>>),
    Distinct(HashMap<String, HashMap<String, i64>>),
    FirstSeen {
        start: Option<i64>,
        seen: HashMap<String, HashSet<u64>>,
        full: bool,
    },
}

/// The state of an [`Engine`] (open requests, windows, what first-seen rules learned), to be
/// saved and restored so that a restarted engine goes on as if it had not stopped. Rules
/// are matched by id; a rule whose window changed what it groups or counts starts afresh.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EngineState {
    latest: i64,
    /// (rule id, auditID hash, time).
    open: Vec<(String, u64, i64)>,
    rules: Vec<RuleSnapshot>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct RuleSnapshot {
    id: String,
    /// What the window groups and counts (its definition, less the thresholds).
    shape: String,
    #[serde(flatten)]
    state: StateSnapshot,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StateSnapshot {
    Threshold {
        groups: Vec<(String, Vec<i64>)>,
    },
    Distinct {
        groups: Vec<(String, Vec<(String, i64)>)>,
    },
    FirstSeen {
        start: Option<i64>,
        seen: Vec<(String, Vec<u64>)>,
        full: bool,
    },
}

fn shape(w: &Window) -> String {
    match w {
        Window::Threshold { by, .. } => format!("threshold {by:?}"),
        Window::Distinct { field, by, .. } => format!("distinct {field:?} {by:?}"),
        Window::FirstSeen { field, by, .. } => format!("first_seen {field:?} {by:?}"),
    }
}

/// Runs a rule set over events.
pub struct Engine {
    rules: Arc<RuleSet>,
    state: Vec<State>,
    /// (rule, auditID hash) → time, for requests that alerted at a non-final stage.
    open: HashMap<(u32, u64), i64>,
    hasher: FixedState,
    pub stats: Stats,
    latest: i64,
}

impl Engine {
    pub fn new(rules: Arc<RuleSet>) -> Engine {
        let state = rules
            .rules
            .iter()
            .map(|r| match r.window {
                None => State::None,
                Some(Window::Threshold { .. }) => State::Threshold(HashMap::new()),
                Some(Window::Distinct { .. }) => State::Distinct(HashMap::new()),
                Some(Window::FirstSeen { .. }) => State::FirstSeen {
                    start: None,
                    seen: HashMap::new(),
                    full: false,
                },
            })
            .collect();
        Engine {
            rules,
            state,
            open: HashMap::new(),
            hasher: FixedState::with_seed(0x6b61_7564),
            stats: Stats::default(),
            latest: i64::MIN,
        }
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// The state to save.
    pub fn snapshot(&self) -> EngineState {
        let rules = &self.rules.rules;
        let mut out = EngineState {
            latest: self.latest,
            open: self
                .open
                .iter()
                .map(|((i, h), t)| (rules[*i as usize].id.clone(), *h, *t))
                .collect(),
            rules: Vec::new(),
        };
        for (rule, st) in rules.iter().zip(&self.state) {
            let Some(w) = &rule.window else { continue };
            let state = match st {
                State::None => continue,
                State::Threshold(g) => StateSnapshot::Threshold {
                    groups: g
                        .iter()
                        .filter(|(_, q)| !q.is_empty())
                        .map(|(k, q)| (k.clone(), q.iter().copied().collect()))
                        .collect(),
                },
                State::Distinct(g) => StateSnapshot::Distinct {
                    groups: g
                        .iter()
                        .filter(|(_, m)| !m.is_empty())
                        .map(|(k, m)| (k.clone(), m.iter().map(|(v, t)| (v.clone(), *t)).collect()))
                        .collect(),
                },
                State::FirstSeen { start, seen, full } => StateSnapshot::FirstSeen {
                    start: *start,
                    seen: seen
                        .iter()
                        .map(|(k, s)| (k.clone(), s.iter().copied().collect()))
                        .collect(),
                    full: *full,
                },
            };
            out.rules.push(RuleSnapshot {
                id: rule.id.clone(),
                shape: shape(w),
                state,
            });
        }
        out
    }

    /// Takes over a saved state (of this rule set or an earlier version of it).
    pub fn restore(&mut self, s: EngineState) {
        let index: HashMap<&str, usize> = self
            .rules
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str(), i))
            .collect();
        self.latest = self.latest.max(s.latest);
        for (id, h, t) in s.open {
            if let Some(i) = index.get(id.as_str()) {
                self.open.insert((*i as u32, h), t);
            }
        }
        for r in s.rules {
            let Some(&i) = index.get(r.id.as_str()) else {
                continue;
            };
            if self.rules.rules[i].window.as_ref().map(shape).as_deref() != Some(&r.shape) {
                continue;
            }
            match (r.state, &mut self.state[i]) {
                (StateSnapshot::Threshold { groups }, State::Threshold(g)) => {
                    g.extend(groups.into_iter().map(|(k, v)| (k, v.into())));
                }
                (StateSnapshot::Distinct { groups }, State::Distinct(g)) => {
                    g.extend(
                        groups
                            .into_iter()
                            .map(|(k, v)| (k, v.into_iter().collect())),
                    );
                }
                (
                    StateSnapshot::FirstSeen { start, seen, full },
                    State::FirstSeen {
                        start: s0,
                        seen: s1,
                        full: f,
                    },
                ) => {
                    *s0 = start;
                    s1.extend(seen.into_iter().map(|(k, v)| (k, v.into_iter().collect())));
                    *f = full;
                }
                _ => {}
            }
        }
    }

    /// Evaluates every enabled rule on one event, appending alerts to `out`.
    pub fn process(&mut self, event: &Event<'_>, raw: &str, out: &mut Vec<Alert>) {
        self.stats.events += 1;
        let ctx = Ctx::new(event, raw);
        let t = event
            .stage_timestamp
            .or_else(|| event.received_at())
            .map(|t| t.micros())
            .unwrap_or(self.latest.max(0));
        if t > self.latest {
            self.latest = t;
        }
        let rules = self.rules.clone();
        for (i, rule) in rules.rules.iter().enumerate() {
            if !rule.enabled || !rule.matches(&ctx) {
                continue;
            }
            if !self.first_match(i as u32, event, t) {
                self.stats.repeated += 1;
                continue;
            }
            let (group, count) = match &rule.window {
                None => (String::new(), None),
                Some(w) => match self.window(i, w, &ctx, t) {
                    Some(x) => x,
                    None => continue,
                },
            };
            out.push(alert(rule, &ctx, t, group, count));
            self.stats.alerts += 1;
        }
    }

    /// Whether this is the first stage of this request to match rule `i`.
    fn first_match(&mut self, i: u32, event: &Event<'_>, t: i64) -> bool {
        if event.audit_id.is_empty() {
            return true;
        }
        let key = (i, self.hasher.hash_one(event.audit_id.as_str()));
        let last = matches!(
            event.stage,
            Some(Stage::ResponseComplete | Stage::Panic) | None
        );
        if last {
            return self.open.remove(&key).is_none();
        }
        if self.open.contains_key(&key) {
            return false;
        }
        if self.open.len() >= MAX_OPEN {
            let horizon = self.latest - OPEN_TTL;
            self.open.retain(|_, v| *v >= horizon);
            if self.open.len() >= MAX_OPEN {
                self.open.clear();
            }
        }
        self.open.insert(key, t);
        true
    }

    /// Updates rule `i`'s window; returns the group and count when it fires.
    fn window(
        &mut self,
        i: usize,
        w: &Window,
        ctx: &Ctx<'_, '_>,
        t: i64,
    ) -> Option<(String, Option<u64>)> {
        let latest = self.latest;
        match (w, &mut self.state[i]) {
            (Window::Threshold { count, window, by }, State::Threshold(groups)) => {
                let g = group_key(ctx, by);
                if groups.len() >= MAX_GROUPS && !groups.contains_key(&g) {
                    groups.retain(|_, q| q.back().is_some_and(|b| *b >= latest - window));
                }
                let q = groups.entry(g.clone()).or_default();
                q.push_back(t);
                while q.front().is_some_and(|f| *f < t - window) {
                    q.pop_front();
                }
                if q.len() as u64 >= *count {
                    let n = q.len() as u64;
                    q.clear();
                    return Some((g, Some(n)));
                }
                None
            }
            (
                Window::Distinct {
                    field,
                    count,
                    window,
                    by,
                },
                State::Distinct(groups),
            ) => {
                let g = group_key(ctx, by);
                if groups.len() >= MAX_GROUPS && !groups.contains_key(&g) {
                    groups.retain(|_, m| m.values().any(|v| *v >= latest - window));
                }
                let vals = values(ctx, field);
                if vals.is_empty() {
                    return None;
                }
                let m = groups.entry(g.clone()).or_default();
                m.retain(|_, v| *v >= t - window);
                m.insert(vals, t);
                if m.len() as u64 >= *count {
                    let n = m.len() as u64;
                    m.clear();
                    return Some((g, Some(n)));
                }
                None
            }
            (Window::FirstSeen { field, by, learn }, State::FirstSeen { start, seen, full }) => {
                let start = *start.get_or_insert(t);
                let v = values(ctx, field);
                if v.is_empty() {
                    return None;
                }
                let vh = self.hasher.hash_one(&v);
                let g = group_key(ctx, by);
                match seen.get_mut(&g) {
                    Some(set) => {
                        if set.insert(vh) && t >= start + learn {
                            return Some((g, None));
                        }
                        None
                    }
                    None => {
                        if seen.len() < MAX_GROUPS {
                            seen.insert(g, HashSet::from([vh]));
                        } else {
                            *full = true;
                        }
                        None
                    }
                }
            }
            _ => None,
        }
    }
}

fn values(ctx: &Ctx<'_, '_>, f: &Field) -> String {
    let mut s = String::new();
    ctx.any(f, &mut |v| {
        if !s.is_empty() {
            s.push(',');
        }
        s.push_str(&v.text());
        false
    });
    s
}

fn group_key(ctx: &Ctx<'_, '_>, by: &[Field]) -> String {
    let mut g = String::new();
    for (i, f) in by.iter().enumerate() {
        if i > 0 {
            g.push(' ');
        }
        let v = values(ctx, f);
        g.push_str(if v.is_empty() { "-" } else { &v });
    }
    g
}

fn alert(rule: &Rule, ctx: &Ctx<'_, '_>, t: i64, group: String, count: Option<u64>) -> Alert {
    let e = ctx.event;
    let o = e.object_ref.as_ref();
    let resource = match o {
        Some(o) if !o.subresource.is_empty() => format!("{}/{}", o.resource, o.subresource),
        Some(o) => o.resource.to_string(),
        None => String::new(),
    };
    Alert {
        rule: rule.id.clone(),
        title: rule.title.clone(),
        severity: rule.severity,
        mitre: rule.mitre.clone(),
        time: kaudit_model::MicroTime(t).to_string(),
        micros: t,
        message: rule.message(ctx),
        cluster: String::new(),
        audit_id: e.audit_id.to_string(),
        stage: e.stage.map(|s| s.as_str().to_string()).unwrap_or_default(),
        user: e.user.username.to_string(),
        verb: e.verb.to_string(),
        resource,
        namespace: o.map(|o| o.namespace.to_string()).unwrap_or_default(),
        name: o.map(|o| o.name.to_string()).unwrap_or_default(),
        source_ip: e
            .source_ips
            .first()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        code: e.code(),
        group,
        count,
    }
}
