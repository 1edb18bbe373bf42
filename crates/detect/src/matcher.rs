//! Value tests: one `field|modifiers: values` entry of a selection, compiled.
//!
//! Semantics follow Sigma: strings compare case-insensitively unless `|cased`; `*` and `?`
//! are wildcards (`\*`, `\?`, `\\` escape them); a list of values matches when any does
//! (all with `|all`); a multi-valued field matches when any of its values does; `null`
//! matches a missing field.

use std::collections::BTreeMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use kaudit_model::net::Cidr;
use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::fields::{Ctx, Field, Val};

/// A compiled `field|modifiers: values` entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub field: Field,
    tests: Vec<Test>,
    /// `|all`: every test must match some value.
    all: bool,
    /// A `null` among the values: a missing field matches.
    null: bool,
    /// `|exists: true/false`.
    exists: Option<bool>,
}

#[derive(Debug, Clone)]
enum Test {
    Eq(String, bool),
    Prefix(String, bool),
    Suffix(String, bool),
    Contains(AhoCorasick),
    Regex(Regex),
    Cidr(Vec<Cidr>),
    Cmp(Cmp, f64),
    Number(f64),
    Bool(bool),
}

#[derive(Clone, Copy, Debug)]
enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Default)]
struct Mods {
    contains: bool,
    startswith: bool,
    endswith: bool,
    all: bool,
    re: bool,
    re_flags: (bool, bool, bool),
    cidr: bool,
    exists: bool,
    cmp: Option<Cmp>,
    cased: bool,
    expand: bool,
}

/// Named value lists (`%name%` with `|expand`).
pub type Lists = BTreeMap<String, Vec<Value>>;

impl Mods {
    /// The modifiers of `key` (`field|mod|mod`; `parts` after the field), checked.
    fn parse<'k>(key: &str, parts: impl Iterator<Item = &'k str>) -> Result<Mods, String> {
        let mut m = Mods::default();
        for p in parts {
            match p {
                "contains" => m.contains = true,
                "startswith" => m.startswith = true,
                "endswith" => m.endswith = true,
                "all" => m.all = true,
                "re" => m.re = true,
                "i" if m.re => m.re_flags.0 = true,
                "m" if m.re => m.re_flags.1 = true,
                "s" if m.re => m.re_flags.2 = true,
                "cidr" => m.cidr = true,
                "exists" => m.exists = true,
                "gt" => m.cmp = Some(Cmp::Gt),
                "gte" => m.cmp = Some(Cmp::Gte),
                "lt" => m.cmp = Some(Cmp::Lt),
                "lte" => m.cmp = Some(Cmp::Lte),
                "cased" => m.cased = true,
                "expand" => m.expand = true,
                "base64" | "base64offset" | "utf16le" | "utf16be" | "wide" | "utf16"
                | "windash" | "fieldref" => {
                    return Err(format!(
                        "{key:?}: modifier {p:?} does not apply to Kubernetes audit events"
                    ));
                }
                _ => {
                    return Err(format!(
                        "{key:?}: unknown modifier {p:?} (known: contains, startswith, endswith, all, re, cidr, \
                     exists, gt, gte, lt, lte, cased, expand)"
                    ));
                }
            }
        }
        if [
            m.contains,
            m.startswith,
            m.endswith,
            m.re,
            m.cidr,
            m.exists,
            m.cmp.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
            > 1
        {
            return Err(format!(
                "{key:?}: combine at most one of contains, startswith, endswith, re, cidr, exists, gt/gte/lt/lte"
            ));
        }
        Ok(m)
    }
}

/// The values of an entry (a scalar or a list), `%name%` lists expanded when `expand`.
fn expand<'v>(
    key: &str,
    value: &'v Value,
    lists: &'v Lists,
    expand: bool,
) -> Result<Vec<&'v Value>, String> {
    let raw: Vec<&Value> = match value {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    let mut values: Vec<&Value> = Vec::new();
    for v in raw {
        match v.as_str() {
            Some(s) if expand && s.len() > 2 && s.starts_with('%') && s.ends_with('%') => {
                let n = &s[1..s.len() - 1];
                let l = lists
                    .get(n)
                    .ok_or_else(|| format!("{key:?}: no list named {n:?}"))?;
                values.extend(l.iter());
            }
            Some(s)
                if !expand
                    && s.len() > 2
                    && s.starts_with('%')
                    && s.ends_with('%')
                    && lists.contains_key(&s[1..s.len() - 1]) =>
            {
                return Err(format!(
                    "{key:?}: {s:?} names a list; add |expand to use it"
                ));
            }
            _ => values.push(v),
        }
    }
    Ok(values)
}

