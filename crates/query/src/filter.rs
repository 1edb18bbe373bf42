//! The filter language: terms that read like the questions people ask.
//!
//! ```text
//! user=jane@example.com verb=get,list resource=secrets ns=production code>=400
//! ip=10.0.0.0/8 ua~kubectl since=24h  user!=system:*  resource=pods/exec
//! ```
//! A term is `field op value`; all terms must hold. `=` takes a comma-separated list (any
//! matches) whose items may be globs (`*`, `?`); `!=` is its negation; `~` is a regular
//! expression (`!~` negated); `>`, `>=`, `<`, `<=` compare numbers (`code`). `ip=` accepts
//! addresses and CIDR ranges. `since=`/`until=` take a duration back from now (`90s`, `30m`,
//! `24h`, `7d`) or an RFC 3339 time. Quote a value with spaces: `ua="kubectl/v1.30 (linux)"`.

use kaudit_model::net::Cidr;

use regex::Regex;

/// A field one can filter on, and the column it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    User,
    Group,
    Verb,
    Resource,
    Subresource,
    Namespace,
    Name,
    Code,
    Ip,
    UserAgent,
    Cluster,
    Stage,
    Level,
    ApiGroup,
    Uri,
    Decision,
    Reason,
    AuditId,
    Impersonated,
}

/// Every field name (and alias) the language accepts.
pub const FIELDS: &[(&str, Field)] = &[
    ("user", Field::User),
    ("group", Field::Group),
    ("groups", Field::Group),
    ("verb", Field::Verb),
    ("resource", Field::Resource),
    ("subresource", Field::Subresource),
    ("ns", Field::Namespace),
    ("namespace", Field::Namespace),
    ("name", Field::Name),
    ("code", Field::Code),
    ("ip", Field::Ip),
    ("ua", Field::UserAgent),
    ("useragent", Field::UserAgent),
    ("cluster", Field::Cluster),
    ("stage", Field::Stage),
    ("level", Field::Level),
    ("apigroup", Field::ApiGroup),
    ("uri", Field::Uri),
    ("decision", Field::Decision),
    ("reason", Field::Reason),
    ("auditid", Field::AuditId),
    ("id", Field::AuditId),
    ("as", Field::Impersonated),
    ("impersonated", Field::Impersonated),
];

impl Field {
    /// The segment column holding the field.
    pub fn column(self) -> &'static str {
        match self {
            Field::User => "user",
            Field::Group => "groups",
            Field::Verb => "verb",
            Field::Resource => "resource",
            Field::Subresource => "subresource",
            Field::Namespace => "namespace",
            Field::Name => "name",
            Field::Code => "code",
            Field::Ip => "source_ip",
            Field::UserAgent => "user_agent",
            Field::Cluster => "cluster",
            Field::Stage => "stage",
            Field::Level => "level",
            Field::ApiGroup => "api_group",
            Field::Uri => "request_uri",
            Field::Decision => "decision",
            Field::Reason => "reason",
            Field::AuditId => "audit_id",
            Field::Impersonated => "impersonated_user",
        }
    }
}

/// One value of an `=` list.
#[derive(Clone, Debug)]
pub enum Value {
    Exact(String),
    Glob(Regex),
    Cidr(Cidr),
}

/// How a term matches.
#[derive(Clone, Debug)]
pub enum Matcher {
    /// Any of these.
    Any(Vec<Value>),
    Regex(Regex),
    /// A numeric comparison: (op, number).
    Cmp(CmpOp, i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

/// `field op value`.
#[derive(Clone, Debug)]
pub struct Term {
    pub field: Field,
    pub negated: bool,
    pub matcher: Matcher,
}

/// A parsed filter.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub terms: Vec<Term>,
    /// Microseconds since the epoch, inclusive.
    pub since: Option<i64>,
    /// Microseconds since the epoch, exclusive.
    pub until: Option<i64>,
}

/// Splits on whitespace outside double quotes.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if quoted {
        return Err("unbalanced double quote".into());
    }
    if any {
        out.push(cur);
    }
    Ok(out)
}

fn glob(s: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    for c in s.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| e.to_string())
}

fn cidr(s: &str) -> Option<Value> {
    Cidr::parse(s).map(Value::Cidr)
}

