//! The typed columns of one event, as a segment stores them ([`Row`]), and an owned batch of
//! them ([`Rows`]) that can travel with the raw events to the thread that appends.
//!
//! An event is parsed once, where it arrives; the row taken from it then goes with the raw
//! JSON, so the store can build the segment's columns while it appends instead of parsing
//! every event again when it seals (see `Store::append_group`).

use kaudit_model::{Event, Text};

/// An event's values for the segment's typed columns. An empty string is stored as null,
/// except where a field says otherwise.
#[derive(Clone, Copy, Debug, Default)]
pub struct Row<'a> {
    /// `requestReceivedTimestamp`, microseconds since the epoch.
    pub time: Option<i64>,
    /// `stageTimestamp`.
    pub stage_time: Option<i64>,
    /// Stored as is (never null).
    pub audit_id: &'a str,
    /// Stored as is (never null).
    pub stage: &'a str,
    /// Stored as is (never null).
    pub level: &'a str,
    /// Stored as is (never null).
    pub verb: &'a str,
    /// Stored as is (never null).
    pub user: &'a str,
    pub groups: Groups<'a>,
    pub impersonated_user: &'a str,
    /// The first of `sourceIPs`.
    pub source_ip: &'a str,
    pub user_agent: &'a str,
    /// Whether the event has an `objectRef`: then `api_group` is stored even when empty (the
    /// core group), and null otherwise.
    pub object_ref: bool,
    pub namespace: &'a str,
    pub api_group: &'a str,
    pub api_version: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub name: &'a str,
    /// `responseStatus.code`, when known (not 0).
    pub code: Option<i32>,
    /// The `authorization.k8s.io/decision` annotation.
    pub decision: &'a str,
    /// The `authorization.k8s.io/reason` annotation.
    pub reason: &'a str,
    /// Stored as is (never null).
    pub request_uri: &'a str,
}

/// `user.groups`, from a parsed event or from a [`Rows`] arena.
#[derive(Clone, Copy, Debug)]
pub enum Groups<'a> {
    Texts(&'a [Text<'a>]),
    Arena(&'a str, &'a [(u32, u32)]),
}

impl Default for Groups<'_> {
    fn default() -> Self {
        Groups::Texts(&[])
    }
}

impl<'a> Groups<'a> {
    /// The groups, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let (texts, arena, ranges): (&'a [Text<'a>], &'a str, &'a [(u32, u32)]) = match *self {
            Groups::Texts(t) => (t, "", &[]),
            Groups::Arena(a, r) => (&[], a, r),
        };
        texts.iter().map(|t| t.as_str()).chain(
            ranges
                .iter()
                .map(move |&(s, e)| &arena[s as usize..e as usize]),
        )
    }
}

impl<'a> Row<'a> {
    /// The row of a parsed event.
    pub fn from_event(e: &'a Event<'a>) -> Row<'a> {
        let o = e.object_ref.as_ref();
        let of = |f: fn(&'a kaudit_model::ObjectReference<'a>) -> &'a Text<'a>| {
            o.map_or("", |o| f(o).as_str())
        };
        Row {
            time: e.request_received_timestamp.map(|t| t.micros()),
            stage_time: e.stage_timestamp.map(|t| t.micros()),
            audit_id: e.audit_id.as_str(),
            stage: e.stage.map_or("", |s| s.as_str()),
            level: e.level.map_or("", |l| l.as_str()),
            verb: e.verb.as_str(),
            user: e.user.username.as_str(),
            groups: Groups::Texts(&e.user.groups),
            impersonated_user: e
                .impersonated_user
                .as_ref()
                .map_or("", |u| u.username.as_str()),
            source_ip: e.source_ips.first().map_or("", |s| s.as_str()),
            user_agent: e.user_agent.as_str(),
            object_ref: o.is_some(),
            namespace: of(|o| &o.namespace),
            api_group: of(|o| &o.api_group),
            api_version: of(|o| &o.api_version),
            resource: of(|o| &o.resource),
            subresource: of(|o| &o.subresource),
            name: of(|o| &o.name),
            code: e.code(),
            decision: e
                .annotations
                .get("authorization.k8s.io/decision")
                .unwrap_or(""),
            reason: e
                .annotations
                .get("authorization.k8s.io/reason")
                .unwrap_or(""),
            request_uri: e.request_uri.as_str(),
        }
    }
}