impl Entry {
    /// Compiles `key` (`field|mod|mod`) with `value` (a scalar or a list of scalars).
    /// `map_field` turns the field name into a [`Field`] (Sigma import renames fields).
    pub fn compile(
        key: &str,
        value: &Value,
        lists: &Lists,
        map_field: &dyn Fn(&str) -> Result<Field, String>,
    ) -> Result<Entry, String> {
        let mut parts = key.split('|');
        let name = parts.next().unwrap_or("");
        let field = map_field(name)?;
        let m = Mods::parse(key, parts)?;
        let values = expand(key, value, lists, m.expand)?;
        let mut e = Entry {
            field,
            tests: Vec::new(),
            all: m.all,
            null: false,
            exists: None,
        };
        if m.exists {
            let [v] = values.as_slice() else {
                return Err(format!("{key:?}: |exists takes one value, true or false"));
            };
            e.exists = Some(match v {
                Value::Bool(b) => *b,
                Value::String(s) if s == "true" || s == "false" => s == "true",
                _ => return Err(format!("{key:?}: |exists takes true or false")),
            });
            return Ok(e);
        }
        if values.is_empty() {
            if m.expand {
                // An empty list (an allow-list or IOC list nobody filled yet) matches nothing.
                return Ok(e);
            }
            return Err(format!(
                "{key:?}: no values (an empty list matches nothing)"
            ));
        }
        let mut contains: Vec<String> = Vec::new();
        for v in values {
            e.add(key, &m, v, &mut contains)?;
        }
        if !contains.is_empty() {
            e.tests.push(Test::Contains(needles(&contains, true)?));
        }
        Ok(e)
    }

    /// Adds the test of one value (`contains` collects plain case-insensitive substrings, to
    /// be searched for together).
    fn add(
        &mut self,
        key: &str,
        m: &Mods,
        v: &Value,
        contains: &mut Vec<String>,
    ) -> Result<(), String> {
        let s = match v {
            Value::Null => {
                self.null = true;
                return Ok(());
            }
            Value::Bool(b) if m.cmp.is_none() && !m.re && !m.cidr => {
                self.tests.push(Test::Bool(*b));
                return Ok(());
            }
            Value::Number(n) if !m.re && !m.cidr && !m.contains && !m.startswith && !m.endswith => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                self.tests.push(match m.cmp {
                    Some(c) => Test::Cmp(c, x),
                    None => Test::Number(x),
                });
                return Ok(());
            }
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(format!(
                    "{key:?}: values must be strings, numbers, booleans or null, not {v}"
                ));
            }
        };
        if let Some(c) = m.cmp {
            let x: f64 = s
                .trim()
                .parse()
                .map_err(|_| format!("{key:?}: {s:?} is not a number"))?;
            self.tests.push(Test::Cmp(c, x));
        } else if m.cidr {
            let n =
                Cidr::parse(&s).ok_or_else(|| format!("{key:?}: {s:?} is not an IP network"))?;
            match self.tests.last_mut() {
                Some(Test::Cidr(v)) if !m.all => v.push(n),
                _ => self.tests.push(Test::Cidr(vec![n])),
            }
        } else if m.re {
            let (i, ml, sl) = m.re_flags;
            let re = RegexBuilder::new(&s)
                .case_insensitive(i)
                .multi_line(ml)
                .dot_matches_new_line(sl)
                .size_limit(1 << 22)
                .build()
                .map_err(|err| format!("{key:?}: bad regular expression {s:?}: {err}"))?;
            self.tests.push(Test::Regex(re));
        } else {
            let mut pat = String::new();
            if m.contains || m.endswith {
                pat.push('*');
            }
            pat.push_str(&s);
            if m.contains || m.startswith {
                pat.push('*');
            }
            match wildcard(&pat, m.cased)? {
                Test::Contains(_) if !m.all && !m.cased => contains.push(unescape(&s)),
                t => self.tests.push(t),
            }
        }
        Ok(())
    }

    /// Whether the entry matches the event.
    pub fn eval(&self, ctx: &Ctx<'_, '_>) -> bool {
        if let Some(want) = self.exists {
            return ctx.any(&self.field, &mut |v| !matches!(v, Val::Null)) == want;
        }
        if self.all {
            return self
                .tests
                .iter()
                .all(|t| ctx.any(&self.field, &mut |v| t.test(v)))
                && (!self.null || !ctx.any(&self.field, &mut |v| !matches!(v, Val::Null)));
        }
        if ctx.any(&self.field, &mut |v| self.tests.iter().any(|t| t.test(v))) {
            return true;
        }
        self.null && !ctx.any(&self.field, &mut |v| !matches!(v, Val::Null))
    }
}