/// Parses a filter. `now` anchors relative times.
pub fn parse(s: &str, now: i64) -> Result<Filter, String> {
    let mut f = Filter::default();
    for w in words(s)? {
        let Some(opi) = w.find(['=', '!', '~', '<', '>']) else {
            return Err(format!(
                "{w:?}: expected field=value (fields: {})",
                field_names()
            ));
        };
        let name = w[..opi].to_ascii_lowercase();
        let rest = &w[opi..];
        let (op, value) = ["!=", "!~", ">=", "<=", "=", "~", ">", "<"]
            .iter()
            .find_map(|op| rest.strip_prefix(op).map(|v| (*op, v)))
            .ok_or_else(|| format!("{w:?}: unknown operator"))?;
        if name == "since" || name == "until" {
            if op != "=" {
                return Err(format!(
                    "{w:?}: {name} takes = (since=24h, until=2026-01-02T00:00:00Z)"
                ));
            }
            let t = kaudit_model::units::time(value, now).map_err(|_| {
                format!("{w:?}: not a duration (90s, 30m, 24h, 7d) or RFC 3339 time")
            })?;
            if name == "since" {
                f.since = Some(t);
            } else {
                f.until = Some(t);
            }
            continue;
        }
        let field = FIELDS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
            .ok_or_else(|| format!("{w:?}: unknown field {name:?} (fields: {})", field_names()))?;
        let matcher = match op {
            "~" | "!~" => Matcher::Regex(
                Regex::new(value).map_err(|e| format!("{w:?}: bad regular expression: {e}"))?,
            ),
            ">" | ">=" | "<" | "<=" => {
                if field != Field::Code {
                    return Err(format!("{w:?}: only code compares with {op}"));
                }
                let n = value
                    .parse()
                    .map_err(|_| format!("{w:?}: {value:?} is not a number"))?;
                let op = match op {
                    ">" => CmpOp::Gt,
                    ">=" => CmpOp::Ge,
                    "<" => CmpOp::Lt,
                    _ => CmpOp::Le,
                };
                Matcher::Cmp(op, n)
            }
            _ => {
                let mut vals = Vec::new();
                for v in value.split(',') {
                    let v = v.trim();
                    if field == Field::Code {
                        let n: i64 = v
                            .parse()
                            .map_err(|_| format!("{w:?}: {v:?} is not an HTTP status code"))?;
                        vals.push(Value::Exact(n.to_string()));
                    } else if field == Field::Ip && !v.contains('*') {
                        vals.push(cidr(v).ok_or_else(|| {
                            format!("{w:?}: {v:?} is not an IP address or CIDR range")
                        })?);
                    } else if v.contains(['*', '?']) {
                        vals.push(Value::Glob(glob(v)?));
                    } else {
                        vals.push(Value::Exact(v.to_string()));
                    }
                }
                Matcher::Any(vals)
            }
        };
        f.terms.push(Term {
            field,
            negated: op.starts_with('!'),
            matcher,
        });
    }
    Ok(f)
}

fn field_names() -> String {
    let mut v: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
    v.extend(["since", "until"]);
    v.join(", ")
}

impl Matcher {
    /// Whether a string value matches (`code` arrives as its decimal text).
    pub fn matches_str(&self, s: &str) -> bool {
        match self {
            Matcher::Any(vals) => vals.iter().any(|v| match v {
                Value::Exact(x) => x == s,
                // A glob names something: it never matches an absent (empty) value.
                Value::Glob(r) => !s.is_empty() && r.is_match(s),
                Value::Cidr(net) => net.contains_str(s),
            }),
            Matcher::Regex(r) => r.is_match(s),
            Matcher::Cmp(op, n) => s.parse::<i64>().is_ok_and(|v| cmp(*op, v, *n)),
        }
    }
}

/// `v op n`.
pub fn cmp(op: CmpOp, v: i64, n: i64) -> bool {
    match op {
        CmpOp::Gt => v > n,
        CmpOp::Ge => v >= n,
        CmpOp::Lt => v < n,
        CmpOp::Le => v <= n,
        CmpOp::Eq => v == n,
        CmpOp::Ne => v != n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_examples() {
        let f = parse(
            r#"user=jane@example.com verb=get,list resource=secrets ns=production code>=400 ip=10.0.0.0/8 ua~kubectl since=24h user!=system:* ua="a b""#,
            1_000_000_000_000_000,
        )
        .unwrap();
        assert_eq!(f.terms.len(), 9);
        assert_eq!(f.since, Some(1_000_000_000_000_000 - 86_400_000_000));
        assert!(f.terms[1].matcher.matches_str("list"));
        assert!(!f.terms[1].matcher.matches_str("watch"));
        assert!(f.terms[4].matcher.matches_str("403"));
        assert!(!f.terms[4].matcher.matches_str("200"));
        assert!(f.terms[5].matcher.matches_str("10.2.3.4"));
        assert!(!f.terms[5].matcher.matches_str("11.2.3.4"));
        assert!(f.terms[7].negated && f.terms[7].matcher.matches_str("system:node:a"));
        assert!(f.terms[8].matcher.matches_str("a b"));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = |s| parse(s, 0).unwrap_err();
        assert!(e("usr=jane").contains("unknown field \"usr\""));
        assert!(e("jane").contains("expected field=value"));
        assert!(e("verb>3").contains("only code compares"));
        assert!(e("ip=10.0.0.0/33").contains("not an IP address"));
        assert!(e("since=yesterday").contains("not a duration"));
        assert!(e("ua~(").contains("bad regular expression"));
        assert!(e("code=abc").contains("not an HTTP status code"));
        assert!(e("ua=\"open").contains("unbalanced"));
    }
}