/// Where an event's row is: its parsed event, or a [`Rows`] table over an arena. Small, so
/// a batch of events does not copy rows around; the row is made where it is used.
#[derive(Clone, Copy, Debug)]
pub enum RowOf<'a> {
    Event(&'a Event<'a>),
    /// Row `.2` of the table, whose strings are in the arena `.1`.
    Rows(&'a Rows, &'a str, u32),
}

impl<'a> RowOf<'a> {
    /// The row.
    pub fn get(self) -> Row<'a> {
        match self {
            RowOf::Event(e) => Row::from_event(e),
            RowOf::Rows(r, arena, i) => r.get(arena, i as usize),
        }
    }
}

/// The strings of a row, in this order, in a [`Rows`] table.
const STRINGS: usize = 17;

/// Rows as ranges of an arena the caller keeps (a batch's, holding the raw events): a row's
/// strings are found inside its raw event where they are there as is (the usual case: the
/// parsed event borrows them), and only the others are added to the arena. Owned, so rows can
/// cross threads with the events they belong to.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    /// `STRINGS` ranges per row.
    strs: Vec<(u32, u32)>,
    groups: Vec<(u32, u32)>,
    rows: Vec<Fixed>,
}

/// What a row holds besides its strings.
#[derive(Clone, Copy, Debug)]
struct Fixed {
    time: Option<i64>,
    stage_time: Option<i64>,
    code: Option<i32>,
    object_ref: bool,
    /// Its groups: `groups[g.0..g.1]`.
    groups: (u32, u32),
}

/// Where `s` is in `arena`: inside the raw event at `raw_at` if it lies within `raw` (the
/// copy of which is there), else appended.
fn place(arena: &mut String, raw: &str, raw_at: usize, s: &str) -> (usize, usize) {
    let (base, p) = (raw.as_ptr() as usize, s.as_ptr() as usize);
    if p >= base && p + s.len() <= base + raw.len() {
        let at = raw_at + (p - base);
        return (at, at + s.len());
    }
    let at = arena.len();
    arena.push_str(s);
    (at, arena.len())
}

impl Rows {
    /// Adds the row of the event whose raw JSON `raw` is at `arena[raw_at..]`; returns its
    /// index, or `None` (and nothing added) if the arena would outgrow 4 GiB.
    pub fn push(
        &mut self,
        arena: &mut String,
        raw: &str,
        raw_at: usize,
        r: &Row<'_>,
    ) -> Option<u32> {
        debug_assert_eq!(&arena[raw_at..raw_at + raw.len()], raw);
        let strs = [
            r.audit_id,
            r.stage,
            r.level,
            r.verb,
            r.user,
            r.impersonated_user,
            r.source_ip,
            r.user_agent,
            r.namespace,
            r.api_group,
            r.api_version,
            r.resource,
            r.subresource,
            r.name,
            r.decision,
            r.reason,
            r.request_uri,
        ];
        let most: usize = strs.iter().map(|s| s.len()).sum::<usize>()
            + r.groups.iter().map(str::len).sum::<usize>();
        if arena.len() + most > u32::MAX as usize || self.rows.len() >= u32::MAX as usize {
            return None;
        }
        let r32 = |(a, b): (usize, usize)| (a as u32, b as u32);
        for s in strs {
            self.strs.push(r32(place(arena, raw, raw_at, s)));
        }
        let g0 = self.groups.len() as u32;
        for g in r.groups.iter() {
            self.groups.push(r32(place(arena, raw, raw_at, g)));
        }
        self.rows.push(Fixed {
            time: r.time,
            stage_time: r.stage_time,
            code: r.code,
            object_ref: r.object_ref,
            groups: (g0, self.groups.len() as u32),
        });
        Some(self.rows.len() as u32 - 1)
    }

