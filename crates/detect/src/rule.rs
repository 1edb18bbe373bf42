//! Rule files loaded (lists, macros, rules, overrides; Sigma files recognised and translated)
//! and compiled into a [`RuleSet`]. Their shape as written is [`crate::defs`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kaudit_model::Level;
use kaudit_model::units::duration_micros;
use serde_json::Value;

use crate::condition::{self, Cond};
pub use crate::defs::Severity;
use crate::defs::{FileDef, ListDef, RuleDef};
use crate::fields::{Ctx, Field};
use crate::matcher::{Entry, Lists};
use crate::template::Template;

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Entry(Entry),
    Shared(Arc<Node>),
}

impl Node {
    pub(crate) fn eval(&self, ctx: &Ctx<'_, '_>) -> bool {
        match self {
            Node::All(v) => v.iter().all(|n| n.eval(ctx)),
            Node::Any(v) => v.iter().any(|n| n.eval(ctx)),
            Node::Not(n) => !n.eval(ctx),
            Node::Entry(e) => e.eval(ctx),
            Node::Shared(n) => n.eval(ctx),
        }
    }
    fn fields<'n>(&'n self, out: &mut Vec<&'n Field>) {
        match self {
            Node::All(v) | Node::Any(v) => v.iter().for_each(|n| n.fields(out)),
            Node::Not(n) => n.fields(out),
            Node::Entry(e) => out.push(&e.field),
            Node::Shared(n) => n.fields(out),
        }
    }
}

/// What a stateful rule counts.
#[derive(Debug, Clone)]
pub enum Window {
    /// At least `count` matching requests by one group within `window` microseconds.
    Threshold {
        count: u64,
        window: i64,
        by: Vec<Field>,
    },
    /// At least `count` distinct values of `field` by one group within `window`.
    Distinct {
        field: Field,
        count: u64,
        window: i64,
        by: Vec<Field>,
    },
    /// A value of `field` never seen before for a group already seen, after `learn`
    /// microseconds of learning.
    FirstSeen {
        field: Field,
        by: Vec<Field>,
        learn: i64,
    },
}

/// A rule's test case.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    pub alerts: u64,
    /// The events, as JSON text.
    pub events: Vec<String>,
    /// The rule compiled with the test's list additions, when it has any.
    pub variant: Option<Box<Rule>>,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub mitre: Vec<String>,
    /// The audit level the rule needs to see what it matches.
    pub level: Level,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub false_positives: Vec<String>,
    /// Where the rule came from (`builtin:exec.yaml`, a path).
    pub source: String,
    /// Whether it was translated from a Sigma rule.
    pub sigma: bool,
    pub window: Option<Window>,
    pub tests: Vec<TestCase>,
    pub(crate) cond: Node,
    pub(crate) exceptions: Vec<Node>,
    pub(crate) output: Template,
}

impl Rule {
    /// Whether the rule's condition (ignoring its window) matches the event.
    pub fn matches(&self, ctx: &Ctx<'_, '_>) -> bool {
        self.cond.eval(ctx) && !self.exceptions.iter().any(|n| n.eval(ctx))
    }
    pub fn message(&self, ctx: &Ctx<'_, '_>) -> String {
        if self.output.is_empty() {
            self.title.clone()
        } else {
            self.output.render(ctx)
        }
    }
}

/// A set of compiled rules, with the lists and macros they share.
#[derive(Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// Files read, for `kaudit rules list`.
    pub sources: Vec<String>,
    /// Sigma rules skipped, with why (another log source, an unsupported feature).
    pub skipped: Vec<String>,
}

impl RuleSet {
    /// Turns on rules that are off by default, by id (`all`: every rule).
    pub fn enable(&mut self, ids: &[String]) -> Result<(), String> {
        for id in ids {
            let mut hit = false;
            for r in self.rules.iter_mut().filter(|r| id == "all" || &r.id == id) {
                r.enabled = true;
                hit = true;
            }
            if !hit {
                return Err(format!("{id}: no such rule (kaudit rules list shows them)"));
            }
        }
        Ok(())
    }
}

/// A rule file's text and name.
pub struct Source {
    pub name: String,
    pub text: String,
}

/// The built-in pack, embedded in the binary.
pub fn builtin_sources() -> Vec<Source> {
    crate::BUILTIN
        .iter()
        .map(|(n, t)| Source {
            name: format!("builtin:{n}"),
            text: (*t).to_string(),
        })
        .collect()
}

struct Loader {
    lists: Lists,
    macro_defs: BTreeMap<String, (String, Value)>,
    macros: BTreeMap<String, Arc<Node>>,
    in_progress: BTreeSet<String>,
}