impl Test {
    fn test(&self, v: &Val<'_>) -> bool {
        match self {
            Test::Number(x) => v.number() == Some(*x),
            Test::Cmp(c, x) => v.number().is_some_and(|n| match c {
                Cmp::Gt => n > *x,
                Cmp::Gte => n >= *x,
                Cmp::Lt => n < *x,
                Cmp::Lte => n <= *x,
            }),
            Test::Bool(b) => match v {
                Val::Bool(x) => x == b,
                Val::Str(s) => s.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
                _ => false,
            },
            Test::Eq(s, cased) => {
                let t = v.text();
                if *cased {
                    *t == **s
                } else {
                    t.eq_ignore_ascii_case(s)
                }
            }
            Test::Prefix(s, cased) => {
                let t = v.text();
                t.len() >= s.len()
                    && t.is_char_boundary(s.len())
                    && if *cased {
                        t.starts_with(s.as_str())
                    } else {
                        t[..s.len()].eq_ignore_ascii_case(s)
                    }
            }
            Test::Suffix(s, cased) => {
                let t = v.text();
                let k = t.len().wrapping_sub(s.len());
                t.len() >= s.len()
                    && t.is_char_boundary(k)
                    && if *cased {
                        t.ends_with(s.as_str())
                    } else {
                        t[k..].eq_ignore_ascii_case(s)
                    }
            }
            Test::Contains(ac) => ac.is_match(v.text().as_bytes()),
            Test::Regex(re) => re.is_match(&v.text()),
            Test::Cidr(nets) => match v {
                Val::Str(s) => s
                    .trim()
                    .parse()
                    .is_ok_and(|ip| nets.iter().any(|n| n.contains(ip))),
                _ => false,
            },
        }
    }
}

fn needles(ns: &[String], insensitive: bool) -> Result<AhoCorasick, String> {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(insensitive)
        .match_kind(MatchKind::Standard)
        .build(ns)
        .map_err(|e| e.to_string())
}

/// Removes Sigma escapes (`\*`, `\?`, `\\`).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.clone().next() {
                Some(n @ ('*' | '?' | '\\')) => {
                    out.push(n);
                    it.next();
                }
                _ => out.push(c),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Compiles a pattern with Sigma wildcards into the cheapest test.