    /// Row `i`, its strings in `arena`.
    pub fn get<'a>(&'a self, arena: &'a str, i: usize) -> Row<'a> {
        let f = self.rows[i];
        let s = &self.strs[i * STRINGS..(i + 1) * STRINGS];
        let t = |k: usize| &arena[s[k].0 as usize..s[k].1 as usize];
        Row {
            time: f.time,
            stage_time: f.stage_time,
            audit_id: t(0),
            stage: t(1),
            level: t(2),
            verb: t(3),
            user: t(4),
            groups: Groups::Arena(
                arena,
                &self.groups[f.groups.0 as usize..f.groups.1 as usize],
            ),
            impersonated_user: t(5),
            source_ip: t(6),
            user_agent: t(7),
            object_ref: f.object_ref,
            namespace: t(8),
            api_group: t(9),
            api_version: t(10),
            resource: t(11),
            subresource: t(12),
            name: t(13),
            code: f.code,
            decision: t(14),
            reason: t(15),
            request_uri: t(16),
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn clear(&mut self) {
        self.strs.clear();
        self.groups.clear();
        self.rows.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_give_back_what_was_pushed() {
        let lines = [
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/p/secrets/s","verb":"get","user":{"username":"jane","groups":["dev","system:authenticated"]},"impersonatedUser":{"username":"bob"},"sourceIPs":["10.0.0.1","10.0.0.2"],"userAgent":"kubectl/v1.31","objectRef":{"resource":"secrets","namespace":"p","name":"s","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-03-01T10:00:00.000001Z","stageTimestamp":"2026-03-01T10:00:00.000002Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: \"x\""}}"#,
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"a2","stage":"ResponseStarted","requestURI":"/healthz","verb":"get","user":{"username":"system:anonymous"},"sourceIPs":[],"requestReceivedTimestamp":"2026-03-01T10:00:01Z"}"#,
        ];
        let events: Vec<Event<'_>> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut rows = Rows::default();
        let mut arena = String::new();
        for (l, e) in lines.iter().zip(&events) {
            // The arena holds the raw event; the parsed one borrows from `l`, not from it.
            let at = arena.len();
            arena.push_str(l);
            assert!(rows.push(&mut arena, l, at, &Row::from_event(e)).is_some());
        }
        // Strings borrowed from the raw event are found in it; the rest were appended (the
        // stage and level come from enums, the reason had escapes).
        let raw_len: usize = lines.iter().map(|l| l.len()).sum();
        assert!(
            arena.len() > raw_len && arena.len() < raw_len + 80,
            "{}",
            arena.len() - raw_len
        );
        assert_eq!(rows.len(), 2);
        // Every value comes back; the groups only change representation.
        let flat = |r: Row<'_>| {
            let g: Vec<&str> = r.groups.iter().collect();
            format!(
                "{g:?} {:?}",
                Row {
                    groups: Groups::default(),
                    ..r
                }
            )
        };
        for (i, e) in events.iter().enumerate() {
            assert_eq!(flat(rows.get(&arena, i)), flat(Row::from_event(e)));
        }
        let r = rows.get(&arena, 0);
        assert_eq!(r.reason, "RBAC: \"x\"");
        assert_eq!(
            r.groups.iter().collect::<Vec<_>>(),
            ["dev", "system:authenticated"]
        );
        assert_eq!(
            (r.source_ip, r.impersonated_user, r.code),
            ("10.0.0.1", "bob", Some(200))
        );
        let r = rows.get(&arena, 1);
        assert!(!r.object_ref);
        assert_eq!((r.source_ip, r.code, r.stage_time), ("", None, None));
        assert_eq!(r.groups.iter().count(), 0);
    }
}