/// Loads rule files in order (lists and macros are shared; later files append to lists,
/// replace macros, and override rules by id).
pub fn load(sources: &[Source]) -> Result<RuleSet, String> {
    let mut files: Vec<(String, FileDef)> = Vec::new();
    let mut skipped = Vec::new();
    for s in sources {
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&s.text).map_err(|e| match e.location() {
                Some(l) => format!(
                    "{}:{}:{}: {}",
                    s.name,
                    l.line(),
                    l.column(),
                    first_line(&e.to_string())
                ),
                None => format!("{}: {}", s.name, first_line(&e.to_string())),
            })?;
        for (i, doc) in docs.into_iter().enumerate() {
            let name = if i == 0 {
                s.name.clone()
            } else {
                format!("{} (document {})", s.name, i + 1)
            };
            if doc.is_null() {
                continue;
            }
            if crate::sigma::is_sigma(&doc) {
                match crate::sigma::translate(&doc) {
                    Ok(Some(r)) => files.push((
                        name,
                        FileDef {
                            rules: vec![r],
                            ..Default::default()
                        },
                    )),
                    Ok(None) => {}
                    Err(e) => skipped.push(format!("{name}: {e}")),
                }
                continue;
            }
            let f: FileDef = serde_json::from_value(doc).map_err(|e| format!("{name}: {e}"))?;
            files.push((name, f));
        }
    }
    let mut ld = Loader {
        lists: Lists::new(),
        macro_defs: BTreeMap::new(),
        macros: BTreeMap::new(),
        in_progress: BTreeSet::new(),
    };
    for (name, f) in &mut files {
        for (k, l) in std::mem::take(&mut f.lists) {
            match l {
                ListDef::Items(v) => {
                    ld.lists.insert(k, v);
                }
                ListDef::Append { append } => match ld.lists.get_mut(&k) {
                    Some(l) => l.extend(append),
                    None => {
                        return Err(format!(
                            "{name}: list {k:?}: nothing to append to (no earlier file defines it)"
                        ));
                    }
                },
            }
        }
        for (k, m) in std::mem::take(&mut f.macros) {
            ld.macro_defs.insert(k, (name.clone(), m));
        }
    }
    let mut set = RuleSet {
        skipped,
        ..Default::default()
    };
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for (name, f) in &files {
        set.sources.push(name.clone());
        for def in &f.rules {
            let rule = ld
                .rule(def, name)
                .map_err(|e| format!("{name}: rule {:?}: {e}", def.id))?;
            match ids.get(&def.id) {
                Some(&i) => set.rules[i] = rule,
                None => {
                    ids.insert(def.id.clone(), set.rules.len());
                    set.rules.push(rule);
                }
            }
        }
    }
    for (name, f) in &files {
        for o in &f.overrides {
            let Some(&i) = ids.get(&o.id) else {
                return Err(format!("{name}: override of {:?}: no such rule", o.id));
            };
            let r = &mut set.rules[i];
            if let Some(e) = o.enabled {
                r.enabled = e;
            }
            if let Some(s) = o.severity {
                r.severity = s;
            }
            for (j, ex) in o.exceptions.iter().enumerate() {
                let n = ld
                    .selection(&Value::Object(ex.clone()), &|n| Field::parse(n))
                    .map_err(|e| {
                        format!("{name}: override of {:?}: exception {}: {e}", o.id, j + 1)
                    })?;
                r.exceptions.push(n);
            }
        }
    }
    Ok(set)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

impl Loader {
    fn macro_node(&mut self, name: &str) -> Result<Option<Arc<Node>>, String> {
        if let Some(m) = self.macros.get(name) {
            return Ok(Some(m.clone()));
        }
        let Some((file, def)) = self.macro_defs.get(name).cloned() else {
            return Ok(None);
        };
        if !self.in_progress.insert(name.to_string()) {
            return Err(format!("macro {name:?} refers to itself"));
        }
        let node = match &def {
            Value::String(c) => {
                let cond =
                    condition::parse(c).map_err(|e| format!("{file}: macro {name:?}: {e}"))?;
                self.resolve(&cond, &BTreeMap::new())
                    .map_err(|e| format!("{file}: macro {name:?}: {e}"))?
            }
            v => self
                .selection(v, &|n| Field::parse(n))
                .map_err(|e| format!("{file}: macro {name:?}: {e}"))?,
        };
        self.in_progress.remove(name);
        let node = Arc::new(node);
        self.macros.insert(name.to_string(), node.clone());
        Ok(Some(node))
    }

