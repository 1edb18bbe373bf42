//! An owned batch of events on its way to the store: the raw JSON of each event, kept in one
//! arena, with what deduplication needs and the segment columns taken from the parsed event
//! (so the store does not parse it again). Owned, so it can cross to the thread that appends.

use crate::Incoming;
use crate::row::{Row, RowOf, Rows};
#[cfg(test)]
use kaudit_model::decode;
use kaudit_model::{Event, Stage};

/// One event's place in the arena and its dedup fields.
#[derive(Clone, Copy, Debug)]
struct Item {
    raw: (usize, usize),
    audit_id: (usize, usize),
    stage: Option<Stage>,
    time: Option<i64>,
    /// Its row in `rows`, if it fitted.
    row: Option<u32>,
}

/// Events for one cluster, received at one moment.
#[derive(Debug, Default)]
pub struct Batch {
    pub cluster: String,
    /// When they were received (microseconds since the epoch).
    pub received: i64,
    arena: String,
    items: Vec<Item>,
    rows: Rows,
}

impl Batch {
    pub fn new(cluster: &str, received: i64) -> Batch {
        Batch {
            cluster: cluster.to_string(),
            received,
            ..Default::default()
        }
    }

    /// Adds an event: `raw` is its JSON exactly as received, `e` the same parsed.
    pub fn push(&mut self, raw: &str, e: &Event<'_>) {
        let a = self.arena.len();
        self.arena.push_str(raw);
        let b = self.arena.len();
        self.arena.push_str(e.audit_id.as_str());
        let audit_id = (b, self.arena.len());
        // After the audit ID: the row may add strings to the arena.
        let row = self.rows.push(&mut self.arena, raw, a, &Row::from_event(e));
        self.items.push(Item {
            row,
            raw: (a, b),
            audit_id,
            stage: e.stage,
            time: e.request_received_timestamp.map(|t| t.micros()),
        });
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Bytes of event JSON held.
    pub fn bytes(&self) -> usize {
        self.arena.len()
    }

    pub fn clear(&mut self) {
        self.arena.clear();
        self.items.clear();
        self.rows.clear();
    }

    /// The events as the store takes them.
    pub fn incoming(&self) -> Vec<Incoming<'_>> {
        self.items
            .iter()
            .map(|it| Incoming {
                received: self.received,
                cluster: &self.cluster,
                raw: &self.arena[it.raw.0..it.raw.1],
                audit_id: &self.arena[it.audit_id.0..it.audit_id.1],
                stage: it.stage,
                time: it.time,
                row: it.row.map(|i| RowOf::Rows(&self.rows, &self.arena, i)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::ControlFlow;

    /// Every event of every real sample (and one with escapes everywhere) gives the same
    /// row through a batch as from its parsed event.
    #[test]
    fn rows_survive_the_batch() {
        let root =
            kaudit_testkit::crate_dir(env!("CARGO_MANIFEST_DIR")).join("../../test_data/events");
        let mut files = Vec::new();
        for dir in std::fs::read_dir(&root).unwrap() {
            for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                let p = f.unwrap().path();
                if p.extension().is_none_or(|x| x != "expected") {
                    files.push(std::fs::read(&p).unwrap());
                }
            }
        }
        files.push(br#"{"kind":"Event","auditID":"e\u0031","stage":"ResponseComplete","verb":"get","requestURI":"/api?a=1\u0026b=2","user":{"username":"j\u00e9","groups":["a\"b","c"]},"sourceIPs":["::1"],"objectRef":{"resource":"pods","namespace":"n\u0073","name":"x"},"annotations":{"authorization.k8s.io/reason":"\u003cx\u003e"}}"#.to_vec());
        let flat = |r: Row<'_>| {
            let g: Vec<&str> = r.groups.iter().collect();
            format!(
                "{g:?} {:?}",
                Row {
                    groups: Default::default(),
                    ..r
                }
            )
        };
        let mut want = Vec::new();
        let mut batch = Batch::new("prod", 1);
        for data in &files {
            decode::decode_slice(data, |r| {
                if let Ok(r) = r {
                    want.push(flat(Row::from_event(&r.event)));
                    batch.push(r.raw, &r.event);
                }
                ControlFlow::Continue(())
            });
        }
        assert!(want.len() > 80, "{} events", want.len());
        let got: Vec<String> = batch
            .incoming()
            .iter()
            .map(|i| {
                // What deduplication reads agrees with the row.
                let r = i.row.expect("every row fits").get();
                assert_eq!(i.audit_id, r.audit_id);
                assert_eq!(i.time, r.time);
                flat(r)
            })
            .collect();
        assert_eq!(got, want);
        assert!(want.last().unwrap().contains(r#""a\"b""#));
    }
}