fn wildcard(pat: &str, cased: bool) -> Result<Test, String> {
    // Tokens: literal text and wildcards.
    enum Tok {
        Lit(String),
        Star,
        One,
    }
    let mut toks: Vec<Tok> = Vec::new();
    let mut lit = String::new();
    let mut it = pat.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' if matches!(it.peek(), Some('*' | '?' | '\\')) => {
                lit.push(it.next().unwrap_or('\\'))
            }
            '*' | '?' => {
                if !lit.is_empty() {
                    toks.push(Tok::Lit(std::mem::take(&mut lit)));
                }
                toks.push(if c == '*' { Tok::Star } else { Tok::One });
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        toks.push(Tok::Lit(lit));
    }
    let lits: Vec<&String> = toks
        .iter()
        .filter_map(|t| if let Tok::Lit(s) = t { Some(s) } else { None })
        .collect();
    let ones = toks.iter().any(|t| matches!(t, Tok::One));
    let shape: String = toks
        .iter()
        .map(|t| match t {
            Tok::Lit(_) => 'L',
            Tok::Star => '*',
            Tok::One => '?',
        })
        .collect();
    if !ones {
        match shape.as_str() {
            "" => return Ok(Test::Eq(String::new(), cased)),
            "L" => return Ok(Test::Eq(lits[0].clone(), cased)),
            "L*" => return Ok(Test::Prefix(lits[0].clone(), cased)),
            "*L" => return Ok(Test::Suffix(lits[0].clone(), cased)),
            "*L*" if !cased => return Ok(Test::Contains(needles(&[lits[0].clone()], true)?)),
            "*L*" => return Ok(Test::Contains(needles(&[lits[0].clone()], false)?)),
            "*" | "**" => {
                return Ok(Test::Regex(
                    Regex::new("(?s).*").map_err(|e| e.to_string())?,
                ));
            }
            _ => {}
        }
    }
    let mut re = String::from(if cased { "(?s)^" } else { "(?si)^" });
    for t in &toks {
        match t {
            Tok::Lit(s) => re.push_str(&regex::escape(s)),
            Tok::Star => re.push_str(".*"),
            Tok::One => re.push('.'),
        }
    }
    re.push('$');
    Ok(Test::Regex(Regex::new(&re).map_err(|e| e.to_string())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kaudit_model::decode;

    fn check(key: &str, value: Value, event: &str) -> bool {
        let mut lists = Lists::new();
        lists.insert(
            "shells".into(),
            vec![Value::from("sh"), Value::from("bash")],
        );
        let e = Entry::compile(key, &value, &lists, &|n| Field::parse(n)).unwrap();
        let mut got = None;
        decode::decode_slice(event.as_bytes(), |r| {
            let r = r.unwrap();
            got = Some(e.eval(&Ctx::new(&r.event, r.raw)));
            std::ops::ControlFlow::Continue(())
        });
        got.unwrap()
    }

    const EV: &str = r#"{"kind":"Event","auditID":"a","verb":"create","stage":"ResponseComplete","user":{"username":"Jane@Example.com","groups":["dev","system:authenticated"]},"sourceIPs":["10.1.2.3","8.8.8.8"],"objectRef":{"resource":"pods","namespace":"default","name":"web"},"responseStatus":{"code":201},"requestURI":"/api/v1/namespaces/default/pods/web/exec?command=sh&command=-c&command=cat%20%2Fetc%2Fshadow&container=app","requestObject":{"kind":"Pod","spec":{"hostNetwork":true,"containers":[{"name":"a","image":"nginx"},{"name":"b","image":"evil/miner:1","securityContext":{"privileged":true,"capabilities":{"add":["SYS_ADMIN","NET_RAW"]}}}],"volumes":[{"name":"v","hostPath":{"path":"/var/run/docker.sock"}}]}}}"#;

    #[test]
    fn strings_and_wildcards() {
        assert!(check("user.username", "jane@example.com".into(), EV));
        assert!(!check("user.username|cased", "jane@example.com".into(), EV));
        assert!(check("user.username", "*@example.com".into(), EV));
        assert!(check("user.username", "j?ne@*".into(), EV));
        assert!(check("user.groups", serde_json::json!(["nope", "dev"]), EV));
        assert!(check(
            "user.groups|all",
            serde_json::json!(["dev", "system:authenticated"]),
            EV
        ));
        assert!(!check(
            "user.groups|all",
            serde_json::json!(["dev", "admins"]),
            EV
        ));
        assert!(check("userAgent", Value::Null, EV));
        assert!(!check("verb", Value::Null, EV));
        assert!(check("requestURI|contains", "/EXEC?".into(), EV));
        assert!(check("verb|re", "^(create|get)$".into(), EV));
    }

    #[test]
    fn numbers_ips_bodies() {
        assert!(check("responseStatus.code", 201.into(), EV));
        assert!(check("responseStatus.code|gte", 200.into(), EV));
        assert!(!check("responseStatus.code|gte", 400.into(), EV));
        assert!(check("sourceIPs|cidr", "8.8.0.0/16".into(), EV));
        assert!(!check("sourceIP|cidr", "8.8.0.0/16".into(), EV));
        assert!(check("pod.spec.hostNetwork", true.into(), EV));
        assert!(check(
            "pod.containers.securityContext.privileged",
            true.into(),
            EV
        ));
        assert!(check(
            "pod.containers.securityContext.capabilities.add",
            "sys_admin".into(),
            EV
        ));
        assert!(check(
            "pod.spec.volumes[].hostPath.path|startswith",
            "/var/run/".into(),
            EV
        ));
        assert!(check("pod.spec.hostPID|exists", false.into(), EV));
        assert!(check("exec.command|contains", "/etc/shadow".into(), EV));
        assert!(check(
            "exec.command|startswith|expand",
            "%shells%".into(),
            EV
        ));
        assert!(check("exec.container", "app".into(), EV));
        assert!(check("requestObject.spec|contains", "miner".into(), EV));
    }

    #[test]
    fn errors() {
        let l = Lists::new();
        let f = |n: &str| Field::parse(n);
        assert!(
            Entry::compile("verb|bogus", &"x".into(), &l, &f)
                .unwrap_err()
                .contains("unknown modifier")
        );
        assert!(
            Entry::compile("verb|expand", &"%nope%".into(), &l, &f)
                .unwrap_err()
                .contains("no list")
        );
        assert!(
            Entry::compile("sourceIP|cidr", &"10.0.0.0/40".into(), &l, &f)
                .unwrap_err()
                .contains("not an IP network")
        );
        assert!(
            Entry::compile("verb|re", &"(".into(), &l, &f)
                .unwrap_err()
                .contains("bad regular expression")
        );
    }
}