    /// A selection: a map (all entries), a list of maps (any), or a list of keywords.
    fn selection(
        &mut self,
        v: &Value,
        map_field: &dyn Fn(&str) -> Result<Field, String>,
    ) -> Result<Node, String> {
        match v {
            Value::Object(m) => {
                let mut entries = Vec::new();
                for (k, v) in m {
                    entries.push(Entry::compile(k, v, &self.lists, map_field)?);
                }
                if entries.is_empty() {
                    return Err("an empty selection".into());
                }
                // Cheap fields first: a selection is a conjunction, so order is free.
                entries.sort_by_key(|e| e.field.costly());
                Ok(Node::All(entries.into_iter().map(Node::Entry).collect()))
            }
            Value::Array(a) if a.iter().all(Value::is_object) && !a.is_empty() => Ok(Node::Any(
                a.iter()
                    .map(|x| self.selection(x, map_field))
                    .collect::<Result<_, _>>()?,
            )),
            Value::Array(a)
                if a.iter().all(|x| !x.is_object() && !x.is_array()) && !a.is_empty() =>
            {
                Ok(Node::Entry(Entry::compile(
                    "|contains",
                    v,
                    &self.lists,
                    &|_| Ok(Field::Raw),
                )?))
            }
            Value::String(_) | Value::Number(_) => Ok(Node::Entry(Entry::compile(
                "|contains",
                v,
                &self.lists,
                &|_| Ok(Field::Raw),
            )?)),
            _ => Err(format!(
                "a selection is a map of fields, a list of maps, or a list of keywords; not {v}"
            )),
        }
    }

    fn resolve(&mut self, c: &Cond, sels: &BTreeMap<String, Arc<Node>>) -> Result<Node, String> {
        Ok(match c {
            Cond::Ref(n) => match sels.get(n) {
                Some(s) => Node::Shared(s.clone()),
                None => match self.macro_node(n)? {
                    Some(m) => Node::Shared(m),
                    None => {
                        let known: Vec<&String> = sels.keys().collect();
                        return Err(format!(
                            "condition names {n:?}, which is neither a selection of this rule {known:?} nor a macro"
                        ));
                    }
                },
            },
            Cond::Not(x) => Node::Not(Box::new(self.resolve(x, sels)?)),
            Cond::And(v) => Node::All(
                v.iter()
                    .map(|x| self.resolve(x, sels))
                    .collect::<Result<_, _>>()?,
            ),
            Cond::Or(v) => Node::Any(
                v.iter()
                    .map(|x| self.resolve(x, sels))
                    .collect::<Result<_, _>>()?,
            ),
            Cond::Of { all, pattern } => {
                let hits: Vec<Node> = sels
                    .iter()
                    .filter(|(k, _)| condition::pattern_matches(pattern, k))
                    .map(|(_, v)| Node::Shared(v.clone()))
                    .collect();
                if hits.is_empty() {
                    return Err(format!(
                        "'{} of {pattern}' matches no selection",
                        if *all { "all" } else { "1" }
                    ));
                }
                if *all {
                    Node::All(hits)
                } else {
                    Node::Any(hits)
                }
            }
        })
    }

    fn rule(&mut self, d: &RuleDef, source: &str) -> Result<Rule, String> {
        if d.id.trim().is_empty() {
            return Err("empty id".into());
        }
        let map_field: &dyn Fn(&str) -> Result<Field, String> = if d.sigma {
            &crate::sigma::field
        } else {
            &|n: &str| Field::parse(n)
        };
        let cond = self.condition(d, map_field)?;
        let window = window(d, map_field)?;
        let output = match &d.output {
            Some(o) => Template::parse(o, map_field)?,
            None => Template::default(),
        };
        let level = level(d, &cond)?;
        let tests = self.tests(d, source)?;
        Ok(Rule {
            id: d.id.clone(),
            title: d.title.clone(),
            description: d.description.trim().to_string(),
            severity: d.severity,
            mitre: d.mitre.clone(),
            level,
            enabled: d.enabled,
            tags: d.tags.clone(),
            references: d.references.clone(),
            false_positives: d.false_positives.clone(),
            source: source.to_string(),
            sigma: d.sigma,
            window,
            tests,
            cond,
            exceptions: Vec::new(),
            output,
        })
    }

