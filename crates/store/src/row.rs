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

/// Where an event's row is: its parsed event, or a [`Rows`] arena. Small, so a batch of
/// events does not copy rows around; the row is made where it is used.
#[derive(Clone, Copy, Debug)]
pub enum RowOf<'a> {
    Event(&'a Event<'a>),
    Rows(&'a Rows, u32),
}

impl<'a> RowOf<'a> {
    /// The row.
    pub fn get(self) -> Row<'a> {
        match self {
            RowOf::Event(e) => Row::from_event(e),
            RowOf::Rows(r, i) => r.get(i as usize),
        }
    }
}

/// The strings of a row, in this order, in a [`Rows`] arena.
const STRINGS: usize = 17;

/// Rows kept in one arena: owned, so they can cross threads with the events they belong to.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    arena: String,
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

impl Rows {
    /// Adds a row; returns its index, or `None` (and nothing added) if the arena would
    /// outgrow its 4 GiB offsets.
    pub fn push(&mut self, r: &Row<'_>) -> Option<u32> {
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
        let groups_len: usize = r.groups.iter().map(str::len).sum();
        let total: usize = strs.iter().map(|s| s.len()).sum::<usize>() + groups_len;
        if self.arena.len() + total > u32::MAX as usize || self.rows.len() >= u32::MAX as usize {
            return None;
        }
        for s in strs {
            let a = self.arena.len() as u32;
            self.arena.push_str(s);
            self.strs.push((a, self.arena.len() as u32));
        }
        let g0 = self.groups.len() as u32;
        for g in r.groups.iter() {
            let a = self.arena.len() as u32;
            self.arena.push_str(g);
            self.groups.push((a, self.arena.len() as u32));
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

    /// Row `i`.
    pub fn get(&self, i: usize) -> Row<'_> {
        let f = self.rows[i];
        let s = &self.strs[i * STRINGS..(i + 1) * STRINGS];
        let t = |k: usize| &self.arena[s[k].0 as usize..s[k].1 as usize];
        Row {
            time: f.time,
            stage_time: f.stage_time,
            audit_id: t(0),
            stage: t(1),
            level: t(2),
            verb: t(3),
            user: t(4),
            groups: Groups::Arena(
                &self.arena,
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
        self.arena.clear();
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
        for e in &events {
            assert!(rows.push(&Row::from_event(e)).is_some());
        }
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
            assert_eq!(flat(rows.get(i)), flat(Row::from_event(e)));
        }
        let r = rows.get(0);
        assert_eq!(r.reason, "RBAC: \"x\"");
        assert_eq!(
            r.groups.iter().collect::<Vec<_>>(),
            ["dev", "system:authenticated"]
        );
        assert_eq!(
            (r.source_ip, r.impersonated_user, r.code),
            ("10.0.0.1", "bob", Some(200))
        );
        let r = rows.get(1);
        assert!(!r.object_ref);
        assert_eq!((r.source_ip, r.code, r.stage_time), ("", None, None));
        assert_eq!(r.groups.iter().count(), 0);
    }
}