    /// The rule's condition over its selections (several conditions are alternatives).
    fn condition(
        &mut self,
        d: &RuleDef,
        map_field: &dyn Fn(&str) -> Result<Field, String>,
    ) -> Result<Node, String> {
        let mut sels = BTreeMap::new();
        let mut cond_text: Option<Vec<String>> = None;
        for (k, v) in &d.detection {
            if k == "condition" {
                cond_text = Some(match v {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a
                        .iter()
                        .map(|x| {
                            x.as_str()
                                .map(str::to_string)
                                .ok_or("detection.condition: a list of strings")
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err("detection.condition must be a string".into()),
                });
                continue;
            }
            if k == "timeframe" {
                continue;
            }
            let n = self
                .selection(v, map_field)
                .map_err(|e| format!("detection.{k}: {e}"))?;
            sels.insert(k.clone(), Arc::new(n));
        }
        let cond_text = match cond_text {
            Some(c) => c,
            None if sels.len() == 1 => vec![sels.keys().next().cloned().unwrap_or_default()],
            None => return Err("detection has several selections and no condition".into()),
        };
        let mut alts = Vec::new();
        for c in &cond_text {
            let parsed =
                condition::parse(c).map_err(|e| format!("detection.condition {c:?}: {e}"))?;
            alts.push(
                self.resolve(&parsed, &sels)
                    .map_err(|e| format!("detection.condition: {e}"))?,
            );
        }
        Ok(if alts.len() == 1 {
            alts.pop().unwrap_or(Node::Any(vec![]))
        } else {
            Node::Any(alts)
        })
    }

    /// Each of the rule's own tests (a test with list values gets its own compiled rule).
    fn tests(&mut self, d: &RuleDef, source: &str) -> Result<Vec<TestCase>, String> {
        let mut tests = Vec::new();
        for t in &d.tests {
            let mut events: Vec<String> = t.events.iter().map(Value::to_string).collect();
            if let Some(e) = &t.event {
                events.insert(0, e.to_string());
            }
            if events.is_empty() {
                return Err(format!("test {:?}: give event or events", t.name));
            }
            let variant = if t.lists.is_empty() {
                None
            } else {
                let mut lists = self.lists.clone();
                for (k, v) in &t.lists {
                    lists
                        .get_mut(k)
                        .ok_or_else(|| format!("test {:?}: no list named {k:?}", t.name))?
                        .extend(v.iter().cloned());
                }
                let mut ld = Loader {
                    lists,
                    macro_defs: self.macro_defs.clone(),
                    macros: BTreeMap::new(),
                    in_progress: BTreeSet::new(),
                };
                let mut def = d.clone();
                def.tests.clear();
                Some(Box::new(ld.rule(&def, source)?))
            };
            tests.push(TestCase {
                name: t.name.clone(),
                alerts: t.alerts,
                events,
                variant,
            });
        }
        Ok(tests)
    }
}

/// A rule's window (threshold, distinct or first-seen), at most one.
fn window(
    d: &RuleDef,
    map_field: &dyn Fn(&str) -> Result<Field, String>,
) -> Result<Option<Window>, String> {
    let fields =
        |v: &[String]| -> Result<Vec<Field>, String> { v.iter().map(|n| map_field(n)).collect() };
    let windows = [
        d.threshold.is_some(),
        d.distinct.is_some(),
        d.first_seen.is_some(),
    ];
    if windows.iter().filter(|b| **b).count() > 1 {
        return Err("give at most one of threshold, distinct, first_seen".into());
    }
    Ok(if let Some(t) = &d.threshold {
        if t.count == 0 {
            return Err("threshold.count must be at least 1".into());
        }
        Some(Window::Threshold {
            count: t.count,
            window: duration_micros(&t.window).map_err(|e| format!("threshold.window: {e}"))?,
            by: fields(&t.by).map_err(|e| format!("threshold.by: {e}"))?,
        })
    } else if let Some(t) = &d.distinct {
        if t.count < 2 {
            return Err("distinct.count must be at least 2".into());
        }
        Some(Window::Distinct {
            field: map_field(&t.field).map_err(|e| format!("distinct.field: {e}"))?,
            count: t.count,
            window: duration_micros(&t.window).map_err(|e| format!("distinct.window: {e}"))?,
            by: fields(&t.by).map_err(|e| format!("distinct.by: {e}"))?,
        })
    } else if let Some(t) = &d.first_seen {
        Some(Window::FirstSeen {
            field: map_field(&t.field).map_err(|e| format!("first_seen.field: {e}"))?,
            by: fields(&t.by).map_err(|e| format!("first_seen.by: {e}"))?,
            learn: duration_micros(&t.learn).map_err(|e| format!("first_seen.learn: {e}"))?,
        })
    } else {
        None
    })
}

/// The audit level a rule needs: the highest any field its condition reads needs, or its own
/// `level` if that is not lower.
fn level(d: &RuleDef, cond: &Node) -> Result<Level, String> {
    let mut used = Vec::new();
    cond.fields(&mut used);
    let needed = used
        .iter()
        .map(|f| f.level())
        .max()
        .unwrap_or(Level::Metadata);
    Ok(match &d.level {
        Some(l) => {
            let l: Level = l.parse().map_err(|e| format!("level: {e}"))?;
            if l < needed {
                return Err(format!(
                    "level: {l} is too low: the condition reads bodies, which need {needed}"
                ));
            }
            l
        }
        None => needed,
    })
}
